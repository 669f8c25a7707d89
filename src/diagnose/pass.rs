//! What pass 2 over the pool accumulates, shared by the sections that read it.

use super::stats::Histogram;
use crate::select::TopK;

/// What pass 2 accumulates over the eligible candidates (neither labeled nor test).
pub struct PoolPass {
    /// Acquisition scores.
    pub scores: Histogram,
    /// Predicted means (standardised, maximisation scale).
    pub means: Histogram,
    /// Predicted latent sds (standardised).
    pub sds: Histogram,
    /// Similarity to the nearest labeled candidate.
    pub coverage: Histogram,
    /// Similarity to the nearest sample point.
    pub density: Histogram,
    /// Per sample point: similarity to its nearest other pool candidate.
    pub sample_nn: Vec<f32>,
    /// Per test point: similarity to its nearest pool candidate.
    pub test_nn: Vec<f32>,
    /// The batch.
    pub top: TopK<Kept>,
}

/// What the top-k keeps of a candidate.
#[derive(Clone, Debug)]
pub struct Kept {
    /// Id.
    pub id: String,
    /// Latent mean (standardised, maximisation scale).
    pub mean: f32,
    /// Latent variance (standardised).
    pub var: f32,
    /// Similarity to the nearest labeled candidate.
    pub coverage: f32,
    /// Similarity to the nearest sample point.
    pub density: f32,
}
