//! Several objectives: the checked objective list (`dock:min,qed:max`) and the reader of a
//! labels CSV with one column per objective, where a candidate may be labeled for some
//! objectives only.
//!
//! The reader follows [`read_labels`](super::read_labels) in everything but missing values:
//! the same header checks (unique names; a missing column is named with the header listed), the
//! same id rules (non-empty, unique: a repeated id is an [`Error::DuplicateId`] naming both
//! lines), the same number rules (finite, at most [`MAX_LABEL`](super::MAX_LABEL) in
//! magnitude), the same compressions and line numbers. A cell is **missing** when it is empty
//! or, ignoring ASCII case, `NA`, `N/A` or `NaN` (what pandas and R write for a missing value);
//! a row with no value for any objective is an error naming its line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::labels::{
    check_header, check_row_len, csv_error, csv_reader_over, find_column, header_names, is_blank,
    parse_value, record_line, CsvInput, Labels,
};
use super::{open_text_compressed, prefer_compression_fault};
use crate::error::{snippet, Error, Result};

/// The most objectives a run may have: the [`pareto`](crate::pareto) module's hypervolume and
/// EHVI are exact for two and three.
pub const MAX_OBJECTIVES: usize = 3;

/// One objective: a column of the labels file and its direction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectiveSpec {
    /// The column's header name.
    pub column: String,
    /// True when smaller values are better (`NAME:min`), false when larger are (`NAME:max`).
    pub minimize: bool,
}

impl ObjectiveSpec {
    /// An objective to maximise.
    pub fn max(column: impl Into<String>) -> Self {
        ObjectiveSpec {
            column: column.into(),
            minimize: false,
        }
    }

    /// An objective to minimise.
    pub fn min(column: impl Into<String>) -> Self {
        ObjectiveSpec {
            column: column.into(),
            minimize: true,
        }
    }

    /// `value` in the maximised convention of [`crate::pareto`]: negated for a minimised
    /// objective.
    pub fn maximised(&self, value: f64) -> f64 {
        if self.minimize {
            -value
        } else {
            value
        }
    }
}

impl std::fmt::Display for ObjectiveSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dir = if self.minimize { "min" } else { "max" };
        write!(f, "{}:{dir}", self.column)
    }
}

/// A checked list of 1 to [`MAX_OBJECTIVES`] objectives with distinct, non-empty columns.
///
/// Parsed from the flag form `NAME:min,NAME:max,...` ([`str::parse`]; entries are trimmed, and
/// a column name may hold `:` since the direction is what follows the last one); displayed in
/// the same form. It dereferences to the slice of [`ObjectiveSpec`]s, in the order given.
///
/// ```
/// use poolrank::data::{ObjectiveSpec, Objectives};
///
/// let o: Objectives = "dock:min, qed:max".parse()?;
/// assert_eq!(&o[..], &[ObjectiveSpec::min("dock"), ObjectiveSpec::max("qed")]);
/// assert_eq!(o.to_string(), "dock:min,qed:max");
/// assert!("dock:min,dock:max".parse::<Objectives>().is_err());
/// # Ok::<(), poolrank::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Objectives(Vec<ObjectiveSpec>);

impl Objectives {
    /// Checks `specs`: 1 to [`MAX_OBJECTIVES`] of them, each column non-empty, no column twice.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] on `objectives`, naming the offending entry.
    pub fn new(specs: Vec<ObjectiveSpec>) -> Result<Self> {
        check(&specs)?;
        Ok(Objectives(specs))
    }

    /// The objectives, in order.
    pub fn specs(&self) -> &[ObjectiveSpec] {
        &self.0
    }
}

impl std::ops::Deref for Objectives {
    type Target = [ObjectiveSpec];

    fn deref(&self) -> &[ObjectiveSpec] {
        &self.0
    }
}

