//! DriverSession: one driver's live state — latest sample, the lap being assembled, laps completed
//! and best lap, connected nodes, last sequence number per node stream. Frames arrive from the
//! driver's node (socket) or the REST API; the session validates them, assembles laps, publishes the
//! latest sample to subscribers (a `watch` channel: latest-wins, no queue), and hands samples and
//! laps to the StoreWriter, whose acknowledgement goes back to the sender after commit.
//! It owns the driver's racing session: opened with the track, car and session type the node
//! names ([`OpenRacing`]; a different one closes the old session and opens a new one), or as
//! "unknown" when telemetry comes first; the API starts and ends sessions through it too. Every
//! sample and lap it hands to the writer names that session; a new incarnation finds the open
//! session again in the database.
//! It supervises its `Coach`, `VoiceChannel` and `VideoRelay` children. Reads no env vars.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use actix::prelude::*;
use pitbox_schema::db::models::RacingSession;
use pitbox_schema::db::store::sessions::{self, Place};
use pitbox_schema::wire::{
    DriverStatus, DriverStatusKind, Envelope, Message as Wire, TelemetryFrame, TelemetryUpdate,
};
use serde_json::value::RawValue;
use tokio::sync::watch;

use crate::coach::{AskCoach, Coach, CoachArgs, CoachState, GetCoachState, LapSeen};
use crate::lap::LapAssembler;
use crate::mailbox::{Counted, Mailbox};
use crate::registry::Stats;
use crate::store_writer::{AckTo, LapIn, LapStored, Plan, Recover, Recovered, SampleIn, Write, WriteRequest};
use crate::supervision::{
    ChildFailed, ChildSpec, Escalation, Fatal, Handle, Outcome, Supervised, Supervisor,
};
use crate::system::Env;
use crate::team_hub::HubRef;
use crate::video_relay::{VideoRelay, VideoSlot};
use crate::voice_channel::{VoiceChannel, VoiceChannelArgs, VoiceIn, VoiceRef, VoiceSlot};

/// The latest batch of a driver's samples, as subscribers see it (newest last). A team view sends
/// the newest; a focused view sends every sample it has not sent yet. Either way a subscriber that
/// falls behind skips to the latest batch: nothing queues.
pub type Latest = Option<Arc<Vec<LiveSample>>>;

/// A published sample; its JSON is made once, by the first subscriber that sends it, and shared
/// by all the others. It embeds the sample's channels as they were encoded for the database, so a
/// sample is encoded once however many ways it leaves.
#[derive(Debug)]
pub struct LiveSample {
    /// Counts the driver's samples (continues across restarts), so subscribers know what they sent.
    pub n: u64,
    pub update: TelemetryUpdate,
    /// `update.frame.sample` as JSON (what the database's `data` column holds).
    sample_json: Box<str>,
    json: OnceLock<Option<Box<RawValue>>>,
}

impl LiveSample {
    /// `sample_json` is `update.frame.sample` as `serde_json::to_string` writes it.
    pub fn new(n: u64, update: TelemetryUpdate, sample_json: &str) -> Self {
        Self { n, update, sample_json: sample_json.into(), json: OnceLock::new() }
    }

    /// The `telemetry_update` data as JSON.
    pub fn json(&self) -> Option<&RawValue> {
        self.json.get_or_init(|| self.update.json_with_sample(&self.sample_json).ok()).as_deref()
    }
}

/// What survives a restart of the session: held by the supervisor, handed to each incarnation.
#[derive(Debug)]
pub struct DriverSlot {
    pub latest: watch::Sender<Latest>,
    pub checkpoint: Mutex<Checkpoint>,
    /// The video relay's viewers and counters (they outlive restarts of the relay and the session).
    pub video: VideoSlot,
    /// The voice channel's queue, counters and settings, and its current address (for the coach).
    pub voice: VoiceSlot,
    pub voice_ref: VoiceRef,
}

