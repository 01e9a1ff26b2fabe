//! Screen capture on Windows with DXGI desktop duplication (`IDXGIOutputDuplication`): the GPU
//! hands over the composed desktop of one output, including exclusive-fullscreen games that GDI's
//! `BitBlt` sees as black, and the copy stays on the GPU until one small staging texture (the
//! captured area only) is read back. The mouse pointer is not part of the duplicated image, which
//! is what an onboard view wants.
//!
//! Polling, not waiting: [`Capture::grab`] asks for a new frame with a zero timeout at the video
//! thread's pace. No new frame (`DXGI_ERROR_WAIT_TIMEOUT`: nothing changed on screen) returns the
//! previous picture; a lost duplication (`DXGI_ERROR_ACCESS_LOST`: a mode change, a fullscreen
//! switch, the secure desktop of a UAC prompt) keeps the previous picture and duplicates the output
//! again on the next grab. Outputs shown rotated are refused at open (the duplicated image is in
//! scan-out orientation), as are regions spanning two outputs: `video::capture::open` then falls
//! back to GDI. Reads no env vars.

use windows::core::Interface;
use windows::Win32::Foundation::{HMODULE, RECT};
use windows::Win32::Graphics::Direct3D::D3D_DRIVER_TYPE_UNKNOWN;
use windows::Win32::Graphics::Direct3D11::{
    D3D11CreateDevice, ID3D11Device, ID3D11DeviceContext, ID3D11Texture2D, D3D11_BOX, D3D11_CPU_ACCESS_READ,
    D3D11_CREATE_DEVICE_BGRA_SUPPORT, D3D11_MAPPED_SUBRESOURCE, D3D11_MAP_READ, D3D11_SDK_VERSION,
    D3D11_TEXTURE2D_DESC, D3D11_USAGE_STAGING,
};
use windows::Win32::Graphics::Dxgi::Common::{
    DXGI_FORMAT_B8G8R8A8_UNORM, DXGI_MODE_ROTATION_IDENTITY, DXGI_MODE_ROTATION_UNSPECIFIED, DXGI_SAMPLE_DESC,
};
use windows::Win32::Graphics::Dxgi::{
    CreateDXGIFactory1, IDXGIAdapter1, IDXGIFactory1, IDXGIOutput1, IDXGIOutputDuplication, IDXGIResource,
    DXGI_ERROR_ACCESS_LOST, DXGI_ERROR_WAIT_TIMEOUT, DXGI_OUTDUPL_FRAME_INFO, DXGI_OUTPUT_DESC,
};

use crate::video::capture::{Capture, CaptureError, SourceSpec};
use crate::video::convert::Bgra;

fn unavailable(what: &str, e: windows::core::Error) -> CaptureError {
    CaptureError::Unavailable(format!("DXGI: {what}: {e}"))
}

/// Every output attached to the desktop, with its adapter and desktop rectangle.
fn outputs() -> Result<Vec<(IDXGIAdapter1, IDXGIOutput1, RECT)>, CaptureError> {
    // SAFETY: plain COM calls on interfaces the windows crate reference-counts; the enumeration
    // ends at the first index that fails (DXGI_ERROR_NOT_FOUND), and `desc` is written by GetDesc
    // before it is read.
    unsafe {
        let factory: IDXGIFactory1 = CreateDXGIFactory1().map_err(|e| unavailable("no DXGI factory", e))?;
        let mut found = Vec::new();
        let mut a = 0;
        while let Ok(adapter) = factory.EnumAdapters1(a) {
            let mut o = 0;
            while let Ok(output) = adapter.EnumOutputs(o) {
                let mut desc = DXGI_OUTPUT_DESC::default();
                if output.GetDesc(&mut desc).is_ok()
                    && desc.AttachedToDesktop.as_bool()
                    && (desc.Rotation == DXGI_MODE_ROTATION_IDENTITY
                        || desc.Rotation == DXGI_MODE_ROTATION_UNSPECIFIED)
                {
                    if let Ok(output1) = output.cast::<IDXGIOutput1>() {
                        found.push((adapter.clone(), output1, desc.DesktopCoordinates));
                    }
                }
                o += 1;
            }
            a += 1;
        }
        Ok(found)
    }
}

