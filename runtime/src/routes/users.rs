//! `/api/users`: user management (admin), and password changes (admin, or users themselves).
//! The CLI's `user add|list|passwd` share [`create_user`] and [`change_password`].
//!
//! Changing one's own password needs the current one (`currentPassword`), so a stolen access
//! token cannot take the account over; an admin resetting *another* user's password does not
//! (the admin's own authority is the proof, as for `pitbox-runtime user passwd`). Either way every
//! session of that user ends: refresh tokens are revoked and access tokens stop working.

use actix_web::{web, HttpRequest};
use pitbox_schema::db::store::{teams, users};
use pitbox_schema::db::DbConnection;
use pitbox_schema::wire::{ErrorBody, NewUser, UserInfo};
use serde::Deserialize;

use crate::auth::{self, AuthUser, Keys};
use crate::db::Db;
use crate::error::{ApiError, ApiResult, BodyRef, Found};
use crate::ratelimit::RateLimits;
use crate::routes::scope::Admin;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(list))
        .route("/users", web::post().to(create))
        .route("/users/{id}/password", web::put().to(password));
}

pub fn validate_username(name: &str) -> Result<(), ApiError> {
    let ok_len = (3..=64).contains(&name.len());
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(ApiError::invalid("username: 3 to 64 characters of a-z, A-Z, 0-9, '.', '_' or '-'"))
    }
}

/// Validates, hashes the password (argon2id) and stores the user with its team memberships.
pub fn create_user(conn: &mut DbConnection, new: &NewUser) -> ApiResult<UserInfo> {
    validate_username(&new.username)?;
    auth::validate_password(&new.password)?;
    let hash = auth::hash_password(&new.password)?;
    diesel::Connection::transaction(conn, |c| {
        let user = users::create_user(c, &new.username, hash, new.role)??;
        for team in &new.teams {
            let t = teams::find_team(c, team).body_ref(format!("teams: no team {team:?}"))?;
            teams::add_member(c, &t.id, &user.id)??;
        }
        Ok(users::user_info(c, &user)?)
    })
}

pub fn change_password(conn: &mut DbConnection, user_id: &str, password: &str) -> ApiResult<()> {
    auth::validate_password(password)?;
    let hash = auth::hash_password(password)?;
    users::set_password(conn, user_id, hash).found("user", user_id)
}

#[utoipa::path(get, path = "/api/users", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = [UserInfo]), (status = 403, body = ErrorBody)))]
pub async fn list(_: Admin, db: web::Data<Db>) -> ApiResult<web::Json<Vec<UserInfo>>> {
    let users = db
        .run(|c| {
            let rows = users::list_users(c)?;
            Ok(rows.iter().map(|u| users::user_info(c, u)).collect::<diesel::QueryResult<Vec<_>>>()?)
        })
        .await?;
    Ok(web::Json(users))
}

#[utoipa::path(post, path = "/api/users", tag = "users", security(("bearer" = [])),
    request_body = NewUser,
    responses((status = 201, body = UserInfo), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn create(
    _: Admin,
    db: web::Data<Db>,
    body: web::Json<NewUser>,
) -> ApiResult<actix_web::HttpResponse> {
    let new = body.into_inner();
    let info = db.run(move |c| create_user(c, &new)).await?;
    Ok(actix_web::HttpResponse::Created().json(info))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChange {
    /// The new password (at least 8 characters).
    pub password: String,
    /// The password being replaced: required to change one's own password; not needed by an
    /// admin resetting another user's.
    #[serde(default)]
    pub current_password: Option<String>,
}

impl std::fmt::Debug for PasswordChange {
    // By hand, so that no log line can ever carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChange").finish_non_exhaustive()
    }
}

#[utoipa::path(put, path = "/api/users/{id}/password", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "user id")), request_body = PasswordChange,
    responses((status = 200, body = pitbox_schema::wire::Success),
              (status = 403, body = ErrorBody, description = "not your account, or currentPassword missing or wrong"),
              (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody, description = "the new password is too short or too long")))]
pub async fn password(
    req: HttpRequest,
    user: AuthUser,
    db: web::Data<Db>,
    keys: web::Data<Keys>,
    limits: web::Data<RateLimits>,
    path: web::Path<String>,
    body: web::Json<PasswordChange>,
) -> ApiResult<web::Json<pitbox_schema::wire::Success>> {
    let id = path.into_inner();
    if !user.is_admin() && user.id != id {
        return Err(ApiError::forbidden("you may change only your own password"));
    }
    let PasswordChange { password, current_password } = body.into_inner();
    auth::validate_password(&password)?;
    if user.id == id {
        // Guessing the current password here is a login attempt: same limit as login.
        if let Some(ip) = crate::proxy::client_ip(&req) {
            limits.check_login(ip)?;
        }
        // Missing or wrong, the answer is the same 403: proving who you are is what failed.
        let Some(current) = current_password.filter(|p| !p.is_empty()) else {
            return Err(wrong_current("currentPassword is required to change your own password"));
        };
        let lookup = id.clone();
        let stored = db.run(move |c| users::get_user(c, &lookup).found("user", &lookup)).await?.password_hash;
        if !web::block(move || auth::verify_password(&current, &stored)).await? {
            return Err(wrong_current("currentPassword is wrong"));
        }
    }
    let target = id.clone();
    db.run(move |c| change_password(c, &target, &password)).await?;
    keys.forget(&id);
    Ok(web::Json(pitbox_schema::wire::Success { success: true }))
}

fn wrong_current(message: &str) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::FORBIDDEN,
        pitbox_schema::wire::ErrorCode::InvalidCredentials,
        message,
    )
}
