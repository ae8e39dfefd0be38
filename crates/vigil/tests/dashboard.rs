//! The operations dashboard in a real browser: Debian's Chromium, headless, driven through
//! chromedriver (WebDriver, by fantoccini) against a real `vigil run` on loopback. Log in,
//! see the overview, trip and reset the breaker from the page, acknowledge an alert, set a
//! silence, open a trace, see the positions, models and reports pages. Screenshots of each page go to `$CARGO_TARGET_TMPDIR/dashboard/`. Without
//! chromium and chromedriver the test prints a loud SKIPPED line (CI installs both and sets
//! `VIGIL_TEST_TOOLS_REQUIRED`, so it runs there).

mod common;

use std::time::Duration;

use common::browser::{self, Driver, screenshots, shot, text_of, until};
use common::feed::{FeedProcess, KEY_ID, wait_for_event};
use common::vigil;
use fantoccini::Locator;
use serde_json::Value;
use vigil_testkit::config;

#[test]
fn an_operator_logs_in_trips_and_resets_the_breaker_acks_an_alert_and_opens_a_trace() {
    if !browser::present("the dashboard's browser test") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut feed = FeedProcess::paced(dir.path(), 100);
    let secret = dir.path().join("feed.secret");
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "{feed}\n[signal]\nfast_span = 3\nslow_span = 8\n\n[checklist]\ndir = \"{lists}\"\n\
             \n[monitor]\nprobe_interval_ms = 300\n\
             {home}read_token_file = \"{read}\"\n",
            feed = config::feed_sections("GOOG", &feed.stream_url, KEY_ID, &secret, ""),
            home = config::home_sections(dir.path(), "", ""),
            lists = dir.path().join("checklists").display(),
            read = dir.path().join("state/read.token").display(),
        ),
    )
    .expect("config");
    let run = common::run_on(&cfg);
    let base = format!("http://{}", run.control.clone().expect("control address"));
    feed.wait_for("subscribed to [\"GOOG\"]");
    wait_for_event(dir.path(), "order_submitted");
    let token = std::fs::read_to_string(dir.path().join("state/control.token")).expect("token");
    let read_token =
        std::fs::read_to_string(dir.path().join("state/read.token")).expect("read token");

    // A checklist on record, for the reports page (its verdict does not matter here).
    let checklist = vigil()
        .args(["checklist", "premarket", "--config"])
        .arg(&cfg)
        .output()
        .expect("vigil checklist");
    assert!(
        checklist.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&checklist.stderr)
    );
    // A model version in the registry (gate skipped, recorded so), to promote from the page.
    let model_dir = common::copy_model(&dir.path().join("model"), |t| t);
    let registered = vigil()
        .args([
            "model",
            "register",
            &model_dir,
            "--skip-gate",
            "--reason",
            "e2e",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .expect("vigil model register");
    assert!(
        registered.status.success(),
        "{}",
        String::from_utf8_lossy(&registered.stderr)
    );
    // A backtest and a gate run of the bundled model, for the reports page (recorded in the
    // store the session shares; the gate's verdict is not logged: the session writes the log).
    let data = common::repo("data/GOOG_1d.csv");
    let backtested = vigil()
        .args([
            "backtest",
            "--layer",
            "vectorized",
            "--model",
            &model_dir,
            "--config",
        ])
        .arg(&cfg)
        .arg("--data")
        .arg(&data)
        .output()
        .expect("vigil backtest");
    assert!(
        backtested.status.success(),
        "{}",
        String::from_utf8_lossy(&backtested.stderr)
    );
    let gated = vigil()
        .args(["gate", "--no-log", "--model", &model_dir, "--config"])
        .arg(&cfg)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("gate.json"))
        .output()
        .expect("vigil gate");
    assert!(
        gated.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&gated.stderr)
    );
    let shots = screenshots();
    let driver = Driver::start();
    let rt = browser::runtime();
    rt.block_on(async {
        let c = driver.client().await;

        // Not logged in: the login page; a wrong token is refused on the page.
        c.goto(&format!("{base}/ui/")).await.expect("open");
        assert!(
            c.current_url()
                .await
                .expect("url")
                .path()
                .ends_with("/ui/login")
        );
        c.find(Locator::Id("token"))
            .await
            .expect("token field")
            .send_keys("wrong")
            .await
            .expect("type");
        c.find(Locator::Id("login-button"))
            .await
            .expect("button")
            .click()
            .await
            .expect("click");
        let refused = until("the wrong-token error", || async {
            text_of(&c, "#login-error").await
        })
        .await;
        assert!(refused.contains("Wrong token"), "{refused}");
        shot(&c, &shots, "01-login-refused").await;

        // The operator's token, asked for by a link to a page (as an alert's link is): the
        // login goes on to that page. Then the overview, live.
        c.goto(&format!("{base}/ui/#reports")).await.expect("open");
        assert!(
            c.current_url()
                .await
                .expect("url")
                .path()
                .ends_with("/ui/login")
        );
        c.find(Locator::Id("token"))
            .await
            .expect("token field")
            .send_keys(token.trim())
            .await
            .expect("type");
        c.find(Locator::Id("who"))
            .await
            .expect("who")
            .send_keys("e2e")
            .await
            .expect("type");
        c.find(Locator::Id("login-button"))
            .await
            .expect("button")
            .click()
            .await
            .expect("click");
        let landed = until("the page asked for", || async {
            let url = c.current_url().await.ok()?;
            (url.path() == "/ui/").then(|| url.fragment().unwrap_or_default().to_string())
        })
        .await;
        assert_eq!(landed, "reports");
        // With a session, a link to a page from elsewhere passes the login page by.
        c.goto(&format!("{base}/ui/login#log")).await.expect("open");
        until("the login page passed by", || async {
            let url = c.current_url().await.ok()?;
            (url.path() == "/ui/" && url.fragment() == Some("log")).then_some(())
        })
        .await;
        c.goto(&format!("{base}/ui/#overview"))
            .await
            .expect("overview");
        until("the trading state", || async {
            text_of(&c, "#trading-state")
                .await
                .filter(|t| t == "active")
        })
        .await;
        until("the live stream", || async {
            text_of(&c, "#live").await.filter(|t| t == "live")
        })
        .await;
        let phase = text_of(&c, "#phase").await.expect("the phase");
        assert!(
            phase.starts_with("phase ") && phase.contains(" · next "),
            "{phase}"
        );
        let agents = text_of(&c, "#agents").await.expect("agents table");
        for agent in ["data", "signal", "risk", "execution"] {
            assert!(agents.contains(agent), "{agent} in {agents}");
        }
        // The session cookie: HttpOnly, SameSite=Strict (Secure only under TLS).
        let cookie = c
            .get_named_cookie("vigil_session")
            .await
            .expect("the session cookie");
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
        shot(&c, &shots, "02-overview").await;

        // Trip the breaker from the page: audited, and the page shows it halted.
        c.find(Locator::Id("breaker-reason"))
            .await
            .expect("reason")
            .send_keys("e2e drill")
            .await
            .expect("type");
        c.find(Locator::Id("breaker-trip"))
            .await
            .expect("trip")
            .click()
            .await
            .expect("click");
        until("trading halted", || async {
            text_of(&c, "#trading-state")
                .await
                .filter(|t| t == "halted")
        })
        .await;
        // The breaker_tripped alert is among those firing, linked to its page.
        until("the alert firing on the overview", || async {
            text_of(&c, "#firing")
                .await
                .filter(|t| t.contains("breaker_tripped"))
        })
        .await;
        shot(&c, &shots, "03-halted").await;

        // The breaker_tripped alert: acknowledge it on the alerts page.
        c.goto(&format!("{base}/ui/#alerts")).await.expect("alerts");
        let ack = until("an alert to acknowledge", || async {
            let found = c.find(Locator::Css("button.ack")).await.ok();
            if found.is_none() {
                c.refresh().await.ok()?;
            }
            found
        })
        .await;
        ack.click().await.expect("ack");
        let acked = until("the acknowledgement", || async {
            text_of(&c, "#ack-result")
                .await
                .filter(|t| t.contains("recorded as request #"))
        })
        .await;
        assert!(acked.contains("acknowledgement of a-"), "{acked}");
        until("the alert shown acknowledged by the dashboard", || async {
            c.refresh().await.ok()?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            text_of(&c, "#alerts .acked")
                .await
                .filter(|t| t == "by dashboard:e2e")
        })
        .await;
        shot(&c, &shots, "04-alerts").await;

        // Silence a rule from the page: recorded like `vigil alerts silence`.
        c.find(Locator::Id("silence-rule"))
            .await
            .expect("rule")
            .send_keys("cpu_high")
            .await
            .expect("type");
        c.find(Locator::Id("silence-reason"))
            .await
            .expect("reason")
            .send_keys("e2e maintenance")
            .await
            .expect("type");
        c.find(Locator::Id("silence-button"))
            .await
            .expect("silence")
            .click()
            .await
            .expect("click");
        let silenced = until("the silence recorded", || async {
            text_of(&c, "#silence-result")
                .await
                .filter(|t| t.contains("recorded as request #"))
        })
        .await;
        assert!(silenced.starts_with("silence for 2 h"), "{silenced}");
        until("the silence in force", || async {
            c.refresh().await.ok()?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            text_of(&c, "#silences")
                .await
                .filter(|t| t.contains("cpu_high") && t.contains("e2e maintenance"))
        })
        .await;

        // Reset it from the overview.
        c.goto(&format!("{base}/ui/#overview"))
            .await
            .expect("overview");
        c.find(Locator::Id("breaker-reason"))
            .await
            .expect("reason")
            .send_keys("e2e over")
            .await
            .expect("type");
        c.find(Locator::Id("breaker-reset"))
            .await
            .expect("reset")
            .click()
            .await
            .expect("click");
        until("trading active again", || async {
            text_of(&c, "#trading-state")
                .await
                .filter(|t| t == "active")
        })
        .await;

        // A trace: from the log page to one decision chain with its timings.
        c.goto(&format!("{base}/ui/#log")).await.expect("log");
        // The oldest trace on the page (the newest first): its decision is complete (the
        // newest one's Risk line may not be written yet).
        let link = until("a trace link", || async {
            c.find_all(Locator::Css("a.trace"))
                .await
                .ok()
                .and_then(|mut all| all.pop())
        })
        .await;
        shot(&c, &shots, "05-log").await;
        link.click().await.expect("open the trace");
        let steps = until("the trace's steps", || async {
            text_of(&c, "#trace-steps")
                .await
                .filter(|t| t.contains("signal_generated"))
        })
        .await;
        assert!(
            steps.contains("risk_approved") || steps.contains("risk_rejected"),
            "{steps}"
        );
        shot(&c, &shots, "05-trace").await;

        // The positions page draws its chart with the vendored uPlot.
        c.goto(&format!("{base}/ui/#positions"))
            .await
            .expect("positions");
        until("the account's equity", || async {
            text_of(&c, "#account")
                .await
                .filter(|t| t.contains("equity") && t.contains("fills"))
        })
        .await;
        // The equity followed live, drawn by the vendored uPlot (under the page's CSP).
        until("the equity chart", || async {
            c.find(Locator::Css("#equity-chart .uplot canvas"))
                .await
                .ok()
        })
        .await;
        until("the journaled books", || async {
            text_of(&c, "#books").await.filter(|t| !t.is_empty())
        })
        .await;
        shot(&c, &shots, "06-positions").await;

        // Models: promote the registered version from the page; the registry records it and
        // the running session is asked to switch (it trades the EMA model, not this one,
        // so it says no, and the page says so).
        c.goto(&format!("{base}/ui/#models")).await.expect("models");
        let promote = until("a version to promote", || async {
            c.find(Locator::Css("button.promote")).await.ok()
        })
        .await;
        c.find(Locator::Id("model-reason"))
            .await
            .expect("reason")
            .send_keys("e2e promote")
            .await
            .expect("type");
        promote.click().await.expect("promote");
        let promoted = until("the promotion", || async {
            text_of(&c, "#release-result")
                .await
                .filter(|t| t.contains("the running session:"))
        })
        .await;
        assert!(promoted.contains("promoted by dashboard:e2e"), "{promoted}");
        until("the version in production", || async {
            text_of(&c, "#models")
                .await
                .filter(|t| t.contains("production"))
        })
        .await;
        shot(&c, &shots, "07-models").await;
        // Reports (the checklist run above).
        c.goto(&format!("{base}/ui/#reports"))
            .await
            .expect("reports");
        let lists = until("the premarket checklist", || async {
            text_of(&c, "#checklists")
                .await
                .filter(|t| t.contains("premarket"))
        })
        .await;
        assert!(lists.contains("disk"), "{lists}");
        until("the drills table", || async {
            text_of(&c, "#drills")
                .await
                .filter(|t| t.contains("no drill on record"))
        })
        .await;
        // The backtest and the gate, newest first, with their figures and pages.
        let runs = until("the backtests table", || async {
            text_of(&c, "#backtests")
                .await
                .filter(|t| t.contains("gate on"))
        })
        .await;
        let (gate_row, backtest_row) = runs
            .split_once("backtest on")
            .unwrap_or_else(|| panic!("no backtest row: {runs}"));
        assert!(
            gate_row.contains("@1.0.0") && gate_row.contains("oms:"),
            "{runs}"
        );
        assert!(backtest_row.contains("vectorized:"), "{runs}");
        shot(&c, &shots, "08-reports").await;
        let page = c
            .find(Locator::Css("#backtests tbody tr:first-child a"))
            .await
            .expect("the gate's page link")
            .attr("href")
            .await
            .expect("href")
            .expect("a link");
        c.goto(&format!("{base}{page}"))
            .await
            .expect("the gate's page");
        let body = until("the gate's page", || async {
            text_of(&c, "body")
                .await
                .filter(|t| t.contains("@1.0.0 on "))
        })
        .await;
        assert!(body.to_lowercase().contains("gate"), "{body}");
        shot(&c, &shots, "09-backtest").await;
        c.close().await.expect("close the browser");
    });

    // The audit has both commands, signed by the dashboard's login.
    let out = vigil()
        .args(["ctl", "audit", "--json", "--config"])
        .arg(&cfg)
        .output()
        .expect("vigil ctl audit");
    let audit = String::from_utf8_lossy(&out.stdout).to_string();
    for needle in [
        "switch_model",
        "breaker_trip",
        "breaker_reset",
        "dashboard:e2e",
        "e2e drill",
    ] {
        assert!(audit.contains(needle), "{needle} in {audit}");
    }

    // Outside the browser: a POST without the CSRF token, and the read-only token's
    // session, are refused.
    let agent = browser::agent();
    let login = |t: &str| -> (String, String) {
        let cookie = browser::session_cookie(&agent, &base, t, "script");
        let mut info = agent
            .get(&format!("{base}/ui/api/session"))
            .header("Cookie", &cookie)
            .call()
            .expect("session");
        let v: Value =
            serde_json::from_str(&info.body_mut().read_to_string().expect("body")).expect("json");
        (cookie, v["csrf"].as_str().expect("csrf").to_string())
    };
    let trip = |cookie: &str, csrf: Option<&str>| -> u16 {
        let mut req = agent
            .post(&format!("{base}/ui/api/command"))
            .header("Cookie", cookie)
            .header("Content-Type", "application/json");
        if let Some(t) = csrf {
            req = req.header("X-CSRF-Token", t);
        }
        req.send(r#"{"command":"breaker_trip","reason":"no"}"#)
            .expect("answer")
            .status()
            .as_u16()
    };
    let (cookie, _) = login(&token);
    assert_eq!(trip(&cookie, None), 403, "no CSRF token");
    assert_eq!(trip(&cookie, Some("forged")), 403, "a wrong CSRF token");
    let (viewer, csrf) = login(&read_token);
    assert_eq!(trip(&viewer, Some(&csrf)), 403, "the read-only session");
    // The read-only token reads the API and cannot act on it.
    let read = |path: &str, post: bool| -> u16 {
        let auth = format!("Bearer {}", read_token.trim());
        let res = if post {
            agent
                .post(&format!("{base}{path}"))
                .header("Authorization", &auth)
                .send(r#"{"command":"breaker_trip","reason":"r","who":"w"}"#)
        } else {
            agent
                .get(&format!("{base}{path}"))
                .header("Authorization", &auth)
                .call()
        };
        res.expect("answer").status().as_u16()
    };
    assert_eq!(read("/v1/status", false), 200);
    assert_eq!(read("/v1/commands", true), 403);
    // A rotated token ends the dashboard's sessions.
    let session_status = |cookie: &str| -> u16 {
        agent
            .get(&format!("{base}/ui/api/session"))
            .header("Cookie", cookie)
            .call()
            .expect("answer")
            .status()
            .as_u16()
    };
    assert_eq!(session_status(&cookie), 200);
    let rotated = vigil()
        .args(["ctl", "rotate-token", "--reason", "e2e", "--config"])
        .arg(&cfg)
        .output()
        .expect("vigil ctl rotate-token");
    let said = String::from_utf8_lossy(&rotated.stdout).to_string();
    assert!(said.contains("dashboard session(s) ended"), "{said}");
    assert_eq!(session_status(&cookie), 401);
    run.signal("-TERM");
    run.finish_ok();
}
