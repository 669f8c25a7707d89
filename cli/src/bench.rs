//! `poolrank bench`: scoring throughput on a synthetic pool of any size, on the backend asked
//! for, optionally against the CPU in the same run.
//!
//! The pool is never held in memory: [`Synthetic`] generates each tile from the seed and the
//! global row indices, so a tile's rows do not depend on the tile size or on the number of
//! threads. Fingerprints are Morgan-like (about 49 of 2048 bits set, the same share for other
//! widths): every row is a noisy copy of one of [`PROTOTYPES`] cluster prototypes (3/4 of the
//! prototype's bits kept, random bits added), so Tanimoto similarities span the range real
//! libraries show. Dense rows are a cluster centre plus noise, scaled so that the RBF kernel
//! with lengthscale 1 is far from 0 and 1 at any dimension.
//!
//! The GP has fixed hyperparameters (signal variance 1, noise 0.1, lengthscale 1 for dense
//! features); the backend is prepared once. Two modes ([`BenchMode`]):
//! - `select` (the default): what `select` does with the pool, the best `batch` candidates by
//!   an acquisition, through the pruned search unless `prune` is off; the report says how
//!   many candidates reached each stage ([`Stages`]);
//! - `posterior`: every tile's mean and variance through [`Scorer::posterior_into`], the raw
//!   throughput of the scoring kernels.
//!
//! What is counted, per candidate against `n` labels:
//! - the variance product `Ks·Wᵀ` with `W = L⁻¹` lower triangular: `n²/2` multiply-adds,
//!   counted as `n²` flops. The rate divides by the whole scoring time (kernel block and mean
//!   included), so it is a lower bound on the GEMM's own rate;
//! - the Tanimoto kernel block: `n·⌈bits/64⌉` 64-bit popcounts (what a dense popcount kernel
//!   does; the CPU scorer gets the same numbers from the set bits instead).

use std::fmt;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use poolrank::acquisition::AcqContext;
use poolrank::backend::{AnyScorer, Backend, BackendChoice, BestOf, GpuOptions, Scorer, Stages};
use poolrank::data::{words_for, FeatureKind, Features};
use poolrank::error::{Error, Result};
use poolrank::gp::{fit_with, FittedGp, GpParams, Inducing};
use poolrank::kernel::KernelKind;
use poolrank::select::{Floor, TopK};
use poolrank::{Acquisition, BatchSize};

/// Number of cluster prototypes the synthetic rows are drawn around.
pub const PROTOTYPES: usize = 64;

/// Set bits per 2048 of a Morgan fingerprint (radius 2), on average.
const BITS_PER_2048: usize = 49;

/// What a bench run times.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "mode")]
pub enum BenchMode {
    /// The best `batch` candidates by `acquisition`, as `select`'s scoring pass finds them
    /// (pruned when `prune`).
    Select {
        /// How candidates are scored.
        acquisition: Acquisition,
        /// How many to keep: a count or a fraction of the pool.
        batch: BatchSize,
        /// Skip the variance of candidates that cannot enter the batch.
        prune: bool,
    },
    /// Every candidate's mean and variance.
    Posterior,
}

/// What to benchmark.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// What is timed (default: the UCB (β = 2) top 1%, pruned).
    pub mode: BenchMode,
    /// Candidates to score (default 1,000,000).
    pub pool_size: usize,
    /// Labeled rows the GP is fitted on (default 1,000; at least 2).
    pub train: usize,
    /// Fingerprint width in bits, Tanimoto kernel. When neither `bits` nor `dim` is set: 2048.
    pub bits: Option<usize>,
    /// Dense feature dimension, RBF kernel; exclusive with `bits`.
    pub dim: Option<usize>,
    /// Where to score (default `auto`).
    pub backend: BackendChoice,
    /// Which adapters the GPU backend may take (default: hardware only, unless
    /// `POOLRANK_ALLOW_SOFTWARE_GPU=1`).
    pub gpu: GpuOptions,
    /// Seed of the synthetic pool and labels (default 0).
    pub seed: u64,
    /// Rows generated and scored per call (default 65,536).
    pub tile_rows: usize,
    /// When the backend turns out to be a GPU: also score the first `m` candidates (at most
    /// `pool_size`) on the CPU in the same run, for the GPU/CPU ratio (default `None`: no
    /// comparison). Ignored when the backend is the CPU.
    pub compare_cpu: Option<usize>,
    /// Exact GP or inducing points (default: the automatic switch above 5,000 labels).
    pub model: Inducing,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            mode: BenchMode::Select {
                acquisition: Acquisition::Ucb { beta: 2.0 },
                batch: BatchSize::Fraction(0.01),
                prune: true,
            },
            pool_size: 1_000_000,
            train: 1000,
            bits: None,
            dim: None,
            backend: BackendChoice::Auto,
            gpu: GpuOptions::default(),
            seed: 0,
            tile_rows: 65_536,
            compare_cpu: None,
            model: Inducing::Auto,
        }
    }
}

