//! The rayon CPU scorer, the reference for every other backend.
//!
//! Per chunk of [`CHUNK`] pool rows (one rayon task, all scratch in cache): the kernel block
//! `Ks = s2·k(chunk, X)` (popcounts for fingerprints, direct distances for dense features), the
//! mean `Ks·alpha`, and the variance `s2 − rowsum((Ks·Wᵀ)²)` through faer's triangular GEMM,
//! which skips the zero half of `W = L⁻¹`. Chunk boundaries are fixed multiples of `CHUNK`
//! from the start of the tile, so results do not depend on the number of threads.

use faer::linalg::matmul::triangular::{matmul, BlockStructure};
use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;

use super::encode::Packed;
use super::overlap::PopcountSide;
use super::{check_dense_range, check_finite_posterior, check_tile_kind, dense_abs_max, Scorer};
use crate::data::{FeatureKind, Features};
use crate::error::Result;
use crate::gp::FittedGp;
use crate::kernel::KernelKind;

/// Pool rows per rayon task.
pub const CHUNK: usize = 192;

/// Training side of the kernel block.
enum Train {
    /// Tanimoto on bits, or MinMax on bits/counts through their thermometer code.
    Popcount(PopcountSide),
    /// RBF or Matérn 5/2 on dense features.
    Dense {
        dim: usize,
        data: Vec<f32>,
        inv_ls: f32,
        matern: bool,
    },
}

/// The CPU backend prepared for one round.
pub struct CpuScorer {
    train: Train,
    n: usize,
    s2: f32,
    alpha: Vec<f32>,
    /// `Wᵀ`, upper triangular, `n × n`.
    wt: Mat<f32>,
    /// The labeled features' kind; pool tiles must have the same.
    kind: FeatureKind,
    /// The largest magnitude of the labeled dense features, to rule out `f32` overflow.
    train_abs_max: f32,
}

impl CpuScorer {
    /// Prepares the training block, `alpha` and `Wᵀ` from a fitted model.
    pub fn new(gp: &FittedGp) -> Self {
        let n = gp.n_train();
        let train = match &gp.train {
            Features::Dense { dim, data } => Train::Dense {
                dim: *dim,
                data: data.clone(),
                inv_ls: (1.0 / gp.kernel.lengthscale) as f32,
                matern: gp.kernel.kind == KernelKind::Matern52,
            },
            fps => Train::Popcount(PopcountSide::new(fps).expect("fingerprint features")),
        };
        let w = gp.chol_inverse();
        let wt = Mat::<f32>::from_fn(n, n, |j, r| w[(r, j)] as f32);
        CpuScorer {
            train,
            n,
            s2: gp.signal_var as f32,
            alpha: gp.alpha.iter().map(|&a| a as f32).collect(),
            wt,
            kind: gp.train.kind(),
            train_abs_max: dense_abs_max(&gp.train),
        }
    }

    /// Fills `ks` (row-major `rows × n`) with `s2·k(tile rows, X)` for the tile's rows
    /// `start..start + rows`, using `packed` as scratch for encoded fingerprints.
    #[allow(clippy::too_many_arguments)]
    fn kernel_block(
        &self,
        tile: &Features,
        start: usize,
        rows: usize,
        packed: &mut Packed,
        counts: &mut Vec<u8>,
        ks: &mut [f32],
    ) {
        let n = self.n;
        match &self.train {
            Train::Popcount(side) => {
                side.block(tile, start..start + rows, self.s2, packed, counts, ks);
            }
            Train::Dense {
                dim,
                data,
                inv_ls,
                matern,
            } => {
                let Features::Dense { data: pool, .. } = tile else {
                    panic!("dense kernel on non-dense tile");
                };
                for i in 0..rows {
                    let a = &pool[(start + i) * dim..(start + i + 1) * dim];
                    for j in 0..n {
                        let b = &data[j * dim..(j + 1) * dim];
                        let d2: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
                        ks[i * n + j] = self.s2 * dense_kernel(d2, *inv_ls, *matern);
                    }
                }
            }
        }
    }
}

/// RBF or Matérn 5/2 of a squared distance, `f32`.
#[inline]
fn dense_kernel(d2: f32, inv_ls: f32, matern: bool) -> f32 {
    let r2 = d2.max(0.0) * inv_ls * inv_ls;
    if matern {
        let u = 5f32.sqrt() * r2.sqrt();
        (1.0 + u + u * u / 3.0) * (-u).exp()
    } else {
        (-0.5 * r2).exp()
    }
}

impl CpuScorer {
    /// `var[i] = max(s2 − ‖W·ks_i‖², 0)` for the rows of `ks` (row-major, `n` columns), in
    /// parallel chunks. The variance product alone, for benchmarks and tests.
    pub fn variance_from_ks(&self, ks: &[f32], var: &mut [f32]) {
        let n = self.n;
        assert_eq!(ks.len(), var.len() * n);
        var.par_chunks_mut(CHUNK)
            .zip(ks.par_chunks(CHUNK * n))
            .for_each_init(
                || Mat::<f32>::zeros(CHUNK, n),
                |v, (var, ks)| self.variance_rows(ks, v, var),
            );
    }

