use super::*;

fn dense(rows: &[&[f32]]) -> Features {
    Features::Dense {
        dim: rows[0].len(),
        data: rows.iter().flat_map(|r| r.iter().copied()).collect(),
    }
}

fn fixed(kernel: KernelKind, s2: f64, n2: f64, ls: Option<f64>) -> GpValidParams {
    let mut p = GpParams::new(kernel);
    p.signal_var = Some(s2);
    p.noise = Some(n2);
    p.lengthscale = ls;
    p.check(FeatureKind::Dense { dim: 1 })
        .or_else(|_| p.check(FeatureKind::Bits { nbits: 64 }))
        .unwrap()
}

/// Builds `s2·K + n2·I` densely and checks `K·alpha = y_std` and the mean/variance formulas
/// against an independent Gauss–Jordan solve.
#[test]
fn mean_and_variance_match_a_direct_dense_solve() {
    let x = dense(&[
        &[0.0, 0.1],
        &[0.5, 0.2],
        &[1.0, 1.0],
        &[1.5, 0.3],
        &[3.0, 2.0],
    ]);
    let y = [1.0, 2.0, 0.5, -1.0, 3.0];
    let gp = fit(&fixed(KernelKind::Rbf, 1.3, 0.05, Some(0.7)), &x, &y).unwrap();
    let n = 5;
    let g = gp.kernel.gram(&x);
    let k: Vec<f64> = (0..n * n)
        .map(|t| 1.3 * g[t] + if t % (n + 1) == 0 { 0.05 } else { 0.0 })
        .collect();
    let ys: Vec<f64> = y.iter().map(|v| (v - gp.y_mean) / gp.y_sd).collect();
    // Residual of K·alpha = y.
    for i in 0..n {
        let r: f64 = (0..n).map(|j| k[i * n + j] * gp.alpha[j]).sum::<f64>() - ys[i];
        assert!(r.abs() < 1e-10, "residual {r} at {i}");
    }
    let test = dense(&[&[0.2, 0.2], &[2.0, 1.0], &[10.0, 10.0]]);
    let (mean, var) = gp.predict_valvar(&test);
    for t in 0..3 {
        let ks: Vec<f64> = (0..n)
            .map(|i| 1.3 * gp.kernel.eval(&x, i, &test, t))
            .collect();
        let sol = gauss_solve(&k, &ks, n);
        let want_mean: f64 = ks.iter().zip(&gp.alpha).map(|(a, b)| a * b).sum();
        let want_var = 1.3 - ks.iter().zip(&sol).map(|(a, b)| a * b).sum::<f64>();
        assert!((mean[t] - want_mean).abs() < 1e-10);
        assert!(
            (var[t] - want_var).abs() < 1e-10,
            "{} vs {}",
            var[t],
            want_var
        );
    }
    // Far from the data the posterior reverts to the prior.
    assert!((var[2] - 1.3).abs() < 1e-9);
    assert!(mean[2].abs() < 1e-9);
}

fn gauss_solve(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut m: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let mut r = a[i * n..(i + 1) * n].to_vec();
            r.push(b[i]);
            r
        })
        .collect();
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| m[i][c].abs().total_cmp(&m[j][c].abs()))
            .unwrap();
        m.swap(c, p);
        let pivot = m[c].clone();
        for (r, row) in m.iter_mut().enumerate() {
            if r != c {
                let f = row[c] / pivot[c];
                for (x, p) in row[c..].iter_mut().zip(&pivot[c..]) {
                    *x -= f * p;
                }
            }
        }
    }
    (0..n).map(|i| m[i][n] / m[i][i]).collect()
}

#[test]
fn chol_inverse_is_the_inverse_factor() {
    let x = dense(&[&[0.0], &[0.3], &[0.9], &[2.0]]);
    let gp = fit(
        &fixed(KernelKind::Matern52, 1.0, 0.01, Some(0.5)),
        &x,
        &[0.0, 1.0, 0.0, 2.0],
    )
    .unwrap();
    let w = gp.chol_inverse();
    let prod = &w * &gp.chol;
    for i in 0..4 {
        for j in 0..4 {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((prod[(i, j)] - want).abs() < 1e-10);
        }
    }
}

