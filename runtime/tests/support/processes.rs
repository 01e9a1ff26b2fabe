//! Real processes for the tests that kill, restart and re-key them: a `pitbox-runtime serve`
//! process over a test database (SQLite or PostgreSQL, see `common::TestDb`) and `pitbox-driver`
//! processes replaying recordings into it, with what those tests read back (stored samples and
//! laps, straight from the database; the API through a small HTTP helper). Env: `CARGO_TARGET_DIR`
//! (where the debug `pitbox-driver` is), `PITBOX_TEST_DATABASE_URL` (through `common`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use pitbox_schema::db::schema::{laps, telemetry_samples};
use pitbox_schema::db::DbConnection;
use serde_json::Value;

use crate::common::{Backend, TestDb};

pub const PASSWORD: &str = "driver-password-1";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const SECRET_A: &str = "process-test-secret-a-0123456789abcdef";
pub const SECRET_B: &str = "process-test-secret-b-0123456789abcdef";

pub fn fixture(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/ibt").join(name);
    assert!(p.is_file(), "fixture missing: {}", p.display());
    p
}

fn driver_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug").join("pitbox-driver");
    assert!(bin.is_file(), "{} missing: run `cargo build -p pitbox-driver` first", bin.display());
    bin
}

/// One team with one driver (`steady`, #4) and an admin (`boss`), a runtime port that stays the
/// same across restarts, and a node home.
pub struct World {
    pub db: TestDb,
    dir: tempfile::TempDir,
    pub port: u16,
    pub driver_id: String,
    pub team_id: String,
}

impl World {
    /// `None` when the backend is not available here (PostgreSQL without
    /// `PITBOX_TEST_DATABASE_URL`).
    pub fn new(backend: Backend) -> Option<World> {
        Some(World::with_db(TestDb::new(backend)?))
    }

