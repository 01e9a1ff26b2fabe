//! The coach of one driver: keeps the corner map, the reference lap and the recent laps, and
//! turns every completed lap into a [`LapReport`] (comparison, findings with patterns,
//! consistency, costly corners, strategy, confidence and priority). Its whole state is serde, so
//! an actor can checkpoint it and survive a restart. Reads no env vars.

use pitbox_schema::wire::{LapFlaw, LapKind, LapSummary, MessagePriority, TelemetryFrame, TireSet};
use serde::{Deserialize, Serialize};

use crate::compare::{compare, LapComparison, MetricOptions};
use crate::consistency::{consistency, costly_corners, pattern, CornerConsistency, CornerCost};
use crate::corners::{CornerMap, LearnOptions, Turn};
use crate::findings::{classify, FaultThresholds, Finding, Issue, Subject};
use crate::hygiene::LapQuality;
use crate::strategy::{strategy, FuelOptions, LapResources, Remaining, Strategy};
use crate::trace::{LapTrace, TraceError};

/// Everything the coach can be tuned with; the defaults are what a team gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CoachConfig {
    /// Metres, from the session info; estimated from the speed without it.
    pub track_length_m: Option<f64>,
    /// The driver's index in the per-car arrays (for traffic).
    pub player_car_idx: Option<usize>,
    pub tank_capacity_l: Option<f64>,
    /// The team's corner names for this track.
    pub turns: Vec<Turn>,
    pub learn: LearnOptions,
    pub metrics: MetricOptions,
    pub thresholds: FaultThresholds,
    pub fuel: FuelOptions,
    /// Laps kept.
    pub history: usize,
    /// Laps looked at for patterns and consistency.
    pub pattern_laps: usize,
}

impl Default for CoachConfig {
    fn default() -> Self {
        CoachConfig {
            track_length_m: None,
            player_car_idx: None,
            tank_capacity_l: None,
            turns: Vec::new(),
            learn: LearnOptions::default(),
            metrics: MetricOptions::default(),
            thresholds: FaultThresholds::default(),
            fuel: FuelOptions::default(),
            history: 30,
            pattern_laps: 6,
        }
    }
}

/// Which reference a comparison was made against.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferenceKey {
    lap: i32,
    session_time_start: f64,
    lap_time: f64,
}

impl ReferenceKey {
    fn of(trace: &LapTrace) -> Self {
        ReferenceKey {
            lap: trace.lap,
            session_time_start: trace.session_time_start,
            lap_time: trace.lap_time,
        }
    }
}

/// A lap the coach keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredLap {
    pub trace: LapTrace,
    pub quality: LapQuality,
    pub resources: LapResources,
    /// The lap against the reference it was last compared with: patterns and consistency look at
    /// the last laps after every lap, and only a new reference makes them compare again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cached: Option<(ReferenceKey, LapComparison)>,
}

impl StoredLap {
    /// Driven at pace from line to line (maybe with an incident): its corners can be measured.
    fn comparable(&self) -> bool {
        self.quality.kind == LapKind::Flying && !self.quality.flaws.contains(&LapFlaw::PitRoad)
    }
}

/// What the coach makes of one completed lap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LapReport {
    pub lap: i32,
    pub lap_time_s: f64,
    pub quality: LapQuality,
    /// Against the reference, when there was one.
    pub comparison: Option<LapComparison>,
    /// Most important first.
    pub findings: Vec<Finding>,
    pub consistency: Vec<CornerConsistency>,
    /// Over the recent comparable laps, most costly first.
    pub costly_corners: Vec<CornerCost>,
    pub strategy: Strategy,
    /// 0–1: lower with few laps, traffic, a spoilt lap or scattered data.
    pub confidence: f32,
    pub priority: MessagePriority,
    pub reference_lap: Option<i32>,
    pub new_reference: bool,
}

/// One driver's coach.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coach {
    pub config: CoachConfig,
    map: Option<CornerMap>,
    reference: Option<StoredLap>,
    /// The team chose the reference: a faster lap does not replace it.
    reference_pinned: bool,
    laps: Vec<StoredLap>,
}