#[test]
fn duplicate_points_without_noise_need_jitter_and_report_it() {
    let x = Features::Bits {
        nbits: 64,
        data: vec![0b1011, 0b1011, 0b0110],
    };
    let gp = fit(
        &fixed(KernelKind::Tanimoto, 1.0, 0.0, None),
        &x,
        &[1.0, 1.0, 0.0],
    )
    .unwrap();
    assert!(gp.info.jitter > 0.0);
    assert!(!gp.info.optimised);
}

#[test]
fn too_few_labels_is_an_error() {
    let x = Features::empty(FeatureKind::Dense { dim: 1 });
    let err = fit(&fixed(KernelKind::Rbf, 1.0, 0.1, Some(1.0)), &x, &[]).unwrap_err();
    assert!(matches!(err, Error::TooFewLabels { n: 0 }));
}

#[test]
fn invalid_params_are_rejected() {
    let dense_kind = FeatureKind::Dense { dim: 2 };
    let mut p = GpParams::new(KernelKind::Rbf);
    p.noise = Some(-1.0);
    assert!(p.check(dense_kind).is_err());
    p.noise = Some(f64::NAN);
    assert!(p.check(dense_kind).is_err());
    let mut p = GpParams::new(KernelKind::Tanimoto);
    p.lengthscale = Some(1.0);
    assert!(p.check(FeatureKind::Bits { nbits: 64 }).is_err());
    let p = GpParams::new(KernelKind::Tanimoto);
    assert!(matches!(
        p.check(dense_kind),
        Err(Error::KernelMismatch { .. })
    ));
}

/// The optimiser must find a likelihood at least as high as every point of a fine grid.
#[test]
fn fitted_hyperparameters_beat_a_fine_grid() {
    let pts: Vec<f32> = (0..40).map(|i| i as f32 * 0.25).collect();
    let x = Features::Dense {
        dim: 1,
        data: pts.clone(),
    };
    // A smooth function plus deterministic "noise".
    let y: Vec<f64> = pts
        .iter()
        .enumerate()
        .map(|(i, &t)| (f64::from(t) * 0.8).sin() + 0.1 * ((i * 7919 % 13) as f64 / 13.0 - 0.5))
        .collect();
    let gp = fit(
        &GpParams::new(KernelKind::Rbf)
            .check(FeatureKind::Dense { dim: 1 })
            .unwrap(),
        &x,
        &y,
    )
    .unwrap();
    assert!(gp.info.optimised);
    let mut best_grid = f64::NEG_INFINITY;
    for &ls in &[0.5, 1.0, 1.5, 2.0, 3.0] {
        for &s2 in &[0.3, 1.0, 3.0] {
            for &n2 in &[1e-3, 1e-2, 0.05] {
                let g = fit(&fixed(KernelKind::Rbf, s2, n2, Some(ls)), &x, &y).unwrap();
                best_grid = best_grid.max(g.info.log_marginal_likelihood);
            }
        }
    }
    assert!(
        gp.info.log_marginal_likelihood >= best_grid - 1e-6,
        "fitted {} < grid {}",
        gp.info.log_marginal_likelihood,
        best_grid
    );
    // A smooth signal: the fitted lengthscale is neither tiny nor huge, the noise small.
    assert!(
        gp.kernel.lengthscale > 0.5 && gp.kernel.lengthscale < 10.0,
        "{:?}",
        gp.kernel
    );
    assert!(gp.noise < 0.1, "noise {}", gp.noise);
}

/// Labels for [`hashed_bits`]' rows other than its own, on another scale.
fn other_labels() -> Vec<f64> {
    (0..30)
        .map(|i| (f64::from(i) * 0.7).sin() * 40.0 - 3.0)
        .collect()
}

