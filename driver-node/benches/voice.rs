//! Voice command latency: end of utterance → recognised command (whisper transcribe + recognise),
//! p50/p99, and CPU time per transcription, with tiny.en on 1 thread — the full 30 s audio context
//! and one fitted to the clip. Clips are every command said by espeak-ng (en-gb and en-us),
//! resampled to 16 kHz by sox. Prints figures; asserts nothing.
//!
//! `cargo bench -p pitbox-driver --bench voice`. Needs espeak-ng, sox and the model
//! (`PITBOX_WHISPER_MODEL`, or what `../shared/tools/whisper-model/fetch.sh` made in the cache);
//! without them it says so and exits. Env: `PITBOX_WHISPER_MODEL`, `VOICE_BENCH_ROUNDS` (passes
//! over the clips per setting, default 3).

use std::process::Command;
use std::time::Instant;

#[cfg(feature = "stt")]
fn main() {
    use pitbox_driver::voice::recognise::{recognise, CONFIDENT};
    use pitbox_driver::voice::stt::{model_path_default, SttSettings, Transcriber};

    const SAID: &[&str] = &[
        "how's my fuel",
        "fuel per lap",
        "how many laps of fuel",
        "how much fuel to the end",
        "gap to the car ahead",
        "what's the gap behind",
        "what position am I",
        "last lap time",
        "what was my best lap",
        "what's my delta",
        "tyre temps please",
        "how's my tyre wear",
        "how many laps to go",
        "box this lap",
        "say again",
        "quiet please",
        "talk to me",
        "tell the team the rear left is going off",
    ];
    let model = model_path_default();
    if !model.is_file() {
        eprintln!(
            "voice bench: no model at {} (run ../shared/tools/whisper-model/fetch.sh or set PITBOX_WHISPER_MODEL)",
            model.display()
        );
        return;
    }
    let Ok(dir) = tempfile::tempdir() else {
        eprintln!("voice bench: no temp dir");
        return;
    };
    let mut clips: Vec<Vec<f32>> = Vec::new();
    for voice in ["en-gb", "en-us"] {
        for text in SAID {
            let wav = dir.path().join("say.wav");
            let ok = Command::new("espeak-ng")
                .args(["-v", voice, "-s", "160", "-w"])
                .arg(&wav)
                .arg(text)
                .status()
                .is_ok_and(|s| s.success());
            let out = Command::new("sox")
                .arg(&wav)
                .args(["-r", "16000", "-c", "1", "-e", "floating-point", "-b", "32", "-L"])
                .args(["-t", "raw", "-", "pad", "0.2", "0.2"])
                .output();
            match out {
                Ok(o) if ok && o.status.success() => clips.push(
                    o.stdout.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
                ),
                _ => {
                    eprintln!("voice bench: espeak-ng or sox missing (tools/setup.sh)");
                    return;
                }
            }
        }
    }
    let rounds: usize = std::env::var("VOICE_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    #[allow(clippy::cast_precision_loss)]
    let audio_secs: f64 = clips.iter().map(|c| c.len() as f64 / 16_000.0).sum::<f64>() / clips.len() as f64;
    println!(
        "voice: {} clips (18 commands × en-gb, en-us), mean {:.2} s of audio each, {rounds} rounds",
        clips.len(),
        audio_secs
    );
    for (name, audio_ctx) in [("full ctx (1500)", None), ("fitted ctx", Some(0))] {
        let settings = SttSettings { model: model.clone(), threads: 1, audio_ctx };
        let load = Instant::now();
        let mut stt = match Transcriber::new(&settings) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("voice bench: {e}");
                return;
            }
        };
        let load_ms = load.elapsed().as_secs_f64() * 1e3;
        // warm-up: first decode allocates buffers
        let _ = stt.transcribe(&clips[0]);
        let mut lat = Vec::new();
        let mut cpu = Vec::new();
        let mut recog_us = Vec::new();
        let mut confident = 0;
        for _ in 0..rounds {
            for clip in &clips {
                let c0 = cpu_time::ProcessTime::now();
                let t0 = Instant::now();
                let Ok(t) = stt.transcribe(clip) else {
                    eprintln!("voice bench: transcribe failed");
                    return;
                };
                let cpu_ms = c0.elapsed().as_secs_f64() * 1e3;
                let r0 = Instant::now();
                let r = recognise(&t.text);
                recog_us.push(r0.elapsed().as_secs_f64() * 1e6);
                lat.push(t0.elapsed().as_secs_f64() * 1e3);
                cpu.push(cpu_ms);
                if r.is_some_and(|r| r.confidence >= CONFIDENT) {
                    confident += 1;
                }
            }
        }
        let pct = |v: &mut Vec<f64>, q: f64| {
            v.sort_by(f64::total_cmp);
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let i = (((v.len() - 1) as f64) * q).round() as usize;
            v[i]
        };
        #[allow(clippy::cast_precision_loss)]
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "{name:<16} load {load_ms:>5.0} ms | utterance end → command p50 {:>6.1} ms p99 {:>6.1} ms | CPU/transcription mean {:>6.1} ms (p99 {:>6.1}) | recognise p99 {:.0} µs | confident {}/{}",
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99),
            mean(&cpu),
            pct(&mut cpu, 0.99),
            pct(&mut recog_us, 0.99),
            confident,
            lat.len()
        );
    }
}

#[cfg(not(feature = "stt"))]
fn main() {
    let _ = (Command::new("true"), Instant::now());
    eprintln!("voice bench: built without the `stt` feature");
}
