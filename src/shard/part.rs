//! A part: one task's best candidates and what the merge checks, as text.
//!
//! ```text
//! #poolrank-part 1
//! #meta {"poolrank":"0.1.0","model":{…},"features":{…},"settings":{…},"task":{…},…}
//! #score  index  id  mean  sd  zmean  zvar
//! 2.5131  1047  Z1234  -7.25  0.31  1.204  0.0871
//! …
//! #end  1000  5d41402a
//! ```
//!
//! Fields are separated by tabs. The rows are the shard's best `k`, best first: the score as
//! `f32`, the global row, the id (tab, newline, carriage return and backslash escaped as `\t`,
//! `\n`, `\r`, `\\`), the mean and sd in label units as `f64`, the latent mean and variance
//! (standardised) as `f32`, every number in its shortest form that reads back to the same
//! bits. With a shortlist (a diverse batch, a similarity cap) each row also has its features
//! in a last column, and the pending candidates the shard holds come before the rows as
//! `#pending  PLACE  INDEX  FEATURES` lines (their place in the pending list, their global
//! row). Features are written as a fingerprint's 64-bit words in hex (16 digits each), a
//! count row's `index:count` pairs or a dense row's values, comma-separated. The last line
//! gives the number of rows and the CRC-32 of every byte before it, so a truncated or altered
//! part is refused.

use std::path::{Path, PathBuf};

use crate::acquisition::Acquisition;
use crate::data::{words_for, FeatureKind, Features};
use crate::engine::{PendingRow, ShardRow, ShardSummary};
use crate::error::{Error, Result};
use crate::report::OutputSet;
use crate::select::BatchMode;

use super::FileStamp;

/// The first line of every part.
pub const MAGIC: &str = "#poolrank-part 1";
const META: &str = "#meta ";
const COLUMNS: &str = "#score\tindex\tid\tmean\tsd\tzmean\tzvar";
const PENDING: &str = "#pending\t";
const END: &str = "#end\t";

/// The model a part was scored with.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelStamp {
    /// The model file as the task named it.
    pub path: PathBuf,
    /// XXH3-64 of the model file's bytes (16 hex digits).
    pub xxh3: String,
    /// Its labeled candidates.
    pub labeled: usize,
}

/// The pending candidates a part excluded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingStamp {
    /// XXH3-64 of the ids, one per line, in the file's order.
    pub xxh3: String,
    /// Distinct pending ids that are not also labeled: the shards together must find each once.
    pub ids: usize,
}

/// The settings every part of one merge must share.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartSettings {
    /// The acquisition with its weights.
    pub acquisition: Acquisition,
    /// Run seed.
    pub seed: u64,
    /// Round number.
    pub round: u32,
    /// The batch: each task keeps its best `k` (or its best of the shortlist's size).
    pub k: usize,
    /// Top-k or diverse.
    pub mode: BatchMode,
    /// The similarity cap between picks.
    pub max_sim: Option<f64>,
    /// The shortlist a diverse batch or a similarity cap picks from (`None` for a top-k).
    pub shortlist: Option<usize>,
    /// The pending candidates, when there are any.
    pub pending: Option<PendingStamp>,
}

impl PartSettings {
    /// The first setting in which `other` differs, as `(name, ours, theirs)`.
    pub fn difference(&self, other: &PartSettings) -> Option<(&'static str, String, String)> {
        let pending = |p: &Option<PendingStamp>| match p {
            Some(p) => format!("{} ids (checksum {})", p.ids, p.xxh3),
            None => "none".to_string(),
        };
        [
            (
                "acquisition",
                format!("{:?}", self.acquisition),
                format!("{:?}", other.acquisition),
            ),
            ("seed", self.seed.to_string(), other.seed.to_string()),
            ("round", self.round.to_string(), other.round.to_string()),
            ("k", self.k.to_string(), other.k.to_string()),
            (
                "batch mode",
                format!("{:?}", self.mode),
                format!("{:?}", other.mode),
            ),
            (
                "similarity cap",
                format!("{:?}", self.max_sim),
                format!("{:?}", other.max_sim),
            ),
            (
                "shortlist",
                format!("{:?}", self.shortlist),
                format!("{:?}", other.shortlist),
            ),
            ("pending", pending(&self.pending), pending(&other.pending)),
        ]
        .into_iter()
        .find(|(_, a, b)| a != b)
    }
}

