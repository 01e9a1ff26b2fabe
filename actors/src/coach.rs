//! Coach: a driver's AI coach in the actor tree. It keeps what it has seen — every completed lap,
//! the best valid one — so the tree, addressing and supervision hold it. The analysis engine it is
//! to run is the `pitbox-coach` crate (`coach/`); calling it from here, with the `ai_coaching`
//! pushes, is not done yet. Reads no env vars.

use std::sync::Arc;

use actix::prelude::*;
use schema::wire::LapSummary;

use crate::registry::Stats;
use crate::supervision::{fail, guarded, ChildFailed, Control};
use crate::system::Env;

/// A lap the driver completed and the store kept.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct LapSeen(pub LapSummary);

/// What the coach has seen (for tests and the engineer view).
#[derive(Debug, Clone, Message)]
#[rtype(result = "CoachState")]
pub struct GetCoachState;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoachState {
    pub laps_seen: u32,
    pub best_valid: Option<f64>,
    pub last_lap_number: Option<i32>,
}

pub struct Coach {
    stats: Arc<Stats>,
    parent: Recipient<ChildFailed>,
    state: CoachState,
}

impl Coach {
    pub fn new(env: Env, path: String, parent: Recipient<ChildFailed>) -> Self {
        let stats = env.registry.register(&path, "coach");
        Self { stats, parent, state: CoachState::default() }
    }
}

impl Actor for Coach {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.stats.started();
        self.stats.set_control(ctx.address().recipient());
    }
}

impl Handler<LapSeen> for Coach {
    type Result = ();

    fn handle(&mut self, msg: LapSeen, ctx: &mut Context<Self>) {
        self.stats.received();
        let stats = self.stats.clone();
        let r = guarded(&stats, || {
            let lap = msg.0;
            self.state.laps_seen += 1;
            self.state.last_lap_number = Some(lap.lap_number);
            if lap.valid && self.state.best_valid.is_none_or(|b| lap.lap_time < b) {
                self.state.best_valid = Some(lap.lap_time);
            }
            Ok(())
        });
        if let Err(reason) = r {
            fail::<Self>(ctx, &self.stats, &self.parent, reason);
        }
    }
}

impl Handler<GetCoachState> for Coach {
    type Result = MessageResult<GetCoachState>;

    fn handle(&mut self, _: GetCoachState, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state.clone())
    }
}

impl Handler<Control> for Coach {
    type Result = ();

    fn handle(&mut self, msg: Control, ctx: &mut Context<Self>) {
        crate::supervision::obey::<Self>(msg, ctx, &self.stats, &self.parent);
    }
}
