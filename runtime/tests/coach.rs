//! The coach wired into the running runtime, on SQLite and PostgreSQL: a driver node streams
//! synthetic laps with faults; the team's dashboard socket gets `ai_coaching` with the corners and
//! numbers, the driver's node gets one short tip per lap at most (and another driver's node none),
//! the session takes the track and car the node named, the coaching is stored and served, and the
//! corner table, track map, strategy, exports and corner names work, with clear 4xx on bad input.
//! The Coach actor's state survives its restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use common::*;
use pitbox_actors::coach::AskCoach;
use pitbox_actors::supervision::Control;
use pitbox_driver::synthetic::{Fault, Synthetic, SyntheticConfig};
use pitbox_schema::wire::Role;
use serde_json::{json, Value};

const TRACK: &str = "PitBox Ring";
const CAR: &str = "GT3 Test";

/// Frames of a synthetic driver until it has completed `laps` laps (and a little more, so the last
/// line crossing is timed).
fn laps_of_frames(laps: i32, config: SyntheticConfig) -> Vec<Value> {
    let mut car = Synthetic::with_config(config);
    let mut out = Vec::new();
    let mut extra = 0;
    while extra < 120 {
        let mut f = car.next_frame();
        f.seq = Some(out.len() as u64 + 1);
        if f.sample.lap > laps {
            extra += 1;
        }
        out.push(serde_json::to_value(&f).unwrap());
    }
    out
}

fn faulty() -> SyntheticConfig {
    SyntheticConfig {
        faults: vec![Fault::BrakeEarly { corner: 4, metres: 20.0 }],
        fuel_leak_l_per_lap: 0.8,
        // Braking points that wander lap to lap: a fault only shows against a lap without it.
        inconsistency_m: 30.0,
        ..SyntheticConfig::new(7)
    }
}

async fn node_login(srv: &TestServer, token: &str) -> WsClient {
    let mut c = WsClient::connect(srv).await;
    c.send(json!({"type": "authenticate", "id": "auth", "data": {
        "token": token, "clientType": "driver_node", "version": "test", "track": TRACK, "car": CAR}}))
        .await;
    let r = c.recv_type("authentication_result").await.expect("authentication_result");
    assert_eq!(r["data"]["success"], true, "{r}");
    c
}

/// Streams the frames and reads the node's socket until the last is acknowledged; returns the
/// `ai_coaching` messages the node received meanwhile.
async fn stream_all(node: &mut WsClient, driver: &str, frames: &[Value]) -> Vec<Value> {
    for chunk in frames.chunks(300) {
        node.send(json!({"type": "telemetry_batch", "data": {"driverId": driver, "streamId": "node-1", "frames": chunk}}))
            .await;
    }
    let last = frames.len() as u64;
    let mut tips = vec![];
    loop {
        let m = node.recv_within(Duration::from_secs(60)).await.expect("ack");
        if m["type"] == "ack" && m["data"]["seq"].as_u64().unwrap() >= last {
            return tips;
        }
        assert_ne!(m["type"], "error", "{m}");
        if m["type"] == "ai_coaching" {
            tips.push(m);
        }
    }
}

/// Reads a socket until `n` `ai_coaching` messages came (or 60 s pass).
async fn coaching(c: &mut WsClient, n: usize) -> Vec<Value> {
    let mut out = vec![];
    let until = Instant::now() + Duration::from_secs(60);
    while out.len() < n && Instant::now() < until {
        match c.recv_within(until.saturating_duration_since(Instant::now())).await {
            Some(m) if m["type"] == "ai_coaching" => out.push(m),
            Some(_) => {}
            None => break,
        }
    }
    out
}

