//! `--backend` end to end: the GPU path (Mesa's llvmpipe in CI, allowed explicitly) returns the
//! same batch as the CPU path on the shipped Enamine 10k counts; a GPU that is not allowed is a
//! clear error.

use std::path::Path;
use std::process::Command;

fn repo(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/enamine10k")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Writes `DIR/labels.csv` (once): 104 labels, every 100th molecule, ids the row numbers.
fn write_labels(dir: &Path) -> std::path::PathBuf {
    let labels = dir.join("labels.csv");
    if !labels.exists() {
        let all = poolrank::data::read_labels(&poolrank::data::LabelSpec::new(repo(
            "enamine10k_morgan2_2048.scores.csv.gz",
        )))
        .unwrap();
        let mut text = String::from("id,score\n");
        for i in (0..all.ids.len()).step_by(100) {
            text.push_str(&format!("{i},{}\n", all.values[i]));
        }
        std::fs::write(&labels, text).unwrap();
    }
    labels
}

fn select(dir: &Path, backend: &str, allow_software: bool, out: &str) -> std::process::Output {
    let labels = write_labels(dir);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_poolrank"));
    cmd.args([
        "select",
        "--pool",
        &repo("enamine10k_morgan2_2048.counts.npz"),
        "--labels",
        &labels.to_string_lossy(),
        "--minimize",
        "--batch",
        "104",
        "--acq",
        "ucb",
        "--noise",
        "0.1",
        "--signal-var",
        "1",
        "--backend",
        backend,
        "--out",
        &dir.join(out).to_string_lossy(),
    ]);
    cmd.env_remove("POOLRANK_ALLOW_SOFTWARE_GPU");
    if allow_software {
        cmd.env("POOLRANK_ALLOW_SOFTWARE_GPU", "1");
    }
    cmd.output().unwrap()
}

fn batch(path: &Path) -> Vec<(usize, f32)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[2].parse().unwrap(), f[3].parse().unwrap())
        })
        .collect()
}

#[test]
fn gpu_batch_equals_cpu_batch_on_enamine() {
    let dir = tempfile::tempdir().unwrap();
    let cpu = select(dir.path(), "cpu", false, "cpu.csv");
    assert!(
        cpu.status.success(),
        "{}",
        String::from_utf8_lossy(&cpu.stderr)
    );
    let gpu = select(dir.path(), "gpu", true, "gpu.csv");
    let err = String::from_utf8_lossy(&gpu.stderr);
    assert!(
        gpu.status.success(),
        "the GPU backend needs an adapter; in CI that is Mesa's llvmpipe (apt-get install mesa-vulkan-drivers): {err}"
    );
    assert!(err.contains("backend: gpu"), "{err}");
    let (a, b) = (
        batch(&dir.path().join("cpu.csv")),
        batch(&dir.path().join("gpu.csv")),
    );
    assert_eq!(a.len(), 104);
    assert_same_picks(&a, &b);
}

/// Same picks in the same order, except where two scores tie within f32 tolerance.
fn assert_same_picks(a: &[(usize, f32)], b: &[(usize, f32)]) {
    assert_eq!(a.len(), b.len());
    for (k, ((ia, sa), (ib, sb))) in a.iter().zip(b).enumerate() {
        assert!(
            (sa - sb).abs() <= 1e-4 * (1.0 + sa.abs()),
            "rank {k}: score {sa} vs {sb}"
        );
        if ia != ib {
            let other = a.iter().find(|(i, _)| i == ib).map(|(_, s)| *s);
            assert!(
                other.is_some_and(|s| (s - sa).abs() <= 1e-4 * (1.0 + sa.abs())),
                "rank {k}: cpu picked {ia}, gpu {ib}, and they do not tie"
            );
        }
    }
}

#[test]
fn gpu_without_an_allowed_adapter_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = select(dir.path(), "gpu", false, "x.csv");
    let err = String::from_utf8_lossy(&o.stderr);
    // On a machine with a hardware GPU this succeeds; on CI's (llvmpipe only) it must refuse.
    if !o.status.success() {
        assert!(
            err.contains("POOLRANK_ALLOW_SOFTWARE_GPU") || err.contains("adapter"),
            "{err}"
        );
        assert!(!dir.path().join("x.csv").exists());
        assert!(!err.contains("panicked"), "{err}");
    }
    // `auto` never fails for want of a GPU: it falls back to the CPU and says so.
    let o = select(dir.path(), "auto", false, "y.csv");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("backend: "));
}

