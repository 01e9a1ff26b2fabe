//! StoreWriter: the one writer of telemetry and laps. Write requests from driver sessions queue
//! here and are flushed together (every few milliseconds, or sooner when many rows wait) in one
//! transaction on the blocking pool, never one round trip per sample. Order is kept: a failed flush
//! is retried before anything newer. Each `(driver, stream, seq)` is stored once: a watermark per
//! stream (the highest stored seq, loaded from the database the first time a stream is seen) drops
//! resent frames, which are acknowledged all the same. Acknowledgements go out only after commit.
//! It is a batching sink over the storage layer (`pitbox_schema::db::store`): every row it writes
//! names the racing session the driver's `DriverSession` owns (stored here first if that session
//! has no row yet); it keeps no session of its own. In cluster mode each request carries the
//! fencing [`Ticket`] its driver session took, checked inside the flush's transaction: the
//! requests of a team whose token is stale are not written, not acknowledged, and the fence is
//! told (the node steps the team down); watermarks are cached per token, so a team taken back
//! later reads them from the database again. Reads no env vars.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use pitbox_schema::db::models::{NewLap, RacingSession, TelemetrySampleRow};
use pitbox_schema::db::schema::{drivers, telemetry_samples};
use pitbox_schema::db::store::laps::{compress_frames, decompress_frames};
use pitbox_schema::db::store::sessions;
use pitbox_schema::db::{DbConnection, DbPool};
use pitbox_schema::wire::{LapSummary, TelemetryFrame};

use crate::fence::{Fence, Ticket};
use crate::registry::Stats;

/// Rows flushed in one transaction at most.
const MAX_BATCH_ROWS: usize = 2000;
/// Flush as soon as this many rows wait, without waiting for the timer.
const EAGER_ROWS: usize = 500;

/// One sample to store.
#[derive(Debug, Clone)]
pub struct SampleIn {
    pub id: String,
    pub seq: Option<u64>,
    pub recorded_at: NaiveDateTime,
    /// JSON of the sample's channels.
    pub data: String,
}

/// One completed lap to store, with the id it will have.
#[derive(Debug, Clone)]
pub struct LapIn {
    pub id: String,
    pub lap: crate::lap::CompletedLap,
}

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
pub struct LapStored(pub LapSummary, pub Arc<Vec<TelemetryFrame>>);

pub struct WriteRequest {
    pub driver_id: String,
    pub team_id: String,
    /// The racing session the rows belong to, as the driver's session owns it.
    pub session: Arc<RacingSession>,
    pub stream_id: Option<String>,
    pub samples: Vec<SampleIn>,
    pub laps: Vec<LapIn>,
    pub ack: Option<AckTo>,
    pub on_lap: Option<crate::mailbox::Counted<LapStored>>,
    /// What the write runs under (cluster mode: the team's fencing token when it was made).
    pub ticket: Ticket,
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

/// What a new incarnation of a driver session rebuilds its live state from: the frames stored
/// since the driver's last stored lap ended (the lap in progress, and any lap whose line was
/// crossed but that was not stored yet), with the stream each came on, and the lap counters of
/// the open racing session.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// Oldest first; the first may be the last frame of the last stored lap, so the line
    /// crossing that follows it can be interpolated.
    pub frames: Vec<(Option<String>, TelemetryFrame)>,
    /// The driver's open racing session.
    pub session: Option<RacingSession>,
    pub laps_completed: u32,
    pub best_lap: Option<f64>,
}

/// Asks for a driver's [`Recovered`] state. Answered only after every write already queued for
/// the driver is committed, so a restarted session sees everything its predecessor stored.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Recovered, String>")]
pub struct Recover {
    pub driver_id: String,
}

/// Frames replayed into a restarted session at most (15 minutes at 60 Hz, the longest lap kept).
pub const MAX_RECOVERED_FRAMES: i64 = 60 * 60 * 15;

