//! The inference gate: a fixed pool of worker threads, each owning its model sessions, fed by one
//! bounded queue. Async callers never block a runtime thread; a full queue is `Overloaded` (429).
//! The engine reports queueing and per-stage times (decode, detect, align, embed) to its
//! [`Observer`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use frs_vision::{DecodeError, Face, Feature, ImageLimits, Pipeline, PipelineConfig, VisionError};
use tokio::sync::oneshot;

use crate::{NoObserver, Observer, ServiceError, Stage};

/// How the inference pool is sized and what it runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub pipeline: PipelineConfig,
    pub limits: ImageLimits,
    /// Worker threads, each with its own ONNX Runtime sessions (one intra-op thread each).
    pub workers: usize,
    /// Requests waiting beyond the ones being processed before new ones get `Overloaded`.
    pub queue_capacity: usize,
}

type Reply<T> = oneshot::Sender<Result<T, ServiceError>>;

enum Job {
    Detect(Vec<u8>, Reply<Vec<Face>>),
    /// Features of the `usize` largest faces.
    Features(Vec<u8>, usize, Reply<Vec<(Face, Feature)>>),
}

/// A job and when it entered the queue.
struct Queued {
    job: Job,
    at: Instant,
}

/// A started inference pool.
pub struct Engine {
    jobs: Sender<Queued>,
    ready_workers: Arc<AtomicUsize>,
    workers: usize,
    observer: Arc<dyn Observer>,
}

impl Engine {
    /// Spawns the workers; each loads and warms up its models in the background.
    /// Jobs sent before then wait in the queue. A worker that fails to load logs the cause and exits.
    pub fn start(config: EngineConfig) -> Engine {
        Engine::start_observed(config, Arc::new(NoObserver))
    }

    /// [`Engine::start`], reporting to `observer`: queue changes and waits, and per image the
    /// decode, detect, align and embed times. The face library built on this engine reports its
    /// search and store times to the same observer.
    pub fn start_observed(config: EngineConfig, observer: Arc<dyn Observer>) -> Engine {
        let workers = config.workers.max(1);
        let (jobs, queue) = crossbeam_channel::bounded(config.queue_capacity);
        let ready_workers = Arc::new(AtomicUsize::new(0));
        for index in 0..workers {
            let queue = queue.clone();
            let config = config.clone();
            let ready = Arc::clone(&ready_workers);
            let observer = Arc::clone(&observer);
            thread::Builder::new()
                .name(format!("frs-infer-{index}"))
                .spawn(move || run_worker(&config, &queue, &ready, observer.as_ref()))
                .expect("spawning an inference thread");
        }
        Engine { jobs, ready_workers, workers, observer }
    }

    /// Where this engine, and the library built on it, report their timings.
    pub(crate) fn observer(&self) -> &Arc<dyn Observer> {
        &self.observer
    }

    /// True once every worker has loaded and warmed up its models.
    pub fn ready(&self) -> bool {
        self.ready_workers.load(Ordering::Acquire) == self.workers
    }

    /// Every face in the image, largest first.
    pub async fn detect(&self, image: Vec<u8>) -> Result<Vec<Face>, ServiceError> {
        self.submit(|reply| Job::Detect(image, reply)).await
    }

    /// The largest face of the image and its feature, or `None` without a face.
    pub async fn largest_face_feature(&self, image: Vec<u8>) -> Result<Option<(Face, Feature)>, ServiceError> {
        Ok(self.face_features(image, 1).await?.pop())
    }

    /// The `max_faces` largest faces of the image with their features, largest first; empty
    /// without a face. All of them go through the recognizer as one batch.
    pub async fn face_features(&self, image: Vec<u8>, max_faces: usize) -> Result<Vec<(Face, Feature)>, ServiceError> {
        self.submit(|reply| Job::Features(image, max_faces, reply)).await
    }

