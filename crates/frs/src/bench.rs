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
use frs_vision::detect::DetectorInput;
use frs_vision::{ImageLimits, Pipeline, PipelineConfig, StageTimings, decode_image};
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

/// One image file, read into memory.
struct Sample {
    path: PathBuf,
    bytes: Vec<u8>,
}

/// Sums over the images of one paired pass.
#[derive(Default)]
struct Paired {
    images: usize,
    faces: usize,
    decode: Duration,
    /// Detect + align + embed, as the caller of `Pipeline` sees it.
    pipeline: Duration,
    stages: StageTimings,
    /// The same two model calls as bare `Session::run`s.
    bare: Duration,
}

impl Paired {
    fn add(&mut self, other: Paired) {
        self.images += other.images;
        self.faces += other.faces;
        self.decode += other.decode;
        self.pipeline += other.pipeline;
        self.bare += other.bare;
        let (s, o) = (&mut self.stages, other.stages);
        s.detect_preprocess += o.detect_preprocess;
        s.detect_model += o.detect_model;
        s.detect_postprocess += o.detect_postprocess;
        s.align += o.align;
        s.embed_model += o.embed_model;
    }
}

/// Figures of one round (sums over its chunks).
#[derive(Default)]
struct Round {
    paired: Paired,
    one_worker: Duration,
    two_workers: Duration,
    opencv: Vec<OpenCvResult>,
}

/// The bare sessions the pipeline's model calls are compared with (same options as the pipeline's).
struct BareModels {
    detector: Session,
    recognizer: Session,
    max_side: u32,
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

/// Images per chunk: every measurement of a round runs on one chunk before the next chunk, so the
/// compared figures are taken seconds apart and share the machine's background load.
const CHUNK: usize = 100;

/// Runs the benchmark and prints its report.
pub fn run(config: &Config, args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.limit > 0, "--limit must be at least 1");
    let limits = ImageLimits::default();
    let mut pipeline_config = config.pipeline();
    pipeline_config.threads = 1;

    let paths = image_files(&args.images, args.limit)?;
    anyhow::ensure!(!paths.is_empty(), "no images under {}", args.images.display());
    let (samples, skipped) = load_samples(paths, &limits)?;
    anyhow::ensure!(!samples.is_empty(), "none of the images decodes");
    let mut pipelines = vec![new_pipeline(&pipeline_config)?, new_pipeline(&pipeline_config)?];
    let environment = frs_vision::runtime::init(&pipeline_config.models.onnxruntime)?;
    let mut bare = BareModels {
        detector: frs_vision::runtime::session(&environment, &pipeline_config.models.detector, 1)?,
        recognizer: frs_vision::runtime::session(&environment, &pipeline_config.models.recognizer, 1)?,
        max_side: pipeline_config.detector.max_input_side,
    };
    paired(&mut pipelines[0], &mut bare, &samples[..1], &limits)?;

    let chunks: Vec<&[Sample]> = samples.chunks(CHUNK).collect();
    let lists = if args.opencv {
        chunks.iter().enumerate().map(|(i, chunk)| write_image_list(chunk, i)).collect::<anyhow::Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    println!(
        "frs bench: {} images from {}{}, {} rounds, models in {} ({:?} recognizer)",
        samples.len(),
        args.images.display(),
        if skipped > 0 { format!(" ({skipped} undecodable skipped)") } else { String::new() },
        args.rounds.max(1),
        config.models.dir.display(),
        config.models.recognizer,
    );
    println!("one intra-op thread per session; each worker owns one Pipeline; the largest face is embedded\n");

    let mut rounds = Vec::new();
    for round in 0..args.rounds.max(1) {
        let mut r = Round::default();
        for (i, chunk) in chunks.iter().enumerate() {
            r.paired.add(paired(&mut pipelines[0], &mut bare, chunk, &limits)?);
            r.one_worker += throughput(&mut pipelines[..1], chunk, &limits)?;
            r.two_workers += throughput(&mut pipelines[..2], chunk, &limits)?;
            for p in &mut pipelines {
                p.take_timings();
            }
            if let Some(list) = lists.get(i) {
                r.opencv.push(run_opencv(&args, config, list, chunk.len())?);
            }
        }
        eprintln!("round {}/{} done", round + 1, args.rounds.max(1));
        rounds.push(r);
    }
    for list in lists {
        let _ = std::fs::remove_file(list);
    }
    report(&rounds, samples.len());
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
            } else if frs_vision::has_image_extension(&path) {
                found.push(path);
            }
        }
    }
    found.sort_by(|a, b| a.as_os_str().as_encoded_bytes().cmp(b.as_os_str().as_encoded_bytes()));
    found.truncate(limit);
    Ok(found)
}

