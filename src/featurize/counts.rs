//! RDKit's folded Morgan counts straight from the parsed molecule, without the per-bit
//! provenance maps `chematic_fp::rdkit_morgan_fingerprint` builds (its cost was mostly those).
//!
//! A counts-only port of `chematic-fp` 1.2.1 (MIT OR Apache-2.0, by the chematic authors):
//! `rdkit_morgan_config.rs` (`with_rdkit_morgan_input`: RDKit-parity aromatic view, ring
//! atoms, bond invariants) and `rdkit_morgan_hash.rs` (`hash_combine`, `hash_pair`,
//! `connectivity_invariant` and the compact 128-bond expansion
//! `expand_emissions_small_with_chirality`, without chirality). Those are in turn ports of
//! RDKit's `MorganGenerator.cpp`, `FingerprintUtil.cpp` and `hash.hpp` (BSD-3-Clause). The
//! compact expansion emits the same `(atom, radius, identifier)` multiset as the crate's
//! general one (the crate's own test `compact_stereo_emissions_match_general_lifecycle`), so
//! the folded counts are the same.
//!
//! Only plain molecules take this path: no hydrogen atoms (the crate first removes them as
//! RDKit does), isotopes, wildcards, Fe(II) (the crate refuses one coordination case), query
//! bonds or more than 128 bonds. [`folded_ids`] returns `false` for the others and the caller
//! uses the crate; the golden and stress tests compare both paths with RDKit.

use std::cell::RefCell;

use chematic_core::{implicit_hcount, AtomIdx, BondIdx, BondOrder, Element, Molecule};

/// `gboost::hash_combine` in 32-bit wrapping arithmetic.
#[inline]
fn hash_combine(seed: u32, value: u32) -> u32 {
    seed ^ value
        .wrapping_add(0x9e37_79b9)
        .wrapping_add(seed << 6)
        .wrapping_add(seed >> 2)
}

/// `hash_value(std::pair)`: a fresh sub-hash of `a` then `b`.
#[inline]
fn hash_pair(a: u32, b: u32) -> u32 {
    hash_combine(hash_combine(0, a), b)
}

/// RDKit's `BondType` ordinal for the bond invariant; `None` for query bonds.
fn bond_invariant(order: BondOrder) -> Option<u32> {
    match order {
        BondOrder::Single | BondOrder::Up | BondOrder::Down => Some(1),
        BondOrder::Double => Some(2),
        BondOrder::Triple => Some(3),
        BondOrder::Quadruple => Some(4),
        BondOrder::Aromatic => Some(12),
        BondOrder::Dative => Some(17),
        BondOrder::Zero => Some(21),
        _ => None,
    }
}

