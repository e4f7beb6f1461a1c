//! SFace embedding.
use image::RgbImage;
use ort::session::Session;

use crate::{Face, Feature, StageTimings, VisionError};

pub(crate) struct Embedder {
    _session: Session,
}

impl Embedder {
    pub(crate) fn new(session: Session) -> Self {
        Embedder { _session: session }
    }
    pub(crate) fn embed(&mut self, _image: &RgbImage, _faces: &[Face]) -> Result<Vec<Feature>, VisionError> {
        todo!()
    }
    pub(crate) fn take_timings(&mut self) -> StageTimings {
        todo!()
    }
}
