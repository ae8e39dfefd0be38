//! From what alerting hears to what the Monitor does: the engine's effects become log lines,
//! notification-log lines, notices handed to the dispatcher, breaker trips and counters.
//! Every method returns the [`Step`]s for the actor to carry out, in order.

use std::sync::Arc;

use vigil_alert::routing::AlertInput;
use vigil_alert::{DeliveryOutcome, Effect, Message as Notice, NextStep, Severity};
use vigil_core::{Level, Timestamp};
use vigil_log::{Event, LogEvent};
use vigil_messages::Figures;
use vigil_store::AlertLogEntry;

use super::{Alerting, alert_entry, entry, level_of};
use crate::SERVICE;

/// The times alerting works with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Moment {
    /// Supervision time: alert lifecycles and the notification log.
    pub(crate) wall: Timestamp,
    /// Market time: the stamp of log lines.
    pub(crate) market: Timestamp,
    /// Whether the market is open (quiet periods).
    pub(crate) open: bool,
}

/// A counter on the health board.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Count {
    /// `vigil_alerts_fired_total{severity}`.
    Fired(Severity),
    /// `vigil_alert_deliveries_total{channel, outcome}`.
    Delivery {
        channel: String,
        outcome: &'static str,
    },
}

impl Count {
    /// Increments the counter (on the recorder in force: the health board's).
    pub(crate) fn record(self) {
        match self {
            Count::Fired(severity) => {
                metrics::counter!("vigil_alerts_fired_total", "severity" => severity.as_str())
                    .increment(1);
            }
            Count::Delivery { channel, outcome } => {
                metrics::counter!("vigil_alert_deliveries_total", "channel" => channel, "outcome" => outcome)
                    .increment(1);
            }
        }
    }
}

/// One thing for the actor to do, in order.
#[derive(Debug)]
pub(crate) enum Step {
    /// Write a log line.
    Log(LogEvent),
    /// Count.
    Count(Count),
    /// A Critical alert fired: halt trading (actor `alert:<rule>`).
    Halt { rule: String, reason: String },
    /// The store could not be handed what it must keep.
    StoreFailed(String),
    /// Tell the person at the terminal.
    Stderr(String),
}

impl Alerting {
    /// The latest equity and today's P&L, from the Execution agent's heartbeat: they go in
    /// the details of every alert.
    pub(crate) fn heard_figures(&mut self, figures: &Figures) {
        if let Figures::Execution {
            equity, business, ..
        } = figures
        {
            self.equity = Some((equity.to_string(), business.day_pnl.to_string()));
        }
    }

    /// Hands what an event means to the engine.
    pub(crate) fn hear(&mut self, input: AlertInput, at: Moment) -> Vec<Step> {
        let mut out = Vec::new();
        let once = matches!(input, AlertInput::Happened(_));
        match input {
            AlertInput::Raise(mut r) | AlertInput::Happened(mut r) => {
                if let Some((equity, pnl)) = &self.equity {
                    r.details.push(("Equity".into(), equity.clone()));
                    r.details.push(("Today's P&L".into(), pnl.clone()));
                }
                let (rule, service, labels) = (r.rule.clone(), r.service.clone(), r.labels.clone());
                self.engine.raise(at.wall, at.open, r, &mut out);
                if once {
                    self.engine
                        .clear(at.wall, at.open, &rule, &service, &labels, &mut out);
                }
            }
            AlertInput::Clear {
                rule,
                service,
                labels,
            } => self
                .engine
                .clear(at.wall, at.open, &rule, &service, &labels, &mut out),
            AlertInput::PostClose(date) => {
                let date = date.unwrap_or_else(|| vigil_alert::exchange_date(at.market));
                if self.summarized != Some(date) {
                    self.summarized = Some(date);
                    out.extend(self.engine.day_summary(date));
                }
            }
            AlertInput::PreOpen(date) => {
                let date = date.unwrap_or_else(|| vigil_alert::exchange_date(at.market));
                if self.pre_opened != Some(date) {
                    self.pre_opened = Some(date);
                    out.extend(self.engine.pre_open_summary(date));
                }
            }
            AlertInput::DayReport(files) => {
                let date = files
                    .date
                    .unwrap_or_else(|| vigil_alert::exchange_date(at.market));
                let (report, unread) = read_report(&files, date);
                let mut steps: Vec<Step> = unread
                    .into_iter()
                    .map(|error| {
                        Step::Log(
                            LogEvent::new(at.market, SERVICE, Event::MonitorProbeFailed)
                                .level(Level::Error)
                                .with("probe", "day_report")
                                .with("error", error),
                        )
                    })
                    .collect();
                steps.extend(self.apply(vec![self.engine.day_report(report)], at));
                return steps;
            }
        }
        self.apply(out, at)
    }

