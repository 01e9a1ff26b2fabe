//! The on-disk spool: every telemetry frame is written here (SQLite, WAL, synchronous=FULL) before
//! it is sent, numbered with a sequence number that never repeats, and removed only when the runtime
//! acknowledges it stored. It survives a crash or restart of the node; the stream id (kept in the
//! spool) plus the sequence number let the runtime store each frame exactly once. The spool is
//! bounded, and thins oldest-first, never silently: past `max_frames`, and when its disk is full
//! (SQLite's "database or disk is full", which is how it reports `ENOSPC` and Windows'
//! `ERROR_DISK_FULL`), every other frame among the oldest unacknowledged ones is dropped, the
//! newest kept whole (on a full disk after giving back the room it keeps in reserve,
//! [`RESERVE`]; what it holds then bounds it until the disk has room again). A thinned frame
//! leaves a gap in the sequence numbers, which is how the runtime knows the node made the gap
//! itself (a batch after it claims no continuity). When the disk is
//! still full after thinning the node does not stop: new frames go live only (held in memory, up
//! to [`LIVE_MAX`], and sent once, without a sequence number, so they are neither acknowledged nor
//! resent and never claim a place in the stream's order), and each later write tries the spool
//! again, which resumes as soon as there is room. Replays record their progress in the same
//! transaction as their frames, so a restarted replay resumes where it stopped. A frame is kept as
//! the JSON it is sent as, without its sequence number (the row's key), which is spliced in when it
//! is read: the uplink sends it without decoding and encoding it again. Rows that carry a `seq` of
//! their own are read by decoding them. Beside the frames, the spool keeps which sim session they
//! belong to: a mark (track, car, session type, or the session's end) at the sequence number of
//! the first frame it applies to, so the uplink tells the runtime of a new session, or of the end
//! of one, exactly between the frames before and after it, however late they are sent. Reads no
//! env vars.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use pitbox_schema::wire::{SimSession, TelemetryFrame};
use serde_json::value::RawValue;

/// Frames recorded while the spool cannot be written that are held for the uplink at most (10 s at
/// 60 Hz): beyond it, while the link is down too, the oldest are lost.
pub const LIVE_MAX: usize = 600;

/// A write that fails with "disk I/O error" counts as a full disk when less than this is free
/// (SQLite reports most `ENOSPC` as "full", but not every one).
const LOW_SPACE: u64 = 1 << 20;

/// Room the spool keeps for itself on its disk: a file of this size (`spool.reserve`) made when
/// there is plenty of room, and given back when the disk is full. SQLite needs room to make room:
/// its write-ahead log must be copied into the database (which may grow) before the log can be
/// reused, and the thinning's own delete goes through the log. Without it a disk that other files
/// filled leaves nothing to thin with.
const RESERVE: u64 = 4 << 20;

/// Halvings of the oldest half at most, one after the other, to make room on a full disk.
const THINNINGS: usize = 3;

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
struct Mark {
    #[diesel(sql_type = BigInt)]
    first_seq: i64,
    #[diesel(sql_type = Text)]
    session: String,
}

#[derive(QueryableByName)]
struct Value {
    #[diesel(sql_type = Text)]
    value: String,
}

/// The writer's side: the connection, and what it knows about writing lately.
struct Writer {
    conn: SqliteConnection,
    /// The newest sequence number given (live-only frames go after it; the next frame gets the
    /// one after it, never one given before, even when the spool is empty: `AUTOINCREMENT`).
    newest: u64,
    /// The sim session marks (the `sim_sessions` table, kept here too: the uplink asks at every
    /// send, and they are few).
    marks: std::collections::BTreeMap<u64, SimSession>,
    /// The disk was full even after thinning: frames go live only until a write succeeds.
    unspooled: bool,
    /// The bound while the disk is full: what the spool held when it last made room.
    cap: Option<u64>,
    /// A full disk was reported with the one clear error (since the start, or spooling last
    /// resumed): a later one is a warning.
    full_reported: bool,
}

/// A frame recorded while the spool could not be written.
struct LiveFrame {
    /// The newest frame spooled before it: spooled frames up to there are sent first.
    after: u64,
    /// As sent: without a sequence number.
    json: Box<RawValue>,
}

/// Frames waiting to go live only, and what became of live-only frames in this episode.
#[derive(Default)]
struct Live {
    frames: VecDeque<LiveFrame>,
    /// Recorded without the spool since it last could be written.
    recorded: u64,
    /// Of those, dropped unsent (the link was down too, and more than [`LIVE_MAX`] waited).
    lost: u64,
}

