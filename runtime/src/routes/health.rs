//! `/healthz` (the process answers), `/readyz` (the database answers), `/metrics` (Prometheus,
//! OpenMetrics text), whose access is the config's `metrics` (`PITBOX_METRICS`: off, token,
//! public; the token is `PITBOX_METRICS_TOKEN`, compared in constant time).

use actix_web::{web, HttpRequest, HttpResponse};
use pitbox_schema::wire::{ErrorBody, ErrorCode};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{Config, MetricsAccess};
use crate::db::Db;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// The content type `/metrics` answers with.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200), (status = 503)))]
pub async fn readyz(db: web::Data<Db>) -> HttpResponse {
    match db.run(|c| Ok(pitbox_schema::db::store::ping(c)?)).await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready", "database": "ok"})),
        Err(e) => {
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable", "database": e.message}))
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "ops", security((), ("bearer" = [])),
    responses((status = 200, description = "OpenMetrics text exposition",
               content_type = "application/openmetrics-text", body = String),
              (status = 401, body = ErrorBody, description = "`PITBOX_METRICS=token` and no or a wrong token"),
              (status = 404, body = ErrorBody, description = "`PITBOX_METRICS=off`")))]
pub async fn metrics(
    req: HttpRequest,
    config: web::Data<Config>,
    metrics: web::Data<Metrics>,
    db: web::Data<Db>,
) -> Result<HttpResponse, ApiError> {
    match config.metrics {
        MetricsAccess::Public => {}
        MetricsAccess::Off => return crate::routes::not_found(req).await,
        MetricsAccess::Token => {
            let presented = crate::auth::bearer_token(&req)?;
            let expected = config.metrics_token.as_deref().unwrap_or_default();
            // Digests first, so the comparison takes as long whatever the lengths, then constant
            // time: the answer's timing says nothing about how much of a guess was right.
            let (a, b) = (Sha256::digest(presented.as_bytes()), Sha256::digest(expected.as_bytes()));
            let same: bool = a[..].ct_eq(&b[..]).into();
            if !same || expected.is_empty() {
                return Err(ApiError::unauthorized(ErrorCode::TokenInvalid, "wrong metrics token"));
            }
        }
    }
    let (connections, idle) = db.pool_state();
    metrics.db_connections.set(i64::from(connections));
    metrics.db_idle_connections.set(i64::from(idle));
    let body = metrics.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().content_type(OPENMETRICS).body(body))
}
