//! NumPy `.npy` arrays: the header parser and the memory-mapped pool readers for packed bits,
//! dense counts and dense real features.
//!
//! The readers map the file and copy only the rows of the tile being read, then tell the kernel
//! that the pages behind them are no longer needed, so memory is bounded by the tile. An ids
//! file is read line by line alongside the rows. Every size in a header is checked against the
//! file's length before it is used.

use std::fs::File;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
#[cfg(unix)]
use memmap2::{Advice, UncheckedAdvice};

use super::{open_text, words_for, FeatureKind, Features, PoolReader, Tile};
use crate::error::{Error, Result};

/// The magic string every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The largest header we accept. numpy itself refuses headers over 10,000 bytes by default; a
/// larger value is a corrupted length field, and reading it would allocate blindly.
const MAX_HEADER_LEN: usize = 1 << 20;

/// Every dtype a `.npy` pool may hold, for messages about one it may not.
pub(crate) const ACCEPTED_DTYPES: &str = "a .npy pool holds uint8 ('|u1': numpy.packbits bits, \
     or counts with --pool-format counts-npy), other integers ('<u2', '<u4', '<u8', '|i1', \
     '<i2', '<i4', '<i8': counts) or floats ('<f4', '<f8': dense features), in either byte order";

/// A NumPy element type as written in a header's `descr` (`'<f8'`, `'|u1'`, `'<U3'`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dtype {
    /// numpy's kind letter: `'u'` unsigned, `'i'` signed, `'f'` float, `'b'` bool, and for
    /// scalars in `.npz` members `'U'` (UTF-32 text) or `'S'` (bytes).
    pub kind: char,
    /// Bytes per element (for `'U'`, four per character).
    pub size: usize,
    /// Byte order; true for `'<'`, `'|'` (not applicable) and `'='` on little-endian machines.
    pub little_endian: bool,
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let order = if self.size == 1 {
            '|'
        } else if self.little_endian {
            '<'
        } else {
            '>'
        };
        let n = if self.kind == 'U' {
            self.size / 4
        } else {
            self.size
        };
        write!(f, "{order}{}{n}", self.kind)
    }
}

/// The header of a `.npy` array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: Dtype,
    /// Dimensions (empty for a scalar).
    pub shape: Vec<usize>,
    /// True when the data is column-major.
    pub fortran_order: bool,
    /// Byte offset of the data from the start of the file.
    pub data_offset: usize,
}

impl NpyHeader {
    /// Reads the header of the `.npy` file at `path` (versions 1, 2 and 3), and checks that the
    /// file is long enough to hold the data the header announces.
    pub fn read(path: &Path) -> Result<NpyHeader> {
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let header = NpyHeader::from_reader(&mut file, path)?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let need = header
            .data_len()
            .and_then(|n| n.checked_add(header.data_offset));
        match need {
            Some(need) if need as u64 <= len => Ok(header),
            _ => Err(Error::format(
                path,
                format!(
                    "truncated: the header announces {} data of shape {} ({} bytes after a \
                     {}-byte header) but the file has {len} bytes",
                    header.dtype,
                    shape_str(&header.shape),
                    header
                        .data_len()
                        .map_or_else(|| "too many".to_string(), |n| n.to_string()),
                    header.data_offset
                ),
            )),
        }
    }

    /// Parses a header from the start of `bytes`, which must hold at least the whole header
    /// (it may hold the data too). `path` names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<NpyHeader> {
        let mut r = bytes;
        NpyHeader::from_reader(&mut r, path)
    }

    /// Reads a header from `r`, consuming exactly the header's bytes so that the data follows.
    /// `path` names the source in errors.
    pub fn from_reader<R: Read + ?Sized>(r: &mut R, path: &Path) -> Result<NpyHeader> {
        read_header(r).map_err(|e| match e {
            HeaderError::Io(e) => Error::io(path, e),
            HeaderError::Bad(msg) => Error::format(path, msg),
        })
    }

    /// Number of elements, or `None` when the product overflows.
    pub fn num_elements(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
    }

    /// Number of data bytes, or `None` when the product overflows.
    pub fn data_len(&self) -> Option<usize> {
        self.num_elements()?.checked_mul(self.dtype.size)
    }
}

/// A header failure: I/O (including a short read) or a malformed header.
pub(crate) enum HeaderError {
    Io(std::io::Error),
    Bad(String),
}

/// Reads and parses a header; an end of input inside the header is `Bad` (truncated).
pub(crate) fn read_header<R: Read + ?Sized>(
    r: &mut R,
) -> std::result::Result<NpyHeader, HeaderError> {
    let eof = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            HeaderError::Bad("not a .npy file: truncated before the end of the header".into())
        } else {
            HeaderError::Io(e)
        }
    };
    let mut prefix = [0u8; 8];
    r.read_exact(&mut prefix).map_err(eof)?;
    if &prefix[..6] != MAGIC {
        return Err(HeaderError::Bad(
            "not a .npy file: it does not start with the \\x93NUMPY magic".into(),
        ));
    }
    let (major, minor) = (prefix[6], prefix[7]);
    let (header_len, prefix_len) = match major {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(eof)?;
            (u16::from_le_bytes(b) as usize, 10)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(eof)?;
            (u32::from_le_bytes(b) as usize, 12)
        }
        _ => {
            return Err(HeaderError::Bad(format!(
                "unsupported .npy format version {major}.{minor}; expected 1.0, 2.0 or 3.0"
            )))
        }
    };
    if header_len > MAX_HEADER_LEN {
        return Err(HeaderError::Bad(format!(
            "the .npy header claims {header_len} bytes, more than the {MAX_HEADER_LEN} allowed; \
             the file is corrupted"
        )));
    }
    let mut text = vec![0u8; header_len];
    r.read_exact(&mut text).map_err(eof)?;
    let text = String::from_utf8_lossy(&text);
    parse_dict(&text, prefix_len + header_len).map_err(HeaderError::Bad)
}

