//! The engineer view's actor tree: snapshots from `/admin/actors/stream` flattened into rows in
//! tree order, with message rates computed here from the counters of consecutive snapshots (the
//! server sends counters only), restarts since the previous snapshot flagged, and collapsed
//! branches hidden. An actor's own gauges (a video relay's viewers, frames, bytes, drops) are
//! shown too, with a per-second rate for those that count work done. Each actor keeps the last
//! [`HISTORY_SECS`] of message rate and mailbox length for its sparklines (drawn from points
//! computed once per snapshot, so a frame only copies strings), one actor can be selected for the
//! detail pane, and [`Names`] turns the team and driver ids in paths into names. Pure logic,
//! unit-tested natively. Reads no env vars.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use pitbox_schema::wire::{
    ActorPath, ActorSnapshot, ActorStatus, ActorTree, DriverProfile, SupervisionEvent, Team,
};

use super::store::short_id;

/// Seconds of message rate and mailbox history kept per actor.
pub const HISTORY_SECS: f64 = 300.0;
/// At most this many points per actor, whatever the snapshot rate (the runtime sends one a second).
pub const HISTORY_POINTS: usize = 600;
/// A sparkline's buckets across [`HISTORY_SECS`]: each shows the highest value in its slice, so a
/// short burst stays visible, and a row never draws more than this many points.
pub const SPARK_BUCKETS: usize = 60;
/// A sparkline's size in SVG user units (the CSS may scale it).
pub const SPARK_W: f64 = 120.0;
pub const SPARK_H: f64 = 18.0;

/// One snapshot's figures of one actor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Capture time, server clock, seconds.
    pub at: f64,
    /// Messages handled per second since the previous snapshot (`None` for the first).
    pub rate: Option<f64>,
    pub mailbox: u64,
}

/// A sparkline, ready to draw: an SVG `points` attribute and the highest value it shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spark {
    pub points: String,
    pub max: f64,
}

/// `(at, value)` pairs of the window ending at `now` → a polyline [`SPARK_W`] × [`SPARK_H`] units,
/// time left to right, 0 at the bottom, scaled to the highest value (at least 1, so a quiet
/// actor draws a flat line at the bottom rather than noise scaled up).
pub fn sparkline(values: impl Iterator<Item = (f64, f64)>, now: f64) -> Spark {
    let start = now - HISTORY_SECS;
    let mut buckets: [Option<f64>; SPARK_BUCKETS] = [None; SPARK_BUCKETS];
    for (at, v) in values {
        if at < start || at > now {
            continue;
        }
        let i = (((at - start) / HISTORY_SECS) * SPARK_BUCKETS as f64) as usize;
        let slot = &mut buckets[i.min(SPARK_BUCKETS - 1)];
        *slot = Some(slot.map_or(v, |b: f64| b.max(v)));
    }
    let max = buckets.iter().flatten().fold(0.0_f64, |m, v| m.max(*v));
    let scale = max.max(1.0);
    let step = SPARK_W / SPARK_BUCKETS as f64;
    let xy: Vec<(f64, f64)> = buckets
        .iter()
        .enumerate()
        .filter_map(|(i, v)| Some(((i as f64 + 0.5) * step, SPARK_H - (*v)? / scale * (SPARK_H - 1.0) - 0.5)))
        .collect();
    let mut points = String::new();
    // A line needs two points: a lone one (the first seconds of an actor) is drawn one bucket wide.
    let lone = (xy.len() == 1).then(|| (xy[0].0 - step, xy[0].1));
    for (x, y) in lone.into_iter().chain(xy) {
        if !points.is_empty() {
            points.push(' ');
        }
        points.push_str(&format!("{x:.1},{y:.1}"));
    }
    Spark { points, max }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub path: String,
    pub name: String,
    pub kind: String,
    pub depth: usize,
    pub status: ActorStatus,
    pub mailbox: u64,
    pub received: u64,
    pub handled: u64,
    pub failed: u64,
    /// Messages handled per second since the previous snapshot (`None` for the first).
    pub rate: Option<f64>,
    pub restarts: u32,
    /// Restarted since the previous snapshot.
    pub restarted_now: bool,
    pub escalations: u32,
    pub last_reason: Option<String>,
    pub last_escalation: Option<String>,
    /// Recent restarts and escalations, oldest first (see `Supervision::history`).
    pub events: Vec<SupervisionEvent>,
    pub started_at: DateTime<Utc>,
    /// Paths of the actor's children, in tree order.
    pub children: Vec<String>,
    pub has_children: bool,
    /// Message rate and mailbox over the last [`HISTORY_SECS`].
    pub rate_spark: Spark,
    pub mailbox_spark: Spark,
    /// The actor's own gauges, in name order.
    pub gauges: Vec<Gauge>,
    /// Paths of the actors above this one, root first.
    pub ancestors: Vec<String>,
}