impl std::str::FromStr for Objectives {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = |msg: String| Error::param("objectives", msg);
        if text.trim().is_empty() {
            return Err(bad(
                "no objectives; expected NAME:min or NAME:max entries separated by commas, \
                 e.g. \"dock:min,qed:max\""
                    .into(),
            ));
        }
        let mut specs = Vec::new();
        for (k, entry) in text.split(',').enumerate() {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(bad(format!(
                    "entry {} is empty (a stray comma?); expected NAME:min or NAME:max",
                    k + 1
                )));
            }
            let Some((name, dir)) = entry.rsplit_once(':') else {
                return Err(bad(format!(
                    "entry {} has no direction; write {entry}:min or {entry}:max",
                    snippet(entry.as_bytes()),
                )));
            };
            let (name, dir) = (name.trim(), dir.trim());
            let minimize = if dir.eq_ignore_ascii_case("min") {
                true
            } else if dir.eq_ignore_ascii_case("max") {
                false
            } else {
                return Err(bad(format!(
                    "entry {}: unknown direction {}; expected min or max",
                    snippet(entry.as_bytes()),
                    snippet(dir.as_bytes())
                )));
            };
            specs.push(ObjectiveSpec {
                column: name.to_string(),
                minimize,
            });
        }
        Objectives::new(specs)
    }
}

impl std::fmt::Display for Objectives {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (k, s) in self.0.iter().enumerate() {
            if k > 0 {
                f.write_str(",")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

/// The checks of [`Objectives::new`], also applied to a slice given to
/// [`read_objective_labels`].
fn check(specs: &[ObjectiveSpec]) -> Result<()> {
    check_columns(specs, MAX_OBJECTIVES, "objectives")
}

/// [`check`] with at most `max` columns, `what` they are.
fn check_columns(specs: &[ObjectiveSpec], max: usize, what: &str) -> Result<()> {
    let bad = |msg: String| Error::param("objectives", msg);
    if specs.is_empty() || specs.len() > max {
        return Err(bad(format!(
            "{} {what} given; 1 to {max} are supported",
            specs.len()
        )));
    }
    for (k, s) in specs.iter().enumerate() {
        if s.column.trim().is_empty() {
            return Err(bad(format!(
                "entry {} ({}) has an empty column name",
                k + 1,
                snippet(s.to_string().as_bytes())
            )));
        }
        if let Some(j) = specs[..k].iter().position(|t| t.column == s.column) {
            return Err(bad(format!(
                "column {} is listed twice (entries {} and {}); each objective needs its own \
                 column",
                snippet(s.column.as_bytes()),
                j + 1,
                k + 1
            )));
        }
    }
    Ok(())
}

/// Labels of several objectives, in file order: every row has an id and a value for at least
/// one objective.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MultiLabels {
    /// The file, for messages.
    pub source: PathBuf,
    /// The objectives, in the order given (one entry of `values` each).
    pub objectives: Vec<ObjectiveSpec>,
    /// The ids, unique.
    pub ids: Vec<String>,
    /// `values[k][i]`: objective `k`'s value for `ids[i]` as written in the file (not sign
    /// flipped), `None` where the cell is missing.
    pub values: Vec<Vec<Option<f64>>>,
    /// The 1-based line of each row in the file, for messages.
    pub lines: Vec<usize>,
}

impl MultiLabels {
    /// Number of rows (labeled for at least one objective).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The rows labeled for objective `k`, as one-objective [`Labels`] (ids, values as written,
    /// lines; file order), so that a model per objective is fitted on its own labels. `None`
    /// when there is no objective `k`.
    pub fn objective(&self, k: usize) -> Option<Labels> {
        let values = self.values.get(k)?;
        let mut labels = Labels {
            source: self.source.clone(),
            ..Labels::default()
        };
        for (i, v) in values.iter().enumerate() {
            if let Some(v) = *v {
                labels.ids.push(self.ids[i].clone());
                labels.values.push(v);
                // Rows built in memory have no lines, as `Labels::new`'s.
                if let Some(&line) = self.lines.get(i) {
                    labels.lines.push(line);
                }
            }
        }
        Some(labels)
    }