/// Parses the header's Python dict literal.
fn parse_dict(text: &str, data_offset: usize) -> std::result::Result<NpyHeader, String> {
    let mut p = PyParser {
        s: text.as_bytes(),
        i: 0,
    };
    let bad = |m: String| format!("malformed .npy header {:?}: {m}", text.trim_end());
    let value = p.value().map_err(bad)?;
    p.skip_ws();
    if p.i < p.s.len() {
        return Err(bad("unexpected text after the dict".into()));
    }
    let PyVal::Dict(entries) = value else {
        return Err(bad("expected a dict".into()));
    };
    let get = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or_else(|| bad(format!("missing key '{key}'")))
    };
    let dtype = match get("descr")? {
        PyVal::Str(s) => parse_descr(s)?,
        _ => {
            return Err(
                "structured (record) dtypes are not supported; expected a plain numeric array"
                    .into(),
            )
        }
    };
    let fortran_order = match get("fortran_order")? {
        PyVal::Bool(b) => *b,
        _ => return Err(bad("'fortran_order' must be True or False".into())),
    };
    let shape = match get("shape")? {
        PyVal::Tuple(items) => items
            .iter()
            .map(|v| match v {
                PyVal::Int(n) => {
                    usize::try_from(*n).map_err(|_| bad(format!("dimension {n} is too large")))
                }
                _ => Err(bad("'shape' must be a tuple of integers".into())),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?,
        _ => return Err(bad("'shape' must be a tuple".into())),
    };
    Ok(NpyHeader {
        dtype,
        shape,
        fortran_order,
        data_offset,
    })
}

/// Parses a simple `descr` such as `'<f8'`, `'|u1'`, `'<U3'`.
fn parse_descr(s: &str) -> std::result::Result<Dtype, String> {
    let unsupported = || {
        format!("unsupported dtype '{s}'; expected an integer or float type such as '<f4', '|u1', '<i8'")
    };
    let mut chars = s.chars().peekable();
    let little_endian = match chars.peek() {
        Some('<') | Some('|') => {
            chars.next();
            true
        }
        Some('>') => {
            chars.next();
            false
        }
        Some('=') => {
            chars.next();
            cfg!(target_endian = "little")
        }
        _ => cfg!(target_endian = "little"),
    };
    let kind = chars.next().ok_or_else(unsupported)?;
    let digits: String = chars.collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unsupported());
    }
    let n: usize = digits.parse().map_err(|_| unsupported())?;
    let size = match kind {
        'u' | 'i' | 'f' | 'b' | 'c' | 'S' | 'V' => n,
        'U' => n.checked_mul(4).ok_or_else(unsupported)?,
        _ => return Err(unsupported()),
    };
    Ok(Dtype {
        kind,
        size,
        little_endian,
    })
}

/// The Python literals a `.npy` header uses.
enum PyVal {
    Str(String),
    Int(u64),
    Bool(bool),
    None,
    Tuple(Vec<PyVal>),
    /// A list (structured dtypes' `descr`); its items are not needed.
    List,
    Dict(Vec<(String, PyVal)>),
}

