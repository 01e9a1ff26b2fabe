//! The capture and audio devices of this PC, for `pitbox-driver devices` and `doctor`: the screens
//! the capture can grab ([`screens`], through `scrap`: X11/xcb with RandR on Linux, Quartz on macOS;
//! DXGI on Windows once scrap is in Windows builds, see `Cargo.toml`),
//! the microphones and speakers of the default audio host ([`audio`], through `cpal`: WASAPI on
//! Windows, ALSA on Linux), a [`report`] of both that never fails (printable as a table or as JSON),
//! the game controllers and their buttons (gilrs, for push-to-talk), and the `capture`/`audio`
//! rows of the doctor ([`doctor_checks`]).
//!
//! Every probe runs on its own thread with a time limit: a driver that hangs or a backend that
//! panics becomes a [`DeviceError`], never a stuck or crashed command. On X11 the X server is checked
//! for RandR 1.5 first (with x11rb, safe Rust): scrap 0.5 would crash the process without it.
//!
//! Env: `DISPLAY` (Linux and other X11 systems: the X server whose screens are listed; without it
//! [`screens`] fails with [`DeviceError::NoDisplay`]) and `WAYLAND_DISPLAY` (only to word that
//! error); the X connection reads `XAUTHORITY`. The audio libraries read their own (`PULSE_SERVER`,
//! `PULSE_RUNTIME_PATH`, `ALSA_CONFIG_PATH` on Linux).

use std::fmt;
use std::sync::mpsc;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait};
use pitbox_schema::wire::{ValidationResult, ValidationStatus};
use serde::Serialize;
use serde_json::json;

/// How long one probe (screens, or audio) may take before it is given up.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why devices could not be listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// No display to capture: `DISPLAY` unset (a headless PC, a service, or Wayland without XWayland).
    #[error("no X display to capture: {0}")]
    NoDisplay(String),
    /// The display server is there but could not be asked for its screens.
    #[error("cannot list screens: {0}")]
    Screens(String),
    /// The audio host could not list its devices.
    #[error("cannot list audio devices: {0}")]
    Audio(String),
    /// A probe took longer than its time limit (a hung driver or display server).
    #[error("{what} did not answer within {secs} s")]
    TimedOut { what: &'static str, secs: u64 },
    /// A probe panicked inside the device library.
    #[error("{0} failed inside the device library (it panicked)")]
    Panicked(&'static str),
    /// This build cannot list these devices on this OS.
    #[error("{0}")]
    Unsupported(&'static str),
}

/// One screen the capture can grab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Screen {
    /// Position in the capture library's list (the index a capture setting refers to).
    pub index: usize,
    pub width: u32,
    pub height: u32,
}

impl fmt::Display for Screen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}×{}", self.width, self.height)
    }
}

/// A device's default stream format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioConfig {
    pub sample_rate: u32,
    pub channels: u16,
    /// `i16`, `f32`, …
    pub sample_format: String,
}

impl fmt::Display for AudioConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Hz, {} ch, {}", self.sample_rate, self.channels, self.sample_format)
    }
}

/// A microphone (input) or speaker (output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioDevice {
    pub name: String,
    /// The host's default device of this direction.
    pub is_default: bool,
    /// `None` when the device would not say (then `config_error` says why).
    pub default_config: Option<AudioConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
}

/// The audio devices of the default host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioDevices {
    /// `WASAPI`, `ALSA`, `CoreAudio`, …
    pub host: String,
    /// Microphones.
    pub inputs: Vec<AudioDevice>,
    /// Speakers and headphones.
    pub outputs: Vec<AudioDevice>,
}

/// A part of the report that could not be listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportError {
    /// `screens` or `audio`.
    pub section: &'static str,
    pub message: String,
}

/// Everything [`report`] found; failures are entries in `errors`, next to what did work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceReport {
    pub screens: Vec<Screen>,
    /// `None` when the audio host could not be asked.
    pub audio_host: Option<String>,
    pub microphones: Vec<AudioDevice>,
    pub speakers: Vec<AudioDevice>,
    /// Wheels, button boxes and gamepads (gilrs), for `--ptt-button gamepad:ID:BUTTON`.
    pub controllers: Vec<crate::voice::ptt::Controller>,
    pub errors: Vec<ReportError>,
}

