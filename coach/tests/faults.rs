//! Synthetic laps with injected faults: the engine names the right corner and fault, measures
//! the braking point within 3 m, counts patterns, keeps bad laps from the reference, leaves
//! traffic unblamed and raises the fuel alarm.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{drive, test_track, Fault, LapPlan};
use pitbox_coach::{
    compare, Coach, CoachConfig, CornerFault, CornerMap, Issue, LapReport, LapTrace, LearnOptions,
    MetricOptions, Remaining, SegmentId, Subject,
};
use pitbox_schema::wire::MessagePriority;

fn traces(plans: &[LapPlan]) -> Vec<LapTrace> {
    let track = test_track();
    drive(&track, plans, 60.0, 0.0)
        .iter()
        .map(|f| LapTrace::from_frames(f, Some(track.length())).unwrap())
        .collect()
}

fn clean() -> LapPlan {
    LapPlan::default()
}

fn with(fault: Fault) -> LapPlan {
    LapPlan { faults: vec![fault], ..LapPlan::default() }
}

/// Runs the coach over the laps; returns every lap's report.
fn coach_run(plans: &[LapPlan], config: CoachConfig) -> (Coach, Vec<LapReport>) {
    let track = test_track();
    let mut coach = Coach::new(CoachConfig { track_length_m: Some(track.length()), ..config });
    let reports =
        drive(&track, plans, 60.0, 0.0).iter().map(|f| coach.add_lap(f, None, None).unwrap()).collect();
    (coach, reports)
}

/// The corner faults of a report: (corner number, fault).
fn corner_faults(r: &LapReport) -> Vec<(u32, CornerFault)> {
    r.findings
        .iter()
        .filter_map(|f| match (&f.subject, &f.issue) {
            (Subject::Corner { number, .. }, Issue::Corner { fault }) => Some((*number, *fault)),
            _ => None,
        })
        .collect()
}

#[test]
fn corners_of_the_test_track_are_where_the_track_has_them() {
    let track = test_track();
    let t = traces(&[clean()]);
    let map = CornerMap::learn(&t[0], &LearnOptions::default());
    let truth = track.corners();
    assert_eq!(map.corners.len(), truth.len(), "{:#?}", map.corners);
    for (c, (s, e)) in map.corners.iter().zip(truth) {
        let apex_m = c.apex * track.length();
        assert!(apex_m >= s - 5.0 && apex_m <= e + 5.0, "{} apex {apex_m} not in {s}..{e}", c.name);
        // Each corner ends near where the track's corner ends.
        assert!((c.end * track.length() - e).abs() < 20.0, "{} ends at {}", c.name, c.end * track.length());
    }
    // Segments tile the lap.
    let segs = map.segments();
    assert_eq!(segs.first().unwrap().start, 0.0);
    assert_eq!(segs.last().unwrap().end, 1.0);
    for w in segs.windows(2) {
        assert_eq!(w[0].end, w[1].start);
    }
}

#[test]
fn a_corner_taken_flat_has_no_braking_point() {
    let t = traces(&[clean(), clean()]);
    let map = CornerMap::learn(&t[0], &LearnOptions::default());
    let c = compare(&map, &t[0], &t[1], &MetricOptions::default());
    let t2 = &c.corners[1];
    assert_eq!(t2.lap.braking_point_m, None);
    assert_eq!(t2.reference.braking_point_m, None);
    assert_eq!(t2.braking_point_diff_m, None);
    assert!(t2.lap.peak_brake == 0.0);
    // The braked corners have one.
    assert!(c.corners[0].lap.braking_point_m.is_some());
}

#[test]
fn braking_early_is_measured_within_3_m_and_deltas_add_up() {
    let t = traces(&[clean(), with(Fault::BrakeEarly { corner: 3, metres: 20.0 })]);
    let map = CornerMap::learn(&t[0], &LearnOptions::default());
    let c = compare(&map, &t[0], &t[1], &MetricOptions::default());
    let sum: f64 = c.segments.iter().map(|s| s.delta_s).sum();
    assert!((sum - c.lap_delta_s).abs() < 0.01, "{sum} vs {}", c.lap_delta_s);
    assert!(c.lap_delta_s > 0.05);
    let d = c.corners[2].braking_point_diff_m.unwrap();
    assert!((d + 20.0).abs() < 3.0, "{d}");
    for other in [0, 3] {
        let d = c.corners[other].braking_point_diff_m.unwrap();
        assert!(d.abs() < 3.0, "T{}: {d}", other + 1);
    }
    // The time is lost in T3 (which holds the braking zone), not on the straights.
    let t3 = c.segments.iter().find(|s| s.id == SegmentId::Corner(3)).unwrap();
    assert!(t3.delta_s > 0.8 * c.lap_delta_s, "{t3:?} of {}", c.lap_delta_s);
}

