//! Batch policies that look at the picks made so far: a kriging-believer batch (GP-BUCB) and a
//! similarity cap.
//!
//! The kriging believer treats each pick as if it had been labeled with its own posterior mean:
//! the mean of every other candidate stays the same and its variance shrinks by what the pick
//! explains. Re-scoring after each pick steers the batch away from near-duplicates for any
//! acquisition that uses the variance (for `greedy` and `random` it changes nothing). Pending
//! candidates (sent to the lab, no value yet) are conditioned on first, as if already picked.
//! The posterior covariance is kept as a pivoted partial Cholesky, one column per pick, so
//! memory is `shortlist × (batch + pending)`, never `shortlist²`.

use faer::Mat;

use super::joint::{self, default_samples, JointPosterior, JointReport};
use super::rank_cmp;
use crate::acquisition::{score, AcqContext, Acquisition};
use crate::data::Features;
use crate::error::{Error, Result};
use crate::gp::FittedGp;

/// How the batch is formed from the ranked candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchMode {
    /// The best `batch` scores.
    TopK,
    /// Greedy batch with posterior-variance updates after each pick, on a shortlist.
    Diverse,
    /// Drawn without replacement with `p ∝ exp(score / temperature)` ([`super::stochastic`]).
    Softmax,
    /// Drawn without replacement with `p ∝ score^power` (non-negative scores).
    Power,
    /// Drawn without replacement with `p ∝ rank^−power`, rank 1 the best score.
    Softrank,
}

impl crate::names::Named for BatchMode {
    const WHAT: &'static str = "batch mode";
    const TABLE: &'static [(Self, &'static str, &'static str)] = &[
        (BatchMode::TopK, "topk", "The best scores"),
        (
            BatchMode::Diverse,
            "diverse",
            "One pick at a time, shrinking the uncertainty around each pick (kriging believer)",
        ),
        (
            BatchMode::Softmax,
            "softmax",
            "Drawn at random without replacement, p ∝ exp(score / temperature)",
        ),
        (
            BatchMode::Power,
            "power",
            "Drawn at random without replacement, p ∝ score^power (non-negative scores: ei, pi, variance, random)",
        ),
        (
            BatchMode::Softrank,
            "softrank",
            "Drawn at random without replacement, p ∝ rank^-power (rank 1 the best score)",
        ),
    ];
}
crate::names::named!(BatchMode);

/// A shortlisted candidate: its global row and latent posterior (standardised units).
#[derive(Clone, Copy, Debug)]
pub struct Shortlisted {
    /// Global row in the pool.
    pub index: usize,
    /// Posterior mean.
    pub mean: f32,
    /// Posterior variance.
    pub var: f32,
}

/// Picks `batch` candidates from a shortlist (given best first, with features `feats` in the
/// same order): `(position in the shortlist, score at the time of the pick)` each. The joint
/// acquisitions (`thompson`, `qpo`) draw their batch from joint posterior samples
/// ([`super::joint`]), with top-k mode only; their score is the sample's value (Thompson) or the
/// probability of being the best (qPO).
///
/// `max_sim` rejects a candidate whose kernel similarity to an earlier pick or to a pending
/// candidate exceeds it.
#[allow(clippy::too_many_arguments)]
pub fn choose_batch(
    mode: BatchMode,
    gp: &FittedGp,
    acq: Acquisition,
    ctx: &AcqContext,
    short: &[Shortlisted],
    feats: &Features,
    pending: &Features,
    batch: usize,
    max_sim: Option<f64>,
) -> Result<Batch> {
    let too_similar = |i: usize, picks: &[(usize, f32)]| -> bool {
        let Some(t) = max_sim else { return false };
        picks
            .iter()
            .any(|&(p, _)| gp.kernel.eval(feats, i, feats, p) > t)
            || (0..pending.len()).any(|p| gp.kernel.eval(feats, i, pending, p) > t)
    };
    let (picks, joint) = if acq.is_joint() {
        if mode != BatchMode::TopK {
            return Err(Error::param("mode", JOINT_MODE));
        }
        let post = JointPosterior::new(gp, feats)?;
        let keys: Vec<usize> = short.iter().map(|c| c.index).collect();
        let (picks, report) = match acq {
            Acquisition::Qpo { samples } => {
                let s = samples.map_or(default_samples(batch), |s| s as usize);
                joint::qpo(&post, ctx, &keys, batch, s, too_similar)
            }
            _ => joint::thompson(&post, ctx, &keys, batch, too_similar),
        };
        (picks, Some(report))
    } else {
        (
            one_by_one(
                mode,
                gp,
                acq,
                ctx,
                short,
                feats,
                pending,
                batch,
                too_similar,
            ),
            None,
        )
    };
    if picks.len() < batch {
        let why = match max_sim {
            Some(t) => format!(
                "only {} of the {} shortlisted candidates have similarity at most {t} to each other and to the pending ones; raise shortlist or max_sim",
                picks.len(),
                short.len()
            ),
            None => format!("the shortlist holds only {} candidates", short.len()),
        };
        return Err(Error::param("batch", why));
    }
    Ok(Batch { picks, joint })
}

