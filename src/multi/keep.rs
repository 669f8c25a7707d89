//! What a streaming pass keeps of the candidates: the best scalar scores ([`TopScores`]), or
//! every candidate that can still enter a Pareto batch ([`FrontKeeper`]).

use rayon::prelude::*;

use super::acquire::Value;
use crate::error::Result;
use crate::pareto::pareto_batch;
use crate::select::stochastic::{KeyTop, Keyed};

/// The best `k` scores seen (`f64`: hypervolume improvements span many orders of magnitude),
/// ties by key: the stochastic modes' [`KeyTop`], with the kept item built only when it is
/// kept.
pub struct TopScores<T>(KeyTop<T>);

impl<T> TopScores<T> {
    /// Keeps the best `k`.
    pub fn new(k: usize) -> Self {
        TopScores(KeyTop::new(k))
    }

    /// Offers a candidate with its score and tie key; `item` is called only when it is kept.
    pub fn offer(&mut self, score: f64, key: usize, item: impl FnOnce() -> T) {
        if self.0.accepts(score, key) {
            self.0.push(score, key, item());
        }
    }

    /// True when a candidate with tie key `key` whose score is at most `bound` may still be
    /// kept (a NaN bound proves nothing).
    pub fn admits(&self, bound: f64, key: usize) -> bool {
        bound.is_nan() || self.0.accepts(bound, key)
    }

    /// The kept candidates, best first: [`Keyed::key`] is the score, [`Keyed::index`] the tie
    /// key.
    pub fn into_sorted(self) -> Vec<Keyed<T>> {
        self.0.into_sorted()
    }
}

/// Every candidate, among those offered, that can be in the Pareto batch of `batch` of its
/// score vectors ([`pareto_batch`]): a candidate dominated by at least `batch` others never
/// is, since each of its dominators lies on an earlier non-dominated layer, so the layers
/// before its own already hold the whole batch; more candidates only add dominators. The
/// keeper drops such candidates whenever it has doubled since the last sweep, so it holds
/// about the candidates dominated by fewer than `batch` others (`O(batch · log n)` for
/// independent objectives; all of them when every candidate is on the front, which the
/// batch's crowding distances need).
///
/// Dominator counts cost `O(L log L)` for two objectives and `O(L²)` for three, `L` the
/// candidates held.
pub struct FrontKeeper<T> {
    m: usize,
    batch: usize,
    scores: Vec<f64>,
    kept: Vec<(usize, T)>,
    next_sweep: usize,
}

impl<T: Send> FrontKeeper<T> {
    /// A keeper for a batch of `batch` from vectors of `m` (2 or 3) scores.
    pub fn new(m: usize, batch: usize) -> Self {
        FrontKeeper {
            m,
            batch,
            scores: Vec::new(),
            kept: Vec::new(),
            next_sweep: (4 * batch).max(1024),
        }
    }

    /// The candidates held.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// True when none is held.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// Offers a candidate with its `m` finite scores and tie key.
    pub fn offer(&mut self, scores: &[f64], key: usize, item: T) {
        debug_assert_eq!(scores.len(), self.m);
        self.scores.extend_from_slice(scores);
        self.kept.push((key, item));
        if self.kept.len() >= self.next_sweep {
            self.sweep();
            self.next_sweep = (2 * self.kept.len()).max((4 * self.batch).max(1024));
        }
    }

    /// For two objectives, with at least `batch` candidates held: what tells in `O(log n)`
    /// whether a vector is dominated by `batch` of them ([`Level::refuses`]).
    fn level(&self) -> Option<Level> {
        if self.m != 2 || self.batch == 0 || self.kept.len() < self.batch {
            return None;
        }
        let mut order: Vec<usize> = (0..self.kept.len()).collect();
        order.sort_by(|&a, &b| self.scores[2 * b].total_cmp(&self.scores[2 * a]));
        let mut best = KeyTop::new(self.batch);
        let level = order
            .iter()
            .map(|&i| {
                best.push(self.scores[2 * i + 1], i, ());
                best.kth().unwrap_or(f64::NEG_INFINITY)
            })
            .collect();
        Some(Level {
            xs: order.iter().map(|&i| self.scores[2 * i]).collect(),
            level,
        })
    }

    /// Drops the candidates dominated by at least `batch` others.
    fn sweep(&mut self) {
        if self.batch == 0 {
            self.scores.clear();
            self.kept.clear();
            return;
        }
        let counts = dominator_counts(&self.scores, self.m);
        let m = self.m;
        let old_scores = std::mem::take(&mut self.scores);
        let old = std::mem::take(&mut self.kept);
        for (i, (entry, &c)) in old.into_iter().zip(&counts).enumerate() {
            if c < self.batch {
                self.scores
                    .extend_from_slice(&old_scores[i * m..(i + 1) * m]);
                self.kept.push(entry);
            }
        }
    }

