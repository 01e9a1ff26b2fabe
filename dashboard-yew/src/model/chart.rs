//! Chart geometry, independent of the canvas: linear scales, "nice" axis ticks, and turning a
//! series into pixel points with at most one point per pixel column (a 60 Hz trace of 10 s is 600
//! samples; drawing more points than pixels only costs frame time). Reads no env vars.

/// Maps a data interval onto a pixel interval (either may be reversed: y grows downwards).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub d0: f64,
    pub d1: f64,
    pub r0: f64,
    pub r1: f64,
}

impl Scale {
    pub fn new(domain: (f64, f64), range: (f64, f64)) -> Scale {
        Scale { d0: domain.0, d1: domain.1, r0: range.0, r1: range.1 }
    }

    /// Pixel of a data value; a degenerate domain maps everything to the middle of the range.
    pub fn map(&self, v: f64) -> f64 {
        let span = self.d1 - self.d0;
        if span.abs() < f64::EPSILON {
            return (self.r0 + self.r1) / 2.0;
        }
        self.r0 + (v - self.d0) / span * (self.r1 - self.r0)
    }

    /// Data value at a pixel.
    pub fn invert(&self, px: f64) -> f64 {
        let span = self.r1 - self.r0;
        if span.abs() < f64::EPSILON {
            return self.d0;
        }
        self.d0 + (px - self.r0) / span * (self.d1 - self.d0)
    }
}

/// Tick values covering `[lo, hi]` at a step of 1, 2 or 5 × 10ⁿ, about `count` of them.
pub fn nice_ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo || count == 0 {
        return Vec::new();
    }
    let raw = (hi - lo) / count as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    // Round to the step's decimals so 3 × 0.2 prints as 0.6, not 0.6000000000000001.
    let decimals = (-step.log10().floor()).max(0.0) as i32;
    let snap = |v: f64| {
        let k = 10f64.powi(decimals);
        (v * k).round() / k
    };
    let (first, last) = ((lo / step).ceil() as i64, (hi / step + 1e-9).floor() as i64);
    (first..=last).map(|i| snap(i as f64 * step)).collect()
}

/// The domain of a series with a margin, widened to at least `min_span`; `None` when empty.
pub fn extent(values: impl IntoIterator<Item = f64>, min_span: f64) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.into_iter().filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return None;
    }
    if hi - lo < min_span {
        let mid = (lo + hi) / 2.0;
        lo = mid - min_span / 2.0;
        hi = mid + min_span / 2.0;
    }
    Some((lo, hi))
}

/// Pixel points of `(x, y)` data, keeping per pixel column the first, min and max point so spikes
/// (a brake stab) survive the thinning. Points outside the x domain are dropped.
pub fn to_pixels(points: impl IntoIterator<Item = (f64, f64)>, x: &Scale, y: &Scale) -> Vec<(f64, f64)> {
    let (xmin, xmax) = (x.d0.min(x.d1), x.d0.max(x.d1));
    let mut out: Vec<(f64, f64)> = Vec::new();
    let mut column: Option<(i64, f64, f64, f64)> = None; // (col, first y, min y, max y) in pixels
    let flush = |out: &mut Vec<(f64, f64)>, c: (i64, f64, f64, f64)| {
        let px = c.0 as f64;
        out.push((px, c.1));
        if c.2 < c.1 {
            out.push((px, c.2));
        }
        if c.3 > c.1 {
            out.push((px, c.3));
        }
    };
    for (dx, dy) in points {
        if !(dx.is_finite() && dy.is_finite()) || dx < xmin || dx > xmax {
            continue;
        }
        let (px, py) = (x.map(dx), y.map(dy));
        let col = px.round() as i64;
        match column {
            Some(c) if c.0 == col => column = Some((col, c.1, c.2.min(py), c.3.max(py))),
            Some(c) => {
                flush(&mut out, c);
                column = Some((col, py, py, py));
            }
            None => column = Some((col, py, py, py)),
        }
    }
    if let Some(c) = column {
        flush(&mut out, c);
    }
    out
}

/// Linear interpolation of `y` at `x` in a series sorted by `x` (clamped at the ends).
pub fn interpolate(series: &[(f64, f64)], x: f64) -> Option<f64> {
    let first = series.first()?;
    let last = series.last()?;
    if x <= first.0 {
        return Some(first.1);
    }
    if x >= last.0 {
        return Some(last.1);
    }
    let i = series.partition_point(|p| p.0 <= x);
    let (a, b) = (series[i - 1], series[i]);
    if (b.0 - a.0).abs() < f64::EPSILON {
        return Some(a.1);
    }
    Some(a.1 + (x - a.0) / (b.0 - a.0) * (b.1 - a.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_map_and_invert() {
        let y = Scale::new((0.0, 100.0), (200.0, 0.0)); // y down
        assert_eq!(y.map(0.0), 200.0);
        assert_eq!(y.map(100.0), 0.0);
        assert_eq!(y.map(25.0), 150.0);
        assert_eq!(y.invert(150.0), 25.0);
        let flat = Scale::new((5.0, 5.0), (0.0, 10.0));
        assert_eq!(flat.map(5.0), 5.0);
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_ticks(0.0, 300.0, 3), vec![0.0, 100.0, 200.0, 300.0]);
        assert_eq!(nice_ticks(0.0, 1.0, 5), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(nice_ticks(-1.3, 1.3, 4), vec![-1.0, 0.0, 1.0]);
        assert_eq!(nice_ticks(-1.3, 1.3, 6), vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert!(nice_ticks(1.0, 1.0, 4).is_empty());
        assert!(nice_ticks(0.0, f64::NAN, 4).is_empty());
    }

    #[test]
    fn extent_widens_flat_series() {
        assert_eq!(extent([1.0, 3.0, 2.0], 0.5), Some((1.0, 3.0)));
        assert_eq!(extent([2.0, 2.0], 1.0), Some((1.5, 2.5)));
        assert_eq!(extent([f64::NAN], 1.0), None);
    }

    #[test]
    fn thinning_keeps_spikes_and_one_column_per_pixel() {
        let x = Scale::new((0.0, 1000.0), (0.0, 10.0));
        let y = Scale::new((0.0, 100.0), (100.0, 0.0));
        // 1000 points into 11 columns, with one spike to 100 at x = 503.
        let pts = (0..1000).map(|i| (i as f64, if i == 503 { 100.0 } else { 10.0 }));
        let px = to_pixels(pts, &x, &y);
        assert!(px.len() <= 11 * 3, "{} points", px.len());
        assert!(px.iter().any(|p| p.1 == 0.0), "the spike survives");
        assert!(px.windows(2).all(|w| w[0].0 <= w[1].0), "ordered by x");
        // outside the domain and NaN dropped
        assert!(to_pixels([(-1.0, 5.0), (5.0, f64::NAN)], &x, &y).is_empty());
    }

    #[test]
    fn interpolation() {
        let s = [(0.0, 0.0), (1.0, 10.0), (2.0, 30.0)];
        assert_eq!(interpolate(&s, 0.5), Some(5.0));
        assert_eq!(interpolate(&s, 1.5), Some(20.0));
        assert_eq!(interpolate(&s, -1.0), Some(0.0));
        assert_eq!(interpolate(&s, 9.0), Some(30.0));
        assert_eq!(interpolate(&[], 1.0), None);
    }
}
