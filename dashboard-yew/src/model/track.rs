//! The track map's geometry: an outline learnt from the racing line (latitude/longitude by lap
//! fraction, collected from samples or a reference lap), projected to metres, and the place of any
//! car from its lap fraction. Without coordinates the map falls back to a circle, so the order of
//! cars is still shown. The runtime serves a track's outline (from a clean lap, kept with its
//! corner map): a served outline is drawn at once and live samples no longer change it. Pure
//! logic, unit-tested natively. Reads no env vars.

/// Bins around the lap: fine enough for a smooth outline of a 7 km track (one per ~14 m).
pub const BINS: usize = 512;

#[derive(Debug, Clone)]
pub struct TrackOutline {
    /// (x, y) in metres east/north of the first point, by lap-fraction bin.
    bins: Vec<Option<(f64, f64)>>,
    origin: Option<(f64, f64)>,
    filled: usize,
    /// Served by the runtime: complete, in its own coordinates; live samples leave it alone.
    served: bool,
}

impl Default for TrackOutline {
    fn default() -> Self {
        TrackOutline { bins: vec![None; BINS], origin: None, filled: 0, served: false }
    }
}

const METRES_PER_DEGREE: f64 = 111_320.0;

impl TrackOutline {
    /// The runtime's outline of a track: `[lapFraction, x, y]` in metres east/north.
    pub fn served(points: &[[f64; 3]]) -> TrackOutline {
        let mut o = TrackOutline { served: true, ..TrackOutline::default() };
        for [pct, x, y] in points {
            if !(0.0..1.0).contains(pct) || !x.is_finite() || !y.is_finite() {
                continue;
            }
            let i = ((pct * BINS as f64) as usize).min(BINS - 1);
            if o.bins[i].is_none() {
                o.filled += 1;
            }
            o.bins[i] = Some((*x, *y));
        }
        // A served outline is drawn whatever its density: its points are all there is.
        if o.filled > 8 {
            o.filled = o.filled.max((BINS as f64 * 0.4).ceil() as usize);
        }
        o
    }

    pub fn is_served(&self) -> bool {
        self.served
    }

    /// Records the car at fraction `pct` at `lat`/`lon`. Returns true if the outline changed.
    pub fn add(&mut self, pct: f32, lat: f64, lon: f64) -> bool {
        if self.served {
            return false;
        }
        if !(0.0..1.0).contains(&pct) || !lat.is_finite() || !lon.is_finite() || (lat == 0.0 && lon == 0.0) {
            return false;
        }
        let (lat0, lon0) = *self.origin.get_or_insert((lat, lon));
        let x = (lon - lon0) * METRES_PER_DEGREE * lat0.to_radians().cos();
        let y = (lat - lat0) * METRES_PER_DEGREE;
        let i = ((f64::from(pct) * BINS as f64) as usize).min(BINS - 1);
        if self.bins[i].is_none() {
            self.filled += 1;
            self.bins[i] = Some((x, y));
            return true;
        }
        false
    }

    /// Share of the lap seen so far (0–1).
    pub fn coverage(&self) -> f64 {
        self.filled as f64 / BINS as f64
    }

    /// Whether there is enough of a line to draw a map (otherwise: the circle); gaps are bridged.
    pub fn usable(&self) -> bool {
        self.coverage() >= 0.4
    }

    /// The known points in lap order.
    pub fn points(&self) -> Vec<(f64, f64)> {
        self.bins.iter().flatten().copied().collect()
    }

    /// Where a car at fraction `pct` is: interpolated between the nearest known bins (wrapping
    /// at the line); on the fallback circle when the outline is not usable.
    pub fn position(&self, pct: f32) -> (f64, f64) {
        let pct = f64::from(pct).rem_euclid(1.0);
        if !self.usable() {
            let a = pct * std::f64::consts::TAU;
            return (500.0 * a.sin(), 500.0 * a.cos());
        }
        let f = pct * BINS as f64;
        let i = (f as usize).min(BINS - 1);
        let before = (0..BINS).map(|k| (i + BINS - k) % BINS).find_map(|j| self.bins[j].map(|p| (j, p)));
        let after = (1..=BINS).map(|k| (i + k) % BINS).find_map(|j| self.bins[j].map(|p| (j, p)));
        match (before, after) {
            (Some((j0, p0)), Some((j1, p1))) if j0 != j1 => {
                let gap = ((j1 + BINS - j0) % BINS) as f64;
                let into = (f - j0 as f64).rem_euclid(BINS as f64);
                let t = (into / gap).clamp(0.0, 1.0);
                (p0.0 + t * (p1.0 - p0.0), p0.1 + t * (p1.1 - p0.1))
            }
            (Some((_, p)), _) => p,
            _ => (0.0, 0.0),
        }
    }

