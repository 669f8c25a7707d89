//! The binary end to end on small files the tests make, and every bad input: a clear error
//! naming the file/line/field, a non-zero exit, and no output file.

use crate::common;

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
    // A 3,000-candidate bench on the CPU, as JSON, with `extra` flags.
    let bench = |extra: &[&str]| -> serde_json::Value {
        let base = [
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
        ];
        let o = poolrank(&[&base[..], extra].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let r = bench(&[]);
    assert_eq!(r["run"]["candidates"], 3000);
    assert!(r["run"]["candidates_per_second"].as_f64().unwrap() > 0.0);
    assert!(r["inducing"].is_null(), "20 labels: the exact GP");
    // The default: select's pruned search for the UCB top 1%, the same batch as --no-prune.
    assert_eq!(
        (r["mode"]["mode"].as_str(), r["keep"].as_u64()),
        (Some("select"), Some(30))
    );
    assert_eq!(r["run"]["stages"]["pruned"], true);
    let b = bench(&["--no-prune"]);
    assert_eq!(b["run"]["stages"]["pruned"], false);
    assert_eq!(b["run"]["batch_checksum"], r["run"]["batch_checksum"]);
    let p = bench(&["--posterior"]);
    assert_eq!(p["mode"]["mode"], "posterior");
    assert_eq!(p["run"]["stages"]["variance"], 3000);
    assert!(p["run"]["batch_checksum"].is_null());
    let o = poolrank(&["bench", "--posterior", "--no-prune"]);
    assert!(!o.status.success());
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

// ---------------------------------------------------------------------------------------------
// Outputs (issue 13): one mechanism for every command. An output that is an input, another
// output or not a regular file is refused before any work; outputs are staged and renamed into
// place all or none; a failure, a full disk or SIGINT/SIGTERM leaves every previous file as it
// was and no staged file behind. Root-only cases (tmpfs, device nodes) skip when not root; CI
// runs them as root.
// ---------------------------------------------------------------------------------------------

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Every regular file in `dir` (not recursive), name → bytes.
fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// Asserts two snapshots are equal, naming the files that differ (not dumping their bytes).
fn assert_same(
    after: &std::collections::BTreeMap<String, Vec<u8>>,
    before: &std::collections::BTreeMap<String, Vec<u8>>,
    what: &str,
) {
    let names: std::collections::BTreeSet<&String> = after.keys().chain(before.keys()).collect();
    let differ: Vec<&&String> = names
        .iter()
        .filter(|n| after.get(n.as_str()) != before.get(n.as_str()))
        .collect();
    assert!(differ.is_empty(), "{what}: {differ:?} differ");
}

/// Hidden entries: staged, scratch or backup files left behind.
fn hidden(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// Expects a failure whose message holds every word of `expect`, no panic and no "wrote".
fn failed(o: &Output, expect: &[&str]) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "expected a failure; stderr: {err}");
    for e in expect {
        assert!(err.contains(e), "stderr lacks {e:?}: {err}");
    }
    assert!(!err.contains("panicked") && !err.contains("wrote"), "{err}");
    err
}

fn succeeded(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "poolrank failed: {err}");
    err
}

/// A `select` of 5 on the fixture's FPS pool, with `extra` arguments.
fn select_args<'a>(f: &'a Fixture, pool: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut v = vec![
        "select".to_string(),
        "--pool".into(),
        pool.to_string(),
        "--labels".into(),
        f.p("labels.csv"),
        "--backend".into(),
        "cpu".into(),
        "--quiet".into(),
    ];
    if !extra.contains(&"--batch") {
        v.extend(["--batch".to_string(), "5".to_string()]);
    }
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn run(args: &[String]) -> Output {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    poolrank(&a)
}

/// A 150-row synthetic pool `s.npy` with labels for every row (`s.labels.csv`) and for the
/// first 30 (`part.csv`) in `dir`.
fn synth_pool(dir: &Path) {
    succeeded(&poolrank(&[
        "synth",
        "--scenario",
        "smooth",
        "--n",
        "150",
        "--dim",
        "4",
        "--out",
        dir.join("s").to_str().unwrap(),
    ]));
    let all = std::fs::read_to_string(dir.join("s.labels.csv")).unwrap();
    let part: String = all.lines().take(31).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("part.csv"), part).unwrap();
}

