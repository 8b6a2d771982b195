//! The triage page in a real browser (Debian's headless Chromium, installed by `.ci/run`):
//! its script loads the narratives, alerts and search results from the API and renders them.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigie_tests::{free_port, http_get, vigie_binary, KillOnDrop};

/// Renders `url` in headless Chromium and returns the DOM after its scripts ran.
fn rendered_dom(url: &str, profile: &std::path::Path) -> String {
    let chromium = std::path::Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "chromium is missing: apt-get install chromium (.ci/run does)"
    );
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stderr(Stdio::null())
        .output()
        .expect("chromium runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_triage_page_shows_the_samples_narratives_and_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let _vigie = KillOnDrop(
        Command::new(vigie_binary())
            .arg("run")
            .current_dir(dir.path())
            .env("VIGIE_HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env("VIGIE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Wait until the built-in sample is replayed.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready =
            http_get(port, "/readyz").map(|(_, body)| body.contains("\"input_finished\":true"));
        if ready == Some(true) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sample was not replayed in time"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let dom = rendered_dom(
        &format!("http://127.0.0.1:{port}/"),
        &dir.path().join("chrome"),
    );
    assert!(
        dom.contains("5271 posts observed"),
        "the page did not load the counters:\n{dom}"
    );
    let narratives = &dom[dom.find("id=\"narratives\"").expect("narratives table")
        ..dom.find("id=\"alerts\"").unwrap()];
    assert!(
        // Labels keep the posts' spelling (#KochFarms) since issue 8.
        narratives.to_lowercase().contains("#kochfarms"),
        "no KochFarms narrative rendered:\n{narratives}"
    );
    assert!(
        narratives.contains("sev-critical") || narratives.contains("sev-high"),
        "{narratives}"
    );
    let alerts = &dom[dom.find("id=\"alerts\"").unwrap()..dom.find("id=\"search\"").unwrap()];
    assert!(
        alerts.matches("<tr>").count() > 1,
        "no alert row rendered:\n{alerts}"
    );
    // Text from the API is inserted as text: a post's markup is never interpreted.
    assert!(
        !dom.contains("<script>alert"),
        "unescaped content in the page"
    );
}

/// `GET path` on Chromium's DevTools HTTP endpoint (which wants HTTP/1.1) and its body.
fn devtools_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    // Read up to the end of the body that Content-Length announces: the endpoint may keep
    // the connection open.
    let mut response = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let text = String::from_utf8_lossy(&response).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            });
            if length.is_some_and(|length| body.len() >= length) {
                return Some(body.to_owned());
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()),
            Ok(n) => response.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Headless Chromium driven over the DevTools protocol, so a test can type into the page.
struct Browser {
    _chromium: KillOnDrop,
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    next_id: u64,
}

