//! The synthetic driver: a believable car on a believable track, for demos and tests on any OS.
//! The track is a closed loop of straights and corners; the car's speed profile comes from a
//! point-mass lap simulation (grip-limited corners, power- and drag-limited straights, braking zones
//! found by a backward pass), so braking points, gears, rpm, throttle and brake traces look like a
//! real lap. Fuel burns with throttle, tyres wear with distance and load, each lap's pace varies
//! with seeded driver noise, and a field of other cars runs around the same lap (the `CarIdx`
//! arrays). Deterministic for a seed. Reads no env vars.
//!
//! A [`SyntheticConfig`] makes drivers differ, for demos and for the coach's tests: where on the lap
//! the car starts (a driver joining mid-lap starts on lap 1 with a partial first lap), a pace factor
//! on lap time, and driving faults a coach can find in the channels — braking early, late throttle
//! pick-up, coasting before a corner, a fuel leak, an inconsistent braking point. Faults are applied
//! to the speed profile itself (braking earlier means slowing earlier and losing time), not painted
//! on the pedal traces. Corners are numbered T1…T10 in lap order from the line, one per curved piece
//! of track ([`Synthetic::corners`] says where each one is).

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use pitbox_schema::wire::{CarArrays, TelemetryFrame, TelemetrySample, TireSet};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DT: f64 = 1.0 / 60.0;
const G: f64 = 9.81;
/// Distance step of the speed profile, metres.
const STEP: f64 = 2.0;

/// One piece of track: a straight (`radius` = None) or a corner of `angle_deg` (left positive).
#[derive(Debug, Clone, Copy)]
struct Segment {
    length: f64,
    radius: Option<f64>,
    left: bool,
}

/// A closed circuit, about 3.9 km, with a hairpin, fast sweepers and a long back straight.
fn circuit() -> Vec<Segment> {
    let corner = |radius: f64, angle_deg: f64, left: bool| Segment {
        length: radius * angle_deg.to_radians(),
        radius: Some(radius),
        left,
    };
    let straight = |length: f64| Segment { length, radius: None, left: false };
    // Right-hand corners total 360° + left-hand corners, so the loop closes in heading.
    vec![
        straight(820.0),
        corner(25.0, 150.0, false), // hairpin at the end of the main straight
        straight(240.0),
        corner(90.0, 60.0, true),
        corner(120.0, 70.0, false),
        straight(650.0),
        corner(45.0, 90.0, false),
        straight(180.0),
        corner(200.0, 40.0, false),
        corner(60.0, 70.0, true),
        straight(300.0),
        corner(35.0, 100.0, false),
        straight(210.0),
        corner(150.0, 50.0, false),
        corner(70.0, 30.0, true),
        straight(120.0),
        corner(55.0, 60.0, false),
    ]
}

/// The car: a GT3-like point mass.
struct Car {
    mass: f64,
    power_w: f64,
    drag: f64,
    grip_g: f64,
    brake_g: f64,
    vmax: f64,
    gears: [f64; 6],
    final_drive: f64,
    wheel_radius: f64,
    idle_rpm: f64,
    limit_rpm: f64,
    tank_l: f64,
}

const CAR: Car = Car {
    mass: 1300.0,
    power_w: 405_000.0,
    drag: 0.42,
    grip_g: 1.65,
    brake_g: 1.45,
    vmax: 80.0,
    gears: [3.1, 2.2, 1.7, 1.38, 1.16, 1.0],
    final_drive: 3.3,
    wheel_radius: 0.34,
    idle_rpm: 1800.0,
    limit_rpm: 8500.0,
    tank_l: 110.0,
};

/// What the driver's feet do at a point of the lap, where the speed alone does not tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pedals {
    /// Derived from the acceleration: full throttle, braking, or part throttle holding speed.
    Normal,
    /// Neither pedal (a lift before the braking point).
    Coast,
    /// A trace of throttle only, holding speed (waiting to pick up the throttle).
    Hold,
}

/// A precomputed lap: speed, curvature and position at every `STEP` metres.
struct Profile {
    speed: Vec<f64>,
    curvature: Vec<f64>,
    xy: Vec<(f64, f64)>,
    pedals: Vec<Pedals>,
    length: f64,
}

