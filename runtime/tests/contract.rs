//! The API's contract: every route answers bad input (no token, malformed JSON, wrong types,
//! missing fields, unknown ids, wrong content type) with the right 4xx and a `{code, message}`
//! body, never a 500, and loses nothing already stored; and the OpenAPI document matches both the
//! committed `runtime/openapi.json` and the routes the server really answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use actix_web::http::StatusCode;
use common::*;
use pitbox_schema::wire::Role;
use serde_json::{json, Value};

/// (method, path, a valid body) for every JSON route; `{team}`, `{driver}`, … are filled in.
fn routes() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        ("GET", "/api/auth/me", None),
        ("GET", "/api/users", None),
        (
            "POST",
            "/api/users",
            Some(json!({"username": "newbie", "password": "long-enough", "role": "team"})),
        ),
        ("PUT", "/api/users/{user}/password", Some(json!({"password": "another-long-one"}))),
        ("GET", "/api/teams", None),
        ("POST", "/api/teams", Some(json!({"name": "Another"}))),
        ("GET", "/api/teams/{team}", None),
        ("POST", "/api/teams/{team}/members", Some(json!({"userId": "{user}"}))),
        ("GET", "/api/teams/{team}/drivers", None),
        ("POST", "/api/teams/{team}/drivers", Some(json!({"name": "N", "number": 4}))),
        ("GET", "/api/drivers/{driver}", None),
        ("PATCH", "/api/drivers/{driver}", Some(json!({"status": "standby"}))),
        (
            "POST",
            "/api/telemetry",
            Some(
                json!({"driverId": "{driver}", "timestamp": "2026-11-21T12:00:00Z", "data": sample_at(0.5, 60.0)}),
            ),
        ),
        ("GET", "/api/drivers/{driver}/telemetry/latest", None),
        ("GET", "/api/drivers/{driver}/live", None),
        ("POST", "/api/sessions", Some(json!({"driverId": "{driver}", "track": "Monza", "car": "GT3"}))),
        ("GET", "/api/sessions/{session}", None),
        ("POST", "/api/sessions/{session}/end", None),
        ("GET", "/api/teams/{team}/sessions", None),
        ("GET", "/api/teams/{team}/laps", None),
        ("GET", "/api/laps/{lap}", None),
        ("GET", "/api/teams/{team}/messages", None),
        ("POST", "/api/teams/{team}/messages", Some(json!({"content": "hello"}))),
        ("POST", "/api/messages/{message}/read", None),
        ("GET", "/api/teams/{team}/handoffs", None),
        ("POST", "/api/teams/{team}/handoffs", Some(json!({"targetDriverId": "{driver}", "reason": "r"}))),
        ("GET", "/api/handoffs/{handoff}", None),
        ("POST", "/api/handoffs/{handoff}/accept", None),
        ("POST", "/api/coaching/analyze", Some(json!({"driverId": "{driver}", "telemetryData": []}))),
        ("GET", "/api/sessions/{session}/coaching", None),
        ("GET", "/api/sessions/{session}/export.csv", None),
        ("GET", "/api/laps/{lap}/corners", None),
        ("GET", "/api/laps/{lap}/analysis", None),
        ("GET", "/api/laps/{lap}/export.csv", None),
        ("GET", "/api/teams/{team}/strategy", None),
        ("GET", "/api/tracks/{track}/map", None),
        (
            "PUT",
            "/api/tracks/{track}/turns",
            Some(json!({"turns": [{"name": "Hairpin", "start": 0.1, "end": 0.2}]})),
        ),
    ]
}

fn fill(s: &str, ids: &[(&str, String)]) -> String {
    ids.iter().fold(s.to_owned(), |acc, (k, v)| acc.replace(&format!("{{{k}}}"), v))
}

fn fill_body(v: &Value, ids: &[(&str, String)]) -> Value {
    serde_json::from_str(&fill(&v.to_string(), ids)).unwrap()
}

/// A copy of `v` with its first field given a value of the wrong type.
fn wrong_type(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some((_, field)) = v.as_object_mut().and_then(|o| o.iter_mut().next()) {
        *field = match field {
            Value::String(_) => json!(12345),
            _ => json!("not-this-type"),
        };
    }
    v
}

fn assert_error(r: &Resp, status: StatusCode, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    assert!(r.body["code"].is_string() && r.body["message"].is_string(), "{what}: error body {}", r.body);
}

