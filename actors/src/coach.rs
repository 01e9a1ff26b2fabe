//! Coach: a driver's AI coach in the actor tree. Every completed lap (its frames shared with the
//! store, not copied) goes through the `pitbox-coach` engine; the result is pushed as
//! `ai_coaching` to the team's dashboards (full detail: findings with their corners and numbers,
//! confidence, priority, the car's strategy) and, as one short tip, to the driver's node only. The
//! [`TipGate`] keeps the driver's ear: at most one tip per lap, no advice repeated while nothing
//! changed, urgent fuel warnings always. Coaching is stored in `coaching_feedback`; a corner map
//! learnt from a clean lap is stored with the track's outline in `track_maps`, so the corner
//! numbers stay the same across sessions and restarts.
//!
//! State survives a restart because it is rebuilt from the database when the actor starts: the
//! track's stored map and the team's corner names, the session's last laps (replayed through the
//! engine, which gives back the reference lap and the history) and the session's coaching (which
//! gives back what was said). Messages wait until that is done.
//!
//! With a [`Phrasing`] (an LLM, configured by the runtime), the texts are rephrased before they
//! go out; on any failure the phraser gives the engine's text back, and the numbers are the
//! engine's either way. Reads no env vars.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use actix::prelude::*;
use chrono::Utc;
use pitbox_coach::{output, Coach as Engine, CoachConfig, CornerMap, Strategy};
use pitbox_schema::db::models::{CoachingFeedback, TrackMapRow};
use pitbox_schema::wire::{
    AiCoaching, CarStrategy, CoachingItem, Envelope, LapKind, LapSummary, Message as Wire, MessagePriority,
    SayKind, TelemetryAnalysis, TelemetryFrame,
};

use crate::coach_store::{self, StoredAnalysis};
use crate::mailbox::Counted;
use crate::registry::Stats;
use crate::supervision::{ChildFailed, Supervised};
use crate::system::Env;
use crate::team_hub::HubRef;
use crate::voice_channel::{Speak, VoiceRef};
use pitbox_schema::db::store::laps::{self, decompress_frames, LapFrames};
use pitbox_schema::db::store::{coaching, sessions, tracks};

/// Laps of the session replayed into the engine after a restart (the engine keeps 30).
const REBUILD_LAPS: i64 = 30;
/// Coaching rows replayed into the tip gate after a restart.
const REBUILD_COACHING: i64 = 200;
/// A topic spoken before is spoken again when its time changed by this much (seconds).
const CHANGED_S: f64 = 0.1;

/// Rewrites the coach's text (the runtime's LLM client). The future runs on the coach's arbiter,
/// so it need not be `Send`; it never fails: on any trouble it returns `text` itself.
pub trait Phrasing: Send + Sync {
    fn phrase(&self, text: String, session_id: String) -> Pin<Box<dyn Future<Output = String>>>;
}

/// What every coach last worked out, per team and driver: the API's strategy view reads it
/// without asking any actor or computing anything.
#[derive(Clone, Default)]
pub struct CoachBoard(Arc<RwLock<HashMap<String, BTreeMap<String, CarStrategy>>>>);

impl CoachBoard {
    pub fn set(&self, team_id: &str, s: CarStrategy) {
        if let Ok(mut b) = self.0.write() {
            b.entry(team_id.to_owned()).or_default().insert(s.driver_id.clone(), s);
        }
    }

    /// The team's cars, by driver id.
    pub fn team(&self, team_id: &str) -> Vec<CarStrategy> {
        self.0
            .read()
            .ok()
            .and_then(|b| b.get(team_id).map(|m| m.values().cloned().collect()))
            .unwrap_or_default()
    }
}

/// A lap the driver completed and the store kept, with its frames.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct LapSeen {
    pub summary: LapSummary,
    /// Compressed as stored: decoded here, once, for the analysis.
    pub frames: LapFrames,
}

