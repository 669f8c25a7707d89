//! The command line's schema: every subcommand's flags (clap), their conversions into the
//! library's parameters, and the names of the library's fields as flags.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use poolrank::backend::BackendChoice;
use poolrank::data::{LabelSpec, Objectives, PoolFormat};
use poolrank::multi::{Constraint, ParetoAcquisition};
use poolrank::names::Named;
use poolrank::pool::FilePool;
use poolrank::select::pathwise::JointSampler;
use poolrank::sim::Objective;
use poolrank::{Acquisition, BatchMode, BatchSize, KernelKind, SelectParams};

/// Rank very large candidate pools for active learning.
///
/// poolrank fits a Gaussian process to the candidates you have already measured (labels),
/// scores every other candidate in the pool with an acquisition function, and picks the next
/// batch to send to the lab (or to the docking cluster).
#[derive(Parser, Debug)]
#[command(name = "poolrank", version, about, long_about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Pick the next batch from a pool, given the labeled candidates (or a saved model).
    Select(Box<SelectArgs>),
    /// Fit the model to the labeled candidates and save it (`select --model` scores with it).
    Fit(Box<FitArgs>),
    /// Replay active learning on a fully labeled pool: does it beat random here?
    Simulate(Box<SimulateArgs>),
    /// Write a synthetic pool and labels whose answer is known (smooth, noise, homogeneous,
    /// outliers, shift, pareto).
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
    /// Write a shard list: a sharded pool's files in order, each with its row count, for
    /// `score-shard` (README "Past one machine").
    ShardList(ShardListArgs),
    /// Score one task's shards with a saved model and write a part (their best --k
    /// candidates) for `merge`; the task comes from --index or the job array's index.
    ScoreShard(Box<ScoreShardArgs>),
    /// Merge the parts of a sharded run into the batch `select` would pick on the whole pool,
    /// refusing a missing, duplicated or foreign part.
    Merge(MergeArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct ShardListArgs {
    /// The shard files, in pool order.
    #[arg(required = true, value_name = "SHARD")]
    pub(crate) shards: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) read: ShardReadArgs,
    /// Worker threads counting rows [default: all cores].
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Where to write the list (paths as given, relative to the list's folder when relative).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,
}

/// How every shard of a sharded pool is read.
#[derive(clap::Args, Debug)]
pub(crate) struct ShardReadArgs {
    /// Shard format when the file names do not tell it.
    #[arg(long, value_name = "FORMAT", value_parser = named::<PoolFormat>())]
    pub(crate) pool_format: Option<PoolFormat>,
    /// Id column of CSV shards.
    #[arg(long, default_value = "id", value_name = "NAME")]
    pub(crate) id_col: String,
    /// SMILES column of CSV shards.
    #[arg(long, default_value = "smiles", value_name = "NAME")]
    pub(crate) smiles_col: String,
}

impl ShardReadArgs {
    /// A file pool with these options.
    pub(crate) fn pool(&self, path: &std::path::Path) -> FilePool {
        let mut pool = FilePool::new(path);
        pool.format = self.pool_format;
        pool.id_col = self.id_col.clone();
        pool.smiles_col = self.smiles_col.clone();
        pool
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct ScoreShardArgs {
    /// The saved model (`poolrank fit --save-model`): its labeled candidates are excluded in
    /// every shard, and its direction is used.
    #[arg(long, value_name = "FILE")]
    pub(crate) model: PathBuf,
    /// The shard list (`poolrank shard-list`).
    #[arg(long, value_name = "FILE", required_unless_present = "pool")]
    pub(crate) shard_list: Option<PathBuf>,
    /// The task: shards INDEX × --per-task onwards of the list [default: the job array's
    /// index, from SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX].
    #[arg(long, requires = "shard_list")]
    pub(crate) index: Option<usize>,
    /// Shards per task.
    #[arg(long, default_value_t = 1, requires = "shard_list")]
    pub(crate) per_task: usize,
    /// Shard files named directly, in pool order (repeat the flag), instead of a list.
    #[arg(long, value_name = "FILE", conflicts_with = "shard_list")]
    pub(crate) pool: Vec<PathBuf>,
    /// With --pool: the global row of the first file's first row.
    #[arg(
        long,
        default_value_t = 0,
        value_name = "ROW",
        conflicts_with = "shard_list"
    )]
    pub(crate) row_offset: usize,
    #[command(flatten)]
    pub(crate) read: ShardReadArgs,
    /// Candidates the part keeps: at least the batch the merge will pick.
    #[arg(long)]
    pub(crate) k: usize,
    #[command(flatten)]
    pub(crate) acq: AcqArgs,
    /// Ids already sent for measurement (one per line), the same file for every task: never
    /// picked; the diverse mode treats them as already in the batch.
    #[arg(long, value_name = "FILE")]
    pub(crate) pending: Option<PathBuf>,
    /// How the merge forms the batch: `diverse` (and --max-sim) make each task keep its best of
    /// the shortlist's size, with their features, and the merge picks from the union's
    /// shortlist with the model.
    #[arg(long, value_parser = named::<BatchMode>(), default_value = "topk")]
    pub(crate) batch_mode: BatchMode,
    /// Shortlist of the diverse mode and the similarity cap, for the whole pool [default:
    /// max(5 × k, 500)].
    #[arg(long, value_name = "N")]
    pub(crate) shortlist: Option<usize>,
    /// No two picks more similar than this (kernel similarity, 0 to 1).
    #[arg(long, value_name = "SIM")]
    pub(crate) max_sim: Option<f64>,
    /// Compute every candidate's variance (brute force); the part is the same either way.
    #[arg(long)]
    pub(crate) no_prune: bool,
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// Round number (gives each round its own random draws).
    #[arg(long, default_value_t = 0)]
    pub(crate) round: u32,
    /// The k-th best `SCORE:ROW` of parts already scored (a scheduler that runs tasks after
    /// others): candidates that cannot beat it get no variance and are not kept; the merge
    /// checks that the batch's last pick reaches it.
    #[arg(long, value_name = "SCORE:ROW", value_parser = parse_floor)]
    pub(crate) floor: Option<(f32, usize)>,
    /// Where to write the part; `{index}` stands for the task's index.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,
}

/// `SCORE:ROW`, as `--floor` takes it.
fn parse_floor(s: &str) -> std::result::Result<(f32, usize), String> {
    let bad = || format!("expected SCORE:ROW (e.g. 2.5:1047), got {s:?}");
    let (score, row) = s.rsplit_once(':').ok_or_else(bad)?;
    let score: f32 = score.parse().map_err(|_| bad())?;
    if !score.is_finite() {
        return Err(bad());
    }
    Ok((score, row.parse().map_err(|_| bad())?))
}

#[derive(clap::Args, Debug)]
pub(crate) struct MergeArgs {
    /// The parts (shell-expanded, or a quoted pattern with `*` and `?` in the file name).
    #[arg(long, required = true, num_args = 1.., value_name = "PART")]
    pub(crate) parts: Vec<PathBuf>,
    /// The batch: the best K of all parts (at most the --k they were scored with).
    #[arg(long)]
    pub(crate) k: usize,
    /// The shard list the parts were scored from: checked against theirs, and it names the
    /// shards of a missing task.
    #[arg(long, value_name = "FILE")]
    pub(crate) shard_list: Option<PathBuf>,
    /// The model the parts must have been scored with; needed to pick a diverse batch (or one
    /// under a similarity cap) from the parts' shortlist.
    #[arg(long, value_name = "FILE")]
    pub(crate) model: Option<PathBuf>,
    /// Check every shard's checksum, not only its size and time.
    #[arg(long, conflicts_with = "no_shard_check")]
    pub(crate) verify_shards: bool,
    /// Do not check the shard files (they are not reachable from here).
    #[arg(long)]
    pub(crate) no_shard_check: bool,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Where to write the batch (CSV: rank,id,index,score,mean,sd, as `select`).
    #[arg(long, value_name = "FILE", required_unless_present = "out_part")]
    pub(crate) out: Option<PathBuf>,
    /// Merge these parts into one part instead (their tasks' best K, or their shortlist),
    /// which merges with the run's other parts to the same batch: a merge in stages.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["out", "summary"])]
    pub(crate) out_part: Option<PathBuf>,
    /// Where to write a JSON summary (parts, counts, settings, timings).
    #[arg(long, value_name = "FILE")]
    pub(crate) summary: Option<PathBuf>,
}

/// `--acq` with its weights, as `select`, `diagnose` and `bench` take them.
#[derive(clap::Args, Debug)]
pub(crate) struct AcqArgs {
    /// Acquisition function [default: ucb; ehvi with --objectives].
    #[arg(long, value_parser = acquisitions())]
    pub(crate) acq: Option<String>,
    /// UCB's weight on the standard deviation.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) beta: f32,
    /// EI/PI margin, in standard deviations of the labels.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) xi: f32,
    /// qPO's joint posterior samples [default: max(1000, 10 × batch)].
    #[arg(long, value_name = "N")]
    pub(crate) samples: Option<u32>,
}

impl AcqArgs {
    /// The acquisition asked for.
    pub(crate) fn get(&self) -> Result<Acquisition> {
        let name = self.acq.as_deref().unwrap_or("ucb");
        Ok(acquisition(name, self.beta, self.xi)?.with_samples(self.samples))
    }

    /// The multi-objective acquisition asked for (default `ehvi`).
    pub(crate) fn pareto(&self) -> Result<ParetoAcquisition> {
        let name = self.acq.as_deref().unwrap_or("ehvi");
        name.parse::<ParetoAcquisition>().map_err(|_| {
            anyhow::anyhow!(
                "invalid --acq: {name} scores one objective; with --objectives use {}",
                pareto_names().join(", ")
            )
        })
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct DiagnoseArgs {
    #[command(flatten)]
    pub(crate) input: InputArgs,
    #[command(flatten)]
    pub(crate) acq: AcqArgs,
    /// Batch size: a count (100) or a fraction of the pool (0.01).
    #[arg(long, default_value = "0.01", value_parser = BatchSize::parse)]
    pub(crate) batch: BatchSize,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// Folds of the cross-validation on the labeled set.
    #[arg(long, default_value_t = 5)]
    pub(crate) folds: usize,
    /// Pool candidates in the seeded sample whose nearest neighbours in the whole pool are
    /// measured (cost grows with it like the labeled set's).
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub(crate) nn_sample: usize,
    /// What the campaign is for.
    #[arg(long, value_parser = named::<Objective>(), default_value = "find-best")]
    pub(crate) objective: Objective,
    /// Held-out test candidates (ids in the pool, one per line), for --objective accuracy.
    #[arg(long, value_name = "FILE")]
    pub(crate) test: Option<PathBuf>,
    /// Several objectives, each a column of --labels with its direction (up to 3, e.g.
    /// "dock:min,qed:max"; a row may lack some): a report per objective on its own labels, how
    /// the objectives trade off, and an overall verdict. Replaces --y-col and --minimize.
    #[arg(
        long,
        value_name = "NAME:min|max,...",
        value_parser = parse_objectives,
        conflicts_with_all = ["y_col", "minimize"]
    )]
    pub(crate) objectives: Option<Objectives>,
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// Output folder: report.json and report.html.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub(crate) struct FeaturizeArgs {
    /// Molecules: .smi (SMILES, whitespace, id), or .csv/.tsv with named columns; plain or gzip.
    #[arg(long, value_name = "FILE")]
    pub(crate) smiles: PathBuf,
    /// SMILES column of a CSV/TSV.
    #[arg(long, default_value = "smiles", value_name = "NAME")]
    pub(crate) smiles_col: String,
    /// Id column of a CSV/TSV.
    #[arg(long, default_value = "id", value_name = "NAME")]
    pub(crate) id_col: String,
    /// Morgan radius (0 to 3).
    #[arg(long, default_value_t = 2)]
    pub(crate) radius: u32,
    /// Folded width: 128, 256, 512, 1024 or 2048.
    #[arg(long, default_value_t = 2048)]
    pub(crate) bits: usize,
    /// Count fingerprints (the default for .npz).
    #[arg(long, conflicts_with = "bits_only")]
    pub(crate) counts: bool,
    /// Bit fingerprints, bit i set when count i > 0 (the default for .fps).
    #[arg(long)]
    pub(crate) bits_only: bool,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Leave out molecules that do not parse or that the fingerprinter refuses, listing each
    /// (line, id, SMILES, reason) in FILE, instead of stopping at the first.
    #[arg(long, value_name = "FILE")]
    pub(crate) skip_invalid: Option<PathBuf>,
    /// Molecules read and featurized at a time (memory grows with it).
    #[arg(long, default_value_t = 16_384, value_name = "N")]
    pub(crate) chunk: usize,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Output: .npz (scipy.sparse CSR counts, ids in OUT's .ids.txt) or .fps/.fps.gz (bits).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub(crate) struct BenchArgs {
    /// Candidates in the synthetic pool (generated tile by tile, never held whole).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) pool_size: usize,
    /// Labeled candidates (n).
    #[arg(long, default_value_t = 1000)]
    pub(crate) train: usize,
    /// Bit fingerprints of this width, Tanimoto (the default: 2048).
    #[arg(long, conflicts_with = "dim")]
    pub(crate) bits: Option<usize>,
    /// Dense features of this dimension, RBF.
    #[arg(long)]
    pub(crate) dim: Option<usize>,
    /// Where to score.
    #[arg(long, value_parser = named::<BackendChoice>(), default_value = "auto")]
    pub(crate) backend: BackendChoice,
    /// When a GPU scores, also score this many candidates on the CPU for the ratio.
    #[arg(long, value_name = "N")]
    pub(crate) compare_cpu: Option<usize>,
    /// Sparse GP (VFE) on M inducing points [default: exact up to 5000 labels, 2000 inducing
    /// points above].
    #[arg(long, value_name = "M", conflicts_with = "exact")]
    pub(crate) inducing: Option<usize>,
    /// Always the exact GP (e.g. to time an exact model on more than 5000 labels).
    #[arg(long)]
    pub(crate) exact: bool,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Candidates per tile.
    #[arg(long, default_value_t = 65_536)]
    pub(crate) tile_rows: usize,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Time every candidate's mean and variance (the raw scoring kernels) instead of
    /// `select`'s search for the best --batch by --acq.
    #[arg(long, conflicts_with_all = ["acq", "batch", "no_prune"])]
    pub(crate) posterior: bool,
    #[command(flatten)]
    pub(crate) acq: AcqArgs,
    /// Candidates the search keeps: a count or a fraction of the pool.
    #[arg(long, default_value = "0.01", value_parser = BatchSize::parse)]
    pub(crate) batch: BatchSize,
    /// Give every candidate a variance (brute force) instead of only those whose bound can
    /// reach the batch; the batch is the same either way.
    #[arg(long)]
    pub(crate) no_prune: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct DevicesArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct SimulateArgs {
    #[command(flatten)]
    pub(crate) input: InputArgs,
    /// Strategies to compare with random (which always runs), comma-separated [default:
    /// greedy,ucb; ehvi,phvi,pareto-ucb,parego with --objectives].
    #[arg(long, value_delimiter = ',', value_parser = acquisitions())]
    pub(crate) strategies: Vec<String>,
    #[command(flatten)]
    pub(crate) objectives: ObjectiveArgs,
    /// UCB's weight on the standard deviation.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) beta: f32,
    /// EI/PI margin, in label standard deviations.
    #[arg(long, default_value_t = 0.0, conflicts_with = "objectives")]
    pub(crate) xi: f32,
    /// qPO's joint posterior samples [default: max(1000, 10 × batch)].
    #[arg(long, value_name = "N", conflicts_with = "objectives")]
    pub(crate) samples: Option<u32>,
    /// Initial random labels: a count or a fraction of the pool.
    #[arg(long, default_value = "0.01", value_parser = BatchSize::parse)]
    pub(crate) init: BatchSize,
    /// Batch per round: a count or a fraction of the pool.
    #[arg(long, default_value = "0.01", value_parser = BatchSize::parse)]
    pub(crate) batch: BatchSize,
    /// Rounds after the initial batch.
    #[arg(long, default_value_t = 5)]
    pub(crate) rounds: usize,
    /// Size of the true top set for recall: a count or a fraction.
    #[arg(long, default_value = "0.01", value_parser = BatchSize::parse)]
    pub(crate) topk: BatchSize,
    /// Replicates (each with its own initial set, shared by every strategy).
    #[arg(long, default_value_t = 5)]
    pub(crate) reps: usize,
    /// Seed of the initial sets, test split, random draws and bootstrap.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// How each batch is formed.
    #[arg(long, value_parser = named::<BatchMode>(), default_value = "topk")]
    pub(crate) batch_mode: BatchMode,
    /// Temperature T of --batch-mode softmax (p ∝ exp(score / T)).
    #[arg(
        long,
        default_value_t = 0.1,
        value_name = "T",
        conflicts_with = "objectives"
    )]
    pub(crate) temperature: f32,
    /// Exponent β of --batch-mode power (p ∝ score^β) and softrank (p ∝ rank^-β).
    #[arg(
        long,
        default_value_t = 1.0,
        value_name = "B",
        conflicts_with = "objectives"
    )]
    pub(crate) power: f32,
    /// How thompson and qpo draw joint samples: exact over a shortlist of the best by
    /// mean + 3 sd, or over the whole pool by pathwise conditioning (exact GP only).
    #[arg(long, value_parser = named::<JointSampler>(), default_value = "shortlist", conflicts_with = "objectives")]
    pub(crate) joint_sampler: JointSampler,
    /// Random features of the pathwise sampler's prior draw.
    #[arg(
        long,
        default_value_t = 1024,
        value_name = "D",
        conflicts_with = "objectives"
    )]
    pub(crate) prior_features: usize,
    /// What "better than random" means.
    #[arg(long, value_parser = named::<Objective>(), default_value = "find-best", conflicts_with = "objectives")]
    pub(crate) objective: Objective,
    /// Held-out test fraction for --objective accuracy.
    #[arg(long, default_value_t = 0.2, conflicts_with = "objectives")]
    pub(crate) test: f64,
    /// For --objective accuracy: ids (one per line) that form the test set, instead of a
    /// random split (e.g. a test set drawn from another region, as `synth --scenario shift`
    /// writes).
    #[arg(long, value_name = "FILE")]
    pub(crate) test_ids: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// Also run every strategy with a sparse GP on each of these numbers of inducing points, on
    /// the same replicates: extra rows named like `ucb(2)@m500`.
    #[arg(long, value_delimiter = ',', value_name = "M,...")]
    pub(crate) compare_inducing: Vec<usize>,
    /// Fit the hyperparameters once (round 0) and hold them, instead of refitting every round.
    #[arg(long)]
    pub(crate) hold_hyperparameters: bool,
    /// Give every candidate a variance each round (brute force) instead of only those that
    /// can enter the batch (or the shortlist of a diverse batch); the picks are the same
    /// either way. The GPU backend scores brute force here (its pruned pass keys ties by the
    /// pool row, not by a replicate's tie order).
    #[arg(long)]
    pub(crate) no_prune: bool,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Where to score (see `select --help`).
    #[arg(long, value_parser = named::<BackendChoice>(), default_value = "auto")]
    pub(crate) backend: BackendChoice,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Output folder: curves.csv, summary.json, recall.svg and recall.png.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub(crate) struct SynthArgs {
    /// Which scenario.
    #[arg(long, value_parser = named::<poolrank::sim::synth::Scenario>())]
    pub(crate) scenario: poolrank::sim::synth::Scenario,
    /// Candidates.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) n: usize,
    /// Dense feature dimension (with --bits: the latent dimension the fingerprints encode).
    #[arg(long, default_value_t = 16)]
    pub(crate) dim: usize,
    /// Write bit fingerprints of this width (PREFIX.fps, Tanimoto) instead of dense features:
    /// random hyperplanes of the dense points, so the labels keep their relation.
    #[arg(long)]
    pub(crate) bits: Option<usize>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Output prefix: writes PREFIX.npy (float32 features) and PREFIX.labels.csv (id,score; the
    /// id is the row number; for `pareto`, id,f1,f2,f3, three objectives to maximise).
    #[arg(long, value_name = "PREFIX")]
    pub(crate) out: PathBuf,
}

/// The pool, as every command that reads one takes it.
#[derive(clap::Args, Debug)]
pub(crate) struct PoolArgs {
    /// Pool of candidates: .fps/.fps.gz (chemfp), .npy (packed bits, counts or floats),
    /// .npz (scipy.sparse CSR counts), .csv/.csv.gz (id column + numeric features), or SMILES
    /// (.smi/.smi.gz, or a CSV with a SMILES column) featurized on the fly with the default
    /// Morgan settings (`featurize` once is faster for repeated rounds).
    #[arg(long, value_name = "FILE")]
    pub(crate) pool: PathBuf,
    /// Pool format when the file name does not tell it.
    #[arg(long, value_name = "FORMAT", value_parser = named::<PoolFormat>())]
    pub(crate) pool_format: Option<PoolFormat>,
    /// For .npy/.npz pools: a file with one id per line, in row order (default: the row number,
    /// starting at 0).
    #[arg(long, value_name = "FILE")]
    pub(crate) ids: Option<PathBuf>,
    /// Id column of the labels file (and of a CSV pool).
    #[arg(long, default_value = "id", value_name = "NAME")]
    pub(crate) id_col: String,
    /// SMILES column of a CSV pool (a .csv pool with this column is featurized on the fly).
    #[arg(long, default_value = "smiles", value_name = "NAME")]
    pub(crate) smiles_col: String,
}

impl PoolArgs {
    pub(crate) fn spec(&self) -> FilePool {
        let mut pool = FilePool::new(&self.pool);
        pool.format = self.pool_format;
        pool.ids = self.ids.clone();
        pool.id_col = self.id_col.clone();
        pool.smiles_col = self.smiles_col.clone();
        pool
    }

    pub(crate) fn labels(&self, path: PathBuf, y_col: &str) -> LabelSpec {
        LabelSpec {
            path,
            id_col: self.id_col.clone(),
            y_col: y_col.to_string(),
        }
    }
}

/// The pool and its labels, as `fit`, `simulate` and `diagnose` read them.
#[derive(clap::Args, Debug)]
pub(crate) struct InputArgs {
    #[command(flatten)]
    pub(crate) pool: PoolArgs,
    /// Labels: CSV (optionally gzipped) with an id column and a value column (`simulate` needs
    /// one for every candidate: it is the oracle).
    #[arg(long, value_name = "FILE")]
    pub(crate) labels: PathBuf,
    /// Value column of the labels file.
    #[arg(long, default_value = "score", value_name = "NAME")]
    pub(crate) y_col: String,
    /// Lower values are better (docking scores, IC50 in nM, energies).
    #[arg(long)]
    pub(crate) minimize: bool,
}

impl InputArgs {
    pub(crate) fn specs(&self) -> (FilePool, LabelSpec) {
        (
            self.pool.spec(),
            self.pool.labels(self.labels.clone(), &self.y_col),
        )
    }
}

impl ModelArgs {
    pub(crate) fn spec(&self) -> poolrank::gp::ModelSpec {
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
pub(crate) struct ModelArgs {
    /// Similarity kernel (default: tanimoto for bits, minmax for counts, rbf for floats).
    #[arg(long, value_parser = named::<KernelKind>())]
    pub(crate) kernel: Option<KernelKind>,
    /// Noise variance in standardised label units (fitted if not given).
    #[arg(long, value_name = "VAR")]
    pub(crate) noise: Option<f64>,
    /// Signal variance in standardised label units (fitted if not given).
    #[arg(long, value_name = "VAR")]
    pub(crate) signal_var: Option<f64>,
    /// Lengthscale of rbf/matern52 (fitted if not given).
    #[arg(long, value_name = "LEN")]
    pub(crate) lengthscale: Option<f64>,
    /// Sparse GP (VFE) on M inducing points chosen from the labels [default: exact up to 5000
    /// labels, 2000 inducing points above].
    #[arg(long, value_name = "M", conflicts_with = "exact")]
    pub(crate) inducing: Option<usize>,
    /// Always the exact GP: refuse the automatic switch to inducing points above 5000 labels.
    #[arg(long)]
    pub(crate) exact: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct SelectArgs {
    #[command(flatten)]
    pub(crate) pool: PoolArgs,
    /// Labels: CSV (optionally gzipped) with an id column and a value column. With --model,
    /// optional: when given, they must be the ones the model was fitted on.
    #[arg(long, value_name = "FILE", required_unless_present = "model")]
    pub(crate) labels: Option<PathBuf>,
    /// Value column of the labels file.
    #[arg(long, default_value = "score", value_name = "NAME")]
    pub(crate) y_col: String,
    /// Lower values are better (docking scores, IC50 in nM, energies). With --model the
    /// model's direction is used, and this must agree with it.
    #[arg(long)]
    pub(crate) minimize: bool,
    /// Score with this saved model (`poolrank fit --save-model`) instead of fitting: no
    /// refit; the model's kernel, hyperparameters, direction and labeled candidates are used.
    #[arg(long = "model", id = "model", value_name = "FILE", conflicts_with_all = ["kernel", "noise", "signal_var", "lengthscale", "inducing", "exact"])]
    pub(crate) model_file: Option<PathBuf>,
    /// Ids already sent for measurement (one per line): never picked; the diverse mode treats
    /// them as already in the batch.
    #[arg(long, value_name = "FILE")]
    pub(crate) pending: Option<PathBuf>,
    /// Batch size: a count (100) or a fraction of the pool (0.01).
    #[arg(long, default_value = "100", value_parser = BatchSize::parse)]
    pub(crate) batch: BatchSize,
    #[command(flatten)]
    pub(crate) acq: AcqArgs,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// How the batch is formed from the scores.
    #[arg(long, value_parser = named::<BatchMode>(), default_value = "topk")]
    pub(crate) batch_mode: BatchMode,
    /// Temperature T of --batch-mode softmax (p ∝ exp(score / T)).
    #[arg(long, default_value_t = 0.1, value_name = "T")]
    pub(crate) temperature: f32,
    /// Exponent β of --batch-mode power (p ∝ score^β) and softrank (p ∝ rank^-β).
    #[arg(long, default_value_t = 1.0, value_name = "B")]
    pub(crate) power: f32,
    /// How thompson and qpo draw joint samples: exact over a shortlist of the best by
    /// mean + 3 sd, or over the whole pool by pathwise conditioning (exact GP only).
    #[arg(long, value_parser = named::<JointSampler>(), default_value = "shortlist")]
    pub(crate) joint_sampler: JointSampler,
    /// Random features of the pathwise sampler's prior draw.
    #[arg(long, default_value_t = 1024, value_name = "D")]
    pub(crate) prior_features: usize,
    /// Candidates kept for the diverse mode and the similarity cap [default: max(5 × batch, 500)].
    #[arg(long, value_name = "N")]
    pub(crate) shortlist: Option<usize>,
    /// No two picks more similar than this (kernel similarity, 0 to 1; e.g. 0.7 Tanimoto).
    #[arg(long, value_name = "SIM")]
    pub(crate) max_sim: Option<f64>,
    /// Compute every candidate's variance (brute force) instead of skipping those whose bound
    /// cannot reach the batch or the shortlist; the batch is the same either way. The GPU
    /// backend scores brute force when more than 1,024 are kept (the batch or the shortlist).
    #[arg(long)]
    pub(crate) no_prune: bool,
    #[command(flatten)]
    pub(crate) objectives: ObjectiveArgs,
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// Round number (gives each round its own random draws).
    #[arg(long, default_value_t = 0)]
    pub(crate) round: u32,
    /// Where to write the batch (CSV: rank,id,index,score,mean,sd).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,
    /// Where to write a JSON summary (fit, counts, timings).
    #[arg(long, value_name = "FILE")]
    pub(crate) summary: Option<PathBuf>,
}

/// The options every command that reads a pool tile by tile shares (`select`, `fit`,
/// `diagnose`). `simulate` holds its pool in memory, so it has no `--tile`.
#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    /// Run seed: every random stream of the run derives from it (random and Thompson draws,
    /// inducing points, diagnose's sample and folds).
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Pool rows read and scored at a time (memory grows with it).
    #[arg(long, default_value_t = 65_536, value_name = "ROWS")]
    pub(crate) tile: usize,
    /// Where to score. Software GPU adapters (llvmpipe) are taken only with
    /// POOLRANK_ALLOW_SOFTWARE_GPU=1.
    #[arg(long, value_parser = named::<BackendChoice>(), default_value = "auto")]
    pub(crate) backend: BackendChoice,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
}

impl RunArgs {
    /// Copies the shared options into `cfg`.
    pub(crate) fn apply(&self, cfg: &mut SelectParams) {
        cfg.seed = self.seed;
        cfg.tile_rows = self.tile;
        cfg.progress = !self.quiet;
        cfg.backend = self.backend;
    }
}

/// What `fit` reads and writes.
#[derive(clap::Args, Debug)]
pub(crate) struct FitArgs {
    #[command(flatten)]
    pub(crate) input: InputArgs,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// Where to write the model (format: `poolrank::model::file`, README "Saved models").
    #[arg(long, value_name = "FILE")]
    pub(crate) save_model: PathBuf,
    /// Where to write a JSON summary of the fit.
    #[arg(long, value_name = "FILE")]
    pub(crate) summary: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct DemoArgs {
    /// Seed for the random initial labels.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub(crate) threads: Option<usize>,
}

/// The library's settings as this command line's flags.
pub(crate) const FLAGS: &[(&str, &str)] = &[
    ("beta", "--beta"),
    ("xi", "--xi"),
    ("samples", "--samples"),
    ("max_sim", "--max-sim"),
    ("temperature", "--temperature"),
    ("power", "--power"),
    ("mode", "--batch-mode"),
    ("joint_sampler", "--joint-sampler"),
    ("prior_features", "--prior-features"),
    ("prune", "--no-prune"),
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
    ("objectives", "--objectives"),
    ("ids", "--ids"),
    ("index", "--index"),
    ("pending", "--pending"),
    ("parts", "--parts"),
    ("model", "--model"),
    ("k", "--k"),
    ("pool", "--pool"),
    ("n", "--n"),
    ("bits", "--bits"),
    ("radius", "--radius"),
    ("chunk", "--chunk"),
    ("counts", "--counts"),
    ("ref_point", "--ref-point"),
    ("constraint", "--constraint"),
];

/// `e` as the user of this command line reads it: a setting the library names by its field
/// is named by its flag.
pub(crate) fn in_flags(e: anyhow::Error) -> String {
    if let Some(poolrank::Error::InvalidParam { name, msg }) = e.downcast_ref::<poolrank::Error>() {
        if let Some((_, flag)) = FLAGS.iter().find(|(field, _)| field == name) {
            return format!("invalid {flag}: {msg}");
        }
    }
    format!("{e:#}")
}

/// The acquisition `name` (one of [`Acquisition::names`], as clap checked) with its weights.
pub(crate) fn acquisition(name: &str, beta: f32, xi: f32) -> Result<Acquisition> {
    if name.parse::<ParetoAcquisition>().is_ok() {
        anyhow::bail!(
            "invalid --acq: {name} scores several objectives; give them with --objectives \"NAME:min,NAME:max\""
        );
    }
    Acquisition::from_name(name, beta, xi).with_context(|| format!("unknown acquisition {name:?}"))
}

/// The multi-objective acquisitions' names.
fn pareto_names() -> Vec<&'static str> {
    ParetoAcquisition::TABLE
        .iter()
        .map(|(_, n, _)| *n)
        .collect()
}

/// A clap value parser over a library enum's name table, each name with its help line.
pub(crate) fn named<
    T: Named + Send + Sync + Clone + std::str::FromStr<Err = poolrank::names::UnknownName>,
>() -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(
        T::TABLE
            .iter()
            .map(|(_, name, help)| PossibleValue::new(*name).help(*help)),
    )
    .try_map(|s| s.parse::<T>())
}

/// `--objectives`, through the library's parser (its message, without the field name clap
/// already gives as the flag).
pub(crate) fn parse_objectives(text: &str) -> std::result::Result<Objectives, String> {
    text.parse::<Objectives>().map_err(|e| match e {
        poolrank::Error::InvalidParam { msg, .. } => msg,
        e => e.to_string(),
    })
}

/// The acquisition names, each with its help line.
pub(crate) fn acquisitions() -> clap::builder::PossibleValuesParser {
    use clap::builder::PossibleValue;
    let one = Acquisition::TABLE
        .iter()
        .map(|(name, help)| PossibleValue::new(*name).help(*help));
    let several = ParetoAcquisition::TABLE
        .iter()
        .map(|(_, name, help)| PossibleValue::new(*name).help(format!("{help} (--objectives)")));
    clap::builder::PossibleValuesParser::new(one.chain(several))
}

/// The flags of a multi-objective run (`select`, `simulate`).
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ObjectiveArgs {
    /// Several objectives at once: label columns with their directions, e.g.
    /// "dock:min,qed:max" (2 or 3; a missing value, empty or NA, leaves that objective
    /// unlabeled for the row). Replaces --y-col and --minimize; --acq then takes ehvi, phvi,
    /// pareto-ucb or parego.
    #[arg(long, value_name = "SPEC", value_parser = parse_objectives, conflicts_with_all = ["y_col", "minimize"])]
    pub(crate) objectives: Option<Objectives>,
    /// Reference point of ehvi and phvi, one value per objective in the file's units
    /// [default: each objective's worst label less 10% of its range].
    #[arg(
        long,
        value_name = "V,V",
        value_delimiter = ',',
        allow_hyphen_values = true,
        requires = "objectives"
    )]
    pub(crate) ref_point: Option<Vec<f64>>,
    /// A constraint on a label column, e.g. "qed>=0.5" or "logp<=5": scores are weighed by
    /// each candidate's probability of meeting it under that column's GP (repeat for more); in
    /// simulate the measures count only the candidates that meet it.
    #[arg(long, value_name = "NAME>=V", value_parser = parse_constraint, requires = "objectives")]
    pub(crate) constraint: Vec<Constraint>,
}

fn parse_constraint(s: &str) -> std::result::Result<Constraint, String> {
    s.parse::<Constraint>().map_err(|e| e.to_string())
}
