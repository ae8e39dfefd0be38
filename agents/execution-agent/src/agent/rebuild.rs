//! The restart rebuild: after a crash the supervisor restarts the actor, which reads its
//! book back from the venue (the source of truth), not from memory.

use actix::prelude::*;
use vigil_core::Level;
use vigil_log::{Event, LogEvent};

use super::{ExecutionAgent, SERVICE};

impl ExecutionAgent {
    /// After a crash: reads positions, cash and open orders back from the venue (the
    /// source of truth) before the next message. Reports the crashed run had not read are
    /// logged and close their orders, but are not booked twice: the venue's figures hold
    /// them. A venue that cannot answer leaves a book nobody can trust: a fatal fault, so
    /// the Monitor halts trading.
    pub(super) fn rebuild_from_venue(&mut self, ctx: &mut Context<Self>) {
        self.venue.drain_reports(&mut self.report_buf);
        let unread = std::mem::take(&mut self.report_buf);
        let venue = self.venue.clone();
        let fut = async move {
            let positions = venue.positions().await;
            let account = venue.account().await;
            let open = venue.open_orders().await;
            (positions, account, open)
        };
        ctx.wait(fut.into_actor(self).map(move |res, act, _ctx| {
            let ts = act.stamp();
            let (positions, account, open) = match res {
                (Ok(p), Ok(a), Ok(o)) => (p, a, o),
                (p, a, o) => {
                    let error = [p.err(), a.err(), o.err()]
                        .into_iter()
                        .flatten()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("; ");
                    let error = format!(
                        "restarted, but the book cannot be rebuilt from the venue: {error}"
                    );
                    act.core.log.emit(
                        LogEvent::new(ts, SERVICE, Event::AgentFailed)
                            .level(Level::Critical)
                            .with("agent", "execution")
                            .with("error", error.clone()),
                    );
                    act.core.log.flush();
                    act.core.fault(error, true);
                    return;
                }
            };
            act.book_each(&unread, false, false);
            let differs = act.portfolio.resync(
                account.cash,
                positions
                    .iter()
                    .map(|p| (p.symbol, p.quantity, p.avg_price)),
            );
            let rebuilt = act.open.rebuild(&open);
            let differs: Vec<String> = differs
                .iter()
                .map(|id| act.symbols.name(*id).to_string())
                .collect();
            act.core.log.emit(
                LogEvent::new(ts, SERVICE, Event::AgentRebuilt)
                    .with("agent", "execution")
                    .with(
                        "rebuilt",
                        format!("book, cash and open orders from venue {}", act.venue_name),
                    )
                    .with("positions", positions.len())
                    .with("cash", act.portfolio.cash())
                    .with("equity", act.portfolio.equity())
                    .with("open_orders", act.open.len())
                    .with("orders_no_longer_open", rebuilt.gone)
                    .with("orders_adopted", rebuilt.adopted)
                    .with("unread_reports", unread.len())
                    .with("positions_that_differed", differs.join(",")),
            );
            act.core.log.flush();
        }));
    }
}
