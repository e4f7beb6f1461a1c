//! Request bodies and query strings → service inputs. One FRS operation arrives either as JSON
//! (`image_base64` or `image_url`) or as `multipart/form-data` (`image_file` part plus text fields);
//! both are read into the same named parameters, then each image must be given by exactly one of its
//! inputs.
//!
//! Contracts:
//! - `Content-Type` absent or empty → `FRS.0010`; neither JSON nor multipart (or multipart where only
//!   JSON is documented) → `FRS.0010`.
//! - A body over the configured limit → `FRS.0017`, checked from `Content-Length` before reading.
//! - JSON: syntax error (including an empty body) → `FRS.0014`; valid JSON that is not an object,
//!   or a known parameter of the wrong JSON type → `FRS.0012`; `null` counts as absent; unknown
//!   fields are ignored. Numbers and booleans are also accepted as strings (`"100000"`, `"true"`),
//!   as the FRS documentation's own examples send them.
//! - Multipart: malformed body → `FRS.0012`; parts with unknown names are ignored; a known
//!   parameter given twice → `FRS.0012`. Parts named `*_file` are bytes, all others UTF-8 text;
//!   structured parameters (`external_fields`, `sort`, `return_fields`) are JSON text, as the SDK sends them.
//! - Per image: no input → `FRS.0011` naming `*_base64` (JSON) or `*_file` (multipart);
//!   two inputs → `FRS.0012`; an empty `*_url` → `FRS.0011`. A `*_url` becomes
//!   [`ImageInput::Url`]; the use-case fetches it under the operator's fetch policy.
//! - Compare: both images must use the same input type → `FRS.0012` otherwise.
//! - Search: exactly one of an image input and `face_id`.
//! - Query strings: a malformed one → `FRS.0012`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Multipart, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use frs_service::{
    AddFacesRequest, CompareRequest, CreateFaceSetRequest, DetectRequest, ImageInput, Probe, SearchRequest,
    ServiceError, UpdateFaceRequest,
};
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;

/// The three mutually exclusive inputs of one image.
#[derive(Debug, Clone, Copy)]
struct ImageParam {
    base64: &'static str,
    url: &'static str,
    file: &'static str,
}

impl ImageParam {
    fn names(self) -> [&'static str; 3] {
        [self.base64, self.url, self.file]
    }
}

const IMAGE: ImageParam = ImageParam { base64: "image_base64", url: "image_url", file: "image_file" };
const IMAGE1: ImageParam = ImageParam { base64: "image1_base64", url: "image1_url", file: "image1_file" };
const IMAGE2: ImageParam = ImageParam { base64: "image2_base64", url: "image2_url", file: "image2_file" };
const ATTRIBUTES: &str = "attributes";
const FACE_ID: &str = "face_id";
const EXTERNAL_IMAGE_ID: &str = "external_image_id";
const EXTERNAL_FIELDS: &str = "external_fields";
const SINGLE: &str = "single";
const TOP_N: &str = "top_n";
const THRESHOLD: &str = "threshold";
const FILTER: &str = "filter";
const SORT: &str = "sort";
const RETURN_FIELDS: &str = "return_fields";
const FACE_SET_NAME: &str = "face_set_name";
const FACE_SET_CAPACITY: &str = "face_set_capacity";

/// How the body is encoded, from `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Multipart,
}

fn body_kind(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::MissingContentType);
    };
    let value = value.to_str().map_err(|_| ApiError::UnsupportedContentType)?;
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if essence.is_empty() {
        Err(ApiError::MissingContentType)
    } else if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) {
        Ok(BodyKind::Json)
    } else if essence == "multipart/form-data" {
        Ok(BodyKind::Multipart)
    } else {
        Err(ApiError::UnsupportedContentType)
    }
}

/// One parameter value.
#[derive(Debug)]
enum Param {
    /// A value of a JSON body.
    Json(Value),
    /// A multipart text field.
    Text(String),
    /// A multipart file part.
    File(Vec<u8>),
}

/// The known parameters of one request, by name. Absent and JSON `null` parameters are not stored.
#[derive(Debug)]
struct Params {
    kind: BodyKind,
    values: HashMap<&'static str, Param>,
}

