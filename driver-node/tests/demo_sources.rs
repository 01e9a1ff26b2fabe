//! The demo's sources: a recording replayed in a loop (session time, timestamps and laps carry on
//! from pass to pass, and the shared lap timer keeps timing whole laps), and the synthetic
//! driver's flags on `pitbox-driver run`. Uses `../shared/fixtures/ibt/`. Reads no env vars.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use clap::Parser;
use pitbox_driver::cli::{synthetic_config, Cli, Command};
use pitbox_driver::source::{IbtSource, TelemetrySource, LOOP_SEAM_SECS};
use pitbox_driver::synthetic::{Fault, Synthetic};
use pitbox_schema::timing::{LapTimer, LapTiming, TimingPoint};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/ibt/");

fn tsukuba() -> PathBuf {
    let path = PathBuf::from(FIXTURES).join("tsukuba_formulavee_3laps.ibt");
    assert!(path.exists(), "missing test fixture {}", path.display());
    path
}

#[test]
fn a_looping_replay_carries_on_session_time_and_laps() {
    let once = IbtSource::open(&tsukuba(), None).unwrap();
    let rows = once.info().frames.unwrap();
    let mut src = IbtSource::open(&tsukuba(), None).unwrap().looping(true);
    assert_eq!(src.info().frames, None, "a loop has no end");
    let mut timer = LapTimer::new();
    let mut laps: Vec<LapTiming> = vec![];
    let mut prev: Option<(f64, chrono::DateTime<chrono::Utc>, i32)> = None;
    let mut seams = 0;
    for _ in 0..rows * 3 + 10 {
        let f = src.next_frame().unwrap().expect("a loop never ends");
        let s = &f.sample;
        if let Some((t, ts, lap)) = prev {
            assert!(s.session_time > t, "session time goes on: {t} then {}", s.session_time);
            assert!(f.timestamp > ts, "timestamps go on: {ts} then {}", f.timestamp);
            assert!(s.lap >= lap, "laps go on: {lap} then {}", s.lap);
            if s.session_time - t > 1.0 {
                seams += 1;
                assert!((s.session_time - t - LOOP_SEAM_SECS).abs() < 0.1, "the seam's gap");
                assert!(s.lap > lap, "the next pass starts on a new lap");
            }
        }
        prev = Some((s.session_time, f.timestamp, s.lap));
        let p = TimingPoint {
            time: s.session_time,
            lap: s.lap,
            pct: Some(s.track_position),
            reported: s.last_lap_time,
        };
        laps.extend(timer.push(p).finalized);
    }
    assert_eq!((seams, src.passes()), (3, 3));
    let times: Vec<(i32, f64)> = laps.iter().map(|l| (l.lap, l.time)).collect();
    // The recording holds two whole laps (25.9145 s and 23.9797 s); every pass times them again,
    // under new lap numbers.
    let per_pass: Vec<&LapTiming> = laps.iter().filter(|l| l.time > 20.0 && l.time < 30.0).collect();
    assert!(per_pass.len() >= 6, "two whole laps per pass: {times:?}");
    assert!(laps.windows(2).all(|w| w[1].lap > w[0].lap && w[1].start >= w[0].end), "{times:?}");
    for pass in per_pass.chunks(2) {
        assert!((pass[0].time - 25.9145).abs() < 0.002, "{times:?}");
        assert!((pass[1].time - 23.9797).abs() < 0.002, "{times:?}");
    }
    // No lap is timed across a seam.
    assert!(laps.iter().all(|l| l.time < 30.0), "{times:?}");
}

#[test]
fn a_replay_without_loop_still_ends() {
    let mut src = IbtSource::open(&tsukuba(), None).unwrap();
    let rows = src.info().frames.unwrap();
    for _ in 0..rows {
        assert!(src.next_frame().unwrap().is_some());
    }
    assert!(src.next_frame().unwrap().is_none());
}

