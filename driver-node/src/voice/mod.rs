//! Voice on the driver node (issue 13): the driver speaks a command, the team's runtime answers
//! through the speakers.
//!
//! ```text
//! microphone / --mic-file ─▶ capture (16 kHz, 10 ms) ─▶ push-to-talk gate ─▶ VAD + hangover
//!   ─▶ whole utterance ─▶ is_speech ─▶ transcriber thread ─▶ recognise
//!   ─▶ confident: ack tone + `voice_command` to the uplink │ else: the say-again tone, nothing sent
//! uplink: `voice_say` + PCM16 media frame ─▶ playback queue (urgent first, held while braking
//!   or cornering) ─▶ speakers (rodio) / --speaker-file
//! ```
//!
//! Each part runs on its own thread ([`capture`], the voice thread here, the transcriber,
//! [`playback`]); the uplink reaches them through [`VoiceLink`]. The transcriber sits behind
//! [`Transcribe`], so tests can run without a speech model. Env: `PITBOX_WHISPER_MODEL` (the
//! speech model, see [`model_path`]).

pub mod capture;
pub mod playback;
pub mod ptt;
pub mod queue;
pub mod recognise;
pub mod segment;
pub mod stt;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pitbox_schema::wire::VoiceCommand;

pub use capture::MicSpec;
pub use playback::{PedalSource, Player, SpeakerSpec, Tone};
pub use ptt::PttButton;
pub use segment::PttMode;

/// What `run` was asked for on the command line.
#[derive(Debug, Clone)]
pub struct VoiceOptions {
    pub mic: MicSpec,
    pub ptt: PttMode,
    pub ptt_button: Option<PttButton>,
    pub speaker: SpeakerSpec,
    /// 0–100.
    pub volume: u8,
    pub stt: stt::SttSettings,
}

/// Speech to text, as the voice thread needs it.
pub trait Transcribe {
    /// The text of 16 kHz mono audio.
    fn transcribe(&mut self, pcm_16k_mono: &[f32]) -> Result<String, String>;
}

impl Transcribe for stt::Transcriber {
    fn transcribe(&mut self, pcm_16k_mono: &[f32]) -> Result<String, String> {
        let t = stt::Transcriber::transcribe(self, pcm_16k_mono).map_err(|e| e.to_string())?;
        tracing::debug!(millis = t.millis, text = %t.text, "transcribed");
        Ok(t.text)
    }
}

/// Makes the transcriber on its own thread (a speech model is loaded where it is used).
pub type TranscriberFactory = Box<dyn FnOnce() -> Result<Box<dyn Transcribe>, String> + Send>;

/// The transcriber of `settings` (whisper, when the node is built with it and the model exists).
pub fn whisper(settings: stt::SttSettings) -> TranscriberFactory {
    Box::new(move || {
        stt::Transcriber::new(&settings)
            .map(|t| Box::new(t) as Box<dyn Transcribe>)
            .map_err(|e| format!("speech-to-text ({}): {e}", settings.model.display()))
    })
}

