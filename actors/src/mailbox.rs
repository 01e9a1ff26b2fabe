//! Counting addresses, so the admin tree's `mailbox` is a real queue length. actix keeps the length
//! of an actor's mailbox private, so every sender to a supervised actor goes through [`Mailbox`]
//! (an `Addr<A>`) or [`Counted`] (a `Recipient<M>`): they count the message in the actor's
//! [`Stats`] when it is queued, before it reaches the mailbox; the actor's guarded handler counts it
//! handled or failed, which takes it off the queue. A message that cannot be queued (the actor is
//! gone, or its mailbox is full) is not counted. Both wrappers have the methods of the actix types
//! they wrap (`do_send`, `try_send`, `send`, `connected`), so call sites read the same.
//! Reads no env vars.

use std::future::Future;
use std::sync::Arc;

use actix::dev::ToEnvelope;
use actix::prelude::*;

use crate::registry::Stats;

/// The address of a supervised actor that counts what is queued for it.
pub struct Mailbox<A: Actor> {
    addr: Addr<A>,
    stats: Arc<Stats>,
}

impl<A: Actor> Clone for Mailbox<A> {
    fn clone(&self) -> Self {
        Self { addr: self.addr.clone(), stats: self.stats.clone() }
    }
}

impl<A: Actor> std::fmt::Debug for Mailbox<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox").field("path", &self.stats.path).finish()
    }
}

impl<A: Actor> Mailbox<A> {
    /// Wraps the address of the actor whose counters are `stats`.
    pub fn new(addr: Addr<A>, stats: Arc<Stats>) -> Self {
        Self { addr, stats }
    }

    /// Whether the actor (this incarnation of it) is still running.
    pub fn connected(&self) -> bool {
        self.addr.connected()
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Queues `msg`, ignoring the mailbox's capacity (as [`Addr::do_send`]).
    pub fn do_send<M>(&self, msg: M)
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        count_queued(Some(&self.stats), self.addr.connected());
        self.addr.do_send(msg);
    }

    /// Queues `msg` if the mailbox has room (as [`Addr::try_send`]).
    pub fn try_send<M>(&self, msg: M) -> Result<(), SendError<M>>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        try_counted(Some(&self.stats), || self.addr.try_send(msg))
    }

    /// Queues `msg` and waits for the answer (as [`Addr::send`]).
    pub fn send<M>(&self, msg: M) -> impl Future<Output = Result<M::Result, MailboxError>> + 'static
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        count_queued(Some(&self.stats), self.addr.connected());
        self.addr.send(msg)
    }

    /// A counting recipient of one message type.
    pub fn recipient<M>(&self) -> Counted<M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        Counted { r: self.addr.clone().recipient(), stats: Some(self.stats.clone()) }
    }
}

/// A recipient that counts what is queued for it when it is a supervised actor; made from a plain
/// `Recipient` (a socket, outside the tree) it counts nothing.
pub struct Counted<M: Message + Send>
where
    M::Result: Send,
{
    r: Recipient<M>,
    stats: Option<Arc<Stats>>,
}

impl<M: Message + Send> Clone for Counted<M>
where
    M::Result: Send,
{
    fn clone(&self) -> Self {
        Self { r: self.r.clone(), stats: self.stats.clone() }
    }
}

impl<M: Message + Send> std::fmt::Debug for Counted<M>
where
    M::Result: Send,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counted").field("path", &self.stats.as_ref().map(|s| s.path.as_str())).finish()
    }
}

impl<M: Message + Send> From<Recipient<M>> for Counted<M>
where
    M::Result: Send,
{
    fn from(r: Recipient<M>) -> Self {
        Self { r, stats: None }
    }
}

impl<M: Message + Send + 'static> Counted<M>
where
    M::Result: Send,
{
    /// A recipient counted in `stats` (for an actor that hands out its own address).
    pub fn new(r: Recipient<M>, stats: Arc<Stats>) -> Self {
        Self { r, stats: Some(stats) }
    }

    pub fn connected(&self) -> bool {
        self.r.connected()
    }

    pub fn do_send(&self, msg: M) {
        count_queued(self.stats.as_deref(), self.r.connected());
        self.r.do_send(msg);
    }

    pub fn try_send(&self, msg: M) -> Result<(), SendError<M>> {
        try_counted(self.stats.as_deref(), || self.r.try_send(msg))
    }

    pub fn send(&self, msg: M) -> impl Future<Output = Result<M::Result, MailboxError>> + 'static {
        count_queued(self.stats.as_deref(), self.r.connected());
        self.r.send(msg)
    }
}