/// The shard list a part's task came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListStamp {
    /// The list file as the task named it.
    pub path: PathBuf,
    /// XXH3-64 of its bytes.
    pub xxh3: String,
    /// Shards it names.
    pub shards: usize,
    /// Shards per task.
    pub per_task: usize,
    /// Tasks: every one must have a part.
    pub tasks: usize,
}

/// Which rows of the pool a part covers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartTask {
    /// The shard list and the task's index in it; `None` for shards named directly (with a
    /// row offset).
    pub list: Option<ListStamp>,
    /// The task's index in the list.
    pub index: Option<usize>,
    /// First global row.
    pub start: usize,
    /// One past the last global row.
    pub end: usize,
    /// A part merged from others ([`crate::shard::merge_to_part`]): the tasks it holds, in
    /// row order, and `index` is `None`; empty for the part of one task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pieces: Vec<Piece>,
}

/// The rows of one task within a part.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Piece {
    /// The task's index in the shard list (`None` for shards named directly).
    pub index: Option<usize>,
    /// First global row.
    pub start: usize,
    /// One past the last global row.
    pub end: usize,
    /// The backend that scored it.
    pub backend: String,
}

/// One shard file of a part, stamped when it was scored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardStamp {
    /// The file's size, time and checksum.
    #[serde(flatten)]
    pub file: FileStamp,
    /// Its first global row.
    pub start: usize,
    /// Its rows.
    pub rows: usize,
}

/// Everything a part says besides its rows.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartMeta {
    /// The poolrank version that wrote it.
    pub poolrank: String,
    /// The model.
    pub model: ModelStamp,
    /// The pool's features.
    pub features: FeatureKind,
    /// The settings.
    pub settings: PartSettings,
    /// The rows it covers.
    pub task: PartTask,
    /// Its shard files.
    pub shards: Vec<ShardStamp>,
    /// The floor it was scored with: the `k`-th best of other parts, below which it kept
    /// nothing ([`crate::engine::run_score_shard`]).
    #[serde(default)]
    pub floor: Option<FloorStamp>,
    /// What the scoring did.
    pub summary: ShardSummary,
}

impl PartMeta {
    /// The tasks the part holds, in row order: its own, or those of the parts it was merged
    /// from.
    pub fn pieces(&self) -> Vec<Piece> {
        if !self.task.pieces.is_empty() {
            return self.task.pieces.clone();
        }
        vec![Piece {
            index: self.task.index,
            start: self.task.start,
            end: self.task.end,
            backend: self.summary.backend.clone(),
        }]
    }
}

/// A floor a part was scored with.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FloorStamp {
    /// The score.
    pub score: f32,
    /// The global row that had it.
    pub index: usize,
}

/// What a part holds.
#[derive(Clone, Debug, PartialEq)]
pub struct PartData {
    /// Its meta line.
    pub meta: PartMeta,
    /// With a shortlist: the pending candidates the shard holds.
    pub pending: Vec<PendingRow>,
    /// The shard's best candidates, best first.
    pub rows: Vec<ShardRow>,
}

/// Writes a part into the declared output `path` of `set`.
///
/// # Errors
/// [`Error::Io`] naming the part.
pub fn write_part(set: &mut OutputSet, path: &Path, part: &PartData) -> Result<()> {
    let bytes = part_bytes(part);
    set.write(path, |w| w.write_all(&bytes))
}

