//! Tests of `engine`.

use chrono::Duration;
use vigil_config::{AlertRuleConfig, MaintenanceConfig};

use super::*;

fn t(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

const T0: &str = "2024-01-16T15:00:00Z";

fn at(min: i64) -> Timestamp {
    t(T0) + Duration::minutes(min)
}

fn raise(rule: &str, level: Level) -> Raise {
    Raise {
        rule: rule.into(),
        level,
        service: "monitor_agent".into(),
        labels: BTreeMap::from([("agent".into(), "signal".into())]),
        event: format!("{rule} breached"),
        details: vec![("Current value".into(), "7".into())],
        you_need_to: "Look.".into(),
    }
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("agent".into(), "signal".into())])
}

fn engine(f: impl FnOnce(&mut AlertsConfig)) -> AlertEngine {
    let mut cfg = AlertsConfig {
        keep_firing_for: 0,
        ..AlertsConfig::default()
    };
    f(&mut cfg);
    AlertEngine::new(cfg)
}

/// The notices among the effects: (status, severity, channels, repeats).
fn notices(out: &[Effect]) -> Vec<(AlertStatus, Severity, Vec<String>, u32)> {
    out.iter()
        .filter_map(|e| match e {
            Effect::Notify {
                message: Message::Alert(n),
                channels,
            } => Some((n.status, n.severity, channels.clone(), n.repeats)),
            _ => None,
        })
        .collect()
}

fn suppressed(out: &[Effect]) -> Vec<Suppression> {
    out.iter()
        .filter_map(|e| match e {
            Effect::Suppressed { why, .. } => Some(why.clone()),
            _ => None,
        })
        .collect()
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

#[test]
fn fingerprints_are_stable_and_depend_on_every_label() {
    let a = raise("cpu_high", Level::Warn).all_labels();
    assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
    let mut b = a.clone();
    b.insert("agent".into(), "risk".into());
    assert_ne!(fingerprint(&a), fingerprint(&b));
    // FNV-1a 64 of "rule=x\n": a fixed value, so ids survive upgrades.
    assert_eq!(
        fingerprint(&BTreeMap::from([("rule".into(), "x".into())])),
        "0e611a624434aab4"
    );
}

#[test]
fn an_alert_fires_only_after_its_for_duration_and_routes_by_severity() {
    let mut e = engine(|c| {
        c.rules.insert(
            "agent_response_slow".into(),
            AlertRuleConfig {
                for_s: Some(300),
                ..AlertRuleConfig::default()
            },
        );
    });
    let mut out = Vec::new();
    e.raise(
        at(0),
        true,
        raise("agent_response_slow", Level::Warn),
        &mut out,
    );
    e.tick(at(4), true, &mut out);
    assert!(out.is_empty(), "{out:?}");
    e.tick(at(5), true, &mut out);
    assert!(matches!(&out[0], Effect::Firing(a) if a.rule == "agent_response_slow"));
    assert_eq!(
        notices(&out),
        [(
            AlertStatus::Firing,
            Severity::Medium,
            names(&["slack", "teams", "webhook"]),
            0
        )]
    );
    // Cleared before it ever fired: nothing at all.
    let mut out = Vec::new();
    e.raise(at(10), true, raise("cpu_high", Level::Error), &mut out);
    assert_eq!(
        notices(&out)[0].2,
        names(&["sms", "call", "pagerduty", "slack", "teams", "webhook"])
    );
}

#[test]
fn a_critical_alert_trips_the_breaker_on_every_sighting_but_notifies_once() {
    let trips = |out: &[Effect]| {
        out.iter()
            .filter(|e| matches!(e, Effect::TripBreaker { rule, .. } if rule == "daily_loss"))
            .count()
    };
    let mut e = engine(|_| {});
    let mut out = Vec::new();
    e.raise(at(0), true, raise("daily_loss", Level::Critical), &mut out);
    assert_eq!(trips(&out), 1);
    assert_eq!(notices(&out).len(), 1);
    // A restarted process restores the alert, then the rule sees the loss again.
    let mut restarted = engine(|_| {});
    restarted.restore(e.state());
    let mut out = Vec::new();
    restarted.raise(at(1), true, raise("daily_loss", Level::Critical), &mut out);
    assert_eq!(trips(&out), 1, "the new process's breaker is tripped again");
    assert!(notices(&out).is_empty(), "nobody is paged twice: {out:?}");
    // A Warn alert seen again does nothing at all.
    let mut out = Vec::new();
    restarted.raise(at(2), true, raise("cpu_high", Level::Warn), &mut out);
    restarted.raise(at(3), true, raise("cpu_high", Level::Warn), &mut out);
    assert_eq!(notices(&out).len(), 1);
    assert!(!out.iter().any(|e| matches!(e, Effect::TripBreaker { .. })));
}

#[test]
fn a_pending_alert_that_clears_is_never_sent() {
    let mut e = engine(|c| c.for_s = 300);
    let mut out = Vec::new();
    e.raise(at(0), true, raise("cpu_high", Level::Warn), &mut out);
    e.clear(
        at(2),
        true,
        "cpu_high",
        "monitor_agent",
        &labels(),
        &mut out,
    );
    e.tick(at(10), true, &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert!(e.active().is_empty());
}

#[test]
fn keep_firing_for_holds_a_cleared_alert_and_absorbs_a_flap() {
    let mut e = engine(|c| c.keep_firing_for = 120);
    let mut out = Vec::new();
    e.raise(at(0), true, raise("cpu_high", Level::Warn), &mut out);
    assert_eq!(notices(&out).len(), 1);
    out.clear();
    e.clear(
        at(1),
        true,
        "cpu_high",
        "monitor_agent",
        &labels(),
        &mut out,
    );
    e.tick(at(2), true, &mut out);
    assert!(out.is_empty(), "still held: {out:?}");
    // Back within the hold-down: the same alert, no new notice.
    e.raise(at(2), true, raise("cpu_high", Level::Warn), &mut out);
    assert!(notices(&out).is_empty(), "{out:?}");
    e.clear(
        at(3),
        true,
        "cpu_high",
        "monitor_agent",
        &labels(),
        &mut out,
    );
    e.tick(at(4), true, &mut out);
    assert!(out.is_empty());
    e.tick(at(5), true, &mut out);
    assert_eq!(
        notices(&out),
        [(
            AlertStatus::Resolved,
            Severity::Medium,
            names(&["slack", "teams", "webhook"]),
            0
        )]
    );
    assert!(matches!(out.last(), Some(Effect::Resolved(_))));
}

#[test]
fn the_same_fingerprint_notifies_once_per_group_interval_then_with_a_count() {
    let mut e = engine(|_| {});
    let mut out = Vec::new();
    for m in 0..3 {
        e.raise(at(m), true, raise("cpu_high", Level::Warn), &mut out);
        e.clear(
            at(m),
            true,
            "cpu_high",
            "monitor_agent",
            &labels(),
            &mut out,
        );
    }
    // The first firing and its resolution went out; the two flaps after were grouped.
    let sent = notices(&out);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].0, AlertStatus::Firing);
    assert_eq!(sent[1].0, AlertStatus::Resolved);
    assert_eq!(
        suppressed(&out),
        [
            Suppression::Grouped { repeats: 1 },
            Suppression::Grouped { repeats: 2 }
        ]
    );
    out.clear();
    e.tick(at(4), true, &mut out);
    assert!(notices(&out).is_empty(), "within the 5 minutes");
    e.tick(at(5), true, &mut out);
    let sent = notices(&out);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, AlertStatus::Resolved, "it is gone now");
    assert_eq!(sent[0].3, 2, "with the count of repeats");
}

