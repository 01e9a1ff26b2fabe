//! Converts a telemetry row into PitBox's [`TelemetrySample`] (and a [`TelemetryFrame`] with its
//! wall-clock time), translating iRacing's channels into our units:
//!
//! | ours | iRacing |
//! | --- | --- |
//! | speed km/h | `Speed` m/s × 3.6 |
//! | throttle, brake % | `Throttle`, `Brake` 0–1 × 100 |
//! | clutch % pressed | `Clutch` is 1 when engaged (pedal up): 100 × (1 − `Clutch`) |
//! | steering °, negative = left | `SteeringWheelAngle` rad, positive = left: negated |
//! | fuel level %, tyre wear % | `FuelLevelPct`, `xxwearL/M/R` 0–1 × 100 (wear: mean of L/M/R) |
//! | tyre temps °C | `xxtempCL/CM/CR` (carcass; mean), else `xxtempL/M/R` |
//! | position | `PlayerCarPosition`, else `PlayerCarClassPosition` |
//! | sector | from `LapDistPct` and the YAML's `SplitTimeInfo` |
//!
//! A missing channel gives a default (0, `false`, `None`), never an error, and every value is
//! clamped into what `TelemetrySample::validate` accepts, NaN becoming the default. Reads no env
//! vars.

use chrono::{DateTime, TimeDelta, Utc};
use schema::wire::{CarArrays, TelemetryFrame, TelemetrySample, TireSet};

use super::row::Row;
use super::source::Source;
use super::var::{Value, VarHeader};
use super::Ibt;

const TYRES: [&str; 4] = ["LF", "RF", "LR", "RR"];

/// Channels looked up once per input, then read from every row by offset.
#[derive(Debug, Clone, Default)]
pub struct SampleConverter {
    session_time: Option<VarHeader>,
    speed: Option<VarHeader>,
    rpm: Option<VarHeader>,
    gear: Option<VarHeader>,
    throttle: Option<VarHeader>,
    brake: Option<VarHeader>,
    clutch: Option<VarHeader>,
    steering: Option<VarHeader>,
    lap: Option<VarHeader>,
    lap_dist_pct: Option<VarHeader>,
    position: Option<VarHeader>,
    fuel_level: Option<VarHeader>,
    fuel_level_pct: Option<VarHeader>,
    fuel_use_per_hour: Option<VarHeader>,
    /// Per tyre (LF, RF, LR, RR): the wear channels L/M/R that exist.
    wear: [Vec<VarHeader>; 4],
    temps: [Vec<VarHeader>; 4],
    latitude: Option<VarHeader>,
    longitude: Option<VarHeader>,
    on_pit_road: Option<VarHeader>,
    flags: Option<VarHeader>,
    last_lap_time: Option<VarHeader>,
    best_lap_time: Option<VarHeader>,
    car_lap: Option<VarHeader>,
    car_lap_dist_pct: Option<VarHeader>,
    car_position: Option<VarHeader>,
    car_on_pit_road: Option<VarHeader>,
    sector_starts: Vec<f32>,
    /// Disk recordings: wall-clock start and the `SessionTime` it corresponds to.
    start: Option<(DateTime<Utc>, f64)>,
}

