//! Image bytes → oriented RGB → faces (box, 5 landmarks, score) → aligned 112×112 crops →
//! L2-normalised 128-d features, plus the calibrated similarity FRS returns.
//!
//! Everything here is synchronous and CPU-bound; callers run it off their async runtime.

pub mod align;
pub mod decode;
pub mod detect;
pub mod embed;
mod jpeg;
pub mod pipeline;
pub mod runtime;
pub mod similarity;

pub use decode::{DecodeError, ImageLimits, decode_image, has_image_extension};
pub use detect::{DetectorConfig, Face};
pub use pipeline::{ModelPaths, Pipeline, PipelineConfig, StageTimings};
pub use similarity::{cosine_of_score, score_of_cosine, similarity};

/// Length of a face feature vector.
pub const FEATURE_DIM: usize = 128;

/// An L2-normalised face feature.
pub type Feature = [f32; FEATURE_DIM];

/// A point in original image pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// An axis-aligned box in original image pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BoundingBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl BoundingBox {
    /// Area in square pixels.
    pub fn area(&self) -> f32 {
        self.width * self.height
    }
}

/// Failure of the vision pipeline.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// The input is not an acceptable image (caller's fault).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The model runtime failed (our fault).
    #[error("inference failed: {0}")]
    Inference(String),
}
