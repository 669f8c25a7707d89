//! The GPU scorer: the labeled side, `alpha` and `W = L⁻¹` uploaded once per round, then per
//! chunk of pool rows one submission through the two-slot [`Stream`]: upload the encoded rows,
//! the kernel block into `ks` (which stays on the device), one posterior dispatch per panel of
//! `W`, optionally the acquisition with its per-workgroup top-k, and the read-back (the mean and
//! the variance, or the kept candidates).

use std::ops::Range;
use std::sync::Mutex;
use std::time::Duration;

use super::context::GpuContext;
use super::pipelines::{Pipeline, PipelineKey};
use super::plan::{default_rows, plan, Budget, Plan};
use super::shaders::{
    acquisition_code, key_to_score, PosteriorParams, SelectParams, CANDIDATE_BYTES,
    FLAG_FIRST_PANEL, FLAG_LAST_PANEL, INVOCATIONS, POSTERIOR_ROWS, SELECT_ROWS, WORKGROUP_BYTES,
};
use super::side::{Encoded, KernelBlock, KernelSide, RowScratch};
use super::stream::{Slot, Split, Stream};
use crate::backend::{
    check_dense_range, check_finite_posterior, check_tile_kind, dense_abs_max, score_all_into,
    BestOf, Scored, Scorer,
};
use crate::data::{FeatureKind, Features};
use crate::error::{Error, Result};
use crate::gp::FittedGp;

/// Caps below the device's limits, to bound memory or to exercise the tiling in tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct TileLimits {
    /// Largest pool rows per dispatch; by default the kernel block is sized near 256 MiB,
    /// 8,192 to 65,536 rows (fewer when it would not fit one storage binding).
    pub max_rows: Option<usize>,
    /// Largest kernel block and `W` panel, bytes; default the device's storage binding limit.
    pub max_block_bytes: Option<u64>,
}

/// Host-side scratch, behind a mutex that also serialises calls (the device buffers are shared).
#[derive(Default)]
struct Scratch {
    rows: RowScratch,
    skip: Vec<u32>,
}

/// One slot's device buffers and the bind groups that use them (its read-back buffer is the
/// stream's).
struct Chunk {
    block: KernelBlock,
    mean: wgpu::Buffer,
    var: wgpu::Buffer,
    /// One bit per chunk row: not a candidate.
    skip: wgpu::Buffer,
    /// What the select workgroups keep.
    best: wgpu::Buffer,
    panel_params: Vec<wgpu::Buffer>,
    select_params: wgpu::Buffer,
    posterior_groups: Vec<wgpu::BindGroup>,
    select_group: wgpu::BindGroup,
}

/// The GPU backend prepared for one round.
pub struct GpuScorer {
    ctx: GpuContext,
    n: usize,
    s2: f32,
    inv_ls: f32,
    /// The labeled features' kind; pool tiles must have the same.
    kind: FeatureKind,
    /// The largest magnitude of the labeled dense features, to rule out `f32` overflow.
    train_abs_max: f32,
    /// The labeled rows on the device, and how pool rows are encoded against them.
    side: KernelSide,
    plan: Plan,
    posterior: Pipeline,
    select: Pipeline,
    stream: Stream<Chunk>,
    scratch: Mutex<Scratch>,
}

const F32: u64 = 4;

impl GpuScorer {
    /// Prepares the round on `ctx`: tiles from the device's limits, uploads the training side,
    /// `alpha` and `W = L⁻¹` (in panels), builds (or reuses) the pipelines and bind groups.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] when the labeled set does not fit the device (one labeled row of
    /// the kernel block or of `W`, or the training features, exceed a storage binding);
    /// [`Error::Gpu`] when wgpu reports a failure (out of memory, validation, device lost).
    pub fn new(ctx: &GpuContext, gp: &FittedGp) -> Result<Self> {
        Self::with_limits(ctx, gp, TileLimits::default())
    }

