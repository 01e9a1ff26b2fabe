//! Lap timing from the rows of a recording: a lap starts at the row where `Lap` goes up and ends
//! where it goes up again. The row where `Lap` changes is up to one tick (1/60 s) from the real
//! line crossing, and iRacing sometimes bumps `Lap` a tick or two before `LapDistPct` wraps, so
//! each boundary is refined to the interpolated moment `LapDistPct` crosses 0 near that row (the
//! same approach as the runtime's lap assembly). Both times are kept, with `LapLastLapTime` as
//! iRacing reported it. Reads no env vars.

use super::error::IbtError;
use super::source::Source;
use super::Ibt;

/// How far (rows) from the `Lap` change to look for the `LapDistPct` wrap.
const CROSSING_WINDOW: usize = 60;

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
    /// `end - start` for a complete lap (both crossings seen, `Lap` went up by one).
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

/// `LapDistPct` with the few-ten-thousandths negative values just before the line folded to
/// just under 1; `None` when unusable.
fn folded(pct: Option<f32>) -> Option<f64> {
    let p = f64::from(pct?);
    match p {
        p if (-0.1..0.0).contains(&p) => Some(p + 1.0),
        p if (0.0..=1.0).contains(&p) => Some(p),
        _ => None,
    }
}

/// The moment near row `at` (where `Lap` changed) when `LapDistPct` wrapped from ~1 to ~0,
/// interpolated between the two rows around it; the row's own time when there is no wrap.
fn crossing_time(points: &[LapPoint], at: usize) -> f64 {
    let row_time = points.get(at).map_or(0.0, |p| p.session_time);
    let lo = at.saturating_sub(CROSSING_WINDOW).max(1);
    let hi = (at + CROSSING_WINDOW).min(points.len().saturating_sub(1));
    let wrap = (lo..=hi)
        .filter_map(|k| {
            let (before, after) = (points.get(k - 1)?, points.get(k)?);
            let (p0, p1) = (folded(before.lap_dist_pct)?, folded(after.lap_dist_pct)?);
            (p0 >= 0.9 && p1 <= 0.1).then_some((k.abs_diff(at), before, after, p0, p1))
        })
        .min_by_key(|&(distance, ..)| distance);
    let Some((_, before, after, p0, p1)) = wrap else { return row_time };
    let span = (1.0 - p0) + p1;
    let f = if span > 0.0 { ((1.0 - p0) / span).clamp(0.0, 1.0) } else { 0.0 };
    let t = before.session_time + f * (after.session_time - before.session_time);
    if t.is_finite() {
        t
    } else {
        row_time
    }
}

/// Splits the points into laps (see the module docs).
pub fn laps_from_points(points: &[LapPoint]) -> Vec<LapTime> {
    let mut starts: Vec<usize> = vec![0];
    starts.extend(
        (1..points.len()).filter(|&i| points.get(i).map(|p| p.lap) != points.get(i - 1).map(|p| p.lap)),
    );
    let mut laps = Vec::with_capacity(starts.len());
    for (k, &first) in starts.iter().enumerate() {
        let Some(point) = points.get(first) else { continue };
        let next = starts.get(k + 1).copied();
        let last_row = next.map_or(points.len().saturating_sub(1), |n| n - 1);
        // the lap began at a line crossing (the previous row was on the lap before)
        let began =
            first > 0 && points.get(first - 1).is_some_and(|p| p.lap.checked_add(1) == Some(point.lap));
        let ended = next.and_then(|n| points.get(n)).is_some_and(|p| point.lap.checked_add(1) == Some(p.lap));
        let start = (first > 0).then(|| crossing_time(points, first));
        let end = next.map(|n| crossing_time(points, n));
        let complete = began && ended;
        let time = start.zip(end).filter(|_| complete).map(|(s, e)| e - s);
        let row_time =
            next.and_then(|n| Some(points.get(n)?.session_time - point.session_time)).filter(|_| complete);
        // iRacing publishes LapLastLapTime a little after the crossing: take the value at the end
        // of the following lap, if it changed during it
        let reported = next.filter(|_| complete).and_then(|n| {
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
