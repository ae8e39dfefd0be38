//! The two drills of a silence: `stale-data` (the feed stays connected and sends nothing)
//! and `process-frozen` (vigil's Monitor hangs, and with it the outside heartbeat).

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vigil_config::VigilConfig;

use super::{
    DrillCheck, DrillError, DrillOptions, Stack, approved_after_trip, command, put_breaker_back,
    seen_check, status, told,
};

const STALE_SEEN: &str = "the silence is caught";
const STALE_HALTS: &str = "trading halts";
const NOTHING_WHILE_STALE: &str = "no order while the data was stale";
const FLOWS_AGAIN: &str = "the data flows again";

/// Runs `stale-data` against the stack of `cfg`: the feed stays connected, answers pings
/// and sends nothing (`/_faults/stall`). In trading hours, by the running vigil's clock,
/// the `data_stale` rule must fire (CRITICAL) after its threshold, a person be told, the
/// breaker trip and nothing be approved; once the feed sends again (`clear`, then
/// `opts.step` bars) the rule recovers. Then the drill resets the breaker it caused.
///
/// # Errors
/// [`DrillError::NotApplicable`] when the running vigil's clock says the exchange is
/// closed (a quiet feed is normal then); otherwise as [`super::data_format_change`].
pub fn stale_data(
    cfg: &VigilConfig,
    config: &std::path::Path,
    opts: &DrillOptions,
) -> Result<Vec<DrillCheck>, DrillError> {
    let stack = Stack::new(cfg, config, opts)?;
    let board = status(cfg)?;
    if board["market_open"] != true {
        return Err(DrillError::NotApplicable(format!(
            "the exchange is closed by the running vigil's clock ({}): a quiet feed is judged \
             only in trading hours; run it in hours, or on a rehearsal stack started with \
             `vigil run --clock-start` at a time in a session",
            board["updated_at"].as_str().unwrap_or("no time yet")
        )));
    }
    let rules = cfg.monitor.effective_rules();
    let Some(rule) = rules.iter().find(|r| r.name == "data_stale") else {
        return Ok(vec![DrillCheck {
            name: STALE_SEEN,
            passed: false,
            detail: "the data_stale rule is disabled ([[monitor.rules]]): nothing catches a \
                     feed that goes quiet"
                .into(),
        }]);
    };
    // The rule needs its threshold and its `for`, then a probe round to see it.
    let stale_after = Duration::from_secs_f64(rule.value.max(0.0))
        + Duration::from_secs(rule.for_s)
        + Duration::from_millis(cfg.monitor.probe_interval_ms);
    let before = stack.lines()?.len();
    let t0 = Instant::now();
    stack.post("/_faults/stall")?;
    let breached = super::wait(&stack.log_dir, before, stack.patience + stale_after, |l| {
        l["event"] == "threshold_breached" && l["data"]["rule"] == "data_stale"
    })?;
    let mut checks = vec![match &breached {
        Some(l) => DrillCheck {
            name: STALE_SEEN,
            passed: l["level"] == "CRITICAL",
            detail: format!(
                "data_stale ({}) {} ms after the feed went quiet: {} s without a bar (threshold \
                 {} s)",
                l["level"].as_str().unwrap_or("?"),
                t0.elapsed().as_millis(),
                l["data"]["value"],
                l["data"]["threshold"]
            ),
        },
        None => DrillCheck {
            name: STALE_SEEN,
            passed: false,
            detail: format!(
                "no data_stale within {} s of the feed going quiet (threshold {} s)",
                (stack.patience + stale_after).as_secs(),
                rule.value
            ),
        },
    }];
    checks.push(told(&stack, before, "data_stale", t0, opts.timeout_s)?);
    let tripped = stack.wait(before, |l| l["event"] == "breaker_tripped")?;
    checks.push(seen_check(
        STALE_HALTS,
        tripped.as_ref(),
        |l| {
            format!(
                "breaker_tripped by {} {} ms after the feed went quiet",
                l["data"]["actor"].as_str().unwrap_or("?"),
                t0.elapsed().as_millis()
            )
        },
        || format!("no breaker_tripped within {} s", opts.timeout_s),
    ));
    stack.post("/_faults/clear")?;
    stack.step(opts.step)?;
    let recovered = stack.wait(before, |l| {
        l["event"] == "threshold_recovered" && l["data"]["rule"] == "data_stale"
    })?;
    checks.push(seen_check(
        FLOWS_AGAIN,
        recovered.as_ref(),
        |l| {
            format!(
                "data_stale recovered {} ms after the fault, stale for {} s",
                t0.elapsed().as_millis(),
                l["data"]["breached_s"]
            )
        },
        || {
            format!(
                "data_stale did not recover within {} s of the feed sending again",
                opts.timeout_s
            )
        },
    ));
    let after = stack.lines()?;
    checks.push(approved_after_trip(
        NOTHING_WHILE_STALE,
        after.get(before..).unwrap_or_default(),
    ));
    if tripped.is_some() {
        checks.push(put_breaker_back(cfg, "stale-data"));
    }
    Ok(checks)
}

