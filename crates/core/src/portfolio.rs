//! Positions, cash and equity, updated from fills and marked from bar closes.

use rust_decimal::Decimal;

use crate::market::SymbolId;
use crate::order::Fill;

/// A position in one instrument. Positive quantity is long, negative short.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Position {
    /// Signed quantity.
    pub quantity: Decimal,
    /// Average entry price of the open quantity.
    pub avg_price: Decimal,
    /// Profit realised by closing trades, before commission.
    pub realized_pnl: Decimal,
}

/// A book: cash and positions, with equity kept current incrementally so that marking a
/// bar costs a multiplication, not a pass over every position.
#[derive(Clone, Debug)]
pub struct Portfolio {
    initial_cash: Decimal,
    cash: Decimal,
    positions: Vec<Position>,
    marks: Vec<Decimal>,
    equity: Decimal,
    commissions: Decimal,
    peak_equity: Decimal,
    trough_since_peak: Decimal,
    max_drawdown: Decimal,
}

impl Portfolio {
    /// Creates a book holding `cash` and no positions.
    pub fn new(cash: Decimal) -> Self {
        Self {
            initial_cash: cash,
            cash,
            positions: Vec::new(),
            marks: Vec::new(),
            equity: cash,
            commissions: Decimal::ZERO,
            peak_equity: cash,
            trough_since_peak: cash,
            max_drawdown: Decimal::ZERO,
        }
    }

    fn slot(&mut self, symbol: SymbolId) -> usize {
        let i = symbol.index();
        if i >= self.positions.len() {
            self.positions.resize(i + 1, Position::default());
            self.marks.resize(i + 1, Decimal::ZERO);
        }
        i
    }

    /// Marks `symbol` at `price` and updates equity and drawdown.
    pub fn mark(&mut self, symbol: SymbolId, price: Decimal) {
        let i = self.slot(symbol);
        let qty = self.positions[i].quantity;
        if !qty.is_zero() {
            self.equity += qty * (price - self.marks[i]);
        }
        self.marks[i] = price;
        self.track_drawdown();
    }

    fn track_drawdown(&mut self) {
        if self.equity > self.peak_equity {
            self.peak_equity = self.equity;
            self.trough_since_peak = self.equity;
        } else if self.equity < self.trough_since_peak {
            // Divide only on a new trough, not on every bar.
            self.trough_since_peak = self.equity;
            if self.peak_equity > Decimal::ZERO {
                let dd = (self.peak_equity - self.equity) / self.peak_equity;
                if dd > self.max_drawdown {
                    self.max_drawdown = dd;
                }
            }
        }
    }

    /// Applies a fill: position, average price, realised P&L, cash and commission.
    pub fn apply_fill(&mut self, fill: &Fill) {
        let i = self.slot(fill.symbol);
        let signed = fill.side.sign() * fill.quantity;
        let pos = &mut self.positions[i];
        let old = pos.quantity;
        let new = old + signed;
        if old.is_zero() || old.is_sign_positive() == signed.is_sign_positive() {
            // Opening or adding: the average moves.
            pos.avg_price = if new.is_zero() {
                Decimal::ZERO
            } else {
                (pos.avg_price * old + fill.price * signed) / new
            };
        } else {
            // Reducing, closing or flipping: realise on the closed part.
            let closed = signed.abs().min(old.abs());
            let direction = if old.is_sign_positive() {
                Decimal::ONE
            } else {
                Decimal::NEGATIVE_ONE
            };
            pos.realized_pnl += (fill.price - pos.avg_price) * closed * direction;
            if new.is_zero() {
                pos.avg_price = Decimal::ZERO;
            } else if new.is_sign_positive() != old.is_sign_positive() {
                pos.avg_price = fill.price;
            }
        }
        pos.quantity = new;
        self.cash -= signed * fill.price + fill.commission;
        self.commissions += fill.commission;
        if self.marks[i].is_zero() {
            self.marks[i] = fill.price;
        }
        // Equity = cash + Σ qty × mark; a fill moves cash and quantity together.
        self.equity += signed * (self.marks[i] - fill.price) - fill.commission;
        self.track_drawdown();
    }

