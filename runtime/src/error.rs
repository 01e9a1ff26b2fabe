//! The one error type of the HTTP API: every failure becomes a status code and a JSON body
//! `{code, message}` naming the problem. Internal failures are logged with detail and answered with
//! a generic message, so nothing about the database leaks to clients. What a storage result means
//! to a client is said here, once: a lookup that found no row ([`Found`]), a write the storage
//! layer refused (`From<Refused>`), any other database failure (`From<diesel::result::Error>`).
//! Reads no env vars.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use pitbox_schema::db::store::{Refused, Taken};
use pitbox_schema::wire::{ErrorBody, ErrorCode};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Seconds, for `429 Too Many Requests`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, message)
    }
    pub fn unauthorized(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("{what} {id:?} not found"))
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorCode::Conflict, message)
    }
    pub fn too_many(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, "too many requests")
        }
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, message)
    }
    /// Logs the cause and answers 500 without exposing it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal server error")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        res.json(ErrorBody { code: self.code, message: self.message.clone(), request_id: None })
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "not found"),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                tracing::debug!(detail = info.message(), "unique violation");
                Self::conflict("already exists")
            }
            Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => {
                tracing::debug!(detail = info.message(), "foreign key violation");
                Self::invalid("refers to something that does not exist")
            }
            other => Self::internal(other),
        }
    }
}

impl From<pitbox_schema::db::DbError> for ApiError {
    fn from(e: pitbox_schema::db::DbError) -> Self {
        match e {
            pitbox_schema::db::DbError::Query(q) => q.into(),
            pitbox_schema::db::DbError::Pool(p) => {
                tracing::error!(error = %p, "database pool exhausted or unreachable");
                Self::unavailable("database unavailable")
            }
            other => Self::internal(other),
        }
    }
}

/// A write the storage layer refused, as every route answers it: the team (named in the path)
/// `404`, the user (named in the body) `422`, a taken name or a handoff answered already `409`.
impl From<Refused> for ApiError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::NoTeam(id) => Self::not_found("team", &id),
            Refused::NoUser(_) => Self::invalid("userId: refers to something that does not exist"),
            Refused::Taken(Taken::Username(name)) => Self::conflict(format!("username {name:?} is taken")),
            Refused::Taken(Taken::TeamName(name)) => Self::conflict(format!("team {name:?} exists")),
            Refused::Taken(Taken::DriverProfile) => Self::conflict("that user already has a driver profile"),
            Refused::Handoff { is, to } => {
                Self::conflict(format!("handoff request is {is}, it cannot become {}", to.as_str()))
            }
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::internal(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Find-or-404, written once: a lookup of one thing by id that came back empty becomes `404`
/// naming what was looked for (`team "x" not found`).
pub trait Found<T> {
    fn found(self, what: &str, id: &str) -> ApiResult<T>;
}

impl<T> Found<T> for Option<T> {
    fn found(self, what: &str, id: &str) -> ApiResult<T> {
        self.ok_or_else(|| ApiError::not_found(what, id))
    }
}

/// A diesel query for one row: no row is `404` naming it, any other failure as `From` says.
impl<T> Found<T> for diesel::QueryResult<T> {
    fn found(self, what: &str, id: &str) -> ApiResult<T> {
        match self {
            Err(diesel::result::Error::NotFound) => Err(ApiError::not_found(what, id)),
            other => other.map_err(ApiError::from),
        }
    }
}

/// An id in a request *body* that names nothing is the body's fault: `422` with a message naming
/// the field, where the same id in the path would be `404`.
pub trait BodyRef<T> {
    fn body_ref(self, message: impl Into<String>) -> ApiResult<T>;
}

impl<T> BodyRef<T> for ApiResult<T> {
    fn body_ref(self, message: impl Into<String>) -> ApiResult<T> {
        self.map_err(|e| if e.status == StatusCode::NOT_FOUND { ApiError::invalid(message) } else { e })
    }
}

/// A diesel query for one row named in the body: no row is `422` with the message.
impl<T> BodyRef<T> for diesel::QueryResult<T> {
    fn body_ref(self, message: impl Into<String>) -> ApiResult<T> {
        match self {
            Err(diesel::result::Error::NotFound) => Err(ApiError::invalid(message)),
            other => other.map_err(ApiError::from),
        }
    }
}
