//! Laps as the pit wall uses them: a lap's trace over lap distance (from the REST channels), the
//! delta of one lap to another along the track, the live lap's delta to the reference lap, and fuel
//! per lap. Pure logic, unit-tested natively. Reads no env vars.

use pitbox_schema::timing::{Boundary, LapTimer, TimingPoint};
use pitbox_schema::wire::{LapChannels, LapSummary, TelemetrySample};

use super::chart::interpolate;

/// Channels a lap trace needs from `GET /api/laps/{id}?channels=…`.
pub const TRACE_CHANNELS: &str = "trackPosition,sessionTime,speed,throttle,brake";

/// One lap along the track: elapsed time and speed at each lap-distance fraction (0–1), sorted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LapTrace {
    pub lap_id: String,
    pub lap_number: i32,
    pub lap_time: f64,
    /// (fraction, seconds since the line)
    pub time: Vec<(f64, f64)>,
    /// (fraction, km/h)
    pub speed: Vec<(f64, f64)>,
    /// (fraction, throttle %, brake %)
    pub pedals: Vec<(f64, f64, f64)>,
}

fn column(ch: &LapChannels, name: &str) -> Vec<Option<f64>> {
    ch.channels.get(name).map(|v| v.iter().map(|x| x.as_f64()).collect()).unwrap_or_default()
}

impl LapTrace {
    /// Builds the trace from a lap's channels. Frames before the car really crossed the line
    /// (fraction still near 1) and any backwards step are skipped, so the series is increasing.
    pub fn from_channels(ch: &LapChannels) -> Option<LapTrace> {
        let pos = column(ch, "trackPosition");
        let t = column(ch, "sessionTime");
        let speed = column(ch, "speed");
        let throttle = column(ch, "throttle");
        let brake = column(ch, "brake");
        let mut out = LapTrace {
            lap_id: ch.lap.id.clone(),
            lap_number: ch.lap.lap_number,
            lap_time: ch.lap.lap_time,
            ..LapTrace::default()
        };
        let mut last = -1.0;
        let mut t0 = None;
        for (i, p) in pos.iter().enumerate() {
            let (Some(p), Some(ti)) = (*p, t.get(i).copied().flatten()) else { continue };
            if p <= last || (last < 0.0 && p > 0.5) {
                continue;
            }
            last = p;
            // The first frame comes just after the line: extrapolate back to the crossing.
            let t0 = *t0.get_or_insert(ti - p * ch.lap.lap_time.max(0.0));
            out.time.push((p, ti - t0));
            let s = speed.get(i).copied().flatten().unwrap_or(0.0);
            out.speed.push((p, s));
            let th = throttle.get(i).copied().flatten().unwrap_or(0.0);
            let br = brake.get(i).copied().flatten().unwrap_or(0.0);
            out.pedals.push((p, th, br));
        }
        // The lap ends at the line: the last point is the lap time at fraction 1.
        if out.lap_time > 0.0 {
            out.time.push((1.0, out.lap_time));
        }
        (out.time.len() >= 2).then_some(out)
    }

    /// Seconds since the line at fraction `p`.
    pub fn time_at(&self, p: f64) -> Option<f64> {
        interpolate(&self.time, p)
    }
}

/// Delta of `lap` to `reference` along the track: positive where `lap` is behind.
pub fn delta_series(reference: &LapTrace, lap: &LapTrace) -> Vec<(f64, f64)> {
    lap.time.iter().filter_map(|&(p, t)| reference.time_at(p).map(|r| (p, t - r))).collect()
}

/// The lap being driven now, for the live delta. Where it started comes from the shared lap timer
/// (`pitbox_schema::timing`), the same code that times the stored laps, so the live delta and the lap table
/// agree.
#[derive(Debug, Clone, Default)]
pub struct CurrentLap {
    pub lap: i32,
    timer: LapTimer,
}

impl CurrentLap {
    /// Follows the car; returns true when a new lap began.
    pub fn push(&mut self, s: &TelemetrySample) -> bool {
        let step = self.timer.push(TimingPoint {
            time: s.session_time,
            lap: s.lap,
            pct: Some(s.track_position),
            reported: s.last_lap_time,
        });
        self.lap = s.lap;
        matches!(step.boundary, Boundary::Crossed { .. })
    }

    /// Session time at the line; `None` until the car has crossed it once while we watched.
    pub fn start(&self) -> Option<f64> {
        self.timer.lap_start()
    }

    /// Seconds into this lap at session time `t`.
    pub fn elapsed(&self, t: f64) -> Option<f64> {
        self.start().map(|s| t - s)
    }

    /// Delta to the reference lap at the car's current place.
    pub fn delta(&self, s: &TelemetrySample, reference: &LapTrace) -> Option<f64> {
        let elapsed = self.elapsed(s.session_time)?;
        let r = reference.time_at(f64::from(s.track_position))?;
        Some(elapsed - r)
    }
}

/// Litres per lap from the recent valid laps that recorded fuel use.
pub fn fuel_per_lap(laps: &[LapSummary]) -> Option<f64> {
    let used: Vec<f64> = laps
        .iter()
        .rev()
        .filter(|l| l.valid)
        .filter_map(|l| l.fuel_used)
        .filter(|f| *f > 0.0 && f.is_finite())
        .take(5)
        .collect();
    if used.is_empty() {
        return None;
    }
    Some(used.iter().sum::<f64>() / used.len() as f64)
}

