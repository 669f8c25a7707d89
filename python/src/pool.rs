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
    pub fn new(view: View<'static>) -> Self {
        ArrayPool { view, next: 0 }
    }
}

/// `view` with its lifetime erased, for pool passes that the engine opens through a
/// `'static` callback.
///
/// # Safety
/// The arrays behind `view` must stay alive and unchanged until the returned view and every
/// copy of it are dropped. The binding makes it inside one call, holds the arrays' read-only
/// borrows for the whole call, and drops every copy before it returns.
pub unsafe fn erase_lifetime(view: &View<'_>) -> View<'static> {
    // SAFETY: the caller keeps the arrays alive and unchanged for the view's life.
    unsafe { std::mem::transmute::<View<'_>, View<'static>>(view.clone()) }
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
