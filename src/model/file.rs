//! The model file: a fixed little-endian layout, versioned and checksummed, so a model saved on
//! one machine loads bit for bit on another.
//!
//! ```text
//! offset  size  field
//! 0       8     magic: 0x89 'P' 'R' 'M' 'O' 'D' 'E' 'L'
//! 8       4     format version (u32), 1
//! 12      8     payload length in bytes (u64)
//! 20      len   payload
//! 20+len  4     CRC-32 (IEEE) of bytes 0 .. 20+len (u32)
//! ```
//!
//! Every number is little-endian; `f64`/`f32` are IEEE 754 bit patterns; a string is a `u64`
//! byte length then UTF-8; a list is a `u64` count then its items. The payload of version 1, in
//! order:
//!
//! 1. `software`: the poolrank version that wrote it (string; informational).
//! 2. Kernel: name (`tanimoto`, `minmax`, `rbf`, `matern52`), lengthscale (`f64`; 1 for the
//!    fingerprint kernels).
//! 3. `signal_var`, `noise`, `y_mean`, `y_sd`, `y_best` (`f64` each, standardised units except
//!    the label mean and sd).
//! 4. `minimize` (`u8`, 0 or 1).
//! 5. Features: kind (`u8`: 0 bits, 1 counts, 2 dense) and width (`u64`: bits, features or
//!    dimension).
//! 6. Provenance: `u8` 0 (unknown) or 1 followed by a string.
//! 7. Labels: a list of (id string, value `f64`), in the labels file's order.
//! 8. `alpha`: a list of `f64` (one per training row).
//! 9. The factor: the lower triangle of the `m × m` matrix (`m` = length of `alpha`), row by
//!    row, `m(m+1)/2` `f64`s.
//! 10. Training rows: count (`u64`), then for bits `count × ⌈width/64⌉` `u64` words
//!     (LSB-first); for counts the number of entries (`u64`), `count + 1` row starts (`u64`),
//!     the feature indices (`u32`) and the counts (`u32`); for dense `count × width` `f32`s.
//! 11. Fit information: jitter (`f64`), log marginal likelihood (`f64`), optimised (`u8`),
//!     evaluations (`u64`), seconds (`f64`), approximation (`u8`: 0 exact, 1 VFE), then `u8` 0,
//!     or 1 and the sparse fit's record: reason (string), requested, used, candidates (`u64`),
//!     the inducing rows (list of `u64`), ELBO, factor jitter, choose seconds, pass seconds
//!     (`f64`), passes (`u64`), product (string), product fallbacks (`u64`).
//!
//! A reader refuses a file whose magic, version, length or checksum is wrong, and checks every
//! count against the bytes left before it allocates, so a corrupted file is an error, never a
//! huge allocation.

use std::path::Path;

use faer::Mat;

use super::{FittedModel, ModelOrigin};
use crate::data::{words_for, FeatureKind, Features};
use crate::error::{Error, Result};
use crate::gp::{Approximation, FitInfo, FittedGp, SparseInfo};
use crate::kernel::{Kernel, KernelKind};

/// The first eight bytes of every model file.
pub const MAGIC: [u8; 8] = *b"\x89PRMODEL";

/// The layout this poolrank writes and reads.
pub const VERSION: u32 = 1;

/// Magic, version and payload length.
const HEADER: usize = 8 + 4 + 8;