/// What the coach has (for tests and the engineer view).
#[derive(Debug, Clone, Message)]
#[rtype(result = "CoachState")]
pub struct GetCoachState;

/// Asks a driver session for its coach's [`CoachState`] (`None` while the coach is down).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Option<CoachState>")]
pub struct AskCoach;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoachState {
    pub laps_seen: u32,
    pub best_valid: Option<f64>,
    pub last_lap_number: Option<i32>,
    /// Laps the engine keeps, and its reference lap's number.
    pub engine_laps: usize,
    pub reference_lap: Option<i32>,
    /// Corners of the map in use.
    pub corners: usize,
    pub session_id: Option<String>,
    /// Tips spoken so far (this incarnation and, from the database, the ones before).
    pub tips: u32,
    /// `ai_coaching` messages sent by this incarnation.
    pub published: u32,
    /// Topics said and not to be repeated while nothing changes.
    pub spoken_topics: Vec<String>,
}

/// Decides the one tip a driver hears after a lap. Pure, so it can be tested and rebuilt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TipGate {
    last_lap: Option<i32>,
    /// Topic → seconds lost when it was said (0 when it is not about time).
    spoken: HashMap<String, f64>,
    pub tips: u32,
}

fn speakable(i: &CoachingItem) -> bool {
    let what = i.topic.rsplit('/').next().unwrap_or_default();
    !matches!(what, "gain" | "newReference" | "notClean" | "traffic")
}

fn urgent_fuel(i: &CoachingItem) -> bool {
    i.priority == MessagePriority::Urgent && i.topic.starts_with("car/fuel")
}

impl TipGate {
    /// The index of the item to speak after `lap`, if any (items most important first).
    pub fn choose(&mut self, lap: i32, items: &[CoachingItem]) -> Option<usize> {
        if self.last_lap == Some(lap) {
            return None;
        }
        self.forget_resolved(items);
        let pick = items.iter().position(urgent_fuel).or_else(|| {
            items.iter().position(|i| {
                speakable(i)
                    && match self.spoken.get(&i.topic) {
                        None => true,
                        Some(then) => (i.time_gained_s.unwrap_or(0.0).abs() - then).abs() >= CHANGED_S,
                    }
            })
        })?;
        let item = items.get(pick)?;
        self.said(lap, item);
        Some(pick)
    }

    /// A topic the coach no longer finds is resolved: if it comes back, it is news again.
    fn forget_resolved(&mut self, items: &[CoachingItem]) {
        self.spoken.retain(|t, _| items.iter().any(|i| &i.topic == t));
    }

    fn said(&mut self, lap: i32, item: &CoachingItem) {
        self.last_lap = Some(lap);
        self.tips += 1;
        self.spoken.insert(item.topic.clone(), item.time_gained_s.unwrap_or(0.0).abs());
    }

    /// Replays a stored lap's coaching (after a restart).
    pub fn replay(&mut self, lap: Option<i32>, items: &[CoachingItem], tip_topic: Option<&str>) {
        self.forget_resolved(items);
        if let Some(item) = tip_topic.and_then(|t| items.iter().find(|i| i.topic == t)) {
            self.said(lap.unwrap_or(0), item);
        }
    }

    pub fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self.spoken.keys().cloned().collect();
        t.sort();
        t
    }
}

/// The racing session the laps belong to.
#[derive(Debug, Clone)]
struct SessionCtx {
    id: String,
    track: String,
    car: String,
}

/// What a new incarnation (or a new session) reads from the database: the engine with the stored
/// map and the team's names, and, after a restart, the session's laps already replayed through it
/// (on the blocking pool, one lap's frames in memory at a time).
#[derive(Default)]
struct Rebuilt {
    session: Option<SessionCtx>,
    engine: Engine,
    map_stored: bool,
    laps: Vec<LapSummary>,
    strategy: Option<Strategy>,
    coaching: Vec<CoachingFeedback>,
}

