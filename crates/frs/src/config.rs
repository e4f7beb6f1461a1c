//! The one typed configuration of frs: defaults < TOML file < `FRS__SECTION__KEY` env < flags.
//! `frs.example.toml` at the repository root is the commented reference; a test parses it.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything `frs` reads from its configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub models: ModelsConfig,
    pub inference: InferenceConfig,
    pub detector: DetectorSettings,
    pub server: frs_server::ServerConfig,
    pub metrics: frs_server::MetricsConfig,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub library: frs_service::LibraryLimits,
    /// Feature precision and the sign codes of large sets (`docs/search-at-scale.md`).
    pub index: frs_service::IndexConfig,
    /// Rate limits and call quotas per project (nothing limited by default; calls always counted).
    pub quota: frs_service::QuotaConfig,
    /// Which `image_url`s may be fetched (nothing by default).
    pub fetch: frs_service::FetchPolicy,
}

/// Where durable state lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Data directory of the embedded store (created if missing).
    pub data_dir: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { data_dir: PathBuf::from("data") }
    }
}

/// Authentication of the API (`[auth]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Require a token or an AK/SK signature on every API request.
    pub enabled: bool,
    /// The master key as base64 of 32 bytes; takes precedence over `master_key_file`.
    pub master_key: Option<Secret>,
    /// File holding the master key as base64; `None`: `master.key` in the data directory, created
    /// with mode 0600 on first use.
    pub master_key_file: Option<PathBuf>,
    /// How long an issued token is valid.
    pub token_ttl_secs: u64,
    /// Largest accepted difference between a signed request's `X-Sdk-Date` and the server's clock.
    pub max_clock_skew_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        let credentials = frs_service::CredentialsConfig::default();
        AuthConfig {
            enabled: true,
            master_key: None,
            master_key_file: None,
            token_ttl_secs: credentials.token_ttl_secs,
            max_clock_skew_secs: credentials.max_clock_skew_secs,
        }
    }
}

/// A configuration value that must never be logged: its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where the prepared model pack lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Directory written by `frs models prepare` (converted models and `libonnxruntime.so`).
    pub dir: PathBuf,
    /// Which SFace computes features: the converted fp32 model, or the int8 one
    /// `frs models quantize` derives from it (about 0.6× its time; features within cosine ~0.996).
    pub recognizer: Recognizer,
}

/// The recognizer variant of the model pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recognizer {
    #[default]
    Fp32,
    Int8,
}

/// Sizing of the inference pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceConfig {
    /// Worker threads, each with its own sessions; 0 = one per available core.
    pub workers: usize,
    /// Intra-op threads per session.
    pub threads_per_worker: usize,
    /// Requests that may wait for a worker before new ones get HTTP 429 (`FRS.0033`).
    pub queue_capacity: usize,
}

/// Detector tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorSettings {
    pub score_threshold: f32,
    pub nms_threshold: f32,
    /// Smallest reported face, in original-image pixels (box width and height).
    pub min_face_size: f32,
    /// Longer image side the detector works at (images are scaled down to it, never up).
    pub max_input_side: u32,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig { dir: PathBuf::from("assets/models"), recognizer: Recognizer::Fp32 }
    }
}

impl Default for InferenceConfig {
    fn default() -> Self {
        InferenceConfig { workers: 0, threads_per_worker: 1, queue_capacity: 64 }
    }
}

impl Default for DetectorSettings {
    fn default() -> Self {
        let d = frs_vision::DetectorConfig::default();
        DetectorSettings {
            score_threshold: d.score_threshold,
            nms_threshold: d.nms_threshold,
            min_face_size: d.min_face_size,
            max_input_side: d.max_input_side,
        }
    }
}

impl Config {
    /// Layers defaults, the TOML file (if given, it must exist), `FRS__…` environment variables and
    /// `overrides` (already-parsed command-line flags), rejecting unknown keys.
    pub fn load(file: Option<&Path>, overrides: &impl Serialize) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            anyhow::ensure!(file.exists(), "configuration file {} does not exist", file.display());
            figment = figment.merge(Toml::file(file));
        }
        let config =
            figment.merge(Env::prefixed("FRS__").split("__")).merge(Serialized::defaults(overrides)).extract()?;
        Ok(config)
    }

    /// The vision pipeline settings this configuration describes.
    pub fn pipeline(&self) -> frs_vision::PipelineConfig {
        let models = frs_vision::ModelPaths::in_dir(&self.models.dir);
        frs_vision::PipelineConfig {
            models: match self.models.recognizer {
                Recognizer::Fp32 => models,
                Recognizer::Int8 => models.with_int8_recognizer(),
            },
            detector: frs_vision::DetectorConfig {
                score_threshold: self.detector.score_threshold,
                nms_threshold: self.detector.nms_threshold,
                min_face_size: self.detector.min_face_size,
                max_input_side: self.detector.max_input_side,
            },
            threads: self.inference.threads_per_worker.max(1),
        }
    }

    /// The inference engine settings this configuration describes.
    pub fn engine(&self) -> frs_service::EngineConfig {
        let workers = match self.inference.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        frs_service::EngineConfig {
            pipeline: self.pipeline(),
            limits: frs_vision::ImageLimits::default(),
            workers,
            queue_capacity: self.inference.queue_capacity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses_and_equals_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../frs.example.toml");
        let config = Config::load(Some(&example), &serde_json::json!({})).expect("example parses");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn unknown_keys_are_rejected_and_flags_win() {
        let bad = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string("[server]\nlisten = \"0.0.0.0:1\"\ntypo = 1"))
            .extract::<Config>();
        assert!(bad.is_err());
        let config = Config::load(None, &serde_json::json!({"server": {"listen": "127.0.0.1:9"}})).expect("loads");
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:9");
    }

    #[test]
    fn quota_action_names_are_checked_when_the_configuration_loads() {
        let load = |toml: &str| {
            let figment = Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(toml));
            figment.extract::<Config>().map_err(|e| e.to_string())
        };
        let config =
            load("[quota]\nrequests_per_second = 5\nmax_calls = { addFaces = 10 }\n[quota.projects.p1]\nburst = 20")
                .expect("loads");
        assert_eq!(config.quota.requests_per_second, 5.0);
        assert_eq!(config.quota.max_calls.get("addFaces"), Some(&10));
        assert_eq!(config.quota.projects["p1"].burst, Some(20));
        let error = load("[quota]\nmax_calls = { addFace = 10 }").expect_err("an unknown action");
        assert!(error.contains("addFaces"), "the message lists the actions: {error}");
        assert!(load("[quota.projects.p1]\nmax_calls = { nope = 1 }").is_err());
        assert!(load("[quota]\nrequests_per_second = -1").is_err());
    }

    #[test]
    fn authentication_is_on_by_default_and_the_master_key_is_never_shown() {
        assert!(Config::default().auth.enabled);
        let key = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=";
        let config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(&format!("[auth]\nmaster_key = \"{key}\"\ntoken_ttl_secs = 60")))
            .extract::<Config>()
            .expect("loads");
        assert_eq!(config.auth.master_key.as_ref().map(Secret::expose), Some(key));
        assert_eq!(config.auth.token_ttl_secs, 60);
        let shown = format!("{config:?}");
        assert!(!shown.contains(key) && shown.contains("[redacted]"), "{shown}");
    }
}
