//! The telemetry reader against the real recordings in `../shared/fixtures/ibt/` (beside the
//! checkout; a missing fixture fails with its path), hand-built hostile inputs, and a row-by-row
//! cross-check against pyirsdk (`pip install pyirsdk`; env `PITBOX_SKIP_PYIRSDK=1` skips that one
//! test when Python or pyirsdk is not available).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use pitbox_driver::ibt::laps::{laps_from_points, LapPoint};
use pitbox_driver::ibt::session::{decode, fix_quirks};
use pitbox_driver::ibt::{
    laps, verify, Ibt, IbtError, Layout, SampleConverter, SessionInfo, Value, VarType, HEADER_LEN,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/ibt/");
const YAML_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/session-yaml/");

const TSUKUBA: &str = "tsukuba_formulavee_3laps.ibt";
const AMG: &str = "redbullring_amg-gt4.ibt";
const W13: &str = "redbullring_w13_short.ibt";
const LIVE: &str = "live-memmap-monza_w13.bin";
/// The recordings that parse (everything but `invalid.ibt` and `empty.ibt`).
const COMPLETE: [&str; 4] = [TSUKUBA, AMG, W13, LIVE];

fn fixture(name: &str) -> PathBuf {
    let path = PathBuf::from(FIXTURES).join(name);
    assert!(path.exists(), "missing test fixture {} (shared/ must sit beside the checkout)", path.display());
    path
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("cannot read {}: {e}", fixture(name).display()))
}

struct Expected {
    file: &'static str,
    layout: Layout,
    vars: usize,
    records: usize,
    track_name: &'static str,
    track_display_name: &'static str,
    car: &'static str,
}

const EXPECTED: [Expected; 4] = [
    Expected {
        file: TSUKUBA,
        layout: Layout::Disk,
        vars: 270,
        records: 3429,
        track_name: "tsukuba 1kouter",
        track_display_name: "Tsukuba Circuit 1k Outer",
        car: "Formula Vee",
    },
    Expected {
        file: AMG,
        layout: Layout::Disk,
        vars: 267,
        records: 3371,
        track_name: "spielberg gp",
        track_display_name: "Red Bull Ring",
        car: "Mercedes AMG GT4",
    },
    Expected {
        file: W13,
        layout: Layout::Disk,
        vars: 276,
        records: 390,
        track_name: "spielberg gp",
        track_display_name: "Red Bull Ring",
        car: "Mercedes-AMG W13 E Performance",
    },
    Expected {
        file: LIVE,
        layout: Layout::Live,
        vars: 323,
        records: 3,
        track_name: "monza full",
        track_display_name: "Autodromo Nazionale Monza",
        car: "Mercedes-AMG W13 E Performance",
    },
];

#[test]
fn every_fixture_has_the_expected_shape() {
    for e in &EXPECTED {
        let ibt = Ibt::open(fixture(e.file)).unwrap_or_else(|err| panic!("{}: {err}", e.file));
        assert_eq!(ibt.layout(), e.layout, "{}", e.file);
        assert_eq!(ibt.vars().len(), e.vars, "{}", e.file);
        assert_eq!(ibt.header().num_vars as usize, e.vars, "{}", e.file);
        assert_eq!(ibt.record_count(), e.records, "{}", e.file);
        assert!(!ibt.records_inferred(), "{}", e.file);
        assert_eq!(ibt.rows().count(), e.records, "{}", e.file);
        assert_eq!(ibt.disk_header().is_some(), e.layout == Layout::Disk, "{}", e.file);
        if let Some(disk) = ibt.disk_header() {
            assert_eq!(disk.session_record_count as usize, e.records);
            assert!(disk.start_date_time().is_some());
        }
        let info = ibt.session_info().unwrap_or_else(|err| panic!("{}: {err}", e.file));
        assert_eq!(info.track_name(), Some(e.track_name), "{}", e.file);
        assert_eq!(info.track_display_name(), Some(e.track_display_name), "{}", e.file);
        assert_eq!(info.track(), Some(e.track_display_name), "{}", e.file);
        assert_eq!(info.car().as_deref(), Some(e.car), "{}", e.file);
        let drivers = info.drivers();
        assert_eq!(drivers.len(), 1, "{}", e.file);
        assert_eq!(drivers[0].car_number, "64", "{}", e.file);
        assert_eq!(drivers[0].car_screen_name, e.car, "{}", e.file);
        assert_eq!(info.sessions()[0].kind, "Offline Testing", "{}", e.file);
        assert!(info.sector_starts().len() >= 3, "{}", e.file);
        for name in ["SessionTime", "Speed", "RPM", "Lap", "LapDistPct", "Throttle"] {
            assert!(ibt.var(name).is_some(), "{}: no {name}", e.file);
        }
    }
}

