//! SigniTrend's significance sketch: event-time rate statistics of hashed terms in a
//! fixed number of cells, whatever the vocabulary.
//!
//! Schubert, Weiler, Kriegel, "SigniTrend: scalable detection of emerging topics in
//! textual streams by hashed significance thresholds", KDD 2014. Each of `rows` hash
//! functions maps a term to one cell per row; a cell holds the term's post count in the
//! current window, the previous window's count and, over closed windows, an exponentially
//! weighted mean μ and variance σ² (Finch, "Incremental calculation of weighted mean and
//! variance", 2009). A term's significance is the smallest over its cells, so a collision
//! can only hide a burst, never invent one (as in a count-min sketch, collisions only add).
//!
//! Windows close lazily: a cell catches up with the windows it missed when it is next
//! touched, so the work per post is `rows` cells per term and nothing is swept on a timer.
//! That keeps detection a pure function of the event-time-ordered stream.
//! This module knows nothing of posts or narratives; the detector feeds it term hashes.

use serde::{Deserialize, Serialize};

/// Statistics of one hashed cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cell {
    /// Index of the window `count` belongs to.
    window: u32,
    /// Posts in that window so far.
    count: f32,
    /// Posts in the window just before it.
    previous: f32,
    /// EWMA of posts per closed window.
    mean: f32,
    /// EWMVar of posts per closed window.
    variance: f32,
}

/// Bytes one cell takes in memory.
pub(crate) const CELL_BYTES: usize = std::mem::size_of::<Cell>();

/// A term's significance in its window, from the cell that gave the smallest z.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Significance {
    /// z = (x − max(μ, β)) / (σ + β).
    pub z: f64,
    /// Posts in the sliding window (x).
    pub posts_in_window: f64,
    /// EWMA μ of posts per window.
    pub mean: f64,
    /// √EWMVar σ.
    pub std: f64,
}

/// Where the sketch is in event time, shared by all its cells.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WindowPosition {
    /// Index of the current window.
    pub window: u32,
    /// How far into it we are, 0 to 1.
    pub elapsed: f64,
    /// Weight the baselines have gathered since the stream started, 1 − (1 − α)^n after n
    /// windows: every cell starts at zero, so on a young stream the EWMA underestimates
    /// every rate by this factor (the same start-up bias Adam corrects). Dividing by it
    /// makes a fresh daemon judge terms against what it has actually seen. 1 when warm.
    pub warmth: f64,
}

/// One hashed significance table; see the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SignificanceSketch {
    rows: u32,
    /// Cells per row minus one (a power of two minus one).
    mask: u64,
    /// Saved as one packed byte string: a million cells written field by field as
    /// MessagePack maps took seconds (and three times the bytes) at every snapshot, which
    /// held up shutdown past its deadline.
    #[serde(with = "packed_cells")]
    cells: Vec<Cell>,
}

/// Serializes cells as little-endian bytes, 20 each (window, count, previous, mean,
/// variance).
mod packed_cells {
    use super::Cell;
    use serde::{de, Deserializer, Serializer};

    /// Bytes of one packed cell: a u32 and four f32.
    const CELL_BYTES: usize = 20;

    pub fn serialize<S: Serializer>(cells: &[Cell], serializer: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(cells.len() * CELL_BYTES);
        for cell in cells {
            bytes.extend_from_slice(&cell.window.to_le_bytes());
            bytes.extend_from_slice(&cell.count.to_le_bytes());
            bytes.extend_from_slice(&cell.previous.to_le_bytes());
            bytes.extend_from_slice(&cell.mean.to_le_bytes());
            bytes.extend_from_slice(&cell.variance.to_le_bytes());
        }
        serializer.serialize_bytes(&bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Cell>, D::Error> {
        struct CellsVisitor;
        impl<'de> de::Visitor<'de> for CellsVisitor {
            type Value = Vec<Cell>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a byte string of {CELL_BYTES}-byte cells")
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<Cell>, E> {
                if bytes.len() % CELL_BYTES != 0 {
                    return Err(E::invalid_length(bytes.len(), &self));
                }
                let word = |chunk: &[u8], at: usize| -> [u8; 4] {
                    [chunk[at], chunk[at + 1], chunk[at + 2], chunk[at + 3]]
                };
                Ok(bytes
                    .chunks_exact(CELL_BYTES)
                    .map(|chunk| Cell {
                        window: u32::from_le_bytes(word(chunk, 0)),
                        count: f32::from_le_bytes(word(chunk, 4)),
                        previous: f32::from_le_bytes(word(chunk, 8)),
                        mean: f32::from_le_bytes(word(chunk, 12)),
                        variance: f32::from_le_bytes(word(chunk, 16)),
                    })
                    .collect())
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Cell>, A::Error> {
                // Formats without a byte-string type write bytes as a sequence.
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 24));
                while let Some(byte) = seq.next_element::<u8>()? {
                    bytes.push(byte);
                }
                self.visit_bytes(&bytes)
            }
        }
        deserializer.deserialize_bytes(CellsVisitor)
    }
}

/// Seeds of the row hash functions (digits of π), fixed so that snapshots stay valid.
const ROW_SEEDS: [u64; 8] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
    0x4528_21e6_38d0_1377,
    0xbe54_66cf_34e9_0c6c,
    0xc0ac_29b7_c97c_50dd,
    0x3f84_d5b5_b547_0917,
];

