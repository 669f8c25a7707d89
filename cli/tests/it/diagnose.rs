//! `diagnose` against the truth: on synthetic pools whose answer `simulate` confirms (README,
//! "Diagnose"), and on Enamine 10k; determinism; bad input.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use poolrank::data::{IdList, LabelSpec};
use poolrank::diagnose::verdict::Word;
use poolrank::diagnose::{run_diagnose, DiagnoseConfig, Report};
use poolrank::pool::FilePool;
use poolrank::sim::synth::{generate, Scenario};
use poolrank::sim::Objective;
use poolrank::Acquisition;

/// A synthetic pool of `n` points in 2 dimensions, written as `.npy`, with a seeded 1% of the
/// (non-test) candidates labeled, and the test ids for `shift`.
struct Files {
    dir: tempfile::TempDir,
    test: Option<PathBuf>,
}

impl Files {
    fn new(scenario: Scenario, n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = generate(scenario, n, 2, 1).unwrap();
        common::write_dense_npy(&dir.path().join("pool.npy"), &data.pool.features);
        let is_test: std::collections::HashSet<usize> = data.test_rows.iter().copied().collect();
        let rows: Vec<usize> = poolrank::rng::seeded_order(n, 7)
            .into_iter()
            .filter(|i| !is_test.contains(i))
            .collect();
        let k = (rows.len() as f64 * 0.01).round() as usize;
        let labels: Vec<(String, f64)> = rows[..k]
            .iter()
            .map(|&i| (i.to_string(), data.pool.y[i]))
            .collect();
        common::write_labels(&dir.path().join("labels.csv"), &labels);
        let test = (!data.test_rows.is_empty()).then(|| {
            let p = dir.path().join("test_ids.txt");
            let text: String = data.test_rows.iter().map(|i| format!("{i}\n")).collect();
            std::fs::write(&p, text).unwrap();
            p
        });
        Files { dir, test }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The report on `pool.npy` and `labels.csv` (read now), with `test` as the test set.
    fn run(&self, cfg: &DiagnoseConfig, test: Option<&Path>) -> Report {
        run_files(
            cfg,
            &FilePool::new(self.path("pool.npy")),
            &self.path("labels.csv"),
            test,
        )
    }

    fn config(&self, acq: Acquisition) -> DiagnoseConfig {
        let mut cfg = DiagnoseConfig::default();
        cfg.select.acquisition = acq;
        cfg.select.backend = poolrank::backend::BackendChoice::Cpu;
        cfg.select.seed = 3;
        cfg
    }
}

/// The report on a pool file with a labels file and a test-ids file.
fn run_files(cfg: &DiagnoseConfig, pool: &FilePool, labels: &Path, test: Option<&Path>) -> Report {
    let labels = poolrank::data::read_labels(&LabelSpec::new(labels)).unwrap();
    let test = IdList::read_or_empty(test).unwrap();
    run_diagnose(cfg, pool, &labels, &test).unwrap()
}

fn flags(r: &Report) -> Vec<&'static str> {
    r.verdict.flags.clone()
}

fn rules(r: &Report) -> Vec<&'static str> {
    r.verdict.reasons.iter().map(|x| x.rule).collect()
}

const UCB: Acquisition = Acquisition::Ucb { beta: 2.0 };

#[test]
fn noise_is_likely_random_like() {
    let f = Files::new(Scenario::Noise, 3000);
    for acq in [UCB, Acquisition::Greedy] {
        let r = f.run(&f.config(acq), None);
        assert_eq!(r.setup.labeled, 30);
        assert_eq!(
            r.verdict.verdict,
            Word::LikelyRandomLike,
            "{}: {:#?}",
            acq.name(),
            r.verdict
        );
        assert!(rules(&r).contains(&"no-spread"), "{:#?}", r.verdict);
    }
}

#[test]
fn smooth_is_likely_beats_random_for_ucb_and_greedy_not_variance() {
    let f = Files::new(Scenario::Smooth, 3000);
    for acq in [UCB, Acquisition::Greedy] {
        let r = f.run(&f.config(acq), None);
        assert_eq!(
            r.verdict.verdict,
            Word::LikelyBeatsRandom,
            "{}: {:#?}\n{:#?}",
            acq.name(),
            r.verdict,
            r.model.cv
        );
        assert!(r.model.cv.spearman > 0.8, "{:#?}", r.model.cv);
    }
    // Pure exploration never goes for the best (simulate: random-like on top-k recall).
    let r = f.run(&f.config(Acquisition::Variance), None);
    assert_eq!(r.verdict.verdict, Word::LikelyRandomLike);
    assert!(rules(&r).contains(&"no-exploitation"), "{:#?}", r.verdict);
    assert!(!flags(&r).contains(&"outlier-chasing"), "{:#?}", r.batch);
}