#[test]
fn files_and_byte_buffers_read_the_same() {
    for name in COMPLETE {
        let data = bytes(name);
        let from_file = Ibt::open(fixture(name)).unwrap();
        let from_bytes = Ibt::parse(&data[..]).unwrap();
        assert_eq!(from_file.header(), from_bytes.header());
        assert_eq!(from_file.vars().as_slice(), from_bytes.vars().as_slice());
        for (a, b) in from_file.rows().zip(from_bytes.rows()) {
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(a.bytes(), b.bytes(), "{name} row {}", a.index());
        }
        // random access agrees with iteration
        let last = from_bytes.record_count() - 1;
        assert_eq!(from_bytes.row(last).unwrap().bytes(), from_file.rows().last().unwrap().unwrap().bytes());
        assert!(matches!(from_bytes.row(last + 1), Err(IbtError::RowOutOfRange { .. })));
    }
}

#[test]
fn variable_headers_and_typed_reads() {
    let ibt = Ibt::open(fixture(TSUKUBA)).unwrap();
    let speed = ibt.var("Speed").unwrap();
    assert_eq!(
        (speed.var_type, speed.offset, speed.count, speed.unit.as_str()),
        (VarType::Float, 310, 1, "m/s")
    );
    assert!(!speed.desc.is_empty());
    // unaligned double (offset 334 here, 326 in other files)
    let lat = ibt.var("Lat").unwrap();
    assert_eq!((lat.var_type, lat.offset), (VarType::Double, 334));

    let row = ibt.row(1768).unwrap();
    assert_eq!(row.f64("SessionTime").map(|t| (t * 1e4).round() / 1e4), Some(216.5167));
    assert_eq!(row.f32("Speed"), Some(29.152_674));
    assert_eq!(row.f64("Speed"), Some(f64::from(29.152_674_f32)), "floats widen exactly");
    assert_eq!(row.i32("Lap"), Some(1));
    assert_eq!(row.bool("OnPitRoad"), Some(false));
    assert!(row.bitfield("SessionFlags").is_some());
    assert_eq!(row.f32("Lap"), None, "wrong type");
    assert_eq!(row.i32("NoSuchChannel"), None);
    assert_eq!(row.number("Lap"), Some(1.0));
    assert!(row.f64("Lat").is_some_and(|v| (36.0..37.0).contains(&v)));
    assert_eq!(row.get("OnPitRoad"), Some(Value::Bool(false)));
    assert_eq!(Value::decode(VarType::Char, b"A"), Some(Value::Char(65)));
    assert_eq!(Value::decode(VarType::Double, &[0; 7]), None, "short input");
}

#[test]
fn high_rate_channel_reads_as_its_array() {
    let ibt = Ibt::open(fixture(TSUKUBA)).unwrap();
    let st = ibt.var("SteeringWheelTorque_ST").unwrap();
    assert!(st.is_high_rate() && st.is_array() && st.count_as_time);
    assert_eq!((st.var_type, st.count), (VarType::Float, 6));
    let row = ibt.row(0).unwrap();
    let values = row.f32_array("SteeringWheelTorque_ST").unwrap();
    assert_eq!(values, [-3.866_542_3, -5.525_518_4, -5.414_944_6, -4.195_107, -2.520_767_5, -0.907_567_9]);
    assert_eq!(row.array("SteeringWheelTorque_ST").unwrap().len(), 6);
    assert_eq!(row.value(st, 6), None, "past the count");
}

