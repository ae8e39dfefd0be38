use super::*;

#[test]
fn every_key_has_one_bound_and_messages_say_the_range() {
    let mut keys: Vec<&str> = BOUNDS.iter().map(|b| b.key).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), BOUNDS.len(), "a key is listed twice");
    let step = BOUNDS
        .iter()
        .find(|b| b.key == "risk.quantity_step")
        .expect("listed");
    assert_eq!(step.range(), "[0.00000001, 1000000]");
    let tiny = Decimal::from_i128_with_scale(1, 28);
    assert!(!step.admits(Num::Dec(tiny)));
    assert_eq!(
        check("data.speed", "data.speed", 1e-300).map(|i| i.to_string()),
        Some("data.speed: must be in [1, 1000000000] × real time (or \"max\"), got 1e-300".into())
    );
    assert!(check("data.speed", "data.speed", f64::NAN).is_some());
    assert!(check("data.speed", "data.speed", 60.0).is_none());
    assert!(check("no.such.key", "x", 1u64).is_some());
}

/// A config that sets every section with a numeric key, valid.
pub(crate) const FULL: &str = r#"
[session]
initial_cash = "100000"

[data]
instruments = [{ symbol = "X", path = "x.csv" }]
speed = 60
batch_size = 1024
max_in_flight_batches = 4
future_tolerance_s = 60

[data.feed]
url = "ws://127.0.0.1:1/stream"
key_id = "k"
secret_file = "k.secret"
max_rejected_in_a_row = 5
max_parse_error_pct = 20.0
parse_error_window = 100
switch_back_after_s = 60
reconnect_initial_ms = 1000
reconnect_max_ms = 60000

[data.cross_check]
url = "ws://127.0.0.1:2/stream"
key_id = "r"
secret_file = "r.secret"
max_disagreement_pct = "2"
release_after_bars = 3

[data.anomaly]
max_jump_pct = "25"
k_sigma = 10.0
min_sigma_pct = "0.5"
window = 20
release_after_bars = 3

[regime]
short_window = 20
long_window = 100
volatility_ratio = 1.5
trend_threshold = 0.3
confirm_bars = 3

[signal]
fast_span = 10
slow_span = 30
warmup_bars = 30

[risk]
max_position_pct = "0.10"
max_gross_exposure_pct = "1"
position_pct = "0.08"
fixed_quantity = "100"
quantity_step = "1"
regime_size_factor = { unknown = "1", trending = "1", ranging = "1", volatile = "0.5" }
drawdown_control = { line_pct = "0.10", step_pct = "0.25", step_interval_s = 86400 }

[execution]
venue = "alpaca"
broker_url = "http://127.0.0.1:3"
broker_key_id = "b"
broker_secret_file = "b.secret"
broker_poll_interval_ms = 100
broker_timeout_ms = 5000
slippage_bps = "1"
commission_bps = "1"
commission_min = "0"
max_volume_participation = "1"
limit_offset_bps = "5"
reconcile = { interval_s = 60, retry_initial_ms = 500, retry_max_ms = 30000 }
fix = { heartbeat_s = 30, reconnect_initial_ms = 500, reconnect_max_ms = 30000, reply_timeout_ms = 5000 }

[monitor]
heartbeat_interval_ms = 1000
heartbeat_timeout_ms = 30000
probe_interval_ms = 5000
snapshot_interval_s = 60
watchdog_stall_s = 30
success_rate_window_s = 300
trade_frequency_days = 20
dead_man = { silence_trading_s = 300, silence_closed_s = 14400, heartbeat_interval_s = 60, heartbeat_timeout_ms = 5000 }
supervision = { max_restarts = 3, within_s = 60, backoff_initial_ms = 500, backoff_max_ms = 30000 }

[[monitor.rules]]
name = "cpu_high"
metric = "cpu_usage_ratio"
op = ">"
value = 0.8
for = 300
level = "WARN"

[log]
flush_interval_ms = 200
max_file_mb = 64

[checklist]
warn_free_disk_gb = 10
fail_free_disk_gb = 1

