//! PitBox's team dashboard: a Yew (CSR) app compiled to WASM. `model` holds the logic (state,
//! reducer, lap maths, chart and track geometry, actor tree) and is tested natively; `net` talks to
//! the runtime (REST with token refresh, WebSockets with reconnect); `ui` draws it. Reads no env vars.

pub mod model;
pub mod net;
pub mod ui;
