//! A dashboard's telemetry feeds: its subscriptions, one feed per driver each, and when a feed may
//! push. [`Feeds`] is a plain struct that says what to do (arm a wait, push now, wait so long,
//! send these samples); the thin `WsSession` glue below does it with the socket's context. Samples
//! are pushed as they change, at most once per period per driver (latest-wins: what changed
//! meanwhile is merged, a slow reader skips samples and never queues them). Reads no env vars.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web_actors::ws;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use pitbox_actors::driver_session::{Latest, LiveSample};
use pitbox_actors::team_hub::{Push, Subscribe as HubSubscribe, Unsubscribe as HubUnsubscribe};
use pitbox_schema::db::store::teams;
use pitbox_schema::wire::{Envelope, Message as Wire, Subscribe, Subscribed};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::watch;

use super::WsSession;
use crate::error::{ApiError, Found};
use crate::routes::scope::{Member, TeamScope};

/// A subscription's key: (team, driver of a focused view).
pub(super) type SubKey = (String, Option<String>);

/// One driver's samples as one subscription sees them.
struct Feed {
    rx: watch::Receiver<Latest>,
    /// The last sample sent (its `n`).
    sent: u64,
    /// The subscription's rate for this driver: a token bucket (governor's GCRA) with a burst of
    /// two, so a sample that arrives a little early after a late one goes out at once. A timer at
    /// the drivers' own interval put a 0–17 ms floor under the latency and skipped samples at 60 Hz.
    limit: DefaultDirectRateLimiter,
    /// A wait for the next change (or for the rate limit) is pending.
    armed: bool,
}

impl Feed {
    fn new(mut rx: watch::Receiver<Latest>, period: Duration) -> Self {
        rx.mark_changed();
        let burst = NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst);
        Self { rx, sent: 0, limit: RateLimiter::direct(quota), armed: false }
    }

    /// How long until this feed may push again; zero (and the push counted) when it may now.
    fn wait(&self) -> Duration {
        match self.limit.check() {
            Ok(()) => Duration::ZERO,
            Err(not_until) => not_until.wait_time_from(DefaultClock::default().now()),
        }
    }
}

/// One dashboard subscription: the team view, or one driver's full-rate stream.
struct Sub {
    full_rate: bool,
    /// Made at authentication (not asked for); the client's first `subscribe` replaces it.
    default: bool,
    period: Duration,
    /// Tells callbacks of an earlier subscription (same key) to stand down.
    generation: u64,
    feeds: BTreeMap<String, Feed>,
}

/// A feed now waiting for its driver's next change: wait on `rx`, then tell [`Feeds::changed`]
/// with this `generation`.
pub(super) struct Armed {
    pub generation: u64,
    pub rx: watch::Receiver<Latest>,
}

/// What to do once a feed's driver has a new sample.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Nothing: the subscription was replaced or dropped, or the driver's session ended.
    Idle,
    /// Push now ([`Feeds::take`]), then arm again.
    PushNow,
    /// The rate allows the next push after this wait; then ask [`Feeds::due`].
    WaitFor(Duration),
}

/// Samples to send for one feed: those of `batch` at `picks`, in order.
pub(super) struct Outgoing {
    batch: Arc<Vec<LiveSample>>,
    picks: Vec<usize>,
}

impl Outgoing {
    pub fn samples(&self) -> impl Iterator<Item = &LiveSample> {
        self.picks.iter().filter_map(|&i| self.batch.get(i))
    }
}

/// A dashboard connection's subscriptions by (team, driver).
pub(super) struct Feeds {
    subs: BTreeMap<SubKey, Sub>,
    generations: u64,
    /// Configured rates of the team view and of a driver's stream (`PITBOX_TEAM_RATE_HZ`,
    /// `PITBOX_DRIVER_RATE_HZ`, read by the config).
    team_rate: u16,
    driver_rate: u16,
}

