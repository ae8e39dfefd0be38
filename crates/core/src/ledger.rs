//! Sub-ledgers: the account's positions, cash and P&L split by the model version they belong
//! to (a canary nets two versions' targets into one account; each keeps its own books).
//!
//! Every change to the account is split between the versions so that, at any moment, their
//! positions add up to the account's and their P&L (cash + positions at the latest marks,
//! from zero when the ledgers opened) adds up to the account's change in equity:
//!
//! - a fill is split by the order's allocation (each version's signed share of it), at the
//!   fill's price, the commission in proportion; without one, a fill that reduces the
//!   account goes to the versions holding what it reduces, pro rata, and any other to the
//!   order's version;
//! - a **cross** moves quantity between versions at a price, inside the account, with no
//!   order: what one version sells while another buys the same bar.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};

use crate::market::SymbolId;

/// A model version's label (`ema_cross@1.0.0`). An alias, so that serde reads it with
/// [`leaked`] instead of borrowing it from the input.
pub(crate) type Version = &'static str;

/// A version's name read back (from the journal, after a restart): leaked once per
/// version per start, as the labels of the models a session runs are.
fn leaked<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let s = String::deserialize(d)?;
    Ok(Box::leak(s.into_boxed_str()))
}
use crate::order::Fill;

/// One version's books.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubLedger {
    /// The model version (`ema_cross@1.0.0`).
    #[serde(deserialize_with = "leaked")]
    pub version: Version,
    /// Signed quantity per symbol (by symbol index).
    positions: Vec<Decimal>,
    marks: Vec<Decimal>,
    /// Cash moved by its fills and crosses, commissions included (starts at zero).
    pub cash: Decimal,
    /// Commissions paid.
    pub commissions: Decimal,
    /// Cash + positions at the latest marks: its P&L since the ledgers opened.
    pub pnl: Decimal,
    /// The highest P&L seen.
    pub peak_pnl: Decimal,
    /// The largest fall from a peak, in cash.
    pub max_drawdown: Decimal,
    /// Fills (or parts of fills) booked.
    pub fills: u64,
    /// Quantity filled at the venue (crosses excluded).
    pub filled_quantity: Decimal,
    /// Σ slippage in bps × quantity, for the quantity-weighted mean (a statistic).
    slippage_bps_qty: f64,
    /// Quantity moved by crosses.
    pub crossed_quantity: Decimal,
}

impl SubLedger {
    fn new(version: &'static str) -> Self {
        Self {
            version,
            positions: Vec::new(),
            marks: Vec::new(),
            cash: Decimal::ZERO,
            commissions: Decimal::ZERO,
            pnl: Decimal::ZERO,
            peak_pnl: Decimal::ZERO,
            max_drawdown: Decimal::ZERO,
            fills: 0,
            filled_quantity: Decimal::ZERO,
            slippage_bps_qty: 0.0,
            crossed_quantity: Decimal::ZERO,
        }
    }

    fn slot(&mut self, symbol: SymbolId) -> usize {
        let i = symbol.index();
        if i >= self.positions.len() {
            self.positions.resize(i + 1, Decimal::ZERO);
            self.marks.resize(i + 1, Decimal::ZERO);
        }
        i
    }

    /// Its signed quantity of `symbol`.
    pub fn position(&self, symbol: SymbolId) -> Decimal {
        self.positions
            .get(symbol.index())
            .copied()
            .unwrap_or_default()
    }

