//! Speech-to-text on the driver's PC: a push-to-talk clip (16 kHz mono `f32`) → text, with
//! whisper.cpp (through `whisper-rs`) and OpenAI's `tiny.en` model in ggml form.
//!
//! Whisper invents words from near-silence and steady noise ("Thank you.", or, primed with our
//! command words, "Fuel."), so clips go through [`is_speech`] first and a clip that fails it is
//! never decoded. Decoding is tuned for short commands: one segment, no timestamps, greedy, English,
//! blank and non-speech tokens suppressed, the command vocabulary
//! ([`super::recognise::vocabulary_prompt`]) as the initial prompt, one thread by default so the
//! sim keeps its CPU, and optionally a shorter audio context ([`SttSettings::audio_ctx`]).
//!
//! Whisper needs the cargo feature `stt` (on by default; it builds whisper.cpp from source with
//! cmake and libclang). Without it [`Transcriber::new`] returns [`SttError::Disabled`] and
//! [`is_speech`] still works.
//!
//! Env: `PITBOX_WHISPER_MODEL` — the ggml model file, overriding [`model_path_default`]'s
//! `<cache dir>/pitbox/models/ggml-tiny.en.bin` (where `tools/setup.sh`, through the whisper-model
//! `fetch.sh`, puts it).

use std::path::{Path, PathBuf};

/// Sample rate whisper works at.
pub const SAMPLE_RATE: u32 = 16_000;

/// Clips shorter than this are not speech worth decoding (a click of the button).
const MIN_SPEECH_SECS: f32 = 0.3;

/// Frames for the energy gate: 20 ms.
const FRAME: usize = 320;

/// A frame this loud (RMS, full scale 1.0) counts as voiced: -42 dBFS. A headset mic at normal
/// speaking level sits around -30 to -15 dBFS.
const VOICED_RMS: f32 = 0.008;

/// Speech comes and goes with syllables; steady noise (an engine, a fan, tyre roar) does not.
/// The loud frames (90th percentile) must be this many times the quiet ones (20th percentile) in
/// RMS: 2.0 is 6 dB.
const MIN_MODULATION: f32 = 2.0;

/// A transcript whisper itself thinks is probably not speech is dropped.
#[cfg(feature = "stt")]
const MAX_NO_SPEECH_PROB: f32 = 0.6;

/// Where to find the model and how hard to work.
#[derive(Debug, Clone, PartialEq)]
pub struct SttSettings {
    /// A whisper.cpp ggml model (`ggml-tiny.en.bin`).
    pub model: PathBuf,
    /// Decoder threads; 1 leaves the other cores to the sim.
    pub threads: usize,
    /// Whisper's audio context in 20 ms frames (the model's full one is 1500 = 30 s). `None`: the
    /// full context (most accurate). `Some(n)`, n > 0: exactly n. `Some(0)` or less: fitted to each
    /// clip (its length plus a margin), the fastest.
    pub audio_ctx: Option<i32>,
}

impl Default for SttSettings {
    fn default() -> Self {
        SttSettings { model: model_path_default(), threads: 1, audio_ctx: None }
    }
}

/// What was heard.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The words, trimmed; empty when the clip was not speech.
    pub text: String,
    /// Time taken (0 when the clip was refused before decoding).
    pub millis: u64,
    /// Whisper's probability that the clip holds no speech (1.0 when refused before decoding).
    pub no_speech_prob: f32,
}