/// A recursive-descent parser for the header's literal; nesting is bounded to keep malicious
/// headers from exhausting the stack.
struct PyParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl PyParser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at offset {}", c as char, self.i))
        }
    }

    fn value(&mut self) -> std::result::Result<PyVal, String> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> std::result::Result<PyVal, String> {
        if depth > 16 {
            return Err("nested too deeply".into());
        }
        match self.peek() {
            Some(b'{') => {
                self.i += 1;
                let mut entries = Vec::new();
                loop {
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        break;
                    }
                    let PyVal::Str(key) = self.value_at(depth + 1)? else {
                        return Err("dict keys must be strings".into());
                    };
                    self.expect(b':')?;
                    let v = self.value_at(depth + 1)?;
                    entries.push((key, v));
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        _ => return Err(format!("expected ',' or '}}' at offset {}", self.i)),
                    }
                }
                Ok(PyVal::Dict(entries))
            }
            Some(open @ (b'(' | b'[')) => {
                self.i += 1;
                let close = if open == b'(' { b')' } else { b']' };
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(close) {
                        self.i += 1;
                        break;
                    }
                    items.push(self.value_at(depth + 1)?);
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(c) if c == close => {}
                        _ => {
                            return Err(format!(
                                "expected ',' or '{}' at offset {}",
                                close as char, self.i
                            ))
                        }
                    }
                }
                Ok(if open == b'(' {
                    PyVal::Tuple(items)
                } else {
                    PyVal::List
                })
            }
            Some(q @ (b'\'' | b'"')) => {
                self.i += 1;
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i] != q {
                    // A backslash escape never occurs in numpy's headers; reject it rather than
                    // mis-parse.
                    if self.s[self.i] == b'\\' {
                        return Err("escapes in strings are not supported".into());
                    }
                    self.i += 1;
                }
                if self.i >= self.s.len() {
                    return Err("unterminated string".into());
                }
                let s = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.i += 1;
                Ok(PyVal::Str(s))
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                let n = digits
                    .parse::<u64>()
                    .map_err(|_| format!("integer {digits} is too large"))?;
                // Python 2 era files write long integers as `3L`.
                if self.s.get(self.i) == Some(&b'L') {
                    self.i += 1;
                }
                Ok(PyVal::Int(n))
            }
            Some(_) => {
                for (word, v) in [("True", 1), ("False", 0), ("None", 2)] {
                    if self.s[self.i..].starts_with(word.as_bytes()) {
                        self.i += word.len();
                        return Ok(match v {
                            1 => PyVal::Bool(true),
                            0 => PyVal::Bool(false),
                            _ => PyVal::None,
                        });
                    }
                }
                Err(format!("unexpected character at offset {}", self.i))
            }
            None => Err("unexpected end".into()),
        }
    }
}

