//! One round: read the labels, find them in the pool (pass 1), fit the GP, score every tile
//! (pass 2, streaming, bounded top-k), choose the batch.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

use rayon::prelude::*;

use crate::acquisition::{score, AcqContext, Acquisition};
pub use crate::backend::Stages;
use crate::backend::{Backend, BackendChoice, BestOf, GpuOptions, Scorer, CHUNK};
use crate::data::{FeatureKind, Features, IdList, Labels, Pool, Tile};
use crate::error::{Error, Result};
use crate::gp::{fit_with, FitInfo, FittedGp, ModelSpec};
use crate::join::{join, Joined, Pass, Rule};
use crate::model::{FittedModel, ModelOrigin};
use crate::progress::progress_bar;
use crate::select::pathwise::{self, JointPicks, JointSampler, PathwiseSamples, PATHWISE_ALONE};
use crate::select::stochastic::{self, Gumbel, KeyTop, STOCHASTIC_ALONE};
use crate::select::{
    choose_batch, grown_shortlist, uses_shortlist, BatchMode, Floor, JointReport, Ranked,
    Shortlisted, TopK,
};

/// A batch size: a count, or a fraction of the pool.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchSize {
    /// This many candidates.
    Count(usize),
    /// This fraction of the pool size, rounded to the nearest count (at least 1).
    Fraction(f64),
}

impl BatchSize {
    /// Parses `100` as a count and `0.01` as a fraction (a number below 1).
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        if let Ok(n) = s.parse::<usize>() {
            return if n == 0 {
                Err("must be at least 1".into())
            } else {
                Ok(BatchSize::Count(n))
            };
        }
        match s.parse::<f64>() {
            Ok(f) if f > 0.0 && f < 1.0 => Ok(BatchSize::Fraction(f)),
            _ => Err(format!("expected a count (100) or a fraction of the pool between 0 and 1 (0.01), got {s:?}")),
        }
    }

    /// The count for a pool of `pool` candidates.
    pub fn resolve(self, pool: usize) -> usize {
        match self {
            BatchSize::Count(n) => n,
            BatchSize::Fraction(f) => ((f * pool as f64).round() as usize).max(1),
        }
    }
}

/// The settings of a round: everything but its pool, labels and pending candidates. Check
/// them ([`SelectParams::check`]) to get the [`SelectValidParams`] the entry points take.
#[derive(Clone, Debug)]
pub struct SelectParams {
    /// Kernel and fixed hyperparameters (the rest are fitted).
    pub model: ModelSpec,
    /// The acquisition function.
    pub acquisition: Acquisition,
    /// Lower labels are better.
    pub minimize: bool,
    /// How many to pick.
    pub batch: BatchSize,
    /// Top-k, diverse, or one of the stochastic modes (`softmax`, `power`, `softrank`).
    pub mode: BatchMode,
    /// Temperature `T` of `softmax` (`p ∝ exp(score / T)`); default 0.1.
    pub temperature: f32,
    /// Exponent `β` of `power` (`p ∝ score^β`) and `softrank` (`p ∝ rank^−β`); default 1.
    pub power: f32,
    /// Shortlist size for diverse batches and the similarity cap; default `max(5·batch, 500)`.
    pub shortlist: Option<usize>,
    /// Largest kernel similarity allowed between two picks.
    pub max_sim: Option<f64>,
    /// How `thompson` and `qpo` draw joint samples: over a shortlist (default) or over the
    /// whole pool by pathwise conditioning.
    pub joint_sampler: JointSampler,
    /// Random features of the pathwise sampler's prior draw; default 1,024.
    pub prior_features: usize,
    /// Run seed.
    pub seed: u64,
    /// Round number (keys the random draws).
    pub round: u32,
    /// Pool rows per tile.
    pub tile_rows: usize,
    /// Show a progress bar on a terminal.
    pub progress: bool,
    /// Where to score.
    pub backend: BackendChoice,
    /// Skip the variance of candidates that provably cannot enter the batch (or the
    /// shortlist): their score's upper bound from the mean and the prior variance
    /// ([`crate::acquisition::score_bound`]) is below the k-th best exact score found so far.
    /// The batch is the same as brute force, bit for bit. Default true; the GPU backend scores
    /// brute force for now whatever this says.
    pub prune: bool,
}

impl Default for SelectParams {
    /// UCB (β = 2), batch 100, top-k (temperature 0.1, power 1 for the stochastic modes), seed
    /// 0, tiles of 65,536 rows, automatic backend, pruning.
    fn default() -> Self {
        SelectParams {
            model: ModelSpec::default(),
            acquisition: Acquisition::Ucb { beta: 2.0 },
            minimize: false,
            batch: BatchSize::Count(100),
            mode: BatchMode::TopK,
            temperature: stochastic::DEFAULT_TEMPERATURE,
            power: stochastic::DEFAULT_POWER,
            shortlist: None,
            max_sim: None,
            joint_sampler: JointSampler::Shortlist,
            prior_features: pathwise::DEFAULT_FEATURES,
            seed: 0,
            round: 0,
            tile_rows: 65_536,
            progress: false,
            backend: BackendChoice::Auto,
            prune: true,
        }
    }
}

