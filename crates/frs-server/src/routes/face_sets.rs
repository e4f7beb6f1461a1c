//! Face sets: `POST|GET /v2/{project_id}/face-sets`, `GET|DELETE /v2/{project_id}/face-sets/{face_set_name}`
//! (FRS §2.6–2.9).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use frs_service::{DeleteFaceSetResponse, FaceSetResponse, FaceSetsResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{CreateFaceSetForm, ProjectPath, SetPath};
use crate::{AppState, Authenticated};

/// The type of one custom field (SDK `TypeInfo`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TypeInfo {
    /// `string`, `integer`, `long`, `float`, `double` or `boolean`.
    #[serde(rename = "type")]
    pub field_type: String,
}

/// JSON body of create face set (SDK `CreateFaceSetReq`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateFaceSetBody {
    /// 1–64 letters, digits, `-` or `_`; unique in the project.
    pub face_set_name: String,
    /// A multiple of 10,000 up to the operator's maximum (default and FRS maximum 100,000); a numeric string is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_set_capacity: Option<u32>,
    /// Custom-field schema: at most 10 fields, names 1–36 of `[0-9A-Za-z_-]`, not reserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_fields: Option<BTreeMap<String, TypeInfo>>,
}

/// Creates an empty face set.
#[utoipa::path(
    post,
    path = "/v2/{project_id}/face-sets",
    tag = "face-set",
    operation_id = "CreateFaceSet",
    params(ProjectPath),
    request_body(content = CreateFaceSetBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The new face set.", body = FaceSetResponse),
        (status = 400, description = "Invalid parameters (`FRS.0010`–`FRS.0014`), name taken (`FRS.0301`), \
            too many sets (`FRS.0305`).", body = ErrorBody),
        (status = 500, description = "Internal error (`FRS.0018`).", body = ErrorBody),
    )
)]
pub async fn create_face_set(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ProjectPath { project_id }: ProjectPath,
    CreateFaceSetForm(request): CreateFaceSetForm,
) -> Result<Json<FaceSetResponse>, ApiError> {
    Ok(Json(state.library.create_face_set(&caller, &project_id, request).await?))
}

/// Lists every face set of the project.
#[utoipa::path(
    get,
    path = "/v2/{project_id}/face-sets",
    tag = "face-set",
    operation_id = "ShowAllFaceSets",
    params(ProjectPath),
    responses(
        (status = 200, description = "The project's face sets, by name.", body = FaceSetsResponse),
        (status = 403, description = "Another project's path (`FRS.0028`) or not permitted (`APIG.0302`).",
            body = ErrorBody),
    )
)]
pub async fn list_face_sets(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ProjectPath { project_id }: ProjectPath,
) -> Result<Json<FaceSetsResponse>, ApiError> {
    Ok(Json(state.library.face_sets(&caller, &project_id)?))
}

/// Shows one face set.
#[utoipa::path(
    get,
    path = "/v2/{project_id}/face-sets/{face_set_name}",
    tag = "face-set",
    operation_id = "ShowFaceSet",
    params(SetPath),
    responses(
        (status = 200, description = "The face set.", body = FaceSetResponse),
        (status = 400, description = "No such face set (`FRS.0302`).", body = ErrorBody),
    )
)]
pub async fn show_face_set(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    SetPath { project_id, face_set_name }: SetPath,
) -> Result<Json<FaceSetResponse>, ApiError> {
    Ok(Json(state.library.face_set(&caller, &project_id, &face_set_name)?))
}

/// Deletes a face set and every face in it.
#[utoipa::path(
    delete,
    path = "/v2/{project_id}/face-sets/{face_set_name}",
    tag = "face-set",
    operation_id = "DeleteFaceSet",
    params(SetPath),
    responses(
        (status = 200, description = "The deleted set's name.", body = DeleteFaceSetResponse),
        (status = 400, description = "No such face set (`FRS.0302`).", body = ErrorBody),
        (status = 500, description = "Internal error (`FRS.0018`).", body = ErrorBody),
    )
)]
pub async fn delete_face_set(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    SetPath { project_id, face_set_name }: SetPath,
) -> Result<Json<DeleteFaceSetResponse>, ApiError> {
    Ok(Json(state.library.delete_face_set(&caller, &project_id, &face_set_name).await?))
}
