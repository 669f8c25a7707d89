//! Stochastic batches (Kirsch et al., "Stochastic Batch Acquisition", TMLR 2023): the batch is
//! drawn without replacement from a distribution over the candidates built from their
//! acquisition scores, by the Gumbel-top-k trick.
//!
//! Adding an independent standard Gumbel variable `G` to each candidate's log-probability and
//! taking the `k` largest sums draws `k` candidates without replacement, in order, with
//! probability `p ∝ exp(key without noise)`: the first pick is `i` with probability `pᵢ`, the
//! second `j` with `pⱼ / (1 − pᵢ)`, and so on. The three modes differ in the log-probability:
//!
//! - `softmax`: `p ∝ exp(score / T)` (temperature `T`),
//! - `power`: `p ∝ score^β` (non-negative scores only; a score of 0 is never drawn while a
//!   positive one is left),
//! - `softrank`: `p ∝ rank^−β`, rank 1 the best score.
//!
//! The noise is a pure function of (seed, round, key index) through [`crate::rng::draw_u32`]
//! on its own stream, and keys are computed in `f64` on the CPU, so every backend, tiling and
//! thread count draws the same batch for the same scores.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rayon::prelude::*;

use super::BatchMode;
use crate::acquisition::Acquisition;
use crate::error::{Error, Result};
use crate::rng::draw_u32;

/// The stream of the Gumbel noise; the others in use: 0 (random), 1 and 2 (Thompson), 5, 7,
/// 11, 13 and 17.
pub const GUMBEL_STREAM: u32 = 19;

/// Default temperature of `softmax` (an earlier study found `T = 0.1` good on UCB scores).
pub const DEFAULT_TEMPERATURE: f32 = 0.1;

/// Default exponent `β` of `power` and `softrank`.
pub const DEFAULT_POWER: f32 = 1.0;

/// True for the modes that draw the batch at random: `softmax`, `power`, `softrank`.
pub fn is_stochastic(mode: BatchMode) -> bool {
    matches!(
        mode,
        BatchMode::Softmax | BatchMode::Power | BatchMode::Softrank
    )
}

/// Why the stochastic modes refuse a setting.
pub const STOCHASTIC_ALONE: &str =
    "does not combine with the stochastic batch modes (softmax, power, softrank), which draw the batch from every candidate's score";

/// Checks the noise parameters (`temperature`, `power`: finite and above 0, whatever the
/// mode) and that `power` gets an acquisition `acq` whose scores are never negative.
///
/// # Errors
/// [`Error::InvalidParam`] naming `temperature`, `power` or `mode`.
pub fn check(mode: BatchMode, temperature: f32, power: f32, acq: Acquisition) -> Result<()> {
    for (name, v) in [("temperature", temperature), ("power", power)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(Error::param(
                name,
                format!("must be a finite number above 0, got {v}"),
            ));
        }
    }
    if mode == BatchMode::Power && !non_negative(acq) {
        return Err(Error::param(
            "mode",
            format!(
                "power draws with p ∝ score^β and needs scores that are never negative, but {} scores can be; use softmax",
                acq.name()
            ),
        ));
    }
    Ok(())
}

/// True when `acq`'s score is never negative (listed, so that a new acquisition is refused by
/// `power` until it is known to qualify).
fn non_negative(acq: Acquisition) -> bool {
    matches!(
        acq,
        Acquisition::Ei { .. }
            | Acquisition::Pi { .. }
            | Acquisition::Variance
            | Acquisition::Random
    )
}

/// A standard Gumbel draw `−ln(−ln U)` for `(seed, round, index)`, with `U` in (0, 1), never 0
/// or 1 (the word's centre: `(w + ½) / 2³²`), so it is always finite.
#[inline]
pub fn gumbel(seed: u64, round: u32, index: u64) -> f64 {
    let w = draw_u32(seed, round, index, GUMBEL_STREAM);
    let u = (f64::from(w) + 0.5) * (1.0 / 4_294_967_296.0);
    -(-u.ln()).ln()
}