/// iRacing reports fuel use in kg/h; petrol weighs about 0.75 kg per litre.
const FUEL_KG_PER_LITRE: f64 = 0.75;

/// Laps the fuel in the tank lasts: from measured laps, else from the live burn rate and a lap time.
pub fn laps_of_fuel(s: &TelemetrySample, per_lap: Option<f64>, lap_time: Option<f64>) -> Option<f64> {
    let per_lap = per_lap.or_else(|| {
        let lap = lap_time.filter(|t| *t > 0.0)?;
        let litres_per_hour = f64::from(s.fuel_use_per_hour) / FUEL_KG_PER_LITRE;
        (litres_per_hour > 0.0).then(|| litres_per_hour * lap / 3600.0)
    })?;
    (per_lap > 0.0).then(|| f64::from(s.fuel_level) / per_lap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn summary(n: i32, time: f64, fuel: Option<f64>, valid: bool) -> LapSummary {
        serde_json::from_value(serde_json::json!({
            "id": format!("lap{n}"), "sessionId": "s", "driverId": "d", "lapNumber": n,
            "lapTime": time, "valid": valid, "fuelUsed": fuel, "sectorTimes": [],
            "sampleCount": 10, "completedAt": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    /// A lap at constant speed taking `secs`, sampled 100 times, starting with two frames from
    /// before the line (fraction ~1).
    fn channels(n: i32, secs: f64) -> LapChannels {
        let mut pos = vec![serde_json::json!(0.998), serde_json::json!(0.999)];
        let mut t = vec![serde_json::json!(-0.2), serde_json::json!(-0.1)];
        for i in 0..100 {
            let f = f64::from(i) / 100.0;
            pos.push(serde_json::json!(f));
            t.push(serde_json::json!(100.0 + f * secs));
        }
        let mut m = BTreeMap::new();
        m.insert("trackPosition".to_owned(), pos);
        m.insert("sessionTime".to_owned(), t);
        LapChannels { lap: summary(n, secs, None, true), channels: m }
    }

    #[test]
    fn trace_skips_frames_before_the_line() {
        let tr = LapTrace::from_channels(&channels(1, 90.0)).unwrap();
        assert_eq!(tr.time.first().unwrap(), &(0.0, 0.0));
        assert_eq!(tr.time.last().unwrap(), &(1.0, 90.0));
        assert!((tr.time_at(0.5).unwrap() - 45.0).abs() < 1e-9);
    }

    #[test]
    fn delta_between_laps() {
        let a = LapTrace::from_channels(&channels(1, 90.0)).unwrap();
        let b = LapTrace::from_channels(&channels(2, 92.0)).unwrap();
        let d = delta_series(&a, &b);
        let (p, half) = d[50];
        assert!((p - 0.5).abs() < 1e-9);
        assert!((half - 1.0).abs() < 1e-9, "{half}");
        assert!((d.last().unwrap().1 - 2.0).abs() < 1e-9);
    }

    fn sample(t: f64, p: f32, lap: i32) -> TelemetrySample {
        TelemetrySample { session_time: t, track_position: p, lap, ..Default::default() }
    }

    #[test]
    fn live_delta_after_the_line() {
        let reference = LapTrace::from_channels(&channels(1, 90.0)).unwrap();
        let mut cur = CurrentLap::default();
        assert!(!cur.push(&sample(10.0, 0.99, 1)));
        assert!(cur.delta(&sample(10.0, 0.99, 1), &reference).is_none(), "no start seen yet");
        // crossing halfway between the two samples: 0.99 -> 0.01 over 1 s
        assert!(cur.push(&sample(11.0, 0.01, 2)));
        assert!((cur.start().unwrap() - 10.5).abs() < 1e-4);
        // at half distance after 46 s: reference took 45 s -> +1.0 (a sample a second on the way:
        // a longer gap would lose the lap's start)
        for i in 1..46 {
            cur.push(&sample(11.0 + f64::from(i), 0.01 + 0.49 * i as f32 / 46.0, 2));
        }
        let s = sample(10.5 + 46.0, 0.5, 2);
        cur.push(&s);
        assert!((cur.delta(&s, &reference).unwrap() - 1.0).abs() < 1e-6);
        // session restart resets
        cur.push(&sample(1.0, 0.3, 1));
        assert!(cur.start().is_none());
    }

    #[test]
    fn fuel() {
        let laps = vec![
            summary(1, 90.0, Some(3.0), true),
            summary(2, 90.0, Some(9.0), false), // invalid: ignored
            summary(3, 90.0, Some(2.0), true),
            summary(4, 90.0, None, true),
        ];
        assert_eq!(fuel_per_lap(&laps), Some(2.5));
        assert_eq!(fuel_per_lap(&[]), None);
        let s = TelemetrySample { fuel_level: 25.0, fuel_use_per_hour: 75.0, ..Default::default() };
        assert_eq!(laps_of_fuel(&s, Some(2.5), None), Some(10.0));
        // 75 kg/h = 100 L/h; a 90 s lap burns 2.5 L
        assert!((laps_of_fuel(&s, None, Some(90.0)).unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(laps_of_fuel(&s, None, None), None);
    }
}
