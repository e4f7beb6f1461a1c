//! Authentication with `Authentication::Required`: requests signed by a port of the official SDK's
//! `SDK-HMAC-SHA256` signer, tokens from `POST /v3/auth/tokens`, every refusal with its code and
//! without effect, authorization left to the service layer, and the audit log.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use frs_service::{
    AuditFilter, AuditLog, AuditRecord, Credentials, CredentialsConfig, MasterKey, NewCredential, Policy,
};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

use super::*;

const PROJECT: &str = "authproj";

/// An authenticated server over a fresh store, its credentials and audit log, and a clock the
/// test can move (seconds added to the system clock).
struct Fixture {
    state: AppState,
    credentials: Credentials,
    audit: AuditLog,
    skew: Arc<AtomicI64>,
}

impl Fixture {
    fn new() -> Fixture {
        let store = frs_store::Store::open(&temp_data_dir()).expect("opening the store");
        let access = store.access();
        let library = FaceLibrary::load(Arc::new(store), engine(), LibraryLimits::default()).expect("loading");
        let skew = Arc::new(AtomicI64::new(0));
        let clock_skew = Arc::clone(&skew);
        let master_key = MasterKey::generate().expect("random");
        let credentials = Credentials::new(access.clone(), &master_key, CredentialsConfig::default())
            .with_clock(Arc::new(move || shifted(SystemTime::now(), clock_skew.load(Ordering::Relaxed))));
        let audit = AuditLog::new(access);
        let state = AppState::new(FaceService::new(engine()), library, Authentication::Required(credentials.clone()))
            .with_audit(audit.clone());
        Fixture { state, credentials, audit, skew }
    }

    async fn key(&self, project: &str, policy: Policy) -> NewCredential {
        self.credentials.create(project, policy, None).await.expect("creating a credential")
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        send_to(self.state.clone(), request).await
    }

    async fn face_sets(&self, key: &NewCredential) -> Vec<String> {
        let reply = self.send(SdkRequest::new(Method::GET, &sets(PROJECT), None, vec![]).sign(key).build()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let sets = reply.body["face_sets_info"].as_array().expect("face_sets_info");
        sets.iter().map(|s| s["face_set_name"].as_str().expect("name").to_owned()).collect()
    }

    async fn audit(&self) -> Vec<AuditRecord> {
        self.audit.records(AuditFilter { limit: 100, ..Default::default() }).await.expect("reading the audit log")
    }
}

fn shifted(time: SystemTime, seconds: i64) -> SystemTime {
    if seconds >= 0 {
        time + Duration::from_secs(seconds.unsigned_abs())
    } else {
        time - Duration::from_secs(seconds.unsigned_abs())
    }
}

fn sets(project: &str) -> String {
    format!("/v2/{project}/face-sets")
}

fn faces(project: &str, set: &str) -> String {
    format!("/v2/{project}/face-sets/{set}/faces")
}

fn create_set_body(name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"face_set_name": name, "external_fields": {"dept": {"type": "integer"}}})).expect("json")
}

