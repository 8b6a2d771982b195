//! The `read` handlers: search, narratives, alerts, and the lists of silences and
//! watchlists. Author ids in answers are pseudonyms unless the caller may see raw ids.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use vigie_domain::{NarrativeStatus, Severity};
use vigie_index::{SearchOrder, SearchRequest};

use super::auth::{error_response, Caller};
use super::{bad_request, not_found, Shared};
use crate::timearg::parse_time_arg;

/// Seconds a client is told to wait when every search permit is taken.
const SEARCH_RETRY_AFTER_SECS: &str = "1";

/// Query parameters of `GET /api/v1/search`.
#[derive(Debug, Deserialize)]
pub(super) struct SearchParams {
    /// The query (Tantivy syntax); `q` or `query`.
    #[serde(alias = "query")]
    q: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
    order: Option<SearchOrder>,
    lang: Option<String>,
}

pub(super) async fn search(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
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
    let limits = state.settings.search;
    let request = SearchRequest {
        query: params.q.unwrap_or_default(),
        since,
        until,
        limit: params.limit.unwrap_or(20),
        order: params.order.unwrap_or_default(),
        lang: params.lang,
    };
    // Refused before taking a permit: a bad query costs nothing.
    if let Err(err) = limits.check_query(request.query.trim()) {
        state.reject("bad_query");
        return bad_request(err.to_string());
    }
    let Ok(permit) = state.searches.clone().try_acquire_owned() else {
        state.reject("busy");
        let mut response = error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many searches at once (http.max_concurrent_searches); retry shortly",
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_static(SEARCH_RETRY_AFTER_SECS),
        );
        return response;
    };
    let searcher = state.app.searcher.clone();
    let searched = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        searcher.search_with(&request, &limits)
    })
    .await;
    match searched {
        Ok(Ok(mut results)) => {
            if !caller.raw_authors {
                state.pseudonyms.search_results(&mut results);
            }
            Json(results).into_response()
        }
        Ok(Err(vigie_index::IndexError::Query { message })) => {
            state.reject("bad_query");
            bad_request(message)
        }
        Ok(Err(err)) => {
            tracing::error!(error = %err, "search failed");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
        }
        Err(err) => error_response(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

/// Query parameters of `GET /api/v1/narratives`.
#[derive(Debug, Deserialize)]
pub(super) struct NarrativeParams {
    status: Option<NarrativeStatus>,
    min_severity: Option<Severity>,
    limit: Option<usize>,
}

pub(super) async fn list_narratives(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
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
    let mut narratives: Vec<_> = narratives.into_iter().cloned().collect();
    if !caller.raw_authors {
        narratives
            .iter_mut()
            .for_each(|n| state.pseudonyms.narrative(n));
    }
    Json(serde_json::json!({
        "narratives": narratives,
        "posts_observed": board.counters.posts_observed,
    }))
    .into_response()
}

pub(super) async fn get_narrative(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
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
    // A storyline lists the claims inside it (issue 8), most posts first.
    let mut claims: Vec<_> = board
        .narratives
        .iter()
        .filter(|n| n.parent == Some(narrative.id))
        .collect();
    claims.sort_by(|a, b| b.posts_total.cmp(&a.posts_total).then(a.id.cmp(&b.id)));
    let claims: Vec<_> = claims
        .into_iter()
        .map(|n| {
            serde_json::json!({
                "id": n.id,
                "label": n.label,
                "headline": n.headline,
                "severity": n.severity,
                "posts_total": n.posts_total,
            })
        })
        .collect();
    let mut narrative = narrative.clone();
    if !caller.raw_authors {
        state.pseudonyms.narrative(&mut narrative);
    }
    Json(serde_json::json!({
        "narrative": narrative,
        "claims": claims,
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

pub(super) async fn list_watchlists(State(state): State<Shared>) -> Response {
    let board = state.board();
    Json(serde_json::json!({ "watchlists": board.watchlists })).into_response()
}

/// Query parameters of `GET /api/v1/alerts`.
#[derive(Debug, Deserialize)]
pub(super) struct AlertParams {
    state: Option<String>,
    severity: Option<String>,
    acked: Option<bool>,
    silenced: Option<bool>,
}

pub(super) async fn list_alerts(
    State(state): State<Shared>,
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

pub(super) async fn list_silences(State(state): State<Shared>) -> Response {
    let board = state.board();
    Json(serde_json::json!({ "silences": board.silences })).into_response()
}
