//! The GPU scorer: the training side, `alpha` and `W = L⁻¹` uploaded once per round, then per
//! chunk of pool rows one submission: upload the encoded rows, the kernel block into `ks` (which
//! stays on the device), one posterior dispatch per panel of `W`, optionally the acquisition with
//! its per-workgroup top-k, and the read-back (the mean and the variance, or the kept
//! candidates).
//!
//! The per-chunk buffers come in two slots: while the device scores chunk `c` in one, the host
//! encodes and uploads chunk `c + 1` into the other and submits it, and only then waits for
//! chunk `c`'s read-back, so the device always has the next chunk queued.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use wgpu::util::DeviceExt;

use super::context::{GpuContext, PendingRead};
use super::pipelines::{Pipeline, PipelineKey};
use super::plan::{default_rows, plan, Budget, Plan};
use super::shaders::{
    acquisition_code, key_to_score, KernelParams, PosteriorParams, SelectParams, BLOCK_SIDE,
    CANDIDATE_BYTES, FLAG_FIRST_PANEL, FLAG_LAST_PANEL, INVOCATIONS, POSTERIOR_ROWS, SELECT_ROWS,
    WORKGROUP_BYTES,
};
use crate::backend::encode::{pack_bits_into, LevelCode, Packed};
use crate::backend::{
    check_dense_range, check_finite_posterior, check_tile_kind, dense_abs_max, score_all_into,
    BestOf, Scored, Scorer,
};
use crate::data::{FeatureKind, Features};
use crate::error::{Error, Result};
use crate::gp::FittedGp;
use crate::kernel::KernelKind;

/// Caps below the device's limits, to bound memory or to exercise the tiling in tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct TileLimits {
    /// Largest pool rows per dispatch; by default the kernel block is sized near 256 MiB,
    /// 8,192 to 65,536 rows (fewer when it would not fit one storage binding).
    pub max_rows: Option<usize>,
    /// Largest kernel block and `W` panel, bytes; default the device's storage binding limit.
    pub max_block_bytes: Option<u64>,
}

/// The training side as the shaders read it.
pub(super) enum Train {
    /// Fingerprints: `u32` words (a `u64` word is two, low half first) and norms.
    Popcount {
        /// The thermometer code for count features; `None` for bits.
        code: Option<LevelCode>,
        /// `u32` words per row.
        width: usize,
        words: Vec<u32>,
        norms: Vec<f32>,
    },
    /// Dense `f32` rows.
    Dense { dim: usize },
}

impl Train {
    /// Encodes the labeled rows exactly as the CPU scorer does.
    pub(super) fn encode(train: &Features) -> Self {
        let n = train.len();
        let mut packed = Packed::default();
        let code = match train {
            Features::Dense { dim, .. } => return Train::Dense { dim: *dim },
            Features::Counts { .. } => {
                let code = LevelCode::from_train(train);
                code.encode_into(train, 0..n, &mut packed);
                Some(code)
            }
            Features::Bits { .. } => {
                pack_bits_into(train, 0..n, &mut packed);
                None
            }
        };
        let mut words = Vec::new();
        split_words(&packed.data, &mut words);
        Train::Popcount {
            code,
            width: 2 * packed.words,
            words,
            norms: packed.norms,
        }
    }

    /// Elements (`u32` or `f32`) per row.
    pub(super) fn width(&self) -> usize {
        match self {
            Train::Popcount { width, .. } => *width,
            Train::Dense { dim } => *dim,
        }
    }
}

/// Host-side scratch, behind a mutex that also serialises calls (the device buffers are shared).
#[derive(Default)]
struct Scratch {
    packed: Packed,
    words: Vec<u32>,
    skip: Vec<u32>,
}

