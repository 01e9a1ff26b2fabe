//! Builds the actix-web server: shared state, middleware (CORS, per-IP rate limit, metrics,
//! request logging, compression, security headers, the NUL rule of [`crate::input`]), routes, and
//! the dashboard as the fallback for every other GET ([`crate::dashboard`]). Reads no env vars;
//! everything comes from the config.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Compress, DefaultHeaders, Next};
use actix_web::{web, App, HttpServer};

use crate::auth::Keys;
use crate::config::{Config, SecretSource};
use crate::db::Db;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;
use crate::routes;
use pitbox_actors::supervision::RestartPolicy;
use pitbox_actors::{ActorSystem, SystemOptions};

/// Everything the handlers share, built once.
#[derive(Clone)]
pub struct State {
    pub config: Arc<Config>,
    pub db: web::Data<Db>,
    pub keys: web::Data<Keys>,
    pub limits: web::Data<RateLimits>,
    pub metrics: web::Data<Metrics>,
    pub system: web::Data<ActorSystem>,
    /// Lap analyses computed for earlier requests.
    pub coach_cache: web::Data<crate::coaching::CoachCache>,
    /// Text to speech (the voice channels' and the REST route's) and the REST route's clips.
    pub tts: web::Data<crate::voice::Tts>,
    pub clips: web::Data<crate::voice::ClipStore>,
    /// Cluster mode, once joined ([`State::join_cluster`]).
    pub cluster: Option<web::Data<crate::cluster::Cluster>>,
}

impl State {
    /// Opens the database, runs migrations and starts the actor tree. Must run inside an actix
    /// system (the actors live on it).
    pub fn new(config: Config) -> anyhow::Result<State> {
        let db = Db::open(&config)?;
        let applied = db.migrate()?;
        if !applied.is_empty() {
            tracing::info!(?applied, "database migrated");
        }
        if config.jwt_secret_source == SecretSource::Generated {
            tracing::warn!(
                "no PITBOX_JWT_SECRET set: generated a random one for this run (dev mode); \
                 tokens will not survive a restart"
            );
        }
        let tts = crate::voice::Tts::new(config.voice.clone()).map_err(|e| anyhow::anyhow!("voice: {e}"))?;
        let system = ActorSystem::start(
            db.pool(),
            SystemOptions {
                server_id: config.server_id.clone(),
                policy: RestartPolicy { intensity: config.restart_intensity, period: config.restart_period },
                idle_timeout: config.idle_timeout,
                session_threads: config.session_threads,
                phrasing: crate::llm::coach_phrasing(config.llm.clone())?,
                speech: Some(Arc::new(tts.clone())),
                // Cluster mode: team actors run, and write, only under a lease of this node's.
                fence: match &config.cluster {
                    Some(c) => pitbox_actors::fence::Fence::for_node(c.node_id.clone()),
                    None => pitbox_actors::fence::Fence::off(),
                },
            },
        );
        Ok(State {
            system: web::Data::new(system),
            keys: web::Data::new(Keys::new(
                &config.jwt_secret,
                config.access_token_ttl,
                config.refresh_token_ttl,
            )),
            limits: web::Data::new(RateLimits::new(&config)),
            metrics: web::Data::new(Metrics::new()),
            coach_cache: web::Data::new(crate::coaching::CoachCache::default()),
            tts: web::Data::new(tts),
            clips: web::Data::new(crate::voice::ClipStore::default()),
            db: web::Data::new(db),
            config: Arc::new(config),
            cluster: None,
        })
    }

    /// Cluster mode (the config has `PITBOX_NATS_URL`): connects to NATS and starts the lease
    /// keeper; nothing in single-process mode. Must run inside the actix system.
    pub async fn join_cluster(&mut self) -> anyhow::Result<()> {
        let Some(config) = self.config.cluster.clone() else { return Ok(()) };
        let cluster =
            crate::cluster::Cluster::start(config, self.db.pool(), self.system.get_ref().clone()).await?;
        self.cluster = Some(web::Data::new(cluster));
        Ok(())
    }
}

/// The Content-Security-Policy of every answer (it matters for the dashboard's pages): scripts
/// and everything else from this origin only, `'wasm-unsafe-eval'` so the browser may compile the
/// app's WebAssembly, inline styles (Yew sets `style` attributes), images also from http(s) (driver
/// avatars are URLs) and `data:` (the page's empty icon), no framing, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: https: http:; connect-src 'self'; \
     object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

fn security_headers(tls: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .add(("Referrer-Policy", "no-referrer"));
    // Served over TLS by the runtime itself: browsers should never try plain HTTP again. (Behind a
    // TLS proxy, the proxy sets this.)
    if tls {
        headers.add(("Strict-Transport-Security", "max-age=31536000"))
    } else {
        headers
    }
}

