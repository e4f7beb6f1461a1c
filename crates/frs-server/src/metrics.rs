//! Prometheus metrics and `GET /metrics`.
//!
//! Every label value comes from a fixed set, so the number of series is bounded whatever the
//! traffic: `operation` is a name per route (never the path, which holds project ids and set
//! names), `status` an HTTP status, `code` an FRS error code, `stage` a [`Stage`] name. The only
//! exception is the opt-in per-set gauge, capped at [`MetricsConfig::face_set_series`] series.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `frs_http_requests_total` | counter | `operation`, `status` |
//! | `frs_http_errors_total` | counter | `operation`, `code` (FRS error code) |
//! | `frs_http_request_duration_seconds` | histogram | `operation` |
//! | `frs_pipeline_stage_duration_seconds` | histogram | `stage` = `decode`, `detect`, `align`, `embed` (per image) |
//! | `frs_library_stage_duration_seconds` | histogram | `stage` = `search` (per search call), `store` (per write) |
//! | `frs_inference_queue_wait_seconds` | histogram | |
//! | `frs_inference_queue_depth` | gauge | |
//! | `frs_face_sets`, `frs_faces` | gauge | |
//! | `frs_face_set_faces` | gauge | `project_id`, `face_set` (only with `face_set_series > 0`) |

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::{Method, header};
use axum::response::IntoResponse;
use frs_service::{FaceLibrary, Observer, Stage};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use serde::{Deserialize, Serialize};

use crate::AppState;

/// The `[metrics]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Most `frs_face_set_faces{project_id, face_set}` series exported (the largest sets first);
    /// 0, the default, exports none. Project ids and set names are then label values, so keep it
    /// small: each series costs the Prometheus server memory for as long as it retains it.
    pub face_set_series: usize,
}

/// The `operation` of requests that matched no route (404) or no method of their route (405).
pub const UNMATCHED: &str = "unmatched";

