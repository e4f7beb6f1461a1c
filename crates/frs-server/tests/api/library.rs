//! Face sets, faces and search through the HTTP API, with the real models and sample photos.
//! Each test works in its own project, so tests sharing the binary's library never see each other's sets.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A project id no other test uses.
fn project() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("proj{:04}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn sets_path(project: &str) -> String {
    format!("/v2/{project}/face-sets")
}

fn set_path(project: &str, set: &str) -> String {
    format!("/v2/{project}/face-sets/{set}")
}

fn faces_path(project: &str, set: &str) -> String {
    format!("/v2/{project}/face-sets/{set}/faces")
}

fn search_path(project: &str, set: &str) -> String {
    format!("/v2/{project}/face-sets/{set}/search")
}

fn delete(path: &str) -> Request<Body> {
    // The official SDK sends a JSON Content-Type on bodiless requests too.
    raw(Method::DELETE, path, Some("application/json"), Body::empty())
}

#[track_caller]
fn assert_ok(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

/// The schema most tests use: one field of each kind FRS filters and sorts on.
fn schema() -> Value {
    json!({
        "dept": {"type": "integer"},
        "timestamp": {"type": "long"},
        "weight": {"type": "double"},
        "name": {"type": "string"},
        "male": {"type": "boolean"},
    })
}

async fn create_set(project: &str, name: &str, schema: Value) {
    let reply = send(json_post(&sets_path(project), &json!({"face_set_name": name, "external_fields": schema}))).await;
    assert_ok(&reply);
}

/// Adds an image's faces; returns the response's faces.
async fn add(project: &str, set: &str, image: &[u8], extra: Value) -> Vec<Value> {
    let mut body = json!({"image_base64": b64(image)});
    body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
    let reply = send(json_post(&faces_path(project, set), &body)).await;
    assert_ok(&reply);
    reply.body["faces"].as_array().expect("faces").clone()
}

async fn face_number(project: &str, set: &str) -> i64 {
    let reply = send(get(&set_path(project, set))).await;
    assert_ok(&reply);
    reply.body["face_set_info"]["face_number"].as_i64().expect("face_number")
}

async fn search(project: &str, set: &str, body: Value) -> Reply {
    send(json_post(&search_path(project, set), &body)).await
}

fn ids(faces: &Value) -> Vec<String> {
    faces.as_array().expect("faces").iter().map(|f| f["face_id"].as_str().expect("face_id").to_owned()).collect()
}

/// The largest face of a sample, cropped with a margin and re-encoded: a new photo of that person.
async fn crop_of_largest(n: u32) -> Vec<u8> {
    let bytes = sample(n);
    let image = frs_vision::decode_image(&bytes, &ImageLimits::default()).expect("decodes");
    let faces = detected_boxes(&bytes).await;
    let face = &faces[0];
    let (x, y, w, h) = (face.x, face.y, face.w, face.h);
    let (mx, my) = (w / 2, h / 2);
    let x0 = (x - mx).max(0) as u32;
    let y0 = (y - my).max(0) as u32;
    let x1 = ((x + w + mx) as u32).min(image.width());
    let y1 = ((y + h + my) as u32).min(image.height());
    let crop = image::imageops::crop_imm(&image, x0, y0, x1 - x0, y1 - y0).to_image();
    encode(&crop, ImageFormat::Png)
}

/// Face boxes of an image from the detect route (largest first).
async fn detected_boxes(bytes: &[u8]) -> Vec<Box2> {
    let reply = send(detect_json(b64(bytes), None)).await;
    assert_ok(&reply);
    reply.body["faces"].as_array().expect("faces").iter().map(|f| box_of(&f["bounding_box"])).collect()
}

// ---------------------------------------------------------------------------------------------
// Face sets

#[tokio::test]
async fn face_set_lifecycle() {
    let p = project();
    let reply = send(json_post(
        &sets_path(&p),
        &json!({"face_set_name": "employees", "face_set_capacity": "30000", "external_fields": schema()}),
    ))
    .await;
    assert_ok(&reply);
    let info = &reply.body["face_set_info"];
    assert_eq!(info["face_set_name"], "employees");
    assert_eq!(info["face_set_capacity"], 30000);
    assert_eq!(info["face_number"], 0);
    assert_eq!(info["external_fields"], schema());
    let id = info["face_set_id"].as_str().expect("face_set_id");
    assert!(id.len() == 8 && id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    let date = info["create_date"].as_str().expect("create_date");
    assert_eq!(date.len(), 19, "YYYY-MM-DD hh:mm:ss: {date}");

    let again = send(json_post(&sets_path(&p), &json!({"face_set_name": "employees"}))).await;
    assert_error(&again, StatusCode::BAD_REQUEST, "FRS.0301");

    let default = send(json_post(&sets_path(&p), &json!({"face_set_name": "visitors"}))).await;
    assert_ok(&default);
    assert_eq!(default.body["face_set_info"]["face_set_capacity"], 100_000);
    assert_eq!(default.body["face_set_info"]["external_fields"], json!({}));

    let shown = send(get(&set_path(&p, "employees"))).await;
    assert_ok(&shown);
    assert_eq!(shown.body["face_set_info"], *info);

    let listed = send(get(&sets_path(&p))).await;
    assert_ok(&listed);
    let names: Vec<&str> = listed.body["face_sets_info"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["face_set_name"].as_str())
        .collect();
    assert_eq!(names, ["employees", "visitors"]);

    let deleted = send(delete(&set_path(&p, "employees"))).await;
    assert_ok(&deleted);
    assert_eq!(deleted.body, json!({"face_set_name": "employees"}));
    assert_error(&send(get(&set_path(&p, "employees"))).await, StatusCode::BAD_REQUEST, "FRS.0302");
    assert_error(&send(delete(&set_path(&p, "employees"))).await, StatusCode::BAD_REQUEST, "FRS.0302");
    assert_eq!(send(get(&sets_path(&p))).await.body["face_sets_info"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn create_face_set_validates_every_parameter() {
    let p = project();
    let path = sets_path(&p);
    let cases = [
        (json!({}), "FRS.0011"),
        (json!({"face_set_name": ""}), "FRS.0011"),
        (json!({"face_set_name": "has space"}), "FRS.0012"),
        (json!({"face_set_name": "a".repeat(65)}), "FRS.0012"),
        (json!({"face_set_name": 5}), "FRS.0012"),
        (json!({"face_set_name": "s", "face_set_capacity": 12345}), "FRS.0012"),
        (json!({"face_set_name": "s", "face_set_capacity": 200_000}), "FRS.0012"),
        (json!({"face_set_name": "s", "face_set_capacity": 0}), "FRS.0012"),
        (json!({"face_set_name": "s", "face_set_capacity": "lots"}), "FRS.0012"),
        (json!({"face_set_name": "s", "external_fields": {"face_id": {"type": "string"}}}), "FRS.0012"),
        (json!({"face_set_name": "s", "external_fields": {"x": {"type": "date"}}}), "FRS.0012"),
        (json!({"face_set_name": "s", "external_fields": {"bad name": {"type": "string"}}}), "FRS.0012"),
        (json!({"face_set_name": "s", "external_fields": [1]}), "FRS.0012"),
    ];
    for (body, code) in cases {
        let reply = send(json_post(&path, &body)).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, code);
    }
    let eleven: serde_json::Map<String, Value> =
        (0..11).map(|i| (format!("f{i}"), json!({"type": "integer"}))).collect();
    let reply = send(json_post(&path, &json!({"face_set_name": "s", "external_fields": eleven}))).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0012");
    assert_error(
        &send(raw(Method::POST, &path, Some("application/json"), "{")).await,
        StatusCode::BAD_REQUEST,
        "FRS.0014",
    );
    let multipart = multipart_post(&path, &[("face_set_name", None, b"s")]);
    assert_error(&send(multipart).await, StatusCode::BAD_REQUEST, "FRS.0010");
    assert_eq!(send(get(&path)).await.body, json!({"face_sets_info": []}), "nothing was created");
}

#[tokio::test]
async fn a_project_holds_at_most_ten_face_sets() {
    let p = project();
    for i in 0..10 {
        create_set(&p, &format!("set{i}"), json!({})).await;
    }
    let reply = send(json_post(&sets_path(&p), &json!({"face_set_name": "set10"}))).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0305");
    // Another project is not affected.
    create_set(&project(), "set10", json!({})).await;
}

#[tokio::test]
async fn projects_are_isolated() {
    let (a, b) = (project(), project());
    wait_until_ready().await;
    create_set(&a, "shared-name", schema()).await;
    let added = add(&a, "shared-name", &sample(1), json!({"single": true})).await;
    let face_id = added[0]["face_id"].as_str().expect("face_id").to_owned();

    assert_error(&send(get(&set_path(&b, "shared-name"))).await, StatusCode::BAD_REQUEST, "FRS.0302");
    assert_error(&search(&b, "shared-name", json!({"face_id": face_id})).await, StatusCode::BAD_REQUEST, "FRS.0302");
    assert_eq!(send(get(&sets_path(&b))).await.body, json!({"face_sets_info": []}));
    create_set(&b, "shared-name", schema()).await;
    assert_error(&search(&b, "shared-name", json!({"face_id": face_id})).await, StatusCode::BAD_REQUEST, "FRS.0403");
    assert_error(
        &send(delete(&format!("{}?face_id={face_id}", faces_path(&b, "shared-name")))).await,
        StatusCode::BAD_REQUEST,
        "FRS.0403",
    );
    assert_eq!(face_number(&a, "shared-name").await, 1);
}

// ---------------------------------------------------------------------------------------------
// Faces

#[tokio::test]
async fn add_faces_adds_every_face_or_the_largest() {
    let p = project();
    wait_until_ready().await;
    create_set(&p, "s", schema()).await;
    let fields =
        json!({"dept": 7, "timestamp": 1_700_000_000_000i64, "weight": 61.5, "name": "zhang_san", "male": true});
    let reply = send(json_post(
        &faces_path(&p, "s"),
        &json!({"image_base64": b64(&sample(1)), "external_image_id": "img-1", "external_fields": fields}),
    ))
    .await;
    assert_ok(&reply);
    let set_id = send(get(&set_path(&p, "s"))).await.body["face_set_info"]["face_set_id"].clone();
    assert_eq!(reply.body["face_set_id"], set_id);
    assert_eq!(reply.body["face_set_name"], "s");
    let faces = reply.body["faces"].as_array().expect("faces");
    let detected = detected_boxes(&sample(1)).await;
    assert_eq!(faces.len(), detected.len(), "every face of sample1");
    for (face, expected) in faces.iter().zip(&detected) {
        assert_eq!(box_of(&face["bounding_box"]), *expected);
        assert_eq!(face["external_image_id"], "img-1");
        assert_eq!(face["external_fields"], fields);
    }
    assert_eq!(ids(&reply.body["faces"]).iter().collect::<HashSet<_>>().len(), faces.len(), "unique ids");

    let single = add(&p, "s", &sample(2), json!({"single": true})).await;
    assert_eq!(single.len(), 1);
    assert_eq!(box_of(&single[0]["bounding_box"]), detected_boxes(&sample(2)).await[0], "the largest face");
    let generated = single[0]["external_image_id"].as_str().expect("generated external_image_id");
    assert!(!generated.is_empty() && generated.len() <= 36);
    assert_eq!(single[0]["external_fields"], json!({}));
    assert_eq!(face_number(&p, "s").await, detected.len() as i64 + 1);
}

#[tokio::test]
async fn bad_adds_change_nothing() {
    let p = project();
    wait_until_ready().await;
    create_set(&p, "s", schema()).await;
    add(&p, "s", &sample(3), json!({"single": true})).await;
    let before = send(get(&format!("{}?offset=0&limit=100", faces_path(&p, "s")))).await;
    let path = faces_path(&p, "s");
    let blank = encode(&RgbImage::from_pixel(320, 240, image::Rgb([200, 200, 200])), ImageFormat::Png);
    let image = b64(&sample(1));
    let cases = [
        (json!({"image_base64": b64(&blank)}), "FRS.0404"),
        (json!({"image_base64": "not base64!"}), "FRS.0015"),
        (json!({}), "FRS.0011"),
        (json!({"image_base64": image, "external_fields": {"unknown": 1}}), "FRS.0012"),
        (json!({"image_base64": image, "external_fields": {"dept": "seven"}}), "FRS.0012"),
        (json!({"image_base64": image, "external_fields": {"dept": 3_000_000_000i64}}), "FRS.0012"),
        (json!({"image_base64": image, "external_fields": {"name": "has space"}}), "FRS.0012"),
        (json!({"image_base64": image, "external_fields": "dept"}), "FRS.0012"),
        (json!({"image_base64": image, "external_image_id": "a/b"}), "FRS.0012"),
        (json!({"image_base64": image, "external_image_id": "x".repeat(37)}), "FRS.0012"),
        (json!({"image_base64": image, "single": "maybe"}), "FRS.0012"),
    ];
    for (body, code) in cases {
        assert_error(&send(json_post(&path, &body)).await, StatusCode::BAD_REQUEST, code);
    }
    let missing = send(json_post(&faces_path(&p, "nope"), &json!({"image_base64": image}))).await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "FRS.0302");
    let after = send(get(&format!("{}?offset=0&limit=100", faces_path(&p, "s")))).await;
    assert_eq!(after.body, before.body, "the set is as it was");
}

#[tokio::test]
async fn add_and_search_by_multipart_file() {
    let p = project();
    wait_until_ready().await;
    create_set(&p, "s", schema()).await;
    let image = sample(4);
    let reply = send(multipart_post(
        &faces_path(&p, "s"),
        &[
            ("image_file", Some("sample4.jpg"), &image),
            ("external_image_id", None, b"file-4"),
            ("external_fields", None, br#"{"dept": 3, "name": "li_si"}"#),
            ("single", None, b"true"),
        ],
    ))
    .await;
    assert_ok(&reply);
    let face_id = ids(&reply.body["faces"]).remove(0);
    assert_eq!(reply.body["faces"][0]["external_fields"], json!({"dept": 3, "name": "li_si"}));

    let probe = crop_of_largest(4).await;
    let found = send(multipart_post(
        &search_path(&p, "s"),
        &[
            ("image_file", Some("probe.png"), &probe),
            ("top_n", None, b"3"),
            ("threshold", None, b"0.93"),
            ("return_fields", None, br#"["name"]"#),
            ("sort", None, br#"[{"dept": "asc"}]"#),
            ("filter", None, b"dept:[1 TO 5]"),
        ],
    ))
    .await;
    assert_ok(&found);
    assert_eq!(ids(&found.body["faces"]), [face_id]);
    assert_eq!(found.body["faces"][0]["external_fields"], json!({"name": "li_si"}));
}

#[tokio::test]
async fn show_faces_by_id_and_by_page() {
    let p = project();
    wait_until_ready().await;
    create_set(&p, "s", schema()).await;
    let mut added = Vec::new();
    for n in 1..=3 {
        added.extend(add(&p, "s", &sample(n), json!({"external_fields": {"dept": n}})).await);
    }
    let all_ids = ids(&Value::Array(added.clone()));
    let path = faces_path(&p, "s");

    let first_page = send(get(&path)).await;
    assert_ok(&first_page);
    assert_eq!(ids(&first_page.body["faces"]), all_ids[..5], "default offset 0, limit 5, insertion order");
    let page = send(get(&format!("{path}?offset=2&limit=3"))).await;
    assert_eq!(ids(&page.body["faces"]), all_ids[2..5]);
    let tail = send(get(&format!("{path}?offset=8&limit=100"))).await;
    assert_eq!(ids(&tail.body["faces"]), all_ids[8..]);

    let one = send(get(&format!("{path}?face_id={}", all_ids[4]))).await;
    assert_ok(&one);
    assert_eq!(one.body["faces"], json!([added[4]]));
    assert_eq!(one.body["face_set_name"], "s");

    for (query, code) in [
        ("offset=9990&limit=11", "FRS.0012"),
        ("offset=-1&limit=5", "FRS.0012"),
        ("limit=0", "FRS.0012"),
        ("limit=ten", "FRS.0012"),
        ("face_id=zzzzzzzz&limit=5", "FRS.0012"),
        ("face_id=", "FRS.0011"),
        ("face_id=zzzzzzzz", "FRS.0403"),
    ] {
        assert_error(&send(get(&format!("{path}?{query}"))).await, StatusCode::BAD_REQUEST, code);
    }
    assert_ok(&send(get(&format!("{path}?offset=9995&limit=5"))).await);
}

#[tokio::test]
async fn update_face_merges_fields() {
    let p = project();
    wait_until_ready().await;
    create_set(&p, "s", schema()).await;
    let face = add(&p, "s", &sample(5), json!({"single": true, "external_fields": {"dept": 1, "name": "a"}})).await;
    let face_id = face[0]["face_id"].as_str().expect("id").to_owned();
    let path = faces_path(&p, "s");

    let reply = send(json_request(
        Method::PUT,
        &path,
        &json!({"face_id": face_id, "external_image_id": "renamed", "external_fields": {"dept": 2, "male": false}}),
    ))
    .await;
    assert_ok(&reply);
    assert_eq!(reply.body["face_number"], 1);
    assert_eq!(reply.body["face_set_name"], "s");
    let shown = send(get(&format!("{path}?face_id={face_id}"))).await;
    assert_eq!(shown.body["faces"][0]["external_image_id"], "renamed");
    assert_eq!(shown.body["faces"][0]["external_fields"], json!({"dept": 2, "name": "a", "male": false}));
    let filtered = search(&p, "s", json!({"face_id": face_id, "filter": "dept:2 && male:false"})).await;
    assert_eq!(ids(&filtered.body["faces"]), std::slice::from_ref(&face_id), "the index sees the update");

    for (body, code) in [
        (json!({"face_id": face_id}), "FRS.0011"),
        (json!({"external_image_id": "x"}), "FRS.0011"),
        (json!({"face_id": "zzzzzzzz", "external_image_id": "x"}), "FRS.0403"),
        (json!({"face_id": face_id, "external_fields": {"dept": true}}), "FRS.0012"),
        (json!({"face_id": face_id, "external_image_id": "bad id"}), "FRS.0012"),
    ] {
        assert_error(&send(json_request(Method::PUT, &path, &body)).await, StatusCode::BAD_REQUEST, code);
    }
    assert_eq!(shown.body, send(get(&format!("{path}?face_id={face_id}"))).await.body, "failed updates change nothing");
}

#[tokio::test]
async fn delete_faces_by_id_external_image_id_field_and_filter() {
    let p = project();
    wait_until_ready().await;
    create_set(&p, "s", schema()).await;
    let path = faces_path(&p, "s");
    let a =
        add(&p, "s", &sample(1), json!({"external_image_id": "img-a", "external_fields": {"dept": 1, "name": "a"}}))
            .await;
    let b =
        add(&p, "s", &sample(2), json!({"external_image_id": "img-b", "external_fields": {"dept": 2, "name": "b"}}))
            .await;
    let c =
        add(&p, "s", &sample(3), json!({"external_image_id": "img-c", "external_fields": {"dept": 3, "name": "c"}}))
            .await;
    let d =
        add(&p, "s", &sample(4), json!({"external_image_id": "img-d", "external_fields": {"dept": 4, "timestamp": 5}}))
            .await;
    let mut total = (a.len() + b.len() + c.len() + d.len()) as i64;

    let one = a[0]["face_id"].as_str().expect("id");
    let reply = send(delete(&format!("{path}?face_id={one}"))).await;
    assert_ok(&reply);
    assert_eq!(reply.body["face_number"], 1);
    total -= 1;
    assert_error(&send(delete(&format!("{path}?face_id={one}"))).await, StatusCode::BAD_REQUEST, "FRS.0403");

    let reply = send(delete(&format!("{path}?external_image_id=img-b"))).await;
    assert_eq!(reply.body["face_number"], b.len());
    total -= b.len() as i64;
    let reply = send(delete(&format!("{path}?name=c"))).await;
    assert_eq!(reply.body["face_number"], c.len());
    total -= c.len() as i64;
    assert_eq!(face_number(&p, "s").await, total);

    for (query, code) in [
        ("", "FRS.0011"),
        ("face_id=x&name=a", "FRS.0012"),
        ("external_image_id=img-b", "FRS.0407"),
        ("name=nobody", "FRS.0407"),
        ("unknown=1", "FRS.0012"),
        ("dept=one", "FRS.0012"),
    ] {
        assert_error(&send(delete(&format!("{path}?{query}"))).await, StatusCode::BAD_REQUEST, code);
    }

    let batch = format!("{path}/batch");
    for (body, code) in [
        (json!({}), "FRS.0011"),
        (json!({"filter": ""}), "FRS.0011"),
        (json!({"filter": "dept:[1 TO"}), "FRS.0029"),
        (json!({"filter": "nosuch:1"}), "FRS.0029"),
        (json!({"filter": "dept:[100 TO *]"}), "FRS.0407"),
    ] {
        assert_error(&send(json_request(Method::DELETE, &batch, &body)).await, StatusCode::BAD_REQUEST, code);
    }
    assert_eq!(face_number(&p, "s").await, total, "failed deletes change nothing");
    let reply =
        send(json_request(Method::DELETE, &batch, &json!({"filter": "timestamp:[* TO 10] && (!dept:1)"}))).await;
    assert_ok(&reply);
    assert_eq!(reply.body["face_number"], d.len());
    assert_eq!(face_number(&p, "s").await, total - d.len() as i64);
    let left = send(get(&format!("{path}?limit=100"))).await;
    assert!(left.body["faces"].as_array().expect("faces").iter().all(|f| f["external_image_id"] == "img-a"));
}

// ---------------------------------------------------------------------------------------------
// Search

/// A set with every face of the six samples; face `i` of sample `n` has dept = n and timestamp = i.
async fn searchable_set(p: &str) -> Vec<(u32, Vec<Value>)> {
    create_set(p, "s", schema()).await;
    let mut added = Vec::new();
    for n in 1..=6 {
        let faces =
            add(p, "s", &sample(n), json!({"external_image_id": format!("sample{n}"), "external_fields": {"dept": n}}))
                .await;
        for (i, face) in faces.iter().enumerate() {
            let face_id = face["face_id"].as_str().expect("id");
            let body = json!({"face_id": face_id, "external_fields": {"timestamp": i, "name": format!("p{n}_{i}")}});
            assert_ok(&send(json_request(Method::PUT, &faces_path(p, "s"), &body)).await);
        }
        added.push((n, faces));
    }
    added
}

#[tokio::test]
async fn search_finds_the_person_and_honours_every_parameter() {
    let p = project();
    wait_until_ready().await;
    let added = searchable_set(&p).await;
    let largest_of_3 = added[2].1[0]["face_id"].as_str().expect("id").to_owned();
    let probe = b64(&crop_of_largest(3).await);

    let reply = search(&p, "s", json!({"image_base64": probe})).await;
    assert_ok(&reply);
    let faces = reply.body["faces"].as_array().expect("faces");
    let total: usize = added.iter().map(|(_, f)| f.len()).sum();
    assert_eq!(faces.len(), 10.min(total), "top_n defaults to 10");
    assert_eq!(faces[0]["face_id"], largest_of_3.as_str());
    assert!(faces[0]["similarity"].as_f64().expect("similarity") >= 0.93, "{}", faces[0]);
    assert!(faces[1]["similarity"].as_f64().expect("similarity") < 0.93, "nobody else is that person: {}", faces[1]);
    let similarities: Vec<f64> = faces.iter().map(|f| f["similarity"].as_f64().expect("similarity")).collect();
    assert!(similarities.windows(2).all(|w| w[0] >= w[1]), "{similarities:?}");
    assert_eq!(faces[0]["external_image_id"], "sample3");
    assert_eq!(
        faces[0]["external_fields"],
        json!({"dept": 3, "timestamp": 0, "name": "p3_0"}),
        "all fields by default"
    );
    assert_eq!(box_of(&faces[0]["bounding_box"]), detected_boxes(&sample(3)).await[0], "the enrolled box");

    let thresholded = search(&p, "s", json!({"image_base64": probe, "threshold": 0.93})).await;
    assert_eq!(ids(&thresholded.body["faces"]), std::slice::from_ref(&largest_of_3));
    let top = search(&p, "s", json!({"image_base64": probe, "top_n": 3})).await;
    assert_eq!(ids(&top.body["faces"]), ids(&reply.body["faces"])[..3]);
    let all = search(&p, "s", json!({"image_base64": probe, "top_n": 1000})).await;
    assert_eq!(all.body["faces"].as_array().map(Vec::len), Some(total));

    let filtered =
        search(&p, "s", json!({"image_base64": probe, "filter": "dept:[4 TO 6] || external_image_id:sample1"})).await;
    assert_ok(&filtered);
    let expected: usize = added.iter().filter(|(n, _)| *n == 1 || *n >= 4).map(|(_, f)| f.len()).sum();
    assert_eq!(filtered.body["faces"].as_array().map(Vec::len), Some(expected.min(10)));
    assert!(filtered.body["faces"].as_array().expect("faces").iter().all(|f| f["external_fields"]["dept"] != 3));

    let sorted = search(
        &p,
        "s",
        json!({"image_base64": probe, "top_n": 5, "sort": [{"dept": "desc"}, {"timestamp": "asc"}], "return_fields": ["dept", "timestamp"]}),
    )
    .await;
    assert_ok(&sorted);
    let keys: Vec<(i64, i64)> = sorted.body["faces"]
        .as_array()
        .expect("faces")
        .iter()
        .map(|f| {
            (
                f["external_fields"]["dept"].as_i64().expect("dept"),
                f["external_fields"]["timestamp"].as_i64().expect("ts"),
            )
        })
        .collect();
    let mut expected_keys = keys.clone();
    expected_keys.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(keys, expected_keys, "sort orders the top_n");
    let mut same_faces = ids(&sorted.body["faces"]);
    same_faces.sort();
    let mut top5 = ids(&reply.body["faces"])[..5].to_vec();
    top5.sort();
    assert_eq!(same_faces, top5, "sort does not change which faces are returned");
    assert!(sorted.body["faces"].as_array().expect("faces").iter().all(|f| f["external_fields"].get("name").is_none()));

    let by_id = search(&p, "s", json!({"face_id": largest_of_3, "top_n": 2})).await;
    assert_ok(&by_id);
    assert_eq!(by_id.body["faces"][0]["face_id"], largest_of_3.as_str());
    assert!((by_id.body["faces"][0]["similarity"].as_f64().expect("similarity") - 1.0).abs() < 1e-4);
}

#[tokio::test]
async fn search_errors() {
    let p = project();
    wait_until_ready().await;
    create_set(&p, "s", schema()).await;
    add(&p, "s", &sample(6), json!({"single": true})).await;
    let image = b64(&sample(6));
    let blank = b64(&encode(&RgbImage::from_pixel(320, 240, image::Rgb([90, 90, 90])), ImageFormat::Jpeg));
    let cases = [
        (json!({"image_base64": image, "filter": "dept:[1 TO"}), "FRS.0029"),
        (json!({"image_base64": image, "filter": "nosuch:1"}), "FRS.0029"),
        (json!({"image_base64": image, "filter": "dept:1.0f"}), "FRS.0029"),
        (json!({"image_base64": image, "return_fields": ["nosuch"]}), "FRS.0030"),
        (json!({"image_base64": image, "return_fields": "name"}), "FRS.0012"),
        (json!({"image_base64": image, "sort": [{"name": "asc"}]}), "FRS.0032"),
        (json!({"image_base64": image, "sort": [{"nosuch": "asc"}]}), "FRS.0032"),
        (json!({"image_base64": image, "sort": [{"dept": "up"}]}), "FRS.0012"),
        (json!({"image_base64": image, "top_n": 0}), "FRS.0012"),
        (json!({"image_base64": image, "top_n": 1001}), "FRS.0012"),
        (json!({"image_base64": image, "threshold": 1.5}), "FRS.0012"),
        (json!({"image_base64": image, "face_id": "abcdefgh"}), "FRS.0012"),
        (json!({"image_base64": blank}), "FRS.0304"),
        (json!({"face_id": "abcdefgh"}), "FRS.0403"),
        (json!({"face_id": ""}), "FRS.0011"),
        (json!({}), "FRS.0011"),
        (json!({"image_url": "https://bucket.obs.example.com/a.jpg"}), "FRS.0021"),
    ];
    for (body, code) in cases {
        let reply = search(&p, "s", body.clone()).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, code);
    }
    assert_error(&search(&p, "nope", json!({"image_base64": image})).await, StatusCode::BAD_REQUEST, "FRS.0302");
}

#[tokio::test]
async fn multi_face_search_matches_every_face_of_the_probe() {
    let p = project();
    wait_until_ready().await;
    create_set(&p, "s", json!({})).await;
    let added = add(&p, "s", &sample(2), json!({})).await;
    let reply = send(json_post(
        &format!("{}/multi-face-search", set_path(&p, "s")),
        &json!({"image_base64": b64(&sample(2)), "top_n": 1}),
    ))
    .await;
    assert_ok(&reply);
    let results = reply.body["results"].as_array().expect("results");
    assert_eq!(results.len(), added.len());
    for (result, face) in results.iter().zip(&added) {
        assert_eq!(result["bounding_box"], face["bounding_box"]);
        assert_eq!(result["faces"][0]["face_id"], face["face_id"], "each face finds itself");
        assert!(result["faces"][0]["similarity"].as_f64().expect("similarity") > 0.99);
    }
}

// ---------------------------------------------------------------------------------------------
// Capacity, durability, storage contents, concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_set_refuses_more_faces() {
    wait_until_ready().await;
    let dir = temp_data_dir();
    {
        let store = frs_store::Store::open(&dir).expect("store");
        let row = frs_store::FaceSetRow {
            project_id: "p".into(),
            name: "full".into(),
            id: "FullSet1".into(),
            capacity: 10_000,
            schema_json: "{}".into(),
            created_at: 0,
        };
        store.create_face_set(&row).expect("create");
        let faces: Vec<frs_store::FaceRow> = (0..9_999)
            .map(|i| {
                let mut feature = vec![0.0f32; frs_vision::FEATURE_DIM];
                feature[i % frs_vision::FEATURE_DIM] = 1.0;
                frs_store::FaceRow {
                    face_id: format!("f{i:07}"),
                    external_image_id: "bulk".into(),
                    bbox: [0, 0, 100, 100],
                    fields_json: "{}".into(),
                    feature,
                }
            })
            .collect();
        store.insert_faces("FullSet1", &faces).expect("insert");
    }
    let state = state_with_store(&dir, LibraryLimits::default());
    let several =
        send_to(state.clone(), json_post(&faces_path("p", "full"), &json!({"image_base64": b64(&sample(1))}))).await;
    assert_error(&several, StatusCode::FORBIDDEN, "FRS.0306");
    let one = send_to(
        state.clone(),
        json_post(&faces_path("p", "full"), &json!({"image_base64": b64(&sample(1)), "single": true})),
    )
    .await;
    assert_ok(&one);
    let more = send_to(
        state.clone(),
        json_post(&faces_path("p", "full"), &json!({"image_base64": b64(&sample(2)), "single": true})),
    )
    .await;
    assert_error(&more, StatusCode::FORBIDDEN, "FRS.0306");
    let info = send_to(state, get(&set_path("p", "full"))).await;
    assert_eq!(info.body["face_set_info"]["face_number"], 10_000);
}

#[tokio::test]
async fn the_operator_can_raise_the_limits() {
    let dir = temp_data_dir();
    let limits = LibraryLimits { max_face_sets_per_project: 12, max_face_set_capacity: 1_000_000 };
    let state = state_with_store(&dir, limits);
    let big = send_to(
        state.clone(),
        json_post(&sets_path("p"), &json!({"face_set_name": "big", "face_set_capacity": 1_000_000})),
    )
    .await;
    assert_ok(&big);
    for i in 0..11 {
        let reply =
            send_to(state.clone(), json_post(&sets_path("p"), &json!({"face_set_name": format!("s{i}")}))).await;
        assert_ok(&reply);
    }
    let reply = send_to(state, json_post(&sets_path("p"), &json!({"face_set_name": "one-too-many"}))).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "FRS.0305");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_loads_every_face_and_the_data_dir_holds_no_image() {
    wait_until_ready().await;
    let dir = temp_data_dir();
    let state = state_with_store(&dir, LibraryLimits::default());
    let created =
        send_to(state.clone(), json_post(&sets_path("p"), &json!({"face_set_name": "s", "external_fields": schema()})))
            .await;
    assert_ok(&created);
    let mut sent = Vec::new();
    let mut added = Vec::new();
    for n in [1, 5] {
        let image = b64(&sample(n));
        let body = json!({"image_base64": image, "external_fields": {"dept": n, "name": format!("n{n}")}});
        let reply = send_to(state.clone(), json_post(&faces_path("p", "s"), &body)).await;
        assert_ok(&reply);
        added.extend(ids(&reply.body["faces"]));
        sent.push(image);
    }
    let png = encode(&RgbImage::from_pixel(200, 200, image::Rgb([1, 2, 3])), ImageFormat::Png);
    let rejected = send_to(state.clone(), json_post(&faces_path("p", "s"), &json!({"image_base64": b64(&png)}))).await;
    assert_error(&rejected, StatusCode::BAD_REQUEST, "FRS.0404");
    let listed = send_to(state.clone(), get(&format!("{}?limit=100", faces_path("p", "s")))).await;
    let searched =
        send_to(state.clone(), json_post(&search_path("p", "s"), &json!({"face_id": added[0], "top_n": 100}))).await;
    drop(state);

    let restarted = state_with_store(&dir, LibraryLimits::default());
    let relisted = send_to(restarted.clone(), get(&format!("{}?limit=100", faces_path("p", "s")))).await;
    assert_eq!(relisted.body, listed.body);
    let researched =
        send_to(restarted.clone(), json_post(&search_path("p", "s"), &json!({"face_id": added[0], "top_n": 100})))
            .await;
    assert_eq!(researched.body, searched.body, "the same answers after a restart");
    let info = send_to(restarted, get(&set_path("p", "s"))).await;
    assert_eq!(info.body["face_set_info"]["face_number"], added.len());

    for entry in std::fs::read_dir(&dir).expect("data dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("readable");
        for signature in [&b"\xFF\xD8\xFF"[..], b"\x89PNG\r\n\x1a\n", b"JFIF", b"Exif"] {
            assert!(!contains(&bytes, signature), "{} holds image bytes {signature:?}", path.display());
        }
        for image in &sent {
            assert!(!contains(&bytes, &image.as_bytes()[1000..1064]), "{} holds the base64 sent", path.display());
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_adds_deletes_and_searches_stay_consistent() {
    wait_until_ready().await;
    let p = project();
    create_set(&p, "s", schema()).await;
    // Features computed once; the concurrent phase re-adds the same images so that inference stays cheap.
    let images: Vec<String> = (1..=6).map(|n| b64(&sample(n))).collect();
    let mut tasks = Vec::new();
    for client in 0..6usize {
        let p = p.clone();
        let images = images.clone();
        tasks.push(tokio::spawn(async move {
            let mut kept = Vec::new();
            let mut seen = HashSet::new();
            for round in 0..4usize {
                let image = &images[(client + round) % images.len()];
                let tag = format!("c{client}r{round}");
                let body =
                    json!({"image_base64": image, "external_image_id": tag, "external_fields": {"dept": client}});
                let reply = send(json_post(&faces_path(&p, "s"), &body)).await;
                assert_ok(&reply);
                let added = ids(&reply.body["faces"]);
                let found = search(&p, "s", json!({"face_id": added[0], "top_n": 1000})).await;
                assert_ok(&found);
                let found_ids: HashSet<String> = ids(&found.body["faces"]).into_iter().collect();
                assert!(added.iter().all(|id| found_ids.contains(id)), "an acknowledged add is searchable at once");
                seen.extend(found_ids);
                if round % 2 == 1 {
                    let reply = send(delete(&format!("{}?external_image_id={tag}", faces_path(&p, "s")))).await;
                    assert_eq!(reply.body["face_number"], added.len(), "{}", reply.body);
                    let gone = search(&p, "s", json!({"face_id": added[0]})).await;
                    assert_error(&gone, StatusCode::BAD_REQUEST, "FRS.0403");
                } else {
                    kept.extend(added);
                }
            }
            (kept, seen)
        }));
    }
    let mut kept = HashSet::new();
    let mut seen = HashSet::new();
    for task in tasks {
        let (k, s) = task.await.expect("client task");
        kept.extend(k);
        seen.extend(s);
    }
    let listed = send(get(&format!("{}?limit=1000", faces_path(&p, "s")))).await;
    let listed: HashSet<String> = ids(&listed.body["faces"]).into_iter().collect();
    assert_eq!(listed, kept, "exactly the faces added and not deleted");
    assert_eq!(face_number(&p, "s").await, kept.len() as i64);
    let any = kept.iter().next().expect("a kept face");
    let everything = search(&p, "s", json!({"face_id": any, "top_n": 1000})).await;
    let searchable: HashSet<String> = ids(&everything.body["faces"]).into_iter().collect();
    assert_eq!(searchable, kept, "the index and the store agree");
    assert!(seen.iter().all(|id| id.len() == 8), "searches only ever returned whole faces");
}