/// The bytes of a part.
pub fn part_bytes(part: &PartData) -> Vec<u8> {
    use std::fmt::Write as _;
    let PartData {
        meta,
        pending,
        rows,
    } = part;
    let mut s = String::with_capacity(512 + rows.len() * 80);
    let json = serde_json::to_string(meta).expect("a part's meta serialises");
    let _ = write!(s, "{MAGIC}\n{META}{json}\n");
    for p in pending {
        let _ = write!(s, "{PENDING}{}\t{}\t", p.place, p.index);
        encode_features(&p.row, &mut s);
        s.push('\n');
    }
    s.push_str(COLUMNS);
    if meta.settings.shortlist.is_some() {
        s.push_str("\tfeatures");
    }
    s.push('\n');
    for r in rows {
        let _ = write!(s, "{}\t{}\t", r.score, r.index);
        escape_into(&r.id, &mut s);
        let _ = write!(
            s,
            "\t{}\t{}\t{}\t{}",
            r.mean, r.sd, r.latent_mean, r.latent_var
        );
        if let Some(f) = &r.row {
            s.push('\t');
            encode_features(f, &mut s);
        }
        s.push('\n');
    }
    let crc = crc32fast::hash(s.as_bytes());
    let _ = writeln!(s, "{END}{}\t{crc:08x}", rows.len());
    s.into_bytes()
}

/// One row of features as text (see the module doc).
fn encode_features(f: &Features, out: &mut String) {
    use std::fmt::Write as _;
    match f {
        Features::Bits { data, .. } => {
            for w in data {
                let _ = write!(out, "{w:016x}");
            }
        }
        Features::Counts {
            indices, values, ..
        } => {
            for (n, (i, c)) in indices.iter().zip(values).enumerate() {
                let _ = write!(out, "{}{i}:{c}", if n > 0 { "," } else { "" });
            }
        }
        Features::Dense { data, .. } => {
            for (n, v) in data.iter().enumerate() {
                let _ = write!(out, "{}{v}", if n > 0 { "," } else { "" });
            }
        }
    }
}

/// One row of features of `kind` from its text; `None` when it does not read.
fn decode_features(kind: FeatureKind, text: &str) -> Option<Features> {
    let items = || text.split(',').filter(|s| !s.is_empty());
    Some(match kind {
        FeatureKind::Bits { nbits } => {
            let words = words_for(nbits);
            if text.len() != 16 * words || !text.is_ascii() {
                return None;
            }
            let data = (0..words)
                .map(|w| u64::from_str_radix(&text[16 * w..16 * w + 16], 16).ok())
                .collect::<Option<Vec<u64>>>()?;
            Features::Bits { nbits, data }
        }
        FeatureKind::Counts { ndim } => {
            let (mut indices, mut values) = (Vec::new(), Vec::new());
            for item in items() {
                let (i, c) = item.split_once(':')?;
                let (i, c): (u32, u32) = (i.parse().ok()?, c.parse().ok()?);
                let ascending = indices.last().is_none_or(|&last| i > last);
                if !ascending || i as usize >= ndim || c == 0 {
                    return None;
                }
                indices.push(i);
                values.push(c);
            }
            Features::Counts {
                ndim,
                indptr: vec![0, indices.len()],
                indices,
                values,
            }
        }
        FeatureKind::Dense { dim } => {
            let data = items()
                .map(|v| v.parse::<f32>().ok())
                .collect::<Option<Vec<f32>>>()?;
            if data.len() != dim {
                return None;
            }
            Features::Dense { dim, data }
        }
    })
}

fn escape_into(id: &str, out: &mut String) {
    if !id.contains(['\t', '\n', '\r', '\\']) {
        out.push_str(id);
        return;
    }
    for c in id.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
}

fn unescape(field: &str) -> Option<String> {
    if !field.contains('\\') {
        return Some(field.to_string());
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            '\\' => '\\',
            _ => return None,
        });
    }
    Some(out)
}