/// A fresh engine on the stored map (when there is one) with the team's corner names.
fn fresh_engine(map: Option<CornerMap>, turns: &[pitbox_coach::Turn]) -> (Engine, bool) {
    let engine = Engine::new(CoachConfig { turns: turns.to_vec(), ..CoachConfig::default() });
    match map {
        Some(mut m) => {
            m.apply_names(turns);
            (engine.with_map(m), true)
        }
        None => (engine, false),
    }
}

fn load(
    pool: &pitbox_schema::db::DbPool,
    driver_id: &str,
    team_id: &str,
    session_id: Option<&str>,
    replay: bool,
) -> Result<Rebuilt, String> {
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let c: &mut pitbox_schema::db::DbConnection = &mut conn;
    let s = match session_id {
        Some(id) => diesel::OptionalExtension::optional(sessions::get_session(c, id)),
        None => sessions::current_session(c, driver_id),
    }
    .map_err(|e| e.to_string())?;
    let Some(s) = s else { return Ok(Rebuilt::default()) };
    let map = tracks::track_map(c, team_id, &s.track, Some(&s.car))
        .map_err(|e| e.to_string())?
        .as_ref()
        .and_then(coach_store::corner_map);
    let turns: Vec<pitbox_coach::Turn> =
        tracks::track_turns(c, team_id, &s.track).map_err(|e| e.to_string())?;
    let (engine, map_stored) = fresh_engine(map, &turns);
    let mut out = Rebuilt { engine, map_stored, ..Rebuilt::default() };
    if replay {
        for (row, blob) in laps::session_laps(c, &s.id, REBUILD_LAPS).map_err(|e| e.to_string())? {
            let summary: LapSummary = row.into();
            match decompress_frames(&blob) {
                Ok(t) => {
                    if let Ok(report) = out.engine.add_lap(&t.frames, Some(&summary), None) {
                        out.strategy = Some(report.strategy);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "a stored lap's frames are unreadable; skipped"),
            }
            out.laps.push(summary);
        }
        out.coaching = coaching::session_coaching(c, &s.id, REBUILD_COACHING).map_err(|e| e.to_string())?;
    }
    out.session = Some(SessionCtx { id: s.id, track: s.track, car: s.car });
    Ok(out)
}

/// The API's picture of a car from the engine's strategy.
pub fn car_strategy(driver_id: &str, s: &Strategy, stint_laps_done: Option<u32>) -> CarStrategy {
    let alert = match (s.fuel_alarm, s.laps_of_fuel) {
        (Some((used, usual)), _) => {
            Some(format!("used {used:.2} l last lap against {usual:.2} l usually: check for a leak"))
        }
        (None, Some(left)) if left < 2.0 => Some(format!("{left:.1} laps of fuel left")),
        _ => None,
    };
    CarStrategy {
        driver_id: driver_id.to_owned(),
        fuel_per_lap: s.fuel_per_lap_l,
        fuel_level: Some(s.fuel_level_l),
        laps_of_fuel: s.laps_of_fuel,
        fuel_to_finish: s.fuel_to_finish_l,
        pit_window: s.pit_window.map(|w| (f64::from(w.earliest), f64::from(w.latest))),
        stint_laps: stint_laps_done,
        alert,
        updated_at: Utc::now(),
    }
}

pub struct CoachArgs {
    pub env: Env,
    pub path: String,
    pub parent: Counted<ChildFailed>,
    pub team_id: String,
    pub driver_id: String,
    pub hub: HubRef,
    /// The driver's voice channel: the tip is spoken too.
    pub voice: VoiceRef,
}

pub struct Coach {
    env: Env,
    path: String,
    stats: Arc<Stats>,
    parent: Counted<ChildFailed>,
    team_id: String,
    driver_id: String,
    hub: HubRef,
    voice: VoiceRef,
    state: CoachState,
    engine: Engine,
    session: Option<SessionCtx>,
    /// The engine's map is in the database (loaded from it, or saved).
    map_stored: bool,
    gate: TipGate,
    /// Laps since the last pit lap.
    stint: u32,
}

impl Coach {
    pub fn new(a: CoachArgs) -> Self {
        let stats = a.env.registry.register(&a.path, "coach");
        Self {
            env: a.env,
            path: a.path,
            stats,
            parent: a.parent,
            team_id: a.team_id,
            driver_id: a.driver_id,
            hub: a.hub,
            voice: a.voice,
            state: CoachState::default(),
            engine: Engine::new(CoachConfig::default()),
            session: None,
            map_stored: false,
            gate: TipGate::default(),
            stint: 0,
        }
    }

    fn node_path(&self) -> String {
        self.path.strip_suffix("/coach").map_or_else(|| self.path.clone(), |p| format!("{p}/node"))
    }

    /// Takes over what was read for a session (a restart's replay included).
    fn reset(&mut self, r: Rebuilt) {
        self.engine = r.engine;
        self.map_stored = r.map_stored;
        self.session = r.session;
        self.gate = TipGate::default();
        self.stint = 0;
        self.state = CoachState::default();
        for summary in &r.laps {
            self.count(summary);
        }
        for row in &r.coaching {
            let stored: StoredAnalysis = serde_json::from_str(&row.analysis).unwrap_or_default();
            self.gate.replay(stored.lap_number, &stored.items, stored.tip_topic.as_deref());
        }
        if let Some(s) = &r.strategy {
            self.env.board.set(&self.team_id, car_strategy(&self.driver_id, s, Some(self.stint)));
        }
        if !r.laps.is_empty() {
            tracing::debug!(driver = %self.driver_id, laps = r.laps.len(), "coach rebuilt from storage");
        }
    }

    fn count(&mut self, lap: &LapSummary) {
        self.state.laps_seen += 1;
        self.state.last_lap_number = Some(lap.lap_number);
        if lap.valid && self.state.best_valid.is_none_or(|b| lap.lap_time < b) {
            self.state.best_valid = Some(lap.lap_time);
        }
        if lap.kind == LapKind::Flying {
            self.stint += 1;
        } else {
            self.stint = 0;
        }
    }

    /// Analyses a lap and sends what the coach has to say.
    fn analyse(&mut self, summary: LapSummary, frames: &[TelemetryFrame], ctx: &mut Context<Self>) {
        self.count(&summary);
        let report = match self.engine.add_lap(frames, Some(&summary), None) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(driver = %self.driver_id, lap = summary.lap_number, error = %e, "lap not analysed");
                return;
            }
        };
        if !self.map_stored {
            if let (Some(map), Some(s)) = (self.engine.map(), &self.session) {
                self.map_stored = true;
                self.save_map(map.clone(), s.clone(), frames);
            }
        }
        let strategy = car_strategy(&self.driver_id, &report.strategy, Some(self.stint));
        self.env.board.set(&self.team_id, strategy.clone());
        let mut msg = output::ai_coaching(&report, Some(self.driver_id.clone()), Utc::now());
        msg.id = Some(uuid::Uuid::now_v7().to_string());
        msg.lap_id = Some(summary.id.clone());
        msg.strategy = Some(Box::new(strategy));
        let tip = self.gate.choose(report.lap, &msg.items).and_then(|k| msg.items.get(k).cloned());
        msg.tip = tip.as_ref().map(|i| i.text.clone());
        let tip_urgent = tip.as_ref().is_some_and(urgent_fuel);
        let tip_topic = tip.map(|i| i.topic);
        let session_id = self.session.as_ref().map_or_else(|| summary.session_id.clone(), |s| s.id.clone());
        match self.env.phrasing.clone() {
            None => self.publish(msg, tip_topic, tip_urgent),
            Some(p) => {
                // The numbers stay the engine's: the phraser checks them, and falls back to the
                // engine's text when they changed.
                let (feedback, tip) = (msg.feedback.clone(), msg.tip.clone());
                let fut = async move {
                    let feedback = p.phrase(feedback, session_id.clone()).await;
                    let tip = match tip {
                        Some(t) => Some(p.phrase(t, session_id).await),
                        None => None,
                    };
                    (feedback, tip)
                };
                ctx.spawn(fut.into_actor(self).map(move |(feedback, tip), act, _| {
                    msg.feedback = feedback;
                    msg.tip = tip;
                    act.publish(msg, tip_topic, tip_urgent);
                }));
            }
        }
    }

    /// Pushes the coaching to the team and the tip to the driver's node, and stores it.
    fn publish(&mut self, msg: AiCoaching, tip_topic: Option<String>, tip_urgent: bool) {
        self.state.published += 1;
        let from = Some(self.path.clone());
        if let Some(tip) = &msg.tip {
            let short = AiCoaching {
                feedback: tip.clone(),
                telemetry_analysis: TelemetryAnalysis::default(),
                items: Vec::new(),
                strategy: None,
                ..msg.clone()
            };
            let env = Envelope {
                from: from.clone(),
                to: Some(self.node_path()),
                ..Envelope::new(Wire::AiCoaching(short))
            };
            self.hub.to_node(&self.driver_id, env);
            // Urgent fuel is an alert: it is spoken even when the driver asked for quiet.
            let (kind, priority) = if tip_urgent {
                (SayKind::Alert, MessagePriority::Urgent)
            } else {
                (SayKind::Coaching, MessagePriority::Normal)
            };
            self.voice.speak(Speak { kind, text: tip.clone(), priority });
        }
        self.hub.broadcast(Envelope { from, ..Envelope::new(Wire::AiCoaching(msg.clone())) });
        let stored = StoredAnalysis {
            analysis: msg.telemetry_analysis.clone(),
            lap_number: msg.lap_number,
            tip: msg.tip.clone(),
            tip_topic,
            items: msg.items.clone(),
        };
        let row = CoachingFeedback {
            id: msg.id.clone().unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            team_id: self.team_id.clone(),
            driver_id: self.driver_id.clone(),
            lap_id: msg.lap_id.clone(),
            feedback: msg.feedback.clone(),
            confidence: f64::from(msg.confidence),
            analysis: serde_json::to_string(&stored).unwrap_or_else(|_| "{}".into()),
            priority: msg.priority.as_str().to_owned(),
            created_at: msg.timestamp.naive_utc(),
        };
        let (pool, fence, team) = (self.env.pool.clone(), self.env.fence.clone(), self.team_id.clone());
        let ticket = fence.ticket(&team);
        actix::spawn(async move {
            let r = actix_rt::task::spawn_blocking(move || {
                let mut c = pool.get().map_err(|e| e.to_string())?;
                fence
                    .write(&mut c, &team, &ticket, |c| coaching::insert_coaching(c, &row))
                    .map_err(|e| e.to_string())
            })
            .await;
            if let Ok(Err(e)) | Err(e) = r.map_err(|e| e.to_string()) {
                tracing::error!(error = %e, "coaching not stored");
            }
        });
    }

    fn save_map(&self, map: CornerMap, s: SessionCtx, frames: &[TelemetryFrame]) {
        let outline = coach_store::outline_of(frames);
        let map = map.for_track(s.track.clone(), Some(s.car.clone()));
        let row = TrackMapRow {
            team_id: self.team_id.clone(),
            track: s.track,
            car_class: s.car,
            length_m: map.track_length_m,
            corner_map: serde_json::to_string(&map).unwrap_or_else(|_| "{}".into()),
            outline: serde_json::to_string(&outline).unwrap_or_else(|_| "[]".into()),
            updated_at: Utc::now().naive_utc(),
        };
        let (pool, fence, team) = (self.env.pool.clone(), self.env.fence.clone(), self.team_id.clone());
        let ticket = fence.ticket(&team);
        actix::spawn(async move {
            let r = actix_rt::task::spawn_blocking(move || {
                let mut c = pool.get().map_err(|e| e.to_string())?;
                fence
                    .write(&mut c, &team, &ticket, |c| tracks::save_track_map(c, &row))
                    .map_err(|e| e.to_string())
            })
            .await;
            if let Ok(Err(e)) | Err(e) = r.map_err(|e| e.to_string()) {
                tracing::error!(error = %e, "track map not stored");
            }
        });
    }
}

