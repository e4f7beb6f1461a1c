//! Store figures (plain `Instant`, `harness = false`): `cargo bench -p frs-store`.
//!
//! Guards: a single-face add (one fsynced transaction) must stay within ~10 % of an add's ~25 ms of
//! inference (≤ 2.5 ms); the restart path (`for_each_face` over 100,000 faces) well under 2 s; a
//! deepest page (`faces_page(9_995, 5)`) interactive.
//!
//! The database goes to `$FRS_STORE_BENCH_DIR` if set, else a temporary directory under `target/`
//! (on the project's disk: a tmpfs would make fsync free and the figures meaningless).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use frs_store::{FaceRow, FaceSetRow, Store};

const DIM: usize = 128;
const BULK: u64 = 100_000;
const BATCH: u64 = 1_000;

fn face(i: u64) -> FaceRow {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let feature = (0..DIM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    FaceRow {
        face_id: format!("{:08x}", i.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32),
        external_image_id: format!("img-{i:010}"),
        bbox: [120, 80, 110, 137],
        // ~60 bytes, as a typical custom-field object.
        fields_json: format!(r#"{{"name":"person-{i:06}","timestamp":{},"male":true}}"#, 1_700_000_000 + i),
        feature,
    }
}

fn set(name: &str, id: &str) -> FaceSetRow {
    FaceSetRow {
        project_id: "bench".into(),
        name: name.into(),
        id: id.into(),
        capacity: 100_000,
        schema_json: r#"{"name":{"type":"string"},"timestamp":{"type":"long"},"male":{"type":"boolean"}}"#.into(),
        created_at: 0,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let p = |q: f64| ms(v[((v.len() - 1) as f64 * q).round() as usize]);
    format!("p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms", p(0.5), p(0.9), p(0.99), p(1.0))
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing we need: run only for bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let base = std::env::var_os("FRS_STORE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/frs-store-bench"));
    std::fs::create_dir_all(&base).expect("bench dir");
    let base = base.canonicalize().expect("bench dir");
    let tmp = tempfile::tempdir_in(&base).expect("tempdir");
    let dir = tmp.path();
    println!("database in {}", dir.display());

    let store = Store::open(dir).expect("open");

    // 1. One face per call: one fsynced transaction each (the add-face path).
    store.create_face_set(&set("single", "SINGLE01")).expect("create");
    let mut times = Vec::new();
    for i in 0..500 {
        let row = [face(10_000_000 + i)];
        times.push(timed(|| store.insert_faces("SINGLE01", &row).expect("insert")).1);
    }
    println!("insert_faces, 1 face per transaction (500 calls): {}", percentiles(times));

    // 2. Bulk build: 100,000 faces in batches of 1,000.
    store.create_face_set(&set("bulk", "BULK0001")).expect("create");
    let before = store.disk_usage().expect("usage");
    let mut insert = Duration::ZERO;
    for b in 0..BULK / BATCH {
        let rows: Vec<FaceRow> = (b * BATCH..(b + 1) * BATCH).map(face).collect();
        insert += timed(|| store.insert_faces("BULK0001", &rows).expect("insert")).1;
    }
    println!(
        "insert_faces, {BULK} faces in batches of {BATCH}: {:.2} s ({:.0} faces/s, {:.1} ms per batch)",
        insert.as_secs_f64(),
        BULK as f64 / insert.as_secs_f64(),
        ms(insert) / (BULK / BATCH) as f64
    );
    let after = store.disk_usage().expect("usage");
    println!(
        "database growth: {:.1} MB for {BULK} faces = {:.0} B per face ({} f32 = {} B of feature)",
        (after.bytes() - before.bytes()) as f64 / 1e6,
        (after.bytes() - before.bytes()) as f64 / BULK as f64,
        DIM,
        DIM * 4
    );

    // 3. Restart path: stream every face, copying features into one flat buffer as the index would.
    drop(store);
    let (store, open) = timed(|| Store::open(dir).expect("reopen"));
    println!("Store::open of the existing database: {:.2} ms", ms(open));
    for round in 0..3 {
        let mut flat: Vec<f32> = Vec::with_capacity(BULK as usize * DIM);
        let mut ids = Vec::with_capacity(BULK as usize);
        let ((), t) = timed(|| {
            store
                .for_each_face("BULK0001", |f| {
                    flat.extend_from_slice(&f.feature);
                    ids.push(f.face_id);
                })
                .expect("stream")
        });
        assert_eq!(ids.len(), BULK as usize);
        println!(
            "for_each_face over {BULK} faces (round {round}{}): {:.0} ms ({:.2} µs per face)",
            if round == 0 { ", cold connection" } else { "" },
            ms(t),
            t.as_secs_f64() * 1e6 / BULK as f64
        );
    }

    // 4. Reads the API serves.
    let mut times = Vec::new();
    for _ in 0..200 {
        let (page, t) = timed(|| store.faces_page("BULK0001", 9_995, 5).expect("page"));
        assert_eq!(page.len(), 5);
        times.push(t);
    }
    println!("faces_page(9_995, 5) of {BULK}: {}", percentiles(times));
    let mut times = Vec::new();
    for _ in 0..200 {
        times.push(timed(|| store.faces_page("BULK0001", 0, 5).expect("page")).1);
    }
    println!("faces_page(0, 5): {}", percentiles(times));
    let mut times = Vec::new();
    for i in 0..200 {
        let id = face(i * 499).face_id;
        let (f, t) = timed(|| store.face("BULK0001", &id).expect("face"));
        assert!(f.is_some());
        times.push(t);
    }
    println!("face(id): {}", percentiles(times));
    let mut times = Vec::new();
    for _ in 0..50 {
        let (n, t) = timed(|| store.count_faces("BULK0001").expect("count"));
        assert_eq!(n, BULK as usize);
        times.push(t);
    }
    println!("count_faces of {BULK}: {}", percentiles(times));

    // 5. Single-face writes into a full set.
    let mut times = Vec::new();
    for i in 0..100 {
        let id = face(i * 997).face_id;
        times.push(timed(|| assert_eq!(store.delete_faces("BULK0001", &[&id]).expect("delete"), 1)).1);
    }
    println!("delete_faces, 1 face per transaction: {}", percentiles(times));
    let mut times = Vec::new();
    for i in 0..100 {
        let row = [face(20_000_000 + i)];
        times.push(timed(|| store.insert_faces("BULK0001", &row).expect("insert")).1);
    }
    println!("insert_faces, 1 face into a 100k set: {}", percentiles(times));

    // 6. Deleting the big set gives its space back.
    let full = store.disk_usage().expect("usage");
    let (_, t) = timed(|| assert!(store.delete_face_set("BULK0001").expect("delete")));
    let emptied = store.disk_usage().expect("usage");
    println!(
        "delete_face_set of {BULK} faces: {:.0} ms; database {:.1} MB -> {:.1} MB ({} free pages)",
        ms(t),
        full.bytes() as f64 / 1e6,
        emptied.bytes() as f64 / 1e6,
        emptied.freelist_count
    );
    drop(store);
    let len = std::fs::metadata(dir.join(Store::FILE_NAME)).expect("stat").len();
    println!("file after close: {:.2} MB", len as f64 / 1e6);
}
