//! BGRA → I420 for the encoder, scaled to its size when the capture is another size, in BT.601
//! limited range: the colour space H.264 decoders assume when the stream says nothing else. Screen captures come as
//! BGRA/BGRX rows with a stride (X11 `GetImage`, DXGI); the output is a plain I420 buffer that the
//! encoder reads. Reads no env vars.

/// A captured picture: `height` rows of `stride` bytes, 4 bytes per pixel in B, G, R, X order.
#[derive(Debug, Clone, Copy)]
pub struct Bgra<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

/// An I420 picture (Y plane, then U, then V; chroma at half resolution both ways).
#[derive(Debug, Clone, PartialEq)]
pub struct I420 {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl I420 {
    /// A black picture of an even size.
    pub fn new(width: usize, height: usize) -> Self {
        let (w, h) = (width & !1, height & !1);
        let mut data = vec![16u8; w * h * 3 / 2];
        data[w * h..].fill(128);
        Self { width: w, height: h, data }
    }

    pub fn y(&self) -> &[u8] {
        &self.data[..self.width * self.height]
    }
    pub fn u(&self) -> &[u8] {
        let y = self.width * self.height;
        &self.data[y..y + y / 4]
    }
    pub fn v(&self) -> &[u8] {
        let y = self.width * self.height;
        &self.data[y + y / 4..]
    }
}

impl openh264::formats::YUVSource for I420 {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }
    fn strides(&self) -> (usize, usize, usize) {
        (self.width, self.width / 2, self.width / 2)
    }
    fn y(&self) -> &[u8] {
        I420::y(self)
    }
    fn u(&self) -> &[u8] {
        I420::u(self)
    }
    fn v(&self) -> &[u8] {
        I420::v(self)
    }
}

/// Why a picture cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("picture of {width}x{height} with stride {stride} does not fit in {len} bytes")]
    Short { width: usize, height: usize, stride: usize, len: usize },
    #[error("empty picture (I420 needs at least 2x2 pixels)")]
    Empty,
    #[error("colour conversion failed: {0}")]
    Colour(String),
    #[error("scaling failed: {0}")]
    Scale(String),
}

/// Converts captured pictures into the encoder's I420 picture, reusing its scratch buffers from
/// frame to frame (the capture thread owns one). Colour conversion is yuvutils-rs (SIMD, picked at
/// run time: AVX2/SSE4.1 on x86-64, NEON on ARM); scaling, when the capture and the encoder sizes
/// differ, is fast_image_resize's SIMD bilinear filter on the three planes after conversion, which
/// touches 1.5 bytes a pixel instead of the 4 of BGRA and keeps small text readable where a nearest
/// sample would drop whole strokes.
#[derive(Default)]
pub struct Converter {
    full: Option<I420>,
    resizer: fast_image_resize::Resizer,
}

impl std::fmt::Debug for Converter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Converter")
            .field("scratch", &self.full.as_ref().map(|p| (p.width, p.height)))
            .finish()
    }
}

