//! Compute pipelines and their bind group layouts, built once per device and cached by a key
//! that names everything that changes the compiled shader (which shader, override constants).

use std::collections::HashMap;
use std::sync::Mutex;

use super::shaders;

/// Everything that selects a compiled pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PipelineKey {
    /// The fingerprint cross-kernel (`shaders/popcount.wgsl`).
    Popcount,
    /// The dense cross-kernel (`shaders/dense.wgsl`) with the `MATERN` override.
    Dense {
        /// Matérn 5/2 when true, RBF otherwise.
        matern: bool,
    },
    /// The posterior GEMM (`shaders/posterior.wgsl`).
    Posterior,
    /// The acquisition and per-workgroup top-k (`shaders/select.wgsl`).
    Select,
    /// The pruned pass's bounds and survivors (`shaders/bound.wgsl`).
    Bound,
    /// The sparse fit's per-tile `KᵀK` and `Kᵀy` (`shaders/gram.wgsl`).
    Gram,
}

/// How a shader reads one binding.
#[derive(Clone, Copy)]
enum Slot {
    Uniform,
    Read,
    ReadWrite,
}

impl PipelineKey {
    fn name(self) -> &'static str {
        match self {
            PipelineKey::Popcount => "popcount",
            PipelineKey::Dense { matern: false } => "dense rbf",
            PipelineKey::Dense { matern: true } => "dense matern52",
            PipelineKey::Posterior => "posterior",
            PipelineKey::Select => "select",
            PipelineKey::Bound => "bound",
            PipelineKey::Gram => "gram",
        }
    }

    fn source(self) -> &'static str {
        match self {
            PipelineKey::Popcount => shaders::POPCOUNT,
            PipelineKey::Dense { .. } => shaders::DENSE,
            PipelineKey::Posterior => shaders::POSTERIOR,
            PipelineKey::Select => shaders::SELECT,
            PipelineKey::Bound => shaders::BOUND,
            PipelineKey::Gram => shaders::GRAM,
        }
    }

    /// The bindings of group 0, in binding order (they match the shader's declarations).
    fn slots(self) -> &'static [Slot] {
        use Slot::*;
        match self {
            PipelineKey::Popcount => &[Uniform, Read, Read, Read, Read, ReadWrite],
            PipelineKey::Dense { .. } => &[Uniform, Read, Read, ReadWrite],
            PipelineKey::Posterior => {
                &[Uniform, Read, Read, Read, ReadWrite, ReadWrite, Read, Read]
            }
            PipelineKey::Select => &[Uniform, Read, Read, Read, ReadWrite, Read, Read],
            PipelineKey::Bound => &[Uniform, Read, Read, ReadWrite, ReadWrite],
            PipelineKey::Gram => &[Uniform, Read, Read, ReadWrite],
        }
    }

    fn constants(self) -> Vec<(&'static str, f64)> {
        match self {
            PipelineKey::Dense { matern } => vec![("MATERN", if matern { 1.0 } else { 0.0 })],
            _ => Vec::new(),
        }
    }
}

/// A compiled pipeline and the layout of its only bind group.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// Layout of group 0.
    pub layout: wgpu::BindGroupLayout,
    /// The pipeline.
    pub pipeline: wgpu::ComputePipeline,
}

/// Pipelines of one device, built on first use.
#[derive(Default)]
pub struct PipelineCache(Mutex<HashMap<PipelineKey, Pipeline>>);

impl PipelineCache {
    /// The pipeline for `key`, building it on first use.
    pub fn get(&self, device: &wgpu::Device, key: PipelineKey) -> Pipeline {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key).or_insert_with(|| build(device, key)).clone()
    }
}

fn build(device: &wgpu::Device, key: PipelineKey) -> Pipeline {
    let name = key.name();
    let entries: Vec<_> = key
        .slots()
        .iter()
        .enumerate()
        .map(|(i, slot)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match slot {
                    Slot::Uniform => wgpu::BufferBindingType::Uniform,
                    Slot::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    Slot::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(&format!("poolrank {name} bind group layout")),
        entries: &entries,
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(&format!("poolrank {name} pipeline layout")),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    // Checked module: bounds checks stay on until the unchecked variant has its own parity run.
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(&format!("poolrank {name} shader")),
        source: wgpu::ShaderSource::Wgsl(key.source().into()),
    });
    let constants = key.constants();
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(&format!("poolrank {name} pipeline")),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some("main"),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants: &constants,
            // Every shader writes its workgroup memory before reading it.
            zero_initialize_workgroup_memory: false,
        },
        cache: None,
    });
    Pipeline { layout, pipeline }
}
