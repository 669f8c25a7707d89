//! Fixture writers shared by the integration tests: every test makes its own small files.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use poolrank::backend::Scorer;
use poolrank::data::Features;
use poolrank::gp::{fit, FittedGp, GpParams, Inducing};
use poolrank::kernel::KernelKind;

/// A small deterministic generator (SplitMix64), so tests need no RNG crate.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Random sparse-ish fingerprints: each bit set with probability `p`.
pub fn random_bits(rng: &mut Rng, rows: usize, nbits: usize, p: f64) -> Features {
    let words = nbits.div_ceil(64);
    let mut data = vec![0u64; rows * words];
    for r in 0..rows {
        for b in 0..nbits {
            if rng.uniform() < p {
                data[r * words + b / 64] |= 1 << (b % 64);
            }
        }
    }
    Features::Bits { nbits, data }
}

/// Random count fingerprints with counts up to `max`.
pub fn random_counts(rng: &mut Rng, rows: usize, ndim: usize, p: f64, max: u32) -> Features {
    let mut indptr = vec![0];
    let (mut indices, mut values) = (vec![], vec![]);
    for _ in 0..rows {
        for f in 0..ndim {
            if rng.uniform() < p {
                indices.push(f as u32);
                // Mostly 1s, sometimes larger, as in Morgan counts.
                let v = if rng.uniform() < 0.7 {
                    1
                } else {
                    1 + rng.below(max as usize) as u32
                };
                values.push(v.min(max));
            }
        }
        indptr.push(indices.len());
    }
    Features::Counts {
        ndim,
        indptr,
        indices,
        values,
    }
}

/// Random dense features in [-1, 1).
pub fn random_dense(rng: &mut Rng, rows: usize, dim: usize) -> Features {
    Features::Dense {
        dim,
        data: (0..rows * dim)
            .map(|_| (rng.uniform() * 2.0 - 1.0) as f32)
            .collect(),
    }
}

/// Writes bit features as chemfp FPS text with ids `ids[i]`.
pub fn write_fps(path: &Path, f: &Features, ids: &[String]) {
    let Features::Bits { nbits, data } = f else {
        panic!("bits")
    };
    let words = nbits.div_ceil(64);
    let mut out = format!("#FPS1\n#num_bits={nbits}\n#type=test\n");
    for (r, id) in ids.iter().enumerate() {
        for byte in 0..nbits.div_ceil(8) {
            let w = data[r * words + byte / 8];
            let b = (w >> (8 * (byte % 8))) & 0xff;
            out.push_str(&format!("{b:02x}"));
        }
        out.push('\t');
        out.push_str(id);
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

/// An `.npy` v1 header for a C-order 2-D array.
pub fn npy_header(descr: &str, rows: usize, cols: usize) -> Vec<u8> {
    npy_raw_header(&format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}"
    ))
}

/// An `.npy` v1 header holding the given dictionary text.
pub fn npy_raw_header(dict: &str) -> Vec<u8> {
    let mut h = dict.as_bytes().to_vec();
    let total = 10 + h.len() + 1;
    let pad = total.next_multiple_of(64) - total;
    h.extend(std::iter::repeat_n(b' ', pad));
    h.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend(h);
    out
}

/// Writes bit features as numpy.packbits rows (MSB-first) in a uint8 `.npy`.
pub fn write_packed_npy(path: &Path, f: &Features) {
    let Features::Bits { nbits, data } = f else {
        panic!("bits")
    };
    let words = nbits.div_ceil(64);
    let cols = nbits.div_ceil(8);
    let rows = data.len() / words;
    let mut out = npy_header("|u1", rows, cols);
    for r in 0..rows {
        for byte in 0..cols {
            let lsb_first = ((data[r * words + byte / 8] >> (8 * (byte % 8))) & 0xff) as u8;
            out.push(lsb_first.reverse_bits());
        }
    }
    std::fs::write(path, out).unwrap();
}

/// Writes dense features as a little-endian f32 `.npy`.
pub fn write_dense_npy(path: &Path, f: &Features) {
    let Features::Dense { dim, data } = f else {
        panic!("dense")
    };
    let mut out = npy_header("<f4", data.len() / dim, *dim);
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out).unwrap();
}

