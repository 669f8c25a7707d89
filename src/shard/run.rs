//! The sharded run's files end to end, as the command line and Python take them: a task's
//! shards, model and pending ids to a part file; part files to a batch file.

use std::path::{Path, PathBuf};

use crate::data::IdList;
use crate::engine::SelectValidParams;
use crate::error::{Error, Result};
use crate::model::FittedModel;
use crate::pool::FilePool;
use crate::report::{self, OutputSet, Outputs};

use super::{
    merge, merge_to_part, write_part, MergeParams, Merged, PartData, ShardCheck, ShardList,
    ShardScorer, ShardTask,
};

/// Where a task's shards come from.
#[derive(Clone, Debug)]
pub enum TaskSource {
    /// Task `index` of the shard list at `list`, tasks of `per_task` shards.
    List {
        /// The shard list.
        list: PathBuf,
        /// The task.
        index: usize,
        /// Shards per task.
        per_task: usize,
    },
    /// Files named directly, whose first row is global row `row_offset`.
    Files {
        /// The files, in pool order.
        paths: Vec<PathBuf>,
        /// The first file's first global row.
        row_offset: usize,
    },
}

/// `shard-list`: counts the rows of each shard at `paths` (in parallel; a `.npy`/`.npz` by its
/// header, a text file by a pass) and writes the list to `out`, all or nothing: one line per
/// shard, with the `.ids.txt` that `featurize` wrote beside a `.npz`, paths relative to the
/// list's folder when they lie under it (absolute otherwise). `like` gives the reading
/// options. Returns the number of shards.
///
/// # Errors
/// [`Error::OutputRefused`]; [`Error::Io`] for a shard or folder that cannot be resolved;
/// [`Error::Format`] for a path with a tab or a line break; the readers'.
pub fn write_shard_list(paths: &[PathBuf], like: &FilePool, out: &Path) -> Result<usize> {
    use rayon::prelude::*;
    let mut set = Outputs::new().inputs(paths).output(out).check()?;
    let folder = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let folder = folder.canonicalize().map_err(|e| Error::io(folder, e))?;
    let name = |p: &Path| -> Result<String> {
        let full = p.canonicalize().map_err(|e| Error::io(p, e))?;
        let shown = full.strip_prefix(&folder).unwrap_or(&full);
        let s = shown.to_string_lossy().into_owned();
        if s.contains(['\t', '\n', '\r']) {
            return Err(Error::format(
                p,
                "a path with a tab or a line break cannot be listed",
            ));
        }
        Ok(s)
    };
    let lines: Vec<String> = paths
        .par_iter()
        .map(|path| -> Result<String> {
            let mut pool = FilePool {
                path: path.clone(),
                ..like.clone()
            };
            let ids = crate::featurize::ids_path(path);
            let npz = path.to_string_lossy().to_lowercase().ends_with(".npz");
            if npz && ids.is_file() {
                pool.ids = Some(ids);
            }
            let rows = super::count_rows(&pool)?;
            let mut line = format!("{}\t{rows}", name(path)?);
            if let Some(ids) = &pool.ids {
                line.push('\t');
                line.push_str(&name(ids)?);
            }
            Ok(line)
        })
        .collect::<Result<_>>()?;
    set.write(out, |w| {
        writeln!(
            w,
            "# poolrank shard list: PATH<TAB>ROWS[<TAB>IDS], in pool order; paths relative to this file's folder"
        )?;
        for line in &lines {
            writeln!(w, "{line}")?;
        }
        Ok(())
    })?;
    set.commit()?;
    Ok(lines.len())
}

/// `score-shard`: scores the task's shards with the model at `model` on `params.backend` (and
/// the pending ids in `pending`, one per line) and writes its part to `out` (`{index}` in it
/// stands for the task's index), all or nothing. `like` gives every shard's reading options
/// (format, id and SMILES columns); `floor` the `k`-th best of parts already scored
/// ([`ShardScorer::score`]). Returns the part and the path written.
///
/// # Errors
/// As [`ShardScorer::open`] and [`ShardScorer::score_files`].
#[allow(clippy::too_many_arguments)]
pub fn score_shard_files(
    params: &SelectValidParams,
    source: &TaskSource,
    like: &FilePool,
    model: &Path,
    pending: Option<&Path>,
    k: usize,
    out: &Path,
    floor: Option<(f32, usize)>,
) -> Result<(PartData, PathBuf)> {
    ShardScorer::open(model, params.backend)?
        .score_files(params, source, like, pending, k, out, floor)
}

impl ShardScorer {
    /// [`score_shard_files`] with this scorer's model and backend.
    ///
    /// # Errors
    /// [`Error::OutputRefused`] for an output that is also an input; [`Error::InvalidParam`]
    /// for a `k` of 0 or no shard; [`ShardScorer::score`]'s; the readers'.
    #[allow(clippy::too_many_arguments)]
    pub fn score_files(
        &self,
        params: &SelectValidParams,
        source: &TaskSource,
        like: &FilePool,
        pending: Option<&Path>,
        k: usize,
        out: &Path,
        floor: Option<(f32, usize)>,
    ) -> Result<(PartData, PathBuf)> {
        if k == 0 {
            return Err(Error::param("k", "must be at least 1"));
        }
        let (task, out, list) = match source {
            TaskSource::List {
                list,
                index,
                per_task,
            } => {
                let shards = ShardList::read(list)?;
                let task = ShardTask::from_list(&shards, *index, *per_task, like)?;
                let out = out.to_string_lossy().replace("{index}", &index.to_string());
                (task, PathBuf::from(out), Some(list))
            }
            TaskSource::Files { paths, row_offset } => {
                if paths.is_empty() {
                    return Err(Error::param("pool", "no shard file to score"));
                }
                let files = paths
                    .iter()
                    .map(|p| FilePool {
                        path: p.clone(),
                        ..like.clone()
                    })
                    .collect();
                (
                    ShardTask::from_files(files, *row_offset),
                    out.to_path_buf(),
                    None,
                )
            }
        };
        let files = task.pool.files();
        let mut set = Outputs::new()
            .input(self.model_path())
            .inputs(list)
            .inputs(files.iter().map(|f| &f.path))
            .inputs(files.iter().filter_map(|f| f.ids.as_ref()))
            .inputs(pending)
            .output(&out)
            .check()?;
        let pending = IdList::read_or_empty(pending)?;
        let part = self.score(params, &task, &pending, k, floor)?;
        write_part(&mut set, &out, &part)?;
        set.commit()?;
        Ok((part, out))
    }
}

