//! The GPU scorer: the labeled side, `alpha` and `W = L⁻¹` uploaded once per round, then per
//! chunk of pool rows one submission through the two-slot [`Stream`]: upload the encoded rows,
//! the kernel block into `ks` (which stays on the device), one posterior dispatch per panel of
//! `W`, optionally the acquisition with its per-workgroup top-k, and the read-back (the mean and
//! the variance, or the kept candidates).
//!
//! The pruned pass ([`Scorer::best_pruned_into`]) puts two dispatches between the kernel block
//! and the product with `W`: every row's mean, then the bound of its score at the prior
//! variance, which appends the rows that can still reach the running threshold to a survivors
//! list; the posterior and the select then run over the survivors only, dispatched indirectly
//! with the sizes the bound pass wrote.

use std::cell::Cell;
use std::ops::Range;
use std::sync::Mutex;
use std::time::Duration;

use super::context::GpuContext;
use super::pipelines::{Pipeline, PipelineKey};
use super::plan::{default_rows, plan, Budget, Plan};
use super::shaders::{
    acquisition_code, empty_survey, key_to_score, PosteriorParams, SelectParams, CANDIDATE_BYTES,
    FLAG_FIRST_PANEL, FLAG_LAST_PANEL, FLAG_MEAN, FLAG_NO_VARIANCE, FLAG_SURVIVORS, INVOCATIONS,
    POSTERIOR_ROWS, SELECT_ROWS, SURVEY_POSTERIOR_ARGS, SURVEY_SELECT_ARGS, SURVEY_TOTAL,
    SURVEY_WORDS, SURVIVOR_LANES, WORKGROUP_BYTES,
};
use super::side::{Encoded, KernelBlock, KernelSide, RowScratch};
use super::stream::{Slot, Split, Stream};
use crate::backend::{
    check_dense_range, check_finite_posterior, check_tile_kind, dense_abs_max, score_all_into,
    BestOf, Scored, Scorer, Stages,
};
use crate::data::{FeatureKind, Features};
use crate::error::{Error, Result};
use crate::gp::FittedGp;
use crate::select::Floor;

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
    /// The bound pass's survey: lane counts and indirect dispatch arguments.
    survey: wgpu::Buffer,
    panel_params: Vec<wgpu::Buffer>,
    select_params: wgpu::Buffer,
    /// The pruned pass's mean dispatch (the posterior shader without the product).
    mean_params: wgpu::Buffer,
    posterior_groups: Vec<wgpu::BindGroup>,
    select_group: wgpu::BindGroup,
    mean_group: wgpu::BindGroup,
    bound_group: wgpu::BindGroup,
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
    /// Entries per lane of the survivors list: at most this many rows of a chunk have the
    /// same remainder modulo [`SURVIVOR_LANES`].
    lane_cap: u32,
    posterior: Pipeline,
    select: Pipeline,
    bound: Pipeline,
    stream: Stream<Chunk>,
    scratch: Mutex<Scratch>,
}

const F32: u64 = 4;

