//! Playback on a real sound server: a private PulseAudio daemon with a null sink, reached through
//! ALSA's pulse plugin by rodio/cpal as the node would reach speakers, while `parec` records the
//! sink's monitor in real time. A tip (500 Hz, 1 s) starts, an urgent alert (1200 Hz, 300 ms) cuts
//! into it, and the recording must show the tip, then the alert at once, the tip never resuming,
//! with the alert's length kept (real-time pacing end to end). Then the microphone path on the
//! same server: espeak-ng's "box this lap" played (`paplay`) into a second null sink whose monitor
//! is the default source, captured by the node through cpal (ALSA → pulse), resampled to 16 kHz
//! and cut by the voice-activity detector into one utterance as long as the speech.
//!
//! One test in its own binary (it sets `PULSE_SERVER` for this process). Needs `pulseaudio`,
//! `espeak-ng`, `parec`, `pactl`, `paplay` (pulseaudio-utils) and `libasound2-plugins`
//! (tools/setup.sh): without them the test fails, naming the part, unless
//! `PITBOX_SKIP_DEVICE_TESTS=1` and `CI` is not `true` (then it is skipped with a note).
//! Env: `PITBOX_SKIP_DEVICE_TESTS`, `CI`. Linux only.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{start_pulse, Killed};
use pitbox_driver::voice::capture::{self, MicSpec};
use pitbox_driver::voice::playback::{self, SpeakerSpec};
use pitbox_driver::voice::segment::{Segmenter, WebRtc};
use pitbox_schema::wire::{MessagePriority, SayAudio, SayKind, VoiceSay};

/// Fails, or (allowed outside CI) skips with a note.
fn missing(why: &str) -> bool {
    common::missing("voice playback test", why)
}

const RATE: u32 = 16_000;

fn tone(hz: f32, ms: u32) -> Vec<u8> {
    let n = (RATE * ms / 1000) as usize;
    (0..n)
        .flat_map(|i| {
            (((2.0 * std::f32::consts::PI * hz * i as f32 / RATE as f32).sin() * 0.5 * 32767.0) as i16)
                .to_le_bytes()
        })
        .collect()
}

fn say(id: &str, priority: MessagePriority, sequence: u32, ms: u32) -> VoiceSay {
    VoiceSay {
        id: id.into(),
        kind: SayKind::Coaching,
        text: id.into(),
        priority,
        reply_to: None,
        expires_at: None,
        audio: Some(SayAudio { sequence, sample_rate: RATE, duration_ms: ms, engine: "test".into() }),
    }
}

