//! Retrospective simulation with several objectives: does a Pareto acquisition beat random at
//! finding the pool's front?
//!
//! The protocol is the one-objective simulation's ([`super`]): per replicate one random
//! initial set that every strategy starts from, a seeded tie order, `random` always run; each
//! round fits one GP per objective on the labels so far (a round of [`crate::multi`]), scores
//! every unlabeled candidate, picks a batch and reveals its labels. Hyperparameters are
//! refitted every round.
//!
//! Per round two measures of the labeled set:
//! - `hypervolume`: its hypervolume over the whole pool's, both against one reference point
//!   near the pool's true front: the front's worst value of each objective (its nadir) less
//!   10% of the front's range ([`crate::pareto::reference_point`] of the front's true values).
//!   1 when the front is found. (A reference below the whole pool would count the bulk of the
//!   pool that any labeled set dominates, and random would score near 1 from the first
//!   round.)
//! - `front_recall`: the share it holds of the pool's first non-dominated layers, as many
//!   layers as together hold at least `topk` candidates.
//!
//! Each strategy is compared with random on each measure, paired by replicate, as for one
//! objective ([`super::verdict`]).

use std::time::Instant;

use rayon::prelude::*;

use super::{label_seed, verdicts_on, CurvePoint, SimConfig, StrategyVerdict};
use crate::acquisition::Acquisition;
use crate::backend::{Backend, GpuOptions};
use crate::data::{Features, Labels, MultiLabels, ObjectiveSpec, Objectives, Pool};
use crate::error::{Error, Result};
use crate::multi::{
    acquirer, diverse_batch, fit_heads, pruned_pass, Batcher, Cand, Constraint, MultiParams,
    MultiScorer, ParetoAcquisition, TopScores, Value,
};
use crate::pareto::{hypervolume, nondominated_layers, reference_point};
use crate::rng::{draw_u32, seeded_order, uniform};
use crate::select::{shortlist_size, BatchMode};

/// The stream of `random`'s draws in a multi-objective simulation.
const RANDOM_STREAM: u32 = 29;

/// Settings of a multi-objective simulation.
#[derive(Clone, Debug)]
pub struct ParetoSimConfig {
    /// Initial set, batch, rounds, top-k (the size of the front measured), replicates, seed,
    /// model, batch mode (top-k, or diverse for `ehvi` and `phvi`), backend and progress as
    /// for one objective; its strategies, objective and direction are not used.
    pub sim: SimConfig,
    /// The objectives (2 or 3).
    pub objectives: Objectives,
    /// Strategies besides `random` (which always runs).
    pub strategies: Vec<ParetoAcquisition>,
    /// UCB weight of `pareto-ucb`.
    pub beta: f32,
    /// Reference point of `ehvi`/`phvi` each round (file units); `None`: from that round's
    /// labels.
    pub ref_point: Option<Vec<f64>>,
    /// Constraints: each strategy's acquisition is multiplied by the probability of meeting
    /// them, as in `select`, and the measures count only the candidates whose true values meet
    /// them (the front is the feasible candidates' front).
    pub constraints: Vec<Constraint>,
}

impl ParetoSimConfig {
    /// EHVI, PHVI, `pareto-ucb` and ParEGO on `objectives`, the one-objective protocol's sizes.
    pub fn new(objectives: Objectives) -> Self {
        ParetoSimConfig {
            sim: SimConfig::new(),
            objectives,
            strategies: vec![
                ParetoAcquisition::Ehvi,
                ParetoAcquisition::Phvi,
                ParetoAcquisition::ParetoUcb,
                ParetoAcquisition::Parego,
            ],
            beta: 2.0,
            ref_point: None,
            constraints: Vec::new(),
        }
    }
}

