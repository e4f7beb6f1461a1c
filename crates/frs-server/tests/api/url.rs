//! `image_url` inputs against a local HTTP server on 127.0.0.1 that serves a sample photo, a
//! redirect, oversized bodies (declared and undeclared), a slow body, a 404 and a non-image.
//! Refusals (`FRS.0021`) must happen before any connection, so the server counts its requests.
//! No test sends traffic anywhere but 127.0.0.1: 169.254.169.254 is only ever refused.

use std::sync::Mutex;

use frs_service::FetchPolicy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// Bodies larger than the default `max_bytes` (8 MiB).
const OVERSIZED: usize = MAX_IMAGE_BYTES + 1024 * 1024;
/// How long `/faces/slow` pauses mid-body.
const SLOW_PAUSE: Duration = Duration::from_secs(3);

/// A local image server; `hits` lists the paths requested so far.
struct ImageServer {
    port: u16,
    hits: Arc<Mutex<Vec<String>>>,
}

impl ImageServer {
    async fn start() -> ImageServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the image server");
        let port = listener.local_addr().expect("local address").port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let photo: Arc<[u8]> = sample(1).into();
        let log = Arc::clone(&hits);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_one(stream, Arc::clone(&photo), Arc::clone(&log)));
            }
        });
        ImageServer { port, hits }
    }

    /// `http://127.0.0.1:{port}{path}`.
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().expect("hits").clone()
    }
}

/// Answers one request and closes the connection.
async fn serve_one(mut stream: TcpStream, photo: Arc<[u8]>, hits: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
    hits.lock().expect("hits").push(path.clone());
    let ok = |length: Option<usize>, content_type: &str| {
        let length = length.map(|n| format!("Content-Length: {n}\r\n")).unwrap_or_default();
        format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{length}Connection: close\r\n\r\n")
    };
    // Write errors are expected where the client gives up (too large, too slow).
    let _ = match path.as_str() {
        "/faces/sample1.jpg" => {
            let mut response = ok(Some(photo.len()), "image/jpeg").into_bytes();
            response.extend_from_slice(&photo);
            stream.write_all(&response).await
        }
        "/faces/redirect" => {
            let to = "/faces/sample1.jpg";
            let head =
                format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            stream.write_all(head.as_bytes()).await
        }
        "/faces/big-declared" | "/faces/big-undeclared" => {
            let declared = (path == "/faces/big-declared").then_some(OVERSIZED);
            let mut response = ok(declared, "image/jpeg").into_bytes();
            response.resize(response.len() + OVERSIZED, 0);
            stream.write_all(&response).await
        }
        "/faces/slow" => {
            let half = photo.len() / 2;
            let mut response = ok(Some(photo.len()), "image/jpeg").into_bytes();
            response.extend_from_slice(&photo[..half]);
            if stream.write_all(&response).await.is_ok() {
                tokio::time::sleep(SLOW_PAUSE).await;
                stream.write_all(&photo[half..]).await
            } else {
                Ok(())
            }
        }
        "/faces/not-an-image.jpg" => {
            let body = b"hello, this is text";
            let mut response = ok(Some(body.len()), "text/plain").into_bytes();
            response.extend_from_slice(body);
            stream.write_all(&response).await
        }
        _ => stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await,
    };
    let _ = stream.shutdown().await;
}

/// A fresh state fetching under `policy`.
fn state_fetching(policy: FetchPolicy) -> AppState {
    state_with_fetch(&temp_data_dir(), LibraryLimits::default(), policy)
}

/// The policy that allows `prefixes`, private addresses included.
fn allowing(prefixes: &[String]) -> FetchPolicy {
    FetchPolicy { allowed_url_prefixes: prefixes.to_vec(), allow_private_addresses: true, ..FetchPolicy::default() }
}

fn detect_url(url: &str) -> Request<Body> {
    json_post(DETECT, &json!({ "image_url": url }))
}

