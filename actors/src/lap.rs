//! Lap assembly: turns a driver's stream of telemetry frames into completed laps with all their
//! channels, lap time, sector times, fuel used, kind (flying, out-lap, in-lap) and validity with
//! its reasons. Where a lap starts and ends is decided by the shared lap timer
//! (`pitbox_schema::timing`), the same code the driver node's `inspect` uses, so both agree to the
//! millisecond. Pure logic with no I/O, owned by the driver's live state. Reads no env vars.
//!
//! Frames from the seed protocol carry no `sessionTime`; their laps are timed on the frames'
//! `timestamp` instead (a switch between the two clocks restarts timing).

use pitbox_schema::db::store::laps::LapEncoder;
use pitbox_schema::timing::{Boundary, LapTimer, LapTiming, TimingPoint};
use pitbox_schema::wire::{LapFlaw, LapKind, TelemetryFrame};

pub use pitbox_schema::timing::SECTORS as DEFAULT_SECTORS;

/// A gap in the data longer than this (seconds) makes the lap invalid.
const MAX_GAP_SECS: f64 = 0.5;
/// Frames kept for one lap at most (15 minutes at 60 Hz); a longer "lap" is a car parked in the
/// pits, and keeping it would only grow memory.
const MAX_FRAMES: usize = 60 * 60 * 15;
/// `PlayerTrackSurface` values.
const SURFACE_OFF_TRACK: i8 = 0;
const SURFACE_PIT_STALL: i8 = 1;
const SURFACE_PIT_LANE: i8 = 2;

/// A lap that has just been completed (its shape is the storage layer's: the store writer stores it).
pub use pitbox_schema::db::store::laps::CompletedLap;

/// The clock a frame is timed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    Session,
    Timestamp,
}

/// The frame's time: its `sessionTime`, or its timestamp when it has none (0 is "none" unless
/// the session clock is already in use: a new sim session restarts at 0).
fn clock_of(f: &TelemetryFrame, current: Option<Clock>) -> (Clock, f64) {
    let t = f.sample.session_time;
    if t > 0.0 || current == Some(Clock::Session) {
        (Clock::Session, t)
    } else {
        let ts = f.timestamp;
        (Clock::Timestamp, ts.timestamp() as f64 + f64::from(ts.timestamp_subsec_nanos()) * 1e-9)
    }
}

/// What lap assembly needs of a lap's first frame beyond its encoding: timing it again when the
/// clock switches right after it.
#[derive(Debug, Clone, Copy)]
struct FirstPoint {
    lap: i32,
    pct: f32,
    reported: Option<f32>,
}

/// The frames (encoded as they arrive) and findings of one lap while it is driven.
#[derive(Debug, Default)]
struct LapBuild {
    frames: LapEncoder,
    first: Option<FirstPoint>,
    /// Tank level at the first and the latest frame.
    fuel: Option<(f32, f32)>,
    flaws: Vec<LapFlaw>,
    kind: LapKind,
    /// Too many frames, or a frame that could not be encoded: the lap is not kept.
    overflowed: bool,
}

impl LapBuild {
    fn flag(&mut self, f: LapFlaw) {
        if !self.flaws.contains(&f) {
            self.flaws.push(f);
        }
    }

    fn add(&mut self, frame: &TelemetryFrame, sample_json: Option<&str>, incident: bool) {
        let s = &frame.sample;
        let in_pits = s.on_pit_road || matches!(s.track_surface, Some(SURFACE_PIT_STALL | SURFACE_PIT_LANE));
        let first = self.frames.is_empty() && !self.overflowed;
        if first && in_pits {
            self.kind = LapKind::OutLap;
        } else if s.on_pit_road && self.kind == LapKind::Flying {
            self.kind = LapKind::InLap;
        }
        if in_pits {
            self.flag(LapFlaw::PitRoad);
        }
        if s.track_surface == Some(SURFACE_OFF_TRACK) {
            self.flag(LapFlaw::OffTrack);
        }
        if incident {
            self.flag(LapFlaw::Incident);
        }
        if self.overflowed {
            return;
        }
        if self.frames.len() >= MAX_FRAMES {
            self.overflowed = true;
            self.frames = LapEncoder::default();
            return;
        }
        let pushed = match sample_json {
            Some(json) => self.frames.push_encoded(frame, json),
            None => self.frames.push(frame),
        };
        if let Err(e) = pushed {
            tracing::warn!(error = %e, "a frame could not be encoded; its lap is not kept");
            self.overflowed = true;
            self.frames = LapEncoder::default();
            return;
        }
        if first {
            self.first = Some(FirstPoint { lap: s.lap, pct: s.track_position, reported: s.last_lap_time });
        }
        self.fuel = Some((self.fuel.map_or(s.fuel_level, |(a, _)| a), s.fuel_level));
    }

