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
//! - `pareto`: three objectives `f1`, `f2`, `f3` ([`PARETO_OBJECTIVES`]), all to be
//!   **maximised**, exact (no noise): `f_k(x) = 1 − |z − p_k|² / 8` where `z = (x_0, x_1)` (the
//!   other features do not matter; `dim ≥ 2`) and the peaks `p_k` lie on the circle of radius
//!   1.5 at 90°, 210° and 330°. Each pair conflicts (over the box their correlation is about
//!   −0.2), and the front is known: the Pareto-optimal candidates are those whose `z` lies in
//!   the triangle of the peaks, and for `f1, f2` alone on the segment from `p_1` to `p_2`,
//!   where `f1 = 1 − (tD)²/8`, `f2 = 1 − ((1 − t)D)²/8`, `D = 1.5·√3`, `t ∈ [0, 1]`. On a
//!   finite pool the front is the non-dominated sort of the label columns
//!   ([`crate::pareto::nondominated_layers`]). `synth` writes `id,f1,f2,f3` as the labels;
//!   the one-objective label `y` is `f1`.

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
    /// Three conflicting smooth objectives with a known Pareto front.
    Pareto,
}

/// A generated data set: the labeled pool and, for `shift`, the rows that form the test set.
pub struct Synthetic {
    /// Every row, pool and test.
    pub pool: LabeledPool,
    /// Rows of the test set (empty except for `shift`).
    pub test_rows: Vec<usize>,
    /// For `pareto`, one column of values per objective of [`PARETO_OBJECTIVES`] (every one
    /// maximised), one value per row; empty for the other scenarios.
    pub objectives: Vec<Vec<f64>>,
}

/// The label columns of the `pareto` scenario, each to be maximised.
pub const PARETO_OBJECTIVES: [&str; 3] = ["f1", "f2", "f3"];

impl Synthetic {
    /// Writes the objectives as CSV, `id,f1,f2,f3`, the id being the row number (as `synth`
    /// writes every labels file), for a scenario with objectives (`pareto`).
    ///
    /// # Errors
    /// An error when a write fails, or when the scenario has no objectives
    /// ([`std::io::ErrorKind::InvalidInput`]).
    pub fn write_objectives_csv(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        if self.objectives.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "this scenario has no objectives to write",
            ));
        }
        let mut csv = csv::Writer::from_writer(w);
        let names = &PARETO_OBJECTIVES[..self.objectives.len()];
        csv.write_record(std::iter::once("id").chain(names.iter().copied()))?;
        for r in 0..self.pool.y.len() {
            csv.write_record(
                std::iter::once(r.to_string())
                    .chain(self.objectives.iter().map(|col| col[r].to_string())),
            )?;
        }
        csv.flush()
    }
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
        (
            Scenario::Pareto,
            "pareto",
            "Three conflicting smooth objectives f1,f2,f3 (maximised) with a known Pareto front",
        ),
    ];
}
crate::names::named!(Scenario);

/// The most values (`n × dim`) a synthetic pool may hold: 2^28, 1 GiB of `f32`, as it is built
/// in memory.
pub const MAX_SYNTH_VALUES: usize = 1 << 28;

