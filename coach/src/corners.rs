//! Corners from the data: a lap is cut into corners and straights from its braking zones, speed
//! minima and an estimate of lateral acceleration (speed² × steering, as no lateral channel
//! travels), keyed by lap-distance fraction. The result, a [`CornerMap`], is learnt once per
//! track (and car class) from a clean lap and then reused, so corner numbers stay the same when
//! the reference lap changes. Teams may name corners in TOML (`turns = [{name, start, end}]`).
//! Reads no env vars.

use serde::{Deserialize, Serialize};

use crate::trace::LapTrace;

/// Brake pedal above this (%) is braking.
pub const BRAKE_ON: f32 = 5.0;

/// How corners are found. The defaults suit road courses from karting tracks to Le Mans.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LearnOptions {
    /// A point is cornering when its lateral estimate is above this share of the lap's high
    /// (98th percentile) value.
    pub lateral_share: f64,
    /// Corners closer than this (metres) are one corner.
    pub merge_gap_m: f64,
    /// Shorter corners are dropped (metres) unless the car brakes there.
    pub min_length_m: f64,
    /// A corner with two speed minima, each this much (km/h) below the speed between them, is two
    /// corners (a chicane or a complex).
    pub split_prominence_kmh: f64,
    /// Smoothing window (metres either side) of the lateral estimate.
    pub smooth_m: f64,
}

impl Default for LearnOptions {
    fn default() -> Self {
        LearnOptions {
            lateral_share: 0.3,
            merge_gap_m: 25.0,
            min_length_m: 30.0,
            split_prominence_kmh: 10.0,
            smooth_m: 6.0,
        }
    }
}

/// One corner of a track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Corner {
    /// 1-based, in lap order from the line.
    pub number: u32,
    /// `T1`… or the team's name.
    pub name: String,
    /// Lap fraction where it begins (the braking zone is in it).
    pub start: f64,
    /// Lap fraction where it ends. `end < start` for a corner across the line.
    pub end: f64,
    /// Lap fraction of the slowest point on the lap it was learnt from.
    pub apex: f64,
}

impl Corner {
    /// Whether the corner spans the start/finish line.
    pub fn wraps(&self) -> bool {
        self.end < self.start
    }

    /// Length as a lap fraction.
    pub fn length(&self) -> f64 {
        if self.wraps() {
            1.0 - self.start + self.end
        } else {
            self.end - self.start
        }
    }

    /// Whether lap fraction `pos` lies in the corner.
    pub fn contains(&self, pos: f64) -> bool {
        if self.wraps() {
            pos >= self.start || pos < self.end
        } else {
            pos >= self.start && pos < self.end
        }
    }
}

/// A team's name for a stretch of track (lap fractions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub name: String,
    pub start: f64,
    pub end: f64,
}

#[derive(Debug, Deserialize)]
struct TurnsFile {
    turns: Vec<Turn>,
}

/// Why a team's turns file was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnsError(pub String);

impl core::fmt::Display for TurnsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "turns: {}", self.0)
    }
}

impl std::error::Error for TurnsError {}

/// Parses `turns = [{name = "Hairpin", start = 0.21, end = 0.3}, …]`.
pub fn parse_turns(text: &str) -> Result<Vec<Turn>, TurnsError> {
    let file: TurnsFile = toml::from_str(text).map_err(|e| TurnsError(e.message().to_owned()))?;
    for t in &file.turns {
        let ok = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
        if !ok(t.start) || !ok(t.end) || t.start == t.end {
            return Err(TurnsError(format!("{}: start and end must be distinct fractions 0..1", t.name)));
        }
        if t.name.trim().is_empty() {
            return Err(TurnsError("a turn has an empty name".to_owned()));
        }
    }
    Ok(file.turns)
}

/// What a piece of the lap is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "number")]
pub enum SegmentId {
    /// Corner number.
    Corner(u32),
    /// The straight after corner `n` (0: from the line to the first corner, when no corner
    /// wraps).
    Straight(u32),
}

