//! Configuration, built once into a [`Config`] value and passed down; never a global.
//!
//! Each setting comes from (first wins): the command line, its environment variable, the TOML file
//! named by `--config` / `PITBOX_CONFIG`, then the default. Env vars read: `PITBOX_CONFIG`,
//! `PITBOX_BIND`, `PITBOX_DATA_DIR`, `DATABASE_URL`, `PITBOX_MODE`, `PITBOX_JWT_SECRET`,
//! `PITBOX_ACCESS_TOKEN_TTL_SECS`, `PITBOX_REFRESH_TOKEN_TTL_SECS`, `PITBOX_RATE_LIMIT_PER_IP`,
//! `PITBOX_RATE_LIMIT_PER_USER`, `PITBOX_RATE_LIMIT_LOGIN`, `PITBOX_MAX_BODY_BYTES`,
//! `PITBOX_CORS_ORIGINS`, `PITBOX_DB_POOL_SIZE`, `PITBOX_LOG_FORMAT`, `PITBOX_SERVER_ID`,
//! `PITBOX_RESTART_INTENSITY`, `PITBOX_RESTART_PERIOD_SECS`, `PITBOX_IDLE_TIMEOUT_SECS`,
//! `PITBOX_SESSION_THREADS`, `PITBOX_FAULT_INJECTION`, `PITBOX_WS_AUTH_TIMEOUT_SECS`,
//! `PITBOX_WS_MAX_FRAME_BYTES`, `PITBOX_TEAM_RATE_HZ`, `PITBOX_DRIVER_RATE_HZ`, `PITBOX_DASHBOARD_DIR`,
//! `PITBOX_METRICS`, `PITBOX_METRICS_TOKEN`.
//! `PITBOX_LLM_BASE_URL`, `PITBOX_LLM_API_KEY`, `PITBOX_LLM_MODEL`, `PITBOX_LLM_TIMEOUT_SECS`,
//! `PITBOX_LLM_TOKEN_BUDGET`, `PITBOX_TLS_CERT`, `PITBOX_TLS_KEY`, `PITBOX_TLS_WATCH_SECS`,
//! `PITBOX_TRUSTED_PROXIES`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Deserialize;

use crate::llm::LlmConfig;
use crate::proxy::TrustedProxies;
use crate::tls::TlsFiles;
pub use crate::voice::VoiceConfig;

/// Where `tools/build-dashboard.sh` puts the built dashboard, relative to the repository root.
pub const DEFAULT_DASHBOARD_DIR: &str = "dashboard-yew/dist";

/// `dev` generates a JWT secret when none is set (and says so); `production` refuses to start
/// without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Dev,
    Production,
}

/// Who may read `GET /metrics`: nobody (`off`: 404), holders of the metrics token (`token`:
/// `Authorization: Bearer <PITBOX_METRICS_TOKEN>`), or anyone (`public`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAccess {
    Off,
    Token,
    Public,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Every setting, as command-line options backed by env vars. All optional here so that the TOML
