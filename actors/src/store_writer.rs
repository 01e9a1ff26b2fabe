//! StoreWriter: the one writer of telemetry and laps. Write requests from driver sessions queue
//! here and are flushed together (every few milliseconds, or sooner when many rows wait) in one
//! transaction on the blocking pool, never one round trip per sample. Order is kept: a failed flush
//! is retried before anything newer. Each `(driver, stream, seq)` is stored once: a watermark per
//! stream (the highest stored seq, loaded from the database the first time a stream is seen) drops
//! resent frames, which are acknowledged all the same. Acknowledgements go out only after commit.
//! It is a batching sink over the storage layer: the statements of a flush, the watermark check
//! and the recovery read are `pitbox_schema::db::store::telemetry`'s; this actor keeps the queue,
//! the batching, the order, the watermark cache between flushes, the retries and the
//! acknowledgements. Every row it writes names the racing session the driver's `DriverSession`
//! owns (stored first if that session has no row yet); it keeps no session of its own. Reads no
//! env vars.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use diesel::QueryResult;
use pitbox_schema::db::store::laps::LapFrames;
use pitbox_schema::db::store::telemetry::{self, Watermarks, Written};
pub use pitbox_schema::db::store::telemetry::{LapIn, Plan, Recovered, SampleIn, MAX_RECOVERED_FRAMES};
use pitbox_schema::db::{DbConnection, DbPool};
use pitbox_schema::wire::LapSummary;

use crate::fence::Fence;
use crate::registry::Stats;

/// Rows flushed in one transaction at most.
const MAX_BATCH_ROWS: usize = 2000;
/// Flush as soon as this many rows wait, without waiting for the timer.
const EAGER_ROWS: usize = 500;

/// What was durably stored for one write request.
#[derive(Debug, Clone, Default, Message)]
#[rtype(result = "()")]
pub struct Stored {
    pub driver_id: String,
    pub stream_id: Option<String>,
    /// Highest sequence number now stored for the stream (frames without seq: `None`).
    pub seq: Option<u64>,
    /// Ids of the samples, in request order (a resent sample keeps the id it was first stored with
    /// only in the database; here it gets the new one).
    pub ids: Vec<String>,
    pub laps: Vec<LapSummary>,
    /// Cluster mode: nothing was stored, because this node's fencing token for the team is stale
    /// (the sender resends, to the team's new owner).
    pub refused: Option<String>,
}

/// Where a write's acknowledgement goes.
pub enum AckTo {
    Actor(Recipient<Stored>),
    Once(tokio::sync::oneshot::Sender<Stored>),
}

impl AckTo {
    fn send(self, stored: Stored) {
        match self {
            AckTo::Actor(r) => r.do_send(stored),
            AckTo::Once(tx) => {
                let _ = tx.send(stored);
            }
        }
    }
}

/// A stored lap, told to the driver session that produced it, with its frames (shared, for the
/// coach).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct LapStored(pub LapSummary, pub LapFrames);

/// A write: what to store (the rows name the racing session the driver's session owns), and who
/// hears that it is stored.
pub struct WriteRequest {
    pub plan: Plan,
    pub ack: Option<AckTo>,
    pub on_lap: Option<crate::mailbox::Counted<LapStored>>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Write(pub WriteRequest);

/// Rows waiting to be written, shared so that senders can refuse work before the queue overflows.
#[derive(Debug, Clone, Default)]
pub struct Backlog(Arc<AtomicUsize>);

impl Backlog {
    /// Rows waiting beyond which new writes are refused (the sender resends later).
    pub const LIMIT: usize = 500_000;

    pub fn rows(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
    pub fn is_full(&self) -> bool {
        self.rows() >= Self::LIMIT
    }
    fn add(&self, n: usize) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    fn sub(&self, n: usize) {
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(n)));
    }
}

/// Asks for a driver's [`Recovered`] state. Answered only after every write already queued for
/// the driver is committed, so a restarted session sees everything its predecessor stored.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Recovered, String>")]
pub struct Recover {
    pub driver_id: String,
}

