//! The live source's logic on any OS: `LiveSource` over our parser reading a dump of iRacing's
//! live map (`../shared/fixtures/ibt/live-memmap-monza_w13.bin`, three rotating buffers at Monza)
//! that the test rewrites the way the sim would: new rows in the oldest buffer, a session-info
//! update, `SessionTime` going back, the sim disconnecting and coming back, a restart with fresh
//! ticks, a changed layout, garbage while the sim starts. The same logic over iracing-telem is
//! tested on Windows/wine by the lib's unit tests (`tools/windows-check.sh`). Also checks that
//! `unsafe` stays fenced into `driver-node/src/platform/windows/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pitbox_driver::ibt::{Ibt, Layout, SampleConverter, Source};
use pitbox_driver::live::{LiveSource, LiveState, MapFeed};
use pitbox_driver::source::{Next, TelemetrySource};

const DUMP: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/ibt/live-memmap-monza_w13.bin");

/// Header offsets (see fixtures/README.md).
const STATUS: u64 = 4;
const SESSION_INFO_UPDATE: u64 = 12;
const SESSION_INFO_LEN: u64 = 16;

fn read_fixture(path: &str) -> Vec<u8> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("missing test fixture {path} ({e}); shared/ must sit beside the checkout"))
}

/// The live map as the sim shares it: bytes the test rewrites while the source reads them.
#[derive(Clone)]
struct SharedMap(Arc<Mutex<Vec<u8>>>);

impl Source for SharedMap {
    fn len(&self) -> u64 {
        self.0.lock().unwrap().len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.0.lock().unwrap().as_slice().read_exact_at(offset, buf)
    }
}

/// The test's side of the map: where things are, and how the sim writes them.
struct Sim {
    map: SharedMap,
    /// (buffer offset, tick) of the three buffers, as in the dump.
    bufs: Vec<(u64, i32)>,
    session_time: u64,
    lap_dist_pct: u64,
    yaml_offset: u64,
    yaml_len: u64,
}

impl Sim {
    fn new() -> Sim {
        let bytes = read_fixture(DUMP);
        let ibt = Ibt::parse_as(bytes.as_slice(), Layout::Live).unwrap();
        let offset = |name: &str| ibt.var(name).unwrap().offset as u64;
        Sim {
            bufs: ibt.header().var_bufs.iter().map(|b| (u64::from(b.buf_offset), b.tick_count)).collect(),
            session_time: offset("SessionTime"),
            lap_dist_pct: offset("LapDistPct"),
            yaml_offset: u64::from(ibt.header().session_info_offset),
            yaml_len: u64::from(ibt.header().session_info_len),
            map: SharedMap(Arc::new(Mutex::new(bytes))),
        }
    }

    fn source(&self) -> LiveSource {
        LiveSource::new(MapFeed::new(self.map.clone()).with_wait(Duration::ZERO))
    }

