//! PitBox's coach engine: the analysis behind every coaching message, as pure functions of lap
//! data (no I/O, no clock, no threads; builds for wasm32). Reads no env vars.
//!
//! A completed lap (`Vec<TelemetryFrame>`) becomes a [`LapTrace`]; a clean lap teaches a track's
//! [`CornerMap`]; [`compare`] measures a lap against a reference corner by corner; the
//! [`Coach`] keeps a driver's laps and turns each new one into [`Finding`]s, consistency,
//! patterns and strategy, and into the seed's `ai_coaching` and `analyze` shapes.

pub mod compare;
pub mod corners;
pub mod trace;

pub use compare::{
    compare, corner_metrics, CornerComparison, CornerMetrics, LapComparison, MetricOptions, SegmentDelta,
};
pub use corners::{parse_turns, Corner, CornerMap, LearnOptions, Segment, SegmentId, Turn, TurnsError};
pub use trace::{LapTrace, TraceError, TracePoint};