    /// Moves alerts on in time: pending ones past `for` fire, cleared ones resolve, grouped
    /// repeats go out.
    pub(crate) fn tick(&mut self, at: Moment) -> Vec<Step> {
        let mut out = Vec::new();
        self.engine.tick(at.wall, at.open, &mut out);
        // Every second: nothing to save unless time moved an alert on (an expired silence
        // is dropped on the next save; it no longer matches anyway).
        if out.is_empty() {
            return Vec::new();
        }
        self.apply(out, at)
    }

    /// The day's summary the session still owes at its end.
    pub(crate) fn closing_summary(&mut self, at: Moment) -> Vec<Step> {
        let date = vigil_alert::exchange_date(at.market);
        match self.engine.day_summary(date) {
            Some(effect) => self.apply(vec![effect], at),
            None => Vec::new(),
        }
    }

    /// Acts on the engine's effects: logs them, asks for halts, hands notices to the
    /// dispatcher, and queues the state and the notification log for the store.
    pub(crate) fn apply(&mut self, effects: Vec<Effect>, at: Moment) -> Vec<Step> {
        let (now, stamp) = (at.wall, at.market);
        let mut steps = Vec::new();
        for effect in effects {
            match effect {
                Effect::Firing(a) => {
                    steps.push(Step::Count(Count::Fired(a.severity)));
                    let labels: Vec<String> =
                        a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    steps.push(Step::Log(
                        LogEvent::new(stamp, SERVICE, Event::AlertFiring)
                            .level(level_of(a.severity))
                            .with("id", a.id.clone())
                            .with("rule", a.rule.clone())
                            .with("severity", a.severity.as_str())
                            .with("service", a.service.clone())
                            .with("labels", labels.join(","))
                            .with("headline", a.event.clone()),
                    ));
                    self.lines
                        .push(alert_entry(now, "firing", &a, a.event.clone()));
                }
                Effect::Resolved(a) => {
                    let firing_s = (now - a.since).num_seconds();
                    steps.push(Step::Log(
                        LogEvent::new(stamp, SERVICE, Event::AlertResolved)
                            .with("id", a.id.clone())
                            .with("rule", a.rule.clone())
                            .with("firing_s", firing_s),
                    ));
                    self.lines.push(alert_entry(
                        now,
                        "resolved",
                        &a,
                        format!("cleared after {firing_s} s: {}", a.event),
                    ));
                }
                Effect::Suppressed { id, rule, why } => {
                    let why = why.to_string();
                    steps.push(Step::Log(
                        LogEvent::new(stamp, SERVICE, Event::AlertSuppressed)
                            .with("id", id.clone())
                            .with("rule", rule.clone())
                            .with("why", why.clone()),
                    ));
                    self.lines.push(AlertLogEntry {
                        alert_id: Some(id),
                        rule: Some(rule),
                        ..entry(now, "suppressed", why)
                    });
                }
                Effect::TripBreaker { rule, reason } => steps.push(Step::Halt { rule, reason }),
                Effect::Notify { message, channels } => {
                    self.notify(stamp, now, message, &channels, &mut steps);
                }
            }
        }
        if let Err(e) = self.persist(now) {
            steps.push(Step::StoreFailed(e));
        }
        steps
    }

    /// Hands a notice to the dispatcher, one delivery per configured channel of `channels`.
    fn notify(
        &mut self,
        stamp: Timestamp,
        now: Timestamp,
        message: Notice,
        channels: &[String],
        steps: &mut Vec<Step>,
    ) {
        let (status, severity, id, rule) = match &message {
            Notice::Alert(n) => (
                format!("{:?}", n.status).to_lowercase(),
                n.severity.as_str().to_string(),
                Some(n.alert_id.clone()),
                Some(n.rule.clone()),
            ),
            Notice::Digest { items, .. } => (
                format!("digest of {}", items.len()),
                "LOW".into(),
                None,
                None,
            ),
            Notice::Test { .. } => ("test".into(), "LOW".into(), None, None),
            Notice::Report(r) => (
                format!("day report of {}", r.date),
                "LOW".into(),
                None,
                None,
            ),
        };
        let message = Arc::new(message);
        let (deliveries, used, unrouted) = self.deliveries(&message, channels);
        let mut refused = Vec::new();
        if let Some(d) = self.dispatcher.as_ref() {
            for delivery in deliveries {
                if let Err(e) = d.submit(delivery) {
                    refused.push(e.to_string());
                }
            }
        }
        let mut ev = LogEvent::new(stamp, SERVICE, Event::AlertNotified)
            .with("status", status.clone())
            .with("severity", severity.clone())
            .with("channels", used.join(","));
        if let Some(id) = &id {
            ev = ev.with("id", id.clone());
        }
        if !unrouted.is_empty() {
            ev = ev.level(Level::Warn).with("unrouted", unrouted.join(","));
            if used.is_empty() {
                ev = ev.with(
                    "note",
                    "no configured channel on this route: nobody was told; configure [alerts.channels]",
                );
            }
        }
        steps.push(Step::Log(ev));
        for e in &refused {
            steps.push(Step::Count(Count::Delivery {
                channel: "dispatcher".into(),
                outcome: "refused",
            }));
            steps.push(Step::Log(
                LogEvent::new(stamp, SERVICE, Event::AlertDeliveryFailed)
                    .with("channel", "dispatcher")
                    .with("error", e.clone())
                    .with("next", "gave up: the notice was not queued"),
            ));
        }
        let detail = format!(
            "{status} {severity} to [{}]{}{}",
            used.join(", "),
            if unrouted.is_empty() {
                String::new()
            } else {
                format!("; not configured: [{}]", unrouted.join(", "))
            },
            if refused.is_empty() {
                String::new()
            } else {
                format!("; not queued: {}", refused.join("; "))
            }
        );
        self.lines.push(AlertLogEntry {
            alert_id: id,
            rule,
            severity: Some(severity),
            ..entry(now, "notified", detail)
        });
    }

