//! Inputs bounded, finite, strict (issue 13).

use super::*;

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

/// bzip2 and zstd text inputs read like gzip ones, whatever their name (the magic bytes
/// decide), concatenated streams and frames included; truncated or corrupt data is a
/// compression error naming the codec.
#[test]
fn bzip2_and_zstd_inputs_read_as_gzip_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut labels = String::from("id,score\n");
    for i in 0..3000 {
        labels.push_str(&format!("m{i},{i}\n"));
    }
    let (head, tail) = labels.split_at(labels.len() / 2);
    let want = read_labels(&LabelSpec::new(write(&dir, "l.csv", labels.as_bytes()))).unwrap();
    type Codec = (&'static str, fn(&[u8]) -> Vec<u8>);
    let codecs: [Codec; 3] = [("gzip", gzip), ("bzip2", bzip2), ("zstd", zstd)];
    for (name, codec) in codecs {
        let whole = codec(labels.as_bytes());
        // Two streams (frames) one after the other.
        let split = [codec(head.as_bytes()), codec(tail.as_bytes())].concat();
        for (file, bytes) in [("a.csv.x", &whole), ("b.csv", &split)] {
            let got = read_labels(&LabelSpec::new(write(&dir, file, bytes))).unwrap();
            assert_eq!(
                (&got.ids, &got.values),
                (&want.ids, &want.values),
                "{name} {file}"
            );
        }
        let p = write(&dir, "t.csv", &whole[..whole.len() / 2]);
        let e = read_labels(&LabelSpec::new(&p)).unwrap_err();
        assert!(matches!(e, Error::Compression { .. }), "{name}: {e:?}");
        assert!(e.to_string().contains(name), "{e}");
        let mut bad = whole.clone();
        let mid = bad.len() / 3;
        bad[mid] ^= 0x55;
        let p = write(&dir, "c.csv", &bad);
        let e = read_labels(&LabelSpec::new(&p)).unwrap_err();
        assert!(matches!(e, Error::Compression { .. }), "{name}: {e:?}");
    }
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
