//! The LLM phrasing client (`pitbox_runtime::llm`) against a local stand-in for an OpenAI-compatible
//! chat-completions server: a real actix-web server on `127.0.0.1:0` that checks the documented
//! request shape and answers from a script (JSON, server-sent events paced chunk by chunk, the
//! documented error body, `Retry-After`, a connection reset mid-stream, no answer at all). It counts
//! requests, so the tests can tell retried, not retried and not sent apart. Reads no env vars.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use pitbox_runtime::llm::{LlmConfig, LlmError, Phrased, Phraser, Source};
use serde_json::{json, Value};

const KEY: &str = "sk-test-key";
const MODEL: &str = "stand-in-model";
const FINDINGS: &str = "T3: \u{2212}0.21 s, braked 14 m early (4 of the last 6 laps)";
const REPLY: [&str; 4] =
    ["In T3 you lost ", "\u{2212}0.21 s", ": you braked 14 m", " too early, in 4 of the last 6 laps."];

/// What the stand-in does with one request.
#[derive(Clone)]
enum Reply {
    /// A JSON body with this status (and `Retry-After`).
    Json { status: u16, body: Value, retry_after: Option<&'static str> },
    /// `text/event-stream`, each chunk written and flushed on its own, `pace` apart; `reset` breaks
    /// the connection after the last chunk instead of ending the body.
    Sse { chunks: Vec<Vec<u8>>, pace: Duration, reset: bool },
    /// Never answers.
    Hang,
}

struct State {
    script: Mutex<VecDeque<Reply>>,
    requests: AtomicUsize,
    bodies: Mutex<Vec<Value>>,
}

struct StandIn {
    base_url: String,
    state: web::Data<State>,
    handle: ServerHandle,
}

impl StandIn {
    /// Serves `script` in order; the last reply repeats.
    async fn start(script: Vec<Reply>) -> StandIn {
        let state = web::Data::new(State {
            script: Mutex::new(script.into()),
            requests: AtomicUsize::new(0),
            bodies: Mutex::new(Vec::new()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = state.clone();
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).route("/v1/chat/completions", web::post().to(completions))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_rt::spawn(server);
        StandIn { base_url: format!("http://127.0.0.1:{port}/v1"), state, handle }
    }

    fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    fn config(&self) -> LlmConfig {
        LlmConfig {
            timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_millis(300),
            backoff_base: Duration::from_millis(10),
            ..LlmConfig::new(&self.base_url, Some(KEY.into()), MODEL)
        }
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

fn error_body(message: &str, kind: &str, code: Value) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

async fn completions(req: HttpRequest, body: web::Json<Value>, state: web::Data<State>) -> HttpResponse {
    state.requests.fetch_add(1, Ordering::SeqCst);
    state.bodies.lock().unwrap().push(body.0.clone());
    if req.headers().get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}")) {
        return HttpResponse::Unauthorized().json(error_body(
            "Incorrect API key provided",
            "invalid_request_error",
            json!("invalid_api_key"),
        ));
    }
    // The documented request: model, messages of {role, content}, stream, max_tokens, temperature.
    let b = &body.0;
    let well_formed = b["model"].is_string()
        && b["messages"].as_array().is_some_and(|m| {
            !m.is_empty() && m.iter().all(|m| m["role"].is_string() && m["content"].is_string())
        })
        && b["stream"].is_boolean()
        && b["max_tokens"].is_u64()
        && b["temperature"].is_number();
    if !well_formed {
        return HttpResponse::BadRequest().json(error_body(
            "malformed request",
            "invalid_request_error",
            Value::Null,
        ));
    }
    let reply = {
        let mut script = state.script.lock().unwrap();
        if script.len() > 1 {
            script.pop_front()
        } else {
            script.front().cloned()
        }
    };
    match reply {
        None | Some(Reply::Hang) => std::future::pending::<HttpResponse>().await,
        Some(Reply::Json { status, body, retry_after }) => {
            let mut response = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
            if let Some(after) = retry_after {
                response.insert_header(("Retry-After", after));
            }
            response.json(body)
        }
        Some(Reply::Sse { chunks, pace, reset }) => {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
            // Pacing makes the server write each chunk on its own, so the client's reads split
            // where the chunks do (the parser's unit tests cover every split point exhaustively).
            actix_rt::spawn(async move {
                for chunk in chunks {
                    if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                        return;
                    }
                    actix_rt::time::sleep(pace).await;
                }
                if reset {
                    let _ = tx.send(Err(std::io::Error::other("cut"))).await;
                }
            });
            let body =
                futures_util::stream::unfold(
                    rx,
                    |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
                );
            HttpResponse::Ok()
                .content_type("text/event-stream")
                .insert_header(("Cache-Control", "no-cache"))
                .streaming(body)
        }
    }
}

fn chunk_event(delta: Value, finish: Option<&str>) -> String {
    let event = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    format!("data: {event}\n\n")
}

/// A whole streamed reply of `pieces`: role, content deltas, stop, usage (when given), `[DONE]`.
fn sse_body(pieces: &[&str], usage: Option<u64>) -> String {
    let mut out = chunk_event(json!({"role": "assistant", "content": ""}), None);
    for piece in pieces {
        out.push_str(&chunk_event(json!({"content": piece}), None));
    }
    out.push_str(&chunk_event(json!({}), Some("stop")));
    if let Some(total) = usage {
        let event = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
            "usage": {"prompt_tokens": total / 2, "completion_tokens": total - total / 2, "total_tokens": total}});
        out.push_str(&format!("data: {event}\n\n"));
    }
    out.push_str("data: [DONE]\n\n");
    out
}

