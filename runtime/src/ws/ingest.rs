//! A driver node's side of the socket: its telemetry, handed to its `DriverSession` (each batch
//! that continues the previous one says so, so nothing overtakes a lost or refused batch) and
//! acknowledged once durably stored (`ack {seq}`), refused batches held back until the node
//! resends them, the session re-resolved after it restarted; its sim session marks
//! (`sim_session`), handed to the same session between the batches around them, so the racing
//! session changes or ends exactly there; and its voice commands, passed to the driver's voice
//! channel. In cluster mode, when another runtime node owns the driver's team,
//! each batch is forwarded to it (`Cluster::forward`) and its answer — the acknowledgement after
//! commit there, or the refusal — goes back to the node the same way; when the owner stops
//! answering, the connection looks for the owner again (or takes the team over, once its lease
//! expired). Reads no env vars.

use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web_actors::ws;
use pitbox_actors::driver_session::{DriverSession, Frames, IngestError, NodeConnection, NodeSession};
use pitbox_actors::store_writer::{AckTo, Stored};
use pitbox_actors::supervision::Handle;
use pitbox_actors::voice_channel::VoiceIn;
use pitbox_schema::wire::{
    Ack, Envelope, ErrorCode, Message as Wire, SimSession, TelemetryFrame, VoiceCommand, VoiceIntent,
};

use super::WsSession;
use crate::cluster::{Forwarded, FramesRequest, Route};

/// The driver a node connection publishes as.
pub(super) struct NodeLink {
    pub team_id: String,
    pub driver_id: String,
    /// The driver's session across its restarts.
    pub session: Option<Handle<DriverSession>>,
    /// Cluster mode: the team is owned by another node; batches are forwarded there.
    remote: bool,
    resolving: bool,
    /// A batch starting at this seq was refused (its session restarted, storage was busy): later
    /// batches already on their way are refused here, without a trip to the session, until the
    /// node resends from there. Order itself is kept by the session (`Frames::after`); this only
    /// spares it batches it would refuse. Given up after [`REWIND_PATIENCE`].
    rewind: Option<(u64, Instant)>,
    /// The last seq of the node's previous batch. A batch that continues it says so
    /// (`Frames::after`): batches are pipelined, and a restarted session, or one whose storage was
    /// busy, must not take a later batch when an earlier one never reached it or was refused, or
    /// the writer's watermark would pass the missing frames and drop their resend as seen.
    previous: Option<u64>,
}

impl NodeLink {
    /// A node publishing as `driver_id` of `team_id` through `session`.
    pub fn new(team_id: String, driver_id: String, session: Handle<DriverSession>) -> Self {
        Self {
            team_id,
            driver_id,
            session: Some(session),
            remote: false,
            resolving: false,
            rewind: None,
            previous: None,
        }
    }

    /// A node publishing as `driver_id` of `team_id`, whose team another runtime node owns.
    pub fn remote(team_id: String, driver_id: String) -> Self {
        Self {
            team_id,
            driver_id,
            session: None,
            remote: true,
            resolving: false,
            rewind: None,
            previous: None,
        }
    }
}

/// Telemetry from a node, as it arrived.
pub(super) struct Batch {
    pub driver_id: String,
    pub stream_id: Option<String>,
    pub frames: Vec<TelemetryFrame>,
    pub to: Option<String>,
    pub id: Option<String>,
}

/// How long refused batches wait for the node's resend before any order is accepted again (a
/// node whose spool thinned the frames away never resends them).
const REWIND_PATIENCE: Duration = Duration::from_secs(5);

