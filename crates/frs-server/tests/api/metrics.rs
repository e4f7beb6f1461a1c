//! `GET /metrics`: counters by operation and status, error codes, stage histograms fed by a real
//! engine, bounded labels, and output that parses as the Prometheus text format.

use std::collections::{HashMap, HashSet};

use frs_server::{Metrics, MetricsConfig};

use super::*;

const PROJECT: &str = "metricsproj7f3a";
const SET: &str = "metricsset9c1d";

/// A state whose own engine reports to `metrics` (the shared engine reports nowhere).
fn observed_state(metrics: &Metrics) -> AppState {
    let engine = Arc::new(Engine::start_observed(engine_config(8), metrics.observer()));
    let store = frs_store::Store::open(&temp_data_dir()).expect("opening the store");
    let library = FaceLibrary::load(Arc::new(store), Arc::clone(&engine), LibraryLimits::default()).expect("library");
    AppState::new(FaceService::new(engine), library, Authentication::Disabled).with_metrics(metrics.clone())
}

/// `GET /metrics` on `state`: checks the content type and returns the text.
async fn scrape(state: AppState) -> String {
    let response = router(state).oneshot(get("/metrics")).await.expect("the router is infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("text/plain; version=0.0.4; charset=utf-8"));
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

/// One sample line: metric name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parses the Prometheus text format strictly enough to catch malformed output: `# HELP` and
/// `# TYPE` lines, then samples `name{k="v",…} value` whose family was typed before.
fn parse(text: &str) -> Vec<Sample> {
    fn is_name(s: &str) -> bool {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    assert!(text.ends_with('\n'), "the output ends with a newline");
    let mut typed: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().expect("a name");
            assert!(is_name(name), "{line}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("{line}"));
            assert!(is_name(name) && ["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(typed.insert(name.to_owned(), kind.to_owned()).is_none(), "{name} typed twice");
        } else {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
            };
            let (name, labels) = match series.split_once('{') {
                None => (series, Vec::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                    let labels = body
                        .split("\",")
                        .map(|pair| {
                            let (key, value) = pair.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                            assert!(is_name(key), "{line}");
                            (key.to_owned(), value.trim_end_matches('"').to_owned())
                        })
                        .collect();
                    (name, labels)
                }
            };
            assert!(is_name(name), "{line}");
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    name.strip_suffix(suffix).filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
                })
                .unwrap_or(name);
            assert!(typed.contains_key(family), "{name} has no # TYPE before it");
            samples.push((name.to_owned(), labels, value));
        }
    }
    samples
}

/// The value of the sample `name` with exactly `labels`, if present.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && l.len() == labels.len()
                && labels.iter().all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| *v)
}

