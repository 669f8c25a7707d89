//! A NumPy array (or `scipy.sparse` matrix) as a pool the engine reads tile by tile, exactly as
//! it reads a file: row `i` has the id `i`.

use poolrank::data::{FeatureKind, PoolReader, Tile};

use crate::convert::View;

/// One pass over an array pool.
pub struct ArrayPool {
    view: View<'static>,
    next: usize,
}

impl ArrayPool {
    /// A pass over `view`.
    ///
    /// # Safety
    /// The arrays behind `view` must stay alive and unchanged until every `ArrayPool` made from
    /// it is dropped. The binding makes the pools inside one call, holds the arrays' read-only
    /// borrows for the whole call, and drops the pools before it returns.
    pub unsafe fn new(view: &View<'_>) -> Self {
        // SAFETY: the caller keeps the arrays alive and unchanged for the pool's life.
        let view: View<'static> = unsafe { std::mem::transmute(view.clone()) };
        ArrayPool { view, next: 0 }
    }
}

impl PoolReader for ArrayPool {
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