/// Store caches that travel with a flush to the blocking pool and back.
#[derive(Default)]
struct Caches {
    /// (driver, stream, fencing token or 0) → highest stored seq.
    watermarks: HashMap<(String, String, i64), i64>,
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
            flushing || queue.iter().any(|r| r.driver_id == d)
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
                    recover(&mut conn, &driver_id).map_err(|e| e.to_string())
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
            let n = req.samples.len() + req.laps.len();
            if !batch.is_empty() && rows + n > MAX_BATCH_ROWS {
                break;
            }
            rows += n;
            if let Some(req) = self.queue.pop_front() {
                batch.push(req);
            }
        }
        self.queued_rows = self.queued_rows.saturating_sub(rows);
        self.backlog.sub(rows);
        self.flushing = true;
        let (pool, fence) = (self.pool.clone(), self.fence.clone());
        let isolate = self.failures >= 3;
        let plans: Vec<Plan> = batch
            .iter()
            .map(|r| Plan {
                driver_id: r.driver_id.clone(),
                team_id: r.team_id.clone(),
                session: r.session.clone(),
                stream_id: r.stream_id.clone(),
                samples: r.samples.clone(),
                laps: r.laps.clone(),
                ticket: r.ticket.clone(),
            })
            .collect();
        let job = actix_rt::task::spawn_blocking(move || {
            let mut caches = caches;
            let result = pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
                write_all(&mut conn, &plans, &mut caches, isolate, &fence).map_err(|e| e.to_string())
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
                    for (req, stored) in batch.into_iter().zip(results) {
                        let Some(stored) = stored else {
                            act.stats.failed();
                            continue;
                        };
                        if let (Some(on_lap), None) = (&req.on_lap, &stored.refused) {
                            for lap in &stored.laps {
                                let frames = req
                                    .laps
                                    .iter()
                                    .find(|l| l.id == lap.id)
                                    .map(|l| l.lap.frames.clone())
                                    .unwrap_or_default();
                                on_lap.do_send(LapStored(lap.clone(), frames));
                            }
                        }
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
                        act.queued_rows += req.samples.len() + req.laps.len();
                        act.backlog.add(req.samples.len() + req.laps.len());
                        act.queue.push_front(req);
                    }
                    ctx.run_later(wait, |act, ctx| act.flush(ctx));
                }
            }
        }));
    }
}

