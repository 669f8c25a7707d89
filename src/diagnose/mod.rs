//! The diagnostic report: before a budget is spent, is active learning likely to beat random
//! on this pool with these labels, and why?
//!
//! Two passes over the pool, as `select` makes: pass 1 finds the labeled (and test) candidates
//! and draws a seeded sample; the model is fitted and cross-validated on the labels; pass 2
//! scores every tile through the engine's scoring path and, in the same pass, measures each
//! candidate's similarity to the nearest labeled candidate and to the nearest sample point.
//! Everything over the pool is kept as running statistics and histograms ([`stats`]); only the
//! batch and the sample are held. The sections ([`pool`], [`spread`], [`cv`], [`batch`],
//! [`objective`]) each carry their numbers and a one-line reading; [`verdict`] turns them into
//! a plain verdict with the reasons that drove it; [`render`] writes text and HTML.
//!
//! For several objectives, [`multi`] runs the report once per objective on its own labels and
//! adds a cross-objective section and an overall verdict ([`run_diagnose_objectives`]).

pub mod batch;
pub mod cv;
pub mod multi;
pub mod objective;
pub mod pass;
pub mod pool;
pub mod render;
pub mod rules;
pub mod similarity;
pub mod spread;
pub mod stats;
pub mod verdict;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use crate::acquisition::AcqContext;
use crate::backend::{Backend, GpuOptions};
use crate::data::{Features, IdList, Labels, Pool, Tile};
use crate::engine::{stream_scored, SelectParams};
use crate::error::{Error, Result};
use crate::gp::fit_with;
use crate::join::{join, Pass, Rule};
use crate::kernel::KernelKind;
use crate::rng::draw_u32;
use crate::select::TopK;
use crate::sim::Objective;

pub use cv::ModelSection;
pub use multi::{run_diagnose_objectives, MultiReport};
use pass::{Kept, PoolPass};
use similarity::References;
use stats::Histogram;

/// Settings of a report.
#[derive(Clone, Debug)]
pub struct DiagnoseConfig {
    /// Model, acquisition, batch, seed, tile size and backend, as for `select` (the batch is
    /// always top-k).
    pub select: SelectParams,
    /// Folds of the cross-validation (default 5).
    pub folds: usize,
    /// Pool candidates in the seeded sample for the nearest-neighbour statistics (default 256).
    pub nn_sample: usize,
    /// What the campaign is for.
    pub objective: Objective,
}

impl Default for DiagnoseConfig {
    /// UCB (β = 2), batch 1% of the pool, 5 folds, a sample of 256, find-best.
    fn default() -> Self {
        DiagnoseConfig {
            select: SelectParams {
                batch: crate::engine::BatchSize::Fraction(0.01),
                ..SelectParams::default()
            },
            folds: 5,
            nn_sample: 256,
            objective: Objective::FindBest,
        }
    }
}

/// The whole report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// Inputs and settings.
    pub setup: Setup,
    /// 1. The pool.
    pub pool: pool::PoolSection,
    /// 2. Spread of informativeness.
    pub spread: spread::SpreadSection,
    /// 3. The model.
    pub model: ModelSection,
    /// 4. The batch.
    pub batch: batch::BatchSection,
    /// 5. The objective (with a test set).
    pub objective: Option<objective::ObjectiveSection>,
    /// 6. The verdict.
    pub verdict: verdict::Verdict,
    /// Wall-clock seconds per phase.
    pub seconds: Seconds,
}

/// What was run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Setup {
    /// Pool file.
    pub pool: PathBuf,
    /// Features.
    pub features: crate::data::FeatureKind,
    /// Candidates in the pool (test candidates excluded).
    pub pool_size: usize,
    /// Labeled candidates found.
    pub labeled: usize,
    /// Test candidates.
    pub test: usize,
    /// Acquisition.
    pub acquisition: crate::Acquisition,
    /// Batch size.
    pub batch: usize,
    /// Lower labels are better.
    pub minimize: bool,
    /// Objective.
    pub objective: Objective,
    /// Seed.
    pub seed: u64,
    /// Backend that scored the pool.
    pub backend: String,
    /// Rayon threads.
    pub threads: usize,
}

/// Seconds per phase.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Seconds {
    /// Pass 1 (labels, ids, sample).
    pub locate: f64,
    /// Fit and cross-validation.
    pub model: f64,
    /// Pass 2 (scoring and similarities).
    pub score: f64,
    /// Everything.
    pub total: f64,
}

