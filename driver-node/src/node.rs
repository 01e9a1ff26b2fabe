//! Runs the node: the spool, the recorder thread on the chosen source, the uplink to the runtime,
//! voice ([`crate::voice`]), the local API and the status screen (or a progress bar for replays),
//! inside one actix system.
//! Stops on Ctrl-C, or — for a recording — once every frame is recorded and acknowledged.
//! Reads no env vars (the home directory comes from [`crate::credentials::home`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::credentials::Credentials;
use crate::local_api::{self, Cloud, LocalConfig, RelayAgent, Voice};
use crate::recorder::{self, RecordOptions};
use crate::source::TelemetrySource;
use crate::spool::Spool;
use crate::status::{self, Status};
use crate::uplink::{self, UplinkOptions};

/// How the node runs.
pub struct NodeOptions {
    pub home: PathBuf,
    pub speed: Option<f64>,
    /// Replays: the spool key of their progress, so a restart resumes.
    pub progress_key: Option<String>,
    pub limit: Option<u64>,
    /// Stop when the source has ended and the spool is empty.
    pub exit_when_done: bool,
    pub local_api: Option<SocketAddr>,
    pub spool_max_frames: u64,
    /// Voice commands and spoken answers (`None`: `--no-voice`, and replays).
    pub voice: Option<crate::voice::VoiceOptions>,
    /// Show a progress bar of this many frames instead of the status screen.
    pub progress_total: Option<u64>,
    /// An extra CA file to trust (`--ca-file`); else the one saved at login, if any.
    pub ca_file: Option<PathBuf>,
    /// Onboard video (`None`: `--no-video`, and replays).
    pub video: Option<crate::video::VideoOptions>,
}

