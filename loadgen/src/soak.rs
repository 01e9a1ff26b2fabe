//! The soak (`--soak`): the run is cut into windows (`--window`, 30 s by default); each window
//! records the server's RSS, the mailboxes of its actor tree (`GET /admin/actors` as the admin,
//! summed, the fullest one named, and the store writer's `queuedRows`), and the latency p50/p99 of
//! the samples delivered in it. At the end a verdict compares the last third of the windows after
//! the soak's warm-up (`--soak-warmup`) with the first third: memory that grew, a mailbox or queue
//! that kept growing, or latency that drifted fails the run (exit code 3). Slacks are generous on
//! purpose: a soak should catch a leak or a backlog, not the noise of a shared machine.
//! Reads no env vars (the admin login comes from [`crate::cli`]).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use serde_json::Value;

/// RSS may grow by this fraction of the first third's, plus [`RSS_SLACK_MIB`].
const RSS_GROWTH: f64 = 0.25;
const RSS_SLACK_MIB: f64 = 32.0;
/// A queue "keeps growing" when the last third's mean is over twice the first third's plus this
/// (messages; rows for the store writer's queue).
const MAILBOX_SLACK: f64 = 200.0;
const QUEUED_ROWS_SLACK: f64 = 20_000.0;
/// Latency has drifted when the last third's median window p99 is over this factor of the first
/// third's plus [`P99_SLACK_MS`].
const P99_FACTOR: f64 = 2.0;
const P99_SLACK_MS: f64 = 25.0;
/// The admin token is renewed before it expires (15 minutes by default).
const RELOGIN_AFTER: Duration = Duration::from_secs(300);

/// One window of the soak.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// Seconds since the measurement started, at the window's end.
    pub t: u64,
    /// Whether the verdict leaves it out (the soak's warm-up).
    pub warmup: bool,
    pub server_rss_mib: Option<f64>,
    /// Messages waiting in all actors' mailboxes, and in the fullest one (with its path).
    pub mailbox_total: Option<u64>,
    pub mailbox_max: Option<u64>,
    pub mailbox_max_path: Option<String>,
    /// The store writer's queue when its last flush began (`queuedRows`).
    pub queued_rows: Option<u64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub latency_samples: u64,
    pub acked: u64,
    pub delivered: u64,
}

/// One check of the verdict: the first and last thirds' figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub name: &'static str,
    pub first: f64,
    pub last: f64,
    pub limit: f64,
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub pass: bool,
    /// Windows the verdict compared (after the warm-up).
    pub windows: usize,
    pub checks: Vec<Check>,
    /// Why there is no verdict, when there is none (too few windows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The first and last thirds of `values` (each at least one value; the middle is left out).
fn thirds(values: &[f64]) -> (&[f64], &[f64]) {
    let k = (values.len() / 3).max(1);
    (&values[..k], &values[values.len() - k..])
}

/// Judges the windows after the warm-up. Needs at least three; a figure the run did not have (no
/// `--server-pid`, no admin tree) is not checked.
pub fn verdict(windows: &[Window]) -> Verdict {
    let w: Vec<&Window> = windows.iter().filter(|w| !w.warmup).collect();
    if w.len() < 3 {
        return Verdict {
            pass: false,
            windows: w.len(),
            checks: vec![],
            missing: Some(format!("{} windows after the warm-up; a verdict needs 3", w.len())),
        };
    }
    let mut checks = vec![];
    let mut check =
        |name, values: Vec<Option<f64>>, combine: fn(&[f64]) -> f64, limit: &dyn Fn(f64) -> f64| {
            let values: Option<Vec<f64>> = values.into_iter().collect();
            if let Some(values) = values {
                let (a, b) = thirds(&values);
                let (first, last) = (combine(a), combine(b));
                let limit = limit(first);
                checks.push(Check { name, first, last, limit, ok: last <= limit });
            }
        };
    check("serverRssMib", w.iter().map(|w| w.server_rss_mib).collect(), mean, &|f| {
        f * (1.0 + RSS_GROWTH) + RSS_SLACK_MIB
    });
    check("mailboxTotal", w.iter().map(|w| w.mailbox_total.map(|m| m as f64)).collect(), mean, &|f| {
        2.0 * f + MAILBOX_SLACK
    });
    check("queuedRows", w.iter().map(|w| w.queued_rows.map(|m| m as f64)).collect(), mean, &|f| {
        2.0 * f + QUEUED_ROWS_SLACK
    });
    // Windows without deliveries have no latency; they are left out.
    let p99: Vec<Option<f64>> = w.iter().filter(|w| w.latency_samples > 0).map(|w| Some(w.p99_ms)).collect();
    if p99.len() >= 3 {
        check("p99Ms", p99, median, &|f| f * P99_FACTOR + P99_SLACK_MS);
    }
    Verdict { pass: checks.iter().all(|c| c.ok), windows: w.len(), checks, missing: None }
}

/// The admin's view of the actor tree, logged in as needed.
pub struct AdminTree {
    tls: pitbox_driver::tls::NodeTls,
    base: String,
    admin: String,
    password: String,
    token: Option<(String, Instant)>,
}

/// What a window reads from the tree.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Queues {
    pub total: u64,
    pub max: u64,
    pub max_path: String,
    pub queued_rows: Option<u64>,
}

