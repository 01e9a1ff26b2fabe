//! Authentication and authorisation: argon2 password hashes, short-lived HS256 access tokens
//! (jsonwebtoken), rotating refresh tokens with reuse detection, and the [`AuthUser`] extractor that
//! every protected route takes. Role rules live here so routes state them in one word.
//!
//! [`Keys::authenticate`] is the one place that decides whether an access token counts, for REST,
//! telemetry, the socket and the admin stream: signature (HS256 only), issuer, expiry, and the
//! user's token generation (bumped by logout, password change and refresh-token reuse, so those end
//! every access token issued before them) and disabled flag.
//!
//! Password hashes are argon2id v19 with the argon2 crate's defaults (OWASP's minimum):
//! m = 19456 KiB, t = 2 iterations, p = 1 lane, 16-byte random salt, 32-byte output.
//! Reads no env vars (the secret and lifetimes come from the config).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, FromRequest, HttpRequest};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use base64::Engine;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use pitbox_schema::db::store::users;
use pitbox_schema::wire::{ErrorCode, Role, UserInfo};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::Db;
use crate::error::ApiError;
use crate::ratelimit::RateLimits;

const ISSUER: &str = "pitbox";

/// Access-token claims. Teams and driver id ride in the token so that authorisation needs no
/// database round trip; the short lifetime bounds how stale they can be.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub teams: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drv: Option<String>,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub jti: String,
    /// The user's token generation at issue; the token counts only while it is still current.
    #[serde(default)]
    pub gen: i64,
}

/// How long a user's token generation is trusted from memory before it is read again. Changes
/// made by this process (logout, password change) take effect at once; this bounds how late one
/// made elsewhere (`pitbox-runtime user passwd`, another node) is noticed, at one cheap primary-key
/// read per active user per period instead of one per request.
const GENERATION_TTL: Duration = Duration::from_secs(1);

#[derive(Clone, Copy)]
struct TokenState {
    generation: i64,
    disabled: bool,
    read_at: Instant,
}

/// Signing and verification keys, built once from the configured secret.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// Token generations by user id, read through from the database (see [`GENERATION_TTL`]).
    states: Arc<Mutex<HashMap<String, TokenState>>>,
    /// Counts [`Keys::forget`] calls: a read that started before one must not put what it read
    /// into the cache (it may be the generation that was just ended).
    forgotten: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Keys {
    // By hand: the keys are the JWT secret and must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .finish_non_exhaustive()
    }
}

impl Keys {
    pub fn new(secret: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            access_ttl,
            refresh_ttl,
            states: Arc::default(),
            forgotten: Arc::default(),
        }
    }

    /// A signed access token for `user` under its current token `generation`, and its lifetime in
    /// seconds.
    pub fn issue(&self, user: &UserInfo, generation: i64) -> Result<(String, u32), ApiError> {
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(self.access_ttl.as_secs()).unwrap_or(i64::MAX / 4);
        let claims = Claims {
            sub: user.id.clone(),
            name: user.username.clone(),
            role: user.role,
            teams: user.teams.clone(),
            drv: user.driver_id.clone(),
            iat: now,
            exp: now + ttl,
            iss: ISSUER.to_owned(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            gen: generation,
        };
        let token =
            encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(ApiError::internal)?;
        Ok((token, u32::try_from(ttl).unwrap_or(u32::MAX)))
    }

    /// Verifies signature, algorithm, issuer and expiry (no leeway: expired means expired). Only
    /// part of the check: [`Keys::authenticate`] is what callers use.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        // Pinned to HS256: `Validation::new` allows exactly this algorithm, so a header naming
        // `none`, RS256 or anything else is refused before the signature is looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        decode::<Claims>(token, &self.decoding, &validation).map(|d| d.claims).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized(ErrorCode::TokenExpired, "access token expired")
                }
                ErrorKind::InvalidSignature => {
                    ApiError::unauthorized(ErrorCode::TokenInvalid, "access token signature is invalid")
                }
                _ => ApiError::unauthorized(ErrorCode::TokenInvalid, "access token is malformed"),
            }
        })
    }
}