impl Params {
    /// Reads a JSON or multipart body and keeps the parameters named in `names`.
    async fn read(req: Request, state: &AppState, names: &[&'static str]) -> Result<Self, ApiError> {
        let kind = body_kind(req.headers())?;
        let declared_length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared_length.is_some_and(|length| length > state.body_limit as u64) {
            return Err(ApiError::BodyTooLarge);
        }
        let values = match kind {
            BodyKind::Json => {
                let body = Bytes::from_request(req, state).await?;
                json_params(&body, names)?
            }
            BodyKind::Multipart => {
                let multipart = Multipart::from_request(req, state).await?;
                multipart_params(multipart, names).await?
            }
        };
        Ok(Params { kind, values })
    }

    /// Like [`Params::read`], for operations whose body is JSON only.
    async fn read_json(req: Request, state: &AppState, names: &[&'static str]) -> Result<Self, ApiError> {
        if body_kind(req.headers())? != BodyKind::Json {
            return Err(ApiError::UnsupportedContentType);
        }
        Self::read(req, state, names).await
    }

    fn take_string(&mut self, name: &'static str) -> Result<Option<String>, ApiError> {
        match self.values.remove(name) {
            None => Ok(None),
            Some(Param::Json(Value::String(text)) | Param::Text(text)) => Ok(Some(text)),
            Some(Param::Json(other)) => Err(wrong_type(name, "a string", &other)),
            // Only `*_file` names are read as files, and those are never taken as text.
            Some(Param::File(_)) => Ok(None),
        }
    }

    fn take_bool(&mut self, name: &'static str) -> Result<Option<bool>, ApiError> {
        match self.values.remove(name) {
            None | Some(Param::File(_)) => Ok(None),
            Some(Param::Json(Value::Bool(value))) => Ok(Some(value)),
            Some(Param::Json(Value::String(text)) | Param::Text(text)) => match text.trim() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(invalid(format!("{name} must be true or false"))),
            },
            Some(Param::Json(other)) => Err(wrong_type(name, "a boolean", &other)),
        }
    }

    fn take_integer(&mut self, name: &'static str) -> Result<Option<i64>, ApiError> {
        let bad = || invalid(format!("{name} must be an integer"));
        match self.values.remove(name) {
            None | Some(Param::File(_)) => Ok(None),
            Some(Param::Json(Value::Number(n))) => n.as_i64().map(Some).ok_or_else(bad),
            Some(Param::Json(Value::String(text)) | Param::Text(text)) => {
                text.trim().parse().map(Some).map_err(|_| bad())
            }
            Some(Param::Json(other)) => Err(wrong_type(name, "an integer", &other)),
        }
    }

    fn take_number(&mut self, name: &'static str) -> Result<Option<f64>, ApiError> {
        let bad = || invalid(format!("{name} must be a number"));
        match self.values.remove(name) {
            None | Some(Param::File(_)) => Ok(None),
            Some(Param::Json(Value::Number(n))) => n.as_f64().map(Some).ok_or_else(bad),
            Some(Param::Json(Value::String(text)) | Param::Text(text)) => {
                text.trim().parse::<f64>().ok().filter(|v| v.is_finite()).map(Some).ok_or_else(bad)
            }
            Some(Param::Json(other)) => Err(wrong_type(name, "a number", &other)),
        }
    }

    /// A structured parameter: the JSON value itself, or JSON text in a multipart field.
    fn take_json(&mut self, name: &'static str) -> Result<Option<Value>, ApiError> {
        match self.values.remove(name) {
            None | Some(Param::File(_)) => Ok(None),
            Some(Param::Json(value)) => Ok(Some(value)),
            Some(Param::Text(text)) => serde_json::from_str(&text)
                .map(|value: Value| Some(value).filter(|v| !v.is_null()))
                .map_err(|_| invalid(format!("{name} must be JSON text"))),
        }
    }

    /// Whether any input of the image was given.
    fn has_image(&self, param: ImageParam) -> bool {
        param.names().iter().any(|name| self.values.contains_key(name))
    }

    /// The one input of an image.
    fn take_image(&mut self, param: ImageParam) -> Result<Image, ApiError> {
        let base64 = self.take_string(param.base64)?.map(|text| (param.base64, Image::Base64(text)));
        let url = self.take_string(param.url)?.map(|text| (param.url, Image::Url(param.url, text)));
        let file = match self.values.remove(param.file) {
            Some(Param::File(bytes)) => Some((param.file, Image::File(bytes))),
            Some(Param::Json(_) | Param::Text(_)) | None => None,
        };
        let mut given: Vec<(&'static str, Image)> = [base64, url, file].into_iter().flatten().collect();
        match given.len() {
            0 => Err(ServiceError::MissingParameter(match self.kind {
                BodyKind::Json => param.base64,
                BodyKind::Multipart => param.file,
            })
            .into()),
            1 => Ok(given.remove(0).1),
            _ => {
                let names: Vec<&str> = given.iter().map(|(name, _)| *name).collect();
                Err(invalid(format!("{} are mutually exclusive, send exactly one of them", names.join(" and "))))
            }
        }
    }
}

fn invalid(message: String) -> ApiError {
    ServiceError::InvalidParameter(message).into()
}

fn wrong_type(name: &str, expected: &str, value: &Value) -> ApiError {
    invalid(format!("{name} must be {expected}, not {}", json_type_name(value)))
}

fn json_params(body: &[u8], names: &[&'static str]) -> Result<HashMap<&'static str, Param>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    let Value::Object(mut object) = value else {
        return Err(invalid("the request body must be a JSON object".into()));
    };
    // A JSON body cannot carry a file part; `*_file` keys are unknown fields here.
    Ok(names
        .iter()
        .filter(|name| !name.ends_with("_file"))
        .filter_map(|&name| match object.remove(name) {
            None | Some(Value::Null) => None,
            Some(value) => Some((name, Param::Json(value))),
        })
        .collect())
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

async fn multipart_params(
    mut multipart: Multipart,
    names: &[&'static str],
) -> Result<HashMap<&'static str, Param>, ApiError> {
    let mut values = HashMap::new();
    while let Some(field) = multipart.next_field().await? {
        // Parts with unknown or no names are skipped (multer discards their data on the next call).
        let Some(name) = field.name().and_then(|n| names.iter().copied().find(|known| *known == n)) else {
            continue;
        };
        if values.contains_key(name) {
            return Err(invalid(format!("{name} is given more than once")));
        }
        let bytes = field.bytes().await?;
        let value = if name.ends_with("_file") {
            Param::File(bytes.into())
        } else {
            let text =
                String::from_utf8(bytes.into()).map_err(|_| invalid(format!("{name} is not valid UTF-8 text")))?;
            Param::Text(text)
        };
        values.insert(name, value);
    }
    Ok(values)
}

/// The input an image was given by.
#[derive(Debug)]
enum Image {
    Base64(String),
    /// The parameter name and the URL.
    Url(&'static str, String),
    File(Vec<u8>),
}

impl Image {
    fn same_type(&self, other: &Image) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    fn into_input(self) -> Result<ImageInput, ApiError> {
        match self {
            Image::Base64(text) => Ok(ImageInput::Base64(text)),
            Image::File(bytes) => Ok(ImageInput::File(bytes)),
            Image::Url(name, url) if url.is_empty() => Err(ServiceError::MissingParameter(name).into()),
            Image::Url(_, url) => Ok(ImageInput::Url(url)),
        }
    }
}

/// A face-detect request body: `image_base64` | `image_url` | `image_file`, plus `attributes`.
#[derive(Debug)]
pub struct DetectForm(pub DetectRequest);

impl FromRequest<AppState> for DetectForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let mut params = Params::read(req, state, &[IMAGE.base64, IMAGE.url, IMAGE.file, ATTRIBUTES]).await?;
        let attributes = params.take_string(ATTRIBUTES)?;
        let image = params.take_image(IMAGE)?.into_input()?;
        Ok(DetectForm(DetectRequest { image, attributes }))
    }
}

/// A face-compare request body: `image1_*` and `image2_*`, both of the same input type.
#[derive(Debug)]
pub struct CompareForm(pub CompareRequest);

impl FromRequest<AppState> for CompareForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let names = [IMAGE1.base64, IMAGE1.url, IMAGE1.file, IMAGE2.base64, IMAGE2.url, IMAGE2.file];
        let mut params = Params::read(req, state, &names).await?;
        let image1 = params.take_image(IMAGE1)?;
        let image2 = params.take_image(IMAGE2)?;
        if !image1.same_type(&image2) {
            return Err(invalid("image1 and image2 must use the same input type".into()));
        }
        Ok(CompareForm(CompareRequest { image1: image1.into_input()?, image2: image2.into_input()? }))
    }
}

/// A create-face-set JSON body: `face_set_name`, `face_set_capacity`, `external_fields`.
#[derive(Debug)]
pub struct CreateFaceSetForm(pub CreateFaceSetRequest);

impl FromRequest<AppState> for CreateFaceSetForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let mut params = Params::read_json(req, state, &[FACE_SET_NAME, FACE_SET_CAPACITY, EXTERNAL_FIELDS]).await?;
        Ok(CreateFaceSetForm(CreateFaceSetRequest {
            face_set_name: params.take_string(FACE_SET_NAME)?.unwrap_or_default(),
            face_set_capacity: params.take_integer(FACE_SET_CAPACITY)?,
            external_fields: params.take_json(EXTERNAL_FIELDS)?,
        }))
    }
}

