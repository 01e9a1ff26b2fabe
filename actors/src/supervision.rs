//! OTP-style supervision on top of actix, which has none, as one library every parent uses:
//! - [`Supervised`]: an actor with counters and a parent. Its handlers are just their bodies inside
//!   [`Supervised::guard`], which counts the message, catches a panic or a [`Fatal`] error, and then
//!   stops the actor and tells the parent ([`ChildFailed`]). Panics never take down the arbiter
//!   thread and the other actors on it. [`supervised_control!`] gives it the operator controls.
//! - [`ChildSpec`]: how to start a child (a constructor, which restores the child from the
//!   checkpoint its parent keeps for it) and the [`Handle`] that follows its restarts, so holders of
//!   the handle never look the child up again.
//! - [`Supervisor`]: the children of one parent, restarted by a [`Strategy`] (one-for-one,
//!   one-for-all, rest-for-one) within a [`RestartPolicy`] (at most `intensity` restarts of a child
//!   within `period`). Past it the child is stopped for good and the supervisor records the
//!   escalation; with [`Escalation::Fail`] it then fails itself, so its own parent handles it, up to
//!   the runtime supervisor. Stopping a parent stops its children.
//!
//! Reads no env vars (the policy comes from the runtime's config).

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix::dev::ToEnvelope;
use actix::prelude::*;
use pitbox_schema::wire::ActorStatus;

use crate::mailbox::{Counted, Mailbox};
use crate::registry::{Registry, Stats};

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
    /// Block the handler's thread this long: a slow handler, to see the mailbox grow (tests; the
    /// admin endpoint injects only `Panic`).
    Block(Duration),
    /// Stop on the supervisor's word (a sibling failed, the parent stops): the supervisor sets the
    /// status itself, as a new incarnation may already be starting.
    Retire,
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
pub fn fail<A>(ctx: &mut A::Context, stats: &Stats, parent: &Counted<ChildFailed>, reason: String)
where
    A: Actor<Context = Context<A>>,
{
    tracing::warn!(path = %stats.path, %reason, "actor failed; asking its supervisor to restart it");
    stats.set_status(pitbox_schema::wire::ActorStatus::Restarting);
    ctx.stop();
    parent.do_send(ChildFailed { path: stats.path.clone(), reason });
}

/// How every supervised actor handles an operator control: `Stop` stops it for good, `Retire` on
/// its supervisor's word (which sets the status itself), `Block` holds the handler (and the
/// arbiter thread it runs on) up, `Panic` is a fault injection (a panic inside a guarded handler,
/// so the supervisor sees a failure).
pub fn obey<A>(msg: Control, ctx: &mut A::Context, stats: &Stats, parent: &Counted<ChildFailed>)
where
    A: Actor<Context = Context<A>>,
{
    match msg {
        Control::Stop => {
            stats.handled();
            stats.set_status(pitbox_schema::wire::ActorStatus::Stopped);
            ctx.stop();
            return;
        }
        Control::Block(d) => {
            std::thread::sleep(d);
            stats.handled();
            return;
        }
        Control::Retire => {
            stats.handled();
            ctx.stop();
            return;
        }
        Control::Panic => {}
    }
    let path = stats.path.clone();
    let r: Result<(), String> = guarded(stats, || panic!("fault injected into {path}"));
    if let Err(reason) = r {
        fail::<A>(ctx, stats, parent, reason);
    }
}

/// A supervised actor: its counters and the parent it reports failures to.
pub trait Supervised: Actor<Context = Context<Self>> {
    fn stats(&self) -> &Arc<Stats>;
    fn parent(&self) -> &Counted<ChildFailed>;

    /// Runs one handler body: counted as handled; a panic or a [`Fatal`] error counts as failed,
    /// stops the actor, tells its parent, and gives the reason.
    fn guard<R>(
        &mut self,
        ctx: &mut Context<Self>,
        body: impl FnOnce(&mut Self, &mut Context<Self>) -> Result<R, Fatal>,
    ) -> Result<R, String>
    where
        Self: Sized,
    {
        let stats = self.stats().clone();
        let r = guarded(&stats, || body(self, ctx));
        if let Err(reason) = &r {
            let parent = self.parent().clone();
            fail::<Self>(ctx, &stats, &parent, reason.clone());
        }
        r
    }

