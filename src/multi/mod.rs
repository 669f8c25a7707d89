//! Several objectives at once: a round that picks a Pareto batch.
//!
//! Each label column (every objective, and each column only a constraint names) gets its own
//! GP, fitted on the rows labeled for it; a candidate labeled for one objective only is
//! labeled. With the same kernel on every column (always for Tanimoto and MinMax, which have
//! no lengthscale; for RBF and Matérn only at a fixed `--lengthscale`), the models are rows
//! of one labeled set and the pool is scored from **one kernel block per tile**
//! ([`SharedCpuScorer`]): each model then costs its mean and its variance only. Otherwise,
//! and on the GPU backend for now, each model is scored on its own.
//!
//! # Acquisitions ([`ParetoAcquisition`])
//! In label units, every objective maximised (a minimised one negated), with each model's
//! latent posterior `N(μ_j, σ_j²)` (noise excluded), the objectives independent:
//! - `ehvi`: the expected hypervolume improvement over the labeled front (the rows labeled
//!   for every objective), exact for 2 and 3 objectives by box decomposition
//!   ([`crate::pareto::FrontBoxes`]).
//! - `phvi`: the probability that the candidate lands outside the region the front dominates.
//! - `pareto-ucb`: each objective's `μ + β σ` in standardised units; the batch is NSGA-II's:
//!   whole non-dominated layers in order, the last one cut by crowding distance
//!   ([`crate::pareto::pareto_batch`]). Only candidates dominated by fewer than `batch` others
//!   are held ([`FrontKeeper`]). A pick's score is its layer, 1 the first.
//! - `parego`: Knowles' ParEGO, batched. The rows labeled for every objective are scalarised
//!   with the augmented Chebyshev function ([`crate::pareto::chebyshev`], `ρ = 0.05`) of
//!   their values normalised to [0, 1] over those rows; one GP is fitted on each of
//!   `min(batch, 8)` weight vectors drawn per round ([`parego_weight_sets`]: the same seed and
//!   round give the same weights), and the batch is taken from their expected improvements in
//!   turn (the first vector's best, the second's, ...), so that one batch spreads over
//!   several directions of the front instead of one.
//!
//! The **reference point** of `ehvi` and `phvi` is, per objective, the worst labeled value less
//! 10% of that objective's labeled range ([`crate::pareto::reference_point`] of its labels), or
//! the one given ([`MultiParams::ref_point`], in the file's units).
//!
//! # Constraints
//! A [`Constraint`] `qed>=0.5` multiplies `ehvi`, `phvi` and `parego` by each candidate's
//! probability of feasibility, `P(qed ≥ 0.5)` under that column's GP (a product over
//! constraints). `pareto-ucb` has no single score to multiply: it sorts the candidates whose
//! probability of feasibility is at least one half first, and fills the batch from the others
//! only when those run out. When no candidate reaches a probability of [`FEASIBLE_FLOOR`] the
//! round stops with an error naming the constraints.
//!
//! Ties break by pool row, as in one-objective rounds. Pending candidates are excluded.

pub mod acquire;
pub mod keep;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;

pub use acquire::{Acquirer, Bound, Constraint, ParetoAcquisition, Scale, Value, PAREGO_WEIGHTS};
pub use keep::{Batcher, FrontKeeper, TopScores};

use crate::acquisition::AcqContext;
use crate::backend::{AnyScorer, Backend, GpuOptions, Scorer, SharedCpuScorer};
use crate::data::{FeatureKind, Features, IdList, MultiLabels, ObjectiveSpec, Objectives, Pool};
use crate::engine::{check_batch, locate, stream_tiles, FitSummary, SelectParams, Timings};
use crate::error::{Error, Result};
use crate::gp::{fit_sharing, FittedGp};
use crate::join::Rule;
use crate::pareto::{chebyshev, parego_weights, reference_point, FrontBoxes, CHEBYSHEV_RHO};
use crate::select::pathwise::JointSampler;
use crate::select::BatchMode;
use acquire::BoundConstraint;

/// The lowest probability of feasibility some candidate must reach for a constrained round
/// to go on.
pub const FEASIBLE_FLOOR: f64 = 1e-3;

/// The settings of a multi-objective round.
#[derive(Clone, Debug)]
pub struct MultiParams {
    /// Model, batch, seed, round, tile size, progress and backend as for one objective; its
    /// `acquisition` and `minimize` are not used, its `mode` must be top-k.
    pub select: SelectParams,
    /// The objectives (2 or 3), label columns with their directions.
    pub objectives: Objectives,
    /// How candidates are scored.
    pub acquisition: ParetoAcquisition,
    /// UCB weight of `pareto-ucb` (default 2).
    pub beta: f32,
    /// Reference point of `ehvi`/`phvi`, one value per objective in the file's units; `None`:
    /// from the labels.
    pub ref_point: Option<Vec<f64>>,
    /// Constraints on label columns (objectives or others).
    pub constraints: Vec<Constraint>,
}

