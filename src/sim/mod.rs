//! Retrospective simulation: does active learning beat random on this pool?
//!
//! On a fully labeled pool, each replicate draws one random initial set that every strategy
//! starts from (a paired design); then each round fits the GP, scores the unlabeled pool, picks
//! a batch and reveals its labels. `random` always runs as the baseline. Per round the measures
//! of [`metrics`] are recorded; at the end each strategy is compared with random on the
//! objective's final measure and on the area under its curve ([`verdict`]).
//!
//! Ties between candidates (common: far from every label, many candidates have exactly the
//! prior variance) are broken by a seeded permutation drawn per replicate, not by row order:
//! published pools are often sorted by value, and "lowest row first" would then leak the
//! labels into the picks.

pub mod metrics;
pub mod pareto;
pub mod synth;
pub mod verdict;

use std::time::Instant;

use crate::acquisition::{score, AcqContext, Acquisition};
use crate::backend::{Backend, BackendChoice, BestOf, GpuOptions, Scorer, Stages};
use crate::data::{Features, IdList, Labels, Pool, Tile};
use crate::engine::BatchSize;
use crate::error::{Error, Result};
use crate::gp::{fit_with, FittedGp, GpValidParams, Inducing, ModelSpec};
use crate::join::{join, Pass, Rule};
use crate::rng::{draw_u32, seeded_order};
use crate::select::pathwise::{self, JointPicks, JointSampler, PathwiseSamples};
use crate::select::stochastic::{self, Gumbel, KeyTop};
use crate::select::{
    choose_batch, grown_shortlist, shortlist_size, uses_shortlist, BatchMode, Floor, JointReport,
    Ranked, Shortlisted, TopK,
};
use metrics::{k_best, rmse, spearman, TopTruth};
use verdict::{compare, Comparison};

/// What "better than random" means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// Find the best candidates: top-k recall.
    FindBest,
    /// Learn an accurate model: RMSE on a held-out test split (lower is better).
    Accuracy,
}

impl crate::names::Named for Objective {
    const WHAT: &'static str = "objective";
    const TABLE: &'static [(Self, &'static str, &'static str)] = &[
        (
            Objective::FindBest,
            "find-best",
            "Find the best candidates (top-k recall)",
        ),
        (
            Objective::Accuracy,
            "accuracy",
            "Learn an accurate model (RMSE on a held-out test split)",
        ),
    ];
}
crate::names::named!(Objective);

/// Simulation settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Strategies besides `random` (which always runs).
    pub strategies: Vec<Acquisition>,
    /// Initial random labels (count or fraction of the pool).
    pub init: BatchSize,
    /// Batch per round.
    pub batch: BatchSize,
    /// Rounds after the initial batch.
    pub rounds: usize,
    /// Size of the true top set for recall.
    pub topk: BatchSize,
    /// Replicates.
    pub reps: usize,
    /// Seed of everything (initial sets, test split, draws, bootstrap).
    pub seed: u64,
    /// Batch mode.
    pub mode: BatchMode,
    /// Temperature `T` of the `softmax` mode (`p ∝ exp(score / T)`); default 0.1.
    pub temperature: f32,
    /// Exponent `β` of the `power` (`p ∝ score^β`) and `softrank` (`p ∝ rank^−β`) modes;
    /// default 1.
    pub power: f32,
    /// How `thompson` and `qpo` draw joint samples: over a shortlist (default) or over the
    /// whole pool by pathwise conditioning ([`crate::select::pathwise`]).
    pub joint_sampler: JointSampler,
    /// Random features of the pathwise sampler's prior draw; default 1,024.
    pub prior_features: usize,
    /// Objective.
    pub objective: Objective,
    /// Test fraction for `accuracy`.
    pub test: f64,
    /// Rows (of the labeled pool) that form the test set for `accuracy`, instead of a seeded
    /// random split of `test`.
    pub test_rows: Option<Vec<usize>>,
    /// Kernel and fixed hyperparameters (the rest are fitted).
    pub model: ModelSpec,
    /// Also run every strategy but `random` with a sparse GP on each of these numbers of
    /// inducing points, on the same replicates: extra strategies named `NAME@mM`.
    pub compare_inducing: Vec<usize>,
    /// Refit the hyperparameters every round (else fit them in round 0 and hold them).
    pub refit: bool,
    /// Lower values are better.
    pub minimize: bool,
    /// Where to score.
    pub backend: BackendChoice,
    /// Show a progress bar over replicates, strategies and rounds on a terminal.
    pub progress: bool,
    /// Pick each batch by the pruned search where the backend has one (the same picks; only
    /// candidates that can enter the batch get a variance). `false`: every candidate's.
    pub prune: bool,
}