/// A part read into memory and checked whole (magic, checksum, row count); its rows are
/// parsed on demand ([`Part::for_each_row`]).
pub struct Part {
    /// The file.
    pub path: PathBuf,
    /// Its meta line.
    pub meta: PartMeta,
    /// The pending candidates it holds (with a shortlist).
    pub pending: Vec<PendingRow>,
    text: String,
    /// Byte offset of the first row, and its 1-based line.
    body: (usize, usize),
    /// Byte offset of the `#end` line.
    end: usize,
}

impl Part {
    /// Reads and checks a part.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::Format`] for a file that is not a part, is truncated or altered
    /// (its checksum or row count is not the one its last line gives); [`Error::Parse`] naming
    /// the line of a meta line that does not read.
    pub fn read(path: &Path) -> Result<Part> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::format(path, "not a poolrank part (not UTF-8 text)"))?;
        if !text.starts_with(MAGIC) || text.as_bytes().get(MAGIC.len()) != Some(&b'\n') {
            return Err(Error::format(
                path,
                format!("not a poolrank part (its first line is not {MAGIC:?})"),
            ));
        }
        let truncated = || {
            Error::format(
                path,
                "the part is truncated: its last line is not `#end`; score the task again",
            )
        };
        let body_end = text.strip_suffix('\n').ok_or_else(truncated)?;
        let end = body_end.rfind('\n').map_or(0, |i| i + 1);
        let last = body_end[end..].strip_prefix(END).ok_or_else(truncated)?;
        let (count, crc) = last.split_once('\t').ok_or_else(truncated)?;
        let count: usize = count.parse().map_err(|_| truncated())?;
        let actual = format!("{:08x}", crc32fast::hash(&text.as_bytes()[..end]));
        if crc != actual {
            return Err(Error::format(
                path,
                format!("the part's checksum is {actual}, its last line says {crc}: the file was altered or damaged; score the task again"),
            ));
        }
        let meta_start = MAGIC.len() + 1;
        let meta_end = meta_start + text[meta_start..].find('\n').ok_or_else(truncated)?;
        let meta_line = text[meta_start..meta_end]
            .strip_prefix(META)
            .ok_or_else(|| Error::parse(path, 2, "expected the `#meta` line"))?;
        let meta: PartMeta = serde_json::from_str(meta_line)
            .map_err(|e| Error::parse(path, 2, format!("the meta line does not read: {e}")))?;
        // The pending lines, then the column names.
        let mut at = meta_end + 1;
        let mut line_no = 3;
        let mut pending = Vec::new();
        loop {
            let line_end = at + text[at..end].find('\n').ok_or_else(truncated)?;
            let line = &text[at..line_end];
            at = line_end + 1;
            let Some(fields) = line.strip_prefix(PENDING) else {
                let want = match meta.settings.shortlist {
                    Some(_) => format!("{COLUMNS}\tfeatures"),
                    None => COLUMNS.to_string(),
                };
                if line != want {
                    return Err(Error::parse(path, line_no, format!("expected {want:?}")));
                }
                break;
            };
            let bad = || {
                Error::parse(
                    path,
                    line_no,
                    format!(
                        "expected #pending, its place, its row and its {} features",
                        meta.features
                    ),
                )
            };
            let mut f = fields.split('\t');
            let (Some(place), Some(index), Some(row), None) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                return Err(bad());
            };
            pending.push(PendingRow {
                place: place.parse().map_err(|_| bad())?,
                index: index.parse().map_err(|_| bad())?,
                row: decode_features(meta.features, row).ok_or_else(bad)?,
            });
            line_no += 1;
        }
        let body = at;
        let rows = text[body.min(end)..end]
            .bytes()
            .filter(|&b| b == b'\n')
            .count();
        if rows != count || rows != meta.summary.kept {
            return Err(Error::format(
                path,
                format!(
                    "holds {rows} rows, its last line says {count} and its meta {}",
                    meta.summary.kept
                ),
            ));
        }
        Ok(Part {
            path: path.to_path_buf(),
            meta,
            pending,
            text,
            body: (body, line_no + 1),
            end,
        })
    }

    /// Calls `f(score, index, line)` for every row, best first, with a closure that parses
    /// the row whole when `f` wants it (`f` decides from the score and index whether the row
    /// is worth parsing).
    ///
    /// # Errors
    /// [`Error::Parse`] naming the line of a row that does not read; `f`'s.
    pub fn for_each_row(
        &self,
        mut f: impl FnMut(f32, usize, &dyn Fn() -> Result<ShardRow>) -> Result<()>,
    ) -> Result<()> {
        let (start, first_line) = self.body;
        let kind = self.meta.settings.shortlist.map(|_| self.meta.features);
        for (i, line) in self.text[start.min(self.end)..self.end]
            .split_terminator('\n')
            .enumerate()
        {
            let line_no = first_line + i;
            let bad = |what: &str| Error::parse(&self.path, line_no, what.to_string());
            let mut fields = line.splitn(3, '\t');
            let score: f32 = fields
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("score: expected a number"))?;
            let index: usize = fields
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("index: expected a row number"))?;
            let rest = fields.next().ok_or_else(|| bad("expected 7 fields"))?;
            let whole = || -> Result<ShardRow> {
                let mut f = rest.split('\t');
                let fields = [f.next(), f.next(), f.next(), f.next(), f.next()];
                let row = match kind {
                    Some(kind) => Some(
                        f.next()
                            .and_then(|t| decode_features(kind, t))
                            .ok_or_else(|| bad(&format!("features: expected {kind} features")))?,
                    ),
                    None => None,
                };
                let ([Some(id), Some(mean), Some(sd), Some(zmean), Some(zvar)], None) =
                    (fields, f.next())
                else {
                    return Err(bad(
                        "expected the fields score, index, id, mean, sd, zmean, zvar (and features with a shortlist)",
                    ));
                };
                let number = |s: &str, what: &str| {
                    s.parse::<f64>()
                        .map_err(|_| bad(&format!("{what}: expected a number")))
                };
                Ok(ShardRow {
                    score,
                    index,
                    id: unescape(id)
                        .ok_or_else(|| bad("id: a backslash escape other than \\t \\n \\r \\\\"))?,
                    mean: number(mean, "mean")?,
                    sd: number(sd, "sd")?,
                    latent_mean: zmean.parse().map_err(|_| bad("zmean: expected a number"))?,
                    latent_var: zvar.parse().map_err(|_| bad("zvar: expected a number"))?,
                    row,
                })
            };
            f(score, index, &whole)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Stages;

    fn meta(kept: usize, features: FeatureKind, shortlist: Option<usize>) -> PartMeta {
        PartMeta {
            poolrank: "test".into(),
            model: ModelStamp {
                path: "m.model".into(),
                xxh3: "0000000000000001".into(),
                labeled: 3,
            },
            features,
            settings: PartSettings {
                acquisition: Acquisition::Ucb { beta: 2.0 },
                seed: 1,
                round: 0,
                k: 2,
                mode: BatchMode::TopK,
                max_sim: None,
                shortlist,
                pending: None,
            },
            task: PartTask {
                list: None,
                index: None,
                start: 0,
                end: 10,
                pieces: Vec::new(),
            },
            shards: Vec::new(),
            floor: None,
            summary: ShardSummary {
                rows: 10,
                kept,
                stages: Stages::brute_force(7),
                ..ShardSummary::default()
            },
        }
    }

    fn row(score: f32, index: usize, id: &str, features: Option<Features>) -> ShardRow {
        ShardRow {
            score,
            index,
            id: id.into(),
            mean: -1.0 / 3.0 + index as f64,
            sd: 1e-300,
            latent_mean: 0.1 + 0.2,
            latent_var: f32::MIN_POSITIVE,
            row: features,
        }
    }

    /// Writes `part`, reads it back whole.
    fn round_trip(part: &PartData) -> PartData {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.part");
        std::fs::write(&path, part_bytes(part)).unwrap();
        let read = Part::read(&path).unwrap();
        let mut rows = Vec::new();
        read.for_each_row(|s, i, whole| {
            let r = whole()?;
            assert_eq!((s.to_bits(), i), (r.score.to_bits(), r.index));
            rows.push(r);
            Ok(())
        })
        .unwrap();
        PartData {
            meta: read.meta,
            pending: read.pending,
            rows,
        }
    }

    #[test]
    fn rows_and_meta_read_back_to_the_same_bits() {
        let kind = FeatureKind::Bits { nbits: 70 };
        let part = PartData {
            meta: meta(2, kind, None),
            pending: Vec::new(),
            rows: vec![
                row(0.1 + 0.2, 7, "a\tb\\c\nd\re", None),
                row(f32::MIN_POSITIVE, 2, "Z12", None),
            ],
        };
        let back = round_trip(&part);
        assert_eq!(back, part);
        assert_eq!(back.rows[0].mean.to_bits(), part.rows[0].mean.to_bits());
        assert_eq!(back.rows[0].id, "a\tb\\c\nd\re");
    }

    #[test]
    fn shortlist_features_and_pending_rows_read_back() {
        let bits = Features::Bits {
            nbits: 70,
            data: vec![u64::MAX, 0b10_1010],
        };
        let counts = |pairs: &[(u32, u32)]| Features::Counts {
            ndim: 2048,
            indptr: vec![0, pairs.len()],
            indices: pairs.iter().map(|p| p.0).collect(),
            values: pairs.iter().map(|p| p.1).collect(),
        };
        let dense = Features::Dense {
            dim: 3,
            data: vec![0.1, -1e-30, 3.5e7],
        };
        for (kind, a, b) in [
            (bits.kind(), bits.clone(), bits.clone()),
            (
                FeatureKind::Counts { ndim: 2048 },
                counts(&[(0, 1), (7, 300), (2047, 2)]),
                counts(&[]),
            ),
            (dense.kind(), dense.clone(), dense.clone()),
        ] {
            let part = PartData {
                meta: meta(2, kind, Some(500)),
                pending: vec![PendingRow {
                    place: 3,
                    index: 9,
                    row: b.clone(),
                }],
                rows: vec![row(2.0, 1, "x", Some(a)), row(1.0, 4, "y", Some(b))],
            };
            assert_eq!(round_trip(&part), part, "{kind}");
        }
        assert!(decode_features(FeatureKind::Counts { ndim: 8 }, "3:1,2:1").is_none());
        assert!(decode_features(FeatureKind::Counts { ndim: 8 }, "8:1").is_none());
        assert!(decode_features(FeatureKind::Counts { ndim: 8 }, "1:0").is_none());
        assert!(decode_features(FeatureKind::Dense { dim: 2 }, "1,2,3").is_none());
        assert!(decode_features(FeatureKind::Bits { nbits: 64 }, "00ff").is_none());
    }

    #[test]
    fn truncated_altered_and_foreign_files_are_refused() {
        let kind = FeatureKind::Dense { dim: 2 };
        let part = |kept| PartData {
            meta: meta(kept, kind, None),
            pending: Vec::new(),
            rows: vec![row(1.0, 0, "x", None)],
        };
        let good = part_bytes(&part(1));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.part");
        let check = |bytes: &[u8], want: &str| {
            std::fs::write(&path, bytes).unwrap();
            let err = Part::read(&path).err().expect("refused").to_string();
            assert!(err.contains("p.part") && err.contains(want), "{err}");
        };
        check(&good[..good.len() - 20], "truncated");
        let mut altered = good.clone();
        let at = altered.windows(3).position(|w| w == b"\tx\t").unwrap() + 1;
        altered[at] = b'y';
        check(&altered, "checksum");
        check(b"id,score\n1,2\n", "not a poolrank part");
        // A row count that is not the meta's.
        check(&part_bytes(&part(2)), "holds 1 rows");
    }
}
