//! Fuzz target: arbitrary bytes as one WebSocket text message from a client, through the runtime's
//! decoding path (`schema::wire::decode_client`: the envelope, then the seed protocol's shapes).
//! Bytes that are not UTF-8 are what the socket closes with 1007 before decoding. Decoding must
//! answer `Ok` or a typed error, never panic or overflow the stack; and what it accepts must
//! survive the trip the server makes with it: encoded again, it decodes to the same message.
//! Reads no env vars.
#![no_main]

use libfuzzer_sys::fuzz_target;
use schema::wire::{decode_client, Envelope, Inbound};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(Inbound::Message(env)) = decode_client(text) {
        let json = serde_json::to_string(&*env).expect("an accepted message encodes");
        let back: Envelope = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("{json} does not decode again: {e}"));
        assert_eq!(back, *env, "changed on the way back: {json}");
    }
});
