//! Approximate-search benchmark of one large face set on one core (`cargo bench -p frs-index --bench ann`).
//!
//! SFace-like features, a set of `FRS_ANN_N` faces (default 1,000,000), 1,000 probes. With
//! `FRS_ANN_FEATURES=file` (real features from `frs calibrate ../shared/data/lfw --features-out file`)
//! the set starts with those real faces and the rest are synthetic identities drawn from a Gaussian
//! model fitted to them (their mean, between- and within-identity covariances); without it, from an
//! isotropic model sized to LFW's cosine statistics (see `calibrate`). Prints, per section
//! (`FRS_ANN_SECTIONS`, comma-separated, default all):
//! - `calibrate`: genuine and impostor cosine statistics of the generator against LFW's (docs/similarity.md);
//! - `prefilter`: recall@10 and latency of the sign-code prefilter (`SignCodes`, not in frs-index
//!   yet) for each candidate count (`FRS_ANN_PREFILTER`), next to the exact scan;
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
        env_list("FRS_ANN_SECTIONS", "calibrate,prefilter,recall,memory,restart,threshold,filters,writes");
    let has = |s: &str| sections.iter().any(|x| x == s);
    println!(
        "frs-index ANN benchmark: {n} faces x {DIM} dims, {queries} probes, m {m}, ef_construction {ef_construction}, \
         build threads {threads}, search on 1 thread"
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
    if has("prefilter") {
        let counts = env_list("FRS_ANN_PREFILTER", if quick { "100,400" } else { "5000,10000,20000" });
        prefilter(&data, &schema, &counts);
    }
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
            writes(index, &data, &model, &schema, truth);
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

fn cache_path(data: &Data, settings: IndexSettings) -> Option<PathBuf> {
    let ann = settings.ann?;
    let dir = PathBuf::from(
        std::env::var("FRS_ANN_CACHE")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/ann-cache").to_string()),
    );
    std::fs::create_dir_all(&dir).ok()?;
    // One graph per face model, size and settings, whatever the precision: f16/i8 runs search the
    // graph the f32 run built (the file holds links and face ids only).
    Some(dir.join(format!(
        "{}-n{}-m{}-efc{}-v{}.graph",
        data.model_name,
        data.len(),
        ann.m,
        ann.ef_construction,
        frs_index::GRAPH_FILE_VERSION
    )))
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
    let cache = cache_path(data, settings);
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
            model_name: data.model_name,
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

fn writes(index: FaceSetIndex, data: &Data, model: &FaceModel, schema: &Schema, truth: &[Vec<Vec<Hit>>]) {
    println!("\n-- writes at {} faces --", data.len());
    let mut index = index;
    with_search(&mut index, AnnSettings::default().ef_search, 0, 50);
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
// Sign-code prefilter: a design measured here before it goes into frs-index

/// Candidate route to recall@10 ≥ 0.99 at ≤ 2 ms on 1M faces, one core (docs/search-at-scale.md):
/// every face keeps a 1-bit code of its centred, randomly rotated feature (16 bytes, RaBitQ's
/// estimator: Gao & Long, SIGMOD 2024) and three `f32` factors; a query estimates the cosine of
/// every face from popcounts against its own rotated feature quantised to 4 bits, keeps the faces
/// whose estimate clears a threshold set on a 1-in-64 sample to pass about `k` of them, and
/// re-scores those exactly on their `f32` rows (`Kernel::gather`).
struct SignCodes {
    mean: Vec<f32>,
    /// `DIM`×`DIM` row-major orthogonal matrix.
    rotation: Vec<f32>,
    /// Sign bits 0–63 and 64–127 of each face's rotated, centred feature `u`.
    low: Vec<u64>,
    high: Vec<u64>,
    /// `|u|² / |u|₁`, the estimator's scale.
    scale: Vec<f32>,
    /// Number of set bits of the code.
    ones: Vec<f32>,
    /// `⟨x − mean, mean⟩`, the part of the cosine the centring moved out of `u`.
    offset: Vec<f32>,
}

/// A query against `SignCodes`: its rotated centred feature `v` ≈ `low + step·q` with 4-bit `q`,
/// held as four bit planes.
struct SignQuery {
    planes: [[u64; 2]; 4],
    low: f32,
    step: f32,
    sum: f32,
}

#[allow(unsafe_code)] // the AVX-512 popcount scan.
impl SignCodes {
    fn new(data: &Data) -> SignCodes {
        let mean = mean_of(data.features.chunks_exact(DIM));
        let mut rng = StdRng::seed_from_u64(11);
        let mut rotation: Vec<f32> = Vec::with_capacity(DIM * DIM);
        for _ in 0..DIM {
            // Gram–Schmidt on Gaussian rows: a uniformly random orthogonal matrix.
            let mut row: Vec<f32> = (0..DIM).map(|_| gaussian(&mut rng)).collect();
            for done in rotation.chunks_exact(DIM) {
                let along = dot(&row, done);
                row.iter_mut().zip(done).for_each(|(r, d)| *r -= along * d);
            }
            rotation.extend(normalise(row));
        }
        let mut codes = SignCodes {
            mean,
            rotation,
            low: Vec::with_capacity(data.len()),
            high: Vec::with_capacity(data.len()),
            scale: Vec::with_capacity(data.len()),
            ones: Vec::with_capacity(data.len()),
            offset: Vec::with_capacity(data.len()),
        };
        for i in 0..data.len() {
            let centred: Vec<f32> = data.feature(i).iter().zip(&codes.mean).map(|(x, m)| x - m).collect();
            let u = codes.rotate(&centred);
            let bits = |range: std::ops::Range<usize>| {
                range.clone().filter(|&k| u[k] > 0.0).fold(0u64, |word, k| word | 1 << (k - range.start))
            };
            let (low, high) = (bits(0..64), bits(64..DIM));
            codes.low.push(low);
            codes.high.push(high);
            codes.scale.push(dot(&u, &u) / u.iter().map(|x| x.abs()).sum::<f32>());
            codes.ones.push((low.count_ones() + high.count_ones()) as f32);
            codes.offset.push(dot(&centred, &codes.mean));
        }
        codes
    }

    fn rotate(&self, v: &[f32]) -> Vec<f32> {
        self.rotation.chunks_exact(DIM).map(|row| dot(row, v)).collect()
    }

    fn query(&self, q: &[f32]) -> SignQuery {
        let centred: Vec<f32> = q.iter().zip(&self.mean).map(|(x, m)| x - m).collect();
        let v = self.rotate(&centred);
        let low = v.iter().copied().fold(f32::INFINITY, f32::min);
        let step = (v.iter().copied().fold(f32::NEG_INFINITY, f32::max) - low) / 15.0;
        let mut planes = [[0u64; 2]; 4];
        for (k, x) in v.iter().enumerate() {
            let level = ((x - low) / step).round() as u32;
            for (p, plane) in planes.iter_mut().enumerate() {
                plane[k / 64] |= u64::from(level >> p & 1) << (k % 64);
            }
        }
        SignQuery { planes, low, step, sum: v.iter().sum() }
    }

    /// The estimated cosine of face `i` (up to the query's constant `⟨q, mean⟩`):
    /// `scale·⟨sign(u), v⟩ + offset`, with `⟨sign(u), v⟩ = 2·Σ_{bits set} v − Σ v`.
    fn estimate(&self, q: &SignQuery, i: usize) -> f32 {
        let levels: u32 = (0..4)
            .map(|p| ((self.low[i] & q.planes[p][0]).count_ones() + (self.high[i] & q.planes[p][1]).count_ones()) << p)
            .sum();
        self.scale[i] * (2.0 * (q.low * self.ones[i] + q.step * levels as f32) - q.sum) + self.offset[i]
    }

    /// The faces whose estimate is at least `threshold`, in row order.
    fn scan(&self, q: &SignQuery, threshold: f32, out: &mut Vec<u32>) {
        #[cfg(target_arch = "x86_64")]
        let done = if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512vpopcntdq")
        {
            // SAFETY: the features were just detected.
            unsafe { self.scan_avx512(q, threshold, out) }
        } else {
            0
        };
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        out.extend((done..self.low.len()).filter(|&i| self.estimate(q, i) >= threshold).map(|i| i as u32));
    }

    /// `scan` over the first multiple of 8 faces, 8 at a time; returns how many were scanned.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512vpopcntdq")]
    unsafe fn scan_avx512(&self, q: &SignQuery, threshold: f32, out: &mut Vec<u32>) -> usize {
        use std::arch::x86_64::*;
        let whole = self.low.len() / 8 * 8;
        let low_planes: [__m512i; 4] = std::array::from_fn(|p| _mm512_set1_epi64(q.planes[p][0] as i64));
        let high_planes: [__m512i; 4] = std::array::from_fn(|p| _mm512_set1_epi64(q.planes[p][1] as i64));
        let (two_step, two_low) = (_mm256_set1_ps(2.0 * q.step), _mm256_set1_ps(2.0 * q.low));
        let (sum, threshold) = (_mm256_set1_ps(q.sum), _mm256_set1_ps(threshold));
        for i in (0..whole).step_by(8) {
            // SAFETY: i + 8 ≤ whole ≤ the length of every per-face array.
            unsafe {
                let low = _mm512_loadu_si512(self.low.as_ptr().add(i).cast());
                let high = _mm512_loadu_si512(self.high.as_ptr().add(i).cast());
                let mut levels = _mm512_setzero_si512();
                for p in 0..4 {
                    let count = _mm512_add_epi64(
                        _mm512_popcnt_epi64(_mm512_and_si512(low, low_planes[p])),
                        _mm512_popcnt_epi64(_mm512_and_si512(high, high_planes[p])),
                    );
                    levels = _mm512_add_epi64(levels, _mm512_sllv_epi64(count, _mm512_set1_epi64(p as i64)));
                }
                let levels = _mm256_cvtepi32_ps(_mm512_cvtepi64_epi32(levels));
                let ones = _mm256_loadu_ps(self.ones.as_ptr().add(i));
                let inner = _mm256_sub_ps(_mm256_fmadd_ps(two_step, levels, _mm256_mul_ps(two_low, ones)), sum);
                let scale = _mm256_loadu_ps(self.scale.as_ptr().add(i));
                let estimate = _mm256_fmadd_ps(scale, inner, _mm256_loadu_ps(self.offset.as_ptr().add(i)));
                let mut passed = _mm256_cmp_ps_mask::<_CMP_GE_OQ>(estimate, threshold);
                while passed != 0 {
                    out.push((i + passed.trailing_zeros() as usize) as u32);
                    passed &= passed - 1;
                }
            }
        }
        whole
    }

    /// The top 10 by exact cosine among about `k` faces passing the estimate.
    fn search(&self, data: &Data, kernel: Kernel, q: &[f32], k: usize, candidates: &mut Vec<u32>) -> Vec<usize> {
        let query = self.query(q);
        let mut sample: Vec<f32> = (0..data.len()).step_by(64).map(|i| self.estimate(&query, i)).collect();
        let rank = (k * sample.len() / data.len()).min(sample.len() - 1);
        let threshold = *sample.select_nth_unstable_by(rank, |a, b| b.total_cmp(a)).1;
        candidates.clear();
        self.scan(&query, threshold, candidates);
        let mut scores = vec![0.0; candidates.len()];
        kernel.gather(q, &data.features, candidates, &mut scores);
        let mut scored: Vec<(f32, usize)> =
            scores.into_iter().zip(candidates.iter().map(|&row| row as usize)).collect();
        let top = scored.len().min(10);
        if top > 0 {
            scored.select_nth_unstable_by(top - 1, |a, b| b.0.total_cmp(&a.0));
        }
        scored[..top].iter().map(|&(_, row)| row).collect()
    }
}

/// Recall@10 against the exact top-10 and latency of `SignCodes` for each candidate count, next
/// to the exact scan of the same faces and probes in the same run.
fn prefilter(data: &Data, schema: &Schema, candidate_counts: &[usize]) {
    let started = Instant::now();
    let codes = SignCodes::new(data);
    println!(
        "\n-- sign-code prefilter ({} faces, codes built in {:.1} s) --",
        data.len(),
        started.elapsed().as_secs_f64()
    );
    let mut exact = build_exact(data, schema);
    let slot = slot_map(data);
    let mut exact_times = Vec::new();
    let truth: Vec<Vec<usize>> = data
        .queries
        .iter()
        .map(|q| {
            let started = Instant::now();
            let hits = exact_search(&mut exact, q, 10, None);
            exact_times.push(started.elapsed());
            hits.iter().map(|h| slot[&h.face_id]).collect()
        })
        .collect();
    exact_times.sort();
    println!("exact scan: p50 {:.3} ms, p90 {:.3} ms", ms(pct(&exact_times, 0.5)), ms(pct(&exact_times, 0.9)));
    println!("{:>10} {:>10} {:>10} {:>10} {:>12}", "k", "recall@10", "p50 ms", "p90 ms", "candidates");
    let mut candidates = Vec::new();
    for &k in candidate_counts.iter().filter(|&&k| k < data.len()) {
        let (mut times, mut found, mut counts) = (Vec::new(), 0usize, Vec::new());
        for (q, expected) in data.queries.iter().zip(&truth) {
            let started = Instant::now();
            let top = black_box(codes.search(data, exact.kernel(), q, k, &mut candidates));
            times.push(started.elapsed());
            counts.push(candidates.len());
            found += expected.iter().filter(|row| top.contains(row)).count();
        }
        times.sort();
        counts.sort_unstable();
        let total: usize = truth.iter().map(Vec::len).sum();
        println!(
            "{:>10} {:>10.4} {:>10.3} {:>10.3} {:>12}",
            k,
            found as f64 / total as f64,
            ms(pct(&times, 0.5)),
            ms(pct(&times, 0.9)),
            counts[counts.len() / 2]
        );
    }
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
