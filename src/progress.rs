//! The bar of a run over many images, on standard error: only on a terminal, and only when there
//! is more than one image (a slide shows a bar of its own windows instead).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A bar of `len` images; hidden when `quiet`, for one image, or off a terminal.
pub(crate) fn images(len: usize, quiet: bool) -> ProgressBar {
    if quiet || len <= 1 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} images [{wide_bar}] {rate} ETA {eta}")
            .expect("valid template")
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} images/s", state.per_sec());
                },
            )
            .progress_chars("=> "),
    );
    bar
}

#[cfg(test)]
mod tests {
    #[test]
    fn quiet_runs_and_single_images_show_no_bar() {
        assert!(super::images(10, true).is_hidden());
        assert!(super::images(1, false).is_hidden());
    }
}