/// `merge`: the parts at `parts` (each a file, or a pattern with `*` and `?` in its file
/// name) merged into the best `k`, written as the batch CSV `out` and the JSON `summary`
/// when given, all or nothing. `list` and `model` are checked against the parts (the model
/// picks a diverse batch from their shortlist).
///
/// # Errors
/// [`Error::OutputRefused`] for an output that is also an input; [`Error::Format`] for a
/// pattern no file matches; [`merge()`]'s.
pub fn merge_files(
    parts: &[PathBuf],
    k: usize,
    list: Option<&Path>,
    model: Option<&Path>,
    shards: ShardCheck,
    out: Option<&Path>,
    summary: Option<&Path>,
) -> Result<Merged> {
    let outputs = Outputs::new().outputs(out).outputs(summary);
    let (paths, mut set, list, fitted) = open_merge(parts, k, list, model, outputs)?;
    let params = MergeParams {
        k,
        list: list.as_ref(),
        model_xxh3: fitted.as_ref().map(|m| m.1.clone()),
        shards,
        model: fitted.as_ref().map(|m| &m.0),
    };
    let merged = merge(&paths, &params)?;
    if let Some(path) = out {
        report::write_batch_csv(&mut set, path, &merged.picks)?;
    }
    if let Some(path) = summary {
        report::write_json(&mut set, path, &merged.summary)?;
    }
    set.commit()?;
    Ok(merged)
}

/// `merge --out-part`: the parts at `parts` (as [`merge_files`] takes them) merged into the
/// part `out`, which holds their tasks and merges with the run's other parts
/// ([`merge_to_part`]), all or nothing. `list` and `model` are checked against the parts.
///
/// # Errors
/// As [`merge_files`], with [`merge_to_part`]'s.
pub fn merge_files_to_part(
    parts: &[PathBuf],
    k: usize,
    list: Option<&Path>,
    model: Option<&Path>,
    shards: ShardCheck,
    out: &Path,
) -> Result<PartData> {
    let (paths, mut set, list, fitted) =
        open_merge(parts, k, list, model, Outputs::new().output(out))?;
    let params = MergeParams {
        k,
        list: list.as_ref(),
        model_xxh3: fitted.map(|m| m.1),
        shards,
        model: None,
    };
    let part = merge_to_part(&paths, &params)?;
    write_part(&mut set, out, &part)?;
    set.commit()?;
    Ok(part)
}

/// A merge's inputs: the parts the patterns name, checked against `outputs`, and the list and
/// model read (with the model file's checksum).
#[allow(clippy::type_complexity)]
fn open_merge(
    parts: &[PathBuf],
    k: usize,
    list: Option<&Path>,
    model: Option<&Path>,
    outputs: Outputs,
) -> Result<(
    Vec<PathBuf>,
    OutputSet,
    Option<ShardList>,
    Option<(FittedModel, String)>,
)> {
    if k == 0 {
        return Err(Error::param("k", "must be at least 1"));
    }
    let mut paths = Vec::new();
    for p in parts {
        paths.extend(expand(p)?);
    }
    let set = outputs.inputs(&paths).inputs(list).inputs(model).check()?;
    let list = list.map(ShardList::read).transpose()?;
    let model = model.map(super::read_model).transpose()?;
    Ok((paths, set, list, model))
}

/// The files `pattern` names: itself when it is a file or has no wildcard, else the files of
/// its folder whose names match it (`*` any run of characters, `?` one), sorted.
///
/// # Errors
/// [`Error::Io`] when the folder cannot be read; [`Error::Format`] when no file matches.
pub fn expand(pattern: &Path) -> Result<Vec<PathBuf>> {
    let name = pattern
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if pattern.exists() || !name.contains(['*', '?']) {
        return Ok(vec![pattern.to_path_buf()]);
    }
    let folder = pattern.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = folder.unwrap_or(Path::new("."));
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if wildcard(name.as_bytes(), file.as_bytes()) && entry.path().is_file() {
            found.push(folder.map_or_else(|| PathBuf::from(&file), |p| p.join(&file)));
        }
    }
    if found.is_empty() {
        return Err(Error::format(pattern, "no file matches the pattern"));
    }
    found.sort();
    Ok(found)
}

/// True when `text` matches `pattern` (`*` any run, `?` one byte).
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn wildcards_match_as_a_shell_does() {
        assert!(wildcard(b"part-*.part", b"part-12.part"));
        assert!(wildcard(b"part-*.part", b"part-.part"));
        assert!(!wildcard(b"part-*.part", b"part-12.parts"));
        assert!(wildcard(b"p?rt*", b"part-1"));
        assert!(!wildcard(b"p?rt*", b"prt-1"));
        assert!(wildcard(b"*", b""));
        assert!(wildcard(b"*a*b", b"xxaxxb"));
        assert!(!wildcard(b"*a*b", b"xxaxxc"));
    }
}