/// A piece of the lap; the segments of a map tile `[0, 1)` in order. A corner across the line
/// gives two pieces with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub id: SegmentId,
    pub start: f64,
    pub end: f64,
}

/// The corners of a track (and car class), learnt once and stored as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CornerMap {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub car_class: Option<String>,
    /// Metres, of the lap it was learnt from.
    pub track_length_m: f64,
    /// In lap order (a corner across the line is last).
    pub corners: Vec<Corner>,
}

/// Moving average over ±`half` points.
fn smooth(values: &[f64], half: usize) -> Vec<f64> {
    let mut prefix = Vec::with_capacity(values.len() + 1);
    prefix.push(0.0);
    let mut sum = 0.0;
    for v in values {
        sum += v;
        prefix.push(sum);
    }
    (0..values.len())
        .map(|i| {
            let a = i.saturating_sub(half);
            let b = (i + half + 1).min(values.len());
            let total = prefix.get(b).copied().unwrap_or(0.0) - prefix.get(a).copied().unwrap_or(0.0);
            total / (b - a).max(1) as f64
        })
        .collect()
}

fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_unstable_by(f64::total_cmp);
    let i = ((sorted.len() as f64 - 1.0) * q).round().max(0.0) as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

/// A run of points `[a, b]` (indices into the trace).
type Run = (usize, usize);

impl CornerMap {
    /// Finds the corners of a (clean) lap.
    pub fn learn(trace: &LapTrace, options: &LearnOptions) -> CornerMap {
        let pts = &trace.points;
        let length = trace.track_length_m.max(1.0);
        let n = pts.len();
        if n < 3 {
            return CornerMap { track: None, car_class: None, track_length_m: length, corners: Vec::new() };
        }
        let spacing_m = length / n as f64;
        let half = ((options.smooth_m / spacing_m).round() as usize).max(1);
        let lateral: Vec<f64> = pts
            .iter()
            .map(|p| {
                let v = f64::from(p.speed) / 3.6;
                v * v * f64::from(p.steer).abs()
            })
            .collect();
        let lateral = smooth(&lateral, half);
        let threshold = percentile(&lateral, 0.98) * options.lateral_share;
        let active: Vec<bool> = pts
            .iter()
            .zip(&lateral)
            .map(|(p, &l)| p.brake > BRAKE_ON || (l > threshold && l > 0.0))
            .collect();

        let mut runs: Vec<Run> = Vec::new();
        let mut i = 0;
        while i < n {
            if active.get(i).copied().unwrap_or(false) {
                let a = i;
                while i + 1 < n && active.get(i + 1).copied().unwrap_or(false) {
                    i += 1;
                }
                runs.push((a, i));
            }
            i += 1;
        }
        let pos = |i: usize| pts.get(i).map_or(0.0, |p| p.pos);
        // Merge runs closer than the gap.
        let gap = options.merge_gap_m / length;
        let mut merged: Vec<Run> = Vec::new();
        for r in runs {
            match merged.last_mut() {
                Some(last) if pos(r.0) - pos(last.1) < gap => last.1 = r.1,
                _ => merged.push(r),
            }
        }
        // Drop tiny runs without braking.
        let min_len = options.min_length_m / length;
        let brakes = |r: &Run| pts.get(r.0..=r.1).is_some_and(|s| s.iter().any(|p| p.brake > 4.0 * BRAKE_ON));
        // Runs touching both ends of the lap are one corner across the line: judged together.
        let edge = gap.max(1e-3);
        let across = merged.len() >= 2
            && merged.first().is_some_and(|r| pos(r.0) <= edge)
            && merged.last().is_some_and(|r| pos(r.1) >= 1.0 - edge);
        let (first_run, last_run) = (merged.first().copied(), merged.last().copied());
        let across_len = match (first_run, last_run) {
            (Some(f), Some(l)) if across => pos(f.1) - pos(f.0) + pos(l.1) - pos(l.0),
            _ => 0.0,
        };
        merged.retain(|r| {
            let at_line = across && (Some(*r) == first_run || Some(*r) == last_run);
            pos(r.1) - pos(r.0) >= min_len || brakes(r) || (at_line && across_len >= min_len)
        });
        // Split complexes at the fastest point between two clear speed minima.
        let mut split: Vec<Run> = Vec::new();
        for r in merged {
            split.extend(split_run(trace, r, options.split_prominence_kmh));
        }
        let mut corners: Vec<Corner> = split
            .iter()
            .map(|&(a, b)| {
                let apex = (a..=b)
                    .filter_map(|k| pts.get(k))
                    .min_by(|x, y| x.speed.total_cmp(&y.speed))
                    .map_or(pos(a), |p| p.pos);
                Corner { number: 0, name: String::new(), start: pos(a), end: pos(b), apex }
            })
            .collect();
        // A corner across the line: the first starts at the line and the last ends there.
        if corners.len() >= 2 {
            let first_at_line = corners.first().is_some_and(|c| c.start <= edge);
            let last_at_line = corners.last().is_some_and(|c| c.end >= 1.0 - edge);
            if first_at_line && last_at_line {
                let head = corners.remove(0);
                if let Some(last) = corners.last_mut() {
                    last.end = head.end;
                    // The apex is the slower of the two halves.
                    let speed = |p: f64| trace.sample_at(p).speed;
                    if speed(head.apex) < speed(last.apex) {
                        last.apex = head.apex;
                    }
                }
            }
        }
        for (k, c) in corners.iter_mut().enumerate() {
            c.number = k as u32 + 1;
            c.name = format!("T{}", c.number);
        }
        CornerMap { track: None, car_class: None, track_length_m: length, corners }
    }