impl Keys {
    /// The whole check of an access token: [`Keys::verify`], then the user's token generation
    /// and disabled flag. Every transport authenticates through here.
    pub async fn authenticate(&self, db: &Db, token: &str) -> Result<AuthUser, ApiError> {
        let claims = self.verify(token)?;
        let state = match self.cached(&claims.sub) {
            Some(s) => Some(s),
            None => {
                let id = claims.sub.clone();
                let before = self.forgotten.load(std::sync::atomic::Ordering::SeqCst);
                let row = db.run(move |c| Ok(users::token_state(c, &id)?)).await?;
                row.map(|(generation, disabled)| {
                    let s = TokenState { generation, disabled, read_at: Instant::now() };
                    if let Ok(mut states) = self.states.lock() {
                        if self.forgotten.load(std::sync::atomic::Ordering::SeqCst) == before {
                            states.insert(claims.sub.clone(), s);
                        }
                    }
                    s
                })
            }
        };
        match state {
            Some(s) if s.generation == claims.gen && !s.disabled => Ok(AuthUser::from_claims(claims)),
            Some(s) if s.disabled => Err(ApiError::unauthorized(ErrorCode::TokenInvalid, "account disabled")),
            Some(_) => Err(ApiError::unauthorized(
                ErrorCode::TokenInvalid,
                "access token revoked (logged out or password changed); log in again",
            )),
            None => Err(ApiError::unauthorized(ErrorCode::TokenInvalid, "access token of an unknown user")),
        }
    }

    fn cached(&self, user_id: &str) -> Option<TokenState> {
        let states = self.states.lock().ok()?;
        states.get(user_id).filter(|s| s.read_at.elapsed() < GENERATION_TTL).copied()
    }

    /// Forgets what is known of `user_id`'s tokens, after this process ended them, so the next
    /// request reads the new generation.
    pub fn forget(&self, user_id: &str) {
        if let Ok(mut states) = self.states.lock() {
            self.forgotten.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            states.remove(user_id);
            // Entries of users who went quiet are dead weight: drop them while here.
            if states.len() > 4096 {
                states.retain(|_, s| s.read_at.elapsed() < GENERATION_TTL);
            }
        }
    }
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

/// A random password for generated accounts (the first admin, the demo users): 96 bits,
/// URL-safe base64, so it survives shells, JSON and URLs unquoted.
pub fn random_password() -> String {
    let mut bytes = [0u8; 12];
    rand::Rng::fill(&mut rand::rng(), &mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Checks a password against a stored PHC hash. A malformed stored hash is a plain mismatch.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// A hash of a password nobody has, verified when a username is unknown so that the answer takes
/// as long as for a wrong password (no user enumeration by timing).
pub fn dummy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$J7fgw7yxQKR4vKpwH+Hdc1QJg1vfFqBByGQGOVwFT7E"
}

/// A new refresh token (sent once to the client) and the hash that is stored.
pub fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

pub fn hash_refresh_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn validate_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < 8 {
        return Err(ApiError::invalid("password: must be at least 8 characters"));
    }
    if password.chars().count() > 256 || password.len() > 1024 {
        return Err(ApiError::invalid("password: must be at most 256 characters (1024 bytes)"));
    }
    Ok(())
}

/// The caller of a protected route, from a verified access token.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub teams: Vec<String>,
    pub driver_id: Option<String>,
}

impl AuthUser {
    pub fn from_claims(c: Claims) -> Self {
        Self { id: c.sub, username: c.name, role: c.role, teams: c.teams, driver_id: c.drv }
    }

    pub fn is_admin(&self) -> bool {
        self.role.is_admin()
    }

