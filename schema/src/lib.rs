//! PitBox's shapes of data and the rules both sides apply to them. `timing`: lap timing, shared
//! by the driver node and the runtime. `wire`: the protocol shared by the runtime, driver nodes and the WASM
//! dashboard (serde only). `db` (feature `db`): diesel tables, models, pool and migrations for
//! SQLite and PostgreSQL. Reads no environment variables.

pub mod timing;
pub mod wire;

#[cfg(feature = "db")]
pub mod db;