#[test]
fn the_coach_names_braking_early_at_the_right_corner() {
    let (_, reports) = coach_run(
        &[clean(), clean(), with(Fault::BrakeEarly { corner: 3, metres: 20.0 })],
        CoachConfig::default(),
    );
    let last = reports.last().unwrap();
    let faults = corner_faults(last);
    assert!(!faults.is_empty(), "{:#?}", last.findings);
    let (number, fault) = faults[0];
    assert_eq!(number, 3);
    match fault {
        CornerFault::BrakedEarly { metres } => assert!((metres - 20.0).abs() < 3.0, "{metres}"),
        other => panic!("{other:?}"),
    }
    assert!(faults.iter().all(|(n, _)| *n == 3), "{faults:?}");
    let text = last.findings[0].text();
    println!("{text}");
    assert!(text.starts_with("T3: −0."), "{text}");
    assert!(text.contains("braked 2") && text.contains(" m early"), "{text}");
    // The clean laps say nothing about corners.
    assert!(corner_faults(&reports[1]).is_empty());
}

#[test]
fn the_coach_names_late_throttle() {
    let (_, reports) =
        coach_run(&[clean(), with(Fault::LateThrottle { corner: 1, metres: 25.0 })], CoachConfig::default());
    let faults = corner_faults(reports.last().unwrap());
    assert_eq!(faults.first().map(|f| f.0), Some(1), "{faults:?}");
    assert!(
        faults.iter().any(|(n, f)| *n == 1
            && matches!(f, CornerFault::LateThrottle { metres } if (metres - 25.0).abs() < 3.0)),
        "{faults:?}"
    );
    assert!(!faults
        .iter()
        .any(|(_, f)| matches!(f, CornerFault::BrakedEarly { .. } | CornerFault::BrakedLate { .. })));
}

#[test]
fn the_coach_names_coasting() {
    let (_, reports) =
        coach_run(&[clean(), with(Fault::Coast { corner: 4, metres: 60.0 })], CoachConfig::default());
    let faults = corner_faults(reports.last().unwrap());
    assert!(
        faults
            .iter()
            .any(|(n, f)| *n == 4 && matches!(f, CornerFault::Coasting { metres } if *metres > 20.0)),
        "{faults:?}"
    );
    assert!(faults.iter().all(|(n, _)| *n == 4), "{faults:?}");
}

#[test]
fn patterns_count_the_recent_laps() {
    let early = || with(Fault::BrakeEarly { corner: 3, metres: 15.0 });
    let plans = [clean(), early(), clean(), early(), early(), clean(), early()];
    let (_, reports) = coach_run(&plans, CoachConfig::default());
    let last = reports.last().unwrap();
    let f = &last.findings[0];
    assert_eq!(f.pattern.map(|p| (p.count, p.of)), Some((4, 6)));
    let text = f.text();
    println!("{text}");
    assert!(text.ends_with("(4 of the last 6 laps)"), "{text}");
    // Seen 4 times and costing time: worth more than a passing remark.
    assert!(matches!(f.priority, MessagePriority::Normal | MessagePriority::High), "{:?}", f.priority);
    // T3 is the most costly corner over the window.
    assert_eq!(last.costly_corners[0].number, 3);
    assert!(last.costly_corners[0].mean_delta_s > 0.05);
    // A fault is not a flaw: all six laps are clean, so every corner has its spread.
    assert_eq!(last.consistency.len(), 4);
    let t3 = last.consistency.iter().find(|c| c.number == 3).unwrap();
    assert!(t3.braking_point_sd_m.unwrap() > 5.0);
}

#[test]
fn consistency_reports_spread_of_braking_points() {
    let at = |m: f64| with(Fault::BrakeEarly { corner: 1, metres: m });
    let plans = [clean(), at(2.0), at(14.0), at(4.0), at(18.0), at(1.0)];
    let (_, reports) = coach_run(&plans, CoachConfig::default());
    let last = reports.last().unwrap();
    // These laps are all clean (a fault is not a flaw), so the spread is over the window.
    let t1 = last.consistency.iter().find(|c| c.number == 1).unwrap();
    let sd = t1.braking_point_sd_m.unwrap();
    assert!(sd > 5.0 && sd < 10.0, "{sd}");
    let t4 = last.consistency.iter().find(|c| c.number == 4).unwrap();
    assert!(t4.braking_point_sd_m.unwrap() < 1.0);
    assert!(last.findings.iter().any(|f| matches!(f.issue, Issue::Inconsistent { .. })
        && matches!(f.subject, Subject::Corner { number: 1, .. })));
}