impl Converter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Converts `src` into `dst` (whose size is the output size), scaling as needed. A source of
    /// odd width or height loses its last column or row (I420 chroma covers 2×2 blocks).
    pub fn convert(&mut self, src: Bgra<'_>, dst: &mut I420) -> Result<(), ConvertError> {
        let need = (src.height.max(1) - 1) * src.stride + src.width * 4;
        if src.width > 0 && src.height > 0 && (src.stride < src.width * 4 || src.data.len() < need) {
            return Err(ConvertError::Short {
                width: src.width,
                height: src.height,
                stride: src.stride,
                len: src.data.len(),
            });
        }
        let (sw, sh) = (src.width & !1, src.height & !1);
        if sw == 0 || sh == 0 || dst.width == 0 || dst.height == 0 {
            return Err(ConvertError::Empty);
        }
        if (sw, sh) == (dst.width, dst.height) {
            return to_i420(src, dst);
        }
        let full = match &mut self.full {
            Some(p) if (p.width, p.height) == (sw, sh) => p,
            slot => slot.insert(I420::new(sw, sh)),
        };
        to_i420(src, full)?;
        let (fy, fu, fv) = planes(&full.data, sw, sh);
        let (w, h) = (dst.width, dst.height);
        let (dy, rest) = dst.data.split_at_mut(w * h);
        let (du, dv) = rest.split_at_mut(w * h / 4);
        let options = fast_image_resize::ResizeOptions::new()
            .resize_alg(fast_image_resize::ResizeAlg::Convolution(fast_image_resize::FilterType::Bilinear));
        for (from, (fw, fh), to, (tw, th)) in [
            (fy, (sw, sh), dy, (w, h)),
            (fu, (sw / 2, sh / 2), du, (w / 2, h / 2)),
            (fv, (sw / 2, sh / 2), dv, (w / 2, h / 2)),
        ] {
            let scale = |e: fast_image_resize::ImageBufferError| ConvertError::Scale(e.to_string());
            let from = fast_image_resize::images::ImageRef::new(
                fw as u32,
                fh as u32,
                from,
                fast_image_resize::PixelType::U8,
            )
            .map_err(scale)?;
            let mut to = fast_image_resize::images::Image::from_slice_u8(
                tw as u32,
                th as u32,
                to,
                fast_image_resize::PixelType::U8,
            )
            .map_err(scale)?;
            self.resizer.resize(&from, &mut to, &options).map_err(|e| ConvertError::Scale(e.to_string()))?;
        }
        Ok(())
    }
}

/// The Y, U and V planes of an I420 buffer of `w`×`h`.
fn planes(data: &[u8], w: usize, h: usize) -> (&[u8], &[u8], &[u8]) {
    let (y, uv) = data.split_at(w * h);
    let (u, v) = uv.split_at(w * h / 4);
    (y, u, v)
}

/// Same-size BGRA → I420 (BT.601, limited range), reading `dst`'s size from the top-left of `src`.
fn to_i420(src: Bgra<'_>, dst: &mut I420) -> Result<(), ConvertError> {
    let (w, h) = (dst.width, dst.height);
    let (y, uv) = dst.data.split_at_mut(w * h);
    let (u, v) = uv.split_at_mut(w * h / 4);
    let mut planar = yuvutils_rs::YuvPlanarImageMut {
        y_plane: yuvutils_rs::BufferStoreMut::Borrowed(y),
        y_stride: w as u32,
        u_plane: yuvutils_rs::BufferStoreMut::Borrowed(u),
        u_stride: (w / 2) as u32,
        v_plane: yuvutils_rs::BufferStoreMut::Borrowed(v),
        v_stride: (w / 2) as u32,
        width: w as u32,
        height: h as u32,
    };
    yuvutils_rs::bgra_to_yuv420(
        &mut planar,
        src.data,
        src.stride as u32,
        yuvutils_rs::YuvRange::Limited,
        yuvutils_rs::YuvStandardMatrix::Bt601,
        yuvutils_rs::YuvConversionMode::Balanced,
    )
    .map_err(|e| ConvertError::Colour(e.to_string()))
}

/// Converts `src` into `dst` with a converter of its own, for a single picture (tests, tools);
/// a capture loop keeps one [`Converter`] so its scratch buffers are reused.
pub fn bgra_to_i420(src: Bgra<'_>, dst: &mut I420) -> Result<(), ConvertError> {
    Converter::new().convert(src, dst)
}

