//! Which answers the pit wall offers on a handoff: the shared rule of `pitbox_schema::wire`
//! (`may_answer_handoff`, the one the runtime enforces) applied to each next status, so the buttons
//! shown are exactly the requests the runtime would accept. Reads no env vars.

use pitbox_schema::wire::{may_answer_handoff, HandoffParties, HandoffRequest, HandoffStatus, Role};

/// The statuses this user may move `h` to, in button order.
pub fn answers(role: Role, driver_id: Option<&str>, h: &HandoffRequest) -> Vec<HandoffStatus> {
    let next: &[HandoffStatus] = match h.status {
        HandoffStatus::Pending => &[HandoffStatus::Accepted, HandoffStatus::Rejected],
        HandoffStatus::Accepted => &[HandoffStatus::Completed],
        HandoffStatus::Rejected | HandoffStatus::Completed => &[],
    };
    let parties =
        HandoffParties { target_driver_id: &h.target_driver_id, from_driver_id: h.from_driver_id.as_deref() };
    next.iter().copied().filter(|&to| may_answer_handoff(role, driver_id, parties, to)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handoff(status: HandoffStatus) -> HandoffRequest {
        serde_json::from_value(serde_json::json!({
            "id": "h1", "teamId": "t1", "requesterId": "u1", "requesterName": "anna",
            "fromDriverId": "d1", "targetDriverId": "d2", "targetDriverName": "max",
            "reason": "stint over", "urgency": "normal", "requestedAt": "2026-11-30T12:00:00Z",
            "status": status.as_str(), "telemetrySnapshot": null
        }))
        .unwrap()
    }

    #[test]
    fn the_team_role_gets_the_buttons_the_runtime_accepts() {
        // the disagreement this fixes: `team` may answer through the runtime, so it sees the buttons
        assert_eq!(
            answers(Role::Team, None, &handoff(HandoffStatus::Pending)),
            [HandoffStatus::Accepted, HandoffStatus::Rejected]
        );
        assert_eq!(answers(Role::Team, None, &handoff(HandoffStatus::Accepted)), [HandoffStatus::Completed]);
    }

    #[test]
    fn drivers_see_buttons_only_on_their_own_handoffs() {
        assert_eq!(answers(Role::Driver, Some("d2"), &handoff(HandoffStatus::Pending)).len(), 2);
        assert!(answers(Role::Driver, Some("d3"), &handoff(HandoffStatus::Pending)).is_empty());
        assert!(answers(Role::Driver, Some("d1"), &handoff(HandoffStatus::Pending)).is_empty());
        assert_eq!(
            answers(Role::Driver, Some("d1"), &handoff(HandoffStatus::Accepted)),
            [HandoffStatus::Completed]
        );
        assert!(answers(Role::Engineer, None, &handoff(HandoffStatus::Completed)).is_empty());
    }
}
