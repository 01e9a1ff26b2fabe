//! The one storage layer: every query PitBox makes, written once with diesel against
//! [`DbConnection`](crate::db::DbConnection) (SQLite or PostgreSQL), one module per model, and the
//! lap codec. Functions return diesel's [`QueryResult`](diesel::QueryResult): a row that is not
//! there is [`diesel::result::Error::NotFound`] for the lookups of one row, and a write the data
//! forbids (a taken name, a team that does not exist, a handoff already answered) is a
//! [`Refused`] inside it. What either means to a client (404, 409, …) is decided by the caller
//! (the runtime's routes), never here. The runtime's routes, its socket and CLI, and the actors
//! (the store writer, the coach) all call these. Synchronous. Reads no env vars.

pub mod coaching;
pub mod drivers;
pub mod handoffs;
pub mod laps;
pub mod leases;
pub mod messages;
pub mod sessions;
pub mod teams;
pub mod telemetry;
pub mod tokens;
pub mod tracks;
pub mod users;

use chrono::{NaiveDateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error};
use diesel::QueryResult;

use crate::wire::HandoffStatus;

/// The time rows are stamped with.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

/// A new row id.
pub fn new_id() -> String {
    // v7: time-ordered, so ids sort like creation time and index inserts stay local.
    uuid::Uuid::now_v7().to_string()
}

/// Why a write did not happen, when the reason is the data's and not the database's. Returned
/// inside the query's result (`QueryResult<Result<T, Refused>>`); the caller says what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The team the write names (this id) does not exist.
    NoTeam(String),
    /// The user the write names (this id) does not exist.
    NoUser(String),
    /// A unique key the write would take is taken.
    Taken(Taken),
    /// A handoff request that `is` in this status cannot become `to`.
    Handoff { is: String, to: HandoffStatus },
}

/// Which unique key a write found taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Another user has this username.
    Username(String),
    /// Another team has this name.
    TeamName(String),
    /// The user already has a driver profile.
    DriverProfile,
}

/// An insert's unique violation as [`Refused::Taken`]; any other failure stays diesel's.
fn unless_taken<T>(result: QueryResult<T>, taken: impl FnOnce() -> Taken) -> QueryResult<Result<T, Refused>> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(Err(Refused::Taken(taken()))),
        Err(e) => Err(e),
    }
}

/// A value that does not fit its column or type, as diesel's serialization error.
fn unstorable(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::SerializationError(Box::new(e))
}

/// A stored value that does not read back, as diesel's deserialization error.
fn unreadable(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::DeserializationError(Box::new(e))
}

/// Whether the database answers (`/readyz`).
pub fn ping(conn: &mut crate::db::DbConnection) -> QueryResult<()> {
    use diesel::connection::SimpleConnection;
    conn.batch_execute("SELECT 1")
}
