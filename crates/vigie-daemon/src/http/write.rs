//! The `write` handlers: watchlists, silences and acknowledgements. Each change is a
//! command to the indexer thread, which owns the detector and the alert policy.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use vigie_detect::WatchEntry;

use super::auth::error_response;
use super::{bad_request, not_found, Shared};
use crate::detection::WatchCommand;

pub(super) async fn add_watchlist(
    State(state): State<Shared>,
    entry: Result<Json<WatchEntry>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(entry) = match entry {
        Ok(entry) => entry,
        Err(err) => return json_rejection(&state, err),
    };
    match command(&state, |reply| WatchCommand::Add(entry.clone(), reply)).await {
        Ok(Ok(())) => (StatusCode::CREATED, Json(entry)).into_response(),
        Ok(Err(message)) => {
            state.reject("bad_query");
            bad_request(message)
        }
        Err(response) => response,
    }
}

/// Answers a body that did not deserialize: 413 when it was too large, 400 otherwise.
fn json_rejection(state: &Shared, err: axum::extract::rejection::JsonRejection) -> Response {
    let status = err.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return error_response(
            status,
            format!(
                "the body is larger than http.max_body_bytes ({} bytes)",
                state.settings.max_body_bytes
            ),
        );
    }
    bad_request(err.body_text())
}

pub(super) async fn remove_watchlist(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Response {
    match command(&state, |reply| WatchCommand::Remove(name.clone(), reply)).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => not_found(format!("no watchlist named {name:?}")),
        Err(response) => response,
    }
}

/// Sends a command to the indexer thread and waits for its reply.
async fn command<T>(
    state: &Shared,
    make: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> WatchCommand,
) -> Result<T, Response> {
    let unavailable = || {
        error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the pipeline is not running",
        )
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    state
        .app
        .detection
        .commands
        .send(make(reply))
        .map_err(|_| unavailable())?;
    answer.await.map_err(|_| unavailable())
}

pub(super) async fn ack_alert(
    State(state): State<Shared>,
    Path(fingerprint): Path<String>,
) -> Response {
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

pub(super) async fn add_silence(
    State(state): State<Shared>,
    silence: Result<Json<vigie_alert::SilenceRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(silence) = match silence {
        Ok(silence) => silence,
        Err(err) => return json_rejection(&state, err),
    };
    match command(&state, |reply| WatchCommand::AddSilence(silence, reply)).await {
        Ok(Ok(id)) => (StatusCode::CREATED, Json(serde_json::json!({ "id": id }))).into_response(),
        Ok(Err(err @ vigie_alert::AlertError::TooManySilences { .. })) => {
            error_response(StatusCode::TOO_MANY_REQUESTS, err.to_string())
        }
        Ok(Err(err)) => bad_request(crate::error_chain(&err)),
        Err(response) => response,
    }
}

pub(super) async fn remove_silence(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Response {
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
