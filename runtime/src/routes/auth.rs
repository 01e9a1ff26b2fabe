//! `/api/auth`: login, refresh-token rotation (reuse revokes the family), logout, and `me`.

use actix_web::{web, HttpRequest, HttpResponse};
use schema::db::models::User;
use schema::wire::{ErrorBody, ErrorCode, LoginRequest, LoginResponse, RefreshRequest, Success, UserInfo};

use crate::auth::{self, AuthUser, Keys};
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::ratelimit::RateLimits;
use crate::store::{self, RefreshOutcome};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/login", web::post().to(login))
        .route("/auth/refresh", web::post().to(refresh))
        .route("/auth/logout", web::post().to(logout))
        .route("/auth/me", web::get().to(me));
}

/// Issues an access token and a refresh token of the given family (a new family at login).
async fn issue(db: &Db, keys: &Keys, user: User, family: Option<String>) -> ApiResult<LoginResponse> {
    let refresh_ttl = keys.refresh_ttl;
    let (refresh_token, hash) = auth::new_refresh_token();
    let info = db
        .run(move |c| {
            let info = store::user_info(c, &user)?;
            let family = family.unwrap_or_else(store::new_id);
            store::insert_refresh_token(c, &user.id, &family, hash, refresh_ttl)?;
            Ok(info)
        })
        .await?;
    let (token, expires_in) = keys.issue(&info)?;
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
    if let Some(peer) = req.peer_addr() {
        limits.check_login(peer.ip())?;
    }
    let LoginRequest { username, password } = body.into_inner();
    if username.is_empty() || password.is_empty() {
        return Err(ApiError::invalid("username and password must not be empty"));
    }
    if username.len() > 256 || password.len() > 1024 {
        return Err(bad_credentials());
    }
    let user = db.run(move |c| store::find_user_by_name(c, &username)).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let ok = web::block(move || {
        let hash = hash.as_deref().unwrap_or(auth::dummy_hash());
        auth::verify_password(&password, hash)
    })
    .await?;
    match user {
        Some(u) if ok && !u.disabled => Ok(web::Json(issue(&db, &keys, u, None).await?)),
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
    let outcome = db.run(move |c| store::use_refresh_token(c, &hash)).await?;
    match outcome {
        RefreshOutcome::Rotated { user_id, family_id } => {
            let user = db.run(move |c| store::get_user(c, &user_id)).await?;
            if user.disabled {
                return Err(ApiError::unauthorized(ErrorCode::Unauthorized, "account disabled"));
            }
            Ok(web::Json(issue(&db, &keys, user, Some(family_id)).await?))
        }
        RefreshOutcome::Unknown => {
            Err(ApiError::unauthorized(ErrorCode::TokenInvalid, "unknown refresh token"))
        }
        RefreshOutcome::Expired => {
            Err(ApiError::unauthorized(ErrorCode::TokenExpired, "refresh token expired"))
        }
        RefreshOutcome::Reused => {
            tracing::warn!("refresh token reuse detected; token family revoked");
            Err(ApiError::unauthorized(
                ErrorCode::TokenInvalid,
                "refresh token already used; every session of this login is revoked",
            ))
        }
    }
}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = Success)))]
pub async fn logout(db: web::Data<Db>, body: web::Json<RefreshRequest>) -> ApiResult<HttpResponse> {
    let hash = auth::hash_refresh_token(&body.refresh_token);
    db.run(move |c| store::revoke_by_token(c, &hash)).await?;
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
