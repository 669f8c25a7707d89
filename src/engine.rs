//! One round: read the labels, find them in the pool (pass 1), fit the GP, score every tile
//! (pass 2, streaming, bounded top-k), choose the batch.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

use rayon::prelude::*;

use crate::acquisition::{score, AcqContext, Acquisition};
use crate::backend::{Backend, BackendChoice, BestOf, GpuOptions, Scorer, CHUNK};
use crate::data::ids::{id_hash, RepeatedIds};
use crate::data::{
    read_id_list, read_labels, FeatureKind, Features, LabelSpec, Labels, PoolSpec, Tile,
};
use crate::error::{Error, Result};
use crate::gp::{fit_with, FitInfo, FittedGp, ModelSpec};
use crate::model::{FittedModel, ModelOrigin};
use crate::select::{choose_batch, BatchMode, Shortlisted, TopK};

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

/// Everything `select` needs, validated by the caller's parsing.
#[derive(Clone, Debug)]
pub struct SelectConfig {
    /// The pool.
    pub pool: PoolSpec,
    /// The labeled candidates.
    pub labels: LabelSpec,
    /// Ids already sent to the lab (never picked; the diverse mode conditions on them).
    pub pending: Option<PathBuf>,
    /// Kernel and fixed hyperparameters (the rest are fitted).
    pub model: ModelSpec,
    /// The acquisition function.
    pub acquisition: Acquisition,
    /// Lower labels are better.
    pub minimize: bool,
    /// How many to pick.
    pub batch: BatchSize,
    /// Top-k or diverse.
    pub mode: BatchMode,
    /// Shortlist size for diverse batches and the similarity cap; default `max(5·batch, 500)`.
    pub shortlist: Option<usize>,
    /// Largest kernel similarity allowed between two picks.
    pub max_sim: Option<f64>,
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
}

