//! Through `FilePool`: format inference and the checks before opening.

use super::*;

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
