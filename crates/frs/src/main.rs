//! `frs`: the Face Recognition Service binary and its command-line tools.

mod config;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use frs_service::{CompareRequest, DetectRequest, Engine, FaceService, ImageInput};

use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "frs",
    version,
    about = "Self-hosted face recognition service, wire-compatible with Huawei Cloud FRS v2"
)]
struct Cli {
    /// TOML configuration file (see frs.example.toml).
    #[arg(long, global = true, env = "FRS_CONFIG")]
    config: Option<PathBuf>,
    /// Model pack directory (overrides `models.dir`).
    #[arg(long, global = true)]
    models: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Detect faces in an image and print the FRS face-detect response.
    Detect {
        image: PathBuf,
        /// FRS attribute codes, e.g. "3" for landmarks.
        #[arg(long)]
        attributes: Option<String>,
    },
    /// Compare the largest faces of two images and print the FRS face-compare response.
    Compare { image1: PathBuf, image2: PathBuf },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,ort=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut overrides = serde_json::Map::new();
    if let Some(dir) = &cli.models {
        overrides.insert("models".into(), serde_json::json!({ "dir": dir }));
    }
    let config = Config::load(cli.config.as_deref(), &overrides)?;
    match cli.command {
        Command::Detect { image, attributes } => {
            let image = read_image(&image)?;
            let response =
                one_shot(&config, |service| async move { service.detect(DetectRequest { image, attributes }).await })?;
            println!("{}", serde_json::to_string_pretty(&response)?);
        }
        Command::Compare { image1, image2 } => {
            let (image1, image2) = (read_image(&image1)?, read_image(&image2)?);
            let response =
                one_shot(&config, |service| async move { service.compare(CompareRequest { image1, image2 }).await })?;
            println!("{}", serde_json::to_string_pretty(&response)?);
        }
    }
    Ok(())
}

fn read_image(path: &std::path::Path) -> anyhow::Result<ImageInput> {
    Ok(ImageInput::File(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?))
}

/// Runs one use-case on a one-worker engine and returns its result; FRS errors become CLI errors.
fn one_shot<T, F, Fut>(config: &Config, call: F) -> anyhow::Result<T>
where
    F: FnOnce(FaceService) -> Fut,
    Fut: std::future::Future<Output = Result<T, frs_service::ServiceError>>,
{
    let mut engine = config.engine();
    engine.workers = 1;
    let service = FaceService::new(Arc::new(Engine::start(engine)));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(runtime.block_on(call(service))?)
}
