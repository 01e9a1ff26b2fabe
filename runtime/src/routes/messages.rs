//! Team messages (`/api/teams/{id}/messages`, read state) and driver handoff requests
//! (`/api/teams/{id}/handoffs`, accept/reject/complete), in the seed shapes, pushed to the team
//! through [`Teams`]: its hub here, or in cluster mode the owner's hub on another runtime node.
//! Reads no env vars.

use actix_web::{web, HttpResponse};
use pitbox_schema::db::models;
use pitbox_schema::db::store::{drivers, handoffs, messages, new_id, now, telemetry};
use pitbox_schema::wire::{
    may_answer_handoff, ActorPath, ErrorBody, HandoffParties, HandoffRequest, HandoffStatus, NewHandoff,
    NewTeamMessage, Success, TeamMessage,
};
use serde::Deserialize;

use pitbox_actors::ActorSystem;
use pitbox_schema::wire::{Envelope, Message as Wire};

use crate::auth::AuthUser;
use crate::cluster::{Cluster, Route};
use crate::db::Db;
use crate::error::{ApiError, ApiResult, BodyRef, Found};
use crate::routes::scope::{find_in_team, InTeam, Member, TeamScope};
use crate::routes::{limits, text, Limit};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/teams/{id}/messages", web::get().to(list_messages))
        .route("/teams/{id}/messages", web::post().to(send_message))
        .route("/messages/{id}/read", web::post().to(mark_read))
        .route("/teams/{id}/handoffs", web::get().to(list_handoffs))
        .route("/teams/{id}/handoffs", web::post().to(create_handoff))
        .route("/handoffs/{id}", web::get().to(get_handoff))
        .route("/handoffs/{id}/{action}", web::post().to(answer_handoff));
}

#[utoipa::path(get, path = "/api/teams/{id}/messages", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path), Limit),
    responses((status = 200, body = [TeamMessage]), (status = 403, body = ErrorBody)))]
pub async fn list_messages(
    team: TeamScope,
    db: web::Data<Db>,
    q: web::Query<Limit>,
) -> ApiResult<web::Json<Vec<TeamMessage>>> {
    let (limit, reader) = (q.get(), team.user.id.clone());
    Ok(web::Json(
        team.run(&db, move |c, team| Ok(messages::list_messages(c, &team.id, &reader, limit)?)).await?,
    ))
}

/// Where a team's events go: the team's hub on this node, or — in cluster mode, when another
/// runtime node owns the team — the owner's hub over NATS, whose publisher brings it back to every
/// node that follows the team (this one too), so each dashboard gets it once, wherever it is.
#[derive(Clone)]
pub struct Teams {
    pub system: ActorSystem,
    pub cluster: Option<Cluster>,
}

impl Teams {
    /// The REST handlers' view of it (the cluster is app data only in cluster mode).
    pub fn of(system: &web::Data<ActorSystem>, cluster: Option<web::Data<Cluster>>) -> Self {
        Self { system: system.get_ref().clone(), cluster: cluster.map(|c| c.get_ref().clone()) }
    }
}

/// Pushes an event to the team's dashboards, from the team's hub.
async fn push(teams: &Teams, team: &str, message: Wire) {
    let env = Envelope { from: Some(ActorPath::hub(team).to_string()), ..Envelope::new(message) };
    if let Some(cluster) = &teams.cluster {
        match cluster.claim(team).await {
            Ok(Route::Remote(_)) => return cluster.push_to_owner(team, &env).await,
            Ok(Route::Local(_)) => {}
            // No owner to be found now: this node's dashboards still get it.
            Err(e) => tracing::warn!(team, error = %e, "team event pushed on this node only"),
        }
    }
    if let Err(e) = teams.system.broadcast(team, env).await {
        tracing::warn!(error = %e, "team event not pushed");
    }
}

