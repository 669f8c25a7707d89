//! Several models scored from one kernel block: the objectives of a multi-objective round
//! ([`crate::multi`]), each fitted on its own labeled rows, all of them rows of one labeled
//! set. Per chunk of [`CHUNK`] pool rows the block `k(chunk, X)` over the union `X` of the
//! labeled rows is computed once; each model then takes its columns, scaled by its signal
//! variance, for its mean and its variance.
//!
//! Models whose covariance matrices are the same (the same rows, signal variance and Cholesky
//! factor: models fitted with the same fixed hyperparameters on the same rows, ParEGO's weight
//! models among them) share one `W` and one variance per candidate; only their means are their
//! own.
//!
//! Every model's mean and variance are the bits its own [`super::CpuScorer`] gives: the block
//! holds `k` (the fingerprint block at `s2 = 1`, `c / (|a| + |b| − c)`) and each model forms
//! `s2 · k`, as the one-model block does.

use std::sync::Arc;

use rayon::prelude::*;

use super::fused::{finish, Acc, LANES};
use super::{dense_kernel, dot, stage_ends, Train, CHUNK};
use crate::backend::encode::Packed;
use crate::backend::overlap::PopcountSide;
use crate::backend::{check_dense_range, check_finite_posterior, check_tile_kind, dense_abs_max};
use crate::data::{FeatureKind, Features};
use crate::error::Result;
use crate::gp::FittedGp;
use crate::kernel::KernelKind;

use super::fused::PackedW;

/// One model: its columns of the union, signal variance, `alpha` and `W = L⁻¹`.
struct Head {
    /// Its rows of the union, in its training order; `None`: every row, in order.
    cols: Option<Vec<usize>>,
    s2: f32,
    alpha: Vec<f32>,
    w: Arc<PackedW>,
    /// The first model whose variances are this one's: its own index, or an earlier model's
    /// with the same columns, signal variance and Cholesky factor (models fitted with the same
    /// fixed hyperparameters on the same rows), whose `W` and variances then serve both.
    var_of: usize,
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
        let mut built: Vec<Head> = Vec::with_capacity(heads.len());
        for (j, (gp, rows)) in heads.iter().enumerate() {
            let every = rows.len() == n && rows.iter().enumerate().all(|(i, &r)| i == r);
            let cols = (!every).then(|| rows.to_vec());
            let s2 = gp.signal_var as f32;
            // An earlier model with these columns, this signal variance and this Cholesky
            // factor has this `W`: its variances are this model's.
            let same = built.iter().zip(heads).position(|(h, (earlier, _))| {
                h.cols == cols
                    && h.s2.to_bits() == s2.to_bits()
                    && same_bits(&earlier.chol, &gp.chol)
            });
            let (w, var_of) = match same {
                Some(i) => (Arc::clone(&built[i].w), built[i].var_of),
                None => {
                    let w = gp.chol_inverse();
                    (
                        Arc::new(PackedW::new(rows.len(), |r, j| w[(r, j)] as f32)),
                        j,
                    )
                }
            };
            built.push(Head {
                cols,
                s2,
                alpha: gp.alpha.iter().map(|&a| a as f32).collect(),
                w,
                var_of,
            });
        }
        let heads = built;
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

    /// The number of distinct variances per candidate: models with the same columns, signal
    /// variance and `W` share theirs.
    pub fn distinct_variances(&self) -> usize {
        self.variance_heads().count()
    }

    /// The models that compute their own variances (the others copy theirs), with their
    /// indices.
    fn variance_heads(&self) -> impl Iterator<Item = (usize, &Head)> {
        self.heads
            .iter()
            .enumerate()
            .filter(|(j, h)| h.var_of == *j)
    }

    /// Fills `mean` and `var` (row-major, `tile.len() × heads`: row `r`'s model `j` at
    /// `r · heads + j`) with each model's standardised latent mean and variance, the bits of
    /// its own [`super::CpuScorer`]'s [`crate::backend::Scorer::posterior_into`].
    ///
    /// # Errors
    /// A tile of another kind than the models', dense values that would overflow `f32`, or a
    /// non-finite posterior.
    pub fn posterior_into(&self, tile: &Features, mean: &mut [f32], var: &mut [f32]) -> Result<()> {
        self.pass(tile, mean, var, true)?;
        check_finite_posterior(0, mean, var)
    }

