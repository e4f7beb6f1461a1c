//! Integration tests of the store: every method's round trip, ordering, space reclamation, reopening,
//! the format check, atomicity, concurrency, and a kill -9 crash test in a child process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};

use frs_store::{AccessStore, AuditQuery, AuditRow, CredentialRow, FaceRow, FaceSetRow, Store, StoreError};
use tempfile::TempDir;

fn tmp() -> TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn set(project: &str, name: &str, id: &str) -> FaceSetRow {
    FaceSetRow {
        project_id: project.into(),
        name: name.into(),
        id: id.into(),
        capacity: 100_000,
        schema_json: r#"{"age":{"type":"integer"}}"#.into(),
        created_at: 1_700_000_000,
    }
}

/// A deterministic unit-length feature for face number `i`.
fn feature(i: u64, dim: usize) -> Vec<f32> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.iter_mut().for_each(|a| *a /= n);
    v
}

fn face(i: u64) -> FaceRow {
    FaceRow {
        face_id: format!("f{i:07}"),
        external_image_id: format!("img-{}", i / 2),
        bbox: [i as i32, -3, 110, 137],
        fields_json: format!(r#"{{"age":{},"name":"person-{i}"}}"#, i % 90),
        feature: feature(i, 128),
    }
}

fn faces(range: std::ops::Range<u64>) -> Vec<FaceRow> {
    range.map(face).collect()
}

fn ids(rows: &[FaceRow]) -> Vec<String> {
    rows.iter().map(|r| r.face_id.clone()).collect()
}

#[test]
fn face_sets_round_trip_and_uniqueness() {
    let dir = tmp();
    let store = Store::open(dir.path()).expect("open");
    assert_eq!(store.face_sets().expect("list"), vec![]);

    let b1 = set("proj-b", "employees", "BBBBBBB1");
    let a1 = set("proj-a", "zeta", "AAAAAAA1");
    let a2 =
        FaceSetRow { capacity: 30_000, schema_json: "{}".into(), created_at: 5, ..set("proj-a", "alpha", "AAAAAAA2") };
    for s in [&b1, &a1, &a2] {
        store.create_face_set(s).expect("create");
    }
    // Ordered by project, then creation (not by name).
    assert_eq!(store.face_sets().expect("list"), vec![a1.clone(), a2.clone(), b1.clone()]);

    // Same name in the same project: FaceSetExists; in another project: fine.
    let dup = set("proj-a", "zeta", "AAAAAAA9");
    assert!(matches!(store.create_face_set(&dup), Err(StoreError::FaceSetExists)));
    store.create_face_set(&set("proj-c", "zeta", "CCCCCCC1")).expect("same name, other project");
    // Same id under another name: not FaceSetExists, a backend error.
    let id_clash = store.create_face_set(&set("proj-d", "other", "AAAAAAA1"));
    assert!(matches!(id_clash, Err(StoreError::Backend(_))), "{id_clash:?}");
    assert_eq!(store.face_sets().expect("list").len(), 4);

    assert!(store.delete_face_set("AAAAAAA1").expect("delete"));
    assert!(!store.delete_face_set("AAAAAAA1").expect("delete again"));
    assert_eq!(store.face_sets().expect("list"), vec![a2, b1, set("proj-c", "zeta", "CCCCCCC1")]);
    // The name is free again.
    store.create_face_set(&a1).expect("recreate");
}

#[test]
fn faces_round_trip_update_and_delete() {
    let dir = tmp();
    let store = Store::open(dir.path()).expect("open");
    store.create_face_set(&set("p", "s", "SET00001")).expect("create");
    store.create_face_set(&set("p", "t", "SET00002")).expect("create");

    let mut odd = face(1);
    odd.feature = vec![]; // any length, even none
    let mut wide = face(2);
    wide.feature = feature(2, 512);
    wide.bbox = [i32::MIN, i32::MAX, 0, -1];
    store.insert_faces("SET00001", &[face(0), odd.clone(), wide.clone()]).expect("insert");
    store.insert_faces("SET00001", &[]).expect("empty batch");
    // The same face id in another set is another face.
    store.insert_faces("SET00002", &[face(0)]).expect("insert other set");

    assert_eq!(store.count_faces("SET00001").expect("count"), 3);
    assert_eq!(store.count_faces("SET00002").expect("count"), 1);
    assert_eq!(store.count_faces("NOSUCHID").expect("count"), 0);
    assert_eq!(store.face("SET00001", "f0000002").expect("face"), Some(wide.clone()));
    assert_eq!(store.face("SET00001", "f0000001").expect("face"), Some(odd.clone()));
    assert_eq!(store.face("SET00001", "nope").expect("face"), None);
    assert_eq!(store.face("NOSUCHID", "f0000000").expect("face"), None);
    assert_eq!(store.faces_page("SET00001", 0, 10).expect("page"), vec![face(0), odd.clone(), wide.clone()]);

    // Update: either field, both, neither; absent face or set.
    assert!(store.update_face("SET00001", "f0000000", Some("new-img"), None).expect("update"));
    assert!(store.update_face("SET00001", "f0000000", None, Some(r#"{"age":7}"#)).expect("update"));
    let got = store.face("SET00001", "f0000000").expect("face").expect("present");
    assert_eq!(got, FaceRow { external_image_id: "new-img".into(), fields_json: r#"{"age":7}"#.into(), ..face(0) });
    assert!(store.update_face("SET00001", "f0000000", Some("b"), Some("{}")).expect("update"));
    assert!(store.update_face("SET00001", "f0000000", None, None).expect("no-op update of a present face"));
    let got = store.face("SET00001", "f0000000").expect("face").expect("present");
    assert_eq!((got.external_image_id.as_str(), got.fields_json.as_str()), ("b", "{}"));
    assert!(!store.update_face("SET00001", "nope", Some("x"), None).expect("update absent"));
    assert!(!store.update_face("NOSUCHID", "f0000000", Some("x"), None).expect("update absent set"));
    // The other set's face of the same id is untouched.
    assert_eq!(store.face("SET00002", "f0000000").expect("face"), Some(face(0)));

    // Delete: counts only the faces that existed, once each.
    assert_eq!(store.delete_faces("SET00001", &["f0000000", "nope", "f0000000", "f0000002"]).expect("delete"), 2);
    assert_eq!(store.delete_faces("SET00001", &[]).expect("delete none"), 0);
    assert_eq!(store.delete_faces("NOSUCHID", &["f0000001"]).expect("delete unknown set"), 0);
    assert_eq!(ids(&store.faces_page("SET00001", 0, 10).expect("page")), ["f0000001"]);
    assert_eq!(store.count_faces("SET00002").expect("count"), 1);

    // A deleted face id can be added again, and goes last.
    store.insert_faces("SET00001", &[face(0)]).expect("re-add");
    assert_eq!(ids(&store.faces_page("SET00001", 0, 10).expect("page")), ["f0000001", "f0000000"]);

    // Unknown set: nothing inserted, a backend error.
    assert!(matches!(store.insert_faces("NOSUCHID", &[face(9)]), Err(StoreError::Backend(_))));
}

#[test]
fn insertion_order_and_paging_across_deletes() {
    let dir = tmp();
    let store = Store::open(dir.path()).expect("open");
    store.create_face_set(&set("p", "a", "SETAAAAA")).expect("create");
    store.create_face_set(&set("p", "b", "SETBBBBB")).expect("create");
    // Interleave the two sets, with face ids not in insertion order.
    let mut expect_a = Vec::new();
    for batch in 0..10u64 {
        let rows: Vec<FaceRow> = (0..7).map(|j| face(1_000_000 - (batch * 7 + j) * 13)).collect();
        store.insert_faces("SETAAAAA", &rows).expect("insert a");
        store.insert_faces("SETBBBBB", &faces(batch * 3..batch * 3 + 3)).expect("insert b");
        expect_a.extend(ids(&rows));
    }
    // Delete some, including the last one (whose rowid SQLite may hand out again).
    let gone: Vec<String> = expect_a.iter().step_by(4).cloned().chain([expect_a[69].clone()]).collect();
    let gone_refs: Vec<&str> = gone.iter().map(String::as_str).collect();
    assert_eq!(store.delete_faces("SETAAAAA", &gone_refs).expect("delete"), gone.len());
    expect_a.retain(|id| !gone.contains(id));
    let extra = faces(5_000..5_004);
    store.insert_faces("SETAAAAA", &extra).expect("insert after delete");
    expect_a.extend(ids(&extra));

    let all = store.faces_page("SETAAAAA", 0, 10_000).expect("page");
    assert_eq!(ids(&all), expect_a);
    assert_eq!(store.count_faces("SETAAAAA").expect("count"), expect_a.len());
    let mut streamed = Vec::new();
    store.for_each_face("SETAAAAA", |f| streamed.push(f)).expect("stream");
    assert_eq!(streamed, all);

    for (offset, limit) in [(0, 5), (3, 7), (50, 100), (expect_a.len() - 1, 5), (expect_a.len(), 5), (1000, 5), (2, 0)]
    {
        let page = store.faces_page("SETAAAAA", offset, limit).expect("page");
        let want: Vec<String> = expect_a.iter().skip(offset).take(limit).cloned().collect();
        assert_eq!(ids(&page), want, "offset {offset} limit {limit}");
    }
    assert_eq!(store.faces_page("SETAAAAA", usize::MAX, usize::MAX).expect("huge offset"), vec![]);
    assert_eq!(ids(&store.faces_page("SETBBBBB", 28, 5).expect("page b")), ["f0000028", "f0000029"]);
    let mut n = 0;
    store.for_each_face("NOSUCHID", |_| n += 1).expect("stream unknown set");
    assert_eq!(n, 0);
}

#[test]
fn duplicate_in_a_batch_inserts_nothing() {
    let dir = tmp();
    let store = Store::open(dir.path()).expect("open");
    store.create_face_set(&set("p", "s", "SET00001")).expect("create");
    store.insert_faces("SET00001", &faces(0..3)).expect("insert");

    // Duplicate inside the batch, after some valid rows.
    let mut batch = faces(10..20);
    batch.push(face(12));
    let err = store.insert_faces("SET00001", &batch);
    assert!(matches!(err, Err(StoreError::Backend(_))), "{err:?}");
    // Duplicate of a face already stored.
    let err = store.insert_faces("SET00001", &[face(30), face(1)]);
    assert!(matches!(err, Err(StoreError::Backend(_))), "{err:?}");

    assert_eq!(ids(&store.faces_page("SET00001", 0, 100).expect("page")), ids(&faces(0..3)));
    assert_eq!(store.face("SET00001", "f0000010").expect("face"), None);
    assert_eq!(store.face("SET00001", "f0000030").expect("face"), None);
    // The writer is usable afterwards.
    store.insert_faces("SET00001", &faces(10..20)).expect("insert after failure");
    assert_eq!(store.count_faces("SET00001").expect("count"), 13);
}

#[test]
fn deleting_a_set_cascades_and_frees_its_space() {
    let dir = tmp();
    let store = Store::open(dir.path()).expect("open");
    store.create_face_set(&set("p", "keep", "KEEP0001")).expect("create");
    store.create_face_set(&set("p", "big", "BIG00001")).expect("create");
    store.insert_faces("KEEP0001", &faces(0..200)).expect("insert keep");
    let before = store.disk_usage().expect("usage");

    // Interleaved with the kept set, so the big set's pages are not just a tail to cut off.
    for chunk in 0..50u64 {
        store.insert_faces("BIG00001", &faces(100_000 + chunk * 100..100_000 + chunk * 100 + 100)).expect("insert big");
        store.insert_faces("KEEP0001", &faces(1_000 + chunk * 2..1_000 + chunk * 2 + 2)).expect("insert keep");
    }
    let full = store.disk_usage().expect("usage");
    assert_eq!(store.count_faces("BIG00001").expect("count"), 5_000);
    // 5,000 faces of 128 f32 take well over 2 MB.
    assert!(full.bytes() > before.bytes() + 2_500_000, "{before:?} -> {full:?}");

    assert!(store.delete_face_set("BIG00001").expect("delete"));
    let after = store.disk_usage().expect("usage");
    assert_eq!(store.count_faces("BIG00001").expect("count"), 0);
    assert_eq!(store.face("BIG00001", "f0100000").expect("face"), None);
    assert_eq!(after.freelist_count, 0, "{after:?}");
    // Back to the size of what is left: the kept set grew by 100 faces (~20 pages).
    assert!(after.page_count <= before.page_count + 40, "{before:?} -> {full:?} -> {after:?}");
    // No orphan rows behind the cascade, and the database is sound.
    let conn = rusqlite::Connection::open(dir.path().join(Store::FILE_NAME)).expect("inspect");
    let rows: i64 = conn.query_row("SELECT count(*) FROM faces", [], |r| r.get(0)).expect("count");
    assert_eq!(rows, 300);
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check");
    assert_eq!(check, "ok");
    drop(conn);
    // On disk too, once no reader holds the old snapshot: the file shrinks.
    drop(store);
    let len = std::fs::metadata(dir.path().join(Store::FILE_NAME)).expect("stat").len();
    assert!(len <= after.bytes(), "file {len} B, {after:?}");
    assert!(len < full.bytes() / 4, "file {len} B, full {full:?}");
}

#[test]
fn reopen_keeps_everything() {
    let dir = tmp();
    let data = dir.path().join("nested/data"); // created by open
    let sets = [set("p", "s", "SET00001"), set("q", "s", "SET00002")];
    {
        let store = Store::open(&data).expect("open");
        for s in &sets {
            store.create_face_set(s).expect("create");
        }
        store.insert_faces("SET00001", &faces(0..300)).expect("insert");
        store.insert_faces("SET00002", &faces(7..9)).expect("insert");
        store.delete_faces("SET00001", &["f0000005"]).expect("delete");
        store.update_face("SET00001", "f0000006", Some("upd"), None).expect("update");
    }
    let store = Store::open(&data).expect("reopen");
    assert_eq!(store.face_sets().expect("list"), sets);
    assert_eq!(store.count_faces("SET00001").expect("count"), 299);
    let mut got = Vec::new();
    store.for_each_face("SET00001", |f| got.push(f)).expect("stream");
    let mut want: Vec<FaceRow> = faces(0..300).into_iter().filter(|f| f.face_id != "f0000005").collect();
    want[5].external_image_id = "upd".into();
    assert_eq!(got, want);
    assert_eq!(store.faces_page("SET00002", 0, 5).expect("page"), faces(7..9));
}

#[test]
fn a_second_store_on_the_same_directory_is_refused() {
    let dir = tmp();
    let store = Store::open(dir.path()).expect("open");
    let second = Store::open(dir.path());
    assert!(matches!(second, Err(StoreError::Backend(ref m)) if m.contains("in use")), "{second:?}");
    drop(store);
    Store::open(dir.path()).expect("open after the first is dropped");
}

#[test]
fn other_format_versions_are_refused() {
    for found in [Store::FORMAT_VERSION + 1, 0, -1] {
        let dir = tmp();
        drop(Store::open(dir.path()).expect("create"));
        let conn = rusqlite::Connection::open(dir.path().join(Store::FILE_NAME)).expect("raw open");
        conn.pragma_update(None, "user_version", found).expect("write version");
        drop(conn);
        match Store::open(dir.path()) {
            Err(StoreError::UnsupportedFormat { found: f, expected }) => {
                assert_eq!((f, expected), (found, Store::FORMAT_VERSION));
            }
            other => panic!("version {found}: {other:?}"),
        }
    }
    let e = StoreError::UnsupportedFormat { found: 4, expected: 3 };
    assert_eq!(e.to_string(), "the data directory has on-disk format version 4, this build reads version 3");

    // A foreign SQLite database (tables, no version) is not ours either, and is left alone.
    let dir = tmp();
    let conn = rusqlite::Connection::open(dir.path().join(Store::FILE_NAME)).expect("raw open");
    conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);").expect("foreign");
    drop(conn);
    assert!(matches!(Store::open(dir.path()), Err(StoreError::UnsupportedFormat { found: 0, expected: 3 })));
    // Not a database at all.
    let dir = tmp();
    std::fs::write(dir.path().join(Store::FILE_NAME), vec![0x5a; 8192]).expect("write junk");
    assert!(matches!(Store::open(dir.path()), Err(StoreError::Backend(_))));
}

fn credential(access_key: &str, project: &str, created_at: i64) -> CredentialRow {
    CredentialRow {
        access_key: access_key.into(),
        project_id: project.into(),
        policy: "read-only".into(),
        sealed_secret: vec![1, 2, 3, 0, 255],
        enabled: true,
        created_at,
        description: Some("camera gate".into()),
    }
}

fn audit(n: i64, project: &str) -> AuditRow {
    AuditRow {
        time_ms: 1_700_000_000_000 + n,
        access_key: "AK".into(),
        project_id: project.into(),
        operation: "addFaces".into(),
        target: (n % 2 == 0).then(|| "staff".to_owned()),
        status: if n % 3 == 0 { 400 } else { 200 },
        error_code: (n % 3 == 0).then(|| "FRS.0404".to_owned()),
        request_id: format!("{n:032x}"),
    }
}

#[test]
fn credentials_round_trip() {
    let dir = tmp();
    let store = Store::open(dir.path()).expect("open");
    let access = store.access();
    let (a, b) = (credential("AKA", "p1", 20), credential("AKB", "p2", 10));
    access.insert_credential(&a).expect("insert");
    access.insert_credential(&b).expect("insert");
    assert!(matches!(access.insert_credential(&a), Err(StoreError::Backend(_))), "an access key is unique");
    assert_eq!(access.credential("AKA").expect("get"), Some(a.clone()));
    assert_eq!(access.credential("nope").expect("get"), None);
    assert_eq!(access.credentials().expect("list"), [b.clone(), a.clone()], "oldest first");
    assert!(access.set_credential_enabled("AKA", false).expect("disable"));
    assert!(!access.set_credential_enabled("nope", false).expect("disable"));
    assert!(!access.credential("AKA").expect("get").expect("present").enabled);
    assert!(access.delete_credential("AKB").expect("delete"));
    assert!(!access.delete_credential("AKB").expect("delete"));
    assert_eq!(access.credentials().expect("list").len(), 1);
}

#[test]
fn audit_records_are_read_most_recent_first_and_returned_in_order() {
    let dir = tmp();
    let access = AccessStore::open(dir.path()).expect("open");
    for n in 0..10 {
        access.insert_audit(&audit(n, if n < 6 { "p1" } else { "p2" })).expect("insert");
    }
    let all = access.audit(&AuditQuery { limit: 100, ..Default::default() }).expect("read");
    assert_eq!(all, (0..10).map(|n| audit(n, if n < 6 { "p1" } else { "p2" })).collect::<Vec<_>>());
    let last3 = access.audit(&AuditQuery { limit: 3, ..Default::default() }).expect("read");
    assert_eq!(last3, all[7..]);
    let p1 = access.audit(&AuditQuery { project_id: Some("p1"), limit: 2, ..Default::default() }).expect("read");
    assert_eq!(p1, all[4..6]);
    let since = AuditQuery { project_id: Some("p1"), since_ms: Some(1_700_000_000_003), limit: 100 };
    assert_eq!(access.audit(&since).expect("read"), all[3..6]);
}

/// The server's store holds the directory lock; an operator's access store opens beside it, and
/// what one process commits the other reads at once.
#[test]
fn an_access_store_opens_beside_the_server_and_sees_its_writes() {
    let dir = tmp();
    let store = Store::open(dir.path()).expect("open");
    let operator = AccessStore::open(dir.path()).expect("an access store needs no lock");
    assert!(Store::open(dir.path()).is_err(), "still one store per directory");
    operator.insert_credential(&credential("AKA", "p1", 1)).expect("insert");
    assert!(store.access().credential("AKA").expect("get").expect("seen").enabled);
    operator.set_credential_enabled("AKA", false).expect("disable");
    assert!(!store.access().credential("AKA").expect("get").expect("seen").enabled);
    store.access().insert_audit(&audit(1, "p1")).expect("insert");
    assert_eq!(operator.audit(&AuditQuery { limit: 10, ..Default::default() }).expect("read").len(), 1);
}

#[test]
fn corrupt_feature_is_an_error_not_a_panic() {
    let dir = tmp();
    let store = Store::open(dir.path()).expect("open");
    store.create_face_set(&set("p", "s", "SET00001")).expect("create");
    store.insert_faces("SET00001", &faces(0..3)).expect("insert");
    let conn = rusqlite::Connection::open(dir.path().join(Store::FILE_NAME)).expect("raw open");
    conn.execute("UPDATE faces SET feature = x'0102030405' WHERE face_id = 'f0000001'", []).expect("corrupt");
    drop(conn);

    for r in [
        store.face("SET00001", "f0000001").map(|_| ()),
        store.faces_page("SET00001", 0, 5).map(|_| ()),
        store.for_each_face("SET00001", |_| {}),
    ] {
        assert!(matches!(r, Err(StoreError::Backend(ref m)) if m.contains("corrupt")), "{r:?}");
    }
    assert!(store.face("SET00001", "f0000002").expect("intact face").is_some());
}

#[test]
fn concurrent_writers_and_readers() {
    const WRITERS: u64 = 4;
    const BATCHES: u64 = 40;
    let dir = tmp();
    let store = Arc::new(Store::open(dir.path()).expect("open"));
    store.create_face_set(&set("p", "a", "SETAAAAA")).expect("create");
    store.create_face_set(&set("p", "b", "SETBBBBB")).expect("create");
    let start = Arc::new(Barrier::new(WRITERS as usize + 2));
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let (store, start) = (store.clone(), start.clone());
        handles.push(std::thread::spawn(move || {
            start.wait();
            let set_id = if w % 2 == 0 { "SETAAAAA" } else { "SETBBBBB" };
            for b in 0..BATCHES {
                let first = (w * BATCHES + b) * 5;
                store.insert_faces(set_id, &faces(first..first + 1 + b % 5)).expect("insert");
                if b % 8 == 7 {
                    assert_eq!(store.delete_faces(set_id, &[&format!("f{first:07}")]).expect("delete"), 1);
                }
            }
        }));
    }
    for _ in 0..2 {
        let (store, start) = (store.clone(), start.clone());
        handles.push(std::thread::spawn(move || {
            start.wait();
            let mut last = 0;
            for _ in 0..200 {
                let n = store.count_faces("SETAAAAA").expect("count");
                let page = store.faces_page("SETAAAAA", 0, 10_000).expect("page");
                // A page is a committed snapshot: never a torn batch, features intact.
                assert!(page.iter().all(|f| f.feature.len() == 128));
                assert!(n + 10 >= last, "count went back from {last} to {n}");
                last = n;
                let mut streamed = 0;
                store.for_each_face("SETBBBBB", |_| streamed += 1).expect("stream");
            }
        }));
    }
    for h in handles {
        h.join().expect("thread");
    }
    // Each writer adds sum over b of (1 + b % 5) faces and deletes BATCHES / 8 of them.
    let per_writer: u64 = (0..BATCHES).map(|b| 1 + b % 5).sum::<u64>() - BATCHES / 8;
    for set_id in ["SETAAAAA", "SETBBBBB"] {
        let want = (per_writer * WRITERS / 2) as usize;
        assert_eq!(store.count_faces(set_id).expect("count"), want);
        assert_eq!(store.faces_page(set_id, 0, 10_000).expect("page").len(), want);
    }
}

/// The reading connection of `for_each_face` is not the writer's, so `f` can write and read meanwhile,
/// and sees a snapshot: rows added during the stream are not streamed.
#[test]
fn for_each_face_callback_may_use_the_store() {
    let dir = tmp();
    let store = Store::open(dir.path()).expect("open");
    store.create_face_set(&set("p", "s", "SET00001")).expect("create");
    store.insert_faces("SET00001", &faces(0..50)).expect("insert");
    let mut seen = 0u64;
    store
        .for_each_face("SET00001", |f| {
            assert_eq!(f, face(seen));
            store.insert_faces("SET00001", &[face(1_000 + seen)]).expect("insert during stream");
            assert_eq!(store.count_faces("SET00001").expect("count during stream"), 51 + seen as usize);
            seen += 1;
        })
        .expect("stream");
    assert_eq!(seen, 50);
    assert_eq!(store.count_faces("SET00001").expect("count"), 100);
}

const CRASH_DIR_ENV: &str = "FRS_STORE_CRASH_CHILD_DIR";
const CRASH_FIRST_ENV: &str = "FRS_STORE_CRASH_CHILD_FIRST";

/// Faces of transaction `t` in the crash test: 1 to 3, so a torn batch would show.
fn crash_batch(t: u64) -> Vec<FaceRow> {
    (0..1 + t % 3).map(|j| face(t * 10 + j)).collect()
}

/// Child side of `kill_9_loses_nothing_acknowledged`: a no-op unless the env var is set. Inserts one
/// batch per transaction forever and prints `ACK <t>` once `insert_faces` has returned.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else { return };
    let first: u64 = std::env::var(CRASH_FIRST_ENV).expect("first").parse().expect("first");
    let store = Store::open(Path::new(&dir)).expect("child open");
    if store.face_sets().expect("sets").is_empty() {
        store.create_face_set(&set("p", "s", "CRASH001")).expect("create");
        println!("SET");
    }
    for t in first.. {
        store.insert_faces("CRASH001", &crash_batch(t)).expect("insert");
        println!("ACK {t}");
    }
}

#[test]
fn kill_9_loses_nothing_acknowledged() {
    let dir = tmp();
    let exe = std::env::current_exe().expect("test binary");
    let mut next = 0u64; // first transaction not known to be committed
    for (round, kill_after) in [37usize, 5, 120, 1].into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CRASH_DIR_ENV, dir.path())
            .env(CRASH_FIRST_ENV, next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut acked = Vec::new();
        let mut line = String::new();
        while acked.len() < kill_after {
            line.clear();
            assert!(out.read_line(&mut line).expect("read") > 0, "child exited early (round {round})");
            // libtest may print "test crash_child ... " on the same line before the first one.
            if let Some((_, t)) = line.trim_end().split_once("ACK ") {
                acked.push(t.parse::<u64>().expect("ack"));
            }
        }
        child.kill().expect("SIGKILL"); // std sends SIGKILL on Unix
        child.wait().expect("reap");
        // Acknowledgements still in the pipe count too; a line cut by the kill does not.
        loop {
            line.clear();
            if out.read_line(&mut line).expect("read") == 0 {
                break;
            }
            if let Some((_, t)) = line.strip_suffix('\n').and_then(|l| l.split_once("ACK ")) {
                acked.push(t.parse::<u64>().expect("ack"));
            }
        }
        let last = *acked.last().expect("some ack");
        assert_eq!(acked, (next..=last).collect::<Vec<_>>());

        let store = Store::open(dir.path()).expect("reopen after kill");
        let mut got = Vec::new();
        store.for_each_face("CRASH001", |f| got.push(f)).expect("stream");
        let acked_faces: Vec<FaceRow> = (0..=last).flat_map(crash_batch).collect();
        let in_flight = crash_batch(last + 1);
        // Every acknowledged face with its exact feature, in order; then either nothing or the whole
        // in-flight batch, never part of it.
        assert_eq!(got[..acked_faces.len().min(got.len())], acked_faces[..], "round {round}");
        let extra = &got[acked_faces.len()..];
        assert!(extra.is_empty() || extra == in_flight.as_slice(), "round {round}: extra {extra:?}");
        next = if extra.is_empty() { last + 1 } else { last + 2 };
        assert_eq!(store.count_faces("CRASH001").expect("count"), got.len());
        let conn = rusqlite::Connection::open(dir.path().join(Store::FILE_NAME)).expect("inspect");
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check");
        assert_eq!(check, "ok", "round {round}");
    }
}

#[test]
fn a_store_with_faces_keeps_its_recognizer() {
    let dir = tmp();
    let store = Store::open(dir.path()).expect("open");
    store.bind_feature_model("fp32-model").expect("first bind records");
    store.bind_feature_model("int8-model").expect("no faces yet: the recognizer may change");
    store.create_face_set(&set("proj-a", "a", "SET00001")).expect("create");
    store.insert_faces("SET00001", &[face(0)]).expect("insert");
    store.bind_feature_model("int8-model").expect("the same recognizer");
    match store.bind_feature_model("fp32-model") {
        Err(StoreError::FeatureModelMismatch { stored, configured }) => {
            assert_eq!((stored.as_str(), configured.as_str()), ("int8-model", "fp32-model"));
        }
        other => panic!("{other:?}"),
    }
    drop(store);
    let store = Store::open(dir.path()).expect("reopen");
    assert!(matches!(store.bind_feature_model("fp32-model"), Err(StoreError::FeatureModelMismatch { .. })));
    store.delete_face_set("SET00001").expect("delete");
    store.bind_feature_model("fp32-model").expect("an emptied store takes the new recognizer");
}
