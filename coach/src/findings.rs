//! Findings: what the engine tells a driver, one structured fact each — the corner or lap it is
//! about, the numbers, how often it happened — with a short speakable [`Finding::text`] such as
//! `T3: −0.21 s, braked 14 m early (4 of the last 6 laps)`. Corner faults are classified here
//! from a [`CornerComparison`]. Reads no env vars.

use pitbox_schema::wire::{LapFlaw, MessagePriority};
use serde::{Deserialize, Serialize};

use crate::compare::CornerComparison;

/// When a difference to the reference counts as a fault.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaultThresholds {
    /// Braking point further than this (metres) from the reference's.
    pub braking_m: f64,
    /// Throttle pick-up later than this (metres).
    pub throttle_m: f64,
    /// More coasting than this (metres).
    pub coasting_m: f64,
    /// Minimum speed lower by more than this (km/h).
    pub min_speed_kmh: f32,
    /// A corner that lost less than this (seconds) is not worth a word.
    pub time_s: f64,
}

impl Default for FaultThresholds {
    fn default() -> Self {
        FaultThresholds { braking_m: 5.0, throttle_m: 5.0, coasting_m: 8.0, min_speed_kmh: 3.0, time_s: 0.02 }
    }
}

/// What went wrong (or right) in a corner, with its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum CornerFault {
    BrakedEarly {
        metres: f64,
    },
    BrakedLate {
        metres: f64,
    },
    /// Braked where the reference did not.
    BrakedUnneeded,
    LateThrottle {
        metres: f64,
    },
    Coasting {
        metres: f64,
    },
    LowMinSpeed {
        kmh: f32,
    },
}

impl CornerFault {
    /// Same fault, whatever the numbers (for counting patterns).
    pub fn same_kind(&self, other: &CornerFault) -> bool {
        core::mem::discriminant(self) == core::mem::discriminant(other)
    }

    fn phrase(&self) -> String {
        match self {
            CornerFault::BrakedEarly { metres } => format!("braked {metres:.0} m early"),
            CornerFault::BrakedLate { metres } => format!("braked {metres:.0} m late"),
            CornerFault::BrakedUnneeded => "braked where the reference lap did not".to_owned(),
            CornerFault::LateThrottle { metres } => format!("throttle {metres:.0} m late"),
            CornerFault::Coasting { metres } => format!("coasted {metres:.0} m more"),
            CornerFault::LowMinSpeed { kmh } => format!("minimum speed {kmh:.0} km/h lower"),
        }
    }

    fn advice(&self) -> String {
        match self {
            CornerFault::BrakedEarly { metres } => format!("brake {metres:.0} m later"),
            CornerFault::BrakedLate { metres } => format!("brake {metres:.0} m earlier"),
            CornerFault::BrakedUnneeded => "try it with a lift instead of the brake".to_owned(),
            CornerFault::LateThrottle { metres } => format!("back on the throttle {metres:.0} m sooner"),
            CornerFault::Coasting { metres } => {
                format!("go from throttle to brake without {metres:.0} m of coasting")
            }
            CornerFault::LowMinSpeed { kmh } => format!("carry {kmh:.0} km/h more to the apex"),
        }
    }
}

/// The faults of one corner of a lap, worst (by its distance or speed) first.
pub fn classify(c: &CornerComparison, t: &FaultThresholds) -> Vec<CornerFault> {
    let mut out = Vec::new();
    match (c.lap.braking_point_m, c.reference.braking_point_m, c.braking_point_diff_m) {
        (Some(_), Some(_), Some(d)) if d < -t.braking_m => out.push(CornerFault::BrakedEarly { metres: -d }),
        (Some(_), Some(_), Some(d)) if d > t.braking_m => out.push(CornerFault::BrakedLate { metres: d }),
        (Some(_), None, _) if c.lap.peak_brake > 20.0 => out.push(CornerFault::BrakedUnneeded),
        _ => {}
    }
    if c.coasting_diff_m > t.coasting_m {
        out.push(CornerFault::Coasting { metres: c.coasting_diff_m });
    }
    if let Some(d) = c.throttle_pickup_diff_m {
        if d > t.throttle_m {
            out.push(CornerFault::LateThrottle { metres: d });
        }
    }
    // A corner entered slower is not a slower corner: only speed lost beyond the entry's counts.
    let entry_diff = c.lap.entry_speed_kmh - c.reference.entry_speed_kmh;
    if c.min_speed_diff_kmh < -t.min_speed_kmh && c.min_speed_diff_kmh < entry_diff.min(0.0) - t.min_speed_kmh
    {
        out.push(CornerFault::LowMinSpeed { kmh: -c.min_speed_diff_kmh });
    }
    out
}

/// How often something happened: `count` of the last `of` laps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pattern {
    pub count: u32,
    pub of: u32,
}

/// What a finding is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Subject {
    Corner { number: u32, name: String },
    Lap { lap: i32 },
    Car,
}

/// What was found, with its numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Issue {
    /// A corner fault.
    Corner { fault: CornerFault },
    /// Time gained in a corner (a strength).
    Gain,
    /// Spread over the last clean laps.
    Inconsistent { braking_spread_m: Option<f64>, time_spread_s: f64, laps: u32 },
    /// The lap cannot be compared fairly or cannot become the reference.
    NotClean { flaws: Vec<LapFlaw>, pit: bool },
    /// Driven close behind another car: marked, not blamed.
    Traffic { corners: Vec<String> },
    /// A new reference lap.
    NewReference { lap_time_s: f64 },
    /// Laps of fuel left (urgent when short).
    FuelLow { laps_left: f64 },
    /// Fuel use well above the usual: a leak or damage.
    FuelUseHigh { litres: f64, usual_litres: f64 },
    /// Fuel needed to the finish beyond what is in the tank.
    FuelToAdd { litres: f64, pit_by_lap: Option<u32> },
}

