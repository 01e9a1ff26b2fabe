//! The engineers' view of the live actor tree (`GET /admin/actors`, `/admin/actors/stream`):
//! a snapshot with a sequence number and capture time; each actor with its path, kind, status,
//! mailbox length, counters, restarts and children. Counters only: rates are the reader's job.
//! In cluster mode, [`ClusterView`] (`GET /admin/cluster`) groups the nodes' trees by node with
//! each team's owner and fencing token.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorStatus {
    Running,
    Restarting,
    /// Stopped for good: idle, or the supervisor gave up after too many restarts.
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorCounters {
    /// Messages put in the mailbox.
    pub received: u64,
    pub handled: u64,
    /// Handlers that panicked or returned a fatal error.
    pub failed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Supervision {
    pub restarts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_restart_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reason: Option<String>,
    /// Children this supervisor gave up on (more restarts than its intensity allows).
    pub escalations: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_escalation: Option<String>,
    /// The most recent restarts and escalations, oldest first (the runtime keeps the last
    /// [`Supervision::HISTORY`]); the counts above cover the actor's whole life.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<SupervisionEvent>,
}

impl Supervision {
    /// How many events [`Supervision::history`] keeps.
    pub const HISTORY: usize = 10;
}

/// A restart of this actor, or an escalation by it (a child it gave up on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupervisionEventKind {
    Restart,
    Escalation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupervisionEvent {
    pub at: DateTime<Utc>,
    pub kind: SupervisionEventKind,
    /// Why: the failure that caused the restart, or what was given up on.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorSnapshot {
    /// Address, e.g. `/teams/{team}/drivers/{driver}/coach`.
    pub path: String,
    /// `runtime_supervisor`, `team_supervisor`, `team_hub`, `driver_session`, `coach`, …
    pub kind: String,
    pub status: ActorStatus,
    /// Messages waiting (received − handled − failed).
    pub mailbox: u64,
    pub counters: ActorCounters,
    pub supervision: Supervision,
    pub started_at: DateTime<Utc>,
    /// What an actor counts of its own work, e.g. a video relay's `viewers`, `frames`, `bytes`,
    /// `drops` (counts since it started, or current values; never rates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub gauges: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ActorSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorTree {
    pub seq: u64,
    pub captured_at: DateTime<Utc>,
    pub server_id: String,
    pub uptime_secs: f64,
    pub actors: u32,
    pub root: Vec<ActorSnapshot>,
}

/// Cluster mode (`GET /admin/cluster`): the whole cluster's actor trees grouped by runtime node,
/// with the teams each node owns and under which fencing token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    /// The node that answered.
    pub node_id: String,
    pub lease_ttl_ms: u64,
    /// Every node that holds a lease or answered, by id.
    pub nodes: Vec<ClusterNode>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNode {
    pub node_id: String,
    /// The teams whose lease names this node (live or lapsed).
    pub teams: Vec<TeamLease>,
    /// The node's actor tree as it answered over NATS; `None`: it did not answer in time (dead,
    /// paused, or gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<ActorTree>,
}

/// One team's lease: its owner node and fencing token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamLease {
    pub team_id: String,
    pub owner: String,
    pub token: i64,
    pub expires_at: DateTime<Utc>,
    /// Not expired (by the database's clock).
    pub live: bool,
}
