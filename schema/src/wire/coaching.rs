//! The coach's REST shapes beyond the seed's `ai_coaching`: the analyze request and answer, a lap's
//! corner table against its reference, each car's strategy, and a track's map (outline and corners).
//! serde only (wasm-safe). Reads no env vars.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{TelemetryAnalysis, TelemetryFrame};

/// `POST /api/coaching/analyze` body, the seed shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AnalyzeRequest {
    pub driver_id: String,
    /// Frames of one or more laps, oldest first.
    pub telemetry_data: Vec<TelemetryFrame>,
    #[serde(default)]
    pub focus_areas: Vec<String>,
    #[serde(default)]
    pub skill_level: Option<String>,
}

/// `POST /api/coaching/analyze` answer, the seed shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AnalyzeResult {
    pub feedback: String,
    pub suggestions: Vec<String>,
    pub analysis: TelemetryAnalysis,
}

/// One corner (or straight) of a lap against the reference lap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CornerRow {
    /// `T1`…`Tn`, or the team's name for it.
    pub name: String,
    /// `corner` or `straight`.
    pub kind: String,
    /// Lap-distance fractions (0–1); `end < start` for a segment across the line.
    pub start: f64,
    pub end: f64,
    /// Seconds lost (positive) or gained (negative) against the reference here.
    pub delta_s: f64,
    /// Metres earlier (negative) or later (positive) than the reference; `None` when either lap
    /// took it without braking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub braking_point_delta_m: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_brake: Option<f64>,
    /// km/h, this lap and the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_speed: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_min_speed: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_pickup_delta_m: Option<f64>,
    /// Metres with neither pedal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coasting_m: Option<f64>,
}

/// `GET /api/laps/{id}/corners`: a lap's corner table against its reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LapCorners {
    pub lap_id: String,
    pub reference_lap_id: String,
    pub track: String,
    /// Lap time minus the reference's; the rows' `deltaS` add up to it (within 0.01 s).
    pub lap_delta_s: f64,
    pub rows: Vec<CornerRow>,
}

/// A car's fuel and stint picture (`GET /api/teams/{id}/strategy`, one per driver).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CarStrategy {
    pub driver_id: String,
    /// Litres per lap, rolling over clean laps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_per_lap: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_level: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub laps_of_fuel: Option<f64>,
    /// Litres needed to the finish, when the session's length is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_to_finish: Option<f64>,
    /// Laps from now within which to stop: earliest and latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pit_window: Option<(f64, f64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stint_laps: Option<u32>,
    /// A warning worth a call (fuel critical, a leak).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// A named stretch of a track, in lap-distance fractions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TrackCorner {
    pub name: String,
    pub start: f64,
    pub end: f64,
}

/// `GET /api/drivers/{id}/track`: the track a driver is on, its outline from a clean lap's
/// positions (`[lapFraction, x, y]`, metres east/north of the first point) and its corner map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TrackMap {
    pub track: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length_m: Option<f64>,
    pub outline: Vec<[f64; 3]>,
    pub corners: Vec<TrackCorner>,
}