impl SelectParams {
    /// The settings, checked: a finite `beta`/`xi`, `max_sim` in [0, 1], at least one row per
    /// tile, a `shortlist` only where one is used, a finite `temperature` and `power` above 0,
    /// `power` mode only on scores that are never negative, and no `max_sim` with a
    /// stochastic mode.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] naming the field (the acquisition's `beta` or `xi`, `max_sim`,
    /// `tile_rows`, `shortlist`, `temperature`, `power`, `mode`).
    pub fn check(&self) -> Result<SelectValidParams> {
        self.acquisition.check()?;
        stochastic::check(self.mode, self.temperature, self.power, self.acquisition)?;
        if stochastic::is_stochastic(self.mode) {
            if self.max_sim.is_some() {
                return Err(Error::param("max_sim", STOCHASTIC_ALONE));
            }
            if self.shortlist.is_some() {
                return Err(Error::param("shortlist", STOCHASTIC_ALONE));
            }
        }
        if let Some(t) = self.max_sim {
            if !(0.0..=1.0).contains(&t) {
                return Err(Error::param(
                    "max_sim",
                    format!("must be between 0 and 1, got {t}"),
                ));
            }
        }
        if self.tile_rows == 0 {
            return Err(Error::param("tile_rows", "must be at least 1"));
        }
        if self.acquisition.is_joint() && self.mode != BatchMode::TopK {
            return Err(Error::param("mode", crate::select::JOINT_MODE));
        }
        if self.joint_sampler == JointSampler::Pathwise {
            if !self.acquisition.is_joint() {
                return Err(Error::param("joint_sampler", PATHWISE_ALONE));
            }
            if self.max_sim.is_some() {
                return Err(Error::param("max_sim", PATHWISE_ALONE));
            }
            if self.shortlist.is_some() {
                return Err(Error::param("shortlist", PATHWISE_ALONE));
            }
            if self.prior_features == 0 {
                return Err(Error::param("prior_features", "must be at least 1"));
            }
        }
        if self.shortlist.is_some() && !uses_shortlist(self.mode, self.acquisition, self.max_sim) {
            return Err(Error::param(
                "shortlist",
                "it applies only to diverse batches (mode), with a similarity cap (max_sim) or to thompson and qpo",
            ));
        }
        Ok(SelectValidParams(self.clone()))
    }
}

/// [`SelectParams`] that passed [`SelectParams::check`]; read its fields through `Deref`.
#[derive(Clone, Debug)]
pub struct SelectValidParams(SelectParams);

impl std::ops::Deref for SelectValidParams {
    type Target = SelectParams;

    fn deref(&self) -> &SelectParams {
        &self.0
    }
}

/// One selected candidate.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Pick {
    /// 1-based rank in the batch.
    pub rank: usize,
    /// The candidate's id.
    pub id: String,
    /// Its 0-based row in the pool.
    pub index: usize,
    /// Acquisition score (standardised units; larger is better).
    pub score: f32,
    /// Posterior mean in label units.
    pub mean: f64,
    /// Posterior latent standard deviation in label units (noise excluded).
    pub sd: f64,
}

/// The fitted model, as reported.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FitSummary {
    /// Kernel name.
    pub kernel: &'static str,
    /// Signal variance (standardised units).
    pub signal_var: f64,
    /// Noise variance (standardised units).
    pub noise: f64,
    /// Lengthscale, for dense kernels.
    pub lengthscale: Option<f64>,
    /// Labels are standardised before the fit (always true).
    pub labels_standardised: bool,
    /// Mean of the labels on the maximisation scale.
    pub label_mean: f64,
    /// Standard deviation of the labels.
    pub label_sd: f64,
    /// Fit details (jitter, log marginal likelihood, evaluations, seconds, the approximation
    /// and, for VFE, the inducing points as rows of the labels file).
    #[serde(flatten)]
    pub info: FitInfo,
    /// For VFE: the ids of the inducing points, in the order they were chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inducing_ids: Option<Vec<String>>,
}

impl FitSummary {
    /// The report of `gp`, fitted to the labels with ids `label_ids` (in row order).
    pub fn new(gp: &FittedGp, label_ids: &[String]) -> Self {
        FitSummary {
            kernel: gp.kernel.kind.name(),
            signal_var: gp.signal_var,
            noise: gp.noise,
            lengthscale: gp.lengthscale(),
            labels_standardised: true,
            label_mean: gp.y_mean,
            label_sd: gp.y_sd,
            info: gp.info.clone(),
            inducing_ids: gp.info.sparse.as_ref().map(|s| {
                s.rows
                    .iter()
                    .map(|&r| label_ids.get(r).cloned().unwrap_or_else(|| r.to_string()))
                    .collect()
            }),
        }
    }
}

