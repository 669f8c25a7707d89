//! The standard normal density and distribution function in f64, accurate in the tails (the
//! f32 ones in [`crate::acquisition`] are what the GPU computes; EHVI and PHVI sum many
//! differences of them and need the precision).

use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// `1/√(2π)`.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Standard normal density `φ(z)`.
#[inline]
pub fn normal_pdf(z: f64) -> f64 {
    INV_SQRT_2PI * (-0.5 * z * z).exp()
}

/// Standard normal distribution function `Φ(z) = ½ erfc(−z/√2)`, with a relative error of a
/// few ulps to ~1e-13 in both tails (no `1 − x` cancellation below the median).
#[inline]
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z * FRAC_1_SQRT_2)
}

/// Complementary error function. Below 2 in magnitude, `1 − erf` from the series
/// `erf x = 2/√π · e^{−x²} Σ 2ⁿ x^{2n+1} / (1·3···(2n+1))` (all terms positive, A&S 7.1.6);
/// from 2 up, the continued fraction A&S 7.1.14 evaluated by the modified Lentz method. Both
/// converge in under ~40 steps in their ranges.
pub(super) fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.0 {
        return 1.0 - erf_series(x);
    }
    if x > 27.0 {
        // Below the smallest normal f64 (and the recursion would meet ∞ · 0 at x = ∞).
        return 0.0;
    }
    // erfc x = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))).
    const TINY: f64 = 1e-300;
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for n in 1..200 {
        let a = 0.5 * n as f64;
        d = x + a * d;
        if d.abs() < TINY {
            d = TINY;
        }
        d = 1.0 / d;
        c = x + a / c;
        if c.abs() < TINY {
            c = TINY;
        }
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / (PI.sqrt() * f)
}

/// `erf x` for `0 ≤ x < 2` from the series of positive terms.
fn erf_series(x: f64) -> f64 {
    let two_x2 = 2.0 * x * x;
    let mut term = x;
    let mut sum = x;
    for n in 1..200 {
        term *= two_x2 / (2 * n + 1) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    2.0 / PI.sqrt() * (-x * x).exp() * sum
}
