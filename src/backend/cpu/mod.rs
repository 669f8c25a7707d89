//! The rayon CPU scorer, the reference for every other backend.
//!
//! Per chunk of [`CHUNK`] pool rows (one rayon task, all scratch in cache): the kernel block
//! `Ks = s2·k(chunk, X)` (popcounts for fingerprints, direct distances for dense features), the
//! mean `Ks·alpha`, and the variance `s2 − ‖W·k‖²` through the fused kernel of [`fused`], which
//! skips the zero half of `W = L⁻¹` and gives each row the same bits whatever the other rows
//! of its block, so results depend neither on the number of threads nor on the chunking.

pub mod fused;
pub mod shared;

use rayon::prelude::*;

use fused::{finish, Acc, PackedW, LANES};

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
    /// `W = L⁻¹` in the fused kernel's panels.
    w: PackedW,
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
        let w = PackedW::new(n, |r, j| w[(r, j)] as f32);
        CpuScorer {
            train,
            n,
            s2: gp.signal_var as f32,
            alpha: gp.alpha.iter().map(|&a| a as f32).collect(),
            w,
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
            .for_each(|(var, ks)| self.w.variances(ks, self.s2, var));
    }
}

impl CpuScorer {
    /// In parallel chunks of [`CHUNK`] rows of `tile`: the kernel block and the mean of each
    /// row into `mean`, then `then(start, ks, mean, side)` with the chunk's first tile row, its
    /// kernel block (row-major, `n` columns), its means and its rows of `side` (one entry per
    /// tile row, whatever the caller computes from the block: variances, bounds, nothing).
    fn block_and_mean<T: Send>(
        &self,
        tile: &Features,
        mean: &mut [f32],
        side: &mut [T],
        then: impl Fn(usize, &[f32], &[f32], &mut [T]) + Sync,
    ) {
        let n = self.n;
        assert_eq!(mean.len(), tile.len());
        assert_eq!(side.len(), tile.len());
        mean.par_chunks_mut(CHUNK)
            .zip(side.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each_init(
                || (Packed::default(), Vec::new(), vec![0f32; CHUNK * n]),
                |(packed, counts, ks), (c, (mean, side))| {
                    let start = c * CHUNK;
                    let m = mean.len();
                    let ks = &mut ks[..m * n];
                    self.kernel_block(tile, start, m, packed, counts, ks);
                    for (i, out) in mean.iter_mut().enumerate() {
                        *out = dot(&ks[i * n..(i + 1) * n], &self.alpha);
                    }
                    then(start, ks, mean, side);
                },
            );
    }
}

impl CpuScorer {
    /// Hands `then` the first row of each chunk of [`CHUNK`] rows of `tile`, its kernel block
    /// `s2·k(chunk, X)` (row-major, `n` columns) and the chunk's rows of `out` (`width` values
    /// per row), chunks in parallel. For callers that need more from the block than the
    /// posterior (the pathwise samples of [`crate::select::pathwise`]).
    ///
    /// # Errors
    /// A tile of another kind than the model's, or dense values that would overflow `f32`.
    pub fn kernel_chunks<T: Send>(
        &self,
        tile: &Features,
        out: &mut [T],
        width: usize,
        then: impl Fn(usize, &[f32], &mut [T]) + Sync,
    ) -> Result<()> {
        check_tile_kind(tile, self.kind)?;
        check_dense_range(tile, self.train_abs_max)?;
        let n = self.n;
        assert_eq!(out.len(), tile.len() * width);
        out.par_chunks_mut((CHUNK * width).max(1))
            .enumerate()
            .for_each_init(
                || (Packed::default(), Vec::new(), vec![0f32; CHUNK * n]),
                |(packed, counts, ks), (c, out)| {
                    let start = c * CHUNK;
                    let m = out.len() / width.max(1);
                    let ks = &mut ks[..m * n];
                    self.kernel_block(tile, start, m, packed, counts, ks);
                    then(start, ks, out);
                },
            );
        Ok(())
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
        assert_eq!(var.len(), tile.len());
        self.block_and_mean(tile, mean, var, |_, ks, _, var| {
            self.w.variances(ks, self.s2, var)
        });
        check_finite_posterior(0, mean, var)
    }

