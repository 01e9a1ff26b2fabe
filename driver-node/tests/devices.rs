//! `devices` against real components: an Xvfb X server (1280×720×24) for the screens and a PulseAudio
//! daemon with a null sink and a null source, reached through ALSA's pulse plugin, for the audio.
//!
//! One test function in its own binary, because it sets `DISPLAY` and `PULSE_SERVER` in this process
//! (the device libraries read them when they connect). Needs `Xvfb` (apt `xvfb`), `pulseaudio` and
//! the ALSA pulse plugin (apt `pulseaudio libasound2-plugins`). A missing part fails the test, naming
//! it, unless `PITBOX_SKIP_DEVICE_TESTS=1` (then that part is skipped with a note on stderr).
//!
//! Env: `PITBOX_SKIP_DEVICE_TESTS`. Linux only (the Windows backends, DXGI and WASAPI, need a desktop).
#![cfg(target_os = "linux")]

// Until lib.rs declares `pub mod devices;`, the module is compiled into this test directly (then:
// `use driver_node::devices;`). As a private module here, its Windows-only error variant is unused.
use driver_node::devices;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use schema::wire::ValidationStatus;

/// A child process killed (and reaped) when dropped, so a failed assertion cleans up too.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn skip_allowed() -> bool {
    std::env::var("PITBOX_SKIP_DEVICE_TESTS").is_ok_and(|v| v == "1")
}

/// Fails the test, or with `PITBOX_SKIP_DEVICE_TESTS=1` only reports that `part` is skipped.
fn missing(part: &str, why: String) {
    if skip_allowed() {
        eprintln!("devices test: skipping {part}: {why}");
    } else {
        panic!("devices test: {part} cannot run: {why} (set PITBOX_SKIP_DEVICE_TESTS=1 to skip it)");
    }
}

/// Starts Xvfb on a display number it picks itself (`-displayfd`), returning the process and `:N`.
fn start_xvfb(extra: &[&str]) -> Result<(Killed, String), String> {
    let child = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", "1280x720x24", "-nolisten", "tcp", "-noreset"])
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

/// Starts a private PulseAudio daemon (no default script: only the native socket, a null sink and
/// a null source) with its runtime directory in `dir`, returning it once its socket answers.
fn start_pulse(dir: &Path) -> Result<Killed, String> {
    let log = std::fs::File::create(dir.join("pulse.log")).map_err(|e| e.to_string())?;
    let child = Command::new("pulseaudio")
        .args([
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "--system=false",
            "--log-target=stderr",
            "-L",
            "module-native-protocol-unix auth-anonymous=1",
            "-L",
            "module-null-sink sink_name=pitbox_null",
            "-L",
            "module-null-source source_name=pitbox_mic",
        ])
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

#[test]
fn screens_and_audio_devices_on_xvfb_and_pulseaudio() {
    // --- PulseAudio with a null sink and a null source, seen through ALSA's pulse plugin. First:
    // ALSA reads its configuration (and whether pulse runs) once, at the first audio call.
    let runtime = tempfile::tempdir().unwrap();
    let pulse = match start_pulse(runtime.path()) {
        Ok(pulse) => {
            std::env::set_var("PULSE_SERVER", format!("unix:{}", runtime.path().join("native").display()));
            let audio = devices::audio().unwrap();
            if audio.inputs.is_empty() || audio.outputs.is_empty() {
                missing(
                    "audio (ALSA pulse plugin)",
                    format!(
                        "pulseaudio runs but {} lists {} input(s) and {} output(s); install `libasound2-plugins`",
                        audio.host,
                        audio.inputs.len(),
                        audio.outputs.len()
                    ),
                );
            } else {
                assert_eq!(audio.host, "ALSA");
                let default_in = audio.inputs.iter().find(|d| d.is_default).expect("a default input");
                let default_out = audio.outputs.iter().find(|d| d.is_default).expect("a default output");
                for d in [default_in, default_out] {
                    let config = d.default_config.as_ref().unwrap_or_else(|| panic!("{d:?}"));
                    assert!(config.sample_rate >= 8000 && config.channels >= 1, "{d:?}");
                }
            }
            Some(pulse)
        }
        Err(why) => {
            missing("audio (PulseAudio)", why);
            None
        }
    };

    // --- no display: a clear error and a doctor warning, never a panic.
    std::env::remove_var("DISPLAY");
    std::env::remove_var("WAYLAND_DISPLAY");
    match devices::screens() {
        Err(devices::DeviceError::NoDisplay(why)) => assert!(why.contains("DISPLAY"), "{why}"),
        other => panic!("without DISPLAY: {other:?}"),
    }
    let capture = devices::doctor_checks().into_iter().find(|r| r.component_name == "capture").unwrap();
    assert_eq!(capture.status, ValidationStatus::Warning, "{capture:?}");
    // A display that does not exist: an error, not a panic.
    std::env::set_var("DISPLAY", ":4093");
    assert!(matches!(devices::screens(), Err(devices::DeviceError::Screens(_))));

    // --- Xvfb: exactly its one 1280×720 screen.
    let xvfb = match start_xvfb(&[]) {
        Ok((xvfb, display)) => {
            std::env::set_var("DISPLAY", &display);
            let screens = devices::screens().unwrap();
            assert_eq!(screens, vec![devices::Screen { index: 0, width: 1280, height: 720 }], "on {display}");
            Some((xvfb, display))
        }
        Err(why) => {
            missing("screens (Xvfb)", why);
            None
        }
    };

    // --- an X server without RandR (scrap 0.5 would segfault on it): an error naming RandR.
    if let Some((_, with_randr)) = &xvfb {
        let (_plain_x, display) = start_xvfb(&["-extension", "RANDR"]).unwrap();
        std::env::set_var("DISPLAY", &display);
        match devices::screens() {
            Err(devices::DeviceError::Screens(why)) => assert!(why.contains("RandR"), "{why}"),
            other => panic!("an X server without RandR: {other:?}"),
        }
        std::env::set_var("DISPLAY", with_randr);
    }

    // --- the report and the doctor rows over whatever ran.
    let report = devices::report();
    let table = report.render();
    let json = serde_json::to_value(&report).unwrap();
    if xvfb.is_some() {
        assert!(table.contains("screen") && table.contains("1280×720"), "{table}");
        assert_eq!(json["screens"][0]["width"], 1280, "{json}");
    }
    if pulse.is_some() && !skip_allowed() {
        assert!(table.contains("microphone") && table.contains("speaker"), "{table}");
        assert!(report.errors.is_empty(), "{table}");
    }
    let rows = devices::doctor_checks();
    let status = |name: &str| rows.iter().find(|r| r.component_name == name).map(|r| r.status);
    if xvfb.is_some() {
        assert_eq!(status("capture"), Some(ValidationStatus::Success), "{rows:?}");
        let details = rows[0].details.as_ref().unwrap();
        assert_eq!(details["screens"][0]["height"], 720, "{details}");
    }
    if pulse.is_some() && !skip_allowed() {
        assert_eq!(status("audio"), Some(ValidationStatus::Success), "{rows:?}");
    }
    println!("{table}");

    drop(pulse);
    drop(xvfb);
}
