//! Optional natural-language phrasing of the coaching engine's findings by a language model behind an
//! OpenAI-compatible chat-completions API (OpenAI, DigitalOcean's serverless inference, a local
//! server). The engine's text is the truth: the model may only rephrase it, every number and corner
//! name must come back unchanged ([`numbers::check`]), and on any failure — not configured, budget
//! spent, timeout, HTTP error, a stream cut half-way, a reply that changed a number — the caller gets
//! the engine's own text. [`Phraser::phrase`] never fails.
//!
//! Settings come from [`crate::config`] (flag, env var or TOML key): `PITBOX_LLM_BASE_URL` (off when
//! unset), `PITBOX_LLM_API_KEY`, `PITBOX_LLM_MODEL`, `PITBOX_LLM_TIMEOUT_SECS`,
//! `PITBOX_LLM_TOKEN_BUDGET`. This module reads no env var itself.
//!
//! HTTP goes through awc; `https://` base URLs use rustls 0.23 with the *ring* provider passed to the
//! config directly (no process-wide provider to install, so nothing can panic over a missing one) and
//! Mozilla's root certificates compiled in. awc's client is tied to the current thread, so the
//! future returned by [`Phraser::phrase`] is not `Send`: run it on the actix arbiter of the actor that
//! asks (`ctx.spawn(fut.into_actor(self))` or `actix::spawn`). [`Phraser`] itself is `Send + Sync`
//! and cheap to clone. Each phrasing opens its own connection: at one call per lap, an idle pooled
//! connection would have expired anyway.
//!
//! The coach should depend on the [`Phrasing`] trait, so that its tests can stand in a phraser of
//! their own; [`Phraser::off`] is the offline default (the engine's text, always).

pub mod numbers;
pub mod sse;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use actix_web::http::header::HttpDate;
use actix_web::http::StatusCode;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

pub use numbers::NumberMismatch;

/// Defaults for the settings that are not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// Tokens one driver session may spend: about a race of 40 laps with one phrasing per lap.
pub const DEFAULT_TOKEN_BUDGET: u64 = 20_000;

/// The longest reply accepted, in bytes of body: a coaching tip is a few sentences, and a server that
/// sends more is misbehaving.
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// What the model is told. The numbers rule is repeated in several forms because models follow
/// concrete instructions better than abstract ones; the check after the reply enforces it anyway.
const SYSTEM_PROMPT: &str = "You are a race engineer talking to your driver over the radio. Rewrite the \
coaching findings you are given as short, natural spoken sentences. Rules: copy every number exactly as \
written, digit for digit, with its minus sign and unit (write -0.21 s, never 0.2 or two tenths); never add \
a number that is not in the findings; keep corner names such as T3 as written; do not add advice that is \
not in the findings. Reply with the rewritten text only.";

/// The LLM client's settings, resolved by [`crate::config`]. `Debug` never shows the key.
#[derive(Clone)]
pub struct LlmConfig {
    /// Up to and including the API version, e.g. `https://api.openai.com/v1`; `/chat/completions`
    /// is appended.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …`; none for local servers that need none.
    pub api_key: Option<Secret<String>>,
    pub model: String,
    /// The whole phrasing, retries and waits included, must end within this.
    pub timeout: Duration,
    /// TCP connect plus TLS handshake of one attempt.
    pub connect_timeout: Duration,
    /// Tokens one session may spend (prompt and reply).
    pub token_budget: u64,
    /// Server-sent events (`stream: true`) or one JSON reply.
    pub stream: bool,
    /// Upper bound of `max_tokens` asked for one reply.
    pub max_reply_tokens: u64,
    pub temperature: f32,
    /// Retries after the first attempt (429, 5xx, network errors).
    pub max_retries: u32,
    /// First backoff delay; doubled per retry, with jitter.
    pub backoff_base: Duration,
}