/// A fully labeled pool with several objectives, in memory.
pub struct MultiLabeledPool {
    /// Features, one row per candidate.
    pub features: Features,
    /// Ids.
    pub ids: Vec<String>,
    /// `values[k][row]`: column `k`'s value, in the file's units.
    pub values: Vec<Vec<f64>>,
    /// The columns: the objectives, in order, then any other column a constraint names
    /// ([`MultiParams::columns`]).
    pub objectives: Vec<ObjectiveSpec>,
}

/// Reads a whole pool and every candidate's value of every objective.
///
/// # Errors
/// [`Error::Unlabeled`] (through the join) for pool rows without a label row,
/// [`Error::InvalidParam`] on `labels` naming the id, line and column of a missing value, and
/// the join's.
pub fn load_multi_labeled_pool(pool: &dyn Pool, labels: &MultiLabels) -> Result<MultiLabeledPool> {
    for (k, col) in labels.values.iter().enumerate() {
        if let Some(i) = col.iter().position(Option::is_none) {
            return Err(Error::param(
                "labels",
                format!(
                    "{}: id {:?}{} has no {:?}; simulate reveals true values, so every candidate needs every objective",
                    labels.source.display(),
                    labels.ids[i],
                    labels.lines.get(i).map_or(String::new(), |l| format!(" (line {l})")),
                    labels.objectives[k].column
                ),
            ));
        }
    }
    let first = Labels {
        source: labels.source.clone(),
        ids: labels.ids.clone(),
        values: vec![0.0; labels.len()],
        lines: labels.lines.clone(),
    };
    let (data, _) = super::load_labeled_pool(pool, &first, &crate::data::IdList::default())?;
    let row_of: std::collections::HashMap<&str, usize> = labels
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let values = labels
        .values
        .iter()
        .map(|col| {
            data.ids
                .iter()
                .map(|id| col[row_of[id.as_str()]].expect("checked above"))
                .collect()
        })
        .collect();
    Ok(MultiLabeledPool {
        features: data.features,
        ids: data.ids,
        values,
        objectives: labels.objectives.clone(),
    })
}

/// Everything a multi-objective simulation produced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ParetoSimResult {
    /// Candidates in the pool.
    pub pool_size: usize,
    /// Initial labels.
    pub init: usize,
    /// Batch per round.
    pub batch: usize,
    /// The `topk` asked for the front measured.
    pub topk: usize,
    /// Candidates on the pool's first layers that `front_recall` measures.
    pub front_size: usize,
    /// How many layers those are.
    pub front_layers: usize,
    /// Candidates on the pool's first non-dominated layer.
    pub pareto_front: usize,
    /// Rounds.
    pub rounds: usize,
    /// Replicates.
    pub reps: usize,
    /// Seed.
    pub seed: u64,
    /// The objectives, `NAME:min`/`NAME:max`.
    pub objectives: Vec<String>,
    /// The constraints (`qed>=0.5`); the measures count only the candidates that meet them.
    pub constraints: Vec<String>,
    /// Candidates of the pool that meet every constraint (all of them without constraints).
    pub feasible: usize,
    /// The reference point of the `hypervolume` measure (the pool front's nadir less 10% of the
    /// front's range), in the file's units.
    pub reference_point: Vec<f64>,
    /// The whole pool's hypervolume against it (maximised units).
    pub pool_hypervolume: f64,
    /// Kernel used.
    pub kernel: &'static str,
    /// Strategy names, random first.
    pub strategies: Vec<String>,
    /// Initial sets, one per replicate (pool rows).
    pub initial_sets: Vec<Vec<usize>>,
    /// Verdicts of every strategy but random, on `hypervolume` then on `front_recall`.
    pub verdicts: Vec<StrategyVerdict>,
    /// Whether the CPU scored every objective from one kernel block.
    pub shared_kernel_block: bool,
    /// Whether some round took the pruned pass (`ehvi` and `parego` on a shared kernel block,
    /// unless `prune` is off); the acquired sets are the same either way.
    pub pruned: bool,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// How the backend was chosen.
    pub backend: String,
    /// The curves.
    #[serde(skip)]
    pub curves: Vec<CurvePoint>,
    /// Every candidate's objectives in the file's units, row-major (`m` a row), for the plot.
    #[serde(skip)]
    pub points: Vec<f64>,
    /// Replicate 0's labeled rows at the end, per strategy (in `strategies`' order).
    #[serde(skip)]
    pub acquired: Vec<Vec<usize>>,
}

