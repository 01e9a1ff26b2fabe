//! Playback: what the runtime says (`voice_say` and its PCM clip) and the node's own tones, through
//! [`super::queue`]'s rules, to the speakers with rodio (cpal underneath: WASAPI, ALSA) or, with
//! `--speaker-file`, into a WAV file on a real-time timeline (silence for the gaps), for tests and
//! for drivers without an output device. Runs on its own thread: it owns the output stream (not
//! `Send`) and checks the driver's pedals every 10 ms to hold or release speech. Reads no env vars.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use pitbox_schema::wire::{MessagePriority, VoiceSay};

use super::queue::{Attention, Clip, Item, Pedals, Pushed, SayQueue};

/// Where sound goes.
#[derive(Debug, Clone, PartialEq)]
pub enum SpeakerSpec {
    /// The system's default output device.
    Default,
    /// A WAV file, 16-bit mono at [`FILE_RATE`], written in real time.
    File(PathBuf),
}

/// Samples per second of `--speaker-file`.
pub const FILE_RATE: u32 = 22_050;
/// How long a `voice_say` that announced audio waits for its clip before only its text is shown.
const CLIP_WAIT: Duration = Duration::from_secs(5);

/// The node's own sounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// A command was understood and sent: one short high beep (120 ms, 1 kHz).
    Ack,
    /// Not understood: two falling beeps (say again).
    SayAgain,
}

impl Tone {
    /// The tone as 16 kHz PCM, with 5 ms fades (no clicks).
    pub fn clip(self) -> Clip {
        let rate = 16_000u32;
        let beep = |hz: f32, ms: u32| -> Vec<i16> {
            let n = (rate * ms / 1000) as usize;
            let fade = (rate / 200) as usize;
            (0..n)
                .map(|i| {
                    let env = (i.min(n - 1 - i) as f32 / fade as f32).min(1.0);
                    let s = (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin();
                    (s * env * 0.4 * 32767.0) as i16
                })
                .collect()
        };
        let samples = match self {
            Tone::Ack => beep(1000.0, 120),
            Tone::SayAgain => {
                let mut v = beep(660.0, 120);
                v.extend(std::iter::repeat_n(0, 960));
                v.extend(beep(440.0, 160));
                v
            }
        };
        Clip { rate, samples: Arc::new(samples) }
    }
}

enum Msg {
    Say(Box<VoiceSay>),
    Audio { sequence: u32, pcm: Vec<i16> },
    Tone(Tone),
    Stop,
}

/// The handle the uplink and the voice thread talk to playback through.
#[derive(Clone)]
pub struct Player {
    tx: Sender<Msg>,
}

impl Player {
    /// A `voice_say` from the runtime; with `audio`, its clip follows through [`Player::audio`].
    pub fn say(&self, say: VoiceSay) {
        let _ = self.tx.send(Msg::Say(Box::new(say)));
    }

    /// The payload of a PCM16 media frame on the voice stream: little-endian 16-bit mono.
    pub fn audio(&self, sequence: u32, payload: &[u8]) {
        let pcm = payload.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        let _ = self.tx.send(Msg::Audio { sequence, pcm });
    }

    pub fn tone(&self, tone: Tone) {
        let _ = self.tx.send(Msg::Tone(tone));
    }

    /// Ends the playback thread (a `--speaker-file` is completed).
    pub fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
    }
}

/// The newest pedals and their age; `None` without telemetry.
pub type PedalSource = Box<dyn FnMut() -> Option<(Pedals, Duration)> + Send>;

#[derive(Debug, thiserror::Error)]
pub enum PlaybackError {
    #[error("speakers: {0}")]
    Device(String),
    #[error("--speaker-file {0}: {1}")]
    File(PathBuf, String),
}

