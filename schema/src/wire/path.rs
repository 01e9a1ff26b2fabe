//! `ActorPath`: the address of an actor (and of a driver's node) in the runtime's tree, as it
//! appears in the admin tree, in envelopes' `from`/`to` and in the registry. Built, parsed,
//! displayed and validated here only, so no other code splits or formats path strings.
//!
//! ```text
//! /runtime                                  the runtime supervisor
//! /runtime/store                            the store writer
//! /teams/{team}                             a team's supervisor
//! /teams/{team}/hub                         its hub (events and feeds)
//! /teams/{team}/drivers/{driver}            a driver's session
//! /teams/{team}/drivers/{driver}/{part}     coach | voice | video | node (the driver's node socket)
//! ```
//! Reads no env vars.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What hangs under a driver's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DriverPart {
    Coach,
    Voice,
    Video,
    /// The driver's node socket: not an actor, but addressable (tips, video control).
    Node,
}

impl DriverPart {
    pub const ALL: [DriverPart; 4] =
        [DriverPart::Coach, DriverPart::Voice, DriverPart::Video, DriverPart::Node];

    pub fn as_str(self) -> &'static str {
        match self {
            DriverPart::Coach => "coach",
            DriverPart::Voice => "voice",
            DriverPart::Video => "video",
            DriverPart::Node => "node",
        }
    }
}

/// An actor's address. Ids are non-empty, at most 128 bytes, and made of ASCII letters, digits
/// and `-_.:` (uuids and the seed's ids), never `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActorPath {
    Runtime,
    Store,
    Team { team: String },
    Hub { team: String },
    Driver { team: String, driver: String },
    Part { team: String, driver: String, part: DriverPart },
}

/// Why a string is not an actor path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPath {
    pub path: String,
    pub reason: &'static str,
}

impl fmt::Display for BadPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.path.chars().take(80).collect();
        write!(f, "bad actor path {shown:?}: {}", self.reason)
    }
}

impl std::error::Error for BadPath {}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

impl ActorPath {
    pub fn team(team: impl Into<String>) -> Self {
        ActorPath::Team { team: team.into() }
    }

    pub fn hub(team: impl Into<String>) -> Self {
        ActorPath::Hub { team: team.into() }
    }

    pub fn driver(team: impl Into<String>, driver: impl Into<String>) -> Self {
        ActorPath::Driver { team: team.into(), driver: driver.into() }
    }

    pub fn part(team: impl Into<String>, driver: impl Into<String>, part: DriverPart) -> Self {
        ActorPath::Part { team: team.into(), driver: driver.into(), part }
    }

    /// The team this path belongs to, if any.
    pub fn team_id(&self) -> Option<&str> {
        match self {
            ActorPath::Runtime | ActorPath::Store => None,
            ActorPath::Team { team }
            | ActorPath::Hub { team }
            | ActorPath::Driver { team, .. }
            | ActorPath::Part { team, .. } => Some(team),
        }
    }

    /// The driver this path belongs to, if any.
    pub fn driver_id(&self) -> Option<&str> {
        match self {
            ActorPath::Driver { driver, .. } | ActorPath::Part { driver, .. } => Some(driver),
            _ => None,
        }
    }

    /// The supervising parent's path (`None` for the root).
    pub fn parent(&self) -> Option<ActorPath> {
        match self {
            ActorPath::Runtime => None,
            ActorPath::Store | ActorPath::Team { .. } => Some(ActorPath::Runtime),
            ActorPath::Hub { team } | ActorPath::Driver { team, .. } => Some(ActorPath::team(team.clone())),
            ActorPath::Part { team, driver, .. } => Some(ActorPath::driver(team.clone(), driver.clone())),
        }
    }

    /// The same driver's `part`; `None` when this path is not a driver's.
    pub fn with_part(&self, part: DriverPart) -> Option<ActorPath> {
        Some(ActorPath::part(self.team_id()?, self.driver_id()?, part))
    }

    /// The NATS subject of this address in cluster mode: `pitbox` and the path's segments as
    /// tokens (`/teams/t1/drivers/d1` → `pitbox.teams.t1.drivers.d1`). An id's `.` (a token
    /// separator in NATS) is written `%2E` (ids never hold `%`), so every id stays one token.
    pub fn subject(&self) -> String {
        let esc = |id: &str| id.replace('.', "%2E");
        match self {
            ActorPath::Runtime => "pitbox.runtime".to_owned(),
            ActorPath::Store => "pitbox.runtime.store".to_owned(),
            ActorPath::Team { team } => format!("pitbox.teams.{}", esc(team)),
            ActorPath::Hub { team } => format!("pitbox.teams.{}.hub", esc(team)),
            ActorPath::Driver { team, driver } => {
                format!("pitbox.teams.{}.drivers.{}", esc(team), esc(driver))
            }
            ActorPath::Part { team, driver, part } => {
                format!("pitbox.teams.{}.drivers.{}.{}", esc(team), esc(driver), part.as_str())
            }
        }
    }

    /// Whether every id in the path is valid (paths built from stored ids always are; this is for
    /// paths built from what a client sent).
    pub fn is_valid(&self) -> bool {
        self.team_id().is_none_or(valid_id) && self.driver_id().is_none_or(valid_id)
    }
}

