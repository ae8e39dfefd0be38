//! Helpers for vigil's end-to-end tests: reading the JSON-lines log and building configs.

use std::path::Path;

use serde_json::Value;
use vigil_config::{InstrumentConfig, VigilConfig};

/// Reads every line of a log file as JSON; panics (failing the test) on a malformed line.
pub fn read_log(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading log {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}:{}: not JSON ({e}): {l}", path.display(), i + 1))
        })
        .collect()
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
    }];
    cfg.log.dir = log_dir.to_path_buf();
    cfg
}

/// Path of a file in the repository's `data/` folder.
pub fn repo_data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(name)
}
