//! Molecule files: `.smi` (SMILES, whitespace, id; RDKit's convention) or CSV/TSV with named
//! SMILES and id columns (Enamine REAL's `.cxsmiles` is such a TSV), plain or compressed (gzip,
//! bzip2, zstd), read in chunks of [`Record`]s.
//!
//! Empty lines and lines starting with `#` are skipped. In a `.smi` file a first line whose
//! first field is `smiles` (any case) is a header and skipped too; a line without an id gets
//! its 0-based molecule number as id. In a CSV/TSV the id column is `id_col`, or `idnumber`
//! (Enamine's name) when the default `id` is not there; a CXSMILES extension after the SMILES
//! (`CC(N)O |&1:1|`) is dropped, since the fingerprints do not use it.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::data::limits::{line_too_long, read_line, Line};
use crate::data::{open_text, open_text_compressed, prefer_compression_fault};
use crate::error::{Error, Result};

/// How a molecule file is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// SMILES, whitespace, id (the rest of the line is ignored).
    Smi,
    /// A header naming the columns, then delimited rows.
    Delimited {
        /// `b','` for CSV, `b'\t'` for TSV.
        delimiter: u8,
    },
}

/// A molecule file and how to read it.
#[derive(Clone, Debug)]
pub struct SmilesSource {
    /// The file (plain or gzip).
    pub path: PathBuf,
    /// The layout; `None` infers it: `.csv` → CSV, `.tsv` and `.cxsmiles` → TSV, anything
    /// else → `.smi`.
    pub layout: Option<Layout>,
    /// SMILES column of a CSV/TSV (default `smiles`; matched ignoring case).
    pub smiles_col: String,
    /// Id column of a CSV/TSV (default `id`; matched ignoring case).
    pub id_col: String,
}

/// One molecule as read: where, its id and its SMILES.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// 1-based line in the file.
    pub line: usize,
    /// The id.
    pub id: String,
    /// The SMILES.
    pub smiles: String,
}

/// The lower-cased file name without a trailing compression suffix.
fn base_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    crate::data::strip_compression_suffix(&name).to_string()
}

/// True when the file name says SMILES text (`.smi`, `.smiles`, `.ism`, `.can`, plain or gzip).
pub fn is_smi_name(path: &Path) -> bool {
    let name = base_name(path);
    [".smi", ".smiles", ".ism", ".can"]
        .iter()
        .any(|e| name.ends_with(e))
}

/// True when the first header line of the CSV/TSV at `path` has a column named `col` (any
/// case); false for an unreadable or empty file (the real reader then reports it).
pub fn has_column(path: &Path, col: &str) -> bool {
    let name = base_name(path);
    let delimiter = if name.ends_with(".tsv") || name.ends_with(".cxsmiles") {
        '\t'
    } else {
        ','
    };
    let Ok(mut input) = open_text(path) else {
        return false;
    };
    let mut buf = Vec::new();
    loop {
        // Bounded: a file without line breaks must not be read whole to look at its header.
        if !matches!(read_line(&mut *input, &mut buf), Ok(Line::Read)) {
            return false;
        }
        let line = String::from_utf8_lossy(&buf);
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        return t
            .split(delimiter)
            .any(|f| f.trim().trim_matches('"').eq_ignore_ascii_case(col));
    }
}

