//! The WGSL sources (real files under `shaders/`, each prefixed with `shaders/prelude.wgsl`),
//! the workgroup shapes the host plans dispatches with, and the `#[repr(C)]` mirrors of the
//! shaders' uniform structs.

use bytemuck::{Pod, Zeroable};

use crate::acquisition::Acquisition;

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

/// The acquisition and the per-workgroup top-k.
pub const SELECT: &str = concat!(
    include_str!("../../../shaders/prelude.wgsl"),
    include_str!("../../../shaders/acquire.wgsl"),
    include_str!("../../../shaders/select.wgsl")
);

/// The pruned pass's bound of each row's score from its mean, and the survivors list.
pub const BOUND: &str = concat!(
    include_str!("../../../shaders/prelude.wgsl"),
    include_str!("../../../shaders/acquire.wgsl"),
    include_str!("../../../shaders/bound.wgsl")
);

/// The sparse fit's per-tile product `KᵀK` (lower block triangle) and `Kᵀy`.
pub const GRAM: &str = concat!(
    include_str!("../../../shaders/prelude.wgsl"),
    include_str!("../../../shaders/gram.wgsl")
);

/// Every shader with its name, for validation.
#[cfg(test)]
pub const ALL: [(&str, &str); 6] = [
    ("popcount", POPCOUNT),
    ("dense", DENSE),
    ("posterior", POSTERIOR),
    ("select", SELECT),
    ("bound", BOUND),
    ("gram", GRAM),
];

/// Side of the square block of `KᵀK` one gram workgroup computes (`GB_SIDE`).
pub const GRAM_SIDE: u32 = 64;

/// Mirror of the WGSL `GramParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct GramParams {
    /// Labeled rows in this tile.
    pub rows: u32,
    /// Inducing points.
    pub m: u32,
    /// Blocks on and below the diagonal, `nb (nb + 1) / 2` with `nb = ⌈m / 64⌉`.
    pub blocks: u32,
    /// Padding.
    pub _pad0: u32,
}

/// Pool rows one select workgroup scores and sorts (`SB_ROWS`); it keeps at most as many.
pub const SELECT_ROWS: u32 = 1024;

/// Bytes of one `Candidate` the select shader writes.
pub const CANDIDATE_BYTES: u64 = 16;

/// Side of the square block of `ks` one kernel-block workgroup computes (`KB_SIDE`, `DB_SIDE`).
pub const BLOCK_SIDE: u32 = 16;

/// Pool rows one posterior workgroup owns (`PB_ROWS`).
pub const POSTERIOR_ROWS: u32 = 64;

/// Invocations per workgroup of every shader (16 × 16).
pub const INVOCATIONS: u32 = 256;

/// Workgroup memory the largest shader declares (the posterior's three 4 KiB tiles).
pub const WORKGROUP_BYTES: u32 = 3 * 4096;

/// Bit 0 of [`PosteriorParams::flags`]: the first panel of `W` (starts the sum of squares).
pub const FLAG_FIRST_PANEL: u32 = 1;
/// Bit 1 of [`PosteriorParams::flags`]: the last panel of `W` (writes the variance).
pub const FLAG_LAST_PANEL: u32 = 2;
/// Bit 2 of [`PosteriorParams::flags`]: writes the mean.
pub const FLAG_MEAN: u32 = 4;
/// Bit 3 of [`PosteriorParams::flags`]: the mean only, no product with `W`.
pub const FLAG_NO_VARIANCE: u32 = 8;
/// Bit 4 of [`PosteriorParams::flags`] and [`SelectParams::flags`]: the rows are the bound
/// pass's survivors.
pub const FLAG_SURVIVORS: u32 = 16;

