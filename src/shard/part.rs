//! A part: one task's best candidates and what the merge checks, as text.
//!
//! ```text
//! #poolrank-part 1
//! #meta {"poolrank":"0.1.0","model":{…},"settings":{…},"task":{…},"shards":[…],"summary":{…}}
//! #score  index  id  mean  sd
//! 2.5131  1047  Z1234  -7.25  0.31
//! …
//! #end  1000  5d41402a
//! ```
//!
//! Fields are separated by tabs. The rows are the shard's best `k`, best first: the score as
//! `f32`, the global row, the id (tab, newline, carriage return and backslash escaped as `\t`,
//! `\n`, `\r`, `\\`), the mean and sd in label units as `f64`, every number in its shortest
//! form that reads back to the same bits. The last line gives the number of rows and the
//! CRC-32 of every byte before it, so a truncated or altered part is refused.

use std::path::{Path, PathBuf};

use crate::acquisition::Acquisition;
use crate::engine::{ShardRow, ShardSummary};
use crate::error::{Error, Result};
use crate::report::OutputSet;

use super::FileStamp;

/// The first line of every part.
pub const MAGIC: &str = "#poolrank-part 1";
const META: &str = "#meta ";
const COLUMNS: &str = "#score\tindex\tid\tmean\tsd";
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
    /// Candidates each task keeps.
    pub k: usize,
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
    /// The settings.
    pub settings: PartSettings,
    /// The rows it covers.
    pub task: PartTask,
    /// Its shard files.
    pub shards: Vec<ShardStamp>,
    /// What the scoring did.
    pub summary: ShardSummary,
}

/// Writes a part: `meta` and `rows` (best first) into the declared output `path` of `set`.
///
/// # Errors
/// [`Error::Io`] naming the part.
pub fn write_part(
    set: &mut OutputSet,
    path: &Path,
    meta: &PartMeta,
    rows: &[ShardRow],
) -> Result<()> {
    let bytes = part_bytes(meta, rows);
    set.write(path, |w| w.write_all(&bytes))
}

/// The bytes of a part.
pub fn part_bytes(meta: &PartMeta, rows: &[ShardRow]) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(512 + rows.len() * 64);
    let json = serde_json::to_string(meta).expect("a part's meta serialises");
    let _ = write!(s, "{MAGIC}\n{META}{json}\n{COLUMNS}\n");
    for r in rows {
        let _ = write!(s, "{}\t{}\t", r.score, r.index);
        escape_into(&r.id, &mut s);
        let _ = writeln!(s, "\t{}\t{}", r.mean, r.sd);
    }
    let crc = crc32fast::hash(s.as_bytes());
    let _ = writeln!(s, "{END}{}\t{crc:08x}", rows.len());
    s.into_bytes()
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
        let cols_end = meta_end + 1 + text[meta_end + 1..].find('\n').ok_or_else(truncated)?;
        if &text[meta_end + 1..cols_end] != COLUMNS {
            return Err(Error::parse(path, 3, format!("expected {COLUMNS:?}")));
        }
        let body = cols_end + 1;
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
            text,
            body: (body, 4),
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
            let rest = fields.next().ok_or_else(|| bad("expected 5 fields"))?;
            let whole = || -> Result<ShardRow> {
                let mut f = rest.split('\t');
                let (Some(id), Some(mean), Some(sd), None) =
                    (f.next(), f.next(), f.next(), f.next())
                else {
                    return Err(bad("expected 5 fields: score, index, id, mean, sd"));
                };
                Ok(ShardRow {
                    score,
                    index,
                    id: unescape(id)
                        .ok_or_else(|| bad("id: a backslash escape other than \\t \\n \\r \\\\"))?,
                    mean: mean.parse().map_err(|_| bad("mean: expected a number"))?,
                    sd: sd.parse().map_err(|_| bad("sd: expected a number"))?,
                })
            };
            f(score, index, &whole)?;
        }
        Ok(())
    }
}

/// The meta line of the part at `path` (the whole part is read and checked).
///
/// # Errors
/// As [`Part::read`].
pub fn read_part_meta(path: &Path) -> Result<PartMeta> {
    Ok(Part::read(path)?.meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Stages;

    pub(crate) fn meta(kept: usize) -> PartMeta {
        PartMeta {
            poolrank: "test".into(),
            model: ModelStamp {
                path: "m.model".into(),
                xxh3: "0000000000000001".into(),
                labeled: 3,
            },
            settings: PartSettings {
                acquisition: Acquisition::Ucb { beta: 2.0 },
                seed: 1,
                round: 0,
                k: 2,
                pending: None,
            },
            task: PartTask {
                list: None,
                index: None,
                start: 0,
                end: 10,
            },
            shards: Vec::new(),
            summary: ShardSummary {
                rows: 10,
                kept,
                stages: Stages::brute_force(7),
                ..ShardSummary::default()
            },
        }
    }

    #[test]
    fn rows_and_meta_read_back_to_the_same_bits() {
        let rows = vec![
            ShardRow {
                score: 0.1 + 0.2,
                index: 7,
                id: "a\tb\\c\nd".into(),
                mean: -1.0 / 3.0,
                sd: 1e-300,
            },
            ShardRow {
                score: f32::MIN_POSITIVE,
                index: 2,
                id: "Z12".into(),
                mean: 5.0,
                sd: 0.0,
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.part");
        std::fs::write(&path, part_bytes(&meta(2), &rows)).unwrap();
        let part = Part::read(&path).unwrap();
        assert_eq!(part.meta, meta(2));
        let mut back = Vec::new();
        part.for_each_row(|s, i, whole| {
            let r = whole()?;
            assert_eq!((s.to_bits(), i), (r.score.to_bits(), r.index));
            back.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(back, rows);
        assert_eq!(back[0].mean.to_bits(), rows[0].mean.to_bits());
    }

    #[test]
    fn truncated_altered_and_foreign_files_are_refused() {
        let rows = vec![ShardRow {
            score: 1.0,
            index: 0,
            id: "x".into(),
            mean: 0.0,
            sd: 1.0,
        }];
        let good = part_bytes(&meta(1), &rows);
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
        // A row count that is not the meta's: a part whose rows were cut and re-summed.
        let short = part_bytes(&meta(2), &rows);
        check(&short, "holds 1 rows");
    }
}
