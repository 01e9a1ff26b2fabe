//! VoiceChannel: a driver's voice channel. Spoken commands come in from the driver's node
//! (`voice_command`, recognised on the node); answers, coaching tips and urgent alerts go out to
//! that driver's node only, as `voice_say` followed by one binary media frame of 16-bit mono PCM
//! (`pitbox_schema::wire::voice`). Every command is shown to the team's dashboards as `voice_exchange`.
//!
//! - Answers come from the driver's live state: the session's latest telemetry sample (fuel,
//!   position, lap times, tyres, the per-car arrays for gaps) and the coach's strategy
//!   ([`crate::coach::CoachBoard`]: fuel per lap, laps of fuel, fuel to the end). Missing data is
//!   said as such ("No gap data yet").
//! - `box_this_lap` and `tell_team` store a team message (urgent for the box call) with the
//!   team's other messages and push it to the pit wall; the driver hears a confirmation.
//! - The channel follows its team's hub like a dashboard does: an urgent team message from
//!   someone else, or a handoff request naming this driver, is spoken as an alert. The coach
//!   sends its tip here too ([`Speak`]); `quiet` holds tips back (alerts still come), `resume`
//!   lets them through again.
//! - What is to be said waits in a [`SpeechQueue`]: urgent first (and it does not wait for the
//!   clip playing to end), stale items expire, the same text queued twice is said once.
//! - Text becomes audio through a [`Speech`] engine the runtime provides (espeak-ng, ElevenLabs);
//!   without one, or when it fails, the node gets the text alone.
//! - Its state (quiet, the last thing said, the queue, the counters, the clip numbers) lives in a
//!   [`VoiceSlot`] held by the driver's slot, so a restart keeps serving where it left off.
//! - The admin tree shows `commands`, `spoken`, `expired`, `dropped`, `fallbacks`, `quiet`.
//!
//! Reads no env vars.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use chrono::Utc;
use diesel::prelude::*;
use pitbox_schema::db::models::TeamMessage as TeamMessageRow;
use pitbox_schema::wire::media::{Codec, MediaHeader};
use pitbox_schema::wire::{
    CarStrategy, Envelope, HandoffStatus, Message as Wire, MessagePriority, SayAudio, SayKind, TeamMessage,
    TelemetrySample, VoiceCommand, VoiceExchange, VoiceIntent, VoiceSay, VOICE_STREAM,
};
use tokio::sync::watch;

use crate::driver_session::Latest;
use crate::mailbox::Counted;
use crate::registry::Stats;
use crate::supervision::{ChildFailed, Fatal, Handle, Supervised};
use crate::system::Env;
use crate::team_hub::{HubRef, Push, Subscribe};

/// How long an answer is worth saying (a gap is stale after a few seconds).
pub const ANSWER_TTL: Duration = Duration::from_secs(6);
/// How long a coaching tip is worth saying (the next lap brings the next one).
pub const TIP_TTL: Duration = Duration::from_secs(45);
/// How long an alert is worth saying.
pub const ALERT_TTL: Duration = Duration::from_secs(30);
/// Items waiting at most; past it the least important, oldest one is dropped.
pub const QUEUE_LEN: usize = 8;
/// Longest text spoken (longer is cut at a word): a radio call, not a speech.
pub const MAX_SPOKEN_CHARS: usize = 300;

/// A synthesised clip: 16-bit little-endian mono PCM.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub pcm: Bytes,
    pub sample_rate: u32,
    /// `espeak-ng`, `elevenlabs`.
    pub engine: String,
}

impl Clip {
    pub fn duration_ms(&self) -> u32 {
        let samples = self.pcm.len() as u64 / 2;
        u32::try_from(samples * 1000 / u64::from(self.sample_rate.max(1))).unwrap_or(u32::MAX)
    }
}

/// Text to speech (the runtime's engines). The future runs on the channel's arbiter, so it need
/// not be `Send`; `None` when no engine could speak it (the node then gets the text alone).
pub trait Speech: Send + Sync {
    fn synthesize(&self, text: String) -> Pin<Box<dyn Future<Output = Option<Clip>>>>;
    /// Engine failures that were covered by a fallback engine so far (the admin tree shows them).
    fn fallbacks(&self) -> u64 {
        0
    }
}

/// Something to say, from the coach or from the runtime.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Speak {
    pub kind: SayKind,
    pub text: String,
    pub priority: MessagePriority,
}

/// A `voice_command` from the driver's node, with when it arrived (for latency figures).
/// Answers an error when the channel cannot take it (restarting).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), String>")]
pub struct VoiceIn {
    pub command: VoiceCommand,
    pub received: Instant,
}

