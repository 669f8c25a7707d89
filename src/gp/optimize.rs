//! Hyperparameters by maximising the log marginal likelihood (LML), bounded and deterministic.
//!
//! For a fixed kernel shape the LML of `s2·K + n2·I` has a closed form in the eigenvalues
//! `λ_i` of `K` and the projections `u = Qᵀy`:
//! `LML = -½ Σ u_i²/(s2·λ_i + n2) − ½ Σ ln(s2·λ_i + n2) − n/2 ln 2π`.
//! One eigendecomposition per lengthscale makes every `(s2, n2)` evaluation O(n), so a grid
//! scan followed by Nelder–Mead from the best few grid points (the restarts) costs little more
//! than a single factorisation. The lengthscale, when there is one, is searched outside: a log
//! grid, then golden-section refinement around the best grid point.

use faer::{Mat, Side};

use super::GpParams;
use crate::data::Features;
use crate::error::{Error, Result};
use crate::kernel::sq_dist;

/// Search box in log space; a fixed hyperparameter has equal ends.
#[derive(Clone, Debug)]
pub struct Bounds {
    /// ln of the signal variance.
    pub log_s2: (f64, f64),
    /// ln of the noise variance.
    pub log_n2: (f64, f64),
    /// ln of the lengthscale, for kernels that have one.
    pub log_ls: Option<(f64, f64)>,
}

impl Bounds {
    /// The box for `p`: fixed values where given, else the documented defaults; lengthscales are
    /// relative to `ls_scale` (the median distance between labeled points).
    pub fn new(p: &GpParams, ls_scale: f64) -> Self {
        let fixed_or = |v: Option<f64>, lo: f64, hi: f64| match v {
            Some(v) => (v.ln(), v.ln()),
            None => (lo.ln(), hi.ln()),
        };
        Bounds {
            log_s2: fixed_or(p.signal_var, 1e-2, 1e2),
            log_n2: match p.noise {
                // A user may fix the noise at 0; keep the log finite.
                Some(v) => (v.max(1e-12).ln(), v.max(1e-12).ln()),
                None => (1e-4f64.ln(), 4f64.ln()),
            },
            log_ls: p
                .kernel
                .has_lengthscale()
                .then(|| fixed_or(p.lengthscale, 1e-2 * ls_scale, 1e2 * ls_scale)),
        }
    }
}

/// The maximiser found.
#[derive(Clone, Debug)]
pub struct Best {
    /// Signal variance.
    pub signal_var: f64,
    /// Noise variance.
    pub noise: f64,
    /// Lengthscale (1.0 when the kernel has none).
    pub lengthscale: f64,
    /// LML evaluations spent.
    pub evaluations: usize,
}

/// Median distance between (up to 256 evenly spaced) rows of dense features; 1 if degenerate.
pub fn median_distance(x: &Features) -> f64 {
    let n = x.len();
    let step = n.div_ceil(256).max(1);
    let rows: Vec<&[f32]> = (0..n)
        .step_by(step)
        .filter_map(|i| x.dense_row(i))
        .collect();
    let mut d: Vec<f64> = Vec::new();
    for i in 0..rows.len() {
        for j in 0..i {
            d.push(sq_dist(rows[i], rows[j]).sqrt());
        }
    }
    d.retain(|v| *v > 0.0);
    if d.is_empty() {
        return 1.0;
    }
    d.sort_by(f64::total_cmp);
    d[d.len() / 2]
}

/// The eigendecomposition of a Gram matrix: what the [`Spectrum`]s of every label vector on the
/// same rows share.
pub struct Eigen {
    /// Eigenvalues, clamped at 0.
    lambda: Vec<f64>,
    /// Eigenvectors, one per column.
    q: Mat<f64>,
}

