//! `frs bench-library`: the face library's targets, measured through the same `FaceLibrary` the
//! server uses. A store of N synthetic faces (clustered like real identities, with three custom
//! fields) is built in a temporary data directory, then the run prints:
//! - restart: `FaceLibrary::load` of the whole set with the `[index]` settings of the
//!   configuration (a set of at least `exact_below` faces makes its sign codes within the load),
//!   and the resident memory it adds, against the raw feature bytes;
//! - search: p50/p90/p99 of `search` by face id (top_n 10) with no filter, a 1 % and a 10 % filter,
//!   each labelled with how it is answered (sign codes or exact scan);
//! - adds: per real image, the inference alone (`Engine::face_features`) and a whole `add_faces`
//!   into the big set, interleaved in the same run; the ratio is what storage and bookkeeping add.
//!
//! `--exact` searches exactly whatever the set's size (no sign codes), for comparison.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use frs_index::{FaceId, SearchPath};
use frs_service::{AddFacesRequest, Caller, Engine, FaceLibrary, ImageInput, LibraryLimits, Probe, SearchRequest};
use frs_store::{FaceRow, FaceSetRow, Store};
use frs_vision::FEATURE_DIM;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::config::Config;

const PROJECT: &str = "bench";
const SET: &str = "bench";

/// `frs bench-library` arguments.
#[derive(Debug, clap::Args)]
pub struct BenchLibraryArgs {
    /// Faces in the benchmark set.
    #[arg(long, default_value_t = 100_000)]
    pub faces: usize,
    /// Samples per synthetic identity (features of one identity are noisy copies of one centre).
    #[arg(long, default_value_t = 10)]
    pub per_identity: usize,
    /// Queries per search variant.
    #[arg(long, default_value_t = 300)]
    pub queries: usize,
    /// Real images to add (every face of each is added); searched recursively.
    #[arg(long, default_value = "assets/images")]
    pub images: PathBuf,
    /// Passes over the images for the add measurement.
    #[arg(long, default_value_t = 3)]
    pub add_rounds: usize,
    /// Search the set exactly whatever its size (no sign codes; `[index] exact_below` ignored).
    #[arg(long)]
    pub exact: bool,
}

pub fn run(config: &Config, args: &BenchLibraryArgs) -> anyhow::Result<()> {
    ensure!(args.faces >= 1 && args.per_identity >= 1, "--faces and --per-identity must be positive");
    let dir = tempfile::Builder::new().prefix("frs-bench-library-").tempdir_in(".").context("temporary data dir")?;
    let probes = build_store(dir.path(), args)?;

    let mut engine_config = config.engine();
    engine_config.workers = 1;
    let engine = Arc::new(Engine::start(engine_config));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    // The models load first, so that the memory figure below is the library's alone.
    while !engine.ready() {
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut index = config.index.clone();
    if args.exact {
        index.exact_below = usize::MAX;
    }
    let mut load_times = Vec::new();
    let mut library = None;
    for _ in 0..3 {
        // The previous load is freed before the next is measured.
        drop(library.take());
        let store = Arc::new(Store::open(dir.path())?);
        let rss_before = rss_bytes();
        let started = Instant::now();
        let loaded = FaceLibrary::load_with_index(store, Arc::clone(&engine), LibraryLimits::default(), index.clone())?;
        load_times.push(started.elapsed());
        if let (Some(before), Some(after)) = (rss_before, rss_bytes())
            && load_times.len() == 1
        {
            let raw = args.faces * FEATURE_DIM * 4;
            println!(
                "memory: the load added {:.1} MB resident for {:.1} MB of raw features ({:.3}x, {:.0} B per face)",
                mb(after.saturating_sub(before)),
                mb(raw),
                after.saturating_sub(before) as f64 / raw as f64,
                after.saturating_sub(before) as f64 / args.faces as f64,
            );
        }
        library = Some(loaded);
    }
    let library = library.context("loaded")?;
    let heap = library.heap_usage();
    let raw = (args.faces * FEATURE_DIM * 4) as f64;
    let fields = heap.field_values + heap.columns;
    println!(
        "memory: index heap {:.1} MB = {:.3}x raw features ({:.3}x without the custom fields, which take {:.0} B per face; \
         sign codes {:.0} B per face)",
        mb(heap.total()),
        heap.total() as f64 / raw,
        (heap.total() - fields) as f64 / raw,
        fields as f64 / args.faces as f64,
        heap.codes as f64 / args.faces as f64,
    );
    let status = library.index_status(PROJECT, SET)?;
    load_times.sort();
    println!(
        "restart: FaceLibrary::load of {} faces{}: best {:.0} ms, median {:.0} ms",
        args.faces,
        if status.codes { ", sign codes made" } else { ", no sign codes" },
        ms(load_times[0]),
        ms(load_times[load_times.len() / 2])
    );

    runtime.block_on(async {
        for (label, filter) in
            [("no filter", None), ("filter 1 %", Some("dept:7")), ("filter 10 %", Some("dept:[0 TO 9]"))]
        {
            let mut times = Vec::with_capacity(args.queries);
            for probe in probes.iter().cycle().take(args.queries) {
                let request = SearchRequest {
                    probe: Probe::FaceId(probe.clone()),
                    top_n: Some(10),
                    threshold: None,
                    filter: filter.map(str::to_owned),
                    sort: None,
                    return_fields: None,
                };
                let started = Instant::now();
                let response = library.search(&Caller::unauthenticated(PROJECT), PROJECT, SET, request).await?;
                times.push(started.elapsed());
                ensure!(!response.faces.is_empty(), "a search found nothing");
            }
            let (p50, p90, p99) = percentiles(&mut times);
            let path = match library.search_path(PROJECT, SET, filter)? {
                SearchPath::Codes => "sign codes",
                SearchPath::Exact => "exact scan",
            };
            println!("search ({label}, {path}), top_n 10: p50 {p50:.2} ms, p90 {p90:.2} ms, p99 {p99:.2} ms");
        }
        measure_adds(&library, &engine, args).await
    })?;
    Ok(())
}

/// Writes the synthetic set; returns some face ids to search with.
fn build_store(dir: &std::path::Path, args: &BenchLibraryArgs) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    let store = Store::open(dir)?;
    let schema = r#"{"dept":{"type":"integer"},"timestamp":{"type":"long"},"name":{"type":"string"}}"#;
    let capacity = args.faces.div_ceil(10_000).max(1) as u32 * 10_000 + 10_000;
    let row = FaceSetRow {
        project_id: PROJECT.into(),
        name: SET.into(),
        id: FaceId::random().to_string(),
        capacity,
        schema_json: schema.into(),
        created_at: 0,
    };
    store.create_face_set(&row)?;
    let mut rng = StdRng::seed_from_u64(7);
    let mut centre = vec![0f32; FEATURE_DIM];
    let mut probes = Vec::new();
    let mut batch = Vec::with_capacity(1000);
    for i in 0..args.faces {
        if i % args.per_identity == 0 {
            fill_gaussian(&mut rng, &mut centre, 1.0);
        }
        let mut feature = vec![0f32; FEATURE_DIM];
        fill_gaussian(&mut rng, &mut feature, 0.6);
        feature.iter_mut().zip(&centre).for_each(|(f, c)| *f += c);
        normalise(&mut feature);
        let face_id = FaceId::random().to_string();
        if i % (args.faces / 100).max(1) == 0 {
            probes.push(face_id.clone());
        }
        let fields = format!(
            r#"{{"dept":{},"timestamp":{},"name":"person_{}"}}"#,
            rng.random_range(0..100),
            1_700_000_000 + i,
            i / args.per_identity
        );
        batch.push(FaceRow {
            face_id,
            external_image_id: format!("img{}", i / args.per_identity),
            bbox: [10, 20, 120, 150],
            fields_json: fields,
            feature,
        });
        if batch.len() == 1000 {
            store.insert_faces(&row.id, &batch)?;
            batch.clear();
        }
    }
    store.insert_faces(&row.id, &batch)?;
    println!("build: {} faces written in {:.1} s", args.faces, started.elapsed().as_secs_f64());
    Ok(probes)
}

