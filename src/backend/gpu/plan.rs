//! Tiling from the device's limits: how many pool rows one dispatch scores, and how `W = L⁻¹`
//! is split into panels of rows when it does not fit one storage binding. Pure arithmetic, so it
//! is tested without a device.

use std::ops::Range;

use super::shaders::{BLOCK_SIDE, POSTERIOR_ROWS};
use crate::error::{Error, Result};

/// Bytes per `f32`/`u32` element.
const ELEM: u64 = 4;

/// Pool rows per dispatch when nothing smaller is forced, for `n` labeled rows: the kernel
/// block near 256 MiB, between 8,192 and 65,536 rows. The posterior runs one 256-thread
/// workgroup per 64 rows, so 8,192 rows are only 128 workgroups, less than one per SM on a
/// large GPU (an H100 has 132) and no room to hide memory latency; at n = 2,000 this gives
/// 33,536 rows, 524 workgroups. There are two such blocks (one per slot).
pub fn default_rows(n: usize) -> usize {
    const TARGET: usize = 256 << 20;
    let rows = (TARGET / (n.max(1) * ELEM as usize)).clamp(8192, 65_536);
    rows - rows % POSTERIOR_ROWS as usize
}

/// What the plan may use of the device.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Largest storage binding, bytes.
    pub binding: u64,
    /// Largest buffer, bytes.
    pub buffer: u64,
    /// Largest workgroup count in one dimension.
    pub groups: u32,
    /// Cap on the kernel block and on each `W` panel, bytes (at most `binding`); lower it to
    /// force small tiles and many panels.
    pub block: u64,
    /// Cap on pool rows per dispatch.
    pub rows: usize,
}

impl Budget {
    /// Bytes one binding may hold: the smaller of the binding and buffer limits.
    fn per_binding(&self) -> u64 {
        self.binding.min(self.buffer)
    }
}

/// Dispatch sizes for one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Pool rows per dispatch (the capacity of the per-tile buffers).
    pub rows: usize,
    /// Row ranges of `W`; panel `p` is stored row-major with `end` columns.
    pub panels: Vec<Range<usize>>,
}

/// Plans the dispatches for `n` labeled rows whose training side takes `train_row_bytes` per row
/// and whose pool rows take `pool_row_bytes` each when uploaded.
pub fn plan(n: usize, train_row_bytes: u64, pool_row_bytes: u64, budget: &Budget) -> Result<Plan> {
    let binding = budget.per_binding();
    let block = budget.block.min(binding);
    let n64 = n as u64;
    check(
        "training features (one binding)",
        n64 * train_row_bytes,
        binding,
    )?;
    check("labeled rows (alpha, one binding)", n64 * ELEM, binding)?;
    // The kernel block's grid is (n / 16) × (rows / 16) workgroups.
    let by_groups = u64::from(budget.groups) * u64::from(BLOCK_SIDE);
    check("labeled rows (kernel block workgroups)", n64, by_groups)?;

    // Rows per dispatch: the kernel block (rows × n floats) and the pool upload must each fit.
    let by_block = block / (n64 * ELEM).max(1);
    let by_pool = binding / pool_row_bytes.max(1);
    let mut rows = by_block
        .min(by_pool)
        .min(by_groups)
        .min(budget.rows.max(1) as u64) as usize;
    if rows == 0 {
        return Err(Error::LimitExceeded {
            what: format!("kernel block row of {n} labeled points (bytes per storage binding)"),
            requested: n64 * ELEM,
            max: block,
        });
    }
    let step = POSTERIOR_ROWS as usize;
    if rows >= step {
        rows -= rows % step;
    }
    Ok(Plan {
        rows,
        panels: panels(n, block)?,
    })
}

