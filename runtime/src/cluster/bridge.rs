//! What crosses nodes over core NATS, on subjects derived from actor paths
//! ([`ActorPath::subject`]):
//!
//! | subject | what | who |
//! | --- | --- | --- |
//! | `pitbox.teams.{team}.drivers.{driver}` | a driver node's telemetry batch or sim session mark ([`DriverRequest`]), as a request; the reply is [`Forwarded`] | a non-owner asks, the owner's [`respond`] answers after commit |
//! | `pitbox.teams.{team}.drivers.{driver}.live` | the driver's live samples, each batch as the hub's feeds see it | the owner's [`Publisher`], every follower's [`mirror`] |
//! | `pitbox.teams.{team}.hub` | the team's hub events (laps, coaching, messages, driver status) | the same |
//! | `pitbox.teams.{team}.hub.in` | a team event made on another node (a message or handoff posted there), for the owner's hub | any node's [`Cluster::push_to_owner`], the owner's [`respond`] |
//!
//! Core NATS (not JetStream) for all three: the live feed is latest-wins anyway, and telemetry is
//! made durable by the driver node's spool and the acknowledgement after commit, not by the bus.
//! Reads no env vars.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use futures_util::StreamExt;
use pitbox_actors::driver_session::{DriverSession, Frames, IngestError, Latest, LiveSample, NodeSession};
use pitbox_actors::store_writer::AckTo;
use pitbox_actors::supervision::Handle;
use pitbox_actors::team_hub::{Broadcast, Push, RegisterDriver, Subscribe, Unsubscribe};
use pitbox_schema::wire::{ActorPath, Envelope, SimSession, TelemetryFrame, TelemetryUpdate};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, watch};

use super::Cluster;

/// How long a forwarded batch waits for the owner's answer (its commit included).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages waiting to be published by one team's publisher; beyond it the newest are dropped
/// (the live feed is latest-wins; events are lost for remote dashboards only, as for a full
/// dashboard mailbox on one node).
const PUBLISH_QUEUE: usize = 4096;

/// A driver node's telemetry batch, forwarded to the team's owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FramesRequest {
    pub driver_id: String,
    pub stream_id: Option<String>,
    pub frames: Vec<TelemetryFrame>,
    /// As [`Frames::after`]: the batch continues the node's previous one, which ended there.
    pub after: Option<u64>,
}

/// What a non-owner forwards for a driver node of the team, in the node's order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DriverRequest {
    Frames(FramesRequest),
    /// The node's sim session: named at authentication, or a `sim_session` mark (see
    /// [`pitbox_actors::driver_session::NodeSession`]).
    Session {
        driver_id: String,
        session: SimSession,
    },
}

impl DriverRequest {
    fn driver_id(&self) -> &str {
        match self {
            DriverRequest::Frames(f) => &f.driver_id,
            DriverRequest::Session { driver_id, .. } => driver_id,
        }
    }
}

/// The owner's answer to a [`DriverRequest`] (or the asker's word that no owner answered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Forwarded {
    /// Committed: acknowledge up to `seq`.
    Stored { seq: Option<u64>, fresh: usize },
    /// Frames that are not valid (the node drops them).
    Invalid(String),
    /// Not taken now (session restarting, storage busy, a gap): the node resends.
    Refused(String),
    /// No owner answered (it died, or gave the team up): the asker looks for the owner again.
    Unreachable(String),
}

fn driver_subject(team: &str, driver: &str) -> String {
    ActorPath::driver(team, driver).subject()
}

fn live_subject(team: &str, driver: &str) -> String {
    format!("{}.live", driver_subject(team, driver))
}

fn hub_subject(team: &str) -> String {
    ActorPath::hub(team).subject()
}

fn hub_in_subject(team: &str) -> String {
    format!("{}.in", hub_subject(team))
}

impl Cluster {
    /// Sends a node's batch to the team's owner and waits for its answer.
    pub async fn forward(&self, team: &str, req: FramesRequest) -> Forwarded {
        self.request(team, DriverRequest::Frames(req)).await
    }

    /// Sends a node's sim session to the team's owner, on the subject of its batches (so in their
    /// order), and waits until the owner's driver session took it (`Stored` with no seq).
    pub async fn forward_session(&self, team: &str, driver_id: &str, session: SimSession) -> Forwarded {
        self.request(team, DriverRequest::Session { driver_id: driver_id.to_owned(), session }).await
    }