/// Writes a labels CSV `id,score`.
pub fn write_labels(path: &Path, rows: &[(String, f64)]) {
    let mut f = std::fs::File::create(path).unwrap();
    writeln!(f, "id,score").unwrap();
    for (id, v) in rows {
        writeln!(f, "{id},{v}").unwrap();
    }
}

/// Asserts `|got − want| ≤ atol + rtol·|want|` elementwise, naming the first failing index.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], rtol: f64, atol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let g = f64::from(g);
        assert!(
            g.is_finite() == w.is_finite() && (g - w).abs() <= atol + rtol * w.abs(),
            "{what}[{i}]: got {g}, want {w} (tolerance {} )",
            atol + rtol * w.abs()
        );
    }
}

/// A GP with fixed hyperparameters (s2 1.7, lengthscale 0.9 for dense kernels).
pub fn fixed_gp(kernel: KernelKind, x: &Features, y: &[f64], noise: f64) -> FittedGp {
    let mut p = GpParams::new(kernel);
    p.signal_var = Some(1.7);
    p.noise = Some(noise);
    if kernel.has_lengthscale() {
        p.lengthscale = Some(0.9);
    }
    // Exact at every size: above the automatic switch (5,000 labels) the fit would otherwise
    // be a sparse GP on 2,000 inducing points.
    p.inducing = Inducing::Exact;
    fit(&p.check(x.kind()).unwrap(), x, y).unwrap()
}

pub fn labels(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.uniform() * 4.0 - 1.0).collect()
}

/// f32 tolerances of the mean and the variance of pool row `i`, as the scorer tests use: the
/// mean's error scales with `Σ|s2·k·alpha|` (the size of the terms summed), the variance's
/// with `s2`, both with `√n`.
pub fn tolerances(gp: &FittedGp, pool: &Features, i: usize) -> (f64, f64) {
    let n = gp.n_train();
    let terms: f64 = (0..n)
        .map(|j| (gp.signal_var * gp.kernel.eval(pool, i, &gp.train, j) * gp.alpha[j]).abs())
        .sum();
    let tol_mean = 1e-6 + 2e-6 * (n as f64).sqrt() * terms.max(1.0);
    let tol_var = 1e-6 + 2e-5 * gp.signal_var * (n as f64).sqrt();
    (tol_mean, tol_var)
}

pub fn score(scorer: &dyn Scorer, pool: &Features) -> (Vec<f32>, Vec<f32>) {
    let m = pool.len();
    let (mut mean, mut var) = (vec![f32::NAN; m], vec![f32::NAN; m]);
    scorer.posterior_into(pool, &mut mean, &mut var).unwrap();
    (mean, var)
}

/// Compares `scorer` with the f64 reference, naming the first failing row.
pub fn check_reference(
    scorer: &dyn Scorer,
    gp: &FittedGp,
    pool: &Features,
) -> (Vec<f32>, Vec<f32>) {
    let (mean, var) = score(scorer, pool);
    let (want_mean, want_var) = gp.predict_valvar(pool);
    let (n, m, name) = (gp.n_train(), pool.len(), scorer.name());
    for i in 0..m {
        let (tol_mean, tol_var) = tolerances(gp, pool, i);
        let (g, w) = (f64::from(mean[i]), want_mean[i]);
        assert!(
            (g - w).abs() <= tol_mean,
            "{name}: mean[{i}] got {g} want {w} tol {tol_mean} (n={n}, m={m})"
        );
        let (g, w) = (f64::from(var[i]), want_var[i]);
        assert!(
            g >= 0.0 && (g - w).abs() <= tol_var,
            "{name}: var[{i}] got {g} want {w} tol {tol_var} (n={n}, m={m})"
        );
    }
    (mean, var)
}

/// `select` on files: the labels file read now, no pending candidates.
pub fn select_files(
    params: &poolrank::SelectParams,
    pool: &poolrank::pool::FilePool,
    labels: &Path,
) -> poolrank::Result<poolrank::Selection> {
    let labels = poolrank::data::read_labels(&poolrank::data::LabelSpec::new(labels))?;
    poolrank::run_select(
        &params.check()?,
        pool,
        &labels,
        &poolrank::data::IdList::default(),
    )
}
