//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};

/// Body of `GET /health` and of a successful `GET /ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    /// `ok` (alive) or `ready` (models loaded).
    #[schema(example = "ok")]
    pub status: String,
}

/// Liveness: 200 whenever the process serves HTTP.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    operation_id = "GetHealth",
    responses((status = 200, description = "The process is alive.", body = StatusResponse))
)]
pub async fn get_health() -> Json<StatusResponse> {
    Json(StatusResponse { status: "ok".to_owned() })
}

/// Readiness: 200 once every inference worker has loaded and warmed up its models, else 503.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    operation_id = "GetReady",
    responses(
        (status = 200, description = "The models are loaded; requests are served.", body = StatusResponse,
            example = json!({"status": "ready"})),
        (status = 503, description = "The models are not loaded yet (`FRS.0018`).", body = ErrorBody),
    )
)]
pub async fn get_ready(State(state): State<AppState>) -> Result<Json<StatusResponse>, ApiError> {
    if state.service.ready() {
        Ok(Json(StatusResponse { status: "ready".to_owned() }))
    } else {
        Err(ApiError::NotReady)
    }
}
