//! The root component: login state, team loading, sockets, the animation-frame render loop, the
//! hash router and the page frame (header, navigation, connection badge, notices). What the REST
//! tasks fetch is dispatched to the store as actions; the store's effects come back here as
//! [`Msg::Effects`]. Reads no env vars.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use gloo_timers::callback::{Interval, Timeout};
use pitbox_schema::wire::{
    CarStrategy, DriverProfile, HandoffRequest, LapChannels, LapSummary, RacingSession, Subscribe, Team,
    TeamMessage, TrackMap,
};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use super::{comms, driver, engineer, login, overview, Ctx, Route};
use crate::model::laps::{LapTrace, TRACE_CHANNELS};
use crate::model::store::{Action, Conn, Effect, Store, StoreHandle};
use crate::net::api::{Api, ApiError, Session};
use crate::net::now_ms;
use crate::net::socket::{Kind, Socket};

pub enum Msg {
    /// An animation frame with changes to draw.
    Frame,
    Route(Route),
    LoggedIn(Session),
    LoggedOut,
    Logout,
    Team(String, String),
    /// Every team the user may open (a selector appears when there are several).
    Teams(Vec<(String, String)>),
    Effects(Vec<Effect>),
    RefreshToken,
}

pub struct App {
    api: Api,
    store: StoreHandle,
    socket: Rc<RefCell<Option<Socket>>>,
    tree_socket: Option<Socket>,
    session: Option<Session>,
    team: Option<(String, String)>,
    teams: Vec<(String, String)>,
    route: Route,
    drawn: u64,
    renders: u64,
    _raf: FrameLoop,
    _hash: Option<Closure<dyn FnMut(web_sys::Event)>>,
    _tick: Option<Interval>,
    refresh: Option<Timeout>,
    drivers_loading: Rc<Cell<bool>>,
}

/// The animation-frame callback, which re-registers itself each frame.
type FrameLoop = Rc<RefCell<Option<Closure<dyn FnMut(f64)>>>>;

fn window() -> Option<web_sys::Window> {
    web_sys::window()
}

/// Calls `frame` on every animation frame, for as long as the page lives.
fn animation_loop(frame: impl Fn() + 'static) -> FrameLoop {
    let slot: FrameLoop = Rc::new(RefCell::new(None));
    let again = slot.clone();
    *slot.borrow_mut() = Some(Closure::new(move |_t: f64| {
        frame();
        if let (Some(w), Some(cb)) = (window(), again.borrow().as_ref()) {
            let _ = w.request_animation_frame(cb.as_ref().unchecked_ref());
        }
    }));
    if let (Some(w), Some(cb)) = (window(), slot.borrow().as_ref()) {
        let _ = w.request_animation_frame(cb.as_ref().unchecked_ref());
    }
    slot
}

