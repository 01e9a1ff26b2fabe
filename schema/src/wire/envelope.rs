//! The WebSocket envelope: `{"type": ..., "data": ...}` as in the original protocol, plus the
//! protocol version, actor addressing (`to`/`from` paths), sequence numbers and request ids.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    ActorTree, AiCoaching, DriverStatus, ErrorBody, HandoffRequest, HandoffStatus, LapSummary, NewHandoff,
    NewTeamMessage, Role, TeamMessage, TelemetryBatch, TelemetryUpdate, VideoControl, VideoWatching,
    VoiceCommand, VoiceExchange, VoiceSay, WatchVideo,
};

/// What kind of program is on the other end of a socket.
///
/// Read leniently, because the original clients sent free text: `driver` (the original driver app)
/// and the spellings of `driver_node` are a driver node; any other string is a dashboard, which
/// grants nothing by itself (what a connection may do follows from its token's role).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ClientType {
    DriverNode,
    #[default]
    Dashboard,
    Engineer,
}

impl ClientType {
    /// The client type a name stands for (see the type's documentation).
    pub fn from_name(name: &str) -> Self {
        match name.trim().to_ascii_lowercase().replace(['-', ' '], "_").as_str() {
            "driver_node" | "drivernode" | "driver" | "node" | "driver_app" => ClientType::DriverNode,
            "engineer" => ClientType::Engineer,
            _ => ClientType::Dashboard,
        }
    }
}

impl<'de> Deserialize<'de> for ClientType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(ClientType::from_name(&name))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionEstablished {
    pub server_id: String,
    #[serde(deserialize_with = "super::lenient::timestamp")]
    pub timestamp: DateTime<Utc>,
    /// Software version of the server.
    pub version: String,
    pub protocol: u16,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authenticate {
    pub token: String,
    /// Absent: a dashboard.
    #[serde(default)]
    pub client_type: ClientType,
    /// The client's software version; the original clients did not always send it.
    #[serde(default)]
    pub version: String,
    /// A driver node's track and car, from the sim's session info: the runtime's racing session
    /// takes them (instead of "unknown").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub car: Option<String>,
    /// The sim's session type (`Practice`, `Qualify`, `Race`, …): with track and car, it names the
    /// racing session; a change of any of them closes the old one and opens a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_type: Option<String>,
}

/// Driver node → runtime: the sim session the frames that follow belong to, or that it ended.
///
/// Sent in the order of the node's frames (the node keeps it in its spool with the sequence number
/// of the first frame it applies to), whenever the sim changes track, car or session type
/// (`Practice` → `Qualify` → `Race`) while the node stays connected, and with `ended` when the sim
/// session ends (the sim closed, or a recording's last frame). The runtime's racing session
/// follows it: a new place ends the open session and opens one there; `ended` ends the open one.
/// Telling the same place again changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SimSession {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub car: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_type: Option<String>,
    /// The sim session ended: no place follows until the next `sim_session`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ended: bool,
    /// The sequence number of the node's first frame it applies to: a runtime that refused an
    /// earlier frame leaves it for the node's resend, which names it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

impl SimSession {
    /// The sim session ended.
    pub fn ended() -> Self {
        Self { ended: true, ..Self::default() }
    }

    /// Whether it names anything (a sim that has not told its track yet names nothing).
    pub fn names_anything(&self) -> bool {
        self.track.is_some() || self.car.is_some() || self.session_type.is_some()
    }
}

/// The token stays out of logs: a logged envelope must not hand out a session.
impl core::fmt::Debug for Authenticate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Authenticate")
            .field("token", &"***")
            .field("client_type", &self.client_type)
            .field("version", &self.version)
            .field("track", &self.track)
            .field("car", &self.car)
            .field("session_type", &self.session_type)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationResult {
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// A dashboard asks for its team's live view, or one driver's full-rate stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscribe {
    pub team_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_id: Option<String>,
    /// Samples per second wanted; the server clamps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_hz: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscribed {
    pub team_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_id: Option<String>,
    pub rate_hz: u16,
    pub drivers: Vec<String>,
}

/// The runtime has durably stored every frame of `stream_id` up to and including `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    pub driver_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    pub seq: u64,
}

/// A client sends a team message over the socket (the server answers with the stored
/// `team_message`, pushed to the whole team).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendTeamMessage {
    pub team_id: String,
    #[serde(flatten)]
    pub message: NewTeamMessage,
}

/// A client requests a driver handoff over the socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestHandoff {
    pub team_id: String,
    #[serde(flatten)]
    pub handoff: NewHandoff,
}

