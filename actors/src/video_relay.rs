//! VideoRelay: relays a driver's onboard video (H.264) to the dashboards that watch it. The media
//! path comes with the video work; this actor holds the place in the tree, its address and its
//! supervision. Reads no env vars.

use std::sync::Arc;

use actix::prelude::*;

use crate::registry::Stats;
use crate::supervision::{ChildFailed, Control};
use crate::system::Env;

pub struct VideoRelay {
    stats: Arc<Stats>,
    parent: Recipient<ChildFailed>,
}

impl VideoRelay {
    pub fn new(env: Env, path: String, parent: Recipient<ChildFailed>) -> Self {
        let stats = env.registry.register(&path, "video_relay");
        Self { stats, parent }
    }
}

impl Actor for VideoRelay {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.stats.started();
        self.stats.set_control(ctx.address().recipient());
    }
}

impl Handler<Control> for VideoRelay {
    type Result = ();

    fn handle(&mut self, msg: Control, ctx: &mut Context<Self>) {
        crate::supervision::obey::<Self>(msg, ctx, &self.stats, &self.parent);
    }
}
