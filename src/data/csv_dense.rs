//! Dense features from CSV: a header, an id column, every other column a number.

use std::path::{Path, PathBuf};

use super::labels::{
    check_header, check_row_len, csv_error, csv_reader_over, find_column, header_names, is_blank,
    record_line, CsvInput,
};
use super::npy::{begin_tile, check_tile_rows};
use super::{FeatureKind, Features, PoolReader, Tile};
use crate::error::{snippet, Error, Result};

/// Reads a CSV pool (plain or gzip) row by row.
pub struct DenseCsvReader {
    path: PathBuf,
    rdr: csv::Reader<CsvInput>,
    /// The file is gzip (parse errors are then checked for a compression fault).
    compressed: bool,
    /// The first line of the row in `record`.
    line: usize,
    names: Vec<String>,
    id_at: usize,
    record: csv::ByteRecord,
    /// True when `record` holds a row not yet handed out (the first one, read at open).
    pending: bool,
    next_row: usize,
}

impl DenseCsvReader {
    /// Opens `path`, whose column `id_col` holds the ids; reads the header and the first row.
    pub fn open(path: &Path, id_col: &str) -> Result<Self> {
        let (input, compressed) = super::open_text_compressed(path)?;
        let mut rdr = csv_reader_over(input);
        let headers = rdr.byte_headers().map_err(|e| csv_error(path, e))?.clone();
        if is_blank(&headers) {
            return Err(Error::EmptyPool {
                path: path.to_path_buf(),
            });
        }
        let names = header_names(&headers);
        check_header(path, &names)?;
        super::limits::check_width(names.len() - 1, "the header's feature columns")
            .map_err(|e| Error::parse(path, 1, e.to_string()))?;
        let id_at = find_column(path, &names, id_col, "the id column")?;
        if names.len() < 2 {
            return Err(Error::parse(
                path,
                1,
                format!(
                    "the header has only the id column {id_col:?}; expected feature columns too"
                ),
            ));
        }
        let mut r = DenseCsvReader {
            path: path.to_path_buf(),
            rdr,
            compressed,
            names,
            id_at,
            record: csv::ByteRecord::new(),
            line: 0,
            pending: false,
            next_row: 0,
        };
        r.pending = r.advance()?;
        if !r.pending {
            return Err(Error::EmptyPool {
                path: path.to_path_buf(),
            });
        }
        Ok(r)
    }

    /// Reads the next non-blank record; false at the end.
    fn advance(&mut self) -> Result<bool> {
        loop {
            let more = self
                .rdr
                .read_byte_record(&mut self.record)
                .map_err(|e| csv_error(&self.path, e))?;
            if !more {
                return Ok(false);
            }
            if !is_blank(&self.record) {
                self.line = record_line(&self.rdr, &self.record);
                return Ok(true);
            }
        }
    }

    /// Checks and appends the row in `record`.
    fn push_record(&self, ids: &mut Vec<String>, data: &mut Vec<f32>) -> Result<()> {
        let line = self.line;
        let err = |msg: String| Error::parse(&self.path, line, msg);
        check_row_len(&self.path, line, &self.record, self.names.len())?;
        let id_name = &self.names[self.id_at];
        let raw_id = self.record.get(self.id_at).unwrap_or(b"");
        let id = std::str::from_utf8(raw_id.trim_ascii())
            .map_err(|_| err(format!("id column {id_name:?} is not valid UTF-8")))?;
        if id.is_empty() {
            return Err(err(format!("empty id in column {id_name:?}")));
        }
        let mark = data.len();
        for (k, raw) in self.record.iter().enumerate() {
            if k == self.id_at {
                continue;
            }
            let name = &self.names[k];
            let text = std::str::from_utf8(raw.trim_ascii()).unwrap_or("\u{fffd}");
            let v = if text.is_empty() {
                Err(format!("column {name:?} is empty; expected a number"))
            } else {
                match text.parse::<f32>() {
                    Ok(v) if v.is_nan() => Err(format!(
                        "column {name:?}: {} is NaN",
                        snippet(text.as_bytes())
                    )),
                    Ok(v) if v.is_infinite() => Err(format!(
                        "column {name:?}: {} is infinite or out of float32 range",
                        snippet(text.as_bytes())
                    )),
                    Ok(v) => Ok(v),
                    Err(_) => Err(format!(
                        "column {name:?}: {} is not a number",
                        snippet(text.as_bytes())
                    )),
                }
            };
            match v {
                Ok(v) => data.push(v),
                Err(msg) => {
                    data.truncate(mark);
                    return Err(err(msg));
                }
            }
        }
        ids.push(id.to_string());
        Ok(())
    }
}

impl PoolReader for DenseCsvReader {
    fn kind(&self) -> FeatureKind {
        FeatureKind::Dense {
            dim: self.names.len() - 1,
        }
    }

    fn len_hint(&self) -> Option<usize> {
        None
    }

    fn read_tile(&mut self, max_rows: usize, tile: &mut Tile) -> Result<bool> {
        check_tile_rows(max_rows, self.kind())?;
        let kind = self.kind();
        begin_tile(tile, kind, self.next_row);
        let mut data = match std::mem::replace(&mut tile.features, Features::empty(kind)) {
            Features::Dense { data, .. } => data,
            _ => Vec::new(),
        };
        let mut n = 0;
        let mut result = Ok(());
        while n < max_rows {
            if !self.pending {
                match self.advance() {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            self.pending = false;
            if let Err(e) = self.push_record(&mut tile.ids, &mut data) {
                result = Err(e);
                break;
            }
            n += 1;
        }
        tile.features = Features::Dense {
            dim: self.names.len() - 1,
            data,
        };
        if let Err(e) = result {
            return Err(if self.compressed {
                super::prefer_compression_fault(&mut self.rdr.get_mut().inner, &self.path, e)
            } else {
                e
            });
        }
        self.next_row += n;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_column_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, "x,name,y\n1,a,2\n3.5, b ,-4e1\n").unwrap();
        let mut r = DenseCsvReader::open(&p, "name").unwrap();
        assert_eq!(r.kind(), FeatureKind::Dense { dim: 2 });
        let mut t = Tile::new(r.kind());
        assert!(r.read_tile(5, &mut t).unwrap());
        assert_eq!(t.ids, vec!["a", "b"]);
        assert_eq!(t.features.dense_row(1), Some(&[3.5f32, -40.0][..]));
        assert!(!r.read_tile(5, &mut t).unwrap());
    }

    #[test]
    fn errors_name_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        for (text, line, needle) in [
            ("id,f1,f2\na,1,2\nb,1,zz\n", 3, "\"f2\""),
            ("id,f1,f2\na,1,2\nb,nan,2\n", 3, "NaN"),
            ("id,f1,f2\na,1,2\nb,1,inf\n", 3, "infinite"),
            (
                "id,f1,f2\na,1,2\nb,1\n",
                3,
                "the row has 2 fields but the header has 3",
            ),
            ("id,f1,f2\na,1,\n", 2, "empty"),
            ("id,f1,f2\n,1,2\n", 2, "empty id"),
        ] {
            std::fs::write(&p, text).unwrap();
            let mut r = DenseCsvReader::open(&p, "id").unwrap();
            let mut t = Tile::new(r.kind());
            let e = loop {
                match r.read_tile(1, &mut t) {
                    Ok(true) => continue,
                    Ok(false) => panic!("{text:?}: no error"),
                    Err(e) => break e,
                }
            };
            assert!(
                matches!(&e, Error::Parse { line: l, msg, .. } if *l == line && msg.contains(needle)),
                "{text:?}: {e}"
            );
        }
    }
}