impl Actor for Coach {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.stats.started();
        self.stats.set_control(ctx.address().recipient());
        // Nothing is handled until the state is rebuilt from storage.
        let (pool, driver, team) = (self.env.pool.clone(), self.driver_id.clone(), self.team_id.clone());
        let job = actix_rt::task::spawn_blocking(move || load(&pool, &driver, &team, None, true));
        ctx.wait(job.into_actor(self).map(|r, act, _| match r {
            Ok(Ok(r)) => act.reset(r),
            Ok(Err(e)) => tracing::error!(driver = %act.driver_id, error = %e, "coach not rebuilt"),
            Err(e) => tracing::error!(driver = %act.driver_id, error = %e, "coach not rebuilt"),
        }));
    }
}

impl Handler<LapSeen> for Coach {
    type Result = ();

    fn handle(&mut self, msg: LapSeen, ctx: &mut Context<Self>) {
        // Decoded here, once: the lap's frames exist whole only while it is analysed.
        let frames = msg.frames.decode().unwrap_or_else(|e| {
            tracing::warn!(driver = %self.driver_id, lap = msg.summary.lap_number, error = %e, "a lap's frames are unreadable");
            Vec::new()
        });
        // A session still without a track (telemetry came before the node named it) is read
        // again: its track and car decide the map.
        let same = self
            .session
            .as_ref()
            .is_some_and(|s| s.id == msg.summary.session_id && (s.track != "unknown" || s.car != "unknown"));
        if same {
            let _ = self.guard(ctx, |act, ctx| {
                act.analyse(msg.summary, &frames, ctx);
                Ok(())
            });
            return;
        }
        // A new session (or the first): its track and car decide the map. Later laps wait.
        let (pool, driver, team) = (self.env.pool.clone(), self.driver_id.clone(), self.team_id.clone());
        let sid = msg.summary.session_id.clone();
        let job = actix_rt::task::spawn_blocking(move || load(&pool, &driver, &team, Some(&sid), false));
        ctx.wait(job.into_actor(self).map(move |r, act, ctx| {
            match r {
                Ok(Ok(mut r)) => {
                    if r.session.is_none() {
                        r.session = Some(SessionCtx {
                            id: msg.summary.session_id.clone(),
                            track: "unknown".into(),
                            car: "unknown".into(),
                        });
                    }
                    let unchanged = act
                        .session
                        .as_ref()
                        .zip(r.session.as_ref())
                        .is_some_and(|(a, b)| a.id == b.id && a.track == b.track && a.car == b.car);
                    if !unchanged {
                        // A new session keeps nothing of the last but what the database holds.
                        let laps_seen = act.state.laps_seen;
                        act.reset(r);
                        act.state.laps_seen = laps_seen;
                    }
                }
                Ok(Err(e)) => tracing::error!(driver = %act.driver_id, error = %e, "session not loaded"),
                Err(e) => tracing::error!(driver = %act.driver_id, error = %e, "session not loaded"),
            }
            let _ = act.guard(ctx, |act, ctx| {
                act.analyse(msg.summary, &frames, ctx);
                Ok(())
            });
        }));
    }
}