    /// The same map, labelled with the track and car class it belongs to (the key it is stored
    /// under).
    pub fn for_track(mut self, track: impl Into<String>, car_class: Option<String>) -> CornerMap {
        self.track = Some(track.into());
        self.car_class = car_class;
        self
    }

    /// A map made of a team's turns (the team's corners replace detected ones).
    pub fn from_turns(turns: &[Turn], track_length_m: f64) -> CornerMap {
        let mut sorted: Vec<&Turn> = turns.iter().collect();
        // A turn across the line (end < start) goes last.
        sorted.sort_by(|a, b| (a.end < a.start).cmp(&(b.end < b.start)).then(a.start.total_cmp(&b.start)));
        let corners = sorted
            .iter()
            .enumerate()
            .map(|(k, t)| Corner {
                number: k as u32 + 1,
                name: t.name.clone(),
                start: t.start,
                end: t.end,
                apex: if t.end < t.start { t.start } else { (t.start + t.end) / 2.0 },
            })
            .collect();
        CornerMap { track: None, car_class: None, track_length_m, corners }
    }

    /// Names detected corners after the team's turns: a corner whose apex lies in a turn takes its
    /// name. Numbers do not change.
    pub fn apply_names(&mut self, turns: &[Turn]) {
        for c in &mut self.corners {
            let holder = turns.iter().find(|t| {
                let probe = Corner { number: 0, name: String::new(), start: t.start, end: t.end, apex: 0.0 };
                probe.contains(c.apex)
            });
            if let Some(t) = holder {
                c.name = t.name.clone();
            }
        }
    }

    /// The corner with this number.
    pub fn corner(&self, number: u32) -> Option<&Corner> {
        self.corners.iter().find(|c| c.number == number)
    }