/// One of an actor's gauges.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    pub name: String,
    pub value: u64,
    /// Per second since the previous snapshot, for gauges that count work done ([`COUNTS`]).
    pub rate: Option<f64>,
}

/// Gauges that only ever grow (the server sends counts, never rates; see `ActorSnapshot::gauges`):
/// their rate is shown. The others (`viewers`, `paused`) are current values.
pub const COUNTS: &[&str] = &["frames", "bytes", "drops", "keyframes"];

impl Gauge {
    /// `bytes 37.2 MiB (1.21 Mbit/s)`, `frames 1800 (30.0/s)`, `viewers 2`.
    pub fn label(&self) -> String {
        match (self.name.as_str(), self.rate) {
            ("bytes", rate) => {
                let mib = self.value as f64 / (1024.0 * 1024.0);
                match rate {
                    Some(r) => format!("bytes {mib:.1} MiB ({:.2} Mbit/s)", r * 8.0 / 1e6),
                    None => format!("bytes {mib:.1} MiB"),
                }
            }
            (name, Some(r)) => format!("{name} {} ({r:.1}/s)", self.value),
            (name, None) => format!("{name} {}", self.value),
        }
    }
}

/// What a snapshot leaves for the next one's rates: path → (handled, restarts), and
/// (path, gauge) → value.
#[derive(Debug, Clone, Default)]
struct Previous {
    counters: HashMap<String, (u64, u32)>,
    gauges: HashMap<(String, String), u64>,
}

#[derive(Debug, Clone, Default)]
pub struct TreeView {
    /// Every actor in tree order, collapsed branches included (so they keep their rates).
    pub rows: Vec<Row>,
    pub seq: u64,
    pub server_id: String,
    pub actors: u32,
    pub uptime_secs: f64,
    /// The previous snapshot's counters and gauges, and its capture time.
    prev: Previous,
    prev_at: Option<f64>,
    pub collapsed: BTreeSet<String>,
    /// Each actor's recent figures, oldest first, by path.
    history: HashMap<String, VecDeque<Point>>,
    /// The actor shown in the detail pane.
    pub selected: Option<String>,
}

impl TreeView {
    /// Takes a new snapshot (captured at `at_secs`, the server's clock in seconds).
    pub fn update(&mut self, tree: &ActorTree) {
        let at = tree.captured_at.timestamp_millis() as f64 / 1000.0;
        let dt = self.prev_at.map(|p| at - p).filter(|d| *d > 0.0);
        let mut rows = Vec::new();
        let mut next = Previous::default();
        for a in &tree.root {
            self.walk(a, &mut Vec::new(), dt, &mut rows, &mut next);
        }
        // Actors that are gone take their history with them.
        let live: HashSet<&str> = rows.iter().map(|r| r.path.as_str()).collect();
        self.history.retain(|path, _| live.contains(path.as_str()));
        for r in &mut rows {
            let h = self.history.entry(r.path.clone()).or_default();
            h.push_back(Point { at, rate: r.rate, mailbox: r.mailbox });
            while h.len() > HISTORY_POINTS || h.front().is_some_and(|p| at - p.at > HISTORY_SECS) {
                h.pop_front();
            }
            r.rate_spark = sparkline(h.iter().filter_map(|p| Some((p.at, p.rate?))), at);
            r.mailbox_spark = sparkline(h.iter().map(|p| (p.at, p.mailbox as f64)), at);
        }
        self.rows = rows;
        self.prev = next;
        self.prev_at = Some(at);
        self.seq = tree.seq;
        self.server_id = tree.server_id.clone();
        self.actors = tree.actors;
        self.uptime_secs = tree.uptime_secs;
    }

