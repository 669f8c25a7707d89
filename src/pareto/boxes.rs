//! The non-dominated region of a front cut into disjoint boxes, and the exact EHVI, PHVI and
//! HVI sums over them.

use super::hypervolume::{desc, Staircase};
use super::normal::{normal_cdf, partial_expectation, partial_expectation_range};
use super::{check_front, check_point, strictly_above};
use crate::error::{Error, Result};

/// One box `(lo, hi]` of the non-dominated region; `hi` may be infinite. Unused third
/// coordinates (two objectives) are never read.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cell {
    lo: [f64; 3],
    hi: [f64; 3],
}

/// A box as indices into the per-objective tables of bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct IndexedCell {
    lo: [u32; 3],
    hi: [u32; 3],
}

/// The region `A = {z > reference : no front point weakly dominates z}` as disjoint boxes,
/// built once per front and reused for every candidate: [`ehvi`](FrontBoxes::ehvi),
/// [`phvi`](FrontBoxes::phvi) and [`hvi`](FrontBoxes::hvi) are sums over the boxes. `n + 1`
/// boxes for a front of `n` non-dominated points in two objectives, `O(n²)` in three.
///
/// The boxes' bounds take only `O(n)` distinct values per objective, so a candidate's
/// Gaussian terms (`Φ`, `φ`) are computed once per distinct bound, not once per box: a
/// candidate costs `O(m n)` erfc evaluations plus `O(m)` arithmetic per box.
#[derive(Debug, Clone)]
pub struct FrontBoxes {
    m: usize,
    /// Per objective, the distinct box bounds, ascending (`+∞` last).
    bounds: [Vec<f64>; 3],
    cells: Vec<IndexedCell>,
}

impl FrontBoxes {
    /// The boxes of `front` (rows of `m = reference.len()` objectives, flat; `m` is 2 or 3).
    /// Rows that do not strictly dominate the reference, and dominated rows, change nothing.
    pub fn new(front: &[f64], reference: &[f64]) -> Result<Self> {
        let m = check_front(front, reference)?;
        let mut points = strictly_above(front, reference);
        let (r0, r1) = (reference[0], reference[1]);
        let mut cells = Vec::new();
        let mut stair = Staircase::default();
        if m == 2 {
            for p in &points {
                stair.insert(p[0], p[1]);
            }
            push_slab(&stair, r0, r1, 0.0, 0.0, &mut cells);
        } else {
            // Slabs (lower, upper] of the third objective between consecutive front levels;
            // in each, the points weakly dominating a z are those at or above `upper`.
            points.sort_by(|a, b| desc(a[2], b[2]));
            let mut upper = f64::INFINITY;
            let mut i = 0;
            loop {
                let lower = points.get(i).map_or(reference[2], |p| p[2]);
                push_slab(&stair, r0, r1, lower, upper, &mut cells);
                if i == points.len() {
                    break;
                }
                let level = points[i][2];
                while i < points.len() && points[i][2] == level {
                    stair.insert(points[i][0], points[i][1]);
                    i += 1;
                }
                upper = level;
            }
        }
        Ok(Self::indexed(m, &cells))
    }

    /// The boxes with their bounds replaced by indices into per-objective tables.
    fn indexed(m: usize, cells: &[Cell]) -> Self {
        let mut bounds: [Vec<f64>; 3] = Default::default();
        for (j, table) in bounds.iter_mut().enumerate().take(m) {
            table.extend(cells.iter().flat_map(|c| [c.lo[j], c.hi[j]]));
            // Bounds are finite or +∞, never NaN.
            table.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            table.dedup();
        }
        let at = |j: usize, v: f64| bounds[j].partition_point(|&b| b < v) as u32;
        let cells = cells
            .iter()
            .map(|c| {
                let mut out = IndexedCell {
                    lo: [0; 3],
                    hi: [0; 3],
                };
                for j in 0..m {
                    out.lo[j] = at(j, c.lo[j]);
                    out.hi[j] = at(j, c.hi[j]);
                }
                out
            })
            .collect();
        FrontBoxes { m, bounds, cells }
    }

    /// The number of objectives.
    pub fn objectives(&self) -> usize {
        self.m
    }

    /// The number of boxes.
    pub fn box_count(&self) -> usize {
        self.cells.len()
    }

    /// The expected hypervolume improvement of a candidate whose objectives are independent
    /// Gaussians `N(mean[j], sd[j]²)`: exact (see the [module docs](super)). `sd[j] = 0` is
    /// allowed; all zero, it is the plain [`hvi`](FrontBoxes::hvi) of `mean`.
    pub fn ehvi(&self, mean: &[f64], sd: &[f64]) -> Result<f64> {
        self.check_gaussian(mean, sd)?;
        Ok(self.box_sum(mean, sd, |a, mu, sd| {
            let g = partial_expectation(a, mu, sd);
            (g, g)
        }))
    }

