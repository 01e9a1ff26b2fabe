//! Laps: a completed lap as it is stored (its summary and its frames), the queries that read
//! laps, and the lap codec: a lap's frames as stored in `laps.telemetry` (deflate of the JSON of
//! every frame, in [`LapTelemetry`]'s shape). The store writer stores laps (`telemetry`). Reads no
//! env vars.

use std::io::Write as _;

use diesel::prelude::*;

use crate::db::models::LapRow;
use crate::db::schema::laps;
use crate::db::DbConnection;
use crate::wire::{LapFlaw, LapKind, LapTelemetry, TelemetryFrame};

/// A lap that has just been completed.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletedLap {
    pub lap_number: i32,
    /// Seconds, line to line.
    pub lap_time: f64,
    pub valid: bool,
    pub kind: LapKind,
    /// Why it is invalid (empty when valid).
    pub flaws: Vec<LapFlaw>,
    /// Litres, when the tank level fell over the lap.
    pub fuel_used: Option<f64>,
    pub sector_times: Vec<f64>,
    /// Shared: the store and the coach read the same frames without copying them.
    pub frames: std::sync::Arc<Vec<TelemetryFrame>>,
}

/// Which of a team's laps to list.
pub struct LapFilter<'a> {
    pub team_id: &'a str,
    pub driver_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub limit: i64,
}

/// A team's newest laps (summaries), optionally of one driver or session.
pub fn list_laps(conn: &mut DbConnection, f: &LapFilter<'_>) -> QueryResult<Vec<LapRow>> {
    let mut q = laps::table
        .filter(laps::team_id.eq(f.team_id.to_owned()))
        .order(laps::completed_at.desc())
        .limit(f.limit)
        .select(LapRow::as_select())
        .into_boxed();
    if let Some(d) = f.driver_id {
        q = q.filter(laps::driver_id.eq(d.to_owned()));
    }
    if let Some(s) = f.session_id {
        q = q.filter(laps::session_id.eq(s.to_owned()));
    }
    q.load(conn)
}

/// One lap's summary and its compressed telemetry; `NotFound` when there is none.
pub fn get_lap(conn: &mut DbConnection, id: &str) -> QueryResult<(LapRow, Vec<u8>)> {
    let row = laps::table.find(id).select(LapRow::as_select()).first(conn)?;
    let blob = laps::table.find(id).select(laps::telemetry).first::<Vec<u8>>(conn)?;
    Ok((row, blob))
}

/// The last `limit` laps of a session in lap order, with their compressed frames.
pub fn session_laps(
    conn: &mut DbConnection,
    session_id: &str,
    limit: i64,
) -> QueryResult<Vec<(LapRow, Vec<u8>)>> {
    let mut rows = laps::table
        .filter(laps::session_id.eq(session_id))
        .order(laps::lap_number.desc())
        .limit(limit)
        .select((LapRow::as_select(), laps::telemetry))
        .load::<(LapRow, Vec<u8>)>(conn)?;
    rows.reverse();
    Ok(rows)
}

/// The fastest valid flying lap of a session other than `except`.
pub fn best_lap(conn: &mut DbConnection, session_id: &str, except: &str) -> QueryResult<Option<String>> {
    laps::table
        .filter(laps::session_id.eq(session_id))
        .filter(laps::valid.eq(true))
        .filter(laps::kind.eq("flying"))
        .filter(laps::id.ne(except))
        .order(laps::lap_time.asc())
        .select(laps::id)
        .first(conn)
        .optional()
}

/// Compresses a lap's frames for storage.
pub fn compress_frames(frames: &[TelemetryFrame]) -> std::io::Result<Vec<u8>> {
    /// [`LapTelemetry`]'s shape, borrowing the frames.
    #[derive(serde::Serialize)]
    struct Frames<'a> {
        frames: &'a [TelemetryFrame],
    }
    let json = serde_json::to_vec(&Frames { frames })?;
    let mut enc = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(json.len() / 6),
        flate2::Compression::default(),
    );
    enc.write_all(&json)?;
    enc.finish()
}

/// Reverses [`compress_frames`].
pub fn decompress_frames(blob: &[u8]) -> std::io::Result<LapTelemetry> {
    Ok(serde_json::from_reader(flate2::read::DeflateDecoder::new(blob))?)
}
