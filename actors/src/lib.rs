//! PitBox's actors and the logic they own. `lap`: lap assembly from a driver's telemetry stream.
//! Reads no environment variables.

pub mod lap;

pub use lap::{CompletedLap, LapAssembler};
