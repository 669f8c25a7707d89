//! Properties: agreement between formats holding the same data.

use super::*;

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