    /// A team event made here (a message, a handoff) for a team another node owns: it goes to the
    /// owner's hub, and from there to every node's dashboards (this node's through its mirror).
    /// Best effort, as any live push: the event itself is stored already.
    pub async fn push_to_owner(&self, team: &str, env: &Envelope) {
        let payload = match serde_json::to_vec(env) {
            Ok(p) => p,
            Err(e) => return tracing::warn!(error = %e, "team event not encoded"),
        };
        match self.nats().publish(hub_in_subject(team), payload.into()).await {
            Ok(()) => tracing::debug!(team, "team event sent to the owner"),
            Err(e) => tracing::warn!(team, error = %e, "team event not sent to the owner"),
        }
    }

    async fn request(&self, team: &str, req: DriverRequest) -> Forwarded {
        let subject = driver_subject(team, req.driver_id());
        let payload = match serde_json::to_vec(&req) {
            Ok(p) => p,
            Err(e) => return Forwarded::Invalid(e.to_string()),
        };
        let request = async_nats::Request::new().payload(payload.into()).timeout(Some(FORWARD_TIMEOUT));
        match self.nats().send_request(subject, request).await {
            Ok(reply) => serde_json::from_slice(&reply.payload)
                .unwrap_or_else(|e| Forwarded::Refused(format!("unreadable answer from the owner: {e}"))),
            Err(e) => Forwarded::Unreachable(format!("the team's owner did not answer: {e}")),
        }
    }
}

/// The owner's side of forwarded telemetry: answers requests on the team's driver subjects by
/// handing the frames to the driver's session, replying once the store writer committed them.
/// Requests are handed over in the order they arrive; replies go out as commits complete. Team
/// events other nodes made go into the team's hub here.
pub async fn respond(cluster: Cluster, team: String) {
    let subject = format!("{}.drivers.*", ActorPath::team(team.as_str()).subject());
    let (sub, events) = (
        cluster.nats().subscribe(subject.clone()).await,
        cluster.nats().subscribe(hub_in_subject(&team)).await,
    );
    let (mut sub, mut events) = match (sub, events) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => {
            return tracing::error!(%subject, error = %e, "cannot answer forwarded telemetry")
        }
    };
    let mut sessions: HashMap<String, Handle<DriverSession>> = HashMap::new();
    loop {
        let msg = tokio::select! {
            msg = sub.next() => match msg {
                Some(m) => m,
                None => break,
            },
            event = events.next() => {
                let Some(event) = event else { break };
                match serde_json::from_slice::<Envelope>(&event.payload) {
                    Ok(env) => {
                        tracing::debug!(team, "team event from another node");
                        if let Err(e) = cluster.system().broadcast(&team, env).await {
                            tracing::warn!(team, error = %e, "team event from another node not pushed");
                        }
                    }
                    Err(e) => tracing::warn!(team, error = %e, "unreadable team event from another node"),
                }
                continue;
            }
        };
        let Some(reply_to) = msg.reply.clone() else { continue };
        let nats = cluster.nats().clone();
        let answer = move |a: Forwarded| {
            let nats = nats.clone();
            let to = reply_to.clone();
            async move {
                let body = serde_json::to_vec(&a).unwrap_or_default();
                let _ = nats.publish(to, body.into()).await;
            }
        };
        let req: DriverRequest = match serde_json::from_slice(&msg.payload) {
            Ok(r) => r,
            Err(e) => {
                answer(Forwarded::Invalid(format!("unreadable batch: {e}"))).await;
                continue;
            }
        };
        let session = match sessions.get(req.driver_id()).filter(|s| s.connected()) {
            Some(s) => s.clone(),
            None => match cluster.system().driver_handle(&team, req.driver_id()).await {
                Ok(s) => {
                    sessions.insert(req.driver_id().to_owned(), s.clone());
                    s
                }
                Err(e) => {
                    answer(Forwarded::Refused(e.to_string())).await;
                    continue;
                }
            },
        };
        let req = match req {
            DriverRequest::Frames(f) => f,
            DriverRequest::Session { session: mark, .. } => {
                let Some(place) = crate::ws::sim_place(&mark) else {
                    answer(Forwarded::Stored { seq: None, fresh: 0 }).await;
                    continue;
                };
                // Queued now, behind the batches before it.
                let sent = session.send(NodeSession { place, seq: mark.seq });
                actix_web::rt::spawn(async move {
                    answer(match sent.await {
                        Ok(Ok(_)) => Forwarded::Stored { seq: None, fresh: 0 },
                        Ok(Err(e)) => Forwarded::Refused(e),
                        Err(_) => Forwarded::Refused("driver session restarting".into()),
                    })
                    .await;
                });
                continue;
            }
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Queued now, in arrival order; the answer is awaited apart.
        let sent = session.send(Frames {
            stream_id: req.stream_id,
            frames: req.frames,
            after: req.after,
            ack: Some(AckTo::Once(tx)),
        });
        let reply = answer;
        actix_web::rt::spawn(async move {
            let outcome = match sent.await {
                Ok(Ok(fresh)) => match rx.await {
                    Ok(stored) => match stored.refused {
                        Some(why) => Forwarded::Refused(why),
                        None => Forwarded::Stored { seq: stored.seq, fresh },
                    },
                    Err(_) => Forwarded::Refused("not stored (the team moved); resend".into()),
                },
                Ok(Err(IngestError::Invalid(m))) => Forwarded::Invalid(m),
                Ok(Err(e)) => Forwarded::Refused(e.to_string()),
                Err(_) => Forwarded::Refused("driver session restarting; resend".into()),
            };
            reply(outcome).await;
        });
    }
}

