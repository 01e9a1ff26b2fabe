//! The load generator against the real runtime (in this process, SQLite) and against the Python
//! baseline relay: a short run of 5 drivers and 4 dashboards, then every sample the nodes had
//! acknowledged is looked up in the runtime's database, and the dashboards must have received
//! samples; and the soak's short form (20 drivers, 40 s), whose verdict must pass. The relay test is skipped, with a message, when python3 or its `websockets` package
//! is missing. Reads no env vars.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use diesel::prelude::*;
use pitbox_runtime::config::Config;
use pitbox_runtime::server::{self, State};
use pitbox_schema::db::schema::telemetry_samples;
use pitbox_schema::wire::Role;
use serde_json::Value;

const ADMIN_PASSWORD: &str = "loadgen-admin-password-1";

/// Runs the load generator to the end (off the test's actix thread, so the in-process server
/// keeps serving) and returns its JSON report.
async fn loadgen(args: Vec<String>) -> Value {
    let out = actix_rt::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pitbox-loadgen"))
            .args(&args)
            .env("PITBOX_LOADGEN_PASSWORD", ADMIN_PASSWORD)
            .stderr(Stdio::inherit())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "pitbox-loadgen failed: {}", String::from_utf8_lossy(&out.stdout));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn short_run(url: &str) -> Vec<String> {
    [
        "--url",
        url,
        "--drivers",
        "5",
        "--dashboards",
        "4",
        "--team-size",
        "5",
        "--secs",
        "3",
        "--warmup",
        "1",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A runtime in this process (SQLite in `dir`) with the admin the load generator logs in as.
fn runtime(dir: &Path) -> (State, String, actix_web::dev::ServerHandle) {
    let mut config = Config::for_database(dir.join("load.db").to_string_lossy().into_owned()).unwrap();
    config.rate_limit_login = 1000;
    config.rate_limit_per_ip = 100_000;
    config.rate_limit_per_user = 100_000;
    let state = State::new(config).unwrap();
    let hash = pitbox_runtime::auth::hash_password(ADMIN_PASSWORD).unwrap();
    state
        .db
        .run_blocking(|c| Ok(pitbox_schema::db::store::users::create_user(c, "admin", hash, Role::Admin)??))
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let srv = server::start(state.clone(), listener).unwrap();
    let handle = srv.handle();
    actix_rt::spawn(srv);
    (state, url, handle)
}

#[actix_rt::test]
async fn every_acknowledged_sample_is_stored_and_dashboards_see_samples() {
    let dir = tempfile::tempdir().unwrap();
    let (state, url, handle) = runtime(dir.path());

    let mut args = short_run(&url);
    args.extend(["--server-pid".into(), std::process::id().to_string()]);
    let r = loadgen(args).await;

    assert_eq!(r["drivers"], 5);
    assert!(r["generatorBehind"].is_boolean(), "{r}");
    assert!(r["acknowledgedPerSec"].is_null(), "field names are stable");
    assert!(r["ackedPerSec"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["deliveredPerSec"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["latencySamples"].as_u64().unwrap() > 0, "{r}");
    assert!(r["serverRssPeakMib"].as_f64().unwrap() > 0.0, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    let nodes = r["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 5);
    for n in nodes {
        let driver = n["driverId"].as_str().unwrap().to_owned();
        let (first, acked) = (n["firstSeq"].as_i64().unwrap(), n["ackedSeq"].as_i64().unwrap());
        assert!(first >= 1 && acked >= first, "node acknowledged nothing: {n}");
        let d = driver.clone();
        let stored: i64 = state
            .db
            .run_blocking(move |c| {
                Ok(telemetry_samples::table
                    .filter(telemetry_samples::driver_id.eq(&d))
                    .filter(telemetry_samples::seq.between(first, acked))
                    .count()
                    .get_result(c)?)
            })
            .unwrap();
        assert_eq!(stored, acked - first + 1, "driver {driver}: frames {first}..={acked} acknowledged");
    }
    handle.stop(false).await;
}

/// The soak's short form (what CI runs; the full one is `--secs 1800 --window 30`): 20 drivers for
/// 40 s in windows of 5 s, the first 10 s left out. Memory, the actor tree's mailboxes, the store
/// writer's queue and latency must hold steady, and every window must have read the tree.
#[actix_rt::test]
async fn a_short_soak_holds_steady() {
    let dir = tempfile::tempdir().unwrap();
    let (_state, url, handle) = runtime(dir.path());
    let args: Vec<String> = [
        "--url",
        &url,
        "--drivers",
        "20",
        "--team-size",
        "10",
        "--secs",
        "40",
        "--warmup",
        "2",
        "--soak",
        "--window",
        "5",
        "--soak-warmup",
        "10",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(["--server-pid".into(), std::process::id().to_string()])
    .collect();
    let r = loadgen(args).await;

    let soak = &r["soak"];
    // The figures, for `--nocapture`.
    eprintln!("soak verdict: {}", soak["verdict"]);
    let windows = soak["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 8, "{soak}");
    assert_eq!(windows.iter().filter(|w| w["warmup"] == true).count(), 2);
    for w in windows {
        assert!(w["mailboxTotal"].is_u64() && w["serverRssMib"].as_f64().unwrap() > 0.0, "{w}");
        assert!(w["acked"].as_u64().unwrap() > 0, "nothing stored in a window: {w}");
    }
    let names: Vec<&str> =
        soak["verdict"]["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["serverRssMib", "mailboxTotal", "queuedRows", "p99Ms"], "{soak}");
    assert_eq!(soak["verdict"]["pass"], true, "{soak}");
    assert_eq!(r["errors"], 0, "{r}");
    handle.stop(false).await;
}

/// Whether python3 with the `websockets` package is here.
fn python_with_websockets() -> bool {
    Command::new("python3")
        .args(["-c", "import websockets"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[actix_rt::test]
async fn drives_the_python_relay() {
    if !python_with_websockets() {
        eprintln!("SKIPPED: python3 with the `websockets` package is not here (tools/setup.sh installs it)");
        return;
    }
    let relay = Path::new(env!("CARGO_MANIFEST_DIR")).join("baseline/relay.py");
    let mut child = Command::new("python3")
        .arg(&relay)
        .args(["--host", "127.0.0.1", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The relay says where it listens once it accepts connections.
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split_whitespace().nth(2).unwrap_or_else(|| panic!("relay said: {line}")).to_owned();
    let mut args = short_run(&format!("http://{addr}"));
    args.extend(["--target".into(), "relay".into(), "--server-pid".into(), child.id().to_string()]);
    let r = loadgen(args).await;
    let _ = child.kill();
    let _ = child.wait();

    assert_eq!(r["target"], "relay");
    assert!(r["ackedPerSec"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["deliveredPerSec"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["latencySamples"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
}

#[test]
fn refuses_a_remote_url() {
    let out = Command::new(env!("CARGO_BIN_EXE_pitbox-loadgen"))
        .args(["--url", "http://192.0.2.1:8080", "--secs", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
}
