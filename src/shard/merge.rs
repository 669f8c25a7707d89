//! The merge: the best `k` rows of the parts, after checking that they are the parts of one
//! run, all of them, each once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use crate::acquisition::AcqContext;
use crate::backend::Stages;
use crate::data::Features;
use crate::engine::{PendingRow, Pick, ShardRow, ShardSummary};
use crate::error::{Error, Result};
use crate::model::FittedModel;
use crate::select::{better, choose_batch, Batch, JointReport, Ranked, Shortlisted, TopK};

use super::part::{
    ModelStamp, Part, PartData, PartMeta, PartSettings, PartTask, Piece, ShardStamp,
};
use super::ShardList;

/// What the merge checks of the shard files the parts name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShardCheck {
    /// Size and modification time (the checksum when they differ).
    #[default]
    Stat,
    /// The checksum of every shard (reads them all).
    Verify,
    /// Nothing (the shards are not reachable from where the merge runs).
    Skip,
}

/// How to merge.
#[derive(Clone, Debug, Default)]
pub struct MergeParams<'a> {
    /// The batch: the best `k` of all parts.
    pub k: usize,
    /// The shard list the parts were scored from: checked against theirs, and it names the
    /// shards of a missing task.
    pub list: Option<&'a ShardList>,
    /// The XXH3-64 checksum (16 hex digits) of the model the parts must have been scored with.
    pub model_xxh3: Option<String>,
    /// What to check of the shard files.
    pub shards: ShardCheck,
    /// The model, which a diverse batch or a similarity cap needs to pick from the merged
    /// shortlist (its checksum must then be given too).
    pub model: Option<&'a FittedModel>,
}

/// What the merge found and did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MergeSummary {
    /// Parts merged.
    pub parts: usize,
    /// Tasks of the shard list (`None` for shards named directly).
    pub tasks: Option<usize>,
    /// Rows of the pool the parts cover.
    pub rows: usize,
    /// The model's labeled candidates found in the shards.
    pub labeled: usize,
    /// Pending candidates found in the shards.
    pub pending: usize,
    /// Candidates scored and eligible, over all shards.
    pub candidates: usize,
    /// The batch size.
    pub batch: usize,
    /// The model.
    pub model: ModelStamp,
    /// The scoring settings.
    pub settings: PartSettings,
    /// How many candidates reached each stage, over all shards (`pruned`: some shard pruned).
    pub stages: Stages,
    /// Tasks per backend that scored them.
    pub backends: BTreeMap<String, usize>,
    /// Seconds the tasks took, added up.
    pub task_seconds: f64,
    /// For `thompson` and `qpo`: the joint step's report. The merge cannot grow the shortlist
    /// as `select` does; a `tail_share` above 1% says a longer `shortlist` would change the
    /// batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joint: Option<JointReport>,
    /// Seconds of the merge.
    pub seconds: f64,
}

/// The merged batch and what was done.
#[derive(Clone, Debug)]
pub struct Merged {
    /// The batch, best first, as `select` on the whole pool picks it.
    pub picks: Vec<Pick>,
    /// What was done.
    pub summary: MergeSummary,
}

