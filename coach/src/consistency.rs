//! Across laps: how consistent a driver is corner by corner (spread of braking point, minimum
//! speed and corner time over the last clean laps), how often a fault recurs ("4 of the last 6
//! laps"), and which corners cost the most on average. Reads no env vars.

use serde::{Deserialize, Serialize};

use crate::compare::LapComparison;
use crate::findings::{classify, CornerFault, FaultThresholds, Pattern};

/// Spread of one corner over several laps (sample standard deviations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CornerConsistency {
    pub number: u32,
    pub name: String,
    pub laps: u32,
    /// Metres; `None` when fewer than two of the laps braked there.
    pub braking_point_sd_m: Option<f64>,
    /// km/h.
    pub min_speed_sd_kmh: f64,
    /// Seconds.
    pub corner_time_sd_s: f64,
}

/// A corner's average cost against the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CornerCost {
    pub number: u32,
    pub name: String,
    /// Seconds per lap, positive = slower than the reference.
    pub mean_delta_s: f64,
    pub laps: u32,
}

/// Sample standard deviation (0 for fewer than two values).
pub fn std_dev(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// Per-corner spread over `laps` (comparisons of clean laps against one reference; the lap's own
/// metrics are used, so the reference does not matter).
pub fn consistency(laps: &[&LapComparison]) -> Vec<CornerConsistency> {
    let Some(first) = laps.first() else { return Vec::new() };
    first
        .corners
        .iter()
        .map(|c| {
            let of_corner: Vec<_> =
                laps.iter().filter_map(|l| l.corners.iter().find(|o| o.number == c.number)).collect();
            let braking: Vec<f64> = of_corner.iter().filter_map(|o| o.lap.braking_point_m).collect();
            let min: Vec<f64> = of_corner.iter().map(|o| f64::from(o.lap.min_speed_kmh)).collect();
            let time: Vec<f64> = of_corner.iter().map(|o| o.lap.time_s).collect();
            CornerConsistency {
                number: c.number,
                name: c.name.clone(),
                laps: of_corner.len() as u32,
                braking_point_sd_m: (braking.len() >= 2).then(|| std_dev(&braking)),
                min_speed_sd_kmh: std_dev(&min),
                corner_time_sd_s: std_dev(&time),
            }
        })
        .collect()
}

/// How many of `laps` show a fault of the same kind as `fault` at corner `number`.
pub fn pattern(laps: &[&LapComparison], number: u32, fault: &CornerFault, t: &FaultThresholds) -> Pattern {
    let count = laps
        .iter()
        .filter(|l| {
            l.corners
                .iter()
                .find(|c| c.number == number)
                .is_some_and(|c| classify(c, t).iter().any(|f| f.same_kind(fault)))
        })
        .count();
    Pattern { count: count as u32, of: laps.len() as u32 }
}

/// Corners by average time lost, most costly first.
pub fn costly_corners(laps: &[&LapComparison]) -> Vec<CornerCost> {
    let Some(first) = laps.first() else { return Vec::new() };
    let mut out: Vec<CornerCost> = first
        .corners
        .iter()
        .map(|c| {
            let deltas: Vec<f64> = laps
                .iter()
                .filter_map(|l| l.corners.iter().find(|o| o.number == c.number))
                .map(|o| o.delta_s)
                .collect();
            CornerCost {
                number: c.number,
                name: c.name.clone(),
                mean_delta_s: deltas.iter().sum::<f64>() / deltas.len().max(1) as f64,
                laps: deltas.len() as u32,
            }
        })
        .collect();
    out.sort_by(|a, b| b.mean_delta_s.total_cmp(&a.mean_delta_s));
    out
}
