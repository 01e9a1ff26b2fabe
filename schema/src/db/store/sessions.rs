//! Racing sessions: a driver's stint on one track, in one car, in one sim session (practice,
//! qualifying, race, …). A driver has at most one open session; the driver's `DriverSession` actor
//! owns it (opens it with what the node says, closes it when the sim session ends), and the REST
//! API starts and ends sessions through that actor. Reads no env vars.

use diesel::prelude::*;

use super::{new_id, now};
use crate::db::models::RacingSession;
use crate::db::schema::racing_sessions;
use crate::db::DbConnection;

/// The track or car of a session nobody named (telemetry came without a node saying).
pub const UNKNOWN: &str = "unknown";

/// Where a session is driven: what the driver's node (or the API) names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub track: String,
    pub car: String,
    pub session_type: Option<String>,
}

impl Place {
    /// Nothing named: track and car `"unknown"`, no session type.
    pub fn unknown() -> Self {
        Self { track: UNKNOWN.into(), car: UNKNOWN.into(), session_type: None }
    }

    pub fn is_unknown(&self) -> bool {
        self.track == UNKNOWN && self.car == UNKNOWN && self.session_type.is_none()
    }

    /// Whether `s` is a session at this place.
    pub fn names(&self, s: &RacingSession) -> bool {
        s.track == self.track && s.car == self.car && s.session_type == self.session_type
    }

    /// A new open session row here (not stored yet).
    pub fn new_session(&self, team_id: &str, driver_id: &str) -> RacingSession {
        RacingSession {
            id: new_id(),
            team_id: team_id.to_owned(),
            driver_id: driver_id.to_owned(),
            track: self.track.clone(),
            car: self.car.clone(),
            started_at: now(),
            ended_at: None,
            session_type: self.session_type.clone(),
        }
    }
}

/// The driver's open session, if any (the newest, should there be more).
pub fn open_session(conn: &mut DbConnection, driver_id: &str) -> QueryResult<Option<RacingSession>> {
    racing_sessions::table
        .filter(racing_sessions::driver_id.eq(driver_id))
        .filter(racing_sessions::ended_at.is_null())
        .order(racing_sessions::started_at.desc())
        .select(RacingSession::as_select())
        .first(conn)
        .optional()
}

/// The driver's open session, else its latest.
pub fn current_session(conn: &mut DbConnection, driver_id: &str) -> QueryResult<Option<RacingSession>> {
    racing_sessions::table
        .filter(racing_sessions::driver_id.eq(driver_id))
        .order((racing_sessions::ended_at.is_null().desc(), racing_sessions::started_at.desc()))
        .select(RacingSession::as_select())
        .first(conn)
        .optional()
}

/// One session; [`diesel::result::Error::NotFound`] when there is none.
pub fn get_session(conn: &mut DbConnection, id: &str) -> QueryResult<RacingSession> {
    racing_sessions::table.find(id).select(RacingSession::as_select()).first(conn)
}

/// Ends every open session of the driver.
fn end_open_sessions(conn: &mut DbConnection, driver_id: &str) -> QueryResult<usize> {
    diesel::update(
        racing_sessions::table
            .filter(racing_sessions::driver_id.eq(driver_id))
            .filter(racing_sessions::ended_at.is_null()),
    )
    .set(racing_sessions::ended_at.eq(Some(now())))
    .execute(conn)
}

/// Starts a session at `place`; the driver's open one, if any, ends (a driver has one open
/// session).
pub fn start_session(
    conn: &mut DbConnection,
    team_id: &str,
    driver_id: &str,
    place: &Place,
) -> QueryResult<RacingSession> {
    conn.transaction(|conn| {
        end_open_sessions(conn, driver_id)?;
        let s = place.new_session(team_id, driver_id);
        diesel::insert_into(racing_sessions::table).values(&s).execute(conn)?;
        Ok(s)
    })
}

