use super::*;
use crate::vectorized::{Costs, Setup, run};
use vigil_model::Output;

/// A wave, so that a sign-following model trades both ways.
fn daily(n: usize) -> Bars {
    Bars::daily(n, |i| 100.0 + 10.0 * (i / 7.0).sin() + i * 0.01)
}

#[test]
fn the_split_and_the_folds_cover_the_bars_they_say() {
    let bars = daily(1000);
    let outs: Vec<Option<f64>> = bars
        .closes
        .windows(2)
        .map(|w| Some(w[1] - w[0]))
        .chain([None])
        .collect();
    let r = run(
        &bars.closes,
        &outs,
        &Setup {
            output: Output::Sign,
            allow_short: true,
            costs: Costs::FREE,
            exposure: 1.0,
            lag: 0,
        },
    );
    let minimum = MinimumSample {
        days: 30.0,
        trades: 5,
    };
    let m = Measure {
        run: &r,
        bars: &bars,
        periods_per_year: 365.25,
        trials: 1,
        minimum: &minimum,
    };
    let s = m.split(0.7);
    assert_eq!(s.in_sample_bars, (0, 700));
    assert_eq!(s.out_of_sample_bars, (700, 1000));
    assert_eq!(s.in_sample.bars, 700);
    assert_eq!(s.out_of_sample.bars, 300);
    // Every closed trade is in exactly one part.
    assert_eq!(
        s.in_sample.trades + s.out_of_sample.trades,
        r.trades.len() as u64
    );
    let (i, o) = (
        s.in_sample.sharpe.value().expect("is"),
        s.out_of_sample.sharpe.value().expect("oos"),
    );
    assert!((s.decay.expect("decay") - o / i).abs() < 1e-12);

    let folds = m.walk_forward(4);
    assert_eq!(folds.len(), 4);
    for (k, f) in folds.iter().enumerate() {
        assert_eq!(f.fold, k + 1);
        assert_eq!(f.in_sample_bars, (0, (k + 1) * 200));
        assert_eq!(f.out_of_sample_bars.0, (k + 1) * 200);
    }
    assert_eq!(folds[3].out_of_sample_bars.1, 1000);
    // A fold too short for the minimum withholds its ratios, with the reason.
    let strict = MinimumSample {
        days: 250.0,
        trades: 5,
    };
    let f = Measure {
        minimum: &strict,
        ..m
    }
    .walk_forward(4);
    assert!(f[0].out_of_sample.sharpe.value().is_none());
    assert_eq!(f[0].decay, None);
}
