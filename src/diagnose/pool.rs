//! Section 1, the pool: size, exact and near duplicates and homogeneity (nearest-neighbour
//! similarity of a seeded sample within the pool), coverage by the labels, and outliers far
//! from everything labeled.

use super::pass::PoolPass;
use super::stats::{histogram_of, Bin, Summary};

/// Nearest-neighbour similarity at or above which two candidates are near-duplicates.
pub const NEAR_DUPLICATE: f64 = 0.9;

/// Section 1.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PoolSection {
    /// Candidates (test candidates excluded).
    pub size: usize,
    /// Labeled candidates among them.
    pub labeled: usize,
    /// Sample size for the nearest-neighbour statistics (`--nn-sample`).
    pub sample: usize,
    /// Similarity of each sample point to its nearest other candidate in the whole pool.
    pub nn_similarity: Summary,
    /// Its histogram over [0, 1].
    pub nn_histogram: Vec<Bin>,
    /// Share of the sample with an exact copy in the pool (similarity 1).
    pub exact_duplicates: f64,
    /// Share of the sample with a near-duplicate (similarity ≥ [`NEAR_DUPLICATE`]).
    pub near_duplicates: f64,
    /// Similarity of each unlabeled candidate to its nearest labeled candidate.
    pub coverage: Summary,
    /// Its histogram over [0, 1].
    pub coverage_histogram: Vec<Bin>,
    /// Similarity of each unlabeled candidate to its nearest sample point (local density).
    pub density: Summary,
    /// Outliers: coverage below this, half the pool's median coverage.
    pub outlier_coverage_below: f64,
    /// Share of unlabeled candidates that are outliers.
    pub outlier_share: f64,
    /// How similarity is measured.
    pub similarity: String,
    /// One-line reading.
    pub reading: String,
}

/// Builds section 1 from the pass.
pub fn section(
    pass: &PoolPass,
    size: usize,
    labeled: usize,
    sample: usize,
    similarity: String,
) -> PoolSection {
    let nn: Vec<f64> = pass
        .sample_nn
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| f64::from(v))
        .collect();
    let nn_h = histogram_of(&nn);
    let m = nn.len().max(1) as f64;
    let exact = nn.iter().filter(|&&v| v >= 1.0).count() as f64 / m;
    let near = nn.iter().filter(|&&v| v >= NEAR_DUPLICATE).count() as f64 / m;
    let coverage = pass.coverage.summary();
    let density = pass.density.summary();
    // Outliers: less than half as similar to their nearest label as the median candidate.
    let ct = 0.5 * coverage.median;
    let outlier_share = pass.coverage.count_below(ct) / pass.coverage.count().max(1) as f64;
    let nn_s = nn_h.summary();
    let reading = format!(
        "{} candidates; the typical nearest neighbour has similarity {:.2} ({:.0}% near-duplicates, {:.0}% exact copies); the typical candidate's nearest label has similarity {:.2}; {:.1}% are outliers, less than half as close to a label{}",
        size,
        nn_s.median,
        100.0 * near,
        100.0 * exact,
        coverage.median,
        100.0 * outlier_share,
        if near >= 0.5 {
            ": most candidates have a near-duplicate"
        } else {
            ""
        }
    );
    PoolSection {
        size,
        labeled,
        sample,
        nn_similarity: nn_s,
        nn_histogram: nn_h.coarse_in(0.0, 1.0, 20),
        exact_duplicates: exact,
        near_duplicates: near,
        coverage,
        coverage_histogram: pass.coverage.coarse_in(0.0, 1.0, 20),
        density,
        outlier_coverage_below: ct,
        outlier_share,
        similarity,
        reading,
    }
}

/// Is a candidate with this coverage an outlier under the pool's rule?
pub fn is_outlier(p: &PoolSection, coverage: f32) -> bool {
    f64::from(coverage) < p.outlier_coverage_below
}