/// A driver node named its place: the open session stays when it is there already, takes the
/// names when it had none (made when telemetry came first), or ends and a new one starts.
/// Answers the driver's open session afterwards.
pub fn node_session(
    conn: &mut DbConnection,
    team_id: &str,
    driver_id: &str,
    place: &Place,
) -> QueryResult<RacingSession> {
    conn.transaction(|conn| match open_session(conn, driver_id)? {
        Some(s) if place.names(&s) => Ok(s),
        Some(mut s) if s.track == UNKNOWN && s.car == UNKNOWN && s.session_type.is_none() => {
            diesel::update(racing_sessions::table.find(&s.id))
                .set((
                    racing_sessions::track.eq(&place.track),
                    racing_sessions::car.eq(&place.car),
                    racing_sessions::session_type.eq(&place.session_type),
                ))
                .execute(conn)?;
            (s.track, s.car, s.session_type) =
                (place.track.clone(), place.car.clone(), place.session_type.clone());
            Ok(s)
        }
        _ => start_session(conn, team_id, driver_id, place),
    })
}

/// The driver's sim session ended: its open session ends. Answers the session that ended, if one
/// was open.
pub fn end_open(conn: &mut DbConnection, driver_id: &str) -> QueryResult<Option<RacingSession>> {
    conn.transaction(|conn| match open_session(conn, driver_id)? {
        Some(s) => {
            end_open_sessions(conn, driver_id)?;
            get_session(conn, &s.id).map(Some)
        }
        None => Ok(None),
    })
}

/// Ends a session (an ended one stays as it was) and answers it.
pub fn end_session(conn: &mut DbConnection, id: &str) -> QueryResult<RacingSession> {
    diesel::update(racing_sessions::table.find(id).filter(racing_sessions::ended_at.is_null()))
        .set(racing_sessions::ended_at.eq(Some(now())))
        .execute(conn)?;
    get_session(conn, id)
}

/// Stores a session its `DriverSession` opened before any row of it was written (telemetry with
/// no session named), unless it is stored already. Sessions of the driver still open from before
/// it end; should a newer one have been started meanwhile (through the API), this one is stored
/// as ended when that one began, so the driver still has one open session.
pub fn ensure_session(conn: &mut DbConnection, s: &RacingSession) -> QueryResult<()> {
    let stored = racing_sessions::table
        .find(&s.id)
        .select(racing_sessions::id)
        .first::<String>(conn)
        .optional()?
        .is_some();
    if stored {
        return Ok(());
    }
    let newer = racing_sessions::table
        .filter(racing_sessions::driver_id.eq(&s.driver_id))
        .filter(racing_sessions::ended_at.is_null())
        .filter(racing_sessions::started_at.gt(s.started_at))
        .select(diesel::dsl::min(racing_sessions::started_at))
        .first::<Option<chrono::NaiveDateTime>>(conn)?;
    let mut row = s.clone();
    match newer {
        Some(t) => row.ended_at = Some(t),
        None => {
            diesel::update(
                racing_sessions::table
                    .filter(racing_sessions::driver_id.eq(&s.driver_id))
                    .filter(racing_sessions::ended_at.is_null()),
            )
            .set(racing_sessions::ended_at.eq(Some(s.started_at)))
            .execute(conn)?;
        }
    }
    diesel::insert_into(racing_sessions::table).values(&row).execute(conn)?;
    Ok(())
}

/// A team's sessions, newest first, optionally of one driver.
pub fn list_sessions(
    conn: &mut DbConnection,
    team_id: &str,
    driver_id: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<RacingSession>> {
    let mut q = racing_sessions::table
        .filter(racing_sessions::team_id.eq(team_id))
        .order(racing_sessions::started_at.desc())
        .limit(limit)
        .select(RacingSession::as_select())
        .into_boxed();
    if let Some(d) = driver_id {
        q = q.filter(racing_sessions::driver_id.eq(d.to_owned()));
    }
    q.load(conn)
}
