//! The REST API end to end over real HTTP, on SQLite and PostgreSQL: auth (login, refresh
//! rotation, reuse detection, expiry, forgery, roles, cross-team reads), telemetry to laps,
//! team messages, handoffs, limits, health and metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use actix_web::http::StatusCode;
use common::*;
use pitbox_schema::wire::Role;
use serde_json::{json, Value};

fn forge(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

on_both_backends!(login_refresh_rotation_and_reuse_detection, |srv| {
    srv.create_user("alice", Role::Team, &[]);
    let login = srv.login_full("alice").await;
    assert_eq!(login["user"]["username"], "alice");
    assert_eq!(login["user"]["role"], "team");
    assert_eq!(login["expiresIn"], 900);
    let r1 = login["refreshToken"].as_str().unwrap().to_owned();

    // Rotation: a refresh returns a new pair; the new access token works.
    let rot = srv.send("POST", "/api/auth/refresh", None, Some(json!({"refreshToken": r1}))).await;
    assert_eq!(rot.status, StatusCode::OK, "{}", rot.body);
    let r2 = rot.body["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    let me = srv.get("/api/auth/me", rot.body["token"].as_str().unwrap()).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["username"], "alice");

    // Reuse of the old token: refused, and the whole family (r2 too) is revoked.
    let reuse = srv.send("POST", "/api/auth/refresh", None, Some(json!({"refreshToken": r1}))).await;
    assert_eq!(reuse.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reuse.body["code"], "token_invalid");
    let after = srv.send("POST", "/api/auth/refresh", None, Some(json!({"refreshToken": r2}))).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "family must be revoked after reuse");

    // A fresh login is a new family and works; logout ends it.
    let fresh = srv.login_full("alice").await;
    let r3 = fresh["refreshToken"].as_str().unwrap().to_owned();
    let out = srv.send("POST", "/api/auth/logout", None, Some(json!({"refreshToken": r3}))).await;
    assert_eq!(out.status, StatusCode::OK);
    let dead = srv.send("POST", "/api/auth/refresh", None, Some(json!({"refreshToken": r3}))).await;
    assert_eq!(dead.status, StatusCode::UNAUTHORIZED);

    let unknown = srv.send("POST", "/api/auth/refresh", None, Some(json!({"refreshToken": "nope"}))).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.body["code"], "token_invalid");
    srv.stop().await;
});

on_both_backends!(bad_credentials_and_tokens, |srv| {
    let uid = srv.create_user("bob", Role::Team, &[]);
    let wrong = srv
        .send("POST", "/api/auth/login", None, Some(json!({"username": "bob", "password": "nope-nope"})))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["code"], "invalid_credentials");
    let ghost = srv
        .send("POST", "/api/auth/login", None, Some(json!({"username": "ghost", "password": "nope-nope"})))
        .await;
    assert_eq!(ghost.status, StatusCode::UNAUTHORIZED);
    assert_eq!(ghost.body, wrong.body, "unknown users look like wrong passwords");

    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| json!({"sub": uid, "name": "bob", "role": "admin", "teams": [], "iat": now - 100, "exp": exp, "iss": "pitbox", "jti": "x"});
    let expired = forge(TEST_SECRET, claims(now - 10));
    let r = srv.get("/api/auth/me", &expired).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["code"], "token_expired");

    // Forged: claims admin, signed with another secret.
    let forged = forge("another-secret-another-secret-1234", claims(now + 600));
    let r = srv.get("/api/users", &forged).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["code"], "token_invalid");

    for header in ["", "Bearer", "Basic Ym9iOmJvYg==", "Bearer not.a.jwt"] {
        let mut req = srv.client.get(format!("{}/api/auth/me", srv.base));
        if !header.is_empty() {
            req = req.insert_header(("Authorization", header));
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "header {header:?}");
        assert!(res.headers().contains_key("www-authenticate"));
    }
    srv.stop().await;
});

