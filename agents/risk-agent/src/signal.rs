//! A signal, decided: the policy's decision under the trading state, the schedule and the
//! quarantine, turned into the log line and the intent for the Execution agent; and the
//! counts of what was approved and rejected, by kind.

use std::sync::Arc;

use rust_decimal::Decimal;
use vigil_config::{OrderTypeConfig, RiskConfig};
use vigil_core::{
    CanaryLeg, ClientOrderId, Direction, LegState, Level, OrderRequest, OrderType, Side, Signal,
    Timestamp, TradingState,
};
use vigil_log::{Event, LogContext, LogEvent};
use vigil_messages::{BookSnapshot, LedgerCross, OrderIntent};

use crate::agent::SERVICE;
use crate::policy::{Decision, decide_netted};
use crate::schedule::Session;

/// The kind of a rejection, for the trigger counts (a fixed, small set of labels).
fn trigger_kind(reason: &str) -> &'static str {
    const KINDS: [(&str, &str); 7] = [
        ("halted", "halted"),
        ("market closed", "market_closed"),
        ("reduce-only", "reduce_only"),
        ("gross exposure", "gross_exposure"),
        ("of equity", "position_limit"),
        ("reference price", "bad_price"),
        ("equity", "bad_equity"),
    ];
    KINDS
        .iter()
        .find(|(needle, _)| reason.contains(needle))
        .map_or("other", |(_, kind)| kind)
}

/// What the agent approved and rejected.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) approved: u64,
    pub(crate) rejected: u64,
    /// Rejections by kind.
    pub(crate) triggers: Vec<(&'static str, u64)>,
}

impl Tally {
    /// Counts a rejection for `reason`, by its kind.
    pub(crate) fn reject(&mut self, reason: &str) {
        self.rejected += 1;
        let kind = trigger_kind(reason);
        match self.triggers.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.triggers.push((kind, 1)),
        }
    }
}

/// How orders are priced.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pricing {
    pub(crate) order_type: OrderTypeConfig,
    /// A limit order's distance from the reference price, in basis points.
    pub(crate) limit_offset_bps: Decimal,
}

/// What the agent does about a signal.
#[derive(Debug)]
pub(crate) struct Verdict {
    /// The decision's log line.
    pub(crate) event: LogEvent,
    /// The order for the Execution agent, when approved.
    pub(crate) intent: Option<OrderIntent>,
    /// The rejection's reason, when rejected.
    pub(crate) rejected: Option<String>,
    /// A canary's opposite wants, crossed between the versions before the order.
    pub(crate) cross: Option<LedgerCross>,
}

/// The legs of `signal`: production's alone, or with a canary's candidate, each with its
/// share of the size.
fn legs(signal: &Signal) -> Vec<(Direction, Decimal)> {
    match signal.canary {
        None => vec![(signal.direction, Decimal::ONE)],
        Some(leg) => {
            let w = leg.weight.clamp(Decimal::ZERO, Decimal::ONE);
            vec![(signal.direction, Decimal::ONE - w), (leg.direction, w)]
        }
    }
}

