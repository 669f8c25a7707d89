//! Scoring throughput of the backends.
//!
//! `cargo bench --bench score`. Ids name the backend, kernel, labels and pool size
//! (`score/cpu/tanimoto-2048/n1000/N200000`); throughput is in candidates/s.
//! - `score`: mean + sd for N candidates against n labels. The fingerprints are the real
//!   Enamine 10k Morgan fingerprints shipped with the demo (labels: 1000 of them chosen with a
//!   fixed seed; pool: all 10,449 repeated to N), as bits for Tanimoto and counts for MinMax.
//! - `variance`: the variance product alone (`s2 − rowsum((Ks·Wᵀ)²)`) on a given `Ks` block,
//!   the scorer's fused kernel (`variance/cpu/fused/n1000/N20000`) against faer's triangular
//!   GEMM and row sums of squares, in the same chunks of `CHUNK` rows
//!   (`variance/cpu/faer-tri-gemm/...`); GFLOP/s = N·n² / time (the multiply-adds of the
//!   triangular product, counted twice).
//! - `gpu_vs_cpu`: `score`'s Tanimoto case on both backends, same inputs, one after the other
//!   (`gpu_vs_cpu/gpu/tanimoto-2048/n1000/N200000`, `gpu_vs_cpu/cpu/...`). The GPU half needs a
//!   hardware adapter (`GpuOptions::default()`: software ones only with
//!   `POOLRANK_ALLOW_SOFTWARE_GPU=1`); without one it prints a line and runs the CPU half alone.
//!   Each GPU iteration waits for the device (the read-back), so the time is the device's.
//!
//! - `prune`: pass 2 of `select` on the CPU, pruned against brute force
//!   (`prune/pruned/ucb/tanimoto-2048/n1000/N200000`, `prune/brute/...`): every tile scored
//!   and the best 1% of the pool kept, UCB (β = 2) and greedy. The pool is synthetic: the
//!   Enamine fingerprints repeated to N with four bits of each copy moved at random, so no two
//!   rows are the same; the labels are 1000 of the originals. It prints how many candidates
//!   got a variance, and how many a staged bound from a prefix of `W`'s rows.
//!
//! - `objectives`: several objectives' posteriors on MinMax counts
//!   (`objectives/cpu/minmax-2048/n500/two-shared/N50000`): one objective alone (`one`), two
//!   scored each on its own (`two-separate`), two and three from one shared kernel block
//!   (`two-shared`, `three-shared`), N/4 candidates.
//!
//! - `objective-rounds`: whole `select` rounds on MinMax counts, one objective (the docking
//!   score, UCB) against two (score and QED, EHVI), pruned and brute force
//!   (`objective-rounds/pruned/two-ehvi/n1000/N50000`): the Enamine 10k molecules repeated to
//!   N/4 candidates, 1,000 of them labeled with their real score and QED, fixed
//!   hyperparameters (one Cholesky per model; both objectives' models share `W`), the best 1%
//!   picked. It prints the median score phase and whole round of 21 rounds of each, run in turn
//!   after a warm-up (the library's own timers; the score phase is the pass over the pool, from
//!   the prepared models to the kept candidates), the medians of the 21 paired ratios, and how
//!   many candidates got their variances; then the same for 21 pruned rounds with fitted
//!   hyperparameters (`pruned-fitted`: each objective its own `W`; printed only).
//!
//! `POOLRANK_BENCH_N` changes N for `score` and `gpu_vs_cpu` (default 200000).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use faer::linalg::matmul::triangular::{matmul, BlockStructure};
use faer::{Accum, Mat, MatRef, Par};
use poolrank::acquisition::{AcqContext, Acquisition};
use poolrank::backend::{
    BestOf, CpuScorer, GpuContext, GpuOptions, GpuScorer, Scorer, SharedCpuScorer, CHUNK,
};
use poolrank::data::{Features, NpzCountsReader, PoolReader, Tile};
use poolrank::gp::{fit, FittedGp, GpParams};
use poolrank::kernel::KernelKind;
use poolrank::rng::seeded_order;
use poolrank::select::{Floor, TopK};
use poolrank_cli::demo::DemoFiles;
use rayon::prelude::*;

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
            BenchmarkId::new(format!("cpu/fused/n{n}"), format!("N{rows}")),
            |b| b.iter(|| scorer.variance_from_ks(&ks, &mut var)),
        );
        let w = gp.chol_inverse();
        let wt = Mat::<f32>::from_fn(n, n, |j, r| w[(r, j)] as f32);
        let s2 = gp.signal_var as f32;
        group.bench_function(
            BenchmarkId::new(format!("cpu/faer-tri-gemm/n{n}"), format!("N{rows}")),
            |b| b.iter(|| faer_variance(&wt, s2, &ks, &mut var)),
        );
    }
    group.finish();
}