/// file and the defaults can fill what is left.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// TOML file with any of these settings (snake_case keys, e.g. `bind = "0.0.0.0:8080"`).
    #[arg(long, env = "PITBOX_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "PITBOX_BIND", global = true)]
    pub bind: Option<SocketAddr>,
    /// Directory for the embedded SQLite database and other local state [default: ./pitbox-data].
    #[arg(long, env = "PITBOX_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` for PostgreSQL, or a SQLite file path [default: <data-dir>/pitbox.db].
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// `dev` or `production` [default: dev].
    #[arg(long, env = "PITBOX_MODE", global = true)]
    pub mode: Option<Mode>,
    /// HS256 secret for access tokens (at least 32 bytes). Required in production mode.
    #[arg(long, env = "PITBOX_JWT_SECRET", global = true, hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Lifetime of access tokens in seconds [default: 900].
    #[arg(long, env = "PITBOX_ACCESS_TOKEN_TTL_SECS", global = true)]
    pub access_token_ttl_secs: Option<u32>,
    /// Lifetime of refresh tokens in seconds [default: 86400].
    #[arg(long, env = "PITBOX_REFRESH_TOKEN_TTL_SECS", global = true)]
    pub refresh_token_ttl_secs: Option<u32>,
    /// API requests per second allowed from one IP address (burst: twice that) [default: 200].
    #[arg(long, env = "PITBOX_RATE_LIMIT_PER_IP", global = true)]
    pub rate_limit_per_ip: Option<u32>,
    /// API requests per second allowed for one user (burst: twice that) [default: 100].
    #[arg(long, env = "PITBOX_RATE_LIMIT_PER_USER", global = true)]
    pub rate_limit_per_user: Option<u32>,
    /// Login attempts per minute allowed from one IP address [default: 20].
    #[arg(long, env = "PITBOX_RATE_LIMIT_LOGIN", global = true)]
    pub rate_limit_login: Option<u32>,
    /// Largest accepted request body in bytes [default: 262144].
    #[arg(long, env = "PITBOX_MAX_BODY_BYTES", global = true)]
    pub max_body_bytes: Option<usize>,
    /// Comma-separated origins allowed by CORS, or `*` [default: none, same-origin only].
    #[arg(long, env = "PITBOX_CORS_ORIGINS", global = true)]
    pub cors_origins: Option<String>,
    /// Maximum database connections (SQLite uses at most 4) [default: 8].
    #[arg(long, env = "PITBOX_DB_POOL_SIZE", global = true)]
    pub db_pool_size: Option<u32>,
    /// `pretty` or `json` [default: pretty].
    #[arg(long, env = "PITBOX_LOG_FORMAT", global = true)]
    pub log_format: Option<LogFormat>,
    /// Name of this node in `connection_established` and logs [default: host name].
    #[arg(long, env = "PITBOX_SERVER_ID", global = true)]
    pub server_id: Option<String>,
    /// Restarts of one actor allowed within the restart period before it is stopped [default: 5].
    #[arg(long, env = "PITBOX_RESTART_INTENSITY", global = true)]
    pub restart_intensity: Option<u32>,
    /// The restart period in seconds [default: 10].
    #[arg(long, env = "PITBOX_RESTART_PERIOD_SECS", global = true)]
    pub restart_period_secs: Option<u32>,
    /// Seconds without a node or data after which a driver session is stopped [default: 300].
    #[arg(long, env = "PITBOX_IDLE_TIMEOUT_SECS", global = true)]
    pub idle_timeout_secs: Option<u32>,
    /// Threads that run driver sessions [default: 2].
    #[arg(long, env = "PITBOX_SESSION_THREADS", global = true)]
    pub session_threads: Option<u32>,
    /// Allow admins to make an actor panic (`POST /admin/actors/fault`) [default: false].
    #[arg(long, env = "PITBOX_FAULT_INJECTION", global = true)]
    pub fault_injection: Option<bool>,
    /// Seconds a new WebSocket has to authenticate [default: 5].
    #[arg(long, env = "PITBOX_WS_AUTH_TIMEOUT_SECS", global = true)]
    pub ws_auth_timeout_secs: Option<u32>,
    /// Largest WebSocket frame accepted, in bytes (larger: close 1009) [default: 1048576].
    #[arg(long, env = "PITBOX_WS_MAX_FRAME_BYTES", global = true)]
    pub ws_max_frame_bytes: Option<usize>,
    /// Samples per second per driver in the team view [default: 20].
    #[arg(long, env = "PITBOX_TEAM_RATE_HZ", global = true)]
    pub team_rate_hz: Option<u16>,
    /// Samples per second of a focused driver [default: 60].
    #[arg(long, env = "PITBOX_DRIVER_RATE_HZ", global = true)]
    pub driver_rate_hz: Option<u16>,
    /// The built dashboard (index.html, JS, WASM) served at `/`; relative to the working directory
    /// [default: dashboard-yew/dist].
    #[arg(long, env = "PITBOX_DASHBOARD_DIR", global = true)]
    pub dashboard_dir: Option<PathBuf>,
    /// Who may read `/metrics`: `off`, `token` (needs PITBOX_METRICS_TOKEN) or `public`
    /// [default: `token` when a metrics token is set, else `public` in dev mode, `off` in production].
    #[arg(long, env = "PITBOX_METRICS", global = true)]
    pub metrics: Option<MetricsAccess>,
    /// Bearer token a scraper sends for `/metrics` when access is `token` (at least 16 bytes).
    #[arg(long, env = "PITBOX_METRICS_TOKEN", global = true, hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// OpenAI-compatible API that rephrases the coach's findings, up to the version, e.g.
    /// `https://api.openai.com/v1` [default: none, the coach's own text].
    #[arg(long, env = "PITBOX_LLM_BASE_URL", global = true)]
    pub llm_base_url: Option<String>,
    /// Bearer key for the LLM API.
    #[arg(long, env = "PITBOX_LLM_API_KEY", global = true, hide_env_values = true)]
    pub llm_api_key: Option<Secret>,
    /// Model name for the LLM API (required with a base URL).
    #[arg(long, env = "PITBOX_LLM_MODEL", global = true)]
    pub llm_model: Option<String>,
    /// Seconds one phrasing may take, retries included, before the coach's own text is used [default: 20].
    #[arg(long, env = "PITBOX_LLM_TIMEOUT_SECS", global = true)]
    pub llm_timeout_secs: Option<u32>,
    /// Tokens one driver session may spend on phrasing [default: 20000].
    #[arg(long, env = "PITBOX_LLM_TOKEN_BUDGET", global = true)]
    pub llm_token_budget: Option<u64>,
    /// PEM certificate chain (server certificate first): serve HTTPS/WSS instead of plain HTTP.
    /// Needs --tls-key. Reloaded on SIGHUP and when the file changes.
    #[arg(long, env = "PITBOX_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the TLS certificate.
    #[arg(long, env = "PITBOX_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
    /// Seconds between looks at the TLS files for a renewed pair; 0: reload on SIGHUP only [default: 10].
    #[arg(long, env = "PITBOX_TLS_WATCH_SECS", global = true)]
    pub tls_watch_secs: Option<u32>,
    /// Reverse proxies (comma-separated addresses or CIDR blocks, e.g. `10.0.0.0/8,127.0.0.1`)
    /// whose X-Forwarded-For names the client for rate limits and logs [default: none].
    #[arg(long, env = "PITBOX_TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,
    /// ElevenLabs API key: spoken answers use ElevenLabs when it is set [default: espeak-ng only].
    #[arg(long, env = "PITBOX_ELEVENLABS_API_KEY", global = true, hide_env_values = true)]
    pub elevenlabs_api_key: Option<Secret>,
    /// ElevenLabs voice [default: JBFqnCBsd6RMkjVDRZzb].
    #[arg(long, env = "PITBOX_ELEVENLABS_VOICE_ID", global = true)]
    pub elevenlabs_voice_id: Option<String>,
    /// ElevenLabs model [default: eleven_flash_v2_5].
    #[arg(long, env = "PITBOX_ELEVENLABS_MODEL", global = true)]
    pub elevenlabs_model: Option<String>,
    /// ElevenLabs API address, without `/v1` [default: https://api.elevenlabs.io].
    #[arg(long, env = "PITBOX_ELEVENLABS_BASE_URL", global = true)]
    pub elevenlabs_base_url: Option<String>,
    /// espeak-ng voice [default: en-gb].
    #[arg(long, env = "PITBOX_ESPEAK_VOICE", global = true)]
    pub espeak_voice: Option<String>,
    /// espeak-ng speed in words per minute [default: 175].
    #[arg(long, env = "PITBOX_ESPEAK_SPEED", global = true)]
    pub espeak_speed: Option<u32>,
}

