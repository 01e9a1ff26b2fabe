//! The abuse table, REST part: what a hostile client tries, one row per case with the outcome it
//! must get, on SQLite and PostgreSQL (`on_both_backends!`). Rows: NUL in every text field, path
//! and query (400, never 500); SQL-ish and space-padded text stored verbatim; path traversal in
//! every path parameter and in static paths; role escalation and cross-team access (including an
//! engineer attaching another team's user); forged tokens (alg none, wrong key, other algorithms,
//! tampered claims); token replay after logout and password change (REST, telemetry, socket);
//! refresh-token reuse and concurrent refreshes; floods (429); unknown HTTP methods in metrics;
//! `/metrics` access; security headers; the password change that needs the current password.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use actix_web::http::StatusCode;
use base64::Engine;
use common::*;
use pitbox_schema::wire::Role;
use serde_json::{json, Value};

/// What a row must get back.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// This status, with a `{code, message}` body whose code is given.
    Error(u16, &'static str),
    /// This status.
    Status(u16),
}

struct Row {
    case: String,
    method: &'static str,
    path: String,
    token: Option<String>,
    body: Option<Value>,
    want: Want,
}

fn row(
    case: impl Into<String>,
    method: &'static str,
    path: impl Into<String>,
    token: Option<&str>,
    body: Option<Value>,
    want: Want,
) -> Row {
    Row { case: case.into(), method, path: path.into(), token: token.map(str::to_owned), body, want }
}

