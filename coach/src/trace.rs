//! A completed lap as the engine reads it: the frames between two line crossings, keyed by
//! lap-distance fraction (0 at the line, 1 at the next crossing), with time rebased to the lap's
//! start. Every other module works on a [`LapTrace`], never on raw frames. Reads no env vars.
//!
//! Frames of a lap may include one or two from the other side of the line (the `Lap` counter ticks
//! a frame early or late, and iRacing publishes a few positions slightly below 0 after its wrap),
//! so positions are unwrapped, the crossings at exactly 0 and 1 are interpolated in time, and the
//! points outside them are dropped. Positions are made non-decreasing (a car rolling back a few
//! centimetres in the pits must not make time-at-distance ambiguous).

use pitbox_schema::wire::TelemetryFrame;
use serde::{Deserialize, Serialize};

/// A gap this large (lap fraction) between the first (last) frame and the line is extrapolated;
/// anything larger means the lap is not whole.
const MAX_EDGE_GAP: f64 = 0.03;
/// A position jump larger than this between frames is a wrap, not driving.
const WRAP_JUMP: f64 = 0.5;

/// One sample of a lap, in the units the engine computes with.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TracePoint {
    /// Lap-distance fraction, 0..=1, non-decreasing along the trace.
    pub pos: f64,
    /// Seconds since the lap started (0 at the line).
    pub time: f64,
    /// km/h.
    pub speed: f32,
    /// 0–100 %.
    pub throttle: f32,
    /// 0–100 %.
    pub brake: f32,
    /// Degrees, negative = left.
    pub steer: f32,
    /// Litres.
    pub fuel: f32,
}

/// Why frames could not be read as a lap.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceError {
    /// Fewer frames than any lap has.
    TooFewFrames(usize),
    /// The frames do not reach both lines (covered fraction given).
    Incomplete { covered: f64 },
    /// A channel the engine needs is not a finite number.
    NotFinite,
}

impl core::fmt::Display for TraceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TraceError::TooFewFrames(n) => write!(f, "{n} frames are too few for a lap"),
            TraceError::Incomplete { covered } => {
                write!(f, "the frames cover {:.1} % of a lap, not all of it", covered * 100.0)
            }
            TraceError::NotFinite => f.write_str("a position, time or speed is not a finite number"),
        }
    }
}

impl std::error::Error for TraceError {}

/// A whole lap, line to line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LapTrace {
    /// The `Lap` counter of the lap (the most common value among its frames).
    pub lap: i32,
    /// Points from pos 0 (time 0) to pos 1 (time `lap_time`).
    pub points: Vec<TracePoint>,
    /// Seconds, line to line (interpolated crossings).
    pub lap_time: f64,
    /// Metres: as given, else speed integrated over the lap.
    pub track_length_m: f64,
    /// Whether `track_length_m` was estimated from the speed.
    pub length_estimated: bool,
    /// `SessionTime` at the line that started the lap.
    pub session_time_start: f64,
}

fn lerp(a: f64, b: f64, t: f64) -> f64 {
    a + (b - a) * t
}

fn lerp32(a: f32, b: f32, t: f64) -> f32 {
    a + (b - a) * t as f32
}

fn mix(a: &TracePoint, b: &TracePoint, t: f64) -> TracePoint {
    TracePoint {
        pos: lerp(a.pos, b.pos, t),
        time: lerp(a.time, b.time, t),
        speed: lerp32(a.speed, b.speed, t),
        throttle: lerp32(a.throttle, b.throttle, t),
        brake: lerp32(a.brake, b.brake, t),
        steer: lerp32(a.steer, b.steer, t),
        fuel: lerp32(a.fuel, b.fuel, t),
    }
}

/// The point where `pos` reaches `at`, between `a` and `b` (or past them when extrapolating at
/// the lap's edges: then the time comes from the speed).
fn point_at(a: &TracePoint, b: &TracePoint, at: f64, length_guess: f64) -> TracePoint {
    let span = b.pos - a.pos;
    if span > 1e-12 {
        let t = (at - a.pos) / span;
        if (0.0..=1.0).contains(&t) {
            return mix(a, b, t);
        }
    }
    // Extrapolate from the nearer point at its speed.
    let near = if (at - a.pos).abs() < (at - b.pos).abs() { a } else { b };
    let v = (f64::from(near.speed) / 3.6).max(1.0);
    let dt = (at - near.pos) * length_guess / v;
    TracePoint { pos: at, time: near.time + dt, ..*near }
}

