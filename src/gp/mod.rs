//! The Gaussian process: checked hyperparameters, the f64 fit, and the fitted model.
//!
//! Labels are standardised (mean 0, sd 1) before the fit and predictions mapped back, so the
//! signal variance and the noise are in standardised units, as scikit-learn's
//! `GaussianProcessRegressor(normalize_y=True)` does. The constant mean is the labels' mean
//! (0 in standardised units).

mod optimize;
pub mod sparse;

use std::time::Instant;

use faer::{Mat, Side};

use crate::data::{FeatureKind, Features};
use crate::error::{Error, Result};
use crate::kernel::{Kernel, KernelKind};

pub use optimize::Bounds;
pub use sparse::{CpuGram, Gram, GramAccumulator, SparseInfo, AUTO_EXACT_MAX, DEFAULT_INDUCING};

/// Exact GP or inducing points, as a user asks for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Inducing {
    /// Exact up to [`AUTO_EXACT_MAX`] labels, VFE with [`DEFAULT_INDUCING`] points above.
    #[default]
    Auto,
    /// Always exact (`--exact`).
    Exact,
    /// VFE with this many inducing points (`--inducing M`; all labels when fewer).
    Points(usize),
}

impl Inducing {
    /// For `n` labels: `None` for the exact GP, else the number of inducing points and why.
    pub fn resolve(self, n: usize) -> Option<(usize, String)> {
        match self {
            Inducing::Exact => None,
            Inducing::Points(m) => Some((m, format!("asked for (--inducing {m})"))),
            Inducing::Auto if n > AUTO_EXACT_MAX => Some((
                DEFAULT_INDUCING,
                format!("automatic: {n} labels > {AUTO_EXACT_MAX} (--exact refuses the switch)"),
            )),
            Inducing::Auto => None,
        }
    }
}

/// Which model a fit produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Approximation {
    /// The exact GP.
    Exact,
    /// Titsias' variational sparse GP on inducing points.
    Vfe,
}

/// Unchecked GP settings, as a user gives them. `None` means "fit by maximising the log
/// marginal likelihood".
#[derive(Clone, Debug)]
pub struct GpParams {
    /// The kernel.
    pub kernel: KernelKind,
    /// Signal variance `s2` (standardised units); default: fitted within [0.01, 100].
    pub signal_var: Option<f64>,
    /// Noise variance `n2` added to the diagonal (standardised units); default: fitted within
    /// [1e-4, 4].
    pub noise: Option<f64>,
    /// Lengthscale for `rbf`/`matern52`; default: fitted within [0.01, 100] × the median
    /// distance between labeled points.
    pub lengthscale: Option<f64>,
    /// Starting points of the local search after the grid scan (default 3).
    pub restarts: usize,
    /// Exact or sparse (default: [`Inducing::Auto`]).
    pub inducing: Inducing,
    /// Seed of the inducing points' candidate sample (default 0).
    pub seed: u64,
}

impl GpParams {
    /// Defaults for `kernel`: everything fitted, 3 restarts.
    pub fn new(kernel: KernelKind) -> Self {
        GpParams {
            kernel,
            signal_var: None,
            noise: None,
            lengthscale: None,
            restarts: 3,
            inducing: Inducing::Auto,
            seed: 0,
        }
    }

    /// Validates the settings against the pool's features.
    pub fn check(&self, features: FeatureKind) -> Result<GpValidParams> {
        self.kernel.check(features)?;
        if let Some(s2) = self.signal_var {
            if !(s2.is_finite() && s2 > 0.0) {
                return Err(Error::param(
                    "signal_var",
                    format!("must be a positive number, got {s2}"),
                ));
            }
        }
        if let Some(n2) = self.noise {
            if !(n2.is_finite() && n2 >= 0.0) {
                return Err(Error::param(
                    "noise",
                    format!("must be zero or positive, got {n2}"),
                ));
            }
        }
        if let Some(ls) = self.lengthscale {
            if !self.kernel.has_lengthscale() {
                return Err(Error::param(
                    "lengthscale",
                    format!("the {} kernel has no lengthscale", self.kernel.name()),
                ));
            }
            if !(ls.is_finite() && ls > 0.0) {
                return Err(Error::param(
                    "lengthscale",
                    format!("must be positive, got {ls}"),
                ));
            }
        }
        if self.restarts == 0 {
            return Err(Error::param("restarts", "must be at least 1"));
        }
        if self.inducing == Inducing::Points(0) {
            return Err(Error::param("inducing", "must be at least 1"));
        }
        Ok(GpValidParams(self.clone()))
    }
}

