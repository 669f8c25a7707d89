//! `poolrank._native`: the Python binding of the poolrank engine. A thin layer: it turns NumPy
//! arrays into the engine's feature blocks, calls the library with the GIL released, and turns
//! the results and errors back into Python objects. Everything it computes, the library computes
//! for the command line too.

mod convert;
mod multi;
mod pool;
mod shard;

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use poolrank::backend::{Backend, BackendChoice, GpuOptions, Scorer};
use poolrank::data::{Features, IdList, Labels, Pool, Tile};
use poolrank::gp::{fit, CpuGram, FittedGp, ModelSpec};
use poolrank::model::{FittedModel, ModelOrigin};
use poolrank::names::UnknownName;
use poolrank::pool::FilePool;
use poolrank::{Acquisition, BatchMode, BatchSize, KernelKind, SelectParams};

use convert::{features_to_py, Input, View};
use pool::ArrayPool;

create_exception!(
    poolrank,
    DeviceError,
    PyRuntimeError,
    "A GPU problem: no adapter fits, a device limit is exceeded, or wgpu reported a failure."
);

/// The engine's error as the Python exception a caller expects: `DeviceError` for GPU problems,
/// `OSError` for files, `ValueError` for bad input.
pub(crate) fn py_err(e: poolrank::Error) -> PyErr {
    use poolrank::Error as E;
    let msg = e.to_string();
    match e {
        E::NoAdapter { .. } | E::Gpu { .. } | E::LimitExceeded { .. } => DeviceError::new_err(msg),
        E::Io { .. } => PyOSError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

/// `value` of the enum `T` by its name in the library's table; the error names the argument.
fn named<T: std::str::FromStr<Err = UnknownName>>(arg: &str, value: &str) -> PyResult<T> {
    value
        .parse()
        .map_err(|e: UnknownName| PyValueError::new_err(format!("{arg}: {e}")))
}

fn backend_choice(name: &str) -> PyResult<BackendChoice> {
    named("backend", name)
}

fn kernel_kind(name: Option<&str>) -> PyResult<Option<KernelKind>> {
    name.map(|n| named("kernel", n)).transpose()
}

/// `y` as a 1-D float64 array of `n` finite values.
fn labels(py: Python<'_>, y: &Bound<'_, PyAny>, n: usize) -> PyResult<Vec<f64>> {
    let np = py.import("numpy")?;
    let arr = np.call_method1("asarray", (y, "float64")).map_err(|e| {
        PyValueError::new_err(format!("y: expected numbers convertible to float64 ({e})"))
    })?;
    let arr: PyReadonlyArray1<f64> = arr
        .extract()
        .map_err(|_| PyValueError::new_err("y: expected a 1-D array of numbers"))?;
    let y = arr.as_array();
    if y.len() != n {
        return Err(PyValueError::new_err(format!(
            "y has {} values but X has {n} rows",
            y.len()
        )));
    }
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(PyValueError::new_err(format!(
            "y[{i}] is {}: labels must be finite numbers",
            y[i]
        )));
    }
    Ok(y.to_vec())
}

/// A JSON-serialisable value as the Python object `json.loads` makes of it.
fn to_py<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| PyRuntimeError::new_err(format!("serialising a result: {e}")))?;
    py.import("json")?.call_method1("loads", (text,))
}

/// The model a caller asks for: a kernel, the hyperparameters to hold fixed, and exact or
/// inducing points (default: exact up to 5,000 labels, 2,000 inducing points above).
fn model_spec(
    kernel: Option<&str>,
    noise: Option<f64>,
    signal_var: Option<f64>,
    lengthscale: Option<f64>,
    inducing: Option<usize>,
    exact: bool,
) -> PyResult<ModelSpec> {
    if exact && inducing.is_some() {
        return Err(PyValueError::new_err(
            "exact=True cannot be combined with inducing (one asks for the exact GP, the other \
             for inducing points)",
        ));
    }
    Ok(ModelSpec {
        kernel: kernel_kind(kernel)?,
        noise,
        signal_var,
        lengthscale,
        inducing,
        exact,
    })
}

fn acquisition_arg(name: &str, beta: f32, xi: f32, samples: Option<u32>) -> PyResult<Acquisition> {
    let acq = Acquisition::from_name(name, beta, xi).ok_or_else(|| {
        PyValueError::new_err(format!(
            "acq: expected one of {}, got {name:?}",
            Acquisition::names().join(", ")
        ))
    })?;
    Ok(acq.with_samples(samples))
}

/// In-memory labels for the engine: row ids and values, the position (from 1) naming each.
fn labels_of(ids: Vec<usize>, values: Vec<f64>) -> Labels {
    Labels {
        source: "<labeled_index, y>".into(),
        lines: (1..=ids.len()).collect(),
        ids: ids.iter().map(usize::to_string).collect(),
        values,
    }
}