/// Store caches that travel with a flush to the blocking pool and back.
#[derive(Default)]
struct Caches {
    watermarks: Watermarks,
}

pub struct StoreWriter {
    pool: DbPool,
    stats: Arc<Stats>,
    queue: VecDeque<WriteRequest>,
    queued_rows: usize,
    backlog: Backlog,
    flush_every: Duration,
    flushing: bool,
    caches: Option<Caches>,
    failures: u32,
    /// Recoveries waiting for a driver's queued writes to commit.
    recoveries: Vec<(String, tokio::sync::oneshot::Sender<Result<Recovered, String>>)>,
    fence: Fence,
}

impl StoreWriter {
    pub fn new(pool: DbPool, stats: Arc<Stats>, backlog: Backlog) -> Self {
        Self {
            pool,
            stats,
            queue: VecDeque::new(),
            queued_rows: 0,
            backlog,
            flush_every: Duration::from_millis(20),
            flushing: false,
            caches: Some(Caches::default()),
            failures: 0,
            recoveries: vec![],
            fence: Fence::off(),
        }
    }

    /// Checks each request's fencing ticket in the flush's transaction (cluster mode).
    pub fn with_fence(mut self, fence: Fence) -> Self {
        self.fence = fence;
        self
    }

    /// Answers the recoveries whose driver has nothing queued or being written.
    fn serve_recoveries(&mut self) {
        if self.recoveries.is_empty() {
            return;
        }
        let busy = |d: &str, queue: &VecDeque<WriteRequest>, flushing: bool| {
            flushing || queue.iter().any(|r| r.plan.driver_id == d)
        };
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.recoveries)
            .into_iter()
            .partition(|(d, _)| !busy(d, &self.queue, self.flushing));
        self.recoveries = waiting;
        for (driver_id, tx) in ready {
            let pool = self.pool.clone();
            actix_rt::spawn(async move {
                let result = actix_rt::task::spawn_blocking(move || {
                    let mut conn = pool.get().map_err(|e| e.to_string())?;
                    telemetry::recover(&mut conn, &driver_id).map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r);
                let _ = tx.send(result);
            });
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.flushing || self.queue.is_empty() {
            return;
        }
        let Some(caches) = self.caches.take() else { return };
        let mut batch = Vec::new();
        let mut rows = 0;
        while let Some(req) = self.queue.front() {
            let n = req.plan.samples.len() + req.plan.laps.len();
            if !batch.is_empty() && rows + n > MAX_BATCH_ROWS {
                break;
            }
            rows += n;
            if let Some(req) = self.queue.pop_front() {
                batch.push(req);
            }
        }
        // Shown in the admin tree, where a soak watches it: the writer's own queue is no mailbox.
        self.stats.set_gauges([("queuedRows", self.queued_rows as u64)]);
        self.queued_rows = self.queued_rows.saturating_sub(rows);
        self.backlog.sub(rows);
        self.flushing = true;
        let pool = self.pool.clone();
        let isolate = self.failures >= 3;
        let plans: Vec<Plan> = batch.iter().map(|r| r.plan.clone()).collect();
        let job = actix_rt::task::spawn_blocking(move || {
            let mut caches = caches;
            let result = pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
                write_all(&mut conn, &plans, &mut caches, isolate).map_err(|e| e.to_string())
            });
            (result, caches)
        });
        ctx.spawn(job.into_actor(self).map(move |joined, act, ctx| {
            act.flushing = false;
            let (result, caches) = match joined {
                Ok(v) => v,
                Err(e) => (Err(format!("flush task failed: {e}")), Caches::default()),
            };
            act.caches = Some(caches);
            match result {
                Ok(results) => {
                    act.failures = 0;
                    for (req, written) in batch.into_iter().zip(results) {
                        let base = Stored {
                            driver_id: req.plan.driver_id.clone(),
                            stream_id: req.plan.stream_id.clone(),
                            ..Stored::default()
                        };
                        let stored = match written {
                            None => {
                                act.stats.failed();
                                continue;
                            }
                            Some(Written::Stored(laps)) => {
                                if let Some(on_lap) = &req.on_lap {
                                    for lap in &laps {
                                        let frames = req
                                            .plan
                                            .laps
                                            .iter()
                                            .find(|l| l.id == lap.id)
                                            .map(|l| l.lap.frames.clone())
                                            .unwrap_or_default();
                                        on_lap.do_send(LapStored(lap.clone(), frames));
                                    }
                                }
                                Stored {
                                    seq: req.plan.samples.iter().filter_map(|s| s.seq).max(),
                                    ids: req.plan.samples.iter().map(|s| s.id.clone()).collect(),
                                    laps,
                                    ..base
                                }
                            }
                            Some(Written::Fenced) => {
                                // Nothing was written: the sender resends (to the team's new owner),
                                // and this node steps the team down.
                                tracing::warn!(team = %req.plan.team_id, "write refused: stale fencing token");
                                if let Some(token) = req.plan.ticket.token() {
                                    act.fence.lost(&req.plan.team_id, token);
                                }
                                let why = format!(
                                    "not stored: this runtime node no longer owns team {}",
                                    req.plan.team_id
                                );
                                Stored { refused: Some(why), ..base }
                            }
                        };
                        if let Some(ack) = req.ack {
                            ack.send(stored);
                        }
                        act.stats.handled();
                    }
                    act.serve_recoveries();
                    if act.queued_rows >= EAGER_ROWS {
                        act.flush(ctx);
                    }
                }
                Err(e) => {
                    // Put the batch back in front, in order, and try again after a pause.
                    act.failures += 1;
                    let wait = Duration::from_millis(50u64 << act.failures.min(7));
                    tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "storing telemetry failed");
                    for req in batch.into_iter().rev() {
                        let rows = req.plan.samples.len() + req.plan.laps.len();
                        act.queued_rows += rows;
                        act.backlog.add(rows);
                        act.queue.push_front(req);
                    }
                    ctx.run_later(wait, |act, ctx| act.flush(ctx));
                }
            }
        }));
    }
}

