//! Durability of the face library across crashes, end to end: the real `frs serve` process, several
//! concurrent clients adding faces over HTTP, SIGKILL mid-stream, a restart on the same data
//! directory, and a check that every acknowledged face is present and searchable and nothing else
//! is: a face of an unacknowledged add is either there with every face of its image or absent.
//! Two crash rounds (the second on the restarted server), then one more add and search.
//!
//! Uses the real models in `assets/models` and the real photos in `assets/images`; fails (never
//! skips) without them.
//!
//! The HTTP client is a deliberately small one: one request per connection (`Connection: close`),
//! never retried, and a request counts as acknowledged only when its whole 200 response was read.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Value, json};

use common::{Server, repo_root};

mod common;

const PROJECT: &str = "durability";
const SET: &str = "s";
/// Concurrent clients per round.
const CLIENTS: usize = 5;
/// Crash-and-restart rounds.
const ROUNDS: usize = 2;
/// `assets/images/sample1.jpg` … `sample6.jpg`.
const IMAGES: usize = 6;
/// Every third add of a client (its first included) adds every face of the image, the others only
/// the largest one.
const MULTI_EVERY: u64 = 3;
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a round may take to reach its acknowledged adds.
const STREAM_TIMEOUT: Duration = Duration::from_secs(60);
const TOP_N: usize = 1000;