impl SimConfig {
    /// The reference protocol of the data README: greedy and UCB (β = 2), init 1%, five
    /// rounds of 1%, top-1%, five replicates, top-k batches, refit every round.
    pub fn new() -> Self {
        SimConfig {
            strategies: vec![Acquisition::Greedy, Acquisition::Ucb { beta: 2.0 }],
            init: BatchSize::Fraction(0.01),
            batch: BatchSize::Fraction(0.01),
            rounds: 5,
            topk: BatchSize::Fraction(0.01),
            reps: 5,
            seed: 0,
            mode: BatchMode::TopK,
            temperature: stochastic::DEFAULT_TEMPERATURE,
            power: stochastic::DEFAULT_POWER,
            joint_sampler: JointSampler::Shortlist,
            prior_features: pathwise::DEFAULT_FEATURES,
            objective: Objective::FindBest,
            test: 0.2,
            test_rows: None,
            model: ModelSpec::default(),
            compare_inducing: Vec::new(),
            refit: true,
            minimize: false,
            backend: BackendChoice::Auto,
            progress: false,
            prune: true,
        }
    }

    /// Refuses settings that would otherwise be ignored or repeated silently: no rounds, no
    /// replicates, a strategy or a number of inducing points listed twice; and a `temperature`
    /// or `power` that is not a finite number above 0, or the `power` mode with a strategy
    /// whose scores can be negative. [`simulate`] calls it; call it before loading a pool to
    /// fail early.
    pub fn check_settings(&self) -> Result<()> {
        for a in std::iter::once(&Acquisition::Random).chain(&self.strategies) {
            stochastic::check(self.mode, self.temperature, self.power, *a)?;
        }
        if self.reps == 0 {
            return Err(Error::param("reps", "must be at least 1"));
        }
        if self.rounds == 0 {
            return Err(Error::param(
                "rounds",
                "must be at least 1: with no rounds after the initial batch no strategy picks \
                 anything and there is nothing to compare",
            ));
        }
        for (i, a) in self.strategies.iter().enumerate() {
            if a.is_joint() && self.mode != BatchMode::TopK {
                return Err(Error::param(
                    "mode",
                    format!("{}: {}", label(*a), crate::select::JOINT_MODE),
                ));
            }
            if self.strategies[..i].contains(a) {
                return Err(Error::param(
                    "strategies",
                    format!(
                        "{} is listed twice; each strategy runs once (random always runs)",
                        label(*a)
                    ),
                ));
            }
        }
        if self.joint_sampler == JointSampler::Pathwise {
            if self.prior_features == 0 {
                return Err(Error::param("prior_features", "must be at least 1"));
            }
            if !self.strategies.iter().any(|a| a.is_joint()) {
                return Err(Error::param(
                    "joint_sampler",
                    "the pathwise sampler applies to thompson and qpo; no strategy uses it",
                ));
            }
            if !self.compare_inducing.is_empty() {
                return Err(Error::param(
                    "compare_inducing",
                    "the pathwise sampler needs an exact GP; compare sparse GPs with the shortlist sampler",
                ));
            }
        }
        for (i, m) in self.compare_inducing.iter().enumerate() {
            if self.compare_inducing[..i].contains(m) {
                return Err(Error::param(
                    "compare_inducing",
                    format!("{m} is listed twice"),
                ));
            }
        }
        Ok(())
    }
}

impl SimConfig {
    /// The initial set, batch and top-k sizes on a pool of `n`, checked: at least 2 initial
    /// labels, no more labels over the rounds than candidates, a top-k within the pool.
    pub(crate) fn sizes(&self, n: usize) -> Result<(usize, usize, usize)> {
        let init = self.init.resolve(n);
        let batch = self.batch.resolve(n);
        let topk = self.topk.resolve(n);
        if init < 2 {
            return Err(Error::param(
                "init",
                "needs at least 2 initial labels to fit a model",
            ));
        }
        if init + self.rounds * batch > n {
            return Err(Error::param(
                "rounds",
                format!(
                    "{init} initial + {} rounds × {batch} = {} labels, more than the {n} candidates in the pool",
                    self.rounds,
                    init + self.rounds * batch
                ),
            ));
        }
        if topk > n {
            return Err(Error::param(
                "topk",
                format!("{topk} is more than the {n} candidates"),
            ));
        }
        Ok((init, batch, topk))
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig::new()
    }
}

/// One measure of one strategy, replicate and round.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CurvePoint {
    /// Strategy name.
    pub strategy: String,
    /// Replicate, from 0.
    pub replicate: usize,
    /// Round, 0 = the initial set.
    pub round: usize,
    /// Labeled candidates so far.
    pub labeled: usize,
    /// Measure name.
    pub metric: &'static str,
    /// Its value.
    pub value: f64,
}