    /// The variance of up to [`CHUNK`] rows: `V = Ks·Wᵀ` by faer's triangular GEMM into the
    /// scratch `v`, then the row sums of squares.
    fn variance_rows(&self, ks: &[f32], v: &mut Mat<f32>, var: &mut [f32]) {
        let (m, n) = (var.len(), self.n);
        let mut v = v.as_mut().subrows_mut(0, m);
        matmul(
            v.as_mut(),
            BlockStructure::Rectangular,
            Accum::Replace,
            MatRef::from_row_major_slice(ks, m, n),
            BlockStructure::Rectangular,
            self.wt.as_ref(),
            BlockStructure::TriangularUpper,
            1.0,
            Par::Seq,
        );
        var.fill(0.0);
        for r in 0..n {
            for (acc, x) in var.iter_mut().zip(v.as_ref().col(r).iter()) {
                *acc += x * x;
            }
        }
        for x in var.iter_mut() {
            *x = (self.s2 - *x).max(0.0);
        }
    }
}

/// Dot product with 16 independent partial sums (vectorisable, and the same summation order
/// on every call).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..16 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

impl Scorer for CpuScorer {
    fn posterior_into(&self, tile: &Features, mean: &mut [f32], var: &mut [f32]) -> Result<()> {
        check_tile_kind(tile, self.kind)?;
        check_dense_range(tile, self.train_abs_max)?;
        let rows = tile.len();
        assert_eq!(mean.len(), rows);
        assert_eq!(var.len(), rows);
        let n = self.n;
        mean.par_chunks_mut(CHUNK)
            .zip(var.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each_init(
                || {
                    (
                        Packed::default(),
                        Vec::new(),
                        vec![0f32; CHUNK * n],
                        Mat::<f32>::zeros(CHUNK, n),
                    )
                },
                |(packed, counts, ks, v), (c, (mean, var))| {
                    let start = c * CHUNK;
                    let m = mean.len();
                    let ks = &mut ks[..m * n];
                    self.kernel_block(tile, start, m, packed, counts, ks);
                    for (i, out) in mean.iter_mut().enumerate() {
                        *out = dot(&ks[i * n..(i + 1) * n], &self.alpha);
                    }
                    self.variance_rows(ks, v, var);
                },
            );
        check_finite_posterior(0, mean, var)
    }

    fn name(&self) -> String {
        "cpu".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gp::{fit, GpParams};

    fn scorer(n: usize, seed: u32) -> CpuScorer {
        let dim = 3;
        let data = (0..n * dim)
            .map(|i| {
                let h = crate::rng::hash32(i as u32 ^ seed.wrapping_mul(0x9e37_79b9));
                (h >> 8) as f32 / 16_777_216.0 * 4.0 - 2.0
            })
            .collect();
        let x = Features::Dense { dim, data };
        let y: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
        let mut p = GpParams::new(KernelKind::Rbf);
        p.signal_var = Some(1.3);
        p.noise = Some(0.05);
        p.lengthscale = Some(0.9);
        CpuScorer::new(&fit(&p.check(x.kind()).unwrap(), &x, &y).unwrap())
    }

    /// The variance of a row through faer's product depends on that row alone: any subset of a
    /// chunk's rows, in any order and any block height, gives the same bits.
    #[test]
    fn variance_of_a_row_does_not_depend_on_its_block() {
        for &n in &[1usize, 2, 7, 33, 64, 129, 300] {
            let s = scorer(n, n as u32);
            let ks: Vec<f32> = (0..CHUNK * n)
                .map(|i| (crate::rng::hash32(i as u32 * 7 + 1) >> 8) as f32 / 16_777_216.0)
                .collect();
            let mut v = Mat::<f32>::zeros(CHUNK, n);
            let mut full = vec![0f32; CHUNK];
            s.variance_rows(&ks, &mut v, &mut full);
            for &m in &[1usize, 2, 3, 5, 8, 17, 37, 100, 191, CHUNK] {
                let rows: Vec<usize> = (0..m).map(|i| (i * 61 + m * 13) % CHUNK).collect();
                let sub: Vec<f32> = rows
                    .iter()
                    .flat_map(|&r| ks[r * n..(r + 1) * n].iter().copied())
                    .collect();
                let mut got = vec![0f32; m];
                s.variance_rows(&sub, &mut v, &mut got);
                for (i, &r) in rows.iter().enumerate() {
                    assert_eq!(
                        got[i].to_bits(),
                        full[r].to_bits(),
                        "n {n}, block of {m}, row {r}: {} vs {}",
                        got[i],
                        full[r]
                    );
                }
            }
        }
    }
}
