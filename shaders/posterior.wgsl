// The posterior of a block of pool rows from its kernel block ks (rows x n, row-major):
//   mean = ks . alpha
//   var  = max(s2 - rowsum((ks . W^T)^2), 0),  W = L^-1 lower triangular.
// V = ks . W^T is a tiled GEMM through workgroup memory whose epilogue squares and sums each
// 64 x 64 tile of V in registers, so V is never written to memory. Because W[r][j] = 0 for
// j > r, the tile of V columns c0..c0+64 only runs the contraction over j < c0 + 64: the
// all-zero tiles of the triangle are skipped, halving the work.
//
// W may be split in panels of rows (when n^2 floats exceed one storage binding); one dispatch
// per panel, each adding its sum of squares to var_out, the last one turning it into the variance.
//
// With FLAG_SURVIVORS workgroup g owns entry g of each survivor lane (prelude.wgsl) instead
// of rows 64g..64g+64: a survivor sits at the place of its workgroup it has in brute force, and
// nothing of a row's arithmetic reads another row, so its variance has brute force's bits.
// FLAG_NO_VARIANCE skips the product (the mean alone, for the bound pass).
//
// A 16 x 16 workgroup owns 64 pool rows; each thread accumulates a 4 x 4 register tile of V
// (rows 4*lid.y.., columns 4*lid.x..) with vec4 reads from workgroup memory.
//
// The fixed-length inner loops are unrolled by hand (helper functions instead of loops): it
// saves the loop overhead on GPUs, and Mesa's llvmpipe caps the loop iterations one invocation
// may run (65,535 in all, after which every loop exits early and the results are wrong), so
// only the loops whose length grows with n remain: about (n / 64)^2 * 2 iterations.

const PB_ROWS: u32 = 64u;
const PB_COLS: u32 = 64u;
const PB_K: u32 = 16u;
const PB_THREADS: u32 = 256u;

@group(0) @binding(0) var<uniform> params: PosteriorParams;
@group(0) @binding(1) var<storage, read> ks: array<f32>;
@group(0) @binding(2) var<storage, read> alpha: array<f32>;
@group(0) @binding(3) var<storage, read> w_panel: array<f32>;
@group(0) @binding(4) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> var_out: array<f32>;
// The bound pass's survivors by lane, and its survey (counts first).
@group(0) @binding(6) var<storage, read> survivors: array<u32>;
@group(0) @binding(7) var<storage, read> survey: array<u32>;

// tile_k[k * 16 + g] holds ks rows 4g..4g+4 (of the workgroup's 64) at contraction index k.
var<workgroup> tile_k: array<vec4<f32>, 256>;
// tile_w[k * 16 + g] holds W rows (= V columns) 4g..4g+4 of the current tile at index k.
var<workgroup> tile_w: array<vec4<f32>, 256>;
// Per-row partial sums of the 16 threads sharing a row, for the final reductions.
var<workgroup> partial: array<f32, 1024>;

// Sums the 16 partial values each row's threads left in `partial` (call in uniform control flow).
fn reduce_rows(local: vec4<f32>, lid: vec3<u32>, t: u32) -> f32 {
    let base = lid.y * 64u + lid.x;
    partial[base] = local.x;
    partial[base + 16u] = local.y;
    partial[base + 32u] = local.z;
    partial[base + 48u] = local.w;
    workgroupBarrier();
    var s = 0.0;
    if (t < PB_ROWS) {
        let r = t * 16u;
        let a = vec4<f32>(partial[r], partial[r + 1u], partial[r + 2u], partial[r + 3u]);
        let b = vec4<f32>(partial[r + 4u], partial[r + 5u], partial[r + 6u], partial[r + 7u]);
        let c = vec4<f32>(partial[r + 8u], partial[r + 9u], partial[r + 10u], partial[r + 11u]);
        let d = vec4<f32>(partial[r + 12u], partial[r + 13u], partial[r + 14u], partial[r + 15u]);
        s = dot((a + b) + (c + d), vec4<f32>(1.0));
    }
    workgroupBarrier();
    return s;
}

// The chunk row at place m of workgroup g, or one past every row (NO_SURVIVOR) where none.
fn row_at(g: u32, m: u32) -> u32 {
    if ((params.flags & FLAG_SURVIVORS) != 0u) {
        if (g < survey[m]) {
            return survivors[m * params.lane_cap + g];
        }
        return NO_SURVIVOR;
    }
    return g * PB_ROWS + m;
}

// Stages ks[row_at(g, m)][j] and W[c0 + m][j] (zero outside the block) at contraction index sk.
fn stage(m: u32, sk: u32, j: u32, g: u32, c0: u32, kend: u32) {
    let row = row_at(g, m);
    var a = 0.0;
    if (row < params.rows && j < kend) {
        a = ks[row * params.n + j];
    }
    tile_k[sk * 16u + m / 4u][m % 4u] = a;
    let r = c0 + m;
    var b = 0.0;
    if (r < params.panel_end && j < kend) {
        b = w_panel[(r - params.panel_start) * params.panel_end + j];
    }
    tile_w[sk * 16u + m / 4u][m % 4u] = b;
}

