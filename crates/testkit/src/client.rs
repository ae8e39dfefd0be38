//! A blocking HTTP client for tests that talk JSON to a server on loopback.

use std::time::Duration;

use serde_json::Value;

/// Sends `method` (`GET`, `POST` or `DELETE`) to `base` + `path` with `headers` and, for a
/// `POST`, `body` as JSON; returns the status and the answer as JSON (`null` when it is not
/// JSON). Any status is an answer; 10 s without one fails the test.
///
/// # Panics
/// When no answer comes (a test failure).
pub fn http_json(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Value) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    let url = format!("{base}{path}");
    let sent = match method {
        "POST" => {
            let mut req = agent.post(&url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.content_type("application/json")
                .send(body.map(Value::to_string).unwrap_or_default())
        }
        _ => {
            let mut req = match method {
                "DELETE" => agent.delete(&url),
                _ => agent.get(&url),
            };
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.call()
        }
    };
    let mut res = sent.unwrap_or_else(|e| panic!("{method} {url}: no answer: {e}"));
    let status = res.status().as_u16();
    let text = res
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("{method} {url}: unreadable body: {e}"));
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}