    /// An upper bound of [`ehvi`](FrontBoxes::ehvi) at the same `mean` and `sd`, without
    /// `erfc` or `exp`: each box's factor `G(lo) − G(hi)` from an upper bound of `G(lo)` and a
    /// lower one of `G(hi)` (`partial_expectation_range`), so within about 1e-4 of each `G`
    /// (the pruned pass bounds every candidate this way).
    pub fn ehvi_bound(&self, mean: &[f64], sd: &[f64]) -> Result<f64> {
        self.check_gaussian(mean, sd)?;
        Ok(self.box_sum(mean, sd, partial_expectation_range))
    }

    /// `Σ_boxes Π_j max(G_hi(lo_j) − G_lo(hi_j), 0)` with `g(a, mu, sd) = (G_lo(a), G_hi(a))`,
    /// bounds of `E[(Y − a)⁺]` for `Y ~ N(mu, sd²)` (equal for the exact sum), computed once per
    /// distinct box bound.
    fn box_sum(&self, mean: &[f64], sd: &[f64], g: impl Fn(f64, f64, f64) -> (f64, f64)) -> f64 {
        // Every bound of every objective in one buffer: objective `j`'s from `at[j]`.
        let mut at = [0usize; 3];
        let mut gs = Vec::with_capacity(self.bounds.iter().map(Vec::len).sum());
        for j in 0..self.m {
            at[j] = gs.len();
            gs.extend(self.bounds[j].iter().map(|&a| g(a, mean[j], sd[j])));
        }
        self.cells
            .iter()
            .map(|c| {
                (0..self.m)
                    .map(|j| {
                        (gs[at[j] + c.lo[j] as usize].1 - gs[at[j] + c.hi[j] as usize].0).max(0.0)
                    })
                    .product::<f64>()
            })
            .sum()
    }

    /// The probability that a candidate with independent Gaussian objectives
    /// `N(mean[j], sd[j]²)` lands in the non-dominated region: not weakly dominated by any
    /// front point and strictly dominating the reference. Exact; with every `sd` 0 it is 1 or
    /// 0.
    pub fn phvi(&self, mean: &[f64], sd: &[f64]) -> Result<f64> {
        self.check_gaussian(mean, sd)?;
        // Per bound b, both P(Y ≤ b) and P(Y > b): a box above the mean takes the difference
        // of the upper tails, one below it of the lower ones, so no `1 − x` cancels.
        let tails: Vec<Vec<(f64, f64)>> = (0..self.m)
            .map(|j| {
                self.bounds[j]
                    .iter()
                    .map(|&b| tails(b, mean[j], sd[j]))
                    .collect()
            })
            .collect();
        let p: f64 = self
            .cells
            .iter()
            .map(|c| {
                (0..self.m)
                    .map(|j| {
                        let (lo, hi) = (c.lo[j] as usize, c.hi[j] as usize);
                        let (t, lo_b) = (&tails[j], self.bounds[j][lo]);
                        let p = if lo_b > mean[j] {
                            t[lo].1 - t[hi].1
                        } else {
                            t[hi].0 - t[lo].0
                        };
                        p.clamp(0.0, 1.0)
                    })
                    .product::<f64>()
            })
            .sum();
        Ok(p.clamp(0.0, 1.0))
    }

    /// An upper bound of [`phvi`](FrontBoxes::phvi) at every `sd[j]` from 0 to `sd_hi[j]`
    /// (PHVI is not monotone in the spread: a mean inside the non-dominated region loses
    /// probability as it grows, one outside gains it). Each box's probability is a product of
    /// one interval probability per objective, and each factor is bounded on its own: by 1
    /// where the mean lies in the interval, else by its value at the spread that maximises it,
    /// or at `sd_hi[j]` when that is smaller (`interval_max`).
    pub fn phvi_bound(&self, mean: &[f64], sd_hi: &[f64]) -> Result<f64> {
        self.check_gaussian(mean, sd_hi)?;
        let p: f64 = self
            .cells
            .iter()
            .map(|c| {
                (0..self.m)
                    .map(|j| {
                        let b = &self.bounds[j];
                        interval_max(b[c.lo[j] as usize], b[c.hi[j] as usize], mean[j], sd_hi[j])
                    })
                    .product::<f64>()
            })
            .sum();
        Ok(p.min(1.0))
    }