/// Merges the parts at `paths` into the best `params.k` candidates: the batch one process
/// picks on the whole pool. The parts are read in parallel, each whole but one at a time per
/// thread, so memory holds a part and `k` rows per thread, not every part's rows. A part may
/// itself be merged from others ([`merge_to_part`]), so the merge can run as a tree: any
/// grouping of the tasks gives the same batch.
///
/// # Errors
/// [`Error::Format`] naming the part: one that does not read, one given twice, one scored with
/// another model, other settings or another shard list, two parts that hold one task, a task
/// without a part (naming its shards when `params.list` is given), parts whose rows do not
/// join up, a part that kept fewer than `k`; naming the shard: a shard that changed since it
/// was scored or cannot be read ([`ShardCheck`]); [`Error::InvalidParam`] (`pending`) when
/// the shards did not find every pending id exactly once; [`Error::BatchTooLarge`].
pub fn merge(paths: &[PathBuf], params: &MergeParams) -> Result<Merged> {
    let started = Instant::now();
    let g = gather(paths, params, Scope::Whole)?;
    let k = params.k;
    let first = &g.metas[0].1;
    let totals = totals(&g.metas);
    let mut backends = BTreeMap::new();
    for (_, m) in &g.metas {
        for piece in m.pieces() {
            *backends.entry(piece.backend).or_default() += 1;
        }
    }
    let mut summary = MergeSummary {
        parts: g.metas.len(),
        tasks: g.tasks,
        rows: totals.rows,
        labeled: totals.labeled,
        pending: totals.pending,
        candidates: totals.candidates,
        batch: k,
        model: first.model.clone(),
        settings: first.settings.clone(),
        stages: totals.stages,
        backends,
        task_seconds: totals.seconds.total,
        joint: None,
        seconds: 0.0,
    };
    if k > summary.candidates {
        return Err(Error::BatchTooLarge {
            batch: k,
            available: summary.candidates,
        });
    }
    check_floors(&g.metas, &g.kept, g.keep)?;
    let chosen: Vec<(usize, f32)> = match first.settings.shortlist {
        None => g
            .kept
            .iter()
            .enumerate()
            .map(|(i, r)| (i, r.score))
            .collect(),
        Some(_) => {
            let model = params.model.ok_or_else(|| {
                Error::param(
                    "model",
                    "the parts hold a shortlist (a diverse batch or a similarity cap): the merge picks from it with the model, so give the model",
                )
            })?;
            let b = pick_from_shortlist(
                model,
                &first.settings,
                first.features,
                &g.kept,
                &g.pending,
                k,
            )?;
            summary.joint = b.joint;
            b.picks
        }
    };
    let picks = chosen
        .into_iter()
        .enumerate()
        .map(|(rank, (i, score))| {
            let r = &g.kept[i];
            Pick {
                rank: rank + 1,
                id: r.item.id.clone(),
                index: r.index,
                score,
                mean: r.item.mean,
                sd: r.item.sd,
            }
        })
        .collect();
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(Merged { picks, summary })
}

/// Merges some of a run's parts into one part that holds their tasks: their best `params.k`
/// rows (or their shortlist's), their pending candidates, shards, floors, counts and task
/// seconds (the merge's own time is not added). Merging it with the run's other parts gives
/// the batch [`merge`] gives on all of them, so a merge of many parts can run in stages (a
/// tree), on several machines.
///
/// # Errors
/// As [`merge`], but for what needs every task: a task without a part, rows that do not join
/// up, a pending id no shard found, a floor the batch must reach, and a batch larger than the
/// candidates are left to the final merge.
pub fn merge_to_part(paths: &[PathBuf], params: &MergeParams) -> Result<PartData> {
    let g = gather(paths, params, Scope::Some)?;
    let first = &g.metas[0].1;
    let mut pieces: Vec<Piece> = g.metas.iter().flat_map(|(_, m)| m.pieces()).collect();
    pieces.sort_by_key(|c| (c.start, c.end));
    let mut shards: Vec<ShardStamp> = g
        .metas
        .iter()
        .flat_map(|(_, m)| m.shards.iter().cloned())
        .collect();
    shards.sort_by_key(|s| s.start);
    let floor = g.metas.iter().filter_map(|(_, m)| m.floor).reduce(|a, b| {
        match better((b.score, b.index), (a.score, a.index)) {
            true => b,
            false => a,
        }
    });
    let mut backends: Vec<&str> = pieces.iter().map(|c| c.backend.as_str()).collect();
    backends.sort_unstable();
    backends.dedup();
    let mut summary = totals(&g.metas);
    summary.kept = g.kept.len();
    summary.backend = backends.join("+");
    let meta = PartMeta {
        poolrank: env!("CARGO_PKG_VERSION").to_string(),
        model: first.model.clone(),
        features: first.features,
        settings: first.settings.clone(),
        task: PartTask {
            list: first.task.list.clone(),
            index: None,
            start: pieces.first().map_or(0, |c| c.start),
            end: pieces.last().map_or(0, |c| c.end),
            pieces,
        },
        shards,
        floor,
        summary,
    };
    Ok(PartData {
        meta,
        pending: g.pending,
        rows: g.kept.into_iter().map(|r| r.item).collect(),
    })
}