/// The model a user asks for: a kernel (default: the one for the pool's features) and the
/// hyperparameters to hold fixed (the rest are fitted). `select` and `simulate` both take one.
#[derive(Clone, Debug, Default)]
pub struct ModelSpec {
    /// Kernel; `None` takes [`KernelKind::default_for`] the features.
    pub kernel: Option<KernelKind>,
    /// Fixed signal variance.
    pub signal_var: Option<f64>,
    /// Fixed noise variance.
    pub noise: Option<f64>,
    /// Fixed lengthscale (dense kernels).
    pub lengthscale: Option<f64>,
    /// Inducing points (`--inducing M`); `None` leaves the choice to `exact`.
    pub inducing: Option<usize>,
    /// Refuse the automatic switch to inducing points (`--exact`).
    pub exact: bool,
}

impl ModelSpec {
    /// The checked GP settings for features of `kind`.
    pub fn check(&self, kind: FeatureKind) -> Result<GpValidParams> {
        let mut p = GpParams::new(self.kernel.unwrap_or_else(|| KernelKind::default_for(kind)));
        p.signal_var = self.signal_var;
        p.noise = self.noise;
        p.lengthscale = self.lengthscale;
        p.inducing = match (self.inducing, self.exact) {
            (Some(_), true) => {
                return Err(Error::param(
                    "exact",
                    "cannot be combined with inducing (one asks for the exact GP, the other for inducing points)",
                ))
            }
            (Some(m), false) => Inducing::Points(m),
            (None, true) => Inducing::Exact,
            (None, false) => Inducing::Auto,
        };
        p.check(kind)
    }
}

/// Settings that passed [`GpParams::check`]; only these can fit.
#[derive(Clone, Debug)]
pub struct GpValidParams(GpParams);

impl GpValidParams {
    /// The checked settings.
    pub fn params(&self) -> &GpParams {
        &self.0
    }

    /// The search box the fit uses on training features `x` (fixed values have equal ends).
    pub fn bounds_for(&self, x: &Features) -> Bounds {
        let ls_scale = if self.0.kernel.has_lengthscale() {
            optimize::median_distance(x)
        } else {
            1.0
        };
        Bounds::new(&self.0, ls_scale)
    }

    /// The same settings with the seed of the inducing points' sample (any seed is valid).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.0.seed = seed;
        self
    }

    /// The same settings with another exact/sparse choice; `Points(0)` is refused.
    pub fn with_inducing(mut self, inducing: Inducing) -> Result<Self> {
        if inducing == Inducing::Points(0) {
            return Err(Error::param("inducing", "must be at least 1"));
        }
        self.0.inducing = inducing;
        Ok(self)
    }
}

/// What the fit did beside producing the model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FitInfo {
    /// Jitter added to the diagonal (beyond the noise) to make the Cholesky succeed; 0 if none.
    pub jitter: f64,
    /// Log marginal likelihood of the standardised labels at the chosen hyperparameters; for
    /// VFE its evidence lower bound (the objective it maximises), which is below it.
    pub log_marginal_likelihood: f64,
    /// True when at least one hyperparameter was fitted.
    pub optimised: bool,
    /// Log-likelihood evaluations spent by the optimiser.
    pub evaluations: usize,
    /// Wall-clock seconds of the whole fit.
    pub seconds: f64,
    /// Exact GP or VFE.
    pub approximation: Approximation,
    /// The inducing points and why, for VFE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse: Option<SparseInfo>,
}

/// A GP fitted to labeled points. Owns the training features, `alpha` and the Cholesky factor.
///
/// A sparse fit ([`Approximation::Vfe`]) has the same shape, so every scorer applies unchanged:
/// `train` holds the `m` inducing points, `alpha` is `a = Σ K_mn y / n2`, and `chol` is the
/// lower-triangular `W⁻¹` with `WᵀW = K_mm⁻¹ − Σ` (see [`sparse`]).
#[derive(Clone, Debug)]
pub struct FittedGp {
    /// The kernel with its lengthscale.
    pub kernel: Kernel,
    /// Signal variance (standardised units).
    pub signal_var: f64,
    /// Noise variance (standardised units).
    pub noise: f64,
    /// Mean of the labels the model was fitted on.
    pub y_mean: f64,
    /// Standard deviation of those labels (1 when they are all equal).
    pub y_sd: f64,
    /// Largest standardised label (the incumbent for EI and PI).
    pub y_best: f64,
    /// `K^-1 (y - m)` in standardised units.
    pub alpha: Vec<f64>,
    /// Lower Cholesky factor of `s2·k(X,X) + (n2 + jitter)·I` (exact), or `W⁻¹` (VFE).
    pub chol: Mat<f64>,
    /// Training features (the inducing points for VFE).
    pub train: Features,
    /// Side information.
    pub info: FitInfo,
}