/// Lanes of the survivors list: a surviving chunk row `r` goes to lane `r % 64`, its place in
/// a posterior workgroup (`SURVIVOR_LANES`, equal to [`POSTERIOR_ROWS`]).
pub const SURVIVOR_LANES: u32 = 64;
/// Words of the bound pass's survey: the lanes' counts, then the posterior's and the select's
/// indirect dispatch arguments (`x, y, z` each), then the survivors' total, padded.
pub const SURVEY_WORDS: u32 = 72;
/// Word of the survey where the posterior's dispatch arguments start.
pub const SURVEY_POSTERIOR_ARGS: u32 = 64;
/// Word of the survey where the select's dispatch arguments start.
pub const SURVEY_SELECT_ARGS: u32 = 67;
/// Word of the survey that counts the survivors.
pub const SURVEY_TOTAL: u32 = 70;

/// The survey before a bound pass: no survivors, and dispatch arguments `(0, 1, 1)`.
pub fn empty_survey() -> [u32; SURVEY_WORDS as usize] {
    let mut words = [0; SURVEY_WORDS as usize];
    for args in [SURVEY_POSTERIOR_ARGS, SURVEY_SELECT_ARGS] {
        words[args as usize + 1] = 1;
        words[args as usize + 2] = 1;
    }
    words
}

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
    /// Entries per lane of the survivors list ([`FLAG_SURVIVORS`]).
    pub lane_cap: u32,
    /// Padding.
    pub _pad0: u32,
}

/// Mirror of the WGSL `SelectParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct SelectParams {
    /// Rows in this dispatch.
    pub rows: u32,
    /// Candidates each workgroup keeps (at most [`SELECT_ROWS`]).
    pub keep: u32,
    /// The acquisition's code ([`acquisition_code`]).
    pub acq: u32,
    /// Round (keys the random draws).
    pub round: u32,
    /// Low half of the seed.
    pub seed_lo: u32,
    /// High half of the seed.
    pub seed_hi: u32,
    /// Low half of the global index of row 0.
    pub start_lo: u32,
    /// High half of the global index of row 0.
    pub start_hi: u32,
    /// `beta` (UCB) or `xi` (EI, PI).
    pub param: f32,
    /// Best standardised label (EI, PI).
    pub best: f32,
    /// The bound pass keeps the rows whose bound is not below it.
    pub threshold: f32,
    /// Prior variance (the bound pass).
    pub s2: f32,
    /// [`FLAG_SURVIVORS`]: the select scores the bound pass's survivors.
    pub flags: u32,
    /// Entries per lane of the survivors list.
    pub lane_cap: u32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
}

/// The shader's `ACQ_*` code and parameter of an acquisition.
pub fn acquisition_code(acq: Acquisition) -> (u32, f32) {
    match acq {
        Acquisition::Greedy => (0, 0.0),
        Acquisition::Ucb { beta } => (1, beta),
        Acquisition::Ei { xi } => (2, xi),
        Acquisition::Pi { xi } => (3, xi),
        Acquisition::Variance => (4, 0.0),
        Acquisition::ThompsonMarginal => (5, 0.0),
        // Their pool pass ranks by the shortlist's quantile, a UCB.
        Acquisition::Thompson | Acquisition::Qpo { .. } => (1, crate::acquisition::SCREEN_BETA),
        Acquisition::Random => (6, 0.0),
    }
}

