//! Laps: a completed lap as it is stored (its summary and its frames), the queries that read
//! laps, and the lap codec: a lap's frames as stored in `laps.telemetry` (raw deflate of the JSON
//! of every frame, in [`LapTelemetry`]'s shape). A lap in progress is encoded as its frames arrive
//! ([`LapEncoder`]), so a live driver holds a few dozen compressed bytes per frame rather than the
//! frames themselves, and the finished lap ([`LapFrames`]) is the stored blob, shared by every
//! reader without a copy. The store writer stores laps (`telemetry`). Reads no env vars.

use std::cell::RefCell;
use std::sync::Arc;

use flate2::{Compress, Compression, FlushCompress, Status};

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
    /// Its frames, compressed as the laps table stores them; the store writes these bytes and the
    /// coach decodes them once, so no consumer holds a copy of its own.
    pub frames: LapFrames,
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

/// JSON gathered before it is compressed. Each chunk is deflated on its own (a fresh dictionary),
/// so the compressor's ~300 KiB of state is one per thread instead of one per driver; at 32 KiB
/// (about a second of frames) the ratio is within a few per cent of one stream's.
const CHUNK: usize = 32 * 1024;

thread_local! {
    /// The thread's compressor and its output buffer, reset for each chunk.
    static DEFLATE: RefCell<(Compress, Vec<u8>)> =
        RefCell::new((Compress::new(Compression::default(), false), Vec::with_capacity(CHUNK)));
}

/// Deflates `input` as blocks that continue the stream (`last` = false: ends on a byte boundary,
/// not final) or end it, and appends them to `out` as one exactly sized chunk.
fn deflate_chunk(input: &[u8], last: bool, out: &mut Vec<Box<[u8]>>) -> std::io::Result<()> {
    DEFLATE.with(|d| {
        let (c, buf) = &mut *d.borrow_mut();
        c.reset();
        buf.clear();
        let flush = if last { FlushCompress::Finish } else { FlushCompress::Full };
        loop {
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(buf.capacity().max(4096));
            }
            let read = usize::try_from(c.total_in()).unwrap_or(usize::MAX).min(input.len());
            let status = c.compress_vec(&input[read..], buf, flush).map_err(std::io::Error::other)?;
            let all_read = usize::try_from(c.total_in()).is_ok_and(|n| n == input.len());
            // Done when the stream ended, or (a flush) when all was read and output room was left.
            if status == Status::StreamEnd || (!last && all_read && buf.len() < buf.capacity()) {
                break;
            }
        }
        out.push(buf.as_slice().into());
        Ok(())
    })
}

/// A lap's frames being encoded as they arrive; [`LapEncoder::finish`] gives the stored blob.
/// Memory: the pending JSON (at most [`CHUNK`] and a frame) plus the compressed chunks.
#[derive(Debug, Default)]
pub struct LapEncoder {
    /// JSON not yet compressed.
    pending: Vec<u8>,
    /// Deflate blocks so far, none final.
    chunks: Vec<Box<[u8]>>,
    count: usize,
}

impl LapEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Frames encoded so far.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Heap bytes held (for memory figures).
    pub fn heap_bytes(&self) -> usize {
        self.pending.capacity()
            + self.chunks.capacity() * std::mem::size_of::<Box<[u8]>>()
            + self.chunks.iter().map(|c| c.len()).sum::<usize>()
    }

    pub fn push(&mut self, frame: &TelemetryFrame) -> std::io::Result<()> {
        self.open_frame();
        serde_json::to_writer(&mut self.pending, frame)?;
        self.close_frame()
    }

    /// As [`LapEncoder::push`], with the sample already encoded (`sample_json`, as
    /// `serde_json::to_string(&frame.sample)` writes it, which a driver session has done for
    /// storage anyway): the same text, with the frame's own fields written before the sample's.
    pub fn push_encoded(&mut self, frame: &TelemetryFrame, sample_json: &str) -> std::io::Result<()> {
        let Some(fields) = sample_json.strip_prefix('{').filter(|f| f.len() > 1 && f.ends_with('}')) else {
            return self.push(frame);
        };
        // The fields `TelemetryFrame` writes before its flattened sample, in its order.
        #[derive(serde::Serialize)]
        struct Head<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            seq: Option<u64>,
            timestamp: &'a chrono::DateTime<chrono::Utc>,
        }
        self.open_frame();
        serde_json::to_writer(&mut self.pending, &Head { seq: frame.seq, timestamp: &frame.timestamp })?;
        // `{…head…}` becomes `{…head…,` and the sample's fields follow, with its closing brace.
        self.pending.pop();
        self.pending.push(b',');
        self.pending.extend_from_slice(fields.as_bytes());
        self.close_frame()
    }

    fn open_frame(&mut self) {
        if self.pending.capacity() == 0 {
            // Room for a chunk and the frame that crosses its end, so the buffer never doubles.
            self.pending.reserve_exact(CHUNK + CHUNK / 8);
        }
        self.pending.extend_from_slice(if self.count == 0 { b"{\"frames\":[" } else { b"," });
    }

    fn close_frame(&mut self) -> std::io::Result<()> {
        self.count += 1;
        if self.pending.len() >= CHUNK {
            deflate_chunk(&self.pending, false, &mut self.chunks)?;
            self.pending.clear();
        }
        Ok(())
    }

    /// The lap's blob, in [`compress_frames`]'s format.
    pub fn finish(mut self) -> std::io::Result<LapFrames> {
        self.pending.extend_from_slice(if self.count == 0 { b"{\"frames\":[]}" } else { b"]}" });
        deflate_chunk(&self.pending, true, &mut self.chunks)?;
        let blob: Arc<[u8]> = self.chunks.concat().into();
        Ok(LapFrames { count: self.count, blob })
    }
}

