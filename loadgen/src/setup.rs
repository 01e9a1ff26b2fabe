//! The run's cast: teams of drivers, each with a node login, and a viewer login per team for its
//! dashboards. Against PitBox they are created through the REST API as an admin (names carry a
//! run id, so runs against one server never collide); against the baseline relay, which takes any
//! token, the token names the team. Reads no env vars (the admin login comes from [`crate::cli`]).

use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt;
use pitbox_driver::credentials::Credentials;
use serde_json::{json, Value};

use crate::cli::{Args, Target};

/// A driver node's login.
#[derive(Debug, Clone)]
pub struct Node {
    pub credentials: Credentials,
}

/// One team's dashboards log in with this.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub team_id: String,
    pub token: String,
}

#[derive(Debug, Default)]
pub struct Cast {
    pub nodes: Vec<Node>,
    pub viewers: Vec<Viewer>,
}

const PASSWORD_LEN: usize = 24;

/// Builds the cast for `args`.
pub async fn cast(args: &Args, client: &awc::Client) -> anyhow::Result<Cast> {
    match args.target {
        Target::Relay => Ok(relay_cast(args)),
        Target::Pitbox => pitbox_cast(args, client).await,
    }
}

fn relay_cast(args: &Args) -> Cast {
    let run = run_id();
    let mut cast = Cast::default();
    for t in 0..args.teams() {
        let team_id = format!("lg-{run}-t{t}");
        for d in team_drivers(args, t) {
            cast.nodes.push(Node {
                credentials: Credentials {
                    server: args.base(),
                    token: team_id.clone(),
                    refresh_token: String::new(),
                    expires_at: i64::MAX / 2,
                    user_id: format!("{team_id}-u{d}"),
                    username: format!("{team_id}-u{d}"),
                    driver_id: Some(format!("{team_id}-d{d}")),
                    ca_file: None,
                },
            });
        }
        cast.viewers.push(Viewer { team_id: team_id.clone(), token: team_id });
    }
    cast
}

fn team_drivers(args: &Args, team: usize) -> std::ops::Range<usize> {
    0..args.team_size.min(args.drivers - team * args.team_size)
}

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

async fn pitbox_cast(args: &Args, client: &awc::Client) -> anyhow::Result<Cast> {
    let base = args.base();
    let password = args
        .password
        .clone()
        .context("--target pitbox needs the admin password (--password or PITBOX_LOADGEN_PASSWORD)")?;
    let admin = login(client, &base, &args.admin, &password).await.context("admin login")?;
    let admin_token = admin["token"].as_str().context("login answer without a token")?.to_owned();
    let run = run_id();
    // Password hashing dominates the setup; a few teams at a time keep the server's blocking
    // pool busy without queueing thousands of requests.
    let teams: Vec<anyhow::Result<(Vec<Node>, Viewer)>> = futures_util::stream::iter(0..args.teams())
        .map(|t| {
            let (client, base, admin_token, run) =
                (client.clone(), base.clone(), admin_token.clone(), run.clone());
            let drivers = team_drivers(args, t);
            async move { make_team(&client, &base, &admin_token, &run, t, drivers).await }
        })
        .buffered(4)
        .collect()
        .await;
    let mut cast = Cast::default();
    for team in teams {
        let (nodes, viewer) = team?;
        cast.nodes.extend(nodes);
        cast.viewers.push(viewer);
    }
    Ok(cast)
}

async fn make_team(
    client: &awc::Client,
    base: &str,
    admin: &str,
    run: &str,
    t: usize,
    drivers: std::ops::Range<usize>,
) -> anyhow::Result<(Vec<Node>, Viewer)> {
    let team =
        post(client, base, admin, "/api/teams", &json!({"name": format!("loadgen {run} team {t}")})).await?;
    let team_id = team["id"].as_str().context("team without an id")?.to_owned();
    let secret = password();
    let mut nodes = vec![];
    for d in drivers {
        let username = format!("lg-{run}-t{t}-d{d}");
        let user = post(
            client,
            base,
            admin,
            "/api/users",
            &json!({"username": username, "password": secret, "role": "driver", "teams": [team_id]}),
        )
        .await?;
        let user_id = user["id"].as_str().context("user without an id")?;
        post(
            client,
            base,
            admin,
            &format!("/api/teams/{team_id}/drivers"),
            &json!({"name": format!("Load {t}-{d}"), "number": d % 1000, "userId": user_id}),
        )
        .await?;
        let l = login(client, base, &username, &secret).await?;
        nodes.push(Node { credentials: credentials(base, &l)? });
    }
    let viewer = format!("lg-{run}-t{t}-view");
    post(
        client,
        base,
        admin,
        "/api/users",
        &json!({"username": viewer, "password": secret, "role": "team", "teams": [team_id]}),
    )
    .await?;
    let l = login(client, base, &viewer, &secret).await?;
    let token = l["token"].as_str().context("login answer without a token")?.to_owned();
    Ok((nodes, Viewer { team_id, token }))
}

fn credentials(base: &str, login: &Value) -> anyhow::Result<Credentials> {
    let s = |v: &Value| v.as_str().map(str::to_owned).context("incomplete login answer");
    Ok(Credentials {
        server: base.to_owned(),
        token: s(&login["token"])?,
        refresh_token: s(&login["refreshToken"])?,
        expires_at: chrono::Utc::now().timestamp() + login["expiresIn"].as_i64().unwrap_or(900),
        user_id: s(&login["user"]["id"])?,
        username: s(&login["user"]["username"])?,
        driver_id: Some(s(&login["user"]["driverId"])?),
        ca_file: None,
    })
}

fn password() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("Lg-{}", &id[..PASSWORD_LEN.min(id.len())])
}

pub async fn login(
    client: &awc::Client,
    base: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<Value> {
    let mut res = client
        .post(format!("{base}/api/auth/login"))
        .timeout(Duration::from_secs(60))
        .send_json(&json!({"username": username, "password": password}))
        .await
        .map_err(|e| anyhow::anyhow!("POST /api/auth/login: {e}"))?;
    answer(&mut res, "/api/auth/login").await
}

async fn post(
    client: &awc::Client,
    base: &str,
    token: &str,
    path: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let mut res = client
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(60))
        .send_json(body)
        .await
        .map_err(|e| anyhow::anyhow!("POST {path}: {e}"))?;
    answer(&mut res, path).await
}

async fn answer<S>(res: &mut awc::ClientResponse<S>, path: &str) -> anyhow::Result<Value>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
{
    let body = res.body().limit(1 << 20).await.map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    anyhow::ensure!(res.status().is_success(), "{path}: {} {}", res.status(), String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).with_context(|| format!("{path}: not JSON"))
}
