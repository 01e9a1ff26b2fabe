//! What the coach stores, in its own shapes: what a coaching row's `analysis` holds and how a
//! row reads as the wire's `ai_coaching`, a stored track map's corner map and outline, and the
//! track outline from a lap's positions. The queries themselves are the storage layer's
//! (`pitbox_schema::db::store::{coaching, tracks, laps, sessions}`), shared by the `Coach` actor
//! and the runtime's coaching routes. Reads no env vars.

use pitbox_coach::CornerMap;
use pitbox_schema::db::models::{CoachingFeedback, TrackMapRow};
use pitbox_schema::wire::{AiCoaching, CoachingItem, MessagePriority, TelemetryAnalysis, TelemetryFrame};
use serde::{Deserialize, Serialize};

/// Points of a stored outline at most (one every 0.25 % of the lap is plenty for a drawing).
const OUTLINE_POINTS: usize = 400;
/// Metres per degree of latitude.
const M_PER_DEG: f64 = 111_320.0;

/// What `coaching_feedback.analysis` holds: the seed's `telemetryAnalysis` (so a reader that
/// knows only that finds it) plus the coach's numbers, lap and tip.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredAnalysis {
    #[serde(flatten)]
    pub analysis: TelemetryAnalysis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lap_number: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip: Option<String>,
    /// The topic of the spoken tip (see [`crate::coach::TipGate`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip_topic: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<CoachingItem>,
}

/// A coaching row as the wire's `ai_coaching`.
pub fn coaching_to_wire(row: CoachingFeedback) -> AiCoaching {
    let stored: StoredAnalysis = serde_json::from_str(&row.analysis).unwrap_or_default();
    AiCoaching {
        id: Some(row.id),
        driver_id: Some(row.driver_id),
        feedback: row.feedback,
        confidence: row.confidence as f32,
        telemetry_analysis: stored.analysis,
        timestamp: row.created_at.and_utc(),
        priority: row.priority.parse().unwrap_or(MessagePriority::Normal),
        lap_id: row.lap_id,
        lap_number: stored.lap_number,
        tip: stored.tip,
        items: stored.items,
        strategy: None,
    }
}

/// A stored map's corner map.
pub fn corner_map(row: &TrackMapRow) -> Option<CornerMap> {
    serde_json::from_str(&row.corner_map).ok()
}

/// A stored map's outline.
pub fn outline(row: &TrackMapRow) -> Vec<[f64; 3]> {
    serde_json::from_str(&row.outline).unwrap_or_default()
}

/// The track's outline from one lap's positions: `[lapFraction, x, y]`, metres east and north of
/// the first point, at most [`OUTLINE_POINTS`] in lap order. Empty without positions.
pub fn outline_of(frames: &[TelemetryFrame]) -> Vec<[f64; 3]> {
    let pts: Vec<(f64, f64, f64)> = frames
        .iter()
        .filter_map(|f| {
            let s = &f.sample;
            match (s.latitude, s.longitude) {
                (Some(la), Some(lo)) if la.is_finite() && lo.is_finite() && (la != 0.0 || lo != 0.0) => {
                    Some((f64::from(s.track_position), la, lo))
                }
                _ => None,
            }
        })
        .filter(|(p, _, _)| p.is_finite() && (0.0..=1.0).contains(p))
        .collect();
    let Some(&(_, lat0, lon0)) = pts.first() else { return Vec::new() };
    let cos = lat0.to_radians().cos();
    let step = pts.len().div_ceil(OUTLINE_POINTS).max(1);
    let mut out: Vec<[f64; 3]> = pts
        .iter()
        .step_by(step)
        .map(|&(p, la, lo)| {
            let x = (lo - lon0) * M_PER_DEG * cos;
            let y = (la - lat0) * M_PER_DEG;
            [(p * 1e4).round() / 1e4, (x * 10.0).round() / 10.0, (y * 10.0).round() / 10.0]
        })
        .collect();
    out.sort_by(|a, b| a[0].total_cmp(&b[0]));
    out
}
