//! The Yew app: the root component (`App`) owns the store, the REST client and the sockets, runs
//! the animation-frame loop and routes (`#/`, `#/driver/{id}`, `#/engineer`); views read the store
//! through [`Ctx`] and change it only by dispatching actions. Pushes only mark the store changed;
//! the page re-renders at most once per animation frame, and only when something changed. Reads no
//! env vars.

mod app;
mod canvas;
mod coach;
mod comms;
mod driver;
mod engineer;
mod login;
mod overview;
mod video;
mod voice;

use std::cell::RefCell;
use std::rc::Rc;

use pitbox_schema::wire::{Message, UserInfo};
use yew::prelude::*;

use crate::model::store::{Action, StoreHandle};
use crate::net::api::Api;
use crate::net::socket::Socket;

pub use app::App;

/// Mounts the app into the page's body.
pub fn start() {
    yew::Renderer::<App>::new().render();
}

/// Where the user is.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Overview,
    Driver(String),
    Engineer,
}

impl Route {
    pub fn parse(hash: &str) -> Route {
        let path = hash.trim_start_matches('#');
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        match parts.as_slice() {
            ["driver", id] => Route::Driver((*id).to_owned()),
            ["engineer"] => Route::Engineer,
            _ => Route::Overview,
        }
    }

    pub fn hash(&self) -> String {
        match self {
            Route::Overview => "#/".into(),
            Route::Driver(id) => format!("#/driver/{id}"),
            Route::Engineer => "#/engineer".into(),
        }
    }
}

/// What every view gets: the store (read at render time, changed by dispatching), the clients, and
/// the render version.
#[derive(Clone)]
pub struct Ctx {
    pub store: StoreHandle,
    pub api: Api,
    pub socket: Rc<RefCell<Option<Socket>>>,
    pub version: u64,
    pub user: UserInfo,
    pub team_id: String,
    pub route: Route,
    pub navigate: Callback<Route>,
}

impl PartialEq for Ctx {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
            && self.route == other.route
            && self.team_id == other.team_id
            && self.user == other.user
    }
}

impl Ctx {
    /// Sends over the team socket; the error is shown to the user.
    pub fn send(&self, m: Message) -> Result<String, String> {
        match self.socket.borrow().as_ref() {
            Some(s) => s.send(m),
            None => Err("not connected".into()),
        }
    }

    pub fn dispatch(&self, action: Action) {
        self.store.dispatch(action);
    }

    pub fn notice(&self, text: impl Into<String>) {
        self.dispatch(Action::Notice(text.into()));
    }

    /// Sees the engineer view (`Role::is_engineer`, the rule the runtime's admin routes apply).
    pub fn is_engineer(&self) -> bool {
        self.user.role.is_engineer()
    }
}

/// Value of an input/select/textarea from its event.
pub fn value_of(e: &Event) -> String {
    use wasm_bindgen::JsCast;
    let Some(t) = e.target() else { return String::new() };
    if let Some(i) = t.dyn_ref::<web_sys::HtmlInputElement>() {
        return i.value();
    }
    if let Some(s) = t.dyn_ref::<web_sys::HtmlSelectElement>() {
        return s.value();
    }
    if let Some(a) = t.dyn_ref::<web_sys::HtmlTextAreaElement>() {
        return a.value();
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::Route;

    #[test]
    fn routes_round_trip() {
        for r in [Route::Overview, Route::Driver("abc".into()), Route::Engineer] {
            assert_eq!(Route::parse(&r.hash()), r);
        }
        assert_eq!(Route::parse(""), Route::Overview);
        assert_eq!(Route::parse("#/nonsense/x/y"), Route::Overview);
    }
}
