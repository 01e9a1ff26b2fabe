//! Utterances out of a stream of 10 ms frames: WebRTC's voice-activity detector (the `webrtc-vad`
//! crate, C code built from source, no model) decides speech per frame, and a hangover closes an
//! utterance only after [`HANGOVER_FRAMES`] without speech, so a pause between words does not cut
//! a command in two. Only whole utterances come out (a little audio before the first voiced frame,
//! none of the trailing silence beyond [`TAIL_FRAMES`]); silence is never passed on. The
//! push-to-talk [`Gate`] decides when the detector listens at all. Reads no env vars.

use std::collections::VecDeque;

use super::capture::FRAME;

/// Voiced frames in a row that start an utterance (30 ms: a click is not speech).
pub const START_FRAMES: usize = 3;
/// Unvoiced frames that end one (600 ms: the pause in "box … this lap" is shorter).
pub const HANGOVER_FRAMES: usize = 60;
/// Frames kept from before the start (the detector is late on soft consonants).
pub const PREROLL_FRAMES: usize = 20;
/// Trailing unvoiced frames kept (the end of the last word).
pub const TAIL_FRAMES: usize = 15;
/// Voiced frames an utterance needs (a cough is not a command).
pub const MIN_VOICED_FRAMES: usize = 20;
/// The longest utterance (15 s): beyond it, what was heard goes on as it is.
pub const MAX_FRAMES: usize = 1500;

/// Push-to-talk: when the microphone is listened to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PttMode {
    /// Listen while the button is held.
    Hold,
    /// Press and release to start listening, again to stop.
    Toggle,
    /// Always listen; the voice-activity detector finds the utterances.
    Vad,
}

/// Whether the microphone is open, from the mode and the button.
#[derive(Debug)]
pub struct Gate {
    mode: PttMode,
    open: bool,
    was_pressed: bool,
}

impl Gate {
    pub fn new(mode: PttMode) -> Self {
        Self { mode, open: mode == PttMode::Vad, was_pressed: false }
    }

    /// Takes the button's state now; returns whether the microphone is open.
    pub fn update(&mut self, pressed: bool) -> bool {
        match self.mode {
            PttMode::Vad => self.open = true,
            PttMode::Hold => self.open = pressed,
            PttMode::Toggle => {
                // Flips on release, so a long press is one toggle.
                if self.was_pressed && !pressed {
                    self.open = !self.open;
                }
            }
        }
        self.was_pressed = pressed;
        self.open
    }
}

/// Decides whether a 10 ms frame at 16 kHz is speech.
pub trait Detector {
    fn is_voice(&mut self, frame: &[i16]) -> bool;
}

/// WebRTC's detector in its aggressive mode (fewer false starts from engine noise).
pub struct WebRtc(webrtc_vad::Vad);

impl WebRtc {
    pub fn new() -> Self {
        Self(webrtc_vad::Vad::new_with_rate_and_mode(
            webrtc_vad::SampleRate::Rate16kHz,
            webrtc_vad::VadMode::Aggressive,
        ))
    }
}

impl Default for WebRtc {
    fn default() -> Self {
        Self::new()
    }
}

impl Detector for WebRtc {
    fn is_voice(&mut self, frame: &[i16]) -> bool {
        self.0.is_voice_segment(frame).unwrap_or(false)
    }
}

/// Finds utterances in 10 ms frames.
pub struct Segmenter<D: Detector> {
    detector: D,
    preroll: VecDeque<Vec<f32>>,
    voiced_run: usize,
    speaking: Option<Utterance>,
}

struct Utterance {
    frames: Vec<Vec<f32>>,
    voiced: usize,
    silent_run: usize,
}

impl<D: Detector> Segmenter<D> {
    pub fn new(detector: D) -> Self {
        Self { detector, preroll: VecDeque::new(), voiced_run: 0, speaking: None }
    }