/// Stops a [`Publisher`] (the team's lease is lost).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct StopPublisher;

/// The owner's publisher of one team: subscribed to the team's hub like a dashboard, it
/// publishes every hub event and every live sample batch (each sample once, in order) on the
/// team's subjects, through one queue so they leave in order.
pub struct Publisher {
    cluster: Cluster,
    team: String,
    /// The owner's fencing token, sent with everything: followers drop what a former owner (a
    /// paused node waking up) still publishes.
    token: i64,
    sub_id: u64,
    out: mpsc::Sender<(String, Bytes)>,
    hub: Option<pitbox_actors::mailbox::Mailbox<pitbox_actors::team_hub::TeamHub>>,
}

#[derive(Serialize)]
struct LiveOut<'a> {
    n: u64,
    update: &'a RawValue,
}

#[derive(Deserialize)]
struct LiveIn {
    n: u64,
    update: TelemetryUpdate,
}

/// What the publisher sends: a batch of samples or a hub event, under the owner's token.
#[derive(Serialize)]
struct Published<T> {
    token: i64,
    body: T,
}

#[derive(Deserialize)]
struct Received<T> {
    token: i64,
    body: T,
}

impl Publisher {
    pub fn start(cluster: Cluster, team: String, token: i64) -> Addr<Publisher> {
        let (out, mut rx) = mpsc::channel::<(String, Bytes)>(PUBLISH_QUEUE);
        let nats = cluster.nats().clone();
        actix_web::rt::spawn(async move {
            while let Some((subject, payload)) = rx.recv().await {
                if let Err(e) = nats.publish(subject, payload).await {
                    tracing::warn!(error = %e, "live feed not published");
                }
            }
        });
        let sub_id = pitbox_actors::team_hub::internal_subscriber_id();
        Publisher { cluster, team, token, sub_id, out, hub: None }.start()
    }

    fn send(&self, subject: String, payload: Vec<u8>) {
        // Full: dropped (latest-wins for samples; see PUBLISH_QUEUE).
        let _ = self.out.try_send((subject, payload.into()));
    }

    /// Publishes the driver's samples as they change, each once.
    fn feed(&mut self, driver: String, mut rx: watch::Receiver<Latest>, ctx: &mut Context<Self>) {
        let (out, subject, token) = (self.out.clone(), live_subject(&self.team, &driver), self.token);
        rx.mark_changed();
        let pump = async move {
            let mut sent = 0u64;
            while rx.changed().await.is_ok() {
                let Some(batch) = rx.borrow_and_update().clone() else { continue };
                let fresh: Vec<LiveOut<'_>> = batch
                    .iter()
                    .filter(|l| l.n > sent)
                    .filter_map(|l| Some(LiveOut { n: l.n, update: l.json()? }))
                    .collect();
                let Some(last) = fresh.last().map(|l| l.n) else { continue };
                sent = last;
                if let Ok(payload) = serde_json::to_vec(&Published { token, body: &fresh }) {
                    let _ = out.try_send((subject.clone(), payload.into()));
                }
            }
        };
        ctx.spawn(pump.into_actor(self));
    }
}

