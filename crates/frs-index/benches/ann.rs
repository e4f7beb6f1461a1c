//! Approximate-search benchmark of one large face set on one core (`cargo bench -p frs-index --bench ann`).
//!
//! SFace-like features, a set of `FRS_ANN_N` faces (default 1,000,000), 1,000 probes. With
//! `FRS_ANN_FEATURES=file` (real features from `frs calibrate ../shared/data/lfw --features-out file`)
//! the set starts with those real faces and the rest are synthetic identities drawn from a Gaussian
//! model fitted to them (their mean, between- and within-identity covariances); without it, from an
//! isotropic model sized to LFW's cosine statistics (see `calibrate`). Prints, per section
//! (`FRS_ANN_SECTIONS`, comma-separated, default all):
//! - `calibrate`: genuine and impostor cosine statistics of the generator against LFW's (docs/similarity.md);
//! - `recall`: for each precision (`FRS_ANN_PRECISION`: f32,f16,i8), the load time (inserts, sign
//!   codes included), then recall@10 against exact `f32` search and latency percentiles of the exact
//!   scan and of code search at each re-scored share (`FRS_ANN_RERANK`, ‰ of the candidates, at
//!   least `min_rerank`), unfiltered and with filters matching 10 % and 1 % of the set, with the
//!   score error of f16/i8 against f32 cosines;
//! - `memory`: heap bytes per face by part;
//! - `restart`: a fresh index loaded as `frs-service` loads a set: every face inserted, then the
//!   codes of the whole set made at once;
//! - `threshold`: exact vs code search latency and recall at sizes up to `FRS_ANN_N` (the
//!   `exact_below` choice);
//! - `filters`: code search vs the exact scan of the matching faces at selectivities 0.5–50 % (the
//!   `min_permille` choice);
//! - `writes`: insert/remove latency at full size, search latency while a writer inserts and removes
//!   behind an `RwLock` (as `frs-service` holds the index), recall after removing 10 %.
//!
//! `FRS_ANN_EXPORT=path` writes the vectors, probes, `dept` values and exact top-10s for
//! `scripts/bench_ann.py` (FAISS, hnswlib, usearch side by side). `cargo test --benches` runs a
//! 4,000-face version of every section.