/// The channel's counters (for tests and the admin tree).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "VoiceCounts")]
pub struct GetVoiceCounts;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, MessageResponse)]
pub struct VoiceCounts {
    pub commands: u64,
    pub spoken: u64,
    pub expired: u64,
    pub dropped: u64,
    pub quiet: bool,
}

/// One item waiting to be said.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedSay {
    pub id: String,
    pub kind: SayKind,
    pub text: String,
    pub priority: MessagePriority,
    pub reply_to: Option<String>,
    pub expires: Instant,
}

/// The speech queue: most important first, first come first within a priority; expired items are
/// dropped when met; an item whose text is already waiting collapses into it (keeping the higher
/// priority and the later expiry). Pure, so it can be tested.
#[derive(Debug, Default, Clone)]
pub struct SpeechQueue {
    items: VecDeque<QueuedSay>,
    pub expired: u64,
    pub dropped: u64,
}

impl SpeechQueue {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Queues `item`; `false` when it collapsed into one already waiting.
    pub fn push(&mut self, item: QueuedSay) -> bool {
        if let Some(same) = self.items.iter_mut().find(|q| q.text == item.text) {
            if item.priority.rank() > same.priority.rank() {
                same.priority = item.priority;
                same.kind = item.kind;
            }
            same.expires = same.expires.max(item.expires);
            if item.reply_to.is_some() {
                same.reply_to = item.reply_to;
            }
            return false;
        }
        self.items.push_back(item);
        if self.items.len() > QUEUE_LEN {
            // The least important; the oldest of those.
            let low = self.items.iter().map(|q| q.priority.rank()).min().unwrap_or(0);
            if let Some(k) = self.items.iter().position(|q| q.priority.rank() == low) {
                self.items.remove(k);
                self.dropped += 1;
            }
        }
        true
    }

    /// Drops what is stale at `now`.
    pub fn expire(&mut self, now: Instant) {
        let before = self.items.len();
        self.items.retain(|q| q.expires > now);
        self.expired += (before - self.items.len()) as u64;
    }

    /// The next item to say at `now`: the most important that has not expired. While a clip is
    /// playing (`busy`), tips wait for it to end; an answer the driver asked for and an urgent
    /// alert do not (the node pre-empts what plays with an urgent one).
    pub fn pop(&mut self, now: Instant, busy: bool) -> Option<QueuedSay> {
        self.expire(now);
        let best = self.items.iter().map(|q| q.priority.rank()).max()?;
        if busy && best < MessagePriority::High.rank() {
            return None;
        }
        let k = self.items.iter().position(|q| q.priority.rank() == best)?;
        self.items.remove(k)
    }

    /// Drops the waiting coaching tips (`quiet`), counting them as dropped.
    pub fn drop_tips(&mut self) {
        let before = self.items.len();
        self.items.retain(|q| q.kind != SayKind::Coaching || q.priority == MessagePriority::Urgent);
        self.dropped += (before - self.items.len()) as u64;
    }
}

/// What survives a restart of the channel (held by the driver's slot).
#[derive(Debug, Default)]
pub struct VoiceShared {
    pub queue: SpeechQueue,
    /// Tips are held back (`quiet`) until `resume`.
    pub quiet: bool,
    /// The last thing said, for `repeat_that`.
    pub last: Option<(SayKind, String, MessagePriority)>,
    /// The media frame number of the last clip (clips count from 1).
    pub sequence: u32,
    /// Until when the last clip plays on the node.
    pub busy_until: Option<Instant>,
    pub commands: u64,
    pub spoken: u64,
}

pub type VoiceSlot = Arc<Mutex<VoiceShared>>;

/// The driver's current voice channel, shared with its coach so that tips follow a restart.
pub type VoiceRef = Handle<VoiceChannel>;

impl Handle<VoiceChannel> {
    /// Sends something to say; lost (logged at debug) while the channel restarts.
    pub fn speak(&self, msg: Speak) {
        match self.get() {
            Some(a) => a.do_send(msg),
            None => tracing::debug!("voice channel down; not spoken"),
        }
    }
}

/// What an answer is made from.
#[derive(Debug, Clone, Default)]
pub struct LiveData<'a> {
    pub sample: Option<&'a TelemetrySample>,
    pub strategy: Option<&'a CarStrategy>,
    pub last_lap: Option<f64>,
    pub best_lap: Option<f64>,
}

fn lap_time(s: f64) -> String {
    if s >= 60.0 {
        let m = (s / 60.0).floor();
        format!("{}:{:06.3}", m as u32, s - m * 60.0)
    } else {
        format!("{s:.3}")
    }
}

