//! Fuzz target: arbitrary bytes as the session-info YAML of a `.ibt` file or of the live sim
//! (cp1252 or UTF-8, with iRacing's quirks). Decoding, repair and parsing must answer `Ok` or
//! `Err`, never panic, whatever the nesting, aliases or encoding; a parsed tree must answer every
//! lookup PitBox makes of it (track, car, drivers, sessions, sectors, the live sample converter).
//! Reads no env vars.
#![no_main]

use pitbox_driver::ibt::{SampleConverter, SessionInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = SessionInfo::from_bytes(data) {
        let _ = (info.track(), info.car(), info.player(), info.sessions(), info.sector_starts());
        let _ = info.get("DriverInfo.Drivers.0.UserName").and_then(|v| v.to_text());
        let _ = SampleConverter::live(Some(&info));
    }
});