/// Counts and timings of a round.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    /// Pool file.
    pub pool: PathBuf,
    /// Pool features.
    pub features: FeatureKind,
    /// Candidates in the pool.
    pub pool_size: usize,
    /// Labeled candidates (found in the pool).
    pub labeled: usize,
    /// Pending candidates not also labeled.
    pub pending: usize,
    /// Candidates scored and eligible (neither labeled nor pending).
    pub candidates: usize,
    /// Batch size.
    pub batch: usize,
    /// Acquisition.
    pub acquisition: Acquisition,
    /// Batch mode.
    pub batch_mode: BatchMode,
    /// Temperature of the `softmax` mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Exponent of the `power` and `softrank` modes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power: Option<f32>,
    /// Shortlist size used (diverse, similarity cap, thompson and qpo).
    pub shortlist: Option<usize>,
    /// For `thompson` and `qpo`: the shortlist, samples, the share of argmaxes on the
    /// shortlist's last tenth, the jitter and the pool passes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joint: Option<JointReport>,
    /// Similarity cap.
    pub max_sim: Option<f64>,
    /// Lower labels are better.
    pub minimize: bool,
    /// Seed.
    pub seed: u64,
    /// Backend that scored the pool.
    pub backend: String,
    /// How the backend was chosen.
    pub backend_choice: String,
    /// Rayon threads.
    pub threads: usize,
    /// Model.
    pub fit: FitSummary,
    /// How many candidates reached each stage of the scoring.
    pub stages: Stages,
    /// Seconds per phase.
    pub seconds: Timings,
    /// Pool rows scored per second in pass 2 (reading included).
    pub candidates_per_second: f64,
}

/// Wall-clock seconds of each phase.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Timings {
    /// Reading the labels and the first pass over the pool.
    pub locate: f64,
    /// GP fit.
    pub fit: f64,
    /// Second pass: scoring every tile.
    pub score: f64,
    /// Choosing the batch from the kept candidates.
    pub select: f64,
    /// Everything.
    pub total: f64,
}

/// A round's result.
#[derive(Clone, Debug)]
pub struct Selection {
    /// The batch, best first.
    pub picks: Vec<Pick>,
    /// What was done.
    pub summary: Summary,
}

/// Runs one selection round end to end: finds the labeled and pending candidates in `pool`,
/// fits the GP to `labels`, scores every other candidate and picks the batch.
///
/// # Errors
/// The join's ([`join()`]: labels or pending ids the pool lacks, repeated ids, an empty
/// pool), [`Error::TooFewLabels`], [`Error::BatchTooLarge`], the fit's, the backend's and the
/// reader's.
pub fn run_select(
    params: &SelectValidParams,
    pool: &dyn Pool,
    labels: &Labels,
    pending: &IdList,
) -> Result<Selection> {
    let started = Instant::now();
    let mut seconds = Timings::default();
    let loc = locate(params, pool, labels, pending, Rule::All)?;
    seconds.locate = started.elapsed().as_secs_f64();
    if loc.train.len() < 2 {
        return Err(Error::TooFewLabels { n: loc.train.len() });
    }
    let batch = check_batch(params, &loc)?;
    // Started before the fit: a sparse fit's big product runs on the backend too.
    let backend = Backend::new(params.backend, &GpuOptions::default())?;
    let t = Instant::now();
    let model = fit_located(params, &loc, labels, &backend, None)?;
    seconds.fit = t.elapsed().as_secs_f64();
    score_round(
        params, pool, &model, &backend, &loc, batch, seconds, started,
    )
}

/// Pass 1 of a round: the labeled and pending rows.
pub(crate) fn locate(
    params: &SelectParams,
    pool: &dyn Pool,
    labels: &Labels,
    pending: &IdList,
    rule: Rule,
) -> Result<Joined> {
    let pass = Pass {
        rule,
        tile_rows: params.tile_rows,
        progress: params.progress,
    };
    join(pool, labels, pending, pass, &mut |_| {})
}

/// A model fitted by [`run_fit`], with what was done.
#[derive(Clone, Debug)]
pub struct Fit {
    /// The model, ready to save or to score with.
    pub model: FittedModel,
    /// What was fitted on.
    pub summary: FitRunSummary,
}

/// Counts and timings of [`run_fit`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct FitRunSummary {
    /// Pool file.
    pub pool: PathBuf,
    /// Pool features.
    pub features: FeatureKind,
    /// What made them, when the pool says.
    pub provenance: Option<String>,
    /// Candidates in the pool.
    pub pool_size: usize,
    /// Labeled candidates.
    pub labeled: usize,
    /// Lower labels are better.
    pub minimize: bool,
    /// Backend of a sparse fit's product.
    pub backend_choice: String,
    /// The model.
    pub fit: FitSummary,
    /// Seconds per phase (`score` and `select` are 0).
    pub seconds: Timings,
}

/// Fits the model of a round without scoring the pool: finds the labels in the pool and fits.
/// Uses `model`, `minimize`, `seed`, `tile_rows`, `progress` and `backend` of `params` (a
/// sparse fit's product runs there); [`run_select_model`] scores with the result as
/// [`run_select`] would have.
///
/// # Errors
/// As [`run_select`] for locating and fitting.
pub fn run_fit(params: &SelectValidParams, pool: &dyn Pool, labels: &Labels) -> Result<Fit> {
    let started = Instant::now();
    let mut seconds = Timings::default();
    let loc = locate(params, pool, labels, &IdList::default(), Rule::All)?;
    seconds.locate = started.elapsed().as_secs_f64();
    let provenance = pool.provenance()?;
    let backend = Backend::new(params.backend, &GpuOptions::default())?;
    let t = Instant::now();
    let model = fit_located(params, &loc, labels, &backend, provenance.clone())?;
    seconds.fit = t.elapsed().as_secs_f64();
    seconds.total = started.elapsed().as_secs_f64();
    Ok(Fit {
        summary: FitRunSummary {
            pool: pool.name().to_path_buf(),
            features: loc.kind,
            provenance,
            pool_size: loc.pool_size,
            labeled: loc.train.len(),
            minimize: params.minimize,
            backend_choice: backend.description.clone(),
            fit: FitSummary::new(model.gp(), model.labeled_ids()),
            seconds,
        },
        model,
    })
}

