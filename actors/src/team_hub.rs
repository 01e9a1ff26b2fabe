//! TeamHub: a team's fan-out point. Dashboards subscribe here; they get the live-sample channels
//! of the team's drivers (`watch` receivers: each subscriber reads the latest sample at its own rate,
//! so a slow one never queues anything) and the team's events (messages, handoffs, coaching, driver
//! status, laps) pushed with `try_send` into their bounded mailboxes: a stalled subscriber loses
//! events (counted), it never grows the server's memory or slows anyone. Driver nodes subscribe
//! too, as the node of one driver: they get only what is addressed to that driver's node (the
//! coach's spoken tip), never the team's traffic. Its state lives in a slot
//! that survives restarts, so subscribers stay subscribed. Reads no env vars.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use bytes::Bytes;
use pitbox_schema::wire::Envelope;
use tokio::sync::watch;

use crate::driver_session::Latest;
use crate::mailbox::Counted;
use crate::registry::Stats;
use crate::supervision::{ChildFailed, Fatal, Handle, Supervised};
use crate::system::Env;

/// What a subscriber receives from the hub.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub enum Push {
    Event(Arc<Envelope>),
    /// A driver of the team appeared; read its samples from this channel.
    DriverJoined(String, watch::Receiver<Latest>),
    /// For a driver's node: a message and the binary media frame that belongs to it (a
    /// `voice_say` and its clip), sent in this order.
    WithMedia(Arc<Envelope>, Bytes),
}

#[derive(Message)]
#[rtype(result = "Vec<(String, watch::Receiver<Latest>)>")]
pub struct Subscribe {
    pub id: u64,
    pub events: Counted<Push>,
}

/// A driver node's socket subscribes for what is addressed to its driver's node.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeNode {
    pub id: u64,
    pub driver_id: String,
    pub events: Counted<Push>,
}

/// Pushes an event to the node sockets of one driver only.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ToNode {
    pub driver_id: String,
    pub envelope: Arc<Envelope>,
    /// A binary media frame sent right after the envelope.
    pub media: Option<Bytes>,
}

/// A subscription id for a subscriber that is not a socket (the cluster's publisher, a voice
/// channel): one counter for all of them, far above the sockets' connection ids (which count up
/// from 1). Ids must never be shared: a second subscription under an id replaces the first (two
/// counters, each from the same start, once let a voice channel silently take a cluster
/// publisher's place, and its team's events stopped reaching the other nodes).
pub fn internal_subscriber_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 62);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub id: u64,
}

/// Pushes an event to every subscriber of the team.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Broadcast(pub Arc<Envelope>);

#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RegisterDriver {
    pub driver_id: String,
    pub latest: watch::Receiver<Latest>,
}

#[derive(Default)]
pub struct HubShared {
    subscribers: HashMap<u64, Counted<Push>>,
    /// Node sockets, by connection id: the driver each speaks for.
    nodes: HashMap<u64, (String, Counted<Push>)>,
    drivers: BTreeMap<String, watch::Receiver<Latest>>,
    /// Events a full subscriber mailbox could not take.
    pub dropped: u64,
}

pub type HubSlot = Arc<Mutex<HubShared>>;

/// The team's current hub, shared with the driver sessions so that they follow a hub restart.
pub type HubRef = Handle<TeamHub>;

impl Handle<TeamHub> {
    pub fn broadcast(&self, env: Envelope) {
        if let Some(h) = self.get() {
            h.do_send(Broadcast(Arc::new(env)));
        }
    }

    /// Sends to the node sockets of `driver_id` only.
    pub fn to_node(&self, driver_id: &str, env: Envelope) {
        if let Some(h) = self.get() {
            h.do_send(ToNode { driver_id: driver_id.to_owned(), envelope: Arc::new(env), media: None });
        }
    }

    /// Sends to the node sockets of `driver_id` only, with a media frame after the envelope.
    pub fn to_node_with(&self, driver_id: &str, env: Envelope, media: Option<Bytes>) {
        if let Some(h) = self.get() {
            h.do_send(ToNode { driver_id: driver_id.to_owned(), envelope: Arc::new(env), media });
        }
    }
}