/// A corner of the synthetic track, in lap-distance metres from the line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Corner {
    /// 1-based, in lap order (T1 is the hairpin at the end of the main straight).
    pub number: usize,
    /// Where the curve starts and ends, metres from the line.
    pub entry_m: f64,
    pub exit_m: f64,
    pub radius_m: f64,
}

/// A driving fault the coach should find. Corners are numbered as in [`Synthetic::corners`]; T3
/// (the fast exit of the T2–T3 esse) and T5 (the sweeper before T6) are taken without braking, so
/// `BrakeEarly` and `Coast` do nothing there (there is no braking point to move).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Starts braking this many metres before the ideal braking point of corner `corner`, braking
    /// more gently so the corner speed is reached at the entry.
    BrakeEarly { corner: usize, metres: f64 },
    /// Holds the corner's minimum speed on a trace of throttle for this many metres after the point
    /// where full throttle would come.
    LateThrottle { corner: usize, metres: f64 },
    /// Lifts and coasts (neither pedal, slowing on drag and engine braking) for this many metres
    /// before braking for corner `corner`; braking then starts a little later, from lower speed.
    Coast { corner: usize, metres: f64 },
}

/// How one synthetic driver drives.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticConfig {
    pub seed: u64,
    /// Where the car is at the start, as a fraction of the lap (0 = on the line).
    pub start_at: f64,
    /// Factor on lap time: 1.02 is 2 % slower everywhere.
    pub pace: f64,
    pub faults: Vec<Fault>,
    /// Litres lost per lap on top of what the engine burns.
    pub fuel_leak_l_per_lap: f64,
    /// Up to this many metres of extra early braking at every braking corner, drawn anew each lap.
    pub inconsistency_m: f64,
}

impl SyntheticConfig {
    /// The plain driver of `seed`: from the line, no faults (what `Synthetic::new` drives).
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            start_at: 0.0,
            pace: 1.0,
            faults: vec![],
            fuel_leak_l_per_lap: 0.0,
            inconsistency_m: 0.0,
        }
    }
}

/// The ways a driver's lap departs from the ideal one, for one lap.
#[derive(Debug, Clone, Default)]
struct LapPlan {
    /// (corner index into `corners`, metres) for each kind of fault.
    brake_early: Vec<(usize, f64)>,
    late_throttle: Vec<(usize, f64)>,
    coast: Vec<(usize, f64)>,
    pace: f64,
}

fn profile(segments: &[Segment], grip_scale: f64) -> Profile {
    let length: f64 = segments.iter().map(|s| s.length).sum();
    let n = (length / STEP).ceil() as usize + 1;
    let mut curvature = Vec::with_capacity(n);
    let mut xy = Vec::with_capacity(n);
    let (mut x, mut y, mut heading) = (0.0f64, 0.0f64, 0.0f64);
    let mut seg = 0;
    let mut into = 0.0;
    for _ in 0..n {
        while seg < segments.len() && into >= segments[seg].length {
            into -= segments[seg].length;
            seg += 1;
        }
        let k = match segments.get(seg).and_then(|s| s.radius.map(|r| (r, s.left))) {
            Some((r, left)) => (if left { 1.0 } else { -1.0 }) / r,
            None => 0.0,
        };
        curvature.push(k);
        xy.push((x, y));
        heading += k * STEP;
        x += STEP * heading.cos();
        y += STEP * heading.sin();
        into += STEP;
    }
    // Corner limit, then acceleration (forward) and braking (backward) limits; twice round so
    // the lap wraps smoothly.
    let corner_limit: Vec<f64> =
        curvature
            .iter()
            .map(|k| {
                if *k == 0.0 {
                    CAR.vmax
                } else {
                    (CAR.grip_g * grip_scale * G / k.abs()).sqrt().min(CAR.vmax)
                }
            })
            .collect();
    let mut speed = corner_limit.clone();
    for _ in 0..2 {
        for i in 0..n {
            let prev = speed[(i + n - 1) % n];
            let v = prev.max(5.0);
            let accel = (CAR.power_w / (CAR.mass * v) - CAR.drag * v * v / CAR.mass).max(0.0);
            speed[i] = speed[i].min((prev * prev + 2.0 * accel * STEP).sqrt());
        }
        for i in (0..n).rev() {
            let next = speed[(i + 1) % n];
            let decel = CAR.brake_g * grip_scale * G + CAR.drag * next * next / CAR.mass;
            speed[i] = speed[i].min((next * next + 2.0 * decel * STEP).sqrt());
        }
    }
    let pedals = vec![Pedals::Normal; n];
    Profile { speed, curvature, xy, pedals, length }
}

