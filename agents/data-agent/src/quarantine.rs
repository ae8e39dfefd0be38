//! The quarantine of symbols: the anomaly rule, the cross-check with a reference source and
//! operators' commands, in one place that owns their state.
//!
//! [`Quarantine`] screens each accepted bar (see [`AnomalyWatch`] and [`CrossCheck`]) and
//! says whether it goes on to the models. What changed is queued as [`Notice`]s, in the
//! order they must go out: the Risk agent hears of a quarantine before it is logged, and
//! before the batch the bar would have been in. The Data agent drains the queue and does
//! the sending and logging.

use rust_decimal::Decimal;
use vigil_core::{Bar, SymbolId, SymbolTable, Timestamp};
use vigil_log::{Event, LogEvent};
use vigil_messages::{CommandError, QuarantineChanged, SetQuarantine};

use crate::SERVICE;
use crate::anomaly::{AnomalyWatch, Verdict};
use crate::crosscheck::{ACTOR as CROSS_CHECK, Compared, CrossCheck, Outcome};

/// The actor named when the jump rule quarantines or releases a symbol.
const ANOMALY_RULE: &str = "anomaly_rule";

/// One thing the quarantine asks the Data agent to do.
#[derive(Debug)]
pub(crate) enum Notice {
    /// Tell the Risk agent.
    Risk(QuarantineChanged),
    /// Log this.
    Log(LogEvent),
}

/// The symbols in quarantine, and the rules that put them there.
#[derive(Debug, Default)]
pub(crate) struct Quarantine {
    /// The jump rule and the holds of every rule; `None`: quarantine off.
    watch: Option<AnomalyWatch>,
    /// The comparison with a reference source (quarantines through `watch`).
    cross: Option<CrossCheck>,
    /// Bars withheld from the models (their symbol in quarantine).
    withheld: u64,
    /// What changed, in the order it goes out.
    notices: Vec<Notice>,
}

impl Quarantine {
    /// Turns the quarantine on, with `watch`'s bounds.
    pub(crate) fn set_watch(&mut self, watch: AnomalyWatch) {
        self.watch = Some(watch);
    }

    /// Compares the accepted bars with a reference source's (only with the watch on).
    pub(crate) fn set_cross_check(&mut self, check: CrossCheck) {
        self.cross = Some(check);
    }

    /// Symbols in quarantine now.
    pub(crate) fn quarantined(&self) -> u64 {
        self.watch
            .as_ref()
            .map_or(0, |w| w.quarantined().count() as u64)
    }

    /// Bars withheld so far.
    pub(crate) fn withheld(&self) -> u64 {
        self.withheld
    }

    /// Pairs of closes that disagreed with the reference so far.
    pub(crate) fn disagreements(&self) -> u64 {
        self.cross.as_ref().map_or(0, CrossCheck::disagreements)
    }

