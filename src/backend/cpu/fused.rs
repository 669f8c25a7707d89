//! The fused variance product: `‖W·k‖²` for a block of candidates, `W = L⁻¹`, without forming
//! `V = W·k` (each candidate keeps 16 running lanes per panel of `W`), resumable panel by panel
//! so that a prefix of `W`'s rows bounds the variance from above (the pruned pass's staged
//! bounds).
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
//!
//! # Blocking
//!
//! As in a GEMM, the candidates run in blocks of [`MC`] and `W`'s columns in slices of [`KC`].
//! Per block and slice the block's kernel rows are packed `MR`-interleaved (`MR = 6` on AVX2
//! and the portable path, `12` on AVX-512F: a step's broadcasts for one column are adjacent);
//! then every panel with columns in the slice, in ascending order, runs its slice of `W` for
//! every step of `MR` candidates. A panel's slice (16 KB) stays in L1 across the block's steps
//! and the packed rows (192 KB) in L2 across the panels, so `W` comes from L3 once per block.
//! Between slices a step's `v` (16 floats per candidate and panel) waits in a scratch buffer:
//! storing and reloading it leaves each lane's chain as it is, the bits of one pass over the
//! panel's columns. A panel adds `v²` into `acc` at its last slice, and panels end in ascending
//! order (panel `p` at column `16p + 16`), so `acc` takes the panels in order. While a step
//! runs, the next step's `v` and a share of the next slice of `W` are prefetched.

use std::cell::RefCell;
use std::ops::Range;