/// Counts a message about to be queued. One to an actor that is gone is dropped by actix, so it
/// must not count as queued.
fn count_queued(stats: Option<&Stats>, connected: bool) {
    if let Some(s) = stats.filter(|_| connected) {
        s.received();
    }
}

/// A `try_send` that is counted: first, because the handler, on another thread, may take the
/// message off before `try_send` returns; undone when the mailbox refuses it.
fn try_counted<E>(stats: Option<&Stats>, send: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
    if let Some(s) = stats {
        s.received();
    }
    let r = send();
    if let (Err(_), Some(s)) = (&r, stats) {
        s.unreceived();
    }
    r
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::registry::Registry;

    /// A test actor whose handler blocks while `gate` is closed.
    struct Slow {
        stats: Arc<Stats>,
        gate: Arc<AtomicBool>,
    }

    impl Actor for Slow {
        type Context = Context<Self>;
    }

    #[derive(Message)]
    #[rtype(result = "u32")]
    struct Work(u32);

    impl Handler<Work> for Slow {
        type Result = u32;

        fn handle(&mut self, msg: Work, _: &mut Context<Self>) -> u32 {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self.gate.load(Ordering::Acquire) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            self.stats.handled();
            msg.0 * 2
        }
    }

    async fn depth_reaches(stats: &Stats, want: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while stats.mailbox() != want {
            assert!(Instant::now() < deadline, "mailbox stuck at {}, want {want}", stats.mailbox());
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[actix_rt::test]
    async fn the_mailbox_grows_while_the_handler_is_slow_and_drains_to_zero() {
        let registry = Registry::new("t");
        let stats = registry.register("/slow", "test");
        let gate = Arc::new(AtomicBool::new(false));
        // On its own thread, so a blocked handler does not block this test's runtime.
        let arbiter = Arbiter::new();
        let (s, g) = (stats.clone(), gate.clone());
        let mb = Mailbox::new(
            Slow::start_in_arbiter(&arbiter.handle(), move |_| Slow { stats: s, gate: g }),
            stats.clone(),
        );
        let r = mb.recipient::<Work>();
        for i in 0..50 {
            if i % 2 == 0 {
                mb.do_send(Work(i));
            } else {
                r.do_send(Work(i));
            }
        }
        // One message is being handled (blocked), the other 49 wait: at least 49 are queued.
        assert!(stats.mailbox() >= 49, "mailbox {}", stats.mailbox());
        let tree = registry.tree();
        assert!(tree.root[0].mailbox >= 49);
        gate.store(true, Ordering::Release);
        assert_eq!(mb.send(Work(21)).await.unwrap(), 42);
        depth_reaches(&stats, 0).await;
        let c = stats.counters();
        assert_eq!((c.received, c.handled), (51, 51));
        arbiter.stop();
    }

    #[actix_rt::test]
    async fn undeliverable_messages_are_not_counted() {
        let registry = Registry::new("t");
        let stats = registry.register("/gone", "test");
        let gate = Arc::new(AtomicBool::new(true));
        let (s, g) = (stats.clone(), gate.clone());
        let live = Mailbox::new(Slow { stats: s, gate: g }.start(), stats.clone());
        assert_eq!(live.send(Work(1)).await.unwrap(), 2);
        // An actor that stopped at once: nothing sent to it is queued.
        let dead = Mailbox::new(
            Slow::create(|ctx| {
                ctx.stop();
                Slow { stats: stats.clone(), gate: gate.clone() }
            }),
            stats.clone(),
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while dead.connected() {
            assert!(Instant::now() < deadline);
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        dead.do_send(Work(1));
        assert!(dead.try_send(Work(1)).is_err());
        assert!(dead.send(Work(1)).await.is_err());
        dead.recipient::<Work>().do_send(Work(1));
        assert_eq!(stats.mailbox(), 0);
        assert_eq!(stats.counters().received, 1);
    }
}
