//! Faults while a race is on, with real processes: a real `pitbox-driver` replays a recording into
//! a real `pitbox-runtime` while
//! - the PostgreSQL server under the runtime is stopped (as in a crash: `pg_ctl -m immediate`) and
//!   started again: writes wait and resume, the node's spool holds what is not acknowledged;
//! - the network between node and runtime is cut (a TCP relay in front of the runtime drops every
//!   connection and refuses new ones for a while): the node reconnects and resends;
//! - actors panic at random under load (the driver's session, its coach, voice and video, its team);
//! - the node's spool is on a full disk (a 2 MiB tmpfs filled up; Linux as root only, skipped with
//!   the reason otherwise): the node says so in one clear error and streams live without the spool.
//!
//! Afterwards every frame of the recording is stored exactly once, in order, and every lap once.
//! The short forms run in CI; the full forms by env:
//! `PITBOX_FAULT_OUTAGE_SECS` (how long PostgreSQL is down and the link is cut; default 3),
//! `PITBOX_FAULT_PANICS` (panics injected; default 8). For example, the full form:
//! `PITBOX_FAULT_OUTAGE_SECS=60 PITBOX_FAULT_PANICS=100 cargo test -p pitbox-runtime --test faults`.
//!
//! The PostgreSQL test runs a server of its own (initdb into a temporary directory, as the
//! `postgres` user when run as root), so stopping it disturbs nothing else; it is skipped with a
//! message where PostgreSQL's server programs are not installed. Env: see `support/processes.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/processes.rs"]
mod processes;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Backend, TestDb};
use pitbox_driver::ibt::{laps, Ibt};
use processes::*;
use rand::Rng;

const RECORDING: &str = "tsukuba_formulavee_3laps.ibt";

fn outage() -> Duration {
    let secs = std::env::var("PITBOX_FAULT_OUTAGE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

/// Every frame once, and the recording's laps once each, by number.
fn assert_whole_race(w: &World) {
    let ibt = Ibt::open(fixture(RECORDING)).unwrap();
    w.assert_exactly_once(ibt.record_count() as i64);
    assert_whole_laps(w);
}

// --- PostgreSQL stopped and started -------------------------------------------------------------

/// A PostgreSQL server of this test's own, on a free loopback port, in a temporary directory.
struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Run as this user (`postgres` when the test runs as root: the server refuses root).
    user: Option<String>,
}

impl PrivatePostgres {
    /// `None` (with the reason) when PostgreSQL's server programs are not here.
    fn new() -> Result<PrivatePostgres, String> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("/usr/lib/postgresql: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("initdb").is_file() && b.join("pg_ctl").is_file())
            .ok_or("no initdb under /usr/lib/postgresql")?;
        let dir = tempfile::tempdir().unwrap();
        let root =
            Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false);
        let user = if root {
            let ids = Command::new("id").args(["-u", "postgres"]).output().map_err(|e| e.to_string())?;
            let gid = Command::new("id").args(["-g", "postgres"]).output().map_err(|e| e.to_string())?;
            let parse =
                |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).trim().parse::<u32>().ok();
            let (Some(uid), Some(gid)) = (parse(&ids), parse(&gid)) else {
                return Err("no postgres user to run the server as".into());
            };
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
            Some("postgres".to_owned())
        } else {
            None
        };
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = PrivatePostgres { bin, dir, port, user };
        let data = pg.data();
        pg.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])?;
        Ok(pg)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(program);
        let mut cmd = match &self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out =
            cmd.args(args).current_dir(self.dir.path()).output().map_err(|e| format!("{program}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn start(&self) {
        let (data, dir) = (self.data(), self.dir.path().to_string_lossy().into_owned());
        let log = self.dir.path().join("server.log").to_string_lossy().into_owned();
        let opts = format!("-p {} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off", self.port);
        self.run("pg_ctl", &["-D", &data, "-l", &log, "-o", &opts, "-w", "start"]).unwrap();
    }

    /// As in a crash: no checkpoint, clients cut off at once.
    fn crash(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]).unwrap();
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
    }
}

#[test]
fn postgres_stopped_and_started_mid_race_loses_and_doubles_nothing() {
    let pg = match PrivatePostgres::new() {
        Ok(pg) => pg,
        Err(why) => return eprintln!("skipped: {why}"),
    };
    pg.start();
    let w = World::with_db(TestDb::postgres_at(&pg.url()));
    let mut runtime = w.start_runtime(Some(SECRET_A));
    w.login();
    let node = w.replay(&fixture(RECORDING), "4");
    w.wait_stored_at_least(600);
    pg.crash();
    // The fault itself lasts this long; nothing waits on it.
    std::thread::sleep(outage());
    pg.start();
    wait_ok_within(node, Duration::from_secs(240), "replay", || w.node_log());
    assert_whole_race(&w);
    // The outage was felt: the writer failed and retried, it did not just happen to be idle.
    assert!(w.runtime_log().contains("storing telemetry failed"), "{}", w.runtime_log());
    kill(&mut runtime);
}

// --- the link cut -------------------------------------------------------------------------------

