//! Labels and id lists.

use super::*;

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
