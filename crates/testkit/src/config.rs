//! The TOML sections a test writes into a `vigil run` config, written once for every test
//! crate: where a session reads its feed, and where it keeps its log, store and control
//! address.

use std::path::Path;

/// `[data]` reading `symbol` from the feed at `url` (key `key_id`, secret in `secret`), and
/// `[data.feed]` with `feed_extra` (lines such as `max_rejected_in_a_row = 3`) at its end.
pub fn feed_sections(
    symbol: &str,
    url: &str,
    key_id: &str,
    secret: &Path,
    feed_extra: &str,
) -> String {
    format!(
        r#"
[data]
instruments = [{{ symbol = "{symbol}" }}]

[data.feed]
url = "{url}"
key_id = "{key_id}"
secret_file = "{secret}"
{feed_extra}
"#,
        secret = secret.display(),
    )
}

/// The `backups = [...]` line of `[data.feed]`: each of `urls` with the same key and secret.
pub fn feed_backups(urls: &[&str], key_id: &str, secret: &Path) -> String {
    let backups: Vec<String> = urls
        .iter()
        .map(|url| {
            format!(
                "{{ url = \"{url}\", key_id = \"{key_id}\", secret_file = \"{}\" }}",
                secret.display()
            )
        })
        .collect();
    format!("backups = [{}]", backups.join(", "))
}

/// `[log]` in `dir/logs`, `[store]` at `dir/state/vigil.db` and `[control]` on a free port
/// of 127.0.0.1; `log_extra` and `store_extra` (lines, e.g. a PostgreSQL `url`) end their
/// sections.
pub fn home_sections(dir: &Path, log_extra: &str, store_extra: &str) -> String {
    format!(
        r#"
[log]
dir = "{logs}"
{log_extra}

[store]
path = "{store}"
{store_extra}

[control]
address = "127.0.0.1:0"
"#,
        logs = dir.join("logs").display(),
        store = dir.join("state/vigil.db").display(),
    )
}

/// `[[monitor.rules]]` turning off the rules on the test machine's own CPU, memory and
/// disk. A test that counts what reached a webhook is about the session, not the machine
/// it runs on: a CI disk with less than 10 GB free fires `disk_low` in every session, and
/// its notice would be the first at the webhook.
pub const HOST_RULES_OFF: &str = r#"
[[monitor.rules]]
name = "cpu_high"
metric = "cpu_usage_ratio"
op = ">"
value = 0.8
level = "WARN"
enabled = false

[[monitor.rules]]
name = "memory_high"
metric = "memory_usage_ratio"
op = ">"
value = 0.9
level = "CRITICAL"
enabled = false

[[monitor.rules]]
name = "disk_low"
metric = "disk_free_bytes"
op = "<"
value = 10e9
level = "WARN"
enabled = false
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sections_make_one_toml_document() {
        let dir = Path::new("/tmp/run");
        let secret = dir.join("feed.secret");
        let text = format!(
            "{}{}",
            feed_sections(
                "GOOG",
                "ws://127.0.0.1:1/stream",
                "k",
                &secret,
                &feed_backups(&["ws://127.0.0.1:2/stream"], "k", &secret),
            ),
            home_sections(dir, "min_level = \"DEBUG\"", "url = \"postgres://x\""),
        );
        let doc: toml::Table = text.parse().expect("TOML");
        assert_eq!(
            doc["data"]["feed"]["backups"][0]["key_id"].as_str(),
            Some("k")
        );
        assert_eq!(doc["log"]["min_level"].as_str(), Some("DEBUG"));
        assert_eq!(doc["store"]["url"].as_str(), Some("postgres://x"));
        assert_eq!(doc["control"]["address"].as_str(), Some("127.0.0.1:0"));
    }
}
