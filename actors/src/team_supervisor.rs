//! TeamSupervisor: one per team. Starts the team's `TeamHub` and a `DriverSession` per driver,
//! lazily when a driver first appears, spread over the session arbiters; restarts a failed child
//! from its slot (one-for-one) within the restart policy, otherwise stops it, keeps it stopped for
//! the policy's period and records the escalation; stops idle driver sessions. Reads no env vars.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use schema::wire::ActorStatus;

use crate::driver_session::{driver_path, ChildIdle, DriverSession, DriverSessionArgs, DriverSlot};
use crate::registry::Stats;
use crate::supervision::{guarded, ChildFailed, RestartTracker};
use crate::system::Env;
use crate::team_hub::{HubRef, HubSlot, RegisterDriver, TeamHub};

/// The driver's session, started if needed.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Addr<DriverSession>, String>")]
pub struct GetDriver {
    pub driver_id: String,
}

#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Addr<TeamHub>")]
pub struct GetHub;

struct DriverChild {
    addr: Option<Addr<DriverSession>>,
    slot: Arc<DriverSlot>,
    tracker: RestartTracker,
    stopped_at: Option<Instant>,
}

pub struct TeamSupervisor {
    env: Env,
    team_id: String,
    stats: Arc<Stats>,
    hub_slot: HubSlot,
    hub: HubRef,
    hub_tracker: RestartTracker,
    drivers: HashMap<String, DriverChild>,
}

impl TeamSupervisor {
    pub fn new(env: Env, team_id: String) -> Self {
        let stats = env.registry.register(&format!("/teams/{team_id}"), "team_supervisor");
        Self {
            env,
            team_id,
            stats,
            hub_slot: HubSlot::default(),
            hub: HubRef::default(),
            hub_tracker: RestartTracker::default(),
            drivers: HashMap::new(),
        }
    }

    fn start_hub(&mut self, ctx: &mut Context<Self>) -> Addr<TeamHub> {
        let hub =
            TeamHub::new(&self.env, &self.team_id, ctx.address().recipient(), self.hub_slot.clone()).start();
        self.hub.set(Some(hub.clone()));
        hub
    }

    fn hub(&mut self, ctx: &mut Context<Self>) -> Addr<TeamHub> {
        match self.hub.get() {
            Some(h) => h,
            None => self.start_hub(ctx),
        }
    }

    fn start_driver(&mut self, driver_id: &str, ctx: &mut Context<Self>) -> Addr<DriverSession> {
        let hub = self.hub(ctx);
        let child = self.drivers.entry(driver_id.to_owned()).or_insert_with(|| DriverChild {
            addr: None,
            slot: Arc::new(DriverSlot::default()),
            tracker: RestartTracker::default(),
            stopped_at: None,
        });
        let args = DriverSessionArgs {
            env: self.env.clone(),
            team_id: self.team_id.clone(),
            driver_id: driver_id.to_owned(),
            parent: ctx.address().recipient(),
            idle_to: ctx.address().recipient(),
            slot: child.slot.clone(),
            hub: self.hub.clone(),
        };
        let arbiter = self.env.next_arbiter();
        let addr = DriverSession::start_in_arbiter(&arbiter, move |_| DriverSession::new(args));
        child.addr = Some(addr.clone());
        child.stopped_at = None;
        hub.do_send(RegisterDriver {
            driver_id: driver_id.to_owned(),
            latest: child.slot.latest.subscribe(),
        });
        addr
    }
}

impl Actor for TeamSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.stats.started();
        self.start_hub(ctx);
    }
}

impl Handler<GetDriver> for TeamSupervisor {
    type Result = Result<Addr<DriverSession>, String>;

    fn handle(&mut self, msg: GetDriver, ctx: &mut Context<Self>) -> Self::Result {
        self.stats.received();
        let period = self.env.policy.period;
        let stats = self.stats.clone();
        guarded(&stats, || {
            if let Some(child) = self.drivers.get(&msg.driver_id) {
                if let Some(t) = child.stopped_at {
                    if t.elapsed() < period {
                        return Ok(Err(format!(
                            "driver session {} was stopped after repeated failures; retry later",
                            msg.driver_id
                        )));
                    }
                }
                if let Some(addr) = child.addr.as_ref().filter(|a| a.connected()) {
                    return Ok(Ok(addr.clone()));
                }
            }
            Ok(Ok(self.start_driver(&msg.driver_id, ctx)))
        })
        .unwrap_or_else(Err)
    }
}

impl Handler<GetHub> for TeamSupervisor {
    type Result = Addr<TeamHub>;

    fn handle(&mut self, _: GetHub, ctx: &mut Context<Self>) -> Self::Result {
        self.stats.received();
        self.stats.handled();
        self.hub(ctx)
    }
}

impl Handler<ChildFailed> for TeamSupervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildFailed, ctx: &mut Context<Self>) {
        self.stats.received();
        self.stats.handled();
        let policy = self.env.policy;
        let child_stats = self.env.registry.register(&msg.path, "child");
        if msg.path.ends_with("/hub") {
            if self.hub_tracker.allow(&policy) {
                // Subscribers and drivers live in the hub's slot, and sessions reach the hub through
                // the shared reference, so a restart loses nothing but the events in its mailbox.
                child_stats.record_restart(&msg.reason);
                self.start_hub(ctx);
            } else {
                child_stats.set_status(ActorStatus::Stopped);
                self.stats.record_escalation(format!("{}: {}", msg.path, msg.reason));
                self.hub.set(None);
            }
            return;
        }
        let Some((driver_id, child)) =
            self.drivers.iter_mut().find(|(id, _)| driver_path(&self.team_id, id) == msg.path)
        else {
            return;
        };
        let driver_id = driver_id.clone();
        if child.tracker.allow(&policy) {
            child_stats.record_restart(&msg.reason);
            tracing::info!(path = %msg.path, restarts = child_stats.restarts(), "restarting driver session");
            self.start_driver(&driver_id, ctx);
        } else {
            child.addr = None;
            child.stopped_at = Some(Instant::now());
            child_stats.set_status(ActorStatus::Stopped);
            self.stats.record_escalation(format!("{}: {}", msg.path, msg.reason));
            tracing::error!(path = %msg.path, reason = %msg.reason, "driver session exceeded its restart intensity; stopped");
        }
    }
}

impl Handler<ChildIdle> for TeamSupervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildIdle, _: &mut Context<Self>) {
        self.stats.received();
        self.stats.handled();
        if let Some(child) = self.drivers.remove(&msg.driver_id) {
            if let Some(addr) = child.addr {
                addr.do_send(crate::supervision::Control::Stop);
            }
            let path = driver_path(&self.team_id, &msg.driver_id);
            tracing::info!(%path, "driver session idle; stopped");
            self.env.registry.remove_subtree(&path);
        }
    }
}
