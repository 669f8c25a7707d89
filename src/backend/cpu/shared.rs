//! Several models scored from one kernel block: the objectives of a multi-objective round
//! ([`crate::multi`]), each fitted on its own labeled rows, all of them rows of one labeled
//! set. Per chunk of [`CHUNK`] pool rows the block `k(chunk, X)` over the union `X` of the
//! labeled rows is computed once; each model then takes its columns, scaled by its signal
//! variance, for its mean and its variance.
//!
//! Every model's mean and variance are the bits its own [`super::CpuScorer`] gives: the fingerprint
//! block keeps each pair's overlap and union count and forms `s2 · c / (|a| + |b| − c)` per
//! model exactly as the one-model block does, and a dense block keeps `k` and forms `s2 · k`.

use rayon::prelude::*;

use super::{dense_kernel, dot, Train, CHUNK};
use crate::backend::encode::Packed;
use crate::backend::overlap::{KsOut, PopcountSide};
use crate::backend::{check_dense_range, check_finite_posterior, check_tile_kind, dense_abs_max};
use crate::data::{FeatureKind, Features};
use crate::error::Result;
use crate::gp::FittedGp;
use crate::kernel::KernelKind;

use super::fused::PackedW;

/// One pair's overlap `c` and union count `|a| + |b| − c`, so each model can form its own
/// `s2 · c / den` with the one-model block's rounding.
#[derive(Clone, Copy, Debug, Default)]
struct Overlap {
    c: f32,
    den: f32,
}

impl KsOut for Overlap {
    #[inline(always)]
    fn ratio(c: f32, na: f32, nb: f32, _s2: f32) -> Self {
        Overlap {
            c,
            den: na + nb - c,
        }
    }
}

impl Overlap {
    /// `s2 · c / den`, with `0/0 = 1`: [`KsOut::ratio`] of `f32`.
    #[inline(always)]
    fn scaled(self, s2: f32) -> f32 {
        if self.den == 0.0 {
            s2
        } else {
            s2 * self.c / self.den
        }
    }
}

/// One model: its columns of the union, signal variance, `alpha` and `W = L⁻¹`.
struct Head {
    /// Its rows of the union, in its training order; `None`: every row, in order.
    cols: Option<Vec<usize>>,
    s2: f32,
    alpha: Vec<f32>,
    w: PackedW,
}

/// Several exact GPs with one kernel on rows of one labeled set, scored from one kernel block
/// per chunk.
pub struct SharedCpuScorer {
    train: Train,
    n: usize,
    heads: Vec<Head>,
    kind: FeatureKind,
    train_abs_max: f32,
}

impl SharedCpuScorer {
    /// Prepares the union `union` and each model `(gp, rows)`: `gp` fitted on the rows `rows`
    /// of `union`, in that order. `None` when the models cannot share a block: a sparse model,
    /// kernels or lengthscales that differ, or a model whose training rows are not `rows` of
    /// `union` (the caller then scores each model on its own).
    pub fn new(union: &Features, heads: &[(&FittedGp, &[usize])]) -> Option<Self> {
        let first = heads.first()?.0;
        let n = union.len();
        for (gp, rows) in heads {
            let same_kernel = gp.kernel == first.kernel;
            let exact = gp.info.sparse.is_none();
            let in_union = rows.iter().all(|&r| r < n) && gp.n_train() == rows.len();
            if !(same_kernel && exact && in_union) {
                return None;
            }
            if gp.train != union.select_rows(rows) {
                return None;
            }
        }
        let train = match union {
            Features::Dense { dim, data } => Train::Dense {
                dim: *dim,
                data: data.clone(),
                inv_ls: (1.0 / first.kernel.lengthscale) as f32,
                matern: first.kernel.kind == KernelKind::Matern52,
            },
            fps => Train::Popcount(PopcountSide::new(fps)?),
        };
        let heads = heads
            .iter()
            .map(|(gp, rows)| {
                let w = gp.chol_inverse();
                let every = rows.len() == n && rows.iter().enumerate().all(|(i, &r)| i == r);
                Head {
                    cols: (!every).then(|| rows.to_vec()),
                    s2: gp.signal_var as f32,
                    alpha: gp.alpha.iter().map(|&a| a as f32).collect(),
                    w: PackedW::new(rows.len(), |r, j| w[(r, j)] as f32),
                }
            })
            .collect();
        Some(SharedCpuScorer {
            train,
            n,
            heads,
            kind: union.kind(),
            train_abs_max: dense_abs_max(union),
        })
    }

