//! Stable 64-bit hashing of terms, term pairs and shingles, and MinHash signatures.
//!
//! Hashes are part of snapshots, so they are written out here (FNV-1a followed by the
//! SplitMix64 finaliser) rather than borrowed from `std`, whose hasher may change
//! between Rust releases.

use vigie_domain::TokenKind;

/// Number of MinHash functions per post signature.
pub(crate) const MINHASH_LEN: usize = 32;
/// Rows per LSH band: 8 bands of 4 rows find pairs at Jaccard 0.8 with probability
/// 1 − (1 − 0.8⁴)⁸ ≈ 0.985 and pairs at 0.3 with 1 − (1 − 0.3⁴)⁸ ≈ 0.06.
pub(crate) const LSH_ROWS: usize = 4;

/// Returns the SplitMix64 finaliser of `x`: a bijective mix with good avalanche.
pub(crate) fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Returns the FNV-1a hash of `bytes`, finalised.
pub(crate) fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    mix64(hash)
}

/// Returns the hash of a term of a kind; a hashtag and a word with the same text differ.
pub(crate) fn term_hash(kind: TokenKind, text: &str) -> u64 {
    let seed = match kind {
        TokenKind::Word | TokenKind::Variant => 1,
        TokenKind::Hashtag => 2,
        TokenKind::HashtagPart => 3,
        TokenKind::Mention => 4,
        TokenKind::Url => 5,
        TokenKind::Domain => 6,
        TokenKind::Emoji => 7,
    };
    hash_bytes(seed, text.as_bytes())
}

/// Returns the hash of an unordered pair of term hashes.
pub(crate) fn pair_hash(a: u64, b: u64) -> u64 {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    mix64(low.rotate_left(29) ^ mix64(high))
}

/// Returns the MinHash signature of a set of shingle hashes (Broder 1997): per function,
/// the smallest permuted hash. `None` when there are no shingles.
pub(crate) fn minhash(shingles: &[u64]) -> Option<[u32; MINHASH_LEN]> {
    if shingles.is_empty() {
        return None;
    }
    let mut signature = [u32::MAX; MINHASH_LEN];
    for &shingle in shingles {
        for (i, slot) in signature.iter_mut().enumerate() {
            let permuted =
                (mix64(shingle ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 32) as u32;
            *slot = (*slot).min(permuted);
        }
    }
    Some(signature)
}

/// Returns the estimated Jaccard similarity of two signatures: the share of agreeing
/// functions.
pub(crate) fn estimated_jaccard(a: &[u32; MINHASH_LEN], b: &[u32; MINHASH_LEN]) -> f64 {
    let agreeing = a.iter().zip(b).filter(|(x, y)| x == y).count();
    agreeing as f64 / MINHASH_LEN as f64
}

/// Returns the LSH band keys of a signature, one per band, tagged with the band index.
pub(crate) fn band_keys(signature: &[u32; MINHASH_LEN]) -> impl Iterator<Item = u64> + '_ {
    signature.chunks(LSH_ROWS).enumerate().map(|(band, rows)| {
        let mut key = band as u64;
        for row in rows {
            key = mix64(key ^ u64::from(*row));
        }
        key
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_pairs_unordered() {
        assert_eq!(
            term_hash(TokenKind::Word, "hebdo"),
            term_hash(TokenKind::Word, "hebdo")
        );
        assert_ne!(
            term_hash(TokenKind::Word, "hebdo"),
            term_hash(TokenKind::Hashtag, "hebdo")
        );
        assert_eq!(pair_hash(1, 2), pair_hash(2, 1));
        // Pinned so that a change of hash function, which would invalidate snapshots,
        // is noticed.
        assert_eq!(hash_bytes(0, b""), mix64(0xcbf2_9ce4_8422_2325));
    }

    #[test]
    fn minhash_estimates_jaccard() {
        let a: Vec<u64> = (0..100).collect();
        let b: Vec<u64> = (0..100).chain(100..110).collect();
        let c: Vec<u64> = (1000..1100).collect();
        let (sa, sb, sc) = (
            minhash(&a).unwrap(),
            minhash(&b).unwrap(),
            minhash(&c).unwrap(),
        );
        assert!(estimated_jaccard(&sa, &sb) > 0.7);
        assert!(estimated_jaccard(&sa, &sc) < 0.2);
        assert_eq!(band_keys(&sa).count(), MINHASH_LEN / LSH_ROWS);
        assert!(minhash(&[]).is_none());
    }
}