/// Sends every row and fails with the list of rows that got something else. No row may ever get a
/// 5xx.
async fn run_table(srv: &TestServer, table: &str, rows: Vec<Row>) {
    let total = rows.len();
    let mut failures = vec![];
    for r in rows {
        let res = srv.send(r.method, &r.path, r.token.as_deref(), r.body.clone()).await;
        let ok = match r.want {
            Want::Error(status, code) => {
                res.status.as_u16() == status && res.body["code"] == code && res.body["message"].is_string()
            }
            Want::Status(status) => res.status.as_u16() == status,
        };
        if !ok || res.status.is_server_error() {
            failures.push(format!(
                "  {}: {} {} → {} {} (wanted {:?})",
                r.case, r.method, r.path, res.status, res.body, r.want
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{table}: {} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{table}: {total} cases passed");
}

/// A team with an engineer, a driver (with a session and a sample) and an admin; another team with
/// its own driver. Returns the ids and tokens the tables use.
struct World {
    red: String,
    blue: String,
    red_driver: String,
    red_driver_user: String,
    blue_driver: String,
    blue_driver_user: String,
    blue_member: String,
    session: String,
    admin: String,
    admin_id: String,
    engineer: String,
    driver: String,
}

async fn world(srv: &TestServer) -> World {
    let red = srv.create_team("Red");
    let blue = srv.create_team("Blue");
    let (red_driver_user, red_driver) = srv.create_driver("rdrv", &red, 1);
    let (blue_driver_user, blue_driver) = srv.create_driver("bdrv", &blue, 2);
    let blue_member = srv.create_user("bmember", Role::Team, &[&blue]);
    srv.create_user("reng", Role::Engineer, &[&red]);
    let admin_id = srv.create_user("root", Role::Admin, &[]);
    let admin = srv.login("root").await;
    let engineer = srv.login("reng").await;
    let driver = srv.login("rdrv").await;
    let s = srv
        .post("/api/sessions", &driver, json!({"driverId": red_driver, "track": "Spa", "car": "GT3"}))
        .await;
    assert_eq!(s.status, StatusCode::CREATED, "{}", s.body);
    let session = s.body["id"].as_str().unwrap().to_owned();
    World {
        red,
        blue,
        red_driver,
        red_driver_user,
        blue_driver,
        blue_driver_user,
        blue_member,
        session,
        admin,
        admin_id,
        engineer,
        driver,
    }
}

const NUL: &str = "a\u{0}b";

// ---------------------------------------------------------------- NUL

on_both_backends!(nul_in_every_text_field_path_and_query_is_400, |srv| {
    let w = world(&srv).await;
    let (a, e, d) = (Some(w.admin.as_str()), Some(w.engineer.as_str()), Some(w.driver.as_str()));
    let bad = Want::Error(400, "invalid_field");
    let (red, drv, ses) = (&w.red, &w.red_driver, &w.session);
    let mut rows = vec![
        row(
            "login username",
            "POST",
            "/api/auth/login",
            None,
            Some(json!({"username": NUL, "password": "x"})),
            bad,
        ),
        row(
            "login password",
            "POST",
            "/api/auth/login",
            None,
            Some(json!({"username": "rdrv", "password": NUL})),
            bad,
        ),
        row("refresh token", "POST", "/api/auth/refresh", None, Some(json!({"refreshToken": NUL})), bad),
        row("logout token", "POST", "/api/auth/logout", None, Some(json!({"refreshToken": NUL})), bad),
        row(
            "new user name",
            "POST",
            "/api/users",
            a,
            Some(json!({"username": NUL, "password": "long-enough", "role": "team"})),
            bad,
        ),
        row(
            "new user password",
            "POST",
            "/api/users",
            a,
            Some(json!({"username": "nul-user", "password": format!("long-enough{NUL}"), "role": "team"})),
            bad,
        ),
        row(
            "new user team",
            "POST",
            "/api/users",
            a,
            Some(json!({"username": "nul-user", "password": "long-enough", "role": "team", "teams": [NUL]})),
            bad,
        ),
        row(
            "password",
            "PUT",
            format!("/api/users/{}/password", w.red_driver_user),
            a,
            Some(json!({"password": format!("long-enough{NUL}")})),
            bad,
        ),
        row(
            "current password",
            "PUT",
            format!("/api/users/{}/password", w.red_driver_user),
            d,
            Some(json!({"password": "long-enough", "currentPassword": NUL})),
            bad,
        ),
        row("team name", "POST", "/api/teams", a, Some(json!({"name": NUL})), bad),
        row("member id", "POST", format!("/api/teams/{red}/members"), a, Some(json!({"userId": NUL})), bad),
        row(
            "driver name",
            "POST",
            format!("/api/teams/{red}/drivers"),
            e,
            Some(json!({"name": NUL, "number": 5})),
            bad,
        ),
        row(
            "driver avatar",
            "POST",
            format!("/api/teams/{red}/drivers"),
            e,
            Some(json!({"name": "n", "number": 5, "avatarUrl": format!("https://x/{NUL}")})),
            bad,
        ),
        row(
            "driver user id",
            "POST",
            format!("/api/teams/{red}/drivers"),
            e,
            Some(json!({"name": "n", "number": 5, "userId": NUL})),
            bad,
        ),
        row("driver rename", "PATCH", format!("/api/drivers/{drv}"), e, Some(json!({"name": NUL})), bad),
        row(
            "driver avatar edit",
            "PATCH",
            format!("/api/drivers/{drv}"),
            e,
            Some(json!({"avatarUrl": NUL})),
            bad,
        ),
        row(
            "telemetry driver id",
            "POST",
            "/api/telemetry",
            d,
            Some(json!({"driverId": NUL, "timestamp": timestamp_at(0.0), "data": sample_at(0.0, 60.0)})),
            bad,
        ),
        row(
            "session driver id",
            "POST",
            "/api/sessions",
            d,
            Some(json!({"driverId": NUL, "track": "t", "car": "c"})),
            bad,
        ),
        row(
            "session track",
            "POST",
            "/api/sessions",
            d,
            Some(json!({"driverId": drv, "track": NUL, "car": "c"})),
            bad,
        ),
        row(
            "session car",
            "POST",
            "/api/sessions",
            d,
            Some(json!({"driverId": drv, "track": "t", "car": NUL})),
            bad,
        ),
        row(
            "message content",
            "POST",
            format!("/api/teams/{red}/messages"),
            d,
            Some(json!({"content": NUL})),
            bad,
        ),
        row(
            "attachment name",
            "POST",
            format!("/api/teams/{red}/messages"),
            d,
            Some(
                json!({"content": "c", "attachment": {"type": "image", "url": "https://x/y.png", "name": NUL}}),
            ),
            bad,
        ),
        row(
            "attachment url",
            "POST",
            format!("/api/teams/{red}/messages"),
            d,
            Some(json!({"content": "c", "attachment": {"type": "image", "url": NUL, "name": "n"}})),
            bad,
        ),
        row(
            "handoff target",
            "POST",
            format!("/api/teams/{red}/handoffs"),
            e,
            Some(json!({"targetDriverId": NUL, "reason": "r"})),
            bad,
        ),
        row(
            "handoff from",
            "POST",
            format!("/api/teams/{red}/handoffs"),
            e,
            Some(json!({"targetDriverId": drv, "fromDriverId": NUL, "reason": "r"})),
            bad,
        ),
        row(
            "handoff reason",
            "POST",
            format!("/api/teams/{red}/handoffs"),
            e,
            Some(json!({"targetDriverId": drv, "reason": NUL})),
            bad,
        ),
        row(
            "unknown attachment type (control row)",
            "POST",
            format!("/api/teams/{red}/messages"),
            d,
            Some(json!({"content": "c", "attachment": {"type": "file", "url": "https://x/y", "name": "n"}})),
            Want::Error(400, "invalid_field"),
        ),
        row("NUL in a key", "POST", "/api/teams", a, Some(json!({"name": "ok", NUL: 1})), bad),
        row("query driverId (laps)", "GET", format!("/api/teams/{red}/laps?driverId=%00"), a, None, bad),
        row(
            "query sessionId (laps)",
            "GET",
            format!("/api/teams/{red}/laps?sessionId={ses}%00"),
            a,
            None,
            bad,
        ),
        row(
            "query driverId (sessions)",
            "GET",
            format!("/api/teams/{red}/sessions?driverId=%00"),
            a,
            None,
            bad,
        ),
        row("query status (handoffs)", "GET", format!("/api/teams/{red}/handoffs?status=%00"), a, None, bad),
        row("query limit", "GET", format!("/api/teams/{red}/messages?limit=%001"), a, None, bad),
        row("query channels", "GET", "/api/laps/x?channels=speed%00", a, None, bad),
        row("static path", "GET", "/%00", None, None, bad),
        row("static path, deep", "GET", "/teams/%00/x", None, None, bad),
        row("unknown api path", "GET", "/api/%00", None, None, bad),
        row("metrics path", "GET", "/metrics%00", None, None, bad),
    ];
    // Every path parameter of every route.
    for (method, template) in PATH_ROUTES {
        let path = fill_all(template, "x%00y");
        rows.push(row(
            format!("path id: {method} {template}"),
            method,
            path,
            a,
            body_for(method, template, &w),
            bad,
        ));
    }
    // The text `\u0000` (an escaped backslash) is not a NUL: stored verbatim.
    rows.push(row(
        "escaped backslash-u0000 text",
        "POST",
        "/api/teams",
        a,
        Some(json!({"name": "\\u0000 text"})),
        Want::Status(201),
    ));
    rows.push(row(
        "%2500 in a path is the text %00",
        "GET",
        "/api/teams/x%2500",
        a,
        None,
        Want::Error(404, "not_found"),
    ));
    run_table(&srv, "NUL", rows).await;

    // A raw 0x00 byte in a JSON body, and the login it must not reach.
    let raw = srv
        .send_raw(
            "POST",
            "/api/auth/login",
            None,
            Some("{\"username\":\"a\0b\",\"password\":\"x\"}"),
            "application/json",
        )
        .await;
    assert_eq!(raw.status, StatusCode::BAD_REQUEST, "{}", raw.body);
    assert_eq!(raw.body["code"], "invalid_field");
    let teams = srv.get("/api/teams", &w.admin).await;
    assert!(teams.body.as_array().unwrap().iter().any(|t| t["name"] == "\\u0000 text"), "{}", teams.body);

    // The socket: `answer_handoff` (and any other frame) with a NUL gets an `error`, not `internal`.
    let mut ws = WsClient::login(&srv, &w.engineer, "dashboard").await;
    ws.send(json!({"type": "answer_handoff", "id": "h1", "data": {"id": NUL, "status": "accepted"}})).await;
    let err = ws.recv_type("error").await.expect("error frame");
    assert_eq!(err["data"]["code"], "invalid_field", "{err}");
    ws.send(json!({"type": "send_team_message", "id": "m1", "data": {"teamId": w.red, "content": NUL}}))
        .await;
    let err = ws.recv_type("error").await.expect("error frame");
    assert_eq!(err["data"]["code"], "invalid_field", "{err}");
    srv.stop().await;
});

/// Every route with a path parameter (method, template); `{…}` are the parameters.
const PATH_ROUTES: &[(&str, &str)] = &[
    ("PUT", "/api/users/{id}/password"),
    ("GET", "/api/teams/{id}"),
    ("POST", "/api/teams/{id}/members"),
    ("GET", "/api/teams/{id}/drivers"),
    ("POST", "/api/teams/{id}/drivers"),
    ("GET", "/api/drivers/{id}"),
    ("PATCH", "/api/drivers/{id}"),
    ("GET", "/api/drivers/{id}/telemetry/latest"),
    ("GET", "/api/drivers/{id}/live"),
    ("GET", "/api/sessions/{id}"),
    ("POST", "/api/sessions/{id}/end"),
    ("GET", "/api/teams/{id}/sessions"),
    ("GET", "/api/teams/{id}/laps"),
    ("GET", "/api/laps/{id}"),
    ("GET", "/api/teams/{id}/messages"),
    ("POST", "/api/teams/{id}/messages"),
    ("POST", "/api/messages/{id}/read"),
    ("GET", "/api/teams/{id}/handoffs"),
    ("POST", "/api/teams/{id}/handoffs"),
    ("GET", "/api/handoffs/{id}"),
    ("POST", "/api/handoffs/{id}/{action}"),
];

fn fill_all(template: &str, value: &str) -> String {
    template.replace("{id}", value).replace("{action}", value)
}

/// A valid body for the routes that take one (so that only the path is wrong).
fn body_for(method: &str, template: &str, w: &World) -> Option<Value> {
    match (method, template) {
        ("PUT", _) => Some(json!({"password": "long-enough-pw"})),
        ("POST", "/api/teams/{id}/members") => Some(json!({"userId": w.admin_id})),
        ("POST", "/api/teams/{id}/drivers") => Some(json!({"name": "n", "number": 3})),
        ("PATCH", _) => Some(json!({"status": "standby"})),
        ("POST", "/api/teams/{id}/messages") => Some(json!({"content": "c"})),
        ("POST", "/api/teams/{id}/handoffs") => Some(json!({"targetDriverId": w.red_driver, "reason": "r"})),
        _ => None,
    }
}

// ---------------------------------------------------------------- SQL-ish text, verbatim

on_both_backends!(sql_like_and_padded_text_is_stored_verbatim, |srv| {
    let w = world(&srv).await;
    let payloads = [
        "Robert'); DROP TABLE users;--",
        "' OR '1'='1",
        "\"; SELECT pg_sleep(5); --",
        "1; DELETE FROM teams WHERE 1=1",
        "\\'; --",
        "%' AND 1=0 UNION SELECT password_hash FROM users --",
        "  padded both sides  ",
        "\ttab and\r\nCRLF\n",
        "emoji 🏎️ and ünïcödé",
    ];
    let mut failures = vec![];
    for (i, p) in payloads.iter().enumerate() {
        // Team name (admin), driver name (engineer), message content, session track and car,
        // handoff reason, attachment name: each read back as sent.
        let t = srv.post("/api/teams", &w.admin, json!({"name": format!("{p}{i}")})).await;
        if t.body["name"] != format!("{p}{i}") {
            failures.push(format!("team name {p:?}: {} {}", t.status, t.body));
        } else {
            let id = t.body["id"].as_str().unwrap();
            let back = srv.get(&format!("/api/teams/{id}"), &w.admin).await;
            if back.body["name"] != format!("{p}{i}") {
                failures.push(format!("team name read back {p:?}: {}", back.body));
            }
        }
        let d = srv
            .post(
                &format!("/api/teams/{}/drivers", w.red),
                &w.engineer,
                json!({"name": p, "number": 100 + i}),
            )
            .await;
        let back =
            srv.get(&format!("/api/drivers/{}", d.body["id"].as_str().unwrap_or("none")), &w.engineer).await;
        if back.body["name"] != *p {
            failures.push(format!("driver name {p:?}: {} {}", d.status, back.body));
        }
        let m = srv
            .post(
                &format!("/api/teams/{}/messages", w.red),
                &w.driver,
                json!({"content": p, "attachment": {"type": "document", "url": "https://x/y", "name": p}}),
            )
            .await;
        let msgs = srv.get(&format!("/api/teams/{}/messages", w.red), &w.driver).await;
        let found = msgs
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == m.body["id"])
            .cloned()
            .unwrap_or(Value::Null);
        if found["content"] != *p || found["attachment"]["name"] != *p {
            failures.push(format!("message {p:?}: {} {}", m.status, found));
        }
        let s = srv
            .post("/api/sessions", &w.driver, json!({"driverId": w.red_driver, "track": p, "car": p}))
            .await;
        let back =
            srv.get(&format!("/api/sessions/{}", s.body["id"].as_str().unwrap_or("none")), &w.driver).await;
        if back.body["track"] != *p || back.body["car"] != *p {
            failures.push(format!("session {p:?}: {} {}", s.status, back.body));
        }
        let h = srv
            .post(
                &format!("/api/teams/{}/handoffs", w.red),
                &w.engineer,
                json!({"targetDriverId": w.red_driver, "reason": p}),
            )
            .await;
        let back =
            srv.get(&format!("/api/handoffs/{}", h.body["id"].as_str().unwrap_or("none")), &w.engineer).await;
        if back.body["reason"] != *p {
            failures.push(format!("handoff reason {p:?}: {} {}", h.status, back.body));
        }
        // And as a login name: just a failed login, not an error of the database.
        let l = srv.send("POST", "/api/auth/login", None, Some(json!({"username": p, "password": p}))).await;
        if l.status != StatusCode::UNAUTHORIZED {
            failures.push(format!("login {p:?}: {} {}", l.status, l.body));
        }
    }
    // Whitespace only is still empty.
    let blank = srv.post("/api/teams", &w.admin, json!({"name": "   "})).await;
    if blank.status != StatusCode::UNPROCESSABLE_ENTITY {
        failures.push(format!("blank team name: {} {}", blank.status, blank.body));
    }
    // Every table is still there.
    for path in ["/api/users", "/api/teams"] {
        let r = srv.get(path, &w.admin).await;
        if r.status != StatusCode::OK {
            failures.push(format!("{path} after the payloads: {}", r.status));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    srv.stop().await;
});

// ---------------------------------------------------------------- path traversal

const TRAVERSALS: &[&str] = &[
    "..%2f..%2f..%2fetc%2fpasswd",
    "..%2F..%2FCargo.toml",
    "%2e%2e%2f%2e%2e%2fCargo.toml",
    "%2e%2e",
    "..%5c..%5cCargo.toml",
    "%252e%252e%252fCargo.toml",
    "....%2f%2f....%2f%2fetc%2fpasswd",
    "..;%2f..;%2f",
];

on_both_backends!(path_traversal_in_every_path_parameter_is_404, |srv| {
    let w = world(&srv).await;
    let mut rows = vec![];
    for (method, template) in PATH_ROUTES {
        for t in TRAVERSALS {
            let path = if template.ends_with("{action}") {
                // The id is what is looked up first; the action is checked in its own row.
                template.replace("{id}", t).replace("{action}", "accept")
            } else {
                fill_all(template, t)
            };
            // As admin, who may read every team: only the id itself can refuse.
            rows.push(row(
                format!("{method} {template} ← {t}"),
                method,
                path,
                Some(&w.admin),
                body_for(method, template, &w),
                want_traversal(method, template),
            ));
        }
    }
    for t in TRAVERSALS {
        rows.push(row(
            format!("handoff action ← {t}"),
            "POST",
            format!("/api/handoffs/x/{t}"),
            Some(&w.admin),
            None,
            Want::Error(404, "not_found"),
        ));
    }
    run_table(&srv, "path traversal", rows).await;
    srv.stop().await;
});

/// A traversal id names nothing: 404, except where the body's id is checked against it first
/// (a handoff's target driver is not in the "team" `..`: 422).
fn want_traversal(method: &str, template: &str) -> Want {
    match (method, template) {
        ("POST", "/api/teams/{id}/handoffs") => Want::Error(422, "invalid_field"),
        _ => Want::Error(404, "not_found"),
    }
}

#[actix_rt::test]
async fn static_path_traversal_never_leaves_the_dashboard_dir() {
    let root = tempfile::tempdir().unwrap();
    let dist = root.path().join("dist");
    std::fs::create_dir_all(dist.join("assets")).unwrap();
    std::fs::write(dist.join("index.html"), "<!doctype html><title>app</title>INDEX").unwrap();
    std::fs::write(dist.join("assets/app.js"), "console.log('app')").unwrap();
    std::fs::write(root.path().join("secret.txt"), "TOP-SECRET").unwrap();
    std::fs::write(root.path().join("secret"), "TOP-SECRET").unwrap();
    let dir = dist.clone();
    let srv = TestServer::start(Backend::Sqlite, move |c| c.dashboard_dir = dir).await.unwrap();
    let mut failures = vec![];
    let mut paths = vec![];
    for t in TRAVERSALS.iter().chain(&[
        "..%2fsecret.txt",
        "..%2fsecret",
        "%2e%2e%2fsecret.txt",
        "..%5csecret.txt",
        ".%2e/secret.txt",
    ]) {
        paths.push(format!("/{t}"));
        paths.push(format!("/assets/{t}"));
        paths.push(format!("/assets/..%2f..%2f{t}"));
        paths.push(format!("/index.html/{t}"));
    }
    paths.push("/../secret.txt".into());
    paths.push("/assets/../../secret.txt".into());
    for path in &paths {
        let r = srv.send("GET", path, None, None).await;
        let text = r.body.as_str().unwrap_or_default().to_owned();
        // An extension-less path is the app's own route (index.html); anything else is a 404.
        let ok = !text.contains("TOP-SECRET")
            && (r.status == StatusCode::NOT_FOUND
                || r.status == StatusCode::BAD_REQUEST
                || (r.status == StatusCode::OK && text.contains("INDEX")));
        if !ok {
            failures.push(format!("GET {path} → {} {}", r.status, text.chars().take(80).collect::<String>()));
        }
    }
    assert!(failures.is_empty(), "{} of {} paths:\n{}", failures.len(), paths.len(), failures.join("\n"));
    // The real files are still served.
    assert_eq!(srv.send("GET", "/assets/app.js", None, None).await.status, StatusCode::OK);
    srv.stop().await;
}

// ---------------------------------------------------------------- roles and teams

on_both_backends!(role_escalation_and_cross_team_access_are_refused, |srv| {
    let w = world(&srv).await;
    srv.create_user("rteam", Role::Team, &[&w.red]);
    let team_user = srv.login("rteam").await;
    let outsider_id = srv.create_user("nobody", Role::Driver, &[]);
    let (e, d, t) = (Some(w.engineer.as_str()), Some(w.driver.as_str()), Some(team_user.as_str()));
    let forbidden = Want::Error(403, "forbidden");
    let (red, blue) = (&w.red, &w.blue);
    let new_admin = json!({"username": "eve", "password": "long-enough", "role": "admin"});
    let rows = vec![
        // Escalation: users, teams and memberships are the admin's.
        row("driver creates an admin", "POST", "/api/users", d, Some(new_admin.clone()), forbidden),
        row("engineer creates an admin", "POST", "/api/users", e, Some(new_admin.clone()), forbidden),
        row("team creates an admin", "POST", "/api/users", t, Some(new_admin), forbidden),
        row("engineer lists users", "GET", "/api/users", e, None, forbidden),
        row("engineer creates a team", "POST", "/api/teams", e, Some(json!({"name": "Mine"})), forbidden),
        row(
            "engineer adds a member",
            "POST",
            format!("/api/teams/{red}/members"),
            e,
            Some(json!({"userId": outsider_id})),
            forbidden,
        ),
        row(
            "driver promotes itself",
            "PATCH",
            format!("/api/drivers/{}", w.red_driver),
            d,
            Some(json!({"role": "primary"})),
            forbidden,
        ),
        row(
            "driver renames itself",
            "PATCH",
            format!("/api/drivers/{}", w.red_driver),
            d,
            Some(json!({"name": "Champion"})),
            forbidden,
        ),
        row(
            "team member creates a driver",
            "POST",
            format!("/api/teams/{red}/drivers"),
            t,
            Some(json!({"name": "n", "number": 9})),
            forbidden,
        ),
        row(
            "driver sets another's password",
            "PUT",
            format!("/api/users/{}/password", w.admin_id),
            d,
            Some(json!({"password": "taken-over-1"})),
            forbidden,
        ),
        row(
            "engineer sets the admin's password",
            "PUT",
            format!("/api/users/{}/password", w.admin_id),
            e,
            Some(json!({"password": "taken-over-1", "currentPassword": "x"})),
            forbidden,
        ),
        row(
            "driver posts as another driver",
            "POST",
            "/api/telemetry",
            d,
            Some(
                json!({"driverId": w.blue_driver, "timestamp": timestamp_at(0.0), "data": sample_at(0.0, 60.0)}),
            ),
            forbidden,
        ),
        row(
            "team user posts telemetry",
            "POST",
            "/api/telemetry",
            t,
            Some(
                json!({"driverId": w.red_driver, "timestamp": timestamp_at(0.0), "data": sample_at(0.0, 60.0)}),
            ),
            forbidden,
        ),
        row("driver reads the actor tree", "GET", "/admin/actors", d, None, forbidden),
        // Cross-team: the engineer of Red against Blue.
        row(
            "engineer attaches Blue's driver user",
            "POST",
            format!("/api/teams/{red}/drivers"),
            e,
            Some(json!({"name": "x", "number": 7, "userId": w.blue_driver_user})),
            forbidden,
        ),
        row(
            "engineer attaches Blue's team member",
            "POST",
            format!("/api/teams/{red}/drivers"),
            e,
            Some(json!({"name": "x", "number": 7, "userId": w.blue_member})),
            forbidden,
        ),
        row(
            "engineer attaches a teamless user",
            "POST",
            format!("/api/teams/{red}/drivers"),
            e,
            Some(json!({"name": "x", "number": 7, "userId": outsider_id})),
            forbidden,
        ),
        row(
            "engineer attaches an unknown user (same answer)",
            "POST",
            format!("/api/teams/{red}/drivers"),
            e,
            Some(json!({"name": "x", "number": 7, "userId": "no-such-user"})),
            forbidden,
        ),
        row(
            "engineer creates a driver in Blue",
            "POST",
            format!("/api/teams/{blue}/drivers"),
            e,
            Some(json!({"name": "x", "number": 7})),
            forbidden,
        ),
        row("engineer reads Blue", "GET", format!("/api/teams/{blue}"), e, None, forbidden),
        row("engineer reads Blue's drivers", "GET", format!("/api/teams/{blue}/drivers"), e, None, forbidden),
        row(
            "engineer reads Blue's driver",
            "GET",
            format!("/api/drivers/{}", w.blue_driver),
            e,
            None,
            forbidden,
        ),
        row(
            "engineer edits Blue's driver",
            "PATCH",
            format!("/api/drivers/{}", w.blue_driver),
            e,
            Some(json!({"name": "mine"})),
            forbidden,
        ),
        row(
            "engineer reads Blue's telemetry",
            "GET",
            format!("/api/drivers/{}/telemetry/latest", w.blue_driver),
            e,
            None,
            forbidden,
        ),
        row(
            "engineer reads Blue's live state",
            "GET",
            format!("/api/drivers/{}/live", w.blue_driver),
            e,
            None,
            forbidden,
        ),
        row(
            "engineer starts a session for Blue",
            "POST",
            "/api/sessions",
            e,
            Some(json!({"driverId": w.blue_driver, "track": "t", "car": "c"})),
            forbidden,
        ),
        row(
            "engineer reads Blue's sessions",
            "GET",
            format!("/api/teams/{blue}/sessions"),
            e,
            None,
            forbidden,
        ),
        row("engineer reads Blue's laps", "GET", format!("/api/teams/{blue}/laps"), e, None, forbidden),
        row(
            "engineer reads Blue's messages",
            "GET",
            format!("/api/teams/{blue}/messages"),
            e,
            None,
            forbidden,
        ),
        row(
            "engineer writes to Blue",
            "POST",
            format!("/api/teams/{blue}/messages"),
            e,
            Some(json!({"content": "hi"})),
            forbidden,
        ),
        row(
            "engineer reads Blue's handoffs",
            "GET",
            format!("/api/teams/{blue}/handoffs"),
            e,
            None,
            forbidden,
        ),
        row(
            "engineer asks Blue for a handoff",
            "POST",
            format!("/api/teams/{blue}/handoffs"),
            e,
            Some(json!({"targetDriverId": w.blue_driver, "reason": "r"})),
            forbidden,
        ),
        row("driver reads Blue", "GET", format!("/api/teams/{blue}"), d, None, forbidden),
        // What stays allowed.
        row(
            "engineer attaches a Red member",
            "POST",
            format!("/api/teams/{red}/drivers"),
            e,
            Some(
                json!({"name": "Team user", "number": 8, "userId": srv.get("/api/auth/me", &team_user).await.body["id"]}),
            ),
            Want::Status(201),
        ),
        row(
            "a whole float is a driver number",
            "PATCH",
            format!("/api/drivers/{}", w.red_driver),
            e,
            Some(json!({"number": 12.0})),
            Want::Status(200),
        ),
        row(
            "a fraction is not",
            "PATCH",
            format!("/api/drivers/{}", w.red_driver),
            e,
            Some(json!({"number": 12.5})),
            Want::Error(400, "invalid_field"),
        ),
        row(
            "a JSON array is not an update",
            "PATCH",
            format!("/api/drivers/{}", w.red_driver),
            e,
            Some(json!([null, null])),
            Want::Error(400, "invalid_json"),
        ),
        row(
            "a body id that names nothing is 422",
            "POST",
            "/api/sessions",
            e,
            Some(json!({"driverId": "no-such-driver", "track": "t", "car": "c"})),
            Want::Error(422, "invalid_field"),
        ),
        row(
            "an unknown method on a known path is 405",
            "DELETE",
            format!("/api/teams/{red}"),
            e,
            None,
            Want::Error(405, "method_not_allowed"),
        ),
        row(
            "admin attaches anyone",
            "POST",
            format!("/api/teams/{red}/drivers"),
            Some(&w.admin),
            Some(json!({"name": "Nobody", "number": 9, "userId": outsider_id})),
            Want::Status(201),
        ),
    ];
    run_table(&srv, "roles and teams", rows).await;
    // The refused attachment left Blue's users where they were.
    let blue_login = srv.login_full("bdrv").await;
    assert_eq!(blue_login["user"]["teams"], json!([w.blue]), "{blue_login}");
    srv.stop().await;
});

// ---------------------------------------------------------------- forged tokens

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn sign(alg: jsonwebtoken::Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

on_both_backends!(forged_tokens_are_refused, |srv| {
    let w = world(&srv).await;
    let now = chrono::Utc::now().timestamp();
    let claims = |sub: &str, role: &str| json!({"sub": sub, "name": "root", "role": role, "teams": [], "iat": now, "exp": now + 600, "iss": "pitbox", "jti": "j", "gen": 0});
    let admin_claims = claims(&w.admin_id, "admin");
    let good = sign(jsonwebtoken::Algorithm::HS256, TEST_SECRET, &admin_claims);
    assert_eq!(srv.get("/api/users", &good).await.status, StatusCode::OK, "the control token works");
    let parts: Vec<&str> = w.driver.split('.').collect();
    // The driver's real token with its payload swapped for admin claims, signature kept.
    let mut escalated: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1]).unwrap())
            .unwrap();
    escalated["role"] = json!("admin");
    let tampered_role = format!("{}.{}.{}", parts[0], b64(&escalated), parts[2]);
    let mut other_sub = escalated.clone();
    other_sub["sub"] = json!(w.admin_id);
    let swapped_sub = format!("{}.{}.{}", parts[0], b64(&other_sub), parts[2]);
    let alg_none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&admin_claims));
    let alg_none_sig =
        format!("{}.{}.{}", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&admin_claims), parts[2]);
    let wrong_key = sign(jsonwebtoken::Algorithm::HS256, "another-secret-another-secret-1234", &admin_claims);
    let hs512 = sign(jsonwebtoken::Algorithm::HS512, TEST_SECRET, &admin_claims);
    let hs384 = sign(jsonwebtoken::Algorithm::HS384, TEST_SECRET, &admin_claims);
    let rs_header = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "RS256", "typ": "JWT"})),
        b64(&admin_claims),
        good.split('.').nth(2).unwrap()
    );
    let mut no_iss = admin_claims.clone();
    no_iss.as_object_mut().unwrap().remove("iss");
    let mut other_iss = admin_claims.clone();
    other_iss["iss"] = json!("someone-else");
    let mut future_gen = admin_claims.clone();
    future_gen["gen"] = json!(7);
    let mut ghost = admin_claims.clone();
    ghost["sub"] = json!("no-such-user");
    let mut expired = admin_claims.clone();
    expired["exp"] = json!(now - 1);
    let cases: Vec<(&str, String, &str)> = vec![
        ("payload tampered (role), signature kept", tampered_role, "token_invalid"),
        ("payload tampered (another user's sub), signature kept", swapped_sub, "token_invalid"),
        ("alg none, no signature", alg_none, "token_invalid"),
        ("alg none, a signature", alg_none_sig, "token_invalid"),
        ("signed with another key", wrong_key, "token_invalid"),
        ("HS512 with the right key", hs512, "token_invalid"),
        ("HS384 with the right key", hs384, "token_invalid"),
        ("RS256 header on an HMAC signature", rs_header, "token_invalid"),
        ("no issuer", sign(jsonwebtoken::Algorithm::HS256, TEST_SECRET, &no_iss), "token_invalid"),
        ("another issuer", sign(jsonwebtoken::Algorithm::HS256, TEST_SECRET, &other_iss), "token_invalid"),
        (
            "a generation that was never issued",
            sign(jsonwebtoken::Algorithm::HS256, TEST_SECRET, &future_gen),
            "token_invalid",
        ),
        (
            "a user that does not exist",
            sign(jsonwebtoken::Algorithm::HS256, TEST_SECRET, &ghost),
            "token_invalid",
        ),
        ("expired", sign(jsonwebtoken::Algorithm::HS256, TEST_SECRET, &expired), "token_expired"),
        ("empty", String::new(), "unauthorized"),
        ("garbage", "a.b.c".into(), "token_invalid"),
    ];
    let mut rows = vec![];
    for (case, token, code) in &cases {
        rows.push(row(
            format!("{case} → /api/users"),
            "GET",
            "/api/users",
            Some(token),
            None,
            Want::Error(401, code),
        ));
        rows.push(row(format!("{case} → telemetry"), "POST", "/api/telemetry", Some(token), Some(json!({"driverId": w.red_driver, "timestamp": timestamp_at(0.0), "data": sample_at(0.0, 60.0)})), Want::Error(401, code)));
    }
    run_table(&srv, "forged tokens", rows).await;
    // And on the socket.
    for (case, token, _) in cases.iter().filter(|c| !c.1.is_empty()) {
        let mut ws = WsClient::connect(&srv).await;
        let r = ws.authenticate(token, "dashboard").await;
        assert_eq!(r["data"]["success"], false, "socket, {case}: {r}");
    }
    srv.stop().await;
});

