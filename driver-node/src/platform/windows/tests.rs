//! The Windows feed (iracing-telem + our view of the map) against a stand-in sim: the test creates
//! iRacing's named file mapping and data-ready event (as the sim does), fills the mapping with a
//! dump of a real live map (Monza, Mercedes W13), then plays the sim: new rows, a session-info
//! update, `SessionTime` going back, stopping and starting again. Runs on Windows or under wine
//! (`tools/windows-check.sh`).

use std::ptr;
use std::time::Duration;

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingA, MapViewOfFile, UnmapViewOfFile, FILE_MAP_ALL_ACCESS, MEMORY_MAPPED_VIEW_ADDRESS,
    PAGE_READWRITE,
};
use windows_sys::Win32::System::Threading::{CreateEventA, SetEvent};

use super::shared_memory::{SharedMemory, MAP_NAME};
use super::IracingFeed;
use crate::ibt::{Ibt, Layout, SampleConverter, Source};
use crate::live::{Live, LiveFeed, LiveState};

const DUMP: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/ibt/live-memmap-monza_w13.bin");
/// Header offsets (see fixtures/README.md).
const STATUS: usize = 4;
const SESSION_INFO_UPDATE: usize = 12;
/// The dump's three row buffers (ticks 2004, 2005, 2003: buffer 1 is the newest).
const BUFS: [usize; 3] = [1_114_224, 1_138_800, 1_163_376];
/// Where `SessionTime` (a double) sits in a row of this dump.
const SESSION_TIME: usize = 0;
const ROW_LEN: usize = 8154;

fn tick_offset(buf: usize) -> usize {
    48 + 16 * buf
}

/// iRacing's side of the shared memory.
struct StandInSim {
    mapping: HANDLE,
    view: *mut u8,
    len: usize,
    event: HANDLE,
}

impl StandInSim {
    fn start(bytes: &[u8]) -> StandInSim {
        let len = bytes.len();
        // SAFETY: plain Win32 calls with NUL-terminated names; results are checked before use.
        unsafe {
            let mapping = CreateFileMappingA(
                INVALID_HANDLE_VALUE,
                ptr::null(),
                PAGE_READWRITE,
                0,
                u32::try_from(len).unwrap(),
                MAP_NAME.as_ptr().cast(),
            );
            assert!(!mapping.is_null(), "CreateFileMappingA failed");
            let view = MapViewOfFile(mapping, FILE_MAP_ALL_ACCESS, 0, 0, len).Value.cast::<u8>();
            assert!(!view.is_null(), "MapViewOfFile failed");
            let event = CreateEventA(ptr::null(), 0, 0, c"Local\\IRSDKDataValidEvent".as_ptr().cast());
            assert!(!event.is_null(), "CreateEventA failed");
            let sim = StandInSim { mapping, view, len, event };
            sim.write(0, bytes);
            sim
        }
    }

    /// Writes through the raw view (the feed reads the same pages through its own view).
    fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.len);
        // SAFETY: in bounds of our mapped view (checked above); raw-pointer writes, no references.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), self.view.add(offset), bytes.len()) }
    }

    fn read(&self, offset: usize, len: usize) -> Vec<u8> {
        assert!(offset + len <= self.len);
        let mut out = vec![0u8; len];
        // SAFETY: in bounds of our mapped view (checked above).
        unsafe { ptr::copy_nonoverlapping(self.view.add(offset), out.as_mut_ptr(), len) }
        out
    }

    fn write_i32(&self, offset: usize, v: i32) {
        self.write(offset, &v.to_le_bytes());
    }

    /// A new row in buffer `buf`: `SessionTime` = `time`, the other channels copied from buffer 1.
    fn publish(&self, buf: usize, tick: i32, time: f64) {
        let row = self.read(BUFS[1], ROW_LEN);
        self.write(BUFS[buf], &row);
        self.write(BUFS[buf] + SESSION_TIME, &time.to_le_bytes());
        self.write_i32(tick_offset(buf), tick);
        // SAFETY: our own event handle.
        unsafe { SetEvent(self.event) };
    }
}

impl Drop for StandInSim {
    fn drop(&mut self) {
        // SAFETY: handles and view created in `start`, released once.
        unsafe {
            UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: self.view.cast() });
            CloseHandle(self.event);
            CloseHandle(self.mapping);
        }
    }
}

