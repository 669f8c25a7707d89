//! Pareto dominance, non-dominated layers, crowding distance and the layered batch.

use std::cmp::Ordering;

use super::check_rows;
use crate::error::{Error, Result};

/// Whether `a` dominates `b` (all objectives maximised): no worse in every objective and better
/// in at least one. Equal points do not dominate each other. Compares the common prefix when
/// the lengths differ.
#[inline]
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    let mut better = false;
    for (x, y) in a.iter().zip(b) {
        if x < y {
            return false;
        }
        better |= x > y;
    }
    better
}

/// The non-dominated layers of `points` (`n` rows of `m` objectives, flat): layer 0 holds the
/// points no other point dominates, layer `L` those dominated only by points of earlier
/// layers. Indices ascend inside each layer; equal points share a layer; no points, no layers.
///
/// `O(n log n)` for `m = 2`, at most `O(m n²)` otherwise (see the [module docs](super)).
pub fn nondominated_layers(points: &[f64], m: usize) -> Result<Vec<Vec<usize>>> {
    let n = check_rows("points", points, m)?;
    Ok(layers(points, m, n, m == 2))
}

/// The layers of checked points; `staircase` checks only the last point of a layer, which is
/// exact for two objectives (a separate flag so the tests can compare both paths).
pub(super) fn layers(points: &[f64], m: usize, n: usize, staircase: bool) -> Vec<Vec<usize>> {
    let row = |i: usize| &points[i * m..(i + 1) * m];
    let mut order: Vec<usize> = (0..n).collect();
    // Descending lexicographic order puts every dominator before the points it dominates, so a
    // point's layer depends only on the points before it. `partial_cmp` (not `total_cmp`) keeps
    // -0.0 equal to 0.0, as dominance does; the values are finite.
    order.sort_by(|&a, &b| {
        row(b)
            .iter()
            .zip(row(a))
            .map(|(x, y)| x.partial_cmp(y).unwrap_or(Ordering::Equal))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then(a.cmp(&b))
    });
    let mut layers: Vec<Vec<usize>> = Vec::new();
    for &p in &order {
        let pr = row(p);
        // In two objectives a layer, in this order, has ascending second objectives: its last
        // point is the one most likely to dominate `p`, and dominates it if any does.
        let holds_dominator = |layer: &Vec<usize>| match layer.last() {
            Some(&q) if staircase => dominates(row(q), pr),
            _ => layer.iter().any(|&q| dominates(row(q), pr)),
        };
        // A dominator in layer k has one in layer k − 1 that dominates `p` too, so the layers
        // holding a dominator are a prefix.
        let k = layers.partition_point(holds_dominator);
        match layers.get_mut(k) {
            Some(layer) => layer.push(p),
            None => layers.push(vec![p]),
        }
    }
    for layer in &mut layers {
        layer.sort_unstable();
    }
    layers
}

/// NSGA-II's crowding distance of every point of `layer` (indices into `points`, `m`
/// objectives), in the order of `layer`.
///
/// Per objective, the layer is sorted by value (ties by index); the first and last points get
/// `f64::INFINITY`, an interior point adds `(next − previous) / (max − min)`. An objective
/// whose range over the layer is 0 adds nothing, to its end points as well, so a layer of
/// equal points (or of one point) has distance 0 everywhere.
pub fn crowding_distance(points: &[f64], m: usize, layer: &[usize]) -> Result<Vec<f64>> {
    let n = check_rows("points", points, m)?;
    if let Some(&i) = layer.iter().find(|&&i| i >= n) {
        return Err(Error::param(
            "layer",
            format!("index {i} is out of range for {n} points"),
        ));
    }
    Ok(crowding(points, m, layer))
}

/// [`crowding_distance`] on checked input.
pub(super) fn crowding(points: &[f64], m: usize, layer: &[usize]) -> Vec<f64> {
    let k = layer.len();
    let mut dist = vec![0.0; k];
    let mut order: Vec<usize> = (0..k).collect();
    for j in 0..m {
        let v = |t: usize| points[layer[t] * m + j];
        order.sort_by(|&a, &b| {
            v(a).partial_cmp(&v(b))
                .unwrap_or(Ordering::Equal)
                .then(layer[a].cmp(&layer[b]))
                .then(a.cmp(&b))
        });
        let (Some(&first), Some(&last)) = (order.first(), order.last()) else {
            return dist;
        };
        let range = v(last) - v(first);
        // Also false for a range that overflows to infinity, which would add only zeros.
        if !(range > 0.0 && range.is_finite()) {
            continue;
        }
        for w in order.windows(3) {
            dist[w[1]] += (v(w[2]) - v(w[0])) / range;
        }
        dist[first] = f64::INFINITY;
        dist[last] = f64::INFINITY;
    }
    dist
}

/// A batch of `batch` candidates picked layer by layer from their score vectors (`n` rows of
/// `m` objectives, e.g. per-objective UCB), NSGA-II's environmental selection: whole
/// non-dominated layers in order, each in descending crowding distance (ties by index), the
/// layer that overflows cut to what is left. The picks come back in that order, so a smaller
/// batch is a prefix of a larger one.
///
/// A `batch` above `n` is [`Error::BatchTooLarge`]. Every layer is computed, so the cost is
/// that of [`nondominated_layers`] on all `n` rows plus a sort per layer taken.
pub fn pareto_batch(scores: &[f64], m: usize, batch: usize) -> Result<Vec<usize>> {
    let n = check_rows("scores", scores, m)?;
    if batch > n {
        return Err(Error::BatchTooLarge {
            batch,
            available: n,
        });
    }
    let mut picks = Vec::with_capacity(batch);
    if batch == 0 {
        return Ok(picks);
    }
    for layer in layers(scores, m, n, m == 2) {
        let dist = crowding(scores, m, &layer);
        let mut order: Vec<usize> = (0..layer.len()).collect();
        // Distances are never NaN (only finite gaps and infinities are added).
        order.sort_by(|&a, &b| {
            dist[b]
                .partial_cmp(&dist[a])
                .unwrap_or(Ordering::Equal)
                .then(layer[a].cmp(&layer[b]))
        });
        let take = (batch - picks.len()).min(layer.len());
        picks.extend(order[..take].iter().map(|&t| layer[t]));
        if picks.len() == batch {
            break;
        }
    }
    Ok(picks)
}