/// A Gaussian process on fingerprints or features, fitted by the poolrank engine.
///
/// `kernel`: `tanimoto`, `minmax`, `rbf` or `matern52` (default: the one for the features:
/// `tanimoto` on bits, `minmax` on counts, `rbf` on dense features). `noise`, `signal_var` and
/// `lengthscale` fix those hyperparameters (in standardised label units); the others are fitted
/// by maximising the log marginal likelihood. Up to 5,000 labels the GP is exact; above, a
/// sparse GP (VFE) on 2,000 inducing points chosen from the labels. `inducing=M` asks for M
/// inducing points at any size, `exact=True` refuses the switch; `fit_info` says which was used.
#[pyclass(name = "GP", module = "poolrank")]
struct Gp {
    spec: ModelSpec,
    fitted: Option<FittedModel>,
}

impl Gp {
    fn fitted(&self) -> PyResult<&FittedGp> {
        Ok(self.model()?.gp())
    }

    fn model(&self) -> PyResult<&FittedModel> {
        self.fitted
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("this GP is not fitted yet: call fit(X, y)"))
    }
}

impl Gp {
    /// A GP holding a loaded model; a later `fit` uses its kernel and its exact or sparse choice
    /// and fits the hyperparameters afresh.
    fn from_model(model: FittedModel) -> Self {
        let gp = model.gp();
        let spec = ModelSpec {
            kernel: Some(gp.kernel.kind),
            noise: None,
            signal_var: None,
            lengthscale: None,
            inducing: gp.info.sparse.as_ref().map(|s| s.requested),
            exact: gp.info.sparse.is_none(),
        };
        Gp {
            spec,
            fitted: Some(model),
        }
    }
}

#[pymethods]
impl Gp {
    #[new]
    #[pyo3(signature = (
        kernel=None, noise=None, signal_var=None, lengthscale=None, inducing=None, exact=false
    ))]
    fn new(
        kernel: Option<&str>,
        noise: Option<f64>,
        signal_var: Option<f64>,
        lengthscale: Option<f64>,
        inducing: Option<usize>,
        exact: bool,
    ) -> PyResult<Self> {
        let spec = model_spec(kernel, noise, signal_var, lengthscale, inducing, exact)?;
        Ok(Gp { spec, fitted: None })
    }

    /// Fits the model to `X` (packed bits as `numpy.packbits` makes them, a boolean bit matrix,
    /// integer counts dense or `scipy.sparse`, or float features) and labels `y` (larger is
    /// better is not assumed: the model fits `y` as it is). `features` forces how `X` is read:
    /// `"bits"`, `"counts"` or `"dense"`. Returns the GP.
    #[pyo3(signature = (x, y, features=None))]
    fn fit<'py>(
        mut slf: PyRefMut<'py, Self>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        features: Option<&str>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let py = x.py();
        let input = Input::parse(x, features)?;
        let y = labels(py, y, input.rows())?;
        let view = input.view();
        let spec = slf.spec.clone();
        let fitted = py.detach(move || -> poolrank::Result<FittedModel> {
            let mut train = Features::empty(view.kind());
            view.rows_into(0, view.rows(), &mut train)?;
            let params = spec.check(train.kind())?;
            let gp = fit(&params, &train, &y)?;
            // An array's ids are its row numbers, as `select` on arrays reads them.
            let origin = ModelOrigin {
                provenance: None,
                minimize: false,
                labeled_ids: (0..y.len()).map(|i| i.to_string()).collect(),
                label_values: y,
            };
            FittedModel::new(gp, origin)
        });
        slf.fitted = Some(fitted.map_err(py_err)?);
        Ok(slf)
    }

    /// Predictive mean (and with `return_std` the latent standard deviation, noise excluded)
    /// in label units for every row of `X` (a model fitted by `poolrank fit --minimize`
    /// predicts its labels, not their negation), scored by `backend` (`auto`, `cpu` or `gpu`) in
    /// tiles of `batch_size` rows (default 65,536): memory stays bounded by the tile.
    #[pyo3(signature = (x, return_std=false, backend="auto", batch_size=None, features=None))]
    fn predict<'py>(
        &self,
        x: &Bound<'py, PyAny>,
        return_std: bool,
        backend: &str,
        batch_size: Option<usize>,
        features: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = x.py();
        let model = self.model()?;
        let (gp, sign) = (model.gp(), model.sign());
        let choice = backend_choice(backend)?;
        let tile = batch_size.unwrap_or(65_536);
        if tile == 0 {
            return Err(PyValueError::new_err("batch_size must be at least 1"));
        }
        let input = Input::parse(x, features)?;
        let view = input.view();
        let rows = view.rows();
        let result = py.detach(move || -> poolrank::Result<(Vec<f64>, Vec<f64>)> {
            let backend = Backend::new(choice, &GpuOptions::default())?;
            let scorer = backend.prepare(gp)?;
            let (mut mean, mut sd) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
            let mut block = Features::empty(view.kind());
            let (mut m, mut v) = (Vec::new(), Vec::new());
            for start in (0..rows).step_by(tile) {
                let end = (start + tile).min(rows);
                view.rows_into(start, end, &mut block)?;
                m.resize(end - start, 0.0);
                v.resize(end - start, 0.0);
                scorer.posterior_into(&block, &mut m, &mut v)?;
                mean.extend(m.iter().map(|&x| sign * gp.mean_to_labels(f64::from(x))));
                sd.extend(v.iter().map(|&x| gp.sd_to_labels(f64::from(x))));
            }
            Ok((mean, sd))
        });
        let (mean, sd) = result.map_err(py_err)?;
        let mean = PyArray1::from_vec(py, mean).into_any();
        if return_std {
            let sd = PyArray1::from_vec(py, sd).into_any();
            Ok((mean, sd).into_pyobject(py)?.into_any())
        } else {
            Ok(mean)
        }
    }

    /// Writes the fitted model to `path` in poolrank's model file format (the one
    /// `poolrank fit --save-model` writes and `poolrank select --model` reads), all or nothing.
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        let model = self.model()?;
        py.detach(|| model.save(&path)).map_err(py_err)
    }

    /// Reads a model file written by `GP.save` or `poolrank fit --save-model`.
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let model = py.detach(|| FittedModel::load(&path)).map_err(py_err)?;
        Ok(Gp::from_model(model))
    }

    /// Pickling: the settings, and the model in the model file format when fitted.
    fn __getstate__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = &self.spec;
        let bytes = self
            .fitted
            .as_ref()
            .map(|m| pyo3::types::PyBytes::new(py, &m.to_bytes()));
        (
            s.kernel.map(KernelKind::name),
            s.noise,
            s.signal_var,
            s.lengthscale,
            s.inducing,
            s.exact,
            bytes,
        )
            .into_pyobject(py)
            .map(|t| t.into_any())
    }

    #[allow(clippy::type_complexity)]
    fn __setstate__(
        &mut self,
        state: (
            Option<String>,
            Option<f64>,
            Option<f64>,
            Option<f64>,
            Option<usize>,
            bool,
            Option<Vec<u8>>,
        ),
    ) -> PyResult<()> {
        let (kernel, noise, signal_var, lengthscale, inducing, exact, bytes) = state;
        self.spec = model_spec(
            kernel.as_deref(),
            noise,
            signal_var,
            lengthscale,
            inducing,
            exact,
        )?;
        self.fitted = bytes
            .map(|b| FittedModel::from_bytes(&b, std::path::Path::new("pickled GP")))
            .transpose()
            .map_err(py_err)?;
        Ok(())
    }

    /// The kernel's name.
    #[getter]
    fn kernel(&self) -> PyResult<&'static str> {
        Ok(match &self.fitted {
            Some(m) => m.gp().kernel.kind.name(),
            None => self.spec.kernel.map_or("default", KernelKind::name),
        })
    }

    /// Noise variance (standardised units), fitted or fixed.
    #[getter]
    fn noise(&self) -> PyResult<f64> {
        Ok(self.fitted()?.noise)
    }

    /// Signal variance (standardised units), fitted or fixed.
    #[getter]
    fn signal_var(&self) -> PyResult<f64> {
        Ok(self.fitted()?.signal_var)
    }

    /// Lengthscale of `rbf`/`matern52`; `None` for the fingerprint kernels.
    #[getter]
    fn lengthscale(&self) -> PyResult<Option<f64>> {
        Ok(self.fitted()?.lengthscale())
    }

    /// Number of labeled points the model holds (for a sparse fit, its inducing points).
    #[getter]
    fn n_train(&self) -> PyResult<usize> {
        Ok(self.fitted()?.n_train())
    }

    /// What the fit did: jitter, log marginal likelihood, evaluations, seconds.
    #[getter]
    fn fit_info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.fitted()?.info)
    }

    fn __repr__(&self) -> String {
        match self.fitted.as_ref().map(FittedModel::gp) {
            Some(gp) => format!(
                "GP(kernel={:?}, noise={:.4}, signal_var={:.4}, n_train={})",
                gp.kernel.kind.name(),
                gp.noise,
                gp.signal_var,
                gp.n_train()
            ),
            None => format!("GP(kernel={:?}, unfitted)", self.kernel().unwrap_or("?")),
        }
    }
}

