//! A SMILES file read as a pool: each tile's molecules are featurized in parallel on the fly
//! (default Morgan settings), in input order. A refused molecule stops the pass with its line.

use super::input::{Layout, MoleculeReader, Record, SmilesSource};
use super::{featurize_records, Morgan, MorganParams};
use std::path::Path;

use crate::data::{FeatureKind, Features, PoolReader, Tile};
use crate::error::{Error, Result};

/// Reads a `.smi` or SMILES CSV pool tile by tile.
pub struct SmilesPoolReader {
    reader: MoleculeReader,
    morgan: Morgan,
    next_row: usize,
    records: Vec<Record>,
}

impl SmilesPoolReader {
    /// Opens the SMILES pool `path`: a `.smi` file when `smi`, else a CSV/TSV with the columns
    /// `id_col` and `smiles_col`.
    pub fn open(path: &Path, smi: bool, id_col: &str, smiles_col: &str) -> Result<Self> {
        let mut source = SmilesSource::new(path);
        source.id_col = id_col.to_string();
        source.smiles_col = smiles_col.to_string();
        source.layout = match smi {
            true => Some(Layout::Smi),
            false => match source.resolve_layout() {
                Layout::Smi => Some(Layout::Delimited { delimiter: b',' }),
                l => Some(l),
            },
        };
        Ok(SmilesPoolReader {
            reader: source.open()?,
            morgan: MorganParams::default().check()?,
            next_row: 0,
            records: Vec::new(),
        })
    }
}

impl PoolReader for SmilesPoolReader {
    fn kind(&self) -> FeatureKind {
        self.morgan.params().kind()
    }

    fn len_hint(&self) -> Option<usize> {
        None
    }

    fn read_tile(&mut self, max_rows: usize, tile: &mut Tile) -> Result<bool> {
        if max_rows == 0 {
            return Err(Error::param("tile_rows", "must be at least 1"));
        }
        tile.start = self.next_row;
        tile.ids.clear();
        tile.features = Features::empty(self.kind());
        if !self.reader.read_chunk(max_rows, &mut self.records)? {
            if self.next_row == 0 {
                return Err(Error::EmptyPool {
                    path: self.reader.path().to_path_buf(),
                });
            }
            return Ok(false);
        }
        let fps = featurize_records(&self.morgan, &self.records);
        let Features::Counts {
            indptr,
            indices,
            values,
            ..
        } = &mut tile.features
        else {
            return Err(Error::param("features", "SMILES pools hold counts"));
        };
        for (rec, fp) in self.records.iter_mut().zip(fps) {
            let fp = fp.map_err(|reason| {
                Error::parse(
                    self.reader.path(),
                    rec.line,
                    format!(
                        "molecule {:?} ({}): {reason}; fix or remove it (`poolrank featurize \
                         --skip-invalid FILE` leaves such molecules out)",
                        rec.id, rec.smiles
                    ),
                )
            })?;
            for (i, c) in fp.pairs {
                indices.push(i);
                values.push(c);
            }
            indptr.push(indices.len());
            tile.ids.push(std::mem::take(&mut rec.id));
        }
        self.next_row += tile.ids.len();
        Ok(true)
    }
}
