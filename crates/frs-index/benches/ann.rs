//! Approximate-search benchmark of one large face set on one core (`cargo bench -p frs-index --bench ann`).
//!
//! Synthetic SFace-like features (calibrated: see `calibrate`), a set of `FRS_ANN_N` faces (default
//! 1,000,000), 1,000 probes. Prints, per section (`FRS_ANN_SECTIONS`, comma-separated, default all):
//! - `calibrate`: genuine and impostor cosine statistics of the generator against LFW's (docs/similarity.md);
//! - `recall`: graph build time, then recall@10 against exact search and latency percentiles for each
//!   `ef_search` (`FRS_ANN_EF`), unfiltered and with filters matching 10 % and 1 % of the set, for each
//!   precision (`FRS_ANN_PRECISION`: f32,f16,i8), with the score error of f16/i8 against f32 cosines;
//! - `memory`: heap bytes per face by part, and RSS growth;
//! - `restart`: saving the graph, then a fresh index: bulk insert (deferred graph) + graph load;
//! - `threshold`: exact vs graph latency and recall at sizes up to `FRS_ANN_N` (the `exact_below` choice);
//! - `filters`: graph vs exact scan at filter selectivities 0.5–50 % (the `graph_min_permille` choice);
//! - `writes`: insert/remove latency at full size, search latency while a writer inserts and removes
//!   behind an `RwLock` (as `frs-service` holds the index), compaction time and recall after it.
//!
//! `FRS_ANN_EXPORT=path` writes the vectors, probes, `dept` values and exact top-10s for
//! `scripts/bench_ann.py` (FAISS, hnswlib, usearch side by side). Graphs are cached in
//! `FRS_ANN_CACHE` (default `target/ann-cache`) by size, seed and settings, so a re-run skips the build.
//! `cargo test --benches` runs a 4,000-face version of every section.

