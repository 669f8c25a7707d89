//! The library's error type: every failure a user can cause names the file, line or field.

use std::path::PathBuf;

/// Everything that can go wrong in poolrank, with the context a user needs to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error while reading or writing `path`.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An output the run refuses to write, found before any work: it is also an input or
    /// another output of the run, or it exists and is not a regular file.
    #[error("{}: refused as an output: {reason}", path.display())]
    OutputRefused {
        /// The output as given.
        path: PathBuf,
        /// Why, and what to do instead.
        reason: String,
    },
    /// A malformed line in a text input.
    #[error("{}:{line}: {msg}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong and what was expected.
        msg: String,
    },
    /// A binary input that is not what poolrank expects (a `.npy` header, a `.npz` member).
    #[error("{}: {msg}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong and what was expected.
        msg: String,
    },
    /// The pool holds no candidates.
    #[error("{}: the pool is empty (no candidates)", path.display())]
    EmptyPool {
        /// The pool file.
        path: PathBuf,
    },
    /// The same id appears twice where ids must be unique.
    #[error("{}: duplicate id {id:?} ({where_})", path.display())]
    DuplicateId {
        /// The file holding the duplicate.
        path: PathBuf,
        /// The repeated id.
        id: String,
        /// Where the two copies are (lines or rows).
        where_: String,
    },
    /// Labeled or pending ids that the pool does not contain.
    #[error("{}: {count} id(s) not found in the pool, e.g. {}", path.display(), examples.join(", "))]
    UnknownIds {
        /// The labels or pending file.
        path: PathBuf,
        /// How many ids were missing.
        count: usize,
        /// A few of them.
        examples: Vec<String>,
    },
    /// Not enough labeled points to fit a model.
    #[error("need at least 2 labeled candidates to fit a model, got {n}")]
    TooFewLabels {
        /// How many there were.
        n: usize,
    },
    /// A batch larger than what can be picked.
    #[error("batch of {batch} requested but only {available} unlabeled candidates are available")]
    BatchTooLarge {
        /// The requested batch size.
        batch: usize,
        /// Candidates that are neither labeled nor pending.
        available: usize,
    },
    /// The kernel does not apply to the pool's features.
    #[error("kernel {kernel} does not apply to {features}; {hint}")]
    KernelMismatch {
        /// The kernel asked for.
        kernel: &'static str,
        /// The features the pool holds.
        features: String,
        /// The kernels that do apply.
        hint: String,
    },
    /// The kernel matrix stayed singular after the largest jitter.
    #[error("kernel matrix is not positive definite at pivot {index} even with jitter {jitter:e}; raise --noise or remove duplicate labeled candidates")]
    NotPositiveDefinite {
        /// The failing pivot.
        index: usize,
        /// The largest jitter tried.
        jitter: f64,
    },
    /// A parameter outside its valid range.
    #[error("invalid {name}: {msg}")]
    InvalidParam {
        /// The flag or field.
        name: &'static str,
        /// What is allowed.
        msg: String,
    },
    /// A request that exceeds what the device or the method supports.
    #[error("{what}: requested {requested}, at most {max}")]
    LimitExceeded {
        /// What was too large.
        what: String,
        /// The size asked for.
        requested: u64,
        /// The largest supported.
        max: u64,
    },
    /// No GPU adapter qualifies (none found, or only software ones when they are not allowed).
    #[error("no usable GPU adapter: {why}")]
    NoAdapter {
        /// What was found and why each adapter was passed over.
        why: String,
    },
    /// The GPU reported a failure: a refused device, out of memory, a lost device, or a
    /// validation error.
    #[error("GPU error: {msg}")]
    Gpu {
        /// wgpu's message with what poolrank was doing.
        msg: String,
    },
    /// A model file that cannot be used: not a model file, another format version, truncated
    /// or corrupted.
    #[error("{}: {msg}", path.display())]
    Model {
        /// The model file.
        path: PathBuf,
        /// What was wrong.
        msg: String,
    },
    /// A pool whose features are not the ones a saved model was fitted on.
    #[error("{}: {msg}", path.display())]
    FeatureMismatch {
        /// The pool.
        path: PathBuf,
        /// Both sides of the difference.
        msg: String,
    },
    /// Labels given beside a saved model that are not the ones it was fitted on.
    #[error("{}: {msg}", path.display())]
    LabelsMismatch {
        /// The labels file.
        path: PathBuf,
        /// The first difference.
        msg: String,
    },
}

/// Shorthand for `std::result::Result<T, poolrank::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Parse`] for `path` at 1-based `line`.
    pub fn parse(path: impl Into<PathBuf>, line: usize, msg: impl Into<String>) -> Self {
        Error::Parse {
            path: path.into(),
            line,
            msg: msg.into(),
        }
    }

    /// An [`Error::Format`] for `path`.
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }

    /// An [`Error::InvalidParam`].
    pub fn param(name: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidParam {
            name,
            msg: msg.into(),
        }
    }
}
