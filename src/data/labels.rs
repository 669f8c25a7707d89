//! Labels (an id column and a value column in a CSV) and id lists (one id a line).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::limits::{line_too_long, read_line, Line, MAX_LINE_BYTES};
use super::{open_text_compressed, prefer_compression_fault};
use crate::error::{snippet, Error, InputFault, Result};

/// Where labels come from: a CSV file with a header and the names of its id and value columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelSpec {
    /// The CSV file, plain or gzip.
    pub path: PathBuf,
    /// The id column's header name (default `id`).
    pub id_col: String,
    /// The value column's header name (default `score`).
    pub y_col: String,
}

impl LabelSpec {
    /// A spec with the default columns `id` and `score`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LabelSpec {
            path: path.into(),
            id_col: "id".to_string(),
            y_col: "score".to_string(),
        }
    }
}

/// Labeled ids with their values, in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Labels {
    /// Where they come from (a file, or what stands for one), for messages.
    pub source: PathBuf,
    /// The ids, unique.
    pub ids: Vec<String>,
    /// One finite value per id.
    pub values: Vec<f64>,
    /// The 1-based line of each label in the file, for error messages.
    pub lines: Vec<usize>,
}

impl Labels {
    /// Labels held in memory: `values[i]` is the label of `ids[i]`; `source` names them in
    /// messages.
    pub fn new(source: impl Into<PathBuf>, ids: Vec<String>, values: Vec<f64>) -> Self {
        Labels {
            source: source.into(),
            lines: Vec::new(),
            ids,
            values,
        }
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// `e` with the line of each example named, when `e` is an [`Error::UnknownIds`] about
    /// these labels (`"mol9" (line 4)`), so that the user can find the entry to fix.
    pub fn name_lines(&self, e: Error) -> Error {
        let Error::UnknownIds {
            path,
            count,
            examples,
        } = e
        else {
            return e;
        };
        let line_of: HashMap<&str, usize> = self
            .ids
            .iter()
            .map(String::as_str)
            .zip(self.lines.iter().copied())
            .collect();
        let examples = examples
            .into_iter()
            .map(|id| match line_of.get(id.as_str()) {
                Some(line) => format!("{} (line {line})", snippet(id.as_bytes())),
                None => id,
            })
            .collect();
        Error::UnknownIds {
            path,
            count,
            examples,
        }
    }
}

/// Converts a `csv` error to ours, keeping the line when the error has one.
pub(crate) fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line() as usize);
    match e.into_kind() {
        csv::ErrorKind::Io(e) => Error::io(path, e),
        kind => Error::parse(path, line, format!("malformed CSV: {kind:?}")),
    }
}

/// The header names (trimmed), for lookups and "columns are: ..." hints.
pub(crate) fn header_names(headers: &csv::ByteRecord) -> Vec<String> {
    headers
        .iter()
        .map(|h| String::from_utf8_lossy(h.trim_ascii()).into_owned())
        .collect()
}