/// Runs `poolrank ARGS` with software GPUs allowed, returning its output.
fn poolrank(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_poolrank"))
        .args(args)
        .env("POOLRANK_ALLOW_SOFTWARE_GPU", "1")
        .output()
        .unwrap()
}

fn ok(o: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    err
}

/// A model saved by `fit` gives `select --model` the batch a fresh `select` gives, byte for
/// byte, on the CPU and on the GPU (where a sparse fit's product runs too); a model fitted on
/// the CPU scores on the GPU with the CPU's batch (up to f32 ties). Every model kind the flags
/// reach: exact with fitted hyperparameters, sparse, minimising, a diverse batch.
#[test]
fn a_saved_model_selects_the_batch_a_fresh_select_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    write_labels(dir.path());
    let pool = repo("enamine10k_morgan2_2048.counts.npz");
    let labels = d("labels.csv");
    let cases: [(&str, &[&str], &[&str]); 3] = [
        ("exact", &["--minimize"], &["--acq", "ucb", "--batch", "50"]),
        (
            "sparse",
            &["--minimize", "--inducing", "40", "--noise", "0.1"],
            &["--acq", "ei", "--batch", "0.003"],
        ),
        (
            "diverse",
            &[],
            &[
                "--acq",
                "thompson-marginal",
                "--batch",
                "20",
                "--batch-mode",
                "diverse",
            ],
        ),
    ];
    for (name, fit_flags, select_flags) in cases {
        for backend in ["cpu", "gpu"] {
            let model = d(&format!("{name}-{backend}.model"));
            let mut fit = vec!["fit", "--pool", &pool, "--labels", &labels, "--quiet"];
            fit.extend_from_slice(fit_flags);
            fit.extend_from_slice(&["--backend", backend, "--save-model", &model]);
            let err = ok(&poolrank(&fit));
            assert!(err.contains("wrote"), "{err}");

            let fresh_out = d(&format!("{name}-{backend}-fresh.csv"));
            let mut fresh = vec!["select", "--pool", &pool, "--labels", &labels, "--quiet"];
            fresh.extend_from_slice(fit_flags);
            fresh.extend_from_slice(select_flags);
            fresh.extend_from_slice(&["--backend", backend, "--out", &fresh_out]);
            ok(&poolrank(&fresh));

            let saved_out = d(&format!("{name}-{backend}-saved.csv"));
            let mut saved = vec!["select", "--pool", &pool, "--model", &model, "--quiet"];
            saved.extend_from_slice(select_flags);
            saved.extend_from_slice(&["--backend", backend, "--out", &saved_out]);
            let err = ok(&poolrank(&saved));
            assert!(err.contains(&format!("backend: {backend}")), "{err}");
            let (a, b) = (
                std::fs::read_to_string(&fresh_out).unwrap(),
                std::fs::read_to_string(&saved_out).unwrap(),
            );
            assert!(a.lines().count() > 10, "{a}");
            assert_eq!(a, b, "{name} on {backend}: the saved model's batch differs");

            // Labels given beside the model are checked, then change nothing.
            let again = d(&format!("{name}-{backend}-labels.csv"));
            let mut with_labels = saved.clone();
            let at = with_labels.len() - 2;
            with_labels.splice(at..at, ["--labels", labels.as_str()]);
            *with_labels.last_mut().unwrap() = &again;
            ok(&poolrank(&with_labels));
            assert_eq!(std::fs::read_to_string(&again).unwrap(), a);
        }
        // Across backends: the CPU's model on the GPU.
        let cross = d(&format!("{name}-cross.csv"));
        let mut args = vec![
            "select",
            "--pool",
            &pool,
            "--quiet",
            "--backend",
            "gpu",
            "--out",
            &cross,
        ];
        let model = d(&format!("{name}-cpu.model"));
        args.extend_from_slice(&["--model", &model]);
        args.extend_from_slice(select_flags);
        ok(&poolrank(&args));
        assert_same_picks(
            &batch(&dir.path().join(format!("{name}-cpu-fresh.csv"))),
            &batch(Path::new(&cross)),
        );
    }
}

