//! Placeholder of speech-to-text (the real module, whisper-rs behind the `stt` feature, comes from
//! another branch and replaces this file): the API the voice thread is written against. This
//! stand-in has no model and transcribes nothing. Reads no env vars.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct SttSettings {
    pub model: PathBuf,
    pub threads: usize,
    pub audio_ctx: Option<i32>,
}

#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error("speech-to-text is not built into this node")]
    Unavailable,
}

pub struct Transcriber;

pub struct Transcript {
    pub text: String,
    pub millis: u64,
}

impl Transcriber {
    pub fn new(_s: &SttSettings) -> Result<Self, SttError> {
        Err(SttError::Unavailable)
    }

    pub fn transcribe(&mut self, _pcm_16k_mono: &[f32]) -> Result<Transcript, SttError> {
        Err(SttError::Unavailable)
    }
}

/// Whether the clip holds speech (energy above a floor, in this placeholder).
pub fn is_speech(pcm_16k_mono: &[f32]) -> bool {
    let n = pcm_16k_mono.len().max(1) as f32;
    (pcm_16k_mono.iter().map(|s| s * s).sum::<f32>() / n).sqrt() > 0.005
}

pub fn model_path_default() -> PathBuf {
    crate::credentials::home().join("models").join("ggml-tiny.en.bin")
}
