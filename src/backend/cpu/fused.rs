//! The fused variance product: `‖W·k‖²` for a block of candidates, `W = L⁻¹`, without storing
//! `V = W·k` beyond registers, resumable panel by panel so that a prefix of `W`'s rows bounds the
//! variance from above (the pruned pass's staged bounds).
//!
//! `W` is packed once per round into panels of [`LANES`] consecutive rows: panel `p` holds rows
//! `16p..16p + 16` and columns `0..min(16p + 16, n)`, column-major (`16` floats per column), with
//! zeros above the diagonal and below the last row. For a candidate `k` and a panel, lane `l`
//! computes `v = fma(W[16p + l, j], k[j], v)` from `v = 0` for `j` ascending over the panel's
//! columns, then `acc[l] = fma(v, v, acc[l])`; the variance is `max(s2 − treesum(acc), 0)`.
//!
//! That chain is the same on every path (AVX-512F, AVX2 + FMA, portable `f32::mul_add`), in
//! every block of candidates and at any place in it, so a candidate's bits depend on nothing
//! but its kernel row. Every `acc` lane only grows (`fl(v² + a) ≥ a`), so after any prefix of
//! the panels `max(s2 − treesum(acc), 0)` is at least the final variance.

use std::ops::Range;

/// Rows of `W` per panel, and lanes of a candidate's accumulator.
pub const LANES: usize = 16;

/// One candidate's running sums: lane `l` holds `Σ V[r]²` over the processed rows
/// `r ≡ l (mod 16)`. Start from zeros.
pub type Acc = [f32; LANES];

/// Kernel-row floats per block of candidates: the loop runs over panels outside and a block's
/// candidates inside, so one panel (up to `64·n` bytes) is reused by the whole block, and the
/// block's rows (192 KB) and a panel stay in a 512 KB L2 together.
const BLOCK_FLOATS: usize = 48 * 1000;

/// Candidates per block for kernel rows of `n`: up to 48, at least 12 (a multiple of both
/// steps' widths).
fn block_rows(n: usize) -> usize {
    (BLOCK_FLOATS / n.max(1) / 12 * 12).clamp(12, 48)
}

/// An instruction set the kernel can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// `f32::mul_add` in plain Rust, on any target.
    Portable,
    /// x86-64 AVX2 with FMA: six candidates of two `ymm` each per step.
    Avx2,
    /// x86-64 AVX-512F: twelve candidates of one `zmm` each per step.
    Avx512,
}

impl Isa {
    /// The fastest set this CPU has, detected at run time.
    pub fn best() -> Isa {
        if Isa::Avx512.is_available() {
            Isa::Avx512
        } else if Isa::Avx2.is_available() {
            Isa::Avx2
        } else {
            Isa::Portable
        }
    }

    /// True when this CPU runs the set.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// `W = L⁻¹` packed into panels of [`LANES`] rows (see the module doc).
#[derive(Clone, Debug)]
pub struct PackedW {
    n: usize,
    data: Vec<f32>,
    /// Where each panel starts in `data`, then `data.len()`.
    starts: Vec<usize>,
}

impl PackedW {
    /// Packs the lower triangle of the `n × n` matrix whose entry at row `r`, column `j` is
    /// `w(r, j)` (only `j ≤ r` is read).
    pub fn new(n: usize, w: impl Fn(usize, usize) -> f32) -> Self {
        let panels = n.div_ceil(LANES);
        let mut starts = Vec::with_capacity(panels + 1);
        let mut data = Vec::new();
        for p in 0..panels {
            starts.push(data.len());
            for j in 0..panel_cols(n, p) {
                data.extend((0..LANES).map(|l| {
                    let r = p * LANES + l;
                    if r < n && j <= r {
                        w(r, j)
                    } else {
                        0.0
                    }
                }));
            }
        }
        starts.push(data.len());
        PackedW { n, data, starts }
    }

    /// The number of panels, `⌈n / 16⌉`.
    pub fn panels(&self) -> usize {
        self.starts.len() - 1
    }

