//! `score_shard` and `merge`: the sharded run of the command line (`poolrank::shard`), for
//! Python workers and drivers (Ray tasks, notebooks). Both release the GIL.

use std::path::PathBuf;

use numpy::PyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use poolrank::pool::FilePool;
use poolrank::shard::{self, ShardCheck, TaskSource};
use poolrank::SelectParams;

use crate::{acquisition_arg, backend_choice, mode_arg, named, py_err, to_py};

/// Writes a shard list to `out`: each shard's rows (counted in parallel), in the order given,
/// paths relative to the list's folder when they lie under it. Returns the number of shards.
#[pyfunction]
#[pyo3(signature = (shards, out, pool_format=None, id_col="id", smiles_col="smiles"))]
pub(crate) fn shard_list(
    py: Python<'_>,
    shards: Vec<PathBuf>,
    out: PathBuf,
    pool_format: Option<&str>,
    id_col: &str,
    smiles_col: &str,
) -> PyResult<usize> {
    let like = reading(pool_format, id_col, smiles_col)?;
    py.detach(|| shard::write_shard_list(&shards, &like, &out))
        .map_err(py_err)
}

/// The reading options of every shard.
fn reading(pool_format: Option<&str>, id_col: &str, smiles_col: &str) -> PyResult<FilePool> {
    let mut like = FilePool::new("");
    like.format = pool_format.map(|f| named("pool_format", f)).transpose()?;
    like.id_col = id_col.to_string();
    like.smiles_col = smiles_col.to_string();
    Ok(like)
}

/// A worker's scorer: the saved model read once and the backend opened once (a GPU worker
/// keeps its device), then `score` for any number of tasks. `poolrank.score_shard` is one
/// call of it.
#[pyclass(name = "ShardScorer", module = "poolrank")]
pub(crate) struct PyShardScorer(shard::ShardScorer);

#[pymethods]
impl PyShardScorer {
    #[new]
    #[pyo3(signature = (model, backend="auto"))]
    fn new(py: Python<'_>, model: PathBuf, backend: &str) -> PyResult<Self> {
        let choice = backend_choice(backend)?;
        py.detach(|| shard::ShardScorer::open(&model, choice))
            .map(PyShardScorer)
            .map_err(py_err)
    }

    /// What the backend is.
    #[getter]
    fn backend(&self) -> &str {
        self.0.backend()
    }

    /// Scores one task's shards and writes its part to `out` (`{index}` in it stands for the
    /// task's index): task `index` of `shard_list` (tasks of `per_task` shards), or the files
    /// `pool` whose first row is global row `row_offset`. The settings are `select`'s; `k` is
    /// the batch the merge will pick; `floor`, the k-th best `(score, row)` of parts already
    /// scored, lets the task skip what cannot beat it. `threads` runs the task on that many
    /// threads of its own (a worker process given N CPUs per task), instead of the process's
    /// pool. Returns the part's meta as a dict.
    #[pyo3(signature = (
        out, k, shard_list=None, index=None, per_task=1, pool=None, row_offset=0,
        acq="ucb", beta=2.0, xi=0.0, seed=0, round=0, pending=None, batch_mode="topk",
        shortlist=None, max_sim=None, prune=true, tile_rows=65_536,
        pool_format=None, id_col="id", smiles_col="smiles", floor=None, samples=None,
        threads=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn score<'py>(
        &self,
        py: Python<'py>,
        out: PathBuf,
        k: usize,
        shard_list: Option<PathBuf>,
        index: Option<usize>,
        per_task: usize,
        pool: Option<Vec<PathBuf>>,
        row_offset: usize,
        acq: &str,
        beta: f32,
        xi: f32,
        seed: u64,
        round: u32,
        pending: Option<PathBuf>,
        batch_mode: &str,
        shortlist: Option<usize>,
        max_sim: Option<f64>,
        prune: bool,
        tile_rows: usize,
        pool_format: Option<&str>,
        id_col: &str,
        smiles_col: &str,
        floor: Option<(f32, usize)>,
        samples: Option<u32>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let source = match (shard_list, pool) {
            (Some(list), None) => TaskSource::List {
                list,
                index: index
                    .ok_or_else(|| PyValueError::new_err("shard_list needs the task's index"))?,
                per_task,
            },
            (None, Some(paths)) => TaskSource::Files { paths, row_offset },
            _ => {
                return Err(PyValueError::new_err(
                    "give either shard_list (with index) or pool (a list of shard files)",
                ))
            }
        };
        let params = SelectParams {
            acquisition: acquisition_arg(acq, beta, xi, samples)?,
            mode: mode_arg(batch_mode)?,
            shortlist,
            max_sim,
            seed,
            round,
            tile_rows,
            prune,
            ..SelectParams::default()
        }
        .check()
        .map_err(py_err)?;
        let like = reading(pool_format, id_col, smiles_col)?;
        let pending = pending.as_deref();
        let run = || {
            self.0
                .score_files(&params, &source, &like, pending, k, &out, floor)
        };
        let (part, _) = match threads {
            None => py.detach(run),
            Some(0) => return Err(PyValueError::new_err("threads: must be at least 1")),
            Some(n) => {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| PyValueError::new_err(format!("threads: {e}")))?;
                py.detach(|| pool.install(run))
            }
        }
        .map_err(py_err)?;
        to_py(py, &part.meta)
    }
}