    /// A handler that cannot fail (a read): just counted.
    fn handled(&self) {
        self.stats().handled();
    }

    /// Its own counting address.
    fn me(&self, ctx: &Context<Self>) -> Mailbox<Self>
    where
        Self: Sized,
    {
        Mailbox::new(ctx.address(), self.stats().clone())
    }
}

/// The operator controls ([`Control`]) for a [`Supervised`] actor, the same for all.
#[macro_export]
macro_rules! supervised_control {
    ($actor:ty) => {
        impl ::actix::Handler<$crate::supervision::Control> for $actor {
            type Result = ();

            fn handle(&mut self, msg: $crate::supervision::Control, ctx: &mut ::actix::Context<Self>) {
                let (stats, parent) = (
                    $crate::supervision::Supervised::stats(self).clone(),
                    $crate::supervision::Supervised::parent(self).clone(),
                );
                $crate::supervision::obey::<Self>(msg, ctx, &stats, &parent);
            }
        }
    };
}

/// The current incarnation of a child, shared by everyone who talks to it: its supervisor points it
/// at each new incarnation, so a holder never looks the child up again. Cheap to clone.
pub struct Handle<A: Actor>(Arc<RwLock<Option<Mailbox<A>>>>);

impl<A: Actor> Clone for Handle<A> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<A: Actor> Default for Handle<A> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<A: Actor> std::fmt::Debug for Handle<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Handle").field(&self.get()).finish()
    }
}

impl<A: Actor> Handle<A> {
    pub fn set(&self, m: Option<Mailbox<A>>) {
        if let Ok(mut h) = self.0.write() {
            *h = m;
        }
    }

    /// The running incarnation, if there is one (none while it restarts or after it was given up).
    pub fn get(&self) -> Option<Mailbox<A>> {
        self.0.read().ok().and_then(|h| h.clone()).filter(|m| m.connected())
    }

    pub fn connected(&self) -> bool {
        self.get().is_some()
    }

    /// Whether both are the same child's handle.
    pub fn same(&self, other: &Handle<A>) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Queues `msg` for the current incarnation; dropped while there is none.
    pub fn do_send<M>(&self, msg: M)
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        if let Some(m) = self.get() {
            m.do_send(msg);
        }
    }

    /// Queues `msg` for the current incarnation if it has room; an error while there is none.
    pub fn try_send<M>(&self, msg: M) -> Result<(), SendError<M>>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        match self.get() {
            Some(m) => m.try_send(msg),
            None => Err(SendError::Closed(msg)),
        }
    }

    /// Asks the current incarnation; `MailboxError::Closed` while there is none.
    pub fn send<M>(&self, msg: M) -> impl Future<Output = Result<M::Result, MailboxError>> + 'static
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        let request = self.get().map(|m| m.send(msg));
        async move {
            match request {
                Some(r) => r.await,
                None => Err(MailboxError::Closed),
            }
        }
    }
}

/// Starts one incarnation of a child, given where it reports failures; gives its control address.
type Starter = Box<dyn FnMut(Counted<ChildFailed>) -> Counted<Control>>;

/// How to start a child. The constructor restores the child from what its parent keeps for it
/// (a slot, a checkpoint), so every restart starts from the last checkpoint; the child's
/// [`Handle`] is pointed at each new incarnation.
pub struct ChildSpec {
    pub path: String,
    start: Starter,
}

impl ChildSpec {
    /// A child started on the parent's arbiter.
    pub fn new<A, F>(path: impl Into<String>, handle: &Handle<A>, mut make: F) -> Self
    where
        A: Supervised + Handler<Control>,
        F: FnMut(Counted<ChildFailed>) -> A + 'static,
    {
        let handle = handle.clone();
        let start: Starter = Box::new(move |parent| {
            let actor = make(parent);
            let stats = actor.stats().clone();
            // Before the address exists, so nothing sent to the new incarnation is forgotten.
            stats.new_incarnation();
            let m = Mailbox::new(actor.start(), stats);
            handle.set(Some(m.clone()));
            m.recipient()
        });
        Self { path: path.into(), start }
    }

