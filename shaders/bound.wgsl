// The bound pass of a pruned chunk: each row's score bounded over every variance in [0, s2]
// (the prior, which bounds every posterior variance, also as the posterior shader computes it)
// from its mean alone, and the rows whose bound is not below the threshold (and that are not
// skipped) appended to the survivors list, by lane (prelude.wgsl). The survey also gets the
// indirect dispatch sizes of the posterior (the longest lane) and of the select (64 entries per
// posterior workgroup, SB_ROWS per select workgroup); the host sets it to 0 / 1 before.
//
// The bound must hold for the scores the select shader computes, in its own float arithmetic,
// which another pipeline may round differently (fused or not, a few ulps in sqrt, exp, log):
// - greedy, random: the score, exact (the mean itself; integer draws scaled by 2^-24);
// - variance: s2, which `max(s2 - sum, 0)` never exceeds;
// - UCB, Thompson: the score is mean + sd * c with a constant c of either sign, so it lies
//   between mean (sd = 0) and the score at s2, plus a margin for the rounding of the product
//   and sum (2^-16 of the terms' magnitudes);
// - EI: at least max(gain, 0) at every sd; the score at s2 nudged up as the CPU does (1/1024
//   of itself) plus 2^-16 of |gain| + sd, which covers the cancellation between its two terms;
// - PI: 1 above the incumbent (the computed cdf never exceeds 1), else the score at s2 nudged
//   up as the CPU does.
// A NaN bound proves nothing and survives.

const BD_THREADS: u32 = 256u;

@group(0) @binding(0) var<uniform> params: SelectParams;
@group(0) @binding(1) var<storage, read> mean_in: array<f32>;
// Bit r of word r / 32: row r is not a candidate.
@group(0) @binding(2) var<storage, read> skip: array<u32>;
@group(0) @binding(3) var<storage, read_write> survivors: array<u32>;
@group(0) @binding(4) var<storage, read_write> survey: array<atomic<u32>>;

fn bound_of(mean: f32, row: u32) -> f32 {
    let hi = acquire(mean, params.s2, row);
    let sd = sqrt(max(params.s2, 0.0));
    switch params.acq {
        case ACQ_UCB, ACQ_THOMPSON: {
            return max(mean, hi) + ((abs(mean) + abs(hi - mean)) * (1.0 / 65536.0) + 1e-30);
        }
        case ACQ_EI: {
            let gain = mean - params.best - params.param;
            let b = max(hi, max(gain, 0.0));
            return b + (abs(b) * (1.0 / 1024.0) + (abs(gain) + sd) * (1.0 / 65536.0) + 1e-30);
        }
        case ACQ_PI: {
            let gain = mean - params.best - params.param;
            if (gain > 0.0) {
                return 1.0;
            }
            return hi + (abs(hi) * (1.0 / 1024.0) + 1e-30);
        }
        case ACQ_VARIANCE: {
            return max(params.s2, 0.0);
        }
        default: {
            // Greedy and random do not read the variance.
            return acquire(mean, 0.0, row);
        }
    }
}

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let row = wid.x * BD_THREADS + t;
    if (row >= params.rows || (skip[row >> 5u] & (1u << (row & 31u))) != 0u) {
        return;
    }
    let b = bound_of(mean_in[row], row);
    if (b < params.threshold) {
        return;
    }
    let lane = row % SURVIVOR_LANES;
    let pos = atomicAdd(&survey[lane], 1u);
    survivors[lane * params.lane_cap + pos] = row;
    atomicMax(&survey[SURVEY_POSTERIOR_ARGS], pos + 1u);
    atomicMax(&survey[SURVEY_SELECT_ARGS], (pos + 16u) / 16u);
    atomicAdd(&survey[SURVEY_TOTAL], 1u);
}
