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

// ---------------------------------------------------------------------------------------------
// Bit fingerprints

#[test]
fn fps_and_packbits_npy_agree() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for nbits in [8, 24, 64, 72, 120, 1000, 1024, 2048] {
        let rows = 23;
        let data = random_bits(&mut rng, rows, nbits);
        let ids: Vec<String> = (0..rows).map(|i| format!("mol{i}")).collect();
        let fps = write(&dir, "a.fps", fps_text(&data, nbits, &ids, true).as_bytes());
        let fps_gz = write(
            &dir,
            "a.fps.gz",
            &gzip(fps_text(&data, nbits, &ids, true).as_bytes()),
        );
        let npy_p = write(
            &dir,
            "a.npy",
            &npy(
                "|u1",
                false,
                &[rows, nbits / 8],
                &packbits(&data, nbits, rows),
            ),
        );
        let expected = Features::Bits {
            nbits,
            data: data.clone(),
        };
        let (fids, ffeat) = read_path(FpsReader::open(&fps));
        assert_eq!(fids, ids);
        assert_eq!(ffeat, expected, "fps {nbits}");
        let (gids, gfeat) = read_path(FpsReader::open(&fps_gz));
        assert_eq!((gids, gfeat), (fids, ffeat.clone()), "gzip fps {nbits}");
        let (nids, nfeat) = read_path(NpyBitsReader::open(&npy_p, None));
        assert_eq!(nids, row_ids(rows));
        assert_eq!(nfeat, ffeat, "npy {nbits}");
        let r = NpyBitsReader::open(&npy_p, None).unwrap();
        assert_eq!(r.len_hint(), Some(rows));
        assert_eq!(r.kind(), FeatureKind::Bits { nbits });
    }
}

/// A pool spanning many pages, read in tiles that end inside pages: the readers hand the pages
/// they are done with back to the kernel, and every row must still come out right.
#[test]
fn npy_readers_span_many_pages() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(11);
    let (rows, nbits) = (3001, 328);
    let data = random_bits(&mut rng, rows, nbits);
    let bits = write(
        &dir,
        "b.npy",
        &npy(
            "|u1",
            false,
            &[rows, nbits / 8],
            &packbits(&data, nbits, rows),
        ),
    );
    let cols = 37;
    let counts = dense_counts(rows, cols, &mut rng);
    let cnpy = write(
        &dir,
        "c.npy",
        &npy(
            "<u4",
            false,
            &[rows, cols],
            &le_bytes(&counts, u32::to_le_bytes),
        ),
    );
    let dense: Vec<f64> = (0..rows * 5).map(|i| i as f64 * 0.25 - 7.0).collect();
    let dnpy = write(
        &dir,
        "d.npy",
        &npy(
            "<f8",
            false,
            &[rows, 5],
            &le_bytes(&dense, f64::to_le_bytes),
        ),
    );
    let expect_dense = Features::Dense {
        dim: 5,
        data: dense.iter().map(|&v| v as f32).collect(),
    };
    for t in [1, 7, 100, 1024, rows] {
        let (ids, f) = read_all(&mut NpyBitsReader::open(&bits, None).unwrap(), t).unwrap();
        assert_eq!(ids, row_ids(rows));
        assert_eq!(
            f,
            Features::Bits {
                nbits,
                data: data.clone()
            },
            "bits tile {t}"
        );
        let (_, f) = read_all(&mut NpyCountsReader::open(&cnpy, None).unwrap(), t).unwrap();
        assert_eq!(f, counts_features(&counts, cols), "counts tile {t}");
        let (_, f) = read_all(&mut NpyDenseReader::open(&dnpy, None).unwrap(), t).unwrap();
        assert_eq!(f, expect_dense, "dense tile {t}");
    }
}

#[test]
fn fps_widths_not_a_multiple_of_eight() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(7);
    for nbits in [1, 5, 12, 166, 1001] {
        let data = random_bits(&mut rng, 9, nbits);
        let ids: Vec<String> = (0..9).map(|i| format!("m{i}")).collect();
        let p = write(&dir, "a.fps", fps_text(&data, nbits, &ids, true).as_bytes());
        let (_, f) = read_path(FpsReader::open(&p));
        assert_eq!(f, Features::Bits { nbits, data }, "{nbits}");
    }
}

#[test]
fn fps_without_header_takes_the_first_rows_width() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(11);
    let data = random_bits(&mut rng, 5, 96);
    let ids: Vec<String> = (0..5).map(|i| format!("x y {i}")).collect();
    let text = fps_text(&data, 96, &ids, false).replace('\n', "\r\n");
    let p = write(&dir, "a.fps", text.as_bytes());
    let mut r = FpsReader::open(&p).unwrap();
    assert_eq!(r.kind(), FeatureKind::Bits { nbits: 96 });
    assert_eq!(r.len_hint(), None);
    let (got_ids, f) = read_all(&mut r, 2).unwrap();
    assert_eq!(got_ids, ids);
    assert_eq!(f, Features::Bits { nbits: 96, data });
}

#[test]
fn fps_extra_fields_and_crlf() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "a.fps",
        b"#FPS1\r\n#num_bits=16\r\n#software=x\r\n0300\tA\t1.5\textra\r\nff80\tB\r\n",
    );
    let (ids, f) = read_path(FpsReader::open(&p));
    assert_eq!(ids, vec!["A", "B"]);
    assert_eq!(
        f,
        Features::Bits {
            nbits: 16,
            data: vec![3, 0x80ff]
        }
    );
}

#[test]
fn fps_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, usize, &str)] = &[
        (
            "#FPS1\n#num_bits=16\n0000\ta\n00g0\tb\n",
            4,
            "bad hex digit 'g'",
        ),
        ("#FPS1\n0000\ta\n000\tb\n", 3, "odd number of hex digits"),
        (
            "#FPS1\n#num_bits=16\n0000\ta\n000000\tb\n",
            4,
            "expected 4 for #num_bits=16",
        ),
        (
            "#FPS1\n#num_bits=16\n000000\ta\n",
            3,
            "expected 4 for #num_bits=16",
        ),
        ("#FPS1\n0000\ta\n000000\tb\n", 3, "first one (line 2)"),
        ("#FPS1\n#num_bits=16\n0000\ta\n0000 b\n", 4, "missing id"),
        ("#FPS1\n#num_bits=16\n0000\ta\n0000\n", 4, "missing id"),
        ("#FPS1\n#num_bits=16\n0000\t\n", 3, "empty id"),
        (
            "#FPS1\n#num_bits=10\n0000\ta\n0004\tb\n",
            4,
            "beyond #num_bits=10",
        ),
        ("#FPS1\n#num_bits=ten\n0000\ta\n", 2, "#num_bits"),
        ("#FPS1\n0000\ta\n#num_bits=16\n", 3, "header line after"),
        ("#FPS2\n0000\ta\n", 1, "#FPS1"),
        ("\tid\n", 1, "empty fingerprint"),
    ];
    for (i, &(text, line, needle)) in cases.iter().enumerate() {
        let p = write(&dir, &format!("e{i}.fps"), text.as_bytes());
        let e = first_error(FpsReader::open(&p));
        assert_parse(&e, line, needle);
        assert!(e.to_string().contains(&format!("e{i}.fps:{line}:")), "{e}");
    }
}

#[test]
fn fps_without_rows_is_an_empty_pool() {
    let dir = tempfile::tempdir().unwrap();
    for (i, text) in ["", "#FPS1\n#num_bits=16\n", "#FPS1\n\n\n"]
        .iter()
        .enumerate()
    {
        let p = write(&dir, &format!("e{i}.fps"), text.as_bytes());
        assert_empty(&first_error(FpsReader::open(&p)));
        let pz = write(&dir, &format!("e{i}.fps.gz"), &gzip(text.as_bytes()));
        assert_empty(&first_error(FpsReader::open(&pz)));
    }
}

#[test]
fn npy_bits_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "f.npy", &npy("<f4", false, &[2, 2], &[0; 16]));
    assert_format(
        &first_error(NpyBitsReader::open(&p, None)),
        &["'<f4'", "uint8"],
    );
    let p = write(&dir, "r1.npy", &npy("|u1", false, &[4], &[0; 4]));
    assert_format(
        &first_error(NpyBitsReader::open(&p, None)),
        &["2-D", "(4,)"],
    );
    let p = write(&dir, "r3.npy", &npy("|u1", false, &[2, 2, 2], &[0; 8]));
    assert_format(
        &first_error(NpyBitsReader::open(&p, None)),
        &["2-D", "(2, 2, 2)"],
    );
    let p = write(&dir, "fo.npy", &npy("|u1", true, &[2, 3], &[0; 6]));
    assert_format(&first_error(NpyBitsReader::open(&p, None)), &["Fortran"]);
    let p = write(&dir, "t.npy", &npy("|u1", false, &[3, 4], &[0; 11]));
    assert_format(
        &first_error(NpyBitsReader::open(&p, None)),
        &["truncated", "12", "11"],
    );
    let p = write(&dir, "long.npy", &npy("|u1", false, &[3, 4], &[0; 13]));
    assert_format(&first_error(NpyBitsReader::open(&p, None)), &["trailing"]);
    let p = write(
        &dir,
        "huge.npy",
        &npy("|u1", false, &[1 << 40, 1 << 30], &[0; 8]),
    );
    assert_format(&first_error(NpyBitsReader::open(&p, None)), &["truncated"]);
    let p = write(&dir, "e.npy", &npy("|u1", false, &[0, 256], &[]));
    assert_empty(&first_error(NpyBitsReader::open(&p, None)));
    let p = write(&dir, "c0.npy", &npy("|u1", false, &[3, 0], &[]));
    assert_format(
        &first_error(NpyBitsReader::open(&p, None)),
        &["no features"],
    );
    let p = write(&dir, "junk.npy", b"this is not numpy");
    assert_format(&first_error(NpyBitsReader::open(&p, None)), &["not a .npy"]);
    let p = write(&dir, "empty.npy", b"");
    assert_format(&first_error(NpyBitsReader::open(&p, None)), &["not a .npy"]);
}

