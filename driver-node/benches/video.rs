//! Onboard video benchmark, printing its figures:
//! 1. capture + convert + encode time per frame (and encode frames per second) at 1280×720 and
//!    1920×1080, from the test pattern and — when `Xvfb` is installed — from a real X11 screen;
//! 2. the video thread at 720p30 for a few seconds as the node runs it (paced, default 2.5 Mbit/s):
//!    bytes per second sent and the thread's CPU (its busy wall time, and the process's CPU time,
//!    both per second of wall time, in cores);
//! 3. decode time with OpenH264's decoder (the viewer side, for the glass-to-glass estimate:
//!    capture + convert + encode + network + decode; the browser's own figure comes from the
//!    dashboard panel's `data-latency-ms`).
//!
//! `cargo bench -p pitbox-driver --bench video`. Env: `PITBOX_BENCH_VIDEO_SECS` (default 5).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pitbox_driver::video::capture::{self, SourceSpec};
use pitbox_driver::video::convert::{Converter, I420};
use pitbox_driver::video::encode::{EncodeSettings, H264Decoder, H264Encoder};
use pitbox_driver::video::{self, VideoOptions};
use pitbox_schema::wire::media::MediaHeader;
use pitbox_schema::wire::VideoAction;

/// Capture, convert and encode ms per frame, bytes per frame, and the encoded frames.
type Timed = (f64, f64, f64, f64, Vec<Vec<u8>>);

fn per_frame(source: &SourceSpec, w: usize, h: usize, frames: u32) -> Option<Timed> {
    let mut cap = capture::open(source).ok()?;
    let mut enc =
        H264Encoder::new(EncodeSettings { fps: 30, bitrate_bps: 2_500_000, keyframe_secs: 2.0 }).unwrap();
    let mut pic = I420::new(w, h);
    let mut converter = Converter::new();
    let (mut t_cap, mut t_conv, mut t_enc) = (0.0, 0.0, 0.0);
    let mut out = vec![];
    for _ in 0..frames {
        let t = Instant::now();
        let f = cap.grab().unwrap();
        t_cap += t.elapsed().as_secs_f64();
        let t = Instant::now();
        converter.convert(f, &mut pic).unwrap();
        t_conv += t.elapsed().as_secs_f64();
        let t = Instant::now();
        if let Some(e) = enc.encode(&pic).unwrap() {
            out.push(e.data);
        }
        t_enc += t.elapsed().as_secs_f64();
    }
    let n = f64::from(frames) / 1000.0;
    let bytes = out.iter().map(Vec::len).sum::<usize>() as f64 / f64::from(frames);
    Some((t_cap / n, t_conv / n, t_enc / n, bytes, out))
}

fn main() {
    let secs: u64 = std::env::var("PITBOX_BENCH_VIDEO_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    // A real X screen when Xvfb is there (1920x1080, so both sizes are captured from it).
    let xvfb = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", "1920x1080x24", "-nolisten", "tcp", "-noreset"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()
        .and_then(|mut c| {
            let mut line = String::new();
            BufReader::new(c.stdout.take()?).read_line(&mut line).ok()?;
            std::env::set_var("DISPLAY", format!(":{}", line.trim()));
            Some(c)
        });
    println!("video benchmark (OpenH264 built from source, one encoder thread, screen content, 2.5 Mbit/s):");
    // (capture size, encoded size): same size, and a 1080p screen sent at 720p (scaled on the node).
    for ((cw, ch), (w, h)) in
        [((1280, 720), (1280, 720)), ((1920, 1080), (1920, 1080)), ((1920, 1080), (1280, 720))]
    {
        let scaled = if (cw, ch) == (w, h) { "" } else { " from 1920x1080" };
        let mut sources = vec![(SourceSpec::Pattern { width: cw, height: ch }, format!("pattern{scaled}"))];
        if xvfb.is_some() {
            sources.push((
                SourceSpec::Region { x: 0, y: 0, width: cw as u16, height: ch as u16 },
                format!("Xvfb{scaled}"),
            ));
        }
        for (src, name) in sources {
            let Some((cap, conv, enc, bytes, frames)) = per_frame(&src, w, h, 60) else { continue };
            let total = cap + conv + enc;
            let mut dec = H264Decoder::new().unwrap();
            let t = Instant::now();
            for f in &frames {
                dec.decode(f).unwrap();
            }
            let decode = t.elapsed().as_secs_f64() * 1000.0 / frames.len().max(1) as f64;
            println!(
                "  {w}x{h} {name:<22}: capture {cap:.2} ms + convert {conv:.2} ms + encode {enc:.2} ms = {total:.2} ms/frame ({:.0} fps max); {bytes:.0} B/frame; decode {decode:.2} ms/frame",
                1000.0 / total
            );
        }
    }

    // The thread as the node runs it: 720p30, paced.
    let options =
        VideoOptions { source: SourceSpec::Pattern { width: 1280, height: 720 }, ..VideoOptions::default() };
    let (mut link, thread) = video::start(options).unwrap();
    link.control.apply(VideoAction::Resume);
    let started = Instant::now();
    // CPU time, not wall time: the figure holds on a loaded machine, where a thread's busy wall
    // time also counts the time it waited for a core. The process is this thread plus a receiver
    // that only waits, so its CPU time is the video thread's (slightly over).
    let cpu0 = cpu_time::ProcessTime::now();
    let (mut bytes, mut frames, mut latency) = (0usize, 0u32, vec![]);
    while started.elapsed() < Duration::from_secs(secs) {
        let f = link.frames.blocking_recv().unwrap();
        let (h, _) = MediaHeader::decode(&f).unwrap();
        latency.push(video::now_us().saturating_sub(h.capture_us) as f64 / 1000.0);
        bytes += f.len();
        frames += 1;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu0.elapsed().as_secs_f64();
    let busy = thread.control.counters.work_us.load(Ordering::Relaxed) as f64 / 1e6;
    latency.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "  720p30 thread ({secs} s, pattern): {:.1} fps, {:.0} kB/s ({:.2} Mbit/s), busy {:.2} of a core (wall), CPU time {:.2} of a core; capture → frame ready p50 {:.1} ms p99 {:.1} ms",
        f64::from(frames) / wall,
        bytes as f64 / wall / 1000.0,
        bytes as f64 * 8.0 / wall / 1e6,
        busy / wall,
        cpu / wall,
        latency[latency.len() / 2],
        latency[(latency.len() - 1) * 99 / 100]
    );
    thread.control.stop();
    drop(link);
    let _ = thread.handle.join();
    if let Some(mut x) = xvfb {
        let _ = x.kill();
        let _ = x.wait();
    }
}
