//! Onboard video on the socket: a driver node's binary media frames go to its driver's
//! `VideoRelay` (never queued: a frame the relay cannot take at once is dropped and the stream
//! resumes at the next keyframe), the relay's `video_control` goes back to the node, and a
//! dashboard watches a driver's video (`watch_video`/`unwatch_video`), its frames renumbered to the
//! stream it was given. Reads no env vars.

use std::sync::atomic::Ordering;

use actix::prelude::*;
use actix_web_actors::ws;
use pitbox_actors::mailbox::Mailbox;
use pitbox_actors::video_relay::{MediaIn, NodeAttach, NodeVideo, Unwatch, VideoOut, VideoRelay, Watch};
use pitbox_schema::db::store::drivers;
use pitbox_schema::wire::media::{MediaHeader, NODE_VIDEO_STREAM};
use pitbox_schema::wire::{Envelope, ErrorCode, Message as Wire, VideoControl, VideoWatching, WatchVideo};

use super::WsSession;
use crate::error::{ApiError, Found};
use crate::routes::scope::{Member, TeamScope};

/// One driver's video a dashboard watches.
pub(super) struct Watching {
    pub stream: u32,
    pub relay: Mailbox<VideoRelay>,
}

impl WsSession {
    /// A binary frame: media from a driver node for its own driver's video relay. Anything else
    /// gets a typed error (the connection stays, up to the error limit).
    pub(super) fn on_binary(&mut self, bytes: bytes::Bytes, ctx: &mut ws::WebsocketContext<Self>) {
        if self.user.is_none() {
            return self.not_authenticated(ctx, None);
        }
        if self.node.is_none() {
            let why = "binary media frames are sent by driver nodes only".into();
            return self.error(ctx, ErrorCode::Forbidden, why, None);
        }
        let header = match MediaHeader::decode(&bytes) {
            Ok((h, _)) => h,
            Err(e) => return self.error(ctx, ErrorCode::InvalidField, format!("media frame: {e}"), None),
        };
        if header.stream != NODE_VIDEO_STREAM {
            let why = format!("media frame: stream {} is not this node's video (0)", header.stream);
            return self.error(ctx, ErrorCode::InvalidField, why, None);
        }
        self.metrics.video_frames.inc();
        // After a dropped frame the pictures that follow cannot be decoded: skip to a keyframe.
        if self.video_gap && !header.keyframe {
            self.metrics.video_dropped.inc();
            return;
        }
        match self.video_relay.as_ref().filter(|r| r.connected()) {
            // Video is never queued: a frame the relay cannot take now (restarting, or its
            // mailbox full) is dropped, and the stream resumes at the next keyframe.
            Some(relay) => {
                self.video_gap = relay.try_send(MediaIn { header, frame: bytes }).is_err();
            }
            None => {
                self.video_gap = true;
                self.resolve_video(ctx);
            }
        }
        if self.video_gap {
            self.metrics.video_dropped.inc();
        }
    }

    /// Finds the node's video relay and attaches to it (again, after the relay restarted).
    pub(super) fn resolve_video(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(node) = &self.node else { return };
        if self.video_resolving {
            return;
        }
        self.video_resolving = true;
        let (system, team, driver) = (self.system.clone(), node.team_id.clone(), node.driver_id.clone());
        ctx.spawn(async move { system.video(&team, &driver).await }.into_actor(self).map(|r, act, ctx| {
            act.video_resolving = false;
            match r {
                Ok(relay) => {
                    relay.do_send(NodeAttach { conn: act.id, control: ctx.address().recipient() });
                    act.video_relay = Some(relay);
                }
                Err(e) => tracing::debug!(conn = act.id, error = %e, "video relay not found yet"),
            }
        }));
    }

    /// `watch_video`: a member of the driver's team starts receiving its onboard video.
    pub(super) fn watch_video(
        &mut self,
        w: WatchVideo,
        id: Option<String>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let Some(user) = &self.user else { return };
        if let Err(e) = TeamScope::<Member>::new(user.clone(), w.team_id.clone()) {
            return self.api_error(ctx, e, id);
        }
        let (db, system) = (self.db.clone(), self.system.clone());
        let me = ctx.address().recipient::<VideoOut>();
        let conn = self.id;
        let (team, driver) = (w.team_id.clone(), w.driver_id.clone());
        let fut = async move {
            let lookup = driver.clone();
            let d = db.run(move |c| drivers::get_driver(c, &lookup).found("driver", &lookup)).await?;
            if d.team_id != team {
                return Err(ApiError::not_found("driver", &driver));
            }
            let relay =
                system.video(&team, &driver).await.map_err(|e| ApiError::unavailable(e.to_string()))?;
            Ok::<_, ApiError>(relay)
        };
        ctx.spawn(fut.into_actor(self).map(move |r, act, ctx| {
            let relay = match r {
                Ok(relay) => relay,
                Err(e) => return act.api_error(ctx, e, id),
            };
            let stream = match act.watching.get(&w.driver_id) {
                Some(old) => old.stream,
                None => {
                    act.next_stream += 1;
                    act.next_stream
                }
            };
            // The answer goes first, so the frames that follow are known.
            let answer = VideoWatching { team_id: w.team_id.clone(), driver_id: w.driver_id.clone(), stream };
            act.send(ctx, Envelope { id, ..Envelope::new(Wire::VideoWatching(answer)) });
            relay.do_send(Watch { conn, viewer: me });
            act.watching.insert(w.driver_id, Watching { stream, relay });
        }));
    }

    /// `unwatch_video`: the driver's frames stop.
    pub(super) fn unwatch_video(&mut self, w: WatchVideo) {
        if let Some(w) = self.watching.remove(&w.driver_id) {
            w.relay.do_send(Unwatch { conn: self.id });
        }
    }
}

/// A frame of a watched video, for a dashboard: sent with the stream number it was given.
impl Handler<VideoOut> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: VideoOut, ctx: &mut Self::Context) {
        msg.pending.fetch_sub(1, Ordering::Relaxed);
        let Some(w) = self.watching.get(&*msg.driver_id) else { return };
        let mut frame = bytes::BytesMut::from(&msg.frame[..]);
        MediaHeader::set_stream(&mut frame, w.stream);
        ctx.binary(frame.freeze());
    }
}

/// The relay's word to a node (pause, resume, a keyframe wanted).
impl Handler<NodeVideo> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: NodeVideo, ctx: &mut Self::Context) {
        self.send(ctx, Envelope::new(Wire::VideoControl(VideoControl { action: msg.0 })));
    }
}