/// Peak signal-to-noise ratio of two luma planes of the same size, in dB (`inf` when equal).
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let n = a.len().min(b.len()).max(1);
    let se: f64 = a.iter().zip(b).map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2)).sum();
    let mse = se / n as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_black_and_colours_convert_to_bt601() {
        // 4×2: white, black, red, blue on both rows; stride padded to 20 bytes.
        let px = [[255, 255, 255, 0], [0, 0, 0, 0], [0, 0, 255, 0], [255, 0, 0, 0]];
        let mut data = vec![];
        for _ in 0..2 {
            for p in px {
                data.extend_from_slice(&p);
            }
            data.extend_from_slice(&[9; 4]);
        }
        let mut out = I420::new(4, 2);
        bgra_to_i420(Bgra { data: &data, width: 4, height: 2, stride: 20 }, &mut out).unwrap();
        // BT.601 limited: 16 + 219 × luma; red is 81.5, so either neighbour is right.
        for (got, want) in out.y()[..4].iter().zip([235u8, 16, 82, 41]) {
            assert!(got.abs_diff(want) <= 1, "{:?}", out.y());
        }
        // Red/blue block: V high for red, U high for blue, averaged.
        assert!(out.u()[1] > 128 && out.v()[1] > 128, "{:?} {:?}", out.u(), out.v());
        assert!(out.u()[0].abs_diff(128) <= 1, "{:?}", out.u());
    }

    #[test]
    fn scales_down_and_refuses_short_buffers() {
        let data = vec![200u8; 8 * 8 * 4];
        let mut out = I420::new(4, 4);
        bgra_to_i420(Bgra { data: &data, width: 8, height: 8, stride: 32 }, &mut out).unwrap();
        assert!(out.y().iter().all(|&y| y == out.y()[0]));
        let e = bgra_to_i420(Bgra { data: &data[..10], width: 8, height: 8, stride: 32 }, &mut out);
        assert!(matches!(e, Err(ConvertError::Short { .. })));
        assert_eq!(psnr(out.y(), out.y()), f64::INFINITY);
    }

    /// A `w`×`h` BGRA picture: a grey ramp left to right, with stride padding.
    fn ramp(w: usize, h: usize, pad: usize) -> (Vec<u8>, usize) {
        let stride = w * 4 + pad;
        let mut data = vec![0u8; stride * h];
        for y in 0..h {
            for x in 0..w {
                let v = (x * 255 / (w - 1)) as u8;
                data[y * stride + x * 4..y * stride + x * 4 + 4].copy_from_slice(&[v, v, v, 255]);
            }
        }
        (data, stride)
    }

    #[test]
    fn a_1080p_screen_scaled_to_720p_keeps_its_picture() {
        let (data, stride) = ramp(1920, 1080, 64);
        let mut out = I420::new(1280, 720);
        let mut conv = Converter::new();
        // Twice: the second frame reuses the scratch picture.
        for _ in 0..2 {
            conv.convert(Bgra { data: &data, width: 1920, height: 1080, stride }, &mut out).unwrap();
        }
        let want: Vec<u8> = (0..720)
            .flat_map(|_| (0..1280).map(|x| (16.0 + 219.0 * (x as f64 + 0.5) / 1280.0).round() as u8))
            .collect();
        let db = psnr(out.y(), &want);
        assert!(db > 40.0, "luma PSNR {db:.1} dB");
        assert!(out.u().iter().chain(out.v()).all(|c| c.abs_diff(128) <= 1), "grey has no chroma");
    }

    #[test]
    fn odd_sizes_lose_one_column_and_row_and_tiny_pictures_are_refused() {
        let (data, stride) = ramp(641, 361, 0);
        let mut same = I420::new(641, 361);
        assert_eq!((same.width, same.height), (640, 360));
        bgra_to_i420(Bgra { data: &data, width: 641, height: 361, stride }, &mut same).unwrap();
        assert_eq!(same.y()[0], 16);
        let mut half = I420::new(320, 180);
        bgra_to_i420(Bgra { data: &data, width: 641, height: 361, stride }, &mut half).unwrap();
        assert!(half.y()[319] > 225, "{}", half.y()[319]);
        let one = [0u8; 4];
        let e = bgra_to_i420(Bgra { data: &one, width: 1, height: 1, stride: 4 }, &mut half);
        assert_eq!(e, Err(ConvertError::Empty));
    }
}
