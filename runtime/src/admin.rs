//! `/admin`: the engineers' view of the live actor tree. `GET /admin/actors` returns it as JSON;
//! `GET /admin/actors/stream` (WebSocket; token in `Authorization` or `?access_token=`) pushes a
//! fresh snapshot every second; `POST /admin/actors/fault {path}` makes an actor panic (admins only,
//! and only when `PITBOX_FAULT_INJECTION` is on). `GET /admin/cluster` (cluster mode) gathers
//! every node's tree over NATS, grouped by node with each team's owner and fencing token.
//! Engineers see the runtime and their own teams; admins see everything. Reads no env vars.

use std::time::Duration;

use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use pitbox_actors::supervision::Control;
use pitbox_actors::ActorSystem;
use pitbox_schema::wire::{ActorPath, ActorTree, ClusterView, Envelope, Message as Wire, Success};
use serde::Deserialize;

use crate::auth::{AuthUser, Keys};
use crate::config::Config;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::routes::scope::EngineerView;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/actors", web::get().to(tree))
        .route("/admin/actors/stream", web::get().to(stream))
        .route("/admin/actors/fault", web::post().to(fault))
        .route("/admin/cluster", web::get().to(cluster));
}

/// The tree as `user` may see it: admins everything, engineers all but other teams.
fn visible_tree(system: &ActorSystem, user: &AuthUser) -> ActorTree {
    visible(system.registry().tree(), user)
}

/// `tree` as `user` may see it.
fn visible(mut tree: ActorTree, user: &AuthUser) -> ActorTree {
    if !user.is_admin() {
        // Top-level nodes are `/runtime` (kept) and `/teams/{team}` (kept for the user's teams).
        tree.root.retain(|n| match n.path.parse::<ActorPath>().ok().as_ref().and_then(ActorPath::team_id) {
            Some(team) => user.teams.iter().any(|t| t == team),
            None => !n.path.starts_with("/teams"),
        });
    }
    tree
}

pub async fn tree(engineer: EngineerView, system: web::Data<ActorSystem>) -> web::Json<ActorTree> {
    web::Json(visible_tree(&system, &engineer.user))
}

/// `GET /admin/cluster`: every node's tree and the teams it owns (404 when cluster mode is off).
pub async fn cluster(engineer: EngineerView, req: HttpRequest) -> ApiResult<web::Json<ClusterView>> {
    let Some(cluster) = req.app_data::<web::Data<crate::cluster::Cluster>>() else {
        let why = "cluster mode is off (PITBOX_NATS_URL is not set)";
        return Err(ApiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            pitbox_schema::wire::ErrorCode::NotFound,
            why,
        ));
    };
    let mut view = cluster.view().await.map_err(ApiError::unavailable)?;
    let user = &engineer.user;
    for node in &mut view.nodes {
        node.teams.retain(|t| user.is_admin() || user.teams.contains(&t.team_id));
        node.tree = node.tree.take().map(|t| visible(t, user));
    }
    Ok(web::Json(view))
}

#[derive(Debug, Deserialize)]
pub struct FaultRequest {
    pub path: String,
}

pub async fn fault(
    user: AuthUser,
    system: web::Data<ActorSystem>,
    config: web::Data<Config>,
    body: web::Json<FaultRequest>,
) -> ApiResult<web::Json<Success>> {
    if !config.fault_injection {
        return Err(ApiError::forbidden("fault injection is disabled (PITBOX_FAULT_INJECTION)"));
    }
    user.require_admin()?;
    if system.control(&body.path, Control::Panic) {
        tracing::warn!(path = %body.path, by = %user.username, "fault injected");
        Ok(web::Json(Success { success: true }))
    } else {
        Err(ApiError::not_found("live actor", &body.path))
    }
}

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    pub access_token: Option<String>,
}

pub async fn stream(
    req: HttpRequest,
    payload: web::Payload,
    keys: web::Data<Keys>,
    db: web::Data<Db>,
    system: web::Data<ActorSystem>,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, actix_web::Error> {
    // Browsers cannot set headers on a WebSocket, so the token may come in the query.
    let user = match &query.access_token {
        Some(t) => keys.authenticate(&db, t).await?,
        None => <AuthUser as actix_web::FromRequest>::extract(&req).await?,
    };
    user.require_engineer_role()?;
    ws::start(TreeStream { system: system.get_ref().clone(), user }, &req, payload)
}

/// Pushes the actor tree every second to one engineer.
struct TreeStream {
    system: ActorSystem,
    user: AuthUser,
}

impl TreeStream {
    fn push(&self, ctx: &mut ws::WebsocketContext<Self>) {
        let tree = visible_tree(&self.system, &self.user);
        match serde_json::to_string(&Envelope::new(Wire::ActorTree(Box::new(tree)))) {
            Ok(text) => ctx.text(text),
            Err(e) => tracing::error!(error = %e, "cannot encode the actor tree"),
        }
    }
}

impl Actor for TreeStream {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(16);
        self.push(ctx);
        ctx.run_interval(Duration::from_secs(1), |act, ctx| act.push(ctx));
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for TreeStream {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match msg {
            Ok(ws::Message::Ping(p)) => ctx.pong(&p),
            Ok(ws::Message::Close(r)) => {
                ctx.close(r);
                ctx.stop();
            }
            Ok(_) => {}
            Err(_) => ctx.stop(),
        }
    }
}