/// The score behind the select shader's order-preserving key (NaN for the key of a NaN).
pub fn key_to_score(key: u32) -> f32 {
    if key == 1 {
        f32::NAN
    } else if key & 0x8000_0000 != 0 {
        f32::from_bits(key & 0x7fff_ffff)
    } else {
        f32::from_bits(!key)
    }
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
            ("lane_cap", offset_of!(PosteriorParams, lane_cap)),
            ("_pad0", offset_of!(PosteriorParams, _pad0)),
        ];
        assert_eq!(members.len(), want.len());
        for ((got, off), (name, want_off)) in members.iter().zip(want) {
            assert_eq!((got.as_str(), *off as usize), (name, want_off));
        }
    }

    #[test]
    fn select_params_mirror_matches_the_wgsl_layout() {
        // The select and bound shaders share the struct (and the acquisition code).
        for (name, src) in [("select", SELECT), ("bound", BOUND)] {
            select_params_match(&parse(name, src));
        }
    }

    fn select_params_match(module: &naga::Module) {
        use std::mem::{offset_of, size_of};
        let (size, members) = wgsl_layout(module, "SelectParams");
        assert_eq!(size as usize, size_of::<SelectParams>());
        assert_eq!(size % 16, 0);
        let want = [
            ("rows", offset_of!(SelectParams, rows)),
            ("keep", offset_of!(SelectParams, keep)),
            ("acq", offset_of!(SelectParams, acq)),
            ("round", offset_of!(SelectParams, round)),
            ("seed_lo", offset_of!(SelectParams, seed_lo)),
            ("seed_hi", offset_of!(SelectParams, seed_hi)),
            ("start_lo", offset_of!(SelectParams, start_lo)),
            ("start_hi", offset_of!(SelectParams, start_hi)),
            ("param", offset_of!(SelectParams, param)),
            ("best", offset_of!(SelectParams, best)),
            ("threshold", offset_of!(SelectParams, threshold)),
            ("s2", offset_of!(SelectParams, s2)),
            ("flags", offset_of!(SelectParams, flags)),
            ("lane_cap", offset_of!(SelectParams, lane_cap)),
            ("_pad0", offset_of!(SelectParams, _pad0)),
            ("_pad1", offset_of!(SelectParams, _pad1)),
        ];
        assert_eq!(members.len(), want.len());
        for ((got, off), (name, want_off)) in members.iter().zip(want) {
            assert_eq!((got.as_str(), *off as usize), (name, want_off));
        }
        let acqs = [
            ("ACQ_GREEDY", Acquisition::Greedy),
            ("ACQ_UCB", Acquisition::Ucb { beta: 2.0 }),
            ("ACQ_EI", Acquisition::Ei { xi: 0.0 }),
            ("ACQ_PI", Acquisition::Pi { xi: 0.0 }),
            ("ACQ_VARIANCE", Acquisition::Variance),
            ("ACQ_THOMPSON", Acquisition::ThompsonMarginal),
            ("ACQ_RANDOM", Acquisition::Random),
        ];
        for (name, acq) in acqs {
            assert_eq!(constant(module, name), acquisition_code(acq).0, "{name}");
        }
        assert_eq!(constant(module, "FLAG_SURVIVORS"), FLAG_SURVIVORS);
        assert_eq!(constant(module, "SURVIVOR_LANES"), SURVIVOR_LANES);
    }

    #[test]
    fn select_and_bound_constants_match() {
        let module = parse("select", SELECT);
        let (size, _) = wgsl_layout(&module, "Candidate");
        assert_eq!(u64::from(size), CANDIDATE_BYTES);
        assert_eq!(constant(&module, "SB_ROWS"), SELECT_ROWS);
        assert_eq!(constant(&module, "SB_THREADS"), INVOCATIONS);
        let module = parse("bound", BOUND);
        assert_eq!(constant(&module, "BD_THREADS"), INVOCATIONS);
        assert_eq!(constant(&module, "SURVEY_WORDS"), SURVEY_WORDS);
        assert_eq!(
            constant(&module, "SURVEY_POSTERIOR_ARGS"),
            SURVEY_POSTERIOR_ARGS
        );
        assert_eq!(constant(&module, "SURVEY_SELECT_ARGS"), SURVEY_SELECT_ARGS);
        assert_eq!(constant(&module, "SURVEY_TOTAL"), SURVEY_TOTAL);
        // The survey's words: counts, two sets of dispatch arguments, the total, in order.
        assert_eq!(SURVEY_POSTERIOR_ARGS, SURVIVOR_LANES);
        assert_eq!(SURVEY_SELECT_ARGS, SURVEY_POSTERIOR_ARGS + 3);
        assert_eq!(SURVEY_TOTAL, SURVEY_SELECT_ARGS + 3);
        const { assert!(SURVEY_TOTAL < SURVEY_WORDS) };
        assert_eq!(SURVIVOR_LANES, POSTERIOR_ROWS);
        let empty = empty_survey();
        assert_eq!(empty[SURVEY_POSTERIOR_ARGS as usize..][..3], [0, 1, 1]);
        assert_eq!(empty[SURVEY_SELECT_ARGS as usize..][..3], [0, 1, 1]);
        assert_eq!(empty[SURVEY_TOTAL as usize], 0);
    }

    #[test]
    fn keys_invert_to_their_scores() {
        // The shader's order_key, here in Rust: the unsigned order of keys is the float order.
        let key = |s: f32| {
            let b = s.to_bits();
            if b & 0x7fff_ffff > 0x7f80_0000 {
                1
            } else if b & 0x8000_0000 != 0 {
                !b
            } else {
                b | 0x8000_0000
            }
        };
        let scores = [
            f32::NEG_INFINITY,
            -3.5,
            -1e-30,
            -0.0,
            0.0,
            1e-30,
            2.0,
            f32::INFINITY,
        ];
        for w in scores.windows(2) {
            assert!(key(w[0]) <= key(w[1]), "{} {}", w[0], w[1]);
        }
        for s in scores {
            assert_eq!(key_to_score(key(s)).to_bits(), s.to_bits());
        }
        assert!(key(f32::NAN) < key(f32::NEG_INFINITY) && key(f32::NAN) > 0);
        assert!(key_to_score(key(f32::NAN)).is_nan());
    }

    fn constant(module: &naga::Module, name: &str) -> u32 {
        let (_, c) = module
            .constants
            .iter()
            .find(|(_, c)| c.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no constant {name}"));
        match module.global_expressions[c.init] {
            naga::Expression::Literal(naga::Literal::U32(v)) => v,
            ref e => panic!("{name}: {e:?}"),
        }
    }

    #[test]
    fn gram_params_mirror_matches_the_wgsl_layout() {
        use std::mem::{offset_of, size_of};
        let module = parse("gram", GRAM);
        let (size, members) = wgsl_layout(&module, "GramParams");
        assert_eq!(size as usize, size_of::<GramParams>());
        assert_eq!(size % 16, 0);
        let want = [
            ("rows", offset_of!(GramParams, rows)),
            ("m", offset_of!(GramParams, m)),
            ("blocks", offset_of!(GramParams, blocks)),
            ("_pad0", offset_of!(GramParams, _pad0)),
        ];
        assert_eq!(members.len(), want.len());
        for ((got, off), (name, want_off)) in members.iter().zip(want) {
            assert_eq!((got.as_str(), *off as usize), (name, want_off));
        }
        assert_eq!(constant(&module, "GB_SIDE"), GRAM_SIDE);
        assert_eq!(constant(&module, "GB_THREADS"), INVOCATIONS);
    }

    #[test]
    fn flags_match_the_prelude() {
        let module = parse("posterior", POSTERIOR);
        let value = |name: &str| constant(&module, name);
        assert_eq!(value("FLAG_FIRST_PANEL"), FLAG_FIRST_PANEL);
        assert_eq!(value("FLAG_LAST_PANEL"), FLAG_LAST_PANEL);
        assert_eq!(value("FLAG_MEAN"), FLAG_MEAN);
        assert_eq!(value("FLAG_NO_VARIANCE"), FLAG_NO_VARIANCE);
        assert_eq!(value("FLAG_SURVIVORS"), FLAG_SURVIVORS);
        assert_eq!(value("PB_ROWS"), POSTERIOR_ROWS);
        assert_eq!(value("PB_THREADS"), INVOCATIONS);
    }
}
