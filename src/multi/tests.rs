//! Tests of the multi-objective round against brute force on every candidate.

use std::path::Path;

use super::*;
use crate::backend::{BackendChoice, CpuScorer};
use crate::data::{MemoryPool, ObjectiveSpec};
use crate::engine::BatchSize;
use crate::gp::ModelSpec;
use crate::pareto::{ehvi, pareto_batch};
use crate::sim::synth::{generate, Scenario};

/// A `pareto` pool of `n` rows and the labels of rows `0..labeled` for `f1` and `f2` (and,
/// with `partial`, `f2` missing on every third row).
fn setup(n: usize, labeled: usize, partial: bool) -> (Features, MultiLabels) {
    let s = generate(Scenario::Pareto, n, 2, 7).unwrap();
    let ids: Vec<String> = (0..labeled).map(|i| i.to_string()).collect();
    let f1 = (0..labeled).map(|i| Some(s.objectives[0][i])).collect();
    let f2 = (0..labeled)
        .map(|i| (!(partial && i % 3 == 0)).then_some(-s.objectives[1][i]))
        .collect();
    let labels = MultiLabels {
        source: "<labels>".into(),
        // f2 is written negated and minimised: the same objective.
        objectives: vec![ObjectiveSpec::max("f1"), ObjectiveSpec::min("f2")],
        ids,
        values: vec![f1, f2],
        lines: Vec::new(),
    };
    (s.pool.features, labels)
}

fn params(acq: ParetoAcquisition, batch: usize) -> MultiParams {
    let mut p = MultiParams::new("f1:max,f2:min".parse().unwrap());
    p.acquisition = acq;
    p.select.batch = BatchSize::Count(batch);
    p.select.backend = BackendChoice::Cpu;
    p.select.tile_rows = 100;
    // One lengthscale for both objectives: the models share the kernel block.
    p.select.model = ModelSpec {
        lengthscale: Some(1.0),
        ..ModelSpec::default()
    };
    p
}

fn run(p: &MultiParams, x: &Features, labels: &MultiLabels) -> Result<MultiSelection> {
    let pool = MemoryPool::new(Path::new("<pool>"), x);
    run_select_objectives(p, &pool, labels, &IdList::default())
}

/// Every candidate's posterior under each model alone (the one-objective scorer).
fn posteriors(
    x: &Features,
    labels: &MultiLabels,
    p: &MultiParams,
) -> (Vec<Head>, Vec<Vec<(f32, f32)>>) {
    let union = x.select_rows(&(0..labels.len()).collect::<Vec<_>>());
    let heads = fit_heads(p, &union, labels, &crate::gp::CpuGram).unwrap();
    let post = heads
        .iter()
        .map(|h| {
            let s = CpuScorer::new(&h.gp);
            let (mut m, mut v) = (vec![0f32; x.len()], vec![0f32; x.len()]);
            s.posterior_into(x, &mut m, &mut v).unwrap();
            m.into_iter().zip(v).collect()
        })
        .collect();
    (heads, post)
}

#[test]
fn ehvi_batch_is_the_brute_force_top_k() {
    let (x, labels) = setup(600, 40, false);
    let p = params(ParetoAcquisition::Ehvi, 12);
    let got = run(&p, &x, &labels).unwrap();
    assert!(got.summary.shared_kernel_block);
    let (heads, post) = posteriors(&x, &labels, &p);
    let front = labeled_front(&labels, 2);
    let reference = got.summary.reference_point.clone().unwrap();
    let r: Vec<f64> = reference
        .iter()
        .zip(p.objectives.iter())
        .map(|(v, s)| s.maximised(*v))
        .collect();
    let mut all: Vec<(f64, usize)> = (40..x.len())
        .map(|i| {
            let (mu, sd): (Vec<f64>, Vec<f64>) = (0..2)
                .map(|j| {
                    Scale::of(&heads[j].gp, heads[j].sign).maximised(post[j][i].0, post[j][i].1)
                })
                .unzip();
            (ehvi(&mu, &sd, &front, &r).unwrap(), i)
        })
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let want: Vec<usize> = all[..12].iter().map(|a| a.1).collect();
    let picked: Vec<usize> = got.picks.iter().map(|p| p.index).collect();
    assert_eq!(picked, want);
    for (pick, (v, _)) in got.picks.iter().zip(&all) {
        assert!(
            (pick.score - v).abs() <= 1e-12 * v.abs().max(1.0),
            "{} {v}",
            pick.score
        );
    }
    // The reference point is each objective's worst label less 10% of its range, in the
    // file's units: f2 is minimised, so its reference lies above its labels.
    let f2: Vec<f64> = labels.values[1].iter().flatten().copied().collect();
    let (lo, hi) = f2
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    assert!((reference[1] - (hi + 0.1 * (hi - lo))).abs() < 1e-12);
}

