//! Where the pool is scored. The CPU backend (rayon) is the reference every other backend is
//! tested against.
//!
//! A backend is prepared once per round from the fitted model (training features, `alpha`,
//! `W = L⁻¹`) and then fills caller-owned slices tile by tile.

mod cpu;
pub mod encode;
pub mod gpu;
pub(crate) mod overlap;

pub use cpu::{CpuScorer, CHUNK};
pub use gpu::{GpuContext, GpuOptions, GpuScorer};

use crate::data::Features;
use crate::error::{Error, Result};
use crate::gp::FittedGp;

/// Where to score, as the user asks for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// A hardware GPU when there is one, else the CPU. Never a software adapter unless
    /// `POOLRANK_ALLOW_SOFTWARE_GPU=1`.
    #[default]
    Auto,
    /// The rayon CPU path (the reference).
    Cpu,
    /// A GPU through wgpu; an error when no adapter fits.
    Gpu,
}

/// The resolved backend of a run: the GPU context, if any, is opened once and reused by every
/// round.
pub struct Backend {
    gpu: Option<GpuContext>,
    /// What was chosen and why, for logs and summaries.
    pub description: String,
}

impl Backend {
    /// Resolves `choice`; `options` say whether a software adapter may be taken.
    pub fn new(choice: BackendChoice, options: &GpuOptions) -> Result<Self> {
        match choice {
            BackendChoice::Cpu => Ok(Backend::cpu("cpu (asked for)")),
            BackendChoice::Gpu => {
                let ctx = GpuContext::new(options)?;
                let description = format!("gpu: {}", ctx.adapter());
                Ok(Backend {
                    gpu: Some(ctx),
                    description,
                })
            }
            BackendChoice::Auto => match GpuContext::new(options) {
                Ok(ctx) => {
                    let description = format!("gpu (auto): {}", ctx.adapter());
                    Ok(Backend {
                        gpu: Some(ctx),
                        description,
                    })
                }
                Err(Error::NoAdapter { why }) => {
                    Ok(Backend::cpu(&format!("cpu (auto: no GPU adapter: {why})")))
                }
                Err(e) => Ok(Backend::cpu(&format!(
                    "cpu (auto: the GPU failed to start: {e})"
                ))),
            },
        }
    }

    /// The CPU backend.
    pub fn cpu(description: &str) -> Self {
        Backend {
            gpu: None,
            description: description.to_string(),
        }
    }

    /// Prepares a scorer for one round.
    pub fn prepare(&self, gp: &FittedGp) -> Result<AnyScorer> {
        Ok(match &self.gpu {
            Some(ctx) => AnyScorer::Gpu(Box::new(GpuScorer::new(ctx, gp)?)),
            None => AnyScorer::Cpu(Box::new(CpuScorer::new(gp))),
        })
    }
}

/// A scorer of either backend, chosen at run time (an enum, so hot paths stay monomorphic).
pub enum AnyScorer {
    /// The CPU reference.
    Cpu(Box<CpuScorer>),
    /// The wgpu backend.
    Gpu(Box<GpuScorer>),
}

impl Scorer for AnyScorer {
    fn posterior_into(&self, tile: &Features, mean: &mut [f32], var: &mut [f32]) -> Result<()> {
        match self {
            AnyScorer::Cpu(s) => s.posterior_into(tile, mean, var),
            AnyScorer::Gpu(s) => s.posterior_into(tile, mean, var),
        }
    }

    fn name(&self) -> String {
        match self {
            AnyScorer::Cpu(s) => s.name(),
            AnyScorer::Gpu(s) => s.name(),
        }
    }
}

/// Posterior of pool tiles under a model prepared once per round.
pub trait Scorer: Sync {
    /// Fills `mean` and `var` (standardised latent mean and variance, one per row of `tile`).
    fn posterior_into(&self, tile: &Features, mean: &mut [f32], var: &mut [f32]) -> Result<()>;

    /// A short name for logs and summaries.
    fn name(&self) -> String;
}