/// One thing the coach says, with everything it is based on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The lap it was found on.
    pub lap: i32,
    pub subject: Subject,
    pub issue: Issue,
    /// Seconds gained against the reference (negative = lost), when it is about time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_gained_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<Pattern>,
    pub priority: MessagePriority,
}

/// `+0.12 s` / `−0.21 s` (a real minus sign: it is read out).
pub fn signed_seconds(s: f64) -> String {
    let sign = if s < 0.0 { "−" } else { "+" };
    format!("{sign}{:.2} s", s.abs())
}

impl Finding {
    fn subject_label(&self) -> String {
        match &self.subject {
            Subject::Corner { name, .. } => name.clone(),
            Subject::Lap { lap } => format!("Lap {lap}"),
            Subject::Car => "Car".to_owned(),
        }
    }

    fn pattern_text(&self) -> String {
        match self.pattern {
            Some(p) if p.of >= 2 => format!(" ({} of the last {} laps)", p.count, p.of),
            _ => String::new(),
        }
    }

    /// The short, speakable statement.
    pub fn text(&self) -> String {
        let who = self.subject_label();
        let time = self.time_gained_s.map(|t| format!(" {},", signed_seconds(t))).unwrap_or_default();
        let time_only = self.time_gained_s.map(signed_seconds).unwrap_or_default();
        let pattern = self.pattern_text();
        match &self.issue {
            Issue::Corner { fault } => format!("{who}:{time} {}{pattern}", fault.phrase()),
            Issue::Gain => format!("{who}: {time_only} on the reference{pattern}"),
            Issue::Inconsistent { braking_spread_m, time_spread_s, laps } => match braking_spread_m {
                Some(b) => format!(
                    "{who}: braking point varies by {b:.0} m, corner time by {time_spread_s:.2} s over {laps} laps"
                ),
                None => format!("{who}: corner time varies by {time_spread_s:.2} s over {laps} laps"),
            },
            Issue::NotClean { flaws, pit } => {
                let mut why: Vec<&str> = flaws.iter().map(|f| f.label()).collect();
                if *pit && !flaws.contains(&LapFlaw::PitRoad) {
                    why.push("pit lap");
                }
                format!("{who}: not compared for pace ({})", why.join(", "))
            }
            Issue::Traffic { corners } => {
                format!("{who}: in traffic at {}; those corners are not counted", corners.join(", "))
            }
            Issue::NewReference { lap_time_s } => format!("{who}: new reference, {lap_time_s:.3} s"),
            Issue::FuelLow { laps_left } => format!("Fuel: {laps_left:.1} laps left"),
            Issue::FuelUseHigh { litres, usual_litres } => format!(
                "Fuel: used {litres:.2} l last lap against {usual_litres:.2} l usually — check for a leak or damage"
            ),
            Issue::FuelToAdd { litres, pit_by_lap } => match pit_by_lap {
                Some(l) => format!("Fuel: {litres:.1} l short of the finish, pit by lap {l}"),
                None => format!("Fuel: {litres:.1} l short of the finish"),
            },
        }
    }

    /// What to do about it, when there is something to do.
    pub fn suggestion(&self) -> Option<String> {
        let who = self.subject_label();
        match &self.issue {
            Issue::Corner { fault } => Some(format!("{who}: {}", fault.advice())),
            Issue::Inconsistent { .. } => Some(format!("{who}: pick a braking marker and hit it every lap")),
            Issue::FuelLow { laps_left } if *laps_left < 2.0 => Some("Box this lap for fuel".to_owned()),
            Issue::FuelUseHigh { .. } => Some("Box to check the car for a fuel leak".to_owned()),
            Issue::FuelToAdd { litres, .. } => Some(format!("Add {litres:.1} l at the next stop")),
            _ => None,
        }
    }

    /// What the finding is about, without its numbers: `T3/brakedEarly`, `car/fuelLow`. Two laps
    /// with the same topic say the same thing, so a coach can keep from repeating itself.
    pub fn topic(&self) -> String {
        let subject = match &self.subject {
            Subject::Corner { number, .. } => format!("T{number}"),
            Subject::Lap { .. } => "lap".to_owned(),
            Subject::Car => "car".to_owned(),
        };
        let what = match &self.issue {
            Issue::Corner { fault } => match fault {
                CornerFault::BrakedEarly { .. } => "brakedEarly",
                CornerFault::BrakedLate { .. } => "brakedLate",
                CornerFault::BrakedUnneeded => "brakedUnneeded",
                CornerFault::LateThrottle { .. } => "lateThrottle",
                CornerFault::Coasting { .. } => "coasting",
                CornerFault::LowMinSpeed { .. } => "lowMinSpeed",
            },
            Issue::Gain => "gain",
            Issue::Inconsistent { .. } => "inconsistent",
            Issue::NotClean { .. } => "notClean",
            Issue::Traffic { .. } => "traffic",
            Issue::NewReference { .. } => "newReference",
            Issue::FuelLow { .. } => "fuelLow",
            Issue::FuelUseHigh { .. } => "fuelUseHigh",
            Issue::FuelToAdd { .. } => "fuelToAdd",
        };
        format!("{subject}/{what}")
    }

    /// Whether it is a strength rather than something to fix.
    pub fn is_strength(&self) -> bool {
        matches!(self.issue, Issue::Gain | Issue::NewReference { .. })
    }
}
