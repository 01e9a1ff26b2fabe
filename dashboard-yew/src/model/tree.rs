//! The engineer view's actor tree: snapshots from `/admin/actors/stream` flattened into rows in
//! tree order, with message rates computed here from the counters of consecutive snapshots (the
//! server sends counters only), restarts since the previous snapshot flagged, and collapsed
//! branches hidden. An actor's own gauges (a video relay's viewers, frames, bytes, drops) are
//! shown too, with a per-second rate for those that count work done. Pure logic, unit-tested
//! natively. Reads no env vars.

use std::collections::{BTreeSet, HashMap};

use pitbox_schema::wire::{ActorSnapshot, ActorStatus, ActorTree};

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
    pub has_children: bool,
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
            has_children: !a.children.is_empty(),
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
