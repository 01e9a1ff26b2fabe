//! Lap timing of a recording: the rows are grouped by their `Lap` value, and each lap's start,
//! end and time come from the shared lap timer (`pitbox_schema::timing`), the same code the runtime
//! times live laps with: the line crossing interpolated from `LapDistPct` (unwrapped across the
//! line, never clamped), and iRacing's own `LapLastLapTime` when it is published for the lap.
//! The uninterpolated row time and iRacing's figure are kept beside it. Reads no env vars.

use std::collections::HashMap;

use pitbox_schema::timing::{LapTimer, LapTiming, TimingPoint};

use super::error::IbtError;
use super::source::Source;
use super::Ibt;

/// The channels lap timing needs, from one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LapPoint {
    /// `SessionTime`, seconds.
    pub session_time: f64,
    /// `Lap`.
    pub lap: i32,
    /// `LapDistPct`, when recorded.
    pub lap_dist_pct: Option<f32>,
    /// `LapLastLapTime`, when recorded.
    pub last_lap_time: Option<f32>,
}

/// One lap of a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct LapTime {
    /// The `Lap` value.
    pub lap: i32,
    /// First and last row on this lap.
    pub first_row: usize,
    pub last_row: usize,
    /// `SessionTime` of the line crossing that started the lap (interpolated), if recorded.
    pub start: Option<f64>,
    /// `SessionTime` of the crossing that ended it, if recorded.
    pub end: Option<f64>,
    /// Line to line, for a complete lap (both crossings seen): iRacing's own figure when it
    /// published one that agrees with the interpolated crossings, else the interpolated time.
    pub time: Option<f64>,
    /// The same without interpolation: `SessionTime` difference of the rows where `Lap` changed.
    pub row_time: Option<f64>,
    /// iRacing's `LapLastLapTime` for this lap, when it was published before the recording ended.
    pub reported: Option<f32>,
}

impl LapTime {
    /// Both ends of the lap are in the recording.
    pub fn is_complete(&self) -> bool {
        self.time.is_some()
    }
}

/// The shared timer's laps, by `Lap` value.
fn timings(points: &[LapPoint]) -> HashMap<i32, LapTiming> {
    let publishes = points.iter().any(|p| p.last_lap_time.is_some());
    let mut timer = if publishes { LapTimer::new() } else { LapTimer::interpolated_only() };
    let mut out = HashMap::new();
    for p in points {
        let step = timer.push(TimingPoint {
            time: p.session_time,
            lap: p.lap,
            pct: p.lap_dist_pct,
            reported: p.last_lap_time,
        });
        out.extend(step.finalized.into_iter().map(|t| (t.lap, t)));
    }
    out.extend(timer.flush().into_iter().map(|t| (t.lap, t)));
    out
}

/// Splits the points into laps (see the module docs).
pub fn laps_from_points(points: &[LapPoint]) -> Vec<LapTime> {
    let timed = timings(points);
    let mut starts: Vec<usize> = vec![0];
    starts.extend(
        (1..points.len()).filter(|&i| points.get(i).map(|p| p.lap) != points.get(i - 1).map(|p| p.lap)),
    );
    let mut laps = Vec::with_capacity(starts.len());
    let mut previous_end: Option<f64> = None;
    for (k, &first) in starts.iter().enumerate() {
        let Some(point) = points.get(first) else { continue };
        let next = starts.get(k + 1).copied();
        let last_row = next.map_or(points.len().saturating_sub(1), |n| n - 1);
        let timing = timed.get(&point.lap).filter(|_| first > 0);
        let start = timing.map(|t| t.start).or(previous_end.filter(|_| first > 0));
        let end = timing.map(|t| t.end);
        previous_end = end;
        let time = timing.map(|t| t.time);
        let row_time = next
            .and_then(|n| Some(points.get(n)?.session_time - point.session_time))
            .filter(|_| timing.is_some());
        // iRacing publishes LapLastLapTime a little after the crossing: take the value at the end
        // of the following lap, if it changed during it
        let reported = next.filter(|_| timing.is_some()).and_then(|n| {
            let following_end = starts.get(k + 2).map_or(points.len().saturating_sub(1), |m| m - 1);
            let at_crossing = points.get(n)?.last_lap_time;
            let later = points.get(following_end)?.last_lap_time?;
            (later > 0.0 && later.is_finite() && Some(later) != at_crossing).then_some(later)
        });
        laps.push(LapTime {
            lap: point.lap,
            first_row: first,
            last_row,
            start,
            end,
            time,
            row_time,
            reported,
        });
    }
    laps
}

/// The laps of a recording (empty when it has no `Lap` or `SessionTime` channel).
pub fn laps<S: Source>(ibt: &Ibt<S>) -> Result<Vec<LapTime>, IbtError> {
    let (Some(time_var), Some(lap_var)) = (ibt.var("SessionTime"), ibt.var("Lap")) else {
        return Ok(Vec::new());
    };
    let (pct_var, last_var) = (ibt.var("LapDistPct"), ibt.var("LapLastLapTime"));
    let mut points = Vec::with_capacity(ibt.record_count());
    for row in ibt.rows() {
        let row = row?;
        let f32_of =
            |var: Option<&super::VarHeader>| var.and_then(|v| row.value(v, 0)).map(|v| v.as_f64() as f32);
        let (Some(time), Some(lap)) = (row.value(time_var, 0), row.value(lap_var, 0)) else { continue };
        points.push(LapPoint {
            session_time: time.as_f64(),
            lap: lap.as_i64().and_then(|l| i32::try_from(l).ok()).unwrap_or(lap.as_f64() as i32),
            lap_dist_pct: f32_of(pct_var),
            last_lap_time: f32_of(last_var),
        });
    }
    Ok(laps_from_points(&points))
}
