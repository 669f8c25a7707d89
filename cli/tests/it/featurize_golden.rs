//! Golden parity: every Enamine 10k SMILES featurized natively equals the shipped RDKit counts.

use std::io::Read;

use poolrank::data::Tile;
use poolrank::featurize::MorganParams;
use poolrank::pool::FilePool;

const SCORES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/enamine10k/enamine10k_morgan2_2048.scores.csv.gz"
);
const COUNTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/enamine10k/enamine10k_morgan2_2048.counts.npz"
);

/// `(id, smiles)` of every molecule, in row order.
fn molecules() -> Vec<(String, String)> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(SCORES).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[0].to_string(), rec[1].to_string())
        })
        .collect()
}

#[test]
fn enamine10k_counts_equal_rdkit() {
    use rayon::prelude::*;
    let mols = molecules();
    assert_eq!(mols.len(), 10_449);
    let mut reader = FilePool::new(COUNTS).open_owned().unwrap();
    let mut tile = Tile::new(reader.kind());
    assert!(reader.read_tile(mols.len() + 1, &mut tile).unwrap());
    assert_eq!(tile.len(), mols.len());
    let morgan = MorganParams::default().check().unwrap();
    let mismatches: Vec<String> = mols
        .par_iter()
        .enumerate()
        .filter_map(|(i, (id, smiles))| {
            let (idx, val) = tile.features.counts_row(i).unwrap();
            let want: Vec<(u32, u32)> = idx.iter().copied().zip(val.iter().copied()).collect();
            let got = match morgan.fingerprint(smiles) {
                Ok(fp) => fp.pairs,
                Err(e) => return Some(format!("{id} {smiles}: refused: {e}")),
            };
            (got != want).then(|| {
                let diff: Vec<String> = (0..2048u32)
                    .filter_map(|b| {
                        let g = got.iter().find(|p| p.0 == b).map_or(0, |p| p.1);
                        let w = want.iter().find(|p| p.0 == b).map_or(0, |p| p.1);
                        (g != w).then(|| format!("bit {b}: got {g}, rdkit {w}"))
                    })
                    .collect();
                format!("{id} {smiles}: {}", diff.join("; "))
            })
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} molecules differ from RDKit:\n{}",
        mismatches.len(),
        mols.len(),
        mismatches[..mismatches.len().min(20)].join("\n")
    );
}

#[test]
fn enamine10k_bits_are_counts_above_zero() {
    use rayon::prelude::*;
    let mols = molecules();
    let mut reader = FilePool::new(COUNTS).open_owned().unwrap();
    let mut tile = Tile::new(reader.kind());
    assert!(reader.read_tile(mols.len() + 1, &mut tile).unwrap());
    let bits = MorganParams {
        counts: false,
        ..MorganParams::default()
    }
    .check()
    .unwrap();
    let bad: Vec<&str> = mols
        .par_iter()
        .enumerate()
        .filter(|(i, (_, smiles))| {
            let (idx, _) = tile.features.counts_row(*i).unwrap();
            let want: Vec<(u32, u32)> = idx.iter().map(|&b| (b, 1)).collect();
            bits.fingerprint(smiles).map(|f| f.pairs).as_ref() != Ok(&want)
        })
        .map(|(_, (id, _))| id.as_str())
        .collect();
    assert!(bad.is_empty(), "bits differ from counts > 0 for {bad:?}");
}
