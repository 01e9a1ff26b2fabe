//! End to end in headless Chromium: the built dashboard (`tools/build-dashboard.sh`) served by a
//! real runtime (SQLite), two real driver nodes streaming (`pitbox-driver run`: the synthetic
//! driver and a replayed `.ibt` at 4×), and `dashboard-yew/e2e/e2e.cjs` (puppeteer-core) driving two
//! browser sessions: log in, see the drivers appear and their speed change, open the driver view,
//! send a team message and see it arrive in the second session, request/accept/complete a handoff,
//! see the replayed laps with a live delta and their comparison chart, the coach's feed and the
//! strategy panel with real content,
//! open the engineer view and see the actor tree, lose the connection and get it back, refresh the
//! short-lived token, log out. Screenshots go to `target/e2e/`.
//!
//! Needs the built dashboard, node, Chromium and puppeteer-core (all installed by `tools/test.sh`
//! via `tools/wasm-toolchain.sh`) and the `pitbox-driver` binary (built by `cargo test --workspace`).
//! Env: `PITBOX_SKIP_BROWSER=1` skips it, `WASM_TC_PREFIX` (where puppeteer-core lives),
//! `CARGO_TARGET_DIR`.

mod common;
#[path = "support/browser.rs"]
mod support;

use common::{Backend, TestServer};
use pitbox_schema::wire::Role;
use support::{chromium, dashboard_or_skip, node, root, run_script, target_dir};

#[actix_rt::test]
async fn dashboard_end_to_end_in_chromium() {
    let Some(dist) = dashboard_or_skip() else { return };
    // Short-lived access tokens, so the dashboard must refresh during the run.
    let srv = TestServer::start(Backend::Sqlite, |c| {
        c.dashboard_dir = dist.clone();
        c.access_token_ttl = std::time::Duration::from_secs(10);
    })
    .await
    .unwrap();
    let team = srv.create_team("E2E Racing");
    srv.create_user("engineer", Role::Engineer, &[&team]);
    let (_, synth) = srv.create_driver("synth", &team, 7);
    let (_, replay) = srv.create_driver("replay", &team, 11);
    // Two full laps in 57 s; replayed at 4x so both are complete (and compared) within the run.
    let ibt = root().join("../shared/fixtures/ibt/tsukuba_formulavee_3laps.ibt");
    assert!(ibt.is_file(), "fixture missing: {}", ibt.display());
    let _nodes = [
        // The synthetic driver's node also sends onboard video (its test pattern: no X needed).
        node(&srv.base, "synth", "synthetic", &["--video-source", "pattern", "--video", "640x360@15"]).await,
        node(&srv.base, "replay", &format!("ibt:{}", ibt.display()), &["--speed", "4", "--loop"]).await,
    ];

    let shots = target_dir().join("e2e");
    // Screenshots of an earlier run must not pass for this one's.
    for old in std::fs::read_dir(&shots).into_iter().flatten().flatten() {
        if old.path().extension().is_some_and(|e| e == "png")
            && !old.file_name().to_string_lossy().starts_with("bench")
        {
            std::fs::remove_file(old.path()).unwrap();
        }
    }
    let config = serde_json::json!({
        "url": format!("{}/", srv.base),
        "engineer": {"username": "engineer", "password": "engineer-password"},
        "driver": {"username": "synth", "password": "synth-password", "driverId": synth},
        "drivers": [synth, replay],
        "shots": shots,
        "chromium": chromium(),
    });
    let (ok, result) = run_script("e2e.cjs", config).await;
    println!("browser figures: {}", serde_json::to_string_pretty(&result["figures"]).unwrap());
    assert!(
        ok && result["figures"]["ok"] == true,
        "browser e2e failed at {:?}: {}\n{}\nscreenshots: {}",
        result["failedStep"],
        result["error"],
        serde_json::to_string_pretty(&result["logs"]).unwrap(),
        shots.display()
    );
    let expected = [
        "1-overview.png",
        "2-driver.png",
        "2b-video.png",
        "3-message-received.png",
        "4-handoff.png",
        "5-laps.png",
        "5b-coach.png",
        "6-engineer.png",
    ];
    for shot in expected {
        assert!(shots.join(shot).is_file(), "{shot} not saved");
    }
    srv.stop().await;
}
