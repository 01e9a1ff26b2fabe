//! `pitbox-driver doctor`: the checks a driver runs before a race, printed as a table of
//! validation results (component, success/warning/error, message, details) or as JSON in the
//! seed's `ValidationResult` shape. Env: `PITBOX_WHISPER_MODEL` (path of the speech model, read
//! by [`crate::voice::model_path`]; default `<home>/models/ggml-tiny.en.bin`).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use pitbox_schema::wire::{ValidationResult, ValidationStatus};
use serde_json::json;

use crate::credentials::{self, Credentials};
use crate::tls::NodeTls;

fn result(
    component: &str,
    status: ValidationStatus,
    message: impl Into<String>,
    details: Option<serde_json::Value>,
) -> ValidationResult {
    ValidationResult {
        component_name: component.to_owned(),
        status,
        message: message.into(),
        timestamp: chrono::Utc::now(),
        details,
    }
}

use ValidationStatus::{Error, Success, Warning};

/// The `video` row: the capture source `run` would use (the first screen; the test pattern
/// where there is none) and the measured capture + convert + encode time per 720p frame, against
/// the 33 ms a frame has at 30 fps.
fn video_check() -> ValidationResult {
    use crate::video::{capture::SourceSpec, measure, VideoOptions};
    let screen = VideoOptions::default();
    let (measured, fallback) = match measure(&screen, 30) {
        Ok(m) => (Ok(m), None),
        Err(e) => {
            let pattern = VideoOptions { source: SourceSpec::Pattern { width: 1280, height: 720 }, ..screen };
            (measure(&pattern, 30), Some(e))
        }
    };
    match measured {
        Ok((source, ms, bytes)) => {
            let status = if fallback.is_some() || ms > 33.0 { Warning } else { Success };
            let mut message =
                format!("{source}: {ms:.1} ms per 1280x720 frame (capture, convert, H.264 encode)");
            if let Some(e) = &fallback {
                message = format!("no screen to capture ({e}); measured on {message}");
            } else if ms > 33.0 {
                message.push_str("; too slow for 30 fps, use --video 960x540@30");
            }
            result(
                "video",
                status,
                message,
                Some(
                    json!({"source": source, "msPerFrame": ms, "bytesPerFrame": bytes, "screen": fallback.is_none()}),
                ),
            )
        }
        Err(e) => result("video", Error, format!("H.264 encoder unavailable: {e}"), None),
    }
}