impl Default for DriverSlot {
    fn default() -> Self {
        Self {
            latest: watch::channel(None).0,
            checkpoint: Mutex::default(),
            video: VideoSlot::default(),
            voice: VoiceSlot::default(),
            voice_ref: VoiceRef::default(),
        }
    }
}

/// The session's durable-enough state, written after every change.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    pub laps_completed: u32,
    pub best_lap: Option<f64>,
    pub last_lap: Option<f64>,
    /// Highest sequence number seen per node stream.
    pub streams: HashMap<String, u64>,
    pub samples: u64,
    /// Nodes connected (they stay connected through a restart of the session).
    pub nodes: u32,
}

/// Why frames were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Invalid(String),
    #[error("storage is behind ({0} rows waiting); retry later")]
    Busy(usize),
    #[error("driver session unavailable: {0}")]
    Unavailable(String),
    /// The batch continues frames this session never took (they were lost with an earlier
    /// incarnation's mailbox, or refused): taking it would let the stored watermark pass them.
    #[error("frames after seq {0} never arrived; resend from there")]
    Gap(u64),
}

/// Frames from the driver's node or the API. Answers how many were new (not resends).
#[derive(Message)]
#[rtype(result = "Result<usize, IngestError>")]
pub struct Frames {
    pub stream_id: Option<String>,
    pub frames: Vec<TelemetryFrame>,
    /// The sender's previous batch on this stream ended at this seq, and this one continues it:
    /// refused ([`IngestError::Gap`]) unless the session has taken the stream up to there.
    pub after: Option<u64>,
    pub ack: Option<AckTo>,
}

/// A node connected (`true`) or went away (`false`).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct NodeConnection(pub bool);

/// A read of the session's live state.
#[derive(Debug, Clone, Message)]
#[rtype(result = "LiveState")]
pub struct GetLive;

#[derive(Debug, Clone)]
pub struct LiveState {
    pub laps_completed: u32,
    pub best_lap: Option<f64>,
    pub samples: u64,
    pub nodes: u32,
    pub latest: Option<TelemetryUpdate>,
}

/// The driver's video relay (none while it restarts or after it was given up on).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Option<Mailbox<VideoRelay>>")]
pub struct GetVideo;

/// Opens the driver's racing session at `place`. From the node (`from_node`), the open session
/// stays when it is at that place already (a reconnect), takes the names when it had none, and
/// otherwise ends and a new one opens; from the API, a new one always opens. Answers the open
/// session. Frames that come after it are stored in that session.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<RacingSession, String>")]
pub struct OpenRacing {
    pub place: Place,
    pub from_node: bool,
}

/// Ends racing session `id` of this driver (the API); later frames open an "unknown" one unless a
/// node names a place first. Answers the ended session.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<RacingSession, String>")]
pub struct EndRacing {
    pub id: String,
}

/// The node's sim session changed (`place`) or ended (`None`), from the node's frame `seq` on
/// (see [`pitbox_schema::wire::SimSession`]): in the mailbox's order, so the frames before it are in
/// the racing session before. Left alone when this session refused a batch before `seq` that was
/// not resent yet: the node names its session again when it resends. Answers the driver's open
/// racing session afterwards.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Option<RacingSession>, String>")]
pub struct NodeSession {
    pub place: Option<Place>,
    pub seq: Option<u64>,
}

/// The session asks its supervisor to stop it: no node and no data for the idle time.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ChildIdle {
    pub driver_id: String,
}

pub struct DriverSession {
    env: Env,
    pub team_id: String,
    pub driver_id: String,
    path: String,
    stats: Arc<Stats>,
    parent: Counted<ChildFailed>,
    idle_to: Counted<ChildIdle>,
    slot: Arc<DriverSlot>,
    hub: HubRef,
    assembler: LapAssembler,
    ckpt: Checkpoint,
    /// The driver's open racing session (read from the database when an incarnation starts).
    racing: Option<Arc<RacingSession>>,
    /// The first frame of a refused batch not resent yet (a node's sim session mark after it waits
    /// for the resend).
    refused_from: Option<u64>,
    nodes: u32,
    last_activity: Instant,
    /// Its coach, voice channel and video relay: independent of each other, so one-for-one; one
    /// that keeps failing fails the session, which its supervisor restarts with all three.
    children: Supervisor,
    coach: Handle<Coach>,
    video: Handle<VideoRelay>,
}