/// Runs `probe` on its own thread; a panic or a hang past [`PROBE_TIMEOUT`] becomes an error
/// (a hung thread is left behind: the command goes on without it).
fn guarded<T: Send + 'static>(
    what: &'static str,
    probe: impl FnOnce() -> Result<T, DeviceError> + Send + 'static,
) -> Result<T, DeviceError> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new().name(format!("pitbox-{what}")).spawn(move || {
        let _ = tx.send(probe());
    });
    if let Err(e) = spawned {
        return Err(if what == "audio" {
            DeviceError::Audio(e.to_string())
        } else {
            DeviceError::Screens(e.to_string())
        });
    }
    match rx.recv_timeout(PROBE_TIMEOUT) {
        Ok(found) => found,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(DeviceError::TimedOut { what, secs: PROBE_TIMEOUT.as_secs() })
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(DeviceError::Panicked(what)),
    }
}

/// The screens the capture can grab, in the capture library's order.
///
/// On X11 systems `DISPLAY` must name a reachable X server with RandR 1.5 (Xorg, XWayland, Xvfb):
/// without `DISPLAY` this is [`DeviceError::NoDisplay`] (scrap itself would only say "connection
/// refused"), and a server without RandR 1.5 is refused before scrap sees it (scrap 0.5 would crash
/// the process on it).
pub fn screens() -> Result<Vec<Screen>, DeviceError> {
    let display = x11_display()?;
    guarded("screens", move || {
        if let Some(d) = &display {
            x11_check(d)?;
        }
        let found = scrap_screens().map_err(|e| match (e, &display) {
            (DeviceError::Screens(e), Some(d)) => DeviceError::Screens(format!("X display {d:?}: {e}")),
            (e, _) => e,
        })?;
        Ok(found
            .into_iter()
            .enumerate()
            .map(|(index, (width, height))| Screen {
                index,
                width: u32::try_from(width).unwrap_or(u32::MAX),
                height: u32::try_from(height).unwrap_or(u32::MAX),
            })
            .collect())
    })
}

/// Width and height of each screen scrap can capture.
#[cfg(not(windows))]
fn scrap_screens() -> Result<Vec<(usize, usize)>, DeviceError> {
    let all = scrap::Display::all().map_err(|e| DeviceError::Screens(e.to_string()))?;
    Ok(all.iter().map(|d| (d.width(), d.height())).collect())
}

/// scrap is not in Windows builds (see driver-node/Cargo.toml: its build script chooses the
/// host's backend, which breaks the Windows build made from Linux): the monitors come from the
/// node's own Windows capture (`EnumDisplayMonitors`).
#[cfg(windows)]
fn scrap_screens() -> Result<Vec<(usize, usize)>, DeviceError> {
    Ok(crate::platform::windows::capture::monitors()
        .into_iter()
        .map(|(_, _, w, h)| (usize::try_from(w).unwrap_or(0), usize::try_from(h).unwrap_or(0)))
        .collect())
}

/// On X11 systems (where scrap uses xcb), the `DISPLAY` scrap will connect to; an error when there
/// is none.
#[cfg(all(unix, not(target_os = "macos")))]
fn x11_display() -> Result<Option<String>, DeviceError> {
    match std::env::var("DISPLAY") {
        Ok(d) if !d.trim().is_empty() => Ok(Some(d)),
        _ => Err(DeviceError::NoDisplay(if std::env::var_os("WAYLAND_DISPLAY").is_some() {
            "DISPLAY is not set (a Wayland session without XWayland); capture needs X11".to_owned()
        } else {
            "DISPLAY is not set (headless or a service); run from the desktop session".to_owned()
        })),
    }
}

/// Windows (DXGI) and macOS (Quartz) need no display variable.
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn x11_display() -> Result<Option<String>, DeviceError> {
    Ok(None)
}

