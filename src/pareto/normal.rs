//! The standard normal density and distribution function in f64, accurate in the tails (the
//! f32 ones in [`crate::acquisition`] are what the GPU computes; EHVI and PHVI sum many
//! differences of them and need the precision).

use std::f64::consts::FRAC_1_SQRT_2;

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

/// Complementary error function: musl's (`libm`), rational approximations with an error
/// below one ulp and no cancellation in either tail.
#[inline]
pub(super) fn erfc(x: f64) -> f64 {
    libm::erfc(x)
}

/// `G(a) = ∫_a^∞ P(Y > t) dt = E[(Y − a)⁺]` for `Y ~ N(mu, sd²)`; 0 at `a = ∞`. At unit
/// spread it is `g(s) = s·Φ(s) + φ(s)` of `s = mu − a`.
#[inline]
pub(super) fn partial_expectation(a: f64, mu: f64, sd: f64) -> f64 {
    if a == f64::INFINITY {
        return 0.0;
    }
    let d = mu - a;
    if sd == 0.0 {
        return d.max(0.0);
    }
    let s = d / sd;
    (d * normal_cdf(s) + sd * normal_pdf(s)).max(0.0)
}

/// Bounds `(lo, hi)` of [`partial_expectation`] from [`partial_expectation_bounds`]' table,
/// exact at `a = ∞` and `sd = 0`.
pub(super) fn partial_expectation_range(a: f64, mu: f64, sd: f64) -> (f64, f64) {
    if a == f64::INFINITY || sd == 0.0 {
        let g = partial_expectation(a, mu, sd);
        return (g, g);
    }
    let (lo, hi) = partial_expectation_bounds((mu - a) / sd);
    (sd * lo, sd * hi)
}

/// Nodes of [`partial_expectation_bounds`]' table per unit of `s`, over `[−G_RANGE, G_RANGE]`.
const G_STEPS: f64 = 64.0;
const G_RANGE: f64 = 38.0;

/// A relative margin above the table's and the direct formula's rounding (the cancellation in
/// `s·Φ(s) + φ(s)` costs about `s²` ulps, 1.5e-12 at `s = −38`); an absolute one of
/// `f64::MIN_POSITIVE` covers the subnormal values.
const G_MARGIN: f64 = 1e-9;

/// `g`, `g' = Φ` and `g'' = φ` at the nodes `−G_RANGE + i / G_STEPS`.
struct GTable {
    g: Vec<f64>,
    dg: Vec<f64>,
    d2g: Vec<f64>,
}

fn g_table() -> &'static GTable {
    static TABLE: std::sync::OnceLock<GTable> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let nodes = (2.0 * G_RANGE * G_STEPS) as usize + 1;
        let at = |i: usize| -G_RANGE + i as f64 / G_STEPS;
        GTable {
            g: (0..nodes)
                .map(|i| partial_expectation(0.0, at(i), 1.0))
                .collect(),
            dg: (0..nodes).map(|i| normal_cdf(at(i))).collect(),
            d2g: (0..nodes).map(|i| normal_pdf(at(i))).collect(),
        }
    })
}

/// Bounds `(lo, hi)` with `lo ≤ g(s) ≤ hi` (see [`partial_expectation`]) from a table, with
/// no `erfc` or `exp`: with `t` the node left of `s` and `d = s − t`, Taylor's theorem gives
/// `g(s) = g(t) + Φ(t)·d + φ(ξ)·d²/2` for some `ξ` between them, and `φ` is monotone between
/// two nodes (0 is one), so its values at the two nodes bound `φ(ξ)`. The bounds are within
/// `d³·|s|·φ/2`, about 1e-4 of `g` at `s = −4` and 1e-3 at `s = −8` (where `g` is below 1e-15).
/// Outside the nodes, `g(s) ∈ [0, g(−38)]` below and `[s, s + g(−38)]` above
/// (`g(s) = s + g(−s)`). `s` must not be NaN.
pub fn partial_expectation_bounds(s: f64) -> (f64, f64) {
    let t = g_table();
    let last = t.g.len() - 1;
    let x = (s + G_RANGE) * G_STEPS;
    if x < 0.0 {
        return (0.0, t.g[0] * (1.0 + G_MARGIN) + f64::MIN_POSITIVE);
    }
    if x >= last as f64 {
        return (
            s * (1.0 - G_MARGIN),
            s * (1.0 + G_MARGIN) + t.g[0] + f64::MIN_POSITIVE,
        );
    }
    let i = (x as usize).min(last - 1);
    let d = (s - (-G_RANGE + i as f64 / G_STEPS)).clamp(0.0, 1.0 / G_STEPS);
    let (p0, p1) = (t.d2g[i], t.d2g[i + 1]);
    let linear = t.g[i] + t.dg[i] * d;
    let half = 0.5 * d * d;
    // Below `f64::MIN_POSITIVE` (s < −37.5) the values lose their relative precision.
    (
        ((linear + p0.min(p1) * half) * (1.0 - G_MARGIN) - f64::MIN_POSITIVE).max(0.0),
        (linear + p0.max(p1) * half) * (1.0 + G_MARGIN) + f64::MIN_POSITIVE,
    )
}
