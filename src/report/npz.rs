//! A streaming writer of count matrices as the scipy.sparse CSR `.npz` that
//! `scipy.sparse.load_npz` and our `.npz` pool reader read.
//!
//! `.npy` headers state the array lengths, which are known only at the end, so rows go to
//! three scratch member files (indices as int32, counts as uint32, row ends as uint64) beside
//! the output (see [`super::output`]); `finish` then assembles the staged the zip (deflated, fixed timestamps, so equal inputs give
//! equal bytes), narrowing the counts to the smallest unsigned type that holds them and the row
//! ends to int32 when they fit. Memory stays bounded by the write buffers.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::output::{OutputSet, ScratchFile};
use crate::error::{Error, Result};

/// The member holding the provenance text (a numpy bytes scalar); scipy ignores it.
pub const PROVENANCE_MEMBER: &str = "provenance.npy";

/// A `.npy` (version 1.0) header for `descr` and `shape` (e.g. `"(10,)"`), padded to 64 bytes.
fn npy_header(descr: &str, shape: &str) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = 10 + dict.len() + 1;
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    let len = unpadded.next_multiple_of(64) - 10;
    h.extend_from_slice(&(len as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(unpadded.next_multiple_of(64) - 1, b' ');
    h.push(b'\n');
    h
}

/// One scratch member file, removed on drop.
struct TempMember {
    scratch: ScratchFile,
    w: Option<BufWriter<File>>,
}

impl TempMember {
    fn create(set: &OutputSet, out: &Path, tag: &str) -> Result<Self> {
        let (scratch, file) = set.scratch(out, tag)?;
        Ok(TempMember {
            scratch,
            w: Some(BufWriter::with_capacity(1 << 16, file)),
        })
    }

    fn write(&mut self, out: &Path, bytes: &[u8]) -> Result<()> {
        match &mut self.w {
            Some(w) => w.write_all(bytes).map_err(|e| Error::io(out, e)),
            None => Ok(()),
        }
    }

    /// Finishes writing (every byte checked) and opens the bytes for reading.
    fn reader(&mut self, out: &Path) -> Result<BufReader<File>> {
        if let Some(w) = self.w.take() {
            w.into_inner()
                .map_err(|e| Error::io(out, e.into_error()))?
                .flush()
                .map_err(|e| Error::io(out, e))?;
        }
        let f = File::open(self.scratch.path()).map_err(|e| Error::io(out, e))?;
        Ok(BufReader::with_capacity(1 << 16, f))
    }
}

/// Writes a CSR count matrix row by row.
pub struct CsrNpzWriter {
    path: PathBuf,
    ncols: usize,
    provenance: Option<String>,
    rows: usize,
    nnz: u64,
    max_count: u32,
    indices: TempMember,
    data: TempMember,
    indptr: TempMember,
    buf: Vec<u8>,
}

impl CsrNpzWriter {
    /// Starts the declared output `path` for rows of `ncols` features; `provenance` goes to
    /// [`PROVENANCE_MEMBER`].
    pub fn create(
        set: &OutputSet,
        path: &Path,
        ncols: usize,
        provenance: Option<&str>,
    ) -> Result<Self> {
        if ncols == 0 || ncols > i32::MAX as usize {
            return Err(Error::param(
                "columns",
                format!("{ncols}; a CSR .npz needs 1 to 2^31-1 columns"),
            ));
        }
        let mut indptr = TempMember::create(set, path, "indptr")?;
        indptr.write(path, &0u64.to_le_bytes())?;
        Ok(CsrNpzWriter {
            path: path.to_path_buf(),
            ncols,
            provenance: provenance.map(str::to_string),
            rows: 0,
            nnz: 0,
            max_count: 0,
            indices: TempMember::create(set, path, "indices")?,
            data: TempMember::create(set, path, "data")?,
            indptr,
            buf: Vec::new(),
        })
    }

    /// Appends one row: `(column, count)` pairs, columns increasing, counts > 0.
    pub fn push_row(&mut self, pairs: &[(u32, u32)]) -> Result<()> {
        let bad = pairs.windows(2).any(|w| w[0].0 >= w[1].0)
            || pairs
                .iter()
                .any(|&(c, v)| c as usize >= self.ncols || v == 0);
        if bad {
            return Err(Error::param(
                "row",
                format!(
                    "row {}: columns must increase, lie below {} and hold counts > 0",
                    self.rows, self.ncols
                ),
            ));
        }
        self.buf.clear();
        for &(c, _) in pairs {
            self.buf.extend_from_slice(&(c as i32).to_le_bytes());
        }
        self.indices.write(&self.path, &self.buf)?;
        self.buf.clear();
        for &(_, v) in pairs {
            self.buf.extend_from_slice(&v.to_le_bytes());
            self.max_count = self.max_count.max(v);
        }
        self.data.write(&self.path, &self.buf)?;
        self.nnz += pairs.len() as u64;
        self.rows += 1;
        self.indptr.write(&self.path, &self.nnz.to_le_bytes())
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Assembles the archive into its staged file in `set` (every write, the flush and the sync
    /// checked); `set.commit()` puts it in place.
    pub fn finish(mut self, set: &mut OutputSet) -> Result<()> {
        let path = self.path.clone();
        let mut zip = ZipWriter::new(set.stage(&path, false)?);
        let (rows, nnz) = (self.rows, self.nnz);
        let io = |e: zip::result::ZipError| Error::io(&path, std::io::Error::other(e));
        let ioe = |e: std::io::Error| Error::io(&path, e);
        let start = |zip: &mut ZipWriter<_>, name: &str, bytes: u64| {
            let options = SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .compression_level(Some(1))
                .last_modified_time(zip::DateTime::default())
                .large_file(bytes >= u64::from(u32::MAX));
            zip.start_file(name, options).map_err(io)
        };

        // indices: copied as written (int32).
        let header = npy_header("<i4", &format!("({nnz},)"));
        start(&mut zip, "indices.npy", header.len() as u64 + 4 * nnz)?;
        zip.write_all(&header).map_err(ioe)?;
        std::io::copy(&mut self.indices.reader(&path)?, &mut zip).map_err(ioe)?;

        // indptr: int32 when it fits, else int64.
        let narrow = nnz <= i32::MAX as u64;
        let (descr, size) = if narrow { ("<i4", 4) } else { ("<i8", 8) };
        let header = npy_header(descr, &format!("({},)", rows + 1));
        start(
            &mut zip,
            "indptr.npy",
            header.len() as u64 + size * (rows as u64 + 1),
        )?;
        zip.write_all(&header).map_err(ioe)?;
        convert(&mut self.indptr.reader(&path)?, &mut zip, 8, |b, out| {
            let v = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
            if narrow {
                out.extend_from_slice(&(v as i32).to_le_bytes());
            } else {
                out.extend_from_slice(&(v as i64).to_le_bytes());
            }
        })
        .map_err(ioe)?;

        // format and shape, as scipy writes them.
        let header = npy_header("|S3", "()");
        start(&mut zip, "format.npy", header.len() as u64 + 3)?;
        zip.write_all(&header).map_err(ioe)?;
        zip.write_all(b"csr").map_err(ioe)?;
        let header = npy_header("<i8", "(2,)");
        start(&mut zip, "shape.npy", header.len() as u64 + 16)?;
        zip.write_all(&header).map_err(ioe)?;
        zip.write_all(&(rows as i64).to_le_bytes()).map_err(ioe)?;
        zip.write_all(&(self.ncols as i64).to_le_bytes())
            .map_err(ioe)?;

        // data: the smallest unsigned type holding every count.
        let (descr, size) = match self.max_count {
            0..=0xff => ("|u1", 1),
            0x100..=0xffff => ("<u2", 2),
            _ => ("<u4", 4),
        };
        let header = npy_header(descr, &format!("({nnz},)"));
        start(&mut zip, "data.npy", header.len() as u64 + size * nnz)?;
        zip.write_all(&header).map_err(ioe)?;
        convert(&mut self.data.reader(&path)?, &mut zip, 4, |b, out| {
            out.extend_from_slice(&b[..size as usize]);
        })
        .map_err(ioe)?;

        if let Some(p) = &self.provenance {
            let header = npy_header(&format!("|S{}", p.len()), "()");
            start(&mut zip, PROVENANCE_MEMBER, (header.len() + p.len()) as u64)?;
            zip.write_all(&header).map_err(ioe)?;
            zip.write_all(p.as_bytes()).map_err(ioe)?;
        }
        let staged = zip.finish().map_err(io)?;
        set.finish(staged)
    }
}

/// Copies fixed-size little-endian elements of `size` bytes, mapping each through `f`.
fn convert(
    input: &mut impl Read,
    output: &mut impl Write,
    size: usize,
    mut f: impl FnMut(&[u8], &mut Vec<u8>),
) -> std::io::Result<()> {
    let mut buf = vec![0u8; size * 8192];
    let mut out = Vec::with_capacity(buf.len());
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            let n = input.read(&mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled % size != 0 {
            return Err(std::io::Error::other(
                "temporary member has a partial element",
            ));
        }
        out.clear();
        for e in buf[..filled].chunks_exact(size) {
            f(e, &mut out);
        }
        output.write_all(&out)?;
        if filled < buf.len() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Features, Tile};
    use crate::pool::FilePool;

    #[test]
    fn header_is_padded_to_64() {
        let h = npy_header("<i4", "(3,)");
        assert_eq!(h.len() % 64, 0);
        assert_eq!(*h.last().unwrap(), b'\n');
    }

    #[test]
    fn round_trips_through_our_reader() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npz");
        let rows: Vec<Vec<(u32, u32)>> = vec![vec![(0, 1), (5, 300)], vec![], vec![(9, 2)]];
        let mut set = crate::report::Outputs::new().output(&p).check().unwrap();
        let mut w = CsrNpzWriter::create(&set, &p, 10, Some("test provenance")).unwrap();
        for r in &rows {
            w.push_row(r).unwrap();
        }
        assert!(w.push_row(&[(3, 1), (2, 1)]).is_err());
        w.finish(&mut set).unwrap();
        set.commit().unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut reader = FilePool::new(&p).open_owned().unwrap();
        let mut tile = Tile::new(reader.kind());
        assert!(reader.read_tile(10, &mut tile).unwrap());
        assert_eq!(
            tile.features,
            Features::Counts {
                ndim: 10,
                indptr: vec![0, 2, 2, 3],
                indices: vec![0, 5, 9],
                values: vec![1, 300, 2],
            }
        );
        assert!(!reader.read_tile(10, &mut tile).unwrap());
        assert_eq!(
            crate::data::read_npz_provenance(&p).unwrap().as_deref(),
            Some("test provenance")
        );
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npz");
        let set = crate::report::Outputs::new().output(&p).check().unwrap();
        let mut w = CsrNpzWriter::create(&set, &p, 10, None).unwrap();
        w.push_row(&[(1, 1)]).unwrap();
        drop(w);
        drop(set);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