/// The speech model: `PITBOX_WHISPER_MODEL`, else [`stt::model_path_default`].
pub fn model_path() -> std::path::PathBuf {
    std::env::var_os("PITBOX_WHISPER_MODEL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(stt::model_path_default)
}

/// The doctor's `voice` row: the speech model (with one timed transcription of a generated
/// second of audio when it is there) and a microphone. Warning when either is missing: voice is
/// optional; error when the model is there but does not load or transcribe.
pub fn doctor_row() -> pitbox_schema::wire::ValidationResult {
    use cpal::traits::{DeviceTrait, HostTrait};
    use pitbox_schema::wire::ValidationStatus::{Error, Success, Warning};
    let model = model_path();
    let mic = cpal::default_host().default_input_device().map(|d| d.name().unwrap_or_else(|_| "?".into()));
    let mut problems = vec![];
    let mut status = Success;
    let mut millis = None;
    if model.is_file() {
        // As `run` transcribes (fitted context, one thread).
        let settings = stt::SttSettings { model: model.clone(), threads: 1, audio_ctx: Some(0) };
        // A second of a voiced vowel-like sound: what matters is how long the model takes.
        let clip: Vec<f32> = (0..16_000)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                [150.0f32, 300.0, 450.0, 700.0]
                    .iter()
                    .map(|f| (2.0 * std::f32::consts::PI * f * t).sin())
                    .sum::<f32>()
                    * 0.1
            })
            .collect();
        let started = Instant::now();
        match stt::Transcriber::new(&settings).and_then(|mut t| t.transcribe(&clip)) {
            Ok(_) => millis = Some(started.elapsed().as_millis() as u64),
            Err(e) => {
                status = Error;
                problems.push(format!("the model does not transcribe: {e}"));
            }
        }
    } else {
        status = Warning;
        problems.push(format!("no speech model at {} (voice commands off)", model.display()));
    }
    if mic.is_none() {
        if status == Success {
            status = Warning;
        }
        problems.push("no microphone (voice commands off; answers still play)".into());
    }
    let mut message = match millis {
        Some(ms) => format!("{}: 1 s of audio transcribed in {ms} ms", model.display()),
        None => String::new(),
    };
    if let Some(m) = &mic {
        message = [message, format!("microphone {m:?}")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
    }
    if !problems.is_empty() {
        message = [message, problems.join("; ")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
    }
    pitbox_schema::wire::ValidationResult {
        component_name: "voice".into(),
        status,
        message,
        timestamp: chrono::Utc::now(),
        details: Some(serde_json::json!({
            "model": model, "modelPresent": model.is_file(), "transcribeMs": millis, "microphone": mic
        })),
    }
}

/// What the uplink holds: commands to send (each with the moment it was recognised), and the
/// player for what the runtime says.
pub struct VoiceLink {
    pub commands: tokio::sync::mpsc::Receiver<(VoiceCommand, Instant)>,
    pub player: Player,
}

/// The running threads; [`VoiceThreads::stop`] ends them.
pub struct VoiceThreads {
    stop: Arc<AtomicBool>,
    player: Player,
    handles: Vec<JoinHandle<()>>,
}

impl VoiceThreads {
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.player.stop();
        for h in self.handles {
            if h.join().is_err() {
                tracing::warn!("a voice thread panicked");
            }
        }
    }
}

/// Pedals from the node's newest telemetry frame (the recorder keeps it in the status); its age
/// from the frame's timestamp (a replay's old timestamps read as stale: nothing is held).
pub fn pedals_from(status: Arc<crate::status::Status>) -> PedalSource {
    Box::new(move || {
        let f = status.latest()?;
        let age = (chrono::Utc::now() - f.timestamp).to_std().unwrap_or(Duration::ZERO);
        Some((
            queue::Pedals {
                brake: f.sample.brake,
                throttle: f.sample.throttle,
                steering: f.sample.steering_angle,
            },
            age,
        ))
    })
}

/// Starts voice: playback always (the runtime may speak even when the microphone is missing);
/// the microphone and the command path when a microphone (or `--mic-file`) opens. A missing
/// microphone, button or model is logged and leaves the rest running.
pub fn start(
    options: VoiceOptions,
    pedals: PedalSource,
    transcriber: TranscriberFactory,
) -> Result<(VoiceLink, VoiceThreads), playback::PlaybackError> {
    let (player, playback) = playback::start(options.speaker.clone(), options.volume, pedals)?;
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel(16);
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = vec![playback];
    match capture::start(options.mic.clone(), stop.clone()) {
        Ok(cap) => {
            tracing::info!(mic = %cap.describe, ptt = ?options.ptt, "listening for voice commands");
            handles.push(cap.handle);
            let (utt_tx, utt_rx) = sync_channel::<(Vec<f32>, chrono::DateTime<chrono::Utc>)>(2);
            let p = player.clone();
            handles.push(spawn("voice-stt", move || understand(transcriber, &utt_rx, &p, &cmd_tx))?);
            let (mode, button, s) = (options.ptt, options.ptt_button.clone(), stop.clone());
            handles.push(spawn("voice", move || listen(&cap.frames, mode, button.as_ref(), &utt_tx, &s))?);
        }
        Err(e) => tracing::warn!(error = %e, "no voice commands (the team's answers still play)"),
    }
    Ok((VoiceLink { commands: cmd_rx, player: player.clone() }, VoiceThreads { stop, player, handles }))
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, playback::PlaybackError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| playback::PlaybackError::Device(e.to_string()))
}

