//! The HNSW graphs of large face sets through `FaceLibrary`, with the real models on real photos:
//! graph search gives exactly the answers of exact search, the graph file makes a restart skip
//! the build, a corrupt file is rebuilt, removed faces are compacted away, and deleting a set
//! deletes its file. Fails (never skips) without `assets/models` and `assets/images`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use frs_service::{
    AddFacesRequest, Caller, DeleteFaces, Engine, EngineConfig, FaceLibrary, GRAPH_DIR, ImageInput, IndexConfig,
    IndexStatus, LibraryLimits, Probe, SearchRequest, SearchResponse,
};
use frs_store::{FaceRow, FaceSetRow, Store};
use frs_vision::{FEATURE_DIM, ModelPaths, PipelineConfig};
use serde_json::json;

const PROJECT: &str = "p";
const SET: &str = "big";
const SET_ID: &str = "GraphSet";
/// Synthetic faces streamed from the store: more than a load links at once, so the first load
/// builds the graph in the background.
const SYNTHETIC: usize = 2_500;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    Arc::clone(ENGINE.get_or_init(|| {
        let models = ModelPaths::in_dir(repo_root().join("assets/models"));
        for path in [&models.onnxruntime, &models.detector, &models.recognizer] {
            assert!(path.is_file(), "{} is missing: run scripts/setup.sh", path.display());
        }
        Arc::new(Engine::start(EngineConfig {
            pipeline: PipelineConfig { models, detector: Default::default(), threads: 1 },
            limits: Default::default(),
            workers: 1,
            queue_capacity: 64,
        }))
    }))
}

