//! The `poolrank` command line: parse flags, build a checked config, call the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use poolrank::backend::BackendChoice;
use poolrank::data::{read_labels, IdList, LabelSpec, PoolFormat};
use poolrank::gp::Inducing;
use poolrank::names::Named;
use poolrank::pool::FilePool;
use poolrank::sim::Objective;
use poolrank::{report, Acquisition, BatchMode, BatchSize, KernelKind, SelectParams};

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
    /// Pick the next batch from a pool, given the labeled candidates (or a saved model).
    Select(Box<SelectArgs>),
    /// Fit the model to the labeled candidates and save it (`select --model` scores with it).
    Fit(Box<FitArgs>),
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
    #[arg(long, value_parser = acquisitions(), default_value = "ucb")]
    acq: String,
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
    #[arg(long, value_parser = named::<Objective>(), default_value = "find-best")]
    objective: Objective,
    /// Held-out test candidates (ids in the pool, one per line), for --objective accuracy.
    #[arg(long, value_name = "FILE")]
    test: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
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
    #[arg(long, value_parser = named::<BackendChoice>(), default_value = "auto")]
    backend: BackendChoice,
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

#[derive(clap::Args, Debug)]
struct DevicesArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct SimulateArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Strategies to compare with random (which always runs), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "greedy,ucb", value_parser = acquisitions())]
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
    #[arg(long, value_parser = named::<BatchMode>(), default_value = "topk")]
    batch_mode: BatchMode,
    /// What "better than random" means.
    #[arg(long, value_parser = named::<Objective>(), default_value = "find-best")]
    objective: Objective,
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
    #[arg(long, value_parser = named::<BackendChoice>(), default_value = "auto")]
    backend: BackendChoice,
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

/// The pool, as every command that reads one takes it.
#[derive(clap::Args, Debug)]
struct PoolArgs {
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
    /// Id column of the labels file (and of a CSV pool).
    #[arg(long, default_value = "id", value_name = "NAME")]
    id_col: String,
    /// SMILES column of a CSV pool (a .csv pool with this column is featurized on the fly).
    #[arg(long, default_value = "smiles", value_name = "NAME")]
    smiles_col: String,
}

impl PoolArgs {
    fn spec(&self) -> FilePool {
        let mut pool = FilePool::new(&self.pool);
        pool.format = self.pool_format.as_deref().and_then(PoolFormat::from_name);
        pool.ids = self.ids.clone();
        pool.id_col = self.id_col.clone();
        pool.smiles_col = self.smiles_col.clone();
        pool
    }

    fn labels(&self, path: PathBuf, y_col: &str) -> LabelSpec {
        LabelSpec {
            path,
            id_col: self.id_col.clone(),
            y_col: y_col.to_string(),
        }
    }
}

/// The pool and its labels, as `fit`, `simulate` and `diagnose` read them.
#[derive(clap::Args, Debug)]
struct InputArgs {
    #[command(flatten)]
    pool: PoolArgs,
    /// Labels: CSV (optionally gzipped) with an id column and a value column (`simulate` needs
    /// one for every candidate: it is the oracle).
    #[arg(long, value_name = "FILE")]
    labels: PathBuf,
    /// Value column of the labels file.
    #[arg(long, default_value = "score", value_name = "NAME")]
    y_col: String,
    /// Lower values are better (docking scores, IC50 in nM, energies).
    #[arg(long)]
    minimize: bool,
}

impl InputArgs {
    fn specs(&self) -> (FilePool, LabelSpec) {
        (
            self.pool.spec(),
            self.pool.labels(self.labels.clone(), &self.y_col),
        )
    }
}

