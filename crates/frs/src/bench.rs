//! `frs bench`: where one image's time goes, what the pipeline adds around ONNX Runtime, how
//! throughput scales from one worker to two and, with `--opencv`, OpenCV's own pipeline on the same
//! images. Every compared figure comes from the same run: each round measures everything once, in a
//! fixed order, and ratios are taken within a round (the machine is shared and noisy).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use frs_vision::align::{CROP_SIDE, landmarks_to_template, warp_to_planar_rgb};
use frs_vision::{Face, ImageLimits, Pipeline, PipelineConfig, StageTimings, decode_image};
use image::RgbImage;
use ort::session::Session;
use ort::value::TensorRef;

use crate::config::Config;

/// `frs bench`: per-stage timings, pipeline overhead over bare ONNX Runtime, 1→2 worker scaling.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Folder of images, searched recursively (.jpg, .jpeg, .png, .bmp).
    #[arg(default_value = "../shared/data/lfw")]
    pub images: PathBuf,
    /// Use the first N images in path (byte) order.
    #[arg(long, default_value_t = 300)]
    pub limit: usize,
    /// Rounds; each measures everything once. Times are the best round, ratios the median round.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Also run OpenCV's pipeline (scripts/bench_opencv.py) on the same images each round.
    #[arg(long)]
    pub opencv: bool,
    /// The OpenCV benchmark script.
    #[arg(long, default_value = "scripts/bench_opencv.py")]
    pub opencv_script: PathBuf,
    /// Python that runs the script (it installs its pinned packages into a venv under .cache/).
    #[arg(long, default_value = "python3")]
    pub python: PathBuf,
}

/// One image: its bytes and the face the pipeline embeds (the largest), found in a first pass.
struct Sample {
    path: PathBuf,
    bytes: Vec<u8>,
    face: Option<Face>,
}

/// Sums over the images one worker handled.
#[derive(Default)]
struct WorkerTotals {
    images: usize,
    decode: Duration,
    /// Detect + align + embed, as the caller of `Pipeline` sees it.
    pipeline: Duration,
    stages: StageTimings,
}

/// Figures of one round.
struct Round {
    one_worker: Duration,
    two_workers: Duration,
    totals: WorkerTotals,
    bare_runtime: Duration,
    opencv: Option<OpenCvResult>,
}

/// What scripts/bench_opencv.py prints with `--json`.
#[derive(serde::Deserialize)]
struct OpenCvResult {
    opencv: String,
    images: usize,
    faces: usize,
    seconds: f64,
    ms_per_image: OpenCvStages,
}

#[derive(serde::Deserialize)]
struct OpenCvStages {
    decode: f64,
    detect: f64,
    align: f64,
    feature: f64,
}

/// Runs the benchmark and prints its report.
pub fn run(config: &Config, args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.limit > 0, "--limit must be at least 1");
    let limits = ImageLimits::default();
    let mut pipeline_config = config.pipeline();
    pipeline_config.threads = 1;

    let paths = image_files(&args.images, args.limit)?;
    anyhow::ensure!(!paths.is_empty(), "no images under {}", args.images.display());
    let mut pipelines = vec![new_pipeline(&pipeline_config)?, new_pipeline(&pipeline_config)?];
    let (samples, skipped) = load_samples(paths, &mut pipelines[0], &limits)?;
    anyhow::ensure!(!samples.is_empty(), "none of the images decodes");
    let faces = samples.iter().filter(|s| s.face.is_some()).count();

    let environment = frs_vision::runtime::init(&pipeline_config.models.onnxruntime)?;
    let mut bare_detector = frs_vision::runtime::session(&environment, &pipeline_config.models.detector, 1)?;
    let mut bare_recognizer = frs_vision::runtime::session(&environment, &pipeline_config.models.recognizer, 1)?;
    let max_side = pipeline_config.detector.max_input_side;
    bare_model_calls(&mut bare_detector, &mut bare_recognizer, &samples[..1], &limits, max_side)?;

    let list = if args.opencv { Some(write_image_list(&samples)?) } else { None };
    println!(
        "frs bench: {} images from {} ({faces} with a face of at least {} px{}), {} rounds, models in {}",
        samples.len(),
        args.images.display(),
        pipeline_config.detector.min_face_size,
        if skipped > 0 { format!("; {skipped} undecodable skipped") } else { String::new() },
        args.rounds.max(1),
        config.models.dir.display(),
    );
    println!("one intra-op thread per session; each worker owns one Pipeline\n");

    let mut rounds = Vec::new();
    for round in 0..args.rounds.max(1) {
        let (one_worker, mut totals) = throughput(&mut pipelines[..1], &samples, &limits)?;
        let mut totals = totals.pop().unwrap_or_default();
        totals.stages = pipelines[0].take_timings();
        let bare_runtime = bare_model_calls(&mut bare_detector, &mut bare_recognizer, &samples, &limits, max_side)?;
        let (two_workers, _) = throughput(&mut pipelines[..2], &samples, &limits)?;
        for p in &mut pipelines {
            p.take_timings();
        }
        let opencv = match &list {
            Some(list) => Some(run_opencv(&args, config, list, samples.len())?),
            None => None,
        };
        eprintln!("round {}/{} done", round + 1, args.rounds.max(1));
        rounds.push(Round { one_worker, two_workers, totals, bare_runtime, opencv });
    }
    if let Some(list) = list {
        let _ = std::fs::remove_file(list);
    }
    report(&rounds, samples.len(), faces);
    Ok(())
}