impl LlmConfig {
    /// A configuration with the defaults for everything but the endpoint and model.
    pub fn new(base_url: impl Into<String>, api_key: Option<String>, model: impl Into<String>) -> LlmConfig {
        LlmConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key: api_key.map(Secret::new),
            model: model.into(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: Duration::from_secs(5),
            token_budget: DEFAULT_TOKEN_BUDGET,
            stream: true,
            max_reply_tokens: 300,
            temperature: 0.3,
            max_retries: 3,
            backoff_base: Duration::from_millis(500),
        }
    }

    fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }
}

impl std::fmt::Debug for LlmConfig {
    // By hand for the base URL's password (the key is a `Secret`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &crate::secret::redact_url(&self.base_url))
            .field("api_key", &self.api_key)
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("token_budget", &self.token_budget)
            .field("stream", &self.stream)
            .field("max_reply_tokens", &self.max_reply_tokens)
            .field("temperature", &self.temperature)
            .field("max_retries", &self.max_retries)
            .field("backoff_base", &self.backoff_base)
            .finish()
    }
}

/// Who wrote the text of a [`Phrased`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Llm,
    Engine,
}

/// Why the engine's own text was used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    #[error("no language model is configured")]
    Disabled,
    #[error("nothing to phrase")]
    Empty,
    #[error("the session's token budget is spent ({spent} of {budget})")]
    BudgetSpent { spent: u64, budget: u64 },
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("HTTP {status}: {message} (type {kind:?}, code {code:?})")]
    Status { status: u16, message: String, kind: Option<String>, code: Option<String> },
    #[error("network: {0}")]
    Network(String),
    #[error("the stream ended before the reply was complete")]
    StreamCut,
    #[error("malformed reply: {0}")]
    BadReply(String),
    #[error("the reply changed the findings' numbers: {0}")]
    NumbersChanged(NumberMismatch),
    #[error("TLS set-up: {0}")]
    Tls(String),
}

impl LlmError {
    /// 429, 5xx and network failures may pass; 4xx (bad request, key, model) will not.
    fn retryable(&self) -> bool {
        match self {
            LlmError::Status { status, .. } => *status == 429 || *status >= 500,
            LlmError::Network(_) => true,
            _ => false,
        }
    }
}

/// The text to show or speak, who wrote it, and why the engine's text was used when it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Phrased {
    pub text: String,
    pub source: Source,
    pub reason: Option<LlmError>,
}

impl Phrased {
    fn engine(text: &str, reason: LlmError) -> Phrased {
        Phrased { text: text.to_owned(), source: Source::Engine, reason: Some(reason) }
    }
}

/// Tokens per session: spent (reported `usage`, or ~4 characters per token) and held for calls in
/// flight, so that two concurrent calls cannot both spend the last of a budget.
#[derive(Debug, Default, Clone, Copy)]
struct Budget {
    spent: u64,
    reserved: u64,
}

struct Inner {
    config: LlmConfig,
    tls: Arc<rustls::ClientConfig>,
    budgets: Mutex<HashMap<String, Budget>>,
}

/// Phrases findings through the configured model; cheap to clone (clones share the budgets).
#[derive(Clone)]
pub struct Phraser {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Phraser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phraser").field("config", &self.inner.as_ref().map(|i| &i.config)).finish()
    }
}

/// Roughly four characters per token for English text: the estimate when the server reports no
/// `usage`.
pub fn estimate_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

impl Phraser {
    /// `None` gives a phraser that always returns the engine's text.
    pub fn new(config: Option<LlmConfig>) -> Result<Phraser, LlmError> {
        let Some(config) = config else { return Ok(Phraser::off()) };
        Ok(Phraser { inner: Some(Arc::new(Inner { config, tls: tls_config()?, budgets: Mutex::default() })) })
    }

    /// With a TLS configuration of the caller's (a private CA, client certificates); the tests use it
    /// to trust their stand-in's certificate.
    pub fn with_tls(config: LlmConfig, tls: Arc<rustls::ClientConfig>) -> Phraser {
        Phraser { inner: Some(Arc::new(Inner { config, tls, budgets: Mutex::default() })) }
    }