impl BenchConfig {
    /// The features the pool holds, after checking the settings.
    fn features(&self) -> Result<FeatureKind> {
        if self.pool_size == 0 {
            return Err(Error::param("--pool-size", "must be at least 1"));
        }
        if self.train < 2 {
            return Err(Error::TooFewLabels { n: self.train });
        }
        if self.tile_rows == 0 {
            return Err(Error::param("--tile-rows", "must be at least 1"));
        }
        if let BenchMode::Select {
            acquisition, batch, ..
        } = self.mode
        {
            acquisition.check()?;
            if batch.resolve(self.pool_size) == 0 {
                return Err(Error::param("--batch", "must keep at least 1 candidate"));
            }
        }
        match (self.bits, self.dim) {
            (Some(_), Some(_)) => Err(Error::param("--bits/--dim", "give one of them, not both")),
            (_, Some(0)) => Err(Error::param("--dim", "must be at least 1")),
            (_, Some(dim)) => Ok(FeatureKind::Dense { dim }),
            (Some(0), None) => Err(Error::param("--bits", "must be at least 1")),
            (bits, None) => Ok(FeatureKind::Bits {
                nbits: bits.unwrap_or(2048),
            }),
        }
    }
}

/// Wall-clock split of the GPU scorer's calls, seconds, summed over the run (see
/// [`poolrank::backend::GpuScorer::posterior_into_timed`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct GpuSplit {
    /// Encoding rows on the CPU and queueing their upload.
    pub upload: f64,
    /// Submission to completion: the transfer, the kernel block, the posterior, the copy out.
    pub execute: f64,
    /// Copying the results out of the mapped read-back buffer.
    pub readback: f64,
}

/// One backend's run over the pool (or its first candidates).
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchRun {
    /// The backend as resolved (`gpu: <adapter>` or `cpu (...)`).
    pub backend: String,
    /// True when it scored on a GPU.
    pub gpu: bool,
    /// Candidates scored.
    pub candidates: usize,
    /// Tiles scored.
    pub tiles: usize,
    /// Preparing the scorer (uploads, `W = L⁻¹`, pipelines), seconds.
    pub prepare_seconds: f64,
    /// Generating the synthetic tiles on the CPU, seconds.
    pub generate_seconds: f64,
    /// The scoring calls as a whole (kernel block, mean, variance, the batch's search,
    /// transfers), seconds.
    pub score_seconds: f64,
    /// `candidates / score_seconds`.
    pub candidates_per_second: f64,
    /// How many candidates reached each stage (all of them in `posterior` mode).
    pub stages: Stages,
    /// Variance product, `stages.variance·n² / score_seconds`, GFLOP/s: the full variances
    /// computed over the whole scoring time (the pruned pass's partial stages, prefixes of `W`,
    /// are not counted).
    pub gemm_gflops: f64,
    /// 64-bit popcounts of the kernel block, `candidates·n·⌈bits/64⌉ / score_seconds`; fingerprints
    /// only.
    pub popcounts_per_second: Option<f64>,
    /// Where the GPU's scoring time went; GPU only.
    pub gpu_split: Option<GpuSplit>,
    /// The variance product's rate over the GPU's execute time alone, GFLOP/s; GPU only.
    pub gemm_gflops_execute: Option<f64>,
    /// Mean of the posterior means (standardised) of every candidate (`posterior`) or of the
    /// batch (`select`), a checksum to compare backends.
    pub mean_of_mean: f64,
    /// Mean of the posterior variances, likewise; in `(0, 1]`.
    pub mean_of_var: f64,
    /// `select`: the batch's pool rows, best first, summed with their ranks as
    /// `Σ (rank + 1)·row` modulo 2⁶⁴: equal for equal batches (pruned and brute force, CPU and
    /// GPU when their scores agree).
    pub batch_checksum: Option<u64>,
}

/// What `poolrank bench` reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchReport {
    /// The pool's features.
    pub features: FeatureKind,
    /// The kernel (`tanimoto` or `rbf`).
    pub kernel: &'static str,
    /// Labeled rows.
    pub train: usize,
    /// Candidates in the pool.
    pub pool_size: usize,
    /// Rows per tile.
    pub tile_rows: usize,
    /// The seed.
    pub seed: u64,
    /// What was timed.
    pub mode: BenchMode,
    /// `select`: the candidates kept.
    pub keep: Option<usize>,
    /// Generating the labels and fitting the GP (fixed hyperparameters), seconds.
    pub fit_seconds: f64,
    /// Inducing points of the model when it is sparse (above the automatic switch's label
    /// count): scoring then costs what `inducing` labels would.
    pub inducing: Option<usize>,
    /// The run on the backend asked for.
    pub run: BenchRun,
    /// The same run on the CPU (on the first `compare_cpu` candidates), when asked for and the
    /// backend is a GPU.
    pub cpu: Option<BenchRun>,
    /// `run.candidates_per_second / cpu.candidates_per_second`.
    pub speedup_over_cpu: Option<f64>,
}

