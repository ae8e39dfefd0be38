use proptest::prelude::*;

use super::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// Worked by hand: returns 1%, −2%, 3%, 0%. Mean 0.005; deviations 0.005, −0.025, 0.025,
/// −0.005; sum of squares 0.0013; sample variance 0.0013 / 3; Sharpe 0.005 / 0.0208167.
/// Downside: only −2%, sqrt(0.0004 / 4) = 0.01; Sortino 0.5.
#[test]
fn sharpe_and_sortino_of_a_hand_worked_series() {
    let r = [0.01, -0.02, 0.03, 0.0];
    let sr = sharpe(&r).expect("varies");
    assert!(close(sr, 0.005 / (0.0013_f64 / 3.0).sqrt()), "{sr}");
    assert!(close(sr, 0.240_192_230_5), "{sr}");
    assert!(close(sortino(&r).expect("a loss"), 0.5));
    // 1.01 · 0.98 · 1.03 · 1.00 − 1
    assert!(close(compounded(&r), 0.019_494));
    assert_eq!(sharpe(&[0.01, 0.01, 0.01]), None);
    assert_eq!(sortino(&[0.01, 0.02]), None);
}

/// Equity 1 → 1.10 → 0.99 → 1.05 → 1.20 → 0.90: the deepest fall is 1.20 → 0.90 (25%); the
/// longest time under a peak is 1.10's: two bars (0.99, 1.05) before 1.20.
#[test]
fn drawdown_depth_and_duration_by_hand() {
    let equity = [1.0, 1.10, 0.99, 1.05, 1.20, 0.90];
    let returns: Vec<f64> = equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
    let (depth, bars) = drawdown(&returns);
    assert!(close(depth, 0.25), "{depth}");
    assert_eq!(bars, 2);
    let (depth, bars) = drawdown(&[0.1, -0.1, 0.0, 0.0, 0.5]);
    assert!(close(depth, 0.1));
    assert_eq!(bars, 3);
}

/// Ranks with ties: Spearman of a monotone pair is 1, of a reversed one −1, and a tie
/// shares its rank.
#[test]
fn the_information_coefficient_is_a_rank_correlation() {
    assert_eq!(ranks(&[3.0, 1.0, 2.0, 1.0]), vec![4.0, 1.5, 3.0, 1.5]);
    assert_eq!(
        ranks(&[-1.0, 2.0, -3.0, 0.0, -0.5, 1e-300, -1e300]),
        vec![3.0, 7.0, 2.0, 5.0, 4.0, 6.0, 1.0]
    );
    let ic = information_coefficient(&[1.0, 2.0, 3.0, 4.0], &[0.1, 0.5, 0.9, 10.0]);
    assert!(close(ic.expect("varies"), 1.0));
    let ic = information_coefficient(&[1.0, 2.0, 3.0], &[0.3, 0.2, 0.1]);
    assert!(close(ic.expect("varies"), -1.0));
    assert_eq!(information_coefficient(&[1.0, 1.0], &[0.1, 0.2]), None);
    // −0 and 0 are one value.
    assert_eq!(ranks(&[0.0, -0.0, -1.0]), vec![2.5, 2.5, 1.0]);
}

/// The information coefficient against a Spearman correlation computed here the slow way:
/// each rank by counting (ties their mean), then Pearson's formula in two passes.
#[test]
fn the_information_coefficient_matches_a_spearman_counted_by_hand() {
    let naive_ranks = |xs: &[f64]| -> Vec<f64> {
        xs.iter()
            .map(|x| {
                let below = xs.iter().filter(|y| *y < x).count() as f64;
                let equal = xs.iter().filter(|y| *y == x).count() as f64;
                below + (equal + 1.0) / 2.0
            })
            .collect()
    };
    let pearson = |a: &[f64], b: &[f64]| {
        let n = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    };
    // A seeded walk of values with many ties (rounded to a few levels).
    let mut s = 7_u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % 1000) as f64 / 1000.0
    };
    let xs: Vec<f64> = (0..500).map(|_| (next() * 20.0).round()).collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|x| (x + next() * 15.0).round() - 7.0)
        .collect();
    let want = pearson(&naive_ranks(&xs), &naive_ranks(&ys));
    let got = information_coefficient(&xs, &ys).expect("varies");
    assert!((got - want).abs() < 1e-12, "{got} against {want}");
    assert!(want > 0.5, "the pair is correlated: {want}");
    // Hand-worked: x ranks 1, 2.5, 2.5, 4, 5; y ranks 2, 1, 5, 3.5, 3.5.
    let got = information_coefficient(&[1.0, 2.0, 2.0, 3.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 3.0]);
    // Centred: x −2, −0.5, −0.5, 1, 2; y −1, −2, 2, 0.5, 0.5 → 3.5 / √(9.5 × 9.5).
    assert!(close(got.expect("varies"), 3.5 / 9.5), "{got:?}");
}

fn sample<'a>(returns: &'a [f64], trades: &'a [f64], days: f64, trials: u64) -> Sample<'a> {
    Sample {
        returns,
        periods_per_year: 252.0,
        days,
        trades,
        exposed_bars: returns.len() as u64 / 2,
        turnover: 10.0,
        trials,
    }
}

