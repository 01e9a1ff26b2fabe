//! `/api/auth`: login, refresh-token rotation (reuse revokes the family), logout, and `me`.

use actix_web::{web, HttpRequest, HttpResponse};
use pitbox_schema::db::models::User;
use pitbox_schema::db::store::tokens::{self, RefreshOutcome};
use pitbox_schema::db::store::{new_id, users};
use pitbox_schema::wire::{
    ErrorBody, ErrorCode, LoginRequest, LoginResponse, RefreshRequest, Success, UserInfo,
};

use crate::auth::{self, AuthUser, Keys};
use crate::db::Db;
use crate::error::{ApiError, ApiResult, Found};
use crate::ratelimit::RateLimits;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/login", web::post().to(login))
        .route("/auth/refresh", web::post().to(refresh))
        .route("/auth/logout", web::post().to(logout))
        .route("/auth/me", web::get().to(me));
}

/// Logs `user` in: a new refresh-token family, and an access token under the user's current
/// token generation.
async fn issue(db: &Db, keys: &Keys, user: User) -> ApiResult<LoginResponse> {
    let refresh_ttl = keys.refresh_ttl;
    let (refresh_token, hash) = auth::new_refresh_token();
    let (info, generation) = db
        .run(move |c| {
            tokens::insert_refresh_token(c, &user.id, &new_id(), hash, refresh_ttl)?;
            let generation = users::token_state(c, &user.id)?.map_or(0, |(g, _)| g);
            Ok((users::user_info(c, &user)?, generation))
        })
        .await?;
    let (token, expires_in) = keys.issue(&info, generation)?;
    Ok(LoginResponse { token, refresh_token, expires_in, user: info })
}

fn bad_credentials() -> ApiError {
    ApiError::unauthorized(ErrorCode::InvalidCredentials, "wrong username or password")
}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody),
              (status = 429, body = ErrorBody)))]
pub async fn login(
    req: HttpRequest,
    db: web::Data<Db>,
    keys: web::Data<Keys>,
    limits: web::Data<RateLimits>,
    body: web::Json<LoginRequest>,
) -> ApiResult<web::Json<LoginResponse>> {
    if let Some(ip) = crate::proxy::client_ip(&req) {
        limits.check_login(ip)?;
    }
    let LoginRequest { username, password } = body.into_inner();
    if username.is_empty() || password.is_empty() {
        return Err(ApiError::invalid("username and password must not be empty"));
    }
    if username.len() > 256 || password.len() > 1024 {
        return Err(bad_credentials());
    }
    let user = db.run(move |c| Ok(users::find_user_by_name(c, &username)?)).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let ok = web::block(move || {
        let hash = hash.as_deref().unwrap_or(auth::dummy_hash());
        auth::verify_password(&password, hash)
    })
    .await?;
    match user {
        Some(u) if ok && !u.disabled => Ok(web::Json(issue(&db, &keys, u).await?)),
        _ => Err(bad_credentials()),
    }
}

#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    db: web::Data<Db>,
    keys: web::Data<Keys>,
    body: web::Json<RefreshRequest>,
) -> ApiResult<web::Json<LoginResponse>> {
    let hash = auth::hash_refresh_token(&body.refresh_token);
    let (refresh_token, new_hash) = auth::new_refresh_token();
    let refresh_ttl = keys.refresh_ttl;
    // Using the old token, storing its successor and reading the user happen on one connection;
    // the first two in one transaction (see `tokens::rotate_refresh_token`).
    let (outcome, user) = db
        .run(move |c| {
            let outcome = tokens::rotate_refresh_token(c, &hash, new_hash, refresh_ttl)?;
            let user = match &outcome {
                RefreshOutcome::Rotated { user_id, generation } => {
                    let user = users::get_user(c, user_id).found("user", user_id)?;
                    Some((users::user_info(c, &user)?, *generation, user.disabled))
                }
                _ => None,
            };
            Ok((outcome, user))
        })
        .await?;
    match (outcome, user) {
        (RefreshOutcome::Rotated { .. }, Some((info, generation, disabled))) => {
            if disabled {
                return Err(ApiError::unauthorized(ErrorCode::Unauthorized, "account disabled"));
            }
            let (token, expires_in) = keys.issue(&info, generation)?;
            Ok(web::Json(LoginResponse { token, refresh_token, expires_in, user: info }))
        }
        (RefreshOutcome::Rotated { .. } | RefreshOutcome::Unknown, _) => {
            Err(ApiError::unauthorized(ErrorCode::TokenInvalid, "unknown refresh token"))
        }
        (RefreshOutcome::Expired, _) => {
            Err(ApiError::unauthorized(ErrorCode::TokenExpired, "refresh token expired"))
        }
        (RefreshOutcome::Reused { user_id }, _) => {
            keys.forget(&user_id);
            tracing::warn!("refresh token reuse detected; token family revoked, access tokens ended");
            Err(ApiError::unauthorized(
                ErrorCode::TokenInvalid,
                "refresh token already used; every session of this login is revoked",
            ))
        }
    }
}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = Success)))]
pub async fn logout(
    db: web::Data<Db>,
    keys: web::Data<Keys>,
    body: web::Json<RefreshRequest>,
) -> ApiResult<HttpResponse> {
    let hash = auth::hash_refresh_token(&body.refresh_token);
    // Ends the refresh-token family and every access token of the user (the generation moves).
    if let Some(user) = db.run(move |c| Ok(tokens::revoke_by_token(c, &hash)?)).await? {
        keys.forget(&user);
    }
    Ok(HttpResponse::Ok().json(Success { success: true }))
}

#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserInfo), (status = 401, body = ErrorBody)))]
pub async fn me(user: AuthUser) -> web::Json<UserInfo> {
    web::Json(UserInfo {
        id: user.id,
        username: user.username,
        role: user.role,
        teams: user.teams,
        driver_id: user.driver_id,
    })
}