/// Where each corner of `segments` is.
fn corners(segments: &[Segment]) -> Vec<Corner> {
    let mut out = vec![];
    let mut at = 0.0;
    for s in segments {
        if let Some(radius_m) = s.radius {
            out.push(Corner { number: out.len() + 1, entry_m: at, exit_m: at + s.length, radius_m });
        }
        at += s.length;
    }
    out
}

fn idx(p: &Profile, metres: f64) -> usize {
    ((metres / STEP).round().max(0.0) as usize).min(p.speed.len() - 1)
}

/// Full-throttle acceleration at speed `v` (power against drag).
fn power_accel(v: f64) -> f64 {
    let v = v.max(5.0);
    (CAR.power_w / (CAR.mass * v) - CAR.drag * v * v / CAR.mass).max(0.0)
}

/// The index where braking for the corner that starts at `entry` begins: going back from the
/// entry, the last index of falling speed.
fn brake_start(p: &Profile, entry: usize) -> Option<usize> {
    let mut i = entry;
    while i > 0 && p.speed[i - 1] > p.speed[i] + 1e-9 {
        i -= 1;
    }
    (i < entry).then_some(i)
}

impl Profile {
    /// Brake `metres` before the ideal point, from the speed the car has there, with a constant
    /// (gentler) deceleration that reaches the same speed at the corner entry.
    fn brake_early(&mut self, c: &Corner, metres: f64) {
        let entry = idx(self, c.entry_m);
        let Some(b) = brake_start(self, entry) else { return };
        let start = b.saturating_sub((metres / STEP).round() as usize);
        if start >= b {
            return;
        }
        let (v0, v1) = (self.speed[start], self.speed[entry]);
        let span = (entry - start) as f64;
        for i in start..=entry {
            // v² falls linearly with distance: constant deceleration, braking from `start` on.
            let f = (i - start) as f64 / span;
            let v = (v0 * v0 - (v0 * v0 - v1 * v1) * f).max(0.0).sqrt();
            self.speed[i] = self.speed[i].min(v);
        }
    }

    /// Lift and coast (drag and engine braking only) for `metres` before braking: the lift point
    /// is chosen so that the coast meets the braking curve after that distance; braking then
    /// starts a little later, from a lower speed.
    fn coast(&mut self, c: &Corner, metres: f64) {
        let entry = idx(self, c.entry_m);
        let Some(b) = brake_start(self, entry) else { return };
        let want = (metres / STEP).round() as usize;
        // The coasting speeds from a lift at `start`, up to where they meet the braking curve.
        let coast_from = |start: usize| {
            let mut v = self.speed[start];
            let mut out = vec![];
            for i in start + 1..entry {
                let decel = CAR.drag * v * v / CAR.mass + 0.08 * G;
                v = (v * v - 2.0 * decel * STEP).max(1.0).sqrt();
                if v >= self.speed[i] {
                    break;
                }
                out.push(v);
            }
            out
        };
        let mut start = b;
        let mut speeds = vec![];
        while start > 0 && speeds.len() < want {
            start -= 1;
            speeds = coast_from(start);
        }
        for (k, v) in speeds.into_iter().enumerate() {
            self.speed[start + 1 + k] = v;
            self.pedals[start + 1 + k] = Pedals::Coast;
        }
    }