on_both_backends!(roles_and_team_boundaries, |srv| {
    let red = srv.create_team("Red");
    let blue = srv.create_team("Blue");
    let (_, red_driver) = srv.create_driver("rdrv", &red, 1);
    let (_, blue_driver) = srv.create_driver("bdrv", &blue, 2);
    srv.create_user("redteam", Role::Team, &[&red]);
    srv.create_user("redeng", Role::Engineer, &[&red]);
    srv.create_user("root", Role::Admin, &[]);
    let rd = srv.login("rdrv").await;
    let redteam = srv.login("redteam").await;
    let redeng = srv.login("redeng").await;
    let root = srv.login("root").await;

    // Driver writes only its own telemetry.
    let body = |d: &str| json!({"driverId": d, "timestamp": timestamp_at(0.0), "data": sample_at(0.0, 60.0)});
    assert_eq!(srv.post("/api/telemetry", &rd, body(&red_driver)).await.status, StatusCode::OK);
    let other = srv.post("/api/telemetry", &rd, body(&blue_driver)).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert_eq!(other.body["code"], "forbidden");
    assert_eq!(srv.post("/api/telemetry", &redteam, body(&red_driver)).await.status, StatusCode::FORBIDDEN);

    // Cross-team reads are refused; own team is readable.
    for path in [
        format!("/api/teams/{blue}"),
        format!("/api/teams/{blue}/drivers"),
        format!("/api/teams/{blue}/laps"),
        format!("/api/teams/{blue}/messages"),
        format!("/api/teams/{blue}/handoffs"),
        format!("/api/teams/{blue}/sessions"),
        format!("/api/drivers/{blue_driver}"),
    ] {
        assert_eq!(srv.get(&path, &redteam).await.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(srv.get(&path, &rd).await.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(srv.get(&path, &root).await.status, StatusCode::OK, "admin reads {path}");
    }
    assert_eq!(srv.get(&format!("/api/teams/{red}/drivers"), &rd).await.status, StatusCode::OK);
    let teams = srv.get("/api/teams", &redteam).await;
    assert_eq!(teams.body.as_array().unwrap().len(), 1, "non-admins list only their teams");
    assert_eq!(srv.get("/api/teams", &root).await.body.as_array().unwrap().len(), 2);

    // Only admins manage users and teams.
    let new_user = json!({"username": "eve", "password": "long-enough", "role": "admin"});
    for t in [&rd, &redteam, &redeng] {
        assert_eq!(srv.post("/api/users", t, new_user.clone()).await.status, StatusCode::FORBIDDEN);
        assert_eq!(srv.post("/api/teams", t, json!({"name": "X"})).await.status, StatusCode::FORBIDDEN);
        assert_eq!(srv.get("/api/users", t).await.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(srv.post("/api/users", &root, new_user.clone()).await.status, StatusCode::CREATED);
    assert_eq!(srv.post("/api/users", &root, new_user).await.status, StatusCode::CONFLICT);

    // Engineers create driver profiles in their own team only; drivers may set only their status.
    let nd = json!({"name": "Reserve", "number": 77, "role": "reserve"});
    assert_eq!(
        srv.post(&format!("/api/teams/{red}/drivers"), &redeng, nd.clone()).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        srv.post(&format!("/api/teams/{blue}/drivers"), &redeng, nd.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        srv.post(&format!("/api/teams/{red}/drivers"), &redteam, nd).await.status,
        StatusCode::FORBIDDEN
    );
    let own = srv
        .send("PATCH", &format!("/api/drivers/{red_driver}"), Some(&rd), Some(json!({"status": "active"})))
        .await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.body["status"], "active");
    let promote = srv
        .send(
            "PATCH",
            &format!("/api/drivers/{red_driver}"),
            Some(&rd),
            Some(json!({"role": "primary", "number": 5})),
        )
        .await;
    assert_eq!(promote.status, StatusCode::FORBIDDEN);
    let staff = srv
        .send(
            "PATCH",
            &format!("/api/drivers/{red_driver}"),
            Some(&redteam),
            Some(json!({"role": "secondary"})),
        )
        .await;
    assert_eq!(staff.body["role"], "secondary");

    // Password changes: self or admin.
    let uid = srv.get("/api/auth/me", &rd).await.body["id"].as_str().unwrap().to_owned();
    let r = srv
        .send(
            "PUT",
            &format!("/api/users/{uid}/password"),
            Some(&redteam),
            Some(json!({"password": "whatever-123"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = srv
        .send("PUT", &format!("/api/users/{uid}/password"), Some(&rd), Some(json!({"password": "short"})))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    srv.stop().await;
});

on_both_backends!(telemetry_becomes_laps, |srv| {
    let team = srv.create_team("Laps");
    let (_, driver) = srv.create_driver("lapper", &team, 9);
    let token = srv.login("lapper").await;
    let session = srv
        .post(
            "/api/sessions",
            &token,
            json!({"driverId": driver, "track": "Red Bull Ring", "car": "Mercedes-AMG GT4"}),
        )
        .await;
    assert_eq!(session.status, StatusCode::CREATED, "{}", session.body);
    let session_id = session.body["id"].as_str().unwrap().to_owned();

    // Two laps of 4 s at 60 Hz, then a little of the third.
    let lap_secs = 4.0;
    let mut completed = vec![];
    for i in 0..(2 * 240 + 30) {
        let t = f64::from(i) / 60.0;
        let r = srv
            .post(
                "/api/telemetry",
                &token,
                json!({"driverId": driver, "timestamp": timestamp_at(t), "data": sample_at(t, lap_secs)}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["success"], true);
        if let Some(lap) = r.body.get("lapCompleted") {
            completed.push(lap.clone());
        }
    }
    assert_eq!(completed.len(), 2, "two laps completed");

    let laps = srv.get(&format!("/api/teams/{team}/laps?driverId={driver}"), &token).await;
    assert_eq!(laps.status, StatusCode::OK);
    let laps = laps.body.as_array().unwrap().clone();
    assert_eq!(laps.len(), 2);
    for lap in &laps {
        assert_eq!(lap["sessionId"], session_id.as_str());
        assert!((lap["lapTime"].as_f64().unwrap() - lap_secs).abs() < 0.02, "{lap}");
        assert_eq!(lap["valid"], true);
        assert_eq!(lap["sectorTimes"].as_array().unwrap().len(), 3);
        assert!(lap["fuelUsed"].as_f64().unwrap() > 2.0);
    }
    let lap_id = laps[0]["id"].as_str().unwrap();
    let one = srv.get(&format!("/api/laps/{lap_id}?channels=speed,throttle,sessionTime"), &token).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    let n = one.body["lap"]["sampleCount"].as_u64().unwrap() as usize;
    assert!((238..=242).contains(&n), "sample count {n}");
    let channels = one.body["channels"].as_object().unwrap();
    assert_eq!(channels.len(), 3);
    assert_eq!(channels["speed"].as_array().unwrap().len(), n);
    let all = srv.get(&format!("/api/laps/{lap_id}"), &token).await;
    let all = all.body["channels"].as_object().unwrap();
    for ch in ["rpm", "gear", "brake", "tireWear", "cars", "fuelLevel", "timestamp"] {
        assert!(all.contains_key(ch), "channel {ch} stored with the lap");
    }
    let bad = srv.get(&format!("/api/laps/{lap_id}?channels=warp"), &token).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    let latest = srv.get(&format!("/api/drivers/{driver}/telemetry/latest"), &token).await;
    assert_eq!(latest.status, StatusCode::OK);
    assert_eq!(latest.body["lap"], 3);

    let sessions = srv.get(&format!("/api/teams/{team}/sessions"), &token).await;
    assert_eq!(sessions.body.as_array().unwrap().len(), 1);
    let ended = srv.post(&format!("/api/sessions/{session_id}/end"), &token, json!({})).await;
    assert!(ended.body["endedAt"].is_string());
    srv.stop().await;
});

on_both_backends!(team_messages_and_read_state, |srv| {
    let team = srv.create_team("Msg");
    srv.create_user("chief", Role::Team, &[&team]);
    srv.create_driver("pilot", &team, 3);
    let chief = srv.login("chief").await;
    let pilot = srv.login("pilot").await;
    let sent = srv
        .post(
            &format!("/api/teams/{team}/messages"),
            &chief,
            json!({"content": "Box this lap", "priority": "urgent",
            "attachment": {"type": "telemetry", "url": "/api/laps/x", "name": "lap 12"}}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    assert_eq!(sent.body["senderName"], "chief");
    assert_eq!(sent.body["priority"], "urgent");
    let id = sent.body["id"].as_str().unwrap().to_owned();

    let list = srv.get(&format!("/api/teams/{team}/messages"), &pilot).await;
    assert_eq!(list.body[0]["content"], "Box this lap");
    assert_eq!(list.body[0]["read"], false);
    assert_eq!(list.body[0]["attachment"]["type"], "telemetry");
    assert_eq!(srv.post(&format!("/api/messages/{id}/read"), &pilot, json!({})).await.status, StatusCode::OK);
    let list = srv.get(&format!("/api/teams/{team}/messages"), &pilot).await;
    assert_eq!(list.body[0]["read"], true);
    let bad = srv.post(&format!("/api/teams/{team}/messages"), &chief, json!({"content": "   "})).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad = srv
        .post(&format!("/api/teams/{team}/messages"), &chief, json!({"content": "x", "priority": "panic"}))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    srv.stop().await;
});

on_both_backends!(handoff_lifecycle, |srv| {
    let team = srv.create_team("Swap");
    let (_, first) = srv.create_driver("first", &team, 1);
    let (_, second) = srv.create_driver("second", &team, 2);
    srv.create_user("boss", Role::Team, &[&team]);
    let f = srv.login("first").await;
    let s = srv.login("second").await;
    let boss = srv.login("boss").await;
    srv.post(
        "/api/telemetry",
        &f,
        json!({"driverId": first, "timestamp": timestamp_at(1.0), "data": sample_at(1.0, 60.0)}),
    )
    .await;

    let h = srv
        .post(
            &format!("/api/teams/{team}/handoffs"),
            &f,
            json!({"targetDriverId": second, "reason": "stint over", "urgency": "urgent"}),
        )
        .await;
    assert_eq!(h.status, StatusCode::CREATED, "{}", h.body);
    assert_eq!(h.body["status"], "pending");
    assert_eq!(h.body["targetDriverName"], "second");
    assert_eq!(h.body["fromDriverId"], first.as_str());
    assert!(h.body["telemetrySnapshot"]["speed"].is_number(), "snapshot attached: {}", h.body);
    let id = h.body["id"].as_str().unwrap().to_owned();

    // Completing before accepting is a conflict; the target driver accepts; then complete.
    let early = srv.post(&format!("/api/handoffs/{id}/complete"), &boss, json!({})).await;
    assert_eq!(early.status, StatusCode::CONFLICT);
    let acc = srv.post(&format!("/api/handoffs/{id}/accept"), &s, json!({})).await;
    assert_eq!(acc.status, StatusCode::OK, "{}", acc.body);
    assert_eq!(acc.body["status"], "accepted");
    let rej = srv.post(&format!("/api/handoffs/{id}/reject"), &boss, json!({})).await;
    assert_eq!(rej.status, StatusCode::CONFLICT);
    let done = srv.post(&format!("/api/handoffs/{id}/complete"), &boss, json!({})).await;
    assert_eq!(done.body["status"], "completed");
    assert!(done.body["completedAt"].is_string());

    let listed = srv.get(&format!("/api/teams/{team}/handoffs?status=completed"), &s).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    let none = srv.get(&format!("/api/teams/{team}/handoffs?status=pending"), &s).await;
    assert_eq!(none.body.as_array().unwrap().len(), 0);
    let bogus = srv.post(&format!("/api/handoffs/{id}/teleport"), &boss, json!({})).await;
    assert_eq!(bogus.status, StatusCode::NOT_FOUND);
    let same = srv
        .post(&format!("/api/teams/{team}/handoffs"), &f, json!({"targetDriverId": first, "reason": "x"}))
        .await;
    assert_eq!(same.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The shared rule (`pitbox_schema::wire::may_answer_handoff`, which the dashboard's buttons follow):
    // the `team` role answers any handoff, an uninvolved driver none, the asking driver completes.
    let (_, _third) = srv.create_driver("third", &team, 3);
    let third = srv.login("third").await;
    let h = srv
        .post(
            &format!("/api/teams/{team}/handoffs"),
            &f,
            json!({"targetDriverId": second, "reason": "again"}),
        )
        .await;
    let id = h.body["id"].as_str().unwrap().to_owned();
    let outsider = srv.post(&format!("/api/handoffs/{id}/accept"), &third, json!({})).await;
    assert_eq!(outsider.status, StatusCode::FORBIDDEN, "{}", outsider.body);
    let asker = srv.post(&format!("/api/handoffs/{id}/accept"), &f, json!({})).await;
    assert_eq!(asker.status, StatusCode::FORBIDDEN, "the asking driver does not accept for the target");
    let acc = srv.post(&format!("/api/handoffs/{id}/accept"), &boss, json!({})).await;
    assert_eq!(acc.status, StatusCode::OK, "{}", acc.body);
    let done = srv.post(&format!("/api/handoffs/{id}/complete"), &f, json!({})).await;
    assert_eq!(done.body["status"], "completed", "{}", done.body);
    srv.stop().await;
});

on_both_backends!(
    oversized_bodies_are_413,
    |c| {
        c.max_body_bytes = 4096;
    },
    |srv| {
        srv.create_user("big", Role::Admin, &[]);
        let t = srv.login("big").await;
        let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(10_000));
        let r = srv.send_raw("POST", "/api/teams", Some(&t), Some(&huge), "application/json").await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.body["code"], "payload_too_large");
        assert_eq!(srv.get("/api/teams", &t).await.body.as_array().unwrap().len(), 0, "nothing stored");
        srv.stop().await;
    }
);

on_both_backends!(
    login_rate_limit_is_429_with_retry_after,
    |c| {
        c.rate_limit_login = 3;
    },
    |srv| {
        let bad = json!({"username": "x", "password": "y"});
        for _ in 0..3 {
            assert_eq!(
                srv.send("POST", "/api/auth/login", None, Some(bad.clone())).await.status,
                StatusCode::UNAUTHORIZED
            );
        }
        let r = srv.send("POST", "/api/auth/login", None, Some(bad)).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.body["code"], "rate_limited");
        let retry: u64 = r.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "retry-after {retry}");
        srv.stop().await;
    }
);

on_both_backends!(
    user_rate_limit_is_429,
    |c| {
        c.rate_limit_per_user = 2;
    },
    |srv| {
        srv.create_user("busy", Role::Team, &[]);
        let t = srv.login("busy").await;
        let mut statuses = vec![];
        for _ in 0..8 {
            statuses.push(srv.get("/api/auth/me", &t).await.status);
        }
        assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
        assert_eq!(statuses[0], StatusCode::OK);
        srv.stop().await;
    }
);

on_both_backends!(health_readiness_and_metrics, |srv| {
    let h = srv.send("GET", "/healthz", None, None).await;
    assert_eq!(h.status, StatusCode::OK);
    let r = srv.send("GET", "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["database"], "ok");
    srv.send("GET", "/api/teams", None, None).await;
    let m = srv.send("GET", "/metrics", None, None).await;
    let text = m.body.as_str().unwrap().to_owned();
    assert!(
        text.contains("pitbox_http_requests_total{method=\"GET\",route=\"/api/teams\",status=\"401\"} 1"),
        "{text}"
    );
    assert!(text.contains("pitbox_db_connections"));
    assert!(text.trim_end().ends_with("# EOF"));
    srv.stop().await;
});

// The seed protocol's telemetry has no `sessionTime`: its laps are timed on the timestamps.
on_both_backends!(seed_telemetry_without_session_time_completes_laps, |srv| {
    let team = srv.create_team("Seed");
    let (_, driver) = srv.create_driver("seeder", &team, 12);
    let token = srv.login("seeder").await;
    // Two laps of 3 s at 20 Hz, then two seconds of the third (the first lap waits a moment for a
    // sim lap time that a seed client never sends).
    let lap_secs = 3.0;
    let mut completed = vec![];
    for i in 0..(2 * 60 + 40) {
        let t = f64::from(i) / 20.0;
        let mut data = sample_at(t, lap_secs);
        data.as_object_mut().unwrap().remove("sessionTime");
        let r = srv
            .post(
                "/api/telemetry",
                &token,
                json!({"driverId": driver, "timestamp": timestamp_at(t), "data": data}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if let Some(lap) = r.body.get("lapCompleted") {
            completed.push(lap.clone());
        }
    }
    assert_eq!(completed.len(), 2, "{completed:?}");
    for lap in &completed {
        assert!((lap["lapTime"].as_f64().unwrap() - lap_secs).abs() < 0.01, "{lap}");
        assert_eq!(lap["valid"], true, "{lap}");
        assert_eq!(lap["kind"], "flying", "{lap}");
    }
});

// Every route about one thing of a team (a row named by its id, or the team itself) answers the
// same way: another team's thing is 403 with the membership message (nothing about it leaks, not
// even whether it exists beyond the id), a missing one is 404 naming it, the own team's is
// readable. The checks live once (`routes::scope`); this walks every route that uses them.
on_both_backends!(team_things_by_id_answer_alike, |srv| {
    let red = srv.create_team("Red");
    let blue = srv.create_team("Blue");
    let (_, blue_driver) = srv.create_driver("bdrv", &blue, 2);
    srv.create_user("bluechief", Role::Team, &[&blue]);
    srv.create_user("redchief", Role::Team, &[&red]);
    srv.create_user("root", Role::Admin, &[]);
    let (bd, bluechief) = (srv.login("bdrv").await, srv.login("bluechief").await);
    let (redchief, root) = (srv.login("redchief").await, srv.login("root").await);

    let session =
        srv.post("/api/sessions", &bd, json!({"driverId": blue_driver, "track": "Spa", "car": "GT3"})).await;
    assert_eq!(session.status, StatusCode::CREATED, "{}", session.body);
    let session = session.body["id"].as_str().unwrap().to_owned();
    let msg = srv.post(&format!("/api/teams/{blue}/messages"), &bluechief, json!({"content": "box"})).await;
    let msg = msg.body["id"].as_str().unwrap().to_owned();
    let handoff = json!({"targetDriverId": blue_driver, "reason": "stint"});
    let h = srv.post(&format!("/api/teams/{blue}/handoffs"), &bluechief, handoff).await;
    assert_eq!(h.status, StatusCode::CREATED, "{}", h.body);
    let h = h.body["id"].as_str().unwrap().to_owned();

    // (method, path of blue's thing, path of a missing one, what the 404 names)
    let routes = [
        ("GET", format!("/api/teams/{blue}"), "/api/teams/nope".to_owned(), "team"),
        ("GET", format!("/api/teams/{blue}/drivers"), "/api/teams/nope/drivers".into(), "team"),
        ("GET", format!("/api/teams/{blue}/sessions"), "/api/teams/nope/sessions".into(), "team"),
        ("GET", format!("/api/teams/{blue}/laps"), "/api/teams/nope/laps".into(), "team"),
        ("GET", format!("/api/teams/{blue}/messages"), "/api/teams/nope/messages".into(), "team"),
        ("GET", format!("/api/teams/{blue}/handoffs"), "/api/teams/nope/handoffs".into(), "team"),
        ("GET", format!("/api/teams/{blue}/strategy"), "/api/teams/nope/strategy".into(), "team"),
        ("GET", format!("/api/drivers/{blue_driver}"), "/api/drivers/nope".into(), "driver"),
        ("GET", format!("/api/drivers/{blue_driver}/live"), "/api/drivers/nope/live".into(), "driver"),
        ("GET", format!("/api/sessions/{session}"), "/api/sessions/nope".into(), "session"),
        ("GET", format!("/api/sessions/{session}/coaching"), "/api/sessions/nope/coaching".into(), "session"),
        (
            "GET",
            format!("/api/sessions/{session}/export.csv"),
            "/api/sessions/nope/export.csv".into(),
            "session",
        ),
        ("POST", format!("/api/messages/{msg}/read"), "/api/messages/nope/read".into(), "message"),
        ("GET", format!("/api/handoffs/{h}"), "/api/handoffs/nope".into(), "handoff request"),
        ("POST", format!("/api/handoffs/{h}/reject"), "/api/handoffs/nope/reject".into(), "handoff request"),
        ("POST", format!("/api/sessions/{session}/end"), "/api/sessions/nope/end".into(), "session"),
    ];
    let body = |m: &str| (m == "POST").then(|| json!({}));
    for (method, own, missing, what) in &routes {
        let foreign = srv.send(method, own, Some(&redchief), body(method)).await;
        assert_eq!(foreign.status, StatusCode::FORBIDDEN, "{method} {own}: {}", foreign.body);
        assert_eq!(foreign.body["code"], "forbidden");
        assert_eq!(foreign.body["message"], "you are not a member of this team", "{method} {own}");
        let gone = srv.send(method, missing, Some(&root), body(method)).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND, "{method} {missing}: {}", gone.body);
        assert_eq!(gone.body["code"], "not_found");
        assert_eq!(gone.body["message"], format!("{what} \"nope\" not found"), "{method} {missing}");
        let mine = srv.send(method, own, Some(&bluechief), body(method)).await;
        assert!(mine.status.is_success(), "{method} {own} by its team: {} {}", mine.status, mine.body);
    }
    // The rules past membership still hold: a driver ends only their own session (staff any), and
    // staff of the team, not a driver, set another driver's number.
    let (_, other) = srv.create_driver("bdrv2", &blue, 3);
    let bd2 = srv.login("bdrv2").await;
    let patch =
        srv.send("PATCH", &format!("/api/drivers/{other}"), Some(&bd), Some(json!({"number": 9}))).await;
    assert_eq!(patch.status, StatusCode::FORBIDDEN);
    let s2 = srv.post("/api/sessions", &bd2, json!({"driverId": other, "track": "Spa", "car": "GT3"})).await;
    let s2 = s2.body["id"].as_str().unwrap().to_owned();
    let end = srv.post(&format!("/api/sessions/{s2}/end"), &bd, json!({})).await;
    assert_eq!(end.status, StatusCode::FORBIDDEN, "{}", end.body);
    assert_eq!(end.body["message"], "team, engineer or admin role required");
    srv.stop().await;
});
