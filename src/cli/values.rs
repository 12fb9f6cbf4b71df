//! The command line's names for plain configuration values. The domain types (`records::Format`,
//! `DeviceChoice`, `OpenEndpoint`) know nothing of clap; their spellings and help live here, once.

use crate::cli::HeatmapFormat;
use crate::engine::model::DeviceChoice;
use crate::records::Format;
use crate::serve::auth::OpenEndpoint;
use clap::builder::PossibleValue;

/// `clap::ValueEnum` for a plain enum: each variant's name on the command line and, optionally,
/// its help.
macro_rules! value_enum {
    ($ty:ty { $($variant:path => $name:literal $(: $help:literal)?,)* }) => {
        impl clap::ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($variant),*]
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(match self {
                    $($variant => PossibleValue::new($name)$(.help($help))?,)*
                })
            }
        }
    };
}

value_enum!(Format {
    Format::Table => "table": "Aligned columns for reading on a terminal",
    Format::Json => "json": "One JSON array of records",
    Format::Jsonl => "jsonl": "One JSON record per line",
    Format::Csv => "csv": "A header, then one row per record",
});

value_enum!(HeatmapFormat {
    HeatmapFormat::Png => "png": "A PNG with a colour bar, to look at",
    HeatmapFormat::Tiff => "tiff": "A pyramidal TIFF at the slide's size, to overlay in a viewer",
});

value_enum!(DeviceChoice {
    DeviceChoice::Cpu => "cpu",
    DeviceChoice::Cuda => "cuda",
    DeviceChoice::Auto => "auto": "CUDA when a GPU is visible, else CPU",
});

value_enum!(OpenEndpoint {
    OpenEndpoint::Health => "health": "`/ping` and the KServe `/v2/health/*` probes",
    OpenEndpoint::Metrics => "metrics": "`/metrics`",
    OpenEndpoint::None => "none": "nothing: every endpoint needs credentials",
});

/// Microns per pixel that a scan can have (0.01 to 50).
pub(crate) fn positive_mpp(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.01..=50.0).contains(&v) => Ok(v),
        _ => Err("microns per pixel between 0.01 and 50 (PCam: 0.972)".into()),
    }
}

/// An objective magnification (0.1 to 200).
pub(crate) fn positive_magnification(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.1..=200.0).contains(&v) => Ok(v),
        _ => Err("a magnification between 0.1 and 200 (10 for 10x)".into()),
    }
}