/// A secret setting: `Debug` shows `***`, so that `Settings` (and the command line it is part of)
/// can be logged.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("PITBOX_JWT_SECRET (or --jwt-secret) is required in production mode")]
    MissingSecret,
    #[error("the JWT secret must be at least 32 bytes long")]
    ShortSecret,
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    #[error("PITBOX_METRICS=token needs PITBOX_METRICS_TOKEN (at least 16 bytes)")]
    MetricsToken,
    #[error("PITBOX_LLM_BASE_URL must start with http:// or https://, got {0:?}")]
    LlmBaseUrl(String),
    #[error("PITBOX_ELEVENLABS_BASE_URL must start with http:// or https://, got {0:?}")]
    ElevenLabsBaseUrl(String),
    #[error("PITBOX_LLM_MODEL is required when PITBOX_LLM_BASE_URL is set")]
    LlmModelMissing,
    #[error("TLS needs both PITBOX_TLS_CERT and PITBOX_TLS_KEY (only {0} is set)")]
    TlsPair(&'static str),
    #[error("PITBOX_TRUSTED_PROXIES: {0}")]
    TrustedProxies(String),
}

/// Where the JWT secret came from; a generated one is announced at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    Configured,
    Generated,
}

/// The resolved configuration.
#[derive(Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub mode: Mode,
    pub jwt_secret: Vec<u8>,
    pub jwt_secret_source: SecretSource,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub rate_limit_per_ip: u32,
    pub rate_limit_per_user: u32,
    pub rate_limit_login: u32,
    pub max_body_bytes: usize,
    pub cors_origins: Vec<String>,
    pub db_pool_size: u32,
    pub log_format: LogFormat,
    pub server_id: String,
    pub restart_intensity: u32,
    pub restart_period: Duration,
    pub idle_timeout: Duration,
    pub session_threads: usize,
    pub fault_injection: bool,
    pub ws_auth_timeout: Duration,
    pub ws_max_frame_bytes: usize,
    pub team_rate_hz: u16,
    pub driver_rate_hz: u16,
    pub dashboard_dir: PathBuf,
    pub metrics: MetricsAccess,
    /// Only set when `metrics` is `token`.
    pub metrics_token: Option<String>,
    /// The coach's LLM phrasing; `None` (no base URL) keeps the coach's own text.
    pub llm: Option<LlmConfig>,
    /// HTTPS/WSS served by the runtime itself; `None`: plain HTTP (behind a TLS proxy, or a LAN).
    pub tls: Option<TlsFiles>,
    /// Proxies whose `X-Forwarded-For` is believed (see [`crate::proxy`]).
    pub trusted_proxies: TrustedProxies,
    /// Text to speech: espeak-ng, and ElevenLabs when a key is set.
    pub voice: VoiceConfig,
}

