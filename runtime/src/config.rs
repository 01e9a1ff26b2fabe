//! Configuration, built once into a [`Config`] value and passed down; never a global.
//!
//! Each setting is declared once, as a field of one of the section structs below ([`Settings`]
//! flattens them): its doc comment is its `--help` text, and its `#[arg]` names the flag, the env
//! var and the default (`pitbox-runtime --help` shows all three). The TOML file named by
//! `--config` / `PITBOX_CONFIG` uses the field names as keys (`rate_limit_per_ip = 7`).
//!
//! Precedence, first wins: the command line, the env var, the TOML file, the default. [`parse`]
//! gets it by handing the file's values to clap as the settings' defaults, so clap parses and
//! checks every source with the same value parser, and a key that names no setting is an error.
//! [`Config::from_settings`] then checks the values and turns them into what the runtime uses.
//! Secrets are [`Secret`]s and the database address a [`DatabaseUrl`], so `Debug` of
//! [`Settings`] and [`Config`] never shows them (see [`crate::secret`]).
//!
//! Env vars read (through clap): `PITBOX_CONFIG`, `PITBOX_BIND`, `PITBOX_DATA_DIR`, `DATABASE_URL`,
//! `PITBOX_MODE`, `PITBOX_LOG_FORMAT`, `PITBOX_SERVER_ID`, `PITBOX_DASHBOARD_DIR`,
//! `PITBOX_MAX_BODY_BYTES`, `PITBOX_CORS_ORIGINS`, `PITBOX_DB_POOL_SIZE`, `PITBOX_TRUSTED_PROXIES`,
//! `PITBOX_JWT_SECRET`, `PITBOX_ACCESS_TOKEN_TTL_SECS`, `PITBOX_REFRESH_TOKEN_TTL_SECS`,
//! `PITBOX_RATE_LIMIT_PER_IP`, `PITBOX_RATE_LIMIT_PER_USER`, `PITBOX_RATE_LIMIT_LOGIN`,
//! `PITBOX_RESTART_INTENSITY`, `PITBOX_RESTART_PERIOD_SECS`, `PITBOX_IDLE_TIMEOUT_SECS`,
//! `PITBOX_SESSION_THREADS`, `PITBOX_FAULT_INJECTION`, `PITBOX_WS_AUTH_TIMEOUT_SECS`,
//! `PITBOX_WS_MAX_FRAME_BYTES`, `PITBOX_TEAM_RATE_HZ`, `PITBOX_DRIVER_RATE_HZ`, `PITBOX_METRICS`,
//! `PITBOX_METRICS_TOKEN`, `PITBOX_LLM_BASE_URL`, `PITBOX_LLM_API_KEY`, `PITBOX_LLM_MODEL`,
//! `PITBOX_LLM_TIMEOUT_SECS`, `PITBOX_LLM_TOKEN_BUDGET`, `PITBOX_TLS_CERT`, `PITBOX_TLS_KEY`,
//! `PITBOX_TLS_WATCH_SECS`, `PITBOX_ELEVENLABS_API_KEY`, `PITBOX_ELEVENLABS_VOICE_ID`,
//! `PITBOX_ELEVENLABS_MODEL`, `PITBOX_ELEVENLABS_BASE_URL`, `PITBOX_ESPEAK_VOICE`,
//! `PITBOX_ESPEAK_SPEED`, `PITBOX_NATS_URL`, `PITBOX_NODE_ID`, `PITBOX_LEASE_TTL_MS`.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, ValueEnum};
use pitbox_actors::supervision::RestartPolicy;
use pitbox_actors::system::SystemOptions;

use crate::llm::LlmConfig;
use crate::proxy::TrustedProxies;
pub use crate::secret::{redact_url, DatabaseUrl, Secret};
use crate::tls::TlsFiles;
pub use crate::voice::VoiceConfig;

/// Where `tools/build-dashboard.sh` puts the built dashboard, relative to the repository root.
pub const DEFAULT_DASHBOARD_DIR: &str = "dashboard-yew/dist";

/// `dev` generates a JWT secret when none is set (and says so); `production` refuses to start
/// without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Dev,
    Production,
}

/// Who may read `GET /metrics`: nobody (`off`: 404), holders of the metrics token (`token`:
/// `Authorization: Bearer <PITBOX_METRICS_TOKEN>`), or anyone (`public`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricsAccess {
    Off,
    Token,
    Public,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Every setting: the sections below, flattened. Global options, so they may also follow the
/// subcommand.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// TOML file with any of these settings, keyed by the names of the options with underscores
    /// (e.g. `bind = "0.0.0.0:8080"`); options and env vars win over it.
    #[arg(long, env = "PITBOX_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub actors: ActorSettings,
    #[command(flatten)]
    pub socket: SocketSettings,
    #[command(flatten)]
    pub metrics: MetricsSettings,
    #[command(flatten)]
    pub llm: LlmSettings,
    #[command(flatten)]
    pub tls: TlsSettings,
    #[command(flatten)]
    pub voice: VoiceSettings,
    #[command(flatten)]
    pub cluster: ClusterSettings,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Server")]
