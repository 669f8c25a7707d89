//! The one label-to-row join: a pass over a pool that finds the rows of the labeled ids and of
//! one other id list (pending candidates, a test set), checks that the pool's ids are unique,
//! counts the rows and shows every tile to the caller. `select`, `fit`, `diagnose`,
//! `simulate` and the Python binding all find their rows here.

use std::collections::HashMap;

use crate::data::ids::{id_hash, RepeatedIds};
use crate::data::{FeatureKind, Features, IdList, Labels, Pool, Tile};
use crate::error::{Error, Result};
use crate::progress::progress_bar;

/// What the pool must hold of the labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Every labeled id is in the pool (the labels were measured on this pool).
    All,
    /// Labeled ids the pool lacks are left out (a saved model scoring another library).
    Present,
    /// Labeled ids and ids of the other list that the pool lacks are left out: one shard of a
    /// pool, scored on its own (`score-shard`); the merge checks the pending ids across shards.
    Shard,
    /// Every pool row is labeled (a retrospective simulation); labels the pool lacks are left
    /// out, and the labeled rows' features are not kept (the caller keeps every tile).
    Every,
}

/// How to run the pass.
#[derive(Clone, Copy, Debug)]
pub struct Pass {
    /// What the pool must hold of the labels.
    pub rule: Rule,
    /// Rows per tile.
    pub tile_rows: usize,
    /// Show a progress bar on a terminal.
    pub progress: bool,
}

/// What the pass finds.
#[derive(Clone, Debug)]
pub struct Joined {
    /// The pool's features.
    pub kind: FeatureKind,
    /// Rows in the pool.
    pub pool_size: usize,
    /// The labeled rows found, in the labels' order (empty under [`Rule::Every`]).
    pub train: Features,
    /// Their labels.
    pub y: Vec<f64>,
    /// Their rows in the pool.
    pub train_rows: Vec<usize>,
    /// The rows of the other list's ids, in its order; under every rule but [`Rule::Every`]
    /// those also labeled are left out (a pending candidate that is labeled is just labeled).
    pub other: Features,
    /// Their rows in the pool.
    pub other_rows: Vec<usize>,
    /// Their places in the other list.
    pub other_places: Vec<usize>,
    /// The rows that are labeled or in the other list, sorted.
    pub excluded: Vec<usize>,
}

