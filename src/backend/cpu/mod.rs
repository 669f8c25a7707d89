//! The rayon CPU scorer, the reference for every other backend.
//!
//! Per chunk of [`CHUNK`] pool rows (one rayon task, all scratch in cache): the kernel block
//! `Ks = s2·k(chunk, X)` (popcounts for fingerprints, direct distances for dense features), the
//! mean `Ks·alpha`, and the variance `s2 − rowsum((Ks·Wᵀ)²)` through faer's triangular GEMM,
//! which skips the zero half of `W = L⁻¹`. Chunk boundaries are fixed multiples of `CHUNK`
//! from the start of the tile, so results do not depend on the number of threads.

mod fused;

use faer::linalg::matmul::triangular::{matmul, BlockStructure};
use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;

use super::encode::Packed;
use super::overlap::PopcountSide;
use super::{
    check_dense_range, check_finite_posterior, check_tile_kind, dense_abs_max, score_all_into,
    BestOf, Scored, Scorer, Stages,
};
use crate::acquisition::{score, score_bound, uses_variance};
use crate::data::{FeatureKind, Features};
use crate::error::Result;
use crate::gp::FittedGp;
use crate::kernel::KernelKind;
use crate::select::Floor;

/// Pool rows per rayon task.
pub const CHUNK: usize = 192;

/// Training side of the kernel block.
enum Train {
    /// Tanimoto on bits, or MinMax on bits/counts through their thermometer code.
    Popcount(PopcountSide),
    /// RBF or Matérn 5/2 on dense features.
    Dense {
        dim: usize,
        data: Vec<f32>,
        inv_ls: f32,
        matern: bool,
    },
}

/// The CPU backend prepared for one round.
pub struct CpuScorer {
    train: Train,
    n: usize,
    s2: f32,
    alpha: Vec<f32>,
    /// `Wᵀ`, upper triangular, `n × n`.
    wt: Mat<f32>,
    /// The labeled features' kind; pool tiles must have the same.
    kind: FeatureKind,
    /// The largest magnitude of the labeled dense features, to rule out `f32` overflow.
    train_abs_max: f32,
}

impl CpuScorer {
    /// Prepares the training block, `alpha` and `Wᵀ` from a fitted model.
    pub fn new(gp: &FittedGp) -> Self {
        let n = gp.n_train();
        let train = match &gp.train {
            Features::Dense { dim, data } => Train::Dense {
                dim: *dim,
                data: data.clone(),
                inv_ls: (1.0 / gp.kernel.lengthscale) as f32,
                matern: gp.kernel.kind == KernelKind::Matern52,
            },
            fps => Train::Popcount(PopcountSide::new(fps).expect("fingerprint features")),
        };
        let w = gp.chol_inverse();
        let wt = Mat::<f32>::from_fn(n, n, |j, r| w[(r, j)] as f32);
        CpuScorer {
            train,
            n,
            s2: gp.signal_var as f32,
            alpha: gp.alpha.iter().map(|&a| a as f32).collect(),
            wt,
            kind: gp.train.kind(),
            train_abs_max: dense_abs_max(&gp.train),
        }
    }

    /// Fills `ks` (row-major `rows × n`) with `s2·k(tile rows, X)` for the tile's rows
    /// `start..start + rows`, using `packed` as scratch for encoded fingerprints.
    #[allow(clippy::too_many_arguments)]
    fn kernel_block(
        &self,
        tile: &Features,
        start: usize,
        rows: usize,
        packed: &mut Packed,
        counts: &mut Vec<u8>,
        ks: &mut [f32],
    ) {
        let n = self.n;
        match &self.train {
            Train::Popcount(side) => {
                side.block(tile, start..start + rows, self.s2, packed, counts, ks);
            }
            Train::Dense {
                dim,
                data,
                inv_ls,
                matern,
            } => {
                let Features::Dense { data: pool, .. } = tile else {
                    panic!("dense kernel on non-dense tile");
                };
                for i in 0..rows {
                    let a = &pool[(start + i) * dim..(start + i + 1) * dim];
                    for j in 0..n {
                        let b = &data[j * dim..(j + 1) * dim];
                        let d2: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
                        ks[i * n + j] = self.s2 * dense_kernel(d2, *inv_ls, *matern);
                    }
                }
            }
        }
    }
}

