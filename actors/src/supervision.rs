//! OTP-style supervision on top of actix, which has none: a failing child (a handler that panics or
//! returns a fatal error) stops and tells its parent; the parent restarts it one-for-one from its
//! last checkpoint, unless it failed more than `intensity` times within `period`, in which case the
//! parent stops it for good and records the escalation. Panics are caught around each handler
//! ([`guarded`]), so a panic never takes down the arbiter thread and the other actors on it.
//! Reads no env vars (the policy comes from the runtime's config).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::registry::Stats;

/// Restart limits: at most `intensity` restarts within `period`.
#[derive(Debug, Clone, Copy)]
pub struct RestartPolicy {
    pub intensity: u32,
    pub period: Duration,
}

impl RestartPolicy {
    /// At most 5 restarts within 10 s; the runtime's `--restart-intensity` and
    /// `--restart-period-secs` default to it.
    pub const DEFAULT: RestartPolicy = RestartPolicy { intensity: 5, period: Duration::from_secs(10) };
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A child tells its parent it failed and stopped.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ChildFailed {
    pub path: String,
    pub reason: String,
}

/// Operator controls every supervised actor obeys (fault injection is off unless configured).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub enum Control {
    /// Panic inside a handler, to see supervision work.
    Panic,
    /// Stop for good (idle, or the parent is going away).
    Stop,
}

/// Remembers recent restarts of one child and decides whether another is allowed.
#[derive(Debug, Default)]
pub struct RestartTracker {
    recent: VecDeque<Instant>,
}

impl RestartTracker {
    /// Records a failure now; `true` if a restart is still within the policy.
    pub fn allow(&mut self, policy: &RestartPolicy) -> bool {
        let now = Instant::now();
        while self.recent.front().is_some_and(|t| now.duration_since(*t) > policy.period) {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        self.recent.len() <= policy.intensity as usize
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panic: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic".to_owned()
    }
}

/// Runs one handler body, counting it; a panic or a fatal error becomes `Err(reason)`.
pub fn guarded<R>(stats: &Stats, body: impl FnOnce() -> Result<R, Fatal>) -> Result<R, String> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(r)) => {
            stats.handled();
            Ok(r)
        }
        Ok(Err(Fatal(reason))) => {
            stats.failed();
            Err(reason)
        }
        Err(payload) => {
            stats.failed();
            Err(panic_message(payload))
        }
    }
}

/// An error after which the actor's state cannot be trusted: the actor stops and is restarted.
#[derive(Debug, Clone)]
pub struct Fatal(pub String);

/// What a failed child does: log, stop, and tell the parent.
pub fn fail<A>(ctx: &mut A::Context, stats: &Stats, parent: &Recipient<ChildFailed>, reason: String)
where
    A: Actor<Context = Context<A>>,
{
    tracing::warn!(path = %stats.path, %reason, "actor failed; asking its supervisor to restart it");
    stats.set_status(schema::wire::ActorStatus::Restarting);
    ctx.stop();
    parent.do_send(ChildFailed { path: stats.path.clone(), reason });
}

/// How every supervised leaf handles an operator control: `Stop` stops it for good; anything
/// else is a fault injection (a panic inside a guarded handler, so the supervisor sees a failure).
pub fn obey<A>(msg: Control, ctx: &mut A::Context, stats: &Stats, parent: &Recipient<ChildFailed>)
where
    A: Actor<Context = Context<A>>,
{
    stats.received();
    if msg == Control::Stop {
        stats.handled();
        stats.set_status(schema::wire::ActorStatus::Stopped);
        ctx.stop();
        return;
    }
    let path = stats.path.clone();
    let r: Result<(), String> = guarded(stats, || panic!("fault injected into {path}"));
    if let Err(reason) = r {
        fail::<A>(ctx, stats, parent, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intensity_is_enforced_within_the_period() {
        let policy = RestartPolicy { intensity: 2, period: Duration::from_secs(60) };
        let mut t = RestartTracker::default();
        assert!(t.allow(&policy));
        assert!(t.allow(&policy));
        assert!(!t.allow(&policy));
    }

    #[test]
    fn old_restarts_are_forgotten() {
        let policy = RestartPolicy { intensity: 1, period: Duration::from_millis(0) };
        let mut t = RestartTracker::default();
        assert!(t.allow(&policy));
        std::thread::sleep(Duration::from_millis(2));
        assert!(t.allow(&policy));
    }

    #[test]
    fn panics_become_errors() {
        let stats = crate::registry::Registry::new("t").register("/x", "test");
        let r: Result<(), String> = guarded(&stats, || panic!("boom"));
        assert_eq!(r.unwrap_err(), "panic: boom");
        let r = guarded(&stats, || Err::<(), _>(Fatal("bad".into())));
        assert_eq!(r.unwrap_err(), "bad");
        assert_eq!(guarded(&stats, || Ok(5)).unwrap(), 5);
        assert_eq!(stats.counters().failed, 2);
        assert_eq!(stats.counters().handled, 1);
    }
}
