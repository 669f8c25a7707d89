//! One molecule's Morgan fingerprint: checked settings, the `chematic-fp` computation, provenance.
//!
//! `chematic-fp`'s `rdkit_morgan_fingerprint` reproduces RDKit's Morgan generator
//! (`rdFingerprintGenerator.GetMorganGenerator(radius, fpSize)` with its defaults: no chirality,
//! no features, bond types on); its `folded_counts` equal `GetCountFingerprintAsNumPy` and its
//! bits `GetFingerprintAsNumPy`. Plain molecules get the same counts from `counts.rs`, a
//! counts-only port of the crate's expansion (faster: no per-bit provenance maps).

use chematic_fp::{RdkitMorganConfig, RdkitMorganFpSize, RdkitMorganRadius};

use crate::data::{words_for, FeatureKind};
use crate::error::{Error, Result};

/// The version of `chematic-fp` that computes the fingerprints (pinned in `Cargo.toml`).
pub const ENGINE: &str = "chematic-fp/1.2.1";

/// What to compute: Morgan radius, folded width, counts or bits.
///
/// Defaults: radius 2, 2048 features, counts (RDKit's `GetMorganGenerator` defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MorganParams {
    /// Morgan radius (0 to 3).
    pub radius: u32,
    /// Folded width: 128, 256, 512, 1024 or 2048.
    pub nbits: usize,
    /// Counts (`true`) or bits (`false`, bit `i` set when count `i` > 0).
    pub counts: bool,
}

impl Default for MorganParams {
    fn default() -> Self {
        MorganParams {
            radius: 2,
            nbits: 2048,
            counts: true,
        }
    }
}

impl MorganParams {
    /// Validates the settings against those `chematic-fp` verified against RDKit.
    pub fn check(&self) -> Result<Morgan> {
        let radius = match self.radius {
            0 => RdkitMorganRadius::R0,
            1 => RdkitMorganRadius::R1,
            2 => RdkitMorganRadius::R2,
            3 => RdkitMorganRadius::R3,
            r => {
                return Err(Error::param(
                    "radius",
                    format!("{r}; RDKit-identical Morgan fingerprints support radius 0 to 3"),
                ))
            }
        };
        let fp_size = match self.nbits {
            128 => RdkitMorganFpSize::B128,
            256 => RdkitMorganFpSize::B256,
            512 => RdkitMorganFpSize::B512,
            1024 => RdkitMorganFpSize::B1024,
            2048 => RdkitMorganFpSize::B2048,
            b => {
                return Err(Error::param(
                    "bits",
                    format!(
                    "{b}; RDKit-identical Morgan fingerprints support 128, 256, 512, 1024 or 2048"
                ),
                ))
            }
        };
        Ok(Morgan {
            params: *self,
            config: RdkitMorganConfig {
                radius,
                fp_size,
                include_chirality: false,
            },
        })
    }

    /// The kind of features these settings make.
    pub fn kind(&self) -> FeatureKind {
        if self.counts {
            FeatureKind::Counts { ndim: self.nbits }
        } else {
            FeatureKind::Bits { nbits: self.nbits }
        }
    }

    /// The one-line description written to an FPS `#type=` line and an `.npz`'s provenance.
    pub fn provenance(&self) -> String {
        format!(
            "poolrank-Morgan/1 radius={} fpSize={} values={} engine={ENGINE} \
             equals=RDKit.GetMorganGenerator(radius={},fpSize={}).{}",
            self.radius,
            self.nbits,
            if self.counts { "counts" } else { "bits" },
            self.radius,
            self.nbits,
            if self.counts {
                "GetCountFingerprintAsNumPy"
            } else {
                "GetFingerprintAsNumPy"
            }
        )
    }

    /// Reads back the settings from a [`MorganParams::provenance`] line; `None` for any other.
    pub fn from_provenance(text: &str) -> Option<Self> {
        let mut fields = text.split_whitespace();
        if fields.next()? != "poolrank-Morgan/1" {
            return None;
        }
        let (mut radius, mut nbits, mut counts) = (None, None, None);
        for f in fields {
            match f.split_once('=') {
                Some(("radius", v)) => radius = v.parse().ok(),
                Some(("fpSize", v)) => nbits = v.parse().ok(),
                Some(("values", v)) => counts = Some(v == "counts"),
                _ => {}
            }
        }
        Some(MorganParams {
            radius: radius?,
            nbits: nbits?,
            counts: counts?,
        })
    }

    /// A short human description: `radius 2, 2048 counts`.
    pub fn describe(&self) -> String {
        format!(
            "Morgan radius {}, {} {}",
            self.radius,
            self.nbits,
            if self.counts { "counts" } else { "bits" }
        )
    }
}

/// Validated Morgan settings; computes fingerprints.
#[derive(Clone, Debug)]
pub struct Morgan {
    params: MorganParams,
    config: RdkitMorganConfig,
}

