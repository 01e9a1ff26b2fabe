//! The dashboard's state and its reducer. There is one way in: an [`Action`] (a server push, a
//! socket's state, a REST result, a user's action) given to [`Store::reduce`], usually through a
//! [`StoreHandle`], which also hands the resulting [`Effect`]s to whoever performs them. So a lap
//! that arrives both from REST and live is merged by the same code, and no view or task can leave
//! the store half-updated. The UI renders from the store at animation-frame pace (the `version`
//! says whether anything changed), so a 60 Hz stream costs one render per frame, never one per
//! message. Pure logic, unit-tested natively. Reads no env vars.

use std::cell::{Ref, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::rc::Rc;

use pitbox_schema::wire::{
    AiCoaching, CarStrategy, DriverProfile, DriverStatusKind, Envelope, ErrorBody, HandoffRequest,
    LapCorners, LapSummary, Message, Team, TeamMessage, TelemetryFrame, TrackMap,
};

use super::laps::{fuel_per_lap, laps_of_fuel, CurrentLap, LapTrace};
use super::track::TrackOutline;
use super::tree::{Names, TreeView};

/// Seconds of rolling trace kept per car (the driver view shows the last 20 s).
pub const TRACE_SECS: f64 = 30.0;
/// A car with no sample for this long is shown as stale.
pub const STALE_MS: f64 = 5_000.0;

/// One point of the rolling input/speed trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TracePoint {
    pub t: f64,
    pub speed: f32,
    pub rpm: f32,
    pub throttle: f32,
    pub brake: f32,
    pub steering: f32,
}

/// Everything known about one of the team's cars.
#[derive(Debug, Clone, Default)]
pub struct Car {
    pub driver_id: String,
    pub profile: Option<DriverProfile>,
    pub latest: Option<TelemetryFrame>,
    /// Local time (ms) the latest sample arrived.
    pub received_at: f64,
    pub connected: bool,
    pub status: Option<DriverStatusKind>,
    pub trace: VecDeque<TracePoint>,
    pub current: CurrentLap,
    /// Completed laps, oldest first.
    pub laps: Vec<LapSummary>,
    pub samples: u64,
    /// Delta of the live lap to the reference lap, updated with each sample.
    pub delta: Option<f64>,
}

impl Car {
    pub fn name(&self) -> String {
        self.profile.as_ref().map_or_else(|| short_id(&self.driver_id), |p| p.name.clone())
    }

    pub fn best_lap(&self) -> Option<&LapSummary> {
        self.laps
            .iter()
            .filter(|l| l.valid && l.lap_time > 0.0)
            .min_by(|a, b| a.lap_time.total_cmp(&b.lap_time))
    }

    pub fn last_lap_time(&self) -> Option<f64> {
        self.laps
            .last()
            .map(|l| l.lap_time)
            .or_else(|| self.latest.as_ref().and_then(|f| f.sample.last_lap_time).map(f64::from))
    }

    pub fn best_lap_time(&self) -> Option<f64> {
        self.best_lap()
            .map(|l| l.lap_time)
            .or_else(|| self.latest.as_ref().and_then(|f| f.sample.best_lap_time).map(f64::from))
    }

    /// Laps of fuel left: measured litres per lap, else the live burn rate over the best lap.
    pub fn fuel_laps(&self) -> Option<f64> {
        let f = self.latest.as_ref()?;
        laps_of_fuel(&f.sample, fuel_per_lap(&self.laps), self.best_lap_time())
    }

    pub fn is_stale(&self, now: f64) -> bool {
        self.latest.is_none() || now - self.received_at > STALE_MS
    }
}

/// `0196f3…` → `0196f3`: ids are long; a short prefix is enough on screen.
pub fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

/// The socket's state, as the connection badge shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Conn {
    Connecting,
    Authenticating,
    Live,
    /// Lost; next attempt in `in_ms`.
    Reconnecting {
        attempt: u32,
        in_ms: u32,
    },
    /// Given up (e.g. logged out).
    Offline,
}

impl Conn {
    pub fn label(&self) -> String {
        match self {
            Conn::Connecting => "connecting".into(),
            Conn::Authenticating => "authenticating".into(),
            Conn::Live => "live".into(),
            Conn::Reconnecting { attempt, in_ms } => {
                format!("reconnecting in {:.1} s (attempt {attempt})", f64::from(*in_ms) / 1000.0)
            }
            Conn::Offline => "offline".into(),
        }
    }
}

/// Something the UI must do after a push (fetching is not the reducer's job).
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A new best lap: fetch its trace as the driver's reference.
    FetchReference { driver_id: String, lap_id: String },
    /// A driver we had no profile for: reload the team's drivers.
    ReloadDrivers,
    /// The coach analysed a lap of a session whose track map is not here yet: fetch it.
    FetchTrackMap { driver_id: String, session_id: String },
    /// The actor tree shows a team whose drivers are not known by name yet: fetch them.
    FetchTeamDrivers(String),
}

