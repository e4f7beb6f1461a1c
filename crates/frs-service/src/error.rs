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
    /// No face of acceptable size was found (detect, compare).
    #[error("Detect no face, check out your picture.")]
    NoFace,
    /// The search probe image has no face of acceptable size.
    #[error("Detect no face, can not search.")]
    NoFaceToSearch,
    /// The image to add has no face of acceptable size.
    #[error("Detect no face, can not add it to face set.")]
    NoFaceToAdd,
    /// The project already has a face set of this name.
    #[error("The face set {0} already exists.")]
    FaceSetExists(String),
    /// The project has no face set of this name.
    #[error("The face set {0} does not exist.")]
    FaceSetNotFound(String),
    /// The project holds as many face sets as it may.
    #[error("The number of face sets has reached the limit of {limit}.")]
    TooManyFaceSets { limit: usize },
    /// Adding the faces would exceed the set's `face_set_capacity`.
    #[error("The face set is full, its capacity is {capacity} faces.")]
    CapacityExceeded { capacity: u32 },
    /// No face of this id in the set.
    #[error("The face id is not exist, checkout your input.")]
    FaceNotFound,
    /// A delete matched no face.
    #[error("All the data not suitable, no data to be deleted.")]
    NothingMatched,
    /// The `filter` expression is malformed or names an unknown field.
    #[error("The filter is invalid: {0}")]
    InvalidFilter(String),
    /// A `return_fields` entry is not a custom field of the set.
    #[error("The return field {0} is not defined in the face set.")]
    UnknownReturnField(String),
    /// A `sort` entry names an unknown or non-numeric field.
    #[error("The sort field is not supported: {0}")]
    UnsupportedSort(String),
    /// No credentials, or AK/SK credentials that do not authenticate: malformed `Authorization`,
    /// unknown or disabled key, wrong signature, `X-Sdk-Date` out of range. The detail is for logs.
    #[error("Incorrect IAM authentication information.")]
    Unauthenticated(String),
    /// An `X-Auth-Token` that is malformed, tampered with, expired, or whose key no longer exists
    /// or is disabled. The detail is for logs.
    #[error("The authentication token is abnormal.")]
    InvalidToken(String),
    /// The path's project is not the caller's.
    #[error("The project id in the URL does not match the credential's project.")]
    ProjectMismatch,
    /// The caller's policy does not grant the action (names it).
    #[error("The credential is not authorized to perform {0}.")]
    Forbidden(&'static str),
    /// An `*_url` input the fetch policy refuses: malformed, not under an allowed prefix, or its
    /// host is (or resolves to) a refused address. Names the parameter.
    #[error("The request param {param} is refused: {reason}.")]
    ImageUrlRefused { param: &'static str, reason: String },
    /// An allowed `*_url` input could not be fetched: connection, timeout, non-2xx status, redirect
    /// or a body over the limit. Names the parameter.
    #[error("The image of {param} could not be fetched: {reason}.")]
    ImageUrlFetchFailed { param: &'static str, reason: String },
    /// Too many requests are queued for inference.
    #[error("Too many requests, retry later.")]
    Overloaded,
    /// The project's request rate limit (`[quota] requests_per_second`) is reached; a request
    /// may pass again after `retry_after_secs`.
    #[error("Too many requests, the project's request rate limit is reached, retry in {retry_after_secs} s.")]
    RateLimited { retry_after_secs: u64 },
    /// The project has used every call of this action `[quota] max_calls` allows (names it).
    #[error("The throttling threshold has been reached: policy project over quota, action:{action}, limit:{limit}.")]
    QuotaExhausted { action: &'static str, limit: u64 },
    /// Our fault; the detail is logged, never sent to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<frs_store::StoreError> for ServiceError {
    fn from(e: frs_store::StoreError) -> Self {
        ServiceError::Internal(format!("store: {e}"))
    }
}
