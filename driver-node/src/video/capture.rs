//! Screen capture behind one trait: a source is opened once, then [`Capture::grab`] is called at
//! the pace of the frame rate by the video thread (it returns the current picture at once; nothing
//! spins or blocks waiting for a change).
//!
//! Sources (`--video-source`):
//! - `screen` / `screen:N`: a whole monitor (X11: RandR monitor N, else the root window),
//! - `region:X,Y,WxH`: a rectangle of the desktop,
//! - `window:ID`: one window (X11 window id, or a Windows HWND: its client area; decimal or `0x…`),
//! - `pattern`: moving test content drawn in memory (a frame counter as bars), for `doctor`,
//!   benchmarks and machines without a screen.
//!
//! X11 goes through x11rb's pure-Rust connection (`GetImage` in ZPixmap format: BGRX rows), so
//! there is no C library and no `unsafe`. Windows capture (DXGI desktop duplication, GDI as the
//! fallback) lives in `platform/windows/`.
//! Reads `DISPLAY` (through x11rb) on X11.

use std::fmt;

use super::convert::Bgra;

/// What to capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    Screen(usize),
    Region { x: i16, y: i16, width: u16, height: u16 },
    Window(u32),
    Pattern { width: usize, height: usize },
}

impl SourceSpec {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (kind, arg) = s.split_once(':').unwrap_or((s, ""));
        match kind {
            "screen" if arg.is_empty() => Ok(SourceSpec::Screen(0)),
            "screen" => {
                arg.parse().map(SourceSpec::Screen).map_err(|_| format!("screen: {arg:?} is not a number"))
            }
            "window" => {
                let id = match arg.strip_prefix("0x") {
                    Some(hex) => u32::from_str_radix(hex, 16),
                    None => arg.parse(),
                };
                id.map(SourceSpec::Window).map_err(|_| format!("window: {arg:?} is not a window id"))
            }
            "region" => {
                let bad = || format!("region: {arg:?} is not X,Y,WxH");
                let mut it = arg.splitn(3, ',');
                let (x, y, wh) = (it.next(), it.next(), it.next());
                let (Some(x), Some(y), Some(wh)) = (x, y, wh) else { return Err(bad()) };
                let (w, h) = wh.split_once('x').ok_or_else(bad)?;
                Ok(SourceSpec::Region {
                    x: x.trim().parse().map_err(|_| bad())?,
                    y: y.trim().parse().map_err(|_| bad())?,
                    width: w.trim().parse().map_err(|_| bad())?,
                    height: h.trim().parse().map_err(|_| bad())?,
                })
            }
            "pattern" => Ok(SourceSpec::Pattern { width: 1280, height: 720 }),
            _ => Err(format!("{s:?}: expected screen[:N], region:X,Y,WxH, window:ID or pattern")),
        }
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Screen(n) => write!(f, "screen:{n}"),
            SourceSpec::Region { x, y, width, height } => write!(f, "region:{x},{y},{width}x{height}"),
            SourceSpec::Window(id) => write!(f, "window:{id:#x}"),
            SourceSpec::Pattern { width, height } => write!(f, "pattern {width}x{height}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    #[error("screen capture unavailable: {0}")]
    Unavailable(String),
    #[error("screen capture failed: {0}")]
    Failed(String),
}

/// An open capture source.
pub trait Capture: Send {
    /// What is captured (for logs and `doctor`).
    fn describe(&self) -> String;
    /// The picture size.
    fn size(&self) -> (usize, usize);
    /// The current picture.
    fn grab(&mut self) -> Result<Bgra<'_>, CaptureError>;
}

/// Opens `spec` on this OS.
pub fn open(spec: &SourceSpec) -> Result<Box<dyn Capture>, CaptureError> {
    if let SourceSpec::Pattern { width, height } = spec {
        return Ok(Box::new(Pattern::new(*width, *height)));
    }
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        Ok(Box::new(x11::X11Capture::open(spec)?))
    }
    #[cfg(windows)]
    {
        // DXGI desktop duplication first (fullscreen games, GPU-side copies); GDI where the
        // machine cannot duplicate (remote sessions, old drivers, rotated screens, wine).
        use crate::platform::windows::{capture::GdiCapture, dxgi::DxgiCapture};
        match DxgiCapture::open(spec) {
            Ok(c) => Ok(Box::new(c)),
            Err(e) => {
                tracing::info!("{e}; capturing with GDI instead");
                Ok(Box::new(GdiCapture::open(spec)?))
            }
        }
    }
    #[cfg(not(any(windows, all(unix, not(target_os = "macos")))))]
    {
        Err(CaptureError::Unavailable(format!(
            "{spec}: screen capture on this OS is not built yet (X11 and Windows); use --no-video"
        )))
    }
}

