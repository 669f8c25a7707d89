//! Progress of the long passes (reading, scoring, featurizing, simulating). The library only
//! reports it; a front end draws it by installing a [`Progress`] once
//! ([`set_reporter`]: the command line draws bars on a terminal). Without one, nothing is
//! drawn. A run asks for progress with its `progress` setting.

use std::sync::OnceLock;

/// Draws the progress of passes.
pub trait Progress: Send + Sync {
    /// A pass over `len` items (when known) starts; `what` names the items (e.g. "scoring
    /// candidates").
    fn start(&self, what: &str, len: Option<u64>) -> Box<dyn Ticks>;
}

/// One pass's progress.
pub trait Ticks: Send + Sync {
    /// `n` more items are done.
    fn inc(&self, n: u64);
    /// The pass is over (a bar is cleared).
    fn finish(&self);
}

static REPORTER: OnceLock<Box<dyn Progress>> = OnceLock::new();

/// Installs the process's progress reporter; `false` (and `progress` dropped) when one is
/// already installed.
pub fn set_reporter(progress: Box<dyn Progress>) -> bool {
    REPORTER.set(progress).is_ok()
}

/// One pass's progress, drawn by the installed reporter (nothing without one).
pub(crate) struct Bar(Option<Box<dyn Ticks>>);

impl Bar {
    /// `n` more items are done.
    pub(crate) fn inc(&self, n: u64) {
        if let Some(t) = &self.0 {
            t.inc(n);
        }
    }

    /// The pass is over.
    pub(crate) fn finish_and_clear(&self) {
        if let Some(t) = &self.0 {
            t.finish();
        }
    }
}

/// The progress of a pass over `len` items (when known), reported when `show` is set and a
/// reporter is installed.
pub(crate) fn progress_bar(show: bool, len: Option<u64>, what: &str) -> Bar {
    Bar(show
        .then(|| REPORTER.get())
        .flatten()
        .map(|r| r.start(what, len)))
}
