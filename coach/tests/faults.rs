//! Synthetic laps with injected faults: the engine finds the right corner and fault.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{drive, test_track, Fault, LapPlan};
use pitbox_coach::{compare, CornerMap, LapTrace, LearnOptions, MetricOptions};

fn traces(plans: &[LapPlan]) -> Vec<LapTrace> {
    let track = test_track();
    drive(&track, plans, 60.0, 0.0)
        .iter()
        .map(|f| LapTrace::from_frames(f, Some(track.length())).unwrap())
        .collect()
}

#[test]
fn corners_of_the_test_track() {
    let track = test_track();
    let t = traces(&[LapPlan::default()]);
    let map = CornerMap::learn(&t[0], &LearnOptions::default());
    println!("{:#?}", map.corners);
    println!("lap time {:.3}", t[0].lap_time);
    let truth = track.corners();
    assert_eq!(map.corners.len(), truth.len());
    for (c, (s, e)) in map.corners.iter().zip(truth) {
        let apex_m = c.apex * track.length();
        assert!(apex_m >= s - 5.0 && apex_m <= e + 5.0, "{} apex {apex_m} not in {s}..{e}", c.name);
    }
}

#[test]
fn braking_early_is_found_within_3_m() {
    let t = traces(&[
        LapPlan::default(),
        LapPlan { faults: vec![Fault::BrakeEarly { corner: 3, metres: 20.0 }], ..Default::default() },
    ]);
    let map = CornerMap::learn(&t[0], &LearnOptions::default());
    let c = compare(&map, &t[0], &t[1], &MetricOptions::default());
    println!("{}", serde_json::to_string_pretty(&c).unwrap());
    let sum: f64 = c.segments.iter().map(|s| s.delta_s).sum();
    assert!((sum - c.lap_delta_s).abs() < 0.01);
    let t3 = &c.corners[2];
    let d = t3.braking_point_diff_m.unwrap();
    assert!((d + 20.0).abs() < 3.0, "{d}");
}
