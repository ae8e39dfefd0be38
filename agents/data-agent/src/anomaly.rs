//! Anomaly quarantine: a price jump beyond a bound puts its symbol in quarantine.
//!
//! Each bar's close, then its high and low (which bound its open), are compared with the
//! symbol's previous close (the high and low with a k-sigma bound 1.5 times as wide). A
//! move is anomalous when
//! it exceeds `max_jump` (a fraction), or `k_sigma` standard deviations of the symbol's last
//! `window` accepted returns. A quarantined symbol's bars are withheld from the models (the
//! Signal agent never sees them) and the Risk agent blocks new orders in it. The quarantine
//! lifts by rule, after `release_after` bars in a row that move within the bounds (a bad tick
//! that reverts, or a real move that holds at its new level), or by an operator's command.
//! One an operator set lifts only by command.
//!
//! A symbol may be held for more than one reason at once: the jump rule, a disagreement
//! with the reference source ([`crate::CrossCheck`]), an operator. Each rule lifts only its
//! own hold; the quarantine lifts when none is left (an operator's release lifts them all).

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use vigil_core::{Bar, SymbolId};

/// The bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AnomalyBounds {
    /// Largest move from one close to the next, as a fraction (0.25 = 25 %); `None`: off.
    pub max_jump: Option<Decimal>,
    /// Largest move in standard deviations of the recent returns; `None`: off.
    pub k_sigma: Option<f64>,
    /// The least standard deviation the k-sigma check uses (a fraction): a series that
    /// barely moved (flat, or a steady trend) would otherwise make any move an outlier.
    pub min_sigma: f64,
    /// Returns the standard deviation is taken over (the k-sigma check waits for a full
    /// window).
    pub window: usize,
    /// Bars in a row within the bounds that lift a quarantine; 0: only a command does.
    pub release_after: usize,
}

/// What became of a bar.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Forward it.
    Pass,
    /// It put its symbol in quarantine (withheld); the reason says how far it moved.
    Quarantined(String),
    /// Its symbol is in quarantine: withheld.
    Held,
    /// It lifted its symbol's quarantine (forwarded); the reason says why.
    Released(String),
}

/// Why a symbol is in quarantine; it stays while any of these holds.
#[derive(Debug, Default)]
struct Quarantine {
    /// The jump rule's hold: bars in a row within the bounds since.
    jump: Option<usize>,
    /// The cross-check's hold: pairs of closes in a row that agreed since.
    disagreement: Option<usize>,
    /// Set by an operator: lifts only by command.
    by_operator: bool,
}

impl Quarantine {
    fn holds(&self) -> bool {
        self.jump.is_some() || self.disagreement.is_some() || self.by_operator
    }
}

#[derive(Debug)]
struct SymbolState {
    last_close: Option<Decimal>,
    /// The last accepted returns, a ring of `window` slots.
    returns: Box<[f64]>,
    filled: usize,
    next: usize,
    quarantine: Option<Quarantine>,
}

/// Watches every symbol's moves.
#[derive(Debug)]
pub struct AnomalyWatch {
    bounds: AnomalyBounds,
    /// `bounds.max_jump` as a float, for the screen of the high and low.
    max_jump: Option<f64>,
    symbols: Vec<SymbolState>,
}

impl AnomalyWatch {
    /// Watches `symbols` symbols (ids `0..symbols`) within `bounds`.
    pub fn new(bounds: AnomalyBounds, symbols: usize) -> Self {
        let window = bounds.window.max(2);
        Self {
            bounds,
            max_jump: bounds.max_jump.and_then(|m| m.to_f64()),
            symbols: (0..symbols)
                .map(|_| SymbolState {
                    last_close: None,
                    returns: vec![0.0; window].into_boxed_slice(),
                    filled: 0,
                    next: 0,
                    quarantine: None,
                })
                .collect(),
        }
    }

