//! Past one machine: a pool scored in shards, on any batch engine (SLURM or Kubernetes job
//! arrays, Ray tasks), and merged exactly.
//!
//! The contract is three files and two calls:
//! - a **shard list** ([`ShardList`]): the pool's files in order, each with its row count, so
//!   every task knows the global row its shard starts at without reading the others;
//! - a **part** per task ([`part`]): the task's best `k` candidates by the acquisition, with
//!   their global rows, and everything the merge checks: the shard files' size, time and
//!   checksum, the model's checksum, the settings, the task's place in the list;
//! - the **merge** ([`merge()`]): the best `k` of the union of the parts, which is the batch
//!   one process would pick on the concatenated pool, since each candidate's score depends
//!   only on the model, its features and its global row (the random draws are keyed by it,
//!   ties break by it). Some parts merged into one part ([`merge_to_part`]) merge with the
//!   others to the same batch, so a merge can run in stages, in any grouping.
//!
//! A shard's rows are read through a [`ShardPool`]: its files one after the other, rows
//! numbered from the shard's first global row, and an array file without ids (`.npy`, `.npz`)
//! takes the global row number as its ids, as the concatenated pool would.
//!
//! What is checked across shards: every task of the list has exactly one part, the parts
//! agree on the model, the settings and the list, no shard changed since it was scored, and
//! every pending id was found in exactly one shard (by count). What is not: ids repeated
//! across shards (each shard checks its own ids; a global check would hold 8 bytes per
//! candidate of the whole pool).

pub mod merge;
pub mod part;
mod pool;
mod run;

use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use merge::{merge, merge_to_part, MergeParams, MergeSummary, Merged, ShardCheck};
pub use part::{write_part, PartData, PartMeta, PartSettings, PartTask, Piece};
pub use pool::{count_rows, ShardPool};
pub use run::{
    expand, merge_files, merge_files_to_part, score_shard_files, write_shard_list, TaskSource,
};

use crate::backend::{Backend, BackendChoice, GpuOptions};
use crate::data::IdList;
use crate::engine::{run_score_shard, SelectValidParams};
use crate::error::{Error, Result};
use crate::model::FittedModel;
use crate::pool::FilePool;
use part::{ListStamp, ModelStamp, PendingStamp, ShardStamp};

/// One shard as a list names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedShard {
    /// The file (relative paths in a list are relative to the list's folder).
    pub path: PathBuf,
    /// Its rows, when the list gives them.
    pub rows: Option<usize>,
    /// For an array file: its ids file (one id per line), when the list gives one.
    pub ids: Option<PathBuf>,
    /// The 1-based line of the list that names it.
    pub line: usize,
}

/// The pool's files in order: one per line, `PATH`, `PATH<TAB>ROWS` or
/// `PATH<TAB>ROWS<TAB>IDS`; blank lines and lines starting with `#` are skipped. Task `i` of
/// tasks of `per_task` shards scores shards `i·per_task ..`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardList {
    /// The list file.
    pub path: PathBuf,
    /// Its shards, in order.
    pub shards: Vec<ListedShard>,
    /// XXH3-64 of the list's bytes: parts of one list carry it.
    pub checksum: u64,
}

