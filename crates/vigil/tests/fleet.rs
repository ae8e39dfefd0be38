//! The fleet over a real NATS server with JetStream (a `nats-server` of the test's own on a
//! free loopback port, so it can be killed and started again): a node publishes every line
//! of its log; `vigil fleet status` shows it up; NATS killed mid-session is alerted and
//! trading goes on; NATS back, the node catches up; after the session the stream holds
//! every line of the log once, in order, with no gap. Skipped (loudly) without
//! `nats-server`; `.ci/run` installs it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::browser;
use common::feed::{FeedProcess, KEY_ID, wait_for_event};
use common::vigil;
use futures_util::StreamExt as _;
use serde_json::Value;
use vigil_testkit::{PATIENCE, config};

/// Where Debian's package puts the server.
const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// A `nats-server -js` of the test's own, stopped (SIGKILL) when dropped.
struct Nats {
    child: Child,
    port: u16,
    store: PathBuf,
}

impl Nats {
    fn start(port: u16, store: &Path) -> Self {
        let child = Command::new(NATS_SERVER)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server");
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            port,
            store: store.to_path_buf(),
        }
    }

    fn kill(&mut self) {
        self.child.kill().expect("kill nats-server");
        self.child.wait().expect("reap nats-server");
    }

    fn restart(&mut self) {
        *self = Self::start(self.port, &self.store.clone());
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("nats-server already gone: {e}");
        }
        if let Err(e) = self.child.wait() {
            eprintln!("nats-server not reaped: {e}");
        }
    }
}

/// A scratch folder and a `nats-server -js` of the test's own in it, with its URL; `None`
/// (SKIPPED, or a failure where the tools are required) without `nats-server`.
fn nats_or_skip(what: &str) -> Option<(tempfile::TempDir, Nats, String)> {
    if !Path::new(NATS_SERVER).exists() {
        vigil_testkit::skip_or_require(&format!(
            "no nats-server (apt-get install nats-server): {what}"
        ));
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let nats = Nats::start(port, &dir.path().join("jetstream"));
    Some((dir, nats, format!("nats://127.0.0.1:{port}")))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `vigil fleet ARGS --json --config CFG`: (exit code, its JSON; standard error as a string
/// when standard output is not JSON).
fn fleet_json(args: &[&str], cfg: &Path) -> (i32, Value) {
    let out = vigil()
        .arg("fleet")
        .args(args)
        .args(["--json", "--config"])
        .arg(cfg)
        .output()
        .expect("vigil fleet");
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&out.stderr).to_string())),
    )
}

/// `vigil fleet status --json` on `cfg`: (exit code, nodes).
fn fleet_status(cfg: &Path) -> (i32, Value) {
    fleet_json(&["status"], cfg)
}

/// Every message of the stream: (subject, message id, the line).
async fn stream_lines(url: &str) -> Vec<(String, String, Value)> {
    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
    let client = async_nats::connect(url).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream("VIGIL_FLEET").await.expect("the stream");
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("a consumer");
    let mut out = Vec::new();
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .expect("fetch");
        let mut got = 0;
        while let Some(m) = batch.next().await {
            let m = m.expect("a message");
            let id = m
                .headers
                .as_ref()
                .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                .map(|v| v.as_str().to_string())
                .expect("a message id");
            out.push((
                m.subject.to_string(),
                id,
                serde_json::from_slice(&m.payload).expect("a JSON line"),
            ));
            got += 1;
        }
        if got == 0 {
            return out;
        }
    }
}