/// `(3, 4)` as Python writes it.
pub(crate) fn shape_str(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A numeric element type the readers decode, with its byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Elem {
    U8,
    U16(bool),
    U32(bool),
    U64(bool),
    I8,
    I16(bool),
    I32(bool),
    I64(bool),
    F32(bool),
    F64(bool),
}

/// The first `N` bytes of `b` in little-endian order; `b` shorter than `N` is zero-filled
/// (callers pass exact chunks, this only keeps a slip from panicking).
#[inline]
fn le_bytes<const N: usize>(b: &[u8], little: bool) -> [u8; N] {
    let mut a = [0u8; N];
    let n = b.len().min(N);
    a[..n].copy_from_slice(&b[..n]);
    if !little {
        a.reverse();
    }
    a
}

impl Elem {
    /// The element type of a numeric `dtype`, if it is one.
    pub(crate) fn from_dtype(d: &Dtype) -> Option<Elem> {
        let le = d.little_endian;
        Some(match (d.kind, d.size) {
            ('u', 1) => Elem::U8,
            ('u', 2) => Elem::U16(le),
            ('u', 4) => Elem::U32(le),
            ('u', 8) => Elem::U64(le),
            ('i', 1) => Elem::I8,
            ('i', 2) => Elem::I16(le),
            ('i', 4) => Elem::I32(le),
            ('i', 8) => Elem::I64(le),
            ('f', 4) => Elem::F32(le),
            ('f', 8) => Elem::F64(le),
            _ => return None,
        })
    }

    /// Bytes per element.
    pub(crate) fn size(self) -> usize {
        match self {
            Elem::U8 | Elem::I8 => 1,
            Elem::U16(_) | Elem::I16(_) => 2,
            Elem::U32(_) | Elem::I32(_) | Elem::F32(_) => 4,
            Elem::U64(_) | Elem::I64(_) | Elem::F64(_) => 8,
        }
    }

    /// True for integer types.
    pub(crate) fn is_int(self) -> bool {
        !matches!(self, Elem::F32(_) | Elem::F64(_))
    }

    /// The value of an integer element (a float is truncated; callers check `is_int`).
    #[inline]
    pub(crate) fn int(self, b: &[u8]) -> i128 {
        match self {
            Elem::U8 => i128::from(b.first().copied().unwrap_or(0)),
            Elem::U16(le) => i128::from(u16::from_le_bytes(le_bytes(b, le))),
            Elem::U32(le) => i128::from(u32::from_le_bytes(le_bytes(b, le))),
            Elem::U64(le) => i128::from(u64::from_le_bytes(le_bytes(b, le))),
            Elem::I8 => i128::from(b.first().copied().unwrap_or(0) as i8),
            Elem::I16(le) => i128::from(i16::from_le_bytes(le_bytes(b, le))),
            Elem::I32(le) => i128::from(i32::from_le_bytes(le_bytes(b, le))),
            Elem::I64(le) => i128::from(i64::from_le_bytes(le_bytes(b, le))),
            Elem::F32(_) | Elem::F64(_) => self.float(b) as i128,
        }
    }

    /// The value of an element as `f64`.
    #[inline]
    pub(crate) fn float(self, b: &[u8]) -> f64 {
        match self {
            Elem::F32(le) => f64::from(f32::from_le_bytes(le_bytes(b, le))),
            Elem::F64(le) => f64::from_le_bytes(le_bytes(b, le)),
            _ => self.int(b) as f64,
        }
    }
}

/// The ids of a pool's rows: given by a file, or the 0-based row index.
pub(crate) enum RowIds {
    Index,
    File(IdsFile),
}

/// An ids file read line by line as the pool's tiles are read, so memory is bounded by the tile
/// and never by the pool. The lines follow [`read_id_list`](super::read_id_list)'s rules (trimmed,
/// blank lines skipped), but duplicates are not looked for here: that would need a set of every
/// id, and the engine checks the pool's ids for uniqueness itself.
pub(crate) struct IdsFile {
    path: PathBuf,
    pool: PathBuf,
    rows: usize,
    input: Box<dyn BufRead + Send>,
    /// Lines read so far, for errors.
    line: usize,
    /// Ids (non-blank lines) read so far.
    count: usize,
    buf: Vec<u8>,
}

impl IdsFile {
    /// The next id, or `None` at the end of the file.
    fn next_id(&mut self) -> Result<Option<&str>> {
        let (a, b) = loop {
            let read = super::limits::read_line(&mut *self.input, &mut self.buf)
                .map_err(|e| Error::io(&self.path, e))?;
            if read == super::limits::Line::End {
                return Ok(None);
            }
            self.line += 1;
            if read == super::limits::Line::TooLong {
                return Err(Error::parse(
                    &self.path,
                    self.line,
                    super::limits::line_too_long(),
                ));
            }
            let text = std::str::from_utf8(&self.buf)
                .map_err(|_| Error::parse(&self.path, self.line, "the id is not valid UTF-8"))?;
            let id = text.trim_ascii();
            if !id.is_empty() {
                let a = text.len() - text.trim_ascii_start().len();
                break (a, a + id.len());
            }
        };
        self.count += 1;
        // The bounds come from `trim` on the checked text, so they lie on char boundaries.
        Ok(Some(
            std::str::from_utf8(&self.buf[a..b]).unwrap_or_default(),
        ))
    }

    /// The count mismatch error, once `count` is the number of ids in the whole file.
    fn mismatch(&self) -> Error {
        Error::format(
            &self.path,
            format!(
                "has {} ids but the pool {} has {} rows; expected one id per row",
                self.count,
                self.pool.display(),
                self.rows
            ),
        )
    }

    /// Appends the next `n` ids to `out`; after the pool's last row, checks the file holds no
    /// more ids.
    fn extend(&mut self, n: usize, out: &mut Vec<String>) -> Result<()> {
        for _ in 0..n {
            match self.next_id()? {
                Some(id) => out.push(id.to_string()),
                None => return Err(self.mismatch()),
            }
        }
        if self.count == self.rows {
            // Count the rest (without keeping it) so that the error gives the file's total.
            let before = self.count;
            while self.next_id()?.is_some() {}
            if self.count != before {
                return Err(self.mismatch());
            }
        }
        Ok(())
    }
}

impl RowIds {
    /// Opens the ids file, if any, to be read alongside the `rows` rows of `pool`. The count of
    /// ids is checked as the pass goes: too few when a tile needs more ids than the file has, too
    /// many when the pool's last row has been read.
    pub(crate) fn load(ids: Option<&Path>, pool: &Path, rows: usize) -> Result<RowIds> {
        let Some(ids_path) = ids else {
            return Ok(RowIds::Index);
        };
        Ok(RowIds::File(IdsFile {
            path: ids_path.to_path_buf(),
            pool: pool.to_path_buf(),
            rows,
            input: open_text(ids_path)?,
            line: 0,
            count: 0,
            buf: Vec::new(),
        }))
    }

    /// Appends the ids of rows `start..start + n` to `out`; rows must be asked for in order.
    pub(crate) fn extend(&mut self, start: usize, n: usize, out: &mut Vec<String>) -> Result<()> {
        match self {
            RowIds::Index => {
                out.extend((start..start + n).map(|i| i.to_string()));
                Ok(())
            }
            RowIds::File(f) => {
                debug_assert_eq!(f.count, start, "ids asked for out of order");
                f.extend(n, out)
            }
        }
    }
}

/// Empties `tile` for rows of `kind` starting at `start`, reusing its allocations.
pub(crate) fn begin_tile(tile: &mut Tile, kind: FeatureKind, start: usize) {
    tile.start = start;
    tile.ids.clear();
    if tile.features.kind() == kind {
        tile.features.clear();
    } else {
        tile.features = Features::empty(kind);
    }
}

/// Checks the rows asked of a tile of `kind` (see [`check_tile`](super::limits::check_tile)).
pub(crate) fn check_tile_rows(max_rows: usize, kind: FeatureKind) -> Result<()> {
    super::limits::check_tile(max_rows, kind)
}

/// The granularity at which consumed pages of a map are released. 4096 is the smallest page
/// size of the platforms we run on; on a system with larger pages memmap2 aligns the start down
/// and the kernel rounds the length up, which at worst also drops part of a page not yet read,
/// which is then read back from the file.
#[cfg(unix)]
const RELEASE_PAGE: usize = 4096;

/// A mapped 2-D C-order array and the position of the next row.
struct NpyMatrix {
    path: PathBuf,
    map: Mmap,
    data_offset: usize,
    rows: usize,
    cols: usize,
    elem: Elem,
    ids: RowIds,
    next: usize,
    /// Bytes at the start of the map already released to the kernel (a multiple of
    /// [`RELEASE_PAGE`]).
    #[cfg(unix)]
    released: usize,
}

impl NpyMatrix {
    /// Maps `path`, checking that it is a non-empty 2-D C-order array whose dtype `accept`
    /// takes; `expected` describes the accepted dtypes in errors.
    fn open(
        path: &Path,
        ids: Option<&Path>,
        expected: &str,
        accept: impl Fn(Elem) -> bool,
    ) -> Result<NpyMatrix> {
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let header = NpyHeader::from_reader(&mut file, path)?;
        let elem = Elem::from_dtype(&header.dtype)
            .filter(|&e| accept(e))
            .ok_or_else(|| {
                Error::format(
                    path,
                    format!(
                        "dtype '{}' is not supported here; expected {expected} ({ACCEPTED_DTYPES})",
                        header.dtype
                    ),
                )
            })?;
        let &[rows, cols] = header.shape.as_slice() else {
            return Err(Error::format(
                path,
                format!(
                    "expected a 2-D array (rows, columns), found shape {}",
                    shape_str(&header.shape)
                ),
            ));
        };
        if header.fortran_order {
            return Err(Error::format(
                path,
                "the array is in Fortran (column-major) order; expected C order: save \
                 numpy.ascontiguousarray(a) instead",
            ));
        }
        if rows == 0 {
            return Err(Error::EmptyPool {
                path: path.to_path_buf(),
            });
        }
        if cols == 0 {
            return Err(Error::format(
                path,
                format!("shape ({rows}, 0) has no features; expected at least one column"),
            ));
        }
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let need = header.data_len();
        let have = len.saturating_sub(header.data_offset as u64);
        if need.map(|n| n as u64) != Some(have) {
            return Err(Error::format(
                path,
                format!(
                    "{}: shape ({rows}, {cols}) of '{}' needs {} data bytes after the \
                     {}-byte header, the file holds {have}",
                    if need.is_some_and(|n| (n as u64) < have) {
                        "trailing bytes after the data"
                    } else {
                        "truncated"
                    },
                    header.dtype,
                    need.map_or_else(|| "too many".to_string(), |n| n.to_string()),
                    header.data_offset
                ),
            ));
        }
        // SAFETY: the map is only read. If another process truncates the file while we read it
        // the OS may signal a fault; that is the documented risk of mapping a file, accepted
        // here so that pools larger than memory can be streamed without copies.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        if map.len()
            < header
                .data_offset
                .saturating_add(need.unwrap_or(usize::MAX))
        {
            return Err(Error::format(
                path,
                "the file shrank while it was being opened",
            ));
        }
        // Only a hint (more read-ahead, earlier reclaim): a failure changes nothing we rely on.
        #[cfg(unix)]
        let _ = map.advise(Advice::Sequential);
        let ids = RowIds::load(ids, path, rows)?;
        Ok(NpyMatrix {
            path: path.to_path_buf(),
            map,
            data_offset: header.data_offset,
            rows,
            cols,
            elem,
            ids,
            next: 0,
            #[cfg(unix)]
            released: 0,
        })
    }

    /// Tells the kernel that the pages of the rows already copied out are no longer needed.
    ///
    /// Pages of a file map that have been read stay in the process's resident set until the
    /// kernel reclaims them, so without this a pass's peak RSS would grow with the pool rather
    /// than with the tile. Call it only once the tile's rows have been copied out.
    fn release_consumed(&mut self) {
        #[cfg(unix)]
        {
            let consumed = self.data_offset + self.next * self.row_bytes();
            let end = consumed / RELEASE_PAGE * RELEASE_PAGE;
            if end > self.released {
                // SAFETY: `&mut self` proves no slice of the map is borrowed (tiles own copies of
                // their rows), and the map is a read-only file mapping that is never written:
                // after MADV_DONTNEED a page touched again is read back from the file, with the
                // same bytes. The advice is only a hint, so its failure is ignored.
                let _ = unsafe {
                    self.map.unchecked_advise_range(
                        UncheckedAdvice::DontNeed,
                        self.released,
                        end - self.released,
                    )
                };
                self.released = end;
            }
        }
    }

    /// Bytes per row.
    fn row_bytes(&self) -> usize {
        self.cols * self.elem.size()
    }

    /// Starts a tile of up to `max_rows` rows: fills its ids and returns the first row index and
    /// the number of rows, or `None` at the end.
    fn next_rows(
        &mut self,
        max_rows: usize,
        kind: FeatureKind,
        tile: &mut Tile,
    ) -> Result<Option<(usize, usize)>> {
        check_tile_rows(max_rows, kind)?;
        begin_tile(tile, kind, self.next);
        let n = max_rows.min(self.rows - self.next);
        if n == 0 {
            return Ok(None);
        }
        let start = self.next;
        self.ids.extend(start, n, &mut tile.ids)?;
        self.next += n;
        Ok(Some((start, n)))
    }

    /// The bytes of rows `start..start + n` (checked against the map at open).
    fn row_slice(&self, start: usize, n: usize) -> Result<&[u8]> {
        let rb = self.row_bytes();
        let a = self.data_offset + start * rb;
        self.map.get(a..a + n * rb).ok_or_else(|| {
            Error::format(
                &self.path,
                format!("rows {start}..{} lie past the end of the file", start + n),
            )
        })
    }
}

/// Reads a `.npy` of `numpy.packbits` rows: uint8, shape (rows, nbits / 8), MSB-first.
pub struct NpyBitsReader {
    m: NpyMatrix,
    nbits: usize,
}

impl NpyBitsReader {
    /// Opens `path`; `ids` is an optional file with one id per row.
    pub fn open(path: &Path, ids: Option<&Path>) -> Result<Self> {
        let m = NpyMatrix::open(
            path,
            ids,
            "uint8 ('|u1') rows of numpy.packbits bits",
            |e| e == Elem::U8,
        )?;
        let nbits = m.cols.saturating_mul(8);
        super::limits::check_width(nbits, &format!("{} bytes of packed bits", m.cols))
            .map_err(|e| Error::format(path, e.to_string()))?;
        Ok(NpyBitsReader { m, nbits })
    }
}

/// Appends one packbits row (MSB-first bytes) as LSB-first words.
pub fn push_packbits(row: &[u8], out: &mut Vec<u64>) {
    // Byte k of eight, read little-endian, lands on bits 8k..8k + 8; reversing the word's
    // bits reverses each byte's bits and the byte order, and swapping the bytes back leaves
    // each byte's bits reversed in its place: eight bytes at a time.
    let flip = |w: u64| w.reverse_bits().swap_bytes();
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        out.push(flip(u64::from_le_bytes(c.try_into().expect("8 bytes"))));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        out.push(flip(u64::from_le_bytes(b)));
    }
}

