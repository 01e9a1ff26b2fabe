//! Test harness: a real runtime on `127.0.0.1:0` over a real database, and a small HTTP client.
//!
//! Every test runs on SQLite (a fresh file) and, when `PITBOX_TEST_DATABASE_URL` is set, on
//! PostgreSQL in a database of its own (created for the test, dropped after it), so tests run in
//! parallel without seeing each other's rows.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use diesel::connection::SimpleConnection;
use pitbox_runtime::config::Config;
use pitbox_runtime::server::{self, State};
use pitbox_schema::wire::{NewUser, Role};
use serde_json::{json, Value};

pub const TEST_SECRET: &str = "pitbox-test-secret-0123456789abcdef";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database for one test; dropped (PostgreSQL) or deleted (SQLite) afterwards.
pub struct TestDb {
    pub url: String,
    admin_url: Option<String>,
    name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = dir.path().join("pitbox.db").to_string_lossy().into_owned();
                Some(TestDb { url, admin_url: None, name: None, _dir: Some(dir) })
            }
            Backend::Postgres => Some(TestDb::postgres_at(&std::env::var("PITBOX_TEST_DATABASE_URL").ok()?)),
        }
    }

    /// A database of its own on the PostgreSQL server at `base` (a URL with a database to connect to).
    pub fn postgres_at(base: &str) -> TestDb {
        let base = base.to_owned();
        let name = format!("pitbox_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = pitbox_schema::db::pool::connect(&base).expect("connect to the test PostgreSQL");
        conn.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let url = match base.rfind('/') {
            Some(i) if base[..i].contains("://") && i > base.find("://").unwrap() + 2 => {
                format!("{}/{}", &base[..i], name)
            }
            _ => format!("{base}/{name}"),
        };
        TestDb { url, admin_url: Some(base), name: Some(name), _dir: None }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let (Some(base), Some(name)) = (&self.admin_url, &self.name) {
            if let Ok(mut conn) = pitbox_schema::db::pool::connect(base) {
                let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// A running server and what a test needs to talk to it.
pub struct TestServer {
    pub base: String,
    pub state: State,
    pub client: awc::Client,
    handle: actix_web::dev::ServerHandle,
    _db: TestDb,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: Value,
}

impl TestServer {
    /// Starts a server; `tweak` adjusts the test configuration first. `None` if the backend is
    /// not configured (PostgreSQL without `PITBOX_TEST_DATABASE_URL`).
    pub async fn start(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<TestServer> {
        let db = TestDb::new(backend)?;
        let mut config = Config::for_database(db.url.clone()).unwrap();
        // Generous limits: tests that exercise limiting set their own.
        config.rate_limit_per_ip = 100_000;
        config.rate_limit_per_user = 100_000;
        config.rate_limit_login = 10_000;
        tweak(&mut config);
        let state = State::new(config).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = server::start(state.clone(), listener).unwrap();
        let handle = server.handle();
        actix_rt::spawn(server);
        let client = awc::Client::builder().timeout(std::time::Duration::from_secs(30)).finish();
        Some(TestServer { base, state, client, handle, _db: db })
    }

    /// [`TestServer::start`] serving HTTPS/WSS with the certificate `tls` hands out, at
    /// `https://localhost:<port>`; `client` is how the test talks to it (trusting the test's CA).
    pub async fn start_tls(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
        tls: std::sync::Arc<pitbox_runtime::tls::CertResolver>,
        client: awc::Client,
    ) -> Option<TestServer> {
        let db = TestDb::new(backend)?;
        let mut config = Config::for_database(db.url.clone()).unwrap();
        config.tls = Some(tls.files().clone());
        tweak(&mut config);
        let state = State::new(config).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("https://localhost:{}", listener.local_addr().unwrap().port());
        let server = server::start_with(state.clone(), listener, Some(tls)).unwrap();
        let handle = server.handle();
        actix_rt::spawn(server);
        Some(TestServer { base, state, client, handle, _db: db })
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }

    /// Creates a user directly in the database (argon2 and all), returning its id.
    pub fn create_user(&self, username: &str, role: Role, teams: &[&str]) -> String {
        let new = NewUser {
            username: username.into(),
            password: format!("{username}-password"),
            role,
            teams: teams.iter().map(|t| t.to_string()).collect(),
        };
        self.state.db.run_blocking(|c| pitbox_runtime::routes::users::create_user(c, &new)).unwrap().id
    }

    pub fn create_team(&self, name: &str) -> String {
        self.state
            .db
            .run_blocking(|c| Ok(pitbox_schema::db::store::teams::create_team(c, name)??))
            .unwrap()
            .id
    }

    /// A driver user with a driver profile in `team`; returns (user id, driver id).
    pub fn create_driver(&self, username: &str, team: &str, number: i32) -> (String, String) {
        let uid = self.create_user(username, Role::Driver, &[team]);
        let d = pitbox_schema::wire::NewDriver {
            name: username.into(),
            number,
            role: pitbox_schema::wire::DriverRole::Primary,
            avatar_url: None,
            user_id: Some(uid.clone()),
        };
        let driver = self
            .state
            .db
            .run_blocking(|c| Ok(pitbox_schema::db::store::drivers::create_driver(c, team, &d)??))
            .unwrap();
        (uid, driver.id)
    }

    /// Logs in as `username` (password `<username>-password`) and returns the login answer.
    pub async fn login_full(&self, username: &str) -> Value {
        let r = self
            .send(
                "POST",
                "/api/auth/login",
                None,
                Some(json!({"username": username, "password": format!("{username}-password")})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "login of {username}: {}", r.body);
        r.body
    }

    /// A driver node's home in `dir`, logged in as `username` (password `{username}-password`),
    /// as `pitbox-driver login` leaves it.
    pub async fn node_home(&self, username: &str, dir: &std::path::Path) -> std::path::PathBuf {
        let home = dir.join("home");
        pitbox_driver::credentials::login(
            &self.client,
            &self.base,
            username,
            &format!("{username}-password"),
        )
        .await
        .unwrap()
        .save(&home)
        .unwrap();
        home
    }

    pub async fn login(&self, username: &str) -> String {
        self.login_full(username).await["token"].as_str().unwrap().to_owned()
    }

    pub async fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let raw = body.map(|b| b.to_string());
        self.send_raw(method, path, token, raw.as_deref(), "application/json").await
    }

    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        content_type: &str,
    ) -> Resp {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.insert_header(("Authorization", format!("Bearer {t}")));
        }
        let mut res = match body {
            Some(b) => {
                req.insert_header(("Content-Type", content_type)).send_body(b.to_owned()).await.unwrap()
            }
            None => req.send().await.unwrap(),
        };
        let bytes = res.body().limit(64 * 1024 * 1024).await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Resp { status: res.status(), headers: res.headers().clone(), body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send("POST", path, Some(token), Some(body)).await
    }
}

/// Runs `$body` (an async block using `srv: TestServer`) once per backend: `mod sqlite` and
/// `mod postgres` tests. PostgreSQL tests pass trivially when `PITBOX_TEST_DATABASE_URL` is unset;
/// `.ci/run` always sets it.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, |$srv:ident| $body:block) => {
        on_both_backends!($name, |_c| {}, |$srv| $body);
    };
    ($name:ident, |$cfg:ident| $tweak:block, |$srv:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run(backend: $crate::common::Backend) {
                let Some($srv) = $crate::common::TestServer::start(backend, |$cfg| $tweak).await else {
                    eprintln!("skipped: PITBOX_TEST_DATABASE_URL is not set");
                    return;
                };
                $body
            }
            #[actix_rt::test]
            async fn sqlite() {
                run($crate::common::Backend::Sqlite).await;
            }
            #[actix_rt::test]
            async fn postgres() {
                run($crate::common::Backend::Postgres).await;
            }
        }
    };
}

/// A believable 60 Hz sample at time `t` of a lap of `lap_secs` seconds.
pub fn sample_at(t: f64, lap_secs: f64) -> Value {
    let dist = t / lap_secs;
    json!({
        "sessionTime": t,
        "speed": 180.0 + 40.0 * (dist * std::f64::consts::TAU).sin(),
        "rpm": 7200.0,
        "gear": 4,
        "throttle": 85.0,
        "brake": 0.0,
        "clutch": 0.0,
        "steeringAngle": -3.5,
        "lap": dist.floor() as i32 + 1,
        "trackPosition": dist.fract(),
        "sector": (dist.fract() * 3.0).floor() as i32 + 1,
        "position": 3,
        "fuelLevel": 60.0 - dist * 2.5,
        "fuelLevelPct": 60.0 - dist * 2.5,
        "fuelUsePerHour": 28.0,
        "tireWear": {"frontLeft": 99.0, "frontRight": 98.5, "rearLeft": 99.2, "rearRight": 99.0},
        "onPitRoad": false,
        "flags": 4,
        "cars": {"lap": [1, 2], "lapDistPct": [0.1, 0.5], "position": [1, 2], "onPitRoad": [false, false]}
    })
}

pub fn timestamp_at(t: f64) -> String {
    let base = chrono::DateTime::parse_from_rfc3339("2026-11-21T12:00:00Z").unwrap();
    (base + chrono::Duration::milliseconds((t * 1000.0) as i64)).to_rfc3339()
}

/// A WebSocket client speaking the PitBox protocol to the test server.
/// A text message or a binary frame.
#[derive(Debug)]
pub enum Incoming {
    Text(Value),
    Binary(Vec<u8>),
}

pub struct WsClient {
    conn: actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>,
    pub closed: Option<Option<awc::ws::CloseReason>>,
}

impl WsClient {
    /// Connects to `/ws` and reads `connection_established`.
    pub async fn connect(srv: &TestServer) -> WsClient {
        let (_, conn) = srv
            .client
            .ws(format!("{}/ws", srv.base))
            .max_frame_size(16 * 1024 * 1024)
            .connect()
            .await
            .unwrap();
        let mut c = WsClient { conn, closed: None };
        let hello = c.recv().await.expect("connection_established");
        assert_eq!(hello["type"], "connection_established");
        assert_eq!(hello["data"]["protocol"], 1);
        c
    }

    /// Connects and authenticates; panics unless accepted.
    pub async fn login(srv: &TestServer, token: &str, client_type: &str) -> WsClient {
        let mut c = Self::connect(srv).await;
        let r = c.authenticate(token, client_type).await;
        assert_eq!(r["data"]["success"], true, "{r}");
        c
    }

    pub async fn authenticate(&mut self, token: &str, client_type: &str) -> Value {
        self.send(json!({"type": "authenticate", "id": "auth", "data": {"token": token, "clientType": client_type, "version": "test"}}))
            .await;
        self.recv_type("authentication_result").await.expect("authentication_result")
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        use futures_util::SinkExt;
        let _ = self.conn.send(awc::ws::Message::Text(text.into())).await;
    }

    /// Sends `parts` as one text message in continuation frames (RFC 6455 §5.4): a first text
    /// frame, continues, a last frame. The bytes need not be UTF-8 (the server must check).
    pub async fn send_fragments(&mut self, parts: &[&[u8]]) {
        use actix_http::ws::Item;
        use actix_web::web::Bytes;
        use futures_util::SinkExt;
        let last = parts.len().saturating_sub(1);
        for (i, part) in parts.iter().enumerate() {
            let bytes = Bytes::copy_from_slice(part);
            let item = match i {
                0 => Item::FirstText(bytes),
                _ if i == last => Item::Last(bytes),
                _ => Item::Continue(bytes),
            };
            // A server that closed mid-message makes later writes fail: the close code tells.
            if self.conn.send(awc::ws::Message::Continuation(item)).await.is_err() {
                return;
            }
        }
        if parts.len() == 1 {
            let _ = self.conn.send(awc::ws::Message::Continuation(Item::Last(Bytes::new()))).await;
        }
    }

    /// Writes one frame as given (masked, as from a client), bypassing the codec's checks: e.g.
    /// a text frame that is not UTF-8.
    pub async fn send_raw_frame(&mut self, payload: &[u8], op: actix_http::ws::OpCode, fin: bool) {
        use actix_codec::AsyncWrite;
        let mut buf = actix_web::web::BytesMut::new();
        actix_http::ws::Parser::write_message(&mut buf, payload, op, fin, true);
        let io = self.conn.io_mut();
        let mut at = 0;
        while at < buf.len() {
            let wrote =
                std::future::poll_fn(|cx| std::pin::Pin::new(&mut *io).poll_write(cx, &buf[at..])).await;
            match wrote {
                Ok(n) if n > 0 => at += n,
                _ => return,
            }
        }
        let _ = std::future::poll_fn(|cx| std::pin::Pin::new(&mut *io).poll_flush(cx)).await;
    }

    /// The next text message within 10 s (`None` on close or timeout).
    pub async fn recv(&mut self) -> Option<Value> {
        self.recv_within(std::time::Duration::from_secs(10)).await
    }

    /// The next text message within `limit` (binary frames skipped, pings answered).
    pub async fn recv_within(&mut self, limit: std::time::Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match self.recv_any(deadline.saturating_duration_since(tokio::time::Instant::now())).await? {
                Incoming::Text(v) => return Some(v),
                Incoming::Binary(_) => {}
            }
        }
    }

    /// Sends one binary frame (media).
    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> bool {
        use futures_util::SinkExt;
        self.conn.send(awc::ws::Message::Binary(bytes.into())).await.is_ok()
    }

    /// The next text message or binary frame within `limit` (pings answered on the way).
    pub async fn recv_any(&mut self, limit: std::time::Duration) -> Option<Incoming> {
        use futures_util::StreamExt;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.conn.next()).await {
                Ok(Some(Ok(f))) => f,
                Ok(_) | Err(_) => return None,
            };
            match frame {
                awc::ws::Frame::Text(t) => return Some(Incoming::Text(serde_json::from_slice(&t).unwrap())),
                awc::ws::Frame::Binary(b) => return Some(Incoming::Binary(b.to_vec())),
                awc::ws::Frame::Close(r) => {
                    self.closed = Some(r);
                    return None;
                }
                awc::ws::Frame::Ping(p) => {
                    use futures_util::SinkExt;
                    let _ = self.conn.send(awc::ws::Message::Pong(p)).await;
                }
                _ => {}
            }
        }
    }

    /// The next message of type `t`, skipping others.
    pub async fn recv_type(&mut self, t: &str) -> Option<Value> {
        loop {
            let m = self.recv().await?;
            if m["type"] == t {
                return Some(m);
            }
        }
    }

    /// Waits for the server to close the connection; returns the close code.
    pub async fn close_code(&mut self) -> Option<u16> {
        while self.closed.is_none() {
            if self.recv().await.is_none() {
                break;
            }
        }
        self.closed.clone().flatten().map(|r| u16::from(r.code))
    }
}