    /// The batch, in [`pareto_batch`]'s order, each with its 0-based non-dominated layer;
    /// ties by key. Fewer than `batch` when fewer were offered.
    ///
    /// # Errors
    /// As [`pareto_batch`] (non-finite scores).
    pub fn finish(mut self) -> Result<Vec<(usize, T)>> {
        // Key order, so that the batch's index ties are key ties.
        let m = self.m;
        let mut order: Vec<usize> = (0..self.kept.len()).collect();
        order.sort_by_key(|&i| self.kept[i].0);
        let scores: Vec<f64> = order
            .iter()
            .flat_map(|&i| self.scores[i * m..(i + 1) * m].iter().copied())
            .collect();
        let take = self.batch.min(order.len());
        let picks = pareto_batch(&scores, m, take)?;
        let layers = layer_of(&scores, m)?;
        let mut slots: Vec<Option<(usize, T)>> = self.kept.drain(..).map(Some).collect();
        Ok(picks
            .into_iter()
            .map(|p| {
                let (_, item) = slots[order[p]].take().expect("each pick once");
                (layers[p], item)
            })
            .collect())
    }
}

/// A snapshot of a two-objective [`FrontKeeper`]'s candidates: their first scores, descending,
/// and `level[t]`, the `batch`-th largest second score among the first `t + 1` (−∞ while they
/// are fewer).
struct Level {
    xs: Vec<f64>,
    level: Vec<f64>,
}

impl Level {
    /// True when at least `batch` candidates of the snapshot dominate `u` (then so do they
    /// every vector at or below it): those with a first score above `u[0]` and a second at
    /// least `u[1]`. A candidate swept from the keeper since had `batch` dominators, which
    /// dominate `u` too, so an old snapshot is still right. NaN proves nothing.
    fn refuses(&self, u: &[f64]) -> bool {
        let t = self.xs.partition_point(|&x| x > u[0]);
        t > 0 && self.level[t - 1] >= u[1]
    }
}

/// The batch of a multi-objective round, from each candidate's [`Value`] as it streams by.
///
/// - Scalar values: the best `batch` ([`TopScores`]).
/// - ParEGO's weighted values: each weight vector's best `batch`, then the batch taken from
///   them in turn (vector 1's best, vector 2's best, ...), a candidate already taken skipped.
/// - `pareto-ucb`'s vectors: candidates whose probability of feasibility is at least one half
///   first, by [`FrontKeeper`], the rest only when those run out; a pick's score is its layer,
///   1 the first.
pub struct Batcher<T> {
    batch: usize,
    m: usize,
    top: TopScores<T>,
    weighted: Vec<TopScores<T>>,
    likely: FrontKeeper<T>,
    unlikely: FrontKeeper<T>,
    /// The likely candidates' [`Level`] at the last [`Batcher::refresh`].
    level: Option<Level>,
}

impl<T: Clone + Send> Batcher<T> {
    /// A batch of `batch` from `m` objectives, with `weights` ParEGO weight vectors (0 when
    /// not ParEGO).
    pub fn new(batch: usize, m: usize, weights: usize) -> Self {
        Batcher {
            batch,
            m,
            top: TopScores::new(batch),
            weighted: (0..weights).map(|_| TopScores::new(batch)).collect(),
            likely: FrontKeeper::new(m, batch),
            unlikely: FrontKeeper::new(m, batch),
            level: None,
        }
    }

    /// Takes a new snapshot of the `pareto-ucb` candidates for [`Batcher::admits`] (which
    /// refuses by the last one).
    pub fn refresh(&mut self) {
        self.level = self.likely.level();
    }

    /// Offers a candidate: its value, probability of feasibility and tie key; `item` is called
    /// only when it is kept.
    pub fn offer(&mut self, value: &Value, p: f64, key: usize, item: impl Fn() -> T) {
        match value {
            Value::Scalar(s) => self.top.offer(*s, key, item),
            Value::Weighted(v) => {
                for (top, s) in self.weighted.iter_mut().zip(v) {
                    top.offer(*s, key, &item);
                }
            }
            Value::Vector(u) if p >= 0.5 => self.likely.offer(&u[..self.m], key, item()),
            Value::Vector(u) => self.unlikely.offer(&u[..self.m], key, item()),
        }
    }

