//! `shard-list`, `score-shard` and `merge`: a pool scored in shards on a cluster and merged
//! exactly (the library's `poolrank::shard`).

use std::path::Path;

use anyhow::{bail, Context, Result};

use poolrank::shard::{self, ShardCheck, TaskSource};
use poolrank::SelectParams;

use crate::args::{MergeArgs, ScoreShardArgs, ShardListArgs};

/// The environment variables a job array gives its task's index in, in the order read.
const INDEX_VARS: [&str; 3] = [
    "SLURM_ARRAY_TASK_ID",
    "JOB_COMPLETION_INDEX",
    "AWS_BATCH_JOB_ARRAY_INDEX",
];

pub(crate) fn shard_list(a: ShardListArgs) -> Result<()> {
    let n = shard::write_shard_list(&a.shards, &a.read.pool(Path::new("")), &a.out)?;
    eprintln!("listed {n} shard(s) in {}", a.out.display());
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
    let source = match &a.shard_list {
        Some(list) => TaskSource::List {
            list: list.clone(),
            index: task_index(a.index)?,
            per_task: a.per_task,
        },
        None => TaskSource::Files {
            paths: a.pool.clone(),
            row_offset: a.row_offset,
        },
    };
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
    let like = a.read.pool(Path::new(""));
    let (part, out) = shard::score_shard_files(
        &params,
        &source,
        &like,
        &a.model,
        a.pending.as_deref(),
        a.k,
        &a.out,
        a.floor,
    )?;
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

pub(crate) fn merge(a: MergeArgs) -> Result<()> {
    let check = match (a.verify_shards, a.no_shard_check) {
        (true, _) => ShardCheck::Verify,
        (_, true) => ShardCheck::Skip,
        _ => ShardCheck::Stat,
    };
    let (list, model) = (a.shard_list.as_deref(), a.model.as_deref());
    let Some(out) = &a.out else {
        let out = a
            .out_part
            .as_deref()
            .expect("clap asks for --out or --out-part");
        let started = std::time::Instant::now();
        let part = shard::merge_files_to_part(&a.parts, a.k, list, model, check, out)?;
        let s = &part.meta.summary;
        eprintln!(
            "merged {} task(s) ({} rows, {} candidates) into one part in {:.2} s: kept {}; wrote {}",
            part.meta.task.pieces.len(),
            s.rows,
            s.candidates,
            started.elapsed().as_secs_f64(),
            s.kept,
            out.display()
        );
        return Ok(());
    };
    let merged = shard::merge_files(
        &a.parts,
        a.k,
        list,
        model,
        check,
        Some(out),
        a.summary.as_deref(),
    )?;
    let s = &merged.summary;
    eprintln!(
        "merged {} part(s) ({} rows, {} candidates) in {:.2} s: picked {} with {}; wrote {}",
        s.parts,
        s.rows,
        s.candidates,
        s.seconds,
        merged.picks.len(),
        s.settings.acquisition.name(),
        out.display()
    );
    if let Some(j) = &s.joint {
        eprintln!("{}", crate::joint_line(j));
    }
    Ok(())
}