/// A completed lap's frames, compressed as stored; clones share the bytes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LapFrames {
    count: usize,
    blob: Arc<[u8]>,
}

impl LapFrames {
    /// Encodes frames at once (tests, and laps not built frame by frame).
    pub fn encode<'a>(frames: impl IntoIterator<Item = &'a TelemetryFrame>) -> std::io::Result<Self> {
        let mut enc = LapEncoder::new();
        for f in frames {
            enc.push(f)?;
        }
        enc.finish()
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The bytes stored in `laps.telemetry`.
    pub fn compressed(&self) -> &[u8] {
        &self.blob
    }

    /// The frames again (what a reader that needs them whole decodes, once).
    pub fn decode(&self) -> std::io::Result<Vec<TelemetryFrame>> {
        Ok(decompress_frames(&self.blob)?.frames)
    }
}

/// Compresses a lap's frames for storage.
pub fn compress_frames(frames: &[TelemetryFrame]) -> std::io::Result<Vec<u8>> {
    Ok(LapFrames::encode(frames)?.compressed().to_vec())
}

/// Reverses [`compress_frames`].
pub fn decompress_frames(blob: &[u8]) -> std::io::Result<LapTelemetry> {
    Ok(serde_json::from_reader(flate2::read::DeflateDecoder::new(blob))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{CarArrays, TelemetrySample};

    fn frames(n: usize) -> Vec<TelemetryFrame> {
        (0..n)
            .map(|i| TelemetryFrame {
                seq: (i % 3 != 0).then_some(i as u64),
                timestamp: chrono::DateTime::from_timestamp(
                    1_700_000_000 + i as i64 / 60,
                    (i % 60) as u32 * 16_666_667,
                )
                .unwrap_or_default(),
                sample: TelemetrySample {
                    session_time: i as f64 / 60.0,
                    speed: (i as f32 * 0.37).sin() * 100.0 + 150.0,
                    rpm: 7000.0 + (i % 97) as f32,
                    track_position: (i as f32 / 5400.0) % 1.0,
                    fuel_level: 50.0 - i as f32 * 1e-4,
                    last_lap_time: (i > 100).then_some(91.234),
                    latitude: Some(36.0 + i as f64 * 1e-7),
                    cars: (i % 2 == 0).then(|| CarArrays {
                        lap: vec![3, 4, -1],
                        lap_dist_pct: vec![0.1, i as f32 / 1e4, -1.0],
                        position: vec![1, 2, 0],
                        on_pit_road: vec![false, true, false],
                    }),
                    ..TelemetrySample::default()
                },
            })
            .collect()
    }

    #[test]
    fn frames_encoded_one_by_one_come_back_whole_across_chunks() {
        for n in [0, 1, 7, 5400] {
            let fs = frames(n);
            let lap = LapFrames::encode(&fs).unwrap();
            assert_eq!(lap.len(), n);
            assert_eq!(lap.decode().unwrap(), fs, "{n} frames");
            // The stored format is the one whole-lap JSON, readable by the old reader.
            let json: Vec<u8> = std::io::Read::bytes(flate2::read::DeflateDecoder::new(lap.compressed()))
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(json, serde_json::to_vec(&LapTelemetry { frames: fs }).unwrap());
        }
    }

    #[test]
    fn frames_pushed_with_their_encoded_sample_store_the_same_bytes() {
        let fs = frames(3000);
        let (mut typed, mut spliced) = (LapEncoder::new(), LapEncoder::new());
        for f in &fs {
            typed.push(f).unwrap();
            spliced.push_encoded(f, &serde_json::to_string(&f.sample).unwrap()).unwrap();
        }
        let (typed, spliced) = (typed.finish().unwrap(), spliced.finish().unwrap());
        assert_eq!(typed.compressed(), spliced.compressed());
        assert_eq!(spliced.decode().unwrap(), fs);
    }

    #[test]
    fn a_lap_in_progress_holds_compressed_bytes() {
        let fs = frames(5400);
        let mut enc = LapEncoder::new();
        for f in &fs {
            enc.push(f).unwrap();
        }
        let whole = fs.len() * std::mem::size_of::<TelemetryFrame>();
        assert!(enc.heap_bytes() * 4 < whole, "{} bytes held for {whole} bytes of frames", enc.heap_bytes());
    }
}
