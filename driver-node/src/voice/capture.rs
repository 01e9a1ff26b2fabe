//! The microphone: a cpal input stream (WASAPI on Windows, ALSA on Linux) or a WAV file
//! (`--mic-file`, read with hound and paced in real time), down-mixed to mono and resampled to
//! 16 kHz with rubato's FFT resampler, delivered as 10 ms frames (160 samples) — the frame size the
//! voice-activity detector takes. Runs on its own thread (cpal streams are not `Send`).
//! Reads no env vars.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rubato::Resampler as _;

/// Samples per second the recogniser takes.
pub const RATE: u32 = 16_000;
/// Samples in one 10 ms frame at [`RATE`].
pub const FRAME: usize = 160;

/// Where the driver's voice comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum MicSpec {
    /// The system's default input device.
    Default,
    /// The input device whose name contains this (as `devices` lists it).
    Named(String),
    /// A WAV file, played in real time (tests, and trying the node without a microphone).
    File(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("no microphone found{0}")]
    NoDevice(String),
    #[error("microphone: {0}")]
    Device(String),
    #[error("--mic-file {0}: {1}")]
    File(PathBuf, String),
    #[error("resampler: {0}")]
    Resample(String),
}

/// Turns mono audio at any rate into 16 kHz frames of [`FRAME`] samples.
pub struct To16k {
    resampler: Option<rubato::FftFixedIn<f32>>,
    pending_in: Vec<f32>,
    pending_out: Vec<f32>,
}

impl To16k {
    pub fn new(rate: u32) -> Result<Self, CaptureError> {
        let resampler = if rate == RATE {
            None
        } else {
            Some(
                rubato::FftFixedIn::<f32>::new(rate as usize, RATE as usize, 1024, 2, 1)
                    .map_err(|e| CaptureError::Resample(e.to_string()))?,
            )
        };
        Ok(Self { resampler, pending_in: vec![], pending_out: vec![] })
    }

    /// Feeds mono samples; returns the whole 16 kHz frames now complete.
    pub fn push(&mut self, mono: &[f32]) -> Vec<Vec<f32>> {
        match self.resampler.as_mut() {
            None => self.pending_out.extend_from_slice(mono),
            Some(r) => {
                self.pending_in.extend_from_slice(mono);
                loop {
                    let need = r.input_frames_next();
                    if self.pending_in.len() < need {
                        break;
                    }
                    let chunk: Vec<f32> = self.pending_in.drain(..need).collect();
                    match r.process(&[chunk], None) {
                        Ok(mut out) => self.pending_out.append(&mut out[0]),
                        Err(e) => tracing::warn!(error = %e, "resampling failed; a chunk of audio is lost"),
                    }
                }
            }
        }
        let whole = self.pending_out.len() / FRAME * FRAME;
        self.pending_out.drain(..whole).collect::<Vec<_>>().chunks(FRAME).map(<[f32]>::to_vec).collect()
    }
}

/// A running capture: 10 ms frames at 16 kHz arrive on `frames`; the channel closes when the
/// source ends (the end of a `--mic-file`) or `stop` is set.
pub struct Capture {
    pub frames: Receiver<Vec<f32>>,
    pub handle: JoinHandle<()>,
    pub describe: String,
}

/// Frames waiting for the voice thread at most (5 s); beyond that the oldest are dropped.
const QUEUE: usize = 500;

pub fn start(spec: MicSpec, stop: Arc<AtomicBool>) -> Result<Capture, CaptureError> {
    let (tx, rx) = sync_channel(QUEUE);
    let (ready_tx, ready_rx) = sync_channel::<Result<String, CaptureError>>(1);
    let handle = std::thread::Builder::new()
        .name("voice-capture".into())
        .spawn(move || {
            let r = match spec {
                MicSpec::File(path) => file_loop(&path, &tx, &stop, &ready_tx),
                other => device_loop(&other, &tx, &stop, &ready_tx),
            };
            if let Err(e) = r {
                // Before `ready`, the error goes to the caller; after it, to the log.
                if ready_tx.try_send(Err(e)).is_err() {
                    tracing::warn!("the microphone stopped");
                }
            }
        })
        .map_err(|e| CaptureError::Device(e.to_string()))?;
    match ready_rx.recv() {
        Ok(Ok(describe)) => Ok(Capture { frames: rx, handle, describe }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(CaptureError::Device("the capture thread ended early".into())),
    }
}

fn send(tx: &SyncSender<Vec<f32>>, frame: Vec<f32>) -> bool {
    match tx.try_send(frame) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            tracing::debug!("voice thread behind; a microphone frame is dropped");
            true
        }
        Err(TrySendError::Disconnected(_)) => false,
    }
}