impl ShardList {
    /// Reads a list.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::Parse`] naming the line for a row count that is not a number or
    /// more than three fields; [`Error::Format`] for a list without shards.
    pub fn read(path: &Path) -> Result<Self> {
        crate::data::check_regular(path, "the shard list")?;
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| Error::format(path, format!("not UTF-8 text: {e}")))?;
        let folder = path.parent().unwrap_or(Path::new(""));
        let mut shards = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() > 3 {
                return Err(Error::parse(
                    path,
                    line_no,
                    format!(
                        "expected PATH, PATH<TAB>ROWS or PATH<TAB>ROWS<TAB>IDS, got {} fields",
                        fields.len()
                    ),
                ));
            }
            let rows = match fields.get(1).map(|s| s.trim()) {
                None | Some("") => None,
                Some(r) => Some(r.parse::<usize>().map_err(|_| {
                    Error::parse(
                        path,
                        line_no,
                        format!("rows: expected a count of rows, got {r:?}"),
                    )
                })?),
            };
            let ids = fields
                .get(2)
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .map(|s| folder.join(s));
            shards.push(ListedShard {
                path: folder.join(fields[0].trim()),
                rows,
                ids,
                line: line_no,
            });
        }
        if shards.is_empty() {
            return Err(Error::format(path, "the shard list names no shard"));
        }
        Ok(ShardList {
            path: path.to_path_buf(),
            shards,
            checksum: xxhash_rust::xxh3::xxh3_64(&bytes),
        })
    }

    /// The number of tasks of `per_task` shards each (the last may have fewer).
    pub fn tasks(&self, per_task: usize) -> usize {
        self.shards.len().div_ceil(per_task.max(1))
    }

    /// The shards of task `index`.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] (`index`) when the list has no such task.
    pub fn task(&self, index: usize, per_task: usize) -> Result<Range<usize>> {
        let per_task = per_task.max(1);
        let tasks = self.tasks(per_task);
        if index >= tasks {
            return Err(Error::param(
                "index",
                format!(
                    "task {index} is past the end: {} lists {} shard(s), {tasks} task(s) of {per_task} (indices 0 to {})",
                    self.path.display(),
                    self.shards.len(),
                    tasks - 1
                ),
            ));
        }
        let start = index * per_task;
        Ok(start..(start + per_task).min(self.shards.len()))
    }

    /// The global row of shard `shard`'s first row: the rows of the shards before it, as the
    /// list gives them; `count` counts a shard the list gives no rows for.
    ///
    /// # Errors
    /// `count`'s.
    pub fn offset(
        &self,
        shard: usize,
        mut count: impl FnMut(&ListedShard) -> Result<usize>,
    ) -> Result<usize> {
        let mut offset = 0;
        for s in &self.shards[..shard] {
            offset += match s.rows {
                Some(r) => r,
                None => count(s)?,
            };
        }
        Ok(offset)
    }
}

/// One task: its shard files as a pool starting at their global row, and where they come
/// from.
#[derive(Debug)]
pub struct ShardTask {
    /// The files, rows numbered from the task's first global row.
    pub pool: ShardPool,
    list: Option<ListStamp>,
    index: Option<usize>,
}

impl ShardTask {
    /// Task `index` of `list`, tasks of `per_task` shards; `like` gives the reading options
    /// (format, id and SMILES columns) of every shard. The task's first global row is the
    /// rows of the shards before it as the list gives them (a shard the list gives no rows for
    /// is counted, which reads it).
    ///
    /// # Errors
    /// [`Error::InvalidParam`] (`index`) for a task the list lacks; counting's.
    pub fn from_list(
        list: &ShardList,
        index: usize,
        per_task: usize,
        like: &FilePool,
    ) -> Result<Self> {
        let per_task = per_task.max(1);
        let range = list.task(index, per_task)?;
        let file = |s: &ListedShard| FilePool {
            path: s.path.clone(),
            ids: s.ids.clone(),
            ..like.clone()
        };
        let start = list.offset(range.start, |s| count_rows(&file(s)))?;
        let shards = &list.shards[range];
        let pool = ShardPool::new(shards.iter().map(file).collect(), start)
            .expecting(shards.iter().map(|s| s.rows).collect());
        Ok(ShardTask {
            pool,
            list: Some(ListStamp {
                path: list.path.clone(),
                xxh3: format!("{:016x}", list.checksum),
                shards: list.shards.len(),
                per_task,
                tasks: list.tasks(per_task),
            }),
            index: Some(index),
        })
    }

    /// Shard files named directly, whose first row is global row `start`.
    ///
    /// # Panics
    /// When `files` is empty.
    pub fn from_files(files: Vec<FilePool>, start: usize) -> Self {
        ShardTask {
            pool: ShardPool::new(files, start),
            list: None,
            index: None,
        }
    }
}

/// A worker's scorer: a saved model read once (its checksum with it) and a backend opened
/// once (a GPU worker keeps its device), for any number of tasks.
pub struct ShardScorer {
    model: FittedModel,
    path: PathBuf,
    xxh3: String,
    backend: Backend,
}

