//! Who a request acts as. With [`Authentication::Required`], the [`authenticate`] middleware runs on
//! every API route (`/v1/…`, `/v2/…`, `/v3/auth/tokens`) before its handler and puts the verified
//! [`Caller`] in the request's extensions; handlers take it as an [`Authenticated`] caller and pass
//! it to the use-case, which authorizes it (project and policy) in the service layer.
//!
//! A request authenticates with `X-Auth-Token` (a token from `POST /v3/auth/tokens`) or, without
//! one, with an `Authorization: SDK-HMAC-SHA256 …` signature ([`signature`]). Failures are vague
//! on the wire (`APIG.0301`, `FRS.0002`); the reason is logged here, once.

mod signature;

use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use frs_service::{Caller, Credentials, ServiceError};

use crate::AppState;
use crate::error::ApiError;

/// The header carrying a token.
pub const AUTH_TOKEN_HEADER: HeaderName = HeaderName::from_static("x-auth-token");

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum Authentication {
    /// No credentials are checked: every request acts with full rights on the project of its path.
    /// For local development and tests only.
    Disabled,
    /// Every API request must carry a valid token or AK/SK signature of an enabled credential,
    /// looked up in the store at each request.
    Required(Credentials),
}

/// How an authenticated request proved who it is (a request extension next to its [`Caller`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// An `SDK-HMAC-SHA256` signature with the credential's secret key.
    Signature,
    /// An `X-Auth-Token`.
    Token,
}

/// Who an API response was for, as the audit log records it: the authenticated access key, or the
/// one a request that failed authentication claimed (a response extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    /// The access key, if one was presented.
    pub access_key: Option<String>,
    /// The credential's project, once authenticated.
    pub project_id: Option<String>,
}

/// The caller of a request: the [`Caller`] the [`authenticate`] middleware put in the request's
/// extensions or, with [`Authentication::Disabled`], full rights on the path's project. Fails
/// closed: with authentication required and no caller in the extensions, the request is refused.
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
            Authentication::Required(_) => {
                tracing::error!("a handler that needs a caller is not behind the authentication middleware");
                Err(ServiceError::Unauthenticated("no authentication ran".into()).into())
            }
        }
    }
}

/// Middleware of the API routes: with [`Authentication::Required`], verifies the token or the
/// signature before the handler runs (buffering the body, up to the body limit, to hash it) and
/// answers the failure itself; records the [`Principal`] on the response either way.
pub(crate) async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Authentication::Required(credentials) = &state.authentication else {
        return next.run(request).await;
    };
    let claimed = claimed_access_key(request.headers());
    match verify(credentials, request, state.body_limit).await {
        Ok((caller, method, mut request)) => {
            let principal =
                Principal { access_key: caller.access_key.clone(), project_id: Some(caller.project_id.clone()) };
            request.extensions_mut().insert(caller);
            request.extensions_mut().insert(method);
            let mut response = next.run(request).await;
            response.extensions_mut().insert(principal);
            response
        }
        Err(error) => {
            if let ApiError::Service(ServiceError::Unauthenticated(reason) | ServiceError::InvalidToken(reason)) =
                &error
            {
                tracing::warn!(auth.access_key = claimed.as_deref(), auth.failure = %reason, "authentication failed");
            }
            let mut response = error.into_response();
            response.extensions_mut().insert(Principal { access_key: claimed, project_id: None });
            response
        }
    }
}

/// The caller of a request, how it authenticated, and the request with its body restored.
async fn verify(
    credentials: &Credentials,
    request: Request,
    body_limit: usize,
) -> Result<(Caller, AuthMethod, Request), ApiError> {
    if let Some(token) = request.headers().get(AUTH_TOKEN_HEADER) {
        let token = token.to_str().map_err(|_| ServiceError::InvalidToken("the token is not ASCII".into()))?;
        let caller = credentials.verify_token(token).await?;
        return Ok((caller, AuthMethod::Token, request));
    }
    let unauthenticated = |reason: String| ApiError::Service(ServiceError::Unauthenticated(reason));
    let authorization =
        request.headers().get(header::AUTHORIZATION).ok_or_else(|| unauthenticated("no credentials".into()))?;
    let authorization = signature::parse_authorization(authorization).map_err(unauthenticated)?;
    let date = signature::sdk_date(request.headers()).map_err(unauthenticated)?;
    let skew = skew(date, credentials.now());
    if skew > credentials.max_clock_skew() {
        return Err(unauthenticated(format!("X-Sdk-Date is {} s away from the server's clock", skew.as_secs())));
    }
    // The key is looked up before the body is read: an unknown key costs no buffering.
    let key = credentials.signing_key(&authorization.access_key).await?;
    let (parts, body) = request.into_parts();
    let body = read_body(&parts.headers, body, body_limit).await?;
    signature::verify(&parts, &body, &authorization, key.secret()).map_err(unauthenticated)?;
    Ok((key.caller, AuthMethod::Signature, Request::from_parts(parts, Body::from(body))))
}

/// The whole body, or `BodyTooLarge` beyond `limit` (told by `Content-Length` before reading).
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::BodyTooLarge);
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large =
            std::error::Error::source(&e).is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::BodyTooLarge
        } else {
            ApiError::InvalidBody(format!("the request body could not be read: {e}"))
        }
    })
}

fn skew(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b).unwrap_or_else(|e| e.duration())
}

/// The access key a request presents, verified or not (truncated to 64 characters).
fn claimed_access_key(headers: &HeaderMap) -> Option<String> {
    let claimed = match headers.get(AUTH_TOKEN_HEADER) {
        Some(token) => frs_service::token_access_key(token.to_str().ok()?),
        None => signature::claimed_access_key(headers.get(header::AUTHORIZATION)?),
    }?;
    Some(claimed.chars().take(64).collect())
}
