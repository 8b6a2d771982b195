//! HTTP helpers: a reqwest client for the daemon's, Prometheus', Alertmanager's and moto's
//! APIs, and [`WebhookReceiver`], an axum server standing in for alert receivers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};

/// Timeout of connecting and of each read of one request by [`http_get`] and
/// [`http_request`].
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The client's runtime: one worker thread of its own, so the helpers can be called from
/// plain threads and from inside `#[tokio::test]`s alike (a `reqwest::blocking` client
/// panics inside a runtime).
fn client_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("vigie-tests-http")
            .enable_all()
            .build()
            .expect("failed to start the HTTP client's runtime")
    })
}

/// The client: no proxy (loopback only), no connection reuse (a restarted server gets
/// fresh connections, as with one connection per request before).
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .connect_timeout(REQUEST_TIMEOUT)
            .read_timeout(REQUEST_TIMEOUT)
            .build()
            .expect("failed to build the HTTP client")
    })
}

/// Sends `method path` to `127.0.0.1:port` (Host `localhost`) with `body` as JSON when
/// given, and returns the status code and body, or `None` when nothing answers.
fn send(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Option<(u16, String)> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).ok()?;
    let mut request = client()
        .request(method, format!("http://127.0.0.1:{port}{path}"))
        .header(reqwest::header::HOST, "localhost");
    if let Some(body) = body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    client_runtime().spawn(async move {
        let answer = async {
            let response = request.send().await.ok()?;
            let status = response.status().as_u16();
            Some((status, response.text().await.ok()?))
        }
        .await;
        let _ = sender.send(answer);
    });
    receiver.recv().ok().flatten()
}

/// Sends `GET path` to `127.0.0.1:port` and returns the status code and body, or `None`
/// when nothing answers (yet). Enough for health, metrics and JSON APIs.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    send(port, "GET", path, None)
}

/// Sends `METHOD path` (with a JSON body when given) to `127.0.0.1:port` and returns the
/// status code and body, or `None` when nothing answers.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Option<(u16, String)> {
    send(port, method, path, body)
}

/// One HTTP request received by a [`WebhookReceiver`].
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Headers, names lowercased (the last value wins for repeated names).
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
    /// The status the receiver answered with.
    pub answered: u16,
}

/// What the receiver's handler shares with the test.
#[derive(Clone)]
struct Recorder {
    received: Arc<Mutex<Vec<ReceivedRequest>>>,
    status: Arc<AtomicU16>,
}

/// Records the request and answers with the configured status and an empty body.
async fn record(
    State(recorder): State<Recorder>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let answered = recorder.status.load(Ordering::Relaxed);
    let headers = headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).trim().to_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    recorder.received.lock().unwrap().push(ReceivedRequest {
        method: method.as_str().to_owned(),
        path,
        headers,
        body: body.to_vec(),
        answered,
    });
    StatusCode::from_u16(answered).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// An HTTP server (axum, on a thread with its own runtime) on a free loopback port that
/// records every request and answers with a status the test controls (e.g. 503 to
/// simulate an outage), standing in for a webhook endpoint, Slack, Teams or Alertmanager's
/// receiver. Stops on drop.
pub struct WebhookReceiver {
    /// The port it listens on.
    pub port: u16,
    recorder: Recorder,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl WebhookReceiver {
    /// Starts the receiver answering 200.
    pub fn start() -> anyhow::Result<WebhookReceiver> {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("failed to bind the receiver")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let recorder = Recorder {
            received: Arc::new(Mutex::new(Vec::new())),
            status: Arc::new(AtomicU16::new(200)),
        };
        let app = axum::Router::new()
            .fallback(record)
            .layer(DefaultBodyLimit::disable())
            .with_state(recorder.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("failed to build the receiver's runtime")?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("webhook-receiver-{port}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("the receiver's listener");
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })
            .context("failed to start the receiver's thread")?;
        Ok(WebhookReceiver {
            port,
            recorder,
            stop: Some(stop),
        })
    }

    /// Returns `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers every following request with `status`.
    pub fn answer_with(&self, status: u16) {
        self.recorder.status.store(status, Ordering::Relaxed);
    }

    /// Returns every request received so far.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.recorder.received.lock().unwrap().clone()
    }

    /// Waits until `predicate` holds for the received requests, or fails after `timeout`.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&[ReceivedRequest]) -> bool,
    ) -> anyhow::Result<Vec<ReceivedRequest>> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if predicate(&requests) {
                return Ok(requests);
            }
            if Instant::now() > deadline {
                bail!(
                    "{what}: not seen within {timeout:?}; received {} requests",
                    requests.len()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
