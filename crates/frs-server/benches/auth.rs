//! What authentication adds to a request (plain `Instant`, `harness = false`):
//! `cargo bench -p frs-server --bench auth`.
//!
//! Guards: verifying an AK/SK signature or a token, including the credential lookup in the store
//! that every check makes (no cache), adds at most 0.2 ms to a request. Each figure is the median
//! over the same requests through the whole router, with authentication required minus disabled.
//! Hashing the body is part of a signed JSON request's cost (the 1 KiB case); what it adds per MiB
//! is reported separately (multipart bodies are signed `UNSIGNED-PAYLOAD` and not hashed).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use frs_server::{AppState, Authentication, router};
use frs_service::{Credentials, CredentialsConfig, Engine, EngineConfig, FaceLibrary, FaceService, MasterKey, Policy};
use frs_vision::{ModelPaths, PipelineConfig};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

const PROJECT: &str = "benchproj";
const ROUNDS: usize = 3000;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Headers of a request signed as the SDK signs it (path without escapes, no query).
fn signed_headers(method: &Method, path: &str, body: &[u8], ak: &str, sk: &str) -> Vec<(String, String)> {
    let date = jiff::Timestamp::try_from(SystemTime::now()).expect("now").strftime("%Y%m%dT%H%M%SZ").to_string();
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("host", "localhost:8080".to_owned()),
        ("x-project-id", PROJECT.to_owned()),
        ("x-sdk-date", date.clone()),
    ];
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let names = headers.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(";");
    let canonical = format!("{method}\n{path}/\n\n{canonical_headers}\n{names}\n{}", hex(&Sha256::digest(body)));
    let string_to_sign = format!("SDK-HMAC-SHA256\n{date}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(sk.as_bytes()).expect("any key length");
    mac.update(string_to_sign.as_bytes());
    let signature = hex(&mac.finalize().into_bytes());
    let mut all: Vec<(String, String)> = headers.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    all.push((
        "authorization".into(),
        format!("SDK-HMAC-SHA256 Access={ak}, SignedHeaders={names}, Signature={signature}"),
    ));
    all
}

fn request(method: &Method, path: &str, headers: &[(String, String)], body: &[u8]) -> Request<Body> {
    let mut builder = Request::builder().method(method.clone()).uri(path);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    builder.body(Body::from(body.to_vec())).expect("request")
}

/// Median time of one request through `app`.
async fn median(app: &Router, method: &Method, path: &str, headers: &[(String, String)], body: &[u8]) -> Duration {
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let request = request(method, path, headers, body);
        let started = Instant::now();
        let response = app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        times.push(started.elapsed());
        assert_ne!(status, StatusCode::UNAUTHORIZED);
        assert_ne!(status, StatusCode::FORBIDDEN);
    }
    times.sort();
    times[ROUNDS / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let engine = Arc::new(Engine::start(EngineConfig {
        pipeline: PipelineConfig {
            models: ModelPaths::in_dir("/nonexistent"),
            detector: Default::default(),
            threads: 1,
        },
        limits: Default::default(),
        workers: 1,
        queue_capacity: 1,
    }));
    let dir = tempfile::Builder::new().prefix("frs-auth-bench-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("dir");
    let store = frs_store::Store::open(dir.path()).expect("store");
    let credentials =
        Credentials::new(store.access(), &MasterKey::generate().expect("random"), CredentialsConfig::default());
    let library = FaceLibrary::load(Arc::new(store), Arc::clone(&engine), Default::default()).expect("library");
    let service = FaceService::new(engine);
    let disabled = router(AppState::new(service.clone(), library.clone(), Authentication::Disabled));
    let required = router(AppState::new(service, library, Authentication::Required(credentials.clone())));

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        // A few other credentials, so the lookup is not in a one-row table.
        for _ in 0..100 {
            credentials.create(PROJECT, Policy::Full, None).await.expect("credential");
        }
        let key = credentials.create(PROJECT, Policy::Full, None).await.expect("credential");
        let caller = credentials.signing_key(&key.access_key).await.expect("key").caller;
        let token = credentials.issue_token(&caller).await.expect("token").token;

        let list = format!("/v2/{PROJECT}/face-sets");
        // A detect without an image: parsed and refused (FRS.0011) before any inference.
        let detect = format!("/v2/{PROJECT}/face-detect");
        let small = format!(r#"{{"attributes":"2","padding":"{}"}}"#, "x".repeat(1000)).into_bytes();
        let large = vec![b'x'; 4 << 20];
        let json = vec![("content-type".to_owned(), "application/json".to_owned())];
        let token_headers = vec![("x-auth-token".to_owned(), token.clone())];

        println!("median per request, {ROUNDS} requests each, through the router:");
        let cases: [(&str, Method, &String, &[u8]); 2] = [
            ("GET face-sets, no body", Method::GET, &list, b""),
            ("POST face-detect, 1 KiB JSON", Method::POST, &detect, &small),
        ];
        for (name, method, path, body) in cases {
            let base = median(&disabled, &method, path, &json, body).await;
            let signed = signed_headers(&method, path, body, &key.access_key, &key.secret_key);
            let sig = median(&required, &method, path, &signed, body).await;
            let tok = median(&required, &method, path, &[json.clone(), token_headers.clone()].concat(), body).await;
            println!(
                "  {name:<30} disabled {:.3} ms | signature {:.3} ms (+{:.3}) | token {:.3} ms (+{:.3})",
                ms(base),
                ms(sig),
                ms(sig.saturating_sub(base)),
                ms(tok),
                ms(tok.saturating_sub(base)),
            );
        }
        let started = Instant::now();
        let mut digest = Sha256::new();
        for _ in 0..16 {
            digest.update(&large);
        }
        let rate = 16.0 * large.len() as f64 / started.elapsed().as_secs_f64() / (1 << 20) as f64;
        println!(
            "  a signed body's SHA-256 adds {:.2} ms per MiB ({rate:.0} MiB/s; {:x})",
            1e3 / rate,
            digest.finalize()[0]
        );
    });
}
