//! Feature encodings shared by the fast paths: fingerprints (bits, or counts as a thermometer
//! code) become packed words plus a per-row norm, so Tanimoto and MinMax are the same
//! popcount kernel `k = c / (|a| + |b| − c)` with `c = popcount(a & b)`.
//!
//! MinMax through the thermometer code: `min(a, b) = Σ_t [a ≥ t][b ≥ t]`. Keeping only the
//! (feature, level) pairs that occur in the labeled set is exact for every pool row, because a
//! level above a feature's largest labeled count contributes nothing to the minimum; the norm
//! `|a|` is the full sum of the pool row's counts, so `Σ max = |a| + |b| − Σ min` stays exact.
//! The code is about as wide as the bit fingerprint itself (counts above 1 are rare).

use std::ops::Range;

use crate::data::{words_for, Features};

/// Packed rows and their norms, ready for the popcount kernel.
#[derive(Clone, Debug, Default)]
pub struct Packed {
    /// Words per row.
    pub words: usize,
    /// `rows × words` words.
    pub data: Vec<u64>,
    /// Per-row norm: popcount for bits, the sum of counts for count rows.
    pub norms: Vec<f32>,
}

impl Packed {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.norms.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.norms.is_empty()
    }
}

/// The widest thermometer code of count fingerprints, in bits (2^24): each labeled row is
/// held in this many bits, so the largest counts, summed over the features, set the memory of
/// the scoring.
pub const MAX_CODE_BITS: usize = 1 << 24;

/// Refuses count fingerprints whose thermometer code (the sum over features of the largest
/// count of each) would be wider than [`MAX_CODE_BITS`]; bits and dense features pass.
pub fn check_count_code(rows: &Features) -> crate::Result<()> {
    let Features::Counts {
        ndim,
        indices,
        values,
        ..
    } = rows
    else {
        return Ok(());
    };
    let mut levels = std::collections::HashMap::<u32, u32>::new();
    for (&f, &c) in indices.iter().zip(values) {
        let l = levels.entry(f).or_insert(0);
        *l = (*l).max(c);
    }
    let bits: u64 = levels.values().map(|&l| u64::from(l)).sum();
    if bits > MAX_CODE_BITS as u64 {
        return Err(crate::Error::LimitExceeded {
            what: format!(
                "bits to encode the labeled count fingerprints ({ndim} features; the sum over \
                 features of the largest count: are the counts real?)"
            ),
            requested: bits,
            max: MAX_CODE_BITS as u64,
        });
    }
    Ok(())
}

/// The thermometer layout of count fingerprints: feature `f` occupies `levels[f]` bits from
/// bit `offset[f]`.
#[derive(Clone, Debug)]
pub struct LevelCode {
    offset: Vec<u32>,
    levels: Vec<u32>,
    nbits: usize,
}

impl LevelCode {
    /// The layout covering every (feature, level) pair of `train` (count features).
    pub fn from_train(train: &Features) -> Self {
        let Features::Counts {
            ndim,
            indices,
            values,
            ..
        } = train
        else {
            panic!("LevelCode::from_train needs count features");
        };
        let mut levels = vec![0u32; *ndim];
        for (&f, &c) in indices.iter().zip(values) {
            let l = &mut levels[f as usize];
            *l = (*l).max(c);
        }
        let mut offset = Vec::with_capacity(*ndim);
        let mut at = 0u32;
        for &l in &levels {
            offset.push(at);
            // Callers check the width first (`check_count_code`); saturating keeps an
            // unchecked caller from overflowing.
            at = at.saturating_add(l);
        }
        LevelCode {
            offset,
            levels,
            nbits: at as usize,
        }
    }

    /// Width of the code in bits.
    pub fn nbits(&self) -> usize {
        self.nbits
    }

    /// Encodes rows `range` of `rows` (count features) into `out`, replacing its contents.
    pub fn encode_into(&self, rows: &Features, range: Range<usize>, out: &mut Packed) {
        let words = words_for(self.nbits).max(1);
        out.words = words;
        out.data.clear();
        out.norms.clear();
        for r in range {
            let (idx, val) = rows.counts_row(r).expect("count features");
            let base = out.data.len();
            out.data.resize(base + words, 0);
            let row = &mut out.data[base..];
            let mut norm = 0u64;
            for (&f, &c) in idx.iter().zip(val) {
                norm += u64::from(c);
                let f = f as usize;
                // Features beyond the labeled width cannot overlap any labeled row.
                let (Some(&start), Some(&lv)) = (self.offset.get(f), self.levels.get(f)) else {
                    continue;
                };
                for b in start..start + c.min(lv) {
                    row[b as usize / 64] |= 1 << (b % 64);
                }
            }
            out.norms.push(norm as f32);
        }
    }
}

