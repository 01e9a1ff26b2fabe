//! The on-disk spool: every telemetry frame is written here (SQLite, WAL, synchronous=FULL) before
//! it is sent, numbered with a sequence number that never repeats, and removed only when the runtime
//! acknowledges it stored. It survives a crash or restart of the node; the stream id (kept in the
//! spool) plus the sequence number let the runtime store each frame exactly once. The spool is
//! bounded: past `max_frames` the oldest unacknowledged frames are thinned (every other one dropped,
//! with a warning), never silently. Replays record their progress in the same transaction as their
//! frames, so a restarted replay resumes where it stopped. Reads no env vars.

use std::path::Path;
use std::sync::Mutex;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use pitbox_schema::wire::TelemetryFrame;

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
                let json = serde_json::to_string(f)
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

    /// Up to `limit` frames after `after`, oldest first, with their sequence numbers set.
    pub fn read_after(&self, after: u64, limit: usize) -> Result<Vec<TelemetryFrame>, SpoolError> {
        let mut conn = self.conn()?;
        let rows: Vec<SeqFrame> =
            diesel::sql_query("SELECT seq, frame FROM spool WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind::<BigInt, _>(i64::try_from(after).unwrap_or(i64::MAX))
                .bind::<BigInt, _>(i64::try_from(limit).unwrap_or(i64::MAX))
                .load(&mut *conn)?;
        rows.into_iter()
            .map(|r| {
                let mut f: TelemetryFrame = serde_json::from_str(&r.frame)?;
                f.seq = u64::try_from(r.seq).ok();
                Ok(f)
            })
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