on_both_backends!(
    coach_in_the_runtime,
    |c| {
        c.max_body_bytes = 16 << 20;
    },
    |srv| {
        let team = srv.create_team("Coach Racing");
        let (_, driver) = srv.create_driver("coached", &team, 22);
        let (_, other) = srv.create_driver("bystander", &team, 33);
        srv.create_user("engineer", Role::Engineer, &[&team]);
        srv.create_user("outsider", Role::Team, &[&srv.create_team("Elsewhere")]);
        let node_token = srv.login("coached").await;
        let eng = srv.login("engineer").await;
        let outsider = srv.login("outsider").await;
        let bystander_token = srv.login("bystander").await;

        let mut watcher = WsClient::login(&srv, &eng, "dashboard").await;
        let mut node = node_login(&srv, &node_token).await;
        let mut bystander = node_login(&srv, &bystander_token).await;

        let frames = laps_of_frames(4, faulty());
        let node_tips = stream_all(&mut node, &driver, &frames).await;

        // Laps 1..=4 completed; lap 1 starts from a standstill on the line, the rest are flying.
        let laps = srv.get(&format!("/api/teams/{team}/laps?driverId={driver}"), &eng).await;
        assert_eq!(laps.status, StatusCode::OK);
        let laps = laps.body.as_array().unwrap().clone();
        assert!(laps.len() >= 3, "{} laps", laps.len());
        // The coach has seen every lap; what it sent is on the team's socket.
        let session_actor = srv.state.system.driver(&team, &driver).await.unwrap();
        let until = Instant::now() + Duration::from_secs(60);
        let seen = loop {
            let s = session_actor.send(AskCoach).await.unwrap().expect("coach state");
            if s.laps_seen as usize >= laps.len() {
                break s;
            }
            assert!(Instant::now() < until, "the coach saw {} of {} laps", s.laps_seen, laps.len());
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(seen.published as usize + 1 >= laps.len(), "{seen:?}: at most the first lap goes unanalysed");
        let pushed = coaching(&mut watcher, seen.published as usize).await;
        assert_eq!(pushed.len(), seen.published as usize, "every ai_coaching reaches the team's socket");
        for m in &pushed {
            assert!(m["from"].as_str().unwrap().ends_with(&format!("/drivers/{driver}/coach")), "{m}");
            assert!(m.get("to").is_none(), "the team's copy is not addressed to a node: {m}");
            let d = &m["data"];
            assert!(d["feedback"].as_str().is_some_and(|f| !f.is_empty()), "{m}");
            assert!(d["confidence"].as_f64().is_some_and(|c| (0.0..=1.0).contains(&c)));
            assert!(
                d["lapId"].is_string() && d["telemetryAnalysis"].is_object() && d["strategy"].is_object(),
                "{m}"
            );
        }
        // Early braking (up to 30 m, lap to lap) is found at some corner, with its numbers.
        let early = pushed
            .iter()
            .flat_map(|m| m["data"]["items"].as_array().cloned().unwrap_or_default())
            .find(|i| i["topic"].as_str().is_some_and(|t| t.ends_with("/brakedEarly")))
            .unwrap_or_else(|| panic!("no early braking found in {pushed:?}"));
        assert!(early["corner"].as_str().is_some_and(|c| c.starts_with('T')), "{early}");
        assert!(early["timeGainedS"].as_f64().unwrap() < 0.0, "{early}");
        assert!(early["text"].as_str().unwrap().contains(" m early"), "{early}");

        // The node: one short tip per lap at most, addressed to it; the other driver's node gets none.
        let told = pushed.iter().filter(|m| m["data"].get("tip").is_some()).count();
        assert!(told >= 1 && told <= laps.len(), "{told} tips for {} laps", laps.len());
        let mut node_tips = node_tips;
        let more = told.saturating_sub(node_tips.len());
        node_tips.extend(coaching(&mut node, more).await);
        assert_eq!(node_tips.len(), told, "the node hears exactly the tips the team sees");
        for t in &node_tips {
            assert_eq!(t["to"], format!("/teams/{team}/drivers/{driver}/node"));
            assert_eq!(t["data"]["feedback"], t["data"]["tip"]);
            assert!(t["data"].get("items").is_none(), "a tip is short: {t}");
        }
        // The tips are spoken too: the driver's voice channel says them (nothing else was asked).
        let voice = format!("/teams/{team}/drivers/{driver}/voice");
        let deadline = Instant::now() + Duration::from_secs(30);
        while srv
            .state
            .system
            .registry()
            .get(&voice)
            .and_then(|s| s.gauges().get("spoken").copied())
            .unwrap_or(0)
            == 0
        {
            assert!(Instant::now() < deadline, "no tip was spoken");
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        bystander.send(json!({"type": "telemetry_batch", "data": {"driverId": other, "streamId": "b", "frames": []}})).await;
        let mut heard = vec![];
        while let Some(m) = bystander.recv_within(Duration::from_millis(300)).await {
            heard.push(m);
        }
        assert!(heard.iter().all(|m| m["type"] != "ai_coaching"), "{heard:?}");

        // The session took the node's track and car; its coaching is stored.
        let session = laps[0]["sessionId"].as_str().unwrap().to_owned();
        let s = srv.get(&format!("/api/sessions/{session}"), &eng).await;
        assert_eq!(
            (s.body["track"].as_str(), s.body["car"].as_str()),
            (Some(TRACK), Some(CAR)),
            "{}",
            s.body
        );
        // Stored a moment after it was pushed: ask until all of it is there.
        let until = Instant::now() + Duration::from_secs(30);
        let stored = loop {
            let r = srv.get(&format!("/api/sessions/{session}/coaching"), &eng).await;
            assert_eq!(r.status, StatusCode::OK);
            if r.body.as_array().unwrap().len() >= pushed.len() {
                break r;
            }
            assert!(Instant::now() < until, "coaching not stored: {}", r.body);
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(stored.body.as_array().unwrap().len(), pushed.len(), "{}", stored.body);
        assert_eq!(stored.body[0]["items"], pushed[0]["data"]["items"]);
        assert_eq!(
            srv.get(&format!("/api/sessions/{session}/coaching"), &outsider).await.status,
            StatusCode::FORBIDDEN
        );

        // The corner table of the newest lap against the best: rows add up to the lap delta.
        let newest = laps[0]["id"].as_str().unwrap().to_owned();
        let oldest_flying = laps.iter().rev().find(|l| l["kind"] == "flying" && l["valid"] == true).unwrap();
        let corners = srv.get(&format!("/api/laps/{newest}/corners"), &eng).await;
        assert_eq!(corners.status, StatusCode::OK, "{}", corners.body);
        let sum: f64 =
            corners.body["rows"].as_array().unwrap().iter().map(|r| r["deltaS"].as_f64().unwrap()).sum();
        assert!((sum - corners.body["lapDeltaS"].as_f64().unwrap()).abs() < 0.01, "{}", corners.body);
        assert_eq!(corners.body["track"], TRACK);
        let chosen = oldest_flying["id"].as_str().unwrap();
        let vs = srv.get(&format!("/api/laps/{newest}/corners?reference={chosen}"), &eng).await;
        assert_eq!(vs.status, StatusCode::OK, "{}", vs.body);
        assert_eq!(vs.body["referenceLapId"], chosen);
        let analysis = srv.get(&format!("/api/laps/{newest}/analysis"), &eng).await;
        assert_eq!(analysis.status, StatusCode::OK, "{}", analysis.body);
        assert!(analysis.body["comparison"]["corners"].is_array() && analysis.body["coaching"].is_object());

        // Exports: channels by lap distance.
        let csv = srv.get(&format!("/api/laps/{newest}/export.csv"), &eng).await;
        assert_eq!(csv.status, StatusCode::OK);
        assert!(csv.headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/csv"));
        let text = csv.body.as_str().unwrap();
        assert!(text.starts_with("lap,lap_dist_pct,lap_dist_m,"), "{}", &text[..80]);
        let session_csv = srv.get(&format!("/api/sessions/{session}/export.csv"), &eng).await;
        assert_eq!(session_csv.status, StatusCode::OK);
        assert!(session_csv.body.as_str().unwrap().lines().count() > text.lines().count());

        // The learnt map with the outline, named by the team (JSON, then TOML).
        let track_path = format!("/api/tracks/{}", TRACK.replace(' ', "%20"));
        let map = srv.get(&format!("{track_path}/map"), &eng).await;
        assert_eq!(map.status, StatusCode::OK, "{}", map.body);
        assert!(map.body["outline"].as_array().unwrap().len() > 50, "{}", map.body);
        let n_corners = map.body["corners"].as_array().unwrap().len();
        assert!(n_corners >= 5, "{}", map.body["corners"]);
        let first = map.body["corners"][0].clone();
        let turns = json!({"turns": [{"name": "Hairpin", "start": first["start"], "end": first["end"]}]});
        let put = srv.send("PUT", &format!("{track_path}/turns"), Some(&eng), Some(turns)).await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.body);
        let map = srv.get(&format!("{track_path}/map"), &eng).await;
        assert_eq!(map.body["corners"][0]["name"], "Hairpin");
        assert_eq!(map.body["corners"].as_array().unwrap().len(), n_corners, "names do not renumber");
        let toml =
            format!("turns = [{{name = \"La Source\", start = {}, end = {}}}]", first["start"], first["end"]);
        let put = srv
            .send_raw("PUT", &format!("{track_path}/turns"), Some(&eng), Some(&toml), "application/toml")
            .await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.body);
        assert_eq!(srv.get(&format!("{track_path}/map"), &eng).await.body["corners"][0]["name"], "La Source");

        // The team's strategy: the car's fuel picture, computed by the coach, not per request.
        let strat = srv.get(&format!("/api/teams/{team}/strategy"), &eng).await;
        assert_eq!(strat.status, StatusCode::OK);
        let car =
            strat.body.as_array().unwrap().iter().find(|c| c["driverId"] == driver.as_str()).unwrap().clone();
        assert!(
            car["fuelPerLap"].as_f64().unwrap() > 0.5 && car["lapsOfFuel"].as_f64().unwrap() > 1.0,
            "{car}"
        );

        // Bad input: clear 4xx, and the server keeps serving.
        let cases: Vec<(&str, String, Option<Value>, StatusCode)> = vec![
            (
                "POST",
                "/api/coaching/analyze".into(),
                Some(json!({"driverId": driver, "telemetryData": []})),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                "POST",
                "/api/coaching/analyze".into(),
                Some(json!({"driverId": "nobody", "telemetryData": &frames[..10]})),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                "POST",
                "/api/coaching/analyze".into(),
                Some(json!({"driverId": driver, "telemetryData": &frames[..10], "skillLevel": "wizard"})),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                "POST",
                "/api/coaching/analyze".into(),
                Some(json!({"driverId": driver, "telemetryData": &frames[..10]})),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                "POST",
                "/api/coaching/analyze".into(),
                Some(json!({"driverId": driver})),
                StatusCode::BAD_REQUEST,
            ),
            ("GET", "/api/laps/no-such-lap/corners".into(), None, StatusCode::NOT_FOUND),
            (
                "GET",
                format!("/api/laps/{newest}/corners?reference=no-such-lap"),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            ("GET", format!("/api/laps/{newest}/corners?reference="), None, StatusCode::UNPROCESSABLE_ENTITY),
            ("GET", "/api/laps/no-such-lap/export.csv".into(), None, StatusCode::NOT_FOUND),
            ("GET", "/api/sessions/no-such/export.csv".into(), None, StatusCode::NOT_FOUND),
            ("GET", "/api/teams/no-such-team/strategy".into(), None, StatusCode::FORBIDDEN),
            ("GET", "/api/tracks/Nowhere/map".into(), None, StatusCode::NOT_FOUND),
            (
                "PUT",
                format!("{track_path}/turns"),
                Some(json!({"turns": [{"name": "X", "start": 0.2, "end": 1.5}]})),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                "PUT",
                format!("{track_path}/turns"),
                Some(json!({"turns": [{"name": " ", "start": 0.2, "end": 0.3}]})),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            ("PUT", format!("{track_path}/turns"), Some(json!({"turns": "T1"})), StatusCode::BAD_REQUEST),
        ];
        for (method, path, body, want) in cases {
            let r = srv.send(method, &path, Some(&eng), body).await;
            assert_eq!(r.status, want, "{method} {path}: {}", r.body);
            assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{method} {path}: {}", r.body);
        }
        let bad_toml = srv
            .send_raw(
                "PUT",
                &format!("{track_path}/turns"),
                Some(&eng),
                Some("turns = [{name = }"),
                "application/toml",
            )
            .await;
        assert_eq!(bad_toml.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad_toml.body);
        let xml = srv
            .send_raw("PUT", &format!("{track_path}/turns"), Some(&eng), Some("<turns/>"), "application/xml")
            .await;
        assert_eq!(xml.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", xml.body);
        let as_driver = srv
            .send("PUT", &format!("{track_path}/turns"), Some(&node_token), Some(json!({"turns": []})))
            .await;
        assert_eq!(as_driver.status, StatusCode::FORBIDDEN, "drivers do not rename corners");
        let foreign = srv.get(&format!("/api/laps/{newest}/corners"), &outsider).await;
        assert_eq!(foreign.status, StatusCode::FORBIDDEN);

        // Analyze in the seed's shape: two laps' frames (every 3rd, 20 Hz, within the body limit).
        let start = frames.iter().position(|f| f["lap"] == 2).unwrap() - 1;
        let end = frames.iter().position(|f| f["lap"] == 4).unwrap() + 1;
        let thin: Vec<&Value> = frames[start..=end].iter().step_by(3).collect();
        let r = srv
        .post("/api/coaching/analyze", &eng, json!({"driverId": driver, "telemetryData": thin, "focusAreas": ["braking"], "skillLevel": "advanced"}))
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body["feedback"].is_string() && r.body["suggestions"].is_array(), "{}", r.body);
        assert!(
            r.body["analysis"]["weaknesses"].is_array() && r.body["analysis"]["improvementAreas"].is_array()
        );

        // The coach's state survives its restart: rebuilt from the database.
        let before = session_actor.send(AskCoach).await.unwrap().expect("coach state");
        assert!(
            before.reference_lap.is_some() && before.corners >= 5 && before.engine_laps >= 3,
            "{before:?}"
        );
        let path = format!("/teams/{team}/drivers/{driver}/coach");
        let restarts = srv.state.system.registry().get(&path).unwrap().restarts();
        assert!(srv.state.system.control(&path, Control::Panic));
        let until = Instant::now() + Duration::from_secs(30);
        let after = loop {
            let s = session_actor.send(AskCoach).await.unwrap();
            let restarted = srv.state.system.registry().get(&path).is_some_and(|s| s.restarts() > restarts);
            if let (Some(s), true) = (s, restarted) {
                break s;
            }
            assert!(Instant::now() < until, "the coach did not come back");
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(after.reference_lap, before.reference_lap);
        assert_eq!(after.engine_laps, before.engine_laps);
        assert_eq!(after.corners, before.corners);
        assert_eq!(after.session_id, before.session_id);
        assert_eq!(after.tips, before.tips);
        assert_eq!(after.spoken_topics, before.spoken_topics);
        assert_eq!(after.laps_seen, before.laps_seen);
    }
);
