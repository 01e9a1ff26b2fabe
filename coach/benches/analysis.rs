//! Analysis time of one lap: `cargo bench -p pitbox-coach --bench analysis`. Prints the median and
//! p99 over many runs for a 60 Hz lap and a 360 Hz lap of the synthetic test track (1.56 km,
//! four corners), for three steps: reading the frames into a trace, the comparison with the
//! reference, and the coach's whole `add_lap` (hygiene, comparison, patterns and consistency over
//! the last six laps, strategy, findings).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use common::{drive, test_track, Fault, LapPlan};
use pitbox_coach::{compare, Coach, CoachConfig, CornerMap, LapTrace, LearnOptions, MetricOptions};

fn figures(name: &str, runs: usize, mut f: impl FnMut()) {
    for _ in 0..runs / 10 {
        f();
    }
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!("{name:<44} median {:>7.3} ms   p99 {:>7.3} ms   ({runs} runs)", at(0.5), at(0.99));
}

fn main() {
    let track = test_track();
    for hz in [60.0, 360.0] {
        let mut plans = vec![LapPlan::default(); 7];
        plans.push(LapPlan {
            faults: vec![Fault::BrakeEarly { corner: 3, metres: 20.0 }],
            ..LapPlan::default()
        });
        let laps = drive(&track, &plans, hz, 0.0);
        let frames = laps.last().unwrap();
        println!("{hz} Hz lap: {} frames", frames.len());
        let length = Some(track.length());
        let reference = LapTrace::from_frames(&laps[0], length).unwrap();
        let map = CornerMap::learn(&reference, &LearnOptions::default());
        let lap = LapTrace::from_frames(frames, length).unwrap();
        let runs = if hz > 100.0 { 300 } else { 1000 };
        figures(&format!("{hz} Hz: frames -> trace"), runs, || {
            black_box(LapTrace::from_frames(black_box(frames), length).unwrap());
        });
        figures(&format!("{hz} Hz: learn the corner map"), runs, || {
            black_box(CornerMap::learn(black_box(&reference), &LearnOptions::default()));
        });
        figures(&format!("{hz} Hz: compare with the reference"), runs, || {
            black_box(compare(&map, &reference, black_box(&lap), &MetricOptions::default()));
        });
        // Eight laps kept: every further lap drops the oldest, so each run does the same work.
        let config = CoachConfig { track_length_m: length, history: 8, ..CoachConfig::default() };
        let mut coach = Coach::new(config);
        for l in &laps[..laps.len() - 1] {
            coach.add_lap(l, None, None).unwrap();
        }
        figures(&format!("{hz} Hz: coach.add_lap (whole analysis)"), runs / 2, || {
            black_box(coach.add_lap(black_box(frames), None, None).unwrap());
        });
    }
}
