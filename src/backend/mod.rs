//! Where the pool is scored. The CPU backend (rayon) is the reference every other backend is
//! tested against.
//!
//! A backend is prepared once per round from the fitted model (training features, `alpha`,
//! `W = L⁻¹`) and then fills caller-owned slices tile by tile.

mod cpu;
pub mod encode;
mod overlap;

pub use cpu::{CpuScorer, CHUNK};

use crate::data::Features;
use crate::error::Result;

/// Posterior of pool tiles under a model prepared once per round.
pub trait Scorer: Sync {
    /// Fills `mean` and `var` (standardised latent mean and variance, one per row of `tile`).
    fn posterior_into(&self, tile: &Features, mean: &mut [f32], var: &mut [f32]) -> Result<()>;

    /// A short name for logs and summaries.
    fn name(&self) -> String;
}
