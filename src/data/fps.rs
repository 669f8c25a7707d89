//! chemfp FPS text pools: header lines, then one `hex<TAB>id` line per fingerprint.
//!
//! FPS is LSB-first within each byte: hex digits `2b, 2b+1` give byte `b`, which holds bits
//! `8b..8b+7` with bit `8b+k = (byte >> k) & 1`. That is already our word layout, so a row is
//! packed by placing byte `b` at bits `8(b % 8)..` of word `b / 8`.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::limits::{check_width, line_too_long, read_line, Line};
use super::npy::{begin_tile, check_tile_rows};
use super::{words_for, FeatureKind, Features, PoolReader, Tile};
use crate::data::{open_text, open_text_compressed, prefer_compression_fault};
use crate::error::{snippet, Error, Result};

/// The `#type=` header value of an FPS file (what made the fingerprints), `None` without one.
pub fn read_fps_type(path: &Path) -> Result<Option<String>> {
    let mut input = open_text(path)?;
    let mut buf = Vec::new();
    loop {
        let read = read_line(&mut *input, &mut buf).map_err(|e| Error::io(path, e))?;
        let line = strip_eol(&buf);
        if read != Line::Read || !line.starts_with(b"#") {
            return Ok(None);
        }
        if let Some(v) = line.strip_prefix(b"#type=") {
            return Ok(Some(String::from_utf8_lossy(v).trim().to_string()));
        }
    }
}

/// Reads an FPS file (plain or gzip) tile by tile.
pub struct FpsReader {
    path: PathBuf,
    input: Box<dyn BufRead + Send>,
    /// The file is gzip (parse errors are then checked for a compression fault).
    compressed: bool,
    nbits: usize,
    /// Hex digits per fingerprint.
    hex_len: usize,
    /// Where the width came from, for errors: `#num_bits` or the first row's line.
    width_from: WidthFrom,
    /// 1-based number of the last line read.
    line: usize,
    /// The first data row, read at open to learn the width and to detect an empty pool.
    pending: Option<(String, Vec<u64>)>,
    next_row: usize,
    buf: Vec<u8>,
}

#[derive(Clone, Copy)]
enum WidthFrom {
    NumBits,
    FirstRow(usize),
}