fn file_loop(
    path: &PathBuf,
    tx: &SyncSender<Vec<f32>>,
    stop: &AtomicBool,
    ready: &SyncSender<Result<String, CaptureError>>,
) -> Result<(), CaptureError> {
    let err = |e: &dyn std::fmt::Display| CaptureError::File(path.clone(), e.to_string());
    let reader = hound::WavReader::open(path).map_err(|e| err(&e))?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => {
            reader.into_samples::<f32>().collect::<Result<_, _>>().map_err(|e| err(&e))?
        }
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(|e| err(&e))?
        }
    };
    let mono: Vec<f32> = samples.chunks(channels).map(|c| c.iter().sum::<f32>() / c.len() as f32).collect();
    // A second of silence after the file, so an utterance at its very end is closed by the
    // detector's hangover like one spoken live.
    let tail = vec![0.0; spec.sample_rate as usize];
    let step = (spec.sample_rate as usize / 100).max(1);
    let mut to16 = To16k::new(spec.sample_rate)?;
    let _ = ready.send(Ok(format!("{} ({} Hz, {} ch)", path.display(), spec.sample_rate, channels)));
    let start = Instant::now();
    let mut sent = 0usize;
    for chunk in mono.chunks(step).chain(tail.chunks(step)) {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        for f in to16.push(chunk) {
            // Real time: a frame goes when it would have been spoken.
            sent += 1;
            let due = start + Duration::from_millis(sent as u64 * 10);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if !send(tx, f) {
                return Ok(());
            }
        }
    }
    Ok(())
}

fn device_loop(
    spec: &MicSpec,
    tx: &SyncSender<Vec<f32>>,
    stop: &AtomicBool,
    ready: &SyncSender<Result<String, CaptureError>>,
) -> Result<(), CaptureError> {
    use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
    let host = cpal::default_host();
    let device = match spec {
        MicSpec::Named(want) => host
            .input_devices()
            .map_err(|e| CaptureError::Device(e.to_string()))?
            .find(|d| d.name().is_ok_and(|n| n.contains(want.as_str())))
            .ok_or_else(|| CaptureError::NoDevice(format!(" named like {want:?}")))?,
        _ => host.default_input_device().ok_or_else(|| CaptureError::NoDevice(String::new()))?,
    };
    let name = device.name().unwrap_or_else(|_| "?".into());
    let config = device.default_input_config().map_err(|e| CaptureError::Device(e.to_string()))?;
    let channels = usize::from(config.channels().max(1));
    let rate = config.sample_rate().0;
    // The callback only down-mixes and hands over; resampling happens on this thread.
    let (raw_tx, raw_rx) = sync_channel::<Vec<f32>>(256);
    let on_error = |e: cpal::StreamError| tracing::warn!(error = %e, "microphone stream error");
    let stream_config: cpal::StreamConfig = config.clone().into();
    let stream = match config.sample_format() {
        cpal::SampleFormat::F32 => device.build_input_stream(
            &stream_config,
            move |data: &[f32], _: &_| {
                let _ = raw_tx.try_send(
                    data.chunks(channels).map(|c| c.iter().sum::<f32>() / c.len() as f32).collect(),
                );
            },
            on_error,
            None,
        ),
        cpal::SampleFormat::I16 => device.build_input_stream(
            &stream_config,
            move |data: &[i16], _: &_| {
                let _ = raw_tx.try_send(
                    data.chunks(channels)
                        .map(|c| c.iter().map(|&s| f32::from(s) / 32768.0).sum::<f32>() / c.len() as f32)
                        .collect(),
                );
            },
            on_error,
            None,
        ),
        other => return Err(CaptureError::Device(format!("unsupported sample format {other:?}"))),
    }
    .map_err(|e| CaptureError::Device(e.to_string()))?;
    stream.play().map_err(|e| CaptureError::Device(e.to_string()))?;
    let mut to16 = To16k::new(rate)?;
    let _ = ready.send(Ok(format!("{name} ({rate} Hz, {channels} ch)")));
    while !stop.load(Ordering::Relaxed) {
        match raw_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(mono) => {
                for f in to16.push(&mono) {
                    if !send(tx, f) {
                        return Ok(());
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_44k1_tone_comes_out_at_16k_with_its_pitch() {
        let mut r = To16k::new(44_100).unwrap();
        let input: Vec<f32> = (0..44_100)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 44_100.0).sin() * 0.5)
            .collect();
        let out: Vec<f32> = input.chunks(441).flat_map(|c| r.push(c)).flatten().collect();
        assert!((15_000..=16_000).contains(&out.len()), "{}", out.len());
        // Zero crossings of a 440 Hz tone: 880 a second.
        let body = &out[2000..14_000];
        let crossings = body.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
        let per_sec = crossings as f32 / (body.len() as f32 / 16_000.0);
        assert!((per_sec - 880.0).abs() < 10.0, "{per_sec}");
    }
}
