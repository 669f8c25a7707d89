//! Batches from joint posterior samples over a shortlist: batch Thompson sampling
//! (Hernández-Lobato et al. 2017; Kandasamy et al. 2018) and qPO, the probability of being the
//! best (Fromer et al. 2024).
//!
//! The pool pass keeps the best `M` candidates by the upper quantile `mean + 3·sd`
//! ([`crate::acquisition::SCREEN_BETA`]); a candidate far below it is unlikely to be the argmax of any posterior
//! sample. Over that shortlist the joint posterior `N(μ, Σ)` is exact: `Σ = s2·k(S, S) − VᵀV`
//! with `V = L⁻¹·s2·k(X, S)` (`L` the model's factor), factored once per round as `Σ = CCᵀ`. A
//! sample is `μ + C·z`, its standard normals `z` keyed by each candidate's global row and the
//! sample's number, so every backend and thread count draws the same samples. Because `C` is
//! lower triangular and the shortlist is ordered best first, a longer shortlist leaves the
//! samples of its first `M` rows as they were (up to the jitter).
//!
//! How often an argmax falls on the shortlist's last tenth is reported
//! ([`JointReport::tail_share`]): often means the pool beyond the shortlist would have won
//! some samples too, so the callers grow the shortlist ([`grown_shortlist`]).

use faer::Mat;

use crate::acquisition::AcqContext;
use crate::data::Features;
use crate::error::{Error, Result};
use crate::gp::FittedGp;
use crate::rng::normal_draw_on;

/// The first random stream of the joint samples: sample `s` draws its normals from streams
/// `SAMPLE_STREAM + 2s` and `+ 1` (the marginal draws use 1 and 2, `random` 0).
const SAMPLE_STREAM: u32 = 0x1000_0000;

/// Above this share of argmaxes on the shortlist's last tenth the shortlist is grown.
pub const TAIL_LIMIT: f64 = 0.01;

/// The longest shortlist growth reaches by itself (`Σ` then takes 512 MiB; a longer one can be
/// asked for with an explicit shortlist).
pub const GROWTH_CAP: usize = 8192;

/// Jitter tried in turn on the diagonal of `Σ`, relative to its largest diagonal entry, until
/// its Cholesky succeeds: near-duplicate candidates make `Σ` singular up to rounding.
const JITTERS: [f64; 8] = [0.0, 1e-12, 1e-10, 1e-8, 1e-6, 1e-5, 1e-4, 1e-3];

/// What the joint step reports.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JointReport {
    /// Candidates in the shortlist the samples were drawn over.
    pub shortlist: usize,
    /// Joint samples drawn (one per pick for Thompson).
    pub samples: usize,
    /// Share of the samples' argmaxes (Thompson: of its picks) on the shortlist's last tenth.
    pub tail_share: f64,
    /// Jitter added to the diagonal of `Σ`, in standardised units.
    pub jitter: f64,
    /// Pool passes made: more than one when the shortlist was grown.
    pub passes: usize,
    /// The pathwise sampler's random features (its "shortlist" is then every candidate, and
    /// there is no tail or jitter); `None` for the shortlist sampler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_features: Option<usize>,
}

/// The longer shortlist to score again with, or `None` to keep this batch: double `keep`
/// (at most [`GROWTH_CAP`] and the `available` candidates) when more than [`TAIL_LIMIT`] of
/// the argmaxes fell on the last tenth. A shortlist the user asked for is never grown.
pub fn grown_shortlist(
    report: &JointReport,
    keep: usize,
    available: usize,
    asked: Option<usize>,
) -> Option<usize> {
    let cap = GROWTH_CAP.min(available);
    (asked.is_none() && report.tail_share > TAIL_LIMIT && keep < cap).then(|| (2 * keep).min(cap))
}

/// The joint posterior over a shortlist: its mean and a lower factor of its covariance.
pub struct JointPosterior {
    mean: Vec<f64>,
    factor: Mat<f64>,
    jitter: f64,
}