on_both_backends!(every_route_rejects_bad_input_cleanly, |srv| {
    let team = srv.create_team("Contract");
    let (_, driver) = srv.create_driver("dvr", &team, 8);
    let admin_id = srv.create_user("boss", Role::Admin, &[]);
    let admin = srv.login("boss").await;
    let dv = srv.login("dvr").await;
    // Something to lose: a stored sample and message, checked again at the end.
    let t = srv
        .post(
            "/api/telemetry",
            &dv,
            json!({"driverId": driver, "timestamp": timestamp_at(0.0), "data": sample_at(0.0, 60.0)}),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK);
    srv.post(&format!("/api/teams/{team}/messages"), &admin, json!({"content": "keep me"})).await;

    let ids = vec![("team", team.clone()), ("driver", driver.clone()), ("user", admin_id.clone())];
    let missing = vec![
        ("team", "no-such-team".to_owned()),
        ("driver", "no-such-driver".to_owned()),
        ("user", "no-such-user".to_owned()),
        ("session", "no-such-session".to_owned()),
        ("lap", "no-such-lap".to_owned()),
        ("message", "no-such-message".to_owned()),
        ("handoff", "no-such-handoff".to_owned()),
    ];

    for (method, template, body) in routes() {
        let what = format!("{method} {template}");
        // No token: 401 everywhere.
        let path = fill(template, &missing);
        let r = srv.send(method, &path, None, body.as_ref().map(|b| fill_body(b, &ids))).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, &format!("{what} without token"));

        // Unknown ids: 404 (admins see every team, so the id check is what answers).
        if template.contains('{') {
            let r = srv.send(method, &path, Some(&admin), body.as_ref().map(|b| fill_body(b, &ids))).await;
            assert!(
                r.status == StatusCode::NOT_FOUND || r.status == StatusCode::UNPROCESSABLE_ENTITY,
                "{what} with unknown ids: {} {}",
                r.status,
                r.body
            );
            assert!(r.body["code"].is_string());
        }

        let Some(body) = body else { continue };
        let path = fill(template, &ids);
        let r = srv.send_raw(method, &path, Some(&admin), Some("{,"), "application/json").await;
        assert_error(&r, StatusCode::BAD_REQUEST, &format!("{what} malformed JSON"));
        assert_eq!(r.body["code"], "invalid_json", "{what}: {}", r.body);
        let r = srv.send(method, &path, Some(&admin), Some(wrong_type(&fill_body(&body, &ids)))).await;
        assert!(r.status.is_client_error(), "{what} wrong type: {} {}", r.status, r.body);
        assert!(r.body["code"].is_string());
        let r = srv.send(method, &path, Some(&admin), Some(json!([1, 2, 3]))).await;
        assert_error(&r, StatusCode::BAD_REQUEST, &format!("{what} array body"));
        if method != "PATCH" {
            let r = srv.send(method, &path, Some(&admin), Some(json!({}))).await;
            assert_error(&r, StatusCode::BAD_REQUEST, &format!("{what} missing fields"));
            assert!(r.body["message"].as_str().unwrap().contains("missing field"), "{what}: {}", r.body);
        }
        let r = srv
            .send_raw(method, &path, Some(&admin), Some("name=x"), "application/x-www-form-urlencoded")
            .await;
        assert_error(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE, &format!("{what} form body"));
    }

    // Telemetry values out of range are named.
    let mut sample = sample_at(0.0, 60.0);
    sample["throttle"] = json!(250.0);
    let r = srv
        .post(
            "/api/telemetry",
            &dv,
            json!({"driverId": driver, "timestamp": timestamp_at(0.1), "data": sample}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "throttle out of range");
    assert!(r.body["message"].as_str().unwrap().contains("throttle"));
    let r = srv
        .post(
            "/api/telemetry",
            &dv,
            json!({"driverId": driver, "timestamp": "yesterday", "data": sample_at(0.0, 60.0)}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad timestamp");
    let r = srv.get("/api/teams/x/laps?limit=lots", &admin).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad query");
    let r = srv.send("DELETE", "/api/teams", Some(&admin), None).await;
    assert!(r.status == StatusCode::NOT_FOUND || r.status == StatusCode::METHOD_NOT_ALLOWED, "{}", r.status);
    assert!(r.body["code"].is_string());

    // Nothing stored was lost, and the server still serves.
    let latest = srv.get(&format!("/api/drivers/{driver}/telemetry/latest"), &admin).await;
    assert_eq!(latest.status, StatusCode::OK);
    let msgs = srv.get(&format!("/api/teams/{team}/messages"), &admin).await;
    assert!(msgs.body.as_array().unwrap().iter().any(|m| m["content"] == "keep me"));
    assert_eq!(srv.send("GET", "/readyz", None, None).await.status, StatusCode::OK);
    srv.stop().await;
});

#[actix_rt::test]
async fn openapi_document_is_committed_and_matches_the_routes() {
    let srv = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let served = srv.send("GET", "/api/openapi.json", None, None).await;
    assert_eq!(served.status, StatusCode::OK);
    let doc = pitbox_runtime::openapi::document();
    let committed_path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(committed_path, format!("{doc}\n")).unwrap();
    }
    let committed = std::fs::read_to_string(committed_path).unwrap_or_default();
    assert_eq!(
        committed.trim_end(),
        doc.trim_end(),
        "runtime/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test -p pitbox-runtime --test contract` and commit it"
    );

    // Every documented operation is routed (no "no route" 404), and every route is documented.
    let paths = served.body["paths"].as_object().unwrap();
    let mut documented = vec![];
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let r = srv.send(&method.to_uppercase(), &concrete, None, None).await;
            let unrouted = r.status == StatusCode::NOT_FOUND
                && r.body["message"].as_str().unwrap_or("").starts_with("no route");
            assert!(!unrouted, "{method} {path} is documented but not routed");
            documented.push(format!("{} {}", method.to_uppercase(), path));
        }
    }
    for (method, template, _) in routes() {
        let doc_path = template
            .replace("{user}", "{id}")
            .replace("{team}", "{id}")
            .replace("{driver}", "{id}")
            .replace("{session}", "{id}")
            .replace("{lap}", "{id}")
            .replace("{message}", "{id}")
            .replace("{handoff}/accept", "{id}/{action}")
            .replace("{handoff}", "{id}");
        assert!(
            documented.contains(&format!("{method} {doc_path}")),
            "{method} {doc_path} is routed but not documented"
        );
    }
    srv.stop().await;
}
