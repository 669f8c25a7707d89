//! Pools and labels: the in-memory feature blocks, the streaming pool readers and the label
//! readers (one value column, or several objectives).
//!
//! A pool is read as a stream of [`Tile`]s of consecutive rows, so memory is bounded by the tile
//! size and never by the pool size. Every reader gives the same [`Features`] layout:
//! fingerprints as LSB-first `u64` words (bit `j` of a fingerprint is bit `j % 64` of word
//! `j / 64`), counts as CSR rows, dense features as row-major `f32`.

mod csv_dense;
mod fps;
pub(crate) mod ids;
pub(crate) mod labels;
pub mod limits;
mod npy;
mod npz;
mod objectives;

use std::path::Path;

pub use csv_dense::DenseCsvReader;
pub use fps::{read_fps_type, FpsReader};
pub use labels::{read_id_list, read_labels, IdList, LabelSpec, Labels, MAX_LABEL};
pub use npy::{push_packbits, Dtype, NpyBitsReader, NpyCountsReader, NpyDenseReader, NpyHeader};
pub use npz::{read_npz_provenance, NpzCountsReader};
pub use objectives::{
    read_label_columns, read_objective_labels, MultiLabels, ObjectiveSpec, Objectives,
    MAX_LABEL_COLUMNS, MAX_OBJECTIVES,
};

use crate::error::{Error, InputFault, Result};

/// What kind of features a pool holds, and their width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FeatureKind {
    /// Binary fingerprints of `nbits` bits.
    Bits {
        /// Number of bits per fingerprint.
        nbits: usize,
    },
    /// Count fingerprints (non-negative integers) of `ndim` features.
    Counts {
        /// Number of features.
        ndim: usize,
    },
    /// Dense real-valued features.
    Dense {
        /// Number of features.
        dim: usize,
    },
}

impl std::fmt::Display for FeatureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeatureKind::Bits { nbits } => write!(f, "{nbits}-bit fingerprints"),
            FeatureKind::Counts { ndim } => write!(f, "count fingerprints of {ndim} features"),
            FeatureKind::Dense { dim } => write!(f, "dense features of dimension {dim}"),
        }
    }
}

/// A block of feature rows, all of one kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Features {
    /// Packed bits: `words` u64 words per row, LSB-first, row-major.
    Bits {
        /// Number of bits per row (the tail of the last word is zero).
        nbits: usize,
        /// `len * words_for(nbits)` words.
        data: Vec<u64>,
    },
    /// Sparse counts in CSR form; `indices` are sorted and unique within a row, `values` > 0.
    Counts {
        /// Number of features.
        ndim: usize,
        /// Row starts into `indices`/`values`, `len + 1` entries starting at 0.
        indptr: Vec<usize>,
        /// Feature indices.
        indices: Vec<u32>,
        /// Counts, each at least 1.
        values: Vec<u32>,
    },
    /// Dense row-major `f32`.
    Dense {
        /// Number of features per row.
        dim: usize,
        /// `len * dim` values.
        data: Vec<f32>,
    },
}

/// Number of `u64` words holding `nbits` bits.
pub fn words_for(nbits: usize) -> usize {
    nbits.div_ceil(64)
}

impl Features {
    /// An empty block of the given kind.
    pub fn empty(kind: FeatureKind) -> Self {
        match kind {
            FeatureKind::Bits { nbits } => Features::Bits {
                nbits,
                data: Vec::new(),
            },
            FeatureKind::Counts { ndim } => Features::Counts {
                ndim,
                indptr: vec![0],
                indices: Vec::new(),
                values: Vec::new(),
            },
            FeatureKind::Dense { dim } => Features::Dense {
                dim,
                data: Vec::new(),
            },
        }
    }

