use super::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12
}

/// Closes 100, 110, 99, 99; the model says long at bar 0, short at bar 1, flat from bar 2.
/// Bar 1 earns +10% long; bar 2 earns −(99/110 − 1) = +10% short; bar 3 nothing.
#[test]
fn positions_earn_the_next_bars_return() {
    let closes = [100.0, 110.0, 99.0, 99.0];
    let outs = [Some(1.0), Some(-1.0), Some(0.0), Some(0.0)];
    let free = Costs {
        commission_bps: 0.0,
        slippage_bps: 0.0,
    };
    let r = run(&closes, &outs, &Output::Sign, &free, 0);
    assert_eq!(r.positions, vec![1.0, -1.0, 0.0, 0.0]);
    assert_eq!(r.returns.len(), 4);
    assert!(close(r.returns[0], 0.0));
    assert!(close(r.returns[1], 0.10));
    assert!(close(r.returns[2], 0.10));
    assert!(close(r.returns[3], 0.0));
    assert_eq!(r.position_changes, 3);
    assert_eq!(r.turnover, 1.0 + 2.0 + 1.0);
    assert_eq!(r.exposed_bars, 2);
    assert_eq!(r.trades.len(), 2);
    assert!(close(r.trades[0], 0.10) && close(r.trades[1], 0.10));
}

/// Ten basis points a unit: the entry at bar 0 pays 10 bp, the flip at bar 1 (two units) 20
/// bp, each in the return of the bar of the change.
#[test]
fn costs_are_paid_per_unit_changed() {
    let closes = [100.0, 110.0, 99.0];
    let outs = [Some(1.0), Some(-1.0), Some(-1.0)];
    let costs = Costs {
        commission_bps: 6.0,
        slippage_bps: 4.0,
    };
    let r = run(&closes, &outs, &Output::Sign, &costs, 0);
    assert!(close(r.returns[0], -0.001));
    assert!(close(r.returns[1], 0.10 - 0.001 * 2.0));
    assert!(close(r.returns[2], 0.10));
}

/// Lagged one bar, the same outputs trade a bar late.
#[test]
fn the_lag_probe_delays_every_position() {
    let closes = [100.0, 110.0, 121.0];
    let outs = [Some(1.0), Some(1.0), Some(1.0)];
    let free = Costs {
        commission_bps: 0.0,
        slippage_bps: 0.0,
    };
    let r = run(&closes, &outs, &Output::Sign, &free, 1);
    assert_eq!(r.positions, vec![0.0, 1.0, 1.0]);
    assert!(close(r.returns[1], 0.0) && close(r.returns[2], 0.10));
}

#[test]
fn a_threshold_output_is_flat_between_its_bounds() {
    let out = Output::Threshold {
        long: 0.6,
        short: 0.4,
    };
    assert_eq!(position(&out, Some(0.7)), 1.0);
    assert_eq!(position(&out, Some(0.5)), 0.0);
    assert_eq!(position(&out, Some(0.3)), -1.0);
    assert_eq!(position(&out, None), 0.0);
}

/// The bundled GOOG daily bars through the bundled EMA cross: a daily interval, and the
/// EMA outputs change sign where the live model's do.
#[test]
fn the_bundled_model_runs_on_the_bundled_data() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bars = Bars::read(&root.join("data/GOOG_1d.csv")).expect("bars");
    assert!(bars.closes.len() > 1000);
    assert_eq!(bars.interval(), Some(Duration::days(1)));
    let model = Artifact::load(&root.join("models/ema_cross")).expect("model");
    let outs = outputs(&model, &bars.closes, true).expect("ema cross runs");
    let mut fast = Ema::new(10);
    let mut slow = Ema::new(30);
    for (c, o) in bars.closes.iter().zip(&outs) {
        let d = fast.update(*c) - slow.update(*c);
        assert_eq!(*o, Some(d));
    }
}