/// The noise of one round of a stochastic mode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gumbel {
    mode: BatchMode,
    temperature: f64,
    power: f64,
    seed: u64,
    round: u32,
}

impl Gumbel {
    /// The noise of `mode` for `(seed, round)` with the mode's parameters (checked by
    /// [`check`]); `None` for the deterministic modes.
    pub fn new(
        mode: BatchMode,
        temperature: f32,
        power: f32,
        seed: u64,
        round: u32,
    ) -> Option<Self> {
        is_stochastic(mode).then_some(Gumbel {
            mode,
            temperature: f64::from(temperature),
            power: f64::from(power),
            seed,
            round,
        })
    }

    /// True for `softmax` and `power`, whose noise is drawn per candidate ([`Gumbel::key`]);
    /// false for `softrank`, whose noise is drawn per rank ([`Gumbel::ranks`]).
    pub fn per_candidate(&self) -> bool {
        self.mode != BatchMode::Softrank
    }

    /// The key of a candidate with acquisition score `score` and key index `index` (the
    /// index that keys its random draws and breaks its ties): `score/T + G` for `softmax`,
    /// `β·ln(score) + G` for `power` (−∞ for a score of 0, or one that is not a positive
    /// number). A NaN score gets −∞. The batch is the candidates with the largest keys.
    pub fn key(&self, score: f32, index: u64) -> f64 {
        let s = f64::from(score);
        let logit = match self.mode {
            BatchMode::Power if s > 0.0 => self.power * s.ln(),
            BatchMode::Power => return f64::NEG_INFINITY,
            _ if s.is_nan() => return f64::NEG_INFINITY,
            _ => s / self.temperature,
        };
        logit + gumbel(self.seed, self.round, index)
    }

    /// `softrank`: the ranks (1 = the best score) of the `batch` picks among `eligible`
    /// candidates, in batch order: the `batch` largest `−β·ln r + G'_r`, `r = 1..=eligible`,
    /// with `G'_r` keyed by the rank `r` (ties by the lower rank).
    ///
    /// Why per rank rather than per candidate: the ranking by score is a bijection `σ` from
    /// ranks to candidates fixed by the scores, and the per-candidate noises `Gᵢ` are iid and
    /// independent of the scores, so `G'_r = G_σ(r)` are iid standard Gumbel too, independent
    /// of the scores. Drawing `G'_r` directly for each rank thus gives exactly the same
    /// distribution of batches as the per-candidate keys `−β·ln rank(i) + Gᵢ` (not the same
    /// batch for a seed). It lets the ranks be drawn before the pass, which then needs only
    /// the best `R_max` candidates by score, `R_max` the deepest picked rank: the ordinary
    /// top-k of the pool, with its pruning.
    pub fn ranks(&self, eligible: usize, batch: usize) -> Vec<usize> {
        let beta = self.power;
        (1..eligible + 1)
            .into_par_iter()
            .fold(
                || KeyTop::new(batch),
                |mut top, r| {
                    let key = -beta * (r as f64).ln() + gumbel(self.seed, self.round, r as u64);
                    top.push(key, r, ());
                    top
                },
            )
            .reduce(
                || KeyTop::new(batch),
                |mut a, b| {
                    a.merge(b);
                    a
                },
            )
            .into_sorted()
            .into_iter()
            .map(|k| k.index)
            .collect()
    }
}

/// One candidate kept by its key.
#[derive(Clone, Debug)]
pub struct Keyed<T> {
    /// Its key (larger is better).
    pub key: f64,
    /// Its key index: ties break by the lower one.
    pub index: usize,
    /// Whatever the caller keeps with it.
    pub item: T,
}

/// Total order of `(key, index)` with the best first: larger key, then lower index; NaN last.
fn key_cmp(a: (f64, usize), b: (f64, usize)) -> Ordering {
    let k = |s: f64| if s.is_nan() { f64::NEG_INFINITY } else { s };
    k(b.0).total_cmp(&k(a.0)).then(a.1.cmp(&b.1))
}

