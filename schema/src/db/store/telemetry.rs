//! Telemetry samples, and the statements of the store writer (`pitbox_actors::store_writer`, the
//! one writer of samples and laps): a flush of many write plans in one transaction, each sample
//! stored once per `(driver, stream, seq)` by a watermark per stream, and what a restarted driver
//! session rebuilds its live state from. The writer keeps the batching, the order, the watermark
//! cache between flushes and the acknowledgements. Reads no env vars.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::laps::{decompress_frames, CompletedLap};
use super::leases::{self, Fenced, Ticket};
use super::{now, sessions, unreadable};
use crate::db::models::{NewLap, RacingSession, TelemetrySampleRow};
use crate::db::schema::{drivers, laps, telemetry_samples};
use crate::db::DbConnection;
use crate::wire::{LapSummary, TelemetryFrame};

/// The driver's newest stored frame, if any (one whose channels no longer decode counts as none).
pub fn latest_sample(conn: &mut DbConnection, driver_id: &str) -> QueryResult<Option<TelemetryFrame>> {
    let row = telemetry_samples::table
        .filter(telemetry_samples::driver_id.eq(driver_id))
        .order((telemetry_samples::recorded_at.desc(), telemetry_samples::id.desc()))
        .select(TelemetrySampleRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.and_then(|r| {
        serde_json::from_str(&r.data).ok().map(|sample| TelemetryFrame {
            seq: r.seq.and_then(|s| u64::try_from(s).ok()),
            timestamp: r.recorded_at.and_utc(),
            sample,
        })
    }))
}

/// How many samples of the driver are stored.
pub fn count_samples(conn: &mut DbConnection, driver_id: &str) -> QueryResult<i64> {
    telemetry_samples::table.filter(telemetry_samples::driver_id.eq(driver_id)).count().get_result(conn)
}

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
    pub lap: CompletedLap,
}

/// What one write request stores: a driver's samples (of one stream, if it has one) and laps, in
/// the racing session its `DriverSession` owns.
#[derive(Debug, Clone)]
pub struct Plan {
    pub driver_id: String,
    pub team_id: String,
    /// Stored first if it has no row yet.
    pub session: Arc<RacingSession>,
    pub stream_id: Option<String>,
    pub samples: Vec<SampleIn>,
    pub laps: Vec<LapIn>,
    /// What the write runs under (cluster mode: the team's fencing token when it was made),
    /// checked inside the transaction that stores it.
    pub ticket: Ticket,
}

/// The highest seq stored per `(driver, stream, fencing token or 0)`: a cache the writer keeps
/// between flushes (a stream not in it is looked up once). Keyed by token, so a team taken back
/// later reads its watermarks from the database again.
pub type Watermarks = HashMap<(String, String, i64), i64>;

/// What became of one plan of a write.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// Stored, with the laps it stored (a lap stored before is not stored again).
    Stored(Vec<LapSummary>),
    /// Not stored: its team's fencing token is stale, or this node does not hold the team
    /// (cluster mode). Nothing of it was written.
    Fenced,
}

/// Rows per multi-row INSERT: 8 bound values a row stays well inside PostgreSQL's 65,535 and
/// SQLite's 32,766 parameters per statement.
const INSERT_CHUNK: usize = 1000;

/// Stores every plan in one transaction and answers what became of each. Samples at or below their
/// stream's watermark were stored before and are skipped. Each team's fencing ticket is checked
/// first, in the same transaction (on PostgreSQL the live leases' rows are held until it commits,
/// so a takeover waits for it): a stale team's plans are [`Written::Fenced`]. `watermarks`
/// changes only when the transaction commits.
pub fn write(
    conn: &mut DbConnection,
    plans: &[Plan],
    watermarks: &mut Watermarks,
) -> QueryResult<Vec<Written>> {
    let mut trial = watermarks.clone();
    let out = conn.transaction(|c| write_batch(c, plans, &mut trial))?;
    *watermarks = trial;
    Ok(out)
}