    /// A delivery attempt's outcome: logged, counted, kept in the notification log; a
    /// channel that failed for good raises `alert_undeliverable`, one that delivers clears it.
    pub(crate) fn delivered(&mut self, o: DeliveryOutcome, at: Moment) -> Vec<Step> {
        let mut steps = Vec::new();
        let level = Alerting::outcome_level(&o);
        let mut ev;
        let (kind, detail) = match (&o.result, &o.next) {
            (Ok(()), _) => {
                ev = LogEvent::new(at.market, SERVICE, Event::AlertDelivered);
                ("delivered", format!("attempt {}", o.attempt))
            }
            (Err(e), next) => {
                let next = match next {
                    NextStep::RetryIn(d) => format!("retry in {} ms", d.as_millis()),
                    NextStep::EscalatedTo(c) => format!("escalated to {c}"),
                    NextStep::GaveUp => "gave up: nobody was told".into(),
                    NextStep::Delivered => "delivered".into(),
                };
                ev = LogEvent::new(at.market, SERVICE, Event::AlertDeliveryFailed)
                    .with("error", e.to_string())
                    .with("next", next.clone());
                (
                    "delivery_failed",
                    format!("attempt {}: {e}; {next}", o.attempt),
                )
            }
        };
        steps.push(Step::Count(Count::Delivery {
            channel: o.channel.clone(),
            outcome: if o.is_ok() { "delivered" } else { "failed" },
        }));
        ev = ev
            .level(level)
            .with("channel", o.channel.clone())
            .with("kind", o.kind.as_str())
            .with("attempt", u64::from(o.attempt))
            .with("elapsed_ms", o.elapsed.as_millis() as u64);
        if let Some(id) = &o.alert_id {
            ev = ev.with("id", id.clone());
        }
        steps.push(Step::Log(ev));
        self.lines.push(AlertLogEntry {
            alert_id: o.alert_id.clone(),
            channel: Some(o.channel.clone()),
            ..entry(at.wall, kind, detail)
        });
        match (&o.result, &o.next) {
            (Err(e), NextStep::GaveUp) => {
                steps.push(Step::Stderr(format!(
                    "vigil: ERROR a notice reached nobody: {} failed for good ({e}); see `vigil alerts history`",
                    o.channel
                )));
                let raise = vigil_alert::routing::undeliverable(
                    SERVICE,
                    &o.channel,
                    o.error_text().unwrap_or_default(),
                );
                steps.extend(self.hear(AlertInput::Raise(raise), at));
            }
            (Ok(()), _) => {
                let clear = vigil_alert::routing::delivered_again(SERVICE, &o.channel);
                steps.extend(self.hear(clear, at));
            }
            _ => {
                if let Err(e) = self.persist(at.wall) {
                    steps.push(Step::StoreFailed(e));
                }
            }
        }
        steps
    }
}

#[cfg(test)]
mod tests;

/// The day report whose files `files` names, read for the channels. What cannot be read is
/// said in the report's text (it is still sent: the headline and the file names tell the
/// person where to look) and returned, one error each, for the log.
fn read_report(
    files: &vigil_alert::routing::ReportFiles,
    date: chrono::NaiveDate,
) -> (vigil_alert::Report, Vec<String>) {
    let mut unread = Vec::new();
    let text = match std::fs::read_to_string(&files.text) {
        Ok(text) => text,
        Err(e) => {
            let error = format!("cannot read the day report {}: {e}", files.text);
            unread.push(error.clone());
            format!("{error}\n")
        }
    };
    let mut images = Vec::new();
    let mut text = text;
    if !files.chart.is_empty() {
        match std::fs::read(&files.chart) {
            Ok(png) => images.push(vigil_alert::Image {
                name: "equity".into(),
                alt: format!("equity and drawdown on {date}"),
                png,
            }),
            Err(e) => {
                let error = format!("cannot read the day report's chart {}: {e}", files.chart);
                text.push_str(&format!("\n{error}\n"));
                unread.push(error);
            }
        }
    }
    let stored = [&files.json, &files.text, &files.chart];
    let report = vigil_alert::Report {
        date,
        headline: files.headline.clone(),
        text,
        images,
        files: stored
            .into_iter()
            .filter(|f| !f.is_empty())
            .cloned()
            .collect(),
    };
    (report, unread)
}
