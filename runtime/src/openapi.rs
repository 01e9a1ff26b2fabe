//! The OpenAPI document of the REST API (utoipa), served at `/api/openapi.json`. A test compares it
//! with the committed `runtime/openapi.json` and with the routes the server really answers, and
//! schemathesis (`runtime/tests/schemathesis.rs`) checks the server against it.
//!
//! The answers every route can give for the same reasons are added here once ([`CommonAnswers`])
//! rather than on each route: `400` (malformed JSON, a bad path or query, a NUL character), `401`
//! on routes that need a token, `404` on routes with an id, `413`/`415`/`422` on routes with a
//! body, `429` (rate limits). Strings are documented without NUL ([`NO_NUL`]), as the server
//! refuses it (`crate::input`). Reads no env vars.

use actix_web::HttpResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ArrayItems, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::routes::{auth, coaching, health, messages, teams, telemetry, users, voice};

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
        coaching::analyze, coaching::session_coaching, coaching::session_csv, coaching::lap_corners,
        coaching::lap_analysis, coaching::lap_csv, coaching::strategy, coaching::track_map,
        coaching::put_turns,
        voice::synthesize, voice::clip,
        health::healthz, health::readyz, health::metrics,
    ),
    modifiers(&BearerAuth, &CommonAnswers)
)]
pub struct ApiDoc;

/// Free text (`crate::routes::text`): not blank, no control characters but tab, CR and LF (and no
/// NUL). Python's `\s` (schemathesis) and Rust's `char::is_whitespace` agree on what is blank.
pub const TEXT: &str =
    "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$";

/// What the server checks on each field, as the schema says it: (schema, property, min length,
/// max length, pattern, minimum, maximum).
type Constraint = (
    &'static str,
    &'static str,
    Option<usize>,
    Option<usize>,
    Option<&'static str>,
    Option<f64>,
    Option<f64>,
);

const CONSTRAINTS: &[Constraint] = {
    use crate::routes::limits::*;
    const USERNAME: &str = "^[A-Za-z0-9._-]{3,64}$";
    const AVATAR: &str = "^(https?://|/|$)[^\\x00]*$";
    &[
        ("NewTeam", "name", Some(1), Some(NAME), Some(TEXT), None, None),
        ("NewDriver", "name", Some(1), Some(NAME), Some(TEXT), None, None),
        ("NewDriver", "number", None, None, None, Some(0.0), Some(999.0)),
        ("NewDriver", "avatarUrl", None, Some(URL), Some(AVATAR), None, None),
        ("DriverUpdate", "name", Some(1), Some(NAME), Some(TEXT), None, None),
        ("DriverUpdate", "number", None, None, None, Some(0.0), Some(999.0)),
        ("DriverUpdate", "avatarUrl", None, Some(URL), Some(AVATAR), None, None),
        ("NewSession", "track", Some(1), Some(TRACK), Some(TEXT), None, None),
        ("NewSession", "car", Some(1), Some(TRACK), Some(TEXT), None, None),
        ("NewTeamMessage", "content", Some(1), Some(CONTENT), Some(TEXT), None, None),
        ("Attachment", "name", Some(1), Some(ATTACHMENT_NAME), Some(TEXT), None, None),
        ("Attachment", "url", Some(1), Some(URL), Some(TEXT), None, None),
        ("NewHandoff", "reason", Some(1), Some(REASON), Some(TEXT), None, None),
        ("SynthesizeRequest", "text", Some(1), Some(crate::routes::voice::MAX_TEXT), Some(TEXT), None, None),
        ("SynthesizeRequest", "voiceId", Some(1), Some(64), Some("^[A-Za-z0-9_+-]{1,64}$"), None, None),
        ("SynthesizeRequest", "speed", None, None, None, Some(0.5), Some(2.0)),
        ("NewUser", "username", Some(3), Some(64), Some(USERNAME), None, None),
        ("NewUser", "password", Some(8), Some(256), None, None, None),
        ("PasswordChange", "password", Some(8), Some(256), None, None, None),
        ("LoginRequest", "username", Some(1), None, None, None, None),
        ("LoginRequest", "password", Some(1), None, None, None, None),
        ("TrackCorner", "name", Some(1), Some(100), Some(TEXT), None, None),
        ("TrackCorner", "start", None, None, None, Some(0.0), Some(1.0)),
        ("TrackCorner", "end", None, None, None, Some(0.0), Some(1.0)),
        ("AnalyzeRequest", "driverId", Some(1), None, None, None, None),
        // `TelemetrySample::validate` and the integer widths.
        ("TelemetrySample", "speed", None, None, None, Some(0.0), Some(1000.0)),
        ("TelemetrySample", "rpm", None, None, None, Some(0.0), Some(30000.0)),
        ("TelemetrySample", "throttle", None, None, None, Some(0.0), Some(100.0)),
        ("TelemetrySample", "brake", None, None, None, Some(0.0), Some(100.0)),
        ("TelemetrySample", "clutch", None, None, None, Some(0.0), Some(100.0)),
        ("TelemetrySample", "steeringAngle", None, None, None, Some(-3600.0), Some(3600.0)),
        ("TelemetrySample", "trackPosition", None, None, None, Some(-1.0), Some(1.0)),
        ("TelemetrySample", "fuelLevel", None, None, None, Some(0.0), Some(10000.0)),
        ("TelemetrySample", "fuelLevelPct", None, None, None, Some(0.0), Some(100.0)),
        ("TelemetrySample", "fuelUsePerHour", None, None, None, Some(0.0), Some(10000.0)),
        ("TelemetrySample", "gear", None, None, None, Some(-1.0), Some(127.0)),
        ("TelemetrySample", "sector", None, None, None, Some(0.0), Some(255.0)),
        ("TelemetrySample", "trackSurface", None, None, None, Some(-1.0), Some(3.0)),
        ("TelemetrySample", "incidents", None, None, None, Some(0.0), Some(2_147_483_647.0)),
    ]
};

