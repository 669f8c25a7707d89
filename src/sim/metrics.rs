//! Per-round measures of a simulated campaign.

/// The true top-k of a pool: indices of the `k` largest values (ties by lower index) and the
/// k-th largest value.
#[derive(Clone, Debug)]
pub struct TopTruth {
    /// Membership of each pool row in the true top-k.
    pub member: Vec<bool>,
    /// The true k best values, best first.
    pub values: Vec<f64>,
}

impl TopTruth {
    /// The top-`k` of `y` (maximisation scale).
    pub fn new(y: &[f64], k: usize) -> Self {
        let mut order: Vec<usize> = (0..y.len()).collect();
        order.sort_by(|&a, &b| y[b].total_cmp(&y[a]).then(a.cmp(&b)));
        let mut member = vec![false; y.len()];
        for &i in &order[..k] {
            member[i] = true;
        }
        TopTruth {
            member,
            values: order[..k].iter().map(|&i| y[i]).collect(),
        }
    }

    /// Number of top-k places.
    pub fn k(&self) -> usize {
        self.values.len()
    }

    /// Share of the true top-k candidates among `acquired` (pool rows).
    pub fn recall(&self, acquired: &[usize]) -> f64 {
        acquired.iter().filter(|&&i| self.member[i]).count() as f64 / self.k() as f64
    }

    /// MolPAL's score recall: the share of the true k best values matched by the k best acquired
    /// values, as multisets, so a candidate tied with a top-k value counts.
    pub fn score_recall(&self, best_acquired: &[f64]) -> f64 {
        // Both lists are sorted best first; count matches by a merge over the multisets.
        let (mut i, mut j, mut hits) = (0, 0, 0);
        while i < best_acquired.len() && j < self.values.len() {
            match best_acquired[i].total_cmp(&self.values[j]) {
                std::cmp::Ordering::Equal => {
                    hits += 1;
                    i += 1;
                    j += 1;
                }
                std::cmp::Ordering::Greater => i += 1,
                std::cmp::Ordering::Less => j += 1,
            }
        }
        hits as f64 / self.k() as f64
    }

    /// Mean of the k best acquired values over the mean of the true k best (maximisation scale;
    /// meaningful when the values share a sign).
    pub fn mean_ratio(&self, best_acquired: &[f64]) -> f64 {
        let k = self.k() as f64;
        let got = best_acquired.iter().sum::<f64>() / k;
        let want = self.values.iter().sum::<f64>() / k;
        got / want
    }
}

/// The `k` largest of `values`, best first.
pub fn k_best(values: impl Iterator<Item = f64>, k: usize) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(|a, b| b.total_cmp(a));
    v.truncate(k);
    v
}

/// Root mean squared error.
pub fn rmse(pred: &[f64], truth: &[f64]) -> f64 {
    let s: f64 = pred.iter().zip(truth).map(|(p, t)| (p - t).powi(2)).sum();
    (s / pred.len().max(1) as f64).sqrt()
}

/// Spearman rank correlation (average ranks for ties); NaN when either side is constant.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

/// Pearson correlation; NaN when either side is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    sab / (saa * sbb).sqrt()
}

/// Ranks from 1, ties sharing their average rank.
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &o in &order[i..=j] {
            r[o] = avg;
        }
        i = j + 1;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_and_score_recall_count_ties() {
        let y = [5.0, 1.0, 5.0, 3.0, 4.0];
        let t = TopTruth::new(&y, 2);
        // True top-2: rows 0 and 2 (both 5.0).
        assert_eq!(t.recall(&[0, 1]), 0.5);
        assert_eq!(t.recall(&[0, 2, 4]), 1.0);
        assert_eq!(t.score_recall(&k_best([5.0, 4.0].into_iter(), 2)), 0.5);
        assert_eq!(t.score_recall(&k_best([5.0, 5.0, 1.0].into_iter(), 2)), 1.0);
        assert!((t.mean_ratio(&[5.0, 4.0]) - 0.9).abs() < 1e-12);
    }

    #[test]
    fn spearman_and_rmse_hand_values() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 90.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert!(spearman(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
        assert!((rmse(&[1.0, 3.0], &[0.0, 0.0]) - 5f64.sqrt()).abs() < 1e-12);
    }
}
