/// Every way a use-case can fail. The HTTP edge maps each variant to one FRS code and status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A required parameter is absent or empty (names the parameter).
    #[error("Lack the request parameter, or the request parameter {0} is empty.")]
    MissingParameter(&'static str),
    /// A parameter is present but malformed or out of range.
    #[error("The request param has wrong format, {0}")]
    InvalidParameter(String),
    /// `image_base64` is not valid base64.
    #[error("The image base64 could not be decoded.")]
    InvalidBase64,
    /// The bytes are not a JPEG, PNG or BMP image.
    #[error("The image format is not supported, only JPG, JPEG, PNG and BMP are.")]
    UnsupportedImageFormat,
    /// The bytes claim a supported format but cannot be decoded (truncated, corrupt).
    #[error("The image could not be decoded: {0}")]
    CorruptImage(String),
    /// The image (encoded, or base64) exceeds the byte limit.
    #[error("The image is larger than {limit} bytes.")]
    ImageTooLarge { limit: usize },
    /// The image resolution is outside the accepted range.
    #[error("The image resolution {width}x{height} is not supported, it must be smaller than {max}x{max}.")]
    ImageResolution { width: u32, height: u32, max: u32 },
    /// No face of acceptable size was found.
    #[error("Detect no face, check out your picture.")]
    NoFace,
    /// Too many requests are queued for inference.
    #[error("Too many requests, retry later.")]
    Overloaded,
    /// Our fault; the detail is logged, never sent to the client.
    #[error("internal error: {0}")]
    Internal(String),
}
