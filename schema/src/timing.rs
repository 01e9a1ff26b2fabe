//! Lap timing: the one implementation of where a lap starts and ends, shared by the driver node
//! (`inspect`, replays) and the runtime (live lap assembly), and built for every target (serde only).
//! Reads no environment variables.
//!
//! A lap ends where the car crosses the line, i.e. where `LapDistPct` passes 0. iRacing publishes
//! `LapDistPct` slightly below 0 for a few frames after its wrap (and some sources slightly above 1
//! before it), so positions are *unwrapped*, never clamped: a value just below 0 that follows one
//! just below 1 is read as just below 1.0 of the lap being finished, and the crossing is
//! interpolated in `SessionTime` between the two frames on either side of 1.0. The `Lap` counter
//! only numbers laps (it can tick a frame or two before or after the crossing); when a source has
//! no usable lap distance, a counter change is the boundary.
//!
//! iRacing times a lap on its own physics clock and publishes the result in `LapLastLapTime` a
//! few frames after the line. A completed lap waits (at most [`REPORT_WAIT_SECS`] of session time)
//! for the new value and, if it agrees with the interpolated time within [`REPORT_TOLERANCE_SECS`],
//! the sim's figure is the lap time; the next lap then starts where this one ended, so consecutive
//! laps still add up. A source that has never published a lap time by the time its first lap has
//! waited in vain gets the interpolated time at once from then on.

use serde::{Deserialize, Serialize};

/// Equal-length sectors, until a track's own split points are known.
pub const SECTORS: usize = 3;
/// How long (session seconds) a completed lap waits for the sim's own lap time.
pub const REPORT_WAIT_SECS: f64 = 1.5;
/// A published lap time further than this from the interpolated one is not this lap's.
pub const REPORT_TOLERANCE_SECS: f64 = 0.1;
/// A lap distance jump larger than this between two frames is a wrap (or a reset), not driving.
const WRAP_JUMP: f64 = 0.5;
/// Frames further apart than this (session seconds) cannot be timed across: the lap in progress
/// is dropped (a shorter gap only makes the lap invalid, which the lap assembler decides).
pub const MAX_GAP_SECS: f64 = 5.0;
/// A first frame this close past the line (fraction of a lap, ~1 m on a 7 km track) starts a lap.
const AT_LINE: f64 = 1.5e-4;

/// What lap timing needs from one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimingPoint {
    /// Seconds on the session clock (`SessionTime`).
    pub time: f64,
    /// The lap counter (`Lap`).
    pub lap: i32,
    /// `LapDistPct`, as published (may be slightly below 0 or above 1); `None` when the source
    /// has none.
    pub pct: Option<f32>,
    /// `LapLastLapTime`, when the source publishes it.
    pub reported: Option<f32>,
}

/// A completed lap's timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LapTiming {
    /// The counter value of the lap.
    pub lap: i32,
    /// Session time of the line crossing that started it.
    pub start: f64,
    /// Session time of the crossing that ended it (`start + time`).
    pub end: f64,
    /// Seconds, line to line.
    pub time: f64,
    /// Seconds per sector; they add up to `time`.
    pub sectors: Vec<f64>,
    /// The time is the sim's own (`LapLastLapTime`) rather than interpolated.
    pub from_sim: bool,
    /// The interpolated time, kept beside the sim's for comparison.
    pub interpolated: f64,
}

/// What one frame did to the lap in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// Still the same lap.
    Same,
    /// The line was crossed before this frame: the frame belongs to a new lap. `whole`: the lap
    /// that ended had its start seen, so its timing will follow in `finalized` (now or later).
    Crossed { whole: bool },
    /// Timing was lost (session clock or counter went back, a long gap in the data): the frame
    /// starts a lap whose start is unknown; nothing ends.
    Reset,
}

/// The result of one [`LapTimer::push`].
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub boundary: Boundary,
    /// Laps whose timing became final with this frame, oldest first (they follow the order of
    /// `Crossed { whole: true }` boundaries).
    pub finalized: Vec<LapTiming>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pending {
    lap: i32,
    start: f64,
    end: f64,
    marks: Vec<f64>,
    /// Session time of the crossing.
    crossed_at: f64,
    /// `LapLastLapTime` before the crossing (the previous lap's figure).
    baseline: Option<f32>,
}

