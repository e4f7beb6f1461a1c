//! Who a request acts as. Handlers take an [`Authenticated`] caller and pass it to the use-case,
//! which authorizes it (project and policy) in the service layer.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use frs_service::Caller;

use crate::AppState;
use crate::error::ApiError;

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum Authentication {
    /// No credentials are checked: every request acts with full rights on the project of its path.
    /// For local development and tests only.
    Disabled,
}

/// The caller of a request: the [`Caller`] an authentication layer put in the request's
/// extensions or, with [`Authentication::Disabled`], full rights on the path's project.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(Authenticated(caller.clone()));
        }
        match state.authentication {
            Authentication::Disabled => {
                let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
                    .await
                    .map_err(|e| ApiError::InvalidBody(format!("the path is malformed: {}", e.body_text())))?;
                let project_id = params.into_iter().find(|(name, _)| name == "project_id").map(|(_, v)| v);
                Ok(Authenticated(Caller::unauthenticated(&project_id.unwrap_or_default())))
            }
        }
    }
}