    /// The hypervolume improvement of a deterministic `point`: the volume of the boxes'
    /// parts below it.
    pub fn hvi(&self, point: &[f64]) -> Result<f64> {
        check_point("point", point, self.m)?;
        Ok(self
            .cells
            .iter()
            .map(|c| {
                (0..self.m)
                    .map(|j| {
                        let (lo, hi) = (
                            self.bounds[j][c.lo[j] as usize],
                            self.bounds[j][c.hi[j] as usize],
                        );
                        (point[j].min(hi) - lo).max(0.0)
                    })
                    .product::<f64>()
            })
            .sum())
    }

    fn check_gaussian(&self, mean: &[f64], sd: &[f64]) -> Result<()> {
        check_point("mean", mean, self.m)?;
        check_point("sd", sd, self.m)?;
        if let Some(j) = sd.iter().position(|s| *s < 0.0) {
            return Err(Error::param(
                "sd",
                format!("objective {j} has a negative standard deviation {}", sd[j]),
            ));
        }
        Ok(())
    }
}

/// Appends the boxes of one slab `(lower, upper]` of the third objective (ignored for two
/// objectives) above `(r0, r1)`: with the steps `(x_i, y_i)` (x descending, y ascending) and
/// `y_0 = r1`, the boxes `(x_i, ∞) × (y_{i−1}, y_i]` and `(r0, ∞) × (y_n, ∞)`.
fn push_slab(stair: &Staircase, r0: f64, r1: f64, lower: f64, upper: f64, out: &mut Vec<Cell>) {
    let mut below = r1;
    for &(x, y) in stair.steps() {
        out.push(Cell {
            lo: [x, below, lower],
            hi: [f64::INFINITY, y, upper],
        });
        below = y;
    }
    out.push(Cell {
        lo: [r0, below, lower],
        hi: [f64::INFINITY, f64::INFINITY, upper],
    });
}

/// Expected hypervolume improvement of one point over `front` above `reference`
/// (`m = reference.len()`, 2 or 3 objectives, independent Gaussian objectives
/// `N(mean[j], sd[j]²)`). Exact in both cases, no Monte Carlo; with a zero `sd` it is [`hvi`].
/// To score many candidates against one front, build [`FrontBoxes`] once.
///
/// [`hvi`]: super::hvi
pub fn ehvi(mean: &[f64], sd: &[f64], front: &[f64], reference: &[f64]) -> Result<f64> {
    FrontBoxes::new(front, reference)?.ehvi(mean, sd)
}

/// Probability of hypervolume improvement: that a candidate with independent Gaussian
/// objectives `N(mean[j], sd[j]²)` is not weakly dominated by any row of `front` and strictly
/// dominates `reference` (`m = reference.len()`, 2 or 3). Exact. To score many candidates
/// against one front, build [`FrontBoxes`] once.
pub fn phvi(mean: &[f64], sd: &[f64], front: &[f64], reference: &[f64]) -> Result<f64> {
    FrontBoxes::new(front, reference)?.phvi(mean, sd)
}

/// The largest `P(lo < Y ≤ hi)` for `Y ~ N(mu, sd²)` over `0 ≤ sd ≤ sd_hi` (`hi` possibly
/// infinite): 1 with `mu` in the interval; else, with `a < b` the distances from `mu` to the
/// interval's near and far ends, `Φ(−a/sd) − Φ(−b/sd)` rises from 0 up to
/// `sd* = √((b² − a²) / (2 ln(b/a)))`, where `b·φ(b/sd) = a·φ(a/sd)`, and falls after it (it
/// only rises when `b` is infinite), so its largest value is at `min(sd*, sd_hi)`.
fn interval_max(lo: f64, hi: f64, mu: f64, sd_hi: f64) -> f64 {
    if lo <= mu && mu <= hi {
        return 1.0;
    }
    if sd_hi == 0.0 {
        return 0.0;
    }
    let (a, b) = if mu < lo {
        (lo - mu, hi - mu)
    } else {
        (mu - hi, mu - lo)
    };
    let sd = if b.is_finite() {
        ((b * b - a * a) / (2.0 * (b / a).ln())).sqrt().min(sd_hi)
    } else {
        sd_hi
    };
    (normal_cdf(-a / sd) - normal_cdf(-b / sd)).clamp(0.0, 1.0)
}

/// `(P(Y ≤ b), P(Y > b))` for `Y ~ N(mu, sd²)`, `b` possibly infinite; with `sd = 0`,
/// `(1[mu ≤ b], 1[mu > b])`, so that differences give `P(lo < Y ≤ hi)` exactly.
#[inline]
fn tails(b: f64, mu: f64, sd: f64) -> (f64, f64) {
    if sd == 0.0 {
        return if mu <= b { (1.0, 0.0) } else { (0.0, 1.0) };
    }
    let z = (b - mu) / sd;
    (normal_cdf(z), normal_cdf(-z))
}
