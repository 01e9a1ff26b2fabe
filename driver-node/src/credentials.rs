//! The driver's login: server URL, access and refresh tokens, user and driver ids, kept in
//! `credentials.json` in the node's home directory (readable by the user only) and refreshed
//! through the runtime's `/api/auth/refresh` when the access token nears expiry or is refused.
//! Env: `PITBOX_DRIVER_HOME` (the node's home: credentials, spool; default: the user's config
//! directory + `pitbox`), `PITBOX_PASSWORD` (for `login` without a prompt).

use std::path::{Path, PathBuf};
use std::time::Duration;

use pitbox_schema::wire::{LoginResponse, RefreshRequest};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("not logged in: run `pitbox-driver login --server URL`")]
    NotLoggedIn,
    #[error("the login has expired or was revoked: run `pitbox-driver login` again")]
    Revoked,
    #[error("cannot reach {server}: {reason}")]
    Unreachable { server: String, reason: String },
    #[error("the server refused: {0}")]
    Refused(String),
    #[error("credentials file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("this user has no driver profile; ask your team's engineer to create one")]
    NotADriver,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// `http(s)://host:port` of the runtime.
    pub server: String,
    pub token: String,
    pub refresh_token: String,
    /// Unix seconds when `token` expires.
    pub expires_at: i64,
    pub user_id: String,
    pub username: String,
    pub driver_id: Option<String>,
    /// An extra CA certificate file trusted for this server (`login --ca-file`), for a team that
    /// runs its own certificate authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// The node's home directory.
pub fn home() -> PathBuf {
    std::env::var_os("PITBOX_DRIVER_HOME")
        .map(PathBuf::from)
        .or_else(|| dirs::config_dir().map(|d| d.join("pitbox")))
        .unwrap_or_else(|| PathBuf::from(".pitbox"))
}

fn file(home: &Path) -> PathBuf {
    home.join("credentials.json")
}

impl Credentials {
    pub fn load(home: &Path) -> Result<Credentials, CredentialError> {
        let path = file(home);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CredentialError::NotLoggedIn),
            Err(e) => {
                return Err(CredentialError::File { path: path.display().to_string(), reason: e.to_string() })
            }
        };
        serde_json::from_str(&text)
            .map_err(|e| CredentialError::File { path: path.display().to_string(), reason: e.to_string() })
    }

    /// Writes the file readable and writable by the user only.
    pub fn save(&self, home: &Path) -> Result<(), CredentialError> {
        let path = file(home);
        let err = |e: std::io::Error| CredentialError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(home).map_err(err)?;
        let json = serde_json::to_vec_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        let tmp = path.with_extension("json.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        {
            use std::io::Write;
            let mut f = options.open(&tmp).map_err(err)?;
            f.write_all(&json).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, &path).map_err(err)
    }

    pub fn remove(home: &Path) -> std::io::Result<()> {
        match std::fs::remove_file(file(home)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn from_login(server: &str, r: LoginResponse) -> Credentials {
        Credentials {
            server: server.trim_end_matches('/').to_owned(),
            token: r.token,
            refresh_token: r.refresh_token,
            expires_at: chrono::Utc::now().timestamp() + i64::from(r.expires_in),
            user_id: r.user.id,
            username: r.user.username,
            driver_id: r.user.driver_id,
            ca_file: None,
        }
    }

    /// Whether the access token expires within `margin`.
    pub fn expiring(&self, margin: Duration) -> bool {
        let margin = i64::try_from(margin.as_secs()).unwrap_or(i64::MAX);
        chrono::Utc::now().timestamp() + margin >= self.expires_at
    }

    /// The `ws(s)://…/ws` address of the runtime.
    pub fn ws_url(&self) -> String {
        let base = self.server.replacen("https://", "wss://", 1).replacen("http://", "ws://", 1);
        format!("{base}/ws")
    }
}

fn unreachable(server: &str, e: awc::error::SendRequestError) -> CredentialError {
    // A refused certificate is the driver's (or the operator's) to fix: say what is wrong with it.
    let host = crate::tls::host_port(server).map(|(h, _)| h).unwrap_or_default();
    let reason = crate::tls::explain_request(&e, &host).unwrap_or_else(|| e.to_string());
    CredentialError::Unreachable { server: server.to_owned(), reason }
}

/// Logs in and returns the new credentials (not yet saved).
pub async fn login(
    client: &awc::Client,
    server: &str,
    username: &str,
    password: &str,
) -> Result<Credentials, CredentialError> {
    let server = server.trim_end_matches('/');
    let body =
        pitbox_schema::wire::LoginRequest { username: username.to_owned(), password: password.to_owned() };
    let mut res = client
        .post(format!("{server}/api/auth/login"))
        .send_json(&body)
        .await
        .map_err(|e| unreachable(server, e))?;
    if !res.status().is_success() {
        let body = res.body().await.unwrap_or_default();
        return Err(CredentialError::Refused(String::from_utf8_lossy(&body).into_owned()));
    }
    let r: LoginResponse = res.json().await.map_err(|e| CredentialError::Refused(e.to_string()))?;
    Ok(Credentials::from_login(server, r))
}

/// Exchanges the refresh token for a new pair and saves it.
pub async fn refresh(
    client: &awc::Client,
    home: &Path,
    creds: &Credentials,
) -> Result<Credentials, CredentialError> {
    let body = RefreshRequest { refresh_token: creds.refresh_token.clone() };
    let mut res = client
        .post(format!("{}/api/auth/refresh", creds.server))
        .send_json(&body)
        .await
        .map_err(|e| unreachable(&creds.server, e))?;
    if res.status().as_u16() == 401 {
        return Err(CredentialError::Revoked);
    }
    if !res.status().is_success() {
        return Err(CredentialError::Refused(format!("refresh answered {}", res.status())));
    }
    let r: LoginResponse = res.json().await.map_err(|e| CredentialError::Refused(e.to_string()))?;
    let fresh = Credentials { ca_file: creds.ca_file.clone(), ..Credentials::from_login(&creds.server, r) };
    fresh.save(home)?;
    Ok(fresh)
}

/// Ends the login on the server (best effort) and deletes the file.
pub async fn logout(client: &awc::Client, home: &Path) -> Result<(), CredentialError> {
    if let Ok(creds) = Credentials::load(home) {
        let body = RefreshRequest { refresh_token: creds.refresh_token.clone() };
        let _ = client.post(format!("{}/api/auth/logout", creds.server)).send_json(&body).await;
    }
    Credentials::remove(home)
        .map_err(|e| CredentialError::File { path: file(home).display().to_string(), reason: e.to_string() })
}