    pub fn off() -> Phraser {
        Phraser { inner: None }
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Tokens counted for `session_id` so far.
    pub fn spent(&self, session_id: &str) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.budgets().get(session_id).map_or(0, |b| b.spent))
    }

    /// Forgets a finished session's budget.
    pub fn end_session(&self, session_id: &str) {
        if let Some(inner) = &self.inner {
            inner.budgets().remove(session_id);
        }
    }

    /// The findings rewritten by the model, or the findings themselves (with the reason) when the
    /// model is off, out of budget, failing, slow, or changed a number.
    pub async fn phrase(&self, findings: &str, session_id: &str) -> Phrased {
        let Some(inner) = &self.inner else { return Phrased::engine(findings, LlmError::Disabled) };
        if findings.trim().is_empty() {
            return Phrased::engine(findings, LlmError::Empty);
        }
        let prompt_tokens = estimate_tokens(SYSTEM_PROMPT.len() + findings.len()) + 8;
        let Some(max_tokens) = inner.reserve(session_id, prompt_tokens) else {
            let spent = inner.budgets().get(session_id).map_or(0, |b| b.spent);
            return Phrased::engine(
                findings,
                LlmError::BudgetSpent { spent, budget: inner.config.token_budget },
            );
        };
        // Settled on drop, so that a phrasing abandoned mid-flight (its actor stopped) releases its
        // reservation; it then counts the prompt, as the request may have reached the server.
        let mut reservation =
            Reservation { inner, session_id, reserved: prompt_tokens + max_tokens, used: prompt_tokens };
        let (result, used) = inner.call(findings, max_tokens, prompt_tokens).await;
        reservation.used = used;
        drop(reservation);
        let result = result.and_then(|text| {
            numbers::check(findings, &text).map_err(LlmError::NumbersChanged)?;
            Ok(text)
        });
        match result {
            Ok(text) => Phrased { text, source: Source::Llm, reason: None },
            Err(reason) => {
                // A refused key, model or URL will fail every time: say so louder than a hiccup.
                if matches!(reason, LlmError::Status { status: 400..=499, .. }) && !reason.retryable() {
                    tracing::warn!(session = session_id, %reason, "LLM phrasing refused; check PITBOX_LLM_*");
                } else {
                    tracing::info!(session = session_id, %reason, "LLM phrasing not used; engine text instead");
                }
                Phrased::engine(findings, reason)
            }
        }
    }
}

/// Tokens held for one call in flight; see [`Inner::reserve`].
struct Reservation<'a> {
    inner: &'a Inner,
    session_id: &'a str,
    reserved: u64,
    used: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.inner.settle(self.session_id, self.reserved, self.used);
    }
}

/// What the coach needs from a phraser: the findings, rephrased or not, never an error.
pub trait Phrasing {
    /// See [`Phraser::phrase`].
    fn phrase<'a>(
        &'a self,
        findings: &'a str,
        session_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Phrased> + 'a>>;
}

impl Phrasing for Phraser {
    fn phrase<'a>(
        &'a self,
        findings: &'a str,
        session_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Phrased> + 'a>> {
        Box::pin(Phraser::phrase(self, findings, session_id))
    }
}

/// Builds the TLS client configuration once per phraser.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, LlmError> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LlmError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // HTTP/1.1 only: streamed replies are one long response either way, and it keeps one code path.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: [Message<'a>; 2],
    stream: bool,
    max_tokens: u64,
    temperature: f32,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'a str,
    content: &'a str,
}

/// `{"error": {"message", "type", "code"}}`, as OpenAI documents it; `code` is a string, a number or
/// null depending on the server.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    total_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<ErrorDetail>,
}

#[derive(Deserialize)]
struct Choice {
    /// Non-streamed replies.
    #[serde(default)]
    message: Option<Content>,
    /// Streamed chunks.
    #[serde(default)]
    delta: Option<Content>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    content: Option<String>,
}

/// A reply read whole: its text, and the tokens the server says it cost.
struct Reply {
    text: String,
    total_tokens: Option<u64>,
}

