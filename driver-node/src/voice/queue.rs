//! What the driver hears next: a priority queue of things to say, and whether the car is in a
//! place where the driver can listen. Pure logic (no devices, no clock of its own), so the rules are
//! unit-tested here and the playback thread ([`super::playback`]) only applies them.
//!
//! Rules:
//! - an urgent item interrupts whatever non-urgent item plays; lower priorities wait their turn;
//! - among waiting items the highest priority goes first, then the oldest;
//! - an item whose `expiresAt` has passed is dropped (a gap is stale after a few seconds);
//! - an item saying the same text as one waiting or playing collapses into it (the higher
//!   priority and the later expiry are kept);
//! - while the driver brakes hard or is deep in a corner ([`Attention`]), only urgent items play;
//! - at most [`MAX_WAITING`] items wait: beyond that the least important, oldest one is dropped.
//!
//! Reads no env vars.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pitbox_schema::wire::MessagePriority;

/// Mono 16-bit PCM at `rate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub rate: u32,
    pub samples: Arc<Vec<i16>>,
}

impl Clip {
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.rate.max(1)))
    }
}

/// One thing to say.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    pub text: String,
    pub priority: MessagePriority,
    pub expires_at: Option<DateTime<Utc>>,
    pub clip: Clip,
}

fn same_words(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
    };
    norm(a) == norm(b)
}

/// Items waiting at most (a long hold in a flurry of tips must not grow without bound).
pub const MAX_WAITING: usize = 32;

/// What [`SayQueue::push`] did with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// It waits its turn.
    Queued,
    /// The same words wait or play already: merged into that one.
    Collapsed,
    /// It is urgent and what plays is not: stop that and play this now.
    Preempt,
    /// Already expired.
    Expired,
}

#[derive(Debug, Default)]
pub struct SayQueue {
    waiting: Vec<(u64, Item)>,
    playing: Option<Item>,
    order: u64,
}

impl SayQueue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub fn playing(&self) -> Option<&Item> {
        self.playing.as_ref()
    }

    pub fn push(&mut self, item: Item, now: DateTime<Utc>) -> Pushed {
        if item.expires_at.is_some_and(|e| e <= now) {
            return Pushed::Expired;
        }
        if let Some(p) = self.playing.as_ref().filter(|p| same_words(&p.text, &item.text)) {
            // Being said right now: saying it again adds nothing, unless it is urgent and what plays is not.
            if !(item.priority == MessagePriority::Urgent && p.priority != MessagePriority::Urgent) {
                return Pushed::Collapsed;
            }
        }
        if let Some((_, w)) = self.waiting.iter_mut().find(|(_, w)| same_words(&w.text, &item.text)) {
            if item.priority.rank() > w.priority.rank() {
                w.priority = item.priority;
            }
            w.expires_at = match (w.expires_at, item.expires_at) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
            return Pushed::Collapsed;
        }
        let urgent = item.priority == MessagePriority::Urgent;
        self.order += 1;
        self.waiting.push((self.order, item));
        if self.waiting.len() > MAX_WAITING {
            if let Some(i) = self
                .waiting
                .iter()
                .enumerate()
                .min_by_key(|(_, (order, w))| (w.priority.rank(), *order))
                .map(|(i, _)| i)
            {
                let (_, dropped) = self.waiting.remove(i);
                tracing::info!(text = %dropped.text, "too much waiting to be said; dropped");
            }
        }
        match &self.playing {
            Some(p) if urgent && p.priority != MessagePriority::Urgent => Pushed::Preempt,
            _ => Pushed::Queued,
        }
    }

    /// The current item finished (or was interrupted).
    pub fn finished(&mut self) {
        self.playing = None;
    }

    /// The next item to play when nothing plays, dropping expired ones; while `held` only urgent
    /// items come out.
    pub fn next(&mut self, now: DateTime<Utc>, held: bool) -> Option<Item> {
        self.waiting.retain(|(_, w)| w.expires_at.is_none_or(|e| e > now));
        let best = self
            .waiting
            .iter()
            .enumerate()
            .filter(|(_, (_, w))| !held || w.priority == MessagePriority::Urgent)
            .max_by_key(|(_, (order, w))| (w.priority.rank(), std::cmp::Reverse(*order)))
            .map(|(i, _)| i)?;
        let (_, item) = self.waiting.remove(best);
        self.playing = Some(item.clone());
        Some(item)
    }
}

