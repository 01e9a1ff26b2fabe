//! Data fidelity with real processes, on SQLite and PostgreSQL: every fixture recording replayed
//! by a real `pitbox-driver` into a real `pitbox-runtime` is stored value for value (bit for bit
//! against the file, in the database and out of the API), its laps timed as iRacing timed them
//! (within 2 ms of `LapLastLapTime`); a lap in progress survives a runtime killed mid-lap and an
//! injected panic; a node finds its way back after the runtime restarts with a new signing key
//! (dev mode, rotated secret), and asks for a new login when its refresh is refused too.
//! Needs the `pitbox-driver` binary (built by `cargo test --workspace`). Env: see `common` and
//! `support/processes.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/processes.rs"]
mod processes;

use std::collections::HashMap;
use std::time::Duration;

use common::Backend;
use pitbox_driver::ibt::{laps, Ibt, SampleConverter};
use pitbox_schema::wire::TelemetrySample;
use processes::*;

const TSUKUBA: &str = "tsukuba_formulavee_3laps.ibt";
const FIXTURES: [&str; 3] = [TSUKUBA, "redbullring_amg-gt4.ibt", "redbullring_w13_short.ibt"];

fn world(backend: Backend) -> Option<World> {
    let w = World::new(backend);
    if w.is_none() {
        eprintln!("skipped: PITBOX_TEST_DATABASE_URL is not set");
    }
    w
}

/// iRacing's own time of each complete lap of a recording, by lap number.
fn iracing_laps(name: &str) -> Vec<(i32, f64)> {
    let ibt = Ibt::open(fixture(name)).unwrap();
    laps(&ibt)
        .unwrap()
        .into_iter()
        .filter(|l| l.is_complete())
        .map(|l| (l.lap, f64::from(l.reported.expect("iRacing published the lap time"))))
        .collect()
}

/// The stored laps are the recording's complete laps, each once, within 2 ms of iRacing.
fn assert_laps_match(w: &World, name: &str) {
    let stored: Vec<(i32, f64)> = w.laps().into_iter().map(|l| (l.1, l.2)).collect();
    let expected = iracing_laps(name);
    for ((n, t), (en, et)) in stored.iter().zip(&expected) {
        eprintln!(
            "{name}: lap {n} stored {t:.4} s, iRacing {et:.4} s, difference {:+.1} ms",
            (t - et) * 1000.0
        );
        assert_eq!(n, en);
        assert!((t - et).abs() <= 0.002, "{name} lap {n}: stored {t} s, iRacing {et} s");
    }
    assert_eq!(stored.len(), expected.len(), "{name}: stored {stored:?}, iRacing {expected:?}");
}

fn replay_fixtures_exactly(backend: Backend) {
    for name in FIXTURES {
        let Some(w) = world(backend) else { return };
        let mut runtime = w.start_runtime(Some(SECRET_A));
        w.login();
        wait_ok_within(w.replay(&fixture(name), "max"), Duration::from_secs(180), "replay", || w.node_log());
        let ibt = Ibt::open(fixture(name)).unwrap();
        let n = ibt.record_count();
        w.assert_exactly_once(n as i64);

        // Every stored value is the file's, bit for bit (the node's conversion of each row).
        let conv = SampleConverter::new(&ibt);
        let mut by_time: HashMap<u64, TelemetrySample> = HashMap::new();
        for (row, (seq, _, data)) in ibt.rows().zip(w.samples()) {
            let expected = conv.sample(&row.unwrap());
            let stored: TelemetrySample = serde_json::from_str(&data).unwrap();
            assert_eq!(stored, expected, "{name} seq {seq}");
            assert_eq!(stored.session_time.to_bits(), expected.session_time.to_bits(), "{name} seq {seq}");
            for (a, b) in [(stored.latitude, expected.latitude), (stored.longitude, expected.longitude)] {
                assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits), "{name} seq {seq}");
            }
            by_time.insert(expected.session_time.to_bits(), expected);
        }

        assert_laps_match(&w, name);
        // ... and the same values come back out of the API.
        let token = token(&w.base(), "steady", PASSWORD);
        for (id, ..) in w.laps() {
            let (status, body) = http(
                "GET",
                &format!("{}/api/laps/{id}?channels=sessionTime,speed", w.base()),
                Some(&token),
                None,
            );
            assert_eq!(status, 200, "{body}");
            let times = body["channels"]["sessionTime"].as_array().unwrap();
            let speeds = body["channels"]["speed"].as_array().unwrap();
            assert!(times.len() > 100);
            for (t, v) in times.iter().zip(speeds) {
                let t = t.as_f64().unwrap();
                let expected = by_time
                    .get(&t.to_bits())
                    .unwrap_or_else(|| panic!("{name}: sessionTime {t} not in the file"));
                assert_eq!((v.as_f64().unwrap() as f32).to_bits(), expected.speed.to_bits(), "{name} at {t}");
            }
        }
        kill(&mut runtime);
    }
}