/// RBF or Matérn 5/2 of a squared distance, `f32`.
#[inline]
fn dense_kernel(d2: f32, inv_ls: f32, matern: bool) -> f32 {
    let r2 = d2.max(0.0) * inv_ls * inv_ls;
    if matern {
        let u = 5f32.sqrt() * r2.sqrt();
        (1.0 + u + u * u / 3.0) * (-u).exp()
    } else {
        (-0.5 * r2).exp()
    }
}

impl CpuScorer {
    /// `var[i] = max(s2 − ‖W·ks_i‖², 0)` for the rows of `ks` (row-major, `n` columns), in
    /// parallel chunks. The variance product alone, for benchmarks and tests.
    pub fn variance_from_ks(&self, ks: &[f32], var: &mut [f32]) {
        let n = self.n;
        assert_eq!(ks.len(), var.len() * n);
        var.par_chunks_mut(CHUNK)
            .zip(ks.par_chunks(CHUNK * n))
            .for_each_init(
                || Mat::<f32>::zeros(CHUNK, n),
                |v, (var, ks)| self.variance_rows(ks, v, var),
            );
    }

    /// The variance of up to [`CHUNK`] rows: `V = Ks·Wᵀ` by faer's triangular GEMM into the
    /// scratch `v`, then the row sums of squares.
    fn variance_rows(&self, ks: &[f32], v: &mut Mat<f32>, var: &mut [f32]) {
        let (m, n) = (var.len(), self.n);
        let mut v = v.as_mut().subrows_mut(0, m);
        matmul(
            v.as_mut(),
            BlockStructure::Rectangular,
            Accum::Replace,
            MatRef::from_row_major_slice(ks, m, n),
            BlockStructure::Rectangular,
            self.wt.as_ref(),
            BlockStructure::TriangularUpper,
            1.0,
            Par::Seq,
        );
        var.fill(0.0);
        for r in 0..n {
            for (acc, x) in var.iter_mut().zip(v.as_ref().col(r).iter()) {
                *acc += x * x;
            }
        }
        for x in var.iter_mut() {
            *x = (self.s2 - *x).max(0.0);
        }
    }
}

/// Dot product with 16 independent partial sums (vectorisable, and the same summation order
/// on every call).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..16 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

