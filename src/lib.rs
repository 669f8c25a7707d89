//! # poolrank
//!
//! Ranks very large candidate pools for active learning. A Gaussian process (Tanimoto on bit
//! fingerprints, MinMax on count fingerprints, RBF or Matérn 5/2 on dense features) is fitted
//! to the labeled candidates; every unlabeled candidate is scored with an acquisition function
//! (greedy, UCB, EI, PI, Thompson, variance, random); the best batch is picked.
//!
//! ## Architecture
//! - [`data`]: the [`data::Pool`] trait (a pool is something a pass can be opened over), the
//!   streaming readers (FPS, packed `.npy`, count `.npz`/`.npy`, dense `.npy`/CSV) that yield
//!   [`data::Tile`]s, pools in memory ([`data::MemoryPool`]), the label reader, and the
//!   multi-objective one ([`data::read_objective_labels`]).
//! - [`pool`]: pool files ([`pool::FilePool`]: which reader a file needs, SMILES included).
//! - [`join`]: the one label-to-row join (labeled and pending or test ids found in one pass).
//! - [`featurize`]: SMILES → RDKit-identical Morgan fingerprints (`chematic-fp`), the
//!   streaming `featurize` run and SMILES files read as pools.
//! - [`kernel`]: kernel definitions with an f64 scalar reference each.
//! - [`gp`]: checked hyperparameters, the fit (Cholesky with reported jitter, hyperparameters by
//!   maximum marginal likelihood), the fitted model.
//! - [`model`]: the fitted model as a value ([`FittedModel`]: the GP, its features, direction
//!   and labeled candidates), saved to and loaded from a versioned, checksummed file.
//! - [`rng`]: the counter-based random numbers every backend reproduces, and seeded orders.
//! - [`acquisition`]: acquisition functions.
//! - [`select`]: streaming top-k with index tie-break, diverse batches, similarity cap, joint
//!   posterior samples (over a shortlist, or pathwise over the pool), stochastic batches.
//! - [`backend`]: the scorers; the rayon CPU path is the reference.
//! - [`engine`]: one round end to end (locate labels → fit → score every tile → select); a
//!   round with a saved model skips the fit. The entry points take checked settings
//!   ([`SelectParams::check`]), the pool and the labels as separate arguments.
//! - [`progress`]: progress bars of the long passes.
//! - [`report`]: every output file, through one mechanism ([`report::output`]): checked against
//!   the inputs before any work, staged, and renamed into place all or none.
//! - [`diagnose`]: the report on whether active learning is likely to beat random here.
//! - [`shard`]: a pool scored in shards on a cluster (job arrays, Ray) and merged exactly.
//! - [`pareto`]: multi-objective building blocks (non-dominated layers, hypervolume, EHVI, PHVI).
//! - [`multi`]: a multi-objective round (a GP per label column, one shared kernel block,
//!   EHVI, PHVI, Pareto-UCB and ParEGO batches, constraints); [`sim::pareto`] simulates it.
//!
//! Memory is bounded by the tile size plus the labeled set, never by the pool size.
//!
//! ## Example
//! ```
//! use poolrank::data::Features;
//! use poolrank::gp::{fit, GpParams};
//! use poolrank::kernel::KernelKind;
//!
//! // Four labeled fingerprints (64 bits each) and their values.
//! let x = Features::Bits { nbits: 64, data: vec![0b0111, 0b1110, 0b1100_0000, 0b1101_0000] };
//! let y = [1.0, 0.8, -0.5, -0.4];
//! let params = GpParams::new(KernelKind::Tanimoto).check(x.kind()).unwrap();
//! let gp = fit(&params, &x, &y).unwrap();
//! let pool = Features::Bits { nbits: 64, data: vec![0b0110, 0b1100_0001] };
//! let (mean, var) = gp.predict_valvar(&pool);
//! assert!(mean[0] > mean[1]); // the first candidate resembles the high-valued ones
//! assert!(var.iter().all(|v| *v >= 0.0));
//! ```
//!
//! A whole round on a pool held in memory (a file pool is [`pool::FilePool`]):
//! ```
//! use std::path::Path;
//! use poolrank::backend::BackendChoice;
//! use poolrank::data::{Features, IdList, Labels, MemoryPool};
//! use poolrank::{run_select, BatchSize, SelectParams};
//!
//! // 200 fingerprints of 64 bits; row `i` has the id `"i"`.
//! let data: Vec<u64> = (0..200u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7 | 1).collect();
//! let x = Features::Bits { nbits: 64, data };
//! let pool = MemoryPool::new(Path::new("<memory>"), &x);
//! let labels = Labels::new(
//!     "<lab>",
//!     (0..6).map(|i| i.to_string()).collect(),
//!     vec![1.0, 0.2, -0.3, 0.8, -1.0, 0.1],
//! );
//! let params = SelectParams {
//!     batch: BatchSize::Count(10),
//!     backend: BackendChoice::Cpu,
//!     ..SelectParams::default()
//! }
//! .check()?;
//! let round = run_select(&params, &pool, &labels, &IdList::default())?;
//! assert_eq!(round.picks.len(), 10);
//! assert!(round.picks.iter().all(|p| p.index >= 6)); // never a labeled candidate
//! # Ok::<(), poolrank::Error>(())
//! ```

pub mod acquisition;
pub mod backend;
pub mod data;
pub mod diagnose;
pub mod engine;
pub mod error;
pub mod featurize;
pub mod gp;
pub mod join;
pub mod kernel;
pub mod model;
pub mod multi;
pub mod names;
pub mod pareto;
pub mod pool;
pub mod progress;
pub mod report;
pub mod rng;
pub mod select;
pub mod shard;
pub mod sim;

pub use acquisition::Acquisition;
pub use engine::{
    run_fit, run_select, run_select_model, BatchSize, Fit, Pick, SelectParams, SelectValidParams,
    Selection,
};
pub use error::{Error, Result};
pub use kernel::KernelKind;
pub use model::FittedModel;
pub use select::BatchMode;
