//! The shipped data set.

use super::*;

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
