//! PitBox's coach engine: the analysis behind every coaching message, as pure functions of lap
//! data (no I/O, no clock, no threads; builds for wasm32). Reads no env vars.
//!
//! A completed lap (`Vec<TelemetryFrame>`) becomes a [`LapTrace`]; a clean lap teaches a track's
//! [`CornerMap`]; [`compare`] measures a lap against a reference corner by corner; the [`Coach`]
//! keeps a driver's laps and turns each new one into a [`LapReport`]: [`Finding`]s with their
//! patterns, consistency, the most costly corners and the [`Strategy`]; [`output`] renders a report
//! in the seed's `ai_coaching` and `analyze` shapes.

pub mod coach;
pub mod compare;
pub mod consistency;
pub mod corners;
pub mod findings;
pub mod hygiene;
pub mod output;
pub mod strategy;
pub mod trace;

pub use coach::{Coach, CoachConfig, LapReport, StoredLap};
pub use compare::{
    compare, corner_metrics, CornerComparison, CornerMetrics, LapComparison, MetricOptions, SegmentDelta,
};
pub use consistency::{consistency, costly_corners, pattern, CornerConsistency, CornerCost};
pub use corners::{parse_turns, Corner, CornerMap, LearnOptions, Segment, SegmentId, Turn, TurnsError};
pub use findings::{classify, CornerFault, FaultThresholds, Finding, Issue, Pattern, Subject};
pub use hygiene::LapQuality;
pub use output::{ai_coaching, analyze_frames, analyze_response, feedback, spoken_tip, AnalyzeResponse};
pub use strategy::{
    strategy, tyre_trend, FuelOptions, LapResources, PitWindow, Remaining, Strategy, TyreTrend,
};
pub use trace::{LapTrace, TraceError, TracePoint};