impl Feeds {
    pub fn new(team_rate: u16, driver_rate: u16) -> Self {
        Self { subs: BTreeMap::new(), generations: 0, team_rate, driver_rate }
    }

    /// The rate a `subscribe` gets: the one asked for, else the view's default, within 1 Hz and
    /// the highest configured rate.
    pub fn rate(&self, s: &Subscribe) -> u16 {
        let wanted = if s.driver_id.is_some() { self.driver_rate } else { self.team_rate };
        s.rate_hz.unwrap_or(wanted).clamp(1, self.driver_rate.max(self.team_rate))
    }

    /// Puts a subscription in place (replacing one with the same key, whose callbacks then stand
    /// down) with a feed for each of `drivers` it covers; returns those drivers, to arm.
    pub fn subscribe(
        &mut self,
        key: SubKey,
        default: bool,
        rate: u16,
        drivers: Vec<(String, watch::Receiver<Latest>)>,
    ) -> Vec<String> {
        let period = Duration::from_secs_f64(1.0 / f64::from(rate));
        let mut feeds = BTreeMap::new();
        for (driver, rx) in drivers {
            if key.1.as_ref().is_none_or(|d| *d == driver) {
                feeds.insert(driver, Feed::new(rx, period));
            }
        }
        self.generations += 1;
        let fed: Vec<String> = feeds.keys().cloned().collect();
        let sub = Sub { full_rate: key.1.is_some(), default, period, generation: self.generations, feeds };
        self.subs.insert(key, sub);
        fed
    }

    /// Drops one subscription; true when no other subscription of its team is left.
    pub fn unsubscribe(&mut self, key: &SubKey) -> bool {
        self.subs.remove(key);
        !self.follows(&key.0)
    }

    /// The client said what it wants: the subscriptions made for it at authentication go.
    /// Returns the teams no longer followed, but for `keep` (the team being subscribed to).
    pub fn drop_defaults(&mut self, keep: &str) -> Vec<String> {
        let before: Vec<String> = self.subs.keys().map(|(t, _)| t.clone()).collect();
        self.subs.retain(|_, sub| !sub.default);
        before.into_iter().filter(|team| team != keep && !self.follows(team)).collect()
    }

    fn follows(&self, team: &str) -> bool {
        self.subs.keys().any(|(t, _)| t == team)
    }

    /// A driver of a followed team appeared: each subscription that covers it and has no live
    /// feed for it (none, or one whose session ended for good) feeds from `rx` now. Returns those
    /// subscriptions, to arm.
    pub fn driver_joined(&mut self, driver: &str, rx: &watch::Receiver<Latest>) -> Vec<SubKey> {
        let mut arm = vec![];
        for (key, sub) in self.subs.iter_mut() {
            let wanted = key.1.as_deref().is_none_or(|d| d == driver);
            let stale = sub.feeds.get(driver).is_none_or(|f| f.rx.has_changed().is_err());
            if wanted && stale {
                sub.feeds.insert(driver.to_owned(), Feed::new(rx.clone(), sub.period));
                arm.push(key.clone());
            }
        }
        arm
    }

    /// Starts waiting for the driver's next change, unless a wait is pending already.
    pub fn arm(&mut self, key: &SubKey, driver: &str) -> Option<Armed> {
        let sub = self.subs.get_mut(key)?;
        let generation = sub.generation;
        let feed = sub.feeds.get_mut(driver)?;
        if feed.armed {
            return None;
        }
        feed.armed = true;
        Some(Armed { generation, rx: feed.rx.clone() })
    }

    /// The wait armed for generation `generation` ended: a new sample (`alive`), or the driver's
    /// session is gone for good (a new one arrives as [`Feeds::driver_joined`]).
    pub fn changed(&mut self, key: &SubKey, driver: &str, generation: u64, alive: bool) -> Next {
        let Some(feed) = self.feed(key, driver, generation) else { return Next::Idle };
        if !alive {
            feed.armed = false;
            return Next::Idle;
        }
        let wait = feed.wait();
        if wait.is_zero() {
            feed.armed = false;
            Next::PushNow
        } else {
            Next::WaitFor(wait)
        }
    }

