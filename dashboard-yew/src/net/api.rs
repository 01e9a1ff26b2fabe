//! The REST client: login, authenticated GET/POST against the page's origin, token refresh (ahead
//! of expiry and once on a 401), logout. The session (tokens and user) is kept in localStorage under
//! `pitbox.session` so a reload stays logged in. Refreshes are serialised: the runtime treats a
//! reused refresh token as theft and revokes the whole family, so two tabs' worth of parallel
//! refreshes must never race. Reads no env vars.

use std::cell::RefCell;
use std::rc::Rc;

use futures::lock::Mutex;
use gloo_net::http::{Request, RequestBuilder, Response};
use pitbox_schema::wire::{ErrorBody, LoginRequest, LoginResponse, RefreshRequest, UserInfo};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const STORAGE_KEY: &str = "pitbox.session";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub token: String,
    pub refresh_token: String,
    pub user: UserInfo,
    /// Wall-clock ms (Date.now()) when the access token expires.
    pub expires_at: f64,
}

impl Session {
    fn from_login(r: LoginResponse) -> Session {
        Session {
            token: r.token,
            refresh_token: r.refresh_token,
            user: r.user,
            expires_at: js_sys::Date::now() + f64::from(r.expires_in) * 1000.0,
        }
    }
}

/// An API failure as the user should read it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn network(e: impl std::fmt::Display) -> ApiError {
    ApiError { status: 0, message: format!("network error: {e}") }
}

async fn error_of(resp: Response) -> ApiError {
    let status = resp.status();
    let message = match resp.json::<ErrorBody>().await {
        Ok(b) => b.message,
        Err(_) => format!("HTTP {status}"),
    };
    ApiError { status, message }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

#[derive(Default)]
struct Inner {
    session: RefCell<Option<Session>>,
    refresh_lock: Mutex<()>,
    on_logout: RefCell<Option<Rc<dyn Fn()>>>,
}

/// Cheap to clone; every clone shares the session.
#[derive(Clone, Default)]
pub struct Api {
    inner: Rc<Inner>,
}

impl PartialEq for Api {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Api {
    /// The API with the session saved by an earlier visit, if any.
    pub fn restore() -> Api {
        let api = Api::default();
        let saved = storage()
            .and_then(|s| s.get_item(STORAGE_KEY).ok().flatten())
            .and_then(|j| serde_json::from_str::<Session>(&j).ok());
        *api.inner.session.borrow_mut() = saved;
        api
    }

    /// Called when the session ends (logout, or a refresh the server refused).
    pub fn on_logout(&self, f: impl Fn() + 'static) {
        *self.inner.on_logout.borrow_mut() = Some(Rc::new(f));
    }

    pub fn session(&self) -> Option<Session> {
        self.inner.session.borrow().clone()
    }

    pub fn token(&self) -> Option<String> {
        self.inner.session.borrow().as_ref().map(|s| s.token.clone())
    }

    fn store(&self, session: Option<Session>) {
        if let Some(st) = storage() {
            let _ = match &session {
                Some(s) => serde_json::to_string(s).map(|j| st.set_item(STORAGE_KEY, &j)),
                None => Ok(st.remove_item(STORAGE_KEY)),
            };
        }
        *self.inner.session.borrow_mut() = session;
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<Session, ApiError> {
        let body = LoginRequest { username: username.to_owned(), password: password.to_owned() };
        let resp =
            Request::post("/api/auth/login").json(&body).map_err(network)?.send().await.map_err(network)?;
        if !resp.ok() {
            return Err(error_of(resp).await);
        }
        let session = Session::from_login(resp.json::<LoginResponse>().await.map_err(network)?);
        self.store(Some(session.clone()));
        Ok(session)
    }

    /// Ends the session here and on the server (best effort: we are leaving either way).
    pub async fn logout(&self) {
        if let Some(s) = self.session() {
            let body = RefreshRequest { refresh_token: s.refresh_token };
            if let Ok(req) =
                Request::post("/api/auth/logout").header("Authorization", &bearer(&s.token)).json(&body)
            {
                let _ = req.send().await;
            }
        }
        self.end();
    }

    fn end(&self) {
        self.store(None);
        let cb = self.inner.on_logout.borrow().clone();
        if let Some(cb) = cb {
            cb();
        }
    }

    /// Exchanges the refresh token for new tokens. `seen` is the access token the caller had: when
    /// another refresh replaced it meanwhile, there is nothing to do.
    pub async fn refresh(&self, seen: Option<&str>) -> Result<(), ApiError> {
        let _guard = self.inner.refresh_lock.lock().await;
        let Some(s) = self.session() else {
            return Err(ApiError { status: 401, message: "not logged in".into() });
        };
        if seen.is_some_and(|t| t != s.token) {
            return Ok(());
        }
        let body = RefreshRequest { refresh_token: s.refresh_token };
        let resp =
            Request::post("/api/auth/refresh").json(&body).map_err(network)?.send().await.map_err(network)?;
        if resp.status() == 401 || resp.status() == 403 {
            let e = error_of(resp).await;
            self.end();
            return Err(e);
        }
        if !resp.ok() {
            return Err(error_of(resp).await);
        }
        let session = Session::from_login(resp.json::<LoginResponse>().await.map_err(network)?);
        self.store(Some(session));
        Ok(())
    }

    /// Milliseconds until the token should be refreshed (at 80 % of its life).
    pub fn refresh_due_in(&self) -> Option<f64> {
        let s = self.session()?;
        let left = s.expires_at - js_sys::Date::now();
        Some((left * 0.8).max(1_000.0))
    }

    async fn send(&self, make: impl Fn(&str) -> Result<Request, ApiError>) -> Result<Response, ApiError> {
        for attempt in 0..2 {
            let token = self.token().ok_or(ApiError { status: 401, message: "not logged in".into() })?;
            let resp = make(&token)?.send().await.map_err(network)?;
            if resp.status() == 401 && attempt == 0 {
                self.refresh(Some(&token)).await?;
                continue;
            }
            if !resp.ok() {
                return Err(error_of(resp).await);
            }
            return Ok(resp);
        }
        Err(ApiError { status: 401, message: "session expired".into() })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let resp = self.send(|t| build(Request::get(path), t).build().map_err(network)).await?;
        resp.json::<T>().await.map_err(network)
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ApiError> {
        let resp = self.send(|t| build(Request::post(path), t).json(body).map_err(network)).await?;
        resp.json::<T>().await.map_err(network)
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn build(req: RequestBuilder, token: &str) -> RequestBuilder {
    req.header("Authorization", &bearer(token))
}