    /// The kind of these features.
    pub fn kind(&self) -> FeatureKind {
        match self {
            Features::Bits { nbits, .. } => FeatureKind::Bits { nbits: *nbits },
            Features::Counts { ndim, .. } => FeatureKind::Counts { ndim: *ndim },
            Features::Dense { dim, .. } => FeatureKind::Dense { dim: *dim },
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Features::Bits { nbits, data } => {
                data.len().checked_div(words_for(*nbits)).unwrap_or(0)
            }
            Features::Counts { indptr, .. } => indptr.len() - 1,
            Features::Dense { dim, data } => data.len().checked_div(*dim).unwrap_or(0),
        }
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every row, keeping the kind and the allocations.
    pub fn clear(&mut self) {
        match self {
            Features::Bits { data, .. } => data.clear(),
            Features::Dense { data, .. } => data.clear(),
            Features::Counts {
                indptr,
                indices,
                values,
                ..
            } => {
                indptr.clear();
                indptr.push(0);
                indices.clear();
                values.clear();
            }
        }
    }

    /// Appends row `i` of `other` (which must be of the same kind).
    ///
    /// # Panics
    /// When the kinds differ; callers hold features of one pool.
    pub fn push_row_from(&mut self, other: &Features, i: usize) {
        match (self, other) {
            (Features::Bits { nbits, data }, Features::Bits { data: src, .. }) => {
                let w = words_for(*nbits);
                data.extend_from_slice(&src[i * w..(i + 1) * w]);
            }
            (
                Features::Counts {
                    indptr,
                    indices,
                    values,
                    ..
                },
                Features::Counts {
                    indptr: sp,
                    indices: si,
                    values: sv,
                    ..
                },
            ) => {
                let (a, b) = (sp[i], sp[i + 1]);
                indices.extend_from_slice(&si[a..b]);
                values.extend_from_slice(&sv[a..b]);
                indptr.push(indices.len());
            }
            (Features::Dense { dim, data }, Features::Dense { data: src, .. }) => {
                data.extend_from_slice(&src[i * *dim..(i + 1) * *dim]);
            }
            _ => panic!("push_row_from: feature kinds differ"),
        }
    }

    /// A new block holding the given rows of `self`, in that order.
    pub fn select_rows(&self, rows: &[usize]) -> Features {
        let mut out = Features::empty(self.kind());
        for &i in rows {
            out.push_row_from(self, i);
        }
        out
    }

    /// Count fingerprints as bit fingerprints (a bit is set where the count is non-zero, as
    /// RDKit's bit and count Morgan fingerprints relate); bits are returned as they are. `None`
    /// for dense features.
    pub fn presence_bits(&self) -> Option<Features> {
        match self {
            Features::Bits { .. } => Some(self.clone()),
            Features::Counts { ndim, .. } => {
                let words = words_for(*ndim);
                let mut data = vec![0u64; self.len() * words];
                for r in 0..self.len() {
                    let (idx, vals) = self.counts_row(r)?;
                    for (&f, &v) in idx.iter().zip(vals) {
                        if v > 0 {
                            data[r * words + f as usize / 64] |= 1 << (f % 64);
                        }
                    }
                }
                Some(Features::Bits { nbits: *ndim, data })
            }
            Features::Dense { .. } => None,
        }
    }

    /// Row `i` as packed words, for bit fingerprints.
    pub fn bits_row(&self, i: usize) -> Option<&[u64]> {
        match self {
            Features::Bits { nbits, data } => {
                let w = words_for(*nbits);
                Some(&data[i * w..(i + 1) * w])
            }
            _ => None,
        }
    }

    /// Row `i` as `(indices, values)`, for count fingerprints.
    pub fn counts_row(&self, i: usize) -> Option<(&[u32], &[u32])> {
        match self {
            Features::Counts {
                indptr,
                indices,
                values,
                ..
            } => {
                let (a, b) = (indptr[i], indptr[i + 1]);
                Some((&indices[a..b], &values[a..b]))
            }
            _ => None,
        }
    }

    /// Row `i` as a slice, for dense features.
    pub fn dense_row(&self, i: usize) -> Option<&[f32]> {
        match self {
            Features::Dense { dim, data } => Some(&data[i * dim..(i + 1) * dim]),
            _ => None,
        }
    }
}

/// A block of consecutive pool rows with their ids.
#[derive(Clone, Debug)]
pub struct Tile {
    /// Global index (0-based row number in the pool) of the first row.
    pub start: usize,
    /// One id per row.
    pub ids: Vec<String>,
    /// The rows' features.
    pub features: Features,
}

impl Tile {
    /// An empty tile for features of `kind`.
    pub fn new(kind: FeatureKind) -> Self {
        Tile {
            start: 0,
            ids: Vec::new(),
            features: Features::empty(kind),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the tile holds no rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// A pass over a pool, tile by tile.
pub trait PoolReader: Send {
    /// The kind of features every tile holds.
    fn kind(&self) -> FeatureKind;

    /// Number of rows, when the format tells it up front (`.npy`, `.npz`).
    fn len_hint(&self) -> Option<usize>;

    /// Clears `tile` and fills it with up to `max_rows` next rows; returns `false` (and an empty
    /// tile) at the end of the pool.
    fn read_tile(&mut self, max_rows: usize, tile: &mut Tile) -> Result<bool>;
}

/// How a pool file is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoolFormat {
    /// chemfp FPS text, plain or gzip.
    Fps,
    /// `.npy` uint8 rows of `numpy.packbits` bits (MSB-first).
    BitsNpy,
    /// `.npy` unsigned integer rows of counts (dense).
    CountsNpy,
    /// `.npz` scipy.sparse CSR matrix of counts.
    CountsNpz,
    /// `.npy` f32/f64 dense features.
    DenseNpy,
    /// CSV with a header: an id column, the rest numeric features.
    DenseCsv,
    /// SMILES text (`.smi`: SMILES, whitespace, id), featurized on the fly with the default
    /// Morgan settings.
    Smiles,
    /// CSV/TSV with a SMILES column and an id column, featurized on the fly.
    SmilesCsv,
}

impl crate::names::Named for PoolFormat {
    const WHAT: &'static str = "pool format";
    const TABLE: &'static [(Self, &'static str, &'static str)] = &[
        (PoolFormat::Fps, "fps", "chemfp FPS text, plain or gzip"),
        (
            PoolFormat::BitsNpy,
            "bits-npy",
            ".npy uint8 rows of numpy.packbits bits",
        ),
        (
            PoolFormat::CountsNpy,
            "counts-npy",
            ".npy unsigned integer rows of counts",
        ),
        (
            PoolFormat::CountsNpz,
            "counts-npz",
            ".npz scipy.sparse CSR matrix of counts",
        ),
        (
            PoolFormat::DenseNpy,
            "dense-npy",
            ".npy f32/f64 dense features",
        ),
        (
            PoolFormat::DenseCsv,
            "dense-csv",
            "CSV: an id column, the rest numeric features",
        ),
        (
            PoolFormat::Smiles,
            "smi",
            "SMILES text (SMILES, whitespace, id), featurized on the fly",
        ),
        (
            PoolFormat::SmilesCsv,
            "smiles-csv",
            "CSV/TSV with a SMILES and an id column, featurized on the fly",
        ),
    ];
}
crate::names::named!(PoolFormat);

/// A pool: rows of features with ids, which a run reads in one or more passes, each through a
/// fresh [`PoolReader`]. File pools are [`crate::pool::FilePool`]; [`MemoryPool`] borrows
/// features the caller holds; the Python binding's arrays are pools too.
pub trait Pool: Sync {
    /// Names the pool in messages and summaries (the file, or what stands for it).
    fn name(&self) -> &Path;

