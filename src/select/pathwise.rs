//! Joint posterior samples over the whole pool by pathwise conditioning (Wilson et al., ICML
//! 2020, "Efficiently sampling functions from Gaussian process posteriors"), for `thompson`
//! and `qpo` without a shortlist.
//!
//! A sample of the posterior is a sample of the prior corrected by the data:
//! `f(x) = f₀(x) + s2·k(x, X)·v`, with `v = A⁻¹(y − f₀(X) − ε)`, `A = s2·K + n2·I` (the model's
//! factor `L`), `ε ~ N(0, n2)` and `f₀` a draw of the prior. If `f₀` had the prior's
//! covariance exactly, `f` would be an exact posterior sample. The prior draw is a weighted
//! sum of `D` random features, `f₀(x) = √s2·Σ_d w_d·φ_d(x)`, `w ~ N(0, I)`, with
//! `E[φ(x)·φ(y)] = k(x, y)`:
//! - MinMax (Tanimoto on bits is the same kernel): `φ_d(x) = ±1/√D`, the sign a random
//!   function of the `d`-th consistent weighted sample of `x` (Ioffe 2010, "Improved
//!   consistent sampling"), whose two values collide with probability exactly
//!   `Σ min / Σ max`; so `E[φ_d(x)φ_d(y)] = P(collide)/D`. These are the random features of
//!   Tripp et al. (NeurIPS 2023, "Tanimoto random features").
//! - RBF and Matérn 5/2: random Fourier features `φ_d(x) = √(2/D)·cos(ω_d·x + b_d)`, `ω` drawn
//!   from the kernel's spectral density (Gaussian; Student t with 5 degrees of freedom).
//!
//! With `D` features the prior draw's covariance is the kernel up to `O(1/√D)` per entry, so
//! the samples are approximate where the data do not pin the function down; averaged over
//! feature draws (seeds, rounds) the covariance is exact, which the tests check. Every random
//! number comes from the counter hash keyed by (seed, round, feature, sample), none by the
//! candidate, so a candidate's sample does not depend on the tiling, the thread count or the
//! backend. The work is `D·nnz + (D + n)·S` per candidate for `S` samples, on the CPU.

use std::collections::HashMap;

use faer::{Accum, Mat, MatMut, MatRef, Par};

use crate::acquisition::{AcqContext, Acquisition};
use crate::backend::CpuScorer;
use crate::backend::Isa;
use crate::data::Features;
use crate::error::{Error, Result};
use crate::gp::{Approximation, FittedGp};
use crate::kernel::{Kernel, KernelKind};
use crate::rng::{draw_u32, normal_draw_on};

use super::joint::default_samples;
use super::{Ranked, TopK};

/// Random features of the prior draw when not told.
pub const DEFAULT_FEATURES: usize = 1024;

/// How `thompson` and `qpo` draw their joint samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JointSampler {
    /// Exact over a shortlist of the best by the upper quantile ([`crate::select::joint`]).
    #[default]
    Shortlist,
    /// Over the whole pool by pathwise conditioning on a random-feature prior draw.
    Pathwise,
}

impl crate::names::Named for JointSampler {
    const WHAT: &'static str = "joint sampler";
    const TABLE: &'static [(Self, &'static str, &'static str)] = &[
        (
            JointSampler::Shortlist,
            "shortlist",
            "Exact joint samples over the best by mean + 3 sd (grown when the samples reach its tail)",
        ),
        (
            JointSampler::Pathwise,
            "pathwise",
            "Samples over the whole pool: a random-feature prior draw conditioned on the labels (exact GP only)",
        ),
    ];
}

crate::names::named!(JointSampler);

/// Why a setting does not go with the pathwise sampler.
pub const PATHWISE_ALONE: &str = "the pathwise sampler draws over the whole pool for thompson and qpo in top-k mode, without a shortlist or a similarity cap";

/// Streams of the prior's random numbers (the joint shortlist samples use `0x1000_0000 + 2s`).
const CWS_STREAM: u32 = 0x2000_0000; // + 0..5: the weighted sampler's r, c, β
const SIGN_STREAM: u32 = 0x3000_0000; // + d: the sign of feature d's sample
const WEIGHT_STREAM: u32 = 0x4000_0000; // + 2s: sample s's feature weights
const NOISE_STREAM: u32 = 0x5000_0000; // + 2s: sample s's label noise
const FOURIER_STREAM: u32 = 0x6000_0000; // + 0..: frequencies and phases