/// Bytes of the survey at the head of a pruned chunk's read-back.
const SURVEY_BYTES: u64 = SURVEY_WORDS as u64 * F32;

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
        let bound = ctx.pipeline(PipelineKey::Bound);
        let lane_cap = cap.div_ceil(u64::from(SURVIVOR_LANES));

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
            // The bound pass's survivors, SURVIVOR_LANES lanes of lane_cap rows (only the
            // bind groups hold it).
            let survivors = ctx.buffer(
                &label("survivors"),
                lane_cap * u64::from(SURVIVOR_LANES) * F32,
                wgpu::BufferUsages::STORAGE,
            );
            let survey = ctx.buffer(
                &label("survey"),
                SURVEY_BYTES,
                from_device | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::INDIRECT,
            );
            let params_of =
                |what: &str, bytes: usize| ctx.buffer(&label(what), bytes as u64, uniform);
            let select_params = params_of("select params", std::mem::size_of::<SelectParams>());
            let mean_params = params_of("mean params", std::mem::size_of::<PosteriorParams>());
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
                    &[
                        &params, &block.ks, &alpha, wbuf, &mean, &var, &survivors, &survey,
                    ],
                ));
                panel_params.push(params);
            }
            let select_group = ctx.bind_group(
                &select,
                &label("select bind group"),
                &[
                    &select_params,
                    &mean,
                    &var,
                    &skip,
                    &best,
                    &survivors,
                    &survey,
                ],
            );
            // The product is skipped, so any panel of W does.
            let mean_group = ctx.bind_group(
                &posterior,
                &label("mean bind group"),
                &[
                    &mean_params,
                    &block.ks,
                    &alpha,
                    &w_panels[0],
                    &mean,
                    &var,
                    &survivors,
                    &survey,
                ],
            );
            let bound_group = ctx.bind_group(
                &bound,
                &label("bound bind group"),
                &[&select_params, &mean, &skip, &survivors, &survey],
            );
            Chunk {
                block,
                mean,
                var,
                skip,
                best,
                survey,
                panel_params,
                select_params,
                mean_params,
                posterior_groups,
                select_group,
                mean_group,
                bound_group,
            }
        };
        let staging = (2 * cap * F32).max(SURVEY_BYTES + best_bytes);
        let stream = Stream::new(ctx, "poolrank", staging, chunk);
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
            lane_cap: lane_cap as u32,
            posterior,
            select,
            bound,
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
    ///
    /// With [`FLAG_SURVIVORS`] in `select`'s flags, the pruned pass: the mean and the bound
    /// pass first, then the posterior and the select over the survivors, and the read-back
    /// starts with the survey.
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
        let pruned = select.is_some_and(|p| p.flags & FLAG_SURVIVORS != 0);
        let last = self.plan.panels.len() - 1;
        let params_of = |range: &Range<usize>, flags| PosteriorParams {
            rows: rows32,
            n: n32,
            panel_start: range.start as u32,
            panel_end: range.end as u32,
            flags,
            s2: self.s2,
            lane_cap: self.lane_cap,
            ..Default::default()
        };
        for (p, (range, buf)) in self.plan.panels.iter().zip(&sl.panel_params).enumerate() {
            let mut flags = 0;
            if p == 0 {
                flags |= FLAG_FIRST_PANEL;
                if !pruned {
                    flags |= FLAG_MEAN;
                }
            }
            if p == last {
                flags |= FLAG_LAST_PANEL;
            }
            if pruned {
                flags |= FLAG_SURVIVORS;
            }
            let params = params_of(range, flags);
            queue.write_buffer(buf, 0, bytemuck::bytes_of(&params));
        }
        if pruned {
            let params = params_of(&self.plan.panels[0], FLAG_MEAN | FLAG_NO_VARIANCE);
            queue.write_buffer(&sl.mean_params, 0, bytemuck::bytes_of(&params));
            queue.write_buffer(&sl.survey, 0, bytemuck::cast_slice(&empty_survey()));
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
            if pruned {
                pass.set_bind_group(0, &sl.mean_group, &[]);
                pass.dispatch_workgroups(rows32.div_ceil(POSTERIOR_ROWS), 1, 1);
                pass.set_pipeline(&self.bound.pipeline);
                pass.set_bind_group(0, &sl.bound_group, &[]);
                pass.dispatch_workgroups(rows32.div_ceil(INVOCATIONS), 1, 1);
                pass.set_pipeline(&self.posterior.pipeline);
            }
            let args = |word: u32| u64::from(word) * F32;
            for group in &sl.posterior_groups {
                pass.set_bind_group(0, group, &[]);
                if pruned {
                    pass.dispatch_workgroups_indirect(&sl.survey, args(SURVEY_POSTERIOR_ARGS));
                } else {
                    pass.dispatch_workgroups(rows32.div_ceil(POSTERIOR_ROWS), 1, 1);
                }
            }
            if select.is_some() {
                pass.set_pipeline(&self.select.pipeline);
                pass.set_bind_group(0, &sl.select_group, &[]);
                if pruned {
                    pass.dispatch_workgroups_indirect(&sl.survey, args(SURVEY_SELECT_ARGS));
                } else {
                    pass.dispatch_workgroups(groups, 1, 1);
                }
            }
        }
        let bytes = rows as u64 * F32;
        let var_at = self.plan.rows as u64 * F32;
        match select {
            // The survivors' select dispatch has at most as many workgroups as brute force's:
            // ⌈64 ⌈rows / 64⌉ / 1024⌉ = ⌈rows / 1024⌉.
            Some(p) if pruned => {
                let kept = u64::from(groups) * u64::from(p.keep) * CANDIDATE_BYTES;
                encoder.copy_buffer_to_buffer(&sl.survey, 0, &slot.staging, 0, SURVEY_BYTES);
                encoder.copy_buffer_to_buffer(&sl.best, 0, &slot.staging, SURVEY_BYTES, kept);
                SURVEY_BYTES + kept
            }
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

impl GpuScorer {
    /// Writes the skip mask of chunk `range` of a tile to `chunk` (through the scratch
    /// `words`) and returns the select shader's parameters for it.
    fn select_params(
        &self,
        what: &BestOf,
        chunk: &Chunk,
        range: Range<usize>,
        words: &mut Vec<u32>,
    ) -> SelectParams {
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
        let (code, param) = acquisition_code(what.acq);
        SelectParams {
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
        }
    }
}

/// The select shader's candidates of a chunk starting at tile row `start`, each
/// `[key, row, mean bits, variance bits]`, less the absent ones.
fn candidates(start: usize, back: &[u8]) -> impl Iterator<Item = Scored> + '_ {
    let kept: &[[u32; 4]] = bytemuck::cast_slice(back);
    kept.iter()
        .filter(|c| c[1] != u32::MAX)
        .map(move |c| Scored {
            row: start + c[1] as usize,
            score: key_to_score(c[0]),
            mean: f32::from_bits(c[2]),
            var: f32::from_bits(c[3]),
        })
}

