//! Telemetry as it travels: one sample of the car's channels, a numbered frame, updates and batches.
//!
//! Units follow the original PitBox `TelemetrySnapshot` where it defined them (speed km/h, pedals
//! 0–100 %, steering degrees with negative = left, `trackPosition` 0–1); where it did not, iRacing's
//! units are kept (fuel litres, fuel use kg/h, tyre temperatures °C, times in seconds).
//! Only fixed-width numbers are used so that native and wasm32 builds agree on every field.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Four values, one per tyre (wear in % remaining, or temperatures in °C).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TireSet {
    pub front_left: f32,
    pub front_right: f32,
    pub rear_left: f32,
    pub rear_right: f32,
}

/// The per-car arrays of iRacing (`CarIdx…`), indexed by car index, so a dashboard can draw every car
/// on the track map and show competitors. All arrays have the same length.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CarArrays {
    /// `CarIdxLap`: lap each car is on (-1 when the car is not in the world).
    #[serde(deserialize_with = "super::lenient::vec_int")]
    pub lap: Vec<i32>,
    /// `CarIdxLapDistPct`: 0–1 around the lap (negative when unknown).
    pub lap_dist_pct: Vec<f32>,
    /// `CarIdxPosition`: overall position (0 when not classified).
    #[serde(deserialize_with = "super::lenient::vec_int")]
    pub position: Vec<i32>,
    /// `CarIdxOnPitRoad`.
    pub on_pit_road: Vec<bool>,
}

impl CarArrays {
    /// Whether all arrays describe the same number of cars.
    pub fn is_consistent(&self) -> bool {
        let n = self.lap.len();
        self.lap_dist_pct.len() == n && self.position.len() == n && self.on_pit_road.len() == n
    }
}

/// The channels of one telemetry sample (60 Hz from the sim). The timestamp and sequence number
/// live in [`TelemetryFrame`], so REST bodies can carry a bare sample as their `data`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TelemetrySample {
    /// `SessionTime`, seconds since the sim session started.
    #[serde(default)]
    pub session_time: f64,
    /// km/h.
    pub speed: f32,
    pub rpm: f32,
    /// -1 reverse, 0 neutral, 1+ forward gears.
    #[serde(deserialize_with = "super::lenient::int")]
    pub gear: i8,
    /// 0–100 %.
    pub throttle: f32,
    /// 0–100 %.
    pub brake: f32,
    /// 0–100 % (100 = pedal fully pressed, clutch disengaged).
    #[serde(default)]
    pub clutch: f32,
    /// Degrees, negative = left.
    pub steering_angle: f32,
    /// Lap the car is on (`Lap`).
    #[serde(deserialize_with = "super::lenient::int")]
    pub lap: i32,
    /// 0–1 around the lap (`LapDistPct`); the seed protocol's `trackPosition`.
    pub track_position: f32,
    /// 1-based sector the car is in, 0 when unknown.
    #[serde(default, deserialize_with = "super::lenient::int")]
    pub sector: u8,
    /// Overall position, 0 when not classified.
    #[serde(default, deserialize_with = "super::lenient::int")]
    pub position: i32,
    /// Litres in the tank.
    pub fuel_level: f32,
    /// 0–100 % of tank capacity.
    #[serde(default)]
    pub fuel_level_pct: f32,
    /// kg/h.
    #[serde(default)]
    pub fuel_use_per_hour: f32,
    /// % tread remaining per tyre, when the sim publishes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tire_wear: Option<TireSet>,
    /// Surface temperature per tyre (°C), when published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tire_temps: Option<TireSet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    #[serde(default)]
    pub on_pit_road: bool,
    /// `PlayerTrackSurface`: -1 not in the world, 0 off track, 1 in the pit stall, 2 pit lane
    /// (approaching or leaving the pits), 3 on track; when the sim publishes it.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::lenient::opt_int")]
    pub track_surface: Option<i8>,
    /// `PlayerCarMyIncidentCount`: the driver's incidents so far in the session, when published.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::lenient::opt_int")]
    pub incidents: Option<i32>,
    /// iRacing `SessionFlags` bit field (green, yellow, checkered, …).
    #[serde(default, deserialize_with = "super::lenient::int")]
    pub flags: u32,
    /// Seconds; `None` before the first timed lap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_lap_time: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_lap_time: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cars: Option<CarArrays>,
}

/// Why a sample was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleError {
    pub field: &'static str,
    pub problem: &'static str,
}