/// One GP per objective, each fitted on the rows of `X` that have a value of its column, as
/// `select(objectives=...)` fits them: `y` maps each column to one value per row of `X` (NaN or
/// `None` where missing), `objectives` names 2 or 3 columns with their directions
/// (`["dock:min", "qed:max"]`); a `NAME:min` model is fitted to the negated labels and predicts
/// in label units, as `poolrank fit --minimize` does. The model settings are `GP`'s. Returns
/// `{column: GP}` in the objectives' order.
#[pyfunction]
#[pyo3(signature = (
    x, y, objectives, kernel=None, noise=None, signal_var=None, lengthscale=None, inducing=None,
    exact=false, features=None
))]
#[allow(clippy::too_many_arguments)]
fn fit_objectives<'py>(
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    objectives: &Bound<'py, PyAny>,
    kernel: Option<&str>,
    noise: Option<f64>,
    signal_var: Option<f64>,
    lengthscale: Option<f64>,
    inducing: Option<usize>,
    exact: bool,
    features: Option<&str>,
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    let py = x.py();
    let objectives = multi::objectives_arg(objectives)?;
    let spec = model_spec(kernel, noise, signal_var, lengthscale, inducing, exact)?;
    let input = Input::parse(x, features)?;
    let rows = input.rows();
    let mut columns = Vec::with_capacity(objectives.len());
    for o in objectives.iter() {
        let column = multi::column_of(py, y, o, &format!("objective {o}"), (rows, "X"))?;
        if let Some(i) = column.iter().position(|v| v.is_infinite()) {
            return Err(PyValueError::new_err(format!(
                "y[{:?}][{i}] is {}: a label is a finite number, or NaN or None where missing",
                o.column, column[i]
            )));
        }
        columns.push(column);
    }
    let view = input.view();
    let names: Vec<String> = objectives.iter().map(|o| o.column.clone()).collect();
    let mut params = poolrank::multi::MultiParams::new(objectives.clone());
    params.select.model = spec.clone();
    let labels = poolrank::data::MultiLabels {
        source: "<X, y>".into(),
        objectives: objectives.to_vec(),
        ids: (0..rows).map(|i| i.to_string()).collect(),
        values: columns
            .iter()
            .map(|c| c.iter().map(|&v| (!v.is_nan()).then_some(v)).collect())
            .collect(),
        lines: Vec::new(),
    };
    let fitted = py.detach(move || -> poolrank::Result<Vec<FittedModel>> {
        let mut train = Features::empty(view.kind());
        view.rows_into(0, rows, &mut train)?;
        // `select`'s own fits: each objective on the rows labeled for it, negated for `:min`.
        let heads = poolrank::multi::fit_heads(&params, &train, &labels, &CpuGram)?;
        heads
            .into_iter()
            .zip(objectives.iter().zip(&labels.values))
            .map(|(head, (o, values))| {
                let origin = ModelOrigin {
                    provenance: None,
                    minimize: o.minimize,
                    labeled_ids: head.rows.iter().map(usize::to_string).collect(),
                    label_values: head.rows.iter().filter_map(|&r| values[r]).collect(),
                };
                FittedModel::new(head.gp, origin)
            })
            .collect()
    });
    let out = pyo3::types::PyDict::new(py);
    for (name, model) in names.iter().zip(fitted.map_err(py_err)?) {
        let gp = Gp {
            spec: spec.clone(),
            fitted: Some(model),
        };
        out.set_item(name, Py::new(py, gp)?)?;
    }
    Ok(out)
}

