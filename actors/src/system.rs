//! The actor system as the runtime sees it: [`Env`] (what every actor shares: registry, store
//! writer, restart policy, idle time, session arbiters) and [`ActorSystem`], a handle that starts
//! the tree and resolves team and driver actors by id. Reads no env vars; the runtime passes its
//! configuration in [`SystemOptions`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use pitbox_schema::db::DbPool;
use pitbox_schema::wire::Envelope;

use crate::coach::{CoachBoard, Phrasing};
use crate::driver_session::{DriverSession, GetVideo};
use crate::fence::Fence;
use crate::mailbox::Mailbox;
use crate::registry::Registry;
use crate::runtime_supervisor::{GetTeam, RuntimeSupervisor};
use crate::store_writer::{Backlog, StoreWriter};
use crate::supervision::{Control, Handle, RestartPolicy};
use crate::team_hub::{Broadcast, TeamHub};
use crate::team_supervisor::{GetDriver, GetHub, StopDrivers, TeamSupervisor};
use crate::video_relay::VideoRelay;
use crate::voice_channel::{Speech, VoiceIn};

#[derive(Clone)]
pub struct SystemOptions {
    pub server_id: String,
    pub policy: RestartPolicy,
    /// A driver session with no node and no data for this long is stopped.
    pub idle_timeout: Duration,
    /// Threads that run driver sessions (each an actix arbiter).
    pub session_threads: usize,
    /// Rewrites the coach's text (an LLM); `None`: the engine's own text.
    pub phrasing: Option<Arc<dyn Phrasing>>,
    /// Text to speech for the voice channels; `None`: the nodes get the text alone.
    pub speech: Option<Arc<dyn Speech>>,
    /// Cluster mode: the teams this node holds and their fencing tokens ([`Fence::off`] alone).
    pub fence: Fence,
}

impl std::fmt::Debug for SystemOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemOptions")
            .field("server_id", &self.server_id)
            .field("policy", &self.policy)
            .field("idle_timeout", &self.idle_timeout)
            .field("session_threads", &self.session_threads)
            .field("phrasing", &self.phrasing.is_some())
            .field("speech", &self.speech.is_some())
            .field("fence", &self.fence)
            .finish()
    }
}

impl SystemOptions {
    /// The runtime's `--idle-timeout-secs` defaults to it.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
    /// The runtime's `--session-threads` defaults to it.
    pub const DEFAULT_SESSION_THREADS: usize = 2;
}

impl Default for SystemOptions {
    fn default() -> Self {
        Self {
            server_id: "pitbox".into(),
            policy: RestartPolicy::DEFAULT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            session_threads: Self::DEFAULT_SESSION_THREADS,
            phrasing: None,
            speech: None,
            fence: Fence::off(),
        }
    }
}

/// Shared by every actor.
#[derive(Clone)]
pub struct Env {
    pub registry: Registry,
    pub store: Mailbox<StoreWriter>,
    pub backlog: Backlog,
    pub policy: RestartPolicy,
    pub idle_timeout: Duration,
    /// For the coaches' own reads and writes (coaching, track maps), off the store writer's queue.
    pub pool: DbPool,
    pub phrasing: Option<Arc<dyn Phrasing>>,
    pub speech: Option<Arc<dyn Speech>>,
    /// What every coach last worked out (strategy per car), for cheap reads by the API.
    pub board: CoachBoard,
    /// Which teams this node may run and write for (cluster mode), and the tokens writes carry.
    pub fence: Fence,
    arbiters: Arc<Vec<ArbiterHandle>>,
    next: Arc<AtomicUsize>,
}