pub struct TeamHub {
    stats: Arc<Stats>,
    parent: Counted<ChildFailed>,
    shared: HubSlot,
}

impl TeamHub {
    pub fn new(env: &Env, team_id: &str, parent: Counted<ChildFailed>, shared: HubSlot) -> Self {
        let stats = env.registry.register(&format!("/teams/{team_id}/hub"), "team_hub");
        Self { stats, parent, shared }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HubShared) -> R) -> Result<R, Fatal> {
        let mut g = self.shared.lock().map_err(|_| Fatal("hub state poisoned".into()))?;
        Ok(f(&mut g))
    }

    fn push_all(shared: &mut HubShared, push: &Push) {
        let mut gone = vec![];
        for (id, r) in &shared.subscribers {
            match r.try_send(push.clone()) {
                Ok(()) => {}
                Err(SendError::Full(_)) => shared.dropped += 1,
                Err(SendError::Closed(_)) => gone.push(*id),
            }
        }
        for id in gone {
            shared.subscribers.remove(&id);
        }
    }

    fn run<R>(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut Self) -> Result<R, Fatal>,
    ) -> Option<R> {
        self.guard(ctx, |hub, _| f(hub)).ok()
    }
}

impl Supervised for TeamHub {
    fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }
    fn parent(&self) -> &Counted<ChildFailed> {
        &self.parent
    }
}

impl Actor for TeamHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.stats.started();
        self.stats.set_control(ctx.address().recipient());
        ctx.set_mailbox_capacity(100_000);
    }
}

impl Handler<Subscribe> for TeamHub {
    type Result = MessageResult<Subscribe>;

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) -> Self::Result {
        let drivers = self.run(ctx, |hub| {
            hub.with(|s| {
                s.subscribers.insert(msg.id, msg.events);
                s.drivers.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>()
            })
        });
        MessageResult(drivers.unwrap_or_default())
    }
}

impl Handler<Unsubscribe> for TeamHub {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, ctx: &mut Context<Self>) {
        self.run(ctx, |hub| {
            hub.with(|s| {
                s.subscribers.remove(&msg.id);
                s.nodes.remove(&msg.id);
            })
        });
    }
}

impl Handler<SubscribeNode> for TeamHub {
    type Result = ();

    fn handle(&mut self, msg: SubscribeNode, ctx: &mut Context<Self>) {
        self.run(ctx, |hub| {
            hub.with(|s| {
                s.nodes.insert(msg.id, (msg.driver_id, msg.events));
            })
        });
    }
}

impl Handler<ToNode> for TeamHub {
    type Result = ();

    fn handle(&mut self, msg: ToNode, ctx: &mut Context<Self>) {
        self.run(ctx, |hub| {
            hub.with(|s| {
                let mut gone = vec![];
                for (id, (driver, r)) in &s.nodes {
                    if *driver != msg.driver_id {
                        continue;
                    }
                    let push = match &msg.media {
                        Some(m) => Push::WithMedia(msg.envelope.clone(), m.clone()),
                        None => Push::Event(msg.envelope.clone()),
                    };
                    match r.try_send(push) {
                        Ok(()) => {}
                        Err(SendError::Full(_)) => s.dropped += 1,
                        Err(SendError::Closed(_)) => gone.push(*id),
                    }
                }
                for id in gone {
                    s.nodes.remove(&id);
                }
            })
        });
    }
}

impl Handler<Broadcast> for TeamHub {
    type Result = ();

    fn handle(&mut self, msg: Broadcast, ctx: &mut Context<Self>) {
        self.run(ctx, |hub| hub.with(|s| Self::push_all(s, &Push::Event(msg.0))));
    }
}

impl Handler<RegisterDriver> for TeamHub {
    type Result = ();

    fn handle(&mut self, msg: RegisterDriver, ctx: &mut Context<Self>) {
        self.run(ctx, |hub| {
            hub.with(|s| {
                s.drivers.insert(msg.driver_id.clone(), msg.latest.clone());
                Self::push_all(s, &Push::DriverJoined(msg.driver_id, msg.latest));
            })
        });
    }
}

crate::supervised_control!(TeamHub);
