//! The thresholds of the verdict's rules and the rules the sections apply themselves (outlier
//! chasing, the test mismatch, exploitation, no spread). A leaf: the sections and the verdict
//! both read it, so neither imports the other for a number. [`super::verdict`] says how each
//! was set.

/// Smallest gap between the batch's predicted values and the pool's (in sd of the pool's
/// predictions) for a find-best batch to count as exploiting.
pub const MIN_EXPLOIT: f64 = 0.5;
/// Share of the pool within noise of the best score that means "no spread".
pub const NO_SPREAD: f64 = 0.5;
/// CV Spearman below which the model is weak (but may still beat chance).
pub const WEAK_SKILL: f64 = 0.3;
/// Below this median explained share of held-out variance, the cross-validation cannot test
/// the model and a missing skill is not held against it.
pub const MIN_INFORMED: f64 = 0.25;
/// Smallest acceptable coverage of the 95% interval.
pub const MIN_COVERAGE95: f64 = 0.8;
/// Largest acceptable sd of the standardised residuals.
pub const MAX_Z_SD: f64 = 1.5;
/// Largest acceptable train-minus-CV R².
pub const MAX_R2_GAP: f64 = 0.5;
/// Train R² below which the model under-fits (reported, not a verdict rule).
pub const MIN_TRAIN_R2: f64 = 0.3;
/// NLPD margin by which another kernel must beat the chosen one to be recommended.
pub const KERNEL_MARGIN: f64 = 0.05;

/// The skill threshold for `n` labels: the one-sided 97.5% null quantile of Spearman.
pub fn skill_threshold(n: usize) -> f64 {
    1.96 / ((n.max(2) - 1) as f64).sqrt()
}

/// The outlier-chasing rule.
pub fn chases_outliers(batch_share: f64, pool_share: f64) -> bool {
    batch_share >= 0.5 && batch_share >= 3.0 * pool_share
}

/// The test-mismatch rule.
pub fn test_mismatch(far_share: f64) -> bool {
    far_share >= 0.5
}