    fn write(&self, offset: u64, bytes: &[u8]) {
        let at = offset as usize;
        self.map.0.lock().unwrap()[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn read(&self, offset: u64, len: u64) -> Vec<u8> {
        self.map.0.lock().unwrap()[offset as usize..(offset + len) as usize].to_vec()
    }

    fn write_i32(&self, offset: u64, v: i32) {
        self.write(offset, &v.to_le_bytes());
    }

    fn tick_offset(buf: usize) -> u64 {
        48 + 16 * buf as u64
    }

    /// A new row in buffer `buf` (the rest of the row as the dump's newest buffer, #1).
    fn publish(&self, buf: usize, tick: i32, session_time: f64, lap_dist_pct: f32) {
        let len = self.bufs[2].0 - self.bufs[1].0; // rows are contiguous in this dump
        let row = self.read(self.bufs[1].0, len);
        self.write(self.bufs[buf].0, &row);
        self.write(self.bufs[buf].0 + self.session_time, &session_time.to_le_bytes());
        self.write(self.bufs[buf].0 + self.lap_dist_pct, &lap_dist_pct.to_le_bytes());
        self.write_i32(Sim::tick_offset(buf), tick);
    }

    /// Rewrites the YAML in place (same length) and bumps the session-info counter.
    fn edit_yaml(&self, from: &str, to: &str, counter: i32) {
        assert_eq!(from.len(), to.len());
        let yaml = String::from_utf8_lossy(&self.read(self.yaml_offset, self.yaml_len)).into_owned();
        let at = yaml.find(from).unwrap_or_else(|| panic!("{from:?} not in the YAML")) as u64;
        self.write(self.yaml_offset + at, to.as_bytes());
        self.write_i32(SESSION_INFO_UPDATE, counter);
    }
}

#[test]
fn frames_from_the_newest_buffer_validate_and_name_monza() {
    let sim = Sim::new();
    assert_eq!(sim.bufs.iter().map(|b| b.1).collect::<Vec<_>>(), [2004, 2005, 2003]);
    let bytes = read_fixture(DUMP);
    let ibt = Ibt::parse_as(bytes.as_slice(), Layout::Live).unwrap();
    let newest = ibt.latest_row().unwrap();
    assert_eq!(newest.tick_count(), Some(2005));

    let mut live = sim.source();
    assert!(live.is_live());
    assert_eq!(live.info().kind, "live-map");
    assert_eq!(live.info().track, None, "nothing known before the first row");
    let frame = live.next_frame().unwrap().expect("a live source never ends");
    frame.sample.validate().unwrap();
    assert_eq!(frame.seq, None);
    // buffer 1 (tick 2005), converted exactly as the parser's own converter does
    assert_eq!(frame.sample, SampleConverter::new(&ibt).sample(&newest));
    assert_eq!(frame.sample.session_time, newest.f64("SessionTime").unwrap());
    assert!(frame.sample.cars.as_ref().is_some_and(|c| c.lap.len() == 64));
    let info = live.info();
    assert_eq!(info.track.as_deref(), Some("Autodromo Nazionale Monza"));
    assert!(info.car.is_some_and(|c| c.contains("W13")));
    let status = live.status();
    assert_eq!(status.state, LiveState::Connected);
    assert_eq!((status.sessions, status.frames, status.session_info_update), (1, 1, Some(3)));
    assert_eq!(status.sector_starts, [0.0, 0.345492, 0.475864, 0.657524, 0.853068]);

    // the sim wrote nothing new: no frame, no re-read of the YAML
    assert!(live.poll_frame().is_none());
    assert_eq!(live.status().session_info_reads, 1);

    // the sim writes the oldest buffer (#2) next, then #0: each time the newest is read
    sim.publish(2, 2006, 53.2, 0.1);
    assert_eq!(live.next_frame().unwrap().unwrap().sample.session_time, 53.2);
    sim.publish(0, 2007, 53.25, 0.1);
    let frame = live.poll_frame().unwrap();
    assert_eq!((frame.sample.session_time, frame.sample.track_position), (53.25, 0.1));
    frame.sample.validate().unwrap();
    assert_eq!(live.status().sessions, 1);
    assert_eq!(live.status().session_info_reads, 1, "the counter did not change");
}

#[test]
fn a_session_info_update_is_read_when_the_counter_changes() {
    let sim = Sim::new();
    let mut live = sim.source();
    sim.publish(2, 2006, 60.0, 0.32);
    let frame = live.poll_frame().unwrap();
    assert_eq!(frame.sample.sector, 1, "0.32 lies in the first sector (next one starts at 0.345)");

    // the YAML changes without a counter change: not noticed (the sim always bumps it)
    sim.edit_yaml("SectorStartPct: 0.345492", "SectorStartPct: 0.300000", 3);
    sim.publish(0, 2007, 60.1, 0.32);
    assert_eq!(live.poll_frame().unwrap().sample.sector, 1);

    // the counter changes: read again; sector 2 now starts at 30 %
    sim.write_i32(SESSION_INFO_UPDATE, 4);
    sim.publish(1, 2008, 60.2, 0.32);
    let frame = live.poll_frame().unwrap();
    assert_eq!(frame.sample.sector, 2);
    let status = live.status();
    assert_eq!((status.session_info_update, status.session_info_reads, status.sessions), (Some(4), 2, 1));
    assert_eq!(status.sector_starts[1], 0.3);

    // a new track name arrives the same way
    sim.edit_yaml(
        "TrackDisplayName: Autodromo Nazionale Monza",
        "TrackDisplayName: Autodromo Nazionale Manza",
        5,
    );
    sim.publish(2, 2009, 60.3, 0.32);
    live.poll_frame().unwrap();
    assert_eq!(live.info().track.as_deref(), Some("Autodromo Nazionale Manza"));
    assert_eq!(live.status().session_info_reads, 3);
}

#[test]
fn new_sessions_when_time_goes_back_or_the_sim_comes_back() {
    let sim = Sim::new();
    let mut live = sim.source();
    live.poll_frame().unwrap();
    assert_eq!(live.status().sessions, 1);

    // SessionTime goes back (practice → qualifying): a new session, YAML read again
    sim.publish(2, 2006, 1.0, 0.0);
    assert_eq!(live.poll_frame().unwrap().sample.session_time, 1.0);
    assert_eq!((live.status().sessions, live.status().session_info_reads), (2, 2));
    sim.publish(0, 2007, 1.5, 0.0);
    live.poll_frame().unwrap();
    assert_eq!(live.status().sessions, 2, "time going forward is the same session");

    // the sim disconnects: no frames, waiting; it comes back: a new session, same source
    sim.write_i32(STATUS, 0);
    for _ in 0..3 {
        assert!(live.poll_frame().is_none());
    }
    assert_eq!(live.status().state, LiveState::WaitingForSim);
    assert_eq!(live.info().track.as_deref(), Some("Autodromo Nazionale Monza"));
    sim.write_i32(STATUS, 1);
    sim.publish(1, 2008, 3.0, 0.0);
    assert_eq!(live.poll_frame().unwrap().sample.session_time, 3.0);
    assert_eq!((live.status().state, live.status().sessions), (LiveState::Connected, 3));
    assert_eq!(live.status().session_info_reads, 3);

    // the sim restarts with fresh ticks (lower than before): that session ended, a new one starts
    sim.publish(2, 10, 0.5, 0.0);
    sim.write_i32(Sim::tick_offset(0), 8);
    sim.write_i32(Sim::tick_offset(1), 9);
    assert!(live.poll_frame().is_none(), "ticks going back end the session");
    assert_eq!(live.status().state, LiveState::WaitingForSim);
    assert_eq!(live.poll_frame().unwrap().sample.session_time, 0.5);
    assert_eq!(live.status().sessions, 4);
    assert_eq!(live.status().frames, 5);
}

#[test]
fn the_end_of_a_sim_session_is_told_before_the_next_ones_first_frame() {
    let sim = Sim::new();
    let mut live = sim.source();
    assert!(matches!(live.next().unwrap(), Next::Frame(_)));
    let first = live.session_version();

    // SessionTime goes back: the session ended, and the new one's first frame comes after that
    sim.publish(2, 2006, 1.0, 0.0);
    assert!(matches!(live.next().unwrap(), Next::SessionEnded));
    match live.next().unwrap() {
        Next::Frame(f) => assert_eq!(f.sample.session_time, 1.0),
        other => panic!("expected the new session's first frame, got {other:?}"),
    }
    assert!(live.session_version() > first, "the recorder asks what the session is now");
    sim.publish(0, 2007, 1.5, 0.0);
    let same = live.session_version();
    assert!(matches!(live.next().unwrap(), Next::Frame(_)));
    assert_eq!(live.session_version(), same, "time going forward is the same session");

    // the sim closes: the end is told at once, not when it comes back
    sim.write_i32(STATUS, 0);
    assert!(matches!(live.next().unwrap(), Next::SessionEnded));
    sim.write_i32(STATUS, 1);
    sim.publish(1, 2008, 3.0, 0.0);
    match live.next().unwrap() {
        Next::Frame(f) => assert_eq!(f.sample.session_time, 3.0),
        other => panic!("expected a frame, got {other:?}"),
    }
}

#[test]
fn garbage_and_layout_changes_while_the_sim_starts_are_waited_out() {
    let sim = Sim::new();
    let good = sim.read(0, 4);
    // the sim is starting: the header is not there yet
    sim.write_i32(0, 0);
    let mut live = sim.source();
    assert!(live.poll_frame().is_none());
    assert_eq!(live.status().state, LiveState::WaitingForSim);
    sim.write(0, &good);
    live.poll_frame().unwrap();

    // the layout changes under the source (a shorter YAML region): parsed again, frames go on
    let len = u32::from_le_bytes(sim.read(SESSION_INFO_LEN, 4).try_into().unwrap());
    sim.write_i32(SESSION_INFO_LEN, i32::try_from(len).unwrap() - 4096);
    sim.publish(2, 2006, 54.0, 0.0);
    assert_eq!(live.poll_frame().unwrap().sample.session_time, 54.0);
    assert_eq!(live.status().sessions, 1);
    assert_eq!(live.status().state, LiveState::Connected);
}

#[test]
fn next_frame_blocks_until_the_sim_writes() {
    let sim = Sim::new();
    let mut live = sim.source();
    live.next_frame().unwrap().unwrap();
    let writer = {
        let map = sim.map.clone();
        let at = Sim::tick_offset(2) as usize;
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            // buffer 2 becomes the newest with its own row (SessionTime 53.117, before 53.15)
            map.0.lock().unwrap()[at..at + 4].copy_from_slice(&2006i32.to_le_bytes());
        })
    };
    let started = std::time::Instant::now();
    let frame = live.next_frame().unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(90));
    assert!((frame.sample.session_time - 53.1167).abs() < 1e-3);
    assert_eq!(live.status().sessions, 2);
    writer.join().unwrap();
    // skipping is meaningless for a live sim
    live.skip(10).unwrap();
    assert_eq!(live.status().frames, 2);
}

