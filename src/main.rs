//! The `poolrank` command line: parse flags, build a checked config, call the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use poolrank::backend::BackendChoice;
use poolrank::data::{LabelSpec, PoolFormat, PoolSpec};
use poolrank::gp::Inducing;
use poolrank::{report, Acquisition, BatchMode, BatchSize, KernelKind, SelectConfig};

/// mimalloc: the SMILES parser and the ring and aromaticity perception of `featurize` allocate
/// small buffers per molecule; the system allocator cost about 20% of featurize's time
/// (BENCHMARKS.md, Featurize).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rank very large candidate pools for active learning.
///
/// poolrank fits a Gaussian process to the candidates you have already measured (labels),
/// scores every other candidate in the pool with an acquisition function, and picks the next
/// batch to send to the lab (or to the docking cluster).
#[derive(Parser, Debug)]
#[command(name = "poolrank", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Pick the next batch from a pool, given the labeled candidates.
    Select(Box<SelectArgs>),
    /// Replay active learning on a fully labeled pool: does it beat random here?
    Simulate(Box<SimulateArgs>),
    /// Write a synthetic pool and labels whose answer is known (smooth, noise, homogeneous,
    /// outliers).
    Synth(SynthArgs),
    /// Run a selection on the built-in Enamine 10k set (docking scores; no input needed).
    Demo(DemoArgs),
    /// List the GPU adapters wgpu sees and say which one `--backend auto` would take.
    Devices(DevicesArgs),
    /// Measure scoring throughput on a synthetic pool (candidates/s, GEMM GFLOP/s, popcounts/s,
    /// time split), optionally against the CPU in the same run.
    Bench(BenchArgs),
    /// Before spending a budget: is active learning likely to beat random on this pool with
    /// these labels, and why? Writes DIR/report.json and DIR/report.html, prints a summary.
    Diagnose(Box<DiagnoseArgs>),
    /// Turn SMILES (.smi, or CSV/TSV with a SMILES column) into RDKit-identical Morgan
    /// fingerprints: a count .npz (plus ids) or an FPS file.
    Featurize(FeaturizeArgs),
}

#[derive(clap::Args, Debug)]
struct DiagnoseArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Acquisition function whose batch is examined.
    #[arg(long, value_enum, default_value = "ucb")]
    acq: AcqArg,
    /// UCB's weight on the standard deviation.
    #[arg(long, default_value_t = 2.0)]
    beta: f32,
    /// EI/PI margin, in standard deviations of the labels.
    #[arg(long, default_value_t = 0.0)]
    xi: f32,
    /// Batch size: a count (100) or a fraction of the pool (0.01).
    #[arg(long, default_value = "0.01", value_parser = BatchSize::parse)]
    batch: BatchSize,
    #[command(flatten)]
    model: ModelArgs,
    /// Folds of the cross-validation on the labeled set.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Pool candidates in the seeded sample whose nearest neighbours in the whole pool are
    /// measured (cost grows with it like the labeled set's).
    #[arg(long, default_value_t = 256, value_name = "N")]
    nn_sample: usize,
    /// What the campaign is for.
    #[arg(long, value_enum, default_value = "find-best")]
    objective: ObjectiveArg,
    /// Held-out test candidates (ids in the pool, one per line), for --objective accuracy.
    #[arg(long, value_name = "FILE")]
    test: Option<PathBuf>,
    /// Seed of the sample, the folds and the random draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Pool rows read and scored at a time.
    #[arg(long, default_value_t = 65_536, value_name = "ROWS")]
    tile: usize,
    /// Where to score.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendArg,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Output folder: report.json and report.html.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
