//! Onboard video on the driver node: a capture thread paced to the frame rate grabs the screen
//! ([`capture`]), scales and converts it to I420 ([`convert`]) and encodes it to H.264
//! ([`encode`]); each encoded picture becomes one binary WebSocket frame with the media header of
//! `pitbox_schema::wire::media`, handed to the uplink through a channel of [`QUEUE`] frames. The uplink
//! sends telemetry and acknowledgements first; when it cannot keep up the channel is full and the
//! thread drops frames up to the next keyframe (nothing queues) and lowers the bitrate, raising it
//! again step by step once the uplink has kept up for [`RAISE_AFTER`].
//!
//! The runtime pauses the thread when nobody watches (`video_control pause`: no capture, no
//! encoding) and resumes it with a keyframe for the first viewer; the thread starts paused and goes
//! back to pause whenever the uplink is down. Reads no env vars (X11 capture reads `DISPLAY`).

pub mod capture;
pub mod convert;
pub mod encode;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pitbox_schema::wire::media::{Codec, MediaHeader, NODE_VIDEO_STREAM};
use pitbox_schema::wire::VideoAction;

use capture::{Capture, CaptureError, SourceSpec};
use convert::I420;
use encode::{EncodeSettings, H264Encoder};

/// Encoded frames waiting for the uplink at most; past it frames are dropped.
pub const QUEUE: usize = 2;
/// The uplink must keep up this long before the bitrate is raised a step.
pub const RAISE_AFTER: Duration = Duration::from_secs(5);
/// The bitrate is never lowered below this.
pub const MIN_BITRATE: u32 = 150_000;

/// How the node captures and encodes.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoOptions {
    pub source: SourceSpec,
    pub width: usize,
    pub height: usize,
    pub fps: u32,
    pub bitrate_bps: u32,
    pub keyframe_secs: f32,
}

impl Default for VideoOptions {
    fn default() -> Self {
        Self {
            source: SourceSpec::Screen(0),
            width: 1280,
            height: 720,
            fps: 30,
            bitrate_bps: 2_500_000,
            keyframe_secs: 2.0,
        }
    }
}

/// Reads `WIDTHxHEIGHT@FPS` (`1280x720@30`; `@FPS` may be left out).
pub fn parse_mode(s: &str) -> Result<(usize, usize, u32), String> {
    let bad = || format!("{s:?}: expected WIDTHxHEIGHT@FPS, e.g. 1280x720@30");
    let (size, fps) = s.split_once('@').unwrap_or((s, "30"));
    let (w, h) = size.split_once('x').ok_or_else(bad)?;
    let (w, h): (usize, usize) = (w.trim().parse().map_err(|_| bad())?, h.trim().parse().map_err(|_| bad())?);
    let fps: u32 = fps.trim().parse().map_err(|_| bad())?;
    if !(16..=3840).contains(&w) || !(16..=2160).contains(&h) || w % 2 != 0 || h % 2 != 0 {
        return Err(format!("{s:?}: width and height must be even, 16–3840 × 16–2160"));
    }
    if !(1..=60).contains(&fps) {
        return Err(format!("{s:?}: frame rate must be 1–60"));
    }
    Ok((w, h, fps))
}

/// Counters of the video thread (for the status, `doctor` and tests).
#[derive(Debug, Default)]
pub struct VideoCounters {
    pub captured: AtomicU64,
    pub encoded: AtomicU64,
    pub keyframes: AtomicU64,
    /// Frames dropped because the uplink was behind (or waiting for a keyframe after that).
    pub dropped: AtomicU64,
    pub bytes: AtomicU64,
    /// Microseconds spent grabbing, converting and encoding, summed.
    pub work_us: AtomicU64,
}

/// Shared between the video thread and the uplink.
#[derive(Debug)]
pub struct VideoControl {
    paused: Mutex<bool>,
    wake: Condvar,
    keyframe: AtomicBool,
    stop: AtomicBool,
    bitrate: AtomicU32,
    target: u32,
    pub counters: VideoCounters,
}

impl VideoControl {
    fn new(target: u32) -> Self {
        Self {
            paused: Mutex::new(true),
            wake: Condvar::new(),
            keyframe: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            bitrate: AtomicU32::new(target),
            target,
            counters: VideoCounters::default(),
        }
    }

    /// What the runtime asked (`video_control`).
    pub fn apply(&self, action: VideoAction) {
        match action {
            VideoAction::Pause => self.set_paused(true),
            VideoAction::Resume => {
                self.keyframe.store(true, Ordering::Relaxed);
                self.set_paused(false);
            }
            VideoAction::Keyframe => self.keyframe.store(true, Ordering::Relaxed),
        }
    }

