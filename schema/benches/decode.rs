//! Decoding a driver node's `telemetry_batch` (10 frames, every channel a node sends): the
//! envelope and frames read in one pass (`pitbox_schema::wire`, what the runtime does) beside the
//! same types decoded through serde's derived `flatten`, which first buffers each object (the
//! decoding before). Prints nanoseconds per frame for both, best of several rounds.
//!
//! `cargo bench -p pitbox-schema --bench decode [-- ROUNDS]`; for a count that does not depend
//! on the machine's load: `valgrind --tool=callgrind <bench binary> --only split|flatten`.
//! Reads no env vars.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Utc};
use pitbox_schema::wire::{Envelope, Message, TelemetryBatch, TelemetryFrame, TelemetrySample};
use serde::Deserialize;

/// The decoding before: serde's derive with `flatten` on the envelope and on each frame.
#[derive(Deserialize)]
struct FlatEnvelope {
    #[serde(flatten)]
    message: FlatMessage,
    #[allow(dead_code)]
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
enum FlatMessage {
    TelemetryBatch(FlatBatch),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlatBatch {
    #[allow(dead_code)]
    driver_id: String,
    frames: Vec<FlatFrame>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlatFrame {
    #[serde(default, deserialize_with = "pitbox_schema::wire::lenient::opt_int")]
    seq: Option<u64>,
    #[serde(deserialize_with = "pitbox_schema::wire::lenient::timestamp")]
    timestamp: DateTime<Utc>,
    #[serde(flatten)]
    sample: TelemetrySample,
}

fn batch() -> String {
    let sample: TelemetrySample = serde_json::from_value(serde_json::json!({
        "sessionTime": 1234.5678, "speed": 187.3, "rpm": 7123.5, "gear": 4, "throttle": 99.9,
        "brake": 0.0, "steeringAngle": -12.25, "lap": 7, "trackPosition": 0.1234568, "sector": 2,
        "position": 3, "fuelLevel": 41.7,
        "tireWear": {"frontLeft": 97.5, "frontRight": 96.0, "rearLeft": 98.25, "rearRight": 97.0},
        "tireTemps": {"frontLeft": 88.0, "frontRight": 91.5, "rearLeft": 84.0, "rearRight": 86.0},
        "latitude": 51.5, "longitude": -0.1, "trackSurface": 3, "incidents": 2,
        "lastLapTime": 92.345, "bestLapTime": 91.2,
        "cars": {"lap": [7, 7, 6, 7], "lapDistPct": [0.12, 0.5, 0.9, 0.33], "position": [3, 1, 4, 2],
                 "onPitRoad": [false, false, true, false]}
    }))
    .expect("the sample's channels");
    let frames = (1..=10)
        .map(|seq| TelemetryFrame {
            seq: Some(seq),
            timestamp: "2026-11-21T12:00:00.125Z".parse().unwrap(),
            sample: sample.clone(),
        })
        .collect();
    let msg = Message::TelemetryBatch(TelemetryBatch {
        driver_id: "d-1".into(),
        stream_id: Some("s".into()),
        frames,
    });
    serde_json::to_string(&Envelope::new(msg)).unwrap()
}

fn split(text: &str) -> usize {
    match serde_json::from_str::<Envelope>(text).unwrap().message {
        Message::TelemetryBatch(b) => {
            b.frames.iter().map(|f| f.seq.unwrap_or(0) as usize + f.sample.gear as usize).sum()
        }
        _ => 0,
    }
}

fn flatten(text: &str) -> usize {
    let FlatMessage::TelemetryBatch(b) = serde_json::from_str::<FlatEnvelope>(text).unwrap().message;
    b.frames
        .iter()
        .map(|f| {
            f.seq.unwrap_or(0) as usize
                + f.sample.gear as usize
                + f.timestamp.timestamp_subsec_millis() as usize
                - 125
        })
        .sum()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let text = batch();
    assert_eq!(split(&text), flatten(&text));
    if let Some(i) = args.iter().position(|a| a == "--only") {
        // One way only, a fixed number of times: for an instruction count (callgrind).
        let f = if args.get(i + 1).map(String::as_str) == Some("flatten") { flatten } else { split };
        let mut sink = 0;
        for _ in 0..1000 {
            sink += f(black_box(&text));
        }
        println!("{sink}");
        return;
    }
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(7);
    let per_round = 2000;
    let mut best = [f64::MAX; 2];
    for _ in 0..rounds {
        for (k, f) in [split as fn(&str) -> usize, flatten].into_iter().enumerate() {
            let t = Instant::now();
            for _ in 0..per_round {
                black_box(f(black_box(&text)));
            }
            best[k] = best[k].min(t.elapsed().as_nanos() as f64 / (per_round * 10) as f64);
        }
    }
    println!("telemetry_batch of 10 frames, {} bytes", text.len());
    println!("decode one pass: {:.0} ns/frame", best[0]);
    println!("decode serde flatten (before): {:.0} ns/frame", best[1]);
    println!("one pass is {:.2}x faster", best[1] / best[0]);
}
