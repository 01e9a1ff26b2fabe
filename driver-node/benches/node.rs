//! Driver-node benchmark, printing its figures:
//! 1. `.ibt` parse throughput (MB/s, rows/s) of our reader beside pyirsdk reading the same file in
//!    the same run (every row of every channel);
//! 2. the node's CPU and RSS while streaming 60 Hz to a real runtime (no video, no voice);
//! 3. backlog drain rate: frames recorded while the runtime was down, delivered once it is up.
//!
//! `cargo build --release -p pitbox-runtime && cargo bench -p pitbox-driver --bench node`
//! Env: `PITBOX_BENCH_STREAM_SECS` (default 20), `PITBOX_BENCH_BACKLOG` (frames, default 36000).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::BigInt;

const FIXTURE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/ibt/redbullring_amg-gt4.ibt");
const SECRET: &str = "bench-secret-0123456789abcdef-0123456789";

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn parse_ours(path: &str, rounds: u32) -> (f64, usize, u64) {
    let started = Instant::now();
    let mut rows = 0;
    for _ in 0..rounds {
        let report = pitbox_driver::ibt::verify(pitbox_driver::ibt::FileSource::open(path).unwrap()).unwrap();
        rows = report.records;
    }
    let secs = started.elapsed().as_secs_f64() / f64::from(rounds);
    (secs, rows, std::fs::metadata(path).unwrap().len())
}

fn parse_pyirsdk(path: &str) -> Option<f64> {
    let script = r#"
import sys, time, irsdk
t = time.perf_counter()
ibt = irsdk.IBT(); ibt.open(sys.argv[1])
for name in ibt.var_headers_names:
    ibt.get_all(name)
ibt.close()
print(time.perf_counter() - t)
"#;
    let out = Command::new("python3").args(["-c", script, path]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn proc_stat(pid: u32) -> (f64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (ticks / 100.0, kib("VmRSS:"), kib("VmHWM:"))
}

struct World {
    dir: tempfile::TempDir,
    port: u16,
    runtime: PathBuf,
}

impl World {
    fn new() -> World {
        let runtime = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/pitbox-runtime"));
        assert!(runtime.is_file(), "{} missing: cargo build --release -p pitbox-runtime", runtime.display());
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let w = World { dir, port, runtime };
        assert!(w.rt().args(["team", "add", "Bench"]).status().unwrap().success());
        let ok = w
            .rt()
            .args([
                "user",
                "add",
                "benchdriver",
                "--role",
                "driver",
                "--team",
                "Bench",
                "--driver-number",
                "1",
            ])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success());
        w
    }
    fn rt(&self) -> Command {
        let mut c = Command::new(&self.runtime);
        c.env("PITBOX_DATA_DIR", self.dir.path().join("rt"))
            .env("PITBOX_JWT_SECRET", SECRET)
            .env("PITBOX_BIND", format!("127.0.0.1:{}", self.port))
            .env("PITBOX_PASSWORD", "bench-password")
            .env("RUST_LOG", "error")
            .env_remove("DATABASE_URL");
        c
    }
    fn node(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pitbox-driver"));
        c.env("PITBOX_DRIVER_HOME", self.dir.path().join("node"))
            .env("PITBOX_PASSWORD", "bench-password")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }
    fn start_runtime(&self) -> Child {
        let child = self.rt().arg("serve").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }
    fn login(&self) {
        let server = format!("http://127.0.0.1:{}", self.port);
        assert!(self
            .node()
            .args(["login", "--server", &server, "--username", "benchdriver"])
            .status()
            .unwrap()
            .success());
    }
    fn spool_depth(&self) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let path = self.dir.path().join("node").join("spool").join("spool.db");
        let Ok(mut c) = SqliteConnection::establish(&path.to_string_lossy()) else { return 0 };
        diesel::sql_query("SELECT COUNT(*) AS n FROM spool").get_result::<N>(&mut c).map(|n| n.n).unwrap_or(0)
    }
}

fn main() {
    // 1. Parsing.
    let (secs, rows, bytes) = parse_ours(FIXTURE, 20);
    let mb = bytes as f64 / 1e6;
    println!("ibt parse, every element of every channel of every row ({mb:.1} MB, {rows} rows; ours also converts each row and parses the YAML):");
    println!(
        "  pitbox : {:>8.1} MB/s {:>10.0} rows/s  ({:.2} ms)",
        mb / secs,
        rows as f64 / secs,
        secs * 1000.0
    );
    match parse_pyirsdk(FIXTURE) {
        Some(py) => println!(
            "  pyirsdk: {:>8.1} MB/s {:>10.0} rows/s  ({:.2} ms)",
            mb / py,
            rows as f64 / py,
            py * 1000.0
        ),
        None => println!("  pyirsdk: not available (pip install pyirsdk)"),
    }

    // 2. Streaming at 60 Hz.
    let w = World::new();
    let mut runtime = w.start_runtime();
    w.login();
    let stream_secs = env_u64("PITBOX_BENCH_STREAM_SECS", 20);
    let mut node = w
        .node()
        .args(["run", "--source", "synthetic", "--speed", "1", "--api", "off", "--no-video", "--no-voice"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let (cpu0, _, _) = proc_stat(node.id());
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(stream_secs));
    let (cpu1, rss, hwm) = proc_stat(node.id());
    let wall = t0.elapsed().as_secs_f64();
    println!("node streaming 60 Hz to the runtime for {stream_secs} s (synthetic, no video/voice):");
    println!(
        "  CPU {:.2}% of one core   RSS {:.1} MiB (peak {:.1} MiB)",
        100.0 * (cpu1 - cpu0) / wall,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    node.kill().unwrap();
    node.wait().unwrap();

    // 3. Backlog: record with the runtime down, then time the delivery.
    runtime.kill().unwrap();
    runtime.wait().unwrap();
    let backlog = env_u64("PITBOX_BENCH_BACKLOG", 36_000);
    let left = w.spool_depth();
    let node = w
        .node()
        .args([
            "run",
            "--source",
            "synthetic",
            "--speed",
            "max",
            "--api",
            "off",
            "--samples",
            &backlog.to_string(),
        ])
        .spawn()
        .unwrap();
    while w.spool_depth() < left + backlog as i64 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let depth = w.spool_depth();
    let t0 = Instant::now();
    let mut runtime = w.start_runtime();
    let out = node.wait_with_output().unwrap();
    let drain = t0.elapsed().as_secs_f64();
    assert!(out.status.success());
    println!("backlog drain: {depth} frames spooled while the runtime was down, stored in {drain:.2} s after it came back");
    println!(
        "  {:.0} frames/s ({:.0}× real time at 60 Hz), runtime start included",
        depth as f64 / drain,
        depth as f64 / drain / 60.0
    );
    runtime.kill().unwrap();
    runtime.wait().unwrap();
}