/// Fitted hyperparameters of one round.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FitRecord {
    /// Strategy.
    pub strategy: String,
    /// Replicate.
    pub replicate: usize,
    /// Round.
    pub round: usize,
    /// Signal variance.
    pub signal_var: f64,
    /// Noise.
    pub noise: f64,
    /// Lengthscale (dense kernels).
    pub lengthscale: Option<f64>,
    /// Log marginal likelihood (for a sparse model its evidence lower bound).
    pub log_marginal_likelihood: f64,
    /// Inducing points of a sparse model (VFE); `None` for the exact GP.
    pub inducing: Option<usize>,
}

/// A strategy's verdict against random.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StrategyVerdict {
    /// Strategy.
    pub strategy: String,
    /// The measure compared (`topk_recall` or `test_rmse`).
    pub metric: &'static str,
    /// Mean final measure of the strategy.
    pub strategy_mean: f64,
    /// Mean final measure of random.
    pub random_mean: f64,
    /// Strategy over random (random over strategy for RMSE): above 1 is better.
    pub enrichment: f64,
    /// Final measure, paired with random.
    pub final_round: Comparison,
    /// Area under the curve (mean over rounds 1..=R), paired with random.
    pub area: Comparison,
}

/// Everything a simulation produced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SimResult {
    /// Candidates in the simulated pool (test split excluded).
    pub pool_size: usize,
    /// Test candidates (accuracy objective).
    pub test_size: usize,
    /// Resolved sizes.
    pub init: usize,
    /// Batch per round.
    pub batch: usize,
    /// Top-k size.
    pub topk: usize,
    /// Rounds.
    pub rounds: usize,
    /// Replicates.
    pub reps: usize,
    /// Seed.
    pub seed: u64,
    /// Objective.
    pub objective: Objective,
    /// Batch mode.
    pub batch_mode: BatchMode,
    /// Temperature of the `softmax` mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Exponent of the `power` and `softrank` modes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power: Option<f32>,
    /// How `thompson` and `qpo` drew their joint samples, when one of them ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joint_sampler: Option<JointSampler>,
    /// The pathwise sampler's random features, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior_features: Option<usize>,
    /// Kernel used.
    pub kernel: &'static str,
    /// Strategy names, random first.
    pub strategies: Vec<String>,
    /// Initial sets, one per replicate (pool rows), shared by every strategy.
    pub initial_sets: Vec<Vec<usize>>,
    /// Verdicts of every strategy but random.
    pub verdicts: Vec<StrategyVerdict>,
    /// Hyperparameters per round.
    pub fits: Vec<FitRecord>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// How the backend was chosen.
    pub backend: String,
    /// How many candidates reached each stage of the picks, over every round, strategy and
    /// replicate.
    pub stages: Stages,
    /// The curves.
    #[serde(skip)]
    pub curves: Vec<CurvePoint>,
}

/// A fully labeled pool in memory.
pub struct LabeledPool {
    /// Features, one row per candidate.
    pub features: Features,
    /// Ids.
    pub ids: Vec<String>,
    /// Labels, in the labels' units.
    pub y: Vec<f64>,
}

/// Reads a whole pool and the label of every candidate through the one join
/// ([`crate::join`]); also returns the rows of the `test` ids, in their order.
///
/// # Errors
/// [`Error::Unlabeled`] for pool rows without a label (naming a few), [`Error::UnknownIds`]
/// for test ids the pool lacks, and the join's.
pub fn load_labeled_pool(
    pool: &dyn Pool,
    labels: &Labels,
    test: &IdList,
) -> Result<(LabeledPool, Vec<usize>)> {
    let mut features: Option<Features> = None;
    let mut ids = Vec::new();
    let pass = Pass {
        rule: Rule::Every,
        tile_rows: 65_536,
        progress: false,
    };
    let joined = join(pool, labels, test, pass, &mut |tile: &Tile| {
        let f = features.get_or_insert_with(|| Features::empty(tile.features.kind()));
        for r in 0..tile.len() {
            f.push_row_from(&tile.features, r);
        }
        ids.extend(tile.ids.iter().cloned());
    })?;
    let mut y = vec![0.0; joined.pool_size];
    for (&row, &v) in joined.train_rows.iter().zip(&joined.y) {
        y[row] = v;
    }
    let data = LabeledPool {
        features: features.unwrap_or_else(|| Features::empty(joined.kind)),
        ids,
        y,
    };
    Ok((data, joined.other_rows))
}

