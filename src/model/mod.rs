//! The fitted model as a value: the GP together with everything scoring needs besides its
//! numbers (the feature settings, the direction, the labeled candidates), saved to and loaded
//! from a versioned, checksummed file ([`file`](mod@file) documents the layout).
//!
//! `poolrank fit --save-model` writes one; `select --model` scores a pool with it instead of
//! refitting, and gives the batch a fresh `select` on the same pool and labels gives.

pub mod file;

use std::path::Path;

use crate::data::{FeatureKind, Features};
use crate::error::{Error, Result};
use crate::gp::FittedGp;
use crate::report::output::{OutputSet, Outputs};

/// A fitted GP with what it was fitted on: feature kind and provenance, the optimisation
/// direction, and the labeled candidates (ids and values as the labels file gave them, in the
/// order of the labels file), which a selection with this model never picks.
#[derive(Clone, Debug)]
pub struct FittedModel {
    gp: FittedGp,
    features: FeatureKind,
    provenance: Option<String>,
    minimize: bool,
    labeled_ids: Vec<String>,
    label_values: Vec<f64>,
}

/// Where a [`FittedModel`] came from: the features it was fitted on and the labels.
#[derive(Clone, Debug)]
pub struct ModelOrigin {
    /// What made the features (an FPS `#type=` line, a `.npz` provenance record), if known.
    pub provenance: Option<String>,
    /// The labels were minimised (the GP was fitted to their negation).
    pub minimize: bool,
    /// Ids of the labeled candidates, in the labels' order.
    pub labeled_ids: Vec<String>,
    /// Their values as given (not negated, not standardised).
    pub label_values: Vec<f64>,
}

impl FittedModel {
    /// A model from a fit of `gp` to the labels in `origin`.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] when the ids and values differ in number, or when an exact GP
    /// does not hold one training row per label.
    pub fn new(gp: FittedGp, origin: ModelOrigin) -> Result<Self> {
        if origin.labeled_ids.len() != origin.label_values.len() {
            return Err(Error::param(
                "labeled_ids",
                format!(
                    "{} ids for {} label values",
                    origin.labeled_ids.len(),
                    origin.label_values.len()
                ),
            ));
        }
        if gp.info.sparse.is_none() && gp.n_train() != origin.labeled_ids.len() {
            return Err(Error::param(
                "labeled_ids",
                format!(
                    "an exact GP on {} rows needs as many labels, got {}",
                    gp.n_train(),
                    origin.labeled_ids.len()
                ),
            ));
        }
        Ok(FittedModel {
            features: gp.train.kind(),
            gp,
            provenance: origin.provenance,
            minimize: origin.minimize,
            labeled_ids: origin.labeled_ids,
            label_values: origin.label_values,
        })
    }

    /// The GP (standardised units, fitted to the labels on the maximisation scale).
    pub fn gp(&self) -> &FittedGp {
        &self.gp
    }

    /// The kind and width of the features the model scores.
    pub fn features(&self) -> FeatureKind {
        self.features
    }

    /// What made those features, when the pool said.
    pub fn provenance(&self) -> Option<&str> {
        self.provenance.as_deref()
    }

    /// True when lower labels are better.
    pub fn minimize(&self) -> bool {
        self.minimize
    }

    /// The labeled candidates' ids, in the labels' order.
    pub fn labeled_ids(&self) -> &[String] {
        &self.labeled_ids
    }

    /// The labels as given, in the order of [`FittedModel::labeled_ids`].
    pub fn label_values(&self) -> &[f64] {
        &self.label_values
    }

    /// `+1` to maximise, `-1` to minimise: the factor between labels and the GP's scale.
    pub fn sign(&self) -> f64 {
        if self.minimize {
            -1.0
        } else {
            1.0
        }
    }