impl core::fmt::Display for SampleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl TelemetrySample {
    /// Checks the ranges a real car can produce. JSON cannot carry NaN, but other encoders can,
    /// and a NaN stored in a lap would poison every average computed from it.
    pub fn validate(&self) -> Result<(), SampleError> {
        fn finite(field: &'static str, v: f64) -> Result<(), SampleError> {
            if v.is_finite() {
                Ok(())
            } else {
                Err(SampleError { field, problem: "must be a finite number" })
            }
        }
        fn range(field: &'static str, v: f32, lo: f32, hi: f32) -> Result<(), SampleError> {
            finite(field, f64::from(v))?;
            if v < lo || v > hi {
                return Err(SampleError { field, problem: "out of range" });
            }
            Ok(())
        }
        finite("sessionTime", self.session_time)?;
        range("speed", self.speed, 0.0, 1000.0)?;
        range("rpm", self.rpm, 0.0, 30000.0)?;
        range("throttle", self.throttle, 0.0, 100.0)?;
        range("brake", self.brake, 0.0, 100.0)?;
        range("clutch", self.clutch, 0.0, 100.0)?;
        range("steeringAngle", self.steering_angle, -3600.0, 3600.0)?;
        range("trackPosition", self.track_position, -1.0, 1.0)?;
        range("fuelLevel", self.fuel_level, 0.0, 10000.0)?;
        range("fuelLevelPct", self.fuel_level_pct, 0.0, 100.0)?;
        range("fuelUsePerHour", self.fuel_use_per_hour, 0.0, 10000.0)?;
        if self.track_surface.is_some_and(|v| !(-1..=3).contains(&v)) {
            return Err(SampleError { field: "trackSurface", problem: "must be -1 to 3" });
        }
        if self.incidents.is_some_and(|v| v < 0) {
            return Err(SampleError { field: "incidents", problem: "must be 0 or more" });
        }
        if self.gear < -1 {
            return Err(SampleError { field: "gear", problem: "must be -1 or more" });
        }
        for (field, v) in [("latitude", self.latitude), ("longitude", self.longitude)] {
            if let Some(v) = v {
                finite(field, v)?;
            }
        }
        // Single-precision channels: a JSON number beyond f32's range would be stored as infinity
        // and come back as `null`.
        for (field, set) in [("tireWear", &self.tire_wear), ("tireTemps", &self.tire_temps)] {
            if let Some(s) = set {
                for v in [s.front_left, s.front_right, s.rear_left, s.rear_right] {
                    finite(field, f64::from(v))?;
                }
            }
        }
        for (field, v) in [("lastLapTime", self.last_lap_time), ("bestLapTime", self.best_lap_time)] {
            if let Some(v) = v {
                finite(field, f64::from(v))?;
            }
        }
        if let Some(cars) = &self.cars {
            for v in &cars.lap_dist_pct {
                finite("cars.lapDistPct", f64::from(*v))?;
            }
            if !cars.is_consistent() {
                return Err(SampleError { field: "cars", problem: "arrays differ in length" });
            }
            for &v in &cars.lap_dist_pct {
                finite("cars.lapDistPct", f64::from(v))?;
            }
        }
        Ok(())
    }
}

// Decoded by hand below, without serde's buffering `flatten` (see `super::flat`).
/// A sample with its time and, from a driver node, its sequence number in the node's stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TelemetryFrame {
    /// Whole numbers written as `12.0` are taken too (JSON Schema's integers include them).
    #[serde(default, deserialize_with = "super::lenient::opt_int", skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(deserialize_with = "super::lenient::timestamp")]
    pub timestamp: DateTime<Utc>,
    #[serde(flatten)]
    pub sample: TelemetrySample,
}

// Decoded by hand below, like `TelemetryFrame`.
/// The seed protocol's `telemetry_update`: `{driverId, timestamp, speed, …}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TelemetryUpdate {
    pub driver_id: String,
    #[serde(flatten)]
    pub frame: TelemetryFrame,
}

/// A frame's own fields; the rest of the object is its [`TelemetrySample`].
#[derive(Default)]
struct FrameOwn {
    seq: Option<u64>,
    timestamp: Option<DateTime<Utc>>,
}

