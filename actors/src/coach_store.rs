//! The coach's storage: the queries of the `Coach` actor and of the runtime's coaching routes
//! (coaching history, track maps and outlines, team corner names, a session's laps), written once
//! with diesel for SQLite and PostgreSQL. The runtime's store layer (`runtime/src/store.rs`) wraps
//! them for the API. Also the track outline from a lap's positions. Reads no env vars.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use pitbox_coach::{CornerMap, Turn};
use pitbox_schema::db::models::{CoachingFeedback, LapRow, RacingSession, TrackMapRow, TrackTurnsRow};
use pitbox_schema::db::schema::{coaching_feedback, laps, racing_sessions, track_maps, track_turns};
use pitbox_schema::db::DbConnection;
use pitbox_schema::wire::{AiCoaching, CoachingItem, MessagePriority, TelemetryAnalysis, TelemetryFrame};
use serde::{Deserialize, Serialize};

/// Points of a stored outline at most (one every 0.25 % of the lap is plenty for a drawing).
const OUTLINE_POINTS: usize = 400;
/// Metres per degree of latitude.
const M_PER_DEG: f64 = 111_320.0;

/// What `coaching_feedback.analysis` holds: the seed's `telemetryAnalysis` (so a reader that
/// knows only that finds it) plus the coach's numbers, lap and tip.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredAnalysis {
    #[serde(flatten)]
    pub analysis: TelemetryAnalysis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lap_number: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip: Option<String>,
    /// The topic of the spoken tip (see [`crate::coach::TipGate`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip_topic: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<CoachingItem>,
}

/// A coaching row as the wire's `ai_coaching`.
pub fn coaching_to_wire(row: CoachingFeedback) -> AiCoaching {
    let stored: StoredAnalysis = serde_json::from_str(&row.analysis).unwrap_or_default();
    AiCoaching {
        id: Some(row.id),
        driver_id: Some(row.driver_id),
        feedback: row.feedback,
        confidence: row.confidence as f32,
        telemetry_analysis: stored.analysis,
        timestamp: row.created_at.and_utc(),
        priority: row.priority.parse().unwrap_or(MessagePriority::Normal),
        lap_id: row.lap_id,
        lap_number: stored.lap_number,
        tip: stored.tip,
        items: stored.items,
        strategy: None,
    }
}

pub fn insert_coaching(conn: &mut DbConnection, row: &CoachingFeedback) -> QueryResult<()> {
    diesel::insert_into(coaching_feedback::table).values(row).execute(conn)?;
    Ok(())
}

/// A session's coaching, oldest first (the newest `limit`).
pub fn session_coaching(
    conn: &mut DbConnection,
    session_id: &str,
    limit: i64,
) -> QueryResult<Vec<CoachingFeedback>> {
    let lap_ids = laps::table.filter(laps::session_id.eq(session_id.to_owned())).select(laps::id.nullable());
    let mut rows = coaching_feedback::table
        .filter(coaching_feedback::lap_id.eq_any(lap_ids))
        .order((coaching_feedback::created_at.desc(), coaching_feedback::id.desc()))
        .limit(limit)
        .select(CoachingFeedback::as_select())
        .load(conn)?;
    rows.reverse();
    Ok(rows)
}

/// The coaching of one lap, if the coach wrote any.
pub fn lap_coaching(conn: &mut DbConnection, lap_id: &str) -> QueryResult<Option<CoachingFeedback>> {
    coaching_feedback::table
        .filter(coaching_feedback::lap_id.eq(lap_id))
        .order(coaching_feedback::created_at.desc())
        .select(CoachingFeedback::as_select())
        .first(conn)
        .optional()
}

