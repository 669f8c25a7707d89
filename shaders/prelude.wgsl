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
    // Entries per lane of the survivors list (FLAG_SURVIVORS).
    lane_cap: u32,
    _pad0: u32,
}

// The first panel starts the sum of squares; the others add to it.
const FLAG_FIRST_PANEL: u32 = 1u;
// The last panel turns the sum of squares into the variance.
const FLAG_LAST_PANEL: u32 = 2u;
// Writes the mean (with the first panel, or alone with FLAG_NO_VARIANCE).
const FLAG_MEAN: u32 = 4u;
// Skips the product with W: the mean only.
const FLAG_NO_VARIANCE: u32 = 8u;
// The rows are the survivors of the bound pass, not rows 0..rows (see SURVIVOR_LANES).
const FLAG_SURVIVORS: u32 = 16u;

// ---- Survivors of the bound pass (shaders/bound.wgsl).
//
// A surviving chunk row r is appended to lane r % SURVIVOR_LANES, so that in the posterior it
// takes the same place in its 64-row workgroup as in the brute-force dispatch (workgroup g
// runs entry g of every lane): a row's variance goes through the very instructions, thread and
// register it gets in brute force, whatever rows share its workgroup. `survey` holds each
// lane's count, then the posterior's and the select's indirect dispatch arguments, then the
// total.
const SURVIVOR_LANES: u32 = 64u;
const SURVEY_POSTERIOR_ARGS: u32 = 64u;
const SURVEY_SELECT_ARGS: u32 = 67u;
const SURVEY_TOTAL: u32 = 70u;
const SURVEY_WORDS: u32 = 72u;
const NO_SURVIVOR: u32 = 0xffffffffu;

// ---- Acquisition (mirrors src/acquisition/mod.rs; the random words are bit for bit the CPU's).

// One dispatch of the acquisition and per-workgroup top-k over `rows` posterior rows.
struct SelectParams {
    rows: u32,
    // Candidates each workgroup keeps (at most SB_ROWS).
    keep: u32,
    // ACQ_* below.
    acq: u32,
    round: u32,
    seed_lo: u32,
    seed_hi: u32,
    // Global pool index of row 0 (keys the random draws).
    start_lo: u32,
    start_hi: u32,
    // beta (UCB) or xi (EI, PI).
    param: f32,
    // Best standardised label so far (EI, PI).
    best: f32,
    // The bound pass keeps rows whose bound is not below this.
    threshold: f32,
    // Prior variance (the bound pass).
    s2: f32,
    // FLAG_SURVIVORS: score the survivors of the bound pass.
    flags: u32,
    // Entries per lane of the survivors list.
    lane_cap: u32,
    _pad0: u32,
    _pad1: u32,
}

const ACQ_GREEDY: u32 = 0u;
const ACQ_UCB: u32 = 1u;
const ACQ_EI: u32 = 2u;
const ACQ_PI: u32 = 3u;
const ACQ_VARIANCE: u32 = 4u;
const ACQ_THOMPSON: u32 = 5u;
const ACQ_RANDOM: u32 = 6u;

// Wellons' lowbias32, as `hash32`.
fn hash32(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

// As `draw_u32(seed, round, index, stream)` with the 64-bit seed and index in halves.
fn draw_u32(seed_lo: u32, seed_hi: u32, round: u32, index_lo: u32, index_hi: u32, stream: u32) -> u32 {
    var h = hash32(seed_lo ^ 0x9e3779b9u);
    h = hash32(h ^ seed_hi);
    h = hash32(h ^ round);
    h = hash32(h ^ stream);
    h = hash32(h ^ index_lo);
    return hash32(h ^ index_hi);
}

// [0, 1) from the top 24 bits, exact in f32 (as `uniform`).
fn uniform01(word: u32) -> f32 {
    return f32(word >> 8u) * (1.0 / 16777216.0);
}

// Numerical Recipes' erfcc, as `erfc`.
fn erfc_nr(x: f32) -> f32 {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.2655122
        + t * (1.00002368
        + t * (0.37409196
        + t * (0.09678418
        + t * (-0.18628806
        + t * (0.27886807
        + t * (-1.13520398
        + t * (1.48851587
        + t * (-0.82215223
        + t * 0.17087277))))))));
    let r = t * exp(poly);
    return select(2.0 - r, r, x >= 0.0);
}

fn normal_pdf(z: f32) -> f32 {
    return 0.3989423 * exp(-0.5 * z * z);
}

fn normal_cdf(z: f32) -> f32 {
    return 0.5 * erfc_nr(-z * 0.70710678);
}