/// Every adapter wgpu sees and the one `backend="auto"` would take, as a dict.
#[pyfunction]
fn devices(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let list = py.detach(|| poolrank::backend::gpu::list_adapters(&GpuOptions::default()));
    to_py(py, &list)
}

/// A pool file read tile by tile: iterate to get `(ids, X)` blocks of at most `batch_size`
/// rows, where `X` is what `GP.fit`/`GP.predict` take (packed bits, a `scipy.sparse` CSR
/// matrix of counts, or float32 features).
#[pyclass(module = "poolrank")]
struct PoolFile {
    reader: std::sync::Mutex<Box<dyn poolrank::data::PoolReader>>,
    tile: usize,
}

#[pymethods]
impl PoolFile {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let tile = self.tile;
        let read = py.detach(|| {
            let mut reader = self.reader.lock().unwrap_or_else(|p| p.into_inner());
            let mut t = Tile::new(reader.kind());
            reader.read_tile(tile, &mut t).map(|more| more.then_some(t))
        });
        match read.map_err(py_err)? {
            None => Ok(None),
            Some(t) => {
                let x = features_to_py(py, &t.features)?;
                Ok(Some((t.ids, x).into_pyobject(py)?.into_any()))
            }
        }
    }
}

/// Opens a pool file (FPS, packed `.npy`, count `.npz`/`.npy`, dense `.npy`/`.csv`; the
/// format from the extension) for streaming; `ids` names a file of row ids for array formats.
#[pyfunction]
#[pyo3(signature = (path, ids=None, batch_size=65_536))]
fn open_pool(
    path: std::path::PathBuf,
    ids: Option<std::path::PathBuf>,
    batch_size: usize,
) -> PyResult<PoolFile> {
    if batch_size == 0 {
        return Err(PyValueError::new_err("batch_size must be at least 1"));
    }
    let mut spec = FilePool::new(path);
    spec.ids = ids;
    let reader = spec.open_owned().map_err(py_err)?;
    Ok(PoolFile {
        reader: std::sync::Mutex::new(reader),
        tile: batch_size,
    })
}

/// Reads a whole pool file into memory: `(ids, X)`.
#[pyfunction]
#[pyo3(signature = (path, ids=None))]
fn read_pool<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    ids: Option<std::path::PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut spec = FilePool::new(path);
    spec.ids = ids;
    let (all_ids, all) = py
        .detach(move || -> poolrank::Result<(Vec<String>, Features)> {
            let mut reader = spec.open()?;
            let mut tile = Tile::new(reader.kind());
            let mut all = Features::empty(reader.kind());
            let mut all_ids = Vec::new();
            while reader.read_tile(65_536, &mut tile)? {
                for i in 0..tile.len() {
                    all.push_row_from(&tile.features, i);
                }
                all_ids.append(&mut tile.ids);
            }
            Ok((all_ids, all))
        })
        .map_err(py_err)?;
    let x = features_to_py(py, &all)?;
    Ok((all_ids, x).into_pyobject(py)?.into_any())
}

