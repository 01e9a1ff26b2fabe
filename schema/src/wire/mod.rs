//! The PitBox protocol: every type that crosses the wire between the runtime, driver nodes and
//! dashboards (WebSocket envelopes and REST bodies). serde only, so it builds for wasm32 without
//! diesel or actix. Field names follow the original PitBox documents (camelCase JSON).

mod admin;
mod coaching;
mod envelope;
mod flat;
mod inbound;
pub mod lenient;
pub mod media;
mod path;
mod rest;
mod rules;
mod telemetry;
mod voice;

pub use admin::*;
pub use coaching::*;
pub use envelope::*;
pub use inbound::*;
pub use media::{VideoAction, VideoControl, VideoWatching, WatchVideo};
pub use path::*;
pub use rest::*;
pub use rules::*;
pub use telemetry::*;
pub use voice::*;

/// Version of the protocol spoken by this build; sent in `connection_established`.
pub const PROTOCOL_VERSION: u16 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticate_does_not_print_its_token() {
        let a = Authenticate {
            token: "secret-token".into(),
            client_type: ClientType::Dashboard,
            version: "1".into(),
            track: None,
            car: None,
            session_type: None,
        };
        assert!(!format!("{a:?}").contains("secret-token"));
    }

    #[test]
    fn envelope_keeps_the_seed_shape() {
        let json = r#"{"type":"authenticate","data":{"token":"t","clientType":"dashboard","version":"1"},"id":"r1"}"#;
        let env: Envelope = serde_json::from_str(json).unwrap();
        assert_eq!(env.id.as_deref(), Some("r1"));
        assert!(
            matches!(env.message, Message::Authenticate(ref a) if a.client_type == ClientType::Dashboard)
        );
        let back = serde_json::to_value(&env).unwrap();
        assert_eq!(back["type"], "authenticate");
        assert_eq!(back["data"]["clientType"], "dashboard");
    }

    #[test]
    fn every_listed_type_is_a_variant() {
        // Each name must fail on its data, not on an unknown variant.
        for t in Message::TYPES {
            let e = serde_json::from_str::<Envelope>(&format!(r#"{{"type":"{t}","data":{{"bogus":1}}}}"#));
            if let Err(e) = e {
                assert!(!e.to_string().contains("unknown variant"), "{t}: {e}");
            }
        }
    }

    #[test]
    fn telemetry_update_is_flat() {
        let json = r#"{"type":"telemetry_update","data":{"driverId":"d","timestamp":"2026-11-21T12:00:00Z","seq":4,
            "speed":200.0,"rpm":7000,"gear":4,"throttle":90,"brake":0,"steeringAngle":1.5,"lap":2,
            "trackPosition":0.5,"fuelLevel":30}}"#;
        let env: Envelope = serde_json::from_str(json).unwrap();
        let Message::TelemetryUpdate(u) = env.message else { panic!("wrong variant") };
        assert_eq!(u.frame.seq, Some(4));
        assert_eq!(u.frame.sample.gear, 4);
        assert!(u.frame.sample.validate().is_ok());
    }

    /// Found by the `ws_decode` fuzz target: numbers beyond f32 (`1e39`) decode to infinity, which
    /// serialises as `null`; every float channel must refuse them, not only the ranged ones.
    #[test]
    fn floats_beyond_f32_are_refused_in_every_channel() {
        let base = r#""driverId":"d","timestamp":"2026-11-21T12:00:00Z","speed":200.0,"gear":4,
            "throttle":90,"brake":0,"steeringAngle":1.5,"lap":2,"trackPosition":0.5,"fuelLevel":30"#;
        for (extra, field) in [
            (r#""rpm":712222222222222222222222222222222222222222222222222"#, "rpm"),
            (r#""tireWear":{"frontLeft":1e39,"frontRight":1,"rearLeft":1,"rearRight":1}"#, "tireWear"),
            (r#""tireTemps":{"frontLeft":1,"frontRight":1,"rearLeft":1,"rearRight":-1e39}"#, "tireTemps"),
            (r#""lastLapTime":1e39"#, "lastLapTime"),
            (r#""bestLapTime":-1e40"#, "bestLapTime"),
            (
                r#""cars":{"lap":[1],"lapDistPct":[1e39],"position":[1],"onPitRoad":[false]}"#,
                "cars.lapDistPct",
            ),
        ] {
            let rpm = if field == "rpm" { "" } else { r#""rpm":7000,"# };
            let json = format!(r#"{{"type":"telemetry_update","data":{{{base},{rpm}{extra}}}}}"#);
            // Decoded in one pass, an f32 channel is parsed as an f32 and a number beyond it is
            // refused by the decoder itself; through a buffered copy (serde's `flatten`) it became
            // infinity, which only the validation below caught. Either way it never gets in.
            let env: Envelope = match serde_json::from_str(&json) {
                Ok(env) => env,
                Err(e) => {
                    assert!(e.to_string().contains("number out of range"), "{field}: {e}");
                    continue;
                }
            };
            let Message::TelemetryUpdate(u) = env.message else { panic!("wrong variant") };
            let e = u.frame.sample.validate().unwrap_err();
            assert_eq!(e.field, field, "{extra}");
        }
    }
}
