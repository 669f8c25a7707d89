//! The binary end to end on small files the tests make, and every bad input: a clear error
//! naming the file/line/field, a non-zero exit, and no output file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{
    npy_raw_header, random_bits, random_dense, write_dense_npy, write_fps, write_labels,
    write_packed_npy, Rng,
};

fn poolrank(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_poolrank"))
        .args(args)
        .output()
        .unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A 300-row, 256-bit FPS pool (ids `c0`…) and 20 labels on the first rows.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(3);
        let pool = random_bits(&mut rng, 300, 256, 0.1);
        let ids: Vec<String> = (0..300).map(|i| format!("c{i}")).collect();
        write_fps(&dir.path().join("pool.fps"), &pool, &ids);
        write_packed_npy(&dir.path().join("pool.npy"), &pool);
        std::fs::write(dir.path().join("ids.txt"), ids.join("\n") + "\n").unwrap();
        let labels: Vec<(String, f64)> =
            (0..20).map(|i| (ids[i].clone(), (i % 5) as f64)).collect();
        write_labels(&dir.path().join("labels.csv"), &labels);
        Fixture { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }

    fn write(&self, name: &str, text: &str) -> String {
        std::fs::write(self.path(name), text).unwrap();
        self.p(name)
    }
}

/// Runs `select` with `pool`, `labels` and extra args, expects failure mentioning every word of
/// `expect`, and checks that no output file was left.
fn fails(f: &Fixture, pool: &str, labels: &str, extra: &[&str], expect: &[&str]) {
    let out = f.p("out.csv");
    let mut args = vec!["select", "--pool", pool, "--labels", labels, "--out", &out];
    if !extra.contains(&"--batch") {
        args.extend_from_slice(&["--batch", "5"]);
    }
    args.extend_from_slice(extra);
    let o = poolrank(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "expected failure for {extra:?}; stderr: {err}"
    );
    for e in expect {
        assert!(err.contains(e), "stderr lacks {e:?}: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(!Path::new(&out).exists(), "output file left behind");
    let leftovers: Vec<_> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

fn read_batch(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("rank,id,index,score,mean,sd"));
    lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn select_writes_a_batch_of_unlabeled_candidates_and_a_summary() {
    let f = Fixture::new();
    let (out, summary) = (f.p("out.csv"), f.p("summary.json"));
    let o = poolrank(&[
        "select",
        "--pool",
        &f.p("pool.fps"),
        "--labels",
        &f.p("labels.csv"),
        "--batch",
        "10",
        "--acq",
        "ucb",
        "--out",
        &out,
        "--summary",
        &summary,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = read_batch(Path::new(&out));
    assert_eq!(rows.len(), 10);
    for (r, row) in rows.iter().enumerate() {
        assert_eq!(row[0], (r + 1).to_string());
        let index: usize = row[2].parse().unwrap();
        assert!(index >= 20, "labeled candidate {index} picked");
        assert_eq!(row[1], format!("c{index}"));
        let sd: f64 = row[5].parse().unwrap();
        assert!(sd >= 0.0);
    }
    let scores: Vec<f32> = rows.iter().map(|r| r[3].parse().unwrap()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "not sorted: {scores:?}"
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["pool_size"], 300);
    assert_eq!(s["labeled"], 20);
    assert_eq!(s["fit"]["kernel"], "tanimoto");
    assert_eq!(s["fit"]["labels_standardised"], true);
    assert!(s["fit"]["log_marginal_likelihood"].is_number());
    assert!(s["seconds"]["total"].is_number());
}

#[test]
fn fps_and_packed_npy_give_the_same_batch() {
    let f = Fixture::new();
    let labels = f.p("labels.csv");
    let run = |pool: &str, extra: &[&str], out: &str| {
        let mut args = vec![
            "select", "--pool", pool, "--labels", &labels, "--batch", "15", "--out", out,
        ];
        args.extend_from_slice(extra);
        let o = poolrank(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out).unwrap()
    };
    let a = run(&f.p("pool.fps"), &[], &f.p("a.csv"));
    let ids = f.p("ids.txt");
    let b = run(&f.p("pool.npy"), &["--ids", &ids], &f.p("b.csv"));
    assert_eq!(a, b);
}

#[test]
fn pending_candidates_are_never_picked() {
    let f = Fixture::new();
    // Find what would be picked first, then mark it pending.
    let out = f.p("out.csv");
    let base = [
        "select",
        "--pool",
        &f.p("pool.fps"),
        "--labels",
        &f.p("labels.csv"),
        "--batch",
        "3",
        "--out",
        &out,
    ];
    assert!(poolrank(&base).status.success());
    let first = read_batch(Path::new(&out));
    let pending = f.write(
        "pending.txt",
        &format!("{}\n{}\n", first[0][1], first[1][1]),
    );
    for mode in ["topk", "diverse"] {
        let mut args = base.to_vec();
        args.extend_from_slice(&["--pending", &pending, "--batch-mode", mode]);
        let o = poolrank(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let rows = read_batch(Path::new(&out));
        assert!(
            rows.iter()
                .all(|r| r[1] != first[0][1] && r[1] != first[1][1]),
            "{mode}: {rows:?}"
        );
    }
}

#[test]
fn similarity_cap_holds_between_picks() {
    let f = Fixture::new();
    let out = f.p("out.csv");
    let o = poolrank(&[
        "select",
        "--pool",
        &f.p("pool.fps"),
        "--labels",
        &f.p("labels.csv"),
        "--batch",
        "8",
        "--max-sim",
        "0.15",
        "--out",
        &out,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let idx: Vec<usize> = read_batch(Path::new(&out))
        .iter()
        .map(|r| r[2].parse().unwrap())
        .collect();
    let mut rng = Rng(3);
    let pool = random_bits(&mut rng, 300, 256, 0.1);
    for (a, &i) in idx.iter().enumerate() {
        for &j in &idx[..a] {
            let s =
                poolrank::kernel::tanimoto(pool.bits_row(i).unwrap(), pool.bits_row(j).unwrap());
            assert!(s <= 0.15, "picks {i} and {j} have similarity {s}");
        }
    }
}

#[test]
fn batch_fraction_and_help() {
    let f = Fixture::new();
    let out = f.p("out.csv");
    let o = poolrank(&[
        "select",
        "--pool",
        &f.p("pool.fps"),
        "--labels",
        &f.p("labels.csv"),
        "--batch",
        "0.02",
        "--out",
        &out,
    ]);
    assert!(o.status.success());
    assert_eq!(read_batch(Path::new(&out)).len(), 6); // 2% of 300
    let help = poolrank(&["select", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--pool",
        "--labels",
        "--minimize",
        "--acq",
        "--batch-mode",
        "--max-sim",
        "--pending",
        "--kernel",
    ] {
        assert!(text.contains(flag), "help lacks {flag}");
    }
}

#[test]
fn empty_pool() {
    let f = Fixture::new();
    let pool = f.write("empty.fps", "#FPS1\n#num_bits=256\n");
    fails(&f, &pool, &f.p("labels.csv"), &[], &["empty.fps", "empty"]);
}

#[test]
fn fps_errors_name_the_line() {
    let f = Fixture::new();
    let good = "00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff";
    let cases = [
        (
            "badhex.fps",
            format!("#FPS1\n#num_bits=256\n{good}\tc0\nzz{}\tc1\n", &good[2..]),
            ":4:",
        ),
        (
            "odd.fps",
            format!("#FPS1\n{good}\tc0\n{}\tc1\n", &good[1..]),
            ":3:",
        ),
        (
            "width.fps",
            format!("#FPS1\n#num_bits=128\n{good}\tc0\n"),
            ":3:",
        ),
        (
            "ragged.fps",
            format!("#FPS1\n{good}\tc0\n{good}00\tc1\n"),
            ":3:",
        ),
    ];
    for (name, text, line) in cases {
        let pool = f.write(name, &text);
        fails(&f, &pool, &f.p("labels.csv"), &[], &[name, line]);
    }
}

#[test]
fn npy_errors_name_the_problem() {
    let f = Fixture::new();
    let mut rng = Rng(1);
    // Wrong dtype for --pool-format bits-npy: float32 data.
    write_dense_npy(&f.path("float.npy"), &random_dense(&mut rng, 10, 4));
    fails(
        &f,
        &f.p("float.npy"),
        &f.p("labels.csv"),
        &["--pool-format", "bits-npy"],
        &["float.npy"],
    );
    // Rank 1 and Fortran order.
    let mut rank1 = npy_raw_header("{'descr': '|u1', 'fortran_order': False, 'shape': (8,), }");
    rank1.extend([0u8; 8]);
    std::fs::write(f.path("rank1.npy"), &rank1).unwrap();
    fails(
        &f,
        &f.p("rank1.npy"),
        &f.p("labels.csv"),
        &[],
        &["rank1.npy", "2-D"],
    );
    let mut fortran = npy_raw_header("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 4), }");
    fortran.extend([0u8; 8]);
    std::fs::write(f.path("fortran.npy"), &fortran).unwrap();
    fails(
        &f,
        &f.p("fortran.npy"),
        &f.p("labels.csv"),
        &[],
        &["fortran.npy", "ortran"],
    );
}

#[test]
fn label_errors_name_the_line() {
    let f = Fixture::new();
    let cases = [
        ("missing.csv", "id,score\nc0,1\nc1,\nc2,3\n", ":3:"),
        ("text.csv", "id,score\nc0,1\nc1,2\nc2,abc\n", ":4:"),
        ("nan.csv", "id,score\nc0,NaN\nc1,2\n", ":2:"),
        ("inf.csv", "id,score\nc0,1\nc1,inf\n", ":3:"),
        ("dup.csv", "id,score\nc0,1\nc1,2\nc0,3\n", "c0"),
    ];
    for (name, text, expect) in cases {
        let labels = f.write(name, text);
        fails(&f, &f.p("pool.fps"), &labels, &[], &[name, expect]);
    }
    let nocol = f.write("nocol.csv", "name,value\nc0,1\nc1,2\n");
    fails(
        &f,
        &f.p("pool.fps"),
        &nocol,
        &[],
        &["nocol.csv", "\"id\"", "\"name\""],
    );
}

#[test]
fn unknown_duplicate_and_too_few_labels() {
    let f = Fixture::new();
    let unknown = f.write("unknown.csv", "id,score\nc0,1\nghost1,2\nghost2,3\n");
    fails(
        &f,
        &f.p("pool.fps"),
        &unknown,
        &[],
        &["unknown.csv", "2 id(s)", "ghost1", "ghost2"],
    );
    let one = f.write("one.csv", "id,score\nc0,1\n");
    fails(&f, &f.p("pool.fps"), &one, &[], &["at least 2"]);
    let good = "00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff";
    let dup_pool = f.write(
        "dup.fps",
        &format!("#FPS1\n{good}\ta\n{good}\tb\n{good}\tc\n{good}\tb\n"),
    );
    let labels = f.write("ab.csv", "id,score\na,1\nc,2\n");
    fails(&f, &dup_pool, &labels, &[], &["dup.fps", "\"b\""]);
    // A duplicated labeled id in the pool.
    let labels = f.write("ab2.csv", "id,score\na,1\nb,2\n");
    fails(&f, &dup_pool, &labels, &[], &["dup.fps", "\"b\""]);
}

#[test]
fn batch_kernel_and_output_errors() {
    let f = Fixture::new();
    let labels = f.p("labels.csv");
    fails(
        &f,
        &f.p("pool.fps"),
        &labels,
        &["--batch", "281"],
        &["281", "280"],
    );
    fails(
        &f,
        &f.p("pool.fps"),
        &labels,
        &["--kernel", "rbf"],
        &["rbf", "256-bit"],
    );
    let o = poolrank(&[
        "select",
        "--pool",
        &f.p("pool.fps"),
        "--labels",
        &labels,
        "--out",
        "/nonexistent/dir/out.csv",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/dir/out.csv"));
    let o = poolrank(&[
        "select",
        "--pool",
        &f.p("pool.fps"),
        "--labels",
        &labels,
        "--out",
        &f.p("o.csv"),
        "--batch",
        "0",
    ]);
    assert!(!o.status.success());
    assert!(!f.path("o.csv").exists());
}

#[test]
fn demo_runs_without_inputs() {
    let o = poolrank(&["demo"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("Enamine 10k") && text.contains("MolPAL"),
        "{text}"
    );
    assert!(text.contains("picks in the true top 1%"), "{text}");
    // The SMILES path: featurized natively, identical to the shipped RDKit counts.
    assert!(
        text.contains("featurized 10449 SMILES") && text.contains("identical to the RDKit counts"),
        "{text}"
    );
    // The short simulation: a verdict for greedy and UCB against random.
    assert!(
        text.contains("verdict (final)") && text.contains("ucb(2)"),
        "{text}"
    );
}

#[test]
fn bench_and_devices_commands_run() {
    let o = poolrank(&[
        "bench",
        "--pool-size",
        "3000",
        "--train",
        "20",
        "--bits",
        "256",
        "--backend",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["run"]["candidates"], 3000);
    assert!(r["run"]["candidates_per_second"].as_f64().unwrap() > 0.0);
    assert!(r["inducing"].is_null(), "20 labels: the exact GP");
    let small = [
        "bench",
        "--pool-size",
        "500",
        "--train",
        "40",
        "--bits",
        "256",
        "--backend",
        "cpu",
    ];
    let o = poolrank(&[&small[..], &["--inducing", "8", "--json"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["inducing"], 8);
    let o = poolrank(&[&small[..], &["--exact"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("model: exact GP on 40 labels"));
    let o = poolrank(&["devices", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(d["adapters"].is_array() && d["reason"].is_string());
}

#[test]
fn duplicate_ids_in_an_ids_file_are_named() {
    let f = Fixture::new();
    let mut ids: Vec<String> = (0..300).map(|i| format!("c{i}")).collect();
    ids[250] = "c100".to_string(); // not labeled: found by the pool-wide check
    let ids_path = f.write("dup_ids.txt", &(ids.join("\n") + "\n"));
    fails(
        &f,
        &f.p("pool.npy"),
        &f.p("labels.csv"),
        &["--ids", &ids_path],
        &["\"c100\"", "rows 100 and 250"],
    );
}
