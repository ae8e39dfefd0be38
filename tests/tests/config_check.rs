//! `vigil config check` ok ⇒ the session starts and runs (issue 19): configs generated from a
//! valid one — every numeric key of [`vigil_config::BOUNDS`] set at, inside, just outside or
//! far outside its bounds, to 0, to the largest integer or decimal, to 10^-300, to a value of
//! the wrong type, or taken out — are checked; each one the check accepts runs a real
//! session (`vigil_session::Session`) on a small CSV under a simulated supervision clock,
//! which is walked forward and then asked to stop. The session must start, run, stop within
//! [`PATIENCE`] and panic nowhere (a panic hook counts every panic of every thread, the
//! ones the supervisor catches in an agent too); the process must not abort.
//!
//! `PROPTEST_CASES` sets the number of configs (default 400; about 10 s in a debug build).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rust_decimal::Decimal;
use vigil_config::{BOUNDS, Bound, VigilConfig};
use vigil_core::SimClock;
use vigil_tests::sim::{PATIENCE, Running, SYMBOL, et, minutes, write_bars};

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// The valid config every case starts from: every section with a numeric key the paper
/// venue and a CSV replay use.
fn base(dir: &Path) -> String {
    format!(
        r#"
[session]
initial_cash = "100000"

[data]
instruments = [{{ symbol = "{SYMBOL}", path = "{csv}" }}]
speed = 60.0
batch_size = 1024
max_in_flight_batches = 4
check_gaps = false

[data.anomaly]
max_jump_pct = "25"
k_sigma = 10.0
min_sigma_pct = "0.5"
window = 20
release_after_bars = 3

[regime]
short_window = 5
long_window = 10
volatility_ratio = 1.5
trend_threshold = 0.3
confirm_bars = 2

[signal]
fast_span = 3
slow_span = 8
warmup_bars = 8

[risk]
max_position_pct = "0.10"
max_gross_exposure_pct = "1"
position_pct = "0.08"
fixed_quantity = "100"
quantity_step = "1"
regime_size_factor = {{ unknown = "1", trending = "1", ranging = "1", volatile = "0.5" }}
drawdown_control = {{ line_pct = "0.10", step_pct = "0.25", step_interval_s = 86400 }}

[execution]
slippage_bps = "1"
commission_bps = "1"
commission_min = "0"
max_volume_participation = "1"
limit_offset_bps = "5"

[monitor]
heartbeat_interval_ms = 1000
heartbeat_timeout_ms = 30000
probe_interval_ms = 5000
snapshot_interval_s = 60
success_rate_window_s = 300
trade_frequency_days = 20
# Longer than the 20 simulated minutes a run walks: on a loaded machine the clock may step
# ahead of the replay, and a silent log would halt the base run before it trades.
dead_man = {{ silence_trading_s = 3600, silence_closed_s = 14400, heartbeat_interval_s = 60, heartbeat_timeout_ms = 5000 }}
supervision = {{ max_restarts = 3, within_s = 60, backoff_initial_ms = 500, backoff_max_ms = 30000 }}

[[monitor.rules]]
name = "cpu_high"
metric = "cpu_usage_ratio"
op = ">"
value = 0.8
for = 300
level = "WARN"

[log]
dir = "{logs}"
flush_interval_ms = 200
max_file_mb = 64

[checklist]
dir = "{reports}"
warn_free_disk_gb = 10
fail_free_disk_gb = 1

[store]
path = "{store}"

[control]
enabled = false

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
"#,
        csv = dir.join("bars.csv").display(),
        logs = dir.join("logs").display(),
        reports = dir.join("reports").display(),
        store = dir.join("state.db").display(),
    )
}

/// A key of [`BOUNDS`] as a path of [`base`] (`[]` is the first, `*` a name it has).
fn concrete(key: &str) -> String {
    key.replace("[]", "[0]")
        .replace("regime_size_factor.*", "regime_size_factor.volatile")
        .replace("alerts.rules.*", "alerts.rules.cpu_high")
}

/// The value at `path` and the table holding it.
fn slot<'a>(table: &'a mut toml::Table, path: &str) -> Option<(&'a mut toml::Table, String)> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop()?.to_string();
    let mut t = table;
    for part in parts {
        let (name, index) = match part.split_once('[') {
            Some((n, i)) => (n, Some(i.trim_end_matches(']').parse::<usize>().ok()?)),
            None => (part, None),
        };
        let mut v = t.get_mut(name)?;
        if let Some(i) = index {
            v = v.get_mut(i)?;
        }
        t = v.as_table_mut()?;
    }
    t.contains_key(&last).then_some((t, last))
}