/// Figures for the benchmark and the end-to-end test (`window.__pitbox`).
fn publish_stats(store: &Store, renders: u64) {
    let Some(w) = window() else { return };
    let o = js_sys::Object::new();
    let set = |k: &str, v: f64| {
        let _ = js_sys::Reflect::set(&o, &k.into(), &v.into());
    };
    set("samples", store.samples as f64);
    set("renders", renders as f64);
    set("seqGaps", store.seq_gaps as f64);
    if let Some(t) = store.first_sample_at {
        set("firstSampleAt", t);
    }
    let _ = js_sys::Reflect::set(&w, &"__pitbox".into(), &o);
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let api = Api::restore();
        let link = ctx.link().clone();
        api.on_logout(move || link.send_message(Msg::LoggedOut));
        let store = {
            let link = ctx.link().clone();
            StoreHandle::new(now_ms, move |fx| link.send_message(Msg::Effects(fx)))
        };
        let raf = {
            let (store, link) = (store.clone(), ctx.link().clone());
            let last = Cell::new(u64::MAX);
            animation_loop(move || {
                let v = store.read().version;
                if last.replace(v) != v {
                    link.send_message(Msg::Frame);
                }
            })
        };
        let hash = {
            let link = ctx.link().clone();
            let cb = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                let h = window().and_then(|w| w.location().hash().ok()).unwrap_or_default();
                link.send_message(Msg::Route(Route::parse(&h)));
            });
            if let Some(w) = window() {
                let _ = w.add_event_listener_with_callback("hashchange", cb.as_ref().unchecked_ref());
            }
            Some(cb)
        };
        // Ages and "stale" badges move with time even when no data arrives.
        let tick = {
            let store = store.clone();
            Some(Interval::new(1_000, move || store.dispatch(Action::Tick)))
        };
        let route = Route::parse(&window().and_then(|w| w.location().hash().ok()).unwrap_or_default());
        let session = api.session();
        if let Some(s) = session.clone() {
            ctx.link().send_message(Msg::LoggedIn(s));
        }
        App {
            api,
            store,
            socket: Rc::new(RefCell::new(None)),
            tree_socket: None,
            session: None,
            team: None,
            teams: Vec::new(),
            route,
            drawn: 0,
            renders: 0,
            _raf: raf,
            _hash: hash,
            _tick: tick,
            refresh: None,
            drivers_loading: Rc::new(Cell::new(false)),
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Frame => {
                let v = self.store.read().version;
                if v == self.drawn {
                    return false;
                }
                self.drawn = v;
                self.renders += 1;
                publish_stats(&self.store.read(), self.renders);
                true
            }
            Msg::Route(r) => {
                self.route = r;
                self.sync_sockets();
                true
            }
            Msg::LoggedIn(s) => {
                self.session = Some(s.clone());
                self.schedule_refresh(ctx);
                self.choose_team(ctx, s);
                true
            }
            Msg::RefreshToken => {
                let (api, link) = (self.api.clone(), ctx.link().clone());
                wasm_bindgen_futures::spawn_local(async move {
                    if api.refresh(api.token().as_deref()).await.is_ok() {
                        if let Some(s) = api.session() {
                            link.send_message(Msg::LoggedIn(s));
                        }
                    }
                });
                false
            }
            Msg::Teams(teams) => {
                self.teams = teams;
                true
            }
            Msg::Team(id, name) => {
                if self.team.as_ref().is_some_and(|t| t.0 == id) {
                    return false;
                }
                // Another team: start from a clean slate (the socket keeps its connection and
                // moves its subscriptions).
                self.store.dispatch(Action::OpenTeam(id.clone()));
                self.team = Some((id.clone(), name));
                self.load_team(&id);
                self.sync_sockets();
                true
            }
            Msg::Logout => {
                let api = self.api.clone();
                wasm_bindgen_futures::spawn_local(async move { api.logout().await });
                false
            }
            Msg::LoggedOut => {
                self.session = None;
                self.team = None;
                self.refresh = None;
                *self.socket.borrow_mut() = None;
                self.tree_socket = None;
                self.store.dispatch(Action::Reset);
                true
            }
            Msg::Effects(effects) => {
                for e in effects {
                    self.effect(e);
                }
                false
            }
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let Some(session) = &self.session else {
            let onlogin = ctx.link().callback(Msg::LoggedIn);
            return html! { <login::Login api={self.api.clone()} {onlogin} /> };
        };
        let Some((team_id, team_name)) = &self.team else {
            return html! { <div class="loading">{ "Loading your team…" }</div> };
        };
        let store = self.store.read();
        let navigate = Callback::from(|r: Route| {
            if let Some(w) = window() {
                let _ = w.location().set_hash(&r.hash());
            }
        });
        let view_ctx = Ctx {
            store: self.store.clone(),
            api: self.api.clone(),
            socket: self.socket.clone(),
            version: store.version,
            user: session.user.clone(),
            team_id: team_id.clone(),
            route: self.route.clone(),
            navigate: navigate.clone(),
        };
        let conn = store.conn.clone().unwrap_or(Conn::Connecting);
        let conn_class = match conn {
            Conn::Live => "badge live",
            Conn::Reconnecting { .. } | Conn::Offline => "badge down",
            _ => "badge wait",
        };
        let unread = store.unread();
        let nav = |r: Route, label: String, id: &'static str| {
            let active =
                if std::mem::discriminant(&r) == std::mem::discriminant(&self.route) { "active" } else { "" };
            html! { <a {id} class={active} href={r.hash()}>{ label }</a> }
        };
        let onlogout = ctx.link().callback(|_| Msg::Logout);
        let on_team = {
            let teams = self.teams.clone();
            ctx.link().batch_callback(move |e: Event| {
                let id = super::value_of(&e);
                teams.iter().find(|t| t.0 == id).map(|t| Msg::Team(t.0.clone(), t.1.clone()))
            })
        };
        let notices: Html = store.notices.iter().map(|n| html! { <div class="notice">{ n }</div> }).collect();
        let body = match &self.route {
            Route::Overview => html! { <overview::Overview /> },
            Route::Driver(id) => html! { <driver::DriverView driver_id={id.clone()} /> },
            Route::Engineer if view_ctx.is_engineer() => html! { <engineer::Engineer /> },
            Route::Engineer => {
                html! { <p class="empty">{ "The engineer view is for engineers and admins." }</p> }
            }
        };
        let comms = !matches!(self.route, Route::Engineer);
        html! {
            <ContextProvider<Ctx> context={view_ctx.clone()}>
                <div class="app">
                    <header>
                        <span class="brand">{ "PitBox" }</span>
                        if self.teams.len() > 1 {
                            <select id="team-select" onchange={on_team}>
                                { for self.teams.iter().map(|(id, name)| html! {
                                    <option value={id.clone()} selected={id == team_id}>{ name }</option>
                                }) }
                            </select>
                        } else {
                            <span class="team" id="team-name">{ team_name }</span>
                        }
                        <nav>
                            { nav(Route::Overview, "Pit wall".into(), "nav-overview") }
                            if view_ctx.is_engineer() { { nav(Route::Engineer, "Engineer".into(), "nav-engineer") } }
                        </nav>
                        <span class="unread" title="unread team messages">{ format!("✉ {unread}") }</span>
                        <span id="conn" class={conn_class} data-state={format!("{conn:?}")}>{ conn.label() }</span>
                        <span class="user">{ format!("{} ({})", session.user.username, session.user.role) }</span>
                        <button id="logout" onclick={onlogout}>{ "Log out" }</button>
                    </header>
                    <div class="notices">{ notices }</div>
                    <div class={if comms { "content with-comms" } else { "content" }}>
                        <main>{ body }</main>
                        if comms { <comms::Comms /> }
                    </div>
                </div>
            </ContextProvider<Ctx>>
        }
    }
}

