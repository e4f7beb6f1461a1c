//! YuNet face detection.
use std::time::Duration;

use image::RgbImage;
use ort::session::Session;

use crate::{BoundingBox, Point, StageTimings, VisionError};

/// Detector settings.
#[derive(Debug, Clone)]
pub struct DetectorConfig {
    pub score_threshold: f32,
    pub nms_threshold: f32,
    /// Faces whose box is smaller than this on its longer side are dropped (FRS: 80 px).
    pub min_face_size: f32,
    /// Longer side the image is resized to before detection, if larger.
    pub max_input_side: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig { score_threshold: 0.6, nms_threshold: 0.3, min_face_size: 80.0, max_input_side: 640 }
    }
}

/// A detected face.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    pub bbox: BoundingBox,
    /// Right eye, left eye (of the person… as YuNet orders them), nose tip, mouth corners.
    pub landmarks: [Point; 5],
    pub score: f32,
}

impl Face {
    pub(crate) fn centered_in(_image: &RgbImage) -> Face {
        todo!()
    }
}

pub(crate) struct Detector {
    _session: Session,
    _config: DetectorConfig,
    _t: Duration,
}

impl Detector {
    pub(crate) fn new(session: Session, config: DetectorConfig) -> Self {
        Detector { _session: session, _config: config, _t: Duration::ZERO }
    }
    pub(crate) fn detect(&mut self, _image: &RgbImage) -> Result<Vec<Face>, VisionError> {
        todo!()
    }
    pub(crate) fn take_timings(&mut self) -> StageTimings {
        todo!()
    }
}
