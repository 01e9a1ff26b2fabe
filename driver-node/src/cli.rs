//! The `pitbox-driver` command line: `login`, `logout`, `run`, `replay`, `inspect`, `doctor`,
//! `devices`.
//! Reads `PITBOX_PASSWORD` (login without a prompt), `PITBOX_CA_FILE` (`--ca-file`: an extra CA
//! to trust, see [`crate::tls`]) and `PITBOX_DRIVER_HOME` (see [`crate::credentials::home`]).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The PitBox driver node: iRacing telemetry, screen and voice for your team's pit wall.
#[derive(Debug, Parser)]
#[command(name = "pitbox-driver", version, about)]
pub struct Cli {
    /// An extra CA certificate (PEM) to trust, for a runtime whose certificate comes from your
    /// team's own authority; `login` remembers it for the later commands.
    #[arg(long, env = "PITBOX_CA_FILE", global = true, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in to your team's PitBox runtime; the login is kept in the node's home directory.
    Login(LoginArgs),
    /// End the login and delete it from this PC.
    Logout,
    /// Stream telemetry to the runtime: from the sim, a recording, or the synthetic driver.
    Run(Box<RunArgs>),
    /// Stream a recording as if it were live, with a progress bar; exits when all of it is stored.
    /// Restarted after an interruption, it resumes where it stopped.
    Replay(ReplayArgs),
    /// Check what a race needs: server, login, clock, socket, disk space, sim and devices.
    Doctor(DoctorArgs),
    /// List the screens, microphones and speakers PitBox can use.
    Devices(DevicesArgs),
    /// Show what an iRacing telemetry file (.ibt, or a dump of the live map) holds: header,
    /// recording, track, car, drivers, laps; optionally its channels, or chosen channels as CSV.
    Inspect(InspectArgs),
}

/// `pitbox-driver inspect FILE [--vars] [--csv CHANNELS]`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// The .ibt file (or live shared-memory dump).
    pub file: PathBuf,
    /// Also list every channel: name, type, unit, description.
    #[arg(long)]
    pub vars: bool,
    /// Instead of the summary, write these channels as CSV to stdout, one line per record
    /// (e.g. `Speed,RPM,Lap`; array channels become `name[i]` columns).
    #[arg(long, value_name = "CHANNELS", value_delimiter = ',')]
    pub csv: Option<Vec<String>>,
}