impl ModelArgs {
    fn spec(&self) -> poolrank::gp::ModelSpec {
        poolrank::gp::ModelSpec {
            kernel: self.kernel,
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
    #[arg(long, value_parser = named::<KernelKind>())]
    kernel: Option<KernelKind>,
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
    pool: PoolArgs,
    /// Labels: CSV (optionally gzipped) with an id column and a value column. With --model,
    /// optional: when given, they must be the ones the model was fitted on.
    #[arg(long, value_name = "FILE", required_unless_present = "model")]
    labels: Option<PathBuf>,
    /// Value column of the labels file.
    #[arg(long, default_value = "score", value_name = "NAME")]
    y_col: String,
    /// Lower values are better (docking scores, IC50 in nM, energies). With --model the
    /// model's direction is used, and this must agree with it.
    #[arg(long)]
    minimize: bool,
    /// Score with this saved model (`poolrank fit --save-model`) instead of fitting: no
    /// refit; the model's kernel, hyperparameters, direction and labeled candidates are used.
    #[arg(long = "model", id = "model", value_name = "FILE", conflicts_with_all = ["kernel", "noise", "signal_var", "lengthscale", "inducing", "exact"])]
    model_file: Option<PathBuf>,
    /// Ids already sent for measurement (one per line): never picked; the diverse mode treats
    /// them as already in the batch.
    #[arg(long, value_name = "FILE")]
    pending: Option<PathBuf>,
    /// Batch size: a count (100) or a fraction of the pool (0.01).
    #[arg(long, default_value = "100", value_parser = BatchSize::parse)]
    batch: BatchSize,
    /// Acquisition function.
    #[arg(long, value_parser = acquisitions(), default_value = "ucb")]
    acq: String,
    /// UCB's weight on the standard deviation.
    #[arg(long, default_value_t = 2.0)]
    beta: f32,
    /// EI/PI margin, in standard deviations of the labels.
    #[arg(long, default_value_t = 0.0)]
    xi: f32,
    #[command(flatten)]
    model: ModelArgs,
    /// How the batch is formed from the scores.
    #[arg(long, value_parser = named::<BatchMode>(), default_value = "topk")]
    batch_mode: BatchMode,
    /// Candidates kept for the diverse mode and the similarity cap [default: max(5 × batch, 500)].
    #[arg(long, value_name = "N")]
    shortlist: Option<usize>,
    /// No two picks more similar than this (kernel similarity, 0 to 1; e.g. 0.7 Tanimoto).
    #[arg(long, value_name = "SIM")]
    max_sim: Option<f64>,
    #[command(flatten)]
    run: RunArgs,
    /// Round number (gives each round its own random draws).
    #[arg(long, default_value_t = 0)]
    round: u32,
    /// Where to write the batch (CSV: rank,id,index,score,mean,sd).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Where to write a JSON summary (fit, counts, timings).
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
}

/// The options every command that reads a pool tile by tile shares (`select`, `fit`,
/// `diagnose`). `simulate` holds its pool in memory, so it has no `--tile`.
#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Run seed: every random stream of the run derives from it (random and Thompson draws,
    /// inducing points, diagnose's sample and folds).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Pool rows read and scored at a time (memory grows with it).
    #[arg(long, default_value_t = 65_536, value_name = "ROWS")]
    tile: usize,
    /// Where to score. Software GPU adapters (llvmpipe) are taken only with
    /// POOLRANK_ALLOW_SOFTWARE_GPU=1.
    #[arg(long, value_parser = named::<BackendChoice>(), default_value = "auto")]
    backend: BackendChoice,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl RunArgs {
    /// Copies the shared options into `cfg`.
    fn apply(&self, cfg: &mut SelectParams) {
        cfg.seed = self.seed;
        cfg.tile_rows = self.tile;
        cfg.progress = !self.quiet;
        cfg.backend = self.backend;
    }
}

/// What `fit` reads and writes.
#[derive(clap::Args, Debug)]
struct FitArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    run: RunArgs,
    /// Where to write the model (format: `poolrank::model::file`, README "Saved models").
    #[arg(long, value_name = "FILE")]
    save_model: PathBuf,
    /// Where to write a JSON summary of the fit.
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
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
    on_signal_remove_staged();
    poolrank::progress::set_reporter(Box::new(poolrank_cli::progress::Bars));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", in_flags(e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Select(args) => {
            let threads = args.run.threads;
            with_threads(threads, || select(*args))
        }
        Command::Fit(args) => {
            let threads = args.run.threads;
            with_threads(threads, || fit(*args))
        }
        Command::Simulate(args) => {
            let threads = args.threads;
            with_threads(threads, || simulate(*args))
        }
        Command::Synth(args) => synth(args),
        Command::Diagnose(args) => {
            let threads = args.run.threads;
            with_threads(threads, || diagnose(*args))
        }
        Command::Bench(args) => with_threads(args.threads, || {
            let cfg = poolrank_cli::bench::BenchConfig {
                pool_size: args.pool_size,
                train: args.train,
                bits: args.bits,
                dim: args.dim,
                backend: args.backend,
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
            let report = poolrank_cli::bench::run_bench(&cfg)?;
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
            let report = poolrank_cli::demo::run(args.seed)?;
            print!("{report}");
            Ok(())
        }),
    }
}