/// The gap in seconds to the car `offset` places away (-1 ahead, +1 behind), from the per-car
/// arrays: the distance in laps times a lap time.
fn gap(d: &LiveData<'_>, offset: i32) -> Result<f64, &'static str> {
    let s = d.sample.ok_or("No telemetry yet")?;
    let cars = s.cars.as_ref().filter(|c| c.is_consistent()).ok_or("No gap data yet")?;
    if s.position <= 0 {
        return Err("No position yet");
    }
    let want = s.position + offset;
    if want <= 0 {
        return Err("Nobody ahead, you lead");
    }
    let k = cars.position.iter().position(|p| *p == want).ok_or(if offset < 0 {
        "No gap data yet"
    } else {
        "Nobody behind"
    })?;
    let (lap, pct) =
        (cars.lap.get(k).copied().unwrap_or(-1), cars.lap_dist_pct.get(k).copied().unwrap_or(-1.0));
    if lap < 0 || pct < 0.0 {
        return Err("No gap data yet");
    }
    let theirs = f64::from(lap) + f64::from(pct);
    let mine = f64::from(s.lap) + f64::from(s.track_position);
    let laps = (theirs - mine).abs();
    let per_lap = d.last_lap.or(d.best_lap).or(s.last_lap_time.map(f64::from)).filter(|t| *t > 0.0);
    per_lap.map(|t| laps * t).ok_or("No lap time yet to time the gap")
}

/// The spoken answer to `intent` from `d`: short, with its numbers, or what is missing.
pub fn answer(intent: VoiceIntent, d: &LiveData<'_>) -> String {
    let s = d.sample;
    let st = d.strategy;
    let fuel_level = st.and_then(|x| x.fuel_level).or(s.map(|s| f64::from(s.fuel_level)));
    match intent {
        VoiceIntent::FuelLeft => match (fuel_level, st.and_then(|x| x.laps_of_fuel)) {
            (Some(l), Some(laps)) => format!("Fuel {l:.1} litres, {laps:.1} laps"),
            (Some(l), None) => format!("Fuel {l:.1} litres"),
            _ => "No fuel data yet".into(),
        },
        VoiceIntent::FuelPerLap => match st.and_then(|x| x.fuel_per_lap) {
            Some(f) => format!("Using {f:.2} litres a lap"),
            None => "No fuel use yet, need a clean lap".into(),
        },
        VoiceIntent::LapsOfFuel => match st.and_then(|x| x.laps_of_fuel) {
            Some(l) => format!("{l:.1} laps of fuel"),
            None => "No fuel use yet, need a clean lap".into(),
        },
        VoiceIntent::FuelToEnd => match st.and_then(|x| x.fuel_to_finish) {
            Some(f) if f > 0.0 => format!("Need {f:.1} litres more to the end"),
            Some(_) => "Fuel is enough to the end".into(),
            None => "No fuel to the end yet".into(),
        },
        VoiceIntent::GapAhead => match gap(d, -1) {
            Ok(g) => format!("Gap ahead {g:.1} seconds"),
            Err(e) => e.into(),
        },
        VoiceIntent::GapBehind => match gap(d, 1) {
            Ok(g) => format!("Gap behind {g:.1} seconds"),
            Err(e) => e.into(),
        },
        VoiceIntent::Position => match s.map(|s| s.position).filter(|p| *p > 0) {
            Some(p) => format!("P{p}"),
            None => "No position yet".into(),
        },
        VoiceIntent::LastLap => {
            match d.last_lap.or(s.and_then(|s| s.last_lap_time).map(f64::from)).filter(|t| *t > 0.0) {
                Some(t) => format!("Last lap {}", lap_time(t)),
                None => "No lap completed yet".into(),
            }
        }
        VoiceIntent::BestLap => {
            match d.best_lap.or(s.and_then(|s| s.best_lap_time).map(f64::from)).filter(|t| *t > 0.0) {
                Some(t) => format!("Best lap {}", lap_time(t)),
                None => "No best lap yet".into(),
            }
        }
        VoiceIntent::Delta => match (d.last_lap, d.best_lap) {
            (Some(l), Some(b)) if l - b < 0.0005 => "Last lap was your best".into(),
            (Some(l), Some(b)) => format!("Plus {:.3} to your best", l - b),
            _ => "No delta yet, need two laps".into(),
        },
        VoiceIntent::TyreTemps => match s.and_then(|s| s.tire_temps) {
            Some(t) => format!(
                "Tyres front {:.0} {:.0}, rear {:.0} {:.0} degrees",
                t.front_left, t.front_right, t.rear_left, t.rear_right
            ),
            None => "No tyre temperatures".into(),
        },
        VoiceIntent::TyreWear => match s.and_then(|s| s.tire_wear) {
            Some(t) => format!(
                "Tyre wear front {:.0} {:.0}, rear {:.0} {:.0} percent left",
                t.front_left, t.front_right, t.rear_left, t.rear_right
            ),
            None => "No tyre wear data".into(),
        },
        VoiceIntent::Remaining => match st.and_then(|x| x.pit_window) {
            Some((a, b)) => format!("Pit window in {a:.0} to {b:.0} laps"),
            None => "No session length known".into(),
        },
        VoiceIntent::BoxThisLap => "Box this lap, copy. Team told".into(),
        VoiceIntent::TellTeam => "Copy, team told".into(),
        VoiceIntent::Quiet => "Copy, quiet. Urgent calls only".into(),
        VoiceIntent::Resume => "Copy, coaching back on".into(),
        VoiceIntent::RepeatThat => "Nothing to repeat".into(),
    }
}

/// Cuts `text` to [`MAX_SPOKEN_CHARS`] at a word.
fn spoken(text: &str) -> String {
    let t = text.trim();
    if t.chars().count() <= MAX_SPOKEN_CHARS {
        return t.to_owned();
    }
    let cut: String = t.chars().take(MAX_SPOKEN_CHARS).collect();
    match cut.rfind(' ') {
        Some(k) => cut[..k].to_owned(),
        None => cut,
    }
}

pub struct VoiceChannelArgs {
    pub env: Env,
    pub path: String,
    pub parent: Counted<ChildFailed>,
    pub team_id: String,
    pub driver_id: String,
    pub hub: HubRef,
    pub latest: watch::Receiver<Latest>,
    /// The session's last and best lap (read at answer time).
    pub laps: Arc<dyn Fn() -> (Option<f64>, Option<f64>) + Send + Sync>,
    pub shared: VoiceSlot,
}

pub struct VoiceChannel {
    a: VoiceChannelArgs,
    stats: Arc<Stats>,
    sub_id: u64,
    /// Who the driver is in team messages: its user (or its driver id) and name.
    sender: (String, String),
    /// A clip is being synthesised (one at a time, so the order holds).
    speaking: bool,
}

impl VoiceChannel {
    pub fn new(a: VoiceChannelArgs) -> Self {
        let stats = a.env.registry.register(&a.path, "voice_channel");
        let sender = (a.driver_id.clone(), a.driver_id.clone());
        Self { a, stats, sub_id: crate::team_hub::internal_subscriber_id(), sender, speaking: false }
    }

    fn node_path(&self) -> String {
        self.a.path.strip_suffix("/voice").map_or_else(|| self.a.path.clone(), |p| format!("{p}/node"))
    }

    /// Runs a handler body guarded (a panic restarts the channel) and shows the gauges.
    fn run<R>(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut Self, &mut Context<Self>) -> Result<R, Fatal>,
    ) -> Option<R> {
        let r = self.guard(ctx, f);
        self.gauges();
        r.ok()
    }

    fn gauges(&self) {
        let fallbacks = self.a.env.speech.as_ref().map_or(0, |s| s.fallbacks());
        if let Ok(g) = self.a.shared.lock() {
            self.stats.set_gauges([
                ("commands", g.commands),
                ("spoken", g.spoken),
                ("expired", g.queue.expired),
                ("dropped", g.queue.dropped),
                ("fallbacks", fallbacks),
                ("quiet", u64::from(g.quiet)),
                ("queued", g.queue.len() as u64),
            ]);
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut VoiceShared) -> R) -> Result<R, Fatal> {
        let mut g = self.a.shared.lock().map_err(|_| Fatal("voice channel state poisoned".into()))?;
        Ok(f(&mut g))
    }

    fn enqueue(&mut self, kind: SayKind, text: &str, priority: MessagePriority, reply_to: Option<String>) {
        let ttl = match kind {
            SayKind::Answer => ANSWER_TTL,
            SayKind::Coaching => TIP_TTL,
            SayKind::Alert => ALERT_TTL,
        };
        let item = QueuedSay {
            id: uuid::Uuid::now_v7().to_string(),
            kind,
            text: spoken(text),
            priority,
            reply_to,
            expires: Instant::now() + ttl,
        };
        let _ = self.with(|s| {
            if kind == SayKind::Coaching && s.quiet && priority != MessagePriority::Urgent {
                s.queue.dropped += 1;
            } else {
                s.queue.push(item);
            }
        });
    }

    /// Takes the next item and speaks it (one at a time); comes back when the clip has played.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.speaking {
            return;
        }
        let now = Instant::now();
        let next = self.with(|s| {
            let busy = s.busy_until.is_some_and(|t| t > now);
            let item = s.queue.pop(now, busy);
            let wait = if item.is_none() && !s.queue.is_empty() {
                s.busy_until.map(|t| t.saturating_duration_since(now))
            } else {
                None
            };
            (item, wait)
        });
        let (item, wait) = match next {
            Ok(n) => n,
            Err(_) => return,
        };
        if let Some(wait) = wait {
            ctx.run_later(wait + Duration::from_millis(5), |act, ctx| act.pump(ctx));
        }
        let Some(item) = item else { return };
        self.speaking = true;
        let speech = self.a.env.speech.clone();
        let text = item.text.clone();
        let fut = async move {
            match speech {
                Some(s) => s.synthesize(text).await,
                None => None,
            }
        };
        ctx.spawn(fut.into_actor(self).map(move |clip, act, ctx| {
            act.speaking = false;
            act.run(ctx, |act, _| act.send_say(item, clip));
            act.pump(ctx);
        }));
    }

    /// `voice_say` and its clip, to the driver's node only.
    fn send_say(&mut self, item: QueuedSay, clip: Option<Clip>) -> Result<(), Fatal> {
        let now = Instant::now();
        if item.expires <= now {
            self.with(|s| s.queue.expired += 1)?;
            return Ok(());
        }
        let (sequence, audio) = self.with(|s| {
            s.spoken += 1;
            s.last = Some((item.kind, item.text.clone(), item.priority));
            let audio = clip.as_ref().map(|c| {
                s.sequence = s.sequence.wrapping_add(1).max(1);
                let ms = c.duration_ms();
                s.busy_until = Some(now + Duration::from_millis(u64::from(ms)));
                SayAudio {
                    sequence: s.sequence,
                    sample_rate: c.sample_rate,
                    duration_ms: ms,
                    engine: c.engine.clone(),
                }
            });
            (s.sequence, audio)
        })?;
        let left = item.expires.saturating_duration_since(now);
        let say = VoiceSay {
            id: item.id,
            kind: item.kind,
            text: item.text,
            priority: item.priority,
            reply_to: item.reply_to,
            expires_at: chrono::Duration::from_std(left).ok().map(|d| Utc::now() + d),
            audio,
        };
        let env = Envelope {
            from: Some(self.a.path.clone()),
            to: Some(self.node_path()),
            ..Envelope::new(Wire::VoiceSay(say))
        };
        let media = clip.map(|c| {
            let header = MediaHeader {
                codec: Codec::Pcm16,
                keyframe: true,
                stream: VOICE_STREAM,
                sequence,
                capture_us: u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0),
                width: 0,
                height: 0,
            };
            Bytes::from(header.frame(&c.pcm))
        });
        self.a.hub.to_node_with(&self.a.driver_id, env, media);
        Ok(())
    }

    fn live_answer(&self, intent: VoiceIntent) -> String {
        let latest = self.a.latest.borrow().clone();
        let sample = latest.as_ref().and_then(|b| b.last()).map(|l| l.update.frame.sample.clone());
        let strategy =
            self.a.env.board.team(&self.a.team_id).into_iter().find(|c| c.driver_id == self.a.driver_id);
        let (last_lap, best_lap) = (self.a.laps)();
        answer(intent, &LiveData { sample: sample.as_ref(), strategy: strategy.as_ref(), last_lap, best_lap })
    }

    fn command(&mut self, msg: VoiceIn, ctx: &mut Context<Self>) -> Result<(), Fatal> {
        let VoiceIn { command: c, received } = msg;
        self.with(|s| s.commands += 1)?;
        let mut priority = MessagePriority::High;
        let text = match c.command {
            VoiceIntent::Quiet => {
                self.with(|s| {
                    s.quiet = true;
                    s.queue.drop_tips();
                })?;
                answer(c.command, &LiveData::default())
            }
            VoiceIntent::Resume => {
                self.with(|s| s.quiet = false)?;
                answer(c.command, &LiveData::default())
            }
            VoiceIntent::RepeatThat => match self.with(|s| s.last.clone())? {
                Some((_, t, p)) => {
                    priority = p;
                    t
                }
                None => answer(c.command, &LiveData::default()),
            },
            VoiceIntent::BoxThisLap => {
                priority = MessagePriority::Urgent;
                let content = format!("Box this lap — {} called it on the radio", self.sender.1);
                self.post(content, MessagePriority::Urgent);
                answer(c.command, &LiveData::default())
            }
            VoiceIntent::TellTeam => {
                let said = c.text.clone().unwrap_or_default();
                self.post(format!("{} (radio): {}", self.sender.1, said.trim()), MessagePriority::Normal);
                answer(c.command, &LiveData::default())
            }
            intent => self.live_answer(intent),
        };
        let exchange = VoiceExchange {
            driver_id: self.a.driver_id.clone(),
            command_id: c.id.clone(),
            command: c.command,
            transcript: c.transcript.clone(),
            confidence: c.confidence,
            answer: text.clone(),
            at: Utc::now(),
        };
        self.a.hub.broadcast(Envelope {
            from: Some(self.a.path.clone()),
            ..Envelope::new(Wire::VoiceExchange(exchange))
        });
        self.enqueue(SayKind::Answer, &text, priority, Some(c.id));
        tracing::debug!(driver = %self.a.driver_id, command = c.command.name(), queued_after_us = received.elapsed().as_micros() as u64, "voice command answered");
        self.pump(ctx);
        Ok(())
    }

    /// Stores a team message from the driver and pushes it to the pit wall.
    fn post(&self, content: String, priority: MessagePriority) {
        let row = TeamMessageRow {
            id: uuid::Uuid::now_v7().to_string(),
            team_id: self.a.team_id.clone(),
            sender_id: self.sender.0.clone(),
            sender_name: self.sender.1.clone(),
            content,
            priority: priority.as_str().to_owned(),
            attachment: None,
            sent_at: Utc::now().naive_utc(),
        };
        let (pool, hub, from) = (self.a.env.pool.clone(), self.a.hub.clone(), self.a.path.clone());
        let (fence, team) = (self.a.env.fence.clone(), self.a.team_id.clone());
        let ticket = fence.ticket(&team);
        actix::spawn(async move {
            let stored = row.clone();
            let r = actix_rt::task::spawn_blocking(move || {
                use pitbox_schema::db::schema::team_messages;
                let mut c = pool.get().map_err(|e| e.to_string())?;
                fence
                    .write(&mut c, &team, &ticket, |c| {
                        diesel::insert_into(team_messages::table).values(&stored).execute(c)
                    })
                    .map_err(|e| e.to_string())
            })
            .await;
            match r.map_err(|e| e.to_string()) {
                Ok(Ok(_)) => {
                    let wire: TeamMessage = TeamMessage { read: false, ..row.to_wire(false) };
                    hub.broadcast(Envelope { from: Some(from), ..Envelope::new(Wire::TeamMessage(wire)) });
                }
                Ok(Err(e)) | Err(e) => tracing::error!(error = %e, "voice team message not stored"),
            }
        });
    }

    /// A team event: urgent messages from others and handoffs naming this driver are spoken.
    fn event(&mut self, env: &Envelope, ctx: &mut Context<Self>) -> Result<(), Fatal> {
        let text = match &env.message {
            Wire::TeamMessage(m) if m.priority == MessagePriority::Urgent && m.sender_id != self.sender.0 => {
                format!("Message from {}: {}", m.sender_name, m.content)
            }
            Wire::HandoffRequest(h)
                if h.status == HandoffStatus::Pending
                    && (h.target_driver_id == self.a.driver_id
                        || h.from_driver_id.as_deref() == Some(self.a.driver_id.as_str())) =>
            {
                format!("Driver change requested: {}", h.reason)
            }
            _ => return Ok(()),
        };
        self.enqueue(SayKind::Alert, &text, MessagePriority::Urgent, None);
        self.pump(ctx);
        Ok(())
    }

    fn subscribe(&mut self, ctx: &mut Context<Self>) {
        let Some(hub) = self.a.hub.get() else {
            ctx.run_later(Duration::from_millis(200), |act, ctx| act.subscribe(ctx));
            return;
        };
        hub.do_send(Subscribe { id: self.sub_id, events: self.me(ctx).recipient() });
    }
}

