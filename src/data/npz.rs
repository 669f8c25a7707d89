//! Count pools stored as a scipy.sparse CSR matrix in `.npz` (what `scipy.sparse.save_npz`
//! writes: a zip of `indptr.npy`, `indices.npy`, `data.npy`, `shape.npy` and `format.npy`).
//!
//! The reader streams: `indptr`, `indices` and `data` are each read through their own open
//! file handle, decompressing as tiles are requested, so memory is bounded by the tile and
//! never by the matrix. A `zip::ZipFile` borrows its archive, so a struct could not hold one
//! open next to its archive; instead the archive's directory gives each member's offset, size
//! and CRC, and the member is read straight from the file (stored, or inflated with flate2),
//! with the CRC checked at the end of the pass.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use zip::{CompressionMethod, ZipArchive};

use super::npy::{begin_tile, check_tile_rows, read_header, shape_str, Elem, HeaderError, RowIds};
use super::{FeatureKind, Features, PoolReader, Tile};
use crate::error::{Error, Result};

/// How to convert scipy's matrices to the one layout we read.
const CSR_HINT: &str = "save the matrix with scipy.sparse.save_npz(path, matrix.tocsr())";

/// Bytes decoded per read from a member.
const CHUNK: usize = 1 << 16;

/// Where a member's bytes lie in the archive.
struct Entry {
    data_start: u64,
    compressed: u64,
    size: u64,
    crc: u32,
    method: CompressionMethod,
}

/// A member's decompressed bytes, with their CRC and count.
struct Stream {
    inner: Box<dyn Read + Send>,
    crc: flate2::Crc,
    count: u64,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// One `.npy` member of the archive, read element by element.
struct Member {
    name: &'static str,
    entry: Entry,
    stream: Stream,
    elem: Elem,
    /// Number of elements.
    len: usize,
    /// Elements read so far.
    read: usize,
    buf: Vec<u8>,
}

/// Wraps a failure inside a member as an error naming the archive and the member.
fn member_error(path: &Path, name: &str, e: std::io::Error) -> Error {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::UnexpectedEof => Error::format(
            path,
            format!("{name} is truncated: the member ends before the data its header announces"),
        ),
        ErrorKind::InvalidData | ErrorKind::InvalidInput => Error::Compression {
            path: path.to_path_buf(),
            msg: format!("{name}: corrupt compressed data ({e})"),
        },
        _ => Error::io(path, e),
    }
}

/// Looks up `name` in the archive's directory; `None` when absent.
fn find_entry(archive: &mut ZipArchive<File>, path: &Path, name: &str) -> Result<Option<Entry>> {
    let file = match archive.by_name(name) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => {
            return Err(Error::format(
                path,
                format!("{name}: cannot read the member: {e}"),
            ))
        }
    };
    if file.encrypted() {
        return Err(Error::format(
            path,
            format!("{name} is encrypted; expected a plain .npz"),
        ));
    }
    let method = file.compression();
    if !matches!(
        method,
        CompressionMethod::Stored | CompressionMethod::Deflated
    ) {
        return Err(Error::format(
            path,
            format!(
                "{name} uses compression {method:?}; only stored or deflated members are supported"
            ),
        ));
    }
    let data_start = file
        .data_start()
        .ok_or_else(|| Error::format(path, format!("{name}: cannot locate the member's data")))?;
    let entry = Entry {
        data_start,
        compressed: file.compressed_size(),
        size: file.size(),
        crc: file.crc32(),
        method,
    };
    if method == CompressionMethod::Stored && entry.compressed != entry.size {
        return Err(Error::format(
            path,
            format!(
                "{name} is stored with {} bytes but declares {} uncompressed; the archive is corrupted",
                entry.compressed, entry.size
            ),
        ));
    }
    Ok(Some(entry))
}

