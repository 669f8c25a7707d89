//! The sparse fit's streaming product on the GPU ([`GpuGram`]): per tile of labeled rows, the
//! kernel block `K = k(tile, Z)` against the inducing points `Z` (the scorer's kernel shaders
//! with `Z` as the training side, unit variance), then `KᵀK` (the blocks on and below the
//! diagonal) and `Kᵀy` in f32 (`shaders/gram.wgsl`); each tile's partial sums are read back and
//! added to f64 sums on the host in tile order, so the result does not depend on timing.
//!
//! Two slots as in the scorer: while the device computes tile `t + 1`, the host adds tile `t`.

use faer::Mat;
use rayon::prelude::*;
use wgpu::util::DeviceExt;

use super::context::{GpuContext, PendingRead};
use super::pipelines::{Pipeline, PipelineKey};
use super::scorer::{bind_group, gpu_error, split_words, Train};
use super::shaders::{GramParams, KernelParams, BLOCK_SIDE, GRAM_SIDE};
use crate::backend::encode::{pack_bits_into, Packed};
use crate::data::Features;
use crate::error::{Error, Result};
use crate::gp::{Gram, GramAccumulator};
use crate::kernel::{Kernel, KernelKind};

const F32: u64 = 4;

/// Labeled rows per tile by default: each thread of the gram shader runs about
/// `rows / 16 + rows / 4` loop iterations, well under llvmpipe's cap of 65,535.
pub const GRAM_TILE_ROWS: usize = 8192;
/// Largest tile [`GpuGram::with_tile_rows`] accepts (the loop cap again).
const MAX_TILE_ROWS: usize = 16_384;

/// The sparse fit's `K_mn K_nm` and `K_mn y` on a GPU: f32 products within a tile, f64 sums
/// across tiles.
#[derive(Clone)]
pub struct GpuGram {
    ctx: GpuContext,
    tile_rows: usize,
}

/// One tile's device buffers.
struct Slot {
    pool: wgpu::Buffer,
    pool_norms: Option<wgpu::Buffer>,
    y: wgpu::Buffer,
    out: wgpu::Buffer,
    staging: wgpu::Buffer,
    kernel_params: wgpu::Buffer,
    gram_params: wgpu::Buffer,
    kernel_group: wgpu::BindGroup,
    gram_group: wgpu::BindGroup,
}

/// A tile submitted and not yet added.
struct InFlight {
    slot: usize,
    read: PendingRead,
}

impl GpuGram {
    /// The product on `ctx`, in tiles of [`GRAM_TILE_ROWS`] rows (fewer when the kernel block
    /// would not fit one storage binding).
    pub fn new(ctx: &GpuContext) -> Self {
        Self::with_tile_rows(ctx, GRAM_TILE_ROWS)
    }

    /// [`GpuGram::new`] with at most `rows` labeled rows per tile (1 to 16,384).
    pub fn with_tile_rows(ctx: &GpuContext, rows: usize) -> Self {
        GpuGram {
            ctx: ctx.clone(),
            tile_rows: rows.clamp(1, MAX_TILE_ROWS),
        }
    }
}

fn too_large(what: &str, requested: u64, max: u64) -> Result<()> {
    if requested <= max {
        return Ok(());
    }
    Err(Error::LimitExceeded {
        what: what.into(),
        requested,
        max,
    })
}

