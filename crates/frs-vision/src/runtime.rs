//! ONNX Runtime loading and session settings shared by both models.

use std::fmt::Display;
use std::path::Path;
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use crate::VisionError;

static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// Loads `libonnxruntime.so` once per process; later calls return the first outcome.
pub fn init(library: &Path) -> Result<Environment, VisionError> {
    ENVIRONMENT
        .get_or_init(|| {
            if !library.exists() {
                return Err(format!("ONNX Runtime library not found at {} (run scripts/setup.sh)", library.display()));
            }
            ort::init_from(library)
                .map_err(|e| e.to_string())?
                .with_name("frs")
                .with_telemetry(false)
                .build()
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(VisionError::Inference)
}

/// A session with full graph optimisation, `threads` intra-op threads and no spinning.
pub fn session(environment: &Environment, model: &Path, threads: usize) -> Result<Session, VisionError> {
    if !model.exists() {
        return Err(VisionError::Inference(format!("model not found at {} (run scripts/setup.sh)", model.display())));
    }
    Session::builder(environment)
        .map_err(inference)?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(inference)?
        .with_intra_threads(threads)
        .map_err(inference)?
        .with_inter_threads(1)
        .map_err(inference)?
        .with_intra_op_spinning(false)
        .map_err(inference)?
        .commit_from_file(model)
        .map_err(inference)
}

/// Wraps any runtime error as an inference failure.
pub(crate) fn inference(e: impl Display) -> VisionError {
    VisionError::Inference(e.to_string())
}