    fn walk(
        &self,
        a: &ActorSnapshot,
        ancestors: &mut Vec<String>,
        dt: Option<f64>,
        rows: &mut Vec<Row>,
        next: &mut Previous,
    ) {
        let prev = self.prev.counters.get(&a.path);
        let rate = match (prev, dt) {
            (Some((handled, _)), Some(dt)) => Some(a.counters.handled.saturating_sub(*handled) as f64 / dt),
            _ => None,
        };
        let restarted_now = prev.is_some_and(|(_, r)| a.supervision.restarts > *r);
        next.counters.insert(a.path.clone(), (a.counters.handled, a.supervision.restarts));
        let gauges = a
            .gauges
            .iter()
            .map(|(name, &value)| {
                let key = (a.path.clone(), name.clone());
                // A count that went down belongs to a restarted actor: no rate until the next one.
                let rate = match (self.prev.gauges.get(&key), dt) {
                    (Some(&before), Some(dt)) if COUNTS.contains(&name.as_str()) && value >= before => {
                        Some((value - before) as f64 / dt)
                    }
                    _ => None,
                };
                next.gauges.insert(key, value);
                Gauge { name: name.clone(), value, rate }
            })
            .collect();
        rows.push(Row {
            path: a.path.clone(),
            name: a.path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("/").to_owned(),
            kind: a.kind.clone(),
            depth: ancestors.len(),
            status: a.status,
            mailbox: a.mailbox,
            received: a.counters.received,
            handled: a.counters.handled,
            failed: a.counters.failed,
            rate,
            restarts: a.supervision.restarts,
            restarted_now,
            escalations: a.supervision.escalations,
            last_reason: a.supervision.last_reason.clone(),
            last_escalation: a.supervision.last_escalation.clone(),
            events: a.supervision.history.clone(),
            started_at: a.started_at,
            children: a.children.iter().map(|c| c.path.clone()).collect(),
            has_children: !a.children.is_empty(),
            rate_spark: Spark::default(),
            mailbox_spark: Spark::default(),
            gauges,
            ancestors: ancestors.clone(),
        });
        ancestors.push(a.path.clone());
        for c in &a.children {
            self.walk(c, ancestors, dt, rows, next);
        }
        ancestors.pop();
    }

    /// The rows to show: none below a collapsed actor. Toggling takes effect at once, without
    /// waiting for the next snapshot.
    pub fn visible(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| !r.ancestors.iter().any(|a| self.collapsed.contains(a)))
    }

    pub fn is_collapsed(&self, path: &str) -> bool {
        self.collapsed.contains(path)
    }

    pub fn toggle(&mut self, path: &str) {
        if !self.collapsed.remove(path) {
            self.collapsed.insert(path.to_owned());
        }
    }

    /// An actor's recent figures, oldest first.
    pub fn history(&self, path: &str) -> impl Iterator<Item = &Point> {
        self.history.get(path).into_iter().flatten()
    }

    /// Selects an actor for the detail pane (`None`: closes it). Its ancestors are unfolded, so a
    /// child picked in the pane is also visible in the tree.
    pub fn select(&mut self, path: Option<String>) {
        if let Some(row) = path.as_ref().and_then(|p| self.row(p)) {
            for a in row.ancestors.clone() {
                self.collapsed.remove(&a);
            }
        }
        self.selected = path;
    }

    pub fn row(&self, path: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.path == path)
    }

    /// The selected actor's row (`None` when nothing is selected or it is gone).
    pub fn selected_row(&self) -> Option<&Row> {
        self.selected.as_deref().and_then(|p| self.row(p))
    }

    /// Ids of the teams that appear in the tree.
    pub fn team_ids(&self) -> BTreeSet<String> {
        self.rows
            .iter()
            .filter_map(|r| r.path.parse::<ActorPath>().ok()?.team_id().map(str::to_owned))
            .collect()
    }
}

