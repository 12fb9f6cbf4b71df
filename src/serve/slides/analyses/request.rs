//! `POST /slides/{id}/analyses`: what an analysis asks for, as JSON, and the slide options it
//! becomes: the same options, with the same defaults, as `predict --tile`'s flags.

use crate::slide::heatmap::HeatmapOptions;
use crate::slide::resolution::{LevelChoice, Target};
use crate::slide::SlideOptions;
use serde::{Deserialize, Serialize};

/// predict's defaults: --tissue-threshold, --heatmap-size.
const TISSUE_THRESHOLD: f64 = 0.075;
const HEATMAP_SIDE: usize = 2048;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnalysisRequest {
    /// A served model's name.
    pub(crate) model: String,
    /// Its version [default: the default version].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) version: Option<String>,
    /// Microns per pixel to analyse at (--mpp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mpp: Option<f64>,
    /// A pyramid level to analyse (--level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) level: Option<u32>,
    /// An objective magnification to analyse at (--magnification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) magnification: Option<f64>,
    /// The slide's resolution where it declares none (--slide-mpp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) slide_mpp: Option<f64>,
    /// The probability above which a window is positive [default: the model's].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) threshold: Option<f32>,
    /// Mean saturation above which a window is tissue (--tissue-threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tissue_threshold: Option<f64>,
    /// Gaussian sigma of the map regions are found on (--smooth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) smooth: Option<f32>,
    /// The class of a multiclass model whose map and regions are the result (--class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) class: Option<String>,
    /// Pixels between windows (--stride).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stride: Option<usize>,
}

impl AnalysisRequest {
    /// The request from a body, or the one line that says what is wrong with it.
    pub(crate) fn parse(body: &[u8]) -> Result<AnalysisRequest, String> {
        let request: AnalysisRequest = serde_json::from_slice(body)
            .map_err(|e| format!("the analysis request is not valid: {e}"))?;
        let positive = |name: &str, v: Option<f64>| match v {
            Some(v) if !(v.is_finite() && v > 0.0) => {
                Err(format!("{name}: expected a positive number"))
            }
            _ => Ok(()),
        };
        positive("mpp", request.mpp)?;
        positive("magnification", request.magnification)?;
        positive("slide_mpp", request.slide_mpp)?;
        if [
            request.mpp.is_some(),
            request.level.is_some(),
            request.magnification.is_some(),
        ]
        .iter()
        .filter(|&&given| given)
        .count()
            > 1
        {
            return Err("give one of mpp, level and magnification".into());
        }
        if let Some(t) = request.threshold.filter(|t| !(0.0..=1.0).contains(t)) {
            return Err(format!("threshold {t}: expected a probability from 0 to 1"));
        }
        if let Some(t) = request
            .tissue_threshold
            .filter(|t| !(0.0..=1.0).contains(t))
        {
            return Err(format!(
                "tissue_threshold {t}: expected a saturation from 0 to 1"
            ));
        }
        if let Some(s) = request.smooth.filter(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(format!("smooth {s}: expected a sigma of 0 or more"));
        }
        if request.stride == Some(0) {
            return Err("stride: expected a positive number of pixels".into());
        }
        Ok(request)
    }

    /// The model as the analysis names it: `name` or `name/version`.
    pub(crate) fn model_ref(&self) -> String {
        match &self.version {
            Some(v) => format!("{}/{v}", self.model),
            None => self.model.clone(),
        }
    }

    /// The slide options `predict --tile` would run with the same flags.
    pub(crate) fn slide_options(&self) -> SlideOptions {
        SlideOptions {
            stride: self.stride,
            tissue_threshold: self.tissue_threshold.unwrap_or(TISSUE_THRESHOLD),
            all_tiles: false,
            thumbnail_side: 0,
            choice: LevelChoice {
                target: Target::from_flags(self.level, self.mpp, self.magnification),
                model_mpp: None,
                slide_mpp: self.slide_mpp,
                override_mpp: false,
                patch: (0, 0),
            },
            smooth: self.smooth.unwrap_or(0.0),
            class: self.class.clone(),
        }
    }

    pub(crate) fn heatmap_options(&self) -> HeatmapOptions {
        HeatmapOptions {
            max_side: HEATMAP_SIDE,
            smooth: self.smooth.unwrap_or(0.0),
            overlay: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_and_become_predicts_options() {
        let r = AnalysisRequest::parse(br#"{"model": "pcam", "mpp": 1.0, "smooth": 2}"#).unwrap();
        assert_eq!(r.model_ref(), "pcam");
        let options = r.slide_options();
        assert_eq!(options.choice.target, Some(Target::Mpp(1.0)));
        assert_eq!(options.tissue_threshold, 0.075);
        assert_eq!(options.smooth, 2.0);
        for (body, says) in [
            (
                r#"{"model": "pcam", "mpp": -1}"#,
                "mpp: expected a positive number",
            ),
            (r#"{"model": "pcam", "mpp": 1, "level": 0}"#, "give one of"),
            (
                r#"{"model": "pcam", "threshold": 2}"#,
                "expected a probability",
            ),
            (
                r#"{"model": "pcam", "colour": "red"}"#,
                "unknown field `colour`",
            ),
            (r#"{"mpp": 1}"#, "missing field `model`"),
            ("not json", "is not valid"),
        ] {
            let e = AnalysisRequest::parse(body.as_bytes()).unwrap_err();
            assert!(e.contains(says), "{body}: {e}");
        }
    }
}
