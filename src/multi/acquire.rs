//! The multi-objective acquisitions and constraints, per candidate, from each model's
//! posterior.

use crate::acquisition::{score, score_bound, AcqContext, Acquisition};
use crate::error::{Error, Result};
use crate::gp::FittedGp;
use crate::names::Named;
use crate::pareto::{normal_cdf, FrontBoxes};

/// How a multi-objective round scores candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParetoAcquisition {
    /// Expected hypervolume improvement over the labeled front (exact, 2 or 3 objectives).
    Ehvi,
    /// Probability of hypervolume improvement: of landing outside the region the labeled front
    /// dominates.
    Phvi,
    /// Non-dominated sorting of each objective's UCB, the batch filled layer by layer in
    /// descending crowding distance.
    ParetoUcb,
    /// ParEGO: a GP on the labels scalarised by a random augmented Chebyshev weight per round,
    /// scored by expected improvement.
    Parego,
}

impl Named for ParetoAcquisition {
    const WHAT: &'static str = "multi-objective acquisition";
    const TABLE: &'static [(Self, &'static str, &'static str)] = &[
        (
            ParetoAcquisition::Ehvi,
            "ehvi",
            "Expected hypervolume improvement over the labeled front",
        ),
        (
            ParetoAcquisition::Phvi,
            "phvi",
            "Probability of improving the labeled front's hypervolume",
        ),
        (
            ParetoAcquisition::ParetoUcb,
            "pareto-ucb",
            "Non-dominated sorting of each objective's UCB (mean + beta × sd), crowding distance within a layer",
        ),
        (
            ParetoAcquisition::Parego,
            "parego",
            "ParEGO: expected improvement of a random Chebyshev scalarisation, drawn per round",
        ),
    ];
}
crate::names::named!(ParetoAcquisition);

/// Which side of its threshold a constrained value must lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Bound {
    /// `column >= threshold`.
    AtLeast,
    /// `column <= threshold`.
    AtMost,
}

/// A constraint on one label column: `qed>=0.5`, `logp<=5`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Constraint {
    /// The column of the labels file.
    pub column: String,
    /// Its side.
    pub bound: Bound,
    /// The threshold, in the column's units.
    pub threshold: f64,
}

impl std::str::FromStr for Constraint {
    type Err = Error;

    /// `NAME>=VALUE` or `NAME<=VALUE` (spaces around either part allowed).
    fn from_str(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::param(
                "constraint",
                format!("{text:?}: {why}; expected NAME>=VALUE or NAME<=VALUE, e.g. \"qed>=0.5\""),
            )
        };
        let (column, bound, value) = if let Some((c, v)) = text.split_once(">=") {
            (c, Bound::AtLeast, v)
        } else if let Some((c, v)) = text.split_once("<=") {
            (c, Bound::AtMost, v)
        } else {
            return Err(bad("no >= or <="));
        };
        let column = column.trim();
        if column.is_empty() {
            return Err(bad("no column name"));
        }
        let threshold: f64 = value
            .trim()
            .parse()
            .map_err(|_| bad("the threshold is not a number"))?;
        if !threshold.is_finite() {
            return Err(bad("the threshold must be finite"));
        }
        Ok(Constraint {
            column: column.to_string(),
            bound,
            threshold,
        })
    }
}

impl Constraint {
    /// Whether `value` (in the column's units) meets the constraint.
    pub fn holds(&self, value: f64) -> bool {
        match self.bound {
            Bound::AtLeast => value >= self.threshold,
            Bound::AtMost => value <= self.threshold,
        }
    }
}

impl std::fmt::Display for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.bound {
            Bound::AtLeast => ">=",
            Bound::AtMost => "<=",
        };
        write!(f, "{}{op}{}", self.column, self.threshold)
    }
}

