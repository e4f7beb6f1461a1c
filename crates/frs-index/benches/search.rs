//! Exact-search benchmark of one 100,000-face, 128-d face set on one core (`cargo bench -p frs-index`).
//!
//! Guards the targets: p50 ≤ 5 ms unfiltered and ≤ 10 ms with a ~1 % filter, memory ≤ 1.3 × the
//! raw feature bytes plus the custom fields. Prints, for a uniform-random set and a clustered one
//! (10,000 identities × 10 noisy samples, closer to real faces): query latency percentiles of each
//! dot-product kernel side by side, heap bytes by part, RSS growth, insert throughput and the time to
//! build the set with `reserve` (a proxy for loading at restart). Plain `Instant`, no harness.

use std::hint::black_box;
use std::time::{Duration, Instant};

use frs_index::{
    FaceEntry, FaceId, FaceSetIndex, FieldValue, FieldValues, Filter, Kernel, Schema, SearchParams, SortKey,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use common::{gaussian, normalise, random_unit};

mod common;

const FACES: usize = 100_000;
const DIM: usize = 128;
const QUERIES: usize = 200;
const IDENTITIES: usize = 10_000;

/// Set in the child processes that measure RSS (see [`rss_child`]).
const RSS_CHILD: &str = "FRS_INDEX_BENCH_RSS";

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too, so keep that run short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let faces = if quick { 2_000 } else { FACES };
    let queries = if quick { 10 } else { QUERIES };
    if let Ok(mode) = std::env::var(RSS_CHILD) {
        rss_child(&mode, faces);
        return;
    }
    println!("frs-index search benchmark: {faces} faces x {DIM} dims, {queries} queries, 1 thread");
    println!("kernels available: {:?}", Kernel::available().iter().map(|k| k.name()).collect::<Vec<_>>());
    let schema = bench_schema();
    rss_report(faces);

    for clustered in [false, true] {
        let label = if clustered { "clustered (10,000 identities x 10 samples)" } else { "uniform random" };
        println!("\n== {label} ==");
        let mut rng = StdRng::seed_from_u64(if clustered { 2 } else { 1 });
        let data = Data::generate(&mut rng, faces, clustered);
        let query_vectors: Vec<Vec<f32>> = (0..queries).map(|_| data.query(&mut rng, clustered)).collect();

        let (index, insert) = build(&schema, &data, false);
        let (rebuilt, with_reserve) = build(&schema, &data, true);
        let reserved = rebuilt.heap_usage();
        drop(rebuilt);
        println!(
            "insert: {:.0} faces/s ({:.0} ms for {faces}); build with reserve (restart proxy): {:.0} ms",
            faces as f64 / insert.as_secs_f64(),
            ms(insert),
            ms(with_reserve)
        );

        let raw = faces * DIM * 4;
        let usage = index.heap_usage();
        let fields = usage.field_values + usage.columns;
        println!(
            "heap: {:.1} MB = {:.3} x raw features ({:.1} MB); without custom fields (values + columns) {:.3} x",
            mb(usage.total()),
            usage.total() as f64 / raw as f64,
            mb(raw),
            (usage.total() - fields) as f64 / raw as f64
        );
        println!(
            "  features {:.1} MB, entries {:.1} MB, id map {:.1} MB, field values {:.1} MB, columns {:.1} MB",
            mb(usage.features),
            mb(usage.entries),
            mb(usage.id_map),
            mb(usage.field_values),
            mb(usage.columns)
        );
        println!(
            "  built with reserve: {:.3} x, without custom fields {:.3} x",
            reserved.total() as f64 / raw as f64,
            (reserved.total() - reserved.field_values - reserved.columns) as f64 / raw as f64
        );

        let one_percent = Filter::parse("dept:7", &schema).expect("filter");
        let ten_percent = Filter::parse("dept:[0 TO 9]", &schema).expect("filter");
        let name =
            Filter::parse(&format!("name:{} || name:{}", data.names[3], data.names[5]), &schema).expect("filter");
        let timestamp = schema.field("timestamp").expect("declared").0;
        let sort = [SortKey { field: timestamp, descending: true }];
        let mut index = index;
        let cases: [(&str, usize, Option<&Filter>, &[SortKey]); 5] = [
            ("top 10, no filter", 10, None, &[]),
            ("top 10, dept:7 (1 %)", 10, Some(&one_percent), &[]),
            ("top 10, dept:[0 TO 9] (10 %)", 10, Some(&ten_percent), &[]),
            ("top 10, two names (~20 faces)", 10, Some(&name), &[]),
            ("top 100, no filter, sort timestamp", 100, None, &sort),
        ];
        println!("{:<38} {:>9} {:>8} {:>8} {:>8} {:>11}", "query", "kernel", "p50 ms", "p90 ms", "p99 ms", "scan GB/s");
        let kernels = Kernel::available();
        for (name, top_n, filter, sort) in cases {
            let params = SearchParams { top_n, min_cosine: -1.0, filter, sort };
            // Kernels take turns on every query, so background load hits them alike.
            let times = measure(&mut index, &kernels, &query_vectors, &params);
            for (kernel, times) in kernels.iter().zip(&times) {
                let p50 = percentile(times, 0.5);
                let gbs =
                    if filter.is_none() { format!("{:.1}", raw as f64 / p50.as_secs_f64() / 1e9) } else { "-".into() };
                println!(
                    "{:<38} {:>9} {:>8.3} {:>8.3} {:>8.3} {:>11}",
                    name,
                    kernel.name(),
                    ms(p50),
                    ms(percentile(times, 0.9)),
                    ms(percentile(times, 0.99)),
                    gbs
                );
            }
            if let [portable, .., fastest] = times.as_slice()
                && times.len() > 1
            {
                let ratio = percentile(portable, 0.5).as_secs_f64() / percentile(fastest, 0.5).as_secs_f64();
                println!(
                    "{:<38} p50 ratio {} / {} = {ratio:.2}",
                    "",
                    kernels[0].name(),
                    kernels[kernels.len() - 1].name()
                );
            }
        }
        if clustered {
            // Sanity: a query drawn from identity i finds that identity's samples first.
            index.set_kernel(Kernel::detect());
            let hits =
                index.search(&query_vectors[0], &SearchParams { top_n: 10, min_cosine: -1.0, filter: None, sort: &[] });
            let (entry, _) = index.get(hits[0].face_id).expect("hit is present");
            println!("sanity: best hit cosine {:.3}, from image {}", hits[0].cosine, entry.external_image_id);
        }
    }
}

