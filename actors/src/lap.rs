//! Lap assembly: turns a driver's stream of telemetry frames into completed laps with all their
//! channels, lap time, sector times, fuel used and validity. Pure logic with no I/O, owned by the
//! driver's live state so it can be checkpointed and restored. Reads no environment variables.
//!
//! A lap completes when the `lap` counter goes up or, for sources whose counter lags, when the
//! lap distance wraps from the end of the lap to its start. The crossing time is interpolated
//! between the two frames around the line, so lap times do not jitter by a frame (16.7 ms).

use schema::wire::{TelemetryFrame, TelemetrySample};
use serde::{Deserialize, Serialize};

/// Number of equal-length sectors used until the track's own split points are known.
pub const DEFAULT_SECTORS: usize = 3;
/// A gap in the data longer than this (seconds of session time) makes the lap invalid.
const MAX_GAP_SECS: f64 = 0.5;
/// Frames kept for one lap at most (15 minutes at 60 Hz); a longer "lap" is a car parked in the
/// pits, and keeping it would only grow memory.
const MAX_FRAMES: usize = 60 * 60 * 15;

/// A lap that has just been completed.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletedLap {
    pub lap_number: i32,
    /// Seconds, line to line.
    pub lap_time: f64,
    pub valid: bool,
    /// Litres, when the tank level fell over the lap.
    pub fuel_used: Option<f64>,
    pub sector_times: Vec<f64>,
    pub frames: Vec<TelemetryFrame>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LapAssembler {
    /// Lap number being assembled (`None` until the first frame).
    current: Option<i32>,
    /// Session time at which the current lap started, if its start was seen.
    start_time: Option<f64>,
    /// Session time each sector boundary of the current lap was crossed.
    sector_marks: Vec<f64>,
    valid: bool,
    #[serde(skip)]
    frames: Vec<TelemetryFrame>,
    overflowed: bool,
    last: Option<(f64, f32)>,
    /// The lap counter already went up; the lap ends at the coming distance wrap.
    counter_ahead: Option<i32>,
    /// Laps completed so far, and the best valid lap time: the state a restart must keep.
    pub laps_completed: u32,
    pub best_lap: Option<f64>,
}

fn crossing(prev: (f64, f32), now: (f64, f32), at: f32) -> f64 {
    // Interpolate session time at lap distance `at`, where `now` may have wrapped past 1.0.
    let (t0, p0) = prev;
    let (t1, mut p1) = now;
    if p1 < p0 {
        p1 += 1.0;
    }
    let span = f64::from(p1 - p0);
    if span <= f64::EPSILON {
        return t1;
    }
    let mut target = f64::from(at);
    if target < f64::from(p0) {
        target += 1.0;
    }
    t0 + (t1 - t0) * ((target - f64::from(p0)) / span).clamp(0.0, 1.0)
}

