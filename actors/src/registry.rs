//! The registry of live actors: every actor by path, with kind, status, parent, counters (received,
//! handled, failed), the messages queued now (counted by [`crate::mailbox`] when sent), restarts and
//! escalations. Actors update their own entry through a cheap
//! [`Stats`] handle (atomics); the admin endpoint reads [`Registry::tree`]. An entry outlives restarts
//! of its actor, so restart counts accumulate in one place. Reads no env vars.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crate::supervision::Control;
use chrono::{DateTime, Utc};
use pitbox_schema::wire::{
    ActorCounters, ActorSnapshot, ActorStatus, ActorTree, Supervision, SupervisionEvent, SupervisionEventKind,
};

/// Counters and state of one actor path.
#[derive(Debug)]
pub struct Stats {
    pub path: String,
    pub kind: &'static str,
    received: AtomicU64,
    handled: AtomicU64,
    failed: AtomicU64,
    /// Messages queued for the current incarnation and not yet handled.
    queued: AtomicU64,
    status: AtomicU8,
    started_at: Mutex<DateTime<Utc>>,
    supervision: Mutex<Supervision>,
    control: Mutex<Option<actix::Recipient<Control>>>,
    gauges: Mutex<BTreeMap<String, u64>>,
}

fn status_code(s: ActorStatus) -> u8 {
    match s {
        ActorStatus::Running => 0,
        ActorStatus::Restarting => 1,
        ActorStatus::Stopped => 2,
    }
}

fn status_of(code: u8) -> ActorStatus {
    match code {
        0 => ActorStatus::Running,
        1 => ActorStatus::Restarting,
        _ => ActorStatus::Stopped,
    }
}

/// Adds `event` to the restart history, dropping the oldest beyond [`Supervision::HISTORY`] (an
/// actor that keeps failing must not grow the admin tree without bound).
fn remember(s: &mut Supervision, event: SupervisionEvent) {
    s.history.push(event);
    let excess = s.history.len().saturating_sub(Supervision::HISTORY);
    s.history.drain(..excess);
}

impl Stats {
    fn new(path: String, kind: &'static str) -> Self {
        Self {
            path,
            kind,
            received: AtomicU64::new(0),
            handled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            status: AtomicU8::new(0),
            started_at: Mutex::new(Utc::now()),
            supervision: Mutex::new(Supervision::default()),
            control: Mutex::new(None),
            gauges: Mutex::default(),
        }
    }

