//! Several objectives: `synth --scenario pareto` writes labels that the multi-objective labels
//! reader reads back, with a non-trivial front, deterministically for a seed; the demo data's
//! properties file has the fronts its README states.

use std::path::Path;
use std::process::{Command, Output};

use poolrank::data::{read_labels, read_objective_labels, LabelSpec, Objectives};
use poolrank::pareto::nondominated_layers;

fn poolrank(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_poolrank"))
        .args(args)
        .output()
        .unwrap()
}

/// A `pareto` synth pool of `n` on 2 features in `dir`: its `p.npy` and `p.labels.csv`.
fn synth_pareto(dir: &Path, n: usize, seed: u64) -> (std::path::PathBuf, std::path::PathBuf) {
    let (n, seed) = (n.to_string(), seed.to_string());
    let prefix = dir.join("p");
    succeeded(&poolrank(&[
        "synth",
        "--scenario",
        "pareto",
        "--n",
        &n,
        "--dim",
        "2",
        "--seed",
        &seed,
        "--out",
        prefix.to_str().unwrap(),
    ]));
    (dir.join("p.npy"), dir.join("p.labels.csv"))
}

fn synth(prefix: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "synth",
        "--scenario",
        "pareto",
        "--n",
        "400",
        "--dim",
        "3",
        "--seed",
        "3",
        "--out",
        prefix.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    poolrank(&args)
}

fn succeeded(o: &Output) {
    assert!(
        o.status.success(),
        "poolrank failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn synth_pareto_writes_objectives_the_reader_reads() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("p");
    succeeded(&synth(&prefix, &[]));
    let labels = dir.path().join("p.labels.csv");
    assert!(dir.path().join("p.npy").is_file());
    let text = std::fs::read_to_string(&labels).unwrap();
    assert!(text.starts_with("id,f1,f2,f3\n"), "{}", &text[..40]);

    let objectives: Objectives = "f1:max,f2:max,f3:max".parse().unwrap();
    let l = read_objective_labels(&labels, "id", &objectives).unwrap();
    assert_eq!(l.len(), 400);
    assert_eq!(l.ids[7], "7");
    assert!(l.values.iter().flatten().all(Option::is_some));
    let (rows, points) = l.complete_maximised();
    assert_eq!(rows.len(), 400);
    assert!(nondominated_layers(&points, 3).unwrap()[0].len() >= 5);

    // Two of the three columns, one minimised (its values negated), are read the same way.
    let two: Objectives = "f2:max,f1:min".parse().unwrap();
    let l2 = read_objective_labels(&labels, "id", &two).unwrap();
    assert_eq!(l2.values[0], l.values[1]);
    let (_, flipped) = l2.complete_maximised();
    assert_eq!(flipped[1], -l.values[0][0].unwrap());
    let plain: Vec<f64> = (0..400)
        .flat_map(|r| [l.values[0][r].unwrap(), l.values[1][r].unwrap()])
        .collect();
    let front = &nondominated_layers(&plain, 2).unwrap()[0];
    assert!(front.len() >= 5, "{front:?}");

    // Each objective is also a one-objective labels column.
    let f1 = read_labels(&LabelSpec {
        path: labels.clone(),
        id_col: "id".into(),
        y_col: "f1".into(),
    })
    .unwrap();
    assert_eq!(
        Some(f1),
        l.objective(0).map(|mut o| {
            o.source = labels.clone();
            o
        })
    );
}

#[test]
fn synth_pareto_is_deterministic_and_checks_dim() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    succeeded(&synth(&a, &[]));
    succeeded(&synth(&b, &[]));
    for suffix in [".npy", ".labels.csv"] {
        let read = |p: &Path| std::fs::read(format!("{}{suffix}", p.display())).unwrap();
        assert_eq!(read(&a), read(&b), "{suffix}");
    }
    // With fingerprints the labels are the same objectives.
    let c = dir.path().join("c");
    succeeded(&synth(&c, &["--bits", "128"]));
    assert_eq!(
        std::fs::read(dir.path().join("c.labels.csv")).unwrap(),
        std::fs::read(dir.path().join("a.labels.csv")).unwrap()
    );
    assert!(dir.path().join("c.fps").is_file());

    let o = poolrank(&[
        "synth",
        "--scenario",
        "pareto",
        "--n",
        "50",
        "--dim",
        "1",
        "--out",
        dir.path().join("d").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("dim ≥ 2"), "{err}");
    assert!(!dir.path().join("d.labels.csv").exists());
}

/// The demo folder's docking scores and properties: the Pareto fronts of (score, minimised;
/// qed, maximised) and (score; sa, minimised) have the sizes the README gives.
#[test]
fn demo_properties_fronts() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/enamine10k");
    let props = read_objective_labels(
        &data.join("enamine10k_properties.csv.gz"),
        "id",
        &"qed:max,logp:max,sa:min".parse::<Objectives>().unwrap(),
    )
    .unwrap();
    let scores = read_labels(&LabelSpec::new(
        data.join("enamine10k_morgan2_2048.scores.csv.gz"),
    ))
    .unwrap();
    assert_eq!(props.len(), 10_449);
    assert_eq!(props.ids, scores.ids);
    assert!(props.values.iter().flatten().all(Option::is_some));
    for (k, spec, size) in [(0, "qed", 9), (2, "sa", 8)] {
        let o = &props.objectives[k];
        assert_eq!(o.column, spec);
        let points: Vec<f64> = (0..props.len())
            .flat_map(|r| [-scores.values[r], o.maximised(props.values[k][r].unwrap())])
            .collect();
        let front = &nondominated_layers(&points, 2).unwrap()[0];
        assert_eq!(front.len(), size, "score and {spec}: {front:?}");
    }
}