/// One model's map from its standardised latent posterior to label units: `sign · (y_mean +
/// y_sd · mean)` and `y_sd · sd`, `sign` −1 for a minimised column.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Mean of the labels the model was fitted on (maximised).
    pub y_mean: f64,
    /// Their standard deviation.
    pub y_sd: f64,
    /// −1 when the model was fitted on negated labels (a minimised objective).
    pub sign: f64,
}

impl Scale {
    /// The scale of `gp`, fitted on labels multiplied by `sign`.
    pub fn of(gp: &FittedGp, sign: f64) -> Self {
        Scale {
            y_mean: gp.y_mean,
            y_sd: gp.y_sd,
            sign,
        }
    }

    /// The maximised mean and the standard deviation in label units.
    #[inline]
    pub fn maximised(&self, mean: f32, var: f32) -> (f64, f64) {
        (
            self.y_mean + self.y_sd * f64::from(mean),
            self.y_sd * f64::from(var).max(0.0).sqrt(),
        )
    }
}

/// A candidate's acquisition value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// One number, larger is better (EHVI, PHVI, ParEGO's EI), times the probability of
    /// feasibility.
    Scalar(f64),
    /// Per-objective UCB in standardised units (`pareto-ucb`), the first `m` entries.
    Vector([f64; 3]),
    /// ParEGO: the expected improvement under each weight vector's model (the first
    /// [`Acquirer::parego`]`.len()` entries), times the probability of feasibility.
    Weighted([f64; PAREGO_WEIGHTS]),
}

/// The most weight vectors ParEGO draws per round: `min(batch, 8)`, the batch shared out
/// among them in turn.
pub const PAREGO_WEIGHTS: usize = 8;

/// A constraint bound to its model.
#[derive(Clone, Debug)]
pub struct BoundConstraint {
    /// The model of its column (an index into the round's models).
    pub head: usize,
    /// Its side.
    pub bound: Bound,
    /// Its threshold in the column's units.
    pub threshold: f64,
}

/// Scores a candidate from every model's posterior.
#[derive(Clone, Debug)]
pub struct Acquirer {
    /// The acquisition.
    pub acquisition: ParetoAcquisition,
    /// UCB weight of `pareto-ucb`.
    pub beta: f32,
    /// Each model's scale (objectives first, in order).
    pub scales: Vec<Scale>,
    /// The objectives' models: `0..m`.
    pub m: usize,
    /// The constraints.
    pub constraints: Vec<BoundConstraint>,
    /// EHVI/PHVI: the labeled front's boxes (maximised label units).
    pub boxes: Option<FrontBoxes>,
    /// ParEGO: each weight vector's scalarised model and its incumbent (standardised).
    pub parego: Vec<(usize, AcqContext)>,
}

impl Acquirer {
    /// The probability that the candidate meets every constraint (1 without constraints):
    /// the product over constraints of `Φ((μ − t)/σ)` for `≥` (`Φ((t − μ)/σ)` for `≤`), each
    /// under its column's model, in the column's units; at `σ = 0` the indicator.
    pub fn feasibility(&self, mean: &[f32], var: &[f32]) -> f64 {
        self.constraints
            .iter()
            .map(|c| {
                let (margin, sd) = self.margin(c, mean, var);
                if sd > 0.0 {
                    normal_cdf(margin / sd)
                } else if margin >= 0.0 {
                    1.0
                } else {
                    0.0
                }
            })
            .product()
    }

    /// How far constraint `c`'s column's mean lies on its side of the threshold (negative
    /// when it misses it) and its sd, in the column's units.
    fn margin(&self, c: &BoundConstraint, mean: &[f32], var: &[f32]) -> (f64, f64) {
        let s = &self.scales[c.head];
        let (mu, sd) = s.maximised(mean[c.head], var[c.head]);
        let mu = s.sign * mu;
        let margin = match c.bound {
            Bound::AtLeast => mu - c.threshold,
            Bound::AtMost => c.threshold - mu,
        };
        (margin, sd)
    }