fn constrain(components: &mut utoipa::openapi::Components) {
    for (schema, property, min_len, max_len, pattern, minimum, maximum) in CONSTRAINTS {
        let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(*schema) else { continue };
        let Some(RefOr::T(Schema::Object(p))) = o.properties.get_mut(*property) else { continue };
        p.min_length = min_len.or(p.min_length);
        p.max_length = max_len.or(p.max_length);
        p.pattern = pattern.map(str::to_owned).or(p.pattern.take());
        p.minimum = minimum.map(utoipa::Number::Float).or(p.minimum.take());
        p.maximum = maximum.map(utoipa::Number::Float).or(p.maximum.take());
    }
}

/// The pattern of every documented string without one of its own: no NUL (U+0000), which the
/// server refuses with 400 wherever it appears.
pub const NO_NUL: &str = "^[^\\x00]*$";

struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let api = path.starts_with("/api/");
            let whoever = path == "/api/auth/me";
            if let Some(op) = item.get.as_mut() {
                // Listing teams shows each caller their own: nothing to refuse.
                add_common_answers(op, api, whoever || path == "/api/teams");
            }
            for op in [&mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
            {
                add_common_answers(op, api, whoever);
            }
        }
        if let Some(components) = openapi.components.as_mut() {
            constrain(components);
            for schema in components.schemas.values_mut() {
                forbid_nul(schema);
            }
        }
    }
}