/// Fits a GP to `x` with labels `y` (to be maximised; negate for minimisation first). A sparse
/// fit's streaming product runs on the CPU in f64 ([`CpuGram`]).
pub fn fit(params: &GpValidParams, x: &Features, y: &[f64]) -> Result<FittedGp> {
    fit_with(params, x, y, &CpuGram)
}

/// [`fit`] with a sparse fit's streaming product `K_mn K_nm` on `gram` (a backend's:
/// `Backend::gram`); the exact fit ignores it. An f32 product (the GPU's) is used for kernels
/// without a lengthscale (Tanimoto, MinMax) only: RBF and Matérn keep the f64 product, since
/// their lengthscale search makes `K_mm` nearly singular, which amplifies f32 rounding. A pass
/// whose f32 spectrum breaks `tr(K_nn − Q_nn) ≥ 0` is redone in f64
/// ([`SparseInfo::product_fallbacks`]).
pub fn fit_with(
    params: &GpValidParams,
    x: &Features,
    y: &[f64],
    gram: &dyn GramAccumulator,
) -> Result<FittedGp> {
    fit_sharing(params, x, y, gram, &SharedRows::default())
}

/// What exact fits of a fingerprint kernel (Tanimoto, MinMax: no lengthscale) on the same rows
/// share, computed by the first that needs it: the Gram matrix and its eigendecomposition (the
/// hyperparameter search's). Fits of several label columns on one labeled set pay for them
/// once ([`fit_sharing`]).
#[derive(Default)]
pub struct SharedRows {
    gram: std::cell::OnceCell<Option<Vec<f64>>>,
    eigen: std::cell::OnceCell<optimize::Eigen>,
}

impl SharedRows {
    /// The fingerprint Gram matrix of `x` (`None` for dense features or kernels).
    fn fingerprint_gram(&self, kind: KernelKind, x: &Features) -> Option<&Vec<f64>> {
        self.gram
            .get_or_init(|| match kind {
                KernelKind::Tanimoto | KernelKind::MinMax => {
                    crate::backend::overlap::fingerprint_gram(x)
                }
                KernelKind::Rbf | KernelKind::Matern52 => None,
            })
            .as_ref()
    }

    /// The eigendecomposition of `gram`, decomposed at the first call.
    fn eigen(&self, gram: &[f64], n: usize) -> Result<&optimize::Eigen> {
        if let Some(e) = self.eigen.get() {
            return Ok(e);
        }
        let e = optimize::Eigen::new(gram, n)?;
        Ok(self.eigen.get_or_init(|| e))
    }
}