/// Names of teams and drivers, for paths shown to people: `/teams/{id}` reads as the team's name,
/// `/teams/{t}/drivers/{id}` as the driver's. Unknown ids show as a short id.
#[derive(Debug, Clone, Default)]
pub struct Names {
    teams: HashMap<String, String>,
    drivers: HashMap<String, String>,
    /// Teams whose drivers were asked for (once each).
    asked: HashSet<String>,
}

impl Names {
    pub fn set_teams(&mut self, teams: &[Team]) {
        for t in teams {
            self.teams.insert(t.id.clone(), t.name.clone());
        }
    }

    /// A team's drivers (from `GET /api/teams/{id}/drivers`).
    pub fn set_drivers(&mut self, team_id: Option<&str>, drivers: &[DriverProfile]) {
        if let Some(t) = team_id {
            self.asked.insert(t.to_owned());
        }
        for d in drivers {
            self.drivers.insert(d.id.clone(), d.name.clone());
        }
    }

    pub fn team(&self, id: &str) -> String {
        self.teams.get(id).cloned().unwrap_or_else(|| short_id(id))
    }

    pub fn driver(&self, id: &str) -> String {
        self.drivers.get(id).cloned().unwrap_or_else(|| short_id(id))
    }

    /// Teams in `ids` the user can see (their names are known) whose drivers were not asked for
    /// yet; marks them asked.
    pub fn to_ask(&mut self, ids: BTreeSet<String>) -> Vec<String> {
        ids.into_iter().filter(|t| self.teams.contains_key(t) && self.asked.insert(t.clone())).collect()
    }

    /// What a tree row shows for `path`: its last part, with ids as names.
    pub fn label(&self, path: &str) -> String {
        match path.parse::<ActorPath>() {
            Ok(ActorPath::Runtime) => "runtime".into(),
            Ok(ActorPath::Store) => "store".into(),
            Ok(ActorPath::Team { team }) => self.team(&team),
            Ok(ActorPath::Hub { .. }) => "hub".into(),
            Ok(ActorPath::Driver { driver, .. }) => self.driver(&driver),
            Ok(ActorPath::Part { part, .. }) => part.as_str().into(),
            Err(_) => path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("/").to_owned(),
        }
    }

