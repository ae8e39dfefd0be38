//! A blocking HTTP client for tests that talk to a server on loopback.

use std::time::Duration;

use serde_json::Value;

/// How long a request may wait for its answer before it fails the test.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

/// Sends `method` (`GET`, `POST` or `DELETE`) to `base` + `path` with `headers` and, for a
/// `POST`, `body` as JSON; returns the status and the answer as JSON (`null` when it is not
/// JSON). Any status is an answer; 15 s without one fails the test.
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
    let body = body.map(Value::to_string);
    let (status, text) = http_text(base, method, path, headers, body.as_deref());
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// [`http_json`] with the body sent as it is (`application/json`, even when it is not JSON:
/// a test of how a server takes a bad body) and the answer returned as text.
///
/// # Panics
/// When no answer comes (a test failure).
pub fn http_text(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(ANSWER_WITHIN))
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
                .send(body.unwrap_or_default())
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
    (status, text)
}