impl Actor for VoiceChannel {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(256);
        self.stats.started();
        self.stats.set_control(ctx.address().recipient());
        self.gauges();
        self.subscribe(ctx);
        // The driver's name and user for team messages (before any command is handled).
        let (pool, driver) = (self.a.env.pool.clone(), self.a.driver_id.clone());
        let job = async move {
            actix_rt::task::spawn_blocking(move || {
                use pitbox_schema::db::schema::drivers;
                let mut c = pool.get().map_err(|e| e.to_string())?;
                drivers::table
                    .find(&driver)
                    .select((drivers::user_id, drivers::name))
                    .first::<(Option<String>, String)>(&mut *c)
                    .optional()
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
        };
        ctx.wait(job.into_actor(self).map(|r, act, ctx| {
            match r {
                Ok(Some((user, name))) => {
                    act.sender = (user.unwrap_or_else(|| act.a.driver_id.clone()), name)
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(driver = %act.a.driver_id, error = %e, "driver name not read"),
            }
            // What waited through a restart is said now.
            act.pump(ctx);
        }));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(hub) = self.a.hub.get() {
            hub.do_send(crate::team_hub::Unsubscribe { id: self.sub_id });
        }
    }
}

impl Handler<VoiceIn> for VoiceChannel {
    type Result = Result<(), String>;

    fn handle(&mut self, msg: VoiceIn, ctx: &mut Context<Self>) -> Self::Result {
        self.run(ctx, |act, ctx| act.command(msg, ctx))
            .ok_or_else(|| "voice channel failed; restarting".to_owned())
    }
}

impl Handler<Speak> for VoiceChannel {
    type Result = ();

    fn handle(&mut self, msg: Speak, ctx: &mut Context<Self>) {
        self.run(ctx, |act, ctx| {
            act.enqueue(msg.kind, &msg.text, msg.priority, None);
            act.pump(ctx);
            Ok(())
        });
    }
}

impl Handler<Push> for VoiceChannel {
    type Result = ();

    fn handle(&mut self, msg: Push, ctx: &mut Context<Self>) {
        match msg {
            Push::Event(env) => {
                self.run(ctx, |act, ctx| act.event(&env, ctx));
            }
            // Only the team's events concern the channel.
            _ => self.handled(),
        }
    }
}

impl Handler<GetVoiceCounts> for VoiceChannel {
    type Result = VoiceCounts;

    fn handle(&mut self, _: GetVoiceCounts, _: &mut Context<Self>) -> VoiceCounts {
        self.handled();
        self.with(|s| VoiceCounts {
            commands: s.commands,
            spoken: s.spoken,
            expired: s.queue.expired,
            dropped: s.queue.dropped,
            quiet: s.quiet,
        })
        .unwrap_or_default()
    }
}

crate::supervised_control!(VoiceChannel);

impl Supervised for VoiceChannel {
    fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }
    fn parent(&self) -> &Counted<ChildFailed> {
        &self.a.parent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pitbox_schema::wire::{CarArrays, TireSet};

    fn item(text: &str, kind: SayKind, p: MessagePriority, ttl_ms: u64, now: Instant) -> QueuedSay {
        QueuedSay {
            id: text.into(),
            kind,
            text: text.into(),
            priority: p,
            reply_to: None,
            expires: now + Duration::from_millis(ttl_ms),
        }
    }

    #[test]
    fn urgent_goes_first_and_preempts() {
        let now = Instant::now();
        let mut q = SpeechQueue::default();
        q.push(item("tip", SayKind::Coaching, MessagePriority::Normal, 10_000, now));
        q.push(item("answer", SayKind::Answer, MessagePriority::High, 10_000, now));
        q.push(item("fuel critical", SayKind::Alert, MessagePriority::Urgent, 10_000, now));
        // A clip is playing: the urgent item first, then the answer; the tip waits.
        assert_eq!(q.pop(now, true).map(|i| i.text), Some("fuel critical".into()));
        assert_eq!(q.pop(now, true).map(|i| i.text), Some("answer".into()));
        assert_eq!(q.pop(now, true), None, "the tip waits for the clip to end");
        assert_eq!(q.pop(now, false).map(|i| i.text), Some("tip".into()));
        assert!(q.is_empty());
    }

    #[test]
    fn stale_items_expire() {
        let now = Instant::now();
        let mut q = SpeechQueue::default();
        q.push(item("gap ahead 1.2", SayKind::Answer, MessagePriority::High, 100, now));
        q.push(item("tip", SayKind::Coaching, MessagePriority::Normal, 10_000, now));
        let later = now + Duration::from_millis(200);
        assert_eq!(q.pop(later, false).map(|i| i.text), Some("tip".into()));
        assert_eq!(q.expired, 1);
    }

    #[test]
    fn duplicates_collapse_keeping_the_higher_priority() {
        let now = Instant::now();
        let mut q = SpeechQueue::default();
        assert!(q.push(item("box", SayKind::Coaching, MessagePriority::Normal, 1_000, now)));
        assert!(!q.push(item("box", SayKind::Alert, MessagePriority::Urgent, 5_000, now)));
        assert_eq!(q.len(), 1);
        let i = q.pop(now + Duration::from_millis(2_000), true).unwrap();
        assert_eq!((i.priority, i.kind), (MessagePriority::Urgent, SayKind::Alert));
    }

    #[test]
    fn a_full_queue_drops_the_least_important() {
        let now = Instant::now();
        let mut q = SpeechQueue::default();
        q.push(item("alert", SayKind::Alert, MessagePriority::Urgent, 10_000, now));
        for k in 0..QUEUE_LEN {
            q.push(item(&format!("tip {k}"), SayKind::Coaching, MessagePriority::Normal, 10_000, now));
        }
        assert_eq!((q.len(), q.dropped), (QUEUE_LEN, 1));
        assert_eq!(q.pop(now, false).map(|i| i.text), Some("alert".into()));
        assert_eq!(q.pop(now, false).map(|i| i.text), Some("tip 1".into()), "the oldest tip went");
    }

    #[test]
    fn quiet_drops_tips_not_alerts() {
        let now = Instant::now();
        let mut q = SpeechQueue::default();
        q.push(item("tip", SayKind::Coaching, MessagePriority::Normal, 10_000, now));
        q.push(item("fuel", SayKind::Coaching, MessagePriority::Urgent, 10_000, now));
        q.push(item("answer", SayKind::Answer, MessagePriority::High, 10_000, now));
        q.drop_tips();
        assert_eq!((q.len(), q.dropped), (2, 1));
    }

    fn sample() -> TelemetrySample {
        TelemetrySample {
            fuel_level: 23.4,
            position: 3,
            lap: 5,
            track_position: 0.50,
            tire_temps: Some(TireSet {
                front_left: 80.0,
                front_right: 82.0,
                rear_left: 78.0,
                rear_right: 79.0,
            }),
            cars: Some(CarArrays {
                lap: vec![5, 5, 5],
                lap_dist_pct: vec![0.52, 0.50, 0.49],
                position: vec![2, 3, 4],
                on_pit_road: vec![false; 3],
            }),
            ..TelemetrySample::default()
        }
    }

    #[test]
    fn answers_carry_the_numbers() {
        let s = sample();
        let st = CarStrategy {
            driver_id: "d".into(),
            fuel_per_lap: Some(2.75),
            fuel_level: None,
            laps_of_fuel: Some(8.5),
            fuel_to_finish: Some(12.31),
            pit_window: None,
            stint_laps: None,
            alert: None,
            updated_at: Utc::now(),
        };
        let d =
            LiveData { sample: Some(&s), strategy: Some(&st), last_lap: Some(90.0), best_lap: Some(89.5) };
        assert_eq!(answer(VoiceIntent::FuelLeft, &d), "Fuel 23.4 litres, 8.5 laps");
        assert_eq!(answer(VoiceIntent::FuelPerLap, &d), "Using 2.75 litres a lap");
        assert_eq!(answer(VoiceIntent::FuelToEnd, &d), "Need 12.3 litres more to the end");
        assert_eq!(answer(VoiceIntent::GapAhead, &d), "Gap ahead 1.8 seconds");
        assert_eq!(answer(VoiceIntent::GapBehind, &d), "Gap behind 0.9 seconds");
        assert_eq!(answer(VoiceIntent::Position, &d), "P3");
        assert_eq!(answer(VoiceIntent::LastLap, &d), "Last lap 1:30.000");
        assert_eq!(answer(VoiceIntent::Delta, &d), "Plus 0.500 to your best");
        assert_eq!(answer(VoiceIntent::TyreTemps, &d), "Tyres front 80 82, rear 78 79 degrees");
    }

    #[test]
    fn missing_data_is_said() {
        let d = LiveData::default();
        assert_eq!(answer(VoiceIntent::FuelLeft, &d), "No fuel data yet");
        assert_eq!(answer(VoiceIntent::GapBehind, &d), "No telemetry yet");
        let s = TelemetrySample { position: 2, ..TelemetrySample::default() };
        let d = LiveData { sample: Some(&s), ..LiveData::default() };
        assert_eq!(answer(VoiceIntent::GapAhead, &d), "No gap data yet");
        assert_eq!(answer(VoiceIntent::FuelLeft, &d), "Fuel 0.0 litres");
    }

    #[test]
    fn long_text_is_cut_at_a_word() {
        let t = "word ".repeat(100);
        let s = spoken(&t);
        assert!(s.len() <= MAX_SPOKEN_CHARS && s.ends_with("word"));
    }
}
