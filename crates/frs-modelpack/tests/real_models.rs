//! The real OpenCV Zoo models, as `scripts/setup.sh` leaves them under `assets/`.
//!
//! Skipped (with a note) when the assets are missing, except under CI (`CI` set), where they are
//! required because CI runs the set-up first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use frs_modelpack::proto::{ModelProto, NodeProto};
use frs_modelpack::{
    Error, MODELS, PrepareOptions, QuantizeOptions, QuantizeStats, SFACE, YUNET, prepare, quantize,
    quantize_recognizer, reference,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sources() -> PathBuf {
    repo().join("assets/downloads/models")
}

fn onnxruntime() -> PathBuf {
    repo().join("assets/models/libonnxruntime.so")
}

/// True when the assets are there; panics under CI when they are not.
fn assets_present(paths: &[PathBuf]) -> bool {
    let missing: Vec<_> = paths.iter().filter(|p| !p.exists()).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "missing {missing:?}: run scripts/setup.sh");
    eprintln!("skipping: missing {missing:?} (run scripts/setup.sh)");
    false
}

fn source_paths() -> Vec<PathBuf> {
    MODELS.iter().map(|m| sources().join(m.source)).collect()
}

/// A fresh directory under the target dir, removed first if left over.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("frs-modelpack-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn ops(model: &ModelProto) -> Vec<String> {
    model.graph.as_ref().map(|g| g.node.iter().map(|n: &NodeProto| n.op().to_owned()).collect()).unwrap_or_default()
}

#[test]
fn originals_round_trip_byte_for_byte() {
    if !assets_present(&source_paths()) {
        return;
    }
    for path in source_paths() {
        let bytes = std::fs::read(&path).expect("read model");
        let model = ModelProto::from_bytes(&bytes).expect("decode");
        assert!(model.to_bytes() == bytes, "{} does not re-encode to the same bytes", path.display());
    }
}

#[test]
fn conversion_removes_quantization_and_keeps_the_interface() {
    if !assets_present(&source_paths()) {
        return;
    }
    for spec in MODELS {
        let path = sources().join(spec.source);
        let (bytes, stats) = frs_modelpack::convert_file(&path, spec.sha256, &spec.options()).expect("convert");
        let model = ModelProto::from_bytes(&bytes).expect("decode converted");
        let ops = ops(&model);
        for gone in ["DequantizeLinear", "Dropout", "PRelu"] {
            assert!(!ops.iter().any(|o| o == gone), "{} still has {gone}", spec.stem);
        }
        assert_eq!(model.ir_version, Some(6));
        assert_eq!(model.opset_import.first().and_then(|o| o.version), Some(21));
        let graph = model.graph.as_ref().expect("graph");
        assert_eq!(graph.input.len(), 1, "{}: only the image input remains", spec.stem);
        assert!(graph.value_info.is_empty());
        // Every weight is fp32 now.
        assert!(graph.initializer.iter().all(|t| matches!(t.data_type, Some(1 | 7))));
        let folded: usize = stats.dequantize_folded.values().sum();
        if spec.stem == YUNET.stem {
            assert_eq!(folded, 64);
            assert_eq!(stats.inputs[0].1, ["1", "3", "height", "width"]);
            assert_eq!(stats.outputs.len(), 12);
            let kps_8 = stats.outputs.iter().find(|(n, _)| n == "kps_8").expect("kps_8");
            assert_eq!(kps_8.1, ["1", "height/8*width/8", "10"]);
        } else {
            assert_eq!(folded, 29);
            assert_eq!(stats.dropouts_removed, 1);
            assert_eq!(stats.prelus_rewritten, 27);
            assert_eq!(stats.inputs[0].1, ["batch", "3", "112", "112"]);
            assert_eq!(stats.outputs[0].1, ["batch", "128"]);
        }
        assert!(stats.dequantize_folded.keys().all(|k| k.starts_with("INT8 blocked")), "{:?}", stats.dequantize_folded);
    }
}

#[test]
fn tampered_source_is_rejected() {
    if !assets_present(&source_paths()) {
        return;
    }
    let dir = scratch("tampered");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    for spec in MODELS {
        let mut bytes = std::fs::read(sources().join(spec.source)).expect("read");
        if spec.stem == SFACE.stem {
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
        }
        std::fs::write(src.join(spec.source), bytes).expect("write");
    }
    let options = PrepareOptions { source_dir: src, output_dir: dir.join("out"), onnxruntime: None, force: false };
    match prepare(&options) {
        Err(Error::Checksum { path, .. }) => assert!(path.ends_with(SFACE.source)),
        other => panic!("expected a checksum error, got {other:?}"),
    }
    assert!(!dir.join("out").join(SFACE.output_file()).exists());
    assert!(!dir.join("out").join(YUNET.output_file()).exists(), "nothing is written when one model fails");
}

