//! Nothing is lost, nothing is doubled: a real runtime process and a real node process replay a
//! recording while one of them is killed (SIGKILL) mid-stream and started again; afterwards every
//! frame of the recording is stored exactly once, in order. Needs the `pitbox-runtime` binary
//! (built by `cargo test --workspace`, or `cargo build -p pitbox-runtime`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::BigInt;

const SECRET: &str = "durability-test-secret-0123456789abcdef";
const PASSWORD: &str = "driver-password-1";

fn fixture() -> PathBuf {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/ibt/tsukuba_formulavee_3laps.ibt"
    ));
    assert!(p.is_file(), "fixture missing: {}", p.display());
    p
}

fn runtime_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    let bin = target.join("debug").join("pitbox-runtime");
    assert!(bin.is_file(), "{} missing: run `cargo build -p pitbox-runtime` first", bin.display());
    bin
}

struct World {
    dir: tempfile::TempDir,
    port: u16,
    driver_id: String,
}

impl World {
    fn runtime_cmd(&self) -> Command {
        let mut c = Command::new(runtime_bin());
        c.env("PITBOX_DATA_DIR", self.dir.path().join("runtime"))
            .env("PITBOX_JWT_SECRET", SECRET)
            .env("PITBOX_BIND", format!("127.0.0.1:{}", self.port))
            .env("PITBOX_PASSWORD", PASSWORD)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn");
        c
    }

    fn node_cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pitbox-driver"));
        c.env("PITBOX_DRIVER_HOME", self.dir.path().join("node"))
            .env("PITBOX_PASSWORD", PASSWORD)
            .env("RUST_LOG", "warn");
        c
    }

    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        // A free port the runtime can have again after a restart.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut w = World { dir, port, driver_id: String::new() };
        assert!(w.runtime_cmd().args(["team", "add", "Durable"]).status().unwrap().success());
        let out = w
            .runtime_cmd()
            .args(["user", "add", "steady", "--role", "driver", "--team", "Durable", "--driver-number", "4"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        w.driver_id = text.split("driver=").nth(1).unwrap().trim().to_owned();
        w
    }

    fn start_runtime(&self) -> Child {
        let child =
            self.runtime_cmd().arg("serve").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "runtime did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    fn login(&self) {
        let out = self
            .node_cmd()
            .args(["login", "--server", &format!("http://127.0.0.1:{}", self.port), "--username", "steady"])
            .output()
            .unwrap();
        assert!(out.status.success(), "login: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn replay(&self) -> Child {
        self.node_cmd()
            .args(["replay", &fixture().to_string_lossy(), "--speed", "10"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn db(&self) -> SqliteConnection {
        let path = self.dir.path().join("runtime").join("pitbox.db");
        SqliteConnection::establish(&path.to_string_lossy()).unwrap()
    }

    /// (rows, distinct seqs, min seq, max seq) stored for the driver.
    fn stored(&self) -> (i64, i64, i64, i64) {
        #[derive(QueryableByName)]
        struct Counts {
            #[diesel(sql_type = BigInt)]
            n: i64,
            #[diesel(sql_type = BigInt)]
            d: i64,
            #[diesel(sql_type = BigInt)]
            lo: i64,
            #[diesel(sql_type = BigInt)]
            hi: i64,
        }
        let c: Counts = diesel::sql_query(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS d, COALESCE(MIN(seq), 0) AS lo, COALESCE(MAX(seq), 0) AS hi \
             FROM telemetry_samples WHERE driver_id = ?",
        )
        .bind::<diesel::sql_types::Text, _>(&self.driver_id)
        .get_result(&mut self.db())
        .unwrap();
        (c.n, c.d, c.lo, c.hi)
    }

    fn wait_stored_at_least(&self, n: i64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.stored().0 < n {
            assert!(Instant::now() < deadline, "never reached {n} stored samples");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every frame once, in order: seq 1..=n, and recording times increasing with seq.
    fn assert_exactly_once(&self, n: i64) {
        assert_eq!(self.stored(), (n, n, 1, n), "rows, distinct seqs, min, max");
        #[derive(QueryableByName)]
        struct Bad {
            #[diesel(sql_type = BigInt)]
            bad: i64,
        }
        let b: Bad = diesel::sql_query(
            "SELECT COUNT(*) AS bad FROM telemetry_samples a JOIN telemetry_samples b \
             ON b.driver_id = a.driver_id AND b.seq = a.seq + 1 WHERE b.recorded_at < a.recorded_at",
        )
        .get_result(&mut self.db())
        .unwrap();
        assert_eq!(b.bad, 0, "samples out of order");
    }
}

fn kill(child: &mut Child) {
    // SIGKILL: no shutdown code runs, as in a crash or a pulled plug.
    child.kill().unwrap();
    child.wait().unwrap();
}

fn record_count() -> i64 {
    let ibt = driver_node::ibt::Ibt::open(fixture()).unwrap();
    ibt.record_count() as i64
}

fn wait_ok(child: Child, what: &str) {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_runtime_killed_mid_stream_loses_and_doubles_nothing() {
    let w = World::new();
    let mut runtime = w.start_runtime();
    w.login();
    let node = w.replay();
    w.wait_stored_at_least(500);
    kill(&mut runtime);
    let stored_before = w.stored().0;
    // The node keeps recording into its spool while the runtime is down.
    std::thread::sleep(Duration::from_millis(700));
    let mut runtime = w.start_runtime();
    wait_ok(node, "replay");
    let n = record_count();
    w.assert_exactly_once(n);
    assert!(stored_before < n, "the kill happened mid-stream ({stored_before} of {n})");
    kill(&mut runtime);
}

#[test]
fn a_node_killed_mid_stream_resumes_and_doubles_nothing() {
    let w = World::new();
    let mut runtime = w.start_runtime();
    w.login();
    let mut node = w.replay();
    w.wait_stored_at_least(800);
    kill(&mut node);
    let stored_before = w.stored().0;
    // Started again, the replay resumes at its next frame and first delivers what its spool kept.
    wait_ok(w.replay(), "resumed replay");
    let n = record_count();
    w.assert_exactly_once(n);
    assert!(stored_before < n, "the kill happened mid-stream ({stored_before} of {n})");
    kill(&mut runtime);
}
