//! `pitbox-loadgen`: drives a PitBox runtime (or the baseline Python relay in
//! `loadgen/baseline/relay.py`) on this machine with N driver nodes running the driver node's real
//! uplink and M dashboards on the team view, for a set time, and prints what it saw: samples
//! spooled, acknowledged as stored and delivered to dashboards per second, latency sample →
//! dashboard (p50/p99/max), errors, and the server's CPU and RSS each second (`--server-pid`).
//! `--json` prints the same as one JSON object.
//!
//! ```text
//! pitbox-loadgen --url http://127.0.0.1:8080 --drivers 200 --secs 10 --server-pid $PID
//! pitbox-loadgen --url http://127.0.0.1:8765 --target relay --drivers 200 --secs 10
//! ```
//!
//! Env: `PITBOX_LOADGEN_ADMIN`, `PITBOX_LOADGEN_PASSWORD` (see [`cli`]), `RUST_LOG` (default
//! `warn`, to stderr).

mod cli;
mod dashboards;
mod nodes;
mod setup;
mod stats;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use serde::Serialize;

use crate::cli::Args;
use crate::stats::{proc_usage, Totals};

/// One second of the measured window.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Second {
    t: u64,
    sent: u64,
    acked: u64,
    delivered: u64,
    nodes_connected: usize,
    server_cpu_percent: Option<f64>,
    server_rss_mib: Option<f64>,
}

