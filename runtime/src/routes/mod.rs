//! HTTP routes: `/api/*` (REST), `/healthz`, `/readyz`, `/metrics`, `/api/openapi.json`, and the
//! extractor configuration that turns malformed bodies, paths and queries into `{code, message}`
//! errors. Reads no env vars (limits come from the config).

pub mod auth;
pub mod coaching;
pub mod health;
pub mod messages;
pub mod scope;
pub mod teams;
pub mod telemetry;
pub mod users;
pub mod voice;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, HttpRequest};
use pitbox_schema::wire::ErrorCode;
use serde::Deserialize;

use crate::error::ApiError;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api")
            .configure(auth::configure)
            .configure(users::configure)
            .configure(teams::configure)
            .configure(telemetry::configure)
            .configure(messages::configure)
            .configure(coaching::configure)
            .configure(voice::configure)
            .route("/openapi.json", web::get().to(crate::openapi::serve)),
    )
    .configure(health::configure);
}

/// JSON bodies: size limit and errors as `{code, message}`.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(limit).error_handler(|err, _req| json_error(err).into())
}

fn json_error(err: JsonPayloadError) -> ApiError {
    use actix_web::http::StatusCode;
    match err {
        JsonPayloadError::Overflow { limit } | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                format!("request body is larger than {limit} bytes"),
            )
        }
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "Content-Type must be application/json",
        ),
        JsonPayloadError::Deserialize(e) => {
            use serde_json::error::Category;
            match e.classify() {
                Category::Syntax | Category::Eof | Category::Io => {
                    ApiError::bad_request(ErrorCode::InvalidJson, format!("malformed JSON: {e}"))
                }
                Category::Data => ApiError::bad_request(ErrorCode::InvalidField, e.to_string()),
            }
        }
        other => ApiError::bad_request(ErrorCode::BadRequest, other.to_string()),
    }
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _req: &HttpRequest| {
        ApiError::bad_request(ErrorCode::BadRequest, format!("bad path: {err}")).into()
    })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req: &HttpRequest| {
        ApiError::bad_request(ErrorCode::InvalidField, format!("bad query string: {err}")).into()
    })
}

/// Unknown routes answer JSON too: `405` with `Allow` when the path is documented for other
/// methods, else `404`.
pub async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    let allowed = crate::openapi::allowed_methods(req.path())
        .filter(|allowed| !allowed.contains(&req.method().as_str()));
    if let Some(allowed) = allowed {
        let allow = allowed.join(", ");
        let body = pitbox_schema::wire::ErrorBody {
            code: ErrorCode::MethodNotAllowed,
            message: format!("{} is not allowed on {}; allowed: {allow}", req.method(), req.path()),
            request_id: None,
        };
        return Ok(actix_web::HttpResponse::MethodNotAllowed()
            .insert_header((actix_web::http::header::ALLOW, allow))
            .json(body));
    }
    Err(ApiError::new(
        actix_web::http::StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// `?limit=` shared by list routes: 1..=1000, default 100.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Limit {
    /// Newest first; 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

impl Limit {
    pub fn get(&self) -> i64 {
        Self::of(self.limit)
    }

    /// The same rule for list queries that carry `limit` among their own fields (flattening
    /// [`Limit`] into them would break number parsing in query strings).
    pub fn of(limit: Option<i64>) -> i64 {
        limit.unwrap_or(100).clamp(1, 1000)
    }
}

/// Longest accepted free-text fields, in characters; the OpenAPI document states the same
/// (`crate::openapi`).
pub mod limits {
    /// Team and driver names.
    pub const NAME: usize = 100;
    /// Session track and car.
    pub const TRACK: usize = 200;
    /// A team message.
    pub const CONTENT: usize = 4000;
    /// An attachment's name.
    pub const ATTACHMENT_NAME: usize = 200;
    /// URLs: attachments, avatars.
    pub const URL: usize = 2048;
    /// A handoff's reason.
    pub const REASON: usize = 1000;
}

/// Checks a free-text field and returns it verbatim (what is stored is what was sent, spaces and
/// all): not blank (whitespace only counts as empty), at most `max` characters, and no control
/// characters other than tab, line feed and carriage return. (NUL never gets this far:
/// [`crate::input`] refuses it with 400 for every request.)
pub fn text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid(format!("{field}: must not be empty")));
    }
    if value.chars().count() > max {
        return Err(ApiError::invalid(format!("{field}: must be at most {max} characters")));
    }
    if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) {
        return Err(ApiError::invalid(format!("{field}: must not contain control characters")));
    }
    Ok(value.to_owned())
}