/// What a case does to one key.
#[derive(Clone, Debug)]
enum Change {
    /// The least or greatest allowed value.
    Edge(bool),
    /// Just below the least or above the greatest.
    Beyond(bool),
    /// A fraction of the way from the least to the greatest.
    Inside(f64),
    /// One of [`WILD`].
    Wild(usize),
    /// A value of another type.
    WrongType(usize),
    /// The key is taken out (its default applies).
    Remove,
}

/// Extremes: 0, -1, huge, tiny, not a number.
const WILD: &[&str] = &[
    "0",
    "-1",
    "9223372036854775807",
    "1000000000000",
    "79228162514264337593543950335",
    "0.0000000000000000000000000001",
    "1e-300",
    "1e300",
    "nan",
    "inf",
    "0.5",
    "4294967295",
];

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => any::<bool>().prop_map(Change::Edge),
        2 => any::<bool>().prop_map(Change::Beyond),
        3 => (0.0..=1.0f64).prop_map(Change::Inside),
        2 => (0..WILD.len()).prop_map(Change::Wild),
        1 => (0..4usize).prop_map(Change::WrongType),
        1 => Just(Change::Remove),
    ]
}

/// The new value of a key whose bound is `b` and whose value is now `current` (its type
/// decides the written form: integer, float, or decimal string). `None`: take it out.
fn value(b: &Bound, current: &toml::Value, c: &Change) -> Option<toml::Value> {
    use rust_decimal::prelude::ToPrimitive as _;
    let tiny = Decimal::new(1, 8);
    let number: Option<Decimal> = match c {
        Change::Edge(low) => Some(if *low { b.min } else { b.max }),
        Change::Beyond(low) => Some(if *low { b.min - tiny } else { b.max + tiny }),
        Change::Inside(f) => {
            let span = (b.max - b.min).to_f64().unwrap_or(0.0);
            Some(b.min + Decimal::from_f64_retain(span * f).unwrap_or_default())
        }
        Change::Wild(_) | Change::WrongType(_) | Change::Remove => None,
    };
    let wild = match c {
        Change::Wild(i) => Some(WILD[*i]),
        _ => None,
    };
    match c {
        Change::Remove => return None,
        Change::WrongType(i) => {
            return Some(match i {
                0 => toml::Value::String("abc".into()),
                1 => toml::Value::Boolean(true),
                2 => toml::Value::Array(vec![toml::Value::Integer(1)]),
                _ => toml::Value::Table(toml::Table::new()),
            });
        }
        _ => {}
    }
    Some(match current {
        toml::Value::Integer(_) => {
            let n = match (number, wild) {
                (Some(d), _) => d.trunc().to_i64().unwrap_or(i64::MAX),
                (None, Some(w)) => w
                    .parse::<i64>()
                    .or_else(|_| w.parse::<f64>().map(|f| f as i64))
                    .unwrap_or(i64::MAX),
                (None, None) => 0,
            };
            toml::Value::Integer(n)
        }
        toml::Value::Float(_) => toml::Value::Float(match (number, wild) {
            (Some(d), _) => d.to_f64().unwrap_or(f64::MAX),
            (None, Some(w)) => w.parse().unwrap_or(f64::NAN),
            (None, None) => 0.0,
        }),
        _ => toml::Value::String(match (number, wild) {
            (Some(d), _) => d.to_string(),
            (None, Some(w)) => w.to_string(),
            (None, None) => "0".into(),
        }),
    })
}

/// Starts a session on `cfg`, walks its supervision clock `minutes` simulated minutes (a bar a
/// minute at speed 1), stops it; every step bounded in real time. Returns the summary.
fn start_run_stop(cfg: VigilConfig, minutes: u32) -> Result<vigil_session::SessionSummary, String> {
    actix_rt::System::new().block_on(async move {
        // After the bars (09:30–10:09): none is from the future.
        let wall = SimClock::starting_at(et(
            chrono::NaiveDate::from_ymd_opt(2024, 11, 26).expect("date"),
            10,
            10,
        ));
        let run = Running::start(cfg, &wall).await;
        for _ in 0..minutes {
            if run.ended.get() {
                break;
            }
            wall.advance_by(chrono::Duration::minutes(1));
            vigil_testkit::settle().await;
        }
        let outcome = tokio::time::timeout(PATIENCE, run.finish())
            .await
            .map_err(|_| format!("the session did not stop within {PATIENCE:?}"))?;
        match &outcome.summary.error {
            Some(e) => Err(format!("the session failed: {e}")),
            None => Ok(outcome.summary),
        }
    })
}

