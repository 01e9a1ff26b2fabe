//! Placeholder of the command recogniser (the real one comes from another branch and replaces this
//! file): the API the voice thread is written against. Knows a handful of phrases. Reads no env vars.

use schema::wire::VoiceIntent;

pub struct Recognition {
    pub intent: VoiceIntent,
    pub confidence: f32,
    pub text: Option<String>,
    pub number: Option<f64>,
}

/// Confidence at or above which a command is acted on.
pub const CONFIDENT: f32 = 0.6;

pub fn recognise(transcript: &str) -> Option<Recognition> {
    let t = transcript.to_lowercase();
    let intent = [
        ("how much fuel", VoiceIntent::FuelLeft),
        ("box this lap", VoiceIntent::BoxThisLap),
        ("gap ahead", VoiceIntent::GapAhead),
        ("gap behind", VoiceIntent::GapBehind),
        ("say again", VoiceIntent::RepeatThat),
    ]
    .into_iter()
    .find(|(p, _)| t.contains(p))
    .map(|(_, i)| i)?;
    Some(Recognition { intent, confidence: 0.9, text: None, number: None })
}
