//! The vision pipeline on the real models and the real sample photos (`scripts/setup.sh` puts
//! both under `assets/`).

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};

use frs_vision::{Face, Feature, ImageLimits, ModelPaths, Pipeline, PipelineConfig, decode_image, similarity};
use image::{ImageFormat, RgbImage};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pipeline() -> MutexGuard<'static, Pipeline> {
    pipeline_of(Recognizer::Fp32)
}

/// Which SFace of the pack computes features.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Recognizer {
    Fp32,
    Int8,
}

const RECOGNIZERS: [Recognizer; 2] = [Recognizer::Fp32, Recognizer::Int8];

fn pipeline_of(recognizer: Recognizer) -> MutexGuard<'static, Pipeline> {
    static FP32: OnceLock<Mutex<Pipeline>> = OnceLock::new();
    static INT8: OnceLock<Mutex<Pipeline>> = OnceLock::new();
    let cell = if recognizer == Recognizer::Int8 { &INT8 } else { &FP32 };
    cell.get_or_init(|| {
        let models = ModelPaths::in_dir(repo().join("assets/models"));
        let models = if recognizer == Recognizer::Int8 { models.with_int8_recognizer() } else { models };
        let config = PipelineConfig { models, detector: Default::default(), threads: 1 };
        Mutex::new(Pipeline::new(&config).expect("models load (run scripts/setup.sh)"))
    })
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn sample_bytes(n: usize) -> Vec<u8> {
    let path = repo().join(format!("assets/images/sample{n}.jpg"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{} is missing ({e}): run scripts/setup.sh", path.display()))
}

fn sample(n: usize) -> RgbImage {
    decode_image(&sample_bytes(n), &ImageLimits::default()).expect("sample decodes")
}

fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encodes");
    out.into_inner()
}

fn largest_feature(image: &RgbImage, recognizer: Recognizer) -> (Face, Feature) {
    let mut p = pipeline_of(recognizer);
    let face = *p.detect(image).expect("detects").first().expect("a face");
    let feature = p.embed(image, &[face]).expect("embeds").remove(0);
    (face, feature)
}

/// People in each sample photo, counted by eye (every face is well above the minimum size).
const PEOPLE: [usize; 6] = [3, 3, 3, 4, 5, 4];

#[test]
fn every_person_in_the_samples_is_found_with_plausible_landmarks() {
    for (i, expected) in PEOPLE.iter().enumerate() {
        let image = sample(i + 1);
        let faces = pipeline().detect(&image).expect("detects");
        assert_eq!(faces.len(), *expected, "sample{}", i + 1);
        for face in &faces {
            let b = face.bbox;
            assert!(b.width >= 60.0 && b.height >= 60.0);
            for p in face.landmarks {
                assert!(p.x >= b.x && p.x <= b.x + b.width && p.y >= b.y && p.y <= b.y + b.height, "{face:?}");
            }
            let [eye_a, eye_b, nose, mouth_a, mouth_b] = face.landmarks;
            assert!(eye_a.y.max(eye_b.y) < mouth_a.y.min(mouth_b.y), "eyes above the mouth: {face:?}");
            assert!(eye_a.y.max(eye_b.y) < nose.y, "eyes above the nose: {face:?}");
            assert!(eye_a.x < eye_b.x && mouth_a.x < mouth_b.x, "image-left first: {face:?}");
        }
        for pair in faces.windows(2) {
            assert!(pair[0].bbox.area() >= pair[1].bbox.area(), "largest first");
        }
    }
}

#[test]
fn a_face_reencoded_rescaled_and_cropped_still_matches_itself() {
    for recognizer in RECOGNIZERS {
        reencoded_rescaled_and_cropped_face_matches_itself(recognizer);
    }
}

fn reencoded_rescaled_and_cropped_face_matches_itself(recognizer: Recognizer) {
    let image = sample(2);
    let (face, original) = largest_feature(&image, recognizer);
    let b = face.bbox;
    let (x, y) = ((b.x - b.width).max(0.0) as u32, (b.y - b.height).max(0.0) as u32);
    let crop = image::imageops::crop_imm(&image, x, y, (3.0 * b.width) as u32, (3.0 * b.height) as u32).to_image();
    let half = image::imageops::resize(&image, image.width() / 2, image.height() / 2, image::imageops::Triangle);
    let mut jpeg_low = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg_low, 40).encode_image(&image).expect("encodes");
    // (variant, its scale, the original's top-left corner in it)
    let variants = [
        ("png", decode_image(&encode(&image, ImageFormat::Png), &ImageLimits::default()).expect("png"), 1.0, (0, 0)),
        ("jpeg q40", decode_image(jpeg_low.get_ref(), &ImageLimits::default()).expect("jpeg"), 1.0, (0, 0)),
        ("half size", half, 0.5, (0, 0)),
        ("cropped", crop, 1.0, (x, y)),
    ];
    let centre = |f: &Face| (f.bbox.x + f.bbox.width / 2.0, f.bbox.y + f.bbox.height / 2.0);
    let (cx, cy) = centre(&face);
    for (name, variant, scale, (ox, oy)) in variants {
        let mut p = pipeline_of(recognizer);
        let faces = p.detect(&variant).expect("detects");
        let distance = |f: &Face| {
            let (fx, fy) = centre(f);
            (fx / scale + ox as f32 - cx).hypot(fy / scale + oy as f32 - cy)
        };
        let same = *faces.iter().min_by(|a, b| distance(a).total_cmp(&distance(b))).expect("a face");
        assert!(distance(&same) < 0.1 * face.bbox.width, "{name}: the face is found in place");
        let feature = p.embed(&variant, &[same]).expect("embeds").remove(0);
        let score = similarity(&original, &feature);
        assert!(score >= 0.93, "{recognizer:?} {name}: {score}");
    }
}