/// The library's settings as this command line's flags.
const FLAGS: &[(&str, &str)] = &[
    ("beta", "--beta"),
    ("xi", "--xi"),
    ("max_sim", "--max-sim"),
    ("shortlist", "--shortlist"),
    ("tile_rows", "--tile"),
    ("batch", "--batch"),
    ("signal_var", "--signal-var"),
    ("noise", "--noise"),
    ("lengthscale", "--lengthscale"),
    ("restarts", "--restarts"),
    ("inducing", "--inducing"),
    ("exact", "--exact"),
    ("reps", "--reps"),
    ("rounds", "--rounds"),
    ("init", "--init"),
    ("topk", "--topk"),
    ("strategies", "--strategies"),
    ("compare_inducing", "--compare-inducing"),
    ("test_rows", "--test-ids"),
    ("test", "--test"),
    ("folds", "--folds"),
    ("nn_sample", "--nn-sample"),
    ("ids", "--ids"),
    ("n", "--n"),
    ("bits", "--bits"),
    ("radius", "--radius"),
    ("chunk", "--chunk"),
    ("counts", "--counts"),
];

/// `e` as the user of this command line reads it: a setting the library names by its field
/// is named by its flag.
fn in_flags(e: anyhow::Error) -> String {
    if let Some(poolrank::Error::InvalidParam { name, msg }) = e.downcast_ref::<poolrank::Error>() {
        if let Some((_, flag)) = FLAGS.iter().find(|(field, _)| field == name) {
            return format!("invalid {flag}: {msg}");
        }
    }
    format!("{e:#}")
}

/// On SIGINT or SIGTERM: remove every staged output (the previous files stay as they were) and
/// exit 128 + the signal (130, 143), as a shell reports a process the signal ended.
fn on_signal_remove_staged() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        // Without a handler the default action ends the process; staged files may remain.
        eprintln!("warning: cannot handle SIGINT/SIGTERM; an interrupted run may leave hidden staged files");
        return;
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let removed = report::remove_staged();
            eprintln!(
                "interrupted: removed {removed} staged file(s); earlier outputs are unchanged"
            );
            std::process::exit(128 + sig);
        }
    });
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