pub fn get_session(conn: &mut DbConnection, id: &str) -> QueryResult<Option<RacingSession>> {
    racing_sessions::table.find(id).select(RacingSession::as_select()).first(conn).optional()
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

/// The last `limit` laps of a session in lap order, with their compressed frames.
pub fn session_laps(
    conn: &mut DbConnection,
    session_id: &str,
    limit: i64,
) -> QueryResult<Vec<(LapRow, Vec<u8>)>> {
    let mut rows = laps::table
        .filter(laps::session_id.eq(session_id))
        .order(laps::lap_number.desc())
        .limit(limit)
        .select((LapRow::as_select(), laps::telemetry))
        .load::<(LapRow, Vec<u8>)>(conn)?;
    rows.reverse();
    Ok(rows)
}

/// The fastest valid flying lap of a session other than `except`.
pub fn best_lap(conn: &mut DbConnection, session_id: &str, except: &str) -> QueryResult<Option<String>> {
    laps::table
        .filter(laps::session_id.eq(session_id))
        .filter(laps::valid.eq(true))
        .filter(laps::kind.eq("flying"))
        .filter(laps::id.ne(except))
        .order(laps::lap_time.asc())
        .select(laps::id)
        .first(conn)
        .optional()
}

pub fn track_map(
    conn: &mut DbConnection,
    team_id: &str,
    track: &str,
    car_class: Option<&str>,
) -> QueryResult<Option<TrackMapRow>> {
    let mut q = track_maps::table
        .filter(track_maps::team_id.eq(team_id.to_owned()))
        .filter(track_maps::track.eq(track.to_owned()))
        .order(track_maps::updated_at.desc())
        .select(TrackMapRow::as_select())
        .into_boxed();
    if let Some(c) = car_class {
        q = q.filter(track_maps::car_class.eq(c.to_owned()));
    }
    q.first(conn).optional()
}

/// Stores a learnt map; a map already stored for the key stays (numbers must not change). One
/// statement, no read first: on SQLite a read that turns into a write inside a transaction fails
/// at once ("database is locked") while the store writer holds the write lock.
pub fn save_track_map(conn: &mut DbConnection, row: &TrackMapRow) -> QueryResult<bool> {
    let insert = diesel::insert_into(track_maps::table).values(row).on_conflict_do_nothing();
    // On the concrete connection: MultiBackend cannot express `ON CONFLICT`.
    let n = match conn {
        DbConnection::Pg(c) => insert.execute(c)?,
        DbConnection::Sqlite(c) => insert.execute(c)?,
    };
    Ok(n > 0)
}

pub fn track_turns(conn: &mut DbConnection, team_id: &str, track: &str) -> QueryResult<Vec<Turn>> {
    let text = track_turns::table
        .find((team_id, track))
        .select(track_turns::turns)
        .first::<String>(conn)
        .optional()?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default())
}

pub fn save_track_turns(
    conn: &mut DbConnection,
    team_id: &str,
    track: &str,
    turns: &[Turn],
    now: NaiveDateTime,
) -> QueryResult<()> {
    let row = TrackTurnsRow {
        team_id: team_id.to_owned(),
        track: track.to_owned(),
        turns: serde_json::to_string(turns)
            .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?,
        updated_at: now,
    };
    conn.transaction(|conn| {
        diesel::delete(track_turns::table.find((team_id, track))).execute(conn)?;
        diesel::insert_into(track_turns::table).values(&row).execute(conn)?;
        Ok(())
    })
}

/// A stored map's corner map.
pub fn corner_map(row: &TrackMapRow) -> Option<CornerMap> {
    serde_json::from_str(&row.corner_map).ok()
}

/// A stored map's outline.
pub fn outline(row: &TrackMapRow) -> Vec<[f64; 3]> {
    serde_json::from_str(&row.outline).unwrap_or_default()
}

/// The track's outline from one lap's positions: `[lapFraction, x, y]`, metres east and north of
/// the first point, at most [`OUTLINE_POINTS`] in lap order. Empty without positions.
pub fn outline_of(frames: &[TelemetryFrame]) -> Vec<[f64; 3]> {
    let pts: Vec<(f64, f64, f64)> = frames
        .iter()
        .filter_map(|f| {
            let s = &f.sample;
            match (s.latitude, s.longitude) {
                (Some(la), Some(lo)) if la.is_finite() && lo.is_finite() && (la != 0.0 || lo != 0.0) => {
                    Some((f64::from(s.track_position), la, lo))
                }
                _ => None,
            }
        })
        .filter(|(p, _, _)| p.is_finite() && (0.0..=1.0).contains(p))
        .collect();
    let Some(&(_, lat0, lon0)) = pts.first() else { return Vec::new() };
    let cos = lat0.to_radians().cos();
    let step = pts.len().div_ceil(OUTLINE_POINTS).max(1);
    let mut out: Vec<[f64; 3]> = pts
        .iter()
        .step_by(step)
        .map(|&(p, la, lo)| {
            let x = (lo - lon0) * M_PER_DEG * cos;
            let y = (la - lat0) * M_PER_DEG;
            [(p * 1e4).round() / 1e4, (x * 10.0).round() / 10.0, (y * 10.0).round() / 10.0]
        })
        .collect();
    out.sort_by(|a, b| a[0].total_cmp(&b[0]));
    out
}