    /// A world over a database the test made itself (a private PostgreSQL, say).
    pub fn with_db(db: TestDb) -> World {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut w = World { db, dir, port, driver_id: String::new(), team_id: String::new() };
        let out = w.runtime_cmd(Some(SECRET_A)).args(["team", "add", "Durable"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = w
            .runtime_cmd(Some(SECRET_A))
            .args(["user", "add", "steady", "--role", "driver", "--team", "Durable", "--driver-number", "4"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        w.driver_id = text.split("driver=").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
        let out = w
            .runtime_cmd(Some(SECRET_A))
            .args(["user", "add", "boss", "--role", "admin"])
            .env("PITBOX_PASSWORD", ADMIN_PASSWORD)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        w.team_id = w.conn_query(|c| {
            pitbox_schema::db::schema::drivers::table
                .find(&w.driver_id)
                .select(pitbox_schema::db::schema::drivers::team_id)
                .first::<String>(c)
        });
        w
    }

    /// The runtime's command line: `secret` `None` is dev mode (a new signing key at every start).
    pub fn runtime_cmd(&self, secret: Option<&str>) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pitbox-runtime"));
        c.env("PITBOX_DATA_DIR", self.dir.path().join("runtime"))
            .env("DATABASE_URL", &self.db.url)
            .env("PITBOX_BIND", format!("127.0.0.1:{}", self.port))
            .env("PITBOX_PASSWORD", PASSWORD)
            .env("PITBOX_FAULT_INJECTION", "true")
            .env_remove("PITBOX_MODE")
            .env("RUST_LOG", "warn");
        match secret {
            Some(s) => c.env("PITBOX_JWT_SECRET", s),
            None => c.env_remove("PITBOX_JWT_SECRET"),
        };
        c
    }

    pub fn start_runtime(&self, secret: Option<&str>) -> Child {
        let log = std::fs::File::create(self.dir.path().join("runtime.log")).unwrap();
        let child = self.runtime_cmd(secret).arg("serve").stdout(Stdio::null()).stderr(log).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "runtime did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn node_cmd(&self) -> Command {
        let mut c = Command::new(driver_bin());
        c.env("PITBOX_DRIVER_HOME", self.dir.path().join("node"))
            .env("PITBOX_PASSWORD", PASSWORD)
            .env("RUST_LOG", "warn");
        c
    }

    /// The node's home (`PITBOX_DRIVER_HOME`): its login, and its spool in `spool/`.
    pub fn node_home(&self) -> PathBuf {
        self.dir.path().join("node")
    }

    pub fn login(&self) {
        self.login_via(&self.base());
    }

    /// Logs the node in with `server` as its runtime (a proxy in front of it, say).
    pub fn login_via(&self, server: &str) {
        let out =
            self.node_cmd().args(["login", "--server", server, "--username", "steady"]).output().unwrap();
        assert!(out.status.success(), "login: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `pitbox-driver replay FILE --speed SPEED`; its log goes to [`World::node_log`].
    pub fn replay(&self, file: &Path, speed: &str) -> Child {
        let log = std::fs::File::create(self.dir.path().join("node.log")).unwrap();
        self.node_cmd()
            .args(["replay", &file.to_string_lossy(), "--speed", speed])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    pub fn runtime_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("runtime.log")).unwrap_or_default()
    }

    pub fn node_log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("node.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    pub fn conn(&self) -> DbConnection {
        pitbox_schema::db::pool::connect(&self.db.url).unwrap()
    }

    fn conn_query<T>(&self, f: impl FnOnce(&mut DbConnection) -> QueryResult<T>) -> T {
        f(&mut self.conn()).unwrap()
    }

    /// (rows, distinct seqs, min seq, max seq) stored for the driver.
    pub fn stored(&self) -> (i64, i64, i64, i64) {
        let seqs: Vec<Option<i64>> = self.conn_query(|c| {
            telemetry_samples::table
                .filter(telemetry_samples::driver_id.eq(&self.driver_id))
                .select(telemetry_samples::seq)
                .load(c)
        });
        let seqs: Vec<i64> = seqs.into_iter().map(|s| s.unwrap_or(-1)).collect();
        let distinct: std::collections::BTreeSet<i64> = seqs.iter().copied().collect();
        (
            seqs.len() as i64,
            distinct.len() as i64,
            distinct.first().copied().unwrap_or(0),
            distinct.last().copied().unwrap_or(0),
        )
    }

    pub fn wait_stored_at_least(&self, n: i64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.stored().0 < n {
            assert!(
                Instant::now() < deadline,
                "never reached {n} stored samples; node log:\n{}",
                self.node_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The driver's racing sessions, oldest first: (track, car, session type, ended).
    pub fn racing_sessions(&self) -> Vec<(String, String, Option<String>, bool)> {
        use pitbox_schema::db::schema::racing_sessions as rs;
        let rows: Vec<(String, String, Option<String>, Option<chrono::NaiveDateTime>)> =
            self.conn_query(|c| {
                rs::table
                    .filter(rs::driver_id.eq(&self.driver_id))
                    .order(rs::started_at.asc())
                    .select((rs::track, rs::car, rs::session_type, rs::ended_at))
                    .load(c)
            });
        rows.into_iter().map(|(t, c, k, e)| (t, c, k, e.is_some())).collect()
    }

    /// Every frame once, in order: seq 1..=n, and recording times increasing with seq.
    pub fn assert_exactly_once(&self, n: i64) {
        assert_eq!(self.stored(), (n, n, 1, n), "rows, distinct seqs, min, max");
        let rows = self.samples();
        assert!(rows.windows(2).all(|w| w[0].1 < w[1].1), "samples out of order");
    }

    /// Every stored sample of the driver: (seq, recorded at, JSON data), by seq.
    pub fn samples(&self) -> Vec<(i64, chrono::NaiveDateTime, String)> {
        let rows: Vec<(Option<i64>, chrono::NaiveDateTime, String)> = self.conn_query(|c| {
            telemetry_samples::table
                .filter(telemetry_samples::driver_id.eq(&self.driver_id))
                .order(telemetry_samples::seq.asc())
                .select((telemetry_samples::seq, telemetry_samples::recorded_at, telemetry_samples::data))
                .load(c)
        });
        rows.into_iter().map(|(s, t, d)| (s.unwrap_or(-1), t, d)).collect()
    }

    /// The driver's stored laps: (id, lap number, lap time, valid, kind, invalid reasons), by number.
    pub fn laps(&self) -> Vec<(String, i32, f64, bool, String, String)> {
        self.conn_query(|c| {
            laps::table
                .filter(laps::driver_id.eq(&self.driver_id))
                .order((laps::lap_number.asc(), laps::completed_at.asc()))
                .select((
                    laps::id,
                    laps::lap_number,
                    laps::lap_time,
                    laps::valid,
                    laps::kind,
                    laps::invalid_reasons,
                ))
                .load(c)
        })
    }

    pub fn session_path(&self) -> String {
        format!("/teams/{}/drivers/{}", self.team_id, self.driver_id)
    }
}

/// SIGKILL: no shutdown code runs, as in a crash or a pulled plug.
pub fn kill(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Waits for a process to end successfully within `limit` (it is killed and the test fails
/// otherwise, with `context` in the message).
pub fn wait_ok_within(mut child: Child, limit: Duration, what: &str, context: impl Fn() -> String) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{what} failed ({status}):\n{}", context());
            return;
        }
        if Instant::now() > deadline {
            kill(&mut child);
            panic!("{what} did not finish within {limit:?}:\n{}", context());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One HTTP request to our runtime from a plain (non-actix) test thread: (status, JSON body).
pub fn http(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let (method, url, token) = (method.to_owned(), url.to_owned(), token.map(str::to_owned));
    actix_rt::System::new().block_on(async move {
        let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
        let mut req = client.request(method.parse().unwrap(), &url);
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let mut res = match body {
            Some(b) => req.send_json(&b).await.unwrap(),
            None => req.send().await.unwrap(),
        };
        let bytes = res.body().limit(64 << 20).await.unwrap();
        (res.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    })
}

/// Logs `username` in over the API; the access token.
pub fn token(base: &str, username: &str, password: &str) -> String {
    let (status, body) = http(
        "POST",
        &format!("{base}/api/auth/login"),
        None,
        Some(serde_json::json!({"username": username, "password": password})),
    );
    assert_eq!(status, 200, "login {username}: {body}");
    body["token"].as_str().unwrap().to_owned()
}