/// A client accepts, rejects or completes a handoff over the socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerHandoff {
    pub id: String,
    pub status: HandoffStatus,
}

/// Every message type, tagged as `{"type": ..., "data": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Message {
    ConnectionEstablished(ConnectionEstablished),
    Authenticate(Authenticate),
    AuthenticationResult(AuthenticationResult),
    TelemetryUpdate(Box<TelemetryUpdate>),
    TelemetryBatch(TelemetryBatch),
    Ack(Ack),
    Subscribe(Subscribe),
    Unsubscribe(Subscribe),
    /// Server answer to `subscribe`: the drivers the subscription covers now.
    Subscribed(Subscribed),
    TeamMessage(TeamMessage),
    SendTeamMessage(SendTeamMessage),
    HandoffRequest(Box<HandoffRequest>),
    RequestHandoff(RequestHandoff),
    AnswerHandoff(AnswerHandoff),
    AiCoaching(AiCoaching),
    DriverStatus(DriverStatus),
    LapCompleted(LapSummary),
    /// Engineers' live actor tree (`/admin/actors/stream`).
    ActorTree(Box<ActorTree>),
    /// Runtime → driver node: pause or resume the onboard video, or send a keyframe next.
    VideoControl(VideoControl),
    /// Dashboard → runtime: send me this driver's onboard video (binary media frames).
    WatchVideo(WatchVideo),
    /// Dashboard → runtime: stop sending this driver's onboard video.
    UnwatchVideo(WatchVideo),
    /// Runtime → dashboard: the answer to `watch_video`, with the stream number of its frames.
    VideoWatching(VideoWatching),
    /// Driver node → runtime: a recognised spoken command.
    VoiceCommand(VoiceCommand),
    /// Runtime → driver node: something to speak (its clip follows as a binary media frame).
    VoiceSay(VoiceSay),
    /// Runtime → dashboards: a driver's spoken exchange (heard, confidence, answer).
    VoiceExchange(VoiceExchange),
    /// Driver node → runtime: the sim session its next frames belong to, or its end.
    SimSession(SimSession),
    Error(ErrorBody),
}

// Decoded by hand below, without serde's buffering `flatten` (see `super::flat`).
/// One WebSocket text frame: the tagged message plus addressing and ordering.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    #[serde(flatten)]
    pub message: Message,
    /// Protocol version of the sender (absent = [`super::PROTOCOL_VERSION`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<u16>,
    /// Client-chosen request id, echoed in the answer or error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Actor path this message is for, e.g. `/teams/{team}/drivers/{driver}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Actor path a server push comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Per-connection sequence number of server pushes, so a client sees gaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

impl Message {
    /// The `type` names of every message, as they appear on the wire.
    pub const TYPES: &'static [&'static str] = &[
        "connection_established",
        "authenticate",
        "authentication_result",
        "telemetry_update",
        "telemetry_batch",
        "ack",
        "subscribe",
        "unsubscribe",
        "subscribed",
        "team_message",
        "send_team_message",
        "handoff_request",
        "request_handoff",
        "answer_handoff",
        "ai_coaching",
        "driver_status",
        "lap_completed",
        "actor_tree",
        "video_control",
        "watch_video",
        "unwatch_video",
        "video_watching",
        "voice_command",
        "voice_say",
        "voice_exchange",
        "sim_session",
        "error",
    ];
}

/// An envelope's own fields; `type` and `data` are its [`Message`] (adjacently tagged: with
/// `type` first, as every PitBox sender writes it, `data` is decoded straight into its variant).
#[derive(Default)]
struct EnvelopeOwn {
    v: Option<u16>,
    id: Option<String>,
    to: Option<String>,
    from: Option<String>,
    seq: Option<u64>,
}

impl<'de> super::flat::Own<'de> for EnvelopeOwn {
    const KEYS: &'static [&'static str] = &["v", "id", "to", "from", "seq"];
    fn take<A: serde::de::MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => self.v = map.next_value()?,
            1 => self.id = map.next_value()?,
            2 => self.to = map.next_value()?,
            3 => self.from = map.next_value()?,
            _ => self.seq = map.next_value()?,
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (own, message): (EnvelopeOwn, Message) =
            super::flat::deserialize(d, "a message (an object with `type` and `data`)")?;
        let EnvelopeOwn { v, id, to, from, seq } = own;
        Ok(Self { message, v, id, to, from, seq })
    }
}

impl Envelope {
    pub fn new(message: Message) -> Self {
        Self { message, v: None, id: None, to: None, from: None, seq: None }
    }
}

impl From<Message> for Envelope {
    fn from(message: Message) -> Self {
        Self::new(message)
    }
}