struct FeaturizeArgs {
    /// Molecules: .smi (SMILES, whitespace, id), or .csv/.tsv with named columns; plain or gzip.
    #[arg(long, value_name = "FILE")]
    smiles: PathBuf,
    /// SMILES column of a CSV/TSV.
    #[arg(long, default_value = "smiles", value_name = "NAME")]
    smiles_col: String,
    /// Id column of a CSV/TSV.
    #[arg(long, default_value = "id", value_name = "NAME")]
    id_col: String,
    /// Morgan radius (0 to 3).
    #[arg(long, default_value_t = 2)]
    radius: u32,
    /// Folded width: 128, 256, 512, 1024 or 2048.
    #[arg(long, default_value_t = 2048)]
    bits: usize,
    /// Count fingerprints (the default for .npz).
    #[arg(long, conflicts_with = "bits_only")]
    counts: bool,
    /// Bit fingerprints, bit i set when count i > 0 (the default for .fps).
    #[arg(long)]
    bits_only: bool,
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Leave out molecules that do not parse or that the fingerprinter refuses, listing each
    /// (line, id, SMILES, reason) in FILE, instead of stopping at the first.
    #[arg(long, value_name = "FILE")]
    skip_invalid: Option<PathBuf>,
    /// Molecules read and featurized at a time (memory grows with it).
    #[arg(long, default_value_t = 16_384, value_name = "N")]
    chunk: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Output: .npz (scipy.sparse CSR counts, ids in OUT's .ids.txt) or .fps/.fps.gz (bits).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// Candidates in the synthetic pool (generated tile by tile, never held whole).
    #[arg(long, default_value_t = 1_000_000)]
    pool_size: usize,
    /// Labeled candidates (n).
    #[arg(long, default_value_t = 1000)]
    train: usize,
    /// Bit fingerprints of this width, Tanimoto (the default: 2048).
    #[arg(long, conflicts_with = "dim")]
    bits: Option<usize>,
    /// Dense features of this dimension, RBF.
    #[arg(long)]
    dim: Option<usize>,
    /// Where to score.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendArg,
    /// When a GPU scores, also score this many candidates on the CPU for the ratio.
    #[arg(long, value_name = "N")]
    compare_cpu: Option<usize>,
    /// Sparse GP (VFE) on M inducing points [default: exact up to 5000 labels, 2000 inducing
    /// points above].
    #[arg(long, value_name = "M", conflicts_with = "exact")]
    inducing: Option<usize>,
    /// Always the exact GP (e.g. to time an exact model on more than 5000 labels).
    #[arg(long)]
    exact: bool,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Candidates per tile.
    #[arg(long, default_value_t = 65_536)]
    tile_rows: usize,
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum BackendArg {
    /// A hardware GPU when there is one, else the CPU.
    Auto,
    /// The CPU (rayon), the reference path.
    Cpu,
    /// A GPU through wgpu (Vulkan, Metal, DX12); an error when none fits.
    Gpu,
}

impl From<BackendArg> for BackendChoice {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Auto => BackendChoice::Auto,
            BackendArg::Cpu => BackendChoice::Cpu,
            BackendArg::Gpu => BackendChoice::Gpu,
        }
    }
}

#[derive(clap::Args, Debug)]
struct DevicesArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ObjectiveArg {
    /// Find the best candidates (top-k recall).
    FindBest,
    /// Learn an accurate model (RMSE on a held-out test split).
    Accuracy,
}