impl std::fmt::Debug for Config {
    // By hand so that the secret and database password never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("database", &redact_url(&self.database_url))
            .field("mode", &self.mode)
            .field("jwt_secret_source", &self.jwt_secret_source)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("rate_limit_per_ip", &self.rate_limit_per_ip)
            .field("rate_limit_per_user", &self.rate_limit_per_user)
            .field("rate_limit_login", &self.rate_limit_login)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("cors_origins", &self.cors_origins)
            .field("db_pool_size", &self.db_pool_size)
            .field("server_id", &self.server_id)
            .field("restart_intensity", &self.restart_intensity)
            .field("restart_period", &self.restart_period)
            .field("idle_timeout", &self.idle_timeout)
            .field("session_threads", &self.session_threads)
            .field("fault_injection", &self.fault_injection)
            .field("ws_auth_timeout", &self.ws_auth_timeout)
            .field("ws_max_frame_bytes", &self.ws_max_frame_bytes)
            .field("team_rate_hz", &self.team_rate_hz)
            .field("driver_rate_hz", &self.driver_rate_hz)
            .field("dashboard_dir", &self.dashboard_dir)
            .field("metrics", &self.metrics)
            .field("llm", &self.llm)
            .field("voice", &self.voice)
            .field("tls", &self.tls)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

/// `postgres://user:pw@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Settings {
    /// Fills unset fields from `other` (the TOML file).
    fn or(self, other: Settings) -> Settings {
        Settings {
            config: self.config,
            bind: self.bind.or(other.bind),
            data_dir: self.data_dir.or(other.data_dir),
            database_url: self.database_url.or(other.database_url),
            mode: self.mode.or(other.mode),
            jwt_secret: self.jwt_secret.or(other.jwt_secret),
            access_token_ttl_secs: self.access_token_ttl_secs.or(other.access_token_ttl_secs),
            refresh_token_ttl_secs: self.refresh_token_ttl_secs.or(other.refresh_token_ttl_secs),
            rate_limit_per_ip: self.rate_limit_per_ip.or(other.rate_limit_per_ip),
            rate_limit_per_user: self.rate_limit_per_user.or(other.rate_limit_per_user),
            rate_limit_login: self.rate_limit_login.or(other.rate_limit_login),
            max_body_bytes: self.max_body_bytes.or(other.max_body_bytes),
            cors_origins: self.cors_origins.or(other.cors_origins),
            db_pool_size: self.db_pool_size.or(other.db_pool_size),
            log_format: self.log_format.or(other.log_format),
            server_id: self.server_id.or(other.server_id),
            restart_intensity: self.restart_intensity.or(other.restart_intensity),
            restart_period_secs: self.restart_period_secs.or(other.restart_period_secs),
            idle_timeout_secs: self.idle_timeout_secs.or(other.idle_timeout_secs),
            session_threads: self.session_threads.or(other.session_threads),
            fault_injection: self.fault_injection.or(other.fault_injection),
            ws_auth_timeout_secs: self.ws_auth_timeout_secs.or(other.ws_auth_timeout_secs),
            ws_max_frame_bytes: self.ws_max_frame_bytes.or(other.ws_max_frame_bytes),
            team_rate_hz: self.team_rate_hz.or(other.team_rate_hz),
            driver_rate_hz: self.driver_rate_hz.or(other.driver_rate_hz),
            dashboard_dir: self.dashboard_dir.or(other.dashboard_dir),
            metrics: self.metrics.or(other.metrics),
            metrics_token: self.metrics_token.or(other.metrics_token),
            llm_base_url: self.llm_base_url.or(other.llm_base_url),
            llm_api_key: self.llm_api_key.or(other.llm_api_key),
            llm_model: self.llm_model.or(other.llm_model),
            llm_timeout_secs: self.llm_timeout_secs.or(other.llm_timeout_secs),
            llm_token_budget: self.llm_token_budget.or(other.llm_token_budget),
            tls_cert: self.tls_cert.or(other.tls_cert),
            tls_key: self.tls_key.or(other.tls_key),
            tls_watch_secs: self.tls_watch_secs.or(other.tls_watch_secs),
            elevenlabs_api_key: self.elevenlabs_api_key.or(other.elevenlabs_api_key),
            elevenlabs_voice_id: self.elevenlabs_voice_id.or(other.elevenlabs_voice_id),
            elevenlabs_model: self.elevenlabs_model.or(other.elevenlabs_model),
            elevenlabs_base_url: self.elevenlabs_base_url.or(other.elevenlabs_base_url),
            espeak_voice: self.espeak_voice.or(other.espeak_voice),
            espeak_speed: self.espeak_speed.or(other.espeak_speed),
            trusted_proxies: self.trusted_proxies.or(other.trusted_proxies),
        }
    }

