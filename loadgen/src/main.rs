//! `pitbox-loadgen`: drives a PitBox runtime (or the baseline Python relay in
//! `loadgen/baseline/relay.py`) on this machine with N driver nodes running the driver node's real
//! uplink and M dashboards on the team view, for a set time, and prints what it saw: samples
//! spooled, acknowledged as stored and delivered to dashboards per second, latency sample →
//! dashboard (p50/p99/max), errors, and the server's CPU and RSS each second (`--server-pid`).
//! `--json` prints the same as one JSON object. `--soak` cuts the run into windows and ends with a
//! verdict on memory, mailboxes and latency ([`soak`]; exit code 3 when it fails).
//!
//! ```text
//! pitbox-loadgen --url http://127.0.0.1:8080 --drivers 200 --secs 10 --server-pid $PID
//! pitbox-loadgen --url http://127.0.0.1:8765 --target relay --drivers 200 --secs 10
//! pitbox-loadgen --url http://127.0.0.1:8080 --drivers 200 --secs 1800 --soak --server-pid $PID
//! ```
//!
//! Env: `PITBOX_LOADGEN_ADMIN`, `PITBOX_LOADGEN_PASSWORD` (see [`cli`]), `RUST_LOG` (default
//! `warn`, to stderr).

mod cli;
mod dashboards;
mod nodes;
mod setup;
mod soak;
mod stats;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use serde::Serialize;

use crate::cli::Args;
use crate::soak::{AdminTree, Verdict, Window};
use crate::stats::{proc_usage, window_percentiles, Totals};

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
    #[serde(skip_serializing_if = "Option::is_none")]
    soak: Option<Soak>,
}

/// A soak's windows and verdict.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Soak {
    window_secs: u64,
    warmup_secs: u64,
    windows: Vec<Window>,
    verdict: Verdict,
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
            match &report.1.soak {
                Some(s) if !s.verdict.pass => ExitCode::from(3),
                _ => ExitCode::SUCCESS,
            }
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
    let mut admin = match (&args.password, args.soak && args.target == cli::Target::Pitbox) {
        (Some(password), true) => {
            Some(AdminTree::new(tls.clone(), args.base(), args.admin.clone(), password.clone()))
        }
        _ => None,
    };
    let mut windows: Vec<Window> = vec![];
    let mut window_start = (totals.latency_counts(), 0usize);
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
        if !args.json && !args.soak {
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
        if args.soak && t % args.window == 0 {
            let counts = totals.latency_counts();
            let w =
                window(t, &args, &seconds[window_start.1..], &window_start.0, &counts, admin.as_mut()).await;
            if !args.json {
                eprintln!("{}", window_line(&w));
            }
            windows.push(w);
            window_start = (counts, seconds.len());
        }
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
        soak: args.soak.then(|| Soak {
            window_secs: args.window,
            warmup_secs: args.soak_warmup,
            verdict: soak::verdict(&windows),
            windows,
        }),
    };
    Ok((args, report))
}

/// One soak window ending at `t`: its seconds, the latency histogram at its start and end, and
/// the admin tree's queues now.
async fn window(
    t: u64,
    args: &Args,
    seconds: &[Second],
    before: &[u64],
    now: &[u64],
    admin: Option<&mut AdminTree>,
) -> Window {
    let (p50_ms, p99_ms, latency_samples) = window_percentiles(before, now);
    let rss: Vec<f64> = seconds.iter().filter_map(|s| s.server_rss_mib).collect();
    let queues = match admin {
        Some(a) => match a.queues().await {
            Ok(q) => Some(q),
            Err(e) => {
                tracing::warn!(error = %e, "the admin tree was not read; this window has no mailboxes");
                None
            }
        },
        None => None,
    };
    Window {
        t,
        warmup: t <= args.soak_warmup,
        server_rss_mib: (!rss.is_empty()).then(|| rss.iter().sum::<f64>() / rss.len() as f64),
        mailbox_total: queues.as_ref().map(|q| q.total),
        mailbox_max: queues.as_ref().map(|q| q.max),
        mailbox_max_path: queues.as_ref().map(|q| q.max_path.clone()),
        queued_rows: queues.as_ref().and_then(|q| q.queued_rows),
        p50_ms,
        p99_ms,
        latency_samples,
        acked: seconds.iter().map(|s| s.acked).sum(),
        delivered: seconds.iter().map(|s| s.delivered).sum(),
    }
}

fn window_line(w: &Window) -> String {
    let opt = |v: Option<u64>| v.map_or_else(|| "-".into(), |v| v.to_string());
    format!(
        "t={:>5}s{} acked {:>8} delivered {:>9}  p50 {:>7.2} ms p99 {:>7.2} ms  RSS {}  mailboxes {} (max {} {})  store queue {}",
        w.t,
        if w.warmup { " (warm-up)" } else { "" },
        w.acked,
        w.delivered,
        w.p50_ms,
        w.p99_ms,
        w.server_rss_mib.map_or_else(|| "-".into(), |r| format!("{r:.0} MiB")),
        opt(w.mailbox_total),
        opt(w.mailbox_max),
        w.mailbox_max_path.as_deref().unwrap_or("-"),
        opt(w.queued_rows),
    )
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
    if let Some(s) = &r.soak {
        println!(
            "soak: {} windows of {} s, the first {} s left out",
            s.windows.len(),
            s.window_secs,
            s.warmup_secs
        );
        for w in &s.windows {
            println!("  {}", window_line(w));
        }
        for c in &s.verdict.checks {
            println!(
                "  {:<13} first third {:>9.2}  last third {:>9.2}  limit {:>9.2}  {}",
                c.name,
                c.first,
                c.last,
                c.limit,
                if c.ok { "ok" } else { "FAILED" }
            );
        }
        if let Some(m) = &s.verdict.missing {
            println!("  no verdict: {m}");
        }
        println!("soak verdict: {}", if s.verdict.pass { "PASS" } else { "FAIL" });
    }
}
