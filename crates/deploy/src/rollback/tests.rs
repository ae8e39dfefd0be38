use super::*;

fn cfg() -> RollbackConfig {
    RollbackConfig {
        window_bars: 50,
        max_error_pct: 10.0,
        max_latency_p99_ms: 1.0,
        sharpe_window_bars: 10,
        sharpe_values: 5,
        min_sharpe: -1.0,
        ..RollbackConfig::default()
    }
}

#[test]
fn a_model_that_fails_too_often_is_rolled_back_once_enough_bars_are_in() {
    let mut g = Guard::new(&cfg(), 1);
    // Every third bar fails (33 %): nothing before MIN_BARS bars, then the error rate.
    for i in 0..MIN_BARS - 1 {
        assert_eq!(
            g.bar(0, 100.0, i % 3 == 0, 1_000.0, Some(1.0)),
            None,
            "bar {i}"
        );
    }
    let t = g
        .bar(0, 100.0, false, 1_000.0, Some(1.0))
        .expect("triggered");
    assert_eq!(t.rule, "error_rate", "{t:?}");
    assert!(t.value.starts_with("35.0 % of the last 20 bars"), "{t:?}");
}

#[test]
fn failures_that_leave_the_window_no_longer_count() {
    let mut g = Guard::new(&cfg(), 1);
    // Bars 45..49 fail: 5 of 50 (10 %), not over 10 %; then 45 clean bars; then bars
    // 95..99 fail, each as one of the first five leaves the window: 10 % throughout, where
    // counting every failure would be 20 %.
    for i in 0..100 {
        let failed = (45..50).contains(&i) || i >= 95;
        assert_eq!(g.bar(0, 100.0, failed, 1_000.0, None), None, "bar {i}");
    }
    assert!(
        g.bar(0, 100.0, true, 1_000.0, None).is_some(),
        "the sixth in 50 bars"
    );
}

#[test]
fn a_slow_model_is_rolled_back_on_its_p99() {
    let mut g = Guard::new(&cfg(), 1);
    for _ in 0..MIN_BARS - 1 {
        assert_eq!(g.bar(0, 100.0, false, 3_000_000.0, None), None);
    }
    let t = g.bar(0, 100.0, false, 3_000_000.0, None).expect("slow");
    assert_eq!(t.rule, "latency_p99");
    // One slow bar in fifty is under the 99th percentile… of 50 bars it is the p99 itself.
    let mut g = Guard::new(&cfg(), 1);
    for i in 0..200 {
        let slow = i == 120;
        let t = g.bar(0, 100.0, false, if slow { 3e6 } else { 1e5 }, None);
        assert_eq!(t.is_some(), slow, "bar {i}: {t:?}");
        if slow {
            break;
        }
    }
}

#[test]
fn a_model_whose_rolling_sharpe_decays_is_rolled_back_after_n_values() {
    let mut g = Guard::new(&cfg(), 1);
    // Long while the price falls 1 % a bar, with a wobble so that returns vary.
    let mut price = 100.0;
    let mut fired = None;
    for i in 0..40 {
        price *= if i % 2 == 0 { 0.985 } else { 0.995 };
        if let Some(t) = g.bar(0, price, false, 1_000.0, Some(1.0)) {
            fired = Some((i, t));
            break;
        }
    }
    let (i, t) = fired.expect("the Sharpe rule fired");
    assert_eq!(t.rule, "sharpe", "{t:?}");
    // The first return is at bar 1; a window of 10 is full at bar 10; 5 values at bar 14.
    assert_eq!(i, 14);
    // Short the same fall: a fine Sharpe, never rolled back.
    let mut g = Guard::new(&cfg(), 1);
    let mut price = 100.0;
    for i in 0..40 {
        price *= if i % 2 == 0 { 0.985 } else { 0.995 };
        assert_eq!(g.bar(0, price, false, 1_000.0, Some(-1.0)), None);
    }
}