/// One round with a saved model instead of a fit: the pool is read once to find the model's
/// labeled candidates (never picked; those the pool lacks are simply absent, as in a shard of
/// the pool) and the pending ones, then scored and the batch chosen exactly as
/// [`run_select`] does. `params.model` and `params.minimize` are not used: the model's own
/// kernel, hyperparameters and direction are. (Check labels given beside a model with
/// [`FittedModel::check_labels`].)
///
/// # Errors
/// [`Error::FeatureMismatch`] when the pool's features are not the model's, and as
/// [`run_select`].
pub fn run_select_model(
    params: &SelectValidParams,
    pool: &dyn Pool,
    model: &FittedModel,
    pending: &IdList,
) -> Result<Selection> {
    let started = Instant::now();
    let mut seconds = Timings::default();
    let loc = locate(params, pool, &model_labels(model), pending, Rule::Present)?;
    seconds.locate = started.elapsed().as_secs_f64();
    model.check_features(loc.kind, pool.provenance()?.as_deref(), pool.name())?;
    let batch = check_batch(params, &loc)?;
    let backend = Backend::new(params.backend, &GpuOptions::default())?;
    score_round(params, pool, model, &backend, &loc, batch, seconds, started)
}

/// The labels a saved model was fitted on, as the join takes them.
fn model_labels(model: &FittedModel) -> Labels {
    Labels {
        source: "the model's labels".into(),
        ids: model.labeled_ids().to_vec(),
        values: model.label_values().to_vec(),
        lines: Vec::new(),
    }
}

/// One candidate a shard keeps: what a part holds of it.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardRow {
    /// Acquisition score (standardised units; larger is better).
    pub score: f32,
    /// Its global row: the shard's first row plus its row in the shard.
    pub index: usize,
    /// Its id.
    pub id: String,
    /// Posterior mean in label units.
    pub mean: f64,
    /// Posterior latent standard deviation in label units.
    pub sd: f64,
    /// Latent posterior mean (standardised units), for the batch policy of the merge.
    pub latent_mean: f32,
    /// Latent posterior variance (standardised units).
    pub latent_var: f32,
    /// Its features, when the batch policy needs them (a diverse batch, a similarity cap).
    pub row: Option<Features>,
}

/// A pending candidate a shard holds, as the merge's batch policy needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingRow {
    /// Its place in the pending list.
    pub place: usize,
    /// Its global row.
    pub index: usize,
    /// Its features.
    pub row: Features,
}

/// Counts and timings of [`run_score_shard`].
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShardSummary {
    /// Rows of the shard.
    pub rows: usize,
    /// The model's labeled candidates found in it.
    pub labeled: usize,
    /// Pending candidates found in it (not also labeled).
    pub pending: usize,
    /// Candidates scored and eligible (neither labeled nor pending).
    pub candidates: usize,
    /// Candidates kept: the best `k`, or every candidate when it has fewer.
    pub kept: usize,
    /// Backend that scored the shard.
    pub backend: String,
    /// How many candidates reached each stage of the scoring.
    pub stages: Stages,
    /// Seconds: reading the shard (the join), scoring, everything.
    pub seconds: ShardTimings,
}

/// Wall-clock seconds of [`run_score_shard`].
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShardTimings {
    /// The first pass (ids of the labeled and pending candidates).
    pub locate: f64,
    /// The second pass: scoring every tile.
    pub score: f64,
    /// Everything.
    pub total: f64,
}

/// A shard's best candidates under a saved model.
#[derive(Clone, Debug)]
pub struct ShardScores {
    /// The best `k` candidates of the shard (or its shortlist's), best first.
    pub rows: Vec<ShardRow>,
    /// The shard's features.
    pub features: FeatureKind,
    /// The shortlist size a diverse batch or a similarity cap keeps (`None` for a top-k).
    pub shortlist: Option<usize>,
    /// With a shortlist: the pending candidates the shard holds, with their features.
    pub pending: Vec<PendingRow>,
    /// What was done.
    pub summary: ShardSummary,
}

