// The acquisition of one row, shared by the select and bound shaders (each declares `params`,
// a SelectParams uniform).

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