impl SignificanceSketch {
    /// Returns an empty sketch of `rows` × `cells_per_row` (rounded up to a power of two).
    pub fn new(rows: u32, cells_per_row: u32) -> SignificanceSketch {
        let per_row = cells_per_row.max(2).next_power_of_two() as usize;
        SignificanceSketch {
            rows,
            mask: per_row as u64 - 1,
            cells: vec![Cell::default(); per_row * rows as usize],
        }
    }

    /// Returns the number of cells.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Returns the bytes the cells take; fixed at construction.
    pub fn memory_bytes(&self) -> usize {
        self.cells.len() * CELL_BYTES
    }

    fn cell_index(&self, row: u32, term: u64) -> usize {
        let per_row = self.mask + 1;
        let hashed = crate::hashing::mix64(term ^ ROW_SEEDS[row as usize]);
        (u64::from(row) * per_row + (hashed & self.mask)) as usize
    }

    /// Counts one post carrying `term` and returns the term's significance afterwards.
    pub fn observe(
        &mut self,
        term: u64,
        at: WindowPosition,
        stats: &BaselineParams,
    ) -> Significance {
        let mut best: Option<Significance> = None;
        for row in 0..self.rows {
            let index = self.cell_index(row, term);
            let cell = &mut self.cells[index];
            catch_up(cell, at.window, stats);
            cell.count += 1.0;
            let significance = significance(cell, at, stats.bias);
            if best.is_none_or(|b| significance.z < b.z) {
                best = Some(significance);
            }
        }
        best.expect("a sketch has at least one row")
    }

    /// Returns the term's current significance without counting anything.
    pub fn peek(&self, term: u64, at: WindowPosition, stats: &BaselineParams) -> Significance {
        let mut best: Option<Significance> = None;
        for row in 0..self.rows {
            let mut cell = self.cells[self.cell_index(row, term)];
            catch_up(&mut cell, at.window, stats);
            let significance = significance(&cell, at, stats.bias);
            if best.is_none_or(|b| significance.z < b.z) {
                best = Some(significance);
            }
        }
        best.expect("a sketch has at least one row")
    }
}

/// The parameters shared by all cells.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BaselineParams {
    /// Per-window EWMA weight.
    pub alpha: f64,
    /// SigniTrend's β, posts per window.
    pub bias: f64,
    /// Windows after which an untouched cell's baseline is negligible (2^-16 of itself).
    pub forget_after_windows: u32,
}

impl BaselineParams {
    /// Derives the parameters from the per-window weight and the bias.
    pub fn new(alpha: f64, bias: f64) -> BaselineParams {
        // (1 − α)^n = 2^-16  ⇔  n = 16 / −log2(1 − α).
        let forget = (16.0 / -(1.0 - alpha).log2()).ceil();
        BaselineParams {
            alpha,
            bias,
            forget_after_windows: forget.clamp(1.0, 100_000.0) as u32,
        }
    }
}

