use super::*;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).expect("date")
}

fn at(d: u32, minute: u32) -> DateTime<Utc> {
    day(d).and_hms_opt(15, minute, 0).expect("time").and_utc()
}

fn wanted(position: f64, output: f64) -> Option<Wanted> {
    Some(Wanted { position, output })
}

#[test]
fn correlation_of_identical_positions_is_one_and_of_opposite_minus_one() {
    let mut same = Pairs::default();
    let mut opposite = Pairs::default();
    for i in 0..10 {
        let x = if i % 3 == 0 { 1.0 } else { -1.0 };
        same.add(x, x);
        opposite.add(x, -x);
    }
    assert!((same.correlation().expect("defined") - 1.0).abs() < 1e-12);
    assert!((opposite.correlation().expect("defined") + 1.0).abs() < 1e-12);
    let mut flat = Pairs::default();
    flat.add(1.0, 1.0);
    flat.add(1.0, -1.0);
    assert_eq!(
        flat.correlation(),
        Err("a model held one position throughout")
    );
}

#[test]
fn moments_merged_equal_moments_of_all() {
    let xs = [1.0, 4.0, -2.0, 8.5, 3.0, 3.0, 0.5];
    let mut all = Moments::default();
    xs.iter().for_each(|x| all.add(*x));
    let (mut a, mut b) = (Moments::default(), Moments::default());
    xs[..3].iter().for_each(|x| a.add(*x));
    xs[3..].iter().for_each(|x| b.add(*x));
    a.merge(&b);
    assert_eq!(a.n, all.n);
    assert!((a.mean - all.mean).abs() < 1e-12);
    assert!((a.m2 - all.m2).abs() < 1e-9);
}

#[test]
fn latency_p99_is_the_bucket_of_the_slowest_hundredth() {
    let mut l = Latency::default();
    l.add(1_000.0, 990);
    l.add(50_000.0, 10);
    let p99 = l.p99_ns().expect("timed");
    assert!((1_000.0..1_050.0).contains(&p99), "{p99}");
    l.add(50_000.0, 1);
    let p99 = l.p99_ns().expect("timed");
    assert!((50_000.0..52_500.0).contains(&p99), "{p99}");
    assert!((l.mean_ns().expect("timed") - (990_000.0 + 550_000.0) / 1_001.0).abs() < 1e-6);
}

#[test]
fn the_simulated_venue_books_each_models_return_and_cost() {
    let cfg = ShadowConfig {
        cost_bps: 10.0,
        ..ShadowConfig::default()
    };
    let mut t = ShadowTracker::resume(1, &cfg, &[]);
    // Both go long at 100; the price rises 10 %; the candidate goes short, production stays.
    t.bar(
        day(2),
        at(2, 0),
        0,
        100.0,
        wanted(1.0, 0.5),
        Ok(wanted(1.0, 0.4)),
    );
    t.bar(
        day(2),
        at(2, 1),
        0,
        110.0,
        wanted(1.0, 0.5),
        Ok(wanted(-1.0, -0.4)),
    );
    t.bar(
        day(2),
        at(2, 2),
        0,
        99.0,
        wanted(1.0, 0.5),
        Ok(wanted(-1.0, -0.4)),
    );
    let (_, s) = t.current().expect("a session");
    // production: −0.001 (entry) + 0.10 − 0.10; candidate: −0.001 + 0.10 − 0.002 + 0.10
    assert!(
        (s.production_return - (-0.001 + 0.1 - 0.1)).abs() < 1e-12,
        "{s:?}"
    );
    assert!(
        (s.candidate_return - (-0.001 + 0.1 - 0.002 + 0.1)).abs() < 1e-12,
        "{s:?}"
    );
    assert_eq!((s.production_changes, s.candidate_changes), (1, 2));
    assert_eq!(s.bars, 3);
    assert_eq!(s.pairs.n, 3);
}

#[test]
fn a_new_session_hands_back_the_one_that_ended_and_a_restart_goes_on_from_it() {
    let cfg = ShadowConfig::default();
    let mut t = ShadowTracker::resume(2, &cfg, &[]);
    assert!(t.bar(day(2), at(2, 0), 0, 10.0, None, Ok(None)).is_none());
    assert!(t.bar(day(2), at(2, 0), 1, 20.0, None, Err(())).is_none());
    let (d, s) = t
        .bar(day(3), at(3, 0), 0, 10.0, None, Ok(None))
        .expect("day 2 ended");
    assert_eq!((d, s.bars, s.errors), (day(2), 2, 1));

    // After a restart, bars already counted are known, and day 3 goes on.
    let stored = vec![(day(2), s), t.current().expect("day 3").clone()];
    let mut again = ShadowTracker::resume(2, &cfg, &stored);
    assert!(again.counted(at(3, 0)));
    assert!(!again.counted(at(3, 1)));
    assert!(
        again
            .bar(day(3), at(3, 1), 1, 20.0, None, Ok(None))
            .is_none()
    );
    assert_eq!(again.current().expect("day 3").1.bars, 2);
}