    /// A message was put in the mailbox (counted by the sender, see [`crate::mailbox`]).
    pub fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
        self.queued.fetch_add(1, Ordering::Relaxed);
    }
    /// A message counted by [`Stats::received`] could not be queued after all (mailbox full).
    pub fn unreceived(&self) {
        self.received.fetch_sub(1, Ordering::Relaxed);
        self.dequeued();
    }
    pub fn handled(&self) {
        self.handled.fetch_add(1, Ordering::Relaxed);
        self.dequeued();
    }
    pub fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.dequeued();
    }

    fn dequeued(&self) {
        // Saturating: a message that reached the actor without a counting sender (none should)
        // must not wrap the queue length around.
        let _ = self.queued.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| q.checked_sub(1));
    }

    /// Messages waiting in the mailbox of the current incarnation (the one being handled included).
    pub fn mailbox(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// A new incarnation is about to start: what was left in the old one's mailbox went with it.
    /// Called before the new actor's address exists, so nothing sent to it is forgotten.
    pub fn new_incarnation(&self) {
        self.queued.store(0, Ordering::Relaxed);
    }

    pub fn set_status(&self, s: ActorStatus) {
        self.status.store(status_code(s), Ordering::Relaxed);
    }

    pub fn status(&self) -> ActorStatus {
        status_of(self.status.load(Ordering::Relaxed))
    }

    /// The actor (re)started now.
    pub fn started(&self) {
        if let Ok(mut t) = self.started_at.lock() {
            *t = Utc::now();
        }
        self.set_status(ActorStatus::Running);
    }

    /// Where operator controls for this path go (set by the live actor when it starts).
    pub fn set_control(&self, r: actix::Recipient<Control>) {
        if let Ok(mut c) = self.control.lock() {
            *c = Some(r);
        }
    }

    /// Sends a control message to the live actor; `false` if there is none.
    pub fn control(&self, msg: Control) -> bool {
        let r = self.control.lock().ok().and_then(|c| c.clone());
        match r {
            Some(r) if self.status() == ActorStatus::Running => {
                self.received();
                let sent = r.try_send(msg).is_ok();
                if !sent {
                    self.unreceived();
                }
                sent
            }
            _ => false,
        }
    }

    pub fn record_restart(&self, reason: &str) {
        if let Ok(mut s) = self.supervision.lock() {
            let at = Utc::now();
            s.restarts += 1;
            s.last_restart_at = Some(at);
            s.last_reason = Some(reason.to_owned());
            remember(
                &mut s,
                SupervisionEvent { at, kind: SupervisionEventKind::Restart, reason: reason.to_owned() },
            );
        }
    }

    pub fn record_escalation(&self, what: String) {
        if let Ok(mut s) = self.supervision.lock() {
            s.escalations += 1;
            s.last_escalation = Some(what.clone());
            let event =
                SupervisionEvent { at: Utc::now(), kind: SupervisionEventKind::Escalation, reason: what };
            remember(&mut s, event);
        }
    }

    pub fn restarts(&self) -> u32 {
        self.supervision.lock().map(|s| s.restarts).unwrap_or(0)
    }

    pub fn last_reason(&self) -> Option<String> {
        self.supervision.lock().ok().and_then(|s| s.last_reason.clone())
    }

    pub fn last_escalation(&self) -> Option<String> {
        self.supervision.lock().ok().and_then(|s| s.last_escalation.clone())
    }

    pub fn escalations(&self) -> u32 {
        self.supervision.lock().map(|s| s.escalations).unwrap_or(0)
    }

    /// Sets the actor's own counts shown in the admin tree (see [`ActorSnapshot::gauges`]).
    pub fn set_gauges<'a>(&self, values: impl IntoIterator<Item = (&'a str, u64)>) {
        if let Ok(mut g) = self.gauges.lock() {
            for (k, v) in values {
                match g.get_mut(k) {
                    Some(slot) => *slot = v,
                    None => {
                        g.insert(k.to_owned(), v);
                    }
                }
            }
        }
    }

    pub fn gauges(&self) -> BTreeMap<String, u64> {
        self.gauges.lock().map(|g| g.clone()).unwrap_or_default()
    }

    pub fn counters(&self) -> ActorCounters {
        ActorCounters {
            received: self.received.load(Ordering::Relaxed),
            handled: self.handled.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    fn snapshot(&self) -> ActorSnapshot {
        let counters = self.counters();
        ActorSnapshot {
            path: self.path.clone(),
            kind: self.kind.to_owned(),
            status: self.status(),
            mailbox: self.mailbox(),
            counters,
            supervision: self.supervision.lock().map(|s| s.clone()).unwrap_or_default(),
            started_at: self.started_at.lock().map(|t| *t).unwrap_or_else(|_| Utc::now()),
            gauges: self.gauges(),
            children: vec![],
        }
    }
}

/// Every live actor by path. Cloning shares the same registry.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<RwLock<BTreeMap<String, Arc<Stats>>>>,
    seq: Arc<AtomicU64>,
    started: Instant,
    server_id: Arc<str>,
}

impl Registry {
    pub fn new(server_id: &str) -> Self {
        Self {
            inner: Arc::default(),
            seq: Arc::default(),
            started: Instant::now(),
            server_id: Arc::from(server_id),
        }
    }

    /// The stats of `path`, created on first use; the same handle across restarts.
    pub fn register(&self, path: &str, kind: &'static str) -> Arc<Stats> {
        if let Ok(map) = self.inner.read() {
            if let Some(s) = map.get(path) {
                return s.clone();
            }
        }
        let Ok(mut map) = self.inner.write() else {
            return Arc::new(Stats::new(path.to_owned(), kind));
        };
        map.entry(path.to_owned()).or_insert_with(|| Arc::new(Stats::new(path.to_owned(), kind))).clone()
    }

    /// Forgets `path` and everything below it (an actor stopped for good and its children).
    pub fn remove_subtree(&self, path: &str) {
        if let Ok(mut map) = self.inner.write() {
            let prefix = format!("{path}/");
            map.retain(|k, _| k != path && !k.starts_with(&prefix));
        }
    }

    pub fn get(&self, path: &str) -> Option<Arc<Stats>> {
        self.inner.read().ok().and_then(|m| m.get(path).cloned())
    }

