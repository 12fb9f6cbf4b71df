//! JPEG decoding with libjpeg-turbo's algorithms (the mozjpeg build of libjpeg-turbo, compiled from
//! source by the mozjpeg-sys crate), because that is what Pillow decodes with: the same accurate
//! integer IDCT, fancy chroma upsampling and YCbCr conversion give the same pixels, so a JPEG patch
//! gets the same answer as in PyTorch. Pure-Rust decoders round differently, by a level or two.

use super::{check_size, InputError};
use image::{DynamicImage, GrayImage, RgbImage};
use mozjpeg::{ColorSpaceExt, Decompress};
use mozjpeg_sys::{
    jpeg_common_struct, jpeg_error_mgr, jpeg_std_error, JWRN_JPEG_EOF, J_COLOR_SPACE,
};
use std::io::BufRead;
use std::os::raw::c_int;
use std::panic::AssertUnwindSafe;

/// libjpeg reports fatal errors by calling `error_exit`, which must not return: unwind to
/// `decode`'s catch_unwind with the message (`resume_unwind` skips the panic hook, so nothing is
/// printed).
extern "C-unwind" fn error_exit(cinfo: &mut jpeg_common_struct) {
    std::panic::resume_unwind(Box::new(message(cinfo)));
}

/// Warnings are ignored, as Pillow ignores them, except a premature end of file: libjpeg would
/// pad the image with grey, Pillow refuses a truncated image.
extern "C-unwind" fn emit_message(cinfo: &mut jpeg_common_struct, level: c_int) {
    // SAFETY: libjpeg passes its own live error manager.
    let code = unsafe { (*cinfo.err).msg_code };
    if level < 0 && code == JWRN_JPEG_EOF as c_int {
        std::panic::resume_unwind(Box::new("the file is truncated".to_owned()));
    }
}

fn message(cinfo: &mut jpeg_common_struct) -> String {
    // SAFETY: format_message writes at most JMSG_LENGTH_MAX (200) bytes.
    unsafe {
        let err = &*cinfo.err;
        let mut buffer = [0u8; 200];
        match err.format_message {
            Some(format) => {
                let format: unsafe extern "C-unwind" fn(&mut jpeg_common_struct, *mut u8) =
                    std::mem::transmute(format);
                format(cinfo, buffer.as_mut_ptr());
                let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
                String::from_utf8_lossy(&buffer[..end]).into_owned()
            }
            None => format!("libjpeg error {}", err.msg_code),
        }
    }
}

fn error_manager() -> jpeg_error_mgr {
    // SAFETY: jpeg_std_error fills in every field of a zeroed manager.
    let mut err: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { jpeg_std_error(&mut err) };
    err.error_exit = Some(error_exit);
    err.emit_message = Some(emit_message);
    err
}

/// Pillow's CMYK -> RGB (`cmyk2rgb` in Convert.c) on samples Pillow reads inverted ("CMYK;I",
/// Adobe's convention, which Pillow assumes for every CMYK JPEG).
fn pillow_cmyk_to_rgb(cmyk: &[[u8; 4]]) -> Vec<u8> {
    let muldiv255 = |a: u32, b: u32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    let mut rgb = Vec::with_capacity(cmyk.len() * 3);
    for px in cmyk {
        let nk = px[3] as u32; // 255 - (255 - k)
        for &stored in &px[..3] {
            rgb.push((nk - muldiv255(255 - stored as u32, nk)) as u8);
        }
    }
    rgb
}

/// Decodes a JPEG to 8-bit RGB or grayscale as Pillow would, refusing images over `max_pixels`
/// before decompressing them.
pub(crate) fn decode<R: BufRead>(reader: R, max_pixels: u64) -> Result<DynamicImage, InputError> {
    let fail = |detail: String| InputError::Decode {
        format: "JPEG".into(),
        detail,
    };
    let result =
        std::panic::catch_unwind(AssertUnwindSafe(|| -> Result<DynamicImage, InputError> {
            let jpeg = Decompress::with_err(error_manager())
                .from_reader(reader)
                .map_err(|e| fail(e.to_string()))?;
            let (width, height) = (jpeg.width() as u32, jpeg.height() as u32);
            check_size("JPEG", width, height, max_pixels)?;
            let image = match jpeg.color_space() {
                J_COLOR_SPACE::JCS_GRAYSCALE => {
                    let mut started = jpeg.grayscale().map_err(|e| fail(e.to_string()))?;
                    let data: Vec<u8> =
                        started.read_scanlines().map_err(|e| fail(e.to_string()))?;
                    started.finish().map_err(|e| fail(e.to_string()))?;
                    GrayImage::from_raw(width, height, data).map(DynamicImage::ImageLuma8)
                }
                J_COLOR_SPACE::JCS_CMYK | J_COLOR_SPACE::JCS_YCCK => {
                    let mut started = jpeg
                        .to_colorspace(J_COLOR_SPACE::JCS_CMYK)
                        .map_err(|e| fail(e.to_string()))?;
                    let data: Vec<[u8; 4]> =
                        started.read_scanlines().map_err(|e| fail(e.to_string()))?;
                    started.finish().map_err(|e| fail(e.to_string()))?;
                    RgbImage::from_raw(width, height, pillow_cmyk_to_rgb(&data))
                        .map(DynamicImage::ImageRgb8)
                }
                _ => {
                    let mut started = jpeg.rgb().map_err(|e| fail(e.to_string()))?;
                    debug_assert_eq!(started.color_space().num_components(), 3);
                    let data: Vec<u8> =
                        started.read_scanlines().map_err(|e| fail(e.to_string()))?;
                    started.finish().map_err(|e| fail(e.to_string()))?;
                    RgbImage::from_raw(width, height, data).map(DynamicImage::ImageRgb8)
                }
            };
            image.ok_or_else(|| fail("fewer rows than the header declares".into()))
        }));
    match result {
        Ok(decoded) => decoded,
        Err(payload) => Err(fail(
            payload
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "libjpeg failed".into()),
        )),
    }
}
