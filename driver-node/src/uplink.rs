//! The uplink: sends the spool to the runtime over the PitBox WebSocket protocol (awc) and
//! forgets frames once they are acknowledged as stored. Frames go in order, in small batches, with
//! at most a window of them unacknowledged; after a disconnect it resends from the last
//! acknowledgement, so the backlog is delivered in order while recording continues, and the
//! runtime's (stream, seq) check stores each frame once. Reconnects with jittered exponential
//! backoff and refreshes the access token when it nears expiry or is refused for any reason
//! (once per refusal: a refused refresh stops the uplink until `pitbox-driver login` is run
//! again, while recording goes on into the spool). Server pushes
//! (coaching, team messages, handoffs) are logged and counted. Onboard video frames (see
//! [`crate::video`]) go as binary frames after anything telemetry has ready; `video_control` from
//! the runtime pauses and resumes the video thread. Frames the spool could not take (its disk full)
//! are sent live once, in recording order (see [`Window::fill`]). The sim session each frame
//! belongs to (the spool's marks) names the racing session at authentication and, as it changes or
//! ends, goes as `sim_session` between the frames before and after it. Voice (see [`crate::voice`]): recognised
//! commands go up as `voice_command`; `voice_say` and the PCM16 media frame after it (stream
//! [`VOICE_STREAM`]) go to the node's player, and the text to the status. Reads no env vars.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pitbox_schema::wire::media::{Codec, MediaHeader};
use pitbox_schema::wire::{
    telemetry_batch_json, Authenticate, ClientType, Envelope, ErrorCode, Message as Wire, SimSession,
    VoiceCommand, VOICE_STREAM,
};
use rand::Rng;
use tokio::sync::watch;

use crate::credentials::{self, CredentialError, Credentials};
use crate::spool::Spool;
use crate::status::Status;
use crate::tls::NodeTls;
use crate::video::VideoLink;
use crate::voice::VoiceLink;

/// Frames in one `telemetry_batch` at most.
const BATCH: usize = 60;

#[derive(Debug, Clone)]
pub struct UplinkOptions {
    pub home: PathBuf,
    /// Trusted roots for `https://`/`wss://` runtimes.
    pub tls: NodeTls,
    /// Unacknowledged frames allowed in flight.
    pub window: u64,
    /// How often the spool is checked when no append woke the uplink (after a refused batch).
    pub poll: Duration,
    pub max_backoff: Duration,
    /// The session's track and car (from the source), told to the runtime at authentication.
    pub track: Option<String>,
    pub car: Option<String>,
    /// The sim's session type (`Practice`, `Race`, …), told with track and car.
    pub session_type: Option<String>,
}

