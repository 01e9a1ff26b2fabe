//! Every database query of the runtime, written once with diesel against [`DbConnection`] (SQLite
//! or PostgreSQL). Synchronous: callers run them through [`crate::db::Db::run`]. Reads no env vars.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use pitbox_schema::db::models::*;
use pitbox_schema::db::schema::*;
use pitbox_schema::db::DbConnection;
use pitbox_schema::wire::{self, HandoffStatus, Role};

use crate::error::{ApiError, ApiResult, BodyRef, Found};

/// A `userId` in a body that names no user.
const UNKNOWN_USER: &str = "userId: refers to something that does not exist";

pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

pub fn new_id() -> String {
    // v7: time-ordered, so ids sort like creation time and index inserts stay local.
    uuid::Uuid::now_v7().to_string()
}

// ---------------------------------------------------------------- users

pub fn create_user(
    conn: &mut DbConnection,
    username: &str,
    password_hash: String,
    role: Role,
) -> ApiResult<User> {
    let user = User {
        id: new_id(),
        username: username.to_owned(),
        password_hash,
        role: role.as_str().to_owned(),
        disabled: false,
        created_at: now(),
    };
    diesel::insert_into(users::table).values(&user).execute(conn).map_err(|e| match e {
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
            ApiError::conflict(format!("username {username:?} is taken"))
        }
        other => other.into(),
    })?;
    Ok(user)
}

pub fn find_user_by_name(conn: &mut DbConnection, username: &str) -> ApiResult<Option<User>> {
    Ok(users::table.filter(users::username.eq(username)).select(User::as_select()).first(conn).optional()?)
}

pub fn get_user(conn: &mut DbConnection, id: &str) -> ApiResult<User> {
    users::table.find(id).select(User::as_select()).first(conn).found("user", id)
}

pub fn list_users(conn: &mut DbConnection) -> ApiResult<Vec<User>> {
    Ok(users::table.order(users::username.asc()).select(User::as_select()).load(conn)?)
}

pub fn set_password(conn: &mut DbConnection, user_id: &str, hash: String) -> ApiResult<()> {
    conn.transaction(|conn| {
        let n =
            diesel::update(users::table.find(user_id)).set(users::password_hash.eq(hash)).execute(conn)?;
        if n == 0 {
            return Err(ApiError::not_found("user", user_id));
        }
        // A new password ends every session of the old one: access tokens and refresh tokens
        // (the user's row is already locked by the update above, then the tokens: same order).
        end_access_tokens(conn, user_id)?;
        revoke_user_tokens(conn, user_id)
    })
}

/// What decides whether a verified access token still counts: the user's token generation (an
/// access token carries the one it was issued under) and whether the account is disabled. `None`
/// when the user no longer exists.
pub fn token_state(conn: &mut DbConnection, user_id: &str) -> ApiResult<Option<(i64, bool)>> {
    Ok(users::table
        .find(user_id)
        .select((users::token_generation, users::disabled))
        .first::<(i64, bool)>(conn)
        .optional()?)
}

/// Ends every access token issued to `user_id` so far (logout, password change, refresh-token
/// reuse): they carry an older generation from now on. Tokens issued afterwards carry the new one.
pub fn end_access_tokens(conn: &mut DbConnection, user_id: &str) -> ApiResult<()> {
    diesel::update(users::table.find(user_id))
        .set(users::token_generation.eq(users::token_generation + 1))
        .execute(conn)?;
    Ok(())
}

/// What the token and login answer say about a user: role, teams, driver profile.
pub fn user_info(conn: &mut DbConnection, user: &User) -> ApiResult<wire::UserInfo> {
    let role: Role = user.role.parse().map_err(ApiError::internal)?;
    let teams = team_members::table
        .filter(team_members::user_id.eq(&user.id))
        .select(team_members::team_id)
        .order(team_members::team_id.asc())
        .load::<String>(conn)?;
    let driver_id = drivers::table
        .filter(drivers::user_id.eq(&user.id))
        .select(drivers::id)
        .first::<String>(conn)
        .optional()?;
    Ok(wire::UserInfo { id: user.id.clone(), username: user.username.clone(), role, teams, driver_id })
}