impl MultiParams {
    /// `ehvi` on `objectives`, β = 2, no constraints, the other settings [`SelectParams`]'s
    /// defaults.
    pub fn new(objectives: Objectives) -> Self {
        MultiParams {
            select: SelectParams::default(),
            objectives,
            acquisition: ParetoAcquisition::Ehvi,
            beta: 2.0,
            ref_point: None,
            constraints: Vec::new(),
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] naming the field: 2 or 3 `objectives`, a `ref_point` of one
    /// finite value per objective (only for `ehvi`/`phvi`), a finite `beta`, top-k `mode`, no
    /// `max_sim`, `shortlist` or pathwise `joint_sampler`, and [`SelectParams::check`]'s.
    pub fn check(&self) -> Result<()> {
        let m = self.objectives.len();
        if !(2..=3).contains(&m) {
            return Err(Error::param(
                "objectives",
                format!(
                    "{m} objective given; a Pareto round needs 2 or 3 (one objective is --y-col)"
                ),
            ));
        }
        if let Some(r) = &self.ref_point {
            if !matches!(
                self.acquisition,
                ParetoAcquisition::Ehvi | ParetoAcquisition::Phvi
            ) {
                return Err(Error::param(
                    "ref_point",
                    format!(
                        "only ehvi and phvi use a reference point, not {}",
                        self.acquisition
                    ),
                ));
            }
            if r.len() != m || r.iter().any(|v| !v.is_finite()) {
                return Err(Error::param(
                    "ref_point",
                    format!(
                        "expected {m} finite values, one per objective ({}), got {r:?}",
                        self.objectives
                    ),
                ));
            }
        }
        if !(self.beta.is_finite() && self.beta.abs() <= 1e6) {
            return Err(Error::param(
                "beta",
                format!(
                    "must be a finite number from -1e6 to 1e6, got {}",
                    self.beta
                ),
            ));
        }
        let s = &self.select;
        let scalar = matches!(
            self.acquisition,
            ParetoAcquisition::Ehvi | ParetoAcquisition::Phvi
        );
        match s.mode {
            BatchMode::TopK => {}
            BatchMode::Diverse if scalar => {}
            BatchMode::Diverse => {
                return Err(Error::param(
                    "mode",
                    format!(
                        "diverse batches condition ehvi and phvi; {} spreads its batch itself (by {}), use topk",
                        self.acquisition,
                        if self.acquisition == ParetoAcquisition::Parego {
                            "several weight vectors"
                        } else {
                            "crowding distance"
                        }
                    ),
                ))
            }
            other => {
                return Err(Error::param(
                    "mode",
                    format!(
                        "{other} batches are not yet supported with several objectives; use topk or diverse"
                    ),
                ))
            }
        }
        if s.max_sim.is_some() {
            return Err(Error::param(
                "max_sim",
                "not used by multi-objective rounds",
            ));
        }
        if s.shortlist.is_some() && s.mode != BatchMode::Diverse {
            return Err(Error::param(
                "shortlist",
                "it applies only to diverse batches (mode)",
            ));
        }
        if s.joint_sampler != JointSampler::Shortlist {
            return Err(Error::param(
                "joint_sampler",
                "applies to thompson and qpo, not to multi-objective rounds",
            ));
        }
        s.check()?;
        Ok(())
    }

    /// The label columns the round reads: the objectives, then each column only a constraint
    /// names (as written: maximised).
    pub fn columns(&self) -> Vec<ObjectiveSpec> {
        let mut cols = self.objectives.to_vec();
        for c in &self.constraints {
            if !cols.iter().any(|s| s.column == c.column) {
                cols.push(ObjectiveSpec::max(c.column.clone()));
            }
        }
        cols
    }
}

/// One fitted model of a round: a label column (or ParEGO's scalarisation) and its GP.
pub struct Head {
    /// The column, or `parego`.
    pub name: String,
    /// The GP, fitted on the column's labels, negated for a minimised objective.
    pub gp: FittedGp,
    /// Its rows of the union of labeled rows, in its training order.
    pub rows: Vec<usize>,
    /// −1 for a minimised objective, else 1.
    pub sign: f64,
}

/// Fits one GP per label column of `labels` (rows in the order of `union`), each on the rows
/// labeled for it, then, for ParEGO, one on the scalarised rows labeled for every objective.
///
/// # Errors
/// [`Error::InvalidParam`] on `objectives` naming a column with fewer than 2 labels, or
/// ParEGO without 2 rows labeled for every objective; the fit's.
pub fn fit_heads(
    params: &MultiParams,
    union: &Features,
    labels: &MultiLabels,
    gram: &dyn crate::gp::GramAccumulator,
) -> Result<Vec<Head>> {
    let gp_params = params
        .select
        .model
        .check(union.kind())?
        .with_seed(params.select.seed);
    let mut heads = Vec::new();
    // What the fits on each set of rows share (the Gram matrix and its eigendecomposition).
    let mut shared: Vec<(Vec<usize>, crate::gp::SharedRows)> = Vec::new();
    for (spec, values) in labels.objectives.iter().zip(&labels.values) {
        let sign = if spec.minimize { -1.0 } else { 1.0 };
        let rows: Vec<usize> = (0..values.len()).filter(|&i| values[i].is_some()).collect();
        if rows.len() < 2 {
            return Err(Error::param(
                "objectives",
                format!(
                    "column {:?} has {} labels in the pool; a model needs at least 2",
                    spec.column,
                    rows.len()
                ),
            ));
        }
        let y: Vec<f64> = rows
            .iter()
            .filter_map(|&i| values[i])
            .map(|v| sign * v)
            .collect();
        let gp = fit_on(&heads, &mut shared, &gp_params, union, &rows, &y, gram)?;
        heads.push(Head {
            name: spec.column.clone(),
            gp,
            rows,
            sign,
        });
    }
    if params.acquisition == ParetoAcquisition::Parego {
        let m = params.objectives.len();
        for (w, weights) in parego_weight_sets(params)?.into_iter().enumerate() {
            let (rows, y) = parego_labels(labels, m, &weights)?;
            let gp = fit_on(&heads, &mut shared, &gp_params, union, &rows, &y, gram)?;
            heads.push(Head {
                name: format!("parego{}", w + 1),
                gp,
                rows,
                sign: 1.0,
            });
        }
    }
    Ok(heads)
}

/// The GP of the labels `y` on the `rows` of `union`: an earlier head's on the same rows
/// relabeled when its hyperparameters were fixed ([`FittedGp::relabeled`]: the same fit, one
/// Cholesky factorisation fewer), else a fit that shares the Gram matrix and its
/// eigendecomposition with the earlier fits on those rows ([`fit_sharing`]).
fn fit_on(
    heads: &[Head],
    shared: &mut Vec<(Vec<usize>, crate::gp::SharedRows)>,
    gp_params: &crate::gp::GpValidParams,
    union: &Features,
    rows: &[usize],
    y: &[f64],
    gram: &dyn crate::gp::GramAccumulator,
) -> Result<FittedGp> {
    if let Some(h) = heads.iter().find(|h| h.rows == rows) {
        if let Some(gp) = h.gp.relabeled(y)? {
            return Ok(gp);
        }
    }
    let at = match shared.iter().position(|(r, _)| r == rows) {
        Some(at) => at,
        None => {
            shared.push((rows.to_vec(), crate::gp::SharedRows::default()));
            shared.len() - 1
        }
    };
    fit_sharing(gp_params, &union.select_rows(rows), y, gram, &shared[at].1)
}

/// ParEGO's scalarised labels: the rows labeled for each of the first `m` columns, their
/// maximised values normalised to [0, 1] over those rows (a column with one value gives 0.5),
/// through the augmented Chebyshev function with the round's weights.
fn parego_labels(
    labels: &MultiLabels,
    m: usize,
    weights: &[f64],
) -> Result<(Vec<usize>, Vec<f64>)> {
    let rows: Vec<usize> = (0..labels.len())
        .filter(|&i| (0..m).all(|j| labels.values[j][i].is_some()))
        .collect();
    if rows.len() < 2 {
        return Err(Error::param(
            "objectives",
            format!(
                "parego scalarises the rows labeled for every objective; {} found, at least 2 needed",
                rows.len()
            ),
        ));
    }
    let value = |j: usize, i: usize| {
        labels.objectives[j].maximised(labels.values[j][i].expect("a complete row"))
    };
    let span: Vec<(f64, f64)> = (0..m)
        .map(|j| {
            let lo = rows
                .iter()
                .map(|&i| value(j, i))
                .fold(f64::INFINITY, f64::min);
            let hi = rows
                .iter()
                .map(|&i| value(j, i))
                .fold(f64::NEG_INFINITY, f64::max);
            (lo, hi)
        })
        .collect();
    let mut y = Vec::with_capacity(rows.len());
    for &i in &rows {
        let v: Vec<f64> = (0..m)
            .map(|j| {
                let (lo, hi) = span[j];
                if hi > lo {
                    (value(j, i) - lo) / (hi - lo)
                } else {
                    0.5
                }
            })
            .collect();
        y.push(chebyshev(&v, weights, CHEBYSHEV_RHO)?);
    }
    Ok((rows, y))
}

/// ParEGO's weight vectors this round: `min(batch, PAREGO_WEIGHTS)` of them, vector `w` of
/// round `r` drawn as [`parego_weights`]' round `r · PAREGO_WEIGHTS + w`.
///
/// # Errors
/// As [`parego_weights`].
pub fn parego_weight_sets(params: &MultiParams) -> Result<Vec<Vec<f64>>> {
    let sp = &params.select;
    let count = match sp.batch {
        crate::engine::BatchSize::Count(b) => b.min(PAREGO_WEIGHTS),
        crate::engine::BatchSize::Fraction(_) => PAREGO_WEIGHTS,
    };
    (0..count)
        .map(|w| {
            let round = sp
                .round
                .wrapping_mul(PAREGO_WEIGHTS as u32)
                .wrapping_add(w as u32);
            parego_weights(params.objectives.len(), sp.seed, round)
        })
        .collect()
}

/// Every model's posterior on pool tiles: from one shared kernel block where the models allow
/// it, else each on its own backend scorer.
pub enum MultiScorer {
    /// One kernel block per chunk ([`SharedCpuScorer`]).
    Shared(SharedCpuScorer),
    /// One scorer per model.
    Separate(Vec<AnyScorer>),
}

impl MultiScorer {
    /// The CPU backend shares the block when it can; the GPU scores each model.
    ///
    /// # Errors
    /// The backend's.
    pub fn new(backend: &Backend, union: &Features, heads: &[Head]) -> Result<Self> {
        if backend.is_cpu() {
            let pairs: Vec<(&FittedGp, &[usize])> =
                heads.iter().map(|h| (&h.gp, &h.rows[..])).collect();
            if let Some(s) = SharedCpuScorer::new(union, &pairs) {
                return Ok(MultiScorer::Shared(s));
            }
        }
        Ok(MultiScorer::Separate(
            heads
                .iter()
                .map(|h| backend.prepare(&h.gp))
                .collect::<Result<_>>()?,
        ))
    }

