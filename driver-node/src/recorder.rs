//! The recorder: pulls frames from a source, paces them (real time × speed, or as fast as
//! possible), writes them to the spool in small batches, and updates the status. Runs on its own
//! thread: sources and the spool are blocking. A replay records its progress with its frames, so
//! a node restarted mid-replay resumes at the next frame instead of recording the start again.
//! A jump forward in session time longer than the lap timer times across (a looping replay's seam,
//! a recording's gap) is not waited out: the car would only sit stale on the pit wall.
//! A spool whose disk is full does not stop it (see [`crate::spool`]): frames then go live only.
//! It marks the sim session in the spool before the first frame of each (track, car, session
//! type), and its end where the source says it ended (the sim closed, a recording's last frame),
//! so the runtime's racing sessions follow the sim's. Reads no env vars.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::source::{Next, SourceError, TelemetrySource};
use crate::spool::{Spool, SpoolError};
use crate::status::Status;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

pub struct RecordOptions {
    /// Playback speed for recordings and the synthetic driver; `None`: as fast as possible.
    pub speed: Option<f64>,
    /// Spool key under which a replay keeps its progress (frames recorded so far).
    pub progress_key: Option<String>,
    /// Stop after this many frames (in total, counting a resumed replay's earlier frames).
    pub limit: Option<u64>,
}

/// Records until the source ends, the limit is reached, or `stop` is set. Returns the frames
/// recorded in total (for a resumed replay, including those of earlier runs).
pub fn record(
    source: &mut dyn TelemetrySource,
    spool: &Spool,
    status: &Status,
    options: &RecordOptions,
    stop: &AtomicBool,
) -> Result<u64, RecordError> {
    let mut done = match &options.progress_key {
        Some(k) => spool.get_meta(k)?.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0),
        None => 0,
    };
    if done > 0 {
        tracing::info!(frames = done, "resuming a replay after the frames already recorded");
        source.skip(done)?;
    }
    let paced = options.speed.filter(|s| *s > 0.0 && !source.is_live());
    // Live and paced: a spool write every 3 frames (50 ms at 60 Hz), so the team view's 20 Hz
    // always has a fresh sample; unpaced replays write big batches.
    let batch_max = if paced.is_some() || source.is_live() { 3 } else { 200 };
    let mut batch = Vec::with_capacity(batch_max);
    let mut last_flush = Instant::now();
    let mut clock: Option<(Instant, f64)> = None;
    let mut last_t: Option<f64> = None;
    let flush =
        |batch: &mut Vec<pitbox_schema::wire::TelemetryFrame>, done: u64| -> Result<(), RecordError> {
            if batch.is_empty() {
                return Ok(());
            }
            let progress = options.progress_key.as_deref().map(|k| (k, done.to_string()));
            let seqs = spool.append(batch, progress.as_ref().map(|(k, v)| (*k, v.as_str())))?;
            if seqs.is_empty() {
                keep_pace_with_the_link(spool, status, stop, batch_max)?;
            }
            // No sequence numbers: the spool's disk is full and the frames went live only.
            if let Some(f) = batch.last() {
                status.recorded(f, batch.len() as u64, seqs.last().copied());
            }
            batch.clear();
            Ok(())
        };
    // The session version the spool was last told about (`None`: none yet, or it ended).
    let mut told: Option<u64> = None;
    while !stop.load(Ordering::Relaxed) && options.limit.is_none_or(|l| done < l) {
        let frame = match source.next()? {
            Next::Frame(f) => *f,
            Next::SessionEnded => {
                flush(&mut batch, done)?;
                mark(spool, &pitbox_schema::wire::SimSession::ended());
                told = None;
                continue;
            }
            Next::End => {
                flush(&mut batch, done)?;
                mark(spool, &pitbox_schema::wire::SimSession::ended());
                return Ok(done);
            }
        };
        let version = source.session_version();
        if told != Some(version) {
            // The frames before it belong to the session before: they go to the spool first.
            flush(&mut batch, done)?;
            mark(spool, &source.info().sim_session());
            told = Some(version);
        }
        if let Some(speed) = paced {
            let t = frame.sample.session_time;
            let (start, t0) = *clock.get_or_insert((Instant::now(), t));
            let jumped = last_t.is_some_and(|l| t - l > pitbox_schema::timing::MAX_GAP_SECS);
            last_t = Some(t);
            if t < t0 || jumped {
                // A new session, or a jump ahead: start the clock again from this frame.
                clock = Some((Instant::now(), t));
            } else {
                let due = start + Duration::from_secs_f64((t - t0) / speed);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
        }
        batch.push(frame);
        done += 1;
        if batch.len() >= batch_max || last_flush.elapsed() >= Duration::from_millis(50) {
            flush(&mut batch, done)?;
            last_flush = Instant::now();
        }
    }
    flush(&mut batch, done)?;
    Ok(done)
}