fn new_pipeline(config: &PipelineConfig) -> anyhow::Result<Pipeline> {
    let mut pipeline = Pipeline::new(config).context("loading the models")?;
    pipeline.warm_up()?;
    Ok(pipeline)
}

/// Every image file under `root` (not following symlinks), sorted by path bytes, the first `limit`.
fn image_files(root: &Path, limit: usize) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                pending.push(path);
            } else if has_image_extension(&path) {
                found.push(path);
            }
        }
    }
    found.sort_by(|a, b| a.as_os_str().as_encoded_bytes().cmp(b.as_os_str().as_encoded_bytes()));
    found.truncate(limit);
    Ok(found)
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["jpg", "jpeg", "png", "bmp"].iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Reads every file into memory and finds the face the pipeline will embed; drops files that do
/// not decode and returns how many it dropped.
fn load_samples(
    paths: Vec<PathBuf>,
    pipeline: &mut Pipeline,
    limits: &ImageLimits,
) -> anyhow::Result<(Vec<Sample>, usize)> {
    let mut samples = Vec::with_capacity(paths.len());
    let mut skipped = 0;
    for path in paths {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let Ok(image) = decode_image(&bytes, limits) else {
            skipped += 1;
            continue;
        };
        let face = pipeline.detect(&image)?.into_iter().next();
        samples.push(Sample { path, bytes, face });
    }
    pipeline.take_timings();
    Ok((samples, skipped))
}

/// Decodes, detects and embeds the largest face of every sample, the samples shared out among one
/// thread per pipeline; returns the wall time and each worker's totals.
fn throughput(
    pipelines: &mut [Pipeline],
    samples: &[Sample],
    limits: &ImageLimits,
) -> anyhow::Result<(Duration, Vec<WorkerTotals>)> {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let totals = std::thread::scope(|scope| {
        let workers: Vec<_> =
            pipelines.iter_mut().map(|pipeline| scope.spawn(|| worker(pipeline, samples, &next, limits))).collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| anyhow!("a benchmark worker panicked"))?)
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    Ok((start.elapsed(), totals))
}

fn worker(
    pipeline: &mut Pipeline,
    samples: &[Sample],
    next: &AtomicUsize,
    limits: &ImageLimits,
) -> anyhow::Result<WorkerTotals> {
    let mut totals = WorkerTotals::default();
    while let Some(sample) = samples.get(next.fetch_add(1, Ordering::Relaxed)) {
        let start = Instant::now();
        let image = decode_image(&sample.bytes, limits)?;
        let decoded = Instant::now();
        let faces = pipeline.detect(&image)?;
        if let Some(face) = faces.first() {
            pipeline.embed(&image, std::slice::from_ref(face))?;
        }
        totals.pipeline += decoded.elapsed();
        totals.decode += decoded - start;
        totals.images += 1;
    }
    Ok(totals)
}