    /// Admins read every team; everyone else only the teams they belong to.
    pub fn can_read_team(&self, team_id: &str) -> bool {
        self.is_admin() || self.teams.iter().any(|t| t == team_id)
    }

    pub fn require_team(&self, team_id: &str) -> Result<(), ApiError> {
        if self.can_read_team(team_id) {
            Ok(())
        } else {
            Err(ApiError::forbidden("you are not a member of this team"))
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("admin role required"))
        }
    }

    /// Team staff (`Role::is_staff`: `team`, `engineer` or `admin`) of that team.
    pub fn require_staff(&self, team_id: &str) -> Result<(), ApiError> {
        self.require_team(team_id)?;
        if self.role.is_staff() {
            Ok(())
        } else {
            Err(ApiError::forbidden("team, engineer or admin role required"))
        }
    }

    /// The driver `driver_id` acting for themself, or staff of `team_id` acting for them.
    pub fn require_self_or_staff(&self, driver_id: &str, team_id: &str) -> Result<(), ApiError> {
        if self.driver_id.as_deref() == Some(driver_id) {
            Ok(())
        } else {
            self.require_staff(team_id)
        }
    }

    /// Engineers (`Role::is_engineer`) of the team, or admins.
    pub fn require_engineer(&self, team_id: &str) -> Result<(), ApiError> {
        self.require_team(team_id)?;
        self.require_engineer_role()
    }

    /// The engineer or admin role, whatever the team (the engineer view filters by team itself).
    pub fn require_engineer_role(&self) -> Result<(), ApiError> {
        if self.role.is_engineer() {
            Ok(())
        } else {
            Err(ApiError::forbidden("engineer or admin role required"))
        }
    }
}

/// Reads `Authorization: Bearer <token>`, authenticates it, and applies the per-user rate limit.
impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await })
    }
}

/// The bearer token of `Authorization`, or why there is none.
pub fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized(ErrorCode::Unauthorized, "missing Authorization header"))?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::unauthorized(ErrorCode::TokenInvalid, "Authorization header is not text"))?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(ErrorCode::Unauthorized, "Authorization must be `Bearer <token>`")
        })
}

async fn authenticate(req: &HttpRequest) -> Result<AuthUser, ApiError> {
    let keys = req
        .app_data::<web::Data<Keys>>()
        .ok_or_else(|| ApiError::internal("auth keys are not configured"))?;
    let db =
        req.app_data::<web::Data<Db>>().ok_or_else(|| ApiError::internal("database is not configured"))?;
    let token = bearer_token(req)?;
    let user = keys.authenticate(db, token).await?;
    if let Some(limits) = req.app_data::<web::Data<RateLimits>>() {
        limits.check_user(&user.id)?;
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserInfo {
        UserInfo {
            id: "u1".into(),
            username: "max".into(),
            role: Role::Driver,
            teams: vec!["t1".into()],
            driver_id: Some("d1".into()),
        }
    }

    #[test]
    fn tokens_round_trip() {
        let keys =
            Keys::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60), Duration::from_secs(60));
        let (token, ttl) = keys.issue(&user(), 0).unwrap();
        assert_eq!(ttl, 60);
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.sub, "u1");
        assert_eq!(claims.drv.as_deref(), Some("d1"));
    }

    #[test]
    fn forged_tokens_are_rejected() {
        let keys =
            Keys::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60), Duration::from_secs(60));
        let other =
            Keys::new(b"ffffffffffffffffffffffffffffffff", Duration::from_secs(60), Duration::from_secs(60));
        let (token, _) = other.issue(&user(), 0).unwrap();
        assert_eq!(keys.verify(&token).unwrap_err().code, ErrorCode::TokenInvalid);
    }

    #[test]
    fn passwords_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(!verify_password("x", dummy_hash()));
        // The stand-in hash must parse, or unknown users would be answered faster than known ones.
        assert!(PasswordHash::new(dummy_hash()).is_ok());
    }
}
