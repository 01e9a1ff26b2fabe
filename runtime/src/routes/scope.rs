//! What a route is about, taken from the request once, so that a handler states only its own
//! work:
//!
//! - [`TeamScope`]: the team of a `/api/teams/{id}/…` route and its caller, who passes a
//!   [`TeamRule`] for it ([`Member`], [`Staff`] or [`Engineer`]); [`TeamScope::run`] queries the
//!   team's data once the team is known to exist.
//! - [`InTeam`]: the row a `/api/{drivers,sessions,laps,messages,handoffs}/{id}` route names,
//!   found (or `404`) and readable by its caller (or `403`).
//! - [`Authorized`]: the caller, who must pass a [`RoleRule`] whatever the team ([`Admin`],
//!   [`EngineerView`]).
//!
//! Each authenticates through [`AuthUser`]'s extractor exactly once, so the per-user rate limit
//! still counts a request once, and the rules themselves stay in [`AuthUser`] (which applies the
//! `Role` rules of `pitbox_schema::wire`). Reads no env vars.

use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use pitbox_schema::db::models::{self, LapRow, Team};
use pitbox_schema::db::store::{drivers, handoffs, laps, messages, sessions, teams};
use pitbox_schema::db::DbConnection;
use pitbox_schema::wire;
use serde::Deserialize;

use crate::auth::AuthUser;
use crate::db::Db;
use crate::error::{ApiError, ApiResult, Found};

/// A rule about the caller and one team.
pub trait TeamRule {
    fn check(user: &AuthUser, team_id: &str) -> ApiResult<()>;
}

/// Members of the team (admins read every team).
#[derive(Debug)]
pub enum Member {}
/// Team staff of the team (`Role::is_staff`).
#[derive(Debug)]
pub enum Staff {}
/// Engineers of the team, or admins (`Role::is_engineer`).
#[derive(Debug)]
pub enum Engineer {}

impl TeamRule for Member {
    fn check(user: &AuthUser, team_id: &str) -> ApiResult<()> {
        user.require_team(team_id)
    }
}

impl TeamRule for Staff {
    fn check(user: &AuthUser, team_id: &str) -> ApiResult<()> {
        user.require_staff(team_id)
    }
}

impl TeamRule for Engineer {
    fn check(user: &AuthUser, team_id: &str) -> ApiResult<()> {
        user.require_engineer(team_id)
    }
}

/// A team the caller may act on under rule `R`. Extracted from the `{id}` of the route, or made
/// with [`TeamScope::new`] where the team is named elsewhere (a query, a socket message).
#[derive(Debug)]
pub struct TeamScope<R: TeamRule = Member> {
    pub user: AuthUser,
    pub team_id: String,
    rule: PhantomData<fn() -> R>,
}

impl<R: TeamRule> TeamScope<R> {
    /// `user` acting on `team_id`, if rule `R` lets them (`403` otherwise).
    pub fn new(user: AuthUser, team_id: String) -> ApiResult<Self> {
        R::check(&user, &team_id)?;
        Ok(Self { user, team_id, rule: PhantomData })
    }

    /// Runs `f` with the team's row on one pooled connection; `404` when there is no such team
    /// (admins pass the membership rule for any id, so existence is checked here).
    pub async fn run<T, F>(&self, db: &Db, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection, Team) -> ApiResult<T> + Send + 'static,
    {
        let id = self.team_id.clone();
        db.run(move |c| {
            let team = teams::get_team(c, &id).found("team", &id)?;
            f(c, team)
        })
        .await
    }
}

impl<R: TeamRule> FromRequest for TeamScope<R> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (user, id) = (AuthUser::from_request(req, payload), path_id(req));
        Box::pin(async move { Ok(Self::new(user.await?, id?)?) })
    }
}

/// The `{id}` segment, decoded as `web::Path` decodes it (the path's error handler applies).
fn path_id(req: &HttpRequest) -> Result<String, actix_web::Error> {
    #[derive(Deserialize)]
    struct IdPath {
        id: String,
    }
    // Path extraction is synchronous: its future is ready at once.
    web::Path::<IdPath>::extract(req).into_inner().map(|p| p.into_inner().id)
}

