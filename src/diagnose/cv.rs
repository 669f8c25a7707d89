//! The model on the labeled set: seeded k-fold cross-validation (accuracy, ranking,
//! calibration of the predictive intervals), train-versus-CV fit, hyperparameters at a bound,
//! and the same cross-validation for each other kernel the features allow.

use crate::acquisition::normal_cdf;
use crate::data::{FeatureKind, Features};
use crate::error::{Error, Result};
use crate::gp::{fit, FittedGp, GpValidParams, ModelSpec};
use crate::kernel::KernelKind;
use crate::rng::seeded_order;
use crate::sim::metrics::spearman;

/// 3. The model: its fit, its cross-validation, and the kernel comparison.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelSection {
    /// The model fitted on every label.
    pub fit: ModelFit,
    /// Its k-fold cross-validation.
    pub cv: CvResult,
    /// Train R² minus CV R² (large: over-fitting).
    pub r2_gap: f64,
    /// Train R² above CV R² by more than [`MAX_R2_GAP`](super::rules::MAX_R2_GAP).
    pub over_fitting: bool,
    /// Train R² below [`MIN_TRAIN_R2`](super::rules::MIN_TRAIN_R2): the model explains little even of its own
    /// labels.
    pub under_fitting: bool,
    /// The same cross-validation for each kernel the features allow.
    pub kernels: Vec<CvResult>,
    /// The kernel with the best cross-validated NLPD, when it beats the chosen one clearly.
    pub recommended_kernel: &'static str,
    /// One-line reading.
    pub reading: String,
}

/// Nominal central coverages of the calibration plot.
pub const LEVELS: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.68, 0.8, 0.9, 0.95];

/// Cross-validated measures of one model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CvResult {
    /// Kernel.
    pub kernel: &'static str,
    /// Features the kernel saw (`counts`, `bits from counts`, `bits`, `dense`).
    pub features: String,
    /// Folds.
    pub folds: usize,
    /// R² of held-out predictions (1 − SSE/SST).
    pub r2: f64,
    /// Spearman of held-out predictions and labels.
    pub spearman: f64,
    /// Mean of the standardised residuals `(y − mean)/sd_pred` (sd of the label: latent + noise).
    pub z_mean: f64,
    /// Their standard deviation (1 when calibrated).
    pub z_sd: f64,
    /// Share of labels inside the central 68% predictive interval.
    pub coverage68: f64,
    /// Share inside the central 95% interval.
    pub coverage95: f64,
    /// Mean negative log predictive density, in standardised label units (lower is better;
    /// 1.42 is what predicting the mean with sd 1 scores).
    pub nlpd: f64,
    /// Spearman of |error| and the predicted sd: does the sd rank the errors?
    pub sd_ranks_errors: f64,
    /// Median share of a held-out label's prior variance that its training folds explain
    /// (`1 − latent var / signal var`): near 0 when held-out labels lie too far from the rest
    /// for the cross-validation to test the model.
    pub informed: f64,
    /// Observed coverage at each nominal level of [`LEVELS`].
    pub calibration: Vec<(f64, f64)>,
    /// Held-out (prediction, label) pairs, label units.
    #[serde(skip)]
    pub pairs: Vec<(f64, f64)>,
}

/// Fitted model on all labels.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelFit {
    /// Kernel.
    pub kernel: &'static str,
    /// Signal variance (standardised units).
    pub signal_var: f64,
    /// Noise variance (standardised units).
    pub noise: f64,
    /// Lengthscale (dense kernels).
    pub lengthscale: Option<f64>,
    /// Hyperparameters sitting at a bound of the search box (`signal_var at upper` …).
    pub at_bound: Vec<String>,
    /// R² of the model on its own training labels.
    pub train_r2: f64,
    /// Log marginal likelihood.
    pub log_marginal_likelihood: f64,
}

/// Assigns each of `n` labels a fold (a seeded permutation dealt round-robin).
pub fn folds_of(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut fold = vec![0; n];
    for (pos, i) in seeded_order(n, seed ^ 0xf01d).into_iter().enumerate() {
        fold[i] = pos % k;
    }
    fold
}

