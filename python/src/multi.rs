//! The multi-objective forms of `select` and `simulate` (`objectives=`): the objectives,
//! acquisition, reference point and constraints checked by the library, labels per column from
//! a mapping or a labels CSV, and the Pareto batch or the simulation's curves back as arrays
//! named like the command line's columns.

use std::path::PathBuf;

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use poolrank::data::{
    read_label_columns, Features, IdList, MultiLabels, ObjectiveSpec, Objectives,
};
use poolrank::multi::{run_select_objectives, Constraint, MultiParams, ParetoAcquisition};
use poolrank::names::Named;
use poolrank::report;
use poolrank::sim::pareto::{
    load_multi_labeled_pool, pareto_verdict_table, simulate_objectives, MultiLabeledPool,
    ParetoSimConfig, ParetoSimResult,
};
use poolrank::sim::SimConfig;
use poolrank::SelectParams;

use crate::convert::View;
use crate::pool::ArrayPool;
use crate::{curves_dict, py_err, row_indices, to_py};

/// What `select` takes only with `objectives`, and the one-objective settings it refuses there.
pub(crate) struct MultiArgs<'a, 'py> {
    pub objectives: &'a Bound<'py, PyAny>,
    pub acq: &'a str,
    pub beta: f32,
    pub xi: f32,
    pub samples: Option<u32>,
    pub ref_point: Option<Vec<f64>>,
    pub constraints: Option<&'a Bound<'py, PyAny>>,
}

/// `select` with several objectives: `labeled_index` and the mapping `y` (or `None` and a
/// labels CSV path), the settings of `select` (its `acquisition` unused), and `args`. Returns
/// `(index, score, posterior)`, with `return_summary` also the summary.
#[allow(clippy::too_many_arguments)]
pub(crate) fn select<'py>(
    py: Python<'py>,
    view: View<'_>,
    labeled_index: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    select: SelectParams,
    args: MultiArgs<'_, 'py>,
    pending: IdList,
    return_summary: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let objectives = objectives_arg(args.objectives)?;
    if select.minimize {
        return Err(PyValueError::new_err(
            "minimize: with objectives each column carries its own direction \
             (\"dock:min\"); minimize=True is for one objective",
        ));
    }
    let acquisition: ParetoAcquisition = args.acq.parse().map_err(|_| {
        PyValueError::new_err(format!(
            "acq: {} scores one objective; with objectives use {}",
            args.acq,
            pareto_names()
        ))
    })?;
    if args.xi != 0.0 {
        return Err(PyValueError::new_err(
            "xi: not used with objectives (parego's expected improvement has no margin)",
        ));
    }
    if args.samples.is_some() {
        return Err(PyValueError::new_err(
            "samples: applies to thompson and qpo, not to objectives",
        ));
    }
    let params = MultiParams {
        select,
        objectives,
        acquisition,
        beta: args.beta,
        ref_point: args.ref_point,
        constraints: constraints_arg(args.constraints)?,
    };
    params.check().map_err(py_err)?;
    let columns = params.columns();
    let labels = if let Ok(path) = y.extract::<PathBuf>() {
        if !labeled_index.is_none() {
            return Err(PyValueError::new_err(
                "labeled_index: a labels file names its rows in its id column (pool row \
                 numbers); pass labeled_index=None with it",
            ));
        }
        py.detach(|| read_label_columns(&path, "id", &columns))
            .map_err(py_err)?
    } else {
        let ids = row_indices(py, "labeled_index", labeled_index, view.rows())?;
        labels_of_mapping(py, y, ids, &columns, params.objectives.len())?
    };
    let pool = ArrayPool::new(view);
    let selection = py
        .detach(|| run_select_objectives(&params, &pool, &labels, &pending))
        .map_err(py_err)?;
    let picks = &selection.picks;
    let index: Vec<i64> = picks.iter().map(|p| p.index as i64).collect();
    let score: Vec<f64> = picks.iter().map(|p| p.score).collect();
    let index = PyArray1::from_vec(py, index).into_any();
    let score = PyArray1::from_vec(py, score).into_any();
    // The command line's columns after `score`, in its order.
    let posterior = PyDict::new(py);
    if !params.constraints.is_empty() {
        let p: Vec<f64> = picks.iter().map(|p| p.p_feasible.unwrap_or(1.0)).collect();
        posterior.set_item("p_feasible", PyArray1::from_vec(py, p))?;
    }
    for (j, c) in selection.summary.columns.iter().enumerate() {
        let mean: Vec<f64> = picks.iter().map(|p| p.mean[j]).collect();
        let sd: Vec<f64> = picks.iter().map(|p| p.sd[j]).collect();
        posterior.set_item(format!("mean_{c}"), PyArray1::from_vec(py, mean))?;
        posterior.set_item(format!("sd_{c}"), PyArray1::from_vec(py, sd))?;
    }
    let posterior = posterior.into_any();
    if return_summary {
        let summary = to_py(py, &selection.summary)?;
        Ok((index, score, posterior, summary)
            .into_pyobject(py)?
            .into_any())
    } else {
        Ok((index, score, posterior).into_pyobject(py)?.into_any())
    }
}