/// Runs the simulation on a labeled pool.
pub fn simulate(pool: &LabeledPool, cfg: &SimConfig) -> Result<SimResult> {
    let started = Instant::now();
    let n_all = pool.y.len();
    let kind = pool.features.kind();
    cfg.check_settings()?;
    let valid = cfg.model.check(kind)?;
    let kernel = valid.params().kernel;
    for s in &cfg.strategies {
        s.check()?;
    }
    let sign = if cfg.minimize { -1.0 } else { 1.0 };

    // The test split (accuracy) is drawn once and never enters the pool.
    let (pool_rows, test_rows) = match cfg.objective {
        Objective::FindBest => ((0..n_all).collect::<Vec<_>>(), Vec::new()),
        Objective::Accuracy if cfg.test_rows.is_some() => {
            let mut is_test = vec![false; n_all];
            for &i in cfg.test_rows.iter().flatten() {
                if i >= n_all {
                    return Err(Error::param(
                        "test_rows",
                        format!("row {i} is not in the pool of {n_all}"),
                    ));
                }
                is_test[i] = true;
            }
            let test: Vec<usize> = (0..n_all).filter(|&i| is_test[i]).collect();
            let rest: Vec<usize> = (0..n_all).filter(|&i| !is_test[i]).collect();
            if test.is_empty() || rest.is_empty() {
                return Err(Error::param(
                    "test_rows",
                    "needs at least one test and one pool candidate",
                ));
            }
            (rest, test)
        }
        Objective::Accuracy => {
            if !(cfg.test > 0.0 && cfg.test < 1.0) {
                return Err(Error::param(
                    "test",
                    format!("must be between 0 and 1, got {}", cfg.test),
                ));
            }
            let order = seeded_order(n_all, cfg.seed ^ 0x7e57);
            let n_test = ((cfg.test * n_all as f64).round() as usize).clamp(1, n_all - 1);
            let mut test = order[..n_test].to_vec();
            let mut rest = order[n_test..].to_vec();
            test.sort_unstable();
            rest.sort_unstable();
            (rest, test)
        }
    };
    let n = pool_rows.len();
    let feats = pool.features.select_rows(&pool_rows);
    let y: Vec<f64> = pool_rows.iter().map(|&i| sign * pool.y[i]).collect();
    let test_feats = pool.features.select_rows(&test_rows);
    let test_y: Vec<f64> = test_rows.iter().map(|&i| sign * pool.y[i]).collect();

    let (init, batch, topk) = cfg.sizes(n)?;
    let truth = TopTruth::new(&y, topk);
    let backend = Backend::new(cfg.backend, &GpuOptions::default())?;

    let mut strategies = vec![Acquisition::Random];
    strategies.extend(
        cfg.strategies
            .iter()
            .copied()
            .filter(|a| *a != Acquisition::Random),
    );
    // Each strategy with the model as asked, then with each number of inducing points.
    let mut models: Vec<(Acquisition, GpValidParams, String)> = strategies
        .iter()
        .map(|a| (*a, valid.clone(), label(*a)))
        .collect();
    for &m in &cfg.compare_inducing {
        let sparse = valid.clone().with_inducing(Inducing::Points(m))?;
        for a in strategies.iter().filter(|a| **a != Acquisition::Random) {
            models.push((*a, sparse.clone(), format!("{}@m{m}", label(*a))));
        }
    }
    let names: Vec<String> = models.iter().map(|m| m.2.clone()).collect();
    let mut curves = Vec::new();
    let mut fits = Vec::new();
    let mut initial_sets = Vec::new();
    let mut stages = Stages::default();
    let progress = crate::progress::progress_bar(
        cfg.progress,
        Some((cfg.reps * models.len() * (cfg.rounds + 1)) as u64),
        "simulating rounds",
    );
    for rep in 0..cfg.reps {
        let rep_seed = label_seed(cfg.seed, rep);
        let initial: Vec<usize> = seeded_order(n, rep_seed)[..init].to_vec();
        let mut tie_key = vec![0usize; n];
        for (pos, i) in seeded_order(n, rep_seed ^ 0x5eed).into_iter().enumerate() {
            tie_key[i] = pos;
        }
        initial_sets.push(initial.clone());
        for (acq, model, name) in &models {
            let valid = model.clone().with_seed(rep_seed);
            let run = Run {
                cfg,
                valid: &valid,
                feats: &feats,
                y: &y,
                test_feats: &test_feats,
                test_y: &test_y,
                truth: &truth,
                batch,
                acq: *acq,
                seed: rep_seed,
                tie_key: &tie_key,
                backend: &backend,
            };
            stages += run.campaign(&initial, name, rep, &mut curves, &mut fits)?;
            progress.inc((cfg.rounds + 1) as u64);
        }
    }
    progress.finish_and_clear();
    let verdicts = verdicts(cfg, &names, &curves);
    let joint = cfg.strategies.iter().any(|a| a.is_joint());
    Ok(SimResult {
        pool_size: n,
        test_size: test_rows.len(),
        init,
        batch,
        topk,
        rounds: cfg.rounds,
        reps: cfg.reps,
        seed: cfg.seed,
        objective: cfg.objective,
        batch_mode: cfg.mode,
        temperature: (cfg.mode == BatchMode::Softmax).then_some(cfg.temperature),
        power: matches!(cfg.mode, BatchMode::Power | BatchMode::Softrank).then_some(cfg.power),
        joint_sampler: joint.then_some(cfg.joint_sampler),
        prior_features: (joint && cfg.joint_sampler == JointSampler::Pathwise)
            .then_some(cfg.prior_features),
        kernel: kernel.name(),
        strategies: names,
        initial_sets,
        verdicts,
        fits,
        seconds: started.elapsed().as_secs_f64(),
        backend: backend.description.clone(),
        stages,
        curves,
    })
}

