//! `pitbox-runtime demo`: run twice, it leaves one team, the same users and driver profiles and
//! the same passwords (kept in `<data dir>/demo-credentials.json`, owner-only); it puts a changed
//! demo password back, starts afresh when the file is gone, makes the first admin on an empty
//! database, and refuses production mode. On SQLite and (when configured) PostgreSQL; the last
//! test runs the real binary and reads its JSON.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestDb};
use pitbox_runtime::config::{Config, Mode};
use pitbox_runtime::db::Db;
use pitbox_runtime::demo::{self, Demo};
use pitbox_schema::wire::Role;

fn setup(db: &TestDb, data_dir: &std::path::Path) -> (Db, Config) {
    let mut config = Config::for_database(db.url.clone()).unwrap();
    config.data_dir = data_dir.to_owned();
    let d = Db::open(&config).unwrap();
    d.migrate().unwrap();
    (d, config)
}

fn logs_in(db: &Db, username: &str, password: &str) -> bool {
    let user = db
        .run_blocking(|c| Ok(pitbox_schema::db::store::users::find_user_by_name(c, username)?))
        .unwrap()
        .unwrap();
    pitbox_runtime::auth::verify_password(password, &user.password_hash)
}

fn check(db: &Db, d: &Demo) {
    let (teams, users, drivers) = db
        .run_blocking(|c| {
            let teams = pitbox_schema::db::store::teams::list_teams(c, None)?;
            let users = pitbox_schema::db::store::users::list_users(c)?
                .iter()
                .map(|u| pitbox_schema::db::store::users::user_info(c, u))
                .collect::<Result<Vec<_>, _>>()?;
            let drivers = pitbox_schema::db::store::drivers::list_drivers(c, &d.team.id)?;
            Ok((teams, users, drivers))
        })
        .unwrap();
    assert_eq!(teams.iter().filter(|t| t.name == demo::TEAM).count(), 1, "{teams:?}");
    assert_eq!(users.len(), 5, "admin, demo and three drivers: {users:?}");
    assert_eq!(drivers.len(), 3, "{drivers:?}");
    let engineer = users.iter().find(|u| u.username == "demo").unwrap();
    assert_eq!(engineer.role, Role::Engineer);
    assert_eq!(engineer.teams, vec![d.team.id.clone()]);
    assert!(logs_in(db, "demo", &d.engineer.password));
    assert_eq!(d.drivers.len(), 3);
    for (i, dd) in d.drivers.iter().enumerate() {
        assert_eq!(dd.username, format!("demo-driver-{}", i + 1));
        let u = users.iter().find(|u| u.username == dd.username).unwrap();
        assert_eq!(u.role, Role::Driver);
        assert_eq!(u.teams, vec![d.team.id.clone()]);
        assert_eq!(u.driver_id.as_deref(), Some(dd.driver_id.as_str()));
        let profile = drivers.iter().find(|p| p.id == dd.driver_id).unwrap();
        assert_eq!(profile.user_id.as_deref(), Some(u.id.as_str()));
        assert_eq!(profile.status, "active", "demo drivers are in their cars");
        assert!(logs_in(db, &dd.username, &dd.password));
    }
    let mut passwords: Vec<&str> = d.drivers.iter().map(|x| x.password.as_str()).collect();
    passwords.push(&d.engineer.password);
    passwords.sort();
    passwords.dedup();
    assert_eq!(passwords.len(), 4, "each user has a password of its own");
}

