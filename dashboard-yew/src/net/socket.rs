//! WebSockets to the runtime, reconnecting by themselves.
//! - [`Kind::Team`]: `/ws` with the protocol's handshake (`connection_established` →
//!   `authenticate` → `authentication_result`), then the wanted subscriptions (re-sent after every
//!   reconnect); every push is dispatched to the store as an action.
//! - [`Kind::Tree`]: `/admin/actors/stream?access_token=…`, one actor-tree snapshot per second.
//!
//! A lost connection is retried with exponential backoff (0.5 s doubling to 10 s, with jitter);
//! a close for policy reasons (1008: token expired or refused) refreshes the token first. The
//! state is dispatched to the store (`conn` / `tree_conn`) for the connection badge. Reads no env
//! vars.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use pitbox_schema::wire::{Authenticate, ClientType, Envelope, Message, Subscribe, WatchVideo};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use super::api::Api;
use super::ws_url;
use crate::model::store::{Action, Conn, StoreHandle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Team,
    Tree,
}

struct Inner {
    kind: Kind,
    api: Api,
    store: StoreHandle,
    ws: Option<WebSocket>,
    handlers: Vec<Closure<dyn FnMut(web_sys::Event)>>,
    subs: Vec<Subscribe>,
    /// Videos being watched (asked again after a reconnect).
    watching: Vec<WatchVideo>,
    live: bool,
    attempt: u32,
    retry: Option<Timeout>,
    stopped: bool,
    next_id: u64,
}

/// Owns the connection; dropping it closes the socket for good.
pub struct Socket {
    inner: Rc<RefCell<Inner>>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        let mut inner = self.inner.borrow_mut();
        inner.stopped = true;
        inner.retry = None;
        retire(&mut inner);
        // Dropping the handlers breaks the Rc cycle through the closures.
        inner.handlers.clear();
    }
}

fn set_conn(inner: &Inner, c: Conn) {
    inner.store.dispatch(match inner.kind {
        Kind::Team => Action::Conn(c),
        Kind::Tree => Action::TreeConn(c),
    });
}

impl Socket {
    pub fn open(kind: Kind, api: Api, store: StoreHandle) -> Socket {
        let inner = Rc::new(RefCell::new(Inner {
            kind,
            api,
            store,
            ws: None,
            handlers: Vec::new(),
            subs: Vec::new(),
            watching: Vec::new(),
            live: false,
            attempt: 0,
            retry: None,
            stopped: false,
            next_id: 0,
        }));
        connect(&inner);
        Socket { inner }
    }

    /// Sends a message (with a fresh request id); fails when the socket is not authenticated.
    pub fn send(&self, message: Message) -> Result<String, String> {
        send_on(&mut self.inner.borrow_mut(), message)
    }

    /// Starts watching a driver's onboard video (again after every reconnect).
    pub fn watch_video(&self, w: WatchVideo) {
        let live = {
            let mut inner = self.inner.borrow_mut();
            if !inner.watching.contains(&w) {
                inner.watching.push(w.clone());
            }
            inner.live
        };
        if live {
            let _ = self.send(Message::WatchVideo(w));
        }
    }

    pub fn unwatch_video(&self, w: WatchVideo) {
        let live = {
            let mut inner = self.inner.borrow_mut();
            inner.watching.retain(|x| *x != w);
            inner.live
        };
        if live {
            let _ = self.send(Message::UnwatchVideo(w));
        }
    }

    /// Replaces the wanted subscriptions: unsubscribes what is no longer wanted, subscribes what
    /// is new. Kept for reconnects.
    pub fn set_subscriptions(&self, subs: Vec<Subscribe>) {
        let (old, live) = {
            let mut inner = self.inner.borrow_mut();
            (std::mem::replace(&mut inner.subs, subs.clone()), inner.live)
        };
        if !live {
            return;
        }
        for s in old.iter().filter(|s| !subs.contains(s)) {
            let _ = self.send(Message::Unsubscribe(s.clone()));
        }
        for s in subs.iter().filter(|s| !old.contains(s)) {
            let _ = self.send(Message::Subscribe(s.clone()));
        }
    }
}

/// Unhooks our handlers from a socket we are done with: its late events (the close that follows
/// `close()`) must not call closures that are about to be dropped.
fn detach(ws: &WebSocket) {
    ws.set_onmessage(None);
    ws.set_onopen(None);
    ws.set_onclose(None);
}

fn send_on(inner: &mut Inner, message: Message) -> Result<String, String> {
    if !inner.live {
        return Err("not connected: try again when the badge says live".into());
    }
    inner.next_id += 1;
    let id = format!("r{}", inner.next_id);
    let env = Envelope { id: Some(id.clone()), ..Envelope::new(message) };
    let text = serde_json::to_string(&env).map_err(|e| e.to_string())?;
    match &inner.ws {
        Some(ws) => ws.send_with_str(&text).map(|_| id).map_err(|_| "the socket refused the message".into()),
        None => Err("not connected".into()),
    }
}

/// Done with the current socket (if any): unhook it and close it (a no-op once it is closed).
fn retire(inner: &mut Inner) {
    inner.live = false;
    if let Some(old) = inner.ws.take() {
        detach(&old);
        let _ = old.close();
    }
}

