//! Kernel definitions and the scalar (f64) reference of each.
//!
//! These plain functions are the definition every fast path (the CPU block kernels, the GPU
//! shaders) is tested against. They are also what the GP fit uses on the labeled set.

use crate::data::{FeatureKind, Features};
use crate::error::{Error, Result};
use crate::names::{named, Named};

/// Which similarity the Gaussian process uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelKind {
    /// Tanimoto (Jaccard) on binary fingerprints: `|a&b| / |a|b|`, with `k(0,0) = 1`.
    Tanimoto,
    /// MinMax on count fingerprints: `Σ min(a_i,b_i) / Σ max(a_i,b_i)`, with `k(0,0) = 1`.
    /// Equals Tanimoto on binary input.
    MinMax,
    /// Squared exponential on dense features: `exp(-r² / 2ℓ²)`.
    Rbf,
    /// Matérn ν=5/2 on dense features: `(1 + √5 r/ℓ + 5r²/3ℓ²) exp(-√5 r/ℓ)`.
    Matern52,
}

impl KernelKind {
    /// The name used on the command line and in outputs (its [`Named`] table).
    pub fn name(self) -> &'static str {
        Named::name(self)
    }

    /// The default kernel for a kind of features: `tanimoto` for bits, `minmax` for counts,
    /// `rbf` for dense features.
    pub fn default_for(kind: FeatureKind) -> Self {
        match kind {
            FeatureKind::Bits { .. } => KernelKind::Tanimoto,
            FeatureKind::Counts { .. } => KernelKind::MinMax,
            FeatureKind::Dense { .. } => KernelKind::Rbf,
        }
    }

    /// True when the kernel has a lengthscale.
    pub fn has_lengthscale(self) -> bool {
        matches!(self, KernelKind::Rbf | KernelKind::Matern52)
    }

    /// Checks that the kernel applies to `kind`. `minmax` also accepts bit fingerprints (where it
    /// equals Tanimoto), so that a counts-vs-bits comparison can hold the kernel fixed.
    pub fn check(self, kind: FeatureKind) -> Result<()> {
        let ok = matches!(
            (self, kind),
            (KernelKind::Tanimoto, FeatureKind::Bits { .. })
                | (
                    KernelKind::MinMax,
                    FeatureKind::Counts { .. } | FeatureKind::Bits { .. }
                )
                | (
                    KernelKind::Rbf | KernelKind::Matern52,
                    FeatureKind::Dense { .. }
                )
        );
        if ok {
            return Ok(());
        }
        let hint = match kind {
            FeatureKind::Bits { .. } => "use tanimoto (or minmax) for bit fingerprints",
            FeatureKind::Counts { .. } => "use minmax for count fingerprints",
            FeatureKind::Dense { .. } => "use rbf or matern52 for dense features",
        };
        Err(Error::KernelMismatch {
            kernel: self.name(),
            features: kind.to_string(),
            hint: hint.to_string(),
        })
    }
}

impl Named for KernelKind {
    const WHAT: &'static str = "kernel";
    const TABLE: &'static [(Self, &'static str, &'static str)] = &[
        (
            KernelKind::Tanimoto,
            "tanimoto",
            "Binary fingerprints (the default for FPS and packed .npy)",
        ),
        (
            KernelKind::MinMax,
            "minmax",
            "Count fingerprints (the default for .npz counts); equals Tanimoto on bits",
        ),
        (
            KernelKind::Rbf,
            "rbf",
            "Dense features, squared exponential (the default for float features)",
        ),
        (
            KernelKind::Matern52,
            "matern52",
            "Dense features, Matérn 5/2",
        ),
    ];
}
named!(KernelKind);

/// Tanimoto similarity of two packed fingerprints, `k(0,0) = 1`.
pub fn tanimoto(a: &[u64], b: &[u64]) -> f64 {
    let (mut both, mut na, mut nb) = (0u64, 0u64, 0u64);
    for (x, y) in a.iter().zip(b) {
        both += u64::from((x & y).count_ones());
        na += u64::from(x.count_ones());
        nb += u64::from(y.count_ones());
    }
    ratio(both as f64, (na + nb - both) as f64)
}