/// The most sample values [`PathwiseSamples::for_each_block`] holds at once (128 MiB).
pub const BLOCK_VALUES: usize = 1 << 25;

/// The most samples (their streams must not run into the next block).
pub const MAX_SAMPLES: usize = 1 << 26;

/// Above this many `(feature index, d)` pairs the weighted sampler's parameters are drawn when
/// needed rather than kept in a table (16 bytes each).
const TABLE_LIMIT: usize = 1 << 23;

/// A uniform draw on `(0, 1)`: never 0 or 1, so its log is finite.
fn open_uniform(word: u32) -> f64 {
    (f64::from(word) + 0.5) * (1.0 / 4_294_967_296.0)
}

/// The weighted sampler's parameters of one feature index for every `d`, as four arrays:
/// `r ~ Gamma(2, 1)`, `1/r`, `ln c` with `c ~ Gamma(2, 1)`, and `β ~ U(0, 1)`.
#[derive(Clone, Debug, Default)]
struct CwsParams {
    r: Vec<f32>,
    inv_r: Vec<f32>,
    ln_c: Vec<f32>,
    beta: Vec<f32>,
}

impl CwsParams {
    /// Draws the parameters of `(k, d)` for `d` in `0..dim` into `self` (after what it holds).
    fn extend(&mut self, seed: u64, round: u32, k: usize, dim: usize) {
        for d in 0..dim {
            let index = ((k as u64) << 32) | d as u64;
            let u = |i: u32| open_uniform(draw_u32(seed, round, index, CWS_STREAM + i));
            let r = -(u(0) * u(1)).ln();
            let c = -(u(2) * u(3)).ln();
            self.r.push(r as f32);
            self.inv_r.push((1.0 / r) as f32);
            self.ln_c.push(c.ln() as f32);
            self.beta.push(u(4) as f32);
        }
    }

    fn clear(&mut self) {
        self.r.clear();
        self.inv_r.clear();
        self.ln_c.clear();
        self.beta.clear();
    }
}

/// One feature index's parameters for every `d`.
#[derive(Clone, Copy)]
struct ParamsRef<'a> {
    r: &'a [f32],
    inv_r: &'a [f32],
    ln_c: &'a [f32],
    beta: &'a [f32],
}

/// Offers feature index `k` with log count `ln_v` to every `d` of the weighted sampler: `t =
/// ⌊ln v / r + β⌋`, `ln a = ln c − r(t − β + 1)` (Ioffe 2010, in logs), and `d` keeps the
/// index with the least `ln a`. The value floored is clamped to ±2³⁰ first, so `t` fits an
/// `i32` (beyond that `r` is so small that `a` hardly depends on `t`). The AVX2 build of the
/// loop (vectorised, the floor one rounding instruction) and the portable one compute the
/// same operations without fused multiply-adds, so they give the same bits.
fn cws_visit(
    avx2: bool,
    ln_v: f32,
    k: u32,
    p: ParamsRef<'_>,
    best: &mut [f32],
    out_k: &mut [u32],
    out_t: &mut [i32],
) {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: `avx2` is true only when the CPU has AVX2 and FMA (`Isa::best`).
        unsafe { cws_visit_avx2(ln_v, k, p, best, out_k, out_t) };
        return;
    }
    let _ = avx2;
    cws_visit_body(ln_v, k, p, best, out_k, out_t);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn cws_visit_avx2(
    ln_v: f32,
    k: u32,
    p: ParamsRef<'_>,
    best: &mut [f32],
    out_k: &mut [u32],
    out_t: &mut [i32],
) {
    cws_visit_body(ln_v, k, p, best, out_k, out_t);
}

