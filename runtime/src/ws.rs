//! `GET /ws`: the WebSocket transport, one `WsSession` actor per connection (actix-web-actors).
//!
//! Handshake of the original protocol: the server sends `connection_established`; the client must
//! answer `authenticate {token, clientType, version}` within the auth timeout, and nothing else is
//! accepted before that (an `error`, then close 1008). An `authenticate` that cannot be read or is
//! refused is answered `authentication_result {success: false, error}` before the close. Then:
//! - a driver node sends `telemetry_update` / `telemetry_batch` for its own driver; frames go to its
//!   `DriverSession` and the node gets `ack {seq}` once they are durably stored;
//! - a dashboard is subscribed to its teams' view at once (the seed had no `subscribe`); its first
//!   `subscribe {teamId, driverId?, rateHz?}` replaces that default. It receives its teams' events
//!   and the latest samples at its rate (latest-wins: a slow reader skips samples, it never queues
//!   them); `send_team_message`, `request_handoff`, `answer_handoff` (and the seed's
//!   `team_message` / `handoff_request`) reach the same code as REST, under the same per-user rate
//!   limit (`error {code: rate_limited}` past it). Telemetry is not rate limited: its ack-based
//!   flow control bounds it.
//! - onboard video: a driver node sends binary media frames (`pitbox_schema::wire::media`: a 24-byte
//!   header, then H.264) for its own driver only; they go to the driver's `VideoRelay`, never
//!   queued (a frame the relay cannot take at once is dropped and the stream resumes at the next
//!   keyframe). The relay's `video_control {pause|resume|keyframe}` is passed on to the node. A
//!   dashboard sends `watch_video {teamId, driverId}` (members of the driver's team only), gets
//!   `video_watching {stream}` and then the frames with that stream number in their header;
//!   `unwatch_video` ends it. A binary frame from a dashboard, or one that is not a media frame,
//!   gets a typed `error`; the connection stays.
//! - voice: a driver node sends `voice_command` for its own driver; it goes to the driver's
//!   `VoiceChannel` (a bad one gets a typed `error` naming the field). The node receives
//!   `voice_say` followed by one binary media frame (16-bit mono PCM, stream 1) for each thing
//!   to say, addressed to its driver's node alone.
//!
//! Messages fragmented into continuation frames (RFC 6455 §5.4) are assembled up to the same size
//! limit as single frames; past it, or for a single frame over it, the socket closes with 1009; a
//! text message that is not UTF-8 closes it with 1007; other framing errors with 1002. Bad messages
//! get a typed `error`; pings keep the connection alive and dead ones are dropped. Reads no env
//! vars (limits come from the config).

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::Item;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws::{self, CloseCode, CloseReason};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use pitbox_actors::driver_session::{DriverSession, Frames, IngestError, Latest, NodeConnection};
use pitbox_actors::mailbox::Mailbox;
use pitbox_actors::store_writer::{AckTo, Stored};
use pitbox_actors::supervision::Handle;
use pitbox_actors::team_hub::{
    Push, Subscribe as HubSubscribe, SubscribeNode, TeamHub, Unsubscribe as HubUnsubscribe,
};
use pitbox_actors::video_relay::{
    MediaIn, NodeAttach, NodeDetach, NodeVideo, Unwatch, VideoOut, VideoRelay, Watch,
};
use pitbox_actors::voice_channel::VoiceIn;
use pitbox_actors::ActorSystem;
use pitbox_schema::db::store::sessions::{self, Place};
use pitbox_schema::wire::media::{MediaHeader, NODE_VIDEO_STREAM};
use pitbox_schema::wire::{
    decode_client, Ack, Authenticate, AuthenticationResult, ClientType, ConnectionEstablished, Envelope,
    ErrorBody, ErrorCode, HandoffStatus, Inbound, Message as Wire, NewHandoff, NewTeamMessage, Posted,
    Subscribe, Subscribed, TelemetryFrame, VideoControl, VideoWatching, VoiceCommand, VoiceIntent,
    WatchVideo, PROTOCOL_VERSION,
};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::watch;

use crate::auth::{AuthUser, Keys};
use crate::config::Config;
use crate::db::Db;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;
use crate::store;

const PING_EVERY: Duration = Duration::from_secs(10);
const DEAD_AFTER: Duration = Duration::from_secs(30);
/// Protocol errors tolerated on one connection before it is closed (1008).
const MAX_ERRORS: u32 = 50;
/// Team events waiting for one dashboard; beyond it they are dropped for that dashboard.
const EVENT_MAILBOX: usize = 256;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub async fn connect(
    req: HttpRequest,
    stream: web::Payload,
    keys: web::Data<Keys>,
    system: web::Data<ActorSystem>,
    db: web::Data<Db>,
    metrics: web::Data<Metrics>,
    config: web::Data<Config>,
) -> Result<HttpResponse, actix_web::Error> {
    // The REST routes' limiter (the same per-user buckets), as the auth extractor finds it.
    let limits = req
        .app_data::<web::Data<RateLimits>>()
        .cloned()
        .ok_or_else(|| actix_web::error::ErrorInternalServerError("rate limits are not configured"))?;
    let session = WsSession {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        keys: keys.into_inner(),
        system: system.get_ref().clone(),
        db: db.get_ref().clone(),
        metrics: metrics.into_inner(),
        limits: limits.into_inner(),
        max_message: config.ws_max_frame_bytes,
        partial: None,
        server_id: config.server_id.clone(),
        auth_timeout: config.ws_auth_timeout,
        team_rate: config.team_rate_hz,
        driver_rate: config.driver_rate_hz,
        user: None,
        last_heard: Instant::now(),
        seq: 0,
        errors: 0,
        node: None,
        subs: BTreeMap::new(),
        generations: 0,
        hubs: BTreeMap::new(),
        node_hub: None,
        video_relay: None,
        video_resolving: false,
        video_gap: false,
        watching: BTreeMap::new(),
        next_stream: 0,
    };
    ws::WsResponseBuilder::new(session, &req, stream).frame_size(config.ws_max_frame_bytes).start()
}