/// The file's bytes for `model`.
pub(super) fn encode(model: &FittedModel) -> Vec<u8> {
    let gp = &model.gp;
    let mut e = Encoder::default();
    e.str(concat!("poolrank ", env!("CARGO_PKG_VERSION")));
    e.str(gp.kernel.kind.name());
    e.f64(gp.kernel.lengthscale);
    for v in [gp.signal_var, gp.noise, gp.y_mean, gp.y_sd, gp.y_best] {
        e.f64(v);
    }
    e.u8(u8::from(model.minimize));
    let (tag, width) = match model.features {
        FeatureKind::Bits { nbits } => (0, nbits),
        FeatureKind::Counts { ndim } => (1, ndim),
        FeatureKind::Dense { dim } => (2, dim),
    };
    e.u8(tag);
    e.len(width);
    match &model.provenance {
        Some(p) => {
            e.u8(1);
            e.str(p);
        }
        None => e.u8(0),
    }
    e.len(model.labeled_ids.len());
    for (id, v) in model.labeled_ids.iter().zip(&model.label_values) {
        e.str(id);
        e.f64(*v);
    }
    let m = gp.alpha.len();
    e.len(m);
    gp.alpha.iter().for_each(|v| e.f64(*v));
    for i in 0..m {
        for j in 0..=i {
            e.f64(gp.chol[(i, j)]);
        }
    }
    e.len(gp.train.len());
    match &gp.train {
        Features::Bits { data, .. } => data.iter().for_each(|w| e.u64(*w)),
        Features::Counts {
            indptr,
            indices,
            values,
            ..
        } => {
            e.len(indices.len());
            indptr.iter().for_each(|p| e.len(*p));
            indices.iter().for_each(|i| e.u32(*i));
            values.iter().for_each(|v| e.u32(*v));
        }
        Features::Dense { data, .. } => data.iter().for_each(|v| e.u32(v.to_bits())),
    }
    let info = &gp.info;
    e.f64(info.jitter);
    e.f64(info.log_marginal_likelihood);
    e.u8(u8::from(info.optimised));
    e.len(info.evaluations);
    e.f64(info.seconds);
    e.u8(match info.approximation {
        Approximation::Exact => 0,
        Approximation::Vfe => 1,
    });
    match &info.sparse {
        None => e.u8(0),
        Some(s) => {
            e.u8(1);
            e.str(&s.reason);
            e.len(s.requested);
            e.len(s.used);
            e.len(s.candidates);
            e.len(s.rows.len());
            s.rows.iter().for_each(|r| e.len(*r));
            for v in [s.elbo, s.factor_jitter, s.choose_seconds, s.pass_seconds] {
                e.f64(v);
            }
            e.len(s.passes);
            e.str(&s.product);
            e.len(s.product_fallbacks);
        }
    }

    let payload = e.0;
    let mut out = Vec::with_capacity(HEADER + payload.len() + 4);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The model in `bytes`, checked; `path` names them in messages.
pub(super) fn decode(bytes: &[u8], path: &Path) -> Result<FittedModel> {
    let bad = |msg: String| Error::Model {
        path: path.to_path_buf(),
        msg,
    };
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(bad(
            "not a poolrank model file (it does not start with the model magic bytes; `poolrank fit --save-model` writes one)"
                .into(),
        ));
    }
    if bytes.len() < HEADER {
        return Err(bad(format!(
            "truncated: {} bytes, shorter than the {HEADER}-byte header",
            bytes.len()
        )));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(bad(format!(
            "model file format version {version}; this poolrank ({}) reads version {VERSION}",
            env!("CARGO_PKG_VERSION")
        )));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let expected = (HEADER as u64).saturating_add(len).saturating_add(4);
    if bytes.len() as u64 != expected {
        return Err(bad(format!(
            "{} bytes, but its header announces {expected} (truncated or extended)",
            bytes.len()
        )));
    }
    let end = bytes.len() - 4;
    let stored = u32::from_le_bytes(bytes[end..].try_into().expect("4 bytes"));
    let actual = crc32fast::hash(&bytes[..end]);
    if stored != actual {
        return Err(bad(format!(
            "checksum mismatch (stored {stored:08x}, computed {actual:08x}): the file is corrupted"
        )));
    }
    let mut d = Decoder {
        buf: &bytes[HEADER..end],
        pos: 0,
    };
    decode_payload(&mut d).map_err(bad)
}

/// Reads the payload; a message says what was wrong (the caller adds the path).
fn decode_payload(d: &mut Decoder<'_>) -> std::result::Result<FittedModel, String> {
    let _software = d.str("software")?;
    let name = d.str("kernel")?;
    let kind: KernelKind = name
        .parse()
        .map_err(|e: crate::names::UnknownName| e.to_string())?;
    let lengthscale = d.finite("lengthscale")?;
    let [signal_var, noise, y_mean, y_sd, y_best] = [
        d.finite("signal_var")?,
        d.finite("noise")?,
        d.finite("y_mean")?,
        d.finite("y_sd")?,
        d.finite("y_best")?,
    ];
    if !(signal_var > 0.0 && noise >= 0.0 && y_sd > 0.0 && lengthscale > 0.0) {
        return Err(format!(
            "hyperparameters out of range (signal_var {signal_var}, noise {noise}, label sd {y_sd}, lengthscale {lengthscale})"
        ));
    }
    let minimize = d.flag("minimize")?;
    let tag = d.u8("feature kind")?;
    let width = d.len("feature width")?;
    if width == 0 || width > u32::MAX as usize {
        return Err(format!("feature width {width} out of range"));
    }
    let features = match tag {
        0 => FeatureKind::Bits { nbits: width },
        1 => FeatureKind::Counts { ndim: width },
        2 => FeatureKind::Dense { dim: width },
        t => return Err(format!("unknown feature kind {t}")),
    };
    kind.check(features).map_err(|e| e.to_string())?;
    let provenance = if d.flag("provenance")? {
        Some(d.str("provenance")?)
    } else {
        None
    };
    let n_labels = d.count("labels", 8 + 8)?;
    let mut labeled_ids = Vec::with_capacity(n_labels);
    let mut label_values = Vec::with_capacity(n_labels);
    for _ in 0..n_labels {
        labeled_ids.push(d.str("label id")?);
        label_values.push(d.finite("label value")?);
    }
    let m = d.count("alpha", 8)?;
    let alpha = (0..m)
        .map(|_| d.finite("alpha"))
        .collect::<std::result::Result<Vec<f64>, String>>()?;
    let tri = m
        .checked_mul(m + 1)
        .map(|x| x / 2)
        .ok_or("factor size overflows")?;
    d.ensure(tri, 8, "factor")?;
    let mut chol = Mat::<f64>::zeros(m, m);
    for i in 0..m {
        for j in 0..=i {
            chol[(i, j)] = d.finite("factor")?;
        }
    }
    let rows = d.len("training rows")?;
    if rows != m {
        return Err(format!("{rows} training rows for {m} alpha values"));
    }
    let train = match features {
        FeatureKind::Bits { nbits } => {
            let words = words_for(nbits);
            let total = rows.checked_mul(words).ok_or("bit rows overflow")?;
            d.ensure(total, 8, "bit rows")?;
            let data: Vec<u64> = (0..total)
                .map(|_| d.u64("bit rows"))
                .collect::<std::result::Result<_, _>>()?;
            let tail = nbits % 64;
            if tail != 0 && (0..rows).any(|r| data[r * words + words - 1] >> tail != 0) {
                return Err(format!("bit rows have bits set beyond bit {nbits}"));
            }
            Features::Bits { nbits, data }
        }
        FeatureKind::Counts { ndim } => {
            let nnz = d.len("count entries")?;
            d.ensure(rows.checked_add(1).ok_or("rows overflow")?, 8, "row starts")?;
            let indptr: Vec<usize> = (0..=rows)
                .map(|_| d.len("row starts"))
                .collect::<std::result::Result<_, _>>()?;
            d.ensure(nnz.checked_mul(2).ok_or("entries overflow")?, 4, "entries")?;
            let indices: Vec<u32> = (0..nnz)
                .map(|_| d.u32("feature indices"))
                .collect::<std::result::Result<_, _>>()?;
            let values: Vec<u32> = (0..nnz)
                .map(|_| d.u32("counts"))
                .collect::<std::result::Result<_, _>>()?;
            if indptr[0] != 0 || indptr[rows] != nnz || indptr.windows(2).any(|w| w[0] > w[1]) {
                return Err("count row starts are not increasing from 0 to the entries".into());
            }
            for r in 0..rows {
                let idx = &indices[indptr[r]..indptr[r + 1]];
                if idx.windows(2).any(|w| w[0] >= w[1]) || idx.iter().any(|&i| i as usize >= ndim) {
                    return Err(format!(
                        "count row {r} has unsorted or out-of-range indices"
                    ));
                }
            }
            if values.contains(&0) {
                return Err("a stored count is 0".into());
            }
            Features::Counts {
                ndim,
                indptr,
                indices,
                values,
            }
        }
        FeatureKind::Dense { dim } => {
            let total = rows.checked_mul(dim).ok_or("dense rows overflow")?;
            d.ensure(total, 4, "dense rows")?;
            let data: Vec<f32> = (0..total)
                .map(|_| d.u32("dense rows").map(f32::from_bits))
                .collect::<std::result::Result<_, _>>()?;
            if data.iter().any(|v| !v.is_finite()) {
                return Err("a dense training value is not finite".into());
            }
            Features::Dense { dim, data }
        }
    };
    // The scorers encode the training rows; a forged file must not make that code huge.
    crate::backend::encode::check_count_code(&train).map_err(|e| e.to_string())?;
    let jitter = d.finite("jitter")?;
    let log_marginal_likelihood = d.f64("log marginal likelihood")?;
    let optimised = d.flag("optimised")?;
    let evaluations = d.len("evaluations")?;
    let seconds = d.f64("seconds")?;
    let approximation = match d.u8("approximation")? {
        0 => Approximation::Exact,
        1 => Approximation::Vfe,
        a => return Err(format!("unknown approximation {a}")),
    };
    let sparse = if d.flag("sparse record")? {
        let reason = d.str("sparse reason")?;
        let requested = d.len("requested")?;
        let used = d.len("used")?;
        let candidates = d.len("candidates")?;
        let n_rows = d.count("inducing rows", 8)?;
        let rows = (0..n_rows)
            .map(|_| d.len("inducing rows"))
            .collect::<std::result::Result<Vec<usize>, String>>()?;
        if rows.len() != m || rows.iter().any(|&r| r >= n_labels) {
            return Err(format!(
                "{} inducing rows for {m} training rows among {n_labels} labels",
                rows.len()
            ));
        }
        Some(SparseInfo {
            reason,
            requested,
            used,
            candidates,
            rows,
            elbo: d.f64("elbo")?,
            factor_jitter: d.f64("factor jitter")?,
            choose_seconds: d.f64("choose seconds")?,
            pass_seconds: d.f64("pass seconds")?,
            passes: d.len("passes")?,
            product: d.str("product")?,
            product_fallbacks: d.len("product fallbacks")?,
        })
    } else {
        None
    };
    if (approximation == Approximation::Vfe) != sparse.is_some() {
        return Err("the approximation and the sparse record disagree".into());
    }
    if d.pos != d.buf.len() {
        return Err(format!(
            "{} bytes left after the last field",
            d.buf.len() - d.pos
        ));
    }
    let gp = FittedGp {
        kernel: Kernel { kind, lengthscale },
        signal_var,
        noise,
        y_mean,
        y_sd,
        y_best,
        alpha,
        chol,
        train,
        info: FitInfo {
            jitter,
            log_marginal_likelihood,
            optimised,
            evaluations,
            seconds,
            approximation,
            sparse,
        },
    };
    FittedModel::new(
        gp,
        ModelOrigin {
            provenance,
            minimize,
            labeled_ids,
            label_values,
        },
    )
    .map_err(|e| e.to_string())
}

/// Appends little-endian fields.
#[derive(Default)]
struct Encoder(Vec<u8>);

impl Encoder {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, v: usize) {
        self.u64(v as u64);
    }
    fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
}

