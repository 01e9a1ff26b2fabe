//! Fuzz target: arbitrary bytes as one binary WebSocket frame, through the media header decoder
//! the runtime runs on every frame a node sends (`pitbox_schema::wire::media::MediaHeader::decode`). It
//! must answer a header or a typed error, never panic; an accepted header, encoded again in front
//! of the same payload, must decode to itself. Reads no env vars.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pitbox_schema::wire::media::MediaHeader;

fuzz_target!(|data: &[u8]| {
    let Ok((header, at)) = MediaHeader::decode(data) else { return };
    assert!(at <= data.len());
    let again = header.frame(&data[at..]);
    let (back, _) = MediaHeader::decode(&again).expect("a re-encoded header decodes");
    assert_eq!(back, header);
});
