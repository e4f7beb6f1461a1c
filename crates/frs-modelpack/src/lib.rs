//! Model pack preparation: verifies the int8 block-quantized OpenCV Zoo models (YuNet, SFace),
//! converts them to plain fp32 ONNX that ONNX Runtime runs, and checks the converted files
//! against outputs OpenCV computed from the originals.
//!
//! [`prepare`] is what `frs models prepare` runs; [`convert::convert`] is the graph rewrite and
//! [`dequant`] its arithmetic. [`quantize_recognizer`] (`frs models quantize`) derives the int8
//! recognizer from the converted SFace, calibrated on faces of sample photos ([`quantize`]).

pub mod convert;
pub mod dequant;
pub mod proto;
pub mod quantize;
pub mod reference;
pub mod tensor;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use convert::{ConvertError, ConvertOptions, ConvertStats, convert};
pub use quantize::{QuantizeError, QuantizeStats};
pub use reference::{CheckError, CheckReport};

/// Bumped whenever the conversion output changes, so stamped outputs are rebuilt.
pub const CONVERTER_REVISION: u32 = 2;

/// Name of the stamp file [`prepare`] writes next to the converted models.
pub const STAMP_FILE: &str = ".frs-modelpack.json";

/// One model of the pack.
#[derive(Debug, Clone, Copy)]
pub struct ModelSpec {
    /// Quantized source file name.
    pub source: &'static str,
    /// SHA-256 (hex) the source must have.
    pub sha256: &'static str,
    /// Converted file stem; the file is `{stem}.onnx` (what `frs_vision::ModelPaths::in_dir` expects).
    pub stem: &'static str,
    /// Symbolic H/W (YuNet runs at any multiple of 32) or batch (SFace embeds many faces at once).
    pub dynamic: Dynamic,
}

/// Which input dims a converted model makes symbolic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dynamic {
    /// H and W become `height` and `width`.
    HeightWidth,
    /// The batch dim becomes `batch`.
    Batch,
}

impl ModelSpec {
    /// Converted file name.
    pub fn output_file(&self) -> String {
        format!("{}.onnx", self.stem)
    }

    /// The conversion options for this model.
    pub fn options(&self) -> ConvertOptions {
        match self.dynamic {
            Dynamic::HeightWidth => {
                ConvertOptions { symbolic_hw: Some(("height".into(), "width".into())), ..Default::default() }
            }
            Dynamic::Batch => ConvertOptions { symbolic_batch: Some("batch".into()), ..Default::default() },
        }
    }
}

/// YuNet face detector, 2023mar, int8 block-quantized.
pub const YUNET: ModelSpec = ModelSpec {
    source: "face_detection_yunet_2023mar_int8bq.onnx",
    sha256: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    stem: "face_detection_yunet_2023mar",
    dynamic: Dynamic::HeightWidth,
};

/// SFace face recognizer, 2021dec, int8 block-quantized.
pub const SFACE: ModelSpec = ModelSpec {
    source: "face_recognition_sface_2021dec_int8bq.onnx",
    sha256: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    stem: "face_recognition_sface_2021dec",
    dynamic: Dynamic::Batch,
};

/// Both models.
pub const MODELS: [ModelSpec; 2] = [YUNET, SFACE];

/// Everything that can go wrong while preparing the pack.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{} has SHA-256 {actual}, expected {expected} (re-run scripts/setup.sh)", path.display())]
    Checksum { path: PathBuf, expected: String, actual: String },
    #[error("{}: not a valid ONNX model: {source}", path.display())]
    Decode { path: PathBuf, source: prost::DecodeError },
    #[error("converting {}: {source}", path.display())]
    Convert { path: PathBuf, source: ConvertError },
    #[error("reference check: {0}")]
    Check(#[from] CheckError),
    #[error("quantizing {}: {source}", path.display())]
    Quantize { path: PathBuf, source: QuantizeError },
    #[error("calibration faces: {0}")]
    Calibration(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source }
}

/// What [`prepare`] reads and writes.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// Directory holding the quantized files ([`ModelSpec::source`]).
    pub source_dir: PathBuf,
    /// Directory receiving the converted files and the stamp.
    pub output_dir: PathBuf,
    /// `libonnxruntime.so` for the reference check; `None` skips the check.
    pub onnxruntime: Option<PathBuf>,
    /// Convert (and check) even when the stamp says the outputs are current.
    pub force: bool,
}