impl GramAccumulator for GpuGram {
    fn product(&self, kernel: &Kernel, x: &Features, z: &Features, y: &[f64]) -> Result<Gram> {
        let (n, m) = (x.len(), z.len());
        let mut gram = Gram {
            s: Mat::zeros(m, m),
            b: vec![0.0; m],
        };
        if n == 0 || m == 0 {
            return Ok(gram);
        }
        let limits = self.ctx.limits();
        let binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let groups = u64::from(limits.max_compute_workgroups_per_dimension);
        let side = GRAM_SIDE as usize;
        let nb = m.div_ceil(side);
        let blocks = nb * (nb + 1) / 2;
        let s_len = blocks * side * side;
        let out_len = s_len + nb * side;
        too_large(
            "inducing points (the m × m product, one binding), bytes",
            out_len as u64 * F32,
            binding,
        )?;
        too_large("inducing points (gram workgroups)", blocks as u64, groups)?;
        too_large(
            "inducing points (kernel block workgroups)",
            m.div_ceil(BLOCK_SIDE as usize) as u64,
            groups,
        )?;
        let train = Train::encode(z);
        let width = train.width();
        let row_bytes = width as u64 * F32;
        too_large(
            "inducing points' features (one binding), bytes",
            m as u64 * row_bytes,
            binding,
        )?;
        let cap = (self.tile_rows as u64)
            .min(binding / (m as u64 * F32))
            .min(binding / row_bytes.max(1))
            .min(groups * u64::from(BLOCK_SIDE))
            .min(n as u64) as usize;
        // At least 1: the checks above bound `m · 4` and a row's bytes by the binding.
        debug_assert!(cap >= 1);

        let device = self.ctx.device();
        let queue = self.ctx.queue();
        let buffer = |label: &str, bytes: u64, usage: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(F32),
                usage,
                mapped_at_creation: false,
            })
        };
        let upload = |label: &str, contents: &[u8]| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: wgpu::BufferUsages::STORAGE,
            })
        };
        let to_device = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        let uniform = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
        let (key, code, z_words, z_norms) = match train {
            Train::Popcount {
                code, words, norms, ..
            } => (
                PipelineKey::Popcount,
                code,
                upload("poolrank gram inducing words", bytemuck::cast_slice(&words)),
                Some(upload(
                    "poolrank gram inducing norms",
                    bytemuck::cast_slice(&norms),
                )),
            ),
            Train::Dense { .. } => {
                let Features::Dense { data, .. } = z else {
                    unreachable!("dense encoding comes from dense features");
                };
                let key = PipelineKey::Dense {
                    matern: kernel.kind == KernelKind::Matern52,
                };
                let features = upload(
                    "poolrank gram inducing features",
                    bytemuck::cast_slice(data),
                );
                (key, None, features, None)
            }
        };
        let kernel_pipe = self.ctx.pipeline(key);
        let gram_pipe = self.ctx.pipeline(PipelineKey::Gram);
        let slot = |name: &str| -> Slot {
            let label = |what: &str| format!("poolrank gram {what} ({name})");
            let ks = buffer(
                &label("kernel block"),
                cap as u64 * m as u64 * F32,
                wgpu::BufferUsages::STORAGE,
            );
            let pool = buffer(&label("labeled rows"), cap as u64 * row_bytes, to_device);
            let yb = buffer(&label("labels"), cap as u64 * F32, to_device);
            let out = buffer(
                &label("partial sums"),
                out_len as u64 * F32,
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            );
            let staging = buffer(
                &label("read-back"),
                out_len as u64 * F32,
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            );
            let kernel_params = buffer(
                &label("kernel params"),
                std::mem::size_of::<KernelParams>() as u64,
                uniform,
            );
            let gram_params = buffer(
                &label("gram params"),
                std::mem::size_of::<GramParams>() as u64,
                uniform,
            );
            let (pool_norms, kernel_group) = match &z_norms {
                Some(zn) => {
                    let pn = buffer(&label("row norms"), cap as u64 * F32, to_device);
                    let group = bind_group(
                        device,
                        &kernel_pipe,
                        &label("popcount bind group"),
                        &[&kernel_params, &pool, &pn, &z_words, zn, &ks],
                    );
                    (Some(pn), group)
                }
                None => {
                    let group = bind_group(
                        device,
                        &kernel_pipe,
                        &label("dense bind group"),
                        &[&kernel_params, &pool, &z_words, &ks],
                    );
                    (None, group)
                }
            };
            let gram_group = bind_group(
                device,
                &gram_pipe,
                &label("bind group"),
                &[&gram_params, &ks, &yb, &out],
            );
            Slot {
                pool,
                pool_norms,
                y: yb,
                out,
                staging,
                kernel_params,
                gram_params,
                kernel_group,
                gram_group,
            }
        };
        let slots = [slot("slot 0"), slot("slot 1")];
        self.ctx.check("preparing the GPU gram product")?;

        let inv_ls = (1.0 / kernel.lengthscale) as f32;
        let (mut packed, mut words, mut ytile) = (Packed::default(), Vec::new(), Vec::new());
        let mut s_acc = vec![0f64; s_len];
        let mut pending: Option<InFlight> = None;
        for (t, start) in (0..n).step_by(cap).enumerate() {
            let rows = cap.min(n - start);
            let sl = &slots[t % 2];
            // Upload the tile's rows, encoded as the scorer encodes pool rows.
            match x {
                Features::Dense { dim, data } => {
                    let part = &data[start * dim..(start + rows) * dim];
                    queue.write_buffer(&sl.pool, 0, bytemuck::cast_slice(part));
                }
                _ => {
                    match &code {
                        Some(code) => code.encode_into(x, start..start + rows, &mut packed),
                        None => pack_bits_into(x, start..start + rows, &mut packed),
                    }
                    split_words(&packed.data, &mut words);
                    queue.write_buffer(&sl.pool, 0, bytemuck::cast_slice(&words));
                    if let Some(pn) = &sl.pool_norms {
                        queue.write_buffer(pn, 0, bytemuck::cast_slice(&packed.norms));
                    }
                }
            }
            ytile.clear();
            ytile.extend(y[start..start + rows].iter().map(|&v| v as f32));
            queue.write_buffer(&sl.y, 0, bytemuck::cast_slice(&ytile));
            let kp = KernelParams {
                rows: rows as u32,
                n: m as u32,
                width: width as u32,
                s2: 1.0,
                inv_ls,
                ..Default::default()
            };
            queue.write_buffer(&sl.kernel_params, 0, bytemuck::bytes_of(&kp));
            let gp = GramParams {
                rows: rows as u32,
                m: m as u32,
                blocks: blocks as u32,
                ..Default::default()
            };
            queue.write_buffer(&sl.gram_params, 0, bytemuck::bytes_of(&gp));
            let next = self.submit(
                t % 2,
                sl,
                &kernel_pipe,
                &gram_pipe,
                m,
                rows,
                blocks,
                out_len,
            );
            // The device has this tile queued while the host adds the previous one.
            if let Some(done) = pending.replace(next) {
                self.add(done, &slots, &mut s_acc, &mut gram.b, out_len)?;
            }
        }
        if let Some(done) = pending {
            self.add(done, &slots, &mut s_acc, &mut gram.b, out_len)?;
        }
        for j in 0..m {
            for i in j..m {
                let (bi, bj) = (i / side, j / side);
                let q = bi * (bi + 1) / 2 + bj;
                gram.s[(i, j)] = s_acc[q * side * side + (i % side) * side + j % side];
            }
        }
        Ok(gram)
    }

    fn name(&self) -> String {
        format!(
            "gpu ({}; f32 per tile of {} rows, f64 across tiles)",
            self.ctx.adapter().name,
            self.tile_rows
        )
    }

    fn is_f64(&self) -> bool {
        false
    }
}

