//! Team messages and who has read them. Reads no env vars.

use diesel::prelude::*;

use super::now;
use crate::db::models::{MessageRead, TeamMessage};
use crate::db::schema::{message_reads, team_messages};
use crate::db::DbConnection;
use crate::wire;

pub fn insert_message(conn: &mut DbConnection, m: &TeamMessage) -> QueryResult<()> {
    diesel::insert_into(team_messages::table).values(m).execute(conn)?;
    Ok(())
}

/// The team's newest messages, each with the reader's own read state.
pub fn list_messages(
    conn: &mut DbConnection,
    team_id: &str,
    reader: &str,
    limit: i64,
) -> QueryResult<Vec<wire::TeamMessage>> {
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

/// One message; `NotFound` when there is none.
pub fn get_message(conn: &mut DbConnection, id: &str) -> QueryResult<TeamMessage> {
    team_messages::table.find(id).select(TeamMessage::as_select()).first(conn)
}

/// Marks the message read by the user (once: the first reading's time stays).
pub fn mark_read(conn: &mut DbConnection, message_id: &str, user_id: &str) -> QueryResult<()> {
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