    /// A child started on another arbiter (chosen per incarnation by `arbiter`) and made there:
    /// `make` gives the constructor to run on it. `stats` are the child's counters.
    pub fn in_arbiter<A, F, C, G>(
        path: impl Into<String>,
        handle: &Handle<A>,
        stats: Arc<Stats>,
        mut arbiter: G,
        mut make: F,
    ) -> Self
    where
        A: Supervised + Handler<Control>,
        F: FnMut(Counted<ChildFailed>) -> C + 'static,
        C: FnOnce() -> A + Send + 'static,
        G: FnMut() -> ArbiterHandle + 'static,
    {
        let handle = handle.clone();
        let start: Starter = Box::new(move |parent| {
            let construct = make(parent);
            stats.new_incarnation();
            let m = Mailbox::new(A::start_in_arbiter(&arbiter(), move |_| construct()), stats.clone());
            handle.set(Some(m.clone()));
            m.recipient()
        });
        Self { path: path.into(), start }
    }
}

/// Which children restart when one fails (OTP's strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Only the failed child: the children are independent.
    OneForOne,
    /// All children: their states must agree.
    OneForAll,
    /// The failed child and those started after it: later children depend on earlier ones.
    RestForOne,
}

/// What a supervisor does when a child fails past its restart intensity (the child is stopped for
/// good and the escalation recorded either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escalation {
    /// Keep running without that child (a team goes on when one driver's session is given up).
    Record,
    /// Fail too: the supervisor's own parent restarts it (with all its children) or escalates.
    Fail,
}

/// What [`Supervisor::child_failed`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// These children were restarted.
    Restarted(Vec<String>),
    /// The child was stopped for good; the supervisor goes on.
    GaveUp(String),
    /// The child was stopped for good and the supervisor must fail with this reason (it is done by
    /// [`Supervisor::escalate`]).
    Escalate(String),
    /// Not a child of this supervisor (an old incarnation's report, or a stopped child's).
    Unknown,
}

struct Entry {
    spec: ChildSpec,
    /// The running incarnation's controls; `None` while stopped.
    control: Option<Counted<Control>>,
    tracker: RestartTracker,
    given_up_at: Option<Instant>,
}

/// The children of one parent actor and their restarts: the one supervisor implementation. The
/// parent owns it, hands it every [`ChildFailed`] and calls [`Supervisor::stop_all`] when it stops.
pub struct Supervisor {
    registry: Registry,
    stats: Arc<Stats>,
    strategy: Strategy,
    escalation: Escalation,
    policy: RestartPolicy,
    /// In start order (rest-for-one restarts those after the failed one).
    children: Vec<Entry>,
}

impl Supervisor {
    /// The supervisor of the actor whose counters are `stats`.
    pub fn new(
        registry: Registry,
        stats: Arc<Stats>,
        strategy: Strategy,
        escalation: Escalation,
        policy: RestartPolicy,
    ) -> Self {
        Self { registry, stats, strategy, escalation, policy, children: Vec::new() }
    }

    /// One-for-one under the system's restart policy: what each parent in the tree uses.
    pub fn one_for_one(env: &crate::system::Env, stats: Arc<Stats>, escalation: Escalation) -> Self {
        Self::new(env.registry.clone(), stats, Strategy::OneForOne, escalation, env.policy)
    }

    fn find(&self, path: &str) -> Option<usize> {
        self.children.iter().position(|e| e.spec.path == path)
    }

    /// Adds a child (replacing one at the same path, which is stopped) and starts it.
    pub fn start_child(&mut self, spec: ChildSpec, me: &Counted<ChildFailed>) {
        if let Some(i) = self.find(&spec.path) {
            let mut old = self.children.remove(i);
            if let Some(c) = old.control.take() {
                c.do_send(Control::Retire);
            }
        }
        let mut e = Entry { spec, control: None, tracker: RestartTracker::default(), given_up_at: None };
        e.control = Some((e.spec.start)(me.clone()));
        self.children.push(e);
    }