impl Transcript {
    #[cfg_attr(not(feature = "stt"), allow(dead_code))]
    fn nothing() -> Self {
        Transcript { text: String::new(), millis: 0, no_speech_prob: 1.0 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error("whisper model not found at {0} (run tools/setup.sh, or set PITBOX_WHISPER_MODEL)")]
    ModelMissing(PathBuf),
    #[error("{path} is not a usable whisper ggml model: {reason}")]
    ModelInvalid { path: PathBuf, reason: String },
    #[error("speech-to-text failed: {0}")]
    Whisper(String),
    #[error("this build has no speech-to-text (cargo feature `stt` is off)")]
    Disabled,
}

/// The default model file: `$PITBOX_WHISPER_MODEL`, else `<cache dir>/pitbox/models/ggml-tiny.en.bin`
/// (`~/.cache` on Linux, `%LOCALAPPDATA%` on Windows).
pub fn model_path_default() -> PathBuf {
    if let Some(p) = std::env::var_os("PITBOX_WHISPER_MODEL").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("pitbox")
        .join("models")
        .join("ggml-tiny.en.bin")
}

/// Cheap gate before whisper: at least [`MIN_SPEECH_SECS`] of audio, loud enough somewhere, and
/// with the rise and fall of syllables rather than steady noise.
pub fn is_speech(pcm_16k_mono: &[f32]) -> bool {
    #[allow(clippy::cast_precision_loss)]
    let secs = pcm_16k_mono.len() as f32 / SAMPLE_RATE as f32;
    if secs < MIN_SPEECH_SECS {
        return false;
    }
    let mut rms: Vec<f32> = pcm_16k_mono
        .chunks(FRAME)
        .filter(|f| f.len() == FRAME)
        .map(|f| {
            #[allow(clippy::cast_precision_loss)]
            let mean = f.iter().map(|s| s * s).sum::<f32>() / f.len() as f32;
            mean.sqrt()
        })
        .collect();
    if rms.iter().any(|r| !r.is_finite()) {
        return false;
    }
    rms.sort_by(f32::total_cmp);
    let at = |q: f32| {
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let i = ((rms.len() - 1) as f32 * q).round() as usize;
        rms[i]
    };
    let loud = at(0.9);
    let quiet = at(0.2);
    // voiced frames: at least a quarter of MIN_SPEECH_SECS worth
    let voiced = rms.iter().filter(|r| **r >= VOICED_RMS).count();
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let min_voiced = ((MIN_SPEECH_SECS / 4.0) * SAMPLE_RATE as f32 / FRAME as f32).ceil() as usize;
    loud >= VOICED_RMS && voiced >= min_voiced && loud >= quiet * MIN_MODULATION
}

/// Drops what whisper writes for sounds rather than words: `[BLANK_AUDIO]`, `(engine revving)`,
/// `*beep*`, and music notes.
#[cfg_attr(not(feature = "stt"), allow(dead_code))]
fn strip_non_speech(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0_i32;
    let mut starred = false;
    for c in text.chars() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth = (depth - 1).max(0),
            '*' => starred = !starred,
            '♪' | '♫' => {}
            c if depth == 0 && !starred => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn check_model(path: &Path) -> Result<(), SttError> {
    use std::io::Read;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SttError::ModelMissing(path.to_path_buf()))
        }
        Err(e) => return Err(SttError::ModelInvalid { path: path.to_path_buf(), reason: e.to_string() }),
    };
    // whisper.cpp's ggml files open with the magic 0x67676d6c ("ggml", little-endian) and 11
    // i32 hyper-parameters. whisper.cpp itself accepts a file cut short in the header (it reads
    // zeros) and would crash later, so the header is checked here.
    let mut header = [0_u8; 48];
    let invalid =
        |reason: &str| SttError::ModelInvalid { path: path.to_path_buf(), reason: reason.to_string() };
    if f.read_exact(&mut header).is_err() {
        return Err(invalid("shorter than a model header (truncated download?)"));
    }
    let word = |i: usize| {
        let b = &header[i * 4..i * 4 + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    };
    if word(0) != 0x6767_6d6c {
        return Err(invalid("no ggml magic at the start (truncated download, or not a whisper.cpp model)"));
    }
    // n_vocab, n_audio_ctx, …, n_mels: every whisper model has 51864/51865/51866 tokens, a 1500
    // frame audio context and 80 or 128 mel bands
    let (n_vocab, n_audio_ctx, n_mels) = (word(1), word(2), word(10));
    if !(51_864..=51_866).contains(&n_vocab) || n_audio_ctx != 1500 || !(n_mels == 80 || n_mels == 128) {
        return Err(invalid(&format!(
            "implausible header (n_vocab {n_vocab}, n_audio_ctx {n_audio_ctx}, n_mels {n_mels})"
        )));
    }
    // whisper.cpp also accepts a file cut short inside its last tensor; walk the tensor list and
    // compare with the file's length (for f32/f16 tensors; a quantised model is taken as it is)
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    match tensors_end(std::io::BufReader::new(f)) {
        Ok(Some(end)) if end != len => {
            return Err(invalid(&format!("{len} bytes, but its tensors need {end} (truncated download?)")))
        }
        Ok(_) => {}
        Err(_) => return Err(invalid("its tensor list is cut short (truncated download?)")),
    }
    Ok(())
}

