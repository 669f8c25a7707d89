//! Dense features: `.npy` and CSV.

use super::*;

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
