//! The dashboards: WebSocket clients that authenticate with their team's viewer token, subscribe
//! to the team view at the asked rate (the protocol of `runtime/src/ws.rs` and
//! [`pitbox_schema::wire`]), answer the server's pings, and time every sample they receive from
//! the moment its node spooled it (the sample's `timestamp`). Only the message type and the
//! timestamps are read, by substring, so the client costs little beside the server. Reads no env
//! vars.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use pitbox_schema::wire::{Authenticate, ClientType, Envelope, Message as Wire, Subscribe};

use crate::stats::Totals;

const TIMESTAMP: &str = "\"timestamp\":\"";

/// Runs one dashboard until `stop` is set or its connection ends (counted as an error).
pub async fn run(
    client: awc::Client,
    base: String,
    token: String,
    team_id: String,
    rate_hz: u16,
    stop: Arc<AtomicBool>,
    totals: Arc<Totals>,
) {
    if let Err(e) = session(&client, &base, token, team_id, rate_hz, &stop, &totals).await {
        if !stop.load(Ordering::Relaxed) {
            tracing::warn!(error = %e, "a dashboard failed");
            totals.error();
        }
    }
}

async fn session(
    client: &awc::Client,
    base: &str,
    token: String,
    team_id: String,
    rate_hz: u16,
    stop: &AtomicBool,
    totals: &Totals,
) -> anyhow::Result<()> {
    let ws = format!("{}/ws", base.replacen("http", "ws", 1));
    let (_, mut conn) = client
        .ws(ws)
        .max_frame_size(16 * 1024 * 1024)
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("connect: {e}"))?;
    let text = |m: Wire| serde_json::to_string(&Envelope::new(m));
    let auth = text(Wire::Authenticate(Authenticate {
        token,
        client_type: ClientType::Dashboard,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        track: None,
        car: None,
        session_type: None,
    }))?;
    conn.send(awc::ws::Message::Text(auth.into())).await?;
    let sub = text(Wire::Subscribe(Subscribe { team_id, driver_id: None, rate_hz: Some(rate_hz) }))?;
    conn.send(awc::ws::Message::Text(sub.into())).await?;
    while !stop.load(Ordering::Relaxed) {
        let frame = match conn.next().await {
            Some(Ok(f)) => f,
            Some(Err(e)) => anyhow::bail!("receive: {e}"),
            None => anyhow::bail!("connection closed"),
        };
        match frame {
            awc::ws::Frame::Text(t) => {
                let Ok(text) = std::str::from_utf8(&t) else { continue };
                if text.contains("\"authentication_result\"") && text.contains("\"success\":false") {
                    anyhow::bail!("authentication refused: {text}");
                }
                if totals.measuring() && is_telemetry(text) {
                    delivered(text, totals);
                }
            }
            awc::ws::Frame::Ping(p) => conn.send(awc::ws::Message::Pong(p)).await?,
            awc::ws::Frame::Close(reason) => anyhow::bail!("closed by the server: {reason:?}"),
            _ => {}
        }
    }
    Ok(())
}

/// Whether a message is a telemetry push (its type comes first, in PitBox and in the relay).
fn is_telemetry(text: &str) -> bool {
    text.starts_with("{\"type\":\"telemetry_update\"")
}

/// Every sample in a telemetry push: one, or several when the server bundles a team's drivers.
fn delivered(text: &str, totals: &Totals) {
    let now = chrono::Utc::now();
    let mut rest = text;
    while let Some(i) = rest.find(TIMESTAMP) {
        rest = &rest[i + TIMESTAMP.len()..];
        let Some(end) = rest.find('"') else { break };
        if let Ok(sent) = chrono::DateTime::parse_from_rfc3339(&rest[..end]) {
            let us = (now - sent.with_timezone(&chrono::Utc)).num_microseconds().unwrap_or(0).max(0);
            totals.delivered(us as u64);
        }
        rest = &rest[end..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_sample_of_a_push() {
        let t = Totals::default();
        let now = chrono::Utc::now().to_rfc3339();
        let one = format!(
            "{{\"type\":\"telemetry_update\",\"data\":{{\"driverId\":\"d\",\"timestamp\":\"{now}\"}}}}"
        );
        assert!(is_telemetry(&one));
        delivered(&one, &t);
        delivered(&format!("{one}{one}"), &t);
        assert_eq!(t.percentiles().3, 3);
        assert!(!is_telemetry("{\"type\":\"ack\",\"data\":{\"x\":\"telemetry_update\"}}"));
    }
}
