//! Fan-out benchmark: the real runtime in this process, driven over loopback WebSockets by D
//! simulated driver nodes at 60 Hz and S dashboards (team view, 20 Hz per driver) running in a
//! second process (this binary with `--clients`), so that the CPU and RSS printed are the server's
//! own. Prints ingest rate (samples acknowledged as stored), fan-out rate (samples delivered to
//! dashboards), end-to-end latency (sample sent by a node → received by a dashboard) p50/p99/max,
//! and CPU and RSS of both processes.
//!
//! `cargo bench -p pitbox-runtime --bench fanout -- --drivers 200 --dashboards 400 --secs 15`
//! Env: `PITBOX_BENCH_DATABASE_URL` (default: a SQLite file in a temp dir).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::Arbiter;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use pitbox_runtime::config::Config;
use pitbox_runtime::server::{self, State};
use pitbox_schema::wire::Role;
use serde_json::json;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value_t = 200)]
    drivers: usize,
    #[arg(long, default_value_t = 400)]
    dashboards: usize,
    /// Drivers per team (dashboards are spread over the teams).
    #[arg(long, default_value_t = 10)]
    team_size: usize,
    /// Frames per message a node sends (1 = every sample on its own, at 60 Hz).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Measured seconds (after a warm-up of 3 s).
    #[arg(long, default_value_t = 15)]
    secs: u64,
    /// Threads that run the simulated clients.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    #[arg(long, hide = true)]
    bench: bool,
    /// Internal: run the clients of the plan in this file and print their figures as JSON.
    #[arg(long, hide = true)]
    clients: Option<std::path::PathBuf>,
}

/// What the client process is to do.
#[derive(serde::Serialize, serde::Deserialize)]
struct Plan {
    base: String,
    drivers: Vec<(String, String)>,
    dashboards: Vec<(String, String)>,
    batch: usize,
    warmup_secs: u64,
    secs: u64,
    client_threads: usize,
}

/// What the client process measured.
#[derive(serde::Serialize, serde::Deserialize)]
struct Outcome {
    wall: f64,
    cpu: f64,
    rss_kib: u64,
    acked: u64,
    sent: u64,
    delivered: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    latencies: usize,
}

#[derive(Default)]
struct Totals {
    acked: AtomicU64,
    /// Samples the nodes sent inside the window: what was offered, not drivers × 60.
    sent: AtomicU64,
    delivered: AtomicU64,
    /// Dashboards that handed over their latencies after the window closed.
    handed_over: AtomicU64,
    measuring: AtomicBool,
    latencies_us: Mutex<Vec<u32>>,
}

fn proc_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn sample(seq: u64, t: f64) -> serde_json::Value {
    let dist = t / 90.0;
    json!({
        "seq": seq,
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "sessionTime": t, "speed": 200.0 + 30.0 * (dist * std::f64::consts::TAU).sin(), "rpm": 7000.0, "gear": 4,
        "throttle": 80.0, "brake": 0.0, "steeringAngle": 2.0, "lap": dist.floor() as i32 + 1,
        "trackPosition": dist.fract(), "fuelLevel": 50.0 - dist, "fuelUsePerHour": 30.0,
        "tireWear": {"frontLeft": 99.0, "frontRight": 99.0, "rearLeft": 99.0, "rearRight": 99.0},
        "cars": {"lap": [1, 1, 2, 2], "lapDistPct": [0.1, 0.2, 0.3, 0.4], "position": [1, 2, 3, 4], "onPitRoad": [false, false, false, false]}
    })
}

async fn connect(
    base: &str,
    token: &str,
    kind: &str,
) -> actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec> {
    // The driver node's own client: Nagle off, as a real node has it.
    let client = pitbox_driver::uplink::client(&pitbox_driver::tls::NodeTls::new(None).expect("TLS roots"));
    let (_, mut conn) =
        client.ws(format!("{base}/ws")).max_frame_size(1 << 24).connect().await.expect("ws connect");
    conn.next().await; // connection_established
    let auth =
        json!({"type": "authenticate", "data": {"token": token, "clientType": kind, "version": "bench"}});
    conn.send(awc::ws::Message::Text(auth.to_string().into())).await.unwrap();
    loop {
        if let Some(Ok(awc::ws::Frame::Text(t))) = conn.next().await {
            let v: serde_json::Value = serde_json::from_slice(&t).unwrap();
            if v["type"] == "authentication_result" {
                assert_eq!(v["data"]["success"], true, "{v}");
                return conn;
            }
        }
    }
}

