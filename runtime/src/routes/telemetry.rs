//! `/api/telemetry`, `/api/sessions`, `/api/laps`: telemetry ingest (seed shape), a driver's latest
//! sample, racing sessions, and laps with their channels.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use pitbox_schema::db::models::{self, Driver};
use pitbox_schema::wire::{
    DriverLive, ErrorBody, LapChannels, LapSummary, NewSession, RacingSession, TelemetryFrame, TelemetryPost,
    TelemetryPostResult,
};
use serde::Deserialize;

use crate::auth::AuthUser;
use crate::db::Db;
use crate::error::{ApiError, ApiResult, BodyRef, Found};
use crate::metrics::Metrics;
use crate::routes::scope::{InTeam, LapWithFrames, TeamScope};
use crate::routes::{limits, text, Limit};
use pitbox_actors::driver_session::{Frames, GetLive, IngestError};
use pitbox_actors::store_writer::AckTo;
use pitbox_actors::ActorSystem;
use pitbox_schema::db::store::laps::{self, decompress_frames, LapFilter};
use pitbox_schema::db::store::sessions::Place;
use pitbox_schema::db::store::{drivers, sessions, telemetry};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/telemetry", web::post().to(post_telemetry))
        .route("/drivers/{id}/telemetry/latest", web::get().to(latest))
        .route("/drivers/{id}/live", web::get().to(live))
        .route("/sessions", web::post().to(create_session))
        .route("/sessions/{id}", web::get().to(get_session))
        .route("/sessions/{id}/end", web::post().to(end_session))
        .route("/teams/{id}/sessions", web::get().to(list_sessions))
        .route("/teams/{id}/laps", web::get().to(list_laps))
        .route("/laps/{id}", web::get().to(get_lap));
}

/// A `driverId` in a body that names no driver.
const NO_SUCH_DRIVER: &str = "driverId: no such driver";

/// Loads a driver and checks that the caller may publish as it: its own user, or an admin.
async fn publishing_driver(
    user: &AuthUser,
    db: &Db,
    driver_id: String,
) -> ApiResult<pitbox_schema::db::models::Driver> {
    let driver = db.run(move |c| drivers::get_driver(c, &driver_id).body_ref(NO_SUCH_DRIVER)).await?;
    let own = user.driver_id.as_deref() == Some(driver.id.as_str());
    if !(own || user.is_admin()) {
        return Err(ApiError::forbidden("drivers may publish only their own telemetry"));
    }
    Ok(driver)
}

#[utoipa::path(post, path = "/api/telemetry", tag = "telemetry", security(("bearer" = [])),
    request_body = TelemetryPost,
    responses((status = 200, body = TelemetryPostResult), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody)))]
pub async fn post_telemetry(
    user: AuthUser,
    db: web::Data<Db>,
    system: web::Data<ActorSystem>,
    metrics: web::Data<Metrics>,
    body: web::Json<TelemetryPost>,
) -> ApiResult<web::Json<TelemetryPostResult>> {
    let post = body.into_inner();
    post.data.validate().map_err(|e| ApiError::invalid(format!("data.{e}")))?;
    let driver = publishing_driver(&user, &db, post.driver_id).await?;
    let frame = TelemetryFrame { seq: None, timestamp: post.timestamp, sample: post.data };
    let stored = ingest(&system, &metrics, &driver.team_id, &driver.id, None, vec![frame]).await?;
    let id = stored.ids.into_iter().next().ok_or_else(|| ApiError::internal("no sample id"))?;
    Ok(web::Json(TelemetryPostResult { success: true, id, lap_completed: stored.laps.into_iter().next() }))
}