// ---------------------------------------------------------------- refresh tokens

pub fn insert_refresh_token(
    conn: &mut DbConnection,
    user_id: &str,
    family_id: &str,
    token_hash: String,
    ttl: std::time::Duration,
) -> ApiResult<()> {
    let issued = now();
    let ttl = chrono::Duration::from_std(ttl).map_err(ApiError::internal)?;
    let row = RefreshToken {
        id: new_id(),
        user_id: user_id.to_owned(),
        family_id: family_id.to_owned(),
        token_hash,
        issued_at: issued,
        expires_at: issued + ttl,
        used_at: None,
        revoked_at: None,
    };
    diesel::insert_into(refresh_tokens::table).values(&row).execute(conn)?;
    Ok(())
}

pub enum RefreshOutcome {
    /// The token was valid and is now used up; its successor (same family) is stored.
    /// `generation` is the user's token generation as of that transaction: a reuse detected after
    /// it moves the generation on, which ends the access token issued with this one too.
    Rotated {
        user_id: String,
        generation: i64,
    },
    Unknown,
    Expired,
    /// The token was used before: somebody replayed it. The whole family is now revoked, and
    /// the user's access tokens are ended.
    Reused {
        user_id: String,
    },
}

/// Uses a refresh token exactly once and stores its successor `new_hash` in the same family, in
/// one transaction. Concurrent uses queue on the user's row (PostgreSQL: row lock; SQLite: the
/// write lock), the conditional update that marks the token used lets exactly one win, and the
/// successor commits together with the mark: whoever then sees the token
/// used and revokes the family also sees, and revokes, the successor. (Deciding first and
/// inserting the successor in a later transaction let a successor survive the revocation.)
pub fn rotate_refresh_token(
    conn: &mut DbConnection,
    token_hash: &str,
    new_hash: String,
    ttl: std::time::Duration,
) -> ApiResult<RefreshOutcome> {
    conn.transaction(|conn| {
        // Every use of this user's refresh tokens queues on the user's row first. Without it, a
        // loser that waited on the winner keeps a lock on the used token's row (PostgreSQL locks
        // the row before re-checking the condition) and then wants the user's row, while another
        // loser holds the user's row and wants the token's: a deadlock.
        diesel::update(
            users::table.filter(
                users::id.eq_any(
                    refresh_tokens::table
                        .filter(refresh_tokens::token_hash.eq(token_hash))
                        .select(refresh_tokens::user_id),
                ),
            ),
        )
        .set(users::token_generation.eq(users::token_generation))
        .execute(conn)?;
        let t = now();
        let won = diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(token_hash))
                .filter(refresh_tokens::used_at.is_null())
                .filter(refresh_tokens::revoked_at.is_null())
                .filter(refresh_tokens::expires_at.gt(t)),
        )
        .set(refresh_tokens::used_at.eq(Some(t)))
        .execute(conn)?;
        let Some(row) = refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .select(RefreshToken::as_select())
            .first(conn)
            .optional()?
        else {
            return Ok(RefreshOutcome::Unknown);
        };
        if won == 1 {
            insert_refresh_token(conn, &row.user_id, &row.family_id, new_hash, ttl)?;
            let generation = token_state(conn, &row.user_id)?.map_or(0, |(g, _)| g);
            return Ok(RefreshOutcome::Rotated { user_id: row.user_id, generation });
        }
        if row.used_at.is_none() && row.revoked_at.is_none() {
            return Ok(RefreshOutcome::Expired);
        }
        // The user's row first: concurrent reuses of one family then queue on it instead of
        // locking the family's rows in different orders (a deadlock on PostgreSQL).
        end_access_tokens(conn, &row.user_id)?;
        revoke_family(conn, &row.family_id)?;
        Ok(RefreshOutcome::Reused { user_id: row.user_id })
    })
}

