//! `devices` against real components: an Xvfb X server (1280×720×24) for the screens and a PulseAudio
//! daemon with a null sink and a null source, reached through ALSA's pulse plugin, for the audio.
//!
//! One test function in its own binary, because it sets `DISPLAY` and `PULSE_SERVER` in this process
//! (the device libraries read them when they connect). Needs `Xvfb` (apt `xvfb`), `pulseaudio` and
//! the ALSA pulse plugin (apt `pulseaudio libasound2-plugins`). A missing part fails the test, naming
//! it, unless `PITBOX_SKIP_DEVICE_TESTS=1` outside CI (then that part is skipped with a note).
//!
//! Env: `PITBOX_SKIP_DEVICE_TESTS`, `CI`. Linux only (the Windows backends, DXGI and WASAPI, need a desktop).
#![cfg(target_os = "linux")]

mod common;

use common::{missing, start_pulse, start_xvfb};
use pitbox_driver::devices;
use pitbox_schema::wire::ValidationStatus;

/// Whether a missing tool was skipped rather than failed (`common::missing` allowed it).
fn skip_allowed() -> bool {
    std::env::var("PITBOX_SKIP_DEVICE_TESTS").is_ok_and(|v| v == "1")
        && !std::env::var("CI").is_ok_and(|v| v == "true")
}

#[test]
fn screens_and_audio_devices_on_xvfb_and_pulseaudio() {
    // --- PulseAudio with a null sink and a null source, seen through ALSA's pulse plugin. First:
    // ALSA reads its configuration (and whether pulse runs) once, at the first audio call.
    let runtime = tempfile::tempdir().unwrap();
    let pulse = match start_pulse(
        runtime.path(),
        &["module-null-sink sink_name=pitbox_null", "module-null-source source_name=pitbox_mic"],
    ) {
        Ok(pulse) => {
            std::env::set_var("PULSE_SERVER", format!("unix:{}", runtime.path().join("native").display()));
            let audio = devices::audio().unwrap();
            if audio.inputs.is_empty() || audio.outputs.is_empty() {
                missing(
                    "devices test: audio (ALSA pulse plugin)",
                    &format!(
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
            missing("devices test: audio (PulseAudio)", &why);
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
    let xvfb = match start_xvfb("1280x720x24", &[]) {
        Ok((xvfb, display)) => {
            std::env::set_var("DISPLAY", &display);
            let screens = devices::screens().unwrap();
            assert_eq!(screens, vec![devices::Screen { index: 0, width: 1280, height: 720 }], "on {display}");
            Some((xvfb, display))
        }
        Err(why) => {
            missing("devices test: screens (Xvfb)", &why);
            None
        }
    };

    // --- an X server without RandR (scrap 0.5 would segfault on it): an error naming RandR.
    if let Some((_, with_randr)) = &xvfb {
        let (_plain_x, display) = start_xvfb("1280x720x24", &["-extension", "RANDR"]).unwrap();
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
