//! Rate limits and call quotas per project (`[quota]`), through the HTTP API with the real models:
//! every refusal with its FRS code and without effect, other projects untouched, successful calls
//! counted against the quota, counters durable across a restart, the caller's project charged.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use frs_service::{
    Action, CallCounts, Caller, Credentials, CredentialsConfig, MasterKey, Policy, ProjectQuota, QuotaConfig, Quotas,
    USAGE_FILE, Usage,
};

use super::*;

/// A project id no other test uses.
fn project() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("quota{:04}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn quota(requests_per_second: f64, burst: u32, max_calls: &[(&str, u64)]) -> QuotaConfig {
    let max_calls = max_calls.iter().map(|(action, limit)| ((*action).to_owned(), *limit)).collect();
    QuotaConfig { requests_per_second, burst, max_calls, ..QuotaConfig::default() }
}

/// A server over a fresh store enforcing `quotas`, and one over the same library without limits
/// (to look at the sets without using the limited one's tokens or quota).
fn states(quotas: Quotas) -> (AppState, AppState) {
    let unlimited = state_with_store(&temp_data_dir(), LibraryLimits::default());
    (unlimited.clone().with_quotas(quotas), unlimited)
}

fn sets(project: &str) -> String {
    format!("/v2/{project}/face-sets")
}

fn set(project: &str) -> String {
    format!("/v2/{project}/face-sets/s")
}

fn faces(project: &str) -> String {
    format!("/v2/{project}/face-sets/s/faces")
}

fn search(project: &str) -> String {
    format!("/v2/{project}/face-sets/s/search")
}

fn create(project: &str) -> Request<Body> {
    json_post(&sets(project), &json!({"face_set_name": "s"}))
}

fn add(project: &str, n: u32) -> Request<Body> {
    json_post(&faces(project), &json!({"image_base64": b64(&sample(n)), "single": true}))
}