    /// True when a candidate with tie key `key` whose value is at most `bound` (in every
    /// entry) may still be kept: a scalar that may reach the best `batch`, weighted values one
    /// of which may reach its weight's best `batch`, a `pareto-ucb` vector (two objectives)
    /// that fewer than `batch` likely candidates dominate at the last [`Batcher::refresh`]: a
    /// candidate that `batch` others dominate is never picked ([`FrontKeeper`]), and the
    /// likely ones fill the batch before the unlikely are looked at.
    pub fn admits(&self, bound: &Value, key: usize) -> bool {
        match bound {
            Value::Scalar(s) => self.top.admits(*s, key),
            Value::Weighted(v) => self
                .weighted
                .iter()
                .zip(v)
                .any(|(top, s)| top.admits(*s, key)),
            Value::Vector(u) => !self.level.as_ref().is_some_and(|l| l.refuses(u)),
        }
    }

    /// The batch, in order, each with its score.
    ///
    /// # Errors
    /// As [`FrontKeeper::finish`].
    pub fn finish(self) -> Result<Vec<(f64, T)>> {
        if !self.weighted.is_empty() {
            let mut lists: Vec<std::vec::IntoIter<Keyed<T>>> = self
                .weighted
                .into_iter()
                .map(|t| t.into_sorted().into_iter())
                .collect();
            let mut taken = std::collections::HashSet::new();
            let mut picks = Vec::with_capacity(self.batch);
            'fill: while picks.len() < self.batch {
                let mut any = false;
                for list in &mut lists {
                    for k in list.by_ref() {
                        any = true;
                        if taken.insert(k.index) {
                            picks.push((k.key, k.item));
                            break;
                        }
                    }
                    if picks.len() == self.batch {
                        break 'fill;
                    }
                }
                if !any {
                    break;
                }
            }
            return Ok(picks);
        }
        let layered = |v: Vec<(usize, T)>| v.into_iter().map(|(l, c)| ((l + 1) as f64, c));
        let mut picks: Vec<(f64, T)> = layered(self.likely.finish()?).collect();
        let mut rest: Vec<(f64, T)> = layered(self.unlikely.finish()?).collect();
        rest.truncate(self.batch - picks.len());
        picks.extend(rest);
        if picks.is_empty() {
            picks = self
                .top
                .into_sorted()
                .into_iter()
                .map(|k| (k.key, k.item))
                .collect();
        }
        Ok(picks)
    }
}

/// The 0-based non-dominated layer of each row.
fn layer_of(scores: &[f64], m: usize) -> Result<Vec<usize>> {
    let layers = crate::pareto::nondominated_layers(scores, m)?;
    let mut of = vec![0; scores.len() / m];
    for (l, rows) in layers.iter().enumerate() {
        for &r in rows {
            of[r] = l;
        }
    }
    Ok(of)
}

/// How many rows dominate each row (rows of `m` values, flat): `≥` in every objective and not
/// equal.
pub fn dominator_counts(scores: &[f64], m: usize) -> Vec<usize> {
    let n = scores.len() / m;
    if m == 2 {
        return dominator_counts_2d(scores, n);
    }
    (0..n)
        .into_par_iter()
        .map(|i| {
            let p = &scores[i * m..(i + 1) * m];
            scores
                .chunks_exact(m)
                .filter(|q| crate::pareto::dominates(q, p))
                .count()
        })
        .collect()
}