#[test]
fn npy_ids_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "b.npy", &npy("|u1", false, &[3, 1], &[1, 2, 3]));
    let ids = write(&dir, "ids.txt", b"a\nb\n\nc\n");
    let (got, _) = read_path(NpyBitsReader::open(&p, Some(&ids)));
    assert_eq!(got, vec!["a", "b", "c"]);
    let ids_gz = write(&dir, "ids.txt.gz", &gzip(b"a\nb\nc"));
    let (got, _) = read_path(NpyBitsReader::open(&p, Some(&ids_gz)));
    assert_eq!(got, vec!["a", "b", "c"]);
    // Trimmed, CRLF and blank lines (also trailing ones) skipped, as read_id_list does.
    let ws = write(&dir, "ws.txt", b"\n  a \r\n\t\nb\r\n c\n\n \n");
    let (got, _) = read_path(NpyBitsReader::open(&p, Some(&ws)));
    assert_eq!(got, vec!["a", "b", "c"]);
    let d = write(&dir, "d.npy", &npy("<f4", false, &[3, 1], &[0; 12]));
    let c = write(&dir, "c.npy", &npy("<u2", false, &[3, 1], &[0; 6]));
    let short = write(&dir, "short.txt", b"a\nb\n");
    let long = write(&dir, "long.txt", b"a\nb\nc\n\nd\ne\n");
    for (ids, needles) in [(&short, ["2 ids", "3 rows"]), (&long, ["5 ids", "3 rows"])] {
        for e in [
            first_error(NpyBitsReader::open(&p, Some(ids))),
            first_error(NpyDenseReader::open(&d, Some(ids))),
            first_error(NpyCountsReader::open(&c, Some(ids))),
        ] {
            assert_format(&e, &needles);
            assert!(
                matches!(&e, Error::Format { path, .. } if path == ids),
                "{e:?}"
            );
        }
    }
    // A missing ids file fails at open.
    let e = NpyBitsReader::open(&p, Some(&dir.path().join("none.txt")))
        .err()
        .unwrap();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    // An id that is not UTF-8 names its line.
    let bad = write(&dir, "bad.txt", b"a\n\nb\xff\nc\n");
    assert_parse(
        &first_error(NpyBitsReader::open(&p, Some(&bad))),
        3,
        "UTF-8",
    );
    // Duplicates are the engine's to find (by hash over the whole pool); the reader passes them.
    let dup = write(&dir, "dup.txt", b"a\nb\na\n");
    let (got, _) = read_path(NpyBitsReader::open(&p, Some(&dup)));
    assert_eq!(got, vec!["a", "b", "a"]);
}

/// The ids of each tile, read as tiles of `tile_rows`; the first error ends the pass.
fn tile_ids(r: &mut dyn PoolReader, tile_rows: usize) -> Vec<poolrank::Result<Vec<String>>> {
    let mut tile = Tile::new(r.kind());
    let mut out = Vec::new();
    loop {
        match r.read_tile(tile_rows, &mut tile) {
            Ok(true) => out.push(Ok(tile.ids.clone())),
            Ok(false) => return out,
            Err(e) => {
                out.push(Err(e));
                return out;
            }
        }
    }
}

/// Every array reader streams its ids file tile by tile: the ids of each tile are the file's
/// lines for those rows, and a count mismatch is an error from the tile that finds it.
#[test]
fn ids_files_stream_across_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let rows = 10;
    let bits = write(&dir, "b.npy", &npy("|u1", false, &[rows, 2], &[0x81; 20]));
    let dense = write(&dir, "d.npy", &npy("<f8", false, &[rows, 1], &[0; 80]));
    let counts = write(&dir, "c.npy", &npy("|u1", false, &[rows, 3], &[1; 30]));
    let csr = Csr::from_rows(4, &vec![vec![(1, 2)]; rows]);
    let npz = write(&dir, "c.npz", &csr.npz(true));
    let names: Vec<String> = (0..rows).map(|i| format!("mol-{i}")).collect();
    // Blank lines between ids, and a gzip copy whose blocks do not follow lines.
    let mut text = String::new();
    for (i, n) in names.iter().enumerate() {
        text.push_str(&format!("{}{n} \n", if i % 4 == 1 { "\n  \n" } else { "" }));
    }
    let plain = write(&dir, "ids.txt", text.as_bytes());
    let gz = write(&dir, "ids.txt.gz", &gzip(text.as_bytes()));
    let few = write(&dir, "few.txt", names[..6].join("\n").as_bytes());
    let many_text = format!("{text}\nextra1\n\nextra2");
    let many = write(&dir, "many.txt", many_text.as_bytes());
    type Opener<'a> = Box<dyn Fn(&Path) -> Box<dyn PoolReader> + 'a>;
    let opens: Vec<(&str, Opener)> = vec![
        (
            "bits npy",
            Box::new(|i| Box::new(NpyBitsReader::open(&bits, Some(i)).unwrap())),
        ),
        (
            "dense npy",
            Box::new(|i| Box::new(NpyDenseReader::open(&dense, Some(i)).unwrap())),
        ),
        (
            "counts npy",
            Box::new(|i| Box::new(NpyCountsReader::open(&counts, Some(i)).unwrap())),
        ),
        (
            "npz",
            Box::new(|i| Box::new(NpzCountsReader::open(&npz, Some(i)).unwrap())),
        ),
    ];
    for (name, open) in &opens {
        for t in [1, 3, 7, rows, 1000] {
            for ids in [&plain, &gz] {
                let got = tile_ids(open(ids).as_mut(), t);
                let expect: Vec<Vec<String>> = names.chunks(t).map(|c| c.to_vec()).collect();
                let got: Vec<Vec<String>> = got.into_iter().map(|r| r.unwrap()).collect();
                assert_eq!(got, expect, "{name} tile {t} {}", ids.display());
            }
            // Too few: the tiles the file covers are read, then the tile that runs out fails.
            let got = tile_ids(open(&few).as_mut(), t);
            let ok = 6 / t;
            assert_eq!(got.len(), ok + 1, "{name} tile {t}");
            assert!(got[..ok].iter().all(|r| r.is_ok()), "{name} tile {t}");
            let e = got[ok].as_ref().unwrap_err();
            assert_format(e, &["6 ids", "10 rows", "one id per row"]);
            assert!(
                matches!(e, Error::Format { path, .. } if *path == few),
                "{e:?}"
            );
            // Too many: the tile holding the last row fails, counting every id in the file.
            let got = tile_ids(open(&many).as_mut(), t);
            let tiles = rows.div_ceil(t);
            assert_eq!(got.len(), tiles, "{name} tile {t}");
            assert!(
                got[..tiles - 1].iter().all(|r| r.is_ok()),
                "{name} tile {t}"
            );
            let e = got[tiles - 1].as_ref().unwrap_err();
            assert_format(e, &["12 ids", "10 rows"]);
            assert!(
                matches!(e, Error::Format { path, .. } if *path == many),
                "{e:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tiling

/// Every reader gives the same rows and correct starts whatever the tile size.
#[test]
fn tiles_concatenate_to_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(3);
    let rows = 29;
    let nbits = 200;
    let bits = random_bits(&mut rng, rows, nbits);
    let ids: Vec<String> = (0..rows).map(|i| format!("id{i}")).collect();
    let fps = write(&dir, "a.fps", fps_text(&bits, nbits, &ids, true).as_bytes());
    let bnpy = write(
        &dir,
        "b.npy",
        &npy("|u1", false, &[rows, 25], &packbits(&bits, nbits, rows)),
    );
    let dense: Vec<f32> = (0..rows * 3).map(|i| i as f32 * 0.5 - 3.0).collect();
    let dnpy = write(
        &dir,
        "d.npy",
        &npy(
            "<f4",
            false,
            &[rows, 3],
            &le_bytes(&dense, f32::to_le_bytes),
        ),
    );
    let mut csv = String::from("id,a,b,c\n");
    for r in 0..rows {
        csv.push_str(&format!(
            "{},{},{},{}\n",
            ids[r],
            dense[3 * r],
            dense[3 * r + 1],
            dense[3 * r + 2]
        ));
    }
    let csvp = write(&dir, "d.csv", csv.as_bytes());
    let count_rows: Vec<Vec<(usize, u32)>> = (0..rows)
        .map(|r| {
            (0..40)
                .filter(|c| (r * 7 + c * 3) % 5 == 0)
                .map(|c| (c, (r + c) as u32 % 4 + 1))
                .collect()
        })
        .collect();
    let npz = write(&dir, "c.npz", &Csr::from_rows(40, &count_rows).npz(true));
    type Opener = Box<dyn Fn() -> Box<dyn PoolReader>>;
    let opens: Vec<(&str, Opener)> = vec![
        (
            "fps",
            Box::new(move || Box::new(FpsReader::open(&fps).unwrap())),
        ),
        (
            "bits npy",
            Box::new(move || Box::new(NpyBitsReader::open(&bnpy, None).unwrap())),
        ),
        (
            "dense npy",
            Box::new(move || Box::new(NpyDenseReader::open(&dnpy, None).unwrap())),
        ),
        (
            "dense csv",
            Box::new(move || Box::new(DenseCsvReader::open(&csvp, "id").unwrap())),
        ),
        (
            "npz",
            Box::new(move || Box::new(NpzCountsReader::open(&npz, None).unwrap())),
        ),
    ];
    for (name, open) in &opens {
        let whole = read_all(open().as_mut(), 1000).unwrap();
        assert_eq!(whole.0.len(), rows, "{name}");
        for t in [1, 3, 7, 1000] {
            let mut r = open();
            let mut tile = Tile::new(r.kind());
            let mut starts = Vec::new();
            let mut lens = Vec::new();
            while r.read_tile(t, &mut tile).unwrap() {
                starts.push(tile.start);
                lens.push(tile.len());
            }
            let expect_starts: Vec<usize> = (0..rows).step_by(t).collect();
            assert_eq!(starts, expect_starts, "{name} tile {t}");
            assert!(
                lens.iter().rev().skip(1).all(|&l| l == t),
                "{name} tile {t}"
            );
            let part = read_all(open().as_mut(), t).unwrap();
            assert_eq!(part, whole, "{name} tile {t}");
        }
    }
    // The dense npy and the CSV hold the same rows.
    let (_, a) = read_all(opens[2].1().as_mut(), 5).unwrap();
    let (_, b) = read_all(opens[3].1().as_mut(), 5).unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_tile_of_zero_rows_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "a.fps", b"0f\tx\n");
    let mut r = FpsReader::open(&p).unwrap();
    let mut t = Tile::new(r.kind());
    assert!(matches!(
        r.read_tile(0, &mut t),
        Err(Error::InvalidParam { .. })
    ));
}

#[test]
fn a_tile_of_another_kind_is_reset() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "a.fps", b"0f\tx\n");
    let mut r = FpsReader::open(&p).unwrap();
    let mut t = Tile::new(FeatureKind::Dense { dim: 3 });
    assert!(r.read_tile(4, &mut t).unwrap());
    assert_eq!(
        t.features,
        Features::Bits {
            nbits: 8,
            data: vec![15]
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Counts

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

#[test]
fn counts_npy_all_integer_dtypes() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(5);
    let (rows, cols) = (13, 37);
    let counts = dense_counts(rows, cols, &mut rng);
    let expected = counts_features(&counts, cols);
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("|u1", counts.iter().map(|&v| v as u8).collect()),
        ("<u2", le_bytes(&counts, |v| (v as u16).to_le_bytes())),
        (">u2", le_bytes(&counts, |v| (v as u16).to_be_bytes())),
        ("<u4", le_bytes(&counts, u32::to_le_bytes)),
        ("<u8", le_bytes(&counts, |v| u64::from(v).to_le_bytes())),
        ("|i1", counts.iter().map(|&v| v as u8 & 0x7f).collect()),
        ("<i2", le_bytes(&counts, |v| (v as i16).to_le_bytes())),
        ("<i4", le_bytes(&counts, |v| (v as i32).to_le_bytes())),
        ("<i8", le_bytes(&counts, |v| i64::from(v).to_le_bytes())),
    ];
    for (descr, bytes) in files {
        let p = write(&dir, "c.npy", &npy(descr, false, &[rows, cols], &bytes));
        let mut r = NpyCountsReader::open(&p, None).unwrap();
        assert_eq!(r.kind(), FeatureKind::Counts { ndim: cols });
        assert_eq!(r.len_hint(), Some(rows));
        let (ids, f) = read_all(&mut r, 4).unwrap();
        assert_eq!(ids, row_ids(rows));
        if descr == "|i1" {
            let c7: Vec<u32> = counts.iter().map(|&v| v & 0x7f).collect();
            assert_eq!(f, counts_features(&c7, cols), "{descr}");
        } else {
            assert_eq!(f, expected, "{descr}");
        }
    }
    // Version 2 headers.
    let p = write(
        &dir,
        "v2.npy",
        &npy_v2("<u4", &[rows, cols], &le_bytes(&counts, u32::to_le_bytes)),
    );
    assert_eq!(read_path(NpyCountsReader::open(&p, None)).1, expected);
}