impl JointPosterior {
    /// The posterior of the rows of `feats` under `gp` (standardised latent values).
    ///
    /// # Errors
    /// [`Error::NotPositiveDefinite`] when no jitter makes the covariance factorable.
    pub fn new(gp: &FittedGp, feats: &Features) -> Result<Self> {
        let n = gp.n_train();
        let m = feats.len();
        let cross = gp.kernel.cross(&gp.train, feats);
        let mut v = Mat::<f64>::from_fn(n, m, |i, j| gp.signal_var * cross[i * m + j]);
        let mean = (0..m)
            .map(|j| (0..n).map(|i| v[(i, j)] * gp.alpha[i]).sum())
            .collect();
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(
            gp.chol.as_ref(),
            v.as_mut(),
            faer::get_global_parallelism(),
        );
        let explained = v.transpose() * &v;
        let gram = gp.kernel.gram(feats);
        let cov = Mat::<f64>::from_fn(m, m, |i, j| {
            gp.signal_var * gram[i * m + j] - 0.5 * (explained[(i, j)] + explained[(j, i)])
        });
        let scale = (0..m).map(|i| cov[(i, i)]).fold(0.0f64, f64::max);
        let mut last_index = 0;
        for rel in JITTERS {
            let jitter = rel * scale;
            let mut k = cov.clone();
            for i in 0..m {
                k[(i, i)] += jitter;
            }
            match k.llt(faer::Side::Lower) {
                Ok(llt) => {
                    let factor = llt.L().to_owned();
                    if (0..m).all(|i| factor[(i, i)].is_finite()) {
                        return Ok(JointPosterior {
                            mean,
                            factor,
                            jitter,
                        });
                    }
                }
                Err(faer::linalg::cholesky::llt::factor::LltError::NonPositivePivot { index }) => {
                    last_index = index;
                }
            }
        }
        Err(Error::NotPositiveDefinite {
            index: last_index,
            jitter: JITTERS[JITTERS.len() - 1] * scale,
        })
    }

    /// Shortlisted candidates.
    pub fn len(&self) -> usize {
        self.mean.len()
    }

    /// True for an empty shortlist.
    pub fn is_empty(&self) -> bool {
        self.mean.is_empty()
    }

    /// Samples `first .. first + count` as the columns of a `len × count` matrix; `keys[i]` is
    /// the global row (the key of the draws) of row `i`.
    pub fn samples(
        &self,
        ctx: &AcqContext,
        keys: &[usize],
        first: usize,
        count: usize,
    ) -> Mat<f64> {
        let m = self.len();
        let z = Mat::<f64>::from_fn(m, count, |i, s| {
            let stream = SAMPLE_STREAM.wrapping_add(2 * (first + s) as u32);
            f64::from(normal_draw_on(ctx.seed, ctx.round, keys[i] as u64, stream))
        });
        let mut f = &self.factor * &z;
        for s in 0..count {
            for i in 0..m {
                f[(i, s)] += self.mean[i];
            }
        }
        f
    }
}

/// The row of column `s` of `f` with the largest value among those `open`, ties by the lower
/// key.
fn argmax(f: &Mat<f64>, s: usize, keys: &[usize], open: impl Fn(usize) -> bool) -> Option<usize> {
    let mut best: Option<usize> = None;
    for i in (0..f.nrows()).filter(|&i| open(i)) {
        let better = match best {
            None => true,
            Some(b) => f[(i, s)] > f[(b, s)] || (f[(i, s)] == f[(b, s)] && keys[i] < keys[b]),
        };
        if better {
            best = Some(i);
        }
    }
    best
}

/// The first row of the shortlist's last tenth (its length when that tenth is empty).
fn tail_start(m: usize) -> usize {
    m - m / 10
}

/// Batch Thompson sampling: pick `j` is the argmax over the candidates not yet taken of joint
/// sample `j`. A candidate `rejected` (too similar to an earlier pick) is dropped and the same
/// sample's next best taken. Returns `(row, sample value)` per pick.
pub fn thompson(
    post: &JointPosterior,
    ctx: &AcqContext,
    keys: &[usize],
    batch: usize,
    rejected: impl Fn(usize, &[(usize, f32)]) -> bool,
) -> (Vec<(usize, f32)>, JointReport) {
    let m = post.len();
    let f = post.samples(ctx, keys, 0, batch.min(m));
    let mut taken = vec![false; m];
    let mut picks: Vec<(usize, f32)> = Vec::with_capacity(batch);
    let mut tail = 0usize;
    'picks: for s in 0..f.ncols() {
        while let Some(i) = argmax(&f, s, keys, |i| !taken[i]) {
            taken[i] = true;
            if rejected(i, &picks) {
                continue;
            }
            tail += usize::from(i >= tail_start(m));
            picks.push((i, f[(i, s)] as f32));
            continue 'picks;
        }
        break;
    }
    let report = JointReport {
        shortlist: m,
        samples: f.ncols(),
        tail_share: tail as f64 / picks.len().max(1) as f64,
        jitter: post.jitter,
        passes: 1,
        prior_features: None,
    };
    (picks, report)
}

