//! API tests over the router, in process (`tower::ServiceExt::oneshot`, no socket) except one
//! socket test for `serve_on` and graceful shutdown. Inference tests use the real models in
//! `assets/models` and the real photos in `assets/images`; they fail (never skip) without them.
//!
//! Every test asserts the exact FRS code and HTTP status, and that `X-Request-Id` is present.
//! `library` covers face sets, faces and search over an embedded store in a temporary directory;
//! `url` covers `image_url` inputs against a local image server.
//! `metrics` covers `GET /metrics` after real detect, add and search calls.

mod auth;
mod library;
mod metrics;
mod quota;
mod url;

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::IntoResponse;
use base64::Engine as _;
use frs_server::routes::compare::CompareByBase64Request;
use frs_server::routes::detect::DetectByBase64Request;
use frs_server::{ApiError, AppState, Authentication, ServerConfig, router};
use frs_service::{
    Engine, EngineConfig, FaceLibrary, FaceService, FetchPolicy, ImageFetcher, LibraryLimits, MAX_IMAGE_BYTES,
    ServiceError,
};
use frs_vision::{ImageLimits, ModelPaths, PipelineConfig};
use image::{ImageFormat, RgbImage};
use serde_json::{Value, json};
use tower::ServiceExt;

const DETECT: &str = "/v2/0123456789abcdef/face-detect";
const COMPARE: &str = "/v2/0123456789abcdef/face-compare";
const BOUNDARY: &str = "frs-test-boundary-7d93a1";

// ---------------------------------------------------------------------------------------------
// Fixtures

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails the calling test unless the models and sample images exist.
fn require_assets() {
    let models = ModelPaths::in_dir(repo_root().join("assets/models"));
    for path in [&models.onnxruntime, &models.detector, &models.recognizer] {
        assert!(path.is_file(), "{} is missing: run scripts/setup.sh", path.display());
    }
    let sample = repo_root().join("assets/images/sample1.jpg");
    assert!(sample.is_file(), "{} is missing: run scripts/setup.sh", sample.display());
}

/// One engine for the whole binary (model loading costs about a second). Built even without
/// assets so the tests that fail before inference run anyway; those that infer call
/// [`wait_until_ready`], which fails the test without assets.
fn state() -> AppState {
    static STATE: OnceLock<AppState> = OnceLock::new();
    STATE.get_or_init(|| state_with_store(&temp_data_dir(), LibraryLimits::default())).clone()
}

/// The shared engine (one worker).
fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    Arc::clone(ENGINE.get_or_init(|| Arc::new(Engine::start(engine_config(64)))))
}

/// One worker of one thread on the real models, with a queue of `queue_capacity` jobs.
fn engine_config(queue_capacity: usize) -> EngineConfig {
    EngineConfig {
        pipeline: PipelineConfig {
            models: ModelPaths::in_dir(repo_root().join("assets/models")),
            detector: Default::default(),
            threads: 1,
        },
        limits: Default::default(),
        workers: 1,
        queue_capacity,
    }
}

/// A new empty data directory that outlives the test (removed with the OS's temp files).
fn temp_data_dir() -> PathBuf {
    tempfile::Builder::new().prefix("frs-api-test-").tempdir().expect("a temporary directory").keep()
}

/// A state over the shared engine and the store in `dir`, loaded as at start.
fn state_with_store(dir: &Path, limits: LibraryLimits) -> AppState {
    state_with_fetch(dir, limits, FetchPolicy::default())
}

/// [`state_with_store`] fetching `image_url` inputs under `policy`.
fn state_with_fetch(dir: &Path, limits: LibraryLimits, policy: FetchPolicy) -> AppState {
    let fetcher = ImageFetcher::new(policy).expect("a valid fetch policy");
    let store = frs_store::Store::open(dir).expect("opening the store");
    let library = FaceLibrary::load(Arc::new(store), engine(), limits)
        .expect("loading the library")
        .with_fetcher(fetcher.clone());
    AppState::new(FaceService::new(engine()).with_fetcher(fetcher), library, Authentication::Disabled)
}

