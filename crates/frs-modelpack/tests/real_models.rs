//! The real OpenCV Zoo models, as `scripts/setup.sh` leaves them under `assets/`.
//!
//! Skipped (with a note) when the assets are missing, except under CI (`CI` set), where they are
//! required because CI runs the set-up first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use frs_modelpack::proto::{ModelProto, NodeProto};
use frs_modelpack::{Error, MODELS, PrepareOptions, SFACE, YUNET, prepare, reference};

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