#[test]
fn counts_npy_errors() {
    let dir = tempfile::tempdir().unwrap();
    let v: Vec<i32> = vec![1, 0, 2, 3, 0, -4];
    let p = write(
        &dir,
        "n.npy",
        &npy("<i4", false, &[2, 3], &le_bytes(&v, i32::to_le_bytes)),
    );
    assert_format(
        &first_error(NpyCountsReader::open(&p, None)),
        &["row 1, column 2", "-4"],
    );
    let p = write(&dir, "f.npy", &npy("<f8", false, &[2, 3], &[0; 48]));
    assert_format(
        &first_error(NpyCountsReader::open(&p, None)),
        &["'<f8'", "integer"],
    );
    let big: Vec<u64> = vec![1, 1 << 40];
    let p = write(
        &dir,
        "big.npy",
        &npy("<u8", false, &[1, 2], &le_bytes(&big, u64::to_le_bytes)),
    );
    assert_format(
        &first_error(NpyCountsReader::open(&p, None)),
        &["row 0, column 1", "too large"],
    );
    let p = write(&dir, "e.npy", &npy("<u2", false, &[0, 3], &[]));
    assert_empty(&first_error(NpyCountsReader::open(&p, None)));
}

#[test]
fn npz_equals_dense_npy() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(17);
    let (rows, cols) = (31, 50);
    let counts = dense_counts(rows, cols, &mut rng);
    let expected = counts_features(&counts, cols);
    let dense = write(
        &dir,
        "c.npy",
        &npy(
            "<u4",
            false,
            &[rows, cols],
            &le_bytes(&counts, u32::to_le_bytes),
        ),
    );
    assert_eq!(read_path(NpyCountsReader::open(&dense, None)).1, expected);
    let rows_list: Vec<Vec<(usize, u32)>> = counts
        .chunks(cols)
        .map(|r| {
            r.iter()
                .enumerate()
                .filter(|(_, &v)| v > 0)
                .map(|(c, &v)| (c, v))
                .collect()
        })
        .collect();
    let base = Csr::from_rows(cols, &rows_list);
    let data_u32: Vec<u32> = rows_list.iter().flatten().map(|&(_, v)| v).collect();
    type Variant = (&'static str, &'static str, &'static str, Vec<u8>, bool);
    let variants: Vec<Variant> = vec![
        (
            "<i4",
            "<i4",
            "<i4",
            le_bytes(&data_u32, |v| (v as i32).to_le_bytes()),
            false,
        ),
        (
            "<i8",
            "<i8",
            "|u1",
            data_u32.iter().map(|&v| v as u8).collect(),
            false,
        ),
        (
            "<i4",
            "<u4",
            "<u2",
            le_bytes(&data_u32, |v| (v as u16).to_le_bytes()),
            false,
        ),
        (
            "<i8",
            "<i4",
            "<u8",
            le_bytes(&data_u32, |v| u64::from(v).to_le_bytes()),
            false,
        ),
        (
            "<i4",
            "<i4",
            "<f8",
            le_bytes(&data_u32, |v| f64::from(v).to_le_bytes()),
            false,
        ),
        (
            "<i4",
            "<i4",
            "<f4",
            le_bytes(&data_u32, |v| (v as f32).to_le_bytes()),
            false,
        ),
        (
            "<i4",
            "<i4",
            "<i2",
            le_bytes(&data_u32, |v| (v as i16).to_le_bytes()),
            false,
        ),
        // Older scipy wrote the format as a unicode scalar.
        (
            "<i4",
            "<i4",
            "<i4",
            le_bytes(&data_u32, |v| (v as i32).to_le_bytes()),
            true,
        ),
    ];
    for (indptr_d, indices_d, data_d, data, unicode) in variants {
        let csr = Csr {
            indptr_descr: indptr_d,
            indices_descr: indices_d,
            data_descr: data_d,
            data,
            format: "csr",
            shape: base.shape,
            indptr: base.indptr.clone(),
            indices: base.indices.clone(),
        };
        let mut members = csr.members();
        if unicode {
            let chars: Vec<u8> = "csr"
                .chars()
                .flat_map(|c| (c as u32).to_le_bytes())
                .collect();
            members[2].1 = npy("<U3", false, &[], &chars);
        }
        for deflated in [false, true] {
            let p = write(&dir, "c.npz", &zip_bytes(&members, deflated));
            let mut r = NpzCountsReader::open(&p, None).unwrap();
            assert_eq!(r.kind(), FeatureKind::Counts { ndim: cols });
            assert_eq!(r.len_hint(), Some(rows));
            let (ids, f) = read_all(&mut r, 6).unwrap();
            assert_eq!(ids, row_ids(rows));
            assert_eq!(
                f, expected,
                "{indptr_d} {indices_d} {data_d} deflated={deflated}"
            );
        }
    }
}

#[test]
fn npz_unsorted_and_duplicate_indices() {
    let dir = tempfile::tempdir().unwrap();
    let mut csr = Csr::from_rows(6, &[]);
    csr.shape = (4, 6);
    csr.indptr = vec![0, 3, 3, 7, 9];
    csr.indices = vec![5, 1, 5, /* row 2 */ 4, 0, 4, 2, /* row 3 */ 3, 3];
    let data: Vec<i32> = vec![1, 2, 4, 3, 0, 0, 7, 2, 5];
    csr.data = le_bytes(&data, i32::to_le_bytes);
    let p = write(&dir, "u.npz", &csr.npz(true));
    let (_, f) = read_path(NpzCountsReader::open(&p, None));
    assert_eq!(
        f,
        Features::Counts {
            ndim: 6,
            indptr: vec![0, 2, 2, 4, 5],
            indices: vec![1, 5, 2, 4, 3],
            values: vec![2, 5, 7, 3, 7],
        }
    );
    // With an ids file.
    let ids = write(&dir, "ids.txt", b"w\nx\ny\nz\n");
    let (got, _) = read_path(NpzCountsReader::open(&p, Some(&ids)));
    assert_eq!(got, vec!["w", "x", "y", "z"]);
    let bad = write(&dir, "ids3.txt", b"w\nx\ny\n");
    assert_format(
        &first_error(NpzCountsReader::open(&p, Some(&bad))),
        &["3 ids", "4 rows"],
    );
}

#[test]
fn npz_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = || {
        Csr::from_rows(
            5,
            &[vec![(0, 1), (3, 2)], vec![(1, 1)], vec![(2, 3), (4, 1)]],
        )
    };

    let mut c = good();
    c.format = "coo";
    let p = write(&dir, "coo.npz", &c.npz(true));
    assert_format(
        &first_error(NpzCountsReader::open(&p, None)),
        &["\"coo\"", "only CSR", "tocsr()"],
    );

    let mut c = good();
    c.indices[3] = 5;
    let p = write(&dir, "idx.npz", &c.npz(false));
    assert_format(
        &first_error(NpzCountsReader::open(&p, None)),
        &["row 2", "column index 5", "5 columns"],
    );

    let mut c = good();
    c.indices[2] = -1;
    let p = write(&dir, "negidx.npz", &c.npz(false));
    assert_format(
        &first_error(NpzCountsReader::open(&p, None)),
        &["row 1", "-1"],
    );

    let mut c = good();
    c.data = le_bytes(&[1i32, 2, -3, 1, 1], i32::to_le_bytes);
    let p = write(&dir, "neg.npz", &c.npz(true));
    assert_format(
        &first_error(NpzCountsReader::open(&p, None)),
        &["row 1", "-3 is negative"],
    );

    let mut c = good();
    c.data_descr = "<f8";
    c.data = le_bytes(&[1.0f64, 2.0, 1.0, 2.5, 1.0], f64::to_le_bytes);
    let p = write(&dir, "frac.npz", &c.npz(true));
    assert_format(
        &first_error(NpzCountsReader::open(&p, None)),
        &["row 2", "2.5", "whole"],
    );

    let mut c = good();
    c.indptr = vec![0, 2, 1, 5];
    let p = write(&dir, "dec.npz", &c.npz(false));
    assert_format(
        &first_error(NpzCountsReader::open(&p, None)),
        &["indptr", "row 1"],
    );

    let mut c = good();
    c.indptr = vec![0, 2, 3, 9];
    let p = write(&dir, "past.npz", &c.npz(false));
    assert_format(
        &first_error(NpzCountsReader::open(&p, None)),
        &["indptr", "row 2"],
    );

    let mut c = good();
    c.indptr = vec![0, 2, 3, 4];
    let p = write(&dir, "short.npz", &c.npz(false));
    assert_format(
        &first_error(NpzCountsReader::open(&p, None)),
        &["indptr.npy ends at 4", "5 entries"],
    );

    let mut c = good();
    c.indptr = vec![1, 2, 3, 5];
    let p = write(&dir, "start.npz", &c.npz(false));
    assert_format(
        &first_error(NpzCountsReader::open(&p, None)),
        &["starts at 1"],
    );

    let mut c = good();
    c.indptr = vec![0, 2, 5];
    let p = write(&dir, "rows.npz", &c.npz(false));
    assert_format(
        &first_error(NpzCountsReader::open(&p, None)),
        &["indptr.npy has 3 entries", "4"],
    );

    let mut c = good();
    c.shape = (0, 5);
    c.indptr = vec![0];
    c.indices.clear();
    c.data.clear();
    let p = write(&dir, "empty.npz", &c.npz(true));
    assert_empty(&first_error(NpzCountsReader::open(&p, None)));

    // Members missing or malformed.
    let members = good().members();
    let without = |name: &str| -> Vec<(&str, Vec<u8>)> {
        members
            .iter()
            .filter(|(n, _)| *n != name)
            .map(|(n, b)| (*n, b.clone()))
            .collect()
    };
    let p = write(&dir, "nofmt.npz", &zip_bytes(&without("format.npy"), true));
    assert_format(
        &first_error(NpzCountsReader::open(&p, None)),
        &["no format.npy", "save_npz"],
    );
    let p = write(&dir, "nodata.npz", &zip_bytes(&without("data.npy"), true));
    assert_format(
        &first_error(NpzCountsReader::open(&p, None)),
        &["data.npy is missing"],
    );
    let mut m = members.clone();
    let keep = m[4].1.len() - 3;
    m[4].1.truncate(keep);
    let p = write(&dir, "trunc.npz", &zip_bytes(&m, true));
    assert_format(&first_error(NpzCountsReader::open(&p, None)), &["data.npy"]);
    let mut m = members.clone();
    m[0].1 = npy("<f4", false, &[5], &[0; 20]);
    let p = write(&dir, "fidx.npz", &zip_bytes(&m, false));
    assert_format(
        &first_error(NpzCountsReader::open(&p, None)),
        &["indices.npy", "'<f4'"],
    );
    let p = write(&dir, "junk.npz", b"PK\x03\x04 but not really a zip");
    assert_format(&first_error(NpzCountsReader::open(&p, None)), &["zip"]);

    // A corrupted byte inside a stored member's data is caught by the CRC.
    let mut bytes = good().npz(false);
    let needle = npy(
        "<i4",
        false,
        &[5],
        &le_bytes(&[1i32, 2, 1, 3, 1], i32::to_le_bytes),
    );
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .unwrap();
    bytes[at + needle.len() - 4] = 2; // data[4] stays a valid count: only the CRC can tell.
    let p = write(&dir, "crc.npz", &bytes);
    assert_format(&first_error(NpzCountsReader::open(&p, None)), &["CRC"]);
}