fn mean_tyres(frames: &[TelemetryFrame]) -> Option<TireSet> {
    let sets: Vec<TireSet> = frames.iter().filter_map(|f| f.sample.tire_temps).collect();
    let n = sets.len() as f32;
    (n > 0.0).then(|| TireSet {
        front_left: sets.iter().map(|t| t.front_left).sum::<f32>() / n,
        front_right: sets.iter().map(|t| t.front_right).sum::<f32>() / n,
        rear_left: sets.iter().map(|t| t.rear_left).sum::<f32>() / n,
        rear_right: sets.iter().map(|t| t.rear_right).sum::<f32>() / n,
    })
}

impl Coach {
    pub fn new(config: CoachConfig) -> Self {
        Coach { config, ..Coach::default() }
    }

    /// Uses a stored corner map (learnt earlier, or from the team's turns) instead of learning one.
    pub fn with_map(mut self, map: CornerMap) -> Self {
        self.map = Some(map);
        self
    }

    pub fn map(&self) -> Option<&CornerMap> {
        self.map.as_ref()
    }

    pub fn reference(&self) -> Option<&LapTrace> {
        self.reference.as_ref().map(|r| &r.trace)
    }

    pub fn laps(&self) -> &[StoredLap] {
        &self.laps
    }

    /// A team-chosen reference (one of the driver's laps, or a team-mate's); it stays until
    /// [`Coach::unpin_reference`].
    pub fn set_reference(&mut self, frames: &[TelemetryFrame]) -> Result<(), TraceError> {
        let trace = LapTrace::from_frames(frames, self.length())?;
        let quality = LapQuality::default();
        let resources = resources(&trace, &quality, frames);
        self.reference = Some(StoredLap { trace, quality, resources, cached: None });
        self.reference_pinned = true;
        Ok(())
    }

    /// Back to the driver's best clean lap (from the laps kept).
    pub fn unpin_reference(&mut self) {
        self.reference_pinned = false;
        self.reference = self
            .laps
            .iter()
            .filter(|l| l.quality.is_clean())
            .min_by(|a, b| a.trace.lap_time.total_cmp(&b.trace.lap_time))
            .cloned();
    }

    fn length(&self) -> Option<f64> {
        self.config.track_length_m.or(self.map.as_ref().map(|m| m.track_length_m))
    }

    /// The strategy now, from the laps kept.
    pub fn strategy(&self, fuel_level_l: f64, remaining: Option<Remaining>) -> Strategy {
        let res: Vec<LapResources> = self.laps.iter().map(|l| l.resources.clone()).collect();
        strategy(&res, fuel_level_l, self.config.tank_capacity_l, remaining, &self.config.fuel)
    }