/// Connects to `display` and checks for RandR 1.5, which scrap's screen list needs: scrap 0.5 reads
/// the monitors reply without checking it, and crashes on a server without RandR 1.5.
#[cfg(all(unix, not(target_os = "macos")))]
fn x11_check(display: &str) -> Result<(), DeviceError> {
    use x11rb::connection::RequestConnection;
    use x11rb::protocol::randr::{self, ConnectionExt as _};
    let err = |e: &dyn fmt::Display| DeviceError::Screens(format!("X display {display:?}: {e}"));
    let (conn, _) = x11rb::rust_connection::RustConnection::connect(Some(display))
        .map_err(|e| DeviceError::Screens(format!("cannot connect to X display {display:?}: {e}")))?;
    if conn.extension_information(randr::X11_EXTENSION_NAME).map_err(|e| err(&e))?.is_none() {
        return Err(err(&"the X server has no RandR extension, which screen capture needs"));
    }
    let version = conn.randr_query_version(1, 5).map_err(|e| err(&e))?.reply().map_err(|e| err(&e))?;
    if (version.major_version, version.minor_version) < (1, 5) {
        return Err(err(&format!(
            "the X server has RandR {}.{}, screen capture needs 1.5",
            version.major_version, version.minor_version
        )));
    }
    Ok(())
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn x11_check(_display: &str) -> Result<(), DeviceError> {
    Ok(())
}

fn describe<D: DeviceTrait>(device: &D, default: Option<&str>, input: bool) -> AudioDevice {
    let name = device.name().unwrap_or_else(|e| format!("(unnamed: {e})"));
    let config = if input { device.default_input_config() } else { device.default_output_config() };
    let (default_config, config_error) = match config {
        Ok(c) => (
            Some(AudioConfig {
                sample_rate: c.sample_rate().0,
                channels: c.channels(),
                sample_format: c.sample_format().to_string(),
            }),
            None,
        ),
        Err(e) => (None, Some(e.to_string())),
    };
    AudioDevice { is_default: default == Some(name.as_str()), name, default_config, config_error }
}

/// The microphones and speakers of the default audio host, with the host's default of each
/// direction flagged. Finding none is not an error (an empty list); a host that cannot enumerate is.
pub fn audio() -> Result<AudioDevices, DeviceError> {
    guarded("audio", || {
        let host = cpal::default_host();
        let default_in = host.default_input_device().and_then(|d| d.name().ok());
        let default_out = host.default_output_device().and_then(|d| d.name().ok());
        let inputs = host
            .input_devices()
            .map_err(|e| DeviceError::Audio(e.to_string()))?
            .map(|d| describe(&d, default_in.as_deref(), true))
            .collect();
        let outputs = host
            .output_devices()
            .map_err(|e| DeviceError::Audio(e.to_string()))?
            .map(|d| describe(&d, default_out.as_deref(), false))
            .collect();
        Ok(AudioDevices { host: host.id().name().to_owned(), inputs, outputs })
    })
}

/// Screens and audio devices; never fails (what could not be listed is in `errors`).
pub fn report() -> DeviceReport {
    let mut errors = vec![];
    let screens = screens().unwrap_or_else(|e| {
        errors.push(ReportError { section: "screens", message: e.to_string() });
        vec![]
    });
    let (audio_host, microphones, speakers) = match audio() {
        Ok(a) => (Some(a.host), a.inputs, a.outputs),
        Err(e) => {
            errors.push(ReportError { section: "audio", message: e.to_string() });
            (None, vec![], vec![])
        }
    };
    let controllers = crate::voice::ptt::controllers().unwrap_or_else(|e| {
        errors.push(ReportError { section: "controllers", message: e });
        vec![]
    });
    DeviceReport { screens, audio_host, microphones, speakers, controllers, errors }
}

impl DeviceReport {
    /// The report as a small table (what `pitbox-driver devices` prints), one device per line.
    pub fn render(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for DeviceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<11} {:<3} {:<7} {:<36} format", "kind", "#", "default", "device")?;
        for s in &self.screens {
            writeln!(f, "{:<11} {:<3} {:<7} {:<36} -", "screen", s.index, "", s.to_string())?;
        }
        for (kind, list) in [("microphone", &self.microphones), ("speaker", &self.speakers)] {
            for (i, d) in list.iter().enumerate() {
                let format = match (&d.default_config, &d.config_error) {
                    (Some(c), _) => c.to_string(),
                    (None, Some(e)) => format!("? ({e})"),
                    (None, None) => "?".to_owned(),
                };
                let default = if d.is_default { "yes" } else { "" };
                writeln!(f, "{kind:<11} {i:<3} {default:<7} {:<36} {format}", d.name)?;
            }
        }
        for c in &self.controllers {
            writeln!(
                f,
                "{:<11} {:<3} {:<7} {:<36} buttons: {}",
                "controller",
                c.id,
                "",
                c.name,
                c.buttons.join(" ")
            )?;
        }
        if self.controllers.is_empty() && !self.errors.iter().any(|e| e.section == "controllers") {
            writeln!(f, "no game controllers found (push-to-talk: --ptt vad, or --ptt-button key:CODE)")?;
        }
        if self.screens.is_empty() && !self.errors.iter().any(|e| e.section == "screens") {
            writeln!(f, "no screens found")?;
        }
        if let Some(host) = &self.audio_host {
            if self.microphones.is_empty() {
                writeln!(f, "no microphones found ({host})")?;
            }
            if self.speakers.is_empty() {
                writeln!(f, "no speakers found ({host})")?;
            }
        }
        for e in &self.errors {
            writeln!(f, "{}: {}", e.section, e.message)?;
        }
        Ok(())
    }
}

