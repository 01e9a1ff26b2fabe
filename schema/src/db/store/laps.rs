//! The lap codec: a completed lap's frames as stored in `laps.telemetry` (deflate of the JSON of
//! every frame, in [`LapTelemetry`]'s shape). Reads no env vars.

use std::io::Write as _;

use crate::wire::{LapTelemetry, TelemetryFrame};

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