impl Inner {
    fn budgets(&self) -> std::sync::MutexGuard<'_, HashMap<String, Budget>> {
        // A panic while holding this lock leaves plain counters behind, still usable.
        self.budgets.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds the prompt and the largest reply against the session's budget; returns the reply's
    /// `max_tokens`, or `None` when not even a short reply fits.
    fn reserve(&self, session_id: &str, prompt_tokens: u64) -> Option<u64> {
        let mut budgets = self.budgets();
        let budget = budgets.entry(session_id.to_owned()).or_default();
        let left = self.config.token_budget.checked_sub(budget.spent + budget.reserved)?;
        let max_tokens = left.checked_sub(prompt_tokens)?.min(self.config.max_reply_tokens);
        // A reply shorter than this cannot carry a tip; better not to pay for the prompt.
        if max_tokens < 16 {
            return None;
        }
        budget.reserved += prompt_tokens + max_tokens;
        Some(max_tokens)
    }

    fn settle(&self, session_id: &str, reserved: u64, used: u64) {
        let mut budgets = self.budgets();
        let budget = budgets.entry(session_id.to_owned()).or_default();
        budget.reserved = budget.reserved.saturating_sub(reserved);
        budget.spent += used;
    }

    /// Asks the model, retrying what may pass, all within the configured timeout. Returns the reply
    /// text and the tokens spent (reported or estimated; nothing for requests the server refused).
    async fn call(
        &self,
        findings: &str,
        max_tokens: u64,
        prompt_tokens: u64,
    ) -> (Result<String, LlmError>, u64) {
        let config = &self.config;
        let deadline = Instant::now() + config.timeout;
        let client = awc::Client::builder()
            .connector(
                awc::Connector::new()
                    .timeout(config.connect_timeout.min(config.timeout))
                    .rustls_0_23(Arc::clone(&self.tls)),
            )
            // The deadline below bounds every attempt; awc's own timeout is only a backstop, later
            // than the deadline so that a slow server reads as a timeout, not a network error.
            .timeout(config.timeout + Duration::from_secs(1))
            .finish();
        let request = ChatRequest {
            model: &config.model,
            messages: [
                Message { role: "system", content: SYSTEM_PROMPT },
                Message { role: "user", content: findings },
            ],
            stream: config.stream,
            max_tokens,
            temperature: config.temperature,
        };
        let mut used = 0;
        let mut attempt = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut received = 0usize;
            let outcome =
                match tokio::time::timeout(left, self.attempt(&client, &request, &mut received)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(Attempt::Failed(LlmError::Timeout(config.timeout))),
                };
            // Whatever the server produced was paid for, even when it is not used.
            match &outcome {
                Ok(Reply { total_tokens: Some(total), .. }) => used += total,
                Ok(_) => used += prompt_tokens + estimate_tokens(received),
                Err(_) if received > 0 => used += prompt_tokens + estimate_tokens(received),
                Err(_) => {}
            }
            let (error, retry_after) = match outcome {
                Ok(reply) => {
                    let text = reply.text.trim();
                    if text.is_empty() {
                        return (Err(LlmError::BadReply("empty reply".into())), used);
                    }
                    return (Ok(text.to_owned()), used);
                }
                Err(Attempt::Failed(error)) => (error, None),
                Err(Attempt::Refused(error, retry_after)) => (error, retry_after),
            };
            if !error.retryable() || attempt >= config.max_retries {
                return (Err(error), used);
            }
            let wait = retry_after.unwrap_or_else(|| backoff(config.backoff_base, attempt));
            if Instant::now() + wait >= deadline {
                // Waiting would outlast the deadline: give up now rather than at the deadline.
                return (Err(error), used);
            }
            tracing::debug!(attempt, ?wait, %error, "LLM call failed; retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One request. `received` counts reply characters as they arrive, for the budget.
    async fn attempt(
        &self,
        client: &awc::Client,
        request: &ChatRequest<'_>,
        received: &mut usize,
    ) -> Result<Reply, Attempt> {
        let mut builder = client
            .post(self.config.endpoint())
            .insert_header(("Accept", if request.stream { "text/event-stream" } else { "application/json" }));
        if let Some(key) = &self.config.api_key {
            builder = builder.bearer_auth(key.expose());
        }
        let mut response = builder.send_json(request).await.map_err(|e| {
            Attempt::Failed(match e {
                awc::error::SendRequestError::Timeout => LlmError::Timeout(self.config.timeout),
                e => LlmError::Network(e.to_string()),
            })
        })?;
        let status = response.status();
        if !status.is_success() {
            let retry_after =
                response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(retry_after);
            let body = response.body().limit(MAX_REPLY_BYTES).await.unwrap_or_default();
            return Err(Attempt::Refused(status_error(status, &body), retry_after));
        }
        let streamed = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !streamed {
            let body = response
                .body()
                .limit(MAX_REPLY_BYTES)
                .await
                .map_err(|e| Attempt::Failed(LlmError::Network(e.to_string())))?;
            let completion: Completion = serde_json::from_slice(&body)
                .map_err(|e| Attempt::Failed(LlmError::BadReply(e.to_string())))?;
            if let Some(error) = completion.error {
                return Err(Attempt::Failed(detail_error(status, error)));
            }
            let total_tokens = completion.usage.and_then(|u| u.total_tokens);
            let choice = completion.choices.into_iter().next();
            let finish = choice.as_ref().and_then(|c| c.finish_reason.clone());
            let text = choice
                .and_then(|c| c.message)
                .and_then(|m| m.content)
                .ok_or_else(|| Attempt::Failed(LlmError::BadReply("no choices[0].message.content".into())))?;
            *received = text.chars().count();
            return complete(text, total_tokens, finish.as_deref());
        }
        let mut parser = sse::SseParser::new();
        let mut text = String::new();
        let mut total_tokens = None;
        let mut finish: Option<String> = None;
        let mut bytes = 0usize;
        while let Some(chunk) = response.next().await {
            // A connection that breaks mid-reply is a cut stream: what came so far is not a reply.
            let chunk = chunk.map_err(|_| Attempt::Failed(LlmError::StreamCut))?;
            bytes += chunk.len();
            if bytes > MAX_REPLY_BYTES {
                return Err(Attempt::Failed(LlmError::BadReply(format!(
                    "reply over {MAX_REPLY_BYTES} bytes"
                ))));
            }
            for data in parser.push(&chunk) {
                if data.trim() == "[DONE]" {
                    return complete(text, total_tokens, finish.as_deref());
                }
                let event: Completion = serde_json::from_str(&data)
                    .map_err(|e| Attempt::Failed(LlmError::BadReply(format!("event {data:?}: {e}"))))?;
                if let Some(error) = event.error {
                    return Err(Attempt::Failed(detail_error(status, error)));
                }
                if let Some(usage) = event.usage.and_then(|u| u.total_tokens) {
                    total_tokens = Some(usage);
                }
                for choice in event.choices {
                    if let Some(piece) = choice.delta.and_then(|d| d.content) {
                        *received += piece.chars().count();
                        text.push_str(&piece);
                    }
                    if choice.finish_reason.is_some() {
                        finish = choice.finish_reason;
                    }
                }
            }
        }
        // Some compatible servers end with a `finish_reason` and no `[DONE]`; a stream that has
        // neither was cut.
        if finish.is_some() && !parser.has_partial() {
            complete(text, total_tokens, finish.as_deref())
        } else {
            Err(Attempt::Failed(LlmError::StreamCut))
        }
    }
}

/// A whole reply, unless the model stopped because it ran out of `max_tokens`: the end of the tip is
/// missing then, and with it perhaps a number.
fn complete(text: String, total_tokens: Option<u64>, finish: Option<&str>) -> Result<Reply, Attempt> {
    if finish == Some("length") {
        return Err(Attempt::Failed(LlmError::BadReply("cut short at max_tokens".into())));
    }
    Ok(Reply { text, total_tokens })
}

/// How one attempt failed: refused by the server (with its `Retry-After`), or anything else.
enum Attempt {
    Refused(LlmError, Option<Duration>),
    Failed(LlmError),
}

fn status_error(status: StatusCode, body: &[u8]) -> LlmError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => detail_error(status, error),
        Err(_) => LlmError::Status {
            status: status.as_u16(),
            message: String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_owned(),
            kind: None,
            code: None,
        },
    }
}