    /// The number of models.
    pub fn heads(&self) -> usize {
        self.heads.len()
    }

    /// Fills `mean` and `var` (row-major, `tile.len() × heads`: row `r`'s model `j` at
    /// `r · heads + j`) with each model's standardised latent mean and variance, the bits of
    /// its own [`super::CpuScorer`]'s [`crate::backend::Scorer::posterior_into`].
    ///
    /// # Errors
    /// A tile of another kind than the models', dense values that would overflow `f32`, or a
    /// non-finite posterior.
    pub fn posterior_into(&self, tile: &Features, mean: &mut [f32], var: &mut [f32]) -> Result<()> {
        check_tile_kind(tile, self.kind)?;
        check_dense_range(tile, self.train_abs_max)?;
        let (n, h) = (self.n, self.heads.len());
        assert_eq!(mean.len(), tile.len() * h);
        assert_eq!(var.len(), tile.len() * h);
        mean.par_chunks_mut(CHUNK * h)
            .zip(var.par_chunks_mut(CHUNK * h))
            .enumerate()
            .for_each_init(
                || Scratch {
                    packed: Packed::default(),
                    counts: Vec::new(),
                    block: Block::new(&self.train, CHUNK * n),
                    ks: Vec::new(),
                    part: Vec::new(),
                },
                |s, (c, (mean, var))| {
                    let rows = mean.len() / h;
                    self.block(tile, c * CHUNK, rows, s);
                    for (j, head) in self.heads.iter().enumerate() {
                        let nj = head.alpha.len();
                        s.ks.resize(rows * nj, 0.0);
                        for i in 0..rows {
                            let out = &mut s.ks[i * nj..(i + 1) * nj];
                            s.block
                                .scaled_row(i * n, head.cols.as_deref(), head.s2, out);
                        }
                        s.part.resize(rows, 0.0);
                        head.w.variances(&s.ks, head.s2, &mut s.part);
                        for i in 0..rows {
                            mean[i * h + j] = dot(&s.ks[i * nj..(i + 1) * nj], &head.alpha);
                            var[i * h + j] = s.part[i];
                        }
                    }
                },
            );
        check_finite_posterior(0, mean, var)
    }

    /// The unscaled block of the tile's rows `start..start + rows` into `s.block`.
    fn block(&self, tile: &Features, start: usize, rows: usize, s: &mut Scratch) {
        let n = self.n;
        match (&self.train, &mut s.block) {
            (Train::Popcount(side), Block::Overlap(out)) => {
                let out = &mut out[..rows * n];
                side.block(
                    tile,
                    start..start + rows,
                    1.0,
                    &mut s.packed,
                    &mut s.counts,
                    out,
                );
            }
            (
                Train::Dense {
                    dim,
                    data,
                    inv_ls,
                    matern,
                },
                Block::Kernel(out),
            ) => {
                let Features::Dense { data: pool, .. } = tile else {
                    unreachable!("the tile's kind was checked");
                };
                for i in 0..rows {
                    let a = &pool[(start + i) * dim..(start + i + 1) * dim];
                    for j in 0..n {
                        let b = &data[j * dim..(j + 1) * dim];
                        let d2: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
                        out[i * n + j] = dense_kernel(d2, *inv_ls, *matern);
                    }
                }
            }
            _ => unreachable!("the block matches the training side"),
        }
    }
}

/// Per-task scratch of [`SharedCpuScorer::posterior_into`].
struct Scratch {
    packed: Packed,
    counts: Vec<u8>,
    block: Block,
    ks: Vec<f32>,
    part: Vec<f32>,
}

/// The unscaled kernel block of one chunk.
enum Block {
    /// Fingerprints: each pair's overlap.
    Overlap(Vec<Overlap>),
    /// Dense features: `k`.
    Kernel(Vec<f32>),
}

impl Block {
    fn new(train: &Train, len: usize) -> Self {
        match train {
            Train::Popcount(_) => Block::Overlap(vec![Overlap::default(); len]),
            Train::Dense { .. } => Block::Kernel(vec![0.0; len]),
        }
    }

