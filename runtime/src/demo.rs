//! `pitbox-runtime demo`: a ready-made team to try PitBox with (what `tools/run.sh` sets up): the
//! team "PitBox Demo", an engineer `demo` and three drivers `demo-driver-1..3`, each with a driver
//! profile in the team. Passwords are generated on first creation and kept in
//! `<data dir>/demo-credentials.json` (mode 0600), so every later run reports the same ones, and a
//! demo user whose password no longer matches the file gets the file's password back. On a
//! database without users it also creates the first `admin` (as `serve` would) and keeps its
//! password there too. Refuses to run in production mode. Reads no env vars (data directory,
//! database and mode come from the config).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use diesel::OptionalExtension;
use pitbox_schema::db::store::{drivers, teams, users};
use pitbox_schema::wire::{DriverRole, DriverStatusKind, DriverUpdate, NewDriver, NewUser, Role};
use serde::{Deserialize, Serialize};

use crate::auth::{random_password, verify_password};
use crate::config::{Config, Mode};
use crate::db::Db;
use crate::error::{ApiError, ApiResult, Found};
use crate::routes::users::{change_password, create_user};

pub const TEAM: &str = "PitBox Demo";
pub const ENGINEER: &str = "demo";
/// (username, display name, car number, role in the crew).
pub const DRIVERS: [(&str, &str, i32, DriverRole); 3] = [
    ("demo-driver-1", "Demo Driver 1", 11, DriverRole::Primary),
    ("demo-driver-2", "Demo Driver 2", 22, DriverRole::Secondary),
    ("demo-driver-3", "Demo Driver 3", 33, DriverRole::Secondary),
];
pub const CREDENTIALS_FILE: &str = "demo-credentials.json";
const ADMIN: &str = "admin";

/// What `demo` prints (JSON on stdout, for scripts).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Demo {
    pub team: DemoTeam,
    pub engineer: Login,
    pub drivers: Vec<DemoDriver>,
    /// The admin's password when this file knows it (it created the admin, and the password still
    /// works); `null` otherwise: it was printed in the log of the first `serve`.
    pub admin: AdminLogin,
    pub credentials_file: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoTeam {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Login {
    pub user_id: String,
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoDriver {
    pub user_id: String,
    pub username: String,
    pub password: String,
    pub driver_id: String,
    pub number: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminLogin {
    pub username: String,
    pub password: Option<String>,
}

/// The credentials file: username → password.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    #[serde(default)]
    passwords: BTreeMap<String, String>,
}

/// Creates what is missing of the demo team and users, and returns their logins. Idempotent.
pub fn ensure(db: &Db, config: &Config) -> anyhow::Result<Demo> {
    allowed(config)?;
    std::fs::create_dir_all(&config.data_dir)?;
    let file = config.data_dir.join(CREDENTIALS_FILE);
    let mut stored = read(&file)?;
    let before = stored.passwords.clone();
    let names = std::iter::once(ENGINEER).chain(DRIVERS.iter().map(|d| d.0));
    for name in names {
        stored.passwords.entry(name.to_owned()).or_insert_with(random_password);
    }
    // A fresh database gets its first admin here, since `serve` only makes one when there are no
    // users at all, which would no longer be true after this.
    let admin_password = random_password();
    let admin_created = crate::cli::first_admin(db, config, &admin_password)?;
    if admin_created {
        stored.passwords.insert(ADMIN.to_owned(), admin_password);
    }
    // Saved before the users exist, so a password is never lost between the two.
    if stored.passwords != before {
        write(&file, &stored)?;
    }
    let password = |name: &str| stored.passwords.get(name).cloned().unwrap_or_default();

    let demo = db.run_blocking(|c| {
        let team = match teams::find_team(c, TEAM).optional()? {
            Some(t) => t,
            None => teams::create_team(c, TEAM)??,
        };
        let engineer = user(c, &team.id, ENGINEER, Role::Engineer, &password(ENGINEER))?;
        let mut drivers = vec![];
        for (username, name, number, role) in DRIVERS {
            let u = user(c, &team.id, username, Role::Driver, &password(username))?;
            let row = users::get_user(c, &u.user_id).found("user", &u.user_id)?;
            let info = users::user_info(c, &row)?;
            let driver_id = match info.driver_id {
                Some(id) => id,
                None => {
                    let d = NewDriver {
                        name: name.to_owned(),
                        number,
                        role,
                        avatar_url: None,
                        user_id: Some(u.user_id.clone()),
                    };
                    let id = drivers::create_driver(c, &team.id, &d)??.id;
                    // Every demo car streams: its driver is in the car (a real team sets this
                    // roster status itself; later runs leave it as the team set it).
                    let active =
                        DriverUpdate { status: Some(DriverStatusKind::Active), ..DriverUpdate::default() };
                    drivers::update_driver(c, &id, &active).found("driver", &id)?;
                    id
                }
            };
            let number = drivers::get_driver(c, &driver_id).found("driver", &driver_id)?.number;
            drivers.push(DemoDriver {
                user_id: u.user_id,
                username: u.username,
                password: u.password,
                driver_id,
                number,
            });
        }
        // Reported only while it still works: an admin who changed it has a password we don't know.
        let admin = stored
            .passwords
            .get(ADMIN)
            .filter(|pw| {
                users::find_user_by_name(c, ADMIN)
                    .ok()
                    .flatten()
                    .is_some_and(|u| verify_password(pw, &u.password_hash))
            })
            .cloned();
        Ok(Demo {
            team: DemoTeam { id: team.id, name: team.name },
            engineer,
            drivers,
            admin: AdminLogin { username: ADMIN.to_owned(), password: admin },
            credentials_file: file.clone(),
        })
    })?;
    Ok(demo)
}

/// The demo is for trying PitBox out: users with passwords in a file have no place in production.
pub fn allowed(config: &Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.mode != Mode::Production,
        "`demo` creates users with known passwords: it does not run in production mode"
    );
    Ok(())
}

/// The user `username` with `role`, in `team`, whose password is `password`: created, or put back.
fn user(
    c: &mut pitbox_schema::db::DbConnection,
    team: &str,
    username: &str,
    role: Role,
    password: &str,
) -> ApiResult<Login> {
    let id = match users::find_user_by_name(c, username)? {
        None => {
            let new = NewUser {
                username: username.to_owned(),
                password: password.to_owned(),
                role,
                teams: vec![team.to_owned()],
            };
            create_user(c, &new)?.id
        }
        Some(u) => {
            if u.role != role.as_str() {
                return Err(ApiError::conflict(format!(
                    "user {username:?} exists with role {}, but the demo needs it as {role}",
                    u.role
                )));
            }
            // The file is the truth for demo accounts: a changed password is set back (which
            // also ends that user's sessions).
            if !verify_password(password, &u.password_hash) {
                change_password(c, &u.id, password)?;
            }
            teams::add_member(c, team, &u.id)??;
            u.id
        }
    };
    Ok(Login { user_id: id, username: username.to_owned(), password: password.to_owned() })
}

fn read(path: &Path) -> anyhow::Result<Stored> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e} (delete it to start the demo afresh)", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Stored::default()),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// Writes the file readable by its owner only, replacing any old one in one step.
fn write(path: &Path, stored: &Stored) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(serde_json::to_string_pretty(stored)?.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