/// A canary's decision split between the versions: what crosses inside the account, and
/// each version's share of the order.
#[derive(Debug, Default)]
struct Split {
    moves: Vec<(&'static str, Decimal)>,
    allocation: Vec<(&'static str, Decimal)>,
}

impl Split {
    fn cross(&self, signal: &Signal) -> Option<LedgerCross> {
        (!self.moves.is_empty()).then(|| LedgerCross {
            trace_id: signal.trace_id.clone(),
            symbol: signal.symbol,
            price: signal.reference_price,
            moves: self.moves.clone(),
        })
    }

    /// The split on the approval's line: `allocation` and `crossed`, as `version=qty`.
    fn describe(&self, event: LogEvent) -> LogEvent {
        let text = |parts: &[(&str, Decimal)]| {
            parts
                .iter()
                .map(|(v, q)| format!("{v}={q}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        match (self.allocation.is_empty(), self.moves.is_empty()) {
            (true, true) => event,
            _ => event
                .with("allocation", text(&self.allocation))
                .with("crossed", text(&self.moves)),
        }
    }
}

/// Each version's want is its leg's target less what its sub-ledger holds; opposite wants
/// cross at the reference price and the rest is each one's share of the order. Nothing
/// when not a canary, when refused, or when reduce-only changed the target (the order's
/// fills then go by the sub-ledgers' default rule).
fn canary_split(
    signal: &Signal,
    book: &BookSnapshot,
    decision: &Decision,
    targets: [Decimal; 2],
) -> Split {
    let Some(leg) = signal.canary else {
        return Split::default();
    };
    let target = match decision {
        Decision::Order { target, .. } | Decision::NoChange { target } => *target,
        Decision::Reject { .. } => return Split::default(),
    };
    if target != targets[0] + targets[1] {
        return Split::default();
    }
    let held = |v: &str| book.ledgers.iter().find(|(x, _)| *x == v).map(|(_, q)| *q);
    let (held_p, held_c) = if book.ledgers.is_empty() {
        (book.position, Decimal::ZERO)
    } else {
        (
            held(signal.model_version).unwrap_or_default(),
            held(leg.model_version).unwrap_or_default(),
        )
    };
    if held_p + held_c != book.position {
        return Split::default(); // the ledgers do not cover the book: no split to trust
    }
    let want_p = targets[0] - held_p;
    let want_c = targets[1] - held_c;
    let mut split = Split::default();
    let (mut order_p, mut order_c) = (want_p, want_c);
    if !want_p.is_zero()
        && !want_c.is_zero()
        && want_p.is_sign_positive() != want_c.is_sign_positive()
    {
        let x = want_p.abs().min(want_c.abs());
        let mp = if want_p.is_sign_positive() { x } else { -x };
        split.moves = vec![(signal.model_version, mp), (leg.model_version, -mp)];
        order_p -= mp;
        order_c += mp;
    }
    if !(order_p + order_c).is_zero() {
        split.allocation = vec![
            (signal.model_version, order_p),
            (leg.model_version, order_c),
        ];
    }
    split
}

/// A canary aborted by handing the candidate's positions to production: they cross over at
/// the reference price; nothing is ordered.
fn hand_over(
    signal: &Signal,
    leg: &CanaryLeg,
    book: &BookSnapshot,
    ts: Timestamp,
    symbol: Arc<str>,
) -> Verdict {
    let held = book
        .ledgers
        .iter()
        .find(|(v, _)| *v == leg.model_version)
        .map_or(Decimal::ZERO, |(_, q)| *q);
    let event = LogEvent::new(ts, SERVICE, Event::RiskApproved)
        .trace(&signal.trace_id)
        .with("symbol", symbol)
        .with("target_position", book.position)
        .with("position", book.position)
        .with("handed_over", held)
        .with("from", leg.model_version)
        .with("to", signal.model_version)
        .with(
            "note",
            "canary aborted: the candidate's positions go to production; no order",
        )
        .context(LogContext {
            signal_id: Some(signal.signal_id.clone()),
            model_version: Some(signal.model_version),
            portfolio_value: Some(book.equity),
            ..LogContext::default()
        });
    Verdict {
        event,
        intent: None,
        rejected: None,
        cross: (!held.is_zero()).then(|| LedgerCross {
            trace_id: signal.trace_id.clone(),
            symbol: signal.symbol,
            price: signal.reference_price,
            moves: vec![(leg.model_version, -held), (signal.model_version, held)],
        }),
    }
}

/// Decides on `signal` given the book, the trading state, what the schedule allows and
/// the quarantine of its symbol (why, when it is in one). `ts` stamps the log line and
/// `symbol` names it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn on_signal(
    cfg: &RiskConfig,
    pricing: Pricing,
    state: TradingState,
    session: Session,
    quarantine: Option<&String>,
    signal: &Signal,
    book: &BookSnapshot,
    ts: Timestamp,
    symbol: Arc<str>,
) -> Verdict {
    if let Some(leg) = signal.canary.filter(|l| l.state == LegState::HandOver) {
        return hand_over(signal, &leg, book, ts, symbol);
    }
    let mut split = Split::default();
    let decision = match session {
        _ if quarantine.is_some() => Decision::Reject {
            reason: format!(
                "symbol in quarantine (data anomaly): {}",
                quarantine.map_or("", String::as_str)
            ),
        },
        Session::Closed if state != TradingState::Halted => Decision::Reject {
            reason: "market closed: outside the trading session (schedule)".into(),
        },
        session => {
            let state = if session == Session::CloseOnly && state == TradingState::Active {
                TradingState::ReduceOnly
            } else {
                state
            };
            let (decision, targets) = decide_netted(
                cfg,
                state,
                &legs(signal),
                signal.reference_price,
                signal.regime,
                book,
            );
            split = canary_split(signal, book, &decision, targets);
            decision
        }
    };
    let context = LogContext {
        signal_id: Some(signal.signal_id.clone()),
        signal_strength: Some(signal.strength),
        regime: Some(signal.regime),
        model_version: Some(signal.model_version),
        portfolio_value: Some(book.equity),
    };
    match decision {
        Decision::Reject { reason } => Verdict {
            event: LogEvent::new(ts, SERVICE, Event::RiskRejected)
                .trace(&signal.trace_id)
                .with("symbol", symbol)
                .with("direction", signal.direction.as_str())
                .with("price", signal.reference_price)
                .with("position", book.position)
                .with("trading_state", state.as_str())
                .with("reason", reason.clone())
                .context(context),
            intent: None,
            rejected: Some(reason),
            cross: None,
        },
        Decision::NoChange { target } => Verdict {
            event: LogEvent::new(ts, SERVICE, Event::RiskApproved)
                .level(Level::Debug)
                .trace(&signal.trace_id)
                .with("symbol", symbol)
                .with("target_position", target)
                .with("position", book.position)
                .with("note", "book already at target; no order")
                .context(context),
            intent: None,
            rejected: None,
            cross: split.cross(signal),
        },
        Decision::Order {
            side,
            quantity,
            target,
        } => {
            // A canary's candidate being closed goes out by limit orders.
            let closing = signal.canary.is_some_and(|l| l.state == LegState::Close);
            let (order_type, limit_price) = match pricing.order_type {
                OrderTypeConfig::Market if !closing => (OrderType::Market, None),
                OrderTypeConfig::Market | OrderTypeConfig::Limit => {
                    let offset = pricing.limit_offset_bps / Decimal::from(10_000);
                    let px = match side {
                        Side::Buy => signal.reference_price * (Decimal::ONE + offset),
                        Side::Sell => signal.reference_price * (Decimal::ONE - offset),
                    };
                    (OrderType::Limit, Some(px.round_dp(8)))
                }
            };
            let event = LogEvent::new(ts, SERVICE, Event::RiskApproved)
                .trace(&signal.trace_id)
                .with("symbol", symbol)
                .with("side", side.as_str())
                .with("quantity", quantity)
                .with("target_position", target)
                .with("position", book.position)
                .with("price", signal.reference_price)
                .with("equity", book.equity)
                .with("trading_state", state.as_str())
                .context(context.clone());
            let event = split.describe(event);
            let cross = split.cross(signal);
            let intent = OrderIntent {
                trace_id: signal.trace_id.clone(),
                order: OrderRequest {
                    client_order_id: ClientOrderId::for_intent(&signal.trace_id, 1),
                    symbol: signal.symbol,
                    side,
                    quantity,
                    order_type,
                    limit_price,
                    submitted_at: signal.at,
                },
                reference_price: signal.reference_price,
                cancel_open: !book.open_orders.is_empty(),
                context,
                allocation: split.allocation,
                arrived_at: None,
            };
            Verdict {
                event,
                intent: Some(intent),
                rejected: None,
                cross,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use vigil_core::Direction;
    use vigil_testkit::text;

    use super::*;
    use crate::fixtures::{bars, flat_book, signal};

    fn verdict(
        order_type: OrderTypeConfig,
        state: TradingState,
        session: Session,
        quarantine: Option<&String>,
    ) -> Verdict {
        let s = signal(&bars(1, 1)[0], Direction::Long);
        on_signal(
            &RiskConfig {
                position_pct: dec!(0.05),
                ..RiskConfig::default()
            },
            Pricing {
                order_type,
                limit_offset_bps: dec!(10),
            },
            state,
            session,
            quarantine,
            &s,
            &flat_book(),
            s.at,
            "TEST".into(),
        )
    }

    const P: &str = "m@1.0.0";
    const C: &str = "m@1.1.0";

    /// A canary's signal (production long, the candidate `cand` at `weight`) decided on
    /// `book` (size 50: 5 % of 100,000 at 100).
    fn canary(cand: Direction, weight: Decimal, state: LegState, book: &BookSnapshot) -> Verdict {
        netted(Direction::Long, cand, weight, state, book)
    }

    /// As [`canary`], production wanting `prod`.
    fn netted(
        prod: Direction,
        cand: Direction,
        weight: Decimal,
        state: LegState,
        book: &BookSnapshot,
    ) -> Verdict {
        let mut s = signal(&bars(1, 1)[0], prod);
        s.model_version = P;
        s.canary = Some(CanaryLeg {
            model_version: C,
            direction: cand,
            weight,
            state,
        });
        on_signal(
            &RiskConfig {
                position_pct: dec!(0.05),
                ..RiskConfig::default()
            },
            Pricing {
                order_type: OrderTypeConfig::Market,
                limit_offset_bps: dec!(10),
            },
            TradingState::Active,
            Session::Open,
            None,
            &s,
            book,
            s.at,
            "TEST".into(),
        )
    }

    #[test]
    fn a_canary_nets_both_versions_and_splits_the_order_by_their_wants() {
        // From flat: production 75 % of 50 long, the candidate 25 % short: one order of 25.
        let v = canary(Direction::Short, dec!(0.25), LegState::Live, &flat_book());
        let intent = v.intent.expect("approved");
        assert_eq!(
            (intent.order.side, intent.order.quantity),
            (Side::Buy, dec!(25))
        );
        assert_eq!(intent.order.order_type, OrderType::Market);
        // Opposite wants cross inside the account (12 of each), the rest is the order's.
        let cross = v.cross.expect("a cross");
        assert_eq!(cross.moves, vec![(P, dec!(12)), (C, dec!(-12))]);
        assert_eq!(intent.allocation, vec![(P, dec!(25)), (C, dec!(0))]);
        // Production alone held 50 long; both long at 5 %: no order, 2 cross over.
        let book = BookSnapshot {
            position: dec!(50),
            ..flat_book()
        };
        let v = canary(Direction::Long, dec!(0.05), LegState::Live, &book);
        assert!(v.intent.is_none());
        let cross = v.cross.expect("a cross");
        assert_eq!(cross.moves, vec![(P, dec!(-2)), (C, dec!(2))]);
        assert_eq!(cross.price, dec!(100));
        // Sub-ledgers that do not cover the book: no split to trust.
        let book = BookSnapshot {
            position: dec!(50),
            ledgers: vec![(P, dec!(40)), (C, dec!(5))],
            ..flat_book()
        };
        let v = canary(Direction::Short, dec!(0.5), LegState::Live, &book);
        assert!(v.cross.is_none());
        assert!(v.intent.expect("approved").allocation.is_empty());
    }

    #[test]
    fn an_aborted_canary_hands_over_or_closes_by_limit_orders() {
        let book = BookSnapshot {
            position: dec!(50),
            ledgers: vec![(P, dec!(25)), (C, dec!(25))],
            ..flat_book()
        };
        // Hand over: the candidate's 25 cross to production; no order.
        let v = canary(Direction::Flat, dec!(0), LegState::HandOver, &book);
        assert!(v.intent.is_none());
        assert_eq!(
            v.cross.expect("a cross").moves,
            vec![(C, dec!(-25)), (P, dec!(25))]
        );
        // Close, production long at weight 1: it wants 50 and holds 25 (+25); the candidate
        // holds 25 and wants 0 (−25): all of it crosses, nothing is ordered.
        let v = canary(Direction::Flat, dec!(0), LegState::Close, &book);
        assert!(v.intent.is_none());
        assert_eq!(
            v.cross.expect("a cross").moves,
            vec![(P, dec!(25)), (C, dec!(-25))]
        );
        // With production flat, the candidate's 25 go out by a limit order (the venue's
        // order type is market: a closing unwind is limit all the same).
        let flat = BookSnapshot {
            position: dec!(25),
            ledgers: vec![(P, dec!(0)), (C, dec!(25))],
            ..flat_book()
        };
        let v = netted(
            Direction::Flat,
            Direction::Flat,
            dec!(0),
            LegState::Close,
            &flat,
        );
        let intent = v.intent.expect("the close");
        assert_eq!(
            (intent.order.side, intent.order.quantity),
            (Side::Sell, dec!(25))
        );
        assert_eq!(intent.order.order_type, OrderType::Limit);
        assert_eq!(intent.order.limit_price, Some(dec!(99.9)));
        assert_eq!(intent.allocation, vec![(P, dec!(0)), (C, dec!(-25))]);
    }

    #[test]
    fn an_approved_limit_order_is_priced_off_the_reference_price() {
        let v = verdict(
            OrderTypeConfig::Limit,
            TradingState::Active,
            Session::Open,
            None,
        );
        let intent = v.intent.expect("approved");
        assert_eq!(intent.order.side, Side::Buy);
        assert_eq!(intent.order.quantity, dec!(50));
        assert_eq!(intent.order.limit_price, Some(dec!(100.1)));
        assert_eq!(v.event.event, Event::RiskApproved);
        assert!(v.rejected.is_none());
    }

    #[test]
    fn quarantine_and_a_closed_market_reject_and_close_only_refuses_to_add() {
        let why = "a spike".to_string();
        let v = verdict(
            OrderTypeConfig::Market,
            TradingState::Active,
            Session::Open,
            Some(&why),
        );
        assert_eq!(
            v.rejected.as_deref(),
            Some("symbol in quarantine (data anomaly): a spike")
        );
        let v = verdict(
            OrderTypeConfig::Market,
            TradingState::Active,
            Session::Closed,
            None,
        );
        assert_eq!(
            text(&v.event, "reason"),
            "market closed: outside the trading session (schedule)"
        );
        let v = verdict(
            OrderTypeConfig::Market,
            TradingState::Active,
            Session::CloseOnly,
            None,
        );
        assert!(v.intent.is_none());
        assert!(v.rejected.expect("rejected").contains("reduce-only"));
    }

    #[test]
    fn rejections_are_counted_by_kind() {
        let mut tally = Tally::default();
        tally.reject("trading halted: circuit breaker tripped");
        tally.reject("trading halted: circuit breaker tripped");
        tally.reject("market closed: outside the trading session (schedule)");
        tally.reject("something new");
        assert_eq!(tally.rejected, 4);
        assert_eq!(
            tally.triggers,
            vec![("halted", 2), ("market_closed", 1), ("other", 1)]
        );
    }
}