/// `["dock:min", "qed:max"]` or `"dock:min,qed:max"`, checked: 2 or 3 objectives.
pub(crate) fn objectives_arg(value: &Bound<'_, PyAny>) -> PyResult<Objectives> {
    let text = match value.extract::<String>() {
        Ok(s) => s,
        Err(_) => value
            .extract::<Vec<String>>()
            .map_err(|_| {
                PyValueError::new_err(
                    "objectives: expected a list of \"NAME:min\"/\"NAME:max\" strings, or one \
                     string such as \"dock:min,qed:max\"",
                )
            })?
            .join(","),
    };
    let objectives: Objectives = text.parse().map_err(py_err)?;
    if objectives.len() < 2 {
        // The library's message names the command line's flag for one objective.
        return Err(PyValueError::new_err(format!(
            "objectives: {objectives} is one objective; a Pareto round needs 2 or 3 (for one, \
             pass its labels as y without objectives, and minimize=True for NAME:min)"
        )));
    }
    Ok(objectives)
}

/// `"qed>=0.5"` or a list of such strings.
fn constraints_arg(value: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Constraint>> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let texts = match value.extract::<String>() {
        Ok(s) => vec![s],
        Err(_) => value.extract::<Vec<String>>().map_err(|_| {
            PyValueError::new_err(
                "constraints: expected strings such as \"qed>=0.5\" or \"logp<=5\", or a list \
                 of them",
            )
        })?,
    };
    texts
        .iter()
        .map(|t| t.parse::<Constraint>().map_err(py_err))
        .collect()
}

/// What `simulate` takes only with `objectives`.
pub(crate) struct SimArgs<'a, 'py> {
    pub objectives: &'a Bound<'py, PyAny>,
    pub strategies: Option<Vec<String>>,
    pub beta: f32,
    pub ref_point: Option<Vec<f64>>,
    pub constraints: Option<&'a Bound<'py, PyAny>>,
}

/// `simulate` with several objectives on the pool `view`: `y` a mapping `{column: one value per
/// pool row}` or a labels CSV path (its `id` column holding pool rows), `sim` the protocol's
/// sizes, seed, model, batch mode, backend and pruning. With `out`, also writes the command's
/// files there, all or nothing. Returns `(summary, curves, table, acquired)`, `acquired`
/// mapping each strategy to replicate 0's labeled rows at the end.
pub(crate) fn simulate<'py>(
    py: Python<'py>,
    view: View<'_>,
    y: &Bound<'py, PyAny>,
    sim: SimConfig,
    args: SimArgs<'_, 'py>,
    out: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let objectives = objectives_arg(args.objectives)?;
    let mut cfg = ParetoSimConfig::new(objectives.clone());
    if let Some(names) = args.strategies {
        cfg.strategies = names
            .iter()
            .filter(|n| n.as_str() != "random")
            .map(|n| {
                n.parse::<ParetoAcquisition>().map_err(|_| {
                    PyValueError::new_err(format!(
                        "strategies: {n} scores one objective; with objectives use {}",
                        pareto_names()
                    ))
                })
            })
            .collect::<PyResult<_>>()?;
    }
    cfg.sim = sim;
    cfg.beta = args.beta;
    cfg.ref_point = args.ref_point;
    cfg.constraints = constraints_arg(args.constraints)?;
    let mut probe = MultiParams::new(objectives.clone());
    probe.constraints = cfg.constraints.clone();
    let columns = probe.columns();
    let rows = view.rows();
    let truth = match y.extract::<PathBuf>() {
        Ok(path) => Truth::File(path),
        Err(_) => {
            let mut values = Vec::with_capacity(columns.len());
            for (j, spec) in columns.iter().enumerate() {
                let role = match j < objectives.len() {
                    true => format!("objective {spec}"),
                    false => "a constraint".to_string(),
                };
                let column = column_of(py, y, spec, &role, (rows, "the pool"))?;
                if let Some(i) = column.iter().position(|v| !v.is_finite()) {
                    return Err(PyValueError::new_err(format!(
                        "y[{:?}][{i}] is {}: simulate reveals every candidate's true value, so \
                         every pool row needs a finite value of every objective and of every \
                         column a constraint names",
                        spec.column, column[i]
                    )));
                }
                values.push(column);
            }
            Truth::Values(values)
        }
    };
    let mut set = out
        .as_ref()
        .map(|dir| report::pareto_simulation_outputs(dir).check())
        .transpose()
        .map_err(py_err)?;
    let result = py
        .detach(move || -> poolrank::Result<ParetoSimResult> {
            let data = match truth {
                Truth::Values(values) => {
                    let mut features = Features::empty(view.kind());
                    view.rows_into(0, rows, &mut features)?;
                    MultiLabeledPool {
                        features,
                        ids: (0..rows).map(|i| i.to_string()).collect(),
                        values,
                        objectives: columns,
                    }
                }
                Truth::File(path) => {
                    let labels = read_label_columns(&path, "id", &columns)?;
                    load_multi_labeled_pool(&ArrayPool::new(view), &labels)?
                }
            };
            let result = simulate_objectives(&data, &cfg)?;
            if let (Some(dir), Some(mut set)) = (&out, set.take()) {
                report::write_pareto_simulation(&mut set, dir, &result)?;
                set.commit()?;
            }
            Ok(result)
        })
        .map_err(py_err)?;
    let summary = to_py(py, &result)?;
    let curves = curves_dict(py, &result.curves)?;
    let acquired = PyDict::new(py);
    for (name, rows) in result.strategies.iter().zip(&result.acquired) {
        let rows: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        acquired.set_item(name, PyArray1::from_vec(py, rows))?;
    }
    let table = pareto_verdict_table(&result);
    Ok((summary, curves, table, acquired)
        .into_pyobject(py)?
        .into_any())
}