#[test]
fn demo_is_idempotent_and_keeps_its_passwords() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(tdb) = TestDb::new(backend) else {
            eprintln!("{backend:?} skipped: PITBOX_TEST_DATABASE_URL is not set");
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        let (db, config) = setup(&tdb, dir.path());

        let first = demo::ensure(&db, &config).unwrap();
        check(&db, &first);
        // A fresh database: the demo made the first admin, and knows its password.
        let admin_pw = first.admin.password.clone().expect("the admin's password");
        assert!(logs_in(&db, "admin", &admin_pw));
        let file = dir.path().join(demo::CREDENTIALS_FILE);
        assert_eq!(first.credentials_file, file);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }

        let second = demo::ensure(&db, &config).unwrap();
        check(&db, &second);
        assert_eq!(serde_json::to_value(&first).unwrap(), serde_json::to_value(&second).unwrap());

        // A demo password changed behind its back is set back to the file's.
        let uid = &second.drivers[0].user_id;
        db.run_blocking(|c| pitbox_runtime::routes::users::change_password(c, uid, "changed-by-hand"))
            .unwrap();
        let third = demo::ensure(&db, &config).unwrap();
        assert_eq!(third.drivers[0].password, first.drivers[0].password);
        assert!(logs_in(&db, "demo-driver-1", &first.drivers[0].password));
        // An admin who changed theirs is not reported with the old one (nor reset).
        let admin_id = db
            .run_blocking(|c| Ok(pitbox_schema::db::store::users::find_user_by_name(c, "admin")?))
            .unwrap()
            .unwrap()
            .id;
        db.run_blocking(|c| pitbox_runtime::routes::users::change_password(c, &admin_id, "admins-own-pw"))
            .unwrap();
        let fourth = demo::ensure(&db, &config).unwrap();
        assert_eq!(fourth.admin.password, None);
        assert!(logs_in(&db, "admin", "admins-own-pw"));

        // Without the file: new passwords, which work; still no duplicates.
        std::fs::remove_file(&file).unwrap();
        let fresh = demo::ensure(&db, &config).unwrap();
        check(&db, &fresh);
        assert_eq!(fresh.team.id, first.team.id);
        assert_ne!(fresh.engineer.password, first.engineer.password);
        assert_eq!(fresh.drivers[2].driver_id, first.drivers[2].driver_id);

        // Production mode: refused, nothing touched.
        let mut prod = config.clone();
        prod.mode = Mode::Production;
        let err = demo::ensure(&db, &prod).unwrap_err().to_string();
        assert!(err.contains("production"), "{err}");
    }
}

#[test]
fn a_demo_user_with_another_role_is_an_error_not_a_promotion() {
    let tdb = TestDb::new(Backend::Sqlite).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (db, config) = setup(&tdb, dir.path());
    let new = pitbox_schema::wire::NewUser {
        username: "demo".into(),
        password: "someone-elses".into(),
        role: Role::Team,
        teams: vec![],
    };
    db.run_blocking(|c| pitbox_runtime::routes::users::create_user(c, &new)).unwrap();
    let err = demo::ensure(&db, &config).unwrap_err().to_string();
    assert!(err.contains("role"), "{err}");
    assert!(logs_in(&db, "demo", "someone-elses"));
}

#[test]
fn the_command_prints_the_same_logins_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pitbox-runtime"))
            .arg("demo")
            .env("PITBOX_DATA_DIR", dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("PITBOX_CONFIG")
            .env_remove("PITBOX_MODE")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = run();
    let second = run();
    assert_eq!(first, second);
    assert_eq!(first["team"]["name"], "PitBox Demo");
    assert_eq!(first["engineer"]["username"], "demo");
    assert!(first["engineer"]["password"].as_str().unwrap().len() >= 16);
    assert_eq!(first["drivers"].as_array().unwrap().len(), 3);
    assert_eq!(first["drivers"][2]["username"], "demo-driver-3");
    assert!(first["admin"]["password"].is_string());
    assert!(dir.path().join("pitbox.db").is_file());

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pitbox-runtime"))
        .arg("demo")
        .env("PITBOX_DATA_DIR", dir.path())
        .env("PITBOX_MODE", "production")
        .env("PITBOX_JWT_SECRET", "pitbox-test-secret-0123456789abcdef")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("production"));
}
