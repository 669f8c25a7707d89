//! Scoring throughput of the CPU backend: mean + sd for N pool candidates against n labels.
//!
//! `cargo bench --bench score` — ids like `score/cpu/tanimoto-2048/n1000/N200000`, throughput in
//! candidates/s. Data are synthetic with the density of Morgan fingerprints (about 49 of 2048
//! bits set; counts mostly 1), built outside the timed closure with fixed seeds.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use poolrank::backend::{CpuScorer, Scorer};
use poolrank::data::Features;
use poolrank::gp::{fit, FittedGp, GpParams};
use poolrank::kernel::KernelKind;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `rows` count fingerprints over 2048 features with about 49 non-zeros (as Enamine Morgan).
fn counts(rng: &mut Rng, rows: usize) -> Features {
    let mut indptr = vec![0];
    let (mut indices, mut values) = (Vec::new(), Vec::new());
    for _ in 0..rows {
        let mut row: Vec<u32> = (0..49).map(|_| (rng.next() % 2048) as u32).collect();
        row.sort_unstable();
        row.dedup();
        for f in row {
            indices.push(f);
            values.push(if rng.next() % 4 == 0 {
                1 + (rng.next() % 4) as u32
            } else {
                1
            });
        }
        indptr.push(indices.len());
    }
    Features::Counts {
        ndim: 2048,
        indptr,
        indices,
        values,
    }
}

fn bits(c: &Features) -> Features {
    let mut data = vec![0u64; c.len() * 32];
    for r in 0..c.len() {
        for &f in c.counts_row(r).unwrap().0 {
            data[r * 32 + f as usize / 64] |= 1 << (f % 64);
        }
    }
    Features::Bits { nbits: 2048, data }
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

fn bench_score(c: &mut Criterion) {
    let big_n: usize = std::env::var("POOLRANK_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let mut group = c.benchmark_group("score");
    group.sample_size(10);
    let mut rng = Rng(1);
    for n in [1000usize] {
        let train_c = counts(&mut rng, n);
        let pool_c = counts(&mut rng, big_n);
        let (train_b, pool_b) = (bits(&train_c), bits(&pool_c));
        for (name, kernel, train, pool) in [
            ("tanimoto-2048", KernelKind::Tanimoto, &train_b, &pool_b),
            ("minmax-2048", KernelKind::MinMax, &train_c, &pool_c),
        ] {
            let gp = model(kernel, train);
            let scorer = CpuScorer::new(&gp);
            let (mut mean, mut var) = (vec![0f32; big_n], vec![0f32; big_n]);
            group.throughput(Throughput::Elements(big_n as u64));
            group.bench_function(
                BenchmarkId::new(format!("cpu/{name}/n{n}"), format!("N{big_n}")),
                |b| b.iter(|| scorer.posterior_into(pool, &mut mean, &mut var).unwrap()),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench_score);
criterion_main!(benches);