impl SmilesSource {
    /// A `.smi` or CSV source with the default columns `smiles` and `id`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SmilesSource {
            path: path.into(),
            layout: None,
            smiles_col: "smiles".into(),
            id_col: "id".into(),
        }
    }

    /// The layout, given or inferred from the name.
    pub fn resolve_layout(&self) -> Layout {
        if let Some(l) = self.layout {
            return l;
        }
        let name = base_name(&self.path);
        if name.ends_with(".csv") {
            Layout::Delimited { delimiter: b',' }
        } else if name.ends_with(".tsv") || name.ends_with(".cxsmiles") {
            Layout::Delimited { delimiter: b'\t' }
        } else {
            Layout::Smi
        }
    }

    /// Opens the file for one pass.
    pub fn open(&self) -> Result<MoleculeReader> {
        let (input, compressed) = open_text_compressed(&self.path)?;
        let mut r = MoleculeReader {
            path: self.path.clone(),
            input,
            compressed,
            buf: Vec::new(),
            line: 0,
            layout: self.resolve_layout(),
            columns: None,
            header_len: 0,
            count: 0,
        };
        if let Layout::Delimited { delimiter } = r.layout {
            let Some(header) = r.next_line()? else {
                return Err(Error::parse(
                    &self.path,
                    1,
                    format!(
                        "no header line; expected column names including {:?} and {:?}",
                        self.smiles_col, self.id_col
                    ),
                ));
            };
            let line = r.line;
            let headers = split_delimited(&header, delimiter)
                .map_err(|m| Error::parse(&self.path, line, m))?;
            crate::data::labels::check_header(&self.path, &headers)?;
            r.header_len = headers.len();
            let find = |name: &str, flag: &str| {
                headers
                    .iter()
                    .position(|h| h == name)
                    .or_else(|| headers.iter().position(|h| h.eq_ignore_ascii_case(name)))
                    .ok_or_else(|| {
                        Error::parse(
                            &self.path,
                            line,
                            format!(
                                "no column {name:?} in the header (columns: {}); name it with \
                                 {flag}",
                                headers.join(", ")
                            ),
                        )
                    })
            };
            let id = find(&self.id_col, "--id-col").or_else(|e| match self.id_col == "id" {
                true => find(ENAMINE_ID, "--id-col").map_err(|_| e),
                false => Err(e),
            });
            r.columns = Some((find(&self.smiles_col, "--smiles-col")?, id?));
        }
        Ok(r)
    }
}

/// Enamine's id column, taken when the default `id` is not in the header.
const ENAMINE_ID: &str = "idnumber";

/// The SMILES of a field that may carry a CXSMILES extension (`SMILES |...|`).
fn without_cx_extension(field: &str) -> &str {
    match field.split_once([' ', '\t']) {
        Some((smiles, rest)) if rest.trim_start().starts_with('|') => smiles,
        _ => field,
    }
}

