//! Large face sets through `FaceLibrary`, with the real models on real photos: a set makes its sign
//! codes when it first holds `exact_below` faces (in an add, or at load); its searches (with a
//! filter: one matching at least `min_permille` of it) then go through the codes and find the top
//! hits of exact search with exact scores; a restart makes the codes again from the store; deletes
//! and adds keep them in step. Fails (never skips) without `assets/models` and `assets/images`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use frs_index::SearchPath;
use frs_service::{
    AddFacesRequest, Caller, DeleteFaces, Engine, EngineConfig, FaceLibrary, ImageInput, IndexConfig, IndexStatus,
    LibraryLimits, Probe, SearchRequest, SearchResponse,
};
use frs_store::{FaceRow, FaceSetRow, Store};
use frs_vision::{FEATURE_DIM, ModelPaths, PipelineConfig};
use serde_json::json;

const PROJECT: &str = "p";
const SET: &str = "big";
const SET_ID: &str = "LargeSet";
/// Synthetic faces streamed from the store, `dept` 0–9 (300 each).
const SYNTHETIC: usize = 3_000;
/// Half the synthetic faces: above `min_permille`, searched through the codes.
const HALF: &str = "dept:[0 TO 4]";
/// A tenth of them: below `min_permille`, searched exactly.
const TENTH: &str = "dept:5";
/// Faces each search asks for...
const TOP_N: usize = 30;
/// ...of which the first this many must be exact search's.
const TOP_HITS: usize = 10;
/// Share of the exact answers' hits (with their exact scores) a code search must find.
const MIN_RECALL: f64 = 0.95;

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

/// Sign codes once a set holds `exact_below` faces, used by filters matching ≥ 20 % of it; a code
/// search scores 10 % of its candidates (150 of the 1,500 faces a half filter passes: 5 × `TOP_N`).
fn codes_config(exact_below: usize) -> IndexConfig {
    IndexConfig { exact_below, min_permille: 200, rerank_permille: 100, min_rerank: 0, ..IndexConfig::default() }
}

fn load(store: &Arc<Store>, config: IndexConfig) -> FaceLibrary {
    FaceLibrary::load_with_index(Arc::clone(store), engine(), LibraryLimits::default(), config).expect("loading")
}

fn status(library: &FaceLibrary) -> IndexStatus {
    library.index_status(PROJECT, SET).expect("the set exists")
}

fn path(library: &FaceLibrary, filter: Option<&str>) -> SearchPath {
    library.search_path(PROJECT, SET, filter).expect("the set exists and the filter parses")
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

/// Adds every face of the six samples; returns the new face ids.
async fn add_samples(library: &FaceLibrary) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 1..=6 {
        let request = AddFacesRequest {
            image: ImageInput::File(sample(n)),
            external_image_id: Some(format!("sample{n}")),
            external_fields: None,
            single: false,
        };
        let added = library.add_faces(&Caller::unauthenticated(PROJECT), PROJECT, SET, request).await.expect("add");
        ids.extend(added.faces.into_iter().map(|face| face.face_id));
    }
    ids
}

/// Searches by image (the largest face of each sample) and by stored face id, unfiltered and with
/// the half and tenth filters: the answers to compare between libraries.
async fn answers(library: &FaceLibrary, probes: &[String]) -> Vec<SearchResponse> {
    let caller = Caller::unauthenticated(PROJECT);
    let mut requests = Vec::new();
    for n in 1..=6 {
        requests.push((Probe::Image(ImageInput::File(sample(n))), None));
    }
    for id in probes {
        for filter in [None, Some(HALF), Some(TENTH)] {
            requests.push((Probe::FaceId(id.clone()), filter.map(str::to_owned)));
        }
    }
    let mut out = Vec::new();
    for (probe, filter) in requests {
        let top_n = Some(TOP_N as i64);
        let request = SearchRequest { probe, top_n, threshold: None, filter, sort: None, return_fields: None };
        out.push(library.search(&caller, PROJECT, SET, request).await.expect("search"));
    }
    assert!(out.iter().all(|a| a.faces.len() == TOP_N), "every search finds top_n faces");
    out
}