/// Replicate `rep`'s seed: its initial set, tie order and draws derive from it.
pub(crate) fn label_seed(seed: u64, rep: usize) -> u64 {
    u64::from(draw_u32(seed, rep as u32, 0, 13)) << 32 | rep as u64
}

/// A strategy's name with its parameter, e.g. `ucb(2)`.
fn label(a: Acquisition) -> String {
    match a {
        Acquisition::Ucb { beta } => format!("ucb({beta})"),
        Acquisition::Ei { xi } if xi != 0.0 => format!("ei({xi})"),
        Acquisition::Pi { xi } if xi != 0.0 => format!("pi({xi})"),
        other => other.name().to_string(),
    }
}

/// One strategy in one replicate.
struct Run<'a> {
    cfg: &'a SimConfig,
    valid: &'a GpValidParams,
    feats: &'a Features,
    y: &'a [f64],
    test_feats: &'a Features,
    test_y: &'a [f64],
    truth: &'a TopTruth,
    batch: usize,
    acq: Acquisition,
    seed: u64,
    /// Rank of each row in this replicate's tie-breaking permutation.
    tie_key: &'a [usize],
    backend: &'a Backend,
}

impl Run<'_> {
    fn campaign(
        &self,
        initial: &[usize],
        name: &str,
        rep: usize,
        curves: &mut Vec<CurvePoint>,
        fits: &mut Vec<FitRecord>,
    ) -> Result<Stages> {
        let n = self.y.len();
        let mut stages = Stages::default();
        let mut labeled: Vec<usize> = initial.to_vec();
        let mut is_labeled = vec![false; n];
        for &i in &labeled {
            is_labeled[i] = true;
        }
        let mut params = self.valid.clone();
        let (mut mean, mut var) = (vec![0f32; n], vec![0f32; n]);
        for round in 0..=self.cfg.rounds {
            let x = self.feats.select_rows(&labeled);
            let yl: Vec<f64> = labeled.iter().map(|&i| self.y[i]).collect();
            let gp = fit_with(&params, &x, &yl, self.backend.gram().as_ref())?;
            if round == 0 && !self.cfg.refit {
                params = held(self.valid, &gp)?;
            }
            fits.push(FitRecord {
                strategy: name.to_string(),
                replicate: rep,
                round,
                signal_var: gp.signal_var,
                noise: gp.noise,
                lengthscale: gp.lengthscale(),
                log_marginal_likelihood: gp.info.log_marginal_likelihood,
                inducing: gp.info.sparse.as_ref().map(|s| s.used),
            });
            let scorer = self.backend.prepare(&gp)?;
            let ctx = AcqContext {
                best: gp.y_best as f32,
                seed: self.seed,
                round: round as u32,
            };
            let cfg = self.cfg;
            let noise = Gumbel::new(cfg.mode, cfg.temperature, cfg.power, self.seed, ctx.round);
            // The metrics need every mean; the picks, the variance of those that can win.
            let available = is_labeled.iter().filter(|&&l| !l).count();
            // Softrank draws its ranks first and keeps the candidates down to the deepest one.
            let ranks = noise
                .filter(|g| !g.per_candidate())
                .map(|g| g.ranks(available, self.batch));
            let mut keep = match &ranks {
                Some(r) => r.iter().copied().max().unwrap_or(0),
                None => self.keep(available)?,
            };
            let mut shortlist = |keep: usize, mean: &mut [f32], stages: &mut Stages| {
                if let Some(g) = noise.filter(Gumbel::per_candidate) {
                    scorer.posterior_into(self.feats, mean, &mut var)?;
                    *stages += Stages::brute_force(available);
                    Ok(self.keyed(&ctx, g, &is_labeled, mean, &var))
                } else if self.cfg.prune {
                    self.shortlist_pruned(&scorer, &ctx, &is_labeled, keep, mean, stages)
                } else {
                    scorer.posterior_into(self.feats, mean, &mut var)?;
                    *stages += Stages::brute_force(available);
                    Ok(self.shortlist(&ctx, &is_labeled, keep, mean, &var))
                }
            };
            // The pathwise sampler picks from every candidate, with no shortlist.
            let pathwise = self.acq.is_joint() && cfg.joint_sampler == JointSampler::Pathwise;
            let mut chosen = None;
            let kept = if round == self.cfg.rounds {
                scorer.mean_into(self.feats, &mut mean)?;
                None
            } else if pathwise {
                chosen = Some(self.pathwise(&gp, &scorer, &ctx, &is_labeled, &mut mean)?);
                stages += Stages::brute_force(available);
                None
            } else {
                Some(shortlist(keep, &mut mean, &mut stages)?)
            };
            // Softrank's picks: the drawn ranks of the ranked candidates, in the draw's order.
            let kept = match (kept, &ranks) {
                (Some(k), Some(r)) => Some(r.iter().map(|&r| k[r - 1].clone()).collect()),
                (k, _) => k,
            };
            self.record(
                &gp,
                &scorer,
                &labeled,
                &is_labeled,
                &mean,
                name,
                rep,
                round,
                curves,
            )?;
            let picks = match (chosen, kept) {
                (Some(rows), _) => rows,
                (None, None) => break,
                (None, Some(mut kept)) => loop {
                    match self.pick(&gp, &ctx, kept, keep, available)? {
                        Picked::Batch(rows, joint) => {
                            if let Some(j) = joint {
                                // How far into the shortlist the samples reached, per round.
                                for (metric, value) in [
                                    ("joint_tail_share", j.tail_share),
                                    ("joint_shortlist", j.shortlist as f64),
                                ] {
                                    curves.push(CurvePoint {
                                        strategy: name.to_string(),
                                        replicate: rep,
                                        round,
                                        labeled: labeled.len(),
                                        metric,
                                        value,
                                    });
                                }
                            }
                            break rows;
                        }
                        Picked::Grow(longer) => {
                            keep = longer;
                            kept = shortlist(keep, &mut mean, &mut stages)?;
                        }
                    }
                },
            };
            for i in picks {
                is_labeled[i] = true;
                labeled.push(i);
            }
        }
        Ok(stages)
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        gp: &FittedGp,
        scorer: &dyn Scorer,
        labeled: &[usize],
        is_labeled: &[bool],
        mean: &[f32],
        name: &str,
        rep: usize,
        round: usize,
        curves: &mut Vec<CurvePoint>,
    ) -> Result<()> {
        let sign = if self.cfg.minimize { -1.0 } else { 1.0 };
        let k = self.truth.k();
        let best = k_best(labeled.iter().map(|&i| self.y[i]), k);
        let unl: Vec<usize> = (0..self.y.len()).filter(|&i| !is_labeled[i]).collect();
        let pred: Vec<f64> = unl
            .iter()
            .map(|&i| gp.mean_to_labels(f64::from(mean[i])))
            .collect();
        let truth: Vec<f64> = unl.iter().map(|&i| self.y[i]).collect();
        let mut push = |metric: &'static str, value: f64| {
            curves.push(CurvePoint {
                strategy: name.to_string(),
                replicate: rep,
                round,
                labeled: labeled.len(),
                metric,
                value,
            })
        };
        push("topk_recall", self.truth.recall(labeled));
        push("topk_score_recall", self.truth.score_recall(&best));
        push("topk_mean_ratio", self.truth.mean_ratio(&best));
        push("best", sign * best[0]);
        push("pool_rmse", rmse(&pred, &truth));
        push("pool_spearman", spearman(&pred, &truth));
        if !self.test_y.is_empty() {
            let mut m = vec![0f32; self.test_y.len()];
            scorer.mean_into(self.test_feats, &mut m)?;
            let p: Vec<f64> = m.iter().map(|&v| gp.mean_to_labels(f64::from(v))).collect();
            push("test_rmse", rmse(&p, self.test_y));
            push("test_spearman", spearman(&p, self.test_y));
        }
        Ok(())
    }

    /// The batch of `thompson` or `qpo` from pathwise samples over every unlabeled candidate,
    /// keyed and tied by the replicate's key; fills `mean` on the way.
    fn pathwise(
        &self,
        gp: &FittedGp,
        scorer: &dyn Scorer,
        ctx: &AcqContext,
        is_labeled: &[bool],
        mean: &mut [f32],
    ) -> Result<Vec<usize>> {
        let mut picks = JointPicks::new(self.acq, self.batch);
        let samples = picks.samples();
        // qPO's quantile needs the variance; Thompson only the mean, for the metrics.
        let mut var = Vec::new();
        match picks.uses_quantile() {
            true => {
                var.resize(mean.len(), 0.0);
                scorer.posterior_into(self.feats, mean, &mut var)?;
            }
            false => scorer.mean_into(self.feats, mean)?,
        }
        let draws = PathwiseSamples::new(gp, self.cfg.prior_features, samples, ctx)?;
        draws.for_each_block(self.feats, |first, values| {
            for (r, v) in values.chunks_exact(samples).enumerate() {
                let i = first + r;
                if is_labeled[i] {
                    continue;
                }
                let key = self.tie_key[i];
                let quantile = || score(self.acq, mean[i], var[i], key as u64, ctx);
                picks.offer(v, quantile, key, || i);
            }
            Ok(())
        })?;
        let picks = picks.finish();
        Ok(picks.into_iter().map(|r| r.item).collect())
    }

    /// How many candidates `pick` ranks at first: the batch, or the shortlist of a diverse
    /// batch or a joint acquisition, of the `available` candidates.
    fn keep(&self, available: usize) -> Result<usize> {
        if uses_shortlist(self.cfg.mode, self.acq, None) {
            shortlist_size(None, self.batch, available, self.acq)
        } else {
            Ok(self.batch)
        }
    }

    /// `softmax` and `power`: the batch with the largest keys ([`Gumbel::key`], keyed and tied
    /// by the replicate's key), in key order, from every candidate's posterior; each keeps its
    /// acquisition score.
    fn keyed(
        &self,
        ctx: &AcqContext,
        noise: Gumbel,
        is_labeled: &[bool],
        mean: &[f32],
        var: &[f32],
    ) -> Vec<Ranked<Candidate>> {
        let mut top = KeyTop::new(self.batch);
        for i in (0..self.y.len()).filter(|&i| !is_labeled[i]) {
            let key = self.tie_key[i];
            let s = score(self.acq, mean[i], var[i], key as u64, ctx);
            let item = Ranked {
                score: s,
                index: key,
                item: (i, mean[i], var[i]),
            };
            top.push(noise.key(s, key as u64), key, item);
        }
        top.into_sorted().into_iter().map(|k| k.item).collect()
    }

    /// The best `keep` unlabeled candidates by score, ties by the replicate's key, from every
    /// candidate's posterior.
    fn shortlist(
        &self,
        ctx: &AcqContext,
        is_labeled: &[bool],
        keep: usize,
        mean: &[f32],
        var: &[f32],
    ) -> Vec<Ranked<Candidate>> {
        let mut top = TopK::new(keep);
        for i in (0..self.y.len()).filter(|&i| !is_labeled[i]) {
            let key = self.tie_key[i];
            let s = score(self.acq, mean[i], var[i], key as u64, ctx);
            top.push(s, key, (i, mean[i], var[i]));
        }
        top.into_sorted()
    }

    /// [`Run::shortlist`] by the backend's pruned search: the same candidates, but only those
    /// that can enter it get a variance. Fills `mean` with every row's mean on the way.
    fn shortlist_pruned(
        &self,
        scorer: &dyn Scorer,
        ctx: &AcqContext,
        is_labeled: &[bool],
        keep: usize,
        mean: &mut [f32],
        stages: &mut Stages,
    ) -> Result<Vec<Ranked<Candidate>>> {
        let skip: Vec<usize> = (0..self.y.len()).filter(|&i| is_labeled[i]).collect();
        let what = BestOf {
            acq: self.acq,
            ctx,
            start: 0,
            keep,
            skip: &skip,
            keys: Some(self.tie_key),
        };
        let (mut floor, mut best) = (Floor::new(keep), Vec::new());
        let got = scorer.best_pruned_with_mean(self.feats, &what, &mut floor, &mut best, mean)?;
        *stages += got.unwrap_or(Stages::brute_force(self.y.len() - skip.len()));
        let mut top = TopK::new(keep);
        for b in &best {
            top.push(b.score, self.tie_key[b.row], (b.row, b.mean, b.var));
        }
        Ok(top.into_sorted())
    }

    /// The batch from the ranked shortlist of `keep`: its head, a diverse batch or a joint
    /// acquisition's batch chosen from it, or a longer shortlist to rank first when a joint
    /// acquisition's samples reached its tail too often.
    fn pick(
        &self,
        gp: &FittedGp,
        ctx: &AcqContext,
        kept: Vec<Ranked<Candidate>>,
        keep: usize,
        available: usize,
    ) -> Result<Picked> {
        let rows: Vec<usize> = kept.iter().map(|r| r.item.0).collect();
        if !uses_shortlist(self.cfg.mode, self.acq, None) {
            return Ok(Picked::Batch(rows, None));
        }
        let short: Vec<Shortlisted> = kept
            .iter()
            .map(|r| Shortlisted {
                index: r.index,
                mean: r.item.1,
                var: r.item.2,
            })
            .collect();
        let none = Features::empty(self.feats.kind());
        let batch = choose_batch(
            self.cfg.mode,
            gp,
            self.acq,
            ctx,
            &short,
            &self.feats.select_rows(&rows),
            &none,
            self.batch,
            None,
        )?;
        if let Some(longer) = batch
            .joint
            .as_ref()
            .and_then(|r| grown_shortlist(r, keep, available, None))
        {
            return Ok(Picked::Grow(longer));
        }
        let picked = batch.picks.iter().map(|&(p, _)| rows[p]).collect();
        Ok(Picked::Batch(picked, batch.joint))
    }
}