/// The track, car and session type a node names at authentication, when they are usable text (anything else is
/// ignored: the node is not refused over its session info).
fn node_place(track: Option<&str>, car: Option<&str>, session_type: Option<&str>) -> Option<Place> {
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

/// The driver a node connection publishes as.
struct NodeLink {
    team_id: String,
    driver_id: String,
    /// The driver's session across its restarts.
    session: Option<Handle<DriverSession>>,
    resolving: bool,
    /// A batch starting at this seq was refused (its session restarted, storage was busy): later
    /// batches already on their way are refused too until the node resends from there, so frames
    /// are never stored out of order (the stored watermark would skip the refused ones, and the
    /// acknowledgement would cover frames never stored). Given up after [`REWIND_PATIENCE`].
    rewind: Option<(u64, Instant)>,
    /// A batch is with the session and its verdict is not back yet. Later batches wait in
    /// `waiting`, in order, so that a refusal is known before anything after it is forwarded:
    /// otherwise a later batch could reach a restarted session first, be stored, and move the
    /// writer's watermark past the refused frames, whose resend would then be dropped as seen.
    in_flight: bool,
    waiting: std::collections::VecDeque<Batch>,
}

/// Telemetry from a node, as it arrived.
struct Batch {
    driver_id: String,
    stream_id: Option<String>,
    frames: Vec<TelemetryFrame>,
    to: Option<String>,
    id: Option<String>,
}

/// Batches a node connection holds while one is with its session; past it, a batch is refused
/// (the node resends from its last acknowledgement). The node's window bounds this anyway.
const MAX_WAITING_BATCHES: usize = 256;

/// How long refused batches wait for the node's resend before any order is accepted again (a
/// node whose spool thinned the frames away never resends them).
const REWIND_PATIENCE: Duration = Duration::from_secs(5);

/// One driver's samples as one subscription sees them.
struct Feed {
    rx: watch::Receiver<Latest>,
    /// The last sample sent (its `n`).
    sent: u64,
    /// The subscription's rate for this driver: a token bucket (governor's GCRA) with a burst of
    /// two, so a sample that arrives a little early after a late one goes out at once. A timer at
    /// the drivers' own interval put a 0–17 ms floor under the latency and skipped samples at 60 Hz.
    limit: DefaultDirectRateLimiter,
    /// A wait for the next change (or for the rate limit) is pending.
    armed: bool,
}

impl Feed {
    fn new(mut rx: watch::Receiver<Latest>, period: Duration) -> Self {
        rx.mark_changed();
        let burst = NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst);
        Self { rx, sent: 0, limit: RateLimiter::direct(quota), armed: false }
    }

    /// How long until this feed may push again; zero (and the push counted) when it may now.
    fn wait(&self) -> Duration {
        match self.limit.check() {
            Ok(()) => Duration::ZERO,
            Err(not_until) => not_until.wait_time_from(DefaultClock::default().now()),
        }
    }
}

/// One dashboard subscription: the team view, or one driver's full-rate stream. Samples are pushed
/// as they change, at most once per `period` per driver (what changed meanwhile is merged:
/// latest-wins), so latency stays low and the rate bounded.
struct Sub {
    full_rate: bool,
    /// Made at authentication (not asked for); the client's first `subscribe` replaces it.
    default: bool,
    period: Duration,
    /// Tells callbacks of an earlier subscription (same key) to stand down.
    generation: u64,
    feeds: BTreeMap<String, Feed>,
}

type SubKey = (String, Option<String>);

/// A message arriving in continuation frames, assembled up to the size limit.
struct Partial {
    text: bool,
    bytes: Vec<u8>,
}

/// Whether a stream error is actix-web-actors' report of a text frame that is not UTF-8: it turns
/// the failed conversion into an `io::Error` that carries only the conversion's message. A real I/O
/// error leaves nothing to answer, so telling them apart by the text is safe.
fn is_invalid_utf8(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::Other && e.to_string().contains("utf-8")
}

pub struct WsSession {
    id: u64,
    keys: std::sync::Arc<Keys>,
    system: ActorSystem,
    db: Db,
    metrics: std::sync::Arc<Metrics>,
    limits: std::sync::Arc<RateLimits>,
    /// Largest message, whole or assembled from fragments (`PITBOX_WS_MAX_FRAME_BYTES`).
    max_message: usize,
    partial: Option<Partial>,
    server_id: String,
    auth_timeout: Duration,
    team_rate: u16,
    driver_rate: u16,
    user: Option<AuthUser>,
    last_heard: Instant,
    seq: u64,
    errors: u32,
    node: Option<NodeLink>,
    /// Subscriptions by (team, driver).
    subs: BTreeMap<SubKey, Sub>,
    generations: u64,
    /// Hubs whose events this connection receives.
    hubs: BTreeMap<String, Mailbox<TeamHub>>,
    /// A node's team hub: it delivers what is addressed to this driver's node (the coach's tip).
    node_hub: Option<Mailbox<TeamHub>>,
    /// A node's video relay (its own driver's), once resolved.
    video_relay: Option<Mailbox<VideoRelay>>,
    video_resolving: bool,
    /// A frame of the node's video was dropped: later ones wait for a keyframe.
    video_gap: bool,
    /// A dashboard's watched videos by driver.
    watching: BTreeMap<String, Watching>,
    next_stream: u32,
}

/// One driver's video a dashboard watches.
struct Watching {
    stream: u32,
    relay: Mailbox<VideoRelay>,
}

/// `{"type": "telemetry_update", "data": <shared JSON>, "from": …, "seq": …}` without
/// re-serialising the sample for every subscriber.
#[derive(Serialize)]
struct SharedPush<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    data: &'a RawValue,
    from: &'a str,
    seq: u64,
}