    /// Whether the models share one kernel block.
    pub fn shared(&self) -> bool {
        matches!(self, MultiScorer::Shared(_))
    }

    /// The backend's name.
    pub fn name(&self) -> String {
        match self {
            MultiScorer::Shared(_) => "cpu (one kernel block for every model)".into(),
            MultiScorer::Separate(s) => s.first().map_or_else(String::new, |s| s.name()),
        }
    }

    /// Fills `mean` and `var` (row-major `tile.len() × models`) with each model's standardised
    /// latent posterior.
    ///
    /// # Errors
    /// The scorers'.
    pub fn posterior_into(&self, tile: &Features, mean: &mut [f32], var: &mut [f32]) -> Result<()> {
        match self {
            MultiScorer::Shared(s) => s.posterior_into(tile, mean, var),
            MultiScorer::Separate(scorers) => {
                let (rows, h) = (tile.len(), scorers.len());
                let (mut m, mut v) = (vec![0f32; rows], vec![0f32; rows]);
                for (j, s) in scorers.iter().enumerate() {
                    s.posterior_into(tile, &mut m, &mut v)?;
                    for r in 0..rows {
                        mean[r * h + j] = m[r];
                        var[r * h + j] = v[r];
                    }
                }
                Ok(())
            }
        }
    }
}

/// The acquisition of a round: the labeled front's boxes, the reference point (maximised),
/// the constraints bound to their models, ParEGO's model.
///
/// # Errors
/// [`Error::InvalidParam`] for a constraint on a column the round has no model of, and the
/// box decomposition's.
pub fn acquirer(
    params: &MultiParams,
    labels: &MultiLabels,
    heads: &[Head],
) -> Result<(Acquirer, Option<Vec<f64>>)> {
    let m = params.objectives.len();
    let scales = heads.iter().map(|h| Scale::of(&h.gp, h.sign)).collect();
    let constraints = params
        .constraints
        .iter()
        .map(|c| {
            let head = heads
                .iter()
                .position(|h| h.name == c.column)
                .ok_or_else(|| {
                    Error::param(
                        "constraint",
                        format!("{c}: no model of column {:?}", c.column),
                    )
                })?;
            Ok(BoundConstraint {
                head,
                bound: c.bound,
                threshold: c.threshold,
            })
        })
        .collect::<Result<_>>()?;
    let mut reference = None;
    let boxes = match params.acquisition {
        ParetoAcquisition::Ehvi | ParetoAcquisition::Phvi => {
            let r = match &params.ref_point {
                Some(r) => r
                    .iter()
                    .zip(params.objectives.iter())
                    .map(|(v, s)| s.maximised(*v))
                    .collect(),
                None => (0..m)
                    .map(|j| {
                        let col: Vec<f64> = labels.values[j]
                            .iter()
                            .flatten()
                            .map(|v| labels.objectives[j].maximised(*v))
                            .collect();
                        reference_point(&col, 1).map(|r| r[0])
                    })
                    .collect::<Result<Vec<f64>>>()?,
            };
            let front = labeled_front(labels, m);
            let boxes = FrontBoxes::new(&front, &r)?;
            reference = Some(r);
            Some(boxes)
        }
        _ => None,
    };
    let parego = heads
        .iter()
        .enumerate()
        .filter(|(_, h)| h.name.starts_with("parego"))
        .map(|(k, h)| {
            (
                k,
                AcqContext {
                    best: h.gp.y_best as f32,
                    seed: params.select.seed,
                    round: params.select.round,
                },
            )
        })
        .collect();
    Ok((
        Acquirer {
            acquisition: params.acquisition,
            beta: params.beta,
            scales,
            m,
            constraints,
            boxes,
            parego,
        },
        reference,
    ))
}

/// The rows labeled for each of the first `m` columns, maximised, flat.
pub fn labeled_front(labels: &MultiLabels, m: usize) -> Vec<f64> {
    let mut front = Vec::new();
    for i in 0..labels.len() {
        if (0..m).all(|j| labels.values[j][i].is_some()) {
            front.extend(
                (0..m).map(|j| {
                    labels.objectives[j].maximised(labels.values[j][i].expect("complete"))
                }),
            );
        }
    }
    front
}

/// One candidate of a Pareto batch.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MultiPick {
    /// 1-based rank in the batch.
    pub rank: usize,
    /// The candidate's id.
    pub id: String,
    /// Its 0-based row in the pool.
    pub index: usize,
    /// `ehvi`/`phvi`/`parego`: the acquisition value (times the probability of feasibility);
    /// `pareto-ucb`: the pick's non-dominated layer, 1 the first.
    pub score: f64,
    /// The probability that it meets every constraint (with constraints).
    pub p_feasible: Option<f64>,
    /// Each label column's posterior mean, in the file's units (the order of
    /// [`MultiSummary::columns`]).
    pub mean: Vec<f64>,
    /// Each label column's latent posterior standard deviation, in the file's units.
    pub sd: Vec<f64>,
}

