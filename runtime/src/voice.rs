//! Text to speech for the voice channels and `POST /api/voice/synthesize`: one [`Tts`] behind the
//! actors' [`Speech`] trait, with two engines.
//!
//! - espeak-ng, local and the default: `espeak-ng --stdout -v VOICE -s SPEED -- TEXT` writes a WAV
//!   (its length fields are placeholders when it writes to a pipe, so samples are read until the
//!   data ends), read with hound and turned into 16-bit mono PCM at its own rate (22 050 Hz).
//! - ElevenLabs, when a key is set: `POST {base}/v1/text-to-speech/{voice_id}` (or `/stream`)
//!   with `xi-api-key`, JSON `{text, model_id, voice_settings?}` and `?output_format=pcm_16000`
//!   (raw 16-bit little-endian PCM at 16 kHz). Its error bodies (`{"detail": {status, message}}`
//!   for 401 and 429, `{"detail": [{loc, msg, type}]}` for 422) become [`TtsError`]s that name
//!   what went wrong. Any failure falls back to espeak-ng: logged, and counted ([`Tts::fallbacks`],
//!   shown as the voice channels' `fallbacks` gauge).
//!
//! Clips are cached by (engine, voice, speed, text), bounded by bytes, least recently used out.
//! [`ClipStore`] keeps the clips made for the REST route, each readable by the teams of whoever
//! asked for it. Settings come from [`crate::config`] (`PITBOX_ELEVENLABS_API_KEY`,
//! `PITBOX_ELEVENLABS_VOICE_ID`, `PITBOX_ELEVENLABS_MODEL`, `PITBOX_ELEVENLABS_BASE_URL`,
//! `PITBOX_ESPEAK_VOICE`, `PITBOX_ESPEAK_SPEED`); this module reads no env var itself. awc's
//! client is tied to the current thread, so the futures here are not `Send`: they run on the
//! arbiter of whoever asks (a voice channel, a request handler).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::Cursor;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use pitbox_actors::voice_channel::{Clip, Speech};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// ElevenLabs' API address.
pub const ELEVENLABS_BASE_URL: &str = "https://api.elevenlabs.io";
/// ElevenLabs' "George" voice, from its documentation.
pub const ELEVENLABS_VOICE: &str = "JBFqnCBsd6RMkjVDRZzb";
/// ElevenLabs' low-latency model.
pub const ELEVENLABS_MODEL: &str = "eleven_flash_v2_5";
/// The espeak-ng voice when none is configured.
pub const ESPEAK_VOICE: &str = "en-gb";
/// The espeak-ng speed (words per minute) when none is configured.
pub const ESPEAK_SPEED: u32 = 175;
/// The PCM format asked of ElevenLabs.
pub const ELEVENLABS_RATE: u32 = 16_000;
/// Clip bytes the cache keeps (about 12 minutes of speech at 22 kHz).
pub const CACHE_BYTES: usize = 32 * 1024 * 1024;
/// How long one ElevenLabs request may take before espeak-ng speaks instead.
pub const ELEVENLABS_TIMEOUT: Duration = Duration::from_secs(8);
/// Longest clip accepted from ElevenLabs (bytes of PCM: about a minute at 16 kHz).
const MAX_CLIP_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ElevenLabsConfig {
    /// Without `/v1`, no trailing slash.
    pub base_url: String,
    pub api_key: Secret<String>,
    pub voice_id: String,
    pub model: String,
}

/// The voice settings, resolved by [`crate::config`].
#[derive(Debug, Clone)]
pub struct VoiceConfig {
    /// `None`: espeak-ng only.
    pub elevenlabs: Option<ElevenLabsConfig>,
    pub espeak_voice: String,
    /// Words per minute.
    pub espeak_speed: u32,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self { elevenlabs: None, espeak_voice: ESPEAK_VOICE.into(), espeak_speed: ESPEAK_SPEED }
    }
}