/// Splits one CSV/TSV line into trimmed fields; a field may be quoted (`"a,b"`, `""` for a
/// quote). A quoted field spanning lines is not supported.
fn split_delimited(line: &str, delimiter: u8) -> std::result::Result<Vec<String>, String> {
    let d = char::from(delimiter);
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        while chars.peek().is_some_and(|&c| c == ' ' && d != ' ') {
            chars.next();
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field".into()),
                }
            }
            while chars.peek().is_some_and(|&c| c != d) {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == d {
                    break;
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field.trim_ascii().to_string());
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

/// Reads molecules in order, a chunk at a time.
pub struct MoleculeReader {
    path: PathBuf,
    input: Box<dyn BufRead + Send>,
    /// The file is compressed (parse errors are then checked for a compression fault).
    compressed: bool,
    buf: Vec<u8>,
    /// 1-based number of the last line read.
    line: usize,
    layout: Layout,
    /// For CSV/TSV: the SMILES and id field numbers.
    columns: Option<(usize, usize)>,
    /// For CSV/TSV: the number of fields in the header, which every row must have.
    header_len: usize,
    /// Molecules read so far.
    count: usize,
}

impl MoleculeReader {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Clears `out` and fills it with up to `max` next molecules; `false` at the end.
    pub fn read_chunk(&mut self, max: usize, out: &mut Vec<Record>) -> Result<bool> {
        out.clear();
        while out.len() < max {
            match self.next_record() {
                Ok(Some(r)) => out.push(r),
                Ok(None) => break,
                Err(e) if self.compressed => {
                    return Err(prefer_compression_fault(&mut *self.input, &self.path, e))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(!out.is_empty())
    }

    /// The next line that is neither empty nor a comment, trimmed; `None` at the end.
    fn next_line(&mut self) -> Result<Option<String>> {
        loop {
            let read =
                read_line(&mut *self.input, &mut self.buf).map_err(|e| Error::io(&self.path, e))?;
            if read == Line::End {
                return Ok(None);
            }
            self.line += 1;
            if read == Line::TooLong {
                return Err(Error::parse(&self.path, self.line, line_too_long()));
            }
            let text = std::str::from_utf8(self.buf.trim_ascii())
                .map_err(|_| Error::parse(&self.path, self.line, "not valid UTF-8 text"))?;
            if !text.is_empty() && !text.starts_with('#') {
                return Ok(Some(text.to_string()));
            }
        }
    }

    fn next_record(&mut self) -> Result<Option<Record>> {
        let (layout, columns, count) = (self.layout, self.columns, self.count);
        let Some(text) = self.next_line()? else {
            return Ok(None);
        };
        let (smiles, id) = match (layout, columns) {
            (Layout::Delimited { delimiter }, Some((si, ii))) => {
                let fields = split_delimited(&text, delimiter);
                let fields = fields.map_err(|m| Error::parse(&self.path, self.line, m))?;
                if fields.len() != self.header_len {
                    return Err(Error::parse(
                        &self.path,
                        self.line,
                        format!(
                            "the row has {} fields but the header has {}",
                            fields.len(),
                            self.header_len
                        ),
                    ));
                }
                let get = |i: usize, name: &str| {
                    fields.get(i).cloned().ok_or_else(|| {
                        Error::parse(
                            &self.path,
                            self.line,
                            format!(
                                "{} field(s); the {name} column is field {}",
                                fields.len(),
                                i + 1
                            ),
                        )
                    })
                };
                let (s, i) = (get(si, "SMILES")?, get(ii, "id")?);
                let s = without_cx_extension(&s).to_string();
                if i.is_empty() {
                    return Err(Error::parse(&self.path, self.line, "empty id"));
                }
                (s, i)
            }
            _ => {
                let mut fields = text.split([' ', '\t']).filter(|f| !f.is_empty());
                let smiles = fields.next().unwrap_or_default().to_string();
                if count == 0 && smiles.eq_ignore_ascii_case("smiles") {
                    return self.next_record();
                }
                let id = fields
                    .next()
                    .map_or_else(|| count.to_string(), str::to_string);
                (smiles, id)
            }
        };
        self.count += 1;
        Ok(Some(Record {
            line: self.line,
            id,
            smiles,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(path: &Path) -> Result<Vec<Record>> {
        let mut r = SmilesSource::new(path).open()?;
        let (mut all, mut chunk) = (Vec::new(), Vec::new());
        while r.read_chunk(2, &mut chunk)? {
            all.append(&mut chunk);
        }
        Ok(all)
    }

    #[test]
    fn smi_lines_comments_header_and_missing_ids() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.smi");
        std::fs::write(
            &p,
            "SMILES Name\n# a comment\n\nCCO ethanol extra\r\n  c1ccccc1\tbenzene\nCC\n",
        )
        .unwrap();
        let got = read_all(&p).unwrap();
        let view: Vec<(usize, &str, &str)> = got
            .iter()
            .map(|r| (r.line, r.id.as_str(), r.smiles.as_str()))
            .collect();
        assert_eq!(
            view,
            [
                (4, "ethanol", "CCO"),
                (5, "benzene", "c1ccccc1"),
                (6, "2", "CC")
            ]
        );
    }

    #[test]
    fn csv_columns_by_name_and_missing_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, "score,SMILES,ID\n1.5,CCO,a\n\n# note\n2,\"CCN\",b\n").unwrap();
        let got = read_all(&p).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[1].line, &*got[1].id, &*got[1].smiles), (5, "b", "CCN"));
        let mut src = SmilesSource::new(&p);
        src.smiles_col = "smi".into();
        let e = src.open().err().unwrap();
        assert!(
            matches!(&e, Error::Parse { line: 1, msg, .. } if msg.contains("\"smi\"") && msg.contains("SMILES")),
            "{e}"
        );
        assert!(has_column(&p, "smiles"));
        assert_eq!(
            split_delimited(r#" "a,""b""" , c,"#, b','),
            Ok(vec!["a,\"b\"".to_string(), "c".into(), "".into()])
        );
        assert!(split_delimited("\"open", b',').is_err());
        assert!(!has_column(&p, "smi"));
    }
}