impl UplinkOptions {
    pub fn new(home: PathBuf, tls: NodeTls) -> Self {
        Self {
            home,
            tls,
            window: 1200,
            poll: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            track: None,
            car: None,
            session_type: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum SessionEnd {
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error("connection: {0}")]
    Connection(String),
    #[error("authentication refused: {0}")]
    AuthRefused(String),
    /// The token was refused and so was its refresh: only a new `pitbox-driver login` helps.
    #[error("the runtime refused this login and its refresh: run `pitbox-driver login` again (recording continues into the spool)")]
    LoginNeeded,
    #[error("spool: {0}")]
    Spool(#[from] crate::spool::SpoolError),
    #[error("stopped")]
    Stopped,
}

/// An awc client for `http(s)://` and `ws(s)://` with the node's trusted roots; Nagle is off so
/// small telemetry frames leave at once.
pub fn client(tls: &NodeTls) -> awc::Client {
    use actix_service::{fn_service, Service};
    use actix_tls::connect::{ConnectInfo, Connector};
    let tcp = Connector::default().service();
    let nodelay = fn_service(move |req: ConnectInfo<awc::http::Uri>| {
        let tcp = tcp.clone();
        async move {
            let conn = tcp.call(req).await?;
            let _ = conn.io_ref().set_nodelay(true);
            Ok(conn)
        }
    });
    awc::Client::builder()
        .connector(awc::Connector::new().connector(nodelay).rustls_0_23(tls.client_config()))
        .timeout(Duration::from_secs(15))
        .finish()
}

/// Runs until `stop` turns true. Never gives up: while the runtime is unreachable, the recorder
/// keeps filling the spool.
pub async fn run(
    options: UplinkOptions,
    spool: Arc<Spool>,
    status: Arc<Status>,
    mut stop: watch::Receiver<bool>,
    mut video: Option<VideoLink>,
    mut voice: Option<VoiceLink>,
) {
    let client = client(&options.tls);
    let mut failures = 0u32;
    let mut auth = AuthState::default();
    loop {
        if *stop.borrow() {
            return;
        }
        let ended =
            session(&client, &options, &spool, &status, &mut stop, &mut auth, &mut video, &mut voice).await;
        if let Some(v) = video.as_mut() {
            // Nobody can watch while the uplink is down; what was encoded is stale.
            v.control.set_paused(true);
            while v.frames.try_recv().is_ok() {}
        }
        match ended {
            Err(SessionEnd::Stopped) => return,
            Ok(()) => failures = 0,
            Err(SessionEnd::LoginNeeded) | Err(SessionEnd::Credentials(CredentialError::Revoked)) => {
                let e = SessionEnd::LoginNeeded;
                status.set_connected(false, Some(e.to_string()));
                tracing::error!("{e}");
                // Nothing the runtime says will change until the driver logs in again: wait for
                // the credentials file to change instead of retrying the refused token.
                let refused = Credentials::load(&options.home).map(|c| c.refresh_token).ok();
                loop {
                    tokio::select! {
                        _ = actix_rt::time::sleep(options.poll.max(Duration::from_millis(200))) => {}
                        _ = stop.changed() => return,
                    }
                    let now = Credentials::load(&options.home).map(|c| c.refresh_token).ok();
                    if now.is_some() && now != refused {
                        tracing::info!("new login found; reconnecting");
                        auth = AuthState::default();
                        break;
                    }
                }
                failures = 0;
                continue;
            }
            Err(e) => {
                status.set_connected(false, Some(e.to_string()));
                tracing::warn!(error = %e, "uplink down; will retry");
                failures = failures.saturating_add(1);
            }
        }
        // Exponential backoff with full jitter, capped.
        let cap = options.max_backoff.as_millis() as u64;
        let base = (100u64 << failures.min(10)).min(cap);
        let wait = Duration::from_millis(rand::rng().random_range(base / 2..=base.max(1)));
        tokio::select! {
            _ = actix_rt::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn fresh_credentials(
    client: &awc::Client,
    options: &UplinkOptions,
) -> Result<Credentials, CredentialError> {
    let creds = Credentials::load(&options.home)?;
    if creds.expiring(Duration::from_secs(60)) {
        return credentials::refresh(client, &options.home, &creds).await;
    }
    Ok(creds)
}

/// What the uplink remembers about refusals between connections.
#[derive(Debug, Default)]
struct AuthState {
    /// The last connection's token was refused and refreshed: a refusal of the fresh token is
    /// final (no refresh loop).
    refreshed_after_refusal: bool,
}

#[allow(clippy::too_many_arguments)]
async fn session(
    client: &awc::Client,
    options: &UplinkOptions,
    spool: &Spool,
    status: &Status,
    stop: &mut watch::Receiver<bool>,
    auth_state: &mut AuthState,
    video: &mut Option<VideoLink>,
    voice: &mut Option<VoiceLink>,
) -> Result<(), SessionEnd> {
    let creds = fresh_credentials(client, options).await?;
    let driver_id = creds.driver_id.clone().ok_or(CredentialError::NotADriver)?;
    let (_, conn) =
        client.ws(creds.ws_url()).max_frame_size(16 * 1024 * 1024).connect().await.map_err(|e| {
            let host = crate::tls::host_port(&creds.server).map(|(h, _)| h).unwrap_or_default();
            SessionEnd::Connection(crate::tls::explain_ws(&e, &host).unwrap_or_else(|| e.to_string()))
        })?;
    let (mut tx, mut rx) = conn.split();

    // The sim session of the oldest frame still to send names the racing session at once; a spool
    // with no mark yet (nothing recorded, or written by an older node) goes by the source's.
    let oldest = match spool.read_raw_after(0, 1)?.first() {
        Some((seq, _)) => *seq,
        None => spool.next_seq()?,
    };
    let (told, place) = match spool.session_at(oldest)? {
        // An end is told as a mark after the handshake: one the runtime missed still arrives.
        Some((_, mark)) if mark.ended => (None, SimSession::default()),
        Some((at, mark)) => (Some(at), mark),
        None => (
            None,
            SimSession {
                track: options.track.clone(),
                car: options.car.clone(),
                session_type: options.session_type.clone(),
                ..SimSession::default()
            },
        ),
    };
    // Handshake: connection_established, authenticate, authentication_result.
    let mut authenticated = false;
    let auth = |token: &str| {
        let msg = Envelope::new(Wire::Authenticate(Authenticate {
            token: token.to_owned(),
            client_type: ClientType::DriverNode,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            track: place.track.clone(),
            car: place.car.clone(),
            session_type: place.session_type.clone(),
        }));
        serde_json::to_string(&msg).unwrap_or_default()
    };
    tx.send(awc::ws::Message::Text(auth(&creds.token).into()))
        .await
        .map_err(|e| SessionEnd::Connection(e.to_string()))?;
    while !authenticated {
        let Incoming::Message(env) = next_incoming(&mut rx).await? else { continue };
        if let Wire::AuthenticationResult(r) = env.message {
            if r.success {
                authenticated = true;
                auth_state.refreshed_after_refusal = false;
                continue;
            }
            let why = r.error.as_ref().map(|e| e.message.clone()).unwrap_or_else(|| "refused".into());
            let token_refused = r.error.as_ref().is_none_or(|e| {
                matches!(
                    e.code,
                    ErrorCode::TokenExpired
                        | ErrorCode::TokenInvalid
                        | ErrorCode::Unauthorized
                        | ErrorCode::NotAuthenticated
                )
            });
            if !token_refused {
                return Err(SessionEnd::AuthRefused(why));
            }
            if auth_state.refreshed_after_refusal {
                // The fresh token was refused too.
                return Err(SessionEnd::LoginNeeded);
            }
            // Any refusal of the token (expired, a runtime restarted with a new signing key, a
            // rotated secret, a logout elsewhere) gets one refresh; the next attempt uses the
            // new token at once. A refused refresh ends in `LoginNeeded`.
            tracing::warn!(reason = %why, "token refused; refreshing");
            match credentials::refresh(client, &options.home, &creds).await {
                Ok(_) => {
                    auth_state.refreshed_after_refusal = true;
                    return Err(SessionEnd::AuthRefused(format!("{why}; token refreshed")));
                }
                Err(CredentialError::Revoked) => return Err(SessionEnd::LoginNeeded),
                Err(e) => return Err(e.into()),
            }
        }
    }
    status.set_connected(true, None);
    if let Some(at) = told {
        // Named at authentication: told as surely as by a `sim_session`.
        status.told_mark(at);
    }
    tracing::info!(server = %creds.server, "uplink connected");

    let stream_id = spool.stream_id().to_owned();
    let mut window =
        Window { driver_id, stream_id: stream_id.clone(), size: options.window, sent: 0, acked: 0, told };
    let mut tick = actix_rt::time::interval(options.poll);
    // The spool forgets acknowledged frames in steps, not after every batch: each delete is a
    // disk sync, and a frame acknowledged but not yet forgotten is only resent and deduplicated.
    let mut forgotten: u64 = 0;
    let mut last_forget = std::time::Instant::now();
    loop {
        // Biased, in this order: stopping, the runtime's messages (acks), telemetry, and video
        // last, so a video frame never goes before telemetry that is ready.
        tokio::select! {
            biased;
            _ = stop.changed() => {
                if *stop.borrow() {
                    if window.acked > forgotten {
                        spool.ack(window.acked)?;
                    }
                    let _ = tx.send(awc::ws::Message::Close(None)).await;
                    return Err(SessionEnd::Stopped);
                }
            }
            _ = async { tokio::select! { _ = tick.tick() => {}, _ = spool.appended() => {} } } => {
                if window.acked > forgotten && last_forget.elapsed() >= Duration::from_secs(1) {
                    spool.ack(window.acked)?;
                    (forgotten, last_forget) = (window.acked, std::time::Instant::now());
                }
                window.fill(&mut tx, spool, status).await?;
            }
            incoming = next_incoming(&mut rx) => {
                let env = match incoming? {
                    Incoming::Message(env) => *env,
                    Incoming::Ping(p) => {
                        tx.send(awc::ws::Message::Pong(p)).await.map_err(|e| SessionEnd::Connection(e.to_string()))?;
                        continue;
                    }
                    Incoming::Binary(b) => {
                        media_in(&b, voice.as_ref());
                        continue;
                    }
                };
                match env.message {
                    Wire::Ack(a) if a.stream_id.as_deref() == Some(stream_id.as_str()) && a.seq > window.acked => {
                        window.acked = a.seq;
                        if window.acked - forgotten >= 600 {
                            spool.ack(window.acked)?;
                            (forgotten, last_forget) = (window.acked, std::time::Instant::now());
                        }
                        status.acked(a.seq);
                        // Room in the window again: keep the backlog flowing without waiting.
                        window.fill(&mut tx, spool, status).await?;
                    }
                    // Frames the runtime will never take: they go when a later acknowledgement
                    // passes them. Say so; resending would not help.
                    Wire::Error(e) if e.code == ErrorCode::InvalidField => {
                        tracing::error!(message = %e.message, "runtime rejected a batch as invalid");
                        status.push(format!("rejected: {}", e.message));
                    }
                    // Anything else (a session restarting, storage busy): resend from the last ack.
                    Wire::Error(e) => {
                        tracing::warn!(code = ?e.code, message = %e.message, "runtime refused frames; resending");
                        window.sent = window.acked;
                        // The resend starts by naming its frames' sim session again (telling
                        // the same one twice changes nothing).
                        window.told = None;
                    }
                    Wire::VideoControl(c) => {
                        if let Some(v) = video.as_ref() {
                            v.control.apply(c.action);
                        }
                    }
                    Wire::AiCoaching(c) => {
                        status.push(format!("coach: {}", c.feedback));
                    }
                    Wire::TeamMessage(m) => status.push(format!("{}: {}", m.sender_name, m.content)),
                    Wire::HandoffRequest(h) => status.push(format!("handoff {}: {}", h.status, h.reason)),
                    Wire::VoiceSay(s) => {
                        status.push(format!("voice: {}", s.text));
                        if let Some(v) = voice.as_ref() {
                            v.player.say(s);
                        }
                    }
                    _ => {}
                }
            }
            (command, recognised) = next_voice_command(voice) => {
                // Recognised while the uplink was down and not worth sending any more: the answer
                // would be stale. The time speech-to-text took does not count (a slow machine
                // took over 10 s in tests, and its fresh commands were all dropped).
                if recognised.elapsed() > COMMAND_STALE {
                    let name = command.command.name();
                    tracing::warn!(command = name, "voice command too old to send; dropped");
                    continue;
                }
                let text = serde_json::to_string(&Envelope::new(Wire::VoiceCommand(command)))
                    .map_err(|e| SessionEnd::Connection(e.to_string()))?;
                tx.send(awc::ws::Message::Text(text.into()))
                    .await
                    .map_err(|e| SessionEnd::Connection(e.to_string()))?;
            }
            frame = next_video(video) => {
                match frame {
                    Some(frame) => {
                        tx.send(awc::ws::Message::Binary(frame.into()))
                            .await
                            .map_err(|e| SessionEnd::Connection(e.to_string()))?;
                    }
                    // The video thread ended (its error is logged by the node): no more video.
                    None => *video = None,
                }
            }
        }
    }
}

/// Voice commands held this long after they were recognised (the uplink was down) are not sent.
const COMMAND_STALE: Duration = Duration::from_secs(10);

/// The next recognised voice command and when it was recognised; never, without voice (or once
/// its thread ended).
async fn next_voice_command(voice: &mut Option<VoiceLink>) -> (VoiceCommand, std::time::Instant) {
    if let Some(c) = voice.as_mut() {
        if let Some(c) = c.commands.recv().await {
            return c;
        }
    }
    std::future::pending().await
}

/// A binary frame from the runtime: a spoken clip for the player, or something this node does not
/// take (logged, never fatal).
fn media_in(frame: &[u8], voice: Option<&VoiceLink>) {
    match MediaHeader::decode(frame) {
        Ok((h, start)) if h.codec == Codec::Pcm16 && h.stream == VOICE_STREAM => match voice {
            Some(v) => v.player.audio(h.sequence, &frame[start..]),
            None => tracing::debug!("a voice clip, but voice is off"),
        },
        Ok((h, _)) => tracing::debug!(codec = ?h.codec, stream = h.stream, "ignoring a media frame"),
        Err(e) => tracing::warn!(error = %e, "ignoring a bad media frame from the runtime"),
    }
}

/// The next encoded video frame; never, without video.
async fn next_video(video: &mut Option<VideoLink>) -> Option<Vec<u8>> {
    match video.as_mut() {
        Some(v) => v.frames.recv().await,
        None => std::future::pending().await,
    }
}

type WsSink =
    futures_util::stream::SplitSink<actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>, awc::ws::Message>;

/// The frames in flight on one connection: sent up to `sent`, acknowledged up to `acked`.
struct Window {
    driver_id: String,
    stream_id: String,
    size: u64,
    sent: u64,
    acked: u64,
    /// Where the sim session mark the runtime was told last on this connection starts.
    told: Option<u64>,
}

impl Window {
    /// Sends spooled frames in order until `size` of them are unacknowledged or none are left;
    /// after a reconnect this starts again from the oldest frame the spool still holds. Frames the
    /// spool could not take (its disk full) go live, in the order they were recorded: after the
    /// spooled frames before them, once those are acknowledged (so a live batch, which claims no
    /// place in the stream's order, never stands between a spooled batch and one the runtime
    /// still has to take), and before any spooled after them. They are sent once and never
    /// acknowledged. A sim session mark goes between the frames before and after it, as a
    /// `sim_session`; a batch never spans two sessions.
    async fn fill(&mut self, tx: &mut WsSink, spool: &Spool, status: &Status) -> Result<(), SessionEnd> {
        loop {
            let in_flight = self.sent.saturating_sub(self.acked);
            let room = self.size.saturating_sub(in_flight).min(BATCH as u64) as usize;
            let upto = spool.live_after()?.unwrap_or(u64::MAX);
            // With no room, one row only says whether spooled frames must go first.
            let mut rows = spool.read_raw_between(self.sent.max(self.acked), upto, room.max(1))?;
            let next = match rows.first() {
                Some((seq, _)) => *seq,
                None => spool.next_seq()?,
            };
            if let Some((at, mark)) = spool.session_at(next)? {
                if self.told != Some(at) {
                    let mark = SimSession { seq: Some(at), ..mark };
                    let text = serde_json::to_string(&Envelope::new(Wire::SimSession(mark)))
                        .map_err(|e| SessionEnd::Connection(e.to_string()))?;
                    tx.send(awc::ws::Message::Text(text.into()))
                        .await
                        .map_err(|e| SessionEnd::Connection(e.to_string()))?;
                    self.told = Some(at);
                    status.told_mark(at);
                    continue;
                }
            }
            if let Some(cut) = spool.next_mark_after(next)? {
                rows.retain(|(seq, _)| *seq < cut);
            }
            if let (Some((first, _)), Some((last, _))) = (rows.first(), rows.last()) {
                if room == 0 {
                    break;
                }
                let (first, last) = (*first, *last);
                if self.acked == 0 && self.sent == 0 {
                    // First batch of this connection: everything before it was acknowledged.
                    self.acked = first.saturating_sub(1);
                }
                // The spooled JSON goes as it is: no decode and encode again per send.
                let frames: Vec<_> = rows.into_iter().map(|(_, json)| json).collect();
                self.send(tx, &frames).await?;
                self.sent = last;
                continue;
            }
            if in_flight > 0 {
                break;
            }
            let Some(live) = spool.take_live(BATCH)? else { break };
            self.send(tx, &live.frames).await?;
        }
        Ok(())
    }

    async fn send(
        &self,
        tx: &mut WsSink,
        frames: &[Box<serde_json::value::RawValue>],
    ) -> Result<(), SessionEnd> {
        let text = telemetry_batch_json(&self.driver_id, Some(&self.stream_id), frames)
            .map_err(|e| SessionEnd::Connection(e.to_string()))?;
        tx.send(awc::ws::Message::Text(text.into())).await.map_err(|e| SessionEnd::Connection(e.to_string()))
    }
}

type WsStream = futures_util::stream::SplitStream<actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>>;

enum Incoming {
    Message(Box<Envelope>),
    /// The runtime's heartbeat: answer with a pong or be dropped.
    Ping(bytes::Bytes),
    /// A media frame (a spoken clip).
    Binary(bytes::Bytes),
}

/// The next protocol message or ping; a close ends the session.
async fn next_incoming(rx: &mut WsStream) -> Result<Incoming, SessionEnd> {
    loop {
        match rx.next().await {
            Some(Ok(awc::ws::Frame::Ping(p))) => return Ok(Incoming::Ping(p)),
            Some(Ok(awc::ws::Frame::Binary(b))) => return Ok(Incoming::Binary(b)),
            Some(Ok(awc::ws::Frame::Text(t))) => match serde_json::from_slice::<Envelope>(&t) {
                Ok(env) => return Ok(Incoming::Message(Box::new(env))),
                Err(e) => tracing::debug!(error = %e, "ignoring a message this node does not know"),
            },
            Some(Ok(awc::ws::Frame::Close(reason))) => {
                return Err(SessionEnd::Connection(format!("closed by the runtime: {reason:?}")))
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(SessionEnd::Connection(e.to_string())),
            None => return Err(SessionEnd::Connection("connection lost".into())),
        }
    }
}