/// The area to capture on the desktop: (x, y, width, height).
fn wanted(spec: &SourceSpec) -> Result<(i32, i32, i32, i32), CaptureError> {
    match spec {
        SourceSpec::Screen(n) => {
            // Numbered as GDI numbers them (`devices` lists them that way), not in DXGI's order.
            let all = super::capture::monitors();
            all.get(*n).copied().ok_or_else(|| {
                CaptureError::Unavailable(format!("DXGI: screen {n} not found ({} screens)", all.len()))
            })
        }
        SourceSpec::Region { x, y, width, height } => {
            Ok((i32::from(*x), i32::from(*y), i32::from(*width), i32::from(*height)))
        }
        other => Err(CaptureError::Unavailable(format!("DXGI: {other}: a screen or a region only"))),
    }
}

pub(crate) struct DxgiCapture {
    output: IDXGIOutput1,
    device: ID3D11Device,
    context: ID3D11DeviceContext,
    /// `None` after the duplication was lost, until the next grab duplicates again.
    duplication: Option<IDXGIOutputDuplication>,
    staging: ID3D11Texture2D,
    /// The captured area within the output's texture.
    area: D3D11_BOX,
    what: String,
    buf: Vec<u8>,
    /// Duplications made since open (1 + the times access was lost), for the description.
    duplications: u32,
}

// SAFETY: the device, its immediate context and the duplication are used by one thread at a time
// (the video thread, after the value is moved there); D3D11 devices are free-threaded and the
// immediate context is only touched through `&mut self`.
unsafe impl Send for DxgiCapture {}

impl DxgiCapture {
    pub(crate) fn open(spec: &SourceSpec) -> Result<Self, CaptureError> {
        let (x, y, width, height) = wanted(spec)?;
        if width < 2 || height < 2 {
            return Err(CaptureError::Unavailable(format!("DXGI: {spec}: empty area")));
        }
        let inside = |r: &RECT| x >= r.left && y >= r.top && x + width <= r.right && y + height <= r.bottom;
        let (adapter, output, rect) = outputs()?.into_iter().find(|(_, _, r)| inside(r)).ok_or_else(|| {
            CaptureError::Unavailable(format!("DXGI: {spec}: not inside one unrotated output"))
        })?;
        let area = D3D11_BOX {
            left: (x - rect.left) as u32,
            top: (y - rect.top) as u32,
            front: 0,
            right: (x - rect.left + width) as u32,
            bottom: (y - rect.top + height) as u32,
            back: 1,
        };
        let (mut device, mut context) = (None, None);
        // SAFETY: COM calls with out-pointers to locals that live across the call; the texture
        // description is a plain struct read by CreateTexture2D during the call.
        let staging = unsafe {
            D3D11CreateDevice(
                &adapter,
                D3D_DRIVER_TYPE_UNKNOWN,
                HMODULE::default(),
                D3D11_CREATE_DEVICE_BGRA_SUPPORT,
                None,
                D3D11_SDK_VERSION,
                Some(&mut device),
                None,
                Some(&mut context),
            )
            .map_err(|e| unavailable("no Direct3D 11 device", e))?;
            let device: &ID3D11Device = device.as_ref().ok_or_else(|| no("device"))?;
            let desc = D3D11_TEXTURE2D_DESC {
                Width: width as u32,
                Height: height as u32,
                MipLevels: 1,
                ArraySize: 1,
                Format: DXGI_FORMAT_B8G8R8A8_UNORM,
                SampleDesc: DXGI_SAMPLE_DESC { Count: 1, Quality: 0 },
                Usage: D3D11_USAGE_STAGING,
                BindFlags: 0,
                CPUAccessFlags: D3D11_CPU_ACCESS_READ.0 as u32,
                MiscFlags: 0,
            };
            let mut staging = None;
            device
                .CreateTexture2D(&desc, None, Some(&mut staging))
                .map_err(|e| unavailable("no staging texture", e))?;
            staging.ok_or_else(|| no("staging texture"))?
        };
        let (device, context) = (device.ok_or_else(|| no("device"))?, context.ok_or_else(|| no("context"))?);
        let mut cap = Self {
            output,
            device,
            context,
            duplication: None,
            staging,
            area,
            what: format!("DXGI {spec} ({width}x{height} at {x},{y})"),
            // Black until the first frame arrives (a zero-timeout poll may find none yet).
            buf: vec![0; width as usize * height as usize * 4],
            duplications: 0,
        };
        // Duplicate now, so a machine that cannot (no desktop duplication: a remote session, an
        // old driver, wine) is refused here and GDI takes over, rather than failing every grab.
        cap.duplication = Some(cap.duplicate()?);
        Ok(cap)
    }