    /// Adds panels `panels` of `‖W·k‖²` into `acc` for every candidate: `ks` holds their kernel
    /// rows (row-major, `n` columns), `acc` one accumulator each. Panels must be given in
    /// ascending order over successive calls (`0..p` then `p..P` gives the bits of `0..P`).
    /// Runs on [`Isa::best`].
    pub fn accumulate(&self, ks: &[f32], acc: &mut [Acc], panels: Range<usize>) {
        self.accumulate_on(Isa::best(), ks, acc, panels);
    }

    /// As [`PackedW::accumulate`] on a given instruction set, which must be available
    /// ([`Isa::is_available`]); every set gives the same bits.
    pub fn accumulate_on(&self, isa: Isa, ks: &[f32], acc: &mut [Acc], panels: Range<usize>) {
        let n = self.n;
        assert!(isa.is_available(), "{isa:?} is not available on this CPU");
        assert_eq!(
            ks.len(),
            acc.len() * n,
            "one kernel row of {n} per accumulator"
        );
        assert!(
            panels.end <= self.panels(),
            "panels {panels:?} of {}",
            self.panels()
        );
        if acc.is_empty() || panels.is_empty() {
            return;
        }
        let block = block_rows(n);
        for (ks, acc) in ks.chunks(block * n).zip(acc.chunks_mut(block)) {
            for p in panels.clone() {
                let w = &self.data[self.starts[p]..self.starts[p + 1]];
                let cols = panel_cols(n, p);
                match isa {
                    Isa::Portable => portable::panel(w, cols, ks, n, acc),
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU has AVX2 and FMA (asserted above).
                    Isa::Avx2 => unsafe { x86::panel_avx2(w, cols, ks, n, acc) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU has AVX-512F (asserted above).
                    Isa::Avx512 => unsafe { x86::panel_avx512(w, cols, ks, n, acc) },
                    #[cfg(not(target_arch = "x86_64"))]
                    _ => unreachable!("asserted available"),
                }
            }
        }
    }

    /// The variances `max(s2 − ‖W·k‖², 0)` of the candidates of `ks` (row-major, `n` columns),
    /// all panels at once.
    pub fn variances(&self, ks: &[f32], s2: f32, var: &mut [f32]) {
        let mut acc = vec![[0f32; LANES]; var.len()];
        self.accumulate(ks, &mut acc, 0..self.panels());
        for (v, a) in var.iter_mut().zip(&acc) {
            *v = finish(a, s2);
        }
    }
}

/// Columns of panel `p`: rows up to `16p + 15` have no entries right of their diagonal.
fn panel_cols(n: usize, p: usize) -> usize {
    (LANES * (p + 1)).min(n)
}

/// The sum of the lanes by a fixed tree (halves added pairwise: 16 → 8 → 4 → 2 → 1).
#[inline]
pub fn treesum(acc: &Acc) -> f32 {
    let mut s = *acc;
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        let (lo, hi) = s.split_at_mut(w);
        for (a, &b) in lo.iter_mut().zip(&hi[..w]) {
            *a += b;
        }
    }
    s[0]
}

/// `max(s2 − treesum(acc), 0)`: the variance once every panel is in `acc`, and an upper bound
/// of it after any prefix of them.
#[inline]
pub fn finish(acc: &Acc, s2: f32) -> f32 {
    (s2 - treesum(acc)).max(0.0)
}

/// The reference path, plain Rust with one fused multiply-add per step.
mod portable {
    use super::{Acc, LANES};