/// Why a joint acquisition refuses another batch mode.
pub const JOINT_MODE: &str =
    "thompson and qpo form their batch from joint posterior samples; use the topk batch mode";

/// A batch: `(position in the shortlist, score at the time of the pick)` in batch order.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The picks, best first.
    pub picks: Vec<(usize, f32)>,
    /// The joint step's report for `thompson` and `qpo`.
    pub joint: Option<JointReport>,
}

/// Top-k and the kriging believer: one pick at a time, each the best score still open.
#[allow(clippy::too_many_arguments)]
fn one_by_one(
    mode: BatchMode,
    gp: &FittedGp,
    acq: Acquisition,
    ctx: &AcqContext,
    short: &[Shortlisted],
    feats: &Features,
    pending: &Features,
    batch: usize,
    too_similar: impl Fn(usize, &[(usize, f32)]) -> bool,
) -> Vec<(usize, f32)> {
    let mut believer = match mode {
        BatchMode::Diverse => Some(Believer::new(gp, feats, pending)),
        _ => None,
    };
    let mut picks: Vec<(usize, f32)> = Vec::with_capacity(batch);
    let mut taken = vec![false; short.len()];
    while picks.len() < batch {
        let mut best: Option<(f32, usize)> = None;
        for (i, c) in short.iter().enumerate() {
            if taken[i] {
                continue;
            }
            let var = match &believer {
                Some(b) => b.var(i),
                None => c.var,
            };
            let s = score(acq, c.mean, var, c.index as u64, ctx);
            let better = match best {
                None => true,
                Some((bs, bi)) => rank_cmp((s, c.index), (bs, short[bi].index)).is_lt(),
            };
            if better {
                best = Some((s, i));
            }
        }
        let Some((s, i)) = best else { break };
        taken[i] = true;
        if too_similar(i, &picks) {
            continue;
        }
        picks.push((i, s));
        if let Some(b) = &mut believer {
            b.condition_on(i);
        }
    }
    picks
}

/// Posterior covariance of the shortlist and the pending candidates, updated pick by pick.
pub struct Believer<'a> {
    gp: &'a FittedGp,
    /// Shortlisted rows, then the pending rows.
    all: Features,
    /// `L⁻¹ · s2·k(X, c)` for each row of `all` (column `i`).
    v: Mat<f64>,
    /// Current variance of each row of `all`.
    var: Vec<f64>,
    /// Columns of the partial Cholesky of the conditional covariance, one per conditioned row.
    cols: Vec<Vec<f64>>,
}

impl<'a> Believer<'a> {
    /// The posterior of the rows of `feats` under `gp`, already conditioned on every row of
    /// `pending` (as if labeled with its posterior mean).
    pub fn new(gp: &'a FittedGp, feats: &Features, pending: &Features) -> Self {
        let mut all = feats.clone();
        for p in 0..pending.len() {
            all.push_row_from(pending, p);
        }
        let v = solve_cross(gp, &all);
        let var = (0..all.len())
            .map(|i| {
                let prior = gp.signal_var * gp.kernel.eval(&all, i, &all, i);
                prior - (0..v.nrows()).map(|r| v[(r, i)] * v[(r, i)]).sum::<f64>()
            })
            .collect();
        let mut b = Believer {
            gp,
            all,
            v,
            var,
            cols: Vec::new(),
        };
        for p in feats.len()..b.all.len() {
            b.condition_on(p);
        }
        b
    }

    /// Row `i`'s current latent variance (standardised units).
    pub fn var(&self, i: usize) -> f32 {
        self.var[i].max(0.0) as f32
    }

    /// Conditions on row `p` of `all` (a row of `feats`, or `feats.len()` + a pending row) as
    /// if labeled (noise `n2`) with its posterior mean: one more column of the pivoted partial
    /// Cholesky of the posterior covariance.
    pub fn condition_on(&mut self, p: usize) {
        let gp = self.gp;
        let n = self.v.nrows();
        let mut cov: Vec<f64> = (0..self.all.len())
            .map(|i| {
                gp.signal_var * gp.kernel.eval(&self.all, p, &self.all, i)
                    - (0..n).map(|r| self.v[(r, p)] * self.v[(r, i)]).sum::<f64>()
            })
            .collect();
        for col in &self.cols {
            let cp = col[p];
            for (c, x) in cov.iter_mut().zip(col) {
                *c -= x * cp;
            }
        }
        let denom = (cov[p].max(0.0) + gp.noise).max(f64::MIN_POSITIVE).sqrt();
        for c in cov.iter_mut() {
            *c /= denom;
        }
        for (v, c) in self.var.iter_mut().zip(&cov) {
            *v -= c * c;
        }
        self.cols.push(cov);
    }
}