    /// The rows labeled for every objective and their values in the maximised convention of
    /// [`crate::pareto`] (a minimised objective negated), flat and row-major (`m` values a
    /// row): the points whose non-dominated layers are the labeled front.
    pub fn complete_maximised(&self) -> (Vec<usize>, Vec<f64>) {
        let mut rows = Vec::new();
        let mut points = Vec::new();
        for i in 0..self.len() {
            let row: Option<Vec<f64>> = self
                .objectives
                .iter()
                .zip(&self.values)
                .map(|(s, col)| col[i].map(|v| s.maximised(v)))
                .collect();
            if let Some(row) = row {
                rows.push(i);
                points.extend(row);
            }
        }
        (rows, points)
    }
}

/// Reads the id column `id_col` and one column per objective from the labels CSV `path` (plain
/// or compressed).
///
/// The rules are [`read_labels`](super::read_labels)'s but for missing values: unique header
/// names, non-empty unique ids, finite values of magnitude at most
/// [`MAX_LABEL`](super::MAX_LABEL). A cell is **missing** when it is empty or, ignoring ASCII
/// case, `NA`, `N/A` or `NaN` (what pandas and R write for a missing value); every row must have
/// a value for at least one objective.
///
/// A file with no rows gives no labels; whether that is acceptable is the caller's decision.
///
/// # Errors
/// [`Error::InvalidParam`] for objectives that fail [`Objectives::new`]'s checks or name the id
/// column; [`Error::Parse`] naming the file, line and column for a missing column (listing the
/// header), an empty id, a value that is not a finite number, or a row with no value at all;
/// [`Error::DuplicateId`] for a repeated id.
pub fn read_objective_labels(
    path: &Path,
    id_col: &str,
    objectives: &[ObjectiveSpec],
) -> Result<MultiLabels> {
    check(objectives)?;
    read_columns(path, id_col, objectives)
}

/// The most label columns [`read_label_columns`] reads: the objectives and the columns of the
/// constraints on them.
pub const MAX_LABEL_COLUMNS: usize = 8;

/// [`read_objective_labels`] for up to [`MAX_LABEL_COLUMNS`] columns: a multi-objective
/// round's objectives followed by the columns only its constraints name.
///
/// # Errors
/// As [`read_objective_labels`].
pub fn read_label_columns(
    path: &Path,
    id_col: &str,
    columns: &[ObjectiveSpec],
) -> Result<MultiLabels> {
    check_columns(columns, MAX_LABEL_COLUMNS, "label columns")?;
    read_columns(path, id_col, columns)
}

fn read_columns(path: &Path, id_col: &str, objectives: &[ObjectiveSpec]) -> Result<MultiLabels> {
    if let Some(k) = objectives.iter().position(|s| s.column == id_col) {
        return Err(Error::param(
            "objectives",
            format!(
                "entry {} ({}) names the id column",
                k + 1,
                snippet(objectives[k].to_string().as_bytes())
            ),
        ));
    }
    let (input, compressed) = open_text_compressed(path)?;
    let mut rdr = csv_reader_over(input);
    read_from(path, id_col, objectives, &mut rdr).map_err(|e| {
        if compressed {
            prefer_compression_fault(&mut rdr.into_inner().inner, path, e)
        } else {
            e
        }
    })
}

/// A missing cell: empty, or `NA`, `N/A`, `NaN` in any ASCII case.
fn is_missing(text: &str) -> bool {
    text.is_empty()
        || ["na", "n/a", "nan"]
            .iter()
            .any(|m| text.eq_ignore_ascii_case(m))
}

fn read_from(
    path: &Path,
    id_col: &str,
    objectives: &[ObjectiveSpec],
    rdr: &mut csv::Reader<CsvInput>,
) -> Result<MultiLabels> {
    let headers = rdr.byte_headers().map_err(|e| csv_error(path, e))?.clone();
    let mut labels = MultiLabels {
        source: path.to_path_buf(),
        objectives: objectives.to_vec(),
        values: vec![Vec::new(); objectives.len()],
        ..MultiLabels::default()
    };
    if is_blank(&headers) {
        return Ok(labels);
    }
    let names = header_names(&headers);
    check_header(path, &names)?;
    let id_at = find_column(path, &names, id_col, "the id column")?;
    let at: Vec<usize> = objectives
        .iter()
        .map(|s| find_column(path, &names, &s.column, "an objective"))
        .collect::<Result<_>>()?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut record = csv::ByteRecord::new();
    while rdr
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
        if is_blank(&record) {
            continue;
        }
        let line = record_line(rdr, &record);
        check_row_len(path, line, &record, names.len())?;
        // The row has the header's length, so every column is there.
        let field = |at: usize, col: &str| -> Result<&str> {
            std::str::from_utf8(record[at].trim_ascii())
                .map_err(|_| Error::parse(path, line, format!("column {col:?} is not valid UTF-8")))
        };
        let id = field(id_at, id_col)?;
        if id.is_empty() {
            return Err(Error::parse(
                path,
                line,
                format!("empty id in column {id_col:?}"),
            ));
        }
        let mut row = Vec::with_capacity(objectives.len());
        for (s, &a) in objectives.iter().zip(&at) {
            let text = field(a, &s.column)?;
            row.push(if is_missing(text) {
                None
            } else {
                Some(parse_value(text).map_err(|why| {
                    Error::parse(path, line, format!("column {:?}: {why}", s.column))
                })?)
            });
        }
        if row.iter().all(Option::is_none) {
            return Err(Error::parse(
                path,
                line,
                format!(
                    "no value for any objective ({}); a row must label at least one (a missing \
                     value is an empty cell, NA or NaN)",
                    objectives
                        .iter()
                        .map(|s| format!("{:?}", s.column))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if let Some(first) = seen.insert(id.to_string(), line) {
            return Err(Error::DuplicateId {
                path: path.to_path_buf(),
                id: id.to_string(),
                where_: format!("lines {first} and {line}"),
            });
        }
        labels.ids.push(id.to_string());
        labels.lines.push(line);
        for (col, v) in labels.values.iter_mut().zip(row) {
            col.push(v);
        }
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn specs(text: &str) -> Objectives {
        text.parse().unwrap()
    }

    #[test]
    fn parses_objective_lists() {
        let o = specs(" dock : MIN ,qed:max,a:b:min");
        assert_eq!(
            &o[..],
            &[
                ObjectiveSpec::min("dock"),
                ObjectiveSpec::max("qed"),
                ObjectiveSpec::min("a:b")
            ]
        );
        assert_eq!(o.to_string(), "dock:min,qed:max,a:b:min");
        assert_eq!(specs(&o.to_string()), o);
        assert_eq!(specs("y:max").len(), 1);
        assert_eq!(ObjectiveSpec::min("d").maximised(2.0), -2.0);
        assert_eq!(ObjectiveSpec::max("d").maximised(2.0), 2.0);
    }

    #[test]
    fn objective_list_errors_name_the_entry() {
        let cases = [
            ("", "no objectives"),
            ("  ", "no objectives"),
            (
                "dock",
                "entry \"dock\" has no direction; write dock:min or dock:max",
            ),
            ("dock:min,qed", "entry \"qed\" has no direction"),
            ("dock:mx", "entry \"dock:mx\": unknown direction \"mx\""),
            ("dock:", "unknown direction \"\""),
            (":max", "entry 1 (\":max\") has an empty column name"),
            ("a:min, :max", "entry 2 (\":max\") has an empty column name"),
            ("a:min,,b:max", "entry 2 is empty"),
            ("a:min,", "entry 2 is empty"),
            (
                "a:min,b:max,a:max",
                "column \"a\" is listed twice (entries 1 and 3)",
            ),
            ("a:min,b:max,c:max,d:max", "4 objectives given; 1 to 3"),
        ];
        for (text, needle) in cases {
            let e = text.parse::<Objectives>().unwrap_err();
            match &e {
                Error::InvalidParam { name, msg } => {
                    assert_eq!(*name, "objectives", "{text:?}");
                    assert!(msg.contains(needle), "{text:?}: {msg}");
                }
                _ => panic!("{text:?}: {e:?}"),
            }
        }
        assert!(Objectives::new(Vec::new()).is_err());
    }

    #[test]
    fn reads_objectives_with_missing_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(
            &dir,
            "l.csv",
            "smiles,id,dock,qed\nCC,a,-7.5,0.5\r\nCCC, b ,,0.25\n\n\"C\nO\",c,-9,NA\nN,d,-8, nan \nO,e,n/a,0.75\n",
        );
        let o = specs("dock:min,qed:max");
        let l = read_objective_labels(&p, "id", &o).unwrap();
        assert_eq!(l.ids, ["a", "b", "c", "d", "e"]);
        assert_eq!(l.lines, [2, 3, 5, 7, 8]);
        assert_eq!(l.objectives, o.specs());
        assert_eq!(
            l.values,
            [
                vec![Some(-7.5), None, Some(-9.0), Some(-8.0), None],
                vec![Some(0.5), Some(0.25), None, None, Some(0.75)],
            ]
        );
        let dock = l.objective(0).unwrap();
        assert_eq!(dock.ids, ["a", "c", "d"]);
        assert_eq!(dock.values, [-7.5, -9.0, -8.0]);
        assert_eq!(dock.lines, [2, 5, 7]);
        assert_eq!(dock.source, p);
        let qed = l.objective(1).unwrap();
        assert_eq!(qed.ids, ["a", "b", "e"]);
        assert_eq!(qed.values, [0.5, 0.25, 0.75]);
        assert!(l.objective(2).is_none());
        // Only "a" has both; dock is minimised, so it is negated.
        assert_eq!(l.complete_maximised(), (vec![0], vec![7.5, 0.5]));
    }

    #[test]
    fn reads_gzip_and_empty_files() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.csv.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&p).unwrap(),
            flate2::Compression::default(),
        );
        gz.write_all(b"name,f1,f2\nx,1,2\ny,3,\n").unwrap();
        gz.finish().unwrap();
        let o = specs("f1:max,f2:max");
        let l = read_objective_labels(&p, "name", &o).unwrap();
        assert_eq!(l.ids, ["x", "y"]);
        assert_eq!(
            l.values,
            [vec![Some(1.0), Some(3.0)], vec![Some(2.0), None]]
        );
        for text in ["", "id,f1,f2\n"] {
            let l = read_objective_labels(&file(&dir, "e.csv", text), "id", &o).unwrap();
            assert!(l.is_empty(), "{text:?}");
            assert_eq!(l.values.len(), 2);
        }
    }

    #[test]
    fn objective_label_errors_name_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let o = specs("dock:min,qed:max");
        let cases = [
            (
                "id,dock,score\na,1,2\n",
                1,
                "no column named \"qed\" (an objective) in the header; the columns are: \"id\", \
                 \"dock\", \"score\"",
            ),
            ("name,dock,qed\na,1,2\n", 1, "\"id\" (the id column)"),
            (
                "id,dock,qed,dock\na,1,2,3\n",
                1,
                "names column \"dock\" twice",
            ),
            (
                "id,dock,qed\na,1,2\nb,,\n",
                3,
                "no value for any objective (\"dock\", \"qed\")",
            ),
            (
                "id,dock,qed\na,1,2\nb, NA ,nan\n",
                3,
                "no value for any objective",
            ),
            (
                "id,dock,qed\na,1,x\n",
                2,
                "column \"qed\": \"x\" is not a number",
            ),
            (
                "id,dock,qed\na,inf,1\n",
                2,
                "column \"dock\": \"inf\" is infinite",
            ),
            ("id,dock,qed\na,1e300,1\n", 2, "too large"),
            (
                "id,dock,qed\na,1\n",
                2,
                "the row has 2 fields but the header has 3",
            ),
            ("id,dock,qed\n,1,2\n", 2, "empty id in column \"id\""),
        ];
        for (text, line, needle) in cases {
            let p = file(&dir, "x.csv", text);
            let e = read_objective_labels(&p, "id", &o).unwrap_err();
            match &e {
                Error::Parse {
                    path, line: l, msg, ..
                } => {
                    assert_eq!(path, &p, "{text:?}");
                    assert_eq!(*l, line, "{text:?}: {e}");
                    assert!(msg.contains(needle), "{text:?}: {e}");
                }
                _ => panic!("{text:?}: {e:?}"),
            }
        }
        let p = file(&dir, "d.csv", "id,dock,qed\na,1,\nb,2,3\na,,3\n");
        let e = read_objective_labels(&p, "id", &o).unwrap_err();
        assert!(
            matches!(&e, Error::DuplicateId { id, where_, .. } if id == "a" && where_ == "lines 2 and 4"),
            "{e:?}"
        );
        // An unchecked slice is checked, and an objective may not be the id column.
        let p = file(&dir, "ok.csv", "id,dock,qed\na,1,2\n");
        let twice = [ObjectiveSpec::min("dock"), ObjectiveSpec::max("dock")];
        let e = read_objective_labels(&p, "id", &twice).unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");
        let e = read_objective_labels(&p, "id", &[ObjectiveSpec::max("id")]).unwrap_err();
        assert!(e.to_string().contains("names the id column"), "{e}");
        let e = read_objective_labels(&p, "id", &[]).unwrap_err();
        assert!(matches!(e, Error::InvalidParam { .. }), "{e:?}");
    }
}