/// An add-faces body: one image input plus `external_image_id`, `external_fields` and `single`.
#[derive(Debug)]
pub struct AddFacesForm(pub AddFacesRequest);

impl FromRequest<AppState> for AddFacesForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let names = [IMAGE.base64, IMAGE.url, IMAGE.file, EXTERNAL_IMAGE_ID, EXTERNAL_FIELDS, SINGLE];
        let mut params = Params::read(req, state, &names).await?;
        Ok(AddFacesForm(AddFacesRequest {
            external_image_id: params.take_string(EXTERNAL_IMAGE_ID)?,
            external_fields: params.take_json(EXTERNAL_FIELDS)?,
            single: params.take_bool(SINGLE)?.unwrap_or(false),
            image: params.take_image(IMAGE)?.into_input()?,
        }))
    }
}

/// A search body: one image input or `face_id`, plus `top_n`, `threshold`, `filter`, `sort` and
/// `return_fields`.
#[derive(Debug)]
pub struct SearchForm(pub SearchRequest);

impl FromRequest<AppState> for SearchForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let names = [IMAGE.base64, IMAGE.url, IMAGE.file, FACE_ID, TOP_N, THRESHOLD, FILTER, SORT, RETURN_FIELDS];
        let mut params = Params::read(req, state, &names).await?;
        let probe = match (params.has_image(IMAGE), params.take_string(FACE_ID)?) {
            (true, Some(_)) => {
                return Err(invalid("face_id and an image are mutually exclusive, send exactly one of them".into()));
            }
            (false, Some(face_id)) if face_id.is_empty() => return Err(ServiceError::MissingParameter(FACE_ID).into()),
            (false, Some(face_id)) => Probe::FaceId(face_id),
            (_, None) => Probe::Image(params.take_image(IMAGE)?.into_input()?),
        };
        Ok(SearchForm(SearchRequest {
            probe,
            top_n: params.take_integer(TOP_N)?,
            threshold: params.take_number(THRESHOLD)?,
            filter: params.take_string(FILTER)?,
            sort: params.take_json(SORT)?,
            return_fields: params.take_json(RETURN_FIELDS)?,
        }))
    }
}

