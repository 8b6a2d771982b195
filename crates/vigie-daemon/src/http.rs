//! The HTTP server: health, readiness, Prometheus metrics, and the search API.
//!
//! Handlers only read shared state; searches run on the blocking pool because Tantivy
//! searches are CPU work.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use vigie_detect::WatchEntry;
use vigie_domain::{NarrativeStatus, Severity};
use vigie_index::{PostSearcher, SearchOrder, SearchRequest};

use crate::detection::{DetectionHandle, WatchCommand};
use crate::metrics::Metrics;
use crate::runner::PipelineState;
use crate::timearg::parse_time_arg;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Pipeline metrics.
    pub metrics: Metrics,
    /// Pipeline status flags.
    pub pipeline: Arc<PipelineState>,
    /// Searches the index.
    pub searcher: PostSearcher,
    /// Narratives and watchlists.
    pub detection: DetectionHandle,
}

impl AppState {
    /// Returns the narrative board for reading (narratives, alerts, silences, watchlists).
    fn board(&self) -> std::sync::RwLockReadGuard<'_, crate::detection::NarrativeBoard> {
        self.detection
            .board
            .read()
            .expect("board lock is never poisoned")
    }
}

/// Builds the router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.yaml", get(openapi))
        .route("/api/v1/search", get(search))
        .route("/api/v1/narratives", get(list_narratives))
        .route("/api/v1/narratives/{id}", get(get_narrative))
        .route("/api/v1/alerts", get(list_alerts))
        .route(
            "/api/v1/alerts/{fingerprint}/ack",
            axum::routing::post(ack_alert),
        )
        .route("/api/v1/silences", get(list_silences).post(add_silence))
        .route(
            "/api/v1/silences/{id}",
            axum::routing::delete(remove_silence),
        )
        .route(
            "/api/v1/watchlists",
            get(list_watchlists).post(add_watchlist),
        )
        .route(
            "/api/v1/watchlists/{name}",
            axum::routing::delete(remove_watchlist),
        )
        .with_state(state)
}

/// Binds the address and serves until `shutdown` is cancelled.
pub async fn serve(
    addr: SocketAddr,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|err| {
        anyhow::anyhow!("cannot listen on {addr}: {err} (set http.listen or VIGIE_HTTP__LISTEN)")
    })?;
    let app = router(state);
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "http server failed");
        }
    }))
}

async fn home() -> Html<&'static str> {
    Html(include_str!("home.html"))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/yaml")],
        include_str!("../../../docs/openapi.yaml"),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    let source_connected = state.pipeline.source_connected.load(Ordering::Relaxed);
    let index_open = state.pipeline.index_open.load(Ordering::Relaxed);
    let input_finished = state.pipeline.input_finished.load(Ordering::Relaxed);
    // A finished replay is still ready to serve searches.
    let ready = (source_connected && index_open) || input_finished;
    let body = serde_json::json!({
        "ready": ready,
        "source_connected": source_connected,
        "index_open": index_open,
        "input_finished": input_finished,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    state
        .metrics
        .index_documents
        .set(state.searcher.num_docs() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// Query parameters of `GET /api/v1/search`.
#[derive(Debug, Deserialize)]
struct SearchParams {
    /// The query (Tantivy syntax); `q` or `query`.
    #[serde(alias = "query")]
    q: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
    order: Option<SearchOrder>,
    lang: Option<String>,
}

fn not_found(message: impl Into<String>) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": message.into() })),
    )
        .into_response()
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": message.into() })),
    )
        .into_response()
}

async fn search(
    State(state): State<AppState>,
    params: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(params) => params,
        Err(err) => return bad_request(err.body_text()),
    };
    let parse = |value: &Option<String>, name: &str| -> Result<_, String> {
        value
            .as_deref()
            .map(parse_time_arg)
            .transpose()
            .map_err(|err| format!("{name}: {err}"))
    };
    let (since, until) = match (parse(&params.since, "since"), parse(&params.until, "until")) {
        (Ok(since), Ok(until)) => (since, until),
        (Err(message), _) | (_, Err(message)) => return bad_request(message),
    };
    let request = SearchRequest {
        query: params.q.unwrap_or_default(),
        since,
        until,
        limit: params.limit.unwrap_or(20),
        order: params.order.unwrap_or_default(),
        lang: params.lang,
    };
    let searcher = state.searcher.clone();
    match tokio::task::spawn_blocking(move || searcher.search(&request)).await {
        Ok(Ok(results)) => Json(results).into_response(),
        Ok(Err(vigie_index::IndexError::Query { message })) => bad_request(message),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "search failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({ "error": err.to_string() })),
            )
                .into_response()
        }
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({ "error": err.to_string() })),
        )
            .into_response(),
    }
}

/// Query parameters of `GET /api/v1/narratives`.
#[derive(Debug, Deserialize)]
struct NarrativeParams {
    status: Option<NarrativeStatus>,
    min_severity: Option<Severity>,
    limit: Option<usize>,
}

async fn list_narratives(
    State(state): State<AppState>,
    params: Result<Query<NarrativeParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(params) => params,
        Err(err) => return bad_request(err.body_text()),
    };
    let board = state.board();
    let mut narratives: Vec<_> = board
        .narratives
        .iter()
        .filter(|n| params.status.is_none_or(|s| n.status == s))
        .filter(|n| params.min_severity.is_none_or(|s| n.severity >= s))
        .collect();
    narratives.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.posts_total.cmp(&a.posts_total))
    });
    narratives.truncate(params.limit.unwrap_or(100));
    Json(serde_json::json!({
        "narratives": narratives,
        "posts_observed": board.counters.posts_observed,
    }))
    .into_response()
}