    /// Starts a pass over the pool.
    fn open(&self) -> Result<Box<dyn PoolReader + '_>>;

    /// True when the ids are the row indices (`"0"`, `"1"`, …), hence unique.
    fn ids_are_row_indices(&self) -> Result<bool>;

    /// What made the pool's features, when the pool says.
    fn provenance(&self) -> Result<Option<String>> {
        Ok(None)
    }
}

/// Features the caller holds, as a pool: row `i` has the id `i`. Borrowed, never copied as a
/// whole.
#[derive(Clone, Copy, Debug)]
pub struct MemoryPool<'a> {
    name: &'a Path,
    features: &'a Features,
}

impl<'a> MemoryPool<'a> {
    /// `features` as a pool that `name` stands for in messages.
    pub fn new(name: &'a Path, features: &'a Features) -> Self {
        MemoryPool { name, features }
    }
}

impl Pool for MemoryPool<'_> {
    fn name(&self) -> &Path {
        self.name
    }

    fn open(&self) -> Result<Box<dyn PoolReader + '_>> {
        Ok(Box::new(MemoryPass {
            features: self.features,
            next: 0,
        }))
    }

    fn ids_are_row_indices(&self) -> Result<bool> {
        Ok(true)
    }
}

/// One pass over a [`MemoryPool`].
struct MemoryPass<'a> {
    features: &'a Features,
    next: usize,
}

