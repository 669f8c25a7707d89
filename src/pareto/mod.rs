//! Multi-objective building blocks: Pareto dominance, non-dominated layers, crowding distance,
//! hypervolume, and the hypervolume-based acquisitions EHVI and PHVI, with ParEGO's
//! scalarisation beside them. Pure functions of their arguments (no pool, no model).
//!
//! # Conventions
//! - Every objective is **maximised** here; a caller flips the sign of a minimised one first.
//! - A set of points is one flat, row-major slice of `n · m` values: row `i` is
//!   `points[i * m..(i + 1) * m]`. The improvement functions ([`hvi`], [`ehvi`], [`phvi`],
//!   [`FrontBoxes`]) read `m` from the reference point's length; the others take `m` as an
//!   argument ([`hypervolume`] checks the reference against it).
//! - Values must be finite. A NaN or an infinity, a slice that is not a whole number of rows,
//!   or an unsupported `m` is an [`Error::InvalidParam`] naming the argument, and a batch
//!   larger than the candidates an [`Error::BatchTooLarge`]; never a panic.
//! - Deterministic: every order breaks ties by index.
//!
//! ```
//! use poolrank::pareto::{ehvi, hypervolume, nondominated_layers, pareto_batch, FrontBoxes};
//!
//! // Four labeled points of two objectives (both maximised), flat rows.
//! let labeled = [1.0, 3.0, 2.0, 2.0, 3.0, 1.0, 1.0, 1.0];
//! assert_eq!(nondominated_layers(&labeled, 2)?, vec![vec![0, 1, 2], vec![3]]);
//! let reference = [0.0, 0.0];
//! assert_eq!(hypervolume(&labeled, 2, &reference)?, 6.0);
//! // EHVI of a candidate predicted at (2.5, 2.5) ± (0.5, 0.5); with sd 0 it is the plain
//! // improvement of (2.5, 2.5), 0.5 · 1.5 + 1 · 0.5.
//! assert!(ehvi(&[2.5, 2.5], &[0.5, 0.5], &labeled, &reference)? > 0.0);
//! assert_eq!(ehvi(&[2.5, 2.5], &[0.0, 0.0], &labeled, &reference)?, 1.25);
//! // Many candidates against one front: build the boxes once.
//! let boxes = FrontBoxes::new(&labeled, &reference)?;
//! assert_eq!(boxes.hvi(&[2.5, 2.5])?, 1.25);
//! // A batch of 2 from per-candidate score vectors (e.g. per-objective UCB).
//! let ucb = [0.0, 4.0, 1.0, 3.0, 2.0, 2.0, 4.0, 0.0, 1.0, 1.0];
//! assert_eq!(pareto_batch(&ucb, 2, 2)?, vec![0, 3]);
//! # Ok::<(), poolrank::Error>(())
//! ```
//!
//! # The maths
//! `a` *dominates* `b` when `a_j ≥ b_j` for every objective and `a_j > b_j` for one; equal
//! points do not dominate each other. A point *weakly dominates* `z` when `a_j ≥ z_j` for all
//! `j`.
//!
//! **Non-dominated layers** ([`nondominated_layers`]): layer 0 holds the points no point
//! dominates, layer `L` the points dominated only by points of layers `< L` (the peeling of
//! NSGA-II; Deb et al., "A fast and elitist multiobjective genetic algorithm: NSGA-II", IEEE
//! TEC 6(2), 2002). Computed in one pass over the points in descending lexicographic order (a
//! dominator always comes first): a point goes to the first layer holding no point that
//! dominates it, found by binary search because a layer holding a dominator means every
//! lower layer holds one too. For two objectives a layer is a staircase and only its last
//! point has to be checked, so the sort costs `O(n log n)`; for more it costs at most
//! `O(m n²)` and needs `O(n)` memory.
//!
//! **Crowding distance** ([`crowding_distance`]): per objective, the layer sorted by value (ties
//! by index); an interior point gains `(next − previous) / (max − min)`, the two ends are
//! infinite. An objective whose values are all equal in the layer adds nothing, ends included.
//!
//! **Hypervolume** ([`hypervolume`]): the Lebesgue measure of the region `{z : r < z ≤ p}` for
//! some front point `p`, `r` the reference point. Exact: for two objectives a sweep over the
//! front sorted by the first objective; for three, slices along the third objective, each the
//! area of a two-dimensional staircase kept up to date as points are inserted (the
//! dimension-sweep method; Fonseca, Paquete and López-Ibáñez, "An improved dimension-sweep
//! algorithm for the hypervolume indicator", CEC 2006). A point that does not strictly dominate
//! the reference adds nothing; dominated points may be given.
//!
//! **Hypervolume improvement** ([`hvi`]) of a point `y` is `HV(P ∪ {y}) − HV(P)`, the volume of
//! `A ∩ {z ≤ y}` where `A = {z > r : no p ∈ P weakly dominates z}` is the non-dominated region.
//! [`FrontBoxes`] cuts `A` into disjoint axis-aligned boxes `(l, u]` (`u` may be infinite): for
//! two objectives the `n + 1` boxes between the steps of the staircase, for three the same
//! boxes in each slab between consecutive levels of the third objective, `O(n²)` in all.
//!
//! **EHVI** ([`ehvi`]; Emmerich, Giannakoglou and Naujoks, "Single- and multiobjective
//! evolutionary optimization assisted by Gaussian random field metamodels", IEEE TEC 10(4),
//! 2006; the box form of Yang, Emmerich, Deutz and Bäck, "Efficient computation of expected
//! hypervolume improvement using box decomposition algorithms", J. Global Optim. 75, 2019):
//! with independent Gaussian objectives `Y_j ~ N(μ_j, σ_j²)`,
//! `E[HVI(Y)] = ∫_A P(Y ≥ z) dz = Σ_boxes Π_j (G_j(l_j) − G_j(u_j))`, where
//! `G_j(a) = ∫_a^∞ P(Y_j > t) dt = E[(Y_j − a)⁺] = (μ_j − a) Φ(s) + σ_j φ(s)`,
//! `s = (μ_j − a)/σ_j`, and `G_j(∞) = 0`. This is exact for two **and** three objectives (no
//! Monte Carlo), and at `σ = 0` it is `(μ − a)⁺`, so the formula gives the plain [`hvi`].
//!
//! **PHVI** ([`phvi`]): the probability that `Y` lands in `A`, i.e. is not weakly dominated by
//! any front point and strictly dominates the reference:
//! `Σ_boxes Π_j P(l_j < Y_j ≤ u_j)`, exact for two and three objectives; at `σ = 0` it is the
//! indicator of `μ ∈ A`.
//!
//! **ParEGO** ([`parego_weights`], [`chebyshev`]; Knowles, "ParEGO: a hybrid algorithm with
//! on-line landscape approximation for expensive multiobjective optimization problems", IEEE
//! TEC 10(1), 2006): each round draws a weight vector uniformly on the simplex and scores with
//! the augmented Chebyshev scalarisation, written here in its maximisation form
//! `min_j w_j v_j + ρ Σ_j w_j v_j` on objectives the caller has normalised to `[0, 1]`.
//!
//! The **reference point** ([`reference_point`]) defaults to the worst labeled value of each
//! objective less 10% of that objective's labeled range.