    /// Hold the corner's minimum speed for `metres` past the point where the throttle would go
    /// down, then accelerate from there.
    fn late_throttle(&mut self, c: &Corner, metres: f64) {
        let (entry, exit) = (idx(self, c.entry_m), idx(self, c.exit_m));
        let n = self.speed.len();
        let Some(apex) = (entry..=exit).min_by(|a, b| self.speed[*a].total_cmp(&self.speed[*b])) else {
            return;
        };
        let mut pick = apex;
        while pick + 1 < n && self.speed[pick + 1] <= self.speed[pick] + 1e-9 {
            pick += 1;
        }
        let hold = (metres / STEP).round() as usize;
        let v0 = self.speed[pick];
        let mut v = v0;
        for i in pick + 1..n {
            if i <= pick + hold {
                v = v0;
                self.pedals[i] = Pedals::Hold;
            } else {
                v = (v * v + 2.0 * power_accel(v) * STEP).sqrt();
            }
            if v >= self.speed[i] {
                break;
            }
            self.speed[i] = v;
        }
    }

    /// The lap of `plan` over this ideal lap.
    fn apply(&mut self, corners: &[Corner], plan: &LapPlan) {
        for &(c, m) in &plan.brake_early {
            self.brake_early(&corners[c], m);
        }
        for &(c, m) in &plan.coast {
            self.coast(&corners[c], m);
        }
        for &(c, m) in &plan.late_throttle {
            self.late_throttle(&corners[c], m);
        }
        if plan.pace > 0.0 && plan.pace != 1.0 {
            // Slower everywhere by the same factor: lap time × pace, braking points unchanged.
            for v in &mut self.speed {
                *v /= plan.pace;
            }
        }
    }
}

/// A seeded stream of believable samples, one per 1/60 s.
pub struct Synthetic {
    rng: StdRng,
    segments: Vec<Segment>,
    lap_profile: Profile,
    start: DateTime<Utc>,
    session_time: f64,
    distance: f64,
    lap: i32,
    speed: f64,
    fuel_l: f64,
    wear: [f64; 4],
    last_lap: Option<f32>,
    best_lap: Option<f32>,
    lap_started_at: f64,
    /// Other cars: (total distance, pace factor).
    field: Vec<(f64, f64)>,
    seq: u64,
    config: SyntheticConfig,
    corners: Vec<Corner>,
    /// The first lap started mid-lap: its time is not a lap time, so none is published for it.
    partial_first_lap: bool,
}

impl Synthetic {
    pub fn new(seed: u64) -> Self {
        Self::with_config(SyntheticConfig::new(seed))
    }

    /// A driver as `config` says. Corner numbers of faults outside T1…T10 are ignored.
    pub fn with_config(config: SyntheticConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let segments = circuit();
        let corners = corners(&segments);
        let grip = 1.0 + rng.random_range(-0.005..0.005);
        let field =
            (0..11).map(|i| (f64::from(i) * 290.0 + 150.0, 0.985 + rng.random_range(0.0..0.03))).collect();
        let start_at = if config.start_at.is_finite() { config.start_at.rem_euclid(1.0) } else { 0.0 };
        let mut car = Self {
            rng,
            lap_profile: profile(&segments, grip),
            segments,
            start: Utc::now(),
            session_time: 0.0,
            distance: 0.0,
            lap: 1,
            speed: 20.0,
            fuel_l: 60.0,
            wear: [1.0; 4],
            last_lap: None,
            best_lap: None,
            lap_started_at: 0.0,
            field,
            seq: 0,
            corners,
            partial_first_lap: start_at > 0.0,
            config,
        };
        car.plan_lap();
        if start_at > 0.0 {
            // Joining mid-lap at racing speed: lap 1 is the partial lap up to the line.
            car.distance = start_at * car.lap_profile.length;
            car.speed = car.at(car.distance).0;
        }
        car
    }

    /// The lap length in metres.
    pub fn track_length(&self) -> f64 {
        self.lap_profile.length
    }

    /// The track's corners, T1 first.
    pub fn corners(&self) -> &[Corner] {
        &self.corners
    }

