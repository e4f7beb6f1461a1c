//! Tokens: `POST /v3/auth/tokens`, shaped like Huawei Cloud IAM's, for clients that do not sign
//! requests (curl, Postman). The request is authenticated by an AK/SK signature, so no secret
//! travels in a body; its body, if any, is ignored. The token acts as the signing credential (its
//! project and policy) until it expires or the credential is disabled or deleted.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use frs_service::{ServiceError, format_rfc3339};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::AuthMethod;
use crate::error::{ApiError, ErrorBody};
use crate::{AppState, Authenticated, Authentication};

/// The route's path.
pub const TOKENS_PATH: &str = "/v3/auth/tokens";

/// The response header carrying the new token (as IAM's).
pub const SUBJECT_TOKEN_HEADER: HeaderName = HeaderName::from_static("x-subject-token");

/// Body of a token response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateTokenResponse {
    pub token: TokenInfo,
}

/// What a token is valid for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    /// When the token stops being accepted, RFC 3339 UTC.
    #[schema(example = "2026-05-01T13:00:00Z")]
    pub expires_at: String,
    /// The project the token acts on.
    pub project: TokenProject,
}

/// The project of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenProject {
    pub id: String,
}

/// Issues a token for the signing credential.
#[utoipa::path(
    post,
    path = "/v3/auth/tokens",
    tag = "auth",
    operation_id = "CreateToken",
    params(
        ("Authorization" = String, Header,
            description = "`SDK-HMAC-SHA256 Access=AK, SignedHeaders=…, Signature=…` (a token is not accepted here)."),
        ("X-Sdk-Date" = String, Header, description = "`YYYYMMDDTHHMMSSZ`, within 15 minutes of the server's clock."),
    ),
    responses(
        (status = 201, description = "The token is in the `X-Subject-Token` header; send it as `X-Auth-Token`.",
            body = CreateTokenResponse,
            headers(("X-Subject-Token" = String, description = "The token."))),
        (status = 401, description = "No valid AK/SK signature (`APIG.0301`).", body = ErrorBody),
        (status = 404, description = "Authentication is disabled on this server (`APIG.0101`).", body = ErrorBody),
    )
)]
pub async fn create_token(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    method: Option<axum::Extension<AuthMethod>>,
) -> Result<Response, ApiError> {
    let Authentication::Required(credentials) = &state.authentication else {
        return Err(ApiError::RouteNotFound);
    };
    if method.map(|m| m.0) != Some(AuthMethod::Signature) {
        return Err(ServiceError::Unauthenticated("a token is issued for an AK/SK signature only".into()).into());
    }
    let issued = credentials.issue_token(&caller).await?;
    let expires_at = issued.expires_at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let body = CreateTokenResponse {
        token: TokenInfo { expires_at: format_rfc3339(expires_at), project: TokenProject { id: issued.project_id } },
    };
    let token = HeaderValue::from_str(&issued.token)
        .map_err(|_| ServiceError::Internal("a token is not a valid header value".into()))?;
    Ok((StatusCode::CREATED, [(SUBJECT_TOKEN_HEADER, token)], Json(body)).into_response())
}