/// Row indices, checked against the pool's `rows` (in range, none twice).
fn row_indices(
    py: Python<'_>,
    what: &str,
    index: &Bound<'_, PyAny>,
    rows: usize,
) -> PyResult<Vec<usize>> {
    let np = py.import("numpy")?;
    let arr = np.call_method1("asarray", (index,))?;
    let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    let ndim: usize = arr.getattr("ndim")?.extract()?;
    let size: usize = arr.getattr("size")?.extract()?;
    if ndim != 1 || !(matches!(kind.as_str(), "i" | "u") || size == 0) {
        return Err(PyValueError::new_err(format!(
            "{what}: expected a 1-D array of integer row indices"
        )));
    }
    let arr = np.call_method1("asarray", (arr, "int64"))?;
    let arr: PyReadonlyArray1<i64> = arr.extract()?;
    let mut seen = std::collections::HashSet::new();
    arr.as_array()
        .iter()
        .map(|&i| {
            if i < 0 || i as usize >= rows {
                return Err(PyValueError::new_err(format!(
                    "{what}: row {i} is outside the pool's {rows} rows"
                )));
            }
            if !seen.insert(i) {
                return Err(PyValueError::new_err(format!(
                    "{what}: row {i} appears twice"
                )));
            }
            Ok(i as usize)
        })
        .collect()
}

/// Chooses the next batch from `pool` given the labeled rows `labeled_index` with labels `y`,
/// exactly as `poolrank select` does on the same data (same seed ⇒ same batch): fits the GP
/// (hyperparameters not given are fitted), scores every other row with `acq` (default `ucb`)
/// on `backend`, and picks `batch` of them (a count, or a fraction of the pool when a float
/// below 1). Returns `(indices, scores)`, best first; with `return_summary=True` also the run's
/// summary (the JSON `select --summary` writes) as a dict. `prune=False` computes every
/// candidate's variance (brute force; the same batch). `round` numbers the campaign's round
/// (it seeds what is drawn per round).
///
/// With `objectives` (2 or 3 label columns with their directions, `["dock:min", "qed:max"]`
/// or `"dock:min,qed:max"`) it picks a Pareto batch as `poolrank select --objectives` does:
/// one GP per column, `acq` one of `ehvi` (default), `phvi`, `pareto-ucb` (UCB weight `beta`)
/// or `parego`. `y` is then a mapping `{column: values}` aligned with `labeled_index`, NaN or
/// `None` where a row lacks that column (a dict of arrays, or a pandas DataFrame), or the path
/// of a labels CSV whose `id` column holds pool row numbers, with `labeled_index=None`.
/// `ref_point` (one value per objective, in label units; `ehvi`/`phvi`) replaces the reference
/// point taken from the labels; `constraints` (`"qed>=0.5"`, `"logp<=5"`, or a list) weigh the
/// scores by each candidate's probability of meeting them, and `y` must hold the columns they
/// name. Returns `(indices, scores, posterior)`: `posterior` maps `mean_<column>` and
/// `sd_<column>` (each column's posterior mean and latent standard deviation, in label units)
/// and, with constraints, `p_feasible` to arrays aligned with the picks; with
/// `return_summary=True` also the summary. `pareto-ucb`'s score is the pick's non-dominated
/// layer (1 the first). Batches are top-k; `minimize`, `xi` and `samples` are refused.
#[pyfunction]
#[pyo3(signature = (
    pool, labeled_index, y, acq=None, batch=None, minimize=false, seed=0, backend="auto",
    kernel=None, noise=None, signal_var=None, lengthscale=None, inducing=None, exact=false,
    batch_mode="topk", max_sim=None, pending_index=None, features=None, beta=2.0, xi=0.0,
    return_summary=false, prune=true, shortlist=None, samples=None, temperature=0.1,
    power=1.0, joint_sampler="shortlist", prior_features=1024, objectives=None,
    ref_point=None, constraints=None, round=0
))]
#[allow(clippy::too_many_arguments)]
fn select<'py>(
    pool: &Bound<'py, PyAny>,
    labeled_index: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    acq: Option<&str>,
    batch: Option<&Bound<'py, PyAny>>,
    minimize: bool,
    seed: u64,
    backend: &str,
    kernel: Option<&str>,
    noise: Option<f64>,
    signal_var: Option<f64>,
    lengthscale: Option<f64>,
    inducing: Option<usize>,
    exact: bool,
    batch_mode: &str,
    max_sim: Option<f64>,
    pending_index: Option<&Bound<'py, PyAny>>,
    features: Option<&str>,
    beta: f32,
    xi: f32,
    return_summary: bool,
    prune: bool,
    shortlist: Option<usize>,
    samples: Option<u32>,
    temperature: f32,
    power: f32,
    joint_sampler: &str,
    prior_features: usize,
    objectives: Option<&Bound<'py, PyAny>>,
    ref_point: Option<Vec<f64>>,
    constraints: Option<&Bound<'py, PyAny>>,
    round: u32,
) -> PyResult<Bound<'py, PyAny>> {
    let py = pool.py();
    let input = Input::parse(pool, features)?;
    let view: View<'_> = input.view();
    let rows = view.rows();
    let pending = match pending_index {
        Some(p) => IdList::new(
            "<pending_index>",
            row_indices(py, "pending_index", p, rows)?
                .iter()
                .map(usize::to_string)
                .collect(),
        ),
        None => IdList::default(),
    };
    let batch = match batch {
        None => BatchSize::Count(100),
        Some(b) => size_arg("batch", b)?,
    };
    let mode = mode_arg(batch_mode)?;
    let base = SelectParams {
        model: model_spec(kernel, noise, signal_var, lengthscale, inducing, exact)?,
        minimize,
        batch,
        mode,
        shortlist,
        temperature,
        power,
        max_sim,
        joint_sampler: named("joint_sampler", joint_sampler)?,
        prior_features,
        seed,
        round,
        backend: backend_choice(backend)?,
        prune,
        ..SelectParams::default()
    };
    if let Some(objectives) = objectives {
        let args = multi::MultiArgs {
            objectives,
            acq: acq.unwrap_or("ehvi"),
            beta,
            xi,
            samples,
            ref_point,
            constraints,
        };
        return multi::select(
            py,
            view,
            labeled_index,
            y,
            base,
            args,
            pending,
            return_summary,
        );
    }
    only_with_objectives(ref_point.is_some(), constraints.is_some())?;
    let ids = row_indices(py, "labeled_index", labeled_index, rows)?;
    let values = labels(py, y, ids.len())?;
    let acq = acq.unwrap_or("ucb");
    if acq.parse::<poolrank::multi::ParetoAcquisition>().is_ok() {
        return Err(PyValueError::new_err(format!(
            "acq: {acq} scores several objectives; give them with \
             objectives=[\"NAME:min\", \"NAME:max\"]"
        )));
    }
    let acquisition = acquisition_arg(acq, beta, xi, samples)?;
    let params = SelectParams {
        acquisition,
        ..base
    }
    .check()
    .map_err(py_err)?;
    let labels = labels_of(ids, values);
    let pool = ArrayPool::new(view);
    let selection = py
        .detach(|| poolrank::run_select(&params, &pool, &labels, &pending))
        .map_err(py_err)?;
    let index: Vec<i64> = selection.picks.iter().map(|p| p.index as i64).collect();
    let score: Vec<f64> = selection.picks.iter().map(|p| f64::from(p.score)).collect();
    let index = PyArray1::from_vec(py, index).into_any();
    let score = PyArray1::from_vec(py, score).into_any();
    if return_summary {
        let summary = to_py(py, &selection.summary)?;
        Ok((index, score, summary).into_pyobject(py)?.into_any())
    } else {
        Ok((index, score).into_pyobject(py)?.into_any())
    }
}

