//! The session-info YAML that iRacing stores beside the telemetry (track, weather, drivers, car
//! setup, sessions and results). It is cp1252 and not always valid YAML, so it is repaired the way
//! pyirsdk does before parsing: bytes 0x81, 0x8D, 0x8F, 0x90 and 0x9D become spaces, characters
//! YAML forbids are dropped, driver name fields (`UserName`, `TeamName`, `AbbrevName`, `Initials`,
//! `DriverSetupName`) and values starting with `,` are double-quoted, and no timestamp typing
//! happens. The result is a loose [`SessionValue`] tree (duplicate keys: the last wins, as in
//! PyYAML) with helpers for what PitBox needs; nothing is typed strictly (`CarSetup` differs per
//! car). Reads no env vars.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::error::IbtError;

/// How newer sims mark a UTF-8 YAML (pyirsdk checks the same prefix).
const UTF8_SIGNATURE: &[u8] = b"---\nWeekendInfo:\n Encoding: UTF8";
/// Bytes cp1252 leaves undefined; pyirsdk maps them to spaces.
const UNDEFINED_CP1252: [u8; 5] = [0x81, 0x8D, 0x8F, 0x90, 0x9D];
/// Driver fields iRacing writes unquoted although they hold arbitrary user text.
const NAME_FIELDS: [&str; 5] = ["DriverSetupName", "UserName", "TeamName", "AbbrevName", "Initials"];

/// Decodes raw session-info bytes (up to any NUL) to text: UTF-8 when the signature says so and
/// the bytes agree, cp1252 otherwise; characters YAML does not allow are removed. Also says
/// whether the text was UTF-8.
pub fn decode(raw: &[u8]) -> (String, bool) {
    let raw = raw.split(|&b| b == 0).next().unwrap_or(raw);
    let utf8 = raw.starts_with(UTF8_SIGNATURE);
    let text: Cow<'_, str> = match std::str::from_utf8(raw) {
        Ok(text) if utf8 => Cow::Borrowed(text),
        _ => {
            let mapped: Vec<u8> =
                raw.iter().map(|&b| if UNDEFINED_CP1252.contains(&b) { b' ' } else { b }).collect();
            Cow::Owned(encoding_rs::WINDOWS_1252.decode_without_bom_handling(&mapped).0.into_owned())
        }
    };
    let printable = text.chars().filter(|&c| is_yaml_printable(c)).collect();
    (printable, utf8 && std::str::from_utf8(raw).is_ok())
}

/// YAML's printable set (what PyYAML's reader accepts).
fn is_yaml_printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Splits `  - Key: value` into (`  - Key: `, `Key`, `value`).
fn split_key(line: &str) -> Option<(&str, &str, &str)> {
    let body = line.trim_start_matches([' ', '\t', '-']);
    let key_len = body.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    let key = body.get(..key_len).filter(|k| !k.is_empty())?;
    let value = body.get(key_len..)?.strip_prefix(": ")?;
    let prefix = line.get(..line.len() - value.len())?;
    Some((prefix, key, value))
}