impl Pending {
    fn finish(self, sim: Option<f64>) -> LapTiming {
        let interpolated = self.end - self.start;
        let (time, from_sim) = match sim {
            Some(t) => (t, true),
            None => (interpolated, false),
        };
        let end = self.start + time;
        let mut sectors = Vec::with_capacity(self.marks.len() + 1);
        let mut from = self.start;
        for &m in self.marks.iter().filter(|&&m| m < end) {
            sectors.push(m - from);
            from = m;
        }
        sectors.push(end - from);
        LapTiming { lap: self.lap, start: self.start, end, time, sectors, from_sim, interpolated }
    }
}

/// Streaming lap timer: feed frames in order, get lap boundaries and final lap timings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LapTimer {
    /// Counter value of the lap in progress (`None` before the first frame).
    lap: Option<i32>,
    /// Session time the lap in progress started, if its start was seen.
    start: Option<f64>,
    /// Sector boundaries crossed in the lap in progress.
    marks: Vec<f64>,
    /// Previous frame: time, published lap distance, and its unwrapped position in the lap.
    prev: Option<(f64, f64, f64)>,
    /// Added to the published lap distance: 1 after it wrapped but before the line is crossed.
    offset: f64,
    /// The counter went up just before the line: the lap ends at the coming crossing.
    counter_ahead: Option<i32>,
    /// `LapLastLapTime` of the previous frame.
    last_reported: Option<f32>,
    /// Whether the source publishes its own lap times: unknown until it does, or until a lap
    /// waited in vain. Only a source that may publish makes a lap wait.
    publishes: Option<bool>,
    pending: Vec<Pending>,
}

fn interpolate(t0: f64, u0: f64, t1: f64, u1: f64, at: f64) -> f64 {
    let span = u1 - u0;
    if span <= f64::EPSILON {
        return t1;
    }
    t0 + (t1 - t0) * ((at - u0) / span).clamp(0.0, 1.0)
}

