//! A real headless Chromium for the browser tests, driven over WebDriver by `fantoccini`
//! through a `chromedriver` of its own (a free port per test).
//!
//! Debian's `chromium` and `chromium-driver` packages provide `/usr/bin/chromium` and
//! `/usr/bin/chromedriver` (`CHROMIUM` and `CHROMEDRIVER` override the paths). Without them the
//! tests fail, saying what to install: they are never skipped.
//!
//! The pages run under the server's Content-Security-Policy, and a violation fails the test:
//! Chromium reports each one in its console ("… violates the following Content Security Policy
//! directive …"), which the browser log read here sorts out of the console errors. It is
//! checked after every [`Browser::goto`], with every [`Browser::screenshots`] and at
//! [`Browser::close`]; nothing is injected into the pages to do it (an inline script would be
//! refused itself).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::common::TestApp;

/// How long a page condition may take.
pub const PAGE_WAIT: Duration = Duration::from_secs(20);
/// The widths every page is checked and photographed at: a laptop and a phone.
pub const WIDTHS: [u32; 2] = [1280, 390];

fn tool(env: &str, default: &str, package: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.exists(),
        "browser tests need {} ({package}); install it with \
         `apt-get install -y --no-install-recommends chromium chromium-driver` \
         or point {env} at it",
        path.display()
    );
    path
}

/// A browser session on a fresh profile, and the chromedriver behind it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    driver_url: String,
    base: String,
    /// What the browser log said that no one has asked for yet.
    log: Mutex<Log>,
}

/// The browser log, read from chromedriver (which hands each entry out once) and sorted.
#[derive(Default)]
struct Log {
    /// Console errors (`SEVERE`), for [`Browser::console_errors`].
    errors: Vec<String>,
    /// Content-Security-Policy violations, at any level, for [`Browser::csp_violations`].
    violations: Vec<String>,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium for `app`.
    pub async fn start(app: &TestApp) -> Browser {
        let chromium = tool("CHROMIUM", "/usr/bin/chromium", "Debian package chromium");
        let chromedriver = tool(
            "CHROMEDRIVER",
            "/usr/bin/chromedriver",
            "Debian package chromium-driver",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port for chromedriver")
            .port();
        // A process group of its own: Chromium and its helpers join it, so dropping the
        // browser (a failed test too) ends all of them, not only chromedriver.
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("starting chromedriver");
        let driver_url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http
                .get(format!("{driver_url}/status"))
                .send()
                .await
                .ok()
                .and_then(|r| r.status().is_success().then_some(r));
            if let Some(r) = ready {
                let status: Value = r.json().await.unwrap_or_default();
                if status["value"]["ready"] == true {
                    break;
                }
            }
            assert!(
                Instant::now() < end,
                "chromedriver on port {port} did not become ready within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900",
                         "--no-first-run", "--disable-extensions",
                         "--disable-crash-reporter", "--disable-breakpad"],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver_url)
            .await
            .unwrap_or_else(|e| panic!("opening a Chromium session through chromedriver: {e}"));
        Browser {
            client,
            driver,
            driver_url,
            base: app.url(""),
            log: Mutex::default(),
        }
    }