/// The samples qPO draws for a batch of `batch` when not told: max(1,000, 10 × batch).
pub fn default_samples(batch: usize) -> usize {
    (10 * batch).max(1000)
}

/// qPO's probability that each shortlisted candidate is the best, from `samples` joint samples
/// (the share of samples whose argmax it is; they sum to 1), with the share of argmaxes on the
/// shortlist's last tenth.
pub fn best_probabilities(
    post: &JointPosterior,
    ctx: &AcqContext,
    keys: &[usize],
    samples: usize,
) -> (Vec<f64>, f64) {
    const CHUNK: usize = 256;
    let m = post.len();
    let mut wins = vec![0u64; m];
    let mut first = 0;
    while first < samples {
        let count = CHUNK.min(samples - first);
        let f = post.samples(ctx, keys, first, count);
        for s in 0..count {
            if let Some(i) = argmax(&f, s, keys, |_| true) {
                wins[i] += 1;
            }
        }
        first += count;
    }
    let tail: u64 = wins[tail_start(m)..].iter().sum();
    let total = samples.max(1) as f64;
    let p = wins.iter().map(|&w| w as f64 / total).collect();
    (p, tail as f64 / total)
}

/// qPO: the candidates by their probability of being the best, highest first, ties by the
/// shortlist's order (the quantile `mean + 3·sd`, a UCB, then the row); a `rejected` one is
/// skipped. Returns `(row, probability)` per pick.
pub fn qpo(
    post: &JointPosterior,
    ctx: &AcqContext,
    keys: &[usize],
    batch: usize,
    samples: usize,
    rejected: impl Fn(usize, &[(usize, f32)]) -> bool,
) -> (Vec<(usize, f32)>, JointReport) {
    let (p, tail_share) = best_probabilities(post, ctx, keys, samples);
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
    let mut picks: Vec<(usize, f32)> = Vec::with_capacity(batch);
    for i in order {
        if picks.len() == batch {
            break;
        }
        if !rejected(i, &picks) {
            picks.push((i, p[i] as f32));
        }
    }
    let report = JointReport {
        shortlist: p.len(),
        samples,
        tail_share,
        jitter: post.jitter,
        passes: 1,
        prior_features: None,
    };
    (picks, report)
}

#[cfg(test)]
pub(in crate::select) mod tests {
    use super::*;
    use crate::acquisition::SCREEN_BETA;
    use crate::data::FeatureKind;
    use crate::gp::{fit, GpParams};
    use crate::kernel::KernelKind;
    use crate::select::diverse::tests::dense;

    fn gp_on(x: &Features) -> FittedGp {
        let y: Vec<f64> = (0..x.len()).map(|i| (i as f64 * 0.9).sin()).collect();
        let mut p = GpParams::new(KernelKind::Rbf);
        p.signal_var = Some(1.3);
        p.noise = Some(0.05);
        p.lengthscale = Some(0.9);
        fit(&p.check(FeatureKind::Dense { dim: 2 }).unwrap(), x, &y).unwrap()
    }

    fn ctx(seed: u64) -> AcqContext {
        AcqContext {
            best: 0.0,
            seed,
            round: 2,
        }
    }

    /// The posterior covariance by the textbook formula, with an explicit inverse:
    /// `s2·K_ss − s2²·K_sx (s2·K_xx + n2·I)⁻¹ K_xs`.
    pub(in crate::select) fn textbook_cov(gp: &FittedGp, x: &Features, s: &Features) -> Mat<f64> {
        let (n, m) = (x.len(), s.len());
        let k = gp.kernel.gram(x);
        let a = Mat::<f64>::from_fn(n, n, |i, j| {
            gp.signal_var * k[i * n + j]
                + if i == j {
                    gp.noise + gp.info.jitter
                } else {
                    0.0
                }
        });
        let kxs = Mat::<f64>::from_fn(n, m, |i, j| gp.signal_var * gp.kernel.eval(x, i, s, j));
        let solved = faer::prelude::Solve::solve(&a.partial_piv_lu(), &kxs);
        let explained = kxs.transpose() * &solved;
        Mat::from_fn(m, m, |i, j| {
            gp.signal_var * gp.kernel.eval(s, i, s, j) - explained[(i, j)]
        })
    }

