//! The live sim as a telemetry source, the part that is the same on every OS. A [`LiveFeed`]
//! yields the sim's latest row (as [`Channels`]), its session-info update counter and its
//! session-info YAML; [`Live`] turns that into frames at the sim's own pace (the feed blocks until
//! the next row, 60 Hz), re-reads the YAML when the counter changes (sector starts, track, car),
//! and notices new sessions: `SessionTime` going backwards, or the sim going away and coming back.
//! It never ends by itself: without a sim it keeps waiting for one, logging each change of state
//! with `tracing`. [`LiveSource`] is its boxed, `Send` form behind [`TelemetrySource`]; its
//! [`TelemetrySource::next`] also says when a sim session ended (before the first frame of the
//! next one), and its [`TelemetrySource::session_version`] changes with track, car and session
//! number, so the recorder marks each session in the spool.
//!
//! Feeds:
//! - Windows: iRacing's shared memory ([`LiveSource::iracing`]): `iracing-telem` finds the sim,
//!   waits on its data-ready event and notices it stop; the rows are read by a [`MapFeed`] over a
//!   read-only view of the same map (the code, and all `unsafe`, lives in `platform/windows/`). On
//!   other OSes [`iracing_source`] says that the live iRacing source runs on Windows only.
//! - Any OS: our own parser over an image of the live map ([`MapFeed`], [`LiveSource::from_map`]):
//!   a dump, or any [`Source`] the sim writes into. This is how the logic is tested on Linux.
//!
//! ```no_run
//! use pitbox_driver::source::TelemetrySource;
//! # fn main() -> Result<(), pitbox_driver::source::SourceError> {
//! let mut live = pitbox_driver::live::iracing_source()?; // Err on Linux and macOS
//! while let Some(frame) = live.next_frame()? {
//!     println!("{:.3} s {:.0} km/h", frame.sample.session_time, frame.sample.speed);
//! }
//! # Ok(()) }
//! ```
//!
//! Reads no env vars.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use pitbox_schema::wire::TelemetryFrame;

use crate::ibt::{Header, Ibt, IbtError, Layout, Row, SampleConverter, SessionInfo, Source, HEADER_LEN};
use crate::source::{Next, SourceError, SourceInfo, TelemetrySource};

pub use crate::ibt::sample::Channels;

/// What [`iracing_source`] answers on an OS without iRacing.
pub const WINDOWS_ONLY: &str = "the live iRacing source runs on Windows only (iRacing's shared memory); \
                                on this OS use --source ibt:PATH or --source synthetic";

/// What one [`LiveFeed::poll`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// A new row, readable with [`LiveFeed::row`].
    Row,
    /// The sim is there but wrote no new row during the feed's wait.
    Idle,
    /// No sim: not running, not in a session, or its session just ended. The next [`Poll::Row`]
    /// starts a new session.
    NoSim,
}

/// The sim as [`Live`] sees it. Implementations block in [`LiveFeed::poll`] for at most a short
/// while (a few frames with a sim, about a second without), so that the caller stays responsive.
pub trait LiveFeed: Send {
    /// The latest row.
    type Row<'a>: Channels
    where
        Self: 'a;

    /// Waits for the sim's next row.
    fn poll(&mut self) -> Poll;

    /// The row the last [`Poll::Row`] announced; `None` before the first or without a sim.
    fn row(&self) -> Option<Self::Row<'_>>;

    /// The sim's session-info update counter (it changes whenever the YAML does).
    fn session_info_update(&self) -> i32;

    /// The session-info YAML, decoded to UTF-8 and repaired the way pyirsdk does (ready for
    /// [`SessionInfo::from_yaml`]); `None` without a sim.
    fn session_info_yaml(&self) -> Option<String>;

    /// Names the feed in logs and in [`SourceInfo::kind`].
    fn kind(&self) -> &'static str;
}

/// Whether [`Live`] has a sim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveState {
    WaitingForSim,
    Connected,
}

/// Counters for status screens and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveStatus {
    pub state: LiveState,
    /// Sessions seen since the source started (each connection and each `SessionTime` reset).
    pub sessions: u64,
    /// The session-info counter of the YAML in use.
    pub session_info_update: Option<i32>,
    /// Times the YAML was read.
    pub session_info_reads: u64,
    /// Frames produced.
    pub frames: u64,
    /// The sector starts in use (0–1), from the YAML.
    pub sector_starts: Vec<f32>,
}

