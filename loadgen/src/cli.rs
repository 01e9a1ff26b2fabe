//! The command line of `pitbox-loadgen`, and the limits it holds a run to: loopback targets only
//! (unless `--allow-remote`), at most [`MAX_DRIVERS`] drivers, [`MAX_DASHBOARDS`] dashboards and
//! [`MAX_SECS`] seconds, and a soak long enough for its verdict. Env: `PITBOX_LOADGEN_ADMIN`, `PITBOX_LOADGEN_PASSWORD` (the admin login
//! that creates the run's teams, users and drivers through the REST API).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

pub const MAX_DRIVERS: usize = 5000;
pub const MAX_DASHBOARDS: usize = 10_000;
pub const MAX_SECS: u64 = 3600;

/// What is on the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// `pitbox-runtime serve`: teams, users and drivers are created through its REST API first.
    Pitbox,
    /// The baseline relay (`loadgen/baseline/relay.py`): no REST setup, any token is taken.
    Relay,
}

/// Where the driver nodes' telemetry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceKind {
    /// The driver node's synthetic driver (a different seed per node).
    Synthetic,
    /// A `.ibt` recording (`--ibt`), looped, replayed at real time.
    Ibt,
}

/// Drives a PitBox runtime (or the baseline relay) with N driver nodes and M dashboards for a
/// set time, then prints throughput, latency sample → dashboard, errors, and the server's CPU
/// and RSS.
#[derive(Debug, Clone, Parser)]
#[command(name = "pitbox-loadgen", version)]
pub struct Args {
    /// The runtime's base URL (`http://127.0.0.1:8080`); loopback only without `--allow-remote`.
    #[arg(long)]
    pub url: String,
    #[arg(long, value_enum, default_value_t = Target::Pitbox)]
    pub target: Target,
    /// Driver nodes (at most 5000).
    #[arg(long, default_value_t = 10)]
    pub drivers: usize,
    /// Dashboards (at most 10000); default: 2 per team.
    #[arg(long)]
    pub dashboards: Option<usize>,
    /// Drivers per team.
    #[arg(long, default_value_t = 10)]
    pub team_size: usize,
    /// Measured seconds (at most 3600), after the warm-up.
    #[arg(long, default_value_t = 10)]
    pub secs: u64,
    /// Seconds of load before the measurement starts.
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
    /// Team view rate the dashboards ask for.
    #[arg(long, default_value_t = 20)]
    pub rate_hz: u16,
    #[arg(long, value_enum, default_value_t = SourceKind::Synthetic)]
    pub source: SourceKind,
    /// The recording for `--source ibt`.
    #[arg(long)]
    pub ibt: Option<PathBuf>,
    /// The server process to watch (CPU and RSS from /proc/<pid>).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Admin username for the REST setup (`--target pitbox`).
    #[arg(long, env = "PITBOX_LOADGEN_ADMIN", default_value = "admin")]
    pub admin: String,
    /// Admin password for the REST setup.
    #[arg(long, env = "PITBOX_LOADGEN_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Threads that run the nodes' uplinks and the dashboards.
    #[arg(long, default_value_t = 2)]
    pub client_threads: usize,
    /// Threads that pace the nodes' sources into their spools at 60 Hz.
    #[arg(long, default_value_t = 2)]
    pub pacer_threads: usize,
    /// Where the nodes' spools go (default: a temporary folder in /dev/shm when there is one, so
    /// the spools' disk syncs do not measure this machine's disk).
    #[arg(long)]
    pub spool_dir: Option<PathBuf>,
    /// Print the figures as one JSON object on stdout (for tools/bench-report.sh and tests).
    #[arg(long)]
    pub json: bool,
    /// Allow a URL that is not on this machine.
    #[arg(long)]
    pub allow_remote: bool,
    /// Soak: cut the run into windows (server RSS, the admin tree's mailboxes, latency p50/p99
    /// each) and end with a verdict on memory, mailboxes and latency; exit code 3 when it fails.
    #[arg(long)]
    pub soak: bool,
    /// Seconds per soak window.
    #[arg(long, default_value_t = 30)]
    pub window: u64,
    /// Seconds at the start of the measurement that the soak's verdict leaves out (caches and
    /// pools filling, the first laps).
    #[arg(long, default_value_t = 120)]
    pub soak_warmup: u64,
}

