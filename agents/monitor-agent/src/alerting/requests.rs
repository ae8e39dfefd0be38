//! The operator's requests (`vigil alerts ack|silence|unsilence`), read from the store:
//! each applied once, its result handed back to the store, logged and kept in the
//! notification log.

use vigil_alert::AlertCommand;
use vigil_log::{Event, LogEvent};
use vigil_store::{AlertLogEntry, AlertRequest};

use super::effects::{Moment, Step};
use super::{Alerting, entry};
use crate::SERVICE;

impl Alerting {
    /// Applies one request, unless this process applied it already.
    pub(crate) fn apply_request(&mut self, r: AlertRequest, at: Moment) -> Vec<Step> {
        if r.seq <= self.last_request {
            return Vec::new(); // applied already; its result is on its way to the store
        }
        self.last_request = r.seq;
        let now = at.wall;
        let mut out = Vec::new();
        let engine = &mut self.engine;
        let result = AlertCommand::parse(r.kind.as_str(), &r.body).and_then(|cmd| match cmd {
            AlertCommand::Ack { id } => engine
                .ack(now, &id, &r.who, &mut out)
                .map(|()| format!("acknowledged {id}"))
                .map_err(|e| e.to_string()),
            AlertCommand::Unsilence { id } => engine
                .unsilence(&id)
                .map(|s| format!("removed silence {} ({})", s.id, s.reason))
                .map_err(|e| e.to_string()),
            AlertCommand::Silence(s) => engine
                .silence(s.matchers, s.starts, s.ends, &r.who, &s.reason)
                .map(|s| s.id)
                .map_err(|e| e.to_string()),
        });
        let (ok, text) = match result {
            Ok(t) => (true, t),
            Err(e) => (false, e),
        };
        let mut steps = Vec::new();
        if let Err(e) = self.finish(r.seq, now, ok, text.clone()) {
            steps.push(Step::StoreFailed(e));
        }
        steps.push(Step::Log(
            LogEvent::new(at.market, SERVICE, Event::AlertRequestApplied)
                .with("request", r.seq)
                .with("who", r.who.clone())
                .with("kind", r.kind.as_str())
                .with("ok", ok)
                .with("result", text.clone()),
        ));
        // The notification log quotes the request as recorded, a refused one included.
        let quoted = |key: &str| r.body.get(key).and_then(|v| v.as_str());
        self.lines.push(AlertLogEntry {
            alert_id: quoted("id")
                .filter(|i| i.starts_with("a-"))
                .map(str::to_string),
            ..entry(
                now,
                r.kind.as_str(),
                format!(
                    "{} by {}: {text}{}",
                    if ok { "applied" } else { "refused" },
                    r.who,
                    quoted("reason")
                        .map(|why| format!(" (reason: {why})"))
                        .unwrap_or_default()
                ),
            )
        });
        steps.extend(self.apply(out, at));
        steps
    }
}
