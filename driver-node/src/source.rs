//! Telemetry sources behind one trait: the live sim (Windows), a `.ibt` recording, or the
//! synthetic driver. Sources are untimed — each frame carries its session time — and the recorder
//! paces them; a live source blocks until its next sample instead. Reads no env vars.

use pitbox_schema::wire::{SimSession, TelemetryFrame};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Read(String),
}

/// What a source says about the session it reads.
#[derive(Debug, Clone, Default)]
pub struct SourceInfo {
    pub kind: &'static str,
    pub track: Option<String>,
    pub car: Option<String>,
    /// The sim's session type (`Practice`, `Qualify`, `Race`, …) from the session info.
    pub session_type: Option<String>,
    /// Frames in total, when known (recordings).
    pub frames: Option<u64>,
}

impl SourceInfo {
    /// The sim session the source is in, as the runtime is told it.
    pub fn sim_session(&self) -> SimSession {
        SimSession {
            track: self.track.clone(),
            car: self.car.clone(),
            session_type: self.session_type.clone(),
            ..SimSession::default()
        }
    }
}

/// What a source has next.
#[derive(Debug)]
pub enum Next {
    Frame(Box<TelemetryFrame>),
    /// The sim session ended (the sim closed or left it); the source goes on, and frames of a new
    /// session may follow.
    SessionEnded,
    /// The source has ended (a recording's last row).
    End,
}

pub trait TelemetrySource: Send {
    /// The next frame; `None` when the source has ended (a recording's last row).
    fn next_frame(&mut self) -> Result<Option<TelemetryFrame>, SourceError>;

    /// The next frame, or the end of the sim session or of the source. Sources that only end
    /// (recordings, the synthetic driver) answer with [`TelemetrySource::next_frame`].
    fn next(&mut self) -> Result<Next, SourceError> {
        Ok(match self.next_frame()? {
            Some(f) => Next::Frame(Box::new(f)),
            None => Next::End,
        })
    }

    /// A number that changes whenever what [`TelemetrySource::info`] says about the session
    /// (track, car, session type) may have changed: cheap to ask after every frame. Sources whose
    /// session never changes keep 0.
    fn session_version(&self) -> u64 {
        0
    }

    fn info(&self) -> SourceInfo;

    /// Whether the source runs in real time by itself (live sim) or must be paced.
    fn is_live(&self) -> bool {
        false
    }

    /// Skips the first `n` frames (a replay resuming after a restart).
    fn skip(&mut self, n: u64) -> Result<(), SourceError> {
        for _ in 0..n {
            if self.next_frame()?.is_none() {
                break;
            }
        }
        Ok(())
    }
}

impl TelemetrySource for crate::synthetic::Synthetic {
    fn next_frame(&mut self) -> Result<Option<TelemetryFrame>, SourceError> {
        Ok(Some(crate::synthetic::Synthetic::next_frame(self)))
    }

    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: "synthetic",
            track: Some(format!("PitBox Ring ({:.0} m)", self.track_length())),
            car: Some("GT3 (synthetic)".into()),
            session_type: Some("Practice".into()),
            frames: None,
        }
    }
}

/// The type of the session a recording holds: the one its first row's `SessionNum` names.
fn ibt_session_type(
    ibt: &crate::ibt::Ibt<crate::ibt::FileSource>,
    info: Option<&crate::ibt::SessionInfo>,
) -> Option<String> {
    let number = ibt.row(0).ok().and_then(|r| r.i32("SessionNum")).map(i64::from);
    info?.session_type(number)
}

/// A `.ibt` recording as a source: its rows, converted, in order; optionally only the first
/// `laps` laps; optionally over and over ([`IbtSource::looping`]).
pub struct IbtSource {
    ibt: crate::ibt::Ibt<crate::ibt::FileSource>,
    converter: crate::ibt::SampleConverter,
    next: usize,
    end: usize,
    info: SourceInfo,
    fallback: chrono::DateTime<chrono::Utc>,
    looping: bool,
    /// Passes finished so far.
    passes: u32,
    /// Added to `SessionTime` (and the timestamp) of this pass: the time of the passes before.
    time_offset: f64,
    /// Added to the lap counters of this pass: the laps of the passes before.
    lap_offset: i32,
    /// (`SessionTime`, `Lap`) of the recording's first and last rows as read, unshifted.
    first: Option<(f64, i32)>,
    last: Option<(f64, i32)>,
}