impl WsSession {
    fn send(&mut self, ctx: &mut ws::WebsocketContext<Self>, mut env: Envelope) {
        self.seq += 1;
        env.seq = Some(self.seq);
        match serde_json::to_string(&env) {
            Ok(text) => ctx.text(text),
            Err(e) => tracing::error!(error = %e, "cannot encode a push"),
        }
    }

    fn error(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        code: ErrorCode,
        message: String,
        id: Option<String>,
    ) {
        self.errors += 1;
        if self.errors == 1 {
            // Logged once per connection; the counter covers the rest.
            tracing::info!(conn = self.id, ?code, %message, "rejected a client message");
        }
        let body = ErrorBody { code, message, request_id: id.clone() };
        self.send(ctx, Envelope { id, ..Envelope::new(Wire::Error(body)) });
        if self.errors > MAX_ERRORS {
            self.close(ctx, CloseCode::Policy, "too many protocol errors");
        }
    }

    fn api_error(&mut self, ctx: &mut ws::WebsocketContext<Self>, e: ApiError, id: Option<String>) {
        self.error(ctx, e.code, e.message, id);
    }

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: CloseCode, why: &str) {
        ctx.close(Some(CloseReason { code, description: Some(why.to_owned()) }));
        ctx.stop();
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let inbound = match decode_client(text) {
            Ok(inbound) => inbound,
            Err(e) if self.user.is_none() => {
                if e.kind.as_deref() == Some("authenticate") {
                    // Unreadable credentials still get their answer before the close.
                    let error = ErrorBody { code: e.code, message: e.message, request_id: None };
                    return self.refuse(ctx, e.id, None, error, "authentication failed");
                }
                return self.not_authenticated(ctx, e.id);
            }
            Err(e) => return self.error(ctx, e.code, e.message, e.id),
        };
        let env = match inbound {
            Inbound::Message(env) => *env,
            Inbound::SendTeamMessage(p) if self.user.is_some() => return self.send_message(p, ctx),
            Inbound::RequestHandoff(p) if self.user.is_some() => return self.request_handoff(p, ctx),
            Inbound::SendTeamMessage(Posted { id, .. }) | Inbound::RequestHandoff(Posted { id, .. }) => {
                return self.not_authenticated(ctx, id)
            }
        };
        let id = env.id.clone();
        if self.user.is_none() {
            return match env.message {
                Wire::Authenticate(a) => self.authenticate(a, id, ctx),
                _ => self.not_authenticated(ctx, id),
            };
        }
        // The REST rule for NUL (`crate::input`), so nothing with one reaches the database.
        if crate::input::json_has_nul(text.as_bytes()) {
            return self.error(ctx, ErrorCode::InvalidField, crate::input::NUL_MESSAGE.into(), id);
        }
        match env.message {
            Wire::Authenticate(_) => {
                self.error(ctx, ErrorCode::BadRequest, "already authenticated".into(), id)
            }
            Wire::TelemetryUpdate(u) => {
                let u = *u;
                self.telemetry(
                    Batch { driver_id: u.driver_id, stream_id: None, frames: vec![u.frame], to: env.to, id },
                    ctx,
                )
            }
            Wire::TelemetryBatch(b) => self.telemetry(
                Batch { driver_id: b.driver_id, stream_id: b.stream_id, frames: b.frames, to: env.to, id },
                ctx,
            ),
            Wire::Subscribe(s) => {
                if let Err(e) = self.check_rate() {
                    return self.api_error(ctx, e, id);
                }
                self.subscribe(s, id, false, ctx)
            }
            Wire::Unsubscribe(s) => {
                self.subs.remove(&(s.team_id.clone(), s.driver_id.clone()));
                if !self.subs.keys().any(|(t, _)| *t == s.team_id) {
                    if let Some(hub) = self.hubs.remove(&s.team_id) {
                        hub.do_send(HubUnsubscribe { id: self.id });
                    }
                }
            }
            Wire::WatchVideo(w) => {
                if let Err(e) = self.check_rate() {
                    return self.api_error(ctx, e, id);
                }
                self.watch_video(w, id, ctx)
            }
            Wire::UnwatchVideo(w) => {
                if let Some(w) = self.watching.remove(&w.driver_id) {
                    w.relay.do_send(Unwatch { conn: self.id });
                }
            }
            Wire::VoiceCommand(c) => self.voice_command(c, id, ctx),
            Wire::AnswerHandoff(a) => {
                if a.status == HandoffStatus::Pending {
                    return self.error(
                        ctx,
                        ErrorCode::InvalidField,
                        "status: cannot go back to pending".into(),
                        id,
                    );
                }
                self.team_action(ctx, id, |db, system, user| async move {
                    crate::routes::messages::answer(&db, &system, &user, a.id, a.status)
                        .await
                        .map(|h| Wire::HandoffRequest(Box::new(h)))
                })
            }
            _ => self.error(
                ctx,
                ErrorCode::BadRequest,
                "this message type is sent by the server only".into(),
                id,
            ),
        }
    }

    /// Anything but `authenticate` before authenticating: say so, then close (policy).
    fn not_authenticated(&mut self, ctx: &mut ws::WebsocketContext<Self>, id: Option<String>) {
        let body = ErrorBody {
            code: ErrorCode::NotAuthenticated,
            message: "authenticate first".into(),
            request_id: id.clone(),
        };
        self.send(ctx, Envelope { id, ..Envelope::new(Wire::Error(body)) });
        self.close(ctx, CloseCode::Policy, "authenticate first");
    }

    /// Answers an `authenticate` with `authentication_result {success: false, error}`, then closes.
    fn refuse(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        id: Option<String>,
        user: Option<&AuthUser>,
        error: ErrorBody,
        why: &str,
    ) {
        let result = AuthenticationResult {
            success: false,
            user_id: user.map(|u| u.id.clone()),
            role: user.map(|u| u.role),
            error: Some(error),
        };
        self.send(ctx, Envelope { id, ..Envelope::new(Wire::AuthenticationResult(result)) });
        self.close(ctx, CloseCode::Policy, why);
    }

    /// The per-user limit shared with REST (`PITBOX_RATE_LIMIT_PER_USER`), for team actions.
    fn check_rate(&self) -> Result<(), ApiError> {
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

    fn send_message(&mut self, p: Posted<NewTeamMessage>, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(team_id) = p.team_id.or_else(|| self.implied_team()) else {
            let why = "teamId: required, you belong to several teams (or none)".to_owned();
            return self.error(ctx, ErrorCode::InvalidField, why, p.id);
        };
        let message = p.body;
        self.team_action(ctx, p.id, |db, system, user| async move {
            crate::routes::messages::send(&db, &system, &user, team_id, message).await.map(Wire::TeamMessage)
        })
    }

    fn request_handoff(&mut self, p: Posted<NewHandoff>, ctx: &mut ws::WebsocketContext<Self>) {
        let team_id = p.team_id.or_else(|| self.implied_team());
        let handoff = p.body;
        self.team_action(ctx, p.id, |db, system, user| async move {
            let team_id = match team_id {
                Some(t) => t,
                // The seed named no team: the handoff is for the target driver's.
                None => {
                    let target = handoff.target_driver_id.clone();
                    db.run(move |c| store::get_driver(c, &target)).await?.team_id
                }
            };
            crate::routes::messages::request_handoff(&db, &system, &user, team_id, handoff)
                .await
                .map(|h| Wire::HandoffRequest(Box::new(h)))
        })
    }

    /// Runs a team action as this connection's user — the same code as the REST route — and
    /// answers with its result or a typed error.
    fn team_action<F, Fut>(&mut self, ctx: &mut ws::WebsocketContext<Self>, id: Option<String>, action: F)
    where
        F: FnOnce(Db, ActorSystem, AuthUser) -> Fut,
        Fut: std::future::Future<Output = Result<Wire, ApiError>> + 'static,
    {
        let Some(user) = self.user.clone() else { return };
        if let Err(e) = self.check_rate() {
            return self.api_error(ctx, e, id);
        }
        let fut = action(self.db.clone(), self.system.clone(), user);
        ctx.spawn(fut.into_actor(self).map(move |r, act, ctx| match r {
            Ok(message) => act.send(ctx, Envelope { id, ..Envelope::new(message) }),
            Err(e) => act.api_error(ctx, e, id),
        }));
    }

    fn authenticate(&mut self, a: Authenticate, id: Option<String>, ctx: &mut ws::WebsocketContext<Self>) {
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
            Err(e) => {
                let result = AuthenticationResult {
                    success: false,
                    user_id: None,
                    role: None,
                    error: Some(ErrorBody { code: e.code, message: e.message.clone(), request_id: None }),
                };
                self.send(ctx, Envelope { id, ..Envelope::new(Wire::AuthenticationResult(result)) });
                return self.close(ctx, CloseCode::Policy, "authentication failed");
            }
        };
        if a.client_type == ClientType::DriverNode {
            let Some(driver_id) = user.driver_id.clone() else {
                let result = AuthenticationResult {
                    success: false,
                    user_id: Some(user.id.clone()),
                    role: Some(user.role),
                    error: Some(ErrorBody {
                        code: ErrorCode::Forbidden,
                        message: "driver nodes need a user with a driver profile".into(),
                        request_id: None,
                    }),
                };
                self.send(ctx, Envelope { id, ..Envelope::new(Wire::AuthenticationResult(result)) });
                return self.close(ctx, CloseCode::Policy, "not a driver");
            };
            // The node's driver session is resolved before the handshake completes, so frames
            // that follow are handed over in order.
            let (db, system) = (self.db.clone(), self.system.clone());
            let lookup = driver_id.clone();
            let (me, conn_id) = (ctx.address().recipient::<Push>(), self.id);
            let place = node_place(a.track.as_deref(), a.car.as_deref(), a.session_type.as_deref());
            let fut = async move {
                let driver = db.run(move |c| store::get_driver(c, &lookup)).await?;
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
                    hub.do_send(SubscribeNode {
                        id: conn_id,
                        driver_id: driver.id.clone(),
                        events: me.into(),
                    });
                }
                Ok::<_, ApiError>((driver.team_id, session, hub))
            };
            ctx.wait(fut.into_actor(self).map(move |r, act, ctx| match r {
                Ok((team_id, session, hub)) => {
                    act.node_hub = hub;
                    session.do_send(NodeConnection(true));
                    act.node = Some(NodeLink {
                        team_id,
                        driver_id,
                        session: Some(session),
                        resolving: false,
                        rewind: None,
                        in_flight: false,
                        waiting: Default::default(),
                    });
                    act.accept(user, id, ctx);
                    act.resolve_video(ctx);
                }
                Err(e) => {
                    let result = AuthenticationResult {
                        success: false,
                        user_id: Some(user.id.clone()),
                        role: Some(user.role),
                        error: Some(ErrorBody { code: e.code, message: e.message, request_id: None }),
                    };
                    act.send(ctx, Envelope { id, ..Envelope::new(Wire::AuthenticationResult(result)) });
                    act.close(ctx, CloseCode::Policy, "driver unavailable");
                }
            }));
        } else {
            self.accept(user, id, ctx);
        }
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

    /// Telemetry from the node: forwarded at once, or queued behind the batch still with the
    /// session (see [`NodeLink::in_flight`]).
    fn telemetry(&mut self, batch: Batch, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(node) = self.node.as_mut() else {
            return self.error(
                ctx,
                ErrorCode::Forbidden,
                "only driver nodes send telemetry".into(),
                batch.id,
            );
        };
        if !node.in_flight {
            return self.forward(batch, ctx);
        }
        if node.waiting.len() < MAX_WAITING_BATCHES {
            node.waiting.push_back(batch);
            return;
        }
        let first = batch.frames.first().and_then(|f| f.seq);
        self.refused(first);
        self.error(ctx, ErrorCode::Unavailable, "too many batches waiting; resend".into(), batch.id);
    }

    /// Forwards waiting batches until one is with the session again.
    fn next_batch(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        while let Some(node) = self.node.as_mut() {
            if node.in_flight {
                return;
            }
            let Some(batch) = node.waiting.pop_front() else { return };
            self.forward(batch, ctx);
        }
    }

    fn forward(&mut self, batch: Batch, ctx: &mut ws::WebsocketContext<Self>) {
        let Batch { driver_id, stream_id, frames, to, id } = batch;
        let Some(node) = &self.node else {
            return self.error(ctx, ErrorCode::Forbidden, "only driver nodes send telemetry".into(), id);
        };
        if driver_id != node.driver_id {
            return self.error(
                ctx,
                ErrorCode::Forbidden,
                "drivers may publish only their own telemetry".into(),
                id,
            );
        }
        let own_path = pitbox_actors::driver_session::driver_path(&node.team_id, &node.driver_id);
        if to.as_ref().is_some_and(|t| *t != own_path) {
            return self.error(
                ctx,
                ErrorCode::Forbidden,
                format!("you may not address {}", to.unwrap_or_default()),
                id,
            );
        }
        if frames.is_empty() {
            return;
        }
        let first = frames.first().and_then(|f| f.seq);
        if let (Some((from, since)), Some(seq)) = (node.rewind, first) {
            if seq > from && since.elapsed() < REWIND_PATIENCE {
                return self.error(ctx, ErrorCode::Unavailable, format!("resend from seq {from}"), id);
            }
        }
        let Some(node) = self.node.as_mut() else { return };
        node.rewind = None;
        let Some(session) = node.session.clone().filter(|s| s.connected()) else {
            self.refused(first);
            self.reresolve(ctx);
            return self.error(ctx, ErrorCode::Unavailable, "driver session restarting; resend".into(), id);
        };
        node.in_flight = true;
        let ack = AckTo::Actor(ctx.address().recipient::<Stored>());
        let request = session.send(Frames { stream_id, frames, ack: Some(ack) });
        ctx.spawn(request.into_actor(self).map(move |r, act, ctx| {
            match r {
                Ok(Ok(fresh)) => {
                    act.metrics.telemetry_samples.inc_by(fresh as u64);
                }
                Ok(Err(IngestError::Invalid(m))) => act.error(ctx, ErrorCode::InvalidField, m, id),
                Ok(Err(e)) => {
                    act.refused(first);
                    act.error(ctx, ErrorCode::Unavailable, e.to_string(), id)
                }
                Err(_) => {
                    act.refused(first);
                    act.reresolve(ctx);
                    act.error(ctx, ErrorCode::Unavailable, "driver session restarting; resend".into(), id);
                }
            }
            if let Some(node) = act.node.as_mut() {
                node.in_flight = false;
            }
            act.next_batch(ctx);
        }));
    }

    /// A batch starting at `first` was not stored: hold later ones until it is resent.
    fn refused(&mut self, first: Option<u64>) {
        let (Some(node), Some(first)) = (self.node.as_mut(), first) else { return };
        let from = node.rewind.map_or(first, |(f, _)| f.min(first));
        node.rewind = Some((from, Instant::now()));
    }

    /// The node's session is down. Its handle follows a restart by itself; a session stopped
    /// after repeated failures comes back when asked for after the restart period.
    fn reresolve(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(node) = self.node.as_mut() else { return };
        if node.resolving {
            return;
        }
        node.resolving = true;
        let (system, team, driver) = (self.system.clone(), node.team_id.clone(), node.driver_id.clone());
        ctx.spawn(async move { system.driver_handle(&team, &driver).await }.into_actor(self).map(
            |r, act, ctx| {
                let Some(node) = act.node.as_mut() else { return };
                node.resolving = false;
                match r {
                    Ok(session) => {
                        // The session keeps its nodes through restarts; a new one must be told.
                        if !node.session.as_ref().is_some_and(|s| s.same(&session)) {
                            session.do_send(NodeConnection(true));
                        }
                        node.session = Some(session);
                    }
                    // Stopped for now by its supervisor: try again; the node keeps its frames meanwhile.
                    Err(_) => {
                        ctx.run_later(Duration::from_millis(500), |act, ctx| act.reresolve(ctx));
                    }
                }
            },
        ));
    }

    /// Subscribes as asked, or (`default`) to a team's view at authentication: that one is not
    /// answered, and holds the connection's other messages until it is in place, so a `subscribe`
    /// that follows at once finds it there to replace.
    fn subscribe(
        &mut self,
        s: Subscribe,
        id: Option<String>,
        default: bool,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let Some(user) = &self.user else { return };
        if !user.can_read_team(&s.team_id) {
            return self.error(ctx, ErrorCode::Forbidden, "you are not a member of this team".into(), id);
        }
        if !default {
            self.drop_defaults(&s.team_id);
        }
        let wanted = if s.driver_id.is_some() { self.driver_rate } else { self.team_rate };
        let rate = s.rate_hz.unwrap_or(wanted).clamp(1, self.driver_rate.max(self.team_rate));
        let (system, db, team) = (self.system.clone(), self.db.clone(), s.team_id.clone());
        let me = ctx.address().recipient::<Push>();
        let conn_id = self.id;
        let known = self.hubs.get(&s.team_id).cloned();
        let fut = async move {
            let lookup = team.clone();
            db.run(move |c| store::get_team(c, &lookup)).await?;
            let hub = match known {
                Some(h) => h,
                None => system.hub(&team).await.map_err(|e| ApiError::unavailable(e.to_string()))?,
            };
            let drivers = hub
                .send(HubSubscribe { id: conn_id, events: me.into() })
                .await
                .map_err(|e| ApiError::unavailable(e.to_string()))?;
            Ok::<_, ApiError>((hub, drivers))
        };
        let done = fut.into_actor(self).map(move |r, act, ctx| {
            let (hub, drivers) = match r {
                Ok(v) => v,
                Err(e) if default => {
                    tracing::warn!(conn = act.id, team = %s.team_id, error = %e.message, "default subscription failed");
                    return;
                }
                Err(e) => return act.api_error(ctx, e, id),
            };
            act.hubs.insert(s.team_id.clone(), hub);
            let key = (s.team_id.clone(), s.driver_id.clone());
            let period = Duration::from_secs_f64(1.0 / f64::from(rate));
            let mut feeds = BTreeMap::new();
            for (driver, rx) in drivers {
                if s.driver_id.as_ref().is_none_or(|d| *d == driver) {
                    feeds.insert(driver, Feed::new(rx, period));
                }
            }
            let answer = Subscribed {
                team_id: s.team_id.clone(),
                driver_id: s.driver_id.clone(),
                rate_hz: rate,
                drivers: feeds.keys().cloned().collect(),
            };
            act.generations += 1;
            let drivers: Vec<String> = feeds.keys().cloned().collect();
            let sub =
                Sub { full_rate: s.driver_id.is_some(), default, period, generation: act.generations, feeds };
            act.subs.insert(key.clone(), sub);
            if !default {
                act.send(ctx, Envelope { id, ..Envelope::new(Wire::Subscribed(answer)) });
            }
            for driver in drivers {
                act.arm(key.clone(), driver, ctx);
            }
        });
        if default {
            ctx.wait(done);
        } else {
            ctx.spawn(done);
        }
    }

    /// The client said what it wants: the subscriptions made for it at authentication go, and so
    /// do the events of teams it no longer follows (`keep` is the team being subscribed to).
    fn drop_defaults(&mut self, keep: &str) {
        let before: Vec<String> = self.subs.keys().map(|(t, _)| t.clone()).collect();
        self.subs.retain(|_, sub| !sub.default);
        for team in before {
            if team != keep && !self.subs.keys().any(|(t, _)| *t == team) {
                if let Some(hub) = self.hubs.remove(&team) {
                    hub.do_send(HubUnsubscribe { id: self.id });
                }
            }
        }
    }

    /// Waits for the driver's next sample, then pushes it — at once, or when the subscription's
    /// rate allows — and waits again. Nothing runs while the socket is stalled (the actor is not
    /// polled then), so a stalled dashboard holds one pending wait per driver, nothing more.
    fn arm(&mut self, key: SubKey, driver: String, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(sub) = self.subs.get_mut(&key) else { return };
        let generation = sub.generation;
        let Some(feed) = sub.feeds.get_mut(&driver) else { return };
        if feed.armed {
            return;
        }
        feed.armed = true;
        let mut rx = feed.rx.clone();
        let changed = async move { rx.changed().await.is_ok() };
        ctx.spawn(changed.into_actor(self).map(move |alive, act, ctx| {
            let Some(sub) = act.subs.get_mut(&key).filter(|s| s.generation == generation) else { return };
            let Some(feed) = sub.feeds.get_mut(&driver) else { return };
            if !alive {
                // The driver's session is gone for good; a new one arrives as DriverJoined.
                feed.armed = false;
                return;
            }
            let wait = feed.wait();
            if wait.is_zero() {
                feed.armed = false;
                act.push_feed(&key, &driver, ctx);
                act.arm(key, driver, ctx);
            } else {
                ctx.run_later(wait, move |act, ctx| {
                    if let Some(feed) = act
                        .subs
                        .get_mut(&key)
                        .filter(|s| s.generation == generation)
                        .and_then(|s| s.feeds.get_mut(&driver))
                    {
                        feed.armed = false;
                        // The token this push spends has come by now (the timer only ends late).
                        let _ = feed.limit.check();
                        act.push_feed(&key, &driver, ctx);
                        act.arm(key, driver, ctx);
                    }
                });
            }
        }));
    }

    /// Sends what changed: the newest sample (team view) or every sample of the latest batch not
    /// sent yet (focused view).
    fn push_feed(&mut self, key: &SubKey, driver: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(sub) = self.subs.get_mut(key) else { return };
        let full_rate = sub.full_rate;
        let Some(feed) = sub.feeds.get_mut(driver) else { return };
        let Some(batch) = feed.rx.borrow_and_update().clone() else { return };
        let sent = feed.sent;
        let fresh = batch.iter().filter(|l| l.n > sent);
        let chosen: Vec<&pitbox_actors::driver_session::LiveSample> =
            if full_rate { fresh.collect() } else { fresh.last().into_iter().collect() };
        if chosen.is_empty() {
            return;
        }
        feed.sent = batch.last().map_or(sent, |l| l.n.max(sent));
        let from = pitbox_actors::driver_session::driver_path(&key.0, driver);
        for live in chosen {
            let Some(data) = live.json() else { continue };
            self.seq += 1;
            let push = SharedPush { kind: "telemetry_update", data, from: &from, seq: self.seq };
            if let Ok(text) = serde_json::to_string(&push) {
                ctx.text(text);
            }
        }
    }
}

