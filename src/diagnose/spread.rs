//! Section 2, the spread of informativeness: how the acquisition score is distributed over the
//! pool, how far the batch stands above the median in units of predictive sd, and how many
//! candidates are within the noise level of the best. Little spread means no policy can do
//! much better than random.

use super::pass::{Kept, PoolPass};
use super::stats::{Bin, Summary};
use crate::acquisition::Acquisition;
use crate::gp::FittedGp;
use crate::select::Ranked;

/// Section 2.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SpreadSection {
    /// The acquisition.
    pub acquisition: &'static str,
    /// Scores over the unlabeled pool (standardised units).
    pub scores: Summary,
    /// Their histogram.
    pub histogram: Vec<Bin>,
    /// Coefficient of variation of the scores, sd / |mean|.
    pub coefficient_of_variation: f64,
    /// Median predictive (latent) sd over the pool, standardised.
    pub median_sd: f64,
    /// (mean batch score − median pool score) / median sd; none for PI and random, whose
    /// scores are not on the labels' scale.
    pub batch_gap_sd: Option<f64>,
    /// Noise sd of the fitted model, standardised.
    pub noise_sd: f64,
    /// Candidates whose score is within the noise sd of the best (on the sd scale for
    /// variance); none for PI and random.
    pub within_noise_of_best: Option<f64>,
    /// The same as a share of the unlabeled pool.
    pub within_noise_share: Option<f64>,
    /// One-line reading.
    pub reading: String,
}

/// Builds section 2.
pub fn section(
    pass: &PoolPass,
    kept: &[Ranked<Kept>],
    acq: Acquisition,
    gp: &FittedGp,
    eligible: usize,
) -> SpreadSection {
    let scores = pass.scores.summary();
    let median_sd = pass.sds.summary().median;
    let noise_sd = gp.noise.sqrt();
    let batch_mean =
        kept.iter().map(|r| f64::from(r.score)).sum::<f64>() / kept.len().max(1) as f64;
    let (gap, within) = match acq {
        Acquisition::Pi { .. } | Acquisition::Random => (None, None),
        Acquisition::Variance => {
            // Scores are variances: compare on the sd scale.
            let gap = (batch_mean.max(0.0).sqrt() - scores.median.max(0.0).sqrt()) / median_sd;
            let best_sd = scores.max.max(0.0).sqrt();
            let t = (best_sd - noise_sd).max(0.0);
            (Some(gap), Some(pass.scores.count_at_least(t * t)))
        }
        _ => (
            Some((batch_mean - scores.median) / median_sd),
            Some(pass.scores.count_at_least(scores.max - noise_sd)),
        ),
    };
    let share = within.map(|w| w / eligible.max(1) as f64);
    let reading = match (gap, share) {
        (Some(g), Some(s)) => format!(
            "the batch scores {g:.1} predictive sd above the median candidate; {:.1}% of the pool is within the noise ({noise_sd:.2}) of the best score{}",
            100.0 * s,
            if s >= super::rules::NO_SPREAD {
                ": the model cannot tell the best candidates apart, so no policy can do much better than random"
            } else {
                ""
            }
        ),
        _ => format!(
            "{} scores are not on the labels' scale; coefficient of variation {:.2}",
            acq.name(),
            scores.sd / scores.mean.abs()
        ),
    };
    SpreadSection {
        acquisition: acq.name(),
        coefficient_of_variation: scores.sd / scores.mean.abs(),
        histogram: pass.scores.coarse(30),
        scores,
        median_sd,
        batch_gap_sd: gap,
        noise_sd,
        within_noise_of_best: within,
        within_noise_share: share,
        reading,
    }
}