/// `whoever`: any signed-in user may call it (no 403).
fn add_common_answers(op: &mut Operation, api: bool, whoever: bool) {
    let secured = op.security.as_ref().is_some_and(|reqs| reqs.iter().all(|r| *r != Default::default()));
    let has_body = op.request_body.is_some();
    let has_id =
        op.parameters.iter().flatten().any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Path);
    for p in op.parameters.iter_mut().flatten() {
        if let Some(schema) = p.schema.as_mut() {
            forbid_nul(schema);
        }
    }
    let mut answers: Vec<(&str, &str)> = vec![];
    if api {
        answers.push(("400", "Malformed request: bad JSON, path or query, or a NUL character"));
        answers.push(("429", "Too many requests (see `Retry-After`)"));
    }
    if secured {
        answers.push(("401", "No, an invalid, expired or revoked access token"));
        if !whoever {
            answers.push(("403", "Your role or team does not allow this"));
        }
    }
    if has_id {
        answers.push(("404", "No such resource"));
    }
    if has_body {
        answers.push(("413", "Request body too large"));
        answers.push(("415", "Content-Type is not application/json"));
        answers.push(("422", "A field is invalid"));
    }
    for (status, description) in answers {
        op.responses.responses.entry(status.to_owned()).or_insert_with(|| error_answer(description));
    }
}

fn error_answer(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
            )
            .build(),
    )
}

/// The largest magnitude documented for single-precision numbers (a little under `f32::MAX`).
const F32_LIMIT: f64 = 3.4e38;

/// Bounds every single-precision number in `schema`, and gives every plain string (not an enum,
/// not a formatted one, without a pattern)
/// the [`NO_NUL`] pattern.
fn forbid_nul(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(o) => {
            let string = match &o.schema_type {
                SchemaType::Type(t) => *t == Type::String,
                SchemaType::Array(ts) => ts.contains(&Type::String),
                SchemaType::AnyValue => false,
            };
            if string && o.enum_values.is_none() && o.format.is_none() && o.pattern.is_none() {
                o.pattern = Some(NO_NUL.to_owned());
            }
            // Single precision: what lies beyond is refused (it would be stored as infinity).
            let float = matches!(
                o.format,
                Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                    utoipa::openapi::schema::KnownFormat::Float
                ))
            );
            if float {
                o.minimum = o.minimum.take().or(Some(utoipa::Number::Float(-F32_LIMIT)));
                o.maximum = o.maximum.take().or(Some(utoipa::Number::Float(F32_LIMIT)));
            }
            for p in o.properties.values_mut() {
                forbid_nul(p);
            }
        }
        Schema::Array(a) => {
            if let ArrayItems::RefOrSchema(items) = &mut a.items {
                forbid_nul(items);
            }
        }
        Schema::OneOf(x) => x.items.iter_mut().for_each(forbid_nul),
        Schema::AllOf(x) => x.items.iter_mut().for_each(forbid_nul),
        Schema::AnyOf(x) => x.items.iter_mut().for_each(forbid_nul),
        _ => {}
    }
}

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

/// The methods the document gives `path` (a concrete request path), if it documents the path at
/// all: what a `405 Method Not Allowed` lists in `Allow`.
pub fn allowed_methods(path: &str) -> Option<Vec<&'static str>> {
    static ROUTES: std::sync::OnceLock<Vec<(Vec<String>, Vec<&'static str>)>> = std::sync::OnceLock::new();
    let routes = ROUTES.get_or_init(|| {
        ApiDoc::openapi()
            .paths
            .paths
            .iter()
            .map(|(template, item)| {
                let segments = template.split('/').map(str::to_owned).collect();
                let methods = [
                    ("GET", item.get.is_some()),
                    ("PUT", item.put.is_some()),
                    ("POST", item.post.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ]
                .into_iter()
                .filter_map(|(m, present)| present.then_some(m))
                .collect();
                (segments, methods)
            })
            .collect()
    });
    let wanted: Vec<&str> = path.split('/').collect();
    let mut allowed: Vec<&'static str> = vec![];
    for (segments, methods) in routes {
        let matches = segments.len() == wanted.len()
            && segments.iter().zip(&wanted).all(|(t, w)| (t.starts_with('{') && !w.is_empty()) || t == w);
        if matches {
            allowed.extend(methods.iter().filter(|m| !allowed.contains(m)).collect::<Vec<_>>());
        }
    }
    (!allowed.is_empty()).then_some(allowed)
}

pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document())
}