#[test]
fn prepare_checks_against_opencv_and_is_idempotent() {
    let mut needed = source_paths();
    needed.push(onnxruntime());
    if !assets_present(&needed) {
        return;
    }
    let out = scratch("prepare");
    let options = PrepareOptions {
        source_dir: sources(),
        output_dir: out.clone(),
        onnxruntime: Some(onnxruntime()),
        force: false,
    };
    let first = prepare(&options).expect("prepare");
    assert!(!first.up_to_date);
    let check = first.check.as_ref().expect("check ran");
    let expected: usize = reference::reference().expect("reference").cases.iter().map(|c| c.outputs.len()).sum();
    assert_eq!(check.outputs.len(), expected);
    let worst = check.worst().expect("outputs");
    assert!(worst.relative_difference < 1e-4, "{worst:?}");
    for spec in MODELS {
        assert!(out.join(spec.output_file()).exists());
    }

    let second = prepare(&options).expect("second prepare");
    assert!(second.up_to_date, "second run does nothing");
    assert!(second.models.iter().all(|m| m.stats.is_none()));
    let hashes = |r: &frs_modelpack::PrepareReport| -> BTreeMap<String, String> {
        r.models.iter().map(|m| (m.spec.stem.to_owned(), m.output_sha256.clone())).collect()
    };
    assert_eq!(hashes(&first), hashes(&second));

    // A modified output is rebuilt.
    std::fs::write(out.join(YUNET.output_file()), b"garbage").expect("overwrite");
    let third = prepare(&options).expect("third prepare");
    assert!(!third.up_to_date);
    assert_eq!(hashes(&first), hashes(&third), "conversion is deterministic");
    let rebuilt: Vec<_> = third.models.iter().filter(|m| m.stats.is_some()).map(|m| m.spec.stem).collect();
    assert_eq!(rebuilt, [YUNET.stem]);
}

