//! A whole slide's summary, as its record carries it beyond its most suspicious window.

use super::json::number;

/// What a slide's record says beyond its most suspicious window.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) tiles: usize,
    pub(crate) tissue_tiles: usize,
    /// Tissue windows over all windows.
    pub(crate) tissue_fraction: f32,
    pub(crate) positive_tiles: usize,
    pub(crate) max_probability: Option<f32>,
    pub(crate) mean_probability: Option<f32>,
    /// Positive windows over tissue windows.
    pub(crate) positive_fraction: Option<f32>,
    /// Where the heatmap was written.
    pub(crate) heatmap: Option<String>,
    /// Slide pixels per heatmap pixel.
    pub(crate) heatmap_downsample: Option<usize>,
    /// Implausibly little tissue.
    pub(crate) warning: Option<String>,
}

impl Summary {
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let n = |x: Option<f32>| x.map_or(serde_json::Value::Null, number);
        serde_json::json!({
            "width": self.width,
            "height": self.height,
            "tiles": self.tiles,
            "tissue_tiles": self.tissue_tiles,
            "tissue_fraction": number(self.tissue_fraction),
            "positive_tiles": self.positive_tiles,
            "max_probability": n(self.max_probability),
            "mean_probability": n(self.mean_probability),
            "positive_fraction": n(self.positive_fraction),
            "heatmap": self.heatmap,
            "heatmap_downsample": self.heatmap_downsample,
            "warning": self.warning,
        })
    }
}
