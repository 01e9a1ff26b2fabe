//! Screen capture on Windows with GDI (`BitBlt` from the screen's device context into a 32-bit
//! top-down DIB, read with `GetDIBits`): BGRA rows, the same shape X11 gives. It captures the
//! desktop as composed (windowed and borderless-windowed sims, which is how iRacing is usually run
//! while streaming); monitors come from `EnumDisplayMonitors`. It is the fallback where DXGI
//! desktop duplication (`dxgi.rs`: exclusive fullscreen, GPU-side copies) cannot run.
//! Reads no env vars.

use std::ptr::null_mut;

use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{HWND, LPARAM, POINT, RECT};
use windows_sys::Win32::Graphics::Gdi::{
    BitBlt, ClientToScreen, CreateCompatibleBitmap, CreateCompatibleDC, DeleteDC, DeleteObject,
    EnumDisplayMonitors, GetDC, GetDIBits, ReleaseDC, SelectObject, BITMAPINFO, BITMAPINFOHEADER, BI_RGB,
    CAPTUREBLT, DIB_RGB_COLORS, HBITMAP, HDC, HGDIOBJ, HMONITOR, SRCCOPY,
};

use windows_sys::Win32::UI::WindowsAndMessaging::{GetClientRect, IsWindow};

use crate::video::capture::{Capture, CaptureError, SourceSpec};
use crate::video::convert::Bgra;

/// Each monitor's rectangle on the virtual desktop: (x, y, width, height).
pub(crate) fn monitors() -> Vec<(i32, i32, i32, i32)> {
    unsafe extern "system" fn push(_: HMONITOR, _: HDC, rect: *mut RECT, data: LPARAM) -> BOOL {
        // SAFETY: `data` is the `&mut Vec` passed below, alive for the whole enumeration, and
        // `rect` points at the monitor's rectangle for the duration of this call.
        let (list, r) = unsafe { (&mut *(data as *mut Vec<(i32, i32, i32, i32)>), &*rect) };
        list.push((r.left, r.top, r.right - r.left, r.bottom - r.top));
        1
    }
    let mut list: Vec<(i32, i32, i32, i32)> = Vec::new();
    // SAFETY: a null DC and clip rectangle enumerate every monitor; the callback only writes into
    // `list` (see above), which outlives the call.
    unsafe {
        EnumDisplayMonitors(null_mut(), std::ptr::null(), Some(push), &mut list as *mut _ as LPARAM);
    }
    list
}

/// A window's client area (the sim's picture, without its frame) on the desktop: (x, y, width,
/// height), where it is now. The area is captured like a region: a window moved afterwards is
/// captured where it was until the source is opened again.
pub(crate) fn window_area(id: u32) -> Result<(i32, i32, i32, i32), CaptureError> {
    let hwnd = id as usize as HWND;
    let mut rect = RECT { left: 0, top: 0, right: 0, bottom: 0 };
    let mut origin = POINT { x: 0, y: 0 };
    // SAFETY: IsWindow accepts any value; the other two are only called on a live window and
    // write into the locals passed.
    let ok = unsafe {
        IsWindow(hwnd) != 0 && GetClientRect(hwnd, &mut rect) != 0 && ClientToScreen(hwnd, &mut origin) != 0
    };
    if !ok {
        return Err(CaptureError::Unavailable(format!("window {id:#x} not found")));
    }
    Ok((origin.x, origin.y, rect.right - rect.left, rect.bottom - rect.top))
}

pub(crate) struct GdiCapture {
    screen: HDC,
    memory: HDC,
    bitmap: HBITMAP,
    old: HGDIOBJ,
    x: i32,
    y: i32,
    width: i32,
    height: i32,
    what: String,
    buf: Vec<u8>,
}

// SAFETY: the DCs and bitmap are owned by this value alone and used by one thread at a time (the
// video thread after it is moved there); GDI objects are not tied to the creating thread.
unsafe impl Send for GdiCapture {}

