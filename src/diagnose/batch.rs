//! Section 4, the batch the chosen acquisition would pick: how close it sits to the labels
//! against the pool, how many of its picks are outliers, and whether it exploits (predicted
//! values above the pool's) or only explores.

use super::pass::{Kept, PoolPass};
use super::pool::{is_outlier, PoolSection};
use crate::gp::FittedGp;
use crate::select::Ranked;

/// One pick, as reported.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BatchPick {
    /// 1-based rank.
    pub rank: usize,
    /// Id.
    pub id: String,
    /// Row in the pool.
    pub index: usize,
    /// Acquisition score.
    pub score: f32,
    /// Predicted value, label units.
    pub mean: f64,
    /// Predicted sd, label units.
    pub sd: f64,
    /// Similarity to the nearest label.
    pub coverage: f32,
    /// Similarity to the nearest sample point.
    pub density: f32,
    /// An outlier under the pool's rule.
    pub outlier: bool,
}

/// Section 4.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BatchSection {
    /// Picks.
    pub size: usize,
    /// Mean similarity of the batch to its nearest label.
    pub coverage_batch: f64,
    /// The same over the pool.
    pub coverage_pool: f64,
    /// Mean similarity of the batch to its nearest sample point (local density).
    pub density_batch: f64,
    /// The same over the pool.
    pub density_pool: f64,
    /// Share of the batch that are outliers.
    pub outlier_share: f64,
    /// The pool's share.
    pub pool_outlier_share: f64,
    /// (batch mean prediction − pool mean prediction) / sd of the pool's predictions.
    pub mean_gap: f64,
    /// Batch mean predicted sd over the pool's.
    pub sd_ratio: f64,
    /// `exploiting` (predictions above the pool's), `exploring` (only uncertainty), or both.
    pub behaviour: &'static str,
    /// The batch chases outliers (see the verdict rules).
    pub outlier_chasing: bool,
    /// The first picks (up to 20).
    pub picks: Vec<BatchPick>,
    /// One-line reading.
    pub reading: String,
}

/// Builds section 4.
pub fn section(
    pass: &PoolPass,
    kept: &[Ranked<Kept>],
    pool: &PoolSection,
    gp: &FittedGp,
    sign: f64,
) -> BatchSection {
    let k = kept.len().max(1) as f64;
    let avg = |f: &dyn Fn(&Kept) -> f64| kept.iter().map(|r| f(&r.item)).sum::<f64>() / k;
    let coverage_batch = avg(&|x| f64::from(x.coverage));
    let density_batch = avg(&|x| f64::from(x.density));
    let outliers = kept
        .iter()
        .filter(|r| is_outlier(pool, r.item.coverage))
        .count() as f64;
    let means = pass.means.summary();
    let mean_gap = (avg(&|x| f64::from(x.mean)) - means.mean) / means.sd.max(1e-12);
    let sd_ratio = avg(&|x| f64::from(x.var.max(0.0)).sqrt()) / pass.sds.mean().max(1e-12);
    let behaviour = match (mean_gap >= super::rules::MIN_EXPLOIT, sd_ratio >= 1.25) {
        (true, true) => "exploiting and exploring",
        (true, false) => "exploiting",
        (false, true) => "exploring",
        (false, false) => "neither",
    };
    let outlier_share = outliers / k;
    let outlier_chasing = super::rules::chases_outliers(outlier_share, pool.outlier_share);
    let picks = kept
        .iter()
        .take(20)
        .enumerate()
        .map(|(i, r)| BatchPick {
            rank: i + 1,
            id: r.item.id.clone(),
            index: r.index,
            score: r.score,
            mean: sign * gp.mean_to_labels(f64::from(r.item.mean)),
            sd: gp.sd_to_labels(f64::from(r.item.var)),
            coverage: r.item.coverage,
            density: r.item.density,
            outlier: is_outlier(pool, r.item.coverage),
        })
        .collect();
    let reading = format!(
        "the batch is {behaviour} (predictions {mean_gap:+.1} sd from the pool's, sd ×{sd_ratio:.2}); similarity to the labels {coverage_batch:.2} against the pool's {:.2}; {:.0}% of it are outliers (pool {:.1}%){}",
        pass.coverage.mean(),
        100.0 * outlier_share,
        100.0 * pool.outlier_share,
        if outlier_chasing {
            ": it chases outliers, whose labels teach the model little about the rest of the pool"
        } else {
            ""
        }
    );
    BatchSection {
        size: kept.len(),
        coverage_batch,
        coverage_pool: pass.coverage.mean(),
        density_batch,
        density_pool: pass.density.mean(),
        outlier_share,
        pool_outlier_share: pool.outlier_share,
        mean_gap,
        sd_ratio,
        behaviour,
        outlier_chasing,
        picks,
        reading,
    }
}
