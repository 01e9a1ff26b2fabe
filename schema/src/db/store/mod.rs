//! The one storage layer: every query PitBox makes, written once with diesel against
//! [`DbConnection`](crate::db::DbConnection) (SQLite or PostgreSQL), one module per model, and the
//! lap codec. Functions return diesel's [`QueryResult`](diesel::QueryResult): what an error means
//! to a client (404, 409, …) is decided by the caller (the runtime's routes), never here. The
//! runtime's routes, its socket and the actors (the store writer, the coach) all call these.
//! Synchronous. Reads no env vars.

pub mod laps;
pub mod leases;
pub mod sessions;

use chrono::{NaiveDateTime, Utc};

/// The time rows are stamped with.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

/// A new row id.
pub fn new_id() -> String {
    // v7: time-ordered, so ids sort like creation time and index inserts stay local.
    uuid::Uuid::now_v7().to_string()
}
