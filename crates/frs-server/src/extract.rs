//! Request bodies → service inputs. One FRS operation arrives either as JSON (`image_base64` or
//! `image_url`) or as `multipart/form-data` (`image_file` part plus text fields); both are read into
//! the same named parameters, then each image must be given by exactly one of its inputs.
//!
//! Contracts:
//! - `Content-Type` absent or empty → `FRS.0010`; neither JSON nor multipart → `FRS.0010`.
//! - A body over the configured limit → `FRS.0017`, checked from `Content-Length` before reading.
//! - JSON: syntax error (including an empty body) → `FRS.0014`; valid JSON that is not an object,
//!   or a known parameter that is not a string → `FRS.0012`; `null` counts as absent; unknown
//!   fields are ignored.
//! - Multipart: malformed body → `FRS.0012`; parts with unknown names are ignored; a known
//!   parameter given twice → `FRS.0012`. Parts named `*_file` are bytes, all others UTF-8 text.
//! - Per image: no input → `FRS.0011` naming `*_base64` (JSON) or `*_file` (multipart);
//!   two inputs → `FRS.0012`; an `*_url` input → `FRS.0021` (URL fetching is not implemented).
//! - Compare: both images must use the same input type → `FRS.0012` otherwise.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, header};
use frs_service::{CompareRequest, DetectRequest, ImageInput, ServiceError};
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

const IMAGE: ImageParam = ImageParam { base64: "image_base64", url: "image_url", file: "image_file" };
const IMAGE1: ImageParam = ImageParam { base64: "image1_base64", url: "image1_url", file: "image1_file" };
const IMAGE2: ImageParam = ImageParam { base64: "image2_base64", url: "image2_url", file: "image2_file" };
const ATTRIBUTES: &str = "attributes";

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
    Text(String),
    File(Vec<u8>),
}

/// The known parameters of one request, by name. Absent and JSON `null` parameters are not stored.
#[derive(Debug)]
struct Params {
    kind: BodyKind,
    values: HashMap<&'static str, Param>,
}

impl Params {
    /// Reads the body and keeps the parameters named in `names`.
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

    fn take_text(&mut self, name: &'static str) -> Option<String> {
        match self.values.remove(name) {
            Some(Param::Text(text)) => Some(text),
            // Only `*_file` names are read as files, so a file under a text name cannot occur.
            Some(Param::File(_)) | None => None,
        }
    }

    /// The one input of an image.
    fn take_image(&mut self, param: ImageParam) -> Result<Image, ApiError> {
        let base64 = self.take_text(param.base64).map(|text| (param.base64, Image::Base64(text)));
        let url = self.take_text(param.url).map(|text| (param.url, Image::Url(param.url, text)));
        let file = match self.values.remove(param.file) {
            Some(Param::File(bytes)) => Some((param.file, Image::File(bytes))),
            Some(Param::Text(_)) | None => None,
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
                Err(ServiceError::InvalidParameter(format!(
                    "{} are mutually exclusive, send exactly one of them",
                    names.join(" and ")
                ))
                .into())
            }
        }
    }
}

fn json_params(body: &[u8], names: &[&'static str]) -> Result<HashMap<&'static str, Param>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    let Value::Object(mut object) = value else {
        return Err(ServiceError::InvalidParameter("the request body must be a JSON object".into()).into());
    };
    let mut values = HashMap::new();
    // A JSON body cannot carry a file part; `*_file` keys are unknown fields here.
    for &name in names.iter().filter(|name| !name.ends_with("_file")) {
        match object.remove(name) {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => {
                values.insert(name, Param::Text(text));
            }
            Some(other) => {
                return Err(ServiceError::InvalidParameter(format!(
                    "{name} must be a string, not {}",
                    json_type_name(&other)
                ))
                .into());
            }
        }
    }
    Ok(values)
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
            return Err(ServiceError::InvalidParameter(format!("{name} is given more than once")).into());
        }
        let bytes = field.bytes().await?;
        let value = if name.ends_with("_file") {
            Param::File(bytes.into())
        } else {
            let text = String::from_utf8(bytes.into())
                .map_err(|_| ServiceError::InvalidParameter(format!("{name} is not valid UTF-8 text")))?;
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
            Image::Url(name, _) => Err(ApiError::UrlNotSupported(name)),
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
        let attributes = params.take_text(ATTRIBUTES);
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
            return Err(ServiceError::InvalidParameter("image1 and image2 must use the same input type".into()).into());
        }
        Ok(CompareForm(CompareRequest { image1: image1.into_input()?, image2: image2.into_input()? }))
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
        assert!(matches!(values.get("image_base64"), Some(Param::Text(t)) if t == "abc"));
        assert!(matches!(json_params(b"", &names), Err(ApiError::InvalidJson(_))));
        assert!(matches!(json_params(b"{\"a\":", &names), Err(ApiError::InvalidJson(_))));
        assert!(matches!(json_params(b"[1]", &names), Err(ApiError::Service(ServiceError::InvalidParameter(_)))));
        assert!(matches!(
            json_params(br#"{"image_base64": 5}"#, &names),
            Err(ApiError::Service(ServiceError::InvalidParameter(m))) if m.contains("image_base64")
        ));
    }
}
