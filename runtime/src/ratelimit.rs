//! API rate limits (governor's GCRA): per client IP on every `/api` request, stricter per IP on
//! login, and per user once the token is verified. A refused request gets `429` with
//! `Retry-After`. Limits come from the config (`PITBOX_RATE_LIMIT_*`).

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Config;
use crate::error::ApiError;

pub struct RateLimits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_user: DefaultKeyedRateLimiter<String>,
    login: DefaultKeyedRateLimiter<IpAddr>,
}

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
}

impl RateLimits {
    pub fn new(config: &Config) -> Self {
        let per_second = |rate: u32| Quota::per_second(nz(rate)).allow_burst(nz(rate.saturating_mul(2)));
        Self {
            per_ip: RateLimiter::keyed(per_second(config.rate_limit_per_ip)),
            per_user: RateLimiter::keyed(per_second(config.rate_limit_per_user)),
            login: RateLimiter::keyed(
                Quota::per_minute(nz(config.rate_limit_login)).allow_burst(nz(config.rate_limit_login)),
            ),
        }
    }

    fn check<K: Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>, key: &K) -> Result<(), ApiError> {
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            // Round up: a client that waits the advertised seconds must get through.
            ApiError::too_many(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        })
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        Self::check(&self.per_ip, &ip)
    }

    pub fn check_login(&self, ip: IpAddr) -> Result<(), ApiError> {
        Self::check(&self.login, &ip)
    }

    pub fn check_user(&self, user_id: &str) -> Result<(), ApiError> {
        Self::check(&self.per_user, &user_id.to_owned())
    }

    /// Forgets keys whose buckets are full again, so the maps do not grow without bound.
    pub fn prune(&self) {
        self.per_ip.retain_recent();
        self.per_user.retain_recent();
        self.login.retain_recent();
    }
}