#[test]
fn iracing_feed_follows_a_stand_in_sim() {
    let bytes = std::fs::read(DUMP).unwrap_or_else(|e| panic!("fixture {DUMP}: {e}"));
    let ibt = Ibt::parse_as(bytes.as_slice(), Layout::Live).unwrap();
    assert_eq!(ibt.row_len(), ROW_LEN);
    let expected = SampleConverter::new(&ibt).sample(&ibt.latest_row().unwrap());

    // no sim yet: the feed keeps waiting
    let feed = IracingFeed::new().with_waits(Duration::ZERO, Duration::from_millis(50));
    let mut live = Live::new(feed);
    assert!(live.poll_frame().is_none());
    assert_eq!(live.status().state, LiveState::WaitingForSim);

    // the sim starts: the newest buffer (tick 2005) converts exactly as our parser converts it
    let sim = StandInSim::start(&bytes);
    let view = SharedMemory::open(MAP_NAME).unwrap();
    assert!(view.len() >= bytes.len() as u64);
    let mut head = [0u8; 8];
    view.read_exact_at(0, &mut head).unwrap();
    assert_eq!(head, bytes[..8]);
    assert!(view.read_exact_at(view.len() - 4, &mut head).is_err(), "reads past the view fail");
    drop(view);
    let frame = live.poll_frame().expect("a frame once the sim runs");
    assert_eq!(frame.sample, expected);
    assert!(frame.sample.validate().is_ok());
    assert_eq!(live.status().state, LiveState::Connected);
    assert_eq!(live.status().sessions, 1);
    assert_eq!(live.info().kind, "iracing");
    assert!(live.info().track.unwrap_or_default().contains("Monza"));
    assert_eq!(live.status().sector_starts, vec![0.0, 0.345492, 0.475864, 0.657524, 0.853068]);
    assert_eq!(live.feed().row().unwrap().bytes(), ibt.latest_row().unwrap().bytes());

    // nothing new: idle
    assert!(live.poll_frame().is_none());

    // a new row and a session-info update (sector 2 moves to 30 %)
    let yaml_at = ibt.header().session_info_offset as usize;
    let yaml =
        String::from_utf8_lossy(&sim.read(yaml_at, ibt.header().session_info_len as usize)).into_owned();
    let at = yaml.find("SectorStartPct: 0.345492").unwrap() + "SectorStartPct: ".len();
    sim.write(yaml_at + at, b"0.300000");
    sim.write_i32(SESSION_INFO_UPDATE, 4);
    sim.publish(2, 2006, 53.5);
    let frame = live.poll_frame().expect("the new row");
    assert_eq!(frame.sample.session_time, 53.5);
    let status = live.status();
    assert_eq!((status.sessions, status.session_info_update, status.session_info_reads), (1, Some(4), 2));
    assert_eq!(status.sector_starts[1], 0.3);

    // SessionTime going back is a new session
    sim.publish(0, 2007, 1.0);
    assert_eq!(live.poll_frame().expect("row").sample.session_time, 1.0);
    assert_eq!(live.status().sessions, 2);

    // the sim stops, then comes back: a third session, without a new feed
    sim.write_i32(STATUS, 0);
    assert!(live.poll_frame().is_none());
    assert_eq!(live.status().state, LiveState::WaitingForSim);
    assert!(live.poll_frame().is_none());
    sim.write_i32(STATUS, 1);
    sim.publish(1, 2008, 2.0);
    let frame = live.poll_frame().expect("a frame after the sim came back");
    assert_eq!(frame.sample.session_time, 2.0);
    assert_eq!((live.status().state, live.status().sessions), (LiveState::Connected, 3));
    assert_eq!(live.status().frames, 4);
    drop(sim);
}

#[test]
fn iracing_source_exists_on_windows() {
    use crate::source::TelemetrySource;
    let source = crate::live::iracing_source().unwrap();
    assert!(source.is_live());
    assert_eq!(source.info().kind, "iracing");
}

