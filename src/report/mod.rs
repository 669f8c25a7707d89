//! Output files: the batch CSV, the JSON summary, curves, plots, reports, pools and labels.
//! Every one is written through [`output`]: declared with the run's inputs, checked before any
//! work, staged beside its destination and renamed into place with the rest of its set.

pub mod npz;
pub mod output;
pub mod plot;
pub mod stream;

use std::path::{Path, PathBuf};

pub use npz::CsrNpzWriter;
pub use output::{remove_staged, staged_paths, OutputSet, Outputs, ScratchFile, StagedFile};
pub use stream::FpsWriter;

use crate::engine::Pick;
use crate::error::{Error, Result};

/// Writes the batch as CSV: `rank,id,index,score,mean,sd`.
pub fn write_batch_csv(set: &mut OutputSet, path: &Path, picks: &[Pick]) -> Result<()> {
    set.write(path, |w| {
        let mut csv = csv::Writer::from_writer(w);
        csv.write_record(["rank", "id", "index", "score", "mean", "sd"])?;
        for p in picks {
            csv.write_record([
                p.rank.to_string(),
                p.id.clone(),
                p.index.to_string(),
                p.score.to_string(),
                p.mean.to_string(),
                p.sd.to_string(),
            ])?;
        }
        csv.flush()
    })
}

/// Writes a Pareto batch as CSV: `rank,id,index,score`, then `p_feasible` when the round had
/// constraints, then `mean_NAME,sd_NAME` per label column (`columns`, in the picks' order).
pub fn write_pareto_batch_csv(
    set: &mut OutputSet,
    path: &Path,
    picks: &[crate::multi::MultiPick],
    columns: &[String],
) -> Result<()> {
    let constrained = picks.iter().any(|p| p.p_feasible.is_some());
    set.write(path, |w| {
        let mut csv = csv::Writer::from_writer(w);
        let mut header: Vec<String> = ["rank", "id", "index", "score"].map(String::from).to_vec();
        if constrained {
            header.push("p_feasible".into());
        }
        for c in columns {
            header.push(format!("mean_{c}"));
            header.push(format!("sd_{c}"));
        }
        csv.write_record(&header)?;
        for p in picks {
            let mut row = vec![
                p.rank.to_string(),
                p.id.clone(),
                p.index.to_string(),
                p.score.to_string(),
            ];
            if let Some(f) = p.p_feasible {
                row.push(f.to_string());
            }
            for (m, s) in p.mean.iter().zip(&p.sd) {
                row.push(m.to_string());
                row.push(s.to_string());
            }
            csv.write_record(&row)?;
        }
        csv.flush()
    })
}

/// Writes simulation curves as CSV: `strategy,replicate,round,labeled,metric,value`.
pub fn write_curves_csv(
    set: &mut OutputSet,
    path: &Path,
    curves: &[crate::sim::CurvePoint],
) -> Result<()> {
    set.write(path, |w| {
        let mut csv = csv::Writer::from_writer(w);
        csv.write_record([
            "strategy",
            "replicate",
            "round",
            "labeled",
            "metric",
            "value",
        ])?;
        for c in curves {
            csv.write_record([
                c.strategy.clone(),
                c.replicate.to_string(),
                c.round.to_string(),
                c.labeled.to_string(),
                c.metric.to_string(),
                c.value.to_string(),
            ])?;
        }
        csv.flush()
    })
}

/// Writes dense features as a little-endian float32 `.npy` (C order).
pub fn write_dense_npy(
    set: &mut OutputSet,
    path: &Path,
    features: &crate::data::Features,
) -> Result<()> {
    let crate::data::Features::Dense { dim, data } = features else {
        return Err(Error::param(
            "features",
            "write_dense_npy needs dense features",
        ));
    };
    let rows = data.len().checked_div(*dim).unwrap_or(0);
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
    let unpadded = 10 + dict.len() + 1;
    let header = format!(
        "{dict}{}\n",
        " ".repeat(unpadded.next_multiple_of(64) - unpadded)
    );
    set.write(path, |w| {
        w.write_all(b"\x93NUMPY\x01\x00")?;
        w.write_all(&(header.len() as u16).to_le_bytes())?;
        w.write_all(header.as_bytes())?;
        for v in data {
            w.write_all(&v.to_le_bytes())?;
        }
        Ok(())
    })
}

