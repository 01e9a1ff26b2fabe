//! A dashboard that stops reading costs nothing: its own process (so that the memory figure is
//! this server's alone), on SQLite and then PostgreSQL. The stalled connection is never read while
//! a node streams far faster than real time and team messages are pushed; the other dashboard
//! keeps up, ingest is not slowed, and the process does not grow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

async fn stalled_dashboard(srv: TestServer) {
    let (team, driver, node_token, watcher) = setup_team(&srv).await;
    // The stalled dashboard subscribes, then never reads again.
    let mut stalled = WsClient::login(&srv, &watcher, "dashboard").await;
    stalled.send(json!({"type": "subscribe", "data": {"teamId": team, "driverId": driver}})).await;
    stalled.recv_type("subscribed").await.unwrap();
    let mut healthy = WsClient::login(&srv, &watcher, "dashboard").await;
    healthy.send(json!({"type": "subscribe", "data": {"teamId": team, "driverId": driver}})).await;
    healthy.recv_type("subscribed").await.unwrap();
    let healthy_task = actix_rt::spawn(collect(healthy, Instant::now() + Duration::from_millis(3000)));

    let mut node = WsClient::login(&srv, &node_token, "driver_node").await;
    let rss_before = rss_kib();
    let t0 = Instant::now();
    // Far faster than real time: 6000 frames, with team messages pushed too.
    for chunk in 0..20u64 {
        stream(&mut node, &driver, chunk * 300, 300, 90.0, 100, false).await;
        srv.post(
            &format!("/api/teams/{team}/messages"),
            &watcher,
            json!({"content": format!("msg {chunk}")}),
        )
        .await;
    }
    await_ack(&mut node, 5999).await;
    let ingest = t0.elapsed();
    let (samples, events) = healthy_task.await.unwrap();
    let grew = rss_kib().saturating_sub(rss_before);
    assert!(samples.len() >= 10, "healthy dashboard got {} samples", samples.len());
    let last = samples.last().unwrap().1["data"]["seq"].as_u64().unwrap();
    assert_eq!(last, 5999, "the healthy dashboard saw the newest sample");
    assert!(events.iter().filter(|e| e["type"] == "team_message").count() == 20);
    assert!(ingest < Duration::from_secs(20), "ingest slowed to {ingest:?}");
    assert!(grew < 64 * 1024, "server grew by {grew} KiB");
    drop(stalled);
    srv.stop().await;
}

#[actix_rt::test]
async fn a_stalled_dashboard_costs_nothing() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if let Some(srv) = TestServer::start(backend, |_| {}).await {
            stalled_dashboard(srv).await;
        }
    }
}