#[test]
fn tsukuba_has_two_complete_laps() {
    let ibt = Ibt::open(fixture(TSUKUBA)).unwrap();
    let all = laps(&ibt).unwrap();
    assert_eq!(all.iter().map(|l| l.lap).collect::<Vec<_>>(), [0, 1, 2, 3]);
    let complete: Vec<_> = all.iter().filter(|l| l.is_complete()).collect();
    assert_eq!(complete.len(), 2);
    for (lap, expected) in complete.iter().zip([25.91, 23.98]) {
        let time = lap.time.unwrap();
        assert!((time - expected).abs() <= 0.02, "lap {}: {time} s, expected {expected} s", lap.lap);
        let reported = f64::from(lap.reported.unwrap());
        // within 2 ms of iRacing's LapLastLapTime (the bar); in fact its own figure
        assert!((reported - time).abs() <= 0.002, "lap {}: {time} s, iRacing says {reported} s", lap.lap);
        // the uninterpolated time is within a tick of it at each end
        assert!((lap.row_time.unwrap() - time).abs() <= 2.0 / 60.0, "lap {}", lap.lap);
    }
    assert_eq!((complete[0].first_row, complete[0].last_row), (214, 1768));
    assert!(!all[0].is_complete() && !all[3].is_complete());
}

#[test]
fn lap_timing_without_distance_uses_the_rows() {
    let point = |t: f64, lap: i32| LapPoint { session_time: t, lap, lap_dist_pct: None, last_lap_time: None };
    // lap 1 until 1 s, lap 2 from 1 s to 61 s (a row a second), then lap 3
    let mut points = vec![point(0.0, 1)];
    points.extend((1..=60).map(|s| point(f64::from(s), 2)));
    points.extend([point(61.0, 3), point(62.0, 3)]);
    let laps = laps_from_points(&points);
    assert_eq!(laps.len(), 3);
    assert_eq!(laps[1].time, Some(60.0));
    assert_eq!(laps[1].row_time, Some(60.0));
    // a reset backwards is not a complete lap
    let laps = laps_from_points(&[point(0.0, 5), point(1.0, 2), point(2.0, 3), point(3.0, 4)]);
    assert_eq!(laps.iter().filter(|l| l.is_complete()).count(), 1);
    assert!(laps_from_points(&[]).is_empty());
}

#[test]
fn live_dump_uses_the_newest_buffer() {
    let data = bytes(LIVE);
    let ibt = Ibt::parse(&data[..]).unwrap();
    assert_eq!(ibt.layout(), Layout::Live);
    assert!(ibt.disk_header().is_none());
    assert_eq!(ibt.header().num_buf, 3);
    let ticks: Vec<_> = ibt.rows().map(|r| r.unwrap().tick_count().unwrap()).collect();
    assert_eq!(ticks, [2003, 2004, 2005], "rows oldest first");
    let latest = ibt.latest_row().unwrap();
    assert_eq!(latest.tick_count(), Some(2005));
    assert_eq!(latest.index(), 2);
    assert_eq!(latest.f64("SessionTime"), Some(53.149_999_237_058_67));
    assert_eq!(latest.i32("SessionTick"), Some(3443));
    assert_eq!(ibt.row(1).unwrap().f64("SessionTime"), Some(53.133_332_570_392_01));
    assert!(ibt.var("Lat").is_none() && ibt.var("Lon").is_none(), "no GPS in the live map");
    let cars = latest.i32_array("CarIdxLap").unwrap();
    assert_eq!(cars.len(), 64);
    // the same bytes read as a file do not fit
    assert!(Ibt::parse_as(&data[..], Layout::Disk).is_err());
    // a converted live sample has per-car arrays and no timestamp of its own
    let converter = SampleConverter::new(&ibt);
    let sample = converter.sample(&latest);
    let cars = sample.cars.as_ref().unwrap();
    assert!(cars.is_consistent() && cars.lap.len() == 64);
    assert_eq!(converter.timestamp(&latest), None);
    sample.validate().unwrap();
}