/// Refuses `ref_point` and `constraints` given without `objectives`.
fn only_with_objectives(ref_point: bool, constraints: bool) -> PyResult<()> {
    for (given, name) in [(ref_point, "ref_point"), (constraints, "constraints")] {
        if given {
            return Err(PyValueError::new_err(format!(
                "{name}: only with objectives (give them as objectives=[\"NAME:min\", \"NAME:max\"])"
            )));
        }
    }
    Ok(())
}

/// A size: an int is a count, a float a fraction of the pool.
fn size_arg(what: &str, value: &Bound<'_, PyAny>) -> PyResult<BatchSize> {
    if value.is_instance_of::<pyo3::types::PyInt>() {
        let n: i64 = value.extract()?;
        if n < 1 {
            return Err(PyValueError::new_err(format!(
                "{what} must be at least 1, got {n}"
            )));
        }
        return Ok(BatchSize::Count(n as usize));
    }
    let f: f64 = value
        .extract()
        .map_err(|_| PyValueError::new_err(format!("{what}: expected a count or a fraction")))?;
    BatchSize::parse(&f.to_string()).map_err(|e| PyValueError::new_err(format!("{what}: {e}")))
}

fn objective_arg(name: &str) -> PyResult<poolrank::sim::Objective> {
    // Python spells identifiers with underscores; both are accepted.
    named("objective", &name.replace('_', "-"))
}

fn mode_arg(name: &str) -> PyResult<BatchMode> {
    named("batch_mode", name)
}