/// Runs the simulation.
///
/// # Errors
/// [`Error::InvalidParam`] naming the field for bad settings (objectives or constraint columns
/// not those of the pool, too few rounds or replicates, more labels than candidates, a
/// constraint that no candidate meets), and the rounds'.
pub fn simulate_objectives(
    pool: &MultiLabeledPool,
    cfg: &ParetoSimConfig,
) -> Result<ParetoSimResult> {
    let started = Instant::now();
    let sc = &cfg.sim;
    let m = cfg.objectives.len();
    if sc.reps == 0 || sc.rounds == 0 {
        return Err(Error::param(
            if sc.reps == 0 { "reps" } else { "rounds" },
            "must be at least 1",
        ));
    }
    for (i, a) in cfg.strategies.iter().enumerate() {
        if cfg.strategies[..i].contains(a) {
            return Err(Error::param(
                "strategies",
                format!("{a} is listed twice; each strategy runs once (random always runs)"),
            ));
        }
    }
    let n = pool.ids.len();
    let (init, batch, topk) = sc.sizes(n)?;
    let mut probe = MultiParams::new(cfg.objectives.clone());
    probe.select.model = sc.model.clone();
    probe.select.mode = sc.mode;
    probe.select.prune = sc.prune;
    probe.beta = cfg.beta;
    probe.ref_point = cfg.ref_point.clone();
    probe.constraints = cfg.constraints.clone();
    probe.check()?;
    if pool.objectives != probe.columns() {
        return Err(Error::param(
            "objectives",
            "the labeled pool holds other columns than the objectives and constraints",
        ));
    }
    for a in &cfg.strategies {
        MultiParams {
            acquisition: *a,
            ..probe.clone()
        }
        .check()?;
    }
    let kernel = sc.model.check(pool.features.kind())?.params().kernel;

    // The truth: every candidate maximised, which meet the constraints, the reference and the
    // front measured (of those that meet them).
    let specs = &pool.objectives;
    let points: Vec<f64> = (0..n)
        .flat_map(|i| (0..m).map(move |j| specs[j].maximised(pool.values[j][i])))
        .collect();
    let column = |c: &Constraint| {
        let k = specs.iter().position(|s| s.column == c.column);
        &pool.values[k.expect("checked against the columns")]
    };
    let feasible: Vec<bool> = (0..n)
        .map(|i| cfg.constraints.iter().all(|c| c.holds(column(c)[i])))
        .collect();
    let rows: Vec<usize> = (0..n).filter(|&i| feasible[i]).collect();
    if rows.is_empty() {
        return Err(Error::param(
            "constraint",
            format!(
                "no candidate of the pool meets {}; loosen a threshold or check its direction",
                cfg.constraints
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        ));
    }
    let kept: Vec<f64> = rows
        .iter()
        .flat_map(|&i| points[i * m..(i + 1) * m].iter().copied())
        .collect();
    let layers: Vec<Vec<usize>> = nondominated_layers(&kept, m)?
        .into_iter()
        .map(|layer| layer.into_iter().map(|i| rows[i]).collect())
        .collect();
    let front: Vec<f64> = layers[0]
        .iter()
        .flat_map(|&i| points[i * m..(i + 1) * m].iter().copied())
        .collect();
    let reference = reference_point(&front, m)?;
    let pool_hv = hypervolume(&kept, m, &reference)?;
    let mut in_front = vec![false; n];
    let (mut front_size, mut front_layers) = (0, 0);
    for layer in &layers {
        if front_size >= topk.max(1) {
            break;
        }
        for &i in layer {
            in_front[i] = true;
        }
        front_size += layer.len();
        front_layers += 1;
    }
    let truth = Truth {
        points: &points,
        feasible: &feasible,
        m,
        reference: &reference,
        pool_hv,
        in_front: &in_front,
        front_size,
    };

    let backend = Backend::new(sc.backend, &GpuOptions::default())?;
    let mut strategies = vec![None];
    strategies.extend(cfg.strategies.iter().copied().map(Some));
    let names: Vec<String> = strategies
        .iter()
        .map(|s| s.map_or("random".to_string(), |a| a.to_string()))
        .collect();
    let progress = crate::progress::progress_bar(
        sc.progress,
        Some((sc.reps * strategies.len() * (sc.rounds + 1)) as u64),
        "simulating rounds",
    );
    let (mut curves, mut initial_sets, mut acquired) = (Vec::new(), Vec::new(), Vec::new());
    let (mut shared, mut pruned) = (true, false);
    for rep in 0..sc.reps {
        let rep_seed = label_seed(sc.seed, rep);
        let initial: Vec<usize> = seeded_order(n, rep_seed)[..init].to_vec();
        let mut tie_key = vec![0usize; n];
        for (pos, i) in seeded_order(n, rep_seed ^ 0x5eed).into_iter().enumerate() {
            tie_key[i] = pos;
        }
        initial_sets.push(initial.clone());
        for (s, name) in strategies.iter().zip(&names) {
            let mut labeled = initial.clone();
            let mut is_labeled = vec![false; n];
            for &i in &labeled {
                is_labeled[i] = true;
            }
            for round in 0..=sc.rounds {
                for (metric, value) in truth.measures(&labeled) {
                    curves.push(CurvePoint {
                        strategy: name.clone(),
                        replicate: rep,
                        round,
                        labeled: labeled.len(),
                        metric,
                        value,
                    });
                }
                progress.inc(1);
                if round == sc.rounds {
                    break;
                }
                let picks = match s {
                    None => random_batch(&is_labeled, &tie_key, batch, rep_seed, round as u32),
                    Some(a) => {
                        let mut p = probe.clone();
                        p.acquisition = *a;
                        p.select.seed = rep_seed;
                        p.select.round = round as u32;
                        let (picks, was_shared, was_pruned) = pareto_batch_of(
                            &p,
                            pool,
                            &labeled,
                            &is_labeled,
                            &tie_key,
                            batch,
                            &backend,
                        )?;
                        shared &= was_shared;
                        pruned |= was_pruned;
                        picks
                    }
                };
                for i in picks {
                    is_labeled[i] = true;
                    labeled.push(i);
                }
            }
            if rep == 0 {
                acquired.push(labeled);
            }
        }
    }
    progress.finish_and_clear();
    let settings = (sc.rounds, sc.reps, sc.seed);
    let mut verdicts = verdicts_on("hypervolume", true, settings, &names, &curves);
    verdicts.extend(verdicts_on("front_recall", true, settings, &names, &curves));
    Ok(ParetoSimResult {
        pool_size: n,
        init,
        batch,
        topk,
        front_size,
        front_layers,
        pareto_front: layers.first().map_or(0, Vec::len),
        rounds: sc.rounds,
        reps: sc.reps,
        seed: sc.seed,
        objectives: cfg.objectives.iter().map(|s| s.to_string()).collect(),
        constraints: cfg.constraints.iter().map(|c| c.to_string()).collect(),
        feasible: rows.len(),
        reference_point: reference
            .iter()
            .zip(specs)
            .map(|(v, s)| s.maximised(*v))
            .collect(),
        pool_hypervolume: pool_hv,
        kernel: kernel.name(),
        strategies: names,
        initial_sets,
        verdicts,
        shared_kernel_block: shared && backend.is_cpu(),
        pruned,
        seconds: started.elapsed().as_secs_f64(),
        backend: backend.description.clone(),
        curves,
        points: (0..n)
            .flat_map(|i| (0..m).map(move |j| pool.values[j][i]))
            .collect(),
        acquired,
    })
}

/// The true values and what the measures compare against.
struct Truth<'a> {
    points: &'a [f64],
    feasible: &'a [bool],
    m: usize,
    reference: &'a [f64],
    pool_hv: f64,
    in_front: &'a [bool],
    front_size: usize,
}

