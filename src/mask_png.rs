//! `--mask-dir` for single images: each segmentation mask as an 8-bit PNG of class indices, one
//! uniquely named file per input (`<stem>.mask.png`, then `<stem>-2.mask.png`...). A slide's
//! stitched mask is written with the slide instead.

use crate::inputs::{io_message, Item, Source};
use crate::output_file::write_file;
use crate::records::{Outcome, Prediction, SegmentationPrediction, Summary};
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

/// Why a mask could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MaskError {
    #[error("mask size does not match its pixels")]
    Size,
    #[error("{0}")]
    Encode(image::ImageError),
    #[error("{}", io_message(.0))]
    Write(io::Error),
}

/// Writes the masks of a run's inputs into one folder.
pub(crate) struct MaskWriter {
    dir: PathBuf,
    enabled: bool,
    used: HashSet<String>,
}

impl MaskWriter {
    /// Writes into `dir` when `enabled` (a segmentation model), else passes outcomes through.
    pub(crate) fn new(dir: PathBuf, enabled: bool) -> Self {
        MaskWriter {
            dir,
            enabled,
            used: HashSet::new(),
        }
    }

    /// Writes `item`'s mask, if its outcome has one: the outcome (the input's error when the mask
    /// cannot be written) and the mask's file.
    pub(crate) fn write(&mut self, item: &Item, outcome: Outcome) -> (Outcome, Option<String>) {
        let Outcome::Predicted(Prediction::Segmentation(seg)) = &outcome else {
            return (outcome, None);
        };
        if !self.enabled {
            return (outcome, None);
        }
        let name = self.unique_name(item);
        let path = self.dir.join(name);
        match save_mask(&path, seg) {
            Ok(()) => (outcome, Some(path.to_string_lossy().into_owned())),
            Err(e) => (
                Outcome::Failed(format!("cannot write mask {}: {e}", path.display())),
                None,
            ),
        }
    }

    /// The mask file of an input's record: a slide's stitched mask was written with the slide
    /// (`slide`, its summary); a single image's is written here.
    pub(crate) fn record(
        &mut self,
        item: &Item,
        outcome: Outcome,
        slide: Option<&Summary>,
    ) -> (Outcome, Option<String>) {
        let stitched = slide.and_then(|s| s.exports.iter().find(|(k, _)| *k == "mask"));
        match stitched {
            Some((_, path)) => (outcome, Some(path.clone())),
            None => self.write(item, outcome),
        }
    }

    fn unique_name(&mut self, item: &Item) -> String {
        let stem = match item {
            Ok(input) => match &input.source {
                Source::File(p) => p
                    .file_stem()
                    .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned()),
                Source::Dicom(series) => series
                    .folder
                    .file_name()
                    .map_or_else(|| "slide".into(), |s| s.to_string_lossy().into_owned()),
                Source::Stdin => "stdin".into(),
            },
            Err(_) => "image".into(),
        };
        let mut name = format!("{stem}.mask.png");
        let mut n = 1;
        while !self.used.insert(name.clone()) {
            n += 1;
            name = format!("{stem}-{n}.mask.png");
        }
        name
    }
}

fn save_mask(path: &Path, seg: &SegmentationPrediction) -> Result<(), MaskError> {
    let image = image::GrayImage::from_raw(seg.width as u32, seg.height as u32, seg.mask.clone())
        .ok_or(MaskError::Size)?;
    let mut png = Vec::new();
    image
        .write_to(&mut io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(MaskError::Encode)?;
    write_file(path, &png).map_err(MaskError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::{Input, Unlisted};

    fn segmented(width: usize, height: usize, mask: Vec<u8>) -> Outcome {
        Outcome::Predicted(Prediction::Segmentation(SegmentationPrediction {
            width,
            height,
            mask,
            fractions: vec![0.5, 0.5],
        }))
    }

    fn file(path: &str) -> Item {
        Ok(Input {
            display: path.into(),
            source: Source::File(path.into()),
        })
    }

    #[test]
    fn masks_are_pngs_of_class_indices_with_unique_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut masks = MaskWriter::new(dir.path().to_owned(), true);
        let (outcome, first) = masks.write(&file("a/x.png"), segmented(2, 1, vec![0, 1]));
        assert!(matches!(outcome, Outcome::Predicted(_)));
        let first = first.unwrap();
        assert_eq!(first, dir.path().join("x.mask.png").to_string_lossy());
        let png = image::open(&first).unwrap().into_luma8();
        assert_eq!(
            (png.width(), png.height(), png.into_raw()),
            (2, 1, vec![0, 1])
        );
        let (_, second) = masks.write(&file("b/x.tif"), segmented(2, 1, vec![1, 1]));
        assert_eq!(
            second.unwrap(),
            dir.path().join("x-2.mask.png").to_string_lossy()
        );
        let stdin = Ok(Input {
            display: "-".into(),
            source: Source::Stdin,
        });
        let (_, third) = masks.write(&stdin, segmented(1, 1, vec![0]));
        assert_eq!(
            third.unwrap(),
            dir.path().join("stdin.mask.png").to_string_lossy()
        );
        let unlisted = Err(Unlisted {
            display: "?".into(),
            message: "gone".into(),
        });
        assert_eq!(masks.unique_name(&unlisted), "image.mask.png");
    }

    #[test]
    fn other_outcomes_pass_through() {
        let dir = tempfile::tempdir().unwrap();
        let mut off = MaskWriter::new(dir.path().to_owned(), false);
        let (outcome, file_written) = off.write(&file("x.png"), segmented(1, 1, vec![0]));
        assert!(matches!(outcome, Outcome::Predicted(_)) && file_written.is_none());
        let mut on = MaskWriter::new(dir.path().to_owned(), true);
        let (outcome, file_written) = on.write(&file("x.png"), Outcome::Failed("bad".into()));
        assert!(matches!(outcome, Outcome::Failed(m) if m == "bad") && file_written.is_none());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_mask_that_cannot_be_written_is_the_inputs_error() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the folder should be.
        let missing = dir.path().join("file");
        std::fs::write(&missing, b"").unwrap();
        let mut masks = MaskWriter::new(missing.clone(), true);
        let (outcome, file_written) = masks.write(&file("x.png"), segmented(1, 1, vec![0]));
        assert!(file_written.is_none());
        let Outcome::Failed(message) = outcome else {
            panic!("written into a file");
        };
        assert!(
            message.starts_with(&format!(
                "cannot write mask {}: ",
                missing.join("x.mask.png").display()
            )),
            "{message}"
        );
        let (outcome, _) = masks.write(&file("y.png"), segmented(2, 2, vec![0]));
        assert!(
            matches!(&outcome, Outcome::Failed(m) if m.ends_with(": mask size does not match its pixels")),
            "{outcome:?}"
        );
    }
}