/// `seq` and `timestamp` as [`TelemetryFrame`] reads them (whole-number floats and the seed's
/// timestamp forms taken).
#[derive(Deserialize)]
#[serde(transparent)]
struct LenientSeq(#[serde(deserialize_with = "super::lenient::opt_int")] Option<u64>);
#[derive(Deserialize)]
#[serde(transparent)]
struct LenientTime(#[serde(deserialize_with = "super::lenient::timestamp")] DateTime<Utc>);

impl<'de> super::flat::Own<'de> for FrameOwn {
    const KEYS: &'static [&'static str] = &["seq", "timestamp"];
    fn take<A: serde::de::MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error> {
        if index == 0 {
            self.seq = map.next_value::<Option<LenientSeq>>()?.and_then(|s| s.0);
        } else {
            self.timestamp = Some(map.next_value::<LenientTime>()?.0);
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for TelemetryFrame {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (own, sample): (FrameOwn, TelemetrySample) =
            super::flat::deserialize(d, "a telemetry frame (an object)")?;
        let timestamp = own.timestamp.ok_or_else(|| serde::de::Error::missing_field("timestamp"))?;
        Ok(Self { seq: own.seq, timestamp, sample })
    }
}

/// An update's own field; the rest of the object is its [`TelemetryFrame`].
#[derive(Default)]
struct UpdateOwn {
    driver_id: Option<String>,
}

impl<'de> super::flat::Own<'de> for UpdateOwn {
    const KEYS: &'static [&'static str] = &["driverId"];
    fn take<A: serde::de::MapAccess<'de>>(&mut self, _: usize, map: &mut A) -> Result<(), A::Error> {
        self.driver_id = Some(map.next_value()?);
        Ok(())
    }
}

impl<'de> Deserialize<'de> for TelemetryUpdate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (own, frame): (UpdateOwn, TelemetryFrame) =
            super::flat::deserialize(d, "a telemetry update (an object)")?;
        let driver_id = own.driver_id.ok_or_else(|| serde::de::Error::missing_field("driverId"))?;
        Ok(Self { driver_id, frame })
    }
}

impl TelemetryFrame {
    /// The frame's JSON with `seq` set, from its JSON without one (as a driver node spools it):
    /// the same text as encoding the frame with its sequence number, without decoding it.
    pub fn json_with_seq(seq: u64, unnumbered: &str) -> serde_json::Result<Box<RawValue>> {
        #[derive(Serialize)]
        struct Head {
            seq: u64,
        }
        prepend_fields(&Head { seq }, unnumbered)
    }
}

impl TelemetryUpdate {
    /// The update's JSON, given its sample already encoded (`sample_json`, as
    /// `serde_json::to_string(&self.frame.sample)` writes it): the same text as encoding the
    /// update, while the sample's channels are encoded only once.
    pub fn json_with_sample(&self, sample_json: &str) -> serde_json::Result<Box<RawValue>> {
        // The fields `TelemetryUpdate` writes before the flattened sample, in its order.
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Head<'a> {
            driver_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            seq: Option<u64>,
            timestamp: &'a DateTime<Utc>,
        }
        let head = Head { driver_id: &self.driver_id, seq: self.frame.seq, timestamp: &self.frame.timestamp };
        prepend_fields(&head, sample_json)
    }
}

/// The JSON object holding `head`'s fields, then those of `tail` (a JSON object's text): what
/// serde_json writes for one struct with both, in that order. `head` must hold none of `tail`'s
/// keys. The result is checked to be JSON, so a damaged `tail` is an error here, not on the wire.
fn prepend_fields<H: Serialize>(head: &H, tail: &str) -> serde_json::Result<Box<RawValue>> {
    use serde::ser::Error;
    let mut out = serde_json::to_string(head)?;
    let body =
        tail.trim_start().strip_prefix('{').ok_or_else(|| serde_json::Error::custom("not a JSON object"))?;
    if !out.ends_with('}') {
        return Err(serde_json::Error::custom("not a JSON object"));
    }
    out.pop();
    if out.len() > 1 && !body.trim_start().starts_with('}') {
        out.push(',');
    }
    out.push_str(body);
    RawValue::from_string(out)
}

/// A `telemetry_batch` message (the text of `Envelope::new(Message::TelemetryBatch(..))`) written
/// around frames already encoded as JSON, so a driver node sends its spooled frames without
/// decoding and encoding them again.
pub fn telemetry_batch_json(
    driver_id: &str,
    stream_id: Option<&str>,
    frames: &[Box<RawValue>],
) -> serde_json::Result<String> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Batch<'a> {
        driver_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        stream_id: Option<&'a str>,
        frames: &'a [Box<RawValue>],
    }
    #[derive(Serialize)]
    #[serde(tag = "type", content = "data", rename_all = "snake_case")]
    enum Message<'a> {
        TelemetryBatch(Batch<'a>),
    }
    serde_json::to_string(&Message::TelemetryBatch(Batch { driver_id, stream_id, frames }))
}