// ---------------------------------------------------------------------------------------------
// Dense features

#[test]
fn dense_npy_f4_f8_and_csv_agree() {
    let dir = tempfile::tempdir().unwrap();
    let (rows, dim) = (11, 4);
    let vals: Vec<f32> = (0..rows * dim)
        .map(|i| ((i * 37) % 101) as f32 / 8.0 - 5.0)
        .collect();
    let expected = Features::Dense {
        dim,
        data: vals.clone(),
    };
    let f4 = write(
        &dir,
        "a.npy",
        &npy(
            "<f4",
            false,
            &[rows, dim],
            &le_bytes(&vals, f32::to_le_bytes),
        ),
    );
    let f8 = write(
        &dir,
        "b.npy",
        &npy(
            "<f8",
            false,
            &[rows, dim],
            &le_bytes(&vals, |v| f64::from(v).to_le_bytes()),
        ),
    );
    let be = write(
        &dir,
        "c.npy",
        &npy(
            ">f4",
            false,
            &[rows, dim],
            &le_bytes(&vals, f32::to_be_bytes),
        ),
    );
    for p in [&f4, &f8, &be] {
        let mut r = NpyDenseReader::open(p, None).unwrap();
        assert_eq!(r.kind(), FeatureKind::Dense { dim });
        assert_eq!(r.len_hint(), Some(rows));
        let (ids, f) = read_all(&mut r, 3).unwrap();
        assert_eq!(ids, row_ids(rows));
        assert_eq!(f, expected);
    }
    let mut csv = String::from("f0,f1,name,f2,f3\n");
    let mut names = Vec::new();
    for r in 0..rows {
        let v = &vals[r * dim..(r + 1) * dim];
        names.push(format!("cand {r}"));
        csv.push_str(&format!(
            "{},{},\"cand {r}\",{},{}\n",
            v[0], v[1], v[2], v[3]
        ));
    }
    for (name, bytes) in [
        ("d.csv", csv.clone().into_bytes()),
        ("d.csv.gz", gzip(csv.as_bytes())),
    ] {
        let p = write(&dir, name, &bytes);
        let mut r = DenseCsvReader::open(&p, "name").unwrap();
        assert_eq!(r.kind(), FeatureKind::Dense { dim });
        assert_eq!(r.len_hint(), None);
        let (ids, f) = read_all(&mut r, 4).unwrap();
        assert_eq!(ids, names);
        assert_eq!(f, expected);
    }
}

#[test]
fn dense_npy_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (bad, word) in [(f32::NAN, "NaN"), (f32::INFINITY, "infinite")] {
        let mut v = vec![1.0f32; 12];
        v[7] = bad;
        let p = write(
            &dir,
            "n.npy",
            &npy("<f4", false, &[4, 3], &le_bytes(&v, f32::to_le_bytes)),
        );
        assert_format(
            &first_error(NpyDenseReader::open(&p, None)),
            &["row 2, column 1", word],
        );
    }
    let p = write(&dir, "i.npy", &npy("<i4", false, &[1, 1], &[0; 4]));
    assert_format(
        &first_error(NpyDenseReader::open(&p, None)),
        &["'<i4'", "float32", "float64"],
    );
    let p = write(&dir, "f2.npy", &npy("<f2", false, &[1, 1], &[0; 2]));
    assert_format(&first_error(NpyDenseReader::open(&p, None)), &["'<f2'"]);
    let p = write(&dir, "e.npy", &npy("<f8", false, &[0, 3], &[]));
    assert_empty(&first_error(NpyDenseReader::open(&p, None)));
}

#[test]
fn dense_csv_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, usize, &str)] = &[
        (
            "id,a,b\nx,1,2\ny,1,oops\n",
            3,
            "column \"b\": \"oops\" is not a number",
        ),
        ("id,a,b\nx,1,2\ny,NaN,2\n", 3, "column \"a\""),
        ("id,a,b\nx,1,2\ny,1,-inf\n", 3, "infinite"),
        ("id,a,b\nx,1,2\ny,1,1e39\n", 3, "infinite"),
        (
            "id,a,b\nx,1,2\ny,1,2,3\n",
            3,
            "the row has 4 fields but the header has 3",
        ),
        (
            "id,a,b\nx,1,2\ny,1\n",
            3,
            "the row has 2 fields but the header has 3",
        ),
        ("id,a,b\nx,1,\n", 2, "column \"b\" is empty"),
        ("id,a,b\n,1,2\n", 2, "empty id"),
    ];
    for (i, &(text, line, needle)) in cases.iter().enumerate() {
        let p = write(&dir, &format!("e{i}.csv"), text.as_bytes());
        let e = first_error(DenseCsvReader::open(&p, "id"));
        assert_parse(&e, line, needle);
        assert!(e.to_string().contains(&format!("e{i}.csv:{line}:")), "{e}");
    }
    let p = write(&dir, "noid.csv", b"name,a\nx,1\n");
    assert_parse(
        &first_error(DenseCsvReader::open(&p, "id")),
        1,
        "the columns are: \"name\", \"a\"",
    );
    let p = write(&dir, "onlyid.csv", b"id\nx\n");
    assert_parse(
        &first_error(DenseCsvReader::open(&p, "id")),
        1,
        "feature columns",
    );
    for (i, text) in ["", "id,a,b\n"].iter().enumerate() {
        let p = write(&dir, &format!("empty{i}.csv"), text.as_bytes());
        assert_empty(&first_error(DenseCsvReader::open(&p, "id")));
    }
}

// ---------------------------------------------------------------------------------------------
// Labels and ids

#[test]
fn labels_round_trip_plain_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let text = "id,smiles,score\nmol0,CCO,-7.5\nmol1,\"C,C\",3\r\nmol2,CN,1e-3\n";
    for (name, bytes) in [
        ("l.csv", text.as_bytes().to_vec()),
        ("l.csv.gz", gzip(text.as_bytes())),
    ] {
        let l = read_labels(&LabelSpec::new(write(&dir, name, &bytes))).unwrap();
        assert_eq!(l.ids, vec!["mol0", "mol1", "mol2"]);
        assert_eq!(l.values, vec![-7.5, 3.0, 1e-3]);
        assert_eq!(l.lines, vec![2, 3, 4]);
    }
    let spec = LabelSpec {
        path: write(&dir, "c.csv", b"smiles,y,name\nC,1,a\n"),
        id_col: "name".into(),
        y_col: "y".into(),
    };
    let l = read_labels(&spec).unwrap();
    assert_eq!((l.ids, l.values), (vec!["a".to_string()], vec![1.0]));
    // A header alone is zero labels, not an error.
    let l = read_labels(&LabelSpec::new(write(&dir, "h.csv", b"id,score\n"))).unwrap();
    assert!(l.ids.is_empty() && l.values.is_empty() && l.lines.is_empty());
}

#[test]
fn label_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, usize, &str)] = &[
        (
            "name,score\na,1\n",
            1,
            "the columns are: \"name\", \"score\"",
        ),
        ("id,y\na,1\n", 1, "\"score\""),
        ("id,score\na,1\nb,\n", 3, "empty value"),
        (
            "id,score\na,1\nb\n",
            3,
            "the row has 1 fields but the header has 2",
        ),
        ("id,score\na,1\nb,high\n", 3, "\"high\" is not a number"),
        ("id,score\na,nan\n", 2, "NaN"),
        ("id,score\na,1\nb,inf\n", 3, "infinite"),
        ("id,score\na,1\n,2\n", 3, "empty id"),
    ];
    for (i, &(text, line, needle)) in cases.iter().enumerate() {
        let p = write(&dir, &format!("l{i}.csv"), text.as_bytes());
        let e = read_labels(&LabelSpec::new(&p)).unwrap_err();
        assert_parse(&e, line, needle);
        assert!(e.to_string().contains(&format!("l{i}.csv:{line}:")), "{e}");
    }
    let p = write(&dir, "dup.csv", b"id,score\na,1\nb,2\n\na,3\n");
    let e = read_labels(&LabelSpec::new(&p)).unwrap_err();
    match &e {
        Error::DuplicateId { id, where_, .. } => {
            assert_eq!(id, "a");
            assert_eq!(where_, "lines 2 and 5");
        }
        _ => panic!("{e:?}"),
    }
    assert!(e.to_string().contains("dup.csv"), "{e}");
    let e = read_labels(&LabelSpec::new(dir.path().join("missing.csv"))).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
}