    fn mean_into(&self, tile: &Features, mean: &mut [f32]) -> Result<()> {
        check_tile_kind(tile, self.kind)?;
        check_dense_range(tile, self.train_abs_max)?;
        self.block_and_mean(tile, mean, &mut vec![(); tile.len()], |_, _, _, _| {});
        check_finite_posterior(0, mean, &vec![0.0; mean.len()])
    }

    fn best_pruned_into(
        &self,
        tile: &Features,
        what: &BestOf,
        floor: &mut Floor,
        out: &mut Vec<Scored>,
    ) -> Result<Option<Stages>> {
        let mut mean = vec![0f32; tile.len()];
        self.pruned_into(tile, what, floor, out, &mut mean)
            .map(Some)
    }

    fn best_pruned_with_mean(
        &self,
        tile: &Features,
        what: &BestOf,
        floor: &mut Floor,
        out: &mut Vec<Scored>,
        mean: &mut [f32],
    ) -> Result<Option<Stages>> {
        self.pruned_into(tile, what, floor, out, mean).map(Some)
    }

    fn name(&self) -> String {
        "cpu".to_string()
    }
}

impl CpuScorer {
    /// The pruned pass over one tile. First the kernel block and the mean of every row, in
    /// parallel chunks, and from them the bound of each eligible row's score at the prior
    /// variance: the variance computed here is `max(s2 − ‖W·k‖², 0)`, never above `s2` in
    /// `f32` either. Then the rows best bound first, in waves of one chunk per thread: each
    /// wave takes the next rows whose bound reaches the threshold and recomputes their kernel
    /// rows; the fused kernel then runs over `W`'s panels in stages ([`stage_ends`]), and after
    /// each stage but the last a row's bound is recomputed at the variance of the rows of `W`
    /// done so far, `max(s2 − Σ V[r]², 0)`, which only falls as rows are added and is never
    /// below the final variance; a row whose bound falls below the threshold gets no further
    /// panels. The rows that reach the end have exactly brute force's bits (the kernel is
    /// resumable and a row's bits do not depend on the other rows), and their exact scores
    /// raise the threshold for the next wave. Once the best remaining bound is below it, the
    /// rest of the tile is dropped.
    ///
    /// `greedy` and `random` are their own bound: their survivors are the rows that enter the
    /// threshold's top-k as they come, and get a variance only for the `sd` of the picks.
    fn pruned_into(
        &self,
        tile: &Features,
        what: &BestOf,
        floor: &mut Floor,
        out: &mut Vec<Scored>,
        mean: &mut [f32],
    ) -> Result<Stages> {
        check_tile_kind(tile, self.kind)?;
        check_dense_range(tile, self.train_abs_max)?;
        let rows = tile.len();
        let (acq, ctx) = (what.acq, what.ctx);
        let mut bound = vec![0f32; rows];
        self.block_and_mean(tile, mean, &mut bound, |start, _, mean, bound| {
            for (i, (&m, b)) in mean.iter().zip(bound.iter_mut()).enumerate() {
                *b = score_bound(acq, m, self.s2, what.key(start + i) as u64, ctx);
            }
        });
        let skip = what.skipped_in(rows);
        if mean.iter().any(|m| !m.is_finite()) {
            // Brute force, whose error names the row and its posterior; nothing is pruned.
            score_all_into(self, tile, what, out)?;
            let eligible = rows - skip.len();
            return Ok(Stages::brute_force(eligible));
        }
        let mut order: Vec<usize> = (0..rows)
            .filter(|&r| skip.binary_search(&(what.start + r)).is_err())
            .collect();
        // Best bound first (a NaN bound, which proves nothing, first of all).
        order.sort_unstable_by(|&a, &b| bound[b].total_cmp(&bound[a]).then(a.cmp(&b)));
        let eligible = order.len();
        let (mut exact, mut partial) = (0, 0);
        if !uses_variance(acq) {
            let mut keep = Vec::new();
            for &r in &order {
                if !floor.admits(bound[r]) {
                    break;
                }
                floor.offer(bound[r], what.key(r));
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
            let ends = stage_ends(self.w.panels());
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
                let seen: &Floor = floor;
                let done: Vec<Vec<(usize, f32)>> = take
                    .par_chunks(CHUNK)
                    .map_init(
                        || (Packed::default(), Vec::new(), Vec::new()),
                        |(packed, counts, ks), which| {
                            self.staged(tile, which, &ends, mean, what, seen, packed, counts, ks)
                        },
                    )
                    .collect();
                for (r, v) in done.into_iter().flatten() {
                    let g = what.key(r);
                    let s = score(acq, mean[r], v, g as u64, ctx);
                    floor.offer(s, g);
                    out.push(Scored {
                        row: r,
                        score: s,
                        mean: mean[r],
                        var: v,
                    });
                    exact += 1;
                }
                if ends.len() > 1 {
                    partial += take.len();
                }
                next = end;
            }
        }
        Ok(Stages {
            pruned: true,
            mean: eligible,
            variance: exact,
            partial,
        })
    }