#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// The runtime, e.g. `https://pitbox.example.com` or `http://127.0.0.1:8080`.
    #[arg(long)]
    pub server: String,
    #[arg(long)]
    pub username: String,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// `iracing` (the sim, Windows), `ibt:PATH` (a recording) or `synthetic`.
    #[arg(long, default_value = "synthetic")]
    pub source: String,
    /// Playback speed of recordings and the synthetic driver: a factor, or `max`.
    #[arg(long, default_value = "1")]
    pub speed: String,
    /// Seed of the synthetic driver.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Synthetic driver: where on the lap it starts, a fraction (0.4: 40 % round; it starts on lap
    /// 1 with a partial first lap).
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION")]
    pub start_at: f64,
    /// Synthetic driver: factor on lap time (1.02: 2 % slower).
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub pace: f64,
    /// Synthetic driver: brakes METRES before the ideal braking point at corner T (1–10), e.g.
    /// `--brake-early 4:20`. Repeatable.
    #[arg(long, value_name = "T:METRES", value_parser = corner_metres)]
    pub brake_early: Vec<(usize, f64)>,
    /// Synthetic driver: picks up the throttle METRES late out of corner T, e.g.
    /// `--late-throttle 7:30`. Repeatable.
    #[arg(long, value_name = "T:METRES", value_parser = corner_metres)]
    pub late_throttle: Vec<(usize, f64)>,
    /// Synthetic driver: lifts and coasts METRES before braking for corner T, e.g. `--coast 1:60`.
    /// Repeatable.
    #[arg(long, value_name = "T:METRES", value_parser = corner_metres)]
    pub coast: Vec<(usize, f64)>,
    /// Synthetic driver: litres per lap lost on top of what the engine burns.
    #[arg(long, default_value_t = 0.0, value_name = "LITRES")]
    pub fuel_leak: f64,
    /// Synthetic driver: braking points vary by up to METRES (early) from lap to lap.
    #[arg(long, default_value_t = 0.0, value_name = "METRES")]
    pub inconsistency: f64,
    /// `ibt:PATH`: replay the recording again and again, session time and laps carrying on.
    #[arg(long = "loop")]
    pub looping: bool,
    /// Stop recording after this many samples.
    #[arg(long)]
    pub samples: Option<u64>,
    /// The local API's address (`off` to disable).
    #[arg(long, default_value = "127.0.0.1:8766")]
    pub api: String,
    /// Frames the spool keeps at most before it thins the oldest (about 8 hours at 60 Hz).
    #[arg(long, default_value_t = 1_800_000)]
    pub spool_max: u64,
    /// Do not capture the screen (no onboard video for the pit wall).
    #[arg(long)]
    pub no_video: bool,
    /// Onboard video size and frame rate, WIDTHxHEIGHT@FPS (the capture is scaled to it).
    #[arg(long, default_value = "1280x720@30", value_name = "WxH@FPS")]
    pub video: String,
    /// Onboard video bitrate in kbit/s (lowered while the uplink is behind, then raised again).
    #[arg(long, default_value_t = 2500, value_parser = clap::value_parser!(u32).range(100..=50_000))]
    pub bitrate: u32,
    /// What to capture: `screen[:N]`, `region:X,Y,WxH`, `window:ID` or `pattern` (test content).
    #[arg(long, default_value = "screen")]
    pub video_source: String,
    /// Do not listen for voice commands or play coaching.
    #[arg(long)]
    pub no_voice: bool,
    /// Push-to-talk: `hold` (listen while the button is held), `toggle` (press to start, again
    /// to stop) or `vad` (always listen; speech is found by voice-activity detection).
    #[arg(long, value_enum, default_value = "vad")]
    pub ptt: crate::voice::PttMode,
    /// The push-to-talk button: `gamepad:ID:BUTTON` (a wheel, button box or gamepad as `devices`
    /// lists it) or `key:CODE` (X11 keycode on Linux, virtual-key code on Windows).
    #[arg(long, value_name = "BUTTON", value_parser = crate::voice::PttButton::parse)]
    pub ptt_button: Option<crate::voice::PttButton>,
    /// The microphone: a name (or part of one) as `devices` lists it; else the default.
    #[arg(long, value_name = "NAME", conflicts_with = "mic_file")]
    pub mic: Option<String>,
    /// Listen to a WAV file instead of a microphone, in real time.
    #[arg(long, value_name = "WAV")]
    pub mic_file: Option<PathBuf>,
    /// Write what would be played into a WAV file (silence for the gaps) instead of the speakers.
    #[arg(long, value_name = "WAV")]
    pub speaker_file: Option<PathBuf>,
    /// Loudness of spoken answers and tones, 0–100.
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub volume: u8,
    /// The speech model (whisper ggml); default: `PITBOX_WHISPER_MODEL`, else the one `doctor` names.
    #[arg(long, value_name = "FILE")]
    pub stt_model: Option<PathBuf>,
    /// Threads speech-to-text uses (it shares the PC with the sim).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub stt_threads: u16,
}

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    pub file: PathBuf,
    /// `1`, `4`, any factor, or `max`.
    #[arg(long, default_value = "1")]
    pub speed: String,
    /// Only the first N laps of the recording.
    #[arg(long)]
    pub laps: Option<u32>,
}

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Print the results as JSON (the seed's ValidationResult shape).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DevicesArgs {
    /// Print the list as JSON.
    #[arg(long)]
    pub json: bool,
}

fn speed(s: &str) -> anyhow::Result<Option<f64>> {
    if s == "max" {
        return Ok(None);
    }
    let v: f64 = s.parse().map_err(|_| anyhow::anyhow!("--speed: a number or `max`, not {s:?}"))?;
    anyhow::ensure!(v > 0.0 && v.is_finite(), "--speed must be positive");
    Ok(Some(v))
}

/// `T:METRES`, a corner number and a distance.
fn corner_metres(s: &str) -> Result<(usize, f64), String> {
    let err = || format!("expected CORNER:METRES like 4:20, not {s:?}");
    let (c, m) = s.split_once(':').ok_or_else(err)?;
    let c: usize = c.trim().trim_start_matches(['T', 't']).parse().map_err(|_| err())?;
    let m: f64 = m.trim().parse().map_err(|_| err())?;
    if c == 0 || !(m.is_finite() && m >= 0.0) {
        return Err(err());
    }
    Ok((c, m))
}

