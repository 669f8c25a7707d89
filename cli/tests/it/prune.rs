//! Pruned scoring against brute force: the batch, its scores, means and sds, and the summary
//! must be the same bit for bit, for every acquisition, both batch modes, the similarity cap,
//! pending candidates, any thread count and tile size, ties at the threshold and batches as
//! large as the eligible pool.

use crate::common;

use common::{fixed_gp, labels, random_bits, random_dense, write_fps, write_labels, Rng};
use poolrank::acquisition::{AcqContext, Acquisition};
use poolrank::backend::{score_all_into, BestOf, CpuScorer, Scorer};
use poolrank::data::{Features, IdList, LabelSpec};
use poolrank::kernel::KernelKind;
use poolrank::pool::FilePool;
use poolrank::select::{Floor, TopK};
use poolrank::{BatchMode, BatchSize, SelectParams, Selection};

const ACQS: [Acquisition; 9] = [
    Acquisition::Greedy,
    Acquisition::Ucb { beta: 2.0 },
    Acquisition::Ucb { beta: -0.5 },
    Acquisition::Ei { xi: 0.0 },
    Acquisition::Pi { xi: 0.1 },
    Acquisition::Pi { xi: -3.0 },
    Acquisition::ThompsonMarginal,
    Acquisition::Variance,
    Acquisition::Random,
];

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// A fingerprint pool whose rows come in groups of three identical ones (ties at every
/// threshold), with labels and pending ids.
pub(crate) struct Files {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) pending: IdList,
}

pub(crate) fn files(rows: usize, labeled: usize, pending: usize, seed: u64) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(seed);
    let base = random_bits(&mut rng, rows.div_ceil(3), 256, 0.08);
    let mut pool = Features::empty(base.kind());
    for i in 0..rows {
        pool.push_row_from(&base, (i * 7) % base.len());
    }
    let ids: Vec<String> = (0..rows).map(|i| format!("m{i}")).collect();
    write_fps(&dir.path().join("p.fps"), &pool, &ids);
    let lab: Vec<(String, f64)> = (0..labeled)
        .map(|i| (ids[(i * 11 + 3) % rows].clone(), rng.uniform()))
        .collect();
    write_labels(&dir.path().join("l.csv"), &lab);
    let pending = IdList {
        source: "pending".into(),
        ids: (0..pending)
            .map(|i| ids[(i * 13 + 5) % rows].clone())
            .filter(|id| !lab.iter().any(|(l, _)| l == id))
            .collect(),
    };
    Files { dir, pending }
}

fn select(f: &Files, cfg: &SelectParams, threads: usize) -> Selection {
    let pool = FilePool::new(f.dir.path().join("p.fps"));
    let labels = poolrank::data::read_labels(&LabelSpec::new(f.dir.path().join("l.csv"))).unwrap();
    let cfg = cfg.check().unwrap();
    in_pool(threads, || {
        poolrank::run_select(&cfg, &pool, &labels, &f.pending).unwrap()
    })
}

/// The summary as JSON without what may differ: the stage counts and the timings.
fn comparable(s: &Selection) -> serde_json::Value {
    let mut v = serde_json::to_value(&s.summary).unwrap();
    let o = v.as_object_mut().unwrap();
    for k in ["stages", "seconds", "candidates_per_second", "threads"] {
        o.remove(k);
    }
    o["fit"].as_object_mut().unwrap().remove("seconds");
    v
}

fn same_batch(pruned: &Selection, brute: &Selection, what: &str) {
    assert_eq!(pruned.picks.len(), brute.picks.len(), "{what}");
    for (p, b) in pruned.picks.iter().zip(&brute.picks) {
        assert_eq!(
            (
                p.rank,
                &p.id,
                p.index,
                p.score.to_bits(),
                p.mean.to_bits(),
                p.sd.to_bits()
            ),
            (
                b.rank,
                &b.id,
                b.index,
                b.score.to_bits(),
                b.mean.to_bits(),
                b.sd.to_bits()
            ),
            "{what}: {p:?} vs {b:?}"
        );
    }
    assert_eq!(comparable(pruned), comparable(brute), "{what}");
    assert!(pruned.summary.stages.pruned, "{what}");
    assert!(!brute.summary.stages.pruned, "{what}");
    let c = brute.summary.candidates;
    assert_eq!(brute.summary.stages.mean, c, "{what}");
    assert_eq!(brute.summary.stages.variance, c, "{what}");
    assert_eq!(pruned.summary.stages.mean, c, "{what}");
    assert!(pruned.summary.stages.variance <= c, "{what}");
}

