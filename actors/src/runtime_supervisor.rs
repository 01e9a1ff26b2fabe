//! RuntimeSupervisor: the root of the actor tree. Starts a `TeamSupervisor` per team, lazily, and
//! hands out their addresses. Reads no env vars.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use crate::registry::Stats;
use crate::system::Env;
use crate::team_supervisor::TeamSupervisor;

#[derive(Debug, Clone, Message)]
#[rtype(result = "Addr<TeamSupervisor>")]
pub struct GetTeam {
    pub team_id: String,
}

pub struct RuntimeSupervisor {
    env: Env,
    stats: Arc<Stats>,
    teams: HashMap<String, Addr<TeamSupervisor>>,
}

impl RuntimeSupervisor {
    pub fn new(env: Env) -> Self {
        let stats = env.registry.register("/runtime", "runtime_supervisor");
        Self { env, stats, teams: HashMap::new() }
    }
}

impl Actor for RuntimeSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        self.stats.started();
    }
}

impl Handler<GetTeam> for RuntimeSupervisor {
    type Result = Addr<TeamSupervisor>;

    fn handle(&mut self, msg: GetTeam, _: &mut Context<Self>) -> Self::Result {
        self.stats.received();
        self.stats.handled();
        if let Some(t) = self.teams.get(&msg.team_id).filter(|a| a.connected()) {
            return t.clone();
        }
        let addr = TeamSupervisor::new(self.env.clone(), msg.team_id.clone()).start();
        self.teams.insert(msg.team_id, addr.clone());
        addr
    }
}