/// What [`prepare`] did.
#[derive(Debug, Clone)]
pub struct PrepareReport {
    /// True when the stamp showed everything current and nothing was done.
    pub up_to_date: bool,
    pub models: Vec<ModelReport>,
    /// The reference check, when it ran.
    pub check: Option<CheckReport>,
}

/// One model's outcome.
#[derive(Debug, Clone)]
pub struct ModelReport {
    pub spec: ModelSpec,
    pub output: PathBuf,
    pub output_sha256: String,
    pub output_bytes: u64,
    /// Conversion statistics; `None` when the existing output was kept.
    pub stats: Option<ConvertStats>,
}

/// `{output_dir}/.frs-modelpack.json`: what the outputs were made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Stamp {
    converter: String,
    checked: bool,
    models: BTreeMap<String, StampEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StampEntry {
    source_sha256: String,
    output_sha256: String,
    /// [`quantize::QUANTIZER_REVISION`], for the int8 recognizer only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quantizer: Option<u32>,
}

fn converter_id() -> String {
    format!("frs-modelpack {} r{CONVERTER_REVISION}", env!("CARGO_PKG_VERSION"))
}

/// SHA-256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, Error> {
    let mut file = fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io(path))?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads `path`, checks its SHA-256 against `expected` and converts it.
pub fn convert_file(
    path: &Path,
    expected_sha256: &str,
    options: &ConvertOptions,
) -> Result<(Vec<u8>, ConvertStats), Error> {
    let bytes = fs::read(path).map_err(io(path))?;
    let actual = hex(&Sha256::digest(&bytes));
    if actual != expected_sha256 {
        return Err(Error::Checksum { path: path.to_owned(), expected: expected_sha256.to_owned(), actual });
    }
    let mut model =
        proto::ModelProto::from_bytes(&bytes).map_err(|source| Error::Decode { path: path.to_owned(), source })?;
    let stats = convert(&mut model, options).map_err(|source| Error::Convert { path: path.to_owned(), source })?;
    Ok((model.to_bytes(), stats))
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = tmp_path(path);
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io(path))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

