//! One slide's results as every export format sees them.

use crate::slide::provenance::Provenance;
use crate::slide::regions::Grid;
use crate::slide::types::SlideResult;

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

pub(super) fn number(x: f32) -> serde_json::Value {
    crate::records::number(x)
}