    pub fn len(&self) -> usize {
        self.inner.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The nested tree of every registered actor, numbered.
    pub fn tree(&self) -> ActorTree {
        let flat: Vec<ActorSnapshot> =
            self.inner.read().map(|m| m.values().map(|s| s.snapshot()).collect()).unwrap_or_default();
        let actors = u32::try_from(flat.len()).unwrap_or(u32::MAX);
        ActorTree {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            captured_at: Utc::now(),
            server_id: self.server_id.to_string(),
            uptime_secs: self.started.elapsed().as_secs_f64(),
            actors,
            root: nest(flat),
        }
    }
}

/// The parent of a path is its longest registered proper prefix (`/teams/t` for
/// `/teams/t/drivers/d`, the missing `/teams/t/drivers` level skipped).
fn nest(flat: Vec<ActorSnapshot>) -> Vec<ActorSnapshot> {
    // BTreeMap order puts parents before children; build bottom-up from the longest paths.
    let mut by_path: BTreeMap<String, ActorSnapshot> =
        flat.into_iter().map(|s| (s.path.clone(), s)).collect();
    let mut paths: Vec<String> = by_path.keys().cloned().collect();
    paths.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for path in paths {
        let parent = {
            let mut cut = path.as_str();
            loop {
                match cut.rfind('/') {
                    Some(0) | None => break None,
                    Some(i) => {
                        cut = &cut[..i];
                        if by_path.contains_key(cut) {
                            break Some(cut.to_owned());
                        }
                    }
                }
            }
        };
        if let Some(parent) = parent {
            if let Some(node) = by_path.remove(&path) {
                if let Some(p) = by_path.get_mut(&parent) {
                    p.children.push(node);
                }
            }
        }
    }
    let mut roots: Vec<ActorSnapshot> = by_path.into_values().collect();
    fn sort(nodes: &mut [ActorSnapshot]) {
        nodes.sort_by(|a, b| a.path.cmp(&b.path));
        for n in nodes {
            sort(&mut n.children);
        }
    }
    sort(&mut roots);
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_nests_by_path_and_counts() {
        let r = Registry::new("test");
        r.register("/runtime", "runtime_supervisor");
        r.register("/teams/a", "team_supervisor");
        let d = r.register("/teams/a/drivers/x", "driver_session");
        r.register("/teams/a/drivers/x/coach", "coach");
        r.register("/teams/a/hub", "team_hub");
        d.received();
        d.received();
        d.handled();
        d.record_restart("boom");
        let t = r.tree();
        assert_eq!(t.actors, 5);
        assert_eq!(t.root.len(), 2);
        let team = t.root.iter().find(|n| n.path == "/teams/a").unwrap();
        assert_eq!(team.children.len(), 2);
        let driver = team.children.iter().find(|n| n.path == "/teams/a/drivers/x").unwrap();
        assert_eq!(driver.mailbox, 1);
        assert_eq!(driver.supervision.restarts, 1);
        assert_eq!(driver.children[0].kind, "coach");
        assert_eq!(r.tree().seq, t.seq + 1);
        r.remove_subtree("/teams/a/drivers/x");
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn restart_history_keeps_reasons_and_is_bounded() {
        let r = Registry::new("test");
        let s = r.register("/teams/a", "team_supervisor");
        s.record_restart("panic: first");
        s.record_escalation("gave up on /teams/a/hub".into());
        let history = |r: &Registry| r.tree().root[0].supervision.history.clone();
        let h = history(&r);
        assert_eq!(h.len(), 2);
        assert_eq!((h[0].kind, h[0].reason.as_str()), (SupervisionEventKind::Restart, "panic: first"));
        assert_eq!(h[1].kind, SupervisionEventKind::Escalation);
        assert_eq!(h[1].reason, "gave up on /teams/a/hub");
        assert!(h[0].at <= h[1].at);
        for i in 0..25 {
            s.record_restart(&format!("panic: {i}"));
        }
        let h = history(&r);
        assert_eq!(h.len(), Supervision::HISTORY, "bounded");
        assert_eq!(h.last().map(|e| e.reason.as_str()), Some("panic: 24"), "newest last");
        assert_eq!(h[0].reason, "panic: 15", "the oldest dropped first");
        let sup = &r.tree().root[0].supervision;
        assert_eq!((sup.restarts, sup.escalations), (26, 1), "counts cover the whole life");
        assert_eq!(sup.last_reason.as_deref(), Some("panic: 24"));
    }
}
