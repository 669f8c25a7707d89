//! The labeled side of the kernel block `ks = s2 · k(rows, side)` on the device, the one type
//! the scorer (side: the labeled rows) and the Gram product (side: the inducing points) upload
//! it through, and the per-slot [`KernelBlock`] whose rows are encoded against it.
//!
//! Fingerprints are encoded by [`SideCode`], as the CPU backend encodes them, and sent as `u32`
//! words (a `u64` word is two, low half first) with their norms; dense rows go as they are.

use std::ops::Range;

use super::context::GpuContext;
use super::pipelines::{Pipeline, PipelineKey};
use super::shaders::{KernelParams, BLOCK_SIDE};
use crate::backend::encode::{Packed, SideCode};
use crate::data::Features;
use crate::kernel::KernelKind;

const F32: u64 = 4;

/// A labeled side encoded on the host, before it is uploaded: its width is known (the callers
/// check it against the device's limits) and nothing is on the device yet.
pub(super) struct Encoded<'a> {
    /// Rows of the side.
    n: usize,
    rows: EncodedRows<'a>,
}

enum EncodedRows<'a> {
    /// Fingerprints: how rows are encoded against the side, its `u32` words and norms.
    Popcount {
        code: SideCode,
        /// `u32` words per row.
        width: usize,
        words: Vec<u32>,
        norms: Vec<f32>,
    },
    /// Dense `f32` rows.
    Dense { dim: usize, data: &'a [f32] },
}

impl<'a> Encoded<'a> {
    /// Encodes the rows of `side` exactly as the CPU backend does.
    pub(super) fn new(side: &'a Features) -> Self {
        let rows = match side {
            Features::Dense { dim, data } => EncodedRows::Dense { dim: *dim, data },
            _ => {
                let (code, packed) = SideCode::of(side).expect("fingerprint features");
                let mut words = Vec::new();
                split_words(&packed.data, &mut words);
                EncodedRows::Popcount {
                    code,
                    width: 2 * packed.words,
                    words,
                    norms: packed.norms,
                }
            }
        };
        Encoded {
            n: side.len(),
            rows,
        }
    }

    /// Elements (`u32` or `f32`) per row, on either side of the block.
    pub(super) fn width(&self) -> usize {
        match &self.rows {
            EncodedRows::Popcount { width, .. } => *width,
            EncodedRows::Dense { dim, .. } => *dim,
        }
    }

    /// Uploads the side; `kernel` picks the dense shader (RBF or Matérn 5/2) and `name` labels
    /// the buffers (`poolrank {name} words`).
    pub(super) fn upload(self, ctx: &GpuContext, kernel: KernelKind, name: &str) -> KernelSide {
        let width = self.width();
        let upload = |what: &str, data: &[u8]| ctx.upload(&format!("poolrank {name} {what}"), data);
        let (key, code, buffers) = match self.rows {
            EncodedRows::Popcount {
                code, words, norms, ..
            } => (
                PipelineKey::Popcount,
                Some(code),
                SideBuffers::Popcount {
                    words: upload("words", bytemuck::cast_slice(&words)),
                    norms: upload("norms", bytemuck::cast_slice(&norms)),
                },
            ),
            EncodedRows::Dense { data, .. } => (
                PipelineKey::Dense {
                    matern: kernel == KernelKind::Matern52,
                },
                None,
                SideBuffers::Dense {
                    features: upload("features", bytemuck::cast_slice(data)),
                },
            ),
        };
        KernelSide {
            n: self.n,
            code,
            width,
            buffers,
            pipeline: ctx.pipeline(key),
        }
    }
}

/// A labeled side on the device, with how rows are encoded against it and the kernel-block
/// pipeline that compares them.
pub(super) struct KernelSide {
    /// Rows of the side.
    n: usize,
    /// How fingerprint rows are encoded; `None` for dense rows.
    code: Option<SideCode>,
    /// Elements (`u32` or `f32`) per row.
    width: usize,
    buffers: SideBuffers,
    pipeline: Pipeline,
}

enum SideBuffers {
    Popcount {
        words: wgpu::Buffer,
        norms: wgpu::Buffer,
    },
    Dense {
        features: wgpu::Buffer,
    },
}

