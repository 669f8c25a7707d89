// The acquisition and a per-workgroup top-k over the posterior of one chunk of pool rows.
//
// Each workgroup owns SB_ROWS rows: it scores them (rows flagged in `skip`, the labeled and
// pending ones, and rows past the end are left out), sorts them in workgroup memory by score,
// best first, ties by row (a bitonic sort on an order-preserving u32 key of the score), and
// writes its first `keep` entries. The host merges those (keep x workgroups values instead of
// one per row) with the same order, so the chunk's top `keep` is exact.
//
// With FLAG_SURVIVORS the workgroups own the survivors of the bound pass instead (entry e of
// workgroup w is entry (w * SB_ROWS + e) / 64 of lane (w * SB_ROWS + e) % 64), dispatched
// indirectly, so only they are scored; a candidate's row is still its chunk row.
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
// The bound pass's survivors by lane, and its survey (counts first).
@group(0) @binding(5) var<storage, read> survivors: array<u32>;
@group(0) @binding(6) var<storage, read> survey: array<u32>;

var<workgroup> keys: array<u32, 1024>;
var<workgroup> rows: array<u32, 1024>;

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
    let pruned = (params.flags & FLAG_SURVIVORS) != 0u;
    for (var e = t; e < SB_ROWS; e += SB_THREADS) {
        var row = base + e;
        if (pruned) {
            let lane = row % SURVIVOR_LANES;
            let pos = row / SURVIVOR_LANES;
            row = NO_ROW;
            if (pos < survey[lane]) {
                row = survivors[lane * params.lane_cap + pos];
            }
        }
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
