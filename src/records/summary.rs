//! A whole slide's summary, as its record carries it beyond its most suspicious window. Every
//! coordinate and size is in level-0 pixels, whatever level was analysed.

use super::json::number;
use serde_json::{json, Value};

/// What a slide's record says beyond its most suspicious window.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    /// The slide's level-0 size.
    pub(crate) width: usize,
    pub(crate) height: usize,
    /// The pyramid level read, and level-0 pixels per analysed pixel (resampling included).
    pub(crate) level: u32,
    pub(crate) downsample: f64,
    /// Microns per level-0 pixel, when the slide (or --slide-mpp) says.
    pub(crate) mpp: Option<f64>,
    pub(crate) tiles: usize,
    pub(crate) tissue_tiles: usize,
    /// Tissue windows over all windows.
    pub(crate) tissue_fraction: f32,
    pub(crate) positive_tiles: usize,
    pub(crate) max_probability: Option<f32>,
    pub(crate) mean_probability: Option<f32>,
    /// Positive windows over tissue windows.
    pub(crate) positive_fraction: Option<f32>,
    /// The most suspicious tissue window.
    pub(crate) hotspot: Option<Hotspot>,
    /// How many positive regions, and the first few, most suspicious first.
    pub(crate) regions: usize,
    pub(crate) top_regions: Vec<RegionSummary>,
    /// Where the heatmap was written.
    pub(crate) heatmap: Option<String>,
    /// Level-0 pixels per heatmap pixel.
    pub(crate) heatmap_downsample: Option<f64>,
    /// Per class (multiclass and segmentation models).
    pub(crate) classes: Vec<ClassSummary>,
    /// The other files written for the slide: (format key, path).
    pub(crate) exports: Vec<(&'static str, String)>,
    /// What produced the result (slide::provenance).
    pub(crate) provenance: Value,
    /// Implausibly little tissue.
    pub(crate) warning: Option<String>,
}

/// A window in level-0 pixels.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hotspot {
    pub(crate) bounds: [u64; 4],
    pub(crate) probability: f32,
}

/// One region as a record lists it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RegionSummary {
    /// Bounding box: x, y, width, height.
    pub(crate) bounds: [u64; 4],
    pub(crate) windows: usize,
    pub(crate) area_mm2: Option<f64>,
    pub(crate) diameter_mm: Option<f64>,
    pub(crate) peak_probability: f32,
    pub(crate) peak: (u64, u64),
}

/// One class of a multiclass or segmentation slide.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClassSummary {
    pub(crate) label: String,
    /// Multiclass: tissue windows whose class this is.
    pub(crate) windows: Option<usize>,
    /// Multiclass: of the tissue windows; segmentation: of the analysed tissue pixels.
    pub(crate) fraction: Option<f32>,
    pub(crate) mean_probability: Option<f32>,
    pub(crate) max_probability: Option<f32>,
    /// Multiclass: how many regions the class has (none where they were not looked for).
    pub(crate) regions: Option<usize>,
    /// Multiclass: its regions' area; segmentation: its pixels' (when the resolution is known).
    pub(crate) area_mm2: Option<f64>,
    pub(crate) top_regions: Vec<RegionSummary>,
    /// The class's own heatmap, when each class got one.
    pub(crate) heatmap: Option<String>,
}

impl ClassSummary {
    fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("label".into(), self.label.clone().into());
        if let Some(w) = self.windows {
            m.insert("windows".into(), w.into());
        }
        m.insert("fraction".into(), self.fraction.map_or(Value::Null, number));
        if self.windows.is_some() {
            let n = |x: Option<f32>| x.map_or(Value::Null, number);
            m.insert("mean_probability".into(), n(self.mean_probability));
            m.insert("max_probability".into(), n(self.max_probability));
            m.insert(
                "regions".into(),
                self.regions.map_or(Value::Null, Value::from),
            );
            m.insert(
                "top_regions".into(),
                self.top_regions
                    .iter()
                    .map(RegionSummary::to_json)
                    .collect(),
            );
        }
        m.insert("area_mm2".into(), mm(self.area_mm2, 9));
        if let Some(h) = &self.heatmap {
            m.insert("heatmap".into(), h.clone().into());
        }
        Value::Object(m)
    }
}

/// A float that is whole prints as an integer (a downsample of 4 is 4, not 4.0).
pub(crate) fn plain(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// Millimetres rounded to `places` decimals (areas to 0.001 um^2, lengths to the micron).
fn mm(v: Option<f64>, places: i32) -> Value {
    let scale = 10f64.powi(places);
    v.map_or(Value::Null, |v| plain((v * scale).round() / scale))
}

impl RegionSummary {
    fn to_json(&self) -> Value {
        let [x, y, w, h] = self.bounds;
        json!({
            "x": x, "y": y, "width": w, "height": h,
            "windows": self.windows,
            "area_mm2": mm(self.area_mm2, 9),
            "diameter_mm": mm(self.diameter_mm, 3),
            "peak_probability": number(self.peak_probability),
            "peak_x": self.peak.0,
            "peak_y": self.peak.1,
        })
    }
}

impl Summary {
    /// The largest region's area in mm^2.
    pub(crate) fn largest_region_mm2(&self) -> Option<f64> {
        self.top_regions
            .iter()
            .filter_map(|r| r.area_mm2)
            .reduce(f64::max)
    }

    pub(crate) fn to_json(&self) -> Value {
        let n = |x: Option<f32>| x.map_or(Value::Null, number);
        let hotspot = self.hotspot.as_ref().map_or(Value::Null, |h| {
            let [x, y, w, hh] = h.bounds;
            json!({"x": x, "y": y, "width": w, "height": hh, "probability": number(h.probability)})
        });
        let exports: serde_json::Map<String, Value> = self
            .exports
            .iter()
            .map(|(k, v)| ((*k).to_string(), Value::from(v.clone())))
            .collect();
        json!({
            "width": self.width,
            "height": self.height,
            "level": self.level,
            "downsample": plain(self.downsample),
            "mpp": self.mpp.map_or(Value::Null, plain),
            "tiles": self.tiles,
            "tissue_tiles": self.tissue_tiles,
            "tissue_fraction": number(self.tissue_fraction),
            "positive_tiles": self.positive_tiles,
            "max_probability": n(self.max_probability),
            "mean_probability": n(self.mean_probability),
            "positive_fraction": n(self.positive_fraction),
            "hotspot": hotspot,
            "regions": self.regions,
            "top_regions": self.top_regions.iter().map(RegionSummary::to_json).collect::<Vec<_>>(),
            "heatmap": self.heatmap,
            "heatmap_downsample": self.heatmap_downsample.map_or(Value::Null, plain),
            "classes": self.classes.iter().map(ClassSummary::to_json).collect::<Vec<_>>(),
            "exports": exports,
            "provenance": self.provenance,
            "warning": self.warning,
        })
    }
}
