//! NumPy arrays and `scipy.sparse` matrices as the engine's feature blocks, and back.
//!
//! Arrays are read in place, tile by tile (no copy of the whole array); only a tile at a time
//! is converted into the engine's layout. A `scipy.sparse` matrix is taken as CSR with 32-bit
//! indices and counts (converted once if it is stored otherwise).

use numpy::ndarray::{ArrayView1, ArrayView2};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use poolrank::data::{push_packbits, FeatureKind, Features};
use poolrank::Error;

/// Integer element types accepted as counts.
trait Count: Copy + Send + Sync {
    /// The count, or `None` when it is negative or does not fit `u32`.
    fn count(self) -> Option<u32>;
}

macro_rules! count_impl {
    ($($t:ty),*) => {$(
        impl Count for $t {
            fn count(self) -> Option<u32> {
                u32::try_from(self).ok()
            }
        }
    )*};
}
count_impl!(u8, u16, u32, u64, i8, i16, i32, i64);

/// A Python array as the binding holds it while the GIL is held.
pub enum Input<'py> {
    Packed(PyReadonlyArray2<'py, u8>),
    Unpacked(PyReadonlyArray2<'py, bool>),
    CountsU8(PyReadonlyArray2<'py, u8>),
    CountsU16(PyReadonlyArray2<'py, u16>),
    CountsU32(PyReadonlyArray2<'py, u32>),
    CountsU64(PyReadonlyArray2<'py, u64>),
    CountsI8(PyReadonlyArray2<'py, i8>),
    CountsI16(PyReadonlyArray2<'py, i16>),
    CountsI32(PyReadonlyArray2<'py, i32>),
    CountsI64(PyReadonlyArray2<'py, i64>),
    Csr {
        indptr: PyReadonlyArray1<'py, i64>,
        indices: PyReadonlyArray1<'py, u32>,
        data: PyReadonlyArray1<'py, i64>,
        shape: (usize, usize),
    },
    F32(PyReadonlyArray2<'py, f32>),
    F64(PyReadonlyArray2<'py, f64>),
}

/// The same, as plain views that may cross into code that runs without the GIL.
pub enum View<'a> {
    Packed(ArrayView2<'a, u8>),
    Unpacked(ArrayView2<'a, bool>),
    CountsU8(ArrayView2<'a, u8>),
    CountsU16(ArrayView2<'a, u16>),
    CountsU32(ArrayView2<'a, u32>),
    CountsU64(ArrayView2<'a, u64>),
    CountsI8(ArrayView2<'a, i8>),
    CountsI16(ArrayView2<'a, i16>),
    CountsI32(ArrayView2<'a, i32>),
    CountsI64(ArrayView2<'a, i64>),
    Csr {
        indptr: ArrayView1<'a, i64>,
        indices: ArrayView1<'a, u32>,
        data: ArrayView1<'a, i64>,
        shape: (usize, usize),
    },
    F32(ArrayView2<'a, f32>),
    F64(ArrayView2<'a, f64>),
}

fn value_error(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

impl<'py> Input<'py> {
    /// Reads `x` as features. `features` (`"bits"`, `"counts"`, `"dense"`) forces the reading;
    /// by default `uint8` is packed bits (`numpy.packbits`), `bool` unpacked bits, other
    /// integers counts, floats dense features, and a `scipy.sparse` matrix counts.
    pub fn parse(x: &Bound<'py, PyAny>, features: Option<&str>) -> PyResult<Self> {
        let py = x.py();
        if let Some(f) = features {
            if !matches!(f, "bits" | "counts" | "dense") {
                return Err(value_error(format!(
                    "features: expected 'bits', 'counts' or 'dense', got {f:?}"
                )));
            }
        }
        if x.hasattr("tocsr")? && !x.hasattr("__array_interface__")? {
            if matches!(features, Some("bits" | "dense")) {
                return Err(value_error(format!(
                    "X is a scipy.sparse matrix, read as counts; features={:?} is not possible",
                    features.unwrap_or_default()
                )));
            }
            return Self::csr(py, &x.call_method0("tocsr")?);
        }
        if !x.hasattr("dtype")? {
            return Err(value_error(
                "X: expected a 2-D NumPy array or a scipy.sparse matrix",
            ));
        }
        let ndim: usize = x.getattr("ndim")?.extract()?;
        if ndim != 2 {
            return Err(value_error(format!(
                "X: expected a 2-D array (rows = candidates), got {ndim} dimension(s)"
            )));
        }
        let kind: String = x.getattr("dtype")?.getattr("kind")?.extract()?;
        let dtype: String = x.getattr("dtype")?.getattr("name")?.extract()?;
        let wrong = |want: &str| {
            value_error(format!(
                "X has dtype {dtype}, which cannot be read as {want}: bits are uint8 \
                 (numpy.packbits) or bool, counts are integers, dense features are float32 \
                 or float64"
            ))
        };
        // Non-contiguous arrays are read through their strides, row by row.
        Ok(match (kind.as_str(), features) {
            ("u", None | Some("bits")) if dtype == "uint8" => Input::Packed(x.extract()?),
            ("b", None | Some("bits")) => Input::Unpacked(x.extract()?),
            ("u" | "i", None | Some("counts")) => match dtype.as_str() {
                "uint8" => Input::CountsU8(x.extract()?),
                "uint16" => Input::CountsU16(x.extract()?),
                "uint32" => Input::CountsU32(x.extract()?),
                "uint64" => Input::CountsU64(x.extract()?),
                "int8" => Input::CountsI8(x.extract()?),
                "int16" => Input::CountsI16(x.extract()?),
                "int32" => Input::CountsI32(x.extract()?),
                "int64" => Input::CountsI64(x.extract()?),
                _ => return Err(wrong("counts")),
            },
            ("f", None | Some("dense")) => match dtype.as_str() {
                "float32" => Input::F32(x.extract()?),
                "float64" => Input::F64(x.extract()?),
                _ => return Err(wrong("dense features")),
            },
            (_, Some(f)) => return Err(wrong(f)),
            _ => return Err(wrong("features")),
        })
    }

    fn csr(py: Python<'py>, m: &Bound<'py, PyAny>) -> PyResult<Self> {
        let np = py.import("numpy")?;
        let as_type = |name: &str, dtype: &str| -> PyResult<Bound<'py, PyAny>> {
            np.call_method1("ascontiguousarray", (m.getattr(name)?, dtype))
        };
        let data = as_type("data", "int64")
            .map_err(|_| value_error("X: a scipy.sparse matrix of counts must hold integers"))?;
        let kind: String = m.getattr("dtype")?.getattr("kind")?.extract()?;
        if !matches!(kind.as_str(), "u" | "i" | "b") {
            return Err(value_error(
                "X: a scipy.sparse matrix is read as counts and must hold integers",
            ));
        }
        let shape: (usize, usize) = m.getattr("shape")?.extract()?;
        Ok(Input::Csr {
            indptr: as_type("indptr", "int64")?.extract()?,
            indices: as_type("indices", "uint32")?.extract()?,
            data: data.extract()?,
            shape,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.view().rows()
    }

    /// Views of the arrays.
    pub fn view(&self) -> View<'_> {
        match self {
            Input::Packed(a) => View::Packed(a.as_array()),
            Input::Unpacked(a) => View::Unpacked(a.as_array()),
            Input::CountsU8(a) => View::CountsU8(a.as_array()),
            Input::CountsU16(a) => View::CountsU16(a.as_array()),
            Input::CountsU32(a) => View::CountsU32(a.as_array()),
            Input::CountsU64(a) => View::CountsU64(a.as_array()),
            Input::CountsI8(a) => View::CountsI8(a.as_array()),
            Input::CountsI16(a) => View::CountsI16(a.as_array()),
            Input::CountsI32(a) => View::CountsI32(a.as_array()),
            Input::CountsI64(a) => View::CountsI64(a.as_array()),
            Input::Csr {
                indptr,
                indices,
                data,
                shape,
            } => View::Csr {
                indptr: indptr.as_array(),
                indices: indices.as_array(),
                data: data.as_array(),
                shape: *shape,
            },
            Input::F32(a) => View::F32(a.as_array()),
            Input::F64(a) => View::F64(a.as_array()),
        }
    }
}

impl View<'_> {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        match self {
            View::Packed(a) | View::CountsU8(a) => a.nrows(),
            View::Unpacked(a) => a.nrows(),
            View::CountsU16(a) => a.nrows(),
            View::CountsU32(a) => a.nrows(),
            View::CountsU64(a) => a.nrows(),
            View::CountsI8(a) => a.nrows(),
            View::CountsI16(a) => a.nrows(),
            View::CountsI32(a) => a.nrows(),
            View::CountsI64(a) => a.nrows(),
            View::Csr { shape, .. } => shape.0,
            View::F32(a) => a.nrows(),
            View::F64(a) => a.nrows(),
        }
    }

    /// The kind of features the rows become.
    pub fn kind(&self) -> FeatureKind {
        match self {
            View::Packed(a) => FeatureKind::Bits {
                nbits: 8 * a.ncols(),
            },
            View::Unpacked(a) => FeatureKind::Bits { nbits: a.ncols() },
            View::CountsU8(a) => FeatureKind::Counts { ndim: a.ncols() },
            View::CountsU16(a) => FeatureKind::Counts { ndim: a.ncols() },
            View::CountsU32(a) => FeatureKind::Counts { ndim: a.ncols() },
            View::CountsU64(a) => FeatureKind::Counts { ndim: a.ncols() },
            View::CountsI8(a) => FeatureKind::Counts { ndim: a.ncols() },
            View::CountsI16(a) => FeatureKind::Counts { ndim: a.ncols() },
            View::CountsI32(a) => FeatureKind::Counts { ndim: a.ncols() },
            View::CountsI64(a) => FeatureKind::Counts { ndim: a.ncols() },
            View::Csr { shape, .. } => FeatureKind::Counts { ndim: shape.1 },
            View::F32(a) => FeatureKind::Dense { dim: a.ncols() },
            View::F64(a) => FeatureKind::Dense { dim: a.ncols() },
        }
    }

    /// Replaces `out` with rows `start..end`, in the engine's layout.
    ///
    /// # Errors
    /// A negative or too large count, a non-finite feature, or a malformed CSR matrix, naming
    /// the row and column.
    pub fn rows_into(&self, start: usize, end: usize, out: &mut Features) -> poolrank::Result<()> {
        if out.kind() != self.kind() {
            *out = Features::empty(self.kind());
        }
        out.clear();
        match self {
            View::Packed(a) => {
                let Features::Bits { data, .. } = out else {
                    unreachable!()
                };
                let mut buf = Vec::new();
                for row in a.rows().into_iter().skip(start).take(end - start) {
                    match row.as_slice() {
                        Some(s) => push_packbits(s, data),
                        None => {
                            buf.clear();
                            buf.extend(row.iter().copied());
                            push_packbits(&buf, data);
                        }
                    }
                }
            }
            View::Unpacked(a) => {
                let Features::Bits { nbits, data } = out else {
                    unreachable!()
                };
                let words = nbits.div_ceil(64);
                for row in a.rows().into_iter().skip(start).take(end - start) {
                    let base = data.len();
                    data.resize(base + words, 0);
                    for (j, &b) in row.iter().enumerate() {
                        if b {
                            data[base + j / 64] |= 1 << (j % 64);
                        }
                    }
                }
            }
            View::CountsU8(a) => dense_counts(a, start, end, out)?,
            View::CountsU16(a) => dense_counts(a, start, end, out)?,
            View::CountsU32(a) => dense_counts(a, start, end, out)?,
            View::CountsU64(a) => dense_counts(a, start, end, out)?,
            View::CountsI8(a) => dense_counts(a, start, end, out)?,
            View::CountsI16(a) => dense_counts(a, start, end, out)?,
            View::CountsI32(a) => dense_counts(a, start, end, out)?,
            View::CountsI64(a) => dense_counts(a, start, end, out)?,
            View::Csr {
                indptr,
                indices,
                data,
                shape,
            } => csr_counts(indptr, indices, data, *shape, start, end, out)?,
            View::F32(a) => dense(a, start, end, out, |v| v)?,
            View::F64(a) => dense(a, start, end, out, |v| v as f32)?,
        }
        Ok(())
    }
}

fn x_error(msg: String) -> Error {
    Error::param("X", msg)
}

fn dense_counts<T: Count + std::fmt::Display>(
    a: &ArrayView2<'_, T>,
    start: usize,
    end: usize,
    out: &mut Features,
) -> poolrank::Result<()> {
    let Features::Counts {
        indptr,
        indices,
        values,
        ..
    } = out
    else {
        unreachable!()
    };
    for (i, row) in a
        .rows()
        .into_iter()
        .enumerate()
        .skip(start)
        .take(end - start)
    {
        for (j, &v) in row.iter().enumerate() {
            let c = v.count().ok_or_else(|| {
                x_error(format!(
                    "row {i}, column {j}: count {v} is not a non-negative 32-bit integer"
                ))
            })?;
            if c > 0 {
                indices.push(j as u32);
                values.push(c);
            }
        }
        indptr.push(indices.len());
    }
    Ok(())
}

fn csr_counts(
    indptr: &ArrayView1<'_, i64>,
    idx: &ArrayView1<'_, u32>,
    data: &ArrayView1<'_, i64>,
    shape: (usize, usize),
    start: usize,
    end: usize,
    out: &mut Features,
) -> poolrank::Result<()> {
    let Features::Counts {
        indptr: optr,
        indices,
        values,
        ..
    } = out
    else {
        unreachable!()
    };
    if indptr.len() != shape.0 + 1 || idx.len() != data.len() {
        return Err(x_error(format!(
            "malformed CSR matrix: indptr has {} entries for {} rows, indices {} and data {}",
            indptr.len(),
            shape.0,
            idx.len(),
            data.len()
        )));
    }
    for i in start..end {
        let (a, b) = (indptr[i], indptr[i + 1]);
        if a < 0 || b < a || b as usize > idx.len() {
            return Err(x_error(format!(
                "malformed CSR matrix: row {i} spans {a}..{b}"
            )));
        }
        for k in a as usize..b as usize {
            let (j, v) = (idx[k], data[k]);
            if j as usize >= shape.1 {
                return Err(x_error(format!(
                    "row {i}: column {j} is outside the {} columns",
                    shape.1
                )));
            }
            let c = u32::try_from(v).map_err(|_| {
                x_error(format!(
                    "row {i}, column {j}: count {v} is not a non-negative 32-bit integer"
                ))
            })?;
            if c > 0 {
                indices.push(j);
                values.push(c);
            }
        }
        optr.push(indices.len());
    }
    Ok(())
}

fn dense<T: Copy>(
    a: &ArrayView2<'_, T>,
    start: usize,
    end: usize,
    out: &mut Features,
    to_f32: impl Fn(T) -> f32,
) -> poolrank::Result<()> {
    let Features::Dense { data, .. } = out else {
        unreachable!()
    };
    for (i, row) in a
        .rows()
        .into_iter()
        .enumerate()
        .skip(start)
        .take(end - start)
    {
        for (j, &v) in row.iter().enumerate() {
            let v = to_f32(v);
            if !v.is_finite() {
                return Err(x_error(format!(
                    "row {i}, column {j}: {v} is not a finite number"
                )));
            }
            data.push(v);
        }
    }
    Ok(())
}

/// Features as the Python object `GP.fit` takes back: packed `uint8` bits, a `scipy.sparse`
/// CSR matrix of `uint32` counts (a `(indptr, indices, data, shape)` tuple when scipy is not
/// installed), or `float32` features.
pub fn features_to_py<'py>(py: Python<'py>, f: &Features) -> PyResult<Bound<'py, PyAny>> {
    match f {
        Features::Bits { nbits, data } => {
            let rows = f.len();
            let row_bytes = nbits.div_ceil(8);
            let words = nbits.div_ceil(64);
            let mut bytes = Vec::with_capacity(rows * row_bytes);
            for r in 0..rows {
                let row = &data[r * words..(r + 1) * words];
                bytes.extend(
                    row.iter()
                        .flat_map(|w| w.to_le_bytes())
                        .take(row_bytes)
                        .map(u8::reverse_bits),
                );
            }
            let arr = PyArray1::from_vec(py, bytes);
            Ok(arr.reshape([rows, row_bytes])?.into_any())
        }
        Features::Counts {
            ndim,
            indptr,
            indices,
            values,
        } => {
            let ptr: Vec<i64> = indptr.iter().map(|&p| p as i64).collect();
            let ptr = PyArray1::from_vec(py, ptr);
            let idx = PyArray1::from_slice(py, indices);
            let val = PyArray1::from_slice(py, values);
            let shape = (f.len(), *ndim);
            match py.import("scipy.sparse") {
                Ok(sp) => sp.call_method1("csr_matrix", ((val, idx, ptr), shape)),
                Err(_) => Ok((ptr, idx, val, shape).into_pyobject(py)?.into_any()),
            }
        }
        Features::Dense { dim, data } => Ok(PyArray1::from_slice(py, data)
            .reshape([f.len(), *dim])?
            .into_any()),
    }
}
