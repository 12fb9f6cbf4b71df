//! The analyses API (`serve --slides`): `POST /slides/{id}/analyses` queues one (202), `GET
//! /analyses/{id}` says where it stands, `DELETE` cancels it, and a finished one's results are its
//! files, its regions as JSON and its Deep Zoom overlay. Every `AnalysisError` becomes its status
//! here, once.

use super::errors::{self, error, Exception};
use super::slides::{json, on_blocking_pool, slide_error};
use super::state::App;
use crate::serve::http::{Request, Response};
use crate::serve::models::ServedModel;
use crate::serve::slides::analyses::ServedModels;
use crate::serve::slides::AnalysisError;
use hyper::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// An analyses endpoint, as the routing table reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnalysisCall<'a> {
    /// `POST /slides/{id}/analyses`
    Start(&'a str),
    /// `GET /slides/{id}/analyses`
    OfSlide(&'a str),
    /// `GET /analyses/{id}`
    Get(&'a str),
    /// `DELETE /analyses/{id}`
    Cancel(&'a str),
    /// `GET /analyses/{id}/{result}`: heatmap.png, geojson, asap.xml, lesions.csv, tiles.csv,
    /// regions, overlay.dzi.
    Result(&'a str, &'a str),
    /// `GET /analyses/{id}/overlay_files/{level}/{col}_{row}.png`
    OverlayTile {
        id: &'a str,
        level: usize,
        col: usize,
        row: usize,
    },
}

pub(super) async fn handle(app: &Arc<App>, request: &Request, call: AnalysisCall<'_>) -> Response {
    let (Some(analyses), Some(library)) = (app.analyses.clone(), app.slides.clone()) else {
        return errors::not_found();
    };
    let run = |work: Box<dyn FnOnce() -> Result<Response, AnalysisError> + Send>| {
        on_blocking_pool(work, analysis_error)
    };
    match call {
        AnalysisCall::Start(slide) => {
            let app: Arc<dyn ServedModels> = Arc::clone(app) as _;
            let (slide, body) = (slide.to_string(), request.body.clone());
            run(Box::new(move || {
                let analysis = analyses.submit(&app, &slide, &body)?;
                let location = format!("/analyses/{}", analysis["id"].as_str().unwrap_or(""));
                let mut response = json(&analysis);
                response.status = StatusCode::ACCEPTED;
                Ok(response.with_header("location", location))
            }))
            .await
        }
        AnalysisCall::OfSlide(slide) => {
            let slide = slide.to_string();
            run(Box::new(move || {
                let entry = library.entry(&slide)?;
                let listed = analyses.of_slide(&entry.id)?;
                let whole: Result<Vec<Value>, AnalysisError> = listed
                    .iter()
                    .map(|a| analyses.get(a["id"].as_str().unwrap_or("")))
                    .collect();
                Ok(json(&whole?))
            }))
            .await
        }
        AnalysisCall::Get(id) => {
            let id = id.to_string();
            run(Box::new(move || Ok(json(&analyses.get(&id)?)))).await
        }
        AnalysisCall::Cancel(id) => {
            let id = id.to_string();
            run(Box::new(move || Ok(json(&analyses.cancel(&id)?)))).await
        }
        AnalysisCall::Result(id, "regions") => {
            let id = id.to_string();
            run(Box::new(move || {
                let (path, _) = analyses.result(&id, "geojson")?;
                Ok(json(&regions(&path)?))
            }))
            .await
        }
        AnalysisCall::Result(id, "overlay.dzi") => {
            let id = id.to_string();
            run(Box::new(move || {
                let windows = overlay(&analyses, &library, &id)?;
                Ok(Response::new(
                    StatusCode::OK,
                    "application/xml",
                    windows.dzi(),
                ))
            }))
            .await
        }
        AnalysisCall::OverlayTile {
            id,
            level,
            col,
            row,
        } => {
            let threshold = match request.query_param("threshold").map(str::parse::<f32>) {
                None => 0.0,
                Some(Ok(t)) if (0.0..=1.0).contains(&t) => t,
                Some(_) => {
                    return error(
                        Exception::BadRequest,
                        "threshold: expected a probability from 0 to 1",
                    )
                }
            };
            let id = id.to_string();
            run(Box::new(move || {
                let windows = overlay(&analyses, &library, &id)?;
                let png = windows
                    .tile(level, col, row, threshold)
                    .map_err(|e| AnalysisError::NoSuchAnalysis(format!("{id} overlay: {e}")))?;
                Ok(Response::new(StatusCode::OK, "image/png", png)
                    .with_header("cache-control", "private, max-age=60".into()))
            }))
            .await
        }
        AnalysisCall::Result(id, name) => {
            let (id, name) = (id.to_string(), name.to_string());
            run(Box::new(move || {
                let (path, content_type) = analyses.result(&id, &name)?;
                let bytes = std::fs::read(&path).map_err(|e| {
                    AnalysisError::Catalogue(format!(
                        "{}: {}",
                        path.display(),
                        crate::messages::io_message(&e)
                    ))
                })?;
                Ok(Response::new(StatusCode::OK, content_type, bytes))
            }))
            .await
        }
    }
}

/// The windows an analysis' overlay draws.
fn overlay(
    analyses: &crate::serve::slides::Analyses,
    library: &crate::serve::slides::Library,
    id: &str,
) -> Result<Arc<crate::serve::slides::analyses::Windows>, AnalysisError> {
    let row = analyses.done_row(id)?;
    let entry = library.entry(&row.slide)?;
    let (width, height) = entry
        .described
        .as_ref()
        .map(|d| (d.width as usize, d.height as usize))
        .map_err(|why| AnalysisError::Model(why.clone()))?;
    analyses
        .overlays
        .windows(id, &analyses.folder(id).join("tiles.csv"), (width, height))
        .map_err(AnalysisError::Catalogue)
}

/// The regions of an analysis from its GeoJSON: name, class, level-0 bounds, outline and
/// measurements (area and largest diameter in px and mm, peak probability, windows).
fn regions(geojson: &std::path::Path) -> Result<Vec<Value>, AnalysisError> {
    let unreadable = |e: String| AnalysisError::Catalogue(format!("{}: {e}", geojson.display()));
    let text = std::fs::read_to_string(geojson).map_err(|e| unreadable(e.to_string()))?;
    let collection: Value = serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
    let features = collection["features"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(features
        .iter()
        .filter(|f| f["properties"]["objectType"] == "annotation")
        .map(|f| {
            let mut points = Vec::new();
            corners(&f["geometry"]["coordinates"], &mut points);
            let (x0, y0, x1, y1) = points.iter().fold(
                (f64::MAX, f64::MAX, f64::MIN, f64::MIN),
                |(a, b, c, d), &(x, y)| (a.min(x), b.min(y), c.max(x), d.max(y)),
            );
            json!({
                "name": f["properties"]["name"],
                "class": f["properties"]["classification"]["name"],
                "bounds": [x0, y0, x1 - x0, y1 - y0],
                "geometry": f["geometry"],
                "measurements": f["properties"]["measurements"],
            })
        })
        .collect())
}

impl ServedModels for App {
    fn served(&self, name: &str, version: Option<&str>) -> Result<Arc<ServedModel>, String> {
        self.lookup(name, version)
            .map_err(|missing| missing.message)
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Every point of a GeoJSON Polygon's or MultiPolygon's coordinates, however deeply nested.
fn corners(coordinates: &Value, points: &mut Vec<(f64, f64)>) {
    match (coordinates[0].as_f64(), coordinates[1].as_f64()) {
        (Some(x), Some(y)) => points.push((x, y)),
        _ => {
            for inner in coordinates.as_array().into_iter().flatten() {
                corners(inner, points);
            }
        }
    }
}

fn analysis_error(e: &AnalysisError) -> Response {
    let exception = match e {
        AnalysisError::Slide(slide) => return slide_error(slide),
        AnalysisError::Request(_) => Exception::BadRequest,
        AnalysisError::NoSuchAnalysis(_) => Exception::ResourceNotFound,
        AnalysisError::Model(_) => Exception::ModelNotFound,
        AnalysisError::NotReady { .. } | AnalysisError::Finished(_) => Exception::ConflictStatus,
        AnalysisError::Catalogue(_) => Exception::InternalServer,
    };
    error(exception, &e.to_string())
}
