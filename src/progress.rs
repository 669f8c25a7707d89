//! Progress bars for the long passes (reading, scoring, featurizing).

/// A progress bar on stderr for `what` over `len` items (a counter when the length is
/// unknown), drawn only when stderr is a terminal and `show` is set. `what` names the items,
/// e.g. "scoring … candidates".
pub fn progress_bar(show: bool, len: Option<u64>, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !show || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(n) => (
            indicatif::ProgressBar::new(n),
            format!(
                "{{spinner}} {what}: {{pos}}/{{len}} [{{elapsed_precise}}] {{per_sec}} eta {{eta}}"
            ),
        ),
        None => (
            indicatif::ProgressBar::no_length(),
            format!("{{spinner}} {what}: {{pos}} [{{elapsed_precise}}] {{per_sec}}"),
        ),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}
