//! Nearest-neighbour similarity between pool tiles and a small reference set (the labeled
//! candidates, a seeded sample of the pool, the test set), under the model's kernel with unit
//! signal variance: Tanimoto or MinMax through the backend's popcount block, RBF or Matérn 5/2
//! at the fitted lengthscale for dense features. One pass gives, per pool row, its similarity
//! to the nearest reference and, per reference, its similarity to the nearest pool row.

use rayon::prelude::*;

use crate::backend::encode::Packed;
use crate::backend::overlap::PopcountSide;
use crate::backend::CHUNK;
use crate::data::Features;
use crate::kernel::{matern52_of_sq, rbf_of_sq, sq_dist, Kernel, KernelKind};

/// A reference set prepared for the block.
pub struct References {
    n: usize,
    kind: Prepared,
}

enum Prepared {
    Popcount(PopcountSide),
    Dense { rows: Features, kernel: Kernel },
}

/// What one tile contributes.
pub struct TileNearest {
    /// Per tile row: the largest similarity to a reference (−∞ with no references).
    pub row_best: Vec<f32>,
    /// Per reference: the largest similarity to a tile row it may see.
    pub ref_best: Vec<f32>,
}

impl References {
    /// Prepares `rows` for kernel `kernel` (its lengthscale is used for dense features).
    pub fn new(rows: &Features, kernel: Kernel) -> Self {
        let n = rows.len();
        let kind = match PopcountSide::new(rows) {
            Some(side) => Prepared::Popcount(side),
            None => Prepared::Dense {
                rows: rows.clone(),
                kernel,
            },
        };
        References { n, kind }
    }

    /// Number of references.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The similarity block of `tile` rows against every reference: per row its best
    /// similarity (never to `self_ref(row)`, the reference that is this row), and, when
    /// `want_refs`, per reference its best similarity over the rows not `skip_row(row)`.
    pub fn nearest(
        &self,
        tile: &Features,
        want_refs: bool,
        skip_row: impl Fn(usize) -> bool + Sync,
        self_ref: impl Fn(usize) -> Option<usize> + Sync,
    ) -> TileNearest {
        let rows = tile.len();
        let n = self.n;
        let mut row_best = vec![f32::NEG_INFINITY; rows];
        if n == 0 {
            return TileNearest {
                row_best,
                ref_best: Vec::new(),
            };
        }
        let ref_best = row_best
            .par_chunks_mut(CHUNK)
            .enumerate()
            .map_init(
                || (Packed::default(), Vec::new(), vec![0f32; CHUNK * n]),
                |(packed, counts, ks), (c, best)| {
                    let start = c * CHUNK;
                    let m = best.len();
                    let ks = &mut ks[..m * n];
                    self.block(tile, start, m, packed, counts, ks);
                    let mut refs = vec![f32::NEG_INFINITY; if want_refs { n } else { 0 }];
                    for (i, b) in best.iter_mut().enumerate() {
                        let row = &mut ks[i * n..(i + 1) * n];
                        if let Some(j) = self_ref(start + i) {
                            row[j] = f32::NEG_INFINITY;
                        }
                        *b = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        if want_refs && !skip_row(start + i) {
                            refs.iter_mut()
                                .zip(row.iter())
                                .for_each(|(r, &k)| *r = r.max(k));
                        }
                    }
                    refs
                },
            )
            .reduce(
                || vec![f32::NEG_INFINITY; if want_refs { n } else { 0 }],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(x, y)| *x = x.max(y));
                    a
                },
            );
        TileNearest { row_best, ref_best }
    }

    fn block(
        &self,
        tile: &Features,
        start: usize,
        rows: usize,
        packed: &mut Packed,
        counts: &mut Vec<u8>,
        ks: &mut [f32],
    ) {
        match &self.kind {
            Prepared::Popcount(side) => {
                side.block(tile, start..start + rows, 1.0, packed, counts, ks);
            }
            Prepared::Dense { rows: refs, kernel } => {
                let n = self.n;
                for i in 0..rows {
                    let a = tile.dense_row(start + i).expect("dense tile");
                    for j in 0..n {
                        let d2 = sq_dist(a, refs.dense_row(j).expect("dense references"));
                        ks[i * n + j] = match kernel.kind {
                            KernelKind::Matern52 => matern52_of_sq(d2, kernel.lengthscale),
                            _ => rbf_of_sq(d2, kernel.lengthscale),
                        } as f32;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_matches_the_scalar_kernel() {
        let x = Features::Counts {
            ndim: 70,
            indptr: vec![0, 2, 4, 5, 5],
            indices: vec![1, 65, 1, 3, 65],
            values: vec![2, 1, 1, 4, 3],
        };
        let kernel = Kernel {
            kind: KernelKind::MinMax,
            lengthscale: 1.0,
        };
        let refs = x.select_rows(&[0, 2]);
        let r = References::new(&refs, kernel);
        // Row 0 is reference 0 and row 2 is reference 1; row 3 is not seen by the references.
        let self_ref = |row: usize| match row {
            0 => Some(0),
            2 => Some(1),
            _ => None,
        };
        let got = r.nearest(&x, true, |row| row == 3, self_ref);
        for i in 0..x.len() {
            let want = (0..2)
                .filter(|&j| self_ref(i) != Some(j))
                .map(|j| kernel.eval(&x, i, &refs, j))
                .fold(f64::NEG_INFINITY, f64::max);
            assert!((f64::from(got.row_best[i]) - want).abs() < 1e-6, "row {i}");
        }
        let want = |j: usize, rows: &[usize]| {
            rows.iter()
                .map(|&i| kernel.eval(&x, i, &refs, j))
                .fold(f64::NEG_INFINITY, f64::max)
        };
        assert!((f64::from(got.ref_best[0]) - want(0, &[1, 2])).abs() < 1e-6);
        assert!((f64::from(got.ref_best[1]) - want(1, &[0, 1])).abs() < 1e-6);
        let bits = x.presence_bits().unwrap();
        assert_eq!(bits.bits_row(0).unwrap(), &[1 << 1, 1 << 1]);
    }
}
