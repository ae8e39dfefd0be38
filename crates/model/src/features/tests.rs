use super::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn the_ema_is_seeded_with_the_first_value() {
    let mut e = Ema::new(3); // alpha 0.5
    assert_eq!(e.update(10.0), 10.0);
    assert_eq!(e.update(12.0), 11.0);
    assert_eq!(e.update(9.0), 10.0);
}

/// Closes 100, 102, 99, 103: return_2 at the third bar is 99/100 − 1, at the fourth
/// 103/102 − 1; volatility_2 at the fourth is the sample deviation of (99/102 − 1,
/// 103/99 − 1).
#[test]
fn returns_and_volatility_by_hand() {
    let mut f = FeatureSet::new(&[Feature::Return(2), Feature::Volatility(2)]);
    assert_eq!(f.update(100.0, 0.0), None);
    assert_eq!(f.update(102.0, 0.0), None);
    let v = f.update(99.0, 0.0).expect("both windows full").to_vec();
    assert!(close(v[0], 99.0 / 100.0 - 1.0));
    let (a, b): (f64, f64) = (102.0 / 100.0 - 1.0, 99.0 / 102.0 - 1.0);
    let m = (a + b) / 2.0;
    assert!(close(
        v[1],
        (((a - m).powi(2) + (b - m).powi(2)) / 1.0).sqrt()
    ));
    let v = f.update(103.0, 0.0).expect("ready").to_vec();
    assert!(close(v[0], 103.0 / 102.0 - 1.0));
    let (a, b): (f64, f64) = (99.0 / 102.0 - 1.0, 103.0 / 99.0 - 1.0);
    let m = (a + b) / 2.0;
    assert!(close(v[1], ((a - m).powi(2) + (b - m).powi(2)).sqrt()));
}

/// Wilder's RSI over 2 changes: +2, −3 → gain 1, loss 1.5, RSI 100 − 100/(1 + 2/3) = 40;
/// then +4 → gain (1 + 4)/2 = 2.5, loss 1.5/2 = 0.75, RSI 100 − 100/(1 + 10/3) ≈ 76.92.
#[test]
fn rsi_by_hand() {
    let mut f = FeatureSet::new(&[Feature::Rsi(2)]);
    assert_eq!(f.update(100.0, 0.0), None);
    assert_eq!(f.update(102.0, 0.0), None);
    let v = f.update(99.0, 0.0).expect("two changes")[0];
    assert!(close(v, 40.0), "{v}");
    let v = f.update(103.0, 0.0).expect("ready")[0];
    assert!(close(v, 100.0 - 100.0 / (1.0 + 2.5 / 0.75)), "{v}");
    let mut up = FeatureSet::new(&[Feature::Rsi(2)]);
    for c in [1.0, 2.0, 3.0] {
        if let Some(v) = up.update(c, 0.0) {
            assert_eq!(v[0], 100.0, "no loss: 100");
        }
    }
}

/// The EMA ratio is ready after the slow span, and is the two EMAs' ratio minus one; the
/// regime passes through.
#[test]
fn ema_ratio_and_regime() {
    let mut f = FeatureSet::new(&[Feature::EmaRatio(1, 3), Feature::Regime]);
    assert_eq!(f.update(10.0, 1.0), None);
    assert_eq!(f.update(12.0, 1.0), None);
    let v = f.update(9.0, 3.0).expect("slow span reached").to_vec();
    // fast (span 1) = the close; slow (alpha 0.5): 10, 11, 10.
    assert!(close(v[0], 9.0 / 10.0 - 1.0));
    assert_eq!(v[1], 3.0);
}