#[test]
fn synthetic_drivers_spread_round_the_lap_and_their_laps_are_timed() {
    use pitbox_driver::synthetic::SyntheticConfig;
    let mut cars = [
        Synthetic::new(1),
        Synthetic::with_config(SyntheticConfig { start_at: 0.4, pace: 1.012, ..SyntheticConfig::new(2) }),
        Synthetic::with_config(SyntheticConfig { start_at: 0.7, pace: 1.025, ..SyntheticConfig::new(3) }),
    ];
    let mut timers = [LapTimer::new(), LapTimer::new(), LapTimer::new()];
    let mut laps: [Vec<LapTiming>; 3] = Default::default();
    let mut first = vec![];
    for _ in 0..60 * 60 * 5 {
        for (i, car) in cars.iter_mut().enumerate() {
            let s = car.next_frame().sample;
            if first.len() < 3 {
                first.push(s.track_position);
            }
            let p = TimingPoint {
                time: s.session_time,
                lap: s.lap,
                pct: Some(s.track_position),
                reported: s.last_lap_time,
            };
            laps[i].extend(timers[i].push(p).finalized);
        }
    }
    assert!(
        (first[1] - first[0] - 0.4).abs() < 0.01 && (first[2] - first[0] - 0.7).abs() < 0.01,
        "{first:?}"
    );
    for (i, l) in laps.iter().enumerate() {
        let t: Vec<(i32, f64, bool)> = l.iter().map(|l| (l.lap, l.time, l.from_sim)).collect();
        assert!(l.len() >= 3, "car {i}: {t:?}");
        // Laps are whole from the first line crossing on, timed as the sim itself reports them.
        assert_eq!(l[0].lap, if i == 0 { 1 } else { 2 }, "car {i}: {t:?}");
        assert!(l.iter().all(|l| l.from_sim && (70.0..90.0).contains(&l.time)), "car {i}: {t:?}");
    }
    let mean = |l: &[LapTiming]| l[1..3].iter().map(|l| l.time).sum::<f64>() / 2.0;
    assert!(mean(&laps[0]) < mean(&laps[1]) && mean(&laps[1]) < mean(&laps[2]), "different pace");
}

fn run_args(args: &[&str]) -> pitbox_driver::cli::RunArgs {
    let cli = Cli::try_parse_from(["pitbox-driver", "run"].iter().chain(args)).unwrap();
    match cli.command {
        Command::Run(a) => *a,
        other => panic!("{other:?}"),
    }
}

#[test]
fn run_flags_make_a_synthetic_driver() {
    let plain = synthetic_config(&run_args(&["--seed", "3"])).unwrap();
    assert_eq!(plain, pitbox_driver::synthetic::SyntheticConfig::new(3), "no flags: today's driver");
    let c = synthetic_config(&run_args(&[
        "--seed",
        "2",
        "--start-at",
        "0.4",
        "--pace",
        "1.02",
        "--brake-early",
        "4:20",
        "--late-throttle",
        "T7:30",
        "--coast",
        "1:50",
        "--fuel-leak",
        "0.5",
        "--inconsistency",
        "8",
    ]))
    .unwrap();
    assert_eq!(
        (c.seed, c.start_at, c.pace, c.fuel_leak_l_per_lap, c.inconsistency_m),
        (2, 0.4, 1.02, 0.5, 8.0)
    );
    assert_eq!(
        c.faults,
        vec![
            Fault::BrakeEarly { corner: 4, metres: 20.0 },
            Fault::LateThrottle { corner: 7, metres: 30.0 },
            Fault::Coast { corner: 1, metres: 50.0 },
        ]
    );
    let first = Synthetic::with_config(c).next_frame().sample;
    assert!((first.track_position - 0.4).abs() < 0.01);

    for bad in
        [&["--start-at", "1.5"][..], &["--pace", "0"], &["--brake-early", "11:20"], &["--fuel-leak=-1"]]
    {
        assert!(synthetic_config(&run_args(bad)).is_err(), "{bad:?}");
    }
    for bad in [&["--brake-early", "4"][..], &["--late-throttle", "0:10"], &["--coast", "2:-5"]] {
        assert!(Cli::try_parse_from(["pitbox-driver", "run"].iter().chain(bad)).is_err(), "{bad:?}");
    }
}

#[test]
fn loop_is_only_for_recordings() {
    let cli = Cli::try_parse_from(["pitbox-driver", "run", "--source", "synthetic", "--loop"]).unwrap();
    let err = pitbox_driver::cli::run(cli, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("--loop"), "{err}");
}
