//! REST bodies and the shared domain shapes: users and roles, teams, driver profiles, sessions,
//! laps, team messages, handoff requests, coaching, errors.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::TelemetryFrame;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }

        impl core::str::FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok($name::$variant),)+
                    _ => Err(UnknownVariant { kind: stringify!($name), value: s.to_owned() }),
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A string that names no variant of an enum (e.g. a role stored by a newer version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
}

impl core::fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "unknown {} {:?}", self.kind, self.value)
    }
}

impl std::error::Error for UnknownVariant {}

string_enum!(
    /// What a user may do: `driver` publishes its own telemetry and reads its team; `team` reads its
    /// team, sends messages, answers handoffs; `engineer` is team plus the admin actor tree; `admin`
    /// is everything, including user management.
    Role { Driver => "driver", Team => "team", Engineer => "engineer", Admin => "admin" }
);
string_enum!(DriverStatusKind { Active => "active", Inactive => "inactive", Standby => "standby" });
string_enum!(DriverRole { Primary => "primary", Secondary => "secondary", Reserve => "reserve" });
string_enum!(MessagePriority { Low => "low", Normal => "normal", High => "high", Urgent => "urgent" });

impl MessagePriority {
    /// Low 0, normal 1, high 2, urgent 3: for ordering queues and findings (the wire names do not
    /// sort).
    pub fn rank(self) -> u8 {
        match self {
            MessagePriority::Low => 0,
            MessagePriority::Normal => 1,
            MessagePriority::High => 2,
            MessagePriority::Urgent => 3,
        }
    }
}
string_enum!(HandoffUrgency { Normal => "normal", Urgent => "urgent" });
string_enum!(HandoffStatus {
    Pending => "pending",
    Accepted => "accepted",
    Rejected => "rejected",
    Completed => "completed",
});
string_enum!(AttachmentKind { Document => "document", Image => "image", Telemetry => "telemetry" });

/// Machine-readable error codes, shared by REST (`{code, message}`) and the socket (`error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    InvalidJson,
    InvalidField,
    UnsupportedMediaType,
    Unauthorized,
    TokenExpired,
    TokenInvalid,
    InvalidCredentials,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    RateLimited,
    UnknownMessageType,
    NotAuthenticated,
    Unavailable,
    Internal,
}

/// The body of every error answer: `{code, message}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// The request id the error answers, on the socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

// ---------------------------------------------------------------- auth

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    pub id: String,
    pub username: String,
    pub role: Role,
    #[serde(default)]
    pub teams: Vec<String>,
    /// The driver profile this user drives as, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_id: Option<String>,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    /// Short-lived JWT access token (`Authorization: Bearer …`).
    pub token: String,
    /// Single-use refresh token; each use returns a new one.
    pub refresh_token: String,
    /// Seconds until `token` expires.
    pub expires_in: u32,
    pub user: UserInfo,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub teams: Vec<String>,
}

// Debug by hand for the four above: passwords and tokens print as `***`, so no log line or panic
// message can carry one.
const HIDDEN: &str = "***";

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest").field("username", &self.username).field("password", &HIDDEN).finish()
    }
}

impl std::fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginResponse")
            .field("token", &HIDDEN)
            .field("refresh_token", &HIDDEN)
            .field("expires_in", &self.expires_in)
            .field("user", &self.user)
            .finish()
    }
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshRequest").field("refresh_token", &HIDDEN).finish()
    }
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("password", &HIDDEN)
            .field("role", &self.role)
            .field("teams", &self.teams)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Success {
    pub success: bool,
}

