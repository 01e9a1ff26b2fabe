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
//! clamped into what `TelemetrySample::validate` accepts, NaN becoming the default.
//!
//! The converter reads channels by name through [`Channels`], so one conversion serves a parsed
//! row ([`Row`]: `.ibt` files, a live-map image) and the live sim on Windows (the `iracing-telem`
//! session in `platform/windows/`). Reads no env vars.

use chrono::{DateTime, TimeDelta, Utc};
use pitbox_schema::wire::{CarArrays, TelemetryFrame, TelemetrySample, TireSet};

use super::row::Row;
use super::session::SessionInfo;
use super::source::Source;
use super::Ibt;

/// Read access to one row of telemetry (every channel at one tick) by channel name, whatever holds
/// it. Each accessor answers `None` when the channel does not exist or has another type; arrays
/// give every element (one for a scalar channel). Never panics.
pub trait Channels {
    /// A `float` channel.
    fn f32(&self, name: &str) -> Option<f32>;
    /// A `double` channel, or a `float` one widened (exactly).
    fn f64(&self, name: &str) -> Option<f64>;
    /// An `int` channel.
    fn i32(&self, name: &str) -> Option<i32>;
    /// A `bool` channel.
    fn bool(&self, name: &str) -> Option<bool>;
    /// A `bitfield` channel.
    fn bitfield(&self, name: &str) -> Option<u32>;
    /// A `float` array channel (e.g. `CarIdxLapDistPct`).
    fn f32s(&self, name: &str) -> Option<Vec<f32>>;
    /// An `int` array channel (e.g. `CarIdxLap`).
    fn i32s(&self, name: &str) -> Option<Vec<i32>>;
    /// A `bool` array channel (e.g. `CarIdxOnPitRoad`).
    fn bools(&self, name: &str) -> Option<Vec<bool>>;

    /// Any scalar channel as a number, whatever its type (bools 0/1).
    fn number(&self, name: &str) -> Option<f64> {
        self.f64(name)
            .or_else(|| self.i32(name).map(f64::from))
            .or_else(|| self.bitfield(name).map(f64::from))
            .or_else(|| self.bool(name).map(|b| f64::from(u8::from(b))))
    }

    /// An integer-typed scalar channel (int, bitfield, bool) as `i64`; `None` for floats.
    fn integer(&self, name: &str) -> Option<i64> {
        self.i32(name)
            .map(i64::from)
            .or_else(|| self.bitfield(name).map(i64::from))
            .or_else(|| self.bool(name).map(i64::from))
    }
}

impl<T: Channels + ?Sized> Channels for &T {
    fn f32(&self, name: &str) -> Option<f32> {
        (**self).f32(name)
    }
    fn f64(&self, name: &str) -> Option<f64> {
        (**self).f64(name)
    }
    fn i32(&self, name: &str) -> Option<i32> {
        (**self).i32(name)
    }
    fn bool(&self, name: &str) -> Option<bool> {
        (**self).bool(name)
    }
    fn bitfield(&self, name: &str) -> Option<u32> {
        (**self).bitfield(name)
    }
    fn f32s(&self, name: &str) -> Option<Vec<f32>> {
        (**self).f32s(name)
    }
    fn i32s(&self, name: &str) -> Option<Vec<i32>> {
        (**self).i32s(name)
    }
    fn bools(&self, name: &str) -> Option<Vec<bool>> {
        (**self).bools(name)
    }
    fn number(&self, name: &str) -> Option<f64> {
        (**self).number(name)
    }
    fn integer(&self, name: &str) -> Option<i64> {
        (**self).integer(name)
    }
}

impl Channels for Row<'_> {
    fn f32(&self, name: &str) -> Option<f32> {
        Row::f32(self, name)
    }
    fn f64(&self, name: &str) -> Option<f64> {
        Row::f64(self, name)
    }
    fn i32(&self, name: &str) -> Option<i32> {
        Row::i32(self, name)
    }
    fn bool(&self, name: &str) -> Option<bool> {
        Row::bool(self, name)
    }
    fn bitfield(&self, name: &str) -> Option<u32> {
        Row::bitfield(self, name)
    }
    fn f32s(&self, name: &str) -> Option<Vec<f32>> {
        self.f32_array(name)
    }
    fn i32s(&self, name: &str) -> Option<Vec<i32>> {
        self.i32_array(name)
    }
    fn bools(&self, name: &str) -> Option<Vec<bool>> {
        self.bool_array(name)
    }
    /// One lookup instead of one per type (this is the per-row hot path of a replay).
    fn number(&self, name: &str) -> Option<f64> {
        Row::number(self, name)
    }
    fn integer(&self, name: &str) -> Option<i64> {
        self.get(name)?.as_i64()
    }
}

/// A row without channels (what a default converter sees).
struct NoChannels;

