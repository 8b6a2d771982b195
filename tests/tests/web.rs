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
        narratives.contains("#kochfarms"),
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
