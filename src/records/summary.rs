//! A whole slide's summary, as its record carries it beyond its most suspicious window.

use super::json::number;

/// What a slide's record says beyond its most suspicious window.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub width: usize,
    pub height: usize,
    pub tiles: usize,
    pub tissue_tiles: usize,
    /// Tissue windows over all windows.
    pub tissue_fraction: f32,
    pub positive_tiles: usize,
    pub max_probability: Option<f32>,
    pub mean_probability: Option<f32>,
    /// Positive windows over tissue windows.
    pub positive_fraction: Option<f32>,
    /// Where the heatmap was written.
    pub heatmap: Option<String>,
    /// Slide pixels per heatmap pixel.
    pub heatmap_downsample: Option<usize>,
    /// Implausibly little tissue.
    pub warning: Option<String>,
}

impl Summary {
    pub fn to_json(&self) -> serde_json::Value {
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