impl<T> PartialEq for Keyed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Keyed<T> {}
impl<T> PartialOrd for Keyed<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Keyed<T> {
    // The heap's top is the worst kept, the one to evict.
    fn cmp(&self, other: &Self) -> Ordering {
        key_cmp((self.key, self.index), (other.key, other.index))
    }
}

/// The `k` largest keys seen so far (ties by index), as [`super::TopK`] with `f64` keys; the
/// result does not depend on the order of pushes.
#[derive(Clone, Debug)]
pub struct KeyTop<T> {
    k: usize,
    heap: BinaryHeap<Keyed<T>>,
}

impl<T> KeyTop<T> {
    /// Keeps the best `k`.
    pub fn new(k: usize) -> Self {
        KeyTop {
            k,
            heap: BinaryHeap::with_capacity(k.min(1 << 20) + 1),
        }
    }

    /// True when `(key, index)` would enter the kept set.
    #[inline]
    pub fn accepts(&self, key: f64, index: usize) -> bool {
        match self.heap.peek() {
            _ if self.k == 0 => false,
            Some(w) if self.heap.len() >= self.k => key_cmp((key, index), (w.key, w.index)).is_lt(),
            _ => true,
        }
    }

    /// The worst kept key once `k` are kept (what a key must beat to enter).
    pub fn kth(&self) -> Option<f64> {
        match self.heap.peek() {
            Some(w) if self.k > 0 && self.heap.len() >= self.k => Some(w.key),
            _ => None,
        }
    }

    /// Offers a candidate.
    pub fn push(&mut self, key: f64, index: usize, item: T) {
        if !self.accepts(key, index) {
            return;
        }
        self.heap.push(Keyed { key, index, item });
        if self.heap.len() > self.k {
            self.heap.pop();
        }
    }

    /// Offers every candidate of another.
    pub fn merge(&mut self, other: KeyTop<T>) {
        for c in other.heap {
            self.push(c.key, c.index, c.item);
        }
    }

    /// The kept candidates, best first.
    pub fn into_sorted(self) -> Vec<Keyed<T>> {
        self.heap.into_sorted_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trials of the goodness-of-fit tests: one seed each, seeds `0..TRIALS`.
    const TRIALS: u64 = 20_000;
    /// Upper 0.001 quantiles of the chi-square distribution (from tables; scipy's
    /// `chi2.ppf(0.999, df)`): df = 4 for the first pick of 5 candidates, df = 19 for the 20
    /// ordered pairs.
    const CHI2_999_DF4: f64 = 18.467;
    const CHI2_999_DF19: f64 = 43.820;

    fn chi_square(counts: &[u64], probs: &[f64], n: u64) -> f64 {
        counts
            .iter()
            .zip(probs)
            .map(|(&o, &p)| {
                let e = p * n as f64;
                (o as f64 - e).powi(2) / e
            })
            .sum()
    }

    /// The first two picks of each seed (candidate positions), by the mode's own path.
    fn first_two(g: impl Fn(u64) -> Gumbel, scores: &[f32]) -> Vec<(usize, usize)> {
        (0..TRIALS)
            .map(|seed| {
                let g = g(seed);
                let picks: Vec<usize> = if g.per_candidate() {
                    let mut top = KeyTop::new(2);
                    for (i, &s) in scores.iter().enumerate() {
                        top.push(g.key(s, i as u64), i, ());
                    }
                    top.into_sorted().iter().map(|k| k.index).collect()
                } else {
                    let by_score = by_score(scores);
                    g.ranks(scores.len(), 2)
                        .iter()
                        .map(|&r| by_score[r - 1])
                        .collect()
                };
                (picks[0], picks[1])
            })
            .collect()
    }

    /// Positions of `scores` best first (ties by position), as the pool's top-k ranks them.
    fn by_score(scores: &[f32]) -> Vec<usize> {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| super::super::rank_cmp((scores[a], a), (scores[b], b)));
        order
    }