    fn read_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        toml::from_str(&text)
            .map_err(|source| ConfigError::Parse { path: path.to_owned(), source: Box::new(source) })
    }
}

impl Config {
    /// Resolves the settings (command line and env already parsed by clap) into a config.
    pub fn from_settings(settings: Settings) -> Result<Config, ConfigError> {
        let settings = match settings.config.clone() {
            Some(path) => {
                let file = Settings::read_file(&path)?;
                settings.or(file)
            }
            None => settings,
        };
        let mode = settings.mode.unwrap_or(Mode::Dev);
        let data_dir = settings.data_dir.unwrap_or_else(|| PathBuf::from("pitbox-data"));
        let database_url = settings
            .database_url
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| data_dir.join("pitbox.db").to_string_lossy().into_owned());
        let (jwt_secret, jwt_secret_source) = match settings.jwt_secret {
            Some(s) if s.len() < 32 => return Err(ConfigError::ShortSecret),
            Some(s) => (s.into_bytes(), SecretSource::Configured),
            None if mode == Mode::Production => return Err(ConfigError::MissingSecret),
            None => {
                let mut bytes = vec![0u8; 32];
                rand::Rng::fill(&mut rand::rng(), bytes.as_mut_slice());
                (bytes, SecretSource::Generated)
            }
        };
        let metrics_token = settings.metrics_token.filter(|t| !t.is_empty());
        let metrics = settings.metrics.unwrap_or(match (&metrics_token, mode) {
            (Some(_), _) => MetricsAccess::Token,
            (None, Mode::Dev) => MetricsAccess::Public,
            (None, Mode::Production) => MetricsAccess::Off,
        });
        if metrics == MetricsAccess::Token && metrics_token.as_ref().is_none_or(|t| t.len() < 16) {
            return Err(ConfigError::MetricsToken);
        }
        let metrics_token = metrics_token.filter(|_| metrics == MetricsAccess::Token);
        let nonzero = |v: u32, name: &'static str| {
            if v == 0 {
                Err(ConfigError::Zero(name))
            } else {
                Ok(v)
            }
        };
        let llm = match settings.llm_base_url.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()) {
            None => None,
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return Err(ConfigError::LlmBaseUrl(url))
            }
            Some(url) => {
                let model = settings
                    .llm_model
                    .map(|m| m.trim().to_owned())
                    .filter(|m| !m.is_empty())
                    .ok_or(ConfigError::LlmModelMissing)?;
                let key = settings.llm_api_key.map(|k| k.0.trim().to_owned()).filter(|k| !k.is_empty());
                let mut llm = LlmConfig::new(url, key, model);
                if let Some(secs) = settings.llm_timeout_secs {
                    llm.timeout = Duration::from_secs(u64::from(nonzero(secs, "llm_timeout_secs")?));
                }
                if let Some(budget) = settings.llm_token_budget {
                    if budget == 0 {
                        return Err(ConfigError::Zero("llm_token_budget"));
                    }
                    llm.token_budget = budget;
                }
                Some(llm)
            }
        };
        let nonempty = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
        let tls = match (nonempty(settings.tls_cert), nonempty(settings.tls_key)) {
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::TlsPair("PITBOX_TLS_CERT")),
            (None, Some(_)) => return Err(ConfigError::TlsPair("PITBOX_TLS_KEY")),
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                watch: match settings.tls_watch_secs.unwrap_or(10) {
                    0 => None,
                    secs => Some(Duration::from_secs(u64::from(secs))),
                },
            }),
        };
        let trusted_proxies = settings
            .trusted_proxies
            .as_deref()
            .unwrap_or("")
            .parse::<TrustedProxies>()
            .map_err(ConfigError::TrustedProxies)?;
        let trimmed = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let elevenlabs_base_url = trimmed(settings.elevenlabs_base_url)
            .unwrap_or_else(|| crate::voice::ELEVENLABS_BASE_URL.to_owned());
        if !(elevenlabs_base_url.starts_with("http://") || elevenlabs_base_url.starts_with("https://")) {
            return Err(ConfigError::ElevenLabsBaseUrl(elevenlabs_base_url));
        }
        let voice = VoiceConfig {
            elevenlabs: settings
                .elevenlabs_api_key
                .map(|k| k.0.trim().to_owned())
                .filter(|k| !k.is_empty())
                .map(|api_key| crate::voice::ElevenLabsConfig {
                    base_url: elevenlabs_base_url.trim_end_matches('/').to_owned(),
                    api_key,
                    voice_id: trimmed(settings.elevenlabs_voice_id)
                        .unwrap_or_else(|| crate::voice::ELEVENLABS_VOICE.to_owned()),
                    model: trimmed(settings.elevenlabs_model)
                        .unwrap_or_else(|| crate::voice::ELEVENLABS_MODEL.to_owned()),
                }),
            espeak_voice: trimmed(settings.espeak_voice).unwrap_or_else(|| "en-gb".to_owned()),
            espeak_speed: settings.espeak_speed.unwrap_or(175).clamp(80, 450),
        };
        Ok(Config {
            voice,
            tls,
            trusted_proxies,
            bind: settings.bind.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir,
            database_url,
            mode,
            jwt_secret,
            jwt_secret_source,
            access_token_ttl: Duration::from_secs(u64::from(nonzero(
                settings.access_token_ttl_secs.unwrap_or(900),
                "access_token_ttl_secs",
            )?)),
            refresh_token_ttl: Duration::from_secs(u64::from(nonzero(
                settings.refresh_token_ttl_secs.unwrap_or(86_400),
                "refresh_token_ttl_secs",
            )?)),
            rate_limit_per_ip: nonzero(settings.rate_limit_per_ip.unwrap_or(200), "rate_limit_per_ip")?,
            rate_limit_per_user: nonzero(settings.rate_limit_per_user.unwrap_or(100), "rate_limit_per_user")?,
            rate_limit_login: nonzero(settings.rate_limit_login.unwrap_or(20), "rate_limit_login")?,
            max_body_bytes: settings.max_body_bytes.unwrap_or(256 * 1024).max(1024),
            cors_origins: settings
                .cors_origins
                .map(|s| s.split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect())
                .unwrap_or_default(),
            db_pool_size: nonzero(settings.db_pool_size.unwrap_or(8), "db_pool_size")?,
            log_format: settings.log_format.unwrap_or(LogFormat::Pretty),
            server_id: settings.server_id.unwrap_or_else(default_server_id),
            restart_intensity: settings.restart_intensity.unwrap_or(5),
            restart_period: Duration::from_secs(u64::from(nonzero(
                settings.restart_period_secs.unwrap_or(10),
                "restart_period_secs",
            )?)),
            idle_timeout: Duration::from_secs(u64::from(nonzero(
                settings.idle_timeout_secs.unwrap_or(300),
                "idle_timeout_secs",
            )?)),
            session_threads: nonzero(settings.session_threads.unwrap_or(2), "session_threads")? as usize,
            fault_injection: settings.fault_injection.unwrap_or(false),
            ws_auth_timeout: Duration::from_secs(u64::from(nonzero(
                settings.ws_auth_timeout_secs.unwrap_or(5),
                "ws_auth_timeout_secs",
            )?)),
            ws_max_frame_bytes: settings.ws_max_frame_bytes.unwrap_or(1024 * 1024).max(4096),
            team_rate_hz: settings.team_rate_hz.unwrap_or(20).clamp(1, 60),
            driver_rate_hz: settings.driver_rate_hz.unwrap_or(60).clamp(1, 120),
            dashboard_dir: settings.dashboard_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DASHBOARD_DIR)),
            metrics,
            metrics_token,
            llm,
        })
    }

    /// A configuration for tests and tools: the given database, a fixed secret, defaults.
    pub fn for_database(database_url: impl Into<String>) -> Result<Config, ConfigError> {
        Config::from_settings(Settings {
            database_url: Some(database_url.into()),
            jwt_secret: Some("pitbox-test-secret-0123456789abcdef".into()),
            ..Settings::default()
        })
    }
}

