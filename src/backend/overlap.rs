//! The fingerprint kernel block: `ks[i][j] = s2 · c / (|a_i| + |b_j| − c)` with
//! `c = popcount(a_i & b_j)` (Tanimoto on bits, MinMax through the thermometer code).
//!
//! Fingerprints are sparse (Morgan: about 49 of 2048 bits set), so instead of `n` popcounts of
//! `words` words per pool row, the labeled set is stored transposed as one byte column per bit
//! (`columns[bit][j] = 1` when labeled row `j` has the bit), and the overlaps of a pool row with
//! every labeled row are the byte-wise sum of the columns of its set bits: `|a| · n / 64` vector
//! adds instead of about `n · words / 2` operations, some 10× fewer for Morgan fingerprints. Byte
//! counters cannot overflow because `c ≤ |b_j|`, and the columns are only built when every
//! labeled row has at most 255 bits set; dense rows fall back to word-wise popcounts.

use std::ops::Range;

use super::encode::{Packed, SideCode};
use crate::data::Features;

/// A set of fingerprint rows as the labeled side of the kernel block, with how pool rows are
/// encoded against it ([`SideCode`]).
pub struct PopcountSide {
    train: OverlapTrain,
    code: SideCode,
}

impl PopcountSide {
    /// Prepares `rows`; `None` for dense features (they have no popcount block).
    pub fn new(rows: &Features) -> Option<Self> {
        let (code, packed) = SideCode::of(rows)?;
        Some(PopcountSide {
            train: OverlapTrain::new(packed),
            code,
        })
    }

    /// Fills `ks` (row-major `range.len() × n`) with `s2 · k(tile rows in range, side)`;
    /// `packed` and `counts` are scratch.
    pub fn block<O: KsOut>(
        &self,
        tile: &Features,
        range: Range<usize>,
        s2: f32,
        packed: &mut Packed,
        counts: &mut Vec<u8>,
        ks: &mut [O],
    ) {
        self.code.encode_into(tile, range, packed);
        self.train.block(packed, s2, ks, counts);
    }
}

/// The Gram matrix `k(X, X)` of fingerprint rows (Tanimoto on bits, MinMax on counts), row-major
/// `n × n`, `f64`: the same bits as [`crate::kernel::Kernel::gram`] (both are the ratio of the
/// same exact integer counts), through the overlap block instead of one pair at a time.
/// `None` for dense features.
pub fn fingerprint_gram(x: &Features) -> Option<Vec<f64>> {
    use rayon::prelude::*;
    const ROWS: usize = 64;
    let side = PopcountSide::new(x)?;
    let n = x.len();
    let mut out = vec![0f64; n * n];
    out.par_chunks_mut(ROWS * n.max(1))
        .enumerate()
        .for_each_init(
            || (Packed::default(), Vec::new()),
            |(packed, counts), (c, block)| {
                let r0 = c * ROWS;
                side.block(x, r0..r0 + block.len() / n, 1.0, packed, counts, block);
            },
        );
    Some(out)
}

/// The labeled side, packed and (when it pays) transposed.
pub struct OverlapTrain {
    packed: Packed,
    columns: Option<Columns>,
}

/// One byte column per bit over the labeled rows, each padded to `n_pad` bytes (a multiple of
/// [`SUM_BLOCK`]), from `start` of `bytes`: the first cache-line boundary, so that every
/// block [`column_sums`] loads is whole cache lines whatever the allocator returns (glibc's
/// large blocks start 16 bytes past a page, and loads across lines made the block ~30% slower
/// in a Python process than in the command line's mimalloc).
struct Columns {
    n_pad: usize,
    start: usize,
    bytes: Vec<u8>,
}