// Four contraction steps k0..k0+4 of the thread's 4 x 4 tile.
fn mac4(acc: ptr<function, array<vec4<f32>, 4>>, k0: u32, ly: u32, lx: u32) {
    var av = tile_k[k0 * 16u + ly];
    var bv = tile_w[k0 * 16u + lx];
    (*acc)[0] += av.x * bv;
    (*acc)[1] += av.y * bv;
    (*acc)[2] += av.z * bv;
    (*acc)[3] += av.w * bv;
    av = tile_k[(k0 + 1u) * 16u + ly];
    bv = tile_w[(k0 + 1u) * 16u + lx];
    (*acc)[0] += av.x * bv;
    (*acc)[1] += av.y * bv;
    (*acc)[2] += av.z * bv;
    (*acc)[3] += av.w * bv;
    av = tile_k[(k0 + 2u) * 16u + ly];
    bv = tile_w[(k0 + 2u) * 16u + lx];
    (*acc)[0] += av.x * bv;
    (*acc)[1] += av.y * bv;
    (*acc)[2] += av.z * bv;
    (*acc)[3] += av.w * bv;
    av = tile_k[(k0 + 3u) * 16u + ly];
    bv = tile_w[(k0 + 3u) * 16u + lx];
    (*acc)[0] += av.x * bv;
    (*acc)[1] += av.y * bv;
    (*acc)[2] += av.z * bv;
    (*acc)[3] += av.w * bv;
}

// ks[row][j], or 0 past the last row of the dispatch.
fn ks_or_zero(row: u32, j: u32) -> f32 {
    if (row < params.rows) {
        return ks[row * params.n + j];
    }
    return 0.0;
}

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let n = params.n;
    let rows = params.rows;
    let g = wg.x;
    let p1 = params.panel_end;
    let product = (params.flags & FLAG_NO_VARIANCE) == 0u;
    // Staging coordinates: each thread loads 4 elements of each tile, one contraction index
    // (t % 16, so neighbouring threads read neighbouring words) and 4 rows 16 apart.
    let sk = t % PB_K;
    let sr = t / PB_K;

    var ssq = vec4<f32>(0.0);
    for (var c0 = params.panel_start; product && c0 < p1; c0 += PB_COLS) {
        // Only j < kend can meet a nonzero W[r][j] for the rows r < c0 + 64 of this tile.
        let kend = min(c0 + PB_COLS, p1);
        var acc = array<vec4<f32>, 4>();
        for (var k0 = 0u; k0 < kend; k0 += PB_K) {
            let j = k0 + sk;
            stage(sr, sk, j, g, c0, kend);
            stage(sr + 16u, sk, j, g, c0, kend);
            stage(sr + 32u, sk, j, g, c0, kend);
            stage(sr + 48u, sk, j, g, c0, kend);
            workgroupBarrier();
            mac4(&acc, 0u, lid.y, lid.x);
            mac4(&acc, 4u, lid.y, lid.x);
            mac4(&acc, 8u, lid.y, lid.x);
            mac4(&acc, 12u, lid.y, lid.x);
            workgroupBarrier();
        }
        ssq += vec4<f32>(
            dot(acc[0], acc[0]),
            dot(acc[1], acc[1]),
            dot(acc[2], acc[2]),
            dot(acc[3], acc[3]),
        );
    }

    let first = (params.flags & FLAG_FIRST_PANEL) != 0u;
    let with_mean = (params.flags & FLAG_MEAN) != 0u;
    var msum = vec4<f32>(0.0);
    if (with_mean) {
        let m = lid.y * 4u;
        let r = vec4<u32>(row_at(g, m), row_at(g, m + 1u), row_at(g, m + 2u), row_at(g, m + 3u));
        for (var j = lid.x; j < n; j += 16u) {
            let k = vec4<f32>(
                ks_or_zero(r.x, j),
                ks_or_zero(r.y, j),
                ks_or_zero(r.z, j),
                ks_or_zero(r.w, j),
            );
            msum += k * alpha[j];
        }
    }

    let s = reduce_rows(ssq, lid, t);
    var row = NO_SURVIVOR;
    if (t < PB_ROWS) {
        row = row_at(g, t);
    }
    if (product && row < rows) {
        var total = s;
        if (!first) {
            total += var_out[row];
        }
        if ((params.flags & FLAG_LAST_PANEL) != 0u) {
            var_out[row] = max(params.s2 - total, 0.0);
        } else {
            var_out[row] = total;
        }
    }
    if (with_mean) {
        let m = reduce_rows(msum, lid, t);
        if (row < rows) {
            mean_out[row] = m;
        }
    }
}