fn bench_schema() -> Schema {
    Schema::parse(&serde_json::json!({
        "dept": {"type": "integer"}, "timestamp": {"type": "long"}, "name": {"type": "string"}
    }))
    .expect("schema")
}

/// RSS growth of building the uniform set, each variant in a fresh process (this benchmark re-run
/// with [`RSS_CHILD`] set), so the allocator has no freed memory to reuse and its overhead counts.
fn rss_report(faces: usize) {
    let raw = faces * DIM * 4;
    println!("\nRSS growth while building (fresh process each, allocator overhead included):");
    for mode in ["fields", "fields+reserve", "no-fields", "no-fields+reserve"] {
        let output = std::env::current_exe().and_then(|exe| {
            std::process::Command::new(exe).args(std::env::args().skip(1)).env(RSS_CHILD, mode).output()
        });
        let growth = output.ok().and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines().find_map(|l| l.strip_prefix("rss_growth_bytes=")?.trim().parse::<usize>().ok())
        });
        match growth {
            Some(bytes) => {
                println!("  {mode:<18} {:>6.1} MB = {:.3} x raw features", mb(bytes), bytes as f64 / raw as f64)
            }
            None => println!("  {mode:<18} unavailable (no /proc/self/statm?)"),
        }
    }
}

/// The child side of [`rss_report`]: builds one uniform set and prints `rss_growth_bytes=N`.
fn rss_child(mode: &str, faces: usize) {
    let schema = if mode.starts_with("no-fields") { Schema::empty() } else { bench_schema() };
    let mut rng = StdRng::seed_from_u64(1);
    let data = Data::generate(&mut rng, faces, false);
    // Entries are made after the first reading, so their strings and value vectors count.
    let Some(before) = rss_bytes() else { return };
    let mut index = FaceSetIndex::new(schema.clone(), DIM);
    if mode.ends_with("+reserve") {
        index.reserve(faces);
    }
    for (i, feature) in data.features.chunks_exact(DIM).enumerate() {
        index.insert(data.entry(i, &schema), feature).expect("insert");
    }
    let Some(after) = rss_bytes() else { return };
    black_box(&index);
    println!("rss_growth_bytes={}", after.saturating_sub(before));
}