    /// Starts a known child again that is stopped (given up on more than `period` ago); `false` if
    /// there is no such child or it was given up on within the period. A child that stopped by
    /// failing is left alone: its report is on the way and the restart follows it.
    pub fn revive(&mut self, path: &str, me: &Counted<ChildFailed>) -> bool {
        let period = self.policy.period;
        let Some(e) = self.find(path).and_then(|i| self.children.get_mut(i)) else { return false };
        if e.given_up_at.is_some_and(|t| t.elapsed() < period) {
            return false;
        }
        if e.control.is_none() {
            e.given_up_at = None;
            e.control = Some((e.spec.start)(me.clone()));
        }
        true
    }

    /// Whether `path` is a child given up on within the policy's period.
    pub fn given_up(&self, path: &str) -> bool {
        let period = self.policy.period;
        self.find(path)
            .and_then(|i| self.children.get(i))
            .is_some_and(|e| e.given_up_at.is_some_and(|t| t.elapsed() < period))
    }

    pub fn contains(&self, path: &str) -> bool {
        self.find(path).is_some()
    }

    /// A child failed: restart it (and its siblings, by the strategy) within the policy, or stop
    /// it for good and escalate.
    pub fn child_failed(&mut self, msg: &ChildFailed, me: &Counted<ChildFailed>) -> Outcome {
        let Some(i) = self.find(&msg.path) else { return Outcome::Unknown };
        let policy = self.policy;
        let child_stats = self.registry.register(&msg.path, "child");
        let Some(e) = self.children.get_mut(i) else { return Outcome::Unknown };
        if e.control.is_none() {
            return Outcome::Unknown;
        }
        if !e.tracker.allow(&policy) {
            e.control = None;
            e.given_up_at = Some(Instant::now());
            child_stats.set_status(ActorStatus::Stopped);
            let what = format!("{}: {}", msg.path, msg.reason);
            self.stats.record_escalation(what.clone());
            tracing::error!(path = %msg.path, reason = %msg.reason, "child exceeded its restart intensity; stopped");
            return match self.escalation {
                Escalation::Record => Outcome::GaveUp(msg.path.clone()),
                Escalation::Fail => {
                    Outcome::Escalate(format!("child exceeded its restart intensity: {what}"))
                }
            };
        }
        let range = match self.strategy {
            Strategy::OneForOne => i..i + 1,
            Strategy::OneForAll => 0..self.children.len(),
            Strategy::RestForOne => i..self.children.len(),
        };
        let mut restarted = Vec::new();
        for j in range {
            let Some(e) = self.children.get_mut(j) else { continue };
            if j != i {
                // A sibling restarts with it; one given up on stays stopped.
                let Some(c) = e.control.take() else { continue };
                c.do_send(Control::Retire);
            }
            let reason = if j == i {
                msg.reason.clone()
            } else {
                format!("restarted with {} ({:?})", msg.path, self.strategy)
            };
            self.registry.register(&e.spec.path, "child").record_restart(&reason);
            e.control = Some((e.spec.start)(me.clone()));
            restarted.push(e.spec.path.clone());
        }
        tracing::info!(path = %msg.path, ?restarted, "restarted");
        Outcome::Restarted(restarted)
    }

    /// Stops one child for good and forgets it (and its subtree in the registry).
    pub fn stop_child(&mut self, path: &str) {
        if let Some(i) = self.find(path) {
            let mut e = self.children.remove(i);
            Self::stop(&self.registry, &mut e);
            self.registry.remove_subtree(path);
        }
    }

    /// Stops every child (the parent is stopping); each stops its own children in turn.
    pub fn stop_all(&mut self) {
        for e in &mut self.children {
            Self::stop(&self.registry, e);
        }
    }

    fn stop(registry: &Registry, e: &mut Entry) {
        if let Some(c) = e.control.take() {
            // The status is set here, now: if the parent is being restarted, the child's next
            // incarnation may start before this one handles its last message.
            if let Some(s) = registry.get(&e.spec.path) {
                s.set_status(ActorStatus::Stopped);
            }
            c.do_send(Control::Retire);
        }
    }

