//! Team corner names from TOML, the speakable text of findings, and the seed shapes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{drive, test_track, Fault, LapPlan};
use pitbox_coach::{
    ai_coaching, analyze_response, parse_turns, spoken_tip, Coach, CoachConfig, CornerFault, CornerMap,
    Finding, Issue, Pattern, Subject,
};
use pitbox_schema::wire::MessagePriority;

#[test]
fn the_seed_example_reads_as_written() {
    let f = Finding {
        lap: 7,
        subject: Subject::Corner { number: 3, name: "T3".to_owned() },
        issue: Issue::Corner { fault: CornerFault::BrakedEarly { metres: 14.2 } },
        time_gained_s: Some(-0.2071),
        pattern: Some(Pattern { count: 4, of: 6 }),
        priority: MessagePriority::Normal,
    };
    assert_eq!(f.text(), "T3: −0.21 s, braked 14 m early (4 of the last 6 laps)");
    assert_eq!(f.suggestion().as_deref(), Some("T3: brake 14 m later"));
    assert_eq!(f.topic(), "T3/brakedEarly");
    // A pattern of one lap is not a pattern.
    let once = Finding { pattern: Some(Pattern { count: 1, of: 1 }), ..f };
    assert_eq!(once.text(), "T3: −0.21 s, braked 14 m early");
}

#[test]
fn turns_toml_names_corners_and_bad_files_are_refused() {
    let turns = parse_turns(
        r#"turns = [
            { name = "Hairpin", start = 0.15, end = 0.25 },
            { name = "Esses", start = 0.5, end = 0.56 },
        ]"#,
    )
    .unwrap();
    assert_eq!(turns.len(), 2);
    assert!(parse_turns("turns = [{ name = \"X\", start = 0.5, end = 1.5 }]").is_err());
    assert!(parse_turns("turns = [{ name = \"\", start = 0.1, end = 0.2 }]").is_err());
    assert!(parse_turns("corners = []").is_err());

    // Names follow the corners; numbers do not change.
    let track = test_track();
    let frames = drive(
        &track,
        &[
            LapPlan::default(),
            LapPlan { faults: vec![Fault::BrakeEarly { corner: 1, metres: 20.0 }], ..LapPlan::default() },
        ],
        60.0,
        0.0,
    );
    let config =
        CoachConfig { track_length_m: Some(track.length()), turns: turns.clone(), ..CoachConfig::default() };
    let mut coach = Coach::new(config);
    coach.add_lap(&frames[0], None, None).unwrap();
    let map = coach.map().unwrap();
    assert_eq!(map.corners[0].name, "Hairpin");
    assert_eq!(map.corners[0].number, 1);
    assert_eq!(map.corners[1].name, "T2");
    let report = coach.add_lap(&frames[1], None, None).unwrap();
    let tip = spoken_tip(&report).unwrap();
    assert!(tip.starts_with("Hairpin: −0."), "{tip}");

    // A map made of the team's turns, with one across the line.
    let across = parse_turns("turns = [{ name = \"Last\", start = 0.95, end = 0.03 }, { name = \"First\", start = 0.2, end = 0.3 }]").unwrap();
    let map = CornerMap::from_turns(&across, 1000.0);
    assert_eq!(map.corners.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), vec!["First", "Last"]);
    let segs = map.segments();
    assert_eq!((segs[0].start, segs[0].end), (0.0, 0.03));
    assert_eq!(segs.last().unwrap().end, 1.0);
    for w in segs.windows(2) {
        assert_eq!(w[0].end, w[1].start);
    }
}

#[test]
fn ai_coaching_and_analyze_keep_the_seed_shapes() {
    let track = test_track();
    let plans = [
        LapPlan::default(),
        LapPlan { faults: vec![Fault::BrakeEarly { corner: 3, metres: 20.0 }], ..LapPlan::default() },
    ];
    let frames = drive(&track, &plans, 60.0, 0.0);
    let mut coach =
        Coach::new(CoachConfig { track_length_m: Some(track.length()), ..CoachConfig::default() });
    coach.add_lap(&frames[0], None, None).unwrap();
    let report = coach.add_lap(&frames[1], None, None).unwrap();
    let ts =
        chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let msg = serde_json::to_value(ai_coaching(&report, Some("driver-1".to_owned()), ts)).unwrap();
    println!("{}", serde_json::to_string_pretty(&msg).unwrap());
    let feedback = msg["feedback"].as_str().unwrap();
    assert!(feedback.starts_with("T3: −0."), "{feedback}");
    assert!(msg["confidence"].as_f64().unwrap() > 0.0);
    assert!(["low", "normal", "high", "urgent"].contains(&msg["priority"].as_str().unwrap()));
    assert_eq!(msg["timestamp"], "2026-11-30T10:00:00Z");
    let weaknesses = msg["telemetryAnalysis"]["weaknesses"].as_array().unwrap();
    assert!(weaknesses[0].as_str().unwrap().contains("braked"));
    assert!(msg["telemetryAnalysis"]["strengths"].is_array());
    assert!(msg["telemetryAnalysis"]["improvementAreas"].is_array());

    let answer = serde_json::to_value(analyze_response(&report)).unwrap();
    assert_eq!(answer["feedback"], msg["feedback"]);
    assert!(answer["suggestions"][0].as_str().unwrap().starts_with("T3: brake 2"), "{answer}");
    // The report itself is JSON for the API and the dashboard.
    let r = serde_json::to_value(&report).unwrap();
    assert!(r["comparison"]["corners"][2]["brakingPointDiffM"].as_f64().unwrap() < -17.0);
}