/// GDI capture as far as the desktop allows (under wine it depends on wine's display driver):
/// where a monitor is listed, the first one is captured whole at its size, and the converter reads
/// it; a region past the desktop's edge still opens (GDI pads it), an empty one is refused.
#[test]
fn gdi_capture_grabs_the_first_monitor() {
    use crate::video::capture::{Capture, SourceSpec};
    let monitors = super::capture::monitors();
    let Some(&(_, _, w, h)) = monitors.first() else {
        eprintln!("no monitor listed (headless wine?): GDI capture not exercised");
        return;
    };
    let mut cap = super::capture::GdiCapture::open(&SourceSpec::Screen(0)).unwrap();
    assert_eq!(cap.size(), (w as usize, h as usize));
    let frame = match cap.grab() {
        Ok(frame) => frame,
        // Headless wine (tools/wasm-toolchain.sh's wine-run sets this) lists a monitor but has no
        // display driver to copy from: the grab must fail with a clear error, not crash.
        Err(e) if std::env::var_os("PITBOX_HEADLESS_WINE").is_some() => {
            eprintln!("headless wine: the screen grab failed as expected ({e:?}); GDI capture not exercised");
            assert!(super::capture::GdiCapture::open(&SourceSpec::Region {
                x: 0,
                y: 0,
                width: 0,
                height: 0
            })
            .is_err());
            return;
        }
        Err(e) => panic!("GDI screen grab failed: {e:?}"),
    };
    assert_eq!(frame.data.len(), w as usize * h as usize * 4);
    let mut out = crate::video::convert::I420::new(64, 36);
    crate::video::convert::bgra_to_i420(frame, &mut out).unwrap();
    assert!(
        super::capture::GdiCapture::open(&SourceSpec::Region { x: 0, y: 0, width: 0, height: 0 }).is_err()
    );
}

/// DXGI desktop duplication of the first monitor: on a real Windows desktop it opens at the
/// monitor's size, grabs at once (black or the desktop: a zero-timeout poll never waits) and keeps
/// grabbing; a region across the desktop's edge is refused (GDI takes those). Headless wine has no
/// desktop duplication: there the refusal must be a clear `Unavailable`, and `capture::open` must
/// still hand back a source (GDI) rather than fail.
#[test]
fn dxgi_duplication_grabs_or_refuses_clearly() {
    use crate::video::capture::{Capture, CaptureError, SourceSpec};
    let monitors = super::capture::monitors();
    let Some(&(_, _, w, h)) = monitors.first() else {
        eprintln!("no monitor listed (headless wine?): DXGI capture not exercised");
        return;
    };
    let mut cap = match super::dxgi::DxgiCapture::open(&SourceSpec::Screen(0)) {
        Ok(cap) => cap,
        Err(CaptureError::Unavailable(why)) if std::env::var_os("PITBOX_HEADLESS_WINE").is_some() => {
            eprintln!("headless wine: DXGI refused as expected ({why})");
            assert!(why.starts_with("DXGI"), "the refusal says which API: {why}");
            let fallback = crate::video::capture::open(&SourceSpec::Screen(0)).unwrap();
            assert!(fallback.describe().starts_with("GDI"), "{}", fallback.describe());
            return;
        }
        Err(e) => panic!("DXGI duplication refused on a real desktop: {e:?}"),
    };
    assert_eq!(cap.size(), (w as usize, h as usize));
    assert!(cap.describe().starts_with("DXGI screen:0"), "{}", cap.describe());
    for _ in 0..3 {
        let frame = cap.grab().unwrap();
        assert_eq!(frame.data.len(), w as usize * h as usize * 4);
    }
    let past_edge = SourceSpec::Region { x: (w - 10) as i16, y: 0, width: 20, height: 20 };
    assert!(matches!(super::dxgi::DxgiCapture::open(&past_edge), Err(CaptureError::Unavailable(_))));
}

/// A window that does not exist is refused with its id in the message, by both capture paths.
#[test]
fn a_missing_window_is_refused_clearly() {
    use crate::video::capture::{CaptureError, SourceSpec};
    let gone = SourceSpec::Window(0x7fff_fff0);
    match super::capture::GdiCapture::open(&gone) {
        Err(CaptureError::Unavailable(why)) => assert!(why.contains("0x7ffffff0"), "{why}"),
        Err(e) => panic!("GDI: {e:?}"),
        Ok(_) => panic!("GDI opened a window that does not exist"),
    }
    assert!(matches!(super::dxgi::DxgiCapture::open(&gone), Err(CaptureError::Unavailable(_))));
    assert!(crate::video::capture::open(&gone).is_err());
}
