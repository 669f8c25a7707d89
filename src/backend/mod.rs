//! Where the pool is scored. The CPU backend (rayon) is the reference every other backend is
//! tested against.
//!
//! A backend is prepared once per round from the fitted model (training features, `alpha`,
//! `W = L⁻¹`) and then fills caller-owned slices tile by tile.

mod cpu;
pub mod encode;
pub mod gpu;
pub(crate) mod overlap;

pub use cpu::fused::Isa;
pub use cpu::shared::SharedCpuScorer;
pub use cpu::{CpuScorer, CHUNK};
pub use gpu::{GpuContext, GpuGram, GpuOptions, GpuScorer};

use crate::acquisition::{score, AcqContext, Acquisition};
use crate::data::{FeatureKind, Features};
use crate::error::{Error, Result};
use crate::gp::{CpuGram, FittedGp, GramAccumulator};
use crate::names::Named;
use crate::select::Floor;

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

impl Named for BackendChoice {
    const WHAT: &'static str = "backend";
    const TABLE: &'static [(Self, &'static str, &'static str)] = &[
        (
            BackendChoice::Auto,
            "auto",
            "A hardware GPU when there is one, else the CPU",
        ),
        (
            BackendChoice::Cpu,
            "cpu",
            "The CPU (rayon), the reference path",
        ),
        (
            BackendChoice::Gpu,
            "gpu",
            "A GPU through wgpu (Vulkan, Metal, DX12); an error when none fits",
        ),
    ];
}
crate::names::named!(BackendChoice);

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

    /// Whether this is the CPU backend.
    pub fn is_cpu(&self) -> bool {
        self.gpu.is_none()
    }

    /// The CPU backend.
    pub fn cpu(description: &str) -> Self {
        Backend {
            gpu: None,
            description: description.to_string(),
        }
    }

    /// Where a sparse fit's streaming product `K_mn K_nm` runs on this backend (for
    /// [`crate::gp::fit_with`]): the GPU when there is one (f32 per tile, f64 across tiles),
    /// else the CPU in f64.
    pub fn gram(&self) -> Box<dyn GramAccumulator> {
        match &self.gpu {
            Some(ctx) => Box::new(GpuGram::new(ctx)),
            None => Box::new(CpuGram),
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

/// An error unless `tile` holds the features the model was fitted on (kind and width).
pub(crate) fn check_tile_kind(tile: &Features, model: FeatureKind) -> Result<()> {
    if tile.kind() == model {
        return Ok(());
    }
    Err(Error::param(
        "pool",
        format!(
            "tile holds {} but the model was fitted on {model}",
            tile.kind()
        ),
    ))
}

/// The largest magnitude among dense features (0 for fingerprints).
pub(crate) fn dense_abs_max(x: &Features) -> f32 {
    match x {
        Features::Dense { data, .. } => data.iter().fold(0f32, |m, v| m.max(v.abs())),
        _ => 0.0,
    }
}

/// Refuses a dense tile whose squared distances to the labeled rows could overflow `f32`: the
/// kernel would be `exp(-inf) = 0` and every candidate would silently get the prior.
///
/// `Σ (x − z)² ≤ dim · (max|x| + max|z|)²` bounds every distance, so checking that bound
/// against `f32::MAX` (with a margin for the rounding of the sum) rules overflow out.
pub(crate) fn check_dense_range(tile: &Features, train_abs_max: f32) -> Result<()> {
    let Features::Dense { dim, .. } = tile else {
        return Ok(());
    };
    let pool_max = dense_abs_max(tile);
    let reach = f64::from(pool_max) + f64::from(train_abs_max);
    let bound = *dim as f64 * reach * reach;
    if bound.is_finite() && bound <= f64::from(f32::MAX) / 4.0 {
        return Ok(());
    }
    Err(Error::param(
        "features",
        format!(
            "dense feature values up to {pool_max:e} (pool) and {train_abs_max:e} (labeled) in \
             magnitude can overflow the float32 squared distances of the scoring over {dim} \
             dimensions; rescale the features (e.g. standardise each column)"
        ),
    ))
}

/// Refuses a posterior with a NaN or infinite mean or variance, naming the first such row.
pub(crate) fn check_finite_posterior(start: usize, mean: &[f32], var: &[f32]) -> Result<()> {
    match mean
        .iter()
        .zip(var)
        .position(|(m, v)| !(m.is_finite() && v.is_finite()))
    {
        None => Ok(()),
        Some(r) => Err(Error::param(
            "features",
            format!(
                "the float32 scoring gave a non-finite posterior (mean {}, variance {}) for tile \
                 row {}; the features or labels are beyond what float32 represents: rescale them",
                mean[r],
                var[r],
                start + r
            ),
        )),
    }
}

/// [`Scorer::best_into`] through [`Scorer::posterior_into`] and the CPU acquisition: every
/// row that is not skipped, scored.
///
/// # Errors
/// As [`Scorer::posterior_into`].
pub fn score_all_into<S: Scorer + ?Sized>(
    scorer: &S,
    tile: &Features,
    what: &BestOf,
    out: &mut Vec<Scored>,
) -> Result<()> {
    let rows = tile.len();
    let (mut mean, mut var) = (vec![0.0; rows], vec![0.0; rows]);
    scorer.posterior_into(tile, &mut mean, &mut var)?;
    score_posterior_into(what, &mean, &var, out)
}

/// Appends every row of a tile that is not skipped, scored on the CPU from its posterior
/// (`mean` and `var`, one per row).
///
/// # Errors
/// [`Error::InvalidParam`] for a non-finite mean or variance.
pub fn score_posterior_into(
    what: &BestOf,
    mean: &[f32],
    var: &[f32],
    out: &mut Vec<Scored>,
) -> Result<()> {
    use rayon::prelude::*;
    let rows = mean.len();
    check_finite_posterior(0, mean, var)?;
    let skip = what.skipped_in(rows);
    let first = out.len();
    out.extend(
        (0..rows)
            .filter(|&r| skip.binary_search(&(what.start + r)).is_err())
            .map(|row| Scored {
                row,
                score: 0.0,
                mean: mean[row],
                var: var[row],
            }),
    );
    out[first..].par_iter_mut().for_each(|s| {
        s.score = score(what.acq, s.mean, s.var, what.key(s.row) as u64, what.ctx);
    });
    Ok(())
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

    fn mean_into(&self, tile: &Features, mean: &mut [f32]) -> Result<()> {
        match self {
            AnyScorer::Cpu(s) => s.mean_into(tile, mean),
            AnyScorer::Gpu(s) => s.mean_into(tile, mean),
        }
    }

    fn best_into(&self, tile: &Features, what: &BestOf, out: &mut Vec<Scored>) -> Result<()> {
        match self {
            AnyScorer::Cpu(s) => s.best_into(tile, what, out),
            AnyScorer::Gpu(s) => s.best_into(tile, what, out),
        }
    }

    fn best_pruned_into(
        &self,
        tile: &Features,
        what: &BestOf,
        floor: &mut Floor,
        out: &mut Vec<Scored>,
    ) -> Result<Option<Stages>> {
        match self {
            AnyScorer::Cpu(s) => s.best_pruned_into(tile, what, floor, out),
            AnyScorer::Gpu(s) => s.best_pruned_into(tile, what, floor, out),
        }
    }

    fn best_pruned_with_mean(
        &self,
        tile: &Features,
        what: &BestOf,
        floor: &mut Floor,
        out: &mut Vec<Scored>,
        mean: &mut [f32],
    ) -> Result<Option<Stages>> {
        match self {
            AnyScorer::Cpu(s) => s.best_pruned_with_mean(tile, what, floor, out, mean),
            AnyScorer::Gpu(s) => s.best_pruned_with_mean(tile, what, floor, out, mean),
        }
    }

    fn name(&self) -> String {
        match self {
            AnyScorer::Cpu(s) => s.name(),
            AnyScorer::Gpu(s) => s.name(),
        }
    }
}

/// How many candidates reached each stage of pass 2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stages {
    /// The backend pruned: candidates whose bound fell below the running threshold got no
    /// variance.
    pub pruned: bool,
    /// Candidates scored by their mean (and, pruning, the bound of their score).
    pub mean: usize,
    /// Candidates that got an exact variance (all of them without pruning).
    pub variance: usize,
    /// Candidates whose variance was started in stages: they got a bound from a prefix of the
    /// rows of `W = L⁻¹`, and those still admitted went on; `variance` counts the ones that
    /// reached the end (0 without pruning, or when `W` is a single stage).
    pub partial: usize,
}

impl Stages {
    /// Brute force's stages: every one of `eligible` candidates got its mean and its variance.
    pub fn brute_force(eligible: usize) -> Self {
        Stages {
            pruned: false,
            mean: eligible,
            variance: eligible,
            partial: 0,
        }
    }
}

impl std::ops::AddAssign for Stages {
    fn add_assign(&mut self, o: Stages) {
        self.pruned |= o.pruned;
        self.mean += o.mean;
        self.variance += o.variance;
        self.partial += o.partial;
    }
}

/// One scored row of a tile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// Row in the tile.
    pub row: usize,
    /// Acquisition score.
    pub score: f32,
    /// Standardised latent mean.
    pub mean: f32,
    /// Latent variance.
    pub var: f32,
}

