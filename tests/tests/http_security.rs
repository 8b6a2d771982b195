//! Issue 12, rows 1 to 3, against the real `vigie` binary on loopback: the two query
//! parsers that aborted the daemon now answer 400 and the daemon stays up; the API has
//! bearer tokens with roles; without tokens it refuses to listen beyond loopback, checks
//! the Host header (DNS rebinding) and refuses cross-site writes (CSRF); bodies are
//! limited. Each test starts its own daemon on the built-in sample.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use vigie_tests::{free_port, VigieProcess};

const READ_TOKEN: &str = "read-token-0123456789abcdef";
const WRITE_TOKEN: &str = "write-token-0123456789abcdef";

/// An HTTP answer: status, lowercased header lines, body.
struct Answer {
    status: u16,
    headers: String,
    body: String,
}

/// Sends one HTTP/1.1 request with `Connection: close` and the given headers (a `Host`
/// header is added unless given) and reads the whole answer.
fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<Answer> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    // A server may answer (413) and close before reading a large body.
    let _ = stream.write_all(body.as_bytes());
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some(Answer {
        status: head.split_whitespace().nth(1)?.parse().ok()?,
        headers: head.to_ascii_lowercase(),
        body: body.to_owned(),
    })
}

fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Answer {
    send(port, "GET", path, headers, "").expect("vigie answers")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Starts `vigie run` with `config` (after `data_dir`) and waits until it serves.
fn start(dir: &Path, config: &str) -> (VigieProcess, u16) {
    let port = free_port().unwrap();
    let path = dir.join("vigie.toml");
    let text = format!(
        "data_dir = \"{}\"\n[source]\nkind = \"sample\"\n{}",
        dir.join("data").display(),
        config.replace("PORT", &port.to_string())
    );
    std::fs::write(&path, text).unwrap();
    let mut vigie = VigieProcess::run(&path, port, &dir.join("vigie.log")).unwrap();
    vigie
        .wait_for("/healthz", Duration::from_secs(60), |v| {
            v.get("/healthz").filter(|(status, _)| *status == 200)
        })
        .unwrap();
    (vigie, port)
}

/// The daemon still serves after what came before.
fn still_up(vigie: &mut VigieProcess, port: u16) {
    vigie.check_alive().unwrap();
    assert_eq!(get(port, "/healthz", &[]).status, 200, "{}", vigie.log());
}

/// Rows 1 and 2 on the default configuration, exactly as reported: the nested search and
/// the nested watchlist aborted the daemon; now they get 400 with a reason.
fn nested_queries_are_refused(vigie: &mut VigieProcess, port: u16, auth: &[(&str, &str)]) {
    let nested = format!("{}water{}", "(".repeat(2500), ")".repeat(2500));
    let answer = get(port, &format!("/api/v1/search?q={nested}"), auth);
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("at most"), "{}", answer.body);
    still_up(vigie, port);
    // Within the length limit, the depth limit answers.
    let deep = format!("{}water{}", "(".repeat(100), ")".repeat(100));
    let answer = get(port, &format!("/api/v1/search?q={deep}"), auth);
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("levels deep"), "{}", answer.body);
    for query in [
        "(".repeat(100_000),
        format!("{}turkey{}", "(".repeat(1000), ")".repeat(1000)),
        format!("{}turkey", "NOT ".repeat(900)),
    ] {
        let body = serde_json::json!({ "name": "deep", "query": query }).to_string();
        let answer = send(port, "POST", "/api/v1/watchlists", auth, &body).unwrap();
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert!(
            answer.body.contains("at most") || answer.body.contains("levels deep"),
            "{}",
            answer.body
        );
        assert!(answer.body.len() < 1000, "the error quotes the whole query");
        still_up(vigie, port);
    }
}