#[test]
fn a_saved_model_refuses_other_labels_features_and_corrupt_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    write_labels(dir.path());
    let pool = repo("enamine10k_morgan2_2048.counts.npz");
    let model = d("m.model");
    ok(&poolrank(&[
        "fit",
        "--pool",
        &pool,
        "--labels",
        &d("labels.csv"),
        "--minimize",
        "--noise",
        "0.1",
        "--signal-var",
        "1",
        "--quiet",
        "--save-model",
        &model,
    ]));
    let refused = |args: &[&str], expect: &[&str]| {
        let out = d("never.csv");
        let mut all = args.to_vec();
        all.extend_from_slice(&["--out", &out]);
        let o = poolrank(&all);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "{args:?} succeeded");
        for e in expect {
            assert!(err.contains(e), "{args:?}: expected {e:?} in {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        assert!(!Path::new(&out).exists(), "{args:?} left {out}");
    };

    // Labels that are not the model's: one value changed.
    let text = std::fs::read_to_string(d("labels.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[5] = format!("{},-99", lines[5].split(',').next().unwrap());
    std::fs::write(d("other.csv"), lines.join("\n") + "\n").unwrap();
    refused(
        &[
            "select",
            "--pool",
            &pool,
            "--model",
            &model,
            "--labels",
            &d("other.csv"),
        ],
        &["other.csv", "-99"],
    );
    // The model maximises nothing the user did not ask for: --minimize must agree.
    let max_model = d("max.model");
    ok(&poolrank(&[
        "fit",
        "--pool",
        &pool,
        "--labels",
        &d("labels.csv"),
        "--noise",
        "0.1",
        "--signal-var",
        "1",
        "--quiet",
        "--save-model",
        &max_model,
    ]));
    refused(
        &[
            "select",
            "--pool",
            &pool,
            "--model",
            &max_model,
            "--minimize",
        ],
        &["--minimize", "maximise"],
    );
    // Model settings cannot be given with a model.
    refused(
        &[
            "select", "--pool", &pool, "--model", &model, "--kernel", "tanimoto",
        ],
        &["--kernel"],
    );
    // A pool of other features: 1024-bit fingerprints.
    let fps = d("bits.fps");
    let mut t = String::from("#FPS1\n#num_bits=1024\n");
    for i in 0..20 {
        t.push_str(&format!("{:0256x}\tx{i}\n", i + 1));
    }
    std::fs::write(&fps, t).unwrap();
    refused(
        &["select", "--pool", &fps, "--model", &model, "--batch", "2"],
        &[
            "bits.fps",
            "1024-bit fingerprints",
            "count fingerprints of 2048 features",
        ],
    );
    // Corrupted, truncated, foreign.
    let bytes = std::fs::read(&model).unwrap();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 3] ^= 1;
    std::fs::write(d("flipped.model"), flipped).unwrap();
    refused(
        &["select", "--pool", &pool, "--model", &d("flipped.model")],
        &["flipped.model", "checksum mismatch"],
    );
    std::fs::write(d("short.model"), &bytes[..bytes.len() - 100]).unwrap();
    refused(
        &["select", "--pool", &pool, "--model", &d("short.model")],
        &["short.model", "truncated"],
    );
    refused(
        &["select", "--pool", &pool, "--model", &d("labels.csv")],
        &["labels.csv", "not a poolrank model file"],
    );
    // Without --model, --labels is still required.
    refused(&["select", "--pool", &pool], &["--labels"]);
    // The model is an input of `select` and an output of `fit`: never overwritten by a run.
    let before = std::fs::read(&model).unwrap();
    let o = poolrank(&[
        "select", "--pool", &pool, "--model", &model, "--batch", "5", "--out", &model,
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("also an input"));
    let labels_before = std::fs::read(d("labels.csv")).unwrap();
    let o = poolrank(&[
        "fit",
        "--pool",
        &pool,
        "--labels",
        &d("labels.csv"),
        "--quiet",
        "--save-model",
        &d("labels.csv"),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("also an input"));
    assert_eq!(std::fs::read(&model).unwrap(), before);
    assert_eq!(std::fs::read(d("labels.csv")).unwrap(), labels_before);
}