    /// One panel for every candidate of the block.
    pub(super) fn panel(w: &[f32], cols: usize, ks: &[f32], n: usize, acc: &mut [Acc]) {
        for (k, a) in ks.chunks_exact(n).zip(acc.iter_mut()) {
            let mut v = [0f32; LANES];
            for (wj, &kj) in w.chunks_exact(LANES).zip(&k[..cols]) {
                for (vl, &wl) in v.iter_mut().zip(wj) {
                    *vl = wl.mul_add(kj, *vl);
                }
            }
            for (al, &vl) in a.iter_mut().zip(&v) {
                *al = vl.mul_add(vl, *al);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Acc, LANES};
    use std::arch::x86_64::*;

    /// Candidates per AVX2 step: 12 `ymm` of `v`, two of `W`'s column, one broadcast.
    const MR2: usize = 6;
    /// Candidates per AVX-512 step: 12 `zmm` of `v`, one of `W`'s column, one broadcast.
    const MR5: usize = 12;

    /// The kernel rows and accumulators of one step of `MR` candidates; a block's last step
    /// repeats its last candidate into a scratch accumulator, which changes no row's arithmetic.
    fn step<'a, const MR: usize>(
        ks: &'a [f32],
        n: usize,
        acc: &'a mut [Acc],
        scratch: &'a mut [Acc; MR],
    ) -> ([&'a [f32]; MR], [&'a mut Acc; MR]) {
        let m = acc.len();
        let rows: [&[f32]; MR] = std::array::from_fn(|c| &ks[c.min(m - 1) * n..][..n]);
        let mut real = acc.iter_mut();
        let mut spare = scratch.iter_mut();
        let accs: [&mut Acc; MR] = std::array::from_fn(|c| {
            if c < m {
                real.next().unwrap()
            } else {
                spare.next().unwrap()
            }
        });
        (rows, accs)
    }

    /// One panel for every candidate of the block, AVX2 + FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn panel_avx2(w: &[f32], cols: usize, ks: &[f32], n: usize, acc: &mut [Acc]) {
        assert_eq!(w.len(), cols * LANES);
        assert!(cols <= n);
        let mut scratch = [[0f32; LANES]; MR2];
        for (ks, acc) in ks.chunks(MR2 * n).zip(acc.chunks_mut(MR2)) {
            let (rows, accs) = step::<MR2>(ks, n, acc, &mut scratch);
            let k = rows.map(|r| r.as_ptr());
            let wp = w.as_ptr();
            let mut lo = [_mm256_setzero_ps(); MR2];
            let mut hi = [_mm256_setzero_ps(); MR2];
            for j in 0..cols {
                // SAFETY: `j < cols`, so `16j + 16 ≤ w.len()`.
                let (w0, w1) = unsafe {
                    (
                        _mm256_loadu_ps(wp.add(j * LANES)),
                        _mm256_loadu_ps(wp.add(j * LANES + 8)),
                    )
                };
                for ((kc, l), h) in k.iter().zip(&mut lo).zip(&mut hi) {
                    // SAFETY: `j < cols ≤ n`, each row has `n` floats.
                    let b = _mm256_set1_ps(unsafe { *kc.add(j) });
                    *l = _mm256_fmadd_ps(w0, b, *l);
                    *h = _mm256_fmadd_ps(w1, b, *h);
                }
            }
            for ((a, l), h) in accs.into_iter().zip(lo).zip(hi) {
                let p = a.as_mut_ptr();
                // SAFETY: `a` holds 16 floats.
                unsafe {
                    _mm256_storeu_ps(p, _mm256_fmadd_ps(l, l, _mm256_loadu_ps(p)));
                    _mm256_storeu_ps(p.add(8), _mm256_fmadd_ps(h, h, _mm256_loadu_ps(p.add(8))));
                }
            }
        }
    }

