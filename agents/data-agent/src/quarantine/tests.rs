use rust_decimal_macros::dec;
use vigil_core::Symbol;
use vigil_testkit::timestamp as t;

use super::*;
use crate::anomaly::AnomalyBounds;

fn symbols() -> SymbolTable {
    SymbolTable::new([Symbol::from("TEST")])
}

fn bar(day: u32, close: Decimal) -> Bar {
    Bar {
        symbol: SymbolId(0),
        ts: t(&format!("2024-01-{day:02}T00:00:00Z")),
        open: close,
        high: close,
        low: close,
        close,
        volume: None,
    }
}

fn on(max_jump: Decimal, release_after: usize) -> Quarantine {
    let mut q = Quarantine::default();
    q.set_watch(AnomalyWatch::new(
        AnomalyBounds {
            max_jump: Some(max_jump),
            k_sigma: None,
            min_sigma: 0.0,
            window: 20,
            release_after,
        },
        1,
    ));
    q
}

fn kinds(q: &mut Quarantine) -> Vec<&'static str> {
    q.drain()
        .map(|n| match n {
            Notice::Risk(m) if m.on => "risk:on",
            Notice::Risk(_) => "risk:off",
            Notice::Log(e) => e.event.name(),
        })
        .collect()
}

#[test]
fn off_every_bar_goes_on_and_nothing_is_said() {
    let mut q = Quarantine::default();
    let s = symbols();
    assert!(q.screen("a", &bar(1, dec!(100)), bar(1, dec!(100)).ts, &s));
    assert!(q.screen("a", &bar(2, dec!(900)), bar(2, dec!(900)).ts, &s));
    assert!(kinds(&mut q).is_empty());
    assert!(matches!(
        q.command(
            SetQuarantine {
                symbol: "TEST".into(),
                on: true,
                actor: "ops".into(),
                reason: "r".into(),
            },
            bar(3, dec!(1)).ts,
            &s
        ),
        Err(CommandError::Conflict(_))
    ));
}

#[test]
fn a_jump_withholds_its_bar_and_risk_hears_before_the_log_then_calm_bars_release() {
    let mut q = on(dec!(0.2), 2);
    let s = symbols();
    let at = |b: &Bar| b.ts;
    let b = bar(1, dec!(100));
    assert!(q.screen("a", &b, at(&b), &s));
    let b = bar(2, dec!(150));
    assert!(!q.screen("a", &b, at(&b), &s), "the jump is withheld");
    assert_eq!(kinds(&mut q), ["risk:on", "symbol_quarantined"]);
    assert_eq!(q.quarantined(), 1);
    let b = bar(3, dec!(150));
    assert!(!q.screen("a", &b, at(&b), &s), "held");
    let b = bar(4, dec!(150));
    assert!(q.screen("a", &b, at(&b), &s), "released by two calm bars");
    assert_eq!(kinds(&mut q), ["risk:off", "symbol_released"]);
    assert_eq!(q.withheld(), 2);
    assert_eq!(q.quarantined(), 0);
}

#[test]
fn an_operator_s_quarantine_is_told_logged_and_refused_for_an_unknown_symbol() {
    let mut q = on(dec!(0.2), 2);
    let s = symbols();
    let cmd = |symbol: &str, on| SetQuarantine {
        symbol: symbol.into(),
        on,
        actor: "ops".into(),
        reason: "checking".into(),
    };
    let now = bar(1, dec!(1)).ts;
    assert!(matches!(
        q.command(cmd("NOPE", true), now, &s),
        Err(CommandError::Invalid(e)) if e.contains("symbols: TEST")
    ));
    assert!(q.command(cmd("TEST", true), now, &s).is_ok());
    assert_eq!(kinds(&mut q), ["risk:on", "symbol_quarantined"]);
    assert_eq!(
        q.command(cmd("TEST", true), now, &s),
        Ok("TEST in quarantine already".into())
    );
    assert!(kinds(&mut q).is_empty());
    assert!(q.command(cmd("TEST", false), now, &s).is_ok());
    assert_eq!(kinds(&mut q), ["risk:off", "symbol_released"]);
}

#[test]
fn a_reference_that_disagrees_quarantines_through_the_watch() {
    let mut q = on(dec!(0.5), 0);
    q.set_cross_check(CrossCheck::new("ref", dec!(1), 2, 1));
    let s = symbols();
    let b = bar(1, dec!(100));
    assert!(q.screen("a", &b, b.ts, &s), "no reference bar yet");
    assert!(q.on_reference(&[bar(1, dec!(110))], b.ts, &s));
    assert_eq!(kinds(&mut q), ["risk:on", "symbol_quarantined"]);
    assert_eq!(q.disagreements(), 1);
    let b = bar(2, dec!(100));
    assert!(!q.screen("a", &b, b.ts, &s), "held from then on");
}
