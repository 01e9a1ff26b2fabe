//! The socket's handshake: `authenticate {token, clientType, version}` checked as REST checks a
//! token, a driver node's driver and session resolved before the handshake completes, and the
//! answer `authentication_result` — a success, or a refusal followed by the close (1008). Anything
//! else before it is refused the same way. Reads no env vars.

use actix::prelude::*;
use actix_web_actors::ws::{self, CloseCode};
use pitbox_actors::driver_session::NodeConnection;
use pitbox_actors::team_hub::{Push, SubscribeNode};
use pitbox_schema::db::store::drivers;
use pitbox_schema::db::store::sessions::{self, Place};
use pitbox_schema::wire::{
    Authenticate, AuthenticationResult, ClientType, Envelope, ErrorBody, ErrorCode, Message as Wire,
    SimSession, Subscribe,
};

use super::ingest::NodeLink;
use super::WsSession;
use crate::auth::AuthUser;
use crate::cluster::Route;
use crate::error::{ApiError, Found};

/// What a node's sim session mark asks of its racing session: `None`, nothing (it names nothing
/// usable yet); `Some(None)`, the end of the open one; `Some(Some(place))`, the session at `place`.
pub(crate) fn sim_place(s: &SimSession) -> Option<Option<Place>> {
    if s.ended {
        return Some(None);
    }
    node_place(s.track.as_deref(), s.car.as_deref(), s.session_type.as_deref()).map(Some)
}

/// The track, car and session type a node names at authentication, when they are usable text
/// (anything else is ignored: the node is not refused over its session info).
pub(super) fn node_place(
    track: Option<&str>,
    car: Option<&str>,
    session_type: Option<&str>,
) -> Option<Place> {
    let ok = |v: Option<&str>| {
        v.and_then(|v| crate::routes::text("track", v.trim(), crate::routes::limits::TRACK).ok())
    };
    match (ok(track), ok(car), ok(session_type)) {
        (None, None, None) => None,
        (t, c, session_type) => Some(Place {
            track: t.unwrap_or_else(|| sessions::UNKNOWN.into()),
            car: c.unwrap_or_else(|| sessions::UNKNOWN.into()),
            session_type,
        }),
    }
}

impl WsSession {
    pub(super) fn authenticate(
        &mut self,
        a: Authenticate,
        id: Option<String>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        // The same check as REST (`Keys::authenticate`): a token ended by logout or a password
        // change is refused here too. `wait` holds later frames until it is decided.
        let (keys, db, token) = (self.keys.clone(), self.db.clone(), a.token.clone());
        let check = async move { keys.authenticate(&db, &token).await };
        ctx.wait(check.into_actor(self).map(move |r, act, ctx| act.authenticated(r, a, id, ctx)));
    }

