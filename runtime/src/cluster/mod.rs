//! Cluster mode (`PITBOX_NATS_URL` set): several runtime nodes share one PostgreSQL and one NATS.
//!
//! - **Ownership.** Each team's actors run on one node: the holder of the team's lease in
//!   PostgreSQL (`pitbox_schema::db::store::leases`). A node claims a team when a driver node
//!   connects to it for that team and the lease is free or expired ([`Cluster::claim`]); the lease
//!   keeper renews every lease this node holds at a third of the TTL, and takes over the expired
//!   lease of a team this node follows (a dead or paused owner's), with a higher fencing token.
//!   Every team-scoped write carries the token ([`pitbox_actors::fence`]); a renewal or a write that
//!   finds it stale steps the team down here: its driver sessions stop (the hub stays).
//! - **Delivery.** The owner publishes each team's live samples and hub events on core NATS
//!   subjects derived from the actor paths ([`bridge`]); a node whose dashboards follow a team it
//!   does not own mirrors them into its local hub, where the feeds apply the same rate and order
//!   rules as on one node. A driver node connected to a non-owner has its telemetry forwarded to
//!   the owner as NATS requests on the driver session's subject; the reply (the acknowledgement
//!   after commit, or the refusal) goes back to the node.
//!
//! Reads no env vars (the config has them: `PITBOX_NATS_URL`, `PITBOX_NODE_ID`,
//! `PITBOX_LEASE_TTL_MS`).

pub mod bridge;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::Addr;
use pitbox_actors::fence::Fence;
use pitbox_actors::ActorSystem;
use pitbox_schema::db::store::leases::{self, LeaseState};
use pitbox_schema::db::{DbError, DbPool};
use pitbox_schema::wire::{ActorTree, ClusterNode, ClusterView, TeamLease};
use tokio::sync::mpsc;

use crate::config::ClusterConfig;

/// How long [`Cluster::view`] waits for the other nodes' trees.
const TREE_WAIT: Duration = Duration::from_millis(300);

/// The subject every node answers its actor tree on.
fn tree_subject() -> String {
    format!("{}.tree", pitbox_schema::wire::ActorPath::Runtime.subject())
}

/// A node's answer to a tree request.
#[derive(serde::Serialize, serde::Deserialize)]
struct NodeTree {
    node_id: String,
    tree: ActorTree,
}

pub use bridge::{DriverRequest, Forwarded, FramesRequest};

/// Where a team's actors are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Here, under this fencing token.
    Local(i64),
    /// On node `owner`, whose lease is live.
    Remote(String),
}

/// What this node runs for one team.
#[derive(Default)]
struct TeamTasks {
    /// As the owner: the responder to forwarded telemetry, and the publisher of the live feed.
    responder: Option<actix_web::rt::task::JoinHandle<()>>,
    publisher: Option<Addr<bridge::Publisher>>,
    /// As a follower: the mirror of the owner's feed into the local hub.
    mirror: Option<actix_web::rt::task::JoinHandle<()>>,
}

struct Inner {
    config: ClusterConfig,
    nats: async_nats::Client,
    pool: DbPool,
    fence: Fence,
    system: ActorSystem,
    /// Teams this node's dashboards or driver nodes follow.
    followed: Mutex<BTreeSet<String>>,
    teams: Mutex<HashMap<String, TeamTasks>>,
    /// One claim at a time on this node, so two never race each other for the same lease.
    claiming: tokio::sync::Mutex<()>,
    /// Step-downs reported by the fence (from any thread), carried out on the system's arbiter.
    stepdowns: mpsc::UnboundedSender<(String, i64)>,
}

/// This node's membership of the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster(Arc<Inner>);

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.0.config.node_id).finish()
    }
}