/// Applies pyirsdk's textual repairs to decoded YAML. Line ends are made `\n` first: a file that
/// passed through Windows tools has `\r\n`, and a `\r` left at the end of a value the repair
/// quotes would come back as a trailing space.
pub fn fix_quirks(text: &str, utf8: bool) -> String {
    let text = if text.contains('\r') {
        Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(text)
    };
    let mut out = String::with_capacity(text.len() + 256);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let Some((prefix, key, value)) = split_key(line) else {
            out.push_str(line);
            continue;
        };
        let fixed = if utf8 && value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            // UTF-8 files quote strings but do not escape what is inside
            value.get(1..value.len() - 1).map(quoted)
        } else if (!value.is_empty() && (key == "DriverSetupName" || (!utf8 && NAME_FIELDS.contains(&key))))
            || value.starts_with(',')
        {
            Some(quoted(value))
        } else {
            None
        };
        match fixed {
            Some(value) => {
                out.push_str(prefix);
                out.push_str(&value);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// Decodes and repairs raw session-info bytes into YAML text ready for parsing.
pub fn repair(raw: &[u8]) -> String {
    let (text, utf8) = decode(raw);
    fix_quirks(&text, utf8)
}

/// A loose YAML tree: what the session info holds, without a schema.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SessionValue {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    List(Vec<SessionValue>),
    /// Keys in document order.
    Map(Vec<(String, SessionValue)>),
}

static NULL: SessionValue = SessionValue::Null;

impl SessionValue {
    /// Parses repaired YAML text.
    pub fn parse(text: &str) -> Result<Self, IbtError> {
        if text.trim().is_empty() {
            return Ok(SessionValue::Null);
        }
        SessionValue::deserialize(serde_norway::Deserializer::from_str(text))
            .map_err(|e| IbtError::SessionInfo(e.to_string()))
    }

    /// The value under `key` of a map.
    pub fn get(&self, key: &str) -> Option<&SessionValue> {
        match self {
            SessionValue::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Item `index` of a list.
    pub fn at(&self, index: usize) -> Option<&SessionValue> {
        match self {
            SessionValue::List(items) => items.get(index),
            _ => None,
        }
    }

    /// Follows a dotted path; numeric segments index lists: `DriverInfo.Drivers.0.UserName`.
    pub fn path(&self, path: &str) -> Option<&SessionValue> {
        path.split('.').try_fold(self, |v, seg| match v {
            SessionValue::List(_) => v.at(seg.parse().ok()?),
            _ => v.get(seg),
        })
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            SessionValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// Integers, and strings that hold one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            SessionValue::Int(v) => Some(*v),
            SessionValue::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// Numbers, and strings that start with one (`0.68 km` → 0.68).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            SessionValue::Int(v) => Some(*v as f64),
            SessionValue::Float(v) => Some(*v),
            SessionValue::String(s) => s.split_whitespace().next()?.parse().ok(),
            _ => None,
        }
    }

    pub fn as_list(&self) -> &[SessionValue] {
        match self {
            SessionValue::List(items) => items,
            _ => &[],
        }
    }

    pub fn as_map(&self) -> &[(String, SessionValue)] {
        match self {
            SessionValue::Map(entries) => entries,
            _ => &[],
        }
    }

    /// A scalar as text (`64` → `"64"`); `None` for null, lists and maps.
    pub fn to_text(&self) -> Option<String> {
        match self {
            SessionValue::Bool(v) => Some(v.to_string()),
            SessionValue::Int(v) => Some(v.to_string()),
            SessionValue::Float(v) => Some(v.to_string()),
            SessionValue::String(s) => Some(s.clone()),
            SessionValue::Null | SessionValue::List(_) | SessionValue::Map(_) => None,
        }
    }
}

impl std::ops::Index<&str> for SessionValue {
    type Output = SessionValue;

    /// `value["WeekendInfo"]["TrackName"]`; missing keys give `Null`, never a panic.
    fn index(&self, key: &str) -> &SessionValue {
        self.get(key).unwrap_or(&NULL)
    }
}

impl std::ops::Index<usize> for SessionValue {
    type Output = SessionValue;

    fn index(&self, index: usize) -> &SessionValue {
        self.at(index).unwrap_or(&NULL)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = SessionValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<SessionValue, E> {
        Ok(SessionValue::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<SessionValue, E> {
        Ok(SessionValue::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<SessionValue, E> {
        Ok(i64::try_from(v).map_or(SessionValue::Float(v as f64), SessionValue::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<SessionValue, E> {
        Ok(SessionValue::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<SessionValue, E> {
        Ok(SessionValue::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<SessionValue, E> {
        Ok(SessionValue::String(v))
    }

    fn visit_unit<E>(self) -> Result<SessionValue, E> {
        Ok(SessionValue::Null)
    }

    fn visit_none<E>(self) -> Result<SessionValue, E> {
        Ok(SessionValue::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<SessionValue, D::Error> {
        SessionValue::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SessionValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(SessionValue::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SessionValue, A::Error> {
        let mut entries: Vec<(String, SessionValue)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<SessionValue, SessionValue>()? {
            let key = key.to_text().unwrap_or_default();
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => entries.push((key, value)),
            }
        }
        Ok(SessionValue::Map(entries))
    }

    /// A tagged value (`!tag x`): the tag is dropped.
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<SessionValue, A::Error> {
        let (_tag, variant) = data.variant::<String>()?;
        de::VariantAccess::newtype_variant::<SessionValue>(variant)
    }
}

impl<'de> Deserialize<'de> for SessionValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

impl Serialize for SessionValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SessionValue::Null => s.serialize_unit(),
            SessionValue::Bool(v) => s.serialize_bool(*v),
            SessionValue::Int(v) => s.serialize_i64(*v),
            SessionValue::Float(v) => s.serialize_f64(*v),
            SessionValue::String(v) => s.serialize_str(v),
            SessionValue::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            SessionValue::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// One entry of `DriverInfo.Drivers`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Driver {
    pub car_idx: Option<i64>,
    pub user_name: String,
    /// As displayed (`"064"` keeps its zeros).
    pub car_number: String,
    pub car_screen_name: String,
    pub team_name: String,
    pub is_pace_car: bool,
    pub is_spectator: bool,
}

/// One entry of `SessionInfo.Sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSummary {
    pub number: Option<i64>,
    /// `Practice`, `Qualify`, `Race`, `Offline Testing`, …
    pub kind: String,
    /// Laps as stated: a number or `unlimited`.
    pub laps: String,
    /// Duration as stated: `600.0000 sec` or `unlimited`.
    pub time: String,
    /// `ResultsLapsComplete` when the session has results.
    pub laps_complete: Option<i64>,
}

/// The parsed session info with the lookups PitBox uses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionInfo {
    root: SessionValue,
}

fn text(v: Option<&SessionValue>) -> String {
    v.and_then(SessionValue::to_text).unwrap_or_default()
}

impl SessionInfo {
    /// Decodes, repairs and parses raw session-info bytes.
    pub fn from_bytes(raw: &[u8]) -> Result<Self, IbtError> {
        Self::from_yaml(&repair(raw))
    }

    /// Parses YAML text that is already decoded and repaired.
    pub fn from_yaml(text: &str) -> Result<Self, IbtError> {
        Ok(SessionInfo { root: SessionValue::parse(text)? })
    }

    /// The whole tree.
    pub fn root(&self) -> &SessionValue {
        &self.root
    }

    /// A dotted path into the tree (see [`SessionValue::path`]).
    pub fn get(&self, path: &str) -> Option<&SessionValue> {
        self.root.path(path)
    }

    /// `WeekendInfo.TrackName`, the internal name (`tsukuba 1kouter`).
    pub fn track_name(&self) -> Option<&str> {
        self.get("WeekendInfo.TrackName")?.as_str()
    }

    /// `WeekendInfo.TrackDisplayName` (`Tsukuba Circuit 1k Outer`).
    pub fn track_display_name(&self) -> Option<&str> {
        self.get("WeekendInfo.TrackDisplayName")?.as_str()
    }

    /// The display name, or the internal one when there is none.
    pub fn track(&self) -> Option<&str> {
        self.track_display_name().filter(|s| !s.is_empty()).or_else(|| self.track_name())
    }

    /// `DriverInfo.DriverCarIdx`: the car index of the driver who recorded.
    pub fn driver_car_idx(&self) -> Option<i64> {
        self.get("DriverInfo.DriverCarIdx")?.as_i64()
    }

    /// `DriverInfo.Drivers`.
    pub fn drivers(&self) -> Vec<Driver> {
        let Some(list) = self.get("DriverInfo.Drivers") else { return Vec::new() };
        list.as_list()
            .iter()
            .map(|d| Driver {
                car_idx: d.get("CarIdx").and_then(SessionValue::as_i64),
                user_name: text(d.get("UserName")),
                car_number: text(d.get("CarNumber")),
                car_screen_name: text(d.get("CarScreenName")),
                team_name: text(d.get("TeamName")),
                is_pace_car: d.get("CarIsPaceCar").and_then(SessionValue::as_i64) == Some(1),
                is_spectator: d.get("IsSpectator").and_then(SessionValue::as_i64) == Some(1),
            })
            .collect()
    }

    /// The entry of [`SessionInfo::drivers`] for `DriverCarIdx`.
    pub fn player(&self) -> Option<Driver> {
        let idx = self.driver_car_idx()?;
        self.drivers().into_iter().find(|d| d.car_idx == Some(idx))
    }

    /// The recording driver's car (`CarScreenName`).
    pub fn car(&self) -> Option<String> {
        self.player().map(|d| d.car_screen_name).filter(|s| !s.is_empty())
    }

    /// `SessionInfo.Sessions`.
    pub fn sessions(&self) -> Vec<SessionSummary> {
        let Some(list) = self.get("SessionInfo.Sessions") else { return Vec::new() };
        list.as_list()
            .iter()
            .map(|s| SessionSummary {
                number: s.get("SessionNum").and_then(SessionValue::as_i64),
                kind: text(s.get("SessionType")),
                laps: text(s.get("SessionLaps")),
                time: text(s.get("SessionTime")),
                laps_complete: s.get("ResultsLapsComplete").and_then(SessionValue::as_i64),
            })
            .collect()
    }

    /// The type (`Practice`, `Qualify`, `Race`, …) of session `number` (`SessionNum`), or of the
    /// last session listed when the number is unknown or not listed.
    pub fn session_type(&self, number: Option<i64>) -> Option<String> {
        let all = self.sessions();
        let chosen = number.and_then(|n| all.iter().find(|s| s.number == Some(n))).or(all.last());
        chosen.map(|s| s.kind.clone()).filter(|k| !k.is_empty())
    }

    /// `SplitTimeInfo.Sectors[].SectorStartPct`, ascending (0–1 around the lap).
    pub fn sector_starts(&self) -> Vec<f32> {
        let Some(list) = self.get("SplitTimeInfo.Sectors") else { return Vec::new() };
        let mut starts: Vec<f32> = list
            .as_list()
            .iter()
            .filter_map(|s| s.get("SectorStartPct")?.as_f64())
            .filter(|p| p.is_finite() && (0.0..=1.0).contains(p))
            .map(|p| p as f32)
            .collect();
        starts.sort_by(f32::total_cmp);
        starts
    }
}
