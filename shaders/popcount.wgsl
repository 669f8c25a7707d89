// The fingerprint cross-kernel: ks[i][j] = s2 * c / (na_i + nb_j - c), c = popcount(a_i & b_j),
// with 0/0 -> s2 (two empty fingerprints are identical). Tanimoto on bits and MinMax on counts
// (through the thermometer code the CPU builds) are both this kernel. Rows are u32 words, a u64
// word of the CPU layout being two u32 words, low half first.
//
// A 16 x 16 workgroup computes a 16 x 16 block of ks, staging 16 words of its 16 pool rows and
// 16 labeled rows in workgroup memory per step, so every word is read from memory once per block.

const KB_SIDE: u32 = 16u;
const KB_WORDS: u32 = 16u;

@group(0) @binding(0) var<uniform> params: KernelParams;
@group(0) @binding(1) var<storage, read> pool_words: array<u32>;
@group(0) @binding(2) var<storage, read> pool_norms: array<f32>;
@group(0) @binding(3) var<storage, read> train_words: array<u32>;
@group(0) @binding(4) var<storage, read> train_norms: array<f32>;
@group(0) @binding(5) var<storage, read_write> ks: array<f32>;

// tile_a[r * 4 + q] holds words 4q..4q+4 of the step for staged row r (tile_b likewise).
var<workgroup> tile_a: array<vec4<u32>, 64>;
var<workgroup> tile_b: array<vec4<u32>, 64>;

// Set bits of a & b, summed over the four lanes.
fn overlap(a: vec4<u32>, b: vec4<u32>) -> u32 {
    let c = countOneBits(a & b);
    return (c.x + c.y) + (c.z + c.w);
}

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let width = params.width;
    // The output this thread computes.
    let i = wg.y * KB_SIDE + lid.y;
    let j = wg.x * KB_SIDE + lid.x;
    // The labeled row this thread stages (the pool row it stages is its own row i).
    let jb = wg.x * KB_SIDE + lid.y;
    var c = 0u;
    for (var w0 = 0u; w0 < width; w0 += KB_WORDS) {
        let w = w0 + lid.x;
        var a = 0u;
        var b = 0u;
        if (i < params.rows && w < width) {
            a = pool_words[i * width + w];
        }
        if (jb < params.n && w < width) {
            b = train_words[jb * width + w];
        }
        tile_a[lid.y * 4u + lid.x / 4u][lid.x % 4u] = a;
        tile_b[lid.y * 4u + lid.x / 4u][lid.x % 4u] = b;
        workgroupBarrier();
        // Unrolled by hand: see the note on llvmpipe's loop cap in posterior.wgsl.
        let ra = lid.y * 4u;
        let rb = lid.x * 4u;
        c += overlap(tile_a[ra], tile_b[rb]) + overlap(tile_a[ra + 1u], tile_b[rb + 1u]);
        c += overlap(tile_a[ra + 2u], tile_b[rb + 2u]) + overlap(tile_a[ra + 3u], tile_b[rb + 3u]);
        workgroupBarrier();
    }
    if (i < params.rows && j < params.n) {
        let cf = f32(c);
        // The same operations in the same order as the CPU reference.
        let den = pool_norms[i] + train_norms[j] - cf;
        var value = params.s2;
        if (den != 0.0) {
            value = params.s2 * cf / den;
        }
        ks[i * params.n + j] = value;
    }
}