fn params(acq: Acquisition, mode: BatchMode, batch: usize, tile: usize) -> SelectParams {
    let mut cfg = SelectParams {
        acquisition: acq,
        mode,
        batch: BatchSize::Count(batch),
        tile_rows: tile,
        seed: 5,
        round: 2,
        backend: poolrank::backend::BackendChoice::Cpu,
        ..SelectParams::default()
    };
    cfg.model.signal_var = Some(1.4);
    cfg.model.noise = Some(0.05);
    cfg
}

#[test]
fn pruned_batch_is_brute_force_for_every_acquisition_and_mode() {
    let f = files(1201, 40, 9, 3);
    for acq in ACQS {
        for (mode, max_sim, batch) in [
            (BatchMode::TopK, None, 12),
            (BatchMode::TopK, Some(0.5), 12),
            (BatchMode::Diverse, None, 8),
        ] {
            let mut cfg = params(acq, mode, batch, 65_536);
            cfg.max_sim = max_sim;
            if max_sim.is_some() || mode == BatchMode::Diverse {
                cfg.shortlist = Some(60);
            }
            let brute = select(
                &f,
                &SelectParams {
                    prune: false,
                    ..cfg.clone()
                },
                2,
            );
            for (threads, tile) in [(1, 65_536), (2, 65_536), (2, 1), (1, 193), (2, 517)] {
                let pruned = select(
                    &f,
                    &SelectParams {
                        tile_rows: tile,
                        ..cfg.clone()
                    },
                    threads,
                );
                same_batch(
                    &pruned,
                    &brute,
                    &format!("{acq:?} {mode:?} max_sim {max_sim:?} threads {threads} tile {tile}"),
                );
            }
        }
    }
}

#[test]
fn pruning_skips_most_variances_for_a_small_batch() {
    let f = files(3000, 60, 0, 8);
    for acq in [Acquisition::Greedy, Acquisition::Ucb { beta: 1.0 }] {
        let cfg = params(acq, BatchMode::TopK, 10, 65_536);
        let pruned = select(&f, &cfg, 2);
        let brute = select(
            &f,
            &SelectParams {
                prune: false,
                ..cfg
            },
            2,
        );
        same_batch(&pruned, &brute, &format!("{acq:?}"));
        let s = pruned.summary.stages;
        assert!(s.variance * 2 < s.mean, "{acq:?}: {s:?}");
    }
}

#[test]
fn batch_of_every_eligible_candidate_is_brute_force() {
    // 300 rows, 30 labeled, some pending: the batch takes every eligible candidate, and the
    // shortlist of the diverse mode is the whole eligible pool.
    let f = files(300, 30, 7, 11);
    let brute0 = select(
        &f,
        &SelectParams {
            prune: false,
            ..params(Acquisition::Greedy, BatchMode::TopK, 1, 65_536)
        },
        1,
    );
    let all = brute0.summary.candidates;
    for acq in ACQS {
        for mode in [BatchMode::TopK, BatchMode::Diverse] {
            let cfg = params(acq, mode, all, 97);
            let brute = select(
                &f,
                &SelectParams {
                    prune: false,
                    ..cfg.clone()
                },
                2,
            );
            let pruned = select(&f, &cfg, 2);
            same_batch(&pruned, &brute, &format!("{acq:?} {mode:?} batch {all}"));
            assert_eq!(pruned.summary.stages.variance, all);
        }
    }
}

