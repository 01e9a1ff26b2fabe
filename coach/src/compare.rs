//! One lap against a reference lap, corner by corner: braking point, peak brake, minimum speed
//! and where, throttle pick-up, coasting, and the time gained or lost from a distance-aligned
//! delta. Corner and straight deltas are differences of the same delta curve at the segments'
//! ends, and the segments tile the lap, so they add up to the lap delta. Reads no env vars.

use serde::{Deserialize, Serialize};

use crate::corners::{CornerMap, SegmentId, BRAKE_ON};
use crate::trace::{LapTrace, TracePoint};

/// Pedal thresholds (%) and search distances (metres) of the per-corner measurements.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricOptions {
    /// Throttle under this is a lift.
    pub lift: f32,
    /// Throttle at or above this after a lift is the pick-up.
    pub pickup: f32,
    /// Neither pedal above this is coasting.
    pub coast: f32,
    /// How far before a corner its braking point is looked for (stops at the previous corner).
    pub lookback_m: f64,
    /// How far past a corner its throttle pick-up is looked for (stops at the next corner).
    pub lookahead_m: f64,
    /// Coasting counts from this far before the braking point (or the corner's start), so the
    /// exit of the previous corner is not this corner's coasting.
    pub coast_before_m: f64,
}

impl Default for MetricOptions {
    fn default() -> Self {
        MetricOptions {
            lift: 20.0,
            pickup: 50.0,
            coast: 5.0,
            lookback_m: 250.0,
            lookahead_m: 120.0,
            coast_before_m: 60.0,
        }
    }
}

/// What a driver did in one corner of one lap. Distances are metres from the line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CornerMetrics {
    /// Where the brake first went on in the approach; `None` when the corner was taken without
    /// braking.
    pub braking_point_m: Option<f64>,
    /// 0–100 %.
    pub peak_brake: f32,
    /// km/h.
    pub min_speed_kmh: f32,
    pub min_speed_at_m: f64,
    /// Where the throttle came back after the lift; `None` when the driver never lifted.
    pub throttle_pickup_m: Option<f64>,
    /// Metres with neither pedal applied, from the approach to the corner's end.
    pub coasting_m: f64,
    /// Seconds from the corner's start to its end.
    pub time_s: f64,
    /// km/h where the approach begins (a slow entry explains a slow corner).
    pub entry_speed_kmh: f32,
}

/// One corner of a lap against the same corner of the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CornerComparison {
    pub number: u32,
    pub name: String,
    /// Seconds, lap minus reference (positive = slower).
    pub delta_s: f64,
    /// Seconds, the corner and the straight after it: a slow exit costs on the straight, and
    /// this is what a finding about the corner quotes.
    pub with_exit_delta_s: f64,
    pub lap: CornerMetrics,
    pub reference: CornerMetrics,
    /// Metres, lap minus reference along the lap (negative = braked earlier); `None` unless both
    /// braked.
    pub braking_point_diff_m: Option<f64>,
    /// km/h, lap minus reference.
    pub min_speed_diff_kmh: f32,
    /// Metres (positive = later on the throttle); `None` unless both lifted.
    pub throttle_pickup_diff_m: Option<f64>,
    /// Metres, lap minus reference.
    pub coasting_diff_m: f64,
}

/// A piece of the lap's delta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentDelta {
    pub id: SegmentId,
    pub label: String,
    /// Seconds, lap minus reference, summed over the segment's pieces.
    pub delta_s: f64,
}

/// A lap against its reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LapComparison {
    pub lap: i32,
    pub reference_lap: i32,
    /// Seconds, lap time minus reference lap time.
    pub lap_delta_s: f64,
    /// Corners and straights in lap order; their deltas add up to `lap_delta_s`.
    pub segments: Vec<SegmentDelta>,
    /// In corner order.
    pub corners: Vec<CornerComparison>,
}

/// Signed difference of two lap positions in metres, the short way around the lap.
fn along(a: f64, b: f64, length: f64) -> f64 {
    let d = a - b;
    if d > length / 2.0 {
        d - length
    } else if d < -length / 2.0 {
        d + length
    } else {
        d
    }
}

/// Where `value` crosses `level` going up between two points (lap fraction, unwrapped).
fn crossing(a: &TracePoint, b: &TracePoint, va: f32, vb: f32, level: f32) -> f64 {
    if vb > va && va < level {
        let t = f64::from((level - va) / (vb - va)).clamp(0.0, 1.0);
        a.pos + (b.pos - a.pos) * t
    } else {
        b.pos
    }
}

/// Seconds between lap fractions `from` and `to` (across the line when `to < from`).
fn time_between(trace: &LapTrace, from: f64, to: f64) -> f64 {
    if to < from {
        (trace.lap_time - trace.time_at(from)) + trace.time_at(to)
    } else {
        trace.time_at(to) - trace.time_at(from)
    }
}