impl WsSession {
    /// Telemetry from the node, handed to its session (pipelined: the session's mailbox is the
    /// queue), or refused with a typed error the node answers by resending.
    pub(super) fn telemetry(&mut self, batch: Batch, ctx: &mut ws::WebsocketContext<Self>) {
        let Batch { driver_id, stream_id, frames, to, id } = batch;
        let Some(node) = &self.node else {
            return self.error(ctx, ErrorCode::Forbidden, "only driver nodes send telemetry".into(), id);
        };
        if driver_id != node.driver_id {
            return self.error(
                ctx,
                ErrorCode::Forbidden,
                "drivers may publish only their own telemetry".into(),
                id,
            );
        }
        let own_path = pitbox_actors::driver_session::driver_path(&node.team_id, &node.driver_id);
        if to.as_ref().is_some_and(|t| *t != own_path) {
            return self.error(
                ctx,
                ErrorCode::Forbidden,
                format!("you may not address {}", to.unwrap_or_default()),
                id,
            );
        }
        if frames.is_empty() {
            return;
        }
        let first = frames.first().and_then(|f| f.seq);
        let Some(node) = self.node.as_mut() else { return };
        // A batch that continues the node's previous one claims it, whatever became of that one;
        // a resend (going back) or a gap the node made (its spool thinned) claims nothing.
        let after = node.previous.filter(|l| first.is_some_and(|f| f == l + 1));
        node.previous = frames.last().and_then(|f| f.seq);
        if let (Some((from, since)), Some(seq)) = (node.rewind, first) {
            if seq > from && since.elapsed() < REWIND_PATIENCE {
                return self.error(ctx, ErrorCode::Unavailable, format!("resend from seq {from}"), id);
            }
        }
        node.rewind = None;
        if node.remote {
            let team = node.team_id.clone();
            let req = FramesRequest { driver_id, stream_id, frames, after };
            return self.forward(team, req, first, id, ctx);
        }
        let Some(session) = node.session.clone().filter(|s| s.connected()) else {
            self.refused(first);
            self.reresolve(ctx);
            return self.error(ctx, ErrorCode::Unavailable, "driver session restarting; resend".into(), id);
        };
        let ack = AckTo::Actor(ctx.address().recipient::<Stored>());
        let request = session.send(Frames { stream_id, frames, after, ack: Some(ack) });
        ctx.spawn(request.into_actor(self).map(move |r, act, ctx| match r {
            Ok(Ok(fresh)) => {
                act.metrics.telemetry_samples.inc_by(fresh as u64);
            }
            Ok(Err(IngestError::Invalid(m))) => act.error(ctx, ErrorCode::InvalidField, m, id),
            Ok(Err(e)) => {
                act.refused(first);
                // Cluster mode: the team's lease went elsewhere; find its owner.
                if act.node.as_ref().is_some_and(|n| !act.system.env.fence.may_run(&n.team_id)) {
                    act.reresolve(ctx);
                }
                act.error(ctx, ErrorCode::Unavailable, e.to_string(), id)
            }
            Err(_) => {
                act.refused(first);
                act.reresolve(ctx);
                act.error(ctx, ErrorCode::Unavailable, "driver session restarting; resend".into(), id);
            }
        }));
    }

    /// The node's sim session changed or ended from its frame `seq` on. Behind the batches before
    /// it in the session's mailbox; left alone after a refused batch it follows (the node names it
    /// again when it resends), or when the session is restarting (the node's next batch is refused,
    /// and the same). Cluster mode: forwarded to the team's owner behind the node's batches, as
    /// they are.
    pub(super) fn sim_session(
        &mut self,
        s: SimSession,
        id: Option<String>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let Some(node) = &self.node else {
            return self.error(ctx, ErrorCode::Forbidden, "only driver nodes send sim_session".into(), id);
        };
        if let (Some((from, _)), Some(seq)) = (node.rewind, s.seq) {
            if seq > from {
                return;
            }
        }
        // Nothing named yet (the sim has not told its track): the racing session stays.
        let Some(place) = super::sim_place(&s) else { return };
        if node.remote {
            let Some(cluster) = self.cluster.clone() else { return };
            let (team, driver) = (node.team_id.clone(), node.driver_id.clone());
            let fut = async move { (cluster.forward_session(&team, &driver, s).await, driver) };
            ctx.spawn(fut.into_actor(self).map(|(answer, driver), _, _| {
                if !matches!(answer, Forwarded::Stored { .. }) {
                    tracing::warn!(%driver, ?answer, "the owner did not take the node's sim session");
                }
            }));
            return;
        }
        let Some(session) = node.session.clone().filter(|s| s.connected()) else { return };
        let driver = node.driver_id.clone();
        let request = session.send(NodeSession { place, seq: s.seq });
        ctx.spawn(request.into_actor(self).map(move |r, _, _| {
            if let Err(e) = r.map_err(|e| e.to_string()).and_then(|r| r.map(drop)) {
                tracing::warn!(%driver, error = %e, "the node's sim session not applied");
            }
        }));
    }

    /// A batch starting at `first` was not stored: hold later ones until it is resent.
    fn refused(&mut self, first: Option<u64>) {
        let (Some(node), Some(first)) = (self.node.as_mut(), first) else { return };
        let from = node.rewind.map_or(first, |(f, _)| f.min(first));
        node.rewind = Some((from, Instant::now()));
    }

    /// Cluster mode: a batch for the team's owner on another node; its answer goes to the node
    /// as on one node (an `ack` after commit, or a typed refusal it resends after).
    fn forward(
        &mut self,
        team: String,
        req: FramesRequest,
        first: Option<u64>,
        id: Option<String>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let Some(cluster) = self.cluster.clone() else { return };
        let (driver_id, stream_id) = (req.driver_id.clone(), req.stream_id.clone());
        let fut = async move { cluster.forward(&team, req).await };
        ctx.spawn(fut.into_actor(self).map(move |answer, act, ctx| match answer {
            Forwarded::Stored { seq, fresh } => {
                act.metrics.telemetry_samples.inc_by(fresh as u64);
                if let Some(seq) = seq {
                    act.send(ctx, Envelope::new(Wire::Ack(Ack { driver_id, stream_id, seq })));
                }
            }
            Forwarded::Invalid(m) => act.error(ctx, ErrorCode::InvalidField, m, id),
            Forwarded::Refused(m) => {
                act.refused(first);
                act.error(ctx, ErrorCode::Unavailable, m, id)
            }
            Forwarded::Unreachable(m) => {
                act.refused(first);
                act.reresolve(ctx);
                act.error(ctx, ErrorCode::Unavailable, format!("{m}; resend"), id)
            }
        }));
    }

