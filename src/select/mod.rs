//! Choosing the batch: a streaming top-k with index tie-break, diverse batches that update the
//! posterior variance after each pick, a similarity cap between picks, batches from joint
//! posterior samples ([`joint`] over a shortlist, [`pathwise`] over the whole pool) and
//! stochastic batches ([`stochastic`]).

mod diverse;
pub mod joint;
pub mod pathwise;
pub mod stochastic;

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::acquisition::Acquisition;

pub use diverse::{choose_batch, Batch, BatchMode, Believer, Shortlisted, JOINT_MODE};
pub use joint::{grown_shortlist, JointReport};
pub use stochastic::{is_stochastic, Gumbel, KeyTop};

/// True when the batch is picked from a shortlist with its features: diverse batches, the
/// similarity cap and the joint acquisitions.
pub fn uses_shortlist(mode: BatchMode, acq: Acquisition, max_sim: Option<f64>) -> bool {
    mode == BatchMode::Diverse || max_sim.is_some() || acq.is_joint()
}

/// The shortlist for the diverse mode, the similarity cap and the joint acquisitions: `asked`,
/// or max(5 × batch, 500) (max(10 × batch, 2,000) for `thompson` and `qpo`, which grow it when
/// it is too short), at most the `available` candidates. A shortlist asked smaller than the
/// batch is an error rather than silently raised: the batch is picked from the shortlist.
pub fn shortlist_size(
    asked: Option<usize>,
    batch: usize,
    available: usize,
    acq: Acquisition,
) -> crate::Result<usize> {
    match asked {
        Some(s) if s < batch => Err(crate::Error::param(
            "shortlist",
            format!("{s} is smaller than the batch of {batch}; the batch is picked from the shortlist, so give at least {batch}"),
        )),
        Some(s) => Ok(s.min(available)),
        None if acq.is_joint() => Ok((10 * batch).max(2000).min(available)),
        None => Ok((5 * batch).max(500).max(batch).min(available)),
    }
}

/// Ranks `(score, index)` pairs: higher score first, then lower index. NaN ranks last.
#[inline]
pub fn better(a: (f32, usize), b: (f32, usize)) -> bool {
    rank_cmp(a, b) == Ordering::Less
}

/// Total order of `(score, index)` with the best first.
#[inline]
pub fn rank_cmp(a: (f32, usize), b: (f32, usize)) -> Ordering {
    let key = |s: f32| if s.is_nan() { f32::NEG_INFINITY } else { s };
    key(b.0).total_cmp(&key(a.0)).then(a.1.cmp(&b.1))
}

/// One kept candidate.
#[derive(Clone, Debug)]
pub struct Ranked<T> {
    /// Acquisition score.
    pub score: f32,
    /// Global row in the pool.
    pub index: usize,
    /// Whatever the caller keeps with it.
    pub item: T,
}

impl<T> PartialEq for Ranked<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Ranked<T> {}
impl<T> PartialOrd for Ranked<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Ranked<T> {
    // The heap's top is the *worst* kept candidate, the one to evict.
    fn cmp(&self, other: &Self) -> Ordering {
        rank_cmp((self.score, self.index), (other.score, other.index))
    }
}

/// The `k` best candidates seen so far; results do not depend on the order of pushes.
#[derive(Clone, Debug)]
pub struct TopK<T> {
    k: usize,
    heap: BinaryHeap<Ranked<T>>,
}

impl<T> TopK<T> {
    /// Keeps the best `k`.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(1 << 20) + 1),
        }
    }

    /// True when `(score, index)` would enter the kept set; cheap, so callers can skip building
    /// the item for candidates that would be dropped.
    #[inline]
    pub fn accepts(&self, score: f32, index: usize) -> bool {
        if self.k == 0 {
            return false;
        }
        match self.heap.peek() {
            Some(worst) if self.heap.len() >= self.k => {
                better((score, index), (worst.score, worst.index))
            }
            _ => true,
        }
    }

    /// Offers a candidate.
    pub fn push(&mut self, score: f32, index: usize, item: T) {
        if !self.accepts(score, index) {
            return;
        }
        self.heap.push(Ranked { score, index, item });
        if self.heap.len() > self.k {
            self.heap.pop();
        }
    }

    /// Offers every candidate of another top-k.
    pub fn merge(&mut self, other: TopK<T>) {
        for r in other.heap {
            self.push(r.score, r.index, r.item);
        }
    }

    /// The worst kept candidate once `k` are kept.
    pub fn kth(&self) -> Option<(f32, usize)> {
        match self.heap.peek() {
            Some(w) if self.heap.len() >= self.k => Some((w.score, w.index)),
            _ => None,
        }
    }

    /// Number kept.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The kept candidates, best first.
    pub fn into_sorted(self) -> Vec<Ranked<T>> {
        // `into_sorted_vec` is ascending in `Ord`, and `Ord` puts the best first.
        self.heap.into_sorted_vec()
    }
}