impl Truth<'_> {
    /// `hypervolume` and `front_recall` of the labeled rows (those that meet the constraints).
    fn measures(&self, labeled: &[usize]) -> [(&'static str, f64); 2] {
        let m = self.m;
        let pts: Vec<f64> = labeled
            .iter()
            .filter(|&&i| self.feasible[i])
            .flat_map(|&i| self.points[i * m..(i + 1) * m].iter().copied())
            .collect();
        let hv = hypervolume(&pts, m, self.reference).unwrap_or(f64::NAN);
        let found = labeled.iter().filter(|&&i| self.in_front[i]).count();
        [
            (
                "hypervolume",
                if self.pool_hv > 0.0 {
                    hv / self.pool_hv
                } else {
                    1.0
                },
            ),
            ("front_recall", found as f64 / self.front_size.max(1) as f64),
        ]
    }
}

/// `random`: the unlabeled rows with the largest seeded uniform draws, keyed by the tie order.
fn random_batch(
    is_labeled: &[bool],
    tie_key: &[usize],
    batch: usize,
    seed: u64,
    round: u32,
) -> Vec<usize> {
    let mut top = TopScores::new(batch);
    for (i, _) in is_labeled.iter().enumerate().filter(|(_, l)| !**l) {
        let key = tie_key[i];
        let u = f64::from(uniform(draw_u32(seed, round, key as u64, RANDOM_STREAM)));
        top.offer(u, key, || i);
    }
    top.into_sorted().into_iter().map(|k| k.item).collect()
}

