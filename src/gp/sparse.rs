//! The sparse GP on `m` inducing points: Titsias' variational approximation (VFE).
//!
//! With `Z` the inducing points (chosen from the labeled set by [`choose_inducing`]),
//! `G = k(Z,Z)`, `S = k(Z,X) k(X,Z)` and `b = k(Z,X) y` (unit-variance kernel), every quantity
//! of the fit is a function of `(G, S, b, yᵀy, n)`, which one streaming pass over the labeled
//! set builds in tiles (memory `O(tile·m + m²)`, f64). With `Lg Lgᵀ = G` and the eigenpairs
//! `(μ_i, q_i)` of `M = Lg⁻¹ S Lg⁻ᵀ`, the collapsed bound
//! `ELBO = log N(y | 0, Q_nn + n2·I) − tr(K_nn − Q_nn) / (2·n2)` costs O(m) per `(s2, n2)`:
//!
//! `ELBO = −[yᵀy − s2 Σ c_i²/(n2 + s2 μ_i)] / (2 n2) − ½[(n − m) ln n2 + Σ ln(n2 + s2 μ_i)]
//!         − n/2 ln 2π − s2 (Σ k(x,x) − Σ μ_i) / (2 n2)`, with `c = Qᵀ Lg⁻¹ b`,
//!
//! the same trick as the exact fit's spectrum (`gp::optimize`). The predictive (as DTC's):
//! mean `s2·k(x,Z)·a` with `a = Lg⁻ᵀ Q diag(1/(n2 + s2 μ)) c`, and latent variance
//! `s2·k(x,x) − ks·B·ksᵀ` with `B = K_mm⁻¹ − Σ = WᵀW`, `W = V·Lg⁻¹/√s2` lower triangular, where
//! `VᵀV = Q diag(s2 μ/(n2 + s2 μ)) Qᵀ` (a "UL" Cholesky through the reversal permutation). The
//! fitted model stores `chol = W⁻¹`, so the scorers, `predict_valvar` and the diverse batch,
//! which all work from `L⁻¹`, apply unchanged with the inducing points as training rows.

use rayon::prelude::*;

use faer::linalg::matmul::matmul;
use faer::linalg::triangular_solve as ts;
use faer::{Accum, Mat, MatRef, Par};

use super::optimize::{self, Bounds};
use super::{cholesky_with_jitter, FitInfo, FittedGp, GpParams};
use crate::backend::encode::Packed;
use crate::backend::overlap::PopcountSide;
use crate::data::Features;
use crate::error::{Error, Result};
use crate::kernel::Kernel;

/// Above this many labels an exact GP is replaced by VFE unless `--exact` is given.
pub const AUTO_EXACT_MAX: usize = 5_000;
/// Inducing points of the automatic switch (and of `--inducing` when it exceeds the labels:
/// then every label is an inducing point).
pub const DEFAULT_INDUCING: usize = 2_000;
/// The greedy choice looks at `CANDIDATES_PER_POINT · m` labeled rows (a seeded sample) when
/// there are more, so its memory stays `O(m²)`.
pub const CANDIDATES_PER_POINT: usize = 2;
/// The greedy choice stops early when every candidate's residual variance is below this
/// (relative to the prior): the rest are, to this tolerance, in the span of those chosen, and
/// taking them would only make `K_mm` singular.
pub const PIVOT_TOLERANCE: f64 = 1e-6;
/// Relative slack of the check `Σ μ ≤ Σ k(x, x)` on an f32 product's spectrum.
const TRACE_SLACK: f64 = 1e-6;
/// Labeled rows per tile of the streaming pass.
const TILE: usize = 1024;
/// Rows per rayon task inside a tile.
const CHUNK: usize = 64;
/// Columns of `S` per rayon task of the streaming product. Each block is one sequential faer
/// product of fixed shape, so the sums do not depend on the number of threads.
const SBLOCK: usize = 128;