#[derive(clap::Args, Debug)]
struct SimulateArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Strategies to compare with random (which always runs), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "greedy,ucb", value_parser = clap::builder::PossibleValuesParser::new(poolrank::Acquisition::NAMES))]
    strategies: Vec<String>,
    /// UCB's weight on the standard deviation.
    #[arg(long, default_value_t = 2.0)]
    beta: f32,
    /// EI/PI margin, in label standard deviations.
    #[arg(long, default_value_t = 0.0)]
    xi: f32,
    /// Initial random labels: a count or a fraction of the pool.
    #[arg(long, default_value = "0.01", value_parser = BatchSize::parse)]
    init: BatchSize,
    /// Batch per round: a count or a fraction of the pool.
    #[arg(long, default_value = "0.01", value_parser = BatchSize::parse)]
    batch: BatchSize,
    /// Rounds after the initial batch.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Size of the true top set for recall: a count or a fraction.
    #[arg(long, default_value = "0.01", value_parser = BatchSize::parse)]
    topk: BatchSize,
    /// Replicates (each with its own initial set, shared by every strategy).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Seed of the initial sets, test split, random draws and bootstrap.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How each batch is formed.
    #[arg(long, value_enum, default_value = "topk")]
    batch_mode: ModeArg,
    /// What "better than random" means.
    #[arg(long, value_enum, default_value = "find-best")]
    objective: ObjectiveArg,
    /// Held-out test fraction for --objective accuracy.
    #[arg(long, default_value_t = 0.2)]
    test: f64,
    /// For --objective accuracy: ids (one per line) that form the test set, instead of a
    /// random split (e.g. a test set drawn from another region, as `synth --scenario shift`
    /// writes).
    #[arg(long, value_name = "FILE")]
    test_ids: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Also run every strategy with a sparse GP on each of these numbers of inducing points, on
    /// the same replicates: extra rows named like `ucb(2)@m500`.
    #[arg(long, value_delimiter = ',', value_name = "M,...")]
    compare_inducing: Vec<usize>,
    /// Fit the hyperparameters once (round 0) and hold them, instead of refitting every round.
    #[arg(long)]
    hold_hyperparameters: bool,
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Where to score (see `select --help`).
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendArg,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Output folder: curves.csv, summary.json, recall.svg and recall.png.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
struct SynthArgs {
    /// Which scenario.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(poolrank::sim::synth::Scenario::NAMES))]
    scenario: String,
    /// Candidates.
    #[arg(long, default_value_t = 20_000)]
    n: usize,
    /// Dense feature dimension (with --bits: the latent dimension the fingerprints encode).
    #[arg(long, default_value_t = 16)]
    dim: usize,
    /// Write bit fingerprints of this width (PREFIX.fps, Tanimoto) instead of dense features:
    /// random hyperplanes of the dense points, so the labels keep their relation.
    #[arg(long)]
    bits: Option<usize>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output prefix: writes PREFIX.npy (float32 features) and PREFIX.labels.csv (id,score; the
    /// id is the row number).
    #[arg(long, value_name = "PREFIX")]
    out: PathBuf,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum AcqArg {
    /// Highest predicted value (exploitation).
    Greedy,
    /// Upper confidence bound: mean + beta × sd.
    Ucb,
    /// Expected improvement over the best label (+ xi).
    Ei,
    /// Probability of improvement over the best label (+ xi).
    Pi,
    /// Highest uncertainty (exploration).
    Variance,
    /// One random draw from each candidate's predicted distribution.
    Thompson,
    /// Uniformly at random (the baseline).
    Random,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum KernelArg {
    /// Binary fingerprints (the default for FPS and packed .npy).
    Tanimoto,
    /// Count fingerprints (the default for .npz counts); equals Tanimoto on bits.
    Minmax,
    /// Dense features, squared exponential (the default for float features).
    Rbf,
    /// Dense features, Matérn 5/2.
    Matern52,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ModeArg {
    /// The best scores.
    Topk,
    /// One pick at a time, shrinking the uncertainty around each pick (kriging believer).
    Diverse,
}

/// The pool and its labels, as `select` and `simulate` read them.
#[derive(clap::Args, Debug)]
struct InputArgs {
    /// Pool of candidates: .fps/.fps.gz (chemfp), .npy (packed bits, counts or floats),
    /// .npz (scipy.sparse CSR counts), .csv/.csv.gz (id column + numeric features), or SMILES
    /// (.smi/.smi.gz, or a CSV with a SMILES column) featurized on the fly with the default
    /// Morgan settings (`featurize` once is faster for repeated rounds).
    #[arg(long, value_name = "FILE")]
    pool: PathBuf,
    /// Pool format when the file name does not tell it.
    #[arg(long, value_name = "FORMAT", value_parser = clap::builder::PossibleValuesParser::new(PoolFormat::NAMES))]
    pool_format: Option<String>,
    /// For .npy/.npz pools: a file with one id per line, in row order (default: the row number,
    /// starting at 0).
    #[arg(long, value_name = "FILE")]
    ids: Option<PathBuf>,
    /// Labels: CSV (optionally gzipped) with an id column and a value column (`simulate` needs
    /// one for every candidate: it is the oracle).
    #[arg(long, value_name = "FILE")]
    labels: PathBuf,
    /// Id column of the labels file (and of a CSV pool).
    #[arg(long, default_value = "id", value_name = "NAME")]
    id_col: String,
    /// SMILES column of a CSV pool (a .csv pool with this column is featurized on the fly).
    #[arg(long, default_value = "smiles", value_name = "NAME")]
    smiles_col: String,
    /// Value column of the labels file.
    #[arg(long, default_value = "score", value_name = "NAME")]
    y_col: String,
    /// Lower values are better (docking scores, IC50 in nM, energies).
    #[arg(long)]
    minimize: bool,
}

impl InputArgs {
    fn specs(&self) -> (PoolSpec, LabelSpec) {
        let mut pool = PoolSpec::new(&self.pool);
        pool.format = self.pool_format.as_deref().and_then(PoolFormat::from_name);
        pool.ids = self.ids.clone();
        pool.id_col = self.id_col.clone();
        pool.smiles_col = self.smiles_col.clone();
        let labels = LabelSpec {
            path: self.labels.clone(),
            id_col: self.id_col.clone(),
            y_col: self.y_col.clone(),
        };
        (pool, labels)
    }
}

impl ModelArgs {
    fn spec(&self) -> poolrank::gp::ModelSpec {
        poolrank::gp::ModelSpec {
            kernel: self.kernel.map(kernel_kind),
            signal_var: self.signal_var,
            noise: self.noise,
            lengthscale: self.lengthscale,
            inducing: self.inducing,
            exact: self.exact,
        }
    }
}

/// The Gaussian process's kernel and hyperparameters.
#[derive(clap::Args, Debug)]
struct ModelArgs {
    /// Similarity kernel (default: tanimoto for bits, minmax for counts, rbf for floats).
    #[arg(long, value_enum)]
    kernel: Option<KernelArg>,
    /// Noise variance in standardised label units (fitted if not given).
    #[arg(long, value_name = "VAR")]
    noise: Option<f64>,
    /// Signal variance in standardised label units (fitted if not given).
    #[arg(long, value_name = "VAR")]
    signal_var: Option<f64>,
    /// Lengthscale of rbf/matern52 (fitted if not given).
    #[arg(long, value_name = "LEN")]
    lengthscale: Option<f64>,
    /// Sparse GP (VFE) on M inducing points chosen from the labels [default: exact up to 5000
    /// labels, 2000 inducing points above].
    #[arg(long, value_name = "M", conflicts_with = "exact")]
    inducing: Option<usize>,
    /// Always the exact GP: refuse the automatic switch to inducing points above 5000 labels.
    #[arg(long)]
    exact: bool,
}

#[derive(clap::Args, Debug)]
struct SelectArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Ids already sent for measurement (one per line): never picked; the diverse mode treats
    /// them as already in the batch.
    #[arg(long, value_name = "FILE")]
    pending: Option<PathBuf>,
    /// Batch size: a count (100) or a fraction of the pool (0.01).
    #[arg(long, default_value = "100", value_parser = BatchSize::parse)]
    batch: BatchSize,
    /// Acquisition function.
    #[arg(long, value_enum, default_value = "ucb")]
    acq: AcqArg,
    /// UCB's weight on the standard deviation.
    #[arg(long, default_value_t = 2.0)]
    beta: f32,
    /// EI/PI margin, in standard deviations of the labels.
    #[arg(long, default_value_t = 0.0)]
    xi: f32,
    #[command(flatten)]
    model: ModelArgs,
    /// How the batch is formed from the scores.
    #[arg(long, value_enum, default_value = "topk")]
    batch_mode: ModeArg,
    /// Candidates kept for the diverse mode and the similarity cap [default: max(5 × batch, 500)].
    #[arg(long, value_name = "N")]
    shortlist: Option<usize>,
    /// No two picks more similar than this (kernel similarity, 0 to 1; e.g. 0.7 Tanimoto).
    #[arg(long, value_name = "SIM")]
    max_sim: Option<f64>,
    /// Seed for the random and Thompson draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Round number (gives each round its own random draws).
    #[arg(long, default_value_t = 0)]
    round: u32,
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Pool rows read and scored at a time (memory grows with it).
    #[arg(long, default_value_t = 65_536, value_name = "ROWS")]
    tile: usize,
    /// Where to write the batch (CSV: rank,id,index,score,mean,sd).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Where to write a JSON summary (fit, counts, timings).
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Where to score. Software GPU adapters (llvmpipe) are taken only with
    /// POOLRANK_ALLOW_SOFTWARE_GPU=1.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendArg,
}

#[derive(clap::Args, Debug)]
struct DemoArgs {
    /// Seed for the random initial labels.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Select(args) => {
            let threads = args.threads;
            with_threads(threads, || select(*args))
        }
        Command::Simulate(args) => {
            let threads = args.threads;
            with_threads(threads, || simulate(*args))
        }
        Command::Synth(args) => synth(args),
        Command::Diagnose(args) => {
            let threads = args.threads;
            with_threads(threads, || diagnose(*args))
        }
        Command::Bench(args) => with_threads(args.threads, || {
            let cfg = poolrank::bench::BenchConfig {
                pool_size: args.pool_size,
                train: args.train,
                bits: args.bits,
                dim: args.dim,
                backend: args.backend.into(),
                seed: args.seed,
                tile_rows: args.tile_rows,
                compare_cpu: args.compare_cpu,
                model: match (args.inducing, args.exact) {
                    (Some(m), _) => Inducing::Points(m),
                    (None, true) => Inducing::Exact,
                    (None, false) => Inducing::Auto,
                },
                ..Default::default()
            };
            let report = poolrank::bench::run_bench(&cfg)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            Ok(())
        }),
        Command::Devices(args) => {
            let list =
                poolrank::backend::gpu::list_adapters(&poolrank::backend::GpuOptions::default());
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{list}");
            }
            Ok(())
        }
        Command::Featurize(args) => {
            let threads = args.threads;
            with_threads(threads, || featurize(args))
        }
        Command::Demo(args) => with_threads(args.threads, || {
            let report = poolrank::demo::run(args.seed)?;
            print!("{report}");
            Ok(())
        }),
    }
}

