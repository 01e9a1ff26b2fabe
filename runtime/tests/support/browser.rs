//! What the browser test and the dashboard benchmark share: real driver-node processes
//! (`pitbox-driver login` + `run`), the prerequisites of a headless-Chromium run (built dashboard,
//! puppeteer-core), and running a puppeteer script with a JSON config, reading its JSON result.
//! Env: `PITBOX_SKIP_BROWSER=1` (skip), `WASM_TC_PREFIX` (where puppeteer-core lives),
//! `CARGO_TARGET_DIR`, `CHROMIUM` (default /usr/bin/chromium).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

fn driver_bin() -> PathBuf {
    let bin = target_dir().join("debug").join("pitbox-driver");
    assert!(bin.is_file(), "{} missing: run `cargo build -p pitbox-driver` first", bin.display());
    bin
}

pub fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// A driver node process, killed when dropped.
pub struct Node {
    child: Child,
    _home: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Logs the node in as `username` (password `<username>-password`) and starts streaming from
/// `source` (`--no-video` unless `extra` has a `--video-source`). The login is a blocking HTTP call
/// to our own server, so it runs off the actix thread.
pub async fn node(base: &str, username: &str, source: &str, extra: &[&str]) -> Node {
    let home = tempfile::tempdir().unwrap();
    let (base, username, source, dir) =
        (base.to_owned(), username.to_owned(), source.to_owned(), home.path().to_path_buf());
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let child = actix_rt::task::spawn_blocking(move || {
        let login = Command::new(driver_bin())
            .args(["login", "--server", &base, "--username", &username])
            .env("PITBOX_DRIVER_HOME", &dir)
            .env("PITBOX_PASSWORD", format!("{username}-password"))
            .output()
            .unwrap();
        assert!(login.status.success(), "login: {}", String::from_utf8_lossy(&login.stderr));
        // Video only where asked for (a `--video-source`): other nodes must not grab a screen.
        let video = extra.iter().any(|a| a == "--video-source");
        Command::new(driver_bin())
            .args(["run", "--source", &source, "--api", "off", "--no-voice"])
            .args((!video).then_some("--no-video"))
            .args(&extra)
            .env("PITBOX_DRIVER_HOME", &dir)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    })
    .await
    .unwrap();
    Node { child, _home: home }
}

fn node_modules() -> PathBuf {
    let prefix = std::env::var("WASM_TC_PREFIX").unwrap_or_else(|_| "/opt/pitbox-wasm-toolchain".into());
    PathBuf::from(prefix).join("node/node_modules")
}

/// The built dashboard's directory, or `None` when `PITBOX_SKIP_BROWSER=1`. Panics with the
/// command to run when something is missing: a skipped browser test must be asked for.
pub fn dashboard_or_skip() -> Option<PathBuf> {
    if std::env::var("PITBOX_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("PITBOX_SKIP_BROWSER=1: browser run skipped");
        return None;
    }
    let dist = root().join("dashboard-yew/dist");
    assert!(
        dist.join("index.html").is_file(),
        "the dashboard is not built: run `bash tools/build-dashboard.sh` (or set PITBOX_SKIP_BROWSER=1)"
    );
    assert!(
        node_modules().join("puppeteer-core").is_dir(),
        "puppeteer-core missing under {}: run `bash tools/wasm-toolchain.sh`",
        node_modules().display()
    );
    Some(dist)
}

/// Runs `dashboard-yew/e2e/<script>` with `config` (as a JSON file); returns its exit success and
/// its last JSON line. Runs off the actix thread: the runtime's actors share it.
pub async fn run_script(script: &str, config: serde_json::Value) -> (bool, serde_json::Value) {
    let cfg_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg_file.path(), config.to_string()).unwrap();
    let script = root().join("dashboard-yew/e2e").join(script);
    let cfg_path = cfg_file.path().to_path_buf();
    let out = actix_rt::task::spawn_blocking(move || {
        Command::new("node").arg(script).arg(cfg_path).env("NODE_PATH", node_modules()).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_default();
    let result = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("no result from the browser script ({e}); stdout: {stdout}"));
    (out.status.success(), result)
}
