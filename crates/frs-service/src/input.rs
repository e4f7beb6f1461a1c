use base64::Engine as _;

use crate::{ImageFetcher, ServiceError};

/// Largest accepted image: 8 MB, counted on the base64 text for `image_base64`, on the bytes for
/// `image_file` and on the fetched body for `image_url` (FRS §5.1).
pub const MAX_IMAGE_BYTES: usize = 8 * 1024 * 1024;

/// One image as the client sent it.
#[derive(Debug, Clone)]
pub enum ImageInput {
    /// `image_base64`: standard base64, no line breaks, no data-URI prefix.
    Base64(String),
    /// `image_file`: the raw bytes of a multipart file part.
    File(Vec<u8>),
    /// `image_url`: an `http(s)` URL, fetched under the operator's [`crate::FetchPolicy`].
    Url(String),
}

impl ImageInput {
    /// The encoded image bytes: decoded base64, the file, or the body fetched from the URL by
    /// `fetcher`. Size and encoding are checked; a URL outside the fetch policy is
    /// `ImageUrlRefused`, a failed fetch `ImageUrlFetchFailed`.
    /// `name` is the parameter prefix used in error messages (`image`, `image1`, …).
    pub async fn into_bytes(self, name: &'static str, fetcher: &ImageFetcher) -> Result<Vec<u8>, ServiceError> {
        match self {
            ImageInput::Base64(text) => decode_base64(text, name),
            ImageInput::File(bytes) => checked_file(bytes, name),
            ImageInput::Url(url) if url.is_empty() => Err(ServiceError::MissingParameter(param(name, Kind::Url))),
            ImageInput::Url(url) => fetcher.fetch(&url, param(name, Kind::Url)).await,
        }
    }
}

fn decode_base64(text: String, name: &'static str) -> Result<Vec<u8>, ServiceError> {
    if text.is_empty() {
        return Err(ServiceError::MissingParameter(param(name, Kind::Base64)));
    }
    if text.len() > MAX_IMAGE_BYTES {
        return Err(ServiceError::ImageTooLarge { limit: MAX_IMAGE_BYTES });
    }
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(text.as_bytes()).map_err(|_| ServiceError::InvalidBase64)?;
    if bytes.is_empty() {
        return Err(ServiceError::InvalidBase64);
    }
    Ok(bytes)
}

fn checked_file(bytes: Vec<u8>, name: &'static str) -> Result<Vec<u8>, ServiceError> {
    if bytes.is_empty() {
        return Err(ServiceError::MissingParameter(param(name, Kind::File)));
    }
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ServiceError::ImageTooLarge { limit: MAX_IMAGE_BYTES });
    }
    Ok(bytes)
}

#[derive(Clone, Copy)]
enum Kind {
    Base64,
    File,
    Url,
}

fn param(name: &'static str, kind: Kind) -> &'static str {
    match (name, kind) {
        ("image1", Kind::Base64) => "image1_base64",
        ("image1", Kind::File) => "image1_file",
        ("image1", Kind::Url) => "image1_url",
        ("image2", Kind::Base64) => "image2_base64",
        ("image2", Kind::File) => "image2_file",
        ("image2", Kind::Url) => "image2_url",
        (_, Kind::Base64) => "image_base64",
        (_, Kind::File) => "image_file",
        (_, Kind::Url) => "image_url",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_malformed_base64_are_rejected() {
        assert!(matches!(decode_base64(String::new(), "image"), Err(ServiceError::MissingParameter("image_base64"))));
        assert!(matches!(decode_base64("not base64!".into(), "image"), Err(ServiceError::InvalidBase64)));
        assert!(matches!(decode_base64("====".into(), "image"), Err(ServiceError::InvalidBase64)));
    }

    #[test]
    fn oversized_inputs_are_rejected_before_decoding() {
        let text = "A".repeat(MAX_IMAGE_BYTES + 4);
        assert!(matches!(decode_base64(text, "image"), Err(ServiceError::ImageTooLarge { .. })));
        assert!(matches!(
            checked_file(vec![0; MAX_IMAGE_BYTES + 1], "image1"),
            Err(ServiceError::ImageTooLarge { .. })
        ));
    }

    #[test]
    fn valid_base64_round_trips() {
        let bytes = decode_base64("aGVsbG8=".into(), "image");
        assert_eq!(bytes.ok().as_deref(), Some(&b"hello"[..]));
    }

    #[tokio::test]
    async fn urls_go_through_the_fetcher_and_name_their_parameter() {
        let fetcher = ImageFetcher::default();
        let empty = ImageInput::Url(String::new()).into_bytes("image2", &fetcher).await;
        assert!(matches!(empty, Err(ServiceError::MissingParameter("image2_url"))));
        let refused =
            ImageInput::Url("https://bucket.obs.example.com/a.jpg".into()).into_bytes("image1", &fetcher).await;
        assert!(matches!(refused, Err(ServiceError::ImageUrlRefused { param: "image1_url", .. })), "{refused:?}");
        let file = ImageInput::File(b"x".to_vec()).into_bytes("image", &fetcher).await;
        assert_eq!(file.ok().as_deref(), Some(&b"x"[..]));
    }
}
