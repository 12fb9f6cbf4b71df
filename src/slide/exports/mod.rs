//! A slide's results in the formats viewers and evaluation code read, one module per format, every
//! coordinate in level-0 pixels, each file with the run's provenance: QuPath GeoJSON, ASAP XML,
//! Camelyon16's lesion CSV. Each is written whole through a `.partial` file.

pub(crate) mod asap_xml;
pub(crate) mod geojson;
pub(crate) mod lesions_csv;

use super::error::WriteError;
use super::provenance::Provenance;
use super::regions::Grid;
use super::types::SlideResult;
use std::path::Path;

/// One slide's results as an export sees them.
pub(crate) struct Export<'a> {
    pub(crate) result: &'a SlideResult,
    pub(crate) provenance: &'a Provenance,
    /// The slide as named in records.
    pub(crate) slide: &'a str,
}

impl Export<'_> {
    pub(crate) fn grid(&self) -> Grid<'_> {
        self.result.grid()
    }

    /// Whether class `c` is what the slide is searched for (drawn in the positive colour): the
    /// focus class, or, without one, every class but the first (background, normal...).
    pub(crate) fn positive(&self, c: usize) -> bool {
        match self.result.focus {
            Some(f) => c == f,
            None => c > 0,
        }
    }

    /// Microns per level-0 pixel.
    pub(crate) fn mpp(&self) -> Option<f64> {
        self.result.plan.mpp.map(|(m, _)| m)
    }

    /// What a file says about itself: the slide, its level-0 size, and the provenance.
    pub(crate) fn about(&self) -> serde_json::Value {
        let (w, h) = self.result.plan.level0;
        serde_json::json!({
            "slide": self.slide,
            "width": w,
            "height": h,
            "coordinates": "level-0 pixels",
            "provenance": self.provenance.to_json(),
        })
    }
}

fn number(x: f32) -> serde_json::Value {
    crate::records::number(x)
}

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    GeoJson,
    AsapXml,
    LesionsCsv,
}

impl Format {
    /// The record's and the CSV column's name.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Format::GeoJson => "geojson",
            Format::AsapXml => "asap_xml",
            Format::LesionsCsv => "lesions",
        }
    }

    /// The command-line flag that asks for it.
    pub(crate) fn flag(self) -> &'static str {
        match self {
            Format::GeoJson => "--geojson",
            Format::AsapXml => "--asap-xml",
            Format::LesionsCsv => "--lesions",
        }
    }

    /// The extensions that make the flag's path one file rather than a folder.
    pub(crate) fn extensions(self) -> &'static [&'static str] {
        match self {
            Format::GeoJson => &["geojson", "json"],
            Format::AsapXml => &["xml"],
            Format::LesionsCsv => &["csv"],
        }
    }

    /// What a slide's file in a folder is named: `<the input's path><suffix>`.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Format::GeoJson => ".geojson",
            Format::AsapXml => ".xml",
            Format::LesionsCsv => ".lesions.csv",
        }
    }

    /// Writes `export` to `path` (through its `.partial`).
    pub(crate) fn write(self, export: &Export, path: &Path) -> Result<(), WriteError> {
        crate::output_file::write_file_with(path, |out| match self {
            Format::GeoJson => geojson::write(export, out),
            Format::AsapXml => asap_xml::write(export, out),
            Format::LesionsCsv => lesions_csv::write(export, out),
        })
        .map_err(|error| WriteError {
            what: self.key(),
            path: path.to_path_buf(),
            error,
        })
    }
}
