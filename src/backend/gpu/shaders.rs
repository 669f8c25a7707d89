//! The WGSL sources (real files under `shaders/`, each prefixed with `shaders/prelude.wgsl`),
//! the workgroup shapes the host plans dispatches with, and the `#[repr(C)]` mirrors of the
//! shaders' uniform structs.

use bytemuck::{Pod, Zeroable};

/// The fingerprint cross-kernel (Tanimoto on bits, MinMax through the thermometer code).
pub const POPCOUNT: &str = concat!(
    include_str!("../../../shaders/prelude.wgsl"),
    include_str!("../../../shaders/popcount.wgsl")
);

/// The dense cross-kernels (RBF, or Matérn 5/2 with the `MATERN` override).
pub const DENSE: &str = concat!(
    include_str!("../../../shaders/prelude.wgsl"),
    include_str!("../../../shaders/dense.wgsl")
);

/// Mean and variance from a kernel block: the triangular GEMM with the fused row sum of squares.
pub const POSTERIOR: &str = concat!(
    include_str!("../../../shaders/prelude.wgsl"),
    include_str!("../../../shaders/posterior.wgsl")
);

/// Every shader with its name, for validation.
#[cfg(test)]
pub const ALL: [(&str, &str); 3] = [
    ("popcount", POPCOUNT),
    ("dense", DENSE),
    ("posterior", POSTERIOR),
];

/// Side of the square block of `ks` one kernel-block workgroup computes (`KB_SIDE`, `DB_SIDE`).
pub const BLOCK_SIDE: u32 = 16;

/// Pool rows one posterior workgroup owns (`PB_ROWS`).
pub const POSTERIOR_ROWS: u32 = 64;

/// Invocations per workgroup of every shader (16 × 16).
pub const INVOCATIONS: u32 = 256;

/// Workgroup memory the largest shader declares (the posterior's three 4 KiB tiles).
pub const WORKGROUP_BYTES: u32 = 3 * 4096;

/// Bit 0 of [`PosteriorParams::flags`]: the first panel of `W` (writes the mean).
pub const FLAG_FIRST_PANEL: u32 = 1;
/// Bit 1 of [`PosteriorParams::flags`]: the last panel of `W` (writes the variance).
pub const FLAG_LAST_PANEL: u32 = 2;

/// Mirror of the WGSL `KernelParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct KernelParams {
    /// Pool rows in this dispatch.
    pub rows: u32,
    /// Labeled rows.
    pub n: u32,
    /// `u32` words per fingerprint row, or features per dense row.
    pub width: u32,
    /// Padding.
    pub _pad0: u32,
    /// Signal variance.
    pub s2: f32,
    /// `1 / lengthscale` (dense kernels).
    pub inv_ls: f32,
    /// Padding.
    pub _pad1: u32,
    /// Padding.
    pub _pad2: u32,
}

