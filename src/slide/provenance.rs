//! What produced a slide's results, so that a map or region found later can be traced to the exact
//! model, configuration and settings: scancer's version, the sha256 of the TorchScript file and of
//! the handler configuration, the window grid, the level and resolution read, the thresholds.
//! Every record, export and image scancer writes for a slide carries it.

use super::resolution::Plan;
use crate::engine::model_source::ModelIdentity;
use crate::records::number;
use crate::records::summary::plain;

/// One slide's provenance.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Provenance {
    pub(crate) model: ModelIdentity,
    /// Window size and stride, in analysed pixels.
    pub(crate) window: (usize, usize),
    pub(crate) stride: usize,
    pub(crate) level: u32,
    /// Level-0 pixels per analysed pixel.
    pub(crate) downsample: f64,
    /// Microns per level-0 pixel, and where it was read.
    pub(crate) mpp: Option<(f64, &'static str)>,
    pub(crate) threshold: f32,
    pub(crate) tissue_threshold: f64,
    /// Gaussian sigma of the map regions are found on (0: none), in analysed pixels.
    pub(crate) smooth: f32,
}

pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

impl Provenance {
    pub(crate) fn new(model: &ModelIdentity, plan: &Plan, settings: Settings) -> Provenance {
        Provenance {
            model: model.clone(),
            window: settings.window,
            stride: settings.stride,
            level: plan.level,
            downsample: plan.downsample(),
            mpp: plan.mpp,
            threshold: settings.threshold,
            tissue_threshold: settings.tissue_threshold,
            smooth: settings.smooth,
        }
    }

    /// Microns per analysed pixel.
    pub(crate) fn analysed_mpp(&self) -> Option<f64> {
        self.mpp.map(|(m, _)| m * self.downsample)
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "scancer": VERSION,
            "model_sha256": self.model.model_sha256,
            "config_sha256": self.model.config_sha256,
            "window": [self.window.0, self.window.1],
            "stride": self.stride,
            "level": self.level,
            "downsample": plain(rounded(self.downsample)),
            "mpp": self.mpp.map(|(m, _)| plain(rounded(m))),
            "mpp_source": self.mpp.map(|(_, s)| s),
            "analysed_mpp": self.analysed_mpp().map(|m| plain(rounded(m))),
            "threshold": number(self.threshold),
            "tissue_threshold": self.tissue_threshold,
            "smooth": plain(f64::from(self.smooth)),
        })
    }

    /// `key=value` pairs, one a line, for image metadata and comments.
    pub(crate) fn lines(&self) -> Vec<(&'static str, String)> {
        let or_unknown = |v: Option<f64>| v.map_or("unknown".into(), |m| format!("{}", rounded(m)));
        vec![
            ("scancer", VERSION.to_string()),
            ("model_sha256", self.model.model_sha256.clone()),
            ("config_sha256", self.model.config_sha256.clone()),
            ("window", format!("{}x{}", self.window.0, self.window.1)),
            ("stride", self.stride.to_string()),
            ("level", self.level.to_string()),
            (
                "analysed_downsample",
                format!("{}", rounded(self.downsample)),
            ),
            ("mpp", or_unknown(self.mpp.map(|(m, _)| m))),
            ("analysed_mpp", or_unknown(self.analysed_mpp())),
            ("threshold", self.threshold.to_string()),
            ("tissue_threshold", self.tissue_threshold.to_string()),
            ("smooth", self.smooth.to_string()),
        ]
    }

    /// One line: `scancer 0.1.0; model_sha256 ...; ...`.
    pub(crate) fn one_line(&self) -> String {
        self.lines()
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The settings of a run that shape a slide's grid and regions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) window: (usize, usize),
    pub(crate) stride: usize,
    pub(crate) threshold: f32,
    pub(crate) tissue_threshold: f64,
    pub(crate) smooth: f32,
}

/// Six significant decimals: a downsample of 4.000926 or an mpp of 0.2425 as the slide says them,
/// without binary noise.
pub(crate) fn rounded(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}