pub struct DriverSessionArgs {
    pub env: Env,
    pub team_id: String,
    pub driver_id: String,
    pub parent: Counted<ChildFailed>,
    pub idle_to: Counted<ChildIdle>,
    pub slot: Arc<DriverSlot>,
    pub hub: HubRef,
}

pub fn driver_path(team_id: &str, driver_id: &str) -> String {
    format!("/teams/{team_id}/drivers/{driver_id}")
}

impl DriverSession {
    /// A new incarnation, restored from the slot's checkpoint.
    pub fn new(a: DriverSessionArgs) -> Self {
        let path = driver_path(&a.team_id, &a.driver_id);
        let stats = a.env.registry.register(&path, "driver_session");
        let ckpt = a.slot.checkpoint.lock().map(|c| c.clone()).unwrap_or_default();
        let nodes = ckpt.nodes;
        let children = Supervisor::one_for_one(&a.env, stats.clone(), Escalation::Fail);
        Self {
            assembler: LapAssembler::restore(ckpt.laps_completed, ckpt.best_lap),
            ckpt,
            racing: None,
            refused_from: None,
            env: a.env,
            team_id: a.team_id,
            driver_id: a.driver_id,
            path,
            stats,
            parent: a.parent,
            idle_to: a.idle_to,
            slot: a.slot,
            hub: a.hub,
            nodes,
            last_activity: Instant::now(),
            children,
            coach: Handle::default(),
            video: Handle::default(),
        }
    }

    fn save(&self) {
        if let Ok(mut c) = self.slot.checkpoint.lock() {
            *c = self.ckpt.clone();
        }
    }

    fn status_push(&self) {
        let status = if self.nodes > 0 { DriverStatusKind::Active } else { DriverStatusKind::Inactive };
        let env = Envelope {
            from: Some(self.path.clone()),
            ..Envelope::new(Wire::DriverStatus(DriverStatus {
                driver_id: self.driver_id.clone(),
                status,
                telemetry_connected: self.nodes > 0,
            }))
        };
        self.hub.broadcast(env);
    }

    fn coach_spec(&self) -> ChildSpec {
        let (env, path, hub, voice) =
            (self.env.clone(), format!("{}/coach", self.path), self.hub.clone(), self.slot.voice_ref.clone());
        let (team_id, driver_id) = (self.team_id.clone(), self.driver_id.clone());
        ChildSpec::new(path.clone(), &self.coach, move |parent| {
            Coach::new(CoachArgs {
                env: env.clone(),
                path: path.clone(),
                parent,
                team_id: team_id.clone(),
                driver_id: driver_id.clone(),
                hub: hub.clone(),
                voice: voice.clone(),
            })
        })
    }

    fn voice_spec(&self) -> ChildSpec {
        let (env, path, hub, slot) =
            (self.env.clone(), format!("{}/voice", self.path), self.hub.clone(), self.slot.clone());
        let (team_id, driver_id) = (self.team_id.clone(), self.driver_id.clone());
        ChildSpec::new(path.clone(), &self.slot.voice_ref, move |parent| {
            let laps = slot.clone();
            VoiceChannel::new(VoiceChannelArgs {
                env: env.clone(),
                path: path.clone(),
                parent,
                team_id: team_id.clone(),
                driver_id: driver_id.clone(),
                hub: hub.clone(),
                latest: slot.latest.subscribe(),
                laps: Arc::new(move || {
                    laps.checkpoint.lock().map(|c| (c.last_lap, c.best_lap)).unwrap_or_default()
                }),
                shared: slot.voice.clone(),
            })
        })
    }