[release.shadow]
min_sessions = 5
min_correlation = 0.9
improvement_t = 2.0
max_latency_ratio = 1.2
cpu_budget_us = 1000.0
memory_budget_mb = 2048
outlier_sigma = 3.0
max_outlier_pct = 1.0
cost_bps = 1.0
save_every_s = 30

[release.drift]
enabled = true
window_bars = 500
min_bars = 100
max_psi = 0.25
max_tracking_z = 3.0

[release.rollback]
enabled = true
window_bars = 100
max_error_pct = 5.0
max_latency_p99_ms = 50.0
sharpe_window_bars = 50
sharpe_values = 20
min_sharpe = -3.0

[fleet]
url = "nats://127.0.0.1:4222"
node = "n"
lease_s = 15

[release.canary]
steps = [5, 25, 50, 100]
sessions_per_step = 5
margin_bps = 10.0
confidence_z = 2.0
auto_promote = true
unwind = "production"

[alerts]
for = 0
keep_firing_for = 120
group_interval = 300

[alerts.rules.cpu_high]
for = 60
keep_firing_for = 120

[alerts.channels.delivery]
attempts = 3
backoff_base_ms = 500
backoff_max_ms = 30000
queue_capacity = 1024

[alerts.channels.email]
host = "smtp.example.com"
port = 25
from = "a@example.com"
to = ["b@example.com"]
connect_timeout_ms = 10000
timeout_ms = 10000
"#;

/// `key` of [`BOUNDS`] as a path of [`FULL`].
fn concrete(key: &str) -> String {
    key.replace("[]", "[0]")
        .replace("regime_size_factor.*", "regime_size_factor.volatile")
        .replace("alerts.rules.*", "alerts.rules.cpu_high")
        .replace("channels.*", "channels.email")
}

fn value_at<'a>(table: &'a mut toml::Table, path: &str) -> &'a mut toml::Value {
    let mut parts = path.split('.');
    let first = parts.next().expect("a key");
    let mut v = table
        .get_mut(first)
        .unwrap_or_else(|| panic!("{path}: no {first}"));
    for part in parts {
        let (name, index) = match part.split_once('[') {
            Some((n, i)) => (
                n,
                Some(i.trim_end_matches(']').parse::<usize>().expect("index")),
            ),
            None => (part, None),
        };
        v = v
            .get_mut(name)
            .unwrap_or_else(|| panic!("{path}: no {name}"));
        if let Some(i) = index {
            v = v.get_mut(i).unwrap_or_else(|| panic!("{path}: no [{i}]"));
        }
    }
    v
}

/// Values just outside `b`, written as the key's current value is (integer, float or
/// decimal string).
fn outside(b: &Bound, current: &toml::Value) -> Vec<toml::Value> {
    use rust_decimal::prelude::ToPrimitive as _;
    let tiny = Decimal::new(1, 8);
    let mut out = Vec::new();
    match current {
        toml::Value::Integer(_) => {
            let max = b.max.to_i64().expect("an integer bound");
            let min = b.min.to_i64().expect("an integer bound");
            out.push(toml::Value::Integer(if b.max_open { max } else { max + 1 }));
            if b.min_open {
                out.push(toml::Value::Integer(min));
            } else if min > 0 {
                out.push(toml::Value::Integer(min - 1));
            }
        }
        toml::Value::Float(_) => {
            let max = b.max.to_f64().expect("bound");
            let min = b.min.to_f64().expect("bound");
            out.push(toml::Value::Float(if b.max_open {
                max
            } else {
                max * 1.000_001 + 1e-9
            }));
            out.push(toml::Value::Float(if b.min_open {
                min
            } else {
                min - 1e-6
            }));
        }
        toml::Value::String(_) => {
            let above = if b.max_open { b.max } else { b.max + tiny };
            let below = if b.min_open { b.min } else { b.min - tiny };
            out.push(toml::Value::String(above.to_string()));
            out.push(toml::Value::String(below.to_string()));
        }
        other => panic!("{}: not a number: {other}", b.key),
    }
    out
}