impl Cluster {
    /// Connects to NATS and starts the lease keeper. Must run inside the actix system that runs
    /// `system`, whose fence must be this node's (`Fence::for_node(config.node_id)`).
    pub async fn start(config: ClusterConfig, pool: DbPool, system: ActorSystem) -> anyhow::Result<Cluster> {
        let nats = async_nats::ConnectOptions::new()
            .name(format!("pitbox-runtime {}", config.node_id))
            .connect(config.nats_url.as_str())
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to NATS at {}: {e}", config.nats_url))?;
        let fence = system.env.fence.clone();
        if fence.node() != Some(config.node_id.as_str()) {
            anyhow::bail!("the actor system's fence is not this node's");
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let cluster = Cluster(Arc::new(Inner {
            config,
            nats,
            pool,
            fence: fence.clone(),
            system,
            followed: Mutex::default(),
            teams: Mutex::default(),
            claiming: tokio::sync::Mutex::new(()),
            stepdowns: tx,
        }));
        let tx = cluster.0.stepdowns.clone();
        fence.on_fenced(Arc::new(move |team: &str, token: i64| {
            let _ = tx.send((team.to_owned(), token));
        }));
        let me = cluster.clone();
        actix_web::rt::spawn(async move {
            while let Some((team, token)) = rx.recv().await {
                me.step_down(&team, token).await;
            }
        });
        let me = cluster.clone();
        actix_web::rt::spawn(async move { me.keep_leases().await });
        let me = cluster.clone();
        actix_web::rt::spawn(async move { me.answer_trees().await });
        tracing::info!(
            node = %cluster.0.config.node_id,
            nats = %cluster.0.config.nats_url,
            lease_ttl_ms = cluster.0.config.lease_ttl.as_millis() as u64,
            "cluster mode: team leases in PostgreSQL, delivery over NATS"
        );
        Ok(cluster)
    }

    pub fn node_id(&self) -> &str {
        &self.0.config.node_id
    }

    pub fn lease_ttl(&self) -> Duration {
        self.0.config.lease_ttl
    }

    pub(crate) fn nats(&self) -> &async_nats::Client {
        &self.0.nats
    }

    pub(crate) fn system(&self) -> &ActorSystem {
        &self.0.system
    }

    /// Every team lease, for the admin tree.
    pub async fn leases(&self) -> Result<Vec<LeaseState>, String> {
        self.db(leases::list).await
    }

    /// Answers every node's ask for this node's actor tree ([`Cluster::view`]).
    async fn answer_trees(self) {
        let mut sub = match self.0.nats.subscribe(tree_subject()).await {
            Ok(s) => s,
            Err(e) => return tracing::warn!(error = %e, "cluster tree requests not answered"),
        };
        while let Some(msg) = futures_util::StreamExt::next(&mut sub).await {
            let Some(reply) = msg.reply else { continue };
            let mine = NodeTree { node_id: self.node_id().to_owned(), tree: self.0.system.registry().tree() };
            if let Ok(body) = serde_json::to_vec(&mine) {
                let _ = self.0.nats.publish(reply, body.into()).await;
            }
        }
    }

    /// The whole cluster: every node's tree (those that answer within a moment) and the teams
    /// each owns, by node id.
    pub async fn view(&self) -> Result<ClusterView, String> {
        let all = self.leases().await?;
        let mut trees: HashMap<String, ActorTree> = HashMap::new();
        let inbox = self.0.nats.new_inbox();
        let mut sub = self.0.nats.subscribe(inbox.clone()).await.map_err(|e| e.to_string())?;
        self.0
            .nats
            .publish_with_reply(tree_subject(), inbox, Vec::new().into())
            .await
            .map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + TREE_WAIT;
        while let Ok(Some(msg)) =
            tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut sub)).await
        {
            if let Ok(t) = serde_json::from_slice::<NodeTree>(&msg.payload) {
                trees.insert(t.node_id, t.tree);
            }
        }
        let mut ids: BTreeSet<String> = trees.keys().cloned().collect();
        ids.extend(all.iter().map(|l| l.lease.owner.clone()));
        let nodes = ids
            .into_iter()
            .map(|node_id| ClusterNode {
                teams: all
                    .iter()
                    .filter(|l| l.lease.owner == node_id)
                    .map(|l| TeamLease {
                        team_id: l.lease.team_id.clone(),
                        owner: l.lease.owner.clone(),
                        token: l.lease.token,
                        expires_at: l.lease.expires_at.and_utc(),
                        live: l.live,
                    })
                    .collect(),
                tree: trees.remove(&node_id),
                node_id,
            })
            .collect();
        Ok(ClusterView {
            node_id: self.node_id().to_owned(),
            lease_ttl_ms: u64::try_from(self.lease_ttl().as_millis()).unwrap_or(u64::MAX),
            nodes,
        })
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut pitbox_schema::db::DbConnection) -> diesel::QueryResult<T> + Send + 'static,
    ) -> Result<T, String> {
        let pool = self.0.pool.clone();
        actix_web::web::block(move || {
            let mut conn = pool.get().map_err(DbError::from).map_err(|e| e.to_string())?;
            f(&mut conn).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Where `team`'s actors are: here when this node holds the lease or could take it (free or
    /// expired: taken now, with a higher token), else the live owner's node.
    pub async fn claim(&self, team: &str) -> Result<Route, String> {
        self.follow(team);
        if let Some(token) = self.0.fence.token(team) {
            return Ok(Route::Local(token));
        }
        let _one = self.0.claiming.lock().await;
        if let Some(token) = self.0.fence.token(team) {
            return Ok(Route::Local(token));
        }
        let (t, node, ttl) = (team.to_owned(), self.node_id().to_owned(), self.lease_ttl());
        let acquired = self
            .db(move |c| {
                Ok(match leases::acquire(c, &t, &node, ttl)? {
                    Some(token) => Ok(token),
                    None => Err(leases::get(c, &t)?),
                })
            })
            .await?;
        match acquired {
            Ok(token) => {
                self.become_owner(team, token);
                Ok(Route::Local(token))
            }
            Err(Some(lease)) => Ok(Route::Remote(lease.lease.owner)),
            // Expired between the two statements: the next claim takes it.
            Err(None) => Err(format!("team {team} is changing owner; retry")),
        }
    }

    /// This node follows `team` (a dashboard or a driver node of it is here): unless it owns the
    /// team, it mirrors the owner's feed into its hub, and the keeper takes the team over when the
    /// owner's lease expires.
    pub fn follow(&self, team: &str) {
        let new = self.0.followed.lock().map(|mut f| f.insert(team.to_owned())).unwrap_or(false);
        if new && self.0.fence.token(team).is_none() {
            self.start_mirror(team);
        }
    }

    fn start_mirror(&self, team: &str) {
        let Ok(mut teams) = self.0.teams.lock() else { return };
        let tasks = teams.entry(team.to_owned()).or_default();
        if tasks.mirror.is_none() {
            tasks.mirror = Some(actix_web::rt::spawn(bridge::mirror(self.clone(), team.to_owned())));
        }
    }

    /// This node now holds `team` under `token`: the fence lets its actors run and write, the
    /// mirror stops (the local sessions feed the hub now), and the owner's bridge starts.
    fn become_owner(&self, team: &str, token: i64) {
        self.0.fence.grant(team, token);
        tracing::info!(team, token, node = %self.node_id(), "team lease acquired");
        let Ok(mut teams) = self.0.teams.lock() else { return };
        let tasks = teams.entry(team.to_owned()).or_default();
        if let Some(m) = tasks.mirror.take() {
            m.abort();
        }
        if let Some(r) = tasks.responder.take() {
            r.abort();
        }
        if let Some(p) = tasks.publisher.take() {
            p.do_send(bridge::StopPublisher);
        }
        tasks.responder = Some(actix_web::rt::spawn(bridge::respond(self.clone(), team.to_owned())));
        tasks.publisher = Some(bridge::Publisher::start(self.clone(), team.to_owned(), token));
    }

    /// The lease on `team` under `token` is lost (the fence already dropped it): the team's
    /// driver sessions stop here, the owner's bridge stops, and the node follows the new owner.
    async fn step_down(&self, team: &str, token: i64) {
        if self.0.fence.token(team).is_some() {
            // Taken again since (a newer token): nothing to step down.
            return;
        }
        tracing::warn!(team, token, node = %self.node_id(), "team lease lost; stepping down");
        if let Ok(mut teams) = self.0.teams.lock() {
            let tasks = teams.entry(team.to_owned()).or_default();
            if let Some(r) = tasks.responder.take() {
                r.abort();
            }
            if let Some(p) = tasks.publisher.take() {
                p.do_send(bridge::StopPublisher);
            }
        }
        match self.0.system.stop_drivers(team).await {
            Ok(n) => tracing::info!(team, stopped = n, "driver sessions stopped"),
            Err(e) => tracing::warn!(team, error = %e, "driver sessions not stopped"),
        }
        let followed = self.0.followed.lock().map(|f| f.contains(team)).unwrap_or(false);
        if followed && self.0.fence.token(team).is_none() {
            self.start_mirror(team);
        }
    }

    /// The lease keeper: every third of the TTL, renews this node's leases (a lost one steps its
    /// team down) and takes over the expired leases of teams this node follows. When the database
    /// cannot be reached for a whole TTL, every team steps down: another node may own them by now.
    async fn keep_leases(self) {
        let every = self.lease_ttl() / 3;
        let mut last_ok = Instant::now();
        loop {
            actix_web::rt::time::sleep(every).await;
            let owned = self.0.fence.owned();
            let (node, ttl) = (self.node_id().to_owned(), self.lease_ttl());
            let held = owned.clone();
            let round = self
                .db(move |c| {
                    let mut lost = vec![];
                    for (team, token) in &held {
                        if !leases::renew(c, team, &node, *token, ttl)? {
                            lost.push((team.clone(), *token));
                        }
                    }
                    Ok((lost, leases::list(c)?))
                })
                .await;
            let (lost, all) = match round {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "team leases not renewed");
                    if last_ok.elapsed() >= self.lease_ttl() {
                        for (team, token) in owned {
                            self.0.fence.lost(&team, token);
                        }
                    }
                    continue;
                }
            };
            last_ok = Instant::now();
            for (team, token) in lost {
                self.0.fence.lost(&team, token);
            }
            let followed = self.0.followed.lock().map(|f| f.clone()).unwrap_or_default();
            tracing::debug!(?followed, leases = ?all, "lease keeper round");
            for lease in all {
                let team = &lease.lease.team_id;
                if !lease.live && followed.contains(team) && self.0.fence.token(team).is_none() {
                    match self.claim(team).await {
                        Ok(Route::Local(token)) => {
                            tracing::info!(team = %team, token, from = %lease.lease.owner, "took over an expired lease")
                        }
                        Ok(Route::Remote(_)) => {}
                        Err(e) => tracing::warn!(team = %team, error = %e, "takeover failed"),
                    }
                }
            }
        }
    }
}
