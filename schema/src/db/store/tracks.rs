//! Track maps (a team's learnt corner map and outline of a track, per car class) and the team's
//! corner names of a track. The shapes inside the JSON columns are the coach's
//! (`pitbox_coach::{CornerMap, Turn}`); the turns are read and written here as any serde type.
//! Reads no env vars.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::unstorable;
use crate::db::models::{TrackMapRow, TrackTurnsRow};
use crate::db::schema::{track_maps, track_turns};
use crate::db::DbConnection;

/// A team's map of a track: for `car_class` when given, else the newest of any car class.
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
/// at once ("database is locked") while the store writer holds the write lock. Answers whether
/// it was stored.
pub fn save_track_map(conn: &mut DbConnection, row: &TrackMapRow) -> QueryResult<bool> {
    let insert = diesel::insert_into(track_maps::table).values(row).on_conflict_do_nothing();
    // On the concrete connection: MultiBackend cannot express `ON CONFLICT`.
    let n = match conn {
        DbConnection::Pg(c) => insert.execute(c)?,
        DbConnection::Sqlite(c) => insert.execute(c)?,
    };
    Ok(n > 0)
}

/// The team's corner names of a track (none stored, or stored by a version whose shape does not
/// read: none).
pub fn track_turns<T: DeserializeOwned>(
    conn: &mut DbConnection,
    team_id: &str,
    track: &str,
) -> QueryResult<Vec<T>> {
    let text = track_turns::table
        .find((team_id, track))
        .select(track_turns::turns)
        .first::<String>(conn)
        .optional()?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default())
}

/// Replaces the team's corner names of a track.
pub fn save_track_turns<T: Serialize>(
    conn: &mut DbConnection,
    team_id: &str,
    track: &str,
    turns: &[T],
    now: NaiveDateTime,
) -> QueryResult<()> {
    let row = TrackTurnsRow {
        team_id: team_id.to_owned(),
        track: track.to_owned(),
        turns: serde_json::to_string(turns).map_err(unstorable)?,
        updated_at: now,
    };
    conn.transaction(|conn| {
        diesel::delete(track_turns::table.find((team_id, track))).execute(conn)?;
        diesel::insert_into(track_turns::table).values(&row).execute(conn)?;
        Ok(())
    })
}
