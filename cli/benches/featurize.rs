//! Featurize throughput per stage, on one thread: `cargo bench --bench featurize`.
//!
//! Ids name the stage (`featurize/parse/1000`); throughput is in molecules/s, over the first
//! 1,000 Enamine 10k SMILES shipped with the demo.
//! - `parse`: `chematic_smiles::parse` alone.
//! - `sanitize_check`: RDKit's sanitization check (`rdkit_detect_chemistry_problems`) on parsed
//!   molecules.
//! - `morgan_counts`: the Morgan step `featurize` runs (radius 2, 2048 counts; computed by
//!   poolrank on the RDKit-parity aromatic view, `src/featurize/counts.rs`) on parsed molecules.
//! - `crate_morgan_counts`: `chematic_fp::rdkit_morgan_fingerprint` (the same counts, with
//!   per-bit provenance maps) on parsed molecules, for comparison.
//! - `fingerprint_counts` / `fingerprint_bits`: what `featurize` runs per molecule (parse,
//!   check, fingerprint, sorted pairs), for counts and for bits.
//!
//! The end-to-end rate against RDKit in Python is `scripts/bench_featurize.sh`.

use std::io::Read;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use poolrank::featurize::MorganParams;
use poolrank_cli::demo::ENAMINE10K_SCORES;

fn smiles(n: usize) -> Vec<String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(ENAMINE10K_SCORES)
        .read_to_string(&mut text)
        .unwrap();
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .take(n)
        .map(|r| r.unwrap()[1].to_string())
        .collect()
}

fn stages(c: &mut Criterion) {
    let smis = smiles(1000);
    let n = smis.len();
    let mut g = c.benchmark_group("featurize");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.bench_function(format!("parse/{n}"), |b| {
        b.iter(|| {
            for s in &smis {
                std::hint::black_box(chematic_smiles::parse(s).unwrap());
            }
        })
    });
    let cfg = chematic_fp::RdkitMorganConfig::default();
    g.bench_function(format!("sanitize_check/{n}"), |b| {
        b.iter_batched(
            || {
                smis.iter()
                    .map(|s| chematic_smiles::parse(s).unwrap())
                    .collect::<Vec<_>>()
            },
            |mols| {
                for m in &mols {
                    std::hint::black_box(
                        chematic_smiles::rdkit_detect_chemistry_problems(m).unwrap(),
                    );
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    let morgan = MorganParams::default().check().unwrap();
    g.bench_function(format!("morgan_counts/{n}"), |b| {
        b.iter_batched(
            || {
                smis.iter()
                    .map(|s| chematic_smiles::parse(s).unwrap())
                    .collect::<Vec<_>>()
            },
            |mols| {
                for m in &mols {
                    std::hint::black_box(morgan.bench_morgan_only(m).unwrap());
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function(format!("crate_morgan_counts/{n}"), |b| {
        b.iter_batched(
            || {
                smis.iter()
                    .map(|s| chematic_smiles::parse(s).unwrap())
                    .collect::<Vec<_>>()
            },
            |mols| {
                for m in &mols {
                    std::hint::black_box(chematic_fp::rdkit_morgan_fingerprint(m, &cfg).unwrap());
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    for counts in [true, false] {
        let morgan = MorganParams {
            counts,
            ..MorganParams::default()
        }
        .check()
        .unwrap();
        let name = if counts { "counts" } else { "bits" };
        g.bench_function(format!("fingerprint_{name}/{n}"), |b| {
            b.iter(|| {
                for s in &smis {
                    std::hint::black_box(morgan.fingerprint(s).unwrap());
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
