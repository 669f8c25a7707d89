// The acquisition and a per-workgroup top-k over the posterior of one chunk of pool rows.
//
// Each workgroup owns SB_ROWS rows: it scores them (rows flagged in `skip`, the labeled and
// pending ones, and rows past the end are left out), sorts them in workgroup memory by score,
// best first, ties by row (a bitonic sort on an order-preserving u32 key of the score), and
// writes its first `keep` entries. The host merges those (keep x workgroups values instead of
// one per row) with the same order, so the chunk's top `keep` is exact.
//
// Keys: an f32 score maps to a u32 whose unsigned order is the float order; NaN maps to 1,
// below every number, as the CPU's top-k puts NaN last; an absent row is key 0 with row
// 0xffffffff, after everything.

const SB_ROWS: u32 = 1024u;
const SB_THREADS: u32 = 256u;
const NO_ROW: u32 = 0xffffffffu;

struct Candidate {
    key: u32,
    row: u32,
    mean: f32,
    variance: f32,
}

@group(0) @binding(0) var<uniform> params: SelectParams;
@group(0) @binding(1) var<storage, read> mean_in: array<f32>;
@group(0) @binding(2) var<storage, read> var_in: array<f32>;
// Bit r of word r / 32: row r is not a candidate.
@group(0) @binding(3) var<storage, read> skip: array<u32>;
@group(0) @binding(4) var<storage, read_write> best_out: array<Candidate>;

var<workgroup> keys: array<u32, 1024>;
var<workgroup> rows: array<u32, 1024>;

fn acquire(mean: f32, variance: f32, row: u32) -> f32 {
    let sd = sqrt(max(variance, 0.0));
    switch params.acq {
        case ACQ_GREEDY: {
            return mean;
        }
        case ACQ_UCB: {
            return mean + params.param * sd;
        }
        case ACQ_EI: {
            let gain = mean - params.best - params.param;
            if (sd > 0.0) {
                let z = gain / sd;
                return gain * normal_cdf(z) + sd * normal_pdf(z);
            }
            return max(gain, 0.0);
        }
        case ACQ_PI: {
            let gain = mean - params.best - params.param;
            if (sd > 0.0) {
                return normal_cdf(gain / sd);
            }
            return select(0.0, 1.0, gain > 0.0);
        }
        case ACQ_VARIANCE: {
            return max(variance, 0.0);
        }
        default: {
            // The global index, 64 bits in halves.
            let lo = params.start_lo + row;
            let hi = params.start_hi + select(0u, 1u, lo < row);
            if (params.acq == ACQ_THOMPSON) {
                let w1 = draw_u32(params.seed_lo, params.seed_hi, params.round, lo, hi, 1u);
                let w2 = draw_u32(params.seed_lo, params.seed_hi, params.round, lo, hi, 2u);
                let u1 = f32((w1 >> 8u) + 1u) * (1.0 / 16777216.0);
                let u2 = uniform01(w2);
                // cos(2 pi u2) = -cos(2 pi u2 - pi): the argument stays in [-pi, pi), where
                // Vulkan bounds the error of cos.
                let c = -cos(6.28318531 * u2 - 3.14159265);
                return mean + sd * (sqrt(-2.0 * log(u1)) * c);
            }
            return uniform01(draw_u32(params.seed_lo, params.seed_hi, params.round, lo, hi, 0u));
        }
    }
}

fn order_key(s: f32) -> u32 {
    let b = bitcast<u32>(s);
    if ((b & 0x7fffffffu) > 0x7f800000u) {
        return 1u;
    }
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// Whether entry (ka, ra) comes before (kb, rb): higher score first, then lower row.
fn before(ka: u32, ra: u32, kb: u32, rb: u32) -> bool {
    return ka > kb || (ka == kb && ra < rb);
}

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let base = wid.x * SB_ROWS;
    for (var e = t; e < SB_ROWS; e += SB_THREADS) {
        let row = base + e;
        var key = 0u;
        var at = NO_ROW;
        if (row < params.rows && (skip[row >> 5u] & (1u << (row & 31u))) == 0u) {
            key = order_key(acquire(mean_in[row], var_in[row], row));
            at = row;
        }
        keys[e] = key;
        rows[e] = at;
    }
    workgroupBarrier();

    for (var size = 2u; size <= SB_ROWS; size <<= 1u) {
        for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
            for (var p = t; p < SB_ROWS / 2u; p += SB_THREADS) {
                let i = (p / stride) * 2u * stride + p % stride;
                let j = i + stride;
                let ki = keys[i];
                let ri = rows[i];
                let kj = keys[j];
                let rj = rows[j];
                // Blocks with bit `size` clear end best first, the others worst first, so each
                // merge step sees a bitonic sequence; the last merge (size = SB_ROWS) is best first.
                let first = (i & size) == 0u;
                if (before(kj, rj, ki, ri) == first) {
                    keys[i] = kj;
                    rows[i] = rj;
                    keys[j] = ki;
                    rows[j] = ri;
                }
            }
            workgroupBarrier();
        }
    }

    for (var e = t; e < params.keep; e += SB_THREADS) {
        let row = rows[e];
        var c = Candidate(keys[e], row, 0.0, 0.0);
        if (row != NO_ROW) {
            c.mean = mean_in[row];
            c.variance = var_in[row];
        }
        best_out[wid.x * params.keep + e] = c;
    }
}
