//! The slide API (`serve --slides DIR`): the folder's slides as JSON, Deep Zoom documents and tiles,
//! thumbnails and properties, and uploads. Slides are read and drawn on the blocking pool; every
//! `SlideError` becomes its status here, once.

use super::errors::{self, error, Exception};
use super::route::Endpoint;
use super::state::App;
use crate::serve::http::{Request, Response};
use crate::serve::pyjson;
use crate::serve::slides::upload::{self, UploadError};
use crate::serve::slides::{Library, SlideError, MAX_THUMBNAIL};
use hyper::StatusCode;
use std::sync::Arc;

/// The thumbnail side without `?size=`.
const THUMBNAIL_SIDE: usize = 256;

/// Answers a slide endpoint (a 404 without --slides).
pub(crate) async fn handle(app: &Arc<App>, request: &Request, endpoint: Endpoint<'_>) -> Response {
    let Some(library) = app.slides.clone() else {
        return errors::not_found();
    };
    let id = |id: &str| id.to_string();
    match endpoint {
        Endpoint::Slides => blocking(move || library.scan().map(|listed| json(&listed))).await,
        Endpoint::UploadSlide(name) => {
            // The connection streams uploads itself (`exchange`); this is a body already read.
            let body = request.body.clone();
            let declared = Some(body.len() as u64);
            let chunks = futures_util::stream::iter([Ok::<_, String>(body)]);
            let idle = std::time::Duration::from_secs(30);
            uploaded(upload::store(&library, name, declared, idle, chunks).await)
        }
        Endpoint::SlideDzi(slide) => {
            let slide = id(slide);
            blocking(move || {
                let dzi = library.dzi(&slide)?;
                Ok(Response::new(StatusCode::OK, "application/xml", dzi))
            })
            .await
        }
        Endpoint::SlideTile {
            id: slide,
            level,
            col,
            row,
        } => {
            let slide = id(slide);
            blocking(move || {
                let tile = library.tile(&slide, level, col, row)?;
                Ok(Response::new(StatusCode::OK, "image/jpeg", tile.as_slice())
                    .with_header("cache-control", "private, max-age=60".into()))
            })
            .await
        }
        Endpoint::SlideThumbnail(slide) => {
            let side = match request.query_param("size").map(str::parse::<usize>) {
                None => THUMBNAIL_SIDE,
                Some(Ok(side @ 1..=MAX_THUMBNAIL)) => side,
                Some(_) => {
                    return error(
                        Exception::BadRequest,
                        &format!("size: expected a number of pixels from 1 to {MAX_THUMBNAIL}"),
                    )
                }
            };
            let slide = id(slide);
            blocking(move || {
                let jpeg = library.thumbnail(&slide, side)?;
                Ok(Response::new(StatusCode::OK, "image/jpeg", jpeg.as_slice()))
            })
            .await
        }
        Endpoint::SlideProperties(slide) => {
            let slide = id(slide);
            blocking(move || library.properties(&slide).map(|p| json(&p))).await
        }
        _ => errors::not_found(),
    }
}

/// Runs slide work on the blocking pool: it reads files and decodes and encodes images.
async fn blocking(
    work: impl FnOnce() -> Result<Response, SlideError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => slide_error(&e),
        Err(e) => slide_error(&SlideError::Crashed(e.to_string())),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    let value = serde_json::to_value(value).expect("plain data serializes");
    Response::json(StatusCode::OK, format!("{}\n", pyjson::dumps(&value)))
}

/// A slide error's answer.
pub(crate) fn slide_error(e: &SlideError) -> Response {
    let exception = match e {
        SlideError::NoSuchSlide(_) | SlideError::NoSuchTile { .. } => Exception::ResourceNotFound,
        SlideError::Unreadable { .. } | SlideError::Render { .. } => Exception::Unprocessable,
        SlideError::Catalogue(_) | SlideError::Crashed(_) => Exception::InternalServer,
    };
    error(exception, &e.to_string())
}

/// An upload's answer: 201 with the slide as listed, or why not.
pub(crate) fn uploaded(result: Result<crate::serve::slides::Listed, UploadError>) -> Response {
    match result {
        Ok(listed) => {
            let mut response = json(&listed);
            response.status = StatusCode::CREATED;
            response.with_header("location", format!("/slides/{}/properties", listed.id))
        }
        Err(e) => {
            let exception = match &e {
                UploadError::Name(_) | UploadError::Body(_) => Exception::BadRequest,
                UploadError::Exists(_) => Exception::ConflictStatus,
                UploadError::TooLarge { .. } => Exception::RequestEntityTooLarge,
                UploadError::Timeout(_) => Exception::RequestTimeout,
                UploadError::NotASlide { .. } => Exception::Unprocessable,
                UploadError::Full(_) => Exception::InsufficientStorage,
                UploadError::Write(_) | UploadError::Listing(_) => Exception::InternalServer,
            };
            error(exception, &e.to_string())
        }
    }
}

/// The folder's library, for the streamed upload path of `exchange`.
pub(crate) fn library(app: &App) -> Option<Arc<Library>> {
    app.slides.clone()
}