    /// Feeds one frame of [`FRAME`] samples; returns a whole utterance when one ended.
    pub fn push(&mut self, frame: Vec<f32>) -> Option<Vec<f32>> {
        let pcm: Vec<i16> = frame.iter().map(|s| (s.clamp(-1.0, 1.0) * 32767.0) as i16).collect();
        let voiced = pcm.len() == FRAME && self.detector.is_voice(&pcm);
        match self.speaking.as_mut() {
            None => {
                self.voiced_run = if voiced { self.voiced_run + 1 } else { 0 };
                self.preroll.push_back(frame);
                if self.voiced_run >= START_FRAMES {
                    let frames: Vec<_> = self.preroll.drain(..).collect();
                    self.speaking = Some(Utterance { frames, voiced: self.voiced_run, silent_run: 0 });
                    self.voiced_run = 0;
                } else if self.preroll.len() > PREROLL_FRAMES {
                    self.preroll.pop_front();
                }
                None
            }
            Some(u) => {
                u.frames.push(frame);
                if voiced {
                    u.voiced += 1;
                    u.silent_run = 0;
                } else {
                    u.silent_run += 1;
                }
                (u.silent_run >= HANGOVER_FRAMES || u.frames.len() >= MAX_FRAMES)
                    .then(|| self.end())
                    .flatten()
            }
        }
    }

    /// Ends what is being heard (the push-to-talk button was released): the utterance, if there
    /// was speech enough.
    pub fn flush(&mut self) -> Option<Vec<f32>> {
        self.preroll.clear();
        self.voiced_run = 0;
        self.end()
    }

    fn end(&mut self) -> Option<Vec<f32>> {
        let mut u = self.speaking.take()?;
        let drop_tail = u.silent_run.saturating_sub(TAIL_FRAMES);
        u.frames.truncate(u.frames.len() - drop_tail);
        (u.voiced >= MIN_VOICED_FRAMES).then(|| u.frames.concat())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Speech is any frame with energy (the real detector is exercised by the uplink test).
    struct Loud;
    impl Detector for Loud {
        fn is_voice(&mut self, frame: &[i16]) -> bool {
            frame.iter().any(|s| s.unsigned_abs() > 1000)
        }
    }

    fn frames(loud: bool, n: usize) -> impl Iterator<Item = Vec<f32>> {
        std::iter::repeat_n(vec![if loud { 0.5 } else { 0.0 }; FRAME], n)
    }

    #[test]
    fn an_utterance_with_a_pause_comes_out_whole_without_the_silence() {
        let mut s = Segmenter::new(Loud);
        let input = frames(false, 100)
            .chain(frames(true, 50))
            .chain(frames(false, 30)) // a pause inside the command
            .chain(frames(true, 40))
            .chain(frames(false, 200));
        let out: Vec<Vec<f32>> = input.filter_map(|f| s.push(f)).collect();
        assert_eq!(out.len(), 1);
        // Preroll (20 frames, of which 2 voiced) + 50 + 30 + 40 + the tail.
        assert_eq!(out[0].len(), (PREROLL_FRAMES - START_FRAMES + 1 + 50 + 30 + 40 + TAIL_FRAMES) * FRAME);
        assert!(frames(false, 500).all(|f| s.push(f).is_none()), "silence never comes out");
    }

    #[test]
    fn clicks_and_coughs_are_not_utterances_and_release_ends_one() {
        let mut s = Segmenter::new(Loud);
        let clicks = (0..50).flat_map(|_| frames(true, 2).chain(frames(false, 5)));
        assert!(clicks.filter_map(|f| s.push(f)).next().is_none());
        let cough = frames(true, 10).chain(frames(false, 100));
        assert!(cough.filter_map(|f| s.push(f)).next().is_none());
        for f in frames(true, 40) {
            assert!(s.push(f).is_none());
        }
        assert!(s.flush().is_some(), "the button released mid-speech ends the utterance");
    }

    #[test]
    fn gates() {
        let mut hold = Gate::new(PttMode::Hold);
        assert_eq!([false, true, true, false].map(|p| hold.update(p)), [false, true, true, false]);
        let mut toggle = Gate::new(PttMode::Toggle);
        assert_eq!(
            [true, true, false, false, true, false].map(|p| toggle.update(p)),
            [false, false, true, true, true, false]
        );
        let mut vad = Gate::new(PttMode::Vad);
        assert!(vad.update(false));
    }
}
