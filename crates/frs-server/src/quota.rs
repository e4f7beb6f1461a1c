//! The quota layer: every API call is admitted or refused by the project's rate limit and call
//! quota ([`frs_service::Quotas`]) after authentication and before its handler reads the body or
//! runs any inference, and its outcome is counted once the answer is known.
//!
//! The project is the authenticated caller's (the one it may act on), or the path's when
//! authentication is disabled; the operation is the route's [`frs_service::Action`] from the one
//! route table ([`action_of`]). Routes without a project or an action pass uncounted.

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use frs_service::Caller;

use crate::AppState;
use crate::error::ApiError;
use crate::routes::action_of;

/// Route-layer middleware inside authentication: refuses a call over its project's rate or quota
/// (`FRS.0033` with `Retry-After`, `APIG.0308`) without running it, or runs it and records
/// whether it succeeded (2xx).
pub(crate) async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let action =
        request.extensions().get::<MatchedPath>().and_then(|route| action_of(request.method(), route.as_str()));
    let Some(action) = action else {
        return next.run(request).await;
    };
    let (project_id, request) = match request.extensions().get::<Caller>() {
        Some(caller) => (Some(caller.project_id.clone()), request),
        None => {
            let (mut parts, body) = request.into_parts();
            let params = RawPathParams::from_request_parts(&mut parts, &()).await.ok();
            let project = params.and_then(|params| {
                params.iter().find(|(key, _)| *key == "project_id").map(|(_, value)| value.to_owned())
            });
            (project, Request::from_parts(parts, body))
        }
    };
    let Some(project_id) = project_id else {
        return next.run(request).await;
    };
    match state.quotas.admit(&project_id, action) {
        Ok(permit) => {
            let response = next.run(request).await;
            permit.finish(response.status().is_success());
            response
        }
        Err(error) => {
            tracing::debug!(quota.project_id = %project_id, quota.operation = action.name(), error = %error, "call refused");
            ApiError::from(error).into_response()
        }
    }
}
