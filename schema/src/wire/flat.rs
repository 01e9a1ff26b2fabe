//! `#[serde(flatten)]` for decoding, without its buffer. serde's derived `flatten` first reads the
//! whole object into an in-memory tree (`Content`: every key and value allocated) and then reads
//! the inner struct again out of that tree, so every telemetry frame a node sends was decoded
//! twice. Here an outer type names its own fields ([`Own`]); [`split`] reads the object once,
//! takes those fields as they pass and hands every other key and value straight to the inner
//! type's derived `Deserialize`. The result is the same as the derive's (unknown keys go to the
//! inner type, which ignores them as before). Encoding keeps serde's `flatten`, which does not
//! buffer. Reads no env vars.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer, StrDeserializer};
use serde::de::{DeserializeSeed, Error, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// The fields of an outer type that are its own, taken from the object as they come.
pub(crate) trait Own<'de> {
    /// The own fields' keys, as they are written on the wire.
    const KEYS: &'static [&'static str];
    /// Reads the value of `KEYS[index]` from `map` into `self`.
    fn take<A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error>;
}

/// Reads one object as `own`'s fields plus an inner `T` made of all the other keys.
pub(crate) fn split<'de, A, T, O>(map: A, own: &mut O) -> Result<T, A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
    O: Own<'de>,
{
    T::deserialize(MapAccessDeserializer::new(Split { map, own }))
}

/// Deserializes one object as an outer type's own fields `O` (starting from `O::default()`) and
/// the inner `T` made of every other key; the outer type's `Deserialize` builds itself from both.
/// `expecting` names the object in type errors.
pub(crate) fn deserialize<'de, D, O, T>(d: D, expecting: &'static str) -> Result<(O, T), D::Error>
where
    D: Deserializer<'de>,
    O: Own<'de> + Default,
    T: Deserialize<'de>,
{
    struct Object<O, T>(&'static str, PhantomData<fn() -> (O, T)>);
    impl<'de, O: Own<'de> + Default, T: Deserialize<'de>> Visitor<'de> for Object<O, T> {
        type Value = (O, T);
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(O, T), A::Error> {
            let mut own = O::default();
            let inner = split(map, &mut own)?;
            Ok((own, inner))
        }
    }
    d.deserialize_map(Object(expecting, PhantomData))
}

/// The object as the inner type sees it: its own keys skipped (and taken).
struct Split<'o, A, O> {
    map: A,
    own: &'o mut O,
}

