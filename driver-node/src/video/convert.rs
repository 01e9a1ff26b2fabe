//! BGRA → I420 in one pass, scaling to the encoder's size on the way (nearest sample for luma,
//! the average of each 2×2 block for chroma), with BT.601 limited-range integer coefficients: the
//! colour space H.264 decoders assume when the stream says nothing else. Screen captures come as
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

#[inline(always)]
fn luma(b: u32, g: u32, r: u32) -> u8 {
    ((66 * r + 129 * g + 25 * b + 128 + (16 << 8)) >> 8) as u8
}

/// Why a picture cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("picture of {width}x{height} with stride {stride} does not fit in {len} bytes")]
    Short { width: usize, height: usize, stride: usize, len: usize },
    #[error("empty picture")]
    Empty,
}

/// Converts `src` into `dst` (whose size is the output size), scaling as needed.
pub fn bgra_to_i420(src: Bgra<'_>, dst: &mut I420) -> Result<(), ConvertError> {
    if src.width == 0 || src.height == 0 || dst.width == 0 || dst.height == 0 {
        return Err(ConvertError::Empty);
    }
    let need = (src.height - 1) * src.stride + src.width * 4;
    if src.stride < src.width * 4 || src.data.len() < need {
        return Err(ConvertError::Short {
            width: src.width,
            height: src.height,
            stride: src.stride,
            len: src.data.len(),
        });
    }
    let (w, h) = (dst.width, dst.height);
    // Source column (byte offset) and row of each output pixel: nearest sample.
    let xs: Vec<usize> = (0..w).map(|x| (x * src.width / w).min(src.width - 1) * 4).collect();
    let row_of = |y: usize| (y * src.height / h).min(src.height - 1) * src.stride;
    let (ys, uv) = dst.data.split_at_mut(w * h);
    let (us, vs) = uv.split_at_mut(w * h / 4);
    for cy in 0..h / 2 {
        let r0 = &src.data[row_of(cy * 2)..];
        let r1 = &src.data[row_of(cy * 2 + 1)..];
        let (y0, y1) = ys[cy * 2 * w..(cy * 2 + 2) * w].split_at_mut(w);
        let urow = &mut us[cy * w / 2..(cy + 1) * w / 2];
        let vrow = &mut vs[cy * w / 2..(cy + 1) * w / 2];
        for cx in 0..w / 2 {
            let (a, b) = (xs[cx * 2], xs[cx * 2 + 1]);
            let px = |row: &[u8], o: usize| (u32::from(row[o]), u32::from(row[o + 1]), u32::from(row[o + 2]));
            let p = [px(r0, a), px(r0, b), px(r1, a), px(r1, b)];
            y0[cx * 2] = luma(p[0].0, p[0].1, p[0].2);
            y0[cx * 2 + 1] = luma(p[1].0, p[1].1, p[1].2);
            y1[cx * 2] = luma(p[2].0, p[2].1, p[2].2);
            y1[cx * 2 + 1] = luma(p[3].0, p[3].1, p[3].2);
            let (bs, gs, rs) = (
                (p[0].0 + p[1].0 + p[2].0 + p[3].0) as i32,
                (p[0].1 + p[1].1 + p[2].1 + p[3].1) as i32,
                (p[0].2 + p[1].2 + p[2].2 + p[3].2) as i32,
            );
            // Sums of four: the coefficients' shift grows by two.
            urow[cx] = ((-38 * rs - 74 * gs + 112 * bs + 512 + (128 << 10)) >> 10).clamp(0, 255) as u8;
            vrow[cx] = ((112 * rs - 94 * gs - 18 * bs + 512 + (128 << 10)) >> 10).clamp(0, 255) as u8;
        }
    }
    Ok(())
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
        assert_eq!(&out.y()[..4], &[235, 16, 82, 41]);
        // Red/blue block: V high for red, U high for blue, averaged.
        assert!(out.u()[1] > 128 && out.v()[1] > 128, "{:?} {:?}", out.u(), out.v());
        assert_eq!(out.u()[0], 128);
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
}
