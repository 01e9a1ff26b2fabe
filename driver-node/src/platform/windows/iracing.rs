//! [`IracingFeed`]: the live sim on Windows as a [`LiveFeed`]. `iracing-telem` finds the sim
//! (retrying about once a second while there is none), blocks on its data-ready event (60 Hz) and
//! tells when its session expires (the sim stopped, or restarted with fresh ticks); the same client
//! then waits for the next one. Rows, channels and the session-info YAML are read by our own parser
//! through a read-only view of the same map ([`MapFeed`] over [`SharedMemory`], the code the Linux
//! tests run against a dump), not with `Session::var_value`: that builds `&[i32]`/`&[f32]` slices
//! at the row's own offsets, which iRacing does not align (57 of the 63 array channels of the
//! fixture map, `CarIdxLap` at byte 207), undefined behaviour that debug builds stop with a panic.
//! Reads no env vars.

use std::time::Duration;

use iracing_telem::{Client, DataUpdateResult, Session};

use super::shared_memory::{SharedMemory, MAP_NAME};
use crate::ibt::Row;
use crate::live::{LiveFeed, MapFeed, Poll};

/// How long one poll waits for the sim's next row (a row is due every 16.7 ms).
const DATA_WAIT: Duration = Duration::from_millis(250);
/// How long one poll waits for a sim to appear.
const CONNECT_WAIT: Duration = Duration::from_secs(1);

/// A session of the sim: iracing-telem's handle on it and our reader of the same map.
struct Connected {
    session: Session,
    map: MapFeed<SharedMemory>,
}

/// The live sim through `iracing-telem` and our own view of its map.
pub(crate) struct IracingFeed {
    client: Client,
    connected: Option<Connected>,
    connect_wait: Duration,
    data_wait: Duration,
}

// SAFETY: `Client` and `Session` are not `Send` only because they share an `Rc<Connection>`. Every
// clone of that `Rc` (the client's, and the one in the session it made) is owned by this struct,
// which never hands one out, so moving the struct moves all clones together and their count is
// never touched from two threads at once. The connection itself holds a mapped view and kernel
// handles (file mapping, event), which any thread of the process may use.
unsafe impl Send for IracingFeed {}

impl IracingFeed {
    pub(crate) fn new() -> Self {
        IracingFeed {
            client: Client::new(),
            connected: None,
            connect_wait: CONNECT_WAIT,
            data_wait: DATA_WAIT,
        }
    }

    /// Shorter waits (tests).
    #[cfg(test)]
    pub(crate) fn with_waits(mut self, connect: Duration, data: Duration) -> Self {
        self.connect_wait = connect;
        self.data_wait = data;
        self
    }

    /// Waits for a session; on one, opens our view of the map and reads its first row.
    fn connect(&mut self) -> Poll {
        // SAFETY: iracing-telem opens iRacing's named mapping and event and reads the mapped header
        // as the SDK's C structs, which is what the sim writes there.
        let Some(session) = (unsafe { self.client.wait_for_session(self.connect_wait) }) else {
            return Poll::NoSim;
        };
        let memory = match SharedMemory::open(MAP_NAME) {
            Ok(memory) => memory,
            Err(e) => {
                tracing::warn!(error = %e, "iRacing is running but its telemetry map cannot be opened");
                return Poll::NoSim;
            }
        };
        let mut map = MapFeed::new(memory).with_wait(Duration::ZERO);
        let poll = map.poll();
        if poll == Poll::Row {
            self.connected = Some(Connected { session, map });
        }
        poll
    }
}

impl LiveFeed for IracingFeed {
    type Row<'a> = Row<'a>;

    fn poll(&mut self) -> Poll {
        let Some(connected) = self.connected.as_mut() else { return self.connect() };
        // SAFETY: as in `connect`; this copies the newest row when its tick is new, and reports the
        // session expired when the sim clears its connected bit or its ticks go back.
        match unsafe { connected.session.wait_for_data(self.data_wait) } {
            DataUpdateResult::Updated => match connected.map.poll() {
                // the sim is stopping between iracing-telem's read and ours
                Poll::NoSim => {
                    self.connected = None;
                    Poll::NoSim
                }
                poll => poll,
            },
            DataUpdateResult::NoUpdate => Poll::Idle,
            DataUpdateResult::FailedToCopyRow => {
                tracing::debug!("iRacing overwrote the row while it was copied; next one");
                Poll::Idle
            }
            DataUpdateResult::SessionExpired => {
                self.connected = None;
                Poll::NoSim
            }
        }
    }

    fn row(&self) -> Option<Row<'_>> {
        self.connected.as_ref()?.map.row()
    }

    fn session_info_update(&self) -> i32 {
        self.connected.as_ref().map_or(0, |c| c.map.session_info_update())
    }

    fn session_info_yaml(&self) -> Option<String> {
        self.connected.as_ref()?.map.session_info_yaml()
    }

    fn kind(&self) -> &'static str {
        "iracing"
    }
}
