//! The node's local HTTP API on 127.0.0.1 (the original driver app's API) for overlays and tools:
//! `GET /api/config` (relay/cloud/voice settings) and `GET /api/telemetry/current` (the latest
//! sample in the seed shape: speed, rpm, gear, throttle, brake, steeringAngle, lap, position,
//! fuelLevel, tireWear, and the rest of the sample). Reads no env vars.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Serialize;
use serde_json::json;

use crate::status::Status;

/// What `GET /api/config` reports.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalConfig {
    pub relay_agent: RelayAgent,
    pub cloud: Cloud,
    pub voice: Voice,
}

#[derive(Debug, Clone, Serialize)]
pub struct RelayAgent {
    pub url: String,
    pub port: u16,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cloud {
    pub endpoint: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Voice {
    pub enabled: bool,
    pub sensitivity: f32,
    pub voice_id: String,
}

async fn config_json(c: web::Data<LocalConfig>) -> HttpResponse {
    HttpResponse::Ok().json(c.get_ref())
}

async fn current(status: web::Data<Status>) -> HttpResponse {
    match status.latest() {
        Some(frame) => HttpResponse::Ok().json(frame),
        None => HttpResponse::NotFound().json(json!({"code": "not_found", "message": "no telemetry yet"})),
    }
}

/// Serves the local API on `listener` (bind it to 127.0.0.1) until the process ends.
pub fn start(
    listener: TcpListener,
    config: LocalConfig,
    status: Arc<Status>,
) -> std::io::Result<actix_web::dev::Server> {
    let config = web::Data::new(config);
    let status = web::Data::from(status);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(config.clone())
            .app_data(status.clone())
            .route("/api/config", web::get().to(config_json))
            .route("/api/telemetry/current", web::get().to(current))
    })
    .workers(1)
    .listen(listener)?
    .run())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn serves_the_config_and_the_current_sample_in_the_seed_shape() {
        let status = Arc::new(Status::default());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let config = LocalConfig {
            relay_agent: RelayAgent { url: "ws://127.0.0.1:8080/ws".into(), port: 8080 },
            cloud: Cloud { endpoint: "http://127.0.0.1:8080".into(), enabled: true },
            voice: Voice { enabled: false, sensitivity: 0.5, voice_id: "default".into() },
        };
        let server = start(listener, config, status.clone()).unwrap();
        let handle = server.handle();
        actix_rt::spawn(server);
        let client = awc::Client::default();
        let current = format!("http://{addr}/api/telemetry/current");

        let r = client.get(&current).send().await.unwrap();
        assert_eq!(r.status(), 404, "no sample yet");

        let frame = crate::synthetic::Synthetic::new(1).next_frame();
        status.recorded(&frame, 1, Some(1));
        let v: serde_json::Value = client.get(&current).send().await.unwrap().json().await.unwrap();
        for key in
            ["speed", "rpm", "gear", "throttle", "brake", "steeringAngle", "lap", "position", "fuelLevel"]
        {
            assert!(v[key].is_number(), "{key} in {v}");
        }
        assert!(v["tireWear"]["frontLeft"].is_number());

        let c: serde_json::Value =
            client.get(format!("http://{addr}/api/config")).send().await.unwrap().json().await.unwrap();
        assert_eq!(c["relayAgent"]["port"], 8080);
        assert_eq!(c["cloud"]["enabled"], true);
        assert_eq!(c["voice"]["voiceId"], "default");
        handle.stop(true).await;
    }
}
