//! Voice end to end, every part real: a spoken question (espeak-ng) as the microphone of a real
//! `pitbox-driver run` process → whisper (tiny.en) → the recogniser → `voice_command` → the
//! runtime's `VoiceChannel` answering from the live synthetic telemetry → espeak-ng → a PCM media
//! frame back to the node → its speaker file. The speaker file is then transcribed back with
//! whisper: the answer must be about fuel, with a number.
//!
//! Env: `CI` (missing espeak-ng, sox or the whisper model fail the test instead of skipping it),
//! `PITBOX_WHISPER_MODEL` (the model; default `~/.cache/pitbox/models/ggml-tiny.en.bin`, which
//! `tools/setup.sh` fetches), `CARGO_TARGET_DIR` (through the process support).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/processes.rs"]
mod processes;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Backend;
use pitbox_driver::voice::stt::{model_path_default, SttSettings, Transcriber};
use processes::*;

/// The whisper model and the audio tools, or `None` (skip) outside CI.
fn tools() -> Option<PathBuf> {
    let model = model_path_default();
    let missing: Vec<String> = ["espeak-ng", "sox"]
        .into_iter()
        .filter(|t| Command::new(t).arg("--version").output().is_err())
        .map(str::to_owned)
        .chain((!model.is_file()).then(|| format!("the whisper model {}", model.display())))
        .collect();
    if missing.is_empty() {
        return Some(model);
    }
    let what = format!("voice end to end needs {} (tools/setup.sh installs them)", missing.join(", "));
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{what}");
    eprintln!("skipped: {what}");
    None
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The speaker file as 16 kHz mono samples (sox resamples the node's 22.05 kHz timeline), or
/// `None` while it cannot be read yet.
fn heard(speaker: &Path, scratch: &Path) -> Option<Vec<f32>> {
    let out = Command::new("sox")
        .arg(speaker)
        .args(["-r", "16000", "-c", "1", "-b", "16"])
        .arg(scratch)
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !out.success() {
        return None;
    }
    let mut r = hound::WavReader::open(scratch).ok()?;
    Some(r.samples::<i16>().filter_map(Result::ok).map(|s| f32::from(s) / 32768.0).collect())
}

/// Seconds of sound (10 ms windows above a low level) in 16 kHz samples.
fn voiced_secs(samples: &[f32]) -> f64 {
    let loud = samples
        .chunks(160)
        .filter(|w| (w.iter().map(|s| s * s).sum::<f32>() / w.len() as f32).sqrt() > 0.01)
        .count();
    loud as f64 / 100.0
}

#[test]
fn a_spoken_fuel_question_is_answered_out_loud() {
    let Some(model) = tools() else { return };
    let w = World::new(Backend::Sqlite).unwrap();
    let mut runtime = w.start_runtime(Some(SECRET_A));
    w.login();
    let dir = tempfile::tempdir().unwrap();
    let (raw, question) = (dir.path().join("raw.wav"), dir.path().join("question.wav"));
    run(Command::new("espeak-ng")
        .args(["-v", "en-gb", "-s", "150", "-w"])
        .arg(&raw)
        .arg("how much fuel have I got"));
    // Two seconds of quiet first, so telemetry is flowing before the question.
    run(Command::new("sox")
        .arg(&raw)
        .args(["-r", "16000", "-c", "1"])
        .arg(&question)
        .args(["pad", "2", "0.5"]));
    let speaker = dir.path().join("speaker.wav");
    let log_path = dir.path().join("node.log");
    let mut node = w
        .node_cmd()
        .args(["run", "--source", "synthetic", "--no-video", "--api", "off", "--mic-file"])
        .arg(&question)
        .arg("--speaker-file")
        .arg(&speaker)
        .env("PITBOX_WHISPER_MODEL", &model)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // The acknowledgement tone is 0.12 s; the answer is a sentence. Wait until more than a
    // second has been played and the file has stopped growing in sound (5 reads in a row).
    let scratch = dir.path().join("heard.wav");
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut last, mut steady) = (0.0, 0);
    let samples = loop {
        assert!(Instant::now() < deadline, "no spoken answer within 120 s; node log:\n{}", log());
        assert!(node.try_wait().unwrap().is_none(), "the node exited; its log:\n{}", log());
        std::thread::sleep(Duration::from_millis(200));
        let Some(samples) = heard(&speaker, &scratch) else { continue };
        let secs = voiced_secs(&samples);
        steady = if secs > 1.0 && (secs - last).abs() < 0.01 { steady + 1 } else { 0 };
        last = secs;
        if steady >= 5 {
            break samples;
        }
    };
    kill(&mut node);
    kill(&mut runtime);

    let mut whisper = Transcriber::new(&SttSettings { model, threads: 2, audio_ctx: None }).unwrap();
    // The whole timeline (silence, the tone, the answer) is well under whisper's 30 s window.
    let text = whisper.transcribe(&samples).unwrap().text.to_lowercase();
    println!("voice end to end: {last:.2} s of sound played; heard back: {text:?}");
    assert!(text.contains("fuel"), "the answer is about fuel: {text:?}\nnode log:\n{}", log());
    assert!(text.chars().any(|c| c.is_ascii_digit()) || text.contains("litre"), "with a number: {text:?}");
}
