//! The PitBox protocol: every type that crosses the wire between the runtime, driver nodes and
//! dashboards (WebSocket envelopes and REST bodies). serde only, so it builds for wasm32 without
//! diesel or actix. Field names follow the original PitBox documents (camelCase JSON).

mod envelope;
mod rest;
mod telemetry;

pub use envelope::*;
pub use rest::*;
pub use telemetry::*;

/// Version of the protocol spoken by this build; sent in `connection_established`.
pub const PROTOCOL_VERSION: u16 = 1;