#[test]
fn id_lists() {
    let dir = tempfile::tempdir().unwrap();
    let text = "  a\n\nb \r\n\t\nc";
    for (name, bytes) in [
        ("i.txt", text.as_bytes().to_vec()),
        ("i.txt.gz", gzip(text.as_bytes())),
    ] {
        assert_eq!(
            read_id_list(&write(&dir, name, &bytes)).unwrap(),
            vec!["a", "b", "c"]
        );
    }
    let e = read_id_list(&write(&dir, "d.txt", b"a\nb\nc\nb\n")).unwrap_err();
    assert!(
        matches!(&e, Error::DuplicateId { id, where_, .. } if id == "b" && where_ == "lines 2 and 4"),
        "{e:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Through FilePool

#[test]
fn pool_spec_opens_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let fps = write(
        &dir,
        "p.fps.gz",
        &gzip(b"#FPS1\n#num_bits=8\n01\ta\n80\tb\n"),
    );
    let bits = write(&dir, "p.npy", &npy("|u1", false, &[2, 1], &[0x80, 0x01]));
    let counts = write(&dir, "c.npy", &npy("<u2", false, &[1, 2], &[0, 0, 5, 0]));
    let dense = write(
        &dir,
        "d.npy",
        &npy("<f8", false, &[1, 1], &2.0f64.to_le_bytes()),
    );
    let npz = write(&dir, "p.npz", &Csr::from_rows(3, &[vec![(2, 4)]]).npz(true));
    let csv = write(&dir, "p.csv", b"id,x\nq,1.5\n");
    let h = NpyHeader::read(&counts).unwrap();
    assert_eq!(h.shape, vec![1, 2]);
    assert_eq!((h.dtype.kind, h.dtype.size), ('u', 2));
    for (p, kind) in [
        (&fps, FeatureKind::Bits { nbits: 8 }),
        (&bits, FeatureKind::Bits { nbits: 8 }),
        (&counts, FeatureKind::Counts { ndim: 2 }),
        (&dense, FeatureKind::Dense { dim: 1 }),
        (&npz, FeatureKind::Counts { ndim: 3 }),
        (&csv, FeatureKind::Dense { dim: 1 }),
    ] {
        let mut r = FilePool::new(p).open_owned().unwrap();
        assert_eq!(r.kind(), kind, "{}", p.display());
        let (_, f) = read_all(r.as_mut(), 10).unwrap();
        match p.file_name().unwrap().to_str().unwrap() {
            "p.fps.gz" | "p.npy" => assert_eq!(
                f,
                Features::Bits {
                    nbits: 8,
                    data: vec![1, 0x80]
                }
            ),
            "c.npy" => assert_eq!(f.counts_row(0), Some((&[1u32][..], &[5u32][..]))),
            "p.npz" => assert_eq!(f.counts_row(0), Some((&[2u32][..], &[4u32][..]))),
            "d.npy" => assert_eq!(f.dense_row(0), Some(&[2.0f32][..])),
            _ => assert_eq!(f.dense_row(0), Some(&[1.5f32][..])),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Random sparse counts: npz (either compression, shuffled rows with split duplicates)
        /// reads as the dense npy does, in any tile size.
        #[test]
        fn npz_matches_npy(
            rows in 1usize..20,
            cols in 1usize..70,
            seed in any::<u64>(),
            tile in 1usize..9,
            deflated in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut rng = Rng(seed | 1);
            let counts = dense_counts(rows, cols, &mut rng);
            let mut rows_list = Vec::new();
            for row in counts.chunks(cols) {
                let mut entries = Vec::new();
                for (c, &v) in row.iter().enumerate() {
                    if v == 0 {
                        if rng.below(8) == 0 {
                            entries.push((c, 0)); // explicit zeros are dropped
                        }
                    } else if v > 1 && rng.below(3) == 0 {
                        let a = 1 + rng.below(u64::from(v) - 1) as u32;
                        entries.push((c, a));
                        entries.push((c, v - a));
                    } else {
                        entries.push((c, v));
                    }
                }
                // Shuffle (Fisher-Yates).
                for i in (1..entries.len()).rev() {
                    let j = rng.below(i as u64 + 1) as usize;
                    entries.swap(i, j);
                }
                rows_list.push(entries);
            }
            let npz = write(&dir, "c.npz", &Csr::from_rows(cols, &rows_list).npz(deflated));
            let npy_p = write(&dir, "c.npy", &npy("<u4", false, &[rows, cols], &le_bytes(&counts, u32::to_le_bytes)));
            let mut a = NpzCountsReader::open(&npz, None).unwrap();
            let mut b = NpyCountsReader::open(&npy_p, None).unwrap();
            let ra = read_all(&mut a, tile).unwrap();
            let rb = read_all(&mut b, tile).unwrap();
            prop_assert_eq!(&ra.1, &counts_features(&counts, cols));
            prop_assert_eq!(ra, rb);
        }

        /// Random widths: FPS (plain) and packbits npy agree when the width is whole bytes.
        #[test]
        fn fps_matches_npy(bytes in 1usize..300, rows in 1usize..12, seed in any::<u64>()) {
            let dir = tempfile::tempdir().unwrap();
            let nbits = 8 * bytes;
            let mut rng = Rng(seed | 1);
            let data = random_bits(&mut rng, rows, nbits);
            let ids = row_ids(rows);
            let fps = write(&dir, "a.fps", fps_text(&data, nbits, &ids, rng.below(2) == 0).as_bytes());
            let npy_p = write(&dir, "a.npy", &npy("|u1", false, &[rows, bytes], &packbits(&data, nbits, rows)));
            let a = read_path(FpsReader::open(&fps));
            let b = read_path(NpyBitsReader::open(&npy_p, None));
            prop_assert_eq!(&a.1, &Features::Bits { nbits, data });
            prop_assert_eq!(a, b);
        }

        /// No input makes a reader panic: arbitrary bytes after valid prefixes.
        #[test]
        fn garbage_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..200), cut in 0usize..400) {
            let dir = tempfile::tempdir().unwrap();
            let mut npy_b = npy("|u1", false, &[3, 2], &[1, 2, 3, 4, 5, 6]);
            npy_b.truncate(cut.min(npy_b.len()));
            npy_b.extend_from_slice(&tail);
            let p = write(&dir, "g.npy", &npy_b);
            let _ = NpyBitsReader::open(&p, None).map(|mut r| read_all(&mut r, 2));
            let _ = NpyCountsReader::open(&p, None).map(|mut r| read_all(&mut r, 2));
            let _ = NpyHeader::read(&p);
            let mut z = Csr::from_rows(4, &[vec![(1, 2)], vec![(3, 1)]]).npz(false);
            let at = cut.min(z.len().saturating_sub(1));
            for (i, b) in tail.iter().enumerate() {
                if let Some(x) = z.get_mut(at + i) {
                    *x ^= b;
                }
            }
            let p = write(&dir, "g.npz", &z);
            let _ = NpzCountsReader::open(&p, None).map(|mut r| read_all(&mut r, 1));
            let mut f = b"#FPS1\n#num_bits=16\n0000\ta\n".to_vec();
            f.extend_from_slice(&tail);
            let p = write(&dir, "g.fps", &f);
            let _ = FpsReader::open(&p).map(|mut r| read_all(&mut r, 3));
            let mut c = b"id,a\nx,1\n".to_vec();
            c.extend_from_slice(&tail);
            let p = write(&dir, "g.csv", &c);
            let _ = DenseCsvReader::open(&p, "id").map(|mut r| read_all(&mut r, 3));
            let _ = read_labels(&LabelSpec::new(&p));
            let _ = read_id_list(&p);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The shipped data set

fn shared(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(name)
}

#[test]
#[ignore = "needs ../shared/data"]
fn shared_enamine10k_formats_agree() {
    let fps = shared("enamine10k_morgan2_2048.fps.gz");
    let npy_p = shared("enamine10k_morgan2_2048.npy");
    let npz = shared("enamine10k_morgan2_2048.counts.npz");
    let mut a = FpsReader::open(&fps).unwrap();
    let mut b = NpyBitsReader::open(&npy_p, None).unwrap();
    let mut c = NpzCountsReader::open(&npz, None).unwrap();
    assert_eq!(a.kind(), FeatureKind::Bits { nbits: 2048 });
    assert_eq!(b.kind(), FeatureKind::Bits { nbits: 2048 });
    assert_eq!(c.kind(), FeatureKind::Counts { ndim: 2048 });
    assert_eq!(b.len_hint(), Some(10449));
    assert_eq!(c.len_hint(), Some(10449));
    let (ids, fa) = read_all(&mut a, 1000).unwrap();
    let (_, fb) = read_all(&mut b, 777).unwrap();
    let (_, fc) = read_all(&mut c, 333).unwrap();
    assert_eq!(ids.len(), 10449);
    assert_eq!(ids[0], "mol0");
    assert_eq!(ids[10448], "mol10448");
    assert_eq!(fa, fb, "FPS and packbits npy differ");
    let mut total = 0usize;
    let mut max = 0u32;
    for i in 0..ids.len() {
        let words = fa.bits_row(i).unwrap();
        let set: Vec<u32> = (0..2048)
            .filter(|&j| bit(words, j))
            .map(|j| j as u32)
            .collect();
        let (idx, vals) = fc.counts_row(i).unwrap();
        assert_eq!(
            idx,
            set.as_slice(),
            "row {i}: counts pattern differs from the bits"
        );
        total += set.len();
        max = max.max(vals.iter().copied().max().unwrap_or(0));
    }
    let mean = total as f64 / ids.len() as f64;
    assert!((mean - 48.7).abs() < 0.1, "mean bits set {mean}");
    assert!(max <= 15, "max count {max}");
}

#[test]
fn presence_bits_sets_a_bit_for_each_nonzero_count() {
    let counts = Features::Counts {
        ndim: 130,
        indptr: vec![0, 3, 3, 5],
        indices: vec![0, 64, 129, 5, 7],
        values: vec![2, 1, 255, 0, 1],
    };
    let Some(Features::Bits { nbits, data }) = counts.presence_bits() else {
        panic!("counts must give bits");
    };
    assert_eq!(nbits, 130);
    let want: Vec<u64> = vec![1, 1, 1 << 1, 0, 0, 0, 1 << 7, 0, 0];
    assert_eq!(data, want);
    let dense = Features::Dense {
        dim: 2,
        data: vec![1.0, 2.0],
    };
    assert!(dense.presence_bits().is_none());
}

// ---------------------------------------------------------------------------------------------
// Inputs bounded, finite, strict (issue 13)
//
// Memory: every allocation of this test binary is seen by `Tracking`, which keeps the largest
// single request made on the current thread, so a test can assert that a reader never
// reserved more than a bound however large the sizes its input claims.

mod bounded {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    struct Tracking;

    thread_local! {
        static LARGEST: Cell<usize> = const { Cell::new(0) };
    }

    fn note(n: usize) {
        // `try_with`: allocations during a thread's teardown find no slot.
        let _ = LARGEST.try_with(|c| {
            if n > c.get() {
                c.set(n);
            }
        });
    }

    // SAFETY: forwards every call to `System` unchanged; it only records sizes.
    unsafe impl GlobalAlloc for Tracking {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            note(l.size());
            unsafe { System.alloc(l) }
        }
        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            note(l.size());
            unsafe { System.alloc_zeroed(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            note(new);
            unsafe { System.realloc(p, l, new) }
        }
    }

    #[global_allocator]
    static TRACKING: Tracking = Tracking;

    /// `f`'s result and the largest single allocation it made on this thread.
    pub(crate) fn largest_alloc<T>(f: impl FnOnce() -> T) -> (T, usize) {
        LARGEST.with(|c| c.set(0));
        let r = f();
        (r, LARGEST.with(|c| c.get()))
    }
}

use bounded::largest_alloc;
use poolrank::backend::BackendChoice;
use poolrank::data::limits::{MAX_FEATURES, MAX_LINE_BYTES, MAX_TILE_BYTES};
use poolrank::featurize::SmilesSource;

/// What a reader may reserve at most on inputs that claim huge sizes: a line, plus slack.
const BOUND: usize = 2 * MAX_LINE_BYTES;

/// Every record of a molecule file, or its first error.
fn read_molecules(p: &Path) -> poolrank::Result<Vec<poolrank::featurize::Record>> {
    let mut r = SmilesSource::new(p).open()?;
    let (mut all, mut chunk) = (Vec::new(), Vec::new());
    while r.read_chunk(3, &mut chunk)? {
        all.append(&mut chunk);
    }
    Ok(all)
}

fn assert_limit(e: &Error, needle: &str) {
    let text = e.to_string();
    assert!(
        text.contains(needle) && text.contains("at most"),
        "expected a limit naming {needle:?}, got {e:?}"
    );
}

#[test]
fn fps_num_bits_beyond_the_limit_is_refused_before_reserving() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "huge.fps",
        b"#FPS1\n#num_bits=1125899906842624\n00\ta\n",
    );
    let (r, largest) = largest_alloc(|| FpsReader::open(&p).err());
    let e = r.expect("an error");
    assert_parse(&e, 2, "features per row (#num_bits)");
    assert!(e.to_string().contains(&MAX_FEATURES.to_string()), "{e}");
    assert!(largest < BOUND, "reserved {largest} bytes");
}

/// A CSR `.npz` of one row of `n` entries (all column 0, count 0: scipy would sum them), its
/// members deflated as they are written so that the test never holds them: tiny on disk, as a
/// hostile file claiming 300M entries was.
fn npz_one_long_row(n: usize) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    let zeros = vec![0u8; 1 << 20];
    for name in ["indices.npy", "data.npy"] {
        w.start_file(name, opts).unwrap();
        w.write_all(&npy("<i4", false, &[n], &[])).unwrap();
        let mut left = 4 * n;
        while left > 0 {
            let k = left.min(zeros.len());
            w.write_all(&zeros[..k]).unwrap();
            left -= k;
        }
    }
    let small: [(&str, Vec<u8>); 3] = [
        (
            "indptr.npy",
            npy(
                "<i8",
                false,
                &[2],
                &le_bytes(&[0i64, n as i64], i64::to_le_bytes),
            ),
        ),
        ("format.npy", npy("|S3", false, &[], b"csr")),
        (
            "shape.npy",
            npy("<i8", false, &[2], &le_bytes(&[1i64, 4], i64::to_le_bytes)),
        ),
    ];
    for (name, bytes) in small {
        w.start_file(name, opts).unwrap();
        w.write_all(&bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn npz_rows_claiming_more_entries_than_a_tile_holds_are_refused() {
    let n = MAX_TILE_BYTES / 24 + 1;
    let bytes = npz_one_long_row(n);
    assert!(bytes.len() < 2 << 20, "{} bytes", bytes.len());
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "long.npz", &bytes);
    drop(bytes);
    let (e, largest) = largest_alloc(|| first_error(NpzCountsReader::open(&p, None)));
    assert_format(&e, &["row 0", &format!("claims {n} entries")]);
    assert!(
        largest < 1 << 20,
        "reserved {largest} bytes before refusing"
    );
}

#[test]
fn a_tile_beyond_the_memory_bound_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 8192;
    let p = write(
        &dir,
        "wide.npy",
        &npy("<f4", false, &[2, dim], &vec![0u8; 2 * dim * 4]),
    );
    let mut r = NpyDenseReader::open(&p, None).unwrap();
    let mut t = Tile::new(r.kind());
    let e = r.read_tile(65_536, &mut t).unwrap_err();
    assert_limit(&e, "use fewer rows per tile");
    assert!(e.to_string().contains(&MAX_TILE_BYTES.to_string()), "{e}");
    // A tile that fits reads as before.
    assert!(r.read_tile(1024, &mut t).unwrap());
    let e = r
        .read_tile(usize::MAX, &mut Tile::new(r.kind()))
        .unwrap_err();
    assert_limit(&e, "rows per tile");
}

#[test]
fn synth_sizes_beyond_the_limit_are_refused() {
    use poolrank::sim::synth::{generate, Scenario, MAX_SYNTH_VALUES};
    let (r, largest) =
        largest_alloc(|| generate(Scenario::Smooth, 100_000_000_000_000, 8, 0).err());
    assert_limit(&r.expect("an error"), "synthetic pool values");
    assert!(largest < BOUND, "reserved {largest} bytes");
    assert!(generate(Scenario::Smooth, MAX_SYNTH_VALUES / 2 + 1, 2, 0).is_err());
    assert!(generate(Scenario::Smooth, usize::MAX, usize::MAX, 0).is_err());
}

#[test]
fn lines_without_an_end_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut long = vec![b'a'; MAX_LINE_BYTES + 1000];
    long.push(b'\n');
    let with_head = |head: &[u8]| [head, &long].concat();
    type Read = fn(&Path) -> Error;
    // (file, contents, line of the error, lines the reader may hold at once, reader)
    let cases: [(&str, Vec<u8>, usize, usize, Read); 4] = [
        (
            "long.fps",
            with_head(b"#FPS1\n#num_bits=16\n0000\tb\n"),
            4,
            1,
            |p| first_error(FpsReader::open(p)),
        ),
        ("long.txt", long.clone(), 1, 1, |p| {
            read_id_list(p).unwrap_err()
        }),
        ("long.smi", long.clone(), 1, 1, |p| {
            read_molecules(p).unwrap_err()
        }),
        ("long.csv", with_head(b"id,score\n"), 2, 2, |p| {
            read_labels(&LabelSpec::new(p)).unwrap_err()
        }),
    ];
    for (name, contents, line, lines, read) in cases {
        let p = write(&dir, name, &contents);
        let (e, largest) = largest_alloc(|| read(&p));
        assert_parse(&e, line, "longer than");
        assert!(
            largest <= lines * MAX_LINE_BYTES + (1 << 17),
            "{name}: reserved {largest} bytes"
        );
    }
}