/// The content type of `GET /metrics`: the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets of the request histogram: 1 ms … 10 s.
const REQUEST_BUCKETS: [f64; 13] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Buckets of the stage histograms: 50 µs … 10 s (alignment, a search or a store write can take
/// well under a millisecond).
const STAGE_BUCKETS: [f64; 17] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The operation name of a request: the [`frs_service::Action`] name of an API route (from the
/// one route table, [`crate::routes::action_of`]), a fixed name for the operational routes, or
/// [`UNMATCHED`]. `route` is the matched route template (axum's `MatchedPath`), `None` when no
/// route matched. `HEAD` counts as `GET`.
pub fn operation(method: &Method, route: Option<&str>) -> &'static str {
    let Some(route) = route else {
        return UNMATCHED;
    };
    if let Some(action) = crate::routes::action_of(method, route) {
        return action.name();
    }
    let method = if method == Method::HEAD { "GET" } else { method.as_str() };
    match (method, route) {
        ("GET", "/health") => "health",
        ("GET", "/ready") => "ready",
        ("GET", "/openapi.json") => "openapi",
        ("GET", "/metrics") => "metrics",
        _ => UNMATCHED,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ErrorLabels {
    operation: &'static str,
    code: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FaceSetLabels {
    project_id: String,
    face_set: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

fn stage_histogram() -> Histogram {
    Histogram::new(STAGE_BUCKETS)
}

/// The metrics registry of one server. Created at start and passed in (no global); cheap to
/// clone, clones share the metrics. [`Metrics::observer`] is what the inference engine and the
/// face library report their stage times to.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    durations: HistogramFamily<OperationLabels>,
    stages: Arc<StageMetrics>,
    face_sets: Gauge,
    faces: Gauge,
    face_set_faces: Family<FaceSetLabels, Gauge>,
    face_set_series: usize,
    /// Serialises scrapes, which reset and refill the library gauges.
    scrape: Mutex<()>,
}

/// The service-side histograms, each series created up front so the [`Observer`] calls never
/// look up a label set.
struct StageMetrics {
    queue_wait: Histogram,
    queue_depth: Gauge,
    decode: Histogram,
    detect: Histogram,
    align: Histogram,
    embed: Histogram,
    search: Histogram,
    store: Histogram,
}

impl Observer for StageMetrics {
    fn stage(&self, stage: Stage, elapsed: Duration) {
        let histogram = match stage {
            Stage::Queue => &self.queue_wait,
            Stage::Decode => &self.decode,
            Stage::Detect => &self.detect,
            Stage::Align => &self.align,
            Stage::Embed => &self.embed,
            Stage::Search => &self.search,
            Stage::Store => &self.store,
        };
        histogram.observe(elapsed.as_secs_f64());
    }

    fn queue_changed(&self, delta: i64) {
        self.queue_depth.inc_by(delta);
    }
}

impl Metrics {
    /// A new registry with every frs metric registered.
    pub fn new(config: &MetricsConfig) -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "frs_http_requests",
            "HTTP requests by operation (fixed name per route) and status code",
            requests.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register("frs_http_errors", "Error answers by operation and FRS error code", errors.clone());
        let durations: HistogramFamily<OperationLabels> = Family::new_with_constructor(request_histogram);
        registry.register_with_unit(
            "frs_http_request_duration",
            "Time from request to response headers, by operation",
            Unit::Seconds,
            durations.clone(),
        );

        let pipeline: HistogramFamily<StageLabels> = Family::new_with_constructor(stage_histogram);
        registry.register_with_unit(
            "frs_pipeline_stage_duration",
            "Inference pipeline time per image, by stage (decode, detect, align, embed)",
            Unit::Seconds,
            pipeline.clone(),
        );
        let library: HistogramFamily<StageLabels> = Family::new_with_constructor(stage_histogram);
        registry.register_with_unit(
            "frs_library_stage_duration",
            "Face library time by stage: search (one index search call), store (one durable write)",
            Unit::Seconds,
            library.clone(),
        );
        let queue_wait = stage_histogram();
        registry.register_with_unit(
            "frs_inference_queue_wait",
            "Time an inference job waited for a worker",
            Unit::Seconds,
            queue_wait.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register("frs_inference_queue_depth", "Inference jobs waiting for a worker", queue_depth.clone());
        let stage = |family: &HistogramFamily<StageLabels>, stage: Stage| {
            family.get_or_create_owned(&StageLabels { stage: stage.name() })
        };
        let stages = Arc::new(StageMetrics {
            queue_wait,
            queue_depth,
            decode: stage(&pipeline, Stage::Decode),
            detect: stage(&pipeline, Stage::Detect),
            align: stage(&pipeline, Stage::Align),
            embed: stage(&pipeline, Stage::Embed),
            search: stage(&library, Stage::Search),
            store: stage(&library, Stage::Store),
        });

        let face_sets = Gauge::default();
        registry.register("frs_face_sets", "Face sets in the library, all projects", face_sets.clone());
        let faces = Gauge::default();
        registry.register("frs_faces", "Faces in the library, all projects and sets", faces.clone());
        let face_set_faces = Family::<FaceSetLabels, Gauge>::default();
        if config.face_set_series > 0 {
            registry.register(
                "frs_face_set_faces",
                "Faces per face set, for the largest sets only (metrics.face_set_series)",
                face_set_faces.clone(),
            );
        }
        Metrics {
            inner: Arc::new(Inner {
                registry,
                requests,
                errors,
                durations,
                stages,
                face_sets,
                faces,
                face_set_faces,
                face_set_series: config.face_set_series,
                scrape: Mutex::new(()),
            }),
        }
    }

    /// What the engine ([`frs_service::Engine::start_observed`]) and, through it, the face
    /// library report their stage timings and queue changes to.
    pub fn observer(&self) -> Arc<dyn Observer> {
        self.inner.stages.clone()
    }

    /// Counts one answered request.
    pub fn record_request(
        &self,
        operation: &'static str,
        status: u16,
        error_code: Option<&'static str>,
        elapsed: Duration,
    ) {
        let inner = &self.inner;
        inner.requests.get_or_create(&RequestLabels { operation, status }).inc();
        if let Some(code) = error_code {
            inner.errors.get_or_create(&ErrorLabels { operation, code }).inc();
        }
        inner.durations.get_or_create(&OperationLabels { operation }).observe(elapsed.as_secs_f64());
    }

    /// Every metric in the Prometheus text format, with the library gauges read from `library` now.
    pub fn render(&self, library: &FaceLibrary) -> String {
        let inner = &self.inner;
        let _scrape = inner.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        let mut sizes = library.face_set_sizes();
        inner.face_sets.set(sizes.len() as i64);
        inner.faces.set(sizes.iter().map(|size| size.faces as i64).sum());
        if inner.face_set_series > 0 {
            sizes.sort_unstable_by(|a, b| {
                (b.faces, &a.project_id, &a.face_set_name).cmp(&(a.faces, &b.project_id, &b.face_set_name))
            });
            inner.face_set_faces.clear();
            for size in sizes.into_iter().take(inner.face_set_series) {
                let labels = FaceSetLabels { project_id: size.project_id, face_set: size.face_set_name };
                inner.face_set_faces.get_or_create(&labels).set(size.faces as i64);
            }
        }
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut text, &inner.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("face_set_series", &self.inner.face_set_series).finish_non_exhaustive()
    }
}

/// Prometheus metrics of this process. Open (no authentication): it carries no project data
/// unless `metrics.face_set_series` is set.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "GetMetrics",
    responses((status = 200, description = "Every metric in the Prometheus text format (version 0.0.4): \
        request counts, errors and latencies by operation, inference and library stage times, queue \
        depth, face-set and face counts.", content_type = "text/plain; version=0.0.4", body = String))
)]
pub async fn get_metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], state.metrics.render(&state.library))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_route_has_an_operation_name() {
        use utoipa::OpenApi;
        let doc = crate::ApiDoc::openapi();
        for (path, item) in &doc.paths.paths {
            let methods = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::DELETE, &item.delete),
            ];
            for (method, op) in methods {
                if op.is_some() {
                    assert_ne!(operation(&method, Some(path)), UNMATCHED, "{method} {path} has no operation name");
                }
            }
        }
        assert_eq!(operation(&Method::HEAD, Some("/health")), "health");
        assert_eq!(operation(&Method::HEAD, Some("/v2/{project_id}/face-sets")), "listFaceSets");
        assert_eq!(operation(&Method::PATCH, Some("/health")), UNMATCHED);
        assert_eq!(operation(&Method::GET, None), UNMATCHED);
    }

    #[test]
    fn observer_calls_land_in_their_histograms() {
        let metrics = Metrics::new(&MetricsConfig::default());
        let observer = metrics.observer();
        for stage in Stage::ALL {
            observer.stage(stage, Duration::from_millis(2));
        }
        observer.queue_changed(1);
        observer.queue_changed(1);
        observer.queue_changed(-1);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &metrics.inner.registry).expect("encodes");
        for stage in ["decode", "detect", "align", "embed"] {
            assert!(
                text.contains(&format!("frs_pipeline_stage_duration_seconds_count{{stage=\"{stage}\"}} 1\n")),
                "{text}"
            );
        }
        for stage in ["search", "store"] {
            assert!(
                text.contains(&format!("frs_library_stage_duration_seconds_count{{stage=\"{stage}\"}} 1\n")),
                "{text}"
            );
        }
        assert!(text.contains("frs_inference_queue_wait_seconds_count 1\n"), "{text}");
        assert!(text.contains("frs_inference_queue_depth 1\n"), "{text}");
    }
}

