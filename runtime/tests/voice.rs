//! Voice through the real runtime (SQLite): a driver node's `voice_command` → the driver's
//! `VoiceChannel` → `voice_say` and its PCM clip to that node, `voice_exchange` to the team's
//! dashboards, team messages for `box_this_lap`; the REST clip route and its team scope; the
//! ElevenLabs client against a local stand-in that speaks its documented API, with the fallback
//! to espeak-ng; a restart of the voice channel.
//!
//! Prints figures: text → first audio byte (espeak-ng, the ElevenLabs stand-in), and
//! command → `voice_say` latency.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use common::*;
use pitbox_runtime::voice::{espeak, ElevenLabs, ElevenLabsConfig, Tts, TtsError, VoiceConfig};
use pitbox_schema::wire::media::{Codec, MediaHeader};
use pitbox_schema::wire::{Role, VOICE_STREAM};
use serde_json::{json, Value};

const LAP: f64 = 90.0;

fn command(id: &str, cmd: &str, transcript: &str) -> Value {
    json!({"type": "voice_command", "data": {
        "id": id, "command": cmd, "transcript": transcript, "confidence": 0.87,
        "heardAt": "2026-11-30T12:00:00Z"
    }})
}

/// The `voice_say` answering `id` and the binary frame after it.
async fn say_for(node: &mut WsClient, id: &str) -> (Value, Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match node.recv_any(left).await.unwrap_or_else(|| panic!("no voice_say for {id}")) {
            Incoming::Text(m) if m["type"] == "voice_say" && m["data"]["replyTo"] == id => {
                let left = deadline.saturating_duration_since(Instant::now());
                match node.recv_any(left).await {
                    Some(Incoming::Binary(b)) => return (m, b),
                    other => panic!("expected the clip after voice_say, got {other:?}"),
                }
            }
            Incoming::Text(m) if m["type"] == "error" => panic!("error instead of an answer: {m}"),
            _ => {}
        }
    }
}

fn check_clip(say: &Value, frame: &[u8]) {
    let audio = &say["data"]["audio"];
    let (h, payload_at) = MediaHeader::decode(frame).unwrap();
    assert_eq!(h.codec, Codec::Pcm16);
    assert_eq!(h.stream, VOICE_STREAM);
    assert_eq!(u64::from(h.sequence), audio["sequence"].as_u64().unwrap());
    assert_eq!((h.width, h.height), (0, 0));
    let pcm = &frame[payload_at..];
    assert_eq!(pcm.len() % 2, 0);
    let samples = (pcm.len() / 2) as u64;
    let (rate, ms) = (audio["sampleRate"].as_u64().unwrap(), audio["durationMs"].as_u64().unwrap());
    assert!(ms > 200, "a spoken answer lasts a while: {ms} ms");
    assert!(samples * 1000 / rate == ms, "{samples} samples at {rate} Hz is not {ms} ms");
    // Not silence.
    let peak = pcm.chunks_exact(2).map(|s| i16::from_le_bytes([s[0], s[1]]).unsigned_abs()).max().unwrap();
    assert!(peak > 1000, "peak {peak}");
}