trait Output {
    fn play(&mut self, clip: &Clip);
    /// Something is still sounding.
    fn busy(&mut self) -> bool;
    /// Cut what sounds.
    fn cut(&mut self);
    /// Called every few milliseconds.
    fn tick(&mut self) {}
    fn finish(&mut self) {}
}

struct Speakers {
    stream: rodio::OutputStream,
    sink: Option<rodio::Sink>,
    volume: f32,
}

impl Output for Speakers {
    fn play(&mut self, clip: &Clip) {
        // A fresh sink per item: dropping the old one is how an urgent item cuts in.
        let sink = rodio::Sink::connect_new(self.stream.mixer());
        sink.set_volume(self.volume);
        let samples: Vec<f32> = clip.samples.iter().map(|&s| f32::from(s) / 32768.0).collect();
        sink.append(rodio::buffer::SamplesBuffer::new(1, clip.rate, samples));
        self.sink = Some(sink);
    }

    fn busy(&mut self) -> bool {
        self.sink.as_ref().is_some_and(|s| !s.empty())
    }

    fn cut(&mut self) {
        self.sink = None;
    }
}

/// `--speaker-file`: the timeline of what the speakers would play.
struct FileOut {
    writer: Option<hound::WavWriter<std::io::BufWriter<std::fs::File>>>,
    started: Instant,
    written: u64,
    clip: Vec<i16>,
    pos: usize,
    volume: f32,
    last_flush: Instant,
}

impl FileOut {
    fn write_until_now(&mut self) {
        let Some(w) = self.writer.as_mut() else { return };
        let due = (self.started.elapsed().as_secs_f64() * f64::from(FILE_RATE)) as u64;
        while self.written < due {
            let s = match self.clip.get(self.pos) {
                Some(&s) => {
                    self.pos += 1;
                    (f32::from(s) * self.volume) as i16
                }
                None => 0,
            };
            if let Err(e) = w.write_sample(s) {
                tracing::warn!(error = %e, "--speaker-file: writing failed; no more is written");
                self.writer = None;
                return;
            }
            self.written += 1;
        }
        // Keeps the header's length current, so the file can be read while the node runs.
        if self.last_flush.elapsed() >= Duration::from_millis(200) {
            let _ = w.flush();
            self.last_flush = Instant::now();
        }
    }
}

impl Output for FileOut {
    fn play(&mut self, clip: &Clip) {
        self.write_until_now();
        self.clip = resample_linear(&clip.samples, clip.rate, FILE_RATE);
        self.pos = 0;
    }

    fn busy(&mut self) -> bool {
        self.write_until_now();
        self.pos < self.clip.len()
    }

    fn cut(&mut self) {
        self.write_until_now();
        self.clip.clear();
        self.pos = 0;
    }

    fn tick(&mut self) {
        self.write_until_now();
    }

    fn finish(&mut self) {
        self.write_until_now();
        if let Some(w) = self.writer.take() {
            if let Err(e) = w.finalize() {
                tracing::warn!(error = %e, "--speaker-file: finishing failed");
            }
        }
    }
}

/// Linear interpolation: enough for a file that stands in for speakers (it is listened to or
/// measured, not processed further).
fn resample_linear(input: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || input.is_empty() {
        return input.to_vec();
    }
    let n = (input.len() as u64 * u64::from(to) / u64::from(from.max(1))) as usize;
    let step = f64::from(from) / f64::from(to);
    (0..n)
        .map(|i| {
            let x = i as f64 * step;
            let j = x as usize;
            let f = x - j as f64;
            let a = f64::from(input[j.min(input.len() - 1)]);
            let b = f64::from(input[(j + 1).min(input.len() - 1)]);
            (a + (b - a) * f) as i16
        })
        .collect()
}