    async fn submit<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, ServiceError> {
        let (reply, answer) = oneshot::channel();
        // Counted before sending, so a worker's −1 never comes first.
        self.observer.queue_changed(1);
        self.jobs.try_send(Queued { job: job(reply), at: Instant::now() }).map_err(|e| {
            self.observer.queue_changed(-1);
            match e {
                TrySendError::Full(_) => ServiceError::Overloaded,
                TrySendError::Disconnected(_) => ServiceError::Internal("no inference worker is running".into()),
            }
        })?;
        answer.await.map_err(|_| ServiceError::Internal("inference worker dropped a job".into()))?
    }
}

fn run_worker(config: &EngineConfig, queue: &Receiver<Queued>, ready: &AtomicUsize, observer: &dyn Observer) {
    let mut pipeline = match Pipeline::new(&config.pipeline).and_then(|mut p| p.warm_up().map(|()| p)) {
        Ok(pipeline) => pipeline,
        Err(e) => {
            tracing::error!(error = %e, "inference worker could not load its models");
            return;
        }
    };
    // The warm-up's times are not a request's.
    pipeline.take_timings();
    ready.fetch_add(1, Ordering::Release);
    for Queued { job, at } in queue {
        observer.queue_changed(-1);
        observer.stage(Stage::Queue, at.elapsed());
        // Stages are reported before the reply, so a caller's next metrics scrape includes them.
        match job {
            Job::Detect(bytes, reply) => {
                let result = detect(&mut pipeline, &config.limits, &bytes, observer);
                report_stages(&mut pipeline, observer);
                let _ = reply.send(result);
            }
            Job::Features(bytes, max_faces, reply) => {
                let result = face_features(&mut pipeline, &config.limits, &bytes, max_faces, observer);
                report_stages(&mut pipeline, observer);
                let _ = reply.send(result);
            }
        }
    }
}

/// Runs `work`, reporting its time as `stage`.
fn timed<T>(observer: &dyn Observer, stage: Stage, work: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = work();
    observer.stage(stage, started.elapsed());
    result
}

/// Reports the pipeline stages the last job ran (a stage that did not run took no time).
fn report_stages(pipeline: &mut Pipeline, observer: &dyn Observer) {
    let t = pipeline.take_timings();
    let detect = t.detect_preprocess + t.detect_model + t.detect_postprocess;
    for (stage, elapsed) in [(Stage::Detect, detect), (Stage::Align, t.align), (Stage::Embed, t.embed_model)] {
        if elapsed > Duration::ZERO {
            observer.stage(stage, elapsed);
        }
    }
}

fn detect(
    pipeline: &mut Pipeline,
    limits: &ImageLimits,
    bytes: &[u8],
    observer: &dyn Observer,
) -> Result<Vec<Face>, ServiceError> {
    let image = timed(observer, Stage::Decode, || frs_vision::decode_image(bytes, limits))?;
    Ok(pipeline.detect(&image)?)
}

fn face_features(
    pipeline: &mut Pipeline,
    limits: &ImageLimits,
    bytes: &[u8],
    max_faces: usize,
    observer: &dyn Observer,
) -> Result<Vec<(Face, Feature)>, ServiceError> {
    let image = timed(observer, Stage::Decode, || frs_vision::decode_image(bytes, limits))?;
    let mut faces = pipeline.detect(&image)?;
    faces.truncate(max_faces);
    if faces.is_empty() {
        return Ok(Vec::new());
    }
    let features = pipeline.embed(&image, &faces)?;
    Ok(faces.into_iter().zip(features).collect())
}

impl From<DecodeError> for ServiceError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::UnsupportedFormat => ServiceError::UnsupportedImageFormat,
            DecodeError::Corrupt(detail) => ServiceError::CorruptImage(detail),
            DecodeError::Resolution { width, height, max } => ServiceError::ImageResolution { width, height, max },
        }
    }
}

impl From<VisionError> for ServiceError {
    fn from(e: VisionError) -> Self {
        match e {
            VisionError::Decode(e) => e.into(),
            VisionError::Inference(detail) => ServiceError::Internal(detail),
        }
    }
}