    /// Posterior mean and latent standard deviation (noise excluded) in label units for each
    /// row of `x`, by the f64 reference computation (the scorers are the fast path).
    ///
    /// # Errors
    /// [`Error::FeatureMismatch`] when `x` is not of the model's kind and width.
    pub fn predict(&self, x: &Features) -> Result<(Vec<f64>, Vec<f64>)> {
        self.check_features(x.kind(), None, Path::new("features"))?;
        let (mean, var) = self.gp.predict_valvar(x);
        let sign = self.sign();
        Ok((
            mean.iter()
                .map(|&m| sign * self.gp.mean_to_labels(m))
                .collect(),
            var.iter().map(|&v| self.gp.sd_to_labels(v)).collect(),
        ))
    }

    /// Checks that a pool at `path` with features `kind` (and `provenance`, when known) is one
    /// this model can score: the same kind and width, and the same fingerprint settings when
    /// both the model and the pool record them.
    ///
    /// # Errors
    /// [`Error::FeatureMismatch`] naming both sides.
    pub fn check_features(
        &self,
        kind: FeatureKind,
        provenance: Option<&str>,
        path: &Path,
    ) -> Result<()> {
        if kind != self.features {
            return Err(Error::FeatureMismatch {
                path: path.to_path_buf(),
                msg: format!(
                    "the pool holds {kind} but the model was fitted on {}",
                    self.features
                ),
            });
        }
        if let (Some(model), Some(pool)) = (self.provenance(), provenance) {
            if model != pool {
                return Err(Error::FeatureMismatch {
                    path: path.to_path_buf(),
                    msg: format!(
                        "the pool's fingerprints were made with {pool:?} but the model's with {model:?}"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Checks that labels given beside the model are the ones it was fitted on: the same ids
    /// with the same values (in any order).
    ///
    /// # Errors
    /// [`Error::LabelsMismatch`] naming the first difference.
    pub fn check_labels(&self, path: &Path, ids: &[String], values: &[f64]) -> Result<()> {
        use std::collections::HashMap;
        let mismatch = |msg: String| Error::LabelsMismatch {
            path: path.to_path_buf(),
            msg,
        };
        if ids.len() != self.labeled_ids.len() {
            return Err(mismatch(format!(
                "{} labels, but the model was fitted on {}",
                ids.len(),
                self.labeled_ids.len()
            )));
        }
        let mine: HashMap<&str, f64> = self
            .labeled_ids
            .iter()
            .map(String::as_str)
            .zip(self.label_values.iter().copied())
            .collect();
        for (id, &v) in ids.iter().zip(values) {
            match mine.get(id.as_str()) {
                None => {
                    return Err(mismatch(format!(
                        "id {id:?} is not among the model's labeled candidates"
                    )))
                }
                // Bit equality: the labels file is parsed the same way both times.
                Some(&m) if m.to_bits() != v.to_bits() => {
                    return Err(mismatch(format!(
                        "id {id:?} has the value {v} here but {m} in the model"
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Writes the model to `path` (all or nothing), in the layout of [`file`](mod@file).
    ///
    /// # Errors
    /// [`Error::OutputRefused`] when `path` is not a regular file, [`Error::Io`] when it cannot
    /// be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut set = Outputs::new().output(path).check()?;
        self.save_into(&mut set, path)?;
        set.commit()
    }

    /// Stages the model as the output `path` of `set` (committed with the run's other outputs).
    ///
    /// # Errors
    /// As [`OutputSet::write`].
    pub fn save_into(&self, set: &mut OutputSet, path: &Path) -> Result<()> {
        let bytes = self.to_bytes();
        set.write(path, |w| w.write_all(&bytes))
    }

    /// Reads a model that [`FittedModel::save`] wrote.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, [`Error::Model`] when it is not a model
    /// file, of another version, truncated or corrupted.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// The model in the layout of [`file`](mod@file).
    pub fn to_bytes(&self) -> Vec<u8> {
        file::encode(self)
    }

    /// Parses the layout of [`file`](mod@file); `origin` names the bytes in messages.
    ///
    /// # Errors
    /// [`Error::Model`] as for [`FittedModel::load`].
    pub fn from_bytes(bytes: &[u8], origin: &Path) -> Result<Self> {
        file::decode(bytes, origin)
    }
}

#[cfg(test)]
mod tests;