#[test]
fn every_bound_is_checked_at_its_key_on_both_sides() {
    let full: toml::Table = FULL.parse().expect("FULL parses");
    crate::VigilConfig::from_toml_str(FULL, "full").expect("FULL is valid");
    for b in BOUNDS {
        let path = concrete(b.key);
        let mut table = full.clone();
        let current = value_at(&mut table, &path).clone();
        for v in outside(b, &current) {
            let mut table = full.clone();
            *value_at(&mut table, &path) = v.clone();
            let text = toml::to_string(&table).expect("serialise");
            let err = crate::VigilConfig::from_toml_str(&text, "t")
                .expect_err(&format!("{path} = {v} is outside {}", b.range()));
            // Beyond its Rust type (a port above 65535) it is a type error instead.
            let want = format!("{path}: must be in {}", b.range());
            let typed = format!("{path}: expected a whole number");
            assert!(
                err.issues.iter().any(|i| {
                    let i = i.to_string();
                    i.starts_with(&want) || i.starts_with(&typed)
                }),
                "{path} = {v}: no {want:?} in\n{err}"
            );
        }
    }
}

/// Every number of a config: integers, floats and decimals (written as strings).
fn numbers(v: &toml::Value, path: &str, out: &mut Vec<String>) {
    match v {
        toml::Value::Integer(_) | toml::Value::Float(_) => out.push(path.to_string()),
        // Decimals are written as strings, durations as "5m".
        toml::Value::String(s)
            if s.parse::<Decimal>().is_ok()
                || s.strip_suffix(['s', 'm', 'h'])
                    .is_some_and(|n| n.parse::<u64>().is_ok()) =>
        {
            out.push(path.to_string())
        }
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                numbers(v, &key, out);
            }
        }
        toml::Value::Array(a) => {
            for v in a {
                numbers(v, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_numeric_key_of_the_config_has_a_bound() {
    let cfg = crate::VigilConfig::from_toml_str(FULL, "full").expect("FULL is valid");
    let value = toml::Value::try_from(&cfg).expect("serialise");
    let mut found = Vec::new();
    numbers(&value, "", &mut found);
    assert!(found.len() > 70, "{found:?}");
    let unbounded: Vec<String> = found
        .into_iter()
        .map(|p| {
            p.replace("regime_size_factor.volatile", "regime_size_factor.*")
                .replace("regime_size_factor.unknown", "regime_size_factor.*")
                .replace("regime_size_factor.trending", "regime_size_factor.*")
                .replace("regime_size_factor.ranging", "regime_size_factor.*")
                .replace("alerts.rules.cpu_high", "alerts.rules.*")
                .replace(
                    "channels.email.connect_timeout_ms",
                    "channels.*.connect_timeout_ms",
                )
                .replace("channels.email.timeout_ms", "channels.*.timeout_ms")
        })
        // A rule's threshold is any finite number; the calendar checks its schedule; the
        // canary's steps are checked as a list (increasing, in (0, 100], ending at 100).
        .filter(|p| {
            p != "monitor.rules[].value"
                && !p.starts_with("calendar.schedule.")
                && p != "release.canary.steps[]"
        })
        .filter(|p| !BOUNDS.iter().any(|b| b.key == p))
        .collect();
    assert!(
        unbounded.is_empty(),
        "numeric keys without a bound: {unbounded:?}"
    );
}

/// The table of docs/configuration.md, between its `bounds` markers.
fn markdown() -> String {
    let mut out = String::from("| key | allowed | unit | note |\n| --- | --- | --- | --- |\n");
    for b in BOUNDS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            b.key,
            b.range(),
            b.unit,
            b.note.replace('"', "`")
        ));
    }
    out
}

#[test]
fn docs_configuration_md_shows_every_bound() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
    let text = std::fs::read_to_string(path).expect("docs/configuration.md");
    let documented = text
        .split_once("<!-- bounds:start -->\n")
        .and_then(|(_, rest)| rest.split_once("<!-- bounds:end -->"))
        .map(|(table, _)| table)
        .expect("the bounds markers in docs/configuration.md");
    assert_eq!(
        documented,
        markdown(),
        "docs/configuration.md and vigil_config::BOUNDS differ; the table should read:\n{}",
        markdown()
    );
}