impl WsSession {
    /// A binary frame: media from a driver node for its own driver's video relay. Anything else
    /// gets a typed error (the connection stays, up to the error limit).
    fn on_binary(&mut self, bytes: bytes::Bytes, ctx: &mut ws::WebsocketContext<Self>) {
        if self.user.is_none() {
            return self.not_authenticated(ctx, None);
        }
        if self.node.is_none() {
            let why = "binary media frames are sent by driver nodes only".into();
            return self.error(ctx, ErrorCode::Forbidden, why, None);
        }
        let header = match MediaHeader::decode(&bytes) {
            Ok((h, _)) => h,
            Err(e) => return self.error(ctx, ErrorCode::InvalidField, format!("media frame: {e}"), None),
        };
        if header.stream != NODE_VIDEO_STREAM {
            let why = format!("media frame: stream {} is not this node's video (0)", header.stream);
            return self.error(ctx, ErrorCode::InvalidField, why, None);
        }
        self.metrics.video_frames.inc();
        // After a dropped frame the pictures that follow cannot be decoded: skip to a keyframe.
        if self.video_gap && !header.keyframe {
            self.metrics.video_dropped.inc();
            return;
        }
        match self.video_relay.as_ref().filter(|r| r.connected()) {
            // Video is never queued: a frame the relay cannot take now (restarting, or its
            // mailbox full) is dropped, and the stream resumes at the next keyframe.
            Some(relay) => {
                self.video_gap = relay.try_send(MediaIn { header, frame: bytes }).is_err();
            }
            None => {
                self.video_gap = true;
                self.resolve_video(ctx);
            }
        }
        if self.video_gap {
            self.metrics.video_dropped.inc();
        }
    }