/// One round of a Pareto strategy on the labeled rows: the batch (pool rows), whether the
/// models shared one kernel block, and whether the round took the pruned pass.
#[allow(clippy::too_many_arguments)]
fn pareto_batch_of(
    p: &MultiParams,
    pool: &MultiLabeledPool,
    labeled: &[usize],
    is_labeled: &[bool],
    tie_key: &[usize],
    batch: usize,
    backend: &Backend,
) -> Result<(Vec<usize>, bool, bool)> {
    let m = p.objectives.len();
    let labels = MultiLabels {
        source: "<simulation>".into(),
        objectives: pool.objectives.clone(),
        ids: labeled.iter().map(|i| i.to_string()).collect(),
        values: pool
            .values
            .iter()
            .map(|column| labeled.iter().map(|&i| Some(column[i])).collect())
            .collect(),
        lines: Vec::new(),
    };
    let union = pool.features.select_rows(labeled);
    let heads = fit_heads(p, &union, &labels, backend.gram().as_ref())?;
    let (acq, reference) = acquirer(p, &labels, &heads)?;
    let scorer = MultiScorer::new(backend, &union, &heads)?;
    let (h, n) = (heads.len(), pool.ids.len());
    let eligible: Vec<usize> = (0..n).filter(|&r| !is_labeled[r]).collect();
    let diverse = p.select.mode == BatchMode::Diverse;
    let keep = match diverse {
        true => shortlist_size(
            p.select.shortlist,
            batch,
            n - labeled.len(),
            Acquisition::Greedy,
        )?,
        false => batch,
    };
    // Each kept row with its means and variances (one per model).
    type Kept = (usize, Vec<f32>, Vec<f32>);
    let mut batcher: Batcher<Kept> = Batcher::new(keep, m, acq.parego.len());
    let pruned = p.select.prune && acq.prunable() && scorer.shared();
    match &scorer {
        MultiScorer::Shared(shared) if pruned => {
            let mut mean = vec![0f32; n * h];
            shared.means_into(&pool.features, &mut mean)?;
            pruned_pass(
                shared,
                &acq,
                &mut batcher,
                &pool.features,
                &mean,
                &eligible,
                |r| tie_key[r],
                |r, m, v, _| (r, m.to_vec(), v.to_vec()),
            )?;
        }
        _ => {
            let (mut mean, mut var) = (vec![0f32; n * h], vec![0f32; n * h]);
            scorer.posterior_into(&pool.features, &mut mean, &mut var)?;
            let post = |r: usize| (&mean[r * h..(r + 1) * h], &var[r * h..(r + 1) * h]);
            let constrained = !p.constraints.is_empty();
            let values: Vec<(Value, f64)> = eligible
                .par_iter()
                .map(|&r| {
                    let (mr, vr) = post(r);
                    let p = if constrained {
                        acq.feasibility(mr, vr)
                    } else {
                        1.0
                    };
                    acq.value(mr, vr, tie_key[r] as u64).map(|v| (v, p))
                })
                .collect::<Result<_>>()?;
            for (&r, (v, p)) in eligible.iter().zip(&values) {
                batcher.offer(v, *p, tie_key[r], || {
                    (r, post(r).0.to_vec(), post(r).1.to_vec())
                });
            }
        }
    }
    let chosen = batcher.finish()?;
    if !diverse {
        let picks = chosen.into_iter().map(|(_, (r, _, _))| r).collect();
        return Ok((picks, scorer.shared(), pruned));
    }
    let short: Vec<(f64, Cand)> = chosen
        .into_iter()
        .map(|(score, (r, mean, var))| {
            let cand = Cand {
                // The believer breaks ties by this index: the replicate's tie order.
                index: tie_key[r],
                id: r.to_string(),
                mean,
                var,
                p: 1.0,
                row: Some(pool.features.select_rows(&[r])),
            };
            (score, cand)
        })
        .collect();
    let r = reference
        .as_deref()
        .expect("ehvi and phvi have a reference");
    let none = Features::empty(pool.features.kind());
    let picks = diverse_batch(acq, &heads, &labels, r, short, &none, batch)?;
    let picks = picks
        .into_iter()
        .map(|(_, c)| c.id.parse().expect("a row number"))
        .collect();
    Ok((picks, scorer.shared(), pruned))
}