fn cli() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_poolrank"))
}

/// Runs the binary; its exit code and stderr.
fn run_cli(args: &[&str]) -> (Option<i32>, String) {
    let out = cli().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn threads_beyond_the_cap_are_refused_at_once() {
    let (code, err) = run_cli(&[
        "select",
        "--pool",
        "nope.fps",
        "--labels",
        "nope.csv",
        "--out",
        "o.csv",
        "--threads",
        "100000",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--threads must be at most 1024"), "{err}");
}

/// A small FPS pool of `n` rows (ids `m0`…) and labels for the first `labeled`.
fn small_fps_pool(dir: &TempDir, n: usize, labeled: usize) -> (PathBuf, PathBuf) {
    let mut rng = Rng(7);
    let data = random_bits(&mut rng, n, 64);
    let ids: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    let pool = write(dir, "pool.fps", fps_text(&data, 64, &ids, true).as_bytes());
    let mut labels = String::from("id,score\n");
    for (i, id) in ids.iter().take(labeled).enumerate() {
        labels.push_str(&format!("{id},{}\n", i as f64 * 0.5));
    }
    (pool, write(dir, "labels.csv", labels.as_bytes()))
}

/// A `select` on a pool file and a labels file, on the CPU, batch 2.
struct SelectCase {
    params: poolrank::SelectParams,
    pool: FilePool,
    labels: std::path::PathBuf,
}

impl SelectCase {
    fn run(&self) -> poolrank::Result<poolrank::Selection> {
        let labels = read_labels(&LabelSpec::new(&self.labels))?;
        let pending = poolrank::data::IdList::default();
        poolrank::run_select(&self.params.check()?, &self.pool, &labels, &pending)
    }
}

fn select_cfg(pool: &Path, labels: &Path) -> SelectCase {
    SelectCase {
        params: poolrank::SelectParams {
            backend: BackendChoice::Cpu,
            batch: poolrank::BatchSize::Count(2),
            ..poolrank::SelectParams::default()
        },
        pool: FilePool::new(pool),
        labels: labels.to_path_buf(),
    }
}

#[test]
fn non_finite_acquisition_parameters_are_refused() {
    use poolrank::Acquisition;
    let dir = tempfile::tempdir().unwrap();
    let (pool, labels) = small_fps_pool(&dir, 12, 4);
    for (acq, field) in [
        (Acquisition::Ucb { beta: f32::NAN }, "beta"),
        (
            Acquisition::Ucb {
                beta: f32::INFINITY,
            },
            "beta",
        ),
        (Acquisition::Ei { xi: f32::NAN }, "xi"),
        (Acquisition::Pi { xi: -f32::INFINITY }, "xi"),
    ] {
        let mut cfg = select_cfg(&pool, &labels);
        cfg.params.acquisition = acq;
        let e = cfg.run().expect_err("an error");
        assert!(
            matches!(&e, Error::InvalidParam { name, .. } if *name == field),
            "{acq:?}: {e:?}"
        );
    }
    let out = dir.path().join("o.csv");
    let (code, err) = run_cli(&[
        "select",
        "--pool",
        pool.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
        "--beta",
        "NaN",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("invalid --beta: must be a finite number"),
        "{err}"
    );
    let mut cfg = select_cfg(&pool, &labels);
    cfg.params.acquisition = Acquisition::Ucb { beta: 2.0 };
    assert!(cfg.run().is_ok());
}

#[test]
fn labels_beyond_what_standardisation_represents_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "l.csv", b"id,score\na,1\nb,1e200\nc,-3\n");
    let e = read_labels(&LabelSpec::new(&p)).unwrap_err();
    assert_parse(&e, 3, "too large");
    let p = write(&dir, "ok.csv", b"id,score\na,1e99\nb,-1e99\n");
    assert_eq!(read_labels(&LabelSpec::new(&p)).unwrap().len(), 2);
}

#[test]
fn dense_features_that_overflow_f32_scoring_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(11);
    let mut csv = String::from("id,a,b\n");
    let mut labels = String::from("id,score\n");
    for i in 0..16 {
        let (a, b) = (rng.below(1000) as f64, rng.below(1000) as f64);
        csv.push_str(&format!("r{i},{:e},{:e}\n", a * 1e20, b * 1e20));
        if i < 6 {
            labels.push_str(&format!("r{i},{}\n", a - b));
        }
    }
    let pool = write(&dir, "big.csv", csv.as_bytes());
    let labels = write(&dir, "l.csv", labels.as_bytes());
    let e = select_cfg(&pool, &labels)
        .run()
        .expect_err("an error, not every candidate at the prior");
    assert!(
        matches!(&e, Error::InvalidParam { name: "features", msg } if msg.contains("overflow")),
        "{e:?}"
    );
}

#[test]
fn rows_whose_field_count_differs_from_the_header_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "l.csv", b"id,score\nmol0,2\nmol1,3,5\n");
    assert_parse(
        &read_labels(&LabelSpec::new(&p)).unwrap_err(),
        3,
        "the row has 3 fields but the header has 2",
    );
    let p = write(&dir, "d.csv", b"id,a,b\nx,1,2\ny,1,2,3\n");
    assert_parse(
        &first_error(DenseCsvReader::open(&p, "id")),
        3,
        "the row has 4 fields but the header has 3",
    );
    let p = write(&dir, "s.csv", b"smiles,id\nCC,a\nCCO,b,extra\n");
    assert_parse(
        &read_molecules(&p).unwrap_err(),
        3,
        "the row has 3 fields but the header has 2",
    );
}