/// One column's model, as reported.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ColumnFit {
    /// The column (or `parego`).
    pub column: String,
    /// Labeled rows it was fitted on.
    pub labeled: usize,
    /// The fit.
    pub fit: FitSummary,
}

/// Counts and timings of a multi-objective round.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MultiSummary {
    /// Pool file.
    pub pool: PathBuf,
    /// Pool features.
    pub features: FeatureKind,
    /// Candidates in the pool.
    pub pool_size: usize,
    /// Candidates labeled for at least one column.
    pub labeled: usize,
    /// Candidates labeled for every objective.
    pub complete: usize,
    /// Of those, the ones on the labeled front (first non-dominated layer).
    pub front: usize,
    /// Pending candidates not also labeled.
    pub pending: usize,
    /// Candidates scored and eligible.
    pub candidates: usize,
    /// Batch size.
    pub batch: usize,
    /// Acquisition.
    pub acquisition: ParetoAcquisition,
    /// UCB weight of `pareto-ucb`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta: Option<f32>,
    /// The objectives, `NAME:min`/`NAME:max`.
    pub objectives: Vec<String>,
    /// The label columns of the picks' `mean` and `sd`: the objectives, then the columns only
    /// constraints name.
    pub columns: Vec<String>,
    /// The reference point of `ehvi`/`phvi`, in the file's units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_point: Option<Vec<f64>>,
    /// Whether it came from `ref_point` (else from the labels).
    pub reference_given: bool,
    /// The constraints, as written.
    pub constraints: Vec<String>,
    /// The highest probability of feasibility among the candidates (with constraints).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_p_feasible: Option<f64>,
    /// ParEGO's weight vectors this round.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parego_weights: Option<Vec<Vec<f64>>>,
    /// Seed.
    pub seed: u64,
    /// Round.
    pub round: u32,
    /// Backend that scored the pool.
    pub backend: String,
    /// How the backend was chosen.
    pub backend_choice: String,
    /// Whether every model was scored from one kernel block per tile.
    pub shared_kernel_block: bool,
    /// Whether candidates that provably could not enter the batch (or the shortlist) were
    /// skipped before their variances (`ehvi` and `parego`, with or without constraints, on
    /// one shared kernel block; the batch is brute force's).
    pub pruned: bool,
    /// Candidates whose variances under every model were computed (all of them unpruned).
    pub variances: usize,
    /// Each model.
    pub fits: Vec<ColumnFit>,
    /// Seconds per phase.
    pub seconds: Timings,
    /// Pool rows scored per second.
    pub candidates_per_second: f64,
}