#[actix_rt::test]
async fn a_spoken_command_is_answered_from_live_telemetry_with_audio() {
    let srv = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let (_team, driver, node_token, watcher) = setup_team(&srv).await;
    let mut node = WsClient::login(&srv, &node_token, "driver_node").await;
    let mut dash = WsClient::login(&srv, &watcher, "dashboard").await;
    // Following the team before anything is said.
    dash.send(json!({"type": "subscribe", "data": {"teamId": _team}})).await;
    dash.recv_type("subscribed").await.unwrap();
    stream(&mut node, &driver, 1, 120, LAP, 60, false).await;
    await_ack(&mut node, 120).await;
    // The fuel of the last frame the node sent (`sample_at`).
    let fuel = 60.0 - (120.0 / 60.0) / LAP * 2.5;
    let mut latencies = vec![];
    for k in 0..5 {
        let id = format!("c{k}");
        let t0 = Instant::now();
        node.send(command(&id, "fuel_left", "how much fuel")).await;
        let (say, frame) = say_for(&mut node, &id).await;
        latencies.push(t0.elapsed());
        assert_eq!(say["data"]["kind"], "answer");
        assert_eq!(say["data"]["text"], format!("Fuel {fuel:.1} litres"), "{say}");
        assert!(say["data"]["expiresAt"].is_string());
        check_clip(&say, &frame);
        assert_eq!(say["data"]["audio"]["engine"], "espeak-ng");
    }
    let ex = dash.recv_type("voice_exchange").await.unwrap();
    assert_eq!(ex["data"]["driverId"], driver);
    assert_eq!(ex["data"]["transcript"], "how much fuel");
    assert!((ex["data"]["confidence"].as_f64().unwrap() - 0.87).abs() < 1e-6);
    assert_eq!(ex["data"]["answer"], format!("Fuel {fuel:.1} litres"));
    // Data that is not there is said so.
    node.send(command("g1", "gap_behind", "gap behind")).await;
    let (say, _) = say_for(&mut node, "g1").await;
    assert_eq!(say["data"]["text"], "Nobody behind", "car at P3 of two classified cars");
    node.send(command("p1", "position", "position")).await;
    let (say, _) = say_for(&mut node, "p1").await;
    assert_eq!(say["data"]["text"], "P3");
    // The dashboard hears no audio: its next messages are JSON only, and no voice_say.
    // The first one includes espeak-ng's run; the rest come from the clip cache.
    let first = latencies[0];
    let mut rest = latencies[1..].to_vec();
    rest.sort();
    println!(
        "FIGURE voice command -> voice_say + clip (espeak-ng, loopback, debug build): first {first:?}, cached median {:?}",
        rest[rest.len() / 2]
    );
    let counts =
        srv.state.system.registry().get(&format!("/teams/{_team}/drivers/{driver}/voice")).unwrap().gauges();
    assert_eq!(counts.get("commands"), Some(&7));
    // The gauges are set right after the push goes out: wait for them.
    let deadline = Instant::now() + Duration::from_secs(5);
    while srv
        .state
        .system
        .registry()
        .get(&format!("/teams/{_team}/drivers/{driver}/voice"))
        .unwrap()
        .gauges()
        .get("spoken")
        != Some(&7)
    {
        assert!(Instant::now() < deadline, "spoken never reached 7");
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
    srv.stop().await;
}

#[actix_rt::test]
async fn box_this_lap_reaches_the_pit_wall_and_urgent_messages_reach_the_driver() {
    let srv = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let (team, _driver, node_token, watcher) = setup_team(&srv).await;
    let mut node = WsClient::login(&srv, &node_token, "driver_node").await;
    let mut dash = WsClient::login(&srv, &watcher, "dashboard").await;
    dash.send(json!({"type": "subscribe", "data": {"teamId": team}})).await;
    dash.recv_type("subscribed").await.unwrap();
    node.send(command("b1", "box_this_lap", "box this lap")).await;
    let (say, frame) = say_for(&mut node, "b1").await;
    assert_eq!(say["data"]["text"], "Box this lap, copy. Team told");
    assert_eq!(say["data"]["priority"], "urgent");
    check_clip(&say, &frame);
    let msg = dash.recv_type("team_message").await.unwrap();
    assert_eq!(msg["data"]["priority"], "urgent");
    assert!(msg["data"]["content"].as_str().unwrap().starts_with("Box this lap"), "{msg}");
    // Stored with the team's messages.
    let listed = srv.get(&format!("/api/teams/{team}/messages"), &watcher).await;
    assert!(listed.body.as_array().unwrap().iter().any(|m| m["id"] == msg["data"]["id"]));
    // tell_team passes the text on.
    node.send(json!({"type": "voice_command", "data": {"id": "t1", "command": "tell_team",
        "transcript": "tell the team the rear is loose", "confidence": 0.8, "text": "the rear is loose",
        "heardAt": "2026-11-30T12:00:00Z"}}))
        .await;
    let (say, _) = say_for(&mut node, "t1").await;
    assert_eq!(say["data"]["text"], "Copy, team told");
    let msg = dash.recv_type("team_message").await.unwrap();
    assert!(msg["data"]["content"].as_str().unwrap().ends_with("the rear is loose"));
    // An urgent message from the pit wall is spoken to the driver as an alert.
    let r = srv
        .post(
            &format!("/api/teams/{team}/messages"),
            &watcher,
            json!({"content": "Yellow flag T3", "priority": "urgent"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let m = node.recv_within(deadline.saturating_duration_since(Instant::now())).await.expect("alert");
        if m["type"] == "voice_say" && m["data"]["kind"] == "alert" {
            assert!(m["data"]["text"].as_str().unwrap().contains("Yellow flag T3"), "{m}");
            assert_eq!(m["data"]["priority"], "urgent");
            break;
        }
    }
    srv.stop().await;
}

#[actix_rt::test]
async fn a_bad_command_gets_a_clear_error_and_the_socket_goes_on() {
    let srv = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let (_team, _driver, node_token, watcher) = setup_team(&srv).await;
    let mut node = WsClient::login(&srv, &node_token, "driver_node").await;
    let cases = [
        (
            json!({"id": "x1", "command": "fuel_left", "transcript": "f", "confidence": 2.0, "heardAt": "2026-11-30T12:00:00Z"}),
            "confidence",
        ),
        (
            json!({"id": "x2", "command": "tell_team", "transcript": "tell", "confidence": 0.5, "heardAt": "2026-11-30T12:00:00Z"}),
            "text",
        ),
        (
            json!({"id": "", "command": "position", "transcript": "p", "confidence": 0.5, "heardAt": "2026-11-30T12:00:00Z"}),
            "id",
        ),
        (
            json!({"id": "x4", "command": "launch_rockets", "transcript": "p", "confidence": 0.5, "heardAt": "2026-11-30T12:00:00Z"}),
            "unknown variant `launch_rockets`, expected one of `fuel_left`",
        ),
    ];
    for (data, field) in cases {
        node.send(json!({"type": "voice_command", "id": "req", "data": data})).await;
        let e = node.recv_type("error").await.unwrap();
        let msg = e["data"]["message"].as_str().unwrap();
        assert!(msg.contains(field), "{field}: {e}");
    }
    // A dashboard may not send one.
    let mut dash = WsClient::login(&srv, &watcher, "dashboard").await;
    dash.send(command("d1", "position", "position")).await;
    let e = dash.recv_type("error").await.unwrap();
    assert_eq!(e["data"]["code"], "forbidden");
    // The node's socket still works.
    node.send(command("ok", "best_lap", "best lap")).await;
    let (say, _) = say_for(&mut node, "ok").await;
    assert_eq!(say["data"]["text"], "No best lap yet");
    srv.stop().await;
}

#[actix_rt::test]
async fn the_voice_channel_restarts_keeping_its_state() {
    let srv = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let (team, driver, node_token, _watcher) = setup_team(&srv).await;
    let mut node = WsClient::login(&srv, &node_token, "driver_node").await;
    node.send(command("q1", "quiet", "quiet please")).await;
    let (say, _) = say_for(&mut node, "q1").await;
    assert_eq!(say["data"]["text"], "Copy, quiet. Urgent calls only");
    let path = format!("/teams/{team}/drivers/{driver}/voice");
    let stats = srv.state.system.registry().get(&path).unwrap();
    assert!(srv.state.system.control(&path, pitbox_actors::supervision::Control::Panic));
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.restarts() == 0 {
        assert!(Instant::now() < deadline, "voice channel never restarted");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    // Commands during the restart get an error; once back, answers come again, and what was
    // said before is still there to repeat.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut k = 0;
    let say = loop {
        assert!(Instant::now() < deadline, "voice channel never served again");
        k += 1;
        let id = format!("r{k}");
        node.send(command(&id, "repeat_that", "say again")).await;
        let m = node.recv().await.unwrap();
        match m["type"].as_str() {
            Some("error") => continue,
            Some("voice_say") if m["data"]["replyTo"] == id => break m,
            _ => {
                let (m, _) = say_for(&mut node, &id).await;
                break m;
            }
        }
    };
    assert_eq!(say["data"]["text"], "Copy, quiet. Urgent calls only");
    let g = srv.state.system.registry().get(&path).unwrap().gauges();
    assert_eq!(g.get("quiet"), Some(&1), "quiet survived the restart: {g:?}");
    srv.stop().await;
}

#[actix_rt::test]
async fn synthesized_clips_are_for_the_team_only() {
    let srv = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let (_team, _driver, _node, watcher) = setup_team(&srv).await;
    let other_team = srv.create_team("Other Racing");
    srv.create_user("stranger", Role::Team, &[&other_team]);
    let stranger = srv.login("stranger").await;
    let r = srv
        .post(
            "/api/voice/synthesize",
            &watcher,
            json!({"text": "Box box", "voiceId": "en-us", "speed": 1.2, "priority": "high"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let url = r.body["audioUrl"].as_str().unwrap().to_owned();
    assert!(r.body["duration"].as_f64().unwrap() > 0.2);
    let mut got = srv.client.get(format!("{}{url}", srv.base)).bearer_auth(&watcher).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers().get("content-type").unwrap(), "audio/wav");
    let wav = got.body().await.unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    let (pcm, rate) = pitbox_runtime::voice::wav_to_pcm16(&wav).unwrap();
    let secs = pcm.len() as f64 / 2.0 / f64::from(rate);
    assert!((secs - r.body["duration"].as_f64().unwrap()).abs() < 0.01);
    assert_eq!(srv.get(&url, &stranger).await.status, 404);
    assert_eq!(srv.get("/api/voice/clips/nothing.wav", &watcher).await.status, 404);
    for (body, field) in [
        (json!({"text": "x", "speed": 9.0}), "speed"),
        (json!({"text": "   "}), "text"),
        (json!({"text": "x", "voiceId": "../etc"}), "voiceId"),
        (json!({"text": "x", "voiceId": "nonexistent"}), "voiceId"),
        // The JSON decoder's message: the bad value and the priorities there are.
        (json!({"text": "x", "priority": "whenever"}), "unknown variant `whenever`, expected one of `low`"),
    ] {
        let r = srv.post("/api/voice/synthesize", &watcher, body.clone()).await;
        assert!(r.status.is_client_error(), "{body}: {}", r.status);
        assert!(r.body["message"].as_str().unwrap_or_default().contains(field), "{body}: {:?}", r.body);
    }
    srv.stop().await;
}

// ---------------------------------------------------------------- ElevenLabs stand-in

/// A local server speaking ElevenLabs' documented text-to-speech API: `xi-api-key` `good` gets
/// PCM (a tone, 16 kHz, 60 ms per character, sent in 4 KiB chunks on `/stream`), `busy` gets 429,
/// any other key 401, a body without `text` or `model_id` 422.
async fn elevenlabs_stand_in() -> (String, actix_web::dev::ServerHandle) {
    async fn tts(req: HttpRequest, body: web::Bytes) -> HttpResponse {
        let key = req.headers().get("xi-api-key").and_then(|v| v.to_str().ok()).unwrap_or("");
        if key == "busy" {
            return HttpResponse::TooManyRequests()
                .json(json!({"detail": {"status": "too_many_concurrent_requests",
                "message": "Too many concurrent requests for your plan"}}));
        }
        if key != "good" {
            return HttpResponse::Unauthorized()
                .json(json!({"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}));
        }
        if !req.query_string().contains("output_format=pcm_16000") {
            return HttpResponse::UnprocessableEntity()
                .json(json!({"detail": [{"loc": ["query", "output_format"], "msg": "expected pcm_16000", "type": "value_error"}]}));
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let text = v["text"].as_str().unwrap_or("");
        if text.is_empty() || v["model_id"].as_str().is_none() {
            return HttpResponse::UnprocessableEntity().json(json!({"detail": [{"loc": ["body", "text"],
                "msg": "field required", "type": "value_error.missing"}]}));
        }
        let n = text.chars().count() * 960;
        let pcm: Vec<u8> = (0..n)
            .flat_map(|i| {
                (((i as f64 * 440.0 * std::f64::consts::TAU / 16000.0).sin() * 8000.0) as i16).to_le_bytes()
            })
            .collect();
        let chunks: Vec<Result<web::Bytes, actix_web::Error>> =
            pcm.chunks(4096).map(|c| Ok(web::Bytes::copy_from_slice(c))).collect();
        HttpResponse::Ok().content_type("audio/pcm").streaming(futures_util::stream::iter(chunks))
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(|| {
        App::new()
            .route("/v1/text-to-speech/{voice}", web::post().to(tts))
            .route("/v1/text-to-speech/{voice}/stream", web::post().to(tts))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (base, handle)
}

fn el(base: &str, key: &str) -> ElevenLabsConfig {
    ElevenLabsConfig {
        base_url: base.into(),
        api_key: key.into(),
        voice_id: "voice1".into(),
        model: "eleven_flash_v2_5".into(),
    }
}

#[actix_rt::test]
async fn elevenlabs_client_against_a_stand_in_with_fallback_to_espeak() {
    let (base, handle) = elevenlabs_stand_in().await;
    let good = ElevenLabs::new(el(&base, "good")).unwrap();
    for stream in [false, true] {
        let clip = good.synthesize("Box this lap", None, Some(1.0), stream, || {}).await.unwrap();
        assert_eq!((clip.sample_rate, clip.engine.as_str()), (16_000, "elevenlabs"));
        assert_eq!(clip.pcm.len(), 12 * 960 * 2);
        assert_eq!(clip.duration_ms(), 720);
    }
    let e = ElevenLabs::new(el(&base, "wrong")).unwrap().synthesize("hi", None, None, true, || {}).await;
    assert_eq!(e, Err(TtsError::Unauthorized("invalid_api_key: Invalid API key".into())));
    let e = ElevenLabs::new(el(&base, "busy")).unwrap().synthesize("hi", None, None, true, || {}).await;
    assert!(
        matches!(&e, Err(TtsError::RateLimited(m)) if m.contains("too_many_concurrent_requests")),
        "{e:?}"
    );
    let e = good.synthesize("", None, None, false, || {}).await;
    assert_eq!(e, Err(TtsError::Invalid("body.text: field required".into())));
    let e = ElevenLabs::new(el("http://127.0.0.1:1", "good"))
        .unwrap()
        .synthesize("hi", None, None, true, || {})
        .await;
    assert!(matches!(e, Err(TtsError::Network(_))), "{e:?}");

    // Through Tts: ElevenLabs when it works, espeak-ng (counted) when it does not.
    let tts =
        Tts::new(VoiceConfig { elevenlabs: Some(el(&base, "good")), ..VoiceConfig::default() }).unwrap();
    assert_eq!(tts.speak("Gap ahead 1.2 seconds", None, None).await.unwrap().engine, "elevenlabs");
    assert_eq!(tts.fallbacks(), 0);
    let tts =
        Tts::new(VoiceConfig { elevenlabs: Some(el(&base, "wrong")), ..VoiceConfig::default() }).unwrap();
    let clip = tts.speak("Gap ahead 1.2 seconds", Some("voice1"), None).await.unwrap();
    assert_eq!((clip.engine.as_str(), tts.fallbacks()), ("espeak-ng", 1));
    assert_eq!(clip.sample_rate, 22_050);
    // Cached: the same text again costs nothing more from espeak-ng, but ElevenLabs is tried first.
    let t = Instant::now();
    tts.speak("Gap ahead 1.2 seconds", Some("voice1"), None).await.unwrap();
    assert_eq!(tts.fallbacks(), 2);
    let cached = t.elapsed();

    // Figures: text → first audio byte.
    let text = "Fuel 23.4 litres, 8.5 laps";
    let mut el_first = vec![];
    for _ in 0..10 {
        let t = Instant::now();
        let mut first = None;
        good.synthesize(text, None, None, true, || first = Some(t.elapsed())).await.unwrap();
        el_first.push(first.unwrap());
    }
    let mut es = vec![];
    for _ in 0..5 {
        let t = Instant::now();
        espeak(text, "en-gb", 175).await.unwrap();
        es.push(t.elapsed());
    }
    el_first.sort();
    es.sort();
    println!(
        "FIGURE text -> first audio byte: espeak-ng median {:?} (whole clip; it writes WAV at once), \
         ElevenLabs stand-in /stream median {:?} (loopback); cached clip {:?}",
        es[es.len() / 2],
        el_first[el_first.len() / 2],
        cached
    );
    handle.stop(true).await;
}

#[actix_rt::test]
async fn with_elevenlabs_configured_the_node_hears_it() {
    let (base, handle) = elevenlabs_stand_in().await;
    let srv = TestServer::start(Backend::Sqlite, |c| {
        c.voice.elevenlabs = Some(el(&base, "good"));
    })
    .await
    .unwrap();
    let (_team, _driver, node_token, _watcher) = setup_team(&srv).await;
    let mut node = WsClient::login(&srv, &node_token, "driver_node").await;
    node.send(command("e1", "last_lap", "last lap")).await;
    let (say, frame) = say_for(&mut node, "e1").await;
    assert_eq!(say["data"]["audio"]["engine"], "elevenlabs");
    assert_eq!(say["data"]["audio"]["sampleRate"], 16_000);
    check_clip(&say, &frame);
    srv.stop().await;
    handle.stop(true).await;
}