#[test]
fn duplicate_header_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "l.csv", b"id,score,score\na,1,2\n");
    assert_parse(
        &read_labels(&LabelSpec::new(&p)).unwrap_err(),
        1,
        "names column \"score\" twice (fields 2 and 3)",
    );
    let p = write(&dir, "d.csv", b"id,a,id\nx,1,y\n");
    assert_parse(&first_error(DenseCsvReader::open(&p, "id")), 1, "twice");
    let p = write(&dir, "s.csv", b"smiles,id,smiles\nCC,a,CCC\n");
    assert_parse(&read_molecules(&p).unwrap_err(), 1, "twice");
}

#[test]
fn a_bom_is_accepted_in_every_text_input() {
    const BOM: &[u8] = b"\xef\xbb\xbf";
    let dir = tempfile::tempdir().unwrap();
    let with_bom = |text: &[u8]| [BOM, text].concat();
    for gz in [false, true] {
        let enc = |b: Vec<u8>| if gz { gzip(&b) } else { b };
        let sfx = if gz { ".gz" } else { "" };
        let p = write(
            &dir,
            &format!("a.fps{sfx}"),
            &enc(with_bom(b"#FPS1\n#num_bits=8\n01\ta\n")),
        );
        assert_eq!(read_path(FpsReader::open(&p)).0, vec!["a"], "fps gz={gz}");
        let p = write(
            &dir,
            &format!("a.smi{sfx}"),
            &enc(with_bom(b"CCO ethanol\n")),
        );
        assert_eq!(read_molecules(&p).unwrap()[0].id, "ethanol", "smi gz={gz}");
        let p = write(
            &dir,
            &format!("s.csv{sfx}"),
            &enc(with_bom(b"smiles,id\nCC,x\n")),
        );
        assert_eq!(read_molecules(&p).unwrap()[0].id, "x", "smiles csv gz={gz}");
        let p = write(&dir, &format!("ids.txt{sfx}"), &enc(with_bom(b"a\nb\n")));
        assert_eq!(read_id_list(&p).unwrap(), vec!["a", "b"], "ids gz={gz}");
        let p = write(
            &dir,
            &format!("l.csv{sfx}"),
            &enc(with_bom(b"id,score\na,1\n")),
        );
        assert_eq!(read_labels(&LabelSpec::new(&p)).unwrap().ids, vec!["a"]);
        let p = write(&dir, &format!("d.csv{sfx}"), &enc(with_bom(b"id,f\nq,1\n")));
        assert_eq!(read_path(DenseCsvReader::open(&p, "id")).0, vec!["q"]);
        let ids = write(&dir, &format!("rows.txt{sfx}"), &enc(with_bom(b"r0\nr1\n")));
        let npy_p = write(&dir, "b.npy", &npy("|u1", false, &[2, 1], &[1, 2]));
        assert_eq!(
            read_path(NpyBitsReader::open(&npy_p, Some(&ids))).0,
            vec!["r0", "r1"]
        );
    }
}

#[test]
fn ids_are_trimmed_of_surrounding_whitespace_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "a.fps",
        b"#FPS1\n#num_bits=8\n01\t a \t extra\n02\tb \r\n",
    );
    assert_eq!(read_path(FpsReader::open(&p)).0, vec!["a", "b"]);
    let p = write(&dir, "l.csv", b"id,score\n a ,1\nb\t,2\n");
    assert_eq!(
        read_labels(&LabelSpec::new(&p)).unwrap().ids,
        vec!["a", "b"]
    );
    let p = write(&dir, "ids.txt", b" a \nb\t\n");
    assert_eq!(read_id_list(&p).unwrap(), vec!["a", "b"]);
    let p = write(&dir, "s.csv", b"smiles,id\nCC, a \n");
    assert_eq!(read_molecules(&p).unwrap()[0].id, "a");
    let p = write(&dir, "d.csv", b"id,f\n a ,1\n");
    assert_eq!(read_path(DenseCsvReader::open(&p, "id")).0, vec!["a"]);
    // So a labeled id written with a trailing space is found in a pool without one.
    let (pool, _) = small_fps_pool(&dir, 10, 0);
    let labels = write(&dir, "sp.csv", b"id,score\nm0 ,1\n m1,2\n");
    assert!(select_cfg(&pool, &labels).run().is_ok());
}

#[test]
fn ids_not_in_the_pool_name_their_label_line() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, _) = small_fps_pool(&dir, 10, 0);
    let labels = write(&dir, "l.csv", b"id,score\nm0,1\nm1,2\n\nghost,3\n");
    let e = select_cfg(&pool, &labels).run().expect_err("an error");
    assert!(matches!(&e, Error::UnknownIds { count: 1, .. }), "{e:?}");
    assert!(e.to_string().contains("\"ghost\" (line 5)"), "{e}");
}

#[test]
fn messages_quote_at_most_one_line_of_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = b"id,score\nmol0,1\nmol1,\"2\n".to_vec();
    for i in 2..2000 {
        text.extend_from_slice(format!("mol{i},{i}\n").as_bytes());
    }
    let p = write(&dir, "l.csv", &text);
    let e = read_labels(&LabelSpec::new(&p)).unwrap_err();
    assert_parse(&e, 3, "never closed");
    assert!(e.to_string().len() < 300, "{e}");
    let long = "x".repeat(5000);
    let p = write(&dir, "n.csv", format!("id,score\na,{long}\n").as_bytes());
    let e = read_labels(&LabelSpec::new(&p)).unwrap_err();
    assert_parse(&e, 2, "not a number");
    assert!(e.to_string().len() < 300, "{e}");
    let p = write(&dir, "f.fps", format!("#FPS2 {long}\n").as_bytes());
    let e = first_error(FpsReader::open(&p));
    assert_parse(&e, 1, "#FPS1");
    assert!(e.to_string().len() < 300, "{e}");
}

#[test]
fn corrupt_compressed_data_is_a_compression_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut fps = String::from("#FPS1\n#num_bits=64\n");
    for i in 0..3000 {
        fps.push_str(&format!(
            "{:016x}\tm{i}\n",
            (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ));
    }
    let gz = gzip(fps.as_bytes());
    let mut labels = String::from("id,score\n");
    for i in 0..3000 {
        labels.push_str(&format!("m{i},{i}\n"));
    }
    let lgz = gzip(labels.as_bytes());
    for cut in [gz.len() / 2, gz.len() - 4] {
        let p = write(&dir, "t.fps.gz", &gz[..cut]);
        let e = first_error(FpsReader::open(&p));
        assert!(matches!(e, Error::Compression { .. }), "cut {cut}: {e:?}");
        assert!(e.to_string().contains("truncated"), "{e}");
    }
    let p = write(&dir, "t.csv.gz", &lgz[..lgz.len() / 2]);
    let e = read_labels(&LabelSpec::new(&p)).unwrap_err();
    assert!(matches!(e, Error::Compression { .. }), "{e:?}");
    let mut dense = String::from("id,a\n");
    for i in 0..3000 {
        dense.push_str(&format!("m{i},{i}\n"));
    }
    let mut dgz = gzip(dense.as_bytes());
    let mid = dgz.len() / 3;
    dgz[mid] ^= 0x55;
    let p = write(&dir, "d.csv.gz", &dgz);
    let e = first_error(DenseCsvReader::open(&p, "id"));
    assert!(matches!(e, Error::Compression { .. }), "{e:?}");
    let p = write(&dir, "t.txt.gz", &lgz[..lgz.len() / 2]);
    let e = read_id_list(&p).unwrap_err();
    assert!(matches!(e, Error::Compression { .. }), "{e:?}");
    // A flipped byte in the deflate stream: corrupt data (or a CRC mismatch), never a parse
    // error on what was decoded before it.
    let mut bad = gz.clone();
    let mid = bad.len() / 3;
    bad[mid] ^= 0x55;
    let p = write(&dir, "b.fps.gz", &bad);
    let e = first_error(FpsReader::open(&p));
    assert!(matches!(e, Error::Compression { .. }), "{e:?}");
}

#[test]
fn io_errors_show_their_cause_once() {
    let e = read_id_list(Path::new("/nonexistent/ids.txt")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(std::error::Error::source(&e).is_none());
    let chain = format!("{:#}", anyhow::Error::from(e));
    assert_eq!(
        chain.matches("No such file or directory").count(),
        1,
        "{chain}"
    );
    let (code, err) = run_cli(&[
        "select",
        "--pool",
        "/nonexistent/p.fps",
        "--labels",
        "/nonexistent/l.csv",
        "--out",
        "o.csv",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn dtype_errors_list_every_accepted_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "b.npy", &npy("|b1", false, &[2, 2], &[0, 1, 1, 0]));
    let e = FilePool::new(&p).open_owned().err().expect("an error");
    let p2 = write(&dir, "i.npy", &npy("<i4", false, &[1, 1], &[0; 4]));
    let e2 = first_error(NpyDenseReader::open(&p2, None));
    for e in [e, e2] {
        for d in ["'|u1'", "'<u4'", "'<i8'", "'<f4'", "'<f8'"] {
            assert!(e.to_string().contains(d), "{e} lacks {d}");
        }
    }
}

#[test]
fn an_ids_file_with_a_pool_that_names_its_rows_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, _) = small_fps_pool(&dir, 4, 0);
    let ids = write(&dir, "ids.txt", b"a\nb\nc\nd\n");
    let mut spec = FilePool::new(&pool);
    spec.ids = Some(ids.clone());
    let e = spec.open().err().expect("an error");
    assert!(
        matches!(&e, Error::InvalidParam { name: "ids", msg } if msg.contains("array pools")),
        "{e:?}"
    );
    let npy_p = write(&dir, "b.npy", &npy("|u1", false, &[4, 1], &[1, 2, 3, 4]));
    let mut spec = FilePool::new(&npy_p);
    spec.ids = Some(ids);
    assert!(spec.open().is_ok());
}

#[cfg(unix)]
#[test]
fn pools_that_are_not_regular_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pool.fps");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo");
    // Refused without opening it: opening a FIFO with no writer would block.
    for p in [fifo.clone(), dir.path().join("pool.csv")] {
        if !p.exists() {
            std::process::Command::new("mkfifo")
                .arg(&p)
                .status()
                .unwrap();
        }
        let e = FilePool::new(&p).open_owned().err().expect("an error");
        assert_format(&e, &["not a regular file", "read more than once"]);
        // What the command line asks before the run (the format, an FPS `#type=`) must not
        // read the pipe either.
        let e = FilePool::new(&p).provenance().expect_err("an error");
        assert_format(&e, &["not a regular file"]);
    }
    let sub = dir.path().join("d.fps");
    std::fs::create_dir(&sub).unwrap();
    assert_format(
        &FilePool::new(&sub).open_owned().err().unwrap(),
        &["a directory"],
    );
}

