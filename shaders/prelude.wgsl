// Shared by every poolrank shader (prepended with concat! in src/backend/gpu/shaders.rs).
// Each uniform struct here has a #[repr(C)] mirror in that file; a unit test checks that the
// sizes and member offsets agree with naga's layout.

// One dispatch of a cross-kernel block: `rows` pool rows against the `n` labeled rows.
struct KernelParams {
    rows: u32,
    n: u32,
    // u32 words per fingerprint row, or f32 features per dense row.
    width: u32,
    _pad0: u32,
    // Signal variance: the block holds s2 * k(pool, train).
    s2: f32,
    // 1 / lengthscale (dense kernels only).
    inv_ls: f32,
    _pad1: u32,
    _pad2: u32,
}

// One dispatch of the posterior over one panel of W = L^-1 (rows panel_start..panel_end, stored
// row-major with panel_end columns, since W is lower triangular).
struct PosteriorParams {
    rows: u32,
    n: u32,
    panel_start: u32,
    panel_end: u32,
    // FLAG_FIRST_PANEL | FLAG_LAST_PANEL.
    flags: u32,
    // Prior variance s2 * k(x, x) = s2 for every kernel poolrank has.
    s2: f32,
    _pad0: u32,
    _pad1: u32,
}

// The first panel writes the mean and starts the sum of squares; the others add to it.
const FLAG_FIRST_PANEL: u32 = 1u;
// The last panel turns the sum of squares into the variance.
const FLAG_LAST_PANEL: u32 = 2u;
