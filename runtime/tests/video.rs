//! Onboard video through the real runtime (SQLite; video touches the database only to find the
//! driver's team): a driver node's socket → the driver's `VideoRelay` → dashboard sockets.
//!
//! - real H.264 from the node's pipeline (test pattern, OpenH264), decoded back by the viewer with
//!   OpenH264's decoder: frames arrive in order, from a keyframe, showing the counter drawn;
//! - a late joiner starts at the last keyframe;
//! - a stalled viewer neither grows the server nor delays another viewer (it skips to keyframes);
//! - no viewer pauses the node, a new viewer resumes it within one keyframe interval;
//! - a video flood does not hold up telemetry acknowledgements (figures printed);
//! - bad media frames get a clear error and nothing else breaks; viewing is limited to the team.
//!
//! Prints figures: glass-to-glass latency (capture → decoded at the viewer, loopback), telemetry
//! ack latency with and without a video flood.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use pitbox_driver::video::capture::{read_bars, SourceSpec};
use pitbox_driver::video::encode::H264Decoder;
use pitbox_driver::video::{self, VideoOptions};
use pitbox_schema::wire::media::{Codec, MediaHeader, NODE_VIDEO_STREAM};
use pitbox_schema::wire::{Role, VideoAction};
use serde_json::json;

const W: usize = 320;
const H: usize = 192;

fn pattern(fps: u32, keyframe_secs: f32) -> VideoOptions {
    VideoOptions {
        source: SourceSpec::Pattern { width: W, height: H },
        width: W,
        height: H,
        fps,
        bitrate_bps: 800_000,
        keyframe_secs,
    }
}

/// A media frame with a payload of `len` bytes (not H.264: the relay never looks inside).
fn fake(seq: u32, keyframe: bool, len: usize) -> Vec<u8> {
    let h = MediaHeader {
        codec: Codec::H264,
        keyframe,
        stream: NODE_VIDEO_STREAM,
        sequence: seq,
        capture_us: video::now_us(),
        width: 16,
        height: 16,
    };
    h.frame(&vec![seq as u8; len])
}

/// The next `video_control` the node gets.
async fn control(node: &mut WsClient) -> String {
    loop {
        match node.recv_any(Duration::from_secs(10)).await.expect("video_control") {
            Incoming::Text(m) if m["type"] == "video_control" => {
                return m["data"]["action"].as_str().unwrap().to_owned()
            }
            _ => {}
        }
    }
}

/// The next binary frame a viewer gets: (header, payload).
async fn media(viewer: &mut WsClient, limit: Duration) -> Option<(MediaHeader, Vec<u8>)> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match viewer.recv_any(left).await? {
            Incoming::Binary(b) => {
                let (h, at) = MediaHeader::decode(&b).unwrap();
                return Some((h, b[at..].to_vec()));
            }
            Incoming::Text(_) => {}
        }
    }
}

