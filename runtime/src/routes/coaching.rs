//! The coach's routes: `POST /api/coaching/analyze` (the seed's shape), a session's coaching, a
//! lap's corner table against its reference and its analysis as JSON, CSV exports of a lap and of
//! a session (channels by lap distance), the team's strategy view, a track's map (outline and
//! corners) and the team's corner names (JSON, or the TOML `turns = [{name, start, end}]`).
//! Reads no env vars.
//!
//! Per-request work stays small: the strategy view reads what the coach actors last worked out
//! (`CoachBoard`), a track map is one row, and a lap's analysis is computed once per lap and
//! reference and then served from [`CoachCache`].

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use pitbox_actors::coach_store;
use pitbox_coach::{analyze_frames, output, CoachConfig, CornerMap, Turn};
use pitbox_schema::db::models::RacingSession;
use pitbox_schema::db::store::{coaching, drivers, laps, now, sessions, tracks};
use pitbox_schema::wire::{
    AiCoaching, AnalyzeRequest, AnalyzeResult, CarStrategy, ErrorBody, LapCorners, TrackCorner, TrackMap,
};
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::coaching::{analyse_lap, laps_csv, CoachCache, LapAnalysis};
use crate::db::Db;
use crate::error::{ApiError, ApiResult, BodyRef, Found};
use crate::routes::scope::{InTeam, LapWithFrames, Member, Staff, TeamRule, TeamScope};
use crate::routes::{limits, text, Limit};
use pitbox_actors::ActorSystem;

/// Frames accepted by one analyze request (a 360 Hz lap of 10 minutes).
const MAX_ANALYZE_FRAMES: usize = 216_000;
/// Focus areas and corner names: how many, and how long each.
const MAX_FOCUS: usize = 20;
const MAX_TURNS: usize = 100;
const SHORT_TEXT: usize = 100;
/// Laps in a session export at most.
const MAX_EXPORT_LAPS: i64 = 500;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/coaching/analyze", web::post().to(analyze))
        .route("/sessions/{id}/coaching", web::get().to(session_coaching))
        .route("/sessions/{id}/export.csv", web::get().to(session_csv))
        .route("/laps/{id}/corners", web::get().to(lap_corners))
        .route("/laps/{id}/analysis", web::get().to(lap_analysis))
        .route("/laps/{id}/export.csv", web::get().to(lap_csv))
        .route("/teams/{id}/strategy", web::get().to(strategy))
        .route("/tracks/{track}/map", web::get().to(track_map))
        .route("/tracks/{track}/turns", web::put().to(put_turns));
}

const SKILL_LEVELS: &[&str] = &["beginner", "intermediate", "advanced", "expert", "professional"];

#[utoipa::path(post, path = "/api/coaching/analyze", tag = "coaching", security(("bearer" = [])),
    request_body = AnalyzeRequest,
    responses((status = 200, body = AnalyzeResult), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn analyze(
    user: AuthUser,
    db: web::Data<Db>,
    body: web::Json<AnalyzeRequest>,
) -> ApiResult<web::Json<AnalyzeResult>> {
    let req = body.into_inner();
    if req.telemetry_data.is_empty() {
        return Err(ApiError::invalid("telemetryData: must hold the frames of at least one whole lap"));
    }
    if req.telemetry_data.len() > MAX_ANALYZE_FRAMES {
        return Err(ApiError::invalid(format!("telemetryData: at most {MAX_ANALYZE_FRAMES} frames")));
    }
    for (i, f) in req.telemetry_data.iter().enumerate() {
        f.sample.validate().map_err(|e| ApiError::invalid(format!("telemetryData[{i}].{e}")))?;
    }
    if req.focus_areas.len() > MAX_FOCUS {
        return Err(ApiError::invalid(format!("focusAreas: at most {MAX_FOCUS}")));
    }
    let focus: Vec<String> = req
        .focus_areas
        .iter()
        .enumerate()
        .map(|(i, f)| text(&format!("focusAreas[{i}]"), f, SHORT_TEXT).map(|t| t.to_lowercase()))
        .collect::<ApiResult<_>>()?;
    if let Some(level) = &req.skill_level {
        if !SKILL_LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(ApiError::invalid(format!("skillLevel: one of {}", SKILL_LEVELS.join(", "))));
        }
    }
    let driver_id = req.driver_id.clone();
    let driver =
        db.run(move |c| drivers::get_driver(c, &driver_id).body_ref("driverId: no such driver")).await?;
    user.require_team(&driver.team_id)?;
    let frames = req.telemetry_data;
    let report = web::block(move || analyze_frames(&frames, CoachConfig::default(), None).pop()).await?;
    let Some(report) = report else {
        return Err(ApiError::invalid(
            "telemetryData: no whole lap found (the frames must run from one lap line to the next)",
        ));
    };
    let r = output::analyze_response(&report);
    // Focus areas put what the driver asked about first; nothing is left out.
    let mut suggestions = r.suggestions;
    if !focus.is_empty() {
        suggestions.sort_by_key(|s| {
            let s = s.to_lowercase();
            !focus.iter().any(|f| s.contains(f.as_str()))
        });
    }
    Ok(web::Json(AnalyzeResult { feedback: r.feedback, suggestions, analysis: r.analysis }))
}