/// Everything that changes the store. The socket, the REST tasks and the views send these; only
/// [`Store::reduce`] turns them into state.
#[derive(Debug, Clone)]
pub enum Action {
    /// A push from one of the runtime's sockets (the team feed or the actor-tree stream).
    Push(Box<Envelope>),
    /// The team socket's state.
    Conn(Conn),
    /// The actor-tree socket's state.
    TreeConn(Conn),
    /// A server error or a notice for the user.
    Notice(String),
    /// `GET /api/teams/{id}/drivers` of the open team: keeps live data, replaces profiles.
    Drivers(Vec<DriverProfile>),
    /// `GET /api/teams`: the teams the user can see, for their names.
    Teams(Vec<Team>),
    /// `GET /api/teams/{id}/drivers` of any team in the actor tree, for the drivers' names.
    TeamDrivers { team_id: String, drivers: Vec<DriverProfile> },
    /// `GET /api/teams/{id}/laps`: merged with what pushes already brought.
    Laps(Vec<LapSummary>),
    /// `GET /api/teams/{id}/strategy`.
    Strategies(Vec<CarStrategy>),
    /// `GET /api/teams/{id}/messages`.
    Messages(Vec<TeamMessage>),
    /// `GET /api/teams/{id}/handoffs`.
    Handoffs(Vec<HandoffRequest>),
    /// A lap's trace opened for comparison.
    LapTrace(LapTrace),
    /// A lap's corners against its reference.
    CornerTable(LapCorners),
    /// The runtime's map of the track a driver is on.
    TrackMap { driver_id: String, map: TrackMap },
    /// No map of that session's track yet: the coach's next lap may ask again.
    TrackMapMissing { driver_id: String, session_id: String },
    /// A driver's reference lap (their best lap's trace).
    Reference { driver_id: String, trace: LapTrace },
    /// The user read a team message.
    MarkRead(String),
    /// The user folded or unfolded an actor in the engineer view.
    ToggleActor(String),
    /// The user selected an actor for the detail pane (`None`: closed it).
    SelectActor(Option<String>),
    /// The user dismissed a box call banner.
    DismissBoxCall(String),
    /// Once a second: ages and "stale" badges move with time even when no data arrives.
    Tick,
    /// Another team was opened: a clean slate that keeps the team socket's state (the socket keeps
    /// its connection and moves its subscriptions).
    OpenTeam(String),
    /// Logged out: everything is forgotten.
    Reset,
}

impl From<Envelope> for Action {
    fn from(env: Envelope) -> Action {
        Action::Push(Box::new(env))
    }
}

#[derive(Debug, Default)]
pub struct Store {
    pub conn: Option<Conn>,
    pub team_id: Option<String>,
    pub cars: BTreeMap<String, Car>,
    /// Newest last.
    pub messages: Vec<TeamMessage>,
    /// Newest first.
    pub handoffs: Vec<HandoffRequest>,
    /// Track outline learnt from each driver's racing line (drivers may be on different tracks:
    /// a demo mixes the synthetic track with a recording).
    pub outlines: HashMap<String, TrackOutline>,
    /// Reference lap per driver (their best lap's trace).
    pub references: HashMap<String, LapTrace>,
    /// Traces of laps opened for comparison, by lap id.
    pub lap_traces: HashMap<String, LapTrace>,
    pub tree: TreeView,
    /// Team and driver names, for actor paths (kept when another team is opened).
    pub names: Names,
    /// The AI coach's feedback, newest last.
    pub coaching: VecDeque<AiCoaching>,
    /// Each car's fuel picture, from the coach (after every lap) and `GET …/strategy`.
    pub strategies: BTreeMap<String, CarStrategy>,
    /// Corner tables of laps against their reference, by lap id.
    pub corner_tables: HashMap<String, LapCorners>,
    /// The runtime's map of the track each driver is on (outline and corners).
    pub track_maps: HashMap<String, TrackMap>,
    /// Drivers whose track map was asked for (once per session).
    maps_asked: HashSet<String>,
    pub tree_conn: Option<Conn>,
    /// Server errors and notices to show, newest last.
    pub notices: VecDeque<String>,
    /// Local time (ms) the first sample arrived: page load → first live sample.
    pub first_sample_at: Option<f64>,
    pub samples: u64,
    /// Gaps seen in the server's push sequence (a gap means pushes were skipped or lost).
    pub seq_gaps: u64,
    last_seq: Option<u64>,
    /// The drivers' radio: spoken exchanges, and box calls for the banner.
    pub voice: super::voice::VoiceLog,
    /// Bumped on every change; the UI re-renders when it differs from what it drew.
    pub version: u64,
}

impl Store {
    /// The one entry point: applies `action`; `now` is the local clock in ms. Returns what the UI
    /// must do next (fetching is not the reducer's job).
    pub fn reduce(&mut self, action: Action, now: f64) -> Vec<Effect> {
        match action {
            Action::Push(env) => return self.apply(*env, now),
            Action::Conn(c) => self.set_conn(c),
            Action::TreeConn(c) => {
                if self.tree_conn.as_ref() != Some(&c) {
                    self.tree_conn = Some(c);
                    self.touch();
                }
            }
            Action::Notice(text) => self.notice(text),
            Action::Drivers(d) => self.set_drivers(d),
            Action::Teams(t) => {
                self.names.set_teams(&t);
                self.touch();
            }
            Action::TeamDrivers { team_id, drivers } => {
                self.names.set_drivers(Some(&team_id), &drivers);
                self.touch();
            }
            Action::Laps(laps) => return self.set_laps(laps),
            Action::Strategies(st) => self.set_strategies(st),
            Action::Messages(m) => self.set_messages(m),
            Action::Handoffs(h) => self.set_handoffs(h),
            Action::LapTrace(t) => self.set_lap_trace(t),
            Action::CornerTable(t) => self.set_corner_table(t),
            Action::TrackMap { driver_id, map } => self.set_track_map(&driver_id, map),
            Action::TrackMapMissing { driver_id, session_id } => {
                // Nothing to draw changes: no render.
                self.maps_asked.remove(&format!("{driver_id}/{session_id}"));
            }
            Action::Reference { driver_id, trace } => self.set_reference(&driver_id, trace),
            Action::MarkRead(id) => self.mark_read(&id),
            Action::ToggleActor(path) => {
                self.tree.toggle(&path);
                self.touch();
            }
            Action::SelectActor(path) => {
                self.tree.select(path);
                self.touch();
            }
            Action::DismissBoxCall(id) => {
                self.voice.dismiss(&id);
                self.touch();
            }
            Action::Tick => self.touch(),
            Action::OpenTeam(team_id) => {
                let conn = self.conn.take();
                let names = std::mem::take(&mut self.names);
                self.clear();
                self.conn = conn;
                self.names = names;
                self.team_id = Some(team_id);
            }
            Action::Reset => self.clear(),
        }
        Vec::new()
    }