async fn watch(srv: &TestServer, token: &str, team: &str, driver: &str) -> (WsClient, u32) {
    let mut v = WsClient::login(srv, token, "dashboard").await;
    v.send(json!({"type": "watch_video", "id": "w", "data": {"teamId": team, "driverId": driver}})).await;
    let ok = v.recv_type("video_watching").await.expect("video_watching");
    (v, ok["data"]["stream"].as_u64().unwrap() as u32)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[actix_rt::test]
async fn real_h264_reaches_viewers_from_keyframes_and_pauses_without_them() {
    let srv = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let (team, driver, node_token, watcher) = setup_team(&srv).await;
    let mut node = WsClient::login(&srv, &node_token, "driver_node").await;
    // Nobody watches yet: the node is told to pause.
    assert_eq!(control(&mut node).await, "pause");

    // The node's real pipeline: pattern → I420 → OpenH264, 30 fps, a keyframe every second.
    let (mut link, thread) = video::start(pattern(30, 1.0)).unwrap();
    let (mut v1, stream) = watch(&srv, &watcher, &team, &driver).await;
    let asked = Instant::now();
    assert_eq!(control(&mut node).await, "resume");
    link.control.apply(VideoAction::Resume);

    let mut decoder = H264Decoder::new().unwrap();
    let mut latencies = vec![];
    let mut last_seq = 0;
    let mut first_at = None;
    let mut late: Option<(WsClient, u32)> = None;
    let mut sent = 0;
    while sent < 75 {
        let frame = link.frames.recv().await.unwrap();
        assert!(node.send_binary(frame).await);
        sent += 1;
        // Viewer 1 takes every frame, in order, decoding each.
        let (h, payload) = media(&mut v1, Duration::from_secs(5)).await.expect("frame for viewer 1");
        assert_eq!(h.stream, stream);
        if first_at.is_none() {
            assert!(h.keyframe, "a viewer starts at a keyframe");
            first_at = Some(asked.elapsed());
        }
        assert!(h.sequence > last_seq, "in order: {} after {last_seq}", h.sequence);
        last_seq = h.sequence;
        let pic = decoder.decode(&payload).unwrap().expect("a picture per frame");
        latencies.push((video::now_us().saturating_sub(h.capture_us)) as f64 / 1000.0);
        assert_eq!((pic.width, pic.height), (W, H));
        assert!(read_bars(pic.y(), W, H) > 0, "the counter drawn is readable");
        if sent == 45 {
            // A late joiner: the node is asked for a keyframe, and the joiner starts at the last one.
            late = Some(watch(&srv, &watcher, &team, &driver).await);
            assert_eq!(control(&mut node).await, "keyframe");
            link.control.apply(VideoAction::Keyframe);
        }
    }
    let (mut v2, _) = late.unwrap();
    let (h, payload) = media(&mut v2, Duration::from_secs(5)).await.unwrap();
    assert!(h.keyframe, "the late joiner's first frame is a keyframe");
    let mut d2 = H264Decoder::new().unwrap();
    assert!(d2.decode(&payload).unwrap().is_some(), "and it decodes on its own");
    let first = first_at.unwrap();
    println!(
        "video: first keyframe {:.0} ms after watch_video; glass-to-glass (capture → decoded, loopback, 320x192) p50 {:.1} ms p99 {:.1} ms over {} frames",
        first.as_secs_f64() * 1000.0,
        pct(&mut latencies.clone(), 0.5),
        pct(&mut latencies, 0.99),
        sent
    );
    assert!(first < Duration::from_secs(2), "resumed within one keyframe interval: {first:?}");

    // Both leave: the node is paused; a new viewer resumes it.
    v1.send(json!({"type": "unwatch_video", "data": {"teamId": team, "driverId": driver}})).await;
    drop(v2);
    assert_eq!(control(&mut node).await, "pause");
    link.control.apply(VideoAction::Pause);
    let (mut v3, _) = watch(&srv, &watcher, &team, &driver).await;
    assert_eq!(control(&mut node).await, "resume");
    link.control.apply(VideoAction::Resume);
    let frame = loop {
        // Frames encoded before the pause may still be in the channel: the node's uplink sends
        // what it has; the first frame after the resume is a keyframe.
        let f = link.frames.recv().await.unwrap();
        if MediaHeader::decode(&f).unwrap().0.keyframe {
            break f;
        }
    };
    node.send_binary(frame).await;
    let (h, _) = media(&mut v3, Duration::from_secs(5)).await.unwrap();
    assert!(h.keyframe);

    // The admin tree shows the relay's counts.
    let tree = srv.state.system.registry().tree();
    let text = serde_json::to_string(&tree).unwrap();
    assert!(text.contains("\"viewers\":1") && text.contains("\"keyframes\""), "{text}");

    thread.control.stop();
    drop(link);
    thread.handle.join().unwrap().unwrap();
    srv.stop().await;
}

#[actix_rt::test]
async fn a_stalled_viewer_skips_to_keyframes_and_costs_nothing() {
    let srv = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let (team, driver, node_token, watcher) = setup_team(&srv).await;
    let mut node = WsClient::login(&srv, &node_token, "driver_node").await;
    assert_eq!(control(&mut node).await, "pause");
    // Never read again after watching.
    let (_stalled, _) = watch(&srv, &watcher, &team, &driver).await;
    // 600 frames of 64 KiB at 100 a second (about 40 MB, more than loopback's socket buffers hold
    // for the stalled viewer; faster than real video, which a healthy viewer keeps up with).
    const FRAMES: u32 = 600;
    const SIZE: usize = 64 * 1024;
    // The healthy viewer reads on its own thread (its own actix system), so it keeps up while this
    // one sends as fast as the socket takes frames.
    // (A oneshot awaited, not a blocking wait: the runtime's actors live on this thread.)
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (base, token, t, d) = (srv.base.clone(), watcher.clone(), team.clone(), driver.clone());
    let reader = std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            use futures_util::{SinkExt, StreamExt};
            let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
            let (_, mut conn) =
                client.ws(format!("{base}/ws")).max_frame_size(16 * 1024 * 1024).connect().await.unwrap();
            let send = |v: serde_json::Value| awc::ws::Message::Text(v.to_string().into());
            conn.send(send(
                json!({"type": "authenticate", "data": {"token": token, "clientType": "dashboard"}}),
            ))
            .await
            .unwrap();
            conn.send(send(json!({"type": "watch_video", "data": {"teamId": t, "driverId": d}})))
                .await
                .unwrap();
            let (mut got, mut last, mut worst, mut ready) = (0u32, 0, Duration::ZERO, Some(ready_tx));
            loop {
                let next = tokio::time::timeout(Duration::from_secs(10), conn.next()).await;
                let Ok(Some(Ok(frame))) = next else { break };
                match frame {
                    awc::ws::Frame::Text(t) => {
                        let text = String::from_utf8_lossy(&t);
                        if text.contains("video_watching") {
                            if let Some(r) = ready.take() {
                                let _ = r.send(());
                            }
                        } else if text.contains("\"error\"") {
                            panic!("healthy viewer: {text}");
                        }
                    }
                    awc::ws::Frame::Binary(b) => {
                        let (h, _) = MediaHeader::decode(&b).unwrap();
                        assert!(h.sequence > last);
                        last = h.sequence;
                        got += 1;
                        worst =
                            worst.max(Duration::from_micros(video::now_us().saturating_sub(h.capture_us)));
                        if h.sequence == FRAMES {
                            break;
                        }
                    }
                    awc::ws::Frame::Ping(p) => {
                        let _ = conn.send(awc::ws::Message::Pong(p)).await;
                    }
                    _ => {}
                }
            }
            (got, last, worst)
        })
    });
    tokio::time::timeout(Duration::from_secs(20), ready_rx)
        .await
        .unwrap()
        .expect("the healthy viewer is watching");
    let rss_before = rss_kib();
    let mut peak = rss_before;
    let mut pace = actix_rt::time::interval(Duration::from_millis(10));
    let started = Instant::now();
    for seq in 1..=FRAMES {
        pace.tick().await;
        // Keyframe every 30 frames, and the last one, so every viewer ends on it.
        assert!(node.send_binary(fake(seq, seq % 30 == 1 || seq == FRAMES, SIZE)).await);
        if seq % 100 == 0 {
            peak = peak.max(rss_kib());
        }
    }
    let sending = started.elapsed();
    let (got, last, worst) = actix_rt::task::spawn_blocking(move || reader.join().unwrap()).await.unwrap();
    let relay = srv.state.system.video(&team, &driver).await.unwrap();
    // The healthy viewer's socket closing reaches the relay a moment after its thread ends: ask
    // until it has gone (the stalled viewer stays), with a deadline rather than a fixed sleep.
    let deadline = Instant::now() + Duration::from_secs(10);
    let counts = loop {
        let counts = relay.send(pitbox_actors::video_relay::GetCounts).await.unwrap();
        if counts.viewers <= 1 || Instant::now() > deadline {
            break counts;
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    };
    let grown = peak.saturating_sub(rss_before) / 1024;
    println!(
        "video: stalled viewer: {FRAMES} frames sent in {sending:?}; healthy viewer got {got}/{FRAMES} (last #{last}, oldest frame {worst:?} old); relay drops {}; server RSS +{grown} MiB while {} MiB went through",
        counts.drops,
        FRAMES as usize * SIZE / (1024 * 1024)
    );
    assert_eq!(last, FRAMES, "the healthy viewer got the newest frame");
    assert!(counts.drops > 0, "the stalled viewer skipped frames");
    assert!(grown < 48, "the stalled viewer made the server grow by {grown} MiB");
    // The healthy viewer has left; the stalled one is still counted (it skipped, it was not dropped).
    assert_eq!(counts.viewers, 1);
    srv.stop().await;
}

