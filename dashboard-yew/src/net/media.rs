//! Media frames from the team socket (binary WebSocket frames with the header of
//! `pitbox_schema::wire::media`): the socket maps each frame's stream number to the driver it was told in
//! `video_watching`, and hands the frame to the video panel registered for that driver. The
//! registry is per page (thread-local: the browser's one thread). Reads no env vars.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// What a panel does with one frame (header included).
pub type Sink = Rc<dyn Fn(&[u8])>;

#[derive(Default)]
struct Registry {
    sinks: HashMap<String, Sink>,
    streams: HashMap<u32, String>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// A panel shows `driver`'s video from now on.
pub fn register(driver: &str, sink: Sink) {
    REGISTRY.with(|r| r.borrow_mut().sinks.insert(driver.to_owned(), sink));
}

pub fn unregister(driver: &str) {
    REGISTRY.with(|r| r.borrow_mut().sinks.remove(driver));
}

/// The runtime said which stream carries `driver`'s frames.
pub fn stream_is(stream: u32, driver: &str) {
    REGISTRY.with(|r| r.borrow_mut().streams.insert(stream, driver.to_owned()));
}

/// A binary frame arrived: to its driver's panel, if one is open.
pub fn deliver(frame: &[u8]) {
    let Ok((header, _)) = pitbox_schema::wire::media::MediaHeader::decode(frame) else { return };
    let sink = REGISTRY.with(|r| {
        let r = r.borrow();
        r.streams.get(&header.stream).and_then(|d| r.sinks.get(d)).cloned()
    });
    if let Some(sink) = sink {
        sink(frame);
    }
}

/// The `avc1.PPCCLL` codec string of an H.264 Annex B keyframe, read from its SPS (profile,
/// constraints, level); `None` without an SPS.
pub fn avc_codec(annex_b: &[u8]) -> Option<String> {
    let mut i = 0;
    while i + 4 < annex_b.len() {
        let (three, four) = (annex_b[i..].starts_with(&[0, 0, 1]), annex_b[i..].starts_with(&[0, 0, 0, 1]));
        let start = if four {
            i + 4
        } else if three {
            i + 3
        } else {
            i += 1;
            continue;
        };
        if annex_b.get(start).is_some_and(|h| h & 0x1f == 7) {
            let p = annex_b.get(start + 1..start + 4)?;
            return Some(format!("avc1.{:02X}{:02X}{:02X}", p[0], p[1], p[2]));
        }
        i = start;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_string_comes_from_the_sps() {
        let key = [0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1F, 0xAA, 0, 0, 1, 0x68, 0xCE, 0, 0, 1, 0x65, 0x88];
        assert_eq!(avc_codec(&key).as_deref(), Some("avc1.42C01F"));
        assert_eq!(avc_codec(&[0, 0, 1, 0x41, 0x9a]), None);
    }
}