use std::collections::HashSet;
use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use frs_index::{
    AnnSettings, FaceEntry, FaceId, FaceSetIndex, FieldValue, FieldValues, Filter, Hit, IndexSettings, Kernel,
    Precision, Schema, SearchParams, SearchPath,
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
    let reranks: Vec<u32> = env_list("FRS_ANN_RERANK", "3,5,7,10,15,20");
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
    // The quick run (a 4,000-face set) lowers the size thresholds so that every path runs.
    let ann = if quick {
        AnnSettings { exact_below: 1_000, min_rerank: 100, ..AnnSettings::default() }
    } else {
        AnnSettings::default()
    };
    println!(
        "frs-index ANN benchmark: {n} faces x {DIM} dims, {queries} probes, search on 1 thread; {ann:?}; kernel {}",
        Kernel::detect().name()
    );

    let started = Instant::now();
    let real = std::env::var("FRS_ANN_FEATURES").ok().filter(|p| !p.is_empty()).map(|path| RealFaces::read(&path));
    let model = match &real {
        Some(real) => FaceModel::fitted(real),
        None => FaceModel::isotropic(&mut StdRng::seed_from_u64(6)),
    };
    let data = Data::generate(n, queries, 7, &model, real.as_ref());
    println!(
        "generated in {:.1} s ({} identities, face model {}{})",
        started.elapsed().as_secs_f64(),
        data.identities,
        model.name,
        real.as_ref().map_or(String::new(), |r| format!(", the first {} faces real", r.len().min(n)))
    );
    if has("calibrate") {
        calibrate(&data, &model);
    }
    let schema = schema();
    let filters = [
        ("no filter", None),
        ("dept:[0 TO 9] (10 %)", Some(Filter::parse("dept:[0 TO 9]", &schema).expect("filter"))),
        ("dept:7 (1 %)", Some(Filter::parse("dept:7", &schema).expect("filter"))),
    ];
    let needs_index =
        ["recall", "memory", "restart", "threshold", "filters", "writes", "export"].iter().any(|s| has(s));
    if !needs_index {
        return;
    }
    // Exact top-10s over f32 features: the reference of every precision.
    let started = Instant::now();
    let mut exact = load(&data, &schema, IndexSettings::default());
    let truth: Vec<Vec<Vec<Hit>>> = filters
        .iter()
        .map(|(_, f)| data.queries.iter().map(|q| exact_search(&mut exact, q, 10, f.as_ref())).collect())
        .collect();
    drop(exact);
    println!("exact reference top-10s in {:.1} s", started.elapsed().as_secs_f64());
    if let Ok(path) = std::env::var("FRS_ANN_EXPORT") {
        export(&path, &data, &truth);
    }
    for (p, &precision) in precisions.iter().enumerate() {
        if !["recall", "memory", "restart", "threshold", "filters", "writes"].iter().any(|s| has(s)) {
            break;
        }
        let settings = IndexSettings { precision, ann: Some(ann) };
        println!("\n== precision {} ==", precision.name());
        let started = Instant::now();
        let mut index = load(&data, &schema, settings);
        println!(
            "load: {:.2} s for {n} faces inserted one by one (as a growing set: the sign codes made at {} faces, then each face encoded as it comes)",
            started.elapsed().as_secs_f64(),
            ann.exact_below
        );
        if has("recall") {
            recall(&mut index, &data, &filters, &truth, &reranks, precision);
        }
        if p == 0 {
            if has("threshold") {
                threshold(&data, &schema, settings, quick);
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
            writes(index, &data, &model, &truth);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Synthetic faces

/// How faces are drawn: an identity's centre is `mean + between·z`, one photo of it is
/// `normalise(centre + within·ε)`, with z, ε ~ N(0, I).
struct FaceModel {
    name: &'static str,
    mean: Vec<f32>,
    /// `DIM`×`DIM` row-major factors of the between-identity and within-identity covariances.
    between: Vec<f32>,
    within: Vec<f32>,
}

impl FaceModel {
    /// Without real features: a direction every face shares plus isotropic identities and noise,
    /// sized so impostor cosines average ~0.09 and same-person cosines ~0.6, as LFW's.
    fn isotropic(rng: &mut StdRng) -> FaceModel {
        FaceModel {
            name: "isotropic",
            mean: random_unit(rng, DIM).iter().map(|u| COMMON * u).collect(),
            between: scaled_identity(1.0 / (DIM as f32).sqrt()),
            within: scaled_identity(NOISE / (DIM as f32).sqrt()),
        }
    }

    /// Fitted to real features (`frs calibrate --features-out`): the mean of the identity means,
    /// their covariance less the part the photo noise contributes to them, and the pooled
    /// covariance of photos around their identity's mean.
    fn fitted(real: &RealFaces) -> FaceModel {
        let identities = real.identity_means();
        let mean = mean_of(identities.iter().map(|(_, m)| m.as_slice()));
        let mut within = vec![0f64; DIM * DIM];
        let mut residuals = 0usize;
        let mut inverse_count = 0f64;
        for (members, centre) in &identities {
            inverse_count += 1.0 / members.len() as f64;
            if members.len() < 2 {
                continue;
            }
            for &i in members {
                accumulate(&mut within, real.feature(i), centre, 1.0);
            }
            residuals += members.len() - 1;
        }
        within.iter_mut().for_each(|c| *c /= residuals as f64);
        let mut between = vec![0f64; DIM * DIM];
        for (_, centre) in &identities {
            accumulate(&mut between, centre, &mean, 1.0 / (identities.len() - 1) as f64);
        }
        let noise_share = inverse_count / identities.len() as f64;
        between.iter_mut().zip(&within).for_each(|(b, w)| *b -= noise_share * w);
        FaceModel { name: "lfw-fitted", mean, between: psd_factor(between), within: psd_factor(within) }
    }

    fn identity(&self, rng: &mut StdRng) -> Vec<f32> {
        self.mean.iter().zip(self.transform(&self.between, rng)).map(|(m, d)| m + d).collect()
    }

    fn photo(&self, rng: &mut StdRng, centre: &[f32]) -> Vec<f32> {
        normalise(centre.iter().zip(self.transform(&self.within, rng)).map(|(c, d)| c + d).collect())
    }

    /// `factor·z` for z ~ N(0, I).
    fn transform(&self, factor: &[f32], rng: &mut StdRng) -> Vec<f32> {
        let z: Vec<f32> = (0..DIM).map(|_| gaussian(rng)).collect();
        factor.chunks_exact(DIM).map(|row| dot(row, &z)).collect()
    }
}

/// Real features with their identities, as `frs calibrate --features-out` writes them.
struct RealFaces {
    features: Vec<f32>,
    identity: Vec<u32>,
}

impl RealFaces {
    fn read(path: &str) -> RealFaces {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        assert!(bytes.starts_with(b"FRSFEAT1"), "{path} is not an FRSFEAT1 file");
        assert_eq!(word(8) as usize, DIM, "{path}: feature dimension");
        let count = word(12) as usize;
        let record = 4 + 4 * DIM;
        assert_eq!(bytes.len(), 16 + count * record, "{path}: size");
        let (mut features, mut identity) = (Vec::with_capacity(count * DIM), Vec::with_capacity(count));
        for r in 0..count {
            let at = 16 + r * record;
            identity.push(word(at));
            features.extend((0..DIM).map(|k| f32::from_bits(word(at + 4 + 4 * k))));
        }
        RealFaces { features, identity }
    }

    fn len(&self) -> usize {
        self.identity.len()
    }

    fn feature(&self, i: usize) -> &[f32] {
        &self.features[i * DIM..(i + 1) * DIM]
    }

    /// Each identity's faces and the mean of their features, in identity order.
    fn identity_means(&self) -> Vec<(Vec<usize>, Vec<f32>)> {
        let mut members: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
        for (i, &id) in self.identity.iter().enumerate() {
            members.entry(id).or_default().push(i);
        }
        members
            .into_values()
            .map(|faces| {
                let centre = mean_of(faces.iter().map(|&i| self.feature(i)));
                (faces, centre)
            })
            .collect()
    }
}

fn mean_of<'a>(vectors: impl Iterator<Item = &'a [f32]>) -> Vec<f32> {
    let (mut sum, mut count) = (vec![0f64; DIM], 0usize);
    for v in vectors {
        sum.iter_mut().zip(v).for_each(|(s, &x)| *s += f64::from(x));
        count += 1;
    }
    sum.iter().map(|s| (s / count as f64) as f32).collect()
}

/// `covariance += weight·(x − centre)(x − centre)ᵀ`.
fn accumulate(covariance: &mut [f64], x: &[f32], centre: &[f32], weight: f64) {
    let d: Vec<f64> = x.iter().zip(centre).map(|(a, b)| f64::from(a - b)).collect();
    for (row, di) in covariance.chunks_exact_mut(DIM).zip(&d) {
        row.iter_mut().zip(&d).for_each(|(c, dj)| *c += weight * di * dj);
    }
}

/// `s·I`, `DIM`×`DIM` row-major.
fn scaled_identity<T: Copy + Default>(s: T) -> Vec<T> {
    (0..DIM * DIM).map(|k| if k % (DIM + 1) == 0 { s } else { T::default() }).collect()
}

/// `F` with `F·Fᵀ` = the symmetric matrix `a` with its negative eigenvalues (estimation noise)
/// set to zero: `V·sqrt(Λ)` from a cyclic Jacobi eigen-decomposition.
fn psd_factor(mut a: Vec<f64>) -> Vec<f32> {
    let mut v: Vec<f64> = scaled_identity(1.0);
    for _sweep in 0..50 {
        let off: f64 = (0..DIM)
            .flat_map(|i| (0..DIM).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * DIM + j].powi(2))
            .sum();
        if off < 1e-22 {
            break;
        }
        for p in 0..DIM {
            for q in p + 1..DIM {
                let apq = a[p * DIM + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * DIM + q] - a[p * DIM + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for k in 0..DIM {
                    let (akp, akq) = (a[k * DIM + p], a[k * DIM + q]);
                    a[k * DIM + p] = c * akp - s * akq;
                    a[k * DIM + q] = s * akp + c * akq;
                }
                for k in 0..DIM {
                    let (apk, aqk) = (a[p * DIM + k], a[q * DIM + k]);
                    a[p * DIM + k] = c * apk - s * aqk;
                    a[q * DIM + k] = s * apk + c * aqk;
                }
                for k in 0..DIM {
                    let (vkp, vkq) = (v[k * DIM + p], v[k * DIM + q]);
                    v[k * DIM + p] = c * vkp - s * vkq;
                    v[k * DIM + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let root: Vec<f64> = (0..DIM).map(|k| a[k * DIM + k].max(0.0).sqrt()).collect();
    (0..DIM * DIM).map(|k| (v[k] * root[k % DIM]) as f32).collect()
}

/// `n` gallery faces and probes: 90 % a new photo of a gallery identity, 10 % a stranger. With
/// real features, the gallery starts with them (their identities centred on the mean of their
/// photos) and the rest are synthetic identities of the fitted model with 1–9 photos each;
/// without, every identity is synthetic and isotropic.
struct Data {
    model_name: &'static str,
    features: Vec<f32>,
    ids: Vec<FaceId>,
    depts: Vec<u8>,
    identity_of: Vec<u32>,
    identities: usize,
    queries: Vec<Vec<f32>>,
    /// Gallery identity of each probe (`u32::MAX` for strangers).
    query_identity: Vec<u32>,
    centres: Vec<f32>,
}

impl Data {
    fn generate(n: usize, queries: usize, seed: u64, model: &FaceModel, real: Option<&RealFaces>) -> Data {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut centres = Vec::new();
        let mut features = Vec::with_capacity(n * DIM);
        let mut identity_of = Vec::with_capacity(n);
        let mut identities = 0;
        for (members, centre) in real.map(RealFaces::identity_means).unwrap_or_default() {
            for &i in members.iter().take(n - identity_of.len()) {
                features.extend_from_slice(real.expect("real faces").feature(i));
                identity_of.push(identities as u32);
            }
            centres.extend(centre);
            identities += 1;
            if identity_of.len() == n {
                break;
            }
        }
        while identity_of.len() < n {
            let centre = model.identity(&mut rng);
            let photos = rng.random_range(1..=9usize).min(n - identity_of.len());
            for _ in 0..photos {
                features.extend(model.photo(&mut rng, &centre));
                identity_of.push(identities as u32);
            }
            centres.extend(centre);
            identities += 1;
        }
        // Ids from the seeded generator: every run has the same faces.
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
                let stranger = model.identity(&mut rng);
                probes.push(model.photo(&mut rng, &stranger));
                query_identity.push(u32::MAX);
            } else {
                let identity = rng.random_range(0..identities);
                probes.push(model.photo(&mut rng, &centres[identity * DIM..(identity + 1) * DIM]));
                query_identity.push(identity as u32);
            }
        }
        Data {
            model_name: model.name,
            features,
            ids,
            depts,
            identity_of,
            identities,
            queries: probes,
            query_identity,
            centres,
        }
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

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Genuine and impostor cosine statistics, and the impostor cosine at LFW's FAR points.
fn calibrate(data: &Data, model: &FaceModel) {
    let mut rng = StdRng::seed_from_u64(99);
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for _ in 0..20_000 {
        let c = rng.random_range(0..data.identities);
        let centre = &data.centres[c * DIM..(c + 1) * DIM];
        let a = model.photo(&mut rng, centre);
        let b = model.photo(&mut rng, centre);
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
    println!("\n== calibration (face model: {}) ==", model.name);
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

/// The set as `frs-service` loads it: every face inserted in order.
fn load(data: &Data, schema: &Schema, settings: IndexSettings) -> FaceSetIndex {
    let mut index = FaceSetIndex::with_settings(schema.clone(), DIM, settings);
    index.reserve(data.len());
    for i in 0..data.len() {
        index.insert(data.entry(i), data.feature(i)).expect("insert");
    }
    index
}

/// Exact top-n (an index with codes is searched with `exact_below: usize::MAX`, then restored).
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

/// Sets the re-scored share and the thresholds (the codes, once made, are kept).
fn with_search(index: &mut FaceSetIndex, rerank_permille: u32, exact_below: usize, min_permille: u32) {
    let Some(ann) = index.settings().ann else { return };
    index.set_ann_settings(AnnSettings { rerank_permille, exact_below, min_permille, ..ann });
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
    reranks: &[u32],
    precision: Precision,
) {
    println!(
        "{:<22} {:>7} {:>6} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>8} {:>10}",
        "filter",
        "rerank",
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
    let ann = index.settings().ann.expect("codes");
    for (f, (name, filter)) in filters.iter().enumerate() {
        // The exact scan of the same index (the baseline), then search as configured (the path the
        // thresholds pick) at each re-scored share.
        with_search(index, ann.rerank_permille, usize::MAX, 0);
        let exact = run(index, data, filter.as_ref(), &truth[f]);
        print_run(name, "-", "exact", &exact, precision);
        for &permille in reranks {
            with_search(index, permille, ann.exact_below, ann.min_permille);
            let path = index.search_path(filter.as_ref());
            if path == SearchPath::Exact {
                println!("{name:<22} {:>7} {:>6} (the filter's count picks the exact scan above)", "any", "auto");
                break;
            }
            let candidates = filter.as_ref().map_or(data.len(), |f| index.select(f).len());
            let rerank = index.settings().ann.expect("codes").rerank(candidates);
            let r = run(index, data, filter.as_ref(), &truth[f]);
            print_run(name, &rerank.to_string(), "codes", &r, precision);
        }
    }
    index.set_ann_settings(ann);
}

fn print_run(name: &str, rerank: &str, path: &str, r: &Run, precision: Precision) {
    let err = if precision == Precision::F32 { "0 (f32)".to_string() } else { format!("{:.1e}", r.score_error) };
    println!(
        "{:<22} {:>7} {:>6} {:>8.3} {:>8.3} {:>8.3} {:>9.4} {:>9.4} {:>8.4} {:>8.4} {:>8.4} {:>10}",
        name,
        rerank,
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

fn threshold(data: &Data, schema: &Schema, settings: IndexSettings, quick: bool) {
    let ann = settings.ann.expect("codes");
    println!(
        "\n-- exact vs code search by set size (the exact_below choice; {} ‰ re-scored, at least {}) --",
        ann.rerank_permille, ann.min_rerank
    );
    println!("{:>9} {:>12} {:>12} {:>10}", "faces", "exact p50", "codes p50", "recall@10");
    let sizes: Vec<usize> =
        if quick { vec![1_000, 4_000] } else { env_list("FRS_ANN_SIZES", "10000,20000,50000,100000,200000") };
    for size in sizes.into_iter().filter(|&s| s <= data.len()) {
        let sub = Data::subset(data, size);
        let mut index =
            load(&sub, schema, IndexSettings { ann: Some(AnnSettings { exact_below: 1, ..ann }), ..settings });
        let truth: Vec<Vec<Hit>> = sub.queries.iter().map(|q| exact_search(&mut index, q, 10, None)).collect();
        with_search(&mut index, ann.rerank_permille, usize::MAX, 0);
        let exact = run(&index, &sub, None, &truth);
        with_search(&mut index, ann.rerank_permille, 1, 0);
        let codes = run(&index, &sub, None, &truth);
        println!(
            "{:>9} {:>9.3} ms {:>9.3} ms {:>10.4}",
            size,
            ms(pct(&exact.times, 0.5)),
            ms(pct(&codes.times, 0.5)),
            codes.recall
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
            model_name: data.model_name,
            centres: data.centres.clone(),
        }
    }
}

fn selectivity(index: &mut FaceSetIndex, data: &Data, schema: &Schema) {
    let ann = index.settings().ann.expect("codes");
    println!("\n-- filtered: code search vs exact scan of the matching faces (the min_permille choice) --");
    println!(
        "{:<24} {:>9} {:>12} {:>12} {:>10} {:>9}",
        "filter", "matching", "exact p50", "codes p50", "recall@10", "chosen"
    );
    let data = &data.with_queries(200);
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
        let truth: Vec<Vec<Hit>> = data.queries.iter().map(|q| exact_search(index, q, 10, Some(&filter))).collect();
        with_search(index, ann.rerank_permille, usize::MAX, 0);
        let exact = run(index, data, Some(&filter), &truth);
        with_search(index, ann.rerank_permille, 1, 0);
        let codes = run(index, data, Some(&filter), &truth);
        index.set_ann_settings(ann);
        let chosen = index.search_path(Some(&filter));
        println!(
            "{:<24} {:>9} {:>9.3} ms {:>9.3} ms {:>10.4} {:>9}",
            label,
            matching,
            ms(pct(&exact.times, 0.5)),
            ms(pct(&codes.times, 0.5)),
            codes.recall,
            format!("{chosen:?}")
        );
    }
}

fn memory(index: &FaceSetIndex, n: usize) {
    let u = index.heap_usage();
    let per = |b: usize| b as f64 / n as f64;
    println!(
        "heap per face: {:.0} B = vectors {:.0} + codes {:.0} + entries {:.0} + id map {:.0} + fields {:.0} (custom-field values + columns)",
        per(u.total()),
        per(u.features),
        per(u.codes),
        per(u.entries),
        per(u.id_map),
        per(u.field_values + u.columns)
    );
    println!(
        "  at 10,000,000 faces (linear): {:.2} GB total, {:.2} GB vectors + codes",
        per(u.total()) * 1e7 / 1e9,
        per(u.features + u.codes) * 1e7 / 1e9
    );
}

fn restart(index: &FaceSetIndex, data: &Data, schema: &Schema, settings: IndexSettings) {
    let ann = settings.ann.expect("codes");
    // As FaceLibrary loads a set from the store: every face inserted, then the codes of all of them.
    let started = Instant::now();
    let mut fresh =
        load(data, schema, IndexSettings { ann: Some(AnnSettings { exact_below: usize::MAX, ..ann }), ..settings });
    let inserts = started.elapsed();
    fresh.set_ann_settings(ann);
    let total = started.elapsed();
    assert!(fresh.has_codes() || data.len() < ann.exact_below);
    let params = SearchParams { top_n: 10, min_cosine: -1.0, filter: None, sort: &[] };
    let (mut same, mut total_hits) = (0, 0);
    for q in &data.queries {
        let before: HashSet<FaceId> = index.search(q, &params).iter().map(|h| h.face_id).collect();
        same += fresh.search(q, &params).iter().filter(|h| before.contains(&h.face_id)).count();
        total_hits += before.len();
    }
    println!(
        "restart: {:.2} s = inserts {:.2} s + the whole set's codes {:.2} s; {:.4} of the hits before the restart found again",
        total.as_secs_f64(),
        inserts.as_secs_f64(),
        (total - inserts).as_secs_f64(),
        same as f64 / total_hits.max(1) as f64
    );
}

fn writes(index: FaceSetIndex, data: &Data, model: &FaceModel, truth: &[Vec<Vec<Hit>>]) {
    println!("\n-- writes at {} faces --", data.len());
    let mut index = index;
    let extra = Data::generate(2_000, 0, 1234, model, None);
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
        "insert (code included): p50 {:.4} ms, p99 {:.4} ms, max {:.3} ms; remove: p50 {:.4} ms",
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

    // Remove 10 % of the original faces and measure recall against the surviving truth.
    let mut index = shared.into_inner().expect("lock");
    let removed: HashSet<FaceId> = data.ids.iter().step_by(10).copied().collect();
    for id in &removed {
        index.remove(*id);
    }
    let (mut found, mut total) = (0, 0);
    for (i, q) in data.queries.iter().enumerate() {
        // The reference: exact top-10 of the survivors.
        let survivors: Vec<FaceId> = truth[0][i].iter().map(|h| h.face_id).filter(|id| !removed.contains(id)).collect();
        let got: HashSet<FaceId> = index.search(q, &params).iter().map(|h| h.face_id).collect();
        found += survivors.iter().filter(|id| got.contains(id)).count();
        total += survivors.len();
    }
    println!("10 % removed: recall of the surviving exact top-10 {:.4}", found as f64 / total.max(1) as f64);
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