impl PoolReader for MemoryPass<'_> {
    fn kind(&self) -> FeatureKind {
        self.features.kind()
    }

    fn len_hint(&self) -> Option<usize> {
        Some(self.features.len())
    }

    fn read_tile(&mut self, max_rows: usize, tile: &mut Tile) -> Result<bool> {
        let start = self.next;
        let end = (start + max_rows.max(1)).min(self.features.len());
        tile.start = start;
        tile.ids.clear();
        tile.features = Features::empty(self.features.kind());
        for i in start..end {
            tile.features.push_row_from(self.features, i);
        }
        tile.ids.extend((start..end).map(|i| i.to_string()));
        self.next = end;
        Ok(end > start)
    }
}

/// The pool format of a `.npy` file, from its dtype: packed bits for `uint8`, counts for other
/// integers, dense for floats.
pub(crate) fn npy_pool_format(path: &Path) -> Result<PoolFormat> {
    let header = NpyHeader::read(path)?;
    let elem = npy::Elem::from_dtype(&header.dtype);
    Ok(match (header.dtype.kind, elem) {
        ('u', Some(_)) if header.dtype.size == 1 => PoolFormat::BitsNpy,
        ('u' | 'i', Some(_)) => PoolFormat::CountsNpy,
        ('f', Some(_)) => PoolFormat::DenseNpy,
        _ => {
            return Err(Error::format(
                path,
                format!(
                    "dtype '{}' is not a pool's; {}",
                    header.dtype,
                    npy::ACCEPTED_DTYPES
                ),
            ))
        }
    })
}

/// Opens `path` for reading, transparently decompressing gzip, bzip2 and zstd (each detected
/// by its magic bytes, whatever the file's name; concatenated members, streams and frames are
/// read through) and skipping a UTF-8 byte-order mark, so that every text input accepts them.
///
/// Corrupt or truncated compressed data comes out of the reader as an [`Error::Compression`]
/// (through [`Error::io`]), never as a parse error on whatever text was decoded before it.
pub fn open_text(path: &Path) -> Result<Box<dyn std::io::BufRead + Send>> {
    Ok(open_text_compressed(path)?.0)
}

/// `name` without a trailing `.gz`, `.bz2`, `.zst` or `.zstd` (the compressions
/// [`open_text`] reads), so that the name before it tells the format.
pub fn strip_compression_suffix(name: &str) -> &str {
    [".gz", ".bz2", ".zst", ".zstd"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// The compressions [`open_text`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Codec {
    Gzip,
    Bzip2,
    Zstd,
}

impl Codec {
    /// The codec whose magic bytes start `head`, if any.
    fn sniff(head: &[u8]) -> Option<Codec> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Codec::Gzip)
        } else if head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
            Some(Codec::Bzip2)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Codec::Zstd)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Bzip2 => "bzip2",
            Codec::Zstd => "zstd",
        }
    }
}