#[test]
fn different_people_score_below_the_frs_threshold() {
    for recognizer in RECOGNIZERS {
        different_people_of_one_photo_score_below_the_threshold(recognizer);
    }
}

fn different_people_of_one_photo_score_below_the_threshold(recognizer: Recognizer) {
    let mut features = Vec::new();
    for n in 1..=6 {
        let image = sample(n);
        let mut p = pipeline_of(recognizer);
        let faces = p.detect(&image).expect("detects");
        features.extend(p.embed(&image, &faces).expect("embeds"));
    }
    assert_eq!(features.len(), PEOPLE.iter().sum::<usize>());
    // The photos show different people, except that no person appears twice within one photo;
    // across photos the same person could recur, so only pairs within a photo are asserted.
    let mut start = 0;
    for count in PEOPLE {
        let group = &features[start..start + count];
        for (i, a) in group.iter().enumerate() {
            for b in &group[i + 1..] {
                let score = similarity(a, b);
                assert!(score < 0.93, "{recognizer:?}: two people of one photo scored {score}");
            }
        }
        start += count;
    }
}

#[test]
fn a_batch_gives_the_same_features_as_single_faces() {
    let image = sample(5);
    let mut p = pipeline();
    let faces = p.detect(&image).expect("detects");
    let batch = p.embed(&image, &faces).expect("embeds");
    for (face, batched) in faces.iter().zip(&batch) {
        let single = p.embed(&image, std::slice::from_ref(face)).expect("embeds").remove(0);
        assert!(frs_vision::similarity::cosine(&single, batched) > 0.99999);
    }
}

/// A JPEG whose pixels are stored rotated, with an EXIF Orientation tag (6: rotate 90° clockwise
/// to display) that restores them.
fn with_exif_orientation_6(jpeg: &[u8]) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes()); // one IFD entry
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&[6, 0, 0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn exif_orientation_is_honoured() {
    let upright = sample(3);
    let stored = image::imageops::rotate270(&upright);
    let bytes = with_exif_orientation_6(&encode(&stored, ImageFormat::Jpeg));
    let decoded = decode_image(&bytes, &ImageLimits::default()).expect("decodes");
    assert_eq!(decoded.dimensions(), upright.dimensions());
    assert_eq!(pipeline().detect(&decoded).expect("detects").len(), PEOPLE[2]);
}
