//! `shard-list`, `score-shard` and `merge`: a pool scored in shards on a cluster and merged
//! exactly (the library's `poolrank::shard`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

use poolrank::data::IdList;
use poolrank::shard::{self, FileStamp, MergeParams, ShardCheck, ShardList, ShardTask};
use poolrank::{report, SelectParams};

use crate::args::{MergeArgs, ScoreShardArgs, ShardListArgs};

/// The environment variables a job array gives its task's index in, in the order read.
const INDEX_VARS: [&str; 3] = [
    "SLURM_ARRAY_TASK_ID",
    "JOB_COMPLETION_INDEX",
    "AWS_BATCH_JOB_ARRAY_INDEX",
];

pub(crate) fn shard_list(a: ShardListArgs) -> Result<()> {
    let mut set = report::Outputs::new()
        .inputs(&a.shards)
        .output(&a.out)
        .check()?;
    let folder = a
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let folder = folder
        .canonicalize()
        .with_context(|| format!("{}: the list's folder", folder.display()))?;
    let lines: Vec<String> = a
        .shards
        .par_iter()
        .map(|path| -> Result<String> {
            let mut pool = a.read.pool(path);
            let ids = poolrank::featurize::ids_path(path);
            let npz = path.to_string_lossy().to_lowercase().ends_with(".npz");
            if npz && ids.is_file() {
                pool.ids = Some(ids.clone());
            }
            let rows = shard::count_rows(&pool)?;
            let name = |p: &Path| -> Result<String> {
                let full = p
                    .canonicalize()
                    .with_context(|| format!("{}: a shard", p.display()))?;
                let shown = full.strip_prefix(&folder).unwrap_or(&full);
                let s = shown.to_string_lossy().into_owned();
                if s.contains(['\t', '\n', '\r']) {
                    bail!(
                        "{}: a path with a tab or a line break cannot be listed",
                        p.display()
                    );
                }
                Ok(s)
            };
            let mut line = format!("{}\t{rows}", name(path)?);
            if let Some(ids) = &pool.ids {
                line.push('\t');
                line.push_str(&name(ids)?);
            }
            Ok(line)
        })
        .collect::<Result<_>>()?;
    set.write(&a.out, |w| {
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
    eprintln!("listed {} shard(s) in {}", lines.len(), a.out.display());
    Ok(())
}

/// The task's index: `--index`, or the job array's.
fn task_index(given: Option<usize>) -> Result<usize> {
    if let Some(i) = given {
        return Ok(i);
    }
    for var in INDEX_VARS {
        if let Ok(v) = std::env::var(var) {
            return v
                .trim()
                .parse()
                .with_context(|| format!("{var}={v:?}: expected a task index (0, 1, …)"));
        }
    }
    bail!(
        "--shard-list needs the task's index: give --index, or run as a job array task ({} set)",
        INDEX_VARS.join(", ")
    )
}

pub(crate) fn score_shard(a: ScoreShardArgs) -> Result<()> {
    let (task, out) = match &a.shard_list {
        Some(list_path) => {
            let index = task_index(a.index)?;
            let list = ShardList::read(list_path)?;
            let like = a.read.pool(Path::new(""));
            let task = ShardTask::from_list(&list, index, a.per_task, &like)?;
            let out = PathBuf::from(
                a.out
                    .to_string_lossy()
                    .replace("{index}", &index.to_string()),
            );
            (task, out)
        }
        None => {
            let files = a.pool.iter().map(|p| a.read.pool(p)).collect();
            (ShardTask::from_files(files, a.row_offset), a.out.clone())
        }
    };
    let shards: Vec<&Path> = task.pool.files().iter().map(|f| f.path.as_path()).collect();
    let ids: Vec<&Path> = task
        .pool
        .files()
        .iter()
        .filter_map(|f| f.ids.as_deref())
        .collect();
    let mut set = report::Outputs::new()
        .input(&a.model)
        .inputs(a.shard_list.as_ref())
        .inputs(&shards)
        .inputs(&ids)
        .inputs(a.pending.as_ref())
        .output(&out)
        .check()?;
    anyhow::ensure!(a.k > 0, "--k must be at least 1");
    let mut params = SelectParams {
        acquisition: a.acq.get()?,
        mode: a.batch_mode,
        shortlist: a.shortlist,
        max_sim: a.max_sim,
        round: a.round,
        prune: !a.no_prune,
        ..SelectParams::default()
    };
    a.run.apply(&mut params);
    let params = params.check()?;
    let model = poolrank::FittedModel::load(&a.model)?;
    let pending = IdList::read_or_empty(a.pending.as_deref())?;
    let part = shard::score_task(&params, &task, &model, &a.model, &pending, a.k)?;
    shard::write_part(&mut set, &out, &part)?;
    set.commit()?;
    let meta = &part.meta;
    let s = &meta.summary;
    let task_name = match meta.task.index {
        Some(i) => format!("task {i}"),
        None => "the shards".to_string(),
    };
    eprintln!(
        "scored {task_name} (rows {}..{}, {} candidates, {} labeled, {} pending) on {} in {:.2} s; kept {}; wrote {}",
        meta.task.start,
        meta.task.end,
        s.candidates,
        s.labeled,
        s.pending,
        s.backend,
        s.seconds.total,
        s.kept,
        out.display()
    );
    Ok(())
}

/// The files `pattern` names: itself when it is a file or has no wildcard, else the files of
/// its folder whose names match it (`*` any run of characters, `?` one), sorted.
fn expand(pattern: &Path) -> Result<Vec<PathBuf>> {
    let name = pattern
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if pattern.exists() || !name.contains(['*', '?']) {
        return Ok(vec![pattern.to_path_buf()]);
    }
    let folder = pattern
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder).with_context(|| format!("{}", folder.display()))? {
        let entry = entry.with_context(|| format!("{}", folder.display()))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if wildcard(name.as_bytes(), file.as_bytes()) && entry.path().is_file() {
            found.push(match pattern.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.join(&file),
                _ => PathBuf::from(&file),
            });
        }
    }
    if found.is_empty() {
        bail!("{}: no file matches the pattern", pattern.display());
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

pub(crate) fn merge(a: MergeArgs) -> Result<()> {
    let mut parts = Vec::new();
    for p in &a.parts {
        parts.extend(expand(p)?);
    }
    let mut set = report::Outputs::new()
        .inputs(&parts)
        .inputs(a.shard_list.as_ref())
        .inputs(a.model.as_ref())
        .output(&a.out)
        .outputs(a.summary.as_ref())
        .check()?;
    let list = a.shard_list.as_deref().map(ShardList::read).transpose()?;
    let model_xxh3 = a
        .model
        .as_deref()
        .map(|m| FileStamp::of(m).map(|s| s.xxh3))
        .transpose()?;
    let model = a
        .model
        .as_deref()
        .map(poolrank::FittedModel::load)
        .transpose()?;
    anyhow::ensure!(a.k > 0, "--k must be at least 1");
    let params = MergeParams {
        k: a.k,
        list: list.as_ref(),
        model_xxh3,
        shards: match (a.verify_shards, a.no_shard_check) {
            (true, _) => ShardCheck::Verify,
            (_, true) => ShardCheck::Skip,
            _ => ShardCheck::Stat,
        },
        model: model.as_ref(),
    };
    let merged = shard::merge(&parts, &params)?;
    report::write_batch_csv(&mut set, &a.out, &merged.picks)?;
    if let Some(path) = &a.summary {
        report::write_json(&mut set, path, &merged.summary)?;
    }
    set.commit()?;
    let s = &merged.summary;
    eprintln!(
        "merged {} part(s) ({} rows, {} candidates) in {:.2} s: picked {} with {}; wrote {}",
        s.parts,
        s.rows,
        s.candidates,
        s.seconds,
        merged.picks.len(),
        s.settings.acquisition.name(),
        a.out.display()
    );
    Ok(())
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