#[test]
fn outliers_variance_is_flagged_as_outlier_chasing_greedy_is_not() {
    let f = Files::new(Scenario::Outliers, 3000);
    let r = f.run(&f.config(Acquisition::Variance), None);
    assert!(flags(&r).contains(&"outlier-chasing"), "{:#?}", r.batch);
    assert_eq!(r.verdict.verdict, Word::LikelyRandomLike);
    assert!(r.batch.outlier_share > 0.9, "{}", r.batch.outlier_share);
    // The outliers are the pool's last 10% rows: the batch really is made of them.
    let first = r.batch.picks.iter().filter(|p| p.index >= 2700).count();
    assert_eq!(first, r.batch.picks.len(), "{:#?}", r.batch.picks);
    let r = f.run(&f.config(Acquisition::Greedy), None);
    assert!(!flags(&r).contains(&"outlier-chasing"), "{:#?}", r.batch);
    assert_eq!(
        r.verdict.verdict,
        Word::LikelyBeatsRandom,
        "{:#?}",
        r.verdict
    );
    // UCB's first batch goes to the outliers too, but it weighs the predicted value and turns
    // back once their uncertainty is spent (simulate: UCB beats random here): a warning only.
    let r = f.run(&f.config(UCB), None);
    assert!(flags(&r).contains(&"outlier-chasing"), "{:#?}", r.batch);
    assert_eq!(r.verdict.warnings.len(), 1);
    assert_eq!(
        r.verdict.verdict,
        Word::LikelyBeatsRandom,
        "{:#?}",
        r.verdict
    );
}

