//! Talking to the runtime from the browser: `api` (REST, login, token refresh, the session kept in
//! localStorage) and `socket` (the team WebSocket with handshake, subscriptions and reconnect, and
//! the engineers' actor-tree stream). Reads no env vars; the server is the page's own origin.

pub mod api;
pub mod media;
pub mod socket;

/// Local monotonic clock in ms (`performance.now()`), 0 outside a browser.
pub fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
}

/// `http(s)://host` of the page.
pub fn origin() -> String {
    web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default()
}

/// `ws(s)://host` + `path`.
pub fn ws_url(path: &str) -> String {
    let origin = origin();
    let ws = if let Some(rest) = origin.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = origin.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        origin
    };
    format!("{ws}{path}")
}