    /// The staged variance of the given rows of `tile` (one wave's chunk): their kernel rows,
    /// then `W`'s panels up to each of `ends` in turn, dropping after each stage but the last
    /// the rows whose bound at the partial variance `floor` no longer admits. Returns the rows
    /// that reached the end with their variance, brute force's bits.
    #[allow(clippy::too_many_arguments)]
    fn staged(
        &self,
        tile: &Features,
        which: &[usize],
        ends: &[usize],
        mean: &[f32],
        what: &BestOf,
        floor: &Floor,
        packed: &mut Packed,
        counts: &mut Vec<u8>,
        ks: &mut Vec<f32>,
    ) -> Vec<(usize, f32)> {
        let n = self.n;
        let m = which.len();
        ks.resize(m * n, 0.0);
        self.kernel_block(&tile.select_rows(which), 0, m, packed, counts, ks);
        // `alive[i]`: the place in `which` of the row whose kernel row and sums are at `i`.
        let mut alive: Vec<usize> = (0..m).collect();
        let mut acc: Vec<Acc> = vec![[0.0; LANES]; m];
        let mut from = 0;
        for (s, &to) in ends.iter().enumerate() {
            let live = alive.len();
            self.w
                .accumulate(&ks[..live * n], &mut acc[..live], from..to);
            from = to;
            if s + 1 == ends.len() {
                break;
            }
            let mut kept = 0;
            for i in 0..live {
                let r = which[alive[i]];
                let hi = finish(&acc[i], self.s2);
                let g = what.key(r) as u64;
                if floor.admits(score_bound(what.acq, mean[r], hi, g, what.ctx)) {
                    if kept != i {
                        ks.copy_within(i * n..(i + 1) * n, kept * n);
                        acc[kept] = acc[i];
                        alive[kept] = alive[i];
                    }
                    kept += 1;
                }
            }
            alive.truncate(kept);
            if kept == 0 {
                break;
            }
        }
        alive
            .iter()
            .zip(&acc)
            .map(|(&a, acc)| (which[a], finish(acc, self.s2)))
            .collect()
    }

