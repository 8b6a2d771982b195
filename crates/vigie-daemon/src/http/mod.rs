//! The HTTP server: health, readiness, Prometheus metrics, the search API and the page.
//!
//! Every route goes through the same stack, outermost first: [`auth::check_access`] (Host,
//! Origin, token, role), a request timeout (408), a concurrency limit, and a body size
//! limit (413). Searches also take a permit from a small semaphore (503 with `Retry-After`
//! when all are taken) and run on the blocking pool because Tantivy searches are CPU work.
//! Handlers only read shared state; changes go to the indexer thread as commands.

pub mod auth;
pub mod config;
mod privacy;
mod read;
mod write;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use vigie_domain::Secret;
use vigie_index::PostSearcher;

pub use auth::{Caller, REJECT_REASONS};
pub use config::{HttpConfig, HttpSettings, Role, TokenConfig};

use crate::detection::DetectionHandle;
use crate::metrics::Metrics;
use crate::runner::PipelineState;
use privacy::Pseudonymizer;

/// What the daemon hands the server.
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

/// What the handlers share: the daemon's state and the server's own.
#[derive(Clone)]
struct Shared {
    app: AppState,
    settings: Arc<HttpSettings>,
    searches: Arc<tokio::sync::Semaphore>,
    pseudonyms: Pseudonymizer,
}

impl Shared {
    /// Returns the narrative board for reading (narratives, alerts, silences, watchlists).
    fn board(&self) -> std::sync::RwLockReadGuard<'_, crate::detection::NarrativeBoard> {
        self.app
            .detection
            .board
            .read()
            .expect("board lock is never poisoned")
    }

    fn reject(&self, reason: &'static str) {
        self.app
            .metrics
            .http_requests_rejected
            .with_label_values(&[reason])
            .inc();
    }
}

/// Builds the router with every limit and check of `settings`; pseudonyms are keyed by
/// `account_salt`.
pub fn router(state: AppState, settings: &HttpSettings, account_salt: &Secret) -> Router {
    let settings = Arc::new(settings.clone());
    let access = auth::Access {
        settings: settings.clone(),
        metrics: state.metrics.clone(),
    };
    let shared = Shared {
        searches: Arc::new(tokio::sync::Semaphore::new(
            settings.max_concurrent_searches,
        )),
        pseudonyms: Pseudonymizer::new(account_salt),
        settings: settings.clone(),
        app: state,
    };
    // Innermost first: each `Router::layer` wraps every route (and the fallback).
    routes()
        .with_state(shared)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        // Global: one limit for the whole server, not one per route.
        .layer(GlobalConcurrencyLimitLayer::new(
            settings.max_concurrent_requests,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(RequestBodyLimitLayer::new(settings.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            access,
            auth::check_access,
        ))
}

fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(home))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.yaml", get(openapi))
        .route("/api/v1/search", get(read::search))
        .route("/api/v1/narratives", get(read::list_narratives))
        .route("/api/v1/narratives/{id}", get(read::get_narrative))
        .route("/api/v1/alerts", get(read::list_alerts))
        .route("/api/v1/alerts/{fingerprint}/ack", post(write::ack_alert))
        .route(
            "/api/v1/silences",
            get(read::list_silences).post(write::add_silence),
        )
        .route("/api/v1/silences/{id}", delete(write::remove_silence))
        .route(
            "/api/v1/watchlists",
            get(read::list_watchlists).post(write::add_watchlist),
        )
        .route("/api/v1/watchlists/{name}", delete(write::remove_watchlist))
}

/// Binds the address and serves until `shutdown` is cancelled.
pub async fn serve(
    settings: &HttpSettings,
    account_salt: &Secret,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let addr = settings.listen;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|err| {
        anyhow::anyhow!("cannot listen on {addr}: {err} (set http.listen or VIGIE_HTTP__LISTEN)")
    })?;
    tracing::info!(
        %addr,
        tokens = settings.tokens.len(),
        host_check = settings.allowed_hosts.is_some(),
        "http server listening"
    );
    let app = router(state, settings, account_salt);
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "http server failed");
        }
    }))
}

fn not_found(message: impl Into<String>) -> Response {
    auth::error_response(StatusCode::NOT_FOUND, message)
}

fn bad_request(message: impl Into<String>) -> Response {
    auth::error_response(StatusCode::BAD_REQUEST, message)
}

async fn home() -> Response {
    (
        // The page loads nothing from elsewhere and may not be framed (clickjacking).
        [
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 frame-ancestors 'none'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(include_str!("../home.html")),
    )
        .into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/yaml")],
        include_str!("../../../../docs/openapi.yaml"),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Shared>) -> Response {
    let pipeline = &state.app.pipeline;
    let source_connected = pipeline.source_connected.load(Ordering::Relaxed);
    let index_open = pipeline.index_open.load(Ordering::Relaxed);
    let input_finished = pipeline.input_finished.load(Ordering::Relaxed);
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

async fn metrics(State(state): State<Shared>) -> Response {
    let app = &state.app;
    app.metrics
        .index_documents
        .set(app.searcher.num_docs() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    /// Every route the router serves (but the home page) is documented in the OpenAPI
    /// document, so the document cannot silently fall behind the code.
    #[test]
    fn every_route_is_in_the_openapi_document() {
        let source = include_str!("mod.rs");
        let document = include_str!("../../../../docs/openapi.yaml");
        let router = &source
            [source.find("fn routes()").unwrap()..source.find("/// Binds the address").unwrap()];
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