impl Args {
    pub fn dashboards(&self) -> usize {
        self.dashboards.unwrap_or(2 * self.teams())
    }

    pub fn teams(&self) -> usize {
        self.drivers.div_ceil(self.team_size.max(1)).max(1)
    }

    /// Checks the bounds and the target's address.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.drivers >= 1 && self.drivers <= MAX_DRIVERS, "--drivers: 1..={MAX_DRIVERS}");
        anyhow::ensure!(self.dashboards() <= MAX_DASHBOARDS, "--dashboards: at most {MAX_DASHBOARDS}");
        anyhow::ensure!(self.secs >= 1 && self.secs <= MAX_SECS, "--secs: 1..={MAX_SECS}");
        anyhow::ensure!(self.warmup <= 60, "--warmup: at most 60 s");
        anyhow::ensure!(self.team_size >= 1, "--team-size: at least 1");
        anyhow::ensure!(
            self.source != SourceKind::Ibt || self.ibt.is_some(),
            "--source ibt needs --ibt FILE"
        );
        if self.soak {
            anyhow::ensure!(self.window >= 1, "--window: at least 1 s");
            anyhow::ensure!(
                self.secs >= self.soak_warmup + 3 * self.window,
                "--soak: --secs must hold --soak-warmup and three windows after it"
            );
        }
        let url = url::Url::parse(&self.url).map_err(|e| anyhow::anyhow!("--url {}: {e}", self.url))?;
        anyhow::ensure!(matches!(url.scheme(), "http" | "https"), "--url: http:// or https://");
        if !self.allow_remote {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                None => false,
            };
            anyhow::ensure!(
                loopback,
                "--url {} is not on this machine; a load test against another machine needs --allow-remote",
                self.url
            );
        }
        Ok(())
    }

    /// The base URL without a trailing slash.
    pub fn base(&self) -> String {
        self.url.trim_end_matches('/').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut v = vec!["pitbox-loadgen"];
        v.extend_from_slice(extra);
        Args::parse_from(v)
    }

    #[test]
    fn refuses_remote_and_oversized_runs() {
        assert!(args(&["--url", "http://127.0.0.1:1"]).validate().is_ok());
        assert!(args(&["--url", "http://localhost:1"]).validate().is_ok());
        assert!(args(&["--url", "http://[::1]:1"]).validate().is_ok());
        assert!(args(&["--url", "http://10.0.0.1:1"]).validate().is_err());
        assert!(args(&["--url", "http://10.0.0.1:1", "--allow-remote"]).validate().is_ok());
        assert!(args(&["--url", "http://127.0.0.1:1", "--drivers", "5001"]).validate().is_err());
        assert!(args(&["--url", "http://127.0.0.1:1", "--dashboards", "10001"]).validate().is_err());
        assert!(args(&["--url", "http://127.0.0.1:1", "--secs", "3601"]).validate().is_err());
        let soak = ["--url", "http://127.0.0.1:1", "--soak", "--window", "5", "--soak-warmup", "10"];
        assert!(args(&[&soak[..], &["--secs", "25"]].concat()).validate().is_ok());
        assert!(args(&[&soak[..], &["--secs", "24"]].concat()).validate().is_err());
    }

    #[test]
    fn two_dashboards_per_team_of_ten_by_default() {
        let a = args(&["--url", "http://127.0.0.1:1", "--drivers", "25"]);
        assert_eq!((a.teams(), a.dashboards()), (3, 6));
    }
}