/// Whether a merge covers every task (the batch) or some of them (a merged part).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Whole,
    Some,
}

/// The parts of one run, read and checked, with the best rows of their union.
struct Gathered<'a> {
    /// Every part's meta, in path order.
    metas: Vec<(&'a Path, PartMeta)>,
    /// The shard list's tasks (`None` for shards named directly).
    tasks: Option<usize>,
    /// The rows kept (best first): the batch `k`, or the shortlist.
    kept: Vec<Ranked<ShardRow>>,
    /// How many rows the merge keeps.
    keep: usize,
    /// The pending candidates the parts hold, in the pending list's order.
    pending: Vec<PendingRow>,
}

/// Reads the parts at `paths` in parallel into one top-k and checks that they are parts of
/// one run, each task once (and, for [`Scope::Whole`], all of them).
fn gather<'a>(paths: &'a [PathBuf], params: &MergeParams, scope: Scope) -> Result<Gathered<'a>> {
    if paths.is_empty() {
        return Err(Error::param("parts", "no part to merge"));
    }
    let mut order: Vec<&PathBuf> = paths.iter().collect();
    order.sort();
    if let Some(w) = order.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::format(
            w[0],
            "the part is given twice; each part is merged once",
        ));
    }
    let k = params.k;
    // The first part tells how many rows to keep: the batch, or the shortlist.
    let first = Part::read(order[0])?;
    let keep = first.meta.settings.shortlist.unwrap_or(k);
    drop(first);
    // Every part's meta in path order; the rows through one top-k per thread.
    let (mut metas, mut errors, mut pending, top) = order
        .par_iter()
        .enumerate()
        .fold(
            || {
                (
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    TopK::<ShardRow>::new(keep),
                )
            },
            |(mut metas, mut errors, mut pending, mut top), (i, path)| {
                match read_into(path, &mut top) {
                    Ok((meta, p)) => {
                        metas.push((i, meta));
                        pending.extend(p);
                    }
                    Err(e) => errors.push((i, e)),
                }
                (metas, errors, pending, top)
            },
        )
        .reduce(
            || (Vec::new(), Vec::new(), Vec::new(), TopK::new(keep)),
            |(mut m, mut e, mut p, mut t), (m2, e2, p2, t2)| {
                m.extend(m2);
                e.extend(e2);
                p.extend(p2);
                t.merge(t2);
                (m, e, p, t)
            },
        );
    if !errors.is_empty() {
        errors.sort_by_key(|(i, _)| *i);
        return Err(errors.swap_remove(0).1);
    }
    metas.sort_by_key(|(i, _)| *i);
    let metas: Vec<(&Path, PartMeta)> = metas
        .into_iter()
        .map(|(i, m)| (order[i].as_path(), m))
        .collect();
    check_same_run(&metas, params)?;
    let tasks = check_coverage(&metas, params.list, scope)?;
    check_kept(&metas, k, keep)?;
    check_pending(&metas, scope)?;
    check_shards(&metas, params.shards)?;
    pending.sort_by_key(|p| p.place);
    Ok(Gathered {
        metas,
        tasks,
        kept: top.into_sorted(),
        keep,
        pending,
    })
}

/// The parts' counts and timings added up (`kept` and `backend` are left to the caller).
fn totals(metas: &[(&Path, PartMeta)]) -> ShardSummary {
    let mut t = ShardSummary::default();
    for (_, m) in metas {
        let s = &m.summary;
        t.rows += s.rows;
        t.labeled += s.labeled;
        t.pending += s.pending;
        t.candidates += s.candidates;
        t.stages += s.stages;
        t.seconds.locate += s.seconds.locate;
        t.seconds.score += s.seconds.score;
        t.seconds.total += s.seconds.total;
    }
    t
}

