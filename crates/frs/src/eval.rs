//! Accuracy evaluation and similarity calibration over labelled face folders.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;
use frs_vision::{Face, Feature, ImageLimits, Pipeline, PipelineConfig, similarity};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::config::Config;

/// Which detected face stands for the labelled person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FaceChoice {
    /// The face nearest the image centre (the LFW protocol).
    Centre,
    /// The largest face (what face-compare and search use).
    Largest,
}

/// `frs eval`: verification accuracy on a pairs file.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// CSV with columns `path_a,path_b,same[,fold]` (header required).
    pub pairs: PathBuf,
    /// Folder the CSV paths are relative to (default: the CSV's folder).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Folds for cross-validation when the CSV has no `fold` column.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    #[arg(long, value_enum, default_value_t = FaceChoice::Centre)]
    pub face: FaceChoice,
    /// Worker threads (each with its own model sessions).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Also write every pair with its score to this CSV: `path_a,path_b,same,fold,score,correct`
    /// (`correct` at the threshold chosen on the other folds).
    #[arg(long)]
    pub scores_out: Option<PathBuf>,
}

/// `frs calibrate`: the impostor score distribution of every different-person pair in a folder.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Folder of `<identity>/<image>` files (e.g. ../shared/data/lfw).
    pub root: PathBuf,
    #[arg(long, value_enum, default_value_t = FaceChoice::Centre)]
    pub face: FaceChoice,
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Also write every image's feature with its identity to this file, the real features the
    /// ANN benchmark fits its synthetic faces to (`FRS_ANN_FEATURES`): little-endian `FRSFEAT1`,
    /// `u32` dimension, `u32` count, then per face a `u32` identity and the feature as `f32`s.
    #[arg(long)]
    pub features_out: Option<PathBuf>,
}

struct Pair {
    a: usize,
    b: usize,
    same: bool,
    fold: usize,
}

/// Prints k-fold accuracy (threshold chosen on the other folds), TAR at the calibrated FAR
/// operating points, the share of images without a face and the time per image.
pub fn run_eval(config: &Config, args: &EvalArgs) -> anyhow::Result<()> {
    let root = args.root.clone().unwrap_or_else(|| args.pairs.parent().unwrap_or(Path::new(".")).to_path_buf());
    let text = std::fs::read_to_string(&args.pairs).with_context(|| format!("reading {}", args.pairs.display()))?;
    let mut names: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut pairs = Vec::new();
    for (line_no, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        anyhow::ensure!(cols.len() >= 3, "line {}: expected path_a,path_b,same[,fold]", line_no + 1);
        let mut id = |p: &str| {
            *index.entry(p.to_string()).or_insert_with(|| {
                names.push(p.to_string());
                names.len() - 1
            })
        };
        let (a, b) = (id(cols[0]), id(cols[1]));
        let fold = match cols.get(3) {
            Some(f) => f.parse::<usize>().with_context(|| format!("line {}: bad fold", line_no + 1))?,
            None => pairs.len() % args.folds.max(2),
        };
        pairs.push(Pair { a, b, same: matches!(cols[2], "1" | "true" | "True"), fold });
    }
    let images: Vec<PathBuf> = names.iter().map(|p| root.join(p)).collect();
    let started = Instant::now();
    let features = embed_all(&config.pipeline(), &images, args.face, args.workers)?;
    let elapsed = started.elapsed();
    let missing = features.iter().filter(|f| f.is_none()).count();

    // A pair with a faceless image gets score 0: it counts as "different".
    let scored: Vec<(f32, bool, usize)> = pairs
        .iter()
        .map(|p| {
            let score = match (&features[p.a], &features[p.b]) {
                (Some(a), Some(b)) => similarity(a, b),
                _ => 0.0,
            };
            (score, p.same, p.fold)
        })
        .collect();
    let folds = cross_validate(&scored);
    for f in &folds {
        println!("fold {}: threshold {:.4}  accuracy {:.2} %", f.fold, f.threshold, 100.0 * f.accuracy);
    }
    let (mean, std) = mean_and_std(&folds);
    println!("accuracy: {:.2} % ± {:.2} ({} folds, {} pairs)", 100.0 * mean, 100.0 * std, folds.len(), pairs.len());
    if let Some(path) = &args.scores_out {
        let write = || -> std::io::Result<()> {
            let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
            writeln!(out, "path_a,path_b,same,fold,score,correct")?;
            for (pair, &(score, same, fold)) in pairs.iter().zip(&scored) {
                let threshold = folds.iter().find(|f| f.fold == fold).map_or(f32::INFINITY, |f| f.threshold);
                let correct = (score >= threshold) == same;
                let (a, b) = (&names[pair.a], &names[pair.b]);
                writeln!(out, "{a},{b},{},{fold},{score:.6},{}", u8::from(same), u8::from(correct))?;
            }
            out.flush()
        };
        write().with_context(|| format!("writing {}", path.display()))?;
    }
    let genuine: Vec<f32> = scored.iter().filter(|s| s.1).map(|s| s.0).collect();
    for (far, score) in frs_vision::similarity::OPERATING_POINTS {
        let tar = genuine.iter().filter(|&&s| s >= score).count() as f64 / genuine.len().max(1) as f64;
        println!("TAR at FAR {far:.0e} (score ≥ {score:.3}): {:.2} %", 100.0 * tar);
    }
    println!(
        "images without a detected face: {missing} of {} ({:.2} %)",
        images.len(),
        100.0 * missing as f64 / images.len().max(1) as f64
    );
    println!(
        "time: {:.1} ms per image end to end ({} workers, decode included)",
        elapsed.as_secs_f64() * 1000.0 * args.workers.max(1) as f64 / images.len().max(1) as f64,
        args.workers.max(1)
    );
    Ok(())
}