/// Waits until the shared engine has loaded the models; fails the test without assets.
async fn wait_until_ready() {
    require_assets();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let response = send(get("/ready")).await;
        if response.status == StatusCode::OK {
            return;
        }
        assert!(Instant::now() < deadline, "the models did not load within 120 s: {:?}", response.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sample(n: u32) -> Vec<u8> {
    require_assets();
    let path = repo_root().join(format!("assets/images/sample{n}.jpg"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}: run scripts/setup.sh", path.display()))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encoding a test image");
    out.into_inner()
}

/// A PNG whose header claims 50000×50000 pixels (with a correct IHDR CRC).
fn huge_png() -> Vec<u8> {
    let mut png = encode(&RgbImage::new(1, 1), ImageFormat::Png);
    png[16..20].copy_from_slice(&50_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&50_000u32.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

// ---------------------------------------------------------------------------------------------
// Requests and responses

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    content_type: Option<String>,
    body: Value,
}

async fn send(request: Request<Body>) -> Reply {
    send_to(state(), request).await
}

async fn send_to(state: AppState, request: Request<Body>) -> Reply {
    let response = router(state).oneshot(request).await.expect("the router is infallible");
    let status = response.status();
    let request_id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let request_id = request_id.expect("every response carries X-Request-Id");
    assert_eq!(request_id.len(), 32, "request id {request_id}");
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("reading the response body");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("{status}: response body is not JSON: {}", String::from_utf8_lossy(&bytes)));
    Reply { status, headers, content_type, body }
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

fn raw(method: Method, path: &str, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(body.into()).expect("request")
}

fn json_post(path: &str, body: &Value) -> Request<Body> {
    json_request(Method::POST, path, body)
}

fn json_request(method: Method, path: &str, body: &Value) -> Request<Body> {
    raw(method, path, Some("application/json;charset=UTF-8"), serde_json::to_vec(body).expect("json"))
}

/// One multipart part: name, file name (a file part when given), bytes.
type Part<'a> = (&'a str, Option<&'a str>, &'a [u8]);

fn multipart_post(path: &str, parts: &[Part<'_>]) -> Request<Body> {
    multipart(Method::POST, path, parts)
}

fn multipart(method: Method, path: &str, parts: &[Part<'_>]) -> Request<Body> {
    let mut body = Vec::new();
    for (name, file_name, bytes) in parts {
        write!(body, "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"").expect("write");
        match file_name {
            Some(file_name) => {
                write!(body, "; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                    .expect("write");
            }
            None => body.extend_from_slice(b"\r\n\r\n"),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{BOUNDARY}--\r\n").expect("write");
    raw(method, path, Some(&format!("multipart/form-data; boundary={BOUNDARY}")), body)
}

fn detect_json(image_base64: String, attributes: Option<&str>) -> Request<Body> {
    let body = DetectByBase64Request { image_base64, attributes: attributes.map(str::to_owned) };
    json_post(DETECT, &serde_json::to_value(body).expect("json"))
}

fn compare_json(image1: &[u8], image2: &[u8]) -> Request<Body> {
    let body = CompareByBase64Request { image1_base64: b64(image1), image2_base64: b64(image2) };
    json_post(COMPARE, &serde_json::to_value(body).expect("json"))
}

/// Asserts an FRS error body with `code` and `status`; returns the message.
#[track_caller]
fn assert_error(reply: &Reply, status: StatusCode, code: &str) -> String {
    assert_eq!(
        (reply.status, reply.body["error_code"].as_str()),
        (status, Some(code)),
        "unexpected answer: {}",
        reply.body
    );
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    let object = reply.body.as_object().expect("an object");
    assert_eq!(object.len(), 2, "only error_code and error_msg: {}", reply.body);
    reply.body["error_msg"].as_str().expect("error_msg is a string").to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Box2 {
    x: i64,
    y: i64,
    w: i64,
    h: i64,
}

fn box_of(value: &Value) -> Box2 {
    let field = |k: &str| value[k].as_i64().unwrap_or_else(|| panic!("bounding_box.{k} in {value}"));
    Box2 { x: field("top_left_x"), y: field("top_left_y"), w: field("width"), h: field("height") }
}

fn oriented_size(bytes: &[u8]) -> (i64, i64) {
    let image = frs_vision::decode_image(bytes, &ImageLimits::default()).expect("sample decodes");
    (i64::from(image.width()), i64::from(image.height()))
}

// ---------------------------------------------------------------------------------------------
// Operations routes

#[tokio::test]
async fn health_is_ok() {
    let reply = send(get("/health")).await;
    assert_eq!((reply.status, reply.body.clone()), (StatusCode::OK, json!({"status": "ok"})));
}

#[tokio::test]
async fn ready_turns_200_once_the_models_are_loaded() {
    wait_until_ready().await;
    let reply = send(get("/ready")).await;
    assert_eq!((reply.status, reply.body.clone()), (StatusCode::OK, json!({"status": "ready"})));
}

#[tokio::test]
async fn unknown_routes_and_methods_get_frs_bodies() {
    let reply = send(get("/v2/p/no-such-thing")).await;
    assert_error(&reply, StatusCode::NOT_FOUND, "APIG.0101");
    let reply = send(raw(Method::POST, "/", Some("application/json"), "{}")).await;
    assert_error(&reply, StatusCode::NOT_FOUND, "APIG.0101");
    let reply = send(get(DETECT)).await;
    assert_error(&reply, StatusCode::METHOD_NOT_ALLOWED, "APIG.0101");
    assert_eq!(reply.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()), Some("POST"));
}

#[tokio::test]
async fn internal_errors_never_leak_details() {
    let response = ApiError::from(ServiceError::Internal("secret detail /opt/models".into())).into_response();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let body: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(body, json!({"error_code": "FRS.0018", "error_msg": "The service inner error."}));
    assert!(!String::from_utf8_lossy(&bytes).contains("secret"));
}

// ---------------------------------------------------------------------------------------------
// OpenAPI

#[tokio::test]
async fn openapi_json_is_committed_and_served() {
    let path = repo_root().join("docs/openapi.json");
    let generated = frs_server::openapi_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("writing docs/openapi.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date; regenerate it with `UPDATE_OPENAPI=1 cargo test -p frs-server openapi`"
    );
    let reply = send(get("/openapi.json")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, serde_json::from_str::<Value>(&generated).expect("valid JSON"));
    for path in ["/v2/{project_id}/face-detect", "/v2/{project_id}/face-compare", "/health", "/ready"] {
        assert!(reply.body["paths"].get(path).is_some(), "{path} is documented");
    }
}

// ---------------------------------------------------------------------------------------------
// Errors that happen before inference

#[tokio::test]
async fn content_type_is_required_and_must_be_json_or_multipart() {
    let reply = send(raw(Method::POST, DETECT, None, "{}")).await;
    let message = assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0010");
    assert!(message.contains("Content-Type"), "{message}");
    let reply = send(raw(Method::POST, DETECT, Some("text/plain"), "{}")).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0010");
}

#[tokio::test]
async fn bodies_that_are_not_json_are_frs_0014() {
    for body in ["", "not json", "{\"image_base64\": ", "{\"image_base64\": \"abc\"} trailing"] {
        let reply = send(raw(Method::POST, DETECT, Some("application/json"), body)).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0014");
    }
}

#[tokio::test]
async fn json_of_the_wrong_shape_or_type_is_frs_0012() {
    for body in
        [json!([1, 2]), json!("image"), json!({"image_base64": 42}), json!({"image_base64": "aGk=", "attributes": 2})]
    {
        let reply = send(json_post(DETECT, &body)).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0012");
    }
}

#[tokio::test]
async fn a_missing_image_is_frs_0011_naming_the_parameter() {
    for body in [json!({}), json!({"image_base64": null, "attributes": null, "unknown": 1})] {
        let reply = send(json_post(DETECT, &body)).await;
        let message = assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0011");
        assert!(message.contains("image_base64"), "{message}");
    }
    let reply = send(multipart_post(DETECT, &[("attributes", None, b"2")])).await;
    let message = assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0011");
    assert!(message.contains("image_file"), "{message}");
    let reply = send(json_post(COMPARE, &json!({"image1_base64": "aGk="}))).await;
    let message = assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0011");
    assert!(message.contains("image2_base64"), "{message}");
}

#[tokio::test]
async fn two_inputs_for_one_image_are_frs_0012() {
    let reply = send(json_post(DETECT, &json!({"image_base64": "aGk=", "image_url": "https://b.obs/x.jpg"}))).await;
    let message = assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0012");
    assert!(message.contains("image_base64") && message.contains("image_url"), "{message}");
    let reply = send(multipart_post(
        DETECT,
        &[("image_file", Some("a.jpg"), b"\xff\xd8\xff"), ("image_base64", None, b"aGk=")],
    ))
    .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0012");
    let twice = [("image_file", Some("a.jpg"), &b"\xff\xd8\xff"[..]), ("image_file", Some("b.jpg"), b"\xff\xd8\xff")];
    let reply = send(multipart_post(DETECT, &twice)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0012");
}

#[tokio::test]
async fn image_urls_are_refused_by_the_default_fetch_policy() {
    let reply =
        send(json_post(DETECT, &json!({"image_url": "https://bucket.obs.cn-north-4.myhuaweicloud.com/a.jpg"}))).await;
    let message = assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0021");
    assert!(message.contains("image_url"), "{message}");
    let reply =
        send(json_post(COMPARE, &json!({"image1_url": "https://a/1.jpg", "image2_url": "https://a/2.jpg"}))).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0021");
    let reply = send(json_post(DETECT, &json!({"image_url": ""}))).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0011");
}

#[tokio::test]
async fn an_unknown_attribute_code_is_frs_0012() {
    let reply = send(detect_json(b64(b"\xff\xd8\xff not decoded"), Some("2,5"))).await;
    let message = assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0012");
    assert!(message.contains('5'), "{message}");
}

#[tokio::test]
async fn empty_and_malformed_base64() {
    let reply = send(detect_json(String::new(), None)).await;
    let message = assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0011");
    assert!(message.contains("image_base64"), "{message}");
    for bad in ["not base64!", "====", "aGVsbG8\r\nd29ybGQ=", "data:image/jpeg;base64,/9j/4AAQ"] {
        let reply = send(detect_json(bad.to_owned(), None)).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0015");
    }
}

#[tokio::test]
async fn images_over_8_mib_are_frs_0017() {
    let reply = send(detect_json("A".repeat(MAX_IMAGE_BYTES + 4), None)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0017");
    let big = vec![0u8; MAX_IMAGE_BYTES + 1];
    let reply = send(multipart_post(DETECT, &[("image_file", Some("big.jpg"), &big)])).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0017");
}

#[tokio::test]
async fn bodies_over_the_limit_are_frs_0017_not_413() {
    let image = "A".repeat(frs_server::DEFAULT_BODY_LIMIT_BYTES);
    let body = serde_json::to_vec(&json!({"image1_base64": image, "image2_base64": "aGk="})).expect("json");
    // Streamed without a length: the limit trips while reading.
    let reply = send(raw(Method::POST, COMPARE, Some("application/json"), body.clone())).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0017");
    // With Content-Length: rejected before reading.
    let request = Request::post(COMPARE)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .expect("request");
    assert_error(&send(request).await, StatusCode::BAD_REQUEST, "FRS.0017");
    // The multipart reader trips on the same limit.
    let big = vec![7u8; frs_server::DEFAULT_BODY_LIMIT_BYTES];
    let reply =
        send(multipart_post(COMPARE, &[("image1_file", Some("a"), &big), ("image2_file", Some("b"), b"x")])).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0017");
}

#[tokio::test]
async fn two_maximal_base64_images_fit_the_default_body_limit() {
    // Just under the per-image limit each; fails on base64 decoding, i.e. after the body was read.
    let image = "A".repeat(MAX_IMAGE_BYTES - 1);
    let body = json!({"image1_base64": image, "image2_base64": image});
    let reply = send(json_post(COMPARE, &body)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0015");
}

#[tokio::test]
async fn malformed_multipart_is_frs_0012() {
    let reply = send(raw(Method::POST, DETECT, Some("multipart/form-data"), "x")).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0012");
    let reply =
        send(raw(Method::POST, DETECT, Some(&format!("multipart/form-data; boundary={BOUNDARY}")), "garbage")).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0012");
}

#[tokio::test]
async fn an_empty_multipart_body_is_frs_0012() {
    let reply = send(raw(Method::POST, DETECT, Some(&format!("multipart/form-data; boundary={BOUNDARY}")), "")).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0012");
}

#[tokio::test]
async fn compare_inputs_must_be_of_the_same_type() {
    let body = json!({"image1_base64": "aGk=", "image2_url": "https://bucket.obs/x.jpg"});
    let reply = send(json_post(COMPARE, &body)).await;
    let message = assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0012");
    assert!(message.contains("same input type"), "{message}");
    let body = json!({"image1_url": "https://bucket.obs/x.jpg", "image2_base64": "aGk="});
    assert_error(&send(json_post(COMPARE, &body)).await, StatusCode::BAD_REQUEST, "FRS.0012");
    let parts = [("image1_file", Some("a.jpg"), &b"\xff\xd8\xff"[..]), ("image2_base64", None, b"aGk=")];
    let reply = send(multipart_post(COMPARE, &parts)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0012");
}

// ---------------------------------------------------------------------------------------------
// Inference: real models, real photos

#[tokio::test]
async fn detect_finds_faces_inside_every_sample() {
    wait_until_ready().await;
    for n in 1..=6 {
        let bytes = sample(n);
        let (width, height) = oriented_size(&bytes);
        let reply = send(detect_json(b64(&bytes), None)).await;
        assert_eq!(reply.status, StatusCode::OK, "sample{n}: {}", reply.body);
        let faces = reply.body["faces"].as_array().expect("faces");
        assert!(!faces.is_empty(), "sample{n} has faces");
        let mut previous_area = i64::MAX;
        for face in faces {
            assert!(face.get("attributes").is_none() && face.get("landmark").is_none(), "{face}");
            let b = box_of(&face["bounding_box"]);
            assert!(b.w >= 20 && b.h >= 20, "sample{n}: tiny box {b:?}");
            assert!(b.x >= -b.w / 4 && b.y >= -b.h / 4, "sample{n}: box {b:?} outside {width}x{height}");
            assert!(
                b.x + b.w <= width + b.w / 4 && b.y + b.h <= height + b.h / 4,
                "sample{n}: {b:?} vs {width}x{height}"
            );
            // Sorted on the float boxes; rounding to pixels moves an area by up to about w + h.
            assert!(b.w * b.h <= previous_area.saturating_add(2 * (b.w + b.h)), "sample{n}: largest first: {faces:?}");
            previous_area = b.w * b.h;
        }
    }
}

#[tokio::test]
async fn detect_by_multipart_file() {
    wait_until_ready().await;
    let bytes = sample(2);
    let json = send(detect_json(b64(&bytes), None)).await;
    let reply =
        send(multipart_post(DETECT, &[("image_file", Some("sample2.jpg"), &bytes), ("attributes", None, b"2")])).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let faces = reply.body["faces"].as_array().expect("faces");
    assert_eq!(faces.len(), json.body["faces"].as_array().expect("faces").len(), "same faces as by base64");
    assert_eq!(faces[0]["bounding_box"], json.body["faces"][0]["bounding_box"]);
    assert!(faces[0]["attributes"].is_object(), "attributes requested: {}", faces[0]);
}

#[tokio::test]
async fn attribute_3_returns_the_landmarks() {
    wait_until_ready().await;
    let reply = send(detect_json(b64(&sample(1)), Some("3"))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    for face in reply.body["faces"].as_array().expect("faces") {
        let b = box_of(&face["bounding_box"]);
        let landmark = &face["landmark"];
        let points: Vec<&Value> = ["eyes_contour", "nose_contour", "mouth_contour"]
            .iter()
            .flat_map(|k| landmark[*k].as_array().unwrap_or_else(|| panic!("{k} in {face}")))
            .collect();
        assert_eq!(points.len(), 5, "{face}");
        for p in points {
            let (x, y) = (p["x"].as_f64().expect("x"), p["y"].as_f64().expect("y"));
            let slack = b.w as f64 * 0.25;
            assert!(x >= b.x as f64 - slack && x <= (b.x + b.w) as f64 + slack, "{p} vs {b:?}");
            assert!(y >= b.y as f64 - slack && y <= (b.y + b.h) as f64 + slack, "{p} vs {b:?}");
        }
    }
}

#[tokio::test]
async fn broken_images_are_rejected_with_their_codes() {
    wait_until_ready().await;
    let jpeg = sample(3);
    let reply = send(detect_json(b64(&jpeg[..jpeg.len() / 2]), None)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0015");
    let reply = send(detect_json(b64(b"This is a text file, not an image.\n"), None)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0016");
    let reply = send(detect_json(b64(&huge_png()), None)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0013");
    let reply = send(multipart_post(DETECT, &[("image_file", Some("huge.png"), &huge_png())])).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0013");
}

#[tokio::test]
async fn an_image_without_a_face_is_frs_0501() {
    wait_until_ready().await;
    let gray = encode(&RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128])), ImageFormat::Png);
    let reply = send(detect_json(b64(&gray), None)).await;
    let message = assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0501");
    assert_eq!(message, "Detect no face, check out your picture.");
    let reply = send(compare_json(&gray, &sample(1))).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0501");
}

#[tokio::test]
async fn compare_an_image_with_itself() {
    wait_until_ready().await;
    let bytes = sample(4);
    let reply = send(compare_json(&bytes, &bytes)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let similarity = reply.body["similarity"].as_f64().expect("similarity");
    assert!(similarity >= 0.99, "same image: {similarity}");
    assert_eq!(reply.body["image1_face"]["bounding_box"], reply.body["image2_face"]["bounding_box"]);
    // The same by multipart.
    let reply = send(multipart_post(
        COMPARE,
        &[("image1_file", Some("a.jpg"), &bytes), ("image2_file", Some("b.jpg"), &bytes)],
    ))
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body["similarity"].as_f64().expect("similarity") >= 0.99);
}

/// `face` of `bytes` cropped with a margin of one box size around it.
fn crop_face(bytes: &[u8], face: &Value) -> Vec<u8> {
    let image = frs_vision::decode_image(bytes, &ImageLimits::default()).expect("sample decodes");
    let b = box_of(&face["bounding_box"]);
    let (width, height) = (i64::from(image.width()), i64::from(image.height()));
    let x0 = (b.x - b.w).clamp(0, width - 1);
    let y0 = (b.y - b.h).clamp(0, height - 1);
    let x1 = (b.x + 2 * b.w).clamp(x0 + 1, width);
    let y1 = (b.y + 2 * b.h).clamp(y0 + 1, height);
    let crop = image::imageops::crop_imm(&image, x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32).to_image();
    encode(&crop, ImageFormat::Png)
}

#[tokio::test]
async fn compare_two_different_people() {
    wait_until_ready().await;
    let bytes = sample(1);
    let reply = send(detect_json(b64(&bytes), None)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let faces = reply.body["faces"].as_array().expect("faces");
    assert!(faces.len() >= 2, "sample1 is a group photo: {}", reply.body);
    let (a, b) = (crop_face(&bytes, &faces[0]), crop_face(&bytes, &faces[1]));
    let same = send(compare_json(&a, &a)).await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);
    let same = same.body["similarity"].as_f64().expect("similarity");
    let different = send(compare_json(&a, &b)).await;
    assert_eq!(different.status, StatusCode::OK, "{}", different.body);
    let different = different.body["similarity"].as_f64().expect("similarity");
    assert!((0.0..=1.0).contains(&different), "{different}");
    assert!(different < 0.93 && different < same - 0.05, "different people {different} vs same {same}");
}

// ---------------------------------------------------------------------------------------------
// Over a socket

#[tokio::test]
async fn serve_on_a_socket_and_shut_down_gracefully() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding a port");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(frs_server::serve_on(listener, ServerConfig::default(), state(), async {
        let _ = stopped.await;
    }));
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).expect("connecting");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").expect("writing");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("reading");
        response
    })
    .await
    .expect("client thread");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.to_ascii_lowercase().contains("x-request-id: "), "{response}");
    assert!(response.ends_with(r#"{"status":"ok"}"#), "{response}");
    stop.send(()).expect("server is running");
    let result = tokio::time::timeout(Duration::from_secs(10), server).await.expect("shuts down in time");
    result.expect("server task").expect("serve returns Ok");
}