/// Runs `poolrank simulate` on a fully labeled pool held in arrays (`y` has one label per row)
/// and returns `(summary, curves, table)`: the content of `summary.json`, the curves as
/// columns (`strategy`, `replicate`, `round`, `labeled`, `metric`, `value`, NumPy arrays or
/// lists), and the verdict table the command prints. With `out`, also writes the command's
/// files there. With `objectives` (`["dock:min", "qed:max"]`), `y` maps each column to one
/// value per row (or is a labels CSV path), the strategies are the Pareto acquisitions, the
/// measures hypervolume and front recall, and a fourth item maps each strategy to replicate
/// 0's labeled rows. The Python wrapper `poolrank.simulate` turns this into a
/// `SimulationResult`.
#[pyfunction]
#[pyo3(signature = (
    pool, y, strategies=None, init=None, batch=None, rounds=5, topk=None, reps=5, seed=0,
    minimize=false, batch_mode="topk", objective="find-best", test=0.2, test_index=None,
    kernel=None, noise=None, signal_var=None, lengthscale=None, inducing=None, exact=false,
    refit=true, backend="auto", beta=2.0, xi=0.0, features=None, out=None, prune=true,
    samples=None, temperature=0.1, power=1.0, joint_sampler="shortlist", prior_features=1024,
    objectives=None, ref_point=None, constraints=None
))]
#[allow(clippy::too_many_arguments)]
fn _simulate<'py>(
    pool: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    strategies: Option<Vec<String>>,
    init: Option<&Bound<'py, PyAny>>,
    batch: Option<&Bound<'py, PyAny>>,
    rounds: usize,
    topk: Option<&Bound<'py, PyAny>>,
    reps: usize,
    seed: u64,
    minimize: bool,
    batch_mode: &str,
    objective: &str,
    test: f64,
    test_index: Option<&Bound<'py, PyAny>>,
    kernel: Option<&str>,
    noise: Option<f64>,
    signal_var: Option<f64>,
    lengthscale: Option<f64>,
    inducing: Option<usize>,
    exact: bool,
    refit: bool,
    backend: &str,
    beta: f32,
    xi: f32,
    features: Option<&str>,
    out: Option<std::path::PathBuf>,
    prune: bool,
    samples: Option<u32>,
    temperature: f32,
    power: f32,
    joint_sampler: &str,
    prior_features: usize,
    objectives: Option<&Bound<'py, PyAny>>,
    ref_point: Option<Vec<f64>>,
    constraints: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = pool.py();
    let input = Input::parse(pool, features)?;
    let view = input.view();
    let rows = view.rows();
    let mut cfg = poolrank::sim::SimConfig::new();
    let fraction = BatchSize::Fraction(0.01);
    cfg.init = init.map_or(Ok(fraction), |v| size_arg("init", v))?;
    cfg.batch = batch.map_or(Ok(fraction), |v| size_arg("batch", v))?;
    cfg.topk = topk.map_or(Ok(fraction), |v| size_arg("topk", v))?;
    cfg.rounds = rounds;
    cfg.reps = reps;
    cfg.seed = seed;
    cfg.prune = prune;
    cfg.mode = mode_arg(batch_mode)?;
    cfg.model = model_spec(kernel, noise, signal_var, lengthscale, inducing, exact)?;
    cfg.backend = backend_choice(backend)?;
    if let Some(objectives) = objectives {
        for (given, name) in [
            (minimize, "minimize"),
            (
                objective_arg(objective)? != poolrank::sim::Objective::FindBest,
                "objective",
            ),
            (test != 0.2 || test_index.is_some(), "test"),
            (!refit, "refit"),
            (xi != 0.0, "xi"),
            (samples.is_some(), "samples"),
        ] {
            if given {
                return Err(PyValueError::new_err(format!(
                    "{name}: a one-objective setting; with objectives each column carries its \
                     own direction (\"dock:min\"), every round refits every objective's GP, and \
                     the measures are hypervolume and front recall"
                )));
            }
        }
        let args = multi::SimArgs {
            objectives,
            strategies,
            beta,
            ref_point,
            constraints,
        };
        return multi::simulate(py, view, y, cfg, args, out);
    }
    only_with_objectives(ref_point.is_some(), constraints.is_some())?;
    let y = labels(py, y, rows)?;
    if let Some(names) = strategies {
        cfg.strategies = names
            .iter()
            .filter(|n| n.as_str() != "random")
            .map(|n| {
                Acquisition::from_name(n, beta, xi)
                    .map(|a| a.with_samples(samples))
                    .ok_or_else(|| {
                        PyValueError::new_err(format!(
                            "strategies: unknown strategy {n:?}; expected some of {}",
                            Acquisition::names().join(", ")
                        ))
                    })
            })
            .collect::<PyResult<_>>()?;
    }
    cfg.minimize = minimize;
    cfg.temperature = temperature;
    cfg.power = power;
    cfg.joint_sampler = named("joint_sampler", joint_sampler)?;
    cfg.prior_features = prior_features;
    cfg.objective = objective_arg(objective)?;
    cfg.test = test;
    if let Some(t) = test_index {
        cfg.test_rows = Some(row_indices(py, "test_index", t, rows)?);
    }
    cfg.refit = refit;
    // Refused before any work, as on the command line (the inputs are arrays, not files).
    let mut set = out
        .as_ref()
        .map(|dir| poolrank::report::simulation_outputs(dir).check())
        .transpose()
        .map_err(py_err)?;
    let result = py
        .detach(move || -> poolrank::Result<poolrank::sim::SimResult> {
            let mut features = Features::empty(view.kind());
            view.rows_into(0, rows, &mut features)?;
            let data = poolrank::sim::LabeledPool {
                features,
                ids: (0..rows).map(|i| i.to_string()).collect(),
                y,
            };
            let result = poolrank::sim::simulate(&data, &cfg)?;
            if let (Some(dir), Some(mut set)) = (&out, set.take()) {
                poolrank::report::write_simulation(&mut set, dir, &result)?;
                set.commit()?;
            }
            Ok(result)
        })
        .map_err(py_err)?;
    let summary = to_py(py, &result)?;
    let curves = curves_dict(py, &result.curves)?;
    let table = poolrank::sim::verdict_table(&result);
    Ok((summary, curves, table).into_pyobject(py)?.into_any())
}

