//! The whole retrospective simulation on Enamine 10k, the reference protocol.
//!
//! `cargo bench --bench simulate`. One iteration is the run that `../shared/tools/ref_al.py`
//! makes: random, greedy and UCB (β = 2), init 1%, five rounds of 1%, top-1% recall, five
//! replicates, an exact Tanimoto GP on the Morgan bits with `noise 0.1`, `signal_var 1` held
//! fixed, minimising the docking score, on the CPU backend. The data is the demo set embedded in
//! the binary (its counts, turned into the bits `GetFingerprintAsNumPy` gives).
//! - `simulate/enamine10k/tanimoto/reps5`: that run, every metric of every round included.
//! - `simulate/enamine10k/minmax/reps5`: the same on the counts with MinMax (the reference's
//!   second kernel), same fixed hyperparameters.
//!
//! Compare with `ref_al.py` on the same machine in the same session (BENCHMARKS.md).

use criterion::{criterion_group, criterion_main, Criterion};
use poolrank::backend::BackendChoice;
use poolrank::data::{read_labels, IdList, LabelSpec};
use poolrank::gp::ModelSpec;
use poolrank::kernel::KernelKind;
use poolrank::pool::FilePool;
use poolrank::sim::{load_labeled_pool, simulate, LabeledPool, SimConfig};
use poolrank_cli::demo::DemoFiles;

fn enamine() -> LabeledPool {
    let files = DemoFiles::unpack().unwrap();
    let mut pool = FilePool::new(files.pool());
    pool.ids = Some(files.ids());
    let labels = read_labels(&LabelSpec::new(files.scores())).unwrap();
    load_labeled_pool(&pool, &labels, &IdList::default())
        .unwrap()
        .0
}

fn config(model: ModelSpec) -> SimConfig {
    let mut cfg = SimConfig::new();
    cfg.minimize = true;
    cfg.backend = BackendChoice::Cpu;
    cfg.model = model;
    cfg
}

fn bench_simulate(c: &mut Criterion) {
    let counts = enamine();
    let bits = LabeledPool {
        features: counts.features.presence_bits().unwrap(),
        ids: counts.ids.clone(),
        y: counts.y.clone(),
    };
    let reference = config(ModelSpec {
        kernel: Some(KernelKind::Tanimoto),
        signal_var: Some(1.0),
        noise: Some(0.1),
        ..ModelSpec::default()
    });
    let minmax = config(ModelSpec {
        kernel: Some(KernelKind::MinMax),
        ..reference.model.clone()
    });

    let mut group = c.benchmark_group("simulate/enamine10k");
    group.sample_size(10);
    group.bench_function("tanimoto/reps5", |b| {
        b.iter(|| simulate(&bits, &reference).unwrap())
    });
    group.bench_function("minmax/reps5", |b| {
        b.iter(|| simulate(&counts, &minmax).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_simulate);
criterion_main!(benches);
