//! Handoff requests: one driver hands the car to another, `pending → accepted | rejected`,
//! `accepted → completed`. Reads no env vars.

use diesel::prelude::*;

use super::{now, Refused};
use crate::db::models::HandoffRequest;
use crate::db::schema::{drivers, handoff_requests};
use crate::db::DbConnection;
use crate::wire::{self, HandoffStatus};

pub fn insert_handoff(conn: &mut DbConnection, h: &HandoffRequest) -> QueryResult<()> {
    diesel::insert_into(handoff_requests::table).values(h).execute(conn)?;
    Ok(())
}

/// One handoff request; `NotFound` when there is none.
pub fn get_handoff(conn: &mut DbConnection, id: &str) -> QueryResult<HandoffRequest> {
    handoff_requests::table.find(id).select(HandoffRequest::as_select()).first(conn)
}

/// A handoff as the API shows it, with its target driver's name.
pub fn handoff_to_wire(conn: &mut DbConnection, h: &HandoffRequest) -> QueryResult<wire::HandoffRequest> {
    let name = drivers::table
        .find(&h.target_driver_id)
        .select(drivers::name)
        .first::<String>(conn)
        .optional()?
        .unwrap_or_default();
    Ok(h.to_wire(name))
}

/// A team's newest handoffs, optionally of one status.
pub fn list_handoffs(
    conn: &mut DbConnection,
    team_id: &str,
    status: Option<HandoffStatus>,
    limit: i64,
) -> QueryResult<Vec<wire::HandoffRequest>> {
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

/// Moves a handoff along `pending → accepted | rejected`, `accepted → completed` and answers it.
/// The update is conditional on the current status, so two people answering at once cannot both
/// win: the loser gets [`Refused::Handoff`] with the status the winner left. The caller refuses
/// `to` = pending before asking (nothing goes back to pending); asked, it is refused the same way.
/// `NotFound` when there is no such request.
pub fn transition_handoff(
    conn: &mut DbConnection,
    id: &str,
    to: HandoffStatus,
    responder: &str,
) -> QueryResult<Result<HandoffRequest, Refused>> {
    let from = match to {
        HandoffStatus::Accepted | HandoffStatus::Rejected => Some(HandoffStatus::Pending),
        HandoffStatus::Completed => Some(HandoffStatus::Accepted),
        HandoffStatus::Pending => None,
    };
    let n = match from {
        None => 0,
        Some(from) => {
            let t = now();
            let target = handoff_requests::table
                .filter(handoff_requests::id.eq(id))
                .filter(handoff_requests::status.eq(from.as_str()));
            if to == HandoffStatus::Completed {
                diesel::update(target)
                    .set((
                        handoff_requests::status.eq(to.as_str()),
                        handoff_requests::completed_at.eq(Some(t)),
                    ))
                    .execute(conn)?
            } else {
                diesel::update(target)
                    .set((
                        handoff_requests::status.eq(to.as_str()),
                        handoff_requests::responded_at.eq(Some(t)),
                        handoff_requests::responder_id.eq(Some(responder)),
                    ))
                    .execute(conn)?
            }
        }
    };
    let current = get_handoff(conn, id)?;
    if n == 0 {
        return Ok(Err(Refused::Handoff { is: current.status, to }));
    }
    Ok(Ok(current))
}
