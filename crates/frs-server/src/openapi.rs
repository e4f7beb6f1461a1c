//! The OpenAPI description, generated from the handler annotations. `docs/openapi.json` is its
//! committed copy; a test fails when the two differ.

use std::sync::LazyLock;

use utoipa::OpenApi;

use crate::error::ErrorBody;
use crate::routes::{compare, detect, face_sets, faces, health, search, tokens};

/// The OpenAPI document of every route frs serves.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "frs",
        description = "Self-hosted face recognition service, wire-compatible with Huawei Cloud FRS API v2. \
                       Errors are `{\"error_code\", \"error_msg\"}` bodies; see docs/errors.md.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        detect::detect_faces,
        compare::compare_faces,
        face_sets::create_face_set,
        face_sets::list_face_sets,
        face_sets::show_face_set,
        face_sets::delete_face_set,
        faces::add_faces,
        faces::show_faces,
        faces::update_face,
        faces::delete_faces,
        faces::batch_delete_faces,
        search::search_faces,
        search::multi_face_search,
        tokens::create_token,
        health::get_health,
        health::get_ready,
        crate::metrics::get_metrics,
    ),
    components(schemas(
        ErrorBody,
        detect::DetectByBase64Request,
        detect::DetectByUrlRequest,
        detect::DetectByFileRequest,
        compare::CompareByBase64Request,
        compare::CompareByUrlRequest,
        compare::CompareByFileRequest,
        face_sets::CreateFaceSetBody,
        faces::AddFacesByBase64Request,
        faces::AddFacesByFileRequest,
        faces::UpdateFaceBody,
        faces::BatchDeleteBody,
        search::SearchJsonRequest,
        search::SearchByFileRequest,
        tokens::CreateTokenResponse,
    )),
    tags(
        (name = "face", description = "Face detection and comparison, faces of a face set (FRS §2.1, §2.2, §2.10–2.14)."),
        (name = "face-set", description = "Face sets (FRS §2.6–2.9)."),
        (name = "search", description = "1:N search (FRS §2.3) and the multi-face search extension."),
        (name = "auth", description = "Tokens for clients that do not sign requests. Every `/v2` request carries an \
            `X-Auth-Token` or an `SDK-HMAC-SHA256` AK/SK signature (`Authorization`, `X-Sdk-Date`); failures are \
            `APIG.0301` (401) or `FRS.0002` (403). Then the credential's project's rate limit and call quotas \
            (`[quota]`) admit the call: HTTP 429 `FRS.0033` with `Retry-After`, or `APIG.0308` once a quota is used up."),
        (name = "operations", description = "Liveness and readiness probes, Prometheus metrics."),
    )
)]
pub struct ApiDoc;

/// The OpenAPI document as pretty-printed JSON with a trailing newline (the `docs/openapi.json` format).
pub fn openapi_json() -> String {
    static JSON: LazyLock<String> = LazyLock::new(|| {
        let mut json = ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serializes");
        json.push('\n');
        json
    });
    JSON.clone()
}