/// The scorer alone on random models: dense and fingerprint kernels, one label (n = 1) and
/// more, any `keep` (beyond the eligible rows too), tiles carried through one threshold.
#[test]
fn pruned_tiles_keep_the_brute_force_top_k() {
    let mut rng = Rng(21);
    for case in 0..24 {
        let n = [1usize, 2, 5, 40][case % 4];
        let (x, pool) = if case % 2 == 0 {
            (random_dense(&mut rng, n, 3), random_dense(&mut rng, 700, 3))
        } else {
            (
                random_bits(&mut rng, n, 128, 0.1),
                random_bits(&mut rng, 700, 128, 0.1),
            )
        };
        let kernel = if case % 2 == 0 {
            KernelKind::Rbf
        } else {
            KernelKind::Tanimoto
        };
        let y = labels(&mut rng, n);
        let gp = fixed_gp(kernel, &x, &y, 0.05);
        let scorer = CpuScorer::new(&gp);
        let ctx = AcqContext {
            best: gp.y_best as f32,
            seed: case as u64,
            round: 1,
        };
        let skip: Vec<usize> = (0..700).filter(|i| i % 37 == 4).collect();
        for acq in ACQS {
            for keep in [1usize, 3, 50, 700] {
                let tiles = [0..250, 250..251, 251..700];
                let (mut brute, mut pruned) = (TopK::new(keep), TopK::new(keep));
                let mut floor = Floor::new(keep);
                for t in tiles {
                    let rows: Vec<usize> = t.clone().collect();
                    let tile = pool.select_rows(&rows);
                    let what = BestOf {
                        acq,
                        ctx: &ctx,
                        start: t.start,
                        keep,
                        skip: &skip,
                        keys: None,
                    };
                    let mut out = Vec::new();
                    score_all_into(&scorer, &tile, &what, &mut out).unwrap();
                    for s in &out {
                        brute.push(
                            s.score,
                            t.start + s.row,
                            (s.mean.to_bits(), s.var.to_bits()),
                        );
                    }
                    out.clear();
                    let stages = scorer
                        .best_pruned_into(&tile, &what, &mut floor, &mut out)
                        .unwrap()
                        .unwrap();
                    assert_eq!(stages.mean, rows.len() - what.skipped_in(rows.len()).len());
                    for s in &out {
                        pruned.push(
                            s.score,
                            t.start + s.row,
                            (s.mean.to_bits(), s.var.to_bits()),
                        );
                    }
                }
                let key = |t: TopK<(u32, u32)>| -> Vec<(u32, usize, (u32, u32))> {
                    t.into_sorted()
                        .into_iter()
                        .map(|r| (r.score.to_bits(), r.index, r.item))
                        .collect()
                };
                assert_eq!(
                    key(pruned),
                    key(brute),
                    "case {case} n {n} {acq:?} keep {keep}"
                );
            }
        }
    }
}

/// `select --no-prune` writes the same batch file, byte for byte, and the same summary but for
/// its stage counts and timings.
#[test]
fn no_prune_flag_writes_the_same_files() {
    let f = files(900, 30, 4, 17);
    let d = f.dir.path();
    std::fs::write(d.join("pending.txt"), f.pending.ids.join("\n") + "\n").unwrap();
    for extra in [
        &["--acq", "ucb"][..],
        &["--acq", "ei", "--batch-mode", "diverse"],
        &["--acq", "greedy", "--max-sim", "0.6"],
    ] {
        let run = |no_prune: bool| {
            let tag = if no_prune { "brute" } else { "pruned" };
            let (out, summary) = (d.join(format!("{tag}.csv")), d.join(format!("{tag}.json")));
            let mut args: Vec<String> = [
                "select",
                "--pool",
                "p.fps",
                "--labels",
                "l.csv",
                "--pending",
                "pending.txt",
                "--batch",
                "15",
                "--backend",
                "cpu",
                "--quiet",
                "--tile",
                "250",
                "--signal-var",
                "1.2",
                "--noise",
                "0.05",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.extend(extra.iter().map(|s| s.to_string()));
            args.extend(["--out".into(), out.display().to_string()]);
            args.extend(["--summary".into(), summary.display().to_string()]);
            if no_prune {
                args.push("--no-prune".into());
            }
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_poolrank"))
                .current_dir(d)
                .args(&args)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let mut s: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
            let stages = s["stages"].clone();
            let o = s.as_object_mut().unwrap();
            for k in ["stages", "seconds", "candidates_per_second"] {
                o.remove(k);
            }
            o["fit"].as_object_mut().unwrap().remove("seconds");
            (std::fs::read(&out).unwrap(), s, stages)
        };
        let (pruned, brute) = (run(false), run(true));
        assert_eq!(pruned.0, brute.0, "{extra:?}");
        assert_eq!(pruned.1, brute.1, "{extra:?}");
        assert_eq!(pruned.2["pruned"], true);
        assert_eq!(brute.2["pruned"], false);
        assert_eq!(brute.2["variance"], brute.2["mean"]);
    }
}