/// Reads every file into memory, dropping (and counting) those that do not decode.
fn load_samples(paths: Vec<PathBuf>, limits: &ImageLimits) -> anyhow::Result<(Vec<Sample>, usize)> {
    let mut samples = Vec::with_capacity(paths.len());
    let mut skipped = 0;
    for path in paths {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if decode_image(&bytes, limits).is_ok() {
            samples.push(Sample { path, bytes });
        } else {
            skipped += 1;
        }
    }
    Ok((samples, skipped))
}

/// Per image: decode, detect and embed the largest face through `pipeline` (timed per stage), then
/// the same two model calls on the same inputs as bare `Session::run`s. Building the bare calls'
/// input tensors and dropping their outputs is not timed.
fn paired(
    pipeline: &mut Pipeline,
    bare: &mut BareModels,
    samples: &[Sample],
    limits: &ImageLimits,
) -> anyhow::Result<Paired> {
    let mut totals = Paired::default();
    let mut input = DetectorInput::default();
    let mut crop = vec![0.0f32; 3 * CROP_SIDE * CROP_SIDE];
    pipeline.take_timings();
    for sample in samples {
        let start = Instant::now();
        let image = decode_image(&sample.bytes, limits)?;
        let decoded = Instant::now();
        let faces = pipeline.detect(&image)?;
        let face = faces.first();
        if let Some(face) = face {
            pipeline.embed(&image, std::slice::from_ref(face))?;
        }
        totals.pipeline += decoded.elapsed();
        totals.decode += decoded - start;
        totals.images += 1;

        let geometry = input.fill(&image, bare.max_side)?;
        totals.bare += timed_run(&mut bare.detector, geometry.shape(), input.data())?;
        if let Some(face) = face {
            let transform = landmarks_to_template(&face.landmarks).context("degenerate landmarks")?;
            warp_to_planar_rgb(&image, &transform, &mut crop).context("degenerate alignment")?;
            totals.bare += timed_run(&mut bare.recognizer, [1, 3, CROP_SIDE, CROP_SIDE], &crop)?;
            totals.faces += 1;
        }
    }
    totals.stages = pipeline.take_timings();
    Ok(totals)
}

/// Wall time to decode, detect and embed the largest face of every sample, the samples shared out
/// among one thread per pipeline.
fn throughput(pipelines: &mut [Pipeline], samples: &[Sample], limits: &ImageLimits) -> anyhow::Result<Duration> {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> =
            pipelines.iter_mut().map(|pipeline| scope.spawn(|| worker(pipeline, samples, &next, limits))).collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| anyhow!("a benchmark worker panicked"))?)
    })?;
    Ok(start.elapsed())
}

fn worker(pipeline: &mut Pipeline, samples: &[Sample], next: &AtomicUsize, limits: &ImageLimits) -> anyhow::Result<()> {
    while let Some(sample) = samples.get(next.fetch_add(1, Ordering::Relaxed)) {
        let image = decode_image(&sample.bytes, limits)?;
        let faces = pipeline.detect(&image)?;
        if let Some(face) = faces.first() {
            pipeline.embed(&image, std::slice::from_ref(face))?;
        }
    }
    Ok(())
}

fn timed_run(session: &mut Session, shape: [usize; 4], data: &[f32]) -> anyhow::Result<Duration> {
    let tensor = TensorRef::from_array_view((shape, data))?;
    let start = Instant::now();
    let outputs = session.run(ort::inputs![tensor])?;
    let elapsed = start.elapsed();
    drop(outputs);
    Ok(elapsed)
}

