//! Voice commands on the driver node: [`stt`] turns a push-to-talk clip into text (whisper.cpp,
//! cargo feature `stt`), [`recognise`] turns text into a [`schema::wire::VoiceIntent`].
//! Reads no env vars itself (`stt` reads `PITBOX_WHISPER_MODEL`).

pub mod recognise;
pub mod stt;