/// A multi-objective round's result.
#[derive(Clone, Debug)]
pub struct MultiSelection {
    /// The batch, in order.
    pub picks: Vec<MultiPick>,
    /// What was done.
    pub summary: MultiSummary,
}

/// What is kept of a candidate.
#[derive(Clone)]
pub(crate) struct Cand {
    pub(crate) index: usize,
    pub(crate) id: String,
    pub(crate) mean: Vec<f32>,
    pub(crate) var: Vec<f32>,
    pub(crate) p: f64,
    /// Its features, for a diverse batch.
    pub(crate) row: Option<Features>,
}

/// Runs one multi-objective round: finds the labeled and pending candidates, fits a GP per
/// label column (`labels` holds [`MultiParams::columns`], in order), scores every other
/// candidate and picks the batch.
///
/// # Errors
/// [`MultiParams::check`]'s, labels whose columns are not [`MultiParams::columns`], the join's
/// (labeled or pending ids the pool lacks), a column with fewer than 2 labels,
/// [`Error::BatchTooLarge`], constraints no candidate is likely to meet, the fit's, the
/// backend's and the reader's.
pub fn run_select_objectives(
    params: &MultiParams,
    pool: &dyn Pool,
    labels: &MultiLabels,
    pending: &IdList,
) -> Result<MultiSelection> {
    let started = Instant::now();
    params.check()?;
    if labels.objectives != params.columns() {
        return Err(Error::param(
            "labels",
            format!(
                "the labels hold columns {:?}; the round needs {:?}",
                labels
                    .objectives
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
                params
                    .columns()
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
            ),
        ));
    }
    let sp = &params.select;
    let mut seconds = Timings::default();
    let join_labels = crate::data::Labels {
        source: labels.source.clone(),
        ids: labels.ids.clone(),
        values: vec![0.0; labels.len()],
        lines: labels.lines.clone(),
    };
    let loc = locate(sp, pool, &join_labels, pending, Rule::All)?;
    seconds.locate = started.elapsed().as_secs_f64();
    let batch = check_batch(sp, &loc)?;
    let backend = Backend::new(sp.backend, &GpuOptions::default())?;
    let t = Instant::now();
    let heads = fit_heads(params, &loc.train, labels, backend.gram().as_ref())?;
    seconds.fit = t.elapsed().as_secs_f64();
    let (acq, reference) = acquirer(params, labels, &heads)?;
    let scorer = MultiScorer::new(&backend, &loc.train, &heads)?;
    let h = heads.len();
    let m = params.objectives.len();
    let constrained = !params.constraints.is_empty();

    let t = Instant::now();
    let diverse = sp.mode == BatchMode::Diverse;
    let available = loc.pool_size - loc.excluded.len();
    let keep = match diverse {
        true => crate::select::shortlist_size(
            sp.shortlist,
            batch,
            available,
            crate::Acquisition::Greedy,
        )?,
        false => batch,
    };
    let mut batcher = Batcher::new(keep, m, acq.parego.len());
    let mut best_p = 0f64;
    let (mut mean, mut var) = (Vec::new(), Vec::new());
    let excluded = &loc.excluded;
    let pruned = match &scorer {
        MultiScorer::Shared(s) if sp.prune && acq.prunable() => Some(s),
        _ => None,
    };
    let mut variances = 0usize;
    stream_tiles(sp, pool, loc.pool_size, |tile| {
        let rows = tile.len();
        let start = tile.start;
        let lo = excluded.partition_point(|&g| g < start);
        let hi = excluded.partition_point(|&g| g < start + rows);
        let mut skip = excluded[lo..hi].iter().peekable();
        let eligible: Vec<usize> = (0..rows)
            .filter(|&r| skip.next_if_eq(&&(start + r)).is_none())
            .collect();
        mean.resize(rows * h, 0.0);
        let cand = |r: usize, mean: &[f32], var: &[f32], p: f64| Cand {
            index: start + r,
            id: tile.ids[r].clone(),
            mean: mean.to_vec(),
            var: var.to_vec(),
            p,
            row: diverse.then(|| tile.features.select_rows(&[r])),
        };
        if let Some(shared) = pruned {
            shared.means_into(&tile.features, &mut mean)?;
            let pass = pruned_pass(
                shared,
                &acq,
                &mut batcher,
                &tile.features,
                &mean,
                &eligible,
                |r| start + r,
                cand,
            )?;
            variances += pass.variances;
            best_p = best_p.max(pass.best_p);
            return Ok(());
        }
        var.resize(rows * h, 0.0);
        scorer.posterior_into(&tile.features, &mut mean, &mut var)?;
        let values: Vec<(Value, f64)> = eligible
            .par_iter()
            .map(|&r| {
                let (mr, vr) = (&mean[r * h..(r + 1) * h], &var[r * h..(r + 1) * h]);
                let p = if constrained {
                    acq.feasibility(mr, vr)
                } else {
                    1.0
                };
                acq.value(mr, vr, (start + r) as u64).map(|v| (v, p))
            })
            .collect::<Result<_>>()?;
        for (&r, (value, p)) in eligible.iter().zip(&values) {
            best_p = best_p.max(*p);
            batcher.offer(value, *p, start + r, || {
                cand(r, &mean[r * h..(r + 1) * h], &var[r * h..(r + 1) * h], *p)
            });
        }
        variances += eligible.len();
        Ok(())
    })?;
    seconds.score = t.elapsed().as_secs_f64();
    if constrained && best_p < FEASIBLE_FLOOR {
        if pruned.is_some() {
            // The rows pruned away were never given a probability: brute force decides (and
            // names the pool's highest probability).
            let mut brute = params.clone();
            brute.select.prune = false;
            return run_select_objectives(&brute, pool, labels, pending);
        }
        return Err(no_feasible(params, best_p));
    }
    let t = Instant::now();
    let mut chosen = batcher.finish()?;
    if diverse {
        let r = reference
            .as_deref()
            .expect("ehvi and phvi have a reference");
        chosen = diverse_batch(acq.clone(), &heads, labels, r, chosen, &loc.other, batch)?;
    }
    seconds.select = t.elapsed().as_secs_f64();
    let columns = params.columns();
    let picks = chosen
        .into_iter()
        .enumerate()
        .map(|(rank, (score, c))| {
            let (mean, sd) = columns
                .iter()
                .enumerate()
                .map(|(j, _)| {
                    let s = Scale::of(&heads[j].gp, heads[j].sign);
                    let (mu, sd) = s.maximised(c.mean[j], c.var[j]);
                    (s.sign * mu, sd)
                })
                .unzip();
            MultiPick {
                rank: rank + 1,
                id: c.id,
                index: c.index,
                score,
                p_feasible: constrained.then_some(c.p),
                mean,
                sd,
            }
        })
        .collect();
    let front = labeled_front(labels, m);
    let complete = front.len() / m;
    let front_size = crate::pareto::nondominated_layers(&front, m)?
        .first()
        .map_or(0, Vec::len);
    seconds.total = started.elapsed().as_secs_f64();
    Ok(MultiSelection {
        picks,
        summary: MultiSummary {
            pool: pool.name().to_path_buf(),
            features: loc.kind,
            pool_size: loc.pool_size,
            labeled: loc.train.len(),
            complete,
            front: front_size,
            pending: loc.other.len(),
            candidates: loc.pool_size - loc.excluded.len(),
            batch,
            acquisition: params.acquisition,
            beta: (params.acquisition == ParetoAcquisition::ParetoUcb).then_some(params.beta),
            objectives: params.objectives.iter().map(|s| s.to_string()).collect(),
            columns: columns.iter().map(|s| s.column.clone()).collect(),
            reference_point: reference.map(|r| {
                r.iter()
                    .zip(params.objectives.iter())
                    .map(|(v, s)| s.maximised(*v))
                    .collect()
            }),
            reference_given: params.ref_point.is_some(),
            constraints: params.constraints.iter().map(|c| c.to_string()).collect(),
            best_p_feasible: constrained.then_some(best_p),
            parego_weights: (params.acquisition == ParetoAcquisition::Parego)
                .then(|| parego_weight_sets(params))
                .transpose()?,
            seed: sp.seed,
            round: sp.round,
            backend: scorer.name(),
            backend_choice: backend.description.clone(),
            shared_kernel_block: scorer.shared(),
            pruned: pruned.is_some(),
            variances,
            fits: heads
                .iter()
                .map(|hd| ColumnFit {
                    column: hd.name.clone(),
                    labeled: hd.rows.len(),
                    fit: FitSummary::new(&hd.gp, &[]),
                })
                .collect(),
            seconds: seconds.clone(),
            candidates_per_second: loc.pool_size as f64 / seconds.score.max(1e-9),
        },
    })
}