/// The statements of one flush: every plan's new samples in a few multi-row INSERTs, and one
/// `last_active` UPDATE for all drivers that sent samples, whatever the number of requests (a live
/// node sends one frame per message, so per-request statements were the ingest ceiling).
fn write_batch(
    conn: &mut DbConnection,
    plans: &[Plan],
    watermarks: &mut Watermarks,
) -> QueryResult<Vec<Written>> {
    let stale = stale_teams(conn, plans)?;
    let now = now();
    let mut rows = Vec::new();
    let mut active = BTreeSet::new();
    let mut out = Vec::with_capacity(plans.len());
    // Each session is made sure of once per flush (a live node sends one frame per request).
    let mut ensured = HashSet::new();
    for p in plans {
        if stale.contains(p.team_id.as_str()) {
            out.push(Written::Fenced);
            continue;
        }
        if ensured.insert(p.session.id.as_str()) {
            sessions::ensure_session(conn, &p.session)?;
        }
        out.push(Written::Stored(write_one(conn, p, watermarks, now, &mut rows)?));
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

/// A seq as stored (a seq beyond `i64` is stored as the largest).
fn stored_seq(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// The teams of `plans` whose fencing ticket is stale, or that this node does not hold. On
/// PostgreSQL the check holds the live teams' lease rows (`FOR SHARE`) until the transaction ends.
fn stale_teams<'p>(conn: &mut DbConnection, plans: &'p [Plan]) -> QueryResult<BTreeSet<&'p str>> {
    let mut stale = BTreeSet::new();
    let mut checked = BTreeSet::new();
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
                stale.insert(p.team_id.as_str());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(stale)
}

/// One plan's part of a flush: its watermark, its new samples added to `rows` (the caller inserts
/// them all at once), its laps stored.
fn write_one(
    conn: &mut DbConnection,
    p: &Plan,
    watermarks: &mut Watermarks,
    now: NaiveDateTime,
    rows: &mut Vec<TelemetrySampleRow>,
) -> QueryResult<Vec<LapSummary>> {
    let session_id = p.session.id.clone();
    let mut watermark = None;
    if let Some(stream) = &p.stream_id {
        let key = (p.driver_id.clone(), stream.clone(), p.ticket.token().unwrap_or(0));
        let w = match watermarks.get(&key) {
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
                (Some((_, w)), Some(seq)) => stored_seq(seq) > *w,
                _ => true,
            })
            .map(|s| TelemetrySampleRow {
                id: s.id.clone(),
                driver_id: p.driver_id.clone(),
                session_id: Some(session_id.clone()),
                stream_id: p.stream_id.clone(),
                seq: s.seq.map(stored_seq),
                recorded_at: s.recorded_at,
                received_at: now,
                data: s.data.clone(),
            }),
    );
    if let Some((key, w)) = watermark {
        let max_seq = p.samples.iter().filter_map(|s| s.seq).max();
        let new = max_seq.map(stored_seq).unwrap_or(w).max(w);
        watermarks.insert(key, new);
    }
    let mut stored = Vec::with_capacity(p.laps.len());
    for LapIn { id: lap_id, lap } in &p.laps {
        // A lap already stored (its frames were resent after a restart) is not stored twice.
        let exists = laps::table
            .filter(laps::session_id.eq(&session_id))
            .filter(laps::lap_number.eq(lap.lap_number))
            .select(laps::id)
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
            telemetry: lap.frames.compressed().to_vec(),
            completed_at: now,
            kind: lap.kind.as_str().to_owned(),
            invalid_reasons: serde_json::to_string(&lap.flaws).unwrap_or_else(|_| "[]".into()),
        };
        diesel::insert_into(laps::table).values(&row).execute(conn)?;
        stored.push(LapSummary {
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
    Ok(stored)
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

/// Frames replayed into a restarted session at most (15 minutes at 60 Hz, the longest lap kept).
pub const MAX_RECOVERED_FRAMES: i64 = 60 * 60 * 15;

/// Reads a driver's [`Recovered`] state (see there).
pub fn recover(conn: &mut DbConnection, driver_id: &str) -> QueryResult<Recovered> {
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
        Some(b) => decompress_frames(&b).map_err(unreadable)?.frames.pop(),
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