/// The per-chunk device buffers and the bind groups that use them.
struct Slot {
    pool: wgpu::Buffer,
    /// Pool norms (fingerprints only).
    pool_norms: Option<wgpu::Buffer>,
    mean: wgpu::Buffer,
    var: wgpu::Buffer,
    /// One bit per chunk row: not a candidate.
    skip: wgpu::Buffer,
    /// What the select workgroups keep.
    best: wgpu::Buffer,
    staging: wgpu::Buffer,
    kernel_params: wgpu::Buffer,
    panel_params: Vec<wgpu::Buffer>,
    select_params: wgpu::Buffer,
    kernel_group: wgpu::BindGroup,
    posterior_groups: Vec<wgpu::BindGroup>,
    select_group: wgpu::BindGroup,
}

/// The training side on the device.
enum TrainBuffers {
    Popcount {
        words: wgpu::Buffer,
        norms: wgpu::Buffer,
    },
    Dense {
        features: wgpu::Buffer,
    },
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
    /// The count code (count fingerprints only).
    code: Option<LevelCode>,
    /// Elements per uploaded pool row.
    width: usize,
    plan: Plan,
    kernel: Pipeline,
    posterior: Pipeline,
    select: Pipeline,
    slots: [Slot; 2],
    scratch: Mutex<Scratch>,
}

/// A chunk submitted and not yet read back.
struct InFlight {
    slot: usize,
    /// First tile row of the chunk.
    first: usize,
    rows: usize,
    /// The select dispatch's `keep`, or `None` for the posterior.
    keep: Option<u32>,
    read_bytes: u64,
    read: PendingRead,
}

const F32: u64 = 4;

