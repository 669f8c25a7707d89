//! Streaming summaries of a value over the whole pool: running moments and histograms, so a
//! pool of any size is summarised in fixed memory.
//!
//! [`Histogram`] has a fixed number of equal bins over a range that doubles (merging pairs of
//! bins) whenever a value falls outside it, so no range has to be known before the pass. Counts
//! are integers and moments are summed per fixed chunk, so the result does not depend on the
//! number of threads.

use rayon::prelude::*;

use crate::backend::CHUNK;

/// Bins of a [`Histogram`]; quantiles are read to 1/`BINS` of the range.
pub const BINS: usize = 2048;

/// Count, mean, standard deviation, minimum and maximum of the finite values seen, plus a
/// histogram of them.
#[derive(Clone, Debug)]
pub struct Histogram {
    lo: f64,
    width: f64,
    bins: Vec<u64>,
    count: u64,
    sum: f64,
    sum_sq: f64,
    min: f64,
    max: f64,
    /// Values that were NaN or infinite (not counted anywhere else).
    pub non_finite: u64,
}

/// A plotted bin: its range and count.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Bin {
    /// Lower edge.
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Values in `[lo, hi)`.
    pub count: u64,
}

/// What a [`Histogram`] reports.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    /// Finite values.
    pub count: u64,
    /// Their mean.
    pub mean: f64,
    /// Their standard deviation.
    pub sd: f64,
    /// Smallest.
    pub min: f64,
    /// 5% quantile (to the histogram's resolution).
    pub q05: f64,
    /// Median (to the histogram's resolution).
    pub median: f64,
    /// 95% quantile.
    pub q95: f64,
    /// Largest.
    pub max: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram; its range is set by the first values.
    pub fn new() -> Self {
        Histogram {
            lo: 0.0,
            width: 0.0,
            bins: vec![0; BINS],
            count: 0,
            sum: 0.0,
            sum_sq: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            non_finite: 0,
        }
    }

    /// A histogram over the fixed range `[lo, hi]` (values outside still widen it).
    pub fn with_range(lo: f64, hi: f64) -> Self {
        let mut h = Histogram::new();
        h.lo = lo;
        h.width = (hi - lo) / BINS as f64;
        h
    }

    fn hi(&self) -> f64 {
        self.lo + self.width * BINS as f64
    }

    /// Widens the range (doubling, merging pairs of bins) until it holds `[min, max]`.
    fn cover(&mut self, min: f64, max: f64) {
        if self.width == 0.0 {
            let span = (max - min).max(max.abs().max(min.abs()) * 1e-6).max(1e-12);
            self.lo = min;
            // A little headroom so the largest value falls inside the last bin.
            self.width = span * (1.0 + 1e-9) / BINS as f64;
        }
        while max >= self.hi() {
            for i in 0..BINS / 2 {
                self.bins[i] = self.bins[2 * i] + self.bins[2 * i + 1];
            }
            self.bins[BINS / 2..].fill(0);
            self.width *= 2.0;
        }
        while min < self.lo {
            for i in (0..BINS / 2).rev() {
                self.bins[BINS / 2 + i] = self.bins[2 * i] + self.bins[2 * i + 1];
            }
            self.bins[..BINS / 2].fill(0);
            self.lo -= self.width * BINS as f64;
            self.width *= 2.0;
        }
    }

    fn bin_of(&self, v: f64) -> usize {
        (((v - self.lo) / self.width) as usize).min(BINS - 1)
    }

    /// Adds a batch of values (NaN and infinities are only counted in `non_finite`).
    pub fn add(&mut self, values: &[f32]) {
        struct Part {
            n: u64,
            bad: u64,
            sum: f64,
            sum_sq: f64,
            min: f64,
            max: f64,
        }
        let parts: Vec<Part> = values
            .par_chunks(CHUNK)
            .map(|c| {
                let mut p = Part {
                    n: 0,
                    bad: 0,
                    sum: 0.0,
                    sum_sq: 0.0,
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                };
                for &v in c {
                    if !v.is_finite() {
                        p.bad += 1;
                        continue;
                    }
                    let v = f64::from(v);
                    p.n += 1;
                    p.sum += v;
                    p.sum_sq += v * v;
                    p.min = p.min.min(v);
                    p.max = p.max.max(v);
                }
                p
            })
            .collect();
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for p in &parts {
            self.count += p.n;
            self.non_finite += p.bad;
            self.sum += p.sum;
            self.sum_sq += p.sum_sq;
            lo = lo.min(p.min);
            hi = hi.max(p.max);
        }
        if lo > hi {
            return;
        }
        self.min = self.min.min(lo);
        self.max = self.max.max(hi);
        self.cover(lo, hi);
        for &v in values {
            if v.is_finite() {
                let b = self.bin_of(f64::from(v));
                self.bins[b] += 1;
            }
        }
    }

    /// Finite values seen.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value below which a fraction `q` of the values lie (linear within a bin, clamped to
    /// the true minimum and maximum); NaN when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        let target = q.clamp(0.0, 1.0) * self.count as f64;
        let mut below = 0.0;
        for (i, &c) in self.bins.iter().enumerate() {
            let c = c as f64;
            if c > 0.0 && below + c >= target {
                let x = self.lo + self.width * (i as f64 + (target - below) / c);
                return x.clamp(self.min, self.max);
            }
            below += c;
        }
        self.max
    }

    /// Values at or above `t` (linear within the bin holding `t`).
    pub fn count_at_least(&self, t: f64) -> f64 {
        if self.count == 0 || t > self.max {
            return 0.0;
        }
        if t <= self.min {
            return self.count as f64;
        }
        let pos = (t - self.lo) / self.width;
        let b = (pos as usize).min(BINS - 1);
        let above: u64 = self.bins[b + 1..].iter().sum();
        above as f64 + self.bins[b] as f64 * (1.0 - (pos - b as f64)).clamp(0.0, 1.0)
    }

    /// Values strictly below `t` (linear within the bin holding `t`).
    pub fn count_below(&self, t: f64) -> f64 {
        self.count as f64 - self.count_at_least(t)
    }

    /// The mean.
    pub fn mean(&self) -> f64 {
        self.sum / self.count.max(1) as f64
    }

    /// Count, moments and quantiles.
    pub fn summary(&self) -> Summary {
        let n = self.count.max(1) as f64;
        let mean = self.sum / n;
        Summary {
            count: self.count,
            mean,
            sd: (self.sum_sq / n - mean * mean).max(0.0).sqrt(),
            min: self.min,
            q05: self.quantile(0.05),
            median: self.quantile(0.5),
            q95: self.quantile(0.95),
            max: self.max,
        }
    }

    /// `n` equal bins from the minimum to the maximum, for a plot.
    pub fn coarse(&self, n: usize) -> Vec<Bin> {
        self.coarse_in(self.min, self.max.max(self.min + 1e-12), n)
    }

    /// `n` equal bins over `[lo, hi]` (values outside fall in the end bins), for a plot.
    pub fn coarse_in(&self, lo: f64, hi: f64, n: usize) -> Vec<Bin> {
        if self.count == 0 || n == 0 {
            return Vec::new();
        }
        let step = (hi - lo) / n as f64;
        let mut out: Vec<Bin> = (0..n)
            .map(|i| Bin {
                lo: lo + step * i as f64,
                hi: lo + step * (i + 1) as f64,
                count: 0,
            })
            .collect();
        for (i, &c) in self.bins.iter().enumerate() {
            if c > 0 {
                let centre = self.lo + self.width * (i as f64 + 0.5);
                let k = (((centre - lo) / step).max(0.0) as usize).min(n - 1);
                out[k].count += c;
            }
        }
        out
    }
}

