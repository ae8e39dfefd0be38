use rust_decimal_macros::dec;

use super::*;

fn bars(closes: &[f64]) -> Bars {
    Bars::daily(closes.len(), |i| closes[i as usize])
}

fn fill(b: &Bars, t: usize, signed: Decimal, price: Decimal, commission: Decimal) -> Fill {
    Fill {
        at: b.times[t],
        signed,
        price,
        commission,
        slippage: Decimal::ZERO,
        partial: false,
    }
}

/// Long one unit at bar 1, flipped short at bar 3, held to the end: the equity, the
/// position and the closed trade as worked by hand.
#[test]
fn the_fills_rebuild_equity_positions_and_trades() {
    let b = bars(&[10.0, 11.0, 12.0, 11.0, 10.0]);
    let fills = [
        fill(&b, 1, dec!(1), dec!(11), dec!(0.5)),
        fill(&b, 3, dec!(-2), dec!(11), dec!(1)),
    ];
    let r = rebuild(&b, &fills, dec!(100));
    // Equity: 100, 100 − 11 − 0.5 + 11, then +1, −1 − 1 (commission), +1.
    let equity = [100.0, 99.5, 100.5, 98.5, 99.5];
    let mut e = 100.0;
    for (t, r) in r.returns.iter().enumerate() {
        e *= 1.0 + r;
        assert!((e - equity[t]).abs() < 1e-9, "bar {t}: {e}");
    }
    assert_eq!(r.position_changes, 2);
    assert!((r.pnl_per_unit - 1.0).abs() < 1e-12, "{}", r.pnl_per_unit);
    // One closed trade: bought at 11 (0.5 commission), sold at 11 (0.5 of the 1): −1 on 11.
    assert_eq!(r.trade_ends, vec![3]);
    assert!(
        (r.trades[0] - (-1.0 / 11.0)).abs() < 1e-12,
        "{:?}",
        r.trades
    );
    assert!(r.positions[1] > 0.0 && r.positions[3] < 0.0 && r.positions[0] == 0.0);
}

/// A fill line is read exactly, or refused with the key at fault: never taken as zero.
#[test]
fn a_fill_line_is_read_exactly_or_refused() {
    let line = serde_json::json!({
        "timestamp": "2024-01-02T00:00:00.000Z",
        "event": "fill_received",
        "data": {"side": "SELL", "quantity": 3, "price": 101.25, "commission": 0.5,
                 "leaves_quantity": 1, "slippage_bps": 2},
    });
    let f = Fill::parse(&line).expect("a fill");
    assert_eq!(
        (f.signed, f.price, f.commission),
        (dec!(-3), dec!(101.25), dec!(0.5))
    );
    assert_eq!(f.slippage, dec!(0.06075));
    assert!(f.partial);
    let mut bad = line.clone();
    bad["data"]["price"] = serde_json::json!("n/a");
    let e = Fill::parse(&bad).err().expect("refused");
    assert!(e.contains("data.price") && e.contains("n/a"), "{e}");
    let mut bad = line;
    bad["data"]["side"] = serde_json::json!("HOLD");
    assert!(
        Fill::parse(&bad)
            .err()
            .expect("refused")
            .contains("data.side")
    );
}

/// A live config's outside world is cut off: the backtest reads its bars file, trades the
/// paper venue, sends no alert and pings no dead man's switch.
#[test]
fn a_live_config_backtests_on_its_file_and_the_paper_venue_alone() {
    let mut live = VigilConfig::embedded_default();
    let feed: vigil_config::FeedConfig = toml::from_str(
        "url = \"ws://feed.example:9000/stream\"\nkey_id = \"k\"\nsecret_file = \"/s\"",
    )
    .expect("feed");
    live.data.feed = Some(feed);
    live.execution.venue = VenueKind::Alpaca;
    live.monitor.dead_man =
        toml::from_str("heartbeat_url = \"https://hc.example/ping/abc\"").expect("dead man");
    assert!(live.monitor.dead_man.heartbeat_url.is_some());
    let work = Path::new("/tmp/work");
    let cfg = session_config(
        &live,
        Path::new("models/m"),
        Path::new("data/GOOG_1d.csv"),
        work,
        false,
    );
    assert!(cfg.data.feed.is_none() && cfg.data.cross_check.is_none());
    assert_eq!(cfg.data.instruments[0].symbol, "GOOG");
    assert!(matches!(cfg.execution.venue, VenueKind::Paper));
    assert!(!cfg.alerts.enabled && !cfg.control.enabled);
    assert!(cfg.monitor.dead_man.heartbeat_url.is_none());
    assert_eq!(cfg.checklist.dir, work.join("checklists"));
    assert_eq!(cfg.store.path, work.join("state.db"));
}