fn row(
    component: &str,
    status: ValidationStatus,
    message: String,
    details: serde_json::Value,
) -> ValidationResult {
    ValidationResult {
        component_name: component.to_owned(),
        status,
        message,
        timestamp: chrono::Utc::now(),
        details: Some(details),
    }
}

/// The doctor's `capture` row (a screen to grab) and `audio` row (a microphone for voice commands
/// and a speaker for coaching).
///
/// `capture`: success with the screens found; warning without a display (a headless PC can still
/// replay and stream telemetry) or where this build cannot list screens (Windows, for now); error
/// when the display cannot be asked or has no screen.
/// `audio`: success with at least one microphone and one speaker; warning otherwise (voice is
/// optional).
pub fn doctor_checks() -> Vec<ValidationResult> {
    use ValidationStatus::{Error, Success, Warning};
    let capture = match screens() {
        Ok(found) if !found.is_empty() => {
            let list: Vec<String> = found.iter().map(Screen::to_string).collect();
            row(
                "capture",
                Success,
                format!("{} screen(s): {}", found.len(), list.join(", ")),
                json!({ "screens": found }),
            )
        }
        Ok(_) => {
            row("capture", Error, "the display has no screen to capture".to_owned(), json!({ "screens": [] }))
        }
        Err(e @ (DeviceError::NoDisplay(_) | DeviceError::Unsupported(_))) => {
            row("capture", Warning, format!("{e}; use `run --no-video`"), json!({ "screens": [] }))
        }
        Err(e) => row("capture", Error, e.to_string(), json!({ "screens": [] })),
    };
    let audio = match audio() {
        Ok(a) => {
            let names = |l: &[AudioDevice]| l.iter().map(|d| d.name.clone()).collect::<Vec<_>>();
            let default = |l: &[AudioDevice]| l.iter().find(|d| d.is_default).map(|d| d.name.clone());
            let details = json!({
                "host": a.host,
                "microphones": names(&a.inputs),
                "speakers": names(&a.outputs),
                "defaultMicrophone": default(&a.inputs),
                "defaultSpeaker": default(&a.outputs),
            });
            let (mics, speakers) = (a.inputs.len(), a.outputs.len());
            let mic = default(&a.inputs).or_else(|| a.inputs.first().map(|d| d.name.clone()));
            let out = default(&a.outputs).or_else(|| a.outputs.first().map(|d| d.name.clone()));
            match (mic, out) {
                (Some(mic), Some(out)) => row(
                    "audio",
                    Success,
                    format!(
                        "{mics} microphone(s), {speakers} speaker(s) on {}; using {mic:?} and {out:?}",
                        a.host
                    ),
                    details,
                ),
                (mic, out) => {
                    let mut missing = vec![];
                    if mic.is_none() {
                        missing.push("no microphone (voice commands off)");
                    }
                    if out.is_none() {
                        missing.push("no speaker (spoken coaching off)");
                    }
                    row("audio", Warning, format!("{} on {}", missing.join(", "), a.host), details)
                }
            }
        }
        Err(e) => row("audio", Warning, format!("{e} (voice is off)"), json!({})),
    };
    vec![capture, audio]
}