/// [`open_text`], and whether the file is compressed.
pub(crate) fn open_text_compressed(
    path: &Path,
) -> Result<(Box<dyn std::io::BufRead + Send>, bool)> {
    use std::io::{BufRead, BufReader};
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = BufReader::with_capacity(1 << 16, file);
    let head = buf.fill_buf().map_err(|e| Error::io(path, e))?;
    let codec = Codec::sniff(head);
    let decoded = |r: Box<dyn std::io::Read + Send>, codec: Codec| -> Box<dyn BufRead + Send> {
        Box::new(BufReader::with_capacity(1 << 16, Faults(r, codec)))
    };
    let mut input: Box<dyn BufRead + Send> = match codec {
        None => Box::new(buf),
        Some(c @ Codec::Gzip) => decoded(Box::new(flate2::bufread::MultiGzDecoder::new(buf)), c),
        Some(c @ Codec::Bzip2) => decoded(Box::new(bzip2::bufread::MultiBzDecoder::new(buf)), c),
        Some(c @ Codec::Zstd) => {
            let z =
                zstd::stream::read::Decoder::with_buffer(buf).map_err(|e| Error::Compression {
                    path: path.to_path_buf(),
                    msg: format!("cannot start the zstd decoder ({e})"),
                })?;
            decoded(Box::new(z), c)
        }
    };
    skip_bom(&mut *input).map_err(|e| Error::io(path, e))?;
    Ok((input, codec.is_some()))
}

/// The error to report for `e`, met while parsing gzip text from `input`: corrupt deflate data
/// can decode to garbage lines before the decoder notices (at worst at the member's CRC), so
/// a parse error in gzip text is checked against the rest of the stream, and a compression
/// fault found there is reported instead. The rest is read only on this error path.
pub(crate) fn prefer_compression_fault(
    input: &mut dyn std::io::BufRead,
    path: &Path,
    e: Error,
) -> Error {
    if !matches!(e, Error::Parse { .. }) {
        return e;
    }
    match std::io::copy(input, &mut std::io::sink()) {
        Err(io) => match Error::io(path, io) {
            c @ Error::Compression { .. } => c,
            _ => e,
        },
        Ok(_) => e,
    }
}

/// Consumes a UTF-8 byte-order mark at the start of `input`, if there is one.
fn skip_bom(input: &mut dyn std::io::BufRead) -> std::io::Result<()> {
    // The 64 KiB buffers above hold the whole mark after one fill unless the input is shorter.
    if input.fill_buf()?.starts_with(b"\xef\xbb\xbf") {
        input.consume(3);
    }
    Ok(())
}

/// A decoder whose decoding failures (a truncated stream, a bad checksum, corrupt data) are
/// [`InputFault::Compression`] naming the codec; failures of the file itself pass through
/// unchanged.
struct Faults<R>(R, Codec);

impl<R: std::io::Read> std::io::Read for Faults<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::ErrorKind;
        let name = self.1.name();
        self.0.read(buf).map_err(|e| match e.kind() {
            ErrorKind::UnexpectedEof => InputFault::Compression(format!(
                "the {name} data is truncated (it ends mid-stream)"
            ))
            .into_io(),
            ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::Other => {
                InputFault::Compression(format!("corrupt {name} data ({e})")).into_io()
            }
            _ => e,
        })
    }
}

/// Refuses a pool that is not a regular file (a FIFO, a `<(...)` substitution, a device): a
/// pool is read more than once (found, then scored), and a pipe can only be read once.
pub(crate) fn check_regular(path: &Path, what: &str) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_file() {
        return Ok(());
    }
    let kind = if meta.is_dir() {
        "a directory"
    } else {
        "a pipe, socket or device, not a regular file"
    };
    Err(Error::format(
        path,
        format!(
            "{what} is {kind}; a pool and its ids file are read more than once (the labeled rows \
             are found first, then every row is scored), so save it to a file first"
        ),
    ))
}