/// Hands frames to the driver's session and waits until they are stored.
pub async fn ingest(
    system: &ActorSystem,
    metrics: &Metrics,
    team_id: &str,
    driver_id: &str,
    stream_id: Option<String>,
    frames: Vec<TelemetryFrame>,
) -> ApiResult<pitbox_actors::store_writer::Stored> {
    let session =
        system.driver(team_id, driver_id).await.map_err(|e| ApiError::unavailable(e.to_string()))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let fresh = session
        .send(Frames { stream_id, frames, after: None, ack: Some(AckTo::Once(tx)) })
        .await
        .map_err(|e| ApiError::unavailable(format!("driver session: {e}")))?
        .map_err(ingest_error)?;
    let stored = rx.await.map_err(|_| ApiError::unavailable("telemetry was not stored; send it again"))?;
    metrics.telemetry_samples.inc_by(fresh as u64);
    metrics.laps.inc_by(stored.laps.len() as u64);
    Ok(stored)
}

pub fn ingest_error(e: IngestError) -> ApiError {
    match e {
        IngestError::Invalid(m) => ApiError::invalid(m),
        IngestError::Busy(_) => ApiError { retry_after: Some(1), ..ApiError::unavailable(e.to_string()) },
        IngestError::Unavailable(_) | IngestError::Gap(_) => ApiError::unavailable(e.to_string()),
    }
}

#[utoipa::path(get, path = "/api/drivers/{id}/telemetry/latest", tag = "telemetry",
    security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = TelemetryFrame), (status = 404, body = ErrorBody)))]
pub async fn latest(driver: InTeam<Driver>, db: web::Data<Db>) -> ApiResult<web::Json<TelemetryFrame>> {
    let id = driver.item.id;
    let lookup = id.clone();
    let frame = db.run(move |c| Ok(telemetry::latest_sample(c, &lookup)?)).await?;
    frame.map(web::Json).found("telemetry of driver", &id)
}

#[utoipa::path(get, path = "/api/drivers/{id}/live", tag = "telemetry",
    security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = DriverLive), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn live(
    driver: InTeam<Driver>,
    system: web::Data<ActorSystem>,
) -> ApiResult<web::Json<DriverLive>> {
    let driver = driver.item;
    let session =
        system.driver(&driver.team_id, &driver.id).await.map_err(|e| ApiError::unavailable(e.to_string()))?;
    let s = session.send(GetLive).await.map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(web::Json(DriverLive {
        driver_id: driver.id,
        laps_completed: s.laps_completed,
        best_lap: s.best_lap,
        samples: s.samples,
        nodes: s.nodes,
        latest: s.latest.map(|l| l.frame),
    }))
}

#[utoipa::path(post, path = "/api/sessions", tag = "sessions", security(("bearer" = [])),
    request_body = NewSession,
    responses((status = 201, body = RacingSession), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_session(
    user: AuthUser,
    db: web::Data<Db>,
    system: web::Data<ActorSystem>,
    body: web::Json<NewSession>,
) -> ApiResult<HttpResponse> {
    let new = body.into_inner();
    let track = text("track", &new.track, limits::TRACK)?;
    let car = text("car", &new.car, limits::TRACK)?;
    let driver = db.run(move |c| drivers::get_driver(c, &new.driver_id).body_ref(NO_SUCH_DRIVER)).await?;
    user.require_self_or_staff(&driver.id, &driver.team_id)?;
    // The driver's session owns its racing session: it closes the open one and opens this.
    let place = Place { track, car, session_type: None };
    let s = system
        .open_racing(&driver.team_id, &driver.id, place, false)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(HttpResponse::Created().json(RacingSession::from(s)))
}

#[utoipa::path(get, path = "/api/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = RacingSession), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_session(s: InTeam<models::RacingSession>) -> web::Json<RacingSession> {
    web::Json(s.item.into())
}

