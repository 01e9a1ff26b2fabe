//! Fuzz target: arbitrary bytes as iRacing telemetry (file or live layout). Parsing must answer
//! `Ok` or `Err`, never panic; when it succeeds, every element of every channel of every row, the
//! session YAML and the lap table are read, and every row must convert to a sample that passes
//! `TelemetrySample::validate`. Reads no env vars.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = pitbox_driver::ibt::verify(data) {
        assert!(report.invalid_samples.is_empty(), "{:?}", report.invalid_samples);
    }
});