/// The time of bare `Session::run` calls on the inputs the pipeline gives its two models for every
/// sample (detector on the padded image, recognizer on the aligned largest face). Building the
/// input tensors and dropping the outputs is not timed.
fn bare_model_calls(
    detector: &mut Session,
    recognizer: &mut Session,
    samples: &[Sample],
    limits: &ImageLimits,
    max_side: u32,
) -> anyhow::Result<Duration> {
    let mut total = Duration::ZERO;
    let mut input = Vec::new();
    let mut crop = vec![0.0f32; 3 * CROP_SIDE * CROP_SIDE];
    for sample in samples {
        let image = decode_image(&sample.bytes, limits)?;
        let shape = detector_input(&image, max_side, &mut input);
        total += timed_run(detector, shape, &input)?;
        if let Some(face) = &sample.face {
            let transform = landmarks_to_template(&face.landmarks).context("degenerate landmarks")?;
            warp_to_planar_rgb(&image, &transform, &mut crop).context("degenerate alignment")?;
            total += timed_run(recognizer, [1, 3, CROP_SIDE, CROP_SIDE], &crop)?;
        }
    }
    Ok(total)
}

fn timed_run(session: &mut Session, shape: [usize; 4], data: &[f32]) -> anyhow::Result<Duration> {
    let tensor = TensorRef::from_array_view((shape, data))?;
    let start = Instant::now();
    let outputs = session.run(ort::inputs![tensor])?;
    let elapsed = start.elapsed();
    drop(outputs);
    Ok(elapsed)
}

/// The detector input frs builds (`frs_vision::detect`): the image scaled so its longer side is at
/// most `max_side` (never up), zero-padded right and bottom to multiples of 32, planar BGR 0–255.
/// Identical to the pipeline's tensor when no scaling is needed (LFW); otherwise the same shape with
/// `image`'s bilinear filter instead of fast_image_resize's, which leaves the timing unchanged.
fn detector_input(image: &RgbImage, max_side: u32, out: &mut Vec<f32>) -> [usize; 4] {
    let (width, height) = image.dimensions();
    let longer = width.max(height);
    let scaled;
    let pixels = if longer > max_side {
        let s = max_side as f32 / longer as f32;
        let (w, h) = (((width as f32 * s).round() as u32).max(1), ((height as f32 * s).round() as u32).max(1));
        scaled = image::imageops::resize(image, w, h, image::imageops::FilterType::Triangle);
        &scaled
    } else {
        image
    };
    let (w, h) = (pixels.width() as usize, pixels.height() as usize);
    let (pw, ph) = (w.div_ceil(32) * 32, h.div_ceil(32) * 32);
    let plane = pw * ph;
    out.clear();
    out.resize(3 * plane, 0.0);
    for (y, row) in pixels.as_raw().chunks_exact(w * 3).enumerate() {
        for (x, px) in row.chunks_exact(3).enumerate() {
            let i = y * pw + x;
            out[i] = f32::from(px[2]);
            out[plane + i] = f32::from(px[1]);
            out[2 * plane + i] = f32::from(px[0]);
        }
    }
    [1, 3, ph, pw]
}

/// A temporary file naming the samples, one path a line, so OpenCV sees exactly the same images.
fn write_image_list(samples: &[Sample]) -> anyhow::Result<PathBuf> {
    let mut text = String::new();
    for sample in samples {
        let path = sample.path.to_str().with_context(|| format!("{} is not UTF-8", sample.path.display()))?;
        anyhow::ensure!(!path.contains('\n'), "{} contains a line break", sample.path.display());
        text.push_str(path);
        text.push('\n');
    }
    let file = std::env::temp_dir().join(format!("frs-bench-images-{}.txt", std::process::id()));
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    Ok(file)
}