/// Prints, for the impostor pairs (different identity folders) of every image under `root`, the
/// cosine and calibrated score at each false-accept rate, and the FAR the fixed mapping achieves.
pub fn run_calibrate(config: &Config, args: &CalibrateArgs) -> anyhow::Result<()> {
    let mut images = Vec::new();
    let mut identities = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&args.root)
        .with_context(|| format!("reading {}", args.root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for (identity, dir) in dirs.iter().enumerate() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for file in files.into_iter().filter(|f| frs_vision::has_image_extension(f)) {
            images.push(file);
            identities.push(identity);
        }
    }
    anyhow::ensure!(!images.is_empty(), "no images under {}", args.root.display());
    let features = embed_all(&config.pipeline(), &images, args.face, args.workers)?;
    let kept: Vec<(usize, &Feature)> =
        features.iter().zip(&identities).filter_map(|(f, id)| f.as_ref().map(|f| (*id, f))).collect();
    if let Some(path) = &args.features_out {
        write_features(path, &kept).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut impostor = Vec::with_capacity(kept.len() * kept.len() / 2);
    let mut genuine = Vec::new();
    for (i, (id_a, a)) in kept.iter().enumerate() {
        for (id_b, b) in &kept[i + 1..] {
            let cosine = frs_vision::similarity::cosine(a, b);
            if id_a == id_b { genuine.push(cosine) } else { impostor.push(cosine) }
        }
    }
    impostor.sort_unstable_by(|a, b| b.total_cmp(a));
    genuine.sort_unstable_by(|a, b| b.total_cmp(a));
    println!(
        "{} images with a face ({} identities), {} impostor pairs, {} genuine pairs",
        kept.len(),
        dirs.len(),
        impostor.len(),
        genuine.len()
    );
    println!("| FAR | cosine | score | TAR (same-identity pairs) |\n|---|---|---|---|");
    for far in [1e-2, 1e-3, 1e-4, 1e-5, 1e-6] {
        let rank = (far * impostor.len() as f64).floor() as usize;
        let Some(&cosine) = impostor.get(rank) else { continue };
        let tar = genuine.iter().take_while(|&&g| g > cosine).count() as f64 / genuine.len().max(1) as f64;
        println!(
            "| {far:.0e} | {cosine:.4} | {:.4} | {:.2} % |",
            frs_vision::similarity::score_of_cosine(cosine),
            100.0 * tar
        );
    }
    if !genuine.is_empty() && !impostor.is_empty() {
        let (mean, std) = mean_and_std(&cross_validate(&balanced_pairs(&genuine, &impostor)));
        println!(
            "verification accuracy: {:.3} % ± {:.3} (10 folds; every genuine pair and as many impostor \
             pairs, drawn with a fixed seed)",
            100.0 * mean,
            100.0 * std
        );
    }
    for threshold in [0.80f32, 0.85, 0.90, 0.93, 0.95] {
        let accepted =
            impostor.iter().take_while(|&&c| frs_vision::similarity::score_of_cosine(c) >= threshold).count();
        println!(
            "score {threshold:.2}: FAR {:.2e} ({accepted} impostor pairs)",
            accepted as f64 / impostor.len() as f64
        );
    }
    Ok(())
}

/// The `FRSFEAT1` file `CalibrateArgs::features_out` describes.
fn write_features(path: &Path, features: &[(usize, &Feature)]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(b"FRSFEAT1")?;
    out.write_all(&(frs_vision::FEATURE_DIM as u32).to_le_bytes())?;
    out.write_all(&(features.len() as u32).to_le_bytes())?;
    for (identity, feature) in features {
        out.write_all(&(*identity as u32).to_le_bytes())?;
        for x in feature.iter() {
            out.write_all(&x.to_le_bytes())?;
        }
    }
    out.flush()
}

/// One fold of [`cross_validate`].
struct FoldResult {
    fold: usize,
    threshold: f32,
    accuracy: f64,
}

/// For each fold of `scored` (score, same person, fold), the accuracy at the threshold
/// [`best_threshold`] chooses on the other folds, by fold number.
fn cross_validate(scored: &[(f32, bool, usize)]) -> Vec<FoldResult> {
    let mut folds: Vec<usize> = scored.iter().map(|s| s.2).collect();
    folds.sort_unstable();
    folds.dedup();
    folds
        .into_iter()
        .map(|fold| {
            let train: Vec<(f32, bool)> = scored.iter().filter(|s| s.2 != fold).map(|s| (s.0, s.1)).collect();
            let threshold = best_threshold(&train);
            let test = scored.iter().filter(|s| s.2 == fold);
            let (total, correct) = test.fold((0, 0), |(n, c), s| (n + 1, c + usize::from((s.0 >= threshold) == s.1)));
            FoldResult { fold, threshold, accuracy: correct as f64 / total as f64 }
        })
        .collect()
}

fn mean_and_std(folds: &[FoldResult]) -> (f64, f64) {
    let n = folds.len().max(1) as f64;
    let mean = folds.iter().map(|f| f.accuracy).sum::<f64>() / n;
    (mean, (folds.iter().map(|f| (f.accuracy - mean).powi(2)).sum::<f64>() / n).sqrt())
}

/// Every genuine cosine and as many impostor cosines, drawn with a fixed seed, each given one
/// of 10 folds at random: the largest balanced verification set the folder gives.
fn balanced_pairs(genuine: &[f32], impostor: &[f32]) -> Vec<(f32, bool, usize)> {
    let mut rng = StdRng::seed_from_u64(0x6672_7321);
    let drawn = rand::seq::index::sample(&mut rng, impostor.len(), genuine.len().min(impostor.len()));
    let pairs: Vec<(f32, bool)> =
        genuine.iter().map(|&g| (g, true)).chain(drawn.iter().map(|i| (impostor[i], false))).collect();
    pairs.into_iter().map(|(score, same)| (score, same, rng.random_range(0..10))).collect()
}

/// The threshold with the best accuracy among the observed scores (the lowest of equals), where a
/// score at or above the threshold means "same person".
fn best_threshold(scored: &[(f32, bool)]) -> f32 {
    let mut sorted = scored.to_vec();
    sorted.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    // Accepting sorted[i..] is right for the genuine pairs from i on and the impostors before i.
    let mut genuine_from = sorted.iter().filter(|s| s.1).count();
    let mut impostors_before = 0;
    let mut best = (0, 0.5);
    let mut i = 0;
    while let Some(&(threshold, _)) = sorted.get(i) {
        if genuine_from + impostors_before > best.0 {
            best = (genuine_from + impostors_before, threshold);
        }
        while let Some(&(_, same)) = sorted.get(i).filter(|s| s.0 == threshold) {
            if same {
                genuine_from -= 1
            } else {
                impostors_before += 1
            }
            i += 1;
        }
    }
    best.1
}

/// The feature of the chosen face of every image (`None` when unreadable or faceless), computed by
/// `workers` threads that each own a pipeline.
pub fn embed_all(
    pipeline: &PipelineConfig,
    images: &[PathBuf],
    choice: FaceChoice,
    workers: usize,
) -> anyhow::Result<Vec<Option<Feature>>> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(vec![None; images.len()]);
    let limits = ImageLimits::default();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    let mut pipeline = Pipeline::new(pipeline)?;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = images.get(i) else { return Ok(()) };
                        let feature = embed_one(&mut pipeline, &limits, path, choice)?;
                        results.lock().map_err(|_| anyhow::anyhow!("worker panicked"))?[i] = feature;
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
        }
        Ok(())
    })?;
    results.into_inner().map_err(|_| anyhow::anyhow!("worker panicked"))
}