/// The synthetic driver the flags of `run` describe.
pub fn synthetic_config(args: &RunArgs) -> anyhow::Result<crate::synthetic::SyntheticConfig> {
    use crate::synthetic::Fault;
    anyhow::ensure!((0.0..1.0).contains(&args.start_at), "--start-at: a fraction of the lap, 0 to below 1");
    anyhow::ensure!(
        args.pace.is_finite() && (0.5..=2.0).contains(&args.pace),
        "--pace: a factor from 0.5 to 2"
    );
    anyhow::ensure!(
        args.fuel_leak.is_finite() && args.fuel_leak >= 0.0,
        "--fuel-leak: litres per lap, 0 or more"
    );
    anyhow::ensure!(
        args.inconsistency.is_finite() && args.inconsistency >= 0.0,
        "--inconsistency: metres, 0 or more"
    );
    let corners = crate::synthetic::Synthetic::new(args.seed).corners().len();
    let mut faults = vec![];
    for (list, make) in [
        (
            &args.brake_early,
            (|corner, metres| Fault::BrakeEarly { corner, metres }) as fn(usize, f64) -> Fault,
        ),
        (&args.late_throttle, |corner, metres| Fault::LateThrottle { corner, metres }),
        (&args.coast, |corner, metres| Fault::Coast { corner, metres }),
    ] {
        for &(c, m) in list {
            anyhow::ensure!(c <= corners, "corner {c}: the synthetic track has corners 1 to {corners}");
            faults.push(make(c, m));
        }
    }
    Ok(crate::synthetic::SyntheticConfig {
        seed: args.seed,
        start_at: args.start_at,
        pace: args.pace,
        faults,
        fuel_leak_l_per_lap: args.fuel_leak,
        inconsistency_m: args.inconsistency,
    })
}

/// The onboard video as asked on the command line (`None` with `--no-video`).
pub fn video_options(args: &RunArgs) -> anyhow::Result<Option<crate::video::VideoOptions>> {
    if args.no_video {
        return Ok(None);
    }
    let (width, height, fps) =
        crate::video::parse_mode(&args.video).map_err(|e| anyhow::anyhow!("--video: {e}"))?;
    let source = crate::video::capture::SourceSpec::parse(&args.video_source)
        .map_err(|e| anyhow::anyhow!("--video-source: {e}"))?;
    let source = match source {
        crate::video::capture::SourceSpec::Pattern { .. } => {
            crate::video::capture::SourceSpec::Pattern { width, height }
        }
        other => other,
    };
    Ok(Some(crate::video::VideoOptions {
        source,
        width,
        height,
        fps,
        bitrate_bps: args.bitrate * 1000,
        keyframe_secs: 2.0,
    }))
}

/// Voice as asked on the command line (`None` with `--no-voice`).
pub fn voice_options(args: &RunArgs) -> Option<crate::voice::VoiceOptions> {
    use crate::voice::{MicSpec, SpeakerSpec};
    if args.no_voice {
        return None;
    }
    Some(crate::voice::VoiceOptions {
        mic: match (&args.mic_file, &args.mic) {
            (Some(f), _) => MicSpec::File(f.clone()),
            (None, Some(n)) => MicSpec::Named(n.clone()),
            (None, None) => MicSpec::Default,
        },
        ptt: args.ptt,
        ptt_button: args.ptt_button.clone(),
        speaker: args.speaker_file.clone().map_or(SpeakerSpec::Default, SpeakerSpec::File),
        volume: args.volume,
        stt: crate::voice::stt::SttSettings {
            model: args.stt_model.clone().unwrap_or_else(crate::voice::model_path),
            threads: usize::from(args.stt_threads),
            // Fitted to each utterance: about 4.7 times faster than the full 30 s context on a
            // command of 2 s (benches/voice.rs), for a little accuracy.
            audio_ctx: Some(0),
        },
    })
}

fn password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("PITBOX_PASSWORD") {
        return Ok(p);
    }
    Ok(rpassword::prompt_password("password: ")?)
}

