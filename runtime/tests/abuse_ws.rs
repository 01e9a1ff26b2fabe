//! The abuse table, socket part: what a hostile client can do to `/ws`, one row per case with the
//! outcome the server must give. Real sockets against a real server on `127.0.0.1:0`, raw frames
//! where the client codec would refuse to send them; every row runs on SQLite and PostgreSQL (one
//! server per backend, a fresh connection per row). Failures are collected and reported together,
//! so one run shows every row that does not hold.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_http::ws::OpCode;
use actix_web::http::StatusCode;
use base64::Engine;
use common::*;
use pitbox_schema::wire::Role;
use serde_json::{json, Value};

/// What the server did, as a row observes it.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// The server closed the connection with this code.
    Closed(u16),
    /// `authentication_result {success: true}`.
    Authenticated,
    /// `authentication_result {success: false, error.code}`, then a close with 1008.
    Refused(&'static str),
    /// `error {code}`, and the connection still serves.
    Answered(&'static str),
    /// A telemetry message was acknowledged.
    Acked,
    /// Past the per-user burst, team messages were refused with `rate_limited`, and no more were
    /// stored than the limiter lets through.
    RateLimited,
    /// Every frame stored exactly once (this many), however often it was sent.
    StoredOnce(u64),
    /// The other clients kept being served while one misbehaved.
    OthersServed,
    /// Anything else (what happened, for the failure report).
    Other(String),
}

/// What every row may use: the server and a team with a driver node and a member.
#[derive(Clone)]
struct Fx {
    srv: Rc<TestServer>,
    team: String,
    driver: String,
    node: String,
    watcher: String,
}

type Attack = fn(Fx) -> Pin<Box<dyn Future<Output = Outcome>>>;

struct Case {
    name: &'static str,
    attack: Attack,
    expect: Outcome,
}

/// The per-user rate (burst: twice that) of the abuse server.
const USER_RATE: u32 = 5;
const MAX_FRAME: usize = 1024 * 1024;

fn cases() -> Vec<Case> {
    use Outcome::*;
    vec![
        // ---- frame sizes
        Case {
            name: "one text frame over PITBOX_WS_MAX_FRAME_BYTES",
            attack: |fx| Box::pin(after_auth(fx, |c| Box::pin(c.send_text("x".repeat(MAX_FRAME + 1))))),
            expect: Closed(1009),
        },
        // ---- fragmentation (RFC 6455 §5.4)
        Case {
            name: "authenticate in two frames (text + continuation)",
            attack: |fx| Box::pin(fragmented_authenticate(fx)),
            expect: Authenticated,
        },
        Case {
            name: "telemetry batch in 40 small fragments",
            attack: |fx| Box::pin(fragmented_telemetry(fx)),
            expect: Acked,
        },
        Case {
            name: "3 MiB message in 64 KiB continuation frames",
            attack: |fx| {
                Box::pin(after_auth(fx, |c| {
                    Box::pin(async move {
                        let chunk = vec![b' '; 64 * 1024];
                        let parts: Vec<&[u8]> = (0..48).map(|_| chunk.as_slice()).collect();
                        c.send_fragments(&parts).await;
                    })
                }))
            },
            expect: Closed(1009),
        },
        Case {
            name: "continuation frame without a first frame",
            attack: |fx| {
                Box::pin(after_auth(fx, |c| Box::pin(c.send_raw_frame(b"{}", OpCode::Continue, true))))
            },
            expect: Closed(1002),
        },
        // ---- encoding and nesting
        Case {
            name: "text frame that is not UTF-8",
            attack: |fx| {
                Box::pin(after_auth(fx, |c| {
                    Box::pin(c.send_raw_frame(b"{\"type\":\"\xff\xfe\"}", OpCode::Text, true))
                }))
            },
            expect: Closed(1007),
        },
        Case {
            name: "text frame that is not UTF-8, before authenticating",
            attack: |fx| {
                Box::pin(async move {
                    let mut c = WsClient::connect(&fx.srv).await;
                    c.send_raw_frame(b"\xc3\x28", OpCode::Text, true).await;
                    closed(&mut c).await
                })
            },
            expect: Closed(1007),
        },
        Case {
            name: "UTF-8 sequence split wrongly across fragments",
            attack: |fx| {
                Box::pin(after_auth(fx, |c| Box::pin(c.send_fragments(&[b"{\"a\":\"\xe2\x82", b"\"}"]))))
            },
            expect: Closed(1007),
        },
        Case {
            name: "100k nested '[' (no stack overflow)",
            attack: |fx| Box::pin(answered(fx, "[".repeat(100_000))),
            expect: Answered("invalid_json"),
        },
        Case {
            name: "100k nested '[' inside data",
            attack: |fx| {
                Box::pin(answered(fx, format!(r#"{{"type":"subscribe","data":{}}}"#, "[".repeat(100_000))))
            },
            expect: Answered("invalid_json"),
        },
        Case {
            name: "100k nested objects",
            attack: |fx| Box::pin(answered(fx, "{\"a\":".repeat(100_000))),
            expect: Answered("invalid_json"),
        },
        Case {
            name: "a channel beyond f32 (tireWear 1e39, read as infinity)",
            attack: |fx| Box::pin(beyond_f32(fx)),
            expect: Answered("invalid_field"),
        },
        // ---- before authenticating
        Case {
            name: "binary frame before authenticate",
            attack: |fx| {
                Box::pin(async move {
                    let mut c = WsClient::connect(&fx.srv).await;
                    c.send_raw_frame(&[0, 1, 2], OpCode::Binary, true).await;
                    closed(&mut c).await
                })
            },
            expect: Closed(1008),
        },
        Case {
            name: "authenticate without a token",
            attack: |fx| Box::pin(authenticate_raw(fx, json!({"clientType": "driver"}))),
            expect: Refused("invalid_field"),
        },
        // ---- forged tokens
        Case {
            name: "token signed with another key",
            attack: |fx| Box::pin(forged(fx, Forgery::WrongKey)),
            expect: Refused("token_invalid"),
        },
        Case {
            name: "token with alg none",
            attack: |fx| Box::pin(forged(fx, Forgery::AlgNone)),
            expect: Refused("token_invalid"),
        },
        Case {
            name: "token with its claims swapped (role admin), signature kept",
            attack: |fx| Box::pin(forged(fx, Forgery::SwappedClaims)),
            expect: Refused("token_invalid"),
        },
        Case {
            name: "expired token replayed",
            attack: |fx| Box::pin(forged(fx, Forgery::Expired)),
            expect: Refused("token_expired"),
        },
        // ---- floods
        Case {
            name: "1000 send_team_message as fast as possible",
            attack: |fx| Box::pin(team_message_flood(fx)),
            expect: RateLimited,
        },
        Case {
            name: "telemetry flood: 3000 frames, every one sent twice",
            attack: |fx| Box::pin(telemetry_flood(fx)),
            expect: StoredOnce(3000),
        },
        // ---- idle and slow
        Case {
            name: "idle connection that never authenticates",
            attack: |fx| {
                Box::pin(async move {
                    let started = Instant::now();
                    let mut c = WsClient::connect(&fx.srv).await;
                    let outcome = closed(&mut c).await;
                    if started.elapsed() > Duration::from_secs(5) {
                        return Other(format!("closed only after {:?}", started.elapsed()));
                    }
                    outcome
                })
            },
            expect: Closed(1008),
        },
        Case {
            name: "dashboard that never reads while a node streams and messages fan out",
            attack: |fx| Box::pin(slow_reader(fx)),
            expect: OthersServed,
        },
    ]
}

/// Waits for the close and says with which code.
async fn closed(c: &mut WsClient) -> Outcome {
    match c.close_code().await {
        Some(code) => Outcome::Closed(code),
        None => Outcome::Other("no close frame".into()),
    }
}

/// Authenticates as the driver node, runs `attack`, and reports how the connection ended.
async fn after_auth(
    fx: Fx,
    attack: for<'a> fn(&'a mut WsClient) -> Pin<Box<dyn Future<Output = ()> + 'a>>,
) -> Outcome {
    let mut c = WsClient::login(&fx.srv, &fx.node, "driver_node").await;
    attack(&mut c).await;
    closed(&mut c).await
}

/// Sends `text` after authenticating: the `error` code it got, if the connection still serves.
async fn answered(fx: Fx, text: String) -> Outcome {
    let mut c = WsClient::login(&fx.srv, &fx.watcher, "dashboard").await;
    c.send_text(text).await;
    let Some(e) = c.recv_type("error").await else { return closed(&mut c).await };
    // Still serving: a second authenticate is refused, not ignored.
    c.send(json!({"type": "authenticate", "id": "again", "data": {"token": fx.watcher}})).await;
    match c.recv_type("error").await {
        Some(again) if again["id"] == "again" => code_of(&e),
        _ => Outcome::Other(format!("connection stopped serving after {e}")),
    }
}

/// Found by fuzzing: a number too large for an f32 reads as infinity, and was stored.
async fn beyond_f32(fx: Fx) -> Outcome {
    let mut c = WsClient::login(&fx.srv, &fx.node, "driver_node").await;
    let mut frame = frame_at(1, 0.1, 90.0);
    frame["tireWear"]["frontLeft"] = json!(1e39);
    c.send(json!({"type": "telemetry_batch", "data": {"driverId": fx.driver, "streamId": "f32", "frames": [frame]}}))
        .await;
    match c.recv_type("error").await {
        Some(e) if e["data"]["message"].as_str().is_some_and(|m| m.contains("tireWear")) => code_of(&e),
        Some(e) => Outcome::Other(e.to_string()),
        None => closed(&mut c).await,
    }
}

fn code_of(e: &Value) -> Outcome {
    let code = e["data"]["code"].as_str().unwrap_or_default();
    for known in ["invalid_json", "invalid_field", "unknown_message_type", "bad_request", "rate_limited"] {
        if code == known {
            return Outcome::Answered(known);
        }
    }
    Outcome::Other(e.to_string())
}

async fn fragmented_authenticate(fx: Fx) -> Outcome {
    let mut c = WsClient::connect(&fx.srv).await;
    let msg = json!({"type": "authenticate", "data": {"token": fx.watcher, "clientType": "dashboard", "version": "1"}})
        .to_string();
    let (a, b) = msg.as_bytes().split_at(msg.len() / 2);
    c.send_fragments(&[a, b]).await;
    match c.recv_type("authentication_result").await {
        Some(r) if r["data"]["success"] == true => Outcome::Authenticated,
        Some(r) => Outcome::Other(r.to_string()),
        None => closed(&mut c).await,
    }
}

async fn fragmented_telemetry(fx: Fx) -> Outcome {
    let mut c = WsClient::login(&fx.srv, &fx.node, "driver_node").await;
    let msg = json!({"type": "telemetry_batch", "data": {"driverId": fx.driver, "streamId": "frag",
        "frames": [frame_at(1, 0.1, 90.0), frame_at(2, 0.2, 90.0)]}})
    .to_string();
    let parts: Vec<&[u8]> = msg.as_bytes().chunks(msg.len().div_ceil(40)).collect();
    c.send_fragments(&parts).await;
    match c.recv_type("ack").await {
        Some(a) if a["data"]["seq"] == 2 => Outcome::Acked,
        Some(a) => Outcome::Other(a.to_string()),
        None => closed(&mut c).await,
    }
}

/// Sends `authenticate` with this `data`; reports the refusal and checks the close that follows.
async fn authenticate_raw(fx: Fx, data: Value) -> Outcome {
    let mut c = WsClient::connect(&fx.srv).await;
    c.send(json!({"type": "authenticate", "data": data})).await;
    let Some(r) = c.recv_type("authentication_result").await else { return closed(&mut c).await };
    if r["data"]["success"] != false {
        return Outcome::Other(r.to_string());
    }
    if closed(&mut c).await != Outcome::Closed(1008) {
        return Outcome::Other(format!("refused ({r}) but not closed with 1008"));
    }
    match r["data"]["error"]["code"].as_str() {
        Some("invalid_field") => Outcome::Refused("invalid_field"),
        Some("token_invalid") => Outcome::Refused("token_invalid"),
        Some("token_expired") => Outcome::Refused("token_expired"),
        _ => Outcome::Other(r.to_string()),
    }
}

enum Forgery {
    WrongKey,
    AlgNone,
    SwappedClaims,
    Expired,
}

async fn forged(fx: Fx, how: Forgery) -> Outcome {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = fx.node.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    let sign = |claims: &Value, key: &[u8]| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(key),
        )
        .unwrap()
    };
    let token = match how {
        Forgery::WrongKey => sign(&claims, b"not-the-server-key-0123456789abcdef"),
        Forgery::AlgNone => {
            claims["role"] = json!("admin");
            let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
            format!("{header}.{}.", b64.encode(claims.to_string()))
        }
        Forgery::SwappedClaims => {
            claims["role"] = json!("admin");
            claims["teams"] = json!([]);
            format!("{}.{}.{}", parts[0], b64.encode(claims.to_string()), parts[2])
        }
        Forgery::Expired => {
            let now = chrono::Utc::now().timestamp();
            claims["iat"] = json!(now - 3600);
            claims["exp"] = json!(now - 1800);
            sign(&claims, TEST_SECRET.as_bytes())
        }
    };
    authenticate_raw(fx, json!({"token": token, "clientType": "driver_node", "version": "1"})).await
}

async fn team_message_flood(fx: Fx) -> Outcome {
    // A user of its own, so that no other row shares its bucket.
    fx.srv.create_user("flooder", Role::Team, &[&fx.team]);
    let token = fx.srv.login("flooder").await;
    let mut c = WsClient::login(&fx.srv, &token, "dashboard").await;
    let started = Instant::now();
    for i in 0..1000 {
        c.send(json!({"type": "send_team_message", "id": format!("f{i}"),
            "data": {"teamId": fx.team, "content": format!("flood {i}")}}))
            .await;
    }
    // Read every answer until the server has said all it will (it closes a client that keeps
    // ignoring refusals).
    let (mut stored_answers, mut limited) = (0u64, 0u64);
    while let Some(m) = c.recv_within(Duration::from_secs(3)).await {
        let own = m["id"].as_str().is_some_and(|id| id.starts_with('f'));
        match m["type"].as_str() {
            Some("team_message") if own => stored_answers += 1,
            Some("error") if m["data"]["code"] == "rate_limited" => limited += 1,
            Some("error") => return Outcome::Other(m.to_string()),
            _ => {}
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stored = fx.srv.get(&format!("/api/teams/{}/messages?limit=1000", fx.team), &fx.watcher).await;
    let stored = stored.body.as_array().map_or(0, |a| {
        a.iter().filter(|m| m["content"].as_str().is_some_and(|c| c.starts_with("flood"))).count()
    }) as u64;
    let allowed = 2 * u64::from(USER_RATE) + (elapsed * f64::from(USER_RATE)).ceil() as u64;
    // The answers of stored messages may be cut short by that close; the store tells.
    if limited == 0 || stored > allowed || stored_answers > stored {
        return Outcome::Other(format!(
            "stored {stored} (answered {stored_answers}, allowed {allowed}), refused {limited}"
        ));
    }
    Outcome::RateLimited
}

async fn telemetry_flood(fx: Fx) -> Outcome {
    let count = |driver: String| {
        fx.srv
            .state
            .db
            .run_blocking(move |c| Ok(pitbox_schema::db::store::telemetry::count_samples(c, &driver)?))
            .unwrap() as u64
    };
    let before = count(fx.driver.clone());
    let mut c = WsClient::login(&fx.srv, &fx.node, "driver_node").await;
    for _ in 0..2 {
        stream(&mut c, &fx.driver, 10_000, 3000, 90.0, 100, false).await;
    }
    let errors = await_ack(&mut c, 12_999).await;
    if !errors.is_empty() {
        return Outcome::Other(format!("errors: {errors:?}"));
    }
    Outcome::StoredOnce(count(fx.driver.clone()) - before)
}

async fn slow_reader(fx: Fx) -> Outcome {
    let mut stalled = WsClient::login(&fx.srv, &fx.watcher, "dashboard").await;
    stalled.send(json!({"type": "subscribe", "data": {"teamId": fx.team, "driverId": fx.driver}})).await;
    stalled.recv_type("subscribed").await.unwrap();
    let mut healthy = WsClient::login(&fx.srv, &fx.watcher, "dashboard").await;
    healthy.send(json!({"type": "subscribe", "data": {"teamId": fx.team, "driverId": fx.driver}})).await;
    healthy.recv_type("subscribed").await.unwrap();
    let healthy_task = actix_rt::spawn(collect(healthy, Instant::now() + Duration::from_millis(2500)));
    let mut node = WsClient::login(&fx.srv, &fx.node, "driver_node").await;
    // Far faster than real time, with team messages pushed through REST meanwhile.
    for chunk in 0..6u64 {
        stream(&mut node, &fx.driver, 20_000 + chunk * 500, 500, 90.0, 100, false).await;
        let r = fx
            .srv
            .post(&format!("/api/teams/{}/messages", fx.team), &fx.node, json!({"content": "pit"}))
            .await;
        if r.status != StatusCode::CREATED && r.status != StatusCode::OK {
            return Outcome::Other(format!("message refused: {} {}", r.status, r.body));
        }
    }
    await_ack(&mut node, 22_999).await;
    let (samples, events) = healthy_task.await.unwrap();
    let newest = samples.last().and_then(|s| s.1["data"]["seq"].as_u64());
    let messages = events.iter().filter(|e| e["type"] == "team_message").count();
    drop(stalled);
    if newest == Some(22_999) && messages == 6 {
        Outcome::OthersServed
    } else {
        Outcome::Other(format!("healthy dashboard: newest {newest:?}, {messages} messages"))
    }
}

on_both_backends!(
    abuse_table,
    |c| {
        c.ws_max_frame_bytes = MAX_FRAME;
        c.ws_auth_timeout = Duration::from_secs(1);
        c.rate_limit_per_user = USER_RATE;
    },
    |srv| {
        let (team, driver, node, watcher) = setup_team(&srv).await;
        let fx = Fx { srv: Rc::new(srv), team, driver, node, watcher };
        let mut failed = vec![];
        for case in cases() {
            let started = Instant::now();
            let got = (case.attack)(fx.clone()).await;
            eprintln!("{:<80} {got:?} ({:.1?})", case.name, started.elapsed());
            if got != case.expect {
                failed.push(format!("{}: expected {:?}, got {got:?}", case.name, case.expect));
            }
        }
        let srv = Rc::try_unwrap(fx.srv).ok().expect("rows keep no server handle");
        srv.stop().await;
        assert!(failed.is_empty(), "abuse table:\n{}", failed.join("\n"));
    }
);