/// [`fit_with`] with what the fits on the rows `x` share (`shared`, which must only ever see
/// these rows and this kernel): bit for bit the fit `fit_with` gives.
pub fn fit_sharing(
    params: &GpValidParams,
    x: &Features,
    y: &[f64],
    gram: &dyn GramAccumulator,
    shared: &SharedRows,
) -> Result<FittedGp> {
    let started = Instant::now();
    let p = params.params();
    let n = y.len();
    // One label is enough for the maths (tests use it); `select` asks for two.
    if n == 0 {
        return Err(Error::TooFewLabels { n });
    }
    assert_eq!(x.len(), n, "one label per training row");
    crate::backend::encode::check_count_code(x)?;
    let (ys, y_mean, y_sd) = standardise(y)?;
    let sparse = p.inducing.resolve(n);
    if let Some((m, reason)) = sparse {
        return sparse::fit(p, x, &ys, m, reason, (y_mean, y_sd), started, gram);
    }

    let kernel_at = |lengthscale: f64| Kernel {
        kind: p.kernel,
        lengthscale,
    };
    // A fingerprint kernel's Gram matrix has no lengthscale: one overlap block (the bits of the
    // pairwise `Kernel::gram`, several times faster) serves the search and the factor, and one
    // eigendecomposition the search.
    let fingerprint = shared.fingerprint_gram(p.kernel, x);
    let optimised = p.signal_var.is_none()
        || p.noise.is_none()
        || (p.kernel.has_lengthscale() && p.lengthscale.is_none());
    let (kernel, s2, n2, evaluations) = if optimised {
        let ls_scale = if p.kernel.has_lengthscale() {
            optimize::median_distance(x)
        } else {
            1.0
        };
        let bounds = Bounds::new(p, ls_scale);
        let best = match fingerprint {
            Some(g) => optimize::maximise(&bounds, p.restarts, &ys, |_| shared.eigen(g, n))?,
            None => optimize::maximise(&bounds, p.restarts, &ys, |ls| {
                optimize::Eigen::new(&kernel_at(ls).gram(x), n).map(Box::new)
            })?,
        };
        (
            kernel_at(best.lengthscale),
            best.signal_var,
            best.noise,
            best.evaluations,
        )
    } else {
        let ls = p.lengthscale.unwrap_or(1.0);
        (
            kernel_at(ls),
            p.signal_var.unwrap_or(1.0),
            p.noise.unwrap_or(0.0),
            0,
        )
    };

    let dense;
    let gram = match fingerprint {
        Some(g) => g,
        None => {
            dense = kernel.gram(x);
            &dense
        }
    };
    let (chol, jitter) = cholesky_with_jitter(gram, n, s2, n2)?;
    let mut gp = FittedGp {
        kernel,
        signal_var: s2,
        noise: n2,
        y_mean: 0.0,
        y_sd: 1.0,
        y_best: 0.0,
        alpha: Vec::new(),
        chol,
        train: x.clone(),
        info: FitInfo {
            jitter,
            log_marginal_likelihood: 0.0,
            optimised,
            evaluations,
            seconds: 0.0,
            approximation: Approximation::Exact,
            sparse: None,
        },
    };
    gp.set_labels(&ys, y_mean, y_sd);
    gp.info.seconds = started.elapsed().as_secs_f64();
    Ok(gp)
}

/// `y` standardised, with its mean and standard deviation (1 when the labels are all equal).
fn standardise(y: &[f64]) -> Result<(Vec<f64>, f64, f64)> {
    let n = y.len() as f64;
    let y_mean = y.iter().sum::<f64>() / n;
    let var = y.iter().map(|v| (v - y_mean).powi(2)).sum::<f64>() / n;
    let y_sd = if var > 0.0 { var.sqrt() } else { 1.0 };
    // Labels from arrays (Python) have not passed the label reader's range check.
    if !(y_mean.is_finite() && y_sd.is_finite()) {
        return Err(Error::param(
            "labels",
            format!(
                "their mean or standard deviation is not finite (NaN, infinite, or beyond \
                 {:e} in magnitude); rescale the labels",
                crate::data::MAX_LABEL
            ),
        ));
    }
    Ok((
        y.iter().map(|v| (v - y_mean) / y_sd).collect(),
        y_mean,
        y_sd,
    ))
}

/// Jitter tried in turn, relative to the signal variance, when the Cholesky fails.
const JITTERS: [f64; 7] = [0.0, 1e-10, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4];

/// Cholesky of `s2·gram + n2·I`, adding jitter from [`JITTERS`] until it succeeds.
fn cholesky_with_jitter(gram: &[f64], n: usize, s2: f64, n2: f64) -> Result<(Mat<f64>, f64)> {
    let mut last_index = 0;
    for rel in JITTERS {
        let jitter = rel * s2;
        let k = Mat::<f64>::from_fn(n, n, |i, j| {
            s2 * gram[i * n + j] + if i == j { n2 + jitter } else { 0.0 }
        });
        match k.llt(Side::Lower) {
            Ok(llt) => {
                let l = llt.L().to_owned();
                // faer accepts tiny positive pivots; a factor that is not finite is a failure too.
                if (0..n).all(|i| l[(i, i)].is_finite() && l[(i, i)] > 0.0) {
                    return Ok((l, jitter));
                }
            }
            Err(faer::linalg::cholesky::llt::factor::LltError::NonPositivePivot { index }) => {
                last_index = index;
            }
        }
    }
    Err(Error::NotPositiveDefinite {
        index: last_index,
        jitter: JITTERS[JITTERS.len() - 1] * s2,
    })
}

/// Solves `L Lᵀ x = b` in place.
fn solve_llt_in_place(l: &Mat<f64>, b: &mut Mat<f64>) {
    use faer::linalg::triangular_solve as ts;
    ts::solve_lower_triangular_in_place(l.as_ref(), b.as_mut(), faer::Par::Seq);
    ts::solve_upper_triangular_in_place(l.transpose(), b.as_mut(), faer::Par::Seq);
}