    pub fn set_paused(&self, paused: bool) {
        if let Ok(mut p) = self.paused.lock() {
            *p = paused;
        }
        self.wake.notify_all();
    }

    pub fn paused(&self) -> bool {
        self.paused.lock().map(|p| *p).unwrap_or(true)
    }

    /// The bitrate the encoder is asked for now.
    pub fn bitrate(&self) -> u32 {
        self.bitrate.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.notify_all();
    }

    /// Waits while paused (at most `max`); `true` if still paused.
    fn wait_paused(&self, max: Duration) -> bool {
        let Ok(p) = self.paused.lock() else { return true };
        if !*p {
            return false;
        }
        match self.wake.wait_timeout(p, max) {
            Ok((p, _)) => *p,
            Err(_) => true,
        }
    }
}

/// The uplink's end: encoded frames (media header included) and the control.
pub struct VideoLink {
    pub frames: tokio::sync::mpsc::Receiver<Vec<u8>>,
    pub control: Arc<VideoControl>,
}

/// The running video thread.
pub struct VideoThread {
    pub control: Arc<VideoControl>,
    pub handle: JoinHandle<Result<(), String>>,
    pub describe: String,
}

/// Microseconds since the Unix epoch, the media header's capture time.
pub fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Opens the capture source here (so a missing screen is reported at once) and starts the thread.
pub fn start(options: VideoOptions) -> Result<(VideoLink, VideoThread), CaptureError> {
    let capture = capture::open(&options.source)?;
    start_with(capture, options)
}

/// Starts the thread over an already open source.
pub fn start_with(
    capture: Box<dyn Capture>,
    options: VideoOptions,
) -> Result<(VideoLink, VideoThread), CaptureError> {
    let settings = EncodeSettings {
        fps: options.fps,
        bitrate_bps: options.bitrate_bps,
        keyframe_secs: options.keyframe_secs.min(2.0),
    };
    let encoder = H264Encoder::new(settings).map_err(|e| CaptureError::Unavailable(e.to_string()))?;
    let control = Arc::new(VideoControl::new(options.bitrate_bps));
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
    let describe = capture.describe();
    let c = control.clone();
    let handle = std::thread::Builder::new()
        .name("pitbox-video".into())
        .spawn(move || run(capture, encoder, options, c, tx))
        .map_err(|e| CaptureError::Failed(e.to_string()))?;
    Ok((VideoLink { frames: rx, control: control.clone() }, VideoThread { control, handle, describe }))
}