    /// [`GpuScorer::new`] with tighter tiling than the device allows.
    pub fn with_limits(ctx: &GpuContext, gp: &FittedGp, caps: TileLimits) -> Result<Self> {
        let n = gp.n_train();
        let limits = ctx.limits();
        // Below WebGPU's minimum limits, so only a very unusual adapter fails these.
        if limits.max_compute_invocations_per_workgroup < INVOCATIONS {
            return Err(Error::LimitExceeded {
                what: "invocations per workgroup".into(),
                requested: INVOCATIONS.into(),
                max: limits.max_compute_invocations_per_workgroup.into(),
            });
        }
        if limits.max_compute_workgroup_storage_size < WORKGROUP_BYTES {
            return Err(Error::LimitExceeded {
                what: "workgroup memory, bytes".into(),
                requested: WORKGROUP_BYTES.into(),
                max: limits.max_compute_workgroup_storage_size.into(),
            });
        }
        let budget = Budget {
            binding: limits.max_storage_buffer_binding_size,
            buffer: limits.max_buffer_size,
            groups: limits.max_compute_workgroups_per_dimension,
            block: caps
                .max_block_bytes
                .unwrap_or(limits.max_storage_buffer_binding_size),
            rows: caps.max_rows.unwrap_or_else(|| default_rows(n)),
        };
        let train = Encoded::new(&gp.train);
        let row_bytes = train.width() as u64 * F32;
        let plan = plan(n, row_bytes, row_bytes, &budget)?;
        let cap = plan.rows as u64;

        let to_device = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        let from_device = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let uniform = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;

        let side = train.upload(ctx, gp.kernel.kind, "train");
        let posterior = ctx.pipeline(PipelineKey::Posterior);
        let select = ctx.pipeline(PipelineKey::Select);

        let alpha: Vec<f32> = gp.alpha.iter().map(|&a| a as f32).collect();
        let alpha = ctx.upload("poolrank alpha", bytemuck::cast_slice(&alpha));
        let w = gp.chol_inverse();
        let mut w_panels = Vec::with_capacity(plan.panels.len());
        let mut panel = Vec::new();
        for p in &plan.panels {
            // Rows p of W with the columns 0..p.end that can be nonzero.
            panel.clear();
            for r in p.clone() {
                panel.extend((0..p.end).map(|j| w[(r, j)] as f32));
            }
            w_panels.push(ctx.upload(
                &format!("poolrank W rows {}..{}", p.start, p.end),
                bytemuck::cast_slice(&panel),
            ));
        }

        let best_bytes =
            cap.div_ceil(u64::from(SELECT_ROWS)) * u64::from(SELECT_ROWS) * CANDIDATE_BYTES;
        let chunk = |name: &str| {
            let label = |what: &str| format!("poolrank {what} ({name})");
            let block = side.block(ctx, plan.rows, &label);
            let mean = ctx.buffer(&label("mean"), cap * F32, from_device);
            let var = ctx.buffer(&label("variance"), cap * F32, from_device);
            let best = ctx.buffer(&label("best candidates"), best_bytes, from_device);
            let skip = ctx.buffer(&label("skipped rows"), (cap / 32 + 1) * F32, to_device);
            let params_of =
                |what: &str, bytes: usize| ctx.buffer(&label(what), bytes as u64, uniform);
            let select_params = params_of("select params", std::mem::size_of::<SelectParams>());
            let mut panel_params = Vec::with_capacity(plan.panels.len());
            let mut posterior_groups = Vec::with_capacity(plan.panels.len());
            for (p, wbuf) in plan.panels.iter().zip(&w_panels) {
                let rows = format!("{}..{}", p.start, p.end);
                let params = params_of(
                    &format!("posterior params {rows}"),
                    std::mem::size_of::<PosteriorParams>(),
                );
                posterior_groups.push(ctx.bind_group(
                    &posterior,
                    &label(&format!("posterior bind group {rows}")),
                    &[&params, &block.ks, &alpha, wbuf, &mean, &var],
                ));
                panel_params.push(params);
            }
            let select_group = ctx.bind_group(
                &select,
                &label("select bind group"),
                &[&select_params, &mean, &var, &skip, &best],
            );
            Chunk {
                block,
                mean,
                var,
                skip,
                best,
                panel_params,
                select_params,
                posterior_groups,
                select_group,
            }
        };
        let stream = Stream::new(ctx, "poolrank", (2 * cap * F32).max(best_bytes), chunk);
        ctx.check("preparing the GPU scorer")?;
        Ok(GpuScorer {
            ctx: ctx.clone(),
            n,
            s2: gp.signal_var as f32,
            inv_ls: (1.0 / gp.kernel.lengthscale) as f32,
            kind: gp.train.kind(),
            train_abs_max: dense_abs_max(&gp.train),
            side,
            plan,
            posterior,
            select,
            stream,
            scratch: Mutex::new(Scratch::default()),
        })
    }

    /// Pool rows per dispatch.
    pub fn rows_per_dispatch(&self) -> usize {
        self.plan.rows
    }

    /// Number of panels `W` is split into.
    pub fn panels(&self) -> usize {
        self.plan.panels.len()
    }

