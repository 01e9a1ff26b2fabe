//! How numbers look on the pit wall: lap times, deltas, gears, fuel. Pure functions (unit-tested
//! natively). Reads no env vars.

/// `83.456` → `1:23.456`; `None` or a non-positive time → `–`.
pub fn lap_time(secs: Option<f64>) -> String {
    match secs {
        Some(s) if s.is_finite() && s > 0.0 => {
            // Round once to milliseconds so 59.9996 becomes 1:00.000, not 0:60.000.
            let ms = (s * 1000.0).round() as u64;
            let (m, rest) = (ms / 60_000, ms % 60_000);
            format!("{m}:{:02}.{:03}", rest / 1000, rest % 1000)
        }
        _ => "–".to_owned(),
    }
}

/// A lap's number, with `out` / `in` for out-laps and in-laps.
pub fn lap_label(lap: &pitbox_schema::wire::LapSummary) -> String {
    match lap.kind {
        pitbox_schema::wire::LapKind::Flying => lap.lap_number.to_string(),
        pitbox_schema::wire::LapKind::OutLap => format!("{} out", lap.lap_number),
        pitbox_schema::wire::LapKind::InLap => format!("{} in", lap.lap_number),
    }
}

/// Whether a lap counts: `✓`, or `✗` with the reasons found in its data.
pub fn lap_validity(lap: &pitbox_schema::wire::LapSummary) -> String {
    if lap.valid {
        return "✓".to_owned();
    }
    let reasons: Vec<&str> = lap.invalid_reasons.iter().map(|r| r.label()).collect();
    if reasons.is_empty() {
        "✗".to_owned()
    } else {
        format!("✗ {}", reasons.join(", "))
    }
}

/// A time difference with its sign: `+0.123`, `-1.050`; `–` when unknown.
pub fn delta(secs: Option<f64>) -> String {
    match secs {
        Some(s) if s.is_finite() => {
            let ms = (s * 1000.0).round() / 1000.0;
            if ms > 0.0 {
                format!("+{ms:.3}")
            } else if ms < 0.0 {
                format!("{ms:.3}")
            } else {
                "±0.000".to_owned()
            }
        }
        _ => "–".to_owned(),
    }
}

/// CSS class of a delta: faster (negative) is good.
pub fn delta_class(secs: Option<f64>) -> &'static str {
    match secs {
        Some(s) if s < -0.0005 => "faster",
        Some(s) if s > 0.0005 => "slower",
        _ => "even",
    }
}

/// iRacing's gear numbers as a driver reads them.
pub fn gear(g: i8) -> String {
    match g {
        -1 => "R".to_owned(),
        0 => "N".to_owned(),
        g => g.to_string(),
    }
}

/// `12.3 L`.
pub fn litres(l: f32) -> String {
    format!("{l:.1} L")
}

/// Laps of fuel left, one decimal, `–` when unknown.
pub fn laps_left(laps: Option<f64>) -> String {
    match laps {
        Some(l) if l.is_finite() && l >= 0.0 => format!("{l:.1}"),
        _ => "–".to_owned(),
    }
}

/// Position `P3`, or `–` when not classified.
pub fn position(p: i32) -> String {
    if p > 0 {
        format!("P{p}")
    } else {
        "–".to_owned()
    }
}

/// Age of a sample for the "last seen" column: `now`, `4 s`, `3 min`.
pub fn age(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return "–".to_owned();
    }
    let s = ms / 1000.0;
    if s < 1.0 {
        "now".to_owned()
    } else if s < 120.0 {
        format!("{} s", s.floor() as u64)
    } else {
        format!("{} min", (s / 60.0).floor() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lap_labels_and_validity() {
        let mut lap: pitbox_schema::wire::LapSummary = serde_json::from_value(serde_json::json!({
            "id": "l", "sessionId": "s", "driverId": "d", "lapNumber": 7, "lapTime": 25.914499282836914,
            "valid": false, "kind": "outLap", "invalidReasons": ["pitRoad", "offTrack"],
            "sectorTimes": [], "sampleCount": 1, "completedAt": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(lap_label(&lap), "7 out");
        assert_eq!(lap_validity(&lap), "✗ pit road, off track");
        assert_eq!(lap_time(Some(lap.lap_time)), "0:25.914");
        lap.valid = true;
        lap.kind = pitbox_schema::wire::LapKind::Flying;
        assert_eq!((lap_label(&lap).as_str(), lap_validity(&lap).as_str()), ("7", "✓"));
    }

    #[test]
    fn lap_times() {
        assert_eq!(lap_time(Some(83.456)), "1:23.456");
        assert_eq!(lap_time(Some(59.9996)), "1:00.000");
        assert_eq!(lap_time(Some(9.5)), "0:09.500");
        assert_eq!(lap_time(Some(0.0)), "–");
        assert_eq!(lap_time(Some(f64::NAN)), "–");
        assert_eq!(lap_time(None), "–");
    }

    #[test]
    fn deltas() {
        assert_eq!(delta(Some(0.1234)), "+0.123");
        assert_eq!(delta(Some(-1.05)), "-1.050");
        assert_eq!(delta(Some(0.0002)), "±0.000");
        assert_eq!(delta(None), "–");
        assert_eq!(delta_class(Some(-0.2)), "faster");
        assert_eq!(delta_class(Some(0.2)), "slower");
        assert_eq!(delta_class(Some(0.0)), "even");
    }

    #[test]
    fn small_things() {
        assert_eq!(gear(-1), "R");
        assert_eq!(gear(0), "N");
        assert_eq!(gear(4), "4");
        assert_eq!(position(0), "–");
        assert_eq!(position(3), "P3");
        assert_eq!(laps_left(Some(7.26)), "7.3");
        assert_eq!(laps_left(None), "–");
        assert_eq!(age(400.0), "now");
        assert_eq!(age(4_200.0), "4 s");
        assert_eq!(age(200_000.0), "3 min");
    }
}
