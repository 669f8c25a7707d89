//! The library's error type: every failure a user can cause names the file, line or field.

use std::path::PathBuf;

/// Everything that can go wrong in poolrank, with the context a user needs to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system error while reading or writing `path`.
    ///
    /// The message already includes the operating system's, so the underlying error is not
    /// also reported as this error's `source()`: a printer of the cause chain (anyhow's `{:#}`)
    /// would show it twice.
    #[error("{}: {err}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        err: std::io::Error,
    },
    /// Compressed input (gzip, a deflated `.npz` member) that is corrupt or cut short.
    #[error("{}: {msg}", path.display())]
    Compression {
        /// The file.
        path: PathBuf,
        /// What the decompressor found.
        msg: String,
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
    /// Pool rows without a label where every row needs one (a retrospective simulation).
    #[error("{}: {count} pool candidate(s) have no label (simulate needs every label), e.g. {}", path.display(), examples.join(", "))]
    Unlabeled {
        /// The labels file.
        path: PathBuf,
        /// How many rows had none.
        count: usize,
        /// A few of their ids.
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
    #[error("kernel matrix is not positive definite at pivot {index} even with jitter {jitter:e}; raise the noise or remove duplicate labeled candidates")]
    NotPositiveDefinite {
        /// The failing pivot.
        index: usize,
        /// The largest jitter tried.
        jitter: f64,
    },
    /// A numerical method that failed on the data (not on a setting).
    #[error("{what} failed: {msg}")]
    Numerical {
        /// The computation.
        what: &'static str,
        /// What went wrong.
        msg: String,
    },
    /// A parameter outside its valid range.
    #[error("invalid {name}: {msg}")]
    InvalidParam {
        /// The field (the command line prints its flag instead).
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
    #[error("GPU error: {what}{}", err.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Gpu {
        /// What poolrank was doing (with wgpu's message, for errors wgpu reports as text).
        what: String,
        /// wgpu's error, when it returned one. Like [`Error::Io`]'s, it is printed in the
        /// message and not also reported as `source()`, so that it shows once.
        err: Option<Box<dyn std::error::Error + Send + Sync>>,
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

/// A fault found by a layer between the file and a reader (a decompressor, a line-length guard),
/// carried inside a `std::io::Error` so that it passes through parsers such as the `csv` crate,
/// and turned back into its own [`Error`] by [`Error::io`].
#[derive(Debug)]
pub(crate) enum InputFault {
    /// Corrupt or truncated compressed data.
    Compression(String),
    /// A malformed line, at 1-based `line`.
    Line {
        /// 1-based line.
        line: usize,
        /// What was wrong.
        msg: String,
    },
}

impl std::fmt::Display for InputFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputFault::Compression(msg) => f.write_str(msg),
            InputFault::Line { line, msg } => write!(f, "line {line}: {msg}"),
        }
    }
}

impl std::error::Error for InputFault {}

impl InputFault {
    /// This fault as an I/O error.
    pub(crate) fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, self)
    }
}

/// At most the first line of `input`, cut to a readable length, for quoting input in messages
/// (an unterminated quote must not echo a whole file).
pub(crate) fn snippet(input: &[u8]) -> String {
    const MAX: usize = 60;
    let text = String::from_utf8_lossy(input);
    let first = text.split(['\n', '\r']).next().unwrap_or("");
    let more_lines = first.len() < text.len();
    let mut out: String = first.chars().take(MAX).collect();
    if more_lines || out.len() < first.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// Shorthand for `std::result::Result<T, poolrank::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An [`Error::Io`] for `path`, or the error a reader layer raised inside the I/O stream
    /// (corrupt compressed data becomes [`Error::Compression`], a line past the length limit an
    /// [`Error::Parse`]).
    pub fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        let path = path.into();
        match err.get_ref().and_then(|e| e.downcast_ref::<InputFault>()) {
            Some(InputFault::Compression(msg)) => Error::Compression {
                path,
                msg: msg.clone(),
            },
            Some(InputFault::Line { line, msg }) => Error::Parse {
                path,
                line: *line,
                msg: msg.clone(),
            },
            None => Error::Io { path, err },
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

    /// An [`Error::Gpu`] about `what`, with wgpu's error.
    pub fn gpu(
        what: impl Into<String>,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Gpu {
            what: what.into(),
            err: Some(Box::new(err)),
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
