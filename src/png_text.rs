//! An RGB image as PNG bytes with text chunks (tEXt: what the image shows, its scale, its
//! provenance), as heatmaps and explanations carry them; `Software` names scancer.

/// Encodes `image` with a `Software` chunk and then `texts` (keyword, text) in order.
pub(crate) fn encode(image: &image::RgbImage, texts: Vec<(String, String)>) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, image.width(), image.height());
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let software = (
        "Software".to_string(),
        format!("scancer {}", env!("CARGO_PKG_VERSION")),
    );
    // Writing PNG to memory cannot fail but for an invalid keyword, and callers' are valid
    // (Latin-1, 1 to 79 characters).
    for (keyword, text) in std::iter::once(software).chain(texts) {
        encoder
            .add_text_chunk(keyword, text)
            .expect("valid PNG text keyword");
    }
    let mut writer = encoder.write_header().expect("PNG header to memory");
    writer
        .write_image_data(image.as_raw())
        .expect("PNG data to memory");
    writer.finish().expect("PNG end to memory");
    bytes
}