/// Power of `hz` in a block (Goertzel).
fn power(block: &[i16], hz: f32) -> f32 {
    let w = 2.0 * std::f32::consts::PI * hz / RATE as f32;
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in block {
        let s = f32::from(x) / 32768.0 + 2.0 * w.cos() * s1 - s2;
        (s2, s1) = (s1, s);
    }
    (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / block.len() as f32
}

/// What each 10 ms block of the recording holds: 5 (500 Hz), 12 (1200 Hz) or 0.
fn classify(rec: &[i16]) -> Vec<u8> {
    rec.chunks_exact(160)
        .map(|b| {
            let (p5, p12) = (power(b, 500.0), power(b, 1200.0));
            if p5.max(p12) < 1.0 {
                0
            } else if p5 > p12 {
                5
            } else {
                12
            }
        })
        .collect()
}

#[test]
fn playback_and_the_microphone_on_a_real_sound_server() {
    let dir = tempfile::tempdir().unwrap();
    let _pulse = match start_pulse(dir.path(), &["module-null-sink sink_name=pitbox_null rate=48000"]) {
        Ok(p) => p,
        Err(e) => {
            missing(&e);
            return;
        }
    };
    std::env::set_var("PULSE_SERVER", format!("unix:{}", dir.path().join("native").display()));
    let parec = Command::new("parec")
        .args([
            "-d",
            "pitbox_null.monitor",
            "--raw",
            "--format=s16le",
            "--rate=16000",
            "--channels=1",
            "--latency-msec=20",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut parec = match parec {
        Ok(p) => Killed(p),
        Err(e) => {
            missing(&format!("no parec ({e}); install `pulseaudio-utils`"));
            return;
        }
    };
    let recorded = Arc::new(Mutex::new(Vec::<i16>::new()));
    {
        let (recorded, mut out) = (recorded.clone(), parec.0.stdout.take().unwrap());
        std::thread::spawn(move || {
            let mut buf = [0u8; 640];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut r = recorded.lock().unwrap();
                r.extend(buf[..n - n % 2].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])));
            }
        });
    }
    let wait = |what: &str, secs: u64, cond: &dyn Fn(&[u8]) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let blocks = classify(&recorded.lock().unwrap());
            if cond(&blocks) {
                return blocks;
            }
            assert!(Instant::now() < deadline, "{what} within {secs} s; blocks: {blocks:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // The monitor runs in real time (silence) before anything plays.
    wait("the monitor recording", 10, &|b| b.len() >= 20);

    let (player, handle) = match playback::start(SpeakerSpec::Default, 100, Box::new(|| None)) {
        Ok(p) => p,
        Err(e) => {
            missing(&format!("{e}; install `libasound2-plugins` (ALSA's pulse plugin)"));
            return;
        }
    };
    let asked = Instant::now();
    let before = recorded.lock().unwrap().len() / 160;
    player.say(say("tip", MessagePriority::Low, 1, 1000));
    player.audio(1, &tone(500.0, 1000));
    wait("the tip", 10, &|b| b[before..].iter().filter(|&&c| c == 5).count() >= 10);
    let latency = asked.elapsed();
    player.say(say("alert", MessagePriority::Urgent, 2, 300));
    player.audio(2, &tone(1200.0, 300));
    // Then a second of what follows (the tip must not come back).
    let blocks = wait("the alert and a second after it", 10, &|b| {
        b.iter().rposition(|&c| c == 12).is_some_and(|last| b.len() > last + 100)
    });
    let blocks = &blocks[before..];
    let count = |c: u8| blocks.iter().filter(|&&x| x == c).count();
    let first12 = blocks.iter().position(|&c| c == 12).unwrap();
    let last5 = blocks.iter().rposition(|&c| c == 5).unwrap();
    eprintln!(
        "first sound {latency:?} after asking; tip {} ms, alert {} ms (blocks of 10 ms)",
        count(5) * 10,
        count(12) * 10
    );
    assert!(count(5) * 10 < 800, "the tip was cut short: {} ms of it", count(5) * 10);
    assert!(last5 < first12 + 3, "the tip does not resume after the alert: {blocks:?}");
    assert!((250..=350).contains(&(count(12) * 10)), "the alert plays in real time: {} ms", count(12) * 10);
    assert!(latency < Duration::from_millis(800), "{latency:?}");

    player.stop();
    handle.join().unwrap();

    // --- The microphone: a null sink fed with speech, its monitor as the default source.
    let pactl = |args: &[&str]| {
        let out = Command::new("pactl").args(args).output().unwrap();
        assert!(out.status.success(), "pactl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    pactl(&["load-module", "module-null-sink", "sink_name=mic_feed"]);
    pactl(&["set-default-source", "mic_feed.monitor"]);
    let wav = dir.path().join("box.wav");
    assert!(Command::new("espeak-ng").arg("-w").arg(&wav).arg("box this lap").status().unwrap().success());
    let spoken = {
        let r = hound::WavReader::open(&wav).unwrap();
        r.duration() as f64 / f64::from(r.spec().sample_rate)
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cap = capture::start(MicSpec::Default, stop.clone()).unwrap();
    eprintln!("microphone: {}", cap.describe);
    let mut segmenter = Segmenter::new(WebRtc::new());
    // A little silence first, so the detector has a floor; then the speech, in real time.
    let mut frames = 0;
    let mut play: Option<Killed> = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    let utterance = loop {
        assert!(Instant::now() < deadline, "no utterance from the microphone within 20 s ({frames} frames)");
        let Ok(f) = cap.frames.recv_timeout(Duration::from_secs(5)) else { panic!("the microphone stopped") };
        assert_eq!(f.len(), pitbox_driver::voice::capture::FRAME);
        frames += 1;
        if frames == 30 {
            play = Some(Killed(Command::new("paplay").args(["-d", "mic_feed"]).arg(&wav).spawn().unwrap()));
        }
        if let Some(u) = segmenter.push(f) {
            break u;
        }
    };
    drop(play);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let secs = utterance.len() as f64 / 16_000.0;
    eprintln!("utterance of {secs:.2} s from {spoken:.2} s of speech through the microphone");
    assert!(secs > spoken * 0.6 && secs < spoken + 0.6, "utterance {secs:.2} s for {spoken:.2} s spoken");
    cap.handle.join().unwrap();
}
