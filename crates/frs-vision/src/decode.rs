//! Bytes → upright RGB image, within FRS's limits, checked from the header before decoding.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

/// Bounds on accepted images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Width and height must each be strictly below this (FRS: 4096).
    pub max_side_exclusive: u32,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits { max_side_exclusive: 4096 }
    }
}

/// Why bytes were not accepted as an image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not a JPEG, PNG or BMP.
    #[error("unsupported image format")]
    UnsupportedFormat,
    /// A supported format whose data is truncated or corrupt.
    #[error("corrupt image: {0}")]
    Corrupt(String),
    /// The header declares a resolution outside the limits.
    #[error("resolution {width}x{height} is not below {max}x{max}")]
    Resolution { width: u32, height: u32, max: u32 },
}

/// Whether `path` names a JPEG, PNG or BMP file (the FRS formats) by its extension, in any case.
pub fn has_image_extension(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["jpg", "jpeg", "png", "bmp"].iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// The format from the file signature; only the FRS formats are recognised.
pub fn sniff_format(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if bytes.starts_with(b"BM") {
        Some(ImageFormat::Bmp)
    } else {
        None
    }
}

/// Decodes a JPEG, PNG or BMP into RGB, rotated/flipped upright per its EXIF orientation.
/// JPEGs decode with libjpeg-turbo (`crate::jpeg`), except CMYK ones and files libjpeg warns
/// about (truncated, stray bytes), which decode with `image`.
/// The resolution is checked from the header first, so an image claiming a huge size is
/// rejected without allocating for it.
pub fn decode_image(bytes: &[u8], limits: &ImageLimits) -> Result<RgbImage, DecodeError> {
    let format = sniff_format(bytes).ok_or(DecodeError::UnsupportedFormat)?;
    if format == ImageFormat::Jpeg && !has_end_of_image(bytes) {
        return Err(DecodeError::Corrupt("JPEG data is truncated".into()));
    }
    let max = limits.max_side_exclusive;
    // `into_decoder` parses only the header; nothing is allocated for pixels before the check.
    let reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder = reader.into_decoder().map_err(classify)?;
    let (width, height) = decoder.dimensions();
    if width >= max || height >= max {
        return Err(DecodeError::Resolution { width, height, max });
    }
    if width == 0 || height == 0 {
        return Err(DecodeError::Corrupt("image has no pixels".into()));
    }
    let orientation = decoder.orientation().map_err(classify)?;
    let decoded = match format {
        ImageFormat::Jpeg => crate::jpeg::decode_rgb(bytes)?.map(DynamicImage::ImageRgb8),
        _ => None,
    };
    let mut image = match decoded {
        Some(image) => image,
        None => DynamicImage::from_decoder(decoder).map_err(classify)?,
    };
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}

/// A complete JPEG ends with the EOI marker, possibly followed by a little padding.
fn has_end_of_image(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Every decoder failure past the signature check is damaged data (truncation, bad chunks, a
/// variant of the format the decoder does not support).
fn classify(error: image::ImageError) -> DecodeError {
    DecodeError::Corrupt(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_extensions_are_matched_case_insensitively() {
        use std::path::Path;
        assert!(has_image_extension(Path::new("a/b.JPG")));
        assert!(has_image_extension(Path::new("b.bmp")));
        assert!(!has_image_extension(Path::new("pairs.csv")));
        assert!(!has_image_extension(Path::new("jpg")));
    }

    fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).expect("encoding a test image");
        out.into_inner()
    }

    #[test]
    fn decodes_the_three_frs_formats() {
        let image = RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 100]));
        for format in [ImageFormat::Png, ImageFormat::Bmp, ImageFormat::Jpeg] {
            let decoded = decode_image(&encode(&image, format), &ImageLimits::default()).expect("decodes");
            assert_eq!(decoded.dimensions(), (40, 30), "{format:?}");
        }
    }

    #[test]
    fn rejects_other_formats_and_truncated_data() {
        let limits = ImageLimits::default();
        assert_eq!(decode_image(b"hello, world", &limits), Err(DecodeError::UnsupportedFormat));
        assert_eq!(decode_image(b"", &limits), Err(DecodeError::UnsupportedFormat));
        let image = RgbImage::from_pixel(64, 64, image::Rgb([10, 200, 30]));
        let jpeg = encode(&image, ImageFormat::Jpeg);
        assert!(matches!(decode_image(&jpeg[..jpeg.len() / 2], &limits), Err(DecodeError::Corrupt(_))));
        let png = encode(&image, ImageFormat::Png);
        assert!(matches!(decode_image(&png[..png.len() / 2], &limits), Err(DecodeError::Corrupt(_))));
    }

    #[test]
    fn rejects_a_huge_declared_resolution_from_the_header() {
        let mut png = encode(&RgbImage::new(1, 1), ImageFormat::Png);
        // IHDR: width and height at bytes 16..24, its CRC (over type and data) at 29..33.
        png[16..20].copy_from_slice(&50_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&50_000u32.to_be_bytes());
        let crc = crc32fast::hash(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            decode_image(&png, &ImageLimits::default()),
            Err(DecodeError::Resolution { width: 50_000, height: 50_000, max: 4096 })
        );
    }
}