#[test]
fn pareto_ucb_batch_is_the_brute_force_pareto_batch() {
    let (x, labels) = setup(3000, 30, true);
    for batch in [1, 7, 40] {
        let mut p = params(ParetoAcquisition::ParetoUcb, batch);
        p.beta = 1.0;
        let got = run(&p, &x, &labels).unwrap();
        let (_, post) = posteriors(&x, &labels, &p);
        let post = &post;
        let rows: Vec<usize> = (30..x.len()).collect();
        let ucb: Vec<f64> = rows
            .iter()
            .flat_map(|&i| {
                (0..2).map(move |j| {
                    let (m, v) = post[j][i];
                    f64::from(m) + f64::from(v).max(0.0).sqrt()
                })
            })
            .collect::<Vec<_>>();
        let want: Vec<usize> = pareto_batch(&ucb, 2, batch)
            .unwrap()
            .into_iter()
            .map(|k| rows[k])
            .collect();
        let picked: Vec<usize> = got.picks.iter().map(|p| p.index).collect();
        assert_eq!(picked, want, "batch {batch}");
        assert!(
            got.picks.windows(2).all(|w| w[0].score <= w[1].score),
            "layers in order"
        );
        assert_eq!(got.picks[0].score, 1.0);
    }
}

#[test]
fn missing_values_fit_each_objective_on_its_own_labels() {
    let (x, labels) = setup(300, 30, true);
    let got = run(&params(ParetoAcquisition::Ehvi, 5), &x, &labels).unwrap();
    let s = &got.summary;
    assert_eq!(s.labeled, 30);
    assert_eq!((s.fits[0].labeled, s.fits[1].labeled), (30, 20));
    assert_eq!(s.complete, 20);
    assert!(
        s.shared_kernel_block,
        "subsets of one labeled set share the block"
    );
    assert!(got.picks.iter().all(|p| p.index >= 30));
}