/// Reads one part, offering its rows to `top`; every row must lie in the part's rows. Returns
/// its meta and its pending candidates.
fn read_into(path: &Path, top: &mut TopK<ShardRow>) -> Result<(PartMeta, Vec<PendingRow>)> {
    let part = Part::read(path)?;
    let mut pieces = part.meta.pieces();
    pieces.sort_by_key(|c| c.start);
    let mut line = 3;
    part.for_each_row(|score, index, whole| {
        line += 1;
        let at = pieces.partition_point(|c| c.end <= index);
        if pieces.get(at).is_none_or(|c| c.start > index) {
            let rows: Vec<String> = pieces
                .iter()
                .map(|c| format!("{}..{}", c.start, c.end))
                .collect();
            return Err(Error::parse(
                path,
                line,
                format!(
                    "row {index} is outside the part's rows {}",
                    short_list(&rows)
                ),
            ));
        }
        if top.accepts(score, index) {
            top.push(score, index, whole()?);
        }
        Ok(())
    })?;
    Ok((part.meta, part.pending))
}

/// The batch policy of `select` on the merged shortlist `kept` (best first) with the pending
/// candidates (in the pending list's order).
fn pick_from_shortlist(
    model: &FittedModel,
    settings: &PartSettings,
    kind: crate::data::FeatureKind,
    kept: &[Ranked<ShardRow>],
    pending: &[PendingRow],
    batch: usize,
) -> Result<Batch> {
    let gp = model.gp();
    let short: Vec<Shortlisted> = kept
        .iter()
        .map(|r| Shortlisted {
            index: r.index,
            mean: r.item.latent_mean,
            var: r.item.latent_var,
        })
        .collect();
    let mut feats = Features::empty(kind);
    for r in kept {
        let row = r
            .item
            .row
            .as_ref()
            .expect("a shortlist part's rows have features");
        feats.push_row_from(row, 0);
    }
    let mut others = Features::empty(kind);
    for p in pending {
        others.push_row_from(&p.row, 0);
    }
    let ctx = AcqContext {
        best: gp.y_best as f32,
        seed: settings.seed,
        round: settings.round,
    };
    choose_batch(
        settings.mode,
        gp,
        settings.acquisition,
        &ctx,
        &short,
        &feats,
        &others,
        batch,
        settings.max_sim,
    )
}

/// One model, one set of settings, one way of naming the shards.
fn check_same_run(metas: &[(&Path, PartMeta)], params: &MergeParams) -> Result<()> {
    let (first_path, first) = &metas[0];
    if let Some(want) = &params.model_xxh3 {
        if &first.model.xxh3 != want {
            return Err(Error::format(
                first_path,
                format!(
                    "was scored with the model {} (checksum {}), not the one given (checksum {want})",
                    first.model.path.display(),
                    first.model.xxh3
                ),
            ));
        }
    }
    for (path, m) in &metas[1..] {
        if m.model.xxh3 != first.model.xxh3 {
            return Err(Error::format(
                path,
                format!(
                    "was scored with another model: {} (checksum {}), while {} was scored with {} (checksum {})",
                    m.model.path.display(),
                    m.model.xxh3,
                    first_path.display(),
                    first.model.path.display(),
                    first.model.xxh3
                ),
            ));
        }
        if let Some((name, ours, theirs)) = first.settings.difference(&m.settings) {
            return Err(Error::format(
                path,
                format!(
                    "was scored with another {name}: {theirs}, while {} was scored with {ours}; \
                     the parts of one merge come from one set of score-shard settings",
                    first_path.display()
                ),
            ));
        }
        let list = |m: &PartMeta| {
            m.task
                .list
                .as_ref()
                .map(|l| (l.xxh3.clone(), l.tasks, l.per_task))
        };
        if list(m) != list(first) {
            let name = |m: &PartMeta| match &m.task.list {
                Some(l) => format!(
                    "the shard list {} (checksum {}, {} tasks)",
                    l.path.display(),
                    l.xxh3,
                    l.tasks
                ),
                None => "shards named directly".to_string(),
            };
            return Err(Error::format(
                path,
                format!(
                    "comes from {}, while {} comes from {}",
                    name(m),
                    first_path.display(),
                    name(first)
                ),
            ));
        }
    }
    Ok(())
}

