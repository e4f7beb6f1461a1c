//! The one error table of the HTTP edge: every failure a request can end in, mapped to exactly one
//! FRS error code and HTTP status, rendered as FRS's `{"error_code", "error_msg"}` body.
//!
//! Contract: 5xx bodies never carry internal details; the detail is logged once, here, where the
//! error is turned into a response. `docs/errors.md` is the human-readable copy of this table.

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use frs_service::ServiceError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every failed response (FRS §3.14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"error_code": "FRS.0501", "error_msg": "Detect no face, check out your picture."}))]
pub struct ErrorBody {
    /// `FRS.xxxx`, or `APIG.xxxx` for routing failures.
    pub error_code: String,
    /// Human-readable cause; never contains internal details.
    pub error_msg: String,
}

/// The FRS error code of a response, attached to error responses as an extension so the request
/// log line can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

/// The generic message of every 5xx answer (FRS.0018).
pub const INTERNAL_ERROR_MSG: &str = "The service inner error.";

/// Every way a request can fail at the edge, plus the use-case failures of the service.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The `Content-Type` header is absent or empty on a request that needs a body.
    #[error("Lack Header or Header Content-Type is empty.")]
    MissingContentType,
    /// The body's `Content-Type` is neither JSON nor `multipart/form-data`.
    #[error("The header Content-Type is not supported, use application/json or multipart/form-data.")]
    UnsupportedContentType,
    /// A JSON body that is not syntactically valid JSON (this includes an empty body).
    #[error("The request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// A body that could not be read or parsed as its content type says (malformed multipart,
    /// missing boundary, non-UTF-8 text field, connection error while reading).
    #[error("The request param has wrong format, {0}")]
    InvalidBody(String),
    /// The whole request body exceeds the configured limit (`ServerConfig::body_limit_bytes`).
    #[error("The request body is larger than the allowed size.")]
    BodyTooLarge,
    /// No route matches the path.
    #[error("The API does not exist or has not been published in the environment.")]
    RouteNotFound,
    /// The path exists but not for this HTTP method.
    #[error("The API does not exist for this HTTP method.")]
    MethodNotAllowed,
    /// The models are not loaded yet (or failed to load).
    #[error("The service is not ready, the models are not loaded yet.")]
    NotReady,
    /// A handler panicked; the panic message is logged, never sent.
    #[error("{INTERNAL_ERROR_MSG}")]
    Panic,
    /// A use-case failure.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl ApiError {
    /// The FRS error code and HTTP status of every variant. Exhaustive by construction: a new
    /// variant here or in [`ServiceError`] does not compile until it is given its row.
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        use StatusCode as S;
        match self {
            ApiError::MissingContentType | ApiError::UnsupportedContentType => ("FRS.0010", S::BAD_REQUEST),
            ApiError::InvalidJson(_) => ("FRS.0014", S::BAD_REQUEST),
            ApiError::InvalidBody(_) => ("FRS.0012", S::BAD_REQUEST),
            ApiError::BodyTooLarge => ("FRS.0017", S::BAD_REQUEST),
            ApiError::RouteNotFound => ("APIG.0101", S::NOT_FOUND),
            ApiError::MethodNotAllowed => ("APIG.0101", S::METHOD_NOT_ALLOWED),
            ApiError::NotReady => ("FRS.0018", S::SERVICE_UNAVAILABLE),
            ApiError::Panic => ("FRS.0018", S::INTERNAL_SERVER_ERROR),
            ApiError::Service(e) => match e {
                ServiceError::MissingParameter(_) => ("FRS.0011", S::BAD_REQUEST),
                ServiceError::InvalidParameter(_) => ("FRS.0012", S::BAD_REQUEST),
                ServiceError::InvalidBase64 => ("FRS.0015", S::BAD_REQUEST),
                ServiceError::UnsupportedImageFormat => ("FRS.0016", S::BAD_REQUEST),
                ServiceError::CorruptImage(_) => ("FRS.0015", S::BAD_REQUEST),
                ServiceError::ImageTooLarge { .. } => ("FRS.0017", S::BAD_REQUEST),
                ServiceError::ImageResolution { .. } => ("FRS.0013", S::BAD_REQUEST),
                ServiceError::NoFace => ("FRS.0501", S::BAD_REQUEST),
                ServiceError::NoFaceToSearch => ("FRS.0304", S::BAD_REQUEST),
                ServiceError::NoFaceToAdd => ("FRS.0404", S::BAD_REQUEST),
                ServiceError::FaceSetExists(_) => ("FRS.0301", S::BAD_REQUEST),
                ServiceError::FaceSetNotFound(_) => ("FRS.0302", S::BAD_REQUEST),
                ServiceError::TooManyFaceSets { .. } => ("FRS.0305", S::BAD_REQUEST),
                ServiceError::CapacityExceeded { .. } => ("FRS.0306", S::FORBIDDEN),
                ServiceError::FaceNotFound => ("FRS.0403", S::BAD_REQUEST),
                ServiceError::NothingMatched => ("FRS.0407", S::BAD_REQUEST),
                ServiceError::InvalidFilter(_) => ("FRS.0029", S::BAD_REQUEST),
                ServiceError::UnknownReturnField(_) => ("FRS.0030", S::BAD_REQUEST),
                ServiceError::UnsupportedSort(_) => ("FRS.0032", S::BAD_REQUEST),
                ServiceError::Unauthenticated(_) => ("APIG.0301", S::UNAUTHORIZED),
                ServiceError::InvalidToken(_) => ("FRS.0002", S::FORBIDDEN),
                ServiceError::ProjectMismatch => ("FRS.0028", S::FORBIDDEN),
                ServiceError::Forbidden(_) => ("APIG.0302", S::FORBIDDEN),
                ServiceError::ImageUrlRefused { .. } => ("FRS.0021", S::BAD_REQUEST),
                ServiceError::ImageUrlFetchFailed { .. } => ("FRS.0022", S::BAD_REQUEST),
                ServiceError::Overloaded | ServiceError::RateLimited { .. } => ("FRS.0033", S::TOO_MANY_REQUESTS),
                ServiceError::QuotaExhausted { .. } => ("APIG.0308", S::TOO_MANY_REQUESTS),
                ServiceError::Internal(_) => ("FRS.0018", S::INTERNAL_SERVER_ERROR),
            },
        }
    }

    /// The FRS body of this error. 5xx messages are generic.
    pub fn body(&self) -> ErrorBody {
        let (code, status) = self.code_and_status();
        let error_msg = if status.is_server_error() && !matches!(self, ApiError::NotReady) {
            INTERNAL_ERROR_MSG.to_owned()
        } else {
            self.to_string()
        };
        ErrorBody { error_code: code.to_owned(), error_msg }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status) = self.code_and_status();
        if let ApiError::Service(ServiceError::Internal(detail)) = &self {
            tracing::error!(error.code = code, error.detail = %detail, "internal error");
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        // A client may retry an overload or a rate limit after this many seconds; an exhausted
        // quota does not come back by waiting, so it has no Retry-After.
        let retry_after = match &self {
            ApiError::Service(ServiceError::Overloaded) => Some(1),
            ApiError::Service(ServiceError::RateLimited { retry_after_secs }) => Some(*retry_after_secs),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(ErrorCode(code));
        response
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        // `BytesRejection` is non-exhaustive: classify by status, as axum does.
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge
        } else {
            ApiError::InvalidBody(format!("the request body could not be read: {}", rejection.body_text()))
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => ApiError::Service(ServiceError::InvalidParameter(e.body_text())),
            JsonRejection::JsonSyntaxError(e) => ApiError::InvalidJson(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedContentType,
            JsonRejection::BytesRejection(e) => e.into(),
            // Non-exhaustive upstream enum; any future variant is a malformed JSON body.
            other => ApiError::InvalidJson(other.body_text()),
        }
    }
}

