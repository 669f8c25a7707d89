//! All wgpu setup lives here: the instance, adapter enumeration and choice, the device with the
//! adapter's own limits, and what we report about the adapter. wgpu's API changes with every
//! release; keeping it in one file keeps the blast radius small.
//!
//! Choice of adapter (`auto`): the backends in `WGPU_BACKEND` (default: Vulkan, Metal, DX12;
//! not GL, whose probe fails noisily on headless machines), only adapters whose name contains
//! `WGPU_ADAPTER_NAME` when it is set, then the highest-performance device type (discrete, then
//! integrated, virtual, other). Software adapters (`DeviceType::Cpu`, e.g. Mesa's llvmpipe) are
//! taken only when asked for, by [`GpuOptions::allow_software`] or
//! `POOLRANK_ALLOW_SOFTWARE_GPU=1`.

use std::fmt;
use std::sync::{mpsc, Arc, Mutex, OnceLock};

use wgpu::util::DeviceExt;

use super::pipelines::{Pipeline, PipelineCache, PipelineKey};
use crate::error::{Error, Result};

/// Environment variable that allows a software adapter when set to `1`.
pub const ALLOW_SOFTWARE_ENV: &str = "POOLRANK_ALLOW_SOFTWARE_GPU";

/// How to pick the adapter.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Accept a software adapter (llvmpipe, WARP, SwiftShader); default `false`, also enabled
    /// by `POOLRANK_ALLOW_SOFTWARE_GPU=1`. Software adapters are correct but slow: for tests.
    pub allow_software: bool,
}

impl GpuOptions {
    /// Options that accept a software adapter.
    pub fn software() -> Self {
        GpuOptions {
            allow_software: true,
        }
    }

    /// True when software adapters may be chosen (the option or the environment variable).
    pub fn software_allowed(&self) -> bool {
        self.allow_software || std::env::var(ALLOW_SOFTWARE_ENV).is_ok_and(|v| v.trim() == "1")
    }
}

/// The limits of an adapter that decide how poolrank tiles its work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeviceLimits {
    /// Largest storage buffer binding, bytes (bounds the kernel block and each panel of `W`).
    pub max_storage_buffer_binding_size: u64,
    /// Largest buffer, bytes.
    pub max_buffer_size: u64,
    /// Largest workgroup count per dispatch dimension.
    pub max_compute_workgroups_per_dimension: u32,
    /// Workgroup (shared) memory, bytes.
    pub max_compute_workgroup_storage_size: u32,
    /// Invocations per workgroup.
    pub max_compute_invocations_per_workgroup: u32,
}

impl From<&wgpu::Limits> for DeviceLimits {
    fn from(l: &wgpu::Limits) -> Self {
        DeviceLimits {
            max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
            max_buffer_size: l.max_buffer_size,
            max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
            max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
        }
    }
}

/// What poolrank reports about one adapter.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterSummary {
    /// Adapter name, e.g. `NVIDIA H100 80GB HBM3` or `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// Backend: `vulkan`, `metal`, `dx12`.
    pub backend: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `VirtualGpu`, `Cpu` or `Other`.
    pub device_type: String,
    /// Driver name.
    pub driver: String,
    /// Driver version details.
    pub driver_info: String,
    /// True for software adapters (`DeviceType::Cpu`).
    pub software: bool,
    /// The limits that matter for tiling.
    pub limits: DeviceLimits,
}

impl AdapterSummary {
    fn of(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        AdapterSummary {
            name: info.name,
            backend: info.backend.to_str().to_string(),
            device_type: format!("{:?}", info.device_type),
            driver: info.driver,
            driver_info: info.driver_info,
            software: info.device_type == wgpu::DeviceType::Cpu,
            limits: DeviceLimits::from(&adapter.limits()),
        }
    }
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.limits;
        write!(
            f,
            "{} ({}, {}, driver {} {}): storage binding {} MiB, buffer {} MiB, {} workgroups/dim, \
             {} KiB workgroup memory, {} invocations/workgroup",
            self.name,
            self.backend,
            self.device_type,
            self.driver,
            self.driver_info,
            l.max_storage_buffer_binding_size >> 20,
            l.max_buffer_size >> 20,
            l.max_compute_workgroups_per_dimension,
            l.max_compute_workgroup_storage_size >> 10,
            l.max_compute_invocations_per_workgroup,
        )
    }
}

/// Every adapter wgpu sees, and the one [`GpuContext::new`] would take with the same options.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterList {
    /// All adapters, in wgpu's enumeration order.
    pub adapters: Vec<AdapterSummary>,
    /// Index into `adapters` of the chosen one, if any.
    pub chosen: Option<usize>,
    /// Why that one (or why none).
    pub reason: String,
}

impl fmt::Display for AdapterList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.adapters.is_empty() {
            writeln!(f, "no adapters")?;
        }
        for (i, a) in self.adapters.iter().enumerate() {
            let mark = if Some(i) == self.chosen { '*' } else { ' ' };
            writeln!(f, "{mark} [{i}] {a}")?;
        }
        writeln!(f, "{}", self.reason)
    }
}

