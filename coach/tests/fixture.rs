//! The real recording: corners found and stable across its two complete laps, lap times as the
//! recording's own, corner deltas adding up to the lap-time difference.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use pitbox_coach::{
    ai_coaching, analyze_frames, analyze_response, compare, Coach, CoachConfig, CornerMap, LapTrace,
    LearnOptions, MetricOptions, SegmentId,
};
use pitbox_driver::ibt::{laps, Ibt, SampleConverter};
use pitbox_schema::wire::LapKind;
use pitbox_schema::wire::TelemetryFrame;

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
fn lap_times_match_the_recording() {
    for (lap, time, frames) in fixture_laps() {
        let t = LapTrace::from_frames(&frames, None).unwrap();
        assert_eq!(t.lap, lap);
        // The recording's time is iRacing's own; ours is interpolated from the same rows.
        assert!((t.lap_time - time).abs() < 0.01, "lap {lap}: {} vs {time}", t.lap_time);
        // Tsukuba 1000 outer is about 680 m by its LapDist channel.
        assert!((t.track_length_m - 680.0).abs() < 15.0, "{}", t.track_length_m);
    }
}

#[test]
fn corners_are_found_and_stable_across_both_laps() {
    let laps = fixture_laps();
    assert_eq!(laps.len(), 2);
    let traces: Vec<LapTrace> =
        laps.iter().map(|(_, _, f)| LapTrace::from_frames(f, Some(680.0)).unwrap()).collect();
    let maps: Vec<CornerMap> = traces.iter().map(|t| CornerMap::learn(t, &LearnOptions::default())).collect();
    for m in &maps {
        println!(
            "{:?}",
            m.corners.iter().map(|c| (c.name.clone(), c.start, c.end, c.apex)).collect::<Vec<_>>()
        );
    }
    // The long left after the first braking zone and the final complex, on both laps.
    assert_eq!(maps[0].corners.len(), 2);
    assert_eq!(maps[0].corners.len(), maps[1].corners.len());
    for (a, b) in maps[0].corners.iter().zip(&maps[1].corners) {
        assert_eq!(a.number, b.number);
        let m = |x: f64| x * 680.0;
        assert!((m(a.start) - m(b.start)).abs() < 10.0, "{} starts {} vs {}", a.name, m(a.start), m(b.start));
        assert!((m(a.end) - m(b.end)).abs() < 15.0, "{} ends {} vs {}", a.name, m(a.end), m(b.end));
        assert!((m(a.apex) - m(b.apex)).abs() < 15.0, "{} apex {} vs {}", a.name, m(a.apex), m(b.apex));
    }
    // Both corners are braked on both laps.
    for t in &traces {
        for c in &maps[0].corners {
            let metrics =
                pitbox_coach::corner_metrics(&maps[0], c.number, t, &MetricOptions::default()).unwrap();
            assert!(metrics.braking_point_m.is_some(), "lap {} {}", t.lap, c.name);
        }
    }
}

#[test]
fn corner_deltas_add_up_to_the_lap_time_difference() {
    let laps = fixture_laps();
    let traces: Vec<LapTrace> =
        laps.iter().map(|(_, _, f)| LapTrace::from_frames(f, None).unwrap()).collect();
    // The map is learnt from either lap; the deltas add up whichever it is.
    for learn_from in &traces {
        let map = CornerMap::learn(learn_from, &LearnOptions::default());
        let c = compare(&map, &traces[0], &traces[1], &MetricOptions::default());
        let sum: f64 = c.segments.iter().map(|s| s.delta_s).sum();
        let recorded = laps[1].1 - laps[0].1;
        assert!((sum - recorded).abs() < 0.01, "segments {sum} vs recording {recorded}");
        assert!((sum - c.lap_delta_s).abs() < 1e-9);
        let corners: f64 =
            c.segments.iter().filter(|s| matches!(s.id, SegmentId::Corner(_))).map(|s| s.delta_s).sum();
        let straights: f64 =
            c.segments.iter().filter(|s| matches!(s.id, SegmentId::Straight(_))).map(|s| s.delta_s).sum();
        assert!((corners + straights - recorded).abs() < 0.01);
    }
}

#[test]
fn the_coach_on_the_recording() {
    let laps = fixture_laps();
    let mut coach = Coach::new(CoachConfig::default());
    let first = coach.add_lap(&laps[0].2, None, None).unwrap();
    // Lap 1 left the pit lane: an out-lap, never the reference, and it teaches no corners.
    assert_eq!(first.quality.kind, LapKind::OutLap);
    assert!(!first.new_reference);
    assert!(coach.map().is_none());
    let second = coach.add_lap(&laps[1].2, None, None).unwrap();
    assert!(second.quality.is_clean(), "{:?}", second.quality);
    assert!(second.new_reference);
    assert_eq!(coach.map().unwrap().corners.len(), 2);
    let coaching = ai_coaching(&first, Some("d1".to_owned()), chrono::Utc::now());
    let json = serde_json::to_value(&coaching).unwrap();
    assert!(json["feedback"].as_str().unwrap().contains("Lap 1"), "{json}");
    // The whole recording through the analyze entry point: both complete laps, the partial ones skipped.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let ibt = Ibt::open(&path).unwrap();
    let conv = SampleConverter::new(&ibt);
    let fallback = Utc.timestamp_opt(0, 0).unwrap();
    let all: Vec<TelemetryFrame> =
        (0..ibt.record_count()).map(|i| conv.frame(&ibt.row(i).unwrap(), None, fallback)).collect();
    let reports = analyze_frames(&all, CoachConfig::default(), None);
    assert_eq!(reports.iter().map(|r| r.lap).collect::<Vec<_>>(), vec![1, 2]);
    let answer = serde_json::to_value(analyze_response(&reports[1])).unwrap();
    for key in ["feedback", "suggestions", "analysis"] {
        assert!(answer.get(key).is_some(), "{answer}");
    }
    for key in ["strengths", "weaknesses", "improvementAreas"] {
        assert!(answer["analysis"][key].is_array(), "{answer}");
    }
}
