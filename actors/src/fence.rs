//! Fencing of team-scoped writes (cluster mode). In cluster mode a team's actors run on the node
//! that holds the team's lease in PostgreSQL (`pitbox_schema::db::store::leases`), and every write
//! they make carries the lease's fencing token, checked inside the write's own transaction: a node
//! that lost its lease (paused, partitioned) never commits a write under it again.
//!
//! [`Fence`] is this node's view: which teams it holds and under which token. The runtime's lease
//! keeper grants and revokes; actors take a [`Ticket`] when they make a write and run the write
//! through [`Fence::write`]; a write refused as stale tells the fence, which revokes the team and
//! calls the runtime's step-down hook. Single-process mode has [`Fence::off`]: every ticket is
//! [`Ticket::Single`] and writes run as before, unchecked. Reads no env vars.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use diesel::QueryResult;
use pitbox_schema::db::store::leases::{self, Fenced};
use pitbox_schema::db::DbConnection;

/// Called with (team, stale token) when a write found this node's token stale.
pub type OnFenced = Arc<dyn Fn(&str, i64) + Send + Sync>;

struct Inner {
    node: String,
    tokens: RwLock<BTreeMap<String, i64>>,
    on_fenced: Mutex<Option<OnFenced>>,
}

/// This node's leases (team → fencing token); off in single-process mode. Cheap to clone.
#[derive(Clone, Default)]
pub struct Fence(Option<Arc<Inner>>);

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Fence(off)"),
            Some(i) => f.debug_struct("Fence").field("node", &i.node).field("teams", &self.owned()).finish(),
        }
    }
}

/// What a write runs under (the storage layer checks it inside the write's transaction).
pub use pitbox_schema::db::store::leases::Ticket;

impl Fence {
    /// Single-process mode: no leases, writes unchecked.
    pub fn off() -> Fence {
        Fence(None)
    }

    /// Cluster mode for node `node`, holding nothing yet.
    pub fn for_node(node: impl Into<String>) -> Fence {
        Fence(Some(Arc::new(Inner {
            node: node.into(),
            tokens: RwLock::default(),
            on_fenced: Mutex::default(),
        })))
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    pub fn node(&self) -> Option<&str> {
        self.0.as_ref().map(|i| i.node.as_str())
    }

    /// The token under which this node holds `team`.
    pub fn token(&self, team: &str) -> Option<i64> {
        let inner = self.0.as_ref()?;
        inner.tokens.read().ok()?.get(team).copied()
    }

    /// Whether this node may run `team`'s actors: always in single-process mode.
    pub fn may_run(&self, team: &str) -> bool {
        !self.is_on() || self.token(team).is_some()
    }

    /// The teams this node holds, with their tokens.
    pub fn owned(&self) -> Vec<(String, i64)> {
        let Some(inner) = &self.0 else { return vec![] };
        inner.tokens.read().map(|t| t.iter().map(|(k, v)| (k.clone(), *v)).collect()).unwrap_or_default()
    }

    /// The lease keeper acquired `team` under `token`.
    pub fn grant(&self, team: &str, token: i64) {
        if let Some(mut t) = self.0.as_ref().and_then(|i| i.tokens.write().ok()) {
            t.insert(team.to_owned(), token);
        }
    }

    /// Drops `team` if it is held under `token`; true when it was.
    pub fn revoke(&self, team: &str, token: i64) -> bool {
        let Some(mut t) = self.0.as_ref().and_then(|i| i.tokens.write().ok()) else { return false };
        if t.get(team) == Some(&token) {
            t.remove(team);
            true
        } else {
            false
        }
    }

    /// What to call when a write finds this node's token stale (the runtime steps the team down).
    pub fn on_fenced(&self, hook: OnFenced) {
        if let Some(mut h) = self.0.as_ref().and_then(|i| i.on_fenced.lock().ok()) {
            *h = Some(hook);
        }
    }

    /// A write found `token` stale for `team`: revoke it and call the hook (once per token).
    pub fn lost(&self, team: &str, token: i64) {
        if !self.revoke(team, token) {
            return;
        }
        tracing::warn!(team, token, "stale fencing token: this node no longer owns the team");
        let hook = self.0.as_ref().and_then(|i| i.on_fenced.lock().ok().and_then(|h| h.clone()));
        if let Some(hook) = hook {
            hook(team, token);
        }
    }

    /// The ticket a write for `team` takes now.
    pub fn ticket(&self, team: &str) -> Ticket {
        let Some(inner) = &self.0 else { return Ticket::Single };
        match self.token(team) {
            Some(token) => Ticket::Owner { node: inner.node.clone(), token },
            None => Ticket::NotOwner,
        }
    }

    /// Runs `write` under `ticket`: as is when single-process; else in a transaction behind the
    /// lease check ([`leases::fenced`]). A stale token fails with [`Fenced`] and is reported
    /// ([`Fence::lost`]).
    pub fn write<T>(
        &self,
        conn: &mut DbConnection,
        team: &str,
        ticket: &Ticket,
        write: impl FnOnce(&mut DbConnection) -> QueryResult<T>,
    ) -> QueryResult<T> {
        let r = match ticket {
            Ticket::Single => return write(conn),
            Ticket::Owner { node, token } => leases::fenced(conn, team, node, *token, write),
            Ticket::NotOwner => Err(Fenced { team_id: team.to_owned(), token: 0 }.into_error()),
        };
        if let (Err(e), Ticket::Owner { token, .. }) = (&r, ticket) {
            if Fenced::of(e).is_some() {
                self.lost(team, *token);
            }
        }
        r
    }
}