impl Actor for StoreWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.stats.started();
        ctx.run_interval(self.flush_every, |act, ctx| act.flush(ctx));
    }
}

impl Handler<Write> for StoreWriter {
    type Result = ();

    /// Senders check [`Backlog::is_full`] first. Until flushed, a request counts as in the mailbox.
    fn handle(&mut self, msg: Write, ctx: &mut Context<Self>) {
        let rows = msg.0.plan.samples.len() + msg.0.plan.laps.len();
        self.queued_rows += rows;
        self.backlog.add(rows);
        self.queue.push_back(msg.0);
        if self.queued_rows >= EAGER_ROWS {
            self.flush(ctx);
        }
    }
}

impl Handler<Recover> for StoreWriter {
    type Result = ResponseFuture<Result<Recovered, String>>;

    fn handle(&mut self, msg: Recover, ctx: &mut Context<Self>) -> Self::Result {
        self.stats.handled();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.recoveries.push((msg.driver_id, tx));
        // Queued writes of this driver go out first.
        self.flush(ctx);
        self.serve_recoveries();
        Box::pin(async move { rx.await.map_err(|_| "the store writer stopped".to_owned())? })
    }
}

/// Writes every plan in one transaction; with `isolate` (after repeated failures), each plan in its
/// own, so one request that can never be stored does not hold back the rest (it gets `None`).
/// A request whose fencing token is stale gets `None` too.
fn write_all(
    conn: &mut DbConnection,
    plans: &[Plan],
    caches: &mut Caches,
    isolate: bool,
) -> QueryResult<Vec<Option<Written>>> {
    if !isolate {
        let out = telemetry::write(conn, plans, &mut caches.watermarks)?;
        return Ok(out.into_iter().map(Some).collect());
    }
    let mut out = Vec::with_capacity(plans.len());
    for p in plans {
        match telemetry::write(conn, std::slice::from_ref(p), &mut caches.watermarks) {
            Ok(mut stored) => out.push(stored.pop()),
            Err(e) => {
                tracing::error!(driver = %p.driver_id, error = %e, "dropping a write that cannot be stored; it was not acknowledged");
                out.push(None);
            }
        }
    }
    Ok(out)
}