/// Opens a member's bytes as an owned stream (its own file handle).
fn open_stream(path: &Path, entry: &Entry) -> Result<Stream> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    file.seek(SeekFrom::Start(entry.data_start))
        .map_err(|e| Error::io(path, e))?;
    let raw = BufReader::with_capacity(CHUNK, file.take(entry.compressed));
    let inner: Box<dyn Read + Send> = match entry.method {
        CompressionMethod::Deflated => Box::new(BufReader::with_capacity(
            CHUNK,
            flate2::bufread::DeflateDecoder::new(raw),
        )),
        _ => Box::new(raw),
    };
    Ok(Stream {
        inner,
        crc: flate2::Crc::new(),
        count: 0,
    })
}

/// Opens a member and reads its `.npy` header; `None` when the member is absent.
fn open_member(
    archive: &mut ZipArchive<File>,
    path: &Path,
    name: &'static str,
) -> Result<Option<(Member, super::NpyHeader)>> {
    let Some(entry) = find_entry(archive, path, name)? else {
        return Ok(None);
    };
    let mut stream = open_stream(path, &entry)?;
    let header = read_header(&mut stream).map_err(|e| match e {
        HeaderError::Io(e) => member_error(path, name, e),
        HeaderError::Bad(msg) => Error::format(path, format!("{name}: {msg}")),
    })?;
    let len = header.num_elements().unwrap_or(usize::MAX);
    let expect = header
        .data_len()
        .and_then(|n| n.checked_add(header.data_offset));
    if expect.map(|n| n as u64) != Some(entry.size) {
        return Err(Error::format(
            path,
            format!(
                "{name}: its header announces '{}' data of shape {} but the member holds {} bytes; \
                 the archive is corrupted",
                header.dtype,
                shape_str(&header.shape),
                entry.size
            ),
        ));
    }
    let elem = Elem::from_dtype(&header.dtype);
    let member = Member {
        name,
        entry,
        stream,
        // Text members (format.npy) have no numeric element; they are read with `read_rest`.
        elem: elem.unwrap_or(Elem::U8),
        len,
        read: 0,
        buf: Vec::new(),
    };
    Ok(Some((member, header)))
}

impl Member {
    /// Reads `n` elements, calling `f` on each one's bytes.
    fn read_elems(
        &mut self,
        path: &Path,
        n: usize,
        mut f: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        if n > self.len - self.read {
            return Err(Error::format(
                path,
                format!(
                    "{}: asked for {n} more elements but only {} remain",
                    self.name,
                    self.len - self.read
                ),
            ));
        }
        let size = self.elem.size();
        let per_chunk = (CHUNK / size).max(1);
        let mut left = n;
        while left > 0 {
            let k = left.min(per_chunk);
            self.buf.resize(k * size, 0);
            self.stream
                .read_exact(&mut self.buf)
                .map_err(|e| member_error(path, self.name, e))?;
            for b in self.buf.chunks_exact(size) {
                f(b)?;
            }
            left -= k;
            self.read += k;
        }
        Ok(())
    }

    /// Reads one integer element.
    fn read_int(&mut self, path: &Path) -> Result<i128> {
        let elem = self.elem;
        let mut v = 0;
        self.read_elems(path, 1, |b| {
            v = elem.int(b);
            Ok(())
        })?;
        Ok(v)
    }

    /// Checks, once every element was read, that the member ended and its CRC matched.
    fn finish(&mut self, path: &Path) -> Result<()> {
        let mut extra = [0u8; 1];
        let more = self
            .stream
            .read(&mut extra)
            .map_err(|e| member_error(path, self.name, e))?;
        if more != 0 || self.stream.count != self.entry.size {
            return Err(Error::format(
                path,
                format!(
                    "{}: the member's length differs from its declared {} bytes",
                    self.name, self.entry.size
                ),
            ));
        }
        if self.stream.crc.sum() != self.entry.crc {
            return Err(Error::format(
                path,
                format!("{}: CRC mismatch; the archive is corrupted", self.name),
            ));
        }
        Ok(())
    }
}