#[test]
fn outside_trading_hours_only_critical_keeps_its_severity() {
    let mut e = engine(|_| {});
    let mut out = Vec::new();
    e.raise(at(0), false, raise("cpu_high", Level::Error), &mut out);
    assert!(notices(&out).is_empty());
    assert_eq!(suppressed(&out), [Suppression::Digest]);
    let mut out = Vec::new();
    e.raise(at(0), false, raise("log_silent", Level::Critical), &mut out);
    assert!(
        matches!(&out[1], Effect::TripBreaker { rule, .. } if rule == "log_silent"),
        "the breaker first: {out:?}"
    );
    let sent = notices(&out);
    assert_eq!(sent[0].1, Severity::Critical);
    assert_eq!(
        sent[0].2,
        names(&[
            "sms",
            "call",
            "pagerduty",
            "slack",
            "teams",
            "email",
            "webhook"
        ])
    );
    // The day's summary carries both, the Low one as its digest.
    let Some(Effect::Notify {
        message: Message::Digest { items, .. },
        channels,
    }) = e.day_summary(exchange_date(at(0)))
    else {
        panic!("a summary")
    };
    assert_eq!(channels, names(&["email"]));
    let rules: Vec<&str> = items.iter().map(|n| n.rule.as_str()).collect();
    assert_eq!(rules, ["cpu_high", "log_silent"]);
    assert_eq!(e.day_summary(exchange_date(at(0))), None, "a new day");
}