    /// `voice_command`: a driver node's spoken command for its own driver's voice channel. The
    /// answer comes later as `voice_say` (with its clip); a bad command gets a typed error naming
    /// the field, and the connection goes on.
    fn voice_command(&mut self, c: VoiceCommand, id: Option<String>, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(node) = &self.node else {
            let why = "voice_command is sent by driver nodes only".into();
            return self.error(ctx, ErrorCode::Forbidden, why, id);
        };
        if let Err(why) = check_voice_command(&c) {
            return self.error(ctx, ErrorCode::InvalidField, why, id);
        }
        let (system, team, driver) = (self.system.clone(), node.team_id.clone(), node.driver_id.clone());
        let msg = VoiceIn { command: c, received: Instant::now() };
        ctx.spawn(async move { system.voice_command(&team, &driver, msg).await }.into_actor(self).map(
            move |r, act, ctx| {
                if let Err(e) = r {
                    act.error(ctx, ErrorCode::Unavailable, e.to_string(), id);
                }
            },
        ));
    }

    /// Finds the node's video relay and attaches to it (again, after the relay restarted).
    fn resolve_video(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(node) = &self.node else { return };
        if self.video_resolving {
            return;
        }
        self.video_resolving = true;
        let (system, team, driver) = (self.system.clone(), node.team_id.clone(), node.driver_id.clone());
        ctx.spawn(async move { system.video(&team, &driver).await }.into_actor(self).map(|r, act, ctx| {
            act.video_resolving = false;
            match r {
                Ok(relay) => {
                    relay.do_send(NodeAttach { conn: act.id, control: ctx.address().recipient() });
                    act.video_relay = Some(relay);
                }
                Err(e) => tracing::debug!(conn = act.id, error = %e, "video relay not found yet"),
            }
        }));
    }