/// The running threshold of a pruned search: the `k`-th best exact score found so far, which
/// only rises. A candidate whose score's upper bound is strictly below it ranks after `k`
/// candidates already found whatever its index, so it cannot be among the best `k`; one whose
/// bound equals it is kept, so ties still break by index.
#[derive(Clone, Debug)]
pub struct Floor {
    top: TopK<()>,
    /// A threshold known from elsewhere: the `k`-th best score of candidates another task
    /// found (a shard scored after others).
    least: f32,
}

impl Floor {
    /// A threshold for the best `k`.
    pub fn new(k: usize) -> Self {
        Floor {
            top: TopK::new(k),
            least: f32::NEG_INFINITY,
        }
    }

    /// The threshold starts at `score` (the `k`-th best score of candidates found elsewhere,
    /// which the final `k`-th best can only equal or beat); a NaN is ignored.
    pub fn at_least(mut self, score: f32) -> Self {
        if !score.is_nan() {
            self.least = score;
        }
        self
    }

    /// Records an exact score.
    #[inline]
    pub fn offer(&mut self, score: f32, index: usize) {
        self.top.push(score, index, ());
    }

    /// Scores strictly below this cannot be among the best `k` (`-inf` until `k` scores are
    /// known, `+inf` when `k` is 0). A NaN score ranks last, so a NaN `k`-th gives `-inf`.
    #[inline]
    pub fn threshold(&self) -> f32 {
        if self.top.k == 0 {
            return f32::INFINITY;
        }
        let own = match self.top.kth() {
            Some((s, _)) if !s.is_nan() => s,
            _ => f32::NEG_INFINITY,
        };
        own.max(self.least)
    }

    /// True when a candidate whose score is at most `bound` may still be among the best `k`
    /// (a NaN bound proves nothing).
    #[inline]
    pub fn admits(&self, bound: f32) -> bool {
        bound.partial_cmp(&self.threshold()) != Some(Ordering::Less)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_and_breaks_ties_by_index() {
        let mut t = TopK::new(3);
        for (i, s) in [0.5f32, 0.9, 0.9, 0.1, 0.9, 0.7].into_iter().enumerate() {
            t.push(s, i, ());
        }
        let got: Vec<usize> = t.into_sorted().iter().map(|r| r.index).collect();
        assert_eq!(got, vec![1, 2, 4]);
    }

    #[test]
    fn order_of_pushes_and_merges_does_not_matter() {
        let scores: Vec<f32> = (0..500).map(|i| ((i * 7919) % 97) as f32 / 7.0).collect();
        let mut a = TopK::new(25);
        for (i, &s) in scores.iter().enumerate() {
            a.push(s, i, ());
        }
        let mut parts: Vec<TopK<()>> = (0..4).map(|_| TopK::new(25)).collect();
        for (i, &s) in scores.iter().enumerate().rev() {
            parts[i % 4].push(s, i, ());
        }
        let mut b = TopK::new(25);
        for p in parts {
            b.merge(p);
        }
        let ia: Vec<usize> = a.into_sorted().iter().map(|r| r.index).collect();
        let ib: Vec<usize> = b.into_sorted().iter().map(|r| r.index).collect();
        assert_eq!(ia, ib);
        // Against a full sort.
        let mut all: Vec<usize> = (0..scores.len()).collect();
        all.sort_by(|&x, &y| rank_cmp((scores[x], x), (scores[y], y)));
        assert_eq!(ia, all[..25].to_vec());
    }

    #[test]
    fn a_floor_from_elsewhere_raises_the_threshold_until_the_own_passes_it() {
        let mut f = Floor::new(2).at_least(0.5);
        assert_eq!(f.threshold(), 0.5);
        assert!(f.admits(0.5) && !f.admits(0.4));
        f.offer(0.9, 0);
        f.offer(0.6, 1);
        assert_eq!(f.threshold(), 0.6);
        assert_eq!(
            Floor::new(2).at_least(f32::NAN).threshold(),
            f32::NEG_INFINITY
        );
        assert_eq!(Floor::new(0).at_least(0.5).threshold(), f32::INFINITY);
    }

    #[test]
    fn nan_ranks_last_and_k_zero_keeps_nothing() {
        let mut t = TopK::new(2);
        t.push(f32::NAN, 0, ());
        t.push(-1e30, 1, ());
        t.push(f32::NEG_INFINITY, 2, ());
        let got: Vec<usize> = t.into_sorted().iter().map(|r| r.index).collect();
        assert_eq!(got, vec![1, 0]);
        let mut z = TopK::new(0);
        z.push(1.0, 0, ());
        assert!(z.is_empty());
    }
}
