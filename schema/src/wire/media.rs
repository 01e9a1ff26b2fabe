//! Media frames: the small fixed header of every binary WebSocket frame (onboard video, and spoken
//! answers to the driver), defined once here for the driver node, the runtime and the dashboard. Reads no
//! env vars.
//!
//! A binary frame is `header (24 bytes) ‖ payload`. All numbers are big-endian (network order,
//! what a JavaScript `DataView` reads by default):
//!
//! | offset | size | field | meaning |
//! | --- | --- | --- | --- |
//! | 0 | 1 | `version` | [`MEDIA_VERSION`] (1) |
//! | 1 | 1 | `codec` | [`Codec`]: 1 = H.264 Annex B, 2 = Opus, 3 = 16-bit mono PCM (little-endian) |
//! | 2 | 1 | `flags` | bit 0: keyframe (an IDR with its SPS/PPS: a decoder can start here) |
//! | 3 | 1 | `header_len` | 24 here; readers skip to it, so fields can be added at the end |
//! | 4 | 4 | `stream` | which stream: the node sends 0 (its video); the runtime tells a dashboard the number of each driver's stream in `video_watching` |
//! | 8 | 4 | `sequence` | counts the stream's frames from 1 (gaps = frames dropped on the way) |
//! | 12 | 8 | `capture_us` | capture time, microseconds since the Unix epoch (glass-to-glass latency) |
//! | 20 | 2 | `width` | picture width (0 for audio) |
//! | 22 | 2 | `height` | picture height (0 for audio) |
//!
//! The JSON messages around it (`video_control` to the node, `watch_video` / `video_watching` /
//! `unwatch_video` for dashboards) are in the envelope.

use serde::{Deserialize, Serialize};

/// Version of the media header written by this build.
pub const MEDIA_VERSION: u8 = 1;
/// Bytes of the header this build writes.
pub const MEDIA_HEADER_LEN: usize = 24;
/// The keyframe bit of `flags`.
pub const FLAG_KEYFRAME: u8 = 1;
/// The stream number a driver node gives its onboard video.
pub const NODE_VIDEO_STREAM: u32 = 0;

/// How the payload is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    /// H.264 as an Annex B byte stream (start codes), one access unit per frame.
    H264,
    /// Opus packets (reserved).
    Opus,
    /// 16-bit little-endian mono PCM: spoken answers to a driver node (`voice_say` gives the rate).
    Pcm16,
}

impl Codec {
    pub fn code(self) -> u8 {
        match self {
            Codec::H264 => 1,
            Codec::Opus => 2,
            Codec::Pcm16 => 3,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Codec::H264),
            2 => Some(Codec::Opus),
            3 => Some(Codec::Pcm16),
            _ => None,
        }
    }
}

/// The fixed header of a media frame (see the module docs for the layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaHeader {
    pub codec: Codec,
    pub keyframe: bool,
    pub stream: u32,
    pub sequence: u32,
    pub capture_us: u64,
    pub width: u16,
    pub height: u16,
}

/// Why bytes are not a media frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaError {
    TooShort(usize),
    Version(u8),
    Codec(u8),
    HeaderLen(u8),
    Empty,
}

impl core::fmt::Display for MediaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MediaError::TooShort(n) => {
                write!(f, "media frame of {n} bytes is shorter than its {MEDIA_HEADER_LEN}-byte header")
            }
            MediaError::Version(v) => write!(f, "media header version {v} is not supported (expected 1)"),
            MediaError::Codec(c) => write!(f, "unknown media codec {c}"),
            MediaError::HeaderLen(n) => write!(f, "media header length {n} is below {MEDIA_HEADER_LEN}"),
            MediaError::Empty => write!(f, "media frame has no payload"),
        }
    }
}

impl std::error::Error for MediaError {}

impl MediaHeader {
    /// The header as bytes.
    pub fn encode(&self) -> [u8; MEDIA_HEADER_LEN] {
        let mut b = [0u8; MEDIA_HEADER_LEN];
        b[0] = MEDIA_VERSION;
        b[1] = self.codec.code();
        b[2] = if self.keyframe { FLAG_KEYFRAME } else { 0 };
        b[3] = MEDIA_HEADER_LEN as u8;
        b[4..8].copy_from_slice(&self.stream.to_be_bytes());
        b[8..12].copy_from_slice(&self.sequence.to_be_bytes());
        b[12..20].copy_from_slice(&self.capture_us.to_be_bytes());
        b[20..22].copy_from_slice(&self.width.to_be_bytes());
        b[22..24].copy_from_slice(&self.height.to_be_bytes());
        b
    }

