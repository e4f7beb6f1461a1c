//! Requests and responses of the face-library use-cases, shaped as FRS v2 sends and expects them.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::{BoundingBox, ImageInput};

/// Input of [`FaceLibrary::create_face_set`](super::FaceLibrary::create_face_set).
#[derive(Debug, Clone)]
pub struct CreateFaceSetRequest {
    pub face_set_name: String,
    /// `face_set_capacity`; `None` means the default (100,000, or the operator's maximum if lower).
    pub face_set_capacity: Option<i64>,
    /// The `external_fields` schema object, `{"name": {"type": "string"}, ...}`.
    pub external_fields: Option<Value>,
}

/// FRS `FaceSetInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FaceSetInfo {
    pub face_set_name: String,
    /// Random 8-character id.
    pub face_set_id: String,
    /// Creation time, UTC, `YYYY-MM-DD hh:mm:ss`.
    pub create_date: String,
    pub face_set_capacity: u32,
    /// Faces currently in the set.
    pub face_number: usize,
    /// The custom-field schema declared at creation.
    #[schema(value_type = Object)]
    pub external_fields: Value,
}

/// Response of create and show face set.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FaceSetResponse {
    pub face_set_info: FaceSetInfo,
}

/// Response of list face sets.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FaceSetsResponse {
    pub face_sets_info: Vec<FaceSetInfo>,
}

/// Response of delete face set.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeleteFaceSetResponse {
    pub face_set_name: String,
}

/// Input of [`FaceLibrary::add_faces`](super::FaceLibrary::add_faces).
#[derive(Debug, Clone)]
pub struct AddFacesRequest {
    pub image: ImageInput,
    /// Bound to every face added; generated when absent.
    pub external_image_id: Option<String>,
    /// Values of the set's custom fields (a JSON object).
    pub external_fields: Option<Value>,
    /// Add only the largest face.
    pub single: bool,
}

/// FRS `FaceSetFace`: one stored face.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FaceSetFace {
    /// The face's box in the image it was added from.
    pub bounding_box: BoundingBox,
    #[schema(value_type = Object)]
    pub external_fields: Map<String, Value>,
    pub external_image_id: String,
    pub face_id: String,
}

/// Response of add faces and show faces.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FacesResponse {
    pub face_set_id: String,
    pub face_set_name: String,
    pub faces: Vec<FaceSetFace>,
}

/// Which faces show faces returns.
#[derive(Debug, Clone)]
pub enum FacesQuery {
    /// In insertion order; `offset + limit` ≤ 10,000.
    Page {
        offset: i64,
        limit: i64,
    },
    ById(String),
}

/// Input of [`FaceLibrary::update_face`](super::FaceLibrary::update_face).
#[derive(Debug, Clone)]
pub struct UpdateFaceRequest {
    pub face_id: String,
    pub external_image_id: Option<String>,
    /// Values replacing the named custom fields; fields not named keep their values.
    pub external_fields: Option<Value>,
}

/// Response of update and delete faces: how many faces were changed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FaceCountResponse {
    pub face_number: usize,
    pub face_set_id: String,
    pub face_set_name: String,
}

/// Which faces a delete removes.
#[derive(Debug, Clone)]
pub enum DeleteFaces {
    ByFaceId(String),
    ByExternalImageId(String),
    /// A custom field equal to a value (`DELETE ...faces?name=zhangsan`).
    ByField {
        field: String,
        value: String,
    },
    /// Batch delete by a filter expression.
    ByFilter(String),
}

/// What a search looks for.
#[derive(Debug, Clone)]
pub enum Probe {
    /// The largest face of an image.
    Image(ImageInput),
    /// A face already in the set.
    FaceId(String),
}

/// Input of [`FaceLibrary::search`](super::FaceLibrary::search).
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub probe: Probe,
    /// 1–1000, default 10.
    pub top_n: Option<i64>,
    /// Similarity cut-off in [0, 1], default 0.
    pub threshold: Option<f64>,
    pub filter: Option<String>,
    /// `[{"field": "asc" | "desc"}, ...]` over numeric custom fields.
    pub sort: Option<Value>,
    /// Custom fields to return; all of them when absent.
    pub return_fields: Option<Value>,
}

/// FRS `SearchFace`: one match.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SearchFace {
    pub bounding_box: BoundingBox,
    /// Calibrated similarity in [0, 1] (see `docs/similarity.md`).
    pub similarity: f64,
    pub external_image_id: String,
    pub face_id: String,
    #[schema(value_type = Object)]
    pub external_fields: Map<String, Value>,
}

/// Response of search.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SearchResponse {
    pub faces: Vec<SearchFace>,
}

/// The matches of one face of the probe image (multi-face search extension).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ProbeFaceMatches {
    /// The probe face's box in the probe image.
    pub bounding_box: BoundingBox,
    pub faces: Vec<SearchFace>,
}

/// Response of the multi-face search extension: one entry per face of the probe image, largest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MultiFaceSearchResponse {
    pub results: Vec<ProbeFaceMatches>,
}
