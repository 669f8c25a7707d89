//! Acquisition functions and the normal pdf/cdf they share; their random draws come from
//! [`crate::rng`].
//!
//! Everything works on the maximisation scale in standardised units: `mean` and `var` are the
//! latent posterior mean and variance of standardised labels (negated first for `--minimize`),
//! so `beta` and `xi` are unitless (`xi = 0.1` means a tenth of the labels' standard
//! deviation). Arithmetic is `f32`, the precision the GPU path uses.

use crate::rng::{draw_u32, normal_draw, uniform};

/// How candidates are scored; larger is better.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum Acquisition {
    /// The posterior mean (pure exploitation).
    Greedy,
    /// Upper confidence bound `mean + beta·sd`.
    Ucb {
        /// Weight of the standard deviation (default 2).
        beta: f32,
    },
    /// Expected improvement over the best label plus `xi`.
    Ei {
        /// Margin in label standard deviations (default 0).
        xi: f32,
    },
    /// Probability of improving on the best label by more than `xi`.
    Pi {
        /// Margin in label standard deviations (default 0).
        xi: f32,
    },
    /// The posterior variance (pure exploration, uncertainty sampling).
    Variance,
    /// One independent draw from each candidate's marginal posterior `N(mean, var)`. A cheap
    /// approximation of Thompson sampling: it ignores the correlation between candidates, so
    /// it is a randomised UCB rather than a draw of one joint function.
    #[serde(rename = "thompson-marginal")]
    ThompsonMarginal,
    /// Batch Thompson sampling: each pick is the argmax of an independent sample of the joint
    /// posterior over a shortlist (the best by [`SCREEN_BETA`]'s upper quantile; see
    /// [`crate::select::joint`]). Per candidate it scores that quantile.
    Thompson,
    /// qPO: candidates ranked by their probability of being the best, estimated from joint
    /// posterior samples over the shortlist (Fromer et al. 2024). Per candidate it scores the
    /// shortlist's quantile, as [`Acquisition::Thompson`].
    Qpo {
        /// Joint samples drawn (`None`: max(1,000, 10 × batch)).
        samples: Option<u32>,
    },
    /// A uniform random number: the baseline every strategy must beat.
    Random,
}

impl Acquisition {
    /// Every acquisition's name with one line of help, in the order shown to users.
    pub const TABLE: &'static [(&'static str, &'static str)] = &[
        ("greedy", "Highest predicted value (exploitation)"),
        ("ucb", "Upper confidence bound: mean + beta × sd"),
        ("ei", "Expected improvement over the best label (+ xi)"),
        (
            "pi",
            "Probability of improvement over the best label (+ xi)",
        ),
        ("variance", "Highest uncertainty (exploration)"),
        (
            "thompson",
            "Batch Thompson sampling: each pick the best of one joint posterior sample",
        ),
        (
            "thompson-marginal",
            "One independent draw from each candidate's predicted distribution",
        ),
        (
            "qpo",
            "Probability of being the best, from joint posterior samples",
        ),
        ("random", "Uniformly at random (the baseline)"),
    ];

    /// Every name of [`Acquisition::TABLE`].
    pub fn names() -> Vec<&'static str> {
        Self::TABLE.iter().map(|(n, _)| *n).collect()
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Acquisition::Greedy => "greedy",
            Acquisition::Ucb { .. } => "ucb",
            Acquisition::Ei { .. } => "ei",
            Acquisition::Pi { .. } => "pi",
            Acquisition::Variance => "variance",
            Acquisition::ThompsonMarginal => "thompson-marginal",
            Acquisition::Thompson => "thompson",
            Acquisition::Qpo { .. } => "qpo",
            Acquisition::Random => "random",
        }
    }

    /// Checks the parameters: `beta` and `xi` must be finite and at most 10^6 in magnitude
    /// (scores are `f32`; a NaN or infinite weight would make every score NaN and the batch
    /// simply the first rows).
    pub fn check(self) -> crate::Result<()> {
        if let Acquisition::Qpo { samples: Some(0) } = self {
            return Err(crate::Error::param("samples", "must be at least 1"));
        }
        let (name, v) = match self {
            Acquisition::Ucb { beta } => ("beta", beta),
            Acquisition::Ei { xi } | Acquisition::Pi { xi } => ("xi", xi),
            _ => return Ok(()),
        };
        if v.is_finite() && v.abs() <= 1e6 {
            Ok(())
        } else {
            Err(crate::Error::param(
                name,
                format!("must be a finite number from -1e6 to 1e6, got {v}"),
            ))
        }
    }

    /// Parses a name with the given `beta` (UCB) and `xi` (EI, PI).
    pub fn from_name(name: &str, beta: f32, xi: f32) -> Option<Self> {
        Some(match name {
            "greedy" => Acquisition::Greedy,
            "ucb" => Acquisition::Ucb { beta },
            "ei" => Acquisition::Ei { xi },
            "pi" => Acquisition::Pi { xi },
            "variance" => Acquisition::Variance,
            "thompson" => Acquisition::Thompson,
            "thompson-marginal" => Acquisition::ThompsonMarginal,
            "qpo" => Acquisition::Qpo { samples: None },
            "random" => Acquisition::Random,
            _ => return None,
        })
    }
}

