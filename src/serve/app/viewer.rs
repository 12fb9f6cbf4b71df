//! The viewer page (`serve --slides`): `/` and `/viewer/`, its script and style, and OpenSeadragon
//! (from npm, embedded at build time by build.rs: no CDN). Every asset is in the binary; the page
//! reads everything else through the slide and analyses APIs.

use super::errors;
use super::state::App;
use crate::serve::http::Response;
use hyper::StatusCode;

const INDEX: &str = include_str!("../viewer/index.html");
const SCRIPT: &str = include_str!("../viewer/viewer.js");
const STYLE: &str = include_str!("../viewer/viewer.css");
#[cfg(viewer_assets)]
const OPENSEADRAGON: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/openseadragon.min.js"));
#[cfg(viewer_assets)]
const OPENSEADRAGON_LICENSE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/LICENSE.txt"));

/// An asset of the page, by its path under `/viewer/` ("" for the page itself).
pub(super) fn asset(app: &App, name: &str) -> Response {
    if app.slides.is_none() {
        return errors::not_found();
    }
    let (content_type, body): (&'static str, &[u8]) = match name {
        "" | "index.html" => ("text/html; charset=utf-8", INDEX.as_bytes()),
        "viewer.js" => ("text/javascript; charset=utf-8", SCRIPT.as_bytes()),
        "viewer.css" => ("text/css; charset=utf-8", STYLE.as_bytes()),
        #[cfg(viewer_assets)]
        "openseadragon.min.js" => ("text/javascript; charset=utf-8", OPENSEADRAGON),
        #[cfg(viewer_assets)]
        "openseadragon-LICENSE.txt" => ("text/plain; charset=utf-8", OPENSEADRAGON_LICENSE),
        #[cfg(not(viewer_assets))]
        "openseadragon.min.js" => {
            return errors::error(
                errors::Exception::ServiceUnavailable,
                "this scancer was built without OpenSeadragon, which the viewer draws slides with: build it after `cargo xtask setup`",
            )
        }
        _ => return errors::not_found(),
    };
    Response::new(StatusCode::OK, content_type, body)
        .with_header("cache-control", "no-cache".into())
        .with_header("x-content-type-options", "nosniff".into())
}

/// `/`: the page, where it is on.
pub(super) fn root(app: &App) -> Response {
    if app.slides.is_none() {
        // TorchServe answers 405 at its root.
        return errors::method_not_allowed();
    }
    Response::new(StatusCode::FOUND, "text/plain", "/viewer/\n")
        .with_header("location", "/viewer/".into())
}