    /// Records chunk `rows` of a tile whose rows and parameters are already written to
    /// `slot`: the kernel block, the posterior and, with `select`, the acquisition and the
    /// per-workgroup top-k; then the copy to the read-back buffer. Returns the bytes to read.
    fn record(
        &self,
        slot: &Slot<Chunk>,
        rows: usize,
        select: Option<&SelectParams>,
        encoder: &mut wgpu::CommandEncoder,
    ) -> u64 {
        let sl = &slot.buffers;
        let queue = self.ctx.queue();
        let (rows32, n32) = (rows as u32, self.n as u32);
        let last = self.plan.panels.len() - 1;
        for (p, (range, buf)) in self.plan.panels.iter().zip(&sl.panel_params).enumerate() {
            let mut flags = 0;
            if p == 0 {
                flags |= FLAG_FIRST_PANEL;
            }
            if p == last {
                flags |= FLAG_LAST_PANEL;
            }
            let params = PosteriorParams {
                rows: rows32,
                n: n32,
                panel_start: range.start as u32,
                panel_end: range.end as u32,
                flags,
                s2: self.s2,
                ..Default::default()
            };
            queue.write_buffer(buf, 0, bytemuck::bytes_of(&params));
        }
        if let Some(params) = select {
            queue.write_buffer(&sl.select_params, 0, bytemuck::bytes_of(params));
        }

        let groups = rows32.div_ceil(SELECT_ROWS);
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("poolrank posterior pass"),
                timestamp_writes: None,
            });
            self.side.dispatch(&mut pass, &sl.block, rows);
            // wgpu orders the dispatches: each reads what the previous one wrote.
            pass.set_pipeline(&self.posterior.pipeline);
            for group in &sl.posterior_groups {
                pass.set_bind_group(0, group, &[]);
                pass.dispatch_workgroups(rows32.div_ceil(POSTERIOR_ROWS), 1, 1);
            }
            if select.is_some() {
                pass.set_pipeline(&self.select.pipeline);
                pass.set_bind_group(0, &sl.select_group, &[]);
                pass.dispatch_workgroups(groups, 1, 1);
            }
        }
        let bytes = rows as u64 * F32;
        let var_at = self.plan.rows as u64 * F32;
        match select {
            Some(p) => {
                let kept = u64::from(groups) * u64::from(p.keep) * CANDIDATE_BYTES;
                encoder.copy_buffer_to_buffer(&sl.best, 0, &slot.staging, 0, kept);
                kept
            }
            None => {
                encoder.copy_buffer_to_buffer(&sl.mean, 0, &slot.staging, 0, bytes);
                encoder.copy_buffer_to_buffer(&sl.var, 0, &slot.staging, var_at, bytes);
                var_at + bytes
            }
        }
        .max(F32)
    }

    /// Scores `tile` chunk by chunk through the two slots: `prepare` sees each chunk's rows
    /// before it is recorded (it may write the slot's skip mask, with the scratch words given)
    /// and returns the select parameters, if any; `read` gets each chunk's rows and read-back,
    /// in order.
    fn run_chunks(
        &self,
        tile: &Features,
        mut prepare: impl FnMut(&Chunk, Range<usize>, &mut Vec<u32>) -> Option<SelectParams>,
        read: impl FnMut(Range<usize>, &[u8]),
    ) -> Result<Split> {
        self.check_kind(tile)?;
        let mut scratch = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let Scratch {
            rows: encoded,
            skip,
        } = &mut *scratch;
        let record = |slot: &Slot<Chunk>, rows: Range<usize>, encoder: &mut _| {
            let kernel = (self.s2, self.inv_ls);
            let block = &slot.buffers.block;
            self.side
                .write(&self.ctx, block, tile, rows.clone(), kernel, encoded);
            let select = prepare(&slot.buffers, rows.clone(), skip);
            self.record(slot, rows.len(), select.as_ref(), encoder)
        };
        self.stream
            .run("scoring a tile", tile.len(), self.plan.rows, record, read)
    }

    /// An error unless `tile` holds the model's kind of features.
    fn check_kind(&self, tile: &Features) -> Result<()> {
        check_tile_kind(tile, self.kind)?;
        check_dense_range(tile, self.train_abs_max)
    }
}