async fn run_driver(
    base: String,
    token: String,
    driver: String,
    batch: usize,
    stop: Arc<AtomicBool>,
    totals: Arc<Totals>,
) {
    let conn = connect(&base, &token, "driver_node").await;
    let (mut tx, mut rx) = conn.split();
    let totals2 = totals.clone();
    actix_rt::spawn(async move {
        let mut acked = 0u64;
        while let Some(Ok(frame)) = rx.next().await {
            if let awc::ws::Frame::Text(t) = frame {
                let v: serde_json::Value = serde_json::from_slice(&t).unwrap_or_default();
                if v["type"] == "ack" {
                    let seq = v["data"]["seq"].as_u64().unwrap_or(0) + 1;
                    let new = seq.saturating_sub(acked);
                    acked = acked.max(seq);
                    if totals2.measuring.load(Ordering::Relaxed) {
                        totals2.acked.fetch_add(new, Ordering::Relaxed);
                    }
                }
            }
        }
    });
    // Spread the drivers' ticks over the 16.7 ms period.
    actix_rt::time::sleep(Duration::from_micros(rand::random::<u64>() % 16_667)).await;
    let period = Duration::from_micros(16_667 * batch as u64);
    let mut tick = actix_rt::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let frames: Vec<_> = (0..batch as u64).map(|i| sample(seq + i, (seq + i) as f64 / 60.0)).collect();
        seq += batch as u64;
        if totals.measuring.load(Ordering::Relaxed) {
            totals.sent.fetch_add(batch as u64, Ordering::Relaxed);
        }
        let msg = json!({"type": "telemetry_batch", "data": {"driverId": driver, "streamId": "bench", "frames": frames}});
        if tx.send(awc::ws::Message::Text(msg.to_string().into())).await.is_err() {
            break;
        }
    }
}

async fn run_dashboard(
    base: String,
    token: String,
    team: String,
    stop: Arc<AtomicBool>,
    totals: Arc<Totals>,
) {
    let mut conn = connect(&base, &token, "dashboard").await;
    let sub = json!({"type": "subscribe", "data": {"teamId": team}});
    conn.send(awc::ws::Message::Text(sub.to_string().into())).await.unwrap();
    let mut local = Vec::with_capacity(4096);
    let (mut seen_window, mut handed_over) = (false, false);
    while !stop.load(Ordering::Relaxed) {
        let Some(Ok(frame)) = conn.next().await else { break };
        let awc::ws::Frame::Text(t) = frame else { continue };
        // Only the type and the send time are needed: cheap substring reads, not a full parse.
        let text = std::str::from_utf8(&t).unwrap_or_default();
        if !text.starts_with("{\"type\":\"telemetry_update\"") {
            continue;
        }
        if !totals.measuring.load(Ordering::Relaxed) {
            // The window has closed: hand the last partial chunk over, once, before the figures
            // are read (they wait for every dashboard, or a few seconds).
            if seen_window && !handed_over {
                totals.latencies_us.lock().unwrap().append(&mut local);
                totals.handed_over.fetch_add(1, Ordering::Relaxed);
                handed_over = true;
            }
            continue;
        }
        seen_window = true;
        totals.delivered.fetch_add(1, Ordering::Relaxed);
        if let Some(i) = text.find("\"timestamp\":\"") {
            let rest = &text[i + 13..];
            if let Some(end) = rest.find('"') {
                if let Ok(sent) = chrono::DateTime::parse_from_rfc3339(&rest[..end]) {
                    let us = (chrono::Utc::now() - sent.with_timezone(&chrono::Utc))
                        .num_microseconds()
                        .unwrap_or(0);
                    local.push(us.clamp(0, u32::MAX as i64) as u32);
                    if local.len() == 256 {
                        totals.latencies_us.lock().unwrap().append(&mut local);
                    }
                }
            }
        }
    }
    if !handed_over {
        totals.latencies_us.lock().unwrap().append(&mut local);
        totals.handed_over.fetch_add(1, Ordering::Relaxed);
    }
}