#[test]
fn acknowledged_faces_survive_sigkill_and_nothing_else_does() {
    let started = Instant::now();
    let images = sample_images();
    let scratch = Scratch::new();
    let data_dir = scratch.path.join("data");
    let mut server = Server::start(scratch.new_log(), &data_dir, &[("FRS__AUTH__ENABLED", "false")]);

    let (status, body) = call(
        server.port,
        "POST",
        &format!("/v2/{PROJECT}/face-sets"),
        Some(&json!({
            "face_set_name": SET,
            "external_fields": {"client": {"type": "integer"}, "seq": {"type": "integer"}},
        })),
    );
    assert_eq!(status, 200, "create face set: {body}");
    assert_eq!(body["face_set_info"]["face_number"], 0, "a new face set is empty: {body}");

    // How many faces an add without `single` takes from each image.
    let faces_per_image: Vec<usize> = images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let (status, body) =
                call(server.port, "POST", &format!("/v2/{PROJECT}/face-detect"), Some(&json!({"image_base64": image})));
            assert_eq!(status, 200, "face-detect sample{}.jpg: {body}", i + 1);
            let n = body["faces"].as_array().map_or(0, Vec::len);
            assert!(n >= 2, "sample{}.jpg should show several faces, face-detect found {n}", i + 1);
            n
        })
        .collect();
    println!("faces per sample image: {faces_per_image:?}");

    let images = Arc::new(images);
    let mut records: Vec<Record> = Vec::new();
    for round in 0..ROUNDS {
        let target = 40 + (nanos() % 41) as usize;
        let round_started = Instant::now();
        let sent = stream_then_kill(&mut server, &images, round, target);
        let streamed = round_started.elapsed();
        check_round_outcomes(&sent, &faces_per_image);
        records.extend(sent);

        server = Server::start(scratch.new_log(), &data_dir, &[("FRS__AUTH__ENABLED", "false")]);
        let report = verify(server.port, &records, &faces_per_image);
        println!(
            "round {round}: killed after {target}+ acknowledged adds ({streamed:.1?} of streaming); {report}; \
             checked {:.1?} after the restart",
            round_started.elapsed() - streamed
        );
    }

    // The twice-restarted server still takes writes and answers searches.
    let before = face_number(server.port);
    let (status, body) = call(
        server.port,
        "POST",
        &format!("/v2/{PROJECT}/face-sets/{SET}/faces"),
        Some(
            &json!({"image_base64": images[0], "external_image_id": "final", "external_fields": {"client": 999, "seq": 0}}),
        ),
    );
    assert_eq!(status, 200, "add after the restarts: {body}");
    let added = body["faces"].as_array().expect("faces of the add").clone();
    assert_eq!(added.len(), faces_per_image[0], "an add without single takes every face: {body}");
    assert_eq!(face_number(server.port), before + added.len(), "face_number after one more add");
    let listed = list_faces(server.port);
    let listed_ids: HashSet<&str> = listed.iter().map(|f| str_of(&f["face_id"])).collect();
    let mut problems = Vec::new();
    for face in &added {
        check_search(server.port, str_of(&face["face_id"]), &listed_ids, &mut problems);
    }
    let (status, body) = call(
        server.port,
        "POST",
        &format!("/v2/{PROJECT}/face-sets/{SET}/search"),
        Some(&json!({"image_base64": images[0], "top_n": 5})),
    );
    assert_eq!(status, 200, "search by image after the restarts: {body}");
    let best = body["faces"][0]["similarity"].as_f64().unwrap_or(0.0);
    if best <= 0.99 {
        problems.push(format!("search by an enrolled image: best similarity {best}: {body}"));
    }
    report_problems("after the restarts", &problems);
    kill(&mut server);
    println!("durability test took {:.1?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// The clients

/// What became of one add request.
#[derive(Debug, Clone)]
enum Outcome {
    /// 200 read in full: the faces of the response.
    Acked(Vec<Value>),
    /// A full non-200 response (429 `FRS.0033` when the inference queue is full): nothing added.
    Rejected(u16, Value),
    /// No full response (connection refused, reset or cut): either every face was added or none.
    Unknown { error: String, after_kill: bool },
}

/// One add request: tag `c{client}-{seq}` as `external_image_id`, `{client, seq}` as custom fields.
#[derive(Debug, Clone)]
struct Record {
    client: usize,
    seq: u64,
    tag: String,
    image: usize,
    single: bool,
    outcome: Outcome,
}

struct Round {
    images: Arc<Vec<String>>,
    acked: AtomicUsize,
    /// Set just before the server is killed: a connection error after it is expected.
    killed: AtomicBool,
}

/// Runs `CLIENTS` clients against the server, SIGKILLs it once `target` adds were acknowledged
/// while they are still sending, and returns every request sent.
fn stream_then_kill(server: &mut Server, images: &Arc<Vec<String>>, round: usize, target: usize) -> Vec<Record> {
    let state =
        Arc::new(Round { images: Arc::clone(images), acked: AtomicUsize::new(0), killed: AtomicBool::new(false) });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let state = Arc::clone(&state);
            let port = server.port;
            thread::spawn(move || run_client(&state, round * CLIENTS + i, port))
        })
        .collect();
    let deadline = Instant::now() + STREAM_TIMEOUT;
    while state.acked.load(Ordering::SeqCst) < target {
        if clients.iter().all(|c| c.is_finished()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "round {round}: fewer than {target} adds acknowledged in {STREAM_TIMEOUT:?}"
        );
        thread::sleep(Duration::from_millis(2));
    }
    // A random phase, so the kill falls anywhere in the adds in flight: inference, commit or answer.
    thread::sleep(Duration::from_micros(nanos() % 40_000));
    state.killed.store(true, Ordering::SeqCst);
    kill(server);
    let mut records = Vec::new();
    for client in clients {
        records.extend(client.join().expect("a client thread panicked"));
    }
    let acked = state.acked.load(Ordering::SeqCst);
    assert!(acked >= target, "round {round}: the clients stopped after {acked} acknowledged adds: {records:#?}");
    records
}

/// Adds faces one request after another until the server is killed.
fn run_client(state: &Round, client: usize, port: u16) -> Vec<Record> {
    let mut records = Vec::new();
    for seq in 0.. {
        if state.killed.load(Ordering::SeqCst) {
            break;
        }
        let tag = format!("c{client}-{seq}");
        let image = (client + seq as usize) % IMAGES;
        let single = seq % MULTI_EVERY != 0;
        let body = json!({
            "image_base64": state.images[image],
            "external_image_id": tag,
            "external_fields": {"client": client, "seq": seq},
            "single": single,
        });
        let outcome = match http(port, "POST", &format!("/v2/{PROJECT}/face-sets/{SET}/faces"), Some(&body)) {
            Ok((200, body)) => {
                state.acked.fetch_add(1, Ordering::SeqCst);
                Outcome::Acked(body["faces"].as_array().cloned().unwrap_or_default())
            }
            Ok((status, body)) => Outcome::Rejected(status, body),
            Err(e) => Outcome::Unknown { error: e.to_string(), after_kill: state.killed.load(Ordering::SeqCst) },
        };
        let stop = matches!(outcome, Outcome::Unknown { .. });
        let overloaded = matches!(outcome, Outcome::Rejected(429, _));
        records.push(Record { client, seq, tag, image, single, outcome });
        if stop {
            break;
        }
        if overloaded {
            thread::sleep(Duration::from_millis(20));
        }
    }
    records
}