    /// Takes the next accepted bar; says whether it goes on.
    pub fn on_bar(&mut self, bar: &Bar) -> Verdict {
        let (bounds, max_jump) = (self.bounds, self.max_jump);
        let Some(s) = self.symbols.get_mut(bar.symbol.index()) else {
            return Verdict::Pass;
        };
        let prev = s.last_close.replace(bar.close);
        let Some(prev) = prev.filter(|p| !p.is_zero()) else {
            return match s.quarantine {
                Some(_) => Verdict::Held,
                None => Verdict::Pass,
            };
        };
        let change = (bar.close - prev) / prev;
        let r = change.to_f64().unwrap_or(f64::INFINITY);
        let sigma = s.sigma().map(|sd| sd.max(bounds.min_sigma));
        // The close first, then the bar's extremes (they bound its open): a high or low far
        // from the previous close is as absurd as a close there (a print of 0.01 in a 135
        // market), and it would fill an order at that price. The extremes are screened in
        // floating point against the widest move allowed (a hair inside it, so that rounding
        // never lets one through), and judged exactly only past it: the screen costs no
        // Decimal arithmetic.
        let outlier = bounds
            .judge("close", bar.close, (change, r), prev, sigma, 1.0)
            .or_else(|| {
                let widest = widest_move(max_jump, bounds.k_sigma, sigma)? * (1.0 - 1e-9);
                let prev_f = approx(prev);
                [("high", bar.high), ("low", bar.low)]
                    .into_iter()
                    .filter(|(_, price)| ((approx(*price) - prev_f) / prev_f).abs() > widest)
                    .find_map(|(field, price)| {
                        let change = (price - prev) / prev;
                        let r = change.to_f64().unwrap_or(f64::INFINITY);
                        bounds.judge(field, price, (change, r), prev, sigma, RANGE_SIGMA_FACTOR)
                    })
            });
        match (&mut s.quarantine, outlier) {
            (None, None) => {
                s.push(r);
                Verdict::Pass
            }
            (None, Some(why)) => {
                s.quarantine = Some(Quarantine {
                    jump: Some(0),
                    ..Quarantine::default()
                });
                Verdict::Quarantined(why)
            }
            (Some(q), Some(_)) => {
                // Held already (for this or another reason): the jump rule holds it too,
                // and its count starts over.
                q.jump = Some(0);
                Verdict::Held
            }
            (Some(q), None) => {
                let Some(calm) = q.jump.as_mut() else {
                    // Held for another reason only: the jump rule has nothing to lift.
                    return Verdict::Held;
                };
                *calm += 1;
                if bounds.release_after == 0 || *calm < bounds.release_after {
                    return Verdict::Held;
                }
                let why = format!("{calm} bars in a row within the bounds");
                q.jump = None;
                if q.holds() {
                    return Verdict::Held;
                }
                s.quarantine = None;
                s.push(r);
                Verdict::Released(why)
            }
        }
    }

    /// The symbol's close disagreed with the reference source's (`why` says how): the
    /// cross-check holds it, and its count of agreeing pairs starts over. `Quarantined`
    /// when the symbol was not in quarantine before, `Held` otherwise.
    pub fn disagree(&mut self, symbol: SymbolId, why: String) -> Verdict {
        let Some(s) = self.symbols.get_mut(symbol.index()) else {
            return Verdict::Pass;
        };
        match &mut s.quarantine {
            Some(q) => {
                q.disagreement = Some(0);
                Verdict::Held
            }
            None => {
                s.quarantine = Some(Quarantine {
                    disagreement: Some(0),
                    ..Quarantine::default()
                });
                Verdict::Quarantined(why)
            }
        }
    }

    /// The symbol's close agreed with the reference source's. The cross-check's hold lifts
    /// after `release_after` agreeing pairs in a row (0: never by rule); `Released` when
    /// that lifted the quarantine, `Held` while it stays (for this or another reason),
    /// `Pass` when the symbol was not in quarantine.
    pub fn agree(&mut self, symbol: SymbolId, release_after: usize) -> Verdict {
        let Some(q) = self
            .symbols
            .get_mut(symbol.index())
            .and_then(|s| s.quarantine.as_mut())
        else {
            return Verdict::Pass;
        };
        let Some(agreed) = q.disagreement.as_mut() else {
            return Verdict::Held;
        };
        *agreed += 1;
        if release_after == 0 || *agreed < release_after {
            return Verdict::Held;
        }
        let why = format!("{agreed} pairs of closes in a row agreed with the reference");
        q.disagreement = None;
        if q.holds() {
            return Verdict::Held;
        }
        if let Some(s) = self.symbols.get_mut(symbol.index()) {
            s.quarantine = None;
        }
        Verdict::Released(why)
    }