#[track_caller]
fn assert_ok(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

/// The faces of set `s` of `project`, read through `state`.
async fn listed_faces(state: &AppState, project: &str) -> Value {
    let reply = send_to(state.clone(), get(&format!("{}?offset=0&limit=100", faces(project)))).await;
    assert_ok(&reply);
    reply.body["faces"].clone()
}

fn retry_after(reply: &Reply) -> Option<u64> {
    reply.headers.get(header::RETRY_AFTER)?.to_str().ok()?.parse().ok()
}

#[tokio::test]
async fn a_project_over_its_rate_gets_frs_0033_with_retry_after_and_its_add_changes_nothing() {
    wait_until_ready().await;
    // Three requests at once, then one every 100 s: the fourth request is refused.
    let quotas = Quotas::in_memory(quota(0.01, 3, &[]));
    let (limited, unlimited) = states(quotas.clone());
    let (p, q) = (project(), project());
    assert_ok(&send_to(limited.clone(), create(&p)).await);
    assert_ok(&send_to(limited.clone(), add(&p, 1)).await);
    assert_ok(&send_to(limited.clone(), get(&set(&p))).await);
    let before = listed_faces(&unlimited, &p).await;

    let reply = send_to(limited.clone(), add(&p, 2)).await;
    let message = assert_error(&reply, StatusCode::TOO_MANY_REQUESTS, "FRS.0033");
    assert!(message.contains("rate limit"), "{message}");
    let seconds = retry_after(&reply).expect("a Retry-After in seconds");
    assert!((90..=100).contains(&seconds), "about 100 s until the next token: {seconds}");
    // Refused before the body is read: a malformed body gets the same answer, not FRS.0014.
    let reply = send_to(limited.clone(), raw(Method::POST, &faces(&p), Some("application/json"), "{")).await;
    assert_error(&reply, StatusCode::TOO_MANY_REQUESTS, "FRS.0033");
    assert_eq!(listed_faces(&unlimited, &p).await, before, "the refused add changed nothing");

    // Another project has its own bucket.
    assert_ok(&send_to(limited.clone(), create(&q)).await);
    assert_ok(&send_to(limited.clone(), add(&q, 2)).await);

    let usage = quotas.usage();
    let counts = |project: &str, action: Action| usage.projects[project].get(action.name()).copied();
    assert_eq!(counts(&p, Action::AddFaces), Some(CallCounts { succeeded: 1, rate_limited: 2, ..Default::default() }));
    assert_eq!(counts(&p, Action::CreateFaceSet), Some(CallCounts { succeeded: 1, ..Default::default() }));
    assert_eq!(counts(&q, Action::AddFaces), Some(CallCounts { succeeded: 1, ..Default::default() }));
}

#[tokio::test]
async fn an_exhausted_quota_is_apig_0308_without_retry_after_and_changes_nothing() {
    wait_until_ready().await;
    let quotas = Quotas::in_memory(quota(0.0, 0, &[("addFaces", 1), ("searchFace", 1)]));
    let (limited, unlimited) = states(quotas.clone());
    let (p, q) = (project(), project());
    assert_ok(&send_to(limited.clone(), create(&p)).await);
    // A failed add does not use the quota.
    let reply = send_to(limited.clone(), json_post(&faces(&p), &json!({"image_base64": "not base64!"}))).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0015");
    assert_ok(&send_to(limited.clone(), add(&p, 1)).await);
    let before = listed_faces(&unlimited, &p).await;

    let reply = send_to(limited.clone(), add(&p, 2)).await;
    let message = assert_error(&reply, StatusCode::TOO_MANY_REQUESTS, "APIG.0308");
    assert!(message.contains("addFaces") && message.contains("limit:1"), "{message}");
    assert_eq!(retry_after(&reply), None, "waiting does not restore a quota");
    assert_eq!(listed_faces(&unlimited, &p).await, before, "the refused add changed nothing");

    // Other operations and other projects are not limited by p's addFaces quota.
    assert_ok(&send_to(limited.clone(), get(&set(&p))).await);
    let probe = json!({"image_base64": b64(&sample(1))});
    assert_ok(&send_to(limited.clone(), json_post(&search(&p), &probe)).await);
    let reply = send_to(limited.clone(), json_post(&search(&p), &probe)).await;
    assert_error(&reply, StatusCode::TOO_MANY_REQUESTS, "APIG.0308");
    assert_ok(&send_to(limited.clone(), create(&q)).await);
    assert_ok(&send_to(limited.clone(), add(&q, 2)).await);

    let counts = quotas.usage().projects[&p]["addFaces"];
    assert_eq!(counts, CallCounts { succeeded: 1, failed: 1, rate_limited: 0, quota_exhausted: 1 });
}

#[tokio::test]
async fn counters_and_quotas_survive_a_restart() {
    wait_until_ready().await;
    let dir = temp_data_dir();
    let path = dir.join(USAGE_FILE);
    let mut config = quota(0.0, 0, &[("createFaceSet", 2), ("showFaceSet", 3)]);
    let p = project();
    // The operator gave one project more: its override replaces what it names.
    config.projects.insert(
        "vip".into(),
        ProjectQuota { max_calls: BTreeMap::from([("showFaceSet".to_owned(), 5)]), ..Default::default() },
    );
    let quotas = Quotas::open(config.clone(), path.clone()).expect("opening the usage file");
    let state = state_with_store(&dir, LibraryLimits::default()).with_quotas(quotas.clone());
    assert_ok(&send_to(state.clone(), create(&p)).await);
    for _ in 0..2 {
        assert_ok(&send_to(state.clone(), get(&set(&p))).await);
    }
    let missing = send_to(state.clone(), get(&format!("/v2/{p}/face-sets/nope"))).await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "FRS.0302");
    assert_ok(&send_to(state.clone(), create("vip")).await);
    for _ in 0..4 {
        assert_ok(&send_to(state.clone(), get(&set("vip"))).await);
    }
    quotas.save().await.expect("saved at shutdown");
    drop(state);

    // A restart: the library reloads from the store, the counters from the usage file.
    let restarted = Quotas::open(config, path.clone()).expect("reopening the usage file");
    let state = state_with_store(&dir, LibraryLimits::default()).with_quotas(restarted.clone());
    assert_ok(&send_to(state.clone(), get(&set(&p))).await);
    let reply = send_to(state.clone(), get(&set(&p))).await;
    assert_error(&reply, StatusCode::TOO_MANY_REQUESTS, "APIG.0308");
    assert_ok(&send_to(state.clone(), get(&set("vip"))).await);
    assert_error(&send_to(state.clone(), get(&set("vip"))).await, StatusCode::TOO_MANY_REQUESTS, "APIG.0308");
    assert_ok(&send_to(state.clone(), json_post(&sets(&p), &json!({"face_set_name": "t"}))).await);
    let reply = send_to(state.clone(), json_post(&sets(&p), &json!({"face_set_name": "u"}))).await;
    assert_error(&reply, StatusCode::TOO_MANY_REQUESTS, "APIG.0308");
    restarted.save().await.expect("saved");

    let usage = Usage::read(&path).expect("the usage file reads");
    let counts = |project: &str, action: Action| usage.projects[project][action.name()];
    assert_eq!(
        counts(&p, Action::ShowFaceSet),
        CallCounts { succeeded: 3, failed: 1, rate_limited: 0, quota_exhausted: 1 }
    );
    assert_eq!(
        counts(&p, Action::CreateFaceSet),
        CallCounts { succeeded: 2, quota_exhausted: 1, ..Default::default() }
    );
    assert_eq!(
        counts("vip", Action::ShowFaceSet),
        CallCounts { succeeded: 5, quota_exhausted: 1, ..Default::default() }
    );
}

