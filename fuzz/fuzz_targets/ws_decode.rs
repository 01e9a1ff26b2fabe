//! Fuzz target: arbitrary bytes as one WebSocket text message from a client, through the runtime's
//! decoding path (`pitbox_schema::wire::decode_client`: the envelope, then the seed protocol's shapes).
//! Bytes that are not UTF-8 are what the socket closes with 1007 before decoding. Decoding must
//! answer `Ok` or a typed error, never panic or overflow the stack; and what the server acts on (a
//! client message type; telemetry once its samples validate, as the driver session requires) must
//! survive the trip the server makes with it: encoded again, it decodes to the same message.
//! Reads no env vars.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pitbox_schema::wire::{decode_client, Envelope, Inbound, Message};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(Inbound::Message(env)) = decode_client(text) else { return };
    let acted_on = match &env.message {
        Message::TelemetryUpdate(u) => u.frame.sample.validate().is_ok(),
        Message::TelemetryBatch(b) => b.frames.iter().all(|f| f.sample.validate().is_ok()),
        Message::Authenticate(_)
        | Message::Subscribe(_)
        | Message::Unsubscribe(_)
        | Message::AnswerHandoff(_) => true,
        // Server-only types are refused by the server before anything reads them.
        _ => false,
    };
    if !acted_on {
        return;
    }
    let json = serde_json::to_string(&*env).expect("an accepted message encodes");
    let back: Envelope =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json} does not decode again: {e}"));
    assert_eq!(back, *env, "changed on the way back: {json}");
});