    /// The mean and covariance of 40,000 joint samples match the posterior within sampling
    /// error (five standard errors per entry), and the posterior matches the textbook formula.
    #[test]
    fn samples_have_the_posteriors_moments() {
        let x = dense(8, 2, 1);
        let gp = gp_on(&x);
        let short = dense(5, 2, 2);
        let post = JointPosterior::new(&gp, &short).unwrap();
        let (want_mean, _) = gp.predict_valvar(&short);
        let want_cov = textbook_cov(&gp, &x, &short);
        let keys: Vec<usize> = (100..105).collect();
        let n = 40_000;
        let f = post.samples(&ctx(7), &keys, 0, n);
        let m = short.len();
        let mean: Vec<f64> = (0..m)
            .map(|i| (0..n).map(|s| f[(i, s)]).sum::<f64>() / n as f64)
            .collect();
        for i in 0..m {
            assert!((post.mean[i] - want_mean[i]).abs() < 1e-9);
            let se = (want_cov[(i, i)] / n as f64).sqrt();
            assert!(
                (mean[i] - want_mean[i]).abs() < 5.0 * se,
                "mean {i}: {} vs {} (se {se})",
                mean[i],
                want_mean[i]
            );
        }
        let mut off_diagonal_seen = false;
        for i in 0..m {
            for j in 0..=i {
                let c = (0..n)
                    .map(|s| (f[(i, s)] - mean[i]) * (f[(j, s)] - mean[j]))
                    .sum::<f64>()
                    / (n - 1) as f64;
                let w = want_cov[(i, j)];
                let se = ((want_cov[(i, i)] * want_cov[(j, j)] + w * w) / n as f64).sqrt();
                assert!(
                    (c - w).abs() < 5.0 * se,
                    "cov {i},{j}: {c} vs {w} (se {se})"
                );
                off_diagonal_seen |= i != j && w.abs() > 10.0 * se;
            }
        }
        // The test would not see a marginal (independent) draw otherwise.
        assert!(
            off_diagonal_seen,
            "no strongly correlated pair: {want_cov:?}"
        );
    }

    #[test]
    fn samples_are_reproducible_by_seed_and_keyed_by_row() {
        let x = dense(8, 2, 3);
        let gp = gp_on(&x);
        let short = dense(6, 2, 4);
        let post = JointPosterior::new(&gp, &short).unwrap();
        let keys: Vec<usize> = (0..6).collect();
        let a = post.samples(&ctx(1), &keys, 0, 4);
        assert_eq!(a, post.samples(&ctx(1), &keys, 0, 4));
        assert_ne!(a, post.samples(&ctx(2), &keys, 0, 4));
        // Samples 2 and 3 drawn alone are columns 2 and 3.
        let b = post.samples(&ctx(1), &keys, 2, 2);
        for i in 0..6 {
            assert_eq!(a[(i, 2)], b[(i, 0)]);
            assert_eq!(a[(i, 3)], b[(i, 1)]);
        }
        // A longer shortlist keeps the first rows' samples.
        let mut longer = short.clone();
        longer.push_row_from(&dense(1, 2, 5), 0);
        let post2 = JointPosterior::new(&gp, &longer).unwrap();
        let c = post2.samples(&ctx(1), &[0, 1, 2, 3, 4, 5, 6], 0, 4);
        for i in 0..6 {
            for s in 0..4 {
                assert!((a[(i, s)] - c[(i, s)]).abs() < 1e-9);
            }
        }
    }

    /// SplitMix64: a generator unrelated to the counter hash, for independent estimates.
    struct SplitMix(u64);

