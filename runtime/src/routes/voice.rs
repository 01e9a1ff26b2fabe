//! Spoken audio over REST: `POST /api/voice/synthesize` (the seed's shape: `{text, voiceId,
//! speed, priority}` → `{audioUrl, duration}`) and `GET /api/voice/clips/{id}.wav`, the clip as
//! `audio/wav`, for the members of the teams of whoever asked for it (404 for anyone else, so a
//! clip's existence is not given away). Speech comes from [`crate::voice::Tts`]. Reads no env vars.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use pitbox_schema::wire::{ErrorBody, SynthesizeRequest, SynthesizeResult};

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::routes::text;
use crate::voice::{pcm16_to_wav, ClipStore, Tts, TtsError};

/// Longest text accepted.
pub const MAX_TEXT: usize = 1000;
const MAX_VOICE_ID: usize = 64;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/voice/synthesize", web::post().to(synthesize))
        .route("/voice/clips/{file}", web::get().to(clip));
}

#[utoipa::path(post, path = "/api/voice/synthesize", tag = "voice", security(("bearer" = [])),
    request_body = SynthesizeRequest,
    responses((status = 200, body = SynthesizeResult), (status = 401, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn synthesize(
    user: AuthUser,
    tts: web::Data<Tts>,
    clips: web::Data<ClipStore>,
    body: web::Json<SynthesizeRequest>,
) -> ApiResult<web::Json<SynthesizeResult>> {
    let req = body.into_inner();
    let spoken = text("text", &req.text, MAX_TEXT)?;
    if let Some(v) = &req.voice_id {
        let ok = !v.is_empty()
            && v.len() <= MAX_VOICE_ID
            && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+'));
        if !ok {
            return Err(ApiError::invalid(format!(
                "voiceId: 1–{MAX_VOICE_ID} characters of letters, digits, '-', '_' or '+'"
            )));
        }
    }
    if let Some(s) = req.speed {
        if !(s.is_finite() && (0.5..=2.0).contains(&s)) {
            return Err(ApiError::invalid("speed: must be between 0.5 and 2"));
        }
    }
    let clip = tts.speak(&spoken, req.voice_id.as_deref(), req.speed).await.map_err(|e| match e {
        TtsError::UnknownVoice(v) => ApiError::invalid(format!("voiceId: unknown voice {v:?}")),
        e => ApiError::unavailable(format!("speech unavailable: {e}")),
    })?;
    let duration = f64::from(clip.duration_ms()) / 1000.0;
    let wav = pcm16_to_wav(&clip.pcm, clip.sample_rate).map_err(ApiError::internal)?;
    let id = clips.put(user.teams.clone(), Bytes::from(wav));
    Ok(web::Json(SynthesizeResult { audio_url: format!("/api/voice/clips/{id}.wav"), duration }))
}

#[utoipa::path(get, path = "/api/voice/clips/{file}", tag = "voice", security(("bearer" = [])),
    params(("file" = String, Path, description = "`{id}.wav` from `audioUrl`")),
    responses((status = 200, content_type = "audio/wav", body = Vec<u8>), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn clip(
    user: AuthUser,
    clips: web::Data<ClipStore>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let file = path.into_inner();
    let not_found = || ApiError::not_found("clip", &file);
    let id = file.strip_suffix(".wav").ok_or_else(not_found)?;
    let (teams, wav) = clips.get(id).ok_or_else(not_found)?;
    // A user with no team sees only what was made for no team (and admins see everything).
    let allowed = user.is_admin()
        || teams.iter().any(|t| user.can_read_team(t))
        || (teams.is_empty() && user.teams.is_empty());
    if !allowed {
        return Err(not_found());
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "audio/wav"))
        .insert_header((header::CACHE_CONTROL, "private, max-age=3600"))
        .body(wav))
}
