//! `POST /v2/{project_id}/face-detect` (FRS §2.1).

use axum::Json;
use axum::extract::State;
use frs_service::DetectResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{DetectForm, ProjectPath};
use crate::{AppState, Authenticated};

/// JSON body of face-detect by base64 (SDK `FaceDetectBase64Req`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DetectByBase64Request {
    /// Standard base64 of a JPG, PNG or BMP image, no line breaks, at most 8 MiB of base64 text.
    pub image_base64: String,
    /// Comma-separated attribute codes, e.g. `"2,12"`; `3` returns the five landmarks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<String>,
}

/// JSON body of face-detect by URL (SDK `FaceDetectUrlReq`), fetched under the server's `[fetch]`
/// policy (`FRS.0021` refused, `FRS.0022` fetch failed).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DetectByUrlRequest {
    /// Image URL; frs does not fetch URLs yet.
    pub image_url: String,
    /// Comma-separated attribute codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<String>,
}

/// `multipart/form-data` body of face-detect by file (SDK `DetectFaceByFileRequestBody`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DetectByFileRequest {
    /// The image file part (JPG, PNG or BMP, at most 8 MiB).
    #[schema(value_type = String, content_media_type = "application/octet-stream")]
    pub image_file: Vec<u8>,
    /// Comma-separated attribute codes, as a text field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<String>,
}

/// The JSON forms of a face-detect body: exactly one of `image_base64` and `image_url`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum DetectJsonRequest {
    /// By base64.
    Base64(DetectByBase64Request),
    /// By URL.
    Url(DetectByUrlRequest),
}

/// Detects every face in one image, largest first.
#[utoipa::path(
    post,
    path = "/v2/{project_id}/face-detect",
    tag = "face",
    operation_id = "DetectFace",
    params(ProjectPath),
    request_body(
        description = "Exactly one of `image_base64`, `image_url` (JSON) or `image_file` (multipart).",
        content(
            (DetectJsonRequest = "application/json"),
            (DetectByFileRequest = "multipart/form-data"),
        )
    ),
    responses(
        (status = 200, description = "Every detected face.", body = DetectResponse),
        (status = 400, description = "Invalid input or no face (`FRS.0010`–`FRS.0017`, `FRS.0021`, `FRS.0022`, `FRS.0501`).",
            body = ErrorBody),
        (status = 429, description = "Queue full or project rate limit (`FRS.0033`, `Retry-After`); call quota used up (`APIG.0308`).", body = ErrorBody),
        (status = 500, description = "Internal error (`FRS.0018`).", body = ErrorBody),
    )
)]
pub async fn detect_faces(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ProjectPath { project_id }: ProjectPath,
    DetectForm(request): DetectForm,
) -> Result<Json<DetectResponse>, ApiError> {
    Ok(Json(state.service.detect(&caller, &project_id, request).await?))
}