/// Merges the parts (paths, or patterns with `*` and `?` in the file name) into the best `k`:
/// the batch `select` picks on the whole pool. Returns `(batch, summary)`: the batch as
/// columns (`rank`, `index`, `score`, `mean`, `sd` as NumPy arrays, `id` a list) and the
/// summary as a dict; with `out` (and `summary`), also writes the batch CSV (and the JSON).
/// `shards` is `"stat"` (size and time), `"verify"` (checksums) or `"skip"`.
#[pyfunction]
#[pyo3(signature = (parts, k, out=None, summary=None, shard_list=None, model=None, shards="stat"))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn merge<'py>(
    py: Python<'py>,
    parts: Vec<PathBuf>,
    k: usize,
    out: Option<PathBuf>,
    summary: Option<PathBuf>,
    shard_list: Option<PathBuf>,
    model: Option<PathBuf>,
    shards: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let check = shard_check(shards)?;
    let merged = py
        .detach(|| {
            shard::merge_files(
                &parts,
                k,
                shard_list.as_deref(),
                model.as_deref(),
                check,
                out.as_deref(),
                summary.as_deref(),
            )
        })
        .map_err(py_err)?;
    let p = &merged.picks;
    let batch = pyo3::types::PyDict::new(py);
    batch.set_item(
        "rank",
        PyArray1::from_vec(py, p.iter().map(|p| p.rank as i64).collect()),
    )?;
    batch.set_item("id", p.iter().map(|p| p.id.as_str()).collect::<Vec<_>>())?;
    batch.set_item(
        "index",
        PyArray1::from_vec(py, p.iter().map(|p| p.index as i64).collect()),
    )?;
    batch.set_item(
        "score",
        PyArray1::from_vec(py, p.iter().map(|p| f64::from(p.score)).collect()),
    )?;
    batch.set_item(
        "mean",
        PyArray1::from_vec(py, p.iter().map(|p| p.mean).collect()),
    )?;
    batch.set_item(
        "sd",
        PyArray1::from_vec(py, p.iter().map(|p| p.sd).collect()),
    )?;
    Ok((batch, to_py(py, &merged.summary)?)
        .into_pyobject(py)?
        .into_any())
}

/// Merges some of a run's parts (as [`merge`] takes them) into the part `out`, which holds
/// their tasks and merges with the run's other parts to the same batch: a merge in stages.
/// Returns the part's meta as a dict.
#[pyfunction]
#[pyo3(signature = (parts, k, out, shard_list=None, model=None, shards="stat"))]
pub(crate) fn merge_to_part<'py>(
    py: Python<'py>,
    parts: Vec<PathBuf>,
    k: usize,
    out: PathBuf,
    shard_list: Option<PathBuf>,
    model: Option<PathBuf>,
    shards: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let check = shard_check(shards)?;
    let part = py
        .detach(|| {
            shard::merge_files_to_part(
                &parts,
                k,
                shard_list.as_deref(),
                model.as_deref(),
                check,
                &out,
            )
        })
        .map_err(py_err)?;
    to_py(py, &part.meta)
}

/// `shards=` of the merges.
fn shard_check(shards: &str) -> PyResult<ShardCheck> {
    match shards {
        "stat" => Ok(ShardCheck::Stat),
        "verify" => Ok(ShardCheck::Verify),
        "skip" => Ok(ShardCheck::Skip),
        other => Err(PyValueError::new_err(format!(
            "shards: expected \"stat\", \"verify\" or \"skip\", got {other:?}"
        ))),
    }
}