fn run(
    mut capture: Box<dyn Capture>,
    mut encoder: H264Encoder,
    options: VideoOptions,
    control: Arc<VideoControl>,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
) -> Result<(), String> {
    let interval = Duration::from_secs_f64(1.0 / f64::from(options.fps.max(1)));
    let mut picture = I420::new(options.width, options.height);
    let mut converter = convert::Converter::new();
    let mut next = Instant::now();
    let mut seq = 0u32;
    let mut need_key = true;
    let mut kept_up_since = Instant::now();
    let mut failures = 0u32;
    while !control.stop.load(Ordering::Relaxed) {
        if control.wait_paused(Duration::from_millis(250)) {
            need_key = true;
            next = Instant::now();
            continue;
        }
        // Paced, not spun: sleep to the next tick; a late tick is not caught up.
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next += interval;
        if next + interval < Instant::now() {
            next = Instant::now();
        }
        let started = Instant::now();
        let capture_us = now_us();
        let grabbed = match capture.grab() {
            Ok(frame) => converter.convert(frame, &mut picture).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = grabbed {
            failures += 1;
            if failures == 1 || failures.is_multiple_of(300) {
                tracing::warn!(error = %e, failures, "screen capture failed; retrying");
            }
            continue;
        }
        failures = 0;
        control.counters.captured.fetch_add(1, Ordering::Relaxed);
        // Bitrate: back up to the target step by step once the uplink kept up for a while.
        let current = control.bitrate();
        if current < control.target && kept_up_since.elapsed() >= RAISE_AFTER {
            let up = (u64::from(current) * 115 / 100).min(u64::from(control.target)) as u32;
            control.bitrate.store(up, Ordering::Relaxed);
            kept_up_since = Instant::now();
        }
        if control.bitrate() != encoder.settings().bitrate_bps {
            encoder.set_bitrate(control.bitrate()).map_err(|e| e.to_string())?;
            tracing::debug!(bps = control.bitrate(), "video bitrate changed");
        }
        if control.keyframe.swap(false, Ordering::Relaxed) || need_key {
            encoder.request_keyframe();
        }
        let encoded = encoder.encode(&picture).map_err(|e| e.to_string())?;
        control.counters.work_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        let Some(encoded) = encoded else { continue };
        seq = seq.wrapping_add(1);
        control.counters.encoded.fetch_add(1, Ordering::Relaxed);
        if need_key && !encoded.keyframe {
            control.counters.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let header = MediaHeader {
            codec: Codec::H264,
            keyframe: encoded.keyframe,
            stream: NODE_VIDEO_STREAM,
            sequence: seq,
            capture_us,
            width: picture.width as u16,
            height: picture.height as u16,
        };
        let len = encoded.data.len() as u64;
        match tx.try_send(header.frame(&encoded.data)) {
            Ok(()) => {
                need_key = false;
                control.counters.bytes.fetch_add(len, Ordering::Relaxed);
                if encoded.keyframe {
                    control.counters.keyframes.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                // The uplink is behind: drop up to the next keyframe and lower the bitrate.
                control.counters.dropped.fetch_add(1, Ordering::Relaxed);
                if !need_key {
                    let down = (u64::from(control.bitrate()) * 70 / 100).max(u64::from(MIN_BITRATE)) as u32;
                    control.bitrate.store(down.min(control.target), Ordering::Relaxed);
                    tracing::debug!(bps = down, "uplink behind: video dropped to the next keyframe");
                }
                need_key = true;
                kept_up_since = Instant::now();
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => break,
        }
    }
    Ok(())
}

/// Capture + convert + encode speed of `options` over `frames` frames: (source, ms per frame,
/// bytes per frame). For `doctor` and the benchmark.
pub fn measure(options: &VideoOptions, frames: u32) -> Result<(String, f64, f64), String> {
    let mut capture = capture::open(&options.source).map_err(|e| e.to_string())?;
    let settings = EncodeSettings { fps: options.fps, bitrate_bps: options.bitrate_bps, keyframe_secs: 2.0 };
    let mut encoder = H264Encoder::new(settings).map_err(|e| e.to_string())?;
    let mut picture = I420::new(options.width, options.height);
    let mut converter = convert::Converter::new();
    let (mut bytes, started) = (0usize, Instant::now());
    for _ in 0..frames {
        let f = capture.grab().map_err(|e| e.to_string())?;
        converter.convert(f, &mut picture).map_err(|e| e.to_string())?;
        if let Some(e) = encoder.encode(&picture).map_err(|e| e.to_string())? {
            bytes += e.data.len();
        }
    }
    let n = f64::from(frames.max(1));
    Ok((capture.describe(), started.elapsed().as_secs_f64() * 1000.0 / n, bytes as f64 / n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!(parse_mode("1280x720@30"), Ok((1280, 720, 30)));
        assert_eq!(parse_mode("640x360"), Ok((640, 360, 30)));
        assert!(parse_mode("1281x720@30").is_err());
        assert!(parse_mode("1280x720@0").is_err());
        assert!(parse_mode("big").is_err());
    }

    /// The pattern through the whole thread: paused at first; resumed, the first frame is a
    /// keyframe, sequence numbers count up and the pictures decode back to the counter drawn.
    #[test]
    fn thread_encodes_the_pattern_after_resume() {
        let options = VideoOptions {
            source: SourceSpec::Pattern { width: 320, height: 192 },
            width: 320,
            height: 192,
            fps: 60,
            bitrate_bps: 1_000_000,
            keyframe_secs: 1.0,
        };
        let (mut link, thread) = start(options).unwrap();
        assert!(link.frames.try_recv().is_err(), "starts paused");
        link.control.apply(VideoAction::Resume);
        let mut decoder = encode::H264Decoder::new().unwrap();
        let mut last = None;
        for i in 0..10 {
            let frame = link.frames.blocking_recv().unwrap();
            let (h, at) = MediaHeader::decode(&frame).unwrap();
            assert_eq!((h.width, h.height), (320, 192));
            if i == 0 {
                assert!(h.keyframe);
            }
            if let Some(prev) = last {
                assert!(h.sequence > prev);
            }
            last = Some(h.sequence);
            let pic = decoder.decode(&frame[at..]).unwrap().unwrap();
            assert!(capture::read_bars(pic.y(), 320, 192) > 0);
        }
        thread.control.stop();
        drop(link);
        thread.handle.join().unwrap().unwrap();
    }
}
