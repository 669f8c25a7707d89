//! The sparse fit's streaming product on the GPU ([`GpuGram`]): per tile of labeled rows, the
//! kernel block `K = k(tile, Z)` against the inducing points `Z` (the scorer's kernel shaders
//! with `Z` as the training side, unit variance), then `KᵀK` (the blocks on and below the
//! diagonal) and `Kᵀy` in f32 (`shaders/gram.wgsl`); each tile's partial sums are read back and
//! added to f64 sums on the host in tile order, so the result does not depend on timing.
//!
//! The inducing points are the labeled side of the kernel block (`side::KernelSide`) and the tiles
//! go through the scorer's two-slot [`Stream`]: while the device computes tile `t + 1`, the host
//! adds tile `t`.

use std::ops::Range;

use faer::Mat;
use rayon::prelude::*;

use super::context::GpuContext;
use super::pipelines::PipelineKey;
use super::shaders::{GramParams, BLOCK_SIDE, GRAM_SIDE};
use super::side::{Encoded, KernelBlock, RowScratch};
use super::stream::{Slot, Stream};
use crate::data::Features;
use crate::error::{Error, Result};
use crate::gp::{Gram, GramAccumulator};
use crate::kernel::Kernel;

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

/// One tile's device buffers (its read-back buffer is the stream's).
struct Tile {
    block: KernelBlock,
    y: wgpu::Buffer,
    out: wgpu::Buffer,
    gram_params: wgpu::Buffer,
    gram_group: wgpu::BindGroup,
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
        let train = Encoded::new(z);
        let row_bytes = train.width() as u64 * F32;
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

        let ctx = &self.ctx;
        let inducing = train.upload(ctx, kernel.kind, "gram inducing");
        let gram_pipe = ctx.pipeline(PipelineKey::Gram);
        let out_bytes = out_len as u64 * F32;
        let tile = |name: &str| {
            let label = |what: &str| format!("poolrank gram {what} ({name})");
            let block = inducing.block(ctx, cap, &label);
            let to_device = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
            let y = ctx.buffer(&label("labels"), cap as u64 * F32, to_device);
            let out = ctx.buffer(
                &label("partial sums"),
                out_bytes,
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            );
            let gram_params = ctx.buffer(
                &label("gram params"),
                std::mem::size_of::<GramParams>() as u64,
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            );
            let gram_group = ctx.bind_group(
                &gram_pipe,
                &label("bind group"),
                &[&gram_params, &block.ks, &y, &out],
            );
            Tile {
                block,
                y,
                out,
                gram_params,
                gram_group,
            }
        };
        let stream = Stream::new(ctx, "poolrank gram", out_bytes, tile);
        ctx.check("preparing the GPU gram product")?;

        let inv_ls = (1.0 / kernel.lengthscale) as f32;
        let (mut scratch, mut ytile) = (RowScratch::default(), Vec::new());
        let record = |slot: &Slot<Tile>, rows: Range<usize>, encoder: &mut wgpu::CommandEncoder| {
            let t = &slot.buffers;
            // The tile's rows, encoded as the scorer encodes pool rows.
            inducing.write(ctx, &t.block, x, rows.clone(), (1.0, inv_ls), &mut scratch);
            let queue = ctx.queue();
            ytile.clear();
            ytile.extend(y[rows.clone()].iter().map(|&v| v as f32));
            queue.write_buffer(&t.y, 0, bytemuck::cast_slice(&ytile));
            let params = GramParams {
                rows: rows.len() as u32,
                m: m as u32,
                blocks: blocks as u32,
                ..Default::default()
            };
            queue.write_buffer(&t.gram_params, 0, bytemuck::bytes_of(&params));
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("poolrank gram pass"),
                    timestamp_writes: None,
                });
                inducing.dispatch(&mut pass, &t.block, rows.len());
                pass.set_pipeline(&gram_pipe.pipeline);
                pass.set_bind_group(0, &t.gram_group, &[]);
                pass.dispatch_workgroups(blocks as u32, 1, 1);
            }
            encoder.copy_buffer_to_buffer(&t.out, 0, &slot.staging, 0, out_bytes);
            out_bytes
        };
        let mut s_acc = vec![0f64; s_len];
        let b_acc = &mut gram.b;
        // Each tile's partial sums added to the f64 totals, in tile order.
        let add = |_: Range<usize>, back: &[u8]| {
            let part: &[f32] = bytemuck::cast_slice(back);
            let (ps, pb) = part.split_at(s_len);
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
        };
        stream.run("the GPU gram product", n, cap, record, add)?;
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