/// Scores one shard of a pool with a saved model and keeps its best `k` candidates, exactly
/// as [`run_select_model`] ranks them on the whole pool: `pool`'s rows carry their global
/// rows (a [`crate::shard::ShardPool`] starts at the shard's offset), which key the random
/// draws and break ties, so the best `k` of the union of the shards' best `k` is the
/// one-process batch. With a diverse batch or a similarity cap (`params.mode`,
/// `params.max_sim`) for a batch of `k`, the shard keeps its best of the shortlist's size
/// instead, with their features and those of the pending candidates it holds, and the merge
/// picks from the union's shortlist. The model's labeled ids and the `pending` ids the shard
/// lacks are simply absent from it (the merge checks the pending ones across shards).
/// `params.batch`, `params.model` and `params.minimize` are not used; `backend` scores
/// (`params.backend` is not used: a worker keeps one backend, its GPU opened once, for many
/// shards).
///
/// `floor`, the `k`-th best `(score, row)` of other shards already scored (of the shortlist's
/// size with a shortlist), starts the pruning threshold there: a candidate whose score's bound
/// is below its score cannot be among the pool's best `k`, so the shard keeps fewer (the
/// merge checks that the pool's `k`-th best is at least the floor).
///
/// # Errors
/// [`Error::InvalidParam`] for a shortlist smaller than `k`; [`Error::FeatureMismatch`] when
/// the shard's features are not the model's; the join's, the backend's and the reader's.
pub fn run_score_shard(
    params: &SelectValidParams,
    pool: &dyn Pool,
    model: &FittedModel,
    pending: &IdList,
    k: usize,
    backend: &Backend,
    floor: Option<(f32, usize)>,
) -> Result<ShardScores> {
    if params.joint_sampler == JointSampler::Pathwise {
        return Err(Error::param(
            "joint_sampler",
            "the pathwise sampler is not yet supported across shards; use the shortlist sampler (the default) with score-shard, or select in one process",
        ));
    }
    if stochastic::is_stochastic(params.mode) {
        return Err(Error::param(
            "mode",
            format!(
                "{} is a stochastic batch mode, not yet supported across shards; score the pool in one process (select)",
                params.mode
            ),
        ));
    }
    let needs_shortlist = uses_shortlist(params.mode, params.acquisition, params.max_sim);
    // The whole pool's shortlist before it is capped at the pool's candidates.
    let shortlist = needs_shortlist
        .then(|| crate::select::shortlist_size(params.shortlist, k, usize::MAX, params.acquisition))
        .transpose()?;
    let started = Instant::now();
    let loc = locate(params, pool, &model_labels(model), pending, Rule::Shard)?;
    let locate_s = started.elapsed().as_secs_f64();
    model.check_features(loc.kind, pool.provenance()?.as_deref(), pool.name())?;
    let gp = model.gp();
    let candidates = loc.pool_size - loc.excluded.len();
    let keep = shortlist.unwrap_or(k).min(candidates);
    let t = Instant::now();
    let scorer = backend.prepare(gp)?;
    let ctx = AcqContext {
        best: gp.y_best as f32,
        seed: params.seed,
        round: params.round,
    };
    let (kept, stages) = match keep {
        0 => (TopK::new(0), Stages::default()),
        _ => score_pool(
            params,
            pool,
            &scorer,
            &ctx,
            &loc.excluded,
            keep,
            needs_shortlist,
            loc.pool_size,
            Floor::new(keep).at_least(floor.map_or(f32::NEG_INFINITY, |f| f.0)),
        )?,
    };
    let score_s = t.elapsed().as_secs_f64();
    let sign = model.sign();
    let rows: Vec<ShardRow> = kept
        .into_sorted()
        .into_iter()
        .map(|r| ShardRow {
            score: r.score,
            index: r.index,
            id: r.item.id,
            mean: sign * gp.mean_to_labels(f64::from(r.item.mean)),
            sd: gp.sd_to_labels(f64::from(r.item.var)),
            latent_mean: r.item.mean,
            latent_var: r.item.var,
            row: r.item.row,
        })
        .collect();
    let pending = match needs_shortlist {
        true => (0..loc.other_rows.len())
            .map(|i| PendingRow {
                place: loc.other_places[i],
                index: loc.other_rows[i],
                row: loc.other.select_rows(&[i]),
            })
            .collect(),
        false => Vec::new(),
    };
    Ok(ShardScores {
        features: loc.kind,
        shortlist,
        pending,
        summary: ShardSummary {
            rows: loc.pool_size,
            labeled: loc.train_rows.len(),
            pending: loc.other_rows.len(),
            candidates,
            kept: rows.len(),
            backend: scorer.name(),
            stages,
            seconds: ShardTimings {
                locate: locate_s,
                score: score_s,
                total: started.elapsed().as_secs_f64(),
            },
        },
        rows,
    })
}

/// The batch size for this pool, if that many candidates are neither labeled nor pending.
pub(crate) fn check_batch(params: &SelectParams, loc: &Joined) -> Result<usize> {
    let available = loc.pool_size - loc.excluded.len();
    let batch = params.batch.resolve(loc.pool_size);
    if batch > available {
        return Err(Error::BatchTooLarge { batch, available });
    }
    Ok(batch)
}

/// Fits the GP to the located labels on the maximisation scale.
fn fit_located(
    params: &SelectParams,
    loc: &Joined,
    labels: &Labels,
    backend: &Backend,
    provenance: Option<String>,
) -> Result<FittedModel> {
    if loc.train.len() < 2 {
        return Err(Error::TooFewLabels { n: loc.train.len() });
    }
    let gp_params = params.model.check(loc.kind)?.with_seed(params.seed);
    let sign = if params.minimize { -1.0 } else { 1.0 };
    let y: Vec<f64> = loc.y.iter().map(|v| sign * v).collect();
    let gp = fit_with(&gp_params, &loc.train, &y, backend.gram().as_ref())?;
    FittedModel::new(
        gp,
        ModelOrigin {
            provenance,
            minimize: params.minimize,
            labeled_ids: labels.ids.clone(),
            label_values: labels.values.clone(),
        },
    )
}

