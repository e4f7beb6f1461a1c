//! `POST /v2/{project_id}/face-compare` (FRS §2.2).

use axum::Json;
use axum::extract::State;
use frs_service::CompareResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{CompareForm, ProjectPath};
use crate::{AppState, Authenticated};

/// JSON body of face-compare by base64 (SDK `FaceCompareBase64Req`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CompareByBase64Request {
    /// Base64 of the first image (at most 8 MiB of base64 text).
    pub image1_base64: String,
    /// Base64 of the second image (at most 8 MiB of base64 text).
    pub image2_base64: String,
}

/// JSON body of face-compare by URL (SDK `FaceCompareUrlReq`), fetched under the server's `[fetch]`
/// policy (`FRS.0021` refused, `FRS.0022` fetch failed).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CompareByUrlRequest {
    /// URL of the first image.
    pub image1_url: String,
    /// URL of the second image.
    pub image2_url: String,
}

/// `multipart/form-data` body of face-compare by file (SDK `CompareFaceByFileRequestBody`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CompareByFileRequest {
    /// The first image file part (at most 8 MiB).
    #[schema(value_type = String, content_media_type = "application/octet-stream")]
    pub image1_file: Vec<u8>,
    /// The second image file part (at most 8 MiB).
    #[schema(value_type = String, content_media_type = "application/octet-stream")]
    pub image2_file: Vec<u8>,
}

/// The JSON forms of a face-compare body; both images use the same input type.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CompareJsonRequest {
    /// By base64.
    Base64(CompareByBase64Request),
    /// By URL.
    Url(CompareByUrlRequest),
}

/// Compares the largest face of each image.
#[utoipa::path(
    post,
    path = "/v2/{project_id}/face-compare",
    tag = "face",
    operation_id = "CompareFace",
    params(ProjectPath),
    request_body(
        description = "`image1_*` and `image2_*`, each given exactly once, both of the same input type.",
        content(
            (CompareJsonRequest = "application/json"),
            (CompareByFileRequest = "multipart/form-data"),
        )
    ),
    responses(
        (status = 200, description = "The faces used and their similarity.", body = CompareResponse),
        (status = 400, description = "Invalid input or no face (`FRS.0010`–`FRS.0017`, `FRS.0021`, `FRS.0022`, `FRS.0501`).",
            body = ErrorBody),
        (status = 429, description = "Queue full or project rate limit (`FRS.0033`, `Retry-After`); call quota used up (`APIG.0308`).", body = ErrorBody),
        (status = 500, description = "Internal error (`FRS.0018`).", body = ErrorBody),
    )
)]
pub async fn compare_faces(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ProjectPath { project_id }: ProjectPath,
    CompareForm(request): CompareForm,
) -> Result<Json<CompareResponse>, ApiError> {
    Ok(Json(state.service.compare(&caller, &project_id, request).await?))
}