/// Turns a [`LiveFeed`] into frames; see the module docs.
pub struct Live<F> {
    feed: F,
    converter: SampleConverter,
    state: LiveState,
    info_update: Option<i32>,
    info_reads: u64,
    last_session_time: Option<f64>,
    sessions: u64,
    frames: u64,
    track: Option<String>,
    car: Option<String>,
    /// `SessionNum` of the latest row, and the session types the YAML lists.
    session_num: Option<i32>,
    session_info: Option<SessionInfo>,
    /// Changes whenever track, car or session type may have (see [`TelemetrySource::session_version`]).
    version: u64,
    /// The sim session ended (the sim stopped, or a new session began): not yet taken.
    ended: bool,
}

impl<F: LiveFeed> Live<F> {
    pub fn new(feed: F) -> Self {
        tracing::info!(feed = feed.kind(), "live telemetry: waiting for the sim");
        Live {
            feed,
            converter: SampleConverter::live(None),
            state: LiveState::WaitingForSim,
            info_update: None,
            info_reads: 0,
            last_session_time: None,
            sessions: 0,
            frames: 0,
            track: None,
            car: None,
            session_num: None,
            session_info: None,
            version: 0,
            ended: false,
        }
    }

    /// Whether the sim session ended since this was last asked.
    pub fn take_ended(&mut self) -> bool {
        std::mem::take(&mut self.ended)
    }

    pub fn session_version(&self) -> u64 {
        self.version
    }

    /// The feed (tests drive a [`MapFeed`]'s source through it).
    pub fn feed(&self) -> &F {
        &self.feed
    }

    pub fn status(&self) -> LiveStatus {
        LiveStatus {
            state: self.state,
            sessions: self.sessions,
            session_info_update: self.info_update,
            session_info_reads: self.info_reads,
            frames: self.frames,
            sector_starts: self.converter.sector_starts().to_vec(),
        }
    }

    pub fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: self.feed.kind(),
            track: self.track.clone(),
            car: self.car.clone(),
            session_type: self
                .session_info
                .as_ref()
                .and_then(|i| i.session_type(self.session_num.map(i64::from))),
            frames: None,
        }
    }

    /// Polls the feed once: the next frame, or `None` when the sim wrote nothing new or is not
    /// there (the feed has waited a little first).
    pub fn poll_frame(&mut self) -> Option<TelemetryFrame> {
        match self.feed.poll() {
            Poll::NoSim => {
                if self.state == LiveState::Connected {
                    tracing::info!(
                        frames = self.frames,
                        track = ?self.track,
                        "the sim stopped or left its session; waiting for it"
                    );
                    self.state = LiveState::WaitingForSim;
                    self.ended = true;
                    self.info_update = None;
                    self.last_session_time = None;
                }
                None
            }
            Poll::Idle => None,
            Poll::Row => self.on_row(),
        }
    }

    fn on_row(&mut self) -> Option<TelemetryFrame> {
        let counter = self.feed.session_info_update();
        let (session_time, session_num) = {
            let row = self.feed.row()?;
            (row.f64("SessionTime").filter(|t| t.is_finite()), row.i32("SessionNum"))
        };
        let connected = self.state == LiveState::WaitingForSim;
        let rewound = matches!((session_time, self.last_session_time), (Some(t), Some(last)) if t < last);
        if connected || rewound {
            // A rewind is a new session of a sim that never stopped: the old one ended here.
            self.ended |= rewound;
            self.version += 1;
            self.sessions += 1;
            self.state = LiveState::Connected;
            // a different session may be on another track: nothing of the old one carries over
            self.converter = SampleConverter::live(None);
            self.track = None;
            self.car = None;
            self.session_info = None;
            self.read_session_info(counter);
            tracing::info!(
                session = self.sessions,
                reason = if connected { "sim connected" } else { "SessionTime went backwards" },
                session_num,
                track = ?self.track,
                car = ?self.car,
                "new live session"
            );
        } else if self.info_update != Some(counter) {
            self.read_session_info(counter);
        }
        if session_num.is_some() && session_num != self.session_num {
            // Practice → qualifying → race: the session type may have changed.
            self.version += 1;
        }
        self.session_num = session_num.or(self.session_num);
        let row = self.feed.row()?;
        let frame = self.converter.frame(&row, None, Utc::now());
        if session_time.is_some() {
            self.last_session_time = session_time;
        }
        self.frames += 1;
        Some(frame)
    }

    /// Reads the YAML now. `counter` was read before it, so a change while it is read shows as a
    /// counter change on the next row and the YAML is read again.
    fn read_session_info(&mut self, counter: i32) {
        self.info_update = Some(counter);
        self.info_reads += 1;
        let Some(text) = self.feed.session_info_yaml() else {
            tracing::debug!(counter, "no session info yet");
            return;
        };
        match SessionInfo::from_yaml(&text) {
            Ok(info) => {
                self.converter.set_sector_starts(info.sector_starts());
                self.track = info.track().map(str::to_owned);
                self.car = info.car();
                self.session_info = Some(info);
                self.version += 1;
                tracing::debug!(
                    counter,
                    sectors = self.converter.sector_starts().len(),
                    track = ?self.track,
                    "session info read"
                );
            }
            Err(e) => tracing::warn!(counter, error = %e, "session info unreadable; keeping what was known"),
        }
    }
}