struct Plan {
    driver_id: String,
    team_id: String,
    session: Arc<RacingSession>,
    stream_id: Option<String>,
    samples: Vec<SampleIn>,
    laps: Vec<LapIn>,
    ticket: Ticket,
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
        let rows = msg.0.samples.len() + msg.0.laps.len();
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

/// Reads a driver's [`Recovered`] state (see there).
pub fn recover(conn: &mut DbConnection, driver_id: &str) -> QueryResult<Recovered> {
    use pitbox_schema::db::schema::laps;
    let open = sessions::open_session(conn, driver_id)?;
    let session = open.as_ref().map(|s| s.id.clone());
    let mut out = Recovered { session: open, ..Recovered::default() };
    if let Some(session) = &session {
        let n: i64 = laps::table.filter(laps::session_id.eq(session)).count().get_result(conn)?;
        out.laps_completed = u32::try_from(n).unwrap_or(u32::MAX);
        out.best_lap = laps::table
            .filter(laps::session_id.eq(session))
            .filter(laps::valid.eq(true))
            .select(diesel::dsl::min(laps::lap_time))
            .first::<Option<f64>>(conn)?;
    }
    // The last frame of the driver's last stored lap: where the lap in progress began.
    let blob = laps::table
        .filter(laps::driver_id.eq(driver_id))
        .order(laps::completed_at.desc())
        .select(laps::telemetry)
        .first::<Vec<u8>>(conn)
        .optional()?;
    let last = match blob {
        Some(b) => decompress_frames(&b)
            .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?
            .frames
            .pop(),
        None => None,
    };
    type Row = (Option<String>, Option<i64>, NaiveDateTime, String);
    let columns = (
        telemetry_samples::stream_id,
        telemetry_samples::seq,
        telemetry_samples::recorded_at,
        telemetry_samples::data,
    );
    let mine = telemetry_samples::table.filter(telemetry_samples::driver_id.eq(driver_id));
    let rows: Vec<Row> = match &last {
        Some(f) => mine
            .filter(telemetry_samples::recorded_at.gt(f.timestamp.naive_utc()))
            .order((telemetry_samples::recorded_at.asc(), telemetry_samples::seq.asc()))
            .limit(MAX_RECOVERED_FRAMES)
            .select(columns)
            .load(conn)?,
        None => {
            // No lap stored yet: the newest frames, oldest first.
            let mut newest: Vec<Row> = mine
                .order((telemetry_samples::recorded_at.desc(), telemetry_samples::seq.desc()))
                .limit(MAX_RECOVERED_FRAMES)
                .select(columns)
                .load(conn)?;
            newest.reverse();
            newest
        }
    };
    out.frames.extend(last.map(|f| (None, f)));
    for (stream, seq, at, data) in rows {
        // A row that does not decode was stored by another version; it cannot be assembled.
        let Ok(sample) = serde_json::from_str(&data) else { continue };
        let seq = seq.and_then(|s| u64::try_from(s).ok());
        out.frames.push((stream, TelemetryFrame { seq, timestamp: at.and_utc(), sample }));
    }
    Ok(out)
}

/// Writes every plan in one transaction; with `isolate` (after repeated failures), each plan in its
/// own, so one request that can never be stored does not hold back the rest (it gets `None`).
/// A request whose fencing token is stale gets `None` too.
fn write_all(
    conn: &mut DbConnection,
    plans: &[Plan],
    caches: &mut Caches,
    isolate: bool,
    fence: &Fence,
) -> QueryResult<Vec<Option<Stored>>> {
    if !isolate {
        // The caches are only updated when the transaction commits.
        let mut trial = Caches { watermarks: caches.watermarks.clone() };
        let out = conn.transaction(|c| write_batch(c, plans, &mut trial, fence))?;
        *caches = trial;
        return Ok(out);
    }
    let mut out = Vec::with_capacity(plans.len());
    for p in plans {
        let mut trial = Caches { watermarks: caches.watermarks.clone() };
        match conn.transaction(|c| write_batch(c, std::slice::from_ref(p), &mut trial, fence)) {
            Ok(mut stored) => {
                *caches = trial;
                out.push(stored.pop().flatten());
            }
            Err(e) => {
                tracing::error!(driver = %p.driver_id, error = %e, "dropping a write that cannot be stored; it was not acknowledged");
                out.push(None);
            }
        }
    }
    Ok(out)
}

/// Rows per multi-row INSERT: 8 bound values a row stays well inside PostgreSQL's 65,535 and
/// SQLite's 32,766 parameters per statement.
const INSERT_CHUNK: usize = 1000;

/// The statements of one flush: every plan's new samples in a few multi-row INSERTs, and one
/// `last_active` UPDATE for all drivers that sent samples, whatever the number of requests (a live
/// node sends one frame per message, so per-request statements were the ingest ceiling).
/// First, each team's fencing token is checked (cluster mode): a stale team's requests are not
/// written and answer [`Stored::refused`].
fn write_batch(
    conn: &mut DbConnection,
    plans: &[Plan],
    caches: &mut Caches,
    fence: &Fence,
) -> QueryResult<Vec<Option<Stored>>> {
    let stale = stale_teams(conn, plans, fence)?;
    let now = chrono::Utc::now().naive_utc();
    let mut rows = Vec::new();
    let mut active = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(plans.len());
    // Each session is made sure of once per flush (a live node sends one frame per request).
    let mut ensured = std::collections::HashSet::new();
    for p in plans {
        if stale.contains(&p.team_id) {
            out.push(Some(Stored {
                driver_id: p.driver_id.clone(),
                stream_id: p.stream_id.clone(),
                refused: Some(format!("not stored: this runtime node no longer owns team {}", p.team_id)),
                ..Stored::default()
            }));
            continue;
        }
        if ensured.insert(p.session.id.as_str()) {
            sessions::ensure_session(conn, &p.session)?;
        }
        out.push(Some(write_one(conn, p, caches, now, &mut rows)?));
        if !p.samples.is_empty() {
            active.insert(p.driver_id.as_str());
        }
    }
    // Multi-row inserts on the concrete connection: MultiBackend cannot express them.
    for chunk in rows.chunks(INSERT_CHUNK) {
        let insert = diesel::insert_into(telemetry_samples::table).values(chunk);
        match conn {
            DbConnection::Pg(c) => insert.execute(c)?,
            DbConnection::Sqlite(c) => insert.execute(c)?,
        };
    }
    let active: Vec<&str> = active.into_iter().collect();
    for ids in active.chunks(INSERT_CHUNK) {
        diesel::update(drivers::table.filter(drivers::id.eq_any(ids.to_vec())))
            .set(drivers::last_active.eq(Some(now)))
            .execute(conn)?;
    }
    Ok(out)
}

/// The teams of `plans` whose fencing ticket is stale (or that this node does not hold), each
/// reported to the fence. On PostgreSQL the check holds the live teams' lease rows until the
/// flush commits, so no takeover commits in between.
fn stale_teams(
    conn: &mut DbConnection,
    plans: &[Plan],
    fence: &Fence,
) -> QueryResult<std::collections::BTreeSet<String>> {
    use pitbox_schema::db::store::leases::{self, Fenced};
    let mut stale = std::collections::BTreeSet::new();
    let mut checked = std::collections::BTreeSet::new();
    for p in plans {
        if !checked.insert((p.team_id.as_str(), p.ticket.token())) {
            continue;
        }
        let outcome = match &p.ticket {
            Ticket::Single => Ok(()),
            Ticket::Owner { node, token } => leases::check(conn, &p.team_id, node, *token),
            Ticket::NotOwner => Err(Fenced { team_id: p.team_id.clone(), token: 0 }.into_error()),
        };
        match outcome {
            Ok(()) => {}
            Err(e) if Fenced::of(&e).is_some() => {
                tracing::warn!(team = %p.team_id, error = %e, "write refused: stale fencing token");
                if let Some(token) = p.ticket.token() {
                    fence.lost(&p.team_id, token);
                }
                stale.insert(p.team_id.clone());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(stale)
}

/// One request's part of a flush: its session and watermark, its new samples added to `rows` (the
/// caller inserts them all at once), its laps stored.
fn write_one(
    conn: &mut DbConnection,
    p: &Plan,
    caches: &mut Caches,
    now: NaiveDateTime,
    rows: &mut Vec<TelemetrySampleRow>,
) -> QueryResult<Stored> {
    let session_id = p.session.id.clone();
    let mut watermark = None;
    if let Some(stream) = &p.stream_id {
        let key = (p.driver_id.clone(), stream.clone(), p.ticket.token().unwrap_or(0));
        let w = match caches.watermarks.get(&key) {
            Some(w) => *w,
            None => telemetry_samples::table
                .filter(telemetry_samples::driver_id.eq(&p.driver_id))
                .filter(telemetry_samples::stream_id.eq(stream))
                .select(diesel::dsl::max(telemetry_samples::seq))
                .first::<Option<i64>>(conn)?
                .unwrap_or(-1),
        };
        watermark = Some((key, w));
    }
    rows.extend(
        p.samples
            .iter()
            .filter(|s| match (&watermark, s.seq) {
                (Some((_, w)), Some(seq)) => i64::try_from(seq).unwrap_or(i64::MAX) > *w,
                _ => true,
            })
            .map(|s| TelemetrySampleRow {
                id: s.id.clone(),
                driver_id: p.driver_id.clone(),
                session_id: Some(session_id.clone()),
                stream_id: p.stream_id.clone(),
                seq: s.seq.map(|q| i64::try_from(q).unwrap_or(i64::MAX)),
                recorded_at: s.recorded_at,
                received_at: now,
                data: s.data.clone(),
            }),
    );
    let max_seq = p.samples.iter().filter_map(|s| s.seq).max();
    if let Some((key, w)) = watermark {
        let new = max_seq.map(|m| i64::try_from(m).unwrap_or(i64::MAX)).unwrap_or(w).max(w);
        caches.watermarks.insert(key, new);
    }
    let mut laps = Vec::with_capacity(p.laps.len());
    for LapIn { id: lap_id, lap } in &p.laps {
        // A lap already stored (its frames were resent after a restart) is not stored twice.
        let exists = pitbox_schema::db::schema::laps::table
            .filter(pitbox_schema::db::schema::laps::session_id.eq(&session_id))
            .filter(pitbox_schema::db::schema::laps::lap_number.eq(lap.lap_number))
            .select(pitbox_schema::db::schema::laps::id)
            .first::<String>(conn)
            .optional()?
            .is_some();
        if exists {
            continue;
        }
        let sample_count = i32::try_from(lap.frames.len()).unwrap_or(i32::MAX);
        let row = NewLap {
            id: lap_id.clone(),
            session_id: session_id.clone(),
            driver_id: p.driver_id.clone(),
            team_id: p.team_id.clone(),
            lap_number: lap.lap_number,
            lap_time: lap.lap_time,
            valid: lap.valid,
            fuel_used: lap.fuel_used,
            sector_times: serde_json::to_string(&lap.sector_times).unwrap_or_else(|_| "[]".into()),
            sample_count,
            telemetry: compress_frames(&lap.frames)
                .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?,
            completed_at: now,
            kind: lap.kind.as_str().to_owned(),
            invalid_reasons: serde_json::to_string(&lap.flaws).unwrap_or_else(|_| "[]".into()),
        };
        diesel::insert_into(pitbox_schema::db::schema::laps::table).values(&row).execute(conn)?;
        laps.push(LapSummary {
            id: row.id,
            session_id: row.session_id,
            driver_id: row.driver_id,
            lap_number: row.lap_number,
            lap_time: row.lap_time,
            valid: row.valid,
            fuel_used: row.fuel_used,
            sector_times: lap.sector_times.clone(),
            sample_count,
            completed_at: now.and_utc(),
            kind: lap.kind,
            invalid_reasons: lap.flaws.clone(),
        });
    }
    Ok(Stored {
        driver_id: p.driver_id.clone(),
        stream_id: p.stream_id.clone(),
        seq: max_seq,
        ids: p.samples.iter().map(|s| s.id.clone()).collect(),
        laps,
        refused: None,
    })
}