#[test]
fn parego_is_seeded_and_refits_on_the_scalarised_labels() {
    let (x, labels) = setup(400, 30, false);
    let p = params(ParetoAcquisition::Parego, 8);
    let a = run(&p, &x, &labels).unwrap();
    let b = run(&p, &x, &labels).unwrap();
    assert_eq!(a.picks, b.picks);
    // min(batch, 8) weight vectors, one scalarised model each.
    assert_eq!(a.summary.fits.len(), 2 + 8);
    assert_eq!(a.summary.fits[2].column, "parego1");
    let w = a.summary.parego_weights.clone().unwrap();
    assert_eq!(w.len(), 8);
    for v in &w {
        assert!((v.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    assert_ne!(w[0], w[1]);
    let distinct: std::collections::HashSet<usize> = a.picks.iter().map(|p| p.index).collect();
    assert_eq!(distinct.len(), 8);
    let mut small = p.clone();
    small.select.batch = BatchSize::Count(3);
    assert_eq!(run(&small, &x, &labels).unwrap().summary.fits.len(), 2 + 3);
    let mut q = p.clone();
    q.select.round = 1;
    let c = run(&q, &x, &labels).unwrap();
    assert_ne!(c.summary.parego_weights, a.summary.parego_weights);
}

#[test]
fn constraints_weigh_scores_by_the_probability_of_feasibility() {
    let (x, labels) = setup(400, 40, false);
    let mut p = params(ParetoAcquisition::Ehvi, 10);
    let plain = run(&p, &x, &labels).unwrap();
    p.constraints = vec!["f1>=0.6".parse().unwrap()];
    let got = run(&p, &x, &labels).unwrap();
    for pick in &got.picks {
        let pf = pick.p_feasible.unwrap();
        assert!((0.0..=1.0).contains(&pf));
    }
    assert!(got.summary.best_p_feasible.unwrap() > 0.5);
    // The constraint moves the batch towards high f1.
    let mean_f1 = |s: &MultiSelection| s.picks.iter().map(|p| p.mean[0]).sum::<f64>() / 10.0;
    assert!(
        mean_f1(&got) > mean_f1(&plain),
        "{} {}",
        mean_f1(&got),
        mean_f1(&plain)
    );
    // A column only a constraint names gets its own model.
    let mut labels3 = labels.clone();
    labels3.objectives.push(ObjectiveSpec::max("g"));
    labels3
        .values
        .push((0..40).map(|i| Some(i as f64)).collect());
    p.constraints = vec!["g<=100".parse().unwrap()];
    let got = run(&p, &x, &labels3).unwrap();
    assert_eq!(got.summary.columns, ["f1", "f2", "g"]);
    assert_eq!(got.picks[0].mean.len(), 3);
    // Nobody meets f1 ≥ 50 (every value is at most 1).
    p.constraints = vec!["f1>=50".parse().unwrap()];
    let e = run(&p, &x, &labels).unwrap_err().to_string();
    assert!(e.contains("no candidate is likely to meet f1>=50"), "{e}");
}

#[test]
fn bad_settings_are_refused_by_name() {
    let (x, labels) = setup(200, 20, false);
    let mut p = params(ParetoAcquisition::Ehvi, 5);
    p.ref_point = Some(vec![0.0]);
    assert!(run(&p, &x, &labels)
        .unwrap_err()
        .to_string()
        .contains("ref_point"));
    p.ref_point = Some(vec![0.0, 0.0]);
    p.acquisition = ParetoAcquisition::ParetoUcb;
    assert!(run(&p, &x, &labels)
        .unwrap_err()
        .to_string()
        .contains("ref_point"));
    let mut p = params(ParetoAcquisition::Ehvi, 5);
    p.select.mode = BatchMode::Softmax;
    assert!(run(&p, &x, &labels)
        .unwrap_err()
        .to_string()
        .contains("mode"));
    let mut one = labels.clone();
    one.values[1] = (0..20).map(|i| (i == 3).then_some(1.0)).collect();
    let e = run(&params(ParetoAcquisition::Ehvi, 5), &x, &one)
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"f2\" has 1 labels"), "{e}");
}

#[test]
fn diverse_ehvi_batches_spread_over_the_front() {
    let (x, labels) = setup(800, 30, false);
    let mut p = params(ParetoAcquisition::Ehvi, 10);
    let top = run(&p, &x, &labels).unwrap();
    p.select.mode = BatchMode::Diverse;
    p.select.shortlist = Some(200);
    let div = run(&p, &x, &labels).unwrap();
    assert_eq!(div.picks.len(), 10);
    assert_eq!(
        div.picks[0].index, top.picks[0].index,
        "the first pick is the best value"
    );
    assert_ne!(div.picks, top.picks);
    // Closest pair of picks in feature space: the believer keeps picks apart.
    let closest = |s: &MultiSelection| {
        let Features::Dense { dim, data } = &x else {
            unreachable!()
        };
        let row = |i: usize| &data[i * dim..(i + 1) * dim];
        let mut best = f32::INFINITY;
        for a in &s.picks {
            for b in &s.picks {
                if a.index < b.index {
                    let d: f32 = row(a.index)
                        .iter()
                        .zip(row(b.index))
                        .map(|(u, v)| (u - v) * (u - v))
                        .sum();
                    best = best.min(d);
                }
            }
        }
        best
    };
    assert!(
        closest(&div) > closest(&top),
        "{} {}",
        closest(&div),
        closest(&top)
    );
    // Each later pick's value counts what the earlier picks did not cover: it is at most
    // what it scored alone in the top-k ranking.
    for w in div.picks.windows(2) {
        assert!(w[1].score <= w[0].score + 1e-12);
    }
    for acq in [ParetoAcquisition::ParetoUcb, ParetoAcquisition::Parego] {
        let mut q = params(acq, 10);
        q.select.mode = BatchMode::Diverse;
        let e = run(&q, &x, &labels).unwrap_err().to_string();
        assert!(e.contains("mode") && e.contains("use topk"), "{e}");
    }
    let mut q = params(ParetoAcquisition::Ehvi, 10);
    q.select.shortlist = Some(50);
    assert!(run(&q, &x, &labels)
        .unwrap_err()
        .to_string()
        .contains("shortlist"));
}

/// The pruned pass (bounds at the prior and at partial variances, the shared block's staged
/// variances) picks brute force's batch, bit for bit, for `ehvi` top-k and diverse, `phvi`,
/// `parego`, with and without constraints, labels missing for one objective (models of
/// different sizes, different stages), on one thread and three (other waves); it does skip
/// variances, `phvi`'s among them.
#[test]
fn pruned_batches_are_brute_force_batches() {
    let (mut skipped, mut phvi_skipped, mut ucb_skipped) = (0, 0, 0);
    for (partial, labeled) in [(false, 40), (true, 60)] {
        let (x, labels) = setup(3000, labeled, partial);
        let mut cases = vec![
            params(ParetoAcquisition::Ehvi, 12),
            params(ParetoAcquisition::Parego, 8),
            params(ParetoAcquisition::Ehvi, 1),
            params(ParetoAcquisition::Phvi, 10),
            params(ParetoAcquisition::ParetoUcb, 12),
            params(ParetoAcquisition::ParetoUcb, 1),
        ];
        let mut div = params(ParetoAcquisition::Ehvi, 6);
        div.select.mode = BatchMode::Diverse;
        div.select.shortlist = Some(60);
        cases.push(div.clone());
        // Constraints near each column's median label: the probability of feasibility is
        // bounded apart from the hypervolume (1 where the mean meets it).
        let median = |k: usize| {
            let mut v: Vec<f64> = labels.values[k].iter().flatten().copied().collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (c1, c2) = (
            format!("f1>={}", median(0)).parse::<Constraint>().unwrap(),
            format!("f2<={}", median(1)).parse::<Constraint>().unwrap(),
        );
        for (mut p, constraints) in [
            (params(ParetoAcquisition::Ehvi, 12), vec![c1.clone()]),
            (params(ParetoAcquisition::Phvi, 7), vec![c2.clone()]),
            (params(ParetoAcquisition::Parego, 8), vec![c2.clone()]),
            (params(ParetoAcquisition::ParetoUcb, 9), vec![c1.clone()]),
            (div, vec![c1.clone(), c2.clone()]),
        ] {
            p.constraints = constraints;
            cases.push(p);
        }
        for mut p in cases {
            p.select.tile_rows = 700;
            p.select.prune = false;
            let brute = run(&p, &x, &labels).unwrap();
            assert!(!brute.summary.pruned);
            assert_eq!(brute.summary.variances, brute.summary.candidates);
            p.select.prune = true;
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let got = pool.install(|| run(&p, &x, &labels)).unwrap();
                let case = format!(
                    "{:?} {:?} batch {} partial {partial} threads {threads}",
                    p.acquisition, p.select.mode, brute.summary.batch
                );
                assert!(got.summary.pruned, "{case}");
                assert_eq!(got.picks, brute.picks, "{case}");
                assert!(got.summary.variances <= got.summary.candidates, "{case}");
                let skip = got.summary.candidates - got.summary.variances;
                skipped += skip;
                match p.acquisition {
                    ParetoAcquisition::Phvi => phvi_skipped += skip,
                    ParetoAcquisition::ParetoUcb => ucb_skipped += skip,
                    _ => {}
                }
            }
        }
    }
    assert!(skipped > 0, "the bounds dropped no candidate");
    assert!(phvi_skipped > 0, "phvi's bounds dropped no candidate");
    assert!(ucb_skipped > 0, "pareto-ucb's bounds dropped no candidate");
    let (x, labels) = setup(600, 40, false);
    // A constraint no candidate is likely to meet: the pruned run stops with brute force's
    // message (the pool's highest probability, found by a brute-force pass).
    let mut p = params(ParetoAcquisition::Ehvi, 5);
    p.constraints = vec!["f1>=1e6".parse().unwrap()];
    let pruned = run(&p, &x, &labels).unwrap_err().to_string();
    p.select.prune = false;
    let brute = run(&p, &x, &labels).unwrap_err().to_string();
    assert_eq!(pruned, brute);
    assert!(
        brute.contains("no candidate is likely to meet f1>="),
        "{brute}"
    );
}