thread_local! {
    /// Per thread: a block's packed kernel rows for one slice, and every step's `v` per panel.
    static SCRATCH: RefCell<(Vec<f32>, Vec<Acc>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Rows of `W` per panel, and lanes of a candidate's accumulator.
pub const LANES: usize = 16;

/// One candidate's running sums: lane `l` holds `Σ V[r]²` over the processed rows
/// `r ≡ l (mod 16)`. Start from zeros.
pub type Acc = [f32; LANES];

/// Asks the cache for the line holding `p` (a hint: reads nothing, faults never).
#[inline(always)]
fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints the cache; it reads nothing and cannot fault.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Columns of `W` per slice: a panel's slice (`64·KC` bytes, 16 KB) stays in a 32 KB L1 beside
/// a step's packed kernel rows (`4·MR·KC` bytes).
const KC: usize = 256;

/// Candidates per block: their packed slices (`4·KC` bytes each, 192 KB) stay in a 512 KB L2
/// while every panel's slice of `W` streams past them, so `W` is read from L3 once per block.
/// A multiple of both steps' widths.
const MC: usize = 192;

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
        match isa {
            Isa::Portable => self.blocks::<6>(ks, acc, panels, portable::step::<6>),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX2 and FMA (asserted above).
            Isa::Avx2 => unsafe { x86::blocks_avx2(self, ks, acc, panels) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX-512F (asserted above).
            Isa::Avx512 => unsafe { x86::blocks_avx512(self, ks, acc, panels) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("asserted available"),
        }
    }

    /// The blocked loop around a step of `MR` candidates (see the module doc): per block of
    /// [`MC`] candidates and slice of [`KC`] columns, the block's kernel rows packed
    /// `MR`-interleaved, then every panel that has columns in the slice, in ascending order, for
    /// every step of the block; `step(w, kp, v, first, done)` runs the panel's slice `w` over the
    /// packed rows `kp` from `v` (from zeros when `first`), and adds `v²` into `done` (the step's
    /// real accumulators) at the panel's last slice, or else keeps `v` for the next one.
    #[inline(always)]
    fn blocks<const MR: usize>(
        &self,
        ks: &[f32],
        acc: &mut [Acc],
        panels: Range<usize>,
        step: impl Fn(&[f32], &[f32], &mut [Acc; MR], bool, Option<&mut [Acc]>),
    ) {
        let n = self.n;
        let cols = panel_cols(n, panels.end - 1);
        // Out of the thread-local for the loop, so that it compiles with the caller's features.
        let (mut packed, mut vs) = SCRATCH.take();
        for (ks, acc) in ks.chunks(MC * n).zip(acc.chunks_mut(MC)) {
            let m = acc.len();
            let steps = m.div_ceil(MR);
            packed.resize(steps * MR * KC, 0.0);
            vs.resize(panels.len() * steps * MR, [0.0; LANES]);
            for jc in (0..cols).step_by(KC) {
                let kc = KC.min(cols - jc);
                // Step `s` holds `kc` columns of `MR` floats: its rows `MR·s..`, the block's
                // last one repeated past its end (into `v` only, never into `acc`).
                for (s, dst) in packed.chunks_exact_mut(MR * kc).take(steps).enumerate() {
                    let rows: [&[f32]; MR] =
                        std::array::from_fn(|c| &ks[(s * MR + c).min(m - 1) * n + jc..][..kc]);
                    for (j, d) in dst.chunks_exact_mut(MR).enumerate() {
                        for (d, r) in d.iter_mut().zip(&rows) {
                            *d = r[j];
                        }
                    }
                }
                // Panels before `jc / 16` ended in an earlier slice.
                let first_panel = |jc: usize| panels.start.max(jc / LANES);
                for p in first_panel(jc)..panels.end {
                    let end = panel_cols(n, p).min(jc + kc);
                    let last = end == panel_cols(n, p);
                    let w = &self.data[self.starts[p] + jc * LANES..][..(end - jc) * LANES];
                    // The next slice of `W` the loop runs, fetched a share per step.
                    let next = if p + 1 < panels.end {
                        let e = panel_cols(n, p + 1).min(jc + kc);
                        &self.data[self.starts[p + 1] + jc * LANES..][..(e - jc) * LANES]
                    } else if jc + kc < cols {
                        let (q, j2) = (first_panel(jc + kc), jc + kc);
                        let e = panel_cols(n, q).min(j2 + KC);
                        &self.data[self.starts[q] + j2 * LANES..][..(e - j2) * LANES]
                    } else {
                        &[]
                    };
                    let share = next.len().div_ceil(steps * LANES) * LANES;
                    let v = &mut vs[(p - panels.start) * steps * MR..];
                    for s in 0..steps {
                        if let Some(nv) = v.get((s + 1) * MR..(s + 2) * MR) {
                            nv.iter().for_each(|a| prefetch(a.as_ptr()));
                        }
                        if let Some(nw) = next.get(s * share..) {
                            nw.chunks(LANES)
                                .take(share / LANES)
                                .for_each(|c| prefetch(c.as_ptr()));
                        }
                        let vs: &mut [Acc; MR] = (&mut v[s * MR..][..MR]).try_into().unwrap();
                        let done = last.then(|| &mut acc[s * MR..((s + 1) * MR).min(m)]);
                        step(
                            w,
                            &packed[s * MR * kc..][..MR * (end - jc)],
                            vs,
                            jc == 0,
                            done,
                        );
                    }
                }
            }
        }
        SCRATCH.set((packed, vs));
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

    /// One step of `MR` candidates over a slice of a panel (see [`super::PackedW::blocks`]).
    pub(super) fn step<const MR: usize>(
        w: &[f32],
        kp: &[f32],
        v: &mut [Acc; MR],
        first: bool,
        done: Option<&mut [Acc]>,
    ) {
        if first {
            *v = [[0.0; LANES]; MR];
        }
        for (wj, kj) in w.chunks_exact(LANES).zip(kp.chunks_exact(MR)) {
            for (vc, &k) in v.iter_mut().zip(kj) {
                for (vl, &wl) in vc.iter_mut().zip(wj) {
                    *vl = wl.mul_add(k, *vl);
                }
            }
        }
        if let Some(acc) = done {
            for (a, vc) in acc.iter_mut().zip(v.iter()) {
                for (al, &vl) in a.iter_mut().zip(vc) {
                    *al = vl.mul_add(vl, *al);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Acc, PackedW, LANES};
    use std::arch::x86_64::*;
    use std::ops::Range;

    /// Candidates per AVX2 step: 12 `ymm` of `v`, two of `W`'s column, one broadcast.
    pub(super) const MR2: usize = 6;
    /// Candidates per AVX-512 step: 12 `zmm` of `v`, one of `W`'s column, one broadcast.
    pub(super) const MR5: usize = 12;

    /// [`PackedW::blocks`] with AVX2 + FMA steps, compiled as one function for those features.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn blocks_avx2(w: &PackedW, ks: &[f32], acc: &mut [Acc], panels: Range<usize>) {
        w.blocks::<MR2>(ks, acc, panels, |w, kp, v, first, done| {
            step_avx2(w, kp, v, first, done)
        });
    }

    /// [`PackedW::blocks`] with AVX-512F steps, compiled as one function for that feature.
    #[target_feature(enable = "avx512f")]
    pub(super) fn blocks_avx512(w: &PackedW, ks: &[f32], acc: &mut [Acc], panels: Range<usize>) {
        w.blocks::<MR5>(ks, acc, panels, |w, kp, v, first, done| {
            step_avx512(w, kp, v, first, done)
        });
    }

    /// One step of six candidates over a slice of a panel (see [`super::PackedW::blocks`]),
    /// AVX2 + FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn step_avx2(
        w: &[f32],
        kp: &[f32],
        v: &mut [Acc; MR2],
        first: bool,
        done: Option<&mut [Acc]>,
    ) {
        let len = w.len() / LANES;
        assert_eq!(w.len(), len * LANES);
        assert_eq!(kp.len(), len * MR2);
        let mut lo = [_mm256_setzero_ps(); MR2];
        let mut hi = [_mm256_setzero_ps(); MR2];
        if !first {
            for ((l, h), vc) in lo.iter_mut().zip(&mut hi).zip(v.iter()) {
                // SAFETY: `vc` holds 16 floats.
                unsafe {
                    *l = _mm256_loadu_ps(vc.as_ptr());
                    *h = _mm256_loadu_ps(vc.as_ptr().add(8));
                }
            }
        }
        let (wp, kq) = (w.as_ptr(), kp.as_ptr());
        for j in 0..len {
            // SAFETY: `j < len`, so `16j + 16 ≤ w.len()` and `6j + 6 ≤ kp.len()`.
            unsafe {
                let w0 = _mm256_loadu_ps(wp.add(j * LANES));
                let w1 = _mm256_loadu_ps(wp.add(j * LANES + 8));
                for (c, (l, h)) in lo.iter_mut().zip(&mut hi).enumerate() {
                    let b = _mm256_broadcast_ss(&*kq.add(j * MR2 + c));
                    *l = _mm256_fmadd_ps(w0, b, *l);
                    *h = _mm256_fmadd_ps(w1, b, *h);
                }
            }
        }
        match done {
            Some(acc) => {
                for ((a, l), h) in acc.iter_mut().zip(lo).zip(hi) {
                    let p = a.as_mut_ptr();
                    // SAFETY: `a` holds 16 floats.
                    unsafe {
                        _mm256_storeu_ps(p, _mm256_fmadd_ps(l, l, _mm256_loadu_ps(p)));
                        let h2 = _mm256_fmadd_ps(h, h, _mm256_loadu_ps(p.add(8)));
                        _mm256_storeu_ps(p.add(8), h2);
                    }
                }
            }
            None => {
                for ((vc, l), h) in v.iter_mut().zip(lo).zip(hi) {
                    // SAFETY: `vc` holds 16 floats.
                    unsafe {
                        _mm256_storeu_ps(vc.as_mut_ptr(), l);
                        _mm256_storeu_ps(vc.as_mut_ptr().add(8), h);
                    }
                }
            }
        }
    }

    /// One step of twelve candidates over a slice of a panel (see
    /// [`super::PackedW::blocks`]), AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) fn step_avx512(
        w: &[f32],
        kp: &[f32],
        v: &mut [Acc; MR5],
        first: bool,
        done: Option<&mut [Acc]>,
    ) {
        let len = w.len() / LANES;
        assert_eq!(w.len(), len * LANES);
        assert_eq!(kp.len(), len * MR5);
        let mut r = [_mm512_setzero_ps(); MR5];
        if !first {
            for (rc, vc) in r.iter_mut().zip(v.iter()) {
                // SAFETY: `vc` holds 16 floats.
                *rc = unsafe { _mm512_loadu_ps(vc.as_ptr()) };
            }
        }
        let (wp, kq) = (w.as_ptr(), kp.as_ptr());
        for j in 0..len {
            // SAFETY: `j < len`, so `16j + 16 ≤ w.len()` and `12j + 12 ≤ kp.len()`.
            unsafe {
                let wj = _mm512_loadu_ps(wp.add(j * LANES));
                for (c, rc) in r.iter_mut().enumerate() {
                    let b = _mm512_set1_ps(*kq.add(j * MR5 + c));
                    *rc = _mm512_fmadd_ps(wj, b, *rc);
                }
            }
        }
        match done {
            Some(acc) => {
                for (a, rc) in acc.iter_mut().zip(r) {
                    let p = a.as_mut_ptr();
                    // SAFETY: `a` holds 16 floats.
                    unsafe { _mm512_storeu_ps(p, _mm512_fmadd_ps(rc, rc, _mm512_loadu_ps(p))) };
                }
            }
            None => {
                for (vc, rc) in v.iter_mut().zip(r) {
                    // SAFETY: `vc` holds 16 floats.
                    unsafe { _mm512_storeu_ps(vc.as_mut_ptr(), rc) };
                }
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
            // Two blocks and a tail below one slice and across two; at 2,100 (nine slices)
            // the tails of the steps only, to keep the portable path's time short.
            for n in [1usize, 7, 16, 33, 100, 300, 2100] {
                let block = MC;
                let m = if n < 1000 { 2 * block + 11 } else { 13 };
                let (_, p, ks) = problem(n, m, n as u64);
                let all = bits(&run(&p, isa, &ks, 0..p.panels()));
                for i in 0..m {
                    let alone = run(&p, isa, &ks[i * n..(i + 1) * n], 0..p.panels());
                    assert_eq!(bits(&alone)[0], all[i], "{isa:?} n {n} row {i} alone");
                }
                // Shuffled and truncated: row `order[i]` at place `i` of a block of `len`.
                for len in [1usize, 3, 6, 13, block, block + 1, m] {
                    if len > m {
                        continue;
                    }
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

    /// The blocked loop at the AVX-512 path's width (twelve candidates per step: its packing,
    /// tails and scratch), run with portable steps, gives the six-wide bits, resumed or not.
    #[test]
    fn twelve_wide_steps_give_the_same_bits() {
        for n in [1usize, 17, 100, 300, 530] {
            for m in [1usize, 11, 12, 13, 25, MC + 13] {
                let (_, p, ks) = problem(n, m, 7 * n as u64 + m as u64);
                let want = bits(&run(&p, Isa::Portable, &ks, 0..p.panels()));
                let mut acc = vec![[0f32; LANES]; m];
                let cut = p.panels() / 3;
                for panels in [0..cut, cut..p.panels()] {
                    if !panels.is_empty() {
                        p.blocks::<12>(&ks, &mut acc, panels, portable::step::<12>);
                    }
                }
                assert_eq!(bits(&acc), want, "n {n} m {m}");
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