/// Runs the report on `pool` with its `labels`; `test` holds the ids of held-out candidates
/// in the pool that form the test set (needed by [`Objective::Accuracy`]; they are not part
/// of the pool, and none may be labeled).
///
/// # Errors
/// [`Error::InvalidParam`] naming the field for bad settings (`test` without a test set under
/// [`Objective::Accuracy`], a labeled test id), and as [`crate::run_select`].
pub fn run_diagnose(
    cfg: &DiagnoseConfig,
    pool: &dyn Pool,
    labels: &Labels,
    test: &IdList,
) -> Result<Report> {
    let started = Instant::now();
    let sc = &*cfg.select.check()?;
    if cfg.nn_sample == 0 {
        return Err(Error::param("nn_sample", "must be at least 1"));
    }
    if cfg.objective == Objective::Accuracy && test.ids.is_empty() {
        return Err(Error::param(
            "test",
            "the accuracy objective needs the held-out test candidates (ids in the pool)",
        ));
    }
    cv::check_folds(usize::MAX, cfg.folds)?;
    let test_set: HashSet<&str> = test.ids.iter().map(String::as_str).collect();
    if let Some(both) = labels.ids.iter().find(|id| test_set.contains(id.as_str())) {
        return Err(Error::param(
            "test",
            format!(
                "{}: id {both:?} is also labeled; the test set must be held out",
                test.source.display()
            ),
        ));
    }

    // Pass 1: labels, test rows, and a bottom-k sample by a seeded hash of the row.
    let s = cfg.nn_sample;
    let mut sample: Vec<(u32, usize, Features)> = Vec::new();
    let mut cut = u32::MAX;
    let mut on_tile = |tile: &Tile| {
        for (r, id) in tile.ids.iter().enumerate() {
            let g = tile.start + r;
            let key = draw_u32(sc.seed, 0xd1a6, g as u64, 11);
            if key > cut || test_set.contains(id.as_str()) {
                continue;
            }
            sample.push((key, g, tile.features.select_rows(&[r])));
            if sample.len() >= 2 * s {
                sample.sort_by_key(|e| (e.0, e.1));
                sample.truncate(s);
                cut = sample[s - 1].0;
            }
        }
    };
    let pass = Pass {
        rule: Rule::All,
        tile_rows: sc.tile_rows,
        progress: sc.progress,
    };
    let loc = join(pool, labels, test, pass, &mut on_tile)?;
    sample.sort_by_key(|e| (e.0, e.1));
    sample.truncate(s);
    sample.sort_by_key(|e| e.1);
    let sample_rows: Vec<usize> = sample.iter().map(|e| e.1).collect();
    let mut sample_feats = Features::empty(loc.kind);
    for (_, _, f) in &sample {
        sample_feats.push_row_from(f, 0);
    }
    drop(sample);
    let locate_s = started.elapsed().as_secs_f64();

    let n = loc.train.len();
    if n < 2 {
        return Err(Error::TooFewLabels { n });
    }
    cv::check_folds(n, cfg.folds)?;
    let n_test = loc.other.len();
    let pool_size = loc.pool_size - n_test;
    let eligible = pool_size - n;
    let batch_n = sc.batch.resolve(pool_size);
    if batch_n > eligible {
        return Err(Error::BatchTooLarge {
            batch: batch_n,
            available: eligible,
        });
    }
    let params = sc.model.check(loc.kind)?;
    let sign = if sc.minimize { -1.0 } else { 1.0 };
    let y: Vec<f64> = loc.y.iter().map(|v| sign * v).collect();

    // The model: fit on everything, cross-validate it and the alternatives.
    let backend = Backend::new(sc.backend, &GpuOptions::default())?;
    let t = Instant::now();
    let gp = fit_with(&params, &loc.train, &y, backend.gram().as_ref())?;
    let mut model = model_section(cfg, &params, &gp, &loc.train, &y)?;
    // The plotted pairs in the labels' own units (not negated for --minimize).
    for p in &mut model.cv.pairs {
        *p = (sign * p.0, sign * p.1);
    }
    let model_s = t.elapsed().as_secs_f64();

    // Pass 2: scores and similarities.
    let t = Instant::now();
    let scorer = backend.prepare(&gp)?;
    let ctx = AcqContext {
        best: gp.y_best as f32,
        seed: sc.seed,
        round: sc.round,
    };
    // The references are encoded like labeled rows; bound their code as the fit bounds it.
    crate::backend::encode::check_count_code(&sample_feats)?;
    crate::backend::encode::check_count_code(&loc.other)?;
    let labeled_refs = References::new(&loc.train, gp.kernel);
    let sample_refs = References::new(&sample_feats, gp.kernel);
    let test_refs = References::new(&loc.other, gp.kernel);
    let mut pass = PoolPass {
        scores: Histogram::new(),
        means: Histogram::new(),
        sds: Histogram::new(),
        coverage: Histogram::with_range(0.0, 1.0),
        density: Histogram::with_range(0.0, 1.0),
        sample_nn: vec![f32::NEG_INFINITY; sample_refs.len()],
        test_nn: vec![f32::NEG_INFINITY; test_refs.len()],
        top: TopK::new(batch_n),
    };
    let excluded = &loc.excluded;
    let (mut sc_, mut mn, mut sd, mut cov, mut den) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    stream_scored(sc, pool, &scorer, &ctx, loc.pool_size, |tile, s| {
        let (start, rows) = (tile.start, tile.len());
        let is_test: Vec<bool> = if test_set.is_empty() {
            vec![false; rows]
        } else {
            tile.ids
                .iter()
                .map(|id| test_set.contains(id.as_str()))
                .collect()
        };
        let lo = excluded.partition_point(|&g| g < start);
        let hi = excluded.partition_point(|&g| g < start + rows);
        let skip = &excluded[lo..hi];
        let near_lab = labeled_refs.nearest(&tile.features, false, |_| true, |_| None);
        let near_smp = sample_refs.nearest(
            &tile.features,
            true,
            |r| is_test[r],
            |r| sample_rows.binary_search(&(start + r)).ok(),
        );
        for (b, v) in pass.sample_nn.iter_mut().zip(&near_smp.ref_best) {
            *b = b.max(*v);
        }
        if !test_refs.is_empty() {
            let near_test = test_refs.nearest(&tile.features, true, |r| is_test[r], |_| None);
            for (b, v) in pass.test_nn.iter_mut().zip(&near_test.ref_best) {
                *b = b.max(*v);
            }
        }
        sc_.clear();
        mn.clear();
        sd.clear();
        cov.clear();
        den.clear();
        for r in 0..rows {
            let g = start + r;
            if skip.binary_search(&g).is_ok() {
                continue;
            }
            let (c, d) = (near_lab.row_best[r], near_smp.row_best[r]);
            sc_.push(s.scores[r]);
            mn.push(s.mean[r]);
            sd.push(s.var[r].max(0.0).sqrt());
            cov.push(c);
            den.push(d);
            if pass.top.accepts(s.scores[r], g) {
                pass.top.push(
                    s.scores[r],
                    g,
                    Kept {
                        id: tile.ids[r].clone(),
                        mean: s.mean[r],
                        var: s.var[r],
                        coverage: c,
                        density: d,
                    },
                );
            }
        }
        pass.scores.add(&sc_);
        pass.means.add(&mn);
        pass.sds.add(&sd);
        pass.coverage.add(&cov);
        pass.density.add(&den);
        Ok(())
    })?;
    let score_s = t.elapsed().as_secs_f64();

    let kept = std::mem::replace(&mut pass.top, TopK::new(0)).into_sorted();
    let similarity = match gp.kernel.kind {
        KernelKind::Rbf | KernelKind::Matern52 => format!(
            "{} kernel at the fitted lengthscale {:.4} (near-duplicates: kernel ≥ {})",
            gp.kernel.kind.name(),
            gp.kernel.lengthscale,
            pool::NEAR_DUPLICATE
        ),
        k => format!("{} similarity", k.name()),
    };
    let pool_section = pool::section(&pass, pool_size, n, sample_rows.len(), similarity);
    let spread = spread::section(&pass, &kept, sc.acquisition, &gp, eligible);
    let batch = batch::section(&pass, &kept, &pool_section, &gp, sign);
    let objective = (n_test > 0).then(|| objective::section(&pass, &pool_section, cfg.objective));
    let verdict = verdict::decide(
        &spread,
        &model,
        &batch,
        objective.as_ref(),
        cfg.objective,
        sc.acquisition,
        n,
    );
    Ok(Report {
        setup: Setup {
            pool: pool.name().to_path_buf(),
            features: loc.kind,
            pool_size,
            labeled: n,
            test: n_test,
            acquisition: sc.acquisition,
            batch: batch_n,
            minimize: sc.minimize,
            objective: cfg.objective,
            seed: sc.seed,
            backend: backend.description.clone(),
            threads: rayon::current_num_threads(),
        },
        pool: pool_section,
        spread,
        model,
        batch,
        objective,
        verdict,
        seconds: Seconds {
            locate: locate_s,
            model: model_s,
            score: score_s,
            total: started.elapsed().as_secs_f64(),
        },
    })
}