impl LapTrace {
    /// Reads a completed lap. `track_length_m` comes from the session info when known; without it
    /// the length is the speed integrated over the lap.
    pub fn from_frames(frames: &[TelemetryFrame], track_length_m: Option<f64>) -> Result<Self, TraceError> {
        if frames.len() < 10 {
            return Err(TraceError::TooFewFrames(frames.len()));
        }
        let mut raw = Vec::with_capacity(frames.len());
        let mut offset = 0.0;
        let mut previous: Option<f64> = None;
        for f in frames {
            let s = &f.sample;
            let p = f64::from(s.track_position);
            if !p.is_finite() || !s.session_time.is_finite() || !s.speed.is_finite() {
                return Err(TraceError::NotFinite);
            }
            if let Some(prev) = previous {
                if p - prev < -WRAP_JUMP {
                    offset += 1.0;
                } else if p - prev > WRAP_JUMP {
                    offset -= 1.0;
                }
            }
            previous = Some(p);
            raw.push(TracePoint {
                pos: p + offset,
                time: s.session_time,
                speed: s.speed.max(0.0),
                throttle: s.throttle,
                brake: s.brake,
                steer: s.steering_angle,
                fuel: s.fuel_level,
            });
        }
        // Non-decreasing positions.
        let mut max = f64::NEG_INFINITY;
        for p in &mut raw {
            max = max.max(p.pos);
            p.pos = max;
        }
        // The lap is the unit interval holding most frames.
        let mut bases: Vec<i64> = raw.iter().map(|p| p.pos.floor() as i64).collect();
        bases.sort_unstable();
        let base = bases.get(bases.len() / 2).copied().unwrap_or(0) as f64;
        let (lo, hi) = (base, base + 1.0);
        let first = raw.first().copied().unwrap_or_default();
        let last = raw.last().copied().unwrap_or_default();
        let covered = (last.pos.min(hi) - first.pos.max(lo)).max(0.0);
        if first.pos > lo + MAX_EDGE_GAP || last.pos < hi - MAX_EDGE_GAP {
            return Err(TraceError::Incomplete { covered });
        }
        // Speed integrated over the frames, scaled to a whole lap: the length when none is given.
        let mut metres = 0.0;
        for w in raw.windows(2) {
            if let [a, b] = w {
                metres += (f64::from(a.speed) + f64::from(b.speed)) / 7.2 * (b.time - a.time).max(0.0);
            }
        }
        let span = (last.pos - first.pos).max(1e-6);
        let estimated = metres / span;
        let length = track_length_m.filter(|l| l.is_finite() && *l > 0.0).unwrap_or(estimated);

        let start = match raw.iter().position(|p| p.pos >= lo) {
            Some(0) | None => point_at(&first, raw.get(1).unwrap_or(&first), lo, length),
            Some(i) => point_at(&raw[i - 1], &raw[i], lo, length),
        };
        let end = match raw.iter().rposition(|p| p.pos <= hi) {
            Some(i) if i + 1 < raw.len() => point_at(&raw[i], &raw[i + 1], hi, length),
            _ => {
                let n = raw.len();
                point_at(raw.get(n.saturating_sub(2)).unwrap_or(&last), &last, hi, length)
            }
        };
        let mut points = Vec::with_capacity(raw.len() + 2);
        points.push(start);
        points.extend(
            raw.iter().filter(|p| p.pos > lo && p.pos < hi && p.time > start.time && p.time < end.time),
        );
        points.push(end);
        let t0 = start.time;
        for p in &mut points {
            p.pos -= lo;
            p.time -= t0;
        }
        let mut laps: Vec<i32> = frames.iter().map(|f| f.sample.lap).collect();
        laps.sort_unstable();
        let lap = laps.get(laps.len() / 2).copied().unwrap_or(0);
        Ok(LapTrace {
            lap,
            lap_time: end.time - start.time,
            points,
            track_length_m: length,
            length_estimated: track_length_m.is_none(),
            session_time_start: t0,
        })
    }

    /// Seconds since the line at lap fraction `pos` (0..=1), interpolated.
    pub fn time_at(&self, pos: f64) -> f64 {
        self.sample_at(pos).time
    }

    /// The lap's channels at lap fraction `pos`, interpolated.
    pub fn sample_at(&self, pos: f64) -> TracePoint {
        let pos = pos.clamp(0.0, 1.0);
        let i = self.points.partition_point(|p| p.pos < pos);
        match (i.checked_sub(1).and_then(|j| self.points.get(j)), self.points.get(i)) {
            (Some(a), Some(b)) => {
                let span = b.pos - a.pos;
                if span > 1e-12 {
                    mix(a, b, (pos - a.pos) / span)
                } else {
                    *b
                }
            }
            (None, Some(b)) => *b,
            (Some(a), None) => *a,
            (None, None) => TracePoint::default(),
        }
    }

    /// Metres from the line at lap fraction `pos`.
    pub fn metres(&self, pos: f64) -> f64 {
        pos * self.track_length_m
    }

    /// Litres used over the lap (a refuel reads as 0).
    pub fn fuel_used(&self) -> f64 {
        match (self.points.first(), self.points.last()) {
            (Some(a), Some(b)) => f64::from(a.fuel - b.fuel).max(0.0),
            _ => 0.0,
        }
    }

    /// The points whose position lies in `[from, to)` of the lap, with positions unwrapped so that
    /// a span crossing the line (`to < from`) reads as one increasing run (`to + 1`).
    pub fn span(&self, from: f64, to: f64) -> impl Iterator<Item = TracePoint> + '_ {
        let wraps = to < from;
        // Positions are sorted: the ranges are found by bisection, not by a scan of the lap.
        let head_from = self.points.partition_point(|p| p.pos < from);
        let head_to = if wraps { self.points.len() } else { self.points.partition_point(|p| p.pos < to) };
        let tail_to = if wraps { self.points.partition_point(|p| p.pos < to) } else { 0 };
        let head = self.points.get(head_from..head_to.max(head_from)).unwrap_or(&[]).iter().copied();
        let tail = self.points.get(..tail_to).unwrap_or(&[]).iter().map(|p| TracePoint {
            pos: p.pos + 1.0,
            time: p.time,
            ..*p
        });
        head.chain(tail)
    }
}