/// What [`Run::pick`] decided.
enum Picked {
    /// The batch's pool rows, with the joint step's report for `thompson` and `qpo`.
    Batch(Vec<usize>, Option<JointReport>),
    /// Rank a shortlist this long first.
    Grow(usize),
}

/// A shortlisted candidate of a round: its pool row, mean and variance.
type Candidate = (usize, f32, f32);

/// Fixes the hyperparameters of `gp` for later rounds.
fn held(valid: &GpValidParams, gp: &FittedGp) -> Result<GpValidParams> {
    let mut p = valid.params().clone();
    p.signal_var = Some(gp.signal_var);
    p.noise = Some(gp.noise);
    if p.kernel.has_lengthscale() {
        p.lengthscale = Some(gp.kernel.lengthscale);
    }
    p.check(gp.train.kind())
}

/// Paired verdicts of every strategy against random.
fn verdicts(cfg: &SimConfig, names: &[String], curves: &[CurvePoint]) -> Vec<StrategyVerdict> {
    let (metric, higher_better) = match cfg.objective {
        Objective::FindBest => ("topk_recall", true),
        Objective::Accuracy => ("test_rmse", false),
    };
    verdicts_on(
        metric,
        higher_better,
        (cfg.rounds, cfg.reps, cfg.seed),
        names,
        curves,
    )
}

