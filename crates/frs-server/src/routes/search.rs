//! `POST /v2/{project_id}/face-sets/{face_set_name}/search` (FRS §2.3) and the multi-face search extension.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use frs_service::{MultiFaceSearchResponse, SearchResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{SearchForm, SetPath};
use crate::{AppState, Authenticated};

/// JSON body of search (SDK `FaceSearchBase64Req` / `FaceSearchFaceIdReq`): exactly one of
/// `image_base64`, `image_url` and `face_id`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchJsonRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_base64: Option<String>,
    /// URL of the image, fetched under the server's `[fetch]` policy (`FRS.0021` refused, `FRS.0022`
    /// fetch failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// A face of the set to search with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_id: Option<String>,
    /// 1–1000, default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_n: Option<u32>,
    /// Similarity cut-off in [0, 1], default 0; 0.93 is FAR ≈ 1e-4 (docs/similarity.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Filter expression over `external_image_id` and custom fields (FRS §3.12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// `[{"field": "asc"|"desc"}, ...]` over numeric custom fields: orders the top_n matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<Vec<BTreeMap<String, String>>>,
    /// Custom fields to return (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_fields: Option<Vec<String>>,
}

/// `multipart/form-data` body of search by file (SDK `SearchFaceByFileRequestBody`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchByFileRequest {
    #[schema(value_type = String, content_media_type = "application/octet-stream")]
    pub image_file: Vec<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// JSON text of the sort array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// JSON text of the return-fields array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_fields: Option<String>,
}

/// Searches the set for the faces most similar to the largest face of an image, or to a face of the set.
#[utoipa::path(
    post,
    path = "/v2/{project_id}/face-sets/{face_set_name}/search",
    tag = "search",
    operation_id = "SearchFace",
    params(SetPath),
    request_body(
        content(
            (SearchJsonRequest = "application/json"),
            (SearchByFileRequest = "multipart/form-data"),
        )
    ),
    responses(
        (status = 200, description = "The matches, most similar first (or in `sort` order).", body = SearchResponse),
        (status = 400, description = "Invalid input (`FRS.0010`–`FRS.0017`, `FRS.0021`, `FRS.0022`), bad filter (`FRS.0029`), \
            unknown return field (`FRS.0030`), bad sort (`FRS.0032`), no such set (`FRS.0302`), no face \
            (`FRS.0304`), unknown face_id (`FRS.0403`).", body = ErrorBody),
        (status = 429, description = "Queue full or project rate limit (`FRS.0033`, `Retry-After`); call quota used up (`APIG.0308`).", body = ErrorBody),
        (status = 500, description = "Internal error (`FRS.0018`).", body = ErrorBody),
    )
)]
pub async fn search_faces(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    SetPath { project_id, face_set_name }: SetPath,
    SearchForm(request): SearchForm,
) -> Result<Json<SearchResponse>, ApiError> {
    Ok(Json(state.library.search(&caller, &project_id, &face_set_name, request).await?))
}

/// frs extension: searches the set for every face of the probe image in one call. Same body as
/// search, image inputs only; `top_n`, `threshold`, `filter`, `sort`, `return_fields` apply per face.
#[utoipa::path(
    post,
    path = "/v2/{project_id}/face-sets/{face_set_name}/multi-face-search",
    tag = "search",
    operation_id = "MultiFaceSearch",
    params(SetPath),
    request_body(
        content(
            (SearchJsonRequest = "application/json"),
            (SearchByFileRequest = "multipart/form-data"),
        )
    ),
    responses(
        (status = 200, description = "Per face of the probe image (largest first), its matches.",
            body = MultiFaceSearchResponse),
        (status = 400, description = "As search.", body = ErrorBody),
        (status = 429, description = "Queue full or project rate limit (`FRS.0033`, `Retry-After`); call quota used up (`APIG.0308`).", body = ErrorBody),
        (status = 500, description = "Internal error (`FRS.0018`).", body = ErrorBody),
    )
)]
pub async fn multi_face_search(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    SetPath { project_id, face_set_name }: SetPath,
    SearchForm(request): SearchForm,
) -> Result<Json<MultiFaceSearchResponse>, ApiError> {
    Ok(Json(state.library.search_every_face(&caller, &project_id, &face_set_name, request).await?))
}
