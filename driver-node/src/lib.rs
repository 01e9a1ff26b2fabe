//! `pitbox-driver`, the PitBox driver node, as a library: the parts the binary is made of, so that
//! tests and fuzz targets can drive them directly.
//!
//! - [`ibt`]: our own reader of iRacing telemetry, for `.ibt` recordings and the live shared-memory
//!   layout, with the session-info YAML, lap timing and conversion to [`pitbox_schema::wire`] samples.
//! - [`cli`]: the command line (`pitbox-driver inspect …`), and [`inspect`] behind it.
//! - `platform`: the only place with operating-system specific code.
//! - [`source`]: telemetry sources behind one trait (`.ibt` replay, [`synthetic`] driver, the live sim).
//! - [`spool`], [`recorder`], [`uplink`]: the durable path to the runtime; [`credentials`]: the login;
//!   [`tls`]: https/wss, trusted roots and the certificate check.
//! - [`node`]: `run`/`replay` put together, with [`status`] and the [`local_api`].
//! - [`devices`]: screens, microphones, speakers.
//!
//! Reads no env vars itself; the binary reads `RUST_LOG` (see `main.rs`).

pub mod cli;
pub mod credentials;
pub mod devices;
pub mod doctor;
pub mod ibt;
pub mod inspect;
pub mod live;
pub mod local_api;
pub mod node;
mod platform;
pub mod recorder;
pub mod source;
pub mod spool;
pub mod status;
pub mod synthetic;
pub mod tls;
pub mod uplink;
pub mod video;
pub mod voice;