/// The pruned pass over one tile's `eligible` rows (their means in `mean`, row-major rows ×
/// models): each row's value bound at the prior variances ([`Acquirer::value_bound`]); then
/// the rows best bound first, in waves of one chunk per thread, while the batcher admits
/// their bound; each wave's variances by stages ([`SharedCpuScorer::staged_variances`]), a
/// row dropped once its bound at the partial variances is refused. The rows that reach the
/// end have brute force's bits: their exact values are offered with their tie key `key(row)`
/// (`cand` builds a kept row from its means, variances and probability of feasibility), which
/// raises the threshold for the next wave. The rows it drops cannot enter the batch.
///
/// # Errors
/// A non-finite posterior reaching the box sums.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pruned_pass<T: Clone + Send + Sync>(
    shared: &SharedCpuScorer,
    acq: &Acquirer,
    batcher: &mut Batcher<T>,
    tile: &Features,
    mean: &[f32],
    eligible: &[usize],
    key: impl Fn(usize) -> usize + Sync,
    cand: impl Fn(usize, &[f32], &[f32], f64) -> T,
) -> Result<PrunedPass> {
    let h = shared.heads();
    let prior = shared.signal_vars();
    let at = |r: usize| &mean[r * h..(r + 1) * h];
    let constrained = !acq.constraints.is_empty();
    let mut pass = PrunedPass {
        variances: 0,
        best_p: 0.0,
    };
    let bounds: Vec<Value> = eligible
        .par_iter()
        .map(|&r| acq.value_bound(at(r), &prior, key(r) as u64))
        .collect::<Result<_>>()?;
    // Best bound first (a weighted bound by its largest entry; a NaN, which proves nothing,
    // first of all), ties by row.
    let peak = |v: &Value| match v {
        Value::Scalar(s) => *s,
        Value::Weighted(w) => w.iter().copied().fold(f64::NEG_INFINITY, |a, b| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        }),
        // `pareto-ucb`: the sum of the UCBs (standardised), a guess at the strongest first.
        Value::Vector(u) => u.iter().sum(),
    };
    let rank = |i: usize| {
        let v = peak(&bounds[i]);
        if v.is_nan() {
            f64::INFINITY
        } else {
            v
        }
    };
    // Ties by tie key, the order in which the batcher breaks them: a scalar bound refused
    // then refuses every later one.
    let rank_keys: Vec<f64> = (0..eligible.len()).map(rank).collect();
    let mut order: Vec<usize> = (0..eligible.len()).collect();
    order.sort_by(|&a, &b| {
        rank_keys[b]
            .total_cmp(&rank_keys[a])
            .then(key(eligible[a]).cmp(&key(eligible[b])))
    });
    let wave = crate::backend::CHUNK * rayon::current_num_threads().max(1);
    let mut next = 0;
    while next < order.len() {
        // The next rows the batcher admits. A refused row is refused for good (thresholds only
        // rise); past a refused scalar bound every bound is refused, but ParEGO's weighted
        // bounds each face their own weight's threshold, and `pareto-ucb`'s vectors the
        // candidates that dominate them, so a refused one of those says nothing of the next
        // row: it is skipped, not the end.
        batcher.refresh();
        let mut take = Vec::with_capacity(wave);
        while next < order.len() && take.len() < wave {
            let i = order[next];
            if batcher.admits(&bounds[i], key(eligible[i])) {
                take.push(eligible[i]);
            } else if matches!(bounds[i], Value::Scalar(_)) {
                next = order.len();
                break;
            }
            next += 1;
        }
        if take.is_empty() {
            break;
        }
        let seen: &Batcher<T> = batcher;
        let got = shared.staged_variances(tile, &take, |r, hi| {
            acq.value_bound(at(r), hi, key(r) as u64)
                .map_or(true, |b| seen.admits(&b, key(r)))
        });
        for (r, v) in got {
            if let Some(bad) = v.iter().find(|x| !x.is_finite()) {
                return Err(Error::param(
                    "features",
                    format!(
                        "the float32 scoring gave a non-finite variance ({bad}) for tile row {r}; \
                         the features or labels are beyond what float32 represents: rescale them"
                    ),
                ));
            }
            let value = acq.value(at(r), &v, key(r) as u64)?;
            let p = match constrained {
                true => acq.feasibility(at(r), &v),
                false => 1.0,
            };
            pass.best_p = pass.best_p.max(p);
            batcher.offer(&value, p, key(r), || cand(r, at(r), &v, p));
            pass.variances += 1;
        }
    }
    Ok(pass)
}

