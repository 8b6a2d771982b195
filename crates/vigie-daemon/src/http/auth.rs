//! Who may do what: the Host allowlist (DNS rebinding), the Origin / `Sec-Fetch-Site`
//! check on state-changing requests (CSRF), and bearer tokens with roles.
//!
//! One middleware wraps every route. What a request needs follows from its method and path,
//! not from a list kept next to each handler, so a new route cannot be forgotten: `GET` and
//! `HEAD` need `read`, every other method needs `write`; `/healthz` and `/readyz` need
//! nothing (probes carry no token and learn nothing); `/` is the page's static HTML, which
//! holds no data and must load for the login box to show.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::config::{HttpSettings, Role};
use crate::metrics::Metrics;

/// The reasons of `vigie_http_requests_rejected_total`.
pub const REJECT_REASONS: [&str; 8] = [
    "host",
    "origin",
    "unauthenticated",
    "forbidden",
    "too_large",
    "timeout",
    "busy",
    "bad_query",
];

/// Who is calling, as the handlers see it (a request extension).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name, or `anonymous` when no token is configured.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Whether it sees raw author ids.
    pub raw_authors: bool,
}

/// What the access middleware shares.
#[derive(Clone)]
pub struct Access {
    /// The checked settings.
    pub settings: Arc<HttpSettings>,
    /// Where rejections are counted.
    pub metrics: Metrics,
}

impl Access {
    /// Counts one rejection.
    pub fn reject(&self, reason: &'static str) {
        debug_assert!(REJECT_REASONS.contains(&reason));
        self.metrics
            .http_requests_rejected
            .with_label_values(&[reason])
            .inc();
    }
}

/// Answers `status` with a JSON `{"error": message}` body.
pub fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Nothing at all (probes).
    Nothing,
    /// Only a valid Host (the static page).
    Host,
    /// A `read` token.
    Read,
    /// A `write` token, and a same-origin request.
    Write,
}

fn need(method: &Method, path: &str, metrics_public: bool) -> Need {
    let reads = method == Method::GET || method == Method::HEAD;
    match path {
        "/healthz" | "/readyz" if reads => Need::Nothing,
        "/" if reads => Need::Host,
        "/metrics" if reads && metrics_public => Need::Host,
        _ if reads => Need::Read,
        _ => Need::Write,
    }
}

/// The middleware: checks Host, Origin and token, records the [`Caller`], and counts the
/// 408, 413 and 503 answers of the layers inside it.
pub async fn check_access(
    State(access): State<Access>,
    mut request: Request,
    next: Next,
) -> Response {
    let settings = &access.settings;
    let need = need(
        request.method(),
        request.uri().path(),
        settings.metrics_public,
    );
    if need == Need::Nothing {
        return next.run(request).await;
    }
    if let Some(allowed) = &settings.allowed_hosts {
        if !host_allowed(request.headers(), allowed) {
            access.reject("host");
            tracing::debug!(host = ?request.headers().get(header::HOST), "refused a request for another host");
            return error_response(
                StatusCode::MISDIRECTED_REQUEST,
                "this server does not answer to that Host; add it to http.allowed_hosts",
            );
        }
    }
    if need == Need::Write {
        if let Err(message) = same_origin(request.headers()) {
            access.reject("origin");
            return error_response(StatusCode::FORBIDDEN, message);
        }
    }
    let caller = if settings.tokens.is_empty() {
        Caller {
            name: "anonymous".into(),
            role: Role::Write,
            raw_authors: false,
        }
    } else if need == Need::Host {
        Caller {
            name: "anonymous".into(),
            role: Role::Read,
            raw_authors: false,
        }
    } else {
        match authenticate(request.headers(), settings) {
            Some(caller) => caller,
            None => {
                access.reject("unauthenticated");
                let mut response = error_response(
                    StatusCode::UNAUTHORIZED,
                    "a valid token is needed: send Authorization: Bearer TOKEN",
                );
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"vigie\""),
                );
                return response;
            }
        }
    };
    if need == Need::Write && caller.role < Role::Write {
        access.reject("forbidden");
        return error_response(
            StatusCode::FORBIDDEN,
            format!(
                "token {:?} has role read; this needs a write token",
                caller.name
            ),
        );
    }
    request.extensions_mut().insert(caller);
    let response = next.run(request).await;
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => access.reject("too_large"),
        StatusCode::REQUEST_TIMEOUT => access.reject("timeout"),
        _ => {}
    }
    response
}