impl LapTimer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A timer for a source known not to publish its own lap times (e.g. a recording without
    /// `LapLastLapTime`): laps are final at the line.
    pub fn interpolated_only() -> Self {
        Self { publishes: Some(false), ..Self::default() }
    }

    /// The counter value of the lap in progress.
    pub fn current_lap(&self) -> Option<i32> {
        self.lap
    }

    /// Session time at which the lap in progress started, if its start was seen.
    pub fn lap_start(&self) -> Option<f64> {
        self.start
    }

    /// Whether the lap in progress started at a line crossing that was seen.
    pub fn lap_is_whole(&self) -> bool {
        self.start.is_some()
    }

    /// Finalizes every waiting lap with its interpolated time (the source ended).
    pub fn flush(&mut self) -> Vec<LapTiming> {
        self.pending.drain(..).map(|p| p.finish(None)).collect()
    }

    fn begin(&mut self, lap: i32, start: Option<f64>) {
        self.lap = Some(lap);
        self.start = start;
        self.marks.clear();
        self.counter_ahead = None;
    }

    fn reset(&mut self, p: &TimingPoint, out: &mut Vec<LapTiming>) -> Boundary {
        out.extend(self.flush());
        self.begin(p.lap, None);
        self.offset = 0.0;
        Boundary::Reset
    }

    /// Feeds the next frame.
    pub fn push(&mut self, p: TimingPoint) -> Step {
        let mut finalized = Vec::new();
        let pct = p.pct.map(f64::from).filter(|v| v.is_finite() && (-0.5..=1.5).contains(v));
        let boundary = self.advance(&p, pct, &mut finalized);
        if p.reported.is_some_and(|r| r > 0.0) {
            self.publishes = Some(true);
        }
        self.settle(&p, &mut finalized);
        self.last_reported = p.reported;
        Step { boundary, finalized }
    }

    fn advance(&mut self, p: &TimingPoint, pct: Option<f64>, out: &mut Vec<LapTiming>) -> Boundary {
        let (Some(cur), Some((t0, raw0, u0))) = (self.lap, self.prev) else {
            // First frame: a lap is only whole if it is joined at the line.
            let start = pct.filter(|&v| (0.0..AT_LINE).contains(&v)).map(|_| p.time);
            self.begin(p.lap, start);
            // Just short of the line after the wrap: the line is still ahead.
            self.offset = if pct.is_some_and(|v| v < 0.0) { 1.0 } else { 0.0 };
            self.prev = Some((p.time, pct.unwrap_or(0.0), pct.unwrap_or(0.0) + self.offset));
            return Boundary::Same;
        };
        if p.time + 1e-9 < t0 || p.time - t0 > MAX_GAP_SECS {
            // The session clock went back (a new sim session), or frames are missing for too long
            // to know where the line was crossed.
            self.prev = None;
            let b = self.reset(p, out);
            self.prev = Some((p.time, pct.unwrap_or(0.0), pct.unwrap_or(0.0)));
            return b;
        }
        let Some(raw) = pct else {
            // No lap distance: the counter is all there is.
            self.prev = Some((p.time, raw0, u0));
            if p.lap == cur + 1 {
                return self.cross(cur, p.lap, p.time, p.time);
            }
            if p.lap != cur {
                return self.reset(p, out);
            }
            return Boundary::Same;
        };
        if raw < raw0 - WRAP_JUMP {
            self.offset += 1.0;
        } else if raw > raw0 + WRAP_JUMP {
            // Backwards over the line (or a reset to the pits): timing of this lap is lost.
            self.prev = Some((p.time, raw, raw));
            return self.reset(p, out);
        }
        let u = raw + self.offset;
        self.prev = Some((p.time, raw, u));
        if p.lap < cur {
            self.prev = Some((p.time, raw, raw));
            return self.reset(p, out);
        }
        if u0 < 1.0 && u >= 1.0 {
            let at = interpolate(t0, u0, p.time, u, 1.0);
            self.offset -= 1.0;
            self.prev = Some((p.time, raw, u - 1.0));
            let next = p.lap.max(cur + 1).max(self.counter_ahead.unwrap_or(i32::MIN));
            return self.cross(cur, next, at, p.time);
        }
        if p.lap > cur {
            if u > 1.0 - 0.1 || raw < 0.1 {
                // The counter ticked a frame or two before the line: the lap ends at the crossing.
                self.counter_ahead = Some(p.lap);
            } else {
                // The counter moved with the car far from the line: the sim reset the lap.
                return self.reset(p, out);
            }
        }
        // Sector boundaries crossed between the two frames.
        let done = self.marks.len();
        if done + 1 < SECTORS {
            let b = (done + 1) as f64 / SECTORS as f64;
            if u0 < b && u >= b {
                self.marks.push(interpolate(t0, u0, p.time, u, b));
            }
        }
        Boundary::Same
    }

    fn cross(&mut self, cur: i32, next: i32, at: f64, now: f64) -> Boundary {
        let whole = self.start.is_some();
        if let Some(start) = self.start {
            self.pending.push(Pending {
                lap: cur,
                start,
                end: at,
                marks: std::mem::take(&mut self.marks),
                crossed_at: now,
                baseline: self.last_reported,
            });
        }
        self.begin(next, Some(at));
        Boundary::Crossed { whole }
    }

    /// Finalizes waiting laps: with the sim's published time when it arrived, with the
    /// interpolated one when it cannot come (no such channel, waited long enough, another lap
    /// completed).
    fn settle(&mut self, p: &TimingPoint, out: &mut Vec<LapTiming>) {
        while let Some(first) = self.pending.first() {
            let more_waiting = self.pending.len() > 1;
            let interpolated = first.end - first.start;
            let published = p
                .reported
                .map(f64::from)
                .filter(|&r| r > 0.0 && p.reported != first.baseline)
                .filter(|&r| (r - interpolated).abs() <= REPORT_TOLERANCE_SECS);
            let waited = p.time - first.crossed_at > REPORT_WAIT_SECS;
            let sim = match published {
                Some(r) => Some(r),
                None if self.publishes == Some(false) => None,
                None if more_waiting || waited => {
                    // Nothing came: a source that never published does not make laps wait again.
                    self.publishes.get_or_insert(false);
                    None
                }
                None => return,
            };
            let done = self.pending.remove(0).finish(sim);
            if sim.is_some() && self.pending.is_empty() && self.start.is_some() {
                // The next lap starts where this one ended on the sim's clock.
                self.start = Some(done.end);
            }
            out.push(done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(time: f64, lap: i32, pct: f32) -> TimingPoint {
        TimingPoint { time, lap, pct: Some(pct), reported: None }
    }

    /// Laps of `lap_time` at 60 Hz from the line; the counter ticks `early` frames before the wrap.
    fn drive(laps: i32, lap_time: f64) -> Vec<LapTiming> {
        let mut t = LapTimer::interpolated_only();
        let mut out = vec![];
        let dt = 1.0 / 60.0;
        let n = (f64::from(laps) * lap_time / dt) as usize + 2;
        for i in 0..n {
            let time = i as f64 * dt;
            let d = time / lap_time;
            out.extend(t.push(pt(time, d.floor() as i32 + 1, d.fract() as f32)).finalized);
        }
        out
    }

    #[test]
    fn laps_from_the_line() {
        let laps = drive(3, 90.0);
        assert_eq!(laps.len(), 3);
        for (i, l) in laps.iter().enumerate() {
            assert_eq!(l.lap, i as i32 + 1);
            assert!((l.time - 90.0).abs() < 1e-3, "{}", l.time);
            assert_eq!(l.sectors.len(), SECTORS);
            assert!((l.sectors.iter().sum::<f64>() - l.time).abs() < 1e-9);
            assert!((l.sectors[0] - 30.0).abs() < 1e-3);
            assert!(!l.from_sim);
        }
    }

    #[test]
    fn negative_distance_after_the_wrap_is_before_the_line() {
        // As in a real recording: 0.99954 → -0.00024 (counter ticks) → -0.00002 → 0.00020.
        let mut t = LapTimer::interpolated_only();
        t.push(pt(0.0, 1, 0.0));
        t.push(pt(1.0, 1, 0.4));
        t.push(pt(2.0, 1, 0.8));
        assert_eq!(t.push(pt(3.0, 1, 0.99954)).boundary, Boundary::Same);
        assert_eq!(t.push(pt(3.1, 2, -0.00024)).boundary, Boundary::Same);
        assert_eq!(t.push(pt(3.2, 2, -0.00002)).boundary, Boundary::Same);
        let s = t.push(pt(3.3, 2, 0.00020));
        assert_eq!(s.boundary, Boundary::Crossed { whole: true });
        let lap = &s.finalized[0];
        // 1.0 is crossed 2/22 of the way from 3.2 to 3.3.
        assert!((lap.end - (3.2 + 0.1 * 0.00002 / 0.00022)).abs() < 1e-4, "{}", lap.end);
        assert_eq!(lap.lap, 1);
        assert_eq!(t.current_lap(), Some(2));
    }

    #[test]
    fn the_counter_lagging_or_leading_the_line_does_not_matter() {
        let mut t = LapTimer::interpolated_only();
        t.push(pt(0.0, 1, 0.0));
        t.push(pt(1.0, 1, 0.5));
        t.push(pt(1.9, 1, 0.98));
        // Counter ahead of the line.
        assert_eq!(t.push(pt(2.0, 2, 0.99)).boundary, Boundary::Same);
        let s = t.push(pt(2.1, 2, 0.01));
        assert_eq!(s.finalized[0].lap, 1);
        assert!((s.finalized[0].time - 2.05).abs() < 1e-6);
        // Counter behind the line: the wrap completes lap 2, the late tick to 3 is no lap.
        t.push(pt(3.0, 2, 0.5));
        t.push(pt(3.9, 2, 0.99));
        let s = t.push(pt(4.0, 2, 0.003));
        assert_eq!(s.finalized.len(), 1);
        assert_eq!(s.finalized[0].lap, 2);
        assert!(t.push(pt(4.1, 3, 0.006)).finalized.is_empty());
        assert_eq!(t.current_lap(), Some(3));
    }

    #[test]
    fn joining_mid_lap_gives_no_lap_and_a_reset_gives_none() {
        let mut t = LapTimer::interpolated_only();
        t.push(pt(10.0, 1, 0.95));
        let s = t.push(pt(10.1, 2, 0.01));
        assert_eq!(s.boundary, Boundary::Crossed { whole: false });
        assert!(s.finalized.is_empty());
        // Session clock back: reset.
        assert_eq!(t.push(pt(5.0, 2, 0.2)).boundary, Boundary::Reset);
        assert!(!t.lap_is_whole());
        // Counter back.
        t.push(pt(6.0, 2, 0.3));
        assert_eq!(t.push(pt(6.1, 1, 0.3)).boundary, Boundary::Reset);
    }

    #[test]
    fn the_sims_own_time_is_taken_when_it_arrives() {
        let mut t = LapTimer::new();
        let r = |time, lap, pct, reported| TimingPoint { time, lap, pct: Some(pct), reported };
        t.push(r(0.0, 1, 0.0, Some(31.0)));
        t.push(r(1.0, 1, 0.5, Some(31.0)));
        t.push(r(1.9, 1, 0.99, Some(31.0)));
        let s = t.push(r(2.0, 2, 0.001, Some(31.0)));
        assert_eq!(s.boundary, Boundary::Crossed { whole: true });
        assert!(s.finalized.is_empty(), "waits for the sim's figure");
        let s = t.push(r(2.1, 2, 0.004, Some(1.998)));
        let lap = &s.finalized[0];
        assert!(lap.from_sim);
        assert!((lap.time - f64::from(1.998_f32)).abs() < 1e-9);
        assert!((lap.sectors.iter().sum::<f64>() - lap.time).abs() < 1e-9);
        // The next lap starts where the sim's lap ended.
        t.push(r(3.0, 2, 0.5, Some(1.998)));
        t.push(r(3.9, 2, 0.99, Some(1.998)));
        t.push(r(4.0, 3, 0.001, Some(1.998)));
        // No new figure within the wait: interpolated.
        let mut last = vec![];
        for i in 1..=100 {
            last.extend(t.push(r(4.0 + f64::from(i) * 0.1, 3, 0.01, Some(1.998))).finalized);
        }
        assert_eq!(last.len(), 1);
        assert!(!last[0].from_sim);
        assert!((last[0].start - lap.end).abs() < 1e-12);
    }

    #[test]
    fn a_source_that_never_publishes_waits_once() {
        let mut t = LapTimer::new();
        t.push(pt(0.0, 1, 0.0));
        t.push(pt(1.0, 1, 0.5));
        t.push(pt(1.9, 1, 0.99));
        assert!(t.push(pt(2.0, 2, 0.001)).finalized.is_empty());
        let s = t.push(pt(3.6, 2, 0.08));
        assert_eq!(s.finalized.len(), 1, "given up after the wait");
        t.push(pt(4.5, 2, 0.5));
        t.push(pt(4.9, 2, 0.99));
        assert_eq!(t.push(pt(5.0, 3, 0.001)).finalized.len(), 1, "no more waiting");
        // A figure far from the interpolated time is another lap's: ignored.
        let mut t = LapTimer::new();
        let r = |time, lap, pct, reported| TimingPoint { time, lap, pct: Some(pct), reported };
        t.push(r(0.0, 1, 0.0, Some(50.0)));
        t.push(r(1.0, 1, 0.5, Some(50.0)));
        t.push(r(1.9, 1, 0.99, Some(50.0)));
        t.push(r(2.0, 2, 0.001, Some(50.0)));
        let s = t.push(r(2.1, 2, 0.004, Some(44.0)));
        assert!(s.finalized.is_empty());
        let s = t.push(r(3.6, 2, 0.08, Some(44.0)));
        assert!(!s.finalized[0].from_sim);
    }

    #[test]
    fn a_long_gap_loses_the_lap_instead_of_timing_across_it() {
        let mut t = LapTimer::interpolated_only();
        t.push(pt(0.0, 1, 0.0));
        t.push(pt(10.0, 1, 0.5));
        t.push(pt(14.0, 1, 0.7));
        // Yesterday's last frame, then today's first: no lap from one to the other.
        assert_eq!(t.push(pt(3000.0, 1, 0.95)).boundary, Boundary::Reset);
        let s = t.push(pt(3000.1, 2, 0.001));
        assert_eq!(s.boundary, Boundary::Crossed { whole: false });
        assert!(s.finalized.is_empty());
    }

    #[test]
    fn no_distance_channel_uses_the_counter() {
        let mut t = LapTimer::interpolated_only();
        let c = |time, lap| TimingPoint { time, lap, pct: None, reported: None };
        t.push(c(0.0, 1));
        assert_eq!(t.push(c(1.0, 2)).boundary, Boundary::Crossed { whole: false });
        for i in 1..=60 {
            t.push(c(1.0 + f64::from(i), 2));
        }
        let s = t.push(c(61.5, 3));
        assert!((s.finalized[0].time - 60.5).abs() < 1e-9);
    }
}
