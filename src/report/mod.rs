//! Output files: the batch CSV and the JSON summary, written atomically (a temporary file in the
//! same folder, renamed into place), so a failure never leaves a partial file behind.

pub mod npz;
pub mod plot;
pub mod stream;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use npz::CsrNpzWriter;
pub use stream::{AtomicFile, FpsWriter};

use crate::engine::Pick;
use crate::error::{Error, Result};

/// Writes `path` through `fill`: all or nothing.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::io(path, std::io::Error::other("not a file path")))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::new(file);
        fill(&mut w)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Writes the batch as CSV: `rank,id,index,score,mean,sd`.
pub fn write_batch_csv(path: &Path, picks: &[Pick]) -> Result<()> {
    write_atomic(path, |w| {
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

/// Writes simulation curves as CSV: `strategy,replicate,round,labeled,metric,value`.
pub fn write_curves_csv(path: &Path, curves: &[crate::sim::CurvePoint]) -> Result<()> {
    write_atomic(path, |w| {
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

/// One file of a [`write_all`]: its path and the function that writes it there.
pub type PendingWrite<'a> = (&'a Path, Box<dyn FnOnce(&Path) -> Result<()> + 'a>);

/// Writes several files all or nothing: if one fails, those already written are removed.
pub fn write_all(writes: Vec<PendingWrite<'_>>) -> Result<()> {
    let mut done: Vec<&Path> = Vec::new();
    for (path, write) in writes {
        if let Err(e) = write(path) {
            for p in done {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
        done.push(path);
    }
    Ok(())
}

/// Writes dense features as a little-endian float32 `.npy` (C order).
pub fn write_dense_npy(path: &Path, features: &crate::data::Features) -> Result<()> {
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
    write_atomic(path, |w| {
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
pub fn write_fps(path: &Path, features: &crate::data::Features, ids: &[String]) -> Result<()> {
    let crate::data::Features::Bits { nbits, data } = features else {
        return Err(Error::param("features", "write_fps needs bit features"));
    };
    let words = crate::data::words_for(*nbits);
    write_atomic(path, |w| {
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
pub fn write_labels_csv(path: &Path, rows: &[(String, f64)]) -> Result<()> {
    write_atomic(path, |w| {
        let mut csv = csv::Writer::from_writer(w);
        csv.write_record(["id", "score"])?;
        for (id, v) in rows {
            csv.write_record([id.clone(), v.to_string()])?;
        }
        csv.flush()
    })
}

/// Writes any serialisable value as pretty JSON.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value)?;
        writeln!(w)
    })
}

/// Writes a simulation's outputs into `dir` (created if needed), all or none:
/// `curves.csv`, `summary.json`, `recall.svg` and `recall.png`. Returns their paths.
///
/// # Errors
/// [`crate::Error::Io`] when the folder or a file cannot be written (nothing is left).
pub fn write_simulation(dir: &Path, result: &crate::sim::SimResult) -> Result<[PathBuf; 4]> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let paths = [
        dir.join("curves.csv"),
        dir.join("summary.json"),
        dir.join("recall.svg"),
        dir.join("recall.png"),
    ];
    let png = paths[3].clone();
    write_all(vec![
        (
            paths[0].as_path(),
            Box::new(|p| write_curves_csv(p, &result.curves)),
        ),
        (paths[1].as_path(), Box::new(|p| write_json(p, result))),
        (
            paths[2].as_path(),
            Box::new(move |p| plot::write_plots(result, p, &png)),
        ),
    ])?;
    Ok(paths)
}

/// Writes a diagnostic report into `dir` (created if needed), both or neither:
/// `report.json` and the self-contained `report.html`. Returns their paths.
///
/// # Errors
/// [`crate::Error::Io`] when the folder or a file cannot be written (nothing is left).
pub fn write_diagnosis(dir: &Path, report: &crate::diagnose::Report) -> Result<[PathBuf; 2]> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let paths = [dir.join("report.json"), dir.join("report.html")];
    write_all(vec![
        (paths[0].as_path(), Box::new(|p| write_json(p, report))),
        (
            paths[1].as_path(),
            Box::new(|p| {
                let page = crate::diagnose::render::html(report);
                write_atomic(p, |w| w.write_all(page.as_bytes()))
            }),
        ),
    ])?;
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let err = write_atomic(&path, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("boom"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_atomic(&path, |w| w.write_all(b"ok")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"ok");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn unwritable_path_is_an_io_error_naming_it() {
        let err = write_atomic(Path::new("/nonexistent-dir/x/out.csv"), |w| {
            w.write_all(b"x")
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-dir/x/out.csv"),
            "{err}"
        );
    }
}