impl Channels for NoChannels {
    fn f32(&self, _: &str) -> Option<f32> {
        None
    }
    fn f64(&self, _: &str) -> Option<f64> {
        None
    }
    fn i32(&self, _: &str) -> Option<i32> {
        None
    }
    fn bool(&self, _: &str) -> Option<bool> {
        None
    }
    fn bitfield(&self, _: &str) -> Option<u32> {
        None
    }
    fn f32s(&self, _: &str) -> Option<Vec<f32>> {
        None
    }
    fn i32s(&self, _: &str) -> Option<Vec<i32>> {
        None
    }
    fn bools(&self, _: &str) -> Option<Vec<bool>> {
        None
    }
}

/// Per tyre (LF, RF, LR, RR), the channels averaged into one value.
const WEAR: [[&str; 3]; 4] = [
    ["LFwearL", "LFwearM", "LFwearR"],
    ["RFwearL", "RFwearM", "RFwearR"],
    ["LRwearL", "LRwearM", "LRwearR"],
    ["RRwearL", "RRwearM", "RRwearR"],
];
const CARCASS_TEMPS: [[&str; 3]; 4] = [
    ["LFtempCL", "LFtempCM", "LFtempCR"],
    ["RFtempCL", "RFtempCM", "RFtempCR"],
    ["LRtempCL", "LRtempCM", "LRtempCR"],
    ["RRtempCL", "RRtempCM", "RRtempCR"],
];
const SURFACE_TEMPS: [[&str; 3]; 4] = [
    ["LFtempL", "LFtempM", "LFtempR"],
    ["RFtempL", "RFtempM", "RFtempR"],
    ["LRtempL", "LRtempM", "LRtempR"],
    ["RRtempL", "RRtempM", "RRtempR"],
];

/// What the conversion needs besides the row: the sector starts (from the session-info YAML) and,
/// for a recording, its wall-clock start. Channels are read by name from each row.
///
/// `SampleConverter::default()` is bound to no channel at all: every row converts to
/// `TelemetrySample::default()` (with its sector). [`SampleConverter::new`] and
/// [`SampleConverter::live`] read the row's channels.
#[derive(Debug, Clone, Default)]
pub struct SampleConverter {
    /// Whether rows are read at all (see the type's docs).
    reads_channels: bool,
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

/// An integer channel, or a float one rounded.
fn int<C: Channels + ?Sized>(row: &C, name: &str) -> Option<i64> {
    row.integer(name).or_else(|| row.number(name).filter(|f| f.is_finite()).map(|f| f.round() as i64))
}

/// One value per tyre: the mean of its channels, scaled and clamped; `None` unless every tyre has
/// one.
fn tyres<C: Channels + ?Sized>(
    row: &C,
    names: &[[&str; 3]; 4],
    scale: f64,
    lo: f32,
    hi: f32,
) -> Option<TireSet> {
    let mut out = [0f32; 4];
    for (slot, tyre) in out.iter_mut().zip(names) {
        let m = mean(tyre.iter().filter_map(|n| row.number(n)))?;
        *slot = clamp(m * scale, lo, hi, 0.0);
    }
    let [front_left, front_right, rear_left, rear_right] = out;
    Some(TireSet { front_left, front_right, rear_left, rear_right })
}

fn cars<C: Channels + ?Sized>(row: &C) -> Option<CarArrays> {
    let lap = row.i32s("CarIdxLap");
    let pct = row.f32s("CarIdxLapDistPct");
    let position = row.i32s("CarIdxPosition");
    let pit = row.bools("CarIdxOnPitRoad");
    let lens = [lap.as_ref().map(Vec::len), pct.as_ref().map(Vec::len)];
    let more = [position.as_ref().map(Vec::len), pit.as_ref().map(Vec::len)];
    let n = lens.into_iter().chain(more).flatten().max()?;
    let at = |v: &Option<Vec<i32>>, i: usize| v.as_ref().and_then(|v| v.get(i).copied());
    Some(CarArrays {
        lap: (0..n).map(|i| at(&lap, i).unwrap_or(-1)).collect(),
        lap_dist_pct: (0..n)
            .map(|i| {
                pct.as_ref().and_then(|v| v.get(i)).map_or(-1.0, |&p| clamp(f64::from(p), -1.0, 1.0, -1.0))
            })
            .collect(),
        position: (0..n).map(|i| at(&position, i).unwrap_or(0).max(0)).collect(),
        on_pit_road: (0..n).map(|i| pit.as_ref().and_then(|v| v.get(i).copied()).unwrap_or(false)).collect(),
    })
}

impl SampleConverter {
    /// Reads the sector starts and recording start time of `ibt`.
    pub fn new<S: Source>(ibt: &Ibt<S>) -> Self {
        let start = ibt.disk_header().and_then(|d| Some((d.start_date_time()?, d.session_start_time)));
        SampleConverter {
            reads_channels: true,
            sector_starts: ibt.session_info().map(|info| info.sector_starts()).unwrap_or_default(),
            start,
        }
    }