pub fn run(source: Box<dyn TelemetrySource>, options: NodeOptions) -> anyhow::Result<u64> {
    let creds = Credentials::load(&options.home)?;
    anyhow::ensure!(
        creds.driver_id.is_some(),
        "user {} has no driver profile; ask your team's engineer to create one",
        creds.username
    );
    // A CA file that cannot be read is a setup mistake: say so now, not at every reconnect.
    let tls = crate::tls::NodeTls::new(options.ca_file.as_deref().or(creds.ca_file.as_deref()))?;
    let spool = Arc::new(
        Spool::open(&options.home.join("spool"), options.spool_max_frames).context("opening the spool")?,
    );
    let info = source.info();
    tracing::info!(source = info.kind, track = ?info.track, car = ?info.car, stream = spool.stream_id(), "starting");
    actix_rt::System::new().block_on(async move {
        let status = Arc::new(Status::default());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stop_recording = Arc::new(AtomicBool::new(false));

        if let Some(addr) = options.local_api {
            let listener =
                std::net::TcpListener::bind(addr).with_context(|| format!("local API on {addr}"))?;
            let config = LocalConfig {
                relay_agent: RelayAgent { url: creds.ws_url(), port: port_of(&creds.server) },
                cloud: Cloud { endpoint: creds.server.clone(), enabled: true },
                voice: Voice { enabled: options.voice.is_some(), sensitivity: 0.5, voice_id: "default".into() },
            };
            tracing::info!(addr = %listener.local_addr()?, "local API listening");
            actix_rt::spawn(local_api::start(listener, config, status.clone())?);
        }

        // Video is an extra: a node without a screen to capture still sends telemetry.
        let (video_link, video_thread) = match options.video.clone().map(crate::video::start) {
            Some(Ok((link, thread))) => {
                tracing::info!(source = %thread.describe, "onboard video ready (paused until someone watches)");
                (Some(link), Some(thread))
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "running without onboard video");
                (None, None)
            }
            None => (None, None),
        };
        // Voice is an extra too: without speakers, a microphone or a model, the rest runs.
        let (voice_link, voice_threads) = match options.voice.clone().map(|v| {
            let stt = crate::voice::whisper(v.stt.clone());
            crate::voice::start(v, crate::voice::pedals_from(status.clone()), stt)
        }) {
            Some(Ok((link, threads))) => (Some(link), Some(threads)),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "running without voice");
                (None, None)
            }
            None => (None, None),
        };
        let uplink = actix_rt::spawn(uplink::run(
            UplinkOptions {
                track: info.track.clone(),
                car: info.car.clone(),
                session_type: info.session_type.clone(),
                ..UplinkOptions::new(options.home.clone(), tls)
            },
            spool.clone(),
            status.clone(),
            stop_rx.clone(),
            video_link,
            voice_link,
        ));
        let screen = match options.progress_total {
            Some(total) => actix_rt::spawn(progress(status.clone(), total, stop_rx.clone())),
            None => {
                actix_rt::spawn(status::show(status.clone(), Duration::from_millis(500), stop_rx.clone()))
            }
        };
        let record_options = RecordOptions {
            speed: options.speed,
            progress_key: options.progress_key.clone(),
            limit: options.limit,
        };
        let recorder =
            recorder::spawn(source, spool.clone(), status.clone(), record_options, stop_recording.clone());
        let recorder_done = {
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let _ = tx.send(recorder.join());
            });
            rx
        };

        let recorded = tokio::select! {
            r = recorder_done => match r {
                Ok(Ok(Ok(n))) => Some(n),
                Ok(Ok(Err(e))) => return Err(anyhow::anyhow!("recording failed: {e}")),
                _ => return Err(anyhow::anyhow!("the recorder stopped unexpectedly")),
            },
            _ = tokio::signal::ctrl_c() => None,
        };
        let mut total = recorded.unwrap_or(0);
        match recorded {
            Some(n) if options.exit_when_done => {
                // Everything is recorded; wait until the runtime has stored all of it.
                let mut tick = actix_rt::time::interval(Duration::from_millis(100));
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = tokio::signal::ctrl_c() => break,
                    }
                    // Frames that went live only (a full spool disk) must have gone too.
                    // So must the end of the recording's sim session.
                    let told = spool.session_at(u64::MAX).ok().flatten().is_none_or(|(at, _)| status.mark_told() >= at);
                    if spool.depth().unwrap_or(1) == 0 && spool.live_depth().unwrap_or(1) == 0 && told {
                        tracing::info!(frames = n, "all frames stored by the runtime");
                        break;
                    }
                }
            }
            Some(_) => {
                // A live source ended (the sim closed): keep delivering until Ctrl-C.
                let _ = tokio::signal::ctrl_c().await;
            }
            None => {
                stop_recording.store(true, Ordering::Relaxed);
                total = status.snapshot().recorded;
            }
        }
        let _ = stop_tx.send(true);
        let _ = uplink.await;
        if let Some(v) = video_thread {
            v.control.stop();
            match v.handle.join() {
                Ok(Err(e)) => tracing::warn!(error = %e, "the video thread failed"),
                Err(_) => tracing::warn!("the video thread panicked"),
                Ok(Ok(())) => {}
            }
        }
        if let Some(v) = voice_threads {
            v.stop();
        }
        let _ = screen.await;
        let left = spool.depth().unwrap_or(0);
        if left > 0 {
            eprintln!("{left} frames are kept in the spool and will be sent on the next run");
        }
        Ok(total)
    })
}

fn port_of(server: &str) -> u16 {
    let after = server.split("://").nth(1).unwrap_or(server);
    let host = after.split('/').next().unwrap_or(after);
    host.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(if server.starts_with("https") {
        443
    } else {
        80
    })
}

/// A progress bar for replays: frames recorded and frames acknowledged.
async fn progress(status: Arc<Status>, total: u64, mut stop: tokio::sync::watch::Receiver<bool>) {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} frames ({per_sec}, eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut tick = actix_rt::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let s = status.snapshot();
        bar.set_position(s.recorded.min(total));
        bar.set_message(if s.connected {
            format!("stored to #{}", s.last_ack)
        } else {
            "offline, spooling".into()
        });
    }
    bar.finish();
}