impl PoolReader for NpyBitsReader {
    fn kind(&self) -> FeatureKind {
        FeatureKind::Bits { nbits: self.nbits }
    }

    fn len_hint(&self) -> Option<usize> {
        Some(self.m.rows)
    }

    fn read_tile(&mut self, max_rows: usize, tile: &mut Tile) -> Result<bool> {
        let kind = self.kind();
        let cols = self.m.cols;
        let Some((start, n)) = self.m.next_rows(max_rows, kind, tile)? else {
            return Ok(false);
        };
        let bytes = self.m.row_slice(start, n)?;
        if let Features::Bits { data, nbits } = &mut tile.features {
            data.reserve(bytes.len() / cols * words_for(*nbits));
            for row in bytes.chunks_exact(cols) {
                push_packbits(row, data);
            }
        }
        self.m.release_consumed();
        Ok(true)
    }
}

/// Reads a `.npy` of dense non-negative integer counts, shape (rows, features).
pub struct NpyCountsReader {
    m: NpyMatrix,
}

impl NpyCountsReader {
    /// Opens `path`; `ids` is an optional file with one id per row.
    pub fn open(path: &Path, ids: Option<&Path>) -> Result<Self> {
        let m = NpyMatrix::open(
            path,
            ids,
            "an integer type (uint8..uint64 or int8..int64 holding non-negative counts)",
            Elem::is_int,
        )?;
        super::limits::check_width(m.cols, "the array's columns")
            .map_err(|e| Error::format(path, e.to_string()))?;
        Ok(NpyCountsReader { m })
    }
}

