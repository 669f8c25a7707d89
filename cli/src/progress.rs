//! Progress bars on stderr for the library's long passes ([`poolrank::progress::Progress`]),
//! drawn only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use poolrank::progress::{Progress, Ticks};

/// Draws each pass as an indicatif bar (a counter when the length is unknown).
pub struct Bars;

impl Progress for Bars {
    fn start(&self, what: &str, len: Option<u64>) -> Box<dyn Ticks> {
        if !std::io::stderr().is_terminal() {
            return Box::new(Bar(ProgressBar::hidden()));
        }
        let (bar, template) = match len {
            Some(n) => (
                ProgressBar::new(n),
                format!(
                    "{{spinner}} {what}: {{pos}}/{{len}} [{{elapsed_precise}}] {{per_sec}} eta {{eta}}"
                ),
            ),
            None => (
                ProgressBar::no_length(),
                format!("{{spinner}} {what}: {{pos}} [{{elapsed_precise}}] {{per_sec}}"),
            ),
        };
        bar.set_style(
            ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Box::new(Bar(bar))
    }
}

struct Bar(ProgressBar);

impl Ticks for Bar {
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