async fn face_count(state: &AppState, set: &str) -> i64 {
    let reply = send_to(state.clone(), get(&format!("/v2/p/face-sets/{set}"))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["face_set_info"]["face_number"].as_i64().expect("face_number")
}

#[tokio::test]
async fn the_default_policy_refuses_every_url_and_tells_the_operator_what_to_configure() {
    let server = ImageServer::start().await;
    let reply = send(detect_url(&server.url("/faces/sample1.jpg"))).await;
    let message = assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0021");
    assert!(message.contains("image_url") && message.contains("[fetch] allowed_url_prefixes"), "{message}");
    let body = json!({"image1_url": server.url("/faces/sample1.jpg"), "image2_url": server.url("/faces/sample1.jpg")});
    let message = assert_error(&send(json_post(COMPARE, &body)).await, StatusCode::BAD_REQUEST, "FRS.0021");
    assert!(message.contains("image1_url"), "{message}");
    let disabled = state_fetching(FetchPolicy { enabled: false, ..allowing(&[server.url("/faces/")]) });
    let reply = send_to(disabled, detect_url(&server.url("/faces/sample1.jpg"))).await;
    let message = assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0021");
    assert!(message.contains("enabled = false"), "{message}");
    assert!(server.hits().is_empty(), "nothing is fetched: {:?}", server.hits());
}

#[tokio::test]
async fn loopback_is_refused_unless_private_addresses_are_allowed_in_every_spelling() {
    let server = ImageServer::start().await;
    let port = server.port;
    let prefixes = [
        server.url("/faces/"),
        format!("http://localhost:{port}/faces/"),
        format!("http://[::ffff:127.0.0.1]:{port}/faces/"),
    ];
    let state = state_fetching(FetchPolicy { allow_private_addresses: false, ..allowing(&prefixes) });
    let spellings = [
        format!("http://127.0.0.1:{port}/faces/sample1.jpg"),
        format!("http://127.1:{port}/faces/sample1.jpg"),
        format!("http://0x7f000001:{port}/faces/sample1.jpg"),
        format!("http://2130706433:{port}/faces/sample1.jpg"),
        format!("http://[::ffff:127.0.0.1]:{port}/faces/sample1.jpg"),
        format!("http://[::ffff:7f00:1]:{port}/faces/sample1.jpg"),
    ];
    for url in &spellings {
        let message = assert_error(&send_to(state.clone(), detect_url(url)).await, StatusCode::BAD_REQUEST, "FRS.0021");
        assert!(message.contains("loopback"), "{url}: {message}");
    }
    // A name that resolves to loopback is refused by the resolver, before any connection.
    let reply = send_to(state.clone(), detect_url(&format!("http://localhost:{port}/faces/sample1.jpg"))).await;
    let message = assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0021");
    assert!(message.contains("localhost") && message.contains("non-public"), "{message}");
    assert!(!message.contains("127.0.0.1"), "resolved addresses are not echoed: {message}");
    // User information cannot smuggle an allowed host in front of another one.
    let smuggled = format!("http://127.0.0.1:{port}@localhost:{port}/faces/sample1.jpg");
    let message =
        assert_error(&send_to(state.clone(), detect_url(&smuggled)).await, StatusCode::BAD_REQUEST, "FRS.0021");
    assert!(message.contains("user information"), "{message}");
    assert!(server.hits().is_empty(), "nothing is fetched: {:?}", server.hits());
}

#[tokio::test]
async fn cloud_metadata_is_refused_even_when_listed_in_the_allow_list() {
    let prefixes = ["http://169.254.169.254/".to_owned(), "http://[fd00:ec2::254]/".to_owned()];
    let state = state_fetching(FetchPolicy { allow_private_addresses: false, ..allowing(&prefixes) });
    for url in [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://0xa9fea9fe/latest/meta-data/",
        "http://2852039166/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
    ] {
        let message = assert_error(&send_to(state.clone(), detect_url(url)).await, StatusCode::BAD_REQUEST, "FRS.0021");
        assert!(message.contains("does not fetch from"), "{url}: {message}");
    }
    // A mapped IPv6 spelling is not under the listed prefix at all (and would be link-local).
    let reply = send_to(state, detect_url("http://[::ffff:169.254.169.254]/latest/meta-data/")).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0021");
}

#[tokio::test]
async fn urls_outside_the_allowed_prefixes_are_refused() {
    let server = ImageServer::start().await;
    let port = server.port;
    let state = state_fetching(allowing(&[server.url("/faces/")]));
    for url in [
        server.url("/other/sample1.jpg"),
        server.url("/faces/../other/sample1.jpg"),
        server.url("/facesx/sample1.jpg"),
        server.url("/faces/..%2fother/sample1.jpg"),
        format!("http://127.0.0.1:{}/faces/sample1.jpg", port.wrapping_add(1)),
        format!("https://127.0.0.1:{port}/faces/sample1.jpg"),
        format!("ftp://127.0.0.1:{port}/faces/sample1.jpg"),
        "not a url".to_owned(),
    ] {
        let message =
            assert_error(&send_to(state.clone(), detect_url(&url)).await, StatusCode::BAD_REQUEST, "FRS.0021");
        assert!(message.contains("image_url"), "{url}: {message}");
    }
    assert!(server.hits().is_empty(), "nothing is fetched: {:?}", server.hits());
}

#[tokio::test]
async fn allowed_urls_work_for_detect_compare_add_and_search() {
    wait_until_ready().await;
    let server = ImageServer::start().await;
    let state = state_fetching(allowing(&[server.url("/faces/")]));
    let photo = server.url("/faces/sample1.jpg");

    let by_url = send_to(state.clone(), detect_url(&photo)).await;
    assert_eq!(by_url.status, StatusCode::OK, "{}", by_url.body);
    let by_base64 = send_to(state.clone(), detect_json(b64(&sample(1)), None)).await;
    assert_eq!(by_url.body, by_base64.body, "the same image by URL and by base64");

    let compare = json!({"image1_url": photo, "image2_url": photo});
    let reply = send_to(state.clone(), json_post(COMPARE, &compare)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body["similarity"].as_f64().expect("similarity") > 0.9, "{}", reply.body);

    let reply = send_to(state.clone(), json_post("/v2/p/face-sets", &json!({"face_set_name": "byurl"}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let added =
        send_to(state.clone(), json_post("/v2/p/face-sets/byurl/faces", &json!({"image_url": photo, "single": true})))
            .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    let face_id = added.body["faces"][0]["face_id"].as_str().expect("face_id").to_owned();
    assert_eq!(face_count(&state, "byurl").await, 1);

    let found = send_to(state.clone(), json_post("/v2/p/face-sets/byurl/search", &json!({"image_url": photo}))).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["faces"][0]["face_id"], face_id.as_str());
    let multi =
        send_to(state.clone(), json_post("/v2/p/face-sets/byurl/multi-face-search", &json!({"image_url": photo})))
            .await;
    assert_eq!(multi.status, StatusCode::OK, "{}", multi.body);
    assert_eq!(multi.body["results"][0]["faces"][0]["face_id"], face_id.as_str());

    // A body that is not an image gets the usual image code.
    let reply = send_to(state, detect_url(&server.url("/faces/not-an-image.jpg"))).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0016");
}

#[tokio::test]
async fn redirects_oversized_slow_and_failing_fetches_are_frs_0022_and_add_nothing() {
    let server = ImageServer::start().await;
    let free_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("address").port()
    };
    let policy =
        FetchPolicy { timeout_secs: 1, ..allowing(&[server.url("/faces/"), format!("http://127.0.0.1:{free_port}/")]) };
    let state = state_fetching(policy);
    let reply = send_to(state.clone(), json_post("/v2/p/face-sets", &json!({"face_set_name": "refused"}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let add = |url: String| json_post("/v2/p/face-sets/refused/faces", &json!({ "image_url": url }));

    let cases = [
        ("/faces/redirect", "redirect"),
        ("/faces/big-declared", "larger than 8388608 bytes"),
        ("/faces/big-undeclared", "larger than 8388608 bytes"),
        ("/faces/missing.jpg", "HTTP 404"),
    ];
    for (path, reason) in cases {
        for request in [detect_url(&server.url(path)), add(server.url(path))] {
            let message = assert_error(&send_to(state.clone(), request).await, StatusCode::BAD_REQUEST, "FRS.0022");
            assert!(message.contains("image_url") && message.contains(reason), "{path}: {message}");
        }
    }
    assert!(!server.hits().iter().any(|hit| hit == "/faces/sample1.jpg"), "the redirect is not followed");

    let started = Instant::now();
    let message = assert_error(
        &send_to(state.clone(), add(server.url("/faces/slow"))).await,
        StatusCode::BAD_REQUEST,
        "FRS.0022",
    );
    assert!(message.contains("within 1 s"), "{message}");
    assert!(started.elapsed() < SLOW_PAUSE, "the deadline covers the body: {:?}", started.elapsed());

    let closed = format!("http://127.0.0.1:{free_port}/a.jpg");
    let message = assert_error(&send_to(state.clone(), add(closed)).await, StatusCode::BAD_REQUEST, "FRS.0022");
    assert!(message.contains("connect"), "{message}");

    // Refused before any fetch (FRS.0021) adds nothing either.
    let metadata = add("http://169.254.169.254/latest/meta-data/".into());
    assert_error(&send_to(state.clone(), metadata).await, StatusCode::BAD_REQUEST, "FRS.0021");
    assert_eq!(face_count(&state, "refused").await, 0, "no refused add changed the set");
}