fn embed_one(
    pipeline: &mut Pipeline,
    limits: &ImageLimits,
    path: &Path,
    choice: FaceChoice,
) -> anyhow::Result<Option<Feature>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let Ok(image) = frs_vision::decode_image(&bytes, limits) else {
        tracing::warn!(image = %path.display(), "not a readable image");
        return Ok(None);
    };
    let faces = pipeline.detect(&image)?;
    let (cx, cy) = (image.width() as f32 / 2.0, image.height() as f32 / 2.0);
    let distance = |f: &Face| (f.bbox.x + f.bbox.width / 2.0 - cx).hypot(f.bbox.y + f.bbox.height / 2.0 - cy);
    let chosen = match choice {
        FaceChoice::Largest => faces.first().copied(),
        FaceChoice::Centre => faces.iter().min_by(|a, b| distance(a).total_cmp(&distance(b))).copied(),
    };
    let Some(face) = chosen else { return Ok(None) };
    Ok(pipeline.embed(&image, &[face])?.pop())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_threshold_separates_separable_scores() {
        let scored = [(0.2, false), (0.4, false), (0.7, true), (0.9, true)];
        let t = best_threshold(&scored);
        assert!(t > 0.4 && t <= 0.7, "{t}");
    }

    #[test]
    fn best_threshold_is_the_lowest_of_the_best_observed_scores() {
        let naive = |scored: &[(f32, bool)]| {
            let mut best = (0, 0.5);
            let mut candidates: Vec<f32> = scored.iter().map(|s| s.0).collect();
            candidates.sort_unstable_by(f32::total_cmp);
            for t in candidates {
                let correct = scored.iter().filter(|s| (s.0 >= t) == s.1).count();
                if correct > best.0 {
                    best = (correct, t);
                }
            }
            best.1
        };
        let ties = [(0.5, true), (0.5, false), (0.3, false), (0.8, true)];
        assert_eq!(best_threshold(&ties), 0.5, "0.5 and 0.8 both get 3 of 4 right");
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let scored: Vec<(f32, bool)> =
                (0..rng.random_range(1..40)).map(|_| (rng.random_range(0..8) as f32 / 8.0, rng.random())).collect();
            assert_eq!(best_threshold(&scored), naive(&scored), "{scored:?}");
        }
    }

    #[test]
    fn cross_validation_chooses_each_threshold_without_its_own_fold() {
        // Every fold alone is separable; a threshold chosen on the other two misses one pair of
        // folds 0 and 1 (fold 2: 0.5 and 0.9 tie at 3 of 4, and the lower wins).
        let scored =
            [(0.6, false, 0), (0.9, true, 0), (0.4, false, 1), (0.5, true, 1), (0.3, false, 2), (0.7, true, 2)];
        let folds = cross_validate(&scored);
        let summary: Vec<_> = folds.iter().map(|f| (f.fold, f.threshold, f.accuracy)).collect();
        assert_eq!(summary, [(0, 0.5, 0.5), (1, 0.7, 0.5), (2, 0.5, 1.0)]);
    }
}