    /// `out[c] = s2 · k(row, X[cols[c]])` from the block row starting at `at`.
    #[inline]
    fn scaled_row(&self, at: usize, cols: Option<&[usize]>, s2: f32, out: &mut [f32]) {
        match (self, cols) {
            (Block::Overlap(b), None) => {
                for (o, v) in out.iter_mut().zip(&b[at..]) {
                    *o = v.scaled(s2);
                }
            }
            (Block::Overlap(b), Some(cols)) => {
                for (o, &c) in out.iter_mut().zip(cols) {
                    *o = b[at + c].scaled(s2);
                }
            }
            (Block::Kernel(b), None) => {
                for (o, v) in out.iter_mut().zip(&b[at..]) {
                    *o = s2 * v;
                }
            }
            (Block::Kernel(b), Some(cols)) => {
                for (o, &c) in out.iter_mut().zip(cols) {
                    *o = s2 * b[at + c];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{CpuScorer, Scorer};
    use crate::gp::{fit, ModelSpec};
    use crate::kernel::KernelKind;
    use crate::sim::synth::{generate, to_bits, Scenario};

    /// A union of labeled rows, a model on every row and one on every other row, scored
    /// shared and alone.
    fn check(kind: KernelKind, features: Features, y: &[f64]) {
        let n = 40;
        let union = features.select_rows(&(0..n).collect::<Vec<_>>());
        let tile = features.select_rows(&(n..features.len()).collect::<Vec<_>>());
        // Dense kernels share a block only at one lengthscale: fix it.
        let params = ModelSpec {
            kernel: Some(kind),
            lengthscale: kind.has_lengthscale().then_some(1.5),
            ..ModelSpec::default()
        }
        .check(union.kind())
        .unwrap();
        let all: Vec<usize> = (0..n).collect();
        let odd: Vec<usize> = (0..n).filter(|r| r % 2 == 1).collect();
        let y2: Vec<f64> = y.iter().map(|v| v * v).collect();
        let gp_all = fit(&params, &union, &y[..n]).unwrap();
        let y_odd: Vec<f64> = odd.iter().map(|&r| y2[r]).collect();
        let gp_odd = fit(&params, &union.select_rows(&odd), &y_odd).unwrap();
        let shared =
            SharedCpuScorer::new(&union, &[(&gp_all, &all[..]), (&gp_odd, &odd[..])]).unwrap();
        let rows = tile.len();
        let (mut mean, mut var) = (vec![0f32; rows * 2], vec![0f32; rows * 2]);
        shared.posterior_into(&tile, &mut mean, &mut var).unwrap();
        for (j, gp) in [&gp_all, &gp_odd].into_iter().enumerate() {
            let alone = CpuScorer::new(gp);
            let (mut m, mut v) = (vec![0f32; rows], vec![0f32; rows]);
            alone.posterior_into(&tile, &mut m, &mut v).unwrap();
            for r in 0..rows {
                assert_eq!(
                    mean[r * 2 + j].to_bits(),
                    m[r].to_bits(),
                    "model {j} row {r}"
                );
                assert_eq!(
                    var[r * 2 + j].to_bits(),
                    v[r].to_bits(),
                    "model {j} row {r}"
                );
            }
        }
    }

    #[test]
    fn shared_block_gives_each_models_own_bits() {
        let s = generate(Scenario::Smooth, 40 + 3 * CHUNK + 17, 6, 3)
            .unwrap()
            .pool;
        check(KernelKind::Rbf, s.features.clone(), &s.y);
        check(KernelKind::Matern52, s.features.clone(), &s.y);
        let bits = to_bits(&s.features, 256, 5).unwrap();
        check(KernelKind::Tanimoto, bits.clone(), &s.y);
        check(KernelKind::MinMax, bits, &s.y);
    }

    #[test]
    fn models_that_cannot_share_are_refused() {
        let s = generate(Scenario::Smooth, 60, 4, 1).unwrap().pool;
        let union = s.features.select_rows(&(0..30).collect::<Vec<_>>());
        let params = ModelSpec::default().check(union.kind()).unwrap();
        let gp = fit(&params, &union, &s.y[..30]).unwrap();
        let all: Vec<usize> = (0..30).collect();
        // Rows that are not the model's training rows.
        let shifted: Vec<usize> = (1..31).map(|r| r % 30).collect();
        assert!(SharedCpuScorer::new(&union, &[(&gp, &shifted[..])]).is_none());
        assert!(SharedCpuScorer::new(&union, &[(&gp, &all[..])]).is_some());
    }
}
