//! Streaming writers: an output written row by row into a temporary file beside it and renamed
//! into place by `commit`, so a failure (or a drop) never leaves a partial file behind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::data::words_for;
use crate::error::{Error, Result};

/// A temporary file in `path`'s folder: `.NAME.PID.TAG.tmp`.
pub(crate) fn temp_path(path: &Path, tag: &str) -> Result<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::io(path, std::io::Error::other("not a file path")))?;
    Ok(dir.join(format!(
        ".{}.{}.{tag}.tmp",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// A file written in the background of its final name; removed on drop unless committed.
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    w: Option<Box<dyn Write + Send>>,
    gzip: bool,
}

impl AtomicFile {
    /// Starts writing `path`; when `gzip` the bytes are gzip-compressed.
    pub fn create(path: &Path, gzip: bool) -> Result<Self> {
        let tmp = temp_path(path, "part")?;
        let file = File::create(&tmp).map_err(|e| Error::io(path, e))?;
        let buf = BufWriter::with_capacity(1 << 16, file);
        let w: Box<dyn Write + Send> = if gzip {
            Box::new(flate2::write::GzEncoder::new(
                buf,
                flate2::Compression::fast(),
            ))
        } else {
            Box::new(buf)
        };
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
            w: Some(w),
            gzip,
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes bytes.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.w {
            Some(w) => w.write_all(bytes).map_err(|e| Error::io(&self.path, e)),
            None => Err(Error::io(
                &self.path,
                std::io::Error::other("write after commit"),
            )),
        }
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> Result<()> {
        let path = self.path.clone();
        let Some(w) = self.w.take() else {
            return Ok(());
        };
        let res = (|| -> std::io::Result<()> {
            let mut w = w;
            w.flush()?;
            drop(w);
            File::open(&self.tmp)?.sync_all()?;
            std::fs::rename(&self.tmp, &path)
        })();
        res.map_err(|e| Error::io(&path, e))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.w.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl std::fmt::Debug for AtomicFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicFile")
            .field("path", &self.path)
            .field("gzip", &self.gzip)
            .finish()
    }
}

/// Writes chemfp FPS text row by row (gzip when the name ends in `.gz`).
pub struct FpsWriter {
    out: AtomicFile,
    nbits: usize,
    line: Vec<u8>,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl FpsWriter {
    /// Starts `path` with the `#FPS1`, `#num_bits=`, optional `#type=` and `#software=` lines.
    pub fn create(path: &Path, nbits: usize, type_line: Option<&str>) -> Result<Self> {
        let gzip = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        let mut out = AtomicFile::create(path, gzip)?;
        let mut header = format!("#FPS1\n#num_bits={nbits}\n");
        if let Some(t) = type_line {
            header.push_str(&format!("#type={t}\n"));
        }
        header.push_str(&format!(
            "#software=poolrank/{}\n",
            env!("CARGO_PKG_VERSION")
        ));
        out.write_all(header.as_bytes())?;
        Ok(FpsWriter {
            out,
            nbits,
            line: Vec::new(),
        })
    }

    /// Appends one fingerprint (LSB-first `u64` words, `words_for(nbits)` of them).
    pub fn push(&mut self, words: &[u64], id: &str) -> Result<()> {
        debug_assert_eq!(words.len(), words_for(self.nbits));
        self.line.clear();
        for byte in 0..self.nbits.div_ceil(8) {
            let b = (words[byte / 8] >> (8 * (byte % 8))) as u8;
            self.line.push(HEX[usize::from(b >> 4)]);
            self.line.push(HEX[usize::from(b & 15)]);
        }
        self.line.push(b'\t');
        self.line.extend_from_slice(id.as_bytes());
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    /// Finishes the file and renames it into place.
    pub fn commit(self) -> Result<()> {
        self.out.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_writer_leaves_nothing_and_commit_renames() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.fps");
        {
            let mut w = FpsWriter::create(&p, 16, Some("t")).unwrap();
            w.push(&[0x0201], "a").unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut w = FpsWriter::create(&p, 16, Some("t")).unwrap();
        w.push(&[0x0201], "a").unwrap();
        w.commit().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let tail = format!(
            "#type=t\n#software=poolrank/{}\n0102\ta\n",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.ends_with(&tail), "{text}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