    /// Fills `mean` (row-major, `tile.len() × heads`) with each model's standardised latent
    /// mean, the bits of [`SharedCpuScorer::posterior_into`]'s, without the variances.
    ///
    /// # Errors
    /// As [`SharedCpuScorer::posterior_into`], for the means.
    pub fn means_into(&self, tile: &Features, mean: &mut [f32]) -> Result<()> {
        let mut none = vec![0f32; mean.len()];
        self.pass(tile, mean, &mut none, false)?;
        check_finite_posterior(0, mean, &none)
    }

    /// Each model's signal variance: its prior variance, which no posterior variance exceeds.
    pub fn signal_vars(&self) -> Vec<f32> {
        self.heads.iter().map(|h| h.s2).collect()
    }

    /// The kernel block and each model's mean (and, with `variances`, variance) of every row.
    fn pass(
        &self,
        tile: &Features,
        mean: &mut [f32],
        var: &mut [f32],
        variances: bool,
    ) -> Result<()> {
        check_tile_kind(tile, self.kind)?;
        check_dense_range(tile, self.train_abs_max)?;
        let (n, h) = (self.n, self.heads.len());
        assert_eq!(mean.len(), tile.len() * h);
        assert_eq!(var.len(), tile.len() * h);
        mean.par_chunks_mut(CHUNK * h)
            .zip(var.par_chunks_mut(CHUNK * h))
            .enumerate()
            .for_each_init(
                || Scratch::new(n),
                |s, (c, (mean, var))| {
                    let rows = mean.len() / h;
                    self.block(tile, c * CHUNK, rows, s);
                    for (j, head) in self.heads.iter().enumerate() {
                        if !variances || head.var_of != j {
                            // The mean alone: `s2 · k` formed inside the dot product.
                            for i in 0..rows {
                                let row = &s.block[i * n..(i + 1) * n];
                                mean[i * h + j] = scaled_dot(row, head, &mut s.ks);
                                if variances {
                                    var[i * h + j] = var[i * h + head.var_of];
                                }
                            }
                            continue;
                        }
                        let nj = head.alpha.len();
                        let mut ks = std::mem::take(&mut s.ks);
                        self.head_rows(s, head, rows, &mut ks);
                        s.part.resize(rows, 0.0);
                        head.w.variances(&ks, head.s2, &mut s.part);
                        for i in 0..rows {
                            mean[i * h + j] = dot(&ks[i * nj..(i + 1) * nj], &head.alpha);
                            var[i * h + j] = s.part[i];
                        }
                        s.ks = ks;
                    }
                },
            );
        Ok(())
    }

    /// Model `head`'s kernel rows `s2 · k(row, its X)` of the first `rows` rows of `s.block`
    /// into `ks` (row-major, one row per pool row).
    fn head_rows(&self, s: &Scratch, head: &Head, rows: usize, ks: &mut Vec<f32>) {
        let (n, nj) = (self.n, head.alpha.len());
        ks.resize(rows * nj, 0.0);
        let s2 = head.s2;
        for i in 0..rows {
            let (row, out) = (&s.block[i * n..(i + 1) * n], &mut ks[i * nj..(i + 1) * nj]);
            match head.cols.as_deref() {
                None => out.iter_mut().zip(row).for_each(|(o, k)| *o = s2 * k),
                Some(cols) => out
                    .iter_mut()
                    .zip(cols)
                    .for_each(|(o, &c)| *o = s2 * row[c]),
            }
        }
    }