#[utoipa::path(post, path = "/api/sessions/{id}/end", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = RacingSession), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn end_session(
    s: InTeam<models::RacingSession>,
    system: web::Data<ActorSystem>,
) -> ApiResult<web::Json<RacingSession>> {
    let InTeam { user, item: s } = s;
    user.require_self_or_staff(&s.driver_id, &s.team_id)?;
    let s = system
        .end_racing(&s.team_id, &s.driver_id, &s.id)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(web::Json(s.into()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct SessionQuery {
    pub driver_id: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/teams/{id}/sessions", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path), SessionQuery),
    responses((status = 200, body = [RacingSession]), (status = 403, body = ErrorBody)))]
pub async fn list_sessions(
    team: TeamScope,
    db: web::Data<Db>,
    q: web::Query<SessionQuery>,
) -> ApiResult<web::Json<Vec<RacingSession>>> {
    let q = q.into_inner();
    let limit = Limit::of(q.limit);
    let rows = team
        .run(&db, move |c, team| Ok(sessions::list_sessions(c, &team.id, q.driver_id.as_deref(), limit)?))
        .await?;
    Ok(web::Json(rows.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct LapQuery {
    pub driver_id: Option<String>,
    pub session_id: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/teams/{id}/laps", tag = "laps", security(("bearer" = [])),
    params(("id" = String, Path), LapQuery),
    responses((status = 200, body = [LapSummary]), (status = 403, body = ErrorBody)))]
pub async fn list_laps(
    team: TeamScope,
    db: web::Data<Db>,
    q: web::Query<LapQuery>,
) -> ApiResult<web::Json<Vec<LapSummary>>> {
    let q = q.into_inner();
    let limit = Limit::of(q.limit);
    let rows = team
        .run(&db, move |c, team| {
            let f = LapFilter {
                team_id: &team.id,
                driver_id: q.driver_id.as_deref(),
                session_id: q.session_id.as_deref(),
                limit,
            };
            Ok(laps::list_laps(c, &f)?)
        })
        .await?;
    Ok(web::Json(rows.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChannelQuery {
    /// Comma-separated channel names (e.g. `speed,throttle,brake`); all channels when absent.
    pub channels: Option<String>,
}

#[utoipa::path(get, path = "/api/laps/{id}", tag = "laps", security(("bearer" = [])),
    params(("id" = String, Path), ChannelQuery),
    responses((status = 200, body = LapChannels), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_lap(
    lap: InTeam<LapWithFrames>,
    q: web::Query<ChannelQuery>,
) -> ApiResult<web::Json<LapChannels>> {
    let (row, blob) = lap.item;
    let wanted: Option<Vec<String>> = q
        .channels
        .as_deref()
        .map(|s| s.split(',').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect());
    let channels = web::block(move || to_channels(&blob, wanted.as_deref())).await??;
    Ok(web::Json(LapChannels { lap: row.into(), channels }))
}

/// Turns stored frames into columns: one array per channel, one entry per frame.
fn to_channels(
    blob: &[u8],
    wanted: Option<&[String]>,
) -> ApiResult<BTreeMap<String, Vec<serde_json::Value>>> {
    let lap = decompress_frames(blob).map_err(ApiError::internal)?;
    let mut out: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for (i, frame) in lap.frames.iter().enumerate() {
        let serde_json::Value::Object(map) = serde_json::to_value(frame).map_err(ApiError::internal)? else {
            continue;
        };
        for (k, v) in map {
            if wanted.is_some_and(|w| !w.iter().any(|c| c == &k)) {
                continue;
            }
            // Optional channels may be absent in early frames; pad so indexes line up.
            let col = out.entry(k).or_insert_with(|| vec![serde_json::Value::Null; i]);
            col.resize(i, serde_json::Value::Null);
            col.push(v);
        }
    }
    let n = lap.frames.len();
    for col in out.values_mut() {
        col.resize(n, serde_json::Value::Null);
    }
    if let Some(w) = wanted {
        if let Some(missing) = w.iter().find(|c| !out.contains_key(*c)) {
            return Err(ApiError::invalid(format!("channels: unknown channel {missing:?}")));
        }
    }
    Ok(out)
}