/// Section 3: fit summary, cross-validation, kernel comparison.
fn model_section(
    cfg: &DiagnoseConfig,
    params: &crate::gp::GpValidParams,
    gp: &crate::gp::FittedGp,
    x: &Features,
    y: &[f64],
) -> Result<ModelSection> {
    let fit = cv::model_fit(params, gp, x, y);
    let seed = cfg.select.seed;
    let own_features = match x.kind() {
        crate::data::FeatureKind::Counts { .. } => "counts",
        crate::data::FeatureKind::Bits { .. } => "bits",
        crate::data::FeatureKind::Dense { .. } => "dense",
    };
    let main = cv::cross_validate(params, x, y, cfg.folds, seed, own_features)?;
    let mut kernels = Vec::new();
    for (p, feats, name) in cv::alternatives(&cfg.select.model, x)? {
        if p.params().kernel == params.params().kernel && feats.kind() == x.kind() {
            kernels.push(main.clone());
        } else {
            kernels.push(cv::cross_validate(&p, &feats, y, cfg.folds, seed, &name)?);
        }
    }
    let recommended = verdict::recommend_kernel(&main, &kernels);
    let r2_gap = fit.train_r2 - main.r2;
    let under_fitting = fit.train_r2 < rules::MIN_TRAIN_R2;
    let reading = verdict::model_reading(&main, &fit, r2_gap, recommended, y.len());
    Ok(ModelSection {
        fit,
        cv: main,
        r2_gap,
        over_fitting: r2_gap > rules::MAX_R2_GAP,
        under_fitting,
        kernels,
        recommended_kernel: recommended,
        reading,
    })
}