    /// The wait of [`Next::WaitFor`] is over: true when the feed is still there to push (then
    /// push it and arm again).
    pub fn due(&mut self, key: &SubKey, driver: &str, generation: u64) -> bool {
        let Some(feed) = self.feed(key, driver, generation) else { return false };
        feed.armed = false;
        // The token this push spends has come by now (the timer only ends late).
        let _ = feed.limit.check();
        true
    }

    fn feed(&mut self, key: &SubKey, driver: &str, generation: u64) -> Option<&mut Feed> {
        self.subs.get_mut(key).filter(|s| s.generation == generation)?.feeds.get_mut(driver)
    }

    /// What changed since the last push: the newest sample (team view) or every sample of the
    /// latest batch not sent yet (focused view). Counted as sent.
    pub fn take(&mut self, key: &SubKey, driver: &str) -> Option<Outgoing> {
        let sub = self.subs.get_mut(key)?;
        let full_rate = sub.full_rate;
        let feed = sub.feeds.get_mut(driver)?;
        let batch = feed.rx.borrow_and_update().clone()?;
        let sent = feed.sent;
        let fresh = batch.iter().enumerate().filter(|(_, l)| l.n > sent).map(|(i, _)| i);
        let picks: Vec<usize> = if full_rate { fresh.collect() } else { fresh.last().into_iter().collect() };
        if picks.is_empty() {
            return None;
        }
        feed.sent = batch.last().map_or(sent, |l| l.n.max(sent));
        Some(Outgoing { batch, picks })
    }
}

/// `{"type": "telemetry_update", "data": <shared JSON>, "from": …, "seq": …}` without
/// re-serialising the sample for every subscriber.
#[derive(Serialize)]
struct SharedPush<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    data: &'a RawValue,
    from: &'a str,
    seq: u64,
}

/// The socket's side of the feeds: hub subscriptions, timers and pushes.
impl WsSession {
    /// Subscribes as asked, or (`default`) to a team's view at authentication: that one is not
    /// answered, and holds the connection's other messages until it is in place, so a `subscribe`
    /// that follows at once finds it there to replace.
    pub(super) fn subscribe(
        &mut self,
        s: Subscribe,
        id: Option<String>,
        default: bool,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let Some(user) = &self.user else { return };
        if let Err(e) = TeamScope::<Member>::new(user.clone(), s.team_id.clone()) {
            return self.api_error(ctx, e, id);
        }
        if !default {
            for team in self.feeds.drop_defaults(&s.team_id) {
                self.unfollow(&team);
            }
        }
        let rate = self.feeds.rate(&s);
        let (system, db, team) = (self.system.clone(), self.db.clone(), s.team_id.clone());
        let me = ctx.address().recipient::<Push>();
        let conn_id = self.id;
        let known = self.hubs.get(&s.team_id).cloned();
        let cluster = self.cluster.clone();
        let fut = async move {
            let lookup = team.clone();
            db.run(move |c| teams::get_team(c, &lookup).found("team", &lookup)).await?;
            let hub = match known {
                Some(h) => h,
                None => system.hub(&team).await.map_err(|e| ApiError::unavailable(e.to_string()))?,
            };
            // Cluster mode: unless this node owns the team, its owner's feed is mirrored into
            // this hub, where the feeds below apply the same rules.
            if let Some(c) = &cluster {
                c.follow(&team);
            }
            let drivers = hub
                .send(HubSubscribe { id: conn_id, events: me.into() })
                .await
                .map_err(|e| ApiError::unavailable(e.to_string()))?;
            Ok::<_, ApiError>((hub, drivers))
        };
        let done = fut.into_actor(self).map(move |r, act, ctx| {
            let (hub, drivers) = match r {
                Ok(v) => v,
                Err(e) if default => {
                    tracing::warn!(conn = act.id, team = %s.team_id, error = %e.message, "default subscription failed");
                    return;
                }
                Err(e) => return act.api_error(ctx, e, id),
            };
            act.hubs.insert(s.team_id.clone(), hub);
            let key = (s.team_id.clone(), s.driver_id.clone());
            let drivers = act.feeds.subscribe(key.clone(), default, rate, drivers.into_iter().collect());
            if !default {
                let answer = Subscribed {
                    team_id: s.team_id,
                    driver_id: s.driver_id,
                    rate_hz: rate,
                    drivers: drivers.clone(),
                };
                act.send(ctx, Envelope { id, ..Envelope::new(Wire::Subscribed(answer)) });
            }
            for driver in drivers {
                act.arm(key.clone(), driver, ctx);
            }
        });
        if default {
            ctx.wait(done);
        } else {
            ctx.spawn(done);
        }
    }