#[inline(always)]
fn cws_visit_body(
    ln_v: f32,
    k: u32,
    p: ParamsRef<'_>,
    best: &mut [f32],
    out_k: &mut [u32],
    out_t: &mut [i32],
) {
    const LIMIT: f32 = (1 << 30) as f32;
    let n = best.len();
    let (r, inv_r, ln_c, beta) = (&p.r[..n], &p.inv_r[..n], &p.ln_c[..n], &p.beta[..n]);
    let (out_k, out_t) = (&mut out_k[..n], &mut out_t[..n]);
    for d in 0..n {
        let x = (ln_v * inv_r[d] + beta[d]).clamp(-LIMIT, LIMIT);
        let t = x.floor();
        let ln_a = ln_c[d] - r[d] * (t - beta[d] + 1.0);
        let better = ln_a < best[d];
        best[d] = if better { ln_a } else { best[d] };
        out_k[d] = if better { k } else { out_k[d] };
        out_t[d] = if better { t as i32 } else { out_t[d] };
    }
}

/// Per-row work space of the weighted sampler: the samples `(k*, t*)`, the best `ln a` so
/// far, and the parameters of one feature index when there is no table.
#[derive(Default)]
struct Scratch {
    k: Vec<u32>,
    t: Vec<i32>,
    best: Vec<f32>,
    params: CwsParams,
}

/// The random features of the prior draw, for one round.
pub struct PriorFeatures {
    dim: usize,
    seed: u64,
    round: u32,
    kind: Prior,
}

enum Prior {
    /// Consistent weighted sampling on bits or counts; the parameters of `(k, d)` at
    /// `k·D + d` when they fit [`TABLE_LIMIT`], else drawn row by row.
    Cws { table: Option<CwsParams> },
    /// Random Fourier features: `omega` is `D × input` row-major.
    Fourier {
        input: usize,
        omega: Vec<f32>,
        phase: Vec<f32>,
    },
}

impl PriorFeatures {
    /// `dim` random features for the kernel of `gp`, drawn for the round of `ctx`.
    ///
    /// # Errors
    /// No features.
    pub fn new(gp: &FittedGp, dim: usize, ctx: &AcqContext) -> Result<Self> {
        Self::for_kernel(&gp.train, gp.kernel, dim, ctx.seed, ctx.round)
    }

    /// `dim` random features for `kernel` on features shaped as `like`.
    fn for_kernel(
        like: &Features,
        kernel: Kernel,
        dim: usize,
        seed: u64,
        round: u32,
    ) -> Result<Self> {
        if dim == 0 {
            return Err(Error::param("prior features", "must be at least 1"));
        }
        let kind = match like {
            Features::Bits { nbits, .. } => Prior::cws(*nbits, dim, seed, round),
            Features::Counts { ndim, .. } => Prior::cws(*ndim, dim, seed, round),
            Features::Dense { dim: input, .. } => {
                let input = *input;
                let inv_ls = 1.0 / kernel.lengthscale;
                let mut omega = Vec::with_capacity(dim * input);
                let mut phase = Vec::with_capacity(dim);
                for d in 0..dim {
                    let normal = |i: usize| {
                        let index = ((d as u64) << 32) | i as u64;
                        f64::from(normal_draw_on(seed, round, index, FOURIER_STREAM))
                    };
                    // Matérn 5/2: a Student t with 5 degrees of freedom, z·√(5/χ²₅).
                    let scale = match kernel.kind {
                        KernelKind::Matern52 => {
                            let chi2: f64 = (0..5).map(|i| normal(input + i).powi(2)).sum();
                            (5.0 / chi2).sqrt()
                        }
                        _ => 1.0,
                    };
                    omega.extend((0..input).map(|j| (normal(j) * inv_ls * scale) as f32));
                    let u = open_uniform(draw_u32(seed, round, d as u64, FOURIER_STREAM + 2));
                    phase.push((std::f64::consts::TAU * u) as f32);
                }
                Prior::Fourier {
                    input,
                    omega,
                    phase,
                }
            }
        };
        Ok(PriorFeatures {
            dim,
            seed,
            round,
            kind,
        })
    }

