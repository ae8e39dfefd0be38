//! A real browser for the dashboard's tests: Debian's Chromium, headless, driven through
//! chromedriver (WebDriver, by fantoccini).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use vigil_testkit::PATIENCE;

pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port of 127.0.0.1, and the browser profile folder it is given;
/// when dropped, chromedriver and every browser process of that profile are killed (a
/// killed chromedriver leaves its browser running otherwise).
pub(crate) struct Driver {
    child: Child,
    pub(crate) url: String,
    profile: tempfile::TempDir,
}

impl Driver {
    pub(crate) fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        while ureq::get(&format!("{url}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().expect("a browser profile folder");
        Self {
            child,
            url,
            profile,
        }
    }

    /// A headless browser session of a phone's width, through this driver.
    pub(crate) async fn client(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=420,900", self.profile_arg()],
            }),
        );
        ClientBuilder::rustls()
            .expect("tls")
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a browser session")
    }

    /// Chromium's `--user-data-dir` argument: the profile this driver cleans up.
    pub(crate) fn profile_arg(&self) -> String {
        format!("--user-data-dir={}", self.profile.path().display())
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.child.kill().is_ok() {
            self.child.wait().expect("reap chromedriver");
        }
        // pkill exits 1 when nothing matched (the browser quit with its session); `--`, for
        // the pattern starts with dashes (without it pkill refused it and browsers leaked).
        let killed = Command::new("pkill")
            .args(["-KILL", "-f", "--"])
            .arg(self.profile_arg())
            .status();
        match killed {
            Ok(s) if s.code().is_some_and(|c| c <= 1) => {}
            other => eprintln!(
                "the browser of {} may still run: {other:?}",
                self.profile_arg()
            ),
        }
    }
}

/// Polls `f` (bounded by [`PATIENCE`]) until it gives `Some`.
pub(crate) async fn until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "the page never showed {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn text_of(c: &Client, css: &str) -> Option<String> {
    c.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

pub(crate) async fn shot(c: &Client, dir: &Path, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

pub(crate) fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// Whether chromium and chromedriver are installed; when not, says SKIPPED for `what` (or
/// fails where the tools are required).
pub(crate) fn present(what: &str) -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    vigil_testkit::skip_or_require(&format!(
        "no Debian chromium and chromedriver (apt-get install chromium chromium-driver): {what}"
    ));
    false
}

/// The runtime the WebDriver client runs on. Its TLS (unused on loopback HTTP) needs a
/// crypto provider chosen.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("a rustls crypto provider was installed already");
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Logs in at `base` with `token` on the login page and waits for the overview.
pub(crate) async fn log_in(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/ui/login"))
        .await
        .expect("open the login page");
    c.find(Locator::Id("token"))
        .await
        .expect("token field")
        .send_keys(token.trim())
        .await
        .expect("type the token");
    c.find(Locator::Id("login-button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    until("the overview after the login", || async {
        text_of(c, "#ready").await.filter(|t| t != "…")
    })
    .await;
}

/// An HTTP client for the dashboard that follows no redirect and takes every status.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent()
}

/// Logs in at `base` with `token` over HTTP (a script's login, named `who`): the session's
/// cookie (`vigil_session=…`).
pub(crate) fn session_cookie(agent: &ureq::Agent, base: &str, token: &str, who: &str) -> String {
    let res = agent
        .post(&format!("{base}/ui/login"))
        .send_form([("token", token.trim()), ("who", who)])
        .expect("login");
    assert_eq!(res.status().as_u16(), 303);
    res.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string()
}