/// `L⁻¹ · s2·k(X, F)` as an `n × |F|` matrix.
fn solve_cross(gp: &FittedGp, f: &Features) -> Mat<f64> {
    let n = gp.n_train();
    let m = f.len();
    let cross = gp.kernel.cross(&gp.train, f);
    let mut v = Mat::<f64>::from_fn(n, m, |i, j| gp.signal_var * cross[i * m + j]);
    faer::linalg::triangular_solve::solve_lower_triangular_in_place(
        gp.chol.as_ref(),
        v.as_mut(),
        faer::Par::Seq,
    );
    v
}

#[cfg(test)]
pub(in crate::select) mod tests {
    use super::*;
    use crate::data::FeatureKind;
    use crate::gp::{fit, GpParams};
    use crate::kernel::KernelKind;

    /// `n` seeded rows of `dim` dense features in [-2, 2).
    pub(in crate::select) fn dense(n: usize, dim: usize, seed: u32) -> Features {
        let data = (0..n * dim)
            .map(|i| {
                let h = crate::rng::hash32(i as u32 ^ seed.wrapping_mul(0x9e37_79b9));
                (h >> 8) as f32 / 16_777_216.0 * 4.0 - 2.0
            })
            .collect();
        Features::Dense { dim, data }
    }

    fn gp_on(x: &Features, y: &[f64]) -> FittedGp {
        let mut p = GpParams::new(KernelKind::Rbf);
        p.signal_var = Some(1.3);
        p.noise = Some(0.05);
        p.lengthscale = Some(0.8);
        fit(&p.check(FeatureKind::Dense { dim: 2 }).unwrap(), x, y).unwrap()
    }

    /// The believer's variances after conditioning on some rows equal a GP refitted with those
    /// rows added to the labels (the variance does not depend on the values).
    #[test]
    fn believer_equals_refit_with_the_picks() {
        let x = dense(12, 2, 1);
        let y: Vec<f64> = (0..12).map(|i| (i as f64 * 0.7).sin()).collect();
        let gp = gp_on(&x, &y);
        let short = dense(30, 2, 2);
        let pending = dense(2, 2, 3);
        let mut b = Believer::new(&gp, &short, &pending);
        b.condition_on(4);
        b.condition_on(17);
        let mut x2 = x.clone();
        for p in 0..2 {
            x2.push_row_from(&pending, p);
        }
        x2.push_row_from(&short, 4);
        x2.push_row_from(&short, 17);
        let gp2 = gp_on(&x2, &[0.0; 16]);
        let (_, want) = gp2.predict_valvar(&short);
        for (i, w) in want.iter().enumerate() {
            assert!((b.var[i] - w).abs() < 1e-9, "{i}: {} vs {w}", b.var[i]);
        }
    }

    #[test]
    fn diverse_batch_spreads_out_and_topk_takes_the_best() {
        let x = dense(10, 2, 4);
        let y: Vec<f64> = (0..10).map(f64::from).collect();
        let gp = gp_on(&x, &y);
        // A tight cluster of near-identical high-uncertainty candidates, and others.
        let mut short = dense(20, 2, 5);
        let far: Vec<f32> = vec![9.0, 9.0];
        let mut cluster = Features::Dense {
            dim: 2,
            data: Vec::new(),
        };
        for k in 0..5 {
            if let Features::Dense { data, .. } = &mut cluster {
                data.extend([far[0] + k as f32 * 1e-3, far[1]]);
            }
        }
        for r in 0..5 {
            short.push_row_from(&cluster, r);
        }
        let (mean, var) = gp.predict_valvar(&short);
        let list: Vec<Shortlisted> = (0..short.len())
            .map(|i| Shortlisted {
                index: i,
                mean: mean[i] as f32,
                var: var[i] as f32,
            })
            .collect();
        let ctx = AcqContext {
            best: 0.0,
            seed: 0,
            round: 0,
        };
        let acq = Acquisition::Variance;
        let none = Features::empty(FeatureKind::Dense { dim: 2 });
        let top = choose_batch(
            BatchMode::TopK,
            &gp,
            acq,
            &ctx,
            &list,
            &short,
            &none,
            3,
            None,
        )
        .unwrap()
        .picks;
        let div = choose_batch(
            BatchMode::Diverse,
            &gp,
            acq,
            &ctx,
            &list,
            &short,
            &none,
            3,
            None,
        )
        .unwrap()
        .picks;
        let in_cluster = |p: &[(usize, f32)]| p.iter().filter(|(i, _)| *i >= 20).count();
        // Top-k takes three members of the far cluster; the diverse batch takes one.
        assert_eq!(in_cluster(&top), 3, "{top:?}");
        assert_eq!(in_cluster(&div), 1, "{div:?}");
        // The first pick is the same in both.
        assert_eq!(top[0].0, div[0].0);
    }
}