/// Checks that `n` labels allow `k`-fold cross-validation.
pub fn check_folds(n: usize, k: usize) -> Result<()> {
    if k < 2 {
        return Err(Error::param(
            "folds",
            format!("must be at least 2, got {k}"),
        ));
    }
    if n < k.max(3) {
        let need = k.max(3);
        return Err(Error::param(
            "folds",
            format!(
                "{k}-fold cross-validation needs at least {need} labeled candidates found in the pool, got {n}: label {} more or fewer folds",
                need - n
            ),
        ));
    }
    Ok(())
}

/// k-fold cross-validation of `params` on `(x, y)` (y on the maximisation scale).
pub fn cross_validate(
    params: &GpValidParams,
    x: &Features,
    y: &[f64],
    k: usize,
    seed: u64,
    features: &str,
) -> Result<CvResult> {
    let n = y.len();
    check_folds(n, k)?;
    let fold = folds_of(n, k, seed);
    let (mut pred, mut sd, mut explained) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for f in 0..k {
        let train: Vec<usize> = (0..n).filter(|&i| fold[i] != f).collect();
        let test: Vec<usize> = (0..n).filter(|&i| fold[i] == f).collect();
        let yt: Vec<f64> = train.iter().map(|&i| y[i]).collect();
        let gp = fit(params, &x.select_rows(&train), &yt)?;
        let (m, v) = gp.predict_valvar(&x.select_rows(&test));
        for (t, &i) in test.iter().enumerate() {
            pred[i] = gp.mean_to_labels(m[t]);
            // The label's predictive sd: latent variance plus noise.
            sd[i] = gp.sd_to_labels(v[t] + gp.noise);
            explained[i] = 1.0 - v[t] / gp.signal_var;
        }
    }
    let y_mean = y.iter().sum::<f64>() / n as f64;
    let y_sd = (y.iter().map(|v| (v - y_mean).powi(2)).sum::<f64>() / n as f64)
        .sqrt()
        .max(1e-300);
    let sse: f64 = pred.iter().zip(y).map(|(p, t)| (p - t).powi(2)).sum();
    let sst: f64 = y.iter().map(|t| (t - y_mean).powi(2)).sum();
    let z: Vec<f64> = (0..n)
        .map(|i| (y[i] - pred[i]) / sd[i].max(1e-300))
        .collect();
    let z_mean = z.iter().sum::<f64>() / n as f64;
    let z_sd = (z.iter().map(|v| (v - z_mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    let inside = |half: f64| z.iter().filter(|v| v.abs() <= half).count() as f64 / n as f64;
    let calibration = LEVELS
        .iter()
        .map(|&p| (p, inside(normal_quantile(0.5 + p / 2.0))))
        .collect();
    // NLPD in standardised units, so it compares across data sets.
    let nlpd = (0..n)
        .map(|i| {
            let s = (sd[i] / y_sd).max(1e-12);
            0.5 * (2.0 * std::f64::consts::PI * s * s).ln() + 0.5 * z[i] * z[i]
        })
        .sum::<f64>()
        / n as f64;
    let err: Vec<f64> = (0..n).map(|i| (y[i] - pred[i]).abs()).collect();
    Ok(CvResult {
        kernel: params.params().kernel.name(),
        features: features.to_string(),
        folds: k,
        r2: if sst > 0.0 { 1.0 - sse / sst } else { f64::NAN },
        spearman: spearman(&pred, y),
        z_mean,
        z_sd,
        coverage68: inside(normal_quantile(0.84)),
        coverage95: inside(normal_quantile(0.975)),
        nlpd,
        sd_ranks_errors: spearman(&err, &sd),
        informed: super::stats::histogram_of(&explained).quantile(0.5),
        calibration,
        pairs: pred.into_iter().zip(y.iter().copied()).collect(),
    })
}

/// The fitted model's summary: hyperparameters, their bounds, training R².
pub fn model_fit(params: &GpValidParams, gp: &FittedGp, x: &Features, y: &[f64]) -> ModelFit {
    let b = params.bounds_for(x);
    let mut at_bound = Vec::new();
    let mut check = |name: &str, v: f64, (lo, hi): (f64, f64)| {
        if lo < hi {
            let lv = v.ln();
            // Within 1% of the box's log width of an end.
            let tol = 0.01 * (hi - lo);
            if lv <= lo + tol {
                at_bound.push(format!("{name} at its lower bound ({v:.4})"));
            } else if lv >= hi - tol {
                at_bound.push(format!("{name} at its upper bound ({v:.4})"));
            }
        }
    };
    check("signal_var", gp.signal_var, b.log_s2);
    check("noise", gp.noise, b.log_n2);
    if let Some(ls) = b.log_ls {
        check("lengthscale", gp.kernel.lengthscale, ls);
    }
    let (m, _) = gp.predict_valvar(x);
    let pred: Vec<f64> = m.iter().map(|&v| gp.mean_to_labels(v)).collect();
    let y_mean = y.iter().sum::<f64>() / y.len() as f64;
    let sse: f64 = pred.iter().zip(y).map(|(p, t)| (p - t).powi(2)).sum();
    let sst: f64 = y.iter().map(|t| (t - y_mean).powi(2)).sum();
    ModelFit {
        kernel: gp.kernel.kind.name(),
        signal_var: gp.signal_var,
        noise: gp.noise,
        lengthscale: gp.lengthscale(),
        at_bound,
        train_r2: if sst > 0.0 { 1.0 - sse / sst } else { f64::NAN },
        log_marginal_likelihood: gp.info.log_marginal_likelihood,
    }
}

/// The kernels to compare on features of `kind`, each with the features it sees: on counts
/// MinMax and Tanimoto on their bits; on bits Tanimoto; on dense features RBF and Matérn 5/2.
/// `model` supplies the fixed hyperparameters (the kernel is replaced).
pub fn alternatives(
    model: &ModelSpec,
    x: &Features,
) -> Result<Vec<(GpValidParams, Features, String)>> {
    let kind = x.kind();
    let with = |k: KernelKind, f: FeatureKind| {
        let mut m = model.clone();
        m.kernel = Some(k);
        // A fixed lengthscale does not carry over to a kernel without one.
        if !k.has_lengthscale() {
            m.lengthscale = None;
        }
        m.check(f)
    };
    Ok(match kind {
        FeatureKind::Counts { .. } => {
            let bits = x.presence_bits().expect("counts");
            vec![
                (
                    with(KernelKind::MinMax, kind)?,
                    x.clone(),
                    "counts".to_string(),
                ),
                (
                    with(KernelKind::Tanimoto, bits.kind())?,
                    bits,
                    "bits (count > 0)".to_string(),
                ),
            ]
        }
        FeatureKind::Bits { .. } => vec![(
            with(KernelKind::Tanimoto, kind)?,
            x.clone(),
            "bits".to_string(),
        )],
        FeatureKind::Dense { .. } => vec![
            (with(KernelKind::Rbf, kind)?, x.clone(), "dense".to_string()),
            (
                with(KernelKind::Matern52, kind)?,
                x.clone(),
                "dense".to_string(),
            ),
        ],
    })
}

/// The standard normal quantile (bisection on the shared cdf; ample for interval edges).
pub fn normal_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (-8.0f64, 8.0f64);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if f64::from(normal_cdf(mid as f32)) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_folds() {
        assert!((normal_quantile(0.975) - 1.96).abs() < 2e-3);
        assert!((normal_quantile(0.84) - 0.994).abs() < 3e-3);
        let f = folds_of(11, 5, 1);
        for k in 0..5 {
            let c = f.iter().filter(|&&v| v == k).count();
            assert!(c == 2 || c == 3, "{f:?}");
        }
        assert!(check_folds(4, 5)
            .unwrap_err()
            .to_string()
            .contains("at least 5"));
        assert!(check_folds(5, 5).is_ok());
    }
}
