// The sparse fit's streaming product for one tile of labeled rows, from its kernel block
// ks (rows x m, row-major, against the m inducing points):
//   S_tile = ks^T ks  (m x m, only the 64 x 64 blocks on and below the diagonal)
//   b_tile = ks^T y   (m)
// in f32, which the host adds to its f64 sums tile after tile (so the result is deterministic).
//
// One 16 x 16 workgroup per 64 x 64 block (bi, bj), bi >= bj, numbered q = bi (bi + 1) / 2 + bj;
// block q is written to out[q * 4096 ..], row-major (row = column of block bi). Each thread owns
// a 4 x 4 register tile, as in posterior.wgsl. The sum over the tile's rows is taken in chunks of
// GB_CHUNK rows added to a running total, so the f32 rounding grows with GB_CHUNK + rows /
// GB_CHUNK, not with the tile. The diagonal workgroups also compute b for their 64 columns,
// written after the blocks: out[blocks * 4096 + column].
//
// Fixed-length inner loops are unrolled (see the note on llvmpipe's loop cap in posterior.wgsl):
// an invocation runs about rows / 16 + rows / 4 loop iterations, so the host keeps tiles well
// under 65,535 rows.

struct GramParams {
    // Labeled rows in this tile.
    rows: u32,
    // Inducing points (columns of ks).
    m: u32,
    // 64 x 64 blocks on and below the diagonal: nb (nb + 1) / 2, nb = ceil(m / 64).
    blocks: u32,
    _pad0: u32,
}

const GB_SIDE: u32 = 64u;
const GB_K: u32 = 16u;
const GB_CHUNK: u32 = 256u;
const GB_THREADS: u32 = 256u;

@group(0) @binding(0) var<uniform> params: GramParams;
@group(0) @binding(1) var<storage, read> ks: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// tile_a[k * 16 + g] holds ks[row k of the step][ci + 4g .. ci + 4g + 4] (tile_b likewise at cj).
var<workgroup> tile_a: array<vec4<f32>, 256>;
var<workgroup> tile_b: array<vec4<f32>, 256>;
// The four partial sums of b per column (diagonal workgroups).
var<workgroup> partial_b: array<f32, 256>;

// ks[row][col..col + 4], zero outside the block.
fn load4(row: u32, col: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (row < params.rows) {
        let m = params.m;
        let base = row * m;
        if (col < m) {
            v.x = ks[base + col];
        }
        if (col + 1u < m) {
            v.y = ks[base + col + 1u];
        }
        if (col + 2u < m) {
            v.z = ks[base + col + 2u];
        }
        if (col + 3u < m) {
            v.w = ks[base + col + 3u];
        }
    }
    return v;
}

// Four contraction steps k0..k0+4 of the thread's 4 x 4 tile.
fn mac4(acc: ptr<function, array<vec4<f32>, 4>>, k0: u32, ly: u32, lx: u32) {
    var av = tile_a[k0 * 16u + ly];
    var bv = tile_b[k0 * 16u + lx];
    (*acc)[0] += av.x * bv;
    (*acc)[1] += av.y * bv;
    (*acc)[2] += av.z * bv;
    (*acc)[3] += av.w * bv;
    av = tile_a[(k0 + 1u) * 16u + ly];
    bv = tile_b[(k0 + 1u) * 16u + lx];
    (*acc)[0] += av.x * bv;
    (*acc)[1] += av.y * bv;
    (*acc)[2] += av.z * bv;
    (*acc)[3] += av.w * bv;
    av = tile_a[(k0 + 2u) * 16u + ly];
    bv = tile_b[(k0 + 2u) * 16u + lx];
    (*acc)[0] += av.x * bv;
    (*acc)[1] += av.y * bv;
    (*acc)[2] += av.z * bv;
    (*acc)[3] += av.w * bv;
    av = tile_a[(k0 + 3u) * 16u + ly];
    bv = tile_b[(k0 + 3u) * 16u + lx];
    (*acc)[0] += av.x * bv;
    (*acc)[1] += av.y * bv;
    (*acc)[2] += av.z * bv;
    (*acc)[3] += av.w * bv;
}

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let rows = params.rows;
    // Block (bi, bj) from q = bi (bi + 1) / 2 + bj, the float root corrected by one either way.
    let q = wg.x;
    var bi = u32((sqrt(8.0 * f32(q) + 1.0) - 1.0) * 0.5);
    if ((bi + 1u) * (bi + 2u) / 2u <= q) {
        bi += 1u;
    }
    if (bi * (bi + 1u) / 2u > q) {
        bi -= 1u;
    }
    let bj = q - bi * (bi + 1u) / 2u;
    let ci = bi * GB_SIDE;
    let cj = bj * GB_SIDE;
    // Staging: thread t loads row t / 16 of the step, columns 4 (t % 16) .. + 4 of each side.
    let sk = t / 16u;
    let sg = t % 16u;

    var total = array<vec4<f32>, 4>();
    for (var c0 = 0u; c0 < rows; c0 += GB_CHUNK) {
        let cend = min(c0 + GB_CHUNK, rows);
        var acc = array<vec4<f32>, 4>();
        for (var k0 = c0; k0 < cend; k0 += GB_K) {
            // Rows past cend (the next chunk's) are staged as zero.
            var a = vec4<f32>(0.0);
            var b = vec4<f32>(0.0);
            if (k0 + sk < cend) {
                a = load4(k0 + sk, ci + 4u * sg);
                b = load4(k0 + sk, cj + 4u * sg);
            }
            tile_a[sk * 16u + sg] = a;
            tile_b[sk * 16u + sg] = b;
            workgroupBarrier();
            mac4(&acc, 0u, lid.y, lid.x);
            mac4(&acc, 4u, lid.y, lid.x);
            mac4(&acc, 8u, lid.y, lid.x);
            mac4(&acc, 12u, lid.y, lid.x);
            workgroupBarrier();
        }
        total[0] += acc[0];
        total[1] += acc[1];
        total[2] += acc[2];
        total[3] += acc[3];
    }
    let base = q * GB_SIDE * GB_SIDE + lid.y * 4u * GB_SIDE + lid.x * 4u;
    for (var i = 0u; i < 4u; i++) {
        let o = base + i * GB_SIDE;
        out[o] = total[i].x;
        out[o + 1u] = total[i].y;
        out[o + 2u] = total[i].z;
        out[o + 3u] = total[i].w;
    }

    if (bi == bj) {
        // b for columns ci .. ci + 64: thread t sums rows = t / 64 (mod 4) of column t % 64.
        let col = ci + t % GB_SIDE;
        let part = t / GB_SIDE;
        var tb = 0.0;
        if (col < params.m) {
            for (var c0 = 0u; c0 < rows; c0 += GB_CHUNK) {
                let cend = min(c0 + GB_CHUNK, rows);
                var s = 0.0;
                for (var r = c0 + part; r < cend; r += 4u) {
                    s += ks[r * params.m + col] * y[r];
                }
                tb += s;
            }
        }
        partial_b[t] = tb;
        workgroupBarrier();
        if (t < GB_SIDE && col < params.m) {
            let sum = (partial_b[t] + partial_b[t + 64u]) + (partial_b[t + 128u] + partial_b[t + 192u]);
            out[params.blocks * GB_SIDE * GB_SIDE + col] = sum;
        }
    }
}