impl Browser {
    /// Opens `url` in a fresh profile under `profile` and attaches to its page.
    fn open(url: &str, profile: &std::path::Path) -> Browser {
        let chromium = KillOnDrop(
            Command::new("/usr/bin/chromium")
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--remote-debugging-port=0",
                    "--remote-allow-origins=*",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg(url)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromium runs"),
        );
        // Chromium writes the port it picked into the profile.
        let deadline = Instant::now() + Duration::from_secs(60);
        let page = loop {
            let port = std::fs::read_to_string(profile.join("DevToolsActivePort"))
                .ok()
                .and_then(|text| text.lines().next()?.trim().parse::<u16>().ok());
            let target = port.and_then(|port| {
                let targets: serde_json::Value =
                    serde_json::from_str(&devtools_get(port, "/json/list")?).ok()?;
                let id = targets.as_array()?.iter().find(|t| t["type"] == "page")?["id"]
                    .as_str()?
                    .to_owned();
                Some(format!("ws://127.0.0.1:{port}/devtools/page/{id}"))
            });
            if let Some(target) = target {
                break target;
            }
            assert!(
                Instant::now() < deadline,
                "chromium's DevTools did not come up (port {port:?}, /json/list {:?})",
                port.map(|port| devtools_get(port, "/json/list"))
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let (socket, _) = tungstenite::connect(page.as_str()).expect("DevTools WebSocket");
        Browser {
            _chromium: chromium,
            socket,
            next_id: 1,
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    fn eval(&mut self, expression: &str) -> serde_json::Value {
        let id = self.next_id;
        self.next_id += 1;
        let call = serde_json::json!({
            "id": id,
            "method": "Runtime.evaluate",
            "params": { "expression": expression, "awaitPromise": true, "returnByValue": true },
        });
        self.socket
            .send(tungstenite::Message::text(call.to_string()))
            .expect("DevTools accepts the call");
        loop {
            let message = self.socket.read().expect("DevTools answers");
            let Ok(text) = message.to_text() else {
                continue;
            };
            let Ok(answer) = serde_json::from_str::<serde_json::Value>(text) else {
                continue;
            };
            if answer["id"] == id {
                return answer["result"]["result"]["value"].clone();
            }
        }
    }

    /// Evaluates `expression` until it is `true`; fails with the DOM after `timeout`.
    fn wait_until(&mut self, what: &str, expression: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.eval(expression) != serde_json::Value::Bool(true) {
            if Instant::now() > deadline {
                let dom = self.eval("document.documentElement.outerHTML");
                panic!("{what}: not seen within {timeout:?}; DOM:\n{dom}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Issue 12: with tokens configured the page asks for one, keeps it in sessionStorage
/// only, sends it as a bearer token, then lists the narratives; log out forgets it.
#[test]
fn issue_12_the_page_logs_in_with_a_token_and_lists_narratives() {
    const TOKEN: &str = "page-read-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let config = dir.path().join("vigie.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nkind = \"sample\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n[[http.tokens]]\nname = \"analyst\"\nrole = \"read\"\ntoken = \"{TOKEN}\"\n"
        ),
    )
    .unwrap();
    let _vigie = KillOnDrop(
        Command::new(vigie_binary())
            .args(["run", "--config", config.to_str().unwrap()])
            .current_dir(dir.path())
            .env("VIGIE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while http_get(port, "/readyz").map(|(_, body)| body.contains("\"input_finished\":true"))
        != Some(true)
    {
        assert!(
            Instant::now() < deadline,
            "the sample was not replayed in time"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        http_get(port, "/api/v1/narratives").map(|(s, _)| s),
        Some(401)
    );

    let mut browser = Browser::open(
        &format!("http://127.0.0.1:{port}/"),
        &dir.path().join("chrome"),
    );
    let timeout = Duration::from_secs(30);
    browser.wait_until(
        "the login box",
        "document.body.dataset.state === 'login' && !document.getElementById('login').hidden",
        timeout,
    );
    assert_eq!(
        browser.eval("document.querySelectorAll('#narratives tbody tr').length"),
        0
    );
    // A wrong token is refused and not kept.
    browser.eval(
        "document.getElementById('token').value = 'wrong-token-0123456789';\
         document.getElementById('login').requestSubmit(); true",
    );
    browser.wait_until(
        "the refusal",
        "document.getElementById('login-error').textContent.includes('refused')",
        timeout,
    );
    assert_eq!(
        browser.eval("sessionStorage.getItem('vigie-token')"),
        serde_json::Value::Null
    );
    // The right one lists the narratives.
    browser.eval(&format!(
        "document.getElementById('token').value = '{TOKEN}';\
         document.getElementById('login').requestSubmit(); true"
    ));
    browser.wait_until(
        "the narratives",
        "document.body.dataset.state === 'ready' && \
         document.querySelector('#narratives tbody').textContent.toLowerCase().includes('#kochfarms')",
        timeout,
    );
    assert_eq!(
        browser.eval("document.getElementById('login').hidden"),
        true
    );
    assert_eq!(browser.eval("sessionStorage.getItem('vigie-token')"), TOKEN);
    assert_eq!(browser.eval("localStorage.length"), 0);
    assert_eq!(
        browser.eval("document.cookie"),
        "",
        "the token must not become a cookie"
    );
    // Searching from the page sends the token too.
    browser.eval("search('#KochFarms'); true");
    browser.wait_until(
        "search hits",
        "document.querySelectorAll('#hits li').length > 0",
        timeout,
    );
    // Log out forgets the token and hides the data.
    browser.eval("document.getElementById('logout').click(); true");
    browser.wait_until(
        "the login box again",
        "document.body.dataset.state === 'login' && \
         document.querySelectorAll('#narratives tbody tr').length === 0",
        timeout,
    );
    assert_eq!(
        browser.eval("sessionStorage.getItem('vigie-token')"),
        serde_json::Value::Null
    );
}
