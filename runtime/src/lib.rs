//! The PitBox cloud runtime as a library: [`server::start`] serves the REST API and the dashboard
//! ([`dashboard`]) on a listener the caller binds (tests bind `127.0.0.1:0`), with storage, auth,
//! rate limits and metrics wired from a [`config::Config`]. The `pitbox-runtime` binary is a thin
//! CLI over it.

pub mod admin;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod coaching;
pub mod config;
pub mod dashboard;
pub mod db;
pub mod demo;
pub mod error;
pub mod input;
pub mod llm;
pub mod metrics;
pub mod openapi;
pub mod proxy;
pub mod ratelimit;
pub mod routes;
pub mod secret;
pub mod server;
pub mod tls;
pub mod voice;
pub mod ws;
