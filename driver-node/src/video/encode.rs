//! H.264 encoding with Cisco's OpenH264 (the `openh264` crate, built from source). The crate's
//! defaults suit a small webcam call (120 kbps, quality mode); an onboard view is screen content,
//! so every setting is chosen here: screen-content real-time usage, bitrate rate control at the
//! requested rate (OpenH264 holds a bitrate only when it may skip frames, so skipping stays on: a
//! busy scene costs frame rate, not the uplink), the frame rate, an IDR at least every
//! `keyframe_secs`, an IDR on demand, and no adaptive quantisation or background detection (which
//! OpenH264 does not do for screen content). A bitrate change makes a new encoder, whose
//! first frame is an IDR: it happens when the uplink backs up, exactly when the viewers need a
//! keyframe anyway. Output is Annex B (start codes), with SPS/PPS before each IDR. Reads no env
//! vars.

use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode,
    SpsPpsStrategy, UsageType,
};
use openh264::OpenH264API;

use super::convert::I420;

/// How the encoder is set up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncodeSettings {
    pub fps: u32,
    pub bitrate_bps: u32,
    /// Seconds between IDR frames at most.
    pub keyframe_secs: f32,
}

/// One encoded picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub data: Vec<u8>,
    pub keyframe: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("H.264 encoder: {0}")]
pub struct EncodeError(String);

pub struct H264Encoder {
    encoder: Encoder,
    settings: EncodeSettings,
    force_key: bool,
}

fn config(s: &EncodeSettings) -> EncoderConfig {
    let period = (s.keyframe_secs * s.fps as f32).round().max(1.0) as u32;
    EncoderConfig::new()
        .usage_type(UsageType::ScreenContentRealTime)
        .rate_control_mode(RateControlMode::Bitrate)
        .bitrate(BitRate::from_bps(s.bitrate_bps))
        .max_frame_rate(FrameRate::from_hz(s.fps as f32))
        .skip_frames(true)
        .adaptive_quantization(false)
        .background_detection(false)
        .intra_frame_period(IntraFramePeriod::from_num_frames(period))
        .sps_pps_strategy(SpsPpsStrategy::ConstantId)
        .complexity(Complexity::Low)
        // One thread: the node shares its PC with the sim; capture and encode stay on one core.
        .num_threads(1)
}

impl H264Encoder {
    pub fn new(settings: EncodeSettings) -> Result<Self, EncodeError> {
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config(&settings))
            .map_err(|e| EncodeError(e.to_string()))?;
        Ok(Self { encoder, settings, force_key: false })
    }

    pub fn settings(&self) -> EncodeSettings {
        self.settings
    }

    /// A new target bitrate (the encoder is made again; its next frame is an IDR).
    pub fn set_bitrate(&mut self, bps: u32) -> Result<(), EncodeError> {
        if bps == self.settings.bitrate_bps {
            return Ok(());
        }
        *self = Self::new(EncodeSettings { bitrate_bps: bps, ..self.settings })?;
        Ok(())
    }

    /// The next frame will be an IDR.
    pub fn request_keyframe(&mut self) {
        self.force_key = true;
    }

    /// Encodes one picture; `None` when the encoder skipped it.
    pub fn encode(&mut self, picture: &I420) -> Result<Option<Encoded>, EncodeError> {
        if std::mem::take(&mut self.force_key) {
            self.encoder.force_intra_frame();
        }
        let out = self.encoder.encode(picture).map_err(|e| EncodeError(e.to_string()))?;
        let keyframe = match out.frame_type() {
            FrameType::Skip | FrameType::Invalid => return Ok(None),
            FrameType::IDR | FrameType::I => true,
            _ => false,
        };
        let data = out.to_vec();
        if data.is_empty() {
            return Ok(None);
        }
        Ok(Some(Encoded { data, keyframe }))
    }
}

/// Decodes H.264 back to I420 with OpenH264's decoder (tests, `doctor`, benchmarks).
pub struct H264Decoder {
    decoder: openh264::decoder::Decoder,
}

impl H264Decoder {
    pub fn new() -> Result<Self, EncodeError> {
        let decoder = openh264::decoder::Decoder::new().map_err(|e| EncodeError(e.to_string()))?;
        Ok(Self { decoder })
    }

    /// One access unit in; the picture it completes, if any.
    pub fn decode(&mut self, annex_b: &[u8]) -> Result<Option<I420>, EncodeError> {
        use openh264::formats::YUVSource;
        let Some(yuv) = self.decoder.decode(annex_b).map_err(|e| EncodeError(e.to_string()))? else {
            return Ok(None);
        };
        let (w, h) = yuv.dimensions();
        let (sy, su, sv) = yuv.strides();
        let mut data = Vec::with_capacity(w * h * 3 / 2);
        for r in 0..h {
            data.extend_from_slice(&yuv.y()[r * sy..r * sy + w]);
        }
        for r in 0..h / 2 {
            data.extend_from_slice(&yuv.u()[r * su..r * su + w / 2]);
        }
        for r in 0..h / 2 {
            data.extend_from_slice(&yuv.v()[r * sv..r * sv + w / 2]);
        }
        Ok(Some(I420 { width: w, height: h, data }))
    }
}