/// Stores a team message from `user` and pushes it to the team; shared by REST and the socket.
pub async fn send(
    db: &Db,
    teams: &Teams,
    user: &AuthUser,
    team: String,
    new: NewTeamMessage,
) -> ApiResult<TeamMessage> {
    let scope = TeamScope::<Member>::new(user.clone(), team)?;
    let content = text("content", &new.content, limits::CONTENT)?;
    if let Some(a) = &new.attachment {
        text("attachment.name", &a.name, limits::ATTACHMENT_NAME)?;
        text("attachment.url", &a.url, limits::URL)?;
    }
    let row = models::TeamMessage {
        id: new_id(),
        team_id: scope.team_id.clone(),
        sender_id: user.id.clone(),
        sender_name: user.username.clone(),
        content,
        priority: new.priority.as_str().to_owned(),
        attachment: new
            .attachment
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(ApiError::internal)?,
        sent_at: now(),
    };
    let wire = row.to_wire(true);
    scope.run(db, move |c, _| Ok(messages::insert_message(c, &row)?)).await?;
    // Recipients have not read it yet.
    push(teams, &scope.team_id, Wire::TeamMessage(TeamMessage { read: false, ..wire.clone() })).await;
    Ok(wire)
}

#[utoipa::path(post, path = "/api/teams/{id}/messages", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = NewTeamMessage,
    responses((status = 201, body = TeamMessage), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn send_message(
    user: AuthUser,
    db: web::Data<Db>,
    system: web::Data<ActorSystem>,
    cluster: Option<web::Data<Cluster>>,
    path: web::Path<String>,
    body: web::Json<NewTeamMessage>,
) -> ApiResult<HttpResponse> {
    let teams = Teams::of(&system, cluster);
    let msg = send(&db, &teams, &user, path.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(msg))
}

#[utoipa::path(post, path = "/api/messages/{id}/read", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Success), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn mark_read(msg: InTeam<models::TeamMessage>, db: web::Data<Db>) -> ApiResult<web::Json<Success>> {
    let InTeam { user, item: msg } = msg;
    db.run(move |c| Ok(messages::mark_read(c, &msg.id, &user.id)?)).await?;
    Ok(web::Json(Success { success: true }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HandoffQuery {
    pub status: Option<HandoffStatus>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/teams/{id}/handoffs", tag = "handoffs", security(("bearer" = [])),
    params(("id" = String, Path), HandoffQuery),
    responses((status = 200, body = [HandoffRequest]), (status = 403, body = ErrorBody)))]
pub async fn list_handoffs(
    team: TeamScope,
    db: web::Data<Db>,
    q: web::Query<HandoffQuery>,
) -> ApiResult<web::Json<Vec<HandoffRequest>>> {
    let (status, limit) = (q.status, Limit::of(q.limit));
    Ok(web::Json(
        team.run(&db, move |c, team| Ok(handoffs::list_handoffs(c, &team.id, status, limit)?)).await?,
    ))
}

/// Stores a handoff request with the handing-over car's latest sample attached.
pub async fn request_handoff(
    db: &Db,
    teams: &Teams,
    user: &AuthUser,
    team: String,
    new: NewHandoff,
) -> ApiResult<HandoffRequest> {
    user.require_team(&team)?;
    let reason = text("reason", &new.reason, limits::REASON)?;
    let from = new
        .from_driver_id
        .clone()
        // Staff act for the team and name the car; anyone else hands over their own.
        .or_else(|| (!user.role.is_staff()).then(|| user.driver_id.clone()).flatten());
    let (requester_id, requester_name) = (user.id.clone(), user.username.clone());
    let h = db
        .run(move |c| {
            let target =
                drivers::get_driver(c, &new.target_driver_id).body_ref("targetDriverId: no such driver")?;
            if target.team_id != team {
                return Err(ApiError::invalid("targetDriverId: driver is not in this team"));
            }
            let snapshot = match &from {
                Some(f) => {
                    let d = drivers::get_driver(c, f).body_ref("fromDriverId: no such driver")?;
                    if d.team_id != team {
                        return Err(ApiError::invalid("fromDriverId: driver is not in this team"));
                    }
                    if d.id == target.id {
                        return Err(ApiError::invalid("targetDriverId: cannot hand over to the same driver"));
                    }
                    telemetry::latest_sample(c, f)?
                }
                None => None,
            };
            let row = models::HandoffRequest {
                id: new_id(),
                team_id: team,
                requester_id,
                requester_name,
                from_driver_id: from,
                target_driver_id: target.id.clone(),
                reason,
                urgency: new.urgency.as_str().to_owned(),
                status: HandoffStatus::Pending.as_str().to_owned(),
                telemetry_snapshot: snapshot
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(ApiError::internal)?,
                requested_at: now(),
                responded_at: None,
                responder_id: None,
                completed_at: None,
            };
            handoffs::insert_handoff(c, &row)?;
            Ok(row.to_wire(target.name))
        })
        .await?;
    push_later(teams, &h);
    Ok(h)
}

/// Pushes a handoff (new or answered) to the team without holding up the answer.
fn push_later(teams: &Teams, h: &HandoffRequest) {
    let (teams, h) = (teams.clone(), h.clone());
    actix_web::rt::spawn(async move {
        let team = h.team_id.clone();
        push(&teams, &team, Wire::HandoffRequest(Box::new(h))).await;
    });
}

#[utoipa::path(post, path = "/api/teams/{id}/handoffs", tag = "handoffs", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = NewHandoff,
    responses((status = 201, body = HandoffRequest), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_handoff(
    user: AuthUser,
    db: web::Data<Db>,
    system: web::Data<ActorSystem>,
    cluster: Option<web::Data<Cluster>>,
    path: web::Path<String>,
    body: web::Json<NewHandoff>,
) -> ApiResult<HttpResponse> {
    let teams = Teams::of(&system, cluster);
    let h = request_handoff(&db, &teams, &user, path.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(h))
}

#[utoipa::path(get, path = "/api/handoffs/{id}", tag = "handoffs", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = HandoffRequest), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_handoff(h: InTeam<HandoffRequest>) -> web::Json<HandoffRequest> {
    web::Json(h.item)
}

/// Accepts, rejects or completes a handoff: team staff, or the drivers involved.
pub async fn answer(
    db: &Db,
    teams: &Teams,
    user: &AuthUser,
    id: String,
    to: HandoffStatus,
) -> ApiResult<HandoffRequest> {
    let h: models::HandoffRequest = find_in_team(user, db, id).await?;
    let parties =
        HandoffParties { target_driver_id: &h.target_driver_id, from_driver_id: h.from_driver_id.as_deref() };
    if !may_answer_handoff(user.role, user.driver_id.as_deref(), parties, to) {
        return Err(ApiError::forbidden("only team staff or the drivers of this handoff may answer it"));
    }
    if to == HandoffStatus::Pending {
        return Err(ApiError::invalid("status: cannot go back to pending"));
    }
    let responder = user.id.clone();
    let h = db
        .run(move |c| {
            let h =
                handoffs::transition_handoff(c, &h.id, to, &responder).found("handoff request", &h.id)??;
            Ok(handoffs::handoff_to_wire(c, &h)?)
        })
        .await?;
    push_later(teams, &h);
    Ok(h)
}

#[utoipa::path(post, path = "/api/handoffs/{id}/{action}", tag = "handoffs", security(("bearer" = [])),
    params(("id" = String, Path), ("action" = String, Path, description = "accept, reject or complete")),
    responses((status = 200, body = HandoffRequest), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn answer_handoff(
    user: AuthUser,
    db: web::Data<Db>,
    system: web::Data<ActorSystem>,
    cluster: Option<web::Data<Cluster>>,
    path: web::Path<(String, String)>,
) -> ApiResult<web::Json<HandoffRequest>> {
    let (id, action) = path.into_inner();
    let to = match action.as_str() {
        "accept" => HandoffStatus::Accepted,
        "reject" => HandoffStatus::Rejected,
        "complete" => HandoffStatus::Completed,
        other => return Err(ApiError::not_found("handoff action", other)),
    };
    Ok(web::Json(answer(&db, &Teams::of(&system, cluster), &user, id, to).await?))
}