/// Reads a small member whole (at most `limit` bytes of data).
fn read_small(
    archive: &mut ZipArchive<File>,
    path: &Path,
    name: &'static str,
    limit: usize,
) -> Result<Option<(super::NpyHeader, Vec<u8>)>> {
    let Some((mut m, header)) = open_member(archive, path, name)? else {
        return Ok(None);
    };
    let n = header.data_len().unwrap_or(usize::MAX);
    if n > limit {
        return Err(Error::format(
            path,
            format!(
                "{name} holds '{}' data of shape {}; expected a small array",
                header.dtype,
                shape_str(&header.shape)
            ),
        ));
    }
    let mut data = vec![0u8; n];
    m.stream
        .read_exact(&mut data)
        .map_err(|e| member_error(path, name, e))?;
    m.finish(path)?;
    Ok(Some((header, data)))
}

/// The text of `format.npy` (a numpy bytes or unicode scalar).
fn read_format(archive: &mut ZipArchive<File>, path: &Path) -> Result<String> {
    let Some((header, data)) = read_small(archive, path, "format.npy", 256)? else {
        return Err(Error::format(
            path,
            format!(
                "not a scipy.sparse .npz: it has no format.npy (members: {}); {CSR_HINT}",
                archive_names(archive)
            ),
        ));
    };
    let text: String = match header.dtype.kind {
        'S' => data
            .iter()
            .take_while(|&&b| b != 0)
            .map(|&b| b as char)
            .collect(),
        'U' => data
            .chunks_exact(4)
            .map(|c| {
                let a = [c[0], c[1], c[2], c[3]];
                if header.dtype.little_endian {
                    u32::from_le_bytes(a)
                } else {
                    u32::from_be_bytes(a)
                }
            })
            .take_while(|&u| u != 0)
            .map(|u| char::from_u32(u).unwrap_or('\u{fffd}'))
            .collect(),
        _ => {
            return Err(Error::format(
                path,
                format!(
                    "format.npy holds '{}' data; expected a string such as 'csr'",
                    header.dtype
                ),
            ))
        }
    };
    Ok(text)
}

/// The archive's member names, for hints.
fn archive_names(archive: &ZipArchive<File>) -> String {
    let names: Vec<String> = archive
        .file_names_raw()
        .take(20)
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The provenance text in a `.npz`'s `provenance.npy` member (what `poolrank featurize`
/// writes), `None` when the archive has none.
pub fn read_npz_provenance(path: &Path) -> Result<Option<String>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = ZipArchive::new(file)
        .map_err(|e| Error::format(path, format!("not a .npz (zip) archive: {e}; {CSR_HINT}")))?;
    let Some((header, data)) = read_small(&mut archive, path, "provenance.npy", 1 << 16)? else {
        return Ok(None);
    };
    if header.dtype.kind != 'S' {
        return Err(Error::format(
            path,
            format!(
                "provenance.npy holds '{}' data; expected a bytes string",
                header.dtype
            ),
        ));
    }
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    Ok(Some(String::from_utf8_lossy(&data[..end]).into_owned()))
}

/// Reads a scipy.sparse CSR `.npz` of non-negative counts tile by tile.
pub struct NpzCountsReader {
    path: PathBuf,
    rows: usize,
    ncols: usize,
    nnz: usize,
    indptr: Member,
    indices: Member,
    data: Member,
    ids: RowIds,
    next_row: usize,
    /// `indptr[next_row]`.
    row_start: usize,
    finished: bool,
    /// Scratch: the tile's row ends, and one row's (index, count) pairs.
    ends: Vec<usize>,
    pairs: Vec<(u32, u64)>,
}