/// Pre-generated faces: features and what each entry holds, so timing covers only the index.
struct Data {
    faces: Vec<(FaceId, i64, i64)>,
    features: Vec<f32>,
    centres: Vec<f32>,
    names: Vec<String>,
}

impl Data {
    fn generate(rng: &mut StdRng, faces: usize, clustered: bool) -> Data {
        let identities = if clustered { IDENTITIES.min(faces / 10).max(1) } else { 0 };
        let mut centres = Vec::with_capacity(identities * DIM);
        for _ in 0..identities {
            centres.extend(random_unit(rng, DIM));
        }
        let names: Vec<String> = (0..faces / 10 + 1).map(|i| format!("person_{i}")).collect();
        let mut features = Vec::with_capacity(faces * DIM);
        let mut rows = Vec::with_capacity(faces);
        for i in 0..faces {
            if clustered {
                features.extend(noisy(rng, &centres[(i / 10) * DIM..(i / 10 + 1) * DIM]));
            } else {
                features.extend(random_unit(rng, DIM));
            }
            rows.push((FaceId::random(), rng.random_range(0..100), 1_600_000_000 + rng.random_range(0..100_000_000)));
        }
        Data { faces: rows, features, centres, names }
    }

    /// The entry of face `i`: external image id `img-<i/2>` (two faces per image), `dept` uniform in
    /// 0..100, `timestamp`, and `name` shared by the ten samples of an identity. No values when the
    /// schema is empty.
    fn entry(&self, i: usize, schema: &Schema) -> FaceEntry {
        let (face_id, dept, timestamp) = self.faces[i];
        let mut fields = vec![None; schema.len()];
        if !schema.is_empty() {
            fields[field(schema, "dept")] = Some(FieldValue::Integer(dept));
            fields[field(schema, "timestamp")] = Some(FieldValue::Integer(timestamp));
            fields[field(schema, "name")] = Some(FieldValue::String(self.names[i / 10].as_str().into()));
        }
        FaceEntry {
            face_id,
            external_image_id: format!("img-{:08}", i / 2).into(),
            bbox: [10, 20, 110, 137],
            fields: FieldValues(fields),
        }
    }

    fn query(&self, rng: &mut StdRng, clustered: bool) -> Vec<f32> {
        if clustered {
            let identity = rng.random_range(0..self.centres.len() / DIM);
            noisy(rng, &self.centres[identity * DIM..(identity + 1) * DIM])
        } else {
            random_unit(rng, DIM)
        }
    }
}

fn field(schema: &Schema, name: &str) -> usize {
    schema.field(name).expect("declared").0
}

fn build(schema: &Schema, data: &Data, reserve: bool) -> (FaceSetIndex, Duration) {
    let entries: Vec<FaceEntry> = (0..data.faces.len()).map(|i| data.entry(i, schema)).collect();
    let started = Instant::now();
    let mut index = FaceSetIndex::new(schema.clone(), DIM);
    if reserve {
        index.reserve(entries.len());
    }
    for (entry, feature) in entries.into_iter().zip(data.features.chunks_exact(DIM)) {
        index.insert(entry, feature).expect("insert");
    }
    (index, started.elapsed())
}

/// Sorted latencies of each kernel over the queries, the kernels taking turns on each query.
fn measure(
    index: &mut FaceSetIndex,
    kernels: &[Kernel],
    queries: &[Vec<f32>],
    params: &SearchParams<'_>,
) -> Vec<Vec<Duration>> {
    let mut times = vec![Vec::with_capacity(queries.len()); kernels.len()];
    for (i, query) in queries.iter().enumerate() {
        for (k, &kernel) in kernels.iter().enumerate() {
            index.set_kernel(kernel);
            if i < 3 {
                black_box(index.search(query, params)); // warm-up
            }
            let started = Instant::now();
            black_box(index.search(black_box(query), params));
            times[k].push(started.elapsed());
        }
    }
    times.iter_mut().for_each(|t| t.sort());
    times
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A sample of an identity: its centre plus noise of about the centre's own length, so same-identity
/// cosines sit around 0.7 and different-identity ones around 0, as with real face features.
fn noisy(rng: &mut StdRng, centre: &[f32]) -> Vec<f32> {
    let sigma = 0.8 / (DIM as f32).sqrt();
    normalise(centre.iter().map(|c| c + sigma * gaussian(rng)).collect())
}

/// Resident set size from `/proc/self/statm` (Linux).
fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}
