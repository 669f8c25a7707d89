//! `--backend` end to end: the GPU path (Mesa's llvmpipe in CI, allowed explicitly) returns the
//! same batch as the CPU path on the shipped Enamine 10k counts; a GPU that is not allowed is a
//! clear error.

use std::path::Path;
use std::process::Command;

fn repo(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/enamine10k")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn select(dir: &Path, backend: &str, allow_software: bool, out: &str) -> std::process::Output {
    // 104 labels: every 100th molecule.
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
    // Same picks in the same order, except where two scores tie within f32 tolerance.
    for (k, ((ia, sa), (ib, sb))) in a.iter().zip(&b).enumerate() {
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
