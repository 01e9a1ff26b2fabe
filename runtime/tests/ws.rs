//! The actor runtime over real WebSockets: a simulated driver node streams 60 Hz telemetry to its
//! DriverSession, dashboards receive it at their subscribed rates and in order, laps complete and are
//! stored; supervision restarts a panicking session with its state and gives up past the restart
//! intensity; a stalled dashboard neither grows memory nor delays others; the socket enforces auth,
//! roles and frame limits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use common::*;
use pitbox_schema::wire::Role;
use serde_json::{json, Value};

on_both_backends!(node_streams_dashboards_follow_laps_are_stored, |srv| {
    let (team, driver, node_token, watcher) = setup_team(&srv).await;
    let mut team_view = WsClient::login(&srv, &watcher, "dashboard").await;
    team_view.send(json!({"type": "subscribe", "id": "s1", "data": {"teamId": team}})).await;
    let sub = team_view.recv_type("subscribed").await.unwrap();
    assert_eq!(sub["data"]["rateHz"], 20);
    let mut focus = WsClient::login(&srv, &watcher, "dashboard").await;
    focus.send(json!({"type": "subscribe", "data": {"teamId": team, "driverId": driver}})).await;
    assert_eq!(focus.recv_type("subscribed").await.unwrap()["data"]["rateHz"], 60);

    let mut node = WsClient::login(&srv, &node_token, "driver_node").await;
    // The driver joins after the dashboards subscribed: they are told and follow it.
    let until = Instant::now() + Duration::from_millis(4200);
    let team_task = actix_rt::spawn(collect(team_view, until));
    let focus_task = actix_rt::spawn(collect(focus, until));
    let started = Instant::now();
    // 3.5 s at 60 Hz, laps of 1.5 s: two laps complete.
    stream(&mut node, &driver, 0, 210, 1.5, 6, true).await;
    let streamed = started.elapsed().as_secs_f64();
    let errors = await_ack(&mut node, 209).await;
    assert!(errors.is_empty(), "{errors:?}");
    let (team_samples, team_events) = team_task.await.unwrap();
    let (focus_samples, _) = focus_task.await.unwrap();

    // In order, at (about) the subscribed rates, never more often than sent.
    for samples in [&team_samples, &focus_samples] {
        let times: Vec<f64> =
            samples.iter().map(|(_, m)| m["data"]["sessionTime"].as_f64().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "out of order: {times:?}");
        assert!(samples.iter().all(|(_, m)| m["data"]["driverId"] == driver.as_str()));
        assert!(samples.iter().all(|(_, m)| m["from"].as_str().unwrap().ends_with(&driver)));
    }
    let team_rate = team_samples.len() as f64 / streamed;
    let focus_rate = focus_samples.len() as f64 / streamed;
    assert!(
        (8.0..=24.0).contains(&team_rate),
        "team view rate {team_rate:.1}/s ({} samples)",
        team_samples.len()
    );
    assert!(focus_rate > team_rate * 1.8 && focus_rate <= 62.0, "focused rate {focus_rate:.1}/s");

    // Lap completions were pushed, and the laps are stored whole.
    let laps: Vec<&Value> = team_events.iter().filter(|e| e["type"] == "lap_completed").collect();
    assert_eq!(laps.len(), 2, "lap pushes: {team_events:?}");
    assert!((laps[0]["data"]["lapTime"].as_f64().unwrap() - 1.5).abs() < 0.02);
    assert!(team_events
        .iter()
        .any(|e| e["type"] == "driver_status" && e["data"]["telemetryConnected"] == true));
    let stored = srv.get(&format!("/api/teams/{team}/laps?driverId={driver}"), &watcher).await;
    assert_eq!(stored.body.as_array().unwrap().len(), 2);

    // Exactly once: a resend of everything is acknowledged but stores nothing new.
    stream(&mut node, &driver, 0, 210, 1.5, 30, false).await;
    await_ack(&mut node, 209).await;
    let count = srv
        .state
        .db
        .run_blocking(|c| Ok(pitbox_schema::db::store::telemetry::count_samples(c, &driver)?))
        .unwrap();
    assert_eq!(count, 210);
    let live = srv.get(&format!("/api/drivers/{driver}/live"), &watcher).await;
    assert_eq!(live.body["lapsCompleted"], 2);
    assert_eq!(live.body["nodes"], 1);
    srv.stop().await;
});

