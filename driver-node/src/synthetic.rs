//! The synthetic driver: a believable car on a believable track, for demos and tests on any OS.
//! The track is a closed loop of straights and corners; the car's speed profile comes from a
//! point-mass lap simulation (grip-limited corners, power- and drag-limited straights, braking zones
//! found by a backward pass), so braking points, gears, rpm, throttle and brake traces look like a
//! real lap. Fuel burns with throttle, tyres wear with distance and load, each lap's pace varies
//! with seeded driver noise, and a field of other cars runs around the same lap (the `CarIdx`
//! arrays). Deterministic for a seed. Reads no env vars.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use schema::wire::{CarArrays, TelemetryFrame, TelemetrySample, TireSet};

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

/// A precomputed lap: speed, curvature and position at every `STEP` metres.
struct Profile {
    speed: Vec<f64>,
    curvature: Vec<f64>,
    xy: Vec<(f64, f64)>,
    length: f64,
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
    Profile { speed, curvature, xy, length }
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
}

impl Synthetic {
    pub fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let segments = circuit();
        let lap_profile = profile(&segments, 1.0 + rng.random_range(-0.005..0.005));
        let field =
            (0..11).map(|i| (f64::from(i) * 290.0 + 150.0, 0.985 + rng.random_range(0.0..0.03))).collect();
        Self {
            rng,
            segments,
            lap_profile,
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
        }
    }

    /// The lap length in metres.
    pub fn track_length(&self) -> f64 {
        self.lap_profile.length
    }

    fn at(&self, dist_in_lap: f64) -> (f64, f64, (f64, f64)) {
        let p = &self.lap_profile;
        let i = ((dist_in_lap / STEP) as usize).min(p.speed.len() - 1);
        (p.speed[i], p.curvature[i], p.xy[i])
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

        let throttle = if accel > 0.2 {
            100.0
        } else if accel < -2.0 {
            0.0
        } else {
            (35.0 + 50.0 * (self.speed / CAR.vmax)).min(100.0)
        };
        let brake = if accel < -2.0 { (-accel / (CAR.brake_g * G) * 100.0).clamp(5.0, 100.0) } else { 0.0 };
        let wheel_rpm = self.speed / (2.0 * std::f64::consts::PI * CAR.wheel_radius) * 60.0;
        let gear = (0..CAR.gears.len())
            .find(|g| wheel_rpm * CAR.gears[*g] * CAR.final_drive < CAR.limit_rpm * 0.93)
            .unwrap_or(CAR.gears.len() - 1);
        let rpm = (wheel_rpm * CAR.gears[gear] * CAR.final_drive).clamp(CAR.idle_rpm, CAR.limit_rpm);
        // About 2.6 l per lap at racing pace.
        let burn_lph = 6.0 + 110.0 * (throttle / 100.0) * (rpm / CAR.limit_rpm);
        self.fuel_l = (self.fuel_l - burn_lph / 3600.0 * DT).max(0.0);
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
            self.last_lap = Some(t);
            self.best_lap = Some(self.best_lap.map_or(t, |b| b.min(t)));
            self.lap_started_at = self.session_time;
            self.lap = new_lap;
            self.lap_profile = profile(&self.segments, 1.0 + self.rng.random_range(-0.006..0.006));
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

    #[test]
    fn other_seeds_drive_differently() {
        let mut a = Synthetic::new(1);
        let mut b = Synthetic::new(2);
        let fa: Vec<f32> = (0..600).map(|_| a.next_frame().sample.speed).collect();
        let fb: Vec<f32> = (0..600).map(|_| b.next_frame().sample.speed).collect();
        assert_ne!(fa, fb);
    }
}