    fn video_spec(&self) -> ChildSpec {
        let (env, path, slot) = (self.env.clone(), format!("{}/video", self.path), self.slot.clone());
        ChildSpec::new(path.clone(), &self.video, move |parent| {
            VideoRelay::new(env.clone(), path.clone(), parent, slot.video.clone())
        })
    }

    /// Rebuilds the lap in progress from what the store holds (see [`Recovered`]): after an
    /// actor restart, a runtime restart or on another runtime later, the lap that was being
    /// driven is completed and stored once, with its whole data and the right time. Laps whose
    /// line was crossed before the restart but whose time came after it are stored now.
    fn rebuild(&mut self, r: Recovered, me: Counted<LapStored>) {
        // Recovered after every write queued by the previous incarnation committed: the session
        // it opened is in the database.
        self.racing = r.session.map(Arc::new);
        if self.ckpt.samples == 0 && self.ckpt.laps_completed == 0 {
            // A new runtime: the counters come from the database.
            self.ckpt.laps_completed = r.laps_completed;
            self.ckpt.best_lap = r.best_lap;
        }
        self.assembler = LapAssembler::restore(self.ckpt.laps_completed, self.ckpt.best_lap);
        let replayed = r.frames.len();
        let mut laps = Vec::new();
        for (stream, f) in r.frames {
            // Resends of these frames are acknowledged but not assembled again.
            if let (Some(stream), Some(seq)) = (stream, f.seq) {
                let seen = self.ckpt.streams.entry(stream).or_insert(0);
                *seen = (*seen).max(seq);
            }
            for lap in self.assembler.push(&f) {
                laps.push(LapIn { id: uuid::Uuid::now_v7().to_string(), lap });
            }
        }
        (self.ckpt.laps_completed, self.ckpt.best_lap) = self.assembler.summary();
        self.save();
        tracing::debug!(driver = %self.driver_id, replayed, laps = laps.len(), "lap in progress rebuilt");
        if !laps.is_empty() {
            let session = self.racing();
            self.env.store.do_send(Write(WriteRequest {
                plan: Plan {
                    driver_id: self.driver_id.clone(),
                    team_id: self.team_id.clone(),
                    session,
                    stream_id: None,
                    samples: vec![],
                    laps,
                    ticket: self.env.fence.ticket(&self.team_id),
                },
                ack: None,
                on_lap: Some(me),
            }));
        }
    }

    /// The open racing session; one at an unknown place when nobody named one (the store writer
    /// stores it with the first rows).
    fn racing(&mut self) -> Arc<RacingSession> {
        let (team, driver) = (&self.team_id, &self.driver_id);
        self.racing.get_or_insert_with(|| Arc::new(Place::unknown().new_session(team, driver))).clone()
    }