/// Sums the mailboxes of a tree (`GET /admin/actors`'s JSON) and finds the fullest.
pub fn queues(tree: &Value) -> Queues {
    fn walk(n: &Value, q: &mut Queues) {
        let m = n["mailbox"].as_u64().unwrap_or(0);
        q.total += m;
        if m > q.max || q.max_path.is_empty() {
            q.max = m;
            q.max_path = n["path"].as_str().unwrap_or_default().to_owned();
        }
        if let Some(rows) = n["gauges"]["queuedRows"].as_u64() {
            q.queued_rows = Some(q.queued_rows.unwrap_or(0) + rows);
        }
        for c in n["children"].as_array().into_iter().flatten() {
            walk(c, q);
        }
    }
    let mut q = Queues::default();
    for n in tree["root"].as_array().into_iter().flatten() {
        walk(n, &mut q);
    }
    q
}

impl AdminTree {
    pub fn new(tls: pitbox_driver::tls::NodeTls, base: String, admin: String, password: String) -> Self {
        Self { tls, base, admin, password, token: None }
    }

    async fn token(&mut self, client: &awc::Client) -> anyhow::Result<String> {
        if let Some((t, at)) = &self.token {
            if at.elapsed() < RELOGIN_AFTER {
                return Ok(t.clone());
            }
        }
        let l = crate::setup::login(client, &self.base, &self.admin, &self.password).await?;
        let t = l["token"].as_str().context("login answer without a token")?.to_owned();
        self.token = Some((t.clone(), Instant::now()));
        Ok(t)
    }

    /// The tree's queues now (tried twice: a window without them is not judged on them).
    pub async fn queues(&mut self) -> anyhow::Result<Queues> {
        match self.read().await {
            Ok(q) => Ok(q),
            Err(e) => {
                tracing::debug!(error = %e, "the admin tree was not read; trying again");
                self.read().await
            }
        }
    }

    async fn read(&mut self) -> anyhow::Result<Queues> {
        // A client of its own each time: one kept for minutes between windows lost its pooled
        // connection's connector ("connector has been disconnected").
        let client = pitbox_driver::uplink::client(&self.tls);
        let token = self.token(&client).await?;
        let mut res = client
            .get(format!("{}/admin/actors", self.base))
            .bearer_auth(&token)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("GET /admin/actors: {e}"))?;
        if res.status() == awc::http::StatusCode::UNAUTHORIZED {
            // Logged in again at the next window.
            self.token = None;
        }
        let body = res.body().limit(64 << 20).await.map_err(|e| anyhow::anyhow!("/admin/actors: {e}"))?;
        anyhow::ensure!(res.status().is_success(), "/admin/actors: {}", res.status());
        Ok(queues(&serde_json::from_slice(&body).context("/admin/actors: not JSON")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(t: u64, rss: f64, mailbox: u64, p99: f64) -> Window {
        Window {
            t,
            warmup: t <= 10,
            server_rss_mib: Some(rss),
            mailbox_total: Some(mailbox),
            mailbox_max: Some(mailbox),
            mailbox_max_path: Some("/runtime".into()),
            queued_rows: Some(10),
            p50_ms: p99 / 2.0,
            p99_ms: p99,
            latency_samples: 100,
            acked: 600,
            delivered: 600,
        }
    }

    #[test]
    fn a_steady_run_passes_and_the_warmup_is_left_out() {
        // The warm-up's climb (40 → 90 MiB) is not held against the run.
        let mut w = vec![window(5, 40.0, 900, 300.0), window(10, 90.0, 0, 5.0)];
        w.extend((3..=12).map(|i| window(i * 5, 100.0 + (i % 2) as f64 * 3.0, i % 3, 5.0 + (i % 4) as f64)));
        let v = verdict(&w);
        assert!(v.pass, "{v:?}");
        assert_eq!(v.windows, 10);
        assert_eq!(v.checks.len(), 4);
    }

    #[test]
    fn growth_fails_the_check_that_saw_it() {
        let steady: Vec<Window> = (3..=12).map(|i| window(i * 5, 100.0, 2, 5.0)).collect();
        let failing = |edit: &dyn Fn(&mut Window, u64)| {
            let mut w = steady.clone();
            for (i, x) in w.iter_mut().enumerate() {
                edit(x, i as u64);
            }
            let v = verdict(&w);
            assert!(!v.pass);
            v.checks.into_iter().filter(|c| !c.ok).map(|c| c.name).collect::<Vec<_>>()
        };
        assert_eq!(failing(&|w, i| w.server_rss_mib = Some(100.0 + 20.0 * i as f64)), ["serverRssMib"]);
        assert_eq!(failing(&|w, i| w.mailbox_total = Some(100 * i)), ["mailboxTotal"]);
        assert_eq!(failing(&|w, i| w.queued_rows = Some(10_000 * i)), ["queuedRows"]);
        assert_eq!(failing(&|w, i| w.p99_ms = 5.0 + 15.0 * i as f64), ["p99Ms"]);
    }

    #[test]
    fn too_short_a_run_has_no_verdict() {
        let v = verdict(&[window(5, 1.0, 0, 1.0), window(15, 1.0, 0, 1.0), window(20, 1.0, 0, 1.0)]);
        assert!(!v.pass);
        assert!(v.missing.is_some());
    }

    #[test]
    fn queues_sum_the_tree() {
        let tree = serde_json::json!({"root": [
            {"path": "/runtime", "mailbox": 1, "children": [
                {"path": "/runtime/store", "mailbox": 0, "gauges": {"queuedRows": 120}},
                {"path": "/runtime/x", "mailbox": 7},
            ]},
            {"path": "/teams/t", "mailbox": 2},
        ]});
        let q = queues(&tree);
        assert_eq!((q.total, q.max, q.max_path.as_str(), q.queued_rows), (10, 7, "/runtime/x", Some(120)));
    }
}