/// A lap's summary with its compressed telemetry, as `laps::get_lap` reads it.
pub type LapWithFrames = (LapRow, Vec<u8>);

/// Something that belongs to one team and is found by its id.
pub trait OfTeam: Sized + Send + 'static {
    /// The row with this id; `404` naming it when there is none.
    fn find(c: &mut DbConnection, id: &str) -> ApiResult<Self>;
    fn team_id(&self) -> &str;
}

/// Rows whose team is their `team_id` column, found by one store function (what it is called
/// in a `404`).
macro_rules! of_team {
    ($($row:ty => $find:path, $what:literal),* $(,)?) => {$(
        impl OfTeam for $row {
            fn find(c: &mut DbConnection, id: &str) -> ApiResult<Self> {
                $find(c, id).found($what, id)
            }
            fn team_id(&self) -> &str {
                &self.team_id
            }
        }
    )*};
}

of_team!(
    models::Driver => drivers::get_driver, "driver",
    models::RacingSession => sessions::get_session, "session",
    models::TeamMessage => messages::get_message, "message",
    models::HandoffRequest => handoffs::get_handoff, "handoff request",
);

impl OfTeam for LapWithFrames {
    fn find(c: &mut DbConnection, id: &str) -> ApiResult<Self> {
        laps::get_lap(c, id).found("lap", id)
    }
    fn team_id(&self) -> &str {
        &self.0.team_id
    }
}

/// A handoff as the API shows it (with the target driver's name).
impl OfTeam for wire::HandoffRequest {
    fn find(c: &mut DbConnection, id: &str) -> ApiResult<Self> {
        let h = models::HandoffRequest::find(c, id)?;
        Ok(handoffs::handoff_to_wire(c, &h)?)
    }
    fn team_id(&self) -> &str {
        &self.team_id
    }
}

/// Finds `T` by `id` (`404` when there is none) and checks that `user` may read its team (`403`):
/// in that order, so a missing row and a foreign one answer as they always have.
pub async fn find_in_team<T: OfTeam>(user: &AuthUser, db: &Db, id: String) -> ApiResult<T> {
    let item = db.run(move |c| T::find(c, &id)).await?;
    user.require_team(item.team_id())?;
    Ok(item)
}

/// The `T` named by the route's `{id}`, and its caller, a member of its team.
#[derive(Debug)]
pub struct InTeam<T> {
    pub user: AuthUser,
    pub item: T,
}

impl<T: OfTeam> FromRequest for InTeam<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (user, id) = (AuthUser::from_request(req, payload), path_id(req));
        let db = req.app_data::<web::Data<Db>>().cloned();
        Box::pin(async move {
            let (user, id) = (user.await?, id?);
            let db = db.ok_or_else(|| ApiError::internal("database is not configured"))?;
            let item = find_in_team(&user, &db, id).await?;
            Ok(Self { user, item })
        })
    }
}

/// A rule about the caller alone, whatever the team.
pub trait RoleRule {
    fn check(user: &AuthUser) -> ApiResult<()>;
}

/// Admins.
#[derive(Debug)]
pub enum AdminRole {}
/// Engineers and admins: the engineer view, which filters by team itself.
#[derive(Debug)]
pub enum EngineerRole {}

impl RoleRule for AdminRole {
    fn check(user: &AuthUser) -> ApiResult<()> {
        user.require_admin()
    }
}

impl RoleRule for EngineerRole {
    fn check(user: &AuthUser) -> ApiResult<()> {
        user.require_engineer_role()
    }
}

/// The caller, who passes rule `R` (`403` otherwise).
#[derive(Debug)]
pub struct Authorized<R: RoleRule> {
    pub user: AuthUser,
    rule: PhantomData<fn() -> R>,
}

pub type Admin = Authorized<AdminRole>;
pub type EngineerView = Authorized<EngineerRole>;

impl<R: RoleRule> FromRequest for Authorized<R> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = AuthUser::from_request(req, payload);
        Box::pin(async move {
            let user = user.await?;
            R::check(&user)?;
            Ok(Self { user, rule: PhantomData })
        })
    }
}