/// Runs every check; never fails itself (a failed check is a result).
pub async fn checks(home: &Path, tls: &NodeTls) -> Vec<ValidationResult> {
    let mut out = vec![];
    let client = crate::uplink::client(tls);
    let creds = match Credentials::load(home) {
        Ok(c) => {
            out.push(result("login", Success, format!("{} on {}", c.username, c.server), None));
            Some(c)
        }
        Err(e) => {
            out.push(result("login", Error, e.to_string(), None));
            None
        }
    };
    if let Some(mut c) = creds {
        out.push(if c.server.starts_with("https://") {
            tls_row(&c.server, tls).await
        } else {
            result(
                "tls",
                Warning,
                "the server is reached without TLS (http://): fine on a LAN, not across the internet",
                None,
            )
        });
        let started = Instant::now();
        match client.get(format!("{}/healthz", c.server)).send().await {
            Ok(res) => {
                let rtt = started.elapsed();
                out.push(result(
                    "server",
                    if res.status().is_success() { Success } else { Error },
                    format!("{} answered {} in {} ms", c.server, res.status(), rtt.as_millis()),
                    Some(json!({"rttMs": rtt.as_secs_f64() * 1000.0})),
                ));
                let date = res.headers().get("date").and_then(|d| d.to_str().ok()).map(str::to_owned);
                if let Some(server_time) = date.and_then(|d| chrono::DateTime::parse_from_rfc2822(&d).ok()) {
                    let offset = (chrono::Utc::now() - server_time.with_timezone(&chrono::Utc))
                        .num_milliseconds() as f64
                        / 1000.0;
                    let status = if offset.abs() <= 2.0 { Success } else { Warning };
                    out.push(result(
                        "clock",
                        status,
                        format!("{offset:+.1} s from the server (HTTP date, 1 s resolution)"),
                        Some(json!({"offsetSecs": offset})),
                    ));
                }
            }
            Err(e) => {
                let host = crate::tls::host_port(&c.server).map(|(h, _)| h).unwrap_or_default();
                let why = crate::tls::explain_request(&e, &host).unwrap_or_else(|| e.to_string());
                out.push(result("server", Error, format!("{} unreachable: {why}", c.server), None))
            }
        }
        if c.expiring(Duration::from_secs(60)) {
            match credentials::refresh(&client, home, &c).await {
                Ok(fresh) => c = fresh,
                Err(e) => out.push(result("auth", Error, e.to_string(), None)),
            }
        }
        let mut me = client.get(format!("{}/api/auth/me", c.server)).bearer_auth(&c.token).send().await;
        if me.as_ref().is_ok_and(|res| res.status().as_u16() == 401) {
            // A refused token (runtime restarted with a new key, secret rotated, logged out
            // elsewhere) gets one refresh, as the uplink does; a refused refresh means log in again.
            match credentials::refresh(&client, home, &c).await {
                Ok(fresh) => {
                    c = fresh;
                    me = client.get(format!("{}/api/auth/me", c.server)).bearer_auth(&c.token).send().await;
                }
                Err(e) => out.push(result("auth", Error, e.to_string(), None)),
            }
        }
        match me {
            Ok(res) if res.status().is_success() => {
                let driver = c.driver_id.clone();
                out.push(match driver {
                    Some(d) => result("auth", Success, format!("token valid; driving as {d}"), None),
                    None => result("auth", Error, "token valid, but this user has no driver profile", None),
                });
            }
            Ok(res) => out.push(result(
                "auth",
                Error,
                format!("the server refused the login ({})", res.status()),
                None,
            )),
            Err(e) => out.push(result("auth", Error, e.to_string(), None)),
        }
        out.push(websocket(&client, &c).await);
    }
    // Looking for the sim blocks up to a few seconds: off the async thread too.
    out.push(
        actix_rt::task::spawn_blocking(iracing)
            .await
            .unwrap_or_else(|e| result("iracing", Error, format!("checking for the sim failed: {e}"), None)),
    );
    // Device probing blocks (X11, ALSA): off the async thread.
    out.extend(actix_rt::task::spawn_blocking(crate::devices::doctor_checks).await.unwrap_or_default());
    if let Ok(row) = actix_rt::task::spawn_blocking(video_check).await {
        out.push(row);
    }
    // Loading a speech model and transcribing takes a moment: off the async thread.
    out.push(
        actix_rt::task::spawn_blocking(crate::voice::doctor_row)
            .await
            .unwrap_or_else(|e| result("voice", Error, format!("the voice check failed: {e}"), None)),
    );
    let _ = std::fs::create_dir_all(home);
    // Where the spool is (or will be): the room there is what recording has left.
    let spool = home.join("spool");
    let spooled = crate::spool::bytes_in(&spool);
    out.push(match fs4::available_space(if spool.is_dir() { &spool } else { home }) {
        Ok(bytes) => {
            let gib = bytes as f64 / (1u64 << 30) as f64;
            // A frame spools in about 1 KB: 1 GiB holds about 4 hours at 60 Hz.
            let status = if gib >= 1.0 {
                Success
            } else if gib >= 0.1 {
                Warning
            } else {
                Error
            };
            result(
                "spool disk",
                status,
                format!(
                    "{} free for the spool in {} (it holds {:.1} MB now){}",
                    if gib >= 1.0 { format!("{gib:.1} GiB") } else { format!("{:.1} MB", bytes as f64 / 1e6) },
                    spool.display(),
                    spooled as f64 / 1e6,
                    if status == Success {
                        ""
                    } else {
                        "; when the disk fills, the spool thins its oldest unsent frames, then sends live only"
                    }
                ),
                Some(json!({"freeBytes": bytes, "spoolBytes": spooled})),
            )
        }
        Err(e) => result("spool disk", Warning, format!("cannot tell free space: {e}"), None),
    });
    out
}