/// A frame for `telemetry_batch`: sample at `t` with sequence number `seq`.
pub fn frame_at(seq: u64, t: f64, lap_secs: f64) -> Value {
    let mut f = sample_at(t, lap_secs);
    f["seq"] = json!(seq);
    f["timestamp"] = json!(timestamp_at(t));
    f
}

// ---------------------------------------------------------------- socket scenarios

/// Sends `count` frames from `first_seq` at 60 Hz of session time, in batches of `batch`; paced in
/// real time when `paced` (10 batches of 6 per second), as fast as possible otherwise.
pub async fn stream(
    node: &mut WsClient,
    driver: &str,
    first_seq: u64,
    count: u64,
    lap_secs: f64,
    batch: u64,
    paced: bool,
) {
    let mut tick = actix_rt::time::interval(Duration::from_millis(100));
    let mut seq = first_seq;
    while seq < first_seq + count {
        if paced {
            tick.tick().await;
        }
        let n = batch.min(first_seq + count - seq);
        let frames: Vec<Value> = (seq..seq + n).map(|s| frame_at(s, s as f64 / 60.0, lap_secs)).collect();
        node.send(json!({"type": "telemetry_batch", "data": {"driverId": driver, "streamId": "node-1", "frames": frames}}))
            .await;
        seq += n;
    }
}