/// Splits the rows of the lower-triangular `n × n` matrix `W` into panels: panel `a..b` keeps
/// columns `0..b` (the rest of its rows are zero), `(b − a)·b` floats, at most `block` bytes.
/// Panels hold whole 64-row tiles of the GEMM where possible.
pub fn panels(n: usize, block: u64) -> Result<Vec<Range<usize>>> {
    let cap = block / ELEM;
    let mut out = Vec::new();
    let mut a = 0usize;
    while a < n {
        // The most rows k with k·(a + k) ≤ cap.
        let fits = |k: usize| (k as u64) * ((a + k) as u64) <= cap;
        if !fits(1) {
            return Err(Error::LimitExceeded {
                what: format!("row {} of W = L^-1 (bytes per storage binding)", a + 1),
                requested: (a as u64 + 1) * ELEM,
                max: block,
            });
        }
        let (mut lo, mut hi) = (1usize, n - a);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let step = POSTERIOR_ROWS as usize;
        let k = if lo < n - a && lo >= step {
            lo - lo % step
        } else {
            lo
        };
        out.push(a..a + k);
        a += k;
    }
    Ok(out)
}

fn check(what: &str, requested: u64, max: u64) -> Result<()> {
    if requested > max {
        return Err(Error::LimitExceeded {
            what: what.to_string(),
            requested,
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rows_fill_a_large_gpu_and_bound_the_block() {
        assert_eq!(default_rows(1), 65_536);
        assert_eq!(default_rows(2000), 33_536);
        assert_eq!(default_rows(8192), 8192);
        assert_eq!(default_rows(100_000), 8192);
        for n in [1, 7, 1000, 2000, 5000, 8192] {
            let rows = default_rows(n);
            assert_eq!(rows % POSTERIOR_ROWS as usize, 0);
            assert!(rows * n * 4 <= (256 << 20) || rows == 8192);
        }
    }

    const MIB: u64 = 1 << 20;

    fn budget(binding: u64) -> Budget {
        Budget {
            binding,
            buffer: 2 * binding,
            groups: 65_535,
            block: binding,
            rows: 8192,
        }
    }

    fn covers(panels: &[Range<usize>], n: usize, block: u64) {
        assert_eq!(panels.first().unwrap().start, 0);
        assert_eq!(panels.last().unwrap().end, n);
        for w in panels.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
        for p in panels {
            assert!(!p.is_empty());
            assert!((p.len() * p.end) as u64 * ELEM <= block, "{p:?}");
        }
    }

    #[test]
    fn n_8192_splits_w_under_the_default_binding() {
        let p = plan(8192, 256, 256, &budget(128 * MIB)).unwrap();
        assert_eq!(p.rows, 4096);
        assert!(p.panels.len() >= 2, "{:?}", p.panels);
        covers(&p.panels, 8192, 128 * MIB);
        assert_eq!(p.panels[0].len() % 64, 0);
    }

    #[test]
    fn small_problems_take_one_panel() {
        let p = plan(2000, 256, 256, &budget(128 * MIB)).unwrap();
        assert_eq!(p.panels, vec![0..2000]);
        assert_eq!(p.rows, 8192);
        let p = plan(1, 8, 8, &budget(128 * MIB)).unwrap();
        assert_eq!(p.panels, vec![0..1]);
    }

    #[test]
    fn tiny_blocks_give_many_panels_and_few_rows() {
        for n in [1, 5, 63, 64, 65, 130, 300] {
            let block = 4096;
            let ps = panels(n, block).unwrap();
            covers(&ps, n, block);
            let p = plan(
                n,
                8,
                8,
                &Budget {
                    block,
                    ..budget(MIB)
                },
            )
            .unwrap();
            assert!(p.rows >= 1 && (p.rows * n) as u64 * 4 <= block);
        }
    }

    #[test]
    fn what_cannot_fit_is_a_typed_error() {
        let e = panels(2000, 4 * 1000).unwrap_err();
        assert!(matches!(e, Error::LimitExceeded { .. }), "{e}");
        let e = plan(100_000, 8, 8, &budget(256 * 1024)).unwrap_err();
        assert!(matches!(e, Error::LimitExceeded { .. }), "{e}");
        let e = plan(10, 1 << 30, 8, &budget(MIB)).unwrap_err();
        assert!(matches!(e, Error::LimitExceeded { .. }), "{e}");
    }
}