/// The answers of the same store searched exactly (the default `exact_below` is far above the set).
async fn exact_answers(store: &Arc<Store>, probes: &[String]) -> Vec<SearchResponse> {
    let exact = load(store, IndexConfig::default());
    assert!(!status(&exact).codes && path(&exact, None) == SearchPath::Exact);
    assert_eq!(exact.heap_usage().codes, 0);
    answers(&exact, probes).await
}

/// Every code answer starts with the exact answer's [`TOP_HITS`] hits, and holds at least
/// [`MIN_RECALL`] of all its hits with the same scores and fields.
fn assert_top_hits_exact(coded: &[SearchResponse], exact: &[SearchResponse], when: &str) {
    assert_eq!(coded.len(), exact.len());
    let mut found = 0;
    for (request, (coded, exact)) in coded.iter().zip(exact).enumerate() {
        assert_eq!(coded.faces[..TOP_HITS], exact.faces[..TOP_HITS], "{when}: top hits of request {request}");
        found += exact.faces.iter().filter(|face| coded.faces.contains(face)).count();
    }
    let recall = found as f64 / (exact.len() * TOP_N) as f64;
    assert!(recall >= MIN_RECALL, "{when}: recall {recall:.3}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_search_finds_the_exact_top_hits_across_adds_restarts_and_deletes() {
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

    // One face short of `exact_below`: exact search, no codes, until the first add.
    let library = load(&store, codes_config(SYNTHETIC + 1));
    let before = status(&library);
    assert_eq!(before, IndexStatus { faces: SYNTHETIC, precision: "f32", codes: false });
    assert_eq!(path(&library, None), SearchPath::Exact);
    let mut probes = add_samples(&library).await;
    let sample_faces = probes.len();
    // Synthetic faces of `dept` 0, 4 and 6, which the delete below keeps.
    probes.extend(["s0000000", "s0001234", "s0002496"].map(String::from));
    let grown = status(&library);
    assert!(grown.codes && grown.faces == SYNTHETIC + sample_faces, "{grown:?}");
    assert!(library.heap_usage().codes > 0);
    assert_eq!(path(&library, None), SearchPath::Codes);
    assert_eq!(path(&library, Some(HALF)), SearchPath::Codes);
    assert_eq!(path(&library, Some(TENTH)), SearchPath::Exact, "a filter below min_permille");
    let exact = exact_answers(&store, &probes).await;
    assert_top_hits_exact(&answers(&library, &probes).await, &exact, "codes made by an add");
    drop(library);

    // Restart: the codes are made again from the store at load.
    let restarted = load(&store, codes_config(1_000));
    assert!(status(&restarted).codes);
    assert_eq!(path(&restarted, None), SearchPath::Codes);
    assert_eq!(path(&restarted, Some(HALF)), SearchPath::Codes);
    assert_eq!(path(&restarted, Some(TENTH)), SearchPath::Exact, "a filter below min_permille");
    let exact = exact_answers(&store, &probes).await;
    assert_top_hits_exact(&answers(&restarted, &probes).await, &exact, "codes made at load");

    // Deletes and adds keep the codes in step with the features.
    let deleted = restarted
        .delete_faces(&caller, PROJECT, SET, DeleteFaces::ByFilter("dept:[7 TO 9]".into()))
        .await
        .expect("delete");
    assert_eq!(deleted.face_number, SYNTHETIC * 3 / 10);
    probes.extend(add_samples(&restarted).await);
    let after = status(&restarted);
    assert!(after.codes && after.faces == SYNTHETIC - deleted.face_number + 2 * sample_faces, "{after:?}");
    assert_eq!(path(&restarted, Some(HALF)), SearchPath::Codes);
    let exact = exact_answers(&store, &probes).await;
    assert_top_hits_exact(&answers(&restarted, &probes).await, &exact, "after deletes and adds");
}