#[utoipa::path(get, path = "/api/sessions/{id}/coaching", tag = "coaching", security(("bearer" = [])),
    params(("id" = String, Path), Limit),
    responses((status = 200, body = [AiCoaching]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_coaching(
    s: InTeam<RacingSession>,
    db: web::Data<Db>,
    q: web::Query<Limit>,
) -> ApiResult<web::Json<Vec<AiCoaching>>> {
    let (id, limit) = (s.item.id, q.get());
    Ok(web::Json(
        db.run(move |c| {
            let rows = coaching::session_coaching(c, &id, limit)?;
            Ok(rows.into_iter().map(coach_store::coaching_to_wire).collect())
        })
        .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReferenceQuery {
    /// The lap to compare with (a lap of the same team: the driver's or a team-mate's); the
    /// driver's best valid lap of the session when absent.
    pub reference: Option<String>,
}

/// A lap (already checked readable by the caller) measured against its reference, computed once
/// and then served from the cache.
async fn analysis_of(
    db: &Db,
    cache: &CoachCache,
    (lap, blob): LapWithFrames,
    reference: Option<String>,
) -> ApiResult<Arc<LapAnalysis>> {
    let (session_id, except) = (lap.session_id.clone(), lap.id.clone());
    let reference_id = match reference {
        Some(r) if r.trim().is_empty() => return Err(ApiError::invalid("reference: must not be empty")),
        Some(r) => r,
        None => db.run(move |c| Ok(laps::best_lap(c, &session_id, &except)?)).await?.ok_or_else(|| {
            ApiError::invalid("reference: the session has no other valid lap to compare with; name one")
        })?,
    };
    if let Some(hit) = cache.get(&lap.id, &reference_id) {
        return Ok(hit);
    }
    let lookup = reference_id.clone();
    let (reference, ref_blob) =
        db.run(move |c| laps::get_lap(c, &lookup).body_ref("reference: no such lap")).await?;
    if reference.team_id != lap.team_id {
        return Err(ApiError::invalid("reference: not a lap of this team"));
    }
    let (team, sid) = (lap.team_id.clone(), lap.session_id.clone());
    let (session, stored, turns) = db
        .run(move |c| {
            let s = sessions::get_session(c, &sid).found("session", &sid)?;
            let m = tracks::track_map(c, &team, &s.track, Some(&s.car))?;
            let t = tracks::track_turns(c, &team, &s.track)?;
            Ok((s, m, t))
        })
        .await?;
    let lap_row = lap.clone();
    let a = web::block(move || {
        analyse_lap((&lap_row, &blob), (&reference, &ref_blob), &session.track, stored.as_ref(), &turns)
    })
    .await??;
    let a = Arc::new(a);
    cache.put(&lap.id, &reference_id, a.clone());
    Ok(a)
}

#[utoipa::path(get, path = "/api/laps/{id}/corners", tag = "coaching", security(("bearer" = [])),
    params(("id" = String, Path), ReferenceQuery),
    responses((status = 200, body = LapCorners), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn lap_corners(
    lap: InTeam<LapWithFrames>,
    db: web::Data<Db>,
    cache: web::Data<CoachCache>,
    q: web::Query<ReferenceQuery>,
) -> ApiResult<web::Json<LapCorners>> {
    let a = analysis_of(&db, &cache, lap.item, q.into_inner().reference).await?;
    Ok(web::Json(a.corners.clone()))
}

/// `GET /api/laps/{id}/analysis`: the lap against its reference in full, and the coach's message
/// about it when there is one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LapAnalysisDoc {
    pub corners: LapCorners,
    /// The engine's comparison: every corner's metrics on both laps.
    #[schema(value_type = Object)]
    pub comparison: serde_json::Value,
    /// The corner map it was measured on.
    #[schema(value_type = Object)]
    pub map: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coaching: Option<AiCoaching>,
}

#[utoipa::path(get, path = "/api/laps/{id}/analysis", tag = "coaching", security(("bearer" = [])),
    params(("id" = String, Path), ReferenceQuery),
    responses((status = 200, body = LapAnalysisDoc), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn lap_analysis(
    lap: InTeam<LapWithFrames>,
    db: web::Data<Db>,
    cache: web::Data<CoachCache>,
    q: web::Query<ReferenceQuery>,
) -> ApiResult<web::Json<LapAnalysisDoc>> {
    let id = lap.item.0.id.clone();
    let a = analysis_of(&db, &cache, lap.item, q.into_inner().reference).await?;
    let coaching =
        db.run(move |c| Ok(coaching::lap_coaching(c, &id)?.map(coach_store::coaching_to_wire))).await?;
    Ok(web::Json(LapAnalysisDoc {
        corners: a.corners.clone(),
        comparison: serde_json::to_value(&a.comparison).map_err(ApiError::internal)?,
        map: serde_json::to_value(&a.map).map_err(ApiError::internal)?,
        coaching,
    }))
}

fn csv_response(name: &str, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")))
        .body(body)
}

#[utoipa::path(get, path = "/api/laps/{id}/export.csv", tag = "coaching", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "the lap's channels by lap distance", content_type = "text/csv", body = String),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn lap_csv(lap: InTeam<LapWithFrames>) -> ApiResult<HttpResponse> {
    let (lap, blob) = lap.item;
    let name = format!("lap-{}.csv", lap.lap_number);
    let body = web::block(move || laps_csv(&[(lap, blob)], None)).await??;
    Ok(csv_response(&name, body))
}

#[utoipa::path(get, path = "/api/sessions/{id}/export.csv", tag = "coaching", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "every lap's channels by lap distance", content_type = "text/csv", body = String),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_csv(s: InTeam<RacingSession>, db: web::Data<Db>) -> ApiResult<HttpResponse> {
    let s = s.item;
    let (id, team, track, car) = (s.id.clone(), s.team_id.clone(), s.track.clone(), s.car.clone());
    let (laps, map) = db
        .run(move |c| {
            Ok((
                laps::session_laps(c, &id, MAX_EXPORT_LAPS)?,
                tracks::track_map(c, &team, &track, Some(&car))?,
            ))
        })
        .await?;
    let length = map.map(|m| m.length_m);
    let body = web::block(move || laps_csv(&laps, length)).await??;
    Ok(csv_response(&format!("session-{}.csv", s.id), body))
}

#[utoipa::path(get, path = "/api/teams/{id}/strategy", tag = "coaching", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = [CarStrategy]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn strategy(
    team: TeamScope,
    db: web::Data<Db>,
    system: web::Data<ActorSystem>,
) -> ApiResult<web::Json<Vec<CarStrategy>>> {
    team.run(&db, |_, _| Ok(())).await?;
    // What the coaches worked out after each lap: nothing is computed here.
    Ok(web::Json(system.env.board.team(&team.team_id)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct TrackQuery {
    /// The team whose map it is; the caller's only team when absent.
    pub team_id: Option<String>,
    /// The car (class) the map was learnt with; the newest of any when absent.
    pub car: Option<String>,
}

/// The team a track route is about: `teamId`, or the caller's only team.
fn team_of<R: TeamRule>(user: AuthUser, team: Option<String>) -> ApiResult<TeamScope<R>> {
    let id = match team {
        Some(t) => t,
        None => match user.teams.as_slice() {
            [only] => only.clone(),
            _ => return Err(ApiError::invalid("teamId: required (you are in more than one team, or none)")),
        },
    };
    TeamScope::new(user, id)
}

fn track_name(raw: String) -> ApiResult<String> {
    text("track", &raw, limits::TRACK)
}

#[utoipa::path(get, path = "/api/tracks/{track}/map", tag = "coaching", security(("bearer" = [])),
    params(("track" = String, Path), TrackQuery),
    responses((status = 200, body = TrackMap), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn track_map(
    user: AuthUser,
    db: web::Data<Db>,
    path: web::Path<String>,
    q: web::Query<TrackQuery>,
) -> ApiResult<web::Json<TrackMap>> {
    let track = track_name(path.into_inner())?;
    let q = q.into_inner();
    let team = team_of::<Member>(user, q.team_id)?;
    let lookup = track.clone();
    let (row, turns) = team
        .run(&db, move |c, team| {
            Ok((
                tracks::track_map(c, &team.id, &lookup, q.car.as_deref())?,
                tracks::track_turns(c, &team.id, &lookup)?,
            ))
        })
        .await?;
    let (map, outline, length) = match &row {
        Some(r) => (coach_store::corner_map(r), coach_store::outline(r), Some(r.length_m)),
        None => (None, Vec::new(), None),
    };
    let map = match map {
        Some(mut m) => {
            m.apply_names(&turns);
            Some(m)
        }
        None if !turns.is_empty() => Some(CornerMap::from_turns(&turns, length.unwrap_or(0.0))),
        None => None,
    };
    let map = map.found("map of track", &track)?;
    Ok(web::Json(TrackMap {
        track,
        length_m: length,
        outline,
        corners: map
            .corners
            .iter()
            .map(|c| TrackCorner { name: c.name.clone(), start: c.start, end: c.end })
            .collect(),
    }))
}

/// `PUT /api/tracks/{track}/turns` (JSON): the team's corner names.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct TrackTurns {
    pub turns: Vec<TrackCorner>,
}

fn check_turns(turns: Vec<Turn>) -> ApiResult<Vec<Turn>> {
    if turns.len() > MAX_TURNS {
        return Err(ApiError::invalid(format!("turns: at most {MAX_TURNS}")));
    }
    for (i, t) in turns.iter().enumerate() {
        text(&format!("turns[{i}].name"), &t.name, SHORT_TEXT)?;
        let ok = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
        if !ok(t.start) || !ok(t.end) || t.start == t.end {
            return Err(ApiError::invalid(format!(
                "turns[{i}]: start and end must be distinct lap fractions from 0 to 1"
            )));
        }
    }
    Ok(turns)
}

#[utoipa::path(put, path = "/api/tracks/{track}/turns", tag = "coaching", security(("bearer" = [])),
    params(("track" = String, Path), TrackQuery),
    request_body(content = TrackTurns, description = "JSON; or the TOML `turns = [{name, start, end}]` as `application/toml`"),
    responses((status = 200, body = TrackTurns), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_turns(
    user: AuthUser,
    db: web::Data<Db>,
    cache: web::Data<CoachCache>,
    req: HttpRequest,
    path: web::Path<String>,
    q: web::Query<TrackQuery>,
    body: web::Bytes,
) -> ApiResult<web::Json<TrackTurns>> {
    let kind = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let body = std::str::from_utf8(&body).map_err(|_| ApiError::invalid("body: not UTF-8"))?;
    let turns: Vec<Turn> = if kind.contains("json") {
        // The same answers as the JSON extractor's (`crate::routes::json_config`).
        let t: TrackTurns = serde_json::from_str(body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => {
                ApiError::bad_request(pitbox_schema::wire::ErrorCode::InvalidField, e.to_string())
            }
            _ => ApiError::bad_request(
                pitbox_schema::wire::ErrorCode::InvalidJson,
                format!("malformed JSON: {e}"),
            ),
        })?;
        t.turns.into_iter().map(|c| Turn { name: c.name, start: c.start, end: c.end }).collect()
    } else if kind.contains("toml") || kind.starts_with("text/plain") {
        pitbox_coach::parse_turns(body).map_err(|e| ApiError::invalid(e.to_string()))?
    } else {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            pitbox_schema::wire::ErrorCode::UnsupportedMediaType,
            "Content-Type must be application/json or application/toml",
        ));
    };
    let turns = check_turns(turns)?;
    let track = track_name(path.into_inner())?;
    let team = team_of::<Staff>(user, q.into_inner().team_id)?;
    let saved = turns.clone();
    team.run(&db, move |c, team| Ok(tracks::save_track_turns(c, &team.id, &track, &saved, now())?)).await?;
    cache.clear();
    Ok(web::Json(TrackTurns {
        turns: turns.into_iter().map(|t| TrackCorner { name: t.name, start: t.start, end: t.end }).collect(),
    }))
}