/// One slot's kernel block: the rows compared with the side (and their norms, for
/// fingerprints), the parameters, the block `ks` itself (`cap × n` floats, which stays on the
/// device for the next dispatch) and the bind group over them.
pub(super) struct KernelBlock {
    rows: wgpu::Buffer,
    norms: Option<wgpu::Buffer>,
    params: wgpu::Buffer,
    /// `ks`, row-major `rows × n`.
    pub(super) ks: wgpu::Buffer,
    group: wgpu::BindGroup,
}

/// Host scratch for encoding rows.
#[derive(Default)]
pub(super) struct RowScratch {
    packed: Packed,
    words: Vec<u32>,
}

impl KernelSide {
    /// Rows of the side.
    pub(super) fn len(&self) -> usize {
        self.n
    }

    /// A slot's kernel block for up to `cap` rows; `label` names its buffers.
    pub(super) fn block(
        &self,
        ctx: &GpuContext,
        cap: usize,
        label: &dyn Fn(&str) -> String,
    ) -> KernelBlock {
        let cap = cap as u64;
        let to_device = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        let ks = ctx.buffer(
            &label("kernel block"),
            cap * self.len() as u64 * F32,
            wgpu::BufferUsages::STORAGE,
        );
        let rows = ctx.buffer(&label("rows"), cap * self.width as u64 * F32, to_device);
        let params = ctx.buffer(
            &label("kernel params"),
            std::mem::size_of::<KernelParams>() as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        let (norms, group) = match &self.buffers {
            SideBuffers::Popcount { words, norms } => {
                let pn = ctx.buffer(&label("row norms"), cap * F32, to_device);
                let group = ctx.bind_group(
                    &self.pipeline,
                    &label("popcount bind group"),
                    &[&params, &rows, &pn, words, norms, &ks],
                );
                (Some(pn), group)
            }
            SideBuffers::Dense { features } => {
                let group = ctx.bind_group(
                    &self.pipeline,
                    &label("dense bind group"),
                    &[&params, &rows, features, &ks],
                );
                (None, group)
            }
        };
        KernelBlock {
            rows,
            norms,
            params,
            ks,
            group,
        }
    }

    /// Encodes rows `range` of `rows` as the side was encoded and writes them, and the block's
    /// parameters (`s2`, `1 / lengthscale`), to `block`.
    pub(super) fn write(
        &self,
        ctx: &GpuContext,
        block: &KernelBlock,
        rows: &Features,
        range: Range<usize>,
        (s2, inv_ls): (f32, f32),
        scratch: &mut RowScratch,
    ) {
        let queue = ctx.queue();
        let count = range.len();
        match rows {
            Features::Dense { dim, data } => {
                let part = &data[range.start * dim..range.end * dim];
                queue.write_buffer(&block.rows, 0, bytemuck::cast_slice(part));
            }
            _ => {
                // The callers check that the rows are of the side's kind, so `code` is set.
                let code = self.code.as_ref().unwrap_or(&SideCode::Bits);
                code.encode_into(rows, range, &mut scratch.packed);
                split_words(&scratch.packed.data, &mut scratch.words);
                debug_assert_eq!(scratch.words.len(), count * self.width);
                queue.write_buffer(&block.rows, 0, bytemuck::cast_slice(&scratch.words));
                if let Some(norms) = &block.norms {
                    queue.write_buffer(norms, 0, bytemuck::cast_slice(&scratch.packed.norms));
                }
            }
        }
        let params = KernelParams {
            rows: count as u32,
            n: self.len() as u32,
            width: self.width as u32,
            s2,
            inv_ls,
            ..Default::default()
        };
        queue.write_buffer(&block.params, 0, bytemuck::bytes_of(&params));
    }

    /// Records the kernel-block dispatch for `rows` rows written to `block`.
    pub(super) fn dispatch(&self, pass: &mut wgpu::ComputePass, block: &KernelBlock, rows: usize) {
        pass.set_pipeline(&self.pipeline.pipeline);
        pass.set_bind_group(0, &block.group, &[]);
        pass.dispatch_workgroups(
            (self.len() as u32).div_ceil(BLOCK_SIDE),
            (rows as u32).div_ceil(BLOCK_SIDE),
            1,
        );
    }
}

/// Splits `u64` words into `u32` words, low half first (the layout the shaders read).
fn split_words(words: &[u64], out: &mut Vec<u32>) {
    out.clear();
    out.extend(words.iter().flat_map(|&w| [w as u32, (w >> 32) as u32]));
}