    /// Asserts that the first picks follow `p` and the ordered pairs `pᵢ·pⱼ/(1 − pᵢ)`.
    fn assert_fits(what: &str, picks: &[(usize, usize)], p: &[f64]) {
        let n = p.len();
        let mut first = vec![0u64; n];
        let mut pair = vec![0u64; n * n];
        for &(a, b) in picks {
            first[a] += 1;
            pair[a * n + b] += 1;
        }
        let x1 = chi_square(&first, p, TRIALS);
        assert!(
            x1 < CHI2_999_DF4,
            "{what}: first pick χ² = {x1:.1}, counts {first:?}, p {p:?}"
        );
        let (mut counts, mut probs) = (Vec::new(), Vec::new());
        for i in 0..n {
            for j in (0..n).filter(|&j| j != i) {
                counts.push(pair[i * n + j]);
                probs.push(p[i] * p[j] / (1.0 - p[i]));
            }
            assert_eq!(pair[i * n + i], 0, "{what}: {i} picked twice");
        }
        let x2 = chi_square(&counts, &probs, TRIALS);
        assert!(
            x2 < CHI2_999_DF19,
            "{what}: pairs χ² = {x2:.1}, counts {counts:?}"
        );
    }

    fn normalised(w: &[f64]) -> Vec<f64> {
        let sum: f64 = w.iter().sum();
        w.iter().map(|x| x / sum).collect()
    }

    // Scores not in rank order, so that softrank's ranks must be mapped to the candidates.
    const SCORES: [f32; 5] = [0.3, 0.9, 0.1, 0.5, 0.7];

    #[test]
    fn softmax_draws_with_p_proportional_to_exp_score_over_t() {
        let t = 0.4;
        let p = normalised(&SCORES.map(|s| (f64::from(s) / f64::from(t)).exp()));
        let picks = first_two(
            |s| Gumbel::new(BatchMode::Softmax, t, 1.0, s, 0).unwrap(),
            &SCORES,
        );
        assert_fits("softmax", &picks, &p);
    }

    #[test]
    fn power_draws_with_p_proportional_to_score_to_the_beta() {
        let beta = 1.5;
        let p = normalised(&SCORES.map(|s| f64::from(s).powf(f64::from(beta))));
        let picks = first_two(
            |s| Gumbel::new(BatchMode::Power, 0.1, beta, s, 3).unwrap(),
            &SCORES,
        );
        assert_fits("power", &picks, &p);
    }

    /// The rank-keyed draw has the distribution of per-candidate keys `−β·ln rank + G`.
    #[test]
    fn softrank_draws_with_p_proportional_to_rank_to_the_minus_beta() {
        let beta = 1.0;
        let order = by_score(&SCORES);
        let mut p = vec![0.0; SCORES.len()];
        for (r, &i) in order.iter().enumerate() {
            p[i] = ((r + 1) as f64).powf(-f64::from(beta));
        }
        let p = normalised(&p);
        let picks = first_two(
            |s| Gumbel::new(BatchMode::Softrank, 0.1, beta, s, 1).unwrap(),
            &SCORES,
        );
        assert_fits("softrank", &picks, &p);
    }

    #[test]
    fn power_never_draws_a_zero_score_while_a_positive_one_is_left() {
        let scores = [0.0, 0.2, 0.0, 1e-6];
        for seed in 0..2000 {
            let g = Gumbel::new(BatchMode::Power, 0.1, 1.0, seed, 0).unwrap();
            let mut top = KeyTop::new(3);
            for (i, &s) in scores.iter().enumerate() {
                top.push(g.key(s, i as u64), i, ());
            }
            let got: Vec<usize> = top.into_sorted().iter().map(|k| k.index).collect();
            // The two positive scores first, in either order, then the zeros by index.
            assert_eq!(got[2], 0, "{seed}: {got:?}");
            assert!(
                got[..2].contains(&1) && got[..2].contains(&3),
                "{seed}: {got:?}"
            );
        }
    }