/// Thresholds of [`Attention`]: the driver is busy from `BRAKE_BUSY` % brake or `STEER_BUSY`°
/// of steering-wheel angle (a committed corner), and free again once brake is below `BRAKE_FREE` %
/// and the wheel within `STEER_FREE`° for `FREE_FOR` (a straight). The gap between the two
/// thresholds keeps a trail-brake or a kink from releasing and holding speech in turn. Telemetry
/// older than `STALE` (sim paused, no source) holds nothing.
pub const BRAKE_BUSY: f32 = 30.0;
pub const STEER_BUSY: f32 = 45.0;
pub const BRAKE_FREE: f32 = 5.0;
pub const STEER_FREE: f32 = 15.0;
pub const FREE_FOR: Duration = Duration::from_millis(500);
pub const STALE: Duration = Duration::from_secs(2);

/// Pedals and wheel, from the newest telemetry frame.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pedals {
    /// 0–100 %.
    pub brake: f32,
    /// 0–100 %.
    pub throttle: f32,
    /// Steering-wheel angle, degrees.
    pub steering: f32,
}

/// Whether non-urgent speech must wait: hard braking or deep in a corner holds it, a straight
/// releases it.
#[derive(Debug, Default)]
pub struct Attention {
    held: bool,
    free_since: Option<Instant>,
}

impl Attention {
    /// Takes the newest pedals and how old they are; returns whether speech is held.
    pub fn update(&mut self, pedals: Option<(Pedals, Duration)>, now: Instant) -> bool {
        let Some((p, _)) = pedals.filter(|(_, age)| *age < STALE) else {
            self.held = false;
            self.free_since = None;
            return false;
        };
        if p.brake >= BRAKE_BUSY || p.steering.abs() >= STEER_BUSY {
            self.held = true;
            self.free_since = None;
        } else if p.brake < BRAKE_FREE && p.steering.abs() < STEER_FREE {
            let since = *self.free_since.get_or_insert(now);
            if now.duration_since(since) >= FREE_FOR {
                self.held = false;
            }
        } else {
            self.free_since = None;
        }
        self.held
    }

