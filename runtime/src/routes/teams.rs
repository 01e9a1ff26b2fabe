//! `/api/teams` and `/api/drivers`: teams (admin creates, members read), membership, driver
//! profiles and their status.

use actix_web::{web, HttpResponse};
use pitbox_schema::db::models::Driver;
use pitbox_schema::db::store::{drivers, teams};
use pitbox_schema::wire::{DriverProfile, DriverUpdate, ErrorBody, NewDriver, NewTeam, Team, TeamMember};

use crate::auth::AuthUser;
use crate::db::Db;
use crate::error::{ApiError, ApiResult, Found};
use crate::routes::scope::{Admin, Engineer, InTeam, TeamScope};
use crate::routes::{limits, text};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/teams", web::get().to(list_teams))
        .route("/teams", web::post().to(create_team))
        .route("/teams/{id}", web::get().to(get_team))
        .route("/teams/{id}/members", web::post().to(add_member))
        .route("/teams/{id}/drivers", web::get().to(list_drivers))
        .route("/teams/{id}/drivers", web::post().to(create_driver))
        .route("/drivers/{id}", web::get().to(get_driver))
        .route("/drivers/{id}", web::patch().to(update_driver));
}

#[utoipa::path(get, path = "/api/teams", tag = "teams", security(("bearer" = [])),
    responses((status = 200, body = [Team])))]
pub async fn list_teams(user: AuthUser, db: web::Data<Db>) -> ApiResult<web::Json<Vec<Team>>> {
    let only = (!user.is_admin()).then(|| user.teams.clone());
    let teams = db.run(move |c| Ok(teams::list_teams(c, only.as_deref())?)).await?;
    Ok(web::Json(teams.into_iter().map(Team::from).collect()))
}

#[utoipa::path(post, path = "/api/teams", tag = "teams", security(("bearer" = [])),
    request_body = NewTeam,
    responses((status = 201, body = Team), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_team(_: Admin, db: web::Data<Db>, body: web::Json<NewTeam>) -> ApiResult<HttpResponse> {
    let name = text("name", &body.name, limits::NAME)?;
    let team = db.run(move |c| Ok(teams::create_team(c, &name)??)).await?;
    Ok(HttpResponse::Created().json(Team::from(team)))
}

#[utoipa::path(get, path = "/api/teams/{id}", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Team), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_team(team: TeamScope, db: web::Data<Db>) -> ApiResult<web::Json<Team>> {
    Ok(web::Json(team.run(&db, |_, team| Ok(team.into())).await?))
}

#[utoipa::path(post, path = "/api/teams/{id}/members", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = TeamMember,
    responses((status = 200, body = pitbox_schema::wire::Success), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn add_member(
    _: Admin,
    db: web::Data<Db>,
    path: web::Path<String>,
    body: web::Json<TeamMember>,
) -> ApiResult<web::Json<pitbox_schema::wire::Success>> {
    let team = path.into_inner();
    let member = body.into_inner().user_id;
    db.run(move |c| Ok(teams::add_member(c, &team, &member)??)).await?;
    Ok(web::Json(pitbox_schema::wire::Success { success: true }))
}

#[utoipa::path(get, path = "/api/teams/{id}/drivers", tag = "drivers", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = [DriverProfile]), (status = 403, body = ErrorBody)))]
pub async fn list_drivers(team: TeamScope, db: web::Data<Db>) -> ApiResult<web::Json<Vec<DriverProfile>>> {
    let rows = team.run(&db, |c, team| Ok(drivers::list_drivers(c, &team.id)?)).await?;
    Ok(web::Json(rows.iter().map(|d| d.to_wire(false)).collect()))
}

#[utoipa::path(post, path = "/api/teams/{id}/drivers", tag = "drivers", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = NewDriver,
    responses((status = 201, body = DriverProfile), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "that user already has a driver profile"),
              (status = 422, body = ErrorBody)))]
pub async fn create_driver(
    team: TeamScope<Engineer>,
    db: web::Data<Db>,
    body: web::Json<NewDriver>,
) -> ApiResult<HttpResponse> {
    let mut new = body.into_inner();
    new.name = text("name", &new.name, limits::NAME)?;
    check_number(new.number)?;
    check_avatar(new.avatar_url.as_deref())?;
    // Engineers attach only users already on their own team: anyone else would gain the team
    // (membership, telemetry as its driver) by the engineer's word alone. Admins may attach any
    // user, which also makes them a member. Unknown and foreign users get the same answer, so
    // the check tells nothing about other teams.
    let admin = team.user.is_admin();
    let driver = team
        .run(&db, move |c, team| {
            if let Some(uid) = new.user_id.as_deref().filter(|_| !admin) {
                if !teams::is_member(c, &team.id, uid)? {
                    return Err(ApiError::forbidden(
                        "userId: only users who are members of this team can be given a driver profile here",
                    ));
                }
            }
            Ok(drivers::create_driver(c, &team.id, &new)??)
        })
        .await?;
    Ok(HttpResponse::Created().json(driver.to_wire(false)))
}

fn check_number(n: i32) -> Result<(), ApiError> {
    if (0..=999).contains(&n) {
        Ok(())
    } else {
        Err(ApiError::invalid("number: must be 0 to 999"))
    }
}

fn check_avatar(url: Option<&str>) -> Result<(), ApiError> {
    let Some(u) = url else { return Ok(()) };
    if u.chars().count() > limits::URL {
        return Err(ApiError::invalid(format!("avatarUrl: at most {} characters", limits::URL)));
    }
    let acceptable =
        u.is_empty() || u.starts_with("https://") || u.starts_with("http://") || u.starts_with('/');
    if !acceptable {
        return Err(ApiError::invalid("avatarUrl: must be an http(s) URL or a path"));
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/drivers/{id}", tag = "drivers", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = DriverProfile), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_driver(driver: InTeam<Driver>) -> web::Json<DriverProfile> {
    web::Json(driver.item.to_wire(false))
}

#[utoipa::path(patch, path = "/api/drivers/{id}", tag = "drivers", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = DriverUpdate,
    responses((status = 200, body = DriverProfile), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_driver(
    driver: InTeam<Driver>,
    db: web::Data<Db>,
    body: web::Json<DriverUpdate>,
) -> ApiResult<web::Json<DriverProfile>> {
    let InTeam { user, item: driver } = driver;
    let mut update = body.into_inner();
    if let Some(n) = &update.name {
        update.name = Some(text("name", n, limits::NAME)?);
    }
    if let Some(n) = update.number {
        check_number(n)?;
    }
    check_avatar(update.avatar_url.as_deref())?;
    // Staff edit any profile of their team; a driver may set only their own status.
    let own = user.driver_id.as_deref() == Some(driver.id.as_str());
    let staff = user.role.is_staff();
    let status_only = update.role.is_none()
        && update.name.is_none()
        && update.number.is_none()
        && update.avatar_url.is_none();
    if !(staff || own && status_only) {
        return Err(ApiError::forbidden("drivers may change only their own status"));
    }
    let driver =
        db.run(move |c| drivers::update_driver(c, &driver.id, &update).found("driver", &driver.id)).await?;
    Ok(web::Json(driver.to_wire(false)))
}
