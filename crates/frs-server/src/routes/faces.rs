//! Faces of a face set: add, show, update, delete and batch delete
//! (`/v2/{project_id}/face-sets/{face_set_name}/faces[/batch]`, FRS §2.10–2.14).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use frs_service::{DeleteFaces, FaceCountResponse, FacesQuery, FacesResponse, ServiceError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{AddFacesForm, BatchDeleteForm, QueryPairs, SetPath, UpdateFaceForm};
use crate::{AppState, Authenticated};

/// JSON body of add faces by base64 (SDK `AddFacesBase64Req`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddFacesByBase64Request {
    /// Base64 of a JPG, PNG or BMP image (at most 8 MiB of base64 text).
    pub image_base64: String,
    /// 1–36 letters, digits, `-` or `_`, bound to every face added; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_image_id: Option<String>,
    /// Values of the set's custom fields, typed as declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub external_fields: Option<BTreeMap<String, Value>>,
    /// `true`: only the largest face; `false` (default): every face.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single: Option<bool>,
}

/// `multipart/form-data` body of add faces by file (SDK `AddFacesByFileRequestBody`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddFacesByFileRequest {
    /// The image file part (at most 8 MiB).
    #[schema(value_type = String, content_media_type = "application/octet-stream")]
    pub image_file: Vec<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_image_id: Option<String>,
    /// The custom-field values as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_fields: Option<String>,
    /// `true` or `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single: Option<String>,
}

/// Adds the faces of one image to the set.
#[utoipa::path(
    post,
    path = "/v2/{project_id}/face-sets/{face_set_name}/faces",
    tag = "face",
    operation_id = "AddFaces",
    params(SetPath),
    request_body(
        description = "Exactly one of `image_base64`, `image_url` (JSON) or `image_file` (multipart).",
        content(
            (AddFacesByBase64Request = "application/json"),
            (AddFacesByFileRequest = "multipart/form-data"),
        )
    ),
    responses(
        (status = 200, description = "The faces added.", body = FacesResponse),
        (status = 400, description = "Invalid input (`FRS.0010`–`FRS.0017`, `FRS.0021`, `FRS.0022`), no such set (`FRS.0302`), \
            no face (`FRS.0404`).", body = ErrorBody),
        (status = 403, description = "The set is full (`FRS.0306`).", body = ErrorBody),
        (status = 429, description = "Queue full or project rate limit (`FRS.0033`, `Retry-After`); call quota used up (`APIG.0308`).", body = ErrorBody),
        (status = 500, description = "Internal error (`FRS.0018`).", body = ErrorBody),
    )
)]
pub async fn add_faces(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    SetPath { project_id, face_set_name }: SetPath,
    AddFacesForm(request): AddFacesForm,
) -> Result<Json<FacesResponse>, ApiError> {
    Ok(Json(state.library.add_faces(&caller, &project_id, &face_set_name, request).await?))
}

/// Query of show faces: `face_id`, or `offset` and `limit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShowFacesQuery {
    /// One face by id (excludes `offset`/`limit`).
    pub face_id: Option<String>,
    /// Start position in insertion order (default 0).
    pub offset: Option<i64>,
    /// Page size (default 5); `offset + limit` ≤ 10,000.
    pub limit: Option<i64>,
}

/// Shows one face by id, or a page of faces in insertion order.
#[utoipa::path(
    get,
    path = "/v2/{project_id}/face-sets/{face_set_name}/faces",
    tag = "face",
    operation_id = "ShowFaces",
    params(
        SetPath,
        ShowFacesQuery,
    ),
    responses(
        (status = 200, description = "The faces.", body = FacesResponse),
        (status = 400, description = "Invalid query (`FRS.0012`), no such set (`FRS.0302`) or face (`FRS.0403`).",
            body = ErrorBody),
    )
)]
pub async fn show_faces(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    SetPath { project_id, face_set_name }: SetPath,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<FacesResponse>, ApiError> {
    Ok(Json(state.library.faces(&caller, &project_id, &face_set_name, faces_query(pairs)?).await?))
}

fn faces_query(pairs: Vec<(String, String)>) -> Result<FacesQuery, ApiError> {
    let mut face_id = None;
    let mut offset = None;
    let mut limit = None;
    for (name, value) in pairs {
        let slot = match name.as_str() {
            "face_id" => &mut face_id,
            "offset" => &mut offset,
            "limit" => &mut limit,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(ServiceError::InvalidParameter(format!("{name} is given more than once")).into());
        }
    }
    let integer = |name: &str, value: Option<String>, default: i64| -> Result<i64, ApiError> {
        value.map_or(Ok(default), |v| {
            v.trim().parse().map_err(|_| ServiceError::InvalidParameter(format!("{name} must be an integer")).into())
        })
    };
    match face_id {
        Some(_) if offset.is_some() || limit.is_some() => {
            Err(ServiceError::InvalidParameter("face_id excludes offset and limit".into()).into())
        }
        Some(face_id) if face_id.is_empty() => Err(ServiceError::MissingParameter("face_id").into()),
        Some(face_id) => Ok(FacesQuery::ById(face_id)),
        None => Ok(FacesQuery::Page { offset: integer("offset", offset, 0)?, limit: integer("limit", limit, 5)? }),
    }
}

/// JSON body of update face (SDK `UpdateFaceReq`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UpdateFaceBody {
    pub face_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_image_id: Option<String>,
    /// Values replacing the named custom fields; others keep their values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub external_fields: Option<BTreeMap<String, Value>>,
}