/// A temporary file naming the samples, one path a line, so OpenCV sees exactly the same images.
fn write_image_list(samples: &[Sample], index: usize) -> anyhow::Result<PathBuf> {
    let mut text = String::new();
    for sample in samples {
        let path = sample.path.to_str().with_context(|| format!("{} is not UTF-8", sample.path.display()))?;
        anyhow::ensure!(!path.contains('\n'), "{} contains a line break", sample.path.display());
        text.push_str(path);
        text.push('\n');
    }
    let file = std::env::temp_dir().join(format!("frs-bench-{}-{index}.txt", std::process::id()));
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

fn report(rounds: &[Round], images: usize) {
    let Some(best) = rounds.iter().min_by_key(|r| r.paired.pipeline) else { return };
    let n = images as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1e3 / n;
    let p = &best.paired;
    let s = &p.stages;
    println!("per image, one worker (best round; {} of {images} images have a face to align and embed)", p.faces);
    for (name, d) in [
        ("decode", p.decode),
        ("detect preprocess", s.detect_preprocess),
        ("detect model", s.detect_model),
        ("detect postprocess", s.detect_postprocess),
        ("align", s.align),
        ("embed model", s.embed_model),
    ] {
        println!("  {name:<36} {:8.3} ms", ms(d));
    }
    println!("  {:<36} {:8.3} ms", "detect + align + embed (pipeline)", ms(p.pipeline));
    println!("  {:<36} {:8.3} ms", "same model calls, bare Session::run", ms(p.bare));
    let overhead = rounds.iter().map(|r| r.paired.pipeline.as_secs_f64() / r.paired.bare.as_secs_f64()).collect();
    println!("  {:<36} {}  target ≤ 1.15×", "pipeline / bare ONNX Runtime", spread(overhead));

    let per_second = |d: Duration| n / d.as_secs_f64();
    let fastest = |f: fn(&Round) -> Duration| rounds.iter().map(f).min().unwrap_or_default();
    println!("\nthroughput, decode + detect + align + embed (best round)");
    println!("  {:<36} {:8.1} images/s", "1 worker", per_second(fastest(|r| r.one_worker)));
    println!("  {:<36} {:8.1} images/s", "2 workers", per_second(fastest(|r| r.two_workers)));
    let scaling = rounds.iter().map(|r| r.one_worker.as_secs_f64() / r.two_workers.as_secs_f64()).collect();
    println!("  {:<36} {}  target ≥ 1.8×", "2 workers / 1 worker", spread(scaling));
    // Background load only ever slows a pass down, so the fastest passes are the least disturbed.
    let best_scaling = fastest(|r| r.one_worker).as_secs_f64() / fastest(|r| r.two_workers).as_secs_f64();
    println!("  {:<36} {best_scaling:.3}×", "2 workers / 1 worker, best rounds");

    let Some(first) = rounds.iter().flat_map(|r| r.opencv.first()).next() else { return };
    let cv_faces = opencv_sum(&rounds[0], |c| c.faces as f64) as usize;
    let cv_images = opencv_sum(&rounds[0], |c| c.images as f64) as usize;
    let Some(cv) = rounds.iter().min_by(|a, b| opencv_sum(a, |c| c.seconds).total_cmp(&opencv_sum(b, |c| c.seconds)))
    else {
        return;
    };
    println!("\nOpenCV {} (scripts/bench_opencv.py, one thread; best round)", first.opencv);
    if cv_images != images || cv_faces != p.faces {
        println!("  note: OpenCV embedded {cv_faces} of {cv_images} images, frs {} of {images}", p.faces);
    }
    // Per-chunk milliseconds per image, weighted back to the whole set.
    let stage = |f: fn(&OpenCvStages) -> f64| opencv_sum(cv, |c| f(&c.ms_per_image) * c.images as f64) / n;
    for (name, v) in [
        ("decode", stage(|m| m.decode)),
        ("detect", stage(|m| m.detect)),
        ("align", stage(|m| m.align)),
        ("feature", stage(|m| m.feature)),
    ] {
        println!("  {name:<36} {v:8.3} ms");
    }
    println!("  {:<36} {:8.1} images/s", "1 thread", n / opencv_sum(cv, |c| c.seconds));
    let whole = rounds.iter().map(|r| opencv_sum(r, |c| c.seconds) / r.one_worker.as_secs_f64()).collect();
    println!("  {:<36} {}  target ≥ 1.5×", "frs / OpenCV, images/s", spread(whole));
    let best_whole = opencv_sum(cv, |c| c.seconds) / fastest(|r| r.one_worker).as_secs_f64();
    println!("  {:<36} {best_whole:.3}×", "frs / OpenCV, images/s, best rounds");
    let without_decode = rounds
        .iter()
        .map(|r| {
            let cv = opencv_sum(r, |c| {
                (c.ms_per_image.detect + c.ms_per_image.align + c.ms_per_image.feature) * c.images as f64
            });
            cv / 1e3 / r.paired.pipeline.as_secs_f64()
        })
        .collect();
    println!("  {:<36} {}", "frs / OpenCV, detect + align + embed", spread(without_decode));
}

/// The sum of `f` over a round's OpenCV chunks.
fn opencv_sum(round: &Round, f: impl Fn(&OpenCvResult) -> f64) -> f64 {
    round.opencv.iter().map(f).sum()
}