impl PoolReader for NpyCountsReader {
    fn kind(&self) -> FeatureKind {
        FeatureKind::Counts { ndim: self.m.cols }
    }

    fn len_hint(&self) -> Option<usize> {
        Some(self.m.rows)
    }

    fn read_tile(&mut self, max_rows: usize, tile: &mut Tile) -> Result<bool> {
        let kind = self.kind();
        let (elem, cols) = (self.m.elem, self.m.cols);
        let Some((start, n)) = self.m.next_rows(max_rows, kind, tile)? else {
            return Ok(false);
        };
        let bytes = self.m.row_slice(start, n)?;
        let path = &self.m.path;
        let Features::Counts {
            indptr,
            indices,
            values,
            ..
        } = &mut tile.features
        else {
            return Ok(true);
        };
        let size = elem.size();
        // Count rows are mostly zeros: skip 8 zero bytes at a time (an element is zero exactly
        // when its bytes are, and element sizes divide 8).
        let per_word = 8 / size;
        for (r, row) in bytes.chunks_exact(cols * size).enumerate() {
            let mut c = 0;
            let mut words = row.chunks_exact(8);
            for word in &mut words {
                if word.iter().all(|&x| x == 0) {
                    c += per_word;
                    continue;
                }
                for b in word.chunks_exact(size) {
                    push_count(elem.int(b), start + r, c, indices, values, path)?;
                    c += 1;
                }
            }
            for b in words.remainder().chunks_exact(size) {
                push_count(elem.int(b), start + r, c, indices, values, path)?;
                c += 1;
            }
            indptr.push(indices.len());
        }
        self.m.release_consumed();
        Ok(true)
    }
}