/// Folds the windows a cell missed into its baseline, so that it is in `window`.
fn catch_up(cell: &mut Cell, window: u32, stats: &BaselineParams) {
    if cell.window >= window {
        return;
    }
    let missed = window - cell.window;
    fold(cell, f64::from(cell.count), stats.alpha);
    let empty_windows = missed - 1;
    if empty_windows >= stats.forget_after_windows {
        cell.mean = 0.0;
        cell.variance = 0.0;
    } else {
        for _ in 0..empty_windows {
            fold(cell, 0.0, stats.alpha);
        }
    }
    cell.previous = if missed == 1 { cell.count } else { 0.0 };
    cell.count = 0.0;
    cell.window = window;
}

/// Adds one closed window's count to the EWMA and EWMVar (Finch 2009, eq. 143).
fn fold(cell: &mut Cell, count: f64, alpha: f64) {
    let mean = f64::from(cell.mean);
    let delta = count - mean;
    let new_mean = mean + alpha * delta;
    let new_variance = (1.0 - alpha) * (f64::from(cell.variance) + alpha * delta * delta);
    cell.mean = new_mean as f32;
    cell.variance = new_variance as f32;
}

/// Scores a cell: the current window plus the share of the previous window that the
/// sliding window still covers, against the baseline of whole windows.
fn significance(cell: &Cell, at: WindowPosition, bias: f64) -> Significance {
    let posts_in_window =
        f64::from(cell.count) + f64::from(cell.previous) * (1.0 - at.elapsed.clamp(0.0, 1.0));
    // Start-up bias correction (see `WindowPosition::warmth`); a cell that is all zeros
    // stays zero, so a term never seen still scores as new.
    let warmth = at.warmth.clamp(1e-6, 1.0);
    let mean = f64::from(cell.mean) / warmth;
    let std = (f64::from(cell.variance).max(0.0) / warmth).sqrt();
    Significance {
        z: signitrend_z(posts_in_window, mean, std, bias),
        posts_in_window,
        mean,
        std,
    }
}

/// Returns SigniTrend's significance z = (x − max(μ, β)) / (σ + β).
///
/// The bias β is the noise floor: a term never seen before (μ = σ = 0) scores
/// (x − β) / β, finite, and needs x = β (1 + z) posts to reach z; three posts against a
/// baseline of 0.1 with β = 1 give z = 2, a weak signal rather than noise or proof.
pub(crate) fn signitrend_z(posts_in_window: f64, mean: f64, std: f64, bias: f64) -> f64 {
    (posts_in_window - mean.max(bias)) / (std + bias)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(window: u32) -> WindowPosition {
        WindowPosition {
            warmth: 1.0,
            window,
            elapsed: 0.0,
        }
    }

    #[test]
    fn a_steady_term_is_not_significant_and_a_jump_is() {
        let params = BaselineParams::new(0.1, 1.0);
        let mut sketch = SignificanceSketch::new(4, 256);
        for window in 0..200 {
            for _ in 0..5 {
                sketch.observe(42, at(window), &params);
            }
        }
        let steady = sketch.peek(42, at(200), &params);
        assert!((steady.mean - 5.0).abs() < 0.1, "{steady:?}");
        let mut last = steady;
        for _ in 0..30 {
            last = sketch.observe(42, at(200), &params);
        }
        assert!(last.z > 10.0, "{last:?}");
        let mut quiet = SignificanceSketch::new(4, 256);
        let mut worst = f64::NEG_INFINITY;
        for window in 0..200 {
            for _ in 0..5 {
                worst = worst.max(quiet.observe(7, at(window), &params).z);
            }
        }
        // The first window of a new term is significant by design; after that, no.
        let after_warm_up = quiet.peek(7, at(200), &params).z;
        assert!(after_warm_up < 1.0 && worst > 0.0);
    }

    #[test]
    fn first_sightings_are_finite_and_low_counts_are_weak() {
        assert_eq!(signitrend_z(3.0, 0.1, 0.0, 1.0), 2.0);
        assert_eq!(signitrend_z(1.0, 0.0, 0.0, 1.0), 0.0);
    }

    #[test]
    fn an_idle_cell_forgets_its_baseline() {
        let params = BaselineParams::new(0.5, 1.0);
        let mut sketch = SignificanceSketch::new(2, 64);
        for _ in 0..50 {
            sketch.observe(1, at(0), &params);
        }
        let later = sketch.peek(1, at(1000), &params);
        assert_eq!((later.mean, later.std), (0.0, 0.0));
        assert_eq!(sketch.memory_bytes(), 2 * 64 * CELL_BYTES);
    }
}