fn sse(body: String) -> Reply {
    Reply::Sse { chunks: vec![body.into_bytes()], pace: Duration::ZERO, reset: false }
}

fn completion(text: &str, total_tokens: Option<u64>) -> Reply {
    let mut body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    });
    if let Some(total) = total_tokens {
        body["usage"] = json!({"prompt_tokens": total / 2, "completion_tokens": total - total / 2, "total_tokens": total});
    }
    Reply::Json { status: 200, body, retry_after: None }
}

fn from_engine(p: &Phrased) -> &LlmError {
    assert_eq!(p.source, Source::Engine, "{p:?}");
    assert_eq!(p.text, FINDINGS, "the engine's own text on failure");
    p.reason.as_ref().unwrap()
}

fn phraser(config: LlmConfig) -> Phraser {
    Phraser::new(Some(config)).unwrap()
}

#[actix_rt::test]
async fn streamed_reply_is_used_and_the_request_is_the_documented_one() {
    let stand_in = StandIn::start(vec![sse(sse_body(&REPLY, Some(180)))]).await;
    let p = phraser(stand_in.config());
    let out = p.phrase(FINDINGS, "session-1").await;
    assert_eq!(out, Phrased { text: REPLY.concat(), source: Source::Llm, reason: None });
    assert_eq!(stand_in.requests(), 1);
    assert_eq!(p.spent("session-1"), 180, "the reported usage is what counts");
    let body = stand_in.state.bodies.lock().unwrap()[0].clone();
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["stream"], true);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1], json!({"role": "user", "content": FINDINGS}));
    assert!(body["max_tokens"].as_u64().unwrap() <= 300);
    stand_in.stop().await;
}

#[actix_rt::test]
async fn non_streamed_reply_is_used() {
    let stand_in = StandIn::start(vec![completion(&REPLY.concat(), Some(123))]).await;
    let p = phraser(LlmConfig { stream: false, ..stand_in.config() });
    let out = p.phrase(FINDINGS, "s").await;
    assert_eq!((out.source, out.text.as_str()), (Source::Llm, REPLY.concat().as_str()));
    assert_eq!(p.spent("s"), 123);
    assert_eq!(stand_in.state.bodies.lock().unwrap()[0]["stream"], false);
    stand_in.stop().await;
}

#[actix_rt::test]
async fn events_split_across_network_reads() {
    // CRLF line ends, a keep-alive comment, one event's JSON over two `data:` lines, then the whole
    // stream cut into 5-byte writes: splits fall inside `data:`, between `\r` and `\n`, and inside
    // the three bytes of `−`.
    let mut body = String::from(": keep-alive\n\n");
    body.push_str("data: {\"choices\":[{\"index\":0,\n");
    body.push_str("data: \"delta\":{\"content\":\"In T3 \"},\"finish_reason\":null}]}\n\n");
    body.push_str(&sse_body(&REPLY[1..], None));
    let body = body.replace('\n', "\r\n");
    let chunks: Vec<Vec<u8>> = body.as_bytes().chunks(5).map(<[u8]>::to_vec).collect();
    assert!(chunks.len() > 100);
    let stand_in =
        StandIn::start(vec![Reply::Sse { chunks, pace: Duration::from_millis(1), reset: false }]).await;
    let p = phraser(stand_in.config());
    let out = p.phrase(FINDINGS, "s").await;
    let expected = format!("In T3 {}", REPLY[1..].concat());
    assert_eq!((out.source, out.text.as_str(), out.reason), (Source::Llm, expected.as_str(), None));
    assert!(p.spent("s") > 0, "no usage reported: estimated from the characters");
    stand_in.stop().await;
}

