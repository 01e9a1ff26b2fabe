//! TeamSupervisor: one per team. Starts the team's `TeamHub` and a `DriverSession` per driver,
//! lazily when a driver first appears, spread over the session arbiters, and supervises them with
//! the one [`Supervisor`] (one-for-one: drivers are independent). A child past its restart intensity
//! is stopped, kept stopped for the policy's period and the escalation recorded; the team goes on
//! with its other drivers. Stops idle driver sessions. In cluster mode it starts driver sessions
//! only while this node holds the team's lease (`Env::fence`), and stops them all when the lease
//! is lost ([`StopDrivers`]); the hub stays, so dashboards stay subscribed. Reads no env vars.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use crate::driver_session::{driver_path, ChildIdle, DriverSession, DriverSessionArgs, DriverSlot};
use crate::mailbox::{Counted, Mailbox};
use crate::registry::Stats;
use crate::supervision::{guarded, ChildFailed, ChildSpec, Escalation, Handle, Supervised, Supervisor};
use crate::system::Env;
use crate::team_hub::{HubRef, HubSlot, RegisterDriver, TeamHub};

/// The driver's session, started if needed.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Handle<DriverSession>, String>")]
pub struct GetDriver {
    pub driver_id: String,
}

/// Cluster mode: the team's lease is lost, so its driver sessions stop (their state is in the
/// database for the next owner). The hub stays: dashboards keep their subscription and are fed
/// from the new owner. Answers how many sessions stopped.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "usize")]
pub struct StopDrivers;

/// The team's hub, started if needed.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Option<Mailbox<TeamHub>>")]
pub struct GetHub;

pub struct TeamSupervisor {
    env: Env,
    team_id: String,
    stats: Arc<Stats>,
    parent: Counted<ChildFailed>,
    /// What survives restarts of the hub (its subscribers and drivers).
    hub_slot: HubSlot,
    hub: HubRef,
    children: Supervisor,
    /// Each driver's session handle and what survives its restarts.
    drivers: HashMap<String, (Handle<DriverSession>, Arc<DriverSlot>)>,
}

pub fn team_path(team_id: &str) -> String {
    format!("/teams/{team_id}")
}

impl TeamSupervisor {
    pub fn new(env: Env, team_id: String, parent: Counted<ChildFailed>) -> Self {
        let stats = env.registry.register(&team_path(&team_id), "team_supervisor");
        let children = Supervisor::one_for_one(&env, stats.clone(), Escalation::Record);
        Self {
            env,
            team_id,
            stats,
            parent,
            hub_slot: HubSlot::default(),
            hub: HubRef::default(),
            children,
            drivers: HashMap::new(),
        }
    }

    fn hub_path(&self) -> String {
        format!("{}/hub", team_path(&self.team_id))
    }

    fn hub_spec(&self) -> ChildSpec {
        let (env, team_id, slot) = (self.env.clone(), self.team_id.clone(), self.hub_slot.clone());
        // Subscribers and drivers live in the hub's slot, and sessions reach the hub through the
        // shared handle, so a restart loses nothing but the events in its mailbox.
        ChildSpec::new(self.hub_path(), &self.hub, move |parent| {
            TeamHub::new(&env, &team_id, parent, slot.clone())
        })
    }

    /// The running hub, started again if it stopped (even after it was given up on).
    fn hub(&mut self, ctx: &mut Context<Self>) -> Option<Mailbox<TeamHub>> {
        if let Some(h) = self.hub.get() {
            return Some(h);
        }
        let me = self.me(ctx).recipient();
        if !self.children.revive(&self.hub_path(), &me) {
            let spec = self.hub_spec();
            self.children.start_child(spec, &me);
        }
        self.hub.get()
    }