/// MinMax similarity of two sparse count rows (sorted indices), `k(0,0) = 1`.
pub fn minmax(a: (&[u32], &[u32]), b: (&[u32], &[u32])) -> f64 {
    let (ai, av) = a;
    let (bi, bv) = b;
    let (mut i, mut j) = (0, 0);
    let (mut mins, mut maxs) = (0u64, 0u64);
    while i < ai.len() || j < bi.len() {
        let ka = ai.get(i).copied().unwrap_or(u32::MAX);
        let kb = bi.get(j).copied().unwrap_or(u32::MAX);
        if ka == kb {
            mins += u64::from(av[i].min(bv[j]));
            maxs += u64::from(av[i].max(bv[j]));
            i += 1;
            j += 1;
        } else if ka < kb {
            maxs += u64::from(av[i]);
            i += 1;
        } else {
            maxs += u64::from(bv[j]);
            j += 1;
        }
    }
    ratio(mins as f64, maxs as f64)
}

/// Squared Euclidean distance.
pub fn sq_dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = f64::from(*x) - f64::from(*y);
            d * d
        })
        .sum()
}

/// RBF kernel of a squared distance.
pub fn rbf_of_sq(d2: f64, lengthscale: f64) -> f64 {
    (-0.5 * d2 / (lengthscale * lengthscale)).exp()
}

/// Matérn 5/2 kernel of a squared distance.
pub fn matern52_of_sq(d2: f64, lengthscale: f64) -> f64 {
    let u = 5f64.sqrt() * d2.max(0.0).sqrt() / lengthscale;
    (1.0 + u + u * u / 3.0) * (-u).exp()
}

/// `num / den` with `0/0 = 1` (two empty fingerprints are identical).
fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        1.0
    } else {
        num / den
    }
}

/// A kernel with its lengthscale (ignored by the fingerprint kernels): the unit-variance
/// similarity `k(a, b)` with `k(a, a) = 1`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Kernel {
    /// Which kernel.
    pub kind: KernelKind,
    /// Lengthscale for `rbf`/`matern52`; 1.0 and unused for fingerprints.
    pub lengthscale: f64,
}

impl Kernel {
    /// The reference value `k(x_i, y_j)` for rows of two blocks of the same kind.
    ///
    /// # Panics
    /// When the blocks do not fit the kernel; [`KernelKind::check`] rules that out first.
    pub fn eval(&self, x: &Features, i: usize, y: &Features, j: usize) -> f64 {
        match (self.kind, x, y) {
            (KernelKind::Tanimoto | KernelKind::MinMax, Features::Bits { .. }, _) => {
                tanimoto(x.bits_row(i).unwrap(), y.bits_row(j).unwrap())
            }
            (KernelKind::MinMax, Features::Counts { .. }, _) => {
                minmax(x.counts_row(i).unwrap(), y.counts_row(j).unwrap())
            }
            (KernelKind::Rbf, Features::Dense { .. }, _) => rbf_of_sq(
                sq_dist(x.dense_row(i).unwrap(), y.dense_row(j).unwrap()),
                self.lengthscale,
            ),
            (KernelKind::Matern52, Features::Dense { .. }, _) => matern52_of_sq(
                sq_dist(x.dense_row(i).unwrap(), y.dense_row(j).unwrap()),
                self.lengthscale,
            ),
            (kind, x, _) => panic!("kernel {} on {}", kind.name(), x.kind()),
        }
    }

    /// The symmetric matrix `k(X, X)`, row-major `n × n`, f64.
    pub fn gram(&self, x: &Features) -> Vec<f64> {
        use rayon::prelude::*;
        let n = x.len();
        let mut out = vec![0.0; n * n];
        out.par_chunks_mut(n.max(1))
            .enumerate()
            .for_each(|(i, row)| {
                for (j, v) in row.iter_mut().enumerate().take(i + 1) {
                    *v = self.eval(x, i, x, j);
                }
            });
        for i in 0..n {
            for j in i + 1..n {
                out[i * n + j] = out[j * n + i];
            }
        }
        out
    }

