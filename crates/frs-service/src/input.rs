use base64::Engine as _;

use crate::ServiceError;

/// Largest accepted image: 8 MB, counted on the base64 text for `image_base64` and on the
/// bytes for `image_file` (FRS §5.1).
pub const MAX_IMAGE_BYTES: usize = 8 * 1024 * 1024;

/// One image as the client sent it.
#[derive(Debug, Clone)]
pub enum ImageInput {
    /// `image_base64`: standard base64, no line breaks, no data-URI prefix.
    Base64(String),
    /// `image_file`: the raw bytes of a multipart file part.
    File(Vec<u8>),
}

impl ImageInput {
    /// Checks size and encoding and returns the encoded image bytes.
    /// `name` is the parameter prefix used in error messages (`image`, `image1`, …).
    pub fn into_bytes(self, name: &'static str) -> Result<Vec<u8>, ServiceError> {
        match self {
            ImageInput::Base64(text) => {
                if text.is_empty() {
                    return Err(ServiceError::MissingParameter(param(name, true)));
                }
                if text.len() > MAX_IMAGE_BYTES {
                    return Err(ServiceError::ImageTooLarge { limit: MAX_IMAGE_BYTES });
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.as_bytes())
                    .map_err(|_| ServiceError::InvalidBase64)?;
                if bytes.is_empty() {
                    return Err(ServiceError::InvalidBase64);
                }
                Ok(bytes)
            }
            ImageInput::File(bytes) => {
                if bytes.is_empty() {
                    return Err(ServiceError::MissingParameter(param(name, false)));
                }
                if bytes.len() > MAX_IMAGE_BYTES {
                    return Err(ServiceError::ImageTooLarge { limit: MAX_IMAGE_BYTES });
                }
                Ok(bytes)
            }
        }
    }
}

fn param(name: &'static str, base64: bool) -> &'static str {
    match (name, base64) {
        ("image1", true) => "image1_base64",
        ("image1", false) => "image1_file",
        ("image2", true) => "image2_base64",
        ("image2", false) => "image2_file",
        (_, true) => "image_base64",
        (_, false) => "image_file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_malformed_base64_are_rejected() {
        assert!(matches!(
            ImageInput::Base64(String::new()).into_bytes("image"),
            Err(ServiceError::MissingParameter("image_base64"))
        ));
        assert!(matches!(
            ImageInput::Base64("not base64!".into()).into_bytes("image"),
            Err(ServiceError::InvalidBase64)
        ));
        assert!(matches!(ImageInput::Base64("====".into()).into_bytes("image"), Err(ServiceError::InvalidBase64)));
    }

    #[test]
    fn oversized_inputs_are_rejected_before_decoding() {
        let text = "A".repeat(MAX_IMAGE_BYTES + 4);
        assert!(matches!(ImageInput::Base64(text).into_bytes("image"), Err(ServiceError::ImageTooLarge { .. })));
        assert!(matches!(
            ImageInput::File(vec![0; MAX_IMAGE_BYTES + 1]).into_bytes("image1"),
            Err(ServiceError::ImageTooLarge { .. })
        ));
    }

    #[test]
    fn valid_base64_round_trips() {
        let bytes = ImageInput::Base64("aGVsbG8=".into()).into_bytes("image");
        assert_eq!(bytes.ok().as_deref(), Some(&b"hello"[..]));
    }
}