/// Why an engine did not speak.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TtsError {
    #[error("ElevenLabs refused the API key (401): {0}")]
    Unauthorized(String),
    #[error("ElevenLabs could not read the request (422): {0}")]
    Invalid(String),
    #[error("ElevenLabs is rate limiting (429): {0}")]
    RateLimited(String),
    #[error("ElevenLabs answered {0}: {1}")]
    Status(u16, String),
    #[error("ElevenLabs did not answer in time")]
    Timeout,
    #[error("ElevenLabs unreachable: {0}")]
    Network(String),
    #[error("espeak-ng: {0}")]
    Espeak(String),
    #[error("unknown voice {0:?}")]
    UnknownVoice(String),
}

/// ElevenLabs' error body: `detail` is an object (`{status, message}`) or, for validation, a list
/// of `{loc, msg, type}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    detail: Detail,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Detail {
    Status { status: Option<String>, message: Option<String> },
    Validation(Vec<ValidationItem>),
    Text(String),
}

#[derive(Debug, Deserialize)]
struct ValidationItem {
    #[serde(default)]
    loc: Vec<serde_json::Value>,
    msg: String,
}

fn error_text(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body).map(|b| b.detail) {
        Ok(Detail::Status { status, message }) => match (status, message) {
            (Some(s), Some(m)) => format!("{s}: {m}"),
            (Some(s), None) => s,
            (None, Some(m)) => m,
            (None, None) => "no detail".into(),
        },
        Ok(Detail::Validation(items)) => items
            .iter()
            .map(|i| {
                let loc: Vec<String> =
                    i.loc.iter().map(|l| l.as_str().map_or_else(|| l.to_string(), str::to_owned)).collect();
                format!("{}: {}", loc.join("."), i.msg)
            })
            .collect::<Vec<_>>()
            .join("; "),
        Ok(Detail::Text(t)) => t,
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

#[derive(Serialize)]
struct TtsRequest<'a> {
    text: &'a str,
    model_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    voice_settings: Option<VoiceSettings>,
}

#[derive(Serialize)]
struct VoiceSettings {
    speed: f64,
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The ElevenLabs client.
#[derive(Clone)]
pub struct ElevenLabs {
    config: ElevenLabsConfig,
    tls: Arc<rustls::ClientConfig>,
}

impl ElevenLabs {
    pub fn new(config: ElevenLabsConfig) -> Result<ElevenLabs, String> {
        Ok(ElevenLabs { config, tls: tls_config()? })
    }

    /// Synthesises `text` as 16 kHz PCM. With `stream`, the `/stream` endpoint; `on_first` is
    /// called when the first audio bytes arrive (time to first audio).
    pub async fn synthesize(
        &self,
        text: &str,
        voice: Option<&str>,
        speed: Option<f64>,
        stream: bool,
        mut on_first: impl FnMut(),
    ) -> Result<Clip, TtsError> {
        let c = &self.config;
        let voice = voice.unwrap_or(&c.voice_id);
        let url = format!(
            "{}/v1/text-to-speech/{}{}?output_format=pcm_{ELEVENLABS_RATE}",
            c.base_url,
            voice,
            if stream { "/stream" } else { "" }
        );
        let client = awc::Client::builder()
            .connector(awc::Connector::new().timeout(ELEVENLABS_TIMEOUT).rustls_0_23(Arc::clone(&self.tls)))
            .timeout(ELEVENLABS_TIMEOUT)
            .finish();
        let body = TtsRequest {
            text,
            model_id: &c.model,
            // ElevenLabs takes 0.7–1.2.
            voice_settings: speed.map(|s| VoiceSettings { speed: s.clamp(0.7, 1.2) }),
        };
        let deadline = Instant::now() + ELEVENLABS_TIMEOUT;
        let mut resp = client
            .post(url)
            .insert_header(("xi-api-key", c.api_key.expose().as_str()))
            .insert_header(("accept", "audio/pcm"))
            .send_json(&body)
            .await
            .map_err(|e| match e {
                awc::error::SendRequestError::Timeout => TtsError::Timeout,
                e => TtsError::Network(e.to_string()),
            })?;
        let status = resp.status().as_u16();
        if status != 200 {
            let body = resp.body().limit(64 * 1024).await.unwrap_or_default();
            let why = error_text(&body);
            return Err(match status {
                401 => TtsError::Unauthorized(why),
                422 => TtsError::Invalid(why),
                429 => TtsError::RateLimited(why),
                s => TtsError::Status(s, why),
            });
        }
        let mut pcm = Vec::new();
        let mut first = true;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = match tokio::time::timeout(left, resp.next()).await {
                Err(_) => return Err(TtsError::Timeout),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(TtsError::Network(e.to_string())),
                Ok(Some(Ok(chunk))) => chunk,
            };
            if first && !chunk.is_empty() {
                first = false;
                on_first();
            }
            pcm.extend_from_slice(&chunk);
            if pcm.len() > MAX_CLIP_BYTES {
                return Err(TtsError::Status(200, format!("clip longer than {MAX_CLIP_BYTES} bytes")));
            }
        }
        // A stream cut inside a sample loses that sample only.
        pcm.truncate(pcm.len() & !1);
        if pcm.is_empty() {
            return Err(TtsError::Status(200, "no audio in the answer".into()));
        }
        Ok(Clip { pcm: Bytes::from(pcm), sample_rate: ELEVENLABS_RATE, engine: "elevenlabs".into() })
    }
}

