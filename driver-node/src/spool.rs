//! The on-disk spool: every telemetry frame is written here (SQLite, WAL, synchronous=FULL) before
//! it is sent, numbered with a sequence number that never repeats, and removed only when the runtime
//! acknowledges it stored. It survives a crash or restart of the node; the stream id (kept in the
//! spool) plus the sequence number let the runtime store each frame exactly once. The spool is
//! bounded: past `max_frames` the oldest unacknowledged frames are thinned (every other one dropped,
//! with a warning), never silently. Replays record their progress in the same transaction as their
//! frames, so a restarted replay resumes where it stopped. A frame is kept as the JSON it is sent
//! as, without its sequence number (the row's key), which is spliced in when it is read: the
//! uplink sends it without decoding and encoding it again. Rows that carry a `seq` of their own
//! are read by decoding them. Reads no env vars.

use std::path::Path;
use std::sync::Mutex;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use pitbox_schema::wire::TelemetryFrame;
use serde_json::value::RawValue;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("cannot open the spool at {path}: {source}")]
    Open { path: String, source: diesel::ConnectionError },
    #[error("spool: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("spool: a stored frame is unreadable: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("spool lock poisoned")]
    Poisoned,
}

#[derive(QueryableByName)]
struct SeqFrame {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Text)]
    frame: String,
}

