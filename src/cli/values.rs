//! The command line's names for plain configuration values. The domain types (`records::Format`,
//! `DeviceChoice`, `OpenEndpoint`) know nothing of clap; their spellings and help live here, once.

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