    /// Returns the cash balance.
    pub fn cash(&self) -> Decimal {
        self.cash
    }

    /// Returns the starting cash.
    pub fn initial_cash(&self) -> Decimal {
        self.initial_cash
    }

    /// Returns cash plus every position at its latest mark.
    pub fn equity(&self) -> Decimal {
        self.equity
    }

    /// Returns equity minus starting cash.
    pub fn pnl(&self) -> Decimal {
        self.equity - self.initial_cash
    }

    /// Returns the commission paid so far.
    pub fn commissions(&self) -> Decimal {
        self.commissions
    }

    /// Returns the largest peak-to-trough fall of equity as a fraction of the peak.
    pub fn max_drawdown(&self) -> Decimal {
        self.max_drawdown
    }

    /// Returns the position in `symbol` (flat if never traded).
    pub fn position(&self, symbol: SymbolId) -> Position {
        self.positions
            .get(symbol.index())
            .copied()
            .unwrap_or_default()
    }

    /// Returns the latest mark of `symbol` (zero if never marked).
    pub fn mark_price(&self, symbol: SymbolId) -> Decimal {
        self.marks.get(symbol.index()).copied().unwrap_or_default()
    }

    /// Returns Σ |qty × mark| over all positions.
    pub fn gross_exposure(&self) -> Decimal {
        self.positions
            .iter()
            .zip(&self.marks)
            .map(|(p, m)| (p.quantity * m).abs())
            .sum()
    }

    /// Iterates over non-flat positions.
    pub fn positions(&self) -> impl Iterator<Item = (SymbolId, &Position)> {
        self.positions
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.quantity.is_zero())
            .map(|(i, p)| (SymbolId(i as u32), p))
    }

    /// Replaces cash and positions with what the venue holds (the venue is the source of
    /// truth), keeping the marks and the session's figures (commission, drawdown); a
    /// position the venue holds at no mark yet is marked at its average price. Returns the
    /// symbols whose quantity differed from this book.
    pub fn resync(
        &mut self,
        cash: Decimal,
        held: impl IntoIterator<Item = (SymbolId, Decimal, Decimal)>,
    ) -> Vec<SymbolId> {
        let before: Vec<Decimal> = self.positions.iter().map(|p| p.quantity).collect();
        let mut after = vec![Decimal::ZERO; self.positions.len()];
        for p in &mut self.positions {
            p.quantity = Decimal::ZERO;
            p.avg_price = Decimal::ZERO;
        }
        for (symbol, quantity, avg_price) in held {
            let i = self.slot(symbol);
            after.resize(self.positions.len(), Decimal::ZERO);
            self.positions[i].quantity = quantity;
            self.positions[i].avg_price = avg_price;
            after[i] = quantity;
            if self.marks[i].is_zero() {
                self.marks[i] = avg_price;
            }
        }
        self.cash = cash;
        self.equity = self.recomputed_equity();
        self.track_drawdown();
        after
            .iter()
            .enumerate()
            .filter(|(i, q)| before.get(*i).copied().unwrap_or_default() != **q)
            .map(|(i, _)| SymbolId(i as u32))
            .collect()
    }

    /// Recomputes equity from scratch (a check on the incremental figure).
    pub fn recomputed_equity(&self) -> Decimal {
        self.cash
            + self
                .positions
                .iter()
                .zip(&self.marks)
                .map(|(p, m)| p.quantity * m)
                .sum::<Decimal>()
    }
}

#[cfg(test)]
mod resync_tests {
    use rust_decimal_macros::dec;

    use super::*;

