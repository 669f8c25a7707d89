//! The wgpu backend: WGSL compute shaders score pool tiles on any Vulkan, Metal or DX12 device,
//! with the CPU scorer's answers within f32 rounding.
//!
//! - [`context`]: every piece of wgpu setup (instance, adapter choice, device, limits).
//! - `shaders`: the WGSL sources from `shaders/` and the mirrors of their uniform structs.
//! - `pipelines`: pipelines built once per device, cached by key.
//! - `plan`: tiling from the device's limits.
//! - `side`: the labeled side of the kernel block on the device (the labeled rows, or the
//!   inducing points), encoded as the CPU encodes it, and the per-slot block against it.
//! - `stream`: the upload and two-slot pipeline the scorer and the Gram product both drive.
//! - [`GpuScorer`]: one round's uploaded state and the per-tile dispatches.
//! - [`GpuGram`]: the sparse fit's streaming product `K_mn K_nm`, `K_mn y` (`shaders/gram.wgsl`).
//!
//! Per chunk of pool rows the kernel block `Ks = s2·k(chunk, X)` is computed on the device
//! (popcounts for fingerprints, encoded on the CPU exactly as the CPU scorer encodes them;
//! distances for dense features) and stays there; the posterior shader reads it for the mean
//! `Ks·alpha` and the variance `s2 − rowsum((Ks·Wᵀ)²)`, whose GEMM never writes `Ks·Wᵀ` out.

pub mod context;
mod gram;
mod pipelines;
mod plan;
mod scorer;
mod shaders;
mod side;
mod stream;

pub use context::{
    list_adapters, AdapterList, AdapterSummary, DeviceLimits, GpuContext, GpuOptions,
    ALLOW_SOFTWARE_ENV,
};
pub use gram::{GpuGram, GRAM_TILE_ROWS};
pub use scorer::{GpuScorer, TileLimits};
