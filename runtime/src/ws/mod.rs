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
//!
//! The code: this module is the connection (its actor, frames, pings, the close, fragment
//! assembly) and the dispatch of each message; [`handshake`] authenticates, [`ingest`] takes a
//! node's telemetry and voice commands, [`feeds`] schedules a dashboard's samples, [`team`] runs
//! team actions, [`video`] carries media frames. In cluster mode (`crate::cluster`) a node whose
//! team is owned by another runtime node has its telemetry forwarded there ([`ingest`]), and a
//! dashboard here follows the team through the cluster's mirror into the local hub ([`feeds`]).

mod feeds;
mod handshake;
mod ingest;
pub(crate) use handshake::sim_place;
mod team;
mod video;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::Item;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws::{self, CloseCode, CloseReason};
use pitbox_actors::driver_session::NodeConnection;
use pitbox_actors::mailbox::Mailbox;
use pitbox_actors::team_hub::{Push, TeamHub, Unsubscribe as HubUnsubscribe};
use pitbox_actors::video_relay::{NodeDetach, Unwatch, VideoRelay};
use pitbox_actors::ActorSystem;
use pitbox_schema::wire::{
    decode_client, ConnectionEstablished, Envelope, ErrorBody, ErrorCode, Inbound, Message as Wire, Posted,
    PROTOCOL_VERSION,
};

use crate::auth::{AuthUser, Keys};
use crate::config::Config;
use crate::db::Db;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;

use feeds::Feeds;
use ingest::{Batch, NodeLink};
use video::Watching;

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
    let cluster = req.app_data::<web::Data<crate::cluster::Cluster>>().map(|c| c.get_ref().clone());
    let session = WsSession {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        cluster,
        keys: keys.into_inner(),
        system: system.get_ref().clone(),
        db: db.get_ref().clone(),
        metrics: metrics.into_inner(),
        limits: limits.into_inner(),
        max_message: config.ws_max_frame_bytes,
        partial: None,
        server_id: config.server_id.clone(),
        auth_timeout: config.ws_auth_timeout,
        user: None,
        last_heard: Instant::now(),
        seq: 0,
        errors: 0,
        node: None,
        feeds: Feeds::new(config.team_rate_hz, config.driver_rate_hz),
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
    /// Cluster mode: where teams are owned, and the way to the other nodes.
    cluster: Option<crate::cluster::Cluster>,
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
    user: Option<AuthUser>,
    last_heard: Instant,
    seq: u64,
    errors: u32,
    node: Option<NodeLink>,
    /// A dashboard's subscriptions and their feeds.
    feeds: Feeds,
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

    /// One text message: decoded, checked against the connection's state, and handed to the
    /// module that deals with its kind.
    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let inbound = match decode_client(text) {
            Ok(inbound) => inbound,
            Err(e) if self.user.is_none() => {
                if e.kind.as_deref() == Some("authenticate") {
                    // Unreadable credentials still get their answer before the close.
                    return self.refuse(ctx, e.id, None, e.code, e.message, "authentication failed");
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
            Wire::Unsubscribe(s) => self.unsubscribe(s),
            Wire::WatchVideo(w) => {
                if let Err(e) = self.check_rate() {
                    return self.api_error(ctx, e, id);
                }
                self.watch_video(w, id, ctx)
            }
            Wire::UnwatchVideo(w) => self.unwatch_video(w),
            Wire::VoiceCommand(c) => self.voice_command(c, id, ctx),
            Wire::SimSession(s) => self.sim_session(s, id, ctx),
            Wire::AnswerHandoff(a) => self.answer_handoff(a, id, ctx),
            _ => self.error(
                ctx,
                ErrorCode::BadRequest,
                "this message type is sent by the server only".into(),
                id,
            ),
        }
    }

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

/// What a team hub delivers: team events, a node's message with its clip, a driver to feed from.
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
            Push::DriverJoined(driver, rx) => self.driver_joined(driver, rx, ctx),
        }
    }
}