/// Writes bit fingerprints as chemfp FPS text (`#FPS1`, `#num_bits=`, then `hex<TAB>id`;
/// bit 0 is the least significant bit of the first byte).
pub fn write_fps(
    set: &mut OutputSet,
    path: &Path,
    features: &crate::data::Features,
    ids: &[String],
) -> Result<()> {
    let crate::data::Features::Bits { nbits, data } = features else {
        return Err(Error::param("features", "write_fps needs bit features"));
    };
    let words = crate::data::words_for(*nbits);
    set.write(path, |w| {
        writeln!(
            w,
            "#FPS1\n#num_bits={nbits}\n#software=poolrank/{}",
            env!("CARGO_PKG_VERSION")
        )?;
        for (r, id) in ids.iter().enumerate() {
            let row = &data[r * words..(r + 1) * words];
            for byte in 0..nbits.div_ceil(8) {
                write!(w, "{:02x}", (row[byte / 8] >> (8 * (byte % 8))) & 0xff)?;
            }
            writeln!(w, "\t{id}")?;
        }
        Ok(())
    })
}

/// Writes labels as CSV `id,score`.
pub fn write_labels_csv(set: &mut OutputSet, path: &Path, rows: &[(String, f64)]) -> Result<()> {
    set.write(path, |w| {
        let mut csv = csv::Writer::from_writer(w);
        csv.write_record(["id", "score"])?;
        for (id, v) in rows {
            csv.write_record([id.clone(), v.to_string()])?;
        }
        csv.flush()
    })
}

/// Writes any serialisable value as pretty JSON.
pub fn write_json<T: serde::Serialize>(set: &mut OutputSet, path: &Path, value: &T) -> Result<()> {
    set.write(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value)?;
        writeln!(w)
    })
}

/// A multi-objective simulation's outputs in `dir`: `curves.csv`, `summary.json`,
/// `hypervolume.svg`, `hypervolume.png`, `front.svg`, `front.png`.
pub fn pareto_simulation_paths(dir: &Path) -> [PathBuf; 6] {
    [
        "curves.csv",
        "summary.json",
        "hypervolume.svg",
        "hypervolume.png",
        "front.svg",
        "front.png",
    ]
    .map(|n| dir.join(n))
}

/// The outputs of a multi-objective simulation into `dir` (created if needed).
pub fn pareto_simulation_outputs(dir: &Path) -> Outputs {
    pareto_simulation_paths(dir)
        .iter()
        .fold(Outputs::new().folder(dir), |o, p| o.output(p))
}

/// Stages a multi-objective simulation's outputs ([`pareto_simulation_paths`]) in `set`.
///
/// # Errors
/// [`crate::Error::Io`] when a file cannot be written.
pub fn write_pareto_simulation(
    set: &mut OutputSet,
    dir: &Path,
    result: &crate::sim::pareto::ParetoSimResult,
) -> Result<[PathBuf; 6]> {
    let paths = pareto_simulation_paths(dir);
    write_curves_csv(set, &paths[0], &result.curves)?;
    write_json(set, &paths[1], result)?;
    plot::write_pareto_plots(set, result, [&paths[2], &paths[3]], [&paths[4], &paths[5]])?;
    Ok(paths)
}

/// A simulation's outputs in `dir`: `curves.csv`, `summary.json`, `recall.svg`, `recall.png`.
pub fn simulation_paths(dir: &Path) -> [PathBuf; 4] {
    ["curves.csv", "summary.json", "recall.svg", "recall.png"].map(|n| dir.join(n))
}

/// The outputs of a simulation into `dir` (created if needed), to add inputs to and check.
pub fn simulation_outputs(dir: &Path) -> Outputs {
    simulation_paths(dir)
        .iter()
        .fold(Outputs::new().folder(dir), |o, p| o.output(p))
}

/// Stages a simulation's outputs (see [`simulation_paths`]) in `set`, checked with
/// [`simulation_outputs`]; [`OutputSet::commit`] puts them in place. Returns their paths.
///
/// # Errors
/// [`crate::Error::Io`] when a file cannot be written.
pub fn write_simulation(
    set: &mut OutputSet,
    dir: &Path,
    result: &crate::sim::SimResult,
) -> Result<[PathBuf; 4]> {
    let paths = simulation_paths(dir);
    write_curves_csv(set, &paths[0], &result.curves)?;
    write_json(set, &paths[1], result)?;
    plot::write_plots(set, result, &paths[2], &paths[3])?;
    Ok(paths)
}

