//! `/healthz` (the process answers), `/readyz` (the database answers), `/metrics` (Prometheus).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::db::Db;
use crate::metrics::Metrics;
use crate::store;

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
    match db.run(store::ping).await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready", "database": "ok"})),
        Err(e) => {
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable", "database": e.message}))
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics(metrics: web::Data<Metrics>, db: web::Data<Db>) -> HttpResponse {
    let (connections, idle) = db.pool_state();
    metrics.db_connections.set(i64::from(connections));
    metrics.db_idle_connections.set(i64::from(idle));
    match metrics.render() {
        Ok(body) => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(body),
        Err(e) => actix_web::ResponseError::error_response(&crate::error::ApiError::internal(e)),
    }
}
