//! The audit layer: once the answer of an audited call (a face-set write, a token) is known, one
//! record goes to the [`AuditLog`] before the answer leaves, so an acknowledged call is on record.
//! Outermost layer, so the record carries the response's `X-Request-Id`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use frs_service::{AuditRecord, NO_ACCESS_KEY};

use crate::AppState;
use crate::auth::Principal;
use crate::error::ErrorCode;
use crate::middleware::REQUEST_ID_HEADER;
use crate::routes::action_of;

/// Records audited calls in the state's audit log, if it has one; any other request passes
/// untouched. A record that cannot be written is logged as an error; the answer, already decided,
/// is sent anyway.
pub(crate) async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(log) = state.audit else {
        return next.run(request).await;
    };
    let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let Some(action) = route.and_then(|route| action_of(request.method(), &route)).filter(|a| a.is_audited()) else {
        return next.run(request).await;
    };
    let time_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let (mut parts, body) = request.into_parts();
    let params = RawPathParams::from_request_parts(&mut parts, &()).await.ok();
    let param = |name: &str| params.as_ref()?.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_owned());
    let (path_project, target) = (param("project_id"), param("face_set_name"));
    let request = Request::from_parts(parts, body);
    let response = next.run(request).await;
    let principal = response.extensions().get::<Principal>();
    let record = AuditRecord {
        time_ms,
        access_key: principal.and_then(|p| p.access_key.clone()).unwrap_or_else(|| NO_ACCESS_KEY.to_owned()),
        project_id: principal
            .and_then(|p| p.project_id.clone())
            .or(path_project)
            .unwrap_or_else(|| NO_ACCESS_KEY.to_owned()),
        operation: action.name().to_owned(),
        target,
        status: response.status().as_u16(),
        error_code: response.extensions().get::<ErrorCode>().map(|code| code.0.to_owned()),
        request_id: response
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    };
    if let Err(e) = log.record(record).await {
        tracing::error!(error.detail = %e, audit.operation = action.name(), "writing an audit record failed");
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::http::Method;
    use frs_service::Action;

    use super::*;

    #[test]
    fn every_face_set_write_and_the_token_route_are_audited_and_nothing_else() {
        let audited = |method: Method, route: &str| action_of(&method, route).is_some_and(Action::is_audited);
        assert!(audited(Method::POST, "/v2/{project_id}/face-sets"));
        assert!(audited(Method::DELETE, "/v2/{project_id}/face-sets/{face_set_name}"));
        for method in [Method::POST, Method::PUT, Method::DELETE] {
            assert!(audited(method, "/v2/{project_id}/face-sets/{face_set_name}/faces"));
        }
        assert!(audited(Method::DELETE, "/v2/{project_id}/face-sets/{face_set_name}/faces/batch"));
        assert!(audited(Method::POST, "/v3/auth/tokens"));
        assert!(!audited(Method::POST, "/v2/{project_id}/face-sets/{face_set_name}/search"));
        assert!(!audited(Method::POST, "/v2/{project_id}/face-detect"));
        assert!(!audited(Method::GET, "/v2/{project_id}/face-sets/{face_set_name}/faces"));
        assert!(!audited(Method::GET, "/health"));
    }
}