/// Where the last tensor of a ggml whisper model ends, reading from just after the 48-byte header;
/// `None` when a tensor type has no fixed element size (quantised).
fn tensors_end(mut r: impl std::io::Read + std::io::Seek) -> std::io::Result<Option<u64>> {
    fn i32_at(r: &mut impl std::io::Read) -> std::io::Result<i32> {
        let mut b = [0_u8; 4];
        r.read_exact(&mut b)?;
        Ok(i32::from_le_bytes(b))
    }
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let count = |v: i32| u64::try_from(v).map_err(|_| bad("negative count"));
    // mel filters
    let (n_mel, n_fft) = (count(i32_at(&mut r)?)?, count(i32_at(&mut r)?)?);
    r.seek_relative(i64::try_from(n_mel * n_fft * 4).map_err(|_| bad("size"))?)?;
    // vocabulary
    let n_vocab = count(i32_at(&mut r)?)?;
    for _ in 0..n_vocab {
        let l = count(i32_at(&mut r)?)?;
        r.seek_relative(i64::try_from(l).map_err(|_| bad("size"))?)?;
    }
    loop {
        let mut first = [0_u8; 4];
        // a clean end of file between tensors is the end of the model
        match r.read(&mut first)? {
            0 => return Ok(Some(r.stream_position()?)),
            4 => {}
            n => r.read_exact(&mut first[n..])?,
        }
        let n_dims = count(i32::from_le_bytes(first))?;
        let name_len = count(i32_at(&mut r)?)?;
        let elem = match i32_at(&mut r)? {
            0 => 4,
            1 => 2,
            _ => return Ok(None),
        };
        if n_dims > 4 || name_len > 4096 {
            return Err(bad("implausible tensor header"));
        }
        let mut n = 1_u64;
        for _ in 0..n_dims {
            n = n.saturating_mul(count(i32_at(&mut r)?)?);
        }
        let skip = n.saturating_mul(elem).saturating_add(name_len);
        r.seek_relative(i64::try_from(skip).map_err(|_| bad("size"))?)?;
    }
}

#[cfg(feature = "stt")]
mod engine {
    use super::*;
    use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState};

    /// A loaded model and its decoding state; one per node (decode one clip at a time).
    pub struct Transcriber {
        // the context must outlive the state; the state holds its own reference
        _ctx: WhisperContext,
        state: WhisperState,
        threads: usize,
        audio_ctx: Option<i32>,
        prompt: String,
    }

    impl std::fmt::Debug for Transcriber {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Transcriber")
                .field("threads", &self.threads)
                .field("audio_ctx", &self.audio_ctx)
                .finish_non_exhaustive()
        }
    }

    impl Transcriber {
        /// Loads the model (about 0.2 s for tiny.en).
        pub fn new(settings: &SttSettings) -> Result<Self, SttError> {
            check_model(&settings.model)?;
            // whisper.cpp's own logging goes to `tracing` instead of stderr
            whisper_rs::install_logging_hooks();
            let invalid = |reason: String| SttError::ModelInvalid { path: settings.model.clone(), reason };
            let path = settings.model.to_str().ok_or_else(|| invalid("the path is not UTF-8".into()))?;
            let mut params = WhisperContextParameters::default();
            params.use_gpu(false);
            let ctx = WhisperContext::new_with_params(path, params)
                .map_err(|e| invalid(format!("whisper.cpp could not load it ({e})")))?;
            let state = ctx
                .create_state()
                .map_err(|e| SttError::Whisper(format!("creating the decoder state: {e}")))?;
            Ok(Transcriber {
                _ctx: ctx,
                state,
                threads: settings.threads.max(1),
                audio_ctx: settings.audio_ctx,
                prompt: crate::voice::recognise::vocabulary_prompt(),
            })
        }

        /// Text of one clip (16 kHz mono, -1.0..1.0). A clip that is not speech ([`is_speech`])
        /// is not decoded: the transcript is empty.
        pub fn transcribe(&mut self, pcm_16k_mono: &[f32]) -> Result<Transcript, SttError> {
            if !is_speech(pcm_16k_mono) {
                return Ok(Transcript::nothing());
            }
            let started = std::time::Instant::now();
            // whisper.cpp decodes nothing from under 1 s: pad short commands ("box") with silence
            let min = SAMPLE_RATE as usize * 11 / 10;
            let padded;
            let pcm = if pcm_16k_mono.len() < min {
                let mut v = pcm_16k_mono.to_vec();
                v.resize(min, 0.0);
                padded = v;
                &padded[..]
            } else {
                pcm_16k_mono
            };
            let mut p = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
            p.set_n_threads(i32::try_from(self.threads).unwrap_or(1));
            p.set_language(Some("en"));
            p.set_translate(false);
            p.set_single_segment(true);
            p.set_no_timestamps(true);
            p.set_no_context(true);
            p.set_suppress_blank(true);
            p.set_suppress_nst(true);
            p.set_print_progress(false);
            p.set_print_realtime(false);
            p.set_print_special(false);
            p.set_print_timestamps(false);
            // a command is a few words; a runaway decode on noise stops here
            p.set_max_tokens(24);
            // no temperature fallback: a second, random decode of a bad clip is worse than an
            // empty one (the driver is asked to repeat)
            p.set_temperature_inc(0.0);
            p.set_initial_prompt(&self.prompt);
            if let Some(n) = self.audio_ctx {
                p.set_audio_ctx(if n > 0 { n } else { fitted_audio_ctx(pcm.len()) });
            }
            self.state.full(p, pcm).map_err(|e| SttError::Whisper(e.to_string()))?;
            let mut text = String::new();
            let mut no_speech_prob: f32 = 0.0;
            for seg in self.state.as_iter() {
                no_speech_prob = no_speech_prob.max(seg.no_speech_probability());
                let s = seg.to_str_lossy().map_err(|e| SttError::Whisper(e.to_string()))?;
                text.push_str(&s);
            }
            let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            // whisper loops on short clips ("Talk to me, talk to me, talk"): keep the first time
            let mut text = crate::voice::recognise::collapse_repeats(&strip_non_speech(&text));
            if no_speech_prob > MAX_NO_SPEECH_PROB {
                tracing::debug!(%text, no_speech_prob, "whisper: probably not speech; dropped");
                text.clear();
            }
            Ok(Transcript { text, millis, no_speech_prob })
        }
    }

    /// The clip's length in 20 ms frames plus a margin, rounded up to 64 (whisper.cpp is happier
    /// with round sizes); never more than the model's 1500.
    fn fitted_audio_ctx(samples: usize) -> i32 {
        let frames = samples / FRAME + 1;
        let with_margin = (frames + frames / 5).div_ceil(64) * 64;
        i32::try_from(with_margin.min(1500)).unwrap_or(1500)
    }
}