    /// Header and payload as one frame.
    pub fn frame(&self, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(MEDIA_HEADER_LEN + payload.len());
        v.extend_from_slice(&self.encode());
        v.extend_from_slice(payload);
        v
    }

    /// Reads a frame: its header and where the payload starts.
    pub fn decode(bytes: &[u8]) -> Result<(MediaHeader, usize), MediaError> {
        if bytes.len() < MEDIA_HEADER_LEN {
            return Err(MediaError::TooShort(bytes.len()));
        }
        if bytes[0] != MEDIA_VERSION {
            return Err(MediaError::Version(bytes[0]));
        }
        let codec = Codec::from_code(bytes[1]).ok_or(MediaError::Codec(bytes[1]))?;
        let len = bytes[3];
        if (len as usize) < MEDIA_HEADER_LEN {
            return Err(MediaError::HeaderLen(len));
        }
        if bytes.len() <= len as usize {
            return Err(MediaError::Empty);
        }
        let u32_at = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let u16_at = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        let mut us = [0u8; 8];
        us.copy_from_slice(&bytes[12..20]);
        Ok((
            MediaHeader {
                codec,
                keyframe: bytes[2] & FLAG_KEYFRAME != 0,
                stream: u32_at(4),
                sequence: u32_at(8),
                capture_us: u64::from_be_bytes(us),
                width: u16_at(20),
                height: u16_at(22),
            },
            len as usize,
        ))
    }

    /// Rewrites the stream number of an encoded frame in place (the runtime numbers each
    /// dashboard's streams).
    pub fn set_stream(frame: &mut [u8], stream: u32) {
        if let Some(b) = frame.get_mut(4..8) {
            b.copy_from_slice(&stream.to_be_bytes());
        }
    }
}

/// What the runtime asks of a node's video (`video_control`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoAction {
    /// Nobody watches: stop capturing and encoding.
    Pause,
    /// Somebody watches: capture again, starting with a keyframe.
    Resume,
    /// Send a keyframe next (a viewer joined or skipped ahead).
    Keyframe,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoControl {
    pub action: VideoAction,
}

/// A dashboard asks to watch (or stop watching) one driver's onboard video.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchVideo {
    pub team_id: String,
    pub driver_id: String,
}

/// The runtime's answer to `watch_video`: binary frames whose header carries `stream` are this
/// driver's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoWatching {
    pub team_id: String,
    pub driver_id: String,
    pub stream: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_refuses_garbage() {
        let h = MediaHeader {
            codec: Codec::H264,
            keyframe: true,
            stream: 7,
            sequence: 123_456,
            capture_us: 1_764_500_000_123_456,
            width: 1280,
            height: 720,
        };
        let mut f = h.frame(&[0, 0, 0, 1, 0x67]);
        assert_eq!(f.len(), MEDIA_HEADER_LEN + 5);
        assert_eq!(MediaHeader::decode(&f).unwrap(), (h, MEDIA_HEADER_LEN));
        MediaHeader::set_stream(&mut f, 9);
        assert_eq!(MediaHeader::decode(&f).unwrap().0.stream, 9);
        assert_eq!(MediaHeader::decode(&f[..10]), Err(MediaError::TooShort(10)));
        assert_eq!(MediaHeader::decode(&f[..MEDIA_HEADER_LEN]), Err(MediaError::Empty));
        let mut bad = f.clone();
        bad[0] = 9;
        assert_eq!(MediaHeader::decode(&bad), Err(MediaError::Version(9)));
        let mut bad = f.clone();
        bad[1] = 77;
        assert_eq!(MediaHeader::decode(&bad), Err(MediaError::Codec(77)));
        let mut bad = f;
        bad[3] = 3;
        assert_eq!(MediaHeader::decode(&bad), Err(MediaError::HeaderLen(3)));
    }
}
