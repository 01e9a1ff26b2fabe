//! Nothing is lost, nothing is doubled: a real runtime process and a real node process replay a
//! recording while one of them is killed (SIGKILL) mid-stream and started again; afterwards every
//! frame of the recording is stored exactly once, in order. On SQLite and PostgreSQL. Needs the
//! `pitbox-driver` binary (built by `cargo test --workspace`). Env: see `support/processes.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/processes.rs"]
mod processes;

use std::time::Duration;

use common::Backend;
use pitbox_driver::ibt::Ibt;
use processes::*;

const RECORDING: &str = "tsukuba_formulavee_3laps.ibt";

fn record_count() -> i64 {
    Ibt::open(fixture(RECORDING)).unwrap().record_count() as i64
}

fn runtime_killed(backend: Backend) {
    let Some(w) = World::new(backend) else { return eprintln!("skipped: no PostgreSQL") };
    let mut runtime = w.start_runtime(Some(SECRET_A));
    w.login();
    let node = w.replay(&fixture(RECORDING), "10");
    w.wait_stored_at_least(500);
    kill(&mut runtime);
    let stored_before = w.stored().0;
    // The node keeps recording into its spool while the runtime is down.
    std::thread::sleep(Duration::from_millis(700));
    let mut runtime = w.start_runtime(Some(SECRET_A));
    wait_ok_within(node, Duration::from_secs(120), "replay", || w.node_log());
    let n = record_count();
    w.assert_exactly_once(n);
    assert!(stored_before < n, "the kill happened mid-stream ({stored_before} of {n})");
    kill(&mut runtime);
}

#[test]
fn a_runtime_killed_mid_stream_loses_and_doubles_nothing_sqlite() {
    runtime_killed(Backend::Sqlite);
}

#[test]
fn a_runtime_killed_mid_stream_loses_and_doubles_nothing_postgres() {
    runtime_killed(Backend::Postgres);
}

fn node_killed(backend: Backend) {
    let Some(w) = World::new(backend) else { return eprintln!("skipped: no PostgreSQL") };
    let mut runtime = w.start_runtime(Some(SECRET_A));
    w.login();
    let mut node = w.replay(&fixture(RECORDING), "10");
    w.wait_stored_at_least(800);
    kill(&mut node);
    let stored_before = w.stored().0;
    // Started again, the replay resumes at its next frame and first delivers what its spool kept.
    wait_ok_within(w.replay(&fixture(RECORDING), "10"), Duration::from_secs(120), "resumed replay", || {
        w.node_log()
    });
    let n = record_count();
    w.assert_exactly_once(n);
    assert!(stored_before < n, "the kill happened mid-stream ({stored_before} of {n})");
    kill(&mut runtime);
}

#[test]
fn a_node_killed_mid_stream_resumes_and_doubles_nothing_sqlite() {
    node_killed(Backend::Sqlite);
}

#[test]
fn a_node_killed_mid_stream_resumes_and_doubles_nothing_postgres() {
    node_killed(Backend::Postgres);
}