/// A simulation's curves as columns: `strategy`, `replicate`, `round`, `labeled`, `metric`
/// (lists of strings and NumPy arrays).
pub(crate) fn curves_dict<'py>(
    py: Python<'py>,
    c: &[poolrank::sim::CurvePoint],
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    let curves = pyo3::types::PyDict::new(py);
    curves.set_item(
        "strategy",
        c.iter().map(|p| p.strategy.as_str()).collect::<Vec<_>>(),
    )?;
    let ints = |f: fn(&poolrank::sim::CurvePoint) -> usize| {
        PyArray1::from_vec(py, c.iter().map(|p| f(p) as i64).collect())
    };
    curves.set_item("replicate", ints(|p| p.replicate))?;
    curves.set_item("round", ints(|p| p.round))?;
    curves.set_item("labeled", ints(|p| p.labeled))?;
    curves.set_item("metric", c.iter().map(|p| p.metric).collect::<Vec<_>>())?;
    curves.set_item(
        "value",
        PyArray1::from_vec(py, c.iter().map(|p| p.value).collect()),
    )?;
    Ok(curves)
}

/// Runs `poolrank diagnose` on a pool held in arrays with labels for `labeled_index`, and
/// returns `(report, text)`: the content of `report.json` and the summary the command prints.
/// With `out`, also writes `report.json` and `report.html` there. The Python wrapper
/// `poolrank.diagnose` turns this into a `Diagnosis`.
#[pyfunction]
#[pyo3(signature = (
    pool, labeled_index, y, acq="ucb", batch=None, minimize=false, folds=5, nn_sample=256,
    objective="find-best", test_index=None, seed=0, backend="auto", kernel=None, noise=None,
    signal_var=None, lengthscale=None, inducing=None, exact=false, beta=2.0, xi=0.0, features=None,
    out=None
))]
#[allow(clippy::too_many_arguments)]
fn _diagnose<'py>(
    pool: &Bound<'py, PyAny>,
    labeled_index: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    acq: &str,
    batch: Option<&Bound<'py, PyAny>>,
    minimize: bool,
    folds: usize,
    nn_sample: usize,
    objective: &str,
    test_index: Option<&Bound<'py, PyAny>>,
    seed: u64,
    backend: &str,
    kernel: Option<&str>,
    noise: Option<f64>,
    signal_var: Option<f64>,
    lengthscale: Option<f64>,
    inducing: Option<usize>,
    exact: bool,
    beta: f32,
    xi: f32,
    features: Option<&str>,
    out: Option<std::path::PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    use poolrank::diagnose::{render, run_diagnose, DiagnoseConfig};
    let py = pool.py();
    let input = Input::parse(pool, features)?;
    let view = input.view();
    let rows = view.rows();
    let ids = row_indices(py, "labeled_index", labeled_index, rows)?;
    let values = labels(py, y, ids.len())?;
    let test = match test_index {
        Some(t) => IdList::new(
            "<test_index>",
            row_indices(py, "test_index", t, rows)?
                .iter()
                .map(usize::to_string)
                .collect(),
        ),
        None => IdList::default(),
    };
    let acquisition = acquisition_arg(acq, beta, xi, None)?;
    let mut cfg = DiagnoseConfig::default();
    let model = model_spec(kernel, noise, signal_var, lengthscale, inducing, exact)?;
    cfg.select.model = model;
    cfg.select.acquisition = acquisition;
    cfg.select.minimize = minimize;
    if let Some(b) = batch {
        cfg.select.batch = size_arg("batch", b)?;
    }
    cfg.select.seed = seed;
    cfg.select.backend = backend_choice(backend)?;
    cfg.folds = folds;
    cfg.nn_sample = nn_sample;
    cfg.objective = objective_arg(objective)?;
    let labels = labels_of(ids, values);
    let pool = ArrayPool::new(view);
    let mut set = out
        .as_ref()
        .map(|dir| poolrank::report::diagnosis_outputs(dir).check())
        .transpose()
        .map_err(py_err)?;
    let report = py
        .detach(|| -> poolrank::Result<poolrank::diagnose::Report> {
            let report = run_diagnose(&cfg, &pool, &labels, &test)?;
            if let (Some(dir), Some(mut set)) = (&out, set.take()) {
                poolrank::report::write_diagnosis(&mut set, dir, &report)?;
                set.commit()?;
            }
            Ok(report)
        })
        .map_err(py_err)?;
    let text = render::text(&report);
    Ok((to_py(py, &report)?, text).into_pyobject(py)?.into_any())
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Gp>()?;
    m.add_class::<PoolFile>()?;
    m.add_function(wrap_pyfunction!(devices, m)?)?;
    m.add_function(wrap_pyfunction!(fit_objectives, m)?)?;
    m.add_function(wrap_pyfunction!(select, m)?)?;
    m.add_function(wrap_pyfunction!(_simulate, m)?)?;
    m.add_function(wrap_pyfunction!(_diagnose, m)?)?;
    m.add_function(wrap_pyfunction!(open_pool, m)?)?;
    m.add_function(wrap_pyfunction!(read_pool, m)?)?;
    m.add_class::<shard::PyShardScorer>()?;
    m.add_function(wrap_pyfunction!(shard::merge, m)?)?;
    m.add_function(wrap_pyfunction!(shard::merge_to_part, m)?)?;
    m.add_function(wrap_pyfunction!(shard::shard_list, m)?)?;
    m.add("DeviceError", m.py().get_type::<DeviceError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