    /// Number of features `D`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The consistent weighted samples `(k*, t*)` of row `i` of `x`, one per feature, into
    /// `s.k` and `s.t`; an empty fingerprint has `(u32::MAX, 0)` everywhere (it collides only
    /// with other empty ones, as MinMax has it).
    fn samples_of(&self, x: &Features, i: usize, s: &mut Scratch) {
        let Prior::Cws { table } = &self.kind else {
            unreachable!("weighted samples of a dense prior");
        };
        let dim = self.dim;
        s.k.clear();
        s.k.resize(dim, u32::MAX);
        s.t.clear();
        s.t.resize(dim, 0);
        s.best.clear();
        s.best.resize(dim, f32::INFINITY);
        let Scratch {
            k: out_k,
            t: out_t,
            best,
            params,
        } = s;
        let avx2 = Isa::best() != Isa::Portable;
        let mut visit = |k: usize, ln_v: f32| {
            let (p, at) = match table {
                Some(t) => (t, k * dim),
                None => {
                    params.clear();
                    params.extend(self.seed, self.round, k, dim);
                    (&*params, 0)
                }
            };
            let p = ParamsRef {
                r: &p.r[at..at + dim],
                inv_r: &p.inv_r[at..at + dim],
                ln_c: &p.ln_c[at..at + dim],
                beta: &p.beta[at..at + dim],
            };
            cws_visit(avx2, ln_v, k as u32, p, best, out_k, out_t);
        };
        match x {
            Features::Bits { .. } => {
                let row = x.bits_row(i).expect("bits");
                for (w, &word) in row.iter().enumerate() {
                    let mut bits = word;
                    while bits != 0 {
                        visit(w * 64 + bits.trailing_zeros() as usize, 0.0);
                        bits &= bits - 1;
                    }
                }
            }
            Features::Counts { .. } => {
                let (idx, val) = x.counts_row(i).expect("counts");
                for (&k, &v) in idx.iter().zip(val) {
                    visit(k as usize, (v as f32).ln());
                }
            }
            Features::Dense { .. } => unreachable!("weighted samples of dense features"),
        }
    }

    /// Fills `out` (row-major `rows × D`) with the features of rows `first..first + rows` of
    /// `x`.
    pub fn fill(&self, x: &Features, first: usize, rows: usize, out: &mut [f32]) {
        let dim = self.dim;
        assert_eq!(out.len(), rows * dim);
        match &self.kind {
            Prior::Cws { .. } => {
                let amp = 1.0 / (dim as f32).sqrt();
                let mut s = Scratch::default();
                for r in 0..rows {
                    self.samples_of(x, first + r, &mut s);
                    for (d, (o, (&k, &t))) in out[r * dim..(r + 1) * dim]
                        .iter_mut()
                        .zip(s.k.iter().zip(&s.t))
                        .enumerate()
                    {
                        let index = (u64::from(k) << 32) | u64::from(t as u32);
                        let word = draw_u32(self.seed, self.round, index, SIGN_STREAM + d as u32);
                        *o = if word & 1 == 0 { amp } else { -amp };
                    }
                }
            }
            Prior::Fourier {
                input,
                omega,
                phase,
            } => {
                let amp = (2.0 / dim as f64).sqrt() as f32;
                for r in 0..rows {
                    let row = x.dense_row(first + r).expect("dense");
                    for d in 0..dim {
                        let w = &omega[d * input..(d + 1) * input];
                        let dot: f32 = w.iter().zip(row).map(|(a, b)| a * b).sum();
                        out[r * dim + d] = amp * (dot + phase[d]).cos();
                    }
                }
            }
        }
    }
}

impl Prior {
    fn cws(ndim: usize, dim: usize, seed: u64, round: u32) -> Prior {
        let table = (ndim.saturating_mul(dim) <= TABLE_LIMIT).then(|| {
            use rayon::prelude::*;
            (0..ndim)
                .into_par_iter()
                .fold(CwsParams::default, |mut p, k| {
                    p.extend(seed, round, k, dim);
                    p
                })
                .reduce(CwsParams::default, |mut a, b| {
                    a.r.extend(b.r);
                    a.inv_r.extend(b.inv_r);
                    a.ln_c.extend(b.ln_c);
                    a.beta.extend(b.beta);
                    a
                })
        });
        Prior::Cws { table }
    }
}

/// `S` joint posterior samples of a fitted exact GP, ready to evaluate on pool tiles.
pub struct PathwiseSamples {
    prior: PriorFeatures,
    /// `√s2·w`, `D × S`.
    weights: Mat<f32>,
    /// `v = A⁻¹(y − f₀(X) − ε)`, `n × S`.
    update: Mat<f32>,
    kernel: CpuScorer,
    samples: usize,
}