    fn ingest(&mut self, msg: Frames, me: Counted<LapStored>) -> Result<Result<usize, IngestError>, Fatal> {
        if !self.env.fence.may_run(&self.team_id) {
            // Cluster mode, and the team's lease is lost: the node resends to the new owner.
            let why = format!("this runtime node no longer owns team {}", self.team_id);
            return Ok(Err(IngestError::Unavailable(why)));
        }
        for (i, f) in msg.frames.iter().enumerate() {
            if let Err(e) = f.sample.validate() {
                // Never stored: a later acknowledgement passes these frames, so the batch after
                // them may continue from here.
                if let (Some(stream), Some(last)) = (&msg.stream_id, msg.frames.last().and_then(|f| f.seq)) {
                    let seen = self.ckpt.streams.entry(stream.clone()).or_insert(0);
                    *seen = (*seen).max(last);
                    self.save();
                }
                return Ok(Err(IngestError::Invalid(format!("frames[{i}].{e}"))));
            }
        }
        if let (Some(stream), Some(after)) = (&msg.stream_id, msg.after) {
            let have = self.ckpt.streams.get(stream).copied().unwrap_or(0);
            if have < after {
                return Ok(Err(IngestError::Gap(have)));
            }
        }
        if self.env.backlog.is_full() {
            return Ok(Err(IngestError::Busy(self.env.backlog.rows())));
        }
        self.last_activity = Instant::now();
        let mut samples = Vec::with_capacity(msg.frames.len());
        let mut laps = Vec::new();
        let mut fresh = 0;
        let mut live = Vec::new();
        for f in &msg.frames {
            // The one encoding of the sample: stored as is, and embedded in the live push.
            let data = serde_json::to_string(&f.sample).map_err(|e| Fatal(e.to_string()))?;
            // A resend of a frame this session already saw is stored (deduplicated by the writer)
            // and acknowledged, but not assembled twice.
            let resend = match (&msg.stream_id, f.seq) {
                (Some(stream), Some(seq)) => {
                    let seen = self.ckpt.streams.get(stream).is_some_and(|last| seq <= *last);
                    if !seen {
                        self.ckpt.streams.insert(stream.clone(), seq);
                    }
                    seen
                }
                _ => false,
            };
            if !resend {
                fresh += 1;
                let update = TelemetryUpdate { driver_id: self.driver_id.clone(), frame: f.clone() };
                live.push(LiveSample::new(self.ckpt.samples + fresh as u64, update, &data));
                for lap in self.assembler.push_encoded(f, Some(&data)) {
                    laps.push(LapIn { id: uuid::Uuid::now_v7().to_string(), lap });
                }
            }
            samples.push(SampleIn {
                id: uuid::Uuid::now_v7().to_string(),
                seq: f.seq,
                recorded_at: f.timestamp.naive_utc(),
                data,
            });
        }
        if !live.is_empty() {
            self.slot.latest.send_replace(Some(Arc::new(live)));
        }
        let (laps_completed, best) = self.assembler.summary();
        self.ckpt.laps_completed = laps_completed;
        self.ckpt.best_lap = best;
        if let Some(l) = laps.last() {
            self.ckpt.last_lap = Some(l.lap.lap_time);
        }
        self.ckpt.samples += fresh as u64;
        self.save();
        let session = self.racing();
        self.env.store.do_send(Write(WriteRequest {
            plan: Plan {
                driver_id: self.driver_id.clone(),
                team_id: self.team_id.clone(),
                session,
                stream_id: msg.stream_id,
                samples,
                laps,
                ticket: self.env.fence.ticket(&self.team_id),
            },
            ack: msg.ack,
            on_lap: Some(me),
        }));
        Ok(Ok(fresh))
    }
}

impl Actor for DriverSession {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        // Children hold this session's address (their parent), so they are stopped explicitly.
        self.children.stop_all();
    }

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.stats.started();
        self.stats.set_control(ctx.address().recipient());
        let me = self.me(ctx).recipient();
        for spec in [self.coach_spec(), self.voice_spec(), self.video_spec()] {
            self.children.start_child(spec, &me);
        }
        // Nothing is handled until the lap in progress is rebuilt from storage.
        let (store, driver_id) = (self.env.store.clone(), self.driver_id.clone());
        ctx.wait(async move { store.send(Recover { driver_id }).await }.into_actor(self).map(
            |res, act, ctx| match res {
                Ok(Ok(r)) => {
                    let me = act.me(ctx).recipient();
                    act.rebuild(r, me)
                }
                Ok(Err(e)) => {
                    tracing::error!(driver = %act.driver_id, error = %e, "lap in progress not rebuilt")
                }
                Err(e) => tracing::error!(driver = %act.driver_id, error = %e, "lap in progress not rebuilt"),
            },
        ));
        let every = (self.env.idle_timeout / 4).max(std::time::Duration::from_millis(50));
        // A restarted session announces itself so that dashboards see it is back.
        self.status_push();
        ctx.run_interval(every, |act, _| {
            if act.nodes == 0 && act.last_activity.elapsed() >= act.env.idle_timeout {
                act.idle_to.do_send(ChildIdle { driver_id: act.driver_id.clone() });
            }
        });
    }
}

