//! The coach's messages (`coaching_feedback`): what the `Coach` actor writes about each lap, read
//! back by the coaching routes and by a restarted coach. What `analysis` holds is the coach's
//! (`pitbox_actors::coach_store::StoredAnalysis`). Reads no env vars.

use diesel::prelude::*;

use crate::db::models::CoachingFeedback;
use crate::db::schema::{coaching_feedback, laps};
use crate::db::DbConnection;

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

/// The coaching of one lap, if the coach wrote any (the newest).
pub fn lap_coaching(conn: &mut DbConnection, lap_id: &str) -> QueryResult<Option<CoachingFeedback>> {
    coaching_feedback::table
        .filter(coaching_feedback::lap_id.eq(lap_id))
        .order(coaching_feedback::created_at.desc())
        .select(CoachingFeedback::as_select())
        .first(conn)
        .optional()
}