impl NpzCountsReader {
    /// Opens `path`; `ids` is an optional file with one id per row.
    pub fn open(path: &Path, ids: Option<&Path>) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut archive = ZipArchive::new(file).map_err(|e| {
            Error::format(path, format!("not a .npz (zip) archive: {e}; {CSR_HINT}"))
        })?;
        let format = read_format(&mut archive, path)?;
        if format != "csr" {
            return Err(Error::format(
                path,
                format!(
                    "holds a sparse matrix in {format:?} format; only CSR is supported: convert \
                     it with matrix.tocsr() before scipy.sparse.save_npz"
                ),
            ));
        }
        let missing = |name: &str, archive: &ZipArchive<File>| {
            Error::format(
                path,
                format!(
                    "{name} is missing (members: {}); expected what scipy.sparse.save_npz writes",
                    archive_names(archive)
                ),
            )
        };
        let (shape_h, shape_b) = read_small(&mut archive, path, "shape.npy", 64)?
            .ok_or_else(|| missing("shape.npy", &archive))?;
        let shape_elem = Elem::from_dtype(&shape_h.dtype).filter(|e| e.is_int());
        let (Some(shape_elem), [2]) = (shape_elem, shape_h.shape.as_slice()) else {
            return Err(Error::format(
                path,
                format!(
                    "shape.npy holds '{}' data of shape {}; expected 2 integers (rows, columns)",
                    shape_h.dtype,
                    shape_str(&shape_h.shape)
                ),
            ));
        };
        let size = shape_elem.size();
        let dims: Vec<i128> = shape_b
            .chunks_exact(size)
            .map(|b| shape_elem.int(b))
            .collect();
        let (rows, ncols) = match dims.as_slice() {
            &[r, c] if r >= 0 && c >= 0 && r < i128::from(u64::MAX >> 8) => (
                usize::try_from(r).unwrap_or(usize::MAX - 1),
                usize::try_from(c).unwrap_or(usize::MAX),
            ),
            _ => {
                return Err(Error::format(
                    path,
                    format!("shape.npy holds {dims:?}; expected two non-negative sizes"),
                ))
            }
        };
        if rows == 0 {
            return Err(Error::EmptyPool {
                path: path.to_path_buf(),
            });
        }
        if ncols == 0 {
            return Err(Error::format(
                path,
                format!("shape ({rows}, 0) has no features; expected at least one column"),
            ));
        }
        super::limits::check_width(ncols, "shape.npy's columns")
            .map_err(|e| Error::format(path, e.to_string()))?;

