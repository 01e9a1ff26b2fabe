//! Prometheus metrics (`GET /metrics`, text exposition format): HTTP requests by route pattern and
//! status, request latency, telemetry samples and laps stored, database pool use. Counters only;
//! rates are computed by whoever scrapes. Reads no env vars.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_duration: Family<RouteLabels, Histogram>,
    pub telemetry_samples: Counter,
    pub laps: Counter,
    /// Media frames received from driver nodes, and those dropped (no relay at that moment).
    pub video_frames: Counter,
    pub video_dropped: Counter,
    pub db_connections: Gauge,
    pub db_idle_connections: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pitbox");
        let http_requests = Family::<RequestLabels, Counter>::default();
        let http_duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let telemetry_samples = Counter::default();
        let laps = Counter::default();
        let video_frames = Counter::default();
        let video_dropped = Counter::default();
        let db_connections = Gauge::default();
        let db_idle_connections = Gauge::default();
        registry.register("http_requests", "HTTP requests answered", http_requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests",
            http_duration.clone(),
        );
        registry.register("telemetry_samples", "Telemetry samples stored", telemetry_samples.clone());
        registry.register("laps", "Completed laps stored", laps.clone());
        registry.register("video_frames", "Video frames received from driver nodes", video_frames.clone());
        registry.register("video_dropped", "Video frames dropped on arrival", video_dropped.clone());
        registry.register("db_connections", "Open database connections", db_connections.clone());
        registry.register("db_idle_connections", "Idle database connections", db_idle_connections.clone());
        Self {
            registry: Mutex::new(registry),
            http_requests,
            http_duration,
            telemetry_samples,
            laps,
            video_frames,
            video_dropped,
            db_connections,
            db_idle_connections,
        }
    }

    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&RequestLabels { method: method.to_owned(), route: route.to_owned(), status })
            .inc();
        self.http_duration.get_or_create(&RouteLabels { route: route.to_owned() }).observe(seconds);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Result<String, String> {
        let registry = self.registry.lock().map_err(|_| "metrics registry lock poisoned".to_owned())?;
        let mut out = String::new();
        encode(&mut out, &registry).map_err(|e| e.to_string())?;
        Ok(out)
    }
}