impl Columns {
    fn data(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

impl OverlapTrain {
    /// Prepares the labeled rows.
    pub fn new(packed: Packed) -> Self {
        let n = packed.len();
        let columns = (packed.norms.iter().all(|&c| c <= 255.0) && n > 0).then(|| {
            let n_pad = n.next_multiple_of(SUM_BLOCK);
            let nbits = packed.words * 64;
            let len = nbits * n_pad;
            let mut bytes = vec![0u8; len + CACHE_LINE - 1];
            let start = bytes.as_ptr().align_offset(CACHE_LINE).min(CACHE_LINE - 1);
            let data = &mut bytes[start..start + len];
            for (j, row) in packed.data.chunks_exact(packed.words).enumerate() {
                for_each_bit(row, |b| data[b * n_pad + j] = 1);
            }
            bytes.truncate(start + len);
            Columns {
                n_pad,
                start,
                bytes,
            }
        });
        OverlapTrain { packed, columns }
    }

    /// Fills `ks` (row-major `a.len() × n`) with `s2 · k(a_i, b_j)`; `counts` is scratch.
    /// In `f64` the ratio of the exact integer counts is the reference kernel value, bit for bit
    /// (the sparse GP's fit uses that).
    pub fn block<O: KsOut>(&self, a: &Packed, s2: f32, ks: &mut [O], counts: &mut Vec<u8>) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            {
                // SAFETY: the CPU has the features `block_avx512` is compiled for.
                return unsafe { self.block_avx512(a, s2, ks, counts) };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("popcnt")
            {
                // SAFETY: as above.
                return unsafe { self.block_avx2(a, s2, ks, counts) };
            }
        }
        self.block_generic(a, s2, ks, counts)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq,popcnt")]
    fn block_avx512<O: KsOut>(&self, a: &Packed, s2: f32, ks: &mut [O], counts: &mut Vec<u8>) {
        self.block_generic(a, s2, ks, counts)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt")]
    fn block_avx2<O: KsOut>(&self, a: &Packed, s2: f32, ks: &mut [O], counts: &mut Vec<u8>) {
        self.block_generic(a, s2, ks, counts)
    }

    /// The block in plain Rust; the wrappers above compile it for wider vectors.
    ///
    /// Rows for which the transposed sum pays are summed slab by slab: [`SUM_BLOCK`] labeled
    /// rows at a time for every such pool row, so the slab of the columns (`bits × SUM_BLOCK`
    /// bytes, 256 KiB for 2048 bits) stays in cache while the rows use it. `counts` holds those
    /// rows' overlaps; the other rows count word by word.
    #[inline(always)]
    fn block_generic<O: KsOut>(&self, a: &Packed, s2: f32, ks: &mut [O], counts: &mut Vec<u8>) {
        let n = self.packed.len();
        let w = a.words;
        let b = &self.packed;
        // The transposed sum costs |a|·n/64 vector adds; popcounts cost about n·w/2.
        let summed = |i: usize| match &self.columns {
            Some(cols) => a.norms[i] as usize * cols.n_pad / 64 <= n * w / 2 + 1,
            None => false,
        };
        if let Some(cols) = &self.columns {
            // The summed rows, and where each one's set bits' columns start.
            let (mut rows, mut starts, mut ends) = (Vec::new(), Vec::new(), Vec::new());
            for (i, ra) in a
                .data
                .chunks_exact(w)
                .enumerate()
                .filter(|&(i, _)| summed(i))
            {
                for_each_bit(ra, |bit| {
                    if (bit + 1) * cols.n_pad <= cols.data().len() {
                        starts.push(bit * cols.n_pad);
                    }
                });
                rows.push(i);
                ends.push(starts.len());
            }
            counts.clear();
            counts.resize(rows.len() * cols.n_pad, 0);
            for slab in (0..cols.n_pad).step_by(SUM_BLOCK) {
                let mut from = 0;
                for (r, &end) in ends.iter().enumerate() {
                    let out = &mut counts[r * cols.n_pad + slab..][..SUM_BLOCK];
                    column_sums(cols.data(), &starts[from..end], slab, out);
                    from = end;
                }
            }
            for (r, &i) in rows.iter().enumerate() {
                let c = &counts[r * cols.n_pad..][..n];
                let out = &mut ks[i * n..(i + 1) * n];
                ratios(
                    out,
                    c.iter().map(|&c| f32::from(c)),
                    a.norms[i],
                    &b.norms,
                    s2,
                );
            }
        }
        for (i, ra) in a.data.chunks_exact(w).enumerate() {
            if summed(i) {
                continue;
            }
            let c = b.data.chunks_exact(w).map(|rb| {
                ra.iter()
                    .zip(rb)
                    .map(|(x, y)| (x & y).count_ones())
                    .sum::<u32>() as f32
            });
            ratios(&mut ks[i * n..(i + 1) * n], c, a.norms[i], &b.norms, s2);
        }
    }
}

/// Calls `f` with the index of every set bit of `words`.
#[inline]
fn for_each_bit(words: &[u64], mut f: impl FnMut(usize)) {
    for (k, &w) in words.iter().enumerate() {
        let mut w = w;
        while w != 0 {
            f(k * 64 + w.trailing_zeros() as usize);
            w &= w - 1;
        }
    }
}

/// Labeled rows summed at a time by [`column_sums`]: 128 byte counters, four AVX2 or two
/// AVX-512 registers; `Columns::n_pad` is a multiple of it.
const SUM_BLOCK: usize = 128;

/// The alignment of [`Columns`]' data: a cache line.
const CACHE_LINE: usize = 64;

/// `out[j] = Σ_s data[s + slab + j]` for `j < SUM_BLOCK` over the column starts `starts`,
/// byte-wise: the block of counters stays in registers while every column adds to it (the
/// compiler vectorises the fixed-size inner loop).
#[inline(always)]
fn column_sums(data: &[u8], starts: &[usize], slab: usize, out: &mut [u8]) {
    let mut acc = [0u8; SUM_BLOCK];
    for &s in starts {
        let col: &[u8; SUM_BLOCK] = data[s + slab..s + slab + SUM_BLOCK]
            .try_into()
            .expect("a block of the column");
        for (a, c) in acc.iter_mut().zip(col) {
            *a = a.wrapping_add(*c);
        }
    }
    out.copy_from_slice(&acc);
}

/// `out[j] = s2 · c_j / (na + nb_j − c_j)`, with `0/0 = 1` (two empty fingerprints).
#[inline]
fn ratios<O: KsOut>(out: &mut [O], c: impl Iterator<Item = f32>, na: f32, nb: &[f32], s2: f32) {
    for ((o, c), &nb) in out.iter_mut().zip(c).zip(nb) {
        *o = O::ratio(c, na, nb, s2);
    }
}

/// The element type of a kernel block: `f32` for scoring, `f64` for the sparse fit. The counts
/// and norms are exact integers in `f32`, so only the division's precision differs.
pub trait KsOut: Copy {
    /// `s2 · c / (na + nb − c)`, with `0/0 = 1`.
    fn ratio(c: f32, na: f32, nb: f32, s2: f32) -> Self;
}

impl KsOut for f32 {
    /// `s2 · (c / den)`: the similarity first, so that a block at `s2 = 1` scaled by `s2` later
    /// (one block shared by models of several signal variances) has these bits.
    #[inline(always)]
    fn ratio(c: f32, na: f32, nb: f32, s2: f32) -> Self {
        let den = na + nb - c;
        if den == 0.0 {
            s2
        } else {
            s2 * (c / den)
        }
    }
}

impl KsOut for f64 {
    #[inline(always)]
    fn ratio(c: f32, na: f32, nb: f32, s2: f32) -> Self {
        let (c, den) = (f64::from(c), f64::from(na) + f64::from(nb) - f64::from(c));
        f64::from(s2) * if den == 0.0 { 1.0 } else { c / den }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{Kernel, KernelKind};
    use crate::rng::hash32;

    fn bits(rows: usize, nbits: usize, density: u32) -> Features {
        let words = crate::data::words_for(nbits);
        let mut data = vec![0u64; rows * words];
        for r in 0..rows {
            for b in 0..nbits {
                if hash32((r * nbits + b) as u32 ^ 0x9e37) % 1000 < density {
                    data[r * words + b / 64] |= 1 << (b % 64);
                }
            }
        }
        Features::Bits { nbits, data }
    }

    fn counts(rows: usize, ndim: usize) -> Features {
        let (mut indptr, mut indices, mut values) = (vec![0], Vec::new(), Vec::new());
        for r in 0..rows {
            for d in 0..ndim {
                let h = hash32((r * ndim + d) as u32 ^ 0x51ed);
                // Row 0 stays empty: 0/0 is 1.
                if r > 0 && h.is_multiple_of(16) {
                    indices.push(d as u32);
                    values.push(1 + (h >> 8) % 7);
                }
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

    /// Sparse rows (summed through the columns) and rows of 40% of 300 bits (counted word by
    /// word: 120 set bits cost more through the columns), alternating in one block.
    fn mixed() -> Features {
        let (Features::Bits { data: sparse, .. }, Features::Bits { data: dense, .. }) =
            (bits(80, 300, 30), bits(80, 300, 400))
        else {
            unreachable!()
        };
        let w = crate::data::words_for(300);
        let data = (0..80)
            .flat_map(|r| {
                let src = if r % 2 == 0 { &sparse } else { &dense };
                src[r * w..(r + 1) * w].to_vec()
            })
            .collect();
        Features::Bits { nbits: 300, data }
    }

    /// The overlap Gram equals the pairwise one bit for bit: sparse and dense bit rows (the
    /// transposed columns and the word-wise fallback), an empty row, counts, 0 and 1 rows.
    #[test]
    fn fingerprint_gram_is_the_pairwise_gram() {
        let cases = [
            (KernelKind::Tanimoto, bits(70, 300, 30)),
            (KernelKind::Tanimoto, bits(67, 1000, 400)),
            (KernelKind::Tanimoto, bits(1, 64, 500)),
            (KernelKind::Tanimoto, bits(0, 64, 500)),
            (KernelKind::MinMax, counts(90, 200)),
            (KernelKind::MinMax, bits(33, 130, 100)),
            (KernelKind::Tanimoto, mixed()),
        ];
        for (kind, x) in &cases {
            let k = Kernel {
                kind: *kind,
                lengthscale: 1.0,
            };
            let want = k.gram(x);
            let got = fingerprint_gram(x).unwrap();
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(
                    g.to_bits(),
                    w.to_bits(),
                    "{kind:?} rows {} entry {i}",
                    x.len()
                );
            }
        }
        let dense = Features::Dense {
            dim: 2,
            data: vec![0.0; 4],
        };
        assert!(fingerprint_gram(&dense).is_none());
    }

    #[test]
    fn columns_start_on_a_cache_line() {
        for rows in [1, 7, 300] {
            let (_, packed) = SideCode::of(&bits(rows, 1000, 40)).unwrap();
            let train = OverlapTrain::new(packed);
            let cols = train.columns.as_ref().expect("sparse rows are transposed");
            assert_eq!(cols.data().as_ptr() as usize % CACHE_LINE, 0, "{rows} rows");
            assert_eq!(cols.data().len(), 1024 * cols.n_pad);
        }
    }
}