    /// An upper bound of [`Acquirer::feasibility`] at every variance up to `var_hi`: a
    /// constraint the mean meets may be met with certainty (1), one it misses is likeliest at
    /// the largest variance (`Φ` of the margin over the largest sd, raised by a margin that
    /// covers rounding).
    fn feasibility_bound(&self, mean: &[f32], var_hi: &[f32]) -> f64 {
        self.constraints
            .iter()
            .map(|c| {
                let (margin, sd) = self.margin(c, mean, var_hi);
                if margin >= 0.0 {
                    1.0
                } else if sd > 0.0 {
                    (normal_cdf(margin / sd) * (1.0 + 1.0 / 1024.0)).min(1.0)
                } else {
                    0.0
                }
            })
            .product()
    }

    /// ParEGO's value: `ei(EI, mean, var, key, ctx)` of each weight vector's model (the exact
    /// [`score`] or its [`score_bound`]) times `p`.
    fn parego_values(
        &self,
        mean: &[f32],
        var: &[f32],
        key: u64,
        p: f64,
        ei: fn(Acquisition, f32, f32, u64, &AcqContext) -> f32,
    ) -> Value {
        let mut v = [0.0; PAREGO_WEIGHTS];
        for (out, (head, ctx)) in v.iter_mut().zip(&self.parego) {
            let e = ei(
                Acquisition::Ei { xi: 0.0 },
                mean[*head],
                var[*head],
                key,
                ctx,
            );
            *out = f64::from(e) * p;
        }
        Value::Weighted(v)
    }

    /// Whether [`Acquirer::value_bound`] bounds this acquisition: every one, with or without
    /// constraints. (`pareto-ucb`'s bound is its UCB vector at the variance bounds, which the
    /// batcher refuses once `batch` scored candidates dominate it: two objectives only, see
    /// [`super::Batcher::admits`].)
    pub fn prunable(&self) -> bool {
        matches!(
            self.acquisition,
            ParetoAcquisition::Ehvi
                | ParetoAcquisition::Phvi
                | ParetoAcquisition::Parego
                | ParetoAcquisition::ParetoUcb
        )
    }

    /// An upper bound of [`Acquirer::value`] at every variance up to `var_hi` (one per model),
    /// for a [`Acquirer::prunable`] acquisition: the value at `var_hi`, raised by a margin
    /// that covers rounding (EHVI's from a table of the normal's partial expectation,
    /// [`FrontBoxes::ehvi_bound`], a little above its value and cheaper; `pareto-ucb`'s UCBs
    /// need none). EHVI grows with each objective's variance: the improvement `HVI(y)` is
    /// convex in each coordinate (the region the front leaves open only widens as the
    /// coordinate grows), so spreading a coordinate's normal raises its expectation. EI grows
    /// with the variance too ([`score_bound`]). The probability of feasibility does not (it
    /// falls with the variance where the mean meets a constraint): it is bounded on its own,
    /// by 1 or its value at `var_hi` (`Acquirer::feasibility_bound`), and the product of the
    /// two bounds bounds the product. PHVI is not monotone in the variance either: it is
    /// bounded box by box ([`FrontBoxes::phvi_bound`]).
    ///
    /// # Errors
    /// A non-finite posterior reaching the box sums.
    pub fn value_bound(&self, mean: &[f32], var_hi: &[f32], key: u64) -> Result<Value> {
        debug_assert!(self.prunable());
        let p = self.feasibility_bound(mean, var_hi);
        Ok(match self.acquisition {
            ParetoAcquisition::Parego => self.parego_values(mean, var_hi, key, p, score_bound),
            // Each UCB rises with its variance, through monotone roundings: no margin.
            ParetoAcquisition::ParetoUcb => self.value(mean, var_hi, key)?,
            _ => {
                let v = self.hypervolume_value(mean, var_hi, true)? * p;
                Value::Scalar(v + v.abs() / 1024.0 + f64::MIN_POSITIVE)
            }
        })
    }