impl Supervised for DriverSession {
    fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }
    fn parent(&self) -> &Counted<ChildFailed> {
        &self.parent
    }
}

impl Handler<Frames> for DriverSession {
    type Result = Result<usize, IngestError>;

    fn handle(&mut self, msg: Frames, ctx: &mut Context<Self>) -> Self::Result {
        let me = self.me(ctx).recipient();
        let first = msg.frames.first().and_then(|f| f.seq);
        let r = self
            .guard(ctx, |s, _| s.ingest(msg, me))
            .unwrap_or_else(|reason| Err(IngestError::Unavailable(reason)));
        match (&r, first) {
            // The node resends these (invalid ones it never does): a sim session mark after them
            // waits for the resend.
            (Err(e), Some(first)) if !matches!(e, IngestError::Invalid(_)) => {
                self.refused_from = Some(self.refused_from.map_or(first, |f| f.min(first)));
            }
            (Ok(_), Some(first)) if self.refused_from.is_some_and(|f| first <= f) => self.refused_from = None,
            _ => {}
        }
        r
    }
}

impl Handler<NodeConnection> for DriverSession {
    type Result = ();

    fn handle(&mut self, msg: NodeConnection, ctx: &mut Context<Self>) {
        let _ = self.guard(ctx, |s, _| {
            if msg.0 {
                s.nodes += 1;
            } else {
                s.nodes = s.nodes.saturating_sub(1);
            }
            s.ckpt.nodes = s.nodes;
            s.save();
            s.last_activity = Instant::now();
            s.status_push();
            Ok(())
        });
    }
}