fn connect(rc: &Rc<RefCell<Inner>>) {
    let mut inner = rc.borrow_mut();
    if inner.stopped {
        return;
    }
    retire(&mut inner);
    let url = match inner.kind {
        Kind::Team => ws_url("/ws"),
        Kind::Tree => {
            let token = inner.api.token().unwrap_or_default();
            ws_url(&format!("/admin/actors/stream?access_token={}", js_sys::encode_uri_component(&token)))
        }
    };
    set_conn(&inner, Conn::Connecting);
    let ws = match WebSocket::new(&url) {
        Ok(ws) => ws,
        Err(_) => {
            drop(inner);
            return schedule(rc, false);
        }
    };
    let weak = Rc::downgrade(rc);
    // Media frames arrive as ArrayBuffers (not Blobs): read at once, without a promise.
    ws.set_binary_type(web_sys::BinaryType::Arraybuffer);
    let on_message = {
        let weak = weak.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
            if let (Some(rc), Ok(e)) = (weak.upgrade(), e.dyn_into::<MessageEvent>()) {
                let data = e.data();
                if let Some(text) = data.as_string() {
                    on_text(&rc, &text);
                } else if let Ok(buf) = data.dyn_into::<js_sys::ArrayBuffer>() {
                    super::media::deliver(&js_sys::Uint8Array::new(&buf).to_vec());
                }
            }
        })
    };
    let on_open = {
        let weak = weak.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if let Some(rc) = weak.upgrade() {
                let inner = rc.borrow();
                if inner.kind == Kind::Tree {
                    set_conn(&inner, Conn::Live);
                    drop(inner);
                    rc.borrow_mut().attempt = 0;
                } else {
                    set_conn(&inner, Conn::Authenticating);
                }
            }
        })
    };
    let on_close = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
        let policy = e.dyn_into::<CloseEvent>().is_ok_and(|c| c.code() == 1008);
        if let Some(rc) = weak.upgrade() {
            schedule(&rc, policy);
        }
    });
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    inner.handlers = vec![on_message, on_open, on_close];
    inner.ws = Some(ws);
}

/// Reconnects after a backoff; after a policy close, refreshes the token first.
fn schedule(rc: &Rc<RefCell<Inner>>, refresh_first: bool) {
    let mut inner = rc.borrow_mut();
    if inner.stopped {
        return;
    }
    retire(&mut inner);
    inner.attempt += 1;
    let base = (500.0 * 2f64.powi(inner.attempt.min(5) as i32 - 1)).min(10_000.0);
    let delay = (base * (0.75 + 0.5 * js_sys::Math::random())) as u32;
    set_conn(&inner, Conn::Reconnecting { attempt: inner.attempt, in_ms: delay });
    let weak: Weak<RefCell<Inner>> = Rc::downgrade(rc);
    let api = inner.api.clone();
    inner.retry = Some(Timeout::new(delay, move || {
        wasm_bindgen_futures::spawn_local(async move {
            if refresh_first {
                // A refused refresh logs out (the app then drops this socket).
                let _ = api.refresh(None).await;
            }
            if let Some(rc) = weak.upgrade() {
                connect(&rc);
            }
        });
    }));
}

fn on_text(rc: &Rc<RefCell<Inner>>, text: &str) {
    let env: Envelope = match serde_json::from_str(text) {
        Ok(e) => e,
        Err(e) => {
            let store = rc.borrow().store.clone();
            store.dispatch(Action::Notice(format!("unreadable message from the server: {e}")));
            return;
        }
    };
    let kind = rc.borrow().kind;
    match (&env.message, kind) {
        (Message::ConnectionEstablished(_), Kind::Team) => {
            let inner = rc.borrow();
            let auth = Authenticate {
                token: inner.api.token().unwrap_or_default(),
                client_type: ClientType::Dashboard,
                version: env!("CARGO_PKG_VERSION").to_owned(),
                track: None,
                car: None,
                session_type: None,
            };
            if let (Some(ws), Ok(text)) =
                (&inner.ws, serde_json::to_string(&Envelope::new(Message::Authenticate(auth))))
            {
                let _ = ws.send_with_str(&text);
            }
        }
        (Message::AuthenticationResult(r), Kind::Team) => {
            let mut inner = rc.borrow_mut();
            if r.success {
                inner.live = true;
                inner.attempt = 0;
                set_conn(&inner, Conn::Live);
                for s in inner.subs.clone() {
                    let _ = send_on(&mut inner, Message::Subscribe(s));
                }
                for w in inner.watching.clone() {
                    let _ = send_on(&mut inner, Message::WatchVideo(w));
                }
            } else {
                let why =
                    r.error.as_ref().map_or_else(|| "authentication failed".into(), |e| e.message.clone());
                inner.store.dispatch(Action::Notice(why));
            }
        }
        (Message::VideoWatching(w), Kind::Team) => super::media::stream_is(w.stream, &w.driver_id),
        _ => {
            // Outside the borrow of `Inner`: performing the effects may use this socket.
            let store = rc.borrow().store.clone();
            store.dispatch(env.into());
        }
    }
}
