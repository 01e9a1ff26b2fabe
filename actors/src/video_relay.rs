//! VideoRelay: relays a driver's onboard video (H.264 media frames from the driver's node, see
//! `pitbox_schema::wire::media`) to the dashboards of the team that watch it.
//!
//! - It keeps the latest keyframe and the frames since (one group of pictures, bounded), so a new
//!   viewer starts at once from the last keyframe.
//! - Each viewer has a count of frames handed to its connection and not yet taken from its mailbox
//!   (a stalled socket stops its connection actor, so the count grows). Past [`MAX_PENDING`] frames
//!   beyond the group it started with, the viewer skips to the next keyframe: nothing queues for it,
//!   and the other viewers are not touched.
//! - With no viewer the node is asked to pause (no capture, no encoding, no uplink); the first
//!   viewer resumes it, starting with a keyframe. A joining viewer asks for a keyframe too.
//! - Viewers, the node's control channel and the counters live in a [`VideoSlot`] held by the
//!   driver's slot, so a restart of this actor (or of the driver session) keeps the viewers watching.
//! - The admin tree shows `viewers`, `frames`, `bytes`, `drops`, `keyframes`, `paused`.
//!
//! Reads no env vars.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use bytes::Bytes;
use pitbox_schema::wire::media::MediaHeader;
use pitbox_schema::wire::VideoAction;

use crate::mailbox::Counted;
use crate::registry::Stats;
use crate::supervision::{ChildFailed, Fatal, Supervised};
use crate::system::Env;

/// Frames a viewer may have waiting, beyond the group of pictures it joined with, before it skips
/// to the next keyframe (about a quarter second at 30 fps).
pub const MAX_PENDING: usize = 8;
/// Messages waiting for the relay at most (frames from the node, viewers coming and going).
pub const MAILBOX: usize = 128;
/// Frames kept since the last keyframe; past it (a node that never sends keyframes) the group is
/// dropped and a keyframe is asked for.
pub const MAX_GOP_FRAMES: usize = 300;
/// Bytes kept since the last keyframe, for the same reason.
pub const MAX_GOP_BYTES: usize = 16 * 1024 * 1024;

/// One media frame from the node: its header (already checked) and the whole frame as received.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct MediaIn {
    pub header: MediaHeader,
    pub frame: Bytes,
}

/// A frame for one viewer connection: the driver it shows and the frame as the node sent it (the
/// connection writes its own stream number into the header).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct VideoOut {
    pub driver_id: Arc<str>,
    pub frame: Bytes,
    /// Counts this viewer's frames in flight; the connection decrements it when it takes one.
    pub pending: Arc<AtomicUsize>,
}

/// What the relay asks of the node (the node's connection turns it into `video_control`).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct NodeVideo(pub VideoAction);

/// The driver's node connected (its connection id, and where controls go).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct NodeAttach {
    pub conn: u64,
    pub control: Recipient<NodeVideo>,
}

/// The node's connection closed.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct NodeDetach {
    pub conn: u64,
}

/// A dashboard connection starts watching. Answers the counter of its frames in flight.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Arc<AtomicUsize>")]
pub struct Watch {
    pub conn: u64,
    pub viewer: Recipient<VideoOut>,
}

/// A dashboard connection stops watching (or closed).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Unwatch {
    pub conn: u64,
}

/// Counts, for tests and the admin tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Message)]
#[rtype(result = "RelayCounts")]
pub struct GetCounts;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, MessageResponse)]
pub struct RelayCounts {
    pub viewers: u64,
    pub frames: u64,
    pub bytes: u64,
    /// Frames not sent to a viewer because it was behind (summed over viewers).
    pub drops: u64,
    pub keyframes: u64,
    /// Whether the node was last told to pause.
    pub paused: bool,
    /// Frames held for new viewers (the current group of pictures).
    pub gop_frames: u64,
}

struct Viewer {
    out: Recipient<VideoOut>,
    pending: Arc<AtomicUsize>,
    /// Behind (or just joined without a group to start from): waits for the next keyframe.
    waiting_key: bool,
    /// Frames of the group it was given on joining, allowed on top of [`MAX_PENDING`].
    allowance: usize,
}