fn main() {
    let args = Args::parse();
    match &args.clients {
        Some(plan) => run_clients(plan),
        None => run_server(&args),
    }
}

fn run_clients(plan_path: &std::path::Path) {
    let plan: Plan = serde_json::from_slice(&std::fs::read(plan_path).unwrap()).unwrap();
    actix_rt::System::new().block_on(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let totals = Arc::new(Totals::default());
        let arbiters: Vec<Arbiter> = (0..plan.client_threads.max(1)).map(|_| Arbiter::new()).collect();
        for (i, (token, driver)) in plan.drivers.iter().enumerate() {
            let (base, token, driver, stop, totals) =
                (plan.base.clone(), token.clone(), driver.clone(), stop.clone(), totals.clone());
            let batch = plan.batch.max(1);
            // awc futures are not Send: start each on its arbiter's own thread.
            arbiters[i % arbiters.len()].spawn_fn(move || {
                actix_rt::spawn(run_driver(base, token, driver, batch, stop, totals));
            });
        }
        for (i, (token, team)) in plan.dashboards.iter().enumerate() {
            let (base, token, team, stop, totals) =
                (plan.base.clone(), token.clone(), team.clone(), stop.clone(), totals.clone());
            arbiters[i % arbiters.len()].spawn_fn(move || {
                actix_rt::spawn(run_dashboard(base, token, team, stop, totals));
            });
        }
        actix_rt::time::sleep(Duration::from_secs(plan.warmup_secs)).await;
        let (cpu0, t0) = (proc_cpu_secs(), Instant::now());
        totals.measuring.store(true, Ordering::Relaxed);
        actix_rt::time::sleep(Duration::from_secs(plan.secs)).await;
        totals.measuring.store(false, Ordering::Relaxed);
        let (cpu, wall) = (proc_cpu_secs() - cpu0, t0.elapsed().as_secs_f64());
        // Every dashboard hands its latencies over on its next frame; give them up to 5 s.
        let deadline = Instant::now() + Duration::from_secs(5);
        while totals.handed_over.load(Ordering::Relaxed) < plan.dashboards.len() as u64
            && Instant::now() < deadline
        {
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let mut lat = std::mem::take(&mut *totals.latencies_us.lock().unwrap());
        lat.sort_unstable();
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(0)
                as f64
                / 1000.0
        };
        let outcome = Outcome {
            wall,
            cpu,
            rss_kib: status_kib("VmRSS:"),
            acked: totals.acked.load(Ordering::Relaxed),
            sent: totals.sent.load(Ordering::Relaxed),
            delivered: totals.delivered.load(Ordering::Relaxed),
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
            max_ms: pct(1.0),
            latencies: lat.len(),
        };
        println!("{}", serde_json::to_string(&outcome).unwrap());
        for a in arbiters {
            a.stop();
        }
    });
}

