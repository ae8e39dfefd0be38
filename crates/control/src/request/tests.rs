//! Tests of `request`.

use super::*;

fn ok(body: &str) -> CommandRequest {
    command_request(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"))
}

fn refused(body: &str) -> String {
    command_request(body.as_bytes()).expect_err(body)
}

#[test]
fn every_command_reads_into_its_action() {
    let base = r#""reason":"news","who":"ana""#;
    for (body, action) in [
        (
            r#""command":"pause","agent":"signal""#,
            Action::Pause(CommandTarget::Agent(AgentId::Signal)),
        ),
        (
            r#""command":"resume","agent":"all""#,
            Action::Resume(CommandTarget::All),
        ),
        (r#""command":"breaker_trip""#, Action::TripBreaker),
        (r#""command":"breaker_reset""#, Action::ResetBreaker),
        (r#""command":"cancel_all""#, Action::CancelAll),
        (r#""command":"flatten""#, Action::Flatten),
        (r#""command":"default_regime""#, Action::DefaultRegime),
        (r#""command":"shutdown""#, Action::Shutdown),
        (
            r#""command":"switch_source","source":"csv:backup""#,
            Action::SwitchSource("csv:backup".into()),
        ),
        (
            r#""command":"quarantine","symbol":"GOOG""#,
            Action::Quarantine("GOOG".into()),
        ),
        (
            r#""command":"release","symbol":"GOOG""#,
            Action::Release("GOOG".into()),
        ),
        (
            r#""command":"inject_panic","agent":"risk","times":3"#,
            Action::InjectPanic {
                agent: AgentId::Risk,
                times: 3,
            },
        ),
        (
            r#""command":"inject_panic","agent":"data""#,
            Action::InjectPanic {
                agent: AgentId::Data,
                times: 1,
            },
        ),
        (
            r#""command":"inject_freeze","seconds":12"#,
            Action::InjectFreeze { seconds: 12 },
        ),
    ] {
        let got = ok(&format!("{{{body},{base}}}"));
        assert_eq!(got.action, action, "{body}");
        assert_eq!((got.who.as_str(), got.reason.as_str()), ("ana", "news"));
    }
    let with_id = ok(r#"{"command":"flatten","reason":"r","who":"w","request_id":"abc"}"#);
    assert_eq!(with_id.request_id.as_deref(), Some("abc"));
}

#[test]
fn a_key_given_twice_is_refused_at_any_depth_and_values_read_as_serde_json_does() {
    for (body, key) in [
        (r#"{"who":"a","who":"b"}"#, "who"),
        (r#"{"x":{"k":1,"k":2}}"#, "k"),
        (r#"{"x":[{"k":1},{"j":2,"j":3}]}"#, "j"),
    ] {
        let e = parse_body(body.as_bytes()).expect_err(body);
        assert!(
            e.starts_with(&format!(
                "field \"{key}\" is given twice (each field may appear once)"
            )),
            "{body}: {e}"
        );
    }
    let body = r#"{"s":"x\u001by","n":-1,"u":18446744073709551615,"f":1.5,"b":true,"z":null,"a":[1,{"k":"v"}]}"#;
    assert_eq!(
        parse_body(body.as_bytes()).expect("read"),
        serde_json::from_str::<Value>(body).expect("read")
    );
    assert!(
        parse_body(b"{\"a\":")
            .expect_err("cut")
            .starts_with("the body is not JSON")
    );
}

#[test]
fn every_refusal_names_the_field() {
    for (body, needle) in [
        ("not json", "the body is not JSON"),
        ("[1]", "must be a JSON object"),
        (
            r#"{"command":"pause","agent":"signal","reason":"r","who":"w","colour":1}"#,
            "unknown field \"colour\"",
        ),
        (r#"{"reason":"r","who":"w"}"#, "missing field \"command\""),
        (
            r#"{"command":"inject_freeze","reason":"r","who":"w"}"#,
            "missing field \"seconds\"",
        ),
        (
            r#"{"command":"inject_freeze","seconds":0,"reason":"r","who":"w"}"#,
            "field \"seconds\" must be a whole number from 1 to 600, got 0",
        ),
        (
            r#"{"command":"inject_panic","agent":"risk","seconds":3,"reason":"r","who":"w"}"#,
            "field \"seconds\" does not apply to inject_panic",
        ),
        (
            r#"{"command":"explode","reason":"r","who":"w"}"#,
            "unknown command \"explode\"",
        ),
        (
            r#"{"command":"pause","reason":"r","who":"w"}"#,
            "missing field \"agent\"",
        ),
        (
            r#"{"command":"pause","agent":"bob","reason":"r","who":"w"}"#,
            "unknown agent \"bob\"",
        ),
        (
            r#"{"command":"pause","agent":"signal","who":"w"}"#,
            "missing field \"reason\"",
        ),
        (
            r#"{"command":"pause","agent":"signal","reason":"  ","who":"w"}"#,
            "field \"reason\" is blank",
        ),
        (
            r#"{"command":"pause","agent":"signal","reason":"r"}"#,
            "missing field \"who\"",
        ),
        (
            r#"{"command":"breaker_trip","agent":"risk","reason":"r","who":"w"}"#,
            "field \"agent\" does not apply to breaker_trip",
        ),
        (
            r#"{"command":"switch_source","reason":"r","who":"w"}"#,
            "missing field \"source\"",
        ),
        (
            r#"{"command":"inject_panic","agent":"all","reason":"r","who":"w"}"#,
            "unknown agent \"all\"",
        ),
        (
            r#"{"command":"inject_panic","agent":"risk","times":0,"reason":"r","who":"w"}"#,
            "field \"times\" must be a whole number",
        ),
        (
            r#"{"command":"pause","agent":7,"reason":"r","who":"w"}"#,
            "field \"agent\" must be a string",
        ),
    ] {
        let e = refused(body);
        assert!(e.contains(needle), "{body}: {e}");
    }
}

#[test]
fn a_rotation_needs_who_and_may_say_why() {
    let r = rotate_request(br#"{"who":"ana"}"#).expect("ok");
    assert_eq!(
        (r.who.as_str(), r.reason.as_str()),
        ("ana", "token rotation")
    );
    let e = rotate_request(br#"{"who":"ana","token":"x"}"#).expect_err("unknown");
    assert!(e.contains("unknown field \"token\""), "{e}");
    let e = rotate_request(b"{}").expect_err("who");
    assert!(e.contains("missing field \"who\""), "{e}");
}
