//! A small W3C WebDriver client over reqwest, enough to drive Debian's headless
//! Chromium through `chromedriver` (both from the `chromium` and `chromium-driver`
//! packages, which `scripts/test` installs): open pages, find elements, type, click,
//! read text, run a script, take screenshots. The protocol is plain JSON over HTTP, so
//! the tests need no WebDriver crate.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

/// The key WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// WebDriver's code for the Enter key.
pub const ENTER: &str = "\u{E007}";
/// WebDriver's code for the Tab key.
pub const TAB: &str = "\u{E004}";

fn find_program(env: &str, candidates: &[&str]) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "no {} found (tried {candidates:?}; set {env}): the browser tests need \
                 Debian's chromium and chromium-driver packages, which scripts/test installs",
                candidates[0]
            )
        })
}

/// A running chromedriver with one headless Chromium session; both end when dropped.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: Child,
}

/// One element of the page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver on a free port and opens a headless session `width` ×
    /// `height` pixels wide.
    pub async fn start(width: u32, height: u32) -> Self {
        let driver_path = find_program("CHROMEDRIVER", &["/usr/bin/chromedriver"]);
        let chromium = find_program(
            "CHROMIUM_BINARY",
            &["/usr/lib/chromium/chromium", "/usr/bin/chromium"],
        );
        let port = test_peers::free_port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", driver_path.display()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         "--disable-extensions", "--hide-scrollbars",
                         format!("--window-size={width},{height}")]
            }
        }}});
        let mut browser = Self {
            http,
            base,
            session: String::new(),
            driver,
        };
        let v = browser.send("POST", "/session", Some(caps)).await;
        browser.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        browser
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self
                .http
                .post(&url)
                .json(&body.unwrap_or_else(|| json!({}))),
        };
        let resp = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "WebDriver {method} {path}: {status} {v}"
        );
        v["value"].clone()
    }

    async fn try_send(&self, method: &str, path: &str, body: Option<Value>) -> Option<Value> {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(&url),
            _ => self
                .http
                .post(&url)
                .json(&body.unwrap_or_else(|| json!({}))),
        };
        let resp = req.send().await.ok()?;
        let ok = resp.status().is_success();
        let v: Value = resp.json().await.ok()?;
        ok.then(|| v["value"].clone())
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.send("POST", &self.s("/url"), Some(json!({ "url": url })))
            .await;
    }

    /// The page's address now.
    pub async fn url(&self) -> String {
        self.send("GET", &self.s("/url"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Resizes the window.
    pub async fn resize(&self, width: u32, height: u32) {
        self.send(
            "POST",
            &self.s("/window/rect"),
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// The first element matching `css`, if there is one now.
    pub async fn find(&self, css: &str) -> Option<Element> {
        let v = self
            .try_send(
                "POST",
                &self.s("/element"),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        v[ELEMENT].as_str().map(|id| Element(id.to_string()))
    }

    /// Waits (up to 20 s) for a displayed element matching `css`.
    pub async fn wait_for(&self, css: &str) -> Element {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.find(css).await {
                if self.displayed(&e).await {
                    return e;
                }
            }
            if Instant::now() > deadline {
                let body = self.script("return document.body.innerText").await;
                panic!(
                    "no visible {css} at {}; the page says: {body}",
                    self.url().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (up to 20 s) until `css` shows text containing `wanted`; the text.
    pub async fn wait_for_text(&self, css: &str, wanted: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.find(css).await {
                let text = self.text(&e).await;
                if text.contains(wanted) && self.displayed(&e).await {
                    return text;
                }
            }
            if Instant::now() > deadline {
                let body = self.script("return document.body.innerText").await;
                panic!("{css} never showed {wanted:?}; the page says: {body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the element is displayed.
    pub async fn displayed(&self, e: &Element) -> bool {
        self.try_send("GET", &self.s(&format!("/element/{}/displayed", e.0)), None)
            .await
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    /// The element's rendered text.
    pub async fn text(&self, e: &Element) -> String {
        self.try_send("GET", &self.s(&format!("/element/{}/text", e.0)), None)
            .await
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// A DOM property of the element (`checked`, `value`).
    pub async fn property(&self, e: &Element, name: &str) -> Value {
        self.send(
            "GET",
            &self.s(&format!("/element/{}/property/{name}", e.0)),
            None,
        )
        .await
    }

    /// Clicks the element.
    pub async fn click(&self, e: &Element) {
        self.send("POST", &self.s(&format!("/element/{}/click", e.0)), None)
            .await;
    }

    /// Empties an input.
    pub async fn clear(&self, e: &Element) {
        self.send("POST", &self.s(&format!("/element/{}/clear", e.0)), None)
            .await;
    }

    /// Types `text` into the element (WebDriver key codes such as [`ENTER`] allowed).
    pub async fn type_into(&self, e: &Element, text: &str) {
        self.send(
            "POST",
            &self.s(&format!("/element/{}/value", e.0)),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Runs `script` in the page; what it returns.
    pub async fn script(&self, script: &str) -> Value {
        self.try_send(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
        .await
        .unwrap_or(Value::Null)
    }

    /// The element that has the keyboard focus.
    pub async fn focused(&self) -> Element {
        let v = self.send("GET", &self.s("/element/active"), None).await;
        Element(v[ELEMENT].as_str().expect("an active element").to_string())
    }

    /// Saves a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let v = self.send("GET", &self.s("/screenshot"), None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("a base64 screenshot"))
            .expect("base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self
            .http
            .delete(format!("{}{}", self.base, self.s("")))
            .send()
            .await;
        // Ended: nothing left for `drop` to end but the driver.
        self.session.clear();
    }
}

impl Drop for Browser {
    /// Ends the session first (so Chromium quits, also when a test panicked before
    /// [`Browser::close`]), with a plain blocking request, then the driver.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        if self.session.is_empty() {
            let _ = self.driver.kill();
            let _ = self.driver.wait();
            return;
        }
        let host = self.base.trim_start_matches("http://").to_string();
        if let Ok(mut s) = std::net::TcpStream::connect(&host) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
                self.session
            );
            let _ = s.read_to_end(&mut Vec::new());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