fn sample(n: u32) -> Vec<u8> {
    let path = repo_root().join(format!("assets/images/sample{n}.jpg"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}: run scripts/setup.sh", path.display()))
}

/// Every set keeps a graph, and every search with candidates uses it (nothing below thresholds).
fn graph_config() -> IndexConfig {
    IndexConfig {
        ann_min_capacity: 0,
        exact_below: 0,
        graph_min_permille: 0,
        build_threads: 1,
        save_interval_secs: 3600,
        save_after_changes: 1_000_000,
        ..IndexConfig::default()
    }
}

fn load(store: &Arc<Store>, config: IndexConfig) -> FaceLibrary {
    FaceLibrary::load_with_index(Arc::clone(store), engine(), LibraryLimits::default(), config).expect("loading")
}

fn status(library: &FaceLibrary) -> IndexStatus {
    library.index_status(PROJECT, SET).expect("the set exists")
}

/// Waits until the background builder has linked every face and saved the file.
async fn wait_built_and_saved(library: &FaceLibrary) -> IndexStatus {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = status(library);
        if status.pending == 0 && status.saved {
            return status;
        }
        assert!(Instant::now() < deadline, "graph not built and saved in 120 s: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn graph_file() -> PathBuf {
    PathBuf::from(GRAPH_DIR).join(format!("{SET_ID}.hnsw"))
}

/// A small xorshift generator: the same synthetic faces in every run.
struct Rng(u64);

impl Rng {
    fn gaussian(&mut self) -> f32 {
        let mut uniform = || {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let (u1, u2) = (uniform(), uniform());
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

fn normalised(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Other photos of the people in the samples: each real feature plus noise, cosine 0.55–0.8 to it
/// (same-person cosines of SFace), `dept` 0–9.
fn store_with_synthetic_faces(dir: &Path, real: &[Vec<f32>]) -> Arc<Store> {
    let store = Store::open(dir).expect("store");
    let row = FaceSetRow {
        project_id: PROJECT.into(),
        name: SET.into(),
        id: SET_ID.into(),
        capacity: 10_000,
        schema_json: json!({"dept": {"type": "integer"}}).to_string(),
        created_at: 0,
    };
    store.create_face_set(&row).expect("create");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let faces: Vec<FaceRow> = (0..SYNTHETIC)
        .map(|i| {
            let centre = &real[i % real.len()];
            let spread = 0.75 + 0.75 * (i % 7) as f32 / 6.0;
            let sigma = spread / (FEATURE_DIM as f32).sqrt();
            let feature = normalised(centre.iter().map(|c| c + sigma * rng.gaussian()).collect());
            FaceRow {
                face_id: format!("s{i:07}"),
                external_image_id: format!("img{}", i / 3),
                bbox: [0, 0, 100, 100],
                fields_json: json!({"dept": i % 10}).to_string(),
                feature,
            }
        })
        .collect();
    store.insert_faces(SET_ID, &faces).expect("insert");
    Arc::new(store)
}

/// Searches by image (the largest face of each sample) and by stored face id, unfiltered and with
/// a 50 % filter: the answers to compare between libraries.
async fn answers(library: &FaceLibrary, probes: &[String]) -> Vec<SearchResponse> {
    let caller = Caller::unauthenticated(PROJECT);
    let mut requests = Vec::new();
    for n in 1..=6 {
        requests.push((Probe::Image(ImageInput::File(sample(n))), None));
    }
    for id in probes {
        requests.push((Probe::FaceId(id.clone()), None));
        requests.push((Probe::FaceId(id.clone()), Some("dept:[0 TO 4]".to_owned())));
    }
    let mut out = Vec::new();
    for (probe, filter) in requests {
        let request =
            SearchRequest { probe, top_n: Some(30), threshold: None, filter, sort: None, return_fields: None };
        out.push(library.search(&caller, PROJECT, SET, request).await.expect("search"));
    }
    out
}

/// The answers of the same store searched exactly (the default configuration has no graph).
async fn exact_answers(store: &Arc<Store>, probes: &[String]) -> Vec<SearchResponse> {
    let exact = load(store, IndexConfig::default());
    let status = status(&exact);
    assert!(!status.graph && !status.graph_search, "{status:?}");
    answers(&exact, probes).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_search_equals_exact_search_across_restarts_corrupt_files_and_deletes() {
    let engine = engine();
    let caller = Caller::unauthenticated(PROJECT);
    let mut real = Vec::new();
    for n in 1..=6 {
        let faces = engine.face_features(sample(n), 100).await.expect("inference");
        real.extend(faces.into_iter().map(|(_, feature)| feature.to_vec()));
    }
    assert!(real.len() >= 6, "the samples hold at least one face each");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store_with_synthetic_faces(dir.path(), &real);
    let file = dir.path().join(graph_file());

    // First start: no graph file. Searches are exact until the background build has linked every
    // face, then use the graph; the built graph is saved.
    let library = load(&store, graph_config());
    let first = status(&library);
    assert!(first.graph, "{first:?}");
    assert_eq!(first.built_since_load + first.pending as u64, SYNTHETIC as u64, "{first:?}");
    assert_eq!(first.graph_search, first.pending == 0, "exact while faces are pending: {first:?}");
    let built = wait_built_and_saved(&library).await;
    assert!(built.graph_search && built.built_since_load == SYNTHETIC as u64, "{built:?}");
    assert!(file.is_file(), "{} written", file.display());

    // Real faces added through the use-case are linked as they are added.
    let mut probes = Vec::new();
    for n in 1..=6 {
        let request = AddFacesRequest {
            image: ImageInput::File(sample(n)),
            external_image_id: Some(format!("sample{n}")),
            external_fields: None,
            single: false,
        };
        let added = library.add_faces(&caller, PROJECT, SET, request).await.expect("add");
        probes.extend(added.faces.into_iter().map(|face| face.face_id));
    }
    probes.extend(["s0000000", "s0000777", "s0002499"].map(String::from));
    let added = status(&library);
    assert!(added.pending == 0 && added.graph_search && !added.saved, "{added:?}");
    let graph = answers(&library, &probes).await;
    assert!(graph.iter().all(|a| a.faces.len() == 30), "every search finds top_n faces");
    assert_eq!(graph, exact_answers(&store, &probes).await, "graph search returns the exact answers");

    // Restart: the file saved at shutdown is attached, nothing is rebuilt, same answers.
    library.shutdown();
    assert!(status(&library).saved);
    drop(library);
    let restarted = load(&store, graph_config());
    let reloaded = status(&restarted);
    assert_eq!(reloaded.built_since_load, 0, "a whole graph file means no rebuild: {reloaded:?}");
    assert!(reloaded.pending == 0 && reloaded.graph_search && reloaded.saved, "{reloaded:?}");
    assert_eq!(answers(&restarted, &probes).await, graph, "the same answers after a restart");
    restarted.shutdown();
    drop(restarted);

    // A corrupt file is refused and rebuilt (searches exact meanwhile), then saved again.
    let mut bytes = std::fs::read(&file).expect("graph file");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&file, &bytes).expect("corrupting the file");
    let rebuilt = load(&store, graph_config());
    let faces = status(&rebuilt).faces;
    let after = wait_built_and_saved(&rebuilt).await;
    assert_eq!(after.built_since_load, faces as u64, "every face relinked: {after:?}");
    assert!(after.graph_search, "{after:?}");
    assert_eq!(answers(&rebuilt, &probes).await, graph, "a rebuilt graph gives the exact answers");
    assert_ne!(std::fs::read(&file).expect("graph file"), bytes, "the corrupt file was replaced");

    // Deleting 30 % of the faces leaves tombstones past the 20 % share: the set is compacted.
    let deleted = rebuilt
        .delete_faces(&caller, PROJECT, SET, DeleteFaces::ByFilter("dept:[0 TO 2]".into()))
        .await
        .expect("delete");
    assert_eq!(deleted.face_number, SYNTHETIC * 3 / 10);
    let compacted = status(&rebuilt);
    assert_eq!(compacted.tombstones, 0, "{compacted:?}");
    assert_eq!(compacted.faces, faces - deleted.face_number);
    probes.retain(|id| id != "s0000000");
    let survivors = answers(&rebuilt, &probes).await;
    assert_eq!(survivors, exact_answers(&store, &probes).await, "exact answers after compaction");

    // Deleting the set deletes its graph file.
    rebuilt.delete_face_set(&caller, PROJECT, SET).await.expect("delete set");
    assert!(!file.exists(), "{} removed with its set", file.display());
    rebuilt.shutdown();
    assert!(!file.exists(), "shutdown does not write a deleted set's graph");
}