/// One molecule's fingerprint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    /// Counts mode: `(feature, count)` sorted by feature, counts > 0. Bits mode: `(bit, 1)`.
    pub pairs: Vec<(u32, u32)>,
}

impl Fingerprint {
    /// The bits as LSB-first `u64` words (`nbits` wide): bit `i` set when feature `i` occurs.
    pub fn words(&self, nbits: usize) -> Vec<u64> {
        let mut w = vec![0u64; words_for(nbits)];
        for &(i, _) in &self.pairs {
            w[i as usize / 64] |= 1 << (i % 64);
        }
        w
    }
}

impl Morgan {
    /// The settings.
    pub fn params(&self) -> &MorganParams {
        &self.params
    }

    /// Parses `smiles` and computes its fingerprint; `Err` holds the reason a molecule is
    /// refused (a SMILES that does not parse, chemistry RDKit's sanitization rejects, or a case
    /// `chematic-fp` cannot make identical to RDKit).
    pub fn fingerprint(&self, smiles: &str) -> std::result::Result<Fingerprint, String> {
        let mol = chematic_smiles::parse(smiles).map_err(|e| format!("SMILES parse error: {e}"))?;
        if mol.atom_count() == 0 {
            return Err("no atoms".into());
        }
        // RDKit's MolFromSmiles returns None for these (valence, kekulization); a fingerprint
        // would have no RDKit counterpart.
        match chematic_smiles::rdkit_detect_chemistry_problems(&mol) {
            Ok(problems) if problems.is_empty() => {}
            Ok(problems) => {
                let p = &problems[0];
                return Err(format!("RDKit sanitization: {}: {}", p.kind, p.message));
            }
            Err(e) => return Err(format!("RDKit sanitization: {e}")),
        }
        self.unchecked(&mol)
    }

    /// The Morgan step alone, on a parsed molecule, without RDKit's sanitization check that
    /// [`Morgan::fingerprint`] runs first: only for the per-stage benchmark.
    #[doc(hidden)]
    pub fn bench_morgan_only(
        &self,
        mol: &chematic_core::Molecule,
    ) -> std::result::Result<Fingerprint, String> {
        self.unchecked(mol)
    }

    /// Counts or bits of a molecule that passed the checks: computed here for plain
    /// molecules (`counts.rs`), by `chematic-fp` for the others.
    fn unchecked(&self, mol: &chematic_core::Molecule) -> std::result::Result<Fingerprint, String> {
        let mut ids = Vec::with_capacity(4 * mol.atom_count());
        let mut pairs: Vec<(u32, u32)> =
            if super::counts::folded_ids(mol, self.params.radius, self.params.nbits, &mut ids) {
                // (feature, count) runs of the sorted folded identifiers; bits keep count 1.
                ids.sort_unstable();
                let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(ids.len());
                for id in ids {
                    match pairs.last_mut() {
                        Some((last, c)) if *last == id => *c += u32::from(self.params.counts),
                        _ => pairs.push((id, 1)),
                    }
                }
                pairs
            } else if self.params.counts {
                chematic_fp::rdkit_morgan_fingerprint(mol, &self.config)
                    .map_err(|e| e.to_string())?
                    .folded_counts
                    .into_iter()
                    .map(|(i, c)| (i as u32, c))
                    .collect()
            } else {
                let bv = chematic_fp::rdkit_morgan_bitvec(mol, &self.config)
                    .map_err(|e| e.to_string())?;
                (0..self.params.nbits)
                    .filter(|&i| bv.get(i))
                    .map(|i| (i as u32, 1))
                    .collect()
            };
        pairs.sort_unstable();
        Ok(Fingerprint { pairs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_outside_the_verified_set_are_refused() {
        let p = MorganParams {
            radius: 4,
            ..MorganParams::default()
        };
        assert!(matches!(
            p.check(),
            Err(Error::InvalidParam { name: "radius", .. })
        ));
        let p = MorganParams {
            nbits: 4096,
            ..MorganParams::default()
        };
        assert!(matches!(
            p.check(),
            Err(Error::InvalidParam { name: "bits", .. })
        ));
    }

    #[test]
    fn provenance_round_trips() {
        for p in [
            MorganParams::default(),
            MorganParams {
                radius: 3,
                nbits: 1024,
                counts: false,
            },
        ] {
            assert_eq!(MorganParams::from_provenance(&p.provenance()), Some(p));
        }
        assert_eq!(
            MorganParams::from_provenance("RDKit-Morgan/1 radius=2"),
            None
        );
    }

    #[test]
    fn bad_molecules_are_refused_with_a_reason() {
        let m = MorganParams::default().check().unwrap();
        let e = m.fingerprint("C1CC").unwrap_err();
        assert!(e.contains("parse"), "{e}");
        // Pentavalent carbon: RDKit's MolFromSmiles refuses it.
        let e = m.fingerprint("C(C)(C)(C)(C)C").unwrap_err();
        assert!(e.contains("Valence"), "{e}");
        assert!(m.fingerprint("").is_err());
    }
}