impl App {
    fn schedule_refresh(&mut self, ctx: &Context<Self>) {
        let Some(ms) = self.api.refresh_due_in() else { return };
        let link = ctx.link().clone();
        self.refresh = Some(Timeout::new(ms.min(f64::from(u32::MAX)) as u32, move || {
            link.send_message(Msg::RefreshToken)
        }));
    }

    /// The user's first team (admins without a team: the first team there is).
    fn choose_team(&mut self, ctx: &Context<Self>, s: Session) {
        if self.team.is_some() {
            return;
        }
        let (api, link, store) = (self.api.clone(), ctx.link().clone(), self.store.clone());
        wasm_bindgen_futures::spawn_local(async move {
            match api.get::<Vec<Team>>("/api/teams").await {
                Ok(teams) => {
                    let pick = teams
                        .iter()
                        .find(|t| s.user.teams.contains(&t.id))
                        .or_else(|| teams.first())
                        .map(|t| (t.id.clone(), t.name.clone()));
                    store.dispatch(Action::Teams(teams.clone()));
                    link.send_message(Msg::Teams(teams.into_iter().map(|t| (t.id, t.name)).collect()));
                    match pick {
                        Some((id, name)) => link.send_message(Msg::Team(id, name)),
                        None => store.dispatch(Action::Notice(
                            "you are not in a team yet; ask an admin to add you".into(),
                        )),
                    }
                }
                Err(e) => store.dispatch(Action::Notice(format!("could not load teams: {e}"))),
            }
        });
    }

    fn load_team(&mut self, team: &str) {
        self.load_drivers(team);
        let (api, store, team) = (self.api.clone(), self.store.clone(), team.to_owned());
        wasm_bindgen_futures::spawn_local(async move {
            // Each answer is one action; a failure is a notice naming what could not be loaded.
            let result = |what: &str, r: Result<Action, ApiError>| {
                store.dispatch(r.unwrap_or_else(|e| Action::Notice(format!("{what}: {e}"))))
            };
            let laps = api.get::<Vec<LapSummary>>(&format!("/api/teams/{team}/laps?limit=500")).await;
            result("laps", laps.map(Action::Laps));
            let st = api.get::<Vec<CarStrategy>>(&format!("/api/teams/{team}/strategy")).await;
            result("strategy", st.map(Action::Strategies));
            let m = api.get::<Vec<TeamMessage>>(&format!("/api/teams/{team}/messages?limit=100")).await;
            result("messages", m.map(Action::Messages));
            let h = api.get::<Vec<HandoffRequest>>(&format!("/api/teams/{team}/handoffs?limit=50")).await;
            result("handoffs", h.map(Action::Handoffs));
        });
    }