fn detail_error(status: StatusCode, error: ErrorDetail) -> LlmError {
    LlmError::Status {
        status: status.as_u16(),
        message: error.message.unwrap_or_default(),
        kind: error.kind,
        code: error.code.filter(|c| !c.is_null()).map(|c| match c {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        }),
    }
}

/// `Retry-After`: delay seconds (fractions accepted, as some APIs send them) or an HTTP date.
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let at: SystemTime = value.parse::<HttpDate>().ok()?.into();
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// `base × 2^attempt`, scaled by a random factor in [0.5, 1) so that clients that failed together do
/// not retry together.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempt.min(16)));
    exp.mul_f64(rand::random_range(0.5..1.0))
}

/// The coach actors' phraser: `None` when no LLM is configured (the coach then sends the engine's
/// text without waiting for anything).
pub fn coach_phrasing(
    config: Option<LlmConfig>,
) -> Result<Option<Arc<dyn pitbox_actors::coach::Phrasing>>, LlmError> {
    let Some(config) = config else { return Ok(None) };
    Ok(Some(Arc::new(Phraser::new(Some(config))?)))
}

impl pitbox_actors::coach::Phrasing for Phraser {
    fn phrase(&self, text: String, session_id: String) -> Pin<Box<dyn Future<Output = String>>> {
        let me = self.clone();
        Box::pin(async move { Phraser::phrase(&me, &text, &session_id).await.text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(retry_after("-1"), None);
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO), "a past date: now");
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        let base = Duration::from_millis(100);
        for attempt in 0..4 {
            let d = backoff(base, attempt);
            let full = base * 2u32.pow(attempt);
            assert!(d >= full / 2 && d < full, "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn errors_that_are_retried() {
        let status = |s: u16| LlmError::Status { status: s, message: String::new(), kind: None, code: None };
        assert!(status(429).retryable() && status(500).retryable() && status(503).retryable());
        assert!(!status(400).retryable() && !status(401).retryable() && !status(403).retryable());
        assert!(!status(404).retryable() && !LlmError::StreamCut.retryable());
        assert!(LlmError::Network("reset".into()).retryable());
    }

    #[test]
    fn documented_error_body_is_surfaced() {
        let body = br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#;
        let e = status_error(StatusCode::UNAUTHORIZED, body);
        assert_eq!(
            e,
            LlmError::Status {
                status: 401,
                message: "Incorrect API key provided".into(),
                kind: Some("invalid_request_error".into()),
                code: Some("invalid_api_key".into()),
            }
        );
        let e = status_error(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert!(
            matches!(e, LlmError::Status { status: 502, ref message, .. } if message.contains("bad gateway"))
        );
    }

    #[test]
    fn the_key_is_never_in_debug() {
        let config = LlmConfig::new("https://api.example.com/v1/", Some("sk-secret-123".into()), "m");
        let shown = format!("{config:?} {:?}", Phraser::new(Some(config.clone())).ok());
        assert!(!shown.contains("sk-secret-123"), "{shown}");
        assert_eq!(config.endpoint(), "https://api.example.com/v1/chat/completions");
    }

    #[test]
    fn a_phraser_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<Phraser>();
        let _: &dyn Phrasing = &Phraser::off();
    }

    #[test]
    fn budget_reservations() {
        let Ok(phraser) =
            Phraser::new(Some(LlmConfig { token_budget: 500, ..LlmConfig::new("http://x", None, "m") }))
        else {
            panic!("TLS config")
        };
        let Some(inner) = &phraser.inner else { panic!("enabled") };
        assert_eq!(inner.reserve("s", 100), Some(300));
        assert_eq!(inner.reserve("s", 100), None, "100 left after the first reservation; nothing fits");
        inner.settle("s", 400, 150);
        assert_eq!(phraser.spent("s"), 150);
        assert_eq!(inner.reserve("s", 100), Some(250));
        assert_eq!(inner.reserve("other", 100), Some(300), "budgets are per session");
        phraser.end_session("s");
        assert_eq!(phraser.spent("s"), 0);
    }
}