    /// The node's session is down. Its handle follows a restart by itself; a session stopped
    /// after repeated failures comes back when asked for after the restart period. In cluster
    /// mode the team's owner is looked for first: this node (it holds the lease, or takes it once
    /// expired) or another, to forward to.
    fn reresolve(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(node) = self.node.as_mut() else { return };
        if node.resolving {
            return;
        }
        node.resolving = true;
        let (system, team, driver) = (self.system.clone(), node.team_id.clone(), node.driver_id.clone());
        let cluster = self.cluster.clone();
        let find = async move {
            if let Some(c) = &cluster {
                match c.claim(&team).await.map_err(pitbox_actors::SystemError::Unavailable)? {
                    Route::Local(_) => {}
                    Route::Remote(_) => return Ok(None),
                }
            }
            system.driver_handle(&team, &driver).await.map(Some)
        };
        ctx.spawn(find.into_actor(self).map(|r, act, ctx| {
            let Some(node) = act.node.as_mut() else { return };
            node.resolving = false;
            match r {
                Ok(None) => {
                    node.remote = true;
                    node.session = None;
                }
                Ok(Some(session)) => {
                    node.remote = false;
                    // The session keeps its nodes through restarts; a new one must be told.
                    if !node.session.as_ref().is_some_and(|s| s.same(&session)) {
                        session.do_send(NodeConnection(true));
                    }
                    node.session = Some(session);
                }
                // Stopped for now by its supervisor: try again; the node keeps its frames meanwhile.
                Err(_) => {
                    ctx.run_later(Duration::from_millis(500), |act, ctx| act.reresolve(ctx));
                }
            }
        }));
    }

    /// `voice_command`: a driver node's spoken command for its own driver's voice channel. The
    /// answer comes later as `voice_say` (with its clip); a bad command gets a typed error naming
    /// the field, and the connection goes on.
    pub(super) fn voice_command(
        &mut self,
        c: VoiceCommand,
        id: Option<String>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let Some(node) = &self.node else {
            let why = "voice_command is sent by driver nodes only".into();
            return self.error(ctx, ErrorCode::Forbidden, why, id);
        };
        if let Err(why) = check_voice_command(&c) {
            return self.error(ctx, ErrorCode::InvalidField, why, id);
        }
        let (system, team, driver) = (self.system.clone(), node.team_id.clone(), node.driver_id.clone());
        let msg = VoiceIn { command: c, received: Instant::now() };
        ctx.spawn(async move { system.voice_command(&team, &driver, msg).await }.into_actor(self).map(
            move |r, act, ctx| {
                if let Err(e) = r {
                    act.error(ctx, ErrorCode::Unavailable, e.to_string(), id);
                }
            },
        ));
    }
}

/// Longest `voice_command` id, transcript and text.
const VOICE_ID_MAX: usize = 64;
const VOICE_TEXT_MAX: usize = 500;

/// What a `voice_command` must be: an id, a transcript and text of sane length, a confidence
/// between 0 and 1, and for `tell_team` the message.
fn check_voice_command(c: &VoiceCommand) -> Result<(), String> {
    if c.id.trim().is_empty() || c.id.chars().count() > VOICE_ID_MAX {
        return Err(format!("id: 1 to {VOICE_ID_MAX} characters"));
    }
    if c.transcript.chars().count() > VOICE_TEXT_MAX {
        return Err(format!("transcript: at most {VOICE_TEXT_MAX} characters"));
    }
    if !(c.confidence.is_finite() && (0.0..=1.0).contains(&c.confidence)) {
        return Err(format!("confidence: must be between 0 and 1, got {}", c.confidence));
    }
    if let Some(t) = &c.text {
        crate::routes::text("text", t, VOICE_TEXT_MAX).map_err(|e| e.message)?;
    }
    if c.command == VoiceIntent::TellTeam && c.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
        return Err("text: tell_team needs the message to pass on".into());
    }
    if c.number.is_some_and(|n| !n.is_finite()) {
        return Err("number: must be a finite number".into());
    }
    Ok(())
}

/// The store writer's word that frames are durable: the node's `ack`.
impl Handler<Stored> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: Stored, ctx: &mut Self::Context) {
        if let Some(why) = msg.refused {
            // Cluster mode: the team's lease is lost; the node resends to whoever owns it now.
            self.refused(msg.seq);
            self.reresolve(ctx);
            return self.error(ctx, ErrorCode::Unavailable, why, None);
        }
        if let Some(seq) = msg.seq {
            let ack = Ack { driver_id: msg.driver_id, stream_id: msg.stream_id, seq };
            self.send(ctx, Envelope::new(Wire::Ack(ack)));
        }
    }
}