impl From<MultipartRejection> for ApiError {
    fn from(rejection: MultipartRejection) -> Self {
        ApiError::InvalidBody(format!("the multipart body is malformed: {}", rejection.body_text()))
    }
}

impl From<MultipartError> for ApiError {
    fn from(error: MultipartError) -> Self {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge
        } else {
            ApiError::InvalidBody(format!("the multipart body is malformed: {}", error.body_text()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One value of every variant (the match below stops compiling when a variant is added).
    fn every_error() -> Vec<ApiError> {
        let service = |e: ServiceError| ApiError::Service(e);
        let all = vec![
            ApiError::MissingContentType,
            ApiError::UnsupportedContentType,
            ApiError::InvalidJson("x".into()),
            ApiError::InvalidBody("x".into()),
            ApiError::BodyTooLarge,
            ApiError::RouteNotFound,
            ApiError::MethodNotAllowed,
            ApiError::NotReady,
            ApiError::Panic,
            service(ServiceError::MissingParameter("image_base64")),
            service(ServiceError::InvalidParameter("x".into())),
            service(ServiceError::InvalidBase64),
            service(ServiceError::UnsupportedImageFormat),
            service(ServiceError::CorruptImage("x".into())),
            service(ServiceError::ImageTooLarge { limit: 1 }),
            service(ServiceError::ImageResolution { width: 1, height: 1, max: 1 }),
            service(ServiceError::NoFace),
            service(ServiceError::NoFaceToSearch),
            service(ServiceError::NoFaceToAdd),
            service(ServiceError::FaceSetExists("x".into())),
            service(ServiceError::FaceSetNotFound("x".into())),
            service(ServiceError::TooManyFaceSets { limit: 10 }),
            service(ServiceError::CapacityExceeded { capacity: 10_000 }),
            service(ServiceError::FaceNotFound),
            service(ServiceError::NothingMatched),
            service(ServiceError::InvalidFilter("x".into())),
            service(ServiceError::UnknownReturnField("x".into())),
            service(ServiceError::UnsupportedSort("x".into())),
            service(ServiceError::Unauthenticated("secret".into())),
            service(ServiceError::InvalidToken("secret".into())),
            service(ServiceError::ProjectMismatch),
            service(ServiceError::Forbidden("addFaces")),
            service(ServiceError::ImageUrlRefused { param: "image_url", reason: "x".into() }),
            service(ServiceError::ImageUrlFetchFailed { param: "image_url", reason: "x".into() }),
            service(ServiceError::Overloaded),
            service(ServiceError::RateLimited { retry_after_secs: 2 }),
            service(ServiceError::QuotaExhausted { action: "addFaces", limit: 10 }),
            service(ServiceError::Internal("secret".into())),
        ];
        for e in &all {
            match e {
                ApiError::MissingContentType
                | ApiError::UnsupportedContentType
                | ApiError::InvalidJson(_)
                | ApiError::InvalidBody(_)
                | ApiError::BodyTooLarge
                | ApiError::RouteNotFound
                | ApiError::MethodNotAllowed
                | ApiError::NotReady
                | ApiError::Panic
                | ApiError::Service(
                    ServiceError::MissingParameter(_)
                    | ServiceError::InvalidParameter(_)
                    | ServiceError::InvalidBase64
                    | ServiceError::UnsupportedImageFormat
                    | ServiceError::CorruptImage(_)
                    | ServiceError::ImageTooLarge { .. }
                    | ServiceError::ImageResolution { .. }
                    | ServiceError::NoFace
                    | ServiceError::NoFaceToSearch
                    | ServiceError::NoFaceToAdd
                    | ServiceError::FaceSetExists(_)
                    | ServiceError::FaceSetNotFound(_)
                    | ServiceError::TooManyFaceSets { .. }
                    | ServiceError::CapacityExceeded { .. }
                    | ServiceError::FaceNotFound
                    | ServiceError::NothingMatched
                    | ServiceError::InvalidFilter(_)
                    | ServiceError::UnknownReturnField(_)
                    | ServiceError::UnsupportedSort(_)
                    | ServiceError::Unauthenticated(_)
                    | ServiceError::InvalidToken(_)
                    | ServiceError::ProjectMismatch
                    | ServiceError::Forbidden(_)
                    | ServiceError::ImageUrlRefused { .. }
                    | ServiceError::ImageUrlFetchFailed { .. }
                    | ServiceError::Overloaded
                    | ServiceError::RateLimited { .. }
                    | ServiceError::QuotaExhausted { .. }
                    | ServiceError::Internal(_),
                ) => {}
            }
        }
        all
    }

    #[test]
    fn docs_errors_md_lists_every_code_with_its_status() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md");
        let doc = std::fs::read_to_string(path).expect("docs/errors.md exists");
        for error in every_error() {
            let (code, status) = error.code_and_status();
            let row = format!("| {} | `{code}` |", status.as_u16());
            assert!(doc.contains(&row), "docs/errors.md has no row starting `{row}` (for {error:?})");
        }
    }

    #[test]
    fn server_errors_carry_only_the_generic_message() {
        for error in every_error() {
            let (code, status) = error.code_and_status();
            let body = error.body();
            assert_eq!(body.error_code, code);
            if status.is_server_error() {
                assert!(!body.error_msg.contains("secret"), "{body:?}");
            } else {
                assert!(!body.error_msg.is_empty() && body.error_msg != INTERNAL_ERROR_MSG, "{body:?}");
            }
        }
        let body = ApiError::Service(ServiceError::Internal("secret detail".into())).body();
        assert_eq!(body.error_msg, INTERNAL_ERROR_MSG);
        // Authentication failures are vague on the wire: the detail is only logged.
        for error in [ServiceError::Unauthenticated("secret".into()), ServiceError::InvalidToken("secret".into())] {
            assert!(!ApiError::Service(error).body().error_msg.contains("secret"));
        }
    }

    #[test]
    fn overload_is_429_with_retry_after_and_the_code_is_attached_for_logging() {
        let response = ApiError::Service(ServiceError::Overloaded).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("1"));
        assert_eq!(response.extensions().get::<ErrorCode>(), Some(&ErrorCode("FRS.0033")));
        let response = ApiError::Service(ServiceError::RateLimited { retry_after_secs: 7 }).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("7"));
        let response = ApiError::Service(ServiceError::QuotaExhausted { action: "addFaces", limit: 1 }).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(!response.headers().contains_key(header::RETRY_AFTER), "waiting does not restore a quota");
        assert_eq!(response.extensions().get::<ErrorCode>(), Some(&ErrorCode("APIG.0308")));
    }
}