/// What the clients saw before the restart: well-formed acknowledgements, only 429 refusals, and
/// connection errors only because of the kill.
fn check_round_outcomes(records: &[Record], faces_per_image: &[usize]) {
    let mut problems = Vec::new();
    for r in records {
        match &r.outcome {
            Outcome::Acked(faces) => {
                let expected = if r.single { 1 } else { faces_per_image[r.image] };
                if faces.len() != expected {
                    problems.push(format!("{}: acknowledged with {} faces, expected {expected}", r.tag, faces.len()));
                }
                for face in faces {
                    if face["external_image_id"] != r.tag.as_str()
                        || face["external_fields"] != json!({"client": r.client, "seq": r.seq})
                        || !face["face_id"].is_string()
                    {
                        problems.push(format!("{}: acknowledged face {face}", r.tag));
                    }
                }
            }
            Outcome::Rejected(429, body) if body["error_code"] == "FRS.0033" => {}
            Outcome::Rejected(status, body) => problems.push(format!("{}: HTTP {status} {body}", r.tag)),
            Outcome::Unknown { error, after_kill: false } => {
                problems.push(format!("{}: connection failed before the kill: {error}", r.tag));
            }
            Outcome::Unknown { .. } => {}
        }
    }
    let acked: Vec<&str> = records
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Acked(faces) => Some(faces.iter().map(|f| str_of(&f["face_id"]))),
            _ => None,
        })
        .flatten()
        .collect();
    if acked.iter().collect::<HashSet<_>>().len() != acked.len() {
        problems.push("two acknowledged faces share a face_id".into());
    }
    report_problems("before the restart", &problems);
}

// ---------------------------------------------------------------------------------------------
// The check after a restart

