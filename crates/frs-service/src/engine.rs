//! The inference gate: a fixed pool of worker threads, each owning its model sessions, fed by one
//! bounded queue. Async callers never block a runtime thread; a full queue is `Overloaded` (429).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use frs_vision::{DecodeError, Face, Feature, ImageLimits, Pipeline, PipelineConfig, VisionError};
use tokio::sync::oneshot;

use crate::ServiceError;

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

/// A started inference pool.
pub struct Engine {
    jobs: Sender<Job>,
    ready_workers: Arc<AtomicUsize>,
    workers: usize,
}

impl Engine {
    /// Spawns the workers; each loads and warms up its models in the background.
    /// Jobs sent before then wait in the queue. A worker that fails to load logs the cause and exits.
    pub fn start(config: EngineConfig) -> Engine {
        let workers = config.workers.max(1);
        let (jobs, queue) = crossbeam_channel::bounded(config.queue_capacity);
        let ready_workers = Arc::new(AtomicUsize::new(0));
        for index in 0..workers {
            let queue = queue.clone();
            let config = config.clone();
            let ready = Arc::clone(&ready_workers);
            thread::Builder::new()
                .name(format!("frs-infer-{index}"))
                .spawn(move || run_worker(&config, &queue, &ready))
                .expect("spawning an inference thread");
        }
        Engine { jobs, ready_workers, workers }
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
        self.jobs.try_send(job(reply)).map_err(|e| match e {
            TrySendError::Full(_) => ServiceError::Overloaded,
            TrySendError::Disconnected(_) => ServiceError::Internal("no inference worker is running".into()),
        })?;
        answer.await.map_err(|_| ServiceError::Internal("inference worker dropped a job".into()))?
    }
}

fn run_worker(config: &EngineConfig, queue: &Receiver<Job>, ready: &AtomicUsize) {
    let mut pipeline = match Pipeline::new(&config.pipeline).and_then(|mut p| p.warm_up().map(|()| p)) {
        Ok(pipeline) => pipeline,
        Err(e) => {
            tracing::error!(error = %e, "inference worker could not load its models");
            return;
        }
    };
    ready.fetch_add(1, Ordering::Release);
    for job in queue {
        match job {
            Job::Detect(bytes, reply) => {
                let _ = reply.send(detect(&mut pipeline, &config.limits, &bytes));
            }
            Job::Features(bytes, max_faces, reply) => {
                let _ = reply.send(face_features(&mut pipeline, &config.limits, &bytes, max_faces));
            }
        }
    }
}

fn detect(pipeline: &mut Pipeline, limits: &ImageLimits, bytes: &[u8]) -> Result<Vec<Face>, ServiceError> {
    let image = frs_vision::decode_image(bytes, limits)?;
    Ok(pipeline.detect(&image)?)
}

fn face_features(
    pipeline: &mut Pipeline,
    limits: &ImageLimits,
    bytes: &[u8],
    max_faces: usize,
) -> Result<Vec<(Face, Feature)>, ServiceError> {
    let image = frs_vision::decode_image(bytes, limits)?;
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
