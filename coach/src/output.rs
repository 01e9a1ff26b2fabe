//! The coach's words in the seed's shapes: `ai_coaching` (`feedback`, `confidence`,
//! `telemetryAnalysis {strengths, weaknesses, improvementAreas}`, `priority`) and the answer of
//! `POST /api/coaching/analyze` (`feedback`, `suggestions`, `analysis`), plus the one short tip a
//! driver hears after a lap. Every sentence is a [`Finding`]'s text, so the numbers behind it are
//! the engine's. Reads no env vars.

use chrono::{DateTime, Utc};
use pitbox_schema::wire::{AiCoaching, CoachingItem, LapFlaw, TelemetryAnalysis, TelemetryFrame};
use serde::{Deserialize, Serialize};

use crate::coach::{Coach, CoachConfig, LapReport};
use crate::findings::{signed_seconds, Finding, Subject};
use crate::strategy::Remaining;

/// Statements in `feedback`.
const FEEDBACK_STATEMENTS: usize = 3;

/// The seed's answer to `POST /api/coaching/analyze`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalyzeResponse {
    pub feedback: String,
    pub suggestions: Vec<String>,
    pub analysis: TelemetryAnalysis,
}

fn to_fix(report: &LapReport) -> impl Iterator<Item = &Finding> {
    report.findings.iter().filter(|f| !f.is_strength())
}

/// The statements of a report, most important first, as one paragraph.
pub fn feedback(report: &LapReport) -> String {
    let parts: Vec<String> = to_fix(report).take(FEEDBACK_STATEMENTS).map(Finding::text).collect();
    if !parts.is_empty() {
        return format!("{}.", parts.join(". "));
    }
    match &report.comparison {
        Some(c) => format!(
            "Lap {}: {:.3} s, {} on the reference; nothing to fix",
            report.lap,
            report.lap_time_s,
            signed_seconds(-c.lap_delta_s)
        ),
        None => format!("Lap {}: {:.3} s", report.lap, report.lap_time_s),
    }
}

/// The one tip a driver hears after the lap (the most important statement), if any.
pub fn spoken_tip(report: &LapReport) -> Option<String> {
    to_fix(report).next().map(Finding::text)
}

/// Strengths, weaknesses and improvement areas.
pub fn telemetry_analysis(report: &LapReport) -> TelemetryAnalysis {
    let strengths: Vec<String> =
        report.findings.iter().filter(|f| f.is_strength()).map(Finding::text).collect();
    let weaknesses: Vec<String> = to_fix(report).map(Finding::text).collect();
    let mut improvement_areas: Vec<String> = report
        .costly_corners
        .iter()
        .filter(|c| c.mean_delta_s >= 0.05)
        .take(3)
        .map(|c| format!("{}: {:.2} s a lap on average over {} laps", c.name, c.mean_delta_s, c.laps))
        .collect();
    if report.quality.flaws.contains(&LapFlaw::OffTrack) {
        improvement_areas.push(format!("Lap {}: stay within the track limits", report.lap));
    }
    TelemetryAnalysis { strengths, weaknesses, improvement_areas }
}

/// What to do, most important first.
pub fn suggestions(report: &LapReport) -> Vec<String> {
    to_fix(report).filter_map(Finding::suggestion).collect()
}

/// The `ai_coaching` message of a lap.
pub fn ai_coaching(report: &LapReport, driver_id: Option<String>, timestamp: DateTime<Utc>) -> AiCoaching {
    AiCoaching {
        id: None,
        driver_id,
        feedback: feedback(report),
        confidence: report.confidence,
        telemetry_analysis: telemetry_analysis(report),
        timestamp,
        priority: report.priority,
        lap_id: None,
        lap_number: Some(report.lap),
        tip: None,
        items: report.findings.iter().map(item).collect(),
        strategy: None,
    }
}

/// A finding as one item of the coaching feed: its text with the corner and numbers behind it.
pub fn item(f: &Finding) -> CoachingItem {
    CoachingItem {
        text: f.text(),
        priority: f.priority,
        topic: f.topic(),
        corner: match &f.subject {
            Subject::Corner { name, .. } => Some(name.clone()),
            _ => None,
        },
        time_gained_s: f.time_gained_s,
        pattern: f.pattern.filter(|p| p.of >= 2).map(|p| (p.count, p.of)),
    }
}

/// The analyze answer of a lap.
pub fn analyze_response(report: &LapReport) -> AnalyzeResponse {
    AnalyzeResponse {
        feedback: feedback(report),
        suggestions: suggestions(report),
        analysis: telemetry_analysis(report),
    }
}

/// One-shot analysis of a run of frames (the analyze endpoint's `telemetryData`): the frames are
/// cut into laps where the lap counter changes (with one frame of the neighbours on each side, so
/// the crossings are interpolated), every whole lap goes through a fresh coach, and the reports
/// come back in order. Partial laps at either end are skipped.
pub fn analyze_frames(
    frames: &[TelemetryFrame],
    config: CoachConfig,
    remaining: Option<Remaining>,
) -> Vec<LapReport> {
    let mut coach = Coach::new(config);
    let mut starts: Vec<usize> = vec![0];
    starts.extend(
        (1..frames.len())
            .filter(|&i| frames.get(i).map(|f| f.sample.lap) != frames.get(i - 1).map(|f| f.sample.lap)),
    );
    starts.push(frames.len());
    starts
        .windows(2)
        .filter_map(|w| {
            let [a, b] = w else { return None };
            let from = a.saturating_sub(1);
            let to = (*b + 1).min(frames.len());
            coach.add_lap(frames.get(from..to)?, None, remaining).ok()
        })
        .collect()
}