impl ShardScorer {
    /// Reads the model at `model` and opens `backend`.
    ///
    /// # Errors
    /// [`Error::Io`]; the model file's errors; the backend's.
    pub fn open(model: &Path, backend: BackendChoice) -> Result<Self> {
        let (fitted, xxh3) = read_model(model)?;
        Ok(ShardScorer {
            model: fitted,
            path: model.to_path_buf(),
            xxh3,
            backend: Backend::new(backend, &GpuOptions::default())?,
        })
    }

    /// The model file.
    pub fn model_path(&self) -> &Path {
        &self.path
    }

    /// What the backend is.
    pub fn backend(&self) -> &str {
        &self.backend.description
    }

    /// Scores one task and returns its part: the best `k` candidates (or the shortlist's,
    /// [`run_score_shard`]) and the meta the merge checks. Each shard file is stamped (size,
    /// time, checksum) before it is scored, and a file that changes while it is scored is
    /// refused. `params.backend` is not used (the scorer's backend is). `floor` is the `k`-th
    /// best `(score, row)` of parts already scored, if any ([`run_score_shard`]).
    ///
    /// # Errors
    /// [`Error::Format`] naming a shard that changed while it was scored or whose rows are not
    /// the list's; [`run_score_shard`]'s; [`Error::Io`].
    pub fn score(
        &self,
        params: &SelectValidParams,
        task: &ShardTask,
        pending: &IdList,
        k: usize,
        floor: Option<(f32, usize)>,
    ) -> Result<PartData> {
        let model = &self.model;
        let files = task.pool.files();
        let stamps: Vec<FileStamp> = files
            .iter()
            .map(|f| FileStamp::of(&f.path))
            .collect::<Result<_>>()?;
        let scored = run_score_shard(params, &task.pool, model, pending, k, &self.backend, floor)?;
        for s in &stamps {
            if let Some(what) = s.changed(false)? {
                return Err(Error::format(
                    &s.path,
                    format!("changed while it was scored: {what}; score the task again"),
                ));
            }
        }
        let counted = task.pool.counted_rows();
        let mut start = task.pool.start();
        let mut shards = Vec::with_capacity(files.len());
        for (file, rows) in stamps.into_iter().zip(counted) {
            let rows = rows.ok_or_else(|| Error::format(&file.path, "was not read to its end"))?;
            shards.push(ShardStamp { file, start, rows });
            start += rows;
        }
        let labeled: std::collections::HashSet<&str> =
            model.labeled_ids().iter().map(String::as_str).collect();
        let pending_stamp = (!pending.ids.is_empty()).then(|| {
            let mut distinct: Vec<&str> = pending
                .ids
                .iter()
                .map(String::as_str)
                .filter(|id| !labeled.contains(id))
                .collect();
            distinct.sort_unstable();
            distinct.dedup();
            PendingStamp {
                xxh3: format!(
                    "{:016x}",
                    xxhash_rust::xxh3::xxh3_64(pending.ids.join("\n").as_bytes())
                ),
                ids: distinct.len(),
            }
        });
        let meta = PartMeta {
            poolrank: env!("CARGO_PKG_VERSION").to_string(),
            model: ModelStamp {
                path: self.path.clone(),
                xxh3: self.xxh3.clone(),
                labeled: model.labeled_ids().len(),
            },
            features: scored.features,
            settings: PartSettings {
                acquisition: params.acquisition,
                seed: params.seed,
                round: params.round,
                k,
                mode: params.mode,
                max_sim: params.max_sim,
                shortlist: scored.shortlist,
                pending: pending_stamp,
            },
            task: PartTask {
                list: task.list.clone(),
                index: task.index,
                start: task.pool.start(),
                end: start,
                pieces: Vec::new(),
            },
            shards,
            floor: floor.map(|(score, index)| part::FloorStamp { score, index }),
            summary: scored.summary,
        };
        Ok(PartData {
            meta,
            pending: scored.pending,
            rows: scored.rows,
        })
    }
}

/// The model at `path` and the XXH3-64 of its bytes (16 hex digits), from one read.
fn read_model(path: &Path) -> Result<(FittedModel, String)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let xxh3 = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
    Ok((FittedModel::from_bytes(&bytes, path)?, xxh3))
}

