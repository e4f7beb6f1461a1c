//! `frs serve` keeps the recognizer that computed the stored faces.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use frs_store::{FaceRow, FaceSetRow, Store};
use frs_vision::ModelPaths;

#[test]
fn serve_refuses_another_recognizer_for_stored_faces() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let models = repo.join("assets/models");
    let fp32 = ModelPaths::in_dir(&models).feature_model();
    let int8 = ModelPaths::in_dir(&models).with_int8_recognizer().feature_model();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store.bind_feature_model(&fp32).expect("bind");
    let set = FaceSetRow {
        project_id: "p".into(),
        name: "staff".into(),
        id: "SET00001".into(),
        capacity: 10,
        schema_json: "{}".into(),
        created_at: 0,
    };
    store.create_face_set(&set).expect("create");
    let face = FaceRow {
        face_id: "f1".into(),
        external_image_id: "i1".into(),
        bbox: [0, 0, 100, 100],
        fields_json: "{}".into(),
        feature: vec![0.0; 128],
    };
    store.insert_faces("SET00001", &[face]).expect("insert");
    drop(store);

    let mut child = Command::new(env!("CARGO_BIN_EXE_frs"))
        .current_dir(&repo)
        .env("FRS__MODELS__RECOGNIZER", "int8")
        .args(["serve", "--listen", "127.0.0.1:0", "--models"])
        .arg(&models)
        .arg("--data-dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting frs serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("polling frs serve").is_none() {
        if Instant::now() > deadline {
            child.kill().expect("kill");
            panic!("frs serve started with the int8 recognizer over faces of the fp32 one");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("`{fp32}`")) && stderr.contains(&format!("`{int8}`")), "{stderr}");
}
