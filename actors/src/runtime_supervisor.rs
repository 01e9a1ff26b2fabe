//! RuntimeSupervisor: the root of the actor tree. Starts a `TeamSupervisor` per team, lazily, hands
//! out their addresses and supervises them with the one [`Supervisor`] (one-for-one; a team that
//! keeps failing is recorded here, the top of every escalation). Reads no env vars.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use crate::mailbox::{Counted, Mailbox};
use crate::registry::Stats;
use crate::supervision::{ChildFailed, ChildSpec, Escalation, Handle, Supervisor};
use crate::system::Env;
use crate::team_supervisor::{team_path, TeamSupervisor};

/// The team's supervisor, started if needed.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Option<Mailbox<TeamSupervisor>>")]
pub struct GetTeam {
    pub team_id: String,
}

pub struct RuntimeSupervisor {
    env: Env,
    stats: Arc<Stats>,
    children: Supervisor,
    teams: HashMap<String, Handle<TeamSupervisor>>,
}

impl RuntimeSupervisor {
    pub fn new(env: Env) -> Self {
        let stats = env.registry.register("/runtime", "runtime_supervisor");
        let children = Supervisor::one_for_one(&env, stats.clone(), Escalation::Record);
        Self { env, stats, children, teams: HashMap::new() }
    }

    fn me(&self, ctx: &Context<Self>) -> Counted<ChildFailed> {
        Mailbox::new(ctx.address(), self.stats.clone()).recipient()
    }
}

impl Actor for RuntimeSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        self.stats.started();
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.children.stop_all();
    }
}

impl Handler<GetTeam> for RuntimeSupervisor {
    type Result = Option<Mailbox<TeamSupervisor>>;

    fn handle(&mut self, msg: GetTeam, ctx: &mut Context<Self>) -> Self::Result {
        self.stats.handled();
        let handle = self.teams.entry(msg.team_id.clone()).or_default().clone();
        if let Some(t) = handle.get() {
            return Some(t);
        }
        let (me, path) = (self.me(ctx), team_path(&msg.team_id));
        // A team given up on is started afresh when asked for again.
        if !self.children.revive(&path, &me) {
            let (env, team_id) = (self.env.clone(), msg.team_id);
            let spec = ChildSpec::new(path, &handle, move |parent| {
                TeamSupervisor::new(env.clone(), team_id.clone(), parent)
            });
            self.children.start_child(spec, &me);
        }
        handle.get()
    }
}

impl Handler<ChildFailed> for RuntimeSupervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildFailed, ctx: &mut Context<Self>) {
        self.stats.handled();
        let me = self.me(ctx);
        self.children.child_failed(&msg, &me);
    }
}
