//! Count fingerprints: `.npz` CSR and count `.npy`.

use super::*;

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