/// What the sparse fit reports beside the model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SparseInfo {
    /// Why the approximation is used (`--inducing 500`, or the automatic switch).
    pub reason: String,
    /// Inducing points asked for.
    pub requested: usize,
    /// Inducing points used: fewer than asked when the greedy choice stopped at
    /// [`PIVOT_TOLERANCE`] or there are fewer labels.
    pub used: usize,
    /// Labeled rows the greedy choice looked at.
    pub candidates: usize,
    /// The inducing points as rows of the labeled set, in the order they were chosen.
    pub rows: Vec<usize>,
    /// Evidence lower bound at the chosen hyperparameters (standardised labels).
    pub elbo: f64,
    /// Jitter added to `Q diag(p) Qᵀ` before its factorisation (0 if none).
    pub factor_jitter: f64,
    /// Seconds spent choosing the inducing points.
    pub choose_seconds: f64,
    /// Seconds spent in the streaming passes over the labeled set (one per lengthscale tried).
    pub pass_seconds: f64,
    /// Streaming passes made.
    pub passes: usize,
    /// Where the passes' product `K_mn K_nm` ran (`cpu (f64)`, or the GPU adapter). Kernels
    /// with a lengthscale always use the CPU's.
    pub product: String,
    /// Passes of an f32 product redone in f64 because their spectrum broke
    /// `tr(K_nn − Q_nn) ≥ 0` (0 on the CPU).
    pub product_fallbacks: usize,
}

/// Picks up to `m` inducing points among the rows of `x` by greedy pivoted Cholesky of the
/// unit-variance kernel (largest remaining variance first, ties to the lower row). When `x`
/// has more than [`CANDIDATES_PER_POINT`]` · m` rows the choice is made within a sample of that
/// many, drawn from `seed`. Returns the chosen rows (in the order chosen) and the number of
/// candidates.
pub fn choose_inducing(kernel: &Kernel, x: &Features, m: usize, seed: u64) -> (Vec<usize>, usize) {
    let n = x.len();
    let c = n.min(CANDIDATES_PER_POINT.saturating_mul(m));
    let cand_rows: Vec<usize> = if c == n {
        (0..n).collect()
    } else {
        let mut keyed: Vec<(u32, usize)> = (0..n)
            .map(|i| (crate::rng::draw_u32(seed, u32::MAX - 1, i as u64, 17), i))
            .collect();
        keyed.select_nth_unstable(c - 1);
        let mut rows: Vec<usize> = keyed[..c].iter().map(|k| k.1).collect();
        rows.sort_unstable();
        rows
    };
    let cand = x.select_rows(&cand_rows);
    let m = m.min(c);
    let mut d: Vec<f64> = (0..c).map(|i| kernel.eval(&cand, i, &cand, i)).collect();
    let scale = d.iter().copied().fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    // Row-major c × m: row i holds the first j entries of L's row i.
    let mut l = vec![0f64; c * m];
    let mut picked: Vec<usize> = Vec::with_capacity(m);
    for j in 0..m {
        let (p, dp) =
            d.iter()
                .enumerate()
                .fold((usize::MAX, f64::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 {
                        (i, v)
                    } else {
                        best
                    }
                });
        if p == usize::MAX || dp <= PIVOT_TOLERANCE * scale {
            break;
        }
        let lp: Vec<f64> = l[p * m..p * m + j].to_vec();
        let sp = dp.sqrt();
        // Blocks of rows per rayon task: one task per row would cost more than the work.
        const ROWS: usize = 128;
        l.par_chunks_mut(m * ROWS)
            .zip(d.par_chunks_mut(ROWS))
            .enumerate()
            .for_each(|(blk, (rows, ds))| {
                for (r, (row, di)) in rows.chunks_exact_mut(m).zip(ds).enumerate() {
                    let i = blk * ROWS + r;
                    let v = (kernel.eval(&cand, i, &cand, p) - dot(&row[..j], &lp)) / sp;
                    row[j] = v;
                    *di -= v * v;
                }
            });
        // Chosen rows are never chosen again (rounding could leave a tiny residual).
        d[p] = f64::NEG_INFINITY;
        picked.push(p);
    }
    (picked.into_iter().map(|p| cand_rows[p]).collect(), c)
}

