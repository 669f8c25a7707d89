//! A shard as a pool: its files one after the other, rows numbered from the shard's first
//! global row.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;

use crate::data::{FeatureKind, Pool, PoolReader, Tile};
use crate::error::{Error, Result};
use crate::pool::FilePool;

/// One task's shard files read as one pool whose first row is global row `start`. Tiles never
/// span two files. An array file without ids takes its rows' global numbers as ids (those of
/// the concatenated pool); the other files keep their own ids.
#[derive(Debug)]
pub struct ShardPool {
    files: Vec<FilePool>,
    /// Rows each file must have (from the shard list), where known.
    expected: Vec<Option<usize>>,
    start: usize,
    /// Rows each file had, counted by the last pass that reached its end.
    counted: Mutex<Vec<Option<usize>>>,
}

impl ShardPool {
    /// `files`, in order, starting at global row `start`.
    ///
    /// # Panics
    /// When `files` is empty.
    pub fn new(files: Vec<FilePool>, start: usize) -> Self {
        assert!(!files.is_empty(), "a shard has at least one file");
        let n = files.len();
        ShardPool {
            files,
            expected: vec![None; n],
            start,
            counted: Mutex::new(vec![None; n]),
        }
    }

    /// The rows each file must have (one entry per file; `None`: not checked). A pass that
    /// finds another count fails naming the file.
    pub fn expecting(mut self, rows: Vec<Option<usize>>) -> Self {
        assert_eq!(rows.len(), self.files.len(), "one count per file");
        self.expected = rows;
        self
    }

    /// The files.
    pub fn files(&self) -> &[FilePool] {
        &self.files
    }

    /// The global row of the first row.
    pub fn start(&self) -> usize {
        self.start
    }

    /// The rows of each file, as the last pass that read it to the end counted them.
    pub fn counted_rows(&self) -> Vec<Option<usize>> {
        self.counted.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Pool for ShardPool {
    fn name(&self) -> &Path {
        &self.files[0].path
    }

    fn open(&self) -> Result<Box<dyn PoolReader + '_>> {
        let first = self.files[0].open_owned()?;
        let kind = first.kind();
        Ok(Box::new(ShardReader {
            pool: self,
            kind,
            file: 0,
            reader: Some(first),
            row_ids: self.files[0].ids_are_row_indices()?,
            next: self.start,
            in_file: 0,
        }))
    }

    /// True when every file's ids are row numbers (they become global rows, hence unique).
    fn ids_are_row_indices(&self) -> Result<bool> {
        for f in &self.files {
            if !f.ids_are_row_indices()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The files' provenance, which must be the same for all.
    fn provenance(&self) -> Result<Option<String>> {
        let first = self.files[0].provenance()?;
        for f in &self.files[1..] {
            let p = f.provenance()?;
            if p != first {
                return Err(Error::format(
                    &f.path,
                    format!(
                        "its features were made by {}, those of {} by {}: the files of a shard must \
                         come from one featurizer",
                        p.as_deref().unwrap_or("an unknown featurizer"),
                        self.files[0].path.display(),
                        first.as_deref().unwrap_or("an unknown featurizer")
                    ),
                ));
            }
        }
        Ok(first)
    }
}

/// A pass over a [`ShardPool`].
struct ShardReader<'a> {
    pool: &'a ShardPool,
    kind: FeatureKind,
    /// The file being read.
    file: usize,
    reader: Option<Box<dyn PoolReader>>,
    /// The file's ids are its row numbers: they become global rows.
    row_ids: bool,
    /// Global row of the next row.
    next: usize,
    /// Rows read of the current file.
    in_file: usize,
}

impl ShardReader<'_> {
    /// Checks and records the count of the file just finished, and opens the next.
    fn next_file(&mut self) -> Result<()> {
        let file = &self.pool.files[self.file];
        if let Some(want) = self.pool.expected[self.file] {
            if want != self.in_file {
                return Err(Error::format(
                    &file.path,
                    format!(
                        "has {} rows, but the shard list gives {want}: the list is stale \
                         (write it again with `poolrank shard-list`)",
                        self.in_file
                    ),
                ));
            }
        }
        if let Ok(mut c) = self.pool.counted.lock() {
            c[self.file] = Some(self.in_file);
        }
        self.file += 1;
        self.in_file = 0;
        self.reader = None;
        let Some(next) = self.pool.files.get(self.file) else {
            return Ok(());
        };
        let reader = next.open_owned()?;
        if reader.kind() != self.kind {
            return Err(Error::format(
                &next.path,
                format!(
                    "has {} features, but {} has {}: the files of a shard must have the same features",
                    reader.kind(),
                    self.pool.files[0].path.display(),
                    self.kind
                ),
            ));
        }
        self.row_ids = next.ids_are_row_indices()?;
        self.reader = Some(reader);
        Ok(())
    }
}

impl PoolReader for ShardReader<'_> {
    fn kind(&self) -> FeatureKind {
        self.kind
    }

    fn len_hint(&self) -> Option<usize> {
        None
    }

    fn read_tile(&mut self, max_rows: usize, tile: &mut Tile) -> Result<bool> {
        while let Some(reader) = self.reader.as_mut() {
            if reader.read_tile(max_rows, tile)? {
                if self.row_ids {
                    for (i, id) in tile.ids.iter_mut().enumerate() {
                        id.clear();
                        write!(id, "{}", self.next + i).expect("writing to a String");
                    }
                }
                tile.start = self.next;
                self.next += tile.len();
                self.in_file += tile.len();
                return Ok(true);
            }
            self.next_file()?;
        }
        tile.start = self.next;
        Ok(false)
    }
}

/// The rows of `pool`, counted by reading it (a `.npy` or `.npz` says it up front).
///
/// # Errors
/// The reader's.
pub fn count_rows(pool: &FilePool) -> Result<usize> {
    let mut reader = pool.open_owned()?;
    if let Some(n) = reader.len_hint() {
        return Ok(n);
    }
    let mut tile = Tile::new(reader.kind());
    let mut rows = 0;
    while reader.read_tile(65_536, &mut tile)? {
        rows += tile.len();
    }
    Ok(rows)
}