#[test]
fn pit_and_incident_laps_never_become_the_reference() {
    let plans = [
        LapPlan { pit: true, ..clean() },
        LapPlan { incident: true, ..clean() },
        clean(),
        LapPlan { incident: true, ..with(Fault::BrakeEarly { corner: 2, metres: 0.0 }) },
    ];
    let (coach, reports) = coach_run(&plans, CoachConfig::default());
    assert!(!reports[0].quality.is_clean());
    assert!(!reports[0].new_reference && !reports[1].new_reference);
    assert!(reports[2].new_reference);
    assert_eq!(coach.reference().unwrap().lap, 3);
    assert!(reports[0].findings.iter().any(|f| matches!(f.issue, Issue::NotClean { .. })));
    assert!(coach.map().is_some());
    // A later incident lap is compared (the driver drove it) but does not replace the reference.
    assert!(reports[3].comparison.is_some());
    assert!(!reports[3].new_reference);
}

#[test]
fn traffic_is_marked_not_blamed() {
    let track = test_track();
    let len = track.length();
    // A car 20 m ahead through T3's approach and corner; the driver brakes early behind it.
    let busy = LapPlan {
        traffic: Some((20.0, 740.0 / len, 1000.0 / len)),
        ..with(Fault::BrakeEarly { corner: 3, metres: 20.0 })
    };
    let (_, reports) = coach_run(&[clean(), busy], CoachConfig::default());
    let last = reports.last().unwrap();
    assert!(!last.quality.traffic.is_empty());
    assert!(corner_faults(last).iter().all(|(n, _)| *n != 3), "{:#?}", last.findings);
    let marked = last.findings.iter().find_map(|f| match &f.issue {
        Issue::Traffic { corners } => Some(corners.clone()),
        _ => None,
    });
    assert_eq!(marked, Some(vec!["T3".to_owned()]));
    assert!(reports[0].quality.traffic.is_empty());
}

#[test]
fn a_fuel_leak_raises_the_alarm() {
    let mut plans = vec![clean(); 5];
    plans.push(LapPlan { leak_l: 1.0, ..clean() });
    let (_, reports) = coach_run(&plans, CoachConfig::default());
    for r in &reports[..5] {
        assert!(r.strategy.fuel_alarm.is_none());
    }
    let last = reports.last().unwrap();
    assert_eq!(last.priority, MessagePriority::Urgent);
    let first = &last.findings[0];
    assert!(matches!(first.issue, Issue::FuelUseHigh { .. }), "{:#?}", last.findings);
    assert_eq!(first.priority, MessagePriority::Urgent);
    println!("{}", first.text());
    assert!(first.text().contains("leak"));
    // From now on the burn of the leaking lap is what counts.
    let per_lap = last.strategy.fuel_per_lap_l.unwrap();
    assert!(per_lap > reports[4].strategy.fuel_per_lap_l.unwrap() + 0.8);
}

#[test]
fn laps_of_fuel_are_right_within_half_a_lap() {
    let track = test_track();
    let frames = drive(&track, &vec![clean(); 20], 60.0, 0.0);
    let mut coach =
        Coach::new(CoachConfig { track_length_m: Some(track.length()), ..CoachConfig::default() });
    let mut reports = Vec::new();
    for f in &frames {
        reports.push(coach.add_lap(f, None, Some(Remaining::Laps(20.0))).unwrap());
    }
    // After lap 4: how many laps did the fuel really last (the generator burns past empty)?
    let fuel_at = |lap: usize| f64::from(frames[lap].iter().rev().nth(1).unwrap().sample.fuel_level);
    let now = fuel_at(3);
    let predicted = reports[3].strategy.laps_of_fuel.unwrap();
    let used = (now - fuel_at(17)) / 14.0;
    let truth = now / used;
    assert!((predicted - truth).abs() < 0.5, "{predicted} vs {truth}");
    // 20 laps to go on ~16 laps of fuel: short, a pit window, the fuel to add.
    let s = &reports[3].strategy;
    assert!(s.fuel_to_add_l.unwrap() > 0.0);
    assert!(s.pit_window.is_some());
    assert!((s.fuel_to_finish_l.unwrap() - 20.0 * s.fuel_per_lap_l.unwrap()).abs() < 1e-9);
    // Near the end the low-fuel warning is urgent.
    let late = reports.iter().find(|r| r.strategy.laps_of_fuel.is_some_and(|l| l < 2.0)).unwrap();
    assert!(late
        .findings
        .iter()
        .any(|f| matches!(f.issue, Issue::FuelLow { .. }) && f.priority == MessagePriority::Urgent));
    assert_eq!(late.priority, MessagePriority::Urgent);
    assert!(reports[3].findings.iter().all(|f| !matches!(f.issue, Issue::FuelLow { .. })));
    // A timed race: laps from the lap time.
    let timed = coach.strategy(30.0, Some(Remaining::Time(10.0 * reports[3].lap_time_s - 1.0)));
    assert_eq!(timed.laps_to_finish, Some(10.0));
    // Tyres: the front left wears half a percent a lap in the generator.
    let tyres = late.strategy.tyres.clone().unwrap();
    let fl = tyres.wear_per_lap.unwrap().front_left;
    assert!((fl + 0.5).abs() < 0.05, "{fl}");
    assert!(tyres.temp_per_lap.unwrap().front_left > 0.9);
}

