//! The OpenAPI document of the REST API (utoipa), served at `/api/openapi.json`. A test compares it
//! with the committed `runtime/openapi.json` and with the routes the server really answers.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{auth, health, messages, teams, telemetry, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "PitBox runtime API", description = "REST API of the PitBox cloud runtime. \
        Errors are `{code, message}`. Authenticate with `POST /api/auth/login` and send \
        `Authorization: Bearer <token>`."),
    paths(
        auth::login, auth::refresh, auth::logout, auth::me,
        users::list, users::create, users::password,
        teams::list_teams, teams::create_team, teams::get_team, teams::add_member,
        teams::list_drivers, teams::create_driver, teams::get_driver, teams::update_driver,
        telemetry::post_telemetry, telemetry::latest, telemetry::live,
        telemetry::create_session, telemetry::get_session, telemetry::end_session, telemetry::list_sessions,
        telemetry::list_laps, telemetry::get_lap,
        messages::list_messages, messages::send_message, messages::mark_read,
        messages::list_handoffs, messages::create_handoff, messages::get_handoff, messages::answer_handoff,
        health::healthz, health::readyz, health::metrics,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
    }
}

/// The document as pretty JSON (what is committed and served).
pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document())
}