const HEARD: &str = "the outside heartbeat is heard";
const SILENT: &str = "the outside heartbeat goes silent";
const WATCHDOG: &str = "the watchdog sees the hang";
const FROZEN_HALTS: &str = "trading halts";
const PINGS_AGAIN: &str = "the heartbeat comes back";

/// Runs `process-frozen` against the stack of `cfg`: the drill listens on the loopback
/// address of `[monitor.dead_man] heartbeat_url` (it is the outside service), hears the
/// pings, then hangs the Monitor's thread through the control API (`inject_freeze`, fault
/// injection on) for the watchdog's stall limit and three ping intervals more. The pings
/// must stop while it hangs (what an outside service alarms on), the watchdog must log
/// `monitor_stalled` (CRITICAL) and halt trading, a person be told once the Monitor runs
/// again, and the pings come back. Then the drill resets the breaker it caused.
///
/// # Errors
/// [`DrillError`] when the drill cannot run: the log folder unreadable, the control API
/// not reachable or refusing (fault injection off), the heartbeat's address taken.
pub fn process_frozen(
    cfg: &VigilConfig,
    opts: &DrillOptions,
) -> Result<Vec<DrillCheck>, DrillError> {
    let stack = Stack::any(cfg, opts)?;
    let dm = &cfg.monitor.dead_man;
    let interval = Duration::from_secs(dm.heartbeat_interval_s);
    let ear = match dm.heartbeat_url.as_ref().map(|u| loopback_of(u.expose())) {
        None => Err(
            "no [monitor.dead_man] heartbeat_url: nothing outside vigil notices it frozen"
                .to_string(),
        ),
        Some(Err(why)) => Err(why),
        Some(Ok(addr)) => Ok(Ear::listen(addr)?),
    };
    // Pings before the hang: at least one within two intervals.
    let heard = match &ear {
        Ok(ear) => ear
            .heard
            .first_after(Instant::now(), 2 * interval + stack.patience),
        Err(_) => None,
    };
    let mut checks = vec![DrillCheck {
        name: HEARD,
        passed: heard.is_some(),
        detail: match (&ear, heard) {
            (Err(why), _) => why.clone(),
            (Ok(ear), Some(_)) => format!("pings arrive at {}", ear.addr),
            (Ok(ear), None) => format!(
                "no ping at {} within {} s: is vigil healthy, is heartbeat_interval_s {} s?",
                ear.addr,
                (2 * interval + stack.patience).as_secs(),
                interval.as_secs()
            ),
        },
    }];
    let stall = cfg.monitor.watchdog_stall();
    let hang = stall + 3 * interval + Duration::from_secs(1);
    let hang_s = u32::try_from(hang.as_secs()).unwrap_or(u32::MAX);
    let before = stack.lines()?.len();
    let t0 = Instant::now();
    command(
        cfg,
        serde_json::json!({
            "command": "inject_freeze",
            "seconds": hang_s,
            "reason": "vigil drill process-frozen",
            "who": "drill",
        }),
    )?;
    let thawed_at = t0 + Duration::from_secs(u64::from(hang_s));
    let stalled = super::wait(&stack.log_dir, before, stack.patience + hang, |l| {
        l["event"] == "monitor_stalled"
    })?;
    checks.push(seen_check(
        WATCHDOG,
        stalled.as_ref(),
        |l| {
            format!(
                "monitor_stalled ({}) {} ms after the hang, the board {} s old (limit {} s)",
                l["level"].as_str().unwrap_or("?"),
                t0.elapsed().as_millis(),
                l["data"]["stalled_s"],
                stall.as_secs()
            )
        },
        || {
            format!(
                "no monitor_stalled within {} s of a {hang_s} s hang (limit {} s)",
                (stack.patience + hang).as_secs(),
                stall.as_secs()
            )
        },
    ));
    if let Ok(ear) = &ear {
        // The hang is over and the Monitor pings again.
        let back = ear
            .heard
            .first_after(thawed_at, 2 * interval + stack.patience);
        checks.push(silent_check(&ear.heard, t0, thawed_at, interval));
        checks.push(DrillCheck {
            name: PINGS_AGAIN,
            passed: back.is_some(),
            detail: match back {
                Some(b) => format!(
                    "a ping {} ms after the hang ended",
                    b.saturating_duration_since(thawed_at).as_millis()
                ),
                None => format!(
                    "no ping within {} s of the hang ending",
                    (2 * interval + stack.patience).as_secs()
                ),
            },
        });
    }
    let tripped = stack.wait(before, |l| l["event"] == "breaker_tripped")?;
    checks.push(seen_check(
        FROZEN_HALTS,
        tripped.as_ref(),
        |l| {
            format!(
                "breaker_tripped by {} {} ms after the hang began",
                l["data"]["actor"].as_str().unwrap_or("?"),
                t0.elapsed().as_millis()
            )
        },
        || {
            format!(
                "no breaker_tripped within {} s of the hang ending",
                opts.timeout_s
            )
        },
    ));
    checks.push(told(&stack, before, "monitor_stalled", t0, opts.timeout_s)?);
    if tripped.is_some() {
        checks.push(put_breaker_back(cfg, "process-frozen"));
    }
    Ok(checks)
}

