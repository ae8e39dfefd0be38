//! Helpers for vigil's end-to-end tests: reading the JSON-lines log and building configs;
//! [`sim`], a real session in simulated time against real feeds on 127.0.0.1.

use std::path::Path;

pub mod sim;

use serde_json::Value;
use vigil_config::{InstrumentConfig, VigilConfig};

/// Reads every line of every log file of a folder, in write order, and checks the folder
/// verifies clean (hash chain, gap-free sequence); panics (failing the test) otherwise.
pub fn read_log(dir: &Path) -> Vec<Value> {
    let report = vigil_log::verify_dir(dir).expect("verify log folder");
    assert!(
        report.is_clean(),
        "log folder does not verify: {:?}",
        report.problems
    );
    let mut lines = Vec::new();
    vigil_log::read_lines(dir, |_, _, _, v| lines.push(v))
        .unwrap_or_else(|e| panic!("reading log {}: {e}", dir.display()));
    lines
}

/// Returns the lines whose `event` is `name`.
pub fn events<'a>(log: &'a [Value], name: &str) -> Vec<&'a Value> {
    log.iter().filter(|v| v["event"] == name).collect()
}

/// The embedded default, writing its log to `log_dir` and replaying `data` as `symbol`.
pub fn config_for(data: &Path, symbol: &str, log_dir: &Path) -> VigilConfig {
    let mut cfg = VigilConfig::embedded_default();
    cfg.data.instruments = vec![InstrumentConfig {
        symbol: symbol.into(),
        path: data.display().to_string(),
        check_gaps: None,
    }];
    cfg.log.dir = log_dir.to_path_buf();
    cfg.store.path = log_dir.join("state.db");
    cfg
}

/// Path of a file in the repository's `data/` folder.
pub fn repo_data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(name)
}

/// Moves a paced session's simulated wall clock on `seconds` seconds, one at a time, letting
/// the agents run between steps (with `data.speed = 3600` each step lets one hourly bar
/// through, and restart backoffs pass).
pub async fn step_wall(wall: &vigil_core::SimClock, seconds: usize) {
    for _ in 0..seconds {
        wall.advance_by(chrono::Duration::seconds(1));
        for _ in 0..20 {
            actix_rt::task::yield_now().await;
        }
    }
}
