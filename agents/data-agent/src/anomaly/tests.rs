use super::*;
use rust_decimal_macros::dec;
use vigil_testkit::timestamp as t;

fn bar(day: u32, close: Decimal) -> Bar {
    Bar {
        symbol: SymbolId(0),
        ts: t(&format!("2024-03-{day:02}T00:00:00Z")),
        open: close,
        high: close,
        low: close,
        close,
        volume: Some(dec!(1000)),
    }
}

fn bounds(max_jump: Option<Decimal>, k_sigma: Option<f64>) -> AnomalyBounds {
    AnomalyBounds {
        max_jump,
        k_sigma,
        min_sigma: 0.0,
        window: 5,
        release_after: 3,
    }
}

/// A steady 1 % a day for weeks has a σ near zero: the floor keeps a 4 % fall (after
/// the trend breaks) from counting as hundreds of σ.
#[test]
fn the_sigma_floor_keeps_a_steady_trend_from_making_every_move_an_outlier() {
    // After 10 days of +1 %, a fall of `pct`: quarantined?
    let after_trend = |pct: Decimal| {
        let mut w = AnomalyWatch::new(
            AnomalyBounds {
                min_sigma: 0.005,
                ..bounds(None, Some(10.0))
            },
            1,
        );
        let mut price = dec!(100);
        for d in 1..=10 {
            assert_eq!(w.on_bar(&bar(d, price)), Verdict::Pass);
            price = (price * dec!(1.01)).round_dp(2);
        }
        matches!(
            w.on_bar(&bar(11, price * (Decimal::ONE - pct))),
            Verdict::Quarantined(_)
        )
    };
    // σ is ~0.003 %: without the floor 4 % would be over 1000σ. With it, the bound is
    // 10 × 0.5 % = 5 %.
    assert!(!after_trend(dec!(0.04)));
    assert!(after_trend(dec!(0.06)));
}

/// The bar that became a fill at 0.010001: its close is normal, its open and low are
/// a print of 0.01. The bar's extremes (which bound its open) are judged against the
/// previous close too, not the close alone, by a k-sigma bound 1.5 times as wide.
#[test]
fn an_absurd_high_or_low_quarantines_though_the_close_is_normal() {
    let ohlc = |day, [open, high, low, close]: [Decimal; 4]| Bar {
        open,
        high,
        low,
        ..bar(day, close)
    };
    let mut w = AnomalyWatch::new(bounds(Some(dec!(0.25)), None), 1);
    assert_eq!(w.on_bar(&bar(1, dec!(135.06))), Verdict::Pass);
    match w.on_bar(&ohlc(
        2,
        [dec!(0.01), dec!(136.87), dec!(0.01), dec!(135.06)],
    )) {
        Verdict::Quarantined(why) => assert_eq!(
            why,
            "low 0.01 moved -99.99% from the previous 135.06 (bound 25%)"
        ),
        other => panic!("{other:?}"),
    }
    // A high far above, by k-sigma: σ of 1 % over the window, k = 10, so a close may
    // move 10 % and a high 15 %.
    let mut w = AnomalyWatch::new(bounds(None, Some(10.0)), 1);
    let mut prev = dec!(100);
    for d in 1..=6 {
        prev *= if d % 2 == 0 { dec!(1.01) } else { dec!(0.99) };
        assert_eq!(w.on_bar(&bar(d, prev)), Verdict::Pass);
    }
    let within = ohlc(7, [prev, prev * dec!(1.13), prev, prev]);
    assert_eq!(
        w.on_bar(&within),
        Verdict::Pass,
        "a 13 % high is within 15σ"
    );
    let beyond = ohlc(8, [prev, prev * dec!(1.2), prev, prev]);
    match w.on_bar(&beyond) {
        Verdict::Quarantined(why) => assert!(why.starts_with("high "), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_jump_past_the_bound_quarantines_and_three_calm_bars_release() {
    let mut w = AnomalyWatch::new(bounds(Some(dec!(0.2)), None), 1);
    assert_eq!(w.on_bar(&bar(1, dec!(100))), Verdict::Pass);
    assert_eq!(
        w.on_bar(&bar(2, dec!(119))),
        Verdict::Pass,
        "19 % is within 20 %"
    );
    match w.on_bar(&bar(3, dec!(250))) {
        Verdict::Quarantined(why) => assert!(
            why.contains("close 250 moved +110.08% from the previous 119 (bound 20%)"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.quarantined().collect::<Vec<_>>(), vec![SymbolId(0)]);
    // The bad tick reverts: that move is anomalous too, and the count starts over.
    assert_eq!(w.on_bar(&bar(4, dec!(120))), Verdict::Held);
    assert_eq!(w.on_bar(&bar(5, dec!(121))), Verdict::Held);
    assert_eq!(w.on_bar(&bar(6, dec!(122))), Verdict::Held);
    match w.on_bar(&bar(7, dec!(121))) {
        Verdict::Released(why) => assert_eq!(why, "3 bars in a row within the bounds"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.on_bar(&bar(8, dec!(122))), Verdict::Pass);
}

#[test]
fn k_sigma_waits_for_a_full_window_then_catches_an_outlier() {
    let mut w = AnomalyWatch::new(bounds(None, Some(4.0)), 1);
    // Returns alternate ±1 %: σ = 1 %.
    let closes = [
        dec!(100),
        dec!(101),
        dec!(99.99),
        dec!(100.9899),
        dec!(99.979801),
    ];
    for (i, c) in closes.iter().enumerate() {
        assert_eq!(w.on_bar(&bar(i as u32 + 1, *c)), Verdict::Pass);
    }
    // Only 4 returns so far: a 10 % move is not judged by σ yet.
    assert_eq!(w.on_bar(&bar(6, dec!(109.98))), Verdict::Pass);
    // The window is full now (σ ≈ 4.1 %): 20 % is 4.9σ.
    match w.on_bar(&bar(7, dec!(131.976))) {
        Verdict::Quarantined(why) => assert!(why.contains("standard deviations"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_operator_s_quarantine_lifts_only_by_command() {
    let mut w = AnomalyWatch::new(bounds(Some(dec!(0.2)), None), 2);
    assert!(w.quarantine(SymbolId(0)));
    for d in 1..=6 {
        assert_eq!(w.on_bar(&bar(d, dec!(100))), Verdict::Held);
    }
    assert!(w.release(SymbolId(0)));
    assert!(!w.release(SymbolId(0)), "nothing left to release");
    assert_eq!(w.on_bar(&bar(7, dec!(100))), Verdict::Pass);
}

/// The bundled GOOG file (2004–2013, a +20 % earnings day included) stays clear of the
/// default bounds: 25 % and 10σ of 20 returns.
#[test]
fn the_bundled_goog_file_passes_the_default_bounds() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/GOOG_1d.csv"
    ))
    .expect("GOOG_1d.csv");
    let mut w = AnomalyWatch::new(
        AnomalyBounds {
            max_jump: Some(dec!(0.25)),
            k_sigma: Some(10.0),
            min_sigma: 0.005,
            window: 20,
            release_after: 3,
        },
        1,
    );
    for (i, line) in text.lines().skip(1).enumerate() {
        let close: Decimal = line.split(',').nth(4).expect("close").parse().expect("dec");
        let mut b = bar(1, close);
        b.ts = t("2004-08-19T00:00:00Z") + chrono::Duration::days(i as i64);
        assert_eq!(w.on_bar(&b), Verdict::Pass, "row {}: {line}", i + 1);
    }
}
