//! `poolrank featurize`: a molecule file streamed chunk by chunk through the parallel
//! featurizer into a count `.npz` (plus an ids file) or an FPS file, in input order.

use std::path::{Path, PathBuf};

use super::input::SmilesSource;
use super::{featurize_records, MorganParams};
use crate::data::ids::{id_hash, RepeatedIds};
use crate::error::{Error, Result};
use crate::report::{CsrNpzWriter, FpsWriter, OutputSet, Outputs, StagedFile};

/// What `featurize` writes, chosen by the output's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// scipy.sparse CSR `.npz` (counts, or 0/1 with bits) and a `.ids.txt` beside it.
    Npz,
    /// chemfp FPS text, plain or gzip (bits).
    Fps,
}

impl OutputFormat {
    /// `.npz` → [`OutputFormat::Npz`], `.fps`/`.fps.gz` → [`OutputFormat::Fps`].
    pub fn from_path(path: &Path) -> Result<Self> {
        let name = path
            .file_name()
            .map(|s| s.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if name.ends_with(".npz") {
            Ok(OutputFormat::Npz)
        } else if name.ends_with(".fps") || name.ends_with(".fps.gz") {
            Ok(OutputFormat::Fps)
        } else {
            Err(Error::param(
                "out",
                format!(
                    "{}: the extension must be .npz (count fingerprints) or .fps/.fps.gz (bits)",
                    path.display()
                ),
            ))
        }
    }
}

/// A `featurize` run.
#[derive(Clone, Debug)]
pub struct FeaturizeConfig {
    /// The molecules.
    pub input: SmilesSource,
    /// Morgan radius (0 to 3).
    pub radius: u32,
    /// Folded width (128, 256, 512, 1024 or 2048).
    pub nbits: usize,
    /// Counts or bits; `None`: counts for `.npz`, bits for FPS.
    pub counts: Option<bool>,
    /// The output file.
    pub out: PathBuf,
    /// Where to list refused molecules instead of stopping at the first.
    pub skip_invalid: Option<PathBuf>,
    /// Molecules read and featurized at a time (memory grows with it).
    pub chunk: usize,
    /// Show a progress bar.
    pub progress: bool,
}

impl FeaturizeConfig {
    /// Defaults: radius 2, 2048 features, counts/bits by output, chunks of 16,384 molecules.
    pub fn new(input: SmilesSource, out: impl Into<PathBuf>) -> Self {
        FeaturizeConfig {
            input,
            radius: 2,
            nbits: 2048,
            counts: None,
            out: out.into(),
            skip_invalid: None,
            chunk: 16_384,
            progress: false,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FeaturizeSummary {
    /// Molecules written.
    pub molecules: usize,
    /// Molecules refused (only with `skip_invalid`).
    pub rejected: usize,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Molecules read per second.
    pub molecules_per_second: f64,
    /// The output format.
    pub format: OutputFormat,
    /// The ids file written beside a `.npz`.
    pub ids: Option<PathBuf>,
    /// The provenance line recorded in the output.
    pub provenance: String,
}

/// The ids file written beside a `.npz`: `lib.npz` → `lib.ids.txt`.
pub fn ids_path(npz: &Path) -> PathBuf {
    let name = npz
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".npz")
        .or_else(|| name.strip_suffix(".NPZ"))
        .unwrap_or(&name);
    npz.with_file_name(format!("{stem}.ids.txt"))
}

enum Sink {
    Npz(Box<(CsrNpzWriter, StagedFile)>),
    Fps(Box<FpsWriter>),
}

/// The run's files: the molecules in; the output, its ids file and the reject list out.
fn outputs(cfg: &FeaturizeConfig, ids: Option<&Path>) -> Result<OutputSet> {
    Outputs::new()
        .input(&cfg.input.path)
        .output(&cfg.out)
        .outputs(ids)
        .outputs(cfg.skip_invalid.as_deref())
        .check()
}

/// Featurizes `cfg.input` into `cfg.out`; all outputs appear together or not at all (see
/// [`crate::report::output`]: an output that is the input or another output is refused first).
///
/// Memory: one chunk of molecules plus 8 bytes per molecule (id hashes for the duplicate check;
/// a repeated hash is confirmed against the real ids by a second pass over the ids).
pub fn featurize_file(cfg: &FeaturizeConfig) -> Result<FeaturizeSummary> {
    let t0 = std::time::Instant::now();
    let format = OutputFormat::from_path(&cfg.out)?;
    let counts = match (format, cfg.counts) {
        (OutputFormat::Fps, Some(true)) => {
            return Err(Error::param(
                "counts",
                "FPS files hold bits; write counts to a .npz or write bits only",
            ))
        }
        (_, Some(c)) => c,
        (OutputFormat::Npz, None) => true,
        (OutputFormat::Fps, None) => false,
    };
    if cfg.chunk == 0 {
        return Err(Error::param("chunk", "must be at least 1"));
    }
    // A repeated id is confirmed by a second pass over the input, which a pipe cannot give.
    let meta = std::fs::metadata(&cfg.input.path).map_err(|e| Error::io(&cfg.input.path, e))?;
    if !meta.is_file() {
        return Err(Error::format(
            &cfg.input.path,
            "the SMILES input is not a regular file (a pipe, socket, device or folder); featurize \
             may read it twice (to confirm a repeated id), so save it to a file first",
        ));
    }
    let params = MorganParams {
        radius: cfg.radius,
        nbits: cfg.nbits,
        counts,
    };
    let morgan = params.check()?;
    let provenance = params.provenance();
    let ids = (format == OutputFormat::Npz).then(|| ids_path(&cfg.out));
    let mut set = outputs(cfg, ids.as_deref())?;
    let mut reader = cfg.input.open()?;
    let mut sink = match &ids {
        Some(ids) => Sink::Npz(Box::new((
            CsrNpzWriter::create(&set, &cfg.out, params.nbits, Some(&provenance))?,
            set.stage(ids, false)?,
        ))),
        None => Sink::Fps(Box::new(FpsWriter::create(
            &set,
            &cfg.out,
            params.nbits,
            Some(&provenance),
        )?)),
    };
    let mut rejects = match &cfg.skip_invalid {
        Some(p) => {
            let mut f = set.stage(p, false)?;
            f.write_bytes(b"line\tid\tsmiles\treason\n")?;
            Some(f)
        }
        None => None,
    };
    // The first refused molecule, for the error when every molecule is refused.
    let mut first_reject: Option<String> = None;
    let bar = crate::progress::progress_bar(cfg.progress, None, "molecules");
    let (mut hashes, mut records) = (Vec::new(), Vec::new());
    let (mut written, mut rejected) = (0usize, 0usize);
    while reader.read_chunk(cfg.chunk, &mut records)? {
        let fps = featurize_records(&morgan, &records);
        for (rec, fp) in records.iter().zip(fps) {
            hashes.push(id_hash(&rec.id));
            let fp = match (fp, &mut rejects) {
                (Ok(fp), _) => fp,
                (Err(reason), Some(f)) => {
                    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
                    first_reject.get_or_insert_with(|| {
                        format!("line {} ({:?}): {reason}", rec.line, rec.id)
                    });
                    f.write_bytes(
                        format!(
                            "{}\t{}\t{}\t{}\n",
                            rec.line,
                            clean(&rec.id),
                            clean(&rec.smiles),
                            clean(&reason)
                        )
                        .as_bytes(),
                    )?;
                    rejected += 1;
                    continue;
                }
                (Err(reason), None) => {
                    return Err(Error::parse(
                        &cfg.input.path,
                        rec.line,
                        format!(
                            "molecule {:?} ({}): {reason}; use --skip-invalid FILE to leave such \
                             molecules out and list them",
                            rec.id, rec.smiles
                        ),
                    ))
                }
            };
            match &mut sink {
                Sink::Npz(npz) => {
                    let (w, ids) = &mut **npz;
                    w.push_row(&fp.pairs)?;
                    ids.write_bytes(rec.id.as_bytes())?;
                    ids.write_bytes(b"\n")?;
                }
                Sink::Fps(w) => w.push(&fp.words(params.nbits), &rec.id)?,
            }
            written += 1;
        }
        bar.inc(records.len() as u64);
    }
    bar.finish_and_clear();
    find_duplicate_ids(&cfg.input, hashes)?;
    if written == 0 {
        // All or nothing holds here too (the reject list is not kept): the error says why.
        return Err(match first_reject {
            Some(first) => Error::format(
                &cfg.input.path,
                format!(
                    "every molecule was refused ({rejected}), nothing was written; the first, \
                     {first}"
                ),
            ),
            None => Error::EmptyPool {
                path: cfg.input.path.clone(),
            },
        });
    }
    match sink {
        Sink::Npz(npz) => {
            let (w, ids) = *npz;
            w.finish(&mut set)?;
            set.finish(ids)?;
        }
        Sink::Fps(w) => w.finish(&mut set)?,
    }
    if let Some(f) = rejects {
        set.finish(f)?;
    }
    set.commit()?;
    let seconds = t0.elapsed().as_secs_f64();
    Ok(FeaturizeSummary {
        molecules: written,
        rejected,
        seconds,
        molecules_per_second: (written + rejected) as f64 / seconds.max(1e-9),
        format,
        ids,
        provenance,
    })
}

/// Reports the first repeated id (with both lines); a repeated hash alone is not enough.
fn find_duplicate_ids(input: &SmilesSource, hashes: Vec<u64>) -> Result<()> {
    let Some(mut repeated) = RepeatedIds::from_hashes(hashes) else {
        return Ok(());
    };
    let mut reader = input.open()?;
    let mut records = Vec::new();
    while reader.read_chunk(1 << 14, &mut records)? {
        for rec in records.drain(..) {
            if let Some(first) = repeated.earlier(&rec.id, rec.line) {
                return Err(Error::DuplicateId {
                    path: input.path.clone(),
                    id: rec.id,
                    where_: format!("lines {first} and {}", rec.line),
                });
            }
        }
    }
    Ok(())
}
