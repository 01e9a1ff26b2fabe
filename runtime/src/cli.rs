//! The `pitbox-runtime` command line (clap): `serve`, `migrate`, `user add|list|passwd`,
//! `team add|list`, `demo`. Settings are global options backed by env vars and the TOML file
//! (see [`crate::config`]).
//! Reads `PITBOX_PASSWORD` (password for `user add|passwd` when not prompted or piped).

use std::io::{BufRead, IsTerminal};

use clap::{CommandFactory, Parser, Subcommand};
use pitbox_schema::db::store::{drivers, teams, users};
use pitbox_schema::wire::{NewDriver, NewUser, Role};

use crate::config::{Config, ConfigError, LogFormat, Mode, Settings};
use crate::db::Db;
use crate::error::Found;
use crate::routes::users::{change_password, create_user};
use crate::server::{self, State};

#[derive(Debug, Parser)]
#[command(name = "pitbox-runtime", version, about = "The PitBox cloud runtime")]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses `args` (program name first): options, env vars, the TOML file, defaults.
    pub fn load(args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>) -> Result<Cli, ConfigError> {
        crate::config::parse(Cli::command(), args)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrates the database first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage teams.
    #[command(subcommand)]
    Team(TeamCommand),
    /// Create (once) the demo team "PitBox Demo": engineer `demo` and drivers `demo-driver-1..3`,
    /// with passwords kept in `<data-dir>/demo-credentials.json`. Prints the logins as JSON. Not in
    /// production mode.
    Demo,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user. The password is read from PITBOX_PASSWORD, standard input, or a prompt.
    Add {
        username: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Team (name or id) to join; repeatable.
        #[arg(long = "team")]
        teams: Vec<String>,
        /// For drivers: also create their driver profile in the (single) team with this car number.
        #[arg(long)]
        driver_number: Option<i32>,
    },
    /// List users.
    List,
    /// Set a user's password (and end their sessions).
    Passwd { username: String },
}

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Add a team.
    Add { name: String },
    /// List teams.
    List,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse().map_err(|e: pitbox_schema::wire::UnknownVariant| e.to_string())
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

fn read_password(prompt: &str) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("PITBOX_PASSWORD") {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password(prompt)?;
        let again = rpassword::prompt_password("again: ")?;
        anyhow::ensure!(p == again, "the passwords differ");
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_settings(cli.settings)?;
    init_logging(config.log_format);
    match cli.command {
        Command::Serve => serve(config),
        Command::Migrate => {
            let db = Db::open(&config)?;
            let applied = db.migrate()?;
            println!("{} migration(s) applied on {:?}", applied.len(), db.backend());
            Ok(())
        }
        Command::User(cmd) => user(config, cmd),
        Command::Team(cmd) => team(config, cmd),
        Command::Demo => {
            crate::demo::allowed(&config)?;
            let db = open(&config)?;
            let demo = crate::demo::ensure(&db, &config)?;
            println!("{}", serde_json::to_string_pretty(&demo)?);
            eprintln!(
                "demo team {:?}: log in as {} (engineer) or demo-driver-1..3; passwords in {}",
                demo.team.name,
                demo.engineer.username,
                demo.credentials_file.display()
            );
            Ok(())
        }
    }
}

fn open(config: &Config) -> anyhow::Result<Db> {
    let db = Db::open(config)?;
    db.migrate()?;
    Ok(db)
}

