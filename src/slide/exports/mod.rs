//! A slide's results in the formats viewers and evaluation code read, one module per format, every
//! coordinate in level-0 pixels, each file with the run's provenance: QuPath GeoJSON, ASAP XML,
//! Camelyon16's lesion CSV, WSInfer's results folder. Each is written whole through a `.partial`
//! file.

mod asap_xml;
mod export;
mod geojson;
mod lesions_csv;
mod wsinfer;

use super::error::WriteError;
pub(crate) use export::Export;
use std::path::Path;
pub(crate) use wsinfer::{write_run_metadata, MASK_SIDE as WSINFER_MASK_SIDE};

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    GeoJson,
    AsapXml,
    LesionsCsv,
    /// WSInfer's `model-outputs-csv/<slide>.csv`.
    WsinferCsv,
    /// WSInfer's `model-outputs-geojson/<slide>.geojson`.
    WsinferGeoJson,
    /// WSInfer's `patches/<slide>.h5`.
    WsinferPatches,
    /// WSInfer's `masks/<slide>.jpg`.
    WsinferMask,
}

impl Format {
    /// The record's and the CSV column's name.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Format::GeoJson => "geojson",
            Format::AsapXml => "asap_xml",
            Format::LesionsCsv => "lesions",
            Format::WsinferCsv => "wsinfer_csv",
            Format::WsinferGeoJson => "wsinfer_geojson",
            Format::WsinferPatches => "wsinfer_patches",
            Format::WsinferMask => "wsinfer_mask",
        }
    }

    /// The command-line flag that asks for it.
    pub(crate) fn flag(self) -> &'static str {
        match self {
            Format::GeoJson => "--geojson",
            Format::AsapXml => "--asap-xml",
            Format::LesionsCsv => "--lesions",
            Format::WsinferCsv
            | Format::WsinferGeoJson
            | Format::WsinferPatches
            | Format::WsinferMask => "--wsinfer-out",
        }
    }

    /// The extensions that make the flag's path one file rather than a folder.
    pub(crate) fn extensions(self) -> &'static [&'static str] {
        match self {
            Format::GeoJson => &["geojson", "json"],
            Format::AsapXml => &["xml"],
            Format::LesionsCsv => &["csv"],
            // Always a folder.
            Format::WsinferCsv
            | Format::WsinferGeoJson
            | Format::WsinferPatches
            | Format::WsinferMask => &[],
        }
    }

    /// What a slide's file in a folder is named: `<the input's path><suffix>`.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Format::GeoJson => ".geojson",
            Format::AsapXml => ".xml",
            Format::LesionsCsv => ".lesions.csv",
            Format::WsinferCsv => ".csv",
            Format::WsinferGeoJson => ".geojson",
            Format::WsinferPatches => ".h5",
            Format::WsinferMask => ".jpg",
        }
    }

    /// WSInfer's layout: the folder below `--wsinfer-out` that holds the format's files, each named
    /// by the slide's file name without its extension.
    pub(crate) fn wsinfer_folder(self) -> Option<&'static str> {
        match self {
            Format::WsinferCsv => Some(wsinfer::CSV_FOLDER),
            Format::WsinferGeoJson => Some(wsinfer::GEOJSON_FOLDER),
            Format::WsinferPatches => Some(wsinfer::PATCHES_FOLDER),
            Format::WsinferMask => Some(wsinfer::MASKS_FOLDER),
            _ => None,
        }
    }

    /// Writes `export` to `path` (through its `.partial`).
    pub(crate) fn write(self, export: &Export, path: &Path) -> Result<(), WriteError> {
        crate::output_file::write_file_with(path, |out| match self {
            Format::GeoJson => geojson::write(export, out),
            Format::AsapXml => asap_xml::write(export, out),
            Format::LesionsCsv => lesions_csv::write(export, out),
            Format::WsinferCsv => wsinfer::write_csv(export, out),
            Format::WsinferGeoJson => wsinfer::write_geojson(export, out),
            Format::WsinferPatches => wsinfer::write_patches(export, out),
            Format::WsinferMask => wsinfer::write_mask(export, out),
        })
        .map_err(|error| WriteError {
            what: self.key(),
            path: path.to_path_buf(),
            error,
        })
    }
}