/// One round of scripts/bench_opencv.py with frs's detector settings.
fn run_opencv(args: &BenchArgs, config: &Config, list: &Path, images: usize) -> anyhow::Result<OpenCvResult> {
    let d = &config.detector;
    let output = Command::new(&args.python)
        .arg(&args.opencv_script)
        .arg("--list")
        .arg(list)
        .args(["--limit", &images.to_string(), "--rounds", "1", "--json"])
        .args(["--score-threshold", &d.score_threshold.to_string()])
        .args(["--nms-threshold", &d.nms_threshold.to_string()])
        .args(["--min-face-size", &d.min_face_size.to_string()])
        .args(["--max-input-side", &d.max_input_side.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {} {}", args.python.display(), args.opencv_script.display()))?;
    anyhow::ensure!(output.status.success(), "{} failed ({})", args.opencv_script.display(), output.status);
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("reading the OpenCV result {line:?}"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `median (min–max)` of per-round values.
fn spread(values: Vec<f64>) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.3}× (rounds {min:.3}–{max:.3})", median(values))
}

fn report(rounds: &[Round], images: usize, faces: usize) {
    let Some(best) = rounds.iter().min_by_key(|r| r.one_worker) else { return };
    let n = images as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1e3 / n;
    let t = &best.totals;
    let s = &t.stages;
    println!("per image, one worker (best round; align and embed run on the {faces} images with a face)");
    for (name, d) in [
        ("decode", t.decode),
        ("detect preprocess", s.detect_preprocess),
        ("detect model", s.detect_model),
        ("detect postprocess", s.detect_postprocess),
        ("align", s.align),
        ("embed model", s.embed_model),
    ] {
        println!("  {name:<36} {:8.3} ms", ms(d));
    }
    println!("  {:<36} {:8.3} ms", "detect + align + embed (pipeline)", ms(t.pipeline));
    println!("  {:<36} {:8.3} ms", "same model calls, bare Session::run", ms(best.bare_runtime));
    let overhead = rounds.iter().map(|r| r.totals.pipeline.as_secs_f64() / r.bare_runtime.as_secs_f64()).collect();
    println!("  {:<36} {}  target ≤ 1.15×", "pipeline / bare ONNX Runtime", spread(overhead));

    let per_second = |d: Duration| n / d.as_secs_f64();
    let fastest = |f: fn(&Round) -> Duration| rounds.iter().map(f).min().unwrap_or_default();
    println!("\nthroughput, decode + detect + align + embed (best round)");
    println!("  {:<36} {:8.1} images/s", "1 worker", per_second(fastest(|r| r.one_worker)));
    println!("  {:<36} {:8.1} images/s", "2 workers", per_second(fastest(|r| r.two_workers)));
    let scaling = rounds.iter().map(|r| r.one_worker.as_secs_f64() / r.two_workers.as_secs_f64()).collect();
    println!("  {:<36} {}  target ≥ 1.8×", "2 workers / 1 worker", spread(scaling));

    let opencv: Vec<(&Round, &OpenCvResult)> = rounds.iter().filter_map(|r| Some((r, r.opencv.as_ref()?))).collect();
    let Some((_, first)) = opencv.first() else { return };
    let Some(cv) = opencv.iter().map(|(_, cv)| cv).min_by(|a, b| a.seconds.total_cmp(&b.seconds)) else { return };
    println!("\nOpenCV {} (scripts/bench_opencv.py, one thread; best round)", first.opencv);
    if first.images != images || first.faces != faces {
        println!("  note: OpenCV embedded {} of {} images, frs {faces} of {images}", first.faces, first.images);
    }
    let m = &cv.ms_per_image;
    for (name, v) in [("decode", m.decode), ("detect", m.detect), ("align", m.align), ("feature", m.feature)] {
        println!("  {name:<36} {v:8.3} ms");
    }
    println!("  {:<36} {:8.1} images/s", "1 thread", images as f64 / cv.seconds);
    let whole = opencv.iter().map(|(r, cv)| cv.seconds / r.one_worker.as_secs_f64()).collect();
    println!("  {:<36} {}  target ≥ 1.5×", "frs / OpenCV, images/s", spread(whole));
    let models = opencv
        .iter()
        .map(|(r, cv)| {
            let m = &cv.ms_per_image;
            (m.detect + m.align + m.feature) * n / 1e3 / r.totals.pipeline.as_secs_f64()
        })
        .collect();
    println!("  {:<36} {}", "frs / OpenCV, without decode", spread(models));
}