/// The relay's state; survives restarts (held by the driver's slot).
#[derive(Default)]
pub struct VideoShared {
    viewers: BTreeMap<u64, Viewer>,
    node: Option<(u64, Recipient<NodeVideo>)>,
    gop: Vec<Bytes>,
    gop_bytes: usize,
    counts: RelayCounts,
}

/// The frames are left out: a snapshot of the counts says enough.
impl std::fmt::Debug for VideoShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoShared")
            .field("viewers", &self.viewers.len())
            .field("node", &self.node.as_ref().map(|(c, _)| *c))
            .field("gop", &self.gop.len())
            .field("counts", &self.counts)
            .finish()
    }
}

pub type VideoSlot = Arc<Mutex<VideoShared>>;

impl VideoShared {
    fn tell_node(&mut self, action: VideoAction) {
        match action {
            VideoAction::Pause => self.counts.paused = true,
            VideoAction::Resume => self.counts.paused = false,
            VideoAction::Keyframe => {}
        }
        if let Some((_, node)) = &self.node {
            // A full mailbox only happens to a stalled node connection; the next viewer change
            // asks again.
            let _ = node.try_send(NodeVideo(action));
        }
    }

    fn media(&mut self, msg: MediaIn, driver: &Arc<str>) {
        let MediaIn { header, frame } = msg;
        self.counts.frames += 1;
        self.counts.bytes += frame.len() as u64;
        if header.keyframe {
            self.counts.keyframes += 1;
            self.gop.clear();
            self.gop_bytes = 0;
        }
        if header.keyframe || !self.gop.is_empty() {
            self.gop_bytes += frame.len();
            self.gop.push(frame.clone());
            if self.gop.len() > MAX_GOP_FRAMES || self.gop_bytes > MAX_GOP_BYTES {
                self.gop.clear();
                self.gop_bytes = 0;
                self.tell_node(VideoAction::Keyframe);
            }
        }
        let mut gone = vec![];
        let mut drops = 0;
        for (conn, v) in self.viewers.iter_mut() {
            if v.waiting_key {
                if !header.keyframe {
                    continue;
                }
                v.waiting_key = false;
            }
            let pending = v.pending.load(Ordering::Relaxed);
            if v.allowance > 0 && pending <= MAX_PENDING {
                // It has taken the group it joined with.
                v.allowance = 0;
            }
            if pending >= MAX_PENDING + v.allowance {
                drops += 1;
                v.waiting_key = true;
                continue;
            }
            v.pending.fetch_add(1, Ordering::Relaxed);
            let out =
                VideoOut { driver_id: driver.clone(), frame: frame.clone(), pending: v.pending.clone() };
            match v.out.try_send(out) {
                Ok(()) => {}
                Err(SendError::Full(_)) => {
                    v.pending.fetch_sub(1, Ordering::Relaxed);
                    drops += 1;
                    v.waiting_key = true;
                }
                Err(SendError::Closed(_)) => gone.push(*conn),
            }
        }
        self.counts.drops += drops;
        for conn in gone {
            self.unwatch(conn);
        }
    }

    fn watch(&mut self, conn: u64, out: Recipient<VideoOut>, driver: &Arc<str>) -> Arc<AtomicUsize> {
        let first = self.viewers.is_empty();
        let pending = Arc::new(AtomicUsize::new(0));
        let mut viewer = Viewer { out, pending: pending.clone(), waiting_key: true, allowance: 0 };
        if !self.gop.is_empty() {
            viewer.waiting_key = false;
            viewer.allowance = self.gop.len();
            for frame in &self.gop {
                pending.fetch_add(1, Ordering::Relaxed);
                let out =
                    VideoOut { driver_id: driver.clone(), frame: frame.clone(), pending: pending.clone() };
                if viewer.out.try_send(out).is_err() {
                    pending.fetch_sub(1, Ordering::Relaxed);
                    viewer.waiting_key = true;
                    break;
                }
            }
        }
        self.viewers.insert(conn, viewer);
        self.counts.viewers = self.viewers.len() as u64;
        self.tell_node(if first { VideoAction::Resume } else { VideoAction::Keyframe });
        pending
    }