impl LapAssembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Laps completed and best lap, for a checkpoint.
    pub fn summary(&self) -> (u32, Option<f64>) {
        (self.laps_completed, self.best_lap)
    }

    /// Restores counters after a restart; the partial lap in progress is not trusted.
    pub fn restore(laps_completed: u32, best_lap: Option<f64>) -> Self {
        Self { laps_completed, best_lap, ..Self::default() }
    }

    fn start_lap(&mut self, lap: i32, start_time: Option<f64>) {
        self.current = Some(lap);
        self.start_time = start_time;
        self.sector_marks.clear();
        self.valid = start_time.is_some();
        self.frames.clear();
        self.overflowed = false;
        self.counter_ahead = None;
    }

    /// Feeds one frame; returns the lap it completed, if any.
    pub fn push(&mut self, frame: TelemetryFrame) -> Option<CompletedLap> {
        let s: &TelemetrySample = &frame.sample;
        let now = (s.session_time, s.track_position.clamp(0.0, 1.0));
        let lap = s.lap;
        let mut completed = None;

        match (self.current, self.last) {
            (None, _) | (_, None) => {
                // First frame: a lap is only whole if we join it at the line.
                let at_line = now.1 < 0.02;
                self.start_lap(lap, at_line.then_some(now.0));
            }
            (Some(cur), Some(prev)) => {
                if now.0 + 1e-9 < prev.0 {
                    // Session time went backwards: a new sim session. Start over, keep counters.
                    self.start_lap(lap, None);
                } else {
                    let wrapped = prev.1 > 0.9 && now.1 < 0.1;
                    if lap > cur && !wrapped && now.1 > 0.9 {
                        // The counter ticked a frame or two before the distance wrapped (iRacing
                        // does this): time the lap at the wrap, where the line really is.
                        self.counter_ahead = Some(lap);
                    } else if lap > cur || wrapped && (lap == cur || self.counter_ahead.is_some()) {
                        let line = crossing(prev, now, 0.0);
                        completed = self.finish(cur, line);
                        let next = lap.max(cur + 1).max(self.counter_ahead.take().unwrap_or(0));
                        self.start_lap(next, Some(line));
                    } else if lap < cur {
                        // Counter went down (reset to pits, new session): not a lap.
                        self.start_lap(lap, None);
                    } else {
                        if now.0 - prev.0 > MAX_GAP_SECS {
                            self.valid = false;
                        }
                        // Sector boundaries crossed between the two frames.
                        let done = self.sector_marks.len();
                        if done + 1 < DEFAULT_SECTORS {
                            let boundary = (done + 1) as f32 / DEFAULT_SECTORS as f32;
                            if prev.1 < boundary && now.1 >= boundary {
                                self.sector_marks.push(crossing(prev, now, boundary));
                            }
                        }
                    }
                }
            }
        }

        if frame.sample.on_pit_road {
            self.valid = false;
        }
        self.last = Some(now);
        if self.frames.len() < MAX_FRAMES {
            self.frames.push(frame);
        } else {
            self.overflowed = true;
            self.valid = false;
        }
        completed
    }

    fn finish(&mut self, lap_number: i32, end: f64) -> Option<CompletedLap> {
        let start = self.start_time?;
        if self.overflowed {
            return None;
        }
        let lap_time = end - start;
        if !(lap_time.is_finite() && lap_time > 1.0) {
            return None;
        }
        let frames = std::mem::take(&mut self.frames);
        let valid = self.valid && self.sector_marks.len() + 1 == DEFAULT_SECTORS;
        let mut sector_times = Vec::with_capacity(DEFAULT_SECTORS);
        let mut from = start;
        for &mark in &self.sector_marks {
            sector_times.push(mark - from);
            from = mark;
        }
        sector_times.push(end - from);
        let fuel_used = match (frames.first(), frames.last()) {
            (Some(a), Some(b)) if a.sample.fuel_level > b.sample.fuel_level => {
                Some(f64::from(a.sample.fuel_level - b.sample.fuel_level))
            }
            _ => None,
        };
        self.laps_completed += 1;
        if valid && self.best_lap.is_none_or(|b| lap_time < b) {
            self.best_lap = Some(lap_time);
        }
        Some(CompletedLap { lap_number, lap_time, valid, fuel_used, sector_times, frames })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn frame(t: f64, lap: i32, pos: f32, fuel: f32) -> TelemetryFrame {
        TelemetryFrame {
            seq: None,
            timestamp: Utc.timestamp_opt(1_700_000_000, 0).single().unwrap(),
            sample: TelemetrySample {
                session_time: t,
                lap,
                track_position: pos,
                fuel_level: fuel,
                speed: 200.0,
                ..TelemetrySample::default()
            },
        }
    }

    /// Drives `laps` laps of `lap_time` seconds at 60 Hz, starting at the line.
    fn drive(asm: &mut LapAssembler, laps: i32, lap_time: f64) -> Vec<CompletedLap> {
        let mut out = vec![];
        let dt = 1.0 / 60.0;
        let total = (f64::from(laps) * lap_time / dt) as usize + 2;
        for i in 0..total {
            let t = i as f64 * dt;
            let dist = t / lap_time;
            let lap = dist.floor() as i32 + 1;
            let pos = dist.fract() as f32;
            if let Some(l) = asm.push(frame(t, lap, pos, 50.0 - (dist as f32))) {
                out.push(l);
            }
        }
        out
    }

    #[test]
    fn completes_laps_with_interpolated_times() {
        let mut asm = LapAssembler::new();
        let laps = drive(&mut asm, 3, 90.0);
        assert_eq!(laps.len(), 3);
        for (i, l) in laps.iter().enumerate() {
            assert_eq!(l.lap_number, i as i32 + 1);
            assert!((l.lap_time - 90.0).abs() < 0.01, "lap time {}", l.lap_time);
            assert!(l.valid);
            assert_eq!(l.sector_times.len(), 3);
            assert!((l.sector_times.iter().sum::<f64>() - l.lap_time).abs() < 1e-6);
            assert!((l.fuel_used.unwrap() - 1.0).abs() < 0.05);
            assert!((5390..=5410).contains(&l.frames.len()));
        }
        assert_eq!(asm.summary().0, 3);
        assert!((asm.summary().1.unwrap() - 90.0).abs() < 0.01);
    }

    #[test]
    fn joining_mid_lap_does_not_invent_a_lap() {
        let mut asm = LapAssembler::new();
        assert!(asm.push(frame(10.0, 1, 0.5, 40.0)).is_none());
        assert!(asm.push(frame(10.5, 1, 0.95, 40.0)).is_none());
        // Crossing the line completes lap 1, but its start was never seen.
        assert!(asm.push(frame(11.0, 2, 0.01, 40.0)).is_none());
        assert_eq!(asm.laps_completed, 0);
    }

    #[test]
    fn wrap_without_counter_change_completes_once() {
        let mut asm = LapAssembler::new();
        asm.push(frame(0.0, 1, 0.0, 40.0));
        asm.push(frame(30.0, 1, 0.34, 40.0));
        asm.push(frame(30.2, 1, 0.67, 40.0));
        asm.push(frame(60.0, 1, 0.99, 40.0));
        let l = asm.push(frame(60.1, 1, 0.01, 40.0)).expect("wrap completes the lap");
        assert_eq!(l.lap_number, 1);
        // The counter catching up a moment later is not a second lap.
        assert!(asm.push(frame(60.2, 2, 0.02, 40.0)).is_none());
        assert_eq!(asm.laps_completed, 1);
        // The gap between 0.0 and 30.0 made the lap invalid.
        assert!(!l.valid);
    }

    #[test]
    fn pit_road_invalidates() {
        let mut asm = LapAssembler::new();
        let mut laps = vec![];
        for i in 0..=(31 * 60) {
            let t = f64::from(i) / 60.0;
            let mut f = frame(t, 1 + (t / 30.0) as i32, ((t / 30.0) % 1.0) as f32, 40.0);
            f.sample.on_pit_road = i == 600;
            laps.extend(asm.push(f));
        }
        assert_eq!(laps.len(), 1);
        assert!(!laps[0].valid);
    }

    #[test]
    fn a_counter_that_ticks_early_is_timed_at_the_wrap() {
        let mut asm = LapAssembler::new();
        asm.push(frame(0.0, 1, 0.0, 40.0));
        asm.push(frame(10.0, 1, 0.34, 40.0));
        asm.push(frame(10.1, 1, 0.67, 40.0));
        asm.push(frame(20.0, 1, 0.97, 40.0));
        // Lap says 2 while the distance is still short of the line ...
        assert!(asm.push(frame(20.1, 2, 0.985, 40.0)).is_none());
        // ... and the distance wraps half-way between 20.1 and 20.2.
        let l = asm.push(frame(20.2, 2, 0.015, 40.0)).expect("completed at the wrap");
        assert_eq!(l.lap_number, 1);
        assert!((l.lap_time - 20.15).abs() < 1e-6, "{}", l.lap_time);
        assert_eq!(asm.laps_completed, 1);
        assert!(asm.push(frame(20.3, 2, 0.03, 40.0)).is_none());
    }

    #[test]
    fn restore_keeps_counters() {
        let asm = LapAssembler::restore(12, Some(88.5));
        assert_eq!(asm.summary(), (12, Some(88.5)));
    }
}