/// Per-thread buffers, reused from molecule to molecule.
#[derive(Default)]
struct Scratch {
    ring_atoms: Vec<bool>,
    bond_inv: Vec<u32>,
    current: Vec<u32>,
    next: Vec<u32>,
    dead: Vec<bool>,
    env: Vec<u128>,
    next_env: Vec<u128>,
    seen: Vec<u128>,
    round: Vec<(u128, u32, u32)>,
    pairs: Vec<(u32, u32)>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Whether `mol` is one this module computes exactly as `chematic-fp` does.
fn plain(mol: &Molecule) -> bool {
    mol.bond_count() <= 128
        && mol.atoms().all(|(_, a)| {
            !a.wildcard
                && a.element != Element::H
                && matches!(a.isotope, None | Some(0))
                && !(a.element.atomic_number() == 26 && a.charge == 2)
        })
}

/// Appends to `out` the folded identifier (`raw % nbits`) of every Morgan environment of
/// `mol` up to `radius`, as RDKit's count generator counts them; `false` (nothing appended)
/// where `mol` is not a plain molecule or its aromatic view fails: use the crate then.
pub(super) fn folded_ids(mol: &Molecule, radius: u32, nbits: usize, out: &mut Vec<u32>) -> bool {
    if mol.atom_count() == 0 || !plain(mol) {
        return false;
    }
    chematic_perception::with_rdkit_parity_view(mol, |view| match view {
        Ok(view) if view.atom_count() == mol.atom_count() && plain(view) => {
            SCRATCH.with(|s| expand(view, radius, nbits, &mut s.borrow_mut(), out))
        }
        _ => false,
    })
}

/// The expansion on the aromatic view.
fn expand(mol: &Molecule, radius: u32, nbits: usize, s: &mut Scratch, out: &mut Vec<u32>) -> bool {
    let n = mol.atom_count();
    let nb = mol.bond_count();
    s.bond_inv.clear();
    for b in 0..nb {
        match bond_invariant(mol.bond(BondIdx(b as u32)).order) {
            Some(v) => s.bond_inv.push(v),
            None => return false,
        }
    }
    // As `with_rdkit_morgan_aromatized_input`: ring atoms from the ring-atom flags when the
    // SMILES closed one ring, else from the ring bonds.
    s.ring_atoms.clear();
    if mol.smiles_ring_closure_bond_count() == 1 {
        s.ring_atoms
            .extend(chematic_perception::ring_atom_flags(mol));
    } else {
        let ring_bonds = chematic_perception::ring_bond_flags_shared(mol);
        s.ring_atoms.resize(n, false);
        for (b, bond) in mol.bonds() {
            if ring_bonds[b.0 as usize] {
                s.ring_atoms[bond.atom1.0 as usize] = true;
                s.ring_atoms[bond.atom2.0 as usize] = true;
            }
        }
    }
    let fold = |raw: u32| (raw as usize % nbits) as u32;
    let start = out.len();

    // Radius 0: `getConnectivityInvariants` = [atomicNum, totalDegree, totalNumHs,
    // formalCharge, deltaMass (0: no isotopes here)] plus a trailing 1 for ring atoms.
    s.current.clear();
    for i in 0..n {
        let idx = AtomIdx(i as u32);
        let atom = mol.atom(idx);
        let nbrs = mol.neighbor_slice(idx);
        let implicit = implicit_hcount(mol, idx);
        let explicit_h = nbrs
            .iter()
            .filter(|&&(a, _)| {
                let a = mol.atom(a);
                !a.wildcard && a.element.atomic_number() == 1
            })
            .count() as u8;
        let mut h = hash_combine(0, atom.element.atomic_number() as u32);
        h = hash_combine(h, (nbrs.len() as u16 + implicit as u16) as u32);
        h = hash_combine(h, implicit.saturating_add(explicit_h) as u32);
        h = hash_combine(h, (atom.charge as i32) as u32);
        h = hash_combine(h, 0);
        if s.ring_atoms.get(i).copied().unwrap_or(false) {
            h = hash_combine(h, 1);
        }
        s.current.push(h);
        out.push(fold(h));
    }

    s.next.clear();
    s.next.resize(n, 0);
    s.dead.clear();
    s.dead.resize(n, false);
    s.env.clear();
    s.env.resize(n, 0);
    s.next_env.clear();
    s.next_env.resize(n, 0);
    s.seen.clear();
    for layer in 0..radius {
        s.round.clear();
        for i in 0..n {
            // Dead atoms keep their environment and carry a zero invariant forward.
            if s.dead[i] {
                s.next_env[i] = s.env[i];
                s.next[i] = 0;
                continue;
            }
            let nbrs = mol.neighbor_slice(AtomIdx(i as u32));
            if nbrs.is_empty() {
                s.dead[i] = true;
                s.next_env[i] = s.env[i];
                s.next[i] = 0;
                continue;
            }
            let mut bond_env = 0u128;
            s.pairs.clear();
            for &(a, b) in nbrs {
                bond_env |= 1u128 << b.0;
                bond_env |= s.env[a.0 as usize];
                s.pairs
                    .push((s.bond_inv[b.0 as usize], s.current[a.0 as usize]));
            }
            s.pairs.sort_unstable();
            let mut invar = hash_combine(layer, s.current[i]);
            for &(bond_inv, nb_inv) in &s.pairs {
                invar = hash_combine(invar, hash_pair(bond_inv, nb_inv));
            }
            s.next[i] = invar;
            s.next_env[i] = bond_env;
            s.round.push((bond_env, invar, i as u32));
        }
        // Group by environment; an environment seen in an earlier round kills its atoms,
        // otherwise the smallest (invariant, atom) of the group emits and the rest die.
        s.round.sort_unstable();
        let seen_before = s.seen.len();
        let mut g = 0;
        while g < s.round.len() {
            let bond_env = s.round[g].0;
            let mut end = g + 1;
            while end < s.round.len() && s.round[end].0 == bond_env {
                end += 1;
            }
            if s.seen[..seen_before].binary_search(&bond_env).is_ok() {
                for &(_, _, atom) in &s.round[g..end] {
                    s.dead[atom as usize] = true;
                }
            } else {
                out.push(fold(s.round[g].1));
                s.seen.push(bond_env);
                for &(_, _, atom) in &s.round[g + 1..end] {
                    s.dead[atom as usize] = true;
                }
            }
            g = end;
        }
        s.seen.sort_unstable();
        std::mem::swap(&mut s.current, &mut s.next);
        std::mem::swap(&mut s.env, &mut s.next_env);
    }
    debug_assert!(out.len() > start);
    true
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read;

    use chematic_fp::{RdkitMorganConfig, RdkitMorganFpSize, RdkitMorganRadius};

    use super::*;

    /// Every radius and width `featurize` accepts, on the first 300 Enamine 10k molecules and
    /// some molecules of other shapes: this path's counts equal `chematic-fp`'s (which the
    /// golden test checks against RDKit at radius 2, 2048).
    #[test]
    fn counts_equal_the_crate_for_every_setting() {
        let mut text = String::new();
        // The demo's SMILES, read by this test only (the library ships no data).
        let scores: &[u8] =
            include_bytes!("../../data/enamine10k/enamine10k_morgan2_2048.scores.csv.gz");
        flate2::read::GzDecoder::new(scores)
            .read_to_string(&mut text)
            .unwrap();
        let mut smiles: Vec<String> = csv::Reader::from_reader(text.as_bytes())
            .records()
            .take(300)
            .map(|r| r.unwrap()[1].to_string())
            .collect();
        for s in [
            "C",
            "[Na+].[Cl-]",
            "C1=CC=CC=C1",
            "c1ccc2c(c1)[nH]c1ccccc12",
            "C1CC2CCC1C2",
            "C1CC2(CC1)CCCC2",
            "O=C1C=CC(=O)C=C1",
            "[O-][N+](=O)c1ccccc1",
            "CS(=O)(=O)N",
            "C#N",
            "N->[Cu+2]<-N",
            "c1ccsc1",
            "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC",
        ] {
            smiles.push(s.into());
        }
        let radii = [
            (0, RdkitMorganRadius::R0),
            (1, RdkitMorganRadius::R1),
            (2, RdkitMorganRadius::R2),
            (3, RdkitMorganRadius::R3),
        ];
        let sizes = [
            (128, RdkitMorganFpSize::B128),
            (1024, RdkitMorganFpSize::B1024),
            (2048, RdkitMorganFpSize::B2048),
        ];
        let mut fast = 0;
        for s in &smiles {
            let mol = chematic_smiles::parse(s).unwrap();
            for &(r, radius) in &radii {
                for &(nbits, fp_size) in &sizes {
                    let mut ids = Vec::new();
                    if !folded_ids(&mol, r, nbits, &mut ids) {
                        continue;
                    }
                    fast += 1;
                    let mut got = BTreeMap::new();
                    for id in ids {
                        *got.entry(id as usize).or_insert(0u32) += 1;
                    }
                    let config = RdkitMorganConfig {
                        radius,
                        fp_size,
                        include_chirality: false,
                    };
                    let want: BTreeMap<usize, u32> =
                        chematic_fp::rdkit_morgan_fingerprint(&mol, &config)
                            .unwrap()
                            .folded_counts
                            .into_iter()
                            .collect();
                    assert_eq!(got, want, "{s} radius {r} bits {nbits}");
                }
            }
        }
        // Not vacuous: nearly every molecule takes this path.
        assert!(fast >= 12 * 300, "{fast}");
    }

    #[test]
    fn molecules_outside_the_plain_set_are_left_to_the_crate() {
        for s in ["[13CH4]", "[H]C([H])([H])[H]", "*C", "C(F)(F)F.[Fe+2]"] {
            let mol = chematic_smiles::parse(s).unwrap();
            let mut ids = Vec::new();
            assert!(!folded_ids(&mol, 2, 2048, &mut ids), "{s}");
            assert!(ids.is_empty());
        }
    }
}