    /// `unsubscribe`: the subscription goes, and the team's events with its last one.
    pub(super) fn unsubscribe(&mut self, s: Subscribe) {
        if self.feeds.unsubscribe(&(s.team_id.clone(), s.driver_id)) {
            self.unfollow(&s.team_id);
        }
    }

    /// Stops receiving a team's events.
    fn unfollow(&mut self, team: &str) {
        if let Some(hub) = self.hubs.remove(team) {
            hub.do_send(HubUnsubscribe { id: self.id });
        }
    }

    /// A driver of a followed team appeared (or came back): feed the subscriptions that want it.
    pub(super) fn driver_joined(
        &mut self,
        driver: String,
        rx: watch::Receiver<Latest>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        for key in self.feeds.driver_joined(&driver, &rx) {
            self.arm(key, driver.clone(), ctx);
        }
    }

    /// Waits for the driver's next sample, then pushes it — at once, or when the subscription's
    /// rate allows — and waits again. Nothing runs while the socket is stalled (the actor is not
    /// polled then), so a stalled dashboard holds one pending wait per driver, nothing more.
    fn arm(&mut self, key: SubKey, driver: String, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(Armed { generation, mut rx }) = self.feeds.arm(&key, &driver) else { return };
        let changed = async move { rx.changed().await.is_ok() };
        ctx.spawn(changed.into_actor(self).map(move |alive, act, ctx| {
            match act.feeds.changed(&key, &driver, generation, alive) {
                Next::Idle => {}
                Next::PushNow => {
                    act.push_feed(&key, &driver, ctx);
                    act.arm(key, driver, ctx);
                }
                Next::WaitFor(wait) => {
                    ctx.run_later(wait, move |act, ctx| {
                        if act.feeds.due(&key, &driver, generation) {
                            act.push_feed(&key, &driver, ctx);
                            act.arm(key, driver, ctx);
                        }
                    });
                }
            }
        }));
    }

