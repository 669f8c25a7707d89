// The dense cross-kernels on f32 features: ks[i][j] = s2 * k(|x_i - y_j|^2), RBF or Matern 5/2
// chosen by the MATERN override when the pipeline is built. The squared distance is summed
// directly (not |x|^2 + |y|^2 - 2 x.y), which keeps small distances accurate in f32.
//
// Same blocking as popcount.wgsl: a 16 x 16 block of ks per workgroup, 16 features per step.

override MATERN: bool = false;

const DB_SIDE: u32 = 16u;
const DB_DIMS: u32 = 16u;

@group(0) @binding(0) var<uniform> params: KernelParams;
@group(0) @binding(1) var<storage, read> pool: array<f32>;
@group(0) @binding(2) var<storage, read> train: array<f32>;
@group(0) @binding(3) var<storage, read_write> ks: array<f32>;

// tile_a[r * 4 + q] holds features 4q..4q+4 of the step for staged row r (tile_b likewise).
var<workgroup> tile_a: array<vec4<f32>, 64>;
var<workgroup> tile_b: array<vec4<f32>, 64>;

fn sq(a: vec4<f32>, b: vec4<f32>) -> f32 {
    let d = a - b;
    return dot(d, d);
}

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let dim = params.width;
    let i = wg.y * DB_SIDE + lid.y;
    let j = wg.x * DB_SIDE + lid.x;
    let jb = wg.x * DB_SIDE + lid.y;
    var d2 = 0.0;
    for (var d0 = 0u; d0 < dim; d0 += DB_DIMS) {
        let d = d0 + lid.x;
        // Out-of-range features stage as 0 on both sides and add nothing.
        var a = 0.0;
        var b = 0.0;
        if (i < params.rows && d < dim) {
            a = pool[i * dim + d];
        }
        if (jb < params.n && d < dim) {
            b = train[jb * dim + d];
        }
        tile_a[lid.y * 4u + lid.x / 4u][lid.x % 4u] = a;
        tile_b[lid.y * 4u + lid.x / 4u][lid.x % 4u] = b;
        workgroupBarrier();
        // Unrolled by hand: see the note on llvmpipe's loop cap in posterior.wgsl.
        let ra = lid.y * 4u;
        let rb = lid.x * 4u;
        d2 += (sq(tile_a[ra], tile_b[rb]) + sq(tile_a[ra + 1u], tile_b[rb + 1u]))
            + (sq(tile_a[ra + 2u], tile_b[rb + 2u]) + sq(tile_a[ra + 3u], tile_b[rb + 3u]));
        workgroupBarrier();
    }
    if (i < params.rows && j < params.n) {
        let r2 = max(d2, 0.0) * params.inv_ls * params.inv_ls;
        var value: f32;
        if (MATERN) {
            let u = sqrt(5.0) * sqrt(r2);
            value = (1.0 + u + u * u / 3.0) * exp(-u);
        } else {
            value = exp(-0.5 * r2);
        }
        ks[i * params.n + j] = params.s2 * value;
    }
}
