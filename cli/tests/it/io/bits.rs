//! Bit fingerprints: FPS and packed `.npy`.

use super::*;

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