    /// The variances of the tile rows `rows` under every model, by stages: their kernel rows
    /// again, then each model's `W` panel by panel up to about 1/8, 1/4, 1/2 and all of its
    /// rows; after each stage but the last, `admits(row, var_hi)` is asked with each model's
    /// variance bound so far (`max(s2 − Σ`, 0)` over the rows of `W` done, which only falls and
    /// is never below the final variance), and a row it refuses gets no further panels.
    /// Returns the rows that reached the end with their variances (one per model), the bits of
    /// [`SharedCpuScorer::posterior_into`]'s; chunks of rows in parallel.
    pub fn staged_variances(
        &self,
        tile: &Features,
        rows: &[usize],
        admits: impl Fn(usize, &[f32]) -> bool + Sync,
    ) -> Vec<(usize, Vec<f32>)> {
        let ends: Vec<Vec<usize>> = self
            .heads
            .iter()
            .map(|h| stage_ends(h.w.panels()))
            .collect();
        let stages = ends.iter().map(Vec::len).max().unwrap_or(1);
        // Every model's stage `s`: its own `s`-th end, its last once it has no more.
        let end = |j: usize, s: usize| ends[j][s.min(ends[j].len() - 1)];
        rows.par_chunks(CHUNK)
            .map_init(
                || Scratch::new(self.n),
                |s, which| {
                    let m = which.len();
                    self.block(&tile.select_rows(which), 0, m, s);
                    let mut ks: Vec<Vec<f32>> = vec![Vec::new(); self.heads.len()];
                    for (j, head) in self.variance_heads() {
                        self.head_rows(s, head, m, &mut ks[j]);
                    }
                    let mut acc: Vec<Vec<Acc>> = vec![vec![[0.0; LANES]; m]; self.heads.len()];
                    // `alive[i]`: the place in `which` of the row whose sums are at `i`.
                    let mut alive: Vec<usize> = (0..m).collect();
                    let mut hi = vec![0f32; self.heads.len()];
                    for stage in 0..stages {
                        let live = alive.len();
                        for (j, head) in self.variance_heads() {
                            let nj = head.alpha.len();
                            let from = if stage == 0 { 0 } else { end(j, stage - 1) };
                            head.w.accumulate(
                                &ks[j][..live * nj],
                                &mut acc[j][..live],
                                from..end(j, stage),
                            );
                        }
                        if stage + 1 == stages {
                            break;
                        }
                        let mut kept = 0;
                        for i in 0..live {
                            for (j, head) in self.heads.iter().enumerate() {
                                hi[j] = finish(&acc[head.var_of][i], head.s2);
                            }
                            if !admits(which[alive[i]], &hi) {
                                continue;
                            }
                            if kept != i {
                                for (j, head) in self.variance_heads() {
                                    let nj = head.alpha.len();
                                    ks[j].copy_within(i * nj..(i + 1) * nj, kept * nj);
                                    acc[j][kept] = acc[j][i];
                                }
                                alive[kept] = alive[i];
                            }
                            kept += 1;
                        }
                        alive.truncate(kept);
                        if kept == 0 {
                            break;
                        }
                    }
                    alive
                        .iter()
                        .enumerate()
                        .map(|(i, &a)| {
                            let var = self
                                .heads
                                .iter()
                                .map(|head| finish(&acc[head.var_of][i], head.s2))
                                .collect();
                            (which[a], var)
                        })
                        .collect::<Vec<_>>()
                },
            )
            .flatten()
            .collect()
    }

    /// The unscaled block `k(rows, X)` of the tile's rows `start..start + rows` into `s.block`.
    fn block(&self, tile: &Features, start: usize, rows: usize, s: &mut Scratch) {
        let n = self.n;
        let out = &mut s.block[..rows * n];
        match &self.train {
            Train::Popcount(side) => {
                side.block(
                    tile,
                    start..start + rows,
                    1.0,
                    &mut s.packed,
                    &mut s.counts,
                    out,
                );
            }
            Train::Dense {
                dim,
                data,
                inv_ls,
                matern,
            } => {
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
        }
    }
}

/// `dot(ks, alpha)` of [`super::dot`] for the model's kernel row `ks[c] = s2 · row[col c]`:
/// the same products in the same order, hence its bits. A model on every labeled row forms
/// `s2 · row[c]` inside the (vectorised) loop; a model on a subset gathers its row into
/// `gathered` first.
#[inline]
fn scaled_dot(row: &[f32], head: &Head, gathered: &mut Vec<f32>) -> f32 {
    let (s2, alpha) = (head.s2, &head.alpha);
    match head.cols.as_deref() {
        None => {
            let mut acc = [0f32; 16];
            let (ca, cb) = (row[..alpha.len()].chunks_exact(16), alpha.chunks_exact(16));
            let tail: f32 = ca
                .remainder()
                .iter()
                .zip(cb.remainder())
                .map(|(x, y)| (s2 * x) * y)
                .sum();
            for (x, y) in ca.zip(cb) {
                for k in 0..16 {
                    acc[k] += (s2 * x[k]) * y[k];
                }
            }
            acc.iter().sum::<f32>() + tail
        }
        Some(cols) => {
            gathered.clear();
            gathered.extend(cols.iter().map(|&c| s2 * row[c]));
            dot(gathered, alpha)
        }
    }
}

/// Whether `a` and `b` are the same matrix, bit for bit.
fn same_bits(a: &faer::Mat<f64>, b: &faer::Mat<f64>) -> bool {
    a.nrows() == b.nrows()
        && a.ncols() == b.ncols()
        && (0..a.ncols())
            .all(|j| (0..a.nrows()).all(|i| a[(i, j)].to_bits() == b[(i, j)].to_bits()))
}

/// Per-task scratch of [`SharedCpuScorer::posterior_into`]: the unscaled block of one chunk,
/// and one model's scaled rows.
struct Scratch {
    packed: Packed,
    counts: Vec<u8>,
    block: Vec<f32>,
    ks: Vec<f32>,
    part: Vec<f32>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Scratch {
            packed: Packed::default(),
            counts: Vec::new(),
            block: vec![0.0; CHUNK * n],
            ks: Vec::new(),
            part: Vec::new(),
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
        let shared = compare(&union, &tile, &[(&gp_all, &all[..]), (&gp_odd, &odd[..])]);
        assert_eq!(shared.distinct_variances(), 2);
    }