/// Inference alone vs a whole add of the same image, interleaved, on one worker.
async fn measure_adds(library: &FaceLibrary, engine: &Engine, args: &BenchLibraryArgs) -> anyhow::Result<()> {
    let mut images = Vec::new();
    for entry in std::fs::read_dir(&args.images).with_context(|| format!("reading {}", args.images.display()))? {
        let path = entry?.path();
        if frs_vision::has_image_extension(&path) {
            images.push(std::fs::read(&path)?);
        }
    }
    ensure!(!images.is_empty(), "no images in {}", args.images.display());
    let (mut inference, mut add) = (Duration::ZERO, Duration::ZERO);
    let mut faces = 0;
    for _ in 0..args.add_rounds {
        for bytes in &images {
            let started = Instant::now();
            let found = engine.face_features(bytes.clone(), frs_service::MAX_FACES_PER_IMAGE).await?;
            inference += started.elapsed();
            let request = AddFacesRequest {
                image: ImageInput::File(bytes.clone()),
                external_image_id: None,
                external_fields: Some(serde_json::json!({"dept": 1})),
                single: false,
            };
            let started = Instant::now();
            let added = library.add_faces(&Caller::unauthenticated(PROJECT), PROJECT, SET, request).await?;
            add += started.elapsed();
            ensure!(added.faces.len() == found.len(), "add and inference found different faces");
            faces += found.len();
        }
    }
    let calls = (args.add_rounds * images.len()) as f64;
    println!(
        "add: {} images, {faces} faces: inference {:.1} ms/image, whole add {:.1} ms/image, add/inference {:.3}x",
        calls,
        ms(inference) / calls,
        ms(add) / calls,
        add.as_secs_f64() / inference.as_secs_f64()
    );
    Ok(())
}

fn fill_gaussian(rng: &mut StdRng, out: &mut [f32], sigma: f32) {
    for pair in out.chunks_mut(2) {
        // Box–Muller.
        let u1: f32 = rng.random_range(f32::EPSILON..1.0);
        let u2: f32 = rng.random();
        let r = (-2.0 * u1.ln()).sqrt() * sigma;
        let theta = std::f32::consts::TAU * u2;
        pair[0] = r * theta.cos();
        if let Some(second) = pair.get_mut(1) {
            *second = r * theta.sin();
        }
    }
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= norm);
}

fn percentiles(times: &mut [Duration]) -> (f64, f64, f64) {
    times.sort();
    let at = |q: f64| ms(times[((times.len() - 1) as f64 * q).round() as usize]);
    (at(0.5), at(0.9), at(0.99))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

/// Resident set size from `/proc/self/statm` (Linux).
fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