fn simulate_args(dir: &Path, labels: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "simulate",
        "--pool",
        dir.join("s.npy").to_str().unwrap(),
        "--labels",
        labels,
        "--init",
        "10",
        "--batch",
        "5",
        "--rounds",
        "2",
        "--topk",
        "10",
        "--reps",
        "1",
        "--strategies",
        "greedy",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn diagnose_args(dir: &Path, labels: &str, out: &Path) -> Vec<String> {
    [
        "diagnose",
        "--pool",
        dir.join("s.npy").to_str().unwrap(),
        "--labels",
        labels,
        "--folds",
        "2",
        "--nn-sample",
        "16",
        "--batch",
        "5",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// SMILES of the Enamine 10k set, each `repeat` times with its own id, as a `.smi` file.
fn enamine_smi(path: &Path, repeat: usize) {
    use std::io::Read;
    let scores = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/enamine10k/enamine10k_morgan2_2048.scores.csv.gz"
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(scores).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let smiles: Vec<String> = csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap()[1].to_string())
        .collect();
    let mut out = String::with_capacity(smiles.len() * repeat * 48);
    for k in 0..repeat {
        for (i, s) in smiles.iter().enumerate() {
            out.push_str(&format!("{s}\tm{k}_{i}\n"));
        }
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn an_output_that_is_an_input_or_another_output_is_refused() {
    let f = Fixture::new();
    let before = snapshot(f.dir.path());
    let pool = f.p("pool.fps");
    // The pool, the labels, the ids file and the pending file, by name, by another spelling,
    // by a hard link and by a symbolic link.
    std::fs::hard_link(f.path("pool.fps"), f.path("hard.fps")).unwrap();
    std::os::unix::fs::symlink(f.path("labels.csv"), f.path("soft.csv")).unwrap();
    let dotted = format!("{}/./pool.fps", f.dir.path().display());
    let pending = f.write("pending.txt", "c25\n");
    for out in [
        pool.clone(),
        dotted,
        f.p("labels.csv"),
        f.p("hard.fps"),
        f.p("soft.csv"),
        pending.clone(),
    ] {
        let o = run(&select_args(
            &f,
            &pool,
            &["--pending", &pending, "--out", &out],
        ));
        failed(&o, &["refused as an output", "also an input"]);
    }
    let npy = f.p("pool.npy");
    let ids = f.p("ids.txt");
    let o = run(&select_args(&f, &npy, &["--ids", &ids, "--out", &ids]));
    failed(&o, &["ids.txt", "also an input"]);
    // Two outputs on one file: the batch and the summary.
    let x = f.p("x.csv");
    let x2 = format!("{}/sub/../x.csv", f.dir.path().display());
    std::fs::create_dir(f.path("sub")).unwrap();
    let o = run(&select_args(&f, &pool, &["--out", &x, "--summary", &x2]));
    failed(&o, &["x.csv", "another output"]);
    assert!(!f.path("x.csv").exists());
    let mut after = snapshot(f.dir.path());
    after.remove("hard.fps");
    after.remove("pending.txt");
    assert_same(&after, &before, "an input changed");
    assert!(hidden(f.dir.path()).is_empty());

    // featurize: the reject list on the output, or on the ids file beside a .npz.
    let smi = f.write("lib.smi", "CCO a\nC1CC b\nCCN c\n");
    for (out, rejects, what) in [
        ("lib.fps", "lib.fps", "another output"),
        ("lib.npz", "lib.ids.txt", "another output"),
        ("lib.npz", "lib.smi", "also an input"),
    ] {
        let o = poolrank(&[
            "featurize",
            "--smiles",
            &smi,
            "--quiet",
            "--out",
            &f.p(out),
            "--skip-invalid",
            &f.p(rejects),
        ]);
        failed(&o, &["refused as an output", what]);
    }
    assert_eq!(
        std::fs::read_to_string(&smi).unwrap(),
        "CCO a\nC1CC b\nCCN c\n"
    );
    assert!(!f.path("lib.fps").exists() && !f.path("lib.npz").exists());

    // simulate and diagnose: an input inside the output folder under an output's name.
    let dir = f.path("syn");
    std::fs::create_dir(&dir).unwrap();
    synth_pool(&dir);
    let out = dir.join("run");
    std::fs::create_dir(&out).unwrap();
    std::fs::copy(dir.join("s.labels.csv"), out.join("curves.csv")).unwrap();
    let labels = out.join("curves.csv");
    let o = run(&simulate_args(&dir, labels.to_str().unwrap(), &out, &[]));
    failed(&o, &["curves.csv", "also an input"]);
    std::fs::copy(dir.join("part.csv"), out.join("report.json")).unwrap();
    let labels = out.join("report.json");
    let o = run(&diagnose_args(&dir, labels.to_str().unwrap(), &out));
    failed(&o, &["report.json", "also an input"]);
    assert_eq!(
        std::fs::read(out.join("curves.csv")).unwrap(),
        std::fs::read(dir.join("s.labels.csv")).unwrap()
    );
}

#[test]
fn an_existing_output_that_is_not_a_regular_file_is_refused() {
    let f = Fixture::new();
    let pool = f.p("pool.fps");
    let fifo = f.path("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let o = run(&select_args(&f, &pool, &["--out", &f.p("fifo")]));
    failed(&o, &["fifo", "a FIFO, not a regular file"]);
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    std::fs::create_dir(f.path("folder")).unwrap();
    let o = run(&select_args(&f, &pool, &["--out", &f.p("folder")]));
    failed(&o, &["folder", "not a regular file"]);
    std::os::unix::fs::symlink(f.path("nothing"), f.path("dangling.csv")).unwrap();
    let o = run(&select_args(&f, &pool, &["--out", &f.p("dangling.csv")]));
    failed(&o, &["dangling.csv", "symbolic link to nothing"]);
    // synth: a previous pool survives a labels file that cannot be replaced (a folder).
    let prefix = f.p("syn");
    let synth = |seed: &str| {
        poolrank(&[
            "synth",
            "--scenario",
            "smooth",
            "--n",
            "50",
            "--dim",
            "3",
            "--seed",
            seed,
            "--out",
            &prefix,
        ])
    };
    succeeded(&synth("1"));
    std::fs::remove_file(f.path("syn.labels.csv")).unwrap();
    std::fs::create_dir(f.path("syn.labels.csv")).unwrap();
    let npy = std::fs::read(f.path("syn.npy")).unwrap();
    let o = synth("2");
    assert_eq!(
        std::fs::read(f.path("syn.npy")).unwrap(),
        npy,
        "syn.npy changed"
    );
    failed(&o, &["syn.labels.csv", "a folder, not a regular file"]);
    if is_root() {
        // A device node like /dev/null (made here, so the system's is never at risk).
        let null = f.path("null");
        let made = Command::new("mknod")
            .arg(&null)
            .args(["c", "1", "3"])
            .status()
            .unwrap();
        assert!(made.success());
        let o = run(&select_args(&f, &pool, &["--out", &f.p("null")]));
        failed(&o, &["null", "a device, not a regular file"]);
        let t = std::fs::symlink_metadata(&null).unwrap().file_type();
        assert!(t.is_char_device(), "the device node was replaced");
    } else {
        eprintln!("not root: skipping the device-node case");
    }
    assert!(hidden(f.dir.path()).is_empty());
}

#[test]
fn a_later_output_that_fails_leaves_every_earlier_file_as_it_was() {
    let f = Fixture::new();
    let pool = f.p("pool.fps");
    let batch = f.p("batch.csv");
    succeeded(&run(&select_args(&f, &pool, &["--out", &batch])));
    let old = std::fs::read(&batch).unwrap();
    let nodir = f.p("nodir/s.json");
    let o = run(&select_args(
        &f,
        &pool,
        &["--batch", "6", "--out", &batch, "--summary", &nodir],
    ));
    // The files first: the message alone would not show the defect.
    assert_eq!(std::fs::read(&batch).unwrap(), old, "batch.csv changed");
    failed(&o, &["nodir", "does not exist"]);

    // simulate and diagnose: the previous run's files survive a later file that cannot be
    // replaced (here a folder where the plot goes).
    let dir = f.path("syn");
    std::fs::create_dir(&dir).unwrap();
    synth_pool(&dir);
    let labels = dir.join("s.labels.csv");
    let out = dir.join("sim");
    succeeded(&run(&simulate_args(
        &dir,
        labels.to_str().unwrap(),
        &out,
        &[],
    )));
    std::fs::remove_file(out.join("recall.png")).unwrap();
    std::fs::create_dir(out.join("recall.png")).unwrap();
    std::fs::write(out.join("recall.png/keep"), "x").unwrap();
    let before = snapshot(&out);
    assert_eq!(before.len(), 3, "{:?}", before.keys());
    let o = run(&simulate_args(
        &dir,
        labels.to_str().unwrap(),
        &out,
        &["--seed", "9"],
    ));
    failed(&o, &["recall.png", "not a regular file"]);
    assert_same(
        &snapshot(&out),
        &before,
        "a previous simulate output changed",
    );
    assert!(hidden(&out).is_empty());

    let part = dir.join("part.csv");
    let out = dir.join("diag");
    succeeded(&run(&diagnose_args(&dir, part.to_str().unwrap(), &out)));
    std::fs::remove_file(out.join("report.html")).unwrap();
    std::fs::create_dir(out.join("report.html")).unwrap();
    let before = snapshot(&out);
    assert_eq!(before.len(), 1);
    let o = run(&diagnose_args(&dir, part.to_str().unwrap(), &out));
    failed(&o, &["report.html", "not a regular file"]);
    assert_same(&snapshot(&out), &before, "report.json changed");
    assert!(hidden(&out).is_empty());
}

#[test]
fn a_failed_featurize_keeps_the_previous_outputs_and_leaves_no_temporary_file() {
    let f = Fixture::new();
    let smi = f.write("lib.smi", "CCO a\nCCN b\nc1ccccc1 c\n");
    let out = f.p("lib.npz");
    succeeded(&poolrank(&[
        "featurize",
        "--smiles",
        &smi,
        "--quiet",
        "--out",
        &out,
    ]));
    let before = snapshot(f.dir.path());
    assert!(before.contains_key("lib.ids.txt"));
    // A bad molecule stops the run; a reject list that cannot be written (a folder) used to
    // fail only after the .npz was replaced.
    let bad = f.write("bad.smi", "CCO x\nCCCl y\nC1CC z\n");
    let o = poolrank(&["featurize", "--smiles", &bad, "--quiet", "--out", &out]);
    failed(&o, &["bad.smi:3"]);
    std::fs::create_dir(f.path("rejects")).unwrap();
    let o = poolrank(&[
        "featurize",
        "--smiles",
        &bad,
        "--quiet",
        "--out",
        &out,
        "--skip-invalid",
        &f.p("rejects"),
    ]);
    let mut after = snapshot(f.dir.path());
    after.remove("bad.smi");
    assert_same(&after, &before, "the previous featurize outputs changed");
    assert!(
        hidden(f.dir.path()).is_empty(),
        "{:?}",
        hidden(f.dir.path())
    );
    failed(&o, &["rejects", "not a regular file"]);
}

#[test]
fn sigint_and_sigterm_remove_staged_files_and_keep_the_previous_output() {
    let f = Fixture::new();
    let small = f.write("small.smi", "CCO a\nCCN b\n");
    let out = f.p("lib.npz");
    succeeded(&poolrank(&[
        "featurize",
        "--smiles",
        &small,
        "--quiet",
        "--out",
        &out,
    ]));
    let before = snapshot(f.dir.path());
    // About 400,000 molecules on one thread: tens of seconds, far longer than the wait below.
    let big = f.path("big.smi");
    enamine_smi(&big, 40);
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let child = Command::new(env!("CARGO_BIN_EXE_poolrank"))
            .args(["featurize", "--threads", "1", "--quiet", "--smiles"])
            .arg(&big)
            .args(["--out", &out])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the run has staged its files, then interrupt it mid-write.
        let t0 = std::time::Instant::now();
        while hidden(f.dir.path()).is_empty() {
            assert!(t0.elapsed().as_secs() < 60, "featurize never staged a file");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "SIG{signal}: {err}");
        assert!(err.contains("interrupted"), "{err}");
        assert!(
            hidden(f.dir.path()).is_empty(),
            "SIG{signal} left {:?}",
            hidden(f.dir.path())
        );
        let mut after = snapshot(f.dir.path());
        after.remove("big.smi");
        assert_same(
            &after,
            &before,
            &format!("SIG{signal} changed the previous output"),
        );
    }
}

/// A tiny tmpfs at `dir` (root only), unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: PathBuf, size: &str) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(ok.success(), "mount tmpfs");
        Tmpfs(dir)
    }

    /// Fills the file system, then frees `pages` 4 KiB pages.
    fn fill_leaving(&self, pages: usize) {
        let mut chunks = Vec::new();
        for i in 0.. {
            let p = self.0.join(format!("fill{i}"));
            if std::fs::write(&p, [0u8; 4096]).is_err() {
                let _ = std::fs::remove_file(&p);
                break;
            }
            chunks.push(p);
        }
        for p in chunks.iter().rev().take(pages) {
            std::fs::remove_file(p).unwrap();
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_an_error_and_leaves_the_previous_files() {
    if !is_root() {
        eprintln!("not root: skipping the full-disk (tmpfs) cases");
        return;
    }
    let f = Fixture::new();
    // featurize to gzip FPS: the compressed output (several hundred KiB) cannot fit in 64 KiB.
    let smi = f.path("lib.smi");
    enamine_smi(&smi, 1);
    let disk = Tmpfs::mount(f.path("disk"), "64k");
    let out = disk.0.join("pool.fps.gz");
    let o = Command::new(env!("CARGO_BIN_EXE_poolrank"))
        .args(["featurize", "--quiet", "--smiles"])
        .arg(&smi)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    failed(&o, &["pool.fps.gz", "No space left"]);
    assert!(snapshot(&disk.0).is_empty() && hidden(&disk.0).is_empty());

    // select: the batch fits, the summary does not; the previous pair stays.
    let pool = f.p("pool.fps");
    let (batch, summary) = (disk.0.join("batch.csv"), disk.0.join("s.json"));
    let (b, s) = (batch.to_str().unwrap(), summary.to_str().unwrap());
    succeeded(&run(&select_args(&f, &pool, &["--out", b, "--summary", s])));
    let before = snapshot(&disk.0);
    disk.fill_leaving(1);
    let o = run(&select_args(
        &f,
        &pool,
        &["--batch", "7", "--out", b, "--summary", s],
    ));
    failed(&o, &["No space left"]);
    let after: std::collections::BTreeMap<_, _> = snapshot(&disk.0)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("fill"))
        .collect();
    assert_same(&after, &before, "the previous batch or summary changed");
    assert!(hidden(&disk.0).is_empty(), "{:?}", hidden(&disk.0));
}

#[test]
fn silently_ignored_options_are_errors_naming_the_option() {
    let f = Fixture::new();
    let dir = f.path("syn");
    std::fs::create_dir(&dir).unwrap();
    synth_pool(&dir);
    let labels = dir.join("s.labels.csv");
    let out = dir.join("sim");
    let l = labels.to_str().unwrap();
    let mut args = simulate_args(&dir, l, &out, &[]);
    let at = args.iter().position(|a| a == "--rounds").unwrap();
    args[at + 1] = "0".into();
    failed(&run(&args), &["--rounds", "at least 1"]);
    let mut args = simulate_args(&dir, l, &out, &[]);
    let at = args.iter().position(|a| a == "--strategies").unwrap();
    args[at + 1] = "ucb,greedy,ucb".into();
    failed(&run(&args), &["--strategies", "ucb(2) is listed twice"]);
    assert!(!out.exists());
    let pool = f.p("pool.fps");
    let o_csv = f.p("o.csv");
    for extra in [
        &["--batch-mode", "diverse", "--shortlist", "0"][..],
        &["--max-sim", "0.9", "--shortlist", "3"][..],
        &["--shortlist", "50"][..],
    ] {
        let mut e = extra.to_vec();
        e.extend(["--out", &o_csv]);
        failed(&run(&select_args(&f, &pool, &e)), &["--shortlist"]);
    }
    assert!(!f.path("o.csv").exists());
}

#[test]
fn featurize_with_every_molecule_refused_writes_nothing_and_names_the_first() {
    let f = Fixture::new();
    let smi = f.write("bad.smi", "C1CC a\nC(C)(C)(C)(C)C b\n");
    let o = poolrank(&[
        "featurize",
        "--smiles",
        &smi,
        "--quiet",
        "--out",
        &f.p("lib.fps"),
        "--skip-invalid",
        &f.p("rejects.tsv"),
    ]);
    failed(
        &o,
        &[
            "bad.smi",
            "every molecule was refused (2)",
            "line 1 (\"a\")",
        ],
    );
    // All or nothing: the reject list goes with the rest (the message says why).
    assert!(!f.path("rejects.tsv").exists() && !f.path("lib.fps").exists());
    assert!(hidden(f.dir.path()).is_empty());
}
