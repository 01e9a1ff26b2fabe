//! A dashboard's team actions on the socket: `send_team_message`, `request_handoff` and
//! `answer_handoff` (and the seed's `team_message` / `handoff_request`). Each runs the same code as
//! its REST route (`routes::messages`, which holds the team-scope rules) as the connection's user,
//! under the same per-user rate limit. Reads no env vars.

use actix::prelude::*;
use actix_web_actors::ws;
use pitbox_schema::db::store::drivers;
use pitbox_schema::wire::{
    AnswerHandoff, Envelope, ErrorCode, HandoffStatus, Message as Wire, NewHandoff, NewTeamMessage, Posted,
};

use super::WsSession;
use crate::auth::AuthUser;
use crate::db::Db;
use crate::error::{ApiError, Found};
use crate::routes::messages::{self, Teams};

impl WsSession {
    /// The per-user limit shared with REST (`PITBOX_RATE_LIMIT_PER_USER`), for team actions.
    pub(super) fn check_rate(&self) -> Result<(), ApiError> {
        let Some(user) = &self.user else { return Ok(()) };
        self.limits.check_user(&user.id).map_err(|e| ApiError {
            message: format!("too many requests; retry in {} s", e.retry_after.unwrap_or(1)),
            ..e
        })
    }

    /// The team a message that names none is for: the user's only team, else the only team this
    /// connection follows.
    fn implied_team(&self) -> Option<String> {
        let user = self.user.as_ref()?;
        if let [only] = user.teams.as_slice() {
            return Some(only.clone());
        }
        let mut followed = self.hubs.keys();
        match (followed.next(), followed.next()) {
            (Some(team), None) => Some(team.clone()),
            _ => None,
        }
    }

    pub(super) fn send_message(&mut self, p: Posted<NewTeamMessage>, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(team_id) = p.team_id.or_else(|| self.implied_team()) else {
            let why = "teamId: required, you belong to several teams (or none)".to_owned();
            return self.error(ctx, ErrorCode::InvalidField, why, p.id);
        };
        let message = p.body;
        self.team_action(ctx, p.id, |db, teams, user| async move {
            messages::send(&db, &teams, &user, team_id, message).await.map(Wire::TeamMessage)
        })
    }

    pub(super) fn request_handoff(&mut self, p: Posted<NewHandoff>, ctx: &mut ws::WebsocketContext<Self>) {
        let team_id = p.team_id.or_else(|| self.implied_team());
        let handoff = p.body;
        self.team_action(ctx, p.id, |db, teams, user| async move {
            let team_id = match team_id {
                Some(t) => t,
                // The seed named no team: the handoff is for the target driver's.
                None => {
                    let target = handoff.target_driver_id.clone();
                    db.run(move |c| drivers::get_driver(c, &target).found("driver", &target)).await?.team_id
                }
            };
            messages::request_handoff(&db, &teams, &user, team_id, handoff)
                .await
                .map(|h| Wire::HandoffRequest(Box::new(h)))
        })
    }

    pub(super) fn answer_handoff(
        &mut self,
        a: AnswerHandoff,
        id: Option<String>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        if a.status == HandoffStatus::Pending {
            return self.error(ctx, ErrorCode::InvalidField, "status: cannot go back to pending".into(), id);
        }
        self.team_action(ctx, id, |db, teams, user| async move {
            messages::answer(&db, &teams, &user, a.id, a.status)
                .await
                .map(|h| Wire::HandoffRequest(Box::new(h)))
        })
    }

    /// Runs a team action as this connection's user — the same code as the REST route — and
    /// answers with its result or a typed error.
    fn team_action<F, Fut>(&mut self, ctx: &mut ws::WebsocketContext<Self>, id: Option<String>, action: F)
    where
        F: FnOnce(Db, Teams, AuthUser) -> Fut,
        Fut: std::future::Future<Output = Result<Wire, ApiError>> + 'static,
    {
        let Some(user) = self.user.clone() else { return };
        if let Err(e) = self.check_rate() {
            return self.api_error(ctx, e, id);
        }
        let teams = Teams { system: self.system.clone(), cluster: self.cluster.clone() };
        let fut = action(self.db.clone(), teams, user);
        ctx.spawn(fut.into_actor(self).map(move |r, act, ctx| match r {
            Ok(message) => act.send(ctx, Envelope { id, ..Envelope::new(message) }),
            Err(e) => act.api_error(ctx, e, id),
        }));
    }
}