    fn load_drivers(&mut self, team: &str) {
        if self.drivers_loading.replace(true) {
            return;
        }
        let (api, store, team, flag) =
            (self.api.clone(), self.store.clone(), team.to_owned(), self.drivers_loading.clone());
        wasm_bindgen_futures::spawn_local(async move {
            store.dispatch(
                match api.get::<Vec<DriverProfile>>(&format!("/api/teams/{team}/drivers")).await {
                    Ok(d) => Action::Drivers(d),
                    Err(e) => Action::Notice(format!("drivers: {e}")),
                },
            );
            // At most one reload per 2 s, however many unknown drivers show up.
            Timeout::new(2_000, move || flag.set(false)).forget();
        });
    }

    fn effect(&mut self, e: Effect) {
        match e {
            Effect::ReloadDrivers => {
                if let Some((team, _)) = self.team.clone() {
                    self.load_drivers(&team);
                }
            }
            Effect::FetchTeamDrivers(team_id) => {
                let (api, store) = (self.api.clone(), self.store.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    let path = format!("/api/teams/{team_id}/drivers");
                    store.dispatch(match api.get::<Vec<DriverProfile>>(&path).await {
                        Ok(drivers) => Action::TeamDrivers { team_id, drivers },
                        // The names stay short ids; the tree works without them.
                        Err(e) => Action::Notice(format!("drivers of another team: {e}")),
                    });
                });
            }
            Effect::FetchTrackMap { driver_id, session_id } => {
                let Some((team, _)) = self.team.clone() else { return };
                let (api, store) = (self.api.clone(), self.store.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    let Ok(s) = api.get::<RacingSession>(&format!("/api/sessions/{session_id}")).await else {
                        return;
                    };
                    let track = js_sys::encode_uri_component(&s.track);
                    let car = js_sys::encode_uri_component(&s.car);
                    let path = format!("/api/tracks/{track}/map?teamId={team}&car={car}");
                    // No map yet (no clean lap so far) is not an error: the coach's next lap asks again.
                    store.dispatch(match api.get::<TrackMap>(&path).await {
                        Ok(map) => Action::TrackMap { driver_id, map },
                        Err(_) => Action::TrackMapMissing { driver_id, session_id },
                    });
                });
            }
            Effect::FetchReference { driver_id, lap_id } => {
                let (api, store) = (self.api.clone(), self.store.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    let path = format!("/api/laps/{lap_id}?channels={TRACE_CHANNELS}");
                    match api.get::<LapChannels>(&path).await {
                        Ok(ch) => {
                            if let Some(trace) = LapTrace::from_channels(&ch) {
                                store.dispatch(Action::Reference { driver_id, trace });
                            }
                        }
                        Err(e) => store.dispatch(Action::Notice(format!("reference lap: {e}"))),
                    }
                });
            }
        }
    }

    /// Opens/closes sockets and subscriptions for the current route.
    fn sync_sockets(&mut self) {
        let Some((team, _)) = self.team.clone() else { return };
        if self.socket.borrow().is_none() {
            let socket = Socket::open(Kind::Team, self.api.clone(), self.store.clone());
            *self.socket.borrow_mut() = Some(socket);
        }
        let mut subs = vec![Subscribe { team_id: team.clone(), driver_id: None, rate_hz: None }];
        if let Route::Driver(d) = &self.route {
            subs.push(Subscribe { team_id: team, driver_id: Some(d.clone()), rate_hz: None });
        }
        if let Some(s) = self.socket.borrow().as_ref() {
            s.set_subscriptions(subs);
        }
        let engineer = matches!(self.route, Route::Engineer)
            && self.session.as_ref().is_some_and(|s| s.user.role.is_engineer());
        if engineer && self.tree_socket.is_none() {
            self.tree_socket = Some(Socket::open(Kind::Tree, self.api.clone(), self.store.clone()));
        } else if !engineer {
            self.tree_socket = None;
        }
    }
}