pub fn revoke_family(conn: &mut DbConnection, family_id: &str) -> ApiResult<()> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Some(now())))
    .execute(conn)?;
    Ok(())
}

/// Logout: revokes the family of a presented refresh token and ends the user's access tokens.
/// Returns the user it belonged to; unknown tokens are ignored.
pub fn revoke_by_token(conn: &mut DbConnection, token_hash: &str) -> ApiResult<Option<String>> {
    conn.transaction(|conn| {
        let row = refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .select((refresh_tokens::family_id, refresh_tokens::user_id))
            .first::<(String, String)>(conn)
            .optional()?;
        let Some((family, user)) = row else { return Ok(None) };
        // Same lock order as `rotate_refresh_token`: the user's row, then the family's.
        end_access_tokens(conn, &user)?;
        revoke_family(conn, &family)?;
        Ok(Some(user))
    })
}

/// Whether `user_id` is a member of `team_id`.
pub fn is_member(conn: &mut DbConnection, team_id: &str, user_id: &str) -> ApiResult<bool> {
    Ok(team_members::table
        .find((team_id, user_id))
        .select(team_members::user_id)
        .first::<String>(conn)
        .optional()?
        .is_some())
}

fn revoke_user_tokens(conn: &mut DbConnection, user_id: &str) -> ApiResult<()> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Some(now())))
    .execute(conn)?;
    Ok(())
}

// ---------------------------------------------------------------- teams

pub fn create_team(conn: &mut DbConnection, name: &str) -> ApiResult<Team> {
    let team = Team { id: new_id(), name: name.to_owned(), created_at: now() };
    diesel::insert_into(teams::table).values(&team).execute(conn).map_err(|e| match e {
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
            ApiError::conflict(format!("team {name:?} exists"))
        }
        other => other.into(),
    })?;
    Ok(team)
}

pub fn get_team(conn: &mut DbConnection, id: &str) -> ApiResult<Team> {
    teams::table.find(id).select(Team::as_select()).first(conn).found("team", id)
}

/// A team by id or by name (the CLI takes either).
pub fn find_team(conn: &mut DbConnection, id_or_name: &str) -> ApiResult<Team> {
    teams::table
        .filter(teams::id.eq(id_or_name).or(teams::name.eq(id_or_name)))
        .select(Team::as_select())
        .first(conn)
        .found("team", id_or_name)
}

/// All teams (`None`) or those with the given ids.
pub fn list_teams(conn: &mut DbConnection, only: Option<&[String]>) -> ApiResult<Vec<Team>> {
    let mut q = teams::table.order(teams::name.asc()).select(Team::as_select()).into_boxed();
    if let Some(ids) = only {
        q = q.filter(teams::id.eq_any(ids.to_vec()));
    }
    Ok(q.load(conn)?)
}