/// Runs `cli`, writing its output to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    let home = crate::credentials::home();
    // `--ca-file` wins; else the file trusted at login.
    let saved_ca = || crate::credentials::Credentials::load(&home).ok().and_then(|c| c.ca_file);
    let ca_file = cli.ca_file.map(|p| std::path::absolute(&p).unwrap_or(p));
    match cli.command {
        Command::Inspect(args) => crate::inspect::run(&args, out),
        Command::Login(args) => {
            let tls = crate::tls::NodeTls::new(ca_file.as_deref())?;
            let password = password()?;
            let mut creds = actix_rt::System::new().block_on(async {
                crate::credentials::login(
                    &crate::uplink::client(&tls),
                    &args.server,
                    &args.username,
                    &password,
                )
                .await
            })?;
            creds.ca_file = ca_file;
            creds.save(&home)?;
            let driver = creds.driver_id.as_deref().unwrap_or("none: ask your engineer for a driver profile");
            writeln!(out, "logged in to {} as {} (driver {driver})", creds.server, creds.username)?;
            Ok(())
        }
        Command::Logout => {
            let tls = crate::tls::NodeTls::new(ca_file.or_else(saved_ca).as_deref())?;
            actix_rt::System::new()
                .block_on(async { crate::credentials::logout(&crate::uplink::client(&tls), &home).await })?;
            writeln!(out, "logged out")?;
            Ok(())
        }
        Command::Run(args) => {
            anyhow::ensure!(
                !args.looping || args.source.starts_with("ibt:"),
                "--loop: only with --source ibt:PATH"
            );
            let source: Box<dyn crate::source::TelemetrySource> = match args.source.as_str() {
                "synthetic" => Box::new(crate::synthetic::Synthetic::with_config(synthetic_config(&args)?)),
                "iracing" => Box::new(crate::live::iracing_source()?),
                other => match other.strip_prefix("ibt:") {
                    Some(path) => Box::new(
                        crate::source::IbtSource::open(std::path::Path::new(path), None)?
                            .looping(args.looping),
                    ),
                    None => anyhow::bail!("--source: `iracing`, `ibt:PATH` or `synthetic`, not {other:?}"),
                },
            };
            let local_api = match args.api.as_str() {
                "off" => None,
                a => Some(
                    a.parse()
                        .map_err(|_| anyhow::anyhow!("--api: an address like 127.0.0.1:8766, or off"))?,
                ),
            };
            let options = crate::node::NodeOptions {
                home,
                speed: speed(&args.speed)?,
                progress_key: None,
                limit: args.samples,
                exit_when_done: args.samples.is_some(),
                local_api,
                spool_max_frames: args.spool_max,
                voice: voice_options(&args),
                progress_total: None,
                ca_file,
                video: video_options(&args)?,
            };
            let n = crate::node::run(source, options)?;
            writeln!(out, "{n} samples recorded")?;
            Ok(())
        }
        Command::Replay(args) => {
            let source = crate::source::IbtSource::open(&args.file, args.laps)?;
            let total = crate::source::TelemetrySource::info(&source).frames;
            // The file's identity keys its progress, so a restart resumes the same replay only.
            let meta = std::fs::metadata(&args.file)?;
            let key = format!("replay:{}:{}:{:?}", args.file.display(), meta.len(), args.laps);
            let options = crate::node::NodeOptions {
                home,
                speed: speed(&args.speed)?,
                progress_key: Some(key),
                limit: None,
                exit_when_done: true,
                local_api: None,
                spool_max_frames: 1_800_000,
                voice: None,
                progress_total: total,
                ca_file,
                video: None,
            };
            let n = crate::node::run(Box::new(source), options)?;
            writeln!(out, "replayed {n} frames")?;
            Ok(())
        }
        Command::Doctor(args) => {
            let tls = crate::tls::NodeTls::new(ca_file.or_else(saved_ca).as_deref())?;
            crate::doctor::run(&home, &tls, args.json, out)
        }
        Command::Devices(args) => {
            let report = crate::devices::report();
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                write!(out, "{}", report.render())?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voice::{MicSpec, PttButton, PttMode, SpeakerSpec};

    fn run_args(args: &[&str]) -> Result<RunArgs, clap::Error> {
        let cli = Cli::try_parse_from([&["pitbox-driver", "run"], args].concat())?;
        match cli.command {
            Command::Run(r) => Ok(*r),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn voice_flags() {
        let a = run_args(&[
            "--ptt",
            "hold",
            "--ptt-button",
            "gamepad:0:South",
            "--mic-file",
            "in.wav",
            "--speaker-file",
            "out.wav",
            "--volume",
            "50",
        ])
        .unwrap();
        let v = voice_options(&a).unwrap();
        assert_eq!(v.ptt, PttMode::Hold);
        assert_eq!(v.ptt_button, Some(PttButton::Gamepad { id: 0, button: "South".into() }));
        assert_eq!(v.mic, MicSpec::File("in.wav".into()));
        assert_eq!(v.speaker, SpeakerSpec::File("out.wav".into()));
        assert_eq!((v.volume, v.stt.threads), (50, 1));
        let d = voice_options(&run_args(&[]).unwrap()).unwrap();
        assert_eq!((d.ptt, d.mic, d.speaker), (PttMode::Vad, MicSpec::Default, SpeakerSpec::Default));
        assert!(voice_options(&run_args(&["--no-voice"]).unwrap()).is_none());
        assert!(run_args(&["--volume", "101"]).is_err());
        assert!(run_args(&["--ptt", "sometimes"]).is_err());
        assert!(run_args(&["--ptt-button", "mouse:1"]).is_err());
        assert!(run_args(&["--mic", "USB", "--mic-file", "a.wav"]).is_err());
    }
}