/// Dot product with 8 independent partial sums (vectorisable; the same order on every call).
#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// The sufficient statistics of the labeled set for fixed inducing points and kernel shape.
struct Stats {
    /// `k(Z, Z)`, row-major `m × m`.
    g: Vec<f64>,
    /// `k(Z, X) k(X, Z)` (lower triangle) and `k(Z, X) y`.
    gram: Gram,
    /// `yᵀy`.
    yy: f64,
    /// `Σ k(x_i, x_i)`.
    diag: f64,
    /// Labels.
    n: usize,
}

/// The streaming product of one pass over the labeled set, unit-variance kernel.
#[derive(Clone, Debug)]
pub struct Gram {
    /// `S = k(Z, X) k(X, Z)`, `m × m`; only the lower triangle (`i ≥ j`) is read.
    pub s: Mat<f64>,
    /// `b = k(Z, X) y`.
    pub b: Vec<f64>,
}

/// Where the sparse fit's streaming product `k(Z, X) k(X, Z)`, `k(Z, X) y` runs: [`CpuGram`]
/// (f64, the reference) or the GPU's (`crate::backend::gpu::GpuGram`: f32 products per tile,
/// summed in f64 across tiles). Every implementation must visit the tiles in a fixed order, so
/// that a fit does not depend on the thread count.
pub trait GramAccumulator: Sync {
    /// The product for inducing points `z` over labeled rows `x` with labels `y`.
    ///
    /// # Errors
    /// What the device reports (the CPU cannot fail).
    fn product(&self, kernel: &Kernel, x: &Features, z: &Features, y: &[f64]) -> Result<Gram>;

    /// Where it runs, for the fit's report.
    fn name(&self) -> String;

    /// True when the product is exact f64 arithmetic on exact kernel values (the CPU); false
    /// for f32 products (the GPU), which the fit uses only where they are safe (see
    /// [`crate::gp::fit_with`]).
    fn is_f64(&self) -> bool {
        true
    }
}

/// The streaming product on the CPU in f64 (rayon; bit-identical on any number of threads).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuGram;

impl GramAccumulator for CpuGram {
    fn product(&self, kernel: &Kernel, x: &Features, z: &Features, y: &[f64]) -> Result<Gram> {
        Ok(cpu_product(kernel, x, z, y))
    }

    fn name(&self) -> String {
        "cpu (f64)".into()
    }
}

/// One streaming pass over `x` in tiles of [`TILE`] rows: the kernel block against `z` (exact
/// f64 values), then `S += Kᵀ K` (faer, lower triangle) and `b += Kᵀ y`. The tile order and
/// every sum's order are fixed, so the result does not depend on the thread count.
fn cpu_product(kernel: &Kernel, x: &Features, z: &Features, y: &[f64]) -> Gram {
    let (n, m) = (x.len(), z.len());
    // Fingerprints through the popcount block (exact in f64); dense features through the
    // reference kernel.
    let side = PopcountSide::new(z);
    let mut s: Vec<Mat<f64>> = (0..m)
        .step_by(SBLOCK)
        .map(|c0| Mat::zeros(m - c0, SBLOCK.min(m - c0)))
        .collect();
    let mut b = vec![0f64; m];
    let mut ks = vec![0f64; TILE.min(n.max(1)) * m];
    let mut kt = ks.clone();
    for start in (0..n).step_by(TILE) {
        let rows = TILE.min(n - start);
        let ks = &mut ks[..rows * m];
        ks.par_chunks_mut(CHUNK * m).enumerate().for_each_init(
            || (Packed::default(), Vec::new()),
            |(packed, counts), (c, out)| {
                let r0 = start + c * CHUNK;
                let r = out.len() / m;
                match &side {
                    Some(side) => side.block(x, r0..r0 + r, 1.0, packed, counts, out),
                    None => {
                        for i in 0..r {
                            for j in 0..m {
                                out[i * m + j] = kernel.eval(x, r0 + i, z, j);
                            }
                        }
                    }
                }
            },
        );
        // faer's product runs about a third faster on a column-major tile.
        let kt = &mut kt[..rows * m];
        kt.par_chunks_mut(rows).enumerate().for_each(|(j, col)| {
            for (i, v) in col.iter_mut().enumerate() {
                *v = ks[i * m + j];
            }
        });
        let k = MatRef::from_column_major_slice(kt, rows, m);
        s.par_iter_mut().enumerate().for_each(|(blk, dst)| {
            let (c0, w) = (blk * SBLOCK, dst.ncols());
            matmul(
                dst.as_mut(),
                Accum::Add,
                k.subcols(c0, m - c0).transpose(),
                k.subcols(c0, w),
                1.0,
                Par::Seq,
            );
        });
        for (i, row) in ks.chunks_exact(m).enumerate() {
            let yi = y[start + i];
            for (bj, kij) in b.iter_mut().zip(row) {
                *bj += kij * yi;
            }
        }
    }
    let s = Mat::<f64>::from_fn(m, m, |i, j| {
        if i >= j {
            let c0 = j / SBLOCK * SBLOCK;
            s[j / SBLOCK][(i - c0, j - c0)]
        } else {
            0.0
        }
    });
    Gram { s, b }
}