impl GpuGram {
    /// Records and submits one tile: the kernel block, the gram product, the copy to the
    /// read-back buffer, whose mapping is requested.
    #[allow(clippy::too_many_arguments)]
    fn submit(
        &self,
        slot: usize,
        sl: &Slot,
        kernel: &Pipeline,
        gram: &Pipeline,
        m: usize,
        rows: usize,
        blocks: usize,
        out_len: usize,
    ) -> InFlight {
        let mut encoder =
            self.ctx
                .device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("poolrank gram tile"),
                });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("poolrank gram pass"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&kernel.pipeline);
            pass.set_bind_group(0, &sl.kernel_group, &[]);
            pass.dispatch_workgroups(
                (m as u32).div_ceil(BLOCK_SIDE),
                (rows as u32).div_ceil(BLOCK_SIDE),
                1,
            );
            pass.set_pipeline(&gram.pipeline);
            pass.set_bind_group(0, &sl.gram_group, &[]);
            pass.dispatch_workgroups(blocks as u32, 1, 1);
        }
        let bytes = out_len as u64 * F32;
        encoder.copy_buffer_to_buffer(&sl.out, 0, &sl.staging, 0, bytes);
        InFlight {
            slot,
            read: self.ctx.submit_and_map(encoder, &sl.staging, bytes),
        }
    }

    /// Waits for a tile and adds its partial sums to the f64 totals.
    fn add(
        &self,
        done: InFlight,
        slots: &[Slot; 2],
        s_acc: &mut [f64],
        b_acc: &mut [f64],
        out_len: usize,
    ) -> Result<()> {
        self.ctx.wait_mapped(done.read)?;
        let staging = &slots[done.slot].staging;
        {
            let view = staging
                .slice(..out_len as u64 * F32)
                .get_mapped_range()
                .map_err(|e| gpu_error(format!("reading the read-back buffer: {e}")))?;
            let part: &[f32] = bytemuck::cast_slice(&view);
            let (ps, pb) = part.split_at(s_acc.len());
            // Element-wise, so the sums are the same on any number of threads.
            s_acc
                .par_chunks_mut(1 << 16)
                .zip(ps.par_chunks(1 << 16))
                .for_each(|(acc, p)| {
                    for (a, v) in acc.iter_mut().zip(p) {
                        *a += f64::from(*v);
                    }
                });
            for (a, v) in b_acc.iter_mut().zip(pb) {
                *a += f64::from(*v);
            }
        }
        staging.unmap();
        self.ctx.check("the GPU gram product")
    }
}