/// An update-face JSON body: `face_id` and `external_image_id` and/or `external_fields`.
#[derive(Debug)]
pub struct UpdateFaceForm(pub UpdateFaceRequest);

impl FromRequest<AppState> for UpdateFaceForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let mut params = Params::read_json(req, state, &[FACE_ID, EXTERNAL_IMAGE_ID, EXTERNAL_FIELDS]).await?;
        Ok(UpdateFaceForm(UpdateFaceRequest {
            face_id: params.take_string(FACE_ID)?.unwrap_or_default(),
            external_image_id: params.take_string(EXTERNAL_IMAGE_ID)?,
            external_fields: params.take_json(EXTERNAL_FIELDS)?,
        }))
    }
}

/// A batch-delete JSON body: `filter`.
#[derive(Debug)]
pub struct BatchDeleteForm(pub String);

impl FromRequest<AppState> for BatchDeleteForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let mut params = Params::read_json(req, state, &[FILTER]).await?;
        Ok(BatchDeleteForm(params.take_string(FILTER)?.unwrap_or_default()))
    }
}

/// The `{project_id}` of a path.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProjectPath {
    /// Project id.
    pub project_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for ProjectPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(project_id) = Path::<String>::from_request_parts(parts, state).await.map_err(path_error)?;
        Ok(ProjectPath { project_id })
    }
}

