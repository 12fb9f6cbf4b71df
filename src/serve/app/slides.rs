//! The slide API (`serve --slides DIR`): the folder's slides as JSON, Deep Zoom documents and tiles,
//! thumbnails and properties, and uploads. Slides are read and drawn on the blocking pool; every
//! `SlideError` becomes its status here, once.

use super::errors::{self, error, Exception};
use super::state::App;
use crate::serve::http::{Request, Response};
use crate::serve::pyjson;
use crate::serve::slides::upload::{self, UploadError};
use crate::serve::slides::{Library, SlideError, MAX_THUMBNAIL};
use hyper::StatusCode;
use std::sync::Arc;

/// The thumbnail side without `?size=`.
const THUMBNAIL_SIDE: usize = 256;

/// A slide endpoint, as the routing table reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlideCall<'a> {
    /// `GET /slides`
    List,
    /// `PUT /slides/{name}`: an upload, streamed into the folder.
    Upload(&'a str),
    /// `GET /slides/{id}.dzi`
    Dzi(&'a str),
    /// `GET /slides/{id}_files/{level}/{col}_{row}.jpeg`
    Tile {
        id: &'a str,
        level: usize,
        col: usize,
        row: usize,
    },
    /// `GET /slides/{id}/thumbnail.jpeg?size=`
    Thumbnail(&'a str),
    /// `GET /slides/{id}/properties`
    Properties(&'a str),
}

/// Answers a slide endpoint (a 404 without --slides).
pub(crate) async fn handle(app: &Arc<App>, request: &Request, call: SlideCall<'_>) -> Response {
    let Some(library) = app.slides.clone() else {
        return errors::not_found();
    };
    let id = |id: &str| id.to_string();
    match call {
        SlideCall::List => {
            let analyses = app.analyses.clone();
            blocking(move || {
                let mut listed = library.scan()?;
                if let Some(analyses) = analyses {
                    for slide in &mut listed {
                        slide.analyses = analyses.of_slide(&slide.id).unwrap_or_default();
                    }
                }
                Ok(json(&listed))
            })
            .await
        }
        SlideCall::Upload(name) => {
            // The connection streams uploads itself (`exchange`); this is a body already read.
            let body = request.body.clone();
            let declared = Some(body.len() as u64);
            let chunks = futures_util::stream::iter([Ok::<_, String>(body)]);
            let idle = std::time::Duration::from_secs(30);
            uploaded(upload::store(&library, name, declared, idle, chunks).await)
        }
        SlideCall::Dzi(slide) => {
            let slide = id(slide);
            blocking(move || {
                let dzi = library.dzi(&slide)?;
                Ok(Response::new(StatusCode::OK, "application/xml", dzi))
            })
            .await
        }
        SlideCall::Tile {
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
        SlideCall::Thumbnail(slide) => {
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
        SlideCall::Properties(slide) => {
            let slide = id(slide);
            blocking(move || library.properties(&slide).map(|p| json(&p))).await
        }
    }
}

/// Runs slide work on the blocking pool: it reads files and decodes and encodes images.
async fn blocking(
    work: impl FnOnce() -> Result<Response, SlideError> + Send + 'static,
) -> Response {
    on_blocking_pool(work, slide_error).await
}

/// Runs `work` on the blocking pool; its error answered by `answer`.
pub(super) async fn on_blocking_pool<E: Send + 'static>(
    work: impl FnOnce() -> Result<Response, E> + Send + 'static,
    answer: fn(&E) -> Response,
) -> Response {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => answer(&e),
        Err(e) => slide_error(&SlideError::Crashed(e.to_string())),
    }
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> Response {
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