/// Pass 2 and the batch: scores every tile with `model` and picks.
#[allow(clippy::too_many_arguments)]
fn score_round(
    cfg: &SelectParams,
    pool: &dyn Pool,
    model: &FittedModel,
    backend: &Backend,
    loc: &Joined,
    batch: usize,
    mut seconds: Timings,
    started: Instant,
) -> Result<Selection> {
    let gp = model.gp();
    let sign = model.sign();
    let available = loc.pool_size - loc.excluded.len();
    let pathwise = cfg.joint_sampler == JointSampler::Pathwise;
    let needs_shortlist = uses_shortlist(cfg.mode, cfg.acquisition, cfg.max_sim) && !pathwise;
    let noise = Gumbel::new(cfg.mode, cfg.temperature, cfg.power, cfg.seed, cfg.round);
    // Softrank draws its ranks first and keeps the candidates down to the deepest one.
    let ranks = noise
        .filter(|g| !g.per_candidate())
        .map(|g| g.ranks(available, batch));
    let mut keep = if needs_shortlist {
        crate::select::shortlist_size(cfg.shortlist, batch, available, cfg.acquisition)?
    } else if let Some(r) = &ranks {
        r.iter().copied().max().unwrap_or(0)
    } else {
        batch
    };
    let ctx = AcqContext {
        best: gp.y_best as f32,
        seed: cfg.seed,
        round: cfg.round,
    };
    let scorer = backend.prepare(gp)?;
    let mut passes = 0;
    let (kept, stages, chosen, joint) = if pathwise {
        let t = Instant::now();
        let (kept, stages, report) = pathwise_pool(
            cfg,
            pool,
            &scorer,
            &ctx,
            gp,
            &loc.excluded,
            batch,
            loc.pool_size,
            available,
        )?;
        seconds.score += t.elapsed().as_secs_f64();
        let chosen = kept.iter().enumerate().map(|(i, r)| (i, r.score)).collect();
        (kept, stages, chosen, Some(report))
    } else {
        loop {
            let t = Instant::now();
            let (kept, stages) = match noise.filter(Gumbel::per_candidate) {
                Some(g) => keyed_pool(
                    cfg,
                    pool,
                    &scorer,
                    &ctx,
                    &loc.excluded,
                    batch,
                    loc.pool_size,
                    g,
                )?,
                None => {
                    let (kept, stages) = score_pool(
                        cfg,
                        pool,
                        &scorer,
                        &ctx,
                        &loc.excluded,
                        keep,
                        needs_shortlist,
                        loc.pool_size,
                        Floor::new(keep),
                    )?;
                    (kept.into_sorted(), stages)
                }
            };
            seconds.score += t.elapsed().as_secs_f64();
            passes += 1;

            let t = Instant::now();
            if let Some(ranks) = &ranks {
                // Softrank's picks: the drawn ranks of the ranked candidates, in the draw's order.
                let chosen = ranks.iter().map(|&r| (r - 1, kept[r - 1].score)).collect();
                seconds.select += t.elapsed().as_secs_f64();
                break (kept, stages, chosen, None);
            }
            if !needs_shortlist {
                let chosen = kept.iter().enumerate().map(|(i, r)| (i, r.score)).collect();
                seconds.select += t.elapsed().as_secs_f64();
                break (kept, stages, chosen, None);
            }
            let short: Vec<Shortlisted> = kept
                .iter()
                .map(|r| Shortlisted {
                    index: r.index,
                    mean: r.item.mean,
                    var: r.item.var,
                })
                .collect();
            let mut feats = Features::empty(loc.kind);
            for r in &kept {
                feats.push_row_from(r.item.row.as_ref().expect("shortlist keeps rows"), 0);
            }
            let chosen = choose_batch(
                cfg.mode,
                gp,
                cfg.acquisition,
                &ctx,
                &short,
                &feats,
                &loc.other,
                batch,
                cfg.max_sim,
            )?;
            seconds.select += t.elapsed().as_secs_f64();
            let joint = chosen.joint.map(|r| JointReport { passes, ..r });
            match joint
                .as_ref()
                .and_then(|r| grown_shortlist(r, keep, available, cfg.shortlist))
            {
                Some(longer) => keep = longer,
                None => break (kept, stages, chosen.picks, joint),
            }
        }
    };
    let picks = chosen
        .iter()
        .enumerate()
        .map(|(rank, &(i, s))| {
            let r = &kept[i];
            Pick {
                rank: rank + 1,
                id: r.item.id.clone(),
                index: r.index,
                score: s,
                mean: sign * gp.mean_to_labels(f64::from(r.item.mean)),
                sd: gp.sd_to_labels(f64::from(r.item.var)),
            }
        })
        .collect();
    seconds.total = started.elapsed().as_secs_f64();
    let candidates_per_second = loc.pool_size as f64 / seconds.score.max(1e-9);
    Ok(Selection {
        picks,
        summary: Summary {
            pool: pool.name().to_path_buf(),
            features: loc.kind,
            pool_size: loc.pool_size,
            labeled: loc.train.len(),
            pending: loc.other.len(),
            candidates: available,
            batch,
            acquisition: cfg.acquisition,
            batch_mode: cfg.mode,
            temperature: (cfg.mode == BatchMode::Softmax).then_some(cfg.temperature),
            power: matches!(cfg.mode, BatchMode::Power | BatchMode::Softrank).then_some(cfg.power),
            shortlist: needs_shortlist.then_some(keep),
            joint,
            max_sim: cfg.max_sim,
            minimize: model.minimize(),
            seed: cfg.seed,
            backend: scorer.name(),
            backend_choice: backend.description.clone(),
            threads: rayon::current_num_threads(),
            fit: FitSummary::new(gp, model.labeled_ids()),
            stages,
            seconds,
            candidates_per_second,
        },
    })
}