    /// What changed since the last drain, in the order it goes out.
    pub(crate) fn drain(&mut self) -> std::vec::Drain<'_, Notice> {
        self.notices.drain(..)
    }

    /// Screens a bar of the source named `source`, accepted by the Data agent, at `at`
    /// (the bar's stamp): says whether it goes on to the models.
    pub(crate) fn screen(
        &mut self,
        source: &str,
        bar: &Bar,
        at: Timestamp,
        symbols: &SymbolTable,
    ) -> bool {
        if let (Some(cross), Some(_)) = (&mut self.cross, &self.watch)
            && let Some(pair) = cross.on_primary(source, bar)
        {
            let release_after = cross.release_after();
            self.settle(pair, release_after, at, symbols);
        }
        let Some(watch) = &mut self.watch else {
            return true;
        };
        let verdict = watch.on_bar(bar);
        if verdict == Verdict::Held {
            self.withheld += 1;
            return false;
        }
        let on = self.announce(
            verdict,
            bar.symbol,
            bar.ts,
            at,
            ANOMALY_RULE,
            bar.close,
            None,
            symbols,
        );
        if on == Some(true) {
            self.withheld += 1;
            return false;
        }
        true
    }

    /// Pairs the reference source's bars with the source's, at `at`: a disagreement found
    /// now (the source's bar already forwarded) quarantines the symbol from now on. Says
    /// whether the check is on.
    pub(crate) fn on_reference(
        &mut self,
        bars: &[Bar],
        at: Timestamp,
        symbols: &SymbolTable,
    ) -> bool {
        let (Some(cross), Some(_)) = (&mut self.cross, &self.watch) else {
            return false;
        };
        let release_after = cross.release_after();
        let pairs: Vec<Compared> = bars.iter().filter_map(|b| cross.on_reference(b)).collect();
        for pair in pairs {
            self.settle(pair, release_after, at, symbols);
        }
        true
    }

    /// An operator's quarantine (lifted only by command) or release of a symbol, at `at`.
    ///
    /// # Errors
    /// An unknown symbol (`Invalid`, with the symbols that exist), or the quarantine off
    /// (`Conflict`).
    pub(crate) fn command(
        &mut self,
        msg: SetQuarantine,
        at: Timestamp,
        symbols: &SymbolTable,
    ) -> Result<String, CommandError> {
        let Some(symbol) = symbols.id(&msg.symbol) else {
            return Err(CommandError::Invalid(format!(
                "unknown symbol {:?}; symbols: {}",
                msg.symbol,
                symbols
                    .iter()
                    .map(|(id, _)| symbols.name(id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let Some(watch) = &mut self.watch else {
            return Err(CommandError::Conflict(
                "anomaly quarantine is off ([data.anomaly] enabled = false)".into(),
            ));
        };
        let changed = if msg.on {
            watch.quarantine(symbol)
        } else {
            watch.release(symbol)
        };
        if !changed {
            return Ok(format!(
                "{} {} already",
                msg.symbol,
                if msg.on {
                    "in quarantine"
                } else {
                    "not in quarantine"
                }
            ));
        }
        self.notices.push(Notice::Risk(QuarantineChanged {
            symbol,
            on: msg.on,
            reason: msg.reason.clone(),
        }));
        let event = if msg.on {
            Event::SymbolQuarantined
        } else {
            Event::SymbolReleased
        };
        self.notices.push(Notice::Log(
            LogEvent::new(at, SERVICE, event)
                .with("symbol", symbols.shared(symbol))
                .with("actor", msg.actor)
                .with("reason", msg.reason),
        ));
        Ok(if msg.on {
            format!(
                "{} in quarantine: its bars are withheld and no new order goes out in it until \
                 `vigil ctl release {}`",
                msg.symbol, msg.symbol
            )
        } else {
            format!("{} released: its bars reach the models again", msg.symbol)
        })
    }

    /// Applies a comparison to the quarantine, stamped `at`: a disagreement holds the
    /// symbol, agreeing pairs lift the hold.
    fn settle(&mut self, c: Compared, release_after: usize, at: Timestamp, symbols: &SymbolTable) {
        let Some(watch) = &mut self.watch else { return };
        let verdict = match c.outcome {
            Outcome::Agree => watch.agree(c.symbol, release_after),
            Outcome::Disagree(why) => {
                let verdict = watch.disagree(c.symbol, why.clone());
                if verdict == Verdict::Held {
                    // In quarantine already: the alert stands; the log still says why.
                    self.notices.push(Notice::Log(
                        LogEvent::new(at, SERVICE, Event::SourcesDisagreed)
                            .with("symbol", symbols.shared(c.symbol))
                            .with("bar_time", c.ts)
                            .with("reason", why),
                    ));
                }
                verdict
            }
        };
        self.announce(
            verdict,
            c.symbol,
            c.ts,
            at,
            CROSS_CHECK,
            c.close,
            Some(c.reference_close),
            symbols,
        );
    }

    /// A quarantine that began or ended (`verdict`) on the bar of `symbol` at `bar_time`:
    /// Risk hears it first, then it is logged (`symbol_quarantined` / `symbol_released` by
    /// `actor`, stamped `at`). Returns whether the symbol is now held (`None`: no change).
    #[allow(clippy::too_many_arguments)]
    fn announce(
        &mut self,
        verdict: Verdict,
        symbol: SymbolId,
        bar_time: Timestamp,
        at: Timestamp,
        actor: &'static str,
        close: Decimal,
        reference_close: Option<Decimal>,
        symbols: &SymbolTable,
    ) -> Option<bool> {
        let (on, reason) = match verdict {
            Verdict::Pass | Verdict::Held => return None,
            Verdict::Quarantined(why) => (true, why),
            Verdict::Released(why) => (false, why),
        };
        self.notices.push(Notice::Risk(QuarantineChanged {
            symbol,
            on,
            reason: reason.clone(),
        }));
        let event = if on {
            let ev = LogEvent::new(at, SERVICE, Event::SymbolQuarantined).with("close", close);
            match reference_close {
                Some(r) => ev.with("reference_close", r),
                None => ev,
            }
        } else {
            LogEvent::new(at, SERVICE, Event::SymbolReleased)
        };
        self.notices.push(Notice::Log(
            event
                .with("symbol", symbols.shared(symbol))
                .with("bar_time", bar_time)
                .with("actor", actor)
                .with("reason", reason),
        ));
        Some(on)
    }
}

#[cfg(test)]
mod tests;
