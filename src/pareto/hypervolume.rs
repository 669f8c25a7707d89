//! Exact hypervolume for two and three objectives, the improvement of one point, and the
//! default reference point.

use std::cmp::Ordering;

use super::{check_front, check_point, check_rows, strictly_above};
use crate::error::{Error, Result};

/// The hypervolume of `front` (rows of `m` objectives, flat) above `reference`: the measure of
/// the points `z` with `reference < z ≤ p` for some front point `p`. Exact for `m = 2` and
/// `m = 3` (other `m` are an error, as is a reference of another length). Rows that do not
/// strictly dominate the reference add nothing; dominated and repeated rows are allowed.
pub fn hypervolume(front: &[f64], m: usize, reference: &[f64]) -> Result<f64> {
    super::check_hv_objectives(m)?;
    check_point("reference", reference, m)?;
    check_front(front, reference)?;
    Ok(volume(strictly_above(front, reference), reference))
}

/// The hypervolume improvement of `point` over `front`, `HV(front ∪ {point}) − HV(front)`, with
/// `m = reference.len()` objectives (2 or 3).
///
/// Computed as the volume of the box between the reference and the point less the
/// hypervolume of the front clipped to that box (every front point replaced by its
/// componentwise minimum with `point`): one hypervolume, not two.
pub fn hvi(point: &[f64], front: &[f64], reference: &[f64]) -> Result<f64> {
    let m = check_front(front, reference)?;
    check_point("point", point, m)?;
    if point.iter().zip(reference).any(|(p, r)| p <= r) {
        return Ok(0.0);
    }
    let whole: f64 = point.iter().zip(reference).map(|(p, r)| p - r).product();
    let clipped: Vec<f64> = front
        .chunks_exact(m)
        .flat_map(|q| q.iter().zip(point).map(|(a, b)| a.min(*b)))
        .collect();
    let covered = volume(strictly_above(&clipped, reference), reference);
    Ok((whole - covered).max(0.0))
}

/// The default reference point for `labeled` (rows of `m` objectives, flat, at least one):
/// per objective, the worst (smallest) labeled value less 10% of the labeled range, or, when
/// every labeled value is the same `v`, `v − 1e-6 · max(1, |v|)`, so that the reference is
/// always strictly worse than every labeled point.
pub fn reference_point(labeled: &[f64], m: usize) -> Result<Vec<f64>> {
    let n = check_rows("labeled", labeled, m)?;
    if n == 0 {
        return Err(Error::param(
            "labeled",
            "a reference point needs at least one labeled point",
        ));
    }
    Ok((0..m)
        .map(|j| {
            let column = labeled.iter().skip(j).step_by(m);
            let lo = column.clone().fold(f64::INFINITY, |a, &b| a.min(b));
            let hi = column.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            let range = hi - lo;
            if range > 0.0 && range.is_finite() {
                lo - 0.1 * range
            } else {
                lo - 1e-6 * lo.abs().max(1.0)
            }
        })
        .collect())
}

/// The hypervolume of points that all strictly dominate `reference` (2 or 3 objectives).
pub(super) fn volume(mut points: Vec<[f64; 3]>, reference: &[f64]) -> f64 {
    if reference.len() == 2 {
        // Descending first objective: each point adds the strip above the best second
        // objective seen so far.
        points.sort_by(|a, b| desc(a[0], b[0]).then(desc(a[1], b[1])));
        let mut best = reference[1];
        let mut area = 0.0;
        for p in &points {
            if p[1] > best {
                area += (p[0] - reference[0]) * (p[1] - best);
                best = p[1];
            }
        }
        return area;
    }
    // Slabs between consecutive levels of the third objective, each the area of the
    // staircase of the points at or above its top.
    points.sort_by(|a, b| desc(a[2], b[2]));
    let mut stair = Staircase::default();
    let mut vol = 0.0;
    let mut i = 0;
    while i < points.len() {
        let level = points[i][2];
        while i < points.len() && points[i][2] == level {
            stair.insert(points[i][0], points[i][1]);
            i += 1;
        }
        let below = points.get(i).map_or(reference[2], |p| p[2]);
        vol += stair.area(reference[0], reference[1]) * (level - below);
    }
    vol
}

/// Descending order of finite values.
#[inline]
pub(super) fn desc(a: f64, b: f64) -> Ordering {
    b.partial_cmp(&a).unwrap_or(Ordering::Equal)
}

/// The non-dominated set of two-dimensional points inserted so far: the first coordinate
/// strictly descending, the second strictly ascending.
#[derive(Debug, Default)]
pub(super) struct Staircase {
    steps: Vec<(f64, f64)>,
}

impl Staircase {
    /// Adds `(x, y)` unless a step weakly dominates it, removing the steps it dominates.
    pub(super) fn insert(&mut self, x: f64, y: f64) {
        let at_least = self.steps.partition_point(|s| s.0 >= x);
        // The last step with a first coordinate ≥ x has the largest second coordinate of them.
        if at_least > 0 && self.steps[at_least - 1].1 >= y {
            return;
        }
        // A step with the same x (at most one) has a smaller y: dominated, as are the steps
        // right of x up to y.
        let above = self.steps.partition_point(|s| s.0 > x);
        let mut end = at_least;
        while end < self.steps.len() && self.steps[end].1 <= y {
            end += 1;
        }
        self.steps.splice(above..end, [(x, y)]);
    }

    /// The area the steps dominate above `(r0, r1)` (every step strictly dominates it).
    pub(super) fn area(&self, r0: f64, r1: f64) -> f64 {
        let mut below = r1;
        let mut area = 0.0;
        for &(x, y) in &self.steps {
            area += (x - r0) * (y - below);
            below = y;
        }
        area
    }

    /// The steps, first coordinate descending.
    pub(super) fn steps(&self) -> &[(f64, f64)] {
        &self.steps
    }
}
