//! The report for several objectives (`dock:min,qed:max`): the whole one-objective report per
//! objective, a cross-objective section (rank correlations of the labeled objectives, the size
//! of the labeled Pareto front) and an overall verdict drawn from the objectives' verdicts.
//!
//! Each objective is diagnosed on its own labels by [`run_diagnose`], so it gets its own
//! model, cross-validation, batch and verdict; the pool is read twice per objective.

use std::path::PathBuf;
use std::time::Instant;

use super::verdict::{Verdict, Word};
use super::{run_diagnose, DiagnoseConfig, Report};
use crate::data::{IdList, MultiLabels, ObjectiveSpec, Pool};
use crate::error::{Error, Result};
use crate::pareto::nondominated_layers;
use crate::sim::metrics::spearman;

/// Correlations below this are called conflicting: the objectives trade off, and the labeled
/// front is wide.
pub const CONFLICTING: f64 = -0.3;

/// Correlations above this are called aligned: ranking by one objective ranks by the other.
pub const ALIGNED: f64 = 0.7;

/// Fewest shared labeled rows for a correlation (two points always give ±1).
pub const MIN_SHARED: usize = 3;

/// The whole multi-objective report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MultiReport {
    /// The labels file.
    pub labels: PathBuf,
    /// The cross-objective section.
    pub cross: CrossSection,
    /// The overall verdict.
    pub verdict: MultiVerdict,
    /// One report per objective, in the order given.
    pub objectives: Vec<ObjectiveReport>,
    /// Wall-clock seconds of the whole report.
    pub seconds: f64,
}

/// One objective's report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ObjectiveReport {
    /// The labels column.
    pub column: String,
    /// Lower values are better.
    pub minimize: bool,
    /// The one-objective report on the rows labeled for this objective.
    pub report: Report,
}

impl ObjectiveReport {
    /// `column:min` or `column:max`, as in `--objectives`.
    pub fn name(&self) -> String {
        format!(
            "{}:{}",
            self.column,
            if self.minimize { "min" } else { "max" }
        )
    }
}

/// The rank correlation of two objectives.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PairCorrelation {
    /// The first objective's column.
    pub a: String,
    /// The second objective's column.
    pub b: String,
    /// Labeled rows with a value for both.
    pub rows: usize,
    /// Spearman's ρ of the two on those rows, both on the maximisation scale (a minimised
    /// objective negated), so a negative ρ means improving one worsens the other. `None` with
    /// fewer than [`MIN_SHARED`] rows, or when either side is constant on them.
    pub spearman: Option<f64>,
}

/// The cross-objective section.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CrossSection {
    /// Every pair of objectives, in the order given (`(0, 1)`, `(0, 2)`, `(1, 2)`).
    pub pairs: Vec<PairCorrelation>,
    /// Labeled rows with a value for every objective.
    pub complete: usize,
    /// Of those, the rows on the first non-dominated layer (all objectives maximised).
    pub front: usize,
    /// What it means.
    pub reading: String,
}

/// The overall verdict.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MultiVerdict {
    /// The word: the objectives' word when they all agree, else `uncertain`.
    pub verdict: Word,
    /// The objectives (columns) whose verdict is not `likely-beats-random`, in order.
    pub weak: Vec<String>,
    /// What it means and what to do.
    pub reading: String,
}