/// Paired verdicts against random (`names[0]`) on `metric` over `(rounds, reps, seed)`.
pub(crate) fn verdicts_on(
    metric: &'static str,
    higher_better: bool,
    (rounds, reps, seed): (usize, usize, u64),
    names: &[String],
    curves: &[CurvePoint],
) -> Vec<StrategyVerdict> {
    struct Cfg {
        rounds: usize,
        reps: usize,
        seed: u64,
    }
    let cfg = Cfg { rounds, reps, seed };
    // value[strategy][rep][round]
    let value = |s: &str, rep: usize, round: usize| -> f64 {
        curves
            .iter()
            .find(|c| {
                c.strategy == s && c.replicate == rep && c.round == round && c.metric == metric
            })
            .map_or(f64::NAN, |c| c.value)
    };
    let area = |s: &str, rep: usize| -> f64 {
        (1..=cfg.rounds).map(|r| value(s, rep, r)).sum::<f64>() / cfg.rounds.max(1) as f64
    };
    let signed = |d: f64| if higher_better { d } else { -d };
    let random = &names[0];
    names[1..]
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let finals: Vec<f64> = (0..cfg.reps)
                .map(|r| signed(value(s, r, cfg.rounds) - value(random, r, cfg.rounds)))
                .collect();
            let areas: Vec<f64> = (0..cfg.reps)
                .map(|r| signed(area(s, r) - area(random, r)))
                .collect();
            let mean_of = |name: &str| {
                (0..cfg.reps)
                    .map(|r| value(name, r, cfg.rounds))
                    .sum::<f64>()
                    / cfg.reps as f64
            };
            let (sm, rm) = (mean_of(s), mean_of(random));
            StrategyVerdict {
                strategy: s.clone(),
                metric,
                strategy_mean: sm,
                random_mean: rm,
                enrichment: if higher_better { sm / rm } else { rm / sm },
                final_round: compare(&finals, cfg.seed ^ (2 * k as u64 + 1)),
                area: compare(&areas, cfg.seed ^ (2 * k as u64 + 2)),
            }
        })
        .collect()
}