/// Moving test content: a grey ramp that scrolls, and the frame number drawn as 16 bars (white =
/// 1, black = 0, most significant first) across the top eighth, big enough to survive encoding.
pub struct Pattern {
    width: usize,
    height: usize,
    n: u32,
    buf: Vec<u8>,
}

impl Pattern {
    pub fn new(width: usize, height: usize) -> Self {
        Self { width, height, n: 0, buf: vec![0; width * height * 4] }
    }
}

/// Draws `n` as 16 bars into the top eighth of a BGRX picture (shared with tests that draw the
/// same into an X window).
pub fn bars_of(n: u32, x: usize, width: usize) -> bool {
    let bit = (x * 16 / width.max(1)).min(15);
    (n >> (15 - bit)) & 1 == 1
}

/// Reads the number drawn by [`bars_of`] back from a luma plane.
pub fn read_bars(y: &[u8], width: usize, height: usize) -> u32 {
    let row = height / 16;
    let mut n = 0;
    for bit in 0..16 {
        let x = bit * width / 16 + width / 32;
        n = (n << 1) | u32::from(y[row * width + x] > 128);
    }
    n
}

impl Capture for Pattern {
    fn describe(&self) -> String {
        format!("test pattern {}x{}", self.width, self.height)
    }
    fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }
    fn grab(&mut self) -> Result<Bgra<'_>, CaptureError> {
        self.n = self.n.wrapping_add(1);
        let (w, h, n) = (self.width, self.height, self.n);
        for (y, row) in self.buf.chunks_exact_mut(w * 4).enumerate() {
            for (x, px) in row.chunks_exact_mut(4).enumerate() {
                if y < h / 8 {
                    let v = if bars_of(n, x, w) { 255 } else { 0 };
                    px.copy_from_slice(&[v, v, v, 0]);
                } else {
                    let v = ((x + y + n as usize * 4) % 256) as u8;
                    px.copy_from_slice(&[v, v / 2, 255 - v, 0]);
                }
            }
        }
        Ok(Bgra { data: &self.buf, width: w, height: h, stride: w * 4 })
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
pub mod x11 {
    //! X11 capture with `GetImage` over x11rb's pure-Rust connection.