    /// Its positions, `(symbol index, quantity)`, non-zero only.
    pub fn positions(&self) -> impl Iterator<Item = (usize, Decimal)> + '_ {
        self.positions
            .iter()
            .enumerate()
            .filter(|(_, q)| !q.is_zero())
            .map(|(i, q)| (i, *q))
    }

    /// The drawdown now: peak P&L less P&L.
    pub fn drawdown(&self) -> Decimal {
        self.peak_pnl - self.pnl
    }

    /// The mean slippage of its fills in bps, weighted by quantity (`None` before any).
    pub fn slippage_bps(&self) -> Option<f64> {
        let q = rust_decimal::prelude::ToPrimitive::to_f64(&self.filled_quantity)?;
        (q > 0.0).then(|| self.slippage_bps_qty / q)
    }

    /// Books `qty` (signed) of `symbol` at `price`, paying `commission`.
    fn trade(&mut self, symbol: SymbolId, qty: Decimal, price: Decimal, commission: Decimal) {
        let i = self.slot(symbol);
        if self.marks[i].is_zero() {
            self.marks[i] = price;
        }
        self.positions[i] += qty;
        self.cash -= qty * price + commission;
        self.commissions += commission;
        self.pnl += qty * (self.marks[i] - price) - commission;
        self.track();
    }

    fn mark(&mut self, symbol: SymbolId, price: Decimal) {
        let i = symbol.index();
        let Some(qty) = self.positions.get(i).copied() else {
            return;
        };
        if !qty.is_zero() {
            self.pnl += qty * (price - self.marks[i]);
        }
        self.marks[i] = price;
        self.track();
    }

    fn track(&mut self) {
        if self.pnl > self.peak_pnl {
            self.peak_pnl = self.pnl;
        }
        let dd = self.peak_pnl - self.pnl;
        if dd > self.max_drawdown {
            self.max_drawdown = dd;
        }
    }
}

/// The versions' ledgers, in the order they opened.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubLedgers {
    books: Vec<SubLedger>,
    /// The account's equity when they opened: their P&L adds up to equity less this.
    pub opened_equity: Decimal,
}

impl SubLedgers {
    /// The ledgers, in the order they opened.
    pub fn books(&self) -> &[SubLedger] {
        &self.books
    }

    /// Whether more than one version holds a ledger.
    pub fn split(&self) -> bool {
        self.books.len() > 1
    }

    /// The index of `version`'s ledger, opened when it has none.
    pub fn open(&mut self, version: &'static str) -> usize {
        match self.books.iter().position(|b| b.version == version) {
            Some(i) => i,
            None => {
                self.books.push(SubLedger::new(version));
                self.books.len() - 1
            }
        }
    }

    /// `version`'s ledger, if it has one.
    pub fn get(&self, version: &str) -> Option<&SubLedger> {
        self.books.iter().find(|b| b.version == version)
    }

    /// `version`'s signed quantity of `symbol` (zero without a ledger).
    pub fn held(&self, version: &str, symbol: SymbolId) -> Decimal {
        self.get(version)
            .map_or(Decimal::ZERO, |b| b.position(symbol))
    }

    /// A position the account held before the ledgers opened: `version`'s, at `mark` (so
    /// that its P&L starts at zero).
    pub fn seed(&mut self, version: &'static str, symbol: SymbolId, qty: Decimal, mark: Decimal) {
        let i = self.open(version);
        self.books[i].trade(symbol, qty, mark, Decimal::ZERO);
    }

    /// Marks `symbol` at `price` in every ledger.
    pub fn mark(&mut self, symbol: SymbolId, price: Decimal) {
        for b in &mut self.books {
            b.mark(symbol, price);
        }
    }

