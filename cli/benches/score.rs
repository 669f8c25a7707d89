//! Scoring throughput of the backends.
//!
//! `cargo bench --bench score`. Ids name the backend, kernel, labels and pool size
//! (`score/cpu/tanimoto-2048/n1000/N200000`); throughput is in candidates/s.
//! - `score`: mean + sd for N candidates against n labels. The fingerprints are the real
//!   Enamine 10k Morgan fingerprints shipped with the demo (labels: 1000 of them chosen with a
//!   fixed seed; pool: all 10,449 repeated to N), as bits for Tanimoto and counts for MinMax.
//! - `variance`: the variance product alone (`s2 − rowsum((Ks·Wᵀ)²)`) on a given `Ks` block;
//!   GFLOP/s = N·n² / time (the multiply-adds of the triangular product, counted twice).
//! - `gpu_vs_cpu`: `score`'s Tanimoto case on both backends, same inputs, one after the other
//!   (`gpu_vs_cpu/gpu/tanimoto-2048/n1000/N200000`, `gpu_vs_cpu/cpu/...`). The GPU half needs a
//!   hardware adapter (`GpuOptions::default()`: software ones only with
//!   `POOLRANK_ALLOW_SOFTWARE_GPU=1`); without one it prints a line and runs the CPU half alone.
//!   Each GPU iteration waits for the device (the read-back), so the time is the device's.
//!
//! `POOLRANK_BENCH_N` changes N for `score` and `gpu_vs_cpu` (default 200000).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use poolrank::backend::{CpuScorer, GpuContext, GpuOptions, GpuScorer, Scorer};
use poolrank::data::{Features, NpzCountsReader, PoolReader, Tile};
use poolrank::gp::{fit, FittedGp, GpParams};
use poolrank::kernel::KernelKind;
use poolrank::rng::seeded_order;
use poolrank_cli::demo::DemoFiles;

fn enamine_counts() -> Features {
    let files = DemoFiles::unpack().unwrap();
    let mut reader = NpzCountsReader::open(&files.pool(), None).unwrap();
    let mut tile = Tile::new(reader.kind());
    let mut all = Features::empty(reader.kind());
    while reader.read_tile(4096, &mut tile).unwrap() {
        for i in 0..tile.len() {
            all.push_row_from(&tile.features, i);
        }
    }
    all
}

fn model(kernel: KernelKind, x: &Features) -> FittedGp {
    let mut p = GpParams::new(kernel);
    p.signal_var = Some(1.0);
    p.noise = Some(0.1);
    let y: Vec<f64> = (0..x.len())
        .map(|i| ((i * 7919) % 101) as f64 / 101.0)
        .collect();
    fit(&p.check(x.kind()).unwrap(), x, &y).unwrap()
}

fn bench_n() -> usize {
    std::env::var("POOLRANK_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000)
}

fn bench_score(c: &mut Criterion) {
    let big_n = bench_n();
    let counts = enamine_counts();
    let bits = counts.presence_bits().unwrap();
    let order = seeded_order(counts.len(), 3);
    let pool_rows: Vec<usize> = (0..big_n).map(|i| i % counts.len()).collect();
    let mut group = c.benchmark_group("score");
    group.sample_size(10);
    for n in [1000usize] {
        let train_rows = &order[..n];
        for (name, kernel, feats) in [
            ("tanimoto-2048", KernelKind::Tanimoto, &bits),
            ("minmax-2048", KernelKind::MinMax, &counts),
        ] {
            let gp = model(kernel, &feats.select_rows(train_rows));
            let pool = feats.select_rows(&pool_rows);
            let scorer = CpuScorer::new(&gp);
            let (mut mean, mut var) = (vec![0f32; big_n], vec![0f32; big_n]);
            group.throughput(Throughput::Elements(big_n as u64));
            group.bench_function(
                BenchmarkId::new(format!("cpu/{name}/n{n}"), format!("N{big_n}")),
                |b| b.iter(|| scorer.posterior_into(&pool, &mut mean, &mut var).unwrap()),
            );
        }
    }
    group.finish();
}

fn bench_variance(c: &mut Criterion) {
    let rows = 20_000;
    let mut group = c.benchmark_group("variance");
    group.sample_size(10);
    let counts = enamine_counts();
    let order = seeded_order(counts.len(), 4);
    for n in [1000usize, 2000] {
        let gp = model(KernelKind::MinMax, &counts.select_rows(&order[..n]));
        let scorer = CpuScorer::new(&gp);
        let ks: Vec<f32> = (0..rows * n)
            .map(|i| ((i * 7919) % 1000) as f32 / 2000.0)
            .collect();
        let mut var = vec![0f32; rows];
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_function(
            BenchmarkId::new(format!("cpu/tri-gemm/n{n}"), format!("N{rows}")),
            |b| b.iter(|| scorer.variance_from_ks(&ks, &mut var)),
        );
    }
    group.finish();
}

fn bench_gpu_vs_cpu(c: &mut Criterion) {
    let (big_n, n, name) = (bench_n(), 1000usize, "tanimoto-2048");
    let bits = enamine_counts().presence_bits().unwrap();
    let order = seeded_order(bits.len(), 3);
    let pool_rows: Vec<usize> = (0..big_n).map(|i| i % bits.len()).collect();
    let gp = model(KernelKind::Tanimoto, &bits.select_rows(&order[..n]));
    let pool = bits.select_rows(&pool_rows);
    let (mut mean, mut var) = (vec![0f32; big_n], vec![0f32; big_n]);
    let gpu = match GpuContext::new(&GpuOptions::default()) {
        Ok(ctx) => {
            eprintln!("gpu_vs_cpu: GPU half on {}", ctx.adapter());
            Some(GpuScorer::new(&ctx, &gp).unwrap())
        }
        Err(e) => {
            println!("gpu_vs_cpu: no GPU adapter, skipping the GPU half ({e})");
            None
        }
    };
    let cpu = CpuScorer::new(&gp);
    let mut group = c.benchmark_group("gpu_vs_cpu");
    group.sample_size(10);
    group.throughput(Throughput::Elements(big_n as u64));
    let id =
        |backend: &str| BenchmarkId::new(format!("{backend}/{name}/n{n}"), format!("N{big_n}"));
    if let Some(gpu) = &gpu {
        group.bench_function(id("gpu"), |b| {
            b.iter(|| gpu.posterior_into(&pool, &mut mean, &mut var).unwrap())
        });
    }
    group.bench_function(id("cpu"), |b| {
        b.iter(|| cpu.posterior_into(&pool, &mut mean, &mut var).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_score, bench_variance);
criterion_group!(gpu_vs_cpu, bench_gpu_vs_cpu);
criterion_main!(benches, gpu_vs_cpu);