// ---------------------------------------------------------------- token replay

/// Whether `token` still works: REST (`me`), telemetry as the driver, and the socket.
async fn token_works(srv: &TestServer, token: &str, driver: &str) -> (u16, u16, bool) {
    let me = srv.get("/api/auth/me", token).await.status.as_u16();
    let t = srv
        .post(
            "/api/telemetry",
            token,
            json!({"driverId": driver, "timestamp": timestamp_at(1.0), "data": sample_at(1.0, 60.0)}),
        )
        .await
        .status
        .as_u16();
    let mut ws = WsClient::connect(srv).await;
    let r = ws.authenticate(token, "driver_node").await;
    (me, t, r["data"]["success"] == true)
}

on_both_backends!(access_tokens_end_with_logout_and_password_changes, |srv| {
    let team = srv.create_team("Replay");
    let (uid, driver) = srv.create_driver("max", &team, 33);
    srv.create_user("root", Role::Admin, &[]);
    let admin = srv.login("root").await;
    let dead = (401, 401, false);

    // Logout: the access token of that login dies with its refresh token.
    let login = srv.login_full("max").await;
    let token = login["token"].as_str().unwrap().to_owned();
    assert_eq!(token_works(&srv, &token, &driver).await, (200, 200, true), "a fresh token works");
    let out = srv
        .send("POST", "/api/auth/logout", None, Some(json!({"refreshToken": login["refreshToken"]})))
        .await;
    assert_eq!(out.status, StatusCode::OK);
    assert_eq!(token_works(&srv, &token, &driver).await, dead, "replay after logout");
    let r = srv.get("/api/auth/me", &token).await;
    assert_eq!(r.body["code"], "token_invalid", "{}", r.body);

    // Self-service password change: needs the current password; ends the old tokens.
    let login = srv.login_full("max").await;
    let token = login["token"].as_str().unwrap().to_owned();
    let path = format!("/api/users/{uid}/password");
    let r = srv.send("PUT", &path, Some(&token), Some(json!({"password": "new-password-1"}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no current password: {}", r.body);
    let r = srv
        .send(
            "PUT",
            &path,
            Some(&token),
            Some(json!({"password": "new-password-1", "currentPassword": "wrong-guess"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "wrong current password: {}", r.body);
    assert_eq!(r.body["code"], "invalid_credentials");
    assert_eq!(token_works(&srv, &token, &driver).await, (200, 200, true), "refused changes change nothing");
    let r = srv
        .send(
            "PUT",
            &path,
            Some(&token),
            Some(json!({"password": "new-password-1", "currentPassword": "max-password"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(token_works(&srv, &token, &driver).await, dead, "replay after a password change");
    let refresh = srv
        .send("POST", "/api/auth/refresh", None, Some(json!({"refreshToken": login["refreshToken"]})))
        .await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED, "refresh after a password change");
    let relog = srv
        .send("POST", "/api/auth/login", None, Some(json!({"username": "max", "password": "new-password-1"})))
        .await;
    assert_eq!(relog.status, StatusCode::OK);
    let token = relog.body["token"].as_str().unwrap().to_owned();
    assert_eq!(token_works(&srv, &token, &driver).await, (200, 200, true), "the new login works");

    // An admin resets it (no current password needed for someone else's).
    let r = srv.send("PUT", &path, Some(&admin), Some(json!({"password": "reset-by-admin"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(token_works(&srv, &token, &driver).await, dead, "replay after an admin reset");
    // The admin's own password needs the current one too.
    let admin_id = srv.get("/api/auth/me", &admin).await.body["id"].as_str().unwrap().to_owned();
    let r = srv
        .send(
            "PUT",
            &format!("/api/users/{admin_id}/password"),
            Some(&admin),
            Some(json!({"password": "admins-new-pw"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    // `pitbox-runtime user passwd` (another process, same database): noticed within a second.
    let relog = srv
        .send("POST", "/api/auth/login", None, Some(json!({"username": "max", "password": "reset-by-admin"})))
        .await;
    let token = relog.body["token"].as_str().unwrap().to_owned();
    assert_eq!(srv.get("/api/auth/me", &token).await.status, StatusCode::OK);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pitbox-runtime"))
        .args(["user", "passwd", "max"])
        .env("DATABASE_URL", db_url(&srv))
        .env("PITBOX_PASSWORD", "set-by-the-cli")
        .env_remove("PITBOX_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut status = StatusCode::OK;
    while std::time::Instant::now() < deadline {
        status = srv.get("/api/auth/me", &token).await.status;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        // Polling for the other process's change, which this one learns within its cache period.
        actix_rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::UNAUTHORIZED, "replay after `user passwd`");
    srv.stop().await;
});

fn db_url(srv: &TestServer) -> String {
    srv.state.config.database_url.as_str().to_owned()
}

// ---------------------------------------------------------------- refresh reuse and races

on_both_backends!(refresh_reuse_and_concurrent_refreshes_revoke_the_family, |srv| {
    srv.create_user("racer", Role::Team, &[]);
    // Reuse: the replayed token revokes the family and ends the access tokens it produced.
    let login = srv.login_full("racer").await;
    let r1 = login["refreshToken"].clone();
    let rot = srv.send("POST", "/api/auth/refresh", None, Some(json!({"refreshToken": r1}))).await;
    assert_eq!(rot.status, StatusCode::OK);
    let access = rot.body["token"].as_str().unwrap().to_owned();
    assert_eq!(srv.get("/api/auth/me", &access).await.status, StatusCode::OK);
    let replay = srv.send("POST", "/api/auth/refresh", None, Some(json!({"refreshToken": r1}))).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    let r2 = srv
        .send("POST", "/api/auth/refresh", None, Some(json!({"refreshToken": rot.body["refreshToken"]})))
        .await;
    assert_eq!(r2.status, StatusCode::UNAUTHORIZED, "the family is revoked");
    assert_eq!(
        srv.get("/api/auth/me", &access).await.status,
        StatusCode::UNAUTHORIZED,
        "and its access token ended"
    );

    // Ten concurrent refreshes of one token, many times: exactly one wins, the others are reuse,
    // so the family is revoked, and the winner's new refresh token must not survive that.
    const TRIALS: usize = 25;
    let mut survivors = 0;
    for trial in 0..TRIALS {
        let login = srv.login_full("racer").await;
        let token = login["refreshToken"].clone();
        let answers = futures_util::future::join_all(
            (0..10)
                .map(|_| srv.send("POST", "/api/auth/refresh", None, Some(json!({"refreshToken": token})))),
        )
        .await;
        let winners: Vec<&Resp> = answers.iter().filter(|r| r.status == StatusCode::OK).collect();
        for r in &answers {
            assert!(
                r.status == StatusCode::OK || r.status == StatusCode::UNAUTHORIZED,
                "trial {trial}: {} {}",
                r.status,
                r.body
            );
        }
        assert_eq!(winners.len(), 1, "trial {trial}: exactly one refresh wins");
        let next = srv
            .send(
                "POST",
                "/api/auth/refresh",
                None,
                Some(json!({"refreshToken": winners[0].body["refreshToken"]})),
            )
            .await;
        if next.status == StatusCode::OK {
            survivors += 1;
        }
        let access = winners[0].body["token"].as_str().unwrap();
        assert_eq!(
            srv.get("/api/auth/me", access).await.status,
            StatusCode::UNAUTHORIZED,
            "trial {trial}: the winner's access token ended too"
        );
    }
    assert_eq!(survivors, 0, "{survivors} of {TRIALS} trials left a live refresh token in a revoked family");
    srv.stop().await;
});

// ---------------------------------------------------------------- floods

on_both_backends!(
    rest_floods_get_429,
    |c| {
        c.rate_limit_per_ip = 5;
        c.rate_limit_login = 3;
    },
    |srv| {
        srv.create_user("flood", Role::Team, &[]);
        let token = srv.login("flood").await;
        let answers = futures_util::future::join_all((0..40).map(|_| srv.get("/api/auth/me", &token))).await;
        let limited: Vec<&Resp> =
            answers.iter().filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS).collect();
        assert!(!limited.is_empty(), "40 requests at once over a burst of 10 must meet 429");
        for r in &limited {
            assert_eq!(r.body["code"], "rate_limited");
            assert!(r.headers.contains_key("retry-after"));
        }
        assert!(answers
            .iter()
            .all(|r| r.status == StatusCode::OK || r.status == StatusCode::TOO_MANY_REQUESTS));
        srv.stop().await;
    }
);

// ---------------------------------------------------------------- metrics and headers

on_both_backends!(unknown_methods_share_one_metrics_label, |srv| {
    for i in 0..50 {
        srv.send(&format!("FOO{i}"), "/api/teams", None, None).await;
        srv.send(&format!("BAR{i}"), &format!("/nowhere/{i}"), None, None).await;
    }
    let m = srv.send("GET", "/metrics", None, None).await;
    let text = m.body.as_str().unwrap();
    assert!(!text.contains("FOO") && !text.contains("BAR"), "made-up methods became labels");
    assert!(text.contains("method=\"other\""), "{text}");
    assert!(text.len() < 20_000, "metrics grew to {} bytes", text.len());
    assert!(m
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    srv.stop().await;
});

on_both_backends!(
    metrics_behind_a_token,
    |c| {
        c.metrics = pitbox_runtime::config::MetricsAccess::Token;
        c.metrics_token = Some("scrape-token-0123456789".into());
    },
    |srv| {
        assert_eq!(srv.send("GET", "/metrics", None, None).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            srv.send("GET", "/metrics", Some("scrape-token-012345678"), None).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            srv.send("GET", "/metrics", Some("scrape-token-01234567890"), None).await.status,
            StatusCode::UNAUTHORIZED
        );
        let ok = srv.send("GET", "/metrics", Some("scrape-token-0123456789"), None).await;
        assert_eq!(ok.status, StatusCode::OK);
        assert!(ok.body.as_str().unwrap().contains("pitbox_http_requests"));
        srv.stop().await;
    }
);

on_both_backends!(
    metrics_off,
    |c| {
        c.metrics = pitbox_runtime::config::MetricsAccess::Off;
    },
    |srv| {
        let r = srv.send("GET", "/metrics", None, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.body["code"], "not_found");
        srv.stop().await;
    }
);

#[actix_rt::test]
async fn security_headers_on_the_dashboard_and_the_api() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("index.html"), "<!doctype html>INDEX").unwrap();
    let dir = root.path().to_owned();
    let srv = TestServer::start(Backend::Sqlite, move |c| c.dashboard_dir = dir).await.unwrap();
    for path in ["/", "/teams/x/drivers/y", "/index.html", "/api/openapi.json", "/healthz"] {
        let r = srv.send("GET", path, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let h = |n: &str| r.headers.get(n).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(h("x-frame-options"), "DENY", "{path}");
        let csp = h("content-security-policy");
        assert!(csp.contains("script-src 'self' 'wasm-unsafe-eval'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains(" 'unsafe-eval'"), "{path}: {csp}");
    }
    srv.stop().await;
}
