//! Strategy from the laps so far: fuel per lap (rolling over clean laps), laps of fuel left, fuel
//! to the finish from the session's remaining laps or time, the pit window and stint length, a
//! fuel-use alarm (leak or damage), and the tyres' wear and temperature trend where the channels
//! exist. Inputs are plain numbers; the session's length comes from the caller. Reads no env vars.

use pitbox_schema::wire::TireSet;
use serde::{Deserialize, Serialize};

/// One lap's fuel and tyres.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LapResources {
    pub lap: i32,
    /// Litres burnt over the lap.
    pub fuel_used_l: f64,
    /// Litres in the tank at the lap's end.
    pub fuel_end_l: f64,
    pub lap_time_s: f64,
    /// A clean flying lap (pit laps burn differently).
    pub clean: bool,
    /// Tread remaining at the lap's end (%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tyre_wear: Option<TireSet>,
    /// Mean tyre temperature over the lap (°C).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tyre_temps: Option<TireSet>,
}

/// How much of the session is left.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "value")]
pub enum Remaining {
    /// Laps still to be completed, counting the current one.
    Laps(f64),
    /// Seconds on the session clock (a timed race: the lap in progress when it runs out is the
    /// last).
    Time(f64),
}

/// Settings of the fuel model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FuelOptions {
    /// Clean laps averaged.
    pub window: usize,
    /// A lap that burns this much more than the usual (ratio) raises the alarm.
    pub alarm_ratio: f64,
    /// Laps of fuel kept in hand when working out what to add.
    pub reserve_laps: f64,
    /// Fewer laps of fuel than this is urgent.
    pub low_laps: f64,
}

impl Default for FuelOptions {
    fn default() -> Self {
        FuelOptions { window: 5, alarm_ratio: 1.2, reserve_laps: 0.5, low_laps: 2.0 }
    }
}

/// The laps in which a stop fits: from `earliest` (a full tank then reaches the finish) to
/// `latest` (the tank runs dry after it), counted in laps from now.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PitWindow {
    pub earliest: u32,
    pub latest: u32,
}

/// Per-lap change of the tyres (least squares over the laps given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TyreTrend {
    /// % tread per lap (negative = wearing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wear_per_lap: Option<TireSet>,
    /// °C per lap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp_per_lap: Option<TireSet>,
    /// Laps until the most worn tyre reaches 0 % at this rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub laps_to_worn_out: Option<f64>,
}

/// What the pit wall needs to plan the race.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Strategy {
    /// Litres per lap (rolling mean over clean laps).
    pub fuel_per_lap_l: Option<f64>,
    pub fuel_level_l: f64,
    /// Laps the fuel in the tank lasts.
    pub laps_of_fuel: Option<f64>,
    /// Laps to the finish (whole laps).
    pub laps_to_finish: Option<f64>,
    pub fuel_to_finish_l: Option<f64>,
    /// Beyond what is in the tank, with the reserve.
    pub fuel_to_add_l: Option<f64>,
    /// Laps on a full tank.
    pub stint_laps: Option<f64>,
    pub stops_needed: Option<u32>,
    pub pit_window: Option<PitWindow>,
    /// Litres burnt on the last lap against the usual, when it is alarming.
    pub fuel_alarm: Option<(f64, f64)>,
    pub tyres: Option<TyreTrend>,
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn median(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().filter(|_| !s.is_empty())
}

/// Least-squares slope of `y` over `x`.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

fn tyre_slope(laps: &[LapResources], pick: impl Fn(&LapResources) -> Option<TireSet>) -> Option<TireSet> {
    let sets: Vec<(f64, TireSet)> = laps.iter().filter_map(|l| Some((f64::from(l.lap), pick(l)?))).collect();
    let one = |f: fn(&TireSet) -> f32| {
        let pts: Vec<(f64, f64)> = sets.iter().map(|(x, t)| (*x, f64::from(f(t)))).collect();
        slope(&pts).map(|s| s as f32)
    };
    Some(TireSet {
        front_left: one(|t| t.front_left)?,
        front_right: one(|t| t.front_right)?,
        rear_left: one(|t| t.rear_left)?,
        rear_right: one(|t| t.rear_right)?,
    })
}