    fn authenticated(
        &mut self,
        checked: Result<AuthUser, ApiError>,
        a: Authenticate,
        id: Option<String>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let user = match checked {
            Ok(user) => user,
            Err(e) => return self.refuse(ctx, id, None, e.code, e.message, "authentication failed"),
        };
        if a.client_type != ClientType::DriverNode {
            return self.accept(user, id, ctx);
        }
        let Some(driver_id) = user.driver_id.clone() else {
            let why = "driver nodes need a user with a driver profile".into();
            return self.refuse(ctx, id, Some(&user), ErrorCode::Forbidden, why, "not a driver");
        };
        // The node's driver session is resolved before the handshake completes, so frames that
        // follow are handed over in order.
        let (db, system) = (self.db.clone(), self.system.clone());
        let lookup = driver_id.clone();
        let (me, conn_id) = (ctx.address().recipient::<Push>(), self.id);
        let place = node_place(a.track.as_deref(), a.car.as_deref(), a.session_type.as_deref());
        let cluster = self.cluster.clone();
        let fut = async move {
            let driver = db.run(move |c| drivers::get_driver(c, &lookup).found("driver", &lookup)).await?;
            // Cluster mode: the team's actors run on its owner; when that is another node, this
            // connection forwards the node's telemetry there.
            if let Some(c) = &cluster {
                if let Route::Remote(owner) = c.claim(&driver.team_id).await.map_err(ApiError::unavailable)? {
                    tracing::info!(team = %driver.team_id, %owner, "driver node's team is owned elsewhere; forwarding");
                    if place.is_some() {
                        // The owner's driver session opens the racing session the sim names.
                        let named = SimSession {
                            track: a.track,
                            car: a.car,
                            session_type: a.session_type,
                            ..SimSession::default()
                        };
                        let answer = c.forward_session(&driver.team_id, &driver.id, named).await;
                        if !matches!(answer, crate::cluster::Forwarded::Stored { .. }) {
                            tracing::warn!(team = %driver.team_id, ?answer, "the owner did not take the node's sim session");
                        }
                    }
                    return Ok((driver.team_id, None, None));
                }
            }
            let session = system
                .driver_handle(&driver.team_id, &driver.id)
                .await
                .map_err(|e| ApiError::unavailable(e.to_string()))?;
            if let Some(place) = place {
                // The sim's track, car and session type name the racing session the laps go
                // into; the driver's session opens it before any frame of this node.
                system
                    .open_racing(&driver.team_id, &driver.id, place, true)
                    .await
                    .map_err(|e| ApiError::unavailable(e.to_string()))?;
            }
            // The node hears its driver's coach through the team hub, addressed to it alone.
            let hub = system.hub(&driver.team_id).await.ok();
            if let Some(hub) = &hub {
                hub.do_send(SubscribeNode { id: conn_id, driver_id: driver.id.clone(), events: me.into() });
            }
            Ok::<_, ApiError>((driver.team_id, Some(session), hub))
        };
        ctx.wait(fut.into_actor(self).map(move |r, act, ctx| match r {
            Ok((team_id, session, hub)) => {
                act.node_hub = hub;
                act.node = Some(match session {
                    Some(session) => {
                        session.do_send(NodeConnection(true));
                        NodeLink::new(team_id, driver_id, session)
                    }
                    None => NodeLink::remote(team_id, driver_id),
                });
                act.accept(user, id, ctx);
                act.resolve_video(ctx);
            }
            Err(e) => act.refuse(ctx, id, Some(&user), e.code, e.message, "driver unavailable"),
        }));
    }

    fn accept(&mut self, user: AuthUser, id: Option<String>, ctx: &mut ws::WebsocketContext<Self>) {
        let result = AuthenticationResult {
            success: true,
            user_id: Some(user.id.clone()),
            role: Some(user.role),
            error: None,
        };
        let teams = if self.node.is_none() { user.teams.clone() } else { vec![] };
        self.user = Some(user);
        self.send(ctx, Envelope { id, ..Envelope::new(Wire::AuthenticationResult(result)) });
        // The seed's dashboards never subscribed: follow the user's teams until the client asks
        // for something else.
        for team_id in teams {
            self.subscribe(Subscribe { team_id, driver_id: None, rate_hz: None }, None, true, ctx);
        }
    }

    /// Answers an `authenticate` with `authentication_result {success: false, error}` (naming the
    /// `user` when the token was good), then closes (policy) saying `why`.
    pub(super) fn refuse(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        id: Option<String>,
        user: Option<&AuthUser>,
        code: ErrorCode,
        message: String,
        why: &str,
    ) {
        let result = AuthenticationResult {
            success: false,
            user_id: user.map(|u| u.id.clone()),
            role: user.map(|u| u.role),
            error: Some(ErrorBody { code, message, request_id: None }),
        };
        self.send(ctx, Envelope { id, ..Envelope::new(Wire::AuthenticationResult(result)) });
        self.close(ctx, CloseCode::Policy, why);
    }

    /// Anything but `authenticate` before authenticating: say so, then close (policy).
    pub(super) fn not_authenticated(&mut self, ctx: &mut ws::WebsocketContext<Self>, id: Option<String>) {
        let body = ErrorBody {
            code: ErrorCode::NotAuthenticated,
            message: "authenticate first".into(),
            request_id: id.clone(),
        };
        self.send(ctx, Envelope { id, ..Envelope::new(Wire::Error(body)) });
        self.close(ctx, CloseCode::Policy, "authenticate first");
    }
}