/// Runs the benchmark described by `cfg`.
///
/// # Errors
/// [`Error::InvalidParam`] or [`Error::TooFewLabels`] for bad settings, [`Error::NoAdapter`]
/// when `backend` is `gpu` and no adapter fits, and what the fit or the scorer report.
pub fn run_bench(cfg: &BenchConfig) -> Result<BenchReport> {
    let features = cfg.features()?;
    let kernel = KernelKind::default_for(features);
    let synth = Synthetic::new(features, cfg.seed);

    let t = Instant::now();
    let (x, y) = synth.labeled(cfg.train);
    let mut params = GpParams::new(kernel);
    params.signal_var = Some(1.0);
    params.noise = Some(0.1);
    if kernel.has_lengthscale() {
        params.lengthscale = Some(1.0);
    }
    params.inducing = cfg.model;
    let generated = t.elapsed();
    // A sparse fit's product runs on the backend (whose start-up is not fit time).
    let backend = Backend::new(cfg.backend, &cfg.gpu)?;
    let t = Instant::now();
    let gp = fit_with(&params.check(features)?, &x, &y, backend.gram().as_ref())?;
    let fit_seconds = (generated + t.elapsed()).as_secs_f64();
    let keep = match cfg.mode {
        BenchMode::Select { batch, .. } => Some(batch.resolve(cfg.pool_size)),
        BenchMode::Posterior => None,
    };
    let job = Job {
        gp: &gp,
        synth: &synth,
        mode: cfg.mode,
        keep: keep.unwrap_or(0),
        tile_rows: cfg.tile_rows,
    };
    let run = job.run(&backend, cfg.pool_size)?;
    let cpu = match cfg.compare_cpu {
        Some(m) if run.gpu => {
            let cpu = Backend::cpu("cpu (comparison)");
            let m = m.clamp(1, cfg.pool_size);
            Some(job.run(&cpu, m)?)
        }
        _ => None,
    };
    let speedup_over_cpu = cpu
        .as_ref()
        .map(|c| run.candidates_per_second / c.candidates_per_second);
    Ok(BenchReport {
        features,
        kernel: kernel.name(),
        train: cfg.train,
        pool_size: cfg.pool_size,
        tile_rows: cfg.tile_rows,
        seed: cfg.seed,
        mode: cfg.mode,
        keep,
        fit_seconds,
        inducing: gp.info.sparse.as_ref().map(|s| s.used),
        run,
        cpu,
        speedup_over_cpu,
    })
}

/// One timed run's settings, shared by the run and its CPU comparison.
struct Job<'a> {
    gp: &'a FittedGp,
    synth: &'a Synthetic,
    mode: BenchMode,
    keep: usize,
    tile_rows: usize,
}

/// What a run adds up over its tiles.
#[derive(Default)]
struct Tally {
    generate: Duration,
    scoring: Duration,
    split: [Duration; 3],
    tiles: usize,
    stages: Stages,
    sum_mean: f64,
    sum_var: f64,
}

