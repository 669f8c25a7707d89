//! ParEGO: seeded weights on the simplex and the augmented Chebyshev scalarisation.

use super::check_point;
use crate::error::{Error, Result};
use crate::rng::draw_u32;

/// The counter-hash stream of [`parego_weights`]: word `(seed, round, j, PAREGO_STREAM)` gives
/// objective `j`'s weight. The crate's other streams are 0–2, 5, 7, 11, 13, 17, 19 and
/// `0x1000_0000` up.
pub const PAREGO_STREAM: u32 = 23;

/// The default augmentation `ρ` of [`chebyshev`] (Knowles 2006).
pub const CHEBYSHEV_RHO: f64 = 0.05;

/// A weight vector of `m ≥ 1` objectives drawn uniformly on the simplex for `(seed, round)`:
/// normalised unit exponentials `e_j = −ln u_j` (a flat Dirichlet), with
/// `u_j = (word_j + ½) / 2³²` from [`draw_u32`] on [`PAREGO_STREAM`], strictly inside (0, 1).
/// Every weight is positive, they sum to 1 (to rounding), and the same `(seed, round)` gives
/// the same weights on every machine.
///
/// Knowles' ParEGO draws from a lattice of `s + 1` levels per objective; a continuous draw
/// needs no lattice size and reaches every direction.
pub fn parego_weights(m: usize, seed: u64, round: u32) -> Result<Vec<f64>> {
    if m == 0 {
        return Err(Error::param(
            "m",
            "the number of objectives must be at least 1",
        ));
    }
    let e: Vec<f64> = (0..m)
        .map(|j| {
            let word = draw_u32(seed, round, j as u64, PAREGO_STREAM);
            -((f64::from(word) + 0.5) / 4_294_967_296.0).ln()
        })
        .collect();
    let total: f64 = e.iter().sum();
    Ok(e.iter().map(|x| x / total).collect())
}

/// The augmented Chebyshev scalarisation in its maximisation form,
/// `min_j w_j v_j + ρ Σ_j w_j v_j`, of objective values the caller has normalised to
/// `[0, 1]` (larger is better; the values are not checked against the interval). Higher is
/// better; [`CHEBYSHEV_RHO`] is the usual `ρ`. It is Knowles' `max_j λ_j f_j + ρ Σ λ_j f_j`,
/// to be minimised, applied to `f = −v`, negated.
///
/// `values` and `weights` must have the same non-zero length and be finite, the weights and
/// `rho` non-negative.
pub fn chebyshev(values: &[f64], weights: &[f64], rho: f64) -> Result<f64> {
    if values.is_empty() {
        return Err(Error::param("values", "at least one objective is needed"));
    }
    check_point("values", values, values.len())?;
    check_point("weights", weights, values.len())?;
    if let Some(j) = weights.iter().position(|w| *w < 0.0) {
        return Err(Error::param(
            "weights",
            format!("objective {j} has a negative weight {}", weights[j]),
        ));
    }
    if !(rho.is_finite() && rho >= 0.0) {
        return Err(Error::param(
            "rho",
            format!("{rho}: must be finite and non-negative"),
        ));
    }
    let (worst, sum) = values
        .iter()
        .zip(weights)
        .map(|(v, w)| v * w)
        .fold((f64::INFINITY, 0.0), |(lo, s), x| (lo.min(x), s + x));
    Ok(worst + rho * sum)
}