    /// `watch_video`: a member of the driver's team starts receiving its onboard video.
    fn watch_video(&mut self, w: WatchVideo, id: Option<String>, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(user) = &self.user else { return };
        if !user.can_read_team(&w.team_id) {
            return self.error(ctx, ErrorCode::Forbidden, "you are not a member of this team".into(), id);
        }
        let (db, system) = (self.db.clone(), self.system.clone());
        let me = ctx.address().recipient::<VideoOut>();
        let conn = self.id;
        let (team, driver) = (w.team_id.clone(), w.driver_id.clone());
        let fut = async move {
            let lookup = driver.clone();
            let d = db.run(move |c| store::get_driver(c, &lookup)).await?;
            if d.team_id != team {
                return Err(ApiError::not_found("driver", &driver));
            }
            let relay =
                system.video(&team, &driver).await.map_err(|e| ApiError::unavailable(e.to_string()))?;
            Ok::<_, ApiError>(relay)
        };
        ctx.spawn(fut.into_actor(self).map(move |r, act, ctx| {
            let relay = match r {
                Ok(relay) => relay,
                Err(e) => return act.api_error(ctx, e, id),
            };
            let stream = match act.watching.get(&w.driver_id) {
                Some(old) => old.stream,
                None => {
                    act.next_stream += 1;
                    act.next_stream
                }
            };
            // The answer goes first, so the frames that follow are known.
            let answer = VideoWatching { team_id: w.team_id.clone(), driver_id: w.driver_id.clone(), stream };
            act.send(ctx, Envelope { id, ..Envelope::new(Wire::VideoWatching(answer)) });
            relay.do_send(Watch { conn, viewer: me });
            act.watching.insert(w.driver_id, Watching { stream, relay });
        }));
    }
}