impl Handler<GetCoachState> for Coach {
    type Result = MessageResult<GetCoachState>;

    fn handle(&mut self, _: GetCoachState, _: &mut Context<Self>) -> Self::Result {
        self.handled();
        let mut s = self.state.clone();
        s.engine_laps = self.engine.laps().len();
        s.reference_lap = self.engine.reference().map(|r| r.lap);
        s.corners = self.engine.map().map_or(0, |m| m.corners.len());
        s.session_id = self.session.as_ref().map(|x| x.id.clone());
        s.tips = self.gate.tips;
        s.spoken_topics = self.gate.topics();
        MessageResult(s)
    }
}

crate::supervised_control!(Coach);

impl Supervised for Coach {
    fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }
    fn parent(&self) -> &Counted<ChildFailed> {
        &self.parent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(topic: &str, priority: MessagePriority, lost: Option<f64>) -> CoachingItem {
        CoachingItem {
            text: format!("{topic} {lost:?}"),
            priority,
            topic: topic.to_owned(),
            corner: None,
            time_gained_s: lost.map(|l| -l),
            pattern: None,
        }
    }

    #[test]
    fn one_tip_per_lap() {
        let mut g = TipGate::default();
        let items = [
            item("T4/brakedEarly", MessagePriority::High, Some(0.3)),
            item("T7/lateThrottle", MessagePriority::Normal, Some(0.2)),
        ];
        assert_eq!(g.choose(3, &items), Some(0));
        assert_eq!(g.choose(3, &items), None, "a lap told twice gets no second tip");
        assert_eq!(g.tips, 1);
    }

    #[test]
    fn no_repeats_while_nothing_changed() {
        let mut g = TipGate::default();
        let items = [
            item("T4/brakedEarly", MessagePriority::High, Some(0.3)),
            item("T7/lateThrottle", MessagePriority::Normal, Some(0.2)),
        ];
        assert_eq!(g.choose(3, &items), Some(0));
        assert_eq!(g.choose(4, &items), Some(1), "the next thing, not the same again");
        assert_eq!(g.choose(5, &items), None, "everything said, nothing changed");
        // The same fault, but much worse: news.
        let worse = [item("T4/brakedEarly", MessagePriority::High, Some(0.6))];
        assert_eq!(g.choose(6, &worse), Some(0));
        // Fixed for a lap, then back: said again.
        assert_eq!(g.choose(7, &[]), None);
        assert_eq!(g.choose(8, &worse), Some(0));
        // Strengths and bookkeeping are never spoken.
        let quiet = [
            item("T2/gain", MessagePriority::Low, Some(-0.1)),
            item("lap/traffic", MessagePriority::Low, None),
        ];
        assert_eq!(g.choose(9, &quiet), None);
    }

    #[test]
    fn urgent_fuel_always_goes_through() {
        let mut g = TipGate::default();
        let fuel = item("car/fuelUseHigh", MessagePriority::Urgent, None);
        let corner = item("T4/brakedEarly", MessagePriority::High, Some(0.3));
        for lap in 1..5 {
            assert_eq!(g.choose(lap, &[corner.clone(), fuel.clone()]), Some(1), "lap {lap}");
        }
        // Not urgent: said once.
        let add = item("car/fuelToAdd", MessagePriority::Normal, None);
        assert_eq!(g.choose(5, std::slice::from_ref(&add)), Some(0));
        assert_eq!(g.choose(6, &[add]), None);
    }

    #[test]
    fn replay_rebuilds_the_same_gate() {
        let laps: Vec<Vec<CoachingItem>> = vec![
            vec![item("T4/brakedEarly", MessagePriority::High, Some(0.3))],
            vec![
                item("T4/brakedEarly", MessagePriority::High, Some(0.3)),
                item("T1/coasting", MessagePriority::Normal, Some(0.1)),
            ],
            vec![item("T1/coasting", MessagePriority::Normal, Some(0.1))],
        ];
        let mut live = TipGate::default();
        let mut rebuilt = TipGate::default();
        for (n, items) in laps.iter().enumerate() {
            let lap = n as i32 + 1;
            let topic = live.choose(lap, items).map(|k| items[k].topic.clone());
            rebuilt.replay(Some(lap), items, topic.as_deref());
        }
        assert_eq!(live, rebuilt);
    }
}