    pub fn held(&self) -> bool {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(text: &str, priority: MessagePriority) -> Item {
        Item {
            id: text.into(),
            text: text.into(),
            priority,
            expires_at: None,
            clip: Clip { rate: 16000, samples: Arc::new(vec![1; 160]) },
        }
    }

    #[test]
    fn urgent_preempts_and_lower_priorities_wait() {
        let now = Utc::now();
        let mut q = SayQueue::new();
        assert_eq!(q.push(item("tip one", MessagePriority::Low), now), Pushed::Queued);
        assert_eq!(q.next(now, false).unwrap().text, "tip one");
        assert_eq!(q.push(item("gap ahead 1.2", MessagePriority::Normal), now), Pushed::Queued);
        assert_eq!(q.push(item("box box", MessagePriority::Urgent), now), Pushed::Preempt);
        q.finished();
        assert_eq!(q.push(item("tip two", MessagePriority::High), now), Pushed::Queued);
        // Urgent first, then high, then normal.
        let order: Vec<_> = std::iter::from_fn(|| {
            let n = q.next(now, false).map(|i| i.text);
            q.finished();
            n
        })
        .collect();
        assert_eq!(order, ["box box", "tip two", "gap ahead 1.2"]);
        // An urgent item does not interrupt another urgent one.
        q.push(item("fuel critical", MessagePriority::Urgent), now);
        q.next(now, false).unwrap();
        assert_eq!(q.push(item("handoff", MessagePriority::Urgent), now), Pushed::Queued);
        q.finished();
        // A flood: the queue keeps MAX_WAITING, dropping the least important, oldest first.
        q.next(now, false);
        q.finished();
        q.push(item("pit window open", MessagePriority::High), now);
        for i in 0..MAX_WAITING {
            q.push(item(&format!("tip {i}"), MessagePriority::Low), now);
        }
        assert_eq!(q.len(), MAX_WAITING);
        assert_eq!(q.next(now, false).unwrap().text, "pit window open");
        q.finished();
        assert_eq!(q.next(now, false).unwrap().text, "tip 1", "tip 0 was dropped");
    }

    #[test]
    fn expired_items_are_dropped() {
        let now = Utc::now();
        let mut q = SayQueue::new();
        let mut stale = item("gap 0.4", MessagePriority::Normal);
        stale.expires_at = Some(now - chrono::Duration::seconds(1));
        assert_eq!(q.push(stale, now), Pushed::Expired);
        let mut soon = item("gap 0.5", MessagePriority::Normal);
        soon.expires_at = Some(now + chrono::Duration::seconds(2));
        q.push(soon, now);
        q.push(item("later", MessagePriority::Low), now);
        // Three seconds on the first has expired while waiting.
        let later = now + chrono::Duration::seconds(3);
        assert_eq!(q.next(later, false).unwrap().text, "later");
        q.finished();
        assert!(q.next(later, false).is_none());
    }

    #[test]
    fn duplicates_collapse() {
        let now = Utc::now();
        let mut q = SayQueue::new();
        q.push(item("Brake later into turn 4.", MessagePriority::Low), now);
        assert_eq!(q.push(item("brake later into turn 4", MessagePriority::High), now), Pushed::Collapsed);
        assert_eq!(q.len(), 1);
        let i = q.next(now, false).unwrap();
        assert_eq!(i.priority, MessagePriority::High, "the higher priority is kept");
        // The same words while they play.
        assert_eq!(q.push(item("brake later into turn 4", MessagePriority::Low), now), Pushed::Collapsed);
        assert!(q.is_empty());
    }

    #[test]
    fn held_while_braking_or_cornering_released_on_a_straight() {
        let now = Utc::now();
        let mut q = SayQueue::new();
        q.push(item("tip", MessagePriority::High), now);
        let t0 = Instant::now();
        let mut a = Attention::default();
        let fresh = |brake, steering| Some((Pedals { brake, throttle: 0.0, steering }, Duration::ZERO));
        assert!(a.update(fresh(80.0, 0.0), t0), "hard braking holds");
        assert!(q.next(now, a.held()).is_none());
        // Trail-braking into the corner, then deep in it: still held.
        assert!(a.update(fresh(20.0, 30.0), t0 + Duration::from_millis(300)));
        assert!(a.update(fresh(0.0, 90.0), t0 + Duration::from_millis(600)));
        // An urgent item goes through a hold.
        q.push(item("pit now", MessagePriority::Urgent), now);
        assert_eq!(q.next(now, a.held()).unwrap().text, "pit now");
        q.finished();
        // Unwinding the wheel: free only after FREE_FOR of a straight.
        assert!(a.update(fresh(0.0, 5.0), t0 + Duration::from_millis(900)));
        assert!(a.update(fresh(0.0, 3.0), t0 + Duration::from_millis(1200)));
        assert!(!a.update(fresh(0.0, 2.0), t0 + Duration::from_millis(1450)));
        assert_eq!(q.next(now, a.held()).unwrap().text, "tip");
        // Stale telemetry holds nothing.
        assert!(a.update(fresh(90.0, 0.0), t0 + Duration::from_secs(2)));
        assert!(!a.update(
            Some((Pedals { brake: 90.0, ..Default::default() }, STALE)),
            t0 + Duration::from_secs(5)
        ));
    }
}