    /// An operator's quarantine: lifts only by [`Self::release`]. Returns false when the
    /// symbol already was in quarantine (it then stays, lifted only by command).
    pub fn quarantine(&mut self, symbol: SymbolId) -> bool {
        let Some(s) = self.symbols.get_mut(symbol.index()) else {
            return false;
        };
        let q = s.quarantine.get_or_insert_with(Quarantine::default);
        let new = !q.holds();
        q.by_operator = true;
        new
    }

    /// Lifts a quarantine; false when there was none.
    pub fn release(&mut self, symbol: SymbolId) -> bool {
        self.symbols
            .get_mut(symbol.index())
            .and_then(|s| s.quarantine.take())
            .is_some()
    }

    /// The symbols in quarantine.
    pub fn quarantined(&self) -> impl Iterator<Item = SymbolId> + '_ {
        self.symbols
            .iter()
            .enumerate()
            .filter(|(_, s)| s.quarantine.is_some())
            .map(|(i, _)| SymbolId(i as u32))
    }
}

/// A bar's high and low stray further from the previous close than its close does: their
/// k-sigma bound is this many times `k_sigma` (the percent bound is the same).
const RANGE_SIGMA_FACTOR: f64 = 1.5;

/// `d` as a float, to about 1e-15 relative: its mantissa over a power of ten (the exact
/// `to_f64` divides 96-bit integers, too slow for a screen run on every bar).
fn approx(d: Decimal) -> f64 {
    const POW10: [f64; 29] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28,
    ];
    d.mantissa() as f64 / POW10[(d.scale() as usize).min(28)]
}

/// The widest move from the previous close a bar's high or low may make, as a fraction: the
/// tighter of the percent bound `max_jump` and the widened k-sigma bound; `None` when
/// neither applies.
fn widest_move(max_jump: Option<f64>, k_sigma: Option<f64>, sigma: Option<f64>) -> Option<f64> {
    let by_sigma = k_sigma
        .zip(sigma.filter(|sd| *sd > 0.0))
        .map(|(k, sd)| k * RANGE_SIGMA_FACTOR * sd);
    match (max_jump, by_sigma) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl AnomalyBounds {
    /// Why `price` (the bar's `field`, `change` from the previous close `prev`, non-zero,
    /// and `r` the same as a float) is an outlier against the recent returns' standard deviation `sigma` (floored;
    /// `None` until the window is full), the k-sigma bound widened by `factor`; `None`
    /// when it is within the bounds.
    fn judge(
        &self,
        field: &str,
        price: Decimal,
        (change, r): (Decimal, f64),
        prev: Decimal,
        sigma: Option<f64>,
        factor: f64,
    ) -> Option<String> {
        let pct = || (change * Decimal::ONE_HUNDRED).round_dp(2);
        if let Some(max) = self.max_jump.filter(|max| change.abs() > *max) {
            return Some(format!(
                "{field} {price} moved {:+}% from the previous {prev} (bound {}%)",
                pct(),
                (max * Decimal::ONE_HUNDRED).normalize()
            ));
        }
        let k = self.k_sigma? * factor;
        let sd = sigma.filter(|sd| *sd > 0.0)?;
        (r.abs() > k * sd).then(|| {
            format!(
                "{field} {price} moved {:+}% from the previous {prev}: {:.1} standard \
                 deviations of the last {} returns (bound {k})",
                pct(),
                r.abs() / sd,
                self.window.max(2)
            )
        })
    }
}

impl SymbolState {
    fn push(&mut self, r: f64) {
        if !r.is_finite() {
            return;
        }
        self.returns[self.next] = r;
        self.next = (self.next + 1) % self.returns.len();
        self.filled = (self.filled + 1).min(self.returns.len());
    }

    /// The population standard deviation of a full window.
    fn sigma(&self) -> Option<f64> {
        if self.filled < self.returns.len() {
            return None;
        }
        let n = self.returns.len() as f64;
        let mean = self.returns.iter().sum::<f64>() / n;
        let var = self.returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
        Some(var.sqrt())
    }
}

#[cfg(test)]
mod tests;