impl Scorer for CpuScorer {
    fn posterior_into(&self, tile: &Features, mean: &mut [f32], var: &mut [f32]) -> Result<()> {
        check_tile_kind(tile, self.kind)?;
        check_dense_range(tile, self.train_abs_max)?;
        let rows = tile.len();
        assert_eq!(mean.len(), rows);
        assert_eq!(var.len(), rows);
        let n = self.n;
        mean.par_chunks_mut(CHUNK)
            .zip(var.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each_init(
                || {
                    (
                        Packed::default(),
                        Vec::new(),
                        vec![0f32; CHUNK * n],
                        Mat::<f32>::zeros(CHUNK, n),
                    )
                },
                |(packed, counts, ks, v), (c, (mean, var))| {
                    let start = c * CHUNK;
                    let m = mean.len();
                    let ks = &mut ks[..m * n];
                    self.kernel_block(tile, start, m, packed, counts, ks);
                    for (i, out) in mean.iter_mut().enumerate() {
                        *out = dot(&ks[i * n..(i + 1) * n], &self.alpha);
                    }
                    self.variance_rows(ks, v, var);
                },
            );
        check_finite_posterior(0, mean, var)
    }

    fn best_pruned_into(
        &self,
        tile: &Features,
        what: &BestOf,
        floor: &mut Floor,
        out: &mut Vec<Scored>,
    ) -> Result<Option<Stages>> {
        self.pruned_into(tile, what, floor, out).map(Some)
    }

    fn name(&self) -> String {
        "cpu".to_string()
    }
}

impl CpuScorer {
    /// The pruned pass over one tile. First the kernel block and the mean of every row, in
    /// parallel chunks, and from them the bound of each eligible row's score at the prior
    /// variance: the variance computed here is `max(s2 − ‖W·k‖², 0)`, never above `s2` in
    /// `f32` either. Then the rows best bound first, in
    /// waves of one chunk per thread: each wave takes the next rows whose bound reaches the
    /// threshold, recomputes their kernel rows and gets their variance through the same
    /// product, in blocks of the heights brute force used ([`CpuScorer::variance_of`]: a
    /// row's bits do not depend on the other rows of such a block, tested below), and the
    /// exact scores raise the threshold for the next wave. Once the best remaining bound is
    /// below it, the rest of the tile is dropped.
    ///
    /// `greedy` and `random` are their own bound: their survivors are the rows that enter the
    /// threshold's top-k as they come, and get a variance only for the `sd` of the picks.
    fn pruned_into(
        &self,
        tile: &Features,
        what: &BestOf,
        floor: &mut Floor,
        out: &mut Vec<Scored>,
    ) -> Result<Stages> {
        check_tile_kind(tile, self.kind)?;
        check_dense_range(tile, self.train_abs_max)?;
        let rows = tile.len();
        let n = self.n;
        let (acq, ctx) = (what.acq, what.ctx);
        let mut mean = vec![0f32; rows];
        let mut bound = vec![0f32; rows];
        mean.par_chunks_mut(CHUNK)
            .zip(bound.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each_init(
                || (Packed::default(), Vec::new(), vec![0f32; CHUNK * n]),
                |(packed, counts, ks), (c, (mean, bound))| {
                    let start = c * CHUNK;
                    let m = mean.len();
                    let ks = &mut ks[..m * n];
                    self.kernel_block(tile, start, m, packed, counts, ks);
                    for (i, (out, b)) in mean.iter_mut().zip(bound.iter_mut()).enumerate() {
                        *out = dot(&ks[i * n..(i + 1) * n], &self.alpha);
                        let g = (what.start + start + i) as u64;
                        *b = score_bound(acq, *out, self.s2, g, ctx);
                    }
                },
            );
        let skip = what.skipped_in(rows);
        if mean.iter().any(|m| !m.is_finite()) {
            // Brute force, whose error names the row and its posterior; nothing is pruned.
            score_all_into(self, tile, what, out)?;
            let eligible = rows - skip.len();
            return Ok(Stages {
                pruned: false,
                mean: eligible,
                variance: eligible,
            });
        }
        let mut order: Vec<usize> = (0..rows)
            .filter(|&r| skip.binary_search(&(what.start + r)).is_err())
            .collect();
        // Best bound first (a NaN bound, which proves nothing, first of all).
        order.sort_unstable_by(|&a, &b| bound[b].total_cmp(&bound[a]).then(a.cmp(&b)));
        let eligible = order.len();
        let mut exact = 0;
        if !uses_variance(acq) {
            let mut keep = Vec::new();
            for &r in &order {
                if !floor.admits(bound[r]) {
                    break;
                }
                floor.offer(bound[r], what.start + r);
                keep.push(r);
            }
            let var = self.variance_of(tile, &keep);
            exact += keep.len();
            out.extend(keep.iter().zip(&var).map(|(&r, &v)| Scored {
                row: r,
                score: bound[r],
                mean: mean[r],
                var: v,
            }));
        } else {
            let wave = CHUNK * rayon::current_num_threads().max(1);
            let mut next = 0;
            while next < order.len() {
                let end = next
                    + order[next..(next + wave).min(order.len())]
                        .iter()
                        .take_while(|&&r| floor.admits(bound[r]))
                        .count();
                if end == next {
                    break;
                }
                let take = &order[next..end];
                let var = self.variance_of(tile, take);
                for (&r, &v) in take.iter().zip(&var) {
                    let g = what.start + r;
                    let s = score(acq, mean[r], v, g as u64, ctx);
                    floor.offer(s, g);
                    out.push(Scored {
                        row: r,
                        score: s,
                        mean: mean[r],
                        var: v,
                    });
                }
                exact += take.len();
                next = end;
            }
        }
        Ok(Stages {
            pruned: true,
            mean: eligible,
            variance: exact,
        })
    }

    /// The variance of the given rows of `tile`, bit for bit what [`Scorer::posterior_into`]
    /// gives them: their kernel rows again, then the same product in blocks of the same
    /// height brute force used. Rows of full chunks go through full-height blocks of `CHUNK`
    /// rows (zero rows pad the last one); rows of the tile's last, partial chunk through one
    /// block of that chunk's height, each at its own place. faer's product gives a row the
    /// same bits at any place of a block of a given height, but not in every height (a
    /// one-row block differs for some `n`), so the heights are kept.
    fn variance_of(&self, tile: &Features, rows: &[usize]) -> Vec<f32> {
        let n = self.n;
        let tail_start = tile.len() / CHUNK * CHUNK;
        let (full, tail): (Vec<usize>, Vec<usize>) =
            (0..rows.len()).partition(|&i| rows[i] < tail_start);
        let mut var = vec![0f32; rows.len()];
        let full_var: Vec<Vec<f32>> = full
            .par_chunks(CHUNK)
            .map_init(
                || {
                    (
                        Packed::default(),
                        Vec::new(),
                        vec![0f32; CHUNK * n],
                        Mat::<f32>::zeros(CHUNK, n),
                    )
                },
                |(packed, counts, ks, v), which| {
                    let m = which.len();
                    let sub = tile.select_rows(&which.iter().map(|&i| rows[i]).collect::<Vec<_>>());
                    ks.fill(0.0);
                    self.kernel_block(&sub, 0, m, packed, counts, &mut ks[..m * n]);
                    let mut out = vec![0f32; CHUNK];
                    self.variance_rows(ks, v, &mut out);
                    out.truncate(m);
                    out
                },
            )
            .collect();
        for (which, got) in full.chunks(CHUNK).zip(full_var) {
            for (&i, g) in which.iter().zip(got) {
                var[i] = g;
            }
        }
        if !tail.is_empty() {
            let h = tile.len() - tail_start;
            let sub = tile.select_rows(&tail.iter().map(|&i| rows[i]).collect::<Vec<_>>());
            let mut ks_sub = vec![0f32; tail.len() * n];
            self.kernel_block(
                &sub,
                0,
                tail.len(),
                &mut Packed::default(),
                &mut Vec::new(),
                &mut ks_sub,
            );
            let mut ks = vec![0f32; h * n];
            for (k, &i) in tail.iter().enumerate() {
                let at = rows[i] - tail_start;
                ks[at * n..(at + 1) * n].copy_from_slice(&ks_sub[k * n..(k + 1) * n]);
            }
            let mut out = vec![0f32; h];
            self.variance_rows(&ks, &mut Mat::<f32>::zeros(h, n), &mut out);
            for &i in &tail {
                var[i] = out[rows[i] - tail_start];
            }
        }
        var
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acquisition::{AcqContext, Acquisition};
    use crate::gp::{fit, GpParams};

    fn scorer(n: usize, seed: u32) -> CpuScorer {
        let dim = 3;
        let data = (0..n * dim)
            .map(|i| {
                let h = crate::rng::hash32(i as u32 ^ seed.wrapping_mul(0x9e37_79b9));
                (h >> 8) as f32 / 16_777_216.0 * 4.0 - 2.0
            })
            .collect();
        let x = Features::Dense { dim, data };
        let y: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
        let mut p = GpParams::new(KernelKind::Rbf);
        p.signal_var = Some(1.3);
        p.noise = Some(0.05);
        p.lengthscale = Some(0.9);
        CpuScorer::new(&fit(&p.check(x.kind()).unwrap(), &x, &y).unwrap())
    }

    /// A row's variance through faer's product is the same bits in any full-height block
    /// (`CHUNK` rows, zero rows around it, at any position) as in the full chunk brute force
    /// used, and a partial chunk of two rows or more agrees too. A one-row block need not
    /// (for n = 4..6 faer takes another path there, and some rows' last bits differ), so the
    /// pruned path never uses a block height brute force did not (see `variance_of`).
    #[test]
    fn variance_of_a_row_is_the_same_in_any_full_height_block() {
        for n in (1usize..=40).chain([64, 129, 300]) {
            let s = scorer(n, n as u32);
            let ks: Vec<f32> = (0..CHUNK * n)
                .map(|i| (crate::rng::hash32(i as u32 * 7 + 1) >> 8) as f32 / 16_777_216.0)
                .collect();
            let mut v = Mat::<f32>::zeros(CHUNK, n);
            let mut full = vec![0f32; CHUNK];
            s.variance_rows(&ks, &mut v, &mut full);
            for m in 1..=CHUNK {
                let mut part = vec![0f32; m];
                s.variance_rows(&ks[..m * n], &mut v, &mut part);
                let rows: Vec<usize> = (0..m).map(|i| (i * 61 + m * 13) % CHUNK).collect();
                let mut pad: Vec<f32> = rows
                    .iter()
                    .flat_map(|&r| ks[r * n..(r + 1) * n].iter().copied())
                    .collect();
                pad.resize(CHUNK * n, 0.0);
                let mut got = vec![0f32; CHUNK];
                s.variance_rows(&pad, &mut v, &mut got);
                for (i, &r) in rows.iter().enumerate() {
                    assert_eq!(got[i].to_bits(), full[r].to_bits(), "n {n}, m {m}, row {r}");
                }
                if m > 1 {
                    for (p, f) in part.iter().zip(&full) {
                        assert_eq!(p.to_bits(), f.to_bits(), "n {n}, part {m}");
                    }
                }
            }
        }
    }

    /// The pruned pass's variances equal `posterior_into`'s, bit for bit, for tiles whose last
    /// chunk is full, partial or a single row, with every row kept (`keep` = the tile).
    #[test]
    fn pruned_variances_are_brute_force_bits() {
        for n in [1usize, 5, 40] {
            let s = scorer(n, 3);
            for rows in [1usize, 2, CHUNK, CHUNK + 1, 2 * CHUNK + 57] {
                let dim = 3;
                let data = (0..rows * dim)
                    .map(|i| (crate::rng::hash32(i as u32 * 3 + 9) >> 8) as f32 / 4_194_304.0 - 2.0)
                    .collect();
                let tile = Features::Dense { dim, data };
                let (mut mean, mut var) = (vec![0f32; rows], vec![0f32; rows]);
                s.posterior_into(&tile, &mut mean, &mut var).unwrap();
                let ctx = AcqContext {
                    best: 0.0,
                    seed: 1,
                    round: 0,
                };
                for acq in [Acquisition::Ucb { beta: 2.0 }, Acquisition::Greedy] {
                    let what = BestOf {
                        acq,
                        ctx: &ctx,
                        start: 0,
                        keep: rows,
                        skip: &[],
                    };
                    let mut floor = Floor::new(rows);
                    let mut out = Vec::new();
                    let st = s.pruned_into(&tile, &what, &mut floor, &mut out).unwrap();
                    assert_eq!((st.mean, st.variance, out.len()), (rows, rows, rows));
                    for o in &out {
                        assert_eq!(o.mean.to_bits(), mean[o.row].to_bits());
                        assert_eq!(
                            o.var.to_bits(),
                            var[o.row].to_bits(),
                            "n {n} rows {rows} row {}",
                            o.row
                        );
                    }
                }
            }
        }
    }
}