#[test]
fn shift_with_accuracy_flags_the_test_mismatch() {
    let f = Files::new(Scenario::Shift, 3000);
    let mut cfg = f.config(Acquisition::Variance);
    cfg.objective = Objective::Accuracy;
    let r = f.run(&cfg, f.test.as_deref());
    assert_eq!(r.setup.test, 600);
    assert_eq!(r.setup.pool_size, 2400);
    let o = r.objective.as_ref().unwrap();
    assert!(o.mismatch, "{o:#?}");
    assert!(flags(&r).contains(&"test-mismatch"));
    assert_eq!(r.verdict.verdict, Word::LikelyRandomLike);
    // Greedy can still move the mean level the model predicts far away (simulate: it lowers
    // the test RMSE here), so for it the mismatch makes the verdict uncertain.
    cfg.select.acquisition = Acquisition::Greedy;
    let r = f.run(&cfg, f.test.as_deref());
    assert!(flags(&r).contains(&"test-mismatch"));
    assert_eq!(r.verdict.verdict, Word::Uncertain, "{:#?}", r.verdict);
    cfg.select.acquisition = Acquisition::Variance;
    // A test set drawn like the pool (the first 600 pool rows) is not a mismatch.
    let same = f.path("same_ids.txt");
    let ids: String = (0..600).map(|i| format!("{i}\n")).collect();
    std::fs::write(&same, ids).unwrap();
    let labels = std::fs::read_to_string(f.path("labels.csv")).unwrap();
    let kept: String = labels
        .lines()
        .filter(|l| {
            l.split(',')
                .next()
                .and_then(|s| s.parse::<usize>().ok())
                .is_none_or(|i| i >= 600)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(f.path("labels.csv"), kept).unwrap();
    let r = f.run(&cfg, Some(&same));
    assert!(
        !r.objective.as_ref().unwrap().mismatch,
        "{:#?}",
        r.objective
    );
}

/// Enamine 10k docking scores with 104 random labels: MinMax on counts predicts better than
/// Tanimoto on the same features as bits, and active learning is not random-like.
#[test]
fn enamine_recommends_minmax_and_is_not_random_like() {
    let files = poolrank_cli::demo::DemoFiles::unpack().unwrap();
    let all = poolrank::data::read_labels(&LabelSpec::new(files.scores())).unwrap();
    let rows = &poolrank::rng::seeded_order(all.ids.len(), 0)[..104];
    let labels: Vec<(String, f64)> = rows
        .iter()
        .map(|&i| (all.ids[i].clone(), all.values[i]))
        .collect();
    let path = files.dir().join("labels104.csv");
    common::write_labels(&path, &labels);
    let mut pool = FilePool::new(files.pool());
    pool.ids = Some(files.ids());
    let mut cfg = DiagnoseConfig::default();
    cfg.select.minimize = true;
    cfg.select.backend = poolrank::backend::BackendChoice::Cpu;
    let r = run_files(&cfg, &pool, &path, None);
    assert_eq!(r.setup.labeled, 104);
    assert_eq!(r.setup.pool_size, 10_449);
    assert_eq!(r.model.recommended_kernel, "minmax");
    let nlpd = |k: &str| r.model.kernels.iter().find(|c| c.kernel == k).unwrap().nlpd;
    let rho = |k: &str| {
        r.model
            .kernels
            .iter()
            .find(|c| c.kernel == k)
            .unwrap()
            .spearman
    };
    assert!(nlpd("minmax") < nlpd("tanimoto"), "{:#?}", r.model.kernels);
    assert!(rho("minmax") > rho("tanimoto"), "{:#?}", r.model.kernels);
    assert_ne!(
        r.verdict.verdict,
        Word::LikelyRandomLike,
        "{:#?}",
        r.verdict
    );
    assert_eq!(r.pool.sample, 256);
}

#[test]
fn same_seed_same_report_on_one_and_two_threads() {
    let f = Files::new(Scenario::Outliers, 2000);
    let run = |threads: usize| {
        let mut cfg = f.config(UCB);
        cfg.select.tile_rows = 500;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let r = pool.install(|| f.run(&cfg, None));
        let mut v = serde_json::to_value(&r).unwrap();
        v.as_object_mut().unwrap().remove("seconds");
        v["setup"].as_object_mut().unwrap().remove("threads");
        v
    };
    assert_eq!(run(1), run(2));
}

fn poolrank(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_poolrank"))
        .args(args)
        .output()
        .unwrap()
}

fn args<'a>(f: &'a Files, labels: &'a Path, out: &'a Path) -> Vec<String> {
    [
        "diagnose",
        "--pool",
        f.path("pool.npy").to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn cli_writes_json_html_and_verdict() {
    let f = Files::new(Scenario::Smooth, 2000);
    let out = f.path("report");
    let a = args(&f, &f.path("labels.csv"), &out);
    let o = poolrank(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("verdict: likely-beats-random"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["verdict"]["verdict"], "likely-beats-random");
    assert_eq!(json["pool"]["sample"], 256);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.matches("<svg").count() >= 5, "plots inline");
    for net in ["<script", "src=", "href=", "<link"] {
        assert!(!html.contains(net), "self-contained: found {net}");
    }
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2);
}

#[test]
fn bad_input_is_a_clear_error_and_leaves_nothing() {
    let f = Files::new(Scenario::Smooth, 2000);
    let out = f.path("bad");
    let bad = |labels: &str, extra: &[&str], expect: &str| {
        let path = f.path("bad_labels.csv");
        std::fs::write(&path, labels).unwrap();
        let mut a = args(&f, &path, &out);
        a.extend(extra.iter().map(|s| s.to_string()));
        let o = poolrank(&a.iter().map(String::as_str).collect::<Vec<_>>());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{labels:?} {extra:?} should fail");
        assert!(err.contains(expect), "stderr lacks {expect:?}: {err}");
        let left = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "files left in the output folder");
    };
    bad(
        "id,score\n1,0.5\n2,0.1\n3,0.2\n",
        &[],
        "5-fold cross-validation needs at least 5 labeled candidates found in the pool, got 3",
    );
    bad(
        "id,score\n1,0.5\n2,0.1\n3,0.2\n4,0.3\n5,0.1\n6,0.2\n",
        &["--folds", "8"],
        "needs at least 8",
    );
    bad(
        "id,score\n1,0.5\n2,0.1\n3,0.2\nnope,0.3\n5,0.1\n6,0.2\n",
        &[],
        "not found in the pool, e.g. \"nope\" (line 5)",
    );
    bad(
        "id,score\n1,0.5\n2,NaN\n3,0.2\n4,0.3\n5,0.1\n6,0.2\n",
        &[],
        "bad_labels.csv:3",
    );
    bad(
        "id,score\n1,0.5\n2,0.1\n3,0.2\n4,0.3\n5,0.1\n6,0.2\n",
        &["--objective", "accuracy"],
        "invalid --test: the accuracy objective needs",
    );
}

/// `synth --scenario pareto` (labels id,f1,f2,f3, all maximised) on 600 rows in 3 dimensions,
/// with its labels cut to the first 60 rows, f3 missing on every fourth: the folder, the pool
/// and the cut labels.
fn pareto_files() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("p");
    let o = poolrank(&[
        "synth",
        "--scenario",
        "pareto",
        "--n",
        "600",
        "--dim",
        "3",
        "--seed",
        "3",
        "--out",
        prefix.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let all = std::fs::read_to_string(dir.path().join("p.labels.csv")).unwrap();
    let mut lines = all.lines();
    assert_eq!(lines.next(), Some("id,f1,f2,f3"));
    let mut cut = String::from("id,f1,f2,f3\n");
    for (i, line) in lines.take(60).enumerate() {
        if i % 4 == 0 {
            let (head, _) = line.rsplit_once(',').unwrap();
            cut.push_str(&format!("{head},\n"));
        } else {
            cut.push_str(&format!("{line}\n"));
        }
    }
    let labels = dir.path().join("labels60.csv");
    std::fs::write(&labels, cut).unwrap();
    let pool = dir.path().join("p.npy");
    (dir, pool, labels)
}

fn objectives_args(pool: &Path, labels: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "diagnose",
        "--pool",
        pool.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
        "--batch",
        "10",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn cli_objectives_reports_each_objective_and_their_correlation() {
    let (dir, pool, labels) = pareto_files();
    let out = dir.path().join("report");
    let a = objectives_args(
        &pool,
        &labels,
        &out,
        &["--objectives", "f1:max,f2:min,f3:max"],
    );
    let o = poolrank(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for name in ["f1:max", "f2:min", "f3:max"] {
        assert!(
            stdout.contains(&format!("== objective {name} ==")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("across objectives: "), "{stdout}");
    assert!(stdout.contains("f1 ~ f2: Spearman"), "{stdout}");
    assert!(stdout.contains("overall verdict: "), "{stdout}");
    assert_eq!(stdout.matches("\nverdict: ").count(), 3, "{stdout}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let objectives = json["objectives"].as_array().unwrap();
    let columns: Vec<&str> = objectives
        .iter()
        .map(|o| o["column"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["f1", "f2", "f3"]);
    assert_eq!(objectives[1]["minimize"], true);
    assert_eq!(objectives[1]["report"]["setup"]["minimize"], true);
    // f3 is missing on 15 of the 60 rows: its model is fitted on the other 45.
    assert_eq!(objectives[0]["report"]["setup"]["labeled"], 60);
    assert_eq!(objectives[2]["report"]["setup"]["labeled"], 45);
    for o in objectives {
        assert!(o["report"]["verdict"]["verdict"].is_string(), "{o}");
        assert!(o["report"]["model"]["cv"]["spearman"].is_f64(), "{o}");
    }
    let pairs = json["cross"]["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 3);
    assert_eq!(
        (pairs[0]["a"].as_str(), pairs[0]["b"].as_str()),
        (Some("f1"), Some("f2"))
    );
    assert_eq!(pairs[0]["rows"], 60);
    assert_eq!(pairs[1]["rows"], 45);
    for p in pairs {
        let rho = p["spearman"].as_f64().unwrap();
        assert!(rho.is_finite() && rho.abs() <= 1.0, "{p}");
    }
    assert_eq!(json["cross"]["complete"], 45);
    let front = json["cross"]["front"].as_u64().unwrap();
    assert!((1..=45).contains(&front), "{front}");
    assert!(json["verdict"]["verdict"].is_string());

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Across objectives"));
    for name in ["f1:max", "f2:min", "f3:max"] {
        assert!(
            html.contains(&format!("<h2>Objective {name}</h2>")),
            "{name}"
        );
    }
    assert!(
        html.matches("<svg").count() >= 15,
        "plots inline, per objective"
    );
    for net in ["<script", "src=", "href=", "<link"] {
        assert!(!html.contains(net), "self-contained: found {net}");
    }
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2);
}

#[test]
fn cli_objectives_refuses_one_objective_flags_and_unknown_columns() {
    let (dir, pool, labels) = pareto_files();
    let out = dir.path().join("bad");
    let fails = |extra: &[&str], expect: &[&str]| {
        let a = objectives_args(&pool, &labels, &out, extra);
        let o = poolrank(&a.iter().map(String::as_str).collect::<Vec<_>>());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{extra:?} should fail");
        for e in expect {
            assert!(err.contains(e), "stderr lacks {e:?}: {err}");
        }
        let left = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "files left in the output folder");
    };
    fails(
        &["--objectives", "f1:max,f2:max", "--minimize"],
        &["--objectives", "--minimize"],
    );
    fails(
        &["--objectives", "f1:max,f2:max", "--y-col", "f1"],
        &["--objectives", "--y-col"],
    );
    fails(
        &["--objectives", "f1:max,nope:min"],
        &["labels60.csv", "\"nope\""],
    );
    fails(&["--objectives", "f1:max,f2"], &["--objectives", "f2:min"]);
    fails(
        &["--objectives", "f1:max,f3:max", "--folds", "50"],
        &["invalid --folds: objective f3: 50-fold"],
    );
}
