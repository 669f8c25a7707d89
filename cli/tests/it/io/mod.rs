//! Pool, label and id readers through the public API: round trips of every format, agreement
//! between formats holding the same data, tiling, and every malformed input we reject.

use std::io::Write;
use std::path::{Path, PathBuf};

use poolrank::data::Pool as _;
use poolrank::data::{
    read_id_list, read_labels, words_for, DenseCsvReader, FeatureKind, Features, FpsReader,
    LabelSpec, NpyBitsReader, NpyCountsReader, NpyDenseReader, NpyHeader, NpzCountsReader,
    PoolReader, Tile,
};
use poolrank::pool::FilePool;
use poolrank::Error;
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Fixtures

/// xorshift64*: deterministic data without extra dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn bzip2(bytes: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// zstd frames with their content checksum, as the `zstd` command writes them (without one a
/// decoder cannot tell corrupt content from text).
fn zstd(bytes: &[u8]) -> Vec<u8> {
    let mut e = zstd::Encoder::new(Vec::new(), 3).unwrap();
    e.include_checksum(true).unwrap();
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn shape_str(shape: &[usize]) -> String {
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

/// A `.npy` file (format 1.0, header padded to 64 bytes as numpy does).
fn npy(descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let fo = if fortran { "True" } else { "False" };
    let mut dict = format!(
        "{{'descr': '{descr}', 'fortran_order': {fo}, 'shape': {}, }}",
        shape_str(shape)
    );
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(data);
    out
}

/// A `.npy` in format 2.0 (4-byte header length).
fn npy_v2(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': {}, }}\n",
        shape_str(shape)
    );
    let mut out = b"\x93NUMPY\x02\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(data);
    out
}

fn le_bytes<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    v.iter().flat_map(|&x| f(x)).collect()
}