    /// Applies this driver's faults (and this lap's braking spread) to the lap profile just made.
    fn plan_lap(&mut self) {
        let find = |n: usize| self.corners.iter().position(|c| c.number == n);
        let mut plan = LapPlan {
            pace: if self.config.pace > 0.0 { self.config.pace } else { 1.0 },
            ..LapPlan::default()
        };
        for f in &self.config.faults {
            match *f {
                Fault::BrakeEarly { corner, metres } => {
                    plan.brake_early.extend(find(corner).map(|c| (c, metres)))
                }
                Fault::LateThrottle { corner, metres } => {
                    plan.late_throttle.extend(find(corner).map(|c| (c, metres)))
                }
                Fault::Coast { corner, metres } => plan.coast.extend(find(corner).map(|c| (c, metres))),
            }
        }
        if self.config.inconsistency_m > 0.0 {
            // Drawn from their own stream so the rest of the car (noise, field) does not change.
            let spread = self.config.inconsistency_m;
            let mut rng =
                StdRng::seed_from_u64(self.config.seed ^ (u64::from(self.lap.unsigned_abs()) << 32));
            for c in 0..self.corners.len() {
                plan.brake_early.push((c, rng.random_range(0.0..spread)));
            }
        }
        self.lap_profile.apply(&self.corners, &plan);
    }

    fn at(&self, dist_in_lap: f64) -> (f64, f64, (f64, f64)) {
        let p = &self.lap_profile;
        let i = ((dist_in_lap / STEP) as usize).min(p.speed.len() - 1);
        (p.speed[i], p.curvature[i], p.xy[i])
    }

    fn pedals_at(&self, dist_in_lap: f64) -> Pedals {
        let p = &self.lap_profile;
        p.pedals[((dist_in_lap / STEP) as usize).min(p.pedals.len() - 1)]
    }