impl PathwiseSamples {
    /// Samples `0..samples` of the posterior of `gp`, with `features` random features.
    ///
    /// # Errors
    /// A sparse model (the update needs the exact factor), no samples, too many.
    pub fn new(gp: &FittedGp, features: usize, samples: usize, ctx: &AcqContext) -> Result<Self> {
        if gp.info.approximation != Approximation::Exact {
            return Err(Error::param(
                "joint sampler",
                "pathwise samples need an exact GP; fit without --inducing, or use --joint-sampler shortlist",
            ));
        }
        if samples == 0 || samples > MAX_SAMPLES {
            return Err(Error::param(
                "samples",
                format!("{samples}: pathwise sampling draws 1 to {MAX_SAMPLES} samples"),
            ));
        }
        let prior = PriorFeatures::new(gp, features, ctx)?;
        let (n, dim) = (gp.n_train(), prior.dim());
        let sd = gp.signal_var.sqrt();
        let weights = Mat::<f64>::from_fn(dim, samples, |d, s| {
            let stream = WEIGHT_STREAM.wrapping_add(2 * s as u32);
            sd * f64::from(normal_draw_on(ctx.seed, ctx.round, d as u64, stream))
        });
        // The prior draws at the training rows, plus the label noise the factor holds.
        let mut phi = vec![0f32; n * dim];
        prior.fill(&gp.train, 0, n, &mut phi);
        let phi = Mat::<f64>::from_fn(n, dim, |i, d| f64::from(phi[i * dim + d]));
        let noise_sd = (gp.noise + gp.info.jitter).sqrt();
        let mut rhs = &phi * &weights;
        for s in 0..samples {
            let stream = NOISE_STREAM.wrapping_add(2 * s as u32);
            for i in 0..n {
                let e = noise_sd * f64::from(normal_draw_on(ctx.seed, ctx.round, i as u64, stream));
                rhs[(i, s)] += e;
            }
        }
        let l = gp.chol.as_ref();
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(
            l,
            rhs.as_mut(),
            Par::rayon(0),
        );
        faer::linalg::triangular_solve::solve_upper_triangular_in_place(
            l.transpose(),
            rhs.as_mut(),
            Par::rayon(0),
        );
        let update = Mat::<f32>::from_fn(n, samples, |i, s| (gp.alpha[i] - rhs[(i, s)]) as f32);
        Ok(PathwiseSamples {
            prior,
            weights: Mat::from_fn(dim, samples, |d, s| weights[(d, s)] as f32),
            update,
            kernel: CpuScorer::new(gp),
            samples,
        })
    }

    /// Number of samples `S`.
    pub fn len(&self) -> usize {
        self.samples
    }

    /// True when there are no samples (never: [`PathwiseSamples::new`] refuses it).
    pub fn is_empty(&self) -> bool {
        self.samples == 0
    }

    /// Random features of the prior draw.
    pub fn features(&self) -> usize {
        self.prior.dim()
    }

    /// Every sample at every row of `x`, in blocks of rows whose values take at most
    /// [`BLOCK_VALUES`] floats: `visit(first, values)` gets the block's first row and its
    /// values (row-major `rows × S`). Blocks start at multiples of [`crate::backend::CHUNK`],
    /// so a row's values are those of [`PathwiseSamples::eval_into`] on the whole of `x`.
    ///
    /// # Errors
    /// A tile the model cannot score, or what `visit` returns.
    pub fn for_each_block(
        &self,
        x: &Features,
        visit: impl FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        let chunk = crate::backend::CHUNK;
        self.blocks(
            x,
            (BLOCK_VALUES / self.samples / chunk).max(1) * chunk,
            visit,
        )
    }

    /// [`PathwiseSamples::for_each_block`] in blocks of `block` rows.
    fn blocks(
        &self,
        x: &Features,
        block: usize,
        mut visit: impl FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        let mut values = Vec::new();
        if x.len() <= block {
            self.eval_into(x, &mut values)?;
            return visit(0, &values);
        }
        for first in (0..x.len()).step_by(block) {
            let rows: Vec<usize> = (first..(first + block).min(x.len())).collect();
            self.eval_into(&x.select_rows(&rows), &mut values)?;
            visit(first, &values)?;
        }
        Ok(())
    }

