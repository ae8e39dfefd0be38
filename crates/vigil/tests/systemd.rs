//! `vigil run` under systemd's notify protocol, on a real notification socket: `READY=1`
//! once it runs, `WATCHDOG=1` while its Monitor publishes the health board, `STOPPING=1`
//! at the end (the unit file: `Type=notify`, `WatchdogSec=60`; docs/operations.md).

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::{scratch_config, vigil};

#[test]
fn vigil_run_tells_systemd_it_is_ready_pings_the_watchdog_and_says_when_it_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = scratch_config(dir.path());
    // A paced replay of the bundled daily bars: five years a second, a few seconds long.
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("speed = \"max\"", "speed = 157680000"),
    )
    .expect("config");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notification socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut child = vigil()
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        // systemd's WatchdogSec=1: a ping every half second while the board is fresh.
        .env("WATCHDOG_USEC", "1000000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn vigil");
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + Duration::from_secs(60);
    while !got.iter().any(|m: &String| m.contains("STOPPING=1")) {
        assert!(
            Instant::now() < deadline,
            "no STOPPING=1 within 60 s: {got:?}"
        );
        let n = socket.recv(&mut buf).expect("a notification within 30 s");
        got.push(String::from_utf8_lossy(&buf[..n]).trim_end().to_string());
    }
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    assert_eq!(got.first().map(String::as_str), Some("READY=1"), "{got:?}");
    let pings = got.iter().filter(|m| m.as_str() == "WATCHDOG=1").count();
    assert!(pings >= 2, "pinged while it ran: {got:?}");
    assert_eq!(
        got.last().map(String::as_str),
        Some("STOPPING=1"),
        "{got:?}"
    );
}
