//! Dashboard benchmark in headless Chromium: the real runtime in this process (SQLite), N real
//! driver nodes (`pitbox-driver run --source synthetic`, seeds 1..N) streaming at 60 Hz, and
//! `dashboard-yew/e2e/bench.cjs` measuring the browser: page load → first live sample, then
//! main-thread CPU, script time, renders and frame times on the pit wall (every driver at 20 Hz)
//! and in the driver view (one driver at 60 Hz, the rest at 20 Hz).
//!
//! `bash tools/build-dashboard.sh && cargo build -p pitbox-driver &&
//!  cargo bench -p pitbox-runtime --bench dashboard -- --drivers 11 --secs 15`
//! Env: see `tests/support/browser.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/support/browser.rs"]
mod support;

use std::net::TcpListener;

use clap::Parser;
use pitbox_runtime::config::Config;
use pitbox_runtime::server::{self, State};
use pitbox_schema::wire::{DriverRole, NewDriver, NewUser, Role};

#[derive(Debug, Parser)]
struct Args {
    /// Driver nodes streaming (the figure: 10 at 20 Hz + 1 at 60 Hz = 11).
    #[arg(long, default_value_t = 11)]
    drivers: usize,
    /// Measured seconds per view.
    #[arg(long, default_value_t = 15)]
    secs: u64,
    /// Ignored (cargo bench passes it).
    #[arg(long)]
    bench: bool,
}

fn user(state: &State, username: &str, role: Role, team: &str) -> String {
    let new = NewUser {
        username: username.into(),
        password: format!("{username}-password"),
        role,
        teams: vec![team.to_owned()],
    };
    state.db.run_blocking(|c| pitbox_runtime::routes::users::create_user(c, &new)).unwrap().id
}

fn main() {
    let args = Args::parse();
    let Some(dist) = support::dashboard_or_skip() else { return };
    let size: serde_json::Value = std::fs::read_to_string(dist.join("size.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    actix_rt::System::new().block_on(async move {
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let mut config = Config::for_database(url).unwrap();
        config.dashboard_dir = dist;
        config.rate_limit_per_ip = 100_000;
        config.rate_limit_per_user = 100_000;
        let state = State::new(config).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        actix_rt::spawn(server::start(state.clone(), listener).unwrap());

        let team = state
            .db
            .run_blocking(|c| Ok(pitbox_schema::db::store::teams::create_team(c, "Bench Racing")??))
            .unwrap()
            .id;
        user(&state, "engineer", Role::Engineer, &team);
        let mut drivers = Vec::new();
        let mut nodes = Vec::new();
        for i in 1..=args.drivers {
            let name = format!("driver{i}");
            let uid = user(&state, &name, Role::Driver, &team);
            let nd = NewDriver {
                name: name.clone(),
                number: i as i32,
                role: DriverRole::Primary,
                avatar_url: None,
                user_id: Some(uid),
            };
            let d = state
                .db
                .run_blocking(|c| Ok(pitbox_schema::db::store::drivers::create_driver(c, &team, &nd)??))
                .unwrap();
            drivers.push(d.id);
            nodes.push(support::node(&base, &name, "synthetic", &["--seed", &i.to_string()]).await);
        }
        let shot = support::target_dir().join("e2e").join("bench-driver-view.png");
        std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
        let config = serde_json::json!({
            "url": format!("{base}/"),
            "engineer": {"username": "engineer", "password": "engineer-password"},
            "drivers": args.drivers,
            "focus": drivers[0],
            "secs": args.secs,
            "chromium": support::chromium(),
            "shot": shot,
            "wasmGzipBytes": size.get("wasmGzipBytes"),
        });
        let (ok, result) = support::run_script("bench.cjs", config).await;
        println!("dashboard bench ({} drivers, {} s per view):", args.drivers, args.secs);
        println!("{}", serde_json::to_string_pretty(&result).unwrap());
        assert!(ok, "the browser run failed");
        drop(nodes);
    });
}