/// Longest `voice_command` id, transcript and text.
const VOICE_ID_MAX: usize = 64;
const VOICE_TEXT_MAX: usize = 500;

/// What a `voice_command` must be: an id, a transcript and text of sane length, a confidence
/// between 0 and 1, and for `tell_team` the message.
fn check_voice_command(c: &VoiceCommand) -> Result<(), String> {
    if c.id.trim().is_empty() || c.id.chars().count() > VOICE_ID_MAX {
        return Err(format!("id: 1 to {VOICE_ID_MAX} characters"));
    }
    if c.transcript.chars().count() > VOICE_TEXT_MAX {
        return Err(format!("transcript: at most {VOICE_TEXT_MAX} characters"));
    }
    if !(c.confidence.is_finite() && (0.0..=1.0).contains(&c.confidence)) {
        return Err(format!("confidence: must be between 0 and 1, got {}", c.confidence));
    }
    if let Some(t) = &c.text {
        crate::routes::text("text", t, VOICE_TEXT_MAX).map_err(|e| e.message)?;
    }
    if c.command == VoiceIntent::TellTeam && c.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
        return Err("text: tell_team needs the message to pass on".into());
    }
    if c.number.is_some_and(|n| !n.is_finite()) {
        return Err("number: must be a finite number".into());
    }
    Ok(())
}