async fn get_narrative(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(number) = id.trim_start_matches('n').parse::<u64>() else {
        return bad_request(format!("{id:?} is not a narrative id (like n12)"));
    };
    let board = state.board();
    let Some(narrative) = board.narratives.iter().find(|n| n.id.0 == number) else {
        return not_found(format!("no active narrative {id}"));
    };
    // The timeline: this narrative's recent events, without repeating the full narrative.
    let timeline: Vec<_> = board
        .events
        .iter()
        .filter(|e| e.narrative.id == narrative.id)
        .map(|e| {
            serde_json::json!({
                "at": e.at,
                "event": e.kind,
                "status": e.narrative.status,
                "severity": e.narrative.severity,
                "posts_total": e.narrative.posts_total,
                "posts_in_window": e.narrative.posts_in_window,
                "growth_ratio": e.narrative.growth_ratio,
            })
        })
        .collect();
    let search_query = narrative
        .terms
        .iter()
        .take(3)
        .map(|t| {
            if t.kind == vigie_domain::TokenKind::Hashtag {
                format!("#{}", t.term)
            } else {
                t.term.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" OR ");
    Json(serde_json::json!({
        "narrative": narrative,
        "timeline": timeline,
        "search": format!("/api/v1/search?q={}", url_encode(&search_query)),
    }))
    .into_response()
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn list_watchlists(State(state): State<AppState>) -> Response {
    let board = state.board();
    Json(serde_json::json!({ "watchlists": board.watchlists })).into_response()
}

async fn add_watchlist(
    State(state): State<AppState>,
    entry: Result<Json<WatchEntry>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(entry) = match entry {
        Ok(entry) => entry,
        Err(err) => return bad_request(err.body_text()),
    };
    match command(&state, |reply| WatchCommand::Add(entry.clone(), reply)).await {
        Ok(Ok(())) => (StatusCode::CREATED, Json(entry)).into_response(),
        Ok(Err(message)) => bad_request(message),
        Err(response) => response,
    }
}

async fn remove_watchlist(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match command(&state, |reply| WatchCommand::Remove(name.clone(), reply)).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => not_found(format!("no watchlist named {name:?}")),
        Err(response) => response,
    }
}

/// Sends a command to the indexer thread and waits for its reply.
async fn command<T>(
    state: &AppState,
    make: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> WatchCommand,
) -> Result<T, Response> {
    let unavailable = || {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": "the pipeline is not running" })),
        )
            .into_response()
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    state
        .detection
        .commands
        .send(make(reply))
        .map_err(|_| unavailable())?;
    answer.await.map_err(|_| unavailable())
}

/// Query parameters of `GET /api/v1/alerts`.
#[derive(Debug, Deserialize)]
struct AlertParams {
    state: Option<String>,
    severity: Option<String>,
    acked: Option<bool>,
    silenced: Option<bool>,
}

async fn list_alerts(
    State(state): State<AppState>,
    params: Result<Query<AlertParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(params) => params,
        Err(err) => return bad_request(err.body_text()),
    };
    let board = state.board();
    let alerts: Vec<_> = board
        .alerts
        .iter()
        .filter(|a| {
            params
                .state
                .as_deref()
                .is_none_or(|s| a.state.as_str() == s)
        })
        .filter(|a| {
            params
                .severity
                .as_deref()
                .is_none_or(|s| a.severity.as_str() == s)
        })
        .filter(|a| params.acked.is_none_or(|acked| a.acked == acked))
        .filter(|a| {
            params
                .silenced
                .is_none_or(|silenced| a.silenced == silenced)
        })
        .collect();
    Json(serde_json::json!({ "alerts": alerts })).into_response()
}

async fn ack_alert(State(state): State<AppState>, Path(fingerprint): Path<String>) -> Response {
    match command(&state, |reply| {
        WatchCommand::Ack(fingerprint.clone(), reply)
    })
    .await
    {
        Ok(true) => Json(serde_json::json!({ "acked": fingerprint })).into_response(),
        Ok(false) => not_found(format!("no alert {fingerprint}")),
        Err(response) => response,
    }
}

async fn list_silences(State(state): State<AppState>) -> Response {
    let board = state.board();
    Json(serde_json::json!({ "silences": board.silences })).into_response()
}

async fn add_silence(
    State(state): State<AppState>,
    silence: Result<Json<vigie_alert::Silence>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(silence) = match silence {
        Ok(silence) => silence,
        Err(err) => return bad_request(err.body_text()),
    };
    match command(&state, |reply| WatchCommand::AddSilence(silence, reply)).await {
        Ok(Ok(id)) => (StatusCode::CREATED, Json(serde_json::json!({ "id": id }))).into_response(),
        Ok(Err(message)) => bad_request(message),
        Err(response) => response,
    }
}

async fn remove_silence(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match command(&state, |reply| {
        WatchCommand::RemoveSilence(id.clone(), reply)
    })
    .await
    {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => not_found(format!("no silence {id}")),
        Err(response) => response,
    }
}

#[cfg(test)]
mod tests {
    /// Every route the router serves (but the home page) is documented in the OpenAPI
    /// document, so the document cannot silently fall behind the code.
    #[test]
    fn every_route_is_in_the_openapi_document() {
        let source = include_str!("http.rs");
        let document = include_str!("../../../docs/openapi.yaml");
        let router = &source
            [source.find("Router::new()").unwrap()..source.find(".with_state(state)").unwrap()];
        let routes: Vec<&str> = router
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|r| r.starts_with('/'))
            .collect();
        assert!(routes.len() >= 13, "{routes:?}");
        for route in routes.into_iter().filter(|r| *r != "/") {
            assert!(
                document.contains(&format!("\n  {route}:")),
                "{route} is missing from docs/openapi.yaml"
            );
        }
    }
}