/// One node's standing at the end: every frame from `first_seq` to `acked_seq` is stored.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeResult {
    driver_id: String,
    first_seq: u64,
    acked_seq: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    target: String,
    drivers: usize,
    dashboards: usize,
    teams: usize,
    secs: f64,
    sent_per_sec: f64,
    acked_per_sec: f64,
    delivered_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    latency_samples: u64,
    /// The nodes spooled under 95 % of drivers × 60 Hz: the load generator could not keep up, so
    /// the figures measure it rather than the server.
    generator_behind: bool,
    errors: u64,
    server_cpu_percent: Option<f64>,
    server_rss_peak_mib: Option<f64>,
    seconds: Vec<Second>,
    nodes: Vec<NodeResult>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = args.validate() {
        eprintln!("pitbox-loadgen: {e:#}");
        return ExitCode::from(2);
    }
    match actix_rt::System::new().block_on(run(args)) {
        Ok(report) => {
            print_report(&report);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pitbox-loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<(Args, Report)> {
    let tls = pitbox_driver::tls::NodeTls::new(None).context("TLS roots")?;
    let client = pitbox_driver::uplink::client(&tls);
    let started = Instant::now();
    let cast = setup::cast(&args, &client).await?;
    eprintln!(
        "set up {} drivers in {} teams in {:.1} s; {} dashboards",
        cast.nodes.len(),
        cast.viewers.len(),
        started.elapsed().as_secs_f64(),
        args.dashboards()
    );

    let root = spool_root(&args)?;
    let totals = Arc::new(Totals::default());
    let arbiters: Vec<actix::Arbiter> =
        (0..args.client_threads.max(1)).map(|_| actix::Arbiter::new()).collect();
    let (stop_uplinks, stop_rx) = tokio::sync::watch::channel(false);
    let stop = Arc::new(AtomicBool::new(false));

    for i in 0..args.dashboards() {
        let Some(viewer) = cast.viewers.get(i % cast.viewers.len().max(1)).cloned() else { break };
        let (base, stop, totals, rate) = (args.base(), stop.clone(), totals.clone(), args.rate_hz);
        let tls = tls.clone();
        if let Some(a) = arbiters.get(i % arbiters.len()) {
            a.spawn_fn(move || {
                let client = pitbox_driver::uplink::client(&tls);
                actix_rt::spawn(dashboards::run(
                    client,
                    base,
                    viewer.token,
                    viewer.team_id,
                    rate,
                    stop,
                    totals,
                ));
            });
        }
    }
    let (handles, pacers) =
        nodes::start(&args, &cast.nodes, root.path(), &arbiters, &stop_rx, &stop, &totals)?;

    actix_rt::time::sleep(Duration::from_secs(args.warmup)).await;
    let acked_now = || handles.iter().map(|h| h.status.snapshot().last_ack).collect::<Vec<_>>();
    let acked_start = acked_now();
    let server0 = args.server_pid.and_then(proc_usage);
    let t0 = Instant::now();
    totals.measuring.store(true, Ordering::Relaxed);
    let mut seconds = vec![];
    let (mut last_sent, mut last_delivered) = (0, 0);
    let mut last_acked: u64 = acked_start.iter().sum();
    let mut last_cpu = server0.map(|s| s.0);
    let mut tick = actix_rt::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    for t in 1..=args.secs {
        tick.tick().await;
        let sent = totals.sent.load(Ordering::Relaxed);
        let delivered = totals.delivered.load(Ordering::Relaxed);
        let acked: u64 = acked_now().iter().sum();
        let server = args.server_pid.and_then(proc_usage);
        let cpu = match (server, last_cpu) {
            (Some((now, _)), Some(before)) => Some(100.0 * (now - before)),
            _ => None,
        };
        last_cpu = server.map(|s| s.0);
        let second = Second {
            t,
            sent: sent - last_sent,
            acked: acked.saturating_sub(last_acked),
            delivered: delivered - last_delivered,
            nodes_connected: handles.iter().filter(|h| h.status.snapshot().connected).count(),
            server_cpu_percent: cpu,
            server_rss_mib: server.map(|s| s.1 as f64 / 1024.0),
        };
        if !args.json {
            eprintln!(
                "t={:>4}s sent {:>7}/s acked {:>7}/s delivered {:>8}/s nodes up {:>5}  server CPU {} RSS {}",
                t,
                second.sent,
                second.acked,
                second.delivered,
                second.nodes_connected,
                cpu.map(|c| format!("{c:.0}%")).unwrap_or_else(|| "-".into()),
                second.server_rss_mib.map(|r| format!("{r:.0} MiB")).unwrap_or_else(|| "-".into()),
            );
        }
        (last_sent, last_delivered, last_acked) = (sent, delivered, acked);
        seconds.push(second);
    }
    totals.measuring.store(false, Ordering::Relaxed);
    let wall = t0.elapsed().as_secs_f64();
    let acked_end = acked_now();
    let server_end = args.server_pid.and_then(proc_usage);

    stop.store(true, Ordering::Relaxed);
    let _ = stop_uplinks.send(true);
    pacers.join();
    for a in &arbiters {
        a.stop();
    }

    let acked: u64 = acked_end.iter().zip(&acked_start).map(|(e, s)| e.saturating_sub(*s)).sum();
    let (p50, p99, max, n) = totals.percentiles();
    let nodes = handles
        .iter()
        .zip(&acked_end)
        .map(|(h, a)| NodeResult {
            driver_id: h.driver_id.clone(),
            first_seq: h.first_seq.load(Ordering::Relaxed),
            acked_seq: *a,
        })
        .collect();
    let report = Report {
        target: format!("{:?}", args.target).to_lowercase(),
        drivers: handles.len(),
        dashboards: args.dashboards(),
        teams: cast.viewers.len(),
        secs: wall,
        sent_per_sec: totals.sent.load(Ordering::Relaxed) as f64 / wall,
        acked_per_sec: acked as f64 / wall,
        delivered_per_sec: totals.delivered.load(Ordering::Relaxed) as f64 / wall,
        p50_ms: p50,
        p99_ms: p99,
        max_ms: max,
        latency_samples: n,
        generator_behind: (totals.sent.load(Ordering::Relaxed) as f64 / wall)
            < 0.95 * 60.0 * handles.len() as f64,
        errors: totals.errors.load(Ordering::Relaxed),
        server_cpu_percent: match (server0, server_end) {
            (Some(a), Some(b)) => Some(100.0 * (b.0 - a.0) / wall),
            _ => None,
        },
        server_rss_peak_mib: seconds.iter().filter_map(|s| s.server_rss_mib).reduce(f64::max),
        seconds,
        nodes,
    };
    Ok((args, report))
}

/// The nodes' homes: in `--spool-dir`, else in /dev/shm when there is one (a node's spool syncs
/// every write; on a disk that would measure the disk), else the system's temporary folder.
fn spool_root(args: &Args) -> anyhow::Result<tempfile::TempDir> {
    let shm = std::path::Path::new("/dev/shm");
    let dir = match &args.spool_dir {
        Some(d) => tempfile::Builder::new().prefix("pitbox-loadgen-").tempdir_in(d),
        None if shm.is_dir() => tempfile::Builder::new().prefix("pitbox-loadgen-").tempdir_in(shm),
        None => tempfile::Builder::new().prefix("pitbox-loadgen-").tempdir(),
    };
    dir.context("a folder for the nodes' spools")
}

fn print_report((args, r): &(Args, Report)) {
    if args.json {
        match serde_json::to_string(r) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("pitbox-loadgen: {e}"),
        }
        return;
    }
    println!(
        "loadgen against {} ({}): {} drivers × 60 Hz in {} teams, {} dashboards (team view {} Hz), {:.1} s",
        args.base(),
        r.target,
        r.drivers,
        r.teams,
        r.dashboards,
        args.rate_hz,
        r.secs
    );
    println!("sent (spooled by the nodes): {:>9.0} samples/s", r.sent_per_sec);
    println!("acknowledged (stored):       {:>9.0} samples/s", r.acked_per_sec);
    println!("delivered to dashboards:     {:>9.0} samples/s", r.delivered_per_sec);
    println!(
        "latency sample → dashboard:  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} samples)",
        r.p50_ms, r.p99_ms, r.max_ms, r.latency_samples
    );
    println!("errors: {}", r.errors);
    if r.generator_behind {
        println!(
            "warning: the nodes spooled {:.0} of {} samples/s: the load generator fell behind (too little CPU \
             for it, or a debug build), so these figures measure it, not the server",
            r.sent_per_sec,
            r.drivers * 60
        );
    }
    if let (Some(cpu), Some(rss)) = (r.server_cpu_percent, r.server_rss_peak_mib) {
        println!("server CPU: {cpu:.0}% of one core; server RSS: peak {rss:.0} MiB");
    }
}