    /// Moves quantity of `symbol` between versions at `price` with no order: `moves` are
    /// (version, signed quantity) and add up to zero (else nothing moves: `Err` says so).
    ///
    /// # Errors
    /// When the moves do not add up to zero.
    pub fn cross(
        &mut self,
        symbol: SymbolId,
        price: Decimal,
        moves: &[(&'static str, Decimal)],
    ) -> Result<(), String> {
        let sum: Decimal = moves.iter().map(|(_, q)| *q).sum();
        if !sum.is_zero() {
            return Err(format!(
                "a cross in symbol {} must add up to zero, got {sum}: {moves:?}",
                symbol.index()
            ));
        }
        for (version, qty) in moves.iter().filter(|(_, q)| !q.is_zero()) {
            let i = self.open(version);
            let b = &mut self.books[i];
            b.trade(symbol, *qty, price, Decimal::ZERO);
            b.crossed_quantity += qty.abs();
        }
        Ok(())
    }

    /// Books `fill`: split by `allocation` (version, signed quantity of the order: adds up
    /// to the order's signed quantity) when given, else as the module says, `version`
    /// being the order's (`None`: an order vigil did not send, or one without a model).
    /// `slippage_bps` is the fill's, for the versions' means. Returns each version's
    /// signed part of the fill.
    pub fn fill(
        &mut self,
        fill: &Fill,
        allocation: &[(&'static str, Decimal)],
        version: Option<&'static str>,
        slippage_bps: f64,
    ) -> Vec<(&'static str, Decimal)> {
        let signed = fill.side.sign() * fill.quantity;
        let total: Decimal = allocation.iter().map(|(_, q)| *q).sum();
        // (version, numerator) over one denominator: multiplied before divided, so that a
        // fill of the whole order books each version's quantity exactly.
        let (parts, whole): (Vec<(&'static str, Decimal)>, Decimal) = if !total.is_zero() {
            (allocation.to_vec(), total)
        } else {
            self.reducing_shares(fill.symbol, signed, version)
        };
        let mut left_qty = signed;
        let mut left_fee = fill.commission;
        let last = parts.len().saturating_sub(1);
        let mut split = Vec::with_capacity(parts.len());
        for (k, (v, part)) in parts.iter().enumerate() {
            // The last takes what is left, so the parts add up exactly.
            let (qty, fee) = if k == last {
                (left_qty, left_fee)
            } else {
                (
                    signed * part / whole,
                    (fill.commission * part / whole).abs(),
                )
            };
            left_qty -= qty;
            left_fee -= fee;
            let i = self.open(v);
            let b = &mut self.books[i];
            b.trade(fill.symbol, qty, fill.price, fee);
            b.fills += 1;
            b.filled_quantity += qty.abs();
            if let Some(q) = rust_decimal::prelude::ToPrimitive::to_f64(&qty.abs()) {
                b.slippage_bps_qty += slippage_bps * q;
            }
            split.push((*v, qty));
        }
        split
    }

    /// Without an allocation: a fill of `signed` that reduces what versions hold goes to
    /// them pro rata; otherwise to `version`, or the first ledger. As (version, numerator)
    /// and the denominator.
    fn reducing_shares(
        &mut self,
        symbol: SymbolId,
        signed: Decimal,
        version: Option<&'static str>,
    ) -> (Vec<(&'static str, Decimal)>, Decimal) {
        let holders: Vec<(&'static str, Decimal)> = self
            .books
            .iter()
            .map(|b| (b.version, b.position(symbol)))
            .filter(|(_, q)| !q.is_zero() && q.is_sign_positive() != signed.is_sign_positive())
            .map(|(v, q)| (v, q.abs()))
            .collect();
        let held: Decimal = holders.iter().map(|(_, q)| *q).sum();
        let whole = version.or_else(|| self.books.first().map(|b| b.version));
        match whole {
            Some(v) if holders.is_empty() || !self.split() => {
                (vec![(v, Decimal::ONE)], Decimal::ONE)
            }
            _ if held.is_zero() => (Vec::new(), Decimal::ONE),
            _ => (holders, held),
        }
    }

    /// After a restart: makes the ledgers hold what the account holds. A symbol whose
    /// versions' positions do not add up to the account's `positions` (a fill journaled
    /// before the ledgers were, reconciliation with the venue) has the difference booked to
    /// the first ledger (production's) at `mark`. Returns (symbol, quantity) of each
    /// difference booked.
    pub fn align(
        &mut self,
        positions: &[(SymbolId, Decimal)],
        mark: impl Fn(SymbolId) -> Decimal,
    ) -> Vec<(SymbolId, Decimal)> {
        let Some(first) = self.books.first().map(|b| b.version) else {
            return Vec::new();
        };
        let mut symbols: Vec<SymbolId> = positions.iter().map(|(s, _)| *s).collect();
        for b in &self.books {
            for (i, _) in b.positions() {
                if let Ok(i) = u32::try_from(i) {
                    symbols.push(SymbolId(i));
                }
            }
        }
        symbols.sort_by_key(|s| s.index());
        symbols.dedup();
        let mut booked = Vec::new();
        for symbol in symbols {
            let account = positions
                .iter()
                .find(|(s, _)| *s == symbol)
                .map_or(Decimal::ZERO, |(_, q)| *q);
            let held: Decimal = self.books.iter().map(|b| b.position(symbol)).sum();
            let gap = account - held;
            if !gap.is_zero() {
                let price = mark(symbol);
                let i = self.open(first);
                self.books[i].trade(symbol, gap, price, Decimal::ZERO);
                booked.push((symbol, gap));
            }
            let price = mark(symbol);
            if !price.is_zero() {
                self.mark(symbol, price);
            }
        }
        booked
    }

    /// After [`Self::align`]: books to the first ledger (production's) the cash that makes
    /// the versions' P&L add up to the account's again, given the account's `cash`. A fill
    /// journaled before the ledgers were is aligned at the mark with no commission; what it
    /// really cost (its price against the mark, its commission) is this difference. The
    /// versions' cash adds up to the account's cash less what it held when they opened
    /// (`opened_equity`, less the positions seeded then), whatever the marks. Returns the
    /// cash booked (zero when they already agreed).
    pub fn settle(&mut self, cash: Decimal) -> Decimal {
        let held: Decimal = self.books.iter().map(|b| b.cash).sum();
        let gap = cash - self.opened_equity - held;
        match self.books.first_mut() {
            Some(b) if !gap.is_zero() => {
                b.cash += gap;
                b.pnl += gap;
                b.track();
                gap
            }
            _ => Decimal::ZERO,
        }
    }

    /// Σ P&L over the versions.
    pub fn total_pnl(&self) -> Decimal {
        self.books.iter().map(|b| b.pnl).sum()
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::clock::Timestamp;
    use crate::ids::ClientOrderId;
    use crate::order::Side;
    use crate::portfolio::Portfolio;

    const P: &str = "m@1.0.0";
    const C: &str = "m@1.1.0";

    fn fill(side: Side, qty: Decimal, price: Decimal, fee: Decimal) -> Fill {
        Fill {
            client_order_id: ClientOrderId::from("o-1"),
            fill_id: "f-1".into(),
            symbol: SymbolId(0),
            side,
            quantity: qty,
            price,
            commission: fee,
            leaves_quantity: Decimal::ZERO,
            ts: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn split_fills_and_crosses_add_up_to_the_account() {
        let mut account = Portfolio::new(dec!(100000));
        let mut l = SubLedgers::default();
        let s = SymbolId(0);
        // Production alone buys 100 at 10.
        let f = fill(Side::Buy, dec!(100), dec!(10), dec!(1));
        account.apply_fill(&f);
        l.fill(&f, &[], Some(P), 2.0);
        // The canary at 5 %: production gives 5 to the candidate at the mark, no order.
        account.mark(s, dec!(11));
        l.mark(s, dec!(11));
        l.cross(s, dec!(11), &[(P, dec!(-5)), (C, dec!(5))])
            .expect("adds up");
        // Both buy more, one order of 30 split 2:1, at 12 with a fee of 0.3.
        let f = fill(Side::Buy, dec!(30), dec!(12), dec!(0.3));
        account.apply_fill(&f);
        l.fill(&f, &[(P, dec!(20)), (C, dec!(10))], Some(P), 4.0);
        account.mark(s, dec!(9));
        l.mark(s, dec!(9));
        assert_eq!(
            l.held(P, s) + l.held(C, s),
            account.position(s).quantity,
            "positions add up"
        );
        assert_eq!(l.held(C, s), dec!(15));
        assert_eq!(
            l.total_pnl(),
            account.equity() - dec!(100000),
            "P&L adds up to the account's"
        );
        let c = l.get(C).expect("candidate");
        // 5 at 11 and 10 at 12, fee 0.1, marked at 9.
        assert_eq!(c.pnl, dec!(-10) - dec!(30) - dec!(0.1));
        assert_eq!(c.fills, 1);
        assert_eq!(c.crossed_quantity, dec!(5));
        assert_eq!(c.slippage_bps(), Some(4.0));
        assert!(c.max_drawdown > Decimal::ZERO);
        // A cross that does not add up moves nothing.
        assert!(l.cross(s, dec!(9), &[(P, dec!(-1))]).is_err());
        assert_eq!(l.held(P, s), dec!(115));
    }

    #[test]
    fn the_ledgers_round_trip_through_json_and_align_with_the_account() {
        let mut l = SubLedgers::default();
        let s = SymbolId(0);
        l.seed(P, s, dec!(90), dec!(10));
        l.seed(C, s, dec!(10), dec!(10));
        l.mark(s, dec!(12));
        let text = serde_json::to_string(&l).expect("json");
        let mut back: SubLedgers = serde_json::from_str(&text).expect("read back");
        assert_eq!(back, l);
        // The account holds 95 (a sell of 5 journaled before the ledgers were): the
        // difference goes to production at the mark; the candidate keeps its 10.
        let booked = back.align(&[(s, dec!(95))], |_| dec!(12));
        assert_eq!(booked, vec![(s, dec!(-5))]);
        assert_eq!(back.held(P, s), dec!(85));
        assert_eq!(back.held(C, s), dec!(10));
        assert!(back.align(&[(s, dec!(95))], |_| dec!(12)).is_empty());
    }

    #[test]
    fn a_fill_journaled_before_the_ledgers_is_settled_at_its_real_cost() {
        let s = SymbolId(0);
        let mut account = Portfolio::new(dec!(10000));
        account.apply_fill(&fill(Side::Buy, dec!(100), dec!(10), dec!(1)));
        account.mark(s, dec!(10));
        let mut l = SubLedgers {
            opened_equity: account.equity(),
            ..SubLedgers::default()
        };
        l.seed(P, s, dec!(90), dec!(10));
        l.seed(C, s, dec!(10), dec!(10));
        assert_eq!(
            l.settle(account.cash()),
            Decimal::ZERO,
            "they agree from the start"
        );
        let journaled = l.clone();
        // A sell of 20 at 11.5, commission 0.4: the account took it, the ledgers' state in
        // the journal did not (a kill between the two).
        let sell = fill(Side::Sell, dec!(20), dec!(11.5), dec!(0.4));
        l.fill(&sell, &[(P, dec!(-20))], Some(P), 0.0);
        account.apply_fill(&sell);
        account.mark(s, dec!(12));
        l.mark(s, dec!(12));
        let account_pnl = account.equity() - l.opened_equity;
        assert_eq!(l.total_pnl(), account_pnl);
        // After the restart: aligned at the mark (12), then settled.
        let mut back = journaled;
        back.align(&[(s, dec!(80))], |_| dec!(12));
        assert_ne!(
            back.total_pnl(),
            account_pnl,
            "the mark is not what the sell cost"
        );
        assert_eq!(back.settle(account.cash()), dec!(-10.4));
        assert_eq!(back.total_pnl(), account_pnl);
        assert_eq!(back.held(P, s), dec!(70));
        assert_eq!(back.held(C, s), dec!(10));
        assert_eq!(back.get(C).map(|b| b.pnl), l.get(C).map(|b| b.pnl));
    }

    #[test]
    fn a_fill_without_an_allocation_reduces_the_holders_pro_rata() {
        let mut l = SubLedgers::default();
        let s = SymbolId(0);
        l.seed(P, s, dec!(90), dec!(10));
        l.seed(C, s, dec!(10), dec!(10));
        // A deleveraging sell of 7 that nobody allocated.
        l.fill(
            &fill(Side::Sell, dec!(7), dec!(10), dec!(0.07)),
            &[],
            None,
            0.0,
        );
        assert_eq!(l.held(P, s), dec!(83.7));
        assert_eq!(l.held(C, s), dec!(9.3));
        // An opening fill with no allocation goes to the order's version.
        l.fill(
            &fill(Side::Buy, dec!(3), dec!(10), dec!(0)),
            &[],
            Some(C),
            0.0,
        );
        assert_eq!(l.held(C, s), dec!(12.3));
        assert_eq!(l.total_pnl(), dec!(-0.07));
    }
}
