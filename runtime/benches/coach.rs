//! Coach benchmark: lap end → `ai_coaching` on a dashboard socket, through the real runtime in this
//! process (SQLite) over loopback WebSockets. A synthetic driver's laps (brake-early and fuel-leak
//! faults) are sent up to just before each line; then the frames across the line (one second of
//! them) go out and the clock runs until the team's dashboard socket receives the coach's message
//! about that lap: lap assembly, storage, the engine, the push. Run twice: with the engine's own
//! text, and with every text phrased through an OpenAI-compatible stand-in (a local HTTP server
//! that echoes the findings, JSON replies). Prints p50/p99/max of each.
//!
//! `cargo bench -p pitbox-runtime --bench coach -- --laps 12`
//! (the engine alone, 60 Hz and 360 Hz laps: `cargo bench -p pitbox-coach --bench analysis`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use pitbox_driver::synthetic::{Fault, Synthetic, SyntheticConfig};
use pitbox_runtime::config::Config;
use pitbox_runtime::llm::LlmConfig;
use pitbox_runtime::server::{self, State};
use pitbox_schema::wire::{DriverRole, NewDriver, NewUser, Role};
use serde_json::{json, Value};

#[derive(Debug, Parser)]
struct Args {
    /// Laps measured (after the first, which has no reference).
    #[arg(long, default_value_t = 12)]
    laps: i32,
    #[arg(long, hide = true)]
    bench: bool,
}

type Socket = actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>;

fn user(state: &State, username: &str, role: Role, team: &str) -> String {
    let new = NewUser {
        username: username.into(),
        password: format!("{username}-password"),
        role,
        teams: vec![team.to_owned()],
    };
    state.db.run_blocking(|c| pitbox_runtime::routes::users::create_user(c, &new)).unwrap().id
}

async fn login(base: &str, username: &str) -> String {
    let mut r = awc::Client::new()
        .post(format!("{base}/api/auth/login"))
        .send_json(&json!({"username": username, "password": format!("{username}-password")}))
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    v["token"].as_str().unwrap().to_owned()
}

async fn connect(base: &str, token: &str, kind: &str) -> Socket {
    let (_, mut conn) =
        awc::Client::new().ws(format!("{base}/ws")).max_frame_size(1 << 24).connect().await.unwrap();
    conn.next().await;
    let auth = json!({"type": "authenticate", "data": {"token": token, "clientType": kind, "version": "bench",
        "track": "PitBox Ring", "car": "GT3"}});
    conn.send(awc::ws::Message::Text(auth.to_string().into())).await.unwrap();
    loop {
        if let Some(Ok(awc::ws::Frame::Text(t))) = conn.next().await {
            let v: Value = serde_json::from_slice(&t).unwrap();
            if v["type"] == "authentication_result" {
                assert_eq!(v["data"]["success"], true, "{v}");
                return conn;
            }
        }
    }
}

/// The next text message of type `t`, answering pings.
async fn next_of(conn: &mut Socket, t: &str) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), conn.next()).await.expect("a message within 60 s")
        {
            Some(Ok(awc::ws::Frame::Text(b))) => {
                let v: Value = serde_json::from_slice(&b).unwrap();
                if v["type"] == t {
                    return v;
                }
            }
            Some(Ok(awc::ws::Frame::Ping(p))) => conn.send(awc::ws::Message::Pong(p)).await.unwrap(),
            Some(Ok(_)) => {}
            other => panic!("socket ended: {other:?}"),
        }
    }
}

/// A chat-completions stand-in that answers with the findings it was given (JSON replies).
async fn stand_in() -> String {
    async fn completions(body: web::Json<Value>) -> HttpResponse {
        let text = body["messages"][1]["content"].as_str().unwrap_or_default().to_owned();
        HttpResponse::Ok().json(json!({
            "id": "chatcmpl-bench", "object": "chat.completion", "model": "stand-in",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140}
        }))
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let server = HttpServer::new(|| App::new().route("/v1/chat/completions", web::post().to(completions)))
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
    actix_rt::spawn(server);
    url
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted.get(((sorted.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN)
}

async fn run(laps: i32, llm: Option<LlmConfig>) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let mut config = Config::for_database(url).unwrap();
    config.rate_limit_per_ip = 100_000;
    config.rate_limit_per_user = 100_000;
    config.llm = llm;
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
    let uid = user(&state, "driver", Role::Driver, &team);
    let nd = NewDriver {
        name: "driver".into(),
        number: 7,
        role: DriverRole::Primary,
        avatar_url: None,
        user_id: Some(uid),
    };
    let driver = state
        .db
        .run_blocking(|c| Ok(pitbox_schema::db::store::drivers::create_driver(c, &team, &nd)??))
        .unwrap()
        .id;
    let mut dash = connect(&base, &login(&base, "engineer").await, "dashboard").await;
    let mut node = connect(&base, &login(&base, "driver").await, "driver_node").await;

    let mut car = Synthetic::with_config(SyntheticConfig {
        faults: vec![Fault::BrakeEarly { corner: 4, metres: 20.0 }],
        fuel_leak_l_per_lap: 0.8,
        ..SyntheticConfig::new(3)
    });
    let mut seq = 0u64;
    let mut frame = |car: &mut Synthetic| {
        let mut f = car.next_frame();
        seq += 1;
        f.seq = Some(seq);
        serde_json::to_value(&f).unwrap()
    };
    let mut pending: Vec<Value> = Vec::new();
    let mut out = Vec::new();
    for lap in 1..=laps + 1 {
        // Up to just before the line of `lap`, stored and acknowledged.
        loop {
            let f = frame(&mut car);
            let crossing = f["lap"].as_i64().unwrap() > i64::from(lap);
            pending.push(f);
            if crossing {
                break;
            }
        }
        let across = pending.split_off(pending.len() - 1);
        let last = pending.last().map(|f| f["seq"].as_u64().unwrap());
        for chunk in pending.chunks(300) {
            let msg = json!({"type": "telemetry_batch", "data": {"driverId": driver, "streamId": "bench", "frames": chunk}});
            node.send(awc::ws::Message::Text(msg.to_string().into())).await.unwrap();
        }
        if let Some(last) = last {
            loop {
                let a = next_of(&mut node, "ack").await;
                if a["data"]["seq"].as_u64().unwrap() >= last {
                    break;
                }
            }
        }
        // The line and one second after it: the lap ends here.
        let mut closing = across;
        closing.extend((0..59).map(|_| frame(&mut car)));
        let t0 = Instant::now();
        let msg = json!({"type": "telemetry_batch", "data": {"driverId": driver, "streamId": "bench", "frames": closing}});
        node.send(awc::ws::Message::Text(msg.to_string().into())).await.unwrap();
        pending = Vec::new();
        loop {
            let c = next_of(&mut dash, "ai_coaching").await;
            if c["data"]["lapNumber"].as_i64() == Some(i64::from(lap)) {
                if lap > 1 {
                    out.push(t0.elapsed().as_secs_f64() * 1000.0);
                }
                break;
            }
        }
    }
    out
}

fn report(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{name}: {} laps, lap end → ai_coaching on a dashboard socket: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or(f64::NAN)
    );
}

fn main() {
    let args = Args::parse();
    actix_rt::System::new().block_on(async move {
        let engine = run(args.laps, None).await;
        report("engine text", engine);
        let url = stand_in().await;
        let llm = LlmConfig { stream: false, ..LlmConfig::new(url, None, "stand-in") };
        let phrased = run(args.laps, Some(llm)).await;
        report("phrased through the LLM stand-in", phrased);
    });
}
