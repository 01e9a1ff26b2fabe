//! A small synthetic driver for the tests: a track is a list of straights and corners with
//! target speeds; the speed profile obeys acceleration and braking limits (forward and backward
//! passes over a 0.25 m grid), and the car is then driven through it at 60 Hz (or any rate),
//! with faults injected where a test wants them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use pitbox_schema::wire::{CarArrays, TelemetryFrame, TelemetrySample, TireSet};

pub const GRID: f64 = 0.25;
const TOP: f64 = 230.0 / 3.6;
const BRAKE_DECEL: f64 = 14.0;

#[derive(Debug, Clone, Copy)]
pub enum Piece {
    Straight {
        len: f64,
    },
    /// `speed` km/h (above the top speed = taken flat), `steer` degrees (signed).
    Corner {
        len: f64,
        speed: f64,
        steer: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Brakes `metres` before the usual point at corner `corner` (1-based among the pieces' corners).
    BrakeEarly { corner: usize, metres: f64 },
    /// Stays off the throttle `metres` past the corner's end.
    LateThrottle { corner: usize, metres: f64 },
    /// Neither pedal for `metres` before braking.
    Coast { corner: usize, metres: f64 },
}

#[derive(Debug, Clone, Default)]
pub struct LapPlan {
    pub faults: Vec<Fault>,
    /// Litres lost per lap beyond what the engine burns.
    pub leak_l: f64,
    /// A car this many metres ahead between these lap fractions.
    pub traffic: Option<(f64, f64, f64)>,
    /// Whether the lap starts in the pit lane.
    pub pit: bool,
    /// The incident count goes up during the lap.
    pub incident: bool,
    /// Sensor noise: speed ±1 km/h, steering ±1.5°, pedals ±2 % (deterministic).
    pub noise: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Label {
    Free,
    Corner(f64),
    Hold(f64),
}

pub struct Track {
    pub pieces: Vec<Piece>,
}

/// The default test track (1560 m): a hairpin, a flat sweeper, a medium and a fast corner.
pub fn test_track() -> Track {
    Track {
        pieces: vec![
            Piece::Straight { len: 300.0 },
            Piece::Corner { len: 60.0, speed: 80.0, steer: -60.0 },
            Piece::Straight { len: 250.0 },
            Piece::Corner { len: 120.0, speed: 400.0, steer: 10.0 },
            Piece::Straight { len: 200.0 },
            Piece::Corner { len: 80.0, speed: 110.0, steer: 35.0 },
            Piece::Straight { len: 150.0 },
            Piece::Corner { len: 50.0, speed: 140.0, steer: -25.0 },
            Piece::Straight { len: 350.0 },
        ],
    }
}

pub struct Profile {
    pub length: f64,
    pub speed: Vec<f64>,
    pub throttle: Vec<f32>,
    pub brake: Vec<f32>,
    pub steer: Vec<f32>,
}

impl Profile {
    fn at(&self, s: f64) -> (f64, f32, f32, f32) {
        let n = self.speed.len();
        let x = (s.rem_euclid(self.length)) / GRID;
        let i = (x.floor() as usize).min(n - 1);
        let j = (i + 1) % n;
        let t = x - x.floor();
        let v = self.speed[i] + (self.speed[j] - self.speed[i]) * t;
        (v, self.throttle[i], self.brake[i], self.steer[i])
    }

    /// The first grid point (metres) where braking starts before `corner_start`, looking back.
    pub fn braking_point_before(&self, corner_start: f64) -> Option<f64> {
        let n = self.brake.len();
        let mut i = (corner_start / GRID) as usize % n;
        let mut seen = false;
        for _ in 0..n {
            let b = self.brake[i] > 5.0;
            if b {
                seen = true;
            } else if seen {
                return Some(((i + 1) % n) as f64 * GRID);
            }
            i = (i + n - 1) % n;
            if !seen && (corner_start / GRID - i as f64).rem_euclid(n as f64) > 400.0 / GRID {
                return None;
            }
        }
        None
    }
}

impl Track {
    pub fn length(&self) -> f64 {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Straight { len } | Piece::Corner { len, .. } => *len,
            })
            .sum()
    }

    /// (start, end) in metres of the corners, in order.
    pub fn corners(&self) -> Vec<(f64, f64)> {
        let mut at = 0.0;
        let mut out = Vec::new();
        for p in &self.pieces {
            match p {
                Piece::Straight { len } => at += len,
                Piece::Corner { len, .. } => {
                    out.push((at, at + len));
                    at += len;
                }
            }
        }
        out
    }

    pub fn profile(&self, faults: &[Fault]) -> Profile {
        let length = self.length();
        let n = (length / GRID).round() as usize;
        let mut cap = vec![TOP; n];
        let mut label = vec![Label::Free; n];
        let mut steer = vec![0f32; n];
        let mut at = 0.0;
        let idx = |m: f64| ((m / GRID).round() as i64).rem_euclid(n as i64) as usize;
        let mut corners = Vec::new();
        for p in &self.pieces {
            match *p {
                Piece::Straight { len } => at += len,
                Piece::Corner { len, speed, steer: st } => {
                    let v = (speed / 3.6).min(TOP);
                    let k0 = (at / GRID).round() as usize;
                    let k1 = ((at + len) / GRID).round() as usize;
                    let ramp = (15.0 / GRID) as usize;
                    for k in k0..k1 {
                        cap[k % n] = v;
                        label[k % n] = Label::Corner(30.0);
                        let edge = (k - k0).min(k1 - 1 - k).min(ramp) as f32 / ramp as f32;
                        steer[k % n] = st as f32 * edge.max(0.2);
                    }
                    corners.push((at, at + len, v));
                    at += len;
                }
            }
        }
        for f in faults {
            match *f {
                Fault::BrakeEarly { corner, metres } => {
                    let (s, _, v) = corners[corner - 1];
                    for k in 0..=(metres / GRID) as usize {
                        let i = idx(s - k as f64 * GRID);
                        cap[i] = cap[i].min(v);
                        label[i] = Label::Hold(15.0);
                    }
                }
                Fault::LateThrottle { corner, metres } => {
                    let (_, e, v) = corners[corner - 1];
                    for k in 0..=(metres / GRID) as usize {
                        let i = idx(e + k as f64 * GRID);
                        cap[i] = cap[i].min(v);
                        label[i] = Label::Hold(0.0);
                    }
                }
                Fault::Coast { .. } => {}
            }
        }
        let mut speed = passes(&cap, n);
        // Coasting: the speed where the coast begins is held (neither pedal) up to the braking
        // point of the plain profile.
        for f in faults {
            if let Fault::Coast { corner, metres } = *f {
                let (s, _, _) = corners[corner - 1];
                let plain = self.profile(&[]);
                let bp = plain.braking_point_before(s).unwrap_or(s);
                // Drag and engine braking: 2.5 m/s² with neither pedal.
                let v0 = speed[idx(bp - metres)];
                for k in 0..=(metres / GRID) as usize {
                    let i = idx(bp - metres + k as f64 * GRID);
                    let v = (v0 * v0 - 2.0 * 2.5 * k as f64 * GRID).max(1.0).sqrt();
                    cap[i] = cap[i].min(v);
                    label[i] = Label::Hold(0.0);
                }
                speed = passes(&cap, n);
            }
        }
        let mut throttle = vec![0f32; n];
        let mut brake = vec![0f32; n];
        for i in 0..n {
            let next = speed[(i + 1) % n];
            let limited = speed[i] >= cap[i] - 1e-6;
            if next < speed[i] - 1e-9 && !(limited && matches!(label[i], Label::Hold(_))) {
                brake[i] = 80.0;
            } else if limited {
                throttle[i] = match label[i] {
                    Label::Free => 100.0,
                    Label::Corner(t) | Label::Hold(t) => t as f32,
                };
            } else {
                throttle[i] = 100.0;
            }
        }
        Profile { length, speed, throttle, brake, steer }
    }
}

fn accel(v: f64) -> f64 {
    (8.0 - 0.08 * v).max(1.0)
}

/// Forward (acceleration) and backward (braking) passes over three laps, so the profile is
/// periodic; the middle lap is kept.
fn passes(cap: &[f64], n: usize) -> Vec<f64> {
    let mut v: Vec<f64> = (0..3 * n).map(|i| cap[i % n]).collect();
    for i in 1..3 * n {
        let lim = (v[i - 1] * v[i - 1] + 2.0 * accel(v[i - 1]) * GRID).sqrt();
        v[i] = v[i].min(lim);
    }
    for i in (0..3 * n - 1).rev() {
        let lim = (v[i + 1] * v[i + 1] + 2.0 * BRAKE_DECEL * GRID).sqrt();
        v[i] = v[i].min(lim);
    }
    v[n..2 * n].to_vec()
}

/// Drives `plans.len()` laps at `hz`, the line `line_offset_m` into the track. Returns each lap's
/// frames with one frame of the neighbouring laps on either side.
pub fn drive(track: &Track, plans: &[LapPlan], hz: f64, line_offset_m: f64) -> Vec<Vec<TelemetryFrame>> {
    let length = track.length();
    let profiles: Vec<Profile> = plans.iter().map(|p| track.profile(&p.faults)).collect();
    let dt = 1.0 / hz;
    let mut t = 100.0;
    let mut fuel = 40.0f64;
    let mut incidents = 0i32;
    let mut incident_lap: Option<usize> = None;
    let mut seed: u64 = 0x5eed;
    let mut frames: Vec<(usize, TelemetryFrame)> = Vec::new();
    // One lead-in frame before the line.
    let mut travelled = -profiles[0].at(line_offset_m).0 * dt;
    let start = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
    loop {
        let lap_index = (travelled.max(0.0) / length).floor() as usize;
        if lap_index > plans.len() {
            break;
        }
        let plan_index = lap_index.min(plans.len() - 1);
        let plan = &plans[plan_index];
        let profile = &profiles[plan_index];
        let s = line_offset_m + travelled;
        let (v, throttle, brake, steer) = profile.at(s);
        let frac = travelled.rem_euclid(length) / length;
        if plan.incident && frac > 0.5 && incident_lap != Some(lap_index) {
            incidents += 2;
            incident_lap = Some(lap_index);
        }
        let cars = plan.traffic.map(|(ahead_m, from, to)| {
            let other =
                if frac >= from && frac <= to { (frac + ahead_m / length) % 1.0 } else { (frac + 0.5) % 1.0 };
            CarArrays {
                lap: vec![lap_index as i32, lap_index as i32],
                lap_dist_pct: vec![frac as f32, other as f32],
                position: vec![2, 1],
                on_pit_road: vec![false, false],
            }
        });
        let pit = plan.pit && frac < 0.1;
        // A small linear congruential generator: the same noise on every run.
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
        };
        let (dv, ds, dp) = if plan.noise { (rnd(), rnd() * 1.5, rnd() * 2.0) } else { (0.0, 0.0, 0.0) };
        let pedal = |x: f32| if x > 0.0 { (x + dp as f32).clamp(0.0, 100.0) } else { x };
        let sample = TelemetrySample {
            session_time: t,
            speed: (v * 3.6 + dv).max(0.0) as f32,
            rpm: 6000.0,
            gear: 3,
            throttle: pedal(throttle),
            brake: pedal(brake),
            steering_angle: steer + ds as f32,
            lap: lap_index as i32 + 1,
            track_position: frac as f32,
            fuel_level: fuel as f32,
            on_pit_road: pit,
            track_surface: Some(if pit { 2 } else { 3 }),
            incidents: Some(incidents),
            tire_temps: Some(TireSet {
                front_left: 80.0 + lap_index as f32,
                front_right: 82.0 + lap_index as f32,
                rear_left: 78.0,
                rear_right: 79.0,
            }),
            tire_wear: Some(TireSet {
                front_left: 100.0 - 0.5 * lap_index as f32 - 0.5 * frac as f32,
                front_right: 100.0 - 0.6 * lap_index as f32,
                rear_left: 100.0 - 0.3 * lap_index as f32,
                rear_right: 100.0 - 0.3 * lap_index as f32,
            }),
            cars,
            ..TelemetrySample::default()
        };
        let ts = start + chrono::TimeDelta::milliseconds((t * 1000.0) as i64);
        frames.push((lap_index, TelemetryFrame { seq: Some(frames.len() as u64), timestamp: ts, sample }));
        // 2.4 l per lap at full throttle, 30 % of it off the throttle, plus any leak.
        fuel -=
            (0.3 + 0.7 * f64::from(throttle) / 100.0) * 2.4 * v * dt / length + plan.leak_l * v * dt / length;
        let a = profile.at(s + v * dt).0;
        travelled += (v + a) / 2.0 * dt;
        t += dt;
    }
    (0..plans.len())
        .map(|lap| {
            let idx: Vec<usize> =
                frames.iter().enumerate().filter(|(_, (l, _))| *l == lap).map(|(i, _)| i).collect();
            let a = idx.first().copied().unwrap_or(0).saturating_sub(1);
            let b = (idx.last().copied().unwrap_or(0) + 1).min(frames.len() - 1);
            frames[a..=b].iter().map(|(_, f)| f.clone()).collect()
        })
        .collect()
}