    #[test]
    fn the_draw_is_keyed_by_seed_and_round() {
        let batch = |mode, seed, round| -> Vec<usize> {
            let g = Gumbel::new(mode, 0.1, 1.0, seed, round).unwrap();
            if !g.per_candidate() {
                return g.ranks(500, 10);
            }
            let mut top = KeyTop::new(10);
            for i in 0..500usize {
                top.push(g.key(((i * 37) % 101) as f32 / 100.0, i as u64), i, ());
            }
            top.into_sorted().iter().map(|k| k.index).collect()
        };
        for mode in [BatchMode::Softmax, BatchMode::Power, BatchMode::Softrank] {
            let a = batch(mode, 7, 2);
            assert_eq!(a.len(), 10);
            assert_eq!(a, batch(mode, 7, 2), "{mode}");
            assert_ne!(a, batch(mode, 7, 3), "{mode}: a new round draws anew");
            assert_ne!(a, batch(mode, 8, 2), "{mode}: a new seed draws anew");
        }
        assert!(Gumbel::new(BatchMode::TopK, 0.1, 1.0, 0, 0).is_none());
    }

    #[test]
    fn gumbel_draws_are_finite_with_the_standard_mean() {
        let n = 200_000;
        let mean = (0..n).map(|i| gumbel(5, 0, i)).sum::<f64>() / n as f64;
        // Euler–Mascheroni constant; the sd of the mean is π/√6/√n ≈ 0.003.
        assert!((mean - 0.577_215_66).abs() < 0.015, "{mean}");
        // The extreme words stay finite.
        for w in [0u32, u32::MAX] {
            let u = (f64::from(w) + 0.5) / 4_294_967_296.0;
            assert!((-(-u.ln()).ln()).is_finite());
        }
    }

    #[test]
    fn key_top_merges_in_any_order_and_breaks_ties_by_index() {
        let keys: Vec<f64> = (0..300).map(|i| ((i * 7919) % 31) as f64).collect();
        let mut a = KeyTop::new(20);
        for (i, &k) in keys.iter().enumerate() {
            a.push(k, i, ());
        }
        let mut parts: Vec<KeyTop<()>> = (0..3).map(|_| KeyTop::new(20)).collect();
        for (i, &k) in keys.iter().enumerate().rev() {
            parts[i % 3].push(k, i, ());
        }
        let mut b = KeyTop::new(20);
        for p in parts {
            b.merge(p);
        }
        let ia: Vec<usize> = a.into_sorted().iter().map(|k| k.index).collect();
        let ib: Vec<usize> = b.into_sorted().iter().map(|k| k.index).collect();
        assert_eq!(ia, ib);
        let mut all: Vec<usize> = (0..keys.len()).collect();
        all.sort_by(|&x, &y| key_cmp((keys[x], x), (keys[y], y)));
        assert_eq!(ia, all[..20].to_vec());
    }

    #[test]
    fn check_refuses_bad_parameters_and_power_on_signed_scores() {
        let ucb = Acquisition::Ucb { beta: 2.0 };
        for t in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let e = check(BatchMode::Softmax, t, 1.0, ucb)
                .unwrap_err()
                .to_string();
            assert!(e.contains("temperature"), "{e}");
            let e = check(BatchMode::Softrank, 0.1, t, ucb)
                .unwrap_err()
                .to_string();
            assert!(e.contains("power"), "{e}");
        }
        for acq in [Acquisition::Greedy, ucb, Acquisition::Thompson] {
            let e = check(BatchMode::Power, 0.1, 1.0, acq)
                .unwrap_err()
                .to_string();
            assert!(e.contains("use softmax"), "{e}");
            assert!(check(BatchMode::Softmax, 0.1, 1.0, acq).is_ok());
        }
        assert!(check(BatchMode::Power, 0.1, 2.0, Acquisition::Ei { xi: 0.0 }).is_ok());
    }
}