    /// Every sample at every row of `tile`: `out` becomes row-major `rows × S` (standardised
    /// latent values, as the posterior mean).
    ///
    /// # Errors
    /// A tile the model cannot score (another kind, dense values out of range).
    pub fn eval_into(&self, tile: &Features, out: &mut Vec<f32>) -> Result<()> {
        let (s, dim) = (self.samples, self.prior.dim());
        out.clear();
        out.resize(tile.len() * s, 0.0);
        let n = self.update.nrows();
        self.kernel.kernel_chunks(tile, out, s, |start, ks, out| {
            let rows = out.len() / s;
            let mut phi = vec![0f32; rows * dim];
            self.prior.fill(tile, start, rows, &mut phi);
            let mut f = MatMut::from_row_major_slice_mut(out, rows, s);
            let phi = MatRef::from_row_major_slice(&phi, rows, dim);
            faer::linalg::matmul::matmul(
                f.as_mut(),
                Accum::Replace,
                phi,
                self.weights.as_ref(),
                1.0,
                Par::Seq,
            );
            let ks = MatRef::from_row_major_slice(ks, rows, n);
            faer::linalg::matmul::matmul(f, Accum::Add, ks, self.update.as_ref(), 1.0, Par::Seq);
        })
    }
}

/// Batch Thompson sampling over a stream of candidates: pick `j` is the best, among those not
/// picked before it, of sample `j`; so sample `j` keeps its best `j + 1` candidates. Memory:
/// `b(b + 1)/2` entries for a batch of `b`.
pub struct ThompsonPicks<T> {
    tops: Vec<TopK<T>>,
}

impl<T: Clone> ThompsonPicks<T> {
    /// For a batch of `batch` (one sample per pick).
    pub fn new(batch: usize) -> Self {
        ThompsonPicks {
            tops: (0..batch).map(|j| TopK::new(j + 1)).collect(),
        }
    }

    /// Offers a candidate with its value under each sample (`values[j]`, at least the batch);
    /// `key` breaks ties (lower first). `item` is built only when some sample keeps it.
    pub fn offer(&mut self, values: &[f32], key: usize, item: impl FnOnce() -> T) {
        let mut item = Lazy::new(item);
        for (top, &v) in self.tops.iter_mut().zip(values) {
            if top.accepts(v, key) {
                top.push(v, key, item.get().clone());
            }
        }
    }

    /// The picks in order, each with its sample's value there.
    pub fn finish(self) -> Vec<Ranked<T>> {
        let mut taken = std::collections::HashSet::new();
        let mut picks = Vec::with_capacity(self.tops.len());
        for top in self.tops {
            if let Some(r) = top
                .into_sorted()
                .into_iter()
                .find(|r| !taken.contains(&r.index))
            {
                taken.insert(r.index);
                picks.push(r);
            }
        }
        picks
    }
}

/// qPO over a stream of candidates: each sample's argmax, counted, and the best `batch` by the
/// screening quantile to break ties and fill the batch.
pub struct QpoPicks<T> {
    best: Vec<Option<(f32, usize)>>,
    /// Items of the candidates some sample's argmax has been at.
    items: HashMap<usize, (f32, T)>,
    by_quantile: TopK<T>,
    batch: usize,
}

impl<T: Clone> QpoPicks<T> {
    /// For a batch of `batch` from `samples` samples.
    pub fn new(batch: usize, samples: usize) -> Self {
        QpoPicks {
            best: vec![None; samples],
            items: HashMap::new(),
            by_quantile: TopK::new(batch),
            batch,
        }
    }

    /// Offers a candidate: its value under each sample, its quantile `mean + 3·sd`, its key.
    pub fn offer(&mut self, values: &[f32], quantile: f32, key: usize, item: impl FnOnce() -> T) {
        let mut item = Lazy::new(item);
        let mut won = false;
        for (b, &v) in self.best.iter_mut().zip(values) {
            if b.is_none_or(|(bv, bk)| super::better((v, key), (bv, bk))) {
                *b = Some((v, key));
                won = true;
            }
        }
        if won {
            self.items.insert(key, (quantile, item.get().clone()));
        }
        if self.by_quantile.accepts(quantile, key) {
            self.by_quantile.push(quantile, key, item.get().clone());
        }
    }

