//! The whole per-image path: detection, then alignment and embedding of chosen faces.

use std::path::PathBuf;
use std::time::Duration;

use image::RgbImage;

use crate::detect::{Detector, DetectorConfig, Face};
use crate::embed::Embedder;
use crate::{Feature, VisionError};

/// Where the converted fp32 models and the ONNX Runtime library live.
#[derive(Debug, Clone)]
pub struct ModelPaths {
    /// `libonnxruntime.so` to load (ort `load-dynamic`).
    pub onnxruntime: PathBuf,
    /// Converted YuNet (`face_detection_yunet_2023mar`, symbolic input size).
    pub detector: PathBuf,
    /// Converted SFace (`face_recognition_sface_2021dec`).
    pub recognizer: PathBuf,
}

/// The int8 recognizer `frs models quantize` writes beside the converted SFace.
pub const RECOGNIZER_INT8_FILE: &str = "face_recognition_sface_2021dec_int8.onnx";

impl ModelPaths {
    /// The layout that `frs models prepare` writes under `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        ModelPaths {
            onnxruntime: dir.join("libonnxruntime.so"),
            detector: dir.join("face_detection_yunet_2023mar.onnx"),
            recognizer: dir.join("face_recognition_sface_2021dec.onnx"),
        }
    }

    /// The same pack with the int8 recognizer ([`RECOGNIZER_INT8_FILE`]) in place of the fp32 one.
    pub fn with_int8_recognizer(mut self) -> Self {
        self.recognizer.set_file_name(RECOGNIZER_INT8_FILE);
        self
    }

    /// Names the recognizer whose features a face library holds: its file name without extension
    /// (`face_recognition_sface_2021dec` or `face_recognition_sface_2021dec_int8`).
    pub fn feature_model(&self) -> String {
        self.recognizer.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    }
}

/// Everything a [`Pipeline`] needs.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub models: ModelPaths,
    pub detector: DetectorConfig,
    /// Intra-op threads per session.
    pub threads: usize,
}

/// Time spent in each stage of the last calls, for benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimings {
    pub detect_preprocess: Duration,
    pub detect_model: Duration,
    pub detect_postprocess: Duration,
    pub align: Duration,
    pub embed_model: Duration,
}

/// One detector and one recognizer session. Not shared between threads: each worker owns one.
pub struct Pipeline {
    detector: Detector,
    embedder: Embedder,
}

impl Pipeline {
    /// Loads both models.
    pub fn new(config: &PipelineConfig) -> Result<Self, VisionError> {
        let environment = crate::runtime::init(&config.models.onnxruntime)?;
        let detector = crate::runtime::session(&environment, &config.models.detector, config.threads)?;
        let recognizer = crate::runtime::session(&environment, &config.models.recognizer, config.threads)?;
        Ok(Pipeline { detector: Detector::new(detector, config.detector.clone()), embedder: Embedder::new(recognizer) })
    }

    /// Runs each model once so the first request does not pay for lazy initialisation.
    pub fn warm_up(&mut self) -> Result<(), VisionError> {
        let image = RgbImage::from_pixel(160, 160, image::Rgb([128, 128, 128]));
        self.detector.detect(&image)?;
        let face = Face::centered_in(&image);
        self.embedder.embed(&image, std::slice::from_ref(&face))?;
        Ok(())
    }

    /// Every face of at least the configured minimum size, largest first.
    pub fn detect(&mut self, image: &RgbImage) -> Result<Vec<Face>, VisionError> {
        self.detector.detect(image)
    }

    /// Features of `faces` (aligned on their landmarks), in the same order, in one model batch.
    pub fn embed(&mut self, image: &RgbImage, faces: &[Face]) -> Result<Vec<Feature>, VisionError> {
        self.embedder.embed(image, faces)
    }

    /// Per-stage times accumulated since the last call, then reset.
    pub fn take_timings(&mut self) -> StageTimings {
        let mut t = self.detector.take_timings();
        let e = self.embedder.take_timings();
        t.align = e.align;
        t.embed_model = e.embed_model;
        t
    }
}
