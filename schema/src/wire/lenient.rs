//! Lenient readers for what the original PitBox clients sent: integers written as whole-valued
//! floats (`"gear": 4.0`, JavaScript has one number type) and ISO timestamps without an offset
//! (`"2026-11-21T12:00:00"`, read as UTC). Used through `#[serde(deserialize_with = …)]`; what we
//! write is unchanged. serde and chrono only, so the wire types still build for wasm32. Reads no env
//! vars.

use core::fmt;
use core::marker::PhantomData;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::{self, Deserializer, Visitor};

/// An integer field that also takes a float with no fractional part (`4.0` → `4`); `4.5`, NaN and
/// values out of the field's range are refused.
pub fn int<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    d.deserialize_any(IntVisitor(PhantomData))
}

struct IntVisitor<T>(PhantomData<T>);

impl<T> IntVisitor<T> {
    fn range<E: de::Error>(v: impl fmt::Display) -> E {
        E::custom(format_args!("{v} is out of range for this field"))
    }
}

impl<'de, T> Visitor<'de> for IntVisitor<T>
where
    T: TryFrom<i64> + TryFrom<u64>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer (a whole-valued float is accepted)")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::try_from(v).map_err(|_| Self::range(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| Self::range(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        // Exactly representable whole numbers only: the i64 range check keeps the cast lossless.
        if v.is_finite() && v.fract() == 0.0 && v >= -(2f64.powi(63)) && v < 2f64.powi(63) {
            self.visit_i64(v as i64)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
}

/// A whole number read through [`int`], for use inside containers.
struct Whole<T>(T);

impl<'de, T: TryFrom<i64> + TryFrom<u64>> serde::Deserialize<'de> for Whole<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        int(d).map(Whole)
    }
}

/// [`int`] for an optional field: `null` is `None` (use with `#[serde(default)]` for absent).
pub fn opt_int<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    <Option<Whole<T>> as serde::Deserialize>::deserialize(d).map(|o| o.map(|w| w.0))
}

/// [`int`] for every element of an array (`"lap": [3.0, 4]`).
pub fn vec_int<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    <Vec<Whole<T>> as serde::Deserialize>::deserialize(d).map(|v| v.into_iter().map(|w| w.0).collect())
}

/// A timestamp: RFC 3339 (what we write), or an ISO date-time with no offset (`T` or a space
/// between date and time, optional fractional seconds), which is taken as UTC.
pub fn timestamp<'de, D>(d: D) -> Result<DateTime<Utc>, D::Error>
where
    D: Deserializer<'de>,
{
    d.deserialize_str(TimestampVisitor)
}

/// Parses what [`timestamp`] accepts.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = s.parse::<DateTime<Utc>>() {
        return Some(t);
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|n| n.and_utc())
}

struct TimestampVisitor;

impl Visitor<'_> for TimestampVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an ISO 8601 / RFC 3339 timestamp")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_timestamp(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Ints {
        #[serde(deserialize_with = "int")]
        gear: i8,
        #[serde(deserialize_with = "int")]
        flags: u32,
    }

    #[derive(Deserialize)]
    struct Flat {
        #[serde(flatten)]
        inner: Ints,
        #[serde(deserialize_with = "timestamp")]
        t: DateTime<Utc>,
    }

    #[test]
    fn whole_floats_are_integers_others_are_refused() {
        let v: Ints = serde_json::from_str(r#"{"gear": 4.0, "flags": 7}"#).unwrap();
        assert_eq!((v.gear, v.flags), (4, 7));
        let v: Ints = serde_json::from_str(r#"{"gear": -1.0, "flags": 4e0}"#).unwrap();
        assert_eq!((v.gear, v.flags), (-1, 4));
        for bad in [
            r#"{"gear": 4.5, "flags": 0}"#,
            r#"{"gear": 300, "flags": 0}"#,
            r#"{"gear": 1, "flags": -1.0}"#,
            r#"{"gear": 1e300, "flags": 0}"#,
            r#"{"gear": "4", "flags": 0}"#,
        ] {
            assert!(serde_json::from_str::<Ints>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn through_flatten_too() {
        // Flattened structs are read from serde's buffered values, not from the JSON reader.
        let v: Flat =
            serde_json::from_str(r#"{"gear": 3.0, "flags": 1.0, "t": "2026-11-21T12:00:00"}"#).unwrap();
        assert_eq!(v.inner.gear, 3);
        assert_eq!(v.t.to_rfc3339(), "2026-11-21T12:00:00+00:00");
    }

    #[test]
    fn naive_timestamps_are_utc() {
        let utc = |s: &str| parse_timestamp(s).map(|t| t.to_rfc3339());
        assert_eq!(utc("2026-11-21T12:00:00Z").unwrap(), "2026-11-21T12:00:00+00:00");
        assert_eq!(utc("2026-11-21T13:00:00+01:00").unwrap(), "2026-11-21T12:00:00+00:00");
        assert_eq!(utc("2026-11-21T12:00:00").unwrap(), "2026-11-21T12:00:00+00:00");
        assert_eq!(utc("2026-11-21T12:00:00.250").unwrap(), "2026-11-21T12:00:00.250+00:00");
        assert_eq!(utc("2026-11-21 12:00:00.5").unwrap(), "2026-11-21T12:00:00.500+00:00");
        for bad in ["2026-11-21", "12:00:00", "2026-13-01T00:00:00", "yesterday", ""] {
            assert!(parse_timestamp(bad).is_none(), "{bad}");
        }
    }
}