/// The tyres' trend over the laps (`None` without tyre channels).
pub fn tyre_trend(laps: &[LapResources]) -> Option<TyreTrend> {
    let wear = tyre_slope(laps, |l| l.tyre_wear);
    let temp = tyre_slope(laps, |l| l.tyre_temps);
    if wear.is_none() && temp.is_none() {
        return None;
    }
    let laps_to_worn_out = wear.and_then(|w| {
        let last = laps.iter().rev().find_map(|l| l.tyre_wear)?;
        [
            (last.front_left, w.front_left),
            (last.front_right, w.front_right),
            (last.rear_left, w.rear_left),
            (last.rear_right, w.rear_right),
        ]
        .iter()
        .filter(|(_, rate)| *rate < 0.0)
        .map(|(left, rate)| f64::from(*left) / f64::from(-rate))
        .min_by(f64::total_cmp)
    });
    Some(TyreTrend { wear_per_lap: wear, temp_per_lap: temp, laps_to_worn_out })
}

/// The race plan from the laps so far (oldest first) and the car now.
pub fn strategy(
    laps: &[LapResources],
    fuel_level_l: f64,
    tank_capacity_l: Option<f64>,
    remaining: Option<Remaining>,
    opts: &FuelOptions,
) -> Strategy {
    let clean: Vec<&LapResources> = laps.iter().filter(|l| l.clean && l.fuel_used_l > 0.0).collect();
    let recent: Vec<f64> = clean.iter().rev().take(opts.window).map(|l| l.fuel_used_l).collect();
    // The alarm: the last lap (whatever it was, but not a refuelling one) against the usual of
    // the clean laps before it.
    let fuel_alarm = laps.last().filter(|l| l.fuel_used_l > 0.0).and_then(|last| {
        let before: Vec<f64> = clean
            .iter()
            .filter(|l| l.lap != last.lap)
            .rev()
            .take(opts.window)
            .map(|l| l.fuel_used_l)
            .collect();
        let usual = median(&before)?;
        (before.len() >= 2 && last.fuel_used_l > usual * opts.alarm_ratio)
            .then_some((last.fuel_used_l, usual))
    });
    // With an alarm the last lap's burn is what counts from now on.
    let fuel_per_lap = match fuel_alarm {
        Some((last, _)) => Some(last),
        None => mean(&recent),
    };
    let lap_time = mean(&clean.iter().rev().take(opts.window).map(|l| l.lap_time_s).collect::<Vec<_>>())
        .or_else(|| mean(&laps.iter().map(|l| l.lap_time_s).collect::<Vec<_>>()));
    let laps_of_fuel = fuel_per_lap.filter(|f| *f > 0.0).map(|f| fuel_level_l / f);
    let laps_to_finish = match remaining {
        Some(Remaining::Laps(n)) => Some(n.max(0.0)),
        Some(Remaining::Time(secs)) => lap_time.filter(|t| *t > 0.0).map(|t| (secs.max(0.0) / t).ceil()),
        None => None,
    };
    let fuel_to_finish = match (laps_to_finish, fuel_per_lap) {
        (Some(n), Some(f)) => Some(n * f),
        _ => None,
    };
    let fuel_to_add = match (fuel_to_finish, fuel_per_lap) {
        (Some(need), Some(f)) => Some((need + opts.reserve_laps * f - fuel_level_l).max(0.0)),
        _ => None,
    };
    let stint_laps = match (tank_capacity_l, fuel_per_lap) {
        (Some(cap), Some(f)) if f > 0.0 => Some(cap / f),
        _ => None,
    };
    let stops_needed = match (fuel_to_add, tank_capacity_l) {
        (Some(add), Some(cap)) if cap > 0.0 => Some((add / cap).ceil() as u32),
        (Some(add), None) => Some(u32::from(add > 0.0)),
        _ => None,
    };
    let pit_window = match (fuel_to_add, laps_of_fuel, laps_to_finish) {
        (Some(add), Some(left), Some(to_go)) if add > 0.0 => {
            let latest = left.floor().max(0.0) as u32;
            let earliest = match stint_laps {
                Some(stint) => (to_go - stint + opts.reserve_laps).ceil().max(0.0) as u32,
                None => 0,
            };
            Some(PitWindow { earliest: earliest.min(latest), latest })
        }
        _ => None,
    };
    Strategy {
        fuel_per_lap_l: fuel_per_lap,
        fuel_level_l,
        laps_of_fuel,
        laps_to_finish,
        fuel_to_finish_l: fuel_to_finish,
        fuel_to_add_l: fuel_to_add,
        stint_laps,
        stops_needed,
        pit_window,
        fuel_alarm,
        tyres: tyre_trend(laps),
    }
}