#[test]
fn silences_and_maintenance_windows_hold_notices_but_never_the_breaker() {
    let mut e = engine(|c| {
        c.maintenance.push(MaintenanceConfig {
            matchers: BTreeMap::from([("rule".into(), "disk_low".into())]),
            start: at(0),
            end: at(60),
            reason: "disk swap".into(),
        });
    });
    let s = e
        .silence(
            BTreeMap::from([("rule".into(), "log_silent".into())]),
            at(0),
            at(120),
            "alice",
            "writer migration",
        )
        .expect("silence");
    assert_eq!(s.id, "s-1");
    let mut out = Vec::new();
    e.raise(at(1), true, raise("log_silent", Level::Critical), &mut out);
    assert!(out.iter().any(|e| matches!(e, Effect::TripBreaker { .. })));
    assert!(notices(&out).is_empty());
    assert_eq!(
        suppressed(&out),
        [Suppression::Silenced {
            id: "s-1".into(),
            by: "alice".into(),
            reason: "writer migration".into()
        }]
    );
    let mut out = Vec::new();
    e.raise(at(1), true, raise("disk_low", Level::Warn), &mut out);
    assert!(
        matches!(&suppressed(&out)[0], Suppression::Silenced { id, by, .. } if id == "m-1" && by == "config")
    );
    // After the window the next alert goes out.
    e.clear(
        at(61),
        true,
        "disk_low",
        "monitor_agent",
        &labels(),
        &mut out,
    );
    let mut out = Vec::new();
    e.raise(at(70), true, raise("disk_low", Level::Warn), &mut out);
    assert_eq!(notices(&out).len(), 1);
    e.unsilence("s-1").expect("unsilence");
    assert_eq!(
        e.unsilence("s-1"),
        Err(EngineError::NoSuchSilence("s-1".into()))
    );
}

#[test]
fn a_tripped_breaker_inhibits_the_alerts_that_follow_from_it() {
    let mut e = engine(|_| {});
    let mut out = Vec::new();
    let mut breaker = raise("breaker_tripped", Level::Critical);
    breaker.labels.clear();
    e.raise(at(0), true, breaker, &mut out);
    let mut out = Vec::new();
    let mut freq = raise("trade_frequency_off", Level::Warn);
    freq.labels.clear();
    e.raise(at(1), true, freq, &mut out);
    assert_eq!(
        suppressed(&out),
        [Suppression::Inhibited {
            by_rule: "breaker_tripped".into()
        }]
    );
    // Other alerts are not inhibited.
    let mut out = Vec::new();
    e.raise(at(1), true, raise("cpu_high", Level::Warn), &mut out);
    assert_eq!(notices(&out).len(), 1);
}

#[test]
fn an_acknowledged_alert_tells_the_pager_and_stops_repeating() {
    let mut e = engine(|_| {});
    let mut out = Vec::new();
    e.raise(at(0), true, raise("cpu_high", Level::Error), &mut out);
    let id = e.active()[0].id.clone();
    let mut out = Vec::new();
    e.ack(at(1), &id, "bob", &mut out).expect("ack");
    assert_eq!(
        notices(&out),
        [(
            AlertStatus::Acknowledged,
            Severity::High,
            names(&["pagerduty"]),
            0
        )]
    );
    assert_eq!(
        e.ack(at(1), "a-nothing", "bob", &mut out),
        Err(EngineError::NoSuchAlert("a-nothing".into()))
    );
}

#[test]
fn state_survives_a_restart_without_repaging() {
    let mut e = engine(|_| {});
    let mut out = Vec::new();
    e.raise(at(0), true, raise("cpu_high", Level::Warn), &mut out);
    e.silence(BTreeMap::new(), at(0), at(600), "alice", "night")
        .expect("silence");
    let stored = serde_json::to_string(&e.state()).expect("serialise");
    let mut back = engine(|_| {});
    back.restore(serde_json::from_str(&stored).expect("deserialise"));
    assert_eq!(back.active().len(), 1);
    assert_eq!(back.silences(at(1)).len(), 1);
    // The same condition reported again after the restart: no second page.
    let mut out = Vec::new();
    back.raise(at(2), true, raise("cpu_high", Level::Warn), &mut out);
    assert!(notices(&out).is_empty(), "{out:?}");
    let s = back
        .silence(BTreeMap::new(), at(0), at(1), "x", "y")
        .expect("silence");
    assert_eq!(s.id, "s-2", "ids continue");
}

#[test]
fn the_dashboard_link_opens_the_page_of_the_alert() {
    let mut e = engine(|c| {
        c.dashboard_url = Some("https://vigil.local:8443/ui/#alert/{alert}".into());
    });
    let mut out = Vec::new();
    e.raise(at(0), true, raise("cpu_high", Level::Error), &mut out);
    let links: Vec<(String, Option<String>)> = out
        .iter()
        .filter_map(|e| match e {
            Effect::Notify {
                message: Message::Alert(n),
                ..
            } => Some((n.alert_id.clone(), n.dashboard.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(links.len(), 1, "{out:?}");
    let (id, link) = &links[0];
    assert!(id.starts_with("a-"));
    assert_eq!(
        link.as_deref(),
        Some(format!("https://vigil.local:8443/ui/#alert/{id}").as_str())
    );
}
