//! Pool files: which reader a file needs (by its name, a `.npy`'s dtype or a CSV's columns), and
//! the file pool every command opens. SMILES pools are featurized on the fly, so this sits
//! above both the readers ([`crate::data`]) and [`crate::featurize`].

use std::path::{Path, PathBuf};

use crate::data::{
    check_regular, npy_pool_format, read_fps_type, read_npz_provenance, DenseCsvReader, FpsReader,
    NpyBitsReader, NpyCountsReader, NpyDenseReader, NpzCountsReader, Pool, PoolFormat, PoolReader,
};
use crate::error::{Error, Result};
use crate::featurize::{has_column, is_smi_name, MorganParams, SmilesPoolReader};
use crate::names::Named;

/// A pool file and how to read it.
#[derive(Clone, Debug)]
pub struct FilePool {
    /// The pool file.
    pub path: PathBuf,
    /// Its layout; `None` infers it from the extension (and a `.npy`'s dtype).
    pub format: Option<PoolFormat>,
    /// For array formats: a file with one id per line, in row order. Without it the row index
    /// (0-based) is the id.
    pub ids: Option<PathBuf>,
    /// For dense CSV and SMILES CSV: the id column's header name.
    pub id_col: String,
    /// For SMILES CSV: the SMILES column's header name (a `.csv` with this column is read as
    /// SMILES).
    pub smiles_col: String,
}

impl FilePool {
    /// A pool that infers the format and uses row indices (or the file's own ids) as ids.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FilePool {
            path: path.into(),
            format: None,
            ids: None,
            id_col: "id".to_string(),
            smiles_col: "smiles".to_string(),
        }
    }

    /// The format, given or inferred (text formats plain or `.gz`/`.bz2`/`.zst`): `.fps` → FPS,
    /// `.npz` → counts, `.smi` (or `.smiles`, `.ism`, `.can`) → SMILES, `.csv`/`.tsv` with a
    /// SMILES column and Enamine's `.cxsmiles` → SMILES CSV, other `.csv` → dense CSV, `.npy` → packed bits for uint8, counts for other
    /// unsigned integers, dense for floats.
    pub fn resolve_format(&self) -> Result<PoolFormat> {
        // First, before anything reads the file: a pipe read here would not be there again.
        check_regular(&self.path, "the pool")?;
        if let Some(f) = self.format {
            return Ok(f);
        }
        let name = self
            .path
            .file_name()
            .map(|s| s.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let name = crate::data::strip_compression_suffix(&name);
        if name.ends_with(".fps") {
            Ok(PoolFormat::Fps)
        } else if is_smi_name(&self.path) {
            Ok(PoolFormat::Smiles)
        } else if name.ends_with(".cxsmiles")
            || ((name.ends_with(".csv") || name.ends_with(".tsv"))
                && has_column(&self.path, &self.smiles_col))
        {
            Ok(PoolFormat::SmilesCsv)
        } else if name.ends_with(".npz") {
            Ok(PoolFormat::CountsNpz)
        } else if name.ends_with(".csv") {
            Ok(PoolFormat::DenseCsv)
        } else if name.ends_with(".npy") {
            npy_pool_format(&self.path)
        } else {
            Err(Error::format(
                &self.path,
                format!(
                    "cannot tell the pool format from the file name; use --pool-format with one of {}",
                    PoolFormat::names().join(", ")
                ),
            ))
        }
    }
}

impl Pool for FilePool {
    fn name(&self) -> &Path {
        &self.path
    }

    /// True for an array format without an ids file.
    fn ids_are_row_indices(&self) -> Result<bool> {
        Ok(self.ids.is_none()
            && !matches!(
                self.resolve_format()?,
                PoolFormat::Fps | PoolFormat::DenseCsv | PoolFormat::Smiles | PoolFormat::SmilesCsv
            ))
    }

    fn open(&self) -> Result<Box<dyn PoolReader + '_>> {
        self.open_owned()
    }

    /// An FPS `#type=` line, a `.npz`'s provenance member, or the default Morgan settings for a
    /// SMILES pool.
    fn provenance(&self) -> Result<Option<String>> {
        Ok(match self.resolve_format()? {
            PoolFormat::Fps => read_fps_type(&self.path)?,
            PoolFormat::CountsNpz => read_npz_provenance(&self.path)?,
            PoolFormat::Smiles | PoolFormat::SmilesCsv => {
                Some(MorganParams::default().provenance())
            }
            _ => None,
        })
    }
}

impl FilePool {
    /// A pass over the file that does not borrow `self` ([`Pool::open`] is this one).
    pub fn open_owned(&self) -> Result<Box<dyn PoolReader>> {
        let path: &Path = &self.path;
        let ids = self.ids.as_deref();
        let format = self.resolve_format()?;
        if let Some(ids) = ids {
            if !matches!(
                format,
                PoolFormat::BitsNpy
                    | PoolFormat::CountsNpy
                    | PoolFormat::CountsNpz
                    | PoolFormat::DenseNpy
            ) {
                return Err(Error::param(
                    "ids",
                    format!(
                        "{} applies only to array pools (.npy, .npz), whose rows have no ids; \
                         the {} pool {} names its own rows",
                        ids.display(),
                        format.name(),
                        path.display()
                    ),
                ));
            }
            check_regular(ids, "the ids file")?;
        }
        Ok(match format {
            PoolFormat::Fps => Box::new(FpsReader::open(path)?),
            PoolFormat::BitsNpy => Box::new(NpyBitsReader::open(path, ids)?),
            PoolFormat::CountsNpy => Box::new(NpyCountsReader::open(path, ids)?),
            PoolFormat::CountsNpz => Box::new(NpzCountsReader::open(path, ids)?),
            PoolFormat::DenseNpy => Box::new(NpyDenseReader::open(path, ids)?),
            PoolFormat::DenseCsv => Box::new(DenseCsvReader::open(path, &self.id_col)?),
            PoolFormat::Smiles | PoolFormat::SmilesCsv => Box::new(SmilesPoolReader::open(
                path,
                format == PoolFormat::Smiles,
                &self.id_col,
                &self.smiles_col,
            )?),
        })
    }
}
