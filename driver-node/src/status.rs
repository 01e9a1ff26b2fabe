//! What the node shows its driver: connection, samples per second, spool depth, last
//! acknowledgement, lap and last lap time, and the latest pushes from the team. Updated by the
//! recorder and the uplink; drawn in place on a terminal, logged plainly otherwise. Reads no env vars.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pitbox_schema::wire::TelemetryFrame;

#[derive(Default)]
pub struct Status {
    connected: AtomicBool,
    recorded: AtomicU64,
    last_ack: AtomicU64,
    newest: AtomicU64,
    /// The newest frames went live only: the spool's disk is full.
    unspooled: AtomicBool,
    /// Where the newest sim session mark the uplink told the runtime starts (see
    /// [`crate::spool::Spool::mark_session`]).
    mark_told: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    error: Option<String>,
    latest: Option<TelemetryFrame>,
    pushes: VecDeque<String>,
}

/// A copy of the status at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub connected: bool,
    pub recorded: u64,
    pub last_ack: u64,
    pub depth: u64,
    /// The spool's disk is full: frames go live only.
    pub unspooled: bool,
    pub error: Option<String>,
    pub latest: Option<TelemetryFrame>,
    pub pushes: Vec<String>,
}

impl Status {
    pub fn set_connected(&self, up: bool, error: Option<String>) {
        self.connected.store(up, Ordering::Relaxed);
        if let Ok(mut i) = self.inner.lock() {
            i.error = error;
        }
    }

    /// Whether the uplink is connected and authenticated.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// `n` frames were recorded, `frame` the newest of them, spooled as `newest_seq` (`None`:
    /// not spooled, the disk being full; they went live only).
    pub fn recorded(&self, frame: &TelemetryFrame, n: u64, newest_seq: Option<u64>) {
        self.recorded.fetch_add(n, Ordering::Relaxed);
        if let Some(seq) = newest_seq {
            self.newest.store(seq, Ordering::Relaxed);
        }
        self.unspooled.store(newest_seq.is_none(), Ordering::Relaxed);
        if let Ok(mut i) = self.inner.lock() {
            i.latest = Some(frame.clone());
        }
    }

    pub fn acked(&self, seq: u64) {
        self.last_ack.store(seq, Ordering::Relaxed);
    }

    /// The uplink told the runtime the sim session mark starting at `at`.
    pub fn told_mark(&self, at: u64) {
        self.mark_told.fetch_max(at, Ordering::Relaxed);
    }

    /// Where the newest sim session mark told starts (0: none).
    pub fn mark_told(&self) -> u64 {
        self.mark_told.load(Ordering::Relaxed)
    }

    /// A message from the team or the coach, kept for the screen (the last five).
    pub fn push(&self, text: String) {
        tracing::info!(%text, "from the team");
        if let Ok(mut i) = self.inner.lock() {
            i.pushes.push_back(text);
            while i.pushes.len() > 5 {
                i.pushes.pop_front();
            }
        }
    }

    pub fn latest(&self) -> Option<TelemetryFrame> {
        self.inner.lock().ok().and_then(|i| i.latest.clone())
    }

    pub fn snapshot(&self) -> Snapshot {
        let (error, latest, pushes) = self
            .inner
            .lock()
            .map(|i| (i.error.clone(), i.latest.clone(), i.pushes.iter().cloned().collect()))
            .unwrap_or_default();
        Snapshot {
            connected: self.connected.load(Ordering::Relaxed),
            recorded: self.recorded.load(Ordering::Relaxed),
            last_ack: self.last_ack.load(Ordering::Relaxed),
            // Frames recorded and not yet acknowledged (the spool's unsent and in-flight part).
            depth: self.newest.load(Ordering::Relaxed).saturating_sub(self.last_ack.load(Ordering::Relaxed)),
            unspooled: self.unspooled.load(Ordering::Relaxed),
            error,
            latest,
            pushes,
        }
    }
}

fn lap_time(t: Option<f32>) -> String {
    match t {
        Some(t) if t > 0.0 => format!("{}:{:06.3}", (t / 60.0).floor() as u32, t % 60.0),
        _ => "-:--.---".into(),
    }
}

/// The one-screen status as lines of text; `rate` in samples per second.
pub fn render(s: &Snapshot, rate: f64) -> Vec<String> {
    let link = if s.connected {
        "connected".to_owned()
    } else {
        format!("offline ({})", s.error.as_deref().unwrap_or("connecting"))
    };
    let (lap, last, speed) = s
        .latest
        .as_ref()
        .map(|f| (f.sample.lap, f.sample.last_lap_time, f.sample.speed))
        .unwrap_or((0, None, 0.0));
    let mut lines = vec![
        format!("PitBox driver node   {link}"),
        format!(
            "samples/s {rate:>5.1}   recorded {:>8}   spool {:>7}   last ack {:>8}",
            s.recorded, s.depth, s.last_ack
        ),
        format!("lap {lap:>3}   last lap {}   speed {speed:>5.1} km/h", lap_time(last)),
    ];
    if s.unspooled {
        lines.push("spool disk FULL: sending live only, nothing kept if the link drops".into());
    }
    lines.extend(s.pushes.iter().map(|p| format!("  » {p}")));
    lines
}

/// Draws the status every `every` until `stop`: redrawn in place on a terminal, one log line per
/// ten seconds otherwise.
pub async fn show(
    status: std::sync::Arc<Status>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let tty = std::io::stderr().is_terminal();
    let mut tick = actix_rt::time::interval(every);
    let (mut last_count, mut last_at, mut drawn, mut last_log) =
        (0u64, Instant::now(), 0usize, Instant::now());
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let s = status.snapshot();
        let rate = (s.recorded - last_count) as f64 / last_at.elapsed().as_secs_f64().max(1e-3);
        (last_count, last_at) = (s.recorded, Instant::now());
        let lines = render(&s, rate);
        if tty {
            let mut err = std::io::stderr().lock();
            // Move up over the previous drawing and clear it.
            for _ in 0..drawn {
                let _ = write!(err, "\x1b[1A\x1b[2K");
            }
            for l in &lines {
                let _ = writeln!(err, "{l}");
            }
            drawn = lines.len();
        } else if last_log.elapsed() >= Duration::from_secs(10) {
            last_log = Instant::now();
            tracing::info!(
                connected = s.connected,
                rate = format!("{rate:.1}"),
                recorded = s.recorded,
                spool = s.depth,
                last_ack = s.last_ack,
                spool_full = s.unspooled,
                "status"
            );
        }
    }
}