/// Runs [`run_diagnose`] once per objective of `labels` (on the rows labeled for it, with
/// `minimize` from the objective; every other setting from `cfg`), then the cross-objective
/// section ([`cross_section`]) and the overall verdict ([`overall`]).
///
/// # Errors
/// [`Error::InvalidParam`] on `objectives` when `labels` has no objectives or an objective has
/// fewer than 2 labeled rows (naming its column), and on `folds` when an objective has fewer
/// labeled rows than the cross-validation needs, both before any pass over the pool; the
/// errors of [`run_diagnose`], an [`Error::InvalidParam`] among them with its message prefixed
/// by the objective's column.
pub fn run_diagnose_objectives(
    cfg: &DiagnoseConfig,
    pool: &dyn Pool,
    labels: &MultiLabels,
    test: &IdList,
) -> Result<MultiReport> {
    let started = Instant::now();
    if labels.objectives.is_empty() || labels.values.len() != labels.objectives.len() {
        return Err(Error::param(
            "objectives",
            format!(
                "{}: {} objectives with {} value columns; need at least one, a column each",
                labels.source.display(),
                labels.objectives.len(),
                labels.values.len()
            ),
        ));
    }
    // Every objective's labels first, so a sparse column fails before any pass over the pool.
    let mut per = Vec::with_capacity(labels.objectives.len());
    for (k, spec) in labels.objectives.iter().enumerate() {
        let one = labels.objective(k).unwrap_or_default();
        if one.values.len() < 2 {
            return Err(Error::param(
                "objectives",
                format!(
                    "{}: column {:?} has {} labeled row(s); a model needs at least 2",
                    labels.source.display(),
                    spec.column,
                    one.values.len()
                ),
            ));
        }
        super::cv::check_folds(one.values.len(), cfg.folds).map_err(|e| in_objective(e, spec))?;
        per.push(one);
    }
    let cross = cross_section(labels)?;
    let mut objectives = Vec::with_capacity(per.len());
    for (spec, one) in labels.objectives.iter().zip(&per) {
        let mut c = cfg.clone();
        c.select.minimize = spec.minimize;
        let report = run_diagnose(&c, pool, one, test).map_err(|e| in_objective(e, spec))?;
        objectives.push(ObjectiveReport {
            column: spec.column.clone(),
            minimize: spec.minimize,
            report,
        });
    }
    let verdicts: Vec<(&str, &Verdict)> = objectives
        .iter()
        .map(|o| (o.column.as_str(), &o.report.verdict))
        .collect();
    let verdict = overall(&verdicts);
    Ok(MultiReport {
        labels: labels.source.clone(),
        cross,
        verdict,
        objectives,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `e` with the objective's column in front of an [`Error::InvalidParam`]'s message (the
/// field, and so the flag the command line names, is kept).
fn in_objective(e: Error, spec: &ObjectiveSpec) -> Error {
    match e {
        Error::InvalidParam { name, msg } => Error::InvalidParam {
            name,
            msg: format!("objective {}: {msg}", spec.column),
        },
        e => e,
    }
}

/// The cross-objective section of `labels`: Spearman's ρ of every pair of objectives on the
/// rows labeled for both (maximisation scale), the rows labeled for all and how many of them
/// lie on the first non-dominated layer, and a reading: any pair below [`CONFLICTING`] means
/// the objectives trade off and a Pareto acquisition matters; every pair above [`ALIGNED`]
/// means one objective may do; else they are partly aligned.
///
/// # Errors
/// [`Error::InvalidParam`] when `labels` has no objectives or a value column per objective is
/// missing, or a value is not finite.
pub fn cross_section(labels: &MultiLabels) -> Result<CrossSection> {
    let specs = &labels.objectives;
    let m = specs.len();
    if m == 0 || labels.values.len() != m {
        return Err(Error::param(
            "objectives",
            format!(
                "{} objectives with {} value columns",
                m,
                labels.values.len()
            ),
        ));
    }
    let mut pairs = Vec::new();
    for a in 0..m {
        for b in a + 1..m {
            let (mut xa, mut xb) = (Vec::new(), Vec::new());
            for (va, vb) in labels.values[a].iter().zip(&labels.values[b]) {
                if let (Some(va), Some(vb)) = (va, vb) {
                    xa.push(specs[a].maximised(*va));
                    xb.push(specs[b].maximised(*vb));
                }
            }
            let rho = spearman(&xa, &xb);
            pairs.push(PairCorrelation {
                a: specs[a].column.clone(),
                b: specs[b].column.clone(),
                rows: xa.len(),
                spearman: (xa.len() >= MIN_SHARED && rho.is_finite()).then_some(rho),
            });
        }
    }
    let (rows, points) = labels.complete_maximised();
    let front = nondominated_layers(&points, m)?.first().map_or(0, Vec::len);
    let reading = cross_reading(&pairs, rows.len(), front);
    Ok(CrossSection {
        pairs,
        complete: rows.len(),
        front,
        reading,
    })
}

fn cross_reading(pairs: &[PairCorrelation], complete: usize, front: usize) -> String {
    let on_front =
        format!("{front} of {complete} rows labeled for every objective are on the front");
    if pairs.is_empty() {
        return format!("one objective, no trade-off; {on_front}");
    }
    let known: Vec<&PairCorrelation> = pairs.iter().filter(|p| p.spearman.is_some()).collect();
    if known.is_empty() {
        return format!(
            "too few rows labeled for two objectives at once (fewer than {MIN_SHARED}) or a constant objective: the trade-off is unknown; {on_front}"
        );
    }
    let rho = |p: &PairCorrelation| p.spearman.unwrap_or(f64::NAN);
    let worst = known
        .iter()
        .min_by(|x, y| rho(x).total_cmp(&rho(y)))
        .expect("known is non-empty");
    if rho(worst) < CONFLICTING {
        format!(
            "{} and {} conflict (ρ = {:.2}): {on_front}, so a Pareto acquisition matters",
            worst.a,
            worst.b,
            rho(worst)
        )
    } else if known.len() == pairs.len() && known.iter().all(|p| rho(p) > ALIGNED) {
        format!(
            "the objectives are aligned (every ρ > {ALIGNED}, least {:.2}): {on_front}; a single objective may do",
            rho(worst)
        )
    } else {
        format!(
            "the objectives are partly aligned (least ρ = {:.2}, {} and {}): {on_front}",
            rho(worst),
            worst.a,
            worst.b
        )
    }
}

/// The overall verdict from the objectives' verdicts (`(column, verdict)`, in order): when
/// every objective's verdict is the same word, that word; when they differ, `uncertain`, since
/// the Pareto search is then guided along some objectives and blind along others. The weak
/// objectives are those whose verdict is not `likely-beats-random`, each named in the reading
/// with the rule that drove its verdict.
pub fn overall(verdicts: &[(&str, &Verdict)]) -> MultiVerdict {
    let words: Vec<Word> = verdicts.iter().map(|(_, v)| v.verdict).collect();
    let verdict = match words.first() {
        Some(&w) if words.iter().all(|&x| x == w) => w,
        _ => Word::Uncertain,
    };
    let weak: Vec<(&str, &Verdict)> = verdicts
        .iter()
        .filter(|(_, v)| v.verdict != Word::LikelyBeatsRandom)
        .copied()
        .collect();
    let named: Vec<String> = weak
        .iter()
        .map(|(c, v)| {
            let rules: Vec<&str> = v.reasons.iter().map(|r| r.rule).collect();
            if rules.is_empty() {
                format!("{c} ({})", v.verdict.as_str())
            } else {
                format!("{c} ({}: {})", v.verdict.as_str(), rules.join(", "))
            }
        })
        .collect();
    let reading = if verdicts.is_empty() {
        "no objectives".to_string()
    } else if weak.is_empty() {
        "every objective's model is likely to beat random: run the multi-objective loop".into()
    } else if weak.len() == verdicts.len() {
        format!(
            "no objective's model is likely to beat random: {}; fix these first (see each objective's reasons)",
            named.join("; ")
        )
    } else {
        format!(
            "the model is weak for {}: the search is guided by the other objectives only; label more for it, change its features or kernel, or drop it from --objectives",
            named.join("; ")
        )
    };
    MultiVerdict {
        verdict,
        weak: weak.iter().map(|(c, _)| c.to_string()).collect(),
        reading,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pareto::dominates;

    fn multi(specs: Vec<ObjectiveSpec>, values: Vec<Vec<Option<f64>>>) -> MultiLabels {
        let n = values[0].len();
        MultiLabels {
            source: "mem.csv".into(),
            objectives: specs,
            ids: (0..n).map(|i| i.to_string()).collect(),
            values,
            lines: Vec::new(),
        }
    }

    /// A seeded stream of values in [0, 1) (SplitMix64).
    fn uniform(seed: u64, n: usize) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = s;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect()
    }

    #[test]
    fn diagnose_cross_an_objective_and_its_negation_have_rho_minus_one() {
        let x = uniform(1, 50);
        let some = |v: &[f64]| v.iter().map(|&v| Some(v)).collect::<Vec<_>>();
        let neg: Vec<f64> = x.iter().map(|v| -v).collect();
        // Both maximised, one the other's negation.
        let l = multi(
            vec![ObjectiveSpec::max("a"), ObjectiveSpec::max("b")],
            vec![some(&x), some(&neg)],
        );
        let c = cross_section(&l).unwrap();
        assert_eq!(c.pairs.len(), 1);
        assert_eq!(c.pairs[0].rows, 50);
        let rho = c.pairs[0].spearman.unwrap();
        assert!((rho + 1.0).abs() < 1e-12, "{rho}");
        // Every point is on the front of two perfectly conflicting objectives.
        assert_eq!((c.complete, c.front), (50, 50));
        assert!(c.reading.contains("conflict"), "{}", c.reading);
        // The same column minimised is the negation on the maximisation scale.
        let l = multi(
            vec![ObjectiveSpec::max("a"), ObjectiveSpec::min("a2")],
            vec![some(&x), some(&x)],
        );
        let rho = cross_section(&l).unwrap().pairs[0].spearman.unwrap();
        assert!((rho + 1.0).abs() < 1e-12, "{rho}");
        // Both minimised: aligned, one point on the front.
        let l = multi(
            vec![ObjectiveSpec::min("a"), ObjectiveSpec::min("a2")],
            vec![some(&x), some(&x)],
        );
        let c = cross_section(&l).unwrap();
        assert!((c.pairs[0].spearman.unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(c.front, 1);
        assert!(c.reading.contains("aligned"), "{}", c.reading);
    }

    #[test]
    fn diagnose_cross_skips_missing_values_and_counts_the_front_directly() {
        let n = 200;
        let specs = vec![
            ObjectiveSpec::max("a"),
            ObjectiveSpec::min("b"),
            ObjectiveSpec::max("c"),
        ];
        let cols: Vec<Vec<f64>> = (0..3).map(|k| uniform(10 + k, n)).collect();
        let holes = uniform(99, 3 * n);
        // About a fifth of the cells missing.
        let values: Vec<Vec<Option<f64>>> = (0..3)
            .map(|k| {
                (0..n)
                    .map(|i| (holes[k * n + i] > 0.2).then_some(cols[k][i]))
                    .collect()
            })
            .collect();
        let l = multi(specs.clone(), values.clone());
        let c = cross_section(&l).unwrap();
        let complete: Vec<Vec<f64>> = (0..n)
            .filter_map(|i| {
                (0..3)
                    .map(|k| values[k][i].map(|v| specs[k].maximised(v)))
                    .collect::<Option<Vec<f64>>>()
            })
            .collect();
        assert_eq!(c.complete, complete.len());
        let front = complete
            .iter()
            .filter(|p| !complete.iter().any(|q| dominates(q, p)))
            .count();
        assert_eq!(c.front, front);
        assert!(front >= 2, "{front}");
        let shared = (0..n)
            .filter(|&i| values[0][i].is_some() && values[1][i].is_some())
            .count();
        assert_eq!(c.pairs[0].rows, shared);
        assert_eq!(
            c.pairs
                .iter()
                .map(|p| (p.a.as_str(), p.b.as_str()))
                .collect::<Vec<_>>(),
            [("a", "b"), ("a", "c"), ("b", "c")]
        );
        assert!(c
            .pairs
            .iter()
            .all(|p| p.spearman.is_some_and(f64::is_finite)));
    }

    #[test]
    fn diagnose_cross_too_few_shared_rows_has_no_correlation() {
        let l = multi(
            vec![ObjectiveSpec::max("a"), ObjectiveSpec::max("b")],
            vec![
                vec![Some(1.0), Some(2.0), None, None],
                vec![Some(2.0), Some(1.0), Some(3.0), Some(4.0)],
            ],
        );
        let c = cross_section(&l).unwrap();
        assert_eq!((c.pairs[0].rows, c.pairs[0].spearman), (2, None));
        assert!(c.reading.contains("unknown"), "{}", c.reading);
    }

    fn verdict(w: Word) -> Verdict {
        Verdict {
            verdict: w,
            reasons: vec![super::super::verdict::Reason {
                rule: "no-skill",
                measure: String::new(),
                value: 0.0,
                threshold: 0.0,
                advice: String::new(),
            }],
            flags: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn diagnose_overall_is_the_shared_word_else_uncertain_and_names_the_weak() {
        let (good, bad, unsure) = (
            verdict(Word::LikelyBeatsRandom),
            verdict(Word::LikelyRandomLike),
            verdict(Word::Uncertain),
        );
        let v = overall(&[("dock", &good), ("qed", &good)]);
        assert_eq!(v.verdict, Word::LikelyBeatsRandom);
        assert!(v.weak.is_empty());
        let v = overall(&[("dock", &good), ("qed", &bad)]);
        assert_eq!(v.verdict, Word::Uncertain);
        assert_eq!(v.weak, ["qed"]);
        assert!(
            v.reading.contains("qed (likely-random-like: no-skill)"),
            "{}",
            v.reading
        );
        let v = overall(&[("dock", &bad), ("qed", &bad)]);
        assert_eq!(v.verdict, Word::LikelyRandomLike);
        assert_eq!(v.weak, ["dock", "qed"]);
        let v = overall(&[("dock", &unsure), ("qed", &good), ("sa", &good)]);
        assert_eq!(v.verdict, Word::Uncertain);
        assert_eq!(v.weak, ["dock"]);
    }

    #[test]
    fn diagnose_objectives_runs_one_report_per_objective() {
        use crate::data::MemoryPool;
        use crate::sim::synth::{generate, Scenario};
        let data = generate(Scenario::Pareto, 400, 2, 1).unwrap();
        let name = std::path::PathBuf::from("mem.npy");
        let pool = MemoryPool::new(&name, &data.pool.features);
        // Rows 0..60 labeled; f2's value missing on every third of them; f1 minimised.
        let rows = 60;
        let l = MultiLabels {
            source: "mem.csv".into(),
            objectives: vec![ObjectiveSpec::max("f1"), ObjectiveSpec::min("f2")],
            ids: (0..rows).map(|i| i.to_string()).collect(),
            values: vec![
                (0..rows).map(|i| Some(data.objectives[0][i])).collect(),
                (0..rows)
                    .map(|i| (i % 3 != 0).then_some(data.objectives[1][i]))
                    .collect(),
            ],
            lines: Vec::new(),
        };
        let mut cfg = DiagnoseConfig::default();
        cfg.select.backend = crate::backend::BackendChoice::Cpu;
        cfg.select.batch = crate::engine::BatchSize::Count(10);
        let r = run_diagnose_objectives(&cfg, &pool, &l, &IdList::default()).unwrap();
        assert_eq!(r.objectives.len(), 2);
        assert_eq!(r.objectives[0].report.setup.labeled, 60);
        assert_eq!(r.objectives[1].report.setup.labeled, 40);
        assert!(!r.objectives[0].report.setup.minimize);
        assert!(r.objectives[1].report.setup.minimize);
        assert_eq!(r.objectives[1].name(), "f2:min");
        assert_eq!(r.cross.pairs[0].rows, 40);
        assert_eq!(r.cross.complete, 40);

        // A column with one labeled row is refused, naming it.
        let mut sparse = l.clone();
        sparse.values[1] = (0..rows).map(|i| (i == 5).then_some(1.0)).collect();
        let e = run_diagnose_objectives(&cfg, &pool, &sparse, &IdList::default()).unwrap_err();
        assert!(e.to_string().contains("\"f2\" has 1 labeled row"), "{e}");
        // An error of one objective's report names the objective.
        cfg.folds = 50;
        let e = run_diagnose_objectives(&cfg, &pool, &l, &IdList::default()).unwrap_err();
        assert!(e.to_string().contains("objective f2: 50-fold"), "{e}");
    }
}