#[derive(QueryableByName)]
struct One {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Value {
    #[diesel(sql_type = Text)]
    value: String,
}

pub struct Spool {
    conn: Mutex<SqliteConnection>,
    stream_id: String,
    max_frames: u64,
    /// Woken after every append, so the uplink sends at once instead of polling.
    appended: tokio::sync::Notify,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`.
    pub fn open(dir: &Path, max_frames: u64) -> Result<Spool, SpoolError> {
        let path = dir.join("spool.db");
        let _ = std::fs::create_dir_all(dir);
        let mut conn = SqliteConnection::establish(&path.to_string_lossy())
            .map_err(|source| SpoolError::Open { path: path.display().to_string(), source })?;
        // FULL: a frame the node has recorded survives a power cut too, not only a crash.
        conn.batch_execute(
            "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, frame TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);",
        )?;
        let stream_id = match meta(&mut conn, "stream_id")? {
            Some(s) => s,
            None => {
                let s = uuid::Uuid::now_v7().to_string();
                set_meta(&mut conn, "stream_id", &s)?;
                s
            }
        };
        Ok(Spool {
            conn: Mutex::new(conn),
            stream_id,
            max_frames: max_frames.max(1000),
            appended: tokio::sync::Notify::new(),
        })
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, SqliteConnection>, SpoolError> {
        self.conn.lock().map_err(|_| SpoolError::Poisoned)
    }

    /// The stream id the runtime knows this spool's sequence numbers by.
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    /// Appends frames durably; `progress` (key, value) is recorded in the same transaction.
    /// Returns the sequence numbers given.
    pub fn append(
        &self,
        frames: &[TelemetryFrame],
        progress: Option<(&str, &str)>,
    ) -> Result<Vec<u64>, SpoolError> {
        let mut conn = self.conn()?;
        let seqs = conn.transaction(|c| {
            let mut seqs = Vec::with_capacity(frames.len());
            for f in frames {
                // The sequence number is the row's: a frame never carries its own in the spool.
                let json = match f.seq {
                    None => serde_json::to_string(f),
                    Some(_) => serde_json::to_string(&TelemetryFrame { seq: None, ..f.clone() }),
                }
                .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
                let row: One = diesel::sql_query("INSERT INTO spool (frame) VALUES (?) RETURNING seq AS n")
                    .bind::<Text, _>(json)
                    .get_result(c)?;
                seqs.push(u64::try_from(row.n).unwrap_or(0));
            }
            if let Some((k, v)) = progress {
                set_meta(c, k, v)?;
            }
            Ok::<_, diesel::result::Error>(seqs)
        })?;
        let depth = count(&mut conn)?;
        if depth > self.max_frames {
            thin(&mut conn, depth - self.max_frames)?;
        }
        drop(conn);
        self.appended.notify_waiters();
        Ok(seqs)
    }

    /// Up to `limit` frames after `after`, oldest first, each with its sequence number and its
    /// JSON as sent (sequence number included).
    pub fn read_raw_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Box<RawValue>)>, SpoolError> {
        let mut conn = self.conn()?;
        let rows: Vec<SeqFrame> =
            diesel::sql_query("SELECT seq, frame FROM spool WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind::<BigInt, _>(i64::try_from(after).unwrap_or(i64::MAX))
                .bind::<BigInt, _>(i64::try_from(limit).unwrap_or(i64::MAX))
                .load(&mut *conn)?;
        drop(conn);
        rows.into_iter()
            .map(|r| {
                let seq = u64::try_from(r.seq).unwrap_or(0);
                // Written with a `seq` of its own (compact JSON puts it first): the row's wins.
                let json = if r.frame.starts_with("{\"seq\":") {
                    let mut f: TelemetryFrame = serde_json::from_str(&r.frame)?;
                    f.seq = Some(seq);
                    serde_json::value::to_raw_value(&f)?
                } else {
                    TelemetryFrame::json_with_seq(seq, &r.frame)?
                };
                Ok((seq, json))
            })
            .collect()
    }

    /// Up to `limit` frames after `after`, decoded, oldest first, with their sequence numbers set.
    pub fn read_after(&self, after: u64, limit: usize) -> Result<Vec<TelemetryFrame>, SpoolError> {
        self.read_raw_after(after, limit)?
            .into_iter()
            .map(|(_, json)| Ok(serde_json::from_str(json.get())?))
            .collect()
    }

    /// Resolves after the next append.
    pub async fn appended(&self) {
        self.appended.notified().await;
    }

    /// The runtime stored everything up to `seq`: forget it.
    pub fn ack(&self, seq: u64) -> Result<(), SpoolError> {
        let mut conn = self.conn()?;
        diesel::sql_query("DELETE FROM spool WHERE seq <= ?")
            .bind::<BigInt, _>(i64::try_from(seq).unwrap_or(i64::MAX))
            .execute(&mut *conn)?;
        Ok(())
    }

    /// Frames waiting for an acknowledgement.
    pub fn depth(&self) -> Result<u64, SpoolError> {
        count(&mut *self.conn()?)
    }

    pub fn get_meta(&self, key: &str) -> Result<Option<String>, SpoolError> {
        meta(&mut *self.conn()?, key)
    }
}

fn count(conn: &mut SqliteConnection) -> Result<u64, SpoolError> {
    let one: One = diesel::sql_query("SELECT COUNT(*) AS n FROM spool").get_result(conn)?;
    Ok(u64::try_from(one.n).unwrap_or(0))
}

/// Drops every other frame among the oldest `2 × excess`, keeping the newest data whole.
fn thin(conn: &mut SqliteConnection, excess: u64) -> Result<(), SpoolError> {
    let span = i64::try_from(excess.saturating_mul(2)).unwrap_or(i64::MAX);
    let dropped = diesel::sql_query(
        "DELETE FROM spool WHERE seq IN (SELECT seq FROM spool ORDER BY seq LIMIT ?) AND seq % 2 = 0",
    )
    .bind::<BigInt, _>(span)
    .execute(conn)?;
    tracing::warn!(dropped, "spool full: thinned the oldest unsent telemetry to every other sample");
    Ok(())
}

fn meta(conn: &mut SqliteConnection, key: &str) -> Result<Option<String>, SpoolError> {
    let v: Option<Value> = diesel::sql_query("SELECT value FROM meta WHERE key = ?")
        .bind::<Text, _>(key)
        .get_result(conn)
        .optional()?;
    Ok(v.map(|v| v.value))
}

fn set_meta(conn: &mut SqliteConnection, key: &str, value: &str) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )
    .bind::<Text, _>(key)
    .bind::<Text, _>(value)
    .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::Synthetic;

    #[test]
    fn frames_survive_reopen_and_acks_remove_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut car = Synthetic::new(3);
        let frames: Vec<_> = (0..10).map(|_| car.next_frame()).collect();
        let stream;
        {
            let spool = Spool::open(dir.path(), 10_000).unwrap();
            stream = spool.stream_id().to_owned();
            assert_eq!(
                spool.append(&frames, Some(("replay", "10"))).unwrap(),
                (1..=10).collect::<Vec<u64>>()
            );
            spool.ack(4).unwrap();
        }
        let spool = Spool::open(dir.path(), 10_000).unwrap();
        assert_eq!(spool.stream_id(), stream, "the stream id is kept");
        assert_eq!(spool.depth().unwrap(), 6);
        assert_eq!(spool.get_meta("replay").unwrap().as_deref(), Some("10"));
        let back = spool.read_after(4, 100).unwrap();
        assert_eq!(back.len(), 6);
        assert_eq!(back[0].seq, Some(5));
        assert_eq!(back[0].sample, frames[4].sample);
        // Sequence numbers never repeat, even after everything was acknowledged.
        spool.ack(10).unwrap();
        assert_eq!(spool.append(&frames[..1], None).unwrap(), vec![11]);
    }

    #[test]
    fn frames_are_read_as_sent_and_rows_of_the_previous_version_too() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 10_000).unwrap();
        let mut car = Synthetic::new(5);
        let mut frames: Vec<_> = (0..4).map(|_| car.next_frame()).collect();
        // A frame handed in with a number of its own: the spool's number is the one sent.
        frames[1].seq = Some(77);
        spool.append(&frames[..2], None).unwrap();
        // Rows as the previous version wrote them (`serde_json::to_string(frame)`), one of them
        // carrying a stale `seq` of its own.
        frames[3].seq = Some(5);
        for f in &frames[2..] {
            diesel::sql_query("INSERT INTO spool (frame) VALUES (?)")
                .bind::<Text, _>(serde_json::to_string(f).unwrap())
                .execute(&mut *spool.conn().unwrap())
                .unwrap();
        }
        let raw = spool.read_raw_after(0, 10).unwrap();
        assert_eq!(raw.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        for ((seq, json), mut f) in raw.into_iter().zip(frames) {
            f.seq = Some(seq);
            // Byte for byte what decoding the row and encoding the numbered frame gave before.
            assert_eq!(json.get(), serde_json::to_string(&f).unwrap());
        }
    }

    /// Micro-measure of the uplink's batch building (read 60 frames, make the `telemetry_batch`
    /// text), the previous way (decode each row, encode the batch) beside this one:
    /// `cargo test --release -p pitbox-driver --no-default-features --lib batch_building_cost -- --ignored --nocapture`
    #[test]
    #[ignore]
    #[allow(clippy::print_stderr)]
    fn batch_building_cost() {
        use pitbox_schema::wire::{telemetry_batch_json, Envelope, Message, TelemetryBatch};
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 100_000).unwrap();
        let mut car = Synthetic::new(6);
        let n = 6000u64;
        let frames: Vec<_> = (0..n).map(|_| car.next_frame()).collect();
        spool.append(&frames, None).unwrap();
        let previous = |after: u64| {
            let rows: Vec<SeqFrame> =
                diesel::sql_query("SELECT seq, frame FROM spool WHERE seq > ? ORDER BY seq LIMIT 60")
                    .bind::<BigInt, _>(after as i64)
                    .load(&mut *spool.conn().unwrap())
                    .unwrap();
            let frames = rows
                .into_iter()
                .map(|r| {
                    let mut f: TelemetryFrame = serde_json::from_str(&r.frame).unwrap();
                    f.seq = u64::try_from(r.seq).ok();
                    f
                })
                .collect();
            let batch = Envelope::new(Message::TelemetryBatch(TelemetryBatch {
                driver_id: "d".into(),
                stream_id: Some("s".into()),
                frames,
            }));
            serde_json::to_string(&batch).unwrap()
        };
        let now = |after: u64| {
            let rows = spool.read_raw_after(after, 60).unwrap();
            let frames: Vec<_> = rows.into_iter().map(|(_, j)| j).collect();
            telemetry_batch_json("d", Some("s"), &frames).unwrap()
        };
        assert_eq!(previous(0), now(0), "the same text on the wire");
        for round in 0..3 {
            for (name, f) in [("previous", &previous as &dyn Fn(u64) -> String), ("encode-once", &now)] {
                let t = std::time::Instant::now();
                let mut bytes = 0;
                for after in (0..n).step_by(60) {
                    bytes += f(after).len();
                }
                let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
                eprintln!("round {round} {name:12} {us:6.2} µs/frame ({} B/frame)", bytes as u64 / n);
            }
        }
    }

    #[test]
    fn a_full_spool_thins_the_oldest_frames() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1000).unwrap();
        let mut car = Synthetic::new(4);
        let frames: Vec<_> = (0..1200).map(|_| car.next_frame()).collect();
        spool.append(&frames, None).unwrap();
        let depth = spool.depth().unwrap();
        assert!(depth <= 1000, "depth {depth}");
        let kept = spool.read_after(0, 2000).unwrap();
        // The newest frame is always kept.
        assert_eq!(kept.last().unwrap().seq, Some(1200));
    }
}
