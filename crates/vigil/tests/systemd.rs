//! `vigil run` under systemd's notify protocol, on a real notification socket: `READY=1`
//! once it runs, `WATCHDOG=1` while its Monitor publishes the health board, `STOPPING=1`
//! at the end (the unit file: `Type=notify`, `WatchdogSec=60`; docs/operations.md).

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::{scratch_config, vigil};

/// `vigil run` on the scratch config in `dir`, paced at `speed`, as systemd starts it with
/// `WatchdogSec=1` (a ping every half second while the board is fresh): the notification
/// socket it reports to, and the process.
fn under_systemd(dir: &std::path::Path, speed: &str) -> (UnixDatagram, std::process::Child) {
    let config = scratch_config(dir);
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("speed = \"max\"", &format!("speed = {speed}")),
    )
    .expect("config");
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notification socket");
    let child = vigil()
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn vigil");
    (socket, child)
}

#[test]
fn vigil_run_tells_systemd_it_is_ready_pings_the_watchdog_and_says_when_it_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A paced replay of the bundled daily bars: five years a second, a few seconds long.
    let (socket, mut child) = under_systemd(dir.path(), "157680000");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
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

/// A frozen process (SIGSTOP: the whole of it, the watchdog's thread too) goes silent to
/// systemd, which restarts it after `WatchdogSec`; thawed (SIGCONT) before that, it pings
/// again.
#[test]
fn a_frozen_vigil_goes_silent_to_the_watchdog_and_pings_again_when_thawed() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A paced replay of the bundled daily bars lasting about a minute.
    let (socket, mut child) = under_systemd(dir.path(), "5000000");
    let pid = child.id().to_string();
    let signal = |sig: &str| {
        let out = std::process::Command::new("kill")
            .args([sig, &pid])
            .output()
            .expect("kill");
        assert!(out.status.success(), "kill {sig} {pid}: {out:?}");
    };
    let mut buf = [0u8; 512];
    // Reads notifications for `within`; returns them.
    let mut listen = |within: Duration| -> Vec<String> {
        let end = Instant::now() + within;
        let mut got = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("timeout");
            match socket.recv(&mut buf) {
                Ok(n) => got.push(String::from_utf8_lossy(&buf[..n]).trim_end().to_string()),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => panic!("the notification socket: {e}"),
            }
        }
        got
    };
    let pings = |got: &[String]| got.iter().filter(|m| m.as_str() == "WATCHDOG=1").count();
    let mut before = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    while pings(&before) < 2 && Instant::now() < end {
        before.extend(listen(Duration::from_millis(500)));
    }
    assert!(
        before.first().map(String::as_str) == Some("READY=1") && pings(&before) >= 2,
        "ready and pinging (every 0.5 s) before the freeze: {before:?}"
    );
    signal("-STOP");
    // What was on its way before the freeze, then silence: three ping periods and more.
    listen(Duration::from_millis(200));
    let frozen = listen(Duration::from_secs(2));
    assert!(frozen.is_empty(), "a frozen process said {frozen:?}");
    signal("-CONT");
    let thawed = listen(Duration::from_secs(5));
    assert!(pings(&thawed) >= 1, "no ping after the thaw: {thawed:?}");
    signal("-INT");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}