    /// Scores `tile` under `models` shared, checks every model's means and variances (all of
    /// them, and by stages) against its own [`CpuScorer`] bit for bit, and returns the scorer.
    fn compare(
        union: &Features,
        tile: &Features,
        models: &[(&FittedGp, &[usize])],
    ) -> SharedCpuScorer {
        let shared = SharedCpuScorer::new(union, models).unwrap();
        let (rows, h) = (tile.len(), models.len());
        let (mut mean, mut var) = (vec![0f32; rows * h], vec![0f32; rows * h]);
        shared.posterior_into(tile, &mut mean, &mut var).unwrap();
        let mut alone = vec![0f32; rows * h];
        shared.means_into(tile, &mut alone).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&alone), bits(&mean), "the means without the variances");
        // By stages, with every other row refused after the first stage.
        let all_rows: Vec<usize> = (0..rows).collect();
        let staged = shared.staged_variances(tile, &all_rows, |r, _| r % 2 == 0);
        assert!(!staged.is_empty());
        for (r, v) in &staged {
            assert_eq!(r % 2, 0, "row {r} was refused");
            assert_eq!(bits(v), bits(&var[r * h..(r + 1) * h]), "staged row {r}");
        }
        for (j, (gp, _)) in models.iter().enumerate() {
            let alone = CpuScorer::new(gp);
            let (mut m, mut v) = (vec![0f32; rows], vec![0f32; rows]);
            alone.posterior_into(tile, &mut m, &mut v).unwrap();
            for r in 0..rows {
                assert_eq!(
                    mean[r * h + j].to_bits(),
                    m[r].to_bits(),
                    "model {j} row {r}"
                );
                assert_eq!(
                    var[r * h + j].to_bits(),
                    v[r].to_bits(),
                    "model {j} row {r}"
                );
            }
        }
        shared
    }

    #[test]
    fn models_with_one_covariance_share_their_variances() {
        let s = generate(Scenario::Smooth, 40 + CHUNK + 9, 6, 4)
            .unwrap()
            .pool;
        let features = to_bits(&s.features, 256, 5).unwrap();
        let n = 40;
        let union = features.select_rows(&(0..n).collect::<Vec<_>>());
        let tile = features.select_rows(&(n..features.len()).collect::<Vec<_>>());
        let fixed = |noise: f64| {
            ModelSpec {
                kernel: Some(KernelKind::MinMax),
                signal_var: Some(1.0),
                noise: Some(noise),
                ..ModelSpec::default()
            }
            .check(union.kind())
            .unwrap()
        };
        let all: Vec<usize> = (0..n).collect();
        let odd: Vec<usize> = (0..n).filter(|r| r % 2 == 1).collect();
        let y2: Vec<f64> = s.y.iter().map(|v| (v * 3.0).sin()).collect();
        let a = fit(&fixed(0.1), &union, &s.y[..n]).unwrap();
        // Other labels, the same rows and hyperparameters: the same covariance.
        let b = fit(&fixed(0.1), &union, &y2[..n]).unwrap();
        // Another noise, or other rows: covariances of their own.
        let c = fit(&fixed(0.3), &union, &y2[..n]).unwrap();
        let y_odd: Vec<f64> = odd.iter().map(|&r| s.y[r]).collect();
        let d = fit(&fixed(0.1), &union.select_rows(&odd), &y_odd).unwrap();
        let models = [
            (&a, &all[..]),
            (&b, &all[..]),
            (&c, &all[..]),
            (&d, &odd[..]),
        ];
        let shared = compare(&union, &tile, &models);
        assert_eq!(shared.distinct_variances(), 3);
        let var_of: Vec<usize> = shared.heads.iter().map(|h| h.var_of).collect();
        assert_eq!(var_of, [0, 0, 2, 3]);
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