    fn driver_spec(
        &self,
        ctx: &Context<Self>,
        driver_id: &str,
        handle: &Handle<DriverSession>,
        slot: &Arc<DriverSlot>,
    ) -> ChildSpec {
        let path = driver_path(&self.team_id, driver_id);
        let stats = self.env.registry.register(&path, "driver_session");
        let (env, team_id, driver_id, hub, slot) =
            (self.env.clone(), self.team_id.clone(), driver_id.to_owned(), self.hub.clone(), slot.clone());
        let idle_to: Counted<ChildIdle> = self.me(ctx).recipient();
        let arbiters = self.env.clone();
        ChildSpec::in_arbiter(
            path,
            handle,
            stats,
            move || arbiters.next_arbiter(),
            move |parent| {
                // Every incarnation is announced: dashboards read its samples from the slot's channel.
                hub.do_send(RegisterDriver { driver_id: driver_id.clone(), latest: slot.latest.subscribe() });
                let args = DriverSessionArgs {
                    env: env.clone(),
                    team_id: team_id.clone(),
                    driver_id: driver_id.clone(),
                    parent,
                    idle_to: idle_to.clone(),
                    slot: slot.clone(),
                    hub: hub.clone(),
                };
                // Made on its arbiter, restored from the slot's checkpoint.
                move || DriverSession::new(args)
            },
        )
    }

    fn driver(&mut self, driver_id: &str, ctx: &mut Context<Self>) -> Result<Handle<DriverSession>, String> {
        if !self.env.fence.may_run(&self.team_id) {
            return Err(format!("team {} is owned by another runtime node", self.team_id));
        }
        let path = driver_path(&self.team_id, driver_id);
        if self.children.given_up(&path) {
            return Err(format!(
                "driver session {driver_id} was stopped after repeated failures; retry later"
            ));
        }
        let (handle, slot) = self
            .drivers
            .entry(driver_id.to_owned())
            .or_insert_with(|| (Handle::default(), Arc::new(DriverSlot::default())))
            .clone();
        if handle.connected() {
            return Ok(handle);
        }
        self.hub(ctx);
        let me = self.me(ctx).recipient();
        if !self.children.revive(&path, &me) {
            let spec = self.driver_spec(ctx, driver_id, &handle, &slot);
            self.children.start_child(spec, &me);
        }
        if handle.connected() {
            Ok(handle)
        } else {
            Err(format!("driver session {driver_id} is restarting"))
        }
    }
}

impl Actor for TeamSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.stats.started();
        self.hub(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.children.stop_all();
    }
}

impl Supervised for TeamSupervisor {
    fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }
    fn parent(&self) -> &Counted<ChildFailed> {
        &self.parent
    }
}

crate::supervised_control!(TeamSupervisor);

impl Handler<GetDriver> for TeamSupervisor {
    type Result = Result<Handle<DriverSession>, String>;

    fn handle(&mut self, msg: GetDriver, ctx: &mut Context<Self>) -> Self::Result {
        // A failure here answers an error and the team goes on: failing would restart the team
        // and lose every driver's slot.
        let stats = self.stats.clone();
        guarded(&stats, || Ok(self.driver(&msg.driver_id, ctx))).unwrap_or_else(Err)
    }
}

impl Handler<GetHub> for TeamSupervisor {
    type Result = Option<Mailbox<TeamHub>>;

    fn handle(&mut self, _: GetHub, ctx: &mut Context<Self>) -> Self::Result {
        self.handled();
        self.hub(ctx)
    }
}

impl Handler<ChildFailed> for TeamSupervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildFailed, ctx: &mut Context<Self>) {
        self.handled();
        let me = self.me(ctx).recipient();
        // Escalation::Record: a child given up on stays stopped; the team goes on.
        self.children.child_failed(&msg, &me);
    }
}

impl Handler<StopDrivers> for TeamSupervisor {
    type Result = usize;

    fn handle(&mut self, _: StopDrivers, _: &mut Context<Self>) -> usize {
        self.handled();
        let drivers: Vec<String> = self.drivers.drain().map(|(id, _)| id).collect();
        for driver_id in &drivers {
            self.children.stop_child(&driver_path(&self.team_id, driver_id));
        }
        drivers.len()
    }
}

impl Handler<ChildIdle> for TeamSupervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildIdle, _: &mut Context<Self>) {
        self.handled();
        if self.drivers.remove(&msg.driver_id).is_some() {
            let path = driver_path(&self.team_id, &msg.driver_id);
            tracing::info!(%path, "driver session idle; stopped");
            self.children.stop_child(&path);
        }
    }
}