/// The verdicts as a text table, hypervolume first.
pub fn pareto_verdict_table(r: &ParetoSimResult) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} candidates, {} initial + {} rounds × {}, {} replicates, kernel {}, objectives {}; pool front {} candidates, front_recall over the first {} layer(s) ({} candidates)",
        r.pool_size,
        r.init,
        r.rounds,
        r.batch,
        r.reps,
        r.kernel,
        r.objectives.join(","),
        r.pareto_front,
        r.front_layers,
        r.front_size
    );
    if !r.constraints.is_empty() {
        let _ = writeln!(
            out,
            "constraints {}: {} of {} candidates meet them; both measures count only those",
            r.constraints.join(" and "),
            r.feasible,
            r.pool_size
        );
    }
    let _ = writeln!(
        out,
        "{:<12} {:<13} {:>8} {:>8} {:>24} {:<18} {:<18}",
        "strategy",
        "measure",
        "final",
        "random",
        "difference [95% CI]",
        "verdict (final)",
        "verdict (area)"
    );
    for v in &r.verdicts {
        let ci = format!(
            "{:+.3} [{:+.3}, {:+.3}]",
            v.final_round.mean_difference, v.final_round.low, v.final_round.high
        );
        let _ = writeln!(
            out,
            "{:<12} {:<13} {:>8.3} {:>8.3} {:>24} {:<18} {:<18}",
            v.strategy,
            v.metric,
            v.strategy_mean,
            v.random_mean,
            ci,
            v.final_round.verdict.as_str(),
            v.area.verdict.as_str()
        );
    }
    let _ = writeln!(
        out,
        "hypervolume: of the labeled set over the pool's (reference {}); positive differences favour the strategy",
        r.reference_point
            .iter()
            .map(|v| format!("{v:.4}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendChoice;
    use crate::engine::BatchSize;
    use crate::gp::ModelSpec;
    use crate::sim::synth::{generate, Scenario};

    /// A `pareto` synth pool of `n` on `dim` features with `objectives` (columns `f1`, `f2`)
    /// and, with `f3`, that column too (maximised); and every `f3` value.
    fn synth_pool(
        n: usize,
        dim: usize,
        seed: u64,
        objectives: &Objectives,
        f3: bool,
    ) -> (MultiLabeledPool, Vec<f64>) {
        let s = generate(Scenario::Pareto, n, dim, seed).unwrap();
        let mut specs = objectives.to_vec();
        let columns = if f3 {
            specs.push(ObjectiveSpec::max("f3"));
            3
        } else {
            2
        };
        let pool = MultiLabeledPool {
            features: s.pool.features,
            ids: (0..n).map(|i| i.to_string()).collect(),
            values: s.objectives[..columns].to_vec(),
            objectives: specs,
        };
        (pool, s.objectives[2].clone())
    }

    /// `strategies` on `objectives` on the CPU: `init`, `batch` and `topk` counts, `rounds`
    /// and `reps`, `model`.
    fn config(
        objectives: &Objectives,
        strategies: Vec<ParetoAcquisition>,
        [init, batch, topk]: [usize; 3],
        (rounds, reps): (usize, usize),
        model: ModelSpec,
    ) -> ParetoSimConfig {
        let mut cfg = ParetoSimConfig::new(objectives.clone());
        cfg.strategies = strategies;
        let sc = &mut cfg.sim;
        (sc.init, sc.batch, sc.topk) = (
            BatchSize::Count(init),
            BatchSize::Count(batch),
            BatchSize::Count(topk),
        );
        (sc.rounds, sc.reps) = (rounds, reps);
        sc.backend = BackendChoice::Cpu;
        sc.model = model;
        cfg
    }

    /// Fixed hyperparameters, one lengthscale: every model shares the kernel block.
    fn fixed() -> ModelSpec {
        ModelSpec {
            lengthscale: Some(1.0),
            signal_var: Some(1.0),
            noise: Some(0.01),
            ..ModelSpec::default()
        }
    }

    /// Runs `cfg` brute force, then pruned, and checks that the pruned run pruned and acquired
    /// what brute force did, round for round; returns the pruned run.
    fn pruned_equals_brute(pool: &MultiLabeledPool, cfg: &ParetoSimConfig) -> ParetoSimResult {
        let mut cfg = cfg.clone();
        cfg.sim.prune = false;
        let brute = simulate_objectives(pool, &cfg).unwrap();
        cfg.sim.prune = true;
        let pruned = simulate_objectives(pool, &cfg).unwrap();
        let case = format!("{:?} {:?}", cfg.strategies, cfg.sim.mode);
        assert!(pruned.pruned && !brute.pruned, "{case}");
        assert_eq!(pruned.acquired, brute.acquired, "{case}");
        assert_eq!(pruned.curves, brute.curves, "{case}");
        pruned
    }

    /// Pruned rounds (EHVI and ParEGO on one shared block, top-k and diverse) acquire what
    /// brute force does, round for round.
    #[test]
    fn pruned_simulations_acquire_what_brute_force_does() {
        let objectives: Objectives = "f1:max,f2:max".parse().unwrap();
        let (pool, _) = synth_pool(1500, 2, 3, &objectives, false);
        for mode in [BatchMode::TopK, BatchMode::Diverse] {
            let strategies = match mode {
                BatchMode::TopK => vec![ParetoAcquisition::Ehvi, ParetoAcquisition::Parego],
                _ => vec![ParetoAcquisition::Ehvi],
            };
            let mut cfg = config(&objectives, strategies, [20, 10, 30], (3, 2), fixed());
            cfg.sim.mode = mode;
            assert!(pruned_equals_brute(&pool, &cfg).shared_kernel_block);
        }
    }

    /// With a constraint the measures count only the candidates that meet it (the pool's
    /// front is the feasible one), and a constrained strategy acquires more feasible
    /// candidates than the same strategy without it; constrained EHVI rounds are pruned and
    /// acquire what brute force does; a constraint that no candidate meets is refused by name.
    #[test]
    fn constrained_simulations_measure_and_seek_the_feasible() {
        let objectives: Objectives = "f1:max,f2:max".parse().unwrap();
        let (free_pool, f3) = synth_pool(1500, 2, 3, &objectives, false);
        let (pool, _) = synth_pool(1500, 2, 3, &objectives, true);
        let mut sorted = f3.clone();
        sorted.sort_by(f64::total_cmp);
        let constraint: Constraint = format!("f3>={}", sorted[750]).parse().unwrap();
        let strategies = vec![ParetoAcquisition::Ehvi, ParetoAcquisition::ParetoUcb];
        let mut cfg = config(&objectives, strategies, [20, 20, 30], (4, 2), fixed());
        let free = simulate_objectives(&free_pool, &cfg).unwrap();
        // The constrained configuration needs the constraint's column in the pool.
        cfg.constraints = vec![constraint.clone()];
        let refused = simulate_objectives(&free_pool, &cfg)
            .unwrap_err()
            .to_string();
        assert!(refused.contains("other columns"), "{refused}");
        let bound = pruned_equals_brute(&pool, &cfg);
        let meets = f3.iter().filter(|&&v| constraint.holds(v)).count();
        assert_eq!((free.feasible, bound.feasible), (1500, meets));
        assert_eq!(bound.constraints, vec![constraint.to_string()]);
        let table = pareto_verdict_table(&bound);
        assert!(
            table.contains(&format!("constraints {constraint}: {meets} of 1500")),
            "{table}"
        );
        assert!(bound.curves.iter().all(|c| (0.0..=1.0).contains(&c.value)));
        // The same initial sets, measured on the feasible candidates only.
        assert_eq!(free.initial_sets, bound.initial_sets);
        let start = |r: &ParetoSimResult| r.curves[0].value;
        assert_ne!(start(&free), start(&bound));
        let share = |r: &ParetoSimResult, k: usize| {
            let acquired = &r.acquired[k][r.init..];
            acquired
                .iter()
                .filter(|&&i| constraint.holds(f3[i]))
                .count() as f64
                / acquired.len() as f64
        };
        for k in [1, 2] {
            assert!(
                share(&bound, k) > share(&free, k) + 0.2,
                "{}: {} constrained against {}",
                bound.strategies[k],
                share(&bound, k),
                share(&free, k)
            );
        }
        cfg.constraints = vec![format!("f3>={}", sorted[1499] + 1.0).parse().unwrap()];
        let none = simulate_objectives(&pool, &cfg).unwrap_err().to_string();
        assert!(
            none.contains("no candidate of the pool meets f3>="),
            "{none}"
        );
    }

    /// Pruned ParEGO rounds with fitted hyperparameters acquire what brute force does, round
    /// for round (the regression of the weighted bounds' stopping rule is the command line's
    /// `pruned_parego_on_enamine_equals_brute_force`).
    #[test]
    fn pruned_parego_rounds_acquire_what_brute_force_does() {
        let objectives: Objectives = "f1:max,f2:min".parse().unwrap();
        let (pool, _) = synth_pool(3000, 3, 11, &objectives, false);
        let model = ModelSpec {
            lengthscale: Some(1.5),
            ..ModelSpec::default()
        };
        let strategies = vec![ParetoAcquisition::Parego];
        let cfg = config(&objectives, strategies, [30, 30, 30], (5, 2), model);
        pruned_equals_brute(&pool, &cfg);
    }
}