/// What the top-k keeps of a candidate.
#[derive(Clone, Debug)]
struct Kept {
    id: String,
    mean: f32,
    var: f32,
    /// The features, when the batch policy needs them.
    row: Option<Features>,
}

/// Pass 2: scores every tile and keeps the best `keep` eligible candidates. The backend ranks
/// each tile itself ([`Scorer::best_into`]: on a GPU only the best of each workgroup come
/// back), and the candidates it returns go through one top-k. With `cfg.prune` the backend may
/// also drop candidates whose bound is below the running threshold ([`Floor`], carried from
/// tile to tile) before their variance ([`Scorer::best_pruned_into`]).
#[allow(clippy::too_many_arguments)]
fn score_pool(
    cfg: &SelectParams,
    pool: &dyn Pool,
    scorer: &dyn Scorer,
    ctx: &AcqContext,
    excluded: &[usize],
    keep: usize,
    keep_rows: bool,
    pool_size: usize,
    mut floor: Floor,
) -> Result<(TopK<Kept>, Stages)> {
    let mut top = TopK::new(keep);
    let mut stages = Stages::default();
    let mut best = Vec::new();
    stream_tiles(cfg, pool, pool_size, |tile| {
        let what = BestOf {
            acq: cfg.acquisition,
            ctx,
            start: tile.start,
            keep,
            skip: excluded,
            keys: None,
        };
        // Even `random` reports the model's mean and sd for what it picks.
        best.clear();
        // A backend that does not prune has done `best_into` and says so with `None`.
        let pruned = match cfg.prune {
            true => scorer.best_pruned_into(&tile.features, &what, &mut floor, &mut best)?,
            false => {
                scorer.best_into(&tile.features, &what, &mut best)?;
                None
            }
        };
        stages += pruned.unwrap_or_else(|| {
            let eligible = tile.len() - what.skipped_in(tile.len()).len();
            Stages::brute_force(eligible)
        });
        for s in &best {
            let g = tile.start + s.row;
            if !top.accepts(s.score, g) {
                continue;
            }
            let row = keep_rows.then(|| tile.features.select_rows(&[s.row]));
            top.push(
                s.score,
                g,
                Kept {
                    id: tile.ids[s.row].clone(),
                    mean: s.mean,
                    var: s.var,
                    row,
                },
            );
        }
        Ok(())
    })?;
    Ok((top, stages))
}

/// Pass 2 of `softmax` and `power`: every eligible candidate's posterior and score, and the
/// `batch` with the largest keys (score plus Gumbel noise, [`Gumbel::key`], keyed by the
/// global row), in key order; each keeps its acquisition score. The noise is added on the CPU
/// in `f64`, so every backend draws the same batch; every candidate gets a variance (brute
/// force).
#[allow(clippy::too_many_arguments)]
fn keyed_pool(
    cfg: &SelectParams,
    pool: &dyn Pool,
    scorer: &dyn Scorer,
    ctx: &AcqContext,
    excluded: &[usize],
    batch: usize,
    pool_size: usize,
    noise: Gumbel,
) -> Result<(Vec<Ranked<Kept>>, Stages)> {
    let mut top = KeyTop::new(batch);
    let mut stages = Stages::default();
    let mut keys = Vec::new();
    stream_scored(cfg, pool, scorer, ctx, pool_size, |tile, s| {
        let start = tile.start;
        keys.clear();
        keys.par_extend(
            s.scores
                .par_iter()
                .enumerate()
                .map(|(r, &sc)| noise.key(sc, (start + r) as u64)),
        );
        let lo = excluded.partition_point(|&g| g < start);
        let hi = excluded.partition_point(|&g| g < start + tile.len());
        let mut skip = excluded[lo..hi].iter().peekable();
        for (r, &key) in keys.iter().enumerate() {
            let g = start + r;
            if skip.next_if_eq(&&g).is_some() || !top.accepts(key, g) {
                continue;
            }
            let item = Kept {
                id: tile.ids[r].clone(),
                mean: s.mean[r],
                var: s.var[r],
                row: None,
            };
            top.push(
                key,
                g,
                Ranked {
                    score: s.scores[r],
                    index: g,
                    item,
                },
            );
        }
        stages += Stages::brute_force(tile.len() - (hi - lo));
        Ok(())
    })?;
    Ok((
        top.into_sorted().into_iter().map(|k| k.item).collect(),
        stages,
    ))
}