/// Session seconds between one pass of a looping replay and the next: longer than the lap timer
/// times across ([`pitbox_schema::timing::MAX_GAP_SECS`]), so the lap cut by the seam is dropped rather
/// than timed from the end of one pass to the start of the next (the car is, in effect, towed back
/// to where the recording starts).
pub const LOOP_SEAM_SECS: f64 = pitbox_schema::timing::MAX_GAP_SECS + 1.0;

impl IbtSource {
    pub fn open(path: &std::path::Path, laps: Option<u32>) -> Result<IbtSource, SourceError> {
        let ibt = crate::ibt::Ibt::open(path)
            .map_err(|e| SourceError::Unavailable(format!("{}: {e}", path.display())))?;
        let converter = crate::ibt::SampleConverter::new(&ibt);
        let mut end = ibt.record_count();
        if let Some(n) = laps {
            let all = crate::ibt::laps(&ibt).map_err(|e| SourceError::Read(e.to_string()))?;
            // Stop after the last row of the n-th lap that the recording holds.
            if let Some(lap) = all.get(n as usize) {
                end = lap.first_row;
            }
        }
        let session = ibt.session_info().ok();
        let info = SourceInfo {
            kind: "ibt",
            track: session.as_ref().and_then(|s| s.track().map(str::to_owned)),
            car: session.as_ref().and_then(|s| s.car()),
            session_type: ibt_session_type(&ibt, session.as_ref()),
            frames: Some(end as u64),
        };
        Ok(IbtSource {
            ibt,
            converter,
            next: 0,
            end,
            info,
            fallback: chrono::Utc::now(),
            looping: false,
            passes: 0,
            time_offset: 0.0,
            lap_offset: 0,
            first: None,
            last: None,
        })
    }

    /// Replays the recording again and again instead of ending: each pass carries on the session
    /// clock, the timestamps and the lap counters of the one before, so a runtime sees one long
    /// session whose laps keep coming (the lap across each seam is incomplete).
    pub fn looping(mut self, on: bool) -> IbtSource {
        self.looping = on && self.end > 0;
        if self.looping {
            self.info.frames = None;
        }
        self
    }

    /// Passes of the recording finished so far.
    pub fn passes(&self) -> u32 {
        self.passes
    }

    /// Starts the next pass after the row just read was the last one.
    fn wrap(&mut self) {
        let (Some((t0, lap0)), Some((t1, lap1))) = (self.first, self.last) else { return };
        self.passes += 1;
        self.next = 0;
        self.time_offset += (t1 - t0).max(0.0) + LOOP_SEAM_SECS;
        self.lap_offset = self.lap_offset.saturating_add((lap1 - lap0).max(0) + 1);
    }
}

impl TelemetrySource for IbtSource {
    fn next_frame(&mut self) -> Result<Option<TelemetryFrame>, SourceError> {
        if self.next >= self.end {
            if !self.looping {
                return Ok(None);
            }
            self.wrap();
        }
        let row = self.ibt.row(self.next).map_err(|e| SourceError::Read(e.to_string()))?;
        let mut frame = self.converter.frame(&row, None, self.fallback);
        let raw = (frame.sample.session_time, frame.sample.lap);
        if self.next == 0 && self.passes == 0 {
            self.first = Some(raw);
        }
        self.last = Some(raw);
        self.next += 1;
        if self.passes > 0 {
            let s = &mut frame.sample;
            s.session_time += self.time_offset;
            s.lap = s.lap.saturating_add(self.lap_offset);
            if let Some(cars) = s.cars.as_mut() {
                // Cars not in the world (-1) stay so.
                cars.lap.iter_mut().filter(|l| **l >= 0).for_each(|l| *l = l.saturating_add(self.lap_offset));
            }
            let shift = chrono::TimeDelta::try_milliseconds((self.time_offset * 1000.0).round() as i64)
                .unwrap_or(chrono::TimeDelta::zero());
            frame.timestamp = frame.timestamp.checked_add_signed(shift).unwrap_or(frame.timestamp);
        }
        Ok(Some(frame))
    }

    fn info(&self) -> SourceInfo {
        self.info.clone()
    }

    fn skip(&mut self, n: u64) -> Result<(), SourceError> {
        if self.looping {
            // Rows must be read to know where the passes start and end.
            for _ in 0..n {
                self.next_frame()?;
            }
            return Ok(());
        }
        self.next = self.next.saturating_add(usize::try_from(n).unwrap_or(usize::MAX)).min(self.end);
        Ok(())
    }
}