/// Measures corner `number` of `map` on `trace`.
pub fn corner_metrics(
    map: &CornerMap,
    number: u32,
    trace: &LapTrace,
    opts: &MetricOptions,
) -> Option<CornerMetrics> {
    let corner = map.corner(number)?;
    let length = trace.track_length_m;
    let approach = map.approach_start(number, opts.lookback_m).rem_euclid(1.0);
    let exit = exit_end(map, number, opts.lookahead_m).rem_euclid(1.0);
    let pts: Vec<TracePoint> = trace.span(approach, exit).collect();
    // Unwrapped position of the corner's start and end within `pts`.
    let unwrap = |p: f64| if p < approach { p + 1.0 } else { p };
    let (start_u, end_u) = (unwrap(corner.start), unwrap(corner.end));
    let to_m = |u: f64| (u.rem_euclid(1.0)) * length;

    let mut braking = None;
    let mut peak_brake = 0.0f32;
    let mut coast = 0.0;
    let mut min: Option<TracePoint> = None;
    let mut previous: Option<TracePoint> = None;
    let idle = |q: &TracePoint| q.throttle <= opts.coast && q.brake <= opts.coast;
    for p in &pts {
        if p.pos <= end_u {
            peak_brake = peak_brake.max(p.brake);
            if braking.is_none() && p.brake > BRAKE_ON {
                braking = Some(match &previous {
                    Some(a) => crossing(a, p, a.brake, p.brake, BRAKE_ON),
                    None => p.pos,
                });
            }
        }
        if p.pos >= start_u && p.pos <= end_u && min.is_none_or(|m| p.speed < m.speed) {
            min = Some(*p);
        }
        previous = Some(*p);
    }
    let coast_from = braking.unwrap_or(start_u).min(start_u) - opts.coast_before_m / length.max(1.0);
    for w in pts.windows(2) {
        if let [a, p] = w {
            if a.pos >= coast_from && p.pos <= end_u && idle(a) && idle(p) {
                coast += (p.pos - a.pos) * length;
            }
        }
    }
    // The lift that belongs to this corner is the last one that starts before the braking point
    // (or, taken without braking, any before the corner's end): a lift and pick-up earlier in the
    // approach belong to something else (a pit exit, a lift on the straight).
    let anchor = braking.unwrap_or(end_u);
    let mut lifted = false;
    let mut pickup = None;
    previous = None;
    for p in &pts {
        if p.throttle < opts.lift && p.pos <= anchor {
            lifted = true;
            pickup = None;
        } else if p.throttle < opts.lift && p.pos <= end_u {
            lifted = true;
        } else if lifted && pickup.is_none() && p.throttle >= opts.pickup && p.brake <= BRAKE_ON {
            pickup = Some(match &previous {
                Some(a) => crossing(a, p, a.throttle, p.throttle, opts.pickup),
                None => p.pos,
            });
        }
        previous = Some(*p);
    }
    let min = min.unwrap_or_else(|| trace.sample_at(corner.apex));
    Some(CornerMetrics {
        braking_point_m: braking.map(to_m),
        peak_brake,
        min_speed_kmh: min.speed,
        min_speed_at_m: to_m(min.pos),
        throttle_pickup_m: pickup.map(to_m),
        coasting_m: coast,
        time_s: time_between(trace, corner.start, corner.end),
        entry_speed_kmh: pts.first().map_or(min.speed, |p| p.speed),
    })
}

/// Where the exit of corner `number` ends: `lookahead_m` past it, or the next corner's start.
fn exit_end(map: &CornerMap, number: u32, lookahead_m: f64) -> f64 {
    let Some(c) = map.corner(number) else { return 1.0 };
    let ahead = lookahead_m / map.track_length_m.max(1.0);
    let next_start = map
        .corners
        .iter()
        .filter(|o| o.number != c.number)
        .map(|o| c.end + (o.start - c.end).rem_euclid(1.0))
        .fold(f64::INFINITY, f64::min);
    (c.end + ahead).min(next_start)
}

/// Compares `lap` with `reference` on the corners of `map`.
pub fn compare(map: &CornerMap, reference: &LapTrace, lap: &LapTrace, opts: &MetricOptions) -> LapComparison {
    let delta = |x: f64| lap.time_at(x) - reference.time_at(x);
    let mut segments: Vec<SegmentDelta> = Vec::new();
    for s in map.segments() {
        let d = delta(s.end) - delta(s.start);
        match segments.iter_mut().find(|o| o.id == s.id) {
            Some(existing) => existing.delta_s += d,
            None => segments.push(SegmentDelta { id: s.id, label: map.label(s.id), delta_s: d }),
        }
    }
    if segments.is_empty() {
        segments.push(SegmentDelta {
            id: SegmentId::Straight(0),
            label: map.label(SegmentId::Straight(0)),
            delta_s: delta(1.0) - delta(0.0),
        });
    }
    let length = reference.track_length_m;
    let corners = map
        .corners
        .iter()
        .filter_map(|c| {
            let r = corner_metrics(map, c.number, reference, opts)?;
            let l = corner_metrics(map, c.number, lap, opts)?;
            let of = |id: SegmentId| segments.iter().find(|s| s.id == id).map_or(0.0, |s| s.delta_s);
            let delta_s = of(SegmentId::Corner(c.number));
            let with_exit_delta_s = delta_s + of(SegmentId::Straight(c.number));
            let diff = |a: Option<f64>, b: Option<f64>| Some(along(a?, b?, length));
            Some(CornerComparison {
                number: c.number,
                name: c.name.clone(),
                delta_s,
                with_exit_delta_s,
                braking_point_diff_m: diff(l.braking_point_m, r.braking_point_m),
                min_speed_diff_kmh: l.min_speed_kmh - r.min_speed_kmh,
                throttle_pickup_diff_m: diff(l.throttle_pickup_m, r.throttle_pickup_m),
                coasting_diff_m: l.coasting_m - r.coasting_m,
                lap: l,
                reference: r,
            })
        })
        .collect();
    LapComparison {
        lap: lap.lap,
        reference_lap: reference.lap,
        lap_delta_s: lap.lap_time - reference.lap_time,
        segments,
        corners,
    }
}