/// A finite value clamped into `lo..=hi`; NaN and infinities become `fallback`.
fn clamp(v: f64, lo: f32, hi: f32, fallback: f32) -> f32 {
    if v.is_finite() {
        (v as f32).clamp(lo, hi)
    } else {
        fallback
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.filter(|v| v.is_finite()).fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

impl SampleConverter {
    /// Resolves the channels of `ibt` and reads the sector starts and recording start time.
    pub fn new<S: Source>(ibt: &Ibt<S>) -> Self {
        let var = |name: &str| ibt.var(name).cloned();
        let first = |names: &[&str]| names.iter().find_map(|n| var(n));
        let per_tyre = |suffixes: &[&str]| {
            TYRES.map(|t| suffixes.iter().filter_map(|s| var(&format!("{t}{s}"))).collect::<Vec<_>>())
        };
        let carcass = per_tyre(&["tempCL", "tempCM", "tempCR"]);
        let temps = if carcass.iter().all(|t| !t.is_empty()) {
            carcass
        } else {
            per_tyre(&["tempL", "tempM", "tempR"])
        };
        let start = ibt.disk_header().and_then(|d| Some((d.start_date_time()?, d.session_start_time)));
        SampleConverter {
            session_time: var("SessionTime"),
            speed: var("Speed"),
            rpm: var("RPM"),
            gear: var("Gear"),
            throttle: var("Throttle"),
            brake: var("Brake"),
            clutch: var("Clutch"),
            steering: var("SteeringWheelAngle"),
            lap: var("Lap"),
            lap_dist_pct: var("LapDistPct"),
            position: first(&["PlayerCarPosition", "PlayerCarClassPosition"]),
            fuel_level: var("FuelLevel"),
            fuel_level_pct: var("FuelLevelPct"),
            fuel_use_per_hour: var("FuelUsePerHour"),
            wear: per_tyre(&["wearL", "wearM", "wearR"]),
            temps,
            latitude: var("Lat"),
            longitude: var("Lon"),
            on_pit_road: var("OnPitRoad"),
            flags: var("SessionFlags"),
            last_lap_time: var("LapLastLapTime"),
            best_lap_time: var("LapBestLapTime"),
            car_lap: var("CarIdxLap"),
            car_lap_dist_pct: var("CarIdxLapDistPct"),
            car_position: var("CarIdxPosition"),
            car_on_pit_road: var("CarIdxOnPitRoad"),
            sector_starts: ibt.session_info().map(|info| info.sector_starts()).unwrap_or_default(),
            start,
        }
    }

    /// Uses these sector starts (0–1, ascending) instead of the ones from the session info.
    pub fn with_sector_starts(mut self, starts: Vec<f32>) -> Self {
        self.sector_starts = starts;
        self
    }

    fn value(row: &Row<'_>, var: &Option<VarHeader>) -> Option<Value> {
        row.value(var.as_ref()?, 0)
    }

    fn num(row: &Row<'_>, var: &Option<VarHeader>) -> Option<f64> {
        Self::value(row, var).map(Value::as_f64)
    }

    fn int(row: &Row<'_>, var: &Option<VarHeader>) -> Option<i64> {
        let v = Self::value(row, var)?;
        v.as_i64().or_else(|| Some(v.as_f64()).filter(|f| f.is_finite()).map(|f| f.round() as i64))
    }

    /// One value per tyre: the mean of its channels, scaled and clamped; `None` unless every
    /// tyre has one.
    fn tyres(row: &Row<'_>, tyres: &[Vec<VarHeader>; 4], scale: f64, lo: f32, hi: f32) -> Option<TireSet> {
        let mut out = [0f32; 4];
        for (slot, vars) in out.iter_mut().zip(tyres) {
            let m = mean(vars.iter().filter_map(|v| row.value(v, 0)).map(Value::as_f64))?;
            *slot = clamp(m * scale, lo, hi, 0.0);
        }
        let [front_left, front_right, rear_left, rear_right] = out;
        Some(TireSet { front_left, front_right, rear_left, rear_right })
    }

    fn cars(&self, row: &Row<'_>) -> Option<CarArrays> {
        let arrays = [&self.car_lap, &self.car_lap_dist_pct, &self.car_position, &self.car_on_pit_road];
        let n = arrays.iter().filter_map(|v| v.as_ref().map(|v| v.count)).max()?;
        let element = |var: &Option<VarHeader>, i: usize| var.as_ref().and_then(|v| row.value(v, i));
        let int = |v: Option<Value>, default: i32| match v {
            Some(v) => v.as_i64().and_then(|x| i32::try_from(x).ok()).unwrap_or(default),
            None => default,
        };
        Some(CarArrays {
            lap: (0..n).map(|i| int(element(&self.car_lap, i), -1)).collect(),
            lap_dist_pct: (0..n)
                .map(|i| {
                    element(&self.car_lap_dist_pct, i).map_or(-1.0, |v| clamp(v.as_f64(), -1.0, 1.0, -1.0))
                })
                .collect(),
            position: (0..n).map(|i| int(element(&self.car_position, i), 0).max(0)).collect(),
            on_pit_road: (0..n)
                .map(|i| element(&self.car_on_pit_road, i).is_some_and(Value::as_bool))
                .collect(),
        })
    }

    /// 1-based sector of `pct`, 0 when unknown.
    fn sector(&self, pct: f32) -> u8 {
        if !(0.0..=1.0).contains(&pct) {
            return 0;
        }
        let n = self.sector_starts.iter().filter(|&&s| s <= pct).count();
        u8::try_from(n).unwrap_or(u8::MAX)
    }

    /// The row as a sample; it always passes `TelemetrySample::validate`.
    pub fn sample(&self, row: &Row<'_>) -> TelemetrySample {
        let pct = |v: Option<f64>| clamp(v.unwrap_or(0.0) * 100.0, 0.0, 100.0, 0.0);
        let lap_time = |v: Option<f64>| v.filter(|t| t.is_finite() && *t > 0.0 && *t < 1e9).map(|t| t as f32);
        let track_position = clamp(Self::num(row, &self.lap_dist_pct).unwrap_or(0.0), -1.0, 1.0, 0.0);
        let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
        TelemetrySample {
            session_time: finite(Self::num(row, &self.session_time)).unwrap_or(0.0),
            speed: clamp(Self::num(row, &self.speed).unwrap_or(0.0) * 3.6, 0.0, 1000.0, 0.0),
            rpm: clamp(Self::num(row, &self.rpm).unwrap_or(0.0), 0.0, 30000.0, 0.0),
            gear: Self::int(row, &self.gear).map_or(0, |g| g.clamp(-1, i64::from(i8::MAX)) as i8),
            throttle: pct(Self::num(row, &self.throttle)),
            brake: pct(Self::num(row, &self.brake)),
            clutch: Self::num(row, &self.clutch).map_or(0.0, |c| pct(Some(1.0 - c))),
            steering_angle: clamp(
                -Self::num(row, &self.steering).unwrap_or(0.0).to_degrees(),
                -3600.0,
                3600.0,
                0.0,
            ),
            lap: Self::int(row, &self.lap)
                .map_or(0, |l| l.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32),
            track_position,
            sector: self.sector(track_position),
            position: Self::int(row, &self.position).map_or(0, |p| p.clamp(0, i64::from(i32::MAX)) as i32),
            fuel_level: clamp(Self::num(row, &self.fuel_level).unwrap_or(0.0), 0.0, 10000.0, 0.0),
            fuel_level_pct: pct(Self::num(row, &self.fuel_level_pct)),
            fuel_use_per_hour: clamp(
                Self::num(row, &self.fuel_use_per_hour).unwrap_or(0.0),
                0.0,
                10000.0,
                0.0,
            ),
            tire_wear: Self::tyres(row, &self.wear, 100.0, 0.0, 100.0),
            tire_temps: Self::tyres(row, &self.temps, 1.0, -273.0, 2000.0),
            latitude: finite(Self::num(row, &self.latitude)),
            longitude: finite(Self::num(row, &self.longitude)),
            on_pit_road: Self::value(row, &self.on_pit_road).is_some_and(Value::as_bool),
            flags: Self::int(row, &self.flags).map_or(0, |f| f as u32),
            last_lap_time: lap_time(Self::num(row, &self.last_lap_time)),
            best_lap_time: lap_time(Self::num(row, &self.best_lap_time)),
            cars: self.cars(row),
        }
    }

    /// Wall-clock time of a row of a recording: the file's start date plus the `SessionTime`
    /// elapsed since its first row. `None` for the live map (use the time it was read).
    pub fn timestamp(&self, row: &Row<'_>) -> Option<DateTime<Utc>> {
        let (start, start_session_time) = self.start?;
        let elapsed = Self::num(row, &self.session_time)? - start_session_time;
        if !elapsed.is_finite() || elapsed.abs() > 1e10 {
            return None;
        }
        start.checked_add_signed(TimeDelta::try_milliseconds((elapsed * 1000.0).round() as i64)?)
    }

    /// The row as a frame; `fallback` is its time when [`SampleConverter::timestamp`] has none.
    pub fn frame(&self, row: &Row<'_>, seq: Option<u64>, fallback: DateTime<Utc>) -> TelemetryFrame {
        TelemetryFrame { seq, timestamp: self.timestamp(row).unwrap_or(fallback), sample: self.sample(row) }
    }
}