/// What [`pruned_pass`] did: how many rows got their variances, and the largest probability
/// of feasibility among them (at most that of every row, which brute force finds).
pub(crate) struct PrunedPass {
    pub variances: usize,
    pub best_p: f64,
}

/// The kriging believer over a shortlist (best first) for several objectives: one pick at a
/// time, each the best value still open; then every model is conditioned on the pick (its
/// variances shrink, its means stay) and, for `ehvi`/`phvi`, the pick's predicted objectives
/// join the front, so the next value counts only what the batch has not already covered.
/// Pending candidates are conditioned on first. Ties by pool row.
pub(crate) fn diverse_batch(
    mut acq: Acquirer,
    heads: &[Head],
    labels: &MultiLabels,
    reference: &[f64],
    short: Vec<(f64, Cand)>,
    pending: &Features,
    batch: usize,
) -> Result<Vec<(f64, Cand)>> {
    let m = acq.m;
    let Some(first) = short.first() else {
        return Ok(short);
    };
    let mut feats = Features::empty(first.1.row.as_ref().expect("kept rows").kind());
    for (_, c) in &short {
        feats.push_row_from(c.row.as_ref().expect("kept rows"), 0);
    }
    let mut believers: Vec<crate::select::Believer> = heads
        .iter()
        .map(|h| crate::select::Believer::new(&h.gp, &feats, pending))
        .collect();
    let mut front = labeled_front(labels, m);
    let mut taken = vec![false; short.len()];
    let mut picks = Vec::with_capacity(batch);
    let mut var = vec![0f32; heads.len()];
    while picks.len() < batch.min(short.len()) {
        let mut best: Option<(f64, usize, f64)> = None;
        for (i, (_, c)) in short.iter().enumerate() {
            if taken[i] {
                continue;
            }
            for (v, b) in var.iter_mut().zip(&believers) {
                *v = b.var(i);
            }
            let Value::Scalar(s) = acq.value(&c.mean, &var, c.index as u64)? else {
                unreachable!("diverse batches are for ehvi and phvi")
            };
            let better = match best {
                None => true,
                Some((bs, bi, _)) => s > bs || (s == bs && c.index < short[bi].1.index),
            };
            if better {
                best = Some((s, i, acq.feasibility(&c.mean, &var)));
            }
        }
        let Some((s, i, p)) = best else { break };
        taken[i] = true;
        for b in &mut believers {
            b.condition_on(i);
        }
        let c = &short[i].1;
        front.extend((0..m).map(|j| acq.scales[j].maximised(c.mean[j], 0.0).0));
        acq.boxes = Some(FrontBoxes::new(&front, reference)?);
        let mut c = c.clone();
        c.p = p;
        picks.push((s, c));
    }
    Ok(picks)
}

/// The error of constraints no candidate is likely to meet.
fn no_feasible(params: &MultiParams, best: f64) -> Error {
    let list: Vec<String> = params.constraints.iter().map(|c| c.to_string()).collect();
    Error::param(
        "constraint",
        format!(
            "no candidate is likely to meet {}: the highest probability of feasibility in the pool is {best:.2e}, below {FEASIBLE_FLOOR}; loosen the constraint or check its column and direction",
            list.join(" and ")
        ),
    )
}
