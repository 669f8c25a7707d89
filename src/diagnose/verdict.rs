//! Section 6, the verdict: `likely-beats-random`, `likely-random-like` or `uncertain`, with the
//! reasons that drove it, each tied to a number of the sections above.
//!
//! The rules and their thresholds were set against `simulate` on the synthetic scenarios and
//! on Enamine 10k (README, "Diagnose"). A reason for random-like is any of
//! - no skill: the cross-validated Spearman of predictions and labels is below the 97.5%
//!   quantile of its null distribution, `1.96/√(n−1)` for `n` labels, while the other folds
//!   explain at least [`MIN_INFORMED`] of a held-out label's variance (else the labels are too
//!   sparse for the test: `sparse-labels`, at most `uncertain`);
//! - no spread: at least [`NO_SPREAD`] of the pool scores within the noise sd of the best;
//! - no exploitation (find-best): the acquisition ignores the predicted value (`variance`,
//!   `random`), so it never turns to the best candidates;
//! - outlier chasing by such an acquisition: at least half the batch are outliers, and at
//!   least 3× the pool's share (for value-aware acquisitions this is a warning only: they
//!   return to the best once the outliers' uncertainty is spent);
//! - for `--objective accuracy` with a value-blind acquisition, a test set away from the pool:
//!   at least half the test candidates are farther from the pool than 95% of pool candidates
//!   are from each other (with a value-aware acquisition this makes the verdict `uncertain`).
//!
//! Without one, the verdict is `uncertain` when a caution holds: weak skill (CV Spearman below
//! [`WEAK_SKILL`]), bad calibration (95% interval covering less than [`MIN_COVERAGE95`], or
//! standardised residual sd above [`MAX_Z_SD`]), sparse labels, or the test mismatch above;
//! else `likely-beats-random`. A train R² far above the CV R² is reported but not held
//! against the model: a GP with little noise interpolates its labels (train R² near 1)
//! whatever its skill, and on Enamine 10k the gap exceeded [`MAX_R2_GAP`] for two of three
//! label sets where active learning beats random. A high nearest-neighbour similarity is
//! reported but not held against the pool: it is high in every densely sampled pool (2-D
//! `smooth`: 1.00), where active learning beats random.

use super::batch::BatchSection;
use super::cv::{CvResult, ModelFit, ModelSection};
use super::objective::ObjectiveSection;
use super::rules::*;
use super::spread::SpreadSection;
use crate::acquisition::Acquisition;
use crate::sim::Objective;

/// The verdict word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Word {
    /// Active learning is likely to beat random.
    LikelyBeatsRandom,
    /// Active learning is likely no better than random.
    LikelyRandomLike,
    /// The numbers do not settle it.
    Uncertain,
}

impl Word {
    /// As printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Word::LikelyBeatsRandom => "likely-beats-random",
            Word::LikelyRandomLike => "likely-random-like",
            Word::Uncertain => "uncertain",
        }
    }
}

/// A reason, tied to a number.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Reason {
    /// Rule name (`no-skill`, `no-spread`, `homogeneous`, `outlier-chasing`,
    /// `test-mismatch`, `weak-skill`, `miscalibrated`, `over-fitting`, `skill`).
    pub rule: &'static str,
    /// Which section and number.
    pub measure: String,
    /// The number.
    pub value: f64,
    /// The threshold it was compared with.
    pub threshold: f64,
    /// What it means and what to do.
    pub advice: String,
}

/// Section 6.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Verdict {
    /// The word.
    pub verdict: Word,
    /// The reasons that drove it.
    pub reasons: Vec<Reason>,
    /// Flags raised by the sections (`outlier-chasing`, `test-mismatch`).
    pub flags: Vec<&'static str>,
    /// Flagged behaviour that does not change the verdict (outlier chasing by an acquisition
    /// that also weighs the predicted value).
    pub warnings: Vec<Reason>,
}

/// The kernel to recommend: the alternative with the lowest CV NLPD when it beats the chosen
/// kernel by [`KERNEL_MARGIN`], else the chosen one.
pub fn recommend_kernel(main: &CvResult, all: &[CvResult]) -> &'static str {
    let best = all
        .iter()
        .filter(|c| c.nlpd.is_finite())
        .min_by(|a, b| a.nlpd.total_cmp(&b.nlpd));
    match best {
        Some(b) if b.nlpd < main.nlpd - KERNEL_MARGIN => b.kernel,
        _ => main.kernel,
    }
}

/// The model section's one-line reading.
pub fn model_reading(
    cv: &CvResult,
    fit: &ModelFit,
    r2_gap: f64,
    recommended: &str,
    n: usize,
) -> String {
    let skill = if cv.spearman.is_nan() || cv.spearman < skill_threshold(n) {
        "no better than chance at ranking held-out labels"
    } else if cv.spearman < WEAK_SKILL {
        "weak at ranking held-out labels"
    } else {
        "ranks held-out labels well"
    };
    let mut s = format!(
        "{}-fold CV: R² {:.2}, Spearman {:.2} ({skill}); 95% intervals cover {:.0}%, residual sd {:.2}; train R² {:.2}",
        cv.folds,
        cv.r2,
        cv.spearman,
        100.0 * cv.coverage95,
        cv.z_sd,
        fit.train_r2
    );
    if r2_gap > MAX_R2_GAP {
        s.push_str(" (over-fitting)");
    } else if fit.train_r2 < MIN_TRAIN_R2 {
        s.push_str(" (under-fitting)");
    }
    if !fit.at_bound.is_empty() {
        s.push_str(&format!("; {}", fit.at_bound.join(", ")));
    }
    if recommended != cv.kernel {
        s.push_str(&format!(
            "; {recommended} predicts better than {}: try --kernel {recommended}",
            cv.kernel
        ));
    }
    s
}