pub struct ServerSettings {
    /// Address to listen on.
    #[arg(long, env = "PITBOX_BIND", global = true, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Directory for the embedded SQLite database and other local state.
    #[arg(long, env = "PITBOX_DATA_DIR", global = true, default_value = "pitbox-data")]
    pub data_dir: PathBuf,
    /// `postgres://…` for PostgreSQL, or a SQLite file path [default: <data-dir>/pitbox.db].
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,
    /// `dev` generates a JWT secret when none is set; `production` refuses to start without one.
    #[arg(long, env = "PITBOX_MODE", global = true, value_enum, default_value_t = Mode::Dev)]
    pub mode: Mode,
    /// Log lines as text or JSON.
    #[arg(long, env = "PITBOX_LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// Name of this node in `connection_established` and logs [default: host name].
    #[arg(long, env = "PITBOX_SERVER_ID", global = true)]
    pub server_id: Option<String>,
    /// The built dashboard (index.html, JS, WASM) served at `/`; relative to the working directory.
    #[arg(long, env = "PITBOX_DASHBOARD_DIR", global = true, default_value = DEFAULT_DASHBOARD_DIR)]
    pub dashboard_dir: PathBuf,
    /// Largest accepted request body in bytes (at least 1024).
    #[arg(long, env = "PITBOX_MAX_BODY_BYTES", global = true, default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,
    /// Comma-separated origins allowed by CORS, or `*` [default: none, same-origin only].
    #[arg(long, env = "PITBOX_CORS_ORIGINS", global = true)]
    pub cors_origins: Option<String>,
    /// Maximum database connections (SQLite uses at most 4).
    #[arg(long, env = "PITBOX_DB_POOL_SIZE", global = true, default_value_t = 8)]
    pub db_pool_size: u32,
    /// Reverse proxies (comma-separated addresses or CIDR blocks, e.g. `10.0.0.0/8,127.0.0.1`)
    /// whose X-Forwarded-For names the client for rate limits and logs [default: none].
    #[arg(long, env = "PITBOX_TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Authentication and rate limits")]
pub struct AuthSettings {
    /// HS256 secret for access tokens (at least 32 bytes). Required in production mode.
    #[arg(long, env = "PITBOX_JWT_SECRET", global = true, hide_env_values = true)]
    pub jwt_secret: Option<Secret<String>>,
    /// Lifetime of access tokens in seconds.
    #[arg(long, env = "PITBOX_ACCESS_TOKEN_TTL_SECS", global = true, default_value_t = 900)]
    pub access_token_ttl_secs: u32,
    /// Lifetime of refresh tokens in seconds.
    #[arg(long, env = "PITBOX_REFRESH_TOKEN_TTL_SECS", global = true, default_value_t = 86_400)]
    pub refresh_token_ttl_secs: u32,
    /// API requests per second allowed from one IP address (burst: twice that).
    #[arg(long, env = "PITBOX_RATE_LIMIT_PER_IP", global = true, default_value_t = 200)]
    pub rate_limit_per_ip: u32,
    /// API requests per second allowed for one user (burst: twice that).
    #[arg(long, env = "PITBOX_RATE_LIMIT_PER_USER", global = true, default_value_t = 100)]
    pub rate_limit_per_user: u32,
    /// Login attempts per minute allowed from one IP address.
    #[arg(long, env = "PITBOX_RATE_LIMIT_LOGIN", global = true, default_value_t = 20)]
    pub rate_limit_login: u32,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Actors")]
pub struct ActorSettings {
    /// Restarts of one actor allowed within the restart period before it is stopped.
    #[arg(long, env = "PITBOX_RESTART_INTENSITY", global = true,
          default_value_t = RestartPolicy::DEFAULT.intensity)]
    pub restart_intensity: u32,
    /// The restart period in seconds.
    #[arg(long, env = "PITBOX_RESTART_PERIOD_SECS", global = true,
          default_value_t = RestartPolicy::DEFAULT.period.as_secs())]
    pub restart_period_secs: u64,
    /// Seconds without a node or data after which a driver session is stopped.
    #[arg(long, env = "PITBOX_IDLE_TIMEOUT_SECS", global = true,
          default_value_t = SystemOptions::DEFAULT_IDLE_TIMEOUT.as_secs())]
    pub idle_timeout_secs: u64,
    /// Threads that run driver sessions.
    #[arg(long, env = "PITBOX_SESSION_THREADS", global = true,
          default_value_t = SystemOptions::DEFAULT_SESSION_THREADS)]
    pub session_threads: usize,
    /// Allow admins to make an actor panic (`POST /admin/actors/fault`).
    #[arg(long, env = "PITBOX_FAULT_INJECTION", global = true, action = clap::ArgAction::Set,
          default_value_t = false)]
    pub fault_injection: bool,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "WebSocket")]