/// Several frames of one driver in one message (a node sends small batches; the runtime
/// acknowledges the highest stored sequence number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TelemetryBatch {
    pub driver_id: String,
    /// Identifies the node's stream; sequence numbers are unique within it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    pub frames: Vec<TelemetryFrame>,
}

/// `POST /api/telemetry` body, the seed shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TelemetryPost {
    pub driver_id: String,
    #[serde(deserialize_with = "super::lenient::timestamp")]
    pub timestamp: DateTime<Utc>,
    pub data: TelemetrySample,
}

/// `POST /api/telemetry` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TelemetryPostResult {
    pub success: bool,
    pub id: String,
    /// The lap this sample completed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lap_completed: Option<super::LapSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Envelope, Message};

    fn frames() -> Vec<TelemetryFrame> {
        let full = TelemetrySample {
            session_time: 1234.0 + 1e-7,
            speed: 187.3,
            rpm: 7123.5,
            gear: 4,
            throttle: 99.9,
            brake: 0.0,
            steering_angle: -12.25,
            lap: 7,
            track_position: 0.123_456_8,
            sector: 2,
            position: 3,
            fuel_level: 41.7,
            tire_wear: Some(TireSet {
                front_left: 97.5,
                front_right: 96.0,
                rear_left: 98.25,
                rear_right: 97.0,
            }),
            tire_temps: Some(TireSet {
                front_left: 88.0,
                front_right: 91.5,
                rear_left: 84.0,
                rear_right: 86.0,
            }),
            latitude: Some(51.5 + 1e-10),
            longitude: Some(-0.1),
            track_surface: Some(3),
            incidents: Some(2),
            last_lap_time: Some(92.345),
            best_lap_time: Some(91.2),
            cars: Some(CarArrays {
                lap: vec![7, -1],
                lap_dist_pct: vec![0.5, -1.0],
                position: vec![3, 0],
                on_pit_road: vec![false, true],
            }),
            ..TelemetrySample::default()
        };
        let t = "2026-03-01T12:00:00.016666Z".parse().unwrap();
        vec![
            TelemetryFrame { seq: None, timestamp: t, sample: full },
            TelemetryFrame { seq: None, timestamp: t, sample: TelemetrySample::default() },
        ]
    }

    #[test]
    fn a_frame_numbered_by_splicing_reads_as_if_encoded_whole() {
        for mut f in frames() {
            let unnumbered = serde_json::to_string(&f).unwrap();
            let spliced = TelemetryFrame::json_with_seq(42, &unnumbered).unwrap();
            f.seq = Some(42);
            assert_eq!(spliced.get(), serde_json::to_string(&f).unwrap());
        }
        assert!(TelemetryFrame::json_with_seq(1, "[1]").is_err());
        assert!(TelemetryFrame::json_with_seq(1, "{\"speed\":").is_err(), "a torn row is refused");
    }

    #[test]
    fn an_update_from_its_encoded_sample_is_the_update_encoded_whole() {
        for (i, mut frame) in frames().into_iter().enumerate() {
            frame.seq = (i == 0).then_some(9);
            let update = TelemetryUpdate { driver_id: "driver \"1\" é".into(), frame };
            let sample = serde_json::to_string(&update.frame.sample).unwrap();
            let spliced = update.json_with_sample(&sample).unwrap();
            assert_eq!(spliced.get(), serde_json::to_string(&update).unwrap());
        }
    }

    #[test]
    fn a_batch_around_raw_frames_is_the_typed_batch() {
        let mut typed = frames();
        for (i, f) in typed.iter_mut().enumerate() {
            f.seq = Some(i as u64 + 1);
        }
        let raw: Vec<Box<RawValue>> =
            typed.iter().map(|f| serde_json::value::to_raw_value(f).unwrap()).collect();
        for stream in [Some("s-1"), None] {
            let text = telemetry_batch_json("d1", stream, &raw).unwrap();
            let env = Envelope::new(Message::TelemetryBatch(TelemetryBatch {
                driver_id: "d1".into(),
                stream_id: stream.map(str::to_owned),
                frames: typed.clone(),
            }));
            assert_eq!(text, serde_json::to_string(&env).unwrap());
        }
    }
}
