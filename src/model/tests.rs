use std::path::Path;

use super::file::{MAGIC, VERSION};
use super::*;
use crate::gp::{fit, GpParams, Inducing};
use crate::kernel::KernelKind;

/// A small labeled set of each kind with a smooth relation between features and labels.
fn labeled(kind: &str, n: usize) -> (Features, Vec<f64>) {
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    let x = match kind {
        "bits" => Features::Bits {
            nbits: 100,
            data: (0..n * 2)
                .map(|i| {
                    let w = next() | (next() << 31);
                    // 100 bits: the second word keeps its 36 low bits.
                    if i % 2 == 1 {
                        w & ((1 << 36) - 1)
                    } else {
                        w
                    }
                })
                .collect(),
        },
        "counts" => {
            let mut f = Features::empty(FeatureKind::Counts { ndim: 40 });
            for _ in 0..n {
                let mut row = Features::Counts {
                    ndim: 40,
                    indptr: vec![0],
                    indices: vec![],
                    values: vec![],
                };
                if let Features::Counts {
                    indptr,
                    indices,
                    values,
                    ..
                } = &mut row
                {
                    for j in 0..40 {
                        if next() % 3 == 0 {
                            indices.push(j);
                            values.push(1 + (next() % 4) as u32);
                        }
                    }
                    indptr.push(indices.len());
                }
                f.push_row_from(&row, 0);
            }
            f
        }
        _ => Features::Dense {
            dim: 3,
            data: (0..n * 3).map(|_| (next() % 1000) as f32 / 250.0).collect(),
        },
    };
    let y = (0..n)
        .map(|i| {
            let p = x.select_rows(&[i]);
            match &p {
                Features::Bits { data, .. } => data[0].count_ones() as f64,
                Features::Counts { values, .. } => values.iter().sum::<u32>() as f64,
                Features::Dense { data, .. } => (data[0] - data[1]).sin() as f64,
            }
        })
        .collect();
    (x, y)
}

fn model(kind: &str, inducing: Inducing, minimize: bool) -> (FittedModel, Features) {
    let (x, y) = labeled(kind, 40);
    let k = KernelKind::default_for(x.kind());
    let mut p = GpParams::new(k);
    p.inducing = inducing;
    let sign = if minimize { -1.0 } else { 1.0 };
    let ys: Vec<f64> = y.iter().map(|v| sign * v).collect();
    let gp = fit(&p.check(x.kind()).unwrap(), &x, &ys).unwrap();
    let m = FittedModel::new(
        gp,
        ModelOrigin {
            provenance: Some("morgan r=2".into()),
            minimize,
            labeled_ids: (0..y.len()).map(|i| format!("mol{i}")).collect(),
            label_values: y,
        },
    )
    .unwrap();
    let (probe, _) = labeled(kind, 50);
    (m, probe)
}

#[test]
fn a_saved_model_loads_bit_for_bit_and_predicts_the_same() {
    for kind in ["bits", "counts", "dense"] {
        for (inducing, minimize) in [(Inducing::Exact, false), (Inducing::Points(7), true)] {
            let (m, probe) = model(kind, inducing, minimize);
            let bytes = m.to_bytes();
            let back = FittedModel::from_bytes(&bytes, Path::new("m.model")).unwrap();
            assert_eq!(back.to_bytes(), bytes, "{kind}: re-encoding differs");
            let (a, b) = (m.gp(), back.gp());
            assert_eq!(a.alpha, b.alpha);
            assert_eq!(a.train, b.train);
            assert_eq!(a.signal_var.to_bits(), b.signal_var.to_bits());
            assert_eq!(back.minimize(), minimize);
            assert_eq!(back.labeled_ids(), m.labeled_ids());
            assert_eq!(back.provenance(), Some("morgan r=2"));
            assert_eq!(
                b.info.sparse.as_ref().map(|s| s.rows.clone()),
                a.info.sparse.as_ref().map(|s| s.rows.clone())
            );
            let (ma, sa) = m.predict(&probe).unwrap();
            let (mb, sb) = back.predict(&probe).unwrap();
            assert_eq!(ma, mb, "{kind}");
            assert_eq!(sa, sb, "{kind}");
        }
    }
}