    /// The batch: highest probability of being the best first, ties by the quantile then the
    /// key, filled by the quantile; each with its probability (0 for the fill). Also the
    /// number of distinct argmaxes.
    pub fn finish(self) -> (Vec<Ranked<T>>, usize) {
        let total = self.best.len().max(1) as f64;
        let mut wins: HashMap<usize, u64> = HashMap::new();
        for &(_, k) in self.best.iter().flatten() {
            *wins.entry(k).or_default() += 1;
        }
        let winners = wins.len();
        let mut order: Vec<(usize, u64)> = wins.into_iter().collect();
        order.sort_by(|a, b| {
            let qa = self.items[&a.0].0;
            let qb = self.items[&b.0].0;
            b.1.cmp(&a.1)
                .then_with(|| super::rank_cmp((qa, a.0), (qb, b.0)))
        });
        let mut items = self.items;
        let mut picks: Vec<Ranked<T>> = order
            .into_iter()
            .take(self.batch)
            .map(|(k, w)| Ranked {
                score: (w as f64 / total) as f32,
                index: k,
                item: items.remove(&k).expect("every winner has its item").1,
            })
            .collect();
        for r in self.by_quantile.into_sorted() {
            if picks.len() == self.batch {
                break;
            }
            if !picks.iter().any(|p| p.index == r.index) {
                picks.push(Ranked { score: 0.0, ..r });
            }
        }
        (picks, winners)
    }
}

/// The batch of `thompson` or `qpo` from pathwise samples, offered candidate by candidate.
pub enum JointPicks<T> {
    /// One sample per pick.
    Thompson(ThompsonPicks<T>),
    /// Each sample's argmax counted.
    Qpo(QpoPicks<T>),
}

impl<T: Clone> JointPicks<T> {
    /// For `acq` (`thompson` or `qpo`) and a batch of `batch`: Thompson draws one sample per
    /// pick, qPO its `samples` (default max(1,000, 10 × batch)).
    ///
    /// # Panics
    /// For an acquisition that is not joint ([`SelectParams::check`](crate::SelectParams::check)
    /// refuses the pathwise sampler for those).
    pub fn new(acq: Acquisition, batch: usize) -> Self {
        match acq {
            Acquisition::Thompson => JointPicks::Thompson(ThompsonPicks::new(batch)),
            Acquisition::Qpo { samples } => {
                let samples = samples.map_or(default_samples(batch), |s| s as usize);
                JointPicks::Qpo(QpoPicks::new(batch, samples))
            }
            other => panic!("{} draws no joint samples", other.name()),
        }
    }

    /// The samples the picks need.
    pub fn samples(&self) -> usize {
        match self {
            JointPicks::Thompson(t) => t.tops.len(),
            JointPicks::Qpo(q) => q.best.len(),
        }
    }

    /// True for qPO, which breaks ties and fills the batch by the quantile `mean + 3·sd`.
    pub fn uses_quantile(&self) -> bool {
        matches!(self, JointPicks::Qpo(_))
    }

    /// Offers a candidate: its value under each sample, its quantile (asked for by qPO only),
    /// its key (ties: lower first) and its item, built only when kept.
    pub fn offer(
        &mut self,
        values: &[f32],
        quantile: impl FnOnce() -> f32,
        key: usize,
        item: impl FnOnce() -> T,
    ) {
        match self {
            JointPicks::Thompson(t) => t.offer(values, key, item),
            JointPicks::Qpo(q) => q.offer(values, quantile(), key, item),
        }
    }

    /// The picks in batch order, each with its score (the sample's value for Thompson, the
    /// probability of being the best for qPO).
    pub fn finish(self) -> Vec<Ranked<T>> {
        match self {
            JointPicks::Thompson(t) => t.finish(),
            JointPicks::Qpo(q) => q.finish().0,
        }
    }
}

/// An item built at most once, when first asked for.
struct Lazy<T, F> {
    make: Option<F>,
    value: Option<T>,
}

impl<T, F: FnOnce() -> T> Lazy<T, F> {
    fn new(make: F) -> Self {
        Lazy {
            make: Some(make),
            value: None,
        }
    }

    fn get(&mut self) -> &T {
        if self.value.is_none() {
            let make = self.make.take().expect("built once");
            self.value = Some(make());
        }
        self.value.as_ref().expect("just built")
    }
}

#[cfg(test)]
mod tests;
