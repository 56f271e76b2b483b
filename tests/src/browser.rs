//! A real browser for the dashboard's tests: Debian's `chromium`, headless,
//! driven over the W3C WebDriver protocol by `chromedriver` (Debian's
//! `chromium-driver`), both installed by `deploy/prereqs.sh`. The protocol
//! is JSON over HTTP on 127.0.0.1; this client speaks the few commands the
//! tests use (open a URL, run a script, take a screenshot) over a plain
//! TCP connection per command.

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

/// A headless chromium session, ended (and its driver killed) on drop.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Browser {
    /// Starts chromedriver and a headless chromium session. Panics when
    /// either is missing: the tests need them (`deploy/prereqs.sh`).
    pub fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start chromedriver ({e}): install chromium and chromium-driver (deploy/prereqs.sh)")
            });
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen on port {port} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let created = browser.command(
            "POST",
            "/session",
            &json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1400,1000",
                             "--no-first-run", "--no-default-browser-check"],
                },
            }}}),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        browser
    }

    /// Opens `url` (returns once the page has loaded).
    pub fn goto(&self, url: &str) {
        self.session_command("POST", "url", &json!({ "url": url }));
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page
    /// and returns what it returns.
    pub fn execute(&self, script: &str, args: &[Value]) -> Value {
        self.session_command(
            "POST",
            "execute/sync",
            &json!({"script": script, "args": args}),
        )
    }

    /// Runs an async `script` (its last argument is the callback to call
    /// with the result).
    pub fn execute_async(&self, script: &str, args: &[Value]) -> Value {
        self.session_command(
            "POST",
            "execute/async",
            &json!({"script": script, "args": args}),
        )
    }

    /// Polls `script` until it returns something truthy (not null, false,
    /// 0 or ""), and returns that; panics after `limit` with `what`.
    pub fn wait_for(&self, what: &str, script: &str, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let value = self.execute(script, &[]);
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if started.elapsed() > limit {
                let text = self.execute("return document.body.innerText.slice(0, 2000);", &[]);
                panic!("waited {limit:?} for {what}; the page says: {text}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Saves a PNG of the window to `path`.
    pub fn screenshot(&self, path: &Path) {
        let shot = self.session_command("GET", "screenshot", &Value::Null);
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().expect("a screenshot is base64"))
            .expect("a screenshot is base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot folder");
        }
        std::fs::write(path, png).expect("screenshot written");
    }

    fn session_command(&self, method: &str, path: &str, body: &Value) -> Value {
        let path = format!("/session/{}/{path}", self.session);
        self.command(method, &path, body)
    }

    /// One WebDriver command: its `value`, or a panic with the error.
    fn command(&self, method: &str, path: &str, body: &Value) -> Value {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("chromedriver");
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .expect("timeout");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .expect("request to chromedriver");
        // chromedriver may keep the connection open: read the head, then
        // as many bytes as it says.
        let mut reader = std::io::BufReader::new(stream);
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader
                .read_line(&mut line)
                .expect("answer from chromedriver");
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().expect("a Content-Length");
                }
            }
            if line.trim_end().is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let mut json_text = vec![0u8; length];
        reader
            .read_exact(&mut json_text)
            .expect("answer from chromedriver");
        let value: Value = serde_json::from_slice(&json_text)
            .unwrap_or_else(|e| panic!("chromedriver answered {head}: {e}"));
        if !head.starts_with("HTTP/1.1 200") {
            panic!("WebDriver {method} {path} failed: {head}: {value}");
        }
        value["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.command("DELETE", &path, &Value::Null)
            }));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