/// [`Live`] with its feed type erased (a feed's row type makes [`LiveFeed`] itself not
/// object-safe).
trait ErasedLive: Send {
    fn poll_frame(&mut self) -> Option<TelemetryFrame>;
    fn status(&self) -> LiveStatus;
    fn info(&self) -> SourceInfo;
    fn take_ended(&mut self) -> bool;
    fn session_version(&self) -> u64;
}

impl<F: LiveFeed> ErasedLive for Live<F> {
    fn poll_frame(&mut self) -> Option<TelemetryFrame> {
        Live::poll_frame(self)
    }
    fn take_ended(&mut self) -> bool {
        Live::take_ended(self)
    }
    fn session_version(&self) -> u64 {
        Live::session_version(self)
    }
    fn status(&self) -> LiveStatus {
        Live::status(self)
    }
    fn info(&self) -> SourceInfo {
        Live::info(self)
    }
}

/// The live sim as a [`TelemetrySource`]: `next_frame` blocks until the sim's next row (waiting
/// through the sim stopping and starting) and never returns `None`.
pub struct LiveSource {
    live: Box<dyn ErasedLive>,
    /// The first frame of a new session, held while its predecessor's end is told.
    pending: Option<TelemetryFrame>,
}

impl LiveSource {
    /// A source over any feed.
    pub fn new<F: LiveFeed + 'static>(feed: F) -> LiveSource {
        LiveSource { live: Box::new(Live::new(feed)), pending: None }
    }

    /// iRacing's shared memory, through `iracing-telem`. Nothing is opened yet: the source
    /// connects when the sim runs, and reconnects whenever it comes back.
    #[cfg(windows)]
    pub fn iracing() -> LiveSource {
        LiveSource::new(crate::platform::windows::IracingFeed::new())
    }

    /// Our parser over an image of the live map, polled every 1/60 s (see [`MapFeed`]).
    pub fn from_map<S: Source + Send + Sync + 'static>(source: S) -> LiveSource {
        LiveSource::new(MapFeed::new(source))
    }

    /// Polls once: the next frame, or `None` when there was no new row (see [`Live::poll_frame`]).
    pub fn poll_frame(&mut self) -> Option<TelemetryFrame> {
        self.live.poll_frame()
    }

    pub fn status(&self) -> LiveStatus {
        self.live.status()
    }
}

/// The live iRacing source for `--source iracing`: on Windows [`LiveSource::iracing`], elsewhere
/// [`SourceError::Unavailable`] with [`WINDOWS_ONLY`].
pub fn iracing_source() -> Result<LiveSource, SourceError> {
    #[cfg(windows)]
    {
        Ok(LiveSource::iracing())
    }
    #[cfg(not(windows))]
    {
        Err(SourceError::Unavailable(WINDOWS_ONLY.into()))
    }
}

impl TelemetrySource for LiveSource {
    fn next_frame(&mut self) -> Result<Option<TelemetryFrame>, SourceError> {
        loop {
            if let Next::Frame(f) = self.next()? {
                return Ok(Some(*f));
            }
        }
    }

    /// Blocks until the sim's next row, or until its session ended (it stopped, or a new session
    /// began: then the end comes first and the new session's first frame after it).
    fn next(&mut self) -> Result<Next, SourceError> {
        loop {
            if let Some(f) = self.pending.take() {
                return Ok(Next::Frame(Box::new(f)));
            }
            let frame = self.live.poll_frame();
            if self.live.take_ended() {
                self.pending = frame;
                return Ok(Next::SessionEnded);
            }
            if let Some(f) = frame {
                return Ok(Next::Frame(Box::new(f)));
            }
        }
    }

    fn session_version(&self) -> u64 {
        self.live.session_version()
    }

    /// Track and car of the current session (or the last one, while waiting for the sim; none
    /// before the first).
    fn info(&self) -> SourceInfo {
        self.live.info()
    }