    /// Analyses a completed lap. `summary` is the lap assembler's, when there is one (its kind and
    /// flaws are taken over); `remaining` is what is left of the session.
    pub fn add_lap(
        &mut self,
        frames: &[TelemetryFrame],
        summary: Option<&LapSummary>,
        remaining: Option<Remaining>,
    ) -> Result<LapReport, TraceError> {
        let trace = LapTrace::from_frames(frames, self.length())?;
        let mut quality = LapQuality::from_frames(frames, trace.track_length_m, self.config.player_car_idx);
        if let Some(s) = summary {
            let from_summary = LapQuality::from_summary(s);
            quality.kind = from_summary.kind;
            for f in from_summary.flaws {
                if !quality.flaws.contains(&f) {
                    quality.flaws.push(f);
                }
            }
            quality.flaws.sort();
        }
        let resources = resources(&trace, &quality, frames);
        let lap = StoredLap { trace, quality, resources, cached: None };

        if self.map.is_none() && lap.quality.is_clean() {
            let mut map = CornerMap::learn(&lap.trace, &self.config.learn);
            map.apply_names(&self.config.turns);
            self.map = Some(map);
        }
        let comparison = match (&self.map, &self.reference) {
            (Some(map), Some(r)) if lap.comparable() => {
                Some(compare(map, &r.trace, &lap.trace, &self.config.metrics))
            }
            _ => None,
        };
        let reference_lap = self.reference.as_ref().map(|r| r.trace.lap);
        let new_reference = lap.quality.is_clean()
            && !self.reference_pinned
            && self.reference.as_ref().is_none_or(|r| lap.trace.lap_time < r.trace.lap_time);

        let mut kept = lap.clone();
        if let (Some(r), Some(c)) = (&self.reference, &comparison) {
            kept.cached = Some((ReferenceKey::of(&r.trace), c.clone()));
        }
        self.laps.push(kept);
        let excess = self.laps.len().saturating_sub(self.config.history.max(1));
        self.laps.drain(..excess);

        let mut findings = Vec::new();
        let (window, clean_window) = self.window();
        if let (Some(map), Some(c)) = (&self.map, &comparison) {
            let windows: Vec<&LapComparison> = window.iter().collect();
            for cc in &c.corners {
                let from = map.approach_start(cc.number, self.config.metrics.lookback_m).rem_euclid(1.0);
                let end = map.corner(cc.number).map_or(from, |k| k.end);
                if lap.quality.in_traffic(from, end) {
                    continue;
                }
                let subject = Subject::Corner { number: cc.number, name: cc.name.clone() };
                let lost = cc.with_exit_delta_s;
                if lost >= self.config.thresholds.time_s {
                    for fault in classify(cc, &self.config.thresholds) {
                        let p = pattern(&windows, cc.number, &fault, &self.config.thresholds);
                        let mut priority = if lost >= 0.3 {
                            MessagePriority::High
                        } else if lost >= 0.1 {
                            MessagePriority::Normal
                        } else {
                            MessagePriority::Low
                        };
                        if p.count >= 3 && priority == MessagePriority::Normal {
                            priority = MessagePriority::High;
                        }
                        findings.push(Finding {
                            lap: lap.trace.lap,
                            subject: subject.clone(),
                            issue: Issue::Corner { fault },
                            time_gained_s: Some(-lost),
                            pattern: Some(p),
                            priority,
                        });
                    }
                } else if lost <= -0.05 {
                    findings.push(Finding {
                        lap: lap.trace.lap,
                        subject,
                        issue: Issue::Gain,
                        time_gained_s: Some(-lost),
                        pattern: None,
                        priority: MessagePriority::Low,
                    });
                }
            }
            findings
                .sort_by(|a, b| a.time_gained_s.unwrap_or(0.0).total_cmp(&b.time_gained_s.unwrap_or(0.0)));
        }
        let traffic_corners: Vec<String> = self
            .map
            .iter()
            .flat_map(|m| m.corners.iter())
            .filter(|k| lap.quality.in_traffic(k.start, k.end))
            .map(|k| k.name.clone())
            .collect();
        if !traffic_corners.is_empty() {
            findings.push(Finding {
                lap: lap.trace.lap,
                subject: Subject::Lap { lap: lap.trace.lap },
                issue: Issue::Traffic { corners: traffic_corners },
                time_gained_s: None,
                pattern: None,
                priority: MessagePriority::Low,
            });
        }
        if !lap.quality.is_clean() {
            findings.push(Finding {
                lap: lap.trace.lap,
                subject: Subject::Lap { lap: lap.trace.lap },
                issue: Issue::NotClean {
                    flaws: lap.quality.flaws.clone(),
                    pit: lap.quality.kind != LapKind::Flying,
                },
                time_gained_s: None,
                pattern: None,
                priority: MessagePriority::Low,
            });
        }
        let clean_refs: Vec<&LapComparison> = clean_window.iter().collect();
        let spread = if clean_refs.len() >= 3 { consistency(&clean_refs) } else { Vec::new() };
        for s in &spread {
            let braking_wide = s.braking_point_sd_m.is_some_and(|b| b > 6.0);
            if braking_wide || s.corner_time_sd_s > 0.15 {
                findings.push(Finding {
                    lap: lap.trace.lap,
                    subject: Subject::Corner { number: s.number, name: s.name.clone() },
                    issue: Issue::Inconsistent {
                        braking_spread_m: s.braking_point_sd_m,
                        time_spread_s: s.corner_time_sd_s,
                        laps: s.laps,
                    },
                    time_gained_s: None,
                    pattern: None,
                    priority: MessagePriority::Normal,
                });
            }
        }
        let costly = costly_corners(&window.iter().collect::<Vec<_>>());

        if new_reference {
            if self.reference.is_some() {
                findings.push(Finding {
                    lap: lap.trace.lap,
                    subject: Subject::Lap { lap: lap.trace.lap },
                    issue: Issue::NewReference { lap_time_s: lap.trace.lap_time },
                    time_gained_s: comparison.as_ref().map(|c| -c.lap_delta_s),
                    pattern: None,
                    priority: MessagePriority::Normal,
                });
            }
            self.reference = Some(lap.clone());
        }

        let fuel_now = f64::from(lap.trace.points.last().map_or(0.0, |p| p.fuel));
        let plan = self.strategy(fuel_now, remaining);
        findings.extend(fuel_findings(&plan, lap.trace.lap, &self.config.fuel));
        // Urgent first, then by priority, keeping the cost order within a priority.
        findings.sort_by_key(|f| std::cmp::Reverse(f.priority.rank()));

        let clean_laps = self.laps.iter().filter(|l| l.quality.is_clean()).count();
        let mut confidence: f32 = match clean_laps {
            0 => 0.3,
            1 => 0.45,
            2 => 0.6,
            3 | 4 => 0.7,
            _ => 0.85,
        };
        if !lap.quality.is_clean() {
            confidence *= 0.7;
        }
        if !lap.quality.traffic.is_empty() {
            confidence *= 0.85;
        }
        if lap.trace.length_estimated {
            confidence *= 0.95;
        }
        if spread.iter().any(|s| s.corner_time_sd_s > 0.3) {
            confidence *= 0.85;
        }
        let priority =
            findings.iter().map(|f| f.priority).max_by_key(|p| p.rank()).unwrap_or(MessagePriority::Low);

        Ok(LapReport {
            lap: lap.trace.lap,
            lap_time_s: lap.trace.lap_time,
            quality: lap.quality,
            comparison,
            findings,
            consistency: spread,
            costly_corners: costly,
            strategy: plan,
            confidence,
            priority,
            reference_lap: reference_lap.or(self.reference.as_ref().map(|r| r.trace.lap)),
            new_reference,
        })
    }

