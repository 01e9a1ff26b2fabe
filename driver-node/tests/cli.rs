//! `pitbox-driver inspect` end to end: through the library entry point (output captured) and the
//! real binary (exit codes, one-line errors), on the fixtures in `../shared/fixtures/ibt/`.
//! Reads no env vars.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use clap::Parser;
use pitbox_driver::cli::{run, Cli};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/ibt/");

fn fixture(name: &str) -> String {
    let path = PathBuf::from(FIXTURES).join(name);
    assert!(path.exists(), "missing test fixture {}", path.display());
    path.display().to_string()
}

fn inspect(args: &[&str]) -> anyhow::Result<String> {
    let cli = Cli::try_parse_from(["pitbox-driver", "inspect"].iter().chain(args))?;
    let mut out = Vec::new();
    run(cli, &mut out)?;
    Ok(String::from_utf8(out)?)
}

#[test]
fn summary_shows_recording_track_car_and_laps() {
    let out = inspect(&[&fixture("tsukuba_formulavee_3laps.ibt")]).unwrap();
    for needle in [
        "3429 records",
        "Tsukuba Circuit 1k Outer (tsukuba 1kouter)",
        "car         Formula Vee",
        "#64 Max Teichert2",
        // lap times as iRacing's LapLastLapTime has them (25.9145, 23.9797)
        "25.914",
        "23.980",
        "partial",
        "started 2025-01-30T16:09:29+00:00",
    ] {
        assert!(out.contains(needle), "no {needle:?} in:\n{out}");
    }
    assert!(!out.contains("channels ("), "channels only with --vars");
    let live = inspect(&[&fixture("live-memmap-monza_w13.bin")]).unwrap();
    assert!(
        live.contains("live shared-memory map, 3 buffers") && live.contains("newest: buffer 1"),
        "{live}"
    );
}

#[test]
fn vars_lists_every_channel() {
    let out = inspect(&[&fixture("redbullring_w13_short.ibt"), "--vars"]).unwrap();
    assert!(out.contains("channels (276)"), "{out}");
    assert!(out.lines().any(|l| l.contains("SteeringWheelTorque_ST") && l.contains("float[6]")));
    assert!(out.lines().any(|l| l.trim_start().starts_with("Speed") && l.contains("m/s")));
}

#[test]
fn csv_has_one_line_per_record_and_array_columns() {
    let out =
        inspect(&[&fixture("redbullring_w13_short.ibt"), "--csv", "Speed,RPM,Lap,SteeringWheelTorque_ST"])
            .unwrap();
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), 1 + 390);
    assert_eq!(
        lines[0],
        "Speed,RPM,Lap,SteeringWheelTorque_ST[0],SteeringWheelTorque_ST[1],SteeringWheelTorque_ST[2],\
         SteeringWheelTorque_ST[3],SteeringWheelTorque_ST[4],SteeringWheelTorque_ST[5]"
    );
    assert!(lines.iter().all(|l| l.split(',').count() == 9));
    assert!(lines[1].starts_with("0.047547") && lines[1].contains(",300,9,"), "{}", lines[1]);
    let err = inspect(&[&fixture("redbullring_w13_short.ibt"), "--csv", "Speed,Nope"]).unwrap_err();
    assert!(err.to_string().contains("\"Nope\""), "{err}");
}

#[test]
fn the_binary_fails_with_one_clear_line() {
    let bin = env!("CARGO_BIN_EXE_pitbox-driver");
    for (file, message) in [("invalid.ibt", "not iRacing telemetry"), ("empty.ibt", "empty (0 bytes)")] {
        let out = Command::new(bin).args(["inspect", &fixture(file)]).output().unwrap();
        assert!(!out.status.success(), "{file}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("pitbox-driver: cannot read ") && stderr.contains(message), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    let out = Command::new(bin).args(["inspect", &fixture("tsukuba_formulavee_3laps.ibt")]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Formula Vee"));
}