/// Applies the rules.
pub fn decide(
    spread: &SpreadSection,
    model: &ModelSection,
    batch: &BatchSection,
    objective: Option<&ObjectiveSection>,
    goal: Objective,
    acq: Acquisition,
    n: usize,
) -> Verdict {
    let mut random = Vec::new();
    let mut caution = Vec::new();
    let mut flags = Vec::new();
    // Flags that warn but do not change the verdict.
    let mut caution_flags = Vec::new();
    let cv = &model.cv;
    let thr = skill_threshold(n);
    let rho = if cv.spearman.is_nan() {
        0.0
    } else {
        cv.spearman
    };
    if rho < thr && cv.informed < MIN_INFORMED {
        caution.push(Reason {
            rule: "sparse-labels",
            measure: "model: share of held-out variance the other folds explain".into(),
            value: cv.informed,
            threshold: MIN_INFORMED,
            advice: format!("the cross-validation cannot test the model (Spearman {rho:.2}): held-out labels lie too far from the others; label more, or judge by a short simulation"),
        });
    } else if rho < thr {
        random.push(Reason {
            rule: "no-skill",
            measure: "model: CV Spearman".into(),
            value: rho,
            threshold: thr,
            advice: "the model cannot rank held-out labels better than chance: the labels may be mostly noise, or the features may not explain them; try another kernel or features, or label more before relying on the model".into(),
        });
    }
    if let Some(s) = spread.within_noise_share {
        if s >= NO_SPREAD {
            random.push(Reason {
                rule: "no-spread",
                measure: "spread: share of the pool within noise of the best score".into(),
                value: s,
                threshold: NO_SPREAD,
                advice: "most candidates are indistinguishable from the best within the noise: no policy can do much better than random; reduce the assay noise or change the features".into(),
            });
        }
    }
    // Acquisitions blind to the predicted value never turn back to the best candidates; the
    // others explore first and exploit once the uncertainty is spent (simulate: UCB beats
    // random on `outliers` although its first batch is all outliers).
    let blind = matches!(acq, Acquisition::Variance | Acquisition::Random);
    if goal == Objective::FindBest && blind {
        random.push(Reason {
            rule: "no-exploitation",
            measure: "batch: predicted value above the pool's, in sd of the pool's predictions".into(),
            value: batch.mean_gap,
            threshold: MIN_EXPLOIT,
            advice: format!("{} ignores the predicted values: it explores only and will not find the best candidates faster than random; use ucb or greedy to find the best", acq.name()),
        });
    }
    if batch.outlier_chasing {
        flags.push("outlier-chasing");
        let reason = Reason {
            rule: "outlier-chasing",
            measure: "batch: share of outliers".into(),
            value: batch.outlier_share,
            threshold: 0.5f64.max(3.0 * batch.pool_outlier_share),
            advice: "the batch goes to candidates far from every label; their labels teach little about the rest of the pool: use greedy, or drop the outliers".into(),
        };
        if blind {
            random.push(reason);
        } else {
            caution_flags.push(reason);
        }
    }
    if let Some(o) = objective {
        if o.mismatch {
            flags.push("test-mismatch");
            if goal == Objective::Accuracy {
                let reason = Reason {
                    rule: "test-mismatch",
                    measure: "objective: share of test candidates far from the pool".into(),
                    value: o.test_far_share,
                    threshold: 0.5,
                    advice: "the test set lies away from the pool, so no choice from the pool teaches the model much about it (a strategy can only move the mean level the model predicts there): add candidates like the test set to the pool".into(),
                };
                if blind {
                    random.push(reason);
                } else {
                    caution.push(reason);
                }
            }
        }
    }
    if rho >= thr && rho < WEAK_SKILL {
        caution.push(Reason {
            rule: "weak-skill",
            measure: "model: CV Spearman".into(),
            value: rho,
            threshold: WEAK_SKILL,
            advice: "the model ranks held-out labels only a little better than chance; gains over random will be small: try another kernel or label more".into(),
        });
    }
    if cv.coverage95 < MIN_COVERAGE95 || cv.z_sd > MAX_Z_SD {
        caution.push(Reason {
            rule: "miscalibrated",
            measure: "model: CV coverage of the 95% interval".into(),
            value: cv.coverage95,
            threshold: MIN_COVERAGE95,
            advice: format!("the predicted sd is too small (residual sd {:.2}): uncertainty-driven acquisitions will misjudge; try another kernel or fix --noise higher", cv.z_sd),
        });
    }
    let (verdict, reasons) = if !random.is_empty() {
        (Word::LikelyRandomLike, random)
    } else if !caution.is_empty() {
        (Word::Uncertain, caution)
    } else {
        (
            Word::LikelyBeatsRandom,
            vec![Reason {
                rule: "skill",
                measure: "model: CV Spearman".into(),
                value: rho,
                threshold: WEAK_SKILL,
                advice: "the model ranks held-out labels well, its intervals are calibrated, and the pool has spread: run the loop".into(),
            }],
        )
    };
    Verdict {
        verdict,
        reasons,
        flags,
        warnings: caution_flags,
    }
}