/// Appends a non-zero count at `(row, col)`, rejecting negative and too large values.
#[inline]
fn push_count(
    v: i128,
    row: usize,
    col: usize,
    indices: &mut Vec<u32>,
    values: &mut Vec<u32>,
    path: &Path,
) -> Result<()> {
    if v == 0 {
        return Ok(());
    }
    if v < 0 || v > i128::from(u32::MAX) {
        return Err(Error::format(
            path,
            format!(
                "row {row}, column {col} (0-based): count {v} is {}; expected a count from 0 to \
                 {}",
                if v < 0 { "negative" } else { "too large" },
                u32::MAX
            ),
        ));
    }
    indices.push(col as u32);
    values.push(v as u32);
    Ok(())
}

/// Reads a `.npy` of dense real features: float32 or float64, shape (rows, dim).
pub struct NpyDenseReader {
    m: NpyMatrix,
}

impl NpyDenseReader {
    /// Opens `path`; `ids` is an optional file with one id per row.
    pub fn open(path: &Path, ids: Option<&Path>) -> Result<Self> {
        let m = NpyMatrix::open(path, ids, "float32 ('<f4') or float64 ('<f8')", |e| {
            !e.is_int()
        })?;
        super::limits::check_width(m.cols, "the array's columns")
            .map_err(|e| Error::format(path, e.to_string()))?;
        Ok(NpyDenseReader { m })
    }
}

impl PoolReader for NpyDenseReader {
    fn kind(&self) -> FeatureKind {
        FeatureKind::Dense { dim: self.m.cols }
    }

    fn len_hint(&self) -> Option<usize> {
        Some(self.m.rows)
    }

    fn read_tile(&mut self, max_rows: usize, tile: &mut Tile) -> Result<bool> {
        let kind = self.kind();
        let (elem, cols) = (self.m.elem, self.m.cols);
        let Some((start, n)) = self.m.next_rows(max_rows, kind, tile)? else {
            return Ok(false);
        };
        let bytes = self.m.row_slice(start, n)?;
        let path = &self.m.path;
        let Features::Dense { data, .. } = &mut tile.features else {
            return Ok(true);
        };
        let size = elem.size();
        data.reserve(bytes.len() / size);
        for (k, b) in bytes.chunks_exact(size).enumerate() {
            let v = elem.float(b) as f32;
            if !v.is_finite() {
                let orig = elem.float(b);
                return Err(Error::format(
                    path,
                    format!(
                        "row {}, column {} (0-based): value {orig} is {}; expected finite \
                         float32 values",
                        start + k / cols,
                        k % cols,
                        if orig.is_nan() {
                            "NaN"
                        } else if orig.is_infinite() {
                            "infinite"
                        } else {
                            "out of float32 range"
                        }
                    ),
                ));
            }
            data.push(v);
        }
        self.m.release_consumed();
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-1 `.npy` file's bytes.
    fn npy(descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
        let shape = shape_str(shape);
        let fo = if fortran { "True" } else { "False" };
        let mut dict = format!("{{'descr': '{descr}', 'fortran_order': {fo}, 'shape': {shape}, }}");
        while (10 + dict.len() + 1) % 64 != 0 {
            dict.push(' ');
        }
        dict.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        out.extend_from_slice(dict.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn parses_header_versions() {
        let b = npy("<f8", false, &[3, 4], &[0; 96]);
        let h = NpyHeader::from_bytes(&b, Path::new("x")).unwrap();
        assert_eq!(h.shape, vec![3, 4]);
        assert_eq!(h.data_offset % 64, 0);
        assert_eq!(h.data_offset, b.len() - 96);
        assert_eq!(
            h.dtype,
            Dtype {
                kind: 'f',
                size: 8,
                little_endian: true
            }
        );
        // Version 2: a 4-byte length.
        let dict = b"{'descr': '>i4', 'fortran_order': True, 'shape': (5L,), }\n";
        let mut v2 = MAGIC.to_vec();
        v2.extend_from_slice(&[2, 0]);
        v2.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        v2.extend_from_slice(dict);
        let h = NpyHeader::from_bytes(&v2, Path::new("x")).unwrap();
        assert_eq!(h.shape, vec![5]);
        assert!(h.fortran_order);
        assert!(!h.dtype.little_endian);
        assert_eq!(h.data_offset, 12 + dict.len());
        assert_eq!(h.dtype.to_string(), ">i4");
        // Scalars and text.
        let b = npy("<U3", false, &[], &[0; 12]);
        let h = NpyHeader::from_bytes(&b, Path::new("x")).unwrap();
        assert!(h.shape.is_empty());
        assert_eq!((h.dtype.kind, h.dtype.size), ('U', 12));
    }

    #[test]
    fn rejects_bad_headers() {
        let p = Path::new("bad.npy");
        for bytes in [
            b"\x93NUMPY".to_vec(),
            b"PK\x03\x04hello".to_vec(),
            {
                let mut v = MAGIC.to_vec();
                v.extend_from_slice(&[9, 0, 4, 0]);
                v
            },
            {
                let mut v = MAGIC.to_vec();
                v.extend_from_slice(&[2, 0, 255, 255, 255, 255]);
                v
            },
            npy("<f8", false, &[3], &[])[..20].to_vec(),
        ] {
            let e = NpyHeader::from_bytes(&bytes, p).unwrap_err();
            assert!(matches!(e, Error::Format { .. }), "{e}");
        }
        for dict in [
            "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (3,), }",
            "{'descr': '<f8', 'shape': (3,), }",
            "{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (3,), }",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (-3,), }",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,), }",
            "((((((((((((((((((((((((((((((((((((((((((((((((((",
            "{'descr': '<f8'",
        ] {
            let mut v = MAGIC.to_vec();
            v.extend_from_slice(&[1, 0]);
            v.extend_from_slice(&(dict.len() as u16).to_le_bytes());
            v.extend_from_slice(dict.as_bytes());
            let e = NpyHeader::from_bytes(&v, p).unwrap_err();
            assert!(matches!(e, Error::Format { .. }), "{dict}: {e}");
        }
    }

    #[test]
    fn read_checks_file_length() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "a.npy", &npy("<f4", false, &[2, 3], &[0; 20]));
        let e = NpyHeader::read(&p).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let p = write(&dir, "b.npy", &npy("<f4", false, &[2, 3], &[0; 24]));
        assert_eq!(NpyHeader::read(&p).unwrap().shape, vec![2, 3]);
    }