/// Runs `f` on a rayon pool of `threads` workers (all cores by default).
fn with_threads(threads: Option<usize>, f: impl FnOnce() -> Result<()> + Send) -> Result<()> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        anyhow::ensure!(t > 0, "--threads must be at least 1");
        anyhow::ensure!(
            t <= poolrank::data::limits::MAX_THREADS,
            "--threads must be at most {}, got {t}",
            poolrank::data::limits::MAX_THREADS
        );
        builder = builder.num_threads(t);
    }
    let pool = builder.build().context("starting worker threads")?;
    let n = pool.current_num_threads();
    faer::set_global_parallelism(match std::num::NonZeroUsize::new(n) {
        Some(n) if n.get() > 1 => faer::Par::Rayon(n),
        _ => faer::Par::Seq,
    });
    pool.install(f)
}

fn kernel_kind(k: KernelArg) -> KernelKind {
    match k {
        KernelArg::Tanimoto => KernelKind::Tanimoto,
        KernelArg::Minmax => KernelKind::MinMax,
        KernelArg::Rbf => KernelKind::Rbf,
        KernelArg::Matern52 => KernelKind::Matern52,
    }
}

fn simulate(a: SimulateArgs) -> Result<()> {
    use poolrank::sim::{load_labeled_pool, simulate, Objective, SimConfig};
    let (pool, labels) = a.input.specs();
    let mut cfg = SimConfig::new();
    cfg.strategies = a
        .strategies
        .iter()
        .filter_map(|s| Acquisition::from_name(s, a.beta, a.xi))
        .collect();
    cfg.init = a.init;
    cfg.batch = a.batch;
    cfg.rounds = a.rounds;
    cfg.topk = a.topk;
    cfg.reps = a.reps;
    cfg.seed = a.seed;
    cfg.mode = match a.batch_mode {
        ModeArg::Topk => BatchMode::TopK,
        ModeArg::Diverse => BatchMode::Diverse,
    };
    cfg.objective = match a.objective {
        ObjectiveArg::FindBest => Objective::FindBest,
        ObjectiveArg::Accuracy => Objective::Accuracy,
    };
    cfg.test = a.test;
    cfg.model = a.model.spec();
    cfg.compare_inducing = a.compare_inducing.clone();
    cfg.refit = !a.hold_hyperparameters;
    cfg.minimize = a.input.minimize;
    cfg.backend = a.backend.into();
    cfg.progress = !a.quiet;
    pool_notes(&pool)?;
    let data = load_labeled_pool(&pool, &labels)?;
    if let Some(path) = &a.test_ids {
        let ids = poolrank::data::read_id_list(path)?;
        let row_of: std::collections::HashMap<&str, usize> = data
            .ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();
        let missing: Vec<&String> = ids
            .iter()
            .filter(|id| !row_of.contains_key(id.as_str()))
            .collect();
        anyhow::ensure!(
            missing.is_empty(),
            "{}: {} test id(s) not in the pool, e.g. {:?}",
            path.display(),
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        cfg.test_rows = Some(ids.iter().map(|id| row_of[id.as_str()]).collect());
    }
    let result = simulate(&data, &cfg)?;
    let [curves, summary, svg, png] = report::write_simulation(&a.out, &result)?;
    print!("{}", poolrank::sim::verdict_table(&result));
    eprintln!(
        "wrote {}, {}, {} and {}",
        curves.display(),
        summary.display(),
        svg.display(),
        png.display()
    );
    Ok(())
}

fn featurize(a: FeaturizeArgs) -> Result<()> {
    use poolrank::featurize::{featurize_file, FeaturizeConfig, SmilesSource};
    let mut input = SmilesSource::new(&a.smiles);
    input.smiles_col = a.smiles_col;
    input.id_col = a.id_col;
    let mut cfg = FeaturizeConfig::new(input, &a.out);
    cfg.radius = a.radius;
    cfg.nbits = a.bits;
    cfg.counts = match (a.counts, a.bits_only) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    cfg.skip_invalid = a.skip_invalid.clone();
    cfg.chunk = a.chunk;
    cfg.progress = !a.quiet;
    let s = featurize_file(&cfg)?;
    eprintln!(
        "featurized {} molecules in {:.2} s ({:.0} molecules/s on {} thread(s)); wrote {}{}",
        s.molecules,
        s.seconds,
        s.molecules_per_second,
        rayon::current_num_threads(),
        a.out.display(),
        match &s.ids {
            Some(ids) => format!(
                " and {} (pass it to select/simulate with --ids)",
                ids.display()
            ),
            None => String::new(),
        }
    );
    if let Some(path) = &a.skip_invalid {
        eprintln!(
            "left out {} invalid molecule(s), listed in {}",
            s.rejected,
            path.display()
        );
    }
    eprintln!("provenance: {}", s.provenance);
    Ok(())
}

/// Warns (on stderr) when the pool's recorded fingerprint settings differ from the defaults
/// that `featurize` and SMILES pools use, and notes that SMILES pools are featurized on the fly.
fn pool_notes(pool: &PoolSpec) -> Result<()> {
    use poolrank::data::PoolFormat;
    if matches!(
        pool.resolve_format()?,
        PoolFormat::Smiles | PoolFormat::SmilesCsv
    ) {
        eprintln!(
            "note: featurizing {} on the fly (Morgan radius 2, 2048 counts) on every pass; `poolrank featurize` once is faster for repeated rounds",
            pool.path.display()
        );
    }
    if let Some(w) = poolrank::featurize::provenance_warning(pool.provenance()?.as_deref()) {
        eprintln!("warning: {w}");
    }
    Ok(())
}

fn synth(a: SynthArgs) -> Result<()> {
    use poolrank::sim::synth::{generate, Scenario};
    let scenario = Scenario::from_name(&a.scenario).context("unknown scenario")?;
    let data = generate(scenario, a.n, a.dim, a.seed)?;
    let pool = &data.pool;
    let prefix = a.out.to_string_lossy().into_owned();
    let fingerprints = a
        .bits
        .map(|b| poolrank::sim::synth::to_bits(&pool.features, b, a.seed))
        .transpose()?;
    let npy = PathBuf::from(match fingerprints {
        Some(_) => format!("{prefix}.fps"),
        None => format!("{prefix}.npy"),
    });
    let labels = PathBuf::from(format!("{prefix}.labels.csv"));
    let ids: Vec<String> = (0..pool.y.len()).map(|i| i.to_string()).collect();
    report::write_all(vec![
        (
            npy.as_path(),
            Box::new(|p| match &fingerprints {
                Some(f) => report::write_fps(p, f, &ids),
                None => report::write_dense_npy(p, &pool.features),
            }),
        ),
        (
            labels.as_path(),
            Box::new(|p| {
                let rows: Vec<(String, f64)> = (0..pool.y.len())
                    .map(|i| (i.to_string(), pool.y[i]))
                    .collect();
                report::write_labels_csv(p, &rows)
            }),
        ),
    ])?;
    if !data.test_rows.is_empty() {
        let path = PathBuf::from(format!("{prefix}.test_ids.txt"));
        let text: String = data.test_rows.iter().map(|i| format!("{i}\n")).collect();
        report::write_atomic(&path, |w| w.write_all(text.as_bytes()))?;
        eprintln!(
            "wrote {} ({} test candidates: simulate --objective accuracy --test-ids {})",
            path.display(),
            data.test_rows.len(),
            path.display()
        );
    }
    eprintln!(
        "wrote {} and {} ({} candidates, {})",
        npy.display(),
        labels.display(),
        a.n,
        match a.bits {
            Some(b) => format!("{b}-bit fingerprints of {} latent dimensions", a.dim),
            None => format!("{} features", a.dim),
        }
    );
    Ok(())
}

fn acquisition(acq: AcqArg, beta: f32, xi: f32) -> Acquisition {
    match acq {
        AcqArg::Greedy => Acquisition::Greedy,
        AcqArg::Ucb => Acquisition::Ucb { beta },
        AcqArg::Ei => Acquisition::Ei { xi },
        AcqArg::Pi => Acquisition::Pi { xi },
        AcqArg::Variance => Acquisition::Variance,
        AcqArg::Thompson => Acquisition::Thompson,
        AcqArg::Random => Acquisition::Random,
    }
}

fn diagnose(a: DiagnoseArgs) -> Result<()> {
    use poolrank::diagnose::{render, run_diagnose, DiagnoseConfig};
    let (pool, labels) = a.input.specs();
    let mut cfg = DiagnoseConfig::new(SelectConfig::new(pool, labels));
    cfg.select.model = a.model.spec();
    cfg.select.acquisition = acquisition(a.acq, a.beta, a.xi);
    cfg.select.minimize = a.input.minimize;
    cfg.select.batch = a.batch;
    cfg.select.seed = a.seed;
    cfg.select.tile_rows = a.tile;
    cfg.select.progress = !a.quiet;
    cfg.select.backend = a.backend.into();
    cfg.folds = a.folds;
    cfg.nn_sample = a.nn_sample;
    cfg.objective = match a.objective {
        ObjectiveArg::FindBest => poolrank::sim::Objective::FindBest,
        ObjectiveArg::Accuracy => poolrank::sim::Objective::Accuracy,
    };
    cfg.test = a.test.clone();
    let r = run_diagnose(&cfg)?;
    let [json, html] = report::write_diagnosis(&a.out, &r)?;
    print!("{}", render::text(&r));
    eprintln!("wrote {} and {}", json.display(), html.display());
    Ok(())
}

fn select(a: SelectArgs) -> Result<()> {
    let (pool, labels) = a.input.specs();
    pool_notes(&pool)?;
    let mut cfg = SelectConfig::new(pool, labels);
    cfg.pending = a.pending.clone();
    cfg.model = a.model.spec();
    cfg.acquisition = match a.acq {
        AcqArg::Greedy => Acquisition::Greedy,
        AcqArg::Ucb => Acquisition::Ucb { beta: a.beta },
        AcqArg::Ei => Acquisition::Ei { xi: a.xi },
        AcqArg::Pi => Acquisition::Pi { xi: a.xi },
        AcqArg::Variance => Acquisition::Variance,
        AcqArg::Thompson => Acquisition::Thompson,
        AcqArg::Random => Acquisition::Random,
    };
    cfg.minimize = a.input.minimize;
    cfg.batch = a.batch;
    cfg.mode = match a.batch_mode {
        ModeArg::Topk => BatchMode::TopK,
        ModeArg::Diverse => BatchMode::Diverse,
    };
    cfg.shortlist = a.shortlist;
    cfg.max_sim = a.max_sim;
    cfg.seed = a.seed;
    cfg.round = a.round;
    cfg.tile_rows = a.tile;
    cfg.progress = !a.quiet;
    cfg.backend = a.backend.into();
    let selection = poolrank::run_select(&cfg)?;
    report::write_batch_csv(&a.out, &selection.picks)?;
    if let Some(path) = &a.summary {
        if let Err(e) = report::write_json(path, &selection.summary) {
            // All or nothing: without its summary the batch file is not left behind either.
            let _ = std::fs::remove_file(&a.out);
            return Err(e.into());
        }
    }
    let s = &selection.summary;
    eprintln!("backend: {}", s.backend_choice);
    if let Some(sp) = &s.fit.info.sparse {
        eprintln!(
            "model: sparse GP (VFE) on {} inducing points of {} labels, {}; ELBO {:.2}",
            sp.used, s.labeled, sp.reason, sp.elbo
        );
    }
    eprintln!(
        "picked {} of {} candidates ({} labeled, {} pending) with {} on {}; scored {:.0} candidates/s; wrote {}",
        selection.picks.len(),
        s.pool_size,
        s.labeled,
        s.pending,
        s.acquisition.name(),
        s.fit.kernel,
        s.candidates_per_second,
        a.out.display()
    );
    Ok(())
}