#[actix_rt::test]
async fn video_floods_do_not_hold_up_telemetry_and_bad_frames_are_refused() {
    let srv = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let (team, driver, node_token, watcher) = setup_team(&srv).await;
    let mut node = WsClient::login(&srv, &node_token, "driver_node").await;
    assert_eq!(control(&mut node).await, "pause");
    let (mut viewer, _) = watch(&srv, &watcher, &team, &driver).await;
    let drain =
        actix_rt::spawn(async move { while media(&mut viewer, Duration::from_secs(3)).await.is_some() {} });

    // Ack latency of one telemetry batch, with `video` frames of 64 KiB sent before it.
    async fn round(node: &mut WsClient, driver: &str, seq: u64, video: u32) -> f64 {
        for i in 0..video {
            node.send_binary(fake(seq as u32 * 100 + i, i == 0, 64 * 1024)).await;
        }
        let t = Instant::now();
        let frames = vec![frame_at(seq, seq as f64 / 60.0, 90.0)];
        node.send(json!({"type": "telemetry_batch", "data": {"driverId": driver, "streamId": "n", "frames": frames}}))
            .await;
        loop {
            match node.recv_any(Duration::from_secs(10)).await.expect("ack") {
                Incoming::Text(m) if m["type"] == "ack" && m["data"]["seq"].as_u64() == Some(seq) => break,
                Incoming::Text(m) if m["type"] == "error" => panic!("{m}"),
                _ => {}
            }
        }
        t.elapsed().as_secs_f64() * 1000.0
    }
    let mut quiet = vec![];
    let mut flood = vec![];
    for seq in 1..=40u64 {
        quiet.push(round(&mut node, &driver, seq * 2 - 1, 0).await);
        flood.push(round(&mut node, &driver, seq * 2, 10).await);
    }
    println!(
        "video: telemetry ack latency without video p50 {:.2} ms p99 {:.2} ms; after 10 x 64 KiB video frames p50 {:.2} ms p99 {:.2} ms",
        pct(&mut quiet.clone(), 0.5),
        pct(&mut quiet, 0.99),
        pct(&mut flood.clone(), 0.5),
        pct(&mut flood, 0.99)
    );

    // Bad media from the node: a clear error, and the connection keeps working.
    node.send_binary(vec![1, 2, 3]).await;
    let mut bad = fake(1, true, 10);
    bad[1] = 99;
    node.send_binary(bad).await;
    let mut other_stream = fake(1, true, 10);
    MediaHeader::set_stream(&mut other_stream, 5);
    node.send_binary(other_stream).await;
    let mut errors = vec![];
    while errors.len() < 3 {
        if let Incoming::Text(m) = node.recv_any(Duration::from_secs(5)).await.expect("errors") {
            if m["type"] == "error" {
                errors.push(m["data"]["message"].as_str().unwrap().to_owned());
            }
        }
    }
    assert!(errors[0].contains("shorter than its 24-byte header"), "{errors:?}");
    assert!(errors[1].contains("unknown media codec 99"), "{errors:?}");
    assert!(errors[2].contains("stream 5"), "{errors:?}");
    assert!(round(&mut node, &driver, 1000, 1).await > 0.0, "the node's socket still works");

    // A dashboard's binary frame: refused, it stays connected.
    let mut dash = WsClient::login(&srv, &watcher, "dashboard").await;
    dash.send_binary(fake(1, true, 10)).await;
    let e = dash.recv_type("error").await.unwrap();
    assert_eq!(e["data"]["code"], "forbidden", "{e}");
    // Viewing is for the driver's team only.
    let other_team = srv.create_team("Other Racing");
    srv.create_user("outsider", Role::Team, &[&other_team]);
    let outsider = srv.login("outsider").await;
    let mut out = WsClient::login(&srv, &outsider, "dashboard").await;
    out.send(json!({"type": "watch_video", "id": "x", "data": {"teamId": team, "driverId": driver}})).await;
    let e = out.recv_type("error").await.unwrap();
    assert_eq!(e["data"]["code"], "forbidden", "{e}");
    out.send(json!({"type": "watch_video", "id": "y", "data": {"teamId": other_team, "driverId": driver}}))
        .await;
    let e = out.recv_type("error").await.unwrap();
    assert_eq!(e["data"]["code"], "not_found", "{e}");

    // A frame over the socket's size limit closes that socket (1009) and nothing else.
    let big = fake(1, true, srv.state.config.ws_max_frame_bytes + 1);
    node.send_binary(big).await;
    assert_eq!(node.close_code().await, Some(1009));
    dash.send(json!({"type": "subscribe", "data": {"teamId": team}})).await;
    assert!(dash.recv_type("subscribed").await.is_some());
    drop(drain);
    srv.stop().await;
}