/// Two objectives: points in descending order of the first, each group of equal first values
/// entered into a Fenwick tree over the second's ranks before any of the group is counted;
/// then `#{q ≥ p} − #{q = p}`.
fn dominator_counts_2d(scores: &[f64], n: usize) -> Vec<usize> {
    let x = |i: usize| scores[2 * i];
    let y = |i: usize| scores[2 * i + 1];
    let mut by_y: Vec<usize> = (0..n).collect();
    by_y.sort_by(|&a, &b| y(b).total_cmp(&y(a)));
    // rank[i]: 1 + the number of distinct second values above y(i) (1-based, best first).
    let mut rank = vec![0usize; n];
    let mut r = 0;
    for (k, &i) in by_y.iter().enumerate() {
        if k == 0 || y(i) != y(by_y[k - 1]) {
            r += 1;
        }
        rank[i] = r;
    }
    let mut tree = vec![0usize; r + 1];
    let mut by_x: Vec<usize> = (0..n).collect();
    by_x.sort_by(|&a, &b| x(b).total_cmp(&x(a)).then(y(b).total_cmp(&y(a))));
    let mut counts = vec![0usize; n];
    let mut g = 0;
    while g < n {
        let mut end = g;
        while end < n && x(by_x[end]) == x(by_x[g]) {
            end += 1;
        }
        for &i in &by_x[g..end] {
            let mut k = rank[i];
            while k <= r {
                tree[k] += 1;
                k += k & k.wrapping_neg();
            }
        }
        // Equal points are adjacent in `by_x` (same x, then same y).
        let mut s = g;
        while s < end {
            let mut e = s;
            while e < end && y(by_x[e]) == y(by_x[s]) {
                e += 1;
            }
            let (mut k, mut weakly) = (rank[by_x[s]], 0);
            while k > 0 {
                weakly += tree[k];
                k -= k & k.wrapping_neg();
            }
            for &i in &by_x[s..e] {
                counts[i] = weakly - (e - s);
            }
            s = e;
        }
        g = end;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pareto::dominates;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 33) % 7) as f64
    }

    /// The snapshot refuses a vector exactly when `batch` held candidates dominate it with a
    /// larger first score (the strict part keeps it a check of dominance), on grid scores
    /// with many ties.
    #[test]
    fn level_refuses_what_batch_candidates_dominate() {
        let mut seed = 11;
        for batch in [1, 3, 10] {
            let mut keeper = FrontKeeper::new(2, batch);
            let pts: Vec<[f64; 2]> = (0..200)
                .map(|_| {
                    [
                        (lcg(&mut seed) * 20.0).floor(),
                        (lcg(&mut seed) * 20.0).floor(),
                    ]
                })
                .collect();
            for (i, p) in pts.iter().enumerate() {
                keeper.offer(p, i, ());
            }
            let level = keeper.level().expect("more than batch held");
            let held: Vec<&[f64]> = keeper.scores.chunks_exact(2).collect();
            let mut refused = 0;
            for a in 0..21 {
                for b in 0..21 {
                    let u = [f64::from(a) - 0.5 * f64::from(a % 2), f64::from(b)];
                    let strict = held.iter().filter(|q| q[0] > u[0] && q[1] >= u[1]).count();
                    assert_eq!(level.refuses(&u), strict >= batch, "{u:?} batch {batch}");
                    if level.refuses(&u) {
                        refused += 1;
                        let dominated = held.iter().filter(|q| dominates(q, &u)).count();
                        assert!(dominated >= batch, "{u:?}");
                    }
                }
            }
            assert!(refused > 0);
            assert!(!level.refuses(&[f64::NAN, 0.0]));
        }
    }

    #[test]
    fn dominator_counts_match_the_direct_count() {
        let mut seed = 3;
        for m in [2, 3] {
            for n in [0, 1, 5, 60] {
                // Few distinct values: many ties and equal points.
                let pts: Vec<f64> = (0..n * m).map(|_| lcg(&mut seed)).collect();
                let direct: Vec<usize> = pts
                    .chunks_exact(m)
                    .map(|p| pts.chunks_exact(m).filter(|q| dominates(q, p)).count())
                    .collect();
                assert_eq!(dominator_counts(&pts, m), direct, "m {m} n {n}");
            }
        }
    }

    #[test]
    fn the_keeper_gives_the_batch_of_all_candidates() {
        let mut seed = 11;
        for m in [2, 3] {
            for batch in [1, 3, 10] {
                let n = 3000;
                let pts: Vec<f64> = (0..n * m)
                    .map(|_| lcg(&mut seed) + 0.01 * lcg(&mut seed))
                    .collect();
                let mut keeper = FrontKeeper::new(m, batch);
                // Keys in reverse row order: ties must follow the key, not the offer order.
                for (i, p) in pts.chunks_exact(m).enumerate() {
                    keeper.offer(p, n - 1 - i, i);
                }
                assert!(keeper.len() < n, "the sweep dropped candidates");
                let got: Vec<usize> = keeper.finish().unwrap().into_iter().map(|p| p.1).collect();
                let reversed: Vec<f64> = pts.chunks_exact(m).rev().flatten().copied().collect();
                let want: Vec<usize> = pareto_batch(&reversed, m, batch)
                    .unwrap()
                    .into_iter()
                    .map(|r| n - 1 - r)
                    .collect();
                assert_eq!(got, want, "m {m} batch {batch}");
            }
        }
    }

    #[test]
    fn top_scores_rank_by_score_then_key() {
        let mut top = TopScores::new(2);
        top.offer(1.0, 5, || "a");
        top.offer(1.0, 2, || "b");
        top.offer(f64::NAN, 0, || "nan");
        top.offer(0.5, 1, || "c");
        let got: Vec<&str> = top.into_sorted().into_iter().map(|k| k.item).collect();
        assert_eq!(got, ["b", "a"]);
    }
}