/// How rows are encoded against a labeled side of fingerprints (the rows a kernel block
/// compares every other row with): counts through the side's thermometer code (MinMax), bits
/// packed as they are (Tanimoto). The CPU and GPU backends both encode through it, so they see
/// the same words.
#[derive(Clone, Debug)]
pub enum SideCode {
    /// Bit fingerprints, packed as they are.
    Bits,
    /// Count fingerprints, through the side's thermometer code.
    Levels(LevelCode),
}

impl SideCode {
    /// The code of the labeled side `side` and `side` encoded with it; `None` for dense
    /// features (they have no popcount block).
    pub fn of(side: &Features) -> Option<(Self, Packed)> {
        let code = match side {
            Features::Counts { .. } => SideCode::Levels(LevelCode::from_train(side)),
            Features::Bits { .. } => SideCode::Bits,
            Features::Dense { .. } => return None,
        };
        let mut packed = Packed::default();
        code.encode_into(side, 0..side.len(), &mut packed);
        Some((code, packed))
    }

    /// Encodes rows `range` of `rows` (the side's kind of fingerprints) into `out`, replacing
    /// its contents.
    pub fn encode_into(&self, rows: &Features, range: Range<usize>, out: &mut Packed) {
        match self {
            SideCode::Levels(code) => code.encode_into(rows, range, out),
            SideCode::Bits => pack_bits_into(rows, range, out),
        }
    }
}

/// Packs bit rows `range` with their popcounts into `out`, replacing its contents.
pub fn pack_bits_into(rows: &Features, range: Range<usize>, out: &mut Packed) {
    let Features::Bits { nbits, data } = rows else {
        panic!("pack_bits_into needs bit features");
    };
    out.words = words_for(*nbits).max(1);
    out.data.clear();
    out.norms.clear();
    if *nbits == 0 {
        out.data.resize(range.len(), 0);
        out.norms.resize(range.len(), 0.0);
        return;
    }
    out.data
        .extend_from_slice(&data[range.start * out.words..range.end * out.words]);
    out.norms.extend(
        out.data
            .chunks_exact(out.words)
            .map(|r| r.iter().map(|w| w.count_ones()).sum::<u32>() as f32),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::minmax;

    fn counts(rows: &[&[(u32, u32)]], ndim: usize) -> Features {
        let mut indptr = vec![0];
        let (mut indices, mut values) = (vec![], vec![]);
        for r in rows {
            for &(i, v) in *r {
                indices.push(i);
                values.push(v);
            }
            indptr.push(indices.len());
        }
        Features::Counts {
            ndim,
            indptr,
            indices,
            values,
        }
    }

    #[test]
    fn thermometer_code_gives_exact_minmax() {
        let train = counts(&[&[(0, 3), (2, 1)], &[(1, 2), (2, 5)], &[]], 6);
        // Pool rows with counts above the labeled maxima and features absent from training.
        let pool = counts(
            &[&[(0, 7), (1, 1), (2, 2), (5, 4)], &[(2, 5)], &[], &[(4, 9)]],
            6,
        );
        let code = LevelCode::from_train(&train);
        assert_eq!(code.nbits(), 3 + 2 + 5);
        let (mut pt, mut pp) = (Packed::default(), Packed::default());
        code.encode_into(&train, 0..train.len(), &mut pt);
        code.encode_into(&pool, 0..pool.len(), &mut pp);
        for i in 0..pool.len() {
            for j in 0..train.len() {
                let (a, b) = (
                    &pp.data[i * pp.words..][..pp.words],
                    &pt.data[j * pt.words..][..pt.words],
                );
                let c: u32 = a.iter().zip(b).map(|(x, y)| (x & y).count_ones()).sum();
                let den = pp.norms[i] + pt.norms[j] - c as f32;
                let k = if den == 0.0 {
                    1.0
                } else {
                    c as f64 / f64::from(den)
                };
                let want = minmax(pool.counts_row(i).unwrap(), train.counts_row(j).unwrap());
                assert!((k - want).abs() < 1e-12, "row {i} vs {j}: {k} vs {want}");
            }
        }
    }
}