/// What [`Scorer::best_into`] keeps of a tile.
#[derive(Clone, Copy, Debug)]
pub struct BestOf<'a> {
    /// How candidates are scored.
    pub acq: Acquisition,
    /// The incumbent, seed and round of the draws.
    pub ctx: &'a AcqContext,
    /// Global pool row of the tile's row 0 (keys the random draws).
    pub start: usize,
    /// How many of the best to keep.
    pub keep: usize,
    /// Sorted global rows that are not candidates (labeled, pending); any may lie outside the
    /// tile.
    pub skip: &'a [usize],
    /// Each global row's key, where it is not the row itself: the index that keys its random
    /// draws and breaks its ties (`simulate` draws a tie order per replicate). `None`: the
    /// global row.
    pub keys: Option<&'a [usize]>,
}

impl BestOf<'_> {
    /// The key of the tile's row `row`: what keys its random draws and breaks its ties.
    #[inline]
    pub fn key(&self, row: usize) -> usize {
        let g = self.start + row;
        self.keys.map_or(g, |k| k[g])
    }

    /// The global rows of `skip` that fall in a tile of `rows` rows starting at `start`.
    pub fn skipped_in(&self, rows: usize) -> &[usize] {
        let lo = self.skip.partition_point(|&g| g < self.start);
        let hi = self.skip.partition_point(|&g| g < self.start + rows);
        &self.skip[lo..hi]
    }
}