/// Check: no ping while the Monitor hung (from a second after the hang began, for a ping
/// already on its way, to the hang's end); the silence measured.
fn silent_check(heard: &Heard, t0: Instant, thawed_at: Instant, interval: Duration) -> DrillCheck {
    let pings = heard.pings();
    let from = t0 + Duration::from_secs(1);
    let during: Vec<&Instant> = pings
        .iter()
        .filter(|p| **p > from && **p < thawed_at)
        .collect();
    let last_before = pings.iter().filter(|p| **p <= from).max();
    let first_after = pings.iter().find(|p| **p >= thawed_at);
    let silence = match (last_before, first_after) {
        (Some(a), Some(b)) => format!(
            "{} ms without a ping ({} intervals of {} s)",
            b.saturating_duration_since(*a).as_millis(),
            b.saturating_duration_since(*a).as_secs() / interval.as_secs().max(1),
            interval.as_secs()
        ),
        _ => format!(
            "no ping from the hang to {} ms after it began",
            thawed_at.saturating_duration_since(t0).as_millis()
        ),
    };
    DrillCheck {
        name: SILENT,
        passed: during.is_empty(),
        detail: if during.is_empty() {
            silence
        } else {
            format!(
                "{} ping(s) while the Monitor hung: a hung vigil would look alive",
                during.len()
            )
        },
    }
}

/// The loopback address of a heartbeat URL the drill can listen on, or why not.
fn loopback_of(url: &str) -> Result<SocketAddr, String> {
    let redacted = "[monitor.dead_man] heartbeat_url";
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("{redacted} is not an http:// URL on this host: the drill can hear only a heartbeat on loopback (a rehearsal stack); check your heartbeat service's own record of the silence")
    })?;
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let with_port = if host.contains(':') && !host.ends_with(']') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    let addrs: Vec<SocketAddr> = with_port
        .to_socket_addrs()
        .map_err(|e| format!("{redacted}: the host {host:?} does not resolve: {e}"))?
        .collect();
    addrs
        .into_iter()
        .find(|a| a.ip().is_loopback())
        .ok_or_else(|| {
            format!(
                "{redacted} is not on loopback: the drill can hear only a heartbeat on this host \
                 (a rehearsal stack); check your heartbeat service's own record of the silence"
            )
        })
}

/// The outside heartbeat's receiver, played by the drill: an HTTP server (actix-web) on
/// the heartbeat URL's loopback address that answers 200 and notes when each ping came.
struct Ear {
    addr: SocketAddr,
    heard: Heard,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// When the pings came, as the receiver's thread reports them.
struct Heard {
    rx: mpsc::Receiver<Instant>,
    seen: std::cell::RefCell<Vec<Instant>>,
}

impl Heard {
    /// Every ping heard so far, in order.
    fn pings(&self) -> Vec<Instant> {
        let mut seen = self.seen.borrow_mut();
        seen.extend(self.rx.try_iter());
        seen.clone()
    }

