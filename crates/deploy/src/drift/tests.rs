use std::path::Path;

use super::*;

fn model(name: &str) -> (Artifact, Option<Onnx>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models")
        .join(name);
    vigil_model::open(&dir).expect("a bundled model")
}

/// A random walk with daily steps of about `vol`, seeded.
fn walk(n: usize, vol: f64, seed: u64) -> Vec<f64> {
    let mut x = seed;
    let mut price = 100.0;
    (0..n)
        .map(|_| {
            // xorshift: a fixed sequence, uniform in [-1, 1).
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x % 2_000_000) as f64 / 1_000_000.0 - 1.0;
            price *= 1.0 + vol * u;
            price
        })
        .collect()
}

#[test]
fn psi_is_zero_for_the_same_shares_and_grows_as_they_move() {
    let e = vec![0.1; BINS];
    assert!(psi(&[10; BINS], &e).abs() < 1e-12);
    let mut moved = [10_u64; BINS];
    moved[0] = 40;
    moved[9] = 0;
    let p = psi(&moved, &e);
    assert!(p > 0.25, "{p}");
    assert_eq!(psi(&[0; BINS], &e), 0.0, "no bar: nothing to judge");
}

#[test]
fn the_baseline_splits_each_feature_in_ten_and_records_the_returns() {
    let (a, g) = model("goog_mlp");
    let closes = walk(1_500, 0.02, 7);
    let b = baseline(&a, g.as_ref(), &closes, &vec![0.0; closes.len()]).expect("baseline");
    assert_eq!(b.features.len(), a.features.len());
    for f in &b.features {
        assert_eq!(f.edges.len(), BINS - 1, "{}", f.name);
        assert!(f.edges.windows(2).all(|w| w[0] <= w[1]), "{}", f.name);
        let total: f64 = f.shares.iter().sum();
        assert!((total - 1.0).abs() < 1e-9, "{}: {total}", f.name);
        assert!(
            f.shares.iter().all(|s| (0.05..0.15).contains(s)),
            "{}: {:?}",
            f.name,
            f.shares
        );
    }
    assert_eq!(b.bars, 1_499);
    assert!(b.return_std > 0.0);
}

fn day(i: usize) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).expect("date") + chrono::Days::new(i as u64)
}

#[test]
fn the_same_market_does_not_drift_a_wilder_one_does() {
    let (a, g) = model("goog_mlp");
    let closes = walk(1_500, 0.02, 7);
    let b = baseline(&a, g.as_ref(), &closes, &vec![0.0; closes.len()]).expect("baseline");
    let cfg = DriftConfig {
        window_bars: 400,
        min_bars: 200,
        max_tracking_z: 100.0,
        ..DriftConfig::default()
    };
    let judge = |closes: &[f64]| {
        let mut w = DriftWatch::new(&a, b.clone(), &cfg, 1);
        for (i, c) in closes.iter().enumerate() {
            w.bar(day(i), 0, *c, 0.0, None);
        }
        w.judge().expect("judged")
    };
    let calm = judge(&walk(600, 0.02, 99));
    assert_eq!(calm.bars, 400);
    assert!(calm.drifted.is_empty(), "{calm:?}");
    // Five times the volatility: the volatility and return features leave their deciles.
    let wild = judge(&walk(600, 0.10, 99));
    assert!(
        wild.drifted.iter().any(|d| d.starts_with("volatility_20")),
        "{wild:?}"
    );
    // Too few bars: nothing is called drift yet.
    let short = judge(&walk(150, 0.10, 99));
    assert!(short.drifted.is_empty(), "{short:?}");
}

#[test]
fn a_session_ending_hands_back_the_judgement_of_the_window() {
    let (a, g) = model("goog_mlp");
    let closes = walk(800, 0.02, 3);
    let b = baseline(&a, g.as_ref(), &closes, &vec![0.0; closes.len()]).expect("baseline");
    let mut w = DriftWatch::new(&a, b, &DriftConfig::default(), 1);
    assert!(w.bar(day(0), 0, 100.0, 0.0, Some(1.0)).is_none());
    assert!(w.bar(day(0), 0, 101.0, 0.0, None).is_none());
    let j = w.bar(day(1), 0, 102.0, 0.0, None).expect("day 0 ended");
    assert_eq!((j.session, j.bars), (day(0), 2));
    // Long from the first bar: the return of the second, 1 %, is tracked.
    assert!(j.tracking_z.is_some());
}
