//! Strategy versus random: paired differences across replicates, a seeded bootstrap interval
//! and a verdict word.
//!
//! The interval is the *expanded* percentile bootstrap (Hesterberg, "What teachers should know
//! about the bootstrap", 2015): with few replicates the plain 2.5–97.5% percentile interval of
//! the resampled means is too narrow (with 5 replicates it is about 0.6 of the t interval, so
//! a null difference is called significant far more often than 5%). The expanded interval
//! takes the quantiles at `Φ(−√(r/(r−1))·t₀.₉₇₅,ᵣ₋₁)` instead, which gives t-like coverage for
//! small `r` and tends to the plain percentile interval as `r` grows.

use crate::acquisition::normal_cdf;
use crate::rng::{draw_u32, uniform};

/// What the interval says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Word {
    /// The whole 95% interval is above 0.
    BeatsRandom,
    /// The interval covers 0.
    RandomLike,
    /// The whole interval is below 0.
    WorseThanRandom,
    /// Fewer than 3 replicates: no verdict.
    TooFewReplicates,
}

impl Word {
    /// The word as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Word::BeatsRandom => "beats-random",
            Word::RandomLike => "random-like",
            Word::WorseThanRandom => "worse-than-random",
            Word::TooFewReplicates => "too-few-replicates",
        }
    }
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom (a table to 30, then the
/// Cornish–Fisher expansion `1.96 + 2.37/df`).
pub fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => T[df - 1],
        _ => 1.96 + 2.37 / df as f64,
    }
}

/// A paired comparison with random.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Comparison {
    /// Mean paired difference (strategy better than random is positive).
    pub mean_difference: f64,
    /// 2.5% bootstrap quantile of the mean difference.
    pub low: f64,
    /// 97.5% bootstrap quantile.
    pub high: f64,
    /// The verdict.
    pub verdict: Word,
    /// Replicates compared.
    pub replicates: usize,
}

/// Bootstrap resamples.
pub const RESAMPLES: usize = 10_000;

/// Compares paired differences `d` (positive = better than random) with a seeded bootstrap of
/// the mean: resample the replicates with replacement [`RESAMPLES`] times and take the
/// expanded-percentile quantiles (module docs) of the resampled means, a 95% interval.
pub fn compare(d: &[f64], seed: u64) -> Comparison {
    let r = d.len();
    let mean = d.iter().sum::<f64>() / r.max(1) as f64;
    if r < 3 {
        return Comparison {
            mean_difference: mean,
            low: f64::NAN,
            high: f64::NAN,
            verdict: Word::TooFewReplicates,
            replicates: r,
        };
    }
    let mut means: Vec<f64> = (0..RESAMPLES)
        .map(|b| {
            let s: f64 = (0..r)
                .map(|k| {
                    let u = uniform(draw_u32(seed, b as u32, k as u64, 11));
                    d[((u * r as f32) as usize).min(r - 1)]
                })
                .sum();
            s / r as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let q = |p: f64| means[((p * (RESAMPLES - 1) as f64).round() as usize).min(RESAMPLES - 1)];
    let widened = ((r as f64 / (r - 1) as f64).sqrt() * t975(r - 1)) as f32;
    let tail = f64::from(normal_cdf(-widened));
    let (low, high) = (q(tail), q(1.0 - tail));
    let verdict = if low > 0.0 {
        Word::BeatsRandom
    } else if high < 0.0 {
        Word::WorseThanRandom
    } else {
        Word::RandomLike
    };
    Comparison {
        mean_difference: mean,
        low,
        high,
        verdict,
        replicates: r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_positive_is_above_zero() {
        let c = compare(&[0.1, 0.3, 0.2, 0.25, 0.15], 1);
        assert_eq!(c.verdict, Word::BeatsRandom);
        assert!(
            c.low > 0.0 && c.low <= 0.2 && c.high >= 0.2 && c.high <= 0.3,
            "{c:?}"
        );
        assert!((c.mean_difference - 0.2).abs() < 1e-12);
    }

    #[test]
    fn symmetric_differences_cover_zero() {
        let c = compare(&[-0.2, 0.2, -0.1, 0.1, 0.0], 1);
        assert_eq!(c.verdict, Word::RandomLike);
        assert!(c.low < 0.0 && c.high > 0.0);
        let w = compare(&[-0.1, -0.3, -0.2], 2);
        assert_eq!(w.verdict, Word::WorseThanRandom);
    }

    #[test]
    fn expanded_interval_is_t_like_for_few_replicates() {
        // r = 5: t(4) = 2.776, widened by √(5/4) to 3.10, a tail of about 0.001.
        assert!((t975(4) - 2.776).abs() < 1e-9);
        let d = [0.05, -0.02, 0.08, 0.01, 0.03];
        let c = compare(&d, 3);
        let mean = 0.03;
        let sd = (d.iter().map(|x: &f64| (x - mean).powi(2)).sum::<f64>() / 4.0).sqrt();
        let half_t = t975(4) * sd / 5f64.sqrt();
        // The bootstrap interval is discrete; it should be about as wide as the t interval and
        // clearly wider than ±1.96 × the plug-in standard error.
        let width = c.high - c.low;
        assert!(
            width > 2.0 * 1.96 * sd * (4.0f64 / 5.0).sqrt() / 5f64.sqrt(),
            "{c:?}"
        );
        assert!(
            width > 0.6 * 2.0 * half_t && width < 1.4 * 2.0 * half_t,
            "{c:?} vs ±{half_t}"
        );
        assert_eq!(c.verdict, Word::RandomLike);
    }

    #[test]
    fn two_replicates_give_no_verdict_and_the_bootstrap_is_seeded() {
        assert_eq!(compare(&[1.0, 2.0], 0).verdict, Word::TooFewReplicates);
        let d = [0.3, -0.1, 0.2, 0.05];
        let (a, b) = (compare(&d, 5), compare(&d, 5));
        assert_eq!((a.low, a.high), (b.low, b.high));
    }
}