/// The verdicts as a text table.
pub fn verdict_table(r: &SimResult) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} candidates, {} initial + {} rounds × {}, top-{}, {} replicates, kernel {}, objective {}",
        r.pool_size,
        r.init,
        r.rounds,
        r.batch,
        r.topk,
        r.reps,
        r.kernel,
        match r.objective {
            Objective::FindBest => "find-best",
            Objective::Accuracy => "accuracy",
        }
    );
    // The strategy column fits the longest name (`thompson-marginal`, `ucb@m500`).
    let w = r
        .verdicts
        .iter()
        .map(|v| v.strategy.chars().count())
        .max()
        .unwrap_or(0)
        .max(12);
    let _ = writeln!(
        out,
        "{:<w$} {:>10} {:>10} {:>24} {:<18} {:<18} {:>10}",
        "strategy",
        "final",
        "random",
        "difference [95% CI]",
        "verdict (final)",
        "verdict (area)",
        "enrichment"
    );
    for v in &r.verdicts {
        let ci = format!(
            "{:+.3} [{:+.3}, {:+.3}]",
            v.final_round.mean_difference, v.final_round.low, v.final_round.high
        );
        let _ = writeln!(
            out,
            "{:<w$} {:>10.3} {:>10.3} {:>24} {:<18} {:<18} {:>10.2}",
            v.strategy,
            v.strategy_mean,
            v.random_mean,
            ci,
            v.final_round.verdict.as_str(),
            v.area.verdict.as_str(),
            v.enrichment
        );
    }
    let _ = writeln!(
        out,
        "measure: {} after the last round; positive differences favour the strategy",
        r.verdicts.first().map_or("-", |v| v.metric)
    );
    out
}