    /// Sends what changed for one feed, as `telemetry_update`s from the driver.
    fn push_feed(&mut self, key: &SubKey, driver: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(out) = self.feeds.take(key, driver) else { return };
        let from = pitbox_actors::driver_session::driver_path(&key.0, driver);
        for live in out.samples() {
            let Some(data) = live.json() else { continue };
            self.seq += 1;
            let push = SharedPush { kind: "telemetry_update", data, from: &from, seq: self.seq };
            if let Ok(text) = serde_json::to_string(&push) {
                ctx.text(text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pitbox_schema::wire::{TelemetryFrame, TelemetrySample, TelemetryUpdate};

    fn live(n: u64) -> LiveSample {
        let frame = TelemetryFrame {
            seq: Some(n),
            timestamp: chrono::Utc::now(),
            sample: TelemetrySample::default(),
        };
        let sample = serde_json::to_string(&frame.sample).unwrap();
        LiveSample::new(n, TelemetryUpdate { driver_id: "d".into(), frame }, &sample)
    }

    fn batch(ns: &[u64]) -> Latest {
        Some(Arc::new(ns.iter().map(|&n| live(n)).collect()))
    }

    fn team(t: &str) -> SubKey {
        (t.into(), None)
    }

    fn sent(out: Option<Outgoing>) -> Vec<u64> {
        out.map(|o| o.samples().map(|l| l.n).collect()).unwrap_or_default()
    }

    /// Arms the feed and reports a change, as the glue does when the driver publishes.
    fn step(feeds: &mut Feeds, key: &SubKey, driver: &str) -> Next {
        let Some(armed) = feeds.arm(key, driver) else { return Next::Idle };
        feeds.changed(key, driver, armed.generation, true)
    }

    #[test]
    fn rate_is_asked_or_the_views_default_within_bounds() {
        let feeds = Feeds::new(10, 60);
        let s = |driver: Option<&str>, rate_hz| Subscribe {
            team_id: "t".into(),
            driver_id: driver.map(Into::into),
            rate_hz,
        };
        assert_eq!(feeds.rate(&s(None, None)), 10);
        assert_eq!(feeds.rate(&s(Some("d"), None)), 60);
        assert_eq!(feeds.rate(&s(None, Some(0))), 1);
        assert_eq!(feeds.rate(&s(None, Some(1000))), 60);
    }

    #[test]
    fn each_driver_is_rate_limited_on_its_own() {
        let (a, b) = (watch::channel(batch(&[1])), watch::channel(batch(&[1])));
        let mut feeds = Feeds::new(1, 1);
        let key = team("t");
        let drivers = feeds.subscribe(key.clone(), false, 1, vec![("a".into(), a.1), ("b".into(), b.1)]);
        assert_eq!(drivers, ["a", "b"]);
        // A burst of two, then one push a second.
        assert_eq!(step(&mut feeds, &key, "a"), Next::PushNow);
        assert_eq!(sent(feeds.take(&key, "a")), [1]);
        a.0.send_replace(batch(&[2]));
        assert_eq!(step(&mut feeds, &key, "a"), Next::PushNow);
        assert_eq!(sent(feeds.take(&key, "a")), [2]);
        a.0.send_replace(batch(&[3]));
        let Some(armed) = feeds.arm(&key, "a") else { panic!("feed a not armed") };
        let Next::WaitFor(wait) = feeds.changed(&key, "a", armed.generation, true) else {
            panic!("the third push in a second is not held back")
        };
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        // Still waiting: arming again starts no second wait.
        assert!(feeds.arm(&key, "a").is_none());
        // The other driver's feed has its own bucket.
        assert_eq!(step(&mut feeds, &key, "b"), Next::PushNow);
        assert_eq!(sent(feeds.take(&key, "b")), [1]);
        // When the wait ends the held sample goes.
        assert!(feeds.due(&key, "a", armed.generation));
        assert_eq!(sent(feeds.take(&key, "a")), [3]);
        assert!(feeds.arm(&key, "a").is_some());
    }

    #[test]
    fn latest_wins_what_changed_meanwhile_is_merged() {
        let (tx, rx) = watch::channel(batch(&[1]));
        let (ftx, frx) = watch::channel(batch(&[1]));
        let mut feeds = Feeds::new(10, 60);
        let (view, focus) = (team("t"), ("t".to_owned(), Some("d".to_owned())));
        feeds.subscribe(view.clone(), false, 10, vec![("d".into(), rx)]);
        feeds.subscribe(focus.clone(), false, 60, vec![("d".into(), frx), ("other".into(), tx.subscribe())]);
        assert_eq!(sent(feeds.take(&view, "d")), [1]);
        assert_eq!(sent(feeds.take(&focus, "d")), [1]);
        // The focused view covers its driver only.
        assert!(feeds.arm(&focus, "other").is_none());
        // Two batches while the reader was away: the team view gets the newest sample, the
        // focused view every sample of the latest batch it has not sent.
        tx.send_replace(batch(&[2, 3]));
        tx.send_replace(batch(&[4, 5, 6]));
        ftx.send_replace(batch(&[2, 3]));
        ftx.send_replace(batch(&[3, 4, 5]));
        assert_eq!(sent(feeds.take(&view, "d")), [6]);
        assert_eq!(sent(feeds.take(&focus, "d")), [3, 4, 5]);
        // Nothing new: nothing to send.
        assert!(feeds.take(&view, "d").is_none());
        ftx.send_replace(batch(&[4, 5, 6]));
        assert_eq!(sent(feeds.take(&focus, "d")), [6]);
    }

    #[test]
    fn the_first_explicit_subscribe_replaces_the_defaults() {
        let (_tx, rx) = watch::channel(batch(&[1]));
        let mut feeds = Feeds::new(10, 60);
        feeds.subscribe(team("t1"), true, 10, vec![("d".into(), rx.clone())]);
        feeds.subscribe(team("t2"), true, 10, vec![]);
        let old = feeds.arm(&team("t1"), "d").map(|a| a.generation);
        // Subscribing to t1 drops both defaults; t2 is no longer followed, t1 still is.
        assert_eq!(feeds.drop_defaults("t1"), ["t2"]);
        let key = ("t1".to_owned(), Some("d".to_owned()));
        feeds.subscribe(key.clone(), false, 60, vec![("d".into(), rx)]);
        // A wait armed for the default stands down.
        assert_eq!(old.map(|g| feeds.changed(&team("t1"), "d", g, true)), Some(Next::Idle));
        assert_eq!(step(&mut feeds, &key, "d"), Next::PushNow);
        // Explicit subscriptions stay through later ones.
        assert!(feeds.drop_defaults("t3").is_empty());
        assert!(feeds.arm(&key, "d").is_some());
        assert!(!feeds.unsubscribe(&team("t1")), "t1's driver stream is still followed");
        assert!(feeds.unsubscribe(&key));
    }

    #[test]
    fn a_resubscription_stands_the_old_waits_down() {
        let (_tx, rx) = watch::channel(batch(&[1]));
        let mut feeds = Feeds::new(10, 60);
        feeds.subscribe(team("t"), false, 10, vec![("d".into(), rx.clone())]);
        let Some(old) = feeds.arm(&team("t"), "d") else { panic!("feed not armed") };
        feeds.subscribe(team("t"), false, 20, vec![("d".into(), rx)]);
        assert_eq!(feeds.changed(&team("t"), "d", old.generation, true), Next::Idle);
        assert!(!feeds.due(&team("t"), "d", old.generation));
        // The new subscription's feed is not held by the old wait.
        assert_eq!(step(&mut feeds, &team("t"), "d"), Next::PushNow);
    }

    #[test]
    fn a_rejoining_driver_replaces_a_stale_feed_only() {
        let (old_tx, old_rx) = watch::channel(batch(&[1]));
        let mut feeds = Feeds::new(10, 60);
        let focus = ("t".to_owned(), Some("other".to_owned()));
        feeds.subscribe(team("t"), false, 10, vec![("d".into(), old_rx)]);
        feeds.subscribe(focus, false, 60, vec![]);
        assert_eq!(sent(feeds.take(&team("t"), "d")), [1]);
        // A live feed is kept.
        let (new_tx, new_rx) = watch::channel(batch(&[7]));
        assert!(feeds.driver_joined("d", &new_rx).is_empty());
        // Its session ended for good: the wait armed on it ends, and the next session's
        // channel takes its place.
        let Some(armed) = feeds.arm(&team("t"), "d") else { panic!("feed not armed") };
        drop(old_tx);
        assert_eq!(feeds.changed(&team("t"), "d", armed.generation, false), Next::Idle);
        assert_eq!(feeds.driver_joined("d", &new_rx), [team("t")]);
        assert_eq!(step(&mut feeds, &team("t"), "d"), Next::PushNow);
        assert_eq!(sent(feeds.take(&team("t"), "d")), [7]);
        new_tx.send_replace(batch(&[8]));
        assert_eq!(sent(feeds.take(&team("t"), "d")), [8]);
    }
}
