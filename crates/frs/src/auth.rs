//! The operator's side of authentication: the master key, `frs credentials …` and `frs audit`.
//! These commands open the data directory's access store without its lock, so they work while a
//! server runs; the server reads every change at its next request.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use frs_server::Authentication;
use frs_service::{AuditFilter, AuditLog, Credentials, CredentialsConfig, MasterKey, Policy};
use frs_store::AccessStore;

use crate::config::Config;

/// The master key's file name in the data directory, when `auth.master_key_file` is not set.
pub const DEFAULT_KEY_FILE: &str = "master.key";

#[derive(Subcommand)]
pub enum CredentialsCommand {
    /// Create an enabled access key for one project and print it once, with its secret, as one
    /// JSON object: {"access_key", "secret_key", "project_id", "policy"}.
    Create {
        /// The only project the key acts on.
        #[arg(long)]
        project: String,
        /// full, read-only or search-only.
        #[arg(long, default_value = "full")]
        policy: Policy,
        /// A note for the operator (at most 255 characters).
        #[arg(long)]
        description: Option<String>,
    },
    /// Print every access key as one JSON object per line (never a secret).
    List,
    /// Let an access key authenticate again.
    Enable { access_key: String },
    /// Refuse an access key and its tokens from the next request on.
    Disable { access_key: String },
    /// Delete an access key; its tokens die with it, its audit records stay.
    Delete { access_key: String },
}

#[derive(Args)]
pub struct AuditArgs {
    /// Only this project's records.
    #[arg(long)]
    project: Option<String>,
    /// At most this many records, the most recent.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Only records at or after this time (RFC 3339, e.g. 2026-05-01T00:00:00Z).
    #[arg(long)]
    since: Option<String>,
}

/// The configured master key: `auth.master_key`, else the key file (created on first use).
pub fn master_key(config: &Config) -> anyhow::Result<MasterKey> {
    if let Some(key) = &config.auth.master_key {
        return MasterKey::from_base64(key.expose()).map_err(anyhow::Error::msg).context("auth.master_key");
    }
    let path = key_file(config);
    load_or_create_key_file(&path).with_context(|| format!("the master key file {}", path.display()))
}

/// `auth.master_key_file`, or `master.key` in the data directory.
fn key_file(config: &Config) -> PathBuf {
    config.auth.master_key_file.clone().unwrap_or_else(|| config.storage.data_dir.join(DEFAULT_KEY_FILE))
}

/// Reads the key file, or creates it with a new random key, readable by its owner only. Two
/// processes creating it at once end with the same key: the file appears whole, by a link that
/// fails if it exists.
fn load_or_create_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => return MasterKey::from_base64(&text).map_err(anyhow::Error::msg),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let key = MasterKey::generate()?;
    let temporary = dir.join(format!(".master.key.{}", std::process::id()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    let written = file.write_all(format!("{}\n", key.to_base64()).as_bytes()).and_then(|()| file.sync_all());
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            std::fs::File::open(dir)?.sync_all()?;
            tracing::info!(path = %path.display(), "created a new master key: back it up, every credential depends on it");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            MasterKey::from_base64(&std::fs::read_to_string(path)?).map_err(anyhow::Error::msg)
        }
        Err(e) => Err(e.into()),
    }
}

/// The credentials settings of the configuration.
pub fn credentials_config(config: &Config) -> CredentialsConfig {
    CredentialsConfig {
        token_ttl_secs: config.auth.token_ttl_secs,
        max_clock_skew_secs: config.auth.max_clock_skew_secs,
    }
}

/// The server's authentication as configured. With authentication on and no credential yet, logs
/// how to create one.
pub fn server_authentication(config: &Config, store: &AccessStore) -> anyhow::Result<Authentication> {
    if !config.auth.enabled {
        tracing::warn!(
            "authentication is disabled (auth.enabled = false): every request has full rights on its path's project"
        );
        return Ok(Authentication::Disabled);
    }
    let key = master_key(config)?;
    if store.credentials().context("reading the credentials")?.is_empty() {
        tracing::warn!(
            "authentication is enabled and there is no credential yet: create one with `frs credentials create \
             --project <project_id> --data-dir {}`, which prints its access key and secret key once",
            config.storage.data_dir.display()
        );
    }
    Ok(Authentication::Required(Credentials::new(store.clone(), &key, credentials_config(config))))
}

fn open_store(config: &Config) -> anyhow::Result<AccessStore> {
    let dir = &config.storage.data_dir;
    AccessStore::open(dir).with_context(|| format!("opening the store in {}", dir.display()))
}

/// `frs credentials …`.
pub fn run_credentials(config: &Config, command: CredentialsCommand) -> anyhow::Result<()> {
    let store = open_store(config)?;
    let credentials = Credentials::new(store, &master_key(config)?, credentials_config(config));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let found = |found: bool, access_key: &str| {
            anyhow::ensure!(found, "no access key {access_key}");
            Ok(())
        };
        match command {
            CredentialsCommand::Create { project, policy, description } => {
                let new = credentials.create(&project, policy, description).await?;
                println!("{}", serde_json::to_string(&new)?);
            }
            CredentialsCommand::List => {
                for credential in credentials.list().await? {
                    println!("{}", serde_json::to_string(&credential)?);
                }
            }
            CredentialsCommand::Enable { access_key } => {
                found(credentials.set_enabled(&access_key, true).await?, &access_key)?;
            }
            CredentialsCommand::Disable { access_key } => {
                found(credentials.set_enabled(&access_key, false).await?, &access_key)?;
            }
            CredentialsCommand::Delete { access_key } => found(credentials.delete(&access_key).await?, &access_key)?,
        }
        Ok(())
    })
}

/// `frs audit`: the most recent matching records, oldest first, one JSON object per line.
pub fn run_audit(config: &Config, args: AuditArgs) -> anyhow::Result<()> {
    let since_ms = match &args.since {
        Some(since) => {
            let time: jiff::Timestamp = since.parse().with_context(|| format!("--since {since:?} is not RFC 3339"))?;
            Some(time.as_millisecond())
        }
        None => None,
    };
    let log = AuditLog::new(open_store(config)?);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let records =
        runtime.block_on(log.records(AuditFilter { project_id: args.project, since_ms, limit: args.limit }))?;
    let mut out = std::io::stdout().lock();
    for record in records {
        writeln!(out, "{}", serde_json::to_string(&record)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_created_once_owner_only_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/master.key");
        let key = load_or_create_key_file(&path).expect("created");
        assert_eq!(load_or_create_key_file(&path).expect("read").to_base64(), key.to_base64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers = std::fs::read_dir(path.parent().expect("parent")).expect("dir").count();
        assert_eq!(leftovers, 1, "no temporary file is left");
        std::fs::write(&path, "not a key").expect("write");
        assert!(load_or_create_key_file(&path).is_err(), "a damaged key file is an error, never replaced");
    }
}
