//! Telemetry ingest for the REST path: store the sample, feed the driver's lap assembler, store a
//! completed lap whole (deflate-compressed JSON of every frame). Reads no env vars.
//!
//! The assemblers live here, keyed by driver, until the per-driver `DriverSession` actor takes the
//! live state over; the storage format of samples and laps does not change with that move.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

use actors::{CompletedLap, LapAssembler};
use flate2::write::DeflateEncoder;
use flate2::Compression;
use schema::db::models::{Driver, NewLap, TelemetrySampleRow};
use schema::wire::{LapSummary, LapTelemetry, TelemetryFrame};

use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::store;

#[derive(Default)]
pub struct Ingest {
    assemblers: Mutex<HashMap<String, LapAssembler>>,
}

/// What one ingested sample produced.
#[derive(Debug)]
pub struct Ingested {
    pub sample_id: String,
    pub lap: Option<LapSummary>,
}

impl Ingest {
    pub async fn ingest(
        &self,
        db: &Db,
        metrics: &Metrics,
        driver: Driver,
        stream_id: Option<String>,
        frame: TelemetryFrame,
    ) -> ApiResult<Ingested> {
        let data = serde_json::to_string(&frame.sample).map_err(ApiError::internal)?;
        let seq = frame.seq.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
        let recorded_at = frame.timestamp.naive_utc();
        let driver_for_db = driver.clone();
        let (sample_id, session_id, fresh) = db
            .run(move |c| {
                let session = store::open_or_start_session(c, &driver_for_db)?;
                let row = TelemetrySampleRow {
                    id: store::new_id(),
                    driver_id: driver_for_db.id.clone(),
                    session_id: Some(session.id.clone()),
                    stream_id,
                    seq,
                    recorded_at,
                    received_at: store::now(),
                    data,
                };
                let (id, fresh) = store::insert_sample(c, &row)?;
                Ok((id, session.id, fresh))
            })
            .await?;
        if !fresh {
            return Ok(Ingested { sample_id, lap: None });
        }
        metrics.telemetry_samples.inc();

        let completed = {
            let mut map =
                self.assemblers.lock().map_err(|_| ApiError::internal("lap assembler lock poisoned"))?;
            map.entry(driver.id.clone()).or_default().push(frame)
        };
        let lap = match completed {
            Some(done) => {
                let summary = store_lap(db, &driver, &session_id, done).await?;
                metrics.laps.inc();
                Some(summary)
            }
            None => None,
        };
        Ok(Ingested { sample_id, lap })
    }
}

/// Compresses a lap's frames for storage.
pub fn compress_frames(frames: Vec<TelemetryFrame>) -> ApiResult<Vec<u8>> {
    let json = serde_json::to_vec(&LapTelemetry { frames }).map_err(ApiError::internal)?;
    let mut enc = DeflateEncoder::new(Vec::with_capacity(json.len() / 6), Compression::default());
    enc.write_all(&json).map_err(ApiError::internal)?;
    enc.finish().map_err(ApiError::internal)
}

/// Reverses [`compress_frames`].
pub fn decompress_frames(blob: &[u8]) -> ApiResult<LapTelemetry> {
    let dec = flate2::read::DeflateDecoder::new(blob);
    serde_json::from_reader(dec).map_err(ApiError::internal)
}

async fn store_lap(db: &Db, driver: &Driver, session_id: &str, lap: CompletedLap) -> ApiResult<LapSummary> {
    let sample_count = i32::try_from(lap.frames.len()).unwrap_or(i32::MAX);
    let row = NewLap {
        id: store::new_id(),
        session_id: session_id.to_owned(),
        driver_id: driver.id.clone(),
        team_id: driver.team_id.clone(),
        lap_number: lap.lap_number,
        lap_time: lap.lap_time,
        valid: lap.valid,
        fuel_used: lap.fuel_used,
        sector_times: serde_json::to_string(&lap.sector_times).map_err(ApiError::internal)?,
        sample_count,
        telemetry: compress_frames(lap.frames)?,
        completed_at: store::now(),
    };
    let summary = LapSummary {
        id: row.id.clone(),
        session_id: row.session_id.clone(),
        driver_id: row.driver_id.clone(),
        lap_number: row.lap_number,
        lap_time: row.lap_time,
        valid: row.valid,
        fuel_used: row.fuel_used,
        sector_times: lap.sector_times,
        sample_count,
        completed_at: row.completed_at.and_utc(),
    };
    db.run(move |c| store::insert_lap(c, &row)).await?;
    Ok(summary)
}