#[test]
fn the_map_source_reads_a_dump_file_too() {
    let source = pitbox_driver::ibt::FileSource::open(DUMP).unwrap();
    let mut live = LiveSource::from_map(source);
    let frame = live.next_frame().unwrap().unwrap();
    frame.sample.validate().unwrap();
    assert_eq!(live.info().track.as_deref(), Some("Autodromo Nazionale Monza"));
}

#[cfg(not(windows))]
#[test]
fn the_iracing_source_says_it_runs_on_windows_only() {
    let err = pitbox_driver::live::iracing_source().err().expect("no iRacing source off Windows");
    assert!(err.to_string().contains("the live iRacing source runs on Windows only"), "{err}");
}

/// `unsafe` is denied workspace-wide; only `driver-node/src/platform/windows/` may allow it.
#[test]
fn unsafe_is_allowed_only_in_the_windows_platform_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(
        manifest
            .lines()
            .any(|l| l.trim() == r#"unsafe_code = "deny""# || l.trim() == r#"unsafe_code = "forbid""#),
        "the workspace must deny unsafe_code"
    );
    let fence = root.join("driver-node/src/platform/windows");
    let this = root.join("driver-node/tests/live.rs");
    let mut offenders = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if path.is_dir() {
                if !matches!(name, "target" | ".git" | "node_modules") && !name.starts_with('.') {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs") && !path.starts_with(&fence) && path != this {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let relaxed = ["allow(unsafe_code", "warn(unsafe_code", "expect(unsafe_code"];
                if relaxed.iter().any(|p| text.contains(p)) {
                    offenders.push(path);
                }
            }
        }
    }
    assert!(offenders.is_empty(), "unsafe_code allowed outside {}: {offenders:?}", fence.display());
}