/// `max(s2 − rowsum((Ks·Wᵀ)²), 0)` through faer's triangular GEMM, in parallel chunks of
/// `CHUNK` rows: the CPU scorer's product before the fused kernel.
fn faer_variance(wt: &Mat<f32>, s2: f32, ks: &[f32], var: &mut [f32]) {
    let n = wt.nrows();
    var.par_chunks_mut(CHUNK)
        .zip(ks.par_chunks(CHUNK * n))
        .for_each_init(
            || Mat::<f32>::zeros(CHUNK, n),
            |v, (var, ks)| {
                let m = var.len();
                let mut v = v.as_mut().subrows_mut(0, m);
                matmul(
                    v.as_mut(),
                    BlockStructure::Rectangular,
                    Accum::Replace,
                    MatRef::from_row_major_slice(ks, m, n),
                    BlockStructure::Rectangular,
                    wt.as_ref(),
                    BlockStructure::TriangularUpper,
                    1.0,
                    Par::Seq,
                );
                var.fill(0.0);
                for r in 0..n {
                    for (acc, x) in var.iter_mut().zip(v.as_ref().col(r).iter()) {
                        *acc += x * x;
                    }
                }
                for x in var.iter_mut() {
                    *x = (s2 - *x).max(0.0);
                }
            },
        );
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

/// The Enamine bits repeated to `big_n` rows, four set bits of each copy moved to random
/// places (a counter hash of the row), so the copies differ.
fn synthetic_bits(bits: &Features, big_n: usize) -> Features {
    let Features::Bits { nbits, data } = bits else {
        unreachable!()
    };
    let words = nbits.div_ceil(64);
    let mut out = Vec::with_capacity(big_n * words);
    for i in 0..big_n {
        let src = i % bits.len();
        let mut row = data[src * words..(src + 1) * words].to_vec();
        for k in 0..4u32 {
            let h = poolrank::rng::hash32((i as u32).wrapping_mul(4).wrapping_add(k) ^ 0x5bd1_e995);
            let set: Vec<usize> = (0..*nbits)
                .filter(|&b| row[b / 64] >> (b % 64) & 1 == 1)
                .collect();
            if let Some(&b) = set.get(h as usize % set.len().max(1)) {
                row[b / 64] &= !(1u64 << (b % 64));
            }
            let to = (h >> 16) as usize % nbits;
            row[to / 64] |= 1u64 << (to % 64);
        }
        out.extend(row);
    }
    Features::Bits {
        nbits: *nbits,
        data: out,
    }
}

fn bench_prune(c: &mut Criterion) {
    let (big_n, n, name) = (bench_n(), 1000usize, "tanimoto-2048");
    let bits = enamine_counts().presence_bits().unwrap();
    let order = seeded_order(bits.len(), 3);
    let gp = model(KernelKind::Tanimoto, &bits.select_rows(&order[..n]));
    let pool = synthetic_bits(&bits, big_n);
    let tile_rows = 65_536;
    let tiles: Vec<(usize, Features)> = (0..big_n)
        .step_by(tile_rows)
        .map(|s| {
            let rows: Vec<usize> = (s..(s + tile_rows).min(big_n)).collect();
            (s, pool.select_rows(&rows))
        })
        .collect();
    let scorer = CpuScorer::new(&gp);
    let ctx = AcqContext {
        best: gp.y_best as f32,
        seed: 0,
        round: 0,
    };
    let keep = big_n / 100;
    let skip: Vec<usize> = Vec::new();
    let mut group = c.benchmark_group("prune");
    group.sample_size(10);
    group.throughput(Throughput::Elements(big_n as u64));
    for (acq_name, acq) in [
        ("ucb", Acquisition::Ucb { beta: 2.0 }),
        ("greedy", Acquisition::Greedy),
    ] {
        for prune in [false, true] {
            let run = || {
                let mut top = TopK::new(keep);
                let mut floor = Floor::new(keep);
                let (mut out, mut exact, mut partial) = (Vec::new(), 0, 0);
                for (start, tile) in &tiles {
                    let what = BestOf {
                        acq,
                        ctx: &ctx,
                        start: *start,
                        keep,
                        skip: &skip,
                        keys: None,
                    };
                    out.clear();
                    if prune {
                        let st = scorer
                            .best_pruned_into(tile, &what, &mut floor, &mut out)
                            .unwrap()
                            .unwrap();
                        exact += st.variance;
                        partial += st.partial;
                    } else {
                        scorer.best_into(tile, &what, &mut out).unwrap();
                        exact += tile.len();
                    }
                    for s in &out {
                        top.push(s.score, start + s.row, ());
                    }
                }
                (top, exact, partial)
            };
            let (_, exact, partial) = run();
            let mode = if prune { "pruned" } else { "brute" };
            println!(
                "prune/{mode}/{acq_name}: {exact} of {big_n} candidates got a variance, \
                 {partial} a bound from a prefix of W's rows"
            );
            group.bench_function(
                BenchmarkId::new(
                    format!("{mode}/{acq_name}/{name}/n{n}"),
                    format!("N{big_n}"),
                ),
                |b| b.iter(&run),
            );
        }
    }
    group.finish();
}

/// Several objectives on one labeled set: one objective alone against two and three scored
/// from one shared kernel block (`SharedCpuScorer`), and two scored each on its own (what the
/// GPU backend does today). The target: two objectives at most 1.3× one.
fn bench_objectives(c: &mut Criterion) {
    let big_n = bench_n() / 4;
    let counts = enamine_counts();
    let order = seeded_order(counts.len(), 5);
    let pool_rows: Vec<usize> = (0..big_n).map(|i| i % counts.len()).collect();
    let pool = counts.select_rows(&pool_rows);
    let mut group = c.benchmark_group("objectives");
    group.sample_size(10);
    group.throughput(Throughput::Elements(big_n as u64));
    for n in [500usize, 1000] {
        let train = counts.select_rows(&order[..n]);
        let all: Vec<usize> = (0..n).collect();
        // Three objectives on the same rows: different labels, hence different alpha and W.
        let gps: Vec<FittedGp> = (0..3)
            .map(|k| {
                let mut p = GpParams::new(KernelKind::MinMax);
                p.signal_var = Some(1.0 + k as f64 * 0.3);
                p.noise = Some(0.1 / (1.0 + k as f64));
                let y: Vec<f64> = (0..n)
                    .map(|i| ((i * (7919 + 13 * k)) % 101) as f64 / 101.0)
                    .collect();
                fit(&p.check(train.kind()).unwrap(), &train, &y).unwrap()
            })
            .collect();
        let id = |what: &str| {
            BenchmarkId::new(format!("cpu/minmax-2048/n{n}/{what}"), format!("N{big_n}"))
        };
        let one = CpuScorer::new(&gps[0]);
        let (mut mean, mut var) = (vec![0f32; big_n], vec![0f32; big_n]);
        group.bench_function(id("one"), |b| {
            b.iter(|| one.posterior_into(&pool, &mut mean, &mut var).unwrap())
        });
        let two = CpuScorer::new(&gps[1]);
        group.bench_function(id("two-separate"), |b| {
            b.iter(|| {
                one.posterior_into(&pool, &mut mean, &mut var).unwrap();
                two.posterior_into(&pool, &mut mean, &mut var).unwrap()
            })
        });
        for m in [2usize, 3] {
            let heads: Vec<(&FittedGp, &[usize])> =
                gps[..m].iter().map(|g| (g, &all[..])).collect();
            let shared = SharedCpuScorer::new(&train, &heads).unwrap();
            let (mut mean, mut var) = (vec![0f32; big_n * m], vec![0f32; big_n * m]);
            let what = if m == 2 { "two-shared" } else { "three-shared" };
            group.bench_function(id(what), |b| {
                b.iter(|| shared.posterior_into(&pool, &mut mean, &mut var).unwrap())
            });
        }
    }
    group.finish();
}

/// The median and the range of the score phase (`Timings::score`) of several rounds, and
/// the median of their fit phase.
fn median_score(runs: impl Iterator<Item = poolrank::engine::Timings>) -> String {
    let runs: Vec<_> = runs.collect();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let (score, lo, hi) = median(runs.iter().map(|t| t.score * 1e3).collect());
    let (fit, _, _) = median(runs.iter().map(|t| t.fit * 1e3).collect());
    let (select, _, _) = median(runs.iter().map(|t| t.select * 1e3).collect());
    let (total, _, _) = median(runs.iter().map(|t| t.total * 1e3).collect());
    format!(
        "median {score:.1} ms ({lo:.1} to {hi:.1}) of {} rounds, fit {fit:.1} ms, \
         select {select:.1} ms, whole round {total:.1} ms",
        runs.len()
    )
}

/// Whole rounds through the library's entry points: `run_select` on the docking score (UCB,
/// β = 2) against `run_select_objectives` on score and QED (EHVI), each pruned and brute force.
fn bench_objective_rounds(c: &mut Criterion) {
    use poolrank::data::{IdList, Labels, MemoryPool, MultiLabels, ObjectiveSpec};
    use poolrank::engine::{run_select, BatchSize, SelectParams};
    use poolrank::gp::ModelSpec;
    use poolrank::multi::{run_select_objectives, MultiParams};
    let big_n = bench_n() / 4;
    let counts = enamine_counts();
    let rows: Vec<usize> = (0..big_n).map(|i| i % counts.len()).collect();
    let features = counts.select_rows(&rows);
    let name = std::path::PathBuf::from("<enamine repeated>");
    let pool = MemoryPool::new(&name, &features);
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/enamine10k/enamine10k_objectives.csv.gz"
    );
    let specs = [ObjectiveSpec::min("score"), ObjectiveSpec::max("qed")];
    let all =
        poolrank::data::read_objective_labels(std::path::Path::new(file), "id", &specs).unwrap();
    let n = 1000;
    let order = seeded_order(counts.len(), 5);
    // Pool row `r` (r < 10,449) is molecule `mol{r}`; the pool's ids are its row numbers.
    let at: std::collections::HashMap<&str, usize> = all
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let value = |k: usize, r: usize| all.values[k][at[format!("mol{r}").as_str()]].unwrap();
    let ids: Vec<String> = order[..n].iter().map(|r| r.to_string()).collect();
    let multi = MultiLabels {
        source: file.into(),
        objectives: specs.to_vec(),
        ids: ids.clone(),
        values: (0..2)
            .map(|k| order[..n].iter().map(|&r| Some(value(k, r))).collect())
            .collect(),
        lines: Vec::new(),
    };
    let one = Labels {
        source: file.into(),
        ids,
        values: order[..n].iter().map(|&r| value(0, r)).collect(),
        lines: Vec::new(),
    };
    let model = |fixed: bool| ModelSpec {
        kernel: Some(KernelKind::MinMax),
        signal_var: fixed.then_some(1.0),
        noise: fixed.then_some(0.1),
        ..ModelSpec::default()
    };
    let select = |prune: bool, fixed: bool| SelectParams {
        model: model(fixed),
        minimize: true,
        batch: BatchSize::Fraction(0.01),
        backend: poolrank::backend::BackendChoice::Cpu,
        prune,
        ..SelectParams::default()
    };
    let none = IdList::default();
    let mut group = c.benchmark_group("objective-rounds");
    group.sample_size(10);
    group.throughput(Throughput::Elements(big_n as u64));
    // Fitted hyperparameters (each objective its own signal variance and noise, so its own
    // `W`) only in turn, not under criterion.
    for (mode, prune, fixed) in [
        ("pruned", true, true),
        ("brute", false, true),
        ("pruned-fitted", true, false),
    ] {
        let id = |what: &str| BenchmarkId::new(format!("{mode}/{what}/n{n}"), format!("N{big_n}"));
        let p1 = select(prune, fixed).check().unwrap();
        let mut p2 = MultiParams::new("score:min,qed:max".parse().unwrap());
        p2.select = select(prune, fixed);
        let round1 = || run_select(&p1, &pool, &one, &none).unwrap().summary;
        let round2 = || {
            run_select_objectives(&p2, &pool, &multi, &none)
                .unwrap()
                .summary
        };
        // Warm up, then the two in turn, so that drift in the machine's speed hits both.
        let (_, _) = (round1(), round2());
        let (mut runs1, mut runs2) = (Vec::new(), Vec::new());
        let rounds = 21;
        for _ in 0..rounds {
            runs1.push(round1());
            runs2.push(round2());
        }
        let ratio = |phase: fn(&poolrank::engine::Timings) -> f64| {
            let mut r: Vec<f64> = runs1
                .iter()
                .zip(&runs2)
                .map(|(a, b)| phase(&b.seconds) / phase(&a.seconds))
                .collect();
            r.sort_by(f64::total_cmp);
            format!(
                "{:.2} ({:.2} to {:.2})",
                r[r.len() / 2],
                r[0],
                r[r.len() - 1]
            )
        };
        println!(
            "objective-rounds/{mode}/one-ucb: score phase {}; {} of {} candidates got a variance",
            median_score(runs1.iter().map(|s| s.seconds.clone())),
            runs1[0].stages.variance,
            runs1[0].candidates
        );
        println!(
            "objective-rounds/{mode}/two-ehvi: score phase {}; {} of {} candidates got variances",
            median_score(runs2.iter().map(|s| s.seconds.clone())),
            runs2[0].variances,
            runs2[0].candidates
        );
        println!(
            "objective-rounds/{mode}: two over one, median of {} rounds in turn: score phase {}, \
             fit {}, whole round {}",
            runs1.len(),
            ratio(|t| t.score),
            ratio(|t| t.fit),
            ratio(|t| t.total)
        );
        if fixed {
            group.bench_function(id("one-ucb"), |b| b.iter(round1));
            group.bench_function(id("two-ehvi"), |b| b.iter(round2));
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_score,
    bench_variance,
    bench_prune,
    bench_objectives,
    bench_objective_rounds
);
criterion_group!(gpu_vs_cpu, bench_gpu_vs_cpu);
criterion_main!(benches, gpu_vs_cpu);
