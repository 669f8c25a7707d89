//! A NumPy array (or `scipy.sparse` matrix) as a pool the engine reads tile by tile, exactly as
//! it reads a file: row `i` has the id `i`. The pool borrows the arrays for the call.

use std::path::Path;

use poolrank::data::{FeatureKind, Pool, PoolReader, Tile};

use crate::convert::View;

/// The arrays behind `view`, as a pool.
pub struct ArrayPool<'a> {
    view: View<'a>,
}

impl<'a> ArrayPool<'a> {
    /// A pool over `view`.
    pub fn new(view: View<'a>) -> Self {
        ArrayPool { view }
    }
}

impl Pool for ArrayPool<'_> {
    fn name(&self) -> &Path {
        Path::new("<array>")
    }

    fn open(&self) -> poolrank::Result<Box<dyn PoolReader + '_>> {
        Ok(Box::new(ArrayPass {
            view: &self.view,
            next: 0,
        }))
    }

    fn ids_are_row_indices(&self) -> poolrank::Result<bool> {
        Ok(true)
    }
}

/// One pass over an [`ArrayPool`].
struct ArrayPass<'v, 'a> {
    view: &'v View<'a>,
    next: usize,
}

impl PoolReader for ArrayPass<'_, '_> {
    fn kind(&self) -> FeatureKind {
        self.view.kind()
    }

    fn len_hint(&self) -> Option<usize> {
        Some(self.view.rows())
    }

    fn read_tile(&mut self, max_rows: usize, tile: &mut Tile) -> poolrank::Result<bool> {
        let start = self.next;
        let end = (start + max_rows.max(1)).min(self.view.rows());
        tile.start = start;
        tile.ids.clear();
        self.view.rows_into(start, end, &mut tile.features)?;
        tile.ids.extend((start..end).map(|i| i.to_string()));
        self.next = end;
        Ok(end > start)
    }
}