#[test]
fn a_corner_across_the_line_is_one_corner() {
    let track = test_track();
    // The line in the middle of the hairpin (300–360 m).
    let laps = drive(&track, &[clean(), with(Fault::BrakeEarly { corner: 1, metres: 20.0 })], 60.0, 330.0);
    let t: Vec<LapTrace> =
        laps.iter().map(|f| LapTrace::from_frames(f, Some(track.length())).unwrap()).collect();
    let map = CornerMap::learn(&t[0], &LearnOptions::default());
    assert_eq!(map.corners.len(), 4, "{:#?}", map.corners);
    let wrapped: Vec<_> = map.corners.iter().filter(|c| c.wraps()).collect();
    assert_eq!(wrapped.len(), 1, "{:#?}", map.corners);
    let hairpin = wrapped[0].number;
    let c = compare(&map, &t[0], &t[1], &MetricOptions::default());
    let sum: f64 = c.segments.iter().map(|s| s.delta_s).sum();
    assert!((sum - c.lap_delta_s).abs() < 0.01);
    let hp = c.corners.iter().find(|k| k.number == hairpin).unwrap();
    let d = hp.braking_point_diff_m.unwrap();
    assert!((d + 20.0).abs() < 3.0, "{d}");
    assert!(hp.delta_s > 0.8 * c.lap_delta_s);
}

#[test]
fn analysis_at_360_hz_matches() {
    let track = test_track();
    let laps = drive(&track, &[clean(), with(Fault::BrakeEarly { corner: 3, metres: 20.0 })], 360.0, 0.0);
    let t: Vec<LapTrace> =
        laps.iter().map(|f| LapTrace::from_frames(f, Some(track.length())).unwrap()).collect();
    let map = CornerMap::learn(&t[0], &LearnOptions::default());
    assert_eq!(map.corners.len(), 4);
    let c = compare(&map, &t[0], &t[1], &MetricOptions::default());
    let d = c.corners[2].braking_point_diff_m.unwrap();
    assert!((d + 20.0).abs() < 3.0, "{d}");
}

#[test]
fn confidence_grows_with_clean_laps() {
    let (_, reports) = coach_run(&vec![clean(); 6], CoachConfig::default());
    assert!(reports[0].confidence < reports[5].confidence);
    assert!(reports.iter().all(|r| (0.0..=1.0).contains(&r.confidence)));
}

#[test]
fn the_coach_state_survives_a_restart() {
    let plans = [clean(), clean(), with(Fault::BrakeEarly { corner: 3, metres: 20.0 })];
    let track = test_track();
    let frames = drive(&track, &plans, 60.0, 0.0);
    let mut coach =
        Coach::new(CoachConfig { track_length_m: Some(track.length()), ..CoachConfig::default() });
    coach.add_lap(&frames[0], None, None).unwrap();
    coach.add_lap(&frames[1], None, None).unwrap();
    let json = serde_json::to_string(&coach).unwrap();
    let mut restored: Coach = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, coach);
    let a = coach.add_lap(&frames[2], None, None).unwrap();
    let b = restored.add_lap(&frames[2], None, None).unwrap();
    assert_eq!(a, b);
    // The corner map alone round-trips too (it is stored per track).
    let map = coach.map().unwrap();
    let back: CornerMap = serde_json::from_str(&serde_json::to_string(map).unwrap()).unwrap();
    assert_eq!(&back, map);
}

