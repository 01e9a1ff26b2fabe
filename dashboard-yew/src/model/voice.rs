//! The pit wall's view of the drivers' radio: each driver's spoken exchanges (what was heard, how
//! sure the recogniser was, what the driver was told), newest first and bounded, and the
//! "box this lap" calls that the pit wall shows as a banner until they are old or dismissed.
//! Reads no env vars.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use pitbox_schema::wire::{MessagePriority, TeamMessage, VoiceExchange};

/// Exchanges kept per driver.
pub const KEPT: usize = 50;
/// How long a box call stays on the banner (a lap, give or take).
pub const BOX_CALL_SECS: i64 = 180;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct VoiceLog {
    /// Newest first, by driver.
    by_driver: BTreeMap<String, VecDeque<VoiceExchange>>,
    /// Box calls the pit wall dismissed.
    dismissed: BTreeSet<String>,
}

impl VoiceLog {
    /// Adds an exchange (a repeat of one already here replaces it).
    pub fn push(&mut self, x: VoiceExchange) {
        let log = self.by_driver.entry(x.driver_id.clone()).or_default();
        log.retain(|o| o.command_id != x.command_id);
        log.push_front(x);
        log.truncate(KEPT);
    }

    /// A driver's exchanges, newest first.
    pub fn of(&self, driver_id: &str) -> impl Iterator<Item = &VoiceExchange> {
        self.by_driver.get(driver_id).into_iter().flatten()
    }

    pub fn dismiss(&mut self, message_id: &str) {
        self.dismissed.insert(message_id.to_owned());
    }

    /// The box calls to show at `now`: urgent team messages that are a driver's "box this lap",
    /// recent and not dismissed, newest first.
    pub fn box_calls<'a>(&'a self, messages: &'a [TeamMessage], now: DateTime<Utc>) -> Vec<&'a TeamMessage> {
        messages
            .iter()
            .rev()
            .filter(|m| is_box_call(m))
            .filter(|m| (now - m.sent_at).num_seconds() < BOX_CALL_SECS)
            .filter(|m| !self.dismissed.contains(&m.id))
            .collect()
    }
}

/// A "box this lap" call from a driver's radio (the voice channel's urgent team message).
pub fn is_box_call(m: &TeamMessage) -> bool {
    m.priority == MessagePriority::Urgent && m.content.starts_with("Box this lap")
}

/// How sure the recogniser was, as the pit wall reads it.
pub fn confidence(c: f32) -> String {
    let pct = (c.clamp(0.0, 1.0) * 100.0).round();
    let word = match c {
        c if c >= 0.85 => "sure",
        c if c >= 0.6 => "likely",
        _ => "unsure",
    };
    format!("{pct:.0}% {word}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use pitbox_schema::wire::VoiceIntent;

    /// A fixed "now" (the dashboard has no clock of its own outside the browser).
    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn x(driver: &str, id: &str, answer: &str) -> VoiceExchange {
        VoiceExchange {
            driver_id: driver.into(),
            command_id: id.into(),
            command: VoiceIntent::FuelLeft,
            transcript: "how much fuel".into(),
            confidence: 0.9,
            answer: answer.into(),
            at: now(),
        }
    }

    fn msg(id: &str, content: &str, p: MessagePriority, secs_ago: i64) -> TeamMessage {
        TeamMessage {
            id: id.into(),
            team_id: "t".into(),
            content: content.into(),
            sender_id: "u".into(),
            sender_name: "Driver".into(),
            priority: p,
            sent_at: now() - chrono::Duration::seconds(secs_ago),
            read: false,
            attachment: None,
        }
    }

    #[test]
    fn exchanges_are_per_driver_newest_first_and_bounded() {
        let mut log = VoiceLog::default();
        log.push(x("d1", "c1", "Fuel 20.0 litres"));
        log.push(x("d2", "c2", "P3"));
        log.push(x("d1", "c3", "Fuel 19.5 litres"));
        log.push(x("d1", "c3", "Fuel 19.5 litres"));
        let d1: Vec<&str> = log.of("d1").map(|e| e.command_id.as_str()).collect();
        assert_eq!(d1, ["c3", "c1"]);
        for k in 0..KEPT + 10 {
            log.push(x("d2", &format!("n{k}"), "P3"));
        }
        assert_eq!(log.of("d2").count(), KEPT);
        assert_eq!(log.of("nobody").count(), 0);
    }

    #[test]
    fn box_calls_show_until_old_or_dismissed() {
        let mut log = VoiceLog::default();
        let messages = vec![
            msg("old", "Box this lap — A called it on the radio", MessagePriority::Urgent, BOX_CALL_SECS + 5),
            msg("chat", "Box this lap maybe?", MessagePriority::Normal, 1),
            msg("yellow", "Yellow flag T3", MessagePriority::Urgent, 1),
            msg("b1", "Box this lap — B called it on the radio", MessagePriority::Urgent, 10),
            msg("b2", "Box this lap — C called it on the radio", MessagePriority::Urgent, 2),
        ];
        let ids =
            |log: &VoiceLog| log.box_calls(&messages, now()).iter().map(|m| m.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&log), ["b2", "b1"]);
        log.dismiss("b2");
        assert_eq!(ids(&log), ["b1"]);
    }

    #[test]
    fn confidence_reads_as_words() {
        assert_eq!(confidence(0.87), "87% sure");
        assert_eq!(confidence(0.7), "70% likely");
        assert_eq!(confidence(0.2), "20% unsure");
        assert_eq!(confidence(7.0), "100% sure");
    }
}