/// Mirror of the WGSL `PosteriorParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct PosteriorParams {
    /// Pool rows in this dispatch.
    pub rows: u32,
    /// Labeled rows.
    pub n: u32,
    /// First row of `W` in this panel.
    pub panel_start: u32,
    /// One past the last row of `W` in this panel (also the panel's row stride).
    pub panel_end: u32,
    /// [`FLAG_FIRST_PANEL`] | [`FLAG_LAST_PANEL`].
    pub flags: u32,
    /// Prior variance `s2`.
    pub s2: f32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use naga::valid::{Capabilities, ValidationFlags, Validator};

    fn parse(name: &str, src: &str) -> naga::Module {
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(src)));
        Validator::new(ValidationFlags::all(), Capabilities::empty())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(src)));
        module
    }

    #[test]
    fn every_shader_parses_and_validates() {
        for (name, src) in ALL {
            let module = parse(name, src);
            let [ep] = module.entry_points.as_slice() else {
                panic!("{name}: expected one entry point");
            };
            assert_eq!(ep.name, "main", "{name}");
            assert_eq!(ep.stage, naga::ShaderStage::Compute, "{name}");
            let [x, y, z] = ep.workgroup_size;
            assert_eq!(x * y * z, INVOCATIONS, "{name}: workgroup size");
            assert_eq!((x, y), (BLOCK_SIDE, BLOCK_SIDE), "{name}: workgroup shape");
        }
    }

    #[test]
    fn workgroup_memory_fits_the_default_limit() {
        // wgpu's default (and WebGPU's minimum) is 16 KiB per workgroup.
        for (name, src) in ALL {
            let module = parse(name, src);
            let layouter = {
                let mut l = naga::proc::Layouter::default();
                l.update(module.to_ctx()).unwrap();
                l
            };
            let bytes: u32 = module
                .global_variables
                .iter()
                .filter(|(_, g)| g.space == naga::AddressSpace::WorkGroup)
                .map(|(_, g)| layouter[g.ty].size)
                .sum();
            assert!(bytes <= WORKGROUP_BYTES, "{name}: {bytes} bytes");
        }
    }

    /// Size and member offsets of the WGSL struct `name`, from naga's layout.
    fn wgsl_layout(module: &naga::Module, name: &str) -> (u32, Vec<(String, u32)>) {
        let ty = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no struct {name}"))
            .1;
        let naga::TypeInner::Struct { members, span } = &ty.inner else {
            panic!("{name} is not a struct");
        };
        let members = members
            .iter()
            .map(|m| (m.name.clone().unwrap(), m.offset))
            .collect();
        (*span, members)
    }

    #[test]
    fn uniform_mirrors_match_the_wgsl_layout() {
        use std::mem::{align_of, offset_of, size_of};
        let module = parse("popcount", POPCOUNT);

        let (size, members) = wgsl_layout(&module, "KernelParams");
        assert_eq!(size as usize, size_of::<KernelParams>());
        assert_eq!(size % 16, 0, "uniform structs are 16-byte multiples");
        assert_eq!(align_of::<KernelParams>(), 4);
        let want = [
            ("rows", offset_of!(KernelParams, rows)),
            ("n", offset_of!(KernelParams, n)),
            ("width", offset_of!(KernelParams, width)),
            ("_pad0", offset_of!(KernelParams, _pad0)),
            ("s2", offset_of!(KernelParams, s2)),
            ("inv_ls", offset_of!(KernelParams, inv_ls)),
            ("_pad1", offset_of!(KernelParams, _pad1)),
            ("_pad2", offset_of!(KernelParams, _pad2)),
        ];
        assert_eq!(members.len(), want.len());
        for ((got, off), (name, want_off)) in members.iter().zip(want) {
            assert_eq!((got.as_str(), *off as usize), (name, want_off));
        }

        let (size, members) = wgsl_layout(&module, "PosteriorParams");
        assert_eq!(size as usize, size_of::<PosteriorParams>());
        assert_eq!(size % 16, 0);
        assert_eq!(align_of::<PosteriorParams>(), 4);
        let want = [
            ("rows", offset_of!(PosteriorParams, rows)),
            ("n", offset_of!(PosteriorParams, n)),
            ("panel_start", offset_of!(PosteriorParams, panel_start)),
            ("panel_end", offset_of!(PosteriorParams, panel_end)),
            ("flags", offset_of!(PosteriorParams, flags)),
            ("s2", offset_of!(PosteriorParams, s2)),
            ("_pad0", offset_of!(PosteriorParams, _pad0)),
            ("_pad1", offset_of!(PosteriorParams, _pad1)),
        ];
        assert_eq!(members.len(), want.len());
        for ((got, off), (name, want_off)) in members.iter().zip(want) {
            assert_eq!((got.as_str(), *off as usize), (name, want_off));
        }
    }

    #[test]
    fn flags_match_the_prelude() {
        let module = parse("posterior", POSTERIOR);
        let value = |name: &str| {
            let (_, c) = module
                .constants
                .iter()
                .find(|(_, c)| c.name.as_deref() == Some(name))
                .unwrap();
            match module.global_expressions[c.init] {
                naga::Expression::Literal(naga::Literal::U32(v)) => v,
                ref e => panic!("{name}: {e:?}"),
            }
        };
        assert_eq!(value("FLAG_FIRST_PANEL"), FLAG_FIRST_PANEL);
        assert_eq!(value("FLAG_LAST_PANEL"), FLAG_LAST_PANEL);
        assert_eq!(value("PB_ROWS"), POSTERIOR_ROWS);
        assert_eq!(value("PB_THREADS"), INVOCATIONS);
    }
}