fn user(config: Config, cmd: UserCommand) -> anyhow::Result<()> {
    let db = open(&config)?;
    match cmd {
        UserCommand::Add { username, role, teams, driver_number } => {
            let password = read_password("password: ")?;
            let new = NewUser { username: username.clone(), password, role, teams: teams.clone() };
            let info = db.run_blocking(|c| {
                let info = create_user(c, &new)?;
                if let (Some(number), [team]) = (driver_number, info.teams.as_slice()) {
                    let d = NewDriver {
                        name: username.clone(),
                        number,
                        role: pitbox_schema::wire::DriverRole::Primary,
                        avatar_url: None,
                        user_id: Some(info.id.clone()),
                    };
                    drivers::create_driver(c, team, &d)??;
                }
                let user = users::get_user(c, &info.id).found("user", &info.id)?;
                Ok(users::user_info(c, &user)?)
            })?;
            println!(
                "{}\t{}\t{}\tteams={}\tdriver={}",
                info.id,
                info.username,
                info.role,
                info.teams.join(","),
                info.driver_id.unwrap_or_default()
            );
        }
        UserCommand::List => {
            let users = db.run_blocking(|c| {
                Ok(users::list_users(c)?
                    .iter()
                    .map(|u| users::user_info(c, u))
                    .collect::<Result<Vec<_>, _>>()?)
            })?;
            for u in users {
                println!("{}\t{}\t{}\tteams={}", u.id, u.username, u.role, u.teams.join(","));
            }
        }
        UserCommand::Passwd { username } => {
            let password = read_password("new password: ")?;
            db.run_blocking(|c| {
                let u = users::find_user_by_name(c, &username)?
                    .ok_or_else(|| crate::error::ApiError::not_found("user", &username))?;
                change_password(c, &u.id, &password)
            })?;
            println!("password changed for {username}");
        }
    }
    Ok(())
}

fn team(config: Config, cmd: TeamCommand) -> anyhow::Result<()> {
    let db = open(&config)?;
    match cmd {
        TeamCommand::Add { name } => {
            let t = db.run_blocking(|c| {
                Ok(teams::create_team(c, crate::routes::text("name", &name, 100)?.as_str())??)
            })?;
            println!("{}\t{}", t.id, t.name);
        }
        TeamCommand::List => {
            for t in db.run_blocking(|c| Ok(teams::list_teams(c, None)?))? {
                println!("{}\t{}", t.id, t.name);
            }
        }
    }
    Ok(())
}

/// In dev mode, a database without users gets an `admin` with `password`, so a first run needs no
/// setup. Returns whether it was created.
pub(crate) fn first_admin(db: &Db, config: &Config, password: &str) -> anyhow::Result<bool> {
    if config.mode != Mode::Dev {
        return Ok(false);
    }
    let created = db.run_blocking(|c| {
        if !users::list_users(c)?.is_empty() {
            return Ok(false);
        }
        create_user(
            c,
            &NewUser {
                username: "admin".into(),
                password: password.to_owned(),
                role: Role::Admin,
                teams: vec![],
            },
        )?;
        Ok(true)
    })?;
    Ok(created)
}

/// Where [`bootstrap_admin`] leaves the first admin's password: a file in the data directory.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

/// [`first_admin`] at start-up. The password goes into `<data dir>/admin-password`, created
/// owner-only (0600), never into the log (logs are shipped, kept and read by others); the log
/// says only where the file is.
fn bootstrap_admin(db: &Db, config: &Config) -> anyhow::Result<()> {
    let password = crate::auth::random_password();
    if first_admin(db, config, &password)? {
        let path = config.data_dir.join(ADMIN_PASSWORD_FILE);
        write_owner_only(&path, &format!("{password}\n"))?;
        tracing::warn!(
            username = "admin",
            file = %path.display(),
            "created the first admin user (dev mode); its password is in the file (owner-only); \
             change it with `pitbox-runtime user passwd admin`"
        );
    }
    Ok(())
}

/// Writes `text` to a new or truncated file readable by its owner only.
fn write_owner_only(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // An existing file keeps its mode on open: make sure it is owner-only.
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

fn serve(config: Config) -> anyhow::Result<()> {
    let bind = config.bind;
    tracing::info!(?config, "starting pitbox-runtime");
    actix_web::rt::System::new().block_on(async move {
        let mut state = State::new(config)?;
        state.join_cluster().await?;
        bootstrap_admin(&state.db, &state.config)?;
        // A certificate that does not load stops the start-up with the reason.
        let tls = match &state.config.tls {
            Some(files) => Some(crate::tls::CertResolver::new(files.clone())?),
            None => None,
        };
        let listener = std::net::TcpListener::bind(bind)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(addr = %listener.local_addr()?, scheme, "listening");
        server::start_with(state, listener, tls)?.await?;
        Ok(())
    })
}