    /// Back to an empty store. The version keeps counting up, so the frame loop never mistakes the
    /// new state for one it already drew.
    fn clear(&mut self) {
        let version = self.version;
        *self = Store::default();
        self.version = version;
        self.touch();
    }

    fn touch(&mut self) {
        self.version = self.version.wrapping_add(1);
    }

    fn car_mut(&mut self, driver_id: &str) -> &mut Car {
        self.cars
            .entry(driver_id.to_owned())
            .or_insert_with(|| Car { driver_id: driver_id.to_owned(), ..Car::default() })
    }

    fn set_conn(&mut self, c: Conn) {
        if self.conn.as_ref() != Some(&c) {
            if c == Conn::Authenticating {
                // A new connection numbers its pushes from 1 again.
                self.last_seq = None;
            }
            self.conn = Some(c);
            self.touch();
        }
    }

    fn notice(&mut self, text: impl Into<String>) {
        self.notices.push_back(text.into());
        while self.notices.len() > 5 {
            self.notices.pop_front();
        }
        self.touch();
    }

    /// The team's drivers from REST: keeps live data, replaces profiles.
    fn set_drivers(&mut self, drivers: Vec<DriverProfile>) {
        let team = self.team_id.clone();
        self.names.set_drivers(team.as_deref(), &drivers);
        for p in drivers {
            let car = self.car_mut(&p.id);
            car.connected = p.telemetry_connected;
            car.status = Some(p.status);
            car.profile = Some(p);
        }
        self.touch();
    }

    /// Laps from REST (any order; the runtime sends newest first): merged with what pushes already
    /// brought. The track each of these drivers is on now (their newest lap's session) has its map
    /// fetched, so it is drawn at once.
    fn set_laps(&mut self, laps: Vec<LapSummary>) -> Vec<Effect> {
        let drivers: BTreeSet<String> = laps.iter().map(|l| l.driver_id.clone()).collect();
        let mut effects = Vec::new();
        for lap in laps {
            self.add_lap(lap, &mut effects);
        }
        for car in self.cars.values_mut() {
            car.laps.sort_by_key(|l| (l.completed_at, l.lap_number));
        }
        for driver_id in drivers {
            let newest = self.cars.get(&driver_id).and_then(|c| c.laps.last());
            let Some(session_id) = newest.map(|l| l.session_id.clone()) else { continue };
            if self.maps_asked.insert(format!("{driver_id}/{session_id}")) {
                effects.push(Effect::FetchTrackMap { driver_id, session_id });
            }
        }
        self.touch();
        effects
    }

    fn add_lap(&mut self, lap: LapSummary, effects: &mut Vec<Effect>) {
        let driver = lap.driver_id.clone();
        let car = self.car_mut(&driver);
        if car.laps.iter().any(|l| l.id == lap.id) {
            return;
        }
        let best_before = car.best_lap().map(|l| l.id.clone());
        car.laps.push(lap);
        let best_now = car.best_lap().map(|l| l.id.clone());
        if let Some(best) = best_now.filter(|b| Some(b) != best_before.as_ref()) {
            effects.push(Effect::FetchReference { driver_id: driver, lap_id: best });
        }
    }

    fn set_messages(&mut self, mut messages: Vec<TeamMessage>) {
        messages.sort_by_key(|m| m.sent_at);
        for m in messages {
            self.upsert_message(m);
        }
        self.touch();
    }

    fn upsert_message(&mut self, m: TeamMessage) {
        match self.messages.iter_mut().find(|x| x.id == m.id) {
            Some(x) => *x = m,
            None => {
                let at = self.messages.partition_point(|x| x.sent_at <= m.sent_at);
                self.messages.insert(at, m);
            }
        }
        let excess = self.messages.len().saturating_sub(500);
        self.messages.drain(..excess);
    }

    fn mark_read(&mut self, id: &str) {
        if let Some(m) = self.messages.iter_mut().find(|m| m.id == id) {
            m.read = true;
            self.touch();
        }
    }

    pub fn unread(&self) -> usize {
        self.messages.iter().filter(|m| !m.read).count()
    }

    fn set_handoffs(&mut self, handoffs: Vec<HandoffRequest>) {
        for h in handoffs {
            self.upsert_handoff(h);
        }
        self.touch();
    }