pub struct SocketSettings {
    /// Seconds a new WebSocket has to authenticate.
    #[arg(long, env = "PITBOX_WS_AUTH_TIMEOUT_SECS", global = true, default_value_t = 5)]
    pub ws_auth_timeout_secs: u32,
    /// Largest WebSocket frame accepted, in bytes (larger: close 1009; at least 4096).
    #[arg(long, env = "PITBOX_WS_MAX_FRAME_BYTES", global = true, default_value_t = 1024 * 1024)]
    pub ws_max_frame_bytes: usize,
    /// Samples per second per driver in the team view (1 to 60).
    #[arg(long, env = "PITBOX_TEAM_RATE_HZ", global = true, default_value_t = 20)]
    pub team_rate_hz: u16,
    /// Samples per second of a focused driver (1 to 120).
    #[arg(long, env = "PITBOX_DRIVER_RATE_HZ", global = true, default_value_t = 60)]
    pub driver_rate_hz: u16,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Metrics")]
pub struct MetricsSettings {
    /// Who may read `/metrics`: `off`, `token` (needs PITBOX_METRICS_TOKEN) or `public`
    /// [default: `token` when a metrics token is set, else `public` in dev mode, `off` in production].
    #[arg(long, env = "PITBOX_METRICS", global = true, value_enum)]
    pub metrics: Option<MetricsAccess>,
    /// Bearer token a scraper sends for `/metrics` when access is `token` (at least 16 bytes).
    #[arg(long, env = "PITBOX_METRICS_TOKEN", global = true, hide_env_values = true)]
    pub metrics_token: Option<Secret<String>>,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Coach phrasing (LLM)")]
pub struct LlmSettings {
    /// OpenAI-compatible API that rephrases the coach's findings, up to the version, e.g.
    /// `https://api.openai.com/v1` [default: none, the coach's own text].
    #[arg(long, env = "PITBOX_LLM_BASE_URL", global = true)]
    pub llm_base_url: Option<String>,
    /// Bearer key for the LLM API.
    #[arg(long, env = "PITBOX_LLM_API_KEY", global = true, hide_env_values = true)]
    pub llm_api_key: Option<Secret<String>>,
    /// Model name for the LLM API (required with a base URL).
    #[arg(long, env = "PITBOX_LLM_MODEL", global = true)]
    pub llm_model: Option<String>,
    /// Seconds one phrasing may take, retries included, before the coach's own text is used.
    #[arg(long, env = "PITBOX_LLM_TIMEOUT_SECS", global = true,
          default_value_t = crate::llm::DEFAULT_TIMEOUT.as_secs())]
    pub llm_timeout_secs: u64,
    /// Tokens one driver session may spend on phrasing.
    #[arg(long, env = "PITBOX_LLM_TOKEN_BUDGET", global = true,
          default_value_t = crate::llm::DEFAULT_TOKEN_BUDGET)]
    pub llm_token_budget: u64,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsSettings {
    /// PEM certificate chain (server certificate first): serve HTTPS/WSS instead of plain HTTP.
    /// Needs --tls-key. Reloaded on SIGHUP and when the file changes.
    #[arg(long, env = "PITBOX_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the TLS certificate.
    #[arg(long, env = "PITBOX_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
    /// Seconds between looks at the TLS files for a renewed pair; 0: reload on SIGHUP only.
    #[arg(long, env = "PITBOX_TLS_WATCH_SECS", global = true, default_value_t = 10)]
    pub tls_watch_secs: u64,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Voice")]
pub struct VoiceSettings {
    /// ElevenLabs API key: spoken answers use ElevenLabs when it is set [default: espeak-ng only].
    #[arg(long, env = "PITBOX_ELEVENLABS_API_KEY", global = true, hide_env_values = true)]
    pub elevenlabs_api_key: Option<Secret<String>>,
    /// ElevenLabs voice.
    #[arg(long, env = "PITBOX_ELEVENLABS_VOICE_ID", global = true,
          default_value = crate::voice::ELEVENLABS_VOICE)]
    pub elevenlabs_voice_id: String,
    /// ElevenLabs model.
    #[arg(long, env = "PITBOX_ELEVENLABS_MODEL", global = true,
          default_value = crate::voice::ELEVENLABS_MODEL)]
    pub elevenlabs_model: String,
    /// ElevenLabs API address, without `/v1`.
    #[arg(long, env = "PITBOX_ELEVENLABS_BASE_URL", global = true,
          default_value = crate::voice::ELEVENLABS_BASE_URL)]
    pub elevenlabs_base_url: String,
    /// espeak-ng voice.
    #[arg(long, env = "PITBOX_ESPEAK_VOICE", global = true, default_value = crate::voice::ESPEAK_VOICE)]
    pub espeak_voice: String,
    /// espeak-ng speed in words per minute (80 to 450).
    #[arg(long, env = "PITBOX_ESPEAK_SPEED", global = true, default_value_t = crate::voice::ESPEAK_SPEED)]
    pub espeak_speed: u32,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterSettings {
    /// NATS server of the cluster, e.g. `nats://127.0.0.1:4222`: cluster mode (several runtime
    /// nodes on one PostgreSQL; needs a `postgres://` DATABASE_URL) [default: none, one process].
    #[arg(long, env = "PITBOX_NATS_URL", global = true)]
    pub nats_url: Option<String>,
    /// This node's id in team leases; unique per running process [default: <server id>-<pid>].
    #[arg(long, env = "PITBOX_NODE_ID", global = true)]
    pub node_id: Option<String>,
    /// Milliseconds a team lease lasts without renewal (renewed every third of it); a dead
    /// node's teams move after about this long (at least 300).
    #[arg(long, env = "PITBOX_LEASE_TTL_MS", global = true, default_value_t = 5000)]
    pub lease_ttl_ms: u64,
}

