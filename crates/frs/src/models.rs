//! `frs models …`: model pack management.

use std::path::PathBuf;

use anyhow::Context;
use frs_modelpack::{PrepareOptions, PrepareReport, QuantizeOptions};

/// Model pack commands.
#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub command: ModelsCommand,
}

/// `frs models` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// Verify the quantized OpenCV Zoo models, convert them to fp32 ONNX and check the result
    /// against OpenCV's outputs of the originals. Does nothing when the outputs are current.
    Prepare(PrepareArgs),
    /// Derive the int8 recognizer (`[models] recognizer = "int8"`) from the converted SFace,
    /// calibrated on the faces of sample photos. Does nothing when it is current.
    Quantize(QuantizeArgs),
}

/// Flags of `frs models quantize`.
#[derive(Debug, clap::Args)]
pub struct QuantizeArgs {
    /// The model pack directory written by `frs models prepare`.
    #[arg(long, default_value = "assets/models")]
    pub dir: PathBuf,
    /// Photos whose faces calibrate the activation ranges.
    #[arg(long, default_value = "assets/images")]
    pub images: PathBuf,
    /// Quantize even when the output is current.
    #[arg(long)]
    pub force: bool,
}

/// Flags of `frs models prepare`.
#[derive(Debug, clap::Args)]
pub struct PrepareArgs {
    /// Directory holding face_detection_yunet_2023mar_int8bq.onnx and
    /// face_recognition_sface_2021dec_int8bq.onnx.
    #[arg(long, default_value = "assets/downloads/models")]
    pub from: PathBuf,
    /// Directory receiving the converted models (the model pack directory).
    #[arg(long, default_value = "assets/models")]
    pub to: PathBuf,
    /// libonnxruntime.so used to check the converted models.
    #[arg(long, default_value = "assets/models/libonnxruntime.so")]
    pub onnxruntime: PathBuf,
    /// Skip the check against the OpenCV reference outputs.
    #[arg(long)]
    pub no_check: bool,
    /// Convert and check even when the outputs are current.
    #[arg(long)]
    pub force: bool,
}

/// Runs a `frs models` command.
pub fn run(args: ModelsArgs) -> anyhow::Result<()> {
    match args.command {
        ModelsCommand::Prepare(args) => prepare(args),
        ModelsCommand::Quantize(args) => quantize(args),
    }
}

fn quantize(args: QuantizeArgs) -> anyhow::Result<()> {
    let options = QuantizeOptions { model_dir: args.dir, images: args.images, force: args.force };
    let report = frs_modelpack::quantize_recognizer(&options)
        .with_context(|| format!("quantizing the recognizer in {}", options.model_dir.display()))?;
    let size = report.output_bytes as f64 / (1024.0 * 1024.0);
    match report.stats {
        None => println!("{}: up to date ({size:.1} MiB)", report.output.display()),
        Some(stats) => println!(
            "{}: written ({size:.1} MiB) from {} calibration crops: {} BatchNormalization folded, {} PRelu \
             equalized, {} Relu fused, {} Conv and {} Add quantized, {} activations, {} Gemm with u8 weight blocks",
            report.output.display(),
            report.crops,
            stats.batch_norms_folded,
            stats.prelus_equalized,
            stats.relus_fused,
            stats.convs_quantized,
            stats.adds_quantized,
            stats.activations_quantized,
            stats.gemms_blockwise,
        ),
    }
    Ok(())
}

fn prepare(args: PrepareArgs) -> anyhow::Result<()> {
    let options = PrepareOptions {
        source_dir: args.from,
        output_dir: args.to,
        onnxruntime: (!args.no_check).then_some(args.onnxruntime),
        force: args.force,
    };
    let report = frs_modelpack::prepare(&options).with_context(|| {
        format!("preparing models from {} into {}", options.source_dir.display(), options.output_dir.display())
    })?;
    print_report(&report);
    Ok(())
}

fn print_report(report: &PrepareReport) {
    for model in &report.models {
        let size = model.output_bytes as f64 / (1024.0 * 1024.0);
        match &model.stats {
            None => println!("{}: up to date ({size:.1} MiB)", model.output.display()),
            Some(stats) => {
                let folded: usize = stats.dequantize_folded.values().sum();
                println!(
                    "{}: written ({size:.1} MiB): {} -> {} nodes, {folded} DequantizeLinear and {} Reshape folded, \
                     {} Dropout removed, {} graph inputs dropped",
                    model.output.display(),
                    stats.nodes_before,
                    stats.nodes_after,
                    stats.reshapes_folded,
                    stats.dropouts_removed,
                    stats.inputs_removed,
                );
                for (name, dims) in &stats.inputs {
                    println!("  input  {name} [{}]", dims.join(", "));
                }
            }
        }
    }
    match &report.check {
        Some(check) => {
            let cases: std::collections::BTreeSet<_> =
                check.outputs.iter().map(|o| (o.model.as_str(), o.input_shape.clone())).collect();
            match check.worst() {
                Some(worst) => println!(
                    "reference check passed: {} outputs over {} runs match OpenCV on the quantized originals; \
                     largest difference {:.2e} of scale ({} {:?} {} {}), tolerance {:.0e}",
                    check.outputs.len(),
                    cases.len(),
                    worst.relative_difference,
                    worst.model,
                    worst.input_shape,
                    worst.output,
                    worst.quantity,
                    check.tolerance,
                ),
                None => println!("reference check passed (no outputs)"),
            }
        }
        None if report.up_to_date => println!("models are current (stamp {})", frs_modelpack::STAMP_FILE),
        None => println!("reference check skipped (--no-check)"),
    }
}