/// Starts the playback thread. `volume` is 0–100.
pub fn start(
    speaker: SpeakerSpec,
    volume: u8,
    pedals: PedalSource,
) -> Result<(Player, JoinHandle<()>), PlaybackError> {
    let (tx, rx) = channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), PlaybackError>>(1);
    let gain = f32::from(volume.min(100)) / 100.0;
    let handle = std::thread::Builder::new()
        .name("voice-playback".into())
        .spawn(move || {
            let output: Result<Box<dyn Output>, PlaybackError> = match speaker {
                SpeakerSpec::File(path) => hound::WavWriter::create(
                    &path,
                    hound::WavSpec {
                        channels: 1,
                        sample_rate: FILE_RATE,
                        bits_per_sample: 16,
                        sample_format: hound::SampleFormat::Int,
                    },
                )
                .map(|w| -> Box<dyn Output> {
                    Box::new(FileOut {
                        writer: Some(w),
                        started: Instant::now(),
                        written: 0,
                        clip: vec![],
                        pos: 0,
                        volume: gain,
                        last_flush: Instant::now(),
                    })
                })
                .map_err(|e| PlaybackError::File(path, e.to_string())),
                SpeakerSpec::Default => rodio::OutputStreamBuilder::open_default_stream()
                    .map(|mut stream| -> Box<dyn Output> {
                        stream.log_on_drop(false);
                        Box::new(Speakers { stream, sink: None, volume: gain })
                    })
                    .map_err(|e| PlaybackError::Device(e.to_string())),
            };
            match output {
                Ok(out) => {
                    let _ = ready_tx.send(Ok(()));
                    run(out, &rx, pedals);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })
        .map_err(|e| PlaybackError::Device(e.to_string()))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok((Player { tx }, handle)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(PlaybackError::Device("the playback thread ended early".into())),
    }
}

fn run(mut out: Box<dyn Output>, rx: &Receiver<Msg>, mut pedals: PedalSource) {
    let mut queue = SayQueue::new();
    let mut attention = Attention::default();
    // `voice_say`s waiting for their clip, by media sequence.
    let mut awaiting: HashMap<u32, (VoiceSay, Instant)> = HashMap::new();
    let mut was_held = false;
    loop {
        let msg = match rx.recv_timeout(Duration::from_millis(10)) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let now = Utc::now();
        let item = match msg {
            Some(Msg::Stop) => break,
            Some(Msg::Say(say)) => {
                match say.audio.as_ref() {
                    Some(a) => {
                        awaiting.insert(a.sequence, (*say, Instant::now()));
                    }
                    None => tracing::info!(text = %say.text, "voice_say without audio: shown, not spoken"),
                }
                None
            }
            Some(Msg::Audio { sequence, pcm }) => match awaiting.remove(&sequence) {
                Some((say, _)) => {
                    let rate = say.audio.as_ref().map_or(16_000, |a| a.sample_rate);
                    Some(Item {
                        id: say.id,
                        text: say.text,
                        priority: say.priority,
                        expires_at: say.expires_at,
                        clip: Clip { rate, samples: Arc::new(pcm) },
                    })
                }
                None => {
                    tracing::warn!(sequence, "a voice clip with no voice_say before it; not played");
                    None
                }
            },
            Some(Msg::Tone(t)) => Some(Item {
                id: format!("tone:{t:?}"),
                // Not words: two tones never collapse into a spoken item.
                text: format!("\u{1}{t:?}"),
                // The driver just spoke and waits for it: never held, cuts into tips.
                priority: MessagePriority::Urgent,
                expires_at: Some(now + chrono::Duration::seconds(2)),
                clip: t.clip(),
            }),
            None => None,
        };
        awaiting.retain(|seq, (say, since)| {
            let keep = since.elapsed() < CLIP_WAIT;
            if !keep {
                tracing::warn!(sequence = seq, text = %say.text, "a voice_say's clip never came; text only");
            }
            keep
        });
        if let Some(item) = item {
            let text = item.text.clone();
            match queue.push(item, now) {
                Pushed::Preempt => {
                    tracing::info!(%text, "urgent: interrupting");
                    out.cut();
                    queue.finished();
                }
                Pushed::Expired => tracing::info!(%text, "expired before it could be said; dropped"),
                Pushed::Collapsed => tracing::debug!(%text, "said already; collapsed"),
                Pushed::Queued => {}
            }
        }
        out.tick();
        if queue.playing().is_some() && !out.busy() {
            queue.finished();
        }
        let held = attention.update(pedals(), Instant::now());
        if held != was_held && !queue.is_empty() {
            tracing::debug!(held, waiting = queue.len(), "speech {}", if held { "held" } else { "released" });
        }
        was_held = held;
        if queue.playing().is_none() {
            if let Some(next) = queue.next(now, held) {
                tracing::info!(text = %next.text, priority = ?next.priority, "speaking");
                out.play(&next.clip);
            }
        }
    }
    out.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tones_are_short_and_distinct() {
        let ack = Tone::Ack.clip();
        assert_eq!(ack.duration(), Duration::from_millis(120));
        assert!(Tone::SayAgain.clip().duration() > Duration::from_millis(300));
        assert_eq!(resample_linear(&[0, 100, 200, 300], 2, 4).len(), 8);
    }

    fn samples(path: &std::path::Path) -> Vec<i16> {
        hound::WavReader::open(path)
            .map(|r| r.into_samples::<i16>().filter_map(Result::ok).collect())
            .unwrap_or_default()
    }

    fn wait_for(what: &str, path: &std::path::Path, cond: impl Fn(&[i16]) -> bool) -> Vec<i16> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = samples(path);
            if cond(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "{what} within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The playback thread with its pedals: a tip waits while the driver brakes and plays once the
    /// car has been on a straight for `FREE_FOR`, into a `--speaker-file` on a real-time timeline.
    #[test]
    fn a_tip_waits_for_the_straight() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("speaker.wav");
        let braking = Arc::new(AtomicBool::new(true));
        let b = braking.clone();
        let (player, handle) = start(
            SpeakerSpec::File(path.clone()),
            100,
            Box::new(move || {
                let brake = if b.load(Ordering::Relaxed) { 80.0 } else { 0.0 };
                Some((Pedals { brake, throttle: 100.0 - brake, steering: 0.0 }, Duration::ZERO))
            }),
        )
        .unwrap();
        player.say(VoiceSay {
            id: "t".into(),
            kind: pitbox_schema::wire::SayKind::Coaching,
            text: "brake later into turn one".into(),
            priority: MessagePriority::Normal,
            reply_to: None,
            expires_at: None,
            audio: Some(pitbox_schema::wire::SayAudio {
                sequence: 7,
                sample_rate: 16_000,
                duration_ms: 200,
                engine: "test".into(),
            }),
        });
        let tone: Vec<u8> = Tone::Ack.clip().samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        player.audio(7, &tone);
        let rate = FILE_RATE as usize;
        let held = wait_for("half a second of the timeline", &path, |s| s.len() >= rate / 2);
        assert!(held.iter().all(|&s| s == 0), "nothing plays while braking");
        braking.store(false, Ordering::Relaxed);
        // The release lands on the file's own timeline between these two readings (measured there,
        // not by the wall clock, which a loaded machine or wine moves apart from it).
        let after = wait_for("the timeline at the release", &path, |_| true);
        let (from, to) =
            (held.len() as f64 / f64::from(FILE_RATE), after.len() as f64 / f64::from(FILE_RATE));
        let file = wait_for("the tip", &path, |s| s.iter().any(|&x| x != 0));
        let first = file.iter().position(|&x| x != 0).unwrap() as f64 / f64::from(FILE_RATE);
        let free = super::super::queue::FREE_FOR.as_secs_f64();
        assert!(
            first >= from + free - 0.05 && first < to + free + 0.3,
            "tip at {first:.3} s, released between {from:.3} and {to:.3} s of the timeline"
        );
        player.stop();
        handle.join().unwrap();
    }
}
