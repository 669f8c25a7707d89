use super::*;
use crate::acquisition::AcqContext;
use crate::data::FeatureKind;
use crate::gp::{fit, GpParams};
use crate::kernel::minmax;
use crate::rng::hash32;
use crate::select::diverse::tests::dense;

fn ctx(seed: u64, round: u32) -> AcqContext {
    AcqContext {
        best: 0.0,
        seed,
        round,
    }
}

/// Seeded count fingerprints over `ndim` indices, about a third of them set, counts 1..4.
fn counts(n: usize, ndim: usize, seed: u32) -> Features {
    let (mut indptr, mut indices, mut values) = (vec![0], Vec::new(), Vec::new());
    for i in 0..n {
        for k in 0..ndim {
            let h = hash32((i * ndim + k) as u32 ^ seed.wrapping_mul(0x85eb_ca6b));
            if h.is_multiple_of(3) {
                indices.push(k as u32);
                values.push(1 + (h >> 8) % 4);
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

fn gp_with(kernel: KernelKind, x: &Features, kind: FeatureKind) -> FittedGp {
    let y: Vec<f64> = (0..x.len()).map(|i| (i as f64 * 0.9).sin()).collect();
    let mut p = GpParams::new(kernel);
    p.signal_var = Some(1.3);
    p.noise = Some(0.05);
    if kernel.has_lengthscale() {
        p.lengthscale = Some(0.9);
    }
    fit(&p.check(kind).unwrap(), x, &y).unwrap()
}

/// The weighted samples `(k*, t*)` of row `i`.
fn samples(prior: &PriorFeatures, x: &Features, i: usize) -> Vec<(u32, i32)> {
    let mut s = Scratch::default();
    prior.samples_of(x, i, &mut s);
    s.k.into_iter().zip(s.t).collect()
}

#[test]
fn weighted_samples_collide_with_the_minmax_probability() {
    // The share of the D samples on which two rows agree estimates their MinMax similarity
    // (Tanimoto for bits), within binomial sampling error.
    let dim = 20_000;
    let x = counts(6, 40, 3);
    let kernel = Kernel {
        kind: KernelKind::MinMax,
        lengthscale: 1.0,
    };
    let prior = PriorFeatures::for_kernel(&x, kernel, dim, 5, 1).unwrap();
    let sample = |i: usize| samples(&prior, &x, i);
    let rows: Vec<_> = (0..x.len()).map(sample).collect();
    let mut checked = 0;
    for i in 0..x.len() {
        for j in 0..i {
            let p = minmax(x.counts_row(i).unwrap(), x.counts_row(j).unwrap());
            let agree = rows[i].iter().zip(&rows[j]).filter(|(a, b)| a == b).count();
            let est = agree as f64 / dim as f64;
            let se = (p * (1.0 - p) / dim as f64).sqrt();
            assert!(
                (est - p).abs() < 5.0 * se + 1e-9,
                "rows {i},{j}: {est} vs {p}"
            );
            checked += usize::from(p > 0.05 && p < 0.95);
        }
    }
    assert!(
        checked >= 10,
        "the pairs must have similarities strictly inside (0, 1)"
    );

    // Bits: the weighted sampler at counts of 1 is the min-hash, P(agree) = Tanimoto.
    let bits = Features::Bits {
        nbits: 128,
        data: vec![0xff00_ff00_1234, 0x7, 0xff0f_ff00_1230, 0x3, 0, 0],
    };
    let prior = PriorFeatures::for_kernel(&bits, kernel, dim, 9, 0).unwrap();
    let (a, b) = (samples(&prior, &bits, 0), samples(&prior, &bits, 1));
    let p = crate::kernel::tanimoto(bits.bits_row(0).unwrap(), bits.bits_row(1).unwrap());
    let est = a.iter().zip(&b).filter(|(x, y)| x == y).count() as f64 / dim as f64;
    assert!(
        (est - p).abs() < 5.0 * (p * (1.0 - p) / dim as f64).sqrt(),
        "{est} vs {p}"
    );
    // An empty fingerprint agrees with another empty one only (MinMax says 1 and 0).
    let e = samples(&prior, &bits, 2);
    assert!(e.iter().all(|&s| s == (u32::MAX, 0)));
    assert!(e.iter().zip(&a).all(|(x, y)| x != y));
}

#[test]
fn fourier_features_reproduce_rbf_and_matern() {
    let x = dense(5, 3, 11);
    for kind in [KernelKind::Rbf, KernelKind::Matern52] {
        let kernel = Kernel {
            kind,
            lengthscale: 1.3,
        };
        let dim = 40_000;
        let prior = PriorFeatures::for_kernel(&x, kernel, dim, 2, 4).unwrap();
        let mut phi = vec![0f32; x.len() * dim];
        prior.fill(&x, 0, x.len(), &mut phi);
        for i in 0..x.len() {
            for j in 0..=i {
                let dot: f64 = (0..dim)
                    .map(|d| f64::from(phi[i * dim + d]) * f64::from(phi[j * dim + d]))
                    .sum();
                let k = kernel.eval(&x, i, &x, j);
                // Each term 2·cos·cos has variance at most 2/D around its mean.
                assert!(
                    (dot - k).abs() < 5.0 * (2.0 / dim as f64).sqrt(),
                    "{kind:?} {i},{j}: {dot} vs {k}"
                );
            }
        }
    }
}

/// The mean and covariance of pathwise samples at `test`, averaged over `reps` feature draws
/// (seeds), against the exact posterior; the standard errors come from the spread across
/// seeds, so the random-feature error of each draw is part of them.
fn check_moments(gp: &FittedGp, test: &Features, dim: usize) {
    let (reps, samples, m) = (300, 40, test.len());
    let (mean_exact, _) = gp.predict_valvar(test);
    let cov_exact = crate::select::joint::tests::textbook_cov(gp, &gp.train, test);
    let mut means = vec![vec![0.0; m]; reps];
    let mut covs = vec![vec![0.0; m * m]; reps];
    let mut out = Vec::new();
    for r in 0..reps {
        let ps = PathwiseSamples::new(gp, dim, samples, &ctx(r as u64, 3)).unwrap();
        ps.eval_into(test, &mut out).unwrap();
        let f = |i: usize, s: usize| f64::from(out[i * samples + s]);
        for (i, mean) in means[r].iter_mut().enumerate() {
            *mean = (0..samples).map(|s| f(i, s)).sum::<f64>() / samples as f64;
        }
        for i in 0..m {
            for j in 0..m {
                let c: f64 = (0..samples)
                    .map(|s| (f(i, s) - mean_exact[i]) * (f(j, s) - mean_exact[j]))
                    .sum();
                covs[r][i * m + j] = c / samples as f64;
            }
        }
    }
    let avg_se = |v: &dyn Fn(usize) -> f64| {
        let avg = (0..reps).map(v).sum::<f64>() / reps as f64;
        let var = (0..reps).map(|r| (v(r) - avg).powi(2)).sum::<f64>() / (reps - 1) as f64;
        (avg, (var / reps as f64).sqrt())
    };
    let mut conditioned = 0;
    for i in 0..m {
        let (avg, se) = avg_se(&|r| means[r][i]);
        assert!(
            (avg - mean_exact[i]).abs() < 5.0 * se + 1e-4,
            "mean {i}: {avg} vs {}",
            mean_exact[i]
        );
        for j in 0..m {
            let (avg, se) = avg_se(&|r| covs[r][i * m + j]);
            let exact = cov_exact[(i, j)];
            assert!(
                (avg - exact).abs() < 5.0 * se + 1e-4,
                "cov {i},{j}: {avg} ± {se} vs {exact}"
            );
            // The test has power: the data moved this entry far from the prior's.
            if i == j {
                let prior = gp.signal_var * gp.kernel.eval(test, i, test, i);
                conditioned += usize::from(prior - exact > 20.0 * se);
            }
        }
    }
    assert!(
        conditioned >= 2,
        "the test points must include some the data pin down"
    );
}

#[test]
fn rbf_samples_have_the_posterior_moments() {
    let x = dense(14, 2, 1);
    let gp = gp_with(KernelKind::Rbf, &x, FeatureKind::Dense { dim: 2 });
    // Test points: two training rows, two near ones, two far away.
    let Features::Dense { data, .. } = &x else {
        unreachable!()
    };
    let mut t = data[..4].to_vec();
    t.extend([
        data[0] + 0.2,
        data[1] - 0.1,
        data[4] - 0.3,
        data[5],
        3.5,
        3.0,
        -3.0,
        2.5,
    ]);
    check_moments(&gp, &Features::Dense { dim: 2, data: t }, 128);
}

#[test]
fn minmax_samples_have_the_posterior_moments() {
    let all = counts(20, 24, 7);
    let rows: Vec<usize> = (0..14).collect();
    let x = all.select_rows(&rows);
    let gp = gp_with(KernelKind::MinMax, &x, FeatureKind::Counts { ndim: 24 });
    check_moments(&gp, &all.select_rows(&[0, 3, 14, 15, 16, 17]), 128);
}

#[test]
fn samples_are_reproducible_and_do_not_depend_on_the_tile() {
    let x = dense(500, 2, 4);
    let train: Vec<usize> = (0..30).map(|i| i * 7).collect();
    let gp = gp_with(
        KernelKind::Matern52,
        &x.select_rows(&train),
        FeatureKind::Dense { dim: 2 },
    );
    let ps = PathwiseSamples::new(&gp, 256, 5, &ctx(1, 2)).unwrap();
    let (mut all, mut part) = (Vec::new(), Vec::new());
    ps.eval_into(&x, &mut all).unwrap();
    let rest: Vec<usize> = (192..500).collect();
    ps.eval_into(&x.select_rows(&rest), &mut part).unwrap();
    for (a, b) in all[192 * 5..].iter().zip(&part) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    // In blocks of two chunks, the same values in the same order.
    let mut blocked = Vec::new();
    ps.blocks(&x, 2 * crate::backend::CHUNK, |first, v| {
        assert_eq!(first * 5, blocked.len());
        blocked.extend_from_slice(v);
        Ok(())
    })
    .unwrap();
    assert_eq!(blocked.len(), all.len());
    for (a, b) in all.iter().zip(&blocked) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    let mut again = Vec::new();
    PathwiseSamples::new(&gp, 256, 5, &ctx(1, 2))
        .unwrap()
        .eval_into(&x, &mut again)
        .unwrap();
    assert_eq!(all, again);
    PathwiseSamples::new(&gp, 256, 5, &ctx(2, 2))
        .unwrap()
        .eval_into(&x, &mut again)
        .unwrap();
    assert_ne!(all, again, "another seed draws other samples");
}

#[test]
fn thompson_picks_are_each_samples_open_argmax() {
    let (rows, batch) = (60, 12);
    let value = |i: usize, s: usize| (hash32((i * 31 + s) as u32) % 50) as f32; // many ties
    let mut picks = ThompsonPicks::new(batch);
    for i in (0..rows).rev() {
        let v: Vec<f32> = (0..batch).map(|s| value(i, s)).collect();
        picks.offer(&v, i, || i);
    }
    let got: Vec<(usize, f32)> = picks.finish().iter().map(|r| (r.item, r.score)).collect();
    let mut want = Vec::new();
    for s in 0..batch {
        let best = (0..rows)
            .filter(|i| !want.iter().any(|&(p, _)| p == *i))
            .min_by(|&a, &b| value(b, s).total_cmp(&value(a, s)).then(a.cmp(&b)))
            .unwrap();
        want.push((best, value(best, s)));
    }
    assert_eq!(got, want);
}

#[test]
fn qpo_counts_each_samples_argmax_and_fills_by_quantile() {
    // Four samples over five candidates: 2 wins twice, 4 once, 1 once (a tie with 4, broken
    // by the quantile), then the fill by the quantile.
    let values = [
        [0.0, 1.0, 0.0, 0.5],
        [0.0, 0.0, 0.0, 0.9],
        [5.0, 0.0, 5.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 3.0, 0.0, 0.0],
    ];
    let quantile = [0.1, 0.2, 0.3, 0.9, 0.5];
    let mut q = QpoPicks::new(4, 4);
    for i in 0..5 {
        q.offer(&values[i], quantile[i], i, || i);
    }
    let (picks, winners) = q.finish();
    let got: Vec<(usize, f32)> = picks.iter().map(|r| (r.item, r.score)).collect();
    assert_eq!(winners, 3);
    assert_eq!(got, vec![(2, 0.5), (4, 0.25), (1, 0.25), (3, 0.0)]);
    let total: f32 = picks.iter().map(|r| r.score).sum();
    assert!(
        (total - 1.0).abs() < 1e-6,
        "the winners' probabilities sum to 1"
    );
}

#[test]
fn sparse_models_and_bad_settings_are_refused() {
    let x = dense(40, 2, 8);
    let gp = gp_with(KernelKind::Rbf, &x, FeatureKind::Dense { dim: 2 });
    assert!(PathwiseSamples::new(&gp, 0, 5, &ctx(0, 0)).is_err());
    assert!(PathwiseSamples::new(&gp, 64, 0, &ctx(0, 0)).is_err());
    let mut p = GpParams::new(KernelKind::Rbf);
    p.signal_var = Some(1.0);
    p.noise = Some(0.05);
    p.lengthscale = Some(0.9);
    let valid = p
        .check(FeatureKind::Dense { dim: 2 })
        .unwrap()
        .with_inducing(crate::gp::Inducing::Points(10))
        .unwrap();
    let y: Vec<f64> = (0..40).map(|i| f64::from(i).sin()).collect();
    let sparse = fit(&valid, &x, &y).unwrap();
    let err = PathwiseSamples::new(&sparse, 64, 5, &ctx(0, 0))
        .err()
        .unwrap();
    assert!(err.to_string().contains("exact GP"), "{err}");
}

#[test]
fn the_table_the_draws_and_both_instruction_sets_give_the_same_samples() {
    let x = counts(30, 300, 5);
    let kernel = Kernel {
        kind: KernelKind::MinMax,
        lengthscale: 1.0,
    };
    let with = PriorFeatures::for_kernel(&x, kernel, 256, 3, 2).unwrap();
    assert!(matches!(with.kind, Prior::Cws { table: Some(_) }));
    let without = PriorFeatures {
        kind: Prior::Cws { table: None },
        ..PriorFeatures::for_kernel(&x, kernel, 1, 3, 2).unwrap()
    };
    let without = PriorFeatures {
        dim: 256,
        ..without
    };
    for i in 0..x.len() {
        assert_eq!(samples(&with, &x, i), samples(&without, &x, i), "row {i}");
    }
    // The portable loop and the AVX2 one (where the CPU has it) agree bit for bit.
    let Prior::Cws { table: Some(t) } = &with.kind else {
        unreachable!()
    };
    let p = ParamsRef {
        r: &t.r[..256],
        inv_r: &t.inv_r[..256],
        ln_c: &t.ln_c[..256],
        beta: &t.beta[..256],
    };
    let run = |avx2: bool| {
        let (mut best, mut k, mut tt) =
            (vec![f32::INFINITY; 256], vec![u32::MAX; 256], vec![0; 256]);
        for (j, v) in [1.0f32, 3.0, 17.0, 250.0].iter().enumerate() {
            cws_visit(avx2, v.ln(), j as u32, p, &mut best, &mut k, &mut tt);
        }
        (best.iter().map(|b| b.to_bits()).collect::<Vec<_>>(), k, tt)
    };
    assert_eq!(run(false), run(Isa::best() != Isa::Portable));
}