/// A TCP relay in front of the runtime that can cut every connection through it and refuse new
/// ones for a while, as a network outage does.
struct Relay {
    port: u16,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(upstream: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (d, o) = (down.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if d.load(Ordering::SeqCst) {
                    // Refused: closed at once.
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                {
                    let mut open = o.lock().unwrap();
                    open.push(client.try_clone().unwrap());
                    open.push(server.try_clone().unwrap());
                }
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Relay { port, down, open }
    }

    /// Drops every connection and refuses new ones until [`Relay::restore`].
    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

fn link_cut(backend: Backend) {
    let Some(w) = World::new(backend) else { return eprintln!("skipped: no PostgreSQL") };
    let mut runtime = w.start_runtime(Some(SECRET_A));
    let relay = Relay::start(w.port);
    w.login_via(&format!("http://127.0.0.1:{}", relay.port));
    let node = w.replay(&fixture(RECORDING), "4");
    w.wait_stored_at_least(600);
    relay.cut();
    let stored_at_cut = w.stored().0;
    // The outage itself lasts this long; nothing waits on it.
    std::thread::sleep(outage());
    let stored_in_cut = w.stored().0;
    relay.restore();
    wait_ok_within(node, Duration::from_secs(240), "replay", || w.node_log());
    assert_whole_race(&w);
    // Nothing got through the cut but what was already committing when it came.
    assert!(stored_in_cut - stored_at_cut < 600, "{stored_at_cut} → {stored_in_cut} stored during the cut");
    kill(&mut runtime);
}

#[test]
fn the_link_cut_mid_race_loses_and_doubles_nothing_sqlite() {
    link_cut(Backend::Sqlite);
}

#[test]
fn the_link_cut_mid_race_loses_and_doubles_nothing_postgres() {
    link_cut(Backend::Postgres);
}

// --- random panics under load -------------------------------------------------------------------

fn random_panics(backend: Backend) {
    let Some(w) = World::new(backend) else { return eprintln!("skipped: no PostgreSQL") };
    let mut runtime = w.start_runtime(Some(SECRET_A));
    w.login();
    let admin = token(&w.base(), "boss", ADMIN_PASSWORD);
    let panics: usize = std::env::var("PITBOX_FAULT_PANICS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    // Slow enough that the race outlasts the panics (about 60 ms between them, on average).
    let speed = (panics as f64 / 8.0).max(1.0).recip() * 4.0;
    let node = w.replay(&fixture(RECORDING), &format!("{speed}"));
    w.wait_stored_at_least(300);
    let session = w.session_path();
    let targets = [
        session.clone(),
        format!("{session}/coach"),
        format!("{session}/voice"),
        format!("{session}/video"),
        format!("/teams/{}", w.team_id),
    ];
    let mut rng = rand::rng();
    let (mut injected, started) = (0, Instant::now());
    while injected < panics && started.elapsed() < Duration::from_secs(600) {
        let path = &targets[rng.random_range(0..targets.len())];
        let (status, _) = http(
            "POST",
            &format!("{}/admin/actors/fault", w.base()),
            Some(&admin),
            Some(serde_json::json!({"path": path})),
        );
        // 404: that actor is restarting (or was given up on for a while) right now.
        assert!(status == 200 || status == 404, "fault on {path}: {status}");
        injected += usize::from(status == 200);
        std::thread::sleep(Duration::from_millis(rng.random_range(20..100)));
    }
    eprintln!("{injected} panics injected in {:?}", started.elapsed());
    wait_ok_within(node, Duration::from_secs(600), "replay", || w.node_log());
    assert_whole_race(&w);
    kill(&mut runtime);
}

#[test]
fn random_panics_under_load_lose_and_double_nothing_sqlite() {
    random_panics(Backend::Sqlite);
}

#[test]
fn random_panics_under_load_lose_and_double_nothing_postgres() {
    random_panics(Backend::Postgres);
}

// --- The node's spool disk full -----------------------------------------------------------------

#[cfg(target_os = "linux")]
#[test]
fn the_spool_disk_full_still_delivers_every_frame_live() {
    let Some(w) = World::new(Backend::Sqlite) else { return };
    let spool = w.node_home().join("spool");
    let disk = match pitbox_driver::spool::SmallDisk::mount(&spool, "2m") {
        Ok(d) => d,
        Err(why) => return eprintln!("skipped (needs root): {why}"),
    };
    // The spool exists (its stream id kept; held open here, so its write-ahead log and shared
    // memory files stay, as a running node's would), then the disk fills up.
    let _held = pitbox_driver::spool::Spool::open(&spool, 1000).unwrap();
    disk.fill().unwrap();
    let mut runtime = w.start_runtime(Some(SECRET_A));
    w.login();
    // Paced: an unpaced replay would be over before the link is up, and live-only frames wait
    // in memory (600 at most) only while the link is down.
    let node = w.replay(&fixture(RECORDING), "4");
    wait_ok_within(node, Duration::from_secs(240), "replay", || w.node_log());
    let log = w.node_log();
    assert!(log.contains("the spool's disk is full"), "one clear error:\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    let n = Ibt::open(fixture(RECORDING)).unwrap().record_count() as i64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while w.stored().0 < n {
        assert!(Instant::now() < deadline, "{} of {n} stored:\n{log}", w.stored().0);
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every frame once (live frames carry no seq: told apart by their recording times).
    let rows = w.samples();
    let times: std::collections::BTreeSet<_> = rows.iter().map(|r| r.1).collect();
    assert_eq!((rows.len() as i64, times.len() as i64), (n, n), "rows, distinct times");
    assert_whole_laps(&w);
    kill(&mut runtime);
}

/// The recording's laps stored once each, by number.
fn assert_whole_laps(w: &World) {
    let ibt = Ibt::open(fixture(RECORDING)).unwrap();
    let expected: Vec<i32> =
        laps(&ibt).unwrap().into_iter().filter(|l| l.is_complete()).map(|l| l.lap).collect();
    let stored: Vec<i32> = w.laps().into_iter().map(|l| l.1).collect();
    assert_eq!(stored, expected, "laps stored once each");
}