/// Reads little-endian fields, each failure naming the field.
struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn take(&mut self, n: usize, what: &str) -> std::result::Result<&[u8], String> {
        if self.buf.len() - self.pos < n {
            return Err(format!("payload ends inside {what}"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// Fails unless `count` items of `size` bytes fit in what is left.
    fn ensure(&self, count: usize, size: usize, what: &str) -> std::result::Result<(), String> {
        match count.checked_mul(size) {
            Some(b) if b <= self.buf.len() - self.pos => Ok(()),
            _ => Err(format!(
                "{what}: {count} items announced, more than the file holds"
            )),
        }
    }
    fn u8(&mut self, what: &str) -> std::result::Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    fn flag(&mut self, what: &str) -> std::result::Result<bool, String> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(format!("{what}: expected 0 or 1, got {v}")),
        }
    }
    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self, what: &str) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }
    fn len(&mut self, what: &str) -> std::result::Result<usize, String> {
        usize::try_from(self.u64(what)?).map_err(|_| format!("{what} does not fit in memory"))
    }
    /// A list length, checked against the bytes left for items of at least `size` bytes.
    fn count(&mut self, what: &str, size: usize) -> std::result::Result<usize, String> {
        let n = self.len(what)?;
        self.ensure(n, size, what)?;
        Ok(n)
    }
    fn f64(&mut self, what: &str) -> std::result::Result<f64, String> {
        Ok(f64::from_bits(self.u64(what)?))
    }
    fn finite(&mut self, what: &str) -> std::result::Result<f64, String> {
        let v = self.f64(what)?;
        if v.is_finite() {
            Ok(v)
        } else {
            Err(format!("{what} is {v}, expected a finite number"))
        }
    }
    fn str(&mut self, what: &str) -> std::result::Result<String, String> {
        let n = self.count(what, 1)?;
        let bytes = self.take(n, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }
}
