//! Permission rules that the runtime enforces and the dashboard mirrors (which buttons and views it
//! shows). Written once here so the two sides cannot disagree: the runtime checks them on every
//! request, the dashboard only uses them to hide what the runtime would refuse.

use super::{HandoffStatus, Role};

impl Role {
    /// Team staff: reads the team, sends team messages, answers any of its handoffs, reads driver
    /// management. `team`, `engineer` and `admin`; a `driver` only acts for itself.
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Team | Role::Engineer | Role::Admin)
    }

    /// Engineers and admins: manage the team's drivers and see the engineer view (the actor tree).
    pub fn is_engineer(self) -> bool {
        matches!(self, Role::Engineer | Role::Admin)
    }

    /// Admins: every team, users and teams themselves.
    pub fn is_admin(self) -> bool {
        self == Role::Admin
    }
}

/// The parties of a handoff, as the rule needs them.
#[derive(Debug, Clone, Copy)]
pub struct HandoffParties<'a> {
    /// The driver asked to take over.
    pub target_driver_id: &'a str,
    /// The driver handing over, when a driver asked.
    pub from_driver_id: Option<&'a str>,
}

/// May a member of the handoff's team with `role` (and driver profile `me`) move it to `to`?
/// Staff may answer any handoff of their team; the target driver may accept, reject or complete
/// it; the driver who asked may mark it completed (the car has changed hands). Team membership is
/// checked separately.
pub fn may_answer_handoff(
    role: Role,
    me: Option<&str>,
    handoff: HandoffParties<'_>,
    to: HandoffStatus,
) -> bool {
    if role.is_staff() {
        return true;
    }
    let Some(me) = me else { return false };
    me == handoff.target_driver_id || (to == HandoffStatus::Completed && Some(me) == handoff.from_driver_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: HandoffParties<'static> = HandoffParties { target_driver_id: "d2", from_driver_id: Some("d1") };

    #[test]
    fn staff_and_engineer_view_differ_for_the_team_role() {
        assert!(Role::Team.is_staff());
        assert!(!Role::Team.is_engineer());
        assert!(Role::Engineer.is_staff() && Role::Engineer.is_engineer());
        assert!(Role::Admin.is_staff() && Role::Admin.is_engineer() && Role::Admin.is_admin());
        assert!(!Role::Driver.is_staff() && !Role::Driver.is_engineer() && !Role::Engineer.is_admin());
    }

    #[test]
    fn team_members_may_answer_any_handoff() {
        for status in [HandoffStatus::Accepted, HandoffStatus::Rejected, HandoffStatus::Completed] {
            assert!(may_answer_handoff(Role::Team, None, H, status), "{status:?}");
        }
    }

    #[test]
    fn drivers_answer_only_their_own() {
        assert!(may_answer_handoff(Role::Driver, Some("d2"), H, HandoffStatus::Accepted));
        assert!(!may_answer_handoff(Role::Driver, Some("d3"), H, HandoffStatus::Accepted));
        assert!(!may_answer_handoff(Role::Driver, None, H, HandoffStatus::Accepted));
        // the asking driver may only close the handoff once the car has changed hands
        assert!(!may_answer_handoff(Role::Driver, Some("d1"), H, HandoffStatus::Accepted));
        assert!(may_answer_handoff(Role::Driver, Some("d1"), H, HandoffStatus::Completed));
    }
}