/// Lists every adapter on the backends in use and says which one would be chosen with
/// `options` (never a software one unless they allow it).
pub fn list_adapters(options: &GpuOptions) -> AdapterList {
    let (_, adapters) = probe();
    let summaries: Vec<_> = adapters.iter().map(AdapterSummary::of).collect();
    let (chosen, reason) = match choose(&summaries, options) {
        Ok(i) => (Some(i), format!("auto takes [{i}] {}", summaries[i].name)),
        Err(why) => (None, format!("auto takes no adapter: {why}")),
    };
    AdapterList {
        adapters: summaries,
        chosen,
        reason,
    }
}

/// The device poolrank scores on. Cheap to clone (the wgpu handles are reference counted).
#[derive(Clone)]
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: AdapterSummary,
    limits: wgpu::Limits,
    /// The first error wgpu reported outside an operation that returns one (validation,
    /// out of memory, device lost), so that it becomes an [`Error::Gpu`], not a panic.
    errors: Arc<Mutex<Option<String>>>,
    pipelines: Arc<PipelineCache>,
}

impl fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.adapter)
            .finish_non_exhaustive()
    }
}

impl GpuContext {
    /// Chooses an adapter as described in the module docs and opens a device on it with all
    /// of the adapter's limits.
    ///
    /// # Errors
    /// [`Error::NoAdapter`] when no adapter qualifies (the message lists what was seen and
    /// why each was passed over), [`Error::Gpu`] when the adapter refuses the device.
    pub fn new(options: &GpuOptions) -> Result<Self> {
        let (_, adapters) = probe();
        let summaries: Vec<_> = adapters.iter().map(AdapterSummary::of).collect();
        let index = choose(&summaries, options).map_err(|why| Error::NoAdapter { why })?;
        let adapter = &adapters[index];
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("poolrank device"),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| {
            Error::gpu(
                format!(
                    "adapter {} refused a device with its own limits",
                    summaries[index].name
                ),
                e,
            )
        })?;
        let errors = Arc::new(Mutex::new(None::<String>));
        let sink = Arc::clone(&errors);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| e.to_string());
        }));
        let sink = Arc::clone(&errors);
        device.set_device_lost_callback(move |reason, msg| {
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| format!("device lost ({reason:?}): {msg}"));
        });
        Ok(GpuContext {
            device,
            queue,
            adapter: summaries[index].clone(),
            limits,
            errors,
            pipelines: Arc::default(),
        })
    }

    /// The adapter in use.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    /// The limits the device was opened with (the adapter's).
    pub fn limits(&self) -> DeviceLimits {
        DeviceLimits::from(&self.limits)
    }

    pub(crate) fn device(&self) -> &wgpu::Device {
        &self.device
    }

    pub(crate) fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// The pipeline for `key`, built on first use and shared by every scorer on this context.
    pub(crate) fn pipeline(&self, key: PipelineKey) -> Pipeline {
        self.pipelines.get(&self.device, key)
    }

    /// Blocks until `submission` has finished on the device (and its callbacks have run).
    pub(crate) fn wait_for(&self, submission: wgpu::SubmissionIndex) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission),
                timeout: None,
            })
            .map_err(|e| Error::gpu("waiting for the device", e))?;
        self.check("device")
    }

    /// Submits `encoder` and asks for `staging[..bytes]` to be mapped for reading once it has
    /// run; [`GpuContext::wait_mapped`] waits for both.
    pub(crate) fn submit_and_map(
        &self,
        encoder: wgpu::CommandEncoder,
        staging: &wgpu::Buffer,
        bytes: u64,
    ) -> PendingRead {
        let submission = self.queue.submit([encoder.finish()]);
        let (tx, mapped) = mpsc::channel();
        staging
            .slice(..bytes)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        PendingRead { submission, mapped }
    }

    /// Blocks until `read`'s submission has run and its staging buffer is mapped.
    pub(crate) fn wait_mapped(&self, read: PendingRead) -> Result<()> {
        self.wait_for(read.submission)?;
        read.mapped
            .recv()
            .map_err(|_| Error::Gpu {
                what: "read-back never completed".into(),
                err: None,
            })?
            .map_err(|e| Error::gpu("mapping the read-back buffer", e))
    }

    /// An uninitialised buffer of at least `bytes` (and at least one element: wgpu refuses
    /// empty bindings).
    pub(crate) fn buffer(
        &self,
        label: &str,
        bytes: u64,
        usage: wgpu::BufferUsages,
    ) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4),
            usage,
            mapped_at_creation: false,
        })
    }

    /// A read-only storage buffer holding `contents`.
    pub(crate) fn upload(&self, label: &str, contents: &[u8]) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: wgpu::BufferUsages::STORAGE,
            })
    }

    /// The bind group of `pipeline`'s group 0 with `buffers` at bindings 0, 1, …
    pub(crate) fn bind_group(
        &self,
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
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &pipeline.layout,
            entries: &entries,
        })
    }

    /// Turns an error wgpu reported since the last check into [`Error::Gpu`] about `what`.
    pub(crate) fn check(&self, what: &str) -> Result<()> {
        let mut slot = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        match slot.take() {
            None => Ok(()),
            Some(msg) => Err(Error::Gpu {
                what: format!("{what}: {msg}"),
                err: None,
            }),
        }
    }
}