/// Marks the sim session in the spool. A mark that cannot be written (a full disk) is not worth
/// stopping the recording for: the frames still go, in the session the runtime knew before.
fn mark(spool: &Spool, session: &pitbox_schema::wire::SimSession) {
    if let Err(e) = spool.mark_session(session) {
        tracing::warn!(error = %e, ?session, "cannot mark the sim session in the spool");
    }
}

/// The frames went live only (the spool's disk is full): while the link is up, waits for the
/// uplink to take them, with room for the next `batch_max`, rather than outrun it and lose frames.
fn keep_pace_with_the_link(
    spool: &Spool,
    status: &Status,
    stop: &AtomicBool,
    batch_max: usize,
) -> Result<(), SpoolError> {
    let room = crate::spool::LIVE_MAX.saturating_sub(batch_max);
    while status.connected() && !stop.load(Ordering::Relaxed) && spool.live_depth()? > room as u64 {
        spool.wait_live_room(room, Duration::from_millis(100))?;
    }
    Ok(())
}

/// Runs [`record`] on its own thread.
pub fn spawn(
    mut source: Box<dyn TelemetrySource>,
    spool: Arc<Spool>,
    status: Arc<Status>,
    options: RecordOptions,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<u64, RecordError>> {
    std::thread::spawn(move || record(source.as_mut(), &spool, &status, &options, &stop))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames 1/60 s apart with a 60 s jump in session time after the 30th.
    struct Jumpy(u32);

    impl TelemetrySource for Jumpy {
        fn next_frame(&mut self) -> Result<Option<pitbox_schema::wire::TelemetryFrame>, SourceError> {
            self.0 += 1;
            let mut f = crate::synthetic::Synthetic::new(1).next_frame();
            f.sample.session_time = f64::from(self.0) / 60.0 + if self.0 > 30 { 60.0 } else { 0.0 };
            Ok((self.0 <= 60).then_some(f))
        }

        fn info(&self) -> crate::source::SourceInfo {
            crate::source::SourceInfo::default()
        }
    }

    #[test]
    fn a_jump_ahead_in_session_time_is_not_waited_out() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 10_000).unwrap();
        let status = Status::default();
        let options = RecordOptions { speed: Some(1.0), progress_key: None, limit: None };
        let started = Instant::now();
        let n = record(&mut Jumpy(0), &spool, &status, &options, &AtomicBool::new(false)).unwrap();
        assert_eq!(n, 60);
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    /// The recorder does not end when the spool's disk is full (a real "database or disk is
    /// full", the database capped at its size): every frame is recorded, live only past the point
    /// where thinning freed nothing, and the status says so.
    #[test]
    fn a_full_spool_disk_does_not_stop_the_recording() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 10_000).unwrap();
        let status = Status::default();
        let mut car = crate::synthetic::Synthetic::new(2);
        let options = RecordOptions { speed: None, progress_key: Some("replay".into()), limit: Some(30) };
        assert_eq!(record(&mut car, &spool, &status, &options, &AtomicBool::new(false)).unwrap(), 30);
        spool.cap_pages(spool.pages().unwrap()).unwrap();
        let options = RecordOptions { limit: Some(500), ..options };
        let n = record(&mut car, &spool, &status, &options, &AtomicBool::new(false)).unwrap();
        assert_eq!(n, 500);
        assert!(spool.unspooled());
        let s = status.snapshot();
        assert_eq!(s.recorded, 500);
        assert!(s.unspooled, "the status says the spool's disk is full");
        // Thinned first (every other of the oldest half), then nothing more spooled.
        assert!(spool.depth().unwrap() < 30);
        assert_eq!(spool.live_depth().unwrap(), 470);
        assert_eq!(spool.get_meta("replay").unwrap().as_deref(), Some("30"));
    }
}
