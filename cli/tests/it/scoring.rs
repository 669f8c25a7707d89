//! The optimised CPU scorer against the f64 scalar reference (`FittedGp::predict_valvar`), on
//! random shapes: odd sizes, n = 1, tiles that do not divide N, every kernel.

use crate::common;

use common::{check_reference, fixed_gp, labels, random_bits, random_counts, random_dense, Rng};
use poolrank::backend::{CpuScorer, Scorer};
use poolrank::data::Features;
use poolrank::gp::FittedGp;
use poolrank::kernel::KernelKind;
use proptest::prelude::*;

/// Compares the CPU scorer with the f64 reference (tolerances in `common::tolerances`).
fn check(gp: &FittedGp, pool: &Features) {
    check_reference(&CpuScorer::new(gp), gp, pool);
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