    /// The recent comparable laps against the current reference (all of them, and the clean ones).
    fn window(&mut self) -> (Vec<LapComparison>, Vec<LapComparison>) {
        let Coach { config, map, reference, laps, .. } = self;
        let (Some(map), Some(r)) = (map.as_ref(), reference.as_ref()) else {
            return (Vec::new(), Vec::new());
        };
        let key = ReferenceKey::of(&r.trace);
        let mut all = Vec::with_capacity(config.pattern_laps);
        let mut clean = Vec::new();
        for l in laps.iter_mut().rev().filter(|l| l.comparable()).take(config.pattern_laps) {
            let c = match &l.cached {
                Some((k, c)) if *k == key => c.clone(),
                _ => {
                    let c = compare(map, &r.trace, &l.trace, &config.metrics);
                    l.cached = Some((key, c.clone()));
                    c
                }
            };
            if l.quality.is_clean() {
                clean.push(c.clone());
            }
            all.push(c);
        }
        all.reverse();
        clean.reverse();
        (all, clean)
    }
}

fn resources(trace: &LapTrace, quality: &LapQuality, frames: &[TelemetryFrame]) -> LapResources {
    LapResources {
        lap: trace.lap,
        fuel_used_l: trace.fuel_used(),
        fuel_end_l: f64::from(trace.points.last().map_or(0.0, |p| p.fuel)),
        lap_time_s: trace.lap_time,
        clean: quality.is_clean(),
        tyre_wear: frames.iter().rev().find_map(|f| f.sample.tire_wear),
        tyre_temps: mean_tyres(frames),
    }
}

fn fuel_findings(plan: &Strategy, lap: i32, opts: &FuelOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    let finding = |issue, priority| Finding {
        lap,
        subject: Subject::Car,
        issue,
        time_gained_s: None,
        pattern: None,
        priority,
    };
    if let Some((litres, usual_litres)) = plan.fuel_alarm {
        out.push(finding(Issue::FuelUseHigh { litres, usual_litres }, MessagePriority::Urgent));
    }
    if let Some(left) = plan.laps_of_fuel {
        let short = plan.laps_to_finish.is_none_or(|to_go| left < to_go);
        if left < opts.low_laps && short {
            out.push(finding(Issue::FuelLow { laps_left: left }, MessagePriority::Urgent));
        }
    }
    if let Some(add) = plan.fuel_to_add_l.filter(|a| *a > 0.0) {
        let pit_by = plan.pit_window.map(|w| u32::try_from(lap).unwrap_or(0) + w.latest);
        let priority = match plan.pit_window {
            Some(w) if w.latest <= 2 => MessagePriority::High,
            _ => MessagePriority::Normal,
        };
        out.push(finding(Issue::FuelToAdd { litres: add, pit_by_lap: pit_by }, priority));
    }
    out
}