/// Cluster mode's settings, resolved (see [`ClusterSettings`]).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub nats_url: String,
    pub node_id: String,
    pub lease_ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A bad option or env var, or `--help` / `--version` (whose "error" is the text to print):
    /// `main` hands it to [`clap::Error::exit`].
    #[error("{0}")]
    Args(#[from] clap::Error),
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
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
    #[error(
        "cluster mode (PITBOX_NATS_URL) needs PostgreSQL: set DATABASE_URL to a postgres:// URL \
         shared by every node (SQLite is one process's file)"
    )]
    ClusterNeedsPostgres,
    #[error("PITBOX_NATS_URL must start with nats://, tls:// or be host:port, got {0:?}")]
    NatsUrl(String),
}

/// Parses `args` (program name first) as the command `cmd`, which flattens [`Settings`] at its
/// top level: options, then env vars, then the TOML file named by `--config` / `PITBOX_CONFIG`,
/// then the defaults.
pub fn parse<P: FromArgMatches>(
    cmd: clap::Command,
    args: impl IntoIterator<Item = impl Into<OsString>>,
) -> Result<P, ConfigError> {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // A first pass finds the file (and answers `--help` or a bad option before it is read).
    let first = cmd.clone().try_get_matches_from(&args)?;
    let cmd = match first.get_one::<PathBuf>("config") {
        Some(path) => with_file_defaults(cmd, path)?,
        None => cmd,
    };
    let matches: ArgMatches = cmd.try_get_matches_from(args)?;
    Ok(P::from_arg_matches(&matches)?)
}

/// `cmd` with the file's values as the defaults of their settings, so that options and env vars
/// still win over them.
fn with_file_defaults(mut cmd: clap::Command, path: &Path) -> Result<clap::Command, ConfigError> {
    let parse_error = |message: String| ConfigError::Parse { path: path.to_owned(), message };
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| parse_error(e.to_string()))?;
    let settings = settings_command();
    for (key, value) in table {
        let Some(arg) = settings.get_arguments().find(|a| a.get_id().as_str() == key && key != "config")
        else {
            return Err(parse_error(format!("unknown setting `{key}`")));
        };
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(parse_error(format!(
                    "`{key}`: expected a string, number or boolean, not {}",
                    other.type_str()
                )))
            }
        };
        // Checked here so that the error names the file and the key, not the option.
        let long = arg.get_long().unwrap_or(key.as_str());
        if let Err(e) =
            settings.clone().no_binary_name(true).try_get_matches_from([format!("--{long}={value}")])
        {
            let reason = e.to_string();
            let reason = reason.lines().next().unwrap_or_default().trim_start_matches("error: ");
            return Err(parse_error(format!("`{key}`: {reason}")));
        }
        cmd = cmd.mut_arg(key, |a| a.default_value(value));
    }
    Ok(cmd)
}

/// The settings alone, env vars off: what the file's values are checked with.
fn settings_command() -> clap::Command {
    Settings::augment_args(clap::Command::new("pitbox-runtime")).mut_args(|a| a.env(None::<&str>))
}

impl Settings {
    /// Settings from options alone (`args` without a program name; no env var is read), the file
    /// named by `--config` filling what they leave unset: for tests and tools.
    pub fn from_args(args: impl IntoIterator<Item = impl Into<OsString>>) -> Result<Settings, ConfigError> {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            settings: Settings,
        }
        let cmd = Only::command().no_binary_name(true).mut_args(|a| a.env(None::<&str>));
        parse::<Only>(cmd, args).map(|only| only.settings)
    }
}

/// Where the JWT secret came from; a generated one is announced at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    Configured,
    Generated,
}

/// The resolved configuration: checked, and in the types the runtime uses. `Debug` shows no
/// secret (they are [`Secret`]s) and no database password.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub mode: Mode,
    pub jwt_secret: Secret<Vec<u8>>,
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
    pub metrics_token: Option<Secret<String>>,
    /// The coach's LLM phrasing; `None` (no base URL) keeps the coach's own text.
    pub llm: Option<LlmConfig>,
    /// HTTPS/WSS served by the runtime itself; `None`: plain HTTP (behind a TLS proxy, or a LAN).
    pub tls: Option<TlsFiles>,
    /// Proxies whose `X-Forwarded-For` is believed (see [`crate::proxy`]).
    pub trusted_proxies: TrustedProxies,
    /// Text to speech: espeak-ng, and ElevenLabs when a key is set.
    pub voice: VoiceConfig,
    /// Cluster mode (NATS and team leases); `None`: one process.
    pub cluster: Option<ClusterConfig>,
}