    /// Frames held.
    fn len(&self) -> usize {
        self.frames.len()
    }

    fn finish(mut self, t: LapTiming) -> Option<CompletedLap> {
        if self.overflowed || !(t.time.is_finite() && t.time > 1.0) {
            return None;
        }
        self.flaws.sort();
        let fuel_used = match self.fuel {
            Some((a, b)) if a > b => Some(f64::from(a - b)),
            _ => None,
        };
        let frames = match self.frames.finish() {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, lap = t.lap, "a lap's frames could not be encoded; not kept");
                return None;
            }
        };
        Some(CompletedLap {
            lap_number: t.lap,
            lap_time: t.time,
            valid: self.flaws.is_empty() && t.sectors.len() == DEFAULT_SECTORS,
            kind: self.kind,
            flaws: self.flaws,
            fuel_used,
            sector_times: t.sectors,
            frames,
        })
    }
}

#[derive(Debug, Default)]
pub struct LapAssembler {
    timer: LapTimer,
    clock: Option<Clock>,
    last_time: Option<f64>,
    last_incidents: Option<i32>,
    /// The lap being driven.
    current: LapBuild,
    /// Laps whose line was crossed, waiting for their final time (the sim publishes its own a few
    /// frames after the line), oldest first.
    waiting: std::collections::VecDeque<LapBuild>,
    /// Laps completed so far, and the best valid lap time: the state a restart must keep.
    pub laps_completed: u32,
    pub best_lap: Option<f64>,
}