/// Work submitted with a staging buffer to read back ([`GpuContext::submit_and_map`]).
pub(crate) struct PendingRead {
    submission: wgpu::SubmissionIndex,
    mapped: mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
}

/// The instance and its adapters, probed once per process: every probe costs a Vulkan
/// instance, and on a headless machine with Mesa each one printed Mesa's device-select
/// warning ("XDG_RUNTIME_DIR is invalid or not set") again.
fn probe() -> &'static (wgpu::Instance, Vec<wgpu::Adapter>) {
    static PROBE: OnceLock<(wgpu::Instance, Vec<wgpu::Adapter>)> = OnceLock::new();
    PROBE.get_or_init(|| {
        quiet_mesa_device_select();
        let instance = instance();
        let adapters = enumerate(&instance);
        (instance, adapters)
    })
}

/// Mesa's device-select Vulkan layer only reorders devices (poolrank ranks adapters itself)
/// and prints to stderr on a headless machine; `NODEVICE_SELECT=1` turns it off. A value the
/// user set is kept.
fn quiet_mesa_device_select() {
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // Before the first Vulkan instance, once (the `OnceLock` above): the loader reads the
        // variable when the layer is loaded, so it must be set in the process environment.
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    wgpu::Instance::new(desc)
}

fn enumerate(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    pollster::block_on(instance.enumerate_adapters(backends))
}

/// Rank of a device type under the high-performance preference (lower is better).
fn rank(device_type: &str) -> u8 {
    match device_type {
        "DiscreteGpu" => 0,
        "IntegratedGpu" => 1,
        "VirtualGpu" => 2,
        "Other" => 3,
        _ => 4,
    }
}

/// The index of the adapter to use, or why there is none.
fn choose(adapters: &[AdapterSummary], options: &GpuOptions) -> std::result::Result<usize, String> {
    if adapters.is_empty() {
        return Err(format!(
            "wgpu found no adapter on {}; install a Vulkan driver (on Linux without a GPU, \
             Mesa's software driver: apt-get install mesa-vulkan-drivers, then set \
             {ALLOW_SOFTWARE_ENV}=1)",
            std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "vulkan, metal, dx12".into())
        ));
    }
    let wanted = std::env::var("WGPU_ADAPTER_NAME")
        .ok()
        .map(|s| s.to_lowercase());
    let software = options.software_allowed();
    let mut passed = Vec::new();
    let mut best: Option<usize> = None;
    for (i, a) in adapters.iter().enumerate() {
        if let Some(w) = &wanted {
            if !a.name.to_lowercase().contains(w.as_str()) {
                passed.push(format!(
                    "{} (name does not match WGPU_ADAPTER_NAME={w})",
                    a.name
                ));
                continue;
            }
        }
        if a.software && !software {
            passed.push(format!(
                "{} (software adapter; set {ALLOW_SOFTWARE_ENV}=1 to use it)",
                a.name
            ));
            continue;
        }
        if best.is_none_or(|b| rank(&a.device_type) < rank(&adapters[b].device_type)) {
            best = Some(i);
        }
    }
    best.ok_or_else(|| format!("none qualifies: {}", passed.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(name: &str, device_type: &str) -> AdapterSummary {
        AdapterSummary {
            name: name.into(),
            backend: "vulkan".into(),
            device_type: device_type.into(),
            driver: String::new(),
            driver_info: String::new(),
            software: device_type == "Cpu",
            limits: DeviceLimits::from(&wgpu::Limits::default()),
        }
    }

    #[test]
    fn choice_prefers_discrete_and_refuses_software_unless_asked() {
        // These tests must not depend on the environment of the machine running them.
        if std::env::var_os("WGPU_ADAPTER_NAME").is_some()
            || std::env::var_os(ALLOW_SOFTWARE_ENV).is_some()
        {
            return;
        }
        let all = [
            summary("llvmpipe", "Cpu"),
            summary("igpu", "IntegratedGpu"),
            summary("dgpu", "DiscreteGpu"),
        ];
        assert_eq!(choose(&all, &GpuOptions::default()), Ok(2));
        assert_eq!(choose(&all[..2], &GpuOptions::default()), Ok(1));
        let why = choose(&all[..1], &GpuOptions::default()).unwrap_err();
        assert!(why.contains(ALLOW_SOFTWARE_ENV), "{why}");
        assert_eq!(choose(&all[..1], &GpuOptions::software()), Ok(0));
        let why = choose(&[], &GpuOptions::software()).unwrap_err();
        assert!(why.contains("mesa-vulkan-drivers"), "{why}");
    }
}