    /// Bounding box of what is drawn: the outline, or the fallback circle.
    pub fn bounds(&self) -> (f64, f64, f64, f64) {
        if !self.usable() {
            return (-500.0, -500.0, 500.0, 500.0);
        }
        self.points().iter().fold((f64::MAX, f64::MAX, f64::MIN, f64::MIN), |b, p| {
            (b.0.min(p.0), b.1.min(p.1), b.2.max(p.0), b.3.max(p.1))
        })
    }
}

/// Fits a bounding box into a `w`×`h` canvas with a margin, keeping the aspect ratio and turning
/// north up: returns a function from metres to pixels.
pub fn fit(bounds: (f64, f64, f64, f64), w: f64, h: f64, margin: f64) -> impl Fn((f64, f64)) -> (f64, f64) {
    let (x0, y0, x1, y1) = bounds;
    let (bw, bh) = ((x1 - x0).max(1.0), (y1 - y0).max(1.0));
    let k = ((w - 2.0 * margin) / bw).min((h - 2.0 * margin) / bh).max(0.0);
    let (ox, oy) = ((w - k * bw) / 2.0, (h - k * bh) / 2.0);
    move |(x, y)| (ox + (x - x0) * k, h - (oy + (y - y0) * k))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round track of radius ~1 km near Spa's latitude.
    fn circle(outline: &mut TrackOutline, every: usize) {
        for i in (0..BINS).step_by(every) {
            let pct = i as f64 / BINS as f64;
            let a = pct * std::f64::consts::TAU;
            let lat = 50.44 + 0.009 * a.cos();
            let lon = 5.97 + 0.014 * a.sin();
            outline.add(pct as f32, lat, lon);
        }
    }

    #[test]
    fn fallback_until_enough_of_the_lap_is_known() {
        let mut o = TrackOutline::default();
        assert!(!o.usable());
        let (x, y) = o.position(0.25);
        assert!((x - 500.0).abs() < 1e-6 && y.abs() < 1e-6, "quarter way round the circle");
        circle(&mut o, 1);
        assert!(o.usable());
        assert!((o.coverage() - 1.0).abs() < 1e-9);
        assert!(!o.add(0.5, f64::NAN, 5.0));
        assert!(!o.add(1.5, 50.0, 5.0));
    }

    #[test]
    fn positions_interpolate_over_gaps_and_the_line() {
        let mut o = TrackOutline::default();
        circle(&mut o, 2); // every other bin
        assert!(o.usable());
        let p = o.position(0.25);
        let q = o.position(0.25 + 1.0 / BINS as f32);
        assert!(((p.0 - q.0).powi(2) + (p.1 - q.1).powi(2)).sqrt() < 30.0, "neighbours are close");
        // just before the line interpolates towards bin 0, not across the map
        let end = o.position(0.9995);
        let start = o.position(0.0);
        assert!(((end.0 - start.0).powi(2) + (end.1 - start.1).powi(2)).sqrt() < 30.0);
    }

    #[test]
    fn a_served_outline_is_drawn_at_once_and_kept() {
        let pts: Vec<[f64; 3]> = (0..200)
            .map(|i| {
                let a = f64::from(i) / 200.0 * std::f64::consts::TAU;
                [f64::from(i) / 200.0, 800.0 * a.sin(), 500.0 * a.cos()]
            })
            .collect();
        let mut o = TrackOutline::served(&pts);
        assert!(o.usable() && o.is_served());
        let (x, _) = o.position(0.25);
        assert!((x - 800.0).abs() < 30.0, "{x}");
        assert!(!o.add(0.5, 50.0, 5.0), "live samples do not move a served outline");
    }

    #[test]
    fn fit_keeps_aspect_and_flips_north_up() {
        let f = fit((0.0, 0.0, 200.0, 100.0), 400.0, 400.0, 0.0);
        assert_eq!(f((0.0, 0.0)), (0.0, 300.0));
        assert_eq!(f((200.0, 100.0)), (400.0, 100.0));
    }
}