fn run_server(args: &Args) {
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("PITBOX_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| dir.path().join("bench.db").to_string_lossy().into_owned());
    let plan_path = dir.path().join("plan.json");
    actix_rt::System::new().block_on(async move {
        let mut config = Config::for_database(url.clone()).unwrap();
        config.rate_limit_per_ip = 1_000_000;
        config.rate_limit_per_user = 1_000_000;
        config.access_token_ttl = Duration::from_secs(3600);
        let state = State::new(config).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let srv = server::start(state.clone(), listener).unwrap();
        let handle = srv.handle();
        actix_rt::spawn(srv);

        // Teams, drivers and viewers as real users (a token must name a stored user), with tokens
        // minted directly (no password hashing).
        use pitbox_schema::db::store::{drivers, teams, users};
        let teams_n = args.drivers.div_ceil(args.team_size).max(1);
        let mut team_ids = vec![];
        let mut drivers = vec![];
        let mut viewers = vec![];
        for t in 0..teams_n {
            let team = state.db.run_blocking(|c| Ok(teams::create_team(c, &format!("Team {t}"))??)).unwrap().id;
            for d in 0..args.team_size.min(args.drivers - t * args.team_size) {
                let info = state
                    .db
                    .run_blocking(|c| {
                        let user = users::create_user(c, &format!("d{t}-{d}"), "-".into(), Role::Driver)??;
                        let nd = pitbox_schema::wire::NewDriver {
                            name: format!("Driver {t}-{d}"),
                            number: d as i32,
                            role: pitbox_schema::wire::DriverRole::Primary,
                            avatar_url: None,
                            user_id: Some(user.id.clone()),
                        };
                        drivers::create_driver(c, &team, &nd)??;
                        teams::add_member(c, &team, &user.id)??;
                        Ok(users::user_info(c, &user)?)
                    })
                    .unwrap();
                let driver_id = info.driver_id.clone().unwrap();
                drivers.push((state.keys.issue(&info, 0).unwrap().0, driver_id));
            }
            let info = state
                .db
                .run_blocking(|c| {
                    let user = users::create_user(c, &format!("viewer{t}"), "-".into(), Role::Team)??;
                    teams::add_member(c, &team, &user.id)??;
                    Ok(users::user_info(c, &user)?)
                })
                .unwrap();
            viewers.push(state.keys.issue(&info, 0).unwrap().0);
            team_ids.push(team);
        }
        let teams = teams_n;
        let dashboards = (0..args.dashboards)
            .map(|i| (viewers[i % viewers.len()].clone(), team_ids[i % team_ids.len()].clone()))
            .collect();
        let warmup_secs = 4;
        let plan = Plan {
            base,
            drivers,
            dashboards,
            batch: args.batch,
            warmup_secs,
            secs: args.secs,
            client_threads: args.client_threads,
        };
        std::fs::write(&plan_path, serde_json::to_vec(&plan).unwrap()).unwrap();
        println!(
            "fanout bench: {} drivers × 60 Hz (batch {}), {} dashboards over {} teams (team view 20 Hz), {} s, {}",
            args.drivers,
            args.batch,
            args.dashboards,
            teams,
            args.secs,
            if url.starts_with("postgres") { "PostgreSQL" } else { "SQLite" }
        );
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--clients")
            .arg(&plan_path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let waiter = actix_rt::task::spawn_blocking(move || child.wait_with_output());
        actix_rt::time::sleep(Duration::from_secs(warmup_secs)).await;
        let (cpu0, t0) = (proc_cpu_secs(), Instant::now());
        let mut peak_rss = 0;
        for _ in 0..args.secs {
            actix_rt::time::sleep(Duration::from_secs(1)).await;
            peak_rss = peak_rss.max(status_kib("VmRSS:"));
        }
        let (cpu, wall) = (proc_cpu_secs() - cpu0, t0.elapsed().as_secs_f64());
        let backlog = state.system.env.backlog.rows();
        let output = waiter.await.unwrap().unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let Some(o) = text.lines().rev().find_map(|l| serde_json::from_str::<Outcome>(l).ok()) else {
            panic!("client process gave no figures: {text}");
        };
        println!(
            "ingest (stored, acked): {:>9.0} samples/s  (offered {:.0}/s: sent by the nodes in the window)",
            o.acked as f64 / o.wall,
            o.sent as f64 / o.wall
        );
        println!("fan-out (delivered):    {:>9.0} samples/s", o.delivered as f64 / o.wall);
        println!("latency node→dashboard: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} samples)", o.p50_ms, o.p99_ms, o.max_ms, o.latencies);
        println!("server CPU: {:.0}% of one core; server RSS: peak {} MiB (high-water {} MiB)", 100.0 * cpu / wall, peak_rss / 1024, status_kib("VmHWM:") / 1024);
        println!("clients CPU: {:.0}% of one core; clients RSS {} MiB", 100.0 * o.cpu / o.wall, o.rss_kib / 1024);
        println!("store backlog at the end of the window: {backlog} rows");
        handle.stop(false).await;
    });
}