/// Checks the restarted server against every request ever sent; returns a one-line summary.
fn verify(port: u16, records: &[Record], faces_per_image: &[usize]) -> String {
    let mut problems = Vec::new();
    let listed = list_faces(port);
    assert!(listed.len() < TOP_N, "the test must keep the set under top_n = {TOP_N} faces to search it whole");
    let face_number = face_number(port);
    if face_number != listed.len() {
        problems.push(format!("face_number is {face_number} but {} faces are listed", listed.len()));
    }

    let mut ids = HashSet::new();
    let mut by_tag: HashMap<&str, Vec<(usize, &Value)>> = HashMap::new();
    for (position, face) in listed.iter().enumerate() {
        if !ids.insert(str_of(&face["face_id"])) {
            problems.push(format!("face_id listed twice: {face}"));
        }
        by_tag.entry(str_of(&face["external_image_id"])).or_default().push((position, face));
    }
    let sent: HashMap<&str, &Record> = records.iter().map(|r| (r.tag.as_str(), r)).collect();
    for (tag, faces) in &by_tag {
        if !sent.contains_key(tag) {
            problems.push(format!("{} faces listed for {tag:?}, which was never sent", faces.len()));
        }
    }

    let (mut acked, mut rejected, mut unknown_present, mut unknown_absent) = (0, 0, 0, 0);
    for r in records {
        let faces = by_tag.get(r.tag.as_str()).map_or(&[][..], Vec::as_slice);
        let expected = if r.single { 1 } else { faces_per_image[r.image] };
        let fields = json!({"client": r.client, "seq": r.seq});
        for (_, face) in faces {
            if face["external_fields"] != fields {
                problems.push(format!("{}: listed with external_fields {}", r.tag, face["external_fields"]));
            }
        }
        match &r.outcome {
            Outcome::Acked(ack) => {
                acked += 1;
                let listed_ids: HashSet<&str> = faces.iter().map(|(_, f)| str_of(&f["face_id"])).collect();
                let acked_ids: HashSet<&str> = ack.iter().map(|f| str_of(&f["face_id"])).collect();
                if listed_ids != acked_ids || faces.len() != ack.len() {
                    problems.push(format!(
                        "{}: acknowledged faces {acked_ids:?}, listed {listed_ids:?} ({} faces)",
                        r.tag,
                        faces.len()
                    ));
                }
                for a in ack {
                    if let Some((_, f)) = faces.iter().find(|(_, f)| f["face_id"] == a["face_id"])
                        && f["bounding_box"] != a["bounding_box"]
                    {
                        problems.push(format!("{}: acknowledged {a}, listed {f}", r.tag));
                    }
                }
            }
            Outcome::Rejected(..) => {
                rejected += 1;
                if !faces.is_empty() {
                    problems.push(format!("{}: refused, yet {} of its faces are listed", r.tag, faces.len()));
                }
            }
            Outcome::Unknown { .. } if faces.is_empty() => unknown_absent += 1,
            Outcome::Unknown { .. } if faces.len() == expected => unknown_present += 1,
            Outcome::Unknown { error, .. } => problems.push(format!(
                "{}: unacknowledged ({error}) add of {} faces ({}) is partly there: {} faces listed",
                r.tag,
                expected,
                if r.single { "single" } else { "every face" },
                faces.len()
            )),
        }
    }

    // Listed in insertion order: a client sends its next add only after the previous one's answer.
    let mut by_client: HashMap<usize, Vec<&Record>> = HashMap::new();
    for r in records {
        by_client.entry(r.client).or_default().push(r);
    }
    for (client, mut mine) in by_client {
        mine.sort_by_key(|r| r.seq);
        let spans: Vec<(&str, usize, usize)> = mine
            .iter()
            .filter_map(|r| {
                let faces = by_tag.get(r.tag.as_str())?;
                let positions = faces.iter().map(|(p, _)| *p);
                Some((r.tag.as_str(), positions.clone().min()?, positions.max()?))
            })
            .collect();
        for pair in spans.windows(2) {
            if pair[0].2 > pair[1].1 {
                problems.push(format!("client {client}: {} is listed after {}", pair[0].0, pair[1].0));
            }
        }
    }

    for face in &listed {
        check_search(port, str_of(&face["face_id"]), &ids, &mut problems);
    }

    report_problems("after the restart", &problems);
    format!(
        "{} requests: {acked} acknowledged, {rejected} refused, {unknown_present} unacknowledged but present, \
         {unknown_absent} unacknowledged and absent; {} faces",
        records.len(),
        listed.len()
    )
}

/// Searching by a face's id finds it at the top (tied only with copies of the same face from other
/// adds of the same image) with similarity > 0.99, and the whole result is exactly the listed set.
fn check_search(port: u16, face_id: &str, listed: &HashSet<&str>, problems: &mut Vec<String>) {
    let (status, body) = call(
        port,
        "POST",
        &format!("/v2/{PROJECT}/face-sets/{SET}/search"),
        Some(&json!({"face_id": face_id, "top_n": TOP_N})),
    );
    if status != 200 {
        problems.push(format!("search by {face_id}: HTTP {status} {body}"));
        return;
    }
    let results: Vec<(&str, f64)> = body["faces"]
        .as_array()
        .map(|faces| faces.iter().map(|f| (str_of(&f["face_id"]), f["similarity"].as_f64().unwrap_or(-1.0))).collect())
        .unwrap_or_default();
    let Some(at) = results.iter().position(|(id, _)| *id == face_id) else {
        problems.push(format!("search by {face_id}: not among its own {} results", results.len()));
        return;
    };
    let own = results[at].1;
    if own <= 0.99 || results[..at].iter().any(|(_, s)| *s > own + 1e-6) {
        problems.push(format!("search by {face_id}: found at rank {at} with similarity {own}: {:?}", &results[..=at]));
    }
    if results.windows(2).any(|w| w[0].1 < w[1].1) {
        problems.push(format!("search by {face_id}: results not by descending similarity"));
    }
    let found: HashSet<&str> = results.iter().map(|(id, _)| *id).collect();
    if found.len() != results.len() || &found != listed {
        let unknown: Vec<_> = found.difference(listed).collect();
        let missing: Vec<_> = listed.difference(&found).collect();
        problems.push(format!(
            "search by {face_id}: {} results for {} listed faces; not listed: {unknown:?}; not found: {missing:?}",
            results.len(),
            listed.len()
        ));
    }
}