        let mut member = |name: &'static str, expected: &str, ok: &dyn Fn(Elem) -> bool| {
            let (m, h) = open_member(&mut archive, path, name)?.ok_or_else(|| {
                Error::format(
                    path,
                    format!("{name} is missing; expected what scipy.sparse.save_npz writes"),
                )
            })?;
            let is_ok = Elem::from_dtype(&h.dtype).is_some_and(ok);
            if !is_ok || h.shape.len() != 1 {
                return Err(Error::format(
                    path,
                    format!(
                        "{name} holds '{}' data of shape {}; expected a 1-D array of {expected}",
                        h.dtype,
                        shape_str(&h.shape)
                    ),
                ));
            }
            Ok(m)
        };
        let mut indptr = member("indptr.npy", "int32 or int64", &|e: Elem| {
            matches!(e, Elem::I32(_) | Elem::I64(_) | Elem::U32(_) | Elem::U64(_))
        })?;
        let indices = member("indices.npy", "int32, int64 or uint32", &|e: Elem| {
            matches!(e, Elem::I32(_) | Elem::I64(_) | Elem::U32(_))
        })?;
        let data = member(
            "data.npy",
            "counts (an integer type, or floats holding whole numbers)",
            &|_| true,
        )?;
        if Some(indptr.len) != rows.checked_add(1) {
            return Err(Error::format(
                path,
                format!(
                    "indptr.npy has {} entries; expected rows + 1 = {} for shape ({rows}, {ncols})",
                    indptr.len,
                    rows as u128 + 1
                ),
            ));
        }
        if indices.len != data.len {
            return Err(Error::format(
                path,
                format!(
                    "indices.npy has {} entries but data.npy has {}; expected one index per value",
                    indices.len, data.len
                ),
            ));
        }
        let nnz = indices.len;
        let first = indptr.read_int(path)?;
        if first != 0 {
            return Err(Error::format(
                path,
                format!("indptr.npy starts at {first}; expected 0"),
            ));
        }
        let ids = RowIds::load(ids, path, rows)?;
        Ok(NpzCountsReader {
            path: path.to_path_buf(),
            rows,
            ncols,
            nnz,
            indptr,
            indices,
            data,
            ids,
            next_row: 0,
            row_start: 0,
            finished: false,
            ends: Vec::new(),
            pairs: Vec::new(),
        })
    }

    /// Checks the end of the pass: every member read to its end with a matching CRC.
    fn finish(&mut self) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        if self.row_start != self.nnz {
            return Err(Error::format(
                &self.path,
                format!(
                    "indptr.npy ends at {} but indices.npy holds {} entries",
                    self.row_start, self.nnz
                ),
            ));
        }
        self.indptr.finish(&self.path)?;
        self.indices.finish(&self.path)?;
        self.data.finish(&self.path)
    }

    /// Reads the tile's row ends from `indptr`, checking they never decrease nor pass `nnz`.
    fn read_ends(&mut self, n: usize) -> Result<()> {
        let (path, nnz, elem) = (&self.path, self.nnz, self.indptr.elem);
        let mut prev = self.row_start;
        let mut row = self.next_row;
        let ends = &mut self.ends;
        ends.clear();
        self.indptr.read_elems(path, n, |b| {
            let v = elem.int(b);
            if v < prev as i128 || v > nnz as i128 {
                return Err(Error::format(
                    path,
                    format!(
                        "indptr.npy: row {row} (0-based) ends at {v}, {}; indptr must be \
                         non-decreasing",
                        if v > nnz as i128 {
                            format!("past the {nnz} entries of indices.npy")
                        } else {
                            format!("before it starts ({prev})")
                        }
                    ),
                ));
            }
            prev = v as usize;
            ends.push(prev);
            row += 1;
            Ok(())
        })
    }

    /// Reads row `row`'s `count` entries into `pairs`, sorted by index with duplicates summed
    /// and zeros dropped.
    fn read_row(&mut self, row: usize, count: usize) -> Result<()> {
        let path = &self.path;
        let ncols = self.ncols;
        let pairs = &mut self.pairs;
        pairs.clear();
        let ielem = self.indices.elem;
        self.indices.read_elems(path, count, |b| {
            let v = ielem.int(b);
            if v < 0 || v >= ncols as i128 {
                return Err(Error::format(
                    path,
                    format!(
                        "row {row} (0-based): column index {v} is out of range; the matrix has \
                         {ncols} columns"
                    ),
                ));
            }
            pairs.push((v as u32, 0));
            Ok(())
        })?;
        let delem = self.data.elem;
        let mut k = 0;
        self.data.read_elems(path, count, |b| {
            let v = count_value(delem, b).map_err(|what| {
                Error::format(
                    path,
                    format!(
                        "row {row} (0-based), column {}: count {what}; expected non-negative \
                         whole numbers",
                        pairs.get(k).map_or(0, |p| p.0)
                    ),
                )
            })?;
            if let Some(p) = pairs.get_mut(k) {
                p.1 = v;
            }
            k += 1;
            Ok(())
        })?;
        if !pairs.windows(2).all(|w| w[0].0 < w[1].0) {
            pairs.sort_unstable_by_key(|p| p.0);
            // Sum duplicates in place (scipy's semantics for an unsorted, non-canonical CSR).
            let mut w = 0;
            for r in 0..pairs.len() {
                if w > 0 && pairs[w - 1].0 == pairs[r].0 {
                    pairs[w - 1].1 = pairs[w - 1].1.saturating_add(pairs[r].1);
                } else {
                    pairs[w] = pairs[r];
                    w += 1;
                }
            }
            pairs.truncate(w);
        }
        if let Some(&(c, v)) = pairs.iter().find(|p| p.1 > u64::from(u32::MAX)) {
            return Err(Error::format(
                path,
                format!(
                    "row {row} (0-based), column {c}: count {v} exceeds the largest supported \
                     ({})",
                    u32::MAX
                ),
            ));
        }
        Ok(())
    }
}