fn multipart_body(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file_name, bytes) in parts {
        write!(body, "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"").expect("write");
        if let Some(file_name) = file_name {
            write!(body, "; filename=\"{file_name}\"\r\nContent-Type: image/jpeg").expect("write");
        }
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{BOUNDARY}--\r\n").expect("write");
    body
}

// ---------------------------------------------------------------------------------------------
// A port of huaweicloudsdkcore's `Signer` (signer.py, 3.1.219)

/// What `quote(s, safe='~')` leaves as is.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~');

fn quote(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A request as the SDK holds it: path, raw query parameters, headers in insertion order, body.
#[derive(Clone)]
struct SdkRequest {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl SdkRequest {
    /// With the headers the FRS SDK sets: `Content-Type` (JSON unless given) and `X-Project-Id`.
    fn new(method: Method, path: &str, content_type: Option<&str>, body: Vec<u8>) -> SdkRequest {
        let headers = vec![
            ("Content-Type".to_owned(), content_type.unwrap_or("application/json").to_owned()),
            ("X-Project-Id".to_owned(), PROJECT.to_owned()),
        ];
        SdkRequest { method, path: path.to_owned(), query: vec![], headers, body }
    }

    fn query(mut self, pairs: &[(&str, &str)]) -> SdkRequest {
        self.query = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn canonical_query(&self) -> String {
        let mut pairs = self.query.clone();
        pairs.sort();
        pairs.iter().map(|(k, v)| format!("{}={}", quote(k), quote(v))).collect::<Vec<_>>().join("&")
    }

    fn sign(self, key: &NewCredential) -> SdkRequest {
        self.sign_with(&key.access_key, &key.secret_key, SystemTime::now())
    }

    /// `Signer.sign`.
    fn sign_with(mut self, ak: &str, sk: &str, date: SystemTime) -> SdkRequest {
        let content_type = self.header("Content-Type").unwrap_or_default().to_owned();
        if !content_type.is_empty() && !content_type.starts_with("application/json") {
            self.headers.push(("X-Sdk-Content-Sha256".into(), "UNSIGNED-PAYLOAD".into()));
        }
        let date =
            jiff::Timestamp::try_from(date).expect("a representable date").strftime("%Y%m%dT%H%M%SZ").to_string();
        self.headers.push(("X-Sdk-Date".into(), date.clone()));
        self.headers.push(("Host".into(), "localhost:8080".into()));
        let mut signed: Vec<String> =
            self.headers.iter().filter(|(k, _)| !k.contains('_')).map(|(k, _)| k.to_lowercase()).collect();
        signed.sort();
        let mut uri = self.path.split('/').map(quote).collect::<Vec<_>>().join("/");
        if !uri.ends_with('/') {
            uri.push('/');
        }
        let canonical_headers: String =
            signed.iter().map(|name| format!("{name}:{}\n", self.header(name).expect("signed").trim())).collect();
        let payload_hash = if self.body.is_empty() {
            hex(&Sha256::digest(b""))
        } else if let Some(declared) = self.header("X-Sdk-Content-Sha256") {
            declared.to_owned()
        } else {
            hex(&Sha256::digest(&self.body))
        };
        let canonical = format!(
            "{}\n{uri}\n{}\n{canonical_headers}\n{}\n{payload_hash}",
            self.method,
            self.canonical_query(),
            signed.join(";")
        );
        let string_to_sign = format!("SDK-HMAC-SHA256\n{date}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(sk.as_bytes()).expect("any key length");
        mac.update(string_to_sign.as_bytes());
        let signature = hex(&mac.finalize().into_bytes());
        let authorization =
            format!("SDK-HMAC-SHA256 Access={ak}, SignedHeaders={}, Signature={signature}", signed.join(";"));
        self.headers.push(("Authorization".into(), authorization));
        self
    }

    /// The HTTP request the SDK sends: the query string is the canonical one.
    fn build(self) -> Request<Body> {
        let query = self.canonical_query();
        let uri = if query.is_empty() { self.path.clone() } else { format!("{}?{query}", self.path) };
        let mut builder = Request::builder().method(self.method).uri(uri);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        builder.body(Body::from(self.body)).expect("request")
    }
}

// ---------------------------------------------------------------------------------------------
// Accepted

#[tokio::test]
async fn signed_requests_of_every_shape_pass() {
    wait_until_ready().await;
    let f = Fixture::new();
    let key = f.key(PROJECT, Policy::Full).await;
    // JSON body.
    let request = SdkRequest::new(Method::POST, &sets(PROJECT), None, create_set_body("staff"));
    let reply = f.send(request.sign(&key).build()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // Multipart body, signed with UNSIGNED-PAYLOAD as the SDK does.
    let body = multipart_body(&[
        ("image_file", Some("a.jpg"), &sample(2)),
        ("external_image_id", None, b"img2"),
        ("single", None, b"true"),
    ]);
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let request = SdkRequest::new(Method::POST, &faces(PROJECT, "staff"), Some(&content_type), body).sign(&key);
    assert_eq!(request.header("X-Sdk-Content-Sha256"), Some("UNSIGNED-PAYLOAD"));
    let reply = f.send(request.build()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // GET with a query string (and an empty body).
    let request =
        SdkRequest::new(Method::GET, &faces(PROJECT, "staff"), None, vec![]).query(&[("offset", "0"), ("limit", "10")]);
    let reply = f.send(request.sign(&key).build()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["faces"].as_array().expect("faces").len(), 1, "{}", reply.body);
    // Bodiless GET and DELETE.
    assert_eq!(f.face_sets(&key).await, ["staff"]);
    let request = SdkRequest::new(Method::DELETE, &format!("{}/staff", sets(PROJECT)), None, vec![]);
    let reply = f.send(request.sign(&key).build()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(f.face_sets(&key).await.is_empty());
}

#[tokio::test]
async fn probes_and_documents_stay_open() {
    let f = Fixture::new();
    for path in ["/health", "/openapi.json"] {
        assert_eq!(f.send(get(path)).await.status, StatusCode::OK, "{path}");
    }
    let reply = f.send(get(&sets(PROJECT))).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "APIG.0301");
}

// ---------------------------------------------------------------------------------------------
// Refused, without effect

#[tokio::test]
async fn bad_signatures_are_apig_0301_and_change_nothing() {
    wait_until_ready().await;
    let f = Fixture::new();
    let key = f.key(PROJECT, Policy::Full).await;
    let create = |name: &str| SdkRequest::new(Method::POST, &sets(PROJECT), None, create_set_body(name));
    for set in ["keep", "keep2"] {
        assert_eq!(f.send(create(set).sign(&key).build()).await.status, StatusCode::OK);
    }
    let add = json!({"image_base64": b64(&sample(2)), "external_image_id": "a", "single": true});
    let add = SdkRequest::new(Method::POST, &faces(PROJECT, "keep"), None, serde_json::to_vec(&add).expect("json"));
    assert_eq!(f.send(add.sign(&key).build()).await.status, StatusCode::OK);

    let disabled = f.key(PROJECT, Policy::Full).await;
    f.credentials.set_enabled(&disabled.access_key, false).await.expect("disable");
    let sixteen_minutes = Duration::from_secs(16 * 60);
    let mut refused: Vec<(&str, Request<Body>)> = vec![
        ("no credentials", create("new").build()),
        ("wrong secret", create("new").sign_with(&key.access_key, &"x".repeat(40), SystemTime::now()).build()),
        ("unknown key", create("new").sign_with("AAAAAAAAAAAAAAAAAAAA", &key.secret_key, SystemTime::now()).build()),
        ("disabled key", create("new").sign(&disabled).build()),
        (
            "16 minutes early",
            create("new").sign_with(&key.access_key, &key.secret_key, SystemTime::now() - sixteen_minutes).build(),
        ),
        (
            "16 minutes late",
            create("new").sign_with(&key.access_key, &key.secret_key, SystemTime::now() + sixteen_minutes).build(),
        ),
    ];
    let mut tampered_body = create("new").sign(&key);
    tampered_body.body = create_set_body("evil");
    refused.push(("tampered body", tampered_body.build()));
    let mut tampered_path =
        SdkRequest::new(Method::DELETE, &format!("{}/keep", sets(PROJECT)), None, vec![]).sign(&key);
    tampered_path.path = format!("{}/keep2", sets(PROJECT));
    refused.push(("tampered path", tampered_path.build()));
    let mut tampered_query = SdkRequest::new(Method::DELETE, &faces(PROJECT, "keep"), None, vec![])
        .query(&[("external_image_id", "b")])
        .sign(&key);
    tampered_query.query = vec![("external_image_id".into(), "a".into())];
    refused.push(("tampered query", tampered_query.build()));
    let mut malformed = create("new").sign(&key).build();
    malformed.headers_mut().insert(header::AUTHORIZATION, "SDK-HMAC-SHA256 Access=AK".parse().expect("header"));
    refused.push(("malformed Authorization", malformed));
    let mut unsigned_date = create("new").sign(&key).build();
    unsigned_date.headers_mut().insert("x-sdk-date", "20200101T000000Z".parse().expect("header"));
    refused.push(("date changed after signing", unsigned_date));

    for (case, request) in refused {
        let reply = f.send(request).await;
        let message = assert_error(&reply, StatusCode::UNAUTHORIZED, "APIG.0301");
        assert_eq!(message, "Incorrect IAM authentication information.", "{case}: vague on the wire");
    }
    assert_eq!(f.face_sets(&key).await, ["keep", "keep2"], "nothing created or deleted");
    let show = SdkRequest::new(Method::GET, &faces(PROJECT, "keep"), None, vec![]).query(&[("offset", "0")]);
    let reply = f.send(show.sign(&key).build()).await;
    assert_eq!(reply.body["faces"].as_array().map(Vec::len), Some(1), "the face is still there: {}", reply.body);
}

#[tokio::test]
async fn tokens_are_issued_for_signatures_and_refused_once_expired_tampered_or_revoked() {
    let f = Fixture::new();
    let key = f.key(PROJECT, Policy::Full).await;
    let issue = |key: &NewCredential| SdkRequest::new(Method::POST, "/v3/auth/tokens", None, vec![]).sign(key).build();
    let reply = f.send(issue(&key)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let token = reply.headers.get("x-subject-token").and_then(|v| v.to_str().ok()).expect("X-Subject-Token").to_owned();
    let expires_at: jiff::Timestamp =
        reply.body["token"]["expires_at"].as_str().expect("expires_at").parse().expect("RFC 3339");
    let ttl = expires_at.as_second() - jiff::Timestamp::now().as_second();
    assert!((3595..=3600).contains(&ttl), "{ttl}");
    assert_eq!(
        reply.body,
        json!({"token": {"expires_at": reply.body["token"]["expires_at"], "project": {"id": PROJECT}}})
    );

    let with_token = |token: &str, name: &str| {
        let mut request = json_post(&sets(PROJECT), &json!({"face_set_name": name}));
        request.headers_mut().insert("x-auth-token", token.parse().expect("header"));
        request
    };
    assert_eq!(f.send(with_token(&token, "by-token")).await.status, StatusCode::OK);
    let mut refresh = raw(Method::POST, "/v3/auth/tokens", None, Body::empty());
    refresh.headers_mut().insert("x-auth-token", token.parse().expect("header"));
    assert_error(&f.send(refresh).await, StatusCode::UNAUTHORIZED, "APIG.0301");

    let (signed, mac) = token.rsplit_once('.').expect("frs1.payload.mac");
    let flipped = if mac.starts_with('A') { mac.replacen('A', "B", 1) } else { format!("A{}", &mac[1..]) };
    for bad in [format!("{signed}.{flipped}"), format!("{signed}A.{mac}"), "frs1.e30.AAAA".to_owned()] {
        let reply = f.send(with_token(&bad, "tampered")).await;
        assert_eq!(assert_error(&reply, StatusCode::FORBIDDEN, "FRS.0002"), "The authentication token is abnormal.");
    }
    f.skew.store(3601, Ordering::Relaxed);
    assert_error(&f.send(with_token(&token, "expired")).await, StatusCode::FORBIDDEN, "FRS.0002");
    f.skew.store(0, Ordering::Relaxed);

    f.credentials.set_enabled(&key.access_key, false).await.expect("disable");
    assert_error(&f.send(with_token(&token, "disabled")).await, StatusCode::FORBIDDEN, "FRS.0002");
    f.credentials.set_enabled(&key.access_key, true).await.expect("enable");
    f.credentials.delete(&key.access_key).await.expect("delete");
    assert_error(&f.send(with_token(&token, "deleted")).await, StatusCode::FORBIDDEN, "FRS.0002");
    let other = f.key(PROJECT, Policy::Full).await;
    assert_eq!(f.face_sets(&other).await, ["by-token"], "no refused token created anything");
}

#[tokio::test]
async fn the_service_layer_still_authorizes_project_and_policy() {
    let f = Fixture::new();
    let full = f.key(PROJECT, Policy::Full).await;
    let elsewhere = SdkRequest::new(Method::POST, &sets("otherproj"), None, create_set_body("x")).sign(&full);
    assert_error(&f.send(elsewhere.build()).await, StatusCode::FORBIDDEN, "FRS.0028");
    let create = SdkRequest::new(Method::POST, &sets(PROJECT), None, create_set_body("staff"));
    assert_eq!(f.send(create.sign(&full).build()).await.status, StatusCode::OK);

    let read_only = f.key(PROJECT, Policy::ReadOnly).await;
    let add = serde_json::to_vec(&json!({"image_base64": b64(b"not even an image")})).expect("json");
    let add = SdkRequest::new(Method::POST, &faces(PROJECT, "staff"), None, add).sign(&read_only);
    let message = assert_error(&f.send(add.build()).await, StatusCode::FORBIDDEN, "APIG.0302");
    assert!(message.contains("addFaces"), "{message}");
    assert_eq!(f.face_sets(&read_only).await, ["staff"], "reading is allowed");
}

#[tokio::test]
async fn the_audit_log_records_writes_and_tokens_with_their_outcome() {
    let f = Fixture::new();
    let key = f.key(PROJECT, Policy::Full).await;
    let create = SdkRequest::new(Method::POST, &sets(PROJECT), None, create_set_body("staff"));
    let created = f.send(create.clone().sign(&key).build()).await;
    let refused = f.send(create.sign_with(&key.access_key, &"x".repeat(40), SystemTime::now()).build()).await;
    let listed = f.send(SdkRequest::new(Method::GET, &sets(PROJECT), None, vec![]).sign(&key).build()).await;
    assert_eq!(listed.status, StatusCode::OK);
    let token = f.send(SdkRequest::new(Method::POST, "/v3/auth/tokens", None, vec![]).sign(&key).build()).await;
    let delete = SdkRequest::new(Method::DELETE, &format!("{}/nosuch", sets(PROJECT)), None, vec![]);
    let failed = f.send(delete.sign(&key).build()).await;
    assert_error(&failed, StatusCode::BAD_REQUEST, "FRS.0302");

    let request_id = |reply: &Reply| reply.headers["x-request-id"].to_str().expect("ASCII").to_owned();
    let records = f.audit().await;
    let summary: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.access_key.as_str(),
                r.project_id.as_str(),
                r.operation.as_str(),
                r.target.as_deref(),
                r.status,
                r.error_code.as_deref(),
            )
        })
        .collect();
    let ak = key.access_key.as_str();
    assert_eq!(
        summary,
        [
            (ak, PROJECT, "createFaceSet", None, 200, None),
            (ak, PROJECT, "createFaceSet", None, 401, Some("APIG.0301")),
            (ak, PROJECT, "createToken", None, 201, None),
            (ak, PROJECT, "deleteFaceSet", Some("nosuch"), 400, Some("FRS.0302")),
        ],
        "the list is not audited"
    );
    let ids: Vec<&str> = records.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(ids, [request_id(&created), request_id(&refused), request_id(&token), request_id(&failed)]);
    let now_ms = jiff::Timestamp::now().as_millisecond();
    assert!(records.iter().all(|r| (now_ms - 60_000..=now_ms).contains(&r.time_ms)));
}