/// The server's certificate, checked for real with the node's trust settings: a full handshake,
/// then its expiry and name. Warns when it expires within [`crate::tls::RENEW_WARNING_DAYS`].
pub async fn tls_row(server: &str, tls: &NodeTls) -> ValidationResult {
    let (server_owned, tls_owned) = (server.to_owned(), tls.clone());
    let checked = actix_rt::task::spawn_blocking(move || {
        crate::tls::check(&server_owned, &tls_owned, Duration::from_secs(10))
    })
    .await
    .unwrap_or_else(|e| Err(format!("the check failed: {e}")));
    let trust = match &tls.ca_file {
        Some(f) => format!("{} roots and {}", tls.roots_source, f.display()),
        None => format!("{} roots", tls.roots_source),
    };
    match checked {
        Ok(info) => {
            let details = json!({
                "host": info.host,
                "notAfter": info.not_after.map(|t| t.to_rfc3339()),
                "daysLeft": info.days_left(),
                "trust": trust,
            });
            match (info.not_after, info.days_left()) {
                (Some(t), Some(days)) if days < crate::tls::RENEW_WARNING_DAYS => result(
                    "tls",
                    Warning,
                    format!(
                        "certificate for {} expires on {} (in {days} days): tell the server's operator to renew it",
                        info.host,
                        t.format("%Y-%m-%d")
                    ),
                    Some(details),
                ),
                (Some(t), Some(days)) => result(
                    "tls",
                    Success,
                    format!("certificate for {} valid until {} ({days} days)", info.host, t.format("%Y-%m-%d")),
                    Some(details),
                ),
                _ => result("tls", Success, format!("certificate for {} is valid", info.host), Some(details)),
            }
        }
        Err(why) => result("tls", Error, why, Some(json!({"trust": trust}))),
    }
}

/// Whether the sim is running and in a session (Windows); elsewhere, why there is no live source.
fn iracing() -> ValidationResult {
    let mut source = match crate::live::iracing_source() {
        Ok(s) => s,
        Err(e) => return result("iracing", Warning, e.to_string(), None),
    };
    // Without a sim each poll waits about a second; with one, a frame comes within a few.
    for _ in 0..3 {
        if source.poll_frame().is_some() {
            break;
        }
    }
    if source.status().state == crate::live::LiveState::Connected {
        let info = crate::source::TelemetrySource::info(&source);
        let track = info.track.unwrap_or_else(|| "unknown track".into());
        result("iracing", Success, format!("iRacing is running: {track}"), None)
    } else {
        result(
            "iracing",
            Warning,
            "iRacing is not running or not in a session yet; start it before the race",
            None,
        )
    }
}

/// Time from opening the socket to an accepted `authenticate`.
async fn websocket(client: &awc::Client, c: &Credentials) -> ValidationResult {
    let started = Instant::now();
    let conn = client.ws(c.ws_url()).connect().await;
    let Ok((_, mut ws)) = conn else {
        return result("websocket", Error, format!("cannot open {}", c.ws_url()), None);
    };
    let auth = json!({"type": "authenticate", "data": {"token": c.token, "clientType": "driver_node", "version": env!("CARGO_PKG_VERSION")}});
    if ws.send(awc::ws::Message::Text(auth.to_string().into())).await.is_err() {
        return result("websocket", Error, "the socket closed during the handshake", None);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let awc::ws::Frame::Text(t) = frame {
            let v: serde_json::Value = serde_json::from_slice(&t).unwrap_or_default();
            if v["type"] == "authentication_result" {
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                let _ = ws.send(awc::ws::Message::Close(None)).await;
                return if v["data"]["success"] == true {
                    result(
                        "websocket",
                        Success,
                        format!("handshake in {ms:.0} ms"),
                        Some(json!({"rttMs": ms})),
                    )
                } else {
                    result(
                        "websocket",
                        Error,
                        format!("handshake refused: {}", v["data"]["error"]["message"]),
                        None,
                    )
                };
            }
        }
    }
    result("websocket", Error, "no answer to authenticate within 5 s", None)
}

pub fn run(home: &Path, tls: &NodeTls, as_json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let results = actix_rt::System::new().block_on(checks(home, tls));
    if as_json {
        writeln!(out, "{}", serde_json::to_string_pretty(&results)?)?;
    } else {
        writeln!(out, "{:<14} {:<8} message", "component", "status")?;
        for r in &results {
            writeln!(out, "{:<14} {:<8} {}", r.component_name, r.status.as_str(), r.message)?;
        }
    }
    if results.iter().any(|r| r.status == Error) {
        anyhow::bail!("some checks failed");
    }
    Ok(())
}