/// Reads acks until `seq` is acknowledged; returns every error seen meanwhile.
pub async fn await_ack(node: &mut WsClient, seq: u64) -> Vec<Value> {
    let mut errors = vec![];
    loop {
        let m = node.recv().await.unwrap_or_else(|| panic!("no ack for {seq}; errors {errors:?}"));
        if m["type"] == "ack" && m["data"]["seq"].as_u64().unwrap() >= seq {
            return errors;
        }
        if m["type"] == "error" {
            errors.push(m);
        }
    }
}

/// Sends frames `first..first+count` until they are acknowledged, resending after each error (what
/// a node's spool does while its session restarts).
pub async fn resend_until_acked(node: &mut WsClient, driver: &str, first: u64, count: u64) {
    let last = first + count - 1;
    for _ in 0..50 {
        stream(node, driver, first, count, 1.5, count, false).await;
        loop {
            let m = node.recv().await.expect("ack or error");
            if m["type"] == "ack" && m["data"]["seq"].as_u64().unwrap() >= last {
                return;
            }
            if m["type"] == "error" {
                break;
            }
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("frames {first}..={last} never acknowledged");
}

/// Collects telemetry updates (arrival time, message) and other pushes until `until` passes.
pub async fn collect(mut c: WsClient, until: Instant) -> (Vec<(Instant, Value)>, Vec<Value>) {
    let (mut samples, mut events) = (vec![], vec![]);
    while Instant::now() < until {
        let left = until.saturating_duration_since(Instant::now());
        match c.recv_within(left).await {
            Some(m) if m["type"] == "telemetry_update" => samples.push((Instant::now(), m)),
            Some(m) => events.push(m),
            None => break,
        }
    }
    (samples, events)
}

pub async fn setup_team(srv: &TestServer) -> (String, String, String, String) {
    let team = srv.create_team("Socket Racing");
    let (_, driver) = srv.create_driver("node1", &team, 11);
    srv.create_user("watcher", Role::Team, &[&team]);
    let node = srv.login("node1").await;
    let watcher = srv.login("watcher").await;
    (team, driver, node, watcher)
}

/// This process's resident memory in KiB (0 where /proc is not there).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