/// The cost of the metrics on a request, side by side in one run:
/// `cargo test -p frs-server --release --lib metrics::overhead -- --ignored --nocapture`.
#[cfg(test)]
mod overhead {
    use std::time::Instant;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::router;

    #[tokio::test(flavor = "current_thread")]
    #[ignore = "a measurement: run with --release --ignored --nocapture"]
    async fn metrics_overhead_per_request() {
        const N: u32 = 200_000;
        let state = crate::tests::state_without_models();
        let metrics = state.metrics.clone();
        let app = router(state);
        let health = || Request::get("/health").body(Body::empty()).expect("request");
        for _ in 0..10_000 {
            app.clone().oneshot(health()).await.expect("infallible");
        }
        let started = Instant::now();
        for _ in 0..N {
            let response = app.clone().oneshot(health()).await.expect("infallible");
            std::hint::black_box(response);
        }
        let request_ns = started.elapsed().as_nanos() as f64 / f64::from(N);

        let method = Method::GET;
        let started = Instant::now();
        for i in 0..N {
            let operation =
                operation(&method, Some(std::hint::black_box("/v2/{project_id}/face-sets/{face_set_name}/search")));
            let status = if i % 10 == 0 { 400 } else { 200 };
            let code = (status == 400).then_some("FRS.0302");
            metrics.record_request(operation, status, code, Duration::from_micros(u64::from(i % 5000)));
        }
        let metrics_ns = started.elapsed().as_nanos() as f64 / f64::from(N);

        let threads = 2;
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let metrics = metrics.clone();
                scope.spawn(move || {
                    for i in 0..N {
                        metrics.record_request("searchFace", 200, None, Duration::from_micros(u64::from(i % 5000)));
                    }
                });
            }
        });
        let contended_ns = started.elapsed().as_nanos() as f64 / f64::from(N);
        println!(
            "GET /health through the router: {request_ns:.0} ns/request; metrics (operation lookup + counter + \
             histogram): {metrics_ns:.0} ns/request = {:.1}% of it; {threads} threads recording one series at \
             once: {contended_ns:.0} ns per round",
            100.0 * metrics_ns / request_ns
        );
    }
}