impl SelectConfig {
    /// Defaults for everything but the inputs: UCB (β = 2), batch 100, top-k, seed 0.
    pub fn new(pool: PoolSpec, labels: LabelSpec) -> Self {
        SelectConfig {
            pool,
            labels,
            pending: None,
            model: ModelSpec::default(),
            acquisition: Acquisition::Ucb { beta: 2.0 },
            minimize: false,
            batch: BatchSize::Count(100),
            mode: BatchMode::TopK,
            shortlist: None,
            max_sim: None,
            seed: 0,
            round: 0,
            tile_rows: 65_536,
            progress: false,
            backend: BackendChoice::Auto,
        }
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
    /// Shortlist size used (diverse or similarity cap).
    pub shortlist: Option<usize>,
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

/// What pass 1 finds.
pub(crate) struct Located {
    pub(crate) kind: FeatureKind,
    pub(crate) pool_size: usize,
    pub(crate) train: Features,
    pub(crate) y: Vec<f64>,
    pub(crate) pending: Features,
    /// Sorted global rows that are labeled or pending.
    pub(crate) excluded: Vec<usize>,
}

/// Runs one selection round end to end.
pub fn run_select(cfg: &SelectConfig) -> Result<Selection> {
    let started = Instant::now();
    check_settings(cfg)?;
    let labels = read_labels(&cfg.labels)?;
    run_select_labeled(cfg, &labels, &read_pending(cfg)?, started)
}

/// The ids of `cfg.pending`, none without it.
fn read_pending(cfg: &SelectConfig) -> Result<Vec<String>> {
    match &cfg.pending {
        Some(p) => read_id_list(p),
        None => Ok(Vec::new()),
    }
}

/// [`run_select`] with the labels and pending ids given instead of read from `cfg.labels` and
/// `cfg.pending` (the Python binding passes its arrays this way; `labels.lines` name the
/// entries in messages).
pub fn run_select_with(
    cfg: &SelectConfig,
    labels: &Labels,
    pending_ids: &[String],
) -> Result<Selection> {
    let started = Instant::now();
    check_settings(cfg)?;
    run_select_labeled(cfg, labels, pending_ids, started)
}

fn check_settings(cfg: &SelectConfig) -> Result<()> {
    cfg.acquisition.check()?;
    if let Some(t) = cfg.max_sim {
        if !(0.0..=1.0).contains(&t) {
            return Err(Error::param(
                "--max-sim",
                format!("must be between 0 and 1, got {t}"),
            ));
        }
    }
    if cfg.tile_rows == 0 {
        return Err(Error::param("--tile", "must be at least 1"));
    }
    if cfg.shortlist.is_some() && cfg.mode != BatchMode::Diverse && cfg.max_sim.is_none() {
        return Err(Error::param(
            "--shortlist",
            "it applies only with --batch-mode diverse or --max-sim",
        ));
    }
    Ok(())
}

fn run_select_labeled(
    cfg: &SelectConfig,
    labels: &Labels,
    pending_ids: &[String],
    started: Instant,
) -> Result<Selection> {
    let mut seconds = Timings::default();
    let loc = locate(cfg, &labels.ids, &labels.values, pending_ids, &mut |_| {})
        .map_err(|e| labels.name_lines(e))?;
    seconds.locate = started.elapsed().as_secs_f64();
    if loc.train.len() < 2 {
        return Err(Error::TooFewLabels { n: loc.train.len() });
    }
    let batch = check_batch(cfg, &loc)?;
    // Started before the fit: a sparse fit's big product runs on the backend too.
    let backend = Backend::new(cfg.backend, &GpuOptions::default())?;
    let t = Instant::now();
    let model = fit_located(cfg, &loc, labels, &backend, None)?;
    seconds.fit = t.elapsed().as_secs_f64();
    score_round(cfg, &model, &backend, &loc, batch, seconds, started)
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

/// Fits the model of a round without scoring the pool: reads the labels, finds them in the
/// pool, fits. Uses `cfg.pool`, `labels`, `model`, `minimize`, `seed`, `tile_rows`, `progress`
/// and `backend` (a sparse fit's product runs there); [`run_select_model`] scores with the
/// result as [`run_select`] would have.
///
/// # Errors
/// As [`run_select`] for reading, locating and fitting.
pub fn run_fit(cfg: &SelectConfig) -> Result<Fit> {
    let started = Instant::now();
    check_settings(cfg)?;
    let labels = read_labels(&cfg.labels)?;
    let mut seconds = Timings::default();
    let loc = locate(cfg, &labels.ids, &labels.values, &[], &mut |_| {})?;
    seconds.locate = started.elapsed().as_secs_f64();
    let provenance = cfg.pool.provenance()?;
    let backend = Backend::new(cfg.backend, &GpuOptions::default())?;
    let t = Instant::now();
    let model = fit_located(cfg, &loc, &labels, &backend, provenance.clone())?;
    seconds.fit = t.elapsed().as_secs_f64();
    seconds.total = started.elapsed().as_secs_f64();
    Ok(Fit {
        summary: FitRunSummary {
            pool: cfg.pool.path.clone(),
            features: loc.kind,
            provenance,
            pool_size: loc.pool_size,
            labeled: loc.train.len(),
            minimize: cfg.minimize,
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
/// [`run_select`] does. `cfg.model` and `cfg.minimize` are not used: the model's own kernel,
/// hyperparameters and direction are. With `check_labels`, `cfg.labels` is read and must be
/// the model's; without, it is not read. `cfg.pending` is read as by [`run_select`].
///
/// # Errors
/// [`Error::FeatureMismatch`] when the pool's features are not the model's,
/// [`Error::LabelsMismatch`] when `labels` are not the model's, and as [`run_select`].
pub fn run_select_model(
    cfg: &SelectConfig,
    model: &FittedModel,
    check_labels: bool,
) -> Result<Selection> {
    let started = Instant::now();
    check_settings(cfg)?;
    if check_labels {
        let l = read_labels(&cfg.labels)?;
        model.check_labels(&cfg.labels.path, &l.ids, &l.values)?;
    }
    let pending_ids = read_pending(cfg)?;
    let mut seconds = Timings::default();
    let loc = locate_with(
        cfg,
        model.labeled_ids(),
        model.label_values(),
        &pending_ids,
        Join::Present,
        &mut |_| {},
    )?;
    seconds.locate = started.elapsed().as_secs_f64();
    model.check_features(loc.kind, cfg.pool.provenance()?.as_deref(), &cfg.pool.path)?;
    let batch = check_batch(cfg, &loc)?;
    let backend = Backend::new(cfg.backend, &GpuOptions::default())?;
    score_round(cfg, model, &backend, &loc, batch, seconds, started)
}

/// The batch size for this pool, if that many candidates are neither labeled nor pending.
fn check_batch(cfg: &SelectConfig, loc: &Located) -> Result<usize> {
    let available = loc.pool_size - loc.excluded.len();
    let batch = cfg.batch.resolve(loc.pool_size);
    if batch > available {
        return Err(Error::BatchTooLarge { batch, available });
    }
    Ok(batch)
}

/// Fits the GP to the located labels on the maximisation scale.
fn fit_located(
    cfg: &SelectConfig,
    loc: &Located,
    labels: &Labels,
    backend: &Backend,
    provenance: Option<String>,
) -> Result<FittedModel> {
    if loc.train.len() < 2 {
        return Err(Error::TooFewLabels { n: loc.train.len() });
    }
    let params = cfg.model.check(loc.kind)?.with_seed(cfg.seed);
    let sign = if cfg.minimize { -1.0 } else { 1.0 };
    let y: Vec<f64> = loc.y.iter().map(|v| sign * v).collect();
    let gp = fit_with(&params, &loc.train, &y, backend.gram().as_ref())?;
    FittedModel::new(
        gp,
        ModelOrigin {
            provenance,
            minimize: cfg.minimize,
            labeled_ids: labels.ids.clone(),
            label_values: labels.values.clone(),
        },
    )
}

/// Pass 2 and the batch: scores every tile with `model` and picks.
fn score_round(
    cfg: &SelectConfig,
    model: &FittedModel,
    backend: &Backend,
    loc: &Located,
    batch: usize,
    mut seconds: Timings,
    started: Instant,
) -> Result<Selection> {
    let gp = model.gp();
    let sign = model.sign();
    let available = loc.pool_size - loc.excluded.len();
    let needs_shortlist = cfg.mode == BatchMode::Diverse || cfg.max_sim.is_some();
    let keep = if needs_shortlist {
        crate::select::shortlist_size(cfg.shortlist, batch, available)?
    } else {
        batch
    };
    let ctx = AcqContext {
        best: gp.y_best as f32,
        seed: cfg.seed,
        round: cfg.round,
    };
    let t = Instant::now();
    let scorer = backend.prepare(gp)?;
    let kept = score_pool(
        cfg,
        &scorer,
        &ctx,
        &loc.excluded,
        keep,
        needs_shortlist,
        loc.pool_size,
    )?;
    seconds.score = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let kept = kept.into_sorted();
    let chosen: Vec<(usize, f32)> = if needs_shortlist {
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
        choose_batch(
            cfg.mode,
            gp,
            cfg.acquisition,
            &ctx,
            &short,
            &feats,
            &loc.pending,
            batch,
            cfg.max_sim,
        )?
    } else {
        kept.iter().enumerate().map(|(i, r)| (i, r.score)).collect()
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
    seconds.select = t.elapsed().as_secs_f64();
    seconds.total = started.elapsed().as_secs_f64();
    let candidates_per_second = loc.pool_size as f64 / seconds.score.max(1e-9);
    Ok(Selection {
        picks,
        summary: Summary {
            pool: cfg.pool.path.clone(),
            features: loc.kind,
            pool_size: loc.pool_size,
            labeled: loc.train.len(),
            pending: loc.pending.len(),
            candidates: available,
            batch,
            acquisition: cfg.acquisition,
            batch_mode: cfg.mode,
            shortlist: needs_shortlist.then_some(keep),
            max_sim: cfg.max_sim,
            minimize: model.minimize(),
            seed: cfg.seed,
            backend: scorer.name(),
            backend_choice: backend.description.clone(),
            threads: rayon::current_num_threads(),
            fit: FitSummary::new(gp, model.labeled_ids()),
            seconds,
            candidates_per_second,
        },
    })
}

/// Pass 1: finds the labeled and pending candidates in the pool, checks ids, counts rows;
/// `on_tile` sees every tile read (the diagnostic report draws its sample there).
pub(crate) fn locate(
    cfg: &SelectConfig,
    ids: &[String],
    values: &[f64],
    pending_ids: &[String],
    on_tile: &mut dyn FnMut(&Tile),
) -> Result<Located> {
    locate_with(cfg, ids, values, pending_ids, Join::All, on_tile)
}

/// Whether every labeled id must be in the pool.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Join {
    /// A labeled id the pool lacks is an error (the labels were measured on this pool).
    All,
    /// Labeled ids the pool lacks are left out (a saved model scoring a shard or another
    /// library); `Located::train` and `y` hold those found.
    Present,
}

/// [`locate`] with the rule for labeled ids the pool lacks.
pub(crate) fn locate_with(
    cfg: &SelectConfig,
    ids: &[String],
    values: &[f64],
    pending_ids: &[String],
    join: Join,
    on_tile: &mut dyn FnMut(&Tile),
) -> Result<Located> {
    let label_of: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let pending_of: HashMap<&str, usize> = pending_ids
        .iter()
        .enumerate()
        .filter(|(_, s)| !label_of.contains_key(s.as_str()))
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let mut train_rows: Vec<Option<(usize, Features)>> = vec![None; ids.len()];
    let mut pending_rows: Vec<Option<(usize, Features)>> = vec![None; pending_ids.len()];
    let mut reader = cfg.pool.open()?;
    let kind = reader.kind();
    let progress = progress_bar(
        cfg.progress,
        reader.len_hint().map(|n| n as u64),
        "reading candidates",
    );
    let mut tile = Tile::new(kind);
    let mut hashes: Vec<u64> = Vec::new();
    // Row indices are unique by construction; only ids from a file can repeat.
    let check_dups = !cfg.pool.ids_are_row_indices()?;
    let mut pool_size = 0;
    while reader.read_tile(cfg.tile_rows, &mut tile)? {
        for (r, id) in tile.ids.iter().enumerate() {
            let global = tile.start + r;
            if check_dups {
                hashes.push(id_hash(id));
            }
            let slot = if let Some(&l) = label_of.get(id.as_str()) {
                &mut train_rows[l]
            } else if let Some(&p) = pending_of.get(id.as_str()) {
                &mut pending_rows[p]
            } else {
                continue;
            };
            if let Some((first, _)) = slot {
                return Err(Error::DuplicateId {
                    path: cfg.pool.path.clone(),
                    id: id.clone(),
                    where_: format!("rows {first} and {global}"),
                });
            }
            *slot = Some((global, tile.features.select_rows(&[r])));
        }
        on_tile(&tile);
        pool_size = tile.start + tile.len();
        progress.inc(tile.len() as u64);
    }
    progress.finish_and_clear();
    if pool_size == 0 {
        return Err(Error::EmptyPool {
            path: cfg.pool.path.clone(),
        });
    }
    if check_dups {
        find_duplicate_ids(cfg, hashes)?;
    }
    let missing: Vec<String> = ids
        .iter()
        .zip(&train_rows)
        .filter(|(_, r)| r.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    if join == Join::All && !missing.is_empty() {
        return Err(Error::UnknownIds {
            path: cfg.labels.path.clone(),
            count: missing.len(),
            examples: missing.into_iter().take(5).collect(),
        });
    }
    let pending_missing: Vec<String> = pending_ids
        .iter()
        .enumerate()
        .filter(|(i, s)| pending_of.contains_key(s.as_str()) && pending_rows[*i].is_none())
        .map(|(_, s)| s.clone())
        .collect();
    if !pending_missing.is_empty() {
        return Err(Error::UnknownIds {
            path: cfg.pending.clone().unwrap_or_default(),
            count: pending_missing.len(),
            examples: pending_missing.into_iter().take(5).collect(),
        });
    }
    let mut train = Features::empty(kind);
    let mut pending = Features::empty(kind);
    let mut excluded = Vec::with_capacity(ids.len() + pending_of.len());
    let mut y = Vec::with_capacity(ids.len());
    for (l, slot) in train_rows.into_iter().enumerate() {
        if let Some((global, row)) = slot {
            train.push_row_from(&row, 0);
            y.push(values[l]);
            excluded.push(global);
        }
    }
    for (global, row) in pending_rows.into_iter().flatten() {
        pending.push_row_from(&row, 0);
        excluded.push(global);
    }
    excluded.sort_unstable();
    Ok(Located {
        kind,
        pool_size,
        train,
        y,
        pending,
        excluded,
    })
}

/// Detects repeated pool ids with 8 bytes per candidate (sorted 64-bit hashes); a repeated hash
/// is confirmed against the real ids with one more pass, so a hash collision is never reported
/// as a duplicate.
fn find_duplicate_ids(cfg: &SelectConfig, hashes: Vec<u64>) -> Result<()> {
    let Some(mut repeated) = RepeatedIds::from_hashes(hashes) else {
        return Ok(());
    };
    let mut reader = cfg.pool.open()?;
    let mut tile = Tile::new(reader.kind());
    while reader.read_tile(cfg.tile_rows, &mut tile)? {
        for (r, id) in tile.ids.iter().enumerate() {
            if let Some(first) = repeated.earlier(id, tile.start + r) {
                return Err(Error::DuplicateId {
                    path: cfg.pool.path.clone(),
                    id: id.clone(),
                    where_: format!("rows {first} and {}", tile.start + r),
                });
            }
        }
    }
    Ok(())
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
/// back), and the candidates it returns go through one top-k.
fn score_pool(
    cfg: &SelectConfig,
    scorer: &dyn Scorer,
    ctx: &AcqContext,
    excluded: &[usize],
    keep: usize,
    keep_rows: bool,
    pool_size: usize,
) -> Result<TopK<Kept>> {
    let mut top = TopK::new(keep);
    let mut best = Vec::new();
    stream_tiles(cfg, pool_size, |tile| {
        let what = BestOf {
            acq: cfg.acquisition,
            ctx,
            start: tile.start,
            keep,
            skip: excluded,
        };
        // Even `random` reports the model's mean and sd for what it picks.
        best.clear();
        scorer.best_into(&tile.features, &what, &mut best)?;
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
    Ok(top)
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
    cfg: &SelectConfig,
    scorer: &dyn Scorer,
    ctx: &AcqContext,
    pool_size: usize,
    mut visit: impl FnMut(&Tile, TileScores<'_>) -> Result<()>,
) -> Result<()> {
    let acq = cfg.acquisition;
    let (mut mean, mut var, mut scores) = (Vec::new(), Vec::new(), Vec::new());
    stream_tiles(cfg, pool_size, |tile| {
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
fn stream_tiles(
    cfg: &SelectConfig,
    pool_size: usize,
    mut visit: impl FnMut(&Tile) -> Result<()>,
) -> Result<()> {
    let mut reader = cfg.pool.open()?;
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

/// A progress bar on stderr for `what` over `len` items (a counter when the length is
/// unknown), drawn only when stderr is a terminal and `show` is set. `what` names the items,
/// e.g. "scoring … candidates".
pub fn progress_bar(show: bool, len: Option<u64>, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !show || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(n) => (
            indicatif::ProgressBar::new(n),
            format!(
                "{{spinner}} {what}: {{pos}}/{{len}} [{{elapsed_precise}}] {{per_sec}} eta {{eta}}"
            ),
        ),
        None => (
            indicatif::ProgressBar::no_length(),
            format!("{{spinner}} {what}: {{pos}} [{{elapsed_precise}}] {{per_sec}}"),
        ),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}