/// `v` trimmed, `None` when that leaves nothing (an empty env var counts as unset).
fn nonblank(v: Option<String>) -> Option<String> {
    v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn nonzero<T: Default + PartialEq>(v: T, name: &'static str) -> Result<T, ConfigError> {
    if v == T::default() {
        Err(ConfigError::Zero(name))
    } else {
        Ok(v)
    }
}

fn secs(v: u64, name: &'static str) -> Result<Duration, ConfigError> {
    nonzero(v, name).map(Duration::from_secs)
}

impl Config {
    /// Checks the settings (options, env and file already merged by [`parse`]) and resolves
    /// them into a config.
    pub fn from_settings(settings: Settings) -> Result<Config, ConfigError> {
        let Settings { config: _, server, auth, actors, socket, metrics, llm, tls, voice, cluster } =
            settings;
        let mode = server.mode;
        let data_dir = server.data_dir;
        let database_url = server
            .database_url
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| data_dir.join("pitbox.db").to_string_lossy().into_owned().into());
        let (jwt_secret, jwt_secret_source) = match auth.jwt_secret {
            Some(s) if s.len() < 32 => return Err(ConfigError::ShortSecret),
            Some(s) => (Secret::new(s.expose().clone().into_bytes()), SecretSource::Configured),
            None if mode == Mode::Production => return Err(ConfigError::MissingSecret),
            None => {
                let mut bytes = vec![0u8; 32];
                rand::Rng::fill(&mut rand::rng(), bytes.as_mut_slice());
                (Secret::new(bytes), SecretSource::Generated)
            }
        };
        let metrics_token = metrics.metrics_token.filter(|t| !t.is_empty());
        let metrics_access = metrics.metrics.unwrap_or(match (&metrics_token, mode) {
            (Some(_), _) => MetricsAccess::Token,
            (None, Mode::Dev) => MetricsAccess::Public,
            (None, Mode::Production) => MetricsAccess::Off,
        });
        if metrics_access == MetricsAccess::Token && metrics_token.as_ref().is_none_or(|t| t.len() < 16) {
            return Err(ConfigError::MetricsToken);
        }
        let metrics_token = metrics_token.filter(|_| metrics_access == MetricsAccess::Token);
        let llm = match nonblank(llm.llm_base_url) {
            None => None,
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return Err(ConfigError::LlmBaseUrl(url))
            }
            Some(url) => {
                let model = nonblank(llm.llm_model).ok_or(ConfigError::LlmModelMissing)?;
                let key = nonblank(llm.llm_api_key.map(|k| k.expose().clone()));
                Some(LlmConfig {
                    timeout: secs(llm.llm_timeout_secs, "llm_timeout_secs")?,
                    token_budget: nonzero(llm.llm_token_budget, "llm_token_budget")?,
                    ..LlmConfig::new(url, key, model)
                })
            }
        };
        let nonempty = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
        let tls = match (nonempty(tls.tls_cert), nonempty(tls.tls_key)) {
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::TlsPair("PITBOX_TLS_CERT")),
            (None, Some(_)) => return Err(ConfigError::TlsPair("PITBOX_TLS_KEY")),
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                watch: Some(tls.tls_watch_secs).filter(|s| *s > 0).map(Duration::from_secs),
            }),
        };
        let trusted_proxies = server
            .trusted_proxies
            .as_deref()
            .unwrap_or("")
            .parse::<TrustedProxies>()
            .map_err(ConfigError::TrustedProxies)?;
        // Blank strings fall back to the default, as an unset env var would.
        let or_default = |v: String, default: &str| nonblank(Some(v)).unwrap_or_else(|| default.to_owned());
        let elevenlabs_base_url = or_default(voice.elevenlabs_base_url, crate::voice::ELEVENLABS_BASE_URL);
        if !(elevenlabs_base_url.starts_with("http://") || elevenlabs_base_url.starts_with("https://")) {
            return Err(ConfigError::ElevenLabsBaseUrl(elevenlabs_base_url));
        }
        let server_id = server.server_id.unwrap_or_else(default_server_id);
        let cluster = match nonblank(cluster.nats_url) {
            None => None,
            Some(url)
                if url.contains("://") && !(url.starts_with("nats://") || url.starts_with("tls://")) =>
            {
                return Err(ConfigError::NatsUrl(url))
            }
            Some(_)
                if pitbox_schema::db::Backend::of_url(&database_url)
                    != pitbox_schema::db::Backend::Postgres =>
            {
                return Err(ConfigError::ClusterNeedsPostgres)
            }
            Some(nats_url) => Some(ClusterConfig {
                nats_url,
                node_id: nonblank(cluster.node_id)
                    .unwrap_or_else(|| format!("{server_id}-{}", std::process::id())),
                lease_ttl: Duration::from_millis(cluster.lease_ttl_ms.max(300)),
            }),
        };
        let voice = VoiceConfig {
            elevenlabs: nonblank(voice.elevenlabs_api_key.map(|k| k.expose().clone())).map(|api_key| {
                crate::voice::ElevenLabsConfig {
                    base_url: elevenlabs_base_url.trim_end_matches('/').to_owned(),
                    api_key: Secret::new(api_key),
                    voice_id: or_default(voice.elevenlabs_voice_id, crate::voice::ELEVENLABS_VOICE),
                    model: or_default(voice.elevenlabs_model, crate::voice::ELEVENLABS_MODEL),
                }
            }),
            espeak_voice: or_default(voice.espeak_voice, crate::voice::ESPEAK_VOICE),
            espeak_speed: voice.espeak_speed.clamp(80, 450),
        };
        Ok(Config {
            voice,
            tls,
            trusted_proxies,
            bind: server.bind,
            data_dir,
            database_url,
            mode,
            jwt_secret,
            jwt_secret_source,
            access_token_ttl: secs(auth.access_token_ttl_secs.into(), "access_token_ttl_secs")?,
            refresh_token_ttl: secs(auth.refresh_token_ttl_secs.into(), "refresh_token_ttl_secs")?,
            rate_limit_per_ip: nonzero(auth.rate_limit_per_ip, "rate_limit_per_ip")?,
            rate_limit_per_user: nonzero(auth.rate_limit_per_user, "rate_limit_per_user")?,
            rate_limit_login: nonzero(auth.rate_limit_login, "rate_limit_login")?,
            max_body_bytes: server.max_body_bytes.max(1024),
            cors_origins: server
                .cors_origins
                .map(|s| s.split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect())
                .unwrap_or_default(),
            db_pool_size: nonzero(server.db_pool_size, "db_pool_size")?,
            log_format: server.log_format,
            server_id,
            cluster,
            restart_intensity: actors.restart_intensity,
            restart_period: secs(actors.restart_period_secs, "restart_period_secs")?,
            idle_timeout: secs(actors.idle_timeout_secs, "idle_timeout_secs")?,
            session_threads: nonzero(actors.session_threads, "session_threads")?,
            fault_injection: actors.fault_injection,
            ws_auth_timeout: secs(socket.ws_auth_timeout_secs.into(), "ws_auth_timeout_secs")?,
            ws_max_frame_bytes: socket.ws_max_frame_bytes.max(4096),
            team_rate_hz: socket.team_rate_hz.clamp(1, 60),
            driver_rate_hz: socket.driver_rate_hz.clamp(1, 120),
            dashboard_dir: server.dashboard_dir,
            metrics: metrics_access,
            metrics_token,
            llm,
        })
    }

    /// A configuration for tests and tools: the given database, a fixed secret, defaults (no env
    /// var is read).
    pub fn for_database(database_url: impl Into<String>) -> Result<Config, ConfigError> {
        let database_url: String = database_url.into();
        Config::from_settings(Settings::from_args([
            "--jwt-secret=pitbox-test-secret-0123456789abcdef".to_owned(),
            format!("--database-url={database_url}"),
        ])?)
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

    fn settings(args: &[&str]) -> Settings {
        Settings::from_args(args).unwrap()
    }

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        Config::from_settings(Settings::from_args(args)?)
    }

    fn file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pitbox.toml");
        std::fs::write(&path, text).unwrap();
        let arg = format!("--config={}", path.display());
        (dir, arg)
    }

    #[test]
    fn production_requires_a_secret() {
        assert!(matches!(config(&["--mode", "production"]), Err(ConfigError::MissingSecret)));
    }

    #[test]
    fn dev_generates_a_secret() {
        let c = config(&[]).unwrap();
        assert_eq!(c.jwt_secret_source, SecretSource::Generated);
        assert_eq!(c.jwt_secret.len(), 32);
        assert!(c.database_url.ends_with("pitbox.db"));
    }

    #[test]
    fn short_secret_is_refused() {
        assert!(matches!(config(&["--jwt-secret", "short"]), Err(ConfigError::ShortSecret)));
    }

    #[test]
    fn defaults_are_declared_once_and_shared_with_the_actors() {
        let c = config(&[]).unwrap();
        assert_eq!(c.bind, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!((c.rate_limit_per_ip, c.rate_limit_per_user, c.rate_limit_login), (200, 100, 20));
        assert_eq!(c.access_token_ttl, Duration::from_secs(900));
        assert_eq!(c.restart_intensity, RestartPolicy::DEFAULT.intensity);
        assert_eq!(c.restart_period, RestartPolicy::DEFAULT.period);
        assert_eq!(c.idle_timeout, SystemOptions::DEFAULT_IDLE_TIMEOUT);
        assert_eq!(c.session_threads, SystemOptions::DEFAULT_SESSION_THREADS);
        assert_eq!((c.voice.espeak_voice.as_str(), c.voice.espeak_speed), ("en-gb", 175));
        assert_eq!(c.dashboard_dir, PathBuf::from(DEFAULT_DASHBOARD_DIR));
        assert!(!c.fault_injection && c.tls.is_none() && c.llm.is_none());
    }

    #[test]
    fn file_fills_what_flags_leave_unset() {
        let (_dir, cfg) = file("bind = \"0.0.0.0:9000\"\nrate_limit_per_ip = 7\nmode = \"dev\"\n");
        let c = config(&[&cfg, "--rate-limit-per-ip", "3"]).unwrap();
        assert_eq!(c.bind.port(), 9000);
        assert_eq!(c.rate_limit_per_ip, 3, "the flag wins over the file");
        assert_eq!(c.dashboard_dir, PathBuf::from(DEFAULT_DASHBOARD_DIR));
        let (_dir, cfg) = file("dashboard_dir = \"/srv/pitbox/dashboard\"\nfault_injection = true\n");
        let c = config(&[&cfg]).unwrap();
        assert_eq!(c.dashboard_dir, PathBuf::from("/srv/pitbox/dashboard"));
        assert!(c.fault_injection);
    }

    /// default < file < flag through the real `pitbox-runtime` command line (env vars are off
    /// here: setting one would race the other tests' reads; `tests/config.rs` runs the binary
    /// with them).
    #[test]
    fn precedence_through_the_command_line() {
        let cmd = || crate::cli::Cli::command().mut_args(|a| a.env(None::<&str>));
        let limits = |args: &[&str]| {
            let cli: crate::cli::Cli =
                parse(cmd(), ["pitbox-runtime"].iter().chain(args).chain(&["migrate"])).unwrap();
            (cli.settings.auth.rate_limit_login, cli.settings.auth.rate_limit_per_ip)
        };
        let (_dir, cfg) = file("rate_limit_login = 40\n");
        assert_eq!(limits(&[]), (20, 200), "the defaults");
        assert_eq!(limits(&[&cfg]), (40, 200), "the file over the default");
        assert_eq!(limits(&[&cfg, "--rate-limit-login", "60"]), (60, 200), "the flag over the file");
        // Options may follow the subcommand (they are global), and still win over the file.
        let cli: crate::cli::Cli =
            parse(cmd(), ["pitbox-runtime", cfg.as_str(), "migrate", "--rate-limit-login=70"]).unwrap();
        assert_eq!(cli.settings.auth.rate_limit_login, 70);
        assert!(matches!(cli.command, crate::cli::Command::Migrate));
        let cli: crate::cli::Cli = parse(cmd(), ["pitbox-runtime", "migrate", cfg.as_str()]).unwrap();
        assert_eq!(cli.settings.auth.rate_limit_login, 40, "--config after the subcommand");
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let (_dir, cfg) = file("bindd = \"0.0.0.0:9000\"\n");
        let e = Settings::from_args([&cfg]).unwrap_err();
        assert!(matches!(&e, ConfigError::Parse { message, .. } if message.contains("bindd")), "{e}");
        let (_dir, cfg) = file("config = \"other.toml\"\n");
        assert!(matches!(Settings::from_args([&cfg]), Err(ConfigError::Parse { .. })), "not a setting");
        let (_dir, cfg) = file("rate_limit_per_ip = \"many\"\n");
        let e = Settings::from_args([&cfg]).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Parse { message, .. } if message.contains("rate_limit_per_ip")),
            "{e}"
        );
        let (_dir, cfg) = file("bind = [1]\n");
        assert!(matches!(Settings::from_args([&cfg]), Err(ConfigError::Parse { .. })));
        let (_dir, cfg) = file("bind = \n");
        assert!(matches!(Settings::from_args([&cfg]), Err(ConfigError::Parse { .. })), "bad TOML");
        let e = Settings::from_args(["--config=/nonexistent/pitbox.toml"]).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
    }

    #[test]
    fn help_documents_env_vars_and_defaults() {
        let help = crate::cli::Cli::command().render_long_help().to_string();
        for shown in [
            "[env: PITBOX_BIND=",
            "[default: 127.0.0.1:8080]",
            "[env: PITBOX_RESTART_INTENSITY=",
            "[env: DATABASE_URL",
            "[env: PITBOX_ESPEAK_SPEED=",
            "[default: 175]",
        ] {
            assert!(help.contains(shown), "{shown} missing from:\n{help}");
        }
        crate::cli::Cli::command().debug_assert();
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let (_dir, cfg) = file("llm_api_key = \"sk-file-key-42\"\n");
        let s = settings(&[
            &cfg,
            "--jwt-secret=jwt-secret-0123456789abcdef-0123456789",
            "--metrics-token=scrape-token-0123456789",
            "--elevenlabs-api-key=el-key-0123",
            "--database-url=postgres://pitbox:db-password@db/pitbox",
            "--llm-base-url=https://x/v1",
            "--llm-model=m",
        ]);
        assert_eq!(s.llm.llm_api_key.as_deref(), Some("sk-file-key-42"));
        let c = Config::from_settings(s.clone()).unwrap();
        assert_eq!(c.database_url.as_str(), "postgres://pitbox:db-password@db/pitbox");
        let shown = format!("{s:?} {c:?}");
        for secret in ["jwt-secret-0123", "scrape-token", "el-key-0123", "db-password", "sk-file-key-42"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("postgres://pitbox:***@db/pitbox"), "{shown}");
    }

    #[test]
    fn metrics_access() {
        let c = config(&[]).unwrap();
        assert_eq!(c.metrics, MetricsAccess::Public);
        let prod = ["--mode=production", "--jwt-secret=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"];
        assert_eq!(config(&prod).unwrap().metrics, MetricsAccess::Off);
        let c = config(&[prod[0], prod[1], "--metrics-token=scrape-token-0123456789"]).unwrap();
        assert_eq!(c.metrics, MetricsAccess::Token);
        assert!(!format!("{c:?}").contains("scrape-token"), "the token stays out of logs");
        assert!(!format!("{c:?}").contains(&"x".repeat(32)), "the JWT secret stays out of logs");
        let short = config(&[prod[0], prod[1], "--metrics=token", "--metrics-token=short"]);
        assert!(matches!(short, Err(ConfigError::MetricsToken)));
    }

    #[test]
    fn llm_settings_from_the_file_and_flags() {
        assert!(config(&[]).unwrap().llm.is_none(), "off without a base URL");
        let (_dir, cfg) = file(
            "llm_base_url = \"https://inference.example.com/v1/\"\nllm_api_key = \"sk-file-key-42\"\nllm_model = \"m\"\nllm_token_budget = 5000\n",
        );
        let s = settings(&[&cfg, "--llm-timeout-secs", "3"]);
        let shown = format!("{s:?}");
        let c = Config::from_settings(s).unwrap();
        let llm = c.llm.clone().unwrap();
        assert_eq!(llm.base_url, "https://inference.example.com/v1");
        assert_eq!(llm.api_key.as_deref(), Some("sk-file-key-42"));
        assert_eq!((llm.model.as_str(), llm.token_budget, llm.timeout), ("m", 5000, Duration::from_secs(3)));
        let shown = format!("{shown} {c:?} {:?}", settings(&["--llm-api-key", "sk-flag"]));
        assert!(!shown.contains("sk-file-key-42") && !shown.contains("sk-flag"), "{shown}");

        let (_dir, cfg) = file("llm_base_url = \"https://x/v1\"\n");
        assert!(matches!(config(&[&cfg]), Err(ConfigError::LlmModelMissing)));
        let e = config(&["--llm-base-url=ftp://x", "--llm-model=m"]);
        assert!(matches!(e, Err(ConfigError::LlmBaseUrl(_))));
        let e = config(&["--llm-base-url=https://x/v1", "--llm-model=m", "--llm-token-budget=0"]);
        assert!(matches!(e, Err(ConfigError::Zero("llm_token_budget"))));
    }

    #[test]
    fn tls_and_proxy_settings() {
        let c = config(&[]).unwrap();
        assert!(c.tls.is_none() && c.trusted_proxies.is_empty());
        let (_dir, cfg) = file(
            "tls_cert = \"/etc/pitbox/cert.pem\"\ntls_key = \"/etc/pitbox/key.pem\"\ntrusted_proxies = \"10.0.0.0/8, 127.0.0.1\"\n",
        );
        let c = config(&[&cfg]).unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.cert, PathBuf::from("/etc/pitbox/cert.pem"));
        assert_eq!(tls.watch, Some(Duration::from_secs(10)));
        assert!(c.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
        let c = config(&[&cfg, "--tls-watch-secs", "0"]).unwrap();
        assert_eq!(c.tls.unwrap().watch, None, "0: SIGHUP only");
        let e = config(&["--tls-cert", "c.pem"]).unwrap_err();
        assert!(matches!(e, ConfigError::TlsPair("PITBOX_TLS_CERT")), "{e}");
        let e = config(&["--trusted-proxies", "10.0.0.0/99"]).unwrap_err().to_string();
        assert!(e.contains("10.0.0.0/99"), "{e}");
    }

    #[test]
    fn cluster_mode_needs_nats_and_postgres() {
        assert!(config(&[]).unwrap().cluster.is_none(), "off by default");
        let e = config(&["--nats-url=nats://127.0.0.1:4222"]).unwrap_err();
        assert!(matches!(e, ConfigError::ClusterNeedsPostgres), "SQLite refused: {e}");
        assert!(e.to_string().contains("postgres://"), "{e}");
        let pg = "--database-url=postgres://pitbox@db/pitbox";
        let c = config(&[pg, "--nats-url=nats://nats:4222", "--server-id=rt"]).unwrap().cluster.unwrap();
        assert_eq!(c.lease_ttl, Duration::from_millis(5000));
        assert!(c.node_id.starts_with("rt-"), "{}", c.node_id);
        let c = config(&[pg, "--nats-url=nats:4222", "--node-id=a", "--lease-ttl-ms=10"]).unwrap().cluster;
        let c = c.unwrap();
        assert_eq!((c.node_id.as_str(), c.lease_ttl), ("a", Duration::from_millis(300)), "at least 300 ms");
        let e = config(&[pg, "--nats-url=http://nats:4222"]).unwrap_err();
        assert!(matches!(e, ConfigError::NatsUrl(_)), "{e}");
    }

    #[test]
    fn zero_and_blank_values() {
        let e = config(&["--restart-period-secs=0"]).unwrap_err();
        assert!(matches!(e, ConfigError::Zero("restart_period_secs")), "{e}");
        let e = config(&["--session-threads=0"]).unwrap_err();
        assert!(matches!(e, ConfigError::Zero("session_threads")), "{e}");
        let c = config(&["--espeak-voice= ", "--database-url="]).unwrap();
        assert_eq!(c.voice.espeak_voice, "en-gb", "blank: the default");
        assert!(c.database_url.ends_with("pitbox.db"));
        let e = config(&["--elevenlabs-base-url=api.elevenlabs.io"]).unwrap_err();
        assert!(matches!(e, ConfigError::ElevenLabsBaseUrl(_)), "{e}");
    }

    /// The README's table of settings repeats each env var's default for readers of the page: it
    /// must say what the declarations say.
    #[test]
    fn the_readme_table_matches_the_declarations() {
        let readme = include_str!("../../README.md");
        for arg in crate::cli::Cli::command().get_arguments() {
            let Some(env) = arg.get_env().map(|e| e.to_string_lossy().into_owned()) else { continue };
            if env == "PITBOX_CONFIG" {
                continue;
            }
            let name = format!("`{env}`");
            let row = readme
                .lines()
                .find(|l| l.starts_with("| `") && l.split('|').nth(1).is_some_and(|c| c.contains(&name)))
                .unwrap_or_else(|| panic!("{env} is not in the README's table"));
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let at = cells[1].split(" / ").position(|n| n == name).unwrap();
            if let [default] = arg.get_default_values() {
                let documented = cells[2].split(" / ").nth(at).unwrap_or(cells[2]);
                assert_eq!(documented.trim_matches('`'), default.to_string_lossy(), "{env}");
            }
        }
    }
}
