//! Deterministic synthetic post streams.

/// A small deterministic pseudo-random generator (64-bit LCG, Knuth's MMIX constants), so
/// synthetic streams are the same on every run without a `rand` dependency.
#[derive(Debug, Clone)]
pub struct Lcg(u64);

impl Lcg {
    /// Returns a generator seeded with `seed`.
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// Returns the next 31 random bits.
    pub fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }

    /// Returns a number in `low..=high` (slightly biased for huge ranges; fine for tests).
    pub fn range(&mut self, low: u32, high: u32) -> u32 {
        low + self.next_u32() % (high - low + 1)
    }
}

/// Event time at which [`synthetic_hoax_stream`] starts: 2024-03-01T00:00:00Z.
pub const SYNTHETIC_START_UNIX: i64 = 1_709_251_200;

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The text of every post of the coordinated hoax in [`synthetic_hoax_stream`] (with the
/// link suffix `a0`, `a1` or `a2`).
pub const HOAX_TEXT: &str =
    "BREAKING: harbour fire was set on purpose by migrants, police hide the truth #HarbourFire http://hoax.example.com/a";

/// Returns a deterministic JSONL stream of 8 hours of posts from 2024-03-01T00:00:00Z in
/// which one coordinated narrative fires and then fades:
/// - background: 2 posts a minute (at :00 and :20) from 300 accounts (`user1`…`user300`),
///   "Today the W1 and the W2 near the W3 W4 N" with 4 distinct generic English words and a
///   random number;
/// - from 04:00 to 04:20, 80 near-identical posts (one every 15 s) from 60 accounts
///   (`troll0`…`troll59`): [`HOAX_TEXT`] followed by `0`, `1` or `2`.
///
/// Posts are in `created_at` order (background first at equal times). A port of the
/// Python generator that was checked with `vigie replay` and a file sink: with
/// `resolve_after_secs = 600`, `keep_firing_for_secs = 300` and `group_wait_secs = 0` the
/// hoax alert ("harbour migrant truth polic break #harbourfire") fires at about 04:02,
/// is updated to critical and resolves at about 06:10. A background narrative also fires
/// at about 00:04 (cold start: every word bursts while baselines are empty).
pub fn synthetic_hoax_stream() -> String {
    const WORDS: [&str; 20] = [
        "city", "council", "meeting", "traffic", "weather", "football", "market", "school",
        "concert", "rain", "train", "museum", "park", "festival", "bakery", "library", "election",
        "budget", "hospital", "bridge",
    ];
    let mut rng = Lcg::new(7);
    // (event time, order of creation, line)
    let mut posts: Vec<(i64, usize, String)> = Vec::new();
    let mut i = 0;
    for minute in 0..8 * 60 {
        for k in 0..2 {
            i += 1;
            let mut pool: Vec<&str> = WORDS.to_vec();
            let mut words = Vec::with_capacity(4);
            for _ in 0..4 {
                let pick = rng.range(0, pool.len() as u32 - 1) as usize;
                words.push(pool.swap_remove(pick));
            }
            let author = rng.range(1, 300);
            let number = rng.range(1, 1_000_000);
            let at = SYNTHETIC_START_UNIX + minute * 60 + k * 20;
            let post = serde_json::json!({
                "id": format!("bg{i}"),
                "created_at": rfc3339(at),
                "author": format!("user{author}"),
                "lang": "en",
                "text": format!(
                    "Today the {} and the {} near the {} {} {number}",
                    words[0], words[1], words[2], words[3]
                ),
            });
            posts.push((at, posts.len(), post.to_string()));
        }
    }
    for j in 0..80i64 {
        let at = SYNTHETIC_START_UNIX + 240 * 60 + j * 15;
        let post = serde_json::json!({
            "id": format!("hoax{j}"),
            "created_at": rfc3339(at),
            "author": format!("troll{}", j % 60),
            "lang": "en",
            "text": format!("{HOAX_TEXT}{}", j % 3),
        });
        posts.push((at, posts.len(), post.to_string()));
    }
    posts.sort_by_key(|(at, order, _)| (*at, *order));
    let mut out = String::new();
    for (_, _, line) in posts {
        out.push_str(&line);
        out.push('\n');
    }
    out
}
