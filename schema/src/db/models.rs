//! Row structs of every table, and their conversions to the wire shapes. Times are stored as UTC
//! without a zone (`TIMESTAMP`), the one timestamp type both backends share.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::*;
use crate::wire;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = teams)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub created_at: NaiveDateTime,
}

impl From<Team> for wire::Team {
    fn from(t: Team) -> Self {
        Self { id: t.id, name: t.name, created_at: t.created_at.and_utc() }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = team_members)]
pub struct TeamMember {
    pub team_id: String,
    pub user_id: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = drivers)]
pub struct Driver {
    pub id: String,
    pub team_id: String,
    pub user_id: Option<String>,
    pub name: String,
    pub number: i32,
    pub status: String,
    pub role: String,
    pub avatar_url: Option<String>,
    pub last_active: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

impl Driver {
    /// The wire profile; `telemetry_connected` is live state the caller knows, not stored.
    pub fn to_wire(&self, telemetry_connected: bool) -> wire::DriverProfile {
        wire::DriverProfile {
            id: self.id.clone(),
            name: self.name.clone(),
            team: self.team_id.clone(),
            number: self.number,
            status: self.status.parse().unwrap_or(wire::DriverStatusKind::Inactive),
            role: self.role.parse().unwrap_or(wire::DriverRole::Reserve),
            avatar_url: self.avatar_url.clone().unwrap_or_default(),
            telemetry_connected,
            last_active: self.last_active.map(|t| t.and_utc()),
            user_id: self.user_id.clone(),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = racing_sessions)]
pub struct RacingSession {
    pub id: String,
    pub team_id: String,
    pub driver_id: String,
    pub track: String,
    pub car: String,
    pub started_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
    /// The sim's session type (`Practice`, `Qualify`, `Race`, …) when a node named it.
    pub session_type: Option<String>,
}

impl From<RacingSession> for wire::RacingSession {
    fn from(s: RacingSession) -> Self {
        Self {
            id: s.id,
            team_id: s.team_id,
            driver_id: s.driver_id,
            track: s.track,
            car: s.car,
            started_at: s.started_at.and_utc(),
            ended_at: s.ended_at.map(|t| t.and_utc()),
            session_type: s.session_type,
        }
    }
}

/// A lap without its (large) telemetry blob, for listings.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = laps)]
pub struct LapRow {
    pub id: String,
    pub session_id: String,
    pub driver_id: String,
    pub team_id: String,
    pub lap_number: i32,
    pub lap_time: f64,
    pub valid: bool,
    pub fuel_used: Option<f64>,
    pub sector_times: String,
    pub sample_count: i32,
    pub completed_at: NaiveDateTime,
    pub kind: String,
    pub invalid_reasons: String,
}

impl From<LapRow> for wire::LapSummary {
    fn from(l: LapRow) -> Self {
        Self {
            id: l.id,
            session_id: l.session_id,
            driver_id: l.driver_id,
            lap_number: l.lap_number,
            lap_time: l.lap_time,
            valid: l.valid,
            fuel_used: l.fuel_used,
            sector_times: serde_json::from_str(&l.sector_times).unwrap_or_default(),
            sample_count: l.sample_count,
            completed_at: l.completed_at.and_utc(),
            kind: wire::LapKind::parse(&l.kind),
            invalid_reasons: serde_json::from_str(&l.invalid_reasons).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = laps)]
pub struct NewLap {
    pub id: String,
    pub session_id: String,
    pub driver_id: String,
    pub team_id: String,
    pub lap_number: i32,
    pub lap_time: f64,
    pub valid: bool,
    pub fuel_used: Option<f64>,
    pub sector_times: String,
    pub sample_count: i32,
    /// Deflate-compressed JSON of [`wire::LapTelemetry`].
    pub telemetry: Vec<u8>,
    pub completed_at: NaiveDateTime,
    pub kind: String,
    /// JSON array of [`wire::LapFlaw`].
    pub invalid_reasons: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = telemetry_samples)]
pub struct TelemetrySampleRow {
    pub id: String,
    pub driver_id: String,
    pub session_id: Option<String>,
    pub stream_id: Option<String>,
    pub seq: Option<i64>,
    pub recorded_at: NaiveDateTime,
    pub received_at: NaiveDateTime,
    /// JSON of [`wire::TelemetrySample`].
    pub data: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = coaching_feedback)]
pub struct CoachingFeedback {
    pub id: String,
    pub team_id: String,
    pub driver_id: String,
    pub lap_id: Option<String>,
    pub feedback: String,
    pub confidence: f64,
    /// JSON of [`wire::TelemetryAnalysis`].
    pub analysis: String,
    pub priority: String,
    pub created_at: NaiveDateTime,
}

/// A track's learnt corner map and outline, per team, track and car class.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = track_maps)]
pub struct TrackMapRow {
    pub team_id: String,
    pub track: String,
    pub car_class: String,
    /// JSON of the coach's `CornerMap`.
    pub corner_map: String,
    /// JSON array of `[lapFraction, x, y]`.
    pub outline: String,
    pub length_m: f64,
    pub updated_at: NaiveDateTime,
}

/// A team's corner names for a track.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = track_turns)]
pub struct TrackTurnsRow {
    pub team_id: String,
    pub track: String,
    /// JSON array of `{name, start, end}`.
    pub turns: String,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = team_messages)]
