//! Streaming writers: an output written row by row into its staged file (see
//! [`super::output`]), so a failure or a drop never leaves a partial file behind.

use std::path::Path;

use super::output::{OutputSet, StagedFile};
use crate::data::words_for;
use crate::error::Result;

/// Writes chemfp FPS text row by row (gzip when the name ends in `.gz`).
pub struct FpsWriter {
    out: StagedFile,
    nbits: usize,
    line: Vec<u8>,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl FpsWriter {
    /// Starts the declared output `path` with the `#FPS1`, `#num_bits=`, optional `#type=` and
    /// `#software=` lines.
    pub fn create(
        set: &OutputSet,
        path: &Path,
        nbits: usize,
        type_line: Option<&str>,
    ) -> Result<Self> {
        let gzip = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        let mut out = set.stage(path, gzip)?;
        let mut header = format!("#FPS1\n#num_bits={nbits}\n");
        if let Some(t) = type_line {
            header.push_str(&format!("#type={t}\n"));
        }
        header.push_str(&format!(
            "#software=poolrank/{}\n",
            env!("CARGO_PKG_VERSION")
        ));
        out.write_bytes(header.as_bytes())?;
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
        self.out.write_bytes(&self.line)
    }

    /// Completes the file in `set` (gzip trailer, flush, sync); `set.commit()` puts it in place.
    pub fn finish(self, set: &mut OutputSet) -> Result<()> {
        set.finish(self.out)
    }
}

impl std::fmt::Debug for FpsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FpsWriter")
            .field("out", &self.out)
            .field("nbits", &self.nbits)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Outputs;

    #[test]
    fn dropped_writer_leaves_nothing_and_commit_renames() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.fps");
        let set = Outputs::new().output(&p).check().unwrap();
        {
            let mut w = FpsWriter::create(&set, &p, 16, Some("t")).unwrap();
            w.push(&[0x0201], "a").unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut set = Outputs::new().output(&p).check().unwrap();
        let mut w = FpsWriter::create(&set, &p, 16, Some("t")).unwrap();
        w.push(&[0x0201], "a").unwrap();
        w.finish(&mut set).unwrap();
        set.commit().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let tail = format!(
            "#type=t\n#software=poolrank/{}\n0102\ta\n",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.ends_with(&tail), "{text}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
