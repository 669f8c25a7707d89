//! Synthetic pools whose answer is known, to check that the verdicts mean what they say.
//!
//! Dense features (`dim` columns, uniform on [-2, 2] unless said otherwise: a bounded space, so
//! exploring it is worth something), labels from a fixed seeded function:
//! - `smooth`: `y = f(x)`, a smooth function (a sum of sinusoids along random directions) plus
//!   small noise (sd 0.05 of its spread). Active learning should beat random clearly.
//! - `noise`: `y` independent standard normal. Nothing can beat random.
//! - `homogeneous`: every candidate within 0.01 of one point, `y = 0.1·f(x) + noise(sd 1)`:
//!   near-identical candidates whose values are dominated by noise.
//! - `outliers`: `smooth`, plus 10% of candidates scattered far away (distance 12 from the
//!   centre, each in its own random direction, so labeling one leaves the others uncertain),
//!   holding the pool's worst values. They maximise uncertainty, so pure `variance` sampling
//!   spends its budget on them.
//! - `shift`: `smooth` labels, but the last 20% of the rows are a test set drawn from a box
//!   shifted by 6 in every coordinate, away from the pool's box: learning the pool does
//!   little for accuracy on the test set, whatever the strategy (`Synthetic::test_rows`;
//!   `synth` writes them to `PREFIX.test_ids.txt` for `simulate --test-ids`).

use crate::data::Features;
use crate::error::{Error, Result};
use crate::rng::{draw_u32, normal_draw, uniform};

use super::LabeledPool;

/// A synthetic scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Labels a smooth function of the features.
    Smooth,
    /// Labels independent of the features.
    Noise,
    /// Near-identical candidates, labels mostly noise.
    Homogeneous,
    /// Smooth labels plus far-away candidates with poor labels.
    Outliers,
    /// Smooth labels, with a test set drawn away from the pool.
    Shift,
}

/// A generated data set: the labeled pool and, for `shift`, the rows that form the test set.
pub struct Synthetic {
    /// Every row, pool and test.
    pub pool: LabeledPool,
    /// Rows of the test set (empty except for `shift`).
    pub test_rows: Vec<usize>,
}

impl crate::names::Named for Scenario {
    const WHAT: &'static str = "scenario";
    const TABLE: &'static [(Self, &'static str, &'static str)] = &[
        (
            Scenario::Smooth,
            "smooth",
            "Labels a smooth function of the features",
        ),
        (
            Scenario::Noise,
            "noise",
            "Labels independent of the features",
        ),
        (
            Scenario::Homogeneous,
            "homogeneous",
            "Near-identical candidates, labels mostly noise",
        ),
        (
            Scenario::Outliers,
            "outliers",
            "Smooth labels plus far-away candidates with poor labels",
        ),
        (
            Scenario::Shift,
            "shift",
            "Smooth labels, with a test set drawn away from the pool",
        ),
    ];
}
crate::names::named!(Scenario);

/// The most values (`n × dim`) a synthetic pool may hold: 2^28, 1 GiB of `f32`, as it is built
/// in memory.
pub const MAX_SYNTH_VALUES: usize = 1 << 28;