impl Eigen {
    /// Decomposes the row-major `n × n` `gram`.
    pub fn new(gram: &[f64], n: usize) -> Result<Self> {
        let k = Mat::<f64>::from_fn(n, n, |i, j| gram[i * n + j]);
        let eig = k
            .self_adjoint_eigen(Side::Lower)
            .map_err(|e| Error::Numerical {
                what: "the kernel matrix's eigendecomposition",
                msg: format!("{e:?}"),
            })?;
        let s = eig.S();
        Ok(Eigen {
            lambda: (0..n).map(|i| s[i].max(0.0)).collect(),
            q: eig.U().to_owned(),
        })
    }
}

/// Eigenvalues (clamped at 0) and squared projections of `y` of a Gram matrix.
struct Spectrum {
    lambda: Vec<f64>,
    u2: Vec<f64>,
}

impl Spectrum {
    fn of(eig: &Eigen, y: &[f64]) -> Self {
        let n = y.len();
        let q = &eig.q;
        let u2 = (0..n)
            .map(|i| {
                let u: f64 = (0..n).map(|r| q[(r, i)] * y[r]).sum();
                u * u
            })
            .collect();
        Spectrum {
            lambda: eig.lambda.clone(),
            u2,
        }
    }

    /// LML at `(ln s2, ln n2)`.
    fn lml(&self, log_s2: f64, log_n2: f64) -> f64 {
        let (s2, n2) = (log_s2.exp(), log_n2.exp());
        let floor = 1e-10 * s2;
        let mut total = 0.0;
        for (l, u2) in self.lambda.iter().zip(&self.u2) {
            let d = (s2 * l + n2).max(floor);
            total += u2 / d + d.ln();
        }
        -0.5 * total - 0.5 * self.lambda.len() as f64 * (2.0 * std::f64::consts::PI).ln()
    }
}

/// Maximises the LML of standardised labels `y` within `bounds`; `eigen_at(lengthscale)` gives
/// the eigendecomposition of the unit-variance Gram matrix.
pub fn maximise<E: std::ops::Deref<Target = Eigen>>(
    bounds: &Bounds,
    restarts: usize,
    y: &[f64],
    eigen_at: impl Fn(f64) -> Result<E>,
) -> Result<Best> {
    let (best, _) = maximise_with(
        bounds,
        restarts,
        |ls| Ok(Spectrum::of(&*eigen_at(ls)?, y)),
        |s, log_s2, log_n2| s.lml(log_s2, log_n2),
    )?;
    Ok(best)
}

/// The search shared by the exact and the sparse fit: for each lengthscale tried, `prepare`
/// builds what makes `value(prepared, ln s2, ln n2)` cheap; `(s2, n2)` are searched by
/// [`maximise_box`], the lengthscale by a log grid and golden-section refinement. Returns the
/// maximiser and the prepared state at its lengthscale.
pub fn maximise_with<S>(
    bounds: &Bounds,
    restarts: usize,
    mut prepare: impl FnMut(f64) -> Result<S>,
    value: impl Fn(&S, f64, f64) -> f64,
) -> Result<(Best, S)> {
    let mut evaluations = 0;
    let mut inner = |log_ls: f64| -> Result<(f64, f64, f64, S)> {
        let state = prepare(log_ls.exp())?;
        let (point, v, evals) = maximise_box(&[bounds.log_s2, bounds.log_n2], restarts, |p| {
            value(&state, p[0], p[1])
        });
        evaluations += evals;
        Ok((point[0], point[1], v, state))
    };
    let (log_ls, (log_s2, log_n2, _, state)) = match bounds.log_ls {
        None => (0.0, inner(0.0)?),
        Some((lo, hi)) if lo == hi => (lo, inner(lo)?),
        Some((lo, hi)) => {
            const GRID: usize = 9;
            let step = (hi - lo) / (GRID - 1) as f64;
            let mut best = (lo, inner(lo)?);
            for g in 1..GRID {
                let t = lo + step * g as f64;
                let r = inner(t)?;
                if r.2 > best.1 .2 {
                    best = (t, r);
                }
            }
            // Golden-section search on the bracket around the best grid point.
            let (mut a, mut b) = ((best.0 - step).max(lo), (best.0 + step).min(hi));
            let phi = (5f64.sqrt() - 1.0) / 2.0;
            for _ in 0..12 {
                let c = b - phi * (b - a);
                let d = a + phi * (b - a);
                let (rc, rd) = (inner(c)?, inner(d)?);
                let (vc, vd) = (rc.2, rd.2);
                if vc > best.1 .2 {
                    best = (c, rc);
                }
                if vd > best.1 .2 {
                    best = (d, rd);
                }
                if vc >= vd {
                    b = d;
                } else {
                    a = c;
                }
            }
            best
        }
    };
    Ok((
        Best {
            signal_var: log_s2.exp(),
            noise: log_n2.exp(),
            lengthscale: log_ls.exp(),
            evaluations,
        },
        state,
    ))
}

