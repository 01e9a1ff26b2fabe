//! The `pitbox-runtime` binary's settings as an operator meets them: each from its flag, env var,
//! TOML key or default (first wins, in that order), the env vars named in `--help`, and a TOML key
//! that names no setting refused before anything starts. Runs the binary with a clean environment
//! of its own (no PITBOX_* or DATABASE_URL from outside); `migrate` on SQLite shows which data
//! directory won, by where the database file appears.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `pitbox-runtime args` in `cwd` with only the given PITBOX_* variables.
fn runtime_in(cwd: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pitbox-runtime"));
    c.current_dir(cwd);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("PITBOX_") || k == "DATABASE_URL" {
            c.env_remove(k);
        }
    }
    c.args(args).envs(env.iter().copied()).output().unwrap()
}

fn runtime(args: &[&str], env: &[(&str, &Path)]) -> Output {
    runtime_in(&std::env::temp_dir(), args, env)
}

#[test]
fn data_dir_from_flag_env_file_or_default() {
    let dir = tempfile::tempdir().unwrap();
    let (from_file, from_env, from_flag) =
        (dir.path().join("file"), dir.path().join("env"), dir.path().join("flag"));
    let toml = dir.path().join("pitbox.toml");
    std::fs::write(
        &toml,
        format!("data_dir = {:?}\nlog_format = \"json\"\n", from_file.display().to_string()),
    )
    .unwrap();
    let db = |d: &Path| d.join("pitbox.db").is_file();

    let out = runtime_in(dir.path(), &["migrate"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(db(&dir.path().join("pitbox-data")), "the default, ./pitbox-data");

    let out = runtime(&["migrate"], &[("PITBOX_CONFIG", &toml)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(db(&from_file), "the file's data_dir, over the default");

    let out = runtime(&["migrate"], &[("PITBOX_CONFIG", &toml), ("PITBOX_DATA_DIR", &from_env)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(db(&from_env), "the env var, over the file");

    let flag = from_flag.to_str().unwrap();
    let out = runtime(
        &["migrate", "--data-dir", flag],
        &[("PITBOX_CONFIG", &toml), ("PITBOX_DATA_DIR", &from_env)],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(db(&from_flag), "the flag, over the env var");
}

#[test]
fn unknown_keys_and_bad_values_in_the_file_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("pitbox.toml");
    std::fs::write(&toml, "bindd = \"0.0.0.0:9000\"\n").unwrap();
    let out = runtime(&["migrate"], &[("PITBOX_CONFIG", &toml), ("PITBOX_DATA_DIR", dir.path())]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("bindd") && err.contains("pitbox.toml"), "{err}");
    assert!(!dir.path().join("pitbox.db").exists(), "nothing ran");

    std::fs::write(&toml, "rate_limit_per_ip = -1\n").unwrap();
    let out = runtime(&["migrate"], &[("PITBOX_CONFIG", &toml), ("PITBOX_DATA_DIR", dir.path())]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("rate_limit_per_ip"), "{err}");
}

#[test]
fn help_names_the_env_vars_and_defaults() {
    let out = runtime(&["--help"], &[]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for shown in
        ["[env: PITBOX_JWT_SECRET", "[env: PITBOX_RATE_LIMIT_PER_IP=", "[default: 200]", "[env: DATABASE_URL"]
    {
        assert!(help.contains(shown), "{shown} not in:\n{help}");
    }
}
