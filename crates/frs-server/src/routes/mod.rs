//! Route handlers, one module per resource. Each handler parses, calls one `FaceService` or
//! `FaceLibrary` method and maps the result; errors go through [`crate::ApiError`].

pub mod compare;
pub mod detect;
pub mod face_sets;
pub mod faces;
pub mod health;
pub mod search;
pub mod tokens;

use axum::http::Method;
use frs_service::Action;

/// The action a route performs, for the routes that map to one: the one table from route to
/// [`Action`] that audit, metrics and quotas share. `route` is axum's `MatchedPath` template;
/// `HEAD` runs the `GET` handler, so it is the `GET` route's action.
pub(crate) fn action_of(method: &Method, route: &str) -> Option<Action> {
    let method = if method == Method::HEAD { "GET" } else { method.as_str() };
    let action = match (method, route) {
        ("POST", "/v2/{project_id}/face-detect") => Action::DetectFace,
        ("POST", "/v2/{project_id}/face-compare") => Action::CompareFace,
        ("POST", "/v2/{project_id}/face-sets") => Action::CreateFaceSet,
        ("GET", "/v2/{project_id}/face-sets") => Action::ListFaceSets,
        ("GET", "/v2/{project_id}/face-sets/{face_set_name}") => Action::ShowFaceSet,
        ("DELETE", "/v2/{project_id}/face-sets/{face_set_name}") => Action::DeleteFaceSet,
        ("POST", "/v2/{project_id}/face-sets/{face_set_name}/faces") => Action::AddFaces,
        ("GET", "/v2/{project_id}/face-sets/{face_set_name}/faces") => Action::ShowFaces,
        ("PUT", "/v2/{project_id}/face-sets/{face_set_name}/faces") => Action::UpdateFace,
        ("DELETE", "/v2/{project_id}/face-sets/{face_set_name}/faces")
        | ("DELETE", "/v2/{project_id}/face-sets/{face_set_name}/faces/batch") => Action::DeleteFaces,
        ("POST", "/v2/{project_id}/face-sets/{face_set_name}/search")
        | ("POST", "/v2/{project_id}/face-sets/{face_set_name}/multi-face-search") => Action::SearchFace,
        ("POST", tokens::TOKENS_PATH) => Action::CreateToken,
        _ => return None,
    };
    Some(action)
}