    fn upsert_handoff(&mut self, h: HandoffRequest) {
        match self.handoffs.iter_mut().find(|x| x.id == h.id) {
            Some(x) => *x = h,
            None => self.handoffs.push(h),
        }
        self.handoffs.sort_by_key(|h| std::cmp::Reverse(h.requested_at));
        self.handoffs.truncate(100);
    }

    fn set_lap_trace(&mut self, trace: LapTrace) {
        if self.lap_traces.len() > 20 {
            self.lap_traces.clear();
        }
        self.lap_traces.insert(trace.lap_id.clone(), trace);
        self.touch();
    }

    /// The outline to draw: the focused driver's, else the most complete one.
    pub fn outline(&self, focus: Option<&str>) -> Option<(&str, &TrackOutline)> {
        if let Some((d, o)) = focus.and_then(|f| self.outlines.get_key_value(f)) {
            return Some((d.as_str(), o));
        }
        self.outlines
            .iter()
            .max_by(|a, b| a.1.coverage().total_cmp(&b.1.coverage()))
            .map(|(d, o)| (d.as_str(), o))
    }

    fn set_strategies(&mut self, all: Vec<CarStrategy>) {
        for st in all {
            self.strategies.insert(st.driver_id.clone(), st);
        }
        self.touch();
    }

    fn set_corner_table(&mut self, t: LapCorners) {
        if self.corner_tables.len() > 200 {
            self.corner_tables.clear();
        }
        self.corner_tables.insert(t.lap_id.clone(), t);
        self.touch();
    }

    /// The runtime's map of the driver's track: its outline replaces the one being learnt.
    fn set_track_map(&mut self, driver_id: &str, map: TrackMap) {
        if map.outline.len() > 8 {
            self.outlines.insert(driver_id.to_owned(), TrackOutline::served(&map.outline));
        }
        self.track_maps.insert(driver_id.to_owned(), map);
        self.touch();
    }

    /// Newest coaching first, of one driver or of the whole team.
    pub fn coaching_of<'a>(&'a self, driver: Option<&'a str>) -> impl Iterator<Item = &'a AiCoaching> + 'a {
        self.coaching
            .iter()
            .rev()
            .filter(move |c| driver.is_none_or(|d| c.driver_id.as_deref().is_none_or(|x| x == d)))
    }

    fn set_reference(&mut self, driver_id: &str, trace: LapTrace) {
        self.references.insert(driver_id.to_owned(), trace);
        self.touch();
    }

    /// Applies one server push (through [`Action::Push`]); `now` is the local clock in ms.
    fn apply(&mut self, env: Envelope, now: f64) -> Vec<Effect> {
        if let Some(seq) = env.seq {
            if let Some(last) = self.last_seq {
                if seq > last + 1 {
                    self.seq_gaps += seq - last - 1;
                }
            }
            self.last_seq = Some(seq);
        }
        let from = env.from;
        let mut effects = Vec::new();
        match env.message {
            Message::TelemetryUpdate(u) => {
                let driver = if u.driver_id.is_empty() {
                    from.as_deref().and_then(|f| f.rsplit('/').next()).unwrap_or_default().to_owned()
                } else {
                    u.driver_id
                };
                if !self.cars.contains_key(&driver) {
                    effects.push(Effect::ReloadDrivers);
                }
                self.sample(&driver, u.frame, now);
            }
            Message::TelemetryBatch(b) => {
                for f in b.frames {
                    self.sample(&b.driver_id, f, now);
                }
            }
            Message::LapCompleted(lap) => self.add_lap(lap, &mut effects),
            Message::TeamMessage(m) => self.upsert_message(m),
            Message::HandoffRequest(h) => self.upsert_handoff(*h),
            Message::DriverStatus(s) => {
                let known = self.cars.contains_key(&s.driver_id);
                let car = self.car_mut(&s.driver_id);
                car.connected = s.telemetry_connected;
                car.status = Some(s.status);
                if !known {
                    effects.push(Effect::ReloadDrivers);
                }
            }
            Message::ActorTree(t) => {
                self.tree.update(&t);
                // The open team's drivers come with the team; other teams' are fetched once.
                let mut teams = self.tree.team_ids();
                if let Some(open) = &self.team_id {
                    teams.remove(open);
                }
                effects.extend(self.names.to_ask(teams).into_iter().map(Effect::FetchTeamDrivers));
            }
            Message::AiCoaching(c) => {
                if let (Some(d), Some(st)) = (&c.driver_id, &c.strategy) {
                    self.strategies.insert(d.clone(), (**st).clone());
                }
                if let (Some(d), Some(lap)) = (&c.driver_id, &c.lap_id) {
                    let session = self
                        .cars
                        .get(d)
                        .and_then(|car| car.laps.iter().find(|l| &l.id == lap))
                        .map(|l| l.session_id.clone());
                    if let Some(session_id) = session {
                        if self.maps_asked.insert(format!("{d}/{session_id}")) {
                            effects.push(Effect::FetchTrackMap { driver_id: d.clone(), session_id });
                        }
                    }
                }
                self.coaching.push_back(c);
                while self.coaching.len() > 100 {
                    self.coaching.pop_front();
                }
            }
            Message::VoiceExchange(x) => self.voice.push(x),
            Message::Error(ErrorBody { code, message, .. }) => {
                self.notice(format!("{}: {message}", serde_json::to_string(&code).unwrap_or_default()))
            }
            Message::Subscribed(s) => {
                for d in &s.drivers {
                    self.car_mut(d);
                }
            }
            // Handshake messages are the socket's business; the rest is not for dashboards.
            _ => return effects,
        }
        self.touch();
        effects
    }

    fn sample(&mut self, driver: &str, frame: TelemetryFrame, now: f64) {
        self.samples += 1;
        self.first_sample_at.get_or_insert(now);
        let s = &frame.sample;
        if let (Some(lat), Some(lon)) = (s.latitude, s.longitude) {
            self.outlines.entry(driver.to_owned()).or_default().add(s.track_position, lat, lon);
        }
        // Field by field (not `car_mut`), so the reference lap is borrowed, not copied per sample.
        let reference = self.references.get(driver);
        let car = self
            .cars
            .entry(driver.to_owned())
            .or_insert_with(|| Car { driver_id: driver.to_owned(), ..Car::default() });
        car.samples += 1;
        car.received_at = now;
        car.connected = true;
        if car.trace.back().is_some_and(|p| s.session_time + 1.0 < p.t) {
            // Time jumped back by more than a second: a new sim session. Start the trace over.
            car.trace.clear();
            car.current = CurrentLap::default();
            car.latest = None;
        }
        let newer = car.trace.back().is_none_or(|p| s.session_time > p.t);
        if newer {
            // Team and focused subscriptions can both deliver the same sample: keep it once.
            car.current.push(s);
            if let Some(r) = reference {
                car.delta = car.current.delta(s, r);
            }
            car.trace.push_back(TracePoint {
                t: s.session_time,
                speed: s.speed,
                rpm: s.rpm,
                throttle: s.throttle,
                brake: s.brake,
                steering: s.steering_angle,
            });
            while car.trace.front().is_some_and(|p| s.session_time - p.t > TRACE_SECS) {
                car.trace.pop_front();
            }
        }
        if newer || car.latest.is_none() {
            car.latest = Some(frame);
        }
    }
}

