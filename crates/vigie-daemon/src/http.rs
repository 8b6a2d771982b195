//! The HTTP server: health, readiness, Prometheus metrics, and the search API.
//!
//! Handlers only read shared state; searches run on the blocking pool because Tantivy
//! searches are CPU work.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use vigie_index::{PostSearcher, SearchOrder, SearchRequest};

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
}

/// Builds the router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/search", get(search))
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