impl Job<'_> {
    /// Prepares `backend` for the model and scores the first `pool` candidates of the pool.
    fn run(&self, backend: &Backend, pool: usize) -> Result<BenchRun> {
        let t = Instant::now();
        let scorer = backend.prepare(self.gp)?;
        let prepare_seconds = t.elapsed().as_secs_f64();
        let gpu = matches!(scorer, AnyScorer::Gpu(_));
        let (mut tally, mut batch_checksum) = (Tally::default(), None);
        match self.mode {
            BenchMode::Posterior => self.posterior(&scorer, pool, &mut tally)?,
            BenchMode::Select {
                acquisition, prune, ..
            } => {
                let top = self.select(&scorer, pool, acquisition, prune, &mut tally)?;
                let sum = top.iter().enumerate().fold(0u64, |acc, (rank, r)| {
                    acc.wrapping_add((rank as u64 + 1).wrapping_mul(r.index as u64))
                });
                batch_checksum = Some(sum);
            }
        }
        let secs = tally.scoring.as_secs_f64();
        let (count, n) = (pool as f64, self.gp.n_train() as f64);
        let flops = tally.stages.variance as f64 * n * n;
        let popcounts = match self.synth.kind {
            FeatureKind::Bits { nbits } => Some(count * n * words_for(nbits) as f64 / secs),
            _ => None,
        };
        let gpu_split = (gpu && self.mode == BenchMode::Posterior).then(|| GpuSplit {
            upload: tally.split[0].as_secs_f64(),
            execute: tally.split[1].as_secs_f64(),
            readback: tally.split[2].as_secs_f64(),
        });
        let averaged = match self.mode {
            BenchMode::Posterior => count,
            BenchMode::Select { .. } => self.keep.min(pool) as f64,
        };
        Ok(BenchRun {
            backend: backend.description.clone(),
            gpu,
            candidates: pool,
            tiles: tally.tiles,
            prepare_seconds,
            generate_seconds: tally.generate.as_secs_f64(),
            score_seconds: secs,
            candidates_per_second: count / secs,
            stages: tally.stages,
            gemm_gflops: flops / secs / 1e9,
            popcounts_per_second: popcounts,
            gemm_gflops_execute: gpu_split.map(|s| flops / s.execute / 1e9),
            gpu_split,
            mean_of_mean: tally.sum_mean / averaged,
            mean_of_var: tally.sum_var / averaged,
            batch_checksum,
        })
    }

    /// Calls `f` with each tile of the first `pool` candidates and its first global row, after
    /// one untimed warm-up call on the first tile (lazy driver work, shader compilation and
    /// first allocations are not throughput); times the generation.
    fn tiles(
        &self,
        pool: usize,
        tally: &mut Tally,
        mut f: impl FnMut(&Features, usize, bool, &mut Tally) -> Result<()>,
    ) -> Result<()> {
        let mut tile = Features::empty(self.synth.kind);
        self.synth.tile_into(0, self.tile_rows.min(pool), &mut tile);
        f(&tile, 0, false, &mut Tally::default())?;
        for start in (0..pool).step_by(self.tile_rows) {
            let rows = self.tile_rows.min(pool - start);
            let t = Instant::now();
            self.synth.tile_into(start as u64, rows, &mut tile);
            tally.generate += t.elapsed();
            f(&tile, start, true, tally)?;
            tally.tiles += 1;
        }
        Ok(())
    }

    /// Every candidate's posterior.
    fn posterior(&self, scorer: &AnyScorer, pool: usize, tally: &mut Tally) -> Result<()> {
        let rows = self.tile_rows.min(pool);
        let (mut mean, mut var) = (vec![0f32; rows], vec![0f32; rows]);
        self.tiles(pool, tally, |tile, _, _, tally| {
            let (mean, var) = (&mut mean[..tile.len()], &mut var[..tile.len()]);
            let t = Instant::now();
            let s = score(scorer, tile, mean, var)?;
            tally.scoring += t.elapsed();
            for (acc, d) in tally.split.iter_mut().zip(s) {
                *acc += d;
            }
            tally.stages += Stages::brute_force(tile.len());
            tally.sum_mean += mean.iter().map(|&m| f64::from(m)).sum::<f64>();
            tally.sum_var += var.iter().map(|&v| f64::from(v)).sum::<f64>();
            Ok(())
        })
    }

    /// The best `keep` candidates, as `select`'s scoring pass finds them: per tile the
    /// backend's best (pruned against the threshold carried across tiles), merged.
    fn select(
        &self,
        scorer: &AnyScorer,
        pool: usize,
        acq: Acquisition,
        prune: bool,
        tally: &mut Tally,
    ) -> Result<Vec<poolrank::select::Ranked<(f32, f32)>>> {
        let ctx = AcqContext {
            best: self.gp.y_best as f32,
            seed: 0,
            round: 0,
        };
        let (mut top, mut floor) = (TopK::new(self.keep), Floor::new(self.keep));
        let mut best = Vec::new();
        self.tiles(pool, tally, |tile, start, timed, tally| {
            let what = BestOf {
                acq,
                ctx: &ctx,
                start,
                keep: self.keep,
                skip: &[],
                keys: None,
            };
            // The warm-up call keeps its own threshold.
            let mut warm = Floor::new(self.keep);
            let floor = if timed { &mut floor } else { &mut warm };
            best.clear();
            let t = Instant::now();
            let stages = match prune {
                true => scorer.best_pruned_into(tile, &what, floor, &mut best)?,
                false => {
                    scorer.best_into(tile, &what, &mut best)?;
                    None
                }
            };
            if !timed {
                return Ok(());
            }
            for b in &best {
                top.push(b.score, start + b.row, (b.mean, b.var));
            }
            tally.scoring += t.elapsed();
            tally.stages += stages.unwrap_or(Stages::brute_force(tile.len()));
            Ok(())
        })?;
        let top = top.into_sorted();
        tally.sum_mean = top.iter().map(|r| f64::from(r.item.0)).sum();
        tally.sum_var = top.iter().map(|r| f64::from(r.item.1)).sum();
        Ok(top)
    }
}

/// Scores one tile; the GPU's time split, zero on the CPU.
fn score(
    scorer: &AnyScorer,
    tile: &Features,
    mean: &mut [f32],
    var: &mut [f32],
) -> Result<[Duration; 3]> {
    match scorer {
        AnyScorer::Gpu(g) => g.posterior_into_timed(tile, mean, var),
        AnyScorer::Cpu(c) => c
            .posterior_into(tile, mean, var)
            .map(|()| [Duration::ZERO; 3]),
    }
}

/// SplitMix64's finaliser: a bijection of `u64` that mixes every input bit into every output bit.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64 keyed by `(seed, stream, index)`: one independent sequence per row.
struct SplitMix(u64);

