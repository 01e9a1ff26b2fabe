//! Voice: the messages between a driver node's speech recogniser, the driver's `VoiceChannel`
//! actor and the team's pit wall. Reads no env vars.
//!
//! - node → runtime: `voice_command` (a recognised spoken command, with what was heard and how
//!   sure the recogniser is);
//! - runtime → node: `voice_say` (something to speak: an answer, a coaching tip, an alert), then
//!   the clip as one binary media frame ([`crate::wire::media`], codec
//!   [`crate::wire::media::Codec::Pcm16`], `stream` [`VOICE_STREAM`], `sequence` = the
//!   `voice_say`'s `audio.sequence`); a node that gets the text but no audio speaks nothing and
//!   shows the text;
//! - runtime → the team's dashboards: `voice_exchange` (what was heard, the confidence, the
//!   answer), and a `box this lap` call as a `team_message` marked urgent as well.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::MessagePriority;

/// The stream number of spoken audio in media frames (video uses 0 from the node and per-driver
/// numbers to dashboards; audio to a node is always this one).
pub const VOICE_STREAM: u32 = 1;

/// The spoken commands. `snake_case` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VoiceIntent {
    /// Litres in the tank.
    FuelLeft,
    /// Litres per lap (rolling, clean laps).
    FuelPerLap,
    /// Laps the fuel in the tank lasts.
    LapsOfFuel,
    /// Litres needed to the finish (beyond what is in the tank).
    FuelToEnd,
    GapAhead,
    GapBehind,
    Position,
    LastLap,
    BestLap,
    /// Last lap against the best.
    Delta,
    TyreTemps,
    TyreWear,
    /// Laps or time left in the session.
    Remaining,
    /// The driver will pit at the end of this lap: the team is told, the driver hears a confirmation.
    BoxThisLap,
    /// Say the last thing again.
    RepeatThat,
    /// The coach stops speaking tips (urgent items still come).
    Quiet,
    /// The coach speaks tips again.
    Resume,
    /// A team message with the rest of the transcript (`VoiceCommand::text`).
    TellTeam,
}

impl VoiceIntent {
    pub const ALL: [VoiceIntent; 18] = [
        VoiceIntent::FuelLeft,
        VoiceIntent::FuelPerLap,
        VoiceIntent::LapsOfFuel,
        VoiceIntent::FuelToEnd,
        VoiceIntent::GapAhead,
        VoiceIntent::GapBehind,
        VoiceIntent::Position,
        VoiceIntent::LastLap,
        VoiceIntent::BestLap,
        VoiceIntent::Delta,
        VoiceIntent::TyreTemps,
        VoiceIntent::TyreWear,
        VoiceIntent::Remaining,
        VoiceIntent::BoxThisLap,
        VoiceIntent::RepeatThat,
        VoiceIntent::Quiet,
        VoiceIntent::Resume,
        VoiceIntent::TellTeam,
    ];

    /// The wire name, e.g. `fuel_left`.
    pub fn name(self) -> &'static str {
        match self {
            VoiceIntent::FuelLeft => "fuel_left",
            VoiceIntent::FuelPerLap => "fuel_per_lap",
            VoiceIntent::LapsOfFuel => "laps_of_fuel",
            VoiceIntent::FuelToEnd => "fuel_to_end",
            VoiceIntent::GapAhead => "gap_ahead",
            VoiceIntent::GapBehind => "gap_behind",
            VoiceIntent::Position => "position",
            VoiceIntent::LastLap => "last_lap",
            VoiceIntent::BestLap => "best_lap",
            VoiceIntent::Delta => "delta",
            VoiceIntent::TyreTemps => "tyre_temps",
            VoiceIntent::TyreWear => "tyre_wear",
            VoiceIntent::Remaining => "remaining",
            VoiceIntent::BoxThisLap => "box_this_lap",
            VoiceIntent::RepeatThat => "repeat_that",
            VoiceIntent::Quiet => "quiet",
            VoiceIntent::Resume => "resume",
            VoiceIntent::TellTeam => "tell_team",
        }
    }
}

/// Node → runtime: a spoken command the node recognised (it acknowledged it to the driver already).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoiceCommand {
    /// Chosen by the node; the answer's `replyTo`.
    pub id: String,
    pub command: VoiceIntent,
    /// What speech-to-text heard, as it heard it.
    pub transcript: String,
    /// How sure the recogniser is that `transcript` means `command`, 0–1.
    pub confidence: f32,
    /// The free-text slot: the message of `tell_team`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A number slot where the command has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<f64>,
    /// End of the utterance on the node's clock.
    #[serde(deserialize_with = "super::lenient::timestamp")]
    pub heard_at: DateTime<Utc>,
}

/// Why something is spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SayKind {
    /// The answer to a `voice_command`.
    Answer,
    /// A coaching tip.
    Coaching,
    /// An urgent event: fuel critical, a handoff request, an urgent team message.
    Alert,
}

/// The clip that follows a `voice_say` as a binary media frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SayAudio {
    /// The media frame's `sequence` (its `stream` is [`VOICE_STREAM`]).
    pub sequence: u32,
    /// Samples per second of the 16-bit mono PCM.
    pub sample_rate: u32,
    pub duration_ms: u32,
    /// Which engine made it: `espeak-ng`, `elevenlabs`.
    pub engine: String,
}

/// Runtime → node: something to say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoiceSay {
    pub id: String,
    pub kind: SayKind,
    pub text: String,
    /// Urgent pre-empts what is playing; the node holds others while the driver brakes or corners.
    pub priority: MessagePriority,
    /// The `voice_command` this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Not worth saying after this (a gap is stale after a few seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The clip, when speech was synthesised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<SayAudio>,
}

/// Runtime → the team's dashboards: one spoken exchange of a driver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoiceExchange {
    pub driver_id: String,
    pub command_id: String,
    pub command: VoiceIntent,
    pub transcript: String,
    pub confidence: f32,
    /// What the driver was told.
    pub answer: String,
    pub at: DateTime<Utc>,
}

/// `POST /api/voice/synthesize` (the seed's shape): text to speak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SynthesizeRequest {
    /// 1–1000 characters.
    pub text: String,
    /// The ElevenLabs voice id (or, with espeak-ng alone, its voice name such as `en-us`);
    /// default: the configured voice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_id: Option<String>,
    /// 0.5–2, 1 = normal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<MessagePriority>,
}

/// The answer of `POST /api/voice/synthesize`: where the WAV is, and how long it plays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SynthesizeResult {
    /// `/api/voice/clips/{id}.wav`, readable by the members of the asker's teams.
    pub audio_url: String,
    /// Seconds.
    pub duration: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_round_trip_by_name() {
        for i in VoiceIntent::ALL {
            let json = serde_json::to_value(i).unwrap();
            assert_eq!(json, i.name());
            assert_eq!(serde_json::from_value::<VoiceIntent>(json).unwrap(), i);
        }
    }

    #[test]
    fn a_command_reads_in_camel_case() {
        let c: VoiceCommand = serde_json::from_value(serde_json::json!({
            "id": "c1", "command": "tell_team", "transcript": "tell the team the car is loose",
            "confidence": 0.9, "text": "the car is loose", "heardAt": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(c.command, VoiceIntent::TellTeam);
        assert_eq!(c.text.as_deref(), Some("the car is loose"));
    }
}