impl GpuScorer {
    /// [`Scorer::posterior_into`], also returning where its wall-clock time went, summed over
    /// its chunks of [`GpuScorer::rows_per_dispatch`] rows, as `[upload, execute, read-back]`:
    /// - upload: encoding the rows on the CPU, handing them and the dispatch parameters to
    ///   `Queue::write_buffer` (a host-side copy; the transfer to the device happens at
    ///   submission) and recording the commands;
    /// - execute: the host blocked waiting for a chunk's read-back buffer to be mapped (the
    ///   transfer of the rows, the kernel block, the posterior dispatches and the copy to the
    ///   read-back buffer, less what overlapped with encoding the next chunk);
    /// - read-back: copying the mean and variance out of the mapped buffer and unmapping it.
    ///
    /// The parts overlap (the next chunk is encoded while the device runs the current one), so
    /// they add up to the wall time. Host timers around calls that wait for the device anyway,
    /// so this costs nothing measurable; device-side timestamps would need an optional wgpu
    /// feature.
    ///
    /// # Errors
    /// As [`Scorer::posterior_into`].
    pub fn posterior_into_timed(
        &self,
        tile: &Features,
        mean: &mut [f32],
        var: &mut [f32],
    ) -> Result<[Duration; 3]> {
        let total = tile.len();
        assert_eq!(mean.len(), total, "one mean per tile row");
        assert_eq!(var.len(), total, "one variance per tile row");
        let var_at = self.plan.rows;
        self.run_chunks(
            tile,
            |_, _, _| None,
            |rows, back| {
                let all: &[f32] = bytemuck::cast_slice(back);
                let len = rows.len();
                mean[rows.clone()].copy_from_slice(&all[..len]);
                var[rows].copy_from_slice(&all[var_at..var_at + len]);
            },
        )
    }
}

impl Scorer for GpuScorer {
    fn posterior_into(&self, tile: &Features, mean: &mut [f32], var: &mut [f32]) -> Result<()> {
        self.posterior_into_timed(tile, mean, var)?;
        check_finite_posterior(0, mean, var)
    }

    /// On the device: the acquisition and a top-`keep` per 1,024 rows, so only those come
    /// back. More than 1,024 to keep gains nothing there: then the CPU scores every row.
    fn best_into(&self, tile: &Features, what: &BestOf, out: &mut Vec<Scored>) -> Result<()> {
        if what.keep == 0 {
            return Ok(());
        }
        // The select shader keys draws and ties by the global row.
        if what.keep > SELECT_ROWS as usize || what.keys.is_some() {
            return score_all_into(self, tile, what, out);
        }
        let (code, param) = acquisition_code(what.acq);
        let prepare = |chunk: &Chunk, range: Range<usize>, words: &mut Vec<u32>| {
            let (global, rows) = (what.start + range.start, range.len());
            let lo = what.skip.partition_point(|&g| g < global);
            let hi = what.skip.partition_point(|&g| g < global + rows);
            words.clear();
            words.resize(rows / 32 + 1, 0);
            for &g in &what.skip[lo..hi] {
                let r = g - global;
                words[r / 32] |= 1 << (r % 32);
            }
            self.ctx
                .queue()
                .write_buffer(&chunk.skip, 0, bytemuck::cast_slice(words));
            Some(SelectParams {
                rows: rows as u32,
                keep: what.keep.min(rows) as u32,
                acq: code,
                round: what.ctx.round,
                seed_lo: what.ctx.seed as u32,
                seed_hi: (what.ctx.seed >> 32) as u32,
                start_lo: global as u32,
                start_hi: (global as u64 >> 32) as u32,
                param,
                best: what.ctx.best,
                ..Default::default()
            })
        };
        let first_kept = out.len();
        // The select shader's candidates: `[key, row, mean bits, variance bits]` each.
        let read = |rows: Range<usize>, back: &[u8]| {
            let kept: &[[u32; 4]] = bytemuck::cast_slice(back);
            out.extend(kept.iter().filter(|c| c[1] != u32::MAX).map(|c| Scored {
                row: rows.start + c[1] as usize,
                score: key_to_score(c[0]),
                mean: f32::from_bits(c[2]),
                var: f32::from_bits(c[3]),
            }));
        };
        self.run_chunks(tile, prepare, read)?;
        // Only the kept rows come back; a non-finite one among them is as telling as any.
        match out[first_kept..]
            .iter()
            .find(|s| !(s.mean.is_finite() && s.var.is_finite()))
        {
            Some(s) => check_finite_posterior(s.row, &[s.mean], &[s.var]),
            None => Ok(()),
        }
    }

    fn name(&self) -> String {
        format!("gpu ({})", self.ctx.adapter().name)
    }
}