fn simulate(a: SimulateArgs) -> Result<()> {
    use poolrank::sim::{load_labeled_pool, simulate, SimConfig};
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
    cfg.mode = a.batch_mode;
    cfg.objective = a.objective;
    cfg.test = a.test;
    cfg.model = a.model.spec();
    cfg.compare_inducing = a.compare_inducing.clone();
    cfg.refit = !a.hold_hyperparameters;
    cfg.minimize = a.input.minimize;
    cfg.backend = a.backend;
    cfg.progress = !a.quiet;
    cfg.check_settings()?;
    let mut set = report::simulation_outputs(&a.out)
        .inputs([&pool.path, &labels.path])
        .inputs(pool.ids.as_ref())
        .inputs(a.test_ids.as_ref())
        .check()?;
    pool_notes(&pool)?;
    let test = IdList::read_or_empty(a.test_ids.as_deref())?;
    let (data, test_rows) = load_labeled_pool(&pool, &read_labels(&labels)?, &test)?;
    if a.test_ids.is_some() {
        cfg.test_rows = Some(test_rows);
    }
    let result = simulate(&data, &cfg)?;
    let [curves, summary, svg, png] = report::write_simulation(&mut set, &a.out, &result)?;
    set.commit()?;
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
fn pool_notes(pool: &FilePool) -> Result<()> {
    use poolrank::data::Pool;
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
    // Only `shift` draws a separate test set.
    let paths = report::SynthPaths::new(&a.out, a.bits.is_some(), scenario == Scenario::Shift);
    let mut set = paths.outputs().check()?;
    let data = generate(scenario, a.n, a.dim, a.seed)?;
    let fingerprints = a
        .bits
        .map(|b| poolrank::sim::synth::to_bits(&data.pool.features, b, a.seed))
        .transpose()?;
    report::write_synth(&mut set, &paths, &data, fingerprints.as_ref())?;
    set.commit()?;
    if let Some(path) = &paths.test_ids {
        eprintln!(
            "wrote {} ({} test candidates: simulate --objective accuracy --test-ids {})",
            path.display(),
            data.test_rows.len(),
            path.display()
        );
    }
    eprintln!(
        "wrote {} and {} ({} candidates, {})",
        paths.pool.display(),
        paths.labels.display(),
        a.n,
        match a.bits {
            Some(b) => format!("{b}-bit fingerprints of {} latent dimensions", a.dim),
            None => format!("{} features", a.dim),
        }
    );
    Ok(())
}

/// The acquisition `name` (one of [`Acquisition::names`], as clap checked) with its weights.
fn acquisition(name: &str, beta: f32, xi: f32) -> Result<Acquisition> {
    Acquisition::from_name(name, beta, xi).with_context(|| format!("unknown acquisition {name:?}"))
}

/// A clap value parser over a library enum's name table, each name with its help line.
fn named<T: Named + Send + Sync + Clone + std::str::FromStr<Err = poolrank::names::UnknownName>>(
) -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(
        T::TABLE
            .iter()
            .map(|(_, name, help)| PossibleValue::new(*name).help(*help)),
    )
    .try_map(|s| s.parse::<T>())
}

/// The acquisition names, each with its help line.
fn acquisitions() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        Acquisition::TABLE
            .iter()
            .map(|(name, help)| clap::builder::PossibleValue::new(*name).help(*help)),
    )
}

fn diagnose(a: DiagnoseArgs) -> Result<()> {
    use poolrank::diagnose::{render, run_diagnose, DiagnoseConfig};
    let (pool, labels) = a.input.specs();
    let mut cfg = DiagnoseConfig::default();
    cfg.select.model = a.model.spec();
    cfg.select.acquisition = acquisition(&a.acq, a.beta, a.xi)?;
    cfg.select.minimize = a.input.minimize;
    cfg.select.batch = a.batch;
    a.run.apply(&mut cfg.select);
    cfg.folds = a.folds;
    cfg.nn_sample = a.nn_sample;
    cfg.objective = a.objective;
    let mut set = report::diagnosis_outputs(&a.out)
        .inputs([&a.input.pool.pool, &a.input.labels])
        .inputs(a.input.pool.ids.as_ref())
        .inputs(a.test.as_ref())
        .check()?;
    cfg.select.check()?;
    let labels = read_labels(&labels)?;
    let test = IdList::read_or_empty(a.test.as_deref())?;
    let r = run_diagnose(&cfg, &pool, &labels, &test)?;
    let [json, html] = report::write_diagnosis(&mut set, &a.out, &r)?;
    set.commit()?;
    print!("{}", render::text(&r));
    eprintln!("wrote {} and {}", json.display(), html.display());
    Ok(())
}