#[tokio::test]
async fn the_authenticated_callers_project_is_charged() {
    let store = frs_store::Store::open(&temp_data_dir()).expect("opening the store");
    let access = store.access();
    let library = FaceLibrary::load(Arc::new(store), engine(), LibraryLimits::default()).expect("loading");
    let credentials = Credentials::new(access, &MasterKey::generate().expect("random"), CredentialsConfig::default());
    let quotas = Quotas::in_memory(quota(0.0, 0, &[("listFaceSets", 1)]));
    let state = AppState::new(FaceService::new(engine()), library, Authentication::Required(credentials.clone()))
        .with_quotas(quotas.clone());
    let key = credentials.create("owner", Policy::Full, None).await.expect("a credential");
    let caller = Caller { access_key: Some(key.access_key.clone()), project_id: "owner".into(), policy: Policy::Full };
    let token = credentials.issue_token(&caller).await.expect("a token").token;
    let with_token = |path: &str| {
        Request::get(path).header(frs_server::AUTH_TOKEN_HEADER, token.as_str()).body(Body::empty()).expect("request")
    };
    // Unauthenticated requests are refused by authentication and never reach the quota.
    assert_error(&send_to(state.clone(), get(&sets("owner"))).await, StatusCode::UNAUTHORIZED, "APIG.0301");
    assert_ok(&send_to(state.clone(), with_token(&sets("owner"))).await);
    // Naming another project in the path does not escape the caller's own quota.
    let reply = send_to(state.clone(), with_token(&sets("elsewhere"))).await;
    assert_error(&reply, StatusCode::TOO_MANY_REQUESTS, "APIG.0308");
    let usage = quotas.usage();
    assert_eq!(usage.projects.keys().collect::<Vec<_>>(), ["owner"]);
    assert_eq!(
        usage.projects["owner"]["listFaceSets"],
        CallCounts { succeeded: 1, quota_exhausted: 1, ..Default::default() }
    );
}

#[tokio::test]
async fn concurrent_calls_never_pass_a_quota() {
    wait_until_ready().await;
    let quotas = Quotas::in_memory(quota(0.0, 0, &[("detectFace", 3)]));
    let (limited, _) = states(quotas.clone());
    let p = project();
    let image = b64(&sample(1));
    let calls = (0..8).map(|_| {
        let request = json_post(&format!("/v2/{p}/face-detect"), &json!({"image_base64": image}));
        tokio::spawn(send_to(limited.clone(), request))
    });
    let mut answered = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        answered.push(call.await.expect("the call ran").status);
    }
    let ok = answered.iter().filter(|status| **status == StatusCode::OK).count();
    let refused = answered.iter().filter(|status| **status == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((ok, refused), (3, 5), "{answered:?}");
    let counts = quotas.usage().projects[&p]["detectFace"];
    assert_eq!(counts, CallCounts { succeeded: 3, quota_exhausted: 5, ..Default::default() });
}