impl GdiCapture {
    pub(crate) fn open(spec: &SourceSpec) -> Result<Self, CaptureError> {
        let (x, y, width, height) = match spec {
            SourceSpec::Screen(n) => {
                let all = monitors();
                *all.get(*n).ok_or_else(|| {
                    CaptureError::Unavailable(format!("screen {n} not found ({} screens)", all.len()))
                })?
            }
            SourceSpec::Region { x, y, width, height } => {
                (i32::from(*x), i32::from(*y), i32::from(*width), i32::from(*height))
            }
            SourceSpec::Window(id) => window_area(*id)?,
            SourceSpec::Pattern { .. } => {
                return Err(CaptureError::Unavailable("the test pattern is not a screen".into()))
            }
        };
        if width < 2 || height < 2 {
            return Err(CaptureError::Unavailable(format!("{spec}: empty area")));
        }
        // SAFETY: plain GDI calls; every handle is checked, and released in Drop (or here on error).
        unsafe {
            let screen = GetDC(null_mut());
            if screen.is_null() {
                return Err(CaptureError::Unavailable("no screen device context".into()));
            }
            let memory = CreateCompatibleDC(screen);
            let bitmap = CreateCompatibleBitmap(screen, width, height);
            if memory.is_null() || bitmap.is_null() {
                if !bitmap.is_null() {
                    DeleteObject(bitmap);
                }
                if !memory.is_null() {
                    DeleteDC(memory);
                }
                ReleaseDC(null_mut(), screen);
                return Err(CaptureError::Unavailable("cannot make a capture bitmap".into()));
            }
            let old = SelectObject(memory, bitmap);
            let what = format!("GDI {spec} ({width}x{height} at {x},{y})");
            Ok(Self { screen, memory, bitmap, old, x, y, width, height, what, buf: Vec::new() })
        }
    }
}

impl Capture for GdiCapture {
    fn describe(&self) -> String {
        self.what.clone()
    }

    fn size(&self) -> (usize, usize) {
        (self.width as usize, self.height as usize)
    }

    fn grab(&mut self) -> Result<Bgra<'_>, CaptureError> {
        let (w, h) = (self.width, self.height);
        self.buf.resize(w as usize * h as usize * 4, 0);
        let mut info = BITMAPINFO {
            bmiHeader: BITMAPINFOHEADER {
                biSize: std::mem::size_of::<BITMAPINFOHEADER>() as u32,
                biWidth: w,
                // Negative: top-down rows, as the converter reads them.
                biHeight: -h,
                biPlanes: 1,
                biBitCount: 32,
                biCompression: BI_RGB,
                biSizeImage: 0,
                biXPelsPerMeter: 0,
                biYPelsPerMeter: 0,
                biClrUsed: 0,
                biClrImportant: 0,
            },
            bmiColors: [Default::default()],
        };
        // SAFETY: the DCs and bitmap are alive (owned by self); `buf` holds exactly h rows of w
        // 32-bit pixels, which is what the header asks GetDIBits to write.
        let rows = unsafe {
            if BitBlt(self.memory, 0, 0, w, h, self.screen, self.x, self.y, SRCCOPY | CAPTUREBLT) == 0 {
                return Err(CaptureError::Failed("BitBlt from the screen failed".into()));
            }
            GetDIBits(
                self.memory,
                self.bitmap,
                0,
                h as u32,
                self.buf.as_mut_ptr().cast(),
                &mut info,
                DIB_RGB_COLORS,
            )
        };
        if rows != h {
            return Err(CaptureError::Failed(format!("GetDIBits read {rows} of {h} rows")));
        }
        Ok(Bgra { data: &self.buf, width: w as usize, height: h as usize, stride: w as usize * 4 })
    }
}

impl Drop for GdiCapture {
    fn drop(&mut self) {
        // SAFETY: the handles were made in `open` and are released once, here.
        unsafe {
            SelectObject(self.memory, self.old);
            DeleteObject(self.bitmap);
            DeleteDC(self.memory);
            ReleaseDC(null_mut(), self.screen);
        }
    }
}