#[test]
fn issue_12_listening_beyond_loopback_without_a_token_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let config = dir.path().join("vigie.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[source]\nkind = \"sample\"\n[http]\nlisten = \"0.0.0.0:{port}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("vigie.log");
    let mut run = VigieProcess::run(&config, port, &log).unwrap();
    let status = run.wait_exit(Duration::from_secs(60)).unwrap();
    assert!(
        !status.success(),
        "vigie started on 0.0.0.0 without a token"
    );
    let text = run.log();
    assert!(
        text.contains("http.tokens")
            && text.contains("http.listen")
            && text.contains("no token is set"),
        "the message does not name the settings:\n{text}"
    );
    let mut check =
        VigieProcess::spawn(&["check-config", config.to_str().unwrap()], port, &log).unwrap();
    assert!(!check.wait_exit(Duration::from_secs(60)).unwrap().success());
    // An override to every address is refused the same way.
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[source]\nkind = \"sample\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let output = std::process::Command::new(vigie_tests::vigie_binary())
        .args(["check-config", config.to_str().unwrap()])
        .env("VIGIE_HTTP__LISTEN", format!("[::]:{port}"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("http.tokens"));
}

#[test]
fn issue_12_tokens_have_roles_and_requests_have_limits() {
    let dir = tempfile::tempdir().unwrap();
    let (mut vigie, port) = start(
        dir.path(),
        &format!(
            "[http]\nlisten = \"127.0.0.1:PORT\"\nmax_body_bytes = 200000\n\
             [[http.tokens]]\nname = \"analyst\"\nrole = \"read\"\ntoken = \"{READ_TOKEN}\"\n\
             [[http.tokens]]\nname = \"ops\"\nrole = \"write\"\ntoken = \"{WRITE_TOKEN}\"\n"
        ),
    );
    let read = bearer(READ_TOKEN);
    let write = bearer(WRITE_TOKEN);
    // Probes and the page stay open; the data does not.
    assert_eq!(get(port, "/healthz", &[]).status, 200);
    assert_eq!(get(port, "/", &[]).status, 200);
    for path in [
        "/api/v1/search?q=water",
        "/api/v1/narratives",
        "/api/v1/alerts",
        "/metrics",
    ] {
        let answer = get(port, path, &[]);
        assert_eq!(answer.status, 401, "{path}: {}", answer.body);
        assert!(
            answer.headers.contains("www-authenticate: bearer"),
            "{}",
            answer.headers
        );
        let wrong = get(
            port,
            path,
            &[("Authorization", "Bearer read-token-0123456789abcdeX")],
        );
        assert_eq!(wrong.status, 401, "{path}");
        assert_eq!(
            get(port, path, &[("Authorization", &read)]).status,
            200,
            "{path}"
        );
    }
    assert!(get(port, "/metrics", &[("Authorization", &read)])
        .body
        .contains("vigie_http_requests_rejected_total{reason=\"unauthenticated\"}"));
    // A read token cannot change anything; a write token can.
    let entry = r##"{"name":"koch","query":"#KochFarms"}"##;
    let answer = send(
        port,
        "POST",
        "/api/v1/watchlists",
        &[("Authorization", &read)],
        entry,
    )
    .unwrap();
    assert_eq!(answer.status, 403, "{}", answer.body);
    let answer = send(port, "POST", "/api/v1/watchlists", &[], entry).unwrap();
    assert_eq!(answer.status, 401, "{}", answer.body);
    let answer = send(
        port,
        "POST",
        "/api/v1/watchlists",
        &[("Authorization", &write)],
        entry,
    )
    .unwrap();
    assert_eq!(answer.status, 201, "{}", answer.body);
    let answer = send(
        port,
        "DELETE",
        "/api/v1/watchlists/koch",
        &[("Authorization", &read)],
        "",
    )
    .unwrap();
    assert_eq!(answer.status, 403, "{}", answer.body);
    // An oversize body is refused before it is read.
    let huge = format!(r#"{{"name":"big","domains":["{}"]}}"#, "a".repeat(300_000));
    let answer = send(
        port,
        "POST",
        "/api/v1/watchlists",
        &[("Authorization", &write)],
        &huge,
    )
    .unwrap();
    assert_eq!(answer.status, 413, "{}", answer.body);
    // Search hits never carry raw author ids (the sample's authors are handles).
    vigie
        .wait_for("indexed posts", Duration::from_secs(120), |_| {
            let answer = get(
                port,
                "/api/v1/search?q=*&limit=50",
                &[("Authorization", &read)],
            );
            let body: serde_json::Value = serde_json::from_str(&answer.body).ok()?;
            let hits = body["hits"].as_array()?.clone();
            (!hits.is_empty()).then_some(hits)
        })
        .unwrap()
        .iter()
        .filter_map(|hit| hit["author"].as_str())
        .for_each(|author| {
            assert!(
                author.len() == 12 && author.bytes().all(|b| b.is_ascii_hexdigit()),
                "raw author served: {author}"
            )
        });
    nested_queries_are_refused(&mut vigie, port, &[("Authorization", &write)]);
}

#[test]
fn issue_12_loopback_without_tokens_checks_host_and_origin() {
    let dir = tempfile::tempdir().unwrap();
    let (mut vigie, port) = start(dir.path(), "[http]\nlisten = \"127.0.0.1:PORT\"\n");
    // DNS rebinding: a page on evil.example resolved to 127.0.0.1 sends its own Host.
    for host in [
        "evil.example",
        "evil.example:80",
        &format!("evil.example:{port}"),
    ] {
        let answer = get(port, "/api/v1/narratives", &[("Host", host)]);
        assert_eq!(answer.status, 421, "{host}: {}", answer.body);
    }
    assert_eq!(
        get(
            port,
            "/api/v1/narratives",
            &[("Host", &format!("localhost:{port}"))]
        )
        .status,
        200
    );
    // CSRF: a cross-site form or fetch is refused; curl (no Origin) and the page pass.
    // Silences are judged on the wall clock; one in force now, for an hour.
    #[allow(clippy::disallowed_methods)]
    let now = chrono::Utc::now();
    let silence = serde_json::json!({
        "matchers": [{ "name": "severity", "value": "critical" }],
        "starts_at": now,
        "ends_at": now + chrono::Duration::hours(1),
    })
    .to_string();
    let silence = silence.as_str();
    for headers in [
        [("Origin", "http://evil.example")],
        [("Sec-Fetch-Site", "cross-site")],
        [("Sec-Fetch-Site", "same-site")],
        [("Origin", "null")],
    ] {
        let answer = send(port, "POST", "/api/v1/silences", &headers, silence).unwrap();
        assert_eq!(answer.status, 403, "{headers:?}: {}", answer.body);
    }
    assert!(
        get(port, "/api/v1/silences", &[]).body.contains("[]"),
        "a refused silence was added"
    );
    let same_origin = format!("http://127.0.0.1:{port}");
    let answer = send(
        port,
        "POST",
        "/api/v1/silences",
        &[("Origin", &same_origin), ("Sec-Fetch-Site", "same-origin")],
        silence,
    )
    .unwrap();
    assert_eq!(answer.status, 201, "{}", answer.body);
    let entry = r##"{"name":"koch","query":"#KochFarms"}"##;
    let answer = send(port, "POST", "/api/v1/watchlists", &[], entry).unwrap();
    assert_eq!(
        answer.status, 201,
        "curl-like client refused: {}",
        answer.body
    );
    nested_queries_are_refused(&mut vigie, port, &[]);
}