use std::collections::HashSet;
use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use frs_index::{
    AnnSettings, FaceEntry, FaceId, FaceSetIndex, FieldValue, FieldValues, Filter, Hit, IndexSettings, Precision,
    Schema, SearchParams, SearchPath,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use common::{gaussian, normalise, random_unit};

mod common;

const DIM: usize = 128;
/// Weight of the direction all faces share (impostor cosines average ~0.09, as LFW's).
const COMMON: f32 = 0.42;
/// Noise of one photo around its identity (same-person cosines ~0.6).
const NOISE: f32 = 0.885;

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = env_usize("FRS_ANN_N", if quick { 4_000 } else { 1_000_000 });
    let queries = env_usize("FRS_ANN_QUERIES", if quick { 50 } else { 1_000 });
    let m = env_usize("FRS_ANN_M", 16);
    let ef_construction = env_usize("FRS_ANN_EFC", 100);
    let threads = env_usize("FRS_ANN_THREADS", 2);
    let efs: Vec<usize> = env_list("FRS_ANN_EF", "16,32,48,64,96,128,192,256");
    let filter_efs: Vec<usize> = env_list("FRS_ANN_FILTER_EF", "32,96,256");
    let precisions: Vec<Precision> = env_list::<String>("FRS_ANN_PRECISION", "f32,f16,i8")
        .iter()
        .map(|p| match p.as_str() {
            "f16" => Precision::F16,
            "i8" => Precision::I8,
            _ => Precision::F32,
        })
        .collect();
    let sections: Vec<String> =
        env_list("FRS_ANN_SECTIONS", "calibrate,recall,memory,restart,threshold,filters,writes");
    let has = |s: &str| sections.iter().any(|x| x == s);
    println!(
        "frs-index ANN benchmark: {n} faces x {DIM} dims, {queries} probes, m {m}, ef_construction {ef_construction}, \
         build threads {threads}, search on 1 thread"
    );

    let started = Instant::now();
    let data = Data::generate(n, queries, 7);
    println!("generated in {:.1} s ({} identities)", started.elapsed().as_secs_f64(), data.identities);
    if has("calibrate") {
        calibrate(&data);
    }
    let schema = schema();
    let filters = [
        ("no filter", None),
        ("dept:[0 TO 9] (10 %)", Some(Filter::parse("dept:[0 TO 9]", &schema).expect("filter"))),
        ("dept:7 (1 %)", Some(Filter::parse("dept:7", &schema).expect("filter"))),
    ];
    let ann = AnnSettings { m, ef_construction, ..AnnSettings::default() };
    let mut truth: Option<Vec<Vec<Vec<Hit>>>> = None;
    if sections == ["layout"] {
        // Heap per face of each precision with the graph's arrays allocated but not linked (the
        // upper layers, ~1 node in m, are missing: see `memory` for a built graph).
        for &precision in &precisions {
            let mut index =
                FaceSetIndex::with_settings(schema.clone(), DIM, IndexSettings { precision, ann: Some(ann) });
            index.reserve(data.len());
            index.defer_graph();
            for i in 0..data.len() {
                index.insert(data.entry(i), data.feature(i)).expect("insert");
            }
            print!("{} (graph arrays, not linked): ", precision.name());
            memory(&index, data.len());
        }
        return;
    }
    if sections == ["export"] {
        // Only the comparison file: exact top-10s on the f32 set, no graph.
        let mut exact = build_exact(&data, &schema);
        let t: Vec<Vec<Vec<Hit>>> = filters
            .iter()
            .map(|(_, f)| data.queries.iter().map(|q| exact_search(&mut exact, q, 10, f.as_ref())).collect())
            .collect();
        let path = std::env::var("FRS_ANN_EXPORT").unwrap_or_else(|_| "ann-export.bin".into());
        export(&path, &data, &t);
        return;
    }

    for (p, &precision) in precisions.iter().enumerate() {
        let settings = IndexSettings { precision, ann: Some(ann) };
        let need_index = has("recall") || has("memory") || has("restart") || has("writes") || has("filters");
        if !need_index {
            break;
        }
        println!("\n== precision {} ==", precision.name());
        let (mut index, build) = build_index(&data, &schema, settings, threads);
        if let Some(build) = build {
            println!(
                "graph build: {:.1} s on {threads} threads ({:.0} faces/s)",
                build.as_secs_f64(),
                n as f64 / build.as_secs_f64()
            );
        }
        if truth.is_none() {
            // Exact top-10s over f32 features, the reference of every precision.
            let mut exact = if precision == Precision::F32 { None } else { Some(build_exact(&data, &schema)) };
            let reference = exact.as_mut().unwrap_or(&mut index);
            let started = Instant::now();
            let t: Vec<Vec<Vec<Hit>>> = filters
                .iter()
                .map(|(_, f)| data.queries.iter().map(|q| exact_search(reference, q, 10, f.as_ref())).collect())
                .collect();
            println!("exact reference top-10s in {:.1} s", started.elapsed().as_secs_f64());
            if let Ok(path) = std::env::var("FRS_ANN_EXPORT") {
                export(&path, &data, &t);
            }
            truth = Some(t);
        }
        let truth = truth.as_deref().unwrap_or_default();
        if has("recall") {
            recall(&mut index, &data, &filters, truth, &efs, &filter_efs, precision);
        }
        if p == 0 {
            if has("threshold") {
                threshold(&data, &schema, settings, threads, quick);
            }
            if has("filters") {
                selectivity(&mut index, &data, &schema);
            }
        }
        if has("memory") {
            memory(&index, n);
        }
        if has("restart") {
            restart(&index, &data, &schema, settings);
        }
        if has("writes") && p == 0 {
            writes(index, &data, &schema, truth);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Synthetic faces

/// `n` gallery faces of identities with 1–9 photos each, and probes: 90 % a new photo of a gallery
/// identity, 10 % a stranger.
struct Data {
    features: Vec<f32>,
    ids: Vec<FaceId>,
    depts: Vec<u8>,
    identity_of: Vec<u32>,
    identities: usize,
    queries: Vec<Vec<f32>>,
    /// Gallery identity of each probe (`u32::MAX` for strangers).
    query_identity: Vec<u32>,
    common: Vec<f32>,
    centres: Vec<f32>,
}

impl Data {
    fn generate(n: usize, queries: usize, seed: u64) -> Data {
        let mut rng = StdRng::seed_from_u64(seed);
        let common = random_unit(&mut rng, DIM);
        let mut centres = Vec::new();
        let mut features = Vec::with_capacity(n * DIM);
        let mut identity_of = Vec::with_capacity(n);
        let mut identities = 0;
        while identity_of.len() < n {
            let centre = random_unit(&mut rng, DIM);
            let photos = rng.random_range(1..=9usize).min(n - identity_of.len());
            for _ in 0..photos {
                features.extend(photo(&mut rng, &common, &centre));
                identity_of.push(identities as u32);
            }
            centres.extend(centre);
            identities += 1;
        }
        // Ids from the seeded generator, so a cached graph file matches the next run's faces.
        const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut seen = HashSet::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        while ids.len() < n {
            let text: String = (0..8).map(|_| char::from(ALPHABET[rng.random_range(0..62usize)])).collect();
            let id = FaceId::parse(&text).expect("alphanumeric");
            if seen.insert(id) {
                ids.push(id);
            }
        }
        let depts = (0..n).map(|_| rng.random_range(0..100u8)).collect();
        let mut probes = Vec::with_capacity(queries);
        let mut query_identity = Vec::with_capacity(queries);
        for _ in 0..queries {
            if rng.random_range(0..10) == 0 {
                let stranger = random_unit(&mut rng, DIM);
                probes.push(photo(&mut rng, &common, &stranger));
                query_identity.push(u32::MAX);
            } else {
                let identity = rng.random_range(0..identities);
                probes.push(photo(&mut rng, &common, &centres[identity * DIM..(identity + 1) * DIM]));
                query_identity.push(identity as u32);
            }
        }
        Data { features, ids, depts, identity_of, identities, queries: probes, query_identity, common, centres }
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn feature(&self, i: usize) -> &[f32] {
        &self.features[i * DIM..(i + 1) * DIM]
    }

    fn entry(&self, i: usize) -> FaceEntry {
        FaceEntry {
            face_id: self.ids[i],
            external_image_id: format!("img-{:08}", i / 2).into(),
            bbox: [10, 20, 110, 137],
            fields: FieldValues(vec![Some(FieldValue::Integer(i64::from(self.depts[i])))]),
        }
    }
}

fn schema() -> Schema {
    Schema::parse(&serde_json::json!({"dept": {"type": "integer"}})).expect("schema")
}

/// One photo: `normalise(COMMON·common + centre + NOISE·ε)`, ε ~ N(0, I/DIM).
fn photo(rng: &mut StdRng, common: &[f32], centre: &[f32]) -> Vec<f32> {
    let sigma = NOISE / (DIM as f32).sqrt();
    normalise(common.iter().zip(centre).map(|(u, c)| COMMON * u + c + sigma * gaussian(rng)).collect())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Genuine and impostor cosine statistics, and the impostor cosine at LFW's FAR points.
fn calibrate(data: &Data) {
    let mut rng = StdRng::seed_from_u64(99);
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for _ in 0..20_000 {
        let c = rng.random_range(0..data.identities);
        let centre = &data.centres[c * DIM..(c + 1) * DIM];
        let a = photo(&mut rng, &data.common, centre);
        let b = photo(&mut rng, &data.common, centre);
        genuine.push(dot(&a, &b));
    }
    for _ in 0..2_000_000 {
        let (i, j) = (rng.random_range(0..data.len()), rng.random_range(0..data.len()));
        if data.identity_of[i] != data.identity_of[j] {
            impostor.push(dot(data.feature(i), data.feature(j)));
        }
    }
    let stats = |v: &mut Vec<f32>| {
        v.sort_by(f32::total_cmp);
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / v.len() as f64;
        (mean, var.sqrt())
    };
    let (gm, gs) = stats(&mut genuine);
    let (im, is) = stats(&mut impostor);
    let quantile = |v: &[f32], far: f64| v[((1.0 - far) * (v.len() - 1) as f64) as usize];
    println!("\n== calibration (generator: COMMON {COMMON}, NOISE {NOISE}) ==");
    println!("same-person cosine: mean {gm:.3}, sd {gs:.3}; 5th percentile {:.3}", genuine[genuine.len() / 20]);
    println!("impostor cosine:    mean {im:.3}, sd {is:.3} ({} pairs)", impostor.len());
    println!("impostor cosine at FAR   1e-2  1e-3  1e-4  1e-5");
    println!(
        "  synthetic              {:.3} {:.3} {:.3} {:.3}",
        quantile(&impostor, 1e-2),
        quantile(&impostor, 1e-3),
        quantile(&impostor, 1e-4),
        quantile(&impostor, 1e-5)
    );
    println!("  LFW (docs/similarity)  0.294 0.362 0.416 0.465");
    let tar = genuine.iter().filter(|&&c| c >= 0.4162).count() as f64 / genuine.len() as f64;
    println!("TAR at LFW's FAR-1e-4 cosine 0.416: {:.2} % (LFW: 98.92 %)", 100.0 * tar);
}

// ---------------------------------------------------------------------------------------------------
// Building

fn cache_path(n: usize, settings: IndexSettings) -> Option<PathBuf> {
    let ann = settings.ann?;
    let dir = PathBuf::from(
        std::env::var("FRS_ANN_CACHE")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/ann-cache").to_string()),
    );
    std::fs::create_dir_all(&dir).ok()?;
    // One graph per size and settings, whatever the precision: f16/i8 runs search the graph the f32
    // run built (the file holds links and face ids only).
    Some(dir.join(format!("n{n}-m{}-efc{}-v{}.graph", ann.m, ann.ef_construction, frs_index::GRAPH_FILE_VERSION)))
}

/// The set with its graph (loaded from the cache when there, else built and cached) and the
/// build time if it was built.
fn build_index(
    data: &Data,
    schema: &Schema,
    settings: IndexSettings,
    threads: usize,
) -> (FaceSetIndex, Option<Duration>) {
    let mut index = FaceSetIndex::with_settings(schema.clone(), DIM, settings);
    index.reserve(data.len());
    index.defer_graph();
    for i in 0..data.len() {
        index.insert(data.entry(i), data.feature(i)).expect("insert");
    }
    let cache = cache_path(data.len(), settings);
    let quick_run = data.len() < 10_000;
    if let Some(path) = cache.as_ref().filter(|_| !quick_run)
        && let Ok(file) = File::open(path)
    {
        match index.load_graph(std::io::BufReader::new(file)) {
            Ok(load) if load.pending == 0 => {
                println!("graph loaded from {}", path.display());
                return (index, None);
            }
            Ok(load) => println!("cached graph {} misses {} faces: rebuilding", path.display(), load.pending),
            Err(e) => println!("cached graph {} refused ({e}): rebuilding", path.display()),
        }
    }
    let started = Instant::now();
    index.build_graph(threads);
    let build = started.elapsed();
    if let Some(path) = cache.filter(|_| !quick_run)
        && let Ok(file) = File::create(&path)
    {
        let _ = index.save_graph(BufWriter::new(file));
    }
    (index, Some(build))
}

/// The f32 set without a graph: the exact reference.
fn build_exact(data: &Data, schema: &Schema) -> FaceSetIndex {
    let mut index = FaceSetIndex::new(schema.clone(), DIM);
    index.reserve(data.len());
    for i in 0..data.len() {
        index.insert(data.entry(i), data.feature(i)).expect("insert");
    }
    index
}

/// Exact top-n (an index with a graph is searched with `exact_below: usize::MAX`, then restored).
fn exact_search(index: &mut FaceSetIndex, query: &[f32], top_n: usize, filter: Option<&Filter>) -> Vec<Hit> {
    let params = SearchParams { top_n, min_cosine: -1.0, filter, sort: &[] };
    let before = index.settings().ann;
    if let Some(ann) = before {
        index.set_ann_settings(AnnSettings { exact_below: usize::MAX, ..ann });
    }
    assert_eq!(index.search_path(filter), SearchPath::Exact);
    let hits = index.search(query, &params);
    if let Some(ann) = before {
        index.set_ann_settings(ann);
    }
    hits
}

// ---------------------------------------------------------------------------------------------------
// Sections

fn with_search(index: &mut FaceSetIndex, ef: usize, exact_below: usize, permille: u32) {
    let Some(ann) = index.settings().ann else { return };
    index.set_ann_settings(AnnSettings { ef_search: ef, exact_below, graph_min_permille: permille, ..ann });
}

/// Cosine of similarity 0.80 (FAR ~1e-2) and 0.93 (FAR ~1e-4, FRS's advice) in docs/similarity.md.
const COS_080: f32 = 0.30;
const COS_093: f32 = 0.42;

/// p50, p90, p99 in ms, recall@10 and the worst |score - f32 cosine| of one configuration.
struct Run {
    times: Vec<Duration>,
    recall: f64,
    stranger_recall: f64,
    /// Recall of the exact top-10 faces at or above similarity 0.80 / 0.93 (the matches a caller
    /// with that threshold receives).
    recall_080: f64,
    recall_093: f64,
    /// Recall of the exact top-10 faces of the probe's own identity.
    recall_same: f64,
    score_error: f64,
}

fn run(index: &FaceSetIndex, data: &Data, filter: Option<&Filter>, truth: &[Vec<Hit>]) -> Run {
    let params = SearchParams { top_n: 10, min_cosine: -1.0, filter, sort: &[] };
    for q in data.queries.iter().take(10) {
        black_box(index.search(q, &params));
    }
    let mut times = Vec::with_capacity(data.queries.len());
    let (mut found, mut total, mut s_found, mut s_total) = (0usize, 0usize, 0usize, 0usize);
    let (mut f080, mut t080, mut f093, mut t093) = (0usize, 0usize, 0usize, 0usize);
    let (mut f_same, mut t_same) = (0usize, 0usize);
    let slots = slot_map(data);
    let mut score_error = 0.0f64;
    let slot_of: std::collections::HashMap<FaceId, usize> =
        if index.settings().precision == Precision::F32 { Default::default() } else { slot_map(data) };
    for (i, q) in data.queries.iter().enumerate() {
        let started = Instant::now();
        let hits = index.search(black_box(q), &params);
        times.push(started.elapsed());
        let want: HashSet<FaceId> = truth[i].iter().map(|h| h.face_id).collect();
        let got = hits.iter().filter(|h| want.contains(&h.face_id)).count();
        found += got;
        total += want.len();
        let returned: HashSet<FaceId> = hits.iter().map(|h| h.face_id).collect();
        for h in &truth[i] {
            if h.cosine >= COS_080 {
                t080 += 1;
                f080 += usize::from(returned.contains(&h.face_id));
            }
            if h.cosine >= COS_093 {
                t093 += 1;
                f093 += usize::from(returned.contains(&h.face_id));
            }
            if data.query_identity[i] != u32::MAX && data.identity_of[slots[&h.face_id]] == data.query_identity[i] {
                t_same += 1;
                f_same += usize::from(returned.contains(&h.face_id));
            }
        }
        if data.query_identity[i] == u32::MAX {
            s_found += got;
            s_total += want.len();
        }
        for h in &hits {
            if let Some(&slot) = slot_of.get(&h.face_id) {
                let exact = data.feature(slot).iter().zip(q).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>();
                score_error = score_error.max((f64::from(h.cosine) - exact).abs());
            }
        }
    }
    times.sort();
    Run {
        times,
        recall: found as f64 / total.max(1) as f64,
        stranger_recall: s_found as f64 / s_total.max(1) as f64,
        recall_080: f080 as f64 / t080.max(1) as f64,
        recall_093: f093 as f64 / t093.max(1) as f64,
        recall_same: f_same as f64 / t_same.max(1) as f64,
        score_error,
    }
}

fn slot_map(data: &Data) -> std::collections::HashMap<FaceId, usize> {
    data.ids.iter().enumerate().map(|(i, id)| (*id, i)).collect()
}

fn recall(
    index: &mut FaceSetIndex,
    data: &Data,
    filters: &[(&str, Option<Filter>)],
    truth: &[Vec<Vec<Hit>>],
    efs: &[usize],
    filter_efs: &[usize],
    precision: Precision,
) {
    println!(
        "{:<22} {:>5} {:>6} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>8} {:>10}",
        "filter",
        "ef",
        "path",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "recall@10",
        "strangers",
        "R>=0.80",
        "R>=0.93",
        "R same",
        "max |err|"
    );
    let defaults = AnnSettings::default();
    for (f, (name, filter)) in filters.iter().enumerate() {
        // Exact scan of the same index (the baseline), then search as configured (default thresholds:
        // the path `search` picks) at each ef.
        with_search(index, 64, usize::MAX, 0);
        let exact = run(index, data, filter.as_ref(), &truth[f]);
        print_run(name, "-", "exact", &exact, precision);
        for &ef in if filter.is_some() { filter_efs } else { efs } {
            with_search(index, ef, defaults.exact_below, defaults.graph_min_permille);
            let path = index.search_path(filter.as_ref());
            if path == SearchPath::Exact {
                println!("{name:<22} {:>5} {:>6} (the filter's count picks the exact scan above)", "any", "auto");
                break;
            }
            let r = run(index, data, filter.as_ref(), &truth[f]);
            print_run(name, &ef.to_string(), "graph", &r, precision);
        }
    }
    with_search(index, AnnSettings::default().ef_search, AnnSettings::default().exact_below, 50);
}

fn print_run(name: &str, ef: &str, path: &str, r: &Run, precision: Precision) {
    let err = if precision == Precision::F32 { "0 (f32)".to_string() } else { format!("{:.1e}", r.score_error) };
    println!(
        "{:<22} {:>5} {:>6} {:>8.3} {:>8.3} {:>8.3} {:>9.4} {:>9.4} {:>8.4} {:>8.4} {:>8.4} {:>10}",
        name,
        ef,
        path,
        ms(pct(&r.times, 0.5)),
        ms(pct(&r.times, 0.9)),
        ms(pct(&r.times, 0.99)),
        r.recall,
        r.stranger_recall,
        r.recall_080,
        r.recall_093,
        r.recall_same,
        err
    );
}

fn threshold(data: &Data, schema: &Schema, settings: IndexSettings, threads: usize, quick: bool) {
    println!("\n-- exact vs graph by set size (the exact_below choice; graph at the default ef {}) --", 96);
    println!("{:>9} {:>12} {:>12} {:>10} {:>10}", "faces", "exact p50", "graph p50", "recall@10", "build s");
    let sizes: Vec<usize> = if quick { vec![1_000, 4_000] } else { env_list("FRS_ANN_SIZES", "50000,100000") };
    for size in sizes.into_iter().filter(|&s| s <= data.len()) {
        let sub = Data::subset(data, size);
        let (mut index, build) = build_index(&sub, schema, settings, threads);
        with_search(&mut index, 64, usize::MAX, 0);
        let truth: Vec<Vec<Hit>> = sub.queries.iter().map(|q| exact_search(&mut index, q, 10, None)).collect();
        let exact = run(&index, &sub, None, &truth);
        with_search(&mut index, 96, 0, 0);
        let graph = run(&index, &sub, None, &truth);
        println!(
            "{:>9} {:>9.3} ms {:>9.3} ms {:>10.4} {:>10}",
            size,
            ms(pct(&exact.times, 0.5)),
            ms(pct(&graph.times, 0.5)),
            graph.recall,
            build.map_or("cached".into(), |b| format!("{:.1}", b.as_secs_f64()))
        );
    }
}

impl Data {
    /// The same faces with only the first `queries` probes.
    fn with_queries(&self, queries: usize) -> Data {
        let mut d = Data::subset(self, self.len());
        d.queries.truncate(queries);
        d.query_identity.truncate(queries);
        d
    }

    /// The first `n` faces, same probes.
    fn subset(data: &Data, n: usize) -> Data {
        Data {
            features: data.features[..n * DIM].to_vec(),
            ids: data.ids[..n].to_vec(),
            depts: data.depts[..n].to_vec(),
            identity_of: data.identity_of[..n].to_vec(),
            identities: data.identity_of.get(n.saturating_sub(1)).map_or(0, |&i| i as usize + 1),
            queries: data.queries.clone(),
            query_identity: data.query_identity.clone(),
            common: data.common.clone(),
            centres: data.centres.clone(),
        }
    }
}

fn selectivity(index: &mut FaceSetIndex, data: &Data, schema: &Schema) {
    println!("\n-- filtered: graph vs exact scan of the matching faces (the graph_min_permille choice) --");
    println!(
        "{:<24} {:>9} {:>12} {:>12} {:>10} {:>9}",
        "filter", "matching", "exact p50", "graph p50", "recall@10", "chosen"
    );
    for (expr, label) in [
        ("dept:[0 TO 49]", "50 %"),
        ("dept:[0 TO 19]", "20 %"),
        ("dept:[0 TO 9]", "10 %"),
        ("dept:[0 TO 4]", "5 %"),
        ("dept:[0 TO 1]", "2 %"),
        ("dept:7", "1 %"),
        ("dept:7 && face_id:AAAAAAAA || dept:[7 TO 7] && external_image_id:img-00000001 || dept:8", "1 % (complex)"),
    ] {
        let filter = Filter::parse(expr, schema).expect("filter");
        let matching = index.select(&filter).len();
        let data = &data.with_queries(200);
        with_search(index, 96, usize::MAX, 0);
        let truth: Vec<Vec<Hit>> = data.queries.iter().map(|q| exact_search(index, q, 10, Some(&filter))).collect();
        let exact = run(index, data, Some(&filter), &truth);
        with_search(index, 96, 0, 0);
        let graph = run(index, data, Some(&filter), &truth);
        with_search(index, 96, AnnSettings::default().exact_below, AnnSettings::default().graph_min_permille);
        let chosen = index.search_path(Some(&filter));
        println!(
            "{:<24} {:>9} {:>9.3} ms {:>9.3} ms {:>10.4} {:>9}",
            label,
            matching,
            ms(pct(&exact.times, 0.5)),
            ms(pct(&graph.times, 0.5)),
            graph.recall,
            format!("{chosen:?}")
        );
    }
}

fn memory(index: &FaceSetIndex, n: usize) {
    let u = index.heap_usage();
    let graph = index.graph_heap_bytes();
    let per = |b: usize| b as f64 / n as f64;
    println!(
        "heap per face: {:.0} B = vectors {:.0} + graph {:.0} + entries {:.0} + id map {:.0} + fields {:.0} (custom-field values + columns)",
        per(u.total()),
        per(u.features - graph),
        per(graph),
        per(u.entries),
        per(u.id_map),
        per(u.field_values + u.columns)
    );
    println!(
        "  at 10,000,000 faces (linear): {:.2} GB total, {:.2} GB vectors + graph",
        per(u.total()) * 1e7 / 1e9,
        per(u.features) * 1e7 / 1e9
    );
}

fn restart(index: &FaceSetIndex, data: &Data, schema: &Schema, settings: IndexSettings) {
    let dir = std::env::temp_dir().join(format!("frs-ann-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("set.graph");
    let started = Instant::now();
    index.save_graph(BufWriter::new(File::create(&path).expect("create"))).expect("save");
    let save = started.elapsed();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    // A restart: faces streamed in (as FaceLibrary::load does from the store), then the graph file.
    let entries: Vec<FaceEntry> = (0..data.len()).map(|i| data.entry(i)).collect();
    let started = Instant::now();
    let mut fresh = FaceSetIndex::with_settings(schema.clone(), DIM, settings);
    fresh.reserve(data.len());
    fresh.defer_graph();
    for (i, entry) in entries.into_iter().enumerate() {
        fresh.insert(entry, data.feature(i)).expect("insert");
    }
    let inserted = started.elapsed();
    let load = fresh.load_graph(std::io::BufReader::new(File::open(&path).expect("open"))).expect("load");
    fresh.build_graph(1);
    let total = started.elapsed();
    let q = &data.queries[0];
    let params = SearchParams { top_n: 10, min_cosine: -1.0, filter: None, sort: &[] };
    assert_eq!(fresh.search(q, &params), index.search(q, &params), "same answers after the reload");
    println!(
        "restart: save {:.2} s ({:.0} MB, {:.0} B/face); reload {:.2} s = inserts (deferred graph) {:.2} s + graph file {:.2} s; {} attached, {} pending; same answers",
        save.as_secs_f64(),
        size as f64 / 1e6,
        size as f64 / data.len() as f64,
        total.as_secs_f64(),
        inserted.as_secs_f64(),
        (total - inserted).as_secs_f64(),
        load.attached,
        load.pending
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn writes(index: FaceSetIndex, data: &Data, schema: &Schema, truth: &[Vec<Vec<Hit>>]) {
    println!("\n-- writes at {} faces --", data.len());
    let mut index = index;
    with_search(&mut index, AnnSettings::default().ef_search, 0, 50);
    let extra = Data::generate(2_000, 0, 1234);
    let mut insert_times = Vec::new();
    for i in 0..1_000 {
        let started = Instant::now();
        index.insert(extra.entry(i), extra.feature(i)).expect("insert");
        insert_times.push(started.elapsed());
    }
    insert_times.sort();
    let mut remove_times = Vec::new();
    for i in 0..1_000 {
        let started = Instant::now();
        index.remove(extra.ids[i]);
        remove_times.push(started.elapsed());
    }
    remove_times.sort();
    println!(
        "insert (graph linking included): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; remove (tombstone): p50 {:.4} ms",
        ms(pct(&insert_times, 0.5)),
        ms(pct(&insert_times, 0.99)),
        ms(insert_times[insert_times.len() - 1]),
        ms(pct(&remove_times, 0.5))
    );

    // Searches on this thread while another inserts and removes continuously, behind one RwLock.
    let shared = RwLock::new(index);
    let params = SearchParams { top_n: 10, min_cosine: -1.0, filter: None, sort: &[] };
    let quiet: Vec<Duration> = {
        let guard = shared.read().expect("lock");
        let mut t: Vec<Duration> = data
            .queries
            .iter()
            .map(|q| {
                let s = Instant::now();
                black_box(guard.search(q, &params));
                s.elapsed()
            })
            .collect();
        t.sort();
        t
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (busy, written) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut written = 0usize;
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let k = 1_000 + i % 1_000;
                {
                    let mut w = shared.write().expect("lock");
                    w.insert(extra.entry(k), extra.feature(k)).ok();
                }
                {
                    let mut w = shared.write().expect("lock");
                    w.remove(extra.ids[k]);
                }
                written += 2;
                i += 1;
            }
            written
        });
        let mut t = Vec::new();
        for q in &data.queries {
            let s = Instant::now();
            black_box(shared.read().expect("lock").search(q, &params));
            t.push(s.elapsed());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        t.sort();
        (t, writer.join().expect("writer"))
    });
    let elapsed: Duration = busy.iter().sum();
    println!(
        "search p50/p99 alone {:.3}/{:.3} ms; with a writer inserting+removing ({:.0} writes/s) {:.3}/{:.3} ms",
        ms(pct(&quiet, 0.5)),
        ms(pct(&quiet, 0.99)),
        written as f64 / elapsed.as_secs_f64(),
        ms(pct(&busy, 0.5)),
        ms(pct(&busy, 0.99))
    );

    // Remove 10 % of the original faces, compact, and measure recall against the surviving truth.
    let mut index = shared.into_inner().expect("lock");
    let removed: HashSet<FaceId> = data.ids.iter().step_by(10).copied().collect();
    for id in &removed {
        index.remove(*id);
    }
    let params = SearchParams { top_n: 10, min_cosine: -1.0, filter: None, sort: &[] };
    let recall_now = |index: &FaceSetIndex| {
        let (mut found, mut total) = (0, 0);
        for (i, q) in data.queries.iter().enumerate() {
            // The reference: exact top-10 of the survivors.
            let survivors: Vec<FaceId> =
                truth[0][i].iter().map(|h| h.face_id).filter(|id| !removed.contains(id)).collect();
            let hits = index.search(q, &params);
            let got: HashSet<FaceId> = hits.iter().map(|h| h.face_id).collect();
            found += survivors.iter().filter(|id| got.contains(id)).count();
            total += survivors.len();
        }
        found as f64 / total.max(1) as f64
    };
    let with_tombstones = recall_now(&index);
    let started = Instant::now();
    index.compact();
    let compact = started.elapsed();
    let after = recall_now(&index);
    println!(
        "10 % removed: recall of the surviving exact top-10 {:.4} with tombstones; compact {:.2} s; {:.4} after",
        with_tombstones,
        compact.as_secs_f64(),
        after
    );
    let _ = schema;
}

// ---------------------------------------------------------------------------------------------------
// Export for scripts/bench_ann.py

/// Little-endian: magic "FRSANN01", n u32, dim u32, probes u32, k u32; n·dim f32 features; probes·dim
/// f32 probes; n u8 dept; then for each of the 3 filters (none, 10 %, 1 %) probes·k u32 exact top-k
/// row numbers (u32::MAX pads short lists); then n u32 identity of each face and probes u32 identity
/// of each probe (u32::MAX for strangers).
fn export(path: &str, data: &Data, truth: &[Vec<Vec<Hit>>]) {
    let slot = slot_map(data);
    let mut w = BufWriter::new(File::create(path).expect("export file"));
    let k = 10u32;
    w.write_all(b"FRSANN01").expect("write");
    for v in [data.len() as u32, DIM as u32, data.queries.len() as u32, k] {
        w.write_all(&v.to_le_bytes()).expect("write");
    }
    for x in &data.features {
        w.write_all(&x.to_le_bytes()).expect("write");
    }
    for q in &data.queries {
        for x in q {
            w.write_all(&x.to_le_bytes()).expect("write");
        }
    }
    w.write_all(&data.depts).expect("write");
    for per_filter in truth {
        for hits in per_filter {
            for i in 0..k as usize {
                let row = hits.get(i).map_or(u32::MAX, |h| slot[&h.face_id] as u32);
                w.write_all(&row.to_le_bytes()).expect("write");
            }
        }
    }
    for id in data.identity_of.iter().chain(&data.query_identity) {
        w.write_all(&id.to_le_bytes()).expect("write");
    }
    w.flush().expect("flush");
    println!("exported vectors, probes and exact top-10s to {path}");
}

// ---------------------------------------------------------------------------------------------------

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

fn env_list<T: std::str::FromStr>(name: &str, default: &str) -> Vec<T> {
    std::env::var(name).unwrap_or_else(|_| default.into()).split(',').filter_map(|s| s.trim().parse().ok()).collect()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted.get(((sorted.len().saturating_sub(1)) as f64 * p).round() as usize).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