    #[test]
    fn packbits_is_msb_first() {
        let mut out = Vec::new();
        push_packbits(&[0x80, 0x01, 0, 0, 0, 0, 0, 0, 0x40], &mut out);
        assert_eq!(out, vec![1 | (1 << 15), 2]);
    }

    /// Eight bytes at a time gives what one byte at a time does, for every row length.
    #[test]
    fn packbits_words_match_byte_by_byte() {
        for len in 0..40usize {
            let row: Vec<u8> = (0..len)
                .map(|i| crate::rng::hash32((len * 64 + i) as u32) as u8)
                .collect();
            let mut want = Vec::new();
            for chunk in row.chunks(8) {
                let mut w = 0u64;
                for (k, &b) in chunk.iter().enumerate() {
                    w |= u64::from(b.reverse_bits()) << (8 * k);
                }
                want.push(w);
            }
            let mut got = vec![7];
            push_packbits(&row, &mut got);
            assert_eq!(got[1..], want[..], "{len} bytes");
            assert_eq!(got[0], 7);
        }
    }

    #[test]
    fn elem_decodes_both_byte_orders() {
        assert_eq!(Elem::U16(false).int(&[1, 2]), 0x0102);
        assert_eq!(Elem::U16(true).int(&[1, 2]), 0x0201);
        assert_eq!(Elem::I8.int(&[0xff]), -1);
        assert_eq!(Elem::I64(true).int(&(-5i64).to_le_bytes()), -5);
        assert_eq!(Elem::F32(false).float(&1.5f32.to_be_bytes()), 1.5);
        assert_eq!(Elem::F64(true).float(&2.25f64.to_le_bytes()), 2.25);
    }

    #[test]
    fn big_endian_counts_and_dense() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = [0u16, 3, 0, 7]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let p = write(&dir, "c.npy", &npy(">u2", false, &[2, 2], &data));
        let mut r = NpyCountsReader::open(&p, None).unwrap();
        let mut t = Tile::new(r.kind());
        assert!(r.read_tile(10, &mut t).unwrap());
        assert_eq!(t.features.counts_row(0), Some((&[1u32][..], &[3u32][..])));
        assert_eq!(t.features.counts_row(1), Some((&[1u32][..], &[7u32][..])));
        assert!(!r.read_tile(10, &mut t).unwrap());
        assert!(t.is_empty());

        let data: Vec<u8> = [1.0f64, 1e300]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let p = write(&dir, "d.npy", &npy("<f8", false, &[1, 2], &data));
        let mut r = NpyDenseReader::open(&p, None).unwrap();
        let e = r.read_tile(10, &mut t).unwrap_err().to_string();
        assert!(
            e.contains("row 0, column 1") && e.contains("float32 range"),
            "{e}"
        );
    }

    /// Released pages are read back from the file with the same bytes, and the release never
    /// reaches past the rows consumed.
    #[test]
    fn released_pages_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (rows, cols) = (5000, 9);
        let data: Vec<u8> = (0..rows * cols).map(|i| (i * 31 % 251) as u8).collect();
        let p = write(&dir, "b.npy", &npy("|u1", false, &[rows, cols], &data));
        let mut r = NpyBitsReader::open(&p, None).unwrap();
        let mut t = Tile::new(r.kind());
        let mut seen = 0;
        while r.read_tile(997, &mut t).unwrap() {
            seen += t.len();
            #[cfg(unix)]
            {
                let consumed = r.m.data_offset + seen * cols;
                assert!(r.m.released <= consumed && consumed - r.m.released < RELEASE_PAGE);
                assert_eq!(r.m.released % RELEASE_PAGE, 0);
            }
        }
        assert_eq!(seen, rows);
        #[cfg(unix)]
        assert!(r.m.released > 0);
        assert_eq!(r.m.row_slice(0, rows).unwrap(), &data[..]);
    }

    #[test]
    fn zero_tile_rows_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "b.npy", &npy("|u1", false, &[1, 1], &[1]));
        let mut r = NpyBitsReader::open(&p, None).unwrap();
        let mut t = Tile::new(r.kind());
        assert!(matches!(
            r.read_tile(0, &mut t),
            Err(Error::InvalidParam { .. })
        ));
    }
}
