//! Lap hygiene: which laps may teach a corner map or become the reference (flying laps without
//! pit visits, off-tracks, incidents or gaps in the data), and where a lap was driven in traffic,
//! so a corner lost behind another car is marked rather than blamed on the driver. Reads no env
//! vars.

use pitbox_schema::wire::{LapFlaw, LapKind, LapSummary, TelemetryFrame};
use serde::{Deserialize, Serialize};

/// Frames further apart than this (seconds) are a gap in the data (as the lap assembler's).
const DATA_GAP_SECS: f64 = 0.5;
/// Another car this close ahead (metres) is traffic.
pub const TRAFFIC_GAP_M: f64 = 40.0;
/// Traffic shorter than this (seconds) is a pass, not a lap spent behind someone.
const TRAFFIC_MIN_SECS: f64 = 0.5;

/// What kind of lap it was and what spoils it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LapQuality {
    pub kind: LapKind,
    pub flaws: Vec<LapFlaw>,
    /// Lap-fraction ranges `[from, to]` spent close behind another car.
    pub traffic: Vec<(f64, f64)>,
}

impl LapQuality {
    /// From the lap assembler's summary (kind and flaws; traffic is only in the frames).
    pub fn from_summary(summary: &LapSummary) -> Self {
        let mut flaws = summary.invalid_reasons.clone();
        if !summary.valid && flaws.is_empty() {
            // Invalid without a reason given: treat as spoiled by an unknown cause.
            flaws.push(LapFlaw::DataGap);
        }
        LapQuality { kind: summary.kind, flaws, traffic: Vec::new() }
    }

    /// From the frames themselves. `player_car_idx` is the driver's own index in the per-car
    /// arrays; without it the entry at the driver's own position is taken to be the driver.
    pub fn from_frames(
        frames: &[TelemetryFrame],
        track_length_m: f64,
        player_car_idx: Option<usize>,
    ) -> Self {
        let mut flaws = Vec::new();
        let first_pit = frames
            .first()
            .is_some_and(|f| f.sample.on_pit_road || matches!(f.sample.track_surface, Some(1 | 2)));
        let last_pit =
            frames.last().is_some_and(|f| f.sample.on_pit_road || f.sample.track_surface == Some(1));
        let kind = if first_pit {
            LapKind::OutLap
        } else if last_pit {
            LapKind::InLap
        } else {
            LapKind::Flying
        };
        if frames.iter().any(|f| f.sample.on_pit_road || matches!(f.sample.track_surface, Some(1 | 2))) {
            flaws.push(LapFlaw::PitRoad);
        }
        if frames.iter().any(|f| f.sample.track_surface == Some(0)) {
            flaws.push(LapFlaw::OffTrack);
        }
        let incidents: Vec<i32> = frames.iter().filter_map(|f| f.sample.incidents).collect();
        if incidents.windows(2).any(|w| matches!(w, [a, b] if b > a)) {
            flaws.push(LapFlaw::Incident);
        }
        if frames
            .windows(2)
            .any(|w| matches!(w, [a, b] if b.sample.session_time - a.sample.session_time > DATA_GAP_SECS))
        {
            flaws.push(LapFlaw::DataGap);
        }
        let traffic = traffic(frames, track_length_m, player_car_idx);
        LapQuality { kind, flaws, traffic }
    }

    /// A flying lap with nothing wrong: may be a reference and may teach corners.
    pub fn is_clean(&self) -> bool {
        self.kind == LapKind::Flying && self.flaws.is_empty()
    }

    /// Whether lap fraction `pos` was driven in traffic.
    pub fn in_traffic(&self, from: f64, to: f64) -> bool {
        self.traffic.iter().any(|&(a, b)| if to < from { b >= from || a <= to } else { a <= to && b >= from })
    }
}

/// Ranges of the lap spent within [`TRAFFIC_GAP_M`] behind another car on track.
fn traffic(frames: &[TelemetryFrame], track_length_m: f64, player: Option<usize>) -> Vec<(f64, f64)> {
    let gap = TRAFFIC_GAP_M / track_length_m.max(1.0);
    // Below this a car is the driver's own entry.
    let own = 0.5 / track_length_m.max(1.0);
    let mut out: Vec<(f64, f64, f64, f64)> = Vec::new(); // from, to, t0, t1
    for f in frames {
        let s = &f.sample;
        let Some(cars) = &s.cars else { continue };
        let me = f64::from(s.track_position).rem_euclid(1.0);
        let close = cars.lap_dist_pct.iter().enumerate().any(|(i, &p)| {
            if Some(i) == player || p < 0.0 || cars.on_pit_road.get(i).copied().unwrap_or(false) {
                return false;
            }
            let ahead = (f64::from(p) - me).rem_euclid(1.0);
            ahead > own && ahead < gap
        });
        if close {
            match out.last_mut() {
                Some(last) if s.session_time - last.3 < 0.2 => {
                    last.1 = me;
                    last.3 = s.session_time;
                }
                _ => out.push((me, me, s.session_time, s.session_time)),
            }
        }
    }
    out.into_iter().filter(|r| r.3 - r.2 >= TRAFFIC_MIN_SECS).map(|r| (r.0, r.1)).collect()
}