    /// EHVI or PHVI of the objectives' posteriors, before any constraint; with `bound`, an upper
    /// bound: EHVI's at `var` (EHVI grows with every variance), PHVI's at every variance up to
    /// `var`.
    fn hypervolume_value(&self, mean: &[f32], var: &[f32], bound: bool) -> Result<f64> {
        let m = self.m;
        let boxes = self.boxes.as_ref().expect("EHVI and PHVI have boxes");
        let (mut mu, mut sd) = ([0.0; 3], [0.0; 3]);
        for j in 0..m {
            (mu[j], sd[j]) = self.scales[j].maximised(mean[j], var[j]);
        }
        match (self.acquisition, bound) {
            (ParetoAcquisition::Ehvi, false) => boxes.ehvi(&mu[..m], &sd[..m]),
            (ParetoAcquisition::Ehvi, true) => boxes.ehvi_bound(&mu[..m], &sd[..m]),
            (_, false) => boxes.phvi(&mu[..m], &sd[..m]),
            (_, true) => boxes.phvi_bound(&mu[..m], &sd[..m]),
        }
    }

    /// The candidate's value from each model's standardised latent `mean` and `var` (one per
    /// model), `key` keying ParEGO's draws (none use it today).
    ///
    /// # Errors
    /// A non-finite posterior reaching the box sums.
    pub fn value(&self, mean: &[f32], var: &[f32], key: u64) -> Result<Value> {
        let m = self.m;
        Ok(match self.acquisition {
            ParetoAcquisition::Ehvi | ParetoAcquisition::Phvi => Value::Scalar(
                self.hypervolume_value(mean, var, false)? * self.feasibility(mean, var),
            ),
            ParetoAcquisition::Parego => {
                let p = self.feasibility(mean, var);
                self.parego_values(mean, var, key, p, score)
            }
            ParetoAcquisition::ParetoUcb => {
                let mut u = [0.0; 3];
                for j in 0..m {
                    u[j] = f64::from(mean[j])
                        + f64::from(self.beta) * f64::from(var[j]).max(0.0).sqrt();
                }
                Value::Vector(u)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints_parse_and_print() {
        let c: Constraint = " qed >= 0.5".parse().unwrap();
        assert_eq!(
            c,
            Constraint {
                column: "qed".into(),
                bound: Bound::AtLeast,
                threshold: 0.5
            }
        );
        assert_eq!(c.to_string(), "qed>=0.5");
        let c: Constraint = "logp<=-1e1".parse().unwrap();
        assert_eq!((c.bound, c.threshold), (Bound::AtMost, -10.0));
        for bad in ["qed>0.5", ">=1", "qed>=x", "qed>=inf"] {
            let e = bad.parse::<Constraint>().unwrap_err().to_string();
            assert!(
                e.contains("constraint") && e.contains("NAME>=VALUE"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn feasibility_is_the_normal_tail_in_the_columns_units() {
        let scale = Scale {
            y_mean: 1.0,
            y_sd: 2.0,
            sign: -1.0,
        };
        let acq = Acquirer {
            acquisition: ParetoAcquisition::ParetoUcb,
            beta: 2.0,
            scales: vec![scale],
            m: 1,
            constraints: vec![BoundConstraint {
                head: 0,
                bound: Bound::AtMost,
                threshold: -3.0,
            }],
            boxes: None,
            parego: Vec::new(),
        };
        // Maximised mean 1 + 2·0.5 = 2, the column's value −2, sd 2·1 = 2:
        // P(x ≤ −3) = Φ((−3 − (−2))/2) = Φ(−0.5).
        let p = acq.feasibility(&[0.5], &[1.0]);
        assert!((p - normal_cdf(-0.5)).abs() < 1e-12, "{p}");
        // sd 0: the indicator.
        assert_eq!(acq.feasibility(&[0.5], &[0.0]), 0.0);
        assert_eq!(acq.feasibility(&[1.5], &[0.0]), 1.0);
    }
}