/// The voice thread: frames through the push-to-talk gate and the detector; whole utterances
/// go to the transcriber.
fn listen(
    frames: &std::sync::mpsc::Receiver<Vec<f32>>,
    mode: PttMode,
    button: Option<&PttButton>,
    utterances: &SyncSender<(Vec<f32>, chrono::DateTime<chrono::Utc>)>,
    stop: &AtomicBool,
) {
    let mut input: Box<dyn ptt::PttInput> = match button.map(ptt::open) {
        Some(Ok(b)) => b,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "push-to-talk button unavailable");
            Box::new(ptt::NoButton)
        }
        None => Box::new(ptt::NoButton),
    };
    if mode != PttMode::Vad && button.is_none() {
        tracing::warn!(?mode, "push-to-talk without --ptt-button: the microphone never opens");
    }
    let mut gate = segment::Gate::new(mode);
    let mut segmenter = segment::Segmenter::new(segment::WebRtc::new());
    let mut was_open = false;
    while !stop.load(Ordering::Relaxed) {
        let frame = match frames.recv_timeout(Duration::from_millis(100)) {
            Ok(f) => f,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                // The source ended (a `--mic-file`): what was being said still counts.
                if let Some(u) = segmenter.flush() {
                    let _ = utterances.try_send((u, chrono::Utc::now()));
                }
                break;
            }
        };
        let open = gate.update(input.pressed());
        let utterance = match (was_open, open) {
            (_, true) => segmenter.push(frame),
            (true, false) => segmenter.flush(),
            (false, false) => None,
        };
        was_open = open;
        if let Some(u) = utterance {
            tracing::debug!(ms = u.len() / 16, "utterance");
            match utterances.try_send((u, chrono::Utc::now())) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => tracing::warn!("still transcribing; an utterance is dropped"),
                Err(TrySendError::Disconnected(_)) => break,
            }
        }
    }
}

/// The transcriber thread: speech to text to a command.
fn understand(
    factory: TranscriberFactory,
    utterances: &std::sync::mpsc::Receiver<(Vec<f32>, chrono::DateTime<chrono::Utc>)>,
    player: &Player,
    commands: &tokio::sync::mpsc::Sender<(VoiceCommand, Instant)>,
) {
    let mut transcriber = match factory() {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "no voice commands without speech-to-text");
            return;
        }
    };
    while let Ok((pcm, heard_at)) = utterances.recv() {
        if !stt::is_speech(&pcm) {
            tracing::debug!("not speech; ignored");
            continue;
        }
        let started = Instant::now();
        let text = match transcriber.transcribe(&pcm) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "transcription failed");
                player.tone(Tone::SayAgain);
                continue;
            }
        };
        let ms = started.elapsed().as_millis() as u64;
        match recognise::recognise(&text) {
            Some(r) if r.confidence >= recognise::CONFIDENT => {
                player.tone(Tone::Ack);
                let command = VoiceCommand {
                    id: uuid::Uuid::new_v4().to_string(),
                    command: r.intent,
                    transcript: text.clone(),
                    confidence: r.confidence,
                    text: r.text,
                    number: r.number,
                    heard_at,
                };
                let (name, confidence) = (r.intent.name(), r.confidence);
                tracing::info!(command = name, %text, confidence, transcribe_ms = ms, "voice command");
                if commands.try_send((command, Instant::now())).is_err() {
                    tracing::warn!("the uplink is not taking voice commands; one is dropped");
                }
            }
            other => {
                tracing::info!(%text, confidence = other.map(|r| r.confidence), "not understood; say again");
                player.tone(Tone::SayAgain);
            }
        }
    }
}