    fn duplicate(&mut self) -> Result<IDXGIOutputDuplication, CaptureError> {
        self.duplications += 1;
        // SAFETY: a COM call on live interfaces owned by self.
        unsafe { self.output.DuplicateOutput(&self.device) }.map_err(|e| unavailable("no desktop duplication", e))
    }

    fn width(&self) -> usize {
        (self.area.right - self.area.left) as usize
    }

    fn height(&self) -> usize {
        (self.area.bottom - self.area.top) as usize
    }

    /// Copies the area out of the acquired desktop texture into the staging texture, then reads
    /// that back into `buf`, row by row (the mapped pitch may be wider than the row).
    fn copy_out(&mut self, desktop: IDXGIResource) -> Result<(), CaptureError> {
        let failed = |what: &str, e: windows::core::Error| CaptureError::Failed(format!("DXGI: {what}: {e}"));
        let texture: ID3D11Texture2D = desktop.cast().map_err(|e| failed("desktop is not a texture", e))?;
        let (w, h) = (self.width(), self.height());
        let mut mapped = D3D11_MAPPED_SUBRESOURCE::default();
        // SAFETY: both textures are alive; the box lies inside the output (checked at open). The
        // mapped pointer is valid for `h` rows of `RowPitch` bytes until Unmap, and each row read
        // is `w * 4 <= RowPitch` bytes (a BGRA texture `w` wide).
        unsafe {
            self.context.CopySubresourceRegion(&self.staging, 0, 0, 0, 0, &texture, 0, Some(&self.area));
            self.context
                .Map(&self.staging, 0, D3D11_MAP_READ, 0, Some(&mut mapped))
                .map_err(|e| failed("cannot read the staging texture", e))?;
            let pitch = mapped.RowPitch as usize;
            if pitch < w * 4 || mapped.pData.is_null() {
                self.context.Unmap(&self.staging, 0);
                return Err(CaptureError::Failed(format!("DXGI: row pitch {pitch} for {w} pixels")));
            }
            let src = std::slice::from_raw_parts(mapped.pData.cast::<u8>(), pitch * (h - 1) + w * 4);
            for (row, out) in self.buf.chunks_exact_mut(w * 4).enumerate().take(h) {
                out.copy_from_slice(&src[row * pitch..row * pitch + w * 4]);
            }
            self.context.Unmap(&self.staging, 0);
        }
        Ok(())
    }
}

fn no(what: &str) -> CaptureError {
    CaptureError::Unavailable(format!("DXGI: no {what} returned"))
}

impl Capture for DxgiCapture {
    fn describe(&self) -> String {
        match self.duplications {
            0 | 1 => self.what.clone(),
            n => format!("{} (duplicated {n} times: access was lost)", self.what),
        }
    }

    fn size(&self) -> (usize, usize) {
        (self.width(), self.height())
    }

    fn grab(&mut self) -> Result<Bgra<'_>, CaptureError> {
        if self.duplication.is_none() {
            // Access was lost; while the desktop is unavailable (UAC, a mode switch in progress)
            // this fails, and the previous picture is kept until it works again.
            self.duplication = self.duplicate().ok();
        }
        if let Some(duplication) = self.duplication.clone() {
            let mut info = DXGI_OUTDUPL_FRAME_INFO::default();
            let mut desktop: Option<IDXGIResource> = None;
            // SAFETY: out-pointers to locals; a frame acquired here is released below before the
            // next AcquireNextFrame, as the API requires.
            match unsafe { duplication.AcquireNextFrame(0, &mut info, &mut desktop) } {
                Ok(()) => {
                    let copied = match desktop {
                        Some(d) => self.copy_out(d),
                        None => Err(no("desktop image")),
                    };
                    // SAFETY: releases the frame acquired above.
                    let _ = unsafe { duplication.ReleaseFrame() };
                    copied?;
                }
                Err(e) if e.code() == DXGI_ERROR_WAIT_TIMEOUT => {}
                Err(e) if e.code() == DXGI_ERROR_ACCESS_LOST => self.duplication = None,
                Err(e) => return Err(CaptureError::Failed(format!("DXGI: AcquireNextFrame: {e}"))),
            }
        }
        let (w, h) = (self.width(), self.height());
        Ok(Bgra { data: &self.buf, width: w, height: h, stride: w * 4 })
    }
}