#[test]
fn predict_applies_the_direction() {
    let (max, probe) = model("dense", Inducing::Exact, false);
    let (min, _) = model("dense", Inducing::Exact, true);
    let (a, _) = max.predict(&probe).unwrap();
    let (b, _) = min.predict(&probe).unwrap();
    // Both fit the same labels; the minimising model fits their negation and maps back.
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-6 * (1.0 + x.abs()), "{x} vs {y}");
    }
}

fn err_of(bytes: &[u8]) -> String {
    FittedModel::from_bytes(bytes, Path::new("m.model"))
        .unwrap_err()
        .to_string()
}

#[test]
fn a_corrupted_truncated_or_foreign_file_is_a_clear_error() {
    let (m, _) = model("bits", Inducing::Exact, false);
    let bytes = m.to_bytes();

    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x10;
    let e = err_of(&flipped);
    assert!(
        e.contains("m.model") && e.contains("checksum mismatch"),
        "{e}"
    );

    for cut in [0, 5, 19, 20, bytes.len() / 2, bytes.len() - 1] {
        let e = err_of(&bytes[..cut]);
        assert!(
            e.contains("truncated") || e.contains("not a poolrank model file"),
            "cut at {cut}: {e}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(err_of(&longer).contains("truncated or extended"));

    let e = err_of(b"id,score\nmol1,3.5\n");
    assert!(e.contains("not a poolrank model file"), "{e}");

    let mut v2 = bytes.clone();
    v2[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
    let e = err_of(&v2);
    assert!(
        e.contains("format version 2") && e.contains("reads version 1"),
        "{e}"
    );
    assert_eq!(&bytes[..8], &MAGIC);
}

/// A payload that passes the checksum but lies about its sizes must not allocate by them.
#[test]
fn a_forged_count_is_refused_before_allocating() {
    let (m, _) = model("dense", Inducing::Exact, false);
    let bytes = m.to_bytes();
    // The labels' count follows software, kernel, six f64s, minimize, kind, width and the
    // provenance: find it by its value (40 labels) after the header.
    let forty = 40u64.to_le_bytes();
    let at = (20..bytes.len() - 8)
        .find(|&i| bytes[i..i + 8] == forty)
        .unwrap();
    let mut forged = bytes[..bytes.len() - 4].to_vec();
    forged[at..at + 8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    let crc = crc32fast::hash(&forged);
    forged.extend_from_slice(&crc.to_le_bytes());
    let e = err_of(&forged);
    assert!(e.contains("more than the file holds"), "{e}");
}

#[test]
fn features_and_labels_must_match_the_model() {
    let (m, _) = model("counts", Inducing::Exact, false);
    let p = Path::new("pool.npz");
    m.check_features(FeatureKind::Counts { ndim: 40 }, None, p)
        .unwrap();
    m.check_features(FeatureKind::Counts { ndim: 40 }, Some("morgan r=2"), p)
        .unwrap();
    let e = m
        .check_features(FeatureKind::Counts { ndim: 41 }, None, p)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pool.npz") && e.contains("41") && e.contains("40"),
        "{e}"
    );
    let e = m
        .check_features(FeatureKind::Counts { ndim: 40 }, Some("morgan r=3"), p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("r=3") && e.contains("r=2"), "{e}");

    let ids = m.labeled_ids().to_vec();
    let mut values = m.label_values().to_vec();
    let l = Path::new("labels.csv");
    // Any order.
    let (mut ri, mut rv) = (ids.clone(), values.clone());
    ri.reverse();
    rv.reverse();
    m.check_labels(l, &ri, &rv).unwrap();
    values[3] += 1.0;
    let e = m.check_labels(l, &ids, &values).unwrap_err().to_string();
    assert!(e.contains("labels.csv") && e.contains("mol3"), "{e}");
    let e = m
        .check_labels(l, &ids[1..], &values[1..])
        .unwrap_err()
        .to_string();
    assert!(e.contains("39 labels"), "{e}");
}