    /// Fails the supervising actor after [`Outcome::Escalate`]: it stops (and so stops its
    /// children) and its own parent decides.
    pub fn escalate<A: Supervised>(actor: &A, ctx: &mut Context<A>, reason: String) {
        let (stats, parent) = (actor.stats().clone(), actor.parent().clone());
        fail::<A>(ctx, &stats, &parent, reason);
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

    mod tree {
        //! The library with test actors, no sockets: workers that keep a count checkpointed in
        //! their parent's slot, and bosses that supervise them (and each other).
        use std::rc::Rc;
        use std::sync::Mutex;

        use super::super::*;

        struct Worker {
            stats: Arc<Stats>,
            parent: Counted<ChildFailed>,
            slot: Arc<Mutex<u32>>,
            n: u32,
        }

        impl Actor for Worker {
            type Context = Context<Self>;

            fn started(&mut self, ctx: &mut Context<Self>) {
                self.stats.started();
                self.stats.set_control(ctx.address().recipient());
            }
        }

        impl Supervised for Worker {
            fn stats(&self) -> &Arc<Stats> {
                &self.stats
            }
            fn parent(&self) -> &Counted<ChildFailed> {
                &self.parent
            }
        }

        #[derive(Message)]
        #[rtype(result = "u32")]
        struct Add(u32);

        impl Handler<Add> for Worker {
            type Result = u32;

            fn handle(&mut self, msg: Add, ctx: &mut Context<Self>) -> u32 {
                self.guard(ctx, |w, _| {
                    w.n += msg.0;
                    *w.slot.lock().map_err(|_| Fatal("slot".into()))? = w.n;
                    Ok(w.n)
                })
                .unwrap_or_default()
            }
        }

        #[derive(Message)]
        #[rtype(result = "()")]
        struct Crash;

        impl Handler<Crash> for Worker {
            type Result = ();

            fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
                let _ = self.guard(ctx, |_, _| -> Result<(), Fatal> { Err(Fatal("crash".into())) });
            }
        }

        supervised_control!(Worker);

        fn worker(registry: &Registry, path: &str, handle: &Handle<Worker>) -> Build {
            let (registry, path, handle) = (registry.clone(), path.to_owned(), handle.clone());
            let slot = Arc::new(Mutex::new(0));
            Rc::new(move || {
                let (registry, path2, slot) = (registry.clone(), path.clone(), slot.clone());
                ChildSpec::new(path.clone(), &handle, move |parent| {
                    let n = slot.lock().map(|n| *n).unwrap_or(0);
                    let stats = registry.register(&path2, "worker");
                    Worker { stats, parent, slot: slot.clone(), n }
                })
            })
        }

        type Build = Rc<dyn Fn() -> ChildSpec>;

        struct Boss {
            stats: Arc<Stats>,
            parent: Counted<ChildFailed>,
            sup: Supervisor,
            kids: Vec<Build>,
        }

        impl Actor for Boss {
            type Context = Context<Self>;

            fn started(&mut self, ctx: &mut Context<Self>) {
                self.stats.started();
                self.stats.set_control(ctx.address().recipient());
                let me = self.me(ctx).recipient();
                for k in &self.kids {
                    self.sup.start_child(k(), &me);
                }
            }

            fn stopped(&mut self, _: &mut Context<Self>) {
                self.sup.stop_all();
            }
        }

        impl Supervised for Boss {
            fn stats(&self) -> &Arc<Stats> {
                &self.stats
            }
            fn parent(&self) -> &Counted<ChildFailed> {
                &self.parent
            }
        }

        impl Handler<ChildFailed> for Boss {
            type Result = ();

            fn handle(&mut self, msg: ChildFailed, ctx: &mut Context<Self>) {
                self.handled();
                let me = self.me(ctx).recipient();
                if let Outcome::Escalate(reason) = self.sup.child_failed(&msg, &me) {
                    Supervisor::escalate(self, ctx, reason);
                }
            }
        }

        supervised_control!(Boss);

        fn boss(
            registry: &Registry,
            path: &str,
            handle: &Handle<Boss>,
            strategy: Strategy,
            escalation: Escalation,
            intensity: u32,
            kids: Vec<Build>,
        ) -> Build {
            let (registry, path, handle) = (registry.clone(), path.to_owned(), handle.clone());
            Rc::new(move || {
                let (registry, path2, kids) = (registry.clone(), path.clone(), kids.clone());
                ChildSpec::new(path.clone(), &handle, move |parent| {
                    let stats = registry.register(&path2, "boss");
                    let policy = RestartPolicy { intensity, period: Duration::from_secs(60) };
                    let sup = Supervisor::new(registry.clone(), stats.clone(), strategy, escalation, policy);
                    Boss { stats, parent, sup, kids: kids.clone() }
                })
            })
        }

        /// Stands for the runtime's parent: collects what the root escalates.
        struct Top(Arc<Mutex<Vec<String>>>);

        impl Actor for Top {
            type Context = Context<Self>;
        }

        impl Handler<ChildFailed> for Top {
            type Result = ();

            fn handle(&mut self, msg: ChildFailed, _: &mut Context<Self>) {
                if let Ok(mut v) = self.0.lock() {
                    v.push(msg.path);
                }
            }
        }

        /// Starts `root` under a [`Top`]; gives what reached the top.
        fn start(root: Build) -> Arc<Mutex<Vec<String>>> {
            let seen = Arc::new(Mutex::new(vec![]));
            let top = Top(seen.clone()).start();
            let mut spec = root();
            let _ = (spec.start)(top.recipient().into());
            seen
        }

        async fn until(what: &str, f: impl Fn() -> bool) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !f() {
                assert!(Instant::now() < deadline, "timed out: {what}");
                actix_rt::time::sleep(Duration::from_millis(5)).await;
            }
        }