    fn unwatch(&mut self, conn: u64) {
        if self.viewers.remove(&conn).is_some() {
            self.counts.viewers = self.viewers.len() as u64;
            if self.viewers.is_empty() {
                // What is kept would be stale by the time someone watches again.
                self.gop.clear();
                self.gop_bytes = 0;
                self.tell_node(VideoAction::Pause);
            }
        }
    }
}

pub struct VideoRelay {
    stats: Arc<Stats>,
    parent: Counted<ChildFailed>,
    driver_id: Arc<str>,
    shared: VideoSlot,
}

impl VideoRelay {
    pub fn new(env: Env, path: String, parent: Counted<ChildFailed>, shared: VideoSlot) -> Self {
        let stats = env.registry.register(&path, "video_relay");
        let driver_id: Arc<str> = Arc::from(path.rsplit('/').nth(1).unwrap_or_default());
        Self { stats, parent, driver_id, shared }
    }

    /// Its counters (the same across restarts).
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Runs a handler body on the shared state, guarded (a panic restarts the relay), and shows
    /// the counts in the admin tree.
    fn run<R>(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut VideoShared, &Arc<str>) -> R,
    ) -> Option<R> {
        self.guard(ctx, |relay, _| {
            let mut g = relay.shared.lock().map_err(|_| Fatal("video relay state poisoned".into()))?;
            let r = f(&mut g, &relay.driver_id);
            let c = g.counts;
            relay.stats.set_gauges([
                ("viewers", c.viewers),
                ("frames", c.frames),
                ("bytes", c.bytes),
                ("drops", c.drops),
                ("keyframes", c.keyframes),
                ("paused", u64::from(c.paused)),
            ]);
            Ok(r)
        })
        .ok()
    }
}

impl Supervised for VideoRelay {
    fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }
    fn parent(&self) -> &Counted<ChildFailed> {
        &self.parent
    }
}

impl Actor for VideoRelay {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Room for bursts from the node's socket; past it the connection skips to a keyframe.
        ctx.set_mailbox_capacity(MAILBOX);
        self.stats.started();
        self.stats.set_control(ctx.address().recipient());
    }
}

impl Handler<MediaIn> for VideoRelay {
    type Result = ();

    fn handle(&mut self, msg: MediaIn, ctx: &mut Context<Self>) {
        self.run(ctx, |s, driver| s.media(msg, driver));
    }
}

impl Handler<Watch> for VideoRelay {
    type Result = MessageResult<Watch>;

    fn handle(&mut self, msg: Watch, ctx: &mut Context<Self>) -> Self::Result {
        let r = self.run(ctx, |s, driver| s.watch(msg.conn, msg.viewer, driver));
        MessageResult(r.unwrap_or_default())
    }
}

impl Handler<Unwatch> for VideoRelay {
    type Result = ();

    fn handle(&mut self, msg: Unwatch, ctx: &mut Context<Self>) {
        self.run(ctx, |s, _| s.unwatch(msg.conn));
    }
}

impl Handler<NodeAttach> for VideoRelay {
    type Result = ();

    fn handle(&mut self, msg: NodeAttach, ctx: &mut Context<Self>) {
        self.run(ctx, |s, _| {
            s.node = Some((msg.conn, msg.control));
            // What was kept came from an earlier connection (maybe another resolution).
            s.gop.clear();
            s.gop_bytes = 0;
            s.tell_node(if s.viewers.is_empty() { VideoAction::Pause } else { VideoAction::Resume });
        });
    }
}

impl Handler<NodeDetach> for VideoRelay {
    type Result = ();

    fn handle(&mut self, msg: NodeDetach, ctx: &mut Context<Self>) {
        self.run(ctx, |s, _| {
            if s.node.as_ref().is_some_and(|(c, _)| *c == msg.conn) {
                s.node = None;
                s.gop.clear();
                s.gop_bytes = 0;
            }
        });
    }
}

impl Handler<GetCounts> for VideoRelay {
    type Result = RelayCounts;

    fn handle(&mut self, _: GetCounts, ctx: &mut Context<Self>) -> RelayCounts {
        self.run(ctx, |s, _| RelayCounts { gop_frames: s.gop.len() as u64, ..s.counts }).unwrap_or_default()
    }
}

crate::supervised_control!(VideoRelay);