mod boxes;
mod dominance;
mod hypervolume;
mod normal;
mod scalarize;
#[cfg(test)]
mod tests;

pub use boxes::{ehvi, phvi, FrontBoxes};
pub use dominance::{crowding_distance, dominates, nondominated_layers, pareto_batch};
pub use hypervolume::{hvi, hypervolume, reference_point};
pub use normal::{normal_cdf, normal_pdf};
pub use scalarize::{chebyshev, parego_weights, CHEBYSHEV_RHO, PAREGO_STREAM};

use crate::error::{Error, Result};

/// Checks that `values` is whole rows of `m ≥ 1` finite values; returns the number of rows.
fn check_rows(name: &'static str, values: &[f64], m: usize) -> Result<usize> {
    if m == 0 {
        return Err(Error::param(
            "m",
            "the number of objectives must be at least 1",
        ));
    }
    if !values.len().is_multiple_of(m) {
        return Err(Error::param(
            name,
            format!(
                "{} values are not a whole number of rows of {m} objectives",
                values.len()
            ),
        ));
    }
    if let Some(k) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::param(
            name,
            format!(
                "row {} objective {} is {} (values must be finite)",
                k / m,
                k % m,
                values[k]
            ),
        ));
    }
    Ok(values.len() / m)
}

/// Checks a single point of `m` finite values.
fn check_point(name: &'static str, values: &[f64], m: usize) -> Result<()> {
    if values.len() != m {
        return Err(Error::param(
            name,
            format!("{} values given for {m} objectives", values.len()),
        ));
    }
    if let Some(j) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::param(
            name,
            format!("objective {j} is {} (values must be finite)", values[j]),
        ));
    }
    Ok(())
}

/// Checks the objective count of the hypervolume family (2 or 3).
fn check_hv_objectives(m: usize) -> Result<()> {
    if (2..=3).contains(&m) {
        Ok(())
    } else {
        Err(Error::param(
            "m",
            format!("{m} objectives; hypervolume, HVI, EHVI and PHVI support 2 or 3"),
        ))
    }
}

/// The rows of `front` (with `m = reference.len()` in 2..=3) that strictly dominate the
/// reference, padded to three values; the only points that add volume.
fn strictly_above(front: &[f64], reference: &[f64]) -> Vec<[f64; 3]> {
    let m = reference.len();
    front
        .chunks_exact(m)
        .filter(|p| p.iter().zip(reference).all(|(v, r)| v > r))
        .map(|p| {
            let mut q = [0.0; 3];
            q[..m].copy_from_slice(p);
            q
        })
        .collect()
}

/// Checks a front against its reference point; returns `m`.
fn check_front(front: &[f64], reference: &[f64]) -> Result<usize> {
    let m = reference.len();
    check_hv_objectives(m)?;
    check_point("reference", reference, m)?;
    check_rows("front", front, m)?;
    Ok(m)
}