/// 30 hashed 64-bit fingerprints with labels `i % 7`.
fn hashed_bits() -> (Features, Vec<f64>) {
    let x = Features::Bits {
        nbits: 64,
        data: (0..30u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20)
            .collect(),
    };
    (x, (0..30).map(|i| f64::from(i % 7)).collect())
}

#[test]
fn fit_is_deterministic() {
    let (x, y) = hashed_bits();
    let p = GpParams::new(KernelKind::Tanimoto)
        .check(FeatureKind::Bits { nbits: 64 })
        .unwrap();
    let a = fit(&p, &x, &y).unwrap();
    let b = fit(&p, &x, &y).unwrap();
    assert_eq!(a.signal_var, b.signal_var);
    assert_eq!(a.noise, b.noise);
    assert_eq!(a.alpha, b.alpha);
}

/// With fixed hyperparameters, relabeling a fit gives the fit of the new labels, bit for bit;
/// a fit whose hyperparameters were optimised (they depend on the labels) is not relabeled.
#[test]
fn relabeled_is_the_fit_of_the_new_labels() {
    let (x, y) = hashed_bits();
    let z = other_labels();
    let p = fixed(KernelKind::Tanimoto, 1.3, 0.05, None);
    let a = fit(&p, &x, &y).unwrap();
    let want = fit(&p, &x, &z).unwrap();
    let got = a.relabeled(&z).unwrap().expect("fixed hyperparameters");
    assert_eq!(got.alpha, want.alpha);
    assert_eq!(got.chol, want.chol);
    assert_eq!(
        (got.y_mean, got.y_sd, got.y_best),
        (want.y_mean, want.y_sd, want.y_best)
    );
    assert_eq!(
        got.info.log_marginal_likelihood,
        want.info.log_marginal_likelihood
    );
    assert_ne!(got.alpha, a.alpha);
    let x1 = Features::Dense {
        dim: 1,
        data: (0..30).map(|i| i as f32 * 0.1).collect(),
    };
    let q = GpParams::new(KernelKind::Rbf)
        .check(FeatureKind::Dense { dim: 1 })
        .unwrap();
    assert!(fit(&q, &x1, &y).unwrap().relabeled(&z).unwrap().is_none());
    assert!(a.relabeled(&[f64::NAN; 30]).is_err());
}

/// No PSD kernel stays singular with the largest jitter, so the typed error is checked on an
/// indefinite matrix directly.
#[test]
fn indefinite_matrix_gives_a_typed_error() {
    let gram = [1.0, 2.0, 2.0, 1.0];
    let err = super::cholesky_with_jitter(&gram, 2, 1.0, 0.0).unwrap_err();
    assert!(
        matches!(err, Error::NotPositiveDefinite { index: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("raise the noise"));
}

/// Fits of several label vectors on one set of rows that share its Gram matrix and
/// eigendecomposition are, bit for bit, the fits each would get alone, hyperparameters searched.
#[test]
fn fits_sharing_their_rows_are_the_fits_alone() {
    let (x, y) = hashed_bits();
    let z = other_labels();
    let p = GpParams::new(KernelKind::Tanimoto).check(x.kind()).unwrap();
    let shared = SharedRows::default();
    for labels in [&y, &z, &y] {
        let want = fit(&p, &x, labels).unwrap();
        let got = fit_sharing(&p, &x, labels, &CpuGram, &shared).unwrap();
        assert!(want.info.optimised);
        assert_eq!(
            (got.signal_var.to_bits(), got.noise.to_bits()),
            (want.signal_var.to_bits(), want.noise.to_bits())
        );
        assert_eq!(got.alpha, want.alpha);
        assert_eq!(got.chol, want.chol);
        assert_eq!(
            got.info.log_marginal_likelihood,
            want.info.log_marginal_likelihood
        );
    }
    assert!(
        shared.eigen.get().is_some(),
        "the search used the shared eigendecomposition"
    );
}