impl<'de, A, O> MapAccess<'de> for Split<'_, A, O>
where
    A: MapAccess<'de>,
    O: Own<'de>,
{
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        let mut seed = seed;
        loop {
            match self.map.next_key_seed(Peek { seed, keys: O::KEYS })? {
                None => return Ok(None),
                Some(Peeked::Inner(key)) => return Ok(Some(key)),
                Some(Peeked::Own(index, back)) => {
                    self.own.take(index, &mut self.map)?;
                    seed = back;
                }
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// A key as [`Split`] reads it: the inner type's (decoded by its own key seed), or one of the
/// outer type's own (its index, and the inner seed handed back for the next key).
enum Peeked<K, V> {
    Inner(V),
    Own(usize, K),
}

/// Reads a key, and decides whose it is without copying it.
struct Peek<K> {
    seed: K,
    keys: &'static [&'static str],
}

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for Peek<K> {
    type Value = Peeked<K, K::Value>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, K: DeserializeSeed<'de>> Visitor<'de> for Peek<K> {
    type Value = Peeked<K, K::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: Error>(self, key: &'de str) -> Result<Self::Value, E> {
        match self.keys.iter().position(|k| *k == key) {
            Some(index) => Ok(Peeked::Own(index, self.seed)),
            None => self.seed.deserialize(BorrowedStrDeserializer::new(key)).map(Peeked::Inner),
        }
    }

    fn visit_str<E: Error>(self, key: &str) -> Result<Self::Value, E> {
        match self.keys.iter().position(|k| *k == key) {
            Some(index) => Ok(Peeked::Own(index, self.seed)),
            None => self.seed.deserialize(StrDeserializer::new(key)).map(Peeked::Inner),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use chrono::{DateTime, Utc};
    use serde::Deserialize;
    use serde_json::json;

    use crate::wire::{Envelope, Message, TelemetryFrame, TelemetrySample, TelemetryUpdate};

    /// What serde's derive with `flatten` reads (the decoding these types had before): the
    /// reference the hand-written decoding must agree with.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Derived {
        #[serde(default, deserialize_with = "crate::wire::lenient::opt_int")]
        seq: Option<u64>,
        #[serde(deserialize_with = "crate::wire::lenient::timestamp")]
        timestamp: DateTime<Utc>,
        #[serde(flatten)]
        sample: TelemetrySample,
    }

    fn same(json: &serde_json::Value) {
        let text = json.to_string();
        let reference: Derived = serde_json::from_str(&text).unwrap();
        let want =
            TelemetryFrame { seq: reference.seq, timestamp: reference.timestamp, sample: reference.sample };
        assert_eq!(serde_json::from_str::<TelemetryFrame>(&text).unwrap(), want, "{text}");
        assert_eq!(serde_json::from_value::<TelemetryFrame>(json.clone()).unwrap(), want, "{text}");
    }

    #[test]
    fn a_frame_reads_as_the_derive_read_it() {
        let sample = json!({"speed": 200.5, "rpm": 7000, "gear": 4, "throttle": 90, "brake": 0,
            "steeringAngle": 1.5, "lap": 2, "trackPosition": 0.5, "fuelLevel": 30,
            "tireWear": {"frontLeft": 1, "frontRight": 1, "rearLeft": 1, "rearRight": 1}});
        let with = |extra: serde_json::Value| {
            let mut v = sample.clone();
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        same(&with(json!({"timestamp": "2026-11-21T12:00:00Z", "seq": 7})));
        // whole-number floats for seq, a null seq, no seq, the seed's timestamp forms
        same(&with(json!({"timestamp": "2026-11-21T12:00:00.250", "seq": 12.0})));
        same(&with(json!({"timestamp": "2026-11-21T12:00:00+02:00", "seq": null})));
        same(&with(json!({"timestamp": "2026-11-21 12:00:00"})));
        // unknown keys anywhere are ignored, as before
        same(&with(json!({"timestamp": "2026-11-21T12:00:00Z", "zzz": [1, {"a": 2}], "aaa": null})));

        let no_time = with(json!({"seq": 1})).to_string();
        let e = serde_json::from_str::<TelemetryFrame>(&no_time).unwrap_err().to_string();
        assert!(e.contains("missing field `timestamp`"), "{e}");
        let bad_seq = with(json!({"seq": 1.5, "timestamp": "2026-11-21T12:00:00Z"})).to_string();
        assert!(serde_json::from_str::<TelemetryFrame>(&bad_seq).is_err());
        let no_speed = json!({"timestamp": "2026-11-21T12:00:00Z"}).to_string();
        let e = serde_json::from_str::<TelemetryFrame>(&no_speed).unwrap_err().to_string();
        assert!(e.contains("missing field"), "{e}");
        assert!(serde_json::from_str::<TelemetryFrame>("[1, 2]").is_err());
    }

    #[test]
    fn an_envelope_reads_its_fields_in_any_order() {
        let data = json!({"driverId": "d-1", "timestamp": "2026-11-21T12:00:00Z", "seq": 3,
            "speed": 200.5, "rpm": 7000, "gear": 4, "throttle": 90, "brake": 0, "steeringAngle": 1.5,
            "lap": 2, "trackPosition": 0.5, "fuelLevel": 30});
        let orders = [
            format!(
                r#"{{"type":"telemetry_update","data":{data},"v":1,"id":"r1","to":"/teams/t","from":"/x","seq":9,"extra":true}}"#
            ),
            format!(
                r#"{{"seq":9,"extra":{{"a":[1]}},"from":"/x","data":{data},"to":"/teams/t","id":"r1","v":1,"type":"telemetry_update"}}"#
            ),
        ];
        for text in orders {
            for env in [
                serde_json::from_str::<Envelope>(&text).unwrap(),
                serde_json::from_value::<Envelope>(serde_json::from_str(&text).unwrap()).unwrap(),
            ] {
                assert_eq!(
                    (env.v, env.id.as_deref(), env.to.as_deref(), env.from.as_deref(), env.seq),
                    (Some(1), Some("r1"), Some("/teams/t"), Some("/x"), Some(9))
                );
                let Message::TelemetryUpdate(u) = env.message else { panic!("wrong variant") };
                let want: TelemetryUpdate = serde_json::from_value(data.clone()).unwrap();
                assert_eq!((u.driver_id.as_str(), u.frame.seq), ("d-1", Some(3)));
                assert_eq!(*u, want);
            }
        }
        // What is wrong is still said precisely.
        for (text, says) in [
            (r#"{"data":{}}"#, "missing field `type`"),
            (r#"{"type":"no_such","data":{}}"#, "unknown variant `no_such`"),
            (r#"{"type":"ack","data":{"driverId":"d"}}"#, "missing field `seq`"),
            (r#"{"type":"ack","id":7,"data":{"driverId":"d","seq":1}}"#, "invalid type"),
            (r#""ack""#, "an object with `type` and `data`"),
        ] {
            let e = serde_json::from_str::<Envelope>(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
        // And it encodes as it decodes.
        let env = Envelope {
            id: Some("r2".into()),
            seq: Some(4),
            ..Envelope::new(Message::Ack(crate::wire::Ack { driver_id: "d".into(), stream_id: None, seq: 5 }))
        };
        let back: Envelope = serde_json::from_str(&serde_json::to_string(&env).unwrap()).unwrap();
        assert_eq!(back, env);
    }
}