// ---------------------------------------------------------------- teams and drivers

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewTeam {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TeamMember {
    pub user_id: String,
}

/// The seed `DriverProfile`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DriverProfile {
    pub id: String,
    pub name: String,
    /// Team id.
    pub team: String,
    pub number: i32,
    pub status: DriverStatusKind,
    pub role: DriverRole,
    pub avatar_url: String,
    pub telemetry_connected: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active: Option<DateTime<Utc>>,
    /// The user account that drives as this profile, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NewDriver {
    pub name: String,
    #[serde(deserialize_with = "super::lenient::int")]
    pub number: i32,
    #[serde(default = "default_driver_role")]
    pub role: DriverRole,
    #[serde(default)]
    pub avatar_url: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
}

fn default_driver_role() -> DriverRole {
    DriverRole::Primary
}

/// `PATCH /api/drivers/{id}`: any subset of the editable fields.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DriverUpdate {
    #[serde(default)]
    pub status: Option<DriverStatusKind>,
    #[serde(default)]
    pub role: Option<DriverRole>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "super::lenient::opt_int")]
    pub number: Option<i32>,
    #[serde(default)]
    pub avatar_url: Option<String>,
}

/// Pushed when a driver's status or connection changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriverStatus {
    pub driver_id: String,
    pub status: DriverStatusKind,
    pub telemetry_connected: bool,
}

// ---------------------------------------------------------------- sessions and laps

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RacingSession {
    pub id: String,
    pub team_id: String,
    pub driver_id: String,
    pub track: String,
    pub car: String,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// The sim's session type (`Practice`, `Qualify`, `Race`, …), when the driver's node named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NewSession {
    pub driver_id: String,
    pub track: String,
    pub car: String,
}

/// What kind of lap it was, from where it started and ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum LapKind {
    /// Line to line on the track.
    #[default]
    Flying,
    /// Started from the pit lane (the car left the pits on this lap).
    OutLap,
    /// Went onto pit road during the lap (the car came in).
    InLap,
}

impl LapKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LapKind::Flying => "flying",
            LapKind::OutLap => "outLap",
            LapKind::InLap => "inLap",
        }
    }
    /// The stored name; an unknown one reads as a flying lap.
    pub fn parse(s: &str) -> Self {
        match s {
            "outLap" => LapKind::OutLap,
            "inLap" => LapKind::InLap,
            _ => LapKind::Flying,
        }
    }
}

/// Why a lap does not count, as found in its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum LapFlaw {
    /// Out-lap or in-lap, or time spent on pit road.
    PitRoad,
    /// The car left the track surface (`PlayerTrackSurface` off track).
    OffTrack,
    /// The driver's incident count went up during the lap.
    Incident,
    /// Frames are missing (more than half a second between two of them).
    DataGap,
}

impl LapFlaw {
    /// The wording shown to a team.
    pub fn label(self) -> &'static str {
        match self {
            LapFlaw::PitRoad => "pit road",
            LapFlaw::OffTrack => "off track",
            LapFlaw::Incident => "incident",
            LapFlaw::DataGap => "data gap",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LapSummary {
    pub id: String,
    pub session_id: String,
    pub driver_id: String,
    pub lap_number: i32,
    /// Seconds.
    pub lap_time: f64,
    /// False for laps with an off-track, an incident, a pit visit, or a gap in the data
    /// (`invalidReasons` says which).
    pub valid: bool,
    /// Flying lap, out-lap or in-lap.
    #[serde(default)]
    pub kind: LapKind,
    /// Why the lap is invalid; empty for a valid lap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid_reasons: Vec<LapFlaw>,
    /// Litres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_used: Option<f64>,
    /// Seconds per sector.
    pub sector_times: Vec<f64>,
    pub sample_count: i32,
    pub completed_at: DateTime<Utc>,
}

/// One lap with its channels, column-wise: `channels["speed"][i]` is the speed of sample `i`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LapChannels {
    pub lap: LapSummary,
    pub channels: BTreeMap<String, Vec<serde_json::Value>>,
}

/// What a lap is stored as (compressed): every frame, whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LapTelemetry {
    pub frames: Vec<TelemetryFrame>,
}

