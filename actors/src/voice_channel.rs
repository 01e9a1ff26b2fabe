//! VoiceChannel: a driver's voice channel: spoken commands in (speech-to-text on the node) and
//! spoken coaching out. The audio path comes with the voice work; this actor holds the place in the
//! tree, its address and its supervision. Reads no env vars.

use std::sync::Arc;

use actix::prelude::*;

use crate::registry::Stats;
use crate::supervision::{ChildFailed, Control};
use crate::system::Env;

pub struct VoiceChannel {
    stats: Arc<Stats>,
    parent: Recipient<ChildFailed>,
}

impl VoiceChannel {
    pub fn new(env: Env, path: String, parent: Recipient<ChildFailed>) -> Self {
        let stats = env.registry.register(&path, "voice_channel");
        Self { stats, parent }
    }
}

impl Actor for VoiceChannel {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.stats.started();
        self.stats.set_control(ctx.address().recipient());
    }
}

impl Handler<Control> for VoiceChannel {
    type Result = ();

    fn handle(&mut self, msg: Control, ctx: &mut Context<Self>) {
        crate::supervision::obey::<Self>(msg, ctx, &self.stats, &self.parent);
    }
}