    fn is_live(&self) -> bool {
        true
    }

    /// A live sim cannot be skipped through: this does nothing.
    fn skip(&mut self, _n: u64) -> Result<(), SourceError> {
        Ok(())
    }
}

/// Our own parser over an image of iRacing's live map: the header is read on every poll
/// (connected bit, session-info counter), the newest buffer copied with [`Ibt::latest_row`], and the
/// layout parsed again when the sim changes it. Ticks going backwards end the session, as
/// `iracing-telem` does. Works on any OS over any [`Source`]: a dump in tests, the mapped view of
/// the real map on Windows.
pub struct MapFeed<S> {
    source: Arc<S>,
    ibt: Option<Ibt<Arc<S>>>,
    wait: Duration,
    counter: i32,
    last_tick: Option<i32>,
    /// The newest row: (index, tick, bytes).
    latest: Option<(usize, Option<i32>, Vec<u8>)>,
    /// Why there is no sim, when that was logged (logged once per reason).
    no_sim: Option<String>,
}

impl<S: Source> MapFeed<S> {
    /// A feed that sleeps 1/60 s when the sim wrote nothing new.
    pub fn new(source: S) -> Self {
        MapFeed {
            source: Arc::new(source),
            ibt: None,
            wait: Duration::from_micros(16_667),
            counter: 0,
            last_tick: None,
            latest: None,
            no_sim: None,
        }
    }

    /// Sleeps `wait` instead when there is nothing new (tests use zero).
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The bytes the feed reads.
    pub fn source(&self) -> &S {
        &self.source
    }

    fn header(&self) -> Result<Header, IbtError> {
        let mut bytes = [0u8; HEADER_LEN as usize];
        self.source.read_exact_at(0, &mut bytes)?;
        Header::parse(&bytes)
    }

    fn no_sim(&mut self, why: String) -> Poll {
        if self.no_sim.as_deref() != Some(why.as_str()) {
            tracing::debug!(reason = %why, "live map: no sim");
            self.no_sim = Some(why);
        }
        self.ibt = None;
        self.last_tick = None;
        self.latest = None;
        std::thread::sleep(self.wait);
        Poll::NoSim
    }

    /// The newest row as (index, tick, bytes), parsing the layout again when the sim changed it.
    fn newest(&mut self) -> Result<(usize, Option<i32>, Vec<u8>), IbtError> {
        for _ in 0..2 {
            let ibt = match self.ibt.take() {
                Some(ibt) => ibt,
                None => Ibt::parse_as(Arc::clone(&self.source), Layout::Live)?,
            };
            let newest = match ibt.latest_row() {
                Ok(row) => Ok((row.index(), row.tick_count(), row.bytes().to_vec())),
                Err(e) => Err(e),
            };
            match newest {
                Err(IbtError::LayoutChanged) => continue,
                other => {
                    self.ibt = Some(ibt);
                    return other;
                }
            }
        }
        Err(IbtError::LayoutChanged)
    }
}

impl<S: Source + Send + Sync> LiveFeed for MapFeed<S> {
    type Row<'a>
        = Row<'a>
    where
        Self: 'a;

    fn poll(&mut self) -> Poll {
        let header = match self.header() {
            Ok(h) => h,
            Err(e) => return self.no_sim(format!("unreadable header: {e}")),
        };
        if !header.is_connected() {
            return self.no_sim("the sim is not connected".into());
        }
        let (index, tick, bytes) = match self.newest() {
            Ok(newest) => newest,
            Err(e) => return self.no_sim(format!("unreadable map: {e}")),
        };
        self.no_sim = None;
        match (tick, self.last_tick) {
            (Some(t), Some(last)) if t == last => {
                std::thread::sleep(self.wait);
                Poll::Idle
            }
            (Some(t), Some(last)) if t < last => self.no_sim(format!("tick went back from {last} to {t}")),
            _ => {
                self.counter = header.session_info_update;
                self.last_tick = tick;
                self.latest = Some((index, tick, bytes));
                Poll::Row
            }
        }
    }

    fn row(&self) -> Option<Row<'_>> {
        let (index, tick, bytes) = self.latest.as_ref()?;
        Some(Row::new(self.ibt.as_ref()?.vars(), *index, *tick, bytes.clone()))
    }

    fn session_info_update(&self) -> i32 {
        self.counter
    }

    fn session_info_yaml(&self) -> Option<String> {
        self.ibt.as_ref()?.session_info_text().ok()
    }

    fn kind(&self) -> &'static str {
        "live-map"
    }
}
