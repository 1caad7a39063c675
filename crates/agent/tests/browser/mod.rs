//! A real headless Chromium driven through `chromedriver` (Debian `chromium` and
//! `chromium-driver`, installed by `scripts/install-services.sh`) with fantoccini.
//! Each browser has its own profile directory and driver process, stopped on drop.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

/// The chromium and chromedriver binaries, or a loud failure naming the fix.
fn binaries() -> (PathBuf, PathBuf) {
    let find = |names: &[&str]| {
        names
            .iter()
            .flat_map(|n| {
                std::env::var_os("PATH")
                    .map(|p| {
                        std::env::split_paths(&p)
                            .map(|d| d.join(n))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            })
            .find(|p| p.is_file())
    };
    let chromium = find(&["chromium", "chromium-browser"]);
    let driver = find(&["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => (c, d),
        _ => panic!(
            "chromium and chromedriver are needed for the dashboard tests: run scripts/install-services.sh \
             (apt-get install chromium chromium-driver); make test does"
        ),
    }
}

/// A headless browser session.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Self {
        let (chromium, chromedriver) = binaries();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--no-first-run", "--window-size=1280,1000",
                         format!("--user-data-dir={}", profile.path().display())]
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let client = loop {
            let mut b =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
            b.capabilities(caps.clone());
            match b.connect(&url).await {
                Ok(c) => break c,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session from chromedriver at {url}: {e}"),
            }
        };
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Waits up to `secs` for `css` and returns the element's text.
    pub async fn text_of(&self, css: &str, secs: u64) -> String {
        let e = self
            .client
            .wait()
            .at_most(Duration::from_secs(secs))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} within {secs} s: {e}"));
        e.text().await.unwrap_or_default()
    }

    /// Waits up to `secs` until `css` exists and its text contains `needle`, and returns
    /// the text (an element that is on the page before the answer it shows arrives, such
    /// as the login error line, must not be read too early).
    pub async fn text_containing(&self, css: &str, needle: &str, secs: u64) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(needle) {
                return text;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("{css} did not show {needle:?} within {secs} s; it shows {text:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a screenshot under the target's test temp dir and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {}", path.display());
        path
    }

    /// Logs in on the dashboard at `url` with `token`.
    pub async fn login(&self, url: &str, token: &str) {
        self.client.goto(url).await.expect("dashboard loads");
        let t = self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Id("token"))
            .await
            .expect("the login form");
        t.send_keys(token).await.unwrap();
        self.click(Locator::Css("#login-form button")).await;
    }

    /// Clicks "Log out".
    pub async fn logout(&self) {
        self.click(Locator::Id("logout")).await;
    }

    /// Clicks the element `what` finds (on the page now: no wait), failing the test
    /// when there is none or the click fails.
    pub async fn click(&self, what: Locator<'_>) {
        self.client
            .find(what)
            .await
            .unwrap_or_else(|e| panic!("no {what:?} to click: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("{what:?} does not click: {e}"));
    }

    pub async fn stop(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