/// Maximises `f` over a box (fixed coordinates have equal ends): a grid scan, then Nelder–Mead
/// from the `restarts` best grid points. Returns the point, its value and the evaluation count.
fn maximise_box(
    bounds: &[(f64, f64)],
    restarts: usize,
    f: impl Fn(&[f64]) -> f64,
) -> (Vec<f64>, f64, usize) {
    const GRID: usize = 12;
    let free: Vec<usize> = (0..bounds.len())
        .filter(|&i| bounds[i].0 < bounds[i].1)
        .collect();
    let base: Vec<f64> = bounds.iter().map(|b| b.0).collect();
    let mut evals = 0;
    let mut eval = |p: &[f64]| {
        evals += 1;
        let v = f(p);
        if v.is_nan() {
            f64::NEG_INFINITY
        } else {
            v
        }
    };
    if free.is_empty() {
        let v = eval(&base);
        return (base, v, evals);
    }
    // Grid over the free coordinates.
    let total = GRID.pow(free.len() as u32);
    let mut scored: Vec<(f64, Vec<f64>)> = Vec::with_capacity(total);
    for g in 0..total {
        let mut p = base.clone();
        let mut rest = g;
        for &i in &free {
            let (lo, hi) = bounds[i];
            p[i] = lo + (hi - lo) * (rest % GRID) as f64 / (GRID - 1) as f64;
            rest /= GRID;
        }
        scored.push((eval(&p), p));
    }
    // Best first; ties keep grid order, so the result is deterministic.
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let steps: Vec<f64> = free
        .iter()
        .map(|&i| (bounds[i].1 - bounds[i].0) / (GRID - 1) as f64)
        .collect();
    let mut best = scored[0].clone();
    for (_, start) in scored.into_iter().take(restarts) {
        let (p, v) = nelder_mead(&start, &free, &steps, bounds, &mut eval);
        if v > best.0 {
            best = (v, p);
        }
    }
    (best.1, best.0, evals)
}