/// Reads a WAV (as espeak-ng writes it) into 16-bit mono PCM.
pub fn wav_to_pcm16(wav: &[u8]) -> Result<(Vec<u8>, u32), String> {
    let mut r = hound::WavReader::new(Cursor::new(wav)).map_err(|e| format!("not a WAV: {e}"))?;
    let spec = r.spec();
    let channels = usize::from(spec.channels.max(1));
    // espeak-ng writes placeholder lengths to a pipe: read until the data ends.
    let samples: Vec<i16> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 16) => r.samples::<i16>().map_while(Result::ok).collect(),
        (hound::SampleFormat::Int, bits) => {
            let shift = i32::from(bits) - 16;
            r.samples::<i32>()
                .map_while(Result::ok)
                .map(|s| if shift >= 0 { (s >> shift) as i16 } else { (s << -shift) as i16 })
                .collect()
        }
        (hound::SampleFormat::Float, _) => {
            r.samples::<f32>().map_while(Result::ok).map(|s| (s.clamp(-1.0, 1.0) * 32767.0) as i16).collect()
        }
    };
    let mut pcm = Vec::with_capacity(samples.len() / channels * 2);
    for frame in samples.chunks(channels) {
        let mean = frame.iter().map(|s| i32::from(*s)).sum::<i32>() / frame.len().max(1) as i32;
        pcm.extend_from_slice(&(mean as i16).to_le_bytes());
    }
    Ok((pcm, spec.sample_rate))
}

/// 16-bit mono PCM as a WAV file.
pub fn pcm16_to_wav(pcm: &[u8], rate: u32) -> Result<Vec<u8>, String> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = Cursor::new(Vec::with_capacity(pcm.len() + 44));
    {
        let mut w = hound::WavWriter::new(&mut out, spec).map_err(|e| e.to_string())?;
        for s in pcm.chunks_exact(2) {
            w.write_sample(i16::from_le_bytes([s[0], s[1]])).map_err(|e| e.to_string())?;
        }
        w.finalize().map_err(|e| e.to_string())?;
    }
    Ok(out.into_inner())
}

