//! HTTP edge of frs: the Huawei Cloud FRS v2 routes over [`frs_service::FaceService`], request
//! parsing (JSON and multipart), the one error table mapping every failure to an FRS code and HTTP
//! status, request ids and logging, Prometheus metrics, readiness, OpenAPI and graceful shutdown.
//!
//! ```no_run
//! # async fn run(service: frs_service::FaceService, library: frs_service::FaceLibrary) -> std::io::Result<()> {
//! let state = frs_server::AppState::new(service, library, frs_server::Authentication::Disabled);
//! frs_server::serve(frs_server::ServerConfig::default(), state, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```

mod audit;
mod auth;
mod config;
mod error;
mod extract;
mod metrics;
mod middleware;
mod openapi;
mod quota;
pub mod routes;
mod server;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use frs_service::{AuditLog, FaceLibrary, FaceService, Quotas};
use tower_http::catch_panic::CatchPanicLayer;

pub use auth::{AUTH_TOKEN_HEADER, AuthMethod, Authenticated, Authentication};
pub use config::{DEFAULT_BODY_LIMIT_BYTES, ServerConfig};
pub use error::{ApiError, ErrorBody, ErrorCode, INTERNAL_ERROR_MSG};
pub use metrics::{Metrics, MetricsConfig};
pub use middleware::{REQUEST_ID_HEADER, new_request_id};
pub use openapi::{ApiDoc, openapi_json};
pub use server::{serve, serve_on};

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    service: FaceService,
    library: FaceLibrary,
    authentication: Authentication,
    body_limit: usize,
    audit: Option<AuditLog>,
    metrics: Metrics,
    quotas: Quotas,
}

impl AppState {
    /// Wraps the use-cases, with the default body limit ([`DEFAULT_BODY_LIMIT_BYTES`]) and a
    /// fresh metrics registry of HTTP metrics only ([`AppState::with_metrics`] shares one with
    /// the engine).
    pub fn new(service: FaceService, library: FaceLibrary, authentication: Authentication) -> Self {
        let metrics = Metrics::new(&MetricsConfig::default());
        AppState {
            service,
            library,
            authentication,
            body_limit: DEFAULT_BODY_LIMIT_BYTES,
            audit: None,
            metrics,
            quotas: Quotas::default(),
        }
    }

    /// The same state recording into `metrics`, whose [`Metrics::observer`] the engine was
    /// started with, so `GET /metrics` shows the stage timings too.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The same state recording every audited call (face-set writes, tokens) in `log`; without it,
    /// nothing is audited.
    pub fn with_audit(mut self, log: AuditLog) -> Self {
        self.audit = Some(log);
        self
    }

    /// The same state admitting API calls under `quotas` (rate limits and call quotas per project)
    /// and counting them there; without it, nothing is limited and counts stay in memory.
    pub fn with_quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = quotas;
        self
    }

    /// The same state with another request body limit (bytes); [`serve`] applies
    /// [`ServerConfig::body_limit_bytes`] this way.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("body_limit", &self.body_limit).finish_non_exhaustive()
    }
}

/// Every route, with FRS-style answers for unknown routes (404), wrong methods (405) and panics
/// (500), an `X-Request-Id` on every response and one log line per request.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/v2/{project_id}/face-detect", post(routes::detect::detect_faces))
        .route("/v2/{project_id}/face-compare", post(routes::compare::compare_faces))
        .route(
            "/v2/{project_id}/face-sets",
            post(routes::face_sets::create_face_set).get(routes::face_sets::list_face_sets),
        )
        .route(
            "/v2/{project_id}/face-sets/{face_set_name}",
            get(routes::face_sets::show_face_set).delete(routes::face_sets::delete_face_set),
        )
        .route(
            "/v2/{project_id}/face-sets/{face_set_name}/faces",
            post(routes::faces::add_faces)
                .get(routes::faces::show_faces)
                .put(routes::faces::update_face)
                .delete(routes::faces::delete_faces),
        )
        .route("/v2/{project_id}/face-sets/{face_set_name}/faces/batch", delete(routes::faces::batch_delete_faces))
        .route("/v2/{project_id}/face-sets/{face_set_name}/search", post(routes::search::search_faces))
        .route("/v2/{project_id}/face-sets/{face_set_name}/multi-face-search", post(routes::search::multi_face_search))
        .route(routes::tokens::TOKENS_PATH, post(routes::tokens::create_token))
        // Every route above is authenticated, then admitted by its project's quota, before its
        // handler runs; the ones below are open.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), quota::enforce))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .route("/health", get(routes::health::get_health))
        .route("/ready", get(routes::health::get_ready))
        .route("/openapi.json", get(get_openapi))
        .route("/metrics", get(metrics::get_metrics));
    with_edge(routes, state)
}

/// Adds the fallbacks and layers every route shares. Must come after the last route: the 405
/// fallback is installed on the routes registered so far.
fn with_edge(routes: Router<AppState>, state: AppState) -> Router {
    let body_limit = state.body_limit;
    let metrics = state.metrics.clone();
    routes
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .fallback(|| async { ApiError::RouteNotFound })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn_with_state(metrics, middleware::request_context))
        .layer(axum::middleware::from_fn_with_state(state.clone(), audit::record))
        .with_state(state)
}

/// `GET /openapi.json`: the generated OpenAPI document.
async fn get_openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use frs_service::{Engine, EngineConfig, FaceLibrary, LibraryLimits};
    use frs_vision::{ModelPaths, PipelineConfig};
    use tower::ServiceExt;

    use super::*;

    /// A state whose engine never loads (no models): enough for routes that do not infer.
    pub(crate) fn state_without_models() -> AppState {
        let engine = Engine::start(EngineConfig {
            pipeline: PipelineConfig {
                models: ModelPaths::in_dir("/nonexistent/frs-models"),
                detector: Default::default(),
                threads: 1,
            },
            limits: Default::default(),
            workers: 1,
            queue_capacity: 1,
        });
        let engine = Arc::new(engine);
        let dir = tempfile::tempdir().expect("a temporary directory").keep();
        let store = Arc::new(frs_store::Store::open(&dir).expect("opening the store"));
        let library = FaceLibrary::load(store, Arc::clone(&engine), LibraryLimits::default()).expect("empty library");
        AppState::new(FaceService::new(engine), library, Authentication::Disabled)
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_generic_frs_0018() {
        async fn panics() -> &'static str {
            panic!("secret panic detail")
        }
        let routes = Router::new().route("/panic", get(panics));
        let app = with_edge(routes, state_without_models());
        let response =
            app.oneshot(Request::get("/panic").body(Body::empty()).expect("request")).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().contains_key(REQUEST_ID_HEADER));
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let body: ErrorBody = serde_json::from_slice(&bytes).expect("an FRS body");
        assert_eq!(body, ErrorBody { error_code: "FRS.0018".into(), error_msg: INTERNAL_ERROR_MSG.into() });
    }

    #[tokio::test]
    async fn ready_is_503_while_the_models_are_not_loaded() {
        let app = router(state_without_models());
        let response =
            app.oneshot(Request::get("/ready").body(Body::empty()).expect("request")).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let body: ErrorBody = serde_json::from_slice(&bytes).expect("an FRS body");
        assert_eq!(body.error_code, "FRS.0018");
        assert!(body.error_msg.contains("not ready"), "{}", body.error_msg);
    }
}
