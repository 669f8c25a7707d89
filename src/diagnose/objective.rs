//! Section 5, the objective: with a held-out test set (`--objective accuracy --test`), how far
//! the test candidates sit from the pool, against how far pool candidates sit from each other.
//! A pool unlike the test set cannot teach the model what the test asks.

use super::pass::PoolPass;
use super::pool::PoolSection;
use super::stats::{histogram_of, Bin, Summary};
use crate::sim::Objective;

/// Section 5.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ObjectiveSection {
    /// The objective.
    pub objective: Objective,
    /// Test candidates.
    pub test: usize,
    /// Similarity of each test candidate to its nearest pool candidate.
    pub test_nn: Summary,
    /// Its histogram over [0, 1].
    pub test_nn_histogram: Vec<Bin>,
    /// The pool's own nearest-neighbour median (section 1), for comparison.
    pub pool_nn_median: f64,
    /// Share of test candidates less similar to the pool than 95% of pool candidates are to
    /// each other.
    pub test_far_share: f64,
    /// The test set sits away from the pool (see the verdict rules).
    pub mismatch: bool,
    /// One-line reading.
    pub reading: String,
}

/// Builds section 5.
pub fn section(pass: &PoolPass, pool: &PoolSection, objective: Objective) -> ObjectiveSection {
    let nn: Vec<f64> = pass
        .test_nn
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| f64::from(v))
        .collect();
    let h = histogram_of(&nn);
    let far =
        nn.iter().filter(|&&v| v < pool.nn_similarity.q05).count() as f64 / nn.len().max(1) as f64;
    let test_nn = h.summary();
    let mismatch = super::rules::test_mismatch(far);
    let reading = format!(
        "test candidates' nearest pool neighbour has median similarity {:.2} against the pool's own {:.2}; {:.0}% of them are farther from the pool than 95% of pool candidates are from each other{}",
        test_nn.median,
        pool.nn_similarity.median,
        100.0 * far,
        if mismatch {
            ": the pool is unlike the test set and cannot teach the model what the test asks"
        } else {
            ""
        }
    );
    ObjectiveSection {
        objective,
        test: nn.len(),
        test_nn,
        test_nn_histogram: h.coarse_in(0.0, 1.0, 20),
        pool_nn_median: pool.nn_similarity.median,
        test_far_share: far,
        mismatch,
        reading,
    }
}