/// The files `synth` writes for a prefix.
#[derive(Clone, Debug)]
pub struct SynthPaths {
    /// `PREFIX.fps` (bit fingerprints) or `PREFIX.npy` (dense features).
    pub pool: PathBuf,
    /// `PREFIX.labels.csv`: `id,score` for every row.
    pub labels: PathBuf,
    /// `PREFIX.test_ids.txt`, for scenarios with a separate test set (`shift`).
    pub test_ids: Option<PathBuf>,
}

impl SynthPaths {
    /// The files for `prefix`: fingerprints when `bits`, a test-ids file when `test_set`.
    pub fn new(prefix: &Path, bits: bool, test_set: bool) -> Self {
        let prefix = prefix.to_string_lossy();
        let at = |suffix: &str| PathBuf::from(format!("{prefix}{suffix}"));
        SynthPaths {
            pool: at(if bits { ".fps" } else { ".npy" }),
            labels: at(".labels.csv"),
            test_ids: test_set.then(|| at(".test_ids.txt")),
        }
    }

    /// The outputs, to check before any work.
    pub fn outputs(&self) -> Outputs {
        Outputs::new()
            .output(&self.pool)
            .output(&self.labels)
            .outputs(self.test_ids.as_ref())
    }
}

/// Stages a synthetic pool in `set` (checked with [`SynthPaths::outputs`]): its features (as
/// `fingerprints` when given, else dense), the labels of every row (ids are the row numbers)
/// and the test rows.
///
/// # Errors
/// [`crate::Error::Io`] when a file cannot be written.
pub fn write_synth(
    set: &mut OutputSet,
    paths: &SynthPaths,
    data: &crate::sim::synth::Synthetic,
    fingerprints: Option<&crate::data::Features>,
) -> Result<()> {
    let pool = &data.pool;
    let ids: Vec<String> = (0..pool.y.len()).map(|i| i.to_string()).collect();
    match fingerprints {
        Some(f) => write_fps(set, &paths.pool, f, &ids)?,
        None => write_dense_npy(set, &paths.pool, &pool.features)?,
    }
    let rows: Vec<(String, f64)> = ids.into_iter().zip(pool.y.iter().copied()).collect();
    write_labels_csv(set, &paths.labels, &rows)?;
    if let Some(path) = &paths.test_ids {
        let text: String = data.test_rows.iter().map(|i| format!("{i}\n")).collect();
        set.write(path, |w| w.write_all(text.as_bytes()))?;
    }
    Ok(())
}

/// A diagnostic report's outputs in `dir`: `report.json` and the self-contained `report.html`.
pub fn diagnosis_paths(dir: &Path) -> [PathBuf; 2] {
    [dir.join("report.json"), dir.join("report.html")]
}

/// The outputs of a diagnosis into `dir` (created if needed), to add inputs to and check.
pub fn diagnosis_outputs(dir: &Path) -> Outputs {
    diagnosis_paths(dir)
        .iter()
        .fold(Outputs::new().folder(dir), |o, p| o.output(p))
}

/// Stages a diagnostic report (see [`diagnosis_paths`]) in `set`, checked with
/// [`diagnosis_outputs`]. Returns their paths.
///
/// # Errors
/// [`crate::Error::Io`] when a file cannot be written.
pub fn write_diagnosis(
    set: &mut OutputSet,
    dir: &Path,
    report: &crate::diagnose::Report,
) -> Result<[PathBuf; 2]> {
    let paths = diagnosis_paths(dir);
    write_json(set, &paths[0], report)?;
    let page = crate::diagnose::render::html(report);
    set.write(&paths[1], |w| w.write_all(page.as_bytes()))?;
    Ok(paths)
}

/// Stages a multi-objective diagnostic report in the same two files as [`write_diagnosis`]:
/// the JSON of the whole [`MultiReport`](crate::diagnose::MultiReport) and its HTML page.
/// Returns their paths.
///
/// # Errors
/// [`crate::Error::Io`] when a file cannot be written.
pub fn write_multi_diagnosis(
    set: &mut OutputSet,
    dir: &Path,
    report: &crate::diagnose::MultiReport,
) -> Result<[PathBuf; 2]> {
    let paths = diagnosis_paths(dir);
    write_json(set, &paths[0], report)?;
    let page = crate::diagnose::render::multi_html(report);
    set.write(&paths[1], |w| w.write_all(page.as_bytes()))?;
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritable_path_is_an_error_naming_it() {
        let err = Outputs::new()
            .output("/nonexistent-dir/x/out.csv")
            .check()
            .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-dir/x/out.csv"),
            "{err}"
        );
    }
}