async fn tree(srv: &TestServer, token: &str) -> Value {
    let r = srv.get("/admin/actors", token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

fn find<'a>(nodes: &'a Value, path: &str) -> Option<&'a Value> {
    nodes
        .as_array()?
        .iter()
        .find_map(|n| if n["path"] == path { Some(n) } else { find(&n["children"], path) })
}

/// Polls the actor tree until `pred` holds for `path` (bounded: 10 s).
async fn wait_for(srv: &TestServer, token: &str, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = tree(srv, token).await;
        if let Some(n) = find(&t["root"], path) {
            if pred(n) {
                return n.clone();
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting on {path}: {t}");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

on_both_backends!(
    panics_restart_with_state_and_escalate_past_the_intensity,
    |c| {
        c.fault_injection = true;
        c.restart_intensity = 2;
        c.restart_period = Duration::from_secs(60);
    },
    |srv| {
        let (team, driver_a, node_a_token, watcher) = setup_team(&srv).await;
        let (_, driver_b) = srv.create_driver("node2", &team, 12);
        let node_b_token = srv.login("node2").await;
        srv.create_user("root", Role::Admin, &[]);
        let root = srv.login("root").await;
        let path_a = format!("/teams/{team}/drivers/{driver_a}");

        // Driver A completes two laps (as fast as the socket goes).
        let mut node_a = WsClient::login(&srv, &node_a_token, "driver_node").await;
        stream(&mut node_a, &driver_a, 0, 200, 1.5, 50, false).await;
        await_ack(&mut node_a, 199).await;
        let before = srv.get(&format!("/api/drivers/{driver_a}/live"), &watcher).await.body;
        assert_eq!(before["lapsCompleted"], 2);

        // Driver B streams in real time while A is made to fail; a dashboard follows B.
        let mut dash = WsClient::login(&srv, &watcher, "dashboard").await;
        let mut node_b = WsClient::login(&srv, &node_b_token, "driver_node").await;
        dash.send(json!({"type": "subscribe", "data": {"teamId": team, "driverId": driver_b}})).await;
        dash.recv_type("subscribed").await.unwrap();
        let b_task = actix_rt::spawn(async move {
            stream(&mut node_b, &driver_b, 0, 180, 90.0, 6, true).await;
            node_b
        });
        let dash_task = actix_rt::spawn(collect(dash, Instant::now() + Duration::from_millis(3000)));

        actix_rt::time::sleep(Duration::from_millis(500)).await;
        let r = srv.post("/admin/actors/fault", &root, json!({"path": path_a})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let a =
            wait_for(&srv, &root, &path_a, |n| n["supervision"]["restarts"] == 1 && n["status"] == "running")
                .await;
        assert!(a["supervision"]["lastReason"].as_str().unwrap().contains("fault injected"));
        // The restart history (the engineer view's detail pane) holds it with its time.
        let history = a["supervision"]["history"].as_array().unwrap();
        assert_eq!(history.len(), 1, "{history:?}");
        assert_eq!(history[0]["kind"], "restart");
        assert!(history[0]["reason"].as_str().unwrap().contains("fault injected"));
        assert!(history[0]["at"].as_str().is_some());
        assert_eq!(a["counters"]["failed"], 1);

        // State restored from the checkpoint; the node's next frames reach the new session.
        let after = srv.get(&format!("/api/drivers/{driver_a}/live"), &watcher).await.body;
        assert_eq!(after["lapsCompleted"], 2, "{after}");
        assert_eq!(after["bestLap"], before["bestLap"]);
        resend_until_acked(&mut node_a, &driver_a, 200, 10).await;

        // B never paused: its samples kept arriving while A restarted.
        let mut node_b = b_task.await.unwrap();
        await_ack(&mut node_b, 179).await;
        let (b_samples, _) = dash_task.await.unwrap();
        assert!(b_samples.len() > 100, "B samples: {}", b_samples.len());
        let worst = b_samples.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap();
        assert!(worst < Duration::from_millis(300), "B paused for {worst:?}");

        // Past the intensity (2 restarts in 60 s) the supervisor stops A and escalates.
        srv.post("/admin/actors/fault", &root, json!({"path": path_a})).await;
        wait_for(&srv, &root, &path_a, |n| n["supervision"]["restarts"] == 2 && n["status"] == "running")
            .await;
        srv.post("/admin/actors/fault", &root, json!({"path": path_a})).await;
        wait_for(&srv, &root, &path_a, |n| n["status"] == "stopped").await;
        let team_node =
            wait_for(&srv, &root, &format!("/teams/{team}"), |n| n["supervision"]["escalations"] == 1).await;
        assert!(team_node["supervision"]["lastEscalation"].as_str().unwrap().contains(&driver_a));
        let events = team_node["supervision"]["history"].as_array().unwrap();
        assert!(
            events
                .iter()
                .any(|e| e["kind"] == "escalation" && e["reason"].as_str().unwrap().contains(&driver_a)),
            "{events:?}"
        );
        let gone = srv.get(&format!("/api/drivers/{driver_a}/live"), &watcher).await;
        assert_eq!(gone.status, StatusCode::SERVICE_UNAVAILABLE);
        // Everything else still serves.
        assert_eq!(srv.get(&format!("/api/teams/{team}/laps"), &watcher).await.status, StatusCode::OK);
        srv.stop().await;
    }
);

on_both_backends!(socket_auth_and_roles, |srv| {
    let (team, driver, node_token, watcher) = setup_team(&srv).await;
    let other = srv.create_team("Other");
    let (_, other_driver) = srv.create_driver("othernode", &other, 5);

    // Nothing but authenticate before authenticating.
    let mut c = WsClient::connect(&srv).await;
    c.send(json!({"type": "subscribe", "data": {"teamId": team}})).await;
    assert_eq!(c.close_code().await, Some(1008));

    // Bad and forged tokens.
    let mut c = WsClient::connect(&srv).await;
    let r = c.authenticate("not-a-token", "dashboard").await;
    assert_eq!(r["data"]["success"], false);
    assert_eq!(r["data"]["error"]["code"], "token_invalid");
    assert_eq!(c.close_code().await, Some(1008));

    // A dashboard user cannot connect as a driver node.
    let mut c = WsClient::connect(&srv).await;
    let r = c.authenticate(&watcher, "driver_node").await;
    assert_eq!(r["data"]["success"], false);

    // A driver sending as another driver, or addressing another driver's actor.
    let mut node = WsClient::login(&srv, &node_token, "driver_node").await;
    let f = vec![frame_at(1, 0.1, 90.0)];
    node.send(
        json!({"type": "telemetry_batch", "id": "x1", "data": {"driverId": other_driver, "frames": f}}),
    )
    .await;
    let e = node.recv_type("error").await.unwrap();
    assert_eq!(e["data"]["code"], "forbidden");
    assert_eq!(e["id"], "x1");
    node.send(json!({"type": "telemetry_batch", "to": format!("/teams/{other}/drivers/{other_driver}"),
        "data": {"driverId": driver, "frames": f}}))
        .await;
    assert_eq!(node.recv_type("error").await.unwrap()["data"]["code"], "forbidden");

    // A team member subscribing to another team.
    let mut dash = WsClient::login(&srv, &watcher, "dashboard").await;
    dash.send(json!({"type": "subscribe", "data": {"teamId": other}})).await;
    assert_eq!(dash.recv_type("error").await.unwrap()["data"]["code"], "forbidden");

    // Team messages and handoffs over the socket reach the same actors as REST.
    dash.send(json!({"type": "subscribe", "data": {"teamId": team}})).await;
    dash.recv_type("subscribed").await.unwrap();
    dash.send(json!({"type": "send_team_message", "id": "m1", "data": {"teamId": team, "content": "Box, box", "priority": "high"}})).await;
    let pushed = dash.recv_type("team_message").await.unwrap();
    assert_eq!(pushed["data"]["content"], "Box, box");
    let rest = srv.get(&format!("/api/teams/{team}/messages"), &watcher).await;
    assert_eq!(rest.body[0]["content"], "Box, box");
    srv.post(&format!("/api/teams/{team}/messages"), &watcher, json!({"content": "via REST"})).await;
    // The sender gets its answer (id "m1") and the team push; then the REST one arrives.
    let mut seen = vec![pushed];
    while seen.last().unwrap()["data"]["content"] != "via REST" {
        seen.push(dash.recv_type("team_message").await.expect("REST message pushed"));
    }
    assert_eq!(seen.iter().filter(|m| m["data"]["content"] == "Box, box").count(), 2);
    assert!(seen.iter().any(|m| m["id"] == "m1"));

    // The admin tree is for engineers and admins only.
    assert_eq!(srv.get("/admin/actors", &watcher).await.status, StatusCode::FORBIDDEN);
    assert_eq!(srv.get("/admin/actors", &node_token).await.status, StatusCode::FORBIDDEN);
    assert_eq!(srv.send("GET", "/admin/actors", None, None).await.status, StatusCode::UNAUTHORIZED);
    let res =
        srv.client.ws(format!("{}/admin/actors/stream?access_token={watcher}", srv.base)).connect().await;
    assert!(res.is_err(), "non-engineers cannot open the actor stream");
    srv.create_user("eng", Role::Engineer, &[&team]);
    let eng = srv.login("eng").await;
    let t = tree(&srv, &eng).await;
    assert!(find(&t["root"], &format!("/teams/{team}")).is_some());
    assert!(find(&t["root"], &format!("/teams/{other}")).is_none(), "engineers see only their teams");
    let (_, mut stream) = srv
        .client
        .ws(format!("{}/admin/actors/stream?access_token={eng}", srv.base))
        .max_frame_size(16 * 1024 * 1024)
        .connect()
        .await
        .unwrap();
    use futures_util::StreamExt;
    let mut seqs = vec![];
    while seqs.len() < 2 {
        if let Some(Ok(awc::ws::Frame::Text(t))) = stream.next().await {
            let v: Value = serde_json::from_slice(&t).unwrap();
            assert_eq!(v["type"], "actor_tree");
            seqs.push(v["data"]["seq"].as_u64().unwrap());
        }
    }
    assert!(seqs[1] > seqs[0]);
    let fault = srv.post("/admin/actors/fault", &eng, json!({"path": "/runtime"})).await;
    assert_eq!(fault.status, StatusCode::FORBIDDEN, "fault injection is off by default");
    srv.stop().await;
});

on_both_backends!(
    bad_frames_get_typed_errors_and_limits_close,
    |c| {
        c.ws_max_frame_bytes = 8192;
        c.ws_auth_timeout = Duration::from_secs(1);
    },
    |srv| {
        let (_, driver, node_token, _) = setup_team(&srv).await;
        let mut node = WsClient::login(&srv, &node_token, "driver_node").await;
        node.send_text("{not json".into()).await;
        assert_eq!(node.recv_type("error").await.unwrap()["data"]["code"], "invalid_json");
        node.send(json!({"type": "warp_drive", "id": "w", "data": {}})).await;
        let e = node.recv_type("error").await.unwrap();
        assert_eq!(e["data"]["code"], "unknown_message_type");
        assert_eq!(e["id"], "w");
        node.send(json!({"type": "telemetry_batch", "data": {"driverId": driver}})).await;
        assert_eq!(node.recv_type("error").await.unwrap()["data"]["code"], "invalid_field");
        let mut bad = frame_at(1, 0.1, 90.0);
        bad["throttle"] = json!(400.0);
        node.send(json!({"type": "telemetry_batch", "data": {"driverId": driver, "streamId": "s", "frames": [bad]}})).await;
        let e = node.recv_type("error").await.unwrap();
        assert_eq!(e["data"]["code"], "invalid_field");
        assert!(e["data"]["message"].as_str().unwrap().contains("throttle"));
        // Still serving this connection after all that.
        node.send(json!({"type": "telemetry_batch", "data": {"driverId": driver, "streamId": "s", "frames": [frame_at(1, 0.1, 90.0)]}})).await;
        assert_eq!(node.recv_type("ack").await.unwrap()["data"]["seq"], 1);
        // A frame over the limit closes with 1009.
        node.send_text(format!("{{\"type\":\"ack\",\"data\":\"{}\"}}", "x".repeat(20_000))).await;
        assert_eq!(node.close_code().await, Some(1009));
        // A connection that never authenticates is closed (policy).
        let mut idle = WsClient::connect(&srv).await;
        assert_eq!(idle.close_code().await, Some(1008));
        srv.stop().await;
    }
);

on_both_backends!(
    idle_driver_sessions_stop,
    |c| {
        c.idle_timeout = Duration::from_secs(1);
    },
    |srv| {
        let (team, driver, node_token, _) = setup_team(&srv).await;
        srv.create_user("root", Role::Admin, &[]);
        let root = srv.login("root").await;
        let path = format!("/teams/{team}/drivers/{driver}");
        let r = srv
            .post(
                "/api/telemetry",
                &node_token,
                json!({"driverId": driver, "timestamp": timestamp_at(0.0), "data": sample_at(0.0, 60.0)}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        wait_for(&srv, &root, &path, |n| n["status"] == "running").await;
        // No node and no data for the idle time: the session and its children are stopped and gone.
        let deadline = Instant::now() + Duration::from_secs(10);
        while find(&tree(&srv, &root).await["root"], &path).is_some() {
            assert!(Instant::now() < deadline, "idle session was not stopped");
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(find(&tree(&srv, &root).await["root"], &format!("{path}/coach")).is_none());
        // It comes back lazily with the next sample.
        let r = srv
            .post(
                "/api/telemetry",
                &node_token,
                json!({"driverId": driver, "timestamp": timestamp_at(1.0), "data": sample_at(1.0, 60.0)}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        wait_for(&srv, &root, &path, |n| n["status"] == "running").await;
        srv.stop().await;
    }
);

on_both_backends!(seed_shaped_clients_are_understood, |srv| {
    let (team, driver, node_token, watcher) = setup_team(&srv).await;
    let watcher_id = srv.get("/api/auth/me", &watcher).await.body["id"].as_str().unwrap().to_owned();

    // A dashboard as the seed wrote it: a client type we do not know, no version, and no subscribe.
    let mut dash = WsClient::connect(&srv).await;
    dash.send(json!({"type": "authenticate", "data": {"token": watcher, "clientType": "pitwall"}})).await;
    let r = dash.recv_type("authentication_result").await.unwrap();
    assert_eq!(r["data"]["success"], true, "{r}");
    // The original driver app's client type, no version.
    let mut node = WsClient::connect(&srv).await;
    node.send(json!({"type": "authenticate", "data": {"token": node_token, "clientType": "driver"}})).await;
    let r = node.recv_type("authentication_result").await.unwrap();
    assert_eq!(r["data"]["success"], true, "{r}");

    // Seed telemetry: integers written as whole floats, a timestamp without an offset (UTC).
    let mut sample = sample_at(0.5, 90.0);
    for (field, v) in [("gear", 4.0), ("lap", 1.0), ("sector", 1.0), ("position", 3.0), ("flags", 4.0)] {
        sample[field] = json!(v);
    }
    let mut update = sample.clone();
    update["driverId"] = json!(driver);
    update["timestamp"] = json!("2026-11-21T12:00:00.500");
    update["seq"] = json!(7);
    node.send(json!({"type": "telemetry_update", "data": update})).await;
    let ack = node.recv_type("ack").await.expect("the seed-shaped sample is stored");
    assert_eq!(ack["data"]["seq"], 7);
    let r = srv
        .post(
            "/api/telemetry",
            &node_token,
            json!({"driverId": driver, "timestamp": "2026-11-21T12:00:01", "data": sample}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The dashboard follows its team without having subscribed: samples and team events.
    let pushed = dash.recv_type("telemetry_update").await.expect("samples without a subscribe");
    assert_eq!(pushed["data"]["gear"], 4);
    assert_eq!(pushed["data"]["timestamp"].as_str().unwrap().get(..19), Some("2026-11-21T12:00:00"));
    srv.post(&format!("/api/teams/{team}/messages"), &watcher, json!({"content": "via REST"})).await;
    assert_eq!(dash.recv_type("team_message").await.unwrap()["data"]["content"], "via REST");

    // A team message and a handoff request in the seed's shape (no team; ids, sender and times
    // are the client's own and are not trusted).
    dash.send(
        json!({"type": "team_message", "id": "t1", "data": {"id": "local-1", "content": "Box this lap",
        "senderId": "someone-else", "senderName": "Spoof", "priority": "urgent",
        "sentAt": "2026-11-21T12:00:00", "read": false, "attachment": null}}),
    )
    .await;
    let m = dash.recv_type("team_message").await.unwrap();
    assert_eq!(m["data"]["content"], "Box this lap", "{m}");
    assert_eq!(m["data"]["senderId"], watcher_id.as_str());
    assert_eq!(m["data"]["priority"], "urgent");
    dash.send(json!({"type": "handoff_request", "id": "h1", "data": {"id": "local-2", "requesterId": "x",
        "requesterName": "x", "targetDriverId": driver, "targetDriverName": "node1", "reason": "stint done",
        "urgency": "urgent", "requestedAt": "2026-11-21T12:00:00", "status": "accepted",
        "telemetrySnapshot": null}}))
        .await;
    let h = dash.recv_type("handoff_request").await.unwrap();
    assert_eq!(h["data"]["targetDriverId"], driver.as_str(), "{h}");
    assert_eq!(h["data"]["status"], "pending");
    assert_eq!(h["data"]["requesterId"], watcher_id.as_str());
    let stored = srv.get(&format!("/api/teams/{team}/handoffs"), &watcher).await;
    assert_eq!(stored.body.as_array().unwrap().len(), 1);

    // Its first subscribe replaces the default: one driver's stream only, answered.
    dash.send(json!({"type": "subscribe", "id": "s", "data": {"teamId": team, "driverId": driver}})).await;
    assert_eq!(dash.recv_type("subscribed").await.unwrap()["id"], "s");
    srv.stop().await;
});

on_both_backends!(seed_authenticate_failures_are_answered_before_the_close, |srv| {
    let (_, _, _, watcher) = setup_team(&srv).await;
    for data in [
        json!({"clientType": "driver", "version": "1.0"}),
        json!({"token": 42, "clientType": "dashboard"}),
        json!({"token": watcher, "clientType": 7}),
        json!(null),
    ] {
        let mut c = WsClient::connect(&srv).await;
        c.send(json!({"type": "authenticate", "id": "a", "data": data})).await;
        let r = c.recv_type("authentication_result").await.unwrap_or_else(|| panic!("no answer to {data}"));
        assert_eq!(r["data"]["success"], false, "{data}: {r}");
        assert_eq!(r["data"]["error"]["code"], "invalid_field", "{data}: {r}");
        assert_eq!(r["id"], "a");
        assert_eq!(c.close_code().await, Some(1008));
    }
    // A seed driver app logging in with a user that has no driver profile.
    let mut c = WsClient::connect(&srv).await;
    c.send(json!({"type": "authenticate", "data": {"token": watcher, "clientType": "driver"}})).await;
    let r = c.recv_type("authentication_result").await.unwrap();
    assert_eq!(
        (r["data"]["success"].clone(), r["data"]["error"]["code"].clone()),
        (json!(false), json!("forbidden"))
    );
    assert_eq!(c.close_code().await, Some(1008));
    // Anything else first: told why, then closed.
    let mut c = WsClient::connect(&srv).await;
    c.send(json!({"type": "team_message", "data": {"content": "hello"}})).await;
    let e = c.recv().await.unwrap();
    assert_eq!(e["data"]["code"], "not_authenticated", "{e}");
    assert_eq!(c.close_code().await, Some(1008));
    srv.stop().await;
});

on_both_backends!(
    socket_team_actions_share_the_rest_rate_limit,
    |c| {
        c.rate_limit_per_user = 1;
    },
    |srv| {
        let (team, driver, node_token, watcher) = setup_team(&srv).await;
        // REST uses up the user's burst (2 at 1/s) ...
        let mut refused = false;
        for i in 0..5 {
            let r = srv
                .post(
                    &format!("/api/teams/{team}/messages"),
                    &watcher,
                    json!({"content": format!("rest {i}")}),
                )
                .await;
            if r.status == StatusCode::TOO_MANY_REQUESTS {
                refused = true;
                break;
            }
        }
        assert!(refused, "REST never limited");
        // ... and the socket answers from the same bucket: refused, not stored.
        let mut dash = WsClient::login(&srv, &watcher, "dashboard").await;
        for i in 0..20 {
            dash.send(json!({"type": "send_team_message", "id": format!("m{i}"),
                "data": {"teamId": team, "content": format!("socket {i}")}}))
                .await;
        }
        let (mut stored, mut limited) = (0, 0);
        while stored + limited < 20 {
            let m = dash.recv().await.expect("an answer to every message");
            let own = m["id"].as_str().is_some_and(|id| id.starts_with('m'));
            match m["type"].as_str() {
                Some("team_message") if own => stored += 1,
                Some("error") => {
                    assert_eq!(m["data"]["code"], "rate_limited", "{m}");
                    assert!(m["data"]["message"].as_str().unwrap().contains("retry in"));
                    limited += 1;
                }
                _ => {}
            }
        }
        assert!(limited >= 17, "stored {stored}, refused {limited}");
        // Telemetry is not counted against the user: a node whose REST budget is spent streams on.
        for _ in 0..3 {
            srv.get(&format!("/api/teams/{team}/laps"), &node_token).await;
        }
        let mut node = WsClient::login(&srv, &node_token, "driver_node").await;
        stream(&mut node, &driver, 0, 300, 90.0, 10, false).await;
        let errors = await_ack(&mut node, 299).await;
        assert!(errors.is_empty(), "{errors:?}");
        srv.stop().await;
    }
);

on_both_backends!(the_admin_mailbox_is_the_queue_of_a_slow_actor, |srv| {
    let (team, driver, node_token, _) = setup_team(&srv).await;
    srv.create_user("root", Role::Admin, &[]);
    let root = srv.login("root").await;
    let path = format!("/teams/{team}/drivers/{driver}");
    let mut node = WsClient::login(&srv, &node_token, "driver_node").await;
    stream(&mut node, &driver, 0, 10, 1.5, 5, false).await;
    await_ack(&mut node, 9).await;
    let idle = wait_for(&srv, &root, &path, |n| n["mailbox"] == 0).await;
    let received_before = idle["counters"]["received"].as_u64().unwrap();

    // The session's handler is held up; the node keeps sending, 40 batches.
    let hold = pitbox_actors::supervision::Control::Block(Duration::from_millis(1500));
    assert!(srv.state.system.control(&path, hold));
    stream(&mut node, &driver, 10, 80, 1.5, 2, false).await;
    let busy = wait_for(&srv, &root, &path, |n| n["mailbox"].as_u64().unwrap() >= 20).await;
    assert!(busy["counters"]["received"].as_u64().unwrap() >= received_before + 20, "{busy}");

    // Once the handler is free again the queue drains to nothing, every batch handled.
    let errors = await_ack(&mut node, 89).await;
    assert!(errors.is_empty(), "{errors:?}");
    let drained = wait_for(&srv, &root, &path, |n| n["mailbox"] == 0).await;
    let c = &drained["counters"];
    assert_eq!(
        c["received"].as_u64().unwrap(),
        c["handled"].as_u64().unwrap() + c["failed"].as_u64().unwrap(),
        "{drained}"
    );
    assert!(c["received"].as_u64().unwrap() >= received_before + 41);
    srv.stop().await;
});

on_both_backends!(
    a_child_past_its_intensity_fails_its_session_which_the_team_restarts,
    |c| {
        c.restart_intensity = 1;
        c.restart_period = Duration::from_secs(60);
    },
    |srv| {
        let (team, driver, node_token, watcher) = setup_team(&srv).await;
        srv.create_user("root", Role::Admin, &[]);
        let root = srv.login("root").await;
        let session = format!("/teams/{team}/drivers/{driver}");
        let coach = format!("{session}/coach");
        let mut node = WsClient::login(&srv, &node_token, "driver_node").await;
        stream(&mut node, &driver, 0, 10, 1.5, 5, false).await;
        await_ack(&mut node, 9).await;
        wait_for(&srv, &root, &coach, |n| n["status"] == "running").await;

        // Once: the session restarts its coach.
        assert!(srv.state.system.control(&coach, pitbox_actors::supervision::Control::Panic));
        wait_for(&srv, &root, &coach, |n| n["supervision"]["restarts"] == 1 && n["status"] == "running")
            .await;
        // Twice, past the intensity of 1: the session gives its coach up and fails; the team
        // restarts the session, and with it a new coach. The tree shows each step.
        assert!(srv.state.system.control(&coach, pitbox_actors::supervision::Control::Panic));
        let s = wait_for(&srv, &root, &session, |n| {
            n["supervision"]["restarts"] == 1 && n["status"] == "running"
        })
        .await;
        assert_eq!(s["supervision"]["escalations"], 1, "{s}");
        assert!(s["supervision"]["lastEscalation"].as_str().unwrap().contains("/coach"), "{s}");
        assert!(s["supervision"]["lastReason"].as_str().unwrap().contains("restart intensity"), "{s}");
        wait_for(&srv, &root, &coach, |n| n["status"] == "running").await;
        let t = wait_for(&srv, &root, &format!("/teams/{team}"), |_| true).await;
        assert_eq!(t["supervision"]["escalations"], 0, "the team restarted its session: {t}");

        // The session came back from its checkpoint and still counts its node.
        let live = srv.get(&format!("/api/drivers/{driver}/live"), &watcher).await;
        assert_eq!(live.status, StatusCode::OK, "{}", live.body);
        assert_eq!(live.body["nodes"], 1, "{}", live.body);
        srv.stop().await;
    }
);

on_both_backends!(a_batch_after_frames_the_session_never_took_is_refused_until_they_come, |srv| {
    use pitbox_actors::driver_session::{Frames, IngestError};
    let (team, driver, _, _) = setup_team(&srv).await;
    let session = srv.state.system.driver_handle(&team, &driver).await.unwrap();
    let frames = |from: u64, n: u64| -> Vec<pitbox_schema::wire::TelemetryFrame> {
        (from..from + n)
            .map(|s| serde_json::from_value(frame_at(s, s as f64 / 60.0, 90.0)).unwrap())
            .collect()
    };
    let send = |frames: Vec<pitbox_schema::wire::TelemetryFrame>, after: Option<u64>| {
        session.send(Frames { stream_id: Some("stream-a".into()), frames, after, ack: None })
    };
    assert_eq!(send(frames(1, 10), None).await.unwrap(), Ok(10));
    assert_eq!(send(frames(11, 10), Some(10)).await.unwrap(), Ok(10));
    // 21..=30 never reached this session (lost with a dead incarnation's mailbox, or refused while
    // storage was busy): the batch that continues them is refused, or the stored watermark would
    // pass them and their resend would be dropped as already seen.
    assert_eq!(send(frames(31, 10), Some(30)).await.unwrap(), Err(IngestError::Gap(20)));
    assert_eq!(send(frames(41, 10), Some(40)).await.unwrap(), Err(IngestError::Gap(20)));
    // The resend from there, and the rest after it, are taken.
    assert_eq!(send(frames(21, 10), None).await.unwrap(), Ok(10));
    assert_eq!(send(frames(31, 10), Some(30)).await.unwrap(), Ok(10));
    // An invalid batch is never stored; the node moves on, and what continues it is taken.
    let mut bad = frames(41, 10);
    bad[3].sample.speed = f32::NAN;
    assert!(matches!(send(bad, Some(40)).await.unwrap(), Err(IngestError::Invalid(_))));
    assert_eq!(send(frames(51, 10), Some(50)).await.unwrap(), Ok(10));
    srv.stop().await;
});

/// A driver's racing sessions, newest first.
async fn sessions_of(srv: &TestServer, list: &str, token: &str) -> Vec<Value> {
    srv.get(list, token).await.body.as_array().unwrap().clone()
}

/// A driver node that names its track, car and session type at authentication.
async fn node_at(srv: &TestServer, token: &str, track: &str, car: &str, session_type: &str) -> WsClient {
    let mut c = WsClient::connect(srv).await;
    c.send(json!({"type": "authenticate", "id": "auth", "data": {
        "token": token, "clientType": "driver_node", "version": "test",
        "track": track, "car": car, "sessionType": session_type}}))
        .await;
    let r = c.recv_type("authentication_result").await.expect("authentication_result");
    assert_eq!(r["data"]["success"], true, "{r}");
    c
}

on_both_backends!(the_node_names_its_racing_session_and_a_new_sim_session_opens_a_new_one, |srv| {
    let (team, driver, node_token, watcher) = setup_team(&srv).await;
    let list = format!("/api/teams/{team}/sessions?driverId={driver}");

    // Practice: the session has the sim's names, and the laps go into it.
    let mut node = node_at(&srv, &node_token, "Spa-Francorchamps", "Porsche 911 GT3 R", "Practice").await;
    stream(&mut node, &driver, 0, 210, 1.5, 30, false).await;
    assert!(await_ack(&mut node, 209).await.is_empty());
    let first = sessions_of(&srv, &list, &watcher).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let practice = &first[0];
    assert_eq!(
        (practice["track"].as_str(), practice["car"].as_str(), practice["sessionType"].as_str()),
        (Some("Spa-Francorchamps"), Some("Porsche 911 GT3 R"), Some("Practice"))
    );
    assert!(practice["endedAt"].is_null());
    let practice_id = practice["id"].as_str().unwrap().to_owned();
    let laps = srv.get(&format!("/api/teams/{team}/laps?sessionId={practice_id}"), &watcher).await;
    assert_eq!(laps.body.as_array().unwrap().len(), 2, "{}", laps.body);

    // A reconnect in the same sim session keeps the racing session.
    drop(node);
    let node = node_at(&srv, &node_token, "Spa-Francorchamps", "Porsche 911 GT3 R", "Practice").await;
    assert_eq!(sessions_of(&srv, &list, &watcher).await.len(), 1);

    // The sim moves on to the race: the practice session is closed, the race one opened, and what
    // the node sends from now on lands in it.
    drop(node);
    let mut node = node_at(&srv, &node_token, "Spa-Francorchamps", "Porsche 911 GT3 R", "Race").await;
    stream(&mut node, &driver, 210, 210, 1.5, 30, false).await;
    assert!(await_ack(&mut node, 419).await.is_empty());
    let both = sessions_of(&srv, &list, &watcher).await;
    assert_eq!(both.len(), 2, "{both:?}");
    let (race, old) = (&both[0], &both[1]);
    assert_eq!(old["id"], practice_id.as_str());
    assert!(!old["endedAt"].is_null(), "the practice session is closed: {old}");
    assert_eq!(race["sessionType"], "Race");
    assert!(race["endedAt"].is_null());
    let race_id = race["id"].as_str().unwrap();
    let laps = srv.get(&format!("/api/teams/{team}/laps?sessionId={race_id}"), &watcher).await;
    assert!(!laps.body.as_array().unwrap().is_empty(), "{}", laps.body);
    drop(node);
    srv.stop().await;
});