/// A zip archive with the given members, stored or deflated.
fn zip_bytes(members: &[(&str, Vec<u8>)], deflated: bool) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let method = if deflated {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    for (name, bytes) in members {
        w.start_file(
            *name,
            SimpleFileOptions::default().compression_method(method),
        )
        .unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A CSR matrix as `scipy.sparse.save_npz` writes it.
struct Csr {
    shape: (usize, usize),
    indptr: Vec<i64>,
    indices: Vec<i64>,
    /// Data as bytes of `data_descr`.
    data: Vec<u8>,
    data_descr: &'static str,
    indptr_descr: &'static str,
    indices_descr: &'static str,
    format: &'static str,
}

impl Csr {
    fn from_rows(ncols: usize, rows: &[Vec<(usize, u32)>]) -> Csr {
        let mut indptr = vec![0i64];
        let mut indices = Vec::new();
        let mut data = Vec::new();
        for row in rows {
            for &(c, v) in row {
                indices.push(c as i64);
                data.push(v as i32);
            }
            indptr.push(indices.len() as i64);
        }
        Csr {
            shape: (rows.len(), ncols),
            indptr,
            indices,
            data: le_bytes(&data, i32::to_le_bytes),
            data_descr: "<i4",
            indptr_descr: "<i4",
            indices_descr: "<i4",
            format: "csr",
        }
    }

    fn ints(descr: &str, v: &[i64]) -> Vec<u8> {
        match descr {
            "<i4" => le_bytes(v, |x| (x as i32).to_le_bytes()),
            "<u4" => le_bytes(v, |x| (x as u32).to_le_bytes()),
            "<i8" => le_bytes(v, i64::to_le_bytes),
            "<u8" => le_bytes(v, |x| (x as u64).to_le_bytes()),
            _ => panic!("{descr}"),
        }
    }

    fn members(&self) -> Vec<(&'static str, Vec<u8>)> {
        let dsize: usize = self.data_descr[2..].parse().unwrap();
        let fmt = npy(
            &format!("|S{}", self.format.len()),
            false,
            &[],
            self.format.as_bytes(),
        );
        vec![
            (
                "indices.npy",
                npy(
                    self.indices_descr,
                    false,
                    &[self.indices.len()],
                    &Csr::ints(self.indices_descr, &self.indices),
                ),
            ),
            (
                "indptr.npy",
                npy(
                    self.indptr_descr,
                    false,
                    &[self.indptr.len()],
                    &Csr::ints(self.indptr_descr, &self.indptr),
                ),
            ),
            ("format.npy", fmt),
            (
                "shape.npy",
                npy(
                    "<i8",
                    false,
                    &[2],
                    &le_bytes(
                        &[self.shape.0 as i64, self.shape.1 as i64],
                        i64::to_le_bytes,
                    ),
                ),
            ),
            (
                "data.npy",
                npy(
                    self.data_descr,
                    false,
                    &[self.data.len() / dsize],
                    &self.data,
                ),
            ),
        ]
    }

    fn npz(&self, deflated: bool) -> Vec<u8> {
        zip_bytes(&self.members(), deflated)
    }
}

/// Random bit rows of `nbits` bits as LSB-first words (the layout every reader must give).
fn random_bits(rng: &mut Rng, rows: usize, nbits: usize) -> Vec<u64> {
    let w = words_for(nbits);
    let mut data = vec![0u64; rows * w];
    for r in 0..rows {
        for j in 0..nbits {
            // About one bit in five set, and some all-zero rows.
            if r % 7 != 3 && rng.below(5) == 0 {
                data[r * w + j / 64] |= 1 << (j % 64);
            }
        }
    }
    data
}

fn bit(words: &[u64], j: usize) -> bool {
    words[j / 64] >> (j % 64) & 1 == 1
}

/// FPS text (LSB-first bytes) of `words` rows.
fn fps_text(data: &[u64], nbits: usize, ids: &[String], header: bool) -> String {
    let w = words_for(nbits);
    let nbytes = nbits.div_ceil(8);
    let mut s = String::new();
    if header {
        s.push_str(&format!(
            "#FPS1\n#num_bits={nbits}\n#type=Test/1\n#software=poolrank-tests\n"
        ));
    }
    for (r, id) in ids.iter().enumerate() {
        let row = &data[r * w..(r + 1) * w];
        for b in 0..nbytes {
            let byte = (row[b / 8] >> (8 * (b % 8))) & 0xff;
            s.push_str(&format!("{byte:02x}"));
        }
        s.push('\t');
        s.push_str(id);
        s.push('\n');
    }
    s
}

/// numpy.packbits rows (MSB-first) of `words` rows.
fn packbits(data: &[u64], nbits: usize, rows: usize) -> Vec<u8> {
    let w = words_for(nbits);
    let cols = nbits.div_ceil(8);
    let mut out = vec![0u8; rows * cols];
    for r in 0..rows {
        for j in 0..nbits {
            if bit(&data[r * w..(r + 1) * w], j) {
                out[r * cols + j / 8] |= 0x80 >> (j % 8);
            }
        }
    }
    out
}

/// Reads a whole pool in tiles of `tile_rows`, checking `start`s, and returns ids and rows.
fn read_all(r: &mut dyn PoolReader, tile_rows: usize) -> poolrank::Result<(Vec<String>, Features)> {
    let kind = r.kind();
    let mut tile = Tile::new(kind);
    let mut ids = Vec::new();
    let mut all = Features::empty(kind);
    while r.read_tile(tile_rows, &mut tile)? {
        assert_eq!(tile.start, ids.len(), "tile start");
        assert!(!tile.is_empty() && tile.len() <= tile_rows);
        assert_eq!(tile.features.len(), tile.len());
        assert_eq!(tile.features.kind(), kind);
        ids.extend(tile.ids.iter().cloned());
        for i in 0..tile.len() {
            all.push_row_from(&tile.features, i);
        }
    }
    assert!(tile.is_empty());
    // The end is sticky.
    assert!(!r.read_tile(tile_rows, &mut tile)?);
    Ok((ids, all))
}

fn read_path(r: poolrank::Result<impl PoolReader>) -> (Vec<String>, Features) {
    let mut r = r.unwrap();
    read_all(&mut r, 1000).unwrap()
}

/// The error a reader gives at open or while reading the whole pool.
fn first_error<R: PoolReader>(r: poolrank::Result<R>) -> Error {
    match r {
        Err(e) => e,
        Ok(mut r) => match read_all(&mut r, 4) {
            Err(e) => e,
            Ok(_) => panic!("expected an error"),
        },
    }
}

fn row_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

fn assert_format(e: &Error, needles: &[&str]) {
    match e {
        Error::Format { msg, .. } => {
            for n in needles {
                assert!(msg.contains(n), "{e} lacks {n:?}");
            }
        }
        _ => panic!("expected Error::Format, got {e:?}"),
    }
}

fn assert_parse(e: &Error, line: usize, needle: &str) {
    match e {
        Error::Parse { line: l, msg, .. } => {
            assert_eq!(*l, line, "{e}");
            assert!(msg.contains(needle), "{e} lacks {needle:?}");
        }
        _ => panic!("expected Error::Parse at line {line}, got {e:?}"),
    }
}

fn assert_empty(e: &Error) {
    assert!(
        matches!(e, Error::EmptyPool { .. }),
        "expected EmptyPool, got {e:?}"
    );
}

/// Random counts, a quarter of them non-zero, row-major.
fn dense_counts(rows: usize, cols: usize, rng: &mut Rng) -> Vec<u32> {
    (0..rows * cols)
        .map(|_| {
            if rng.below(4) == 0 {
                1 + rng.below(200) as u32
            } else {
                0
            }
        })
        .collect()
}

/// `counts` (row-major, `cols` wide) as CSR features.
fn counts_features(counts: &[u32], cols: usize) -> Features {
    let mut indptr = vec![0];
    let mut indices = Vec::new();
    let mut values = Vec::new();
    for row in counts.chunks(cols) {
        for (c, &v) in row.iter().enumerate() {
            if v > 0 {
                indices.push(c as u32);
                values.push(v);
            }
        }
        indptr.push(indices.len());
    }
    Features::Counts {
        ndim: cols,
        indptr,
        indices,
        values,
    }
}

mod bits;
mod counts;
mod dense;
mod file_pool;
mod labels;
mod limits;
mod properties;
mod shipped;
mod tiling;