    /// The block `k(X, Y)`, row-major `|X| × |Y|`, f64.
    pub fn cross(&self, x: &Features, y: &Features) -> Vec<f64> {
        let m = y.len();
        let mut out = Vec::with_capacity(x.len() * m);
        for i in 0..x.len() {
            for j in 0..m {
                out.push(self.eval(x, i, y, j));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(words: &[u64]) -> Features {
        Features::Bits {
            nbits: 64,
            data: words.to_vec(),
        }
    }

    #[test]
    fn tanimoto_hand_values() {
        // a = {0,1,2}, b = {1,2,3,4}: |a&b| = 2, |a|b| = 5.
        assert_eq!(tanimoto(&[0b111], &[0b11110]), 2.0 / 5.0);
        assert_eq!(tanimoto(&[0], &[0]), 1.0);
        assert_eq!(tanimoto(&[0], &[1]), 0.0);
        assert_eq!(tanimoto(&[u64::MAX, 1], &[u64::MAX, 1]), 1.0);
    }

    #[test]
    fn minmax_hand_values_and_binary_equals_tanimoto() {
        // a = {0:3, 5:1}, b = {0:1, 2:2, 5:4}: mins = 1+1 = 2, maxs = 3+2+4 = 9.
        let a: (&[u32], &[u32]) = (&[0, 5], &[3, 1]);
        let b: (&[u32], &[u32]) = (&[0, 2, 5], &[1, 2, 4]);
        assert_eq!(minmax(a, b), 2.0 / 9.0);
        assert_eq!(minmax(b, a), 2.0 / 9.0);
        assert_eq!(minmax((&[], &[]), (&[], &[])), 1.0);
        // Binary counts: same as Tanimoto on the bit sets {0,1,2} and {1,2,3,4}.
        let a: (&[u32], &[u32]) = (&[0, 1, 2], &[1, 1, 1]);
        let b: (&[u32], &[u32]) = (&[1, 2, 3, 4], &[1, 1, 1, 1]);
        assert_eq!(minmax(a, b), tanimoto(&[0b111], &[0b11110]));
    }

    #[test]
    fn dense_kernels_hand_values() {
        let d2 = sq_dist(&[0.0, 0.0], &[3.0, 4.0]);
        assert_eq!(d2, 25.0);
        assert!((rbf_of_sq(d2, 5.0) - (-0.5f64).exp()).abs() < 1e-15);
        let u = 5f64.sqrt();
        let want = (1.0 + u + 5.0 / 3.0) * (-u).exp();
        assert!((matern52_of_sq(d2, 5.0) - want).abs() < 1e-15);
        assert_eq!(rbf_of_sq(0.0, 0.3), 1.0);
        assert_eq!(matern52_of_sq(0.0, 0.3), 1.0);
    }

    #[test]
    fn gram_is_symmetric_with_unit_diagonal() {
        let x = bits(&[0b1011, 0b1, 0, 0b1111_0000]);
        let k = Kernel {
            kind: KernelKind::Tanimoto,
            lengthscale: 1.0,
        };
        let g = k.gram(&x);
        let n = x.len();
        assert_eq!(n, 4);
        for i in 0..n {
            assert_eq!(g[i * n + i], 1.0);
            for j in 0..n {
                assert_eq!(g[i * n + j], g[j * n + i]);
                assert!((0.0..=1.0).contains(&g[i * n + j]));
            }
        }
        assert_eq!(g[1], tanimoto(&[0b1011], &[0b1]));
    }

    #[test]
    fn kernel_feature_checks() {
        let bits = FeatureKind::Bits { nbits: 2048 };
        let counts = FeatureKind::Counts { ndim: 2048 };
        let dense = FeatureKind::Dense { dim: 8 };
        assert!(KernelKind::Tanimoto.check(bits).is_ok());
        assert!(KernelKind::MinMax.check(counts).is_ok());
        assert!(KernelKind::Rbf.check(dense).is_ok());
        assert!(matches!(
            KernelKind::Tanimoto.check(dense),
            Err(Error::KernelMismatch { .. })
        ));
        assert!(KernelKind::Rbf.check(counts).is_err());
        assert!(KernelKind::Tanimoto.check(counts).is_err());
        assert_eq!(KernelKind::default_for(counts), KernelKind::MinMax);
    }
}