pub struct TeamMessage {
    pub id: String,
    pub team_id: String,
    pub sender_id: String,
    pub sender_name: String,
    pub content: String,
    pub priority: String,
    /// JSON of [`wire::Attachment`].
    pub attachment: Option<String>,
    pub sent_at: NaiveDateTime,
}

impl TeamMessage {
    pub fn to_wire(&self, read: bool) -> wire::TeamMessage {
        wire::TeamMessage {
            id: self.id.clone(),
            team_id: self.team_id.clone(),
            content: self.content.clone(),
            sender_id: self.sender_id.clone(),
            sender_name: self.sender_name.clone(),
            priority: self.priority.parse().unwrap_or(wire::MessagePriority::Normal),
            sent_at: self.sent_at.and_utc(),
            read,
            attachment: self.attachment.as_deref().and_then(|a| serde_json::from_str(a).ok()),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = message_reads)]
pub struct MessageRead {
    pub message_id: String,
    pub user_id: String,
    pub read_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = handoff_requests)]
pub struct HandoffRequest {
    pub id: String,
    pub team_id: String,
    pub requester_id: String,
    pub requester_name: String,
    pub from_driver_id: Option<String>,
    pub target_driver_id: String,
    pub reason: String,
    pub urgency: String,
    pub status: String,
    /// JSON of [`wire::TelemetryFrame`].
    pub telemetry_snapshot: Option<String>,
    pub requested_at: NaiveDateTime,
    pub responded_at: Option<NaiveDateTime>,
    pub responder_id: Option<String>,
    pub completed_at: Option<NaiveDateTime>,
}

impl HandoffRequest {
    pub fn to_wire(&self, target_driver_name: String) -> wire::HandoffRequest {
        wire::HandoffRequest {
            id: self.id.clone(),
            team_id: self.team_id.clone(),
            requester_id: self.requester_id.clone(),
            requester_name: self.requester_name.clone(),
            from_driver_id: self.from_driver_id.clone(),
            target_driver_id: self.target_driver_id.clone(),
            target_driver_name,
            reason: self.reason.clone(),
            urgency: self.urgency.parse().unwrap_or(wire::HandoffUrgency::Normal),
            requested_at: self.requested_at.and_utc(),
            status: self.status.parse().unwrap_or(wire::HandoffStatus::Pending),
            telemetry_snapshot: self.telemetry_snapshot.as_deref().and_then(|s| serde_json::from_str(s).ok()),
            responded_at: self.responded_at.map(|t| t.and_utc()),
            completed_at: self.completed_at.map(|t| t.and_utc()),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshToken {
    pub id: String,
    pub user_id: String,
    pub family_id: String,
    /// SHA-256 of the token, hex; the token itself is never stored.
    pub token_hash: String,
    pub issued_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}