/// Finds `labels` and `other` in `pool` in one pass; `on_tile` sees every tile read.
///
/// # Errors
/// [`Error::UnknownIds`] for labeled ids the pool lacks (under [`Rule::All`]; the examples name
/// their lines) and for ids of `other` it lacks; [`Error::DuplicateId`] for a repeated pool
/// id; [`Error::Unlabeled`] for a pool row without a label (under [`Rule::Every`]);
/// [`Error::EmptyPool`]; and the reader's errors.
pub fn join(
    pool: &dyn Pool,
    labels: &Labels,
    other: &IdList,
    pass: Pass,
    on_tile: &mut dyn FnMut(&Tile),
) -> Result<Joined> {
    let every = pass.rule == Rule::Every;
    let label_of: HashMap<&str, usize> = labels
        .ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let other_of: HashMap<&str, usize> = other
        .ids
        .iter()
        .enumerate()
        .filter(|(_, s)| every || !label_of.contains_key(s.as_str()))
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let mut label_rows: Vec<Option<(usize, Features)>> = vec![None; labels.ids.len()];
    let mut other_rows: Vec<Option<(usize, Features)>> = vec![None; other.ids.len()];
    let mut unlabeled: (usize, Vec<String>) = (0, Vec::new());
    let mut reader = pool.open()?;
    let kind = reader.kind();
    let progress = progress_bar(
        pass.progress,
        reader.len_hint().map(|n| n as u64),
        "reading candidates",
    );
    let mut tile = Tile::new(kind);
    let mut hashes: Vec<u64> = Vec::new();
    // Row indices are unique by construction; only ids from a file can repeat.
    let check_dups = !pool.ids_are_row_indices()?;
    let mut pool_size = 0;
    while reader.read_tile(pass.tile_rows, &mut tile)? {
        for (r, id) in tile.ids.iter().enumerate() {
            let global = tile.start + r;
            if check_dups {
                hashes.push(id_hash(id));
            }
            let found = |slot: &mut Option<(usize, Features)>, keep: bool| {
                if let Some((first, _)) = slot {
                    return Err(Error::DuplicateId {
                        path: pool.name().to_path_buf(),
                        id: id.clone(),
                        where_: format!("rows {first} and {global}"),
                    });
                }
                let row = match keep {
                    true => tile.features.select_rows(&[r]),
                    false => Features::empty(kind),
                };
                *slot = Some((global, row));
                Ok(())
            };
            match label_of.get(id.as_str()) {
                Some(&l) => found(&mut label_rows[l], !every)?,
                None if every => {
                    unlabeled.0 += 1;
                    if unlabeled.1.len() < 5 {
                        unlabeled.1.push(id.clone());
                    }
                }
                None => {}
            }
            if let Some(&o) = other_of.get(id.as_str()) {
                found(&mut other_rows[o], true)?;
            }
        }
        on_tile(&tile);
        pool_size += tile.len();
        progress.inc(tile.len() as u64);
    }
    progress.finish_and_clear();
    if pool_size == 0 {
        return Err(Error::EmptyPool {
            path: pool.name().to_path_buf(),
        });
    }
    if check_dups {
        find_duplicate_ids(pool, pass.tile_rows, hashes)?;
    }
    if unlabeled.0 > 0 {
        return Err(Error::Unlabeled {
            path: labels.source.clone(),
            count: unlabeled.0,
            examples: unlabeled.1,
        });
    }
    let missing: Vec<String> = labels
        .ids
        .iter()
        .zip(&label_rows)
        .filter(|(_, r)| r.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    if pass.rule == Rule::All && !missing.is_empty() {
        return Err(labels.name_lines(Error::UnknownIds {
            path: labels.source.clone(),
            count: missing.len(),
            examples: missing.into_iter().take(5).collect(),
        }));
    }
    let other_missing: Vec<String> = other
        .ids
        .iter()
        .enumerate()
        .filter(|(i, s)| other_of.contains_key(s.as_str()) && other_rows[*i].is_none())
        .map(|(_, s)| s.clone())
        .collect();
    if !other_missing.is_empty() && pass.rule != Rule::Shard {
        return Err(Error::UnknownIds {
            path: other.source.clone(),
            count: other_missing.len(),
            examples: other_missing.into_iter().take(5).collect(),
        });
    }
    let mut joined = Joined {
        kind,
        pool_size,
        train: Features::empty(kind),
        y: Vec::with_capacity(labels.ids.len()),
        train_rows: Vec::with_capacity(labels.ids.len()),
        other: Features::empty(kind),
        other_rows: Vec::with_capacity(other_of.len()),
        other_places: Vec::with_capacity(other_of.len()),
        excluded: Vec::new(),
    };
    for (l, slot) in label_rows.into_iter().enumerate() {
        if let Some((global, row)) = slot {
            if !every {
                joined.train.push_row_from(&row, 0);
            }
            joined.y.push(labels.values[l]);
            joined.train_rows.push(global);
        }
    }
    for (place, slot) in other_rows.into_iter().enumerate() {
        if let Some((global, row)) = slot {
            joined.other.push_row_from(&row, 0);
            joined.other_rows.push(global);
            joined.other_places.push(place);
        }
    }
    let mut excluded = joined.train_rows.clone();
    excluded.extend(&joined.other_rows);
    excluded.sort_unstable();
    excluded.dedup();
    joined.excluded = excluded;
    Ok(joined)
}

/// Detects repeated pool ids with 8 bytes per candidate (sorted 64-bit hashes); a repeated hash
/// is confirmed against the real ids with one more pass, so a hash collision is never reported
/// as a duplicate.
fn find_duplicate_ids(pool: &dyn Pool, tile_rows: usize, hashes: Vec<u64>) -> Result<()> {
    let Some(mut repeated) = RepeatedIds::from_hashes(hashes) else {
        return Ok(());
    };
    let mut reader = pool.open()?;
    let mut tile = Tile::new(reader.kind());
    while reader.read_tile(tile_rows, &mut tile)? {
        for (r, id) in tile.ids.iter().enumerate() {
            if let Some(first) = repeated.earlier(id, tile.start + r) {
                return Err(Error::DuplicateId {
                    path: pool.name().to_path_buf(),
                    id: id.clone(),
                    where_: format!("rows {first} and {}", tile.start + r),
                });
            }
        }
    }
    Ok(())
}