fn read_stamp(dir: &Path) -> Option<Stamp> {
    let text = fs::read_to_string(dir.join(STAMP_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Converts both models from `options.source_dir` into `options.output_dir`, checks them against
/// the committed OpenCV reference when `options.onnxruntime` is given, and records a stamp.
///
/// Does nothing when the stamp records the same converter revision and source digests, the
/// outputs still have the recorded digests, and (if a check is asked for) they were checked.
/// New files are checked under temporary names and only then renamed into place, so a failed
/// check leaves previous outputs untouched.
pub fn prepare(options: &PrepareOptions) -> Result<PrepareReport, Error> {
    let out = &options.output_dir;
    let want_check = options.onnxruntime.is_some();
    let stamp = if options.force { None } else { read_stamp(out) };
    let stamp = stamp.filter(|s| s.converter == converter_id());

    let mut current = BTreeMap::new();
    if let Some(stamp) = &stamp {
        for spec in MODELS {
            let output = out.join(spec.output_file());
            let Some(entry) = stamp.models.get(spec.stem) else { continue };
            if entry.source_sha256 != spec.sha256 || !output.exists() {
                continue;
            }
            if sha256_file(&output)? == entry.output_sha256 {
                current.insert(spec.stem, entry.output_sha256.clone());
            }
        }
    }
    let all_current = current.len() == MODELS.len();
    if all_current && (!want_check || stamp.as_ref().is_some_and(|s| s.checked)) {
        let models = MODELS.iter().map(|&spec| report_existing(spec, out, &current)).collect::<Result<Vec<_>, _>>()?;
        return Ok(PrepareReport { up_to_date: true, models, check: None });
    }

    fs::create_dir_all(out).map_err(io(out))?;
    // (spec, final path, path holding the new bytes if converted now, stats)
    let mut staged: Vec<(ModelSpec, PathBuf, Option<PathBuf>, Option<ConvertStats>)> = Vec::new();
    let cleanup = |staged: &[(ModelSpec, PathBuf, Option<PathBuf>, Option<ConvertStats>)]| {
        for (_, _, tmp, _) in staged {
            if let Some(tmp) = tmp {
                let _ = fs::remove_file(tmp);
            }
        }
    };
    for spec in MODELS {
        let output = out.join(spec.output_file());
        if current.contains_key(spec.stem) {
            staged.push((spec, output, None, None));
            continue;
        }
        let converted = convert_file(&options.source_dir.join(spec.source), spec.sha256, &spec.options());
        let (bytes, stats) = match converted {
            Ok(c) => c,
            Err(e) => {
                cleanup(&staged);
                return Err(e);
            }
        };
        let tmp = tmp_path(&output);
        if let Err(e) = fs::write(&tmp, &bytes).map_err(io(&tmp)) {
            cleanup(&staged);
            return Err(e);
        }
        staged.push((spec, output, Some(tmp), Some(stats)));
    }

    let check = match &options.onnxruntime {
        Some(library) => {
            let paths: BTreeMap<String, &Path> = staged
                .iter()
                .map(|(spec, output, tmp, _)| (spec.stem.to_owned(), tmp.as_deref().unwrap_or(output)))
                .collect();
            let result = reference::reference()
                .and_then(|r| reference::check(library, &paths, &r, reference::DEFAULT_TOLERANCE));
            match result {
                Ok(report) => Some(report),
                Err(e) => {
                    cleanup(&staged);
                    return Err(e.into());
                }
            }
        }
        None => None,
    };

    let mut models = Vec::new();
    let mut entries = BTreeMap::new();
    for (spec, output, tmp, stats) in staged {
        if let Some(tmp) = &tmp {
            fs::File::open(tmp).and_then(|f| f.sync_all()).map_err(io(tmp))?;
            fs::rename(tmp, &output).map_err(io(&output))?;
        }
        let output_sha256 = sha256_file(&output)?;
        entries.insert(
            spec.stem.to_owned(),
            StampEntry { source_sha256: spec.sha256.to_owned(), output_sha256: output_sha256.clone(), quantizer: None },
        );
        let output_bytes = fs::metadata(&output).map_err(io(&output))?.len();
        models.push(ModelReport { spec, output, output_sha256, output_bytes, stats });
    }
    let stamp = Stamp { converter: converter_id(), checked: check.is_some(), models: entries };
    let text = serde_json::to_string_pretty(&stamp).unwrap_or_default();
    write_atomic(&out.join(STAMP_FILE), text.as_bytes())?;
    Ok(PrepareReport { up_to_date: false, models, check })
}

fn report_existing(spec: ModelSpec, out: &Path, current: &BTreeMap<&str, String>) -> Result<ModelReport, Error> {
    let output = out.join(spec.output_file());
    let output_bytes = fs::metadata(&output).map_err(io(&output))?.len();
    let output_sha256 = current.get(spec.stem).cloned().unwrap_or_default();
    Ok(ModelReport { spec, output, output_sha256, output_bytes, stats: None })
}

/// What [`quantize_recognizer`] reads and writes.
#[derive(Debug, Clone)]
pub struct QuantizeOptions {
    /// The model pack directory: converted SFace and YuNet, `libonnxruntime.so` and the stamp; it
    /// receives [`frs_vision::pipeline::RECOGNIZER_INT8_FILE`].
    pub model_dir: PathBuf,
    /// Photos whose faces (and their mirror images) calibrate the activation ranges.
    pub images: PathBuf,
    /// Quantize even when the stamp says the output is current.
    pub force: bool,
}

/// What [`quantize_recognizer`] did.
#[derive(Debug, Clone)]
pub struct QuantizeReport {
    pub output: PathBuf,
    pub output_bytes: u64,
    /// Calibration crops (every face found, and its mirror image); 0 when the output was kept.
    pub crops: usize,
    /// `None` when the output was kept.
    pub stats: Option<QuantizeStats>,
}

/// Writes the int8 recognizer next to the converted SFace, unless the stamp records one made from
/// the same fp32 file by the same [`quantize::QUANTIZER_REVISION`]. Run [`prepare`] first: a new
/// conversion drops the int8 entry from the stamp, so the next call quantizes again. The stamp
/// does not record the calibration photos: `force` re-calibrates on other ones.
pub fn quantize_recognizer(options: &QuantizeOptions) -> Result<QuantizeReport, Error> {
    let dir = &options.model_dir;
    let paths = frs_vision::ModelPaths::in_dir(dir);
    let int8 = paths.clone().with_int8_recognizer();
    let output = int8.recognizer.clone();
    let source_sha256 = sha256_file(&paths.recognizer)?;
    let mut stamp = read_stamp(dir).ok_or_else(|| Error::Io {
        path: dir.join(STAMP_FILE),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no stamp: run `frs models prepare` first"),
    })?;
    let key = output.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
    if !options.force
        && let Some(entry) = stamp.models.get(&key)
        && entry.source_sha256 == source_sha256
        && entry.quantizer == Some(quantize::QUANTIZER_REVISION)
        && output.exists()
        && sha256_file(&output)? == entry.output_sha256
    {
        let output_bytes = fs::metadata(&output).map_err(io(&output))?.len();
        return Ok(QuantizeReport { output, output_bytes, crops: 0, stats: None });
    }

    let crops = calibration_crops(&paths, &options.images)?;
    let crop_shape = [3, frs_vision::align::CROP_SIDE, frs_vision::align::CROP_SIDE];
    let count = crops.len() / crop_shape.iter().product::<usize>();
    let bytes = fs::read(&paths.recognizer).map_err(io(&paths.recognizer))?;
    let model = proto::ModelProto::from_bytes(&bytes)
        .map_err(|source| Error::Decode { path: paths.recognizer.clone(), source })?;
    let input_name =
        model.graph.as_ref().and_then(|g| g.input.first()).map(|i| i.label().to_owned()).unwrap_or_default();
    let environment = frs_vision::runtime::init(&paths.onnxruntime).map_err(|e| Error::Calibration(e.to_string()))?;
    let calibration = quantize::Calibration { input_name: &input_name, shape: &crop_shape, data: &crops };
    let (quantized, stats) = quantize::quantize(&model, &environment, calibration)
        .map_err(|source| Error::Quantize { path: paths.recognizer.clone(), source })?;
    write_atomic(&output, &quantized.to_bytes())?;
    let output_sha256 = sha256_file(&output)?;
    let quantizer = Some(quantize::QUANTIZER_REVISION);
    stamp.models.insert(key, StampEntry { source_sha256, output_sha256, quantizer });
    let text = serde_json::to_string_pretty(&stamp).unwrap_or_default();
    write_atomic(&dir.join(STAMP_FILE), text.as_bytes())?;
    let output_bytes = fs::metadata(&output).map_err(io(&output))?.len();
    Ok(QuantizeReport { output, output_bytes, crops: count, stats: Some(stats) })
}

/// Every face the fp32 pipeline finds in the images of `folder` (sorted by name), aligned as the
/// recognizer is fed, followed by its mirror image.
pub fn calibration_crops(paths: &frs_vision::ModelPaths, folder: &Path) -> Result<Vec<f32>, Error> {
    use frs_vision::align::{CROP_SIDE, landmarks_to_template, warp_to_planar_rgb};
    let fail = |e: frs_vision::VisionError| Error::Calibration(e.to_string());
    let config = frs_vision::PipelineConfig {
        models: paths.clone(),
        detector: frs_vision::DetectorConfig::default(),
        threads: 1,
    };
    let mut pipeline = frs_vision::Pipeline::new(&config).map_err(fail)?;
    let mut files: Vec<PathBuf> = fs::read_dir(folder)
        .map_err(io(folder))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| frs_vision::has_image_extension(p))
        .collect();
    files.sort();
    let crop = 3 * CROP_SIDE * CROP_SIDE;
    let mut crops = Vec::new();
    for file in &files {
        let bytes = fs::read(file).map_err(io(file))?;
        let image = frs_vision::decode_image(&bytes, &frs_vision::ImageLimits::default())
            .map_err(|e| Error::Calibration(format!("{}: {e}", file.display())))?;
        for face in pipeline.detect(&image).map_err(fail)? {
            let Some(transform) = landmarks_to_template(&face.landmarks) else { continue };
            let start = crops.len();
            crops.resize(start + crop, 0.0);
            if warp_to_planar_rgb(&image, &transform, &mut crops[start..]).is_none() {
                crops.truncate(start);
                continue;
            }
            let mirrored: Vec<f32> =
                crops[start..].chunks_exact(CROP_SIDE).flat_map(|row| row.iter().rev().copied()).collect();
            crops.extend(mirrored);
        }
    }
    if crops.is_empty() {
        return Err(Error::Calibration(format!("no face found in {}", folder.display())));
    }
    Ok(crops)
}