/// The `{project_id}` and `{face_set_name}` of a path.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SetPath {
    /// Project id.
    pub project_id: String,
    /// Face set name.
    pub face_set_name: String,
}

impl<S: Send + Sync> FromRequestParts<S> for SetPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((project_id, face_set_name)) =
            Path::<(String, String)>::from_request_parts(parts, state).await.map_err(path_error)?;
        Ok(SetPath { project_id, face_set_name })
    }
}

fn path_error(rejection: PathRejection) -> ApiError {
    invalid(format!("the path is malformed: {}", rejection.body_text()))
}

/// The query string as name/value pairs, in order (repeats kept).
#[derive(Debug)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| invalid(format!("the query string is malformed: {}", e.body_text())))?;
        Ok(QueryPairs(pairs))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn kind(content_type: Option<&str>) -> Result<BodyKind, ApiError> {
        let mut headers = HeaderMap::new();
        if let Some(value) = content_type {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).expect("header value"));
        }
        body_kind(&headers)
    }

    #[test]
    fn content_types_are_classified_by_their_essence() {
        assert!(matches!(kind(Some("application/json")), Ok(BodyKind::Json)));
        assert!(matches!(kind(Some("Application/JSON; charset=UTF-8")), Ok(BodyKind::Json)));
        assert!(matches!(kind(Some("application/merge-patch+json")), Ok(BodyKind::Json)));
        assert!(matches!(kind(Some("multipart/form-data; boundary=x")), Ok(BodyKind::Multipart)));
        assert!(matches!(kind(None), Err(ApiError::MissingContentType)));
        assert!(matches!(kind(Some("")), Err(ApiError::MissingContentType)));
        assert!(matches!(kind(Some(" ; charset=utf-8")), Err(ApiError::MissingContentType)));
        assert!(matches!(kind(Some("text/plain")), Err(ApiError::UnsupportedContentType)));
        assert!(matches!(kind(Some("application/x-www-form-urlencoded")), Err(ApiError::UnsupportedContentType)));
    }

    #[test]
    fn json_parameters_ignore_unknown_fields_and_nulls() {
        let names = [IMAGE.base64, IMAGE.url, IMAGE.file, ATTRIBUTES];
        let values =
            json_params(br#"{"image_base64":"abc","attributes":null,"extra":1,"image_file":"x"}"#, &names).expect("ok");
        assert_eq!(values.len(), 1);
        assert!(matches!(values.get("image_base64"), Some(Param::Json(Value::String(t))) if t == "abc"));
        assert!(matches!(json_params(b"", &names), Err(ApiError::InvalidJson(_))));
        assert!(matches!(json_params(b"{\"a\":", &names), Err(ApiError::InvalidJson(_))));
        assert!(matches!(json_params(b"[1]", &names), Err(ApiError::Service(ServiceError::InvalidParameter(_)))));
        let mut params =
            Params { kind: BodyKind::Json, values: json_params(br#"{"image_base64": 5}"#, &names).expect("ok") };
        assert!(matches!(
            params.take_image(IMAGE),
            Err(ApiError::Service(ServiceError::InvalidParameter(m))) if m.contains("image_base64")
        ));
    }
}