    impl SplitMix {
        /// A uniform in [0, 1).
        fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// qPO's probabilities sum to 1 and match a brute-force estimate: samples of the same
    /// posterior drawn with another generator (SplitMix64) through the textbook covariance
    /// and its eigendecomposition.
    #[test]
    fn best_probabilities_match_brute_force() {
        let x = dense(6, 2, 6);
        let gp = gp_on(&x);
        let short = dense(4, 2, 7);
        let post = JointPosterior::new(&gp, &short).unwrap();
        let keys: Vec<usize> = (0..4).collect();
        let n = 50_000;
        let (p, _) = best_probabilities(&post, &ctx(11), &keys, n);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let (mean, _) = gp.predict_valvar(&short);
        let cov = textbook_cov(&gp, &x, &short);
        let eig = cov.self_adjoint_eigen(faer::Side::Lower).unwrap();
        let (u, d) = (eig.U(), eig.S());
        let mut rng = SplitMix(5);
        let mut wins = [0usize; 4];
        for _ in 0..n {
            let z: Vec<f64> = (0..4)
                .map(|_| {
                    // Box–Muller in f64.
                    let (u1, u2) = (1.0 - rng.uniform(), rng.uniform());
                    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
                })
                .collect();
            let f: Vec<f64> = (0..4)
                .map(|i| {
                    mean[i]
                        + (0..4)
                            .map(|k| u[(i, k)] * d[k].max(0.0).sqrt() * z[k])
                            .sum::<f64>()
                })
                .collect();
            let best = (0..4).fold(0, |b, i| if f[i] > f[b] { i } else { b });
            wins[best] += 1;
        }
        for i in 0..4 {
            let q = wins[i] as f64 / n as f64;
            // Two independent estimates: the difference has variance about 2·q(1−q)/n.
            let se = (2.0 * q * (1.0 - q) / n as f64).sqrt().max(1e-3);
            assert!(
                (p[i] - q).abs() < 5.0 * se,
                "{i}: qPO {} brute {q} (se {se})",
                p[i]
            );
        }
        assert!(p.iter().filter(|&&v| v > 0.05).count() >= 2, "{p:?}");
    }

    #[test]
    fn thompson_picks_are_distinct_and_follow_their_samples() {
        let x = dense(8, 2, 8);
        let gp = gp_on(&x);
        let short = dense(40, 2, 9);
        let post = JointPosterior::new(&gp, &short).unwrap();
        let keys: Vec<usize> = (0..40).map(|i| 1000 + i).collect();
        let (picks, report) = thompson(&post, &ctx(3), &keys, 10, |_, _| false);
        assert_eq!(picks.len(), 10);
        let mut rows: Vec<usize> = picks.iter().map(|p| p.0).collect();
        rows.sort_unstable();
        rows.dedup();
        assert_eq!(rows.len(), 10);
        // The first pick is the argmax of sample 0; each later one the best still open.
        let f = post.samples(&ctx(3), &keys, 0, 10);
        for (j, &(i, v)) in picks.iter().enumerate() {
            assert_eq!(v, f[(i, j)] as f32);
            let earlier: Vec<usize> = picks[..j].iter().map(|p| p.0).collect();
            for r in (0..40).filter(|r| !earlier.contains(r)) {
                assert!(f[(r, j)] <= f[(i, j)], "pick {j}");
            }
        }
        assert_eq!((report.shortlist, report.samples), (40, 10));
        // Rejecting every other candidate leaves only open ones.
        let (odd, _) = thompson(&post, &ctx(3), &keys, 10, |i, _| i % 2 == 0);
        assert!(odd.iter().all(|p| p.0 % 2 == 1));
    }

    #[test]
    fn growth_doubles_up_to_the_cap_and_never_an_asked_shortlist() {
        let mut r = JointReport {
            shortlist: 2000,
            samples: 100,
            tail_share: 0.05,
            jitter: 0.0,
            passes: 1,
            prior_features: None,
        };
        assert_eq!(grown_shortlist(&r, 2000, 1_000_000, None), Some(4000));
        assert_eq!(grown_shortlist(&r, 6000, 1_000_000, None), Some(GROWTH_CAP));
        assert_eq!(grown_shortlist(&r, GROWTH_CAP, 1_000_000, None), None);
        assert_eq!(grown_shortlist(&r, 2000, 3000, None), Some(3000));
        assert_eq!(grown_shortlist(&r, 2000, 1_000_000, Some(2000)), None);
        r.tail_share = TAIL_LIMIT;
        assert_eq!(grown_shortlist(&r, 2000, 1_000_000, None), None);
    }

    #[test]
    fn the_quantile_orders_the_shortlist() {
        // The joint acquisitions' pool score is the upper quantile.
        let c = ctx(0);
        let s =
            crate::acquisition::score(crate::acquisition::Acquisition::Thompson, 1.0, 4.0, 0, &c);
        assert_eq!(s, 1.0 + SCREEN_BETA * 2.0);
    }
}