/// A data element as a count, or a description of why it is not one.
fn count_value(elem: Elem, b: &[u8]) -> std::result::Result<u64, String> {
    if elem.is_int() {
        let v = elem.int(b);
        if v < 0 {
            Err(format!("{v} is negative"))
        } else {
            u64::try_from(v).map_err(|_| format!("{v} is too large"))
        }
    } else {
        let v = elem.float(b);
        if !v.is_finite() || v < 0.0 || v.fract() != 0.0 || v > u32::MAX as f64 {
            Err(format!("{v} is not a non-negative whole number"))
        } else {
            Ok(v as u64)
        }
    }
}

impl PoolReader for NpzCountsReader {
    fn kind(&self) -> FeatureKind {
        FeatureKind::Counts { ndim: self.ncols }
    }

    fn len_hint(&self) -> Option<usize> {
        Some(self.rows)
    }

    fn read_tile(&mut self, max_rows: usize, tile: &mut Tile) -> Result<bool> {
        check_tile_rows(max_rows, self.kind())?;
        begin_tile(tile, self.kind(), self.next_row);
        let n = max_rows.min(self.rows - self.next_row);
        if n == 0 {
            self.finish()?;
            return Ok(false);
        }
        self.read_ends(n)?;
        let start = self.next_row;
        // The entries are only claimed by indptr (compressed members can be tiny, a row's
        // entries can repeat a column), so they are bounded before any is read. Each is held
        // twice while a row is sorted: an (index, count) pair and the tile's index and value.
        const ENTRY_BYTES: usize = 24;
        let mut prev = self.row_start;
        for (r, &end) in self.ends.iter().enumerate() {
            if (end - prev).saturating_mul(ENTRY_BYTES) > super::limits::MAX_TILE_BYTES {
                return Err(Error::format(
                    &self.path,
                    format!(
                        "indptr.npy: row {} (0-based) claims {} entries, more than the {} a row \
                         may hold (a tile's memory bound of {} bytes)",
                        start + r,
                        end - prev,
                        super::limits::MAX_TILE_BYTES / ENTRY_BYTES,
                        super::limits::MAX_TILE_BYTES
                    ),
                ));
            }
            prev = end;
        }
        let entries = self.ends.last().map_or(0, |&e| e - self.row_start);
        let bytes = entries.saturating_mul(ENTRY_BYTES);
        if bytes > super::limits::MAX_TILE_BYTES {
            return Err(Error::LimitExceeded {
                what: format!(
                    "memory for a tile of {n} rows holding {entries} count entries, in bytes (use \
                     fewer rows per tile)"
                ),
                requested: bytes as u64,
                max: super::limits::MAX_TILE_BYTES as u64,
            });
        }
        for r in 0..n {
            let end = self.ends[r];
            self.read_row(start + r, end - self.row_start)?;
            self.row_start = end;
            if let Features::Counts {
                indptr,
                indices,
                values,
                ..
            } = &mut tile.features
            {
                for &(c, v) in &self.pairs {
                    if v > 0 {
                        indices.push(c);
                        values.push(v as u32);
                    }
                }
                indptr.push(indices.len());
            }
        }
        self.ids.extend(start, n, &mut tile.ids)?;
        self.next_row += n;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_values() {
        assert_eq!(count_value(Elem::U8, &[7]), Ok(7));
        assert!(count_value(Elem::I8, &[0xff]).is_err());
        assert_eq!(count_value(Elem::F64(true), &3.0f64.to_le_bytes()), Ok(3));
        assert!(count_value(Elem::F64(true), &2.5f64.to_le_bytes()).is_err());
        assert!(count_value(Elem::F32(true), &(-1.0f32).to_le_bytes()).is_err());
        assert!(count_value(Elem::F32(true), &f32::NAN.to_le_bytes()).is_err());
        assert_eq!(
            count_value(Elem::F32(true), &(-0.0f32).to_le_bytes()),
            Ok(0)
        );
    }

    #[test]
    fn not_a_zip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npz");
        std::fs::write(&p, b"hello world, not a zip").unwrap();
        let e = NpzCountsReader::open(&p, None).err().unwrap();
        assert!(matches!(e, Error::Format { .. }), "{e}");
    }
}
