//! The dashboard's logic without a browser: state and reducer, lap and fuel maths, chart and track
//! geometry, the actor tree. Everything here is unit-tested natively. Reads no env vars.

pub mod chart;
pub mod format;
pub mod handoff;
pub mod laps;
pub mod store;
pub mod track;
pub mod tree;
pub mod voice;
