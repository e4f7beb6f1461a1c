//! YuNet (face_detection_yunet_2023mar) face detection, decoded as OpenCV's `FaceDetectorYN` does.
//!
//! The network is fully convolutional: it runs at the image's own size (scaled down so the longer
//! side is at most [`DetectorConfig::max_input_side`]) padded on the right and bottom to a multiple
//! of 32. Its heads give, per stride 8/16/32 cell, class and objectness scores, a box relative to
//! the cell and five landmarks relative to the cell.

use std::time::Instant;

use fast_image_resize::images::Image as ResizeImage;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use ort::session::Session;
use ort::value::TensorRef;

use crate::runtime::inference;
use crate::{BoundingBox, Point, StageTimings, VisionError};

/// Detector settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// Minimum `sqrt(cls · obj)` for a candidate. OpenCV defaults to 0.9, which misses turned and
    /// made-up faces in the sample photos; 0.7 finds them without false positives (docs/detection.md).
    pub score_threshold: f32,
    /// IoU above which the lower-scored of two candidates is suppressed.
    pub nms_threshold: f32,
    /// Faces whose box is narrower or shorter than this many original-image pixels are dropped
    /// (FRS requires faces larger than 80×80 measured on its head box; YuNet boxes span brows to
    /// chin, about 3/4 of that, so 60 is the equivalent — and loses no face of LFW, docs/detection.md).
    pub min_face_size: f32,
    /// The longer image side is scaled down to this before detection (never up).
    pub max_input_side: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig { score_threshold: 0.7, nms_threshold: 0.3, min_face_size: 60.0, max_input_side: 640 }
    }
}

/// A detected face, in original image pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    pub bbox: BoundingBox,
    /// Eye, eye, nose tip, mouth corner, mouth corner, each pair in image left-to-right order for an
    /// upright frontal face (YuNet's order: the person's right eye first).
    pub landmarks: [Point; 5],
    /// Detection confidence in [0, 1].
    pub score: f32,
}

impl Face {
    /// A synthetic frontal face filling the middle of `image`, landmarks on the alignment template.
    pub(crate) fn centered_in(image: &RgbImage) -> Face {
        let (w, h) = (image.width() as f32, image.height() as f32);
        let scale = w.min(h) / 112.0;
        let landmarks = crate::align::TEMPLATE.map(|[x, y]| Point { x: x * scale, y: y * scale });
        Face { bbox: BoundingBox { x: 0.0, y: 0.0, width: w, height: h }, landmarks, score: 1.0 }
    }
}

const STRIDES: [usize; 3] = [8, 16, 32];
const OUTPUTS: [[&str; 4]; 3] = [
    ["cls_8", "obj_8", "bbox_8", "kps_8"],
    ["cls_16", "obj_16", "bbox_16", "kps_16"],
    ["cls_32", "obj_32", "bbox_32", "kps_32"],
];

pub(crate) struct Detector {
    session: Session,
    config: DetectorConfig,
    input: DetectorInput,
    timings: StageTimings,
}

/// The geometry of one detection run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputGeometry {
    /// Resized image size (before padding).
    pub width: u32,
    pub height: u32,
    /// Network input size (padded to multiples of 32).
    pub padded_width: usize,
    pub padded_height: usize,
    /// Original pixels per resized pixel, horizontally and vertically.
    pub scale_x: f32,
    pub scale_y: f32,
}

impl InputGeometry {
    /// The geometry for a `width`×`height` image whose longer side is scaled down to `max_side`.
    pub fn for_image(width: u32, height: u32, max_side: u32) -> Self {
        let longer = width.max(height);
        let (rw, rh) = if longer > max_side {
            let s = max_side as f32 / longer as f32;
            (((width as f32 * s).round() as u32).max(1), ((height as f32 * s).round() as u32).max(1))
        } else {
            (width, height)
        };
        let pad = |v: u32| (v as usize).div_ceil(32) * 32;
        InputGeometry {
            width: rw,
            height: rh,
            padded_width: pad(rw),
            padded_height: pad(rh),
            scale_x: width as f32 / rw as f32,
            scale_y: height as f32 / rh as f32,
        }
    }

    /// The network input shape, N×C×H×W.
    pub fn shape(&self) -> [usize; 4] {
        [1, 3, self.padded_height, self.padded_width]
    }
}

/// YuNet's input tensor, with the buffers reused from one image to the next.
pub struct DetectorInput {
    resizer: Resizer,
    data: Vec<f32>,
}

impl Default for DetectorInput {
    fn default() -> Self {
        DetectorInput { resizer: Resizer::new(), data: Vec::new() }
    }
}

