//! SFace (face_recognition_sface_2021dec) embedding of aligned crops.

use std::time::Instant;

use image::RgbImage;
use ort::session::Session;
use ort::value::TensorRef;

use crate::align::{CROP_SIDE, landmarks_to_template, warp_to_planar_rgb};
use crate::runtime::inference;
use crate::{FEATURE_DIM, Face, Feature, StageTimings, VisionError};

pub(crate) struct Embedder {
    session: Session,
    input: Vec<f32>,
    timings: StageTimings,
}

impl Embedder {
    pub(crate) fn new(session: Session) -> Self {
        Embedder { session, input: Vec::new(), timings: StageTimings::default() }
    }

    /// Aligns every face and runs them through SFace as one batch (RGB, 0–255, as OpenCV's
    /// `FaceRecognizerSF::feature` feeds it). Features are L2-normalised.
    pub(crate) fn embed(&mut self, image: &RgbImage, faces: &[Face]) -> Result<Vec<Feature>, VisionError> {
        if faces.is_empty() {
            return Ok(Vec::new());
        }
        let start = Instant::now();
        let crop = 3 * CROP_SIDE * CROP_SIDE;
        self.input.clear();
        self.input.resize(faces.len() * crop, 0.0);
        for (face, slot) in faces.iter().zip(self.input.chunks_exact_mut(crop)) {
            let transform = landmarks_to_template(&face.landmarks)
                .ok_or_else(|| VisionError::Inference("degenerate landmarks".into()))?;
            warp_to_planar_rgb(image, &transform, slot)
                .ok_or_else(|| VisionError::Inference("degenerate alignment".into()))?;
        }
        let aligned = Instant::now();

        let shape = [faces.len(), 3, CROP_SIDE, CROP_SIDE];
        let tensor = TensorRef::from_array_view((shape, &self.input[..])).map_err(inference)?;
        let outputs = self.session.run(ort::inputs![tensor]).map_err(inference)?;
        let (_, data) = outputs[0].try_extract_tensor::<f32>().map_err(inference)?;
        if data.len() != faces.len() * FEATURE_DIM {
            return Err(VisionError::Inference(format!("recognizer returned {} values", data.len())));
        }
        let features = data.chunks_exact(FEATURE_DIM).map(normalized).collect();
        drop(outputs);

        self.timings.align += aligned - start;
        self.timings.embed_model += aligned.elapsed();
        Ok(features)
    }

    pub(crate) fn take_timings(&mut self) -> StageTimings {
        std::mem::take(&mut self.timings)
    }
}

fn normalized(raw: &[f32]) -> Feature {
    let norm = raw.iter().map(|v| v * v).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    std::array::from_fn(|i| raw[i] / norm)
}