/// Generates `n` candidates with `dim` dense features (at most [`MAX_SYNTH_VALUES`] values;
/// `pareto` needs `dim ≥ 2`).
pub fn generate(scenario: Scenario, n: usize, dim: usize, seed: u64) -> Result<Synthetic> {
    if n < 10 || dim == 0 {
        return Err(Error::param(
            "n",
            format!("need n ≥ 10 and dim ≥ 1, got n = {n}, dim = {dim}"),
        ));
    }
    if scenario == Scenario::Pareto && dim < 2 {
        return Err(Error::param(
            "dim",
            format!("the pareto scenario's objectives use two features; need dim ≥ 2, got {dim}"),
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
            Scenario::Pareto => pareto_objective(0, &x),
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
    let objectives = if scenario == Scenario::Pareto {
        (0..PARETO_OBJECTIVES.len())
            .map(|k| {
                data.chunks_exact(dim)
                    .map(|x| pareto_objective(k, x))
                    .collect()
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Synthetic {
        pool: LabeledPool {
            features: Features::Dense { dim, data },
            ids: (0..n).map(|i| format!("s{i}")).collect(),
            y,
        },
        test_rows: (n - n_test..n).collect(),
        objectives,
    })
}

/// Objective `k` of the `pareto` scenario at `x`: `1 − |z − p_k|² / 8`, `z = (x_0, x_1)`.
fn pareto_objective(k: usize, x: &[f32]) -> f64 {
    let (px, py) = pareto_peak(k);
    let (dx, dy) = (f64::from(x[0]) - px, f64::from(x[1]) - py);
    1.0 - (dx * dx + dy * dy) / 8.0
}

/// The peak of objective `k` of the `pareto` scenario, in `(x_0, x_1)`: radius 1.5, at
/// 90° + 120°·k.
pub fn pareto_peak(k: usize) -> (f64, f64) {
    let angle = (90.0 + 120.0 * k as f64).to_radians();
    (1.5 * angle.cos(), 1.5 * angle.sin())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pareto::nondominated_layers;

    fn pearson(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma) * (x - ma)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb) * (y - mb)).sum();
        cov / (va * vb).sqrt()
    }

    /// Rows of the objectives `ks`, flat.
    fn points(s: &Synthetic, ks: &[usize]) -> Vec<f64> {
        (0..s.pool.y.len())
            .flat_map(|r| ks.iter().map(move |&k| s.objectives[k][r]))
            .collect()
    }

    #[test]
    fn pareto_objectives_conflict_and_have_a_front() {
        let s = generate(Scenario::Pareto, 1000, 4, 7).unwrap();
        assert_eq!(s.objectives.len(), 3);
        assert_eq!(s.pool.y, s.objectives[0]);
        assert!(s.test_rows.is_empty());
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            let r = pearson(&s.objectives[a], &s.objectives[b]);
            assert!(r < -0.1, "corr(f{}, f{}) = {r}", a + 1, b + 1);
        }
        let two = nondominated_layers(&points(&s, &[0, 1]), 2).unwrap();
        assert!(two[0].len() >= 5, "front of f1, f2: {:?}", two[0]);
        assert!(two.len() > 5, "{} layers", two.len());
        let three = nondominated_layers(&points(&s, &[0, 1, 2]), 3).unwrap();
        assert!(
            three[0].len() > two[0].len(),
            "{} vs {}",
            three[0].len(),
            two[0].len()
        );
        // The front of f1, f2 follows the segment between the peaks: each of its points lies
        // closer to it than a typical candidate does.
        let ((ax, ay), (bx, by)) = (pareto_peak(0), pareto_peak(1));
        let to_segment = |r: usize| {
            let x = s.pool.features.dense_row(r).unwrap();
            let (px, py) = (f64::from(x[0]) - ax, f64::from(x[1]) - ay);
            let (dx, dy) = (bx - ax, by - ay);
            let t = ((px * dx + py * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
            ((px - t * dx).powi(2) + (py - t * dy).powi(2)).sqrt()
        };
        let worst = two[0].iter().map(|&r| to_segment(r)).fold(0.0, f64::max);
        let mut all: Vec<f64> = (0..1000).map(to_segment).collect();
        all.sort_by(f64::total_cmp);
        assert!(
            worst < 0.5 && all[500] > 2.0 * worst,
            "a front point {worst} from the segment, the median candidate {}",
            all[500]
        );
        // Every value is exactly the function of the first two features.
        for r in 0..1000 {
            let x = s.pool.features.dense_row(r).unwrap();
            for k in 0..3 {
                assert_eq!(s.objectives[k][r], pareto_objective(k, x));
            }
        }
    }

    #[test]
    fn pareto_is_deterministic_for_a_seed() {
        let a = generate(Scenario::Pareto, 200, 3, 5).unwrap();
        let b = generate(Scenario::Pareto, 200, 3, 5).unwrap();
        assert_eq!(a.pool.features, b.pool.features);
        assert_eq!(a.objectives, b.objectives);
        let c = generate(Scenario::Pareto, 200, 3, 6).unwrap();
        assert_ne!(a.objectives, c.objectives);
    }

    #[test]
    fn pareto_needs_two_features_and_writes_its_columns() {
        let e = generate(Scenario::Pareto, 100, 1, 0).err().unwrap();
        assert!(
            matches!(&e, Error::InvalidParam { name: "dim", .. }),
            "{e:?}"
        );
        let s = generate(Scenario::Pareto, 10, 2, 0).unwrap();
        let mut out = Vec::new();
        s.write_objectives_csv(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 11);
        assert_eq!(lines[0], "id,f1,f2,f3");
        assert_eq!(
            lines[3],
            format!(
                "2,{},{},{}",
                s.objectives[0][2], s.objectives[1][2], s.objectives[2][2]
            )
        );
        let smooth = generate(Scenario::Smooth, 10, 2, 0).unwrap();
        assert!(smooth.objectives.is_empty());
        assert!(smooth.write_objectives_csv(&mut Vec::new()).is_err());
    }
}