    /// Opens `path` and checks that no page so far (this one included) violated the
    /// Content-Security-Policy.
    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("opening {path}: {e}"));
        self.assert_no_csp_violations(&format!("opening {path}"))
            .await;
    }

    /// The current path and query.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current URL");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits for an element; panics with the page's text when it never comes.
    pub async fn find(&self, css: &str) -> Element {
        let end = Instant::now() + PAGE_WAIT;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                return element;
            }
            if Instant::now() >= end {
                panic!(
                    "no element {css:?} on {} within {PAGE_WAIT:?}; the page says:\n{}",
                    self.path().await,
                    self.body_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the element matching `css` holds `text`.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> Element {
        let end = Instant::now() + PAGE_WAIT;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                if element.text().await.is_ok_and(|t| t.contains(text)) {
                    return element;
                }
            }
            if Instant::now() >= end {
                panic!(
                    "{css:?} on {} did not show {text:?} within {PAGE_WAIT:?}; the page says:\n{}",
                    self.path().await,
                    self.body_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page is at `path` (a prefix match).
    pub async fn wait_for_path(&self, prefix: &str) -> String {
        let end = Instant::now() + PAGE_WAIT;
        loop {
            let path = self.path().await;
            if path.starts_with(prefix) {
                return path;
            }
            if Instant::now() >= end {
                panic!(
                    "the browser stayed at {path} instead of reaching {prefix}; the page says:\n{}",
                    self.body_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(e) => format!("(no body: {e})"),
        }
    }

    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        // Into the middle of the window: the editor's sticky save bar covers the bottom.
        self.client
            .execute(
                "arguments[0].scrollIntoView({block: 'center'})",
                vec![serde_json::to_value(&element).expect("an element reference")],
            )
            .await
            .expect("scrolling to an element");
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// Replaces an input's value by typing.
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        element.clear().await.expect("clearing an input");
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("choosing {value:?} in {css}: {e}"));
    }

    /// Runs a script in the page (a returned promise is awaited).
    pub async fn run(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("running a script in the page: {e}"))
    }

    /// Signs in through the login form and waits for the dashboard.
    pub async fn sign_in(&self, email: &str, password: &str) {
        self.goto("/login").await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click("form[action='/login'] button[type=submit]")
            .await;
        self.wait_for_text("h1", "Dashboard").await;
    }

    /// The browser console's errors since the last call (chromedriver's log endpoint), without
    /// Content-Security-Policy violations (see [`Browser::csp_violations`]).
    pub async fn console_errors(&self) -> Vec<String> {
        self.read_log().await;
        std::mem::take(&mut self.log.lock().expect("the log lock").errors)
    }

    /// The Content-Security-Policy violations the browser reported since the last call.
    pub async fn csp_violations(&self) -> Vec<String> {
        self.read_log().await;
        std::mem::take(&mut self.log.lock().expect("the log lock").violations)
    }

    /// Fails the test when the browser reported a Content-Security-Policy violation.
    pub async fn assert_no_csp_violations(&self, when: &str) {
        let violations = self.csp_violations().await;
        assert!(
            violations.is_empty(),
            "{when}: the page broke the Content-Security-Policy (at {}): {violations:#?}",
            self.path().await
        );
    }

    /// Moves the browser log's new entries into [`Log`].
    async fn read_log(&self) {
        let session = self
            .client
            .session_id()
            .await
            .ok()
            .flatten()
            .expect("a WebDriver session id");
        let answer: Value = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .expect("reading the browser log")
            .json()
            .await
            .expect("the browser log is JSON");
        let mut log = self.log.lock().expect("the log lock");
        for entry in answer["value"].as_array().into_iter().flatten() {
            let message = entry["message"].as_str().unwrap_or_default().to_owned();
            if is_csp_violation(&message) {
                log.violations.push(message);
            } else if entry["level"] == "SEVERE" {
                log.errors.push(message);
            }
        }
    }

    /// Photographs the current page at each of [`WIDTHS`] (its whole height) into
    /// `target/screenshots/<name>-<width>.png`, checking at each width that nothing makes
    /// the page scroll sideways, that the console has no errors and that the page kept to the
    /// Content-Security-Policy.
    pub async fn screenshots(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("creating target/screenshots");
        for width in WIDTHS {
            self.client
                .set_window_size(width, 900)
                .await
                .expect("resizing the window");
            let metrics = self
                .run("return [document.documentElement.scrollWidth, window.innerWidth, document.documentElement.scrollHeight]")
                .await;
            let (scroll, inner, height) = (
                metrics[0].as_u64().unwrap_or(0),
                metrics[1].as_u64().unwrap_or(0),
                metrics[2].as_u64().unwrap_or(900),
            );
            assert!(
                scroll <= inner,
                "{name} scrolls sideways at {width} px: the page is {scroll} px wide in a {inner} px viewport"
            );
            // The window's chrome takes some height; a little extra shows the whole page.
            let full = u32::try_from(height + 120).unwrap_or(4000).clamp(600, 6000);
            self.client
                .set_window_size(width, full)
                .await
                .expect("resizing the window");
            self.run("window.scrollTo(0, 0); return null").await;
            let png = self.client.screenshot().await.expect("a screenshot");
            std::fs::write(dir.join(format!("{name}-{width}.png")), png)
                .expect("writing a screenshot");
        }
        self.client
            .set_window_size(1280, 900)
            .await
            .expect("resizing the window");
        let errors = self.console_errors().await;
        assert!(
            errors.is_empty(),
            "{name}: the browser console has errors: {errors:#?}"
        );
        self.assert_no_csp_violations(name).await;
    }

    /// Checks that the session ended without a Content-Security-Policy violation, and closes it.
    pub async fn close(self) {
        self.assert_no_csp_violations("at the end of the test")
            .await;
        let _ = self.client.clone().close().await;
    }
}

/// Whether a console message is Chromium's report of a Content-Security-Policy violation
/// (older versions: "Refused to … because it violates the following Content Security Policy
/// directive"; newer: "Executing inline script violates the following Content Security Policy
/// directive").
fn is_csp_violation(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("content security policy") || message.contains("content-security-policy")
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(group) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