#[test]
fn fixtures_are_stored_exactly_with_iracings_lap_times_sqlite() {
    replay_fixtures_exactly(Backend::Sqlite);
}

#[test]
fn fixtures_are_stored_exactly_with_iracings_lap_times_postgres() {
    replay_fixtures_exactly(Backend::Postgres);
}

/// Samples stored when lap 1 (rows 214–1768 of the Tsukuba recording) is well under way.
const MID_LAP_1: i64 = 900;

fn runtime_killed_mid_lap(backend: Backend) {
    let Some(w) = world(backend) else { return };
    let mut runtime = w.start_runtime(Some(SECRET_A));
    w.login();
    let node = w.replay(&fixture(TSUKUBA), "10");
    w.wait_stored_at_least(MID_LAP_1);
    kill(&mut runtime);
    let stored_before = w.stored().0;
    assert!(stored_before < 1768, "the kill happened in lap 1 ({stored_before} samples stored)");
    // The node keeps recording into its spool while the runtime is down.
    std::thread::sleep(Duration::from_millis(700));
    let mut runtime = w.start_runtime(Some(SECRET_A));
    wait_ok_within(node, Duration::from_secs(120), "replay", || w.node_log());
    w.assert_exactly_once(Ibt::open(fixture(TSUKUBA)).unwrap().record_count() as i64);
    assert_laps_match(&w, TSUKUBA);
    kill(&mut runtime);
}

#[test]
fn a_lap_in_progress_survives_a_runtime_killed_mid_lap_sqlite() {
    runtime_killed_mid_lap(Backend::Sqlite);
}

#[test]
fn a_lap_in_progress_survives_a_runtime_killed_mid_lap_postgres() {
    runtime_killed_mid_lap(Backend::Postgres);
}

fn panic_mid_lap(backend: Backend) {
    let Some(w) = world(backend) else { return };
    let mut runtime = w.start_runtime(Some(SECRET_A));
    w.login();
    let node = w.replay(&fixture(TSUKUBA), "10");
    w.wait_stored_at_least(MID_LAP_1);
    let admin = token(&w.base(), "boss", ADMIN_PASSWORD);
    let (status, body) = http(
        "POST",
        &format!("{}/admin/actors/fault", w.base()),
        Some(&admin),
        Some(serde_json::json!({"path": w.session_path()})),
    );
    assert_eq!(status, 200, "{body}");
    assert!(w.stored().0 < 1768, "the panic happened in lap 1");
    wait_ok_within(node, Duration::from_secs(120), "replay", || w.node_log());
    w.assert_exactly_once(Ibt::open(fixture(TSUKUBA)).unwrap().record_count() as i64);
    assert_laps_match(&w, TSUKUBA);
    // The restart is on record.
    let (_, tree) = http("GET", &format!("{}/admin/actors", w.base()), Some(&admin), None);
    assert!(tree.to_string().contains("\"restarts\":1"), "{tree}");
    kill(&mut runtime);
}

