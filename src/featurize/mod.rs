//! SMILES → RDKit-identical Morgan fingerprints: the molecule reader, the parallel featurizer,
//! the `featurize` run (streaming to `.npz` counts or FPS bits) and the on-the-fly SMILES pool.

mod morgan;

pub use morgan::{Fingerprint, Morgan, MorganParams, ENGINE};