impl Handler<VideoOut> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: VideoOut, ctx: &mut Self::Context) {
        msg.pending.fetch_sub(1, Ordering::Relaxed);
        let Some(w) = self.watching.get(&*msg.driver_id) else { return };
        let mut frame = bytes::BytesMut::from(&msg.frame[..]);
        MediaHeader::set_stream(&mut frame, w.stream);
        ctx.binary(frame.freeze());
    }
}

impl Handler<NodeVideo> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: NodeVideo, ctx: &mut Self::Context) {
        self.send(ctx, Envelope::new(Wire::VideoControl(VideoControl { action: msg.0 })));
    }
}

impl WsSession {
    /// One frame of a fragmented message. The codec checks the order (a first frame, continues, a
    /// last one; anything else is a protocol error); this bounds the whole and hands the message on
    /// once complete.
    fn on_fragment(&mut self, item: Item, ctx: &mut ws::WebsocketContext<Self>) {
        let (chunk, last) = match item {
            Item::FirstText(b) => {
                self.partial = Some(Partial { text: true, bytes: Vec::new() });
                (b, false)
            }
            Item::FirstBinary(b) => {
                self.partial = Some(Partial { text: false, bytes: Vec::new() });
                (b, false)
            }
            Item::Continue(b) => (b, false),
            Item::Last(b) => (b, true),
        };
        let Some(partial) = self.partial.as_mut() else {
            return self.close(ctx, CloseCode::Protocol, "continuation without a first frame");
        };
        if partial.bytes.len().saturating_add(chunk.len()) > self.max_message {
            self.partial = None;
            tracing::info!(conn = self.id, "fragmented message over the size limit; closing");
            return self.close(ctx, CloseCode::Size, "message too big");
        }
        partial.bytes.extend_from_slice(&chunk);
        if !last {
            return;
        }
        let Some(Partial { text, bytes }) = self.partial.take() else { return };
        if !text {
            return self.on_binary(bytes.into(), ctx);
        }
        match String::from_utf8(bytes) {
            Ok(text) => self.on_text(&text, ctx),
            Err(_) => {
                tracing::info!(conn = self.id, "fragmented text is not UTF-8; closing");
                self.close(ctx, CloseCode::Invalid, "text is not UTF-8")
            }
        }
    }
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(EVENT_MAILBOX);
        let hello = ConnectionEstablished {
            server_id: self.server_id.clone(),
            timestamp: chrono::Utc::now(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: PROTOCOL_VERSION,
        };
        self.send(ctx, Envelope::new(Wire::ConnectionEstablished(hello)));
        ctx.run_later(self.auth_timeout, |act, ctx| {
            if act.user.is_none() {
                act.close(ctx, CloseCode::Policy, "authentication timed out");
            }
        });
        ctx.run_interval(PING_EVERY, |act, ctx| {
            if act.last_heard.elapsed() > DEAD_AFTER {
                tracing::info!(conn = act.id, "no answer to pings; dropping the connection");
                ctx.stop();
            } else {
                ctx.ping(b"");
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        for hub in self.hubs.values().chain(self.node_hub.as_ref()) {
            hub.do_send(HubUnsubscribe { id: self.id });
        }
        if let Some(session) = self.node.as_ref().and_then(|n| n.session.as_ref()) {
            session.do_send(NodeConnection(false));
        }
        if let Some(relay) = &self.video_relay {
            relay.do_send(NodeDetach { conn: self.id });
        }
        for w in self.watching.values() {
            w.relay.do_send(Unwatch { conn: self.id });
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match msg {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Ping(p)) => ctx.pong(&p),
            Ok(ws::Message::Pong(_)) => {}
            Ok(ws::Message::Binary(b)) => self.on_binary(b, ctx),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(ws::Message::Continuation(item)) => self.on_fragment(item, ctx),
            Ok(ws::Message::Nop) => {}
            Err(ws::ProtocolError::Overflow) => {
                tracing::info!(conn = self.id, "frame over the size limit; closing");
                self.close(ctx, CloseCode::Size, "frame too big")
            }
            Err(ws::ProtocolError::Io(e)) if is_invalid_utf8(&e) => {
                tracing::info!(conn = self.id, "text frame is not UTF-8; closing");
                self.close(ctx, CloseCode::Invalid, "text is not UTF-8")
            }
            Err(e) => {
                tracing::info!(conn = self.id, error = %e, "WebSocket protocol error; closing");
                self.close(ctx, CloseCode::Protocol, "protocol error")
            }
        }
    }
}

impl Handler<Stored> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: Stored, ctx: &mut Self::Context) {
        if let Some(seq) = msg.seq {
            let ack = Ack { driver_id: msg.driver_id, stream_id: msg.stream_id, seq };
            self.send(ctx, Envelope::new(Wire::Ack(ack)));
        }
    }
}

impl Handler<Push> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: Push, ctx: &mut Self::Context) {
        match msg {
            Push::Event(env) => self.send(ctx, (*env).clone()),
            // The `voice_say` first, then its clip, so the node knows what the frame is.
            Push::WithMedia(env, media) => {
                self.send(ctx, (*env).clone());
                ctx.binary(media);
            }
            Push::DriverJoined(driver, rx) => {
                let mut arm = vec![];
                for (key, sub) in self.subs.iter_mut() {
                    let wanted = key.1.as_ref().is_none_or(|d| *d == driver);
                    // A feed whose session ended for good is replaced by the new one.
                    let stale = sub.feeds.get(&driver).is_none_or(|f| f.rx.has_changed().is_err());
                    if wanted && stale {
                        sub.feeds.insert(driver.clone(), Feed::new(rx.clone(), sub.period));
                        arm.push(key.clone());
                    }
                }
                for key in arm {
                    self.arm(key, driver.clone(), ctx);
                }
            }
        }
    }
}