pub fn add_member(conn: &mut DbConnection, team_id: &str, user_id: &str) -> ApiResult<()> {
    get_team(conn, team_id)?;
    get_user(conn, user_id).body_ref(UNKNOWN_USER)?;
    let exists = team_members::table
        .find((team_id, user_id))
        .select(team_members::user_id)
        .first::<String>(conn)
        .optional()?
        .is_some();
    if !exists {
        diesel::insert_into(team_members::table)
            .values(&TeamMember { team_id: team_id.to_owned(), user_id: user_id.to_owned() })
            .execute(conn)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- drivers

pub fn create_driver(conn: &mut DbConnection, team_id: &str, d: &wire::NewDriver) -> ApiResult<Driver> {
    get_team(conn, team_id)?;
    if let Some(uid) = &d.user_id {
        get_user(conn, uid).body_ref(UNKNOWN_USER)?;
    }
    let row = Driver {
        id: new_id(),
        team_id: team_id.to_owned(),
        user_id: d.user_id.clone(),
        name: d.name.clone(),
        number: d.number,
        status: wire::DriverStatusKind::Inactive.as_str().to_owned(),
        role: d.role.as_str().to_owned(),
        avatar_url: d.avatar_url.clone(),
        last_active: None,
        created_at: now(),
    };
    diesel::insert_into(drivers::table).values(&row).execute(conn).map_err(|e| match e {
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
            ApiError::conflict("that user already has a driver profile")
        }
        other => other.into(),
    })?;
    if let Some(uid) = &d.user_id {
        add_member(conn, team_id, uid)?;
    }
    Ok(row)
}

pub fn get_driver(conn: &mut DbConnection, id: &str) -> ApiResult<Driver> {
    drivers::table.find(id).select(Driver::as_select()).first(conn).found("driver", id)
}

pub fn list_drivers(conn: &mut DbConnection, team_id: &str) -> ApiResult<Vec<Driver>> {
    Ok(drivers::table
        .filter(drivers::team_id.eq(team_id))
        .order((drivers::number.asc(), drivers::name.asc()))
        .select(Driver::as_select())
        .load(conn)?)
}

pub fn update_driver(conn: &mut DbConnection, id: &str, u: &wire::DriverUpdate) -> ApiResult<Driver> {
    conn.transaction(|conn| {
        let mut d = get_driver(conn, id)?;
        if let Some(s) = u.status {
            d.status = s.as_str().to_owned();
        }
        if let Some(r) = u.role {
            d.role = r.as_str().to_owned();
        }
        if let Some(n) = &u.name {
            d.name = n.clone();
        }
        if let Some(n) = u.number {
            d.number = n;
        }
        if let Some(a) = &u.avatar_url {
            d.avatar_url = Some(a.clone());
        }
        diesel::update(drivers::table.find(id))
            .set((
                drivers::status.eq(&d.status),
                drivers::role.eq(&d.role),
                drivers::name.eq(&d.name),
                drivers::number.eq(d.number),
                drivers::avatar_url.eq(&d.avatar_url),
            ))
            .execute(conn)?;
        Ok(d)
    })
}

// ---------------------------------------------------------------- sessions

pub fn get_session(conn: &mut DbConnection, id: &str) -> ApiResult<RacingSession> {
    pitbox_schema::db::store::sessions::get_session(conn, id).found("session", id)
}

pub fn list_sessions(
    conn: &mut DbConnection,
    team_id: &str,
    driver_id: Option<&str>,
    limit: i64,
) -> ApiResult<Vec<RacingSession>> {
    Ok(pitbox_schema::db::store::sessions::list_sessions(conn, team_id, driver_id, limit)?)
}

// ---------------------------------------------------------------- telemetry and laps

pub fn latest_sample(conn: &mut DbConnection, driver_id: &str) -> ApiResult<Option<wire::TelemetryFrame>> {
    let row = telemetry_samples::table
        .filter(telemetry_samples::driver_id.eq(driver_id))
        .order((telemetry_samples::recorded_at.desc(), telemetry_samples::id.desc()))
        .select(TelemetrySampleRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.and_then(|r| {
        serde_json::from_str(&r.data).ok().map(|sample| wire::TelemetryFrame {
            seq: r.seq.and_then(|s| u64::try_from(s).ok()),
            timestamp: r.recorded_at.and_utc(),
            sample,
        })
    }))
}

pub fn count_samples(conn: &mut DbConnection, driver_id: &str) -> ApiResult<i64> {
    Ok(telemetry_samples::table
        .filter(telemetry_samples::driver_id.eq(driver_id))
        .count()
        .get_result(conn)?)
}

pub struct LapFilter<'a> {
    pub team_id: &'a str,
    pub driver_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub limit: i64,
}

pub fn list_laps(conn: &mut DbConnection, f: &LapFilter<'_>) -> ApiResult<Vec<LapRow>> {
    let mut q = laps::table
        .filter(laps::team_id.eq(f.team_id.to_owned()))
        .order(laps::completed_at.desc())
        .limit(f.limit)
        .select(LapRow::as_select())
        .into_boxed();
    if let Some(d) = f.driver_id {
        q = q.filter(laps::driver_id.eq(d.to_owned()));
    }
    if let Some(s) = f.session_id {
        q = q.filter(laps::session_id.eq(s.to_owned()));
    }
    Ok(q.load(conn)?)
}

