//! Digests of the policy: account pseudonyms (HMAC-SHA256 keyed by the salt) and the
//! SHA-256 prefixes that make alert fingerprints, notification ids and silence ids.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Returns the pseudonym of an account: the first 12 hex digits of HMAC-SHA256 keyed by
/// `salt`. Stable for a given salt; not reversible without it.
pub fn pseudonymize(salt: &str, account: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(salt.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(account.as_bytes());
    hex_prefix(&mac.finalize().into_bytes(), 12)
}

/// Returns the first `digits` hex digits of `bytes`.
pub(crate) fn hex_prefix(bytes: &[u8], digits: usize) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(digits + 1);
    for byte in bytes {
        if out.len() >= digits {
            break;
        }
        let _ = write!(out, "{byte:02x}");
    }
    out.truncate(digits);
    out
}

/// Returns the first `digits` hex digits of SHA-256 over `parts`, each followed by a NUL
/// so that ("ab", "c") and ("a", "bc") differ.
pub(crate) fn sha256_hex(parts: &[&str], digits: usize) -> String {
    use sha2::Digest;
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex_prefix(&hasher.finalize(), digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_salted_and_short() {
        let a = pseudonymize("salt", "account-1");
        assert_eq!(a.len(), 12);
        assert_eq!(a, pseudonymize("salt", "account-1"));
        assert_ne!(a, pseudonymize("other salt", "account-1"));
        assert_ne!(a, pseudonymize("salt", "account-2"));
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