/// Refuses a header that names a column twice (a lookup would silently take the first).
pub(crate) fn check_header(path: &Path, names: &[String]) -> Result<()> {
    for (i, n) in names.iter().enumerate() {
        if let Some(j) = names[i + 1..].iter().position(|m| m == n) {
            return Err(Error::parse(
                path,
                1,
                format!(
                    "the header names column {} twice (fields {} and {}); column names must be \
                     unique",
                    snippet(n.as_bytes()),
                    i + 1,
                    i + j + 2
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses a row whose field count differs from the header's (a decimal comma, a stray
/// delimiter), which would otherwise be read as its first fields.
pub(crate) fn check_row_len(
    path: &Path,
    line: usize,
    record: &csv::ByteRecord,
    header_len: usize,
) -> Result<()> {
    if record.len() == header_len {
        return Ok(());
    }
    Err(Error::parse(
        path,
        line,
        format!(
            "the row has {} fields but the header has {header_len}{}",
            record.len(),
            if record.len() > header_len {
                " (a decimal comma, or a field with the delimiter that needs quotes?)"
            } else {
                ""
            }
        ),
    ))
}

/// The position of column `name` in `names`, or a parse error on line 1 listing the columns.
pub(crate) fn find_column(path: &Path, names: &[String], name: &str, role: &str) -> Result<usize> {
    names.iter().position(|h| h == name).ok_or_else(|| {
        Error::parse(
            path,
            1,
            format!(
                "no column named {name:?} ({role}) in the header; the columns are: {}",
                names
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// Normalises line endings to `\n` (`\r\n` and a lone `\r` both become `\n`) and ends the
/// input with a `\n`.
///
/// The `csv` crate stamps a record with the position *before* the blank lines and the `\n` of a
/// `\r\n` that precede it, so its start line is off after a blank line or a CRLF. With every
/// record ending in one `\n`, the line after a record minus one, minus the newlines inside its
/// quoted fields, is exactly the record's first line (see [`record_line`]).
///
/// It also follows the CSV quoting (as the `csv` crate reads it) to bound every record by
/// [`MAX_LINE_BYTES`] and to report a quote that is never closed, naming its line: the `csv`
/// crate would otherwise hold the rest of the file as one field, and a message quoting that
/// field would echo the whole file.
pub(crate) struct LfNormalize<R> {
    pub(crate) inner: R,
    out: Vec<u8>,
    pos: usize,
    /// The last byte was a `\r` (already emitted as `\n`): drop a `\n` that follows.
    after_cr: bool,
    /// The last byte emitted, to add the final `\n`.
    last: Option<u8>,
    done: bool,
    /// The field delimiter, for the quoting state.
    delimiter: u8,
    quote: QuoteState,
    /// 1-based line of the next byte emitted.
    line: usize,
    /// Where the current record and the open quote started.
    record_line: usize,
    quote_line: usize,
    record_bytes: usize,
}

/// Where the CSV scanner is within a field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    FieldStart,
    Unquoted,
    InQuote,
    /// A quote inside a quoted field: the end of the field, or the first of a doubled quote.
    QuoteInQuote,
}

impl<R: BufRead> LfNormalize<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self::with_delimiter(inner, b',')
    }

    pub(crate) fn with_delimiter(inner: R, delimiter: u8) -> Self {
        LfNormalize {
            inner,
            out: Vec::new(),
            pos: 0,
            after_cr: false,
            last: None,
            done: false,
            delimiter,
            quote: QuoteState::FieldStart,
            line: 1,
            record_line: 1,
            quote_line: 1,
            record_bytes: 0,
        }
    }

    /// Follows the quoting through one emitted byte; an error when the record grows too long.
    fn scan(&mut self, b: u8) -> std::io::Result<()> {
        use QuoteState::*;
        let end_of_record = b == b'\n' && self.quote != InQuote;
        self.quote = match (self.quote, b) {
            (InQuote, b'"') => QuoteInQuote,
            (InQuote, _) => InQuote,
            (FieldStart, b'"') => {
                self.quote_line = self.line;
                InQuote
            }
            (QuoteInQuote, b'"') => InQuote,
            (_, b'\n') => FieldStart,
            (_, c) if c == self.delimiter => FieldStart,
            _ => Unquoted,
        };
        if b == b'\n' {
            self.line += 1;
        }
        if end_of_record {
            self.record_bytes = 0;
            self.record_line = self.line;
        } else {
            self.record_bytes += 1;
            if self.record_bytes > MAX_LINE_BYTES {
                let msg = if self.quote == InQuote {
                    format!(
                        "the record is longer than {MAX_LINE_BYTES} bytes; is the quote opened on \
                         line {} never closed?",
                        self.quote_line
                    )
                } else {
                    line_too_long()
                };
                return Err(InputFault::Line {
                    line: self.record_line,
                    msg,
                }
                .into_io());
            }
        }
        Ok(())
    }
}

impl<R: BufRead> std::io::Read for LfNormalize<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LfNormalize<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.pos >= self.out.len() && !self.done {
            self.out.clear();
            self.pos = 0;
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                self.done = true;
                if self.quote == QuoteState::InQuote {
                    return Err(InputFault::Line {
                        line: self.quote_line,
                        msg: "a quoted field opened on this line is never closed (a '\"' \
                              without its closing '\"')"
                            .into(),
                    }
                    .into_io());
                }
                if self.last.is_some_and(|b| b != b'\n') {
                    self.out.push(b'\n');
                }
                break;
            }
            // At most 64 KiB at a time, so that an over-long record is caught early.
            let n = chunk.len().min(1 << 16);
            let chunk = &chunk[..n];
            let mut emitted = Vec::with_capacity(n);
            for &b in chunk {
                match b {
                    b'\r' => {
                        emitted.push(b'\n');
                        self.after_cr = true;
                    }
                    b'\n' if self.after_cr => self.after_cr = false,
                    _ => {
                        emitted.push(b);
                        self.after_cr = false;
                    }
                }
            }
            self.inner.consume(n);
            for &b in &emitted {
                self.scan(b)?;
            }
            self.out.extend_from_slice(&emitted);
            if let Some(&b) = self.out.last() {
                self.last = Some(b);
            }
        }
        Ok(&self.out[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.out.len());
    }
}

/// The 1-based first line of `record`, just read by `rdr` over an [`LfNormalize`] input.
pub(crate) fn record_line<R: std::io::Read>(
    rdr: &csv::Reader<R>,
    record: &csv::ByteRecord,
) -> usize {
    let embedded: usize = record
        .iter()
        .map(|f| f.iter().filter(|&&b| b == b'\n').count())
        .sum();
    (rdr.position().line() as usize)
        .saturating_sub(1 + embedded)
        .max(1)
}

/// The CSV readers' input type.
pub(crate) type CsvInput = LfNormalize<Box<dyn BufRead + Send>>;

/// A CSV reader over a text input ([`open_text_compressed`]): a header, rows of any length (the callers check
/// lengths to give their own messages). Fields are not trimmed here, so that [`record_line`]
/// sees every newline; callers trim.
pub(crate) fn csv_reader_over(input: Box<dyn BufRead + Send>) -> csv::Reader<CsvInput> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(LfNormalize::new(input))
}

/// A row with nothing in it (a line of spaces), skipped like an empty line.
pub(crate) fn is_blank(record: &csv::ByteRecord) -> bool {
    record.iter().all(|f| f.trim_ascii().is_empty()) && record.len() <= 1
}

/// Reads labels: ids from `spec.id_col`, values from `spec.y_col`.
///
/// Ids must be unique and non-empty, values finite. A file with no rows (only a header, or
/// nothing at all) gives zero labels; whether that is acceptable is the caller's decision.
pub fn read_labels(spec: &LabelSpec) -> Result<Labels> {
    let path = spec.path.as_path();
    let (input, compressed) = open_text_compressed(path)?;
    let mut rdr = csv_reader_over(input);
    read_labels_from(spec, &mut rdr).map_err(|e| {
        if compressed {
            prefer_compression_fault(&mut rdr.into_inner().inner, path, e)
        } else {
            e
        }
    })
}

fn read_labels_from(spec: &LabelSpec, rdr: &mut csv::Reader<CsvInput>) -> Result<Labels> {
    let path = spec.path.as_path();
    let headers = rdr.byte_headers().map_err(|e| csv_error(path, e))?.clone();
    let mut labels = Labels {
        source: path.to_path_buf(),
        ..Labels::default()
    };
    if is_blank(&headers) {
        return Ok(labels);
    }
    let names = header_names(&headers);
    check_header(path, &names)?;
    let id_at = find_column(path, &names, &spec.id_col, "the id column")?;
    let y_at = find_column(path, &names, &spec.y_col, "the value column")?;
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
        let field = |at: usize, col: &str| -> Result<&str> {
            let raw = record.get(at).ok_or_else(|| {
                Error::parse(
                    path,
                    line,
                    format!(
                        "the row has {} fields, so column {col:?} (field {}) is missing",
                        record.len(),
                        at + 1
                    ),
                )
            })?;
            std::str::from_utf8(raw.trim_ascii())
                .map_err(|_| Error::parse(path, line, format!("column {col:?} is not valid UTF-8")))
        };
        let id = field(id_at, &spec.id_col)?;
        if id.is_empty() {
            return Err(Error::parse(
                path,
                line,
                format!("empty id in column {:?}", spec.id_col),
            ));
        }
        let text = field(y_at, &spec.y_col)?;
        let value = parse_value(text)
            .map_err(|why| Error::parse(path, line, format!("column {:?}: {why}", spec.y_col)))?;
        if let Some(first) = seen.insert(id.to_string(), line) {
            return Err(Error::DuplicateId {
                path: path.to_path_buf(),
                id: id.to_string(),
                where_: format!("lines {first} and {line}"),
            });
        }
        labels.ids.push(id.to_string());
        labels.values.push(value);
        labels.lines.push(line);
    }
    Ok(labels)
}

/// A finite number, or why not.
pub(crate) fn parse_value(text: &str) -> std::result::Result<f64, String> {
    if text.is_empty() {
        return Err("empty value; expected a number".into());
    }
    let quoted = snippet(text.as_bytes());
    let v: f64 = text
        .parse()
        .map_err(|_| format!("{quoted} is not a number"))?;
    if v.is_nan() {
        Err(format!("{quoted} is NaN; expected a finite number"))
    } else if v.is_infinite() {
        Err(format!("{quoted} is infinite; expected a finite number"))
    } else if v.abs() > MAX_LABEL {
        Err(format!(
            "{quoted} is too large: labels are standardised (mean and standard deviation), which \
             needs magnitudes of at most {MAX_LABEL:e}; rescale the labels"
        ))
    } else {
        Ok(v)
    }
}

/// The largest label magnitude: squares of labels, summed over millions of them, must stay
/// finite when the labels are standardised.
pub const MAX_LABEL: f64 = 1e100;

/// A list of unique ids (pending candidates, a test set) and where it comes from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IdList {
    /// The file, or what stands for one, for messages.
    pub source: PathBuf,
    /// The ids.
    pub ids: Vec<String>,
}

impl IdList {
    /// `ids`, which `source` names in messages.
    pub fn new(source: impl Into<PathBuf>, ids: Vec<String>) -> Self {
        IdList {
            source: source.into(),
            ids,
        }
    }

    /// The ids of `path` ([`read_id_list`]).
    pub fn read(path: &Path) -> Result<Self> {
        Ok(IdList::new(path, read_id_list(path)?))
    }

    /// The ids of `path`, none without one.
    pub fn read_or_empty(path: Option<&Path>) -> Result<Self> {
        path.map_or_else(|| Ok(IdList::default()), IdList::read)
    }
}

/// Reads one id per line (trimmed of ASCII whitespace; blank lines skipped), plain or gzip.
/// Ids must be unique.
pub fn read_id_list(path: &Path) -> Result<Vec<String>> {
    let (mut input, compressed) = open_text_compressed(path)?;
    read_ids_from(&mut *input, path).map_err(|e| {
        if compressed {
            prefer_compression_fault(&mut *input, path, e)
        } else {
            e
        }
    })
}

fn read_ids_from(input: &mut dyn BufRead, path: &Path) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut buf = Vec::new();
    let mut line = 0usize;
    loop {
        let read = read_line(input, &mut buf).map_err(|e| Error::io(path, e))?;
        if read == Line::End {
            break;
        }
        line += 1;
        if read == Line::TooLong {
            return Err(Error::parse(path, line, line_too_long()));
        }
        let id = std::str::from_utf8(buf.trim_ascii())
            .map_err(|_| Error::parse(path, line, "the id is not valid UTF-8"))?;
        if id.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(id.to_string(), line) {
            return Err(Error::DuplicateId {
                path: path.to_path_buf(),
                id: id.to_string(),
                where_: format!("lines {first} and {line}"),
            });
        }
        ids.push(id.to_string());
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_labels_with_custom_columns() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(
            &dir,
            "l.csv",
            "smiles,name,y\nCC,a,1.5\r\nCCC, b ,-2\n\n  \n\"C\nO\",c,3e2\nN,d,4",
        );
        let spec = LabelSpec {
            path: p,
            id_col: "name".into(),
            y_col: "y".into(),
        };
        let l = read_labels(&spec).unwrap();
        assert_eq!(l.ids, vec!["a", "b", "c", "d"]);
        assert_eq!(l.values, vec![1.5, -2.0, 300.0, 4.0]);
        assert_eq!(l.lines, vec![2, 3, 6, 8]);
    }

    #[test]
    fn empty_label_files_give_no_labels() {
        let dir = tempfile::tempdir().unwrap();
        for text in ["", "id,score\n", "id,score"] {
            let l = read_labels(&LabelSpec::new(file(&dir, "e.csv", text))).unwrap();
            assert!(l.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn label_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("name,score\na,1\n", 1, "\"id\""),
            ("id,value\na,1\n", 1, "the columns are: \"id\", \"value\""),
            ("id,score\na,1\nb,\n", 3, "empty value"),
            (
                "id,score\na,1\nb\n",
                3,
                "the row has 1 fields but the header has 2",
            ),
            ("id,score\na,x1\n", 2, "not a number"),
            ("id,score\na,NaN\n", 2, "NaN"),
            ("id,score\na,-inf\n", 2, "infinite"),
            ("id,score\n,1\n", 2, "empty id"),
        ];
        for (text, line, needle) in cases {
            let e = read_labels(&LabelSpec::new(file(&dir, "x.csv", text))).unwrap_err();
            match &e {
                Error::Parse { line: l, msg, .. } => {
                    assert_eq!(*l, line, "{text:?}: {e}");
                    assert!(msg.contains(needle), "{text:?}: {e}");
                }
                _ => panic!("{text:?}: {e:?}"),
            }
        }
        let e = read_labels(&LabelSpec::new(file(
            &dir,
            "d.csv",
            "id,score\na,1\nb,2\na,3\n",
        )))
        .unwrap_err();
        assert!(
            matches!(&e, Error::DuplicateId { id, where_, .. } if id == "a" && where_ == "lines 2 and 4"),
            "{e:?}"
        );
    }

    #[test]
    fn line_endings_are_normalised_across_chunks() {
        use std::io::Read;
        for input in [
            &b"a\r\nb\rc\n\r\n"[..],
            b"a\nb\nc\n\n",
            b"a\r\nb\r\nc\r\n\r",
        ] {
            for cap in [1, 2, 3, 64] {
                let inner = std::io::BufReader::with_capacity(cap, input);
                let mut out = Vec::new();
                LfNormalize::new(inner).read_to_end(&mut out).unwrap();
                assert_eq!(out, b"a\nb\nc\n\n", "{input:?} cap {cap}");
            }
        }
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut LfNormalize::new(&b"x,y"[..]), &mut out).unwrap();
        assert_eq!(out, b"x,y\n");
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut LfNormalize::new(&b""[..]), &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn id_lists() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(&dir, "ids.txt", " a \n\nb\r\nc");
        assert_eq!(read_id_list(&p).unwrap(), vec!["a", "b", "c"]);
        let p = file(&dir, "dup.txt", "a\nb\n\nb\n");
        let e = read_id_list(&p).unwrap_err();
        assert!(
            matches!(&e, Error::DuplicateId { id, where_, .. } if id == "b" && where_ == "lines 2 and 4"),
            "{e:?}"
        );
    }
}