#[test]
fn featurize_refuses_a_smiles_input_that_is_not_a_regular_file() {
    use poolrank::featurize::{featurize_file, FeaturizeConfig, SmilesSource};
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("in.smi");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = dir.path().join("out.npz");
    // Refused before anything opens it (opening a FIFO with no writer would block).
    let e = featurize_file(&FeaturizeConfig::new(SmilesSource::new(&fifo), &out)).unwrap_err();
    assert_format(&e, &["not a regular file", "save it to a file first"]);
    assert!(e.to_string().contains("in.smi"), "{e}");
    assert!(!out.exists());
}

#[test]
fn the_gpu_probe_turns_off_mesa_device_select() {
    // Whatever the machine has, probing sets NODEVICE_SELECT for the process (unless the user
    // did), so Mesa's layer prints nothing; the probe itself is cached.
    let before = std::env::var_os("NODEVICE_SELECT");
    let a = poolrank::backend::gpu::list_adapters(&Default::default());
    let b = poolrank::backend::gpu::list_adapters(&Default::default());
    assert_eq!(a.adapters.len(), b.adapters.len());
    match before {
        Some(v) => assert_eq!(std::env::var_os("NODEVICE_SELECT"), Some(v)),
        None => assert_eq!(std::env::var("NODEVICE_SELECT").as_deref(), Ok("1")),
    }
}

mod hostile_props {
    use super::Rng;
    use super::*;
    use proptest::prelude::*;

    /// Valid files of every text and binary format, for truncation and corruption.
    fn valid_files(rng: &mut Rng) -> Vec<(&'static str, Vec<u8>)> {
        let rows = 1 + rng.below(30) as usize;
        let ids: Vec<String> = (0..rows).map(|i| format!("m{i}")).collect();
        let data = random_bits(rng, rows, 24);
        let mut labels = String::from("id,score\n");
        let mut dense = String::from("id,a,b\n");
        let mut smi = String::new();
        let mut smiles_csv = String::from("smiles,id\n");
        let mut id_list = String::new();
        for (i, id) in ids.iter().enumerate() {
            labels.push_str(&format!("{id},{}\n", i as f64 / 3.0));
            dense.push_str(&format!("{id},{i},{}\n", i * 2));
            smi.push_str(&format!("CC{} {id}\n", "C".repeat(i % 4)));
            smiles_csv.push_str(&format!("\"CCO\",{id}\n"));
            id_list.push_str(&format!("{id}\n"));
        }
        let fps = fps_text(&data, 24, &ids, true).into_bytes();
        let counts = dense_counts(rows, 5, rng);
        let rows_list: Vec<Vec<(usize, u32)>> = counts
            .chunks(5)
            .map(|r| {
                r.iter()
                    .enumerate()
                    .filter(|(_, &v)| v > 0)
                    .map(|(c, &v)| (c, v))
                    .collect()
            })
            .collect();
        vec![
            ("fps", fps.clone()),
            ("fps.gz", gzip(&fps)),
            ("labels", labels.clone().into_bytes()),
            ("labels.gz", gzip(labels.as_bytes())),
            ("dense", dense.into_bytes()),
            ("smi", smi.into_bytes()),
            ("smiles-csv", smiles_csv.into_bytes()),
            ("ids", id_list.clone().into_bytes()),
            ("ids.gz", gzip(id_list.as_bytes())),
            (
                "npy",
                npy("|u1", false, &[rows, 3], &packbits(&data, 24, rows)),
            ),
            ("npz", Csr::from_rows(5, &rows_list).npz(true)),
            ("npz-stored", Csr::from_rows(5, &rows_list).npz(false)),
        ]
    }

    /// Runs every reader that takes files of `kind` on `p`; the result is ignored (an error
    /// or rows are both fine), a panic fails the test.
    fn run_readers(kind: &str, p: &Path) {
        match kind {
            k if k.starts_with("fps") => {
                let _ = FpsReader::open(p).map(|mut r| read_all(&mut r, 7));
            }
            k if k.starts_with("labels") => {
                let _ = read_labels(&LabelSpec::new(p));
            }
            "dense" => {
                let _ = DenseCsvReader::open(p, "id").map(|mut r| read_all(&mut r, 7));
            }
            "smi" | "smiles-csv" => {
                let _ = read_molecules(p);
            }
            k if k.starts_with("ids") => {
                let _ = read_id_list(p);
            }
            "npy" => {
                let _ = NpyHeader::read(p);
                let _ = NpyBitsReader::open(p, None).map(|mut r| read_all(&mut r, 7));
                let _ = NpyCountsReader::open(p, None).map(|mut r| read_all(&mut r, 7));
                let _ = NpyDenseReader::open(p, None).map(|mut r| read_all(&mut r, 7));
            }
            _ => {
                let _ = NpzCountsReader::open(p, None).map(|mut r| read_all(&mut r, 7));
                let _ = poolrank::data::read_npz_provenance(p);
            }
        }
    }

    fn file_name(kind: &str) -> String {
        let ext = match kind {
            "fps" => "fps",
            "fps.gz" => "fps.gz",
            "labels" | "dense" => "csv",
            "labels.gz" => "csv.gz",
            "smi" => "smi",
            "smiles-csv" => "csv",
            "ids" => "txt",
            "ids.gz" => "txt.gz",
            "npy" => "npy",
            _ => "npz",
        };
        format!("x.{ext}")
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        /// Truncations and corruptions of real files: every reader gives an error or rows,
        /// never a panic, and never reserves more than the bound.
        #[test]
        fn truncated_and_corrupted_files_are_errors_within_bounds(
            seed in any::<u64>(),
            cut in 0.0f64..1.0,
            flips in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 0..4),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut rng = Rng(seed | 1);
            for (kind, mut bytes) in valid_files(&mut rng) {
                bytes.truncate((bytes.len() as f64 * cut) as usize);
                for &(at, x) in &flips {
                    let n = bytes.len();
                    if n > 0 {
                        bytes[((n as f64 * at) as usize).min(n - 1)] ^= x;
                    }
                }
                let p = write(&dir, &file_name(kind), &bytes);
                let ((), largest) = largest_alloc(|| run_readers(kind, &p));
                prop_assert!(largest < BOUND, "{kind}: reserved {largest} bytes");
            }
        }

        /// Arbitrary bytes, alone or after a format's first line.
        #[test]
        fn arbitrary_bytes_are_errors_within_bounds(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            prefix in 0usize..5,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let heads: [&[u8]; 5] = [b"", b"#FPS1\n#num_bits=16\n", b"id,score\n", b"\x93NUMPY\x01\x00", b"PK\x03\x04"];
            let all = [heads[prefix], &bytes].concat();
            for kind in ["fps", "fps.gz", "labels", "dense", "smi", "smiles-csv", "ids", "npy", "npz"] {
                let p = write(&dir, &file_name(kind), &all);
                let ((), largest) = largest_alloc(|| run_readers(kind, &p));
                prop_assert!(largest < BOUND, "{kind}: reserved {largest} bytes");
            }
        }

        /// Small files that claim huge sizes: an FPS width, a `.npy` shape, a `.npz` shape and
        /// row lengths. Each is an error (or rows) without reserving what it claims.
        #[test]
        fn claimed_sizes_are_checked_before_reserving(
            claim in 1u64..u64::MAX,
            rows in 1usize..4,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let fps = format!("#FPS1\n#num_bits={claim}\n0000\ta\n");
            let p = write(&dir, "c.fps", fps.as_bytes());
            let ((), largest) = largest_alloc(|| run_readers("fps", &p));
            prop_assert!(largest < BOUND, "fps: reserved {largest}");
            let c = claim as usize;
            for shape in [vec![rows, c], vec![c, rows], vec![c]] {
                let p = write(&dir, "c.npy", &npy("<f4", false, &shape, &[0u8; 64]));
                let ((), largest) = largest_alloc(|| run_readers("npy", &p));
                prop_assert!(largest < BOUND, "npy {shape:?}: reserved {largest}");
            }
            let mut csr = Csr::from_rows(4, &vec![vec![(1, 2)]; rows]);
            csr.shape = (rows, c);
            let p = write(&dir, "c.npz", &csr.npz(true));
            let ((), largest) = largest_alloc(|| run_readers("npz", &p));
            prop_assert!(largest < BOUND, "npz shape: reserved {largest}");
            let mut csr = Csr::from_rows(4, &vec![vec![(1, 2)]; rows]);
            if let Some(last) = csr.indptr.last_mut() {
                *last = (claim >> 1) as i64;
            }
            let p = write(&dir, "c.npz", &csr.npz(true));
            let ((), largest) = largest_alloc(|| run_readers("npz", &p));
            prop_assert!(largest < BOUND, "npz indptr: reserved {largest}");
        }
    }
}

#[test]
fn labels_given_as_arrays_are_checked_at_fit() {
    // Python passes labels as arrays, past the label reader's range check: the fit refuses
    // what its standardisation cannot represent.
    use poolrank::gp::{fit, GpParams};
    use poolrank::KernelKind;
    let x = Features::Dense {
        dim: 1,
        data: vec![0.0, 1.0, 2.0],
    };
    let p = GpParams::new(KernelKind::Rbf).check(x.kind()).unwrap();
    for y in [
        [1e200, -1e200, 3.0],
        [f64::NAN, 1.0, 2.0],
        [f64::MAX, f64::MAX, 0.0],
    ] {
        let e = fit(&p, &x, &y).expect_err("an error");
        assert!(
            matches!(&e, Error::InvalidParam { name: "labels", .. }),
            "{y:?}: {e:?}"
        );
    }
    assert!(fit(&p, &x, &[1e99, -1e99, 0.0]).is_ok());
}

#[test]
fn count_fingerprints_whose_code_is_too_wide_are_refused_at_fit() {
    use poolrank::gp::{fit, GpParams};
    use poolrank::KernelKind;
    // Two features with counts near u32::MAX: a thermometer code of 2^33 bits per row.
    let x = Features::Counts {
        ndim: 2,
        indptr: vec![0, 2, 3],
        indices: vec![0, 1, 0],
        values: vec![u32::MAX, u32::MAX, 3],
    };
    let p = GpParams::new(KernelKind::MinMax).check(x.kind()).unwrap();
    let (r, largest) = largest_alloc(|| fit(&p, &x, &[1.0, 2.0]));
    let e = r.expect_err("an error");
    assert!(
        matches!(&e, Error::LimitExceeded { what, .. } if what.contains("count fingerprints")),
        "{e:?}"
    );
    assert!(largest < BOUND, "reserved {largest} bytes");
}