/// Runs a racing-session change on the blocking pool, after the writes already queued (the
/// writer stores a session opened by telemetry before the rows that name it), and holds every
/// other message of the session until it is done, so frames that follow land in the right session.
/// `then` makes the outcome the session's own.
fn racing_change<T: Send + 'static>(
    act: &mut DriverSession,
    change: impl FnOnce(&mut pitbox_schema::db::DbConnection) -> diesel::QueryResult<T> + Send + 'static,
    then: fn(&mut DriverSession, &T),
) -> AtomicResponse<DriverSession, Result<T, String>> {
    act.handled();
    act.last_activity = Instant::now();
    let (pool, store, driver_id) = (act.env.pool.clone(), act.env.store.clone(), act.driver_id.clone());
    let (fence, team) = (act.env.fence.clone(), act.team_id.clone());
    let ticket = fence.ticket(&team);
    let fut = async move {
        // A Recover is answered only after the driver's queued writes commit.
        store.send(Recover { driver_id }).await.map_err(|e| e.to_string())??;
        actix_rt::task::spawn_blocking(move || {
            let mut c = pool.get().map_err(|e| e.to_string())?;
            fence.write(&mut c, &team, &ticket, change).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    };
    AtomicResponse::new(Box::pin(fut.into_actor(act).map(move |r, act, _| {
        if let Ok(s) = &r {
            then(act, s);
        }
        r
    })))
}

impl Handler<OpenRacing> for DriverSession {
    type Result = AtomicResponse<Self, Result<RacingSession, String>>;

    fn handle(&mut self, msg: OpenRacing, _: &mut Context<Self>) -> Self::Result {
        let (team, driver) = (self.team_id.clone(), self.driver_id.clone());
        let OpenRacing { place, from_node } = msg;
        racing_change(
            self,
            move |c| {
                if from_node {
                    sessions::node_session(c, &team, &driver, &place)
                } else {
                    sessions::start_session(c, &team, &driver, &place)
                }
            },
            |act, s| act.racing = Some(Arc::new(s.clone())),
        )
    }
}

impl Handler<NodeSession> for DriverSession {
    type Result = AtomicResponse<Self, Result<Option<RacingSession>, String>>;

    fn handle(&mut self, msg: NodeSession, _: &mut Context<Self>) -> Self::Result {
        if let (Some(seq), Some(from)) = (msg.seq, self.refused_from) {
            if seq > from {
                self.handled();
                let open = self.racing.as_deref().cloned();
                return AtomicResponse::new(Box::pin(actix::fut::ready(Ok(open))));
            }
        }
        let (team, driver) = (self.team_id.clone(), self.driver_id.clone());
        match msg.place {
            Some(place) => racing_change(
                self,
                move |c| sessions::node_session(c, &team, &driver, &place).map(Some),
                |act, s| act.racing = s.clone().map(Arc::new),
            ),
            None => racing_change(self, move |c| sessions::end_open(c, &driver), |act, _| act.racing = None),
        }
    }
}

impl Handler<EndRacing> for DriverSession {
    type Result = AtomicResponse<Self, Result<RacingSession, String>>;

    fn handle(&mut self, msg: EndRacing, _: &mut Context<Self>) -> Self::Result {
        let id = msg.id;
        racing_change(
            self,
            move |c| sessions::end_session(c, &id),
            |act, s| {
                if act.racing.as_ref().is_some_and(|o| o.id == s.id) {
                    act.racing = None;
                }
            },
        )
    }
}

impl Handler<LapStored> for DriverSession {
    type Result = ();

    fn handle(&mut self, msg: LapStored, ctx: &mut Context<Self>) {
        let _ = self.guard(ctx, |s, _| {
            let LapStored(lap, frames) = msg;
            s.coach.do_send(LapSeen { summary: lap.clone(), frames });
            let env = Envelope { from: Some(s.path.clone()), ..Envelope::new(Wire::LapCompleted(lap)) };
            s.hub.broadcast(env);
            Ok(())
        });
    }
}

impl Handler<GetLive> for DriverSession {
    type Result = MessageResult<GetLive>;

    fn handle(&mut self, _: GetLive, _: &mut Context<Self>) -> Self::Result {
        self.handled();
        MessageResult(LiveState {
            laps_completed: self.ckpt.laps_completed,
            best_lap: self.ckpt.best_lap,
            samples: self.ckpt.samples,
            nodes: self.nodes,
            latest: self.slot.latest.borrow().as_ref().and_then(|b| b.last()).map(|l| l.update.clone()),
        })
    }
}

impl Handler<AskCoach> for DriverSession {
    type Result = ResponseFuture<Option<CoachState>>;

    fn handle(&mut self, _: AskCoach, _: &mut Context<Self>) -> Self::Result {
        self.handled();
        let ask = self.coach.send(GetCoachState);
        Box::pin(async move { ask.await.ok() })
    }
}

impl Handler<GetVideo> for DriverSession {
    type Result = MessageResult<GetVideo>;

    fn handle(&mut self, _: GetVideo, _: &mut Context<Self>) -> Self::Result {
        self.handled();
        MessageResult(self.video.get())
    }
}

/// A `voice_command` from the node: handed to the voice channel (an error while it restarts).
impl Handler<VoiceIn> for DriverSession {
    type Result = Result<(), String>;

    fn handle(&mut self, msg: VoiceIn, _: &mut Context<Self>) -> Self::Result {
        self.handled();
        self.last_activity = Instant::now();
        match self.slot.voice_ref.get() {
            Some(v) => v.try_send(msg).map_err(|e| format!("voice channel busy: {e}")),
            None => Err(format!("voice channel of {} is restarting; say it again", self.driver_id)),
        }
    }
}

crate::supervised_control!(DriverSession);

/// A child (coach, voice, video) failed: its supervisor restarts it within the policy, or gives up
/// and fails this session too.
impl Handler<ChildFailed> for DriverSession {
    type Result = ();

    fn handle(&mut self, msg: ChildFailed, ctx: &mut Context<Self>) {
        self.handled();
        let me = self.me(ctx).recipient();
        if let Outcome::Escalate(reason) = self.children.child_failed(&msg, &me) {
            Supervisor::escalate(self, ctx, reason);
        }
    }
}