#[actix_rt::test]
async fn unauthorized_is_not_retried_and_its_error_is_surfaced() {
    let stand_in = StandIn::start(vec![sse(sse_body(&REPLY, None))]).await;
    let p = phraser(LlmConfig { api_key: Some("sk-wrong".into()), ..stand_in.config() });
    let out = p.phrase(FINDINGS, "s").await;
    assert_eq!(
        from_engine(&out),
        &LlmError::Status {
            status: 401,
            message: "Incorrect API key provided".into(),
            kind: Some("invalid_request_error".into()),
            code: Some("invalid_api_key".into()),
        }
    );
    assert_eq!(stand_in.requests(), 1, "401 is not retried");
    assert_eq!(p.spent("s"), 0, "a refused request costs nothing");
    stand_in.stop().await;
}

#[actix_rt::test]
async fn too_many_requests_waits_for_retry_after_then_succeeds() {
    let limited = Reply::Json {
        status: 429,
        body: error_body("Rate limit reached", "requests", json!("rate_limit_exceeded")),
        retry_after: Some("1"),
    };
    let stand_in = StandIn::start(vec![limited, sse(sse_body(&REPLY, None))]).await;
    let p = phraser(stand_in.config());
    let started = Instant::now();
    let out = p.phrase(FINDINGS, "s").await;
    assert_eq!(out.source, Source::Llm, "{out:?}");
    assert_eq!(stand_in.requests(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 is honoured ({:?})",
        started.elapsed()
    );
    stand_in.stop().await;
}

#[actix_rt::test]
async fn retry_after_beyond_the_timeout_falls_back_at_once() {
    let limited = Reply::Json {
        status: 429,
        body: error_body("slow down", "requests", Value::Null),
        retry_after: Some("30"),
    };
    let stand_in = StandIn::start(vec![limited]).await;
    let p = phraser(stand_in.config());
    let started = Instant::now();
    let out = p.phrase(FINDINGS, "s").await;
    assert!(matches!(from_engine(&out), LlmError::Status { status: 429, code: None, .. }), "{out:?}");
    assert_eq!(stand_in.requests(), 1);
    assert!(started.elapsed() < Duration::from_secs(1), "no pointless wait: {:?}", started.elapsed());
    stand_in.stop().await;
}

#[actix_rt::test]
async fn server_errors_are_retried_with_backoff() {
    let failing = Reply::Json {
        status: 500,
        body: error_body("internal error", "server_error", Value::Null),
        retry_after: None,
    };
    let stand_in = StandIn::start(vec![failing.clone(), failing, sse(sse_body(&REPLY, None))]).await;
    let p = phraser(stand_in.config());
    let out = p.phrase(FINDINGS, "s").await;
    assert_eq!(out.source, Source::Llm, "{out:?}");
    assert_eq!(stand_in.requests(), 3);
    stand_in.stop().await;

    // Always failing: the first attempt and `max_retries` more, then the engine's text.
    let unavailable = Reply::Json { status: 503, body: json!("busy"), retry_after: None };
    let stand_in = StandIn::start(vec![unavailable]).await;
    let p = phraser(LlmConfig { max_retries: 2, ..stand_in.config() });
    let out = p.phrase(FINDINGS, "s").await;
    assert!(matches!(from_engine(&out), LlmError::Status { status: 503, .. }), "{out:?}");
    assert_eq!(stand_in.requests(), 3);
    stand_in.stop().await;
}

#[actix_rt::test]
async fn a_stream_cut_half_way_falls_back() {
    let whole = sse_body(&REPLY, None);
    let half = whole.as_bytes()[..whole.len() / 2].to_vec();
    // The connection breaks mid-reply.
    let stand_in = StandIn::start(vec![Reply::Sse {
        chunks: vec![half.clone()],
        pace: Duration::from_millis(1),
        reset: true,
    }])
    .await;
    let p = phraser(stand_in.config());
    let out = p.phrase(FINDINGS, "s").await;
    assert_eq!(from_engine(&out), &LlmError::StreamCut);
    assert_eq!(stand_in.requests(), 1, "a cut stream is not retried: it was paid for");
    assert!(p.spent("s") > 0, "what was received counts against the budget");
    stand_in.stop().await;

    // The body ends cleanly but without `finish_reason` or `[DONE]`.
    let stand_in =
        StandIn::start(vec![Reply::Sse { chunks: vec![half], pace: Duration::ZERO, reset: false }]).await;
    let out = phraser(stand_in.config()).phrase(FINDINGS, "s").await;
    assert_eq!(from_engine(&out), &LlmError::StreamCut);
    stand_in.stop().await;
}

#[actix_rt::test]
async fn a_reply_that_changes_a_number_is_refused() {
    let changed = ["In T3 you lost ", "0.2 s", ": you braked 14 m", " too early, in 4 of the last 6 laps."];
    let stand_in = StandIn::start(vec![sse(sse_body(&changed, None))]).await;
    let out = phraser(stand_in.config()).phrase(FINDINGS, "s").await;
    let LlmError::NumbersChanged(mismatch) = from_engine(&out) else { panic!("{out:?}") };
    assert_eq!(
        (mismatch.missing.clone(), mismatch.invented.clone()),
        (vec!["-0.21".to_owned()], vec!["0.2".to_owned()])
    );
    stand_in.stop().await;

    // One made up on top of the engine's.
    let stand_in =
        StandIn::start(vec![completion(&format!("{} Brake at the 100 m board.", REPLY.concat()), None)])
            .await;
    let out = phraser(LlmConfig { stream: false, ..stand_in.config() }).phrase(FINDINGS, "s").await;
    assert!(matches!(from_engine(&out), LlmError::NumbersChanged(m) if m.invented == ["100"]), "{out:?}");
    stand_in.stop().await;
}

#[actix_rt::test]
async fn a_spent_budget_stops_calls_for_that_session_only() {
    let stand_in = StandIn::start(vec![sse(sse_body(&REPLY, Some(900)))]).await;
    let p = phraser(LlmConfig { token_budget: 1000, ..stand_in.config() });
    assert_eq!(p.phrase(FINDINGS, "race-1").await.source, Source::Llm);
    assert_eq!(p.spent("race-1"), 900);
    let out = p.phrase(FINDINGS, "race-1").await;
    assert_eq!(from_engine(&out), &LlmError::BudgetSpent { spent: 900, budget: 1000 });
    assert_eq!(stand_in.requests(), 1, "no request once the budget is spent");
    assert_eq!(
        p.clone().phrase(FINDINGS, "race-2").await.source,
        Source::Llm,
        "another session has its own budget"
    );
    assert_eq!(stand_in.requests(), 2);
    stand_in.stop().await;
}

#[actix_rt::test]
async fn a_reply_cut_at_max_tokens_is_refused() {
    let stand_in = StandIn::start(vec![sse(sse_body(&REPLY, None).replace("\"stop\"", "\"length\""))]).await;
    let out = phraser(stand_in.config()).phrase(FINDINGS, "s").await;
    assert!(matches!(from_engine(&out), LlmError::BadReply(m) if m.contains("max_tokens")), "{out:?}");
    stand_in.stop().await;
}

#[actix_rt::test]
async fn an_abandoned_phrasing_releases_its_reservation() {
    let stand_in = StandIn::start(vec![Reply::Hang, sse(sse_body(&REPLY, None))]).await;
    // Room for one reservation at a time: a leaked one would block the second call.
    let p = phraser(LlmConfig { token_budget: 1000, max_reply_tokens: 600, ..stand_in.config() });
    let abandoned = tokio::time::timeout(Duration::from_millis(100), p.phrase(FINDINGS, "s")).await;
    assert!(abandoned.is_err(), "the stand-in never answers the first request");
    assert!(p.spent("s") > 0, "the abandoned prompt is counted");
    let out = p.phrase(FINDINGS, "s").await;
    assert_eq!(out.source, Source::Llm, "{out:?}");
    assert_eq!(stand_in.requests(), 2);
    stand_in.stop().await;
}

#[actix_rt::test]
async fn a_server_that_never_answers_falls_back_within_the_timeout() {
    let stand_in = StandIn::start(vec![Reply::Hang]).await;
    let timeout = Duration::from_millis(300);
    let p = phraser(LlmConfig { timeout, ..stand_in.config() });
    let started = Instant::now();
    let out = p.phrase(FINDINGS, "s").await;
    let elapsed = started.elapsed();
    assert_eq!(from_engine(&out), &LlmError::Timeout(timeout));
    assert!(elapsed >= timeout && elapsed < timeout + Duration::from_millis(500), "{elapsed:?}");
    assert_eq!(stand_in.requests(), 1);
    stand_in.stop().await;
}

#[actix_rt::test]
async fn nothing_listening_or_no_tls_falls_back() {
    // A port that was just free: connection refused, retried, then the engine's text.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = LlmConfig {
        timeout: Duration::from_secs(2),
        backoff_base: Duration::from_millis(5),
        ..LlmConfig::new(format!("http://127.0.0.1:{port}/v1"), None, MODEL)
    };
    let out = phraser(config).phrase(FINDINGS, "s").await;
    assert!(matches!(from_engine(&out), LlmError::Network(_)), "{out:?}");

    // https:// against a plain-HTTP server: the rustls handshake fails cleanly, no panic.
    let stand_in = StandIn::start(vec![sse(sse_body(&REPLY, None))]).await;
    let config = LlmConfig {
        base_url: stand_in.base_url.replace("http://", "https://"),
        max_retries: 0,
        ..stand_in.config()
    };
    let out = phraser(config).phrase(FINDINGS, "s").await;
    assert!(matches!(from_engine(&out), LlmError::Network(_)), "{out:?}");
    stand_in.stop().await;

    let out = Phraser::off().phrase(FINDINGS, "s").await;
    assert_eq!(from_engine(&out), &LlmError::Disabled);
}

