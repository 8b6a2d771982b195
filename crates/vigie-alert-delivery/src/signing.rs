//! Webhook signatures per the Standard Webhooks spec (<https://www.standardwebhooks.com>),
//! HMAC-SHA256.
//!
//! A signed request carries `webhook-id` (the notification id, the same on every retry),
//! `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`
//! (`v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`). A secret written
//! `whsec_<base64>` is decoded to its key bytes, as the spec's libraries do; any other
//! secret is used as raw bytes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use sha2::Sha256;

use crate::error::DeliveryError;

type HmacSha256 = Hmac<Sha256>;

/// The signing key of a webhook sink.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

impl WebhookSecret {
    /// Parses `whsec_<base64 key>`, or takes any other string as the raw key.
    pub fn parse(secret: &str) -> Result<WebhookSecret, DeliveryError> {
        let key = match secret.strip_prefix("whsec_") {
            Some(encoded) => STANDARD
                .decode(encoded)
                .map_err(|_| DeliveryError::BadSignature("whsec_ secret is not base64"))?,
            None => secret.as_bytes().to_vec(),
        };
        Ok(WebhookSecret { key })
    }

    /// Returns the `webhook-signature` header value for one message.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            STANDARD.encode(
                self.mac(message_id, timestamp, body)
                    .finalize()
                    .into_bytes()
            )
        )
    }

    fn mac(&self, message_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any size");
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

/// Verifies a Standard Webhooks request: one of the space-separated `v1,` signatures in
/// `webhook-signature` must match, compared in constant time. Freshness of
/// `webhook-timestamp` is the receiver's call (the spec suggests ±5 minutes), since this
/// crate reads no clock.
pub fn verify_standard_webhook(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), DeliveryError> {
    let secret = WebhookSecret::parse(secret)?;
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .ok_or(DeliveryError::BadSignature(name))
    };
    let id = header("webhook-id")?;
    let timestamp: i64 = header("webhook-timestamp")?
        .parse()
        .map_err(|_| DeliveryError::BadSignature("webhook-timestamp is not an integer"))?;
    let signatures = header("webhook-signature")?;
    for candidate in signatures.split(' ') {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(expected) = STANDARD.decode(encoded) else {
            continue;
        };
        if secret
            .mac(id, timestamp, body)
            .verify_slice(&expected)
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(DeliveryError::BadSignature("no matching v1 signature"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", HeaderValue::from_str(id).unwrap());
        headers.insert(
            "webhook-timestamp",
            HeaderValue::from_str(timestamp).unwrap(),
        );
        headers.insert(
            "webhook-signature",
            HeaderValue::from_str(signature).unwrap(),
        );
        headers
    }

    /// The test vector published with the Standard Webhooks reference libraries.
    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        verify_standard_webhook(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            &headers("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", &signature),
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
    }

    #[test]
    fn sign_then_verify_and_tampering_fails() {
        for secret in ["whsec_c2VjcmV0LWtleS1ieXRlcw==", "a raw shared secret"] {
            let key = WebhookSecret::parse(secret).unwrap();
            let body = br#"{"alert":1}"#;
            let signature = key.sign("vigie_1", 1_700_000_000, body);
            let good = headers("vigie_1", "1700000000", &format!("v1,bogus {signature}"));
            verify_standard_webhook(secret, &good, body).unwrap();
            assert!(verify_standard_webhook(secret, &good, br#"{"alert":2}"#).is_err());
            let other_id = headers("vigie_2", "1700000000", &signature);
            assert!(verify_standard_webhook(secret, &other_id, body).is_err());
            let other_time = headers("vigie_1", "1700000001", &signature);
            assert!(verify_standard_webhook(secret, &other_time, body).is_err());
            assert!(verify_standard_webhook("other", &good, body).is_err());
        }
    }
}