#[tokio::test]
async fn metrics_count_operations_statuses_errors_and_stages() {
    require_assets();
    let metrics = Metrics::new(&MetricsConfig::default());
    let state = observed_state(&metrics);
    let deadline = Instant::now() + Duration::from_secs(120);
    while send_to(state.clone(), get("/ready")).await.status != StatusCode::OK {
        assert!(Instant::now() < deadline, "the models did not load within 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let sets = format!("/v2/{PROJECT}/face-sets");
    let set = format!("{sets}/{SET}");
    let detect = format!("/v2/{PROJECT}/face-detect");
    let image = b64(&sample(1));
    let reply = send_to(state.clone(), json_post(&detect, &json!({"image_base64": image}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let reply = send_to(state.clone(), json_post(&sets, &json!({"face_set_name": SET}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let reply = send_to(state.clone(), json_post(&format!("{set}/faces"), &json!({"image_base64": image}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let probe = b64(&sample(2));
    let reply = send_to(state.clone(), json_post(&format!("{set}/search"), &json!({"image_base64": probe}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // One FRS error (unknown set) and one unmatched route.
    let missing = format!("{sets}/no-such-set/search");
    let error = send_to(state.clone(), json_post(&missing, &json!({"image_base64": probe}))).await;
    let error_code = error.body["error_code"].as_str().expect("an FRS error").to_owned();
    let error_status = error.status.as_u16().to_string();
    let reply = send_to(state.clone(), get(&format!("/v2/{PROJECT}/no-such-route"))).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    let text = scrape(state.clone()).await;
    let samples = parse(&text);
    let requests = "frs_http_requests_total";
    for (operation, status) in
        [("detectFace", "200"), ("createFaceSet", "200"), ("addFaces", "200"), ("searchFace", "200")]
    {
        let labels = [("operation", operation), ("status", status)];
        assert_eq!(value(&samples, requests, &labels), Some(1.0), "{operation} {status}\n{text}");
        let count = value(&samples, "frs_http_request_duration_seconds_count", &[("operation", operation)]);
        assert!(count >= Some(1.0), "{operation} latency\n{text}");
    }
    let labels = [("operation", "searchFace"), ("status", error_status.as_str())];
    assert_eq!(value(&samples, requests, &labels), Some(1.0), "{text}");
    let labels = [("operation", "searchFace"), ("code", error_code.as_str())];
    assert_eq!(value(&samples, "frs_http_errors_total", &labels), Some(1.0), "{text}");
    let labels = [("operation", "unmatched"), ("status", "404")];
    assert_eq!(value(&samples, requests, &labels), Some(1.0), "{text}");
    assert!(value(&samples, requests, &[("operation", "ready"), ("status", "200")]) >= Some(1.0), "{text}");

    // Detect, add and search each decoded and detected one image; add and search embedded one.
    for (family, stage, at_least) in [
        ("frs_pipeline_stage_duration_seconds", "decode", 3.0),
        ("frs_pipeline_stage_duration_seconds", "detect", 3.0),
        ("frs_pipeline_stage_duration_seconds", "align", 2.0),
        ("frs_pipeline_stage_duration_seconds", "embed", 2.0),
        ("frs_library_stage_duration_seconds", "search", 1.0),
        ("frs_library_stage_duration_seconds", "store", 2.0),
    ] {
        let count = value(&samples, &format!("{family}_count"), &[("stage", stage)]);
        assert!(count >= Some(at_least), "{stage}: {count:?}\n{text}");
        let sum = value(&samples, &format!("{family}_sum"), &[("stage", stage)]);
        assert!(sum > Some(0.0), "{stage}: {sum:?}");
    }
    assert!(value(&samples, "frs_inference_queue_wait_seconds_count", &[]) >= Some(3.0), "{text}");
    assert_eq!(value(&samples, "frs_inference_queue_depth", &[]), Some(0.0), "{text}");
    assert_eq!(value(&samples, "frs_face_sets", &[]), Some(1.0), "{text}");
    assert!(value(&samples, "frs_faces", &[]) >= Some(1.0), "{text}");

    // Bounded labels: no project id or set name, no per-set series by default.
    assert!(!text.contains(PROJECT) && !text.contains(SET) && !text.contains("no-such"), "{text}");
    assert!(!text.contains("frs_face_set_faces"), "{text}");
    let operations: HashSet<&str> = samples
        .iter()
        .flat_map(|(_, labels, _)| labels.iter().filter(|(k, _)| k == "operation").map(|(_, v)| v.as_str()))
        .collect();
    let known = ["detectFace", "createFaceSet", "addFaces", "searchFace", "ready", "unmatched"];
    assert!(operations.iter().all(|o| known.contains(o)), "{operations:?}");

    // The scrape itself is counted.
    let samples = parse(&scrape(state).await);
    assert_eq!(value(&samples, requests, &[("operation", "metrics"), ("status", "200")]), Some(1.0));
}

#[tokio::test]
async fn per_set_gauges_are_opt_in_and_capped() {
    let metrics = Metrics::new(&MetricsConfig { face_set_series: 2 });
    let state = state_with_store(&temp_data_dir(), LibraryLimits::default()).with_metrics(metrics);
    let project = "metricsprojcap";
    for name in ["set-a", "set-b", "set-c"] {
        let body = json!({"face_set_name": name});
        let reply = send_to(state.clone(), json_post(&format!("/v2/{project}/face-sets"), &body)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let text = scrape(state).await;
    let samples = parse(&text);
    assert_eq!(value(&samples, "frs_face_sets", &[]), Some(3.0), "{text}");
    let series: Vec<&Sample> = samples.iter().filter(|(name, _, _)| name == "frs_face_set_faces").collect();
    assert_eq!(series.len(), 2, "{text}");
    // Equal sizes: the first names win, so the exported series are stable between scrapes.
    for name in ["set-a", "set-b"] {
        let labels = [("project_id", project), ("face_set", name)];
        assert_eq!(value(&samples, "frs_face_set_faces", &labels), Some(0.0), "{text}");
    }
}