/// Only the kept rows come back; a non-finite one among them is as telling as any.
fn check_kept(kept: &[Scored]) -> Result<()> {
    match kept
        .iter()
        .find(|s| !(s.mean.is_finite() && s.var.is_finite()))
    {
        Some(s) => check_finite_posterior(s.row, &[s.mean], &[s.var]),
        None => Ok(()),
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
        let prepare = |chunk: &Chunk, range: Range<usize>, words: &mut Vec<u32>| {
            Some(self.select_params(what, chunk, range, words))
        };
        let first_kept = out.len();
        let read = |rows: Range<usize>, back: &[u8]| {
            out.extend(candidates(rows.start, back));
        };
        self.run_chunks(tile, prepare, read)?;
        check_kept(&out[first_kept..])
    }

    /// On the device, chunk by chunk: the mean of every row and the bound of its score at the
    /// prior variance (`shaders/bound.wgsl`), then the posterior and the select over the rows
    /// whose bound reaches the threshold only. The threshold is `floor`'s when the chunk is
    /// recorded; each chunk's kept candidates are offered to `floor` as they are read back, so
    /// with two chunks in flight the threshold lags one chunk, still a lower bound of the
    /// `keep`-th best. A survivor's variance has brute force's bits (it takes its brute-force
    /// place in its posterior workgroup), so the kept rows are [`Scorer::best_into`]'s. Keys,
    /// or more than 1,024 to keep, fall back to [`Scorer::best_into`] (`None`).
    fn best_pruned_into(
        &self,
        tile: &Features,
        what: &BestOf,
        floor: &mut Floor,
        out: &mut Vec<Scored>,
    ) -> Result<Option<Stages>> {
        if what.keep == 0 || what.keep > SELECT_ROWS as usize || what.keys.is_some() {
            self.best_into(tile, what, out)?;
            return Ok(None);
        }
        let threshold = Cell::new(floor.threshold());
        let prepare = |chunk: &Chunk, range: Range<usize>, words: &mut Vec<u32>| {
            Some(SelectParams {
                threshold: threshold.get(),
                s2: self.s2,
                flags: FLAG_SURVIVORS,
                lane_cap: self.lane_cap,
                ..self.select_params(what, chunk, range, words)
            })
        };
        let first_kept = out.len();
        let mut survivors = 0;
        let read = |rows: Range<usize>, back: &[u8]| {
            let (survey, kept) = back.split_at(SURVEY_BYTES as usize);
            let survey: &[u32] = bytemuck::cast_slice(survey);
            survivors += survey[SURVEY_TOTAL as usize] as usize;
            // Only the select workgroups that ran wrote candidates.
            let groups = survey[SURVEY_SELECT_ARGS as usize] as usize;
            let keep = what.keep.min(rows.len());
            let kept = &kept[..groups * keep * CANDIDATE_BYTES as usize];
            for s in candidates(rows.start, kept) {
                floor.offer(s.score, what.key(s.row));
                out.push(s);
            }
            threshold.set(floor.threshold());
        };
        self.run_chunks(tile, prepare, read)?;
        check_kept(&out[first_kept..])?;
        Ok(Some(Stages {
            pruned: true,
            mean: tile.len() - what.skipped_in(tile.len()).len(),
            variance: survivors,
            partial: 0,
        }))
    }

    fn name(&self) -> String {
        format!("gpu ({})", self.ctx.adapter().name)
    }
}
