//! `frs`: the Face Recognition Service binary and its command-line tools.

mod auth;
mod bench;
mod bench_library;
mod config;
mod eval;
mod models;
mod usage;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use frs_service::{Caller, CompareRequest, DetectRequest, Engine, FaceLibrary, FaceService, ImageFetcher, ImageInput};

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
    /// Address to listen on (overrides `server.listen`).
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Data directory (overrides `storage.data_dir`).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the FRS v2 HTTP API.
    Serve,
    /// Prepare the model pack (verify and convert the downloaded models).
    Models(models::ModelsArgs),
    /// Detect faces in an image and print the FRS face-detect response.
    Detect {
        image: PathBuf,
        /// FRS attribute codes, e.g. "3" for landmarks.
        #[arg(long)]
        attributes: Option<String>,
    },
    /// Compare the largest faces of two images and print the FRS face-compare response.
    Compare { image1: PathBuf, image2: PathBuf },
    /// Verification accuracy on a pairs CSV (k-fold), TAR at the calibrated FARs, time per image.
    Eval(eval::EvalArgs),
    /// Per-stage timings, pipeline overhead over bare ONNX Runtime, 1→2 worker scaling, OpenCV comparison.
    Bench(bench::BenchArgs),
    /// Face-library figures: restart time and memory of a large set, search latency, what storage adds to an add.
    BenchLibrary(bench_library::BenchLibraryArgs),
    /// Impostor-pair FAR table of a labelled folder: the measurement behind the similarity mapping.
    Calibrate(eval::CalibrateArgs),
    /// Manage the API's access keys (AK/SK); works while a server runs on the same data directory.
    Credentials {
        #[command(subcommand)]
        command: auth::CredentialsCommand,
    },
    /// Print audit records (face-set writes, tokens) as JSON lines, oldest first.
    Audit(auth::AuditArgs),
    /// Print the calls counted per project and operation, with what is left of each quota, as JSON
    /// lines (as of the running server's last save).
    Usage(usage::UsageArgs),
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
    if let Some(listen) = &cli.listen {
        overrides.insert("server".into(), serde_json::json!({ "listen": listen }));
    }
    if let Some(dir) = &cli.data_dir {
        overrides.insert("storage".into(), serde_json::json!({ "data_dir": dir }));
    }
    let config = Config::load(cli.config.as_deref(), &overrides)?;
    match cli.command {
        Command::Serve => serve(config)?,
        Command::Models(args) => models::run(args)?,
        Command::Detect { image, attributes } => {
            let image = read_image(&image)?;
            let response = one_shot(&config, |service, caller| async move {
                service.detect(&caller, LOCAL_PROJECT, DetectRequest { image, attributes }).await
            })?;
            println!("{}", serde_json::to_string_pretty(&response)?);
        }
        Command::Compare { image1, image2 } => {
            let (image1, image2) = (read_image(&image1)?, read_image(&image2)?);
            let response = one_shot(&config, |service, caller| async move {
                service.compare(&caller, LOCAL_PROJECT, CompareRequest { image1, image2 }).await
            })?;
            println!("{}", serde_json::to_string_pretty(&response)?);
        }
        Command::Eval(args) => eval::run_eval(&config, &args)?,
        Command::Calibrate(args) => eval::run_calibrate(&config, &args)?,
        Command::Bench(args) => bench::run(&config, args)?,
        Command::BenchLibrary(args) => bench_library::run(&config, &args)?,
        Command::Credentials { command } => auth::run_credentials(&config, command)?,
        Command::Audit(args) => auth::run_audit(&config, args)?,
        Command::Usage(args) => usage::run(&config, args)?,
    }
    Ok(())
}

fn serve(config: Config) -> anyhow::Result<()> {
    let data_dir = &config.storage.data_dir;
    let store =
        frs_store::Store::open(data_dir).with_context(|| format!("opening the store in {}", data_dir.display()))?;
    store
        .bind_feature_model(&config.pipeline().models.feature_model())
        .context("checking [models] recognizer against the stored faces")?;
    let access = store.access();
    let authentication = auth::server_authentication(&config, &access)?;
    let usage_file = data_dir.join(frs_service::USAGE_FILE);
    let quotas = frs_service::Quotas::open(config.quota.clone(), usage_file.clone())
        .with_context(|| format!("reading the quota usage counters {}", usage_file.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let engine = config.engine();
        tracing::info!(workers = engine.workers, models = %config.models.dir.display(), "starting inference workers");
        let metrics = frs_server::Metrics::new(&config.metrics);
        let engine = Arc::new(Engine::start_observed(engine, metrics.observer()));
        let fetcher = ImageFetcher::new(config.fetch.clone()).context("the [fetch] configuration")?;
        let library = FaceLibrary::load_with_index(
            Arc::new(store),
            Arc::clone(&engine),
            config.library.clone(),
            config.index.clone(),
        )
        .context("loading the face library")?
        .with_fetcher(fetcher.clone());
        let service = FaceService::new(engine).with_fetcher(fetcher);
        let state = frs_server::AppState::new(service, library, authentication)
            .with_metrics(metrics)
            .with_audit(frs_service::AuditLog::new(access))
            .with_quotas(quotas.clone());
        let saver = tokio::spawn(quotas.clone().save_periodically());
        tracing::info!(listen = %config.server.listen, "serving the FRS v2 API");
        let served = frs_server::serve(config.server.clone(), state, shutdown_signal()).await;
        // The counters are saved once no request can change them any more, even if serving failed.
        saver.abort();
        quotas.save().await.context("saving the quota usage counters")?;
        Ok::<_, anyhow::Error>(served?)
    })?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

fn read_image(path: &std::path::Path) -> anyhow::Result<ImageInput> {
    Ok(ImageInput::File(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?))
}

/// The project the CLI's local one-shot calls act on.
const LOCAL_PROJECT: &str = "local";

/// Runs one use-case on a one-worker engine, as the operator, and returns its result; FRS errors
/// become CLI errors.
fn one_shot<T, F, Fut>(config: &Config, call: F) -> anyhow::Result<T>
where
    F: FnOnce(FaceService, Caller) -> Fut,
    Fut: std::future::Future<Output = Result<T, frs_service::ServiceError>>,
{
    let mut engine = config.engine();
    engine.workers = 1;
    let service = FaceService::new(Arc::new(Engine::start(engine)));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(runtime.block_on(call(service, Caller::unauthenticated(LOCAL_PROJECT)))?)
}