    #[test]
    fn resync_takes_the_venues_cash_and_positions_and_keeps_marks_and_figures() {
        let mut book = Portfolio::new(dec!(1000));
        book.mark(SymbolId(0), dec!(10));
        book.mark(SymbolId(1), dec!(20));
        let differs = book.resync(
            dec!(700),
            [
                (SymbolId(0), dec!(30), dec!(9)),
                (SymbolId(2), dec!(-5), dec!(4)),
            ],
        );
        assert_eq!(differs, vec![SymbolId(0), SymbolId(2)]);
        assert_eq!(book.cash(), dec!(700));
        assert_eq!(book.position(SymbolId(0)).quantity, dec!(30));
        assert_eq!(book.position(SymbolId(0)).avg_price, dec!(9));
        // Marked at 10 already; symbol 2 had no mark, so its average price stands in.
        assert_eq!(book.equity(), dec!(700) + dec!(300) - dec!(20));
        assert_eq!(book.equity(), book.recomputed_equity());
        assert_eq!(book.initial_cash(), dec!(1000));
        // Nothing differs the second time.
        assert!(
            book.resync(
                dec!(700),
                [
                    (SymbolId(0), dec!(30), dec!(9)),
                    (SymbolId(2), dec!(-5), dec!(4))
                ]
            )
            .is_empty()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ClientOrderId;
    use crate::order::Side;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn fill(side: Side, qty: Decimal, price: Decimal, commission: Decimal) -> Fill {
        Fill {
            client_order_id: ClientOrderId::from("t-1"),
            fill_id: "f".into(),
            symbol: SymbolId(0),
            side,
            quantity: qty,
            price,
            commission,
            leaves_quantity: Decimal::ZERO,
            ts: "2024-01-01T00:00:00Z".parse().expect("ts"),
        }
    }

    #[test]
    fn round_trip_realises_pnl_and_commission() {
        let mut p = Portfolio::new(dec!(10000));
        p.mark(SymbolId(0), dec!(100));
        p.apply_fill(&fill(Side::Buy, dec!(10), dec!(100), dec!(1)));
        assert_eq!(p.cash(), dec!(8999));
        assert_eq!(p.equity(), dec!(9999));
        p.mark(SymbolId(0), dec!(110));
        assert_eq!(p.equity(), dec!(10099));
        p.apply_fill(&fill(Side::Sell, dec!(10), dec!(110), dec!(1)));
        assert_eq!(p.position(SymbolId(0)).quantity, dec!(0));
        assert_eq!(p.position(SymbolId(0)).realized_pnl, dec!(100));
        assert_eq!(p.equity(), dec!(10098));
        assert_eq!(p.pnl(), dec!(98));
        assert_eq!(p.commissions(), dec!(2));
    }

    #[test]
    fn flip_from_long_to_short_resets_average() {
        let mut p = Portfolio::new(dec!(10000));
        p.apply_fill(&fill(Side::Buy, dec!(10), dec!(100), dec!(0)));
        p.apply_fill(&fill(Side::Sell, dec!(20), dec!(90), dec!(0)));
        let pos = p.position(SymbolId(0));
        assert_eq!(pos.quantity, dec!(-10));
        assert_eq!(pos.avg_price, dec!(90));
        assert_eq!(pos.realized_pnl, dec!(-100));
        assert_eq!(p.equity(), p.recomputed_equity());
    }

    #[test]
    fn drawdown_is_peak_to_trough() {
        let mut p = Portfolio::new(dec!(1000));
        p.apply_fill(&fill(Side::Buy, dec!(10), dec!(100), dec!(0)));
        p.mark(SymbolId(0), dec!(110)); // equity 1100
        p.mark(SymbolId(0), dec!(88)); // equity 880: dd 20%
        p.mark(SymbolId(0), dec!(120)); // new peak 1200
        p.mark(SymbolId(0), dec!(114)); // 5%
        assert_eq!(p.max_drawdown(), dec!(0.2));
    }

    proptest! {
        #[test]
        fn incremental_equity_matches_recomputation(
            steps in proptest::collection::vec((any::<bool>(), 1u32..50, 50u32..150, 50u32..150), 1..60)
        ) {
            let mut p = Portfolio::new(dec!(100000));
            for (buy, qty, fill_px, mark_px) in steps {
                let side = if buy { Side::Buy } else { Side::Sell };
                p.apply_fill(&fill(side, Decimal::from(qty), Decimal::from(fill_px), dec!(0.5)));
                p.mark(SymbolId(0), Decimal::from(mark_px));
                prop_assert_eq!(p.equity(), p.recomputed_equity());
            }
        }
    }
}
