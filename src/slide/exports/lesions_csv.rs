//! Camelyon16's lesion-detection submission (`--lesions`): one line per region, `Confidence, X, Y`
//! (its peak probability and the peak window's centre in level-0 pixels), no header, as the
//! challenge's FROC evaluation (`Evaluation_FROC.py`) reads it.

use super::export::Export;
use std::io::{self, Write};

pub(crate) fn write(export: &Export, out: &mut dyn Write) -> io::Result<()> {
    for region in &export.result.regions {
        let (x, y) = region.peak_at;
        writeln!(out, "{},{x},{y}", region.peak)?;
    }
    Ok(())
}