/// The store as the app shares it: views read it, the socket, the REST tasks and the views change
/// it only by dispatching actions. Cheap to clone; every clone is the same store.
#[derive(Clone)]
pub struct StoreHandle {
    store: Rc<RefCell<Store>>,
    /// The local clock in ms (`performance.now()` in the browser).
    clock: fn() -> f64,
    /// Performs the effects of an action (the app's fetches).
    on_effects: Rc<dyn Fn(Vec<Effect>)>,
}

impl StoreHandle {
    pub fn new(clock: fn() -> f64, on_effects: impl Fn(Vec<Effect>) + 'static) -> StoreHandle {
        StoreHandle { store: Rc::default(), clock, on_effects: Rc::new(on_effects) }
    }

    /// The state, for rendering. Not held across a dispatch.
    pub fn read(&self) -> Ref<'_, Store> {
        self.store.borrow()
    }

    /// Reduces `action` into the store and performs its effects.
    pub fn dispatch(&self, action: Action) {
        let effects = self.store.borrow_mut().reduce(action, (self.clock)());
        // The store is released first: performing an effect may dispatch again.
        if !effects.is_empty() {
            (self.on_effects)(effects);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server push, as the socket dispatches it.
    fn push(json: serde_json::Value) -> Action {
        serde_json::from_value::<Envelope>(json).unwrap().into()
    }

    fn telemetry(driver: &str, t: f64, pct: f32, seq: u64) -> Action {
        push(serde_json::json!({
            "type": "telemetry_update", "seq": seq, "from": format!("/teams/t/drivers/{driver}"),
            "data": {"driverId": driver, "timestamp": "2026-11-21T12:00:00Z", "sessionTime": t,
                     "speed": 200.0, "rpm": 7000, "gear": 4, "throttle": 90, "brake": 0,
                     "steeringAngle": 1.5, "lap": 2, "trackPosition": pct, "fuelLevel": 30,
                     "latitude": 50.4, "longitude": 5.9}
        }))
    }

    #[test]
    fn samples_update_the_car_once_and_count_gaps() {
        let mut s = Store::default();
        let fx = s.reduce(telemetry("d1", 1.0, 0.1, 1), 100.0);
        assert_eq!(fx, vec![Effect::ReloadDrivers], "unknown driver: reload profiles");
        assert_eq!(s.first_sample_at, Some(100.0));
        // the same sample again (team + focused feed): kept once
        s.reduce(telemetry("d1", 1.0, 0.1, 2), 110.0);
        assert_eq!(s.cars["d1"].trace.len(), 1);
        s.reduce(telemetry("d1", 1.1, 0.11, 5), 120.0);
        assert_eq!(s.cars["d1"].trace.len(), 2);
        assert_eq!(s.seq_gaps, 2);
        assert_eq!(s.cars["d1"].latest.as_ref().unwrap().sample.session_time, 1.1);
        assert_eq!(s.outline(None).map(|o| o.0), Some("d1"));
        assert_eq!(s.outline(Some("d2")).map(|o| o.0), Some("d1"), "no outline of d2: the best one");
        assert!(!s.cars["d1"].is_stale(120.0 + 1000.0));
        assert!(s.cars["d1"].is_stale(120.0 + STALE_MS + 1.0));
        // a reconnect numbers from 1 again without counting a gap
        s.reduce(Action::Conn(Conn::Authenticating), 0.0);
        s.reduce(telemetry("d1", 1.2, 0.12, 1), 130.0);
        assert_eq!(s.seq_gaps, 2);
    }

    #[test]
    fn trace_is_a_rolling_window_and_resets_on_a_new_session() {
        let mut s = Store::default();
        for i in 0..(60 * 40) {
            s.reduce(telemetry("d1", f64::from(i) / 60.0, 0.5, u64::from(i as u32) + 1), 0.0);
        }
        let tr = &s.cars["d1"].trace;
        let span = tr.back().unwrap().t - tr.front().unwrap().t;
        assert!(span <= TRACE_SECS && span > TRACE_SECS - 0.1, "{span}");
        s.reduce(telemetry("d1", 2.0, 0.5, 100_000), 0.0);
        assert_eq!(s.cars["d1"].trace.len(), 1, "time went back: new session");
        assert_eq!(s.cars["d1"].latest.as_ref().unwrap().sample.session_time, 2.0);
    }

    fn lap_summary(id: &str, n: i32, time: f64, valid: bool) -> LapSummary {
        serde_json::from_value(serde_json::json!({
            "id": id, "sessionId": "s", "driverId": "d1", "lapNumber": n, "lapTime": time,
            "valid": valid, "fuelUsed": 2.5, "sectorTimes": [30.0, 30.0, 30.0],
            "sampleCount": 5400, "completedAt": format!("2026-11-21T12:0{n}:00Z")
        }))
        .unwrap()
    }

    /// A live `lap_completed` push.
    fn lap(id: &str, n: i32, time: f64, valid: bool) -> Action {
        Envelope::new(Message::LapCompleted(lap_summary(id, n, time, valid))).into()
    }

    #[test]
    fn laps_best_and_reference_fetches() {
        let mut s = Store::default();
        assert_eq!(
            s.reduce(lap("a", 1, 92.0, true), 0.0),
            vec![Effect::FetchReference { driver_id: "d1".into(), lap_id: "a".into() }]
        );
        assert!(s.reduce(lap("b", 2, 91.0, false), 0.0).is_empty(), "invalid laps are not references");
        assert_eq!(s.reduce(lap("c", 3, 90.5, true), 0.0).len(), 1);
        assert!(s.reduce(lap("c", 3, 90.5, true), 0.0).is_empty(), "duplicates ignored");
        let car = &s.cars["d1"];
        assert_eq!(car.laps.len(), 3);
        assert_eq!(car.best_lap_time(), Some(90.5));
        assert_eq!(car.last_lap_time(), Some(90.5));
    }

    #[test]
    fn messages_and_handoffs_upsert() {
        let mut s = Store::default();
        let msg = |id: &str, at: &str, read: bool| {
            push(serde_json::json!({"type": "team_message", "data": {
                "id": id, "teamId": "t", "content": "box box", "senderId": "u", "senderName": "Eng",
                "priority": "high", "sentAt": at, "read": read}}))
        };
        s.reduce(msg("m2", "2026-11-21T12:00:02Z", false), 0.0);
        s.reduce(msg("m1", "2026-11-21T12:00:01Z", false), 0.0);
        s.reduce(msg("m2", "2026-11-21T12:00:02Z", false), 0.0);
        assert_eq!(s.messages.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["m1", "m2"]);
        assert_eq!(s.unread(), 2);
        s.reduce(Action::MarkRead("m1".into()), 0.0);
        assert_eq!(s.unread(), 1);
        let handoff = |status: &str| {
            push(serde_json::json!({"type": "handoff_request", "data": {
                "id": "h1", "teamId": "t", "requesterId": "u", "requesterName": "Eng",
                "targetDriverId": "d2", "targetDriverName": "Bob", "reason": "stint", "urgency": "normal",
                "requestedAt": "2026-11-21T12:00:00Z", "status": status}}))
        };
        s.reduce(handoff("pending"), 0.0);
        s.reduce(handoff("accepted"), 0.0);
        assert_eq!(s.handoffs.len(), 1);
        assert_eq!(s.handoffs[0].status.as_str(), "accepted");
    }

    #[test]
    fn errors_become_notices_and_status_updates_cars() {
        let mut s = Store::default();
        s.reduce(
            push(serde_json::json!({"type": "error", "data": {"code": "forbidden", "message": "no"}})),
            0.0,
        );
        assert_eq!(s.notices.back().unwrap(), "\"forbidden\": no");
        let fx = s.reduce(
            push(serde_json::json!({"type": "driver_status", "data": {
                "driverId": "d9", "status": "active", "telemetryConnected": true}})),
            0.0,
        );
        assert_eq!(fx, vec![Effect::ReloadDrivers]);
        assert!(s.cars["d9"].connected);
        s.reduce(
            push(serde_json::json!({"type": "ai_coaching", "data": {
                "driverId": "d9", "feedback": "Brake later into T1", "confidence": 0.8,
                "telemetryAnalysis": {"strengths": [], "weaknesses": [], "improvementAreas": ["T1"]},
                "timestamp": "2026-11-21T12:00:00Z", "priority": "normal"}})),
            0.0,
        );
        assert_eq!(s.coaching.back().unwrap().feedback, "Brake later into T1");
        // The coach's own pushes carry the lap, its items and the car's strategy.
        s.reduce(lap("L7", 7, 91.0, true), 0.0);
        let fx = s.reduce(
            push(serde_json::json!({"type": "ai_coaching", "data": {
                "driverId": "d1", "lapId": "L7", "lapNumber": 7, "feedback": "T4: −0.21 s, braked 14 m early",
                "confidence": 0.7, "priority": "high", "timestamp": "2026-11-21T12:00:00Z",
                "telemetryAnalysis": {"strengths": [], "weaknesses": [], "improvementAreas": []},
                "items": [{"text": "T4: −0.21 s, braked 14 m early", "priority": "high", "topic": "T4/brakedEarly",
                           "corner": "T4", "timeGainedS": -0.21, "pattern": [4, 6]}],
                "strategy": {"driverId": "d1", "fuelPerLap": 2.5, "lapsOfFuel": 12.0, "updatedAt": "2026-11-21T12:00:00Z"}}})),
            0.0,
        );
        assert_eq!(fx, vec![Effect::FetchTrackMap { driver_id: "d1".into(), session_id: "s".into() }]);
        assert_eq!(s.strategies["d1"].laps_of_fuel, Some(12.0));
        assert_eq!(s.coaching_of(Some("d1")).next().unwrap().items[0].corner.as_deref(), Some("T4"));
        assert_eq!(s.coaching_of(None).count(), 2);
        let v = s.version;
        s.reduce(push(serde_json::json!({"type": "ack", "data": {"driverId": "d", "seq": 3}})), 0.0);
        assert_eq!(s.version, v, "irrelevant messages do not cause a render");
    }

    #[test]
    fn laps_from_rest_and_live_pushes_merge_through_the_same_path() {
        let mut s = Store::default();
        // Live first: lap 2 arrives as a push before the REST answer that also holds it.
        assert_eq!(s.reduce(lap("b", 2, 91.0, true), 0.0).len(), 1, "a first best lap: its reference");
        let fx = s.reduce(
            Action::Laps(vec![lap_summary("a", 1, 92.0, true), lap_summary("b", 2, 91.0, true)]),
            0.0,
        );
        // b is still the best lap (no second reference fetch); the newest session's map is asked for.
        assert_eq!(fx, vec![Effect::FetchTrackMap { driver_id: "d1".into(), session_id: "s".into() }]);
        let ids = |s: &Store| s.cars["d1"].laps.iter().map(|l| l.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&s), ["a", "b"], "merged once each, oldest first");
        // The same laps pushed live after REST brought them: nothing new, nothing fetched.
        assert!(s.reduce(lap("a", 1, 92.0, true), 0.0).is_empty());
        assert!(s.reduce(lap("b", 2, 91.0, true), 0.0).is_empty());
        assert_eq!(ids(&s), ["a", "b"]);
        // A reload of the laps asks for no map twice; a map that was missing may be asked again.
        assert!(s.reduce(Action::Laps(vec![lap_summary("a", 1, 92.0, true)]), 0.0).is_empty());
        s.reduce(Action::TrackMapMissing { driver_id: "d1".into(), session_id: "s".into() }, 0.0);
        assert_eq!(s.reduce(Action::Laps(Vec::new()), 0.0), vec![]);
        let fx = s.reduce(Action::Laps(vec![lap_summary("a", 1, 92.0, true)]), 0.0);
        assert_eq!(fx, vec![Effect::FetchTrackMap { driver_id: "d1".into(), session_id: "s".into() }]);
        // A new best lap live after REST: its trace becomes the reference.
        assert_eq!(
            s.reduce(lap("c", 3, 90.0, true), 0.0),
            vec![Effect::FetchReference { driver_id: "d1".into(), lap_id: "c".into() }]
        );
    }

    #[test]
    fn the_map_fetched_after_rest_laps_is_of_the_newest_session() {
        let mut s = Store::default();
        let in_session = |id: &str, n: i32, session: &str| LapSummary {
            session_id: session.into(),
            ..lap_summary(id, n, 92.0, true)
        };
        // Newest first, as the runtime sends them.
        let fx = s.reduce(Action::Laps(vec![in_session("b", 2, "new"), in_session("a", 1, "old")]), 0.0);
        assert!(
            fx.contains(&Effect::FetchTrackMap { driver_id: "d1".into(), session_id: "new".into() }),
            "{fx:?}"
        );
        assert!(!fx
            .iter()
            .any(|e| matches!(e, Effect::FetchTrackMap { session_id, .. } if session_id == "old")));
    }

    #[test]
    fn messages_from_rest_and_pushes_are_one_list() {
        let mut s = Store::default();
        let msg = |id: &str, at: &str| -> TeamMessage {
            serde_json::from_value(serde_json::json!({
                "id": id, "teamId": "t", "content": "box box", "senderId": "u", "senderName": "Eng",
                "priority": "high", "sentAt": at, "read": false}))
            .unwrap()
        };
        s.reduce(Envelope::new(Message::TeamMessage(msg("m2", "2026-11-21T12:00:02Z"))).into(), 0.0);
        s.reduce(Action::MarkRead("m2".into()), 0.0);
        s.reduce(
            Action::Messages(vec![msg("m3", "2026-11-21T12:00:03Z"), msg("m1", "2026-11-21T12:00:01Z")]),
            0.0,
        );
        assert_eq!(s.messages.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["m1", "m2", "m3"]);
        assert_eq!(s.unread(), 2);
    }

    #[test]
    fn switching_team_keeps_the_connection_and_the_version_counting() {
        let mut s = Store::default();
        s.reduce(Action::Conn(Conn::Live), 0.0);
        s.reduce(Action::TreeConn(Conn::Live), 0.0);
        s.reduce(telemetry("d1", 1.0, 0.1, 1), 0.0);
        s.reduce(Action::Notice("hello".into()), 0.0);
        let v = s.version;
        s.reduce(Action::OpenTeam("t2".into()), 0.0);
        assert!(s.cars.is_empty() && s.notices.is_empty() && s.samples == 0);
        assert_eq!((s.conn.clone(), s.tree_conn.clone()), (Some(Conn::Live), None));
        assert_eq!(s.team_id.as_deref(), Some("t2"));
        assert!(s.version > v, "a changed store is drawn again");
        let v = s.version;
        s.reduce(Action::Reset, 0.0);
        assert_eq!((s.conn.clone(), s.team_id.clone()), (None, None));
        assert!(s.version > v);
        let v = s.version;
        s.reduce(Action::Tick, 0.0);
        assert_eq!(s.version, v + 1, "the clock tick redraws ages");
    }

    /// An actor-tree push with two teams, each with one driver session.
    fn actor_tree(seq: u64) -> Action {
        let team = |t: &str, d: &str| {
            serde_json::json!({
                "path": format!("/teams/{t}"), "kind": "team_supervisor", "status": "running", "mailbox": 0,
                "counters": {"received": 0, "handled": 0, "failed": 0},
                "supervision": {"restarts": 0, "escalations": 0}, "startedAt": "2026-01-01T00:00:00Z",
                "children": [{
                    "path": format!("/teams/{t}/drivers/{d}"), "kind": "driver_session", "status": "running",
                    "mailbox": 3, "counters": {"received": 3, "handled": 0, "failed": 0},
                    "supervision": {"restarts": 0, "escalations": 0}, "startedAt": "2026-01-01T00:00:00Z"
                }]
            })
        };
        push(serde_json::json!({"type": "actor_tree", "data": {
            "seq": seq, "capturedAt": format!("2026-01-01T00:00:{seq:02}Z"), "serverId": "n1",
            "uptimeSecs": 1.0, "actors": 4, "root": [team("open", "d-open"), team("other", "d-other")]}}))
    }

    fn profile(id: &str, name: &str) -> DriverProfile {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "team": "T", "number": 7, "status": "active", "role": "primary",
            "avatarUrl": "", "telemetryConnected": false}))
        .unwrap()
    }

    #[test]
    fn actor_paths_read_as_team_and_driver_names() {
        let mut s = Store::default();
        s.reduce(Action::OpenTeam("open".into()), 0.0);
        let teams: Vec<Team> = serde_json::from_value(serde_json::json!([
            {"id": "open", "name": "Open Team", "createdAt": "2026-01-01T00:00:00Z"},
            {"id": "other", "name": "Other Team", "createdAt": "2026-01-01T00:00:00Z"}]))
        .unwrap();
        s.reduce(Action::Teams(teams), 0.0);
        s.reduce(Action::Drivers(vec![profile("d-open", "Alice")]), 0.0);
        // The open team's drivers came with the team; the other team's are fetched once.
        assert_eq!(s.reduce(actor_tree(1), 0.0), vec![Effect::FetchTeamDrivers("other".into())]);
        assert!(s.reduce(actor_tree(2), 0.0).is_empty(), "asked once");
        assert_eq!(s.names.label("/teams/open"), "Open Team");
        assert_eq!(s.names.label("/teams/open/drivers/d-open"), "Alice");
        assert_eq!(s.names.label("/teams/other/drivers/d-other"), "d-other", "a short id until loaded");
        let v = s.version;
        s.reduce(
            Action::TeamDrivers { team_id: "other".into(), drivers: vec![profile("d-other", "Bob")] },
            0.0,
        );
        assert!(s.version > v);
        assert_eq!(s.names.label("/teams/other/drivers/d-other"), "Bob");
        assert!(!s.cars.contains_key("d-other"), "another team's drivers are names only, not cars");
        // Selecting an actor: its detail, with its children.
        s.reduce(Action::SelectActor(Some("/teams/other".into())), 0.0);
        let r = s.tree.selected_row().unwrap();
        assert_eq!(r.children, ["/teams/other/drivers/d-other"]);
        assert_eq!(s.tree.row("/teams/other/drivers/d-other").unwrap().mailbox, 3);
        // Opening another team keeps the names; logging out forgets them.
        s.reduce(Action::OpenTeam("other".into()), 0.0);
        assert_eq!(s.names.label("/teams/other"), "Other Team");
        s.reduce(Action::Reset, 0.0);
        assert_eq!(s.names.label("/teams/other"), "other");
    }

    #[test]
    fn the_handle_reduces_and_hands_effects_on() {
        let seen: Rc<RefCell<Vec<Effect>>> = Rc::default();
        let slot: Rc<RefCell<Option<StoreHandle>>> = Rc::default();
        let handle = {
            let (seen, slot) = (seen.clone(), slot.clone());
            StoreHandle::new(
                || 42.0,
                move |fx| {
                    // Performing an effect may dispatch again: the store is not borrowed here.
                    if let Some(h) = slot.borrow().as_ref() {
                        h.dispatch(Action::Notice(format!("{} effect(s)", fx.len())));
                    }
                    seen.borrow_mut().extend(fx);
                },
            )
        };
        *slot.borrow_mut() = Some(handle.clone());
        handle.dispatch(telemetry("d1", 1.0, 0.1, 1));
        assert_eq!(*seen.borrow(), [Effect::ReloadDrivers]);
        let store = handle.read();
        assert_eq!(store.first_sample_at, Some(42.0), "stamped with the handle's clock");
        assert_eq!(store.notices.back().map(String::as_str), Some("1 effect(s)"));
        drop(store);
        slot.borrow_mut().take();
    }
}