#[test]
fn an_output_far_outside_the_candidates_own_distribution_is_abnormal() {
    let cfg = ShadowConfig::default();
    let mut t = ShadowTracker::resume(1, &cfg, &[]);
    for i in 0..200 {
        let out: f64 = if i % 2 == 0 { 0.01 } else { -0.01 };
        t.bar(
            day(2),
            at(2, 0),
            0,
            100.0,
            None,
            Ok(wanted(out.signum(), out)),
        );
    }
    assert_eq!(t.current().expect("day").1.outliers, 0);
    t.bar(day(2), at(2, 1), 0, 100.0, None, Ok(wanted(1.0, 0.5)));
    assert_eq!(t.current().expect("day").1.outliers, 1);
}

fn session(diff: f64, pairs: &[(f64, f64)]) -> ShadowSession {
    let mut s = ShadowSession {
        bars: 200,
        candidate_return: 0.001 + diff,
        production_return: 0.001,
        peak_rss_bytes: 100 * 1_048_576,
        ..ShadowSession::default()
    };
    for (x, y) in pairs {
        s.pairs.add(*x, *y);
    }
    for i in 0..200 {
        s.outputs.add(f64::from(i % 7) / 100.0);
    }
    s.candidate_latency.add(1_000.0, 200);
    s.production_latency.add(950.0, 200);
    s
}

#[test]
fn a_run_like_production_over_five_sessions_passes_every_standard() {
    let cfg = ShadowConfig::default();
    let pairs = [(1.0, 1.0), (-1.0, -1.0), (1.0, 1.0), (-1.0, -1.0)];
    let sessions: Vec<_> = (2..=6).map(|d| (day(d), session(0.0, &pairs))).collect();
    let r = report(&sessions, |_| true, &cfg);
    assert!(r.passed, "{r:#?}");
    assert_eq!(r.trading_sessions, 5);
    assert_eq!(r.correlation, Some(1.0));

    // Four trading days and a Sunday are four sessions: not yet enough.
    let r = report(&sessions, |d| d != day(6), &cfg);
    assert!(!r.passed);
    let s = r
        .standards
        .iter()
        .find(|s| s.name == "sessions")
        .expect("one");
    assert_eq!(s.passed, Some(false));
}

#[test]
fn an_uncorrelated_candidate_passes_only_as_a_clear_improvement() {
    let cfg = ShadowConfig::default();
    let pairs = [(1.0, 1.0), (-1.0, 1.0), (1.0, -1.0), (-1.0, -1.0)];
    let same: Vec<_> = (2..=6).map(|d| (day(d), session(0.0, &pairs))).collect();
    let r = report(&same, |_| true, &cfg);
    assert_eq!(r.standards[0].passed, Some(false), "{r:#?}");

    let better: Vec<_> = (2..=6)
        .map(|d| (day(d), session(0.002 + f64::from(d) * 1e-4, &pairs)))
        .collect();
    let r = report(&better, |_| true, &cfg);
    assert!(r.improvement_t.expect("defined") > 2.0);
    assert_eq!(r.standards[0].passed, Some(true), "{r:#?}");
}

#[test]
fn a_slow_or_failing_candidate_fails_its_standards() {
    let cfg = ShadowConfig::default();
    let pairs = [(1.0, 1.0), (-1.0, -1.0)];
    let mut slow = session(0.0, &pairs);
    slow.candidate_latency = Latency::default();
    slow.candidate_latency.add(2_000.0, 200);
    slow.errors = 1;
    let r = report(&[(day(2), slow)], |_| true, &cfg);
    let by = |n: &str| r.standards.iter().find(|s| s.name == n).expect(n).passed;
    assert_eq!(by("latency"), Some(false));
    assert_eq!(by("abnormal outputs"), Some(false));
    assert_eq!(by("resources"), Some(true));

    let empty = report(&[], |_| true, &cfg);
    assert_eq!(empty.standards[1].passed, None, "{empty:#?}");
    assert!(!empty.passed);
}

#[test]
fn sessions_only_move_forward_so_a_bar_dated_back_joins_the_running_one() {
    let cfg = ShadowConfig::default();
    let mut t = ShadowTracker::resume(1, &cfg, &[]);
    assert!(t.bar(day(2), at(2, 0), 0, 10.0, None, Ok(None)).is_none());
    // A minute bar at midnight UTC reads as the next day…
    assert!(t.bar(day(3), at(3, 0), 0, 10.0, None, Ok(None)).is_some());
    // …and the next minute as the exchange's previous day again: it stays on day 3.
    assert!(t.bar(day(2), at(3, 1), 0, 10.0, None, Ok(None)).is_none());
    assert_eq!(t.current().map(|(d, s)| (*d, s.bars)), Some((day(3), 2)));
}