fn fit(a: FitArgs) -> Result<()> {
    let (pool, labels) = a.input.specs();
    let mut set = report::Outputs::new()
        .inputs([&pool.path, &labels.path])
        .inputs(pool.ids.as_ref())
        .output(&a.save_model)
        .outputs(a.summary.as_ref())
        .check()?;
    pool_notes(&pool)?;
    let mut params = SelectParams {
        model: a.model.spec(),
        minimize: a.input.minimize,
        ..SelectParams::default()
    };
    a.run.apply(&mut params);
    let params = params.check()?;
    let fitted = poolrank::run_fit(&params, &pool, &read_labels(&labels)?)?;
    fitted.model.save_into(&mut set, &a.save_model)?;
    if let Some(path) = &a.summary {
        report::write_json(&mut set, path, &fitted.summary)?;
    }
    set.commit()?;
    let s = &fitted.summary;
    let gp = fitted.model.gp();
    eprintln!(
        "fitted {} on {} labels of {} candidates ({}): signal_var {:.4}, noise {:.4}{}; log marginal likelihood {:.2}; wrote {}",
        s.fit.kernel,
        s.labeled,
        s.pool_size,
        s.features,
        gp.signal_var,
        gp.noise,
        gp.lengthscale()
            .map(|l| format!(", lengthscale {l:.4}"))
            .unwrap_or_default(),
        gp.info.log_marginal_likelihood,
        a.save_model.display()
    );
    Ok(())
}

fn select(a: SelectArgs) -> Result<()> {
    let pool = a.pool.spec();
    let labels = a
        .pool
        .labels(a.labels.clone().unwrap_or_default(), &a.y_col);
    let mut set = report::Outputs::new()
        .input(&pool.path)
        .inputs(a.labels.as_ref())
        .inputs(pool.ids.as_ref())
        .inputs(a.pending.as_ref())
        .inputs(a.model_file.as_ref())
        .output(&a.out)
        .outputs(a.summary.as_ref())
        .check()?;
    pool_notes(&pool)?;
    let mut params = SelectParams {
        model: a.model.spec(),
        acquisition: acquisition(&a.acq, a.beta, a.xi)?,
        minimize: a.minimize,
        batch: a.batch,
        mode: a.batch_mode,
        shortlist: a.shortlist,
        max_sim: a.max_sim,
        round: a.round,
        ..SelectParams::default()
    };
    a.run.apply(&mut params);
    let params = params.check()?;
    let selection = match &a.model_file {
        None => {
            let labels = read_labels(&labels)?;
            let pending = IdList::read_or_empty(a.pending.as_deref())?;
            poolrank::run_select(&params, &pool, &labels, &pending)?
        }
        Some(path) => {
            let model = poolrank::FittedModel::load(path)?;
            anyhow::ensure!(
                !a.minimize || model.minimize(),
                "--minimize: {} was fitted to maximise its labels; refit with `poolrank fit --minimize`",
                path.display()
            );
            eprintln!(
                "model: {} ({} on {}, {} labels, {})",
                path.display(),
                model.gp().kernel.kind.name(),
                model.features(),
                model.labeled_ids().len(),
                if model.minimize() {
                    "minimising"
                } else {
                    "maximising"
                }
            );
            if a.labels.is_some() {
                let l = read_labels(&labels)?;
                model.check_labels(&labels.path, &l.ids, &l.values)?;
            }
            let pending = IdList::read_or_empty(a.pending.as_deref())?;
            poolrank::run_select_model(&params, &pool, &model, &pending)?
        }
    };
    report::write_batch_csv(&mut set, &a.out, &selection.picks)?;
    if let Some(path) = &a.summary {
        report::write_json(&mut set, path, &selection.summary)?;
    }
    set.commit()?;
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