/// Bounded Nelder–Mead maximisation over the `free` coordinates of `start`.
fn nelder_mead(
    start: &[f64],
    free: &[usize],
    steps: &[f64],
    bounds: &[(f64, f64)],
    eval: &mut impl FnMut(&[f64]) -> f64,
) -> (Vec<f64>, f64) {
    let clamp = |mut p: Vec<f64>| {
        for (i, b) in bounds.iter().enumerate() {
            p[i] = p[i].clamp(b.0, b.1);
        }
        p
    };
    let mut simplex: Vec<(f64, Vec<f64>)> = Vec::with_capacity(free.len() + 1);
    simplex.push((eval(start), start.to_vec()));
    for (k, &i) in free.iter().enumerate() {
        let mut p = start.to_vec();
        // Step inward when the start sits on the upper bound.
        p[i] = if p[i] + steps[k] <= bounds[i].1 {
            p[i] + steps[k]
        } else {
            p[i] - steps[k]
        };
        let p = clamp(p);
        simplex.push((eval(&p), p));
    }
    let combine = |a: &[f64], b: &[f64], t: f64| -> Vec<f64> {
        a.iter().zip(b).map(|(x, y)| x + t * (y - x)).collect()
    };
    for _ in 0..200 {
        simplex.sort_by(|a, b| b.0.total_cmp(&a.0));
        let spread = simplex[0].0 - simplex[simplex.len() - 1].0;
        if spread.abs() < 1e-10 {
            break;
        }
        let worst = simplex.len() - 1;
        let mut centroid = vec![0.0; start.len()];
        for (_, p) in &simplex[..worst] {
            for (c, x) in centroid.iter_mut().zip(p) {
                *c += x / worst as f64;
            }
        }
        let reflected = clamp(combine(&centroid, &simplex[worst].1, -1.0));
        let fr = eval(&reflected);
        if fr > simplex[0].0 {
            let expanded = clamp(combine(&centroid, &simplex[worst].1, -2.0));
            let fe = eval(&expanded);
            simplex[worst] = if fe > fr {
                (fe, expanded)
            } else {
                (fr, reflected)
            };
        } else if fr > simplex[worst - 1].0 {
            simplex[worst] = (fr, reflected);
        } else {
            let contracted = clamp(combine(&centroid, &simplex[worst].1, 0.5));
            let fc = eval(&contracted);
            if fc > simplex[worst].0 {
                simplex[worst] = (fc, contracted);
            } else {
                let best = simplex[0].1.clone();
                for s in simplex.iter_mut().skip(1) {
                    let p = clamp(combine(&best, &s.1, 0.5));
                    *s = (eval(&p), p);
                }
            }
        }
    }
    simplex.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (v, p) = simplex.swap_remove(0);
    (p, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_maximiser_finds_an_interior_peak_and_respects_bounds() {
        let f = |p: &[f64]| -(p[0] - 0.3).powi(2) - 2.0 * (p[1] + 0.7).powi(2);
        let (p, v, _) = maximise_box(&[(-2.0, 2.0), (-2.0, 2.0)], 3, f);
        assert!(
            (p[0] - 0.3).abs() < 1e-4 && (p[1] + 0.7).abs() < 1e-4,
            "{p:?}"
        );
        assert!(v > -1e-8);
        // Peak outside the box: the answer sits on the boundary.
        let (p, _, _) = maximise_box(&[(-2.0, 0.0), (-2.0, 2.0)], 2, f);
        assert!(p[0] == 0.0 && (p[1] + 0.7).abs() < 1e-4, "{p:?}");
        // A fixed coordinate stays put.
        let (p, _, _) = maximise_box(&[(1.5, 1.5), (-2.0, 2.0)], 2, f);
        assert_eq!(p[0], 1.5);
    }

    #[test]
    fn spectral_lml_equals_the_cholesky_lml() {
        // A small SPD Gram matrix.
        let g = [1.0, 0.5, 0.2, 0.5, 1.0, 0.4, 0.2, 0.4, 1.0];
        let y = [0.3, -1.2, 0.9];
        let s = Spectrum::of(&Eigen::new(&g, 3).unwrap(), &y);
        let (s2, n2) = (1.7f64, 0.2f64);
        let k = Mat::<f64>::from_fn(3, 3, |i, j| {
            s2 * g[i * 3 + j] + if i == j { n2 } else { 0.0 }
        });
        let l = k.llt(Side::Lower).unwrap().L().to_owned();
        let mut a = Mat::<f64>::from_fn(3, 1, |i, _| y[i]);
        super::super::solve_llt_in_place(&l, &mut a);
        let fit: f64 = (0..3).map(|i| y[i] * a[(i, 0)]).sum();
        let logdet: f64 = 2.0 * (0..3).map(|i| l[(i, i)].ln()).sum::<f64>();
        let want = -0.5 * fit - 0.5 * logdet - 1.5 * (2.0 * std::f64::consts::PI).ln();
        assert!((s.lml(s2.ln(), n2.ln()) - want).abs() < 1e-10);
    }
}