/// One streaming pass: the product from `gram`, the rest on the host.
fn stats(
    kernel: &Kernel,
    x: &Features,
    z: &Features,
    y: &[f64],
    gram: &dyn GramAccumulator,
) -> Result<Stats> {
    let product = gram.product(kernel, x, z, y)?;
    Ok(Stats {
        g: kernel.gram(z),
        gram: product,
        yy: y.iter().map(|v| v * v).sum(),
        diag: (0..x.len()).map(|i| kernel.eval(x, i, x, i)).sum(),
        n: x.len(),
    })
}

/// Eigenvectors and eigenvalues of a symmetric matrix (lower triangle read), sequential so that
/// the result does not depend on the number of threads.
fn eigen(a: &Mat<f64>) -> Result<(Mat<f64>, Vec<f64>)> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::evd;
    let n = a.nrows();
    let mut u = Mat::<f64>::zeros(n, n);
    let mut s = faer::diag::Diag::<f64>::zeros(n);
    let scratch = evd::self_adjoint_evd_scratch::<f64>(
        n,
        evd::ComputeEigenvectors::Yes,
        Par::Seq,
        Default::default(),
    );
    evd::self_adjoint_evd(
        a.as_ref(),
        s.as_mut(),
        Some(u.as_mut()),
        Par::Seq,
        MemStack::new(&mut MemBuffer::new(scratch)),
        Default::default(),
    )
    .map_err(|e| {
        Error::param(
            "inducing points",
            format!("eigendecomposition failed: {e:?}"),
        )
    })?;
    let vals = (0..n).map(|i| s[i]).collect();
    Ok((u, vals))
}

/// The statistics reduced to what makes the ELBO O(m) per `(s2, n2)`.
struct Spectrum {
    /// Lower Cholesky factor of `G + jitter·I`.
    lg: Mat<f64>,
    /// The jitter (unit-variance scale).
    jitter: f64,
    /// Eigenvectors of `M = Lg⁻¹ S Lg⁻ᵀ`.
    q: Mat<f64>,
    /// Its eigenvalues, clamped at 0.
    mu: Vec<f64>,
    /// `Qᵀ Lg⁻¹ b`.
    c: Vec<f64>,
    yy: f64,
    diag: f64,
    n: usize,
}

impl Spectrum {
    fn new(st: &Stats) -> Result<Self> {
        let m = st.gram.b.len();
        let (lg, jitter) = cholesky_with_jitter(&st.g, m, 1.0, 0.0)?;
        // M = Lg⁻¹ S Lg⁻ᵀ from the full symmetric S.
        let s = &st.gram.s;
        let mut t = Mat::<f64>::from_fn(m, m, |i, j| if i >= j { s[(i, j)] } else { s[(j, i)] });
        ts::solve_lower_triangular_in_place(lg.as_ref(), t.as_mut(), Par::Seq);
        let mut mm = t.transpose().to_owned();
        ts::solve_lower_triangular_in_place(lg.as_ref(), mm.as_mut(), Par::Seq);
        let mm = Mat::<f64>::from_fn(m, m, |i, j| 0.5 * (mm[(i, j)] + mm[(j, i)]));
        let (q, mu) = eigen(&mm)?;
        let mu: Vec<f64> = mu.into_iter().map(|v| v.max(0.0)).collect();
        let mut lb = Mat::<f64>::from_fn(m, 1, |i, _| st.gram.b[i]);
        ts::solve_lower_triangular_in_place(lg.as_ref(), lb.as_mut(), Par::Seq);
        let c = (0..m)
            .map(|i| (0..m).map(|r| q[(r, i)] * lb[(r, 0)]).sum())
            .collect();
        Ok(Spectrum {
            lg,
            jitter,
            q,
            mu,
            c,
            yy: st.yy,
            diag: st.diag,
            n: st.n,
        })
    }