    /// The variance of the given rows of `tile`, bit for bit what [`Scorer::posterior_into`]
    /// gives them: their kernel rows again, then the fused product, in parallel chunks (a
    /// row's bits do not depend on the other rows of its block).
    fn variance_of(&self, tile: &Features, rows: &[usize]) -> Vec<f32> {
        let n = self.n;
        let mut var = vec![0f32; rows.len()];
        var.par_chunks_mut(CHUNK)
            .zip(rows.par_chunks(CHUNK))
            .for_each_init(
                || (Packed::default(), Vec::new(), Vec::new()),
                |(packed, counts, ks), (var, which)| {
                    let m = which.len();
                    ks.resize(m * n, 0.0);
                    self.kernel_block(&tile.select_rows(which), 0, m, packed, counts, ks);
                    self.w.variances(ks, self.s2, var);
                },
            );
        var
    }
}

/// The panel counts after which the pruned pass recomputes bounds, for `W` in `panels` panels:
/// about 1/8, 1/4 and 1/2 of the rows, then all of them (the work up to a stage grows as the
/// square of its rows, so the early stages are cheap). Ascending, distinct, ending at `panels`.
pub(super) fn stage_ends(panels: usize) -> Vec<usize> {
    let mut ends: Vec<usize> = [8, 4, 2]
        .iter()
        .map(|&d| panels.div_ceil(d))
        .filter(|&p| p > 0 && p < panels)
        .collect();
    ends.push(panels);
    ends.dedup();
    ends
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acquisition::{AcqContext, Acquisition};
    use crate::gp::{fit, GpParams};

    fn scorer(n: usize, seed: u32) -> CpuScorer {
        CpuScorer::new(&model(n, seed))
    }

    fn model(n: usize, seed: u32) -> crate::gp::FittedGp {
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
        fit(&p.check(x.kind()).unwrap(), &x, &y).unwrap()
    }

    /// The fused product against faer's triangular GEMM `V = Ks·Wᵀ` (the product this
    /// scorer used before) and row sums of squares: the same variance within `f32` rounding
    /// of `n`-term sums.
    #[test]
    fn fused_variance_agrees_with_faer() {
        use faer::linalg::matmul::triangular::{matmul, BlockStructure};
        use faer::{Accum, Mat, MatRef, Par};
        for n in [1usize, 5, 16, 17, 40, 129, 300] {
            let gp = model(n, n as u32);
            let s = CpuScorer::new(&gp);
            let m = 77;
            let ks: Vec<f32> = (0..m * n)
                .map(|i| (crate::rng::hash32(i as u32 * 7 + 1) >> 8) as f32 / 16_777_216.0)
                .collect();
            let mut var = vec![0f32; m];
            s.variance_from_ks(&ks, &mut var);
            let w = gp.chol_inverse();
            let wt = Mat::<f32>::from_fn(n, n, |j, r| w[(r, j)] as f32);
            let mut v = Mat::<f32>::zeros(m, n);
            matmul(
                v.as_mut(),
                BlockStructure::Rectangular,
                Accum::Replace,
                MatRef::from_row_major_slice(&ks, m, n),
                BlockStructure::Rectangular,
                wt.as_ref(),
                BlockStructure::TriangularUpper,
                1.0,
                Par::Seq,
            );
            for (i, &got) in var.iter().enumerate() {
                let q: f32 = (0..n).map(|r| v[(i, r)] * v[(i, r)]).sum();
                let want = (s.s2 - q).max(0.0);
                let tol = 8.0 * n as f32 * f32::EPSILON * (q + s.s2);
                assert!(
                    (got - want).abs() <= tol,
                    "n {n} row {i}: fused {got} faer {want} (tol {tol:e})"
                );
            }
        }
    }

    #[test]
    fn stages_end_at_every_panel_count() {
        assert_eq!(stage_ends(1), vec![1]);
        assert_eq!(stage_ends(2), vec![1, 2]);
        assert_eq!(stage_ends(3), vec![1, 2, 3]);
        assert_eq!(stage_ends(7), vec![1, 2, 4, 7]);
        assert_eq!(stage_ends(63), vec![8, 16, 32, 63]);
        for p in 1..200 {
            let e = stage_ends(p);
            assert!(e.windows(2).all(|w| w[0] < w[1]) && e[0] > 0 && *e.last().unwrap() == p);
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
                        keys: None,
                    };
                    let mut floor = Floor::new(rows);
                    let mut out = Vec::new();
                    let mut m = vec![0f32; rows];
                    let st = s
                        .pruned_into(&tile, &what, &mut floor, &mut out, &mut m)
                        .unwrap();
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

    /// The staged pruned pass keeps brute force's best `keep`, index for index and bit for
    /// bit, on tiles whose rows come three times each (ties at every threshold), for n = 1,
    /// below 16, 16, not a multiple of 16 and several panels, with skipped rows, on one
    /// thread and three (other waves); and its partial bounds do drop candidates.
    #[test]
    fn staged_pruning_keeps_brute_force_best() {
        use crate::select::TopK;
        let acqs = [
            Acquisition::Greedy,
            Acquisition::Ucb { beta: 2.0 },
            Acquisition::Ucb { beta: -0.5 },
            Acquisition::Ei { xi: 0.0 },
            Acquisition::Pi { xi: 0.1 },
            Acquisition::ThompsonMarginal,
            Acquisition::Variance,
            Acquisition::Random,
        ];
        let (dim, rows, start) = (3, 2 * CHUNK + 57, 1000);
        let distinct = rows.div_ceil(3);
        let base: Vec<f32> = (0..distinct * dim)
            .map(|i| (crate::rng::hash32(i as u32 * 5 + 2) >> 8) as f32 / 4_194_304.0 - 2.0)
            .collect();
        let data = (0..rows)
            .flat_map(|i| {
                let b = (i * 7) % distinct;
                base[b * dim..(b + 1) * dim].to_vec()
            })
            .collect();
        let tile = Features::Dense { dim, data };
        let skip = [start + 3, start + 50, start + rows - 1];
        let ctx = AcqContext {
            best: 0.5,
            seed: 9,
            round: 2,
        };
        let mut dropped_at_a_stage = 0;
        for n in [1usize, 5, 16, 17, 40, 100] {
            let s = scorer(n, 11 + n as u32);
            let (mut mean, mut var) = (vec![0f32; rows], vec![0f32; rows]);
            s.posterior_into(&tile, &mut mean, &mut var).unwrap();
            for acq in acqs {
                for keep in [1usize, 10, 50] {
                    let what = BestOf {
                        acq,
                        ctx: &ctx,
                        start,
                        keep,
                        skip: &skip,
                        keys: None,
                    };
                    let best = |got: &[Scored]| {
                        let mut top = TopK::new(keep);
                        for o in got {
                            top.push(o.score, start + o.row, o.var.to_bits());
                        }
                        top.into_sorted()
                            .iter()
                            .map(|r| (r.index, r.score.to_bits(), r.item))
                            .collect::<Vec<_>>()
                    };
                    let mut all = Vec::new();
                    score_all_into(&s, &tile, &what, &mut all).unwrap();
                    let want = best(&all);
                    for threads in [1, 3] {
                        let pool = rayon::ThreadPoolBuilder::new()
                            .num_threads(threads)
                            .build()
                            .unwrap();
                        let mut floor = Floor::new(keep);
                        let mut out = Vec::new();
                        let mut m = vec![0f32; rows];
                        let st = pool
                            .install(|| s.pruned_into(&tile, &what, &mut floor, &mut out, &mut m))
                            .unwrap();
                        assert_eq!(
                            m.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                            mean.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                        );
                        let case = format!("n {n} {acq:?} keep {keep} threads {threads}");
                        assert_eq!(best(&out), want, "{case}");
                        for o in &out {
                            assert_eq!(o.var.to_bits(), var[o.row].to_bits(), "{case}");
                            assert_eq!(o.mean.to_bits(), mean[o.row].to_bits(), "{case}");
                        }
                        assert_eq!(st.variance, out.len(), "{case}");
                        assert!(st.variance <= st.mean, "{case}");
                        if n <= 16 || !uses_variance(acq) {
                            assert_eq!(st.partial, 0, "{case}");
                        } else {
                            assert!(st.partial >= st.variance, "{case}");
                        }
                        dropped_at_a_stage += st.partial.saturating_sub(st.variance);
                    }
                }
            }
        }
        assert!(dropped_at_a_stage > 0);
    }
}