fn default_server_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "pitbox".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_requires_a_secret() {
        let s = Settings { mode: Some(Mode::Production), ..Settings::default() };
        assert!(matches!(Config::from_settings(s), Err(ConfigError::MissingSecret)));
    }

    #[test]
    fn dev_generates_a_secret() {
        let c = Config::from_settings(Settings::default()).unwrap();
        assert_eq!(c.jwt_secret_source, SecretSource::Generated);
        assert_eq!(c.jwt_secret.len(), 32);
        assert!(c.database_url.ends_with("pitbox.db"));
    }

    #[test]
    fn short_secret_is_refused() {
        let s = Settings { jwt_secret: Some("short".into()), ..Settings::default() };
        assert!(matches!(Config::from_settings(s), Err(ConfigError::ShortSecret)));
    }

    #[test]
    fn file_fills_what_flags_leave_unset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pitbox.toml");
        std::fs::write(&path, "bind = \"0.0.0.0:9000\"\nrate_limit_per_ip = 7\nmode = \"dev\"\n").unwrap();
        let s = Settings { config: Some(path.clone()), rate_limit_per_ip: Some(3), ..Settings::default() };
        let c = Config::from_settings(s).unwrap();
        assert_eq!(c.bind.port(), 9000);
        assert_eq!(c.rate_limit_per_ip, 3, "the flag wins over the file");
        assert_eq!(c.dashboard_dir, PathBuf::from(DEFAULT_DASHBOARD_DIR));
        std::fs::write(&path, "dashboard_dir = \"/srv/pitbox/dashboard\"\n").unwrap();
        let c = Config::from_settings(Settings { config: Some(path), ..Settings::default() }).unwrap();
        assert_eq!(c.dashboard_dir, PathBuf::from("/srv/pitbox/dashboard"));
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pitbox.toml");
        std::fs::write(&path, "bindd = \"0.0.0.0:9000\"\n").unwrap();
        let s = Settings { config: Some(path), ..Settings::default() };
        assert!(matches!(Config::from_settings(s), Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn metrics_access() {
        let c = Config::from_settings(Settings::default()).unwrap();
        assert_eq!(c.metrics, MetricsAccess::Public);
        let prod = Settings {
            mode: Some(Mode::Production),
            jwt_secret: Some("x".repeat(32)),
            ..Settings::default()
        };
        assert_eq!(Config::from_settings(prod.clone()).unwrap().metrics, MetricsAccess::Off);
        let token = Settings { metrics_token: Some("scrape-token-0123456789".into()), ..prod.clone() };
        let c = Config::from_settings(token).unwrap();
        assert_eq!(c.metrics, MetricsAccess::Token);
        assert!(!format!("{c:?}").contains("scrape-token"), "the token stays out of logs");
        assert!(!format!("{c:?}").contains(&"x".repeat(32)), "the JWT secret stays out of logs");
        let short =
            Settings { metrics: Some(MetricsAccess::Token), metrics_token: Some("short".into()), ..prod };
        assert!(matches!(Config::from_settings(short), Err(ConfigError::MetricsToken)));
    }

    #[test]
    fn llm_settings_from_the_file_and_flags() {
        let c = Config::from_settings(Settings::default()).unwrap();
        assert!(c.llm.is_none(), "off without a base URL");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pitbox.toml");
        std::fs::write(
            &path,
            "llm_base_url = \"https://inference.example.com/v1/\"\nllm_api_key = \"sk-file-key-42\"\nllm_model = \"m\"\nllm_token_budget = 5000\n",
        )
        .unwrap();
        let s = Settings { config: Some(path.clone()), llm_timeout_secs: Some(3), ..Settings::default() };
        let shown = format!("{s:?}");
        let c = Config::from_settings(s).unwrap();
        let llm = c.llm.clone().unwrap();
        assert_eq!(llm.base_url, "https://inference.example.com/v1");
        assert_eq!(llm.api_key.as_deref(), Some("sk-file-key-42"));
        assert_eq!((llm.model.as_str(), llm.token_budget, llm.timeout), ("m", 5000, Duration::from_secs(3)));
        let shown = format!(
            "{shown} {c:?} {:?}",
            Settings { llm_api_key: Some(Secret("sk-flag".into())), ..Settings::default() }
        );
        assert!(!shown.contains("sk-file-key-42") && !shown.contains("sk-flag"), "{shown}");

        std::fs::write(&path, "llm_base_url = \"https://x/v1\"\n").unwrap();
        let s = Settings { config: Some(path.clone()), ..Settings::default() };
        assert!(matches!(Config::from_settings(s), Err(ConfigError::LlmModelMissing)));
        let s = Settings {
            llm_base_url: Some("ftp://x".into()),
            llm_model: Some("m".into()),
            ..Settings::default()
        };
        assert!(matches!(Config::from_settings(s), Err(ConfigError::LlmBaseUrl(_))));
    }

    #[test]
    fn tls_and_proxy_settings() {
        let c = Config::from_settings(Settings::default()).unwrap();
        assert!(c.tls.is_none() && c.trusted_proxies.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pitbox.toml");
        std::fs::write(
            &path,
            "tls_cert = \"/etc/pitbox/cert.pem\"\ntls_key = \"/etc/pitbox/key.pem\"\ntrusted_proxies = \"10.0.0.0/8, 127.0.0.1\"\n",
        )
        .unwrap();
        let c =
            Config::from_settings(Settings { config: Some(path.clone()), ..Settings::default() }).unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.cert, PathBuf::from("/etc/pitbox/cert.pem"));
        assert_eq!(tls.watch, Some(Duration::from_secs(10)));
        assert!(c.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
        let s = Settings { config: Some(path), tls_watch_secs: Some(0), ..Settings::default() };
        assert_eq!(Config::from_settings(s).unwrap().tls.unwrap().watch, None, "0: SIGHUP only");
        let half = Settings { tls_cert: Some("c.pem".into()), ..Settings::default() };
        let e = Config::from_settings(half).unwrap_err();
        assert!(matches!(e, ConfigError::TlsPair("PITBOX_TLS_CERT")), "{e}");
        let bad = Settings { trusted_proxies: Some("10.0.0.0/99".into()), ..Settings::default() };
        let e = Config::from_settings(bad).unwrap_err().to_string();
        assert!(e.contains("10.0.0.0/99"), "{e}");
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("/tmp/x.db"), "/tmp/x.db");
    }
}