/// Updates the external image id and/or custom fields of one face.
#[utoipa::path(
    put,
    path = "/v2/{project_id}/face-sets/{face_set_name}/faces",
    tag = "face",
    operation_id = "UpdateFace",
    params(SetPath),
    request_body(content = UpdateFaceBody, content_type = "application/json"),
    responses(
        (status = 200, description = "One face updated.", body = FaceCountResponse),
        (status = 400, description = "Invalid input (`FRS.0010`–`FRS.0014`), no such set (`FRS.0302`) or face \
            (`FRS.0403`).", body = ErrorBody),
        (status = 500, description = "Internal error (`FRS.0018`).", body = ErrorBody),
    )
)]
pub async fn update_face(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    SetPath { project_id, face_set_name }: SetPath,
    UpdateFaceForm(request): UpdateFaceForm,
) -> Result<Json<FaceCountResponse>, ApiError> {
    Ok(Json(state.library.update_face(&caller, &project_id, &face_set_name, request).await?))
}

/// Deletes faces by exactly one query parameter: `face_id`, `external_image_id` or a custom field.
#[utoipa::path(
    delete,
    path = "/v2/{project_id}/face-sets/{face_set_name}/faces",
    tag = "face",
    operation_id = "DeleteFaces",
    params(
        SetPath,
        ("face_id" = Option<String>, Query, description = "Delete this face."),
        ("external_image_id" = Option<String>, Query, description = "Delete every face of this image."),
    ),
    responses(
        (status = 200, description = "How many faces were deleted.", body = FaceCountResponse),
        (status = 400, description = "Not exactly one parameter (`FRS.0011`, `FRS.0012`), no such set (`FRS.0302`) \
            or face (`FRS.0403`), nothing matched (`FRS.0407`).", body = ErrorBody),
        (status = 500, description = "Internal error (`FRS.0018`).", body = ErrorBody),
    )
)]
pub async fn delete_faces(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    SetPath { project_id, face_set_name }: SetPath,
    QueryPairs(mut pairs): QueryPairs,
) -> Result<Json<FaceCountResponse>, ApiError> {
    if pairs.len() > 1 {
        return Err(ServiceError::InvalidParameter("give exactly one field to delete by".into()).into());
    }
    let Some((field, value)) = pairs.pop() else {
        return Err(ServiceError::MissingParameter("face_id").into());
    };
    let which = match field.as_str() {
        "face_id" => DeleteFaces::ByFaceId(value),
        "external_image_id" => DeleteFaces::ByExternalImageId(value),
        _ => DeleteFaces::ByField { field, value },
    };
    Ok(Json(state.library.delete_faces(&caller, &project_id, &face_set_name, which).await?))
}

/// JSON body of batch delete (SDK `DeleteFacesBatchReq`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchDeleteBody {
    /// Filter expression selecting the faces to delete (FRS §3.12).
    pub filter: String,
}

/// Deletes every face a filter selects.
#[utoipa::path(
    delete,
    path = "/v2/{project_id}/face-sets/{face_set_name}/faces/batch",
    tag = "face",
    operation_id = "BatchDeleteFaces",
    params(SetPath),
    request_body(content = BatchDeleteBody, content_type = "application/json"),
    responses(
        (status = 200, description = "How many faces were deleted.", body = FaceCountResponse),
        (status = 400, description = "Missing or invalid filter (`FRS.0011`, `FRS.0029`), no such set (`FRS.0302`), \
            nothing matched (`FRS.0407`).", body = ErrorBody),
        (status = 500, description = "Internal error (`FRS.0018`).", body = ErrorBody),
    )
)]
pub async fn batch_delete_faces(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    SetPath { project_id, face_set_name }: SetPath,
    BatchDeleteForm(filter): BatchDeleteForm,
) -> Result<Json<FaceCountResponse>, ApiError> {
    Ok(Json(state.library.delete_faces(&caller, &project_id, &face_set_name, DeleteFaces::ByFilter(filter)).await?))
}