#[test]
fn sface_batches_match_single_runs() {
    let mut needed = source_paths();
    needed.push(onnxruntime());
    if !assets_present(&needed) {
        return;
    }
    let dir = scratch("batch");
    let (bytes, _) =
        frs_modelpack::convert_file(&sources().join(SFACE.source), SFACE.sha256, &SFACE.options()).expect("convert");
    let path = dir.join(SFACE.output_file());
    std::fs::write(&path, bytes).expect("write");

    let environment = frs_vision::runtime::init(&onnxruntime()).expect("onnxruntime");
    let mut session = frs_vision::runtime::session(&environment, &path, 1).expect("load converted SFace");
    let mut run = |n: usize, data: Vec<f32>| -> Vec<f32> {
        let input = ort::value::Tensor::from_array((vec![n, 3, 112, 112], data)).expect("tensor");
        let outputs = session.run(ort::inputs!["data" => input]).expect("run");
        let (shape, values) = outputs["fc1"].try_extract_tensor::<f32>().expect("fc1");
        assert_eq!(shape.to_vec(), vec![n as i64, 128]);
        values.to_vec()
    };
    let batch = reference::reference_input(&[3, 3, 112, 112]);
    let together = run(3, batch.clone());
    let per_face = 3 * 112 * 112;
    for i in 0..3 {
        let alone = run(1, batch[i * per_face..(i + 1) * per_face].to_vec());
        let row = &together[i * 128..(i + 1) * 128];
        let diff = alone.iter().zip(row).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "face {i}: batched and single runs differ by {diff}");
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// A freshly prepared pack directory (converted models, stamp, link to `libonnxruntime.so`), the
/// calibration crops of the sample photos and the converted SFace.
struct CalibratedPack {
    dir: PathBuf,
    crops: Vec<f32>,
    fp32: ModelProto,
    environment: ort::environment::Environment,
}

/// `None` (test skipped) when the assets are missing.
fn calibrated_pack(name: &str) -> Option<CalibratedPack> {
    let mut needed = source_paths();
    needed.extend([onnxruntime(), repo().join("assets/images")]);
    if !assets_present(&needed) {
        return None;
    }
    let dir = scratch(name);
    let options = PrepareOptions { source_dir: sources(), output_dir: dir.clone(), onnxruntime: None, force: false };
    prepare(&options).expect("prepare");
    std::os::unix::fs::symlink(onnxruntime(), dir.join("libonnxruntime.so")).expect("link onnxruntime");
    let paths = frs_vision::ModelPaths::in_dir(&dir);
    let crops = frs_modelpack::calibration_crops(&paths, &repo().join("assets/images")).expect("crops");
    let fp32 = ModelProto::from_bytes(&std::fs::read(&paths.recognizer).expect("read")).expect("decode");
    let environment = frs_vision::runtime::init(&onnxruntime()).expect("onnxruntime");
    Some(CalibratedPack { dir, crops, fp32, environment })
}

/// Runs `model` on each 3×112×112 crop, one at a time.
fn features(environment: &ort::environment::Environment, model: &ModelProto, crops: &[f32]) -> Vec<Vec<f32>> {
    let mut session = ort::session::Session::builder(environment)
        .and_then(|mut b| b.commit_from_memory(&model.to_bytes()))
        .expect("load model");
    crops
        .chunks_exact(3 * 112 * 112)
        .map(|crop| {
            let input = ort::value::Tensor::from_array((vec![1, 3, 112, 112], crop.to_vec())).expect("tensor");
            let outputs = session.run(ort::inputs!["data" => input]).expect("run");
            outputs["fc1"].try_extract_tensor::<f32>().expect("fc1").1.to_vec()
        })
        .collect()
}

#[test]
fn equalized_channels_compute_the_same_features() {
    let Some(CalibratedPack { crops, fp32: model, environment, .. }) = calibrated_pack("equalize") else { return };
    let calibration = quantize::Calibration { input_name: "data", shape: &[3, 112, 112], data: &crops };
    let mut stats = QuantizeStats::default();
    let equalized = quantize::equalize_channels(&model, &environment, calibration, &mut stats).expect("equalize");
    assert_eq!((stats.batch_norms_folded, stats.prelus_equalized), (27, 26), "{stats:?}");
    let before = features(&environment, &model, &crops);
    let after = features(&environment, &equalized, &crops);
    for (i, (a, b)) in before.iter().zip(&after).enumerate() {
        let c = cosine(a, b);
        assert!(c > 0.99999, "crop {i}: cosine {c} between the converted and the equalized model");
    }
}

#[test]
fn quantized_recognizer_keeps_each_face_nearest_its_fp32_feature() {
    let Some(CalibratedPack { dir, crops, fp32, environment }) = calibrated_pack("quantize") else { return };
    let options = QuantizeOptions { model_dir: dir.clone(), images: repo().join("assets/images"), force: false };
    let first = quantize_recognizer(&options).expect("quantize");
    let stats = first.stats.clone().expect("quantized");
    // 81 Convs and 27 Adds (one per PRelu). Those of the first stage (112×112: 10 Convs and
    // 3 PRelus) and of the last (7×7: 12 Convs, the stride-2 one into it included, and 4 PRelus)
    // stay fp32.
    assert_eq!(
        (stats.convs_quantized, stats.adds_quantized, stats.relus_fused, stats.gemms_blockwise),
        (59, 20, 20, 1),
        "every Conv and Add between the first and the last stage runs in int8: {stats:?}"
    );
    let quantized = ModelProto::from_bytes(&std::fs::read(&first.output).expect("read")).expect("decode");
    let ops = ops(&quantized);
    let count = |op: &str| ops.iter().filter(|o| *o == op).count();
    assert_eq!(count("Relu"), 7, "the Relus of the int8 PRelus are fused into their Convs");
    assert_eq!((count("Gemm"), count("MatMulNBits")), (0, 1), "the FC layer reads u8 weight blocks");
    assert_eq!(count("BatchNormalization"), 2, "only the ones after the last PRelu and after the FC layer stay");
    assert_eq!(count("QuantizeLinear"), stats.activations_quantized);

    let exact = features(&environment, &fp32, &crops);
    let int8 = features(&environment, &quantized, &crops);
    let mut sum = 0.0;
    for (i, q) in int8.iter().enumerate() {
        let own = cosine(q, &exact[i]);
        sum += own;
        assert!(own > 0.95, "crop {i}: cosine {own} to its fp32 feature");
        // A crop and its mirror image (stored next to each other) are the same person.
        let others = exact.iter().enumerate().filter(|&(j, _)| j / 2 != i / 2);
        let nearest_other = others.map(|(_, e)| cosine(q, e)).fold(f32::MIN, f32::max);
        assert!(own > nearest_other, "crop {i}: {own} to its own face, {nearest_other} to another face");
    }
    let mean = sum / int8.len() as f32;
    assert!(mean > 0.993, "mean cosine {mean} to the fp32 features");

    let second = quantize_recognizer(&options).expect("second quantize");
    assert!(second.stats.is_none(), "a current int8 model is kept");
    assert_eq!(
        frs_modelpack::sha256_file(&second.output).expect("hash"),
        frs_modelpack::sha256_file(&first.output).expect("hash")
    );
}
