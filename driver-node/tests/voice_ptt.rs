//! The keyboard push-to-talk on X11: an Xvfb server, a key pressed and released through XTEST (as
//! a real keyboard would, whichever window has the focus), read by the node's `key:CODE` button
//! (QueryKeymap polling), and the `hold` and `toggle` gates on top of it.
//!
//! One test in its own binary (it sets `DISPLAY`). Needs `Xvfb` (tools/setup.sh): without it the
//! test fails, unless `PITBOX_SKIP_DEVICE_TESTS=1` and `CI` is not `true`.
//! Env: `PITBOX_SKIP_DEVICE_TESTS`, `CI`. Linux only.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use pitbox_driver::voice::ptt::{self, PttButton, PttInput};
use pitbox_driver::voice::segment::{Gate, PttMode};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::ConnectionExt as _;
use x11rb::protocol::xtest::ConnectionExt as _;

/// The X keycode of the space bar.
const SPACE: u8 = 65;

fn until(input: &mut dyn PttInput, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while input.pressed() != want {
        assert!(Instant::now() < deadline, "the key never read {want}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_key_held_on_x11_opens_the_microphone() {
    let _xvfb = match common::start_xvfb("640x480x24", &[]) {
        Ok((xvfb, display)) => {
            std::env::set_var("DISPLAY", display);
            xvfb
        }
        Err(why) => {
            common::missing("voice_ptt", &why);
            return;
        }
    };

    let (conn, screen) = x11rb::connect(None).unwrap();
    let root = conn.setup().roots[screen].root;
    let press = |down: bool| {
        // 2 = KeyPress, 3 = KeyRelease (XTEST's FakeInput types).
        conn.xtest_fake_input(if down { 2 } else { 3 }, SPACE, 0, root, 0, 0, 0).unwrap();
        conn.get_input_focus().unwrap().reply().unwrap();
    };
    assert!(ptt::open(&PttButton::Key(300)).is_err(), "keycodes stop at 255");
    let mut key = ptt::open(&PttButton::Key(u32::from(SPACE))).unwrap();
    assert!(!key.pressed());
    let (mut hold, mut toggle) = (Gate::new(PttMode::Hold), Gate::new(PttMode::Toggle));

    press(true);
    until(key.as_mut(), true);
    assert!(
        hold.update(true) && !toggle.update(true),
        "hold opens at the press, toggle waits for the release"
    );
    press(false);
    until(key.as_mut(), false);
    assert!(!hold.update(false) && toggle.update(false));
    press(true);
    until(key.as_mut(), true);
    press(false);
    until(key.as_mut(), false);
    assert!(toggle.update(true) && !toggle.update(false), "a second press and release closes it");
}