        fn restarts(r: &Registry, path: &str) -> u32 {
            r.get(path).map_or(0, |s| s.restarts())
        }

        fn escalations(r: &Registry, path: &str) -> u32 {
            r.get(path).map_or(0, |s| s.escalations())
        }

        fn status(r: &Registry, path: &str) -> Option<ActorStatus> {
            r.get(path).map(|s| s.status())
        }

        #[actix_rt::test]
        async fn a_restart_restores_the_checkpoint_and_the_handle_follows_it() {
            let r = Registry::new("t");
            let (w, other, b) = (Handle::default(), Handle::default(), Handle::default());
            let kids = vec![worker(&r, "/b/w", &w), worker(&r, "/b/other", &other)];
            start(boss(&r, "/b", &b, Strategy::OneForOne, Escalation::Record, 5, kids));
            until("worker up", || w.connected()).await;
            assert_eq!(w.send(Add(2)).await.unwrap(), 2);
            assert_eq!(other.send(Add(7)).await.unwrap(), 7);
            w.do_send(Crash);
            until("restarted", || restarts(&r, "/b/w") == 1 && w.connected()).await;
            // The same handle reaches the new incarnation, which starts from the checkpoint.
            assert_eq!(w.send(Add(3)).await.unwrap(), 5);
            assert_eq!(r.get("/b/w").unwrap().counters().failed, 1);
            // One-for-one: the sibling kept running.
            assert_eq!(restarts(&r, "/b/other"), 0);
            assert_eq!(other.send(Add(1)).await.unwrap(), 8);
        }

        #[actix_rt::test]
        async fn past_the_intensity_a_child_is_stopped_and_the_escalation_recorded() {
            let r = Registry::new("t");
            let (w, b) = (Handle::default(), Handle::default());
            let seen = start(boss(
                &r,
                "/b",
                &b,
                Strategy::OneForOne,
                Escalation::Record,
                1,
                vec![worker(&r, "/b/w", &w)],
            ));
            until("worker up", || w.connected()).await;
            w.do_send(Crash);
            until("restarted", || restarts(&r, "/b/w") == 1 && w.connected()).await;
            w.do_send(Crash);
            until("given up", || status(&r, "/b/w") == Some(ActorStatus::Stopped)).await;
            assert_eq!(escalations(&r, "/b"), 1);
            assert!(r.get("/b").unwrap().last_escalation().unwrap().contains("/b/w: crash"));
            assert!(w.send(Add(1)).await.is_err(), "no incarnation after it was given up");
            // Record: the boss goes on.
            assert_eq!(status(&r, "/b"), Some(ActorStatus::Running));
            assert!(seen.lock().unwrap().is_empty());
        }