/// A driver's live state, from its session actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DriverLive {
    pub driver_id: String,
    pub laps_completed: u32,
    /// Seconds, best valid lap.
    pub best_lap: Option<f64>,
    pub samples: u64,
    /// Driver nodes connected now.
    pub nodes: u32,
    pub latest: Option<TelemetryFrame>,
}

// ---------------------------------------------------------------- team messages

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attachment {
    #[serde(rename = "type")]
    pub kind: AttachmentKind,
    pub url: String,
    pub name: String,
}

/// The seed `TeamMessage`; `read` is the reading user's own read state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TeamMessage {
    pub id: String,
    pub team_id: String,
    pub content: String,
    pub sender_id: String,
    pub sender_name: String,
    pub priority: MessagePriority,
    pub sent_at: DateTime<Utc>,
    pub read: bool,
    pub attachment: Option<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NewTeamMessage {
    pub content: String,
    #[serde(default = "default_priority")]
    pub priority: MessagePriority,
    #[serde(default)]
    pub attachment: Option<Attachment>,
}

fn default_priority() -> MessagePriority {
    MessagePriority::Normal
}

// ---------------------------------------------------------------- handoffs

/// The seed `HandoffRequest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HandoffRequest {
    pub id: String,
    pub team_id: String,
    pub requester_id: String,
    pub requester_name: String,
    /// The driver handing the car over, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_driver_id: Option<String>,
    pub target_driver_id: String,
    pub target_driver_name: String,
    pub reason: String,
    pub urgency: HandoffUrgency,
    pub requested_at: DateTime<Utc>,
    pub status: HandoffStatus,
    /// The car's last sample when the request was made.
    pub telemetry_snapshot: Option<TelemetryFrame>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responded_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NewHandoff {
    pub target_driver_id: String,
    #[serde(default)]
    pub from_driver_id: Option<String>,
    pub reason: String,
    #[serde(default = "default_urgency")]
    pub urgency: HandoffUrgency,
}

fn default_urgency() -> HandoffUrgency {
    HandoffUrgency::Normal
}

// ---------------------------------------------------------------- validation

string_enum!(ValidationStatus { Success => "success", Warning => "warning", Error => "error" });

/// The seed `ValidationResult`: one check of `pitbox-driver doctor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ValidationResult {
    pub component_name: String,
    pub status: ValidationStatus,
    pub message: String,
    #[serde(deserialize_with = "super::lenient::timestamp")]
    pub timestamp: DateTime<Utc>,
    pub details: Option<serde_json::Value>,
}

// ---------------------------------------------------------------- coaching

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TelemetryAnalysis {
    pub strengths: Vec<String>,
    pub weaknesses: Vec<String>,
    pub improvement_areas: Vec<String>,
}

/// The seed `ai_coaching` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AiCoaching {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_id: Option<String>,
    pub feedback: String,
    pub confidence: f32,
    pub telemetry_analysis: TelemetryAnalysis,
    #[serde(deserialize_with = "super::lenient::timestamp")]
    pub timestamp: DateTime<Utc>,
    pub priority: MessagePriority,
    /// The lap it is about (beyond the seed: the coach's pushes carry it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lap_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lap_number: Option<i32>,
    /// The one short tip spoken to the driver after this lap, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip: Option<String>,
    /// Every statement with the corner and numbers behind it, most important first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<CoachingItem>,
    /// The car's fuel picture after this lap (the team's strategy panel follows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Box<super::CarStrategy>>,
}

/// One statement of the coach with what it rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CoachingItem {
    pub text: String,
    pub priority: MessagePriority,
    /// What it is about, without numbers (`T3/brakedEarly`, `car/fuelLow`).
    pub topic: String,
    /// The corner's name (`T3` or the team's), when it is about a corner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corner: Option<String>,
    /// Seconds gained against the reference (negative = lost), when it is about time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_gained_s: Option<f64>,
    /// Laps of the recent ones with the same fault, and how many were looked at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<(u32, u32)>,
}
