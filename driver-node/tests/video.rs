//! Onboard video against real components: an Xvfb X server showing known, moving content (a window
//! on which this test draws the frame number as 16 black/white bars and a box that moves), captured
//! with the node's X11 capture, scaled and converted to I420, encoded with OpenH264 and decoded back
//! with OpenH264's decoder. Every frame must decode, at the right size, showing the number drawn,
//! with the luma PSNR against the captured picture above [`PSNR_FLOOR`] dB.
//!
//! One test in its own binary, because it sets `DISPLAY` for this process. Needs `Xvfb` (apt
//! `xvfb`); without it the test fails naming it, unless `PITBOX_SKIP_DEVICE_TESTS=1` outside CI.
//! Env: `PITBOX_SKIP_DEVICE_TESTS`, `CI`. Linux only.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use pitbox_driver::video::capture::{self, bars_of, read_bars, SourceSpec};
use pitbox_driver::video::convert::{bgra_to_i420, psnr, I420};
use pitbox_driver::video::encode::{EncodeSettings, H264Decoder, H264Encoder};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ConnectionExt as _, CreateGCAux, CreateWindowAux, EventMask, Rectangle, WindowClass,
};
use x11rb::protocol::Event;
use x11rb::wrapper::ConnectionExt as _;

/// Luma PSNR every decoded frame must reach (1.5 Mbit/s, 640×360, flat content).
const PSNR_FLOOR: f64 = 30.0;
const FRAMES: u32 = 40;

fn start_xvfb() -> Option<(common::Killed, String)> {
    match common::start_xvfb("1280x720x24", &[]) {
        Ok(x) => Some(x),
        Err(why) => {
            common::missing("video test", &why);
            None
        }
    }
}

#[test]
fn xvfb_capture_encodes_and_decodes_to_the_content_drawn() {
    let Some((_xvfb, display)) = start_xvfb() else { return };
    std::env::set_var("DISPLAY", &display);

    // The content: a window over the whole screen, drawn frame by frame.
    let (conn, screen_num) = x11rb::connect(Some(&display)).unwrap();
    let screen = &conn.setup().roots[screen_num];
    let (root, black, white) = (screen.root, screen.black_pixel, screen.white_pixel);
    let (sw, sh) = (screen.width_in_pixels, screen.height_in_pixels);
    let win = conn.generate_id().unwrap();
    conn.create_window(
        screen.root_depth,
        win,
        root,
        0,
        0,
        sw,
        sh,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new().background_pixel(black).override_redirect(1).event_mask(EventMask::EXPOSURE),
    )
    .unwrap();
    let (gw, gb, gg) =
        (conn.generate_id().unwrap(), conn.generate_id().unwrap(), conn.generate_id().unwrap());
    conn.create_gc(gw, win, &CreateGCAux::new().foreground(white)).unwrap();
    conn.create_gc(gb, win, &CreateGCAux::new().foreground(black)).unwrap();
    conn.create_gc(gg, win, &CreateGCAux::new().foreground(0x80_80_80)).unwrap();
    conn.map_window(win).unwrap();
    conn.flush().unwrap();
    // Drawing before the window is shown would be lost: wait for its first Expose.
    loop {
        if let Event::Expose(_) = conn.wait_for_event().unwrap() {
            break;
        }
    }

    let mut cap = capture::open(&SourceSpec::Screen(0)).unwrap();
    assert_eq!(cap.size(), (usize::from(sw), usize::from(sh)), "{}", cap.describe());
    let (w, h) = (640usize, 360usize);
    let mut encoder =
        H264Encoder::new(EncodeSettings { fps: 30, bitrate_bps: 1_500_000, keyframe_secs: 1.0 }).unwrap();
    let mut decoder = H264Decoder::new().unwrap();
    let mut source = I420::new(w, h);
    let (mut decoded, mut worst, mut keyframes, mut bytes) = (0u32, f64::INFINITY, 0, 0usize);
    let (mut t_capture, mut t_encode) = (0.0, 0.0);
    for n in 1..=FRAMES {
        let bar_h = sh / 8;
        let mut rects = (vec![], vec![]);
        for bit in 0..16u16 {
            let x = bit * sw / 16;
            let r = Rectangle { x: x as i16, y: 0, width: sw / 16 + 1, height: bar_h };
            if bars_of(n, usize::from(x) + 1, usize::from(sw)) {
                rects.0.push(r);
            } else {
                rects.1.push(r);
            }
        }
        conn.poly_fill_rectangle(win, gw, &rects.0).unwrap();
        conn.poly_fill_rectangle(win, gb, &rects.1).unwrap();
        conn.poly_fill_rectangle(
            win,
            gb,
            &[Rectangle { x: 0, y: bar_h as i16, width: sw, height: sh - bar_h }],
        )
        .unwrap();
        let bx = (n as i16 * 24) % (sw as i16 - 200);
        conn.poly_fill_rectangle(win, gg, &[Rectangle { x: bx, y: 300, width: 200, height: 200 }]).unwrap();
        // The server has drawn everything once it answers a round trip.
        conn.sync().unwrap();

        let t = Instant::now();
        let frame = cap.grab().unwrap();
        bgra_to_i420(frame, &mut source).unwrap();
        t_capture += t.elapsed().as_secs_f64();
        assert_eq!(read_bars(source.y(), w, h), n, "the capture shows frame {n}");
        let t = Instant::now();
        let enc = encoder.encode(&source).unwrap().expect("no frame is skipped");
        t_encode += t.elapsed().as_secs_f64();
        keyframes += u32::from(enc.keyframe);
        bytes += enc.data.len();
        if n == 1 {
            assert!(enc.keyframe, "the first frame is a keyframe");
        }
        let pic = decoder.decode(&enc.data).unwrap().expect("every frame decodes");
        decoded += 1;
        assert_eq!((pic.width, pic.height), (w, h));
        assert_eq!(read_bars(pic.y(), w, h), n, "the decoded picture shows frame {n}");
        let p = psnr(pic.y(), source.y());
        worst = worst.min(p);
        assert!(p > PSNR_FLOOR, "frame {n}: PSNR {p:.1} dB");
    }
    assert_eq!(decoded, FRAMES);
    assert!(keyframes >= 2, "a keyframe at least every second (30 frames): {keyframes}");
    let n = f64::from(FRAMES);
    println!(
        "video (Xvfb 1280x720 → 640x360): {FRAMES} frames decoded, worst luma PSNR {worst:.1} dB (floor {PSNR_FLOOR}); capture+convert {:.2} ms/frame, encode {:.2} ms/frame, {:.0} bytes/frame, {keyframes} keyframes",
        t_capture * 1000.0 / n,
        t_encode * 1000.0 / n,
        bytes as f64 / n
    );
}