impl FittedGp {
    /// The exact fit's label terms from the standardised labels `ys`: `alpha`, the incumbent,
    /// the log marginal likelihood.
    fn set_labels(&mut self, ys: &[f64], y_mean: f64, y_sd: f64) {
        let n = ys.len();
        let mut alpha = Mat::<f64>::from_fn(n, 1, |i, _| ys[i]);
        solve_llt_in_place(&self.chol, &mut alpha);
        self.alpha = (0..n).map(|i| alpha[(i, 0)]).collect();
        let chol = &self.chol;
        let log_det: f64 = (0..n).map(|i| chol[(i, i)].ln()).sum::<f64>() * 2.0;
        let fit_term: f64 = ys.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        self.info.log_marginal_likelihood =
            -0.5 * fit_term - 0.5 * log_det - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
        self.y_best = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        self.y_mean = y_mean;
        self.y_sd = y_sd;
    }

    /// The fit [`fit`] gives on the same rows with the labels `y`, reusing this fit's Cholesky
    /// factor: `None` unless this is an exact fit with fixed hyperparameters (the factor then
    /// does not depend on the labels). Several objectives labeled on the same rows (ParEGO's
    /// weight models among them) are fitted once and relabeled.
    ///
    /// # Errors
    /// As [`fit`] for labels whose mean or spread is not finite.
    ///
    /// # Panics
    /// When `y` has not one label per training row.
    pub fn relabeled(&self, y: &[f64]) -> Result<Option<FittedGp>> {
        if self.info.optimised || self.info.approximation != Approximation::Exact {
            return Ok(None);
        }
        assert_eq!(y.len(), self.n_train(), "one label per training row");
        let started = Instant::now();
        let (ys, y_mean, y_sd) = standardise(y)?;
        let mut gp = self.clone();
        gp.set_labels(&ys, y_mean, y_sd);
        gp.info.seconds = started.elapsed().as_secs_f64();
        Ok(Some(gp))
    }

    /// Number of training rows: the labeled points, or the inducing points of a sparse fit.
    pub fn n_train(&self) -> usize {
        self.alpha.len()
    }

    /// The lengthscale of `rbf`/`matern52`; `None` for the fingerprint kernels.
    pub fn lengthscale(&self) -> Option<f64> {
        self.kernel
            .kind
            .has_lengthscale()
            .then_some(self.kernel.lengthscale)
    }

    /// `W = L⁻¹` (lower triangular), so the latent variance of `x` is
    /// `s2·k(x,x) − ‖W·s2·k(X,x)‖²`.
    pub fn chol_inverse(&self) -> Mat<f64> {
        let n = self.n_train();
        let mut w = Mat::<f64>::zeros(n, n);
        faer::linalg::triangular_inverse::invert_lower_triangular(
            w.as_mut(),
            self.chol.as_ref(),
            faer::get_global_parallelism(),
        );
        // Only the lower triangle is written; the upper is already zero.
        w
    }

    /// Reference prediction in standardised units by direct solves (f64): latent mean and
    /// latent variance (noise excluded) for each row of `x`.
    pub fn predict_valvar(&self, x: &Features) -> (Vec<f64>, Vec<f64>) {
        let n = self.n_train();
        let m = x.len();
        let cross = self.kernel.cross(&self.train, x); // n × m, row-major
        let ks = Mat::<f64>::from_fn(n, m, |i, j| self.signal_var * cross[i * m + j]);
        let mean: Vec<f64> = (0..m)
            .map(|j| (0..n).map(|i| ks[(i, j)] * self.alpha[i]).sum())
            .collect();
        let mut v = ks;
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(
            self.chol.as_ref(),
            v.as_mut(),
            faer::Par::Seq,
        );
        let var = (0..m)
            .map(|j| {
                let prior = self.signal_var * self.kernel.eval(x, j, x, j);
                let explained: f64 = (0..n).map(|i| v[(i, j)] * v[(i, j)]).sum();
                (prior - explained).max(0.0)
            })
            .collect();
        (mean, var)
    }

    /// Maps a standardised latent mean to label units.
    pub fn mean_to_labels(&self, mean_std: f64) -> f64 {
        self.y_mean + self.y_sd * mean_std
    }

    /// Maps a standardised latent variance to a standard deviation in label units.
    pub fn sd_to_labels(&self, var_std: f64) -> f64 {
        self.y_sd * var_std.max(0.0).sqrt()
    }
}

#[cfg(test)]
mod tests;
