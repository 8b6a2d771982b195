//! Link normalisation: reduces a link to one canonical term so that the same article shared
//! with different tracking tags counts as one link.
//!
//! The normal form is `host[:port]path[?query]`: no scheme (the `http` and `https` forms of a
//! link are the same link for detection), host lowercase (IDNs in punycode, as the `url`
//! crate gives them) without `www.`, default port dropped, path kept as is (paths are case
//! sensitive: `t.co/Q8xijNPhGJ`), a bare `/` path dropped, tracking parameters removed, the
//! remaining parameters sorted, fragment dropped. Finding links in text is `scan`'s job.

use url::Url;

/// Query parameters that only say who shared a link or how, compared case-insensitively.
/// `utm_*` is matched by prefix. `s` and `si` are the share tokens of X/Twitter and of
/// YouTube/Spotify; `ref`/`ref_src`/`ref_url` are referrer tags; the rest are ad and mail
/// click ids (Google, Facebook, Microsoft, X, TikTok, Yandex, Instagram, Mailchimp,
/// HubSpot, Marketo, Alibaba's `spm`, the New York Times' `smid`, Microsoft's `ocid`).
const TRACKING_PARAMS: &[&str] = &[
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "twclid", "ttclid", "yclid",
    "igshid", "igsh", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "spm", "ref",
    "ref_src", "ref_url", "s", "si", "smid", "cmpid", "ocid",
];

/// A link reduced to its normal form, and its domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NormalizedUrl {
    /// `host[:port]path[?query]`, see the module doc.
    pub(crate) url: String,
    /// The host without `www.`.
    pub(crate) domain: String,
}

/// Returns the normal form of an `http(s)://` or `www.` link, or `None` when it does not
/// parse as a web link with a host.
pub(crate) fn normalize_url(raw: &str) -> Option<NormalizedUrl> {
    // Bytes, not `raw[..4]`: producer-given links may put a multi-byte char across byte 4.
    let parsed = if raw
        .as_bytes()
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"www."))
    {
        Url::parse(&format!("http://{raw}")).ok()?
    } else {
        Url::parse(raw).ok()?
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let host = parsed.host_str()?;
    let host = host.strip_prefix("www.").unwrap_or(host);
    if host.is_empty() {
        return None;
    }

    let mut url = String::with_capacity(raw.len());
    url.push_str(host);
    if let Some(port) = parsed.port() {
        url.push(':');
        url.push_str(&port.to_string());
    }
    if parsed.path() != "/" {
        url.push_str(parsed.path());
    }
    if parsed.query().is_some() {
        let mut params: Vec<(String, String)> = parsed
            .query_pairs()
            .filter(|(key, _)| !is_tracking_param(key))
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        if !params.is_empty() {
            params.sort_unstable();
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            url.push('?');
            url.push_str(&query);
        }
    }
    Some(NormalizedUrl {
        url,
        domain: host.to_owned(),
    })
}

fn is_tracking_param(key: &str) -> bool {
    let is_utm = key.len() > 4 && key.as_bytes()[..4].eq_ignore_ascii_case(b"utm_");
    is_utm || TRACKING_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> (String, String) {
        let n = normalize_url(raw).expect("a web link");
        (n.url, n.domain)
    }

    #[test]
    fn tracking_parameters_and_fragment_are_dropped() {
        let (url, domain) = norm(
            "https://www.NYTimes.com/2015/11/14/world/europe/paris.html?utm_source=twitter&smid=tw-nytimes&id=3&utm_medium=social#comments",
        );
        assert_eq!(url, "nytimes.com/2015/11/14/world/europe/paris.html?id=3");
        assert_eq!(domain, "nytimes.com");
    }

    #[test]
    fn remaining_parameters_are_sorted() {
        assert_eq!(
            norm("http://example.org/a?b=2&a=1&fbclid=xyz").0,
            "example.org/a?a=1&b=2"
        );
        assert_eq!(
            norm("http://example.org/a?UTM_Campaign=x").0,
            "example.org/a"
        );
    }

    #[test]
    fn scheme_default_port_and_root_slash_are_dropped() {
        assert_eq!(norm("HTTP://Example.ORG:80/").0, "example.org");
        assert_eq!(norm("https://example.org:443").0, "example.org");
        assert_eq!(norm("https://example.org:8443/x").0, "example.org:8443/x");
        assert_eq!(norm("http://example.org/"), norm("https://www.example.org"));
    }

    #[test]
    fn short_links_keep_their_case_sensitive_path() {
        assert_eq!(
            norm("https://t.co/Q8xijNPhGJ"),
            ("t.co/Q8xijNPhGJ".into(), "t.co".into())
        );
    }

    #[test]
    fn www_links_without_scheme_are_accepted() {
        assert_eq!(
            norm("www.bbc.co.uk/news?ref=tw"),
            ("bbc.co.uk/news".into(), "bbc.co.uk".into())
        );
    }

    #[test]
    fn non_web_links_are_rejected() {
        assert!(normalize_url("mailto:someone@example.org").is_none());
        assert!(normalize_url("http://").is_none());
        assert!(normalize_url("not a link").is_none());
    }

    #[test]
    fn a_multibyte_char_across_byte_four_is_not_a_panic() {
        assert!(normalize_url("ab€").is_none());
        assert!(normalize_url("www€.example").is_none());
    }
}