/// `select --objectives` on a `pareto` pool: a batch of each acquisition, the columns of the
/// picks file, and the refusals by flag, leaving no output behind.
#[test]
fn select_objectives_picks_a_pareto_batch() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("p");
    succeeded(&synth(&prefix, &[]));
    let pool = dir.path().join("p.npy");
    // Label 40 rows; f2 only on every other one.
    let text = std::fs::read_to_string(dir.path().join("p.labels.csv")).unwrap();
    let mut labels = String::from("id,f1,f2\n");
    for (i, line) in text.lines().skip(1).take(40).enumerate() {
        let v: Vec<&str> = line.split(',').collect();
        let f2 = if i % 2 == 0 { v[2] } else { "NA" };
        labels += &format!("{},{},{f2}\n", v[0], v[1]);
    }
    let lab = dir.path().join("l.csv");
    std::fs::write(&lab, labels).unwrap();
    let out = dir.path().join("batch.csv");
    let select = |extra: &[&str]| {
        let mut args = vec![
            "select",
            "--pool",
            pool.to_str().unwrap(),
            "--labels",
            lab.to_str().unwrap(),
            "--objectives",
            "f1:max,f2:max",
            "--batch",
            "8",
            "--quiet",
            "--backend",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        poolrank(&args)
    };
    for acq in ["ehvi", "phvi", "pareto-ucb", "parego"] {
        let o = select(&["--acq", acq]);
        succeeded(&o);
        let text = std::fs::read_to_string(&out).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "rank,id,index,score,mean_f1,sd_f1,mean_f2,sd_f2",
            "{acq}"
        );
        let picks: Vec<usize> = lines
            .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
            .collect();
        assert_eq!(picks.len(), 8, "{acq}");
        assert!(
            picks.iter().all(|&i| i >= 40),
            "{acq}: a labeled candidate picked"
        );
        // RBF with a lengthscale fitted per objective: the models cannot share a block.
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains("one kernel block per objective"),
            "{acq}: {stderr}"
        );
    }
    // At one fixed lengthscale they share it.
    let o = select(&["--lengthscale", "1"]);
    succeeded(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("one kernel block for every objective"),
        "{stderr}"
    );
    // On the shared block `phvi` is pruned; `--no-prune` gives every candidate its variances
    // and the same batch.
    let summary = dir.path().join("s.json");
    let run = |extra: &[&str]| -> (Vec<u8>, serde_json::Value) {
        let flags = ["--lengthscale", "1", "--acq", "phvi", "--summary"];
        let mut args = flags.to_vec();
        args.push(summary.to_str().unwrap());
        args.extend_from_slice(extra);
        succeeded(&select(&args));
        let s = std::fs::read_to_string(&summary).unwrap();
        (
            std::fs::read(&out).unwrap(),
            serde_json::from_str(&s).unwrap(),
        )
    };
    let ((pruned, p), (brute, b)) = (run(&[]), run(&["--no-prune"]));
    assert_eq!(pruned, brute);
    assert_eq!(
        (p["pruned"].as_bool(), b["pruned"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(b["variances"], b["candidates"]);
    // A constraint adds its probability column.
    succeeded(&select(&["--constraint", "f1>=0.5"]));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.starts_with("rank,id,index,score,p_feasible,mean_f1"),
        "{text}"
    );
    let before = std::fs::read(&out).unwrap();
    for (extra, want) in [
        (
            &["--constraint", "f1>=10"][..],
            "no candidate is likely to meet f1>=10",
        ),
        (&["--ref-point", "0"][..], "--ref-point"),
        (
            &["--acq", "pareto-ucb", "--ref-point", "0,0"][..],
            "--ref-point",
        ),
        (&["--acq", "ucb"][..], "with --objectives use ehvi"),
        (&["--minimize"][..], "--minimize"),
        (&["--constraint", "f1>0.5"][..], "NAME>=VALUE"),
        (&["--batch-mode", "softmax"][..], "--batch-mode"),
        // Flags of one objective are refused, not dropped.
        (&["--max-sim", "0.5"][..], "--max-sim"),
        (&["--shortlist", "20"][..], "--shortlist"),
    ] {
        let o = select(extra);
        assert!(!o.status.success(), "{extra:?} was accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{extra:?}: {err}");
        assert_eq!(
            std::fs::read(&out).unwrap(),
            before,
            "{extra:?}: the earlier output changed"
        );
    }
    // A one-objective acquisition name without --objectives names the flag.
    let o = poolrank(&[
        "select",
        "--pool",
        pool.to_str().unwrap(),
        "--labels",
        lab.to_str().unwrap(),
        "--y-col",
        "f1",
        "--acq",
        "ehvi",
        "--batch",
        "4",
        "--quiet",
        "--out",
        dir.path().join("x.csv").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--objectives"));
}

/// The shipped objectives file is the scores and properties files joined on id.
#[test]
fn enamine_objectives_file_joins_scores_and_qed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/enamine10k");
    let both = read_objective_labels(
        &root.join("enamine10k_objectives.csv.gz"),
        "id",
        &"score:min,qed:max".parse::<Objectives>().unwrap(),
    )
    .unwrap();
    let scores = read_labels(&LabelSpec::new(
        root.join("enamine10k_morgan2_2048.scores.csv.gz"),
    ))
    .unwrap();
    let mut spec = LabelSpec::new(root.join("enamine10k_properties.csv.gz"));
    spec.y_col = "qed".into();
    let qed = read_labels(&spec).unwrap();
    assert_eq!(both.ids, scores.ids);
    let s: Vec<f64> = both.values[0].iter().map(|v| v.unwrap()).collect();
    let q: Vec<f64> = both.values[1].iter().map(|v| v.unwrap()).collect();
    assert_eq!(s, scores.values);
    assert_eq!(q, qed.values);
}

/// `simulate --objectives` on a `pareto` pool: every Pareto acquisition beats random on
/// hypervolume; with the labels shuffled across candidates none does. (`pareto-ucb` at β = 1:
/// at the default β = 2 its batches of 10 from 10 labels explore too widely to separate from
/// random in 4 rounds.)
#[test]
fn simulate_objectives_beats_random_only_when_the_labels_are_learnable() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, labels) = synth_pareto(dir.path(), 400, 5);
    // The same values, moved to other candidates by a fixed permutation.
    let text = std::fs::read_to_string(&labels).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    let mut shuffled = String::from("id,f1,f2,f3\n");
    for (i, row) in rows.iter().enumerate() {
        let other = rows[(i * 149 + 31) % rows.len()];
        let values = other.split_once(',').unwrap().1;
        shuffled += &format!("{},{values}\n", row.split_once(',').unwrap().0);
    }
    let shuffled_path = dir.path().join("shuffled.csv");
    std::fs::write(&shuffled_path, shuffled).unwrap();
    let simulate = |labels: &Path, out: &str| {
        let out = dir.path().join(out);
        let o = poolrank(&[
            "simulate",
            "--pool",
            pool.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
            "--objectives",
            "f1:max,f2:max",
            "--init",
            "10",
            "--batch",
            "10",
            "--rounds",
            "4",
            "--topk",
            "20",
            "--reps",
            "5",
            "--backend",
            "cpu",
            "--quiet",
            "--signal-var",
            "1",
            "--noise",
            "0.01",
            "--lengthscale",
            "1",
            "--beta",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]);
        succeeded(&o);
        for f in [
            "curves.csv",
            "summary.json",
            "hypervolume.svg",
            "hypervolume.png",
            "front.svg",
            "front.png",
        ] {
            assert!(out.join(f).is_file(), "{f} missing");
        }
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        let table = String::from_utf8_lossy(&o.stdout).into_owned();
        (s, table)
    };
    let (s, table) = simulate(&labels, "sim");
    assert_eq!(
        s["strategies"],
        serde_json::json!(["random", "ehvi", "phvi", "pareto-ucb", "parego"])
    );
    let verdict = |s: &serde_json::Value, strategy: &str, metric: &str| {
        s["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["strategy"] == strategy && v["metric"] == metric)
            .map(|v| v["final_round"]["verdict"].as_str().unwrap().to_string())
            .unwrap()
    };
    for strategy in ["ehvi", "phvi", "pareto-ucb", "parego"] {
        assert_eq!(
            verdict(&s, strategy, "hypervolume"),
            "beats-random",
            "{strategy}:\n{table}"
        );
    }
    let (s, table) = simulate(&shuffled_path, "shuffled");
    for strategy in ["ehvi", "phvi", "pareto-ucb", "parego"] {
        assert_ne!(
            verdict(&s, strategy, "hypervolume"),
            "beats-random",
            "{strategy} on shuffled labels:\n{table}"
        );
    }
    // Missing values cannot be revealed: simulate needs every objective of every candidate.
    let partial = text.replacen(
        rows[3],
        &format!("{},NA,0.5,0.5", rows[3].split(',').next().unwrap()),
        1,
    );
    let partial_path = dir.path().join("partial.csv");
    std::fs::write(&partial_path, partial).unwrap();
    let o = poolrank(&[
        "simulate",
        "--pool",
        pool.to_str().unwrap(),
        "--labels",
        partial_path.to_str().unwrap(),
        "--objectives",
        "f1:max,f2:max",
        "--quiet",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("has no \"f1\"") && err.contains("line 5"),
        "{err}"
    );
}

/// `simulate --objectives --no-prune` gives every candidate its variances each round and
/// acquires what the pruned pass does (`pruned` in the summary says which ran); with
/// `--constraint` the summary names it and counts the feasible candidates, and a constraint
/// that no candidate meets is refused by its flag.
#[test]
fn simulate_objectives_no_prune_and_constraints() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, labels) = synth_pareto(dir.path(), 300, 8);
    let run = |extra: &[&str], out: &str| {
        let out = dir.path().join(out);
        let mut args = vec![
            "simulate",
            "--pool",
            pool.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
            "--objectives",
            "f1:max,f2:min",
            "--strategies",
            "ehvi,parego",
            "--init",
            "10",
            "--batch",
            "8",
            "--rounds",
            "3",
            "--reps",
            "2",
            "--backend",
            "cpu",
            "--quiet",
            "--signal-var",
            "1",
            "--noise",
            "0.01",
            "--lengthscale",
            "1",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        succeeded(&poolrank(&args));
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        (std::fs::read_to_string(out.join("curves.csv")).unwrap(), s)
    };
    let (pruned, s) = run(&[], "pruned");
    // A constraint on the third column: measured on the feasible candidates, pruned, and
    // acquiring what brute force does.
    let (constrained, c) = run(&["--constraint", "f3>=0.5"], "constrained");
    let (constrained_brute, cb) = run(&["--constraint", "f3>=0.5", "--no-prune"], "cb");
    assert_eq!(c["constraints"], serde_json::json!(["f3>=0.5"]));
    assert_eq!(
        (&c["pruned"], &cb["pruned"]),
        (&serde_json::json!(true), &serde_json::json!(false))
    );
    assert_eq!(constrained, constrained_brute);
    let feasible = c["feasible"].as_u64().unwrap();
    assert!(feasible > 0 && feasible < 300, "{feasible}");
    let out = dir.path().join("never");
    let o = poolrank(&[
        "simulate",
        "--pool",
        pool.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--objectives",
        "f1:max,f2:min",
        "--constraint",
        "f3>=1e9",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--constraint")
            && err.contains("no candidate of the pool meets f3>=1000000000"),
        "{err}"
    );
    assert!(!out.exists(), "a refused run writes nothing");
    let (brute, b) = run(&["--no-prune"], "brute");
    assert_eq!(s["pruned"], true);
    assert_eq!(b["pruned"], false);
    assert_eq!(s["shared_kernel_block"], true);
    assert_eq!(pruned, brute);
    assert_eq!(s["verdicts"], b["verdicts"]);
}

/// Pruned ParEGO rounds on Enamine 10k acquire what brute force does. ParEGO's weighted bounds
/// face one threshold per weight, so a candidate every weight refuses is skipped, not the end
/// of the pass: stopping there changed the third round's batch on this pool (a regression).
#[test]
fn pruned_parego_on_enamine_equals_brute_force() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/enamine10k");
    let labels = root.join("enamine10k_objectives.csv.gz");
    let read = read_objective_labels(
        &labels,
        "id",
        &"score:min,qed:max".parse::<Objectives>().unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("ids.txt");
    std::fs::write(&ids, read.ids.join("\n") + "\n").unwrap();
    let pool = root.join("enamine10k_morgan2_2048.counts.npz");
    let run = |extra: &[&str], out: &str| {
        let out = dir.path().join(out);
        let mut args = vec![
            "simulate",
            "--pool",
            pool.to_str().unwrap(),
            "--ids",
            ids.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
            "--objectives",
            "score:min,qed:max",
            "--strategies",
            "parego",
            "--init",
            "0.01",
            "--batch",
            "0.01",
            "--rounds",
            "3",
            "--topk",
            "100",
            "--reps",
            "2",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        succeeded(&poolrank(&args));
        std::fs::read_to_string(out.join("curves.csv")).unwrap()
    };
    assert_eq!(run(&[], "pruned"), run(&["--no-prune"], "brute"));
}

/// `simulate --objectives` refuses the flags of one objective instead of dropping them (clap
/// refuses them before any file is read).
#[test]
fn simulate_objectives_refuses_one_objective_flags() {
    for flag in [
        &["--objective", "accuracy"][..],
        &["--test", "0.3"],
        &["--xi", "0.1"],
        &["--samples", "500"],
        &["--temperature", "0.5"],
        &["--power", "2"],
        &["--joint-sampler", "pathwise"],
        &["--prior-features", "64"],
    ] {
        let mut args = vec![
            "simulate",
            "--pool",
            "absent.npy",
            "--labels",
            "absent.csv",
            "--objectives",
            "a:min,b:max",
            "--out",
            "absent-dir",
        ];
        args.extend_from_slice(flag);
        let o = poolrank(&args);
        assert!(!o.status.success(), "{flag:?} was accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("cannot be used with") && err.contains(flag[0]),
            "{flag:?}: {err}"
        );
    }
}