/// Splits `u64` words into `u32` words, low half first (the layout the shaders read).
pub(super) fn split_words(words: &[u64], out: &mut Vec<u32>) {
    out.clear();
    out.extend(words.iter().flat_map(|&w| [w as u32, (w >> 32) as u32]));
}

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
        let train = Train::encode(&gp.train);
        let width = train.width();
        let row_bytes = width as u64 * F32;
        let plan = plan(n, row_bytes, row_bytes, &budget)?;
        let cap = plan.rows as u64;

        let device = ctx.device();
        let read = wgpu::BufferUsages::STORAGE;
        let upload = |label: &str, contents: &[u8]| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: read,
            })
        };
        let buffer = |label: &str, bytes: u64, usage: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(F32),
                usage,
                mapped_at_creation: false,
            })
        };
        let to_device = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        let from_device = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let uniform = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;

        let (key, code, train_buffers) = match train {
            Train::Popcount {
                code, words, norms, ..
            } => (
                PipelineKey::Popcount,
                code,
                TrainBuffers::Popcount {
                    words: upload("poolrank train words", bytemuck::cast_slice(&words)),
                    norms: upload("poolrank train norms", bytemuck::cast_slice(&norms)),
                },
            ),
            Train::Dense { .. } => {
                let Features::Dense { data, .. } = &gp.train else {
                    unreachable!("dense encoding comes from dense features");
                };
                let key = PipelineKey::Dense {
                    matern: gp.kernel.kind == KernelKind::Matern52,
                };
                let features = upload("poolrank train features", bytemuck::cast_slice(data));
                (key, None, TrainBuffers::Dense { features })
            }
        };
        let kernel = ctx.pipeline(key);
        let posterior = ctx.pipeline(PipelineKey::Posterior);
        let select = ctx.pipeline(PipelineKey::Select);

        let alpha: Vec<f32> = gp.alpha.iter().map(|&a| a as f32).collect();
        let alpha = upload("poolrank alpha", bytemuck::cast_slice(&alpha));
        let w = gp.chol_inverse();
        let mut w_panels = Vec::with_capacity(plan.panels.len());
        let mut panel = Vec::new();
        for p in &plan.panels {
            // Rows p of W with the columns 0..p.end that can be nonzero.
            panel.clear();
            for r in p.clone() {
                panel.extend((0..p.end).map(|j| w[(r, j)] as f32));
            }
            w_panels.push(upload(
                &format!("poolrank W rows {}..{}", p.start, p.end),
                bytemuck::cast_slice(&panel),
            ));
        }

        let slot = |name: &str| {
            let label = |what: &str| format!("poolrank {what} ({name})");
            let ks = buffer(&label("kernel block"), cap * n as u64 * F32, read);
            let mean = buffer(&label("mean"), cap * F32, from_device);
            let var = buffer(&label("variance"), cap * F32, from_device);
            let best_bytes =
                cap.div_ceil(u64::from(SELECT_ROWS)) * u64::from(SELECT_ROWS) * CANDIDATE_BYTES;
            let best = buffer(&label("best candidates"), best_bytes, from_device);
            let skip = buffer(&label("skipped rows"), (cap / 32 + 1) * F32, to_device);
            let staging = buffer(
                &label("read-back"),
                (2 * cap * F32).max(best_bytes),
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            );
            let params_of = |what: &str, bytes: usize| buffer(&label(what), bytes as u64, uniform);
            let kernel_params = params_of("kernel params", std::mem::size_of::<KernelParams>());
            let select_params = params_of("select params", std::mem::size_of::<SelectParams>());
            let pool = buffer(&label("pool rows"), cap * row_bytes, to_device);
            let (pool_norms, kernel_group) = match &train_buffers {
                TrainBuffers::Popcount { words, norms } => {
                    let pn = buffer(&label("pool norms"), cap * F32, to_device);
                    let group = bind_group(
                        device,
                        &kernel,
                        &label("popcount bind group"),
                        &[&kernel_params, &pool, &pn, words, norms, &ks],
                    );
                    (Some(pn), group)
                }
                TrainBuffers::Dense { features } => {
                    let group = bind_group(
                        device,
                        &kernel,
                        &label("dense bind group"),
                        &[&kernel_params, &pool, features, &ks],
                    );
                    (None, group)
                }
            };
            let mut panel_params = Vec::with_capacity(plan.panels.len());
            let mut posterior_groups = Vec::with_capacity(plan.panels.len());
            for (p, wbuf) in plan.panels.iter().zip(&w_panels) {
                let rows = format!("{}..{}", p.start, p.end);
                let params = params_of(
                    &format!("posterior params {rows}"),
                    std::mem::size_of::<PosteriorParams>(),
                );
                posterior_groups.push(bind_group(
                    device,
                    &posterior,
                    &label(&format!("posterior bind group {rows}")),
                    &[&params, &ks, &alpha, wbuf, &mean, &var],
                ));
                panel_params.push(params);
            }
            let select_group = bind_group(
                device,
                &select,
                &label("select bind group"),
                &[&select_params, &mean, &var, &skip, &best],
            );
            Slot {
                pool,
                pool_norms,
                mean,
                var,
                skip,
                best,
                staging,
                kernel_params,
                panel_params,
                select_params,
                kernel_group,
                posterior_groups,
                select_group,
            }
        };
        let slots = [slot("slot 0"), slot("slot 1")];
        ctx.check("preparing the GPU scorer")?;
        Ok(GpuScorer {
            ctx: ctx.clone(),
            n,
            s2: gp.signal_var as f32,
            inv_ls: (1.0 / gp.kernel.lengthscale) as f32,
            kind: gp.train.kind(),
            train_abs_max: dense_abs_max(&gp.train),
            code,
            width,
            plan,
            kernel,
            posterior,
            select,
            slots,
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

    /// Encodes rows `start..start + rows` of `tile` and writes them to the slot's pool buffers.
    fn upload_rows(
        &self,
        slot: &Slot,
        tile: &Features,
        start: usize,
        rows: usize,
        s: &mut Scratch,
    ) {
        let queue = self.ctx.queue();
        match tile {
            Features::Dense { dim, data } => {
                let part = &data[start * dim..(start + rows) * dim];
                queue.write_buffer(&slot.pool, 0, bytemuck::cast_slice(part));
            }
            _ => {
                match &self.code {
                    Some(code) => code.encode_into(tile, start..start + rows, &mut s.packed),
                    None => pack_bits_into(tile, start..start + rows, &mut s.packed),
                }
                split_words(&s.packed.data, &mut s.words);
                debug_assert_eq!(s.words.len(), rows * self.width);
                queue.write_buffer(&slot.pool, 0, bytemuck::cast_slice(&s.words));
                if let Some(norms) = &slot.pool_norms {
                    queue.write_buffer(norms, 0, bytemuck::cast_slice(&s.packed.norms));
                }
            }
        }
    }

    /// Records and submits chunk `first..first + rows` of a tile already uploaded to slot
    /// `slot`: the kernel block, the posterior and, with `select`, the acquisition and the
    /// per-workgroup top-k; then the copy to the read-back buffer, whose mapping is requested.
    fn submit(
        &self,
        slot: usize,
        first: usize,
        rows: usize,
        select: Option<&SelectParams>,
    ) -> InFlight {
        let sl = &self.slots[slot];
        let queue = self.ctx.queue();
        let (rows32, n32) = (rows as u32, self.n as u32);
        let params = KernelParams {
            rows: rows32,
            n: n32,
            width: self.width as u32,
            s2: self.s2,
            inv_ls: self.inv_ls,
            ..Default::default()
        };
        queue.write_buffer(&sl.kernel_params, 0, bytemuck::bytes_of(&params));
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

        let mut encoder =
            self.ctx
                .device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("poolrank score chunk"),
                });
        let groups = rows32.div_ceil(SELECT_ROWS);
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("poolrank posterior pass"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.kernel.pipeline);
            pass.set_bind_group(0, &sl.kernel_group, &[]);
            pass.dispatch_workgroups(n32.div_ceil(BLOCK_SIDE), rows32.div_ceil(BLOCK_SIDE), 1);
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
        let read_bytes = match select {
            Some(p) => {
                let kept = u64::from(groups) * u64::from(p.keep) * CANDIDATE_BYTES;
                encoder.copy_buffer_to_buffer(&sl.best, 0, &sl.staging, 0, kept);
                kept
            }
            None => {
                encoder.copy_buffer_to_buffer(&sl.mean, 0, &sl.staging, 0, bytes);
                encoder.copy_buffer_to_buffer(&sl.var, 0, &sl.staging, var_at, bytes);
                var_at + bytes
            }
        }
        .max(F32);
        let read = self.ctx.submit_and_map(encoder, &sl.staging, read_bytes);
        InFlight {
            slot,
            first,
            rows,
            keep: select.map(|p| p.keep),
            read_bytes,
            read,
        }
    }

    /// Waits for a submitted chunk and hands its read-back to `read`. Adds the time spent
    /// waiting for the device to `split[1]` and the read-back to `split[2]`.
    fn finish(
        &self,
        chunk: InFlight,
        split: &mut [Duration; 3],
        read: &mut impl FnMut(usize, Readback),
    ) -> Result<()> {
        let waiting = Instant::now();
        self.ctx.wait_mapped(chunk.read)?;
        let done = Instant::now();
        split[1] += done - waiting;
        let staging = &self.slots[chunk.slot].staging;
        {
            let slice = staging.slice(..chunk.read_bytes);
            let view = slice
                .get_mapped_range()
                .map_err(|e| gpu_error(format!("reading the read-back buffer: {e}")))?;
            match chunk.keep {
                Some(_) => read(chunk.first, Readback::Best(bytemuck::cast_slice(&view))),
                None => {
                    let all: &[f32] = bytemuck::cast_slice(&view);
                    let var_at = self.plan.rows;
                    read(
                        chunk.first,
                        Readback::Posterior {
                            mean: &all[..chunk.rows],
                            var: &all[var_at..var_at + chunk.rows],
                        },
                    );
                }
            }
        }
        staging.unmap();
        let checked = self.ctx.check("scoring a tile");
        split[2] += done.elapsed();
        checked
    }

    /// Scores `tile` chunk by chunk through the two slots: `prepare` sees each chunk's first
    /// row and length before it is submitted (it may write the slot's skip mask) and returns
    /// the select parameters, if any; `read` gets each chunk's read-back, in order.
    fn run_chunks(
        &self,
        tile: &Features,
        mut prepare: impl FnMut(&Slot, usize, usize, &mut Scratch) -> Option<SelectParams>,
        mut read: impl FnMut(usize, Readback),
    ) -> Result<[Duration; 3]> {
        self.check_kind(tile)?;
        let mut scratch = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let step = self.plan.rows;
        let mut split = [Duration::ZERO; 3];
        let mut pending: Option<InFlight> = None;
        for (c, first) in (0..tile.len()).step_by(step).enumerate() {
            let rows = step.min(tile.len() - first);
            let slot = c % 2;
            let t = Instant::now();
            self.upload_rows(&self.slots[slot], tile, first, rows, &mut scratch);
            let select = prepare(&self.slots[slot], first, rows, &mut scratch);
            split[0] += t.elapsed();
            let next = self.submit(slot, first, rows, select.as_ref());
            // The device has this chunk queued behind the previous one while the host reads
            // the previous one back.
            if let Some(chunk) = pending.replace(next) {
                self.finish(chunk, &mut split, &mut read)?;
            }
        }
        if let Some(chunk) = pending {
            self.finish(chunk, &mut split, &mut read)?;
        }
        Ok(split)
    }

    /// An error unless `tile` holds the model's kind of features.
    fn check_kind(&self, tile: &Features) -> Result<()> {
        check_tile_kind(tile, self.kind)?;
        check_dense_range(tile, self.train_abs_max)
    }
}