    /// `Σ μ_i = tr(Q_nn)` (unit variance).
    fn explained(&self) -> f64 {
        self.mu.iter().sum()
    }

    /// The ELBO at `(ln s2, ln n2)`.
    fn elbo(&self, log_s2: f64, log_n2: f64) -> f64 {
        let (s2, n2) = (log_s2.exp(), log_n2.exp());
        let (mut fit, mut logdet, mut explained) = (0.0, 0.0, 0.0);
        for (mu, c) in self.mu.iter().zip(&self.c) {
            let d = n2 + s2 * mu;
            fit += c * c / d;
            logdet += d.ln();
            explained += mu;
        }
        let m = self.mu.len() as f64;
        let n = self.n as f64;
        let quad = (self.yy - s2 * fit).max(0.0) / n2;
        let trace = (s2 * (self.diag - explained)).max(0.0) / n2;
        -0.5 * quad
            - 0.5 * ((n - m) * n2.ln() + logdet)
            - 0.5 * n * (2.0 * std::f64::consts::PI).ln()
            - 0.5 * trace
    }

    /// `alpha` and the factor `W⁻¹` at `(s2, n2)`, and the jitter the factor needed.
    fn model(&self, s2: f64, n2: f64) -> Result<(Vec<f64>, Mat<f64>, f64)> {
        let m = self.mu.len();
        // alpha = Lg⁻ᵀ Q diag(1/(n2 + s2 μ)) c
        let w: Vec<f64> = (0..m).map(|i| self.c[i] / (n2 + s2 * self.mu[i])).collect();
        let mut a = Mat::<f64>::from_fn(m, 1, |r, _| (0..m).map(|i| self.q[(r, i)] * w[i]).sum());
        ts::solve_upper_triangular_in_place(self.lg.transpose(), a.as_mut(), Par::Seq);
        let alpha: Vec<f64> = (0..m).map(|i| a[(i, 0)]).collect();

        // P = Q diag(p) Qᵀ, reversed (J P J) so that its lower Cholesky factor C gives the
        // lower-triangular V = J Cᵀ J with VᵀV = P.
        let qs = Mat::<f64>::from_fn(m, m, |r, i| {
            let mu = self.mu[i];
            self.q[(r, i)] * (s2 * mu / (n2 + s2 * mu)).sqrt()
        });
        let mut p = Mat::<f64>::zeros(m, m);
        matmul(
            p.as_mut(),
            Accum::Replace,
            qs.as_ref(),
            qs.transpose(),
            1.0,
            Par::Seq,
        );
        let rev: Vec<f64> = (0..m * m)
            .map(|k| {
                let (i, j) = (k / m, k % m);
                let (a, b) = (m - 1 - i, m - 1 - j);
                0.5 * (p[(a, b)] + p[(b, a)])
            })
            .collect();
        let (cf, factor_jitter) = cholesky_with_jitter(&rev, m, 1.0, 0.0)?;
        let v = Mat::<f64>::from_fn(m, m, |i, j| cf[(m - 1 - j, m - 1 - i)]);
        // W⁻¹ = √s2 · Lg · V⁻¹, i.e. (W⁻¹)ᵀ = √s2 · V⁻ᵀ Lgᵀ: an upper-triangular solve.
        let mut x = self.lg.transpose().to_owned();
        ts::solve_upper_triangular_in_place(v.transpose(), x.as_mut(), Par::Seq);
        let root = s2.sqrt();
        let chol = Mat::<f64>::from_fn(m, m, |i, j| if j <= i { root * x[(j, i)] } else { 0.0 });
        Ok((alpha, chol, factor_jitter))
    }
}

