//! The limits every size read from a file or a setting is checked against before memory is
//! reserved, so that no input, however it lies about its sizes, makes the process abort or
//! grow past a tile's bound.
//!
//! Sizes that the file's real length backs (a `.npy`'s shape, a zip member's length) are
//! checked against that length instead; these limits cover what is only claimed (an FPS
//! `#num_bits`, a row's entries in a compressed `.npz`) or asked for (rows per tile, threads).

use super::{words_for, FeatureKind};
use crate::error::{Error, Result};

/// The most features a row may have: bits of a fingerprint, columns of counts or of dense
/// features (2^24). The count encodings keep a table entry per feature, and a tile of the
/// widest rows must still fit [`MAX_TILE_BYTES`] at a few hundred rows.
pub const MAX_FEATURES: usize = 1 << 24;

/// The most rows a tile may hold (2^24).
pub const MAX_TILE_ROWS: usize = 1 << 24;

/// The most bytes one tile's features may take (1 GiB): the default 65,536 rows of
/// 4,096-dimensional dense features, or of 131,072-bit fingerprints.
pub const MAX_TILE_BYTES: usize = 1 << 30;

/// The longest line (or CSV record) of a text input (16 MiB): far beyond any real row, and what
/// a reader holds at most while looking for the end of a line.
pub const MAX_LINE_BYTES: usize = 1 << 24;

/// The most worker threads a run may ask for.
pub const MAX_THREADS: usize = 1024;

/// Checks a feature width taken from `what` (a header, a shape) against [`MAX_FEATURES`].
pub(crate) fn check_width(width: usize, what: &str) -> Result<()> {
    if width > MAX_FEATURES {
        Err(Error::LimitExceeded {
            what: format!("features per row ({what})"),
            requested: width as u64,
            max: MAX_FEATURES as u64,
        })
    } else {
        Ok(())
    }
}

/// Bytes one row of `kind` takes in a tile, for the fixed-width kinds (counts are checked by
/// their entries as they are read).
fn row_bytes(kind: FeatureKind) -> usize {
    match kind {
        FeatureKind::Bits { nbits } => words_for(nbits) * 8,
        FeatureKind::Dense { dim } => dim * 4,
        // The row's start in the CSR index.
        FeatureKind::Counts { .. } => 8,
    }
}

/// Checks a tile of `max_rows` rows of `kind`: at least one row (a tile of none would never
/// progress), at most [`MAX_TILE_ROWS`], and within [`MAX_TILE_BYTES`].
pub(crate) fn check_tile(max_rows: usize, kind: FeatureKind) -> Result<()> {
    if max_rows == 0 {
        return Err(Error::param("tile_rows", "must be at least 1"));
    }
    if max_rows > MAX_TILE_ROWS {
        return Err(Error::LimitExceeded {
            what: "rows per tile".into(),
            requested: max_rows as u64,
            max: MAX_TILE_ROWS as u64,
        });
    }
    check_tile_bytes(max_rows, row_bytes(kind), &kind.to_string())
}

/// Checks that `rows` rows of `per_row` bytes each fit one tile's memory bound.
pub(crate) fn check_tile_bytes(rows: usize, per_row: usize, what: &str) -> Result<()> {
    let bytes = rows.saturating_mul(per_row);
    if bytes > MAX_TILE_BYTES {
        return Err(Error::LimitExceeded {
            what: format!(
                "memory for a tile of {rows} rows of {what}, in bytes (use fewer rows per tile)"
            ),
            requested: bytes as u64,
            max: MAX_TILE_BYTES as u64,
        });
    }
    Ok(())
}

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A line (with its `\n`, if it had one) is in the buffer.
    Read,
    /// The end of the input.
    End,
    /// The line is longer than [`MAX_LINE_BYTES`]; the buffer holds its start only.
    TooLong,
}

/// Reads one line into `buf` (cleared first) without ever holding more than
/// [`MAX_LINE_BYTES`], unlike `read_until`, which grows with the line.
pub(crate) fn read_line(
    input: &mut (impl std::io::BufRead + ?Sized),
    buf: &mut Vec<u8>,
) -> std::io::Result<Line> {
    buf.clear();
    loop {
        let chunk = match input.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(if buf.is_empty() {
                Line::End
            } else {
                Line::Read
            });
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let too_long = buf.len() + take > MAX_LINE_BYTES;
        let take = take.min(MAX_LINE_BYTES - buf.len());
        // Grow by doubling, but never past the limit (amortised growth from an odd capacity
        // would overshoot it by up to twice).
        let need = buf.len() + take;
        if need > buf.capacity() {
            let target = (buf.capacity() * 2).clamp(need, MAX_LINE_BYTES.max(need));
            buf.reserve_exact(target - buf.len());
        }
        buf.extend_from_slice(&chunk[..take]);
        if too_long {
            input.consume(take);
            return Ok(Line::TooLong);
        }
        input.consume(take);
        if done {
            return Ok(Line::Read);
        }
    }
}

/// The message for a line past [`MAX_LINE_BYTES`].
pub(crate) fn line_too_long() -> String {
    format!(
        "the line is longer than {MAX_LINE_BYTES} bytes, the most a line may hold; is this a \
         text file of the expected format?"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded() {
        let long = vec![b'a'; MAX_LINE_BYTES + 10];
        let mut input = std::io::BufReader::with_capacity(1000, &long[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut input, &mut buf).unwrap(), Line::TooLong);
        assert_eq!(buf.len(), MAX_LINE_BYTES);
        let mut input = &b"ab\ncd"[..];
        assert_eq!(read_line(&mut input, &mut buf).unwrap(), Line::Read);
        assert_eq!(buf, b"ab\n");
        assert_eq!(read_line(&mut input, &mut buf).unwrap(), Line::Read);
        assert_eq!(buf, b"cd");
        assert_eq!(read_line(&mut input, &mut buf).unwrap(), Line::End);
    }

    #[test]
    fn tiles_are_bounded() {
        let dense = FeatureKind::Dense { dim: 4096 };
        assert!(check_tile(65_536, dense).is_ok());
        assert!(matches!(
            check_tile(65_537, dense),
            Err(Error::LimitExceeded { .. })
        ));
        assert!(check_tile(0, dense).is_err());
        assert!(check_tile(MAX_TILE_ROWS + 1, FeatureKind::Counts { ndim: 1 }).is_err());
    }
}