/// 18 days with a fine-looking Sharpe: every ratio is withheld with the reason, and says
/// so in JSON; the plain figures are still given.
#[test]
fn ratios_on_too_little_data_are_withheld_with_the_reason() {
    let returns = [0.01, 0.02, -0.005, 0.015, 0.01];
    let trades = [5.0, -1.0, 3.0];
    let s = summarise(
        &sample(&returns, &trades, 18.0, 1),
        &MinimumSample::default(),
    );
    let why = "18 days of data, fewer than the 90 a ratio needs";
    for f in [
        &s.sharpe,
        &s.sortino,
        &s.calmar,
        &s.win_rate,
        &s.probabilistic_sharpe,
        &s.deflated_sharpe,
        &s.annual_return,
    ] {
        assert_eq!(f, &Figure::Withheld(why.into()));
    }
    assert!(close(s.total_return, compounded(&returns)));
    let json = serde_json::to_value(&s).expect("json");
    assert_eq!(
        json["sharpe"],
        serde_json::json!({"value": null, "withheld": why})
    );
    let enough = MinimumSample {
        days: 10.0,
        trades: 5,
    };
    let s = summarise(&sample(&returns, &trades, 18.0, 1), &enough);
    assert_eq!(
        s.sharpe,
        Figure::Withheld("3 closed trades, fewer than the 5 a ratio needs".into())
    );
}

/// A year of a steady edge: every figure computed, by the formulas, and consistent with
/// each other.
#[test]
fn a_full_sample_gives_every_figure() {
    let returns: Vec<f64> = (0..252)
        .map(|i| if i % 3 == 0 { -0.004 } else { 0.005 })
        .collect();
    let trades: Vec<f64> = (0..40)
        .map(|i| if i % 4 == 0 { -2.0 } else { 3.0 })
        .collect();
    let s = summarise(
        &sample(&returns, &trades, 365.0, 1),
        &MinimumSample::default(),
    );
    let sr = sharpe(&returns).expect("varies") * 252f64.sqrt();
    assert_eq!(s.sharpe, Figure::Value(sr));
    assert!(close(
        s.annual_return.value().expect("annual"),
        compounded(&returns)
    ));
    assert_eq!(s.win_rate, Figure::Value(0.75));
    // 30 wins of 3 against 10 losses of 2.
    assert_eq!(s.profit_factor, Figure::Value(4.5));
    assert!(close(s.exposure, 0.5));
    assert!(close(s.turnover, 10.0));
    let psr = s.probabilistic_sharpe.value().expect("psr");
    assert!(psr > 0.99 && psr <= 1.0, "{psr}");
    // One trial: deflated equals probabilistic; more trials deflate it.
    assert_eq!(s.deflated_sharpe, s.probabilistic_sharpe);
    let many = summarise(
        &sample(&returns, &trades, 365.0, 1000),
        &MinimumSample::default(),
    );
    let dsr = many.deflated_sharpe.value().expect("dsr");
    assert!(dsr < psr, "{dsr} < {psr}");
}

/// PSR against a hand computation: returns ±1% alternately around a 0.1% mean have no skew
/// and kurtosis 1, so the variance of the Sharpe estimate is (1 + 0·SR²)/(n − 1).
#[test]
fn the_probabilistic_sharpe_ratio_matches_its_formula() {
    let returns: Vec<f64> = (0..100)
        .map(|i| if i % 2 == 0 { 0.011 } else { -0.009 })
        .collect();
    let sr = sharpe(&returns).expect("varies");
    let m = Moments::of(&returns).expect("two or more");
    let (skew, kurt) = m.skew_kurt();
    assert!(skew.abs() < 1e-9 && close(kurt, 1.0), "{skew} {kurt}");
    let expected = Normal::standard().cdf(sr / (1.0 / 99.0_f64).sqrt());
    let got = probabilistic_sharpe(&m, sr, 0.0).value().expect("psr");
    assert!(close(got, expected), "{got} {expected}");
}

proptest! {
    /// Scaling every return by a positive factor leaves the Sharpe and Sortino ratios as
    /// they are (leverage does not buy risk-adjusted return).
    #[test]
    fn sharpe_is_invariant_to_scaling_the_returns(
        returns in prop::collection::vec(-0.05f64..0.05, 3..200),
        k in 0.01f64..100.0,
    ) {
        let scaled: Vec<f64> = returns.iter().map(|r| r * k).collect();
        match (sharpe(&returns), sharpe(&scaled)) {
            (Some(a), Some(b)) => prop_assert!((a - b).abs() <= 1e-6 * a.abs().max(1.0), "{a} {b}"),
            (None, None) => {}
            (a, b) => prop_assert!(false, "{a:?} {b:?}"),
        }
        if let (Some(a), Some(b)) = (sortino(&returns), sortino(&scaled)) {
            prop_assert!((a - b).abs() <= 1e-6 * a.abs().max(1.0), "{a} {b}");
        }
    }
}