impl Env {
    /// Session arbiters in turn, so driver sessions spread over the cores.
    pub fn next_arbiter(&self) -> ArbiterHandle {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        match self.arbiters.get(i % self.arbiters.len().max(1)) {
            Some(a) => a.clone(),
            None => Arbiter::current(),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SystemError {
    #[error("actor system is shutting down")]
    Gone,
    #[error("{0}")]
    Unavailable(String),
}

impl From<MailboxError> for SystemError {
    fn from(_: MailboxError) -> Self {
        SystemError::Gone
    }
}

/// A handle on the running tree; cheap to clone.
#[derive(Clone)]
pub struct ActorSystem {
    pub env: Env,
    root: Mailbox<RuntimeSupervisor>,
}

impl ActorSystem {
    /// Starts the tree on the current actix system. Must run inside one.
    pub fn start(pool: DbPool, options: SystemOptions) -> ActorSystem {
        let registry = Registry::new(&options.server_id);
        let backlog = Backlog::default();
        let store_stats = registry.register("/runtime/store", "store_writer");
        let store = Mailbox::new(
            StoreWriter::new(pool.clone(), store_stats.clone(), backlog.clone())
                .with_fence(options.fence.clone())
                .start(),
            store_stats,
        );
        let arbiters = (0..options.session_threads.max(1)).map(|_| Arbiter::new().handle()).collect();
        let env = Env {
            registry,
            store,
            backlog,
            policy: options.policy,
            idle_timeout: options.idle_timeout,
            pool,
            phrasing: options.phrasing,
            speech: options.speech,
            board: CoachBoard::default(),
            fence: options.fence,
            arbiters: Arc::new(arbiters),
            next: Arc::default(),
        };
        let root_stats = env.registry.register("/runtime", "runtime_supervisor");
        let root = Mailbox::new(RuntimeSupervisor::new(env.clone()).start(), root_stats);
        ActorSystem { env, root }
    }

    pub fn registry(&self) -> &Registry {
        &self.env.registry
    }

    pub async fn team(&self, team_id: &str) -> Result<Mailbox<TeamSupervisor>, SystemError> {
        self.root
            .send(GetTeam { team_id: team_id.to_owned() })
            .await?
            .ok_or_else(|| SystemError::Unavailable(format!("team {team_id} is restarting")))
    }

    /// The driver's session as it is now (starting it if needed).
    pub async fn driver(
        &self,
        team_id: &str,
        driver_id: &str,
    ) -> Result<Mailbox<DriverSession>, SystemError> {
        self.driver_handle(team_id, driver_id)
            .await?
            .get()
            .ok_or_else(|| SystemError::Unavailable(format!("driver session {driver_id} is restarting")))
    }

    /// The driver's session across its restarts (starting it if needed): hold it, never look the
    /// session up again. An error while it is stopped after repeated failures.
    pub async fn driver_handle(
        &self,
        team_id: &str,
        driver_id: &str,
    ) -> Result<Handle<DriverSession>, SystemError> {
        let team = self.team(team_id).await?;
        team.send(GetDriver { driver_id: driver_id.to_owned() }).await?.map_err(SystemError::Unavailable)
    }

    /// The driver's video relay (starting its session if needed).
    pub async fn video(&self, team_id: &str, driver_id: &str) -> Result<Mailbox<VideoRelay>, SystemError> {
        let session = self.driver(team_id, driver_id).await?;
        session
            .send(GetVideo)
            .await?
            .ok_or_else(|| SystemError::Unavailable(format!("video relay of {driver_id} is restarting")))
    }

    /// Hands a driver's `voice_command` to its voice channel (starting its session if needed).
    pub async fn voice_command(
        &self,
        team_id: &str,
        driver_id: &str,
        cmd: VoiceIn,
    ) -> Result<(), SystemError> {
        let session = self.driver(team_id, driver_id).await?;
        session.send(cmd).await?.map_err(SystemError::Unavailable)
    }

    /// Cluster mode: stops the team's driver sessions on this node (its lease is lost); its hub
    /// stays. Answers how many stopped.
    pub async fn stop_drivers(&self, team_id: &str) -> Result<usize, SystemError> {
        Ok(self.team(team_id).await?.send(StopDrivers).await?)
    }

    pub async fn hub(&self, team_id: &str) -> Result<Mailbox<TeamHub>, SystemError> {
        self.team(team_id)
            .await?
            .send(GetHub)
            .await?
            .ok_or_else(|| SystemError::Unavailable(format!("the hub of team {team_id} is restarting")))
    }

    /// Pushes an event to every dashboard of the team.
    pub async fn broadcast(&self, team_id: &str, envelope: Envelope) -> Result<(), SystemError> {
        self.hub(team_id).await?.do_send(Broadcast(Arc::new(envelope)));
        Ok(())
    }

    /// Opens a driver's racing session at `place` through its `DriverSession`, which owns it (see
    /// [`OpenRacing`](crate::driver_session::OpenRacing)).
    pub async fn open_racing(
        &self,
        team_id: &str,
        driver_id: &str,
        place: pitbox_schema::db::store::sessions::Place,
        from_node: bool,
    ) -> Result<pitbox_schema::db::models::RacingSession, SystemError> {
        let session = self.driver(team_id, driver_id).await?;
        session
            .send(crate::driver_session::OpenRacing { place, from_node })
            .await?
            .map_err(SystemError::Unavailable)
    }

    /// Ends a driver's racing session `id` through its `DriverSession`.
    pub async fn end_racing(
        &self,
        team_id: &str,
        driver_id: &str,
        id: &str,
    ) -> Result<pitbox_schema::db::models::RacingSession, SystemError> {
        let session = self.driver(team_id, driver_id).await?;
        session
            .send(crate::driver_session::EndRacing { id: id.to_owned() })
            .await?
            .map_err(SystemError::Unavailable)
    }

    /// Sends an operator control to the actor at `path`; `false` if no live actor is there.
    pub fn control(&self, path: &str, msg: Control) -> bool {
        self.env.registry.get(path).is_some_and(|s| s.control(msg))
    }
}