/// Live-only frames the uplink may send now, all after the same spooled frame.
pub struct LiveBatch {
    /// The newest spooled frame recorded before them.
    pub after: u64,
    pub frames: Vec<Box<RawValue>>,
}

pub struct Spool {
    writer: Mutex<Writer>,
    live: Mutex<Live>,
    /// Signalled when the uplink takes live-only frames: a recorder waiting for room goes on.
    live_taken: Condvar,
    dir: PathBuf,
    path: PathBuf,
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
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS sim_sessions (first_seq INTEGER PRIMARY KEY, session TEXT NOT NULL);",
        )?;
        let stream_id = match meta(&mut conn, "stream_id")? {
            Some(s) => s,
            None => {
                let s = uuid::Uuid::now_v7().to_string();
                set_meta(&mut conn, "stream_id", &s)?;
                s
            }
        };
        keep_reserve(dir);
        let newest: One = diesel::sql_query(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'spool'), 0), \
             COALESCE((SELECT MAX(seq) FROM spool), 0)) AS n",
        )
        .get_result(&mut conn)?;
        let marks = diesel::sql_query("SELECT first_seq, session FROM sim_sessions")
            .load::<Mark>(&mut conn)?
            .into_iter()
            .map(|m| Ok((u64::try_from(m.first_seq).unwrap_or(0), serde_json::from_str(&m.session)?)))
            .collect::<Result<_, SpoolError>>()?;
        Ok(Spool {
            writer: Mutex::new(Writer {
                conn,
                newest: u64::try_from(newest.n).unwrap_or(0),
                marks,
                unspooled: false,
                cap: None,
                full_reported: false,
            }),
            live: Mutex::new(Live::default()),
            live_taken: Condvar::new(),
            dir: dir.to_owned(),
            path,
            stream_id,
            max_frames: max_frames.max(1000),
            appended: tokio::sync::Notify::new(),
        })
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, Writer>, SpoolError> {
        self.writer.lock().map_err(|_| SpoolError::Poisoned)
    }

    fn live(&self) -> Result<std::sync::MutexGuard<'_, Live>, SpoolError> {
        self.live.lock().map_err(|_| SpoolError::Poisoned)
    }

    /// The stream id the runtime knows this spool's sequence numbers by.
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    /// The spool's database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends frames durably; `progress` (key, value) is recorded in the same transaction.
    /// Returns the sequence numbers given: none when the disk is full even after thinning, and
    /// the frames went to the uplink to be sent live only (progress is then not recorded).
    pub fn append(
        &self,
        frames: &[TelemetryFrame],
        progress: Option<(&str, &str)>,
    ) -> Result<Vec<u64>, SpoolError> {
        let mut w = self.writer()?;
        let seqs = match insert(&mut w.conn, frames, progress) {
            Ok(seqs) => seqs,
            Err(e) if self.no_room(&e) => match self.make_room(&mut w, frames, progress)? {
                Some(seqs) => seqs,
                None => {
                    self.go_live(&w, frames)?;
                    drop(w);
                    self.appended.notify_waiters();
                    return Ok(Vec::new());
                }
            },
            Err(e) => return Err(e.into()),
        };
        w.newest = seqs.last().copied().unwrap_or(w.newest);
        if w.unspooled {
            w.unspooled = false;
            w.full_reported = false;
            w.cap = None;
            let mut live = self.live()?;
            let (recorded, lost) = (live.recorded, live.lost);
            (live.recorded, live.lost) = (0, 0);
            drop(live);
            keep_reserve(&self.dir);
            tracing::warn!(
                spool = %self.path.display(),
                sent_live_only = recorded.saturating_sub(lost),
                lost,
                "the spool's disk has room again: spooling resumed"
            );
        }
        let depth = count(&mut w.conn)?;
        let limit = w.cap.map_or(self.max_frames, |c| c.min(self.max_frames));
        if depth > limit {
            // In steps of an eighth of the limit, not a few frames at every append: each thinning
            // is a disk sync, and a thinning in one step halves a stretch evenly.
            let dropped = match thin(&mut w.conn, (depth - limit).max(limit / 8)) {
                Ok(n) => n,
                // Room is made at the next write that finds none.
                Err(SpoolError::Db(e)) if self.no_room(&e) => 0,
                Err(e) => return Err(e),
            };
            tracing::warn!(
                dropped,
                max_frames = limit,
                "spool full: thinned the oldest unsent telemetry to every other sample"
            );
        }
        drop(w);
        self.appended.notify_waiters();
        Ok(seqs)
    }

    /// A write failed for want of room. Unless already live only (where each append tries once):
    /// gives back the reserve, thins the oldest half of the spool to every other frame, frees the
    /// write-ahead log and writes again (while there is still no room, up to [`THINNINGS`]
    /// times), saying so in one clear error; what it holds then bounds it until the disk has room
    /// again. `None`: still no room.
    fn make_room(
        &self,
        w: &mut Writer,
        frames: &[TelemetryFrame],
        progress: Option<(&str, &str)>,
    ) -> Result<Option<Vec<u64>>, SpoolError> {
        if w.unspooled {
            return Ok(None);
        }
        // The reserve goes first: it lets the log be copied in and truncated, and the thinning's
        // delete be written. Made again once the disk has plenty of room.
        let _ = std::fs::remove_file(self.dir.join(RESERVE_FILE));
        // The log's pages are in the database already (or about to be): giving them back to the
        // disk is free room, and the thinning below needs some to write its own delete.
        let _ = w.conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);");
        let depth = count(&mut w.conn)?;
        let mut dropped = 0;
        // A frame is smaller than a page, and SQLite frees a page only once it is under a third
        // full: one halving leaves the oldest pages half full and frees none; a second one (the
        // same rule, on what is oldest now) does. Past that the spool is nearly empty anyway.
        let mut written = Ok(Vec::new());
        for _ in 0..THINNINGS {
            let now = count(&mut w.conn)?;
            match thin(&mut w.conn, now / 4) {
                Ok(n) => dropped += n,
                Err(SpoolError::Db(e)) if self.no_room(&e) => {}
                Err(e) => return Err(e),
            }
            let _ = w.conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);");
            written = insert(&mut w.conn, frames, progress);
            match &written {
                Err(e) if self.no_room(e) => {}
                _ => break,
            }
        }
        // What fits now is the spool's bound until the disk has room again: it thins oldest-first
        // from here on instead of growing into the full disk once more.
        let fits = count(&mut w.conn)?;
        w.cap = Some(fits.max(1000));
        let held = format!(
            "{} holds {} unsent frames ({:.1} MB), {} free",
            self.path.display(),
            depth - dropped as u64,
            self.bytes() as f64 / 1e6,
            fs4::available_space(&self.dir)
                .map_or_else(|_| "unknown".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6)),
        );
        match written {
            Ok(seqs) => {
                let what = if dropped == 0 {
                    format!(
                        "the spool's disk is full: {held}; its write-ahead log was given back to the \
                         disk to make room, and recording and sending go on"
                    )
                } else {
                    format!(
                        "the spool's disk is full: {held}; thinned {dropped} of the oldest unsent frames \
                         (every other one, oldest first) to make room, and recording and sending go on"
                    )
                };
                if std::mem::replace(&mut w.full_reported, true) {
                    tracing::warn!("{what}");
                } else {
                    tracing::error!("{what}");
                }
                Ok(Some(seqs))
            }
            Err(e) if self.no_room(&e) => {
                w.unspooled = true;
                w.full_reported = true;
                tracing::error!(
                    "the spool's disk is full, even after thinning {dropped} of the oldest unsent frames: \
                     {held}; new frames are sent live without being spooled (lost if the link drops) \
                     until there is room again: free some space on this disk"
                );
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Hands frames the spool could not take to the uplink, oldest dropped past [`LIVE_MAX`].
    fn go_live(&self, w: &Writer, frames: &[TelemetryFrame]) -> Result<(), SpoolError> {
        let mut live = self.live()?;
        for f in frames {
            let json = serde_json::value::to_raw_value(&TelemetryFrame { seq: None, ..f.clone() })?;
            live.frames.push_back(LiveFrame { after: w.newest, json });
            live.recorded += 1;
        }
        let over = live.frames.len().saturating_sub(LIVE_MAX);
        if over > 0 {
            if live.lost == 0 {
                tracing::error!(
                    "the spool's disk is full and the link is down: telemetry is being lost until \
                     either comes back"
                );
            }
            live.frames.drain(..over);
            live.lost += over as u64;
        }
        Ok(())
    }

    /// Whether a failed write failed for want of room on the spool's disk.
    fn no_room(&self, e: &diesel::result::Error) -> bool {
        let diesel::result::Error::DatabaseError(_, info) = e else { return false };
        let m = info.message();
        m.contains("database or disk is full")
            || (m.contains("disk I/O error")
                && fs4::available_space(&self.dir).is_ok_and(|free| free < LOW_SPACE))
    }

    /// Bytes the spool takes on disk (its database and write-ahead log).
    pub fn bytes(&self) -> u64 {
        bytes_in(&self.dir)
    }

    /// Whether frames are going live only (the disk was full even after thinning).
    pub fn unspooled(&self) -> bool {
        self.writer().is_ok_and(|w| w.unspooled)
    }

    /// The spooled frame the oldest live-only frame waits behind, if one waits.
    pub fn live_after(&self) -> Result<Option<u64>, SpoolError> {
        Ok(self.live()?.frames.front().map(|f| f.after))
    }

    /// Takes up to `limit` live-only frames, all recorded after the same spooled frame.
    pub fn take_live(&self, limit: usize) -> Result<Option<LiveBatch>, SpoolError> {
        let mut live = self.live()?;
        let Some(after) = live.frames.front().map(|f| f.after) else { return Ok(None) };
        let n = live.frames.iter().take(limit).take_while(|f| f.after == after).count();
        let frames = live.frames.drain(..n).map(|f| f.json).collect();
        drop(live);
        self.live_taken.notify_all();
        Ok(Some(LiveBatch { after, frames }))
    }

    /// Waits (at most `timeout`) until no more than `most` live-only frames wait: a recorder
    /// faster than the link (an unpaced replay) is held back rather than losing frames while the
    /// link is up.
    pub fn wait_live_room(&self, most: usize, timeout: Duration) -> Result<(), SpoolError> {
        let live = self.live()?;
        let _ = self
            .live_taken
            .wait_timeout_while(live, timeout, |l| l.frames.len() > most)
            .map_err(|_| SpoolError::Poisoned)?;
        Ok(())
    }

    /// Up to `limit` frames after `after`, oldest first, each with its sequence number and its
    /// JSON as sent (sequence number included).
    pub fn read_raw_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Box<RawValue>)>, SpoolError> {
        self.read_raw_between(after, u64::MAX, limit)
    }

    /// As [`Spool::read_raw_after`], up to `upto` (included).
    pub fn read_raw_between(
        &self,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Box<RawValue>)>, SpoolError> {
        let mut w = self.writer()?;
        let rows: Vec<SeqFrame> =
            diesel::sql_query("SELECT seq, frame FROM spool WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?")
                .bind::<BigInt, _>(i64::try_from(after).unwrap_or(i64::MAX))
                .bind::<BigInt, _>(i64::try_from(upto).unwrap_or(i64::MAX))
                .bind::<BigInt, _>(i64::try_from(limit).unwrap_or(i64::MAX))
                .load(&mut w.conn)?;
        drop(w);
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

    /// The runtime stored everything up to `seq`: forget it. On a full disk the delete may find
    /// no room for its own log; the frames are then forgotten by a later acknowledgement (the
    /// runtime stores a resend once), and the uplink goes on.
    pub fn ack(&self, seq: u64) -> Result<(), SpoolError> {
        let mut w = self.writer()?;
        let delete = |c: &mut SqliteConnection| {
            diesel::sql_query("DELETE FROM spool WHERE seq <= ?")
                .bind::<BigInt, _>(i64::try_from(seq).unwrap_or(i64::MAX))
                .execute(c)
        };
        // Marks of sessions whose frames are all stored go too, but the one in effect for the next
        // frame stays: a reconnecting uplink names it.
        let prune = |c: &mut SqliteConnection| {
            diesel::sql_query(
                "DELETE FROM sim_sessions WHERE first_seq < \
                 (SELECT MAX(first_seq) FROM sim_sessions WHERE first_seq <= ?)",
            )
            .bind::<BigInt, _>(i64::try_from(seq.saturating_add(1)).unwrap_or(i64::MAX))
            .execute(c)
        };
        match delete(&mut w.conn).and_then(|_| prune(&mut w.conn)) {
            Ok(_) => {
                if let Some(keep) = w.marks.range(..=seq.saturating_add(1)).next_back().map(|(k, _)| *k) {
                    w.marks = w.marks.split_off(&keep);
                }
                Ok(())
            }
            Err(e) if self.no_room(&e) => {
                let _ = w.conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);");
                if let Err(e) = delete(&mut w.conn) {
                    tracing::warn!(error = %e, seq, "the spool's disk is full: acknowledged frames are forgotten later");
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Frames waiting for an acknowledgement.
    pub fn depth(&self) -> Result<u64, SpoolError> {
        count(&mut self.writer()?.conn)
    }

    /// Frames waiting to be sent live only.
    pub fn live_depth(&self) -> Result<u64, SpoolError> {
        Ok(self.live()?.frames.len() as u64)
    }

    /// Records that the frames from the next one on belong to sim session `session` (or come after
    /// its end): a mark at the sequence number the next frame will get, sent by the uplink in the
    /// order of the frames. The same session as the mark in effect adds nothing; a mark no frame
    /// follows yet is replaced by the next one. Wakes the uplink, so an end is told at once.
    pub fn mark_session(&self, session: &SimSession) -> Result<(), SpoolError> {
        let mut w = self.writer()?;
        let at = w.newest + 1;
        let mut latest = w.marks.range(..=at).rev();
        match latest.next() {
            Some((_, m)) if m == session => return Ok(()),
            Some((&first, _)) if first == at => {
                // Nothing was recorded in the session this mark began: it never happened. Should
                // the one before it be this session, that one simply goes on.
                let goes_on = latest.next().is_some_and(|(_, m)| m == session);
                diesel::sql_query("DELETE FROM sim_sessions WHERE first_seq = ?")
                    .bind::<BigInt, _>(i64::try_from(at).unwrap_or(i64::MAX))
                    .execute(&mut w.conn)?;
                w.marks.remove(&at);
                if goes_on {
                    return Ok(());
                }
            }
            _ => {}
        }
        diesel::sql_query("INSERT INTO sim_sessions (first_seq, session) VALUES (?, ?)")
            .bind::<BigInt, _>(i64::try_from(at).unwrap_or(i64::MAX))
            .bind::<Text, _>(serde_json::to_string(session)?)
            .execute(&mut w.conn)?;
        w.marks.insert(at, session.clone());
        drop(w);
        self.appended.notify_waiters();
        Ok(())
    }

    /// The sim session mark in effect for the frame numbered `seq` (the newest at or before it),
    /// with the number it starts at.
    pub fn session_at(&self, seq: u64) -> Result<Option<(u64, SimSession)>, SpoolError> {
        Ok(self.writer()?.marks.range(..=seq).next_back().map(|(at, m)| (*at, m.clone())))
    }

    /// Where the next sim session mark after frame `seq` starts, if one does.
    pub fn next_mark_after(&self, seq: u64) -> Result<Option<u64>, SpoolError> {
        Ok(self.writer()?.marks.range(seq.saturating_add(1)..).next().map(|(at, _)| *at))
    }

    /// The number the next spooled frame will get (a mark made now starts there).
    pub fn next_seq(&self) -> Result<u64, SpoolError> {
        Ok(self.writer()?.newest + 1)
    }

    pub fn get_meta(&self, key: &str) -> Result<Option<String>, SpoolError> {
        meta(&mut self.writer()?.conn, key)
    }

    /// Caps the database at `pages` pages (SQLite's `max_page_count`): past it every write fails
    /// as on a full disk. For tests, which make a real "database or disk is full" this way.
    #[cfg(test)]
    pub(crate) fn cap_pages(&self, pages: u64) -> Result<(), SpoolError> {
        self.writer()?.conn.batch_execute(&format!("PRAGMA max_page_count = {pages};"))?;
        Ok(())
    }

    /// The database's size in pages now.
    #[cfg(test)]
    pub(crate) fn pages(&self) -> Result<u64, SpoolError> {
        let one: One = diesel::sql_query("SELECT page_count AS n FROM pragma_page_count()")
            .get_result(&mut self.writer()?.conn)?;
        Ok(u64::try_from(one.n).unwrap_or(0))
    }
}

/// The reserve's file name, in the spool's directory.
const RESERVE_FILE: &str = "spool.reserve";

/// Makes the reserve ([`RESERVE`]) unless it is there, or the disk has less than twice its size
/// free (taking the last room would only bring the full disk sooner).
fn keep_reserve(dir: &Path) {
    let path = dir.join(RESERVE_FILE);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() >= RESERVE)
        || fs4::available_space(dir).map_or(true, |free| free < 2 * RESERVE)
    {
        return;
    }
    // Written out, not only sized: a sparse file would give nothing back.
    let made = std::fs::File::create(&path).and_then(|mut f| {
        use std::io::Write;
        let block = vec![0u8; 64 << 10];
        for _ in 0..RESERVE / block.len() as u64 {
            f.write_all(&block)?;
        }
        f.sync_all()
    });
    if let Err(e) = made {
        tracing::warn!(error = %e, "cannot keep room in reserve for the spool");
        let _ = std::fs::remove_file(&path);
    }
}

/// Bytes the spool in `dir` takes on disk (its database and write-ahead log; 0 for none).
pub fn bytes_in(dir: &Path) -> u64 {
    ["spool.db", "spool.db-wal"].iter().map(|f| std::fs::metadata(dir.join(f)).map_or(0, |m| m.len())).sum()
}

/// The frames (and progress) in one transaction; the sequence numbers given.
fn insert(
    conn: &mut SqliteConnection,
    frames: &[TelemetryFrame],
    progress: Option<(&str, &str)>,
) -> QueryResult<Vec<u64>> {
    conn.transaction(|c| {
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
        Ok(seqs)
    })
}

fn count(conn: &mut SqliteConnection) -> Result<u64, SpoolError> {
    let one: One = diesel::sql_query("SELECT COUNT(*) AS n FROM spool").get_result(conn)?;
    Ok(u64::try_from(one.n).unwrap_or(0))
}

/// Drops every other frame among the oldest `2 × excess` (the 2nd, 4th, … by position, so a
/// stretch thinned before is thinned again, not skipped), keeping the newest data whole. Returns
/// how many were dropped.
fn thin(conn: &mut SqliteConnection, excess: u64) -> Result<usize, SpoolError> {
    if excess == 0 {
        return Ok(0);
    }
    let span = i64::try_from(excess.saturating_mul(2)).unwrap_or(i64::MAX);
    Ok(diesel::sql_query(
        "DELETE FROM spool WHERE seq IN (
             SELECT seq FROM (SELECT seq, ROW_NUMBER() OVER (ORDER BY seq) AS n FROM spool ORDER BY seq LIMIT ?)
             WHERE n % 2 = 0)",
    )
    .bind::<BigInt, _>(span)
    .execute(conn)?)
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

/// A small tmpfs mounted on a directory, for tests of a really full disk (`ENOSPC`): Linux, as
/// root. Unmounted on drop.
#[cfg(target_os = "linux")]
#[doc(hidden)]
pub struct SmallDisk {
    dir: PathBuf,
}

#[cfg(target_os = "linux")]
impl SmallDisk {
    /// Mounts a tmpfs of `size` (`mount -o size=`) on `dir`; `Err` says why not (not root, no
    /// `mount`).
    pub fn mount(dir: &Path, size: &str) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("cannot mount a tmpfs: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(SmallDisk { dir: dir.to_owned() })
    }

    /// Fills what is left with a file, returned, to be removed when room should return.
    pub fn fill(&self) -> std::io::Result<PathBuf> {
        use std::io::Write;
        let path = self.dir.join("filler");
        let mut f = std::fs::File::create(&path)?;
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        while f.write_all(&block[..1]).is_ok() {}
        Ok(path)
    }
}

#[cfg(target_os = "linux")]
impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.dir).status();
    }
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
    fn sim_session_marks_sit_at_the_next_frame_and_outlive_only_what_they_still_name() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 10_000).unwrap();
        let mut car = Synthetic::new(5);
        let frames: Vec<_> = (0..10).map(|_| car.next_frame()).collect();
        let at = |kind: &str| SimSession {
            track: Some("Spa".into()),
            car: Some("GT3".into()),
            session_type: Some(kind.into()),
            ..SimSession::default()
        };
        spool.mark_session(&at("Practice")).unwrap();
        spool.append(&frames[..4], None).unwrap();
        // The same session again adds nothing.
        spool.mark_session(&at("Practice")).unwrap();
        spool.mark_session(&at("Race")).unwrap();
        // A mark no frame followed is replaced, and one that gives back the session before
        // simply goes on with it.
        spool.mark_session(&SimSession::ended()).unwrap();
        spool.mark_session(&at("Qualify")).unwrap();
        spool.append(&frames[4..7], None).unwrap();
        spool.mark_session(&SimSession::ended()).unwrap();
        spool.mark_session(&at("Qualify")).unwrap();
        spool.append(&frames[7..], None).unwrap();
        spool.mark_session(&SimSession::ended()).unwrap();

        assert_eq!(spool.session_at(1).unwrap(), Some((1, at("Practice"))));
        assert_eq!(spool.session_at(4).unwrap(), Some((1, at("Practice"))));
        assert_eq!(spool.session_at(5).unwrap(), Some((5, at("Qualify"))));
        assert_eq!(spool.session_at(10).unwrap(), Some((5, at("Qualify"))), "Qualify went on");
        assert_eq!(spool.session_at(11).unwrap(), Some((11, SimSession::ended())));
        assert_eq!(spool.next_mark_after(1).unwrap(), Some(5));
        assert_eq!(spool.next_mark_after(5).unwrap(), Some(11));
        assert_eq!(spool.next_mark_after(11).unwrap(), None);
        assert_eq!(spool.next_seq().unwrap(), 11);

        // Stored up to 6: the practice mark goes, the one naming frame 7 stays.
        spool.ack(6).unwrap();
        assert_eq!(spool.session_at(4).unwrap(), None);
        assert_eq!(spool.session_at(7).unwrap(), Some((5, at("Qualify"))));
        // Everything stored: the end stays, for the uplink that has not told it yet.
        spool.ack(10).unwrap();
        assert_eq!(spool.session_at(u64::MAX).unwrap(), Some((11, SimSession::ended())));
        drop(spool);
        // A new run starts where the numbers go on (the spool is empty, the numbers never repeat).
        let spool = Spool::open(dir.path(), 10_000).unwrap();
        spool.mark_session(&at("Race")).unwrap();
        assert_eq!(spool.session_at(11).unwrap(), Some((11, at("Race"))), "the unsent end is replaced");
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
                .execute(&mut spool.writer().unwrap().conn)
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
                    .load(&mut spool.writer().unwrap().conn)
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

    #[test]
    fn thinning_again_thins_what_was_thinned_before_and_keeps_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1000).unwrap();
        let mut car = Synthetic::new(7);
        // Past the limit again and again, a few frames at a time (as a live node writes).
        for _ in 0..1000 {
            let frames: Vec<_> = (0..3).map(|_| car.next_frame()).collect();
            spool.append(&frames, None).unwrap();
            assert!(spool.depth().unwrap() <= 1000, "depth {}", spool.depth().unwrap());
        }
        let kept: Vec<u64> = spool.read_after(0, 5000).unwrap().iter().map(|f| f.seq.unwrap()).collect();
        // The newest stretch is whole; the oldest one is sparser.
        assert_eq!(*kept.last().unwrap(), 3000);
        let newest: Vec<u64> = kept.iter().rev().take(100).copied().collect();
        assert!(newest.windows(2).all(|w| w[0] == w[1] + 1), "the newest 100 are whole");
        assert!(kept[1] - kept[0] > 1, "the oldest are thinned: {:?}", &kept[..5]);
    }

    /// A real "database or disk is full": the database is capped (SQLite's `max_page_count`) at
    /// the size it has, so the next frame finds no page.
    #[test]
    fn a_full_disk_thins_the_oldest_half_and_writes_again() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1_000_000).unwrap();
        let mut car = Synthetic::new(8);
        let frames: Vec<_> = (0..2000).map(|_| car.next_frame()).collect();
        spool.append(&frames, Some(("replay", "2000"))).unwrap();
        spool.cap_pages(spool.pages().unwrap()).unwrap();
        let more: Vec<_> = (0..3).map(|_| car.next_frame()).collect();
        // Without room, the write fails as it would on a full disk.
        let refused = insert(&mut spool.writer().unwrap().conn, &more, None).unwrap_err();
        assert!(spool.no_room(&refused), "{refused}");

        assert_eq!(spool.append(&more, Some(("replay", "2003"))).unwrap(), vec![2001, 2002, 2003]);
        assert!(!spool.unspooled());
        assert_eq!(spool.get_meta("replay").unwrap().as_deref(), Some("2003"));
        // Halving the oldest half (the 2nd, 4th, … of 1..1000) left its pages half full and freed
        // none; the second halving (of the oldest half of what was left: 1, 3, … 999, then
        // 1001..1250) did. The newest are whole.
        let kept: Vec<u64> = spool.read_after(0, 5000).unwrap().iter().map(|f| f.seq.unwrap()).collect();
        assert_eq!(kept.len(), 2000 - 500 - 375 + 3);
        assert_eq!(&kept[..3], &[1, 5, 9]);
        assert_eq!(&kept[250..253], &[1001, 1003, 1005]);
        assert_eq!(kept[375..], (1251..=2003).collect::<Vec<u64>>()[..]);
        // The frames sent after a gap say so by their numbers: 1 then 5, nothing claims 2.
        assert_eq!(spool.read_after(1, 1).unwrap()[0].seq, Some(5));
    }

    #[test]
    fn a_disk_still_full_after_thinning_sends_live_only_then_spools_again() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1_000_000).unwrap();
        let mut car = Synthetic::new(9);
        let frames: Vec<_> = (0..10).map(|_| car.next_frame()).collect();
        spool.append(&frames, None).unwrap();
        spool.ack(4).unwrap();
        spool.cap_pages(spool.pages().unwrap()).unwrap();

        // Thinning six frames cannot free the pages 200 frames need: live only.
        let live: Vec<_> = (0..200).map(|_| car.next_frame()).collect();
        assert_eq!(spool.append(&live, Some(("replay", "210"))).unwrap(), Vec::<u64>::new());
        assert!(spool.unspooled());
        assert_eq!(spool.get_meta("replay").unwrap(), None, "progress is not recorded without the spool");
        assert_eq!(spool.live_depth().unwrap(), 200);
        // They wait behind the newest spooled frame, and carry no sequence number.
        assert_eq!(spool.live_after().unwrap(), Some(10));
        let kept = spool.depth().unwrap();
        assert!((1..6).contains(&kept), "thinned, oldest half by oldest half: {kept} kept");

        // The link is down too: past LIVE_MAX the oldest live frames are lost, the newest kept.
        let flood: Vec<_> = (0..LIVE_MAX + 100).map(|_| car.next_frame()).collect();
        for f in flood.chunks(100) {
            assert!(spool.append(f, None).unwrap().is_empty());
        }
        assert_eq!(spool.live_depth().unwrap(), LIVE_MAX as u64);
        assert_eq!(spool.depth().unwrap(), kept, "nothing more thinned while live only");
        let batch = spool.take_live(60).unwrap().unwrap();
        assert_eq!((batch.after, batch.frames.len()), (10, 60));
        let first: TelemetryFrame = serde_json::from_str(batch.frames[0].get()).unwrap();
        assert_eq!(first.seq, None);
        assert_eq!(first.sample, flood[100].sample, "the oldest 300 of 900 went");

        // Room again: the next write spools, numbered after everything before.
        spool.cap_pages(1_000_000).unwrap();
        let back: Vec<_> = (0..3).map(|_| car.next_frame()).collect();
        assert_eq!(spool.append(&back, None).unwrap(), vec![11, 12, 13]);
        assert!(!spool.unspooled());
        // The live frames still waiting go before these (they wait behind seq 10 only).
        assert_eq!(spool.live_after().unwrap(), Some(10));
        let mut taken = 60;
        while let Some(b) = spool.take_live(60).unwrap() {
            assert_eq!(b.after, 10);
            taken += b.frames.len();
        }
        assert_eq!(taken, LIVE_MAX);
    }

    /// A true `ENOSPC`: the spool on a 16 MiB tmpfs, filled up by another file. Linux as root
    /// only (skipped with the reason otherwise).
    #[cfg(target_os = "linux")]
    #[test]
    #[allow(clippy::print_stderr)]
    fn a_real_full_disk_makes_room_and_spools_again_when_room_returns() {
        let root = tempfile::tempdir().unwrap();
        let disk = match SmallDisk::mount(root.path(), "16m") {
            Ok(d) => d,
            Err(why) => return eprintln!("skipped (needs root): {why}"),
        };
        let dir = root.path().join("spool");
        let spool = Spool::open(&dir, 1_000_000).unwrap();
        assert!(dir.join(RESERVE_FILE).is_file(), "room kept in reserve");
        let mut car = Synthetic::new(10);
        // Some history, and a write-ahead log that has grown as it does in use.
        for _ in 0..200 {
            let frames: Vec<_> = (0..3).map(|_| car.next_frame()).collect();
            spool.append(&frames, None).unwrap();
        }
        let filler = disk.fill().unwrap();
        let (mut spooled, mut live) = (0u64, 0u64);
        for _ in 0..2000 {
            let frames: Vec<_> = (0..3).map(|_| car.next_frame()).collect();
            match spool.append(&frames, None).unwrap().len() {
                0 => live += 3,
                n => spooled += n as u64,
            }
        }
        let depth = spool.depth().unwrap();
        eprintln!("on the full disk: {spooled} frames spooled, {live} live only, {depth} held");
        assert!(!dir.join(RESERVE_FILE).exists(), "the reserve was given back");
        assert!(spooled > 0, "the reserve and thinning made room on the full disk");
        assert!(depth < 600 + spooled, "the oldest were thinned: {depth} held");
        // The newest spooled frames are whole.
        let newest: Vec<u64> =
            spool.read_after(0, 100_000).unwrap().iter().rev().take(30).map(|f| f.seq.unwrap()).collect();
        assert!(newest.windows(2).all(|w| w[0] == w[1] + 1), "{newest:?}");
        std::fs::remove_file(filler).unwrap();
        let frames: Vec<_> = (0..3).map(|_| car.next_frame()).collect();
        assert_eq!(spool.append(&frames, None).unwrap().len(), 3, "spooling resumes when room returns");
        assert!(!spool.unspooled());
    }
}