impl Acquisition {
    /// True for the acquisitions whose batch comes from joint posterior samples over a
    /// shortlist (`thompson`, `qpo`): the pool pass ranks by [`SCREEN_BETA`]'s quantile.
    pub fn is_joint(self) -> bool {
        matches!(self, Acquisition::Thompson | Acquisition::Qpo { .. })
    }

    /// qPO with `samples` joint samples (`None`: the default); any other acquisition as it is.
    pub fn with_samples(self, samples: Option<u32>) -> Self {
        match self {
            Acquisition::Qpo { .. } => Acquisition::Qpo { samples },
            other => other,
        }
    }
}

/// The weight of the standard deviation in the quantile `mean + 3·sd` (99.87%) that ranks the
/// shortlist of the joint acquisitions: a candidate far below it is unlikely to be the argmax
/// of any posterior sample.
pub const SCREEN_BETA: f32 = 3.0;

/// What an acquisition needs beside a candidate's posterior.
#[derive(Clone, Copy, Debug)]
pub struct AcqContext {
    /// Best standardised label so far (the EI/PI incumbent).
    pub best: f32,
    /// Run seed.
    pub seed: u64,
    /// Round number (so every round draws fresh numbers).
    pub round: u32,
}

/// Scores one candidate. `index` is its global row in the pool, which keys the random draws.
#[inline]
pub fn score(acq: Acquisition, mean: f32, var: f32, index: u64, ctx: &AcqContext) -> f32 {
    let sd = var.max(0.0).sqrt();
    match acq {
        Acquisition::Greedy => mean,
        Acquisition::Ucb { beta } => mean + beta * sd,
        Acquisition::Ei { xi } => {
            let gain = mean - ctx.best - xi;
            if sd > 0.0 {
                let z = gain / sd;
                gain * normal_cdf(z) + sd * normal_pdf(z)
            } else {
                gain.max(0.0)
            }
        }
        Acquisition::Pi { xi } => {
            let gain = mean - ctx.best - xi;
            if sd > 0.0 {
                normal_cdf(gain / sd)
            } else if gain > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Acquisition::Variance => var.max(0.0),
        Acquisition::ThompsonMarginal => mean + sd * normal_draw(ctx.seed, ctx.round, index),
        Acquisition::Thompson | Acquisition::Qpo { .. } => mean + SCREEN_BETA * sd,
        Acquisition::Random => uniform(draw_u32(ctx.seed, ctx.round, index, 0)),
    }
}

/// True when the score depends on the variance; `greedy` and `random` need only the mean.
#[inline]
pub fn uses_variance(acq: Acquisition) -> bool {
    !matches!(acq, Acquisition::Greedy | Acquisition::Random)
}

/// An upper bound of [`score`] over every variance in `[0, var_hi]`, as computed in `f32`: for
/// any `var` in that interval, `score(acq, mean, var, index, ctx) <= score_bound(acq, mean,
/// var_hi, index, ctx)`. The prior `s2·k(x, x)` bounds every posterior variance, so this bound
/// needs only the mean, and a candidate whose bound is below a score already found can be
/// dropped before its variance is computed.
///
/// Where the score rises with the standard deviation (UCB with `beta ≥ 0`, the joint
/// acquisitions' quantile, EI, a marginal Thompson draw that is non-negative, `variance`) it is the score at `var_hi`; where it falls (UCB with
/// `beta < 0`, Thompson with a negative draw, PI above the incumbent) the score at `var = 0`.
/// UCB, Thompson and `variance` are monotone in `f32` too (correctly rounded `sqrt`, products
/// and sums), so their bound is exact; EI and PI go through the `erfc` fit, whose error is
/// not monotone, so their bound is nudged up (relative 2⁻¹⁰, far above the fit's 1.2e-7 and
/// the cancellation of EI below the incumbent, plus 1e-30 for underflowed tails). `greedy` and
/// `random` are their own bound.
#[inline]
pub fn score_bound(acq: Acquisition, mean: f32, var_hi: f32, index: u64, ctx: &AcqContext) -> f32 {
    let at_hi = || score(acq, mean, var_hi, index, ctx);
    match acq {
        Acquisition::Greedy | Acquisition::Random => score(acq, mean, 0.0, index, ctx),
        Acquisition::Ucb { beta } => {
            if beta >= 0.0 {
                at_hi()
            } else {
                mean
            }
        }
        Acquisition::Thompson | Acquisition::Qpo { .. } => at_hi(),
        Acquisition::ThompsonMarginal => {
            if normal_draw(ctx.seed, ctx.round, index) >= 0.0 {
                at_hi()
            } else {
                mean
            }
        }
        Acquisition::Variance => var_hi.max(0.0),
        Acquisition::Ei { xi } => {
            // EI ≥ max(gain, 0) at every σ, and that is its value at σ = 0.
            let gain = mean - ctx.best - xi;
            nudge_up(at_hi().max(gain.max(0.0)))
        }
        Acquisition::Pi { xi } => {
            let gain = mean - ctx.best - xi;
            if gain > 0.0 {
                // Φ(gain/σ) falls towards 1 as σ shrinks; the computed Φ never exceeds 1.
                1.0
            } else {
                nudge_up(at_hi())
            }
        }
    }
}

/// `x` raised by a margin that covers the rounding and fit error of EI and PI.
#[inline]
fn nudge_up(x: f32) -> f32 {
    x + (x.abs() * (1.0 / 1024.0) + 1e-30)
}

/// Standard normal density.
#[inline]
pub fn normal_pdf(z: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    INV_SQRT_2PI * (-0.5 * z * z).exp()
}

/// Standard normal distribution function, `Φ(z) = ½ erfc(−z/√2)`.
#[inline]
pub fn normal_cdf(z: f32) -> f32 {
    0.5 * erfc(-z * std::f32::consts::FRAC_1_SQRT_2)
}

/// Complementary error function with relative error below 1.2e-7 everywhere (the Chebyshev
/// fit of Numerical Recipes' `erfcc`): plain arithmetic and one `exp`, so the GPU can use the
/// same formula.
#[inline]
#[allow(clippy::excessive_precision)] // the published coefficients, kept verbatim
pub fn erfc(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_acq() -> impl Strategy<Value = Acquisition> {
        let w = prop_oneof![-3.0f32..3.0, Just(0.0f32), -1e3f32..1e3];
        (0usize..9, w).prop_map(|(i, w)| match i {
            0 => Acquisition::Greedy,
            1 => Acquisition::Ucb { beta: w },
            2 => Acquisition::Ei { xi: w / 10.0 },
            3 => Acquisition::Pi { xi: w / 10.0 },
            4 => Acquisition::Variance,
            5 => Acquisition::ThompsonMarginal,
            6 => Acquisition::Thompson,
            7 => Acquisition::Qpo { samples: None },
            _ => Acquisition::Random,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        /// The bound at a variance `var_hi` is never below the exact score at any smaller
        /// variance, in `f32` as computed; variances near `var_hi` (where rounding matters
        /// most), at zero, and means far from the incumbent included. `var_hi` is the prior
        /// or, in the CPU's staged pruning, a partial variance anywhere down to 0, so tiny and
        /// zero ones are tried too.
        #[test]
        fn bound_is_never_below_the_score(
            acq in any_acq(),
            mean in prop_oneof![-5.0f32..5.0, -60.0f32..60.0, -1e-3f32..1e-3],
            best in -4.0f32..4.0,
            s2 in prop_oneof![
                0.01f32..3.0,
                1e-6f32..1e-3,
                3.0f32..100.0,
                1e-38f32..1e-6,
                Just(0.0f32),
            ],
            frac in prop_oneof![0.0f32..=1.0, 0.999f32..=1.0, Just(0.0f32), Just(1.0f32)],
            ulps in 0u32..4,
            index in any::<u64>(),
            seed in any::<u64>(),
        ) {
            let ctx = AcqContext { best, seed, round: 3 };
            let var = f32::from_bits((s2 * frac).to_bits().saturating_sub(ulps)).clamp(0.0, s2);
            let exact = score(acq, mean, var, index, &ctx);
            let bound = score_bound(acq, mean, s2, index, &ctx);
            prop_assert!(exact <= bound, "{acq:?} mean {mean} var {var} <= {s2}: {exact} > {bound}");
        }
    }

    #[test]
    fn cdf_and_pdf_match_known_values() {
        // Φ values from standard tables.
        let cases = [
            (0.0, 0.5),
            (1.0, 0.841_344_7),
            (-1.0, 0.158_655_25),
            (1.959_964, 0.975),
            (-3.0, 0.001_349_898),
            (-6.0, 9.865_876e-10),
        ];
        for (z, want) in cases {
            let got = normal_cdf(z);
            assert!(
                ((got - want) / want).abs() < 2e-6,
                "Φ({z}) = {got}, want {want}"
            );
        }
        assert!((normal_pdf(0.0) - 0.398_942_3).abs() < 1e-7);
        assert!((normal_pdf(1.0) - 0.241_970_72).abs() < 1e-7);
    }

    #[test]
    fn acquisitions_follow_their_definitions() {
        let ctx = AcqContext {
            best: 1.0,
            seed: 7,
            round: 0,
        };
        assert_eq!(score(Acquisition::Greedy, 0.3, 4.0, 0, &ctx), 0.3);
        assert_eq!(
            score(Acquisition::Ucb { beta: 2.0 }, 0.3, 4.0, 0, &ctx),
            4.3
        );
        assert_eq!(score(Acquisition::Variance, 0.3, 4.0, 0, &ctx), 4.0);
        // EI at mean = best, sd = 1: φ(0) = 0.3989.
        let ei = score(Acquisition::Ei { xi: 0.0 }, 1.0, 1.0, 0, &ctx);
        assert!((ei - 0.398_942_3).abs() < 1e-6);
        // EI ≥ max(gain, 0) and PI in [0, 1], PI(mean = best) = ½.
        for &m in &[-2.0f32, 0.0, 1.0, 3.0] {
            let ei = score(Acquisition::Ei { xi: 0.1 }, m, 0.25, 0, &ctx);
            assert!(ei >= (m - 1.1).max(0.0) - 1e-6);
        }
        assert!((score(Acquisition::Pi { xi: 0.0 }, 1.0, 0.5, 0, &ctx) - 0.5).abs() < 1e-6);
        // Zero variance: EI is the plain gain, PI a step.
        assert_eq!(score(Acquisition::Ei { xi: 0.0 }, 1.5, 0.0, 0, &ctx), 0.5);
        assert_eq!(score(Acquisition::Pi { xi: 0.0 }, 0.5, 0.0, 0, &ctx), 0.0);
    }

    #[test]
    fn random_draws_are_keyed_and_uniform() {
        let ctx = AcqContext {
            best: 0.0,
            seed: 42,
            round: 3,
        };
        let a = score(Acquisition::Random, 0.0, 0.0, 12345, &ctx);
        assert_eq!(a, score(Acquisition::Random, 9.0, 1.0, 12345, &ctx));
        assert_ne!(a, score(Acquisition::Random, 0.0, 0.0, 12346, &ctx));
        let other_round = AcqContext { round: 4, ..ctx };
        assert_ne!(a, score(Acquisition::Random, 0.0, 0.0, 12345, &other_round));
        // Mean and variance of 100k uniforms and normals.
        let n = 100_000u64;
        let u: Vec<f64> = (0..n)
            .map(|i| f64::from(uniform(draw_u32(1, 0, i, 0))))
            .collect();
        let mean = u.iter().sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.005, "{mean}");
        let z: Vec<f64> = (0..n).map(|i| f64::from(normal_draw(1, 0, i))).collect();
        let zm = z.iter().sum::<f64>() / n as f64;
        let zv = z.iter().map(|v| (v - zm).powi(2)).sum::<f64>() / n as f64;
        assert!(zm.abs() < 0.01 && (zv - 1.0).abs() < 0.02, "{zm} {zv}");
        assert!(z.iter().all(|v| v.is_finite()));
    }
}
