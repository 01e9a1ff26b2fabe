//! The coach's work behind the REST API, kept off the request path where it can be: a lap's corner
//! table against its reference (computed once per lap and reference, then served from
//! [`CoachCache`]), the analysis of posted frames, and the CSV exports (channels by lap
//! distance). Everything here is synchronous and runs on the blocking pool. Reads no env vars.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use pitbox_actors::coach_store;
use pitbox_coach::{
    compare, CornerMap, LapComparison, LapTrace, LearnOptions, MetricOptions, SegmentId, Turn,
};
use pitbox_schema::db::models::{LapRow, TrackMapRow};
use pitbox_schema::db::store::laps::decompress_frames;
use pitbox_schema::wire::{CornerRow, LapCorners, TelemetryFrame};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};

/// Entries kept per cache; beyond it the cache starts again (a lap's table is cheap to redo, and
/// a team looks at its recent laps).
const CACHE_ENTRIES: usize = 512;

/// A lap measured against a reference: the table the API serves and the comparison behind it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LapAnalysis {
    pub corners: LapCorners,
    pub comparison: LapComparison,
    pub map: CornerMap,
}

/// Analyses made for earlier requests, by (lap, reference lap).
#[derive(Default)]
pub struct CoachCache {
    laps: Mutex<HashMap<(String, String), Arc<LapAnalysis>>>,
}

impl CoachCache {
    pub fn get(&self, lap: &str, reference: &str) -> Option<Arc<LapAnalysis>> {
        self.laps.lock().ok()?.get(&(lap.to_owned(), reference.to_owned())).cloned()
    }

    pub fn put(&self, lap: &str, reference: &str, a: Arc<LapAnalysis>) {
        if let Ok(mut m) = self.laps.lock() {
            if m.len() >= CACHE_ENTRIES {
                m.clear();
            }
            m.insert((lap.to_owned(), reference.to_owned()), a);
        }
    }

    /// Forgets what was computed with a track's old corner names.
    pub fn clear(&self) {
        if let Ok(mut m) = self.laps.lock() {
            m.clear();
        }
    }
}

fn frames(blob: &[u8]) -> ApiResult<Vec<TelemetryFrame>> {
    Ok(decompress_frames(blob).map_err(ApiError::internal)?.frames)
}

fn trace(frames: &[TelemetryFrame], length: Option<f64>, what: &str) -> ApiResult<LapTrace> {
    LapTrace::from_frames(frames, length)
        .map_err(|e| ApiError::invalid(format!("{what}: cannot be analysed ({e})")))
}

/// Measures a lap against a reference lap on the track's stored map (else one learnt from the
/// reference), with the team's corner names.
pub fn analyse_lap(
    lap: (&LapRow, &[u8]),
    reference: (&LapRow, &[u8]),
    track: &str,
    stored: Option<&TrackMapRow>,
    turns: &[Turn],
) -> ApiResult<LapAnalysis> {
    let stored_map = stored.and_then(coach_store::corner_map);
    let length = stored_map.as_ref().map(|m| m.track_length_m);
    let r = trace(&frames(reference.1)?, length, "the reference lap")?;
    let l = trace(&frames(lap.1)?, length.or(Some(r.track_length_m)), "the lap")?;
    let mut map = stored_map.unwrap_or_else(|| CornerMap::learn(&r, &LearnOptions::default()));
    map.apply_names(turns);
    let comparison = compare(&map, &r, &l, &MetricOptions::default());
    let segments = map.segments();
    let mut rows: Vec<CornerRow> = Vec::new();
    for seg in &comparison.segments {
        // A corner across the line has two pieces: its row spans from the later start to the end.
        let pieces: Vec<_> = segments.iter().filter(|s| s.id == seg.id).collect();
        let (start, end) = match pieces.as_slice() {
            [one] => (one.start, one.end),
            many => (
                many.iter().map(|s| s.start).fold(0.0, f64::max),
                many.iter().map(|s| s.end).fold(1.0, f64::min),
            ),
        };
        let corner = match seg.id {
            SegmentId::Corner(n) => comparison.corners.iter().find(|c| c.number == n),
            SegmentId::Straight(_) => None,
        };
        rows.push(CornerRow {
            name: seg.label.clone(),
            kind: if matches!(seg.id, SegmentId::Corner(_)) { "corner" } else { "straight" }.to_owned(),
            start,
            end,
            delta_s: seg.delta_s,
            braking_point_delta_m: corner.and_then(|c| c.braking_point_diff_m),
            peak_brake: corner.map(|c| f64::from(c.lap.peak_brake)),
            min_speed: corner.map(|c| f64::from(c.lap.min_speed_kmh)),
            reference_min_speed: corner.map(|c| f64::from(c.reference.min_speed_kmh)),
            throttle_pickup_delta_m: corner.and_then(|c| c.throttle_pickup_diff_m),
            coasting_m: corner.map(|c| c.lap.coasting_m),
        });
    }
    Ok(LapAnalysis {
        corners: LapCorners {
            lap_id: lap.0.id.clone(),
            reference_lap_id: reference.0.id.clone(),
            track: track.to_owned(),
            lap_delta_s: comparison.lap_delta_s,
            rows,
        },
        comparison,
        map,
    })
}

/// Columns of the CSV export, in order.
const CSV_HEADER: &str = "lap,lap_dist_pct,lap_dist_m,lap_time_s,session_time,speed_kmh,throttle,brake,clutch,steering_angle,gear,rpm,fuel_level,latitude,longitude,on_pit_road";

/// Appends one lap's frames as CSV rows: channels by lap distance (`lap_dist_m` from the track
/// length when known), time since the lap's first frame.
fn csv_rows(out: &mut String, lap_number: i32, frames: &[TelemetryFrame], length_m: Option<f64>) {
    let t0 = frames.first().map_or(0.0, |f| f.sample.session_time);
    for f in frames {
        let s = &f.sample;
        let pos = f64::from(s.track_position);
        let metres = length_m.map(|l| format!("{:.2}", pos * l)).unwrap_or_default();
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.7}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "{lap_number},{pos:.6},{metres},{:.4},{:.4},{},{},{},{},{},{},{},{},{},{},{}",
            s.session_time - t0,
            s.session_time,
            s.speed,
            s.throttle,
            s.brake,
            s.clutch,
            s.steering_angle,
            s.gear,
            s.rpm,
            s.fuel_level,
            opt(s.latitude),
            opt(s.longitude),
            u8::from(s.on_pit_road),
        );
    }
}

/// Laps (in order) as one CSV document.
pub fn laps_csv(laps: &[(LapRow, Vec<u8>)], length_m: Option<f64>) -> ApiResult<String> {
    let mut out = String::with_capacity(laps.len() * 400_000);
    out.push_str(CSV_HEADER);
    out.push('\n');
    for (row, blob) in laps {
        csv_rows(&mut out, row.lap_number, &frames(blob)?, length_m);
    }
    Ok(out)
}