/// Every task at most once (for [`Scope::Whole`], exactly once, with rows that join up from
/// 0); returns the list's task count.
fn check_coverage(
    metas: &[(&Path, PartMeta)],
    list: Option<&ShardList>,
    scope: Scope,
) -> Result<Option<usize>> {
    let (first_path, first) = &metas[0];
    let mut pieces: Vec<(&Path, Piece)> = metas
        .iter()
        .flat_map(|(path, m)| m.pieces().into_iter().map(move |c| (*path, c)))
        .collect();
    let Some(stamp) = &first.task.list else {
        // Shards named directly: the rows must join up from 0 (a missing last part cannot be
        // told).
        pieces.sort_by_key(|(_, c)| (c.start, c.end));
        let mut covered = 0;
        let mut last: Option<&Path> = None;
        for (path, c) in pieces {
            if c.start > covered && scope == Scope::Whole {
                return Err(Error::format(
                    path,
                    format!(
                        "starts at row {}, but no part covers rows {covered}..{}: a part is missing",
                        c.start, c.start
                    ),
                ));
            }
            if c.start < covered {
                let other = last.map_or(String::new(), |p| p.display().to_string());
                return Err(Error::format(
                    path,
                    format!(
                        "covers rows {}..{}, which overlap those of {other}: a shard was scored twice, or merged into two parts",
                        c.start, c.end
                    ),
                ));
            }
            covered = c.end;
            last = Some(path);
        }
        return Ok(None);
    };
    if let Some(list) = list {
        let crc = format!("{:016x}", list.checksum);
        if crc != stamp.xxh3 {
            return Err(Error::format(
                &list.path,
                format!(
                    "is not the shard list the parts were scored from (its checksum is {crc}; {} names {} with checksum {})",
                    first_path.display(),
                    stamp.path.display(),
                    stamp.xxh3
                ),
            ));
        }
    }
    let mut holder: Vec<Option<usize>> = vec![None; stamp.tasks];
    for (i, (path, c)) in pieces.iter().enumerate() {
        let index = c.index.filter(|&t| t < stamp.tasks).ok_or_else(|| {
            Error::format(
                path,
                format!(
                    "names no task of the list's {} (a damaged part)",
                    stamp.tasks
                ),
            )
        })?;
        if let Some(j) = holder[index] {
            return Err(Error::format(
                path,
                format!(
                    "holds task {index}, as {} does: a task was scored twice, or merged into two parts; merge one of them",
                    pieces[j].0.display()
                ),
            ));
        }
        holder[index] = Some(i);
    }
    if scope == Scope::Some {
        return Ok(Some(stamp.tasks));
    }
    let missing: Vec<usize> = (0..stamp.tasks).filter(|&t| holder[t].is_none()).collect();
    if let Some(&t) = missing.first() {
        let shards = match list {
            Some(list) => {
                let range = list.task(t, stamp.per_task)?;
                let names: Vec<String> = list.shards[range]
                    .iter()
                    .map(|s| s.path.display().to_string())
                    .collect();
                format!(" (shards {})", names.join(", "))
            }
            None => String::new(),
        };
        let more = match missing.len() {
            1 => String::new(),
            n => format!("; {} tasks have none in all: {}", n, short_list(&missing)),
        };
        return Err(Error::format(
            &stamp.path,
            format!(
                "no part for task {t}{shards} of its {} tasks{more}; score it with `poolrank score-shard --shard-list {} --index {t}`",
                stamp.tasks,
                stamp.path.display()
            ),
        ));
    }
    let mut covered = 0;
    for (t, slot) in holder.iter().enumerate() {
        let (path, c) = &pieces[slot.expect("every task has a part")];
        if c.start != covered {
            return Err(Error::format(
                path,
                format!(
                    "task {t} starts at row {}, but the tasks before it end at row {covered}: the \
                     parts were scored from lists with other row counts",
                    c.start
                ),
            ));
        }
        covered = c.end;
    }
    Ok(Some(stamp.tasks))
}