    /// One panel for every candidate of the block, AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) fn panel_avx512(w: &[f32], cols: usize, ks: &[f32], n: usize, acc: &mut [Acc]) {
        assert_eq!(w.len(), cols * LANES);
        assert!(cols <= n);
        let mut scratch = [[0f32; LANES]; MR5];
        for (ks, acc) in ks.chunks(MR5 * n).zip(acc.chunks_mut(MR5)) {
            let (rows, accs) = step::<MR5>(ks, n, acc, &mut scratch);
            let k = rows.map(|r| r.as_ptr());
            let wp = w.as_ptr();
            let mut v = [_mm512_setzero_ps(); MR5];
            for j in 0..cols {
                // SAFETY: `j < cols`, so `16j + 16 ≤ w.len()`.
                let wj = unsafe { _mm512_loadu_ps(wp.add(j * LANES)) };
                for (kc, vc) in k.iter().zip(&mut v) {
                    // SAFETY: `j < cols ≤ n`, each row has `n` floats.
                    let b = _mm512_set1_ps(unsafe { *kc.add(j) });
                    *vc = _mm512_fmadd_ps(wj, b, *vc);
                }
            }
            for (a, vc) in accs.into_iter().zip(v) {
                let p = a.as_mut_ptr();
                // SAFETY: `a` holds 16 floats.
                unsafe { _mm512_storeu_ps(p, _mm512_fmadd_ps(vc, vc, _mm512_loadu_ps(p))) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unit(i: u64, seed: u64) -> f32 {
        let h = crate::rng::hash32((i as u32) ^ (seed as u32).wrapping_mul(0x9e37_79b9));
        (h >> 8) as f32 / 16_777_216.0
    }

    /// A random lower-triangular `W` (entries in [-1, 1)) and `m` kernel rows in [0, 1).
    fn problem(n: usize, m: usize, seed: u64) -> (Vec<f32>, PackedW, Vec<f32>) {
        let w: Vec<f32> = (0..n * n)
            .map(|i| {
                if i % n <= i / n {
                    2.0 * unit(i as u64, seed) - 1.0
                } else {
                    0.0
                }
            })
            .collect();
        let packed = PackedW::new(n, |r, j| w[r * n + j]);
        let ks = (0..m * n).map(|i| unit(i as u64, seed + 1)).collect();
        (w, packed, ks)
    }

    fn run(p: &PackedW, isa: Isa, ks: &[f32], panels: Range<usize>) -> Vec<Acc> {
        let mut acc = vec![[0f32; LANES]; ks.len() / p.n];
        p.accumulate_on(isa, ks, &mut acc, panels);
        acc
    }

    fn bits(acc: &[Acc]) -> Vec<[u32; LANES]> {
        acc.iter().map(|a| a.map(f32::to_bits)).collect()
    }

    const SIZES: [usize; 12] = [1, 2, 5, 15, 16, 17, 31, 32, 33, 47, 100, 129];

    /// Every path this CPU has gives the portable path's bits, lane for lane.
    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let isas: Vec<Isa> = [Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|i| i.is_available())
            .collect();
        eprintln!("instruction sets besides the portable one: {isas:?}");
        for n in SIZES {
            for m in [1usize, 5, 6, 7, 12, 13, 49, 100] {
                let (_, p, ks) = problem(n, m, n as u64 * 31 + m as u64);
                let want = bits(&run(&p, Isa::Portable, &ks, 0..p.panels()));
                for &isa in &isas {
                    assert_eq!(
                        bits(&run(&p, isa, &ks, 0..p.panels())),
                        want,
                        "{isa:?} n {n} m {m}"
                    );
                }
            }
        }
    }

    /// A candidate's accumulator is the same bits alone, in any block, at any place, with any
    /// number of others (tails of the steps and blocks included), on every path.
    #[test]
    fn a_candidate_does_not_depend_on_the_others() {
        for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
            if !isa.is_available() {
                continue;
            }
            for n in [1usize, 7, 16, 33, 100, 2100] {
                let block = block_rows(n);
                let m = 2 * block + 11;
                let (_, p, ks) = problem(n, m, n as u64);
                let all = bits(&run(&p, isa, &ks, 0..p.panels()));
                for i in 0..m {
                    let alone = run(&p, isa, &ks[i * n..(i + 1) * n], 0..p.panels());
                    assert_eq!(bits(&alone)[0], all[i], "{isa:?} n {n} row {i} alone");
                }
                // Shuffled and truncated: row `order[i]` at place `i` of a block of `len`.
                for len in [1usize, 3, 6, 13, block, block + 1, m] {
                    let order: Vec<usize> = (0..len).map(|i| (i * 37 + len) % m).collect();
                    let sub: Vec<f32> = order
                        .iter()
                        .flat_map(|&r| ks[r * n..(r + 1) * n].iter().copied())
                        .collect();
                    let got = bits(&run(&p, isa, &sub, 0..p.panels()));
                    for (i, &r) in order.iter().enumerate() {
                        assert_eq!(got[i], all[r], "{isa:?} n {n} len {len} row {r}");
                    }
                }
            }
        }
    }

    /// The kernel against the exact `f64` value `s2 − ‖W·k‖²`, within the rounding of `n`-term
    /// `f32` sums.
    #[test]
    fn agrees_with_f64() {
        for n in SIZES.into_iter().chain([300]) {
            let m = 9;
            let (w, _, ks) = problem(n, m, 5 + n as u64);
            // Scaled so that ‖W·k‖² is about 1 whatever n.
            let w: Vec<f32> = w.iter().map(|x| x / n as f32).collect();
            let p = PackedW::new(n, |r, j| w[r * n + j]);
            let s2 = 4.0f32;
            let mut var = vec![0f32; m];
            p.variances(&ks, s2, &mut var);
            for (i, (&got, k)) in var.iter().zip(ks.chunks_exact(n)).enumerate() {
                let (mut q, mut mag) = (0f64, 0f64);
                for r in 0..n {
                    let (mut v, mut a) = (0f64, 0f64);
                    for j in 0..=r {
                        v += f64::from(w[r * n + j]) * f64::from(k[j]);
                        a += (f64::from(w[r * n + j]) * f64::from(k[j])).abs();
                    }
                    q += v * v;
                    mag += a * a;
                }
                let exact = (f64::from(s2) - q).max(0.0);
                let tol = 4.0 * (n as f64 + 16.0) * f64::from(f32::EPSILON) * (mag + f64::from(s2));
                assert!(
                    (f64::from(got) - exact).abs() <= tol,
                    "n {n} row {i}: {got} vs {exact} (tol {tol:e})"
                );
            }
        }
    }

    #[test]
    fn treesum_adds_halves_pairwise() {
        let a: Acc = std::array::from_fn(|l| (l + 1) as f32);
        assert_eq!(treesum(&a), 136.0);
        assert_eq!(finish(&a, 200.0), 64.0);
        assert_eq!(finish(&a, 100.0), 0.0);
        // Lanes whose sum depends on the order: the tree, written out, and not left to right.
        let mut b = [2f32.powi(-24); LANES];
        b[0] = 1.0;
        let tree = (((b[0] + b[8]) + (b[4] + b[12])) + ((b[2] + b[10]) + (b[6] + b[14])))
            + (((b[1] + b[9]) + (b[5] + b[13])) + ((b[3] + b[11]) + (b[7] + b[15])));
        assert_eq!(treesum(&b).to_bits(), tree.to_bits());
        assert_ne!(treesum(&b), b.iter().fold(0f32, |s, x| s + x));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Panels `0..p` then `p..P` give the bits of `0..P` in one call, on every path, and
        /// the bound after the prefix is at least the final variance (and each lane only grew).
        #[test]
        fn resuming_gives_the_same_bits_and_a_bound(
            n in 1usize..90,
            m in 1usize..20,
            cut in 0.0f64..=1.0,
            cut2 in 0.0f64..=1.0,
            s2 in prop_oneof![0.0f32..2.0, 10.0f32..1e4],
            seed in any::<u64>(),
        ) {
            let (_, p, ks) = problem(n, m, seed);
            let total = p.panels();
            let a = ((total as f64 * cut) as usize).min(total);
            let b = a + ((total - a) as f64 * cut2) as usize;
            for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
                if !isa.is_available() {
                    continue;
                }
                let whole = run(&p, isa, &ks, 0..total);
                let mut acc = run(&p, isa, &ks, 0..a);
                let first = acc.clone();
                p.accumulate_on(isa, &ks, &mut acc, a..b);
                let second = acc.clone();
                p.accumulate_on(isa, &ks, &mut acc, b..total);
                prop_assert_eq!(bits(&acc), bits(&whole));
                for ((w, f), s) in whole.iter().zip(&first).zip(&second) {
                    let last = finish(w, s2);
                    for partial in [f, s] {
                        prop_assert!(finish(partial, s2) >= last);
                        prop_assert!(partial.iter().zip(w).all(|(x, y)| x <= y));
                    }
                }
            }
        }
    }
}