/// Generates `n` candidates with `dim` dense features (at most [`MAX_SYNTH_VALUES`] values).
pub fn generate(scenario: Scenario, n: usize, dim: usize, seed: u64) -> Result<Synthetic> {
    if n < 10 || dim == 0 {
        return Err(Error::param(
            "n",
            format!("need n ≥ 10 and dim ≥ 1, got n = {n}, dim = {dim}"),
        ));
    }
    // The whole pool is built in memory: bound it before reserving anything.
    if n.checked_mul(dim).is_none_or(|v| v > MAX_SYNTH_VALUES) {
        return Err(Error::LimitExceeded {
            what: format!("synthetic pool values (n = {n} rows × dim = {dim})"),
            requested: (n as u128 * dim as u128).min(u64::MAX as u128) as u64,
            max: MAX_SYNTH_VALUES as u64,
        });
    }
    let gauss = |row: usize, col: usize, stream: u32| -> f32 {
        normal_draw(seed ^ u64::from(stream) << 40, col as u32, row as u64)
    };
    // Random directions and phases of the smooth function.
    let terms: Vec<(Vec<f32>, f32, f32)> = (0..4)
        .map(|t| {
            let dir: Vec<f32> = (0..dim)
                .map(|c| gauss(t, c, 1) / (dim as f32).sqrt())
                .collect();
            let phase = uniform(draw_u32(seed, 2, t as u64, 0)) * std::f32::consts::TAU;
            (dir, phase, 1.0 / (1.0 + t as f32))
        })
        .collect();
    let f = |x: &[f32]| -> f64 {
        terms
            .iter()
            .map(|(d, p, w)| {
                let z: f32 = d.iter().zip(x).map(|(a, b)| a * b).sum();
                f64::from(w * (3.0 * z + p).sin())
            })
            .sum()
    };
    let n_out = if scenario == Scenario::Outliers {
        (n / 10).max(1)
    } else {
        0
    };
    let n_test = if scenario == Scenario::Shift {
        n / 5
    } else {
        0
    };
    let mut data = Vec::with_capacity(n * dim);
    let mut y = Vec::with_capacity(n);
    for r in 0..n {
        let outlier = r >= n - n_out;
        let mut x: Vec<f32> = (0..dim)
            .map(|c| match scenario {
                Scenario::Homogeneous => 0.01 * gauss(r, c, 3),
                _ => 4.0 * uniform(draw_u32(seed ^ 3 << 40, c as u32, r as u64, 5)) - 2.0,
            })
            .collect();
        if r >= n - n_test {
            x.iter_mut().for_each(|v| *v += 6.0);
        }
        if outlier {
            let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-6);
            x.iter_mut().for_each(|v| *v *= 12.0 / norm);
        }
        let e = f64::from(gauss(r, 0, 4));
        let v = match scenario {
            Scenario::Smooth | Scenario::Outliers | Scenario::Shift => f(&x) + 0.05 * e,
            Scenario::Noise => e,
            Scenario::Homogeneous => 0.1 * f(&x) + e,
        };
        data.extend_from_slice(&x);
        y.push(v);
    }
    if n_out > 0 {
        // The outliers hold the worst values of the pool.
        let worst = y[..n - n_out].iter().copied().fold(f64::INFINITY, f64::min);
        for (k, v) in y[n - n_out..].iter_mut().enumerate() {
            *v = worst - 1.0 - 0.01 * k as f64;
        }
    }
    Ok(Synthetic {
        pool: LabeledPool {
            features: Features::Dense { dim, data },
            ids: (0..n).map(|i| format!("s{i}")).collect(),
            y,
        },
        test_rows: (n - n_test..n).collect(),
    })
}

/// Turns dense features into `nbits`-bit fingerprints with a locality-preserving sparse code:
/// bit `j` is set when the point lies within the distance of landmark `j` (a row chosen by the
/// seed) that covers the nearest 5% of a sample of rows. Nearby points share bits, so the
/// Tanimoto similarity of two fingerprints tracks the closeness of their dense points and the
/// labels keep their relation to the features; every point has about 5% of its bits set.
pub fn to_bits(features: &Features, nbits: usize, seed: u64) -> Result<Features> {
    let Features::Dense { dim, data } = features else {
        return Err(Error::param("bits", "needs dense features to encode"));
    };
    if nbits == 0 {
        return Err(Error::param("bits", "must be at least 1"));
    }
    let rows = features.len();
    let words = nbits.div_ceil(64);
    let row = |r: usize| &data[r * dim..(r + 1) * dim];
    let d2 =
        |a: &[f32], b: &[f32]| -> f32 { a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum() };
    let order = crate::rng::seeded_order(rows, seed ^ 0xb175);
    let landmarks: Vec<usize> = (0..nbits).map(|j| order[j % rows]).collect();
    let sample: Vec<usize> = (0..rows).step_by(rows.div_ceil(512).max(1)).collect();
    let radii: Vec<f32> = landmarks
        .iter()
        .map(|&l| {
            let mut v: Vec<f32> = sample.iter().map(|&r| d2(row(r), row(l))).collect();
            v.sort_by(f32::total_cmp);
            v[((v.len() as f64 * 0.05) as usize).min(v.len() - 1)]
        })
        .collect();
    let mut bits = vec![0u64; rows * words];
    for r in 0..rows {
        for (j, (&l, &rad)) in landmarks.iter().zip(&radii).enumerate() {
            if d2(row(r), row(l)) <= rad {
                bits[r * words + j / 64] |= 1 << (j % 64);
            }
        }
    }
    Ok(Features::Bits { nbits, data: bits })
}