/// A real HTTPS round trip: the stand-in serves TLS with a certificate for 127.0.0.1 signed by a test
/// CA (`tests/fixtures/llm-tls/`, test-only key, valid until 2126), and the client trusts that CA.
/// Proves the rustls 0.23 + ring connector works end to end, and that a certificate it does not trust
/// (the built-in Mozilla roots only) is refused.
#[actix_rt::test]
async fn https_round_trip() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm-tls");
    let chain = vec![CertificateDer::from_pem_file(dir.join("server.pem")).unwrap()];
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let server_tls = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let state = web::Data::new(State {
        script: Mutex::new(vec![sse(sse_body(&REPLY, Some(180)))].into()),
        requests: AtomicUsize::new(0),
        bodies: Mutex::new(Vec::new()),
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let data = state.clone();
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).route("/v1/chat/completions", web::post().to(completions))
    })
    .workers(1)
    .disable_signals()
    .listen_rustls_0_23(listener, server_tls)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_rt::spawn(server);
    let config = LlmConfig {
        timeout: Duration::from_secs(3),
        max_retries: 0,
        ..LlmConfig::new(format!("https://127.0.0.1:{port}/v1"), Some(KEY.into()), MODEL)
    };

    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap()).unwrap();
    let client_tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let out = Phraser::with_tls(config.clone(), std::sync::Arc::new(client_tls)).phrase(FINDINGS, "s").await;
    assert_eq!((out.source, out.text), (Source::Llm, REPLY.concat()));

    // The default roots do not know the test CA: the handshake fails and the engine's text is used.
    let out = phraser(config).phrase(FINDINGS, "s").await;
    assert!(
        matches!(from_engine(&out), LlmError::Network(m) if m.to_lowercase().contains("certificate")),
        "{out:?}"
    );
    assert_eq!(state.requests.load(Ordering::SeqCst), 1);
    handle.stop(false).await;
}

/// The figure for the note: one streamed phrasing through the stand-in, end to end (connect, request,
/// SSE parse, numbers check). `cargo test -p pitbox-runtime --test llm -- --nocapture figure`.
#[actix_rt::test]
async fn figure_one_streamed_phrasing_through_the_stand_in() {
    let stand_in = StandIn::start(vec![sse(sse_body(&REPLY, Some(180)))]).await;
    let p = phraser(LlmConfig { token_budget: u64::MAX / 2, ..stand_in.config() });
    let mut times = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let out = p.phrase(FINDINGS, "bench").await;
        times.push(started.elapsed());
        assert_eq!(out.source, Source::Llm);
    }
    times.sort();
    println!(
        "llm phrasing through the stand-in (streamed, {} runs): median {:?}, p95 {:?}, max {:?}",
        times.len(),
        times[times.len() / 2],
        times[times.len() * 95 / 100],
        times[times.len() - 1]
    );
    stand_in.stop().await;
}