/// Applies `changes` to `table` (each with a folder of its own for its log, store and
/// reports) and checks the result; when the check accepts it, runs a session on it.
/// `Ok(false)`: refused by the check; `Ok(true)`: accepted and ran cleanly; `Err`: accepted,
/// then failed, hung or panicked.
fn try_config(
    table: &toml::Table,
    keys: &[(Bound, String)],
    changes: &[(usize, Change)],
) -> Result<bool, String> {
    let mut t = table.clone();
    let case = tempfile::tempdir().map_err(|e| e.to_string())?;
    for (section, key, name) in [
        ("log", "dir", "logs"),
        ("store", "path", "state.db"),
        ("checklist", "dir", "reports"),
    ] {
        if let Some(s) = t.get_mut(section).and_then(toml::Value::as_table_mut) {
            s.insert(
                key.into(),
                toml::Value::String(case.path().join(name).display().to_string()),
            );
        }
    }
    let mut what = Vec::new();
    for (k, c) in changes {
        let (b, path) = &keys[*k];
        let Some((holder, last)) = slot(&mut t, path) else {
            continue;
        };
        let current = holder[&last].clone();
        match value(b, &current, c) {
            Some(v) => {
                what.push(format!("{path} = {v}"));
                holder.insert(last, v);
            }
            None => {
                what.push(format!("{path} taken out"));
                holder.remove(&last);
            }
        }
    }
    let text = toml::to_string(&t).map_err(|e| e.to_string())?;
    let Ok(cfg) = VigilConfig::from_toml_str(&text, "generated") else {
        return Ok(false);
    };
    let panics = PANICS.load(Ordering::SeqCst);
    let outcome = start_run_stop(cfg, 20);
    let panicked = PANICS.load(Ordering::SeqCst) - panics;
    if panicked > 0 {
        return Err(format!("check ok, but {panicked} panic(s) with {what:?}"));
    }
    outcome
        .map(|_| true)
        .map_err(|e| format!("check ok, but {e} with {what:?}"))
}

#[test]
fn every_config_the_check_accepts_starts_runs_and_stops_without_a_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let times = minutes(
        et(
            chrono::NaiveDate::from_ymd_opt(2024, 11, 26).expect("date"),
            9,
            30,
        ),
        40,
    );
    write_bars(&dir.path().join("bars.csv"), &times);
    let text = base(dir.path());
    let table: toml::Table = text.parse().expect("the base parses");
    // The base itself runs the pipeline: every bar through, orders sent.
    let summary =
        // Up to four simulated hours, stopping at its end: on a loaded machine the replay may
        // first pull its bars (which fixes its pacing) after the clock has walked a while.
        start_run_stop(
            VigilConfig::from_toml_str(&text, "base").expect("the base is valid"),
            240,
        )
            .expect("the base runs");
    assert_eq!(summary.bars, times.len() as u64, "{summary:?}");
    assert!(summary.orders > 0, "{summary:?}");
    // Every bound whose key the base sets.
    let keys: Vec<(Bound, String)> = BOUNDS
        .iter()
        .map(|b| (*b, concrete(b.key)))
        .filter(|(_, path)| slot(&mut table.clone(), path).is_some())
        .collect();
    assert!(
        keys.len() > 50,
        "the base sets too few keys: {}",
        keys.len()
    );

    // Each key alone at each end of its bound: the check accepts it (unless another key's
    // bound depends on it) and the session runs.
    let (mut tried, mut ends, mut refused) = (0, 0, Vec::new());
    for (k, (b, _)) in keys.iter().enumerate() {
        // An open end is outside by definition.
        for low in [true, false]
            .into_iter()
            .filter(|low| !if *low { b.min_open } else { b.max_open })
        {
            tried += 1;
            match try_config(&table, &keys, &[(k, Change::Edge(low))]) {
                Ok(true) => ends += 1,
                Ok(false) => refused.push(format!("{} {}", b.key, if low { "min" } else { "max" })),
                Err(e) => panic!("{e}"),
            }
        }
    }
    eprintln!(
        "{ends} of {tried} closed bound ends passed the check and ran; refused by a check \
         between keys: {refused:?}"
    );
    assert!(
        ends * 10 >= tried * 8,
        "only {ends} of {tried} closed bound ends pass the check"
    );

    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400);
    let accepted = Arc::new(AtomicUsize::new(0));
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = proptest::collection::vec((0..keys.len(), change()), 1..4);
    let counted = accepted.clone();
    let result = runner.run(&strategy, |changes| {
        match try_config(&table, &keys, &changes) {
            Ok(true) => {
                counted.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(e) => Err(TestCaseError::fail(e)),
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let accepted = accepted.load(Ordering::SeqCst);
    eprintln!("{accepted} of {cases} generated configs passed the check and ran");
    assert!(
        accepted * 4 >= cases as usize,
        "only {accepted} of {cases} generated configs passed the check: the property says little"
    );
}