/// `1, 2, 5, … (12 in all)`.
fn short_list<T: std::fmt::Display>(items: &[T]) -> String {
    let shown: Vec<String> = items.iter().take(10).map(|t| t.to_string()).collect();
    match items.len() > 10 {
        true => format!("{}, …", shown.join(", ")),
        false => shown.join(", "),
    }
}

/// Each part kept its best `keep` (the batch `k` or the shortlist), or every candidate it had;
/// a shortlist was made for this batch.
fn check_kept(metas: &[(&Path, PartMeta)], k: usize, keep: usize) -> Result<()> {
    for (path, m) in metas {
        let s = &m.summary;
        if m.settings.shortlist.is_some() && m.settings.k != k {
            return Err(Error::format(
                path,
                format!(
                    "holds the shortlist of a batch of {}: a diverse batch or a similarity cap merges to that batch only (merge with --k {}, or score with --k {k})",
                    m.settings.k, m.settings.k
                ),
            ));
        }
        if s.kept < keep && s.kept < s.candidates && m.floor.is_none() {
            return Err(Error::format(
                path,
                format!(
                    "kept its best {} of {} candidates, fewer than the batch of {k}: score the tasks with --k {k} or more",
                    s.kept, s.candidates
                ),
            ));
        }
    }
    Ok(())
}

/// A part scored with a floor kept every candidate that ranks before it; that is enough when
/// the merged `keep`-th best ranks at or before the floor.
fn check_floors(metas: &[(&Path, PartMeta)], kept: &[Ranked<ShardRow>], keep: usize) -> Result<()> {
    let last = kept
        .last()
        .filter(|_| kept.len() >= keep)
        .map(|r| (r.score, r.index));
    for (path, m) in metas {
        let Some(f) = m.floor else { continue };
        let ok = last.is_some_and(|last| !better((f.score, f.index), last));
        if !ok {
            return Err(Error::format(
                path,
                format!(
                    "was scored with a floor (score {} of row {}) that the merged batch's last pick does not reach: it may have left out candidates the batch needs; score its task again without a floor",
                    f.score, f.index
                ),
            ));
        }
    }
    Ok(())
}

/// The shards found every pending id exactly once, together (for [`Scope::Some`], at most
/// once).
fn check_pending(metas: &[(&Path, PartMeta)], scope: Scope) -> Result<()> {
    let Some(pending) = &metas[0].1.settings.pending else {
        return Ok(());
    };
    let found: usize = metas.iter().map(|(_, m)| m.summary.pending).sum();
    if found < pending.ids && scope == Scope::Whole {
        return Err(Error::param(
            "pending",
            format!(
                "the shards found {found} of the {} pending ids: {} are in no shard (select on the whole pool would refuse them)",
                pending.ids,
                pending.ids - found
            ),
        ));
    }
    if found > pending.ids {
        return Err(Error::param(
            "pending",
            format!(
                "the shards found {found} rows of the {} pending ids: some id is in more than one shard",
                pending.ids
            ),
        ));
    }
    Ok(())
}

/// No shard changed since its part was scored.
fn check_shards(metas: &[(&Path, PartMeta)], check: ShardCheck) -> Result<()> {
    if check == ShardCheck::Skip {
        return Ok(());
    }
    let stamps: Vec<(&Path, &super::part::ShardStamp)> = metas
        .iter()
        .flat_map(|(p, m)| m.shards.iter().map(move |s| (*p, s)))
        .collect();
    let found: Vec<Option<Error>> = stamps
        .par_iter()
        .map(|(part, s)| match s.file.changed(check == ShardCheck::Verify) {
            Ok(None) => None,
            Ok(Some(what)) => Some(Error::format(
                &s.file.path,
                format!(
                    "changed since {} scored it: {what}; score its task again",
                    part.display()
                ),
            )),
            Err(e) => Some(Error::format(
                &s.file.path,
                format!(
                    "cannot be checked against {}: {e}; merge with --no-shard-check where the shards are not reachable",
                    part.display()
                ),
            )),
        })
        .collect();
    match found.into_iter().flatten().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