        #[actix_rt::test]
        async fn a_supervisor_past_its_intensity_escalates_two_levels_up() {
            let r = Registry::new("t");
            let (w, low, mid, root) =
                (Handle::default(), Handle::default(), Handle::default(), Handle::default());
            let low_b = boss(
                &r,
                "/root/mid/low",
                &low,
                Strategy::OneForOne,
                Escalation::Fail,
                0,
                vec![worker(&r, "/root/mid/low/w", &w)],
            );
            let mid_b = boss(&r, "/root/mid", &mid, Strategy::OneForOne, Escalation::Fail, 0, vec![low_b]);
            let seen =
                start(boss(&r, "/root", &root, Strategy::OneForOne, Escalation::Record, 5, vec![mid_b]));
            until("worker up", || w.connected()).await;
            assert_eq!(w.send(Add(4)).await.unwrap(), 4);
            let first_mid = mid.get().unwrap();
            w.do_send(Crash);
            // The worker's boss gives up at once and fails, so does its boss; the root restarts it.
            until("mid restarted", || restarts(&r, "/root/mid") == 1).await;
            assert_eq!(escalations(&r, "/root/mid/low"), 1);
            assert_eq!(escalations(&r, "/root/mid"), 1);
            assert!(r.get("/root/mid").unwrap().last_reason().unwrap().contains("restart intensity"));
            assert_eq!(escalations(&r, "/root"), 0);
            until("worker back", || w.connected() && mid.connected()).await;
            assert!(!first_mid.connected());
            assert_eq!(w.send(Add(1)).await.unwrap(), 5, "the subtree came back from its checkpoints");
            assert!(seen.lock().unwrap().is_empty());
        }

        #[actix_rt::test]
        async fn stopping_a_supervisor_stops_its_subtree() {
            let r = Registry::new("t");
            let (w, mid, root) = (Handle::default(), Handle::default(), Handle::default());
            let mid_b = boss(
                &r,
                "/root/mid",
                &mid,
                Strategy::OneForOne,
                Escalation::Fail,
                1,
                vec![worker(&r, "/root/mid/w", &w)],
            );
            start(boss(&r, "/root", &root, Strategy::OneForOne, Escalation::Record, 1, vec![mid_b]));
            until("up", || w.connected()).await;
            assert!(r.get("/root").unwrap().control(Control::Stop));
            until("all stopped", || !w.connected() && !mid.connected() && !root.connected()).await;
            for p in ["/root", "/root/mid", "/root/mid/w"] {
                assert_eq!(status(&r, p), Some(ActorStatus::Stopped), "{p}");
                assert_eq!(restarts(&r, p), 0, "{p}");
            }
        }

        async fn three_under(strategy: Strategy) -> (Registry, [Handle<Worker>; 3]) {
            let r = Registry::new("t");
            let hs: [Handle<Worker>; 3] = Default::default();
            let kids =
                vec![worker(&r, "/b/1", &hs[0]), worker(&r, "/b/2", &hs[1]), worker(&r, "/b/3", &hs[2])];
            start(boss(&r, "/b", &Handle::default(), strategy, Escalation::Record, 5, kids));
            until("up", || hs.iter().all(|h| h.connected())).await;
            for (i, h) in hs.iter().enumerate() {
                assert_eq!(h.send(Add(10 + i as u32)).await.unwrap(), 10 + i as u32);
            }
            hs[1].do_send(Crash);
            (r, hs)
        }

        #[actix_rt::test]
        async fn one_for_all_restarts_every_child_from_its_checkpoint() {
            let (r, hs) = three_under(Strategy::OneForAll).await;
            until("all restarted", || ["/b/1", "/b/2", "/b/3"].iter().all(|p| restarts(&r, p) == 1)).await;
            assert!(r.get("/b/1").unwrap().last_reason().unwrap().contains("restarted with /b/2"));
            for (i, h) in hs.iter().enumerate() {
                assert_eq!(h.send(Add(0)).await.unwrap(), 10 + i as u32);
            }
        }

        #[actix_rt::test]
        async fn rest_for_one_restarts_the_failed_child_and_those_after_it() {
            let (r, hs) = three_under(Strategy::RestForOne).await;
            until("restarted", || restarts(&r, "/b/2") == 1 && restarts(&r, "/b/3") == 1).await;
            until("back", || hs.iter().all(|h| h.connected())).await;
            assert_eq!(restarts(&r, "/b/1"), 0);
            assert_eq!(hs[2].send(Add(1)).await.unwrap(), 13);
            assert_eq!(hs[0].send(Add(1)).await.unwrap(), 11);
        }
    }
}