/// Pass 2 of `thompson` and `qpo` with the pathwise sampler: every eligible candidate's
/// posterior (the scorer's, for the mean and sd columns and qPO's ties) and its value under
/// each joint sample ([`PathwiseSamples`], on the CPU); the batch as [`ThompsonPicks`] or
/// [`QpoPicks`] choose it, keyed and tied by the global row. Each pick's score is its sample's
/// value (Thompson) or its probability of being the best (qPO).
#[allow(clippy::too_many_arguments)]
fn pathwise_pool(
    cfg: &SelectParams,
    pool: &dyn Pool,
    scorer: &dyn Scorer,
    ctx: &AcqContext,
    gp: &FittedGp,
    excluded: &[usize],
    batch: usize,
    pool_size: usize,
    available: usize,
) -> Result<(Vec<Ranked<Kept>>, Stages, JointReport)> {
    let mut picks = JointPicks::new(cfg.acquisition, batch);
    let samples = picks.samples();
    let draws = PathwiseSamples::new(gp, cfg.prior_features, samples, ctx)?;
    let mut stages = Stages::default();
    stream_scored(cfg, pool, scorer, ctx, pool_size, |tile, s| {
        let start = tile.start;
        let lo = excluded.partition_point(|&g| g < start);
        let hi = excluded.partition_point(|&g| g < start + tile.len());
        let mut skip = excluded[lo..hi].iter().peekable();
        draws.for_each_block(&tile.features, |first, values| {
            for (i, v) in values.chunks_exact(samples).enumerate() {
                let (r, g) = (first + i, start + first + i);
                if skip.next_if_eq(&&g).is_some() {
                    continue;
                }
                let item = || Kept {
                    id: tile.ids[r].clone(),
                    mean: s.mean[r],
                    var: s.var[r],
                    row: None,
                };
                picks.offer(v, || s.scores[r], g, item);
            }
            Ok(())
        })?;
        stages += Stages::brute_force(tile.len() - (hi - lo));
        Ok(())
    })?;
    let picks = picks.finish();
    let report = JointReport {
        shortlist: available,
        samples,
        tail_share: 0.0,
        jitter: 0.0,
        passes: 1,
        prior_features: Some(draws.features()),
    };
    Ok((picks, stages, report))
}

/// The posterior and acquisition score of each row of one tile (standardised units).
pub(crate) struct TileScores<'a> {
    /// Latent posterior mean.
    pub(crate) mean: &'a [f32],
    /// Latent posterior variance.
    pub(crate) var: &'a [f32],
    /// Acquisition score.
    pub(crate) scores: &'a [f32],
}

/// Scores every row of every tile of the pool with `cfg.acquisition` and hands each scored
/// tile to `visit` in pool order.
pub(crate) fn stream_scored(
    cfg: &SelectParams,
    pool: &dyn Pool,
    scorer: &dyn Scorer,
    ctx: &AcqContext,
    pool_size: usize,
    mut visit: impl FnMut(&Tile, TileScores<'_>) -> Result<()>,
) -> Result<()> {
    let acq = cfg.acquisition;
    let (mut mean, mut var, mut scores) = (Vec::new(), Vec::new(), Vec::new());
    stream_tiles(cfg, pool, pool_size, |tile| {
        let rows = tile.len();
        mean.resize(rows, 0.0);
        var.resize(rows, 0.0);
        scores.resize(rows, 0.0);
        scorer.posterior_into(&tile.features, &mut mean, &mut var)?;
        let start = tile.start;
        scores.par_iter_mut().enumerate().for_each(|(r, s)| {
            *s = score(acq, mean[r], var[r], (start + r) as u64, ctx);
        });
        visit(
            tile,
            TileScores {
                mean: &mean,
                var: &var,
                scores: &scores,
            },
        )
    })
}

/// Hands every tile of the pool to `visit` in pool order, reading the next tile on another
/// thread meanwhile.
pub(crate) fn stream_tiles(
    cfg: &SelectParams,
    pool: &dyn Pool,
    pool_size: usize,
    mut visit: impl FnMut(&Tile) -> Result<()>,
) -> Result<()> {
    let mut reader = pool.open()?;
    let kind = reader.kind();
    let progress = progress_bar(cfg.progress, Some(pool_size as u64), "scoring candidates");
    std::thread::scope(|scope| -> Result<()> {
        // Two tiles in flight: one being scored, one being read.
        let (full_tx, full_rx) = mpsc::sync_channel::<Result<Tile>>(1);
        let (empty_tx, empty_rx) = mpsc::channel::<Tile>();
        empty_tx.send(Tile::new(kind)).ok();
        empty_tx.send(Tile::new(kind)).ok();
        // Whole chunks per tile keep every chunk boundary at the same global row whatever the
        // tile size, so the scores do not depend on it.
        let tile_rows = cfg.tile_rows.next_multiple_of(CHUNK);
        scope.spawn(move || {
            while let Ok(mut tile) = empty_rx.recv() {
                match reader.read_tile(tile_rows, &mut tile) {
                    Ok(true) => {
                        if full_tx.send(Ok(tile)).is_err() {
                            return;
                        }
                    }
                    Ok(false) => return,
                    Err(e) => {
                        full_tx.send(Err(e)).ok();
                        return;
                    }
                }
            }
        });
        for tile in full_rx {
            let tile = tile?;
            visit(&tile)?;
            progress.inc(tile.len() as u64);
            if empty_tx.send(tile).is_err() {
                break;
            }
        }
        Ok(())
    })?;
    progress.finish_and_clear();
    Ok(())
}
