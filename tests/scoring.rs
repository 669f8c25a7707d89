//! The optimised CPU scorer against the f64 scalar reference (`FittedGp::predict_valvar`), on
//! random shapes: odd sizes, n = 1, tiles that do not divide N, every kernel.

mod common;

use common::{random_bits, random_counts, random_dense, Rng};
use poolrank::backend::{CpuScorer, Scorer};
use poolrank::data::Features;
use poolrank::gp::{fit, FittedGp, GpParams};
use poolrank::kernel::KernelKind;
use proptest::prelude::*;

fn fixed_gp(kernel: KernelKind, x: &Features, y: &[f64], noise: f64) -> FittedGp {
    let mut p = GpParams::new(kernel);
    p.signal_var = Some(1.7);
    p.noise = Some(noise);
    if kernel.has_lengthscale() {
        p.lengthscale = Some(0.9);
    }
    fit(&p.check(x.kind()).unwrap(), x, y).unwrap()
}

/// Compares the scorer with the reference. Tolerances follow f32 rounding: the mean's error
/// scales with `Σ|s2·k·alpha|` (the size of the terms summed), the variance's with `s2`.
fn check(gp: &FittedGp, pool: &Features) {
    let scorer = CpuScorer::new(gp);
    let m = pool.len();
    let (mut mean, mut var) = (vec![0f32; m], vec![0f32; m]);
    scorer.posterior_into(pool, &mut mean, &mut var).unwrap();
    let (want_mean, want_var) = gp.predict_valvar(pool);
    let n = gp.n_train();
    for i in 0..m {
        let terms: f64 = (0..n)
            .map(|j| (gp.signal_var * gp.kernel.eval(pool, i, &gp.train, j) * gp.alpha[j]).abs())
            .sum();
        let tol_mean = 1e-6 + 2e-6 * (n as f64).sqrt() * terms.max(1.0);
        let tol_var = 1e-6 + 2e-5 * gp.signal_var * (n as f64).sqrt();
        let (g, w) = (f64::from(mean[i]), want_mean[i]);
        assert!(
            (g - w).abs() <= tol_mean,
            "mean[{i}] got {g} want {w} tol {tol_mean} (n={n}, m={m})"
        );
        let (g, w) = (f64::from(var[i]), want_var[i]);
        assert!(
            g >= 0.0 && (g - w).abs() <= tol_var,
            "var[{i}] got {g} want {w} tol {tol_var} (n={n}, m={m})"
        );
    }
}

fn labels(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.uniform() * 4.0 - 1.0).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn tanimoto_scorer_matches_reference(seed in any::<u64>(), n in 1usize..70, m in 1usize..300, nbits in prop::sample::select(vec![64usize, 100, 1024, 2048])) {
        let mut rng = Rng(seed);
        let x = random_bits(&mut rng, n, nbits, 0.05);
        let y = labels(&mut rng, n);
        let gp = fixed_gp(KernelKind::Tanimoto, &x, &y, 0.1);
        check(&gp, &random_bits(&mut rng, m, nbits, 0.05));
    }

    #[test]
    fn minmax_scorer_matches_reference(seed in any::<u64>(), n in 1usize..70, m in 1usize..300, max in prop::sample::select(vec![1u32, 3, 15, 255])) {
        let mut rng = Rng(seed);
        let x = random_counts(&mut rng, n, 300, 0.08, max);
        let y = labels(&mut rng, n);
        let gp = fixed_gp(KernelKind::MinMax, &x, &y, 0.1);
        check(&gp, &random_counts(&mut rng, m, 300, 0.08, max));
    }

    #[test]
    fn dense_scorers_match_reference(seed in any::<u64>(), n in 1usize..70, m in 1usize..300, dim in prop::sample::select(vec![1usize, 3, 16, 129]), matern in any::<bool>()) {
        let mut rng = Rng(seed);
        let x = random_dense(&mut rng, n, dim);
        let y = labels(&mut rng, n);
        let kernel = if matern { KernelKind::Matern52 } else { KernelKind::Rbf };
        let gp = fixed_gp(kernel, &x, &y, 0.1);
        check(&gp, &random_dense(&mut rng, m, dim));
    }
}

#[test]
fn larger_problem_with_small_noise_matches_reference() {
    let mut rng = Rng(11);
    let x = random_bits(&mut rng, 400, 2048, 0.03);
    let y = labels(&mut rng, 400);
    let gp = fixed_gp(KernelKind::Tanimoto, &x, &y, 0.01);
    check(&gp, &random_bits(&mut rng, 1000, 2048, 0.03));
}

#[test]
fn labeled_points_have_small_variance_and_minmax_equals_tanimoto_on_bits() {
    let mut rng = Rng(5);
    let x = random_bits(&mut rng, 50, 256, 0.2);
    let y = labels(&mut rng, 50);
    let gp_t = fixed_gp(KernelKind::Tanimoto, &x, &y, 0.01);
    let gp_m = fixed_gp(KernelKind::MinMax, &x, &y, 0.01);
    let (mut m1, mut v1) = (vec![0f32; 50], vec![0f32; 50]);
    let (mut m2, mut v2) = (vec![0f32; 50], vec![0f32; 50]);
    CpuScorer::new(&gp_t)
        .posterior_into(&x, &mut m1, &mut v1)
        .unwrap();
    CpuScorer::new(&gp_m)
        .posterior_into(&x, &mut m2, &mut v2)
        .unwrap();
    assert_eq!(m1, m2);
    assert_eq!(v1, v2);
    // At a labeled point the latent variance is at most the noise.
    assert!(v1.iter().all(|&v| v <= 0.011 * 1.0 + 1e-4), "{v1:?}");
}