/// The request span of every log line: tracing-actix-web's fields, except that `http.target` is
/// the path alone. The query string stays out of the logs because it can carry a secret: the
/// admin stream takes its token as `?access_token=` (browsers cannot set headers on a WebSocket).
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(req: &ServiceRequest) -> tracing::Span {
        let user_agent = req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info_span!(
            "HTTP request",
            http.method = %method_label(req.method()),
            http.route = %req.match_pattern().unwrap_or_default(),
            http.target = %req.path(),
            http.client_ip = %crate::proxy::client_ip(req.request()).map(|ip| ip.to_string()).unwrap_or_default(),
            http.user_agent = %user_agent,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: tracing::Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The `method` label of request metrics: the standard methods by name, anything else as
/// `other`, so that made-up methods cannot grow the label set without bound.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

fn cors(config: &Config) -> Cors {
    let base = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([actix_web::http::header::AUTHORIZATION, actix_web::http::header::CONTENT_TYPE])
        .expose_headers([actix_web::http::header::RETRY_AFTER])
        .max_age(3600);
    if config.cors_origins.iter().any(|o| o == "*") {
        return base.allow_any_origin();
    }
    config.cors_origins.iter().fold(base, |c, o| c.allowed_origin(o))
}

/// Per-IP limit on `/api`, and request metrics by route pattern (not raw path: ids would explode
/// the label set).
async fn guard_and_measure(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    // The dashboard's files and pages are served by the default service: one label for them all.
    let route = req.match_pattern().unwrap_or_else(|| {
        if crate::dashboard::is_reserved(req.path()) { "unmatched" } else { "dashboard" }.to_owned()
    });
    let method = method_label(req.method());
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    if req.path().starts_with("/api/") {
        if let (Some(limits), Some(ip)) =
            (req.app_data::<web::Data<RateLimits>>(), crate::proxy::client_ip(req.request()))
        {
            limits.check_ip(ip)?;
        }
    }
    let res = next.call(req).await?;
    if let Some(m) = metrics {
        m.observe(method, &route, res.status().as_u16(), started.elapsed().as_secs_f64());
    }
    Ok(res)
}

/// Starts serving plain HTTP on `listener`; the returned server runs until stopped.
pub fn start(state: State, listener: TcpListener) -> std::io::Result<Server> {
    start_with(state, listener, None)
}

/// Starts serving on `listener`, over TLS with the certificate `tls` hands out when given (and
/// reloads it on SIGHUP or file change, see [`crate::tls::watch`]).
pub fn start_with(
    state: State,
    listener: TcpListener,
    tls: Option<Arc<crate::tls::CertResolver>>,
) -> std::io::Result<Server> {
    let prune = state.limits.clone();
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            prune.prune();
        }
    });
    let max_body = state.config.max_body_bytes;
    let https = tls.is_some();
    let cluster = state.cluster.clone();
    let server = HttpServer::new(move || {
        let cluster = cluster.clone();
        App::new()
            .app_data(state.db.clone())
            .app_data(state.keys.clone())
            .app_data(state.limits.clone())
            .app_data(state.metrics.clone())
            .app_data(state.system.clone())
            .app_data(state.coach_cache.clone())
            .app_data(state.tts.clone())
            .app_data(state.clips.clone())
            .app_data(web::Data::from(state.config.clone()))
            .configure(|cfg| {
                if let Some(c) = cluster {
                    cfg.app_data(c);
                }
            })
            .app_data(routes::json_config(max_body))
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(routes::path_config())
            .app_data(routes::query_config())
            .configure(routes::configure)
            .configure(crate::admin::configure)
            .route("/ws", web::get().to(crate::ws::connect))
            .default_service(web::to(crate::dashboard::serve))
            .wrap(from_fn(crate::input::reject_nul))
            .wrap(from_fn(guard_and_measure))
            .wrap(security_headers(https))
            .wrap(Compress::default())
            .wrap(cors(&state.config))
            .wrap(tracing_actix_web::TracingLogger::<RequestSpan>::new())
    })
    // Telemetry frames are small and latency matters more than packet count: no Nagle.
    .tcp_nodelay(true)
    .shutdown_timeout(10);
    let server = match tls {
        None => server.listen(listener)?,
        Some(resolver) => {
            let config = crate::tls::server_config(Arc::clone(&resolver)).map_err(std::io::Error::other)?;
            crate::tls::watch(&resolver);
            server.listen_rustls_0_23(listener, config)?
        }
    };
    Ok(server.run())
}
