//! Tiling: any tile size gives the same rows.

use super::*;

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
