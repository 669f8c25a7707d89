//! SMILES → RDKit-identical Morgan fingerprints: the molecule reader, the parallel featurizer,
//! the `featurize` run (streaming to `.npz` counts or FPS bits) and the on-the-fly SMILES pool.
//!
//! ```
//! use poolrank::featurize::MorganParams;
//!
//! let morgan = MorganParams::default().check().unwrap(); // radius 2, 2048 counts
//! let fp = morgan.fingerprint("c1ccccc1O").unwrap();
//! // (feature, count) pairs, as RDKit's GetCountFingerprintAsNumPy gives them.
//! assert!(fp.pairs.iter().all(|&(i, c)| i < 2048 && c > 0));
//! assert!(morgan.fingerprint("not a molecule").is_err());
//! ```

mod counts;
mod input;
mod morgan;
mod pool;
mod run;

pub use input::{has_column, is_smi_name, Layout, MoleculeReader, Record, SmilesSource};
pub use morgan::{Fingerprint, Morgan, MorganParams, ENGINE};
pub use pool::SmilesPoolReader;
pub use run::{featurize_file, ids_path, FeaturizeConfig, FeaturizeSummary, OutputFormat};

use rayon::prelude::*;

/// Featurizes `records` in parallel (on the current rayon pool); results in input order.
pub fn featurize_records(
    morgan: &Morgan,
    records: &[Record],
) -> Vec<std::result::Result<Fingerprint, String>> {
    records
        .par_iter()
        .with_min_len(64)
        .map(|r| morgan.fingerprint(&r.smiles))
        .collect()
}

/// A warning when a pool's provenance says it was featurized with other settings than the
/// defaults that `featurize` and `--pool x.smi` use (so molecules featurized later, e.g. new
/// labeled compounds, would not be comparable); `None` when they agree or nothing is known.
pub fn provenance_warning(provenance: Option<&str>) -> Option<String> {
    let params = MorganParams::from_provenance(provenance?)?;
    let default = MorganParams::default();
    (params != default).then(|| {
        format!(
            "the pool's fingerprints were made with {}, not the defaults ({}) that `poolrank \
             featurize` and `--pool FILE.smi` use: featurize any other molecules you compare \
             with them (labeled sets, new libraries) with the same --radius/--bits/--bits-only",
            params.describe(),
            default.describe()
        )
    })
}