#[test]
fn a_node_publishes_its_whole_log_through_a_nats_outage_without_gap_or_duplicate() {
    let Some((dir, mut nats, url)) = nats_or_skip("the fleet's NATS test") else {
        return;
    };
    let (feed, cfg) = node_a(dir.path(), &url);
    let run = common::run_on(&cfg);
    wait_for_event(dir.path(), "order_submitted");

    // The node is up in the fleet's status, with lines of its log in the stream.
    let deadline = Instant::now() + PATIENCE;
    let node = loop {
        let (code, v) = fleet_status(&cfg);
        if code == 0
            && let Some(n) = v.as_array().and_then(|a| a.first())
            && n["lines"].as_u64().is_some_and(|l| l > 0)
        {
            break n.clone();
        }
        assert!(Instant::now() < deadline, "the node never showed up: {v}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        (node["node"].as_str(), node["state"].as_str()),
        (Some("node-a"), Some("up")),
        "{node}"
    );

    // NATS dies: the node says so once, alerted, and trades on.
    nats.kill();
    let failed = wait_for_event(dir.path(), "fleet_publish_failed");
    assert_eq!(failed["level"], "ERROR", "{failed}");
    let fills_before = common::vigil_log_lines(&dir.path().join("logs"))
        .iter()
        .filter(|l| l["event"] == "fill_received")
        .count();
    common::feed::wait_for_line(dir.path(), "fill_received", |_| {
        common::vigil_log_lines(&dir.path().join("logs"))
            .iter()
            .filter(|l| l["event"] == "fill_received")
            .count()
            > fills_before
    });
    // NATS back on its store: the node catches up.
    nats.restart();
    let recovered = wait_for_event(dir.path(), "fleet_publish_recovered");
    assert!(
        recovered["data"]["published"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{recovered}"
    );
    let out = run.interrupt();
    assert!(out.status.success());

    // Every line of the log, once, in order, under its node and kind.
    let log = common::vigil_log_lines(&dir.path().join("logs"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let lines = rt.block_on(stream_lines(&url));
    let seqs: Vec<u64> = lines
        .iter()
        .map(|(_, _, l)| l["seq"].as_u64().expect("seq"))
        .collect();
    let logged: Vec<u64> = log
        .iter()
        .map(|l| l["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, logged, "the stream holds the log, line for line");
    for (subject, id, line) in &lines {
        let event = line["event"].as_str().expect("event");
        assert_eq!(*subject, vigil_fleet::subject("node-a", event));
        assert_eq!(
            *id,
            vigil_fleet::message_id(
                "node-a",
                line["seq"].as_u64().expect("seq"),
                line["hash"].as_str().expect("hash")
            )
        );
    }
    assert!(lines.iter().any(|(s, _, _)| s == "vigil.fleet.node-a.fill"));
    assert!(log.iter().any(|l| l["event"] == "fleet_publish_failed"));
    // The node stopped and said so.
    let (code, v) = fleet_status(&cfg);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v[0]["state"], "stopped", "{v}");
    assert_eq!(v[0]["last_seq"], *logged.last().expect("a line"), "{v}");
    drop(feed);
}

/// A lease that cannot be renewed while the lines still publish (here a stream squatting
/// the bucket's name, holding none of its keys) is logged on the node once, at WARN, with
/// why; once the bucket is mended the renewal is logged too, and the node stops as
/// `stopped` in the fleet's status.
#[test]
fn a_lease_that_cannot_be_renewed_is_logged_once_and_so_is_its_renewal() {
    use async_nats::jetstream::stream;
    let Some((dir, _nats, url)) = nats_or_skip("the fleet lease's test") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let bucket_stream = format!("KV_{}", vigil_fleet::LEASE_BUCKET);
    let js = rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(&url).await.expect("connect"));
        js.create_stream(stream::Config {
            name: bucket_stream.clone(),
            subjects: vec!["not.the.leases.>".into()],
            ..Default::default()
        })
        .await
        .expect("the squatting stream");
        js
    });
    let (feed, cfg) = node_a(dir.path(), &url);
    let run = common::run_on(&cfg);
    let failed = wait_for_event(dir.path(), "fleet_lease_failed");
    assert_eq!(failed["level"], "WARN", "{failed}");
    assert_eq!(failed["data"]["node"], "node-a", "{failed}");
    assert_eq!(
        failed["data"]["bucket"],
        vigil_fleet::LEASE_BUCKET,
        "{failed}"
    );
    // The lines publish meanwhile.
    assert!(!rt.block_on(stream_lines(&url)).is_empty());

    // The bucket mended: the next renewal makes it and puts the lease.
    rt.block_on(js.delete_stream(&bucket_stream))
        .expect("the squatter removed");
    let renewed = wait_for_event(dir.path(), "fleet_lease_renewed");
    assert_eq!(renewed["data"]["node"], "node-a", "{renewed}");
    let out = run.interrupt();
    assert!(out.status.success());
    let log = common::vigil_log_lines(&dir.path().join("logs"));
    let count = |event: &str| log.iter().filter(|l| l["event"] == event).count();
    assert_eq!(count("fleet_lease_failed"), 1, "once until renewed");
    assert_eq!(count("fleet_lease_renewed"), 1);
    let (code, v) = fleet_status(&cfg);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v[0]["state"], "stopped", "{v}");
    drop(feed);
}

/// The lines of the fleet monitor's log in `logs`.
fn watch_lines(logs: &Path) -> Vec<Value> {
    common::vigil_log_lines(logs)
}

/// Waits (bounded) until the monitor's log holds a line `pred` accepts; returns it.
fn wait_watch(logs: &Path, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(l) = watch_lines(logs).into_iter().find(|l| pred(l)) {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} in the fleet monitor's log"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_nodes_the_central_monitor_and_the_kill_switch_a_sigkilled_node_is_lost_within_its_lease() {
    let Some((dir, mut nats, url)) = nats_or_skip("the fleet's three-node test") else {
        return;
    };
    const LEASE_S: u64 = 3;

    // Each node's command secret, and the commander's copy of each.
    let tokens = dir.path().join("tokens");
    std::fs::create_dir_all(&tokens).expect("tokens");
    // Three nodes, each replaying its bars at a bar a second, each publishing its log.
    let node_cfg = |name: &str| {
        let home = node_home(dir.path(), &tokens, name);
        let cfg = home.join("vigil.toml");
        std::fs::write(
            &cfg,
            format!(
                "[data]\ninstruments = [{{ symbol = \"GOOG\", path = \"bundled:GOOG_1d.csv\" }}]\n\
                 speed = \"86400\"\n\n[monitor]\nprobe_interval_ms = 300\nsnapshot_interval_s = 1\n\
                 {home}\n[fleet]\nurl = \"{url}\"\nnode = \"{name}\"\nlease_s = {LEASE_S}\n\
                 command_token_file = \"{token}\"\n",
                home = config::home_sections(&home, "", ""),
                token = home.join("fleet.token").display(),
            ),
        )
        .expect("node config");
        cfg
    };
    let names = ["node-1", "node-2", "node-3"];
    let mut nodes: Vec<_> = names
        .iter()
        .map(|n| Some(common::run_on(&node_cfg(n))))
        .collect();

    // The central monitor, alerting to a webhook.
    let hook = vigil_testkit::HttpReceiver::start();
    let watch_home = dir.path().join("watch");
    let (watch_cfg, watch) = start_watch(
        &watch_home,
        &url,
        &tokens,
        &format!(
            "[alerts.channels.webhook]\nurl = \"{}\"\n",
            hook.url("/hook")
        ),
    );
    let watch_logs = watch_home.join("logs");

    // Every node is seen, its chain checked, and its view (ready, trading state, P&L) is in
    // `vigil fleet status`.
    for name in names {
        wait_watch(&watch_logs, "fleet_node_joined", |l| {
            l["event"] == "fleet_node_joined" && l["data"]["node"] == name
        });
    }
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        let (code, v) = fleet_status(&watch_cfg);
        let seen = v.as_array().map_or(0, |a| {
            a.iter()
                .filter(|n| {
                    n["state"] == "up"
                        && n["view"]["ready"] == true
                        && n["view"]["trading_state"].is_string()
                        && n["view"]["equity"].is_string()
                })
                .count()
        });
        if code == 0 && seen == 3 {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "the fleet never showed 3 ready nodes: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for n in status.as_array().expect("nodes") {
        assert_eq!(
            (n["view"]["missing"].as_u64(), n["view"]["broken"].as_u64()),
            (Some(0), Some(0)),
            "{n}"
        );
        assert!(n["view"]["lag_s"].as_f64().is_some_and(|l| l < 5.0), "{n}");
    }
    // A node's dashboard shows the whole fleet (over HTTP, and in a browser when installed).
    let dashboard = Dashboard::open(
        nodes[0].as_ref().expect("node-1"),
        &dir.path().join("node-1"),
    );
    for name in names {
        dashboard.shows(name, "up", "fleet-up");
    }
    let fleet = dashboard.fleet();
    assert_eq!(fleet["node"], "node-1", "{fleet}");
    for n in fleet["nodes"].as_array().expect("nodes") {
        assert_eq!(n["view"]["ready"], true, "{n}");
        assert!(n["pnl"].is_string(), "a P&L from the monitor's view: {n}");
    }

    // NATS dies and comes back mid-session: the monitor says so once and reads on; the nodes
    // catch up from their logs; no live node is taken for lost meanwhile (checked below, as
    // no line goes missing).
    nats.kill();
    wait_watch(&watch_logs, "fleet_watch_failed", |l| {
        l["event"] == "fleet_watch_failed"
    });
    nats.restart();
    wait_watch(&watch_logs, "fleet_watch_recovered", |l| {
        l["event"] == "fleet_watch_recovered"
    });
    for name in names {
        common::feed::wait_for_event(&dir.path().join(name), "fleet_publish_recovered");
    }
    // node-2 has renewed its lease since (every second): from then on its lease counts.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_, v) = fleet_status(&watch_cfg);
        if v.as_array().is_some_and(|a| {
            a.iter().any(|n| {
                n["node"] == "node-2" && n["lease_age_s"].as_f64().is_some_and(|s| s < 0.5)
            })
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node-2 never renewed its lease: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // node-2 dies (SIGKILL): it cannot say so; its lease runs out and the monitor says so,
    // through the webhook, within the lease (and a poll of a second).
    let killed_at = Instant::now();
    nodes[1].as_ref().expect("node-2").signal("-KILL");
    let lost = wait_watch(&watch_logs, "fleet_node_lost", |l| {
        l["event"] == "fleet_node_lost" && l["data"]["node"] == "node-2"
    });
    let took = killed_at.elapsed();
    assert_eq!(lost["level"], "CRITICAL", "{lost}");
    assert!(
        took <= Duration::from_secs(LEASE_S + 2),
        "node-2 was found lost {took:?} after the SIGKILL (lease {LEASE_S} s)"
    );
    let notice = loop {
        let r = hook.next(PATIENCE).expect("a notice to the webhook");
        let body = r.json().to_string();
        if body.contains("fleet_node_lost") {
            break body;
        }
    };
    assert!(notice.contains("node-2"), "{notice}");
    let (code, v) = fleet_status(&watch_cfg);
    assert_eq!(code, 1, "a lost node: {v}");
    let states: Vec<(&str, &str)> = v
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap_or(""),
                n["state"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        states,
        [("node-1", "up"), ("node-2", "lost"), ("node-3", "up")]
    );
    dashboard.shows("node-2", "lost", "fleet-lost");

    // The fleet's kill switch reaches every live node; the dead one is reported down.
    let (code, sent) = fleet_json(
        &[
            "command", "kill", "--all", "--reason", "drill", "--who", "ops",
        ],
        &watch_cfg,
    );
    assert_eq!(code, 1, "a node was down: {sent}");
    let outcomes = outcomes_of(&sent);
    assert_eq!(
        outcomes,
        [("node-1", "ok"), ("node-2", "down"), ("node-3", "ok")],
        "{sent}"
    );
    for name in ["node-1", "node-3"] {
        let logs = dir.path().join(name).join("logs");
        // The node answered before its log writer flushed the lines.
        common::feed::wait_for_line(&dir.path().join(name), "control_command", |l| {
            l["data"]["command"] == "flatten"
        });
        let steps: Vec<String> = common::vigil_log_lines(&logs)
            .iter()
            .filter(|l| l["event"] == "control_command" && l["data"]["remote"] == "fleet")
            .map(|l| {
                format!(
                    "{} {}",
                    l["data"]["command"].as_str().unwrap_or(""),
                    l["data"]["ok"]
                )
            })
            .collect();
        assert_eq!(steps, ["cancel_all true", "flatten true"], "{name}");
    }
    // Then the breaker, on one node: halted.
    let out = vigil()
        .args([
            "fleet", "command", "trip", "--node", "node-1", "--reason", "drill", "--who", "ops",
            "--config",
        ])
        .arg(&watch_cfg)
        .output()
        .expect("vigil fleet command");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let tripped = common::feed::wait_for_line(&dir.path().join("node-1"), "control_command", |l| {
        l["data"]["command"] == "breaker_trip"
    });
    assert_eq!(tripped["data"]["ok"], true, "{tripped}");
    assert_eq!(tripped["data"]["who"], "ops", "{tripped}");
    // A node's name is checked before it names a file.
    let out = vigil()
        .args([
            "fleet",
            "command",
            "trip",
            "--node",
            "../node-1",
            "--reason",
            "x",
            "--config",
        ])
        .arg(&watch_cfg)
        .output()
        .expect("vigil fleet command");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--node \"../node-1\""));
    // Another node's secret opens nothing: each node has its own.
    let forged = dir.path().join("forged");
    std::fs::create_dir_all(&forged).expect("forged tokens");
    vigil_testkit::write_secret_file(
        &forged.join("node-3.token"),
        "node-1-secret-0123456789abcdef",
    );
    let forged_cfg = watch_home.join("forged.toml");
    std::fs::write(
        &forged_cfg,
        std::fs::read_to_string(&watch_cfg)
            .expect("watch config")
            .replace(&tokens.display().to_string(), &forged.display().to_string()),
    )
    .expect("forged config");
    let out = vigil()
        .args([
            "fleet", "command", "trip", "--node", "node-3", "--reason", "x", "--json", "--config",
        ])
        .arg(&forged_cfg)
        .output()
        .expect("vigil fleet command");
    assert_eq!(out.status.code(), Some(1));
    let refused: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(refused[0]["outcome"], "refused", "{refused}");
    assert!(
        refused[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not authorized")),
        "{refused}"
    );
    common::feed::wait_for_event(&dir.path().join("node-3"), "control_unauthorized");
    // The commander's log, beside the monitor's, holds one line per node and command.
    let central: Vec<(String, String)> = watch_lines(&watch_logs.join("fleet-commands"))
        .iter()
        .filter(|l| l["event"] == "fleet_command_sent")
        .map(|l| {
            (
                l["data"]["node"].as_str().unwrap_or("").to_string(),
                l["data"]["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(central.len(), 5, "{central:?}");

    // The others stop and say so; nothing went missing and no chain broke.
    for i in [0, 2] {
        let out = nodes[i].take().expect("node").interrupt();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for name in ["node-1", "node-3"] {
        wait_watch(&watch_logs, "fleet_node_stopped", |l| {
            l["event"] == "fleet_node_stopped" && l["data"]["node"] == name
        });
    }
    // The monitor reads each stopped node's whole log: its view comes to end at the node's
    // last line (its lease may say "stopped" before the last lines are read).
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_, v) = fleet_status(&watch_cfg);
        let behind: Vec<&Value> = v
            .as_array()
            .expect("nodes")
            .iter()
            .filter(|n| n["state"] == "stopped" && n["view"]["seq"] != n["last_seq"])
            .collect();
        if behind.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the monitor never read a stopped node's last line: {behind:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = watch.interrupt();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for logs in [watch_logs.clone(), watch_logs.join("fleet-commands")] {
        let verify = vigil()
            .args(["logs", "verify", "--dir"])
            .arg(&logs)
            .output()
            .expect("vigil logs verify");
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stdout)
        );
    }
    let lines = watch_lines(&watch_logs);
    for bad in ["fleet_lines_missing", "fleet_chain_broken"] {
        assert!(
            !lines.iter().any(|l| l["event"] == bad),
            "{bad} in the monitor's log: {lines:#?}"
        );
    }
    let lost: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "fleet_node_lost")
        .map(|l| &l["data"]["node"])
        .collect();
    assert_eq!(lost, ["node-2"], "only the killed node was lost");
    let outages = lines
        .iter()
        .filter(|l| l["event"] == "fleet_watch_failed")
        .count();
    assert_eq!(outages, 1, "one NATS outage, said once");
    drop(nodes);
}

/// A node's dashboard, logged in with its control token: over HTTP always, and in a real
/// browser when chromium and chromedriver are installed (SKIPPED loudly when not).
struct Dashboard {
    base: String,
    cookie: String,
    agent: ureq::Agent,
    browser: Option<(browser::Driver, tokio::runtime::Runtime, fantoccini::Client)>,
}

impl Dashboard {
    fn open(run: &common::Running, home: &Path) -> Self {
        let base = format!("http://{}", run.control.clone().expect("control address"));
        let token = std::fs::read_to_string(home.join("state/control.token")).expect("token");
        let agent = browser::agent();
        let cookie = browser::session_cookie(&agent, &base, &token, "fleet-test");
        let browser = browser::present("the dashboard's fleet view in a browser").then(|| {
            let driver = browser::Driver::start();
            let rt = browser::runtime();
            let c = rt.block_on(async {
                let c = driver.client().await;
                browser::log_in(&c, &base, &token).await;
                c
            });
            (driver, rt, c)
        });
        Self {
            base,
            cookie,
            agent,
            browser,
        }
    }

    /// `/ui/api/fleet`, as the page reads it.
    fn fleet(&self) -> Value {
        let mut res = self
            .agent
            .get(&format!("{}/ui/api/fleet", self.base))
            .header("Cookie", &self.cookie)
            .call()
            .expect("/ui/api/fleet");
        let body = res.body_mut().read_to_string().expect("body");
        assert_eq!(res.status().as_u16(), 200, "{body}");
        serde_json::from_str(&body).expect("JSON")
    }

    /// Waits (bounded) until the fleet view shows `node` in `state`: in the API, then on the
    /// page in the browser, which is then saved as screenshot `shot`.
    fn shows(&self, node: &str, state: &str, shot: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let fleet = self.fleet();
            let seen = fleet["nodes"]
                .as_array()
                .is_some_and(|a| a.iter().any(|n| n["node"] == node && n["state"] == state));
            if seen {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the dashboard never showed {node} {state}: {fleet}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        if let Some((_, rt, c)) = &self.browser {
            rt.block_on(async {
                c.goto(&format!("{}/ui/#fleet", self.base))
                    .await
                    .expect("the fleet page");
                let css = format!("tr.fleet-{state}[data-node=\"{node}\"]");
                let row = browser::until(&css, || async {
                    c.find(fantoccini::Locator::Css(&css)).await.ok()
                })
                .await;
                let text = row.text().await.expect("the row's text");
                assert!(text.contains(state), "{text}");
                browser::shot(c, &browser::screenshots(), shot).await;
            });
        }
    }
}

/// The registry's shadow and canary standards a test's few sessions meet (as in the
/// registry tests).
const CANARY_EASY: &str = "[release.shadow]\nmin_sessions = 3\nmin_correlation = 0.0\n\
     max_latency_ratio = 1000.0\ncpu_budget_us = 1000000.0\nmax_outlier_pct = 100.0\n\n\
     [release.canary]\nsessions_per_step = 3\nmargin_bps = 10000.0\n";

/// A rolling release over three nodes, each trading goog_mlp 1.0.0 from its own registry
/// with 1.1.0 registered beside it: node-1 runs the release through its shadow run and
/// every canary step; then node-2, whose rollback guard no model meets, aborts its canary:
/// the rollout stops there and node-3 is never touched.
#[test]
fn a_release_rolls_node_by_node_and_stops_at_the_first_node_whose_canary_fails() {
    let Some((dir, _nats, url)) = nats_or_skip("the fleet's rolling release test") else {
        return;
    };
    let tokens = dir.path().join("tokens");
    std::fs::create_dir_all(&tokens).expect("tokens");
    let v1 = common::copy_model(&dir.path().join("v1"), |t| t);
    let v2 = common::copy_model(&dir.path().join("v2"), |t| {
        t.replace("version = \"1.0.0\"", "version = \"1.1.0\"")
            .replace("long = 0.55, short = 0.45", "long = 0.52, short = 0.48")
    });
    // node-2's steps last long enough for its guard to trip within the first.
    let guard_trips = CANARY_EASY.replace("sessions_per_step = 3", "sessions_per_step = 40")
        + "\n[release.rollback]\nsharpe_window_bars = 5\nsharpe_values = 3\nmin_sharpe = 999\n";
    let node_cfg = |name: &str, release: &str| {
        let home = node_home(dir.path(), &tokens, name);
        let cfg = home.join("vigil.toml");
        std::fs::write(
            &cfg,
            format!(
                "[data]\ninstruments = [{{ symbol = \"GOOG\", path = \"bundled:GOOG_1d.csv\" }}]\n\
                 speed = 6000000\nbatch_size = 1\n\n[signal]\nmodel = \"registry:goog_mlp\"\n\n\
                 [monitor]\nprobe_interval_ms = 300\nsnapshot_interval_s = 1\n\
                 {home}\n[fleet]\nurl = \"{url}\"\nnode = \"{name}\"\nlease_s = 3\n\
                 command_token_file = \"{token}\"\n\n{release}{rules}",
                home = config::home_sections(&home, "", ""),
                token = home.join("fleet.token").display(),
                rules = config::HOST_RULES_OFF,
            ),
        )
        .expect("node config");
        // Its own registry: 1.0.0 in production, 1.1.0 registered (the `candidate`).
        for args in [
            &["register", v1.as_str(), "--skip-gate"][..],
            &["promote", "goog_mlp", "candidate"],
            &["register", v2.as_str(), "--skip-gate"],
        ] {
            let out = vigil()
                .arg("model")
                .args(args)
                .args(["--reason", "rollout"])
                .arg("--config")
                .arg(&cfg)
                .output()
                .expect("vigil model");
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        cfg
    };
    let cfgs = [
        node_cfg("node-1", CANARY_EASY),
        node_cfg("node-2", &guard_trips),
        node_cfg("node-3", CANARY_EASY),
    ];
    let nodes: Vec<_> = cfgs.iter().map(|c| common::run_on(c)).collect();

    // The central monitor, whose view of each node is the rollout's health check.
    let watch_home = dir.path().join("watch");
    let (watch_cfg, watch) = start_watch(&watch_home, &url, &tokens, "");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_, v) = fleet_status(&watch_cfg);
        let ready = v.as_array().map_or(0, |a| {
            a.iter()
                .filter(|n| n["state"] == "up" && n["view"]["ready"] == true)
                .count()
        });
        if ready == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "3 ready nodes never: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let (code, results) = fleet_json(
        &[
            "release",
            "goog_mlp",
            "--node",
            "node-1",
            "--node",
            "node-2",
            "--node",
            "node-3",
            "--reason",
            "v1.1.0",
            "--who",
            "ops",
            "--timeout-s",
            "30",
        ],
        &watch_cfg,
    );
    assert_eq!(code, 1, "{results:#}");
    eprintln!("the rolling release: {results}");
    let outcomes = outcomes_of(&results);
    assert_eq!(
        outcomes,
        [
            ("node-1", "released"),
            ("node-2", "failed"),
            ("node-3", "not_reached")
        ],
        "{results:#}"
    );
    assert!(
        results[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("goog_mlp@1.1.0")),
        "{results:#}"
    );
    assert!(
        results[1]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("canary_aborted")),
        "{results:#}"
    );
    // Each node's log: node-1 took the start (audited, remote fleet) and completed its
    // canary; node-2 took it and aborted; node-3 was never sent anything.
    let started = |name: &str| {
        common::vigil_log_lines(&dir.path().join(name).join("logs"))
            .iter()
            .filter(|l| {
                l["event"] == "control_command"
                    && l["data"]["remote"] == "fleet"
                    && l["data"]["command"] == "model_release"
                    && l["data"]["ok"] == true
            })
            .count()
    };
    assert_eq!(
        [started("node-1"), started("node-2"), started("node-3")],
        [1, 1, 0]
    );
    common::feed::wait_for_line(&dir.path().join("node-1"), "canary_completed", |l| {
        l["data"]["candidate"] == "goog_mlp@1.1.0"
    });
    common::feed::wait_for_line(&dir.path().join("node-2"), "canary_aborted", |_| true);
    // The commander's log: a line per node.
    let steps: Vec<String> = watch_lines(&watch_home.join("logs/fleet-commands"))
        .iter()
        .filter(|l| l["event"] == "fleet_release_step")
        .map(|l| format!("{} {}", l["data"]["node"], l["data"]["outcome"]))
        .collect();
    assert_eq!(
        steps,
        [
            "\"node-1\" \"released\"",
            "\"node-2\" \"failed\"",
            "\"node-3\" \"not_reached\""
        ]
    );
    for run in nodes {
        run.interrupt();
    }
    watch.interrupt();
}

/// Each node's name and outcome, from a JSON list of them (`--json` of `vigil fleet command`
/// and `vigil fleet release`).
fn outcomes_of(v: &Value) -> Vec<(&str, &str)> {
    v.as_array()
        .expect("a list of outcomes")
        .iter()
        .map(|r| {
            (
                r["node"].as_str().unwrap_or(""),
                r["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect()
}

/// A node's home under `dir`, made, with its fleet command secret (`fleet.token`) and the
/// commander's copy in `tokens`.
fn node_home(dir: &Path, tokens: &Path, name: &str) -> PathBuf {
    let home = dir.join(name);
    std::fs::create_dir_all(&home).expect("node home");
    let token = format!("{name}-secret-0123456789abcdef");
    vigil_testkit::write_secret_file(&home.join("fleet.token"), &token);
    vigil_testkit::write_secret_file(&tokens.join(format!("{name}.token")), &token);
    home
}

/// The node `node-a` in `dir`, trading a paced feed and publishing to the fleet at `url`
/// with a 3 s lease: the feed and its config.
fn node_a(dir: &Path, url: &str) -> (FeedProcess, PathBuf) {
    let feed = FeedProcess::paced(dir, 50);
    let secret = dir.join("feed.secret");
    let cfg = dir.join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "{feed}\n[signal]\nfast_span = 3\nslow_span = 8\n\n[monitor]\nprobe_interval_ms = 300\n\
             {home}\n[fleet]\nurl = \"{url}\"\nnode = \"node-a\"\nlease_s = 3\n",
            feed = config::feed_sections("GOOG", &feed.stream_url, KEY_ID, &secret, ""),
            home = config::home_sections(dir, "", ""),
        ),
    )
    .expect("config");
    (feed, cfg)
}

/// The central monitor (`vigil fleet watch`) in `home`, reading the fleet at `url`, the
/// commander of the nodes whose secrets are in `tokens`; `extra` ends its config. Returns
/// its config and the running process, once it reads the stream.
fn start_watch(home: &Path, url: &str, tokens: &Path, extra: &str) -> (PathBuf, common::Running) {
    std::fs::create_dir_all(home).expect("watch home");
    let cfg = home.join("watch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[data]\ninstruments = [{{ symbol = \"GOOG\", path = \"bundled:GOOG_1d.csv\" }}]\n\
             {sections}\n[fleet]\nurl = \"{url}\"\nnode = \"central\"\n\
             command_tokens_dir = \"{tokens}\"\n\n{extra}",
            sections = config::home_sections(home, "", ""),
            tokens = tokens.display(),
        ),
    )
    .expect("watch config");
    let run = common::Running::start_until(
        &[
            "fleet".as_ref(),
            "watch".as_ref(),
            "--config".as_ref(),
            cfg.as_os_str(),
        ],
        "fleet watch: reading VIGIL_FLEET",
    );
    (cfg, run)
}