#[test]
fn a_team_chosen_reference_stays() {
    let track = test_track();
    let frames = drive(&track, &[with(Fault::BrakeEarly { corner: 1, metres: 30.0 }), clean()], 60.0, 0.0);
    let mut coach =
        Coach::new(CoachConfig { track_length_m: Some(track.length()), ..CoachConfig::default() });
    coach.set_reference(&frames[0]).unwrap();
    let r = coach.add_lap(&frames[1], None, None).unwrap();
    // Faster than the pinned reference, yet it stays.
    assert!(!r.new_reference);
    assert!(r.comparison.as_ref().unwrap().lap_delta_s < 0.0);
    assert!(r.findings.iter().any(|f| matches!(f.issue, Issue::Gain)));
    coach.unpin_reference();
    assert_eq!(coach.reference().unwrap().lap, 2);
}

#[test]
fn the_lap_assemblers_verdict_is_taken_over() {
    use pitbox_schema::wire::{LapFlaw, LapKind, LapSummary};
    let track = test_track();
    let frames = drive(&track, &[clean(), clean()], 60.0, 0.0);
    let summary = |lap: i32, reasons: Vec<LapFlaw>| LapSummary {
        id: format!("lap-{lap}"),
        session_id: "s".to_owned(),
        driver_id: "d".to_owned(),
        lap_number: lap,
        lap_time: 0.0,
        valid: reasons.is_empty(),
        kind: LapKind::Flying,
        invalid_reasons: reasons,
        fuel_used: None,
        sector_times: Vec::new(),
        sample_count: 0,
        completed_at: chrono::Utc::now(),
    };
    let mut coach =
        Coach::new(CoachConfig { track_length_m: Some(track.length()), ..CoachConfig::default() });
    // The frames look clean, but the runtime saw the car off track: no reference, no corner map.
    let r = coach.add_lap(&frames[0], Some(&summary(1, vec![LapFlaw::OffTrack])), None).unwrap();
    assert_eq!(r.quality.flaws, vec![LapFlaw::OffTrack]);
    assert!(!r.new_reference && coach.reference().is_none() && coach.map().is_none());
    let r = coach.add_lap(&frames[1], Some(&summary(2, Vec::new())), None).unwrap();
    assert!(r.new_reference);
    assert!(coach.map().is_some());
}

#[test]
fn noisy_channels_change_nothing_that_matters() {
    let noisy = |faults: Vec<Fault>| LapPlan { faults, noise: true, ..LapPlan::default() };
    let t = traces(&[noisy(Vec::new()), noisy(vec![Fault::BrakeEarly { corner: 3, metres: 20.0 }])]);
    let map = CornerMap::learn(&t[0], &LearnOptions::default());
    assert_eq!(map.corners.len(), 4, "{:#?}", map.corners);
    let c = compare(&map, &t[0], &t[1], &MetricOptions::default());
    let d = c.corners[2].braking_point_diff_m.unwrap();
    assert!((d + 20.0).abs() < 3.0, "{d}");
    let sum: f64 = c.segments.iter().map(|s| s.delta_s).sum();
    assert!((sum - c.lap_delta_s).abs() < 0.01);
    // The flat corner stays unbraked despite pedal noise (noise never presses a released pedal).
    assert_eq!(c.corners[1].lap.braking_point_m, None);
}

#[test]
fn segments_tile_the_lap_for_any_corner_layout() {
    use pitbox_coach::Turn;
    // Deterministic pseudo-random layouts, some with a corner across the line.
    let mut seed: u64 = 7;
    let mut next = || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    for _ in 0..200 {
        let n = 1 + (next() * 8.0) as usize;
        let mut cuts: Vec<f64> = (0..2 * n).map(|_| next()).collect();
        cuts.sort_by(f64::total_cmp);
        cuts.dedup();
        let mut turns: Vec<Turn> = cuts
            .chunks(2)
            .filter(|c| c.len() == 2 && c[1] > c[0])
            .enumerate()
            .map(|(k, c)| Turn { name: format!("C{k}"), start: c[0], end: c[1] })
            .collect();
        if next() < 0.5 {
            if let (Some(first), Some(last)) = (turns.first().cloned(), turns.last().cloned()) {
                if turns.len() >= 2 {
                    turns.remove(0);
                    let l = turns.len() - 1;
                    turns[l] = Turn { name: "Across".to_owned(), start: last.start, end: first.end };
                }
            }
        }
        let map = CornerMap::from_turns(&turns, 3000.0);
        let segs = map.segments();
        assert_eq!(segs.first().unwrap().start, 0.0, "{turns:?}");
        assert_eq!(segs.last().unwrap().end, 1.0, "{turns:?}");
        for w in segs.windows(2) {
            assert_eq!(w[0].end, w[1].start, "{turns:?}");
        }
        for c in &map.corners {
            assert!(segs.iter().any(|s| s.id == SegmentId::Corner(c.number)), "{turns:?}");
        }
    }
}