    /// The next sample, 1/60 s after the previous one.
    pub fn next_frame(&mut self) -> TelemetryFrame {
        let length = self.lap_profile.length;
        let in_lap = self.distance % length;
        let (target, k, (x, y)) = self.at(in_lap);
        // Follow the profile with a little lag, as a driver does; the profile already holds the
        // braking zones, so a lower target means braking.
        let prev = self.speed;
        let v = prev + (target - prev).clamp(-CAR.brake_g * G * DT * 1.05, 12.0 * DT);
        let accel = (v - prev) / DT;
        self.speed = v.max(1.0);
        self.distance += self.speed * DT;
        self.session_time += DT;

        let pedals = self.pedals_at(in_lap);
        let throttle = if pedals == Pedals::Coast {
            0.0
        } else if pedals == Pedals::Hold {
            8.0
        } else if accel > 0.2 {
            100.0
        } else if accel < -2.0 {
            0.0
        } else {
            (35.0 + 50.0 * (self.speed / CAR.vmax)).min(100.0)
        };
        let brake = if accel < -2.0 && pedals != Pedals::Coast {
            (-accel / (CAR.brake_g * G) * 100.0).clamp(5.0, 100.0)
        } else {
            0.0
        };
        let wheel_rpm = self.speed / (2.0 * std::f64::consts::PI * CAR.wheel_radius) * 60.0;
        let gear = (0..CAR.gears.len())
            .find(|g| wheel_rpm * CAR.gears[*g] * CAR.final_drive < CAR.limit_rpm * 0.93)
            .unwrap_or(CAR.gears.len() - 1);
        let rpm = (wheel_rpm * CAR.gears[gear] * CAR.final_drive).clamp(CAR.idle_rpm, CAR.limit_rpm);
        // About 2.6 l per lap at racing pace.
        let burn_lph = 6.0 + 110.0 * (throttle / 100.0) * (rpm / CAR.limit_rpm);
        let leak = self.config.fuel_leak_l_per_lap.max(0.0) * self.speed * DT / length;
        self.fuel_l = (self.fuel_l - burn_lph / 3600.0 * DT - leak).max(0.0);
        let lateral = self.speed * self.speed * k.abs() / G;
        for (i, w) in self.wear.iter_mut().enumerate() {
            let outer = (k > 0.0) == (i % 2 == 1);
            *w -= self.speed * DT * 2.0e-7 * (1.0 + lateral * if outer { 1.5 } else { 0.5 });
        }
        let steering = (k * 2.7 * 14.0).to_degrees() * 1.0 + self.rng.random_range(-0.4..0.4);

        // Lap completion: a new pace for the next lap (driver noise).
        let new_lap = (self.distance / length).floor() as i32 + 1;
        if new_lap > self.lap {
            let t = (self.session_time - self.lap_started_at) as f32;
            if !std::mem::take(&mut self.partial_first_lap) {
                self.last_lap = Some(t);
                self.best_lap = Some(self.best_lap.map_or(t, |b| b.min(t)));
            }
            self.lap_started_at = self.session_time;
            self.lap = new_lap;
            self.lap_profile = profile(&self.segments, 1.0 + self.rng.random_range(-0.006..0.006));
            self.plan_lap();
        }

        // The field, and our position in it.
        for (d, pace) in &mut self.field {
            *d += self.speed.max(30.0) * *pace * DT;
        }
        let mut order: Vec<f64> = self.field.iter().map(|(d, _)| *d).collect();
        order.push(self.distance);
        order.sort_by(|a, b| b.total_cmp(a));
        let position = order.iter().position(|d| *d == self.distance).map_or(1, |p| p as i32 + 1);
        let mut cars = CarArrays::default();
        for (d, _) in self.field.iter().chain(std::iter::once(&(self.distance, 1.0))) {
            cars.lap.push((d / length).floor() as i32 + 1);
            cars.lap_dist_pct.push(((d % length) / length) as f32);
            let p = order.iter().position(|o| o == d).map_or(0, |p| p as i32 + 1);
            cars.position.push(p);
            cars.on_pit_road.push(false);
        }

        // Metres east/north around a point near Spielberg, to degrees.
        let (lat0, lon0) = (47.2197f64, 14.7647f64);
        let latitude = lat0 + y / 111_320.0;
        let longitude = lon0 + x / (111_320.0 * lat0.to_radians().cos());

        let sample = TelemetrySample {
            session_time: self.session_time,
            speed: (self.speed * 3.6) as f32,
            rpm: rpm as f32,
            gear: i8::try_from(gear + 1).unwrap_or(6),
            throttle: throttle as f32,
            brake: brake as f32,
            clutch: 0.0,
            steering_angle: steering.clamp(-540.0, 540.0) as f32,
            lap: self.lap,
            track_position: ((self.distance % length) / length) as f32,
            sector: (((self.distance % length) / length) * 3.0).floor() as u8 + 1,
            position,
            fuel_level: self.fuel_l as f32,
            fuel_level_pct: (self.fuel_l / CAR.tank_l * 100.0) as f32,
            fuel_use_per_hour: (burn_lph * 0.75) as f32,
            tire_wear: Some(TireSet {
                front_left: (self.wear[0] * 100.0) as f32,
                front_right: (self.wear[1] * 100.0) as f32,
                rear_left: (self.wear[2] * 100.0) as f32,
                rear_right: (self.wear[3] * 100.0) as f32,
            }),
            tire_temps: Some(TireSet {
                front_left: (82.0 + lateral * 6.0) as f32,
                front_right: (84.0 + lateral * 6.0) as f32,
                rear_left: (80.0 + lateral * 4.0) as f32,
                rear_right: (81.0 + lateral * 4.0) as f32,
            }),
            latitude: Some(latitude),
            longitude: Some(longitude),
            on_pit_road: false,
            track_surface: Some(3),
            incidents: Some(0),
            flags: 0x0004, // green
            last_lap_time: self.last_lap,
            best_lap_time: self.best_lap,
            cars: Some(cars),
        };
        self.seq += 1;
        let ms = (self.session_time * 1000.0) as i64;
        TelemetryFrame { seq: None, timestamp: self.start + ChronoDuration::milliseconds(ms), sample }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_are_believable_and_deterministic() {
        let mut a = Synthetic::new(7);
        let mut b = Synthetic::new(7);
        let mut laps = vec![];
        let mut max_speed = 0.0f32;
        let mut braked = false;
        let mut last_lap = 1;
        for _ in 0..(60 * 60 * 5) {
            let f = a.next_frame();
            assert_eq!(f.sample, b.next_frame().sample, "same seed, same car");
            f.sample.validate().expect("valid sample");
            max_speed = max_speed.max(f.sample.speed);
            braked |= f.sample.brake > 50.0;
            if f.sample.lap != last_lap {
                laps.push(f.sample.last_lap_time.unwrap());
                last_lap = f.sample.lap;
            }
        }
        assert!(laps.len() >= 2, "{laps:?}");
        for l in &laps {
            assert!((70.0..130.0).contains(l), "lap time {l}");
        }
        assert!(laps.windows(2).any(|w| (w[0] - w[1]).abs() > 0.01), "driver noise varies laps: {laps:?}");
        assert!((200.0..300.0).contains(&max_speed), "top speed {max_speed}");
        assert!(braked, "there are braking zones");
        let f = a.next_frame();
        assert!(f.sample.fuel_level < 60.0);
        assert!(f.sample.tire_wear.unwrap().front_left < 100.0);
        assert_eq!(f.sample.cars.unwrap().lap.len(), 12);
    }

    /// Frames of lap `lap` (the counter) of `car`, as (metres into the lap, sample).
    fn lap_frames(car: &mut Synthetic, lap: i32) -> Vec<(f64, TelemetrySample)> {
        let length = car.track_length();
        let mut out = vec![];
        loop {
            let f = car.next_frame();
            if f.sample.lap > lap {
                return out;
            }
            if f.sample.lap == lap {
                out.push((f64::from(f.sample.track_position) * length, f.sample));
            }
        }
    }

    fn with(faults: Vec<Fault>) -> Synthetic {
        Synthetic::with_config(SyntheticConfig { faults, ..SyntheticConfig::new(5) })
    }

    fn lap_time(frames: &[(f64, TelemetrySample)]) -> f64 {
        frames.len() as f64 * DT
    }

    /// Where braking for the corner at `entry` starts: the first braking frame in the 500 m before.
    fn braking_point(frames: &[(f64, TelemetrySample)], entry: f64) -> f64 {
        frames.iter().find(|(d, s)| (entry - 500.0..entry).contains(d) && s.brake > 0.0).unwrap().0
    }

    #[test]
    fn corners_are_numbered_in_lap_order() {
        let car = Synthetic::new(1);
        let c = car.corners();
        assert_eq!(c.len(), 10);
        assert!((c[0].entry_m - 820.0).abs() < 1e-9 && c[0].radius_m == 25.0, "{:?}", c[0]);
        assert!(c.windows(2).all(|w| w[0].exit_m <= w[1].entry_m));
    }

    #[test]
    fn braking_early_brakes_earlier_and_loses_time() {
        let mut clean = with(vec![]);
        let mut early = with(vec![Fault::BrakeEarly { corner: 4, metres: 20.0 }]);
        let entry = clean.corners()[3].entry_m;
        let (a, b) = (lap_frames(&mut clean, 1), lap_frames(&mut early, 1));
        let (pa, pb) = (braking_point(&a, entry), braking_point(&b, entry));
        assert!(((pa - pb) - 20.0).abs() < 3.0, "braking point {pa:.1} m clean, {pb:.1} m early");
        // Other corners are untouched.
        let t1 = clean.corners()[0].entry_m;
        assert!((braking_point(&a, t1) - braking_point(&b, t1)).abs() < 1.0);
        // Slowing earlier costs time.
        assert!(lap_time(&b) > lap_time(&a) + 0.1, "{} vs {}", lap_time(&b), lap_time(&a));
    }

    #[test]
    fn late_throttle_picks_up_later_and_loses_time() {
        let mut clean = with(vec![]);
        let mut late = with(vec![Fault::LateThrottle { corner: 7, metres: 30.0 }]);
        let c = clean.corners()[6];
        let (a, b) = (lap_frames(&mut clean, 1), lap_frames(&mut late, 1));
        let pick = |f: &[(f64, TelemetrySample)]| {
            f.iter().find(|(d, s)| *d > c.entry_m && s.throttle >= 99.0).unwrap().0
        };
        let (pa, pb) = (pick(&a), pick(&b));
        assert!(((pb - pa) - 30.0).abs() < 3.0, "full throttle at {pa:.1} m clean, {pb:.1} m late");
        assert!(lap_time(&b) > lap_time(&a) + 0.05);
    }

    #[test]
    fn coasting_shows_neither_pedal_before_the_braking_point() {
        let mut clean = with(vec![]);
        let mut coasting = with(vec![Fault::Coast { corner: 1, metres: 60.0 }]);
        let entry = clean.corners()[0].entry_m;
        let (a, b) = (lap_frames(&mut clean, 1), lap_frames(&mut coasting, 1));
        let coast = |f: &[(f64, TelemetrySample)]| {
            let zone: Vec<f64> = f
                .iter()
                .filter(|(d, s)| (entry - 400.0..entry).contains(d) && s.throttle == 0.0 && s.brake == 0.0)
                .map(|(d, _)| *d)
                .collect();
            zone.last().zip(zone.first()).map_or(0.0, |(l, f)| l - f)
        };
        assert!(coast(&a) < 3.0, "the clean lap coasts {} m", coast(&a));
        assert!((coast(&b) - 60.0).abs() < 3.0, "coasting {} m", coast(&b));
        assert!(lap_time(&b) > lap_time(&a));
    }

    #[test]
    fn a_fuel_leak_raises_fuel_per_lap() {
        let used = |mut car: Synthetic| {
            let f = lap_frames(&mut car, 2);
            f64::from(f[0].1.fuel_level - f[f.len() - 1].1.fuel_level)
        };
        let plain = used(Synthetic::new(3));
        let leak = used(Synthetic::with_config(SyntheticConfig {
            fuel_leak_l_per_lap: 0.8,
            ..SyntheticConfig::new(3)
        }));
        assert!((1.0..4.0).contains(&plain), "{plain} l per lap");
        assert!(((leak - plain) - 0.8).abs() < 0.05, "{leak} l with the leak, {plain} l without");
    }

    #[test]
    fn start_offset_and_pace_differ_and_laps_complete() {
        let mut a = Synthetic::new(1);
        let mut b =
            Synthetic::with_config(SyntheticConfig { start_at: 0.4, pace: 1.03, ..SyntheticConfig::new(2) });
        let (fa, fb) = (a.next_frame().sample, b.next_frame().sample);
        assert!(fa.track_position < 0.01);
        assert!(
            (fb.track_position - 0.4).abs() < 0.01 && fb.lap == 1,
            "{} lap {}",
            fb.track_position,
            fb.lap
        );
        assert!(fb.speed > 100.0, "joins at racing speed, not {} km/h", fb.speed);
        let (mut lap, mut times) = (1, vec![]);
        for _ in 0..(60 * 60 * 6) {
            let s = b.next_frame().sample;
            assert!(s.lap >= lap, "the lap counter never goes back");
            assert_eq!((s.track_surface, s.incidents), (Some(3), Some(0)));
            if s.lap > lap {
                // The partial first lap has no lap time; every whole one has.
                assert_eq!(s.last_lap_time.is_some(), lap > 1, "lap {lap}");
                times.extend(s.last_lap_time);
                lap = s.lap;
            }
        }
        assert!(times.len() >= 2, "{times:?}");
        let clean: Vec<f64> = {
            let mut c = Synthetic::new(2);
            lap_frames(&mut c, 1);
            (0..2).map(|l| lap_time(&lap_frames(&mut c, l + 2))).collect()
        };
        let ratio = f64::from(times[0]) / clean[0];
        assert!((1.02..1.04).contains(&ratio), "pace 1.03 gives a lap {ratio:.4}× the clean one");
    }

    #[test]
    fn inconsistency_spreads_the_braking_point() {
        let mut car =
            Synthetic::with_config(SyntheticConfig { inconsistency_m: 25.0, ..SyntheticConfig::new(4) });
        let entry = car.corners()[0].entry_m;
        lap_frames(&mut car, 1);
        let points: Vec<f64> = (2..6).map(|l| braking_point(&lap_frames(&mut car, l), entry)).collect();
        let spread =
            points.iter().cloned().fold(f64::MIN, f64::max) - points.iter().cloned().fold(f64::MAX, f64::min);
        assert!((5.0..=30.0).contains(&spread), "{points:?}");
        let mut again =
            Synthetic::with_config(SyntheticConfig { inconsistency_m: 25.0, ..SyntheticConfig::new(4) });
        assert_eq!(car.next_frame().sample.brake, {
            lap_frames(&mut again, 5);
            again.next_frame().sample.brake
        });
    }

    #[test]
    fn other_seeds_drive_differently() {
        let mut a = Synthetic::new(1);
        let mut b = Synthetic::new(2);
        let fa: Vec<f32> = (0..600).map(|_| a.next_frame().sample.speed).collect();
        let fb: Vec<f32> = (0..600).map(|_| b.next_frame().sample.speed).collect();
        assert_ne!(fa, fb);
    }
}
