//! What the driver node's device tests share: child processes killed when dropped, the skip
//! policy for missing tools, and a private Xvfb screen and PulseAudio server started per test.
//! Env: `PITBOX_SKIP_DEVICE_TESTS` (`1`: a missing tool skips the test with a note instead of
//! failing it, outside CI), `CI` (`true`: never skip).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed (and reaped) when dropped, so a failed assertion cleans up too.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `test` cannot run because of `why`: fails, unless `PITBOX_SKIP_DEVICE_TESTS=1` outside CI, where
/// it notes the skip. Returns `false` (run nothing) when it does not fail.
pub fn missing(test: &str, why: &str) -> bool {
    let skip = std::env::var("PITBOX_SKIP_DEVICE_TESTS").is_ok_and(|v| v == "1")
        && !std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(skip, "{test} cannot run: {why} (PITBOX_SKIP_DEVICE_TESTS=1 skips it outside CI)");
    eprintln!("{test}: skipped: {why}");
    false
}

/// Starts Xvfb with one `size` screen (e.g. `1280x720x24`) on a display number it picks itself
/// (`-displayfd`), returning the process and `:N` once it accepts connections.
pub fn start_xvfb(size: &str, extra: &[&str]) -> Result<(Killed, String), String> {
    let child = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", size, "-nolisten", "tcp", "-noreset"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start Xvfb ({e}); install the `xvfb` package"))?;
    let mut xvfb = Killed(child);
    let stdout = xvfb.0.stdout.take().ok_or("no stdout from Xvfb")?;
    // Xvfb writes the display number once it accepts connections; EOF means it died.
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    let number = line.trim();
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        let mut err = String::new();
        if let Some(mut e) = xvfb.0.stderr.take() {
            let _ = xvfb.0.kill();
            let _ = e.read_to_string(&mut err);
        }
        return Err(format!("Xvfb did not start: {}", err.trim()));
    }
    Ok((xvfb, format!(":{number}")))
}

/// Starts a private PulseAudio daemon (no default script: the native socket and `modules`, e.g.
/// `module-null-sink sink_name=pitbox_null`) with its runtime directory in `dir`, returning it
/// once its socket (`dir/native`) answers.
pub fn start_pulse(dir: &Path, modules: &[&str]) -> Result<Killed, String> {
    let log = std::fs::File::create(dir.join("pulse.log")).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("pulseaudio");
    cmd.args(["-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--system=false"]).args([
        "--log-target=stderr",
        "-L",
        "module-native-protocol-unix auth-anonymous=1",
    ]);
    for m in modules {
        cmd.args(["-L", m]);
    }
    let child = cmd
        .env("PULSE_RUNTIME_PATH", dir)
        .env("PULSE_STATE_PATH", dir)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir)
        .env_remove("PULSE_SERVER")
        .env_remove("DISPLAY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start pulseaudio ({e}); install the `pulseaudio` package"))?;
    let mut pulse = Killed(child);
    let socket = dir.join("native");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            return Ok(pulse);
        }
        let exited = pulse.0.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("pulse.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(8).collect();
            return Err(format!(
                "pulseaudio did not open {} ({exited:?}): {}",
                socket.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