/// Where `simulate`'s true values come from: `y` as arrays (one per column), or a labels CSV.
enum Truth {
    Values(Vec<Vec<f64>>),
    File(PathBuf),
}

fn pareto_names() -> String {
    ParetoAcquisition::TABLE
        .iter()
        .map(|(_, n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `y[spec.column]` as `n` floats (NaN where `None`), `role` naming why the column is needed.
pub(crate) fn column_of(
    py: Python<'_>,
    y: &Bound<'_, PyAny>,
    spec: &ObjectiveSpec,
    role: &str,
    (n, rows_of): (usize, &str),
) -> PyResult<Vec<f64>> {
    if !y.hasattr("keys")? {
        return Err(PyValueError::new_err(
            "y: with objectives, expected a mapping {column: values} (or a labels CSV path)",
        ));
    }
    let col = &spec.column;
    let given = y.get_item(col).map_err(|_| {
        let keys: Vec<String> = y
            .call_method0("keys")
            .and_then(|k| k.try_iter()?.map(|k| k?.str()?.extract()).collect())
            .unwrap_or_default();
        PyValueError::new_err(format!(
            "y has no column {col:?} (needed by {role}); it has {keys:?}"
        ))
    })?;
    let arr = py
        .import("numpy")?
        .call_method1("asarray", (given, "float64"))
        .map_err(|e| {
            PyValueError::new_err(format!(
                "y[{col:?}]: expected numbers, NaN or None where missing ({e})"
            ))
        })?;
    let arr: PyReadonlyArray1<f64> = arr.extract().map_err(|_| {
        PyValueError::new_err(format!("y[{col:?}]: expected a 1-D array of numbers"))
    })?;
    let arr = arr.as_array();
    if arr.len() != n {
        return Err(PyValueError::new_err(format!(
            "y[{col:?}] has {} values but {rows_of} has {n} rows",
            arr.len()
        )));
    }
    Ok(arr.to_vec())
}

/// Labels of `columns` (the first `m` the objectives) from the mapping `y` (`y[column]`: one
/// value per row of `ids`, NaN or `None` where that column is missing for the row).
fn labels_of_mapping(
    py: Python<'_>,
    y: &Bound<'_, PyAny>,
    ids: Vec<usize>,
    columns: &[ObjectiveSpec],
    m: usize,
) -> PyResult<MultiLabels> {
    if !y.hasattr("keys")? {
        return Err(PyValueError::new_err(
            "y: with objectives, expected a mapping {column: values aligned with \
             labeled_index} (NaN or None where a value is missing), or a labels CSV path",
        ));
    }
    let n = ids.len();
    let mut values = Vec::with_capacity(columns.len());
    for (j, spec) in columns.iter().enumerate() {
        let role = if j < m {
            format!("objective {spec}")
        } else {
            "a constraint".to_string()
        };
        let given = column_of(py, y, spec, &role, (n, "labeled_index"))?;
        let mut column = Vec::with_capacity(n);
        for (i, &v) in given.iter().enumerate() {
            if v.is_nan() {
                column.push(None);
            } else if v.is_finite() {
                column.push(Some(v));
            } else {
                return Err(PyValueError::new_err(format!(
                    "y[{:?}][{i}] is {v}: a label is a finite number, or NaN or None where \
                     missing",
                    spec.column
                )));
            }
        }
        values.push(column);
    }
    if let Some(i) = (0..n).find(|&i| values.iter().all(|c| c[i].is_none())) {
        return Err(PyValueError::new_err(format!(
            "y: row {i} (pool row {}) has no value in any column; leave it out of \
             labeled_index, or pass it as pending_index",
            ids[i]
        )));
    }
    Ok(MultiLabels {
        source: "<labeled_index, y>".into(),
        objectives: columns.to_vec(),
        lines: (1..=n).collect(),
        ids: ids.iter().map(usize::to_string).collect(),
        values,
    })
}
