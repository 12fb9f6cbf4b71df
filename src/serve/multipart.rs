//! `multipart/form-data` bodies (`curl -F data=@patch.png`), read with multer: the field a
//! prediction takes, by name, as TorchServe hands form fields to a handler; and the image of a
//! TorchServe prediction request, a form's or the whole body.

use super::http::Request;
use bytes::Bytes;
use std::convert::Infallible;

/// The boundary of a `multipart/form-data` Content-Type, or None for any other type.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    multer::parse_boundary(content_type).ok()
}

/// What is wrong with a form.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MultipartError {
    #[error("{0}")]
    Malformed(#[from] multer::Error),
    #[error("the form has no field named {} (fields: {names:?})", wanted.join(" or "))]
    NoField {
        wanted: Vec<String>,
        names: Vec<String>,
    },
}

/// The first of the `wanted` field names the form has (in `wanted`'s order of preference), as a
/// slice of the body.
pub(crate) async fn field(
    body: Bytes,
    boundary: &str,
    wanted: &[&str],
) -> Result<Bytes, MultipartError> {
    let whole = futures_util::stream::once(async move { Ok::<Bytes, Infallible>(body) });
    let mut form = multer::Multipart::new(whole, boundary);
    let mut names = Vec::new();
    let mut found: Vec<Option<Bytes>> = vec![None; wanted.len()];
    while let Some(part) = form.next_field().await? {
        let name = part.name().unwrap_or_default().to_string();
        let data = part.bytes().await?;
        if let Some(k) = wanted.iter().position(|w| *w == name) {
            found[k].get_or_insert(data);
        }
        names.push(name);
    }
    found
        .into_iter()
        .flatten()
        .next()
        .ok_or_else(|| MultipartError::NoField {
            wanted: wanted.iter().map(|w| w.to_string()).collect(),
            names,
        })
}

/// Why a request carries no image.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NoImage {
    #[error("bad multipart form: {0}")]
    Form(MultipartError),
    #[error("the request has no image (empty body)")]
    Empty,
}

/// The image of a prediction request: a multipart field `data` (or `body`), as TorchServe handlers
/// read `row.get("data") or row.get("body")`, else the raw body.
pub(crate) async fn image(request: &Request) -> Result<Bytes, NoImage> {
    let content_type = request.header("content-type").unwrap_or("");
    let bytes = match boundary(content_type) {
        Some(boundary) => field(request.body.clone(), &boundary, &["data", "body"])
            .await
            .map_err(NoImage::Form)?,
        None => request.body.clone(),
    };
    if bytes.is_empty() {
        return Err(NoImage::Empty);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &'static [u8], wanted: &[&str]) -> Result<Bytes, MultipartError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(field(Bytes::from_static(body), "XyZ", wanted))
    }

    #[test]
    fn fields_by_name_in_order_of_preference() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"body\"; filename=\"a.png\"\r\n\
            Content-Type: image/png\r\n\r\n\x89PNG\r\n--X\r\n--XyZ\r\nContent-Disposition: form-data; \
            name=\"data\"\r\n\r\nhi\r\n--XyZ--\r\n";
        assert_eq!(read(body, &["data", "body"]).unwrap(), &b"hi"[..]);
        assert_eq!(read(body, &["body"]).unwrap(), &b"\x89PNG\r\n--X"[..]);
        let missing = read(body, &["image"]).unwrap_err().to_string();
        assert!(missing.contains("[\"body\", \"data\"]"), "{missing}");
    }

    #[test]
    fn boundaries_and_errors() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"ab c\"").as_deref(),
            Some("ab c")
        );
        assert_eq!(boundary("application/octet-stream"), None);
        assert!(read(b"no boundary here", &["data"]).is_err());
        assert!(read(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated",
            &["a"]
        )
        .is_err());
    }
}