    /// The whole path with names: `Red Bull › Alice › coach`.
    pub fn describe(&self, path: &str) -> String {
        match path.parse::<ActorPath>() {
            Ok(ActorPath::Team { team }) => self.team(&team),
            Ok(ActorPath::Hub { team }) => format!("{} › hub", self.team(&team)),
            Ok(ActorPath::Driver { team, driver }) => {
                format!("{} › {}", self.team(&team), self.driver(&driver))
            }
            Ok(ActorPath::Part { team, driver, part }) => {
                format!("{} › {} › {}", self.team(&team), self.driver(&driver), part.as_str())
            }
            _ => self.label(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(seq: u64, secs: u32, handled: u64, restarts: u32) -> ActorTree {
        serde_json::from_value(serde_json::json!({
            "seq": seq, "capturedAt": format!("2026-01-01T00:00:{secs:02}Z"), "serverId": "n1",
            "uptimeSecs": 5.0, "actors": 3,
            "root": [{
                "path": "/", "kind": "runtime_supervisor", "status": "running", "mailbox": 0,
                "counters": {"received": 1, "handled": 1, "failed": 0},
                "supervision": {"restarts": 0, "escalations": 0}, "startedAt": "2026-01-01T00:00:00Z",
                "children": [{
                    "path": "/teams/t1", "kind": "team_supervisor", "status": "running", "mailbox": 2,
                    "counters": {"received": 5, "handled": 3, "failed": 0},
                    "supervision": {"restarts": 0, "escalations": 0}, "startedAt": "2026-01-01T00:00:00Z",
                    "children": [{
                        "path": "/teams/t1/drivers/d1", "kind": "driver_session", "status": "running",
                        "mailbox": 0, "counters": {"received": handled, "handled": handled, "failed": 0},
                        "supervision": {"restarts": restarts, "escalations": 0, "lastReason": "panic"},
                        "startedAt": "2026-01-01T00:00:00Z"
                    }]
                }]
            }]
        }))
        .unwrap()
    }

    #[test]
    fn rows_rates_and_restarts() {
        let mut v = TreeView::default();
        v.update(&tree(1, 1, 100, 0));
        assert_eq!(v.rows.len(), 3);
        assert_eq!(v.rows[2].depth, 2);
        assert_eq!(v.rows[2].name, "d1");
        assert_eq!(v.rows[1].mailbox, 2);
        assert_eq!(v.rows[2].rate, None, "no rate from one snapshot");
        v.update(&tree(2, 3, 220, 1));
        assert_eq!(v.rows[2].rate, Some(60.0), "120 messages in 2 s");
        assert!(v.rows[2].restarted_now);
        assert_eq!(v.rows[2].last_reason.as_deref(), Some("panic"));
        v.update(&tree(3, 4, 220, 1));
        assert!(!v.rows[2].restarted_now);
        assert_eq!(v.rows[2].rate, Some(0.0));
    }

    fn relay(seq: u64, secs: u32, frames: u64, bytes: u64) -> ActorTree {
        serde_json::from_value(serde_json::json!({
            "seq": seq, "capturedAt": format!("2026-01-01T00:00:{secs:02}Z"), "serverId": "n1",
            "uptimeSecs": 5.0, "actors": 1,
            "root": [{
                "path": "/teams/t1/drivers/d1/video", "kind": "video_relay", "status": "running",
                "mailbox": 0, "counters": {"received": 1, "handled": 1, "failed": 0},
                "supervision": {"restarts": 0, "escalations": 0}, "startedAt": "2026-01-01T00:00:00Z",
                "gauges": {"viewers": 2, "frames": frames, "bytes": bytes, "drops": 3}
            }]
        }))
        .unwrap()
    }

    #[test]
    fn gauges_show_values_and_rates_of_counts() {
        let mut v = TreeView::default();
        v.update(&relay(1, 1, 100, 1_000_000));
        let g = &v.rows[0].gauges;
        assert_eq!(
            g.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
            ["bytes", "drops", "frames", "viewers"]
        );
        assert!(g.iter().all(|g| g.rate.is_none()), "no rate from one snapshot");
        v.update(&relay(2, 3, 160, 1_500_000));
        let by = |n: &str| by_row(&v, n);
        assert_eq!(by("frames").rate, Some(30.0), "60 frames in 2 s");
        assert_eq!(by("frames").label(), "frames 160 (30.0/s)");
        assert_eq!(by("bytes").label(), "bytes 1.4 MiB (2.00 Mbit/s)");
        assert_eq!(by("viewers").rate, None, "a current value, not a count");
        assert_eq!(by("viewers").label(), "viewers 2");
        assert_eq!(by("drops").rate, Some(0.0));
        // A restarted relay starts counting again: no negative rate.
        v.update(&relay(3, 4, 10, 2_000));
        assert_eq!(by_row(&v, "frames").rate, None);
    }

    fn by_row(v: &TreeView, n: &str) -> Gauge {
        v.rows[0].gauges.iter().find(|g| g.name == n).unwrap().clone()
    }

    /// One actor handling `handled` messages so far, `mailbox` waiting, at `secs` after 00:00.
    fn one(seq: u64, secs: u64, handled: u64, mailbox: u64) -> ActorTree {
        serde_json::from_value(serde_json::json!({
            "seq": seq, "capturedAt": format!("2026-01-01T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60),
            "serverId": "n1", "uptimeSecs": 5.0, "actors": 1,
            "root": [{
                "path": "/teams/t1", "kind": "team_supervisor", "status": "running", "mailbox": mailbox,
                "counters": {"received": handled + mailbox, "handled": handled, "failed": 0},
                "supervision": {"restarts": 2, "escalations": 1, "history": [
                    {"at": "2026-01-01T00:00:01Z", "kind": "restart", "reason": "panic: boom"},
                    {"at": "2026-01-01T00:00:02Z", "kind": "escalation", "reason": "gave up on /teams/t1/hub"}
                ]},
                "startedAt": "2026-01-01T00:00:00Z"
            }]
        }))
        .unwrap()
    }

    #[test]
    fn history_is_bounded_to_the_last_minutes_with_rates() {
        let mut v = TreeView::default();
        // 10 minutes of snapshots, one a second, 50 messages handled per second.
        for i in 0..600 {
            v.update(&one(i + 1, i, i * 50, i % 7));
        }
        let h: Vec<Point> = v.history("/teams/t1").copied().collect();
        assert!(h.len() <= HISTORY_POINTS);
        let span = h.last().unwrap().at - h[0].at;
        assert!((HISTORY_SECS - 1.0..=HISTORY_SECS).contains(&span), "the last 5 minutes only: {span}");
        assert!(h.iter().all(|p| p.rate == Some(50.0)), "rate from consecutive snapshots");
        assert_eq!(h.last().unwrap().mailbox, 599 % 7);
        let spark = &v.rows[0].rate_spark;
        assert_eq!(spark.max, 50.0);
        assert_eq!(spark.points.split(' ').count(), SPARK_BUCKETS, "bucketed, never one point per snapshot");
        // A flat rate draws a flat line at the top.
        assert!(spark.points.split(' ').all(|p| p.ends_with(",0.5")), "{}", spark.points);
        assert_eq!(v.rows[0].mailbox_spark.max, 6.0);
        // A 10 s burst shows as the highest point; the rest stay low.
        let at = 600;
        for i in 0..10 {
            v.update(&one(at + i + 1, at + i, 599 * 50 + (i + 1) * 1000, 0));
        }
        assert_eq!(v.rows[0].rate_spark.max, 1000.0);
        // Actors that left the tree take their history with them.
        v.update(&relay(9999, 59, 1, 1));
        assert_eq!(v.history("/teams/t1").count(), 0);
    }

    #[test]
    fn sparkline_scales_and_places_points_in_time() {
        let s = sparkline([(0.0, 0.0), (150.0, 4.0), (300.0, 2.0)].into_iter(), 300.0);
        assert_eq!(s.max, 4.0);
        let pts: Vec<(f64, f64)> = s
            .points
            .split(' ')
            .map(|p| p.split_once(',').map(|(x, y)| (x.parse().unwrap(), y.parse().unwrap())).unwrap())
            .collect();
        assert_eq!(pts.len(), 3);
        assert!(pts[0].0 < 2.0 && (pts[1].0 - SPARK_W / 2.0).abs() < 2.0 && pts[2].0 > SPARK_W - 2.0);
        assert_eq!(pts[0].1, SPARK_H - 0.5, "0 at the bottom");
        assert_eq!(pts[1].1, 0.5, "the max at the top");
        assert!(sparkline([(-1.0, 5.0)].into_iter(), 300.0).points.is_empty(), "outside the window");
        // A quiet actor: a flat line at the bottom, not noise scaled up; a lone point still a line.
        let q = sparkline([(10.0, 0.2)].into_iter(), 300.0);
        let y = format!("{:.1}", SPARK_H - 0.2 * (SPARK_H - 1.0) - 0.5);
        let qs: Vec<&str> = q.points.split(' ').collect();
        assert_eq!(qs.len(), 2, "{}", q.points);
        assert!(qs.iter().all(|p| p.ends_with(&format!(",{y}"))), "{}", q.points);
    }

    #[test]
    fn selection_gives_the_detail_and_unfolds_its_branch() {
        let mut v = TreeView::default();
        v.update(&tree(1, 1, 100, 1));
        assert!(v.selected_row().is_none());
        v.toggle("/teams/t1");
        v.select(Some("/teams/t1/drivers/d1".into()));
        assert!(!v.is_collapsed("/teams/t1"), "a selected actor is visible in the tree");
        let r = v.selected_row().unwrap();
        assert_eq!(r.kind, "driver_session");
        assert_eq!(r.restarts, 1);
        assert_eq!(r.started_at.to_rfc3339(), "2026-01-01T00:00:00+00:00");
        assert_eq!(v.row("/teams/t1").unwrap().children, ["/teams/t1/drivers/d1"]);
        assert_eq!(v.row("/").unwrap().children, ["/teams/t1"]);
        v.update(&one(2, 3, 10, 0));
        assert!(v.selected_row().is_none(), "gone from the tree");
        assert_eq!(v.selected.as_deref(), Some("/teams/t1/drivers/d1"), "kept, in case it comes back");
        v.select(Some("/teams/t1".into()));
        let r = v.selected_row().unwrap();
        assert_eq!(r.events.len(), 2);
        assert_eq!(r.events[0].reason, "panic: boom");
        assert_eq!(r.events[1].kind, pitbox_schema::wire::SupervisionEventKind::Escalation);
        v.select(None);
        assert!(v.selected_row().is_none());
    }

    #[test]
    fn names_replace_ids_in_paths() {
        let mut n = Names::default();
        let team: Team = serde_json::from_value(serde_json::json!({
            "id": "0196f3aa-team", "name": "Red Bull", "createdAt": "2026-01-01T00:00:00Z"}))
        .unwrap();
        n.set_teams(&[team]);
        let alice: DriverProfile = serde_json::from_value(serde_json::json!({
            "id": "0196f3bb-alice", "name": "Alice", "team": "Red Bull", "number": 7, "status": "active",
            "role": "primary", "avatarUrl": "", "telemetryConnected": false}))
        .unwrap();
        assert_eq!(
            n.label("/teams/0196f3aa-team/drivers/0196f3bb-alice"),
            "0196f3bb",
            "a short id until known"
        );
        assert_eq!(
            n.to_ask(["0196f3aa-team".into(), "0196ffff-other".into()].into()),
            ["0196f3aa-team"],
            "only teams the user can see"
        );
        assert!(n.to_ask(["0196f3aa-team".into()].into()).is_empty(), "asked once");
        n.set_drivers(Some("0196f3aa-team"), &[alice]);
        assert_eq!(n.label("/teams/0196f3aa-team"), "Red Bull");
        assert_eq!(n.label("/teams/0196f3aa-team/drivers/0196f3bb-alice"), "Alice");
        assert_eq!(n.label("/teams/0196f3aa-team/drivers/0196f3bb-alice/coach"), "coach");
        assert_eq!(n.label("/teams/0196f3aa-team/hub"), "hub");
        assert_eq!(n.label("/teams/0196ffff-other"), "0196ffff");
        assert_eq!(n.label("/runtime/store"), "store");
        assert_eq!(n.label("/something/else"), "else");
        assert_eq!(
            n.describe("/teams/0196f3aa-team/drivers/0196f3bb-alice/video"),
            "Red Bull › Alice › video"
        );
    }

    #[test]
    fn collapsing_hides_children_but_keeps_counting() {
        let mut v = TreeView::default();
        v.update(&tree(1, 1, 100, 0));
        v.toggle("/teams/t1");
        assert_eq!(v.visible().count(), 2, "hidden at once, before the next snapshot");
        assert!(v.is_collapsed("/teams/t1"));
        v.update(&tree(2, 2, 160, 0));
        assert_eq!(v.visible().count(), 2);
        v.toggle("/teams/t1");
        assert_eq!(v.visible().count(), 3);
        v.update(&tree(3, 3, 220, 0));
        assert_eq!(v.visible().nth(2).unwrap().rate, Some(60.0), "counted while hidden");
        v.toggle("/");
        assert_eq!(v.visible().count(), 1, "collapsing the root hides everything below");
    }
}