impl fmt::Display for ActorPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActorPath::Runtime => f.write_str("/runtime"),
            ActorPath::Store => f.write_str("/runtime/store"),
            ActorPath::Team { team } => write!(f, "/teams/{team}"),
            ActorPath::Hub { team } => write!(f, "/teams/{team}/hub"),
            ActorPath::Driver { team, driver } => write!(f, "/teams/{team}/drivers/{driver}"),
            ActorPath::Part { team, driver, part } => {
                write!(f, "/teams/{team}/drivers/{driver}/{}", part.as_str())
            }
        }
    }
}

impl FromStr for ActorPath {
    type Err = BadPath;

    fn from_str(s: &str) -> Result<Self, BadPath> {
        let bad = |reason| BadPath { path: s.to_owned(), reason };
        let rest = s.strip_prefix('/').ok_or_else(|| bad("must start with /"))?;
        let segs: Vec<&str> = rest.split('/').collect();
        let id = |i: usize| -> Result<String, BadPath> {
            let v = segs[i];
            if valid_id(v) {
                Ok(v.to_owned())
            } else {
                Err(bad("an id is empty, too long or has characters other than letters, digits and -_.:"))
            }
        };
        match segs.as_slice() {
            ["runtime"] => Ok(ActorPath::Runtime),
            ["runtime", "store"] => Ok(ActorPath::Store),
            ["teams", _] => Ok(ActorPath::Team { team: id(1)? }),
            ["teams", _, "hub"] => Ok(ActorPath::Hub { team: id(1)? }),
            ["teams", _, "drivers", _] => Ok(ActorPath::Driver { team: id(1)?, driver: id(3)? }),
            ["teams", _, "drivers", _, part] => {
                let part = DriverPart::ALL
                    .into_iter()
                    .find(|p| p.as_str() == *part)
                    .ok_or_else(|| bad("a driver's part is coach, voice, video or node"))?;
                Ok(ActorPath::Part { team: id(1)?, driver: id(3)?, part })
            }
            _ => Err(bad("not /runtime, /teams/{team}[/hub], /teams/{team}/drivers/{driver}[/part]")),
        }
    }
}

impl Serialize for ActorPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ActorPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let all = [
            ActorPath::Runtime,
            ActorPath::Store,
            ActorPath::team("t1"),
            ActorPath::hub("t1"),
            ActorPath::driver("t1", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
            ActorPath::part("t1", "d1", DriverPart::Coach),
            ActorPath::part("t1", "d1", DriverPart::Voice),
            ActorPath::part("t1", "d1", DriverPart::Video),
            ActorPath::part("t1", "d1", DriverPart::Node),
        ];
        for p in all {
            let text = p.to_string();
            assert_eq!(text.parse::<ActorPath>(), Ok(p.clone()), "{text}");
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<ActorPath>(&json).unwrap(), p);
        }
        assert_eq!(ActorPath::part("t", "d", DriverPart::Coach).to_string(), "/teams/t/drivers/d/coach");
    }

    #[test]
    fn bad_paths_are_refused_with_a_reason() {
        for bad in [
            "",
            "teams/t1",
            "/",
            "/teams",
            "/teams/",
            "/teams//hub",
            "/teams/t1/",
            "/teams/t1/drivers",
            "/teams/t1/drivers/d1/engine",
            "/teams/../drivers/d1",
            "/teams/t 1",
            "/teams/t1/drivers/d1/coach/x",
            "/runtime/other",
            "/teams/t\u{0}1",
        ] {
            let e = bad.parse::<ActorPath>().unwrap_err();
            assert!(!e.reason.is_empty(), "{bad:?}");
        }
        let long = format!("/teams/{}", "x".repeat(129));
        assert!(long.parse::<ActorPath>().is_err());
        assert!(serde_json::from_str::<ActorPath>("\"/teams/a/b\"").is_err());
    }

    #[test]
    fn subjects_keep_one_token_per_segment() {
        assert_eq!(ActorPath::driver("t1", "d1").subject(), "pitbox.teams.t1.drivers.d1");
        assert_eq!(ActorPath::hub("t.1").subject(), "pitbox.teams.t%2E1.hub");
        let coach = ActorPath::part("a.b", "c:d", DriverPart::Coach).subject();
        assert_eq!(coach, "pitbox.teams.a%2Eb.drivers.c:d.coach");
        assert_eq!(coach.split('.').count(), 6);
        assert_eq!(ActorPath::Store.subject(), "pitbox.runtime.store");
    }

    #[test]
    fn family_relations() {
        let coach = ActorPath::part("t", "d", DriverPart::Coach);
        assert_eq!(coach.parent(), Some(ActorPath::driver("t", "d")));
        assert_eq!(coach.parent().and_then(|p| p.parent()), Some(ActorPath::team("t")));
        assert_eq!(ActorPath::team("t").parent(), Some(ActorPath::Runtime));
        assert_eq!(ActorPath::Runtime.parent(), None);
        assert_eq!(
            ActorPath::driver("t", "d").with_part(DriverPart::Node),
            Some(ActorPath::part("t", "d", DriverPart::Node))
        );
        assert_eq!(ActorPath::hub("t").with_part(DriverPart::Node), None);
        assert_eq!(coach.team_id(), Some("t"));
        assert_eq!(coach.driver_id(), Some("d"));
        assert!(!ActorPath::team("a/b").is_valid());
    }
}