/// A file as a part records it: enough to tell that it changed since.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStamp {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time, nanoseconds since the Unix epoch (0 when the system has none).
    pub modified_ns: u64,
    /// XXH3-64 of its bytes, as 16 hex digits.
    pub xxh3: String,
}

impl FileStamp {
    /// Stamps `path`: its size, time and the checksum of every byte (one streaming read).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn of(path: &Path) -> Result<Self> {
        let (size, modified_ns) = stat(path)?;
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(path, e)),
            };
            hasher.update(&buf[..n]);
        }
        Ok(FileStamp {
            path: path.to_path_buf(),
            size,
            modified_ns,
            xxh3: format!("{:016x}", hasher.digest()),
        })
    }

    /// `None` when the file at `self.path` still has this stamp; otherwise what changed.
    /// Size and time are compared first; the checksum only when they differ (a file copied
    /// or touched without a change keeps its checksum), or always with `verify`.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read (gone, or not reachable from here).
    pub fn changed(&self, verify: bool) -> Result<Option<String>> {
        let (size, modified_ns) = stat(&self.path)?;
        if !verify && size == self.size && modified_ns == self.modified_ns {
            return Ok(None);
        }
        let now = FileStamp::of(&self.path)?;
        Ok(if now.size != self.size {
            Some(format!("its size is {} bytes, was {}", now.size, self.size))
        } else if now.xxh3 != self.xxh3 {
            Some(format!("its checksum is {}, was {}", now.xxh3, self.xxh3))
        } else {
            None
        })
    }
}

/// Size and modification time (ns since the epoch) of `path`.
fn stat(path: &Path) -> Result<(u64, u64)> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let modified_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    Ok((meta.len(), modified_ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_lines_rows_ids_and_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.tsv");
        std::fs::write(
            &path,
            "# shards\na.fps\t10\n\nsub/b.npy\t5\tsub/b.ids.txt\nc.fps\n",
        )
        .unwrap();
        let list = ShardList::read(&path).unwrap();
        assert_eq!(list.shards.len(), 3);
        assert_eq!(list.shards[0].path, dir.path().join("a.fps"));
        assert_eq!(list.shards[1].rows, Some(5));
        assert_eq!(list.shards[1].ids, Some(dir.path().join("sub/b.ids.txt")));
        assert_eq!(list.shards[2].rows, None);
        assert_eq!(list.shards[2].line, 5);
        assert_eq!(list.tasks(1), 3);
        assert_eq!(list.tasks(2), 2);
        assert_eq!(list.task(1, 2).unwrap(), 2..3);
        let err = list.task(2, 2).unwrap_err().to_string();
        assert!(err.contains("task 2 is past the end"), "{err}");
        assert_eq!(list.offset(2, |_| unreachable!()).unwrap(), 15);
        assert_eq!(list.offset(3, |_| Ok(7)).unwrap(), 22);

        std::fs::write(&path, "a.fps\tten\n").unwrap();
        let err = ShardList::read(&path).unwrap_err().to_string();
        assert!(err.contains("list.tsv:1: rows: expected a count"), "{err}");
        std::fs::write(&path, "# nothing\n").unwrap();
        let err = ShardList::read(&path).unwrap_err().to_string();
        assert!(err.contains("names no shard"), "{err}");
    }

    #[test]
    fn a_stamp_tells_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.fps");
        std::fs::write(&path, "abc").unwrap();
        let stamp = FileStamp::of(&path).unwrap();
        assert_eq!(
            stamp.xxh3,
            format!("{:016x}", xxhash_rust::xxh3::xxh3_64(b"abc"))
        );
        assert_eq!(stamp.changed(true).unwrap(), None);
        std::fs::write(&path, "abd").unwrap();
        let what = stamp.changed(true).unwrap().unwrap();
        assert!(what.contains("checksum"), "{what}");
        std::fs::write(&path, "abcd").unwrap();
        let what = stamp.changed(false).unwrap().unwrap();
        assert!(what.contains("size is 4 bytes, was 3"), "{what}");
        std::fs::remove_file(&path).unwrap();
        assert!(stamp.changed(false).is_err());
    }
}