#[test]
fn a_lap_in_progress_survives_a_panic_sqlite() {
    panic_mid_lap(Backend::Sqlite);
}

#[test]
fn a_lap_in_progress_survives_a_panic_postgres() {
    panic_mid_lap(Backend::Postgres);
}

/// The runtime restarts under a streaming node with another signing key: the node's token is
/// refused ("signature invalid"), it refreshes once and carries on.
fn rekeyed_restart(backend: Backend, before: Option<&str>, after: Option<&str>) {
    let Some(w) = world(backend) else { return };
    let mut runtime = w.start_runtime(before);
    w.login();
    let node = w.replay(&fixture(TSUKUBA), "5");
    w.wait_stored_at_least(600);
    kill(&mut runtime);
    let mut runtime = w.start_runtime(after);
    // Without the refresh on refusal the node retried its dead token until it neared expiry
    // (about 14 minutes).
    wait_ok_within(node, Duration::from_secs(90), "replay", || w.node_log());
    w.assert_exactly_once(Ibt::open(fixture(TSUKUBA)).unwrap().record_count() as i64);
    assert!(w.node_log().contains("token refused; refreshing"), "{}", w.node_log());
    kill(&mut runtime);
}

#[test]
fn the_node_comes_back_after_a_dev_mode_restart_sqlite() {
    rekeyed_restart(Backend::Sqlite, None, None);
}

#[test]
fn the_node_comes_back_after_a_dev_mode_restart_postgres() {
    rekeyed_restart(Backend::Postgres, None, None);
}

#[test]
fn the_node_comes_back_after_the_secret_is_rotated_sqlite() {
    rekeyed_restart(Backend::Sqlite, Some(SECRET_A), Some(SECRET_B));
}

#[test]
fn the_node_comes_back_after_the_secret_is_rotated_postgres() {
    rekeyed_restart(Backend::Postgres, Some(SECRET_A), Some(SECRET_B));
}

/// The token and its refresh are both refused (the password was changed while the runtime was
/// down, and the key rotated): the node says to log in again and keeps recording; after
/// `pitbox-driver login` it delivers everything, once.
fn login_needed(backend: Backend) {
    let Some(w) = world(backend) else { return };
    let mut runtime = w.start_runtime(Some(SECRET_A));
    w.login();
    let node = w.replay(&fixture(TSUKUBA), "5");
    w.wait_stored_at_least(600);
    kill(&mut runtime);
    let new_password = "a-new-password-2";
    let out = w
        .runtime_cmd(Some(SECRET_B))
        .args(["user", "passwd", "steady"])
        .env("PITBOX_PASSWORD", new_password)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut runtime = w.start_runtime(Some(SECRET_B));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !w.node_log().contains("run `pitbox-driver login` again") {
        assert!(std::time::Instant::now() < deadline, "no login request in the node log:\n{}", w.node_log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let stalled = w.stored().0;
    // `doctor` says the same.
    let doctor = w.node_cmd().args(["doctor", "--json"]).output().unwrap();
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(report.contains("run `pitbox-driver login` again"), "doctor: {report}");
    let out = w
        .node_cmd()
        .args(["login", "--server", &w.base(), "--username", "steady"])
        .env("PITBOX_PASSWORD", new_password)
        .output()
        .unwrap();
    assert!(out.status.success(), "login: {}", String::from_utf8_lossy(&out.stderr));
    wait_ok_within(node, Duration::from_secs(90), "replay", || w.node_log());
    let n = Ibt::open(fixture(TSUKUBA)).unwrap().record_count() as i64;
    assert!(stalled < n, "nothing was delivered before the new login ({stalled} of {n})");
    w.assert_exactly_once(n);
    kill(&mut runtime);
}

#[test]
fn a_refused_refresh_asks_for_a_new_login_sqlite() {
    login_needed(Backend::Sqlite);
}

#[test]
fn a_refused_refresh_asks_for_a_new_login_postgres() {
    login_needed(Backend::Postgres);
}