impl SplitMix {
    fn new(seed: u64, stream: u64, index: u64) -> Self {
        SplitMix(mix64(seed ^ mix64(index ^ (stream << 56) ^ 0x5EED)))
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in `0..n` (`n < 2³²`), by multiply-shift.
    #[inline]
    fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Uniform in `[-1, 1)`.
    #[inline]
    fn symmetric(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// Streams of the generator: the pool, the labeled rows, the cluster prototypes and values.
const POOL: u64 = 0;
const LABELED: u64 = 1;
const CLUSTER: u64 = 2;

/// A synthetic pool whose every row is a function of the seed and its index alone.
pub struct Synthetic {
    kind: FeatureKind,
    seed: u64,
    /// Bits: the set positions of each prototype, `proto_bits` each. Dense: unused.
    proto_pos: Vec<u32>,
    proto_bits: usize,
    /// Extra random bits per row.
    extra_bits: usize,
    /// Dense: the cluster centres, `PROTOTYPES × dim`, already scaled.
    centres: Vec<f32>,
    /// Each cluster's mean label.
    values: Vec<f64>,
}

impl Synthetic {
    /// A generator for `kind` (bits or dense) seeded by `seed`.
    ///
    /// # Panics
    /// On count features, which it does not generate.
    pub fn new(kind: FeatureKind, seed: u64) -> Self {
        let values = (0..PROTOTYPES as u64)
            .map(|p| f64::from(SplitMix::new(seed, CLUSTER, p).symmetric()))
            .collect();
        let mut synth = Synthetic {
            kind,
            seed,
            proto_pos: Vec::new(),
            proto_bits: 0,
            extra_bits: 0,
            centres: Vec::new(),
            values,
        };
        match kind {
            FeatureKind::Bits { nbits } => {
                // Target T set bits: a prototype of 0.8·T positions of which 3/4 are kept
                // (0.6·T), plus 0.4·T random ones; collisions take off a little.
                let target = (nbits * BITS_PER_2048).div_ceil(2048).max(1);
                synth.proto_bits = (target * 4).div_ceil(5);
                synth.extra_bits = target - (synth.proto_bits * 3) / 4;
                for p in 0..PROTOTYPES as u64 {
                    let mut rng = SplitMix::new(seed, CLUSTER, p | 1 << 32);
                    for _ in 0..synth.proto_bits {
                        synth.proto_pos.push(rng.below(nbits) as u32);
                    }
                }
            }
            FeatureKind::Dense { dim } => {
                // Centres of variance 1/dim per coordinate and rows at sd 0.5 around them, so
                // squared distances are about 0.5 within a cluster and 2.5 between clusters.
                let scale = (3.0 / dim as f32).sqrt();
                for p in 0..PROTOTYPES as u64 {
                    let mut rng = SplitMix::new(seed, CLUSTER, p | 1 << 32);
                    synth
                        .centres
                        .extend((0..dim).map(|_| scale * rng.symmetric()));
                }
            }
            FeatureKind::Counts { .. } => panic!("synthetic count fingerprints are not supported"),
        }
        synth
    }

    /// The features of every row.
    pub fn kind(&self) -> FeatureKind {
        self.kind
    }

    /// Fills `out` with pool rows `start..start + rows` (in parallel; the rows do not depend
    /// on the number of threads or on how the pool is cut into tiles).
    pub fn tile_into(&self, start: u64, rows: usize, out: &mut Features) {
        self.rows_into(POOL, start, rows, out);
    }

    /// `n` labeled rows (a stream apart from the pool's) and their labels: the row's cluster
    /// value plus noise of sd about 0.06.
    pub fn labeled(&self, n: usize) -> (Features, Vec<f64>) {
        let mut x = Features::empty(self.kind);
        self.rows_into(LABELED, 0, n, &mut x);
        let y = (0..n as u64)
            .map(|i| {
                let mut rng = SplitMix::new(self.seed, LABELED, i);
                let cluster = rng.below(PROTOTYPES);
                let noise = SplitMix::new(self.seed, CLUSTER, i | 2 << 32).symmetric();
                self.values[cluster] + 0.1 * f64::from(noise)
            })
            .collect();
        (x, y)
    }

    fn rows_into(&self, stream: u64, start: u64, rows: usize, out: &mut Features) {
        match (self.kind, out) {
            (FeatureKind::Bits { nbits }, Features::Bits { nbits: nb, data }) => {
                *nb = nbits;
                let words = words_for(nbits);
                data.resize(rows * words, 0);
                data.par_chunks_mut(words)
                    .with_min_len(256)
                    .enumerate()
                    .for_each(|(i, row)| self.bits_row(stream, start + i as u64, nbits, row));
            }
            (FeatureKind::Dense { dim }, Features::Dense { dim: d, data }) => {
                *d = dim;
                data.resize(rows * dim, 0.0);
                data.par_chunks_mut(dim)
                    .with_min_len(256)
                    .enumerate()
                    .for_each(|(i, row)| self.dense_row(stream, start + i as u64, row));
            }
            (kind, out) => {
                *out = Features::empty(kind);
                self.rows_into(stream, start, rows, out);
            }
        }
    }

    fn bits_row(&self, stream: u64, index: u64, nbits: usize, row: &mut [u64]) {
        let mut rng = SplitMix::new(self.seed, stream, index);
        let cluster = rng.below(PROTOTYPES);
        row.fill(0);
        let proto = &self.proto_pos[cluster * self.proto_bits..(cluster + 1) * self.proto_bits];
        for chunk in proto.chunks(64) {
            // Each bit of `a | b` is set with probability 3/4.
            let keep = rng.next_u64() | rng.next_u64();
            for (k, &pos) in chunk.iter().enumerate() {
                if keep >> k & 1 == 1 {
                    row[pos as usize / 64] |= 1 << (pos % 64);
                }
            }
        }
        for _ in 0..self.extra_bits {
            let pos = rng.below(nbits);
            row[pos / 64] |= 1 << (pos % 64);
        }
    }

    fn dense_row(&self, stream: u64, index: u64, row: &mut [f32]) {
        let mut rng = SplitMix::new(self.seed, stream, index);
        let cluster = rng.below(PROTOTYPES);
        let dim = row.len();
        let centre = &self.centres[cluster * dim..(cluster + 1) * dim];
        let scale = 0.5 * (3.0 / dim as f32).sqrt();
        for (x, c) in row.iter_mut().zip(centre) {
            *x = c + scale * rng.symmetric();
        }
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "poolrank bench: {} candidates, {} labels, {} ({}), seed {}, tiles of {} rows",
            self.pool_size, self.train, self.features, self.kernel, self.seed, self.tile_rows
        )?;
        match self.mode {
            BenchMode::Posterior => writeln!(f, "timed: every candidate's mean and variance")?,
            BenchMode::Select {
                acquisition, prune, ..
            } => writeln!(
                f,
                "timed: select's search for the best {} by {} ({})",
                self.keep.unwrap_or(0),
                acquisition.name(),
                if prune { "pruned" } else { "brute force" }
            )?,
        }
        writeln!(f, "fit (fixed hyperparameters): {:.2} s", self.fit_seconds)?;
        match self.inducing {
            Some(m) => writeln!(f, "model: sparse GP (VFE) on {m} inducing points")?,
            None => writeln!(f, "model: exact GP on {} labels", self.train)?,
        }
        let runs: Vec<&BenchRun> = std::iter::once(&self.run).chain(&self.cpu).collect();
        for r in &runs {
            writeln!(f, "backend: {}", r.backend)?;
        }
        let any_gpu = runs.iter().any(|r| r.gpu);
        let bits = matches!(self.features, FeatureKind::Bits { .. });
        let select = matches!(self.mode, BenchMode::Select { .. });
        let of = if select { "batch" } else { "every candidate" };
        let secs = |x: f64| format!("{x:.3}");
        let cells: Vec<(&str, bool, Cell)> = vec![
            (
                "",
                true,
                Box::new(|r| if r.gpu { "gpu" } else { "cpu" }.into()),
            ),
            ("candidates", true, Box::new(|r| r.candidates.to_string())),
            (
                "prepare, s",
                true,
                Box::new(move |r| secs(r.prepare_seconds)),
            ),
            (
                "generate (CPU), s",
                true,
                Box::new(move |r| secs(r.generate_seconds)),
            ),
            (
                "scoring (+ read-back), s",
                true,
                Box::new(move |r| secs(r.score_seconds)),
            ),
            ("  upload (encode + queue), s", any_gpu, split(|s| s.upload)),
            (
                "  execute (submit to done), s",
                any_gpu,
                split(|s| s.execute),
            ),
            ("  read-back copy, s", any_gpu, split(|s| s.readback)),
            (
                "candidates/s",
                true,
                Box::new(|r| format!("{:.0}", r.candidates_per_second)),
            ),
            (
                "candidates given a variance",
                true,
                Box::new(|r| r.stages.variance.to_string()),
            ),
            (
                "variance GEMM, GFLOP/s",
                true,
                Box::new(|r| format!("{:.1}", r.gemm_gflops)),
            ),
            (
                "  over execute only, GFLOP/s",
                any_gpu,
                Box::new(|r| {
                    r.gemm_gflops_execute
                        .map_or("-".into(), |x| format!("{x:.1}"))
                }),
            ),
            (
                "popcounts/s (64-bit words)",
                bits,
                Box::new(|r| {
                    r.popcounts_per_second
                        .map_or("-".into(), |x| format!("{x:.3e}"))
                }),
            ),
            (
                "mean of posterior mean",
                true,
                Box::new(|r| format!("{:.5}", r.mean_of_mean)),
            ),
            (
                "mean of posterior variance",
                true,
                Box::new(|r| format!("{:.5}", r.mean_of_var)),
            ),
            (
                "batch checksum",
                select,
                Box::new(|r| r.batch_checksum.map_or("-".into(), |c| format!("{c:x}"))),
            ),
        ];
        writeln!(f, "(means and variances: of the {of})")?;
        for (label, shown, cell) in &cells {
            if *shown {
                write!(f, "{label:<32}")?;
                for r in &runs {
                    write!(f, "{:>18}", cell(r))?;
                }
                writeln!(f)?;
            }
        }
        if let Some(s) = self.speedup_over_cpu {
            writeln!(f, "GPU/CPU throughput ratio: {s:.2}x")?;
        }
        Ok(())
    }
}

/// How one row of the report's table shows a run.
type Cell = Box<dyn Fn(&BenchRun) -> String>;

/// A table cell from the GPU's time split, `-` on the CPU.
fn split(part: fn(&GpuSplit) -> f64) -> Cell {
    Box::new(move |r| {
        r.gpu_split
            .map_or("-".into(), |s| format!("{:.3}", part(&s)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(features: (Option<usize>, Option<usize>), mode: BenchMode) -> BenchReport {
        let cfg = BenchConfig {
            mode,
            pool_size: 3000,
            train: 50,
            bits: features.0,
            dim: features.1,
            backend: BackendChoice::Cpu,
            seed: 7,
            tile_rows: 1024,
            ..BenchConfig::default()
        };
        run_bench(&cfg).unwrap()
    }

    fn select(acquisition: Acquisition, prune: bool) -> BenchMode {
        BenchMode::Select {
            acquisition,
            batch: BatchSize::Count(30),
            prune,
        }
    }

    #[test]
    fn tiny_cpu_runs_score_every_candidate() {
        for features in [(Some(256), None), (None, Some(8))] {
            let r = tiny(features, BenchMode::Posterior);
            assert_eq!(r.run.candidates, 3000, "{features:?}");
            assert_eq!(r.run.tiles, 3);
            assert_eq!((r.run.stages.mean, r.run.stages.variance), (3000, 3000));
            assert!(!r.run.gpu);
            assert!(r.cpu.is_none() && r.speedup_over_cpu.is_none());
            for x in [
                r.fit_seconds,
                r.run.score_seconds,
                r.run.candidates_per_second,
                r.run.gemm_gflops,
                r.run.mean_of_var,
            ] {
                assert!(x.is_finite() && x > 0.0, "{features:?}: {r:?}");
            }
            assert!(r.run.mean_of_var <= 1.0, "{r:?}");
            assert!(r.run.mean_of_mean.is_finite());
            assert_eq!(r.run.popcounts_per_second.is_some(), features.0.is_some());
            assert!(r.run.gpu_split.is_none() && r.run.batch_checksum.is_none());
            let text = r.to_string();
            assert!(
                text.contains("candidates/s") && !text.contains("execute"),
                "{text}"
            );
            serde_json::to_string(&r).unwrap();
        }
    }

    /// The search's batch is the same pruned and brute force (checksum, means and variances);
    /// pruned, fewer candidates get a variance, and the report says so.
    #[test]
    fn tiny_select_runs_prune_to_the_same_batch() {
        for features in [(Some(256), None), (None, Some(8))] {
            for acq in [
                Acquisition::Ucb { beta: 2.0 },
                Acquisition::Greedy,
                Acquisition::ThompsonMarginal,
                Acquisition::Ei { xi: 0.0 },
            ] {
                let pruned = tiny(features, select(acq, true));
                let brute = tiny(features, select(acq, false));
                assert_eq!(pruned.keep, Some(30));
                let (p, b) = (&pruned.run, &brute.run);
                assert_eq!(p.batch_checksum, b.batch_checksum, "{features:?} {acq:?}");
                assert_eq!(p.mean_of_mean.to_bits(), b.mean_of_mean.to_bits());
                assert_eq!(p.mean_of_var.to_bits(), b.mean_of_var.to_bits());
                assert!(p.batch_checksum.is_some());
                assert!(p.stages.pruned && !b.stages.pruned);
                assert_eq!((p.stages.mean, b.stages.variance), (3000, 3000));
                assert!(
                    p.stages.variance < 3000,
                    "{features:?} {acq:?}: {:?}",
                    p.stages
                );
                let text = pruned.to_string();
                assert!(
                    text.contains("pruned") && text.contains("batch checksum"),
                    "{text}"
                );
            }
        }
    }

    /// The GPU path, on whatever adapter `GpuOptions::software()` finds (llvmpipe in CI, which
    /// must install it: like the parity suite, this fails rather than skips without one),
    /// against the CPU in the same run.
    #[test]
    fn tiny_gpu_run_agrees_with_the_cpu() {
        let cfg = BenchConfig {
            mode: BenchMode::Posterior,
            pool_size: 3000,
            train: 50,
            bits: Some(256),
            backend: BackendChoice::Gpu,
            gpu: GpuOptions::software(),
            seed: 7,
            tile_rows: 1024,
            compare_cpu: Some(5000),
            ..BenchConfig::default()
        };
        let r = run_bench(&cfg).unwrap_or_else(|e| {
            panic!("needs a wgpu adapter (apt-get install mesa-vulkan-drivers): {e}")
        });
        assert!(r.run.gpu, "{r:?}");
        let cpu = r.cpu.as_ref().expect("the CPU comparison");
        assert_eq!((r.run.candidates, cpu.candidates), (3000, 3000));
        let split = r.run.gpu_split.expect("the GPU's time split");
        assert!(split.execute > 0.0 && split.upload >= 0.0 && split.readback >= 0.0);
        assert!(r.speedup_over_cpu.is_some_and(|s| s.is_finite() && s > 0.0));
        assert!((r.run.mean_of_var - cpu.mean_of_var).abs() < 1e-4, "{r:?}");
        assert!(
            (r.run.mean_of_mean - cpu.mean_of_mean).abs() < 1e-4,
            "{r:?}"
        );
        let text = r.to_string();
        assert!(
            text.contains("execute") && text.contains("GPU/CPU"),
            "{text}"
        );
        // The search on the GPU against the CPU's, both pruned: the same batch up to float32
        // ties at its edge, so its means agree closely.
        let r = run_bench(&BenchConfig {
            mode: select(Acquisition::Ucb { beta: 2.0 }, true),
            ..cfg
        })
        .unwrap();
        let cpu = r.cpu.as_ref().expect("the CPU comparison");
        assert!(r.run.stages.pruned && cpu.stages.pruned, "{r:?}");
        assert!(r.run.stages.variance < r.run.stages.mean, "{r:?}");
        assert!(
            (r.run.mean_of_mean - cpu.mean_of_mean).abs() < 1e-3,
            "{r:?}"
        );
    }

    fn generate(synth: &Synthetic, total: usize, tile: usize) -> Features {
        let mut all = Features::empty(synth.kind());
        let mut part = Features::empty(synth.kind());
        for start in (0..total).step_by(tile) {
            synth.tile_into(start as u64, tile.min(total - start), &mut part);
            for i in 0..part.len() {
                all.push_row_from(&part, i);
            }
        }
        all
    }

    #[test]
    fn tiles_are_deterministic_and_independent_of_tile_size() {
        for kind in [
            FeatureKind::Bits { nbits: 2048 },
            FeatureKind::Bits { nbits: 100 },
            FeatureKind::Dense { dim: 5 },
        ] {
            let a = generate(&Synthetic::new(kind, 11), 1000, 1000);
            assert_eq!(a.len(), 1000);
            assert_eq!(a, generate(&Synthetic::new(kind, 11), 1000, 1000));
            assert_eq!(a, generate(&Synthetic::new(kind, 11), 1000, 77));
            assert_eq!(a, generate(&Synthetic::new(kind, 11), 1000, 1));
            assert_ne!(a, generate(&Synthetic::new(kind, 12), 1000, 1000));
            // A tile starting mid-pool is the same rows.
            let mut tail = Features::empty(kind);
            Synthetic::new(kind, 11).tile_into(900, 100, &mut tail);
            assert_eq!(tail, a.select_rows(&(900..1000).collect::<Vec<_>>()));
        }
    }

    #[test]
    fn fingerprints_have_morgan_like_density() {
        let synth = Synthetic::new(FeatureKind::Bits { nbits: 2048 }, 3);
        let x = generate(&synth, 2000, 500);
        let Features::Bits { data, .. } = &x else {
            unreachable!()
        };
        let set = data.iter().map(|w| w.count_ones() as f64).sum::<f64>() / 2000.0;
        assert!((44.0..=54.0).contains(&set), "{set} bits set per row");
        // Tail bits past nbits stay clear.
        let synth = Synthetic::new(FeatureKind::Bits { nbits: 100 }, 3);
        let Features::Bits { data, .. } = generate(&synth, 500, 500) else {
            unreachable!()
        };
        assert!(data.chunks(2).all(|w| w[1] >> 36 == 0));
    }

    #[test]
    fn bad_settings_are_errors() {
        let bad = [
            BenchConfig {
                bits: Some(2048),
                dim: Some(3),
                ..BenchConfig::default()
            },
            BenchConfig {
                train: 1,
                ..BenchConfig::default()
            },
            BenchConfig {
                pool_size: 0,
                ..BenchConfig::default()
            },
            BenchConfig {
                tile_rows: 0,
                ..BenchConfig::default()
            },
            BenchConfig {
                dim: Some(0),
                ..BenchConfig::default()
            },
            BenchConfig {
                mode: BenchMode::Select {
                    acquisition: Acquisition::Ucb { beta: f32::NAN },
                    batch: BatchSize::Count(3),
                    prune: true,
                },
                ..BenchConfig::default()
            },
        ];
        for cfg in bad {
            assert!(run_bench(&cfg).is_err(), "{cfg:?}");
        }
    }
}