/// What a dispatch reads back.
enum Readback<'a> {
    /// One mean and one variance per row.
    Posterior { mean: &'a [f32], var: &'a [f32] },
    /// The select shader's candidates: `[key, row, mean bits, variance bits]` each.
    Best(&'a [[u32; 4]]),
}

pub(super) fn gpu_error(msg: impl Into<String>) -> Error {
    Error::Gpu { msg: msg.into() }
}

pub(super) fn bind_group(
    device: &wgpu::Device,
    pipeline: &Pipeline,
    label: &str,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let entries: Vec<_> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout: &pipeline.layout,
        entries: &entries,
    })
}

impl GpuScorer {
    /// [`Scorer::posterior_into`], also returning where its wall-clock time went, summed over
    /// its chunks of [`GpuScorer::rows_per_dispatch`] rows, as `[upload, execute, read-back]`:
    /// - upload: encoding the rows on the CPU and handing them to `Queue::write_buffer` (a
    ///   host-side copy; the transfer to the device happens at submission);
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
        self.run_chunks(
            tile,
            |_, _, _, _| None,
            |first, back| {
                if let Readback::Posterior { mean: m, var: v } = back {
                    mean[first..first + m.len()].copy_from_slice(m);
                    var[first..first + v.len()].copy_from_slice(v);
                }
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
        if what.keep > SELECT_ROWS as usize {
            return score_all_into(self, tile, what, out);
        }
        let (code, param) = acquisition_code(what.acq);
        let prepare = |slot: &Slot, first: usize, rows: usize, scratch: &mut Scratch| {
            let global = what.start + first;
            let lo = what.skip.partition_point(|&g| g < global);
            let hi = what.skip.partition_point(|&g| g < global + rows);
            let words = &mut scratch.skip;
            words.clear();
            words.resize(rows / 32 + 1, 0);
            for &g in &what.skip[lo..hi] {
                let r = g - global;
                words[r / 32] |= 1 << (r % 32);
            }
            self.ctx
                .queue()
                .write_buffer(&slot.skip, 0, bytemuck::cast_slice(words));
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
        let read = |first: usize, back: Readback| {
            if let Readback::Best(kept) = back {
                out.extend(kept.iter().filter(|c| c[1] != u32::MAX).map(|c| Scored {
                    row: first + c[1] as usize,
                    score: key_to_score(c[0]),
                    mean: f32::from_bits(c[2]),
                    var: f32::from_bits(c[3]),
                }));
            }
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
