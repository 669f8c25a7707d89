//! `GP.predict` of the Python package, done in Rust, for measuring what the binding costs.
//!
//! `cargo run --release --example predict_npy -- POOL.npy N_TRAIN NOISE [BACKEND]` loads a
//! packed `.npy` into memory (as the Python caller holds its array), fits a GP (Tanimoto,
//! signal variance 1, the given noise) to the first `N_TRAIN` rows with the labels `sin(i)`
//! (row `i`), then predicts the mean and sd of every row in tiles of 65,536 (each tile's
//! packed bytes turned into the engine's words, then scored), as
//! `poolrank.GP(noise=NOISE, signal_var=1).fit(X[:N_TRAIN], y).predict(X, return_std=True)`
//! does; prints the seconds of the prediction. `scripts/bench_python.py` runs both on the
//! same file.

use std::time::Instant;

use poolrank::backend::{Backend, BackendChoice, GpuOptions, Scorer};
use poolrank::data::{push_packbits, Features, NpyBitsReader, NpyHeader, PoolReader, Tile};
use poolrank::gp::{fit, ModelSpec};
use poolrank::KernelKind;

fn main() -> poolrank::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = std::path::PathBuf::from(&args[1]);
    let n_train: usize = args[2].parse().expect("N_TRAIN");
    let noise: f64 = args[3].parse().expect("NOISE");
    let choice = match args.get(4).map(String::as_str) {
        Some("gpu") => BackendChoice::Gpu,
        Some("auto") => BackendChoice::Auto,
        _ => BackendChoice::Cpu,
    };
    let mut reader = NpyBitsReader::open(&path, None)?;
    let mut tile = Tile::new(reader.kind());
    reader.read_tile(n_train, &mut tile)?;
    let y: Vec<f64> = (0..n_train).map(|i| (i as f64).sin()).collect();
    let spec = ModelSpec {
        kernel: Some(KernelKind::Tanimoto),
        noise: Some(noise),
        signal_var: Some(1.0),
        ..ModelSpec::default()
    };
    let gp = fit(&spec.check(tile.features.kind())?, &tile.features, &y)?;

    let header = NpyHeader::read(&path)?;
    let bytes = std::fs::read(&path).map_err(|e| poolrank::Error::io(&path, e))?;
    let packed = &bytes[header.data_offset..];
    let (rows, row_bytes) = (header.shape[0], header.shape[1]);

    let started = Instant::now();
    let backend = Backend::new(choice, &GpuOptions::default())?;
    let scorer = backend.prepare(&gp)?;
    let (mut mean, mut sd) = (Vec::new(), Vec::new());
    let (mut m, mut v) = (Vec::new(), Vec::new());
    let mut block = Features::empty(tile.features.kind());
    for start in (0..rows).step_by(65_536) {
        let end = (start + 65_536).min(rows);
        block.clear();
        let Features::Bits { data, .. } = &mut block else {
            unreachable!("packed bits")
        };
        for r in start..end {
            push_packbits(&packed[r * row_bytes..(r + 1) * row_bytes], data);
        }
        m.resize(end - start, 0.0);
        v.resize(end - start, 0.0);
        scorer.posterior_into(&block, &mut m, &mut v)?;
        mean.extend(m.iter().map(|&x| gp.mean_to_labels(f64::from(x))));
        sd.extend(v.iter().map(|&x| gp.sd_to_labels(f64::from(x))));
    }
    let seconds = started.elapsed().as_secs_f64();
    let check: f64 = mean.iter().sum::<f64>() + sd.iter().sum::<f64>();
    println!(
        "rust predict: {} rows in {seconds:.3} s (checksum {check:.6}) on {}",
        mean.len(),
        scorer.name()
    );
    Ok(())
}
