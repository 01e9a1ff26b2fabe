//! The figures of a run: counters shared by the nodes and dashboards, a fixed-size latency
//! histogram (10 µs buckets up to 2 s, so an hour's run holds no per-sample memory), and the
//! watched server's CPU and RSS read from `/proc/<pid>` as the fan-out bench
//! (`runtime/benches/fanout.rs`) reads its own. Reads no env vars.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const BUCKET_US: u64 = 10;
const BUCKETS: usize = 200_000;

/// Counters for the whole run; the measured window is what `measuring` is on for.
pub struct Totals {
    pub measuring: AtomicBool,
    /// Samples the nodes' sources put into their spools in the window.
    pub sent: AtomicU64,
    /// Samples delivered to dashboards in the window.
    pub delivered: AtomicU64,
    /// Connection failures, refused logins, bad messages.
    pub errors: AtomicU64,
    latency: Vec<AtomicU64>,
    max_us: AtomicU64,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            measuring: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max_us: AtomicU64::new(0),
        }
    }
}

impl Totals {
    pub fn measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// One sample reached a dashboard `us` microseconds after its node spooled it.
    pub fn delivered(&self, us: u64) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        let i = ((us / BUCKET_US) as usize).min(BUCKETS - 1);
        if let Some(b) = self.latency.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// Latency percentiles in milliseconds: (p50, p99, max, samples).
    pub fn percentiles(&self) -> (f64, f64, f64, u64) {
        let (p50, p99, total) = percentiles_of(&self.latency_counts());
        if total == 0 {
            return (0.0, 0.0, 0.0, 0);
        }
        (p50, p99, self.max_us.load(Ordering::Relaxed) as f64 / 1000.0, total)
    }

    /// The latency histogram now (a window's is the difference of two, see [`window_percentiles`]).
    pub fn latency_counts(&self) -> Vec<u64> {
        self.latency.iter().map(|b| b.load(Ordering::Relaxed)).collect()
    }
}

/// (p50, p99) in milliseconds and the number of samples of a histogram.
fn percentiles_of(counts: &[u64]) -> (f64, f64, u64) {
    let total: u64 = counts.iter().sum();
    let at = |p: f64| {
        let want = ((total as f64 * p).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return ((i as u64 + 1) * BUCKET_US) as f64 / 1000.0;
            }
        }
        0.0
    };
    if total == 0 {
        return (0.0, 0.0, 0);
    }
    (at(0.5), at(0.99), total)
}

/// (p50, p99, samples) of the samples delivered between two [`Totals::latency_counts`].
pub fn window_percentiles(before: &[u64], now: &[u64]) -> (f64, f64, u64) {
    let diff: Vec<u64> = now.iter().zip(before).map(|(n, b)| n.saturating_sub(*b)).collect();
    percentiles_of(&diff)
}

/// CPU seconds (user + system) and RSS in KiB of a process, from `/proc/<pid>`.
pub fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit(')').next()?;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    // USER_HZ is 100 on every Linux this runs on.
    Some((ticks / 100.0, rss))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_from_buckets() {
        let t = Totals::default();
        for us in 1..=1000 {
            t.delivered(us * 10);
        }
        let (p50, p99, max, n) = t.percentiles();
        assert_eq!(n, 1000);
        assert!((p50 - 5.0).abs() < 0.02, "{p50}");
        assert!((p99 - 9.9).abs() < 0.02, "{p99}");
        assert!((max - 10.0).abs() < 1e-9);
    }

    #[test]
    fn a_window_counts_only_its_own_samples() {
        let t = Totals::default();
        for _ in 0..100 {
            t.delivered(50_000);
        }
        let before = t.latency_counts();
        for us in 1..=100 {
            t.delivered(us * 10);
        }
        let (p50, p99, n) = window_percentiles(&before, &t.latency_counts());
        assert_eq!(n, 100);
        assert!((p50 - 0.5).abs() < 0.02 && (p99 - 0.99).abs() < 0.02, "{p50} {p99}");
    }

    #[test]
    fn reads_its_own_process() {
        let (_, rss) = proc_usage(std::process::id()).unwrap_or_default();
        assert!(rss > 0);
    }
}