#[test]
fn invalid_and_empty_files_give_clear_errors() {
    let err = Ibt::open(fixture("invalid.ibt")).unwrap_err();
    assert!(matches!(err, IbtError::UnsupportedVersion(_)), "{err:?}");
    assert!(err.to_string().contains("not iRacing telemetry"), "{err}");
    let err = Ibt::open(fixture("empty.ibt")).unwrap_err();
    assert!(matches!(err, IbtError::Empty), "{err:?}");
    assert!(err.to_string().contains("empty"), "{err}");
    let err = Ibt::open(PathBuf::from(FIXTURES).join("no-such-file.ibt")).unwrap_err();
    assert!(matches!(&err, IbtError::Io(e) if e.kind() == std::io::ErrorKind::NotFound), "{err:?}");
}

fn put_i32(data: &mut [u8], at: usize, v: i32) {
    data[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn get_i32(data: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(data[at..at + 4].try_into().unwrap())
}

/// The W13 file with one edit applied, parsed.
fn parse_edited(edit: impl FnOnce(&mut Vec<u8>)) -> Result<(), IbtError> {
    let mut data = bytes(W13);
    edit(&mut data);
    let ibt = Ibt::parse(&data[..])?;
    for row in ibt.rows() {
        row?;
    }
    Ok(())
}

#[test]
fn hostile_headers_are_refused_by_name() {
    use IbtError as E;
    let field = |r: Result<(), IbtError>| match r {
        Err(E::InvalidField { field, .. }) => field,
        other => panic!("expected InvalidField, got {other:?}"),
    };
    assert_eq!(field(parse_edited(|d| put_i32(d, 24, i32::MAX))), "numVars");
    assert_eq!(field(parse_edited(|d| put_i32(d, 24, -1))), "numVars");
    assert_eq!(field(parse_edited(|d| put_i32(d, 24, 0))), "numVars");
    assert_eq!(field(parse_edited(|d| put_i32(d, 36, 0))), "bufLen");
    assert_eq!(field(parse_edited(|d| put_i32(d, 36, i32::MAX))), "bufLen");
    assert_eq!(field(parse_edited(|d| put_i32(d, 32, 0))), "numBuf");
    assert_eq!(field(parse_edited(|d| put_i32(d, 32, 5))), "numBuf");
    assert_eq!(field(parse_edited(|d| put_i32(d, 16, -5))), "sessionInfoLen");
    assert_eq!(field(parse_edited(|d| put_i32(d, 16, i32::MAX))), "sessionInfoLen");
    assert_eq!(field(parse_edited(|d| put_i32(d, 20, i32::MIN))), "sessionInfoOffset");
    assert_eq!(field(parse_edited(|d| put_i32(d, 28, -144))), "varHeaderOffset");
    assert_eq!(field(parse_edited(|d| put_i32(d, 52, -1))), "varBuf.bufOffset");
    assert_eq!(field(parse_edited(|d| put_i32(d, 112 + 28, -1))), "sessionRecordCount");
    assert!(matches!(parse_edited(|d| put_i32(d, 0, 3)), Err(E::UnsupportedVersion(3))));

    // offsets past the end
    let past = |r: Result<(), IbtError>| match r {
        Err(E::OutOfBounds { region, .. }) => region,
        other => panic!("expected OutOfBounds, got {other:?}"),
    };
    assert_eq!(past(parse_edited(|d| put_i32(d, 52, i32::MAX))), "row data");
    assert_eq!(past(parse_edited(|d| put_i32(d, 20, 470_000))), "session info");
    assert_eq!(past(parse_edited(|d| put_i32(d, 28, 470_000))), "variable headers");
    assert!(matches!(parse_edited(|d| put_i32(d, 112 + 28, 391)), Err(E::Truncated { records: 391, .. })));
    assert!(matches!(parse_edited(|d| put_i32(d, 112 + 28, i32::MAX)), Err(E::Truncated { .. })));

    // overlapping regions
    let copy = |from: usize, to: usize| {
        move |d: &mut Vec<u8>| {
            let v = get_i32(d, from);
            put_i32(d, to, v);
        }
    };
    // session info at the variable headers; rows at the session info
    assert!(matches!(parse_edited(copy(28, 20)), Err(E::Overlap { .. })));
    assert!(matches!(parse_edited(copy(20, 52)), Err(E::Overlap { .. })));
    assert!(matches!(parse_edited(|d| put_i32(d, 28, 100)), Err(E::Overlap { .. })));

    // broken variable headers (the first one, SessionTime, sits at varHeaderOffset = 144)
    let var = |r: Result<(), IbtError>| match r {
        Err(E::InvalidVariable { index, problem, .. }) => (index, problem),
        other => panic!("expected InvalidVariable, got {other:?}"),
    };
    let v0 = 144;
    assert!(var(parse_edited(|d| put_i32(d, v0, 9))).1.contains("type"));
    assert!(var(parse_edited(|d| put_i32(d, v0 + 4, 1070))).1.contains("past the"));
    assert!(var(parse_edited(|d| put_i32(d, v0 + 4, -8))).1.contains("negative"));
    assert!(var(parse_edited(|d| put_i32(d, v0 + 8, 0))).1.contains("count"));
    assert!(var(parse_edited(|d| put_i32(d, v0 + 8, i32::MAX))).1.contains("past the"));
    assert!(var(parse_edited(|d| d[v0 + 16] = 0xFF)).1.contains("UTF-8"));
    assert!(var(parse_edited(|d| d[v0 + 16] = 0)).1.contains("empty"));
    assert!(var(parse_edited(|d| d[v0 + 17] = b'\n')).1.contains("control"));
    assert_eq!(var(parse_edited(|d| put_i32(d, v0 + 144 * 5, -1))).0, 5);
}

#[test]
fn every_truncation_of_a_real_file_is_an_error() {
    for name in [W13, LIVE] {
        let data = bytes(name);
        let mut lengths: Vec<usize> = (0..=400).collect();
        lengths.extend((400..data.len()).step_by(997));
        lengths.extend([data.len() - 1, data.len() - 1072, data.len() - 1073]);
        for len in lengths {
            let cut = &data[..len];
            let result = verify(cut);
            // the live map has slack after its last buffer, so a slightly shorter copy still parses
            if name == W13 || len < 1_171_530 {
                assert!(result.is_err(), "{name} cut to {len} bytes parsed");
            }
            if let Err(e) = result {
                assert!(!e.to_string().is_empty());
                if len == 0 {
                    assert!(matches!(e, IbtError::Empty));
                } else if (len as u64) < HEADER_LEN {
                    assert!(matches!(e, IbtError::TooShort { what: "header", .. }), "{len}: {e:?}");
                }
            }
        }
    }
}

#[test]
fn a_recording_the_sim_never_closed_is_counted_from_its_size() {
    let mut data = bytes(W13);
    put_i32(&mut data, 112 + 28, 0);
    let ibt = Ibt::parse(&data[..]).unwrap();
    assert_eq!(ibt.record_count(), 390);
    assert!(ibt.records_inferred());
    // and a partial last row is left out
    data.truncate(data.len() - 10);
    assert_eq!(Ibt::parse(&data[..]).unwrap().record_count(), 389);
}

#[test]
fn every_converted_sample_validates() {
    for name in COMPLETE {
        let ibt = Ibt::open(fixture(name)).unwrap();
        let converter = SampleConverter::new(&ibt);
        let mut n = 0;
        for row in ibt.rows() {
            let row = row.unwrap();
            let sample = converter.sample(&row);
            sample.validate().unwrap_or_else(|e| panic!("{name} row {}: {e}", row.index()));
            n += 1;
        }
        assert_eq!(n, ibt.record_count());
        let v = verify(&bytes(name)[..]).unwrap();
        assert_eq!((v.records, v.invalid_samples.len(), v.session_info.is_ok()), (n, 0, true), "{name}");
    }
}

#[test]
fn samples_are_in_pitbox_units() {
    let ibt = Ibt::open(fixture(TSUKUBA)).unwrap();
    let converter = SampleConverter::new(&ibt);
    let row = ibt.row(1768).unwrap();
    let s = converter.sample(&row);
    let close = |a: f32, b: f64| (f64::from(a) - b).abs() < 1e-3 * b.abs().max(1.0);
    assert!(close(s.speed, f64::from(row.f32("Speed").unwrap()) * 3.6), "{}", s.speed);
    assert!(close(s.throttle, f64::from(row.f32("Throttle").unwrap()) * 100.0));
    assert!(close(s.brake, f64::from(row.f32("Brake").unwrap()) * 100.0));
    assert!(close(s.clutch, (1.0 - f64::from(row.f32("Clutch").unwrap())) * 100.0));
    assert!(close(s.steering_angle, -f64::from(row.f32("SteeringWheelAngle").unwrap()).to_degrees()));
    assert!(close(s.fuel_level_pct, f64::from(row.f32("FuelLevelPct").unwrap()) * 100.0));
    assert_eq!(s.lap, 1);
    assert_eq!(s.gear, i8::try_from(row.i32("Gear").unwrap()).unwrap());
    assert_eq!(s.session_time, row.f64("SessionTime").unwrap());
    assert_eq!(s.sector, 4, "LapDistPct 0.9994 is past the last sector start 0.75");
    assert_eq!(s.flags, row.bitfield("SessionFlags").unwrap());
    assert_eq!(s.tire_wear.unwrap().front_left, 100.0);
    assert!(close(s.tire_temps.unwrap().front_left, 43.66), "{:?}", s.tire_temps);
    assert!(s.latitude.is_some() && s.longitude.is_some());
    assert_eq!(s.last_lap_time, None, "LapLastLapTime 0 means no lap yet");
    assert_eq!(s.cars, None, "files do not record CarIdx arrays");
    let s = converter.sample(&ibt.row(3300).unwrap());
    assert!(s.last_lap_time.is_some_and(|t| (t - 23.98).abs() < 0.01), "{:?}", s.last_lap_time);

    // wall clock: the start date plus the session time since the first row
    let start = ibt.disk_header().unwrap().start_date_time().unwrap();
    assert_eq!(converter.timestamp(&ibt.row(0).unwrap()), Some(start));
    let frame = converter.frame(&ibt.row(60).unwrap(), Some(7), chrono::DateTime::UNIX_EPOCH);
    assert_eq!(frame.seq, Some(7));
    assert_eq!(frame.timestamp, start + chrono::TimeDelta::seconds(1));

    // a row with no channels at all converts to defaults and still validates
    let w13 = Ibt::open(fixture(W13)).unwrap();
    let empty = SampleConverter::default().sample(&w13.row(0).unwrap());
    assert_eq!(empty, pitbox_schema::wire::TelemetrySample::default());
    empty.validate().unwrap();
}

#[test]
fn crlf_session_yaml_reads_the_same_as_lf() {
    for file in ["valid.yaml", "sample.yaml", "unescaped-chars.yaml"] {
        let raw = std::fs::read(PathBuf::from(YAML_FIXTURES).join(file)).unwrap();
        let lf: Vec<u8> = raw.iter().copied().filter(|&b| b != b'\r').collect();
        let mut crlf = Vec::with_capacity(lf.len() * 2);
        for &b in &lf {
            if b == b'\n' {
                crlf.push(b'\r');
            }
            crlf.push(b);
        }
        let (a, b) = (SessionInfo::from_bytes(&lf).unwrap(), SessionInfo::from_bytes(&crlf).unwrap());
        assert_eq!(a, b, "{file}");
        assert!(a.drivers().len() > 10, "{file}");
    }
}

#[test]
fn session_yaml_samples_parse_after_repairs() {
    for (file, track, car_idx) in [
        ("valid.yaml", "Circuit de Spa-Francorchamps", 10),
        ("sample.yaml", "Sebring International Raceway", 63),
        ("unescaped-chars.yaml", "Circuit de Spa-Francorchamps", 10),
    ] {
        let path = PathBuf::from(YAML_FIXTURES).join(file);
        let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("missing fixture {}: {e}", path.display()));
        let info = SessionInfo::from_bytes(&raw).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(info.track(), Some(track), "{file}");
        assert_eq!(info.driver_car_idx(), Some(car_idx), "{file}");
        assert!(info.drivers().len() > 10, "{file}");
    }
    let raw = std::fs::read(PathBuf::from(YAML_FIXTURES).join("unescaped-chars.yaml")).unwrap();
    let info = SessionInfo::from_bytes(&raw).unwrap();
    let pace = &info.drivers()[0];
    assert_eq!((pace.user_name.as_str(), pace.team_name.as_str()), ("[ ", "@"));
    assert_eq!(info.get("DriverInfo.DriverSetupName").and_then(|v| v.as_str()), Some("- mySetup.sto"));
    assert_eq!(info.root()["DriverInfo"]["Drivers"][0]["Initials"].as_str(), Some("]"));
    assert_eq!(info.root()["Nope"]["Nothing"][3].as_str(), None, "missing keys index to null");
    // strictly, it is not YAML
    assert!(SessionInfo::from_yaml(&String::from_utf8_lossy(&raw)).is_err());
}

#[test]
fn session_yaml_quirks() {
    // cp1252, undefined bytes, a value starting with a comma, a NUL-padded tail
    let raw = b"---\nWeekendInfo:\n TrackName: caf\xe9\x81\n TeamName: , odd\nDriverInfo:\n Drivers:\n - CarIdx: 0\n   UserName: 007\n   AbbrevName: Bond, J\n\n...\n\0\0garbage";
    let (text, utf8) = decode(raw);
    assert!(!utf8);
    assert!(text.contains("café ") && !text.contains("garbage"));
    let info = SessionInfo::from_bytes(raw).unwrap();
    assert_eq!(info.track_name(), Some("café"));
    assert_eq!(info.get("WeekendInfo.TeamName").and_then(|v| v.as_str()), Some(", odd"));
    let driver = &info.drivers()[0];
    assert_eq!(driver.user_name, "007", "names stay text");
    // duplicate keys: the last wins, as in PyYAML
    let info = SessionInfo::from_yaml("A:\n B: 1\n B: 2\n").unwrap();
    assert_eq!(info.get("A.B").and_then(|v| v.as_i64()), Some(2));
    // UTF-8 files quote strings but do not escape inside them
    let fixed = fix_quirks("---\nWeekendInfo:\n Encoding: UTF8\n TeamName: \"The \"Best\" \\ team\"\n", true);
    let info = SessionInfo::from_yaml(&fixed).unwrap();
    assert_eq!(info.get("WeekendInfo.TeamName").and_then(|v| v.as_str()), Some("The \"Best\" \\ team"));
    // dates stay strings, numbers with units stay strings, numbers parse
    let info = SessionInfo::from_yaml("W:\n D: 2024-06-24\n L: 4.28 km\n N: 3\n").unwrap();
    assert_eq!(info.get("W.D").and_then(|v| v.as_str()), Some("2024-06-24"));
    assert_eq!(info.get("W.L").and_then(|v| v.as_f64()), Some(4.28));
    assert_eq!(info.get("W.N").and_then(|v| v.as_i64()), Some(3));
    assert!(SessionInfo::from_bytes(b"").unwrap().track().is_none());
}

// ---- cross-check against pyirsdk ----

const PY_CHANNELS_INT: [&str; 4] = ["Lap", "Gear", "SessionFlags", "OnPitRoad"];

fn value_matches(ours: Option<Value>, theirs: &serde_json::Value) -> bool {
    match (ours, theirs) {
        (Some(Value::Bool(a)), serde_json::Value::Bool(b)) => a == *b,
        (Some(v), serde_json::Value::Number(n)) if v.as_i64().is_some() => v.as_i64() == n.as_i64(),
        (Some(v), serde_json::Value::Number(n)) => {
            let (a, b) = (v.as_f64(), n.as_f64().unwrap_or(f64::NAN));
            a == b || (a - b).abs() <= 1e-6 * a.abs().max(b.abs())
        }
        (Some(v), serde_json::Value::Null) => v.as_f64().is_nan(),
        _ => false,
    }
}

fn elements(ours: &pitbox_driver::ibt::Row<'_>, name: &str) -> Vec<Option<Value>> {
    let var = ours.vars().get(name).unwrap();
    (0..var.count).map(|i| ours.value(var, i)).collect()
}

fn compare(file: &str, what: &str, ours: Vec<Option<Value>>, theirs: &serde_json::Value) {
    let theirs: Vec<&serde_json::Value> = match theirs {
        serde_json::Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    assert_eq!(ours.len(), theirs.len(), "{file} {what}: element count");
    for (i, (a, b)) in ours.into_iter().zip(theirs).enumerate() {
        assert!(value_matches(a, b), "{file} {what}[{i}]: ours {a:?}, pyirsdk {b}");
    }
}

#[test]
fn rows_match_pyirsdk() {
    let skip = std::env::var("PITBOX_SKIP_PYIRSDK").is_ok_and(|v| v == "1");
    let importable =
        Command::new("python3").args(["-c", "import irsdk"]).output().is_ok_and(|o| o.status.success());
    if !importable {
        if skip {
            eprintln!("skipping the pyirsdk cross-check (PITBOX_SKIP_PYIRSDK=1)");
            return;
        }
        panic!(
            "the pyirsdk cross-check needs python3 with pyirsdk: run `pip install pyirsdk` \
             (or set PITBOX_SKIP_PYIRSDK=1 to skip it)"
        );
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pyirsdk_dump.py");
    let out = Command::new("python3").arg(script).args(COMPLETE.map(fixture)).output().unwrap();
    assert!(out.status.success(), "{script} failed: {}", String::from_utf8_lossy(&out.stderr));
    let dump: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut compared = 0usize;
    for name in COMPLETE {
        let theirs = &dump[name];
        let ibt = Ibt::open(fixture(name)).unwrap();
        let session = &theirs["session"];
        let info = ibt.session_info().unwrap();
        assert_eq!(info.track_name(), session["TrackName"].as_str(), "{name}");
        assert_eq!(info.track_display_name(), session["TrackDisplayName"].as_str(), "{name}");
        assert_eq!(info.driver_car_idx(), session["DriverCarIdx"].as_i64(), "{name}");
        let drivers = info.drivers();
        let py_drivers = session["Drivers"].as_array().unwrap();
        assert_eq!(drivers.len(), py_drivers.len(), "{name}");
        for (d, p) in drivers.iter().zip(py_drivers) {
            assert_eq!(Some(d.user_name.as_str()), p["UserName"].as_str(), "{name}");
            assert_eq!(Some(d.car_number.as_str()), p["CarNumber"].as_str(), "{name}");
            assert_eq!(Some(d.car_screen_name.as_str()), p["CarScreenName"].as_str(), "{name}");
        }
        if ibt.layout() == Layout::Live {
            // pyirsdk reads the second-newest buffer (the newest may be half written; we re-check
            // its tickCount instead), so compare that one
            let second_newest = ibt.row(ibt.record_count() - 2).unwrap();
            let py = session["latest"].as_object().unwrap();
            assert!(py.len() >= 8, "{name}: pyirsdk gave {py:?}");
            for (channel, values) in py {
                compare(name, channel, elements(&second_newest, channel), values);
                compared += 1;
            }
            continue;
        }
        assert_eq!(theirs["records"].as_u64(), Some(ibt.record_count() as u64), "{name}");
        let channels = theirs["channels"].as_object().unwrap();
        assert!(channels.len() >= 8, "{name}: pyirsdk gave {:?}", channels.keys());
        let rows: Vec<_> = ibt.rows().map(Result::unwrap).collect();
        for (channel, per_row) in channels {
            let per_row = per_row.as_array().unwrap();
            assert_eq!(per_row.len(), rows.len(), "{name} {channel}: row count");
            for (row, py) in rows.iter().zip(per_row) {
                if PY_CHANNELS_INT.contains(&channel.as_str()) {
                    assert!(py.is_i64() || py.is_boolean(), "{name} {channel}: {py}");
                }
                compare(name, &format!("{channel} row {}", row.index()), elements(row, channel), py);
                compared += 1;
            }
        }
    }
    assert!(compared > 50_000, "compared only {compared} values");
}