/// A histogram of exact values (a small sample), with the same summary.
pub fn histogram_of(values: &[f64]) -> Histogram {
    let mut h = Histogram::new();
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    h.add(&v);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_moments_survive_widening() {
        let mut h = Histogram::new();
        // The first batch sets a narrow range; later ones widen it both ways.
        h.add(&[0.5, 0.6]);
        let rest: Vec<f32> = (0..1000).map(|i| i as f32 / 10.0 - 20.0).collect();
        h.add(&rest);
        h.add(&[f32::NAN]);
        assert_eq!(h.count(), 1002);
        assert_eq!(h.non_finite, 1);
        let s = h.summary();
        assert_eq!(s.min, -20.0);
        assert!((s.max - 79.9).abs() < 1e-5);
        let all: Vec<f64> = rest
            .iter()
            .map(|&v| f64::from(v))
            .chain([0.5f64, 0.6f64.min(0.6)])
            .collect();
        let mean = all.iter().sum::<f64>() / all.len() as f64;
        assert!((s.mean - mean).abs() < 1e-4, "{} vs {mean}", s.mean);
        // Median of -20..80 is about 30; the resolution is 100/2048 times a doubling or two.
        assert!((s.median - 30.0).abs() < 0.5, "{}", s.median);
        let above = h.count_at_least(70.0);
        assert!((above - 100.0).abs() < 3.0, "{above}");
        assert_eq!(h.coarse(10).iter().map(|b| b.count).sum::<u64>(), 1002);
    }

    #[test]
    fn constant_values_have_a_range() {
        let mut h = Histogram::new();
        h.add(&[2.0; 50]);
        let s = h.summary();
        assert_eq!((s.min, s.median, s.max), (2.0, 2.0, 2.0));
        assert_eq!(h.count_at_least(2.0), 50.0);
        assert_eq!(h.count_at_least(2.1), 0.0);
    }
}