/// Fits VFE with `m` inducing points to standardised labels `ys`; `reason` says why.
#[allow(clippy::too_many_arguments)]
pub(super) fn fit(
    p: &GpParams,
    x: &Features,
    ys: &[f64],
    m: usize,
    reason: String,
    stats_y: (f64, f64),
    started: std::time::Instant,
    gram: &dyn GramAccumulator,
) -> Result<FittedGp> {
    let n = ys.len();
    let kernel_at = |lengthscale: f64| Kernel {
        kind: p.kernel,
        lengthscale,
    };
    let ls_scale = if p.kernel.has_lengthscale() {
        optimize::median_distance(x)
    } else {
        1.0
    };
    // The inducing points are chosen once, at the fixed lengthscale or the median distance.
    let choice_kernel = kernel_at(p.lengthscale.unwrap_or(ls_scale));
    let t = std::time::Instant::now();
    let (rows, candidates) = choose_inducing(&choice_kernel, x, m.min(n), p.seed);
    let choose_seconds = t.elapsed().as_secs_f64();
    let z = x.select_rows(&rows);
    let optimised = p.signal_var.is_none()
        || p.noise.is_none()
        || (p.kernel.has_lengthscale() && p.lengthscale.is_none());
    let bounds = Bounds::new(p, ls_scale);
    // f32 products are used for kernels without a lengthscale only: the lengthscale search
    // drives `K_mm` of RBF/Matérn towards singular, and `Lg⁻¹ S Lg⁻ᵀ` amplifies the f32
    // rounding of `S` by `1/λ_min(K_mm)` (measured: a bogus bound several times the true one).
    let gram: &dyn GramAccumulator = if gram.is_f64() || !p.kernel.has_lengthscale() {
        gram
    } else {
        &CpuGram
    };
    let (mut pass_seconds, mut passes, mut fallbacks) = (0.0, 0, 0);
    let (best, spectrum) = optimize::maximise_with(
        &bounds,
        p.restarts,
        |ls| {
            let t = std::time::Instant::now();
            let kernel = kernel_at(ls);
            let mut sp = Spectrum::new(&stats(&kernel, x, &z, ys, gram)?)?;
            // `tr(K_nn − Q_nn) ≥ 0` in exact arithmetic; f32 rounding amplified by an
            // ill-conditioned `K_mm` breaks it first: then this pass is redone in f64.
            if !gram.is_f64() && sp.explained() > sp.diag * (1.0 + TRACE_SLACK) {
                fallbacks += 1;
                sp = Spectrum::new(&stats(&kernel, x, &z, ys, &CpuGram)?)?;
            }
            pass_seconds += t.elapsed().as_secs_f64();
            passes += 1;
            Ok(sp)
        },
        |s, log_s2, log_n2| s.elbo(log_s2, log_n2),
    )?;
    // A user's `--noise 0` is held at 1e-12 by the bounds: VFE divides by the noise.
    let (s2, n2) = (best.signal_var, best.noise);
    let elbo = spectrum.elbo(s2.ln(), n2.ln());
    let (alpha, chol, factor_jitter) = spectrum.model(s2, n2)?;
    let kernel = kernel_at(if p.kernel.has_lengthscale() {
        best.lengthscale
    } else {
        1.0
    });
    let (y_mean, y_sd) = stats_y;
    let y_best = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Ok(FittedGp {
        kernel,
        signal_var: s2,
        noise: n2,
        y_mean,
        y_sd,
        y_best,
        alpha,
        chol,
        train: z,
        info: FitInfo {
            jitter: spectrum.jitter * s2,
            log_marginal_likelihood: elbo,
            optimised,
            evaluations: if optimised { best.evaluations } else { 0 },
            seconds: started.elapsed().as_secs_f64(),
            approximation: super::Approximation::Vfe,
            sparse: Some(SparseInfo {
                reason,
                requested: m,
                used: rows.len(),
                candidates,
                rows,
                elbo,
                factor_jitter,
                choose_seconds,
                pass_seconds,
                passes,
                product: gram.name(),
                product_fallbacks: fallbacks,
            }),
        },
    })
}