/// espeak-ng, run on the blocking pool.
pub async fn espeak(text: &str, voice: &str, wpm: u32) -> Result<Clip, TtsError> {
    let (text, voice_owned) = (text.to_owned(), voice.to_owned());
    let out = actix_web::rt::task::spawn_blocking(move || {
        std::process::Command::new("espeak-ng")
            .args(["--stdout", "-v", &voice_owned, "-s", &wpm.to_string(), "--", &text])
            .stdin(std::process::Stdio::null())
            .output()
    })
    .await
    .map_err(|e| TtsError::Espeak(e.to_string()))?
    .map_err(|e| TtsError::Espeak(format!("cannot run espeak-ng (is it installed?): {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if err.contains("voice does not exist") {
            return Err(TtsError::UnknownVoice(voice.to_owned()));
        }
        return Err(TtsError::Espeak(format!("{}: {err}", out.status)));
    }
    let (pcm, rate) = wav_to_pcm16(&out.stdout).map_err(TtsError::Espeak)?;
    Ok(Clip { pcm: Bytes::from(pcm), sample_rate: rate, engine: "espeak-ng".into() })
}

/// A byte-bounded cache of clips, least recently used out.
#[derive(Debug, Default)]
pub struct ClipCache {
    map: HashMap<String, Clip>,
    order: VecDeque<String>,
    bytes: usize,
    limit: usize,
}

impl ClipCache {
    pub fn new(limit: usize) -> Self {
        Self { limit, ..Self::default() }
    }

    pub fn get(&mut self, key: &str) -> Option<Clip> {
        let clip = self.map.get(key)?.clone();
        if let Some(k) = self.order.iter().position(|o| o == key) {
            if let Some(o) = self.order.remove(k) {
                self.order.push_back(o);
            }
        }
        Some(clip)
    }

    pub fn insert(&mut self, key: String, clip: Clip) {
        if clip.pcm.len() > self.limit {
            return;
        }
        if let Some(old) = self.map.remove(&key) {
            self.bytes -= old.pcm.len();
            self.order.retain(|o| *o != key);
        }
        self.bytes += clip.pcm.len();
        self.map.insert(key.clone(), clip);
        self.order.push_back(key);
        while self.bytes > self.limit {
            let Some(old) = self.order.pop_front() else { break };
            if let Some(c) = self.map.remove(&old) {
                self.bytes -= c.pcm.len();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

struct TtsInner {
    config: VoiceConfig,
    elevenlabs: Option<ElevenLabs>,
    cache: Mutex<ClipCache>,
    fallbacks: AtomicU64,
}

/// The runtime's text to speech: ElevenLabs when configured, espeak-ng otherwise and whenever
/// ElevenLabs fails. Cheap to clone.
#[derive(Clone)]
pub struct Tts(Arc<TtsInner>);

impl Tts {
    pub fn new(config: VoiceConfig) -> Result<Tts, String> {
        let elevenlabs = config.elevenlabs.clone().map(ElevenLabs::new).transpose()?;
        Ok(Tts(Arc::new(TtsInner {
            config,
            elevenlabs,
            cache: Mutex::new(ClipCache::new(CACHE_BYTES)),
            fallbacks: AtomicU64::new(0),
        })))
    }

    /// ElevenLabs failures covered by espeak-ng so far.
    pub fn fallbacks(&self) -> u64 {
        self.0.fallbacks.load(Ordering::Relaxed)
    }

    /// Clips in the cache.
    pub fn cached(&self) -> usize {
        self.0.cache.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Speaks `text` with the given voice (ElevenLabs' voice id, or espeak-ng's voice name when
    /// ElevenLabs is off) and speed (1 = normal). Errors only when espeak-ng fails too (or the
    /// voice is unknown to it).
    pub async fn speak(&self, text: &str, voice: Option<&str>, speed: Option<f64>) -> Result<Clip, TtsError> {
        let inner = &self.0;
        let speed_key = speed.map_or_else(|| "1".to_owned(), |s| format!("{s:.2}"));
        if let Some(el) = &inner.elevenlabs {
            let v = voice.unwrap_or(&el.config.voice_id);
            let key = format!("elevenlabs\u{0}{v}\u{0}{speed_key}\u{0}{text}");
            if let Some(c) = inner.cache.lock().ok().and_then(|mut c| c.get(&key)) {
                return Ok(c);
            }
            match el.synthesize(text, Some(v), speed, true, || {}).await {
                Ok(clip) => {
                    if let Ok(mut c) = inner.cache.lock() {
                        c.insert(key, clip.clone());
                    }
                    return Ok(clip);
                }
                Err(e) => {
                    inner.fallbacks.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "ElevenLabs failed; speaking with espeak-ng");
                }
            }
        }
        // An ElevenLabs voice id means nothing to espeak-ng: its own voice then.
        let v = if inner.elevenlabs.is_some() { None } else { voice };
        let v = v.unwrap_or(&inner.config.espeak_voice);
        let wpm = speed.map_or(inner.config.espeak_speed, |s| {
            (f64::from(inner.config.espeak_speed) * s).round().clamp(80.0, 450.0) as u32
        });
        let key = format!("espeak-ng\u{0}{v}\u{0}{wpm}\u{0}{text}");
        if let Some(c) = inner.cache.lock().ok().and_then(|mut c| c.get(&key)) {
            return Ok(c);
        }
        let clip = espeak(text, v, wpm).await?;
        if let Ok(mut c) = inner.cache.lock() {
            c.insert(key, clip.clone());
        }
        Ok(clip)
    }
}

impl Speech for Tts {
    fn synthesize(&self, text: String) -> Pin<Box<dyn Future<Output = Option<Clip>>>> {
        let me = self.clone();
        Box::pin(async move {
            match me.speak(&text, None, None).await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "no speech engine could speak; the node gets the text alone");
                    None
                }
            }
        })
    }

    fn fallbacks(&self) -> u64 {
        Tts::fallbacks(self)
    }
}

/// Clips made for `POST /api/voice/synthesize`, served as WAV to the teams of whoever asked for
/// them. Bounded: the oldest go first.
#[derive(Default)]
pub struct ClipStore {
    inner: Mutex<StoredClips>,
}

/// Clips by id (with the teams that may read them), and their ids oldest first.
type StoredClips = (HashMap<String, (Vec<String>, Bytes)>, VecDeque<String>);

/// Clips kept for the REST route.
pub const CLIP_STORE_LEN: usize = 256;

impl ClipStore {
    pub fn put(&self, teams: Vec<String>, wav: Bytes) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        if let Ok(mut g) = self.inner.lock() {
            let (map, order) = &mut *g;
            map.insert(id.clone(), (teams, wav));
            order.push_back(id.clone());
            while order.len() > CLIP_STORE_LEN {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
        id
    }

    /// The clip and the teams that may read it.
    pub fn get(&self, id: &str) -> Option<(Vec<String>, Bytes)> {
        self.inner.lock().ok()?.0.get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(n: usize) -> Clip {
        Clip { pcm: Bytes::from(vec![0u8; n]), sample_rate: 16_000, engine: "t".into() }
    }

    #[test]
    fn the_cache_is_bounded_by_bytes_and_keeps_the_recent() {
        let mut c = ClipCache::new(100);
        c.insert("a".into(), clip(40));
        c.insert("b".into(), clip(40));
        assert!(c.get("a").is_some(), "a is now the most recent");
        c.insert("c".into(), clip(40));
        assert!(c.get("b").is_none(), "b was the least recently used");
        assert!(c.get("a").is_some() && c.get("c").is_some());
        assert_eq!(c.bytes(), 80);
        c.insert("huge".into(), clip(1000));
        assert_eq!(c.len(), 2, "a clip over the bound is not kept");
    }

    #[test]
    fn error_bodies_are_read() {
        let b = br#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#;
        assert_eq!(error_text(b), "invalid_api_key: Invalid API key");
        let b =
            br#"{"detail":[{"loc":["body","text"],"msg":"field required","type":"value_error.missing"}]}"#;
        assert_eq!(error_text(b), "body.text: field required");
        assert_eq!(error_text(b"gateway"), "gateway");
    }

    #[test]
    fn wav_round_trips_and_stereo_becomes_mono() {
        let pcm: Vec<u8> = [100i16, -200, 300].iter().flat_map(|s| s.to_le_bytes()).collect();
        let wav = pcm16_to_wav(&pcm, 22_050).unwrap();
        assert_eq!(wav_to_pcm16(&wav).unwrap(), (pcm, 22_050));
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut out = Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
            for s in [100i16, 300, -100, -300] {
                w.write_sample(s).unwrap();
            }
            w.finalize().unwrap();
        }
        let (mono, rate) = wav_to_pcm16(&out.into_inner()).unwrap();
        assert_eq!(rate, 8000);
        assert_eq!(mono, [200i16, -200].iter().flat_map(|s| s.to_le_bytes()).collect::<Vec<u8>>());
    }
}