impl DetectorInput {
    /// Writes `image`, scaled so its longer side is at most `max_side`, as a zero-padded 1×3×H×W
    /// planar BGR tensor with values 0–255 (what OpenCV's `FaceDetectorYN` feeds the network).
    pub fn fill(&mut self, image: &RgbImage, max_side: u32) -> Result<InputGeometry, VisionError> {
        let geometry = InputGeometry::for_image(image.width(), image.height(), max_side);
        let resized;
        let pixels: &RgbImage = if (geometry.width, geometry.height) == image.dimensions() {
            image
        } else {
            let mut dst = ResizeImage::new(geometry.width, geometry.height, PixelType::U8x3);
            let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
            self.resizer.resize(image, &mut dst, &options).map_err(inference)?;
            resized = RgbImage::from_raw(geometry.width, geometry.height, dst.into_vec())
                .ok_or_else(|| VisionError::Inference("resized buffer has the wrong size".into()))?;
            &resized
        };
        let (pw, ph) = (geometry.padded_width, geometry.padded_height);
        let plane = pw * ph;
        self.data.clear();
        self.data.resize(3 * plane, 0.0);
        let (b, rest) = self.data.split_at_mut(plane);
        let (g, r) = rest.split_at_mut(plane);
        let width = pixels.width() as usize;
        for (y, row) in pixels.as_raw().chunks_exact(width * 3).enumerate() {
            let offset = y * pw;
            for (x, px) in row.chunks_exact(3).enumerate() {
                r[offset + x] = f32::from(px[0]);
                g[offset + x] = f32::from(px[1]);
                b[offset + x] = f32::from(px[2]);
            }
        }
        Ok(geometry)
    }

    /// The tensor written by the last [`DetectorInput::fill`].
    pub fn data(&self) -> &[f32] {
        &self.data
    }
}

impl Detector {
    pub(crate) fn new(session: Session, config: DetectorConfig) -> Self {
        Detector { session, config, input: DetectorInput::default(), timings: StageTimings::default() }
    }

    /// Every face of at least the minimum size, largest box first.
    pub(crate) fn detect(&mut self, image: &RgbImage) -> Result<Vec<Face>, VisionError> {
        let start = Instant::now();
        let geometry = self.input.fill(image, self.config.max_input_side)?;
        let preprocessed = Instant::now();

        let tensor = TensorRef::from_array_view((geometry.shape(), self.input.data())).map_err(inference)?;
        let outputs = self.session.run(ort::inputs![tensor]).map_err(inference)?;
        let ran = Instant::now();

        let mut candidates = Vec::new();
        for (stride, names) in STRIDES.into_iter().zip(OUTPUTS) {
            let head = |name: &str| -> Result<&[f32], VisionError> {
                let (_, data) = outputs[name].try_extract_tensor::<f32>().map_err(inference)?;
                Ok(data)
            };
            let heads =
                Heads { cls: head(names[0])?, obj: head(names[1])?, bbox: head(names[2])?, kps: head(names[3])? };
            decode_stride(&heads, stride, &geometry, self.config.score_threshold, &mut candidates);
        }
        drop(outputs);
        let mut faces = non_maximum_suppression(candidates, self.config.nms_threshold);
        let min = self.config.min_face_size;
        faces.retain(|f| f.bbox.width >= min && f.bbox.height >= min);
        faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        let done = Instant::now();

        self.timings.detect_preprocess += preprocessed - start;
        self.timings.detect_model += ran - preprocessed;
        self.timings.detect_postprocess += done - ran;
        Ok(faces)
    }

    pub(crate) fn take_timings(&mut self) -> StageTimings {
        std::mem::take(&mut self.timings)
    }
}

struct Heads<'a> {
    cls: &'a [f32],
    obj: &'a [f32],
    bbox: &'a [f32],
    kps: &'a [f32],
}

/// Appends the candidates of one stride whose score passes `threshold`, mapped to original pixels.
fn decode_stride(heads: &Heads, stride: usize, geometry: &InputGeometry, threshold: f32, out: &mut Vec<Face>) {
    let cols = geometry.padded_width / stride;
    let rows = geometry.padded_height / stride;
    let s = stride as f32;
    let (sx, sy) = (geometry.scale_x, geometry.scale_y);
    for idx in 0..(rows * cols).min(heads.cls.len()) {
        let score = (heads.cls[idx].clamp(0.0, 1.0) * heads.obj[idx].clamp(0.0, 1.0)).sqrt();
        if score < threshold {
            continue;
        }
        let (r, c) = ((idx / cols) as f32, (idx % cols) as f32);
        let b = &heads.bbox[idx * 4..idx * 4 + 4];
        let cx = (c + b[0]) * s;
        let cy = (r + b[1]) * s;
        let w = b[2].exp() * s;
        let h = b[3].exp() * s;
        let k = &heads.kps[idx * 10..idx * 10 + 10];
        let landmarks = std::array::from_fn(|i| Point { x: (k[2 * i] + c) * s * sx, y: (k[2 * i + 1] + r) * s * sy });
        out.push(Face {
            bbox: BoundingBox { x: (cx - w / 2.0) * sx, y: (cy - h / 2.0) * sy, width: w * sx, height: h * sy },
            landmarks,
            score,
        });
    }
}