/// A line without its line ending (`\n` or `\r\n`).
fn strip_eol(mut b: &[u8]) -> &[u8] {
    if let Some(rest) = b.strip_suffix(b"\n") {
        b = rest;
    }
    b.strip_suffix(b"\r").unwrap_or(b)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl FpsReader {
    /// Opens `path` and reads its header and first row.
    pub fn open(path: &Path) -> Result<Self> {
        let (input, compressed) = open_text_compressed(path)?;
        let mut r = FpsReader {
            path: path.to_path_buf(),
            input,
            compressed,
            nbits: 0,
            hex_len: 0,
            width_from: WidthFrom::NumBits,
            line: 0,
            pending: None,
            next_row: 0,
            buf: Vec::new(),
        };
        match r.read_header() {
            Ok(()) => Ok(r),
            Err(e) => Err(r.fault_or(e)),
        }
    }

    /// A parse error in gzip text may stem from corrupt data: see
    /// [`prefer_compression_fault`].
    fn fault_or(&mut self, e: Error) -> Error {
        if self.compressed {
            prefer_compression_fault(&mut *self.input, &self.path, e)
        } else {
            e
        }
    }

    /// Reads the header lines and the first row (which fixes the width without `#num_bits`).
    fn read_header(&mut self) -> Result<()> {
        let path = self.path.clone();
        let path = path.as_path();
        let r = self;
        let mut num_bits: Option<usize> = None;
        loop {
            if !r.next_line()? {
                return Err(Error::EmptyPool {
                    path: path.to_path_buf(),
                });
            }
            let line = strip_eol(&r.buf);
            if line.is_empty() {
                continue;
            }
            if line.starts_with(b"#") {
                if r.line == 1 && line != b"#FPS1" {
                    return Err(Error::parse(
                        path,
                        1,
                        format!(
                            "expected \"#FPS1\" as the first line of an FPS file, found {}",
                            snippet(line)
                        ),
                    ));
                }
                if let Some(v) = line.strip_prefix(b"#num_bits=") {
                    let n = std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.trim().parse::<usize>().ok())
                        .filter(|&n| n > 0)
                        .ok_or_else(|| {
                            Error::parse(
                                path,
                                r.line,
                                format!(
                                    "bad #num_bits value {}; expected a positive integer",
                                    snippet(v)
                                ),
                            )
                        })?;
                    check_width(n, "#num_bits")
                        .map_err(|e| Error::parse(path, r.line, e.to_string()))?;
                    num_bits = Some(n);
                }
                continue;
            }
            // The first data row fixes the width when the header does not.
            match num_bits {
                Some(n) => {
                    r.nbits = n;
                    r.hex_len = n.div_ceil(8) * 2;
                    r.width_from = WidthFrom::NumBits;
                }
                None => {
                    let fp_len = line.iter().position(|&c| c == b'\t').unwrap_or(line.len());
                    if fp_len == 0 {
                        return Err(Error::parse(
                            path,
                            r.line,
                            "empty fingerprint; expected hex digits, a tab, then the id",
                        ));
                    }
                    if fp_len % 2 == 1 {
                        return Err(Error::parse(
                            path,
                            r.line,
                            format!("odd number of hex digits ({fp_len}); expected two per byte"),
                        ));
                    }
                    check_width(fp_len * 4, "the first fingerprint's bits")
                        .map_err(|e| Error::parse(path, r.line, e.to_string()))?;
                    r.nbits = fp_len * 4;
                    r.hex_len = fp_len;
                    r.width_from = WidthFrom::FirstRow(r.line);
                }
            }
            let mut words = Vec::with_capacity(words_for(r.nbits));
            let id = r.parse_row(&mut words)?;
            r.pending = Some((id, words));
            return Ok(());
        }
    }

    /// Reads the next line into `buf`; false at the end of the file.
    fn next_line(&mut self) -> Result<bool> {
        let read =
            read_line(&mut *self.input, &mut self.buf).map_err(|e| Error::io(&self.path, e))?;
        if read != Line::End {
            self.line += 1;
        }
        if read == Line::TooLong {
            return Err(Error::parse(&self.path, self.line, line_too_long()));
        }
        Ok(read == Line::Read)
    }

    /// Parses the data line in `buf`, appending its words to `out`; returns the id.
    fn parse_row(&self, out: &mut Vec<u64>) -> Result<String> {
        let err = |msg: String| Error::parse(&self.path, self.line, msg);
        let line = strip_eol(&self.buf);
        if line.starts_with(b"#") {
            return Err(err(
                "header line after the first fingerprint; header lines must come first".into(),
            ));
        }
        let Some(tab) = line.iter().position(|&c| c == b'\t') else {
            let hint = if line.contains(&b' ') {
                " (the fields are separated by spaces; FPS needs a tab)"
            } else {
                ""
            };
            return Err(err(format!(
                "missing id: expected hex fingerprint, a tab, then the id{hint}"
            )));
        };
        let (hex, rest) = (&line[..tab], &line[tab + 1..]);
        // Ids are trimmed of surrounding whitespace in every input (README, "Inputs").
        let id = rest
            .split(|&c| c == b'\t')
            .next()
            .unwrap_or(&[])
            .trim_ascii();
        if hex.len() % 2 == 1 {
            return Err(err(format!(
                "odd number of hex digits ({}); expected two per byte",
                hex.len()
            )));
        }
        if hex.len() != self.hex_len {
            return Err(err(match self.width_from {
                WidthFrom::NumBits => format!(
                    "fingerprint has {} hex digits, expected {} for #num_bits={}",
                    hex.len(),
                    self.hex_len,
                    self.nbits
                ),
                WidthFrom::FirstRow(first) => format!(
                    "fingerprint has {} hex digits but the first one (line {first}) has {}; \
                     all rows must have the same width",
                    hex.len(),
                    self.hex_len
                ),
            }));
        }
        let nbytes = hex.len() / 2;
        let mut word = 0u64;
        for b in 0..nbytes {
            let (h, l) = (hex[2 * b], hex[2 * b + 1]);
            let byte = match (hex_digit(h), hex_digit(l)) {
                (Some(h), Some(l)) => (h << 4) | l,
                (None, _) | (_, None) => {
                    let (pos, c) = if hex_digit(h).is_none() {
                        (2 * b, h)
                    } else {
                        (2 * b + 1, l)
                    };
                    return Err(err(format!(
                        "bad hex digit {:?} at position {} of the fingerprint",
                        c as char,
                        pos + 1
                    )));
                }
            };
            word |= u64::from(byte) << (8 * (b % 8));
            if b % 8 == 7 || b + 1 == nbytes {
                out.push(word);
                word = 0;
            }
        }
        // Bits past num_bits live in the last byte (the hex length matches num_bits).
        let tail = self.nbits % 8;
        if tail != 0 {
            let last = out.last().copied().unwrap_or(0) >> (8 * ((nbytes - 1) % 8));
            if (last & 0xff) >> tail != 0 {
                return Err(err(format!("bits are set beyond #num_bits={}", self.nbits)));
            }
        }
        if id.is_empty() {
            return Err(err("empty id after the tab".into()));
        }
        let id = std::str::from_utf8(id).map_err(|_| err("the id is not valid UTF-8".into()))?;
        Ok(id.to_string())
    }
}