/// Posterior of pool tiles under a model prepared once per round.
pub trait Scorer: Sync {
    /// Fills `mean` and `var` (standardised latent mean and variance, one per row of `tile`).
    fn posterior_into(&self, tile: &Features, mean: &mut [f32], var: &mut [f32]) -> Result<()>;

    /// Fills `mean` (one per row of `tile`) with the standardised latent mean, the same bits
    /// as [`Scorer::posterior_into`] gives. The default computes the whole posterior; a backend
    /// may skip the variance.
    ///
    /// # Errors
    /// As [`Scorer::posterior_into`].
    fn mean_into(&self, tile: &Features, mean: &mut [f32]) -> Result<()> {
        let mut var = vec![0f32; mean.len()];
        self.posterior_into(tile, mean, &mut var)
    }

    /// Appends to `out` every row of `tile` that can be among its best `what.keep` candidates
    /// (score descending, ties by row, NaN last; rows in `what.skip` never), with its score and
    /// posterior; it may append more rows than that, in any order. The default scores every
    /// row on the CPU and appends them all.
    ///
    /// # Errors
    /// As [`Scorer::posterior_into`].
    fn best_into(&self, tile: &Features, what: &BestOf, out: &mut Vec<Scored>) -> Result<()> {
        score_all_into(self, tile, what, out)
    }

    /// As [`Scorer::best_into`], but the backend may leave out any row whose score cannot
    /// reach `floor`'s threshold, before computing its variance, and must record in `floor`
    /// every exact score it appends. Returns the rows that reached each stage, or `None` when
    /// the backend does not prune: then it has done exactly [`Scorer::best_into`] (the
    /// default; the GPU backend where it cannot prune: rows keyed by [`BestOf::keys`], or more
    /// to keep than one select workgroup holds).
    ///
    /// # Errors
    /// As [`Scorer::posterior_into`].
    fn best_pruned_into(
        &self,
        tile: &Features,
        what: &BestOf,
        floor: &mut Floor,
        out: &mut Vec<Scored>,
    ) -> Result<Option<Stages>> {
        let _ = floor;
        self.best_into(tile, what, out)?;
        Ok(None)
    }

    /// [`Scorer::best_pruned_into`], also filling `mean` (one per row of `tile`, skipped rows
    /// too) with [`Scorer::mean_into`]'s bits: one pass where a caller needs every mean and
    /// the best scores. The default does not prune: one [`Scorer::posterior_into`] pass, every
    /// row scored on the CPU (`None`), which is also what the GPU backend does (its pruned
    /// pass keys ties by the pool row, so rows keyed by [`BestOf::keys`] cannot take it).
    ///
    /// # Errors
    /// As [`Scorer::posterior_into`].
    fn best_pruned_with_mean(
        &self,
        tile: &Features,
        what: &BestOf,
        floor: &mut Floor,
        out: &mut Vec<Scored>,
        mean: &mut [f32],
    ) -> Result<Option<Stages>> {
        let _ = floor;
        let mut var = vec![0f32; tile.len()];
        self.posterior_into(tile, mean, &mut var)?;
        score_posterior_into(what, mean, &var, out)?;
        Ok(None)
    }

    /// A short name for logs and summaries.
    fn name(&self) -> String;
}