impl LapAssembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Laps completed and best lap, for a checkpoint.
    pub fn summary(&self) -> (u32, Option<f64>) {
        (self.laps_completed, self.best_lap)
    }

    /// Restores counters after a restart; the lap in progress is rebuilt by replaying its stored
    /// frames through [`LapAssembler::push`].
    pub fn restore(laps_completed: u32, best_lap: Option<f64>) -> Self {
        Self { laps_completed, best_lap, ..Self::default() }
    }

    /// Frames of the lap in progress (and of laps waiting for their time).
    pub fn frames_in_progress(&self) -> usize {
        self.current.len() + self.waiting.iter().map(LapBuild::len).sum::<usize>()
    }

    /// Heap bytes held for the laps in progress (for memory figures).
    pub fn heap_bytes(&self) -> usize {
        self.current.frames.heap_bytes() + self.waiting.iter().map(|l| l.frames.heap_bytes()).sum::<usize>()
    }

    /// Feeds one frame; returns the laps it completed (usually none, at most one or two).
    pub fn push(&mut self, frame: &TelemetryFrame) -> Vec<CompletedLap> {
        self.push_encoded(frame, None)
    }

    /// As [`LapAssembler::push`], with the frame's sample already encoded (`sample_json`, as
    /// `serde_json::to_string(&frame.sample)` writes it): the lap keeps that text instead of
    /// encoding the sample's channels again.
    pub fn push_encoded(&mut self, frame: &TelemetryFrame, sample_json: Option<&str>) -> Vec<CompletedLap> {
        let (clock, time) = clock_of(frame, self.clock);
        if self.clock.is_some_and(|c| c != clock) {
            // Another clock: lap timing starts over. A single frame at session time 0 before
            // the session clock runs was the session's first frame: it is timed again at 0.
            self.timer = LapTimer::new();
            self.waiting.clear();
            self.last_time = None;
            match self.current.first {
                Some(first) if self.current.len() == 1 => {
                    self.timer.push(TimingPoint {
                        time: 0.0,
                        lap: first.lap,
                        pct: Some(first.pct),
                        reported: first.reported,
                    });
                    self.last_time = Some(0.0);
                }
                _ => self.current = LapBuild::default(),
            }
        }
        self.clock = Some(clock);
        let s = &frame.sample;
        let gap = self.last_time.is_some_and(|t| time - t > MAX_GAP_SECS);
        let incident = matches!((self.last_incidents, s.incidents), (Some(a), Some(b)) if b > a);
        if s.incidents.is_some() {
            self.last_incidents = s.incidents;
        }
        self.last_time = Some(time);
        let step = self.timer.push(TimingPoint {
            time,
            lap: s.lap,
            pct: Some(s.track_position),
            reported: s.last_lap_time,
        });
        if gap {
            self.current.flag(LapFlaw::DataGap);
        }
        match step.boundary {
            Boundary::Same => {}
            Boundary::Crossed { whole } => {
                let ended = std::mem::take(&mut self.current);
                if whole {
                    self.waiting.push_back(ended);
                }
                if gap {
                    self.current.flag(LapFlaw::DataGap);
                }
            }
            Boundary::Reset => self.current = LapBuild::default(),
        }
        self.current.add(frame, sample_json, incident);
        let mut out = Vec::new();
        for timing in step.finalized {
            let Some(build) = self.waiting.pop_front() else { continue };
            if let Some(lap) = build.finish(timing) {
                self.laps_completed += 1;
                if lap.valid && self.best_lap.is_none_or(|b| lap.lap_time < b) {
                    self.best_lap = Some(lap.lap_time);
                }
                out.push(lap);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use pitbox_schema::wire::TelemetrySample;

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
            out.extend(asm.push(&frame(t, lap, pos, 50.0 - (dist as f32))));
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
            assert!((l.lap_time - 90.0).abs() < 0.001, "lap time {}", l.lap_time);
            assert!(l.valid);
            assert_eq!(l.kind, LapKind::Flying);
            assert_eq!(l.sector_times.len(), 3);
            assert!((l.sector_times.iter().sum::<f64>() - l.lap_time).abs() < 1e-6);
            assert!((l.fuel_used.unwrap() - 1.0).abs() < 0.05);
            assert!((5390..=5410).contains(&l.frames.len()));
        }
        assert_eq!(asm.summary().0, 3);
        assert!((asm.summary().1.unwrap() - 90.0).abs() < 0.001);
    }

    #[test]
    fn joining_mid_lap_does_not_invent_a_lap() {
        let mut asm = LapAssembler::new();
        assert!(asm.push(&frame(10.0, 1, 0.5, 40.0)).is_empty());
        assert!(asm.push(&frame(10.5, 1, 0.95, 40.0)).is_empty());
        // Crossing the line completes lap 1, but its start was never seen.
        assert!(asm.push(&frame(11.0, 2, 0.01, 40.0)).is_empty());
        assert_eq!(asm.laps_completed, 0);
    }

    #[test]
    fn wrap_without_counter_change_completes_once() {
        let mut asm = LapAssembler::new();
        asm.push(&frame(0.0, 1, 0.0, 40.0));
        asm.push(&frame(2.0, 1, 0.34, 40.0));
        asm.push(&frame(2.2, 1, 0.67, 40.0));
        for i in 0..1130 {
            let t = 3.0 + f64::from(i) * 0.05;
            asm.push(&frame(t, 1, 0.67 + (t as f32 - 3.0) * 0.32 / 57.0, 40.0));
        }
        asm.push(&frame(60.0, 1, 0.99, 40.0));
        assert!(asm.push(&frame(60.1, 1, 0.01, 40.0)).is_empty(), "waits for the sim's time");
        let l = asm.push(&frame(61.7, 1, 0.02, 40.0)).pop().expect("wrap completes the lap");
        assert_eq!(l.lap_number, 1);
        // The counter catching up a moment later is not a second lap.
        assert!(asm.push(&frame(61.8, 2, 0.03, 40.0)).is_empty());
        assert_eq!(asm.laps_completed, 1);
        // The 2 s gap between 0.0 and 2.0 made the lap invalid, and says so.
        assert!(!l.valid);
        assert_eq!(l.flaws, vec![LapFlaw::DataGap]);
    }

    /// Laps at 60 Hz with `edit` applied to each frame (index, frame).
    fn laps_with(n: i32, edit: impl Fn(usize, &mut TelemetryFrame)) -> Vec<CompletedLap> {
        let mut asm = LapAssembler::new();
        let mut laps = vec![];
        // Two seconds past the last line: the first lap waits for a lap time the source never
        // publishes (the shared timer's rule).
        for i in 0..=(n as usize * 30 * 60 + 120) {
            let t = i as f64 / 60.0;
            let mut f = frame(t, 1 + (t / 30.0) as i32, ((t / 30.0) % 1.0) as f32, 40.0);
            edit(i, &mut f);
            laps.extend(asm.push(&f));
        }
        laps
    }

    #[test]
    fn validity_from_the_data_names_its_reason() {
        // Pit road in the middle of lap 1: an in-lap.
        let laps = laps_with(1, |i, f| f.sample.on_pit_road = i == 600);
        assert_eq!(laps.len(), 1);
        assert!(!laps[0].valid);
        assert_eq!(laps[0].kind, LapKind::InLap);
        assert_eq!(laps[0].flaws, vec![LapFlaw::PitRoad]);
        // Off track on lap 2 only.
        let laps = laps_with(2, |i, f| {
            f.sample.track_surface = Some(if i == 2500 { 0 } else { 3 });
        });
        assert_eq!((laps[0].valid, laps[1].valid), (true, false));
        assert_eq!(laps[1].flaws, vec![LapFlaw::OffTrack]);
        // The incident count goes up on lap 1.
        let laps = laps_with(2, |i, f| f.sample.incidents = Some(if i > 700 { 2 } else { 0 }));
        assert_eq!(laps[0].flaws, vec![LapFlaw::Incident]);
        assert!(laps[1].valid);
        // Starting from the pit lane: an out-lap.
        let laps = laps_with(2, |i, f| f.sample.track_surface = Some(if i < 30 { 2 } else { 3 }));
        assert_eq!(laps[0].kind, LapKind::OutLap);
        assert!(!laps[0].valid);
        assert_eq!(laps[1].kind, LapKind::Flying);
        assert!(laps[1].valid);
    }

    #[test]
    fn seed_frames_without_session_time_are_timed_on_their_timestamps() {
        let mut asm = LapAssembler::new();
        let mut laps = vec![];
        for i in 0..=(2 * 30 * 20 + 1) {
            let t = f64::from(i) / 20.0;
            let mut f = frame(0.0, 1 + (t / 30.0) as i32, ((t / 30.0) % 1.0) as f32, 40.0);
            f.timestamp = Utc.timestamp_opt(1_700_000_000, 0).single().unwrap()
                + chrono::TimeDelta::milliseconds(i64::from(i) * 50);
            laps.extend(asm.push(&f));
        }
        assert_eq!(laps.len(), 2);
        assert!((laps[0].lap_time - 30.0).abs() < 1e-3, "{}", laps[0].lap_time);
    }

    #[test]
    fn the_sims_lap_time_is_kept() {
        let laps = laps_with(2, |i, f| {
            // The sim publishes 29.9995 six frames after the first crossing, then nothing new.
            f.sample.last_lap_time = (i >= 1806).then_some(29.9995);
        });
        assert_eq!(laps.len(), 2);
        assert_eq!(laps[0].lap_time, f64::from(29.9995_f32));
        // The second lap starts where the sim's first ended.
        assert!((laps[1].lap_time - (60.0 - f64::from(29.9995_f32))).abs() < 1e-3, "{}", laps[1].lap_time);
    }

    #[test]
    fn a_laps_frames_are_the_frames_driven_in_it_whole() {
        let mut asm = LapAssembler::new();
        let (mut fed, mut laps) = (vec![], vec![]);
        for i in 0..=(2 * 30 * 60 + 120) {
            let t = f64::from(i) / 60.0;
            let mut f = frame(t, 1 + (t / 30.0) as i32, ((t / 30.0) % 1.0) as f32, 40.0 - t as f32 * 0.01);
            f.seq = Some(i as u64);
            f.sample.cars = Some(pitbox_schema::wire::CarArrays {
                lap: vec![1, 2],
                lap_dist_pct: vec![0.5, t as f32 / 100.0],
                position: vec![2, 1],
                on_pit_road: vec![false, i % 7 == 0],
            });
            laps.extend(asm.push(&f));
            fed.push(f);
        }
        assert_eq!(laps.len(), 2);
        let mut next = None;
        for l in &laps {
            let frames = l.frames.decode().unwrap();
            assert_eq!(frames.len(), l.frames.len());
            let start = frames[0].seq.unwrap() as usize;
            // Each lap starts where the last ended, and holds the frames as they were fed.
            assert!(next.is_none_or(|n| n == start));
            assert_eq!(frames[..], fed[start..start + frames.len()]);
            next = Some(start + frames.len());
        }
        assert_eq!(asm.frames_in_progress(), fed.len() - next.unwrap());
    }

    #[test]
    fn restore_keeps_counters() {
        let asm = LapAssembler::restore(12, Some(88.5));
        assert_eq!(asm.summary(), (12, Some(88.5)));
    }
}
