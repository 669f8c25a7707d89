//! Times the sparse GP's fit on synthetic fingerprints: `cargo run --release --example
//! sparse_fit -- N M [BITS] [cpu|gpu]` (defaults: 2048 bits, the product `K_mn K_nm` on the
//! CPU; `gpu` puts it on a GPU, a software adapter allowed). Rows are Morgan-like (about 48 of 2048 bits
//! set) and clustered, with labels a function of the cluster plus noise; the features are held
//! in memory as packed bits (N × BITS/8 bytes), the fit streams them in tiles. Prints one JSON
//! line: n, m, seconds (total, streaming passes), the inducing points used, hyperparameters.

use std::time::Instant;

use poolrank::backend::{Backend, BackendChoice, GpuOptions};
use poolrank::data::Features;
use poolrank::gp::{fit_with, GpParams, Inducing};
use poolrank::kernel::KernelKind;
use poolrank::rng::hash32;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let choice = match args.last().map(String::as_str) {
        Some("gpu") => BackendChoice::Gpu,
        _ => BackendChoice::Cpu,
    };
    if matches!(args.last().map(String::as_str), Some("gpu" | "cpu")) {
        args.pop();
    }
    let args: Vec<usize> = args
        .iter()
        .map(|a| a.parse().expect("N M [BITS] [cpu|gpu]"))
        .collect();
    let backend = Backend::new(choice, &GpuOptions::software()).expect("backend");
    let (n, m) = (args[0], args[1]);
    let nbits = args.get(2).copied().unwrap_or(2048);
    let words = nbits / 64;
    let t = Instant::now();
    let clusters = 500u32;
    let mut data = vec![0u64; n * words];
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let c = hash32(i as u32 ^ 0x5bd1_e995) % clusters;
        let row = &mut data[i * words..(i + 1) * words];
        // 32 bits shared by the cluster, 16 of the row's own.
        for k in 0..48u32 {
            let h = if k < 32 {
                hash32(c.wrapping_mul(64) ^ k)
            } else {
                hash32((i as u32).wrapping_mul(97) ^ k ^ 0xabcd_0000)
            };
            let b = h as usize % nbits;
            row[b / 64] |= 1 << (b % 64);
        }
        let noise = (hash32(i as u32 ^ 0x1234_5678) as f64 / u32::MAX as f64) - 0.5;
        y.push(f64::from(hash32(c) % 1000) / 1000.0 + 0.3 * noise);
    }
    let x = Features::Bits { nbits, data };
    let made = t.elapsed().as_secs_f64();
    let mut p = GpParams::new(KernelKind::Tanimoto);
    p.inducing = Inducing::Points(m);
    let t = Instant::now();
    let gram = backend.gram();
    let gp = fit_with(&p.check(x.kind()).expect("params"), &x, &y, gram.as_ref()).expect("fit");
    let secs = t.elapsed().as_secs_f64();
    let sp = gp.info.sparse.as_ref().expect("sparse fit");
    println!(
        "{{\"n\": {n}, \"m\": {m}, \"bits\": {nbits}, \"threads\": {}, \"generate_s\": {made:.2}, \"fit_s\": {secs:.2}, \"choose_s\": {:.2}, \"pass_s\": {:.2}, \"used\": {}, \"candidates\": {}, \"signal_var\": {:.4}, \"noise\": {:.4}, \"elbo\": {:.1}, \"jitter\": {:e}, \"factor_jitter\": {:e}, \"product\": \"{}\"}}",
        rayon::current_num_threads(),
        sp.choose_seconds,
        sp.pass_seconds,
        sp.used,
        sp.candidates,
        gp.signal_var,
        gp.noise,
        sp.elbo,
        gp.info.jitter,
        sp.factor_jitter,
        sp.product,
    );
}