fn report_problems(when: &str, problems: &[String]) {
    if problems.is_empty() {
        return;
    }
    let mut message = format!("{} problems {when}:\n", problems.len());
    for p in problems.iter().take(30) {
        let _ = writeln!(message, "  {p}");
    }
    panic!("{message}");
}

fn face_number(port: u16) -> usize {
    let (status, body) = call(port, "GET", &format!("/v2/{PROJECT}/face-sets/{SET}"), None);
    assert_eq!(status, 200, "get face set: {body}");
    body["face_set_info"]["face_number"].as_u64().expect("face_number") as usize
}

/// Every face of the set, in insertion order.
fn list_faces(port: u16) -> Vec<Value> {
    let mut faces = Vec::new();
    loop {
        let path = format!("/v2/{PROJECT}/face-sets/{SET}/faces?offset={}&limit={TOP_N}", faces.len());
        let (status, body) = call(port, "GET", &path, None);
        assert_eq!(status, 200, "list faces: {body}");
        let page = body["faces"].as_array().expect("faces of the listing");
        faces.extend(page.iter().cloned());
        if page.len() < TOP_N {
            return faces;
        }
    }
}

fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// The server process

/// The sample photos, base64-encoded; fails without them or the models.
fn sample_images() -> Vec<String> {
    let models = repo_root().join("assets/models");
    for name in ["face_detection_yunet_2023mar.onnx", "face_recognition_sface_2021dec.onnx", "libonnxruntime.so"] {
        let path = models.join(name);
        assert!(path.is_file(), "{} is missing: run scripts/setup.sh", path.display());
    }
    (1..=IMAGES)
        .map(|i| {
            let path = repo_root().join(format!("assets/images/sample{i}.jpg"));
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{} is missing ({e}): run scripts/setup.sh", path.display()));
            base64::engine::general_purpose::STANDARD.encode(bytes)
        })
        .collect()
}

/// The test's temporary directory: the data directory and the servers' logs. Removed when the test
/// passes; kept, with every server log printed, when it fails.
struct Scratch {
    path: PathBuf,
    logs: std::sync::Mutex<Vec<PathBuf>>,
}

impl Scratch {
    fn new() -> Scratch {
        let path = std::env::temp_dir().join(format!("frs-durability-{}-{}", std::process::id(), nanos()));
        std::fs::create_dir_all(&path).expect("creating the temporary directory");
        Scratch { path, logs: std::sync::Mutex::new(Vec::new()) }
    }

    fn new_log(&self) -> PathBuf {
        let mut logs = self.logs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let log = self.path.join(format!("server-{}.log", logs.len()));
        logs.push(log.clone());
        log
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if thread::panicking() {
            let logs = self.logs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for log in logs.iter() {
                eprintln!("----- {} -----\n{}", log.display(), std::fs::read_to_string(log).unwrap_or_default());
            }
            eprintln!("kept {} for inspection", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// SIGKILL (on Unix), then reap.
fn kill(server: &mut Server) {
    server.child.kill().expect("killing frs serve");
    server.child.wait().expect("reaping frs serve");
}

fn nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos().into())
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// A request that must get a full response.
fn call(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    http(port, method, path, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// One HTTP/1.1 exchange on a fresh connection. `Ok` only when the whole response was read.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> io::Result<(u16, Value)> {
    let cut = |what: &str| io::Error::new(io::ErrorKind::UnexpectedEof, format!("{what} ({} bytes read)", raw.len()));
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| cut("no complete response head"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("bad status line in {head:?}")))?;
    let (mut length, mut chunked) = (None, false);
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            } else if name.trim().eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.trim().eq_ignore_ascii_case("chunked");
            }
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest).ok_or_else(|| cut("incomplete chunked body"))?
    } else if let Some(length) = length {
        rest.get(..length).ok_or_else(|| cut("body shorter than Content-Length"))?.to_vec()
    } else {
        rest.to_vec()
    };
    if body.is_empty() {
        return Ok((status, Value::Null));
    }
    let value = serde_json::from_slice(&body).map_err(|e| cut(&format!("body is not JSON: {e}")))?;
    Ok((status, value))
}

/// The body of a complete chunked encoding, or `None` if it was cut short.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}
