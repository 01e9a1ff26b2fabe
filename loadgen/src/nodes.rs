//! The driver nodes: each has its own home folder (credentials, spool) and runs the driver node's
//! real uplink ([`pitbox_driver::uplink::run`]) on one of the client threads, so the load is the
//! node's own protocol, batching, windowing and acknowledgement handling. Their sources (the
//! synthetic driver or a looped `.ibt` recording) are paced at 60 Hz by a few pacer threads,
//! which write each frame to its node's spool as it is made, stamped with the time it is spooled
//! (the start of the sample → dashboard latency). A node's recorder thread would do the same for
//! one node; one thread per node does not scale to thousands. Reads no env vars.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pitbox_driver::source::{IbtSource, TelemetrySource};
use pitbox_driver::spool::Spool;
use pitbox_driver::status::Status;
use pitbox_driver::synthetic::Synthetic;
use pitbox_driver::tls::NodeTls;
use pitbox_driver::uplink::{self, UplinkOptions};

use crate::cli::{Args, SourceKind};
use crate::setup::Node;
use crate::stats::Totals;

/// The source's period: iRacing's 60 Hz.
const PERIOD: Duration = Duration::from_micros(16_667);
/// The pacers spread the nodes over this many slots of a period, so that their frames do not all
/// leave at once.
const SLOTS: u32 = 16;
/// Frames a spool may hold before it thins; a load run never gets near it unless the target stalls.
const SPOOL_MAX_FRAMES: u64 = 10_000_000;

/// A running node, as the report sees it.
pub struct NodeHandle {
    pub driver_id: String,
    pub status: Arc<Status>,
    /// The sequence number of the node's first spooled frame (0 until there is one).
    pub first_seq: Arc<AtomicU64>,
}

/// What a pacer thread moves for one node.
struct Paced {
    source: Box<dyn TelemetrySource>,
    spool: Arc<Spool>,
    first_seq: Arc<AtomicU64>,
}

/// The pacer threads; they stop when `stop` is set.
pub struct Pacers {
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Pacers {
    pub fn join(self) {
        for t in self.threads {
            if t.join().is_err() {
                tracing::error!("a pacer thread panicked");
            }
        }
    }
}

fn source(args: &Args, i: usize) -> anyhow::Result<Box<dyn TelemetrySource>> {
    Ok(match (args.source, &args.ibt) {
        (SourceKind::Ibt, Some(path)) => Box::new(
            IbtSource::open(path, None).with_context(|| format!("opening {}", path.display()))?.looping(true),
        ),
        _ => Box::new(Synthetic::new(i as u64 + 1)),
    })
}

/// Opens every node's home and spool, starts its uplink on one of `arbiters`, and the pacers.
pub fn start(
    args: &Args,
    nodes: &[Node],
    root: &Path,
    arbiters: &[actix::Arbiter],
    stop_uplinks: &tokio::sync::watch::Receiver<bool>,
    stop_pacers: &Arc<AtomicBool>,
    totals: &Arc<Totals>,
) -> anyhow::Result<(Vec<NodeHandle>, Pacers)> {
    let tls = NodeTls::new(None).context("TLS roots")?;
    let mut handles = Vec::with_capacity(nodes.len());
    let pacers = args.pacer_threads.max(1);
    let mut paced: Vec<Vec<(u32, Paced)>> = (0..pacers).map(|_| vec![]).collect();
    for (i, node) in nodes.iter().enumerate() {
        let home = root.join(format!("node-{i}"));
        node.credentials.save(&home).with_context(|| format!("node home {}", home.display()))?;
        let spool = Arc::new(Spool::open(&home.join("spool"), SPOOL_MAX_FRAMES).context("opening a spool")?);
        let status = Arc::new(Status::default());
        let first_seq = Arc::new(AtomicU64::new(0));
        let src = source(args, i)?;
        let info = src.info();
        let options =
            UplinkOptions { track: info.track, car: info.car, ..UplinkOptions::new(home, tls.clone()) };
        let Some(arbiter) = arbiters.get(i % arbiters.len().max(1)) else {
            anyhow::bail!("no client threads");
        };
        let (spool2, status2, stop) = (spool.clone(), status.clone(), stop_uplinks.clone());
        // awc's futures are not Send: each uplink starts on its arbiter's own thread.
        arbiter.spawn_fn(move || {
            actix_rt::spawn(uplink::run(options, spool2, status2, stop, None, None));
        });
        let slot = (i as u32) % SLOTS;
        if let Some(p) = paced.get_mut(i % pacers) {
            p.push((slot, Paced { source: src, spool, first_seq: first_seq.clone() }));
        }
        handles.push(NodeHandle {
            driver_id: node.credentials.driver_id.clone().unwrap_or_default(),
            status,
            first_seq,
        });
    }
    let mut threads = vec![];
    for (k, nodes) in paced.into_iter().enumerate() {
        let (stop, totals) = (stop_pacers.clone(), totals.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("pacer-{k}"))
                .spawn(move || pace(nodes, &stop, &totals))
                .context("starting a pacer thread")?,
        );
    }
    Ok((handles, Pacers { threads }))
}

/// Every period, each node's next frame goes into its spool, in the node's slot of the period.
fn pace(mut nodes: Vec<(u32, Paced)>, stop: &AtomicBool, totals: &Totals) {
    let start = Instant::now();
    let slot_len = PERIOD / SLOTS;
    let mut tick: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let due = start + slot_len * u32::try_from(tick).unwrap_or(u32::MAX);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let slot = (tick % u64::from(SLOTS)) as u32;
        for node in nodes.iter_mut().filter(|(s, _)| *s == slot).map(|(_, n)| n) {
            let mut frame = match node.source.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "a source failed");
                    totals.error();
                    continue;
                }
            };
            frame.timestamp = chrono::Utc::now();
            match node.spool.append(std::slice::from_ref(&frame), None) {
                Ok(seqs) => {
                    if let Some(first) = seqs.first() {
                        let _ =
                            node.first_seq.compare_exchange(0, *first, Ordering::Relaxed, Ordering::Relaxed);
                    }
                    if totals.measuring() {
                        totals.sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a spool write failed");
                    totals.error();
                }
            }
        }
        tick += 1;
    }
}