impl PoolReader for FpsReader {
    fn kind(&self) -> FeatureKind {
        FeatureKind::Bits { nbits: self.nbits }
    }

    fn len_hint(&self) -> Option<usize> {
        None
    }

    fn read_tile(&mut self, max_rows: usize, tile: &mut Tile) -> Result<bool> {
        check_tile_rows(max_rows, self.kind())?;
        let kind = self.kind();
        begin_tile(tile, kind, self.next_row);
        let mut data = match std::mem::replace(&mut tile.features, Features::empty(kind)) {
            Features::Bits { data, .. } => data,
            _ => Vec::new(),
        };
        let result = self.fill(max_rows, &mut tile.ids, &mut data);
        tile.features = Features::Bits {
            nbits: self.nbits,
            data,
        };
        let n = result.map_err(|e| self.fault_or(e))?;
        self.next_row += n;
        Ok(n > 0)
    }
}

impl FpsReader {
    /// Reads up to `max_rows` rows; returns how many.
    fn fill(
        &mut self,
        max_rows: usize,
        ids: &mut Vec<String>,
        data: &mut Vec<u64>,
    ) -> Result<usize> {
        let mut n = 0;
        if let Some((id, words)) = self.pending.take() {
            ids.push(id);
            data.extend_from_slice(&words);
            n += 1;
        }
        while n < max_rows {
            if !self.next_line()? {
                break;
            }
            if strip_eol(&self.buf).is_empty() {
                continue;
            }
            let id = self.parse_row(data)?;
            ids.push(id);
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(p: &Path) -> Result<(Vec<String>, Vec<u64>, usize)> {
        let mut r = FpsReader::open(p)?;
        let FeatureKind::Bits { nbits } = r.kind() else {
            unreachable!()
        };
        let mut tile = Tile::new(r.kind());
        let (mut ids, mut words) = (Vec::new(), Vec::new());
        while r.read_tile(2, &mut tile)? {
            ids.extend(tile.ids.iter().cloned());
            if let Features::Bits { data, .. } = &tile.features {
                words.extend_from_slice(data);
            }
        }
        Ok((ids, words, nbits))
    }

    #[test]
    fn lsb_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.fps");
        std::fs::write(
            &p,
            "#FPS1\n#num_bits=12\n#type=x\n0100\ta\n8008\tb\textra\n\n",
        )
        .unwrap();
        let (ids, words, nbits) = read_all(&p).unwrap();
        assert_eq!(nbits, 12);
        assert_eq!(ids, vec!["a", "b"]);
        assert_eq!(words, vec![1, (1 << 7) | (1 << 11)]);
    }

    #[test]
    fn width_from_first_row_without_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.fps");
        std::fs::write(&p, "ff00ff00ff00ff0001\tx\r\n").unwrap();
        let (ids, words, nbits) = read_all(&p).unwrap();
        assert_eq!((ids.len(), nbits), (1, 72));
        assert_eq!(words, vec![0x00ff_00ff_00ff_00ff, 1]);
    }

    #[test]
    fn bits_beyond_num_bits() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.fps");
        std::fs::write(&p, "#FPS1\n#num_bits=12\n0f0f\ta\n0010\tb\n").unwrap();
        let e = read_all(&p).unwrap_err();
        assert!(
            matches!(&e, Error::Parse { line: 4, msg, .. } if msg.contains("beyond")),
            "{e}"
        );
    }
}