/// Intersection over union of two boxes.
pub(crate) fn iou(a: &BoundingBox, b: &BoundingBox) -> f32 {
    let ix = ((a.x + a.width).min(b.x + b.width) - a.x.max(b.x)).max(0.0);
    let iy = ((a.y + a.height).min(b.y + b.height) - a.y.max(b.y)).max(0.0);
    let inter = ix * iy;
    let union = a.area() + b.area() - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Greedy NMS: keeps candidates in descending score order unless they overlap a kept one by more
/// than `threshold` IoU.
pub(crate) fn non_maximum_suppression(mut candidates: Vec<Face>, threshold: f32) -> Vec<Face> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Face> = Vec::new();
    for candidate in candidates {
        if kept.iter().all(|k| iou(&k.bbox, &candidate.bbox) <= threshold) {
            kept.push(candidate);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn face(x: f32, y: f32, size: f32, score: f32) -> Face {
        Face { bbox: BoundingBox { x, y, width: size, height: size }, landmarks: [Point::default(); 5], score }
    }

    #[test]
    fn geometry_keeps_small_images_and_pads_to_32() {
        let g = InputGeometry::for_image(250, 250, 640);
        assert_eq!((g.width, g.height, g.padded_width, g.padded_height, g.scale_x), (250, 250, 256, 256, 1.0));
        let g = InputGeometry::for_image(1920, 1280, 640);
        assert_eq!((g.width, g.height, g.padded_width, g.padded_height), (640, 427, 640, 448));
        assert!((g.scale_x - 3.0).abs() < 1e-6 && (g.scale_y - 1280.0 / 427.0).abs() < 1e-6);
    }

    #[test]
    fn the_input_is_zero_padded_planar_bgr() {
        let image = RgbImage::from_fn(250, 250, |x, y| image::Rgb([1, 2, (x + y) as u8]));
        let mut input = DetectorInput::default();
        let geometry = input.fill(&image, 640).expect("fills");
        assert_eq!(geometry.shape(), [1, 3, 256, 256]);
        let (plane, data) = (256 * 256, input.data());
        assert_eq!((data[3 * 256 + 5], data[plane + 3 * 256 + 5], data[2 * plane + 3 * 256 + 5]), (8.0, 2.0, 1.0));
        assert_eq!(data[3 * 256 + 252], 0.0);
        assert_eq!(data[252 * 256], 0.0);
        let geometry = input.fill(&RgbImage::new(300, 700), 640).expect("fills");
        assert_eq!(geometry.shape(), [1, 3, 640, 288]);
        assert_eq!(input.data().len(), 3 * 640 * 288);
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let kept = non_maximum_suppression(
            vec![face(0.0, 0.0, 10.0, 0.7), face(1.0, 1.0, 10.0, 0.9), face(50.0, 50.0, 10.0, 0.8)],
            0.3,
        );
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].score, 0.8);
    }

    proptest! {
        #[test]
        fn iou_is_symmetric_bounded_and_one_on_itself(
            x in -100f32..100.0, y in -100f32..100.0, w in 1f32..100.0, h in 1f32..100.0,
            x2 in -100f32..100.0, y2 in -100f32..100.0, w2 in 1f32..100.0, h2 in 1f32..100.0,
        ) {
            let a = BoundingBox { x, y, width: w, height: h };
            let b = BoundingBox { x: x2, y: y2, width: w2, height: h2 };
            prop_assert!((iou(&a, &b) - iou(&b, &a)).abs() < 1e-6);
            prop_assert!((0.0..=1.0 + 1e-6).contains(&iou(&a, &b)));
            prop_assert!((iou(&a, &a) - 1.0).abs() < 1e-4);
        }

        #[test]
        fn nms_output_has_no_pair_above_threshold(
            boxes in proptest::collection::vec((0f32..200.0, 0f32..200.0, 5f32..60.0, 0f32..1.0), 0..40),
        ) {
            let faces = boxes.iter().map(|&(x, y, s, score)| face(x, y, s, score)).collect();
            let kept = non_maximum_suppression(faces, 0.3);
            for (i, a) in kept.iter().enumerate() {
                for b in &kept[i + 1..] {
                    prop_assert!(iou(&a.bbox, &b.bbox) <= 0.3);
                }
            }
        }
    }
}