impl Actor for Publisher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
        let (system, team, id) = (self.cluster.system().clone(), self.team.clone(), self.sub_id);
        let me: Recipient<Push> = ctx.address().recipient();
        let subscribe = async move {
            let hub = system.hub(&team).await.ok()?;
            let drivers = hub.send(Subscribe { id, events: me.into() }).await.ok()?;
            Some((hub, drivers))
        };
        ctx.wait(subscribe.into_actor(self).map(|r, act, ctx| match r {
            Some((hub, drivers)) => {
                act.hub = Some(hub);
                for (driver, rx) in drivers {
                    act.feed(driver, rx, ctx);
                }
            }
            None => {
                tracing::warn!(team = %act.team, "team hub unavailable; live feed not published");
                ctx.stop();
            }
        }));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(hub) = &self.hub {
            hub.do_send(Unsubscribe { id: self.sub_id });
        }
    }
}

impl Handler<Push> for Publisher {
    type Result = ();

    fn handle(&mut self, msg: Push, ctx: &mut Context<Self>) {
        match msg {
            Push::Event(env) => {
                tracing::trace!(team = %self.team, "publishing a hub event");
                if let Ok(payload) = serde_json::to_vec(&Published { token: self.token, body: &*env }) {
                    self.send(hub_subject(&self.team), payload);
                }
            }
            Push::DriverJoined(driver, rx) => self.feed(driver, rx, ctx),
            // A driver node's clip: for the node's own socket, never the team.
            Push::WithMedia(..) => {}
        }
    }
}

impl Handler<StopPublisher> for Publisher {
    type Result = ();

    fn handle(&mut self, _: StopPublisher, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// A follower's mirror of one team: the owner's live samples go into local channels registered
/// with the local hub (so dashboards here get them through the same feeds, rates and order as on
/// the owner), and its events are broadcast by the local hub. Runs until aborted (this node
/// became the owner); dropping it ends the local channels, which the feeds then let go.
pub async fn mirror(cluster: Cluster, team: String) {
    let team_subject = ActorPath::team(team.as_str()).subject();
    let lives = cluster.nats().subscribe(format!("{team_subject}.drivers.*.live")).await;
    let events = cluster.nats().subscribe(hub_subject(&team)).await;
    let (mut lives, mut events) = match (lives, events) {
        (Ok(l), Ok(e)) => (l, e),
        (Err(e), _) | (_, Err(e)) => {
            return tracing::error!(team, error = %e, "cannot follow the team's owner");
        }
    };
    // Per driver: the channel dashboards here read, and the last sample number seen.
    let mut drivers: HashMap<String, (watch::Sender<Latest>, u64)> = HashMap::new();
    // The newest owner's token seen: a former owner's late messages are dropped.
    let mut newest = 0i64;
    loop {
        tokio::select! {
            msg = lives.next() => {
                let Some(msg) = msg else { break };
                let Ok(Received { token, body: batch }) = serde_json::from_slice::<Received<Vec<LiveIn>>>(&msg.payload)
                else {
                    continue;
                };
                if token < newest {
                    continue;
                }
                newest = token;
                let Some(first) = batch.first() else { continue };
                let driver = first.update.driver_id.clone();
                let first_n = first.n;
                let samples: Vec<LiveSample> = batch
                    .into_iter()
                    .filter_map(|l| {
                        let json = serde_json::to_string(&l.update.frame.sample).ok()?;
                        Some(LiveSample::new(l.n, l.update, &json))
                    })
                    .collect();
                let last_n = samples.last().map_or(first_n, |l| l.n);
                // Numbers went back: a new session (on a new owner) counts from 1 again; a new
                // channel makes the feeds here start over with it (the old one's end lets them go).
                let fresh_channel = drivers.get(&driver).is_none_or(|(_, seen)| first_n <= *seen);
                if fresh_channel {
                    let (tx, rx) = watch::channel(None);
                    drivers.insert(driver.clone(), (tx, 0));
                    if let Ok(hub) = cluster.system().hub(&team).await {
                        hub.do_send(RegisterDriver { driver_id: driver.clone(), latest: rx });
                    }
                }
                if let Some((tx, seen)) = drivers.get_mut(&driver) {
                    tx.send_replace(Some(Arc::new(samples)));
                    *seen = last_n;
                }
            }
            msg = events.next() => {
                let Some(msg) = msg else { break };
                let Ok(Received { token, body: env }) = serde_json::from_slice::<Received<Envelope>>(&msg.payload)
                else {
                    continue;
                };
                if token < newest {
                    continue;
                }
                newest = token;
                tracing::trace!(team, "a hub event from the owner");
                if let Ok(hub) = cluster.system().hub(&team).await {
                    hub.do_send(Broadcast(Arc::new(env)));
                }
            }
        }
    }
}