    /// The first ping at or after `from`, waiting at most `patience` from now.
    fn first_after(&self, from: Instant, patience: Duration) -> Option<Instant> {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(p) = self.pings().into_iter().find(|p| *p >= from) {
                return Some(p);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            match self.rx.recv_timeout(left) {
                Ok(p) => self.seen.borrow_mut().push(p),
                Err(_) => return None,
            }
        }
    }
}

impl Ear {
    fn listen(addr: SocketAddr) -> Result<Self, DrillError> {
        use actix_web::{App, HttpResponse, HttpServer, web};
        let (tx, rx) = mpsc::channel::<Instant>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("drill-heartbeat".into())
            .spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        let tx = tx.clone();
                        App::new().default_service(web::to(move || {
                            let sent = tx.send(Instant::now());
                            async move {
                                match sent {
                                    Ok(()) => HttpResponse::Ok().finish(),
                                    // The drill is over: nobody listens.
                                    Err(_) => HttpResponse::ServiceUnavailable().finish(),
                                }
                            }
                        }))
                    })
                    .workers(1)
                    .disable_signals()
                    .bind(addr);
                    match server {
                        Err(e) => {
                            if ready_tx.send(Err(e.to_string())).is_err() {
                                eprintln!("vigil drill: the heartbeat receiver's caller is gone");
                            }
                        }
                        Ok(server) => {
                            let server = server.run();
                            if ready_tx.send(Ok(server.handle())).is_err() {
                                return;
                            }
                            if let Err(e) = server.await {
                                eprintln!("vigil drill: the heartbeat receiver failed: {e}");
                            }
                        }
                    }
                });
            })
            .map_err(|e| {
                DrillError::NotReady(format!("cannot start the heartbeat receiver: {e}"))
            })?;
        let handle = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|e| DrillError::NotReady(format!("the heartbeat receiver did not start: {e}")))?
            .map_err(|e| {
                DrillError::NotReady(format!(
                    "cannot listen on {addr} (the heartbeat URL's address) to hear vigil's pings: {e}"
                ))
            })?;
        Ok(Self {
            addr,
            heard: Heard {
                rx,
                seen: std::cell::RefCell::new(Vec::new()),
            },
            handle,
            thread: Some(thread),
        })
    }
}

impl Drop for Ear {
    fn drop(&mut self) {
        // The stop is sent when asked; its completion is the thread's end.
        drop(self.handle.stop(false));
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            eprintln!("vigil drill: the heartbeat receiver's thread panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_loopback_heartbeat_can_be_heard() {
        assert_eq!(
            loopback_of("http://127.0.0.1:9099/ping/abc").expect("loopback"),
            "127.0.0.1:9099".parse::<SocketAddr>().expect("addr")
        );
        assert!(
            loopback_of("http://[::1]:9099/x")
                .expect("loopback")
                .ip()
                .is_loopback()
        );
        for url in ["https://hc-ping.com/uuid", "http://192.0.2.7:80/x"] {
            let e = loopback_of(url).expect_err(url);
            assert!(
                e.contains("heartbeat_url") && !e.contains("uuid"),
                "{url}: {e}"
            );
        }
    }

    #[test]
    fn a_ping_while_hung_fails_the_silence_and_none_passes_it() {
        let check = |pings: Vec<Instant>, t0: Instant, thawed: Instant| {
            let (tx, rx) = mpsc::channel();
            for p in pings {
                tx.send(p).expect("send");
            }
            let heard = Heard {
                rx,
                seen: std::cell::RefCell::new(Vec::new()),
            };
            silent_check(&heard, t0, thawed, Duration::from_secs(1))
        };
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_millis(n);
        let quiet = check(vec![s(0), s(9_000)], t0, s(8_000));
        assert!(quiet.passed, "{quiet:?}");
        assert_eq!(quiet.detail, "9000 ms without a ping (9 intervals of 1 s)");
        let loud = check(vec![s(0), s(3_000), s(9_000)], t0, s(8_000));
        assert!(!loud.passed);
        assert!(loud.detail.starts_with("1 ping(s) while the Monitor hung"));
    }

    /// The receiver hears a real ping over loopback HTTP, and lets the port go when dropped.
    #[test]
    fn the_receiver_hears_a_ping_and_lets_the_port_go() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = free.local_addr().expect("addr");
        drop(free);
        let ear = Ear::listen(addr).expect("listen");
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .new_agent();
        let t0 = Instant::now();
        agent
            .get(&format!("http://{addr}/ping/x"))
            .call()
            .expect("ping answered");
        assert!(ear.heard.first_after(t0, Duration::from_secs(5)).is_some());
        drop(ear);
        std::net::TcpListener::bind(addr).expect("the port is free again");
    }
}
