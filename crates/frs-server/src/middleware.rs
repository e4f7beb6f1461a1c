//! Per-request plumbing: the `X-Request-Id` header, the one log line and the metrics of each
//! request, and turning a handler panic into an FRS body.

use std::any::Any;
use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::error::{ApiError, ErrorCode};
use crate::metrics::{self, Metrics};

/// The response header carrying the request id (read by the Huawei Cloud SDKs).
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// A new request id: 32 lowercase hex digits, unique within the process (a counter) and
/// unpredictable across processes (a per-process random key), like the ids FRS returns.
pub fn new_request_id() -> String {
    static KEY: LazyLock<RandomState> = LazyLock::new(RandomState::new);
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let high = KEY.hash_one((count, nanos));
    // The low half stays a bijection of the counter, so ids never repeat within a process.
    let low = count ^ KEY.hash_one(0xF5u8);
    format!("{high:016x}{low:016x}")
}

/// Outermost middleware: gives the request an id (in a span, so every log line of the request
/// carries it), sets `X-Request-Id` on the response, logs one line per request with the route
/// template (never the concrete path, body or query) and counts it in `metrics` by operation.
pub async fn request_context(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = new_request_id();
    let method = request.method().clone();
    let matched = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let operation = metrics::operation(&method, matched);
    let route = matched.unwrap_or("<unmatched>").to_owned();
    let span = tracing::info_span!("request", request_id = %request_id);
    let mut response = next.run(request).instrument(span.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let error_code = response.extensions().get::<ErrorCode>().map(|code| code.0);
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    metrics.record_request(operation, status, error_code, elapsed);
    span.in_scope(|| {
        tracing::info!(
            http.method = %method,
            http.route = %route,
            http.status = status,
            error.code = error_code,
            duration_ms = elapsed.as_micros() as f64 / 1e3,
            "request handled"
        );
    });
    response
}

/// `CatchPanicLayer` handler: logs the panic message and answers `FRS.0018` with a generic body.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    tracing::error!(panic.message = %message, "request handler panicked");
    ApiError::Panic.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_32_hex_digits_and_distinct() {
        let a = new_request_id();
        let b = new_request_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}