    /// For the live sim: the sector starts of its session info (when known yet), no recording
    /// start (frames take the time they were read).
    pub fn live(info: Option<&SessionInfo>) -> Self {
        SampleConverter {
            reads_channels: true,
            sector_starts: info.map(SessionInfo::sector_starts).unwrap_or_default(),
            start: None,
        }
    }

    /// Uses these sector starts (0–1, ascending) instead of the ones from the session info.
    pub fn with_sector_starts(mut self, starts: Vec<f32>) -> Self {
        self.sector_starts = starts;
        self
    }

    /// Replaces the sector starts (the live sim's session info changed).
    pub fn set_sector_starts(&mut self, starts: Vec<f32>) {
        self.sector_starts = starts;
    }

    /// The sector starts in use (0–1, ascending).
    pub fn sector_starts(&self) -> &[f32] {
        &self.sector_starts
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
    pub fn sample<C: Channels + ?Sized>(&self, row: &C) -> TelemetrySample {
        if self.reads_channels {
            self.convert(row)
        } else {
            self.convert(&NoChannels)
        }
    }

    fn convert<C: Channels + ?Sized>(&self, row: &C) -> TelemetrySample {
        let pct = |v: Option<f64>| clamp(v.unwrap_or(0.0) * 100.0, 0.0, 100.0, 0.0);
        let lap_time = |v: Option<f64>| v.filter(|t| t.is_finite() && *t > 0.0 && *t < 1e9).map(|t| t as f32);
        let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
        let num = |name: &str| row.number(name);
        let track_position = clamp(num("LapDistPct").unwrap_or(0.0), -1.0, 1.0, 0.0);
        let position = int(row, "PlayerCarPosition").or_else(|| int(row, "PlayerCarClassPosition"));
        TelemetrySample {
            session_time: finite(num("SessionTime")).unwrap_or(0.0),
            speed: clamp(num("Speed").unwrap_or(0.0) * 3.6, 0.0, 1000.0, 0.0),
            rpm: clamp(num("RPM").unwrap_or(0.0), 0.0, 30000.0, 0.0),
            gear: int(row, "Gear").map_or(0, |g| g.clamp(-1, i64::from(i8::MAX)) as i8),
            throttle: pct(num("Throttle")),
            brake: pct(num("Brake")),
            clutch: num("Clutch").map_or(0.0, |c| pct(Some(1.0 - c))),
            steering_angle: clamp(
                -num("SteeringWheelAngle").unwrap_or(0.0).to_degrees(),
                -3600.0,
                3600.0,
                0.0,
            ),
            lap: int(row, "Lap").map_or(0, |l| l.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32),
            track_position,
            sector: self.sector(track_position),
            position: position.map_or(0, |p| p.clamp(0, i64::from(i32::MAX)) as i32),
            fuel_level: clamp(num("FuelLevel").unwrap_or(0.0), 0.0, 10000.0, 0.0),
            fuel_level_pct: pct(num("FuelLevelPct")),
            fuel_use_per_hour: clamp(num("FuelUsePerHour").unwrap_or(0.0), 0.0, 10000.0, 0.0),
            tire_wear: tyres(row, &WEAR, 100.0, 0.0, 100.0),
            tire_temps: tyres(row, &CARCASS_TEMPS, 1.0, -273.0, 2000.0)
                .or_else(|| tyres(row, &SURFACE_TEMPS, 1.0, -273.0, 2000.0)),
            latitude: finite(num("Lat")),
            longitude: finite(num("Lon")),
            on_pit_road: num("OnPitRoad").is_some_and(|v| v != 0.0),
            track_surface: int(row, "PlayerTrackSurface").map(|v| v.clamp(-1, 3) as i8),
            incidents: int(row, "PlayerCarMyIncidentCount").map(|v| v.clamp(0, i64::from(i32::MAX)) as i32),
            flags: int(row, "SessionFlags").map_or(0, |f| f as u32),
            last_lap_time: lap_time(num("LapLastLapTime")),
            best_lap_time: lap_time(num("LapBestLapTime")),
            cars: cars(row),
        }
    }

    /// Wall-clock time of a row of a recording: the file's start date plus the `SessionTime`
    /// elapsed since its first row. `None` for the live sim (use the time it was read).
    pub fn timestamp<C: Channels + ?Sized>(&self, row: &C) -> Option<DateTime<Utc>> {
        let (start, start_session_time) = self.start.filter(|_| self.reads_channels)?;
        let elapsed = row.number("SessionTime")? - start_session_time;
        if !elapsed.is_finite() || elapsed.abs() > 1e10 {
            return None;
        }
        start.checked_add_signed(TimeDelta::try_milliseconds((elapsed * 1000.0).round() as i64)?)
    }

    /// The row as a frame; `fallback` is its time when [`SampleConverter::timestamp`] has none.
    pub fn frame<C: Channels + ?Sized>(
        &self,
        row: &C,
        seq: Option<u64>,
        fallback: DateTime<Utc>,
    ) -> TelemetryFrame {
        TelemetryFrame { seq, timestamp: self.timestamp(row).unwrap_or(fallback), sample: self.sample(row) }
    }
}