    /// Corners and straights tiling `[0, 1)` in lap order.
    pub fn segments(&self) -> Vec<Segment> {
        let mut out = Vec::with_capacity(self.corners.len() * 2 + 2);
        let wrapped = self.corners.iter().find(|c| c.wraps());
        let mut at = 0.0;
        let mut straight_after = 0;
        if let Some(w) = wrapped {
            out.push(Segment { id: SegmentId::Corner(w.number), start: 0.0, end: w.end });
            at = w.end;
            straight_after = w.number;
        }
        for c in self.corners.iter().filter(|c| !c.wraps()) {
            if c.start > at {
                out.push(Segment { id: SegmentId::Straight(straight_after), start: at, end: c.start });
            }
            let start = c.start.max(at);
            if c.end > start {
                out.push(Segment { id: SegmentId::Corner(c.number), start, end: c.end });
                at = c.end;
            }
            straight_after = c.number;
        }
        match wrapped {
            Some(w) => {
                if w.start > at {
                    out.push(Segment { id: SegmentId::Straight(straight_after), start: at, end: w.start });
                }
                out.push(Segment { id: SegmentId::Corner(w.number), start: w.start.max(at), end: 1.0 });
            }
            None => {
                if at < 1.0 {
                    out.push(Segment { id: SegmentId::Straight(straight_after), start: at, end: 1.0 });
                }
            }
        }
        out
    }

    /// The label of a segment: the corner's name, or `T3–T4` for a straight.
    pub fn label(&self, id: SegmentId) -> String {
        match id {
            SegmentId::Corner(n) => self.corner(n).map_or_else(|| format!("T{n}"), |c| c.name.clone()),
            SegmentId::Straight(n) => {
                let next = self.corners.iter().find(|c| c.number > n).or(self.corners.first());
                let from = if n == 0 { "start".to_owned() } else { self.label(SegmentId::Corner(n)) };
                let to = next.map_or_else(|| "finish".to_owned(), |c| c.name.clone());
                format!("{from}–{to} straight")
            }
        }
    }

    /// Where the approach to corner `number` begins: the end of the previous corner, at most
    /// `lookback_m` before its start (a lap fraction; may be negative = before the line).
    pub fn approach_start(&self, number: u32, lookback_m: f64) -> f64 {
        let Some(c) = self.corner(number) else { return 0.0 };
        let lookback = lookback_m / self.track_length_m.max(1.0);
        let earliest = c.start - lookback;
        let previous_end = self
            .corners
            .iter()
            .filter(|o| o.number != c.number)
            .map(|o| {
                // Distance back from c.start to o.end, going around the lap.
                let back = (c.start - o.end).rem_euclid(1.0);
                c.start - back
            })
            .fold(f64::NEG_INFINITY, f64::max);
        earliest.max(previous_end)
    }
}

/// Splits a run at the fastest point between speed minima that stand out by `prominence` km/h.
fn split_run(trace: &LapTrace, run: Run, prominence: f64) -> Vec<Run> {
    let (a, b) = run;
    let Some(slice) = trace.points.get(a..=b) else { return vec![run] };
    let speeds: Vec<f64> = slice.iter().map(|p| f64::from(p.speed)).collect();
    let mut cuts = Vec::new();
    // Walk: track the current minimum; once speed rises `prominence` above it, remember the peak;
    // if it then falls `prominence` below that peak, the peak is a cut.
    let mut min = f64::INFINITY;
    let mut peak: Option<(usize, f64)> = None;
    for (k, &v) in speeds.iter().enumerate() {
        match peak {
            None => {
                if v < min {
                    min = v;
                } else if v - min >= prominence {
                    peak = Some((k, v));
                }
            }
            Some((pk, pv)) => {
                if v > pv {
                    peak = Some((k, v));
                } else if pv - v >= prominence {
                    cuts.push(a + pk);
                    min = v;
                    peak = None;
                }
            }
        }
        if peak.is_none() && v < min {
            min = v;
        }
    }
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut from = a;
    for c in cuts {
        if c > from && c < b {
            out.push((from, c));
            from = c + 1;
        }
    }
    out.push((from, b));
    out
}