    use x11rb::connection::{Connection, RequestConnection};
    use x11rb::protocol::randr::{self, ConnectionExt as _};
    use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, Window};
    use x11rb::rust_connection::RustConnection;

    use super::{Bgra, Capture, CaptureError, SourceSpec};

    pub struct X11Capture {
        conn: RustConnection,
        drawable: Window,
        x: i16,
        y: i16,
        width: u16,
        height: u16,
        what: String,
        buf: Vec<u8>,
    }

    fn failed(e: impl std::fmt::Display) -> CaptureError {
        CaptureError::Failed(e.to_string())
    }

    /// Each monitor as (x, y, width, height): RandR's monitors when it has them, else the root.
    pub fn monitors(conn: &RustConnection, root: Window, w: u16, h: u16) -> Vec<(i16, i16, u16, u16)> {
        let has_randr = conn.extension_information(randr::X11_EXTENSION_NAME).ok().flatten().is_some();
        let found: Vec<_> = if has_randr {
            conn.randr_get_monitors(root, true)
                .ok()
                .and_then(|c| c.reply().ok())
                .map(|r| r.monitors.iter().map(|m| (m.x, m.y, m.width, m.height)).collect())
                .unwrap_or_default()
        } else {
            vec![]
        };
        if found.is_empty() {
            vec![(0, 0, w, h)]
        } else {
            found
        }
    }

    impl X11Capture {
        pub fn open(spec: &SourceSpec) -> Result<Self, CaptureError> {
            let (conn, screen_num) = RustConnection::connect(None)
                .map_err(|e| CaptureError::Unavailable(format!("no X display ({e}); set DISPLAY")))?;
            let screen = conn
                .setup()
                .roots
                .get(screen_num)
                .ok_or_else(|| CaptureError::Unavailable("X server has no screen".into()))?;
            let (root, rw, rh, depth) =
                (screen.root, screen.width_in_pixels, screen.height_in_pixels, screen.root_depth);
            let bpp = conn.setup().pixmap_formats.iter().find(|f| f.depth == depth).map(|f| f.bits_per_pixel);
            if depth < 24 || bpp != Some(32) {
                return Err(CaptureError::Unavailable(format!(
                    "X screen of depth {depth} ({bpp:?} bits per pixel); 24/32-bit colour is needed"
                )));
            }
            let (drawable, x, y, width, height) = match spec {
                SourceSpec::Screen(n) => {
                    let all = monitors(&conn, root, rw, rh);
                    let (x, y, w, h) = *all.get(*n).ok_or_else(|| {
                        CaptureError::Unavailable(format!("screen {n} not found ({} screens)", all.len()))
                    })?;
                    (root, x, y, w, h)
                }
                SourceSpec::Region { x, y, width, height } => {
                    let fits = i32::from(*x) >= 0
                        && i32::from(*y) >= 0
                        && i32::from(*x) + i32::from(*width) <= i32::from(rw)
                        && i32::from(*y) + i32::from(*height) <= i32::from(rh)
                        && *width >= 2
                        && *height >= 2;
                    if !fits {
                        return Err(CaptureError::Unavailable(format!(
                            "{spec} is not inside the {rw}x{rh} desktop"
                        )));
                    }
                    (root, *x, *y, *width, *height)
                }
                SourceSpec::Window(id) => {
                    let g = conn
                        .get_geometry(*id)
                        .map_err(failed)?
                        .reply()
                        .map_err(|e| CaptureError::Unavailable(format!("window {id:#x}: {e}")))?;
                    (*id, 0, 0, g.width, g.height)
                }
                SourceSpec::Pattern { .. } => {
                    return Err(CaptureError::Unavailable("not an X source".into()))
                }
            };
            let what = format!("X11 {spec} ({width}x{height})");
            Ok(Self { conn, drawable, x, y, width, height, what, buf: vec![] })
        }
    }

    impl Capture for X11Capture {
        fn describe(&self) -> String {
            self.what.clone()
        }
        fn size(&self) -> (usize, usize) {
            (usize::from(self.width), usize::from(self.height))
        }
        fn grab(&mut self) -> Result<Bgra<'_>, CaptureError> {
            let reply = self
                .conn
                .get_image(ImageFormat::Z_PIXMAP, self.drawable, self.x, self.y, self.width, self.height, !0)
                .map_err(failed)?
                .reply()
                .map_err(failed)?;
            self.buf = reply.data;
            let (w, h) = (usize::from(self.width), usize::from(self.height));
            Ok(Bgra { data: &self.buf, width: w, height: h, stride: w * 4 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(SourceSpec::parse("screen"), Ok(SourceSpec::Screen(0)));
        assert_eq!(SourceSpec::parse("screen:1"), Ok(SourceSpec::Screen(1)));
        assert_eq!(SourceSpec::parse("window:0x1a00003"), Ok(SourceSpec::Window(0x1a00003)));
        assert_eq!(
            SourceSpec::parse("region:10,20,640x360"),
            Ok(SourceSpec::Region { x: 10, y: 20, width: 640, height: 360 })
        );
        assert!(SourceSpec::parse("region:1,2").is_err());
        assert!(SourceSpec::parse("camera").is_err());
    }

    #[test]
    fn pattern_bars_read_back() {
        let mut p = Pattern::new(320, 160);
        for n in 1..=3 {
            let f = p.grab().unwrap();
            let mut out = super::super::convert::I420::new(320, 160);
            super::super::convert::bgra_to_i420(f, &mut out).unwrap();
            assert_eq!(read_bars(out.y(), 320, 160), n);
        }
    }
}