/// One lap's summary, its team, and its compressed telemetry.
pub fn get_lap(conn: &mut DbConnection, id: &str) -> ApiResult<(LapRow, Vec<u8>)> {
    let row = laps::table.find(id).select(LapRow::as_select()).first(conn).found("lap", id)?;
    let blob = laps::table.find(id).select(laps::telemetry).first::<Vec<u8>>(conn)?;
    Ok((row, blob))
}

// ---------------------------------------------------------------- team messages

pub fn insert_message(conn: &mut DbConnection, m: &TeamMessage) -> ApiResult<()> {
    diesel::insert_into(team_messages::table).values(m).execute(conn)?;
    Ok(())
}

/// The team's newest messages, each with the reader's own read state.
pub fn list_messages(
    conn: &mut DbConnection,
    team_id: &str,
    reader: &str,
    limit: i64,
) -> ApiResult<Vec<wire::TeamMessage>> {
    let rows = team_messages::table
        .filter(team_messages::team_id.eq(team_id))
        .order(team_messages::sent_at.desc())
        .limit(limit)
        .select(TeamMessage::as_select())
        .load(conn)?;
    let ids: Vec<String> = rows.iter().map(|m| m.id.clone()).collect();
    let read: std::collections::HashSet<String> = message_reads::table
        .filter(message_reads::user_id.eq(reader))
        .filter(message_reads::message_id.eq_any(ids))
        .select(message_reads::message_id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    Ok(rows.iter().map(|m| m.to_wire(m.sender_id == reader || read.contains(&m.id))).collect())
}

pub fn get_message(conn: &mut DbConnection, id: &str) -> ApiResult<TeamMessage> {
    team_messages::table.find(id).select(TeamMessage::as_select()).first(conn).found("message", id)
}

pub fn mark_read(conn: &mut DbConnection, message_id: &str, user_id: &str) -> ApiResult<()> {
    let seen = message_reads::table
        .find((message_id, user_id))
        .select(message_reads::user_id)
        .first::<String>(conn)
        .optional()?
        .is_some();
    if !seen {
        diesel::insert_into(message_reads::table)
            .values(&MessageRead {
                message_id: message_id.to_owned(),
                user_id: user_id.to_owned(),
                read_at: now(),
            })
            .execute(conn)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- handoffs

pub fn insert_handoff(conn: &mut DbConnection, h: &HandoffRequest) -> ApiResult<()> {
    diesel::insert_into(handoff_requests::table).values(h).execute(conn)?;
    Ok(())
}

pub fn get_handoff(conn: &mut DbConnection, id: &str) -> ApiResult<HandoffRequest> {
    handoff_requests::table
        .find(id)
        .select(HandoffRequest::as_select())
        .first(conn)
        .found("handoff request", id)
}

pub fn handoff_to_wire(conn: &mut DbConnection, h: &HandoffRequest) -> ApiResult<wire::HandoffRequest> {
    let name = drivers::table
        .find(&h.target_driver_id)
        .select(drivers::name)
        .first::<String>(conn)
        .optional()?
        .unwrap_or_default();
    Ok(h.to_wire(name))
}

pub fn list_handoffs(
    conn: &mut DbConnection,
    team_id: &str,
    status: Option<HandoffStatus>,
    limit: i64,
) -> ApiResult<Vec<wire::HandoffRequest>> {
    let mut q = handoff_requests::table
        .filter(handoff_requests::team_id.eq(team_id.to_owned()))
        .order(handoff_requests::requested_at.desc())
        .limit(limit)
        .select(HandoffRequest::as_select())
        .into_boxed();
    if let Some(s) = status {
        q = q.filter(handoff_requests::status.eq(s.as_str()));
    }
    let rows = q.load(conn)?;
    rows.iter().map(|h| handoff_to_wire(conn, h)).collect()
}

/// Moves a handoff along `pending → accepted | rejected`, `accepted → completed`. The update is
/// conditional on the current status, so two people answering at once cannot both win.
pub fn transition_handoff(
    conn: &mut DbConnection,
    id: &str,
    to: HandoffStatus,
    responder: &str,
) -> ApiResult<HandoffRequest> {
    let from = match to {
        HandoffStatus::Accepted | HandoffStatus::Rejected => HandoffStatus::Pending,
        HandoffStatus::Completed => HandoffStatus::Accepted,
        HandoffStatus::Pending => return Err(ApiError::invalid("status: cannot go back to pending")),
    };
    let t = now();
    let target = handoff_requests::table
        .filter(handoff_requests::id.eq(id))
        .filter(handoff_requests::status.eq(from.as_str()));
    let n = if to == HandoffStatus::Completed {
        diesel::update(target)
            .set((handoff_requests::status.eq(to.as_str()), handoff_requests::completed_at.eq(Some(t))))
            .execute(conn)?
    } else {
        diesel::update(target)
            .set((
                handoff_requests::status.eq(to.as_str()),
                handoff_requests::responded_at.eq(Some(t)),
                handoff_requests::responder_id.eq(Some(responder)),
            ))
            .execute(conn)?
    };
    let current = get_handoff(conn, id)?;
    if n == 0 {
        return Err(ApiError::conflict(format!(
            "handoff request is {}, it cannot become {}",
            current.status,
            to.as_str()
        )));
    }
    Ok(current)
}

// ---------------------------------------------------------------- health

pub fn ping(conn: &mut DbConnection) -> ApiResult<()> {
    use diesel::connection::SimpleConnection;
    conn.batch_execute("SELECT 1")?;
    Ok(())
}

// ---------------------------------------------------------------- coaching and track maps
// The queries themselves live with the coach actor that shares them (`pitbox_actors::coach_store`).

use pitbox_actors::coach_store;

/// A session's coaching, oldest first (the newest `limit`).
pub fn session_coaching(
    conn: &mut DbConnection,
    session_id: &str,
    limit: i64,
) -> ApiResult<Vec<wire::AiCoaching>> {
    Ok(coach_store::session_coaching(conn, session_id, limit)?
        .into_iter()
        .map(coach_store::coaching_to_wire)
        .collect())
}

/// The coach's message about one lap, if it wrote one.
pub fn lap_coaching(conn: &mut DbConnection, lap_id: &str) -> ApiResult<Option<wire::AiCoaching>> {
    Ok(coach_store::lap_coaching(conn, lap_id)?.map(coach_store::coaching_to_wire))
}

/// The session's fastest valid flying lap other than `except`.
pub fn best_lap_of_session(
    conn: &mut DbConnection,
    session_id: &str,
    except: &str,
) -> ApiResult<Option<String>> {
    Ok(coach_store::best_lap(conn, session_id, except)?)
}

/// Every lap of a session in lap order, with its compressed frames (the newest `limit`).
pub fn session_laps(
    conn: &mut DbConnection,
    session_id: &str,
    limit: i64,
) -> ApiResult<Vec<(LapRow, Vec<u8>)>> {
    Ok(coach_store::session_laps(conn, session_id, limit)?)
}

/// A team's map of a track: for `car` when given, else the newest of any car class.
pub fn track_map(
    conn: &mut DbConnection,
    team_id: &str,
    track: &str,
    car: Option<&str>,
) -> ApiResult<Option<TrackMapRow>> {
    Ok(coach_store::track_map(conn, team_id, track, car)?)
}

pub fn track_turns(
    conn: &mut DbConnection,
    team_id: &str,
    track: &str,
) -> ApiResult<Vec<pitbox_coach::Turn>> {
    Ok(coach_store::track_turns(conn, team_id, track)?)
}

pub fn save_track_turns(
    conn: &mut DbConnection,
    team_id: &str,
    track: &str,
    turns: &[pitbox_coach::Turn],
) -> ApiResult<()> {
    Ok(coach_store::save_track_turns(conn, team_id, track, turns, now())?)
}
