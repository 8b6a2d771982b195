//! Author ids never leave over HTTP in clear: search hits and narratives show the same
//! salted HMAC pseudonyms as alerts ([`vigie_alert::pseudonymize`], keyed by
//! `alert.account_salt`), so an account can be followed across answers without being
//! named. Only a token with `raw_authors = true` sees raw ids.

use std::hash::{BuildHasher, Hasher};

use vigie_domain::{Narrative, Secret};
use vigie_index::SearchResults;

/// Replaces author ids by their pseudonyms.
#[derive(Clone)]
pub struct Pseudonymizer {
    salt: Secret,
}

impl Pseudonymizer {
    /// Keys pseudonyms with `salt`. An unset salt would make `HMAC("", id)`, which anyone
    /// can recompute to confirm who an account is; a random per-process salt replaces it
    /// (pseudonyms then change at each start and differ from the alerts').
    pub fn new(salt: &Secret) -> Pseudonymizer {
        if !salt.is_empty() {
            return Pseudonymizer { salt: salt.clone() };
        }
        tracing::warn!("alert.account_salt is unset; http pseudonyms use a per-process salt");
        // Each RandomState is keyed from the operating system's random source.
        let random: String = (0..4)
            .map(|_| {
                let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
                hasher.write_u8(0);
                format!("{:016x}", hasher.finish())
            })
            .collect();
        Pseudonymizer {
            salt: Secret::new(random),
        }
    }

    /// Returns the pseudonym of `account`.
    pub fn account(&self, account: &str) -> String {
        vigie_alert::pseudonymize(self.salt.expose(), account)
    }

    /// Pseudonymizes every hit's author.
    pub fn search_results(&self, results: &mut SearchResults) {
        for hit in &mut results.hits {
            if let Some(author) = &mut hit.author {
                *author = self.account(author);
            }
        }
    }

    /// Pseudonymizes the accounts a narrative's coordination evidence cites.
    pub fn narrative(&self, narrative: &mut Narrative) {
        let evidence = &mut narrative.coordination;
        for group in &mut evidence.near_duplicate_groups {
            for author in &mut group.authors {
                *author = self.account(author);
            }
        }
        for link in &mut evidence.shared_links {
            for author in &mut link.authors {
                *author = self.account(author);
            }
        }
        for (account, _) in &mut evidence.top_accounts {
            *account = self.account(account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_the_alerts_and_an_unset_salt_is_never_empty() {
        let salted = Pseudonymizer::new(&Secret::new("salt-0123456789"));
        assert_eq!(
            salted.account("troll_1"),
            vigie_alert::pseudonymize("salt-0123456789", "troll_1")
        );
        let unsalted = Pseudonymizer::new(&Secret::default());
        assert_ne!(
            unsalted.account("troll_1"),
            vigie_alert::pseudonymize("", "troll_1")
        );
        assert_eq!(unsalted.account("troll_1"), unsalted.account("troll_1"));
    }
}