/// Finds the token the request carries, comparing with every configured token in constant
/// time and without stopping at the first match, so timing tells neither whether nor which
/// token matched.
fn authenticate(headers: &HeaderMap, settings: &HttpSettings) -> Option<Caller> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, presented) = value.split_at(value.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let presented = presented.trim_ascii();
    let mut found = None;
    for token in &settings.tokens {
        let matches = token.token.ct_eq(presented);
        if matches && found.is_none() {
            found = Some(token);
        }
    }
    found.map(|token| Caller {
        name: token.name.clone(),
        role: token.role,
        raw_authors: token.raw_authors,
    })
}

/// Tells whether the `Host` header names this server. A request without one (HTTP/1.0)
/// comes from no browser, which always sends it, and is let through.
fn host_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(host) = headers.get(header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let host = host.trim().to_ascii_lowercase();
    allowed.contains(&host) || allowed.iter().any(|a| a == strip_port(&host))
}

/// Returns `host` without its `:port`, keeping IPv6 brackets.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
}

/// Refuses a state-changing request that a browser says comes from another site.
///
/// Browsers send `Sec-Fetch-Site` (computed by the browser, not settable by a page) and
/// `Origin` on cross-origin requests; only `same-origin` and `none` (typed by the user)
/// pass, and an `Origin` must name the Host the request was sent to. Clients that are not
/// browsers (curl, scripts, Alertmanager) send neither and pass.
fn same_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => Ok(()),
            _ => Err("cross-site request refused (Sec-Fetch-Site)"),
        };
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .unwrap_or("null")
        .trim()
        .to_ascii_lowercase();
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.trim().to_ascii_lowercase());
    match (authority, host) {
        (Some(authority), Some(host)) if authority == host => Ok(()),
        _ => Err("cross-origin request refused (Origin does not match Host)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn methods_and_paths_decide_what_is_needed() {
        assert_eq!(need(&Method::GET, "/healthz", false), Need::Nothing);
        assert_eq!(need(&Method::GET, "/", false), Need::Host);
        assert_eq!(need(&Method::GET, "/metrics", false), Need::Read);
        assert_eq!(need(&Method::GET, "/metrics", true), Need::Host);
        assert_eq!(need(&Method::GET, "/api/v1/search", false), Need::Read);
        assert_eq!(need(&Method::POST, "/api/v1/silences", false), Need::Write);
        assert_eq!(
            need(&Method::DELETE, "/api/v1/watchlists/x", false),
            Need::Write
        );
        // A write method on a probe path is not a probe.
        assert_eq!(need(&Method::POST, "/healthz", false), Need::Write);
    }

    #[test]
    fn host_allowlist_accepts_ports_and_refuses_other_names() {
        let allowed = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "[::1]".to_owned(),
        ];
        for ok in [
            "localhost:9464",
            "127.0.0.1:9464",
            "[::1]:9464",
            "LOCALHOST",
        ] {
            assert!(host_allowed(&headers(&[("host", ok)]), &allowed), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:9464",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
        ] {
            assert!(!host_allowed(&headers(&[("host", bad)]), &allowed), "{bad}");
        }
    }

    #[test]
    fn cross_site_writes_are_refused_and_curl_passes() {
        assert!(same_origin(&headers(&[])).is_ok());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(same_origin(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-site")])).is_err());
        let host = ("host", "127.0.0.1:9464");
        assert!(same_origin(&headers(&[host, ("origin", "http://127.0.0.1:9464")])).is_ok());
        assert!(same_origin(&headers(&[host, ("origin", "http://evil.example")])).is_err());
        assert!(same_origin(&headers(&[host, ("origin", "null")])).is_err());
    }
}