#[cfg(not(feature = "stt"))]
mod engine {
    use super::*;

    /// Built without the `stt` feature: cannot be made ([`Transcriber::new`] fails).
    #[derive(Debug)]
    pub struct Transcriber {
        _never: std::convert::Infallible,
    }

    impl Transcriber {
        pub fn new(settings: &SttSettings) -> Result<Self, SttError> {
            // still say what is wrong with the model first: it is the more useful message
            check_model(&settings.model)?;
            Err(SttError::Disabled)
        }

        pub fn transcribe(&mut self, _pcm_16k_mono: &[f32]) -> Result<Transcript, SttError> {
            match self._never {}
        }
    }
}

pub use engine::Transcriber;

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(secs: f32, amp: f32, hz: f32) -> Vec<f32> {
        let n = (secs * SAMPLE_RATE as f32) as usize;
        (0..n).map(|i| amp * (i as f32 * hz * std::f32::consts::TAU / SAMPLE_RATE as f32).sin()).collect()
    }

    #[test]
    fn gate_refuses_silence_short_clips_and_steady_noise() {
        assert!(!is_speech(&[]));
        assert!(!is_speech(&vec![0.0; 32_000]));
        assert!(!is_speech(&vec![0.001; 32_000]));
        // a steady engine drone is loud but has no syllables
        assert!(!is_speech(&tone(2.0, 0.3, 110.0)));
        // a click of the button
        assert!(!is_speech(&tone(0.1, 0.3, 300.0)));
        assert!(!is_speech(&[f32::NAN; 16_000]));
    }

    #[test]
    fn gate_passes_syllables() {
        // 4 Hz bursts of a voiced tone over a quiet floor, like syllables
        let mut v = tone(1.5, 0.2, 200.0);
        for (i, s) in v.iter_mut().enumerate() {
            if (i / 2000) % 2 == 1 {
                *s *= 0.05;
            }
        }
        assert!(is_speech(&v));
    }

    #[test]
    fn non_speech_markers_are_stripped() {
        assert_eq!(strip_non_speech(" [BLANK_AUDIO]"), "");
        assert_eq!(strip_non_speech("(engine revving) Box this lap."), "Box this lap.");
        assert_eq!(strip_non_speech("♪ *beep* fuel"), "fuel");
    }

    #[test]
    fn model_errors_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.bin");
        let e = Transcriber::new(&SttSettings { model: missing.clone(), threads: 1, audio_ctx: None })
            .unwrap_err();
        assert!(matches!(e, SttError::ModelMissing(ref p) if *p == missing), "{e}");
        assert!(e.to_string().contains("PITBOX_WHISPER_MODEL"));

        let junk = dir.path().join("junk.bin");
        std::fs::write(&junk, b"<html>not found</html>").unwrap();
        let e = Transcriber::new(&SttSettings { model: junk, threads: 1, audio_ctx: None }).unwrap_err();
        assert!(matches!(e, SttError::ModelInvalid { .. }), "{e}");

        // the right magic, then nothing: whisper.cpp would take it (and crash later)
        let truncated = dir.path().join("truncated.bin");
        std::fs::write(&truncated, 0x6767_6d6c_u32.to_le_bytes()).unwrap();
        let e = Transcriber::new(&SttSettings { model: truncated, threads: 1, audio_ctx: None }).unwrap_err();
        assert!(matches!(e, SttError::ModelInvalid { .. }), "{e}");
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    #[test]
    fn transcriber_is_send() {
        fn send<T: Send>() {}
        send::<Transcriber>();
    }
}
